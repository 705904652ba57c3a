// SPDX-License-Identifier: GPL-2.0-only
/*
 * make bench-ring: the kernel facilities both rings call, made cheap and
 * identical for both: the DMA API maps to the virtual address and tracks
 * nothing, the allocator is malloc.  (The test shim, ../shim.c, checks
 * every mapping instead, which would dominate a benchmark.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/dma-mapping.h>
#include <linux/gfp.h>
#include <linux/slab.h>


void shim_dev_printk(int level, const struct device *dev, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", dev && dev->name ? dev->name : "?");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

void shim_warn(bool *warned, const char *file, int line, const char *cond)
{
	fprintf(stderr, "WARNING: %s:%d: %s\n", file, line, cond);
	abort();
}

dma_addr_t dma_map_page(struct device *dev, struct page *page,
			unsigned long offset, size_t size,
			enum dma_data_direction dir)
{
	return (dma_addr_t)(uintptr_t)page + offset;
}

void dma_unmap_page(struct device *dev, dma_addr_t addr, size_t size,
		    enum dma_data_direction dir)
{
}

void *dma_alloc_coherent(struct device *dev, size_t size,
			 dma_addr_t *dma_handle, gfp_t gfp)
{
	void *p = aligned_alloc(PAGE_SIZE, PAGE_ALIGN(size));

	if (p) {
		memset(p, 0, PAGE_ALIGN(size));
		*dma_handle = (dma_addr_t)(uintptr_t)p;
	}
	return p;
}

void dma_free_coherent(struct device *dev, size_t size, void *cpu_addr,
		       dma_addr_t dma_handle)
{
	free(cpu_addr);
}

void *alloc_pages_exact(size_t size, gfp_t gfp)
{
	void *p = aligned_alloc(PAGE_SIZE, PAGE_ALIGN(size));

	if (p && (gfp & __GFP_ZERO))
		memset(p, 0, PAGE_ALIGN(size));
	return p;
}

void free_pages_exact(void *p, size_t size)
{
	free(p);
}

void *kmalloc(size_t size, gfp_t gfp)
{
	return gfp & __GFP_ZERO ? calloc(1, size) : malloc(size);
}

void *kzalloc(size_t size, gfp_t gfp)
{
	return calloc(1, size);
}

void *kmalloc_array(size_t n, size_t size, gfp_t gfp)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return kmalloc(n * size, gfp);
}

void *kcalloc(size_t n, size_t size, gfp_t gfp)
{
	return calloc(n, size);
}

void kfree(const void *p)
{
	free((void *)p);
}
