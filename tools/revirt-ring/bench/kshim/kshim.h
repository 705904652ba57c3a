/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Adapter that lets the kernel's own drivers/virtio/virtio_ring.c (taken
 * from linux-source-6.1 at benchmark time, never stored here) build in
 * userspace against the same shims as revirt_ring.c, for make bench-ring.
 * Force-included before that file; the headers of this directory stand in
 * for the kernel headers it includes.  Written for this repository from
 * what the file uses; the DMA API, allocator and scatterlists are the
 * ones revirt's ring gets, so both rings pay the same for them.
 */
#ifndef _KSHIM_H
#define _KSHIM_H

#include <shim_kernel.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/types.h>
#include <linux/virtio_byteorder.h>
#include <linux/gfp.h>
#include <linux/io.h>

#define CONFIG_SMP 1
#define __maybe_unused		__attribute__((__unused__))
#define __must_check		__attribute__((__warn_unused_result__))
#define __cold
#define __user
#define __iomem
#define data_race(expr)		(expr)
#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define ALIGN(x, a)		(((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define DIV_ROUND_UP(n, d)	(((n) + (d) - 1) / (d))
#define BIT(n)			(1UL << (n))
#define MODULE_LICENSE(l)	extern int __kshim_license_unused
#define EXPORT_SYMBOL(sym)	extern __typeof__(sym) sym

#define min(a, b)		((a) < (b) ? (a) : (b))
#define max(a, b)		((a) > (b) ? (a) : (b))
#define max_t(t, a, b)		((t)(a) > (t)(b) ? (t)(a) : (t)(b))

#define BUG()			abort()
#define BUG_ON(c)		do { if (unlikely(c)) abort(); } while (0)
#define WARN_ON(c)		WARN_ON_ONCE(c)
#define pr_debug(fmt, ...)	do { } while (0)
#define dev_warn_once(dev, fmt, ...) dev_warn(dev, fmt, ##__VA_ARGS__)

#define __GFP_NOWARN		((gfp_t)0x200)
#define __GFP_HIGHMEM		((gfp_t)0x400)

typedef s64 ktime_t;
#define ktime_get()		((ktime_t)0)
#define ktime_sub(a, b)		((a) - (b))

#define cpu_to_le16(x)		htole16(x)
#define cpu_to_le32(x)		htole32(x)
#define cpu_to_le64(x)		htole64(x)
#define le16_to_cpu(x)		le16toh(x)
#define le32_to_cpu(x)		le32toh(x)
#define le64_to_cpu(x)		le64toh(x)

#include <linux/list.h>
#include <linux/scatterlist.h>

static inline phys_addr_t sg_phys(struct scatterlist *sg)
{
	return page_to_phys(sg_page(sg)) + sg->offset;
}

static inline void list_add_tail(struct list_head *n, struct list_head *head)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

static inline void list_del(struct list_head *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

#define list_for_each_entry(pos, head, member)				\
	for (pos = container_of((head)->next, __typeof__(*pos), member);	\
	     &pos->member != (head);					\
	     pos = container_of(pos->member.next, __typeof__(*pos), member))

#endif
