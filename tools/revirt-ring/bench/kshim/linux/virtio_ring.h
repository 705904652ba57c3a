/* SPDX-License-Identifier: GPL-2.0-only */
/* Adapter (see ../kshim.h): ring barriers and the ring's entry points. */
#ifndef _KSHIM_LINUX_VIRTIO_RING_H
#define _KSHIM_LINUX_VIRTIO_RING_H
#include_next <linux/virtio_ring.h>
#include <linux/interrupt.h>

struct virtio_device;
struct virtqueue;

/* Same choice as revirt's rv_mb() and friends: see shim_kernel.h. */
static inline void virtio_mb(bool weak_barriers)
{
	if (weak_barriers)
		virt_mb();
	else
		mb();
}

static inline void virtio_rmb(bool weak_barriers)
{
	if (weak_barriers)
		virt_rmb();
	else
		dma_rmb();
}

static inline void virtio_wmb(bool weak_barriers)
{
	if (weak_barriers)
		virt_wmb();
	else
		dma_wmb();
}

#define virtio_store_mb(weak_barriers, p, v) do {			\
	WRITE_ONCE(*(p), (v));						\
	virtio_mb(weak_barriers);					\
} while (0)

struct virtqueue *vring_create_virtqueue(unsigned int index, unsigned int num,
	unsigned int vring_align, struct virtio_device *vdev,
	bool weak_barriers, bool may_reduce_num, bool ctx,
	bool (*notify)(struct virtqueue *vq),
	void (*callback)(struct virtqueue *vq), const char *name);
void vring_del_virtqueue(struct virtqueue *vq);
void vring_transport_features(struct virtio_device *vdev);
irqreturn_t vring_interrupt(int irq, void *vq);
#endif
