/* SPDX-License-Identifier: GPL-2.0-only */
/* Adapter (see ../kshim.h): the device's queue list lock, single user. */
#ifndef _KSHIM_LINUX_SPINLOCK_H
#define _KSHIM_LINUX_SPINLOCK_H
typedef struct { int unused; } spinlock_t;
#define spin_lock_init(l)	((void)(l))
#define spin_lock(l)		((void)(l))
#define spin_unlock(l)		((void)(l))
#endif
