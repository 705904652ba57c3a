// SPDX-License-Identifier: GPL-2.0-only
/*
 * revirt PCI transport, modern layout (virtio 1.x, 4.1.4).
 *
 * Vendor-specific PCI capabilities point into the BARs:
 *
 *   COMMON  struct virtio_pci_common_cfg: features (select/value pairs),
 *           msix_config, num_queues, device_status, config_generation,
 *           then per selected queue: size, msix vector, enable,
 *           notify_off, desc/driver/device addresses
 *   NOTIFY  kick area: queue N at notify_off(N) * notify_off_multiplier
 *   ISR     one byte, read to acknowledge INTx
 *   DEVICE  device-specific configuration
 *
 * virtio 1.2 appends to COMMON, per selected queue: queue_notify_data
 * (offset 56) and queue_reset (58).
 *
 * Reset: write 0 to device_status, then poll until it reads 0 (the device
 * may take time to finish), bounded; then wait for interrupt handlers.
 * A queue reset alone (VIRTIO_F_RING_RESET) is the same handshake on
 * queue_reset, with the same bound; the queue is then programmed again
 * and enabled as at setup.
 */

#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/module.h>

#include "revirt_pci.h"

/* How long a device may take to complete a reset. */
static unsigned int reset_timeout_ms = 1000;
module_param(reset_timeout_ms, uint, 0644);
MODULE_PARM_DESC(reset_timeout_ms,
		 "Bound on waiting for a modern device to complete a reset");

/* A queue size the device offers beyond this is reduced to save memory. */
#define REVIRT_PCI_MAX_QUEUE_SIZE	1024

/* The virtio 1.2 fields after struct virtio_pci_common_cfg. */
#define RVP_COMMON_QUEUE_RESET		58
#define RVP_COMMON_LEN_QUEUE_RESET	60

/*
 * Poll @reg until it reads 0, bounded by reset_timeout_ms.  All-ones (a
 * status byte, a queue_reset of 0 or 1 cannot be that) ends the wait at
 * once: nothing will complete.  A 0 counts only from a function that
 * still answers: one whose BARs stopped decoding reads 0 in QEMU.
 */
static int rvp_modern_wait_zero(struct revirt_pci_device *rvp,
				void __iomem *reg, bool wide, const char *name)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(reset_timeout_ms);
	u16 val;

	while ((val = wide ? ioread16(reg) : ioread8(reg))) {
		if (revirt_pci_gone(rvp, val, wide ? 0xffff : 0xff, name))
			return -ENODEV;
		if (time_after(jiffies, deadline))
			return revirt_pci_unreachable(rvp) ? -ENODEV : -ETIMEDOUT;
		usleep_range(500, 1000);
	}
	return revirt_pci_unreachable(rvp) ? -ENODEV : 0;
}

static u8 rvp_modern_get_status(struct revirt_device *vdev)
{
	struct revirt_pci_device *rvp = to_rvp(vdev);
	u8 status = ioread8(&rvp->common->device_status);

	/* Not a hot path: a status read also asks whether anybody answers. */
	if (!revirt_pci_gone(rvp, status, 0xff, "device_status"))
		revirt_pci_unreachable(rvp);
	return status;
}

static void rvp_modern_set_status(struct revirt_device *vdev, u8 status)
{
	/* Writing 0 is a reset, which has its own operation. */
	WARN_ON(!status);
	iowrite8(status, &to_rvp(vdev)->common->device_status);
}

static int rvp_modern_reset(struct revirt_device *vdev)
{
	struct revirt_pci_device *rvp = to_rvp(vdev);
	int err;

	iowrite8(0, &rvp->common->device_status);
	err = rvp_modern_wait_zero(rvp, &rvp->common->device_status, false,
				   "device_status");
	if (err)
		return err;
	revirt_pci_synchronize_irqs(rvp);
	return 0;
}

static bool rvp_modern_has_queue_reset(struct revirt_pci_device *rvp)
{
	return rvp->common_len >= RVP_COMMON_LEN_QUEUE_RESET;
}

static u64 rvp_modern_get_features(struct revirt_device *vdev)
{
	struct virtio_pci_common_cfg __iomem *common = to_rvp(vdev)->common;
	u64 features;

	iowrite32(0, &common->device_feature_select);
	features = ioread32(&common->device_feature);
	iowrite32(1, &common->device_feature_select);
	features |= (u64)ioread32(&common->device_feature) << 32;
	/* Offered with a common config too short to hold queue_reset. */
	if (!rvp_modern_has_queue_reset(to_rvp(vdev)))
		features &= ~BIT_ULL(VIRTIO_F_RING_RESET);
	return features;
}

static int rvp_modern_finalize_features(struct revirt_device *vdev)
{
	struct virtio_pci_common_cfg __iomem *common = to_rvp(vdev)->common;

	if (!revirt_has_feature(vdev, VIRTIO_F_VERSION_1)) {
		dev_err(&vdev->dev, "modern device needs VIRTIO_F_VERSION_1 (features_mask bit 32)\n");
		return -EINVAL;
	}
	iowrite32(0, &common->guest_feature_select);
	iowrite32(lower_32_bits(vdev->features), &common->guest_feature);
	iowrite32(1, &common->guest_feature_select);
	iowrite32(upper_32_bits(vdev->features), &common->guest_feature);
	return 0;
}

static bool rvp_modern_config_ok(struct revirt_pci_device *rvp,
				 unsigned int offset, unsigned int len)
{
	if (rvp->device_cfg && offset + len <= rvp->device_cfg_len &&
	    offset + len >= offset)
		return true;
	dev_err_ratelimited(&rvp->vdev.dev,
			    "config access at %u+%u beyond the %zu bytes of the device\n",
			    offset, len, rvp->device_cfg_len);
	return false;
}

/* Accesses of the field's own width: the device may update it at once. */
static void rvp_modern_get(struct revirt_device *vdev, unsigned int offset,
			   void *buf, unsigned int len)
{
	struct revirt_pci_device *rvp = to_rvp(vdev);
	void __iomem *p = rvp->device_cfg + offset;
	__le16 v16;
	__le32 v32;
	unsigned int i;

	if (!rvp_modern_config_ok(rvp, offset, len)) {
		memset(buf, 0, len);
		return;
	}
	switch (len) {
	case 2:
		v16 = cpu_to_le16(ioread16(p));
		memcpy(buf, &v16, 2);
		break;
	case 4:
		v32 = cpu_to_le32(ioread32(p));
		memcpy(buf, &v32, 4);
		break;
	case 8:
		v32 = cpu_to_le32(ioread32(p));
		memcpy(buf, &v32, 4);
		v32 = cpu_to_le32(ioread32(p + 4));
		memcpy(buf + 4, &v32, 4);
		break;
	default:
		for (i = 0; i < len; i++)
			((u8 *)buf)[i] = ioread8(p + i);
	}
}

static void rvp_modern_set(struct revirt_device *vdev, unsigned int offset,
			   const void *buf, unsigned int len)
{
	struct revirt_pci_device *rvp = to_rvp(vdev);
	void __iomem *p = rvp->device_cfg + offset;
	__le16 v16;
	__le32 v32;
	unsigned int i;

	if (!rvp_modern_config_ok(rvp, offset, len))
		return;
	switch (len) {
	case 2:
		memcpy(&v16, buf, 2);
		iowrite16(le16_to_cpu(v16), p);
		break;
	case 4:
		memcpy(&v32, buf, 4);
		iowrite32(le32_to_cpu(v32), p);
		break;
	default:
		for (i = 0; i < len; i++)
			iowrite8(((const u8 *)buf)[i], p + i);
	}
}

static u32 rvp_modern_generation(struct revirt_device *vdev)
{
	return ioread8(&to_rvp(vdev)->common->config_generation);
}

static u16 rvp_modern_queue_size(struct revirt_pci_device *rvp,
				 unsigned int index)
{
	struct virtio_pci_common_cfg __iomem *common = rvp->common;
	u16 num;

	if (index >= ioread16(&common->num_queues))
		return 0;
	iowrite16(index, &common->queue_select);
	num = ioread16(&common->queue_size);
	if (!num || ioread16(&common->queue_enable))
		return 0;
	/* Split rings are a power of two; the driver may offer fewer. */
	num = min_t(u16, num, REVIRT_PCI_MAX_QUEUE_SIZE);
	return rounddown_pow_of_two(num);
}

static void rvp_modern_write64(u64 val, __le32 __iomem *lo, __le32 __iomem *hi)
{
	iowrite32(lower_32_bits(val), lo);
	iowrite32(upper_32_bits(val), hi);
}

static int rvp_modern_activate_vq(struct revirt_pci_device *rvp,
				  struct revirt_pci_vq *pvq)
{
	struct virtio_pci_common_cfg __iomem *common = rvp->common;
	struct revirt_virtqueue *vq = pvq->vq;
	size_t off;

	iowrite16(vq->index, &common->queue_select);
	iowrite16(revirt_vq_get_vring_size(vq), &common->queue_size);
	rvp_modern_write64(revirt_vring_desc_dma(vq), &common->queue_desc_lo,
			   &common->queue_desc_hi);
	rvp_modern_write64(revirt_vring_avail_dma(vq), &common->queue_avail_lo,
			   &common->queue_avail_hi);
	rvp_modern_write64(revirt_vring_used_dma(vq), &common->queue_used_lo,
			   &common->queue_used_hi);

	if (pvq->vector != VIRTIO_MSI_NO_VECTOR) {
		iowrite16(pvq->vector, &common->queue_msix_vector);
		if (ioread16(&common->queue_msix_vector) != pvq->vector)
			return -EBUSY;
	}

	off = (size_t)ioread16(&common->queue_notify_off) * rvp->notify_mult;
	if (off + sizeof(u16) > rvp->notify_len) {
		dev_err(&rvp->vdev.dev, "queue %u notify offset %zu beyond the %zu-byte area\n",
			vq->index, off, rvp->notify_len);
		return -EINVAL;
	}
	pvq->notify_addr = rvp->notify_base + off;
	iowrite16(1, &common->queue_enable);
	return 0;
}

static void rvp_modern_deactivate_vq(struct revirt_pci_device *rvp,
				     struct revirt_pci_vq *pvq)
{
	/* The reset before this disabled the queue; only unroute its vector. */
	if (pvq->vector == VIRTIO_MSI_NO_VECTOR)
		return;
	iowrite16(pvq->vq->index, &rvp->common->queue_select);
	iowrite16(VIRTIO_MSI_NO_VECTOR, &rvp->common->queue_msix_vector);
}

static int rvp_modern_reset_vq(struct revirt_virtqueue *vq)
{
	struct revirt_pci_device *rvp = to_rvp(vq->vdev);
	void __iomem *reset = (void __iomem *)rvp->common +
			      RVP_COMMON_QUEUE_RESET;
	int err;

	iowrite16(vq->index, &rvp->common->queue_select);
	iowrite16(1, reset);
	err = rvp_modern_wait_zero(rvp, reset, true, "queue_reset");
	if (err)
		return err;
	revirt_pci_synchronize_vq_irq(rvp, vq->priv);
	return 0;
}

/* The device forgot the queue's size, addresses and vector: all again. */
static int rvp_modern_enable_vq(struct revirt_virtqueue *vq)
{
	return rvp_modern_activate_vq(to_rvp(vq->vdev), vq->priv);
}

static u16 rvp_modern_set_config_vector(struct revirt_pci_device *rvp,
					u16 vector)
{
	iowrite16(vector, &rvp->common->msix_config);
	return ioread16(&rvp->common->msix_config);
}

static u8 __iomem *rvp_modern_isr(struct revirt_pci_device *rvp)
{
	return rvp->isr;
}

static const struct revirt_config_ops rvp_modern_config_ops = {
	.get = rvp_modern_get,
	.set = rvp_modern_set,
	.generation = rvp_modern_generation,
	.get_status = rvp_modern_get_status,
	.set_status = rvp_modern_set_status,
	.reset = rvp_modern_reset,
	.get_features = rvp_modern_get_features,
	.finalize_features = rvp_modern_finalize_features,
	.find_vqs = revirt_pci_find_vqs,
	.del_vqs = revirt_pci_del_vqs,
	.reset_vq = rvp_modern_reset_vq,
	.enable_vq = rvp_modern_enable_vq,
	.max_vq_size = revirt_pci_max_vq_size,
};

static const struct revirt_pci_layout rvp_modern_layout = {
	.config = &rvp_modern_config_ops,
	.name = "modern",
	.vring_align = SMP_CACHE_BYTES,
	.queue_size = rvp_modern_queue_size,
	.activate_vq = rvp_modern_activate_vq,
	.deactivate_vq = rvp_modern_deactivate_vq,
	.set_config_vector = rvp_modern_set_config_vector,
	.isr = rvp_modern_isr,
	.decode = PCI_COMMAND_MEMORY,
};

/* One capability found in config space. */
struct rvp_cap {
	u8 bar;
	u32 offset;
	u32 length;
	int pos;
};

static int rvp_find_cap(struct pci_dev *pdev, u8 type, struct rvp_cap *cap)
{
	int pos;

	for (pos = pci_find_capability(pdev, PCI_CAP_ID_VNDR); pos > 0;
	     pos = pci_find_next_capability(pdev, pos, PCI_CAP_ID_VNDR)) {
		u8 cfg_type, bar;

		pci_read_config_byte(pdev, pos + offsetof(struct virtio_pci_cap,
							  cfg_type), &cfg_type);
		pci_read_config_byte(pdev, pos + offsetof(struct virtio_pci_cap,
							  bar), &bar);
		if (cfg_type != type || bar > PCI_STD_NUM_BARS - 1 ||
		    !pci_resource_len(pdev, bar))
			continue;
		cap->bar = bar;
		cap->pos = pos;
		pci_read_config_dword(pdev, pos + offsetof(struct virtio_pci_cap,
							   offset), &cap->offset);
		pci_read_config_dword(pdev, pos + offsetof(struct virtio_pci_cap,
							   length), &cap->length);
		return 0;
	}
	return -ENODEV;
}

/* Map the part of a BAR a capability describes, checked against the BAR. */
static void __iomem *rvp_map_cap(struct revirt_pci_device *rvp,
				 const struct rvp_cap *cap, size_t minlen)
{
	struct pci_dev *pdev = rvp->pdev;
	void __iomem *const *table;
	u64 end = (u64)cap->offset + cap->length;

	if (cap->length < minlen || end > pci_resource_len(pdev, cap->bar)) {
		dev_err(&pdev->dev, "revirt-pci: capability at 0x%x does not fit BAR %u\n",
			cap->pos, cap->bar);
		return NULL;
	}
	table = pcim_iomap_table(pdev);
	if (!table || !table[cap->bar])
		return NULL;
	return table[cap->bar] + cap->offset;
}

static int rvp_modern_map(struct revirt_pci_device *rvp, struct rvp_cap *common,
			  struct rvp_cap *notify, struct rvp_cap *isr,
			  struct rvp_cap *device, bool has_device)
{
	struct pci_dev *pdev = rvp->pdev;
	int bars = BIT(common->bar) | BIT(notify->bar) | BIT(isr->bar);
	int err;

	if (has_device)
		bars |= BIT(device->bar);
	err = pcim_iomap_regions(pdev, bars, "revirt-pci");
	if (err)
		return err;

	rvp->common = rvp_map_cap(rvp, common,
				  sizeof(struct virtio_pci_common_cfg));
	rvp->common_len = common->length;
	rvp->isr = rvp_map_cap(rvp, isr, 1);
	rvp->notify_base = rvp_map_cap(rvp, notify, sizeof(u16));
	rvp->notify_len = notify->length;
	if (has_device) {
		rvp->device_cfg = rvp_map_cap(rvp, device, 0);
		rvp->device_cfg_len = device->length;
	}
	if (!rvp->common || !rvp->isr || !rvp->notify_base ||
	    (has_device && !rvp->device_cfg))
		return -EINVAL;
	return 0;
}

/**
 * revirt_pci_modern_probe - set up a device through its modern interface
 * @rvp: the device
 *
 * Return: 0, -ENODEV if the function has no modern interface, or another
 * error.
 */
int revirt_pci_modern_probe(struct revirt_pci_device *rvp)
{
	struct pci_dev *pdev = rvp->pdev;
	struct rvp_cap common, notify, isr, device;
	bool has_device;
	int err;

	if (rvp_find_cap(pdev, VIRTIO_PCI_CAP_COMMON_CFG, &common) ||
	    rvp_find_cap(pdev, VIRTIO_PCI_CAP_NOTIFY_CFG, &notify) ||
	    rvp_find_cap(pdev, VIRTIO_PCI_CAP_ISR_CFG, &isr))
		return -ENODEV;
	has_device = !rvp_find_cap(pdev, VIRTIO_PCI_CAP_DEVICE_CFG, &device);
	pci_read_config_dword(pdev, notify.pos +
			      offsetof(struct virtio_pci_notify_cap,
				       notify_off_multiplier),
			      &rvp->notify_mult);

	err = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (err)
		err = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(32));
	if (err)
		return err;

	err = rvp_modern_map(rvp, &common, &notify, &isr, &device, has_device);
	if (err)
		return err;

	/* Modern-only functions encode the device id in the PCI device id. */
	if (pdev->device >= 0x1040)
		rvp->vdev.id.device = pdev->device - 0x1040;
	else
		rvp->vdev.id.device = pdev->subsystem_device;
	rvp->vdev.id.vendor = pdev->subsystem_vendor;
	rvp->layout = &rvp_modern_layout;
	return 0;
}
