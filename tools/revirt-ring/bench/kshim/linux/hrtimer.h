/* SPDX-License-Identifier: GPL-2.0-only */
/* Adapter (see ../kshim.h): nothing of <linux/hrtimer.h> is needed. */
