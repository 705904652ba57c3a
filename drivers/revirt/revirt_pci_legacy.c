// SPDX-License-Identifier: GPL-2.0-only
/*
 * revirt PCI transport, legacy layout (virtio 0.9.5; virtio 1.x, 4.1.4.8).
 *
 * All registers are in I/O BAR 0, in the guest's byte order:
 *
 *   0x00  host features (32 bits)      0x04  guest features (32 bits)
 *   0x08  queue PFN (32 bits)          0x0c  queue size (16 bits)
 *   0x0e  queue select (16 bits)       0x10  queue notify (16 bits)
 *   0x12  status (8 bits)              0x13  ISR (8 bits, read clears)
 *   with MSI-X enabled:
 *   0x14  config vector (16 bits)      0x16  queue vector (16 bits)
 *   then the device-specific config (at 0x14, or 0x18 with MSI-X).
 *
 * Reset: write 0 to status; reading it back flushes the write (the spec
 * asks for nothing more of a legacy device).  Queue memory is given as a
 * 4 KiB page frame number, so it must sit below 2^44.
 */

#include <linux/module.h>

#include "revirt_pci.h"

static u8 rvp_legacy_get_status(struct revirt_device *vdev)
{
	struct revirt_pci_device *rvp = to_rvp(vdev);
	u8 status = ioread8(rvp->ioaddr + VIRTIO_PCI_STATUS);

	if (!revirt_pci_gone(rvp, status, 0xff, "status"))
		revirt_pci_unreachable(rvp);
	return status;
}

static void rvp_legacy_set_status(struct revirt_device *vdev, u8 status)
{
	WARN_ON(!status);
	iowrite8(status, to_rvp(vdev)->ioaddr + VIRTIO_PCI_STATUS);
}

static int rvp_legacy_reset(struct revirt_device *vdev)
{
	struct revirt_pci_device *rvp = to_rvp(vdev);

	iowrite8(0, rvp->ioaddr + VIRTIO_PCI_STATUS);
	/* Flush the write: the device has reset when it completes. */
	if (revirt_pci_gone(rvp, ioread8(rvp->ioaddr + VIRTIO_PCI_STATUS),
			    0xff, "status") || revirt_pci_unreachable(rvp))
		return -ENODEV;
	revirt_pci_synchronize_irqs(rvp);
	return 0;
}

static u64 rvp_legacy_get_features(struct revirt_device *vdev)
{
	return ioread32(to_rvp(vdev)->ioaddr + VIRTIO_PCI_HOST_FEATURES);
}

static int rvp_legacy_finalize_features(struct revirt_device *vdev)
{
	iowrite32(lower_32_bits(vdev->features),
		  to_rvp(vdev)->ioaddr + VIRTIO_PCI_GUEST_FEATURES);
	return 0;
}

static void __iomem *rvp_legacy_config(struct revirt_pci_device *rvp,
				       unsigned int offset)
{
	return rvp->ioaddr + VIRTIO_PCI_CONFIG_OFF(rvp->pdev->msix_enabled) +
	       offset;
}

/* Legacy config is in guest byte order: bytes are copied as they are. */
static void rvp_legacy_get(struct revirt_device *vdev, unsigned int offset,
			   void *buf, unsigned int len)
{
	void __iomem *p = rvp_legacy_config(to_rvp(vdev), offset);
	unsigned int i;

	for (i = 0; i < len; i++)
		((u8 *)buf)[i] = ioread8(p + i);
}

static void rvp_legacy_set(struct revirt_device *vdev, unsigned int offset,
			   const void *buf, unsigned int len)
{
	void __iomem *p = rvp_legacy_config(to_rvp(vdev), offset);
	unsigned int i;

	for (i = 0; i < len; i++)
		iowrite8(((const u8 *)buf)[i], p + i);
}

static u32 rvp_legacy_generation(struct revirt_device *vdev)
{
	return 0;
}

static u16 rvp_legacy_queue_size(struct revirt_pci_device *rvp,
				 unsigned int index)
{
	u16 num;

	iowrite16(index, rvp->ioaddr + VIRTIO_PCI_QUEUE_SEL);
	num = ioread16(rvp->ioaddr + VIRTIO_PCI_QUEUE_NUM);
	if (!num || ioread32(rvp->ioaddr + VIRTIO_PCI_QUEUE_PFN))
		return 0;
	if (!is_power_of_2(num)) {
		dev_err(&rvp->vdev.dev, "queue %u size %u is not a power of two\n",
			index, num);
		return 0;
	}
	return num;
}

static int rvp_legacy_activate_vq(struct revirt_pci_device *rvp,
				  struct revirt_pci_vq *pvq)
{
	struct revirt_virtqueue *vq = pvq->vq;
	u64 pfn = revirt_vring_desc_dma(vq) >> VIRTIO_PCI_QUEUE_ADDR_SHIFT;

	if (pfn > U32_MAX)
		return -E2BIG;
	pvq->notify_addr = rvp->ioaddr + VIRTIO_PCI_QUEUE_NOTIFY;
	iowrite16(vq->index, rvp->ioaddr + VIRTIO_PCI_QUEUE_SEL);
	if (pvq->vector != VIRTIO_MSI_NO_VECTOR) {
		iowrite16(pvq->vector, rvp->ioaddr + VIRTIO_MSI_QUEUE_VECTOR);
		if (ioread16(rvp->ioaddr + VIRTIO_MSI_QUEUE_VECTOR) !=
		    pvq->vector)
			return -EBUSY;
	}
	iowrite32(pfn, rvp->ioaddr + VIRTIO_PCI_QUEUE_PFN);
	return 0;
}

static void rvp_legacy_deactivate_vq(struct revirt_pci_device *rvp,
				     struct revirt_pci_vq *pvq)
{
	iowrite16(pvq->vq->index, rvp->ioaddr + VIRTIO_PCI_QUEUE_SEL);
	if (rvp->pdev->msix_enabled) {
		iowrite16(VIRTIO_MSI_NO_VECTOR,
			  rvp->ioaddr + VIRTIO_MSI_QUEUE_VECTOR);
		ioread8(rvp->ioaddr + VIRTIO_PCI_ISR);
	}
	iowrite32(0, rvp->ioaddr + VIRTIO_PCI_QUEUE_PFN);
}

static u16 rvp_legacy_set_config_vector(struct revirt_pci_device *rvp,
					u16 vector)
{
	iowrite16(vector, rvp->ioaddr + VIRTIO_MSI_CONFIG_VECTOR);
	return ioread16(rvp->ioaddr + VIRTIO_MSI_CONFIG_VECTOR);
}

static u8 __iomem *rvp_legacy_isr(struct revirt_pci_device *rvp)
{
	return rvp->ioaddr + VIRTIO_PCI_ISR;
}

static const struct revirt_config_ops rvp_legacy_config_ops = {
	.get = rvp_legacy_get,
	.set = rvp_legacy_set,
	.generation = rvp_legacy_generation,
	.get_status = rvp_legacy_get_status,
	.set_status = rvp_legacy_set_status,
	.reset = rvp_legacy_reset,
	.get_features = rvp_legacy_get_features,
	.finalize_features = rvp_legacy_finalize_features,
	.find_vqs = revirt_pci_find_vqs,
	.del_vqs = revirt_pci_del_vqs,
};

static const struct revirt_pci_layout rvp_legacy_layout = {
	.config = &rvp_legacy_config_ops,
	.name = "legacy",
	.vring_align = VIRTIO_PCI_VRING_ALIGN,
	.queue_size = rvp_legacy_queue_size,
	.activate_vq = rvp_legacy_activate_vq,
	.deactivate_vq = rvp_legacy_deactivate_vq,
	.set_config_vector = rvp_legacy_set_config_vector,
	.isr = rvp_legacy_isr,
	.decode = PCI_COMMAND_IO,
};

/**
 * revirt_pci_legacy_probe - set up a device through its legacy interface
 * @rvp: the device
 *
 * Return: 0, -ENODEV if BAR 0 is not a legacy I/O region, or another error.
 */
int revirt_pci_legacy_probe(struct revirt_pci_device *rvp)
{
	struct pci_dev *pdev = rvp->pdev;
	int err;

	if (!(pci_resource_flags(pdev, 0) & IORESOURCE_IO))
		return -ENODEV;
	err = dma_set_mask(&pdev->dev, DMA_BIT_MASK(64));
	if (!err)
		err = dma_set_coherent_mask(&pdev->dev,
					    DMA_BIT_MASK(32 + VIRTIO_PCI_QUEUE_ADDR_SHIFT));
	if (err)
		return err;
	err = pcim_iomap_regions(pdev, BIT(0), "revirt-pci");
	if (err)
		return err;
	rvp->ioaddr = pcim_iomap_table(pdev)[0];

	rvp->vdev.id.device = pdev->subsystem_device;
	rvp->vdev.id.vendor = pdev->subsystem_vendor;
	rvp->layout = &rvp_legacy_layout;
	return 0;
}
