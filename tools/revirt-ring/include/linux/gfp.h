/* SPDX-License-Identifier: GPL-2.0-only */
/* Userspace shim: allocation flags and page allocation. */
#ifndef _SHIM_LINUX_GFP_H
#define _SHIM_LINUX_GFP_H
#include <linux/types.h>

/* The kernel's <linux/gfp.h> makes struct page known (via mmzone.h). */
struct page;

#define GFP_KERNEL	((gfp_t)0x1)
#define GFP_ATOMIC	((gfp_t)0x2)
#define __GFP_ZERO	((gfp_t)0x100)

/* Whole pages, physically contiguous in the kernel; counted by ../shim.c. */
void *alloc_pages_exact(size_t size, gfp_t gfp);
void free_pages_exact(void *virt, size_t size);
#endif
