/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * revirt split virtqueues.
 *
 * A virtqueue has no shutdown operation: the device stops using buffers
 * when it is reset, and only then does the driver take back what it left
 * on the ring (revirt_vq_detach_unused_buf()) and free the queue.
 *
 * Callers serialise the operations on one virtqueue themselves (a driver
 * lock, or a single context), as with the kernel's own virtqueues.
 */
#ifndef _LINUX_REVIRT_RING_H
#define _LINUX_REVIRT_RING_H

#include <linux/types.h>
#include <linux/list.h>
#include <linux/gfp.h>
#include <linux/interrupt.h>
#include <linux/dma-direction.h>

struct device;
struct page;
struct scatterlist;
struct revirt_device;
struct revirt_virtqueue;

/**
 * struct revirt_virtqueue - the driver's view of a virtqueue
 * @list: entry in the device's list of queues
 * @callback: called when the device used buffers (interrupt context)
 * @name: name for messages
 * @vdev: device the queue belongs to
 * @index: queue number on the device
 * @num_free: descriptors left for new buffers
 * @priv: transport private data
 */
struct revirt_virtqueue {
	struct list_head list;
	void (*callback)(struct revirt_virtqueue *vq);
	const char *name;
	struct revirt_device *vdev;
	unsigned int index;
	unsigned int num_free;
	void *priv;
};

/**
 * struct revirt_vring_config - how a transport wants a ring laid out
 * @index: queue number on the device
 * @num: ring size, a power of two from 1 to 32768
 * @align: alignment of the used ring (4096 for legacy devices)
 * @little_endian: ring fields are little endian (version-1 devices)
 * @event_idx: VIRTIO_RING_F_EVENT_IDX was negotiated
 * @indirect: VIRTIO_RING_F_INDIRECT_DESC was negotiated
 * @weak_barriers: SMP barriers are enough (the device is another CPU)
 * @use_dma_api: the device reaches memory through the DMA API's mappings
 *	(VIRTIO_F_ACCESS_PLATFORM was negotiated, or the platform needs
 *	them); otherwise it is given physical addresses, as the virtio
 *	specification says for a device without that feature
 * @dma_dev: device the ring and the buffers are mapped for
 * @msg_dev: device named in error messages
 * @notify: tell the device that buffers were added; false if it is gone
 */
struct revirt_vring_config {
	unsigned int index;
	unsigned int num;
	unsigned int align;
	bool little_endian;
	bool event_idx;
	bool indirect;
	bool weak_barriers;
	bool use_dma_api;
	struct device *dma_dev;
	struct device *msg_dev;
	bool (*notify)(struct revirt_virtqueue *vq);
};

/* Driver interface. */
int revirt_vq_add_sgs(struct revirt_virtqueue *vq, struct scatterlist *sgs[],
		      unsigned int out_sgs, unsigned int in_sgs,
		      void *data, gfp_t gfp);
int revirt_vq_add_outbuf(struct revirt_virtqueue *vq, struct scatterlist *sg,
			 unsigned int num, void *data, gfp_t gfp);
int revirt_vq_add_inbuf(struct revirt_virtqueue *vq, struct scatterlist *sg,
			unsigned int num, void *data, gfp_t gfp);
bool revirt_vq_kick_prepare(struct revirt_virtqueue *vq);
bool revirt_vq_notify(struct revirt_virtqueue *vq);
bool revirt_vq_kick(struct revirt_virtqueue *vq);
void *revirt_vq_get_buf(struct revirt_virtqueue *vq, unsigned int *len);
void revirt_vq_disable_cb(struct revirt_virtqueue *vq);
bool revirt_vq_enable_cb(struct revirt_virtqueue *vq);
void *revirt_vq_detach_unused_buf(struct revirt_virtqueue *vq);
bool revirt_vq_is_broken(const struct revirt_virtqueue *vq);
void revirt_vq_mark_broken(struct revirt_virtqueue *vq);
unsigned int revirt_vq_get_vring_size(const struct revirt_virtqueue *vq);
void revirt_vq_inject_bad_head(struct revirt_virtqueue *vq);

/* Transport interface. */
struct revirt_virtqueue *
revirt_vring_create(const struct revirt_vring_config *cfg,
		    struct revirt_device *vdev,
		    void (*callback)(struct revirt_virtqueue *vq),
		    const char *name);
void revirt_vring_del(struct revirt_virtqueue *vq);
int revirt_vring_reinit(struct revirt_virtqueue *vq, unsigned int num);
irqreturn_t revirt_vring_interrupt(int irq, void *vq);
dma_addr_t revirt_vring_desc_dma(const struct revirt_virtqueue *vq);
dma_addr_t revirt_vring_avail_dma(const struct revirt_virtqueue *vq);
dma_addr_t revirt_vring_used_dma(const struct revirt_virtqueue *vq);

/* The one place buffers are mapped; fail_function can make it fail. */
dma_addr_t revirt_vring_dma_map(struct device *dma_dev, struct page *page,
				unsigned long offset, size_t len,
				enum dma_data_direction dir);

#endif /* _LINUX_REVIRT_RING_H */
