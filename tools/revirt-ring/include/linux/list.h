/* SPDX-License-Identifier: GPL-2.0-only */
/* Userspace shim: the one list helper the ring uses. */
#ifndef _SHIM_LINUX_LIST_H
#define _SHIM_LINUX_LIST_H
#include <linux/types.h>

static inline void INIT_LIST_HEAD(struct list_head *list)
{
	list->next = list;
	list->prev = list;
}
#endif
