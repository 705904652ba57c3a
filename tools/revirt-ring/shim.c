// SPDX-License-Identifier: GPL-2.0-only
/*
 * Userspace implementation of the kernel shims used by revirt_ring.c.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sanitizer/asan_interface.h>
#include <linux/dma-mapping.h>
#include <linux/slab.h>
#include "shim.h"

struct shim_stats shim;

#ifdef SHIM_FUZZ
void (*shim_device_hook)(const volatile void *addr);
#endif

/* ---- memory ------------------------------------------------------------ */

/*
 * The fuzzer runs tens of thousands of queues a second.  From malloc(), a
 * ring of a few hundred KiB is fresh pages every time (mmap, page faults,
 * munmap, and LeakSanitizer's stop-the-world checks whenever an input
 * ends with blocks the allocator has not seen freed), which cost more
 * than the ring.  So the fuzzer gives the shim an arena once
 * (shim_arena_init()) and empties it between queues (shim_arena_reset()):
 * blocks are cut one after the other and never reused while the queue
 * lives, every byte not in a live block is poisoned for AddressSanitizer,
 * so an overflow into the gap after a block or a use after free is still
 * caught, and a free of something not allocated aborts here.  The tests
 * keep malloc(), for valgrind's sake.
 */
#define ARENA_GAP	64	/* poisoned bytes after each block */
#define ARENA_FILL	0xbe	/* non-zeroed blocks start with this, as ASan's */

struct arena_block {
	uintptr_t start;
	size_t len;
	bool live;
};

static struct {
	u8 *base, *top, *end;
	struct arena_block *blk;	/* in address order, as cut */
	unsigned int nblk, maxblk;
	unsigned int live;
} arena;

int shim_arena_init(size_t bytes, unsigned int blocks)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	arena.blk = calloc(blocks, sizeof(*arena.blk));
	if (!arena.blk) {
		munmap(p, bytes);
		return -ENOMEM;
	}
	arena.base = p;
	arena.top = p;
	arena.end = arena.base + bytes;
	arena.maxblk = blocks;
	ASAN_POISON_MEMORY_REGION(arena.base, bytes);
	return 0;
}

void shim_arena_reset(void)
{
	if (!arena.base)
		return;
	if (arena.live) {
		fprintf(stderr, "shim: arena emptied with %u blocks live\n",
			arena.live);
		abort();
	}
	/* Only what was cut was ever unpoisoned. */
	ASAN_POISON_MEMORY_REGION(arena.base, arena.top - arena.base);
	arena.top = arena.base;
	arena.nblk = 0;
}

static struct arena_block *arena_find(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	unsigned int lo = 0, hi = arena.nblk;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (arena.blk[mid].start < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < arena.nblk && arena.blk[lo].start == a ? &arena.blk[lo] :
	       NULL;
}

static void *arena_alloc(size_t size, size_t align)
{
	uintptr_t a = ((uintptr_t)arena.top + ARENA_GAP + align - 1) &
		      ~(uintptr_t)(align - 1);
	struct arena_block *b;

	if (!size)
		size = 1;
	if (a + size > (uintptr_t)arena.end || arena.nblk == arena.maxblk) {
		/* Sized for the fuzzer's worst input many times over. */
		fprintf(stderr, "shim: arena exhausted (%u blocks, %zu bytes)\n",
			arena.nblk, (size_t)(arena.top - arena.base));
		abort();
	}
	b = &arena.blk[arena.nblk++];
	b->start = a;
	b->len = size;
	b->live = true;
	arena.live++;
	arena.top = (u8 *)(a + size);
	ASAN_UNPOISON_MEMORY_REGION((void *)a, size);
	return (void *)a;
}

static void arena_free(void *p)
{
	struct arena_block *b = arena_find(p);

	if (!b || !b->live) {
		fprintf(stderr, "shim: free of %p, %s\n", p,
			b ? "freed already" : "which was never allocated");
		abort();
	}
	b->live = false;
	arena.live--;
	ASAN_POISON_MEMORY_REGION(p, b->len);
}

static bool in_arena(const void *p)
{
	return (const u8 *)p >= arena.base && (const u8 *)p < arena.end;
}

bool shim_heap_live(const void *p, size_t len)
{
	const struct arena_block *b;

	if (!in_arena(p))
		return false;
	b = arena_find(p);
	return b && b->live && len <= b->len;
}

/* Every allocation of the shim; @align a power of two. */
static void *mem_alloc(size_t size, size_t align, bool zero)
{
	void *p;

	if (arena.base) {
		p = arena_alloc(size, align);
		if (zero)
			memset(p, 0, size);
		else
			memset(p, ARENA_FILL, size < PAGE_SIZE ? size : PAGE_SIZE);
		return p;
	}
	if (align > _Alignof(max_align_t))
		p = aligned_alloc(align, (size + align - 1) & ~(align - 1));
	else
		p = malloc(size ? size : 1);
	if (p && zero)
		memset(p, 0, size);
	return p;
}

static void mem_free(void *p)
{
	if (arena.base && in_arena(p))
		arena_free(p);
	else
		free(p);
}

/* ---- messages ---------------------------------------------------------- */

static bool shim_is_quiet;

void shim_quiet(bool quiet)
{
	shim_is_quiet = quiet;
}

struct outbuf {
	char *p;
	size_t left;
};

static void out_put(struct outbuf *o, const char *s, size_t n)
{
	size_t k = n < o->left ? n : o->left;

	memcpy(o->p, s, k);
	o->p += k;
	o->left -= k;
	*o->p = '\0';
}

/*
 * A small printf: the conversions the ring uses, plus the kernel's %pV
 * (a struct va_format printed recursively).  Each other conversion is
 * handed to snprintf() with its argument fetched with the right type.
 */
static void shim_vformat(struct outbuf *o, const char *fmt, va_list *ap)
{
	char spec[32], tmp[128];

	while (*fmt) {
		const char *start = fmt;
		size_t sl;
		int lng = 0;
		bool sz = false;

		if (*fmt != '%') {
			const char *pct = strchr(fmt, '%');
			size_t n = pct ? (size_t)(pct - fmt) : strlen(fmt);

			out_put(o, fmt, n);
			fmt += n;
			continue;
		}
		fmt++;
		if (*fmt == '%') {
			out_put(o, "%", 1);
			fmt++;
			continue;
		}
		while (*fmt && strchr("-+ #0", *fmt))
			fmt++;
		while (*fmt && ((*fmt >= '0' && *fmt <= '9') || *fmt == '.'))
			fmt++;
		for (;; fmt++) {
			if (*fmt == 'l')
				lng++;
			else if (*fmt == 'z')
				sz = true;
			else if (*fmt != 'h')
				break;
		}
		if (!*fmt)
			break;
		sl = (size_t)(fmt - start) + 1;
		if (sl >= sizeof(spec))
			sl = sizeof(spec) - 1;
		memcpy(spec, start, sl);
		spec[sl] = '\0';
		switch (*fmt) {
		case 'd':
		case 'i':
			if (sz)
				snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, ssize_t));
			else if (lng >= 2)
				snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, long long));
			else if (lng)
				snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, long));
			else
				snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, int));
			break;
		case 'u':
		case 'x':
		case 'X':
		case 'o':
			if (sz)
				snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, size_t));
			else if (lng >= 2)
				snprintf(tmp, sizeof(tmp), spec,
					 va_arg(*ap, unsigned long long));
			else if (lng)
				snprintf(tmp, sizeof(tmp), spec,
					 va_arg(*ap, unsigned long));
			else
				snprintf(tmp, sizeof(tmp), spec,
					 va_arg(*ap, unsigned int));
			break;
		case 'c':
			snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, int));
			break;
		case 's': {
			const char *s = va_arg(*ap, const char *);

			out_put(o, s ? s : "(null)", strlen(s ? s : "(null)"));
			fmt++;
			continue;
		}
		case 'p':
			if (fmt[1] == 'V') {
				struct va_format *vaf;
				va_list copy;

				vaf = va_arg(*ap, struct va_format *);
				va_copy(copy, *vaf->va);
				shim_vformat(o, vaf->fmt, &copy);
				va_end(copy);
				fmt += 2;
				continue;
			}
			snprintf(tmp, sizeof(tmp), "%p", va_arg(*ap, void *));
			break;
		default:
			snprintf(tmp, sizeof(tmp), "<bad conversion %s>", spec);
			break;
		}
		out_put(o, tmp, strlen(tmp));
		fmt++;
	}
}

void shim_dev_printk(int level, const struct device *dev, const char *fmt, ...)
{
	char line[SHIM_MSG_MAX];
	struct outbuf o = { line, sizeof(line) - 1 };
	va_list ap;
	size_t n;

	line[0] = '\0';
	va_start(ap, fmt);
	shim_vformat(&o, fmt, &ap);
	va_end(ap);
	n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[n - 1] = '\0';

	if (level <= SHIM_LOGLEVEL_ERR)
		shim.dev_err++;
	else
		shim.dev_warn++;
	snprintf(shim.last_msg, sizeof(shim.last_msg), "%s", line);
	if (!shim_is_quiet)
		fprintf(stderr, "# %s %s: %s\n",
			level <= SHIM_LOGLEVEL_ERR ? "err" : "warn",
			dev && dev->name ? dev->name : "(NULL device *)", line);
}

void shim_warn(bool *warned, const char *file, int line, const char *cond)
{
	shim.warn_on++;
	if (*warned)
		return;
	*warned = true;
	fprintf(stderr, "# WARNING: %s:%d: WARN_ON_ONCE(%s)\n", file, line, cond);
}

/* ---- fault injection --------------------------------------------------- */

struct fault {
	unsigned long countdown;	/* fail when it reaches 1 */
	bool sticky;			/* and keep failing */
	bool failing;
};

static struct fault map_fault, alloc_fault;

static void fault_set(struct fault *f, unsigned long nth, bool sticky)
{
	f->countdown = nth;
	f->sticky = sticky;
	f->failing = false;
}

static bool fault_hit(struct fault *f)
{
	if (f->failing)
		return true;
	if (!f->countdown)
		return false;
	if (--f->countdown)
		return false;
	f->failing = f->sticky;
	return true;
}

void shim_fail_map_nth(unsigned long nth)
{
	fault_set(&map_fault, nth, false);
}

void shim_fail_map_from(unsigned long nth)
{
	fault_set(&map_fault, nth, true);
}

void shim_fail_alloc_nth(unsigned long nth)
{
	fault_set(&alloc_fault, nth, false);
}

void shim_fail_alloc_from(unsigned long nth)
{
	fault_set(&alloc_fault, nth, true);
}

/* ---- the mapping table ------------------------------------------------- */

struct mapping {
	struct mapping *next;
	dma_addr_t addr;
	size_t len;
	enum dma_data_direction dir;
	bool coherent;
};

#define MAP_BUCKETS 4096
static struct mapping *map_table[MAP_BUCKETS];
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;

static struct mapping **map_bucket(dma_addr_t addr)
{
	return &map_table[(addr >> 4 ^ addr >> 16) & (MAP_BUCKETS - 1)];
}

static const char *dir_name(enum dma_data_direction dir)
{
	switch (dir) {
	case DMA_BIDIRECTIONAL:
		return "bidirectional";
	case DMA_TO_DEVICE:
		return "to-device";
	case DMA_FROM_DEVICE:
		return "from-device";
	default:
		return "none";
	}
}

static void dma_error(const char *fmt, ...) __printf(1, 2);
static void dma_error(const char *fmt, ...)
{
	char msg[SHIM_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!shim.dma_errors++)
		snprintf(shim.dma_error, sizeof(shim.dma_error), "%s", msg);
	fprintf(stderr, "# DMA API misuse: %s\n", msg);
}

static void map_insert(dma_addr_t addr, size_t len,
		       enum dma_data_direction dir, bool coherent)
{
	struct mapping *m = mem_alloc(sizeof(*m), sizeof(void *), false);
	struct mapping **b;

	if (!m) {
		fprintf(stderr, "# out of memory in the shim\n");
		abort();
	}
	m->addr = addr;
	m->len = len;
	m->dir = dir;
	m->coherent = coherent;
	pthread_mutex_lock(&map_lock);
	b = map_bucket(addr);
	m->next = *b;
	*b = m;
	if (coherent)
		shim.coherent_live++;
	else
		shim.maps_live++;
	pthread_mutex_unlock(&map_lock);
}

/* Remove the mapping at @addr that matches exactly; report a mismatch. */
static void map_remove(dma_addr_t addr, size_t len,
		       enum dma_data_direction dir, bool coherent)
{
	struct mapping **pp, *m, *same_addr = NULL;

	pthread_mutex_lock(&map_lock);
	for (pp = map_bucket(addr); (m = *pp); pp = &m->next) {
		if (m->addr != addr || m->coherent != coherent)
			continue;
		if (m->len == len && m->dir == dir) {
			*pp = m->next;
			if (coherent)
				shim.coherent_live--;
			else
				shim.maps_live--;
			pthread_mutex_unlock(&map_lock);
			mem_free(m);
			return;
		}
		same_addr = m;
	}
	pthread_mutex_unlock(&map_lock);
	if (same_addr)
		dma_error("%s of %#llx with length %zu %s, mapped with length %zu %s",
			  coherent ? "free" : "unmap", (unsigned long long)addr,
			  len, dir_name(dir), same_addr->len,
			  dir_name(same_addr->dir));
	else
		dma_error("%s of %#llx (length %zu %s) that is not mapped",
			  coherent ? "free" : "unmap", (unsigned long long)addr,
			  len, dir_name(dir));
}

bool shim_dma_mapped(dma_addr_t addr, size_t len, enum dma_data_direction dir)
{
	struct mapping *m;
	bool ok = false;

	pthread_mutex_lock(&map_lock);
	for (m = *map_bucket(addr); m; m = m->next) {
		if (m->coherent || m->addr != addr || len > m->len)
			continue;
		if (m->dir == DMA_BIDIRECTIONAL || m->dir == dir) {
			ok = true;
			break;
		}
	}
	pthread_mutex_unlock(&map_lock);
	return ok;
}

bool shim_dma_coherent(dma_addr_t addr, size_t len)
{
	struct mapping *m;
	bool ok = false;

	pthread_mutex_lock(&map_lock);
	for (m = *map_bucket(addr); m; m = m->next) {
		if (m->coherent && m->addr == addr && len <= m->len) {
			ok = true;
			break;
		}
	}
	pthread_mutex_unlock(&map_lock);
	return ok;
}

dma_addr_t dma_map_page(struct device *dev, struct page *page,
			unsigned long offset, size_t size,
			enum dma_data_direction dir)
{
	dma_addr_t addr = (dma_addr_t)(uintptr_t)page + offset + SHIM_DMA_OFFSET;

	(void)dev;
	shim.map_calls++;
	if (dir == DMA_NONE || !page) {
		dma_error("map of %p+%lu with direction %s", (void *)page,
			  offset, dir_name(dir));
		return DMA_MAPPING_ERROR;
	}
	if (fault_hit(&map_fault))
		return DMA_MAPPING_ERROR;
	map_insert(addr, size, dir, false);
	return addr;
}

void dma_unmap_page(struct device *dev, dma_addr_t addr, size_t size,
		    enum dma_data_direction dir)
{
	(void)dev;
	map_remove(addr, size, dir, false);
}

/* Whole pages for a ring, counted as an allocation that can be failed. */
static void *ring_pages(size_t size, bool zero)
{
	shim.alloc_calls++;
	if (fault_hit(&alloc_fault))
		return NULL;
	return mem_alloc(PAGE_ALIGN(size), PAGE_SIZE, zero);
}

void *dma_alloc_coherent(struct device *dev, size_t size,
			 dma_addr_t *dma_handle, gfp_t gfp)
{
	void *p;

	(void)dev;
	(void)gfp;
	/* The kernel's coherent memory comes zeroed. */
	p = ring_pages(size, true);
	if (!p)
		return NULL;
	*dma_handle = (dma_addr_t)(uintptr_t)p + SHIM_DMA_OFFSET;
	map_insert(*dma_handle, size, DMA_BIDIRECTIONAL, true);
	return p;
}

void dma_free_coherent(struct device *dev, size_t size, void *cpu_addr,
		       dma_addr_t dma_handle)
{
	(void)dev;
	if ((dma_addr_t)(uintptr_t)cpu_addr + SHIM_DMA_OFFSET != dma_handle) {
		dma_error("coherent free of %p with handle %#llx", cpu_addr,
			  (unsigned long long)dma_handle);
		return;
	}
	map_remove(dma_handle, size, DMA_BIDIRECTIONAL, true);
	mem_free(cpu_addr);
}

/* ---- kmalloc ----------------------------------------------------------- */

void *kmalloc(size_t size, gfp_t gfp)
{
	void *p;

	(void)gfp;
	shim.alloc_calls++;
	if (fault_hit(&alloc_fault))
		return NULL;
	p = mem_alloc(size, 2 * sizeof(void *), false);
	if (p)
		__atomic_add_fetch(&shim.kmalloc_live, 1, __ATOMIC_RELAXED);
	return p;
}

void *kzalloc(size_t size, gfp_t gfp)
{
	void *p = kmalloc(size, gfp);

	if (p)
		memset(p, 0, size);
	return p;
}

void *kmalloc_array(size_t n, size_t size, gfp_t gfp)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return kmalloc(n * size, gfp);
}

void *kcalloc(size_t n, size_t size, gfp_t gfp)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return kzalloc(n * size, gfp);
}

void kfree(const void *p)
{
	if (!p)
		return;
	__atomic_sub_fetch(&shim.kmalloc_live, 1, __ATOMIC_RELAXED);
	mem_free((void *)p);
}

/* Pages for a ring without the DMA API: counted with the kmalloc blocks. */
void *alloc_pages_exact(size_t size, gfp_t gfp)
{
	void *p = ring_pages(size, gfp & __GFP_ZERO);

	if (!p)
		return NULL;
	__atomic_add_fetch(&shim.kmalloc_live, 1, __ATOMIC_RELAXED);
	return p;
}

void free_pages_exact(void *virt, size_t size)
{
	(void)size;
	if (!virt)
		return;
	__atomic_sub_fetch(&shim.kmalloc_live, 1, __ATOMIC_RELAXED);
	mem_free(virt);
}

/* ---- test control ------------------------------------------------------ */

void shim_reset(void)
{
	fault_set(&map_fault, 0, false);
	fault_set(&alloc_fault, 0, false);
	shim.dev_err = 0;
	shim.dev_warn = 0;
	shim.warn_on = 0;
	shim.map_calls = 0;
	shim.alloc_calls = 0;
	shim.dma_errors = 0;
	shim.last_msg[0] = '\0';
	shim.dma_error[0] = '\0';
}

bool shim_clean(char *why, size_t len)
{
	if (shim.dma_errors) {
		snprintf(why, len, "%lu DMA API errors, first: %s",
			 shim.dma_errors, shim.dma_error);
		return false;
	}
	if (shim.maps_live || shim.coherent_live || shim.kmalloc_live) {
		snprintf(why, len,
			 "leak: %ld mappings, %ld coherent buffers, %ld kmalloc blocks",
			 shim.maps_live, shim.coherent_live, shim.kmalloc_live);
		return false;
	}
	return true;
}
