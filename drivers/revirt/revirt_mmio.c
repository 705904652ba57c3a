// SPDX-License-Identifier: GPL-2.0-only
/*
 * revirt MMIO transport: virtio-mmio version 1 (legacy) and version 2.
 *
 * Register map (32-bit registers, little endian; virtio 1.x, 4.2.2):
 *
 *   0x000 MagicValue "virt"     0x004 Version (1 or 2)
 *   0x008 DeviceID              0x00c VendorID
 *   0x010 DeviceFeatures        0x014 DeviceFeaturesSel
 *   0x020 DriverFeatures        0x024 DriverFeaturesSel
 *   0x028 GuestPageSize (v1)    0x030 QueueSel
 *   0x034 QueueNumMax           0x038 QueueNum
 *   0x03c QueueAlign (v1)       0x040 QueuePFN (v1)
 *   0x044 QueueReady (v2)       0x050 QueueNotify
 *   0x060 InterruptStatus       0x064 InterruptACK
 *   0x070 Status
 *   0x080/0x084 QueueDesc       0x090/0x094 QueueDriver (avail)
 *   0x0a0/0x0a4 QueueDevice (used)                          (v2, 64 bit)
 *   0x0c0 QueueReset (v2, virtio 1.2, with VIRTIO_F_RING_RESET)
 *   0x0fc ConfigGeneration (v2) 0x100 device-specific config
 *
 * Reset: write 0 to Status; a version-2 device may take time, so Status
 * is polled until it reads 0, bounded.  A queue reset alone writes 1 to
 * QueueReset of the selected queue and polls it back to 0 with the same
 * bound; the queue is then programmed again and made ready.  Interrupts are acknowledged by
 * writing the bits read from InterruptStatus to InterruptACK.
 *
 * Devices are found through ACPI (LNRO0005, as QEMU's microvm describes
 * them), the device tree ("virtio,mmio"), or the device= parameter:
 * device=<size>@<base>:<irq>[,...], e.g. device=0x200@0xfeb00000:12.
 */

#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/mod_devicetable.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/revirt.h>
#include <linux/revirt_ring.h>
#include <linux/slab.h>
#include <uapi/linux/virtio_mmio.h>
#include <uapi/linux/virtio_ring.h>

#include "revirt_compat.h"

#define REVIRT_MMIO_MAGIC	0x74726976	/* "virt" */
#define REVIRT_MMIO_MAX_QUEUE	1024
#define REVIRT_MMIO_MAX_PARAM_DEVICES	8
/* Not in the uapi header of every kernel revirt builds against. */
#define RVM_QUEUE_RESET		0x0c0

static unsigned int reset_timeout_ms = 1000;
module_param(reset_timeout_ms, uint, 0644);
MODULE_PARM_DESC(reset_timeout_ms,
		 "Bound on waiting for a version-2 device to complete a reset");

struct revirt_mmio_device {
	struct revirt_device vdev;
	struct platform_device *pdev;
	void __iomem *base;
	unsigned int version;
	int irq;
	bool irq_requested;
	struct revirt_virtqueue **vqs;
	unsigned int nvqs;
};

static inline struct revirt_mmio_device *to_rvm(struct revirt_device *vdev)
{
	return container_of(vdev, struct revirt_mmio_device, vdev);
}

/*
 * A device whose MagicValue no longer reads "virt" was taken away (or its
 * region now answers with something else): tell the core, once.
 */
static bool rvm_gone(struct revirt_mmio_device *rvm)
{
	u32 magic = readl(rvm->base + VIRTIO_MMIO_MAGIC_VALUE);
	char why[48];

	if (magic == REVIRT_MMIO_MAGIC)
		return false;
	snprintf(why, sizeof(why), "MagicValue reads 0x%08x", magic);
	revirt_device_gone(&rvm->vdev, why);
	return true;
}

static u8 rvm_get_status(struct revirt_device *vdev)
{
	struct revirt_mmio_device *rvm = to_rvm(vdev);

	rvm_gone(rvm);
	return readl(rvm->base + VIRTIO_MMIO_STATUS) & 0xff;
}

static void rvm_set_status(struct revirt_device *vdev, u8 status)
{
	WARN_ON(!status);
	writel(status, to_rvm(vdev)->base + VIRTIO_MMIO_STATUS);
}

/* Poll @offset until it reads 0, bounded by reset_timeout_ms. */
static int rvm_wait_zero(struct revirt_mmio_device *rvm, unsigned int offset)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(reset_timeout_ms);

	while (readl(rvm->base + offset)) {
		/* Nothing completes on a device that is gone. */
		if (rvm_gone(rvm))
			return -ENODEV;
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		usleep_range(500, 1000);
	}
	return 0;
}

static int rvm_reset(struct revirt_device *vdev)
{
	struct revirt_mmio_device *rvm = to_rvm(vdev);
	int err;

	if (rvm_gone(rvm))
		return -ENODEV;
	writel(0, rvm->base + VIRTIO_MMIO_STATUS);
	if (rvm->version >= 2) {
		err = rvm_wait_zero(rvm, VIRTIO_MMIO_STATUS);
		if (err)
			return err;
	}
	if (rvm->irq_requested)
		synchronize_irq(rvm->irq);
	return 0;
}

static u64 rvm_get_features(struct revirt_device *vdev)
{
	struct revirt_mmio_device *rvm = to_rvm(vdev);
	u64 features;

	writel(1, rvm->base + VIRTIO_MMIO_DEVICE_FEATURES_SEL);
	features = readl(rvm->base + VIRTIO_MMIO_DEVICE_FEATURES);
	features <<= 32;
	writel(0, rvm->base + VIRTIO_MMIO_DEVICE_FEATURES_SEL);
	features |= readl(rvm->base + VIRTIO_MMIO_DEVICE_FEATURES);
	/* Version 1 has no QueueReset register. */
	if (rvm->version < 2)
		features &= ~BIT_ULL(VIRTIO_F_RING_RESET);
	return features;
}

static int rvm_finalize_features(struct revirt_device *vdev)
{
	struct revirt_mmio_device *rvm = to_rvm(vdev);
	bool v1 = revirt_has_feature(vdev, VIRTIO_F_VERSION_1);

	if (rvm->version == 2 && !v1) {
		dev_err(&vdev->dev, "virtio-mmio version 2 needs VIRTIO_F_VERSION_1 (features_mask bit 32)\n");
		return -EINVAL;
	}
	writel(1, rvm->base + VIRTIO_MMIO_DRIVER_FEATURES_SEL);
	writel(upper_32_bits(vdev->features),
	       rvm->base + VIRTIO_MMIO_DRIVER_FEATURES);
	writel(0, rvm->base + VIRTIO_MMIO_DRIVER_FEATURES_SEL);
	writel(lower_32_bits(vdev->features),
	       rvm->base + VIRTIO_MMIO_DRIVER_FEATURES);
	return 0;
}

/* Version 1 config is in guest byte order: copy bytes as they are. */
static void rvm_get(struct revirt_device *vdev, unsigned int offset,
		    void *buf, unsigned int len)
{
	struct revirt_mmio_device *rvm = to_rvm(vdev);
	void __iomem *p = rvm->base + VIRTIO_MMIO_CONFIG + offset;
	__le16 v16;
	__le32 v32;
	unsigned int i;

	if (rvm->version == 1 || (len != 2 && len != 4 && len != 8)) {
		for (i = 0; i < len; i++)
			((u8 *)buf)[i] = readb(p + i);
		return;
	}
	if (len == 2) {
		v16 = cpu_to_le16(readw(p));
		memcpy(buf, &v16, 2);
		return;
	}
	v32 = cpu_to_le32(readl(p));
	memcpy(buf, &v32, 4);
	if (len == 8) {
		v32 = cpu_to_le32(readl(p + 4));
		memcpy(buf + 4, &v32, 4);
	}
}

static void rvm_set(struct revirt_device *vdev, unsigned int offset,
		    const void *buf, unsigned int len)
{
	struct revirt_mmio_device *rvm = to_rvm(vdev);
	void __iomem *p = rvm->base + VIRTIO_MMIO_CONFIG + offset;
	__le16 v16;
	__le32 v32;
	unsigned int i;

	if (rvm->version == 1 || (len != 2 && len != 4)) {
		for (i = 0; i < len; i++)
			writeb(((const u8 *)buf)[i], p + i);
		return;
	}
	if (len == 2) {
		memcpy(&v16, buf, 2);
		writew(le16_to_cpu(v16), p);
		return;
	}
	memcpy(&v32, buf, 4);
	writel(le32_to_cpu(v32), p);
}

static u32 rvm_generation(struct revirt_device *vdev)
{
	struct revirt_mmio_device *rvm = to_rvm(vdev);

	if (rvm->version == 1)
		return 0;
	return readl(rvm->base + VIRTIO_MMIO_CONFIG_GENERATION);
}

static bool rvm_notify(struct revirt_virtqueue *vq)
{
	struct revirt_mmio_device *rvm = to_rvm(vq->vdev);

	writel(vq->index, rvm->base + VIRTIO_MMIO_QUEUE_NOTIFY);
	return true;
}

static irqreturn_t rvm_interrupt(int irq, void *data)
{
	struct revirt_mmio_device *rvm = data;
	irqreturn_t ret = IRQ_NONE;
	unsigned int i;
	u32 status;

	status = readl(rvm->base + VIRTIO_MMIO_INTERRUPT_STATUS);
	if (!status)
		return IRQ_NONE;
	/* Bits beyond the two defined ones: is anybody still there? */
	if ((status & ~(VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG)) &&
	    rvm_gone(rvm))
		return IRQ_NONE;
	writel(status, rvm->base + VIRTIO_MMIO_INTERRUPT_ACK);

	if (status & VIRTIO_MMIO_INT_CONFIG) {
		revirt_config_changed(&rvm->vdev);
		ret = IRQ_HANDLED;
	}
	if (status & VIRTIO_MMIO_INT_VRING)
		for (i = 0; i < rvm->nvqs; i++)
			if (revirt_vring_interrupt(irq, rvm->vqs[i]) ==
			    IRQ_HANDLED)
				ret = IRQ_HANDLED;
	return ret;
}

static unsigned int rvm_queue_size(struct revirt_mmio_device *rvm,
				   unsigned int index)
{
	u32 num;

	writel(index, rvm->base + VIRTIO_MMIO_QUEUE_SEL);
	if (readl(rvm->base + (rvm->version == 1 ? VIRTIO_MMIO_QUEUE_PFN :
						   VIRTIO_MMIO_QUEUE_READY)))
		return 0;
	num = readl(rvm->base + VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (!num)
		return 0;
	return rounddown_pow_of_two(min_t(u32, num, REVIRT_MMIO_MAX_QUEUE));
}

/* Asked after the queue's reset alone, when QueueReady reads 0 again. */
static unsigned int rvm_max_vq_size(struct revirt_virtqueue *vq)
{
	return rvm_queue_size(to_rvm(vq->vdev), vq->index);
}

static void rvm_write64(struct revirt_mmio_device *rvm, u64 val,
			unsigned int lo)
{
	writel(lower_32_bits(val), rvm->base + lo);
	writel(upper_32_bits(val), rvm->base + lo + 4);
}

static int rvm_activate_vq(struct revirt_mmio_device *rvm,
			   struct revirt_virtqueue *vq)
{
	writel(revirt_vq_get_vring_size(vq), rvm->base + VIRTIO_MMIO_QUEUE_NUM);
	if (rvm->version == 1) {
		u64 pfn = revirt_vring_desc_dma(vq) >> PAGE_SHIFT;

		if (pfn > U32_MAX)
			return -E2BIG;
		writel(PAGE_SIZE, rvm->base + VIRTIO_MMIO_QUEUE_ALIGN);
		writel(pfn, rvm->base + VIRTIO_MMIO_QUEUE_PFN);
		return 0;
	}
	rvm_write64(rvm, revirt_vring_desc_dma(vq), VIRTIO_MMIO_QUEUE_DESC_LOW);
	rvm_write64(rvm, revirt_vring_avail_dma(vq),
		    VIRTIO_MMIO_QUEUE_AVAIL_LOW);
	rvm_write64(rvm, revirt_vring_used_dma(vq), VIRTIO_MMIO_QUEUE_USED_LOW);
	writel(1, rvm->base + VIRTIO_MMIO_QUEUE_READY);
	return 0;
}

static void rvm_deactivate_vq(struct revirt_mmio_device *rvm,
			      unsigned int index)
{
	writel(index, rvm->base + VIRTIO_MMIO_QUEUE_SEL);
	if (rvm->version == 1)
		writel(0, rvm->base + VIRTIO_MMIO_QUEUE_PFN);
	else
		writel(0, rvm->base + VIRTIO_MMIO_QUEUE_READY);
}

static int rvm_reset_vq(struct revirt_virtqueue *vq)
{
	struct revirt_mmio_device *rvm = to_rvm(vq->vdev);
	int err;

	writel(vq->index, rvm->base + VIRTIO_MMIO_QUEUE_SEL);
	writel(1, rvm->base + RVM_QUEUE_RESET);
	err = rvm_wait_zero(rvm, RVM_QUEUE_RESET);
	if (err)
		return err;
	/* One interrupt serves every queue. */
	if (rvm->irq_requested)
		synchronize_irq(rvm->irq);
	return 0;
}

static int rvm_enable_vq(struct revirt_virtqueue *vq)
{
	struct revirt_mmio_device *rvm = to_rvm(vq->vdev);

	writel(vq->index, rvm->base + VIRTIO_MMIO_QUEUE_SEL);
	return rvm_activate_vq(rvm, vq);
}

static struct revirt_virtqueue *
rvm_setup_vq(struct revirt_mmio_device *rvm, unsigned int index,
	     const struct revirt_vq_info *info)
{
	struct revirt_device *vdev = &rvm->vdev;
	unsigned int num = rvm_queue_size(rvm, index);
	struct revirt_virtqueue *vq;
	int err;

	if (!num)
		return ERR_PTR(-ENOENT);
	vq = revirt_create_vq(vdev, index, num,
			      rvm->version == 1 ? PAGE_SIZE : SMP_CACHE_BYTES,
			      &rvm->pdev->dev, rvm_notify, info);
	if (IS_ERR(vq))
		return vq;
	err = rvm_activate_vq(rvm, vq);
	if (err) {
		revirt_vring_del(vq);
		return ERR_PTR(err);
	}
	list_add_tail(&vq->list, &vdev->vqs);
	return vq;
}

static void rvm_del_vqs(struct revirt_device *vdev)
{
	struct revirt_mmio_device *rvm = to_rvm(vdev);
	unsigned int i;

	if (rvm->irq_requested) {
		free_irq(rvm->irq, rvm);
		rvm->irq_requested = false;
	}
	for (i = 0; i < rvm->nvqs; i++) {
		if (!rvm->vqs[i])
			continue;
		list_del(&rvm->vqs[i]->list);
		rvm_deactivate_vq(rvm, i);
		revirt_vring_del(rvm->vqs[i]);
	}
	kfree(rvm->vqs);
	rvm->vqs = NULL;
	rvm->nvqs = 0;
}

static int rvm_find_vqs(struct revirt_device *vdev, unsigned int nvqs,
			struct revirt_virtqueue *vqs[],
			const struct revirt_vq_info info[])
{
	struct revirt_mmio_device *rvm = to_rvm(vdev);
	unsigned int i;
	int err;

	rvm->vqs = kcalloc(nvqs, sizeof(*rvm->vqs), GFP_KERNEL);
	if (!rvm->vqs)
		return -ENOMEM;
	rvm->nvqs = nvqs;

	for (i = 0; i < nvqs; i++) {
		vqs[i] = rvm_setup_vq(rvm, i, &info[i]);
		if (IS_ERR(vqs[i])) {
			err = PTR_ERR(vqs[i]);
			goto del_vqs;
		}
		rvm->vqs[i] = vqs[i];
	}
	/* The handler walks the queues: request it once they all exist. */
	err = request_irq(rvm->irq, rvm_interrupt, IRQF_SHARED,
			  dev_name(&vdev->dev), rvm);
	if (err)
		goto del_vqs;
	rvm->irq_requested = true;
	return 0;

del_vqs:
	dev_err(&vdev->dev, "cannot set up %u queues: %d\n", nvqs, err);
	rvm_del_vqs(vdev);
	return err;
}

static const struct revirt_config_ops rvm_config_ops = {
	.get = rvm_get,
	.set = rvm_set,
	.generation = rvm_generation,
	.get_status = rvm_get_status,
	.set_status = rvm_set_status,
	.reset = rvm_reset,
	.get_features = rvm_get_features,
	.finalize_features = rvm_finalize_features,
	.find_vqs = rvm_find_vqs,
	.del_vqs = rvm_del_vqs,
	.reset_vq = rvm_reset_vq,
	.enable_vq = rvm_enable_vq,
	.max_vq_size = rvm_max_vq_size,
};

static void rvm_release(struct device *dev)
{
	kfree(to_rvm(dev_to_revirt(dev)));
}

static int rvm_check_header(struct platform_device *pdev, void __iomem *base,
			    unsigned int *version)
{
	u32 magic = readl(base + VIRTIO_MMIO_MAGIC_VALUE);

	if (magic != REVIRT_MMIO_MAGIC) {
		dev_err(&pdev->dev, "revirt-mmio: bad magic 0x%08x\n", magic);
		return -ENODEV;
	}
	*version = readl(base + VIRTIO_MMIO_VERSION);
	if (*version < 1 || *version > 2) {
		dev_err(&pdev->dev, "revirt-mmio: version %u not supported\n",
			*version);
		return -ENXIO;
	}
	/* Device id 0 is a placeholder: no device behind this window. */
	if (!readl(base + VIRTIO_MMIO_DEVICE_ID))
		return -ENODEV;
	return 0;
}

static int rvm_set_dma_mask(struct platform_device *pdev, unsigned int version)
{
	if (version == 1)
		return dma_set_mask_and_coherent(&pdev->dev,
						 DMA_BIT_MASK(32 + PAGE_SHIFT));
	return dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
}

static int rvm_probe(struct platform_device *pdev)
{
	struct revirt_mmio_device *rvm;
	unsigned int version;
	void __iomem *base;
	int irq, err;

	base = devm_platform_ioremap_resource(pdev, 0);
	if (IS_ERR(base))
		return PTR_ERR(base);
	err = rvm_check_header(pdev, base, &version);
	if (err)
		return err;
	irq = platform_get_irq(pdev, 0);
	if (irq < 0)
		return irq;
	err = rvm_set_dma_mask(pdev, version);
	if (err)
		return err;

	rvm = kzalloc(sizeof(*rvm), GFP_KERNEL);
	if (!rvm)
		return -ENOMEM;
	rvm->pdev = pdev;
	rvm->base = base;
	rvm->version = version;
	rvm->irq = irq;
	rvm->vdev.id.device = readl(base + VIRTIO_MMIO_DEVICE_ID);
	rvm->vdev.id.vendor = readl(base + VIRTIO_MMIO_VENDOR_ID);
	rvm->vdev.config = &rvm_config_ops;
	rvm->vdev.dev.parent = &pdev->dev;
	rvm->vdev.dev.release = rvm_release;
	if (version == 1)
		writel(PAGE_SIZE, base + VIRTIO_MMIO_GUEST_PAGE_SIZE);
	platform_set_drvdata(pdev, rvm);

	err = revirt_register_device(&rvm->vdev);
	if (err) {
		dev_err(&pdev->dev, "revirt-mmio: cannot register device (%d)\n",
			err);
		put_device(&rvm->vdev.dev);
		return err;
	}
	dev_info(&rvm->vdev.dev, "virtio-mmio version %u device %u at %s\n",
		 version, rvm->vdev.id.device, dev_name(&pdev->dev));
	return 0;
}

static void rvm_remove(struct platform_device *pdev)
{
	struct revirt_mmio_device *rvm = platform_get_drvdata(pdev);

	revirt_unregister_device(&rvm->vdev);
}

DEFINE_REVIRT_PLATFORM_REMOVE(rvm);

static const struct of_device_id rvm_of_ids[] = {
	{ .compatible = "virtio,mmio" },
	{ }
};

static const struct acpi_device_id rvm_acpi_ids[] = {
	{ "LNRO0005", },
	{ }
};

static struct platform_driver rvm_driver = {
	.probe = rvm_probe,
	.remove = rvm_platform_remove,
	.driver = {
		.name = "revirt-mmio",
		.of_match_table = rvm_of_ids,
		.acpi_match_table = rvm_acpi_ids,
	},
};

/*
 * Devices described by the device= parameter.  Parameters are parsed
 * before module init: remember them here and register the platform
 * devices in init, so that a load that fails leaves nothing behind.
 */
struct rvm_param_dev {
	unsigned long long size;
	unsigned long long base;
	unsigned int irq;
	struct platform_device *pdev;
};

static struct rvm_param_dev rvm_param_devs[REVIRT_MMIO_MAX_PARAM_DEVICES];
static unsigned int rvm_param_count;

static int rvm_parse_one(const char *spec, struct rvm_param_dev *pd)
{
	char *end;
	int consumed = 0;

	pd->size = memparse(spec, &end);
	if (!pd->size || *end != '@')
		return -EINVAL;
	pd->base = memparse(end + 1, &end);
	if (*end != ':' ||
	    sscanf(end + 1, "%u%n", &pd->irq, &consumed) != 1 ||
	    end[1 + consumed] != '\0' || pd->base + pd->size - 1 < pd->base)
		return -EINVAL;
	return 0;
}

static int rvm_param_set(const char *val, const struct kernel_param *kp)
{
	struct rvm_param_dev pd = {};
	char spec[64];

	if (rvm_param_count >= ARRAY_SIZE(rvm_param_devs)) {
		pr_err("revirt-mmio: at most %u device= parameters\n",
		       REVIRT_MMIO_MAX_PARAM_DEVICES);
		return -ENOSPC;
	}
	strscpy(spec, val, sizeof(spec));
	if (rvm_parse_one(strim(spec), &pd)) {
		pr_err("revirt-mmio: device=%s: expected <size>@<base>:<irq>\n",
		       val);
		return -EINVAL;
	}
	rvm_param_devs[rvm_param_count++] = pd;
	return 0;
}

static int rvm_param_get(char *buf, const struct kernel_param *kp)
{
	unsigned int i;
	int len = 0;

	for (i = 0; i < rvm_param_count; i++)
		len += sysfs_emit_at(buf, len, "0x%llx@0x%llx:%u\n",
				     rvm_param_devs[i].size,
				     rvm_param_devs[i].base,
				     rvm_param_devs[i].irq);
	return len;
}

static const struct kernel_param_ops rvm_param_ops = {
	.set = rvm_param_set,
	.get = rvm_param_get,
};

module_param_cb(device, &rvm_param_ops, NULL, 0400);
MODULE_PARM_DESC(device, "virtio-mmio device: <size>@<base>:<irq>");

static void rvm_unregister_param_devs(void)
{
	unsigned int i;

	for (i = 0; i < rvm_param_count; i++) {
		platform_device_unregister(rvm_param_devs[i].pdev);
		rvm_param_devs[i].pdev = NULL;
	}
}

static int rvm_register_param_devs(void)
{
	struct platform_device *pdev;
	unsigned int i;

	for (i = 0; i < rvm_param_count; i++) {
		struct rvm_param_dev *pd = &rvm_param_devs[i];
		struct resource res[] = {
			DEFINE_RES_MEM(pd->base, pd->size),
			DEFINE_RES_IRQ(pd->irq),
		};

		pdev = platform_device_register_resndata(NULL, "revirt-mmio",
							 PLATFORM_DEVID_AUTO,
							 res, ARRAY_SIZE(res),
							 NULL, 0);
		if (IS_ERR(pdev)) {
			rvm_unregister_param_devs();
			return PTR_ERR(pdev);
		}
		pd->pdev = pdev;
	}
	return 0;
}

static int __init rvm_init(void)
{
	int err;

	err = platform_driver_register(&rvm_driver);
	if (err)
		return err;
	err = rvm_register_param_devs();
	if (err)
		platform_driver_unregister(&rvm_driver);
	return err;
}

static void __exit rvm_exit(void)
{
	rvm_unregister_param_devs();
	platform_driver_unregister(&rvm_driver);
}

module_init(rvm_init);
module_exit(rvm_exit);
MODULE_DESCRIPTION("revirt: virtio-mmio transport, versions 1 and 2");
MODULE_LICENSE("GPL");
