/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * revirt PCI transport, shared by the legacy (0.9.5, I/O BAR 0) and the
 * modern (1.x, vendor capabilities) register layouts.
 */
#ifndef _REVIRT_PCI_H
#define _REVIRT_PCI_H

#include <linux/interrupt.h>
#include <linux/pci.h>
#include <linux/revirt.h>
#include <linux/revirt_ring.h>
#include <uapi/linux/virtio_pci.h>

struct revirt_pci_device;

/* How the device interrupts; tried from the first to the last. */
enum revirt_pci_irq_mode {
	REVIRT_PCI_IRQ_NONE,
	REVIRT_PCI_MSIX_PER_VQ,		/* config vector + one per queue */
	REVIRT_PCI_MSIX_SHARED,		/* config vector + one for all queues */
	REVIRT_PCI_INTX,
};

/**
 * struct revirt_pci_vq - transport state of one virtqueue
 * @vq: the virtqueue
 * @notify_addr: where a kick is written
 * @vector: MSI-X vector of the queue, or VIRTIO_MSI_NO_VECTOR
 * @max_num: the size the device offered for the queue, after a reset
 * @irq_name: name of the per-queue interrupt
 */
struct revirt_pci_vq {
	struct revirt_virtqueue *vq;
	void __iomem *notify_addr;
	u16 vector;
	u16 max_num;
	char irq_name[48];
};

/**
 * struct revirt_pci_layout - what differs between legacy and modern
 * @config: the revirt config ops of the layout
 * @name: "legacy" or "modern", for messages
 * @vring_align: alignment of the used ring
 * @queue_size: select a queue and read its size (0: no such queue)
 * @activate_vq: give the device a queue's addresses and vector
 * @deactivate_vq: take a queue away from the device
 * @set_config_vector: route config interrupts; returns the vector read back
 * @isr: the interrupt status register
 * @decode: the PCI_COMMAND bit without which the registers do not answer
 */
struct revirt_pci_layout {
	const struct revirt_config_ops *config;
	const char *name;
	unsigned int vring_align;
	u16 (*queue_size)(struct revirt_pci_device *rvp, unsigned int index);
	int (*activate_vq)(struct revirt_pci_device *rvp,
			   struct revirt_pci_vq *pvq);
	void (*deactivate_vq)(struct revirt_pci_device *rvp,
			      struct revirt_pci_vq *pvq);
	u16 (*set_config_vector)(struct revirt_pci_device *rvp, u16 vector);
	u8 __iomem *(*isr)(struct revirt_pci_device *rvp);
	u16 decode;
};

/**
 * struct revirt_pci_device - a virtio PCI function driven by revirt
 * @vdev: the revirt device; its release frees this structure
 * @pdev: the PCI function
 * @layout: legacy or modern register access
 * @ioaddr: legacy: BAR 0
 * @common: modern: common configuration structure
 * @common_len: modern: its length (virtio 1.2 added queue_reset to it)
 * @isr: modern: ISR status byte
 * @device_cfg: modern: device-specific configuration, or NULL
 * @device_cfg_len: modern: its length
 * @notify_base: modern: start of the notification area
 * @notify_len: modern: its length
 * @notify_mult: modern: notify_off_multiplier
 * @irq_mode: how interrupts are delivered now
 * @nvectors: MSI-X vectors allocated
 * @vqs: transport state per queue
 * @nvqs: number of queues
 * @config_irq_name: name of the config interrupt
 * @vqs_irq_name: name of the shared queue interrupt
 */
struct revirt_pci_device {
	struct revirt_device vdev;
	struct pci_dev *pdev;
	const struct revirt_pci_layout *layout;

	void __iomem *ioaddr;

	struct virtio_pci_common_cfg __iomem *common;
	size_t common_len;
	u8 __iomem *isr;
	void __iomem *device_cfg;
	size_t device_cfg_len;
	void __iomem *notify_base;
	size_t notify_len;
	u32 notify_mult;

	enum revirt_pci_irq_mode irq_mode;
	unsigned int nvectors;
	struct revirt_pci_vq *vqs;
	unsigned int nvqs;
	char config_irq_name[48];
	char vqs_irq_name[48];
};

static inline struct revirt_pci_device *to_rvp(struct revirt_device *vdev)
{
	return container_of(vdev, struct revirt_pci_device, vdev);
}

/* Shared by both layouts (revirt_pci_common.c). */
int revirt_pci_find_vqs(struct revirt_device *vdev, unsigned int nvqs,
			struct revirt_virtqueue *vqs[],
			const struct revirt_vq_info info[]);
void revirt_pci_del_vqs(struct revirt_device *vdev);
void revirt_pci_synchronize_irqs(struct revirt_pci_device *rvp);
void revirt_pci_synchronize_vq_irq(struct revirt_pci_device *rvp,
				   struct revirt_pci_vq *pvq);
unsigned int revirt_pci_max_vq_size(struct revirt_virtqueue *vq);
bool revirt_pci_notify(struct revirt_virtqueue *vq);
bool revirt_pci_gone(struct revirt_pci_device *rvp, u32 val, u32 ones,
		     const char *reg);
bool revirt_pci_unreachable(struct revirt_pci_device *rvp);

/* Layout probes: set up @rvp or return -ENODEV if the layout is absent. */
int revirt_pci_modern_probe(struct revirt_pci_device *rvp);
int revirt_pci_legacy_probe(struct revirt_pci_device *rvp);

#endif /* _REVIRT_PCI_H */
