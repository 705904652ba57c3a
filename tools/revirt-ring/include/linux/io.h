/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Userspace shim: physical addresses.  As a "page" is its virtual address
 * (shim_kernel.h), a physical address is the virtual address plus
 * SHIM_PHYS_OFFSET: 0 for the tests, whose device tells the two kinds
 * apart by the DMA API's mapping table, an offset of its own for the
 * fuzzer.
 */
#ifndef _SHIM_LINUX_IO_H
#define _SHIM_LINUX_IO_H
#include <shim_kernel.h>

typedef u64 phys_addr_t;

#define virt_to_phys(p)		((phys_addr_t)(uintptr_t)(p) + SHIM_PHYS_OFFSET)
#define page_to_phys(pg)	((phys_addr_t)(uintptr_t)(pg) + SHIM_PHYS_OFFSET)
#endif
