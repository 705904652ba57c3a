/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Test-side control of the kernel shims: counters of messages and
 * warnings, the table of live DMA mappings, and fault injection.
 */
#ifndef REVIRT_RING_SHIM_H
#define REVIRT_RING_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/dma-mapping.h>

#define SHIM_MSG_MAX	512

struct shim_stats {
	unsigned long dev_err;		/* dev_err() lines */
	unsigned long dev_warn;		/* dev_warn() lines */
	unsigned long warn_on;		/* WARN_ON_ONCE() hits */
	unsigned long map_calls;	/* dma_map_page() calls */
	unsigned long alloc_calls;	/* kmalloc family, coherent, pages */
	long maps_live;			/* streaming mappings not unmapped */
	long coherent_live;		/* coherent buffers not freed */
	long kmalloc_live;		/* kmalloc blocks and pages not freed */
	unsigned long dma_errors;	/* bad unmaps/frees, see dma_error */
	char last_msg[SHIM_MSG_MAX];	/* text of the last dev_* line */
	char dma_error[SHIM_MSG_MAX];	/* first bad unmap/free */
};

extern struct shim_stats shim;

/* Forget counters and injections; the mapping table must be empty. */
void shim_reset(void);
/* Whether everything mapped/allocated was given back exactly once. */
bool shim_clean(char *why, size_t len);
/* Make the @nth next mapping fail (1 = the next one); 0 disables. */
void shim_fail_map_nth(unsigned long nth);
/* Make the @nth next mapping and every later one fail. */
void shim_fail_map_from(unsigned long nth);
/* Same for allocations (kmalloc family, dma_alloc_coherent, pages). */
void shim_fail_alloc_nth(unsigned long nth);
void shim_fail_alloc_from(unsigned long nth);
/* Do not print dev_* lines (still counted); for long stress loops. */
void shim_quiet(bool quiet);

/*
 * Device-side check: is [addr, addr + len) inside a live streaming mapping
 * made at @addr whose direction allows @dir?  Thread safe.
 */
bool shim_dma_mapped(dma_addr_t addr, size_t len, enum dma_data_direction dir);
/* Is [addr, addr + len) inside coherent memory allocated at @addr? */
bool shim_dma_coherent(dma_addr_t addr, size_t len);

/* The memory a bus address names (see SHIM_DMA_OFFSET). */
static inline void *shim_dma_to_virt(dma_addr_t addr)
{
	return (void *)(uintptr_t)(addr - SHIM_DMA_OFFSET);
}

static inline void *shim_phys_to_virt(u64 addr)
{
	return (void *)(uintptr_t)(addr - SHIM_PHYS_OFFSET);
}

/*
 * The fuzzer's allocator (shim.c, "memory"): every allocation is cut
 * from one arena of @bytes and at most @blocks blocks, emptied by
 * shim_arena_reset() when nothing is live.  Not thread safe.
 */
int shim_arena_init(size_t bytes, unsigned int blocks);
void shim_arena_reset(void);
/* With the arena: is [p, p + len) inside a live block that starts at @p? */
bool shim_heap_live(const void *p, size_t len);

#endif
