/* SPDX-License-Identifier: GPL-2.0-only */
/* Adapter (see ../kshim.h): the DMA calls virtio_ring.c makes, on top of
 * the shim's dma_map_page()/dma_unmap_page() that revirt_ring.c uses. */
#ifndef _KSHIM_LINUX_DMA_MAPPING_H
#define _KSHIM_LINUX_DMA_MAPPING_H
#include_next <linux/dma-mapping.h>

static inline dma_addr_t dma_map_single_attrs(struct device *dev, void *p,
					      size_t size,
					      enum dma_data_direction dir,
					      unsigned long attrs)
{
	return dma_map_page(dev, virt_to_page(p), offset_in_page(p), size, dir);
}

static inline void dma_unmap_single_attrs(struct device *dev, dma_addr_t a,
					  size_t size,
					  enum dma_data_direction dir,
					  unsigned long attrs)
{
	dma_unmap_page(dev, a, size, dir);
}

#define dma_map_single(d, p, s, dir) dma_map_single_attrs(d, p, s, dir, 0)
#define dma_unmap_single(d, a, s, dir) dma_unmap_single_attrs(d, a, s, dir, 0)
#define dma_need_sync(d, a)	false
#define dma_max_mapping_size(d)	SIZE_MAX
#define dma_sync_single_range_for_cpu(d, a, o, s, dir) ((void)(d))
#define dma_sync_single_range_for_device(d, a, o, s, dir) ((void)(d))
#endif
