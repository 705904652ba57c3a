/* SPDX-License-Identifier: GPL-2.0-only */
/* Userspace shim: the kernel's uapi header is the system's. */
#include <linux/virtio_ring.h>
