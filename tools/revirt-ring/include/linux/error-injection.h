/* SPDX-License-Identifier: GPL-2.0-only */
/* Userspace shim: see shim_kernel.h. */
#include <shim_kernel.h>
