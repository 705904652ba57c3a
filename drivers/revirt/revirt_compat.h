/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The differences between the kernels revirt builds for (6.1 and 6.12).
 *
 * Every test of LINUX_VERSION_CODE in revirt is in this file; the code
 * uses what it defines and has no #if of its own.  Each helper says which
 * kernel changed the interface it hides.
 *
 * The block layer moved the queue limits into blk_mq_alloc_disk() (6.9)
 * and the write cache flags into the limits (6.11): a block driver
 * describes its queue in struct revirt_blk_limits and lets
 * revirt_blk_alloc_disk() apply it the way the kernel wants.
 */
#ifndef _REVIRT_COMPAT_H
#define _REVIRT_COMPAT_H

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/build_bug.h>
#include <linux/device.h>
#include <linux/platform_device.h>
#include <linux/version.h>
#include <linux/vmstat.h>

/**
 * struct revirt_blk_limits - the queue limits a revirt block driver sets
 * @logical_block_size: bytes, a power of two from 512 to PAGE_SIZE
 * @physical_block_size: bytes
 * @io_min: minimum I/O size without penalty, bytes (0: not given)
 * @io_opt: optimal I/O size, bytes (0: not given)
 * @alignment_offset: bytes
 * @max_hw_sectors: largest request, 512-byte sectors
 * @max_segments: scatter-gather entries of a request
 * @max_segment_size: bytes of one entry
 * @max_discard_sectors: 0 if discard is not supported
 * @max_discard_segments: ranges in one discard request
 * @discard_granularity: bytes
 * @max_write_zeroes_sectors: 0 if write-zeroes is not supported
 * @write_cache: the device has a volatile write cache (flushes are sent)
 */
struct revirt_blk_limits {
	unsigned int logical_block_size;
	unsigned int physical_block_size;
	unsigned int io_min;
	unsigned int io_opt;
	unsigned int alignment_offset;
	unsigned int max_hw_sectors;
	unsigned short max_segments;
	unsigned int max_segment_size;
	unsigned int max_discard_sectors;
	unsigned short max_discard_segments;
	unsigned int discard_granularity;
	unsigned int max_write_zeroes_sectors;
	bool write_cache;
};

/*
 * BLK_FEAT_WRITE_CACHE (6.11) marks the kernels whose blk_mq_alloc_disk()
 * takes the limits; Debian ships 6.1 and 6.12, on either side of it.
 */
#ifndef BLK_FEAT_WRITE_CACHE

static inline void revirt_blk_apply_limits(struct request_queue *q,
					   const struct revirt_blk_limits *lim)
{
	blk_queue_logical_block_size(q, lim->logical_block_size);
	blk_queue_physical_block_size(q, lim->physical_block_size);
	if (lim->io_min)
		blk_queue_io_min(q, lim->io_min);
	if (lim->io_opt)
		blk_queue_io_opt(q, lim->io_opt);
	blk_queue_alignment_offset(q, lim->alignment_offset);
	blk_queue_max_hw_sectors(q, lim->max_hw_sectors);
	blk_queue_max_segments(q, lim->max_segments);
	blk_queue_max_segment_size(q, lim->max_segment_size);
	if (lim->max_discard_sectors) {
		blk_queue_max_discard_sectors(q, lim->max_discard_sectors);
		blk_queue_max_discard_segments(q, lim->max_discard_segments);
		q->limits.discard_granularity = lim->discard_granularity;
	}
	if (lim->max_write_zeroes_sectors)
		blk_queue_max_write_zeroes_sectors(q,
						   lim->max_write_zeroes_sectors);
	/* FUA is emulated by the block layer with a flush after the write. */
	blk_queue_write_cache(q, lim->write_cache, false);
}

/**
 * revirt_blk_alloc_disk - allocate a blk-mq disk with its queue limits
 * @set: the tag set
 * @lim: the limits
 * @queuedata: the driver's data, in the queue's queuedata
 *
 * Return: the disk, or an ERR_PTR().
 */
static inline struct gendisk *
revirt_blk_alloc_disk(struct blk_mq_tag_set *set,
		      const struct revirt_blk_limits *lim, void *queuedata)
{
	struct gendisk *disk = blk_mq_alloc_disk(set, queuedata);

	if (!IS_ERR(disk))
		revirt_blk_apply_limits(disk->queue, lim);
	return disk;
}

#else /* limits and features are given at allocation */

static inline struct gendisk *
revirt_blk_alloc_disk(struct blk_mq_tag_set *set,
		      const struct revirt_blk_limits *lim, void *queuedata)
{
	struct queue_limits ql = {
		.logical_block_size = lim->logical_block_size,
		.physical_block_size = lim->physical_block_size,
		.io_min = lim->io_min,
		.io_opt = lim->io_opt,
		.alignment_offset = lim->alignment_offset,
		.max_hw_sectors = lim->max_hw_sectors,
		.max_segments = lim->max_segments,
		.max_segment_size = lim->max_segment_size,
		.max_hw_discard_sectors = lim->max_discard_sectors,
		.max_discard_segments = lim->max_discard_segments,
		.discard_granularity = lim->discard_granularity,
		.max_write_zeroes_sectors = lim->max_write_zeroes_sectors,
	};

	if (lim->write_cache)
		ql.features |= BLK_FEAT_WRITE_CACHE;
	return blk_mq_alloc_disk(set, &ql, queuedata);
}

#endif /* BLK_FEAT_WRITE_CACHE */

/*
 * struct bus_type: match() takes a const driver since 6.11, uevent() a
 * const device since 6.3.  The bus core writes both callbacks with these
 * qualifiers; the code of the callbacks reads through them only.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
#define REVIRT_BUS_MATCH_CONST const
#else
#define REVIRT_BUS_MATCH_CONST
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define REVIRT_BUS_UEVENT_CONST const
#else
#define REVIRT_BUS_UEVENT_CONST
#endif

/*
 * The bus itself: the driver core takes a const struct bus_type (in
 * bus_register(), struct device and struct device_driver) since 6.4, so
 * the bus can live in read-only memory there.  Before, bus_register()
 * stores its private data in the bus, which must stay writable.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define REVIRT_BUS_TYPE const struct bus_type
#else
#define REVIRT_BUS_TYPE struct bus_type
#endif

/*
 * struct platform_driver: remove() returns void since 6.11 (before, it
 * returned an int that the platform bus ignored).  A transport writes
 * void prefix_remove() and DEFINE_REVIRT_PLATFORM_REMOVE(prefix); then
 * uses prefix_platform_remove as its .remove.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
#define DEFINE_REVIRT_PLATFORM_REMOVE(prefix)				\
static void prefix##_platform_remove(struct platform_device *pdev)	\
{									\
	prefix##_remove(pdev);						\
}									\
static_assert(true)
#else
#define DEFINE_REVIRT_PLATFORM_REMOVE(prefix)				\
static int prefix##_platform_remove(struct platform_device *pdev)	\
{									\
	prefix##_remove(pdev);						\
	return 0;							\
}									\
static_assert(true)
#endif

/*
 * The vm event BALLOON_MIGRATE exists only with CONFIG_BALLOON_COMPACTION
 * (both Debian kernels have it); the balloon driver counts a migrated page
 * through this helper, a no-op without compaction.
 */
#ifdef CONFIG_BALLOON_COMPACTION
static inline void revirt_count_balloon_migrate(void)
{
	__count_vm_event(BALLOON_MIGRATE);
}
#else
static inline void revirt_count_balloon_migrate(void)
{
}
#endif

/*
 * The hvc layer (drivers/tty/hvc) keeps its interface in a header of its
 * own directory, which an out-of-tree build does not have: revirt_console
 * declares the part it uses here.  Only struct hv_ops is shared with the
 * kernel, and revirt sets three of its members; the others are declared
 * for their place in the structure only.  get_chars() and put_chars() take
 * u8 and size_t and return ssize_t since 6.8 (char, int and int before).
 * hvc_remove() returns int on 6.1 and nothing on 6.12; revirt never reads
 * the result, so it is declared void for both.
 */
struct hvc_struct;

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
#define REVIRT_HVC_CHAR		u8
#define REVIRT_HVC_COUNT	size_t
#define REVIRT_HVC_RET		ssize_t
typedef ssize_t (*revirt_hvc_get_chars_t)(u32 vtermno, u8 *buf, size_t count);
typedef ssize_t (*revirt_hvc_put_chars_t)(u32 vtermno, const u8 *buf,
					  size_t count);
#else
#define REVIRT_HVC_CHAR		char
#define REVIRT_HVC_COUNT	int
#define REVIRT_HVC_RET		int
typedef int (*revirt_hvc_get_chars_t)(u32 vtermno, char *buf, int count);
typedef int (*revirt_hvc_put_chars_t)(u32 vtermno, const char *buf, int count);
#endif

struct hv_ops {
	revirt_hvc_get_chars_t get_chars;
	revirt_hvc_put_chars_t put_chars;
	int (*flush)(u32 vtermno, bool wait);
	int (*notifier_add)(struct hvc_struct *hp, int irq);
	void (*notifier_del)(struct hvc_struct *hp, int irq);
	void (*notifier_hangup)(struct hvc_struct *hp, int irq);
	int (*tiocmget)(struct hvc_struct *hp);
	int (*tiocmset)(struct hvc_struct *hp, unsigned int set,
			unsigned int clear);
	void *dtr_rts;
};

struct hvc_struct *hvc_alloc(u32 vtermno, int data, const struct hv_ops *ops,
			     int outbuf_size);
void hvc_remove(struct hvc_struct *hp);
void hvc_kick(void);

#endif /* _REVIRT_COMPAT_H */
