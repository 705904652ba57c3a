/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared between the parts of revirt.ko; not for drivers or transports. */
#ifndef _REVIRT_INTERNAL_H
#define _REVIRT_INTERNAL_H

#include <linux/revirt.h>

extern const struct attribute_group *revirt_dev_groups[];

int revirt_reprobe(struct revirt_device *vdev);
int revirt_reset_one_vq(struct revirt_device *vdev, unsigned int index,
			unsigned int num);

#endif /* _REVIRT_INTERNAL_H */
