/* SPDX-License-Identifier: GPL-2.0-only */
/* Adapter (see ../kshim.h): feature bits and byte order of a device. */
#ifndef _KSHIM_LINUX_VIRTIO_CONFIG_H
#define _KSHIM_LINUX_VIRTIO_CONFIG_H
#include_next <linux/virtio_config.h>
#include <linux/virtio.h>
#include <linux/virtio_byteorder.h>

struct virtio_config_ops {
	int (*disable_vq_and_reset)(struct virtqueue *vq);
	int (*enable_vq_after_reset)(struct virtqueue *vq);
};

static inline bool virtio_has_feature(const struct virtio_device *vdev,
				      unsigned int fbit)
{
	return vdev->features & (1ULL << fbit);
}

static inline void __virtio_clear_bit(struct virtio_device *vdev,
				      unsigned int fbit)
{
	vdev->features &= ~(1ULL << fbit);
}

/* The quirk is the absence of VIRTIO_F_ACCESS_PLATFORM. */
static inline bool virtio_has_dma_quirk(const struct virtio_device *vdev)
{
	return !virtio_has_feature(vdev, VIRTIO_F_ACCESS_PLATFORM);
}

static inline bool virtio_is_little_endian(struct virtio_device *vdev)
{
	return virtio_has_feature(vdev, VIRTIO_F_VERSION_1) ||
	       virtio_legacy_is_little_endian();
}

#define KSHIM_CONV(bits)						\
static inline u##bits virtio##bits##_to_cpu(struct virtio_device *vdev,	\
					    __virtio##bits val)		\
{									\
	return __virtio##bits##_to_cpu(virtio_is_little_endian(vdev), val); \
}									\
static inline __virtio##bits cpu_to_virtio##bits(struct virtio_device *vdev, \
						 u##bits val)		\
{									\
	return __cpu_to_virtio##bits(virtio_is_little_endian(vdev), val); \
}
KSHIM_CONV(16)
KSHIM_CONV(32)
KSHIM_CONV(64)
#endif
