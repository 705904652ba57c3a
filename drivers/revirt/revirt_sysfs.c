// SPDX-License-Identifier: GPL-2.0-only
/*
 * Per-device sysfs attributes of the revirt bus
 * (Documentation/ABI/testing/sysfs-bus-revirt).
 */

#include <linux/device.h>
#include <linux/kernel.h>
#include <linux/revirt.h>
#include <linux/revirt_ring.h>
#include <linux/sysfs.h>

#include "revirt_internal.h"

static ssize_t vendor_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "0x%04x\n", dev_to_revirt(dev)->id.vendor);
}
static DEVICE_ATTR_RO(vendor);

static ssize_t device_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "0x%04x\n", dev_to_revirt(dev)->id.device);
}
static DEVICE_ATTR_RO(device);

static ssize_t modalias_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	struct revirt_device *vdev = dev_to_revirt(dev);

	return sysfs_emit(buf, "revirt:d%08Xv%08X\n", vdev->id.device,
			  vdev->id.vendor);
}
static DEVICE_ATTR_RO(modalias);

static ssize_t status_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct revirt_device *vdev = dev_to_revirt(dev);

	return sysfs_emit(buf, "0x%02x\n", vdev->config->get_status(vdev));
}
static DEVICE_ATTR_RO(status);

static ssize_t features_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	u64 features = dev_to_revirt(dev)->features;
	char bits[65];
	unsigned int i;

	for (i = 0; i < 64; i++)
		bits[i] = (features & BIT_ULL(i)) ? '1' : '0';
	bits[64] = '\0';
	return sysfs_emit(buf, "%s\n", bits);
}
static DEVICE_ATTR_RO(features);

static ssize_t features_mask_show(struct device *dev,
				  struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "0x%016llx\n",
			  dev_to_revirt(dev)->features_mask);
}

/* A new mask renegotiates at once: reset, then probe again. */
static ssize_t features_mask_store(struct device *dev,
				   struct device_attribute *attr,
				   const char *buf, size_t count)
{
	struct revirt_device *vdev = dev_to_revirt(dev);
	u64 mask;
	int err;

	if (kstrtou64(buf, 16, &mask))
		return -EINVAL;

	mutex_lock(&vdev->reprobe_lock);
	vdev->features_mask = mask;
	err = revirt_reprobe(vdev);
	mutex_unlock(&vdev->reprobe_lock);
	return err ? err : count;
}
static DEVICE_ATTR_RW(features_mask);

static ssize_t reset_store(struct device *dev, struct device_attribute *attr,
			   const char *buf, size_t count)
{
	struct revirt_device *vdev = dev_to_revirt(dev);
	int err;

	if (!sysfs_streq(buf, "1"))
		return -EINVAL;

	mutex_lock(&vdev->reprobe_lock);
	err = revirt_reprobe(vdev);
	mutex_unlock(&vdev->reprobe_lock);
	return err ? err : count;
}
static DEVICE_ATTR_WO(reset);

static ssize_t resets_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%u\n",
			  (unsigned int)atomic_read(&dev_to_revirt(dev)->resets));
}
static DEVICE_ATTR_RO(resets);

static ssize_t queue_resets_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	struct revirt_device *vdev = dev_to_revirt(dev);

	return sysfs_emit(buf, "%u\n",
			  (unsigned int)atomic_read(&vdev->queue_resets));
}
static DEVICE_ATTR_RO(queue_resets);

/* "INDEX" or "INDEX SIZE"; a reset of that queue alone. */
static ssize_t revirt_queue_store(struct device *dev, const char *buf,
				  size_t count, bool resize)
{
	unsigned int index, num = 0;
	char end;
	int n, err;

	n = sscanf(buf, "%u %u %c", &index, &num, &end);
	if (n < 1 || (resize && n != 2) || (!resize && n != 1) ||
	    (resize && !num))
		return -EINVAL;
	err = revirt_reset_one_vq(dev_to_revirt(dev), index, num);
	return err ? err : count;
}

static ssize_t reset_queue_store(struct device *dev,
				 struct device_attribute *attr,
				 const char *buf, size_t count)
{
	return revirt_queue_store(dev, buf, count, false);
}
static DEVICE_ATTR_WO(reset_queue);

static ssize_t resize_queue_store(struct device *dev,
				  struct device_attribute *attr,
				  const char *buf, size_t count)
{
	return revirt_queue_store(dev, buf, count, true);
}
static DEVICE_ATTR_WO(resize_queue);

static ssize_t queue_sizes_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct revirt_device *vdev = dev_to_revirt(dev);
	struct revirt_virtqueue *vq;
	ssize_t len = 0;

	/* The queues change only under the device lock (a reset). */
	device_lock(dev);
	list_for_each_entry(vq, &vdev->vqs, list)
		len += sysfs_emit_at(buf, len, "%s%u", len ? " " : "",
				     revirt_vq_get_vring_size(vq));
	device_unlock(dev);
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}
static DEVICE_ATTR_RO(queue_sizes);

static struct attribute *revirt_dev_attrs[] = {
	&dev_attr_vendor.attr,
	&dev_attr_device.attr,
	&dev_attr_modalias.attr,
	&dev_attr_status.attr,
	&dev_attr_features.attr,
	&dev_attr_features_mask.attr,
	&dev_attr_reset.attr,
	&dev_attr_resets.attr,
	&dev_attr_queue_resets.attr,
	&dev_attr_reset_queue.attr,
	&dev_attr_resize_queue.attr,
	&dev_attr_queue_sizes.attr,
	NULL,
};

static const struct attribute_group revirt_dev_group = {
	.attrs = revirt_dev_attrs,
};

const struct attribute_group *revirt_dev_groups[] = {
	&revirt_dev_group,
	NULL,
};
