/* SPDX-License-Identifier: GPL-2.0-only */
/* Userspace shim: allocation flags (the shim allocator ignores them). */
#ifndef _SHIM_LINUX_GFP_H
#define _SHIM_LINUX_GFP_H
#include <linux/types.h>

/* The kernel's <linux/gfp.h> makes struct page known (via mmzone.h). */
struct page;

#define GFP_KERNEL	((gfp_t)0x1)
#define GFP_ATOMIC	((gfp_t)0x2)
#endif
