/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Userspace shim: the uapi types from the system header, plus the kernel's
 * short names.  Only what revirt_ring.c and its headers use.
 */
#ifndef _SHIM_LINUX_TYPES_H
#define _SHIM_LINUX_TYPES_H

#include_next <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s16 s16;
typedef __s32 s32;
typedef __s64 s64;

typedef u64 dma_addr_t;
typedef unsigned int gfp_t;

struct list_head {
	struct list_head *next, *prev;
};

#endif
