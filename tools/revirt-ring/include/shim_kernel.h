/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Userspace shim of the kernel facilities revirt_ring.c uses: compiler
 * annotations, barriers, error pointers, pages, messages and warnings.
 * The functions declared here live in ../shim.c.
 */
#ifndef _SHIM_KERNEL_H
#define _SHIM_KERNEL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#define noinline		__attribute__((__noinline__))
#ifndef __always_inline
#define __always_inline		inline __attribute__((__always_inline__))
#endif
#define __printf(a, b)		__attribute__((__format__(printf, a, b)))
#define likely(x)		__builtin_expect(!!(x), 1)
#define unlikely(x)		__builtin_expect(!!(x), 0)
#ifndef __force
#define __force
#endif

#ifdef SHIM_FUZZ
/*
 * The fuzzer's device may write the ring while a driver call runs, as a
 * real device on another CPU can.  Each read the ring makes of memory the
 * device can write is a READ_ONCE() or goes through a conversion from the
 * ring's byte order (virtio_byteorder.h); both call the fuzzer's hook, a
 * READ_ONCE() just before the read, with its address, a conversion just
 * after it, with NULL (it sees only the value).  Between two reads of one
 * field the device can thus change it, and a double fetch shows.  The
 * hook is NULL while no write is pending, and the fuzzer's build only
 * (SHIM_FUZZ) has it: the tests, valgrind and the benchmark build the
 * plain READ_ONCE().
 */
extern void (*shim_device_hook)(const volatile void *addr);

static __always_inline void shim_device_access(const volatile void *addr)
{
	if (unlikely(shim_device_hook))
		shim_device_hook(addr);
}

#define READ_ONCE(x) ({							\
	shim_device_access(&(x));					\
	*(const volatile __typeof__(x) *)&(x);				\
})
#else
#define READ_ONCE(x)		(*(const volatile __typeof__(x) *)&(x))
#endif
#define WRITE_ONCE(x, v)	(*(volatile __typeof__(x) *)&(x) = (v))

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* Barriers: C11 fences, strong enough for a device that is another thread. */
#define mb()			__atomic_thread_fence(__ATOMIC_SEQ_CST)
#define rmb()			__atomic_thread_fence(__ATOMIC_ACQUIRE)
#define wmb()			__atomic_thread_fence(__ATOMIC_RELEASE)
#define virt_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)
#define virt_rmb()		__atomic_thread_fence(__ATOMIC_ACQUIRE)
#define virt_wmb()		__atomic_thread_fence(__ATOMIC_RELEASE)
#define dma_rmb()		__atomic_thread_fence(__ATOMIC_ACQUIRE)
#define dma_wmb()		__atomic_thread_fence(__ATOMIC_RELEASE)

/* Error pointers. */
#define MAX_ERRNO		4095
#define IS_ERR_VALUE(x)		((unsigned long)(x) >= (unsigned long)-MAX_ERRNO)
static inline void *ERR_PTR(long err) { return (void *)err; }
static inline long PTR_ERR(const void *p) { return (long)p; }
static inline bool IS_ERR(const void *p) { return IS_ERR_VALUE(p); }

#define U16_MAX			((u16)~0U)
#define min_t(t, a, b)		((t)(a) < (t)(b) ? (t)(a) : (t)(b))

static inline bool is_power_of_2(unsigned long n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

/* Memory: a "page" is the page-aligned virtual address. */
#define PAGE_SHIFT		12
#define PAGE_SIZE		(1UL << PAGE_SHIFT)
#define PAGE_MASK		(~(PAGE_SIZE - 1))
#define PAGE_ALIGN(x)		(((x) + PAGE_SIZE - 1) & PAGE_MASK)
struct page;
#define virt_to_page(p)		((struct page *)((uintptr_t)(p) & PAGE_MASK))
#define offset_in_page(p)	((unsigned long)(uintptr_t)(p) & ~PAGE_MASK)
#define page_address(pg)	((void *)(pg))

/*
 * Bus addresses: a DMA API handle (../shim.c) and a physical address
 * (linux/io.h) are the virtual address plus an offset.  Both offsets are 0
 * for the tests, whose simulated device reads buffers through the
 * addresses it is given.  The fuzzer keeps the three kinds apart (user
 * space addresses are below 2^47), so that its device, which checks every
 * descriptor against the buffer it was made from, tells a physical
 * address given where a DMA handle belongs, or a virtual one, from the
 * right one.
 */
#ifdef SHIM_FUZZ
#define SHIM_DMA_OFFSET		(1ULL << 52)
#define SHIM_PHYS_OFFSET	(1ULL << 56)
#else
#define SHIM_DMA_OFFSET		0ULL
#define SHIM_PHYS_OFFSET	0ULL
#endif

/* Devices and messages. */
struct device {
	const char *name;
	struct device *parent;
};

struct va_format {
	const char *fmt;
	va_list *va;
};

#define SHIM_LOGLEVEL_ERR	3
#define SHIM_LOGLEVEL_WARNING	4
void shim_dev_printk(int level, const struct device *dev, const char *fmt,
		     ...) __printf(3, 4);
#define dev_err(dev, fmt, ...) \
	shim_dev_printk(SHIM_LOGLEVEL_ERR, dev, fmt, ##__VA_ARGS__)
#define dev_warn(dev, fmt, ...) \
	shim_dev_printk(SHIM_LOGLEVEL_WARNING, dev, fmt, ##__VA_ARGS__)

/* Warnings: printed once per site, counted every time. */
void shim_warn(bool *warned, const char *file, int line, const char *cond);
#define WARN_ON_ONCE(cond) ({						\
	static bool __shim_warned;					\
	bool __shim_c = !!(cond);					\
	if (unlikely(__shim_c))						\
		shim_warn(&__shim_warned, __FILE__, __LINE__, #cond);	\
	__shim_c;							\
})

/* Symbols: nothing to export in a test binary; keep the syntax valid. */
#define EXPORT_SYMBOL_GPL(sym)		extern __typeof__(sym) sym
#define ALLOW_ERROR_INJECTION(f, t)	extern __typeof__(f) f

#endif
