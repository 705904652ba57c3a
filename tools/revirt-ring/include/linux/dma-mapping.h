/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Userspace shim of the DMA API.  A bus address is the virtual address
 * (page + offset); every mapping is recorded by ../shim.c, which checks
 * that it is unmapped exactly once with the same length and direction,
 * and can be told to fail the Nth mapping or allocation.
 */
#ifndef _SHIM_LINUX_DMA_MAPPING_H
#define _SHIM_LINUX_DMA_MAPPING_H
#include <shim_kernel.h>
#include <linux/dma-direction.h>
#include <linux/gfp.h>

#define DMA_MAPPING_ERROR	(~(dma_addr_t)0)

dma_addr_t dma_map_page(struct device *dev, struct page *page,
			unsigned long offset, size_t size,
			enum dma_data_direction dir);
void dma_unmap_page(struct device *dev, dma_addr_t addr, size_t size,
		    enum dma_data_direction dir);
void *dma_alloc_coherent(struct device *dev, size_t size,
			 dma_addr_t *dma_handle, gfp_t gfp);
void dma_free_coherent(struct device *dev, size_t size, void *cpu_addr,
		       dma_addr_t dma_handle);

static inline int dma_mapping_error(struct device *dev, dma_addr_t addr)
{
	(void)dev;
	return addr == DMA_MAPPING_ERROR ? -ENOMEM : 0;
}
#endif
