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

#define READ_ONCE(x)		(*(const volatile __typeof__(x) *)&(x))
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
