/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The differences between the kernels revirt builds for (6.1 and 6.12).
 *
 * Every test of LINUX_VERSION_CODE in revirt is in this file; the code
 * uses what it defines and has no #if of its own.  Each helper says which
 * kernel changed the interface it hides.
 */
#ifndef _REVIRT_COMPAT_H
#define _REVIRT_COMPAT_H

#include <linux/build_bug.h>
#include <linux/device.h>
#include <linux/platform_device.h>
#include <linux/version.h>

/*
 * struct bus_type: match() takes a const driver since 6.11, uevent() a
 * const device since 6.3.  The bus core writes both callbacks with these
 * qualifiers; the code of the callbacks reads through them only.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
#define REVIRT_BUS_MATCH_CONST const
#else
#define REVIRT_BUS_MATCH_CONST
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define REVIRT_BUS_UEVENT_CONST const
#else
#define REVIRT_BUS_UEVENT_CONST
#endif

/*
 * struct platform_driver: remove() returns void since 6.11 (before, it
 * returned an int that the platform bus ignored).  A transport writes
 * void prefix_remove() and DEFINE_REVIRT_PLATFORM_REMOVE(prefix); then
 * uses prefix_platform_remove as its .remove.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
#define DEFINE_REVIRT_PLATFORM_REMOVE(prefix)				\
static void prefix##_platform_remove(struct platform_device *pdev)	\
{									\
	prefix##_remove(pdev);						\
}									\
static_assert(true)
#else
#define DEFINE_REVIRT_PLATFORM_REMOVE(prefix)				\
static int prefix##_platform_remove(struct platform_device *pdev)	\
{									\
	prefix##_remove(pdev);						\
	return 0;							\
}									\
static_assert(true)
#endif

#endif /* _REVIRT_COMPAT_H */
