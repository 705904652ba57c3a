/* SPDX-License-Identifier: GPL-2.0-only */
/* Adapter (see ../kshim.h): never a Xen domain. */
#define xen_domain()		false
