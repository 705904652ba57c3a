// SPDX-License-Identifier: GPL-2.0-only
/*
 * make bench-ring: create and delete a virtqueue of the kernel's own ring
 * (drivers/virtio/virtio_ring.c, built with kshim/) for bench_ring.c,
 * which cannot see the kernel's types.  With @dma the device offers
 * VIRTIO_F_ACCESS_PLATFORM, so the kernel's ring maps every buffer
 * through the DMA API; without, it uses physical addresses.  revirt's
 * ring is set up the same way by bench_ring.c.
 */
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

struct virtqueue *kadapter_create(unsigned int num, bool evt, bool ind,
				  bool dma, bool (*notify)(struct virtqueue *vq),
				  void (*callback)(struct virtqueue *vq));
void kadapter_destroy(struct virtqueue *vq);

static struct device dma_parent = { .name = "bench" };

struct virtqueue *kadapter_create(unsigned int num, bool evt, bool ind,
				  bool dma, bool (*notify)(struct virtqueue *vq),
				  void (*callback)(struct virtqueue *vq))
{
	struct virtio_device *vdev = calloc(1, sizeof(*vdev));

	if (!vdev)
		return NULL;
	vdev->dev.name = "kbench";
	vdev->dev.parent = &dma_parent;
	INIT_LIST_HEAD(&vdev->vqs);
	vdev->features = 1ULL << VIRTIO_F_VERSION_1 |
			 (dma ? 1ULL << VIRTIO_F_ACCESS_PLATFORM : 0) |
			 (evt ? 1ULL << VIRTIO_RING_F_EVENT_IDX : 0) |
			 (ind ? 1ULL << VIRTIO_RING_F_INDIRECT_DESC : 0);
	return vring_create_virtqueue(0, num, 64, vdev, true, false, false,
				      notify, callback, "kbench");
}

void kadapter_destroy(struct virtqueue *vq)
{
	struct virtio_device *vdev = vq->vdev;

	vring_del_virtqueue(vq);
	free(vdev);
}
