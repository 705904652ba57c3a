/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * revirt: a virtio guest stack built around the device reset lifecycle.
 *
 * The bus core resets every device before it acknowledges it and after its
 * driver is removed.  Transports supply the reset (and the rest of the
 * device access) through struct revirt_config_ops; drivers bind through
 * struct revirt_driver and talk to the device through the virtqueues of
 * <linux/revirt_ring.h>.
 */
#ifndef _LINUX_REVIRT_H
#define _LINUX_REVIRT_H

#include <linux/device.h>
#include <linux/mod_devicetable.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/virtio_byteorder.h>
#include <uapi/linux/virtio_config.h>

struct revirt_virtqueue;
struct revirt_device;

/* Matches any device id or vendor in a struct revirt_device_id. */
#define REVIRT_DEV_ANY_ID	0xffffffff

/**
 * struct revirt_device_id - what a revirt driver binds to
 * @device: virtio device id (VIRTIO_ID_*)
 * @vendor: subsystem vendor, or REVIRT_DEV_ANY_ID
 */
struct revirt_device_id {
	u32 device;
	u32 vendor;
};

/* Module alias so that udev/modprobe load a driver for a device id. */
#define REVIRT_MODULE_ALIAS(id)	MODULE_ALIAS("revirt:d" #id "v*")

typedef void revirt_vq_callback_t(struct revirt_virtqueue *vq);

/**
 * struct revirt_vq_info - what a driver asks of one virtqueue
 * @name: name for interrupts and messages
 * @callback: called (in interrupt context) when buffers are used, or NULL
 */
struct revirt_vq_info {
	const char *name;
	revirt_vq_callback_t *callback;
};

/**
 * struct revirt_config_ops - the transport's access to a device
 * @get: read @len bytes of device config at @offset
 * @set: write @len bytes of device config at @offset
 * @generation: config generation counter (0 if the transport has none)
 * @get_status: read the status byte
 * @set_status: write a non-zero status byte
 * @reset: reset the device and wait, bounded, until it completed; after
 *	it returns 0 the device uses no queue and no callback runs.  Returns
 *	-ETIMEDOUT (or another error) if the device did not complete.
 * @get_features: the device's feature bits
 * @finalize_features: write vdev->features to the device
 * @find_vqs: set up @nvqs virtqueues and their interrupts
 * @del_vqs: tear down all virtqueues of the device (after a reset)
 * @reset_vq: optional, for VIRTIO_F_RING_RESET: reset one queue and wait,
 *	bounded, until the device completed it; after it returns 0 the device
 *	uses the queue no more and its callback does not run.  Returns
 *	-ETIMEDOUT (or another error) if the device did not complete.
 * @enable_vq: optional, with @reset_vq: give a queue reset alone back to
 *	the device, at the ring's size now, and enable it
 * @max_vq_size: optional, with @reset_vq: the most entries the device
 *	allows in a queue it reset alone
 */
struct revirt_config_ops {
	void (*get)(struct revirt_device *vdev, unsigned int offset,
		    void *buf, unsigned int len);
	void (*set)(struct revirt_device *vdev, unsigned int offset,
		    const void *buf, unsigned int len);
	u32 (*generation)(struct revirt_device *vdev);
	u8 (*get_status)(struct revirt_device *vdev);
	void (*set_status)(struct revirt_device *vdev, u8 status);
	int (*reset)(struct revirt_device *vdev);
	u64 (*get_features)(struct revirt_device *vdev);
	int (*finalize_features)(struct revirt_device *vdev);
	int (*find_vqs)(struct revirt_device *vdev, unsigned int nvqs,
			struct revirt_virtqueue *vqs[],
			const struct revirt_vq_info info[]);
	void (*del_vqs)(struct revirt_device *vdev);
	int (*reset_vq)(struct revirt_virtqueue *vq);
	int (*enable_vq)(struct revirt_virtqueue *vq);
	unsigned int (*max_vq_size)(struct revirt_virtqueue *vq);
};

/**
 * struct revirt_device - a virtio device on the revirt bus
 * @dev: the device model's device; parent is the transport's device
 * @index: unique number, the N of revirtN
 * @id: device id and vendor
 * @config: transport operations
 * @vqs: list of the device's virtqueues
 * @features: negotiated feature bits
 * @features_mask: bits the driver may accept (sysfs features_mask)
 * @resets: resets since registration (sysfs resets)
 * @queue_resets: resets of one queue since registration (sysfs
 *	queue_resets)
 * @broken: the device failed to reset, or is gone; its queues are broken
 * @gone: the transport found the device gone (revirt_device_gone()): it
 *	stays broken and every later reset fails with -ENODEV at once
 * @config_lock: protects @config_enabled and @config_change_pending
 * @config_enabled: config-change callbacks may reach the driver
 * @config_change_pending: a change arrived while callbacks were disabled
 * @config_work: runs the driver's config_changed in process context
 * @reprobe_lock: serialises resets and renegotiations (sysfs, recovery)
 * @recover_work: recovers a device that raised DEVICE_NEEDS_RESET, or
 *	whose driver asked for a reset (revirt_schedule_reset())
 * @reset_requested: under @config_lock: the driver asked for a reset that
 *	has not run yet; more requests until it ran are merged into it
 * @vq_reset_pending: under @config_lock: queues (bit = index) whose driver
 *	asked for a reset of that queue alone (revirt_schedule_vq_reset())
 * @unregistering: set under @config_lock; no recovery is scheduled after it
 * @frozen: under @config_lock and the device lock: the driver was stopped
 *	by revirt_device_freeze() (system sleep, a function reset) and the
 *	device is reset; no reset or recovery runs until
 *	revirt_device_restore(), which answers what was asked meanwhile
 * @priv: driver private data
 */
struct revirt_device {
	struct device dev;
	unsigned int index;
	struct revirt_device_id id;
	const struct revirt_config_ops *config;
	struct list_head vqs;
	u64 features;
	u64 features_mask;
	atomic_t resets;
	atomic_t queue_resets;
	bool broken;
	bool gone;
	spinlock_t config_lock;		/* config_enabled, _pending */
	bool config_enabled;
	bool config_change_pending;
	struct work_struct config_work;
	struct mutex reprobe_lock;	/* one reprobe at a time */
	struct work_struct recover_work;
	bool reset_requested;
	u64 vq_reset_pending;
	bool unregistering;
	bool frozen;
	void *priv;
};

static inline struct revirt_device *dev_to_revirt(struct device *dev)
{
	return container_of(dev, struct revirt_device, dev);
}

/**
 * struct revirt_driver - a driver for revirt devices
 * @driver: the device model's driver; its name is the module's name
 * @id_table: devices the driver handles, ended by an all-zero entry
 * @feature_table: feature bits the driver understands
 * @feature_table_size: number of entries in @feature_table
 * @probe: set the device up; the core sets DRIVER_OK afterwards if the
 *	driver did not (a driver calls revirt_device_ready() itself when it
 *	must use the queues in probe)
 * @remove: tear down; must reset the device (revirt_reset_device()) before
 *	it reclaims buffers and deletes the queues
 * @config_changed: the device's config space changed (process context)
 * @reinit: optional; reset the device and set it up again while the driver
 *	stays bound, for the reset attribute, a features_mask write,
 *	DEVICE_NEEDS_RESET and revirt_schedule_reset().  The driver stops its
 *	I/O, resets the device (revirt_reset_device()), takes back its
 *	buffers, deletes its queues, calls revirt_renegotiate() and sets its
 *	queues up again; the core sets DRIVER_OK if the driver did not.  On
 *	error the driver stays bound with no queues and fails its I/O; the
 *	next reset tries again.  Without it the core removes and probes the
 *	driver again.
 * @reset_vq: optional; reset queue @index alone and set it up again with
 *	@num entries (0: as many as before), while the other queues run: for
 *	the reset_queue and resize_queue attributes and for
 *	revirt_schedule_vq_reset().  The driver stops using the queue,
 *	calls revirt_vq_reset(), takes back the queue's buffers and calls
 *	revirt_vq_enable().  Returns -EOPNOTSUPP if the device cannot reset
 *	one queue, -EINVAL for a size the device refused (the queue runs on
 *	at its old size); after another error the core resets the device.
 * @device_gone: optional; the device is gone (revirt_device_gone()) and
 *	its queues are broken: wake whatever waits for an answer of the
 *	device, which will never come.  Called from a work item, under the
 *	device lock, before the core stops the driver (reinit, or remove).
 * @freeze: optional; for system sleep and function resets: stop the I/O
 *	(requests in flight are kept for @restore, never failed), reset the
 *	device (revirt_reset_device()), take back the buffers and delete the
 *	queues, keeping everything users hold (a disk, open files).  Under
 *	the device lock.  On error the device must run on as before.
 * @restore: set the device up again after @freeze, from a reset or from
 *	whatever a hibernation image's boot left: call revirt_renegotiate(),
 *	set the queues up, read the configuration again and resume the I/O
 *	that @freeze held.  The core sets DRIVER_OK if the driver did not.
 *	On error the driver stays bound and fails its I/O, as after @reinit.
 */
struct revirt_driver {
	struct device_driver driver;
	const struct revirt_device_id *id_table;
	const unsigned int *feature_table;
	unsigned int feature_table_size;
	int (*probe)(struct revirt_device *vdev);
	void (*remove)(struct revirt_device *vdev);
	void (*config_changed)(struct revirt_device *vdev);
	int (*reinit)(struct revirt_device *vdev);
	int (*reset_vq)(struct revirt_device *vdev, unsigned int index,
			unsigned int num);
	void (*device_gone)(struct revirt_device *vdev);
	int (*freeze)(struct revirt_device *vdev);
	int (*restore)(struct revirt_device *vdev);
};

static inline struct revirt_driver *drv_to_revirt(struct device_driver *drv)
{
	return container_of(drv, struct revirt_driver, driver);
}

int __revirt_register_driver(struct revirt_driver *drv, struct module *owner);
#define revirt_register_driver(drv) \
	__revirt_register_driver(drv, THIS_MODULE)
void revirt_unregister_driver(struct revirt_driver *drv);

#define module_revirt_driver(__drv) \
	module_driver(__drv, revirt_register_driver, revirt_unregister_driver)

int revirt_register_device(struct revirt_device *vdev);
void revirt_unregister_device(struct revirt_device *vdev);

int revirt_reset_device(struct revirt_device *vdev);
void revirt_device_gone(struct revirt_device *vdev, const char *why);
int revirt_device_freeze(struct revirt_device *vdev);
int revirt_device_restore(struct revirt_device *vdev);
int revirt_renegotiate(struct revirt_device *vdev);
void revirt_schedule_reset(struct revirt_device *vdev);
void revirt_schedule_vq_reset(struct revirt_device *vdev, unsigned int index);
bool revirt_vq_can_reset(const struct revirt_virtqueue *vq);
int revirt_vq_reset(struct revirt_virtqueue *vq);
int revirt_vq_enable(struct revirt_virtqueue *vq, unsigned int num);
void revirt_device_ready(struct revirt_device *vdev);
void revirt_config_changed(struct revirt_device *vdev);
void revirt_add_status(struct revirt_device *vdev, u8 status);

int revirt_find_vqs(struct revirt_device *vdev, unsigned int nvqs,
		    struct revirt_virtqueue *vqs[],
		    const struct revirt_vq_info info[]);
void revirt_del_vqs(struct revirt_device *vdev);
struct revirt_virtqueue *
revirt_create_vq(struct revirt_device *vdev, unsigned int index,
		 unsigned int num, unsigned int align, struct device *dma_dev,
		 bool (*notify)(struct revirt_virtqueue *vq),
		 const struct revirt_vq_info *info);

static inline bool revirt_has_feature(const struct revirt_device *vdev,
				      unsigned int fbit)
{
	return fbit < 64 && (vdev->features & BIT_ULL(fbit));
}

/* Legacy devices use the guest's byte order, version-1 devices little endian. */
static inline bool revirt_is_little_endian(const struct revirt_device *vdev)
{
	return revirt_has_feature(vdev, VIRTIO_F_VERSION_1) ||
	       virtio_legacy_is_little_endian();
}

static inline u16 revirt16_to_cpu(const struct revirt_device *vdev,
				  __virtio16 val)
{
	return __virtio16_to_cpu(revirt_is_little_endian(vdev), val);
}

static inline u32 revirt32_to_cpu(const struct revirt_device *vdev,
				  __virtio32 val)
{
	return __virtio32_to_cpu(revirt_is_little_endian(vdev), val);
}

static inline u64 revirt64_to_cpu(const struct revirt_device *vdev,
				  __virtio64 val)
{
	return __virtio64_to_cpu(revirt_is_little_endian(vdev), val);
}

/*
 * Read a config field of 1, 2, 4 or 8 bytes in the device's byte order,
 * retrying while the config generation moves so that a wide field is
 * never torn.
 */
u64 revirt_cread(struct revirt_device *vdev, unsigned int offset,
		 unsigned int size);

#endif /* _LINUX_REVIRT_H */
