/* SPDX-License-Identifier: GPL-2.0-only */
/* Adapter (see ../kshim.h): no KMSAN in userspace. */
#define kmsan_handle_dma(page, off, size, dir) do { } while (0)
