// SPDX-License-Identifier: GPL-2.0-only
/*
 * revirt bus core: the device reset lifecycle.
 *
 *   register:  reset, ACKNOWLEDGE
 *   probe:     (reset, ACKNOWLEDGE if a previous owner left it set up),
 *              DRIVER, features, FEATURES_OK read back (version 1),
 *              driver probe, DRIVER_OK; FAILED if anything failed
 *   remove:    the driver resets the device where it chooses, reclaims
 *              its buffers and deletes its queues; the core checks that
 *              status reads 0 (and resets it if the driver forgot), then
 *              ACKNOWLEDGE again
 *   shutdown:  reset, so that no DMA outlives the kernel
 */

#include <linux/cc_platform.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/revirt.h>
#include <linux/revirt_ring.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <uapi/linux/virtio_ring.h>
#include <xen/xen.h>

#include "revirt_compat.h"
#include "revirt_internal.h"

static DEFINE_IDA(revirt_index_ida);

/* Feature bits the core and the ring handle for every driver. */
static const u64 revirt_transport_features =
	BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC) |
	BIT_ULL(VIRTIO_RING_F_EVENT_IDX) |
	BIT_ULL(VIRTIO_F_VERSION_1) |
	BIT_ULL(VIRTIO_F_ACCESS_PLATFORM) |
	BIT_ULL(VIRTIO_F_RING_RESET);

/* How often a config read is retried while the generation moves. */
#define REVIRT_CONFIG_READ_TRIES	64

/**
 * revirt_add_status - set status bits on top of those already set
 * @vdev: the device
 * @status: VIRTIO_CONFIG_S_* bits to add
 */
void revirt_add_status(struct revirt_device *vdev, u8 status)
{
	might_sleep();
	vdev->config->set_status(vdev, vdev->config->get_status(vdev) | status);
}
EXPORT_SYMBOL_GPL(revirt_add_status);

/* Every queue refuses new buffers and its callback stops. */
static void revirt_mark_vqs_broken(struct revirt_device *vdev)
{
	struct revirt_virtqueue *vq;

	list_for_each_entry(vq, &vdev->vqs, list)
		revirt_vq_mark_broken(vq);
}

/**
 * revirt_reset_device - reset a device and wait until it completed
 * @vdev: the device
 *
 * After a successful return the device uses none of its queues and no
 * callback of the device runs; the driver may reclaim its buffers.  A
 * device that does not complete the reset in time is marked broken.  A
 * device that is gone is not asked at all: nothing would answer.
 *
 * Return: 0, -ENODEV for a device that is gone, or the transport's error
 * (-ETIMEDOUT for a reset that did not complete).
 */
int revirt_reset_device(struct revirt_device *vdev)
{
	int err;

	atomic_inc(&vdev->resets);
	err = READ_ONCE(vdev->gone) ? -ENODEV : vdev->config->reset(vdev);
	if (!err) {
		vdev->broken = false;
		return 0;
	}
	/* The transport may have found the device gone during the reset. */
	if (!vdev->broken && !READ_ONCE(vdev->gone))
		dev_err(&vdev->dev, "reset did not complete (%d): device marked broken\n",
			err);
	vdev->broken = true;
	revirt_mark_vqs_broken(vdev);
	return READ_ONCE(vdev->gone) ? -ENODEV : err;
}
EXPORT_SYMBOL_GPL(revirt_reset_device);

/**
 * revirt_device_gone - report a device that no longer answers
 * @vdev: the device
 * @why: what the transport saw, for the message ("status reads 0xff")
 *
 * For transports: a register read all-ones where the device cannot hold
 * that value, a function the bus says is no longer present, a magic value
 * that does not read back.  Waiting out a reset bound for such a device is
 * pointless, so it is broken at once: its queues refuse new buffers and
 * their callbacks stop, every later reset fails with -ENODEV without
 * touching the device, and the core stops the bound driver from a work
 * item (its device_gone operation, then its reinit, which fails the
 * requests in flight, or its removal).  Only the first report of a device
 * counts; one line says so.  May be called in any context: it only sets
 * flags and schedules work.  The device stays gone until the transport
 * lets it go and registers it again.
 */
void revirt_device_gone(struct revirt_device *vdev, const char *why)
{
	unsigned long flags;
	bool first;

	spin_lock_irqsave(&vdev->config_lock, flags);
	if (vdev->frozen) {
		/*
		 * A function being reset reads all-ones for a while, and
		 * nothing of a frozen device is used: the restore, which
		 * resets the device first, finds out whether it is gone.
		 */
		spin_unlock_irqrestore(&vdev->config_lock, flags);
		return;
	}
	first = !vdev->gone;
	WRITE_ONCE(vdev->gone, true);
	WRITE_ONCE(vdev->broken, true);
	if (first && !vdev->unregistering) {
		vdev->reset_requested = true;
		schedule_work(&vdev->recover_work);
	}
	spin_unlock_irqrestore(&vdev->config_lock, flags);
	if (!first)
		return;
	dev_err(&vdev->dev, "device is gone (%s)\n", why);
	/*
	 * The queue list changes only in find_vqs and del_vqs, after the
	 * transport synchronised or freed its interrupts, which is where
	 * this may run.
	 */
	revirt_mark_vqs_broken(vdev);
}
EXPORT_SYMBOL_GPL(revirt_device_gone);

/**
 * revirt_device_ready - tell the device the driver is ready (DRIVER_OK)
 * @vdev: the device
 *
 * Drivers that use their queues during probe call this first; otherwise
 * the core sets DRIVER_OK after probe.
 */
void revirt_device_ready(struct revirt_device *vdev)
{
	u8 status = vdev->config->get_status(vdev);

	WARN_ON_ONCE(status & VIRTIO_CONFIG_S_DRIVER_OK);
	vdev->config->set_status(vdev, status | VIRTIO_CONFIG_S_DRIVER_OK);
}
EXPORT_SYMBOL_GPL(revirt_device_ready);

/**
 * revirt_find_vqs - set up the device's virtqueues
 * @vdev: the device
 * @nvqs: number of queues
 * @vqs: filled with the queues
 * @info: name and callback of each queue
 *
 * Return: 0 or a negative error; on error no queue is left.
 */
int revirt_find_vqs(struct revirt_device *vdev, unsigned int nvqs,
		    struct revirt_virtqueue *vqs[],
		    const struct revirt_vq_info info[])
{
	return vdev->config->find_vqs(vdev, nvqs, vqs, info);
}
EXPORT_SYMBOL_GPL(revirt_find_vqs);

/*
 * Whether the device reaches guest memory through the DMA API's mappings.
 * It does when it negotiated VIRTIO_F_ACCESS_PLATFORM (an IOMMU or another
 * translation may sit in front of it).  Without that feature the virtio
 * specification gives the device physical addresses, except where the
 * platform cannot: a Xen guest's devices need grant mappings, and the
 * memory of an encrypted guest is visible to the host only through the
 * DMA API's shared bounce buffers.
 */
static bool revirt_use_dma_api(struct revirt_device *vdev)
{
	return revirt_has_feature(vdev, VIRTIO_F_ACCESS_PLATFORM) ||
	       xen_domain() || cc_platform_has(CC_ATTR_GUEST_MEM_ENCRYPT);
}

/**
 * revirt_create_vq - make a virtqueue laid out for the negotiated features
 * @vdev: the device, its features negotiated
 * @index: queue number on the device
 * @num: ring size
 * @align: alignment of the used ring
 * @dma_dev: device the ring and buffers are mapped for
 * @notify: the transport's kick
 * @info: the driver's name and callback for the queue
 *
 * For transports: byte order, indirect descriptors, event index and the
 * use of the DMA API follow the features the core negotiated.
 *
 * Return: the queue, or an ERR_PTR().
 */
struct revirt_virtqueue *
revirt_create_vq(struct revirt_device *vdev, unsigned int index,
		 unsigned int num, unsigned int align, struct device *dma_dev,
		 bool (*notify)(struct revirt_virtqueue *vq),
		 const struct revirt_vq_info *info)
{
	const struct revirt_vring_config cfg = {
		.index = index,
		.num = num,
		.align = align,
		.little_endian = revirt_is_little_endian(vdev),
		.event_idx = revirt_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX),
		.indirect = revirt_has_feature(vdev,
					       VIRTIO_RING_F_INDIRECT_DESC),
		.weak_barriers = true,
		.use_dma_api = revirt_use_dma_api(vdev),
		.dma_dev = dma_dev,
		.msg_dev = &vdev->dev,
		.notify = notify,
	};

	return revirt_vring_create(&cfg, vdev, info->callback, info->name);
}
EXPORT_SYMBOL_GPL(revirt_create_vq);

/**
 * revirt_del_vqs - delete every virtqueue of the device
 * @vdev: the device, reset, with every buffer taken back
 */
void revirt_del_vqs(struct revirt_device *vdev)
{
	vdev->config->del_vqs(vdev);
}
EXPORT_SYMBOL_GPL(revirt_del_vqs);

/**
 * revirt_vq_can_reset - tell whether one queue can be reset alone
 * @vq: the virtqueue
 *
 * Return: true if the device negotiated VIRTIO_F_RING_RESET and its
 * transport resets single queues; otherwise only the whole device can be.
 */
bool revirt_vq_can_reset(const struct revirt_virtqueue *vq)
{
	const struct revirt_device *vdev = vq->vdev;

	return revirt_has_feature(vdev, VIRTIO_F_RING_RESET) &&
	       vdev->config->reset_vq && vdev->config->enable_vq &&
	       !vdev->broken;
}
EXPORT_SYMBOL_GPL(revirt_vq_can_reset);

/**
 * revirt_vq_reset - reset one virtqueue and wait until it completed
 * @vq: the virtqueue; the driver adds no buffer to it until it is enabled
 *
 * After a successful return the device uses the queue no more and its
 * callback does not run; the driver takes back its buffers (there is no
 * shutdown operation, as for the whole device) and calls
 * revirt_vq_enable().  The other queues run on.  A queue whose reset does
 * not complete in time is marked broken: the device must then be reset.
 *
 * Return: 0, -EOPNOTSUPP if the device cannot reset one queue, or the
 * transport's error (-ETIMEDOUT for a reset that did not complete).
 */
int revirt_vq_reset(struct revirt_virtqueue *vq)
{
	struct revirt_device *vdev = vq->vdev;
	int err;

	if (!revirt_vq_can_reset(vq))
		return -EOPNOTSUPP;
	atomic_inc(&vdev->queue_resets);
	err = vdev->config->reset_vq(vq);
	if (err) {
		dev_err(&vdev->dev, "queue %s: reset did not complete (%d): queue marked broken\n",
			vq->name, err);
		revirt_vq_mark_broken(vq);
	}
	return err;
}
EXPORT_SYMBOL_GPL(revirt_vq_reset);

/* The size asked for a queue, checked against what the device allows. */
static int revirt_vq_size_ok(struct revirt_virtqueue *vq, unsigned int num)
{
	struct revirt_device *vdev = vq->vdev;
	unsigned int max = vdev->config->max_vq_size ?
			   vdev->config->max_vq_size(vq) :
			   revirt_vq_get_vring_size(vq);

	if (num && is_power_of_2(num) && num <= max)
		return 0;
	dev_err(&vdev->dev, "queue %s: size %u refused: a power of two up to %u is needed; keeping %u entries\n",
		vq->name, num, max, revirt_vq_get_vring_size(vq));
	return -EINVAL;
}

/**
 * revirt_vq_enable - give a queue reset alone back to the device
 * @vq: the virtqueue, reset by revirt_vq_reset(), every buffer taken back
 * @num: new ring size, or 0 to keep it
 *
 * The ring starts over empty, in new memory if its size changes, and the
 * device gets it again.  A size the device refuses, or memory that cannot
 * be had for it, leaves the queue at its old size, enabled.
 *
 * Return: 0; -EINVAL or -ENOMEM if the new size was not taken (the queue
 * runs at its old size); -EIO (the queue marked broken) if the device did
 * not take the queue back: the device must then be reset.
 */
int revirt_vq_enable(struct revirt_virtqueue *vq, unsigned int num)
{
	struct revirt_device *vdev = vq->vdev;
	int err = 0, ret;

	if (!revirt_vq_can_reset(vq))
		return -EOPNOTSUPP;
	if (num && num != revirt_vq_get_vring_size(vq))
		err = revirt_vq_size_ok(vq, num);
	ret = revirt_vring_reinit(vq, err ? 0 : num);
	if (ret && !err) {
		dev_err(&vdev->dev, "queue %s: no memory for %u entries (%d); keeping %u\n",
			vq->name, num, ret, revirt_vq_get_vring_size(vq));
		err = ret;
	}
	ret = vdev->config->enable_vq(vq);
	if (ret) {
		dev_err(&vdev->dev, "queue %s: the device did not take the queue back (%d)\n",
			vq->name, ret);
		revirt_vq_mark_broken(vq);
		return -EIO;
	}
	return err;
}
EXPORT_SYMBOL_GPL(revirt_vq_enable);

/**
 * revirt_cread - read a config field without tearing
 * @vdev: the device
 * @offset: offset in the device-specific config
 * @size: 1, 2, 4 or 8 bytes
 *
 * The read is repeated while the config generation changes, a bounded
 * number of times.
 *
 * Return: the field in CPU byte order.
 */
u64 revirt_cread(struct revirt_device *vdev, unsigned int offset,
		 unsigned int size)
{
	bool le = revirt_is_little_endian(vdev);
	unsigned int tries = 0;
	union {
		u8 v8;
		__virtio16 v16;
		__virtio32 v32;
		__virtio64 v64;
	} val = {};
	u32 before, after;

	if (WARN_ON_ONCE(size != 1 && size != 2 && size != 4 && size != 8))
		return 0;
	do {
		before = vdev->config->generation(vdev);
		vdev->config->get(vdev, offset, &val, size);
		after = vdev->config->generation(vdev);
	} while (before != after && ++tries < REVIRT_CONFIG_READ_TRIES);
	if (before != after)
		dev_warn_ratelimited(&vdev->dev,
				     "config generation keeps changing; read of offset %u may be torn\n",
				     offset);

	switch (size) {
	case 1:
		return val.v8;
	case 2:
		return __virtio16_to_cpu(le, val.v16);
	case 4:
		return __virtio32_to_cpu(le, val.v32);
	default:
		return __virtio64_to_cpu(le, val.v64);
	}
}
EXPORT_SYMBOL_GPL(revirt_cread);

/* Config-change callbacks reach the driver only while it is bound and set up. */
static void revirt_config_enable(struct revirt_device *vdev)
{
	bool pending;

	spin_lock_irq(&vdev->config_lock);
	vdev->config_enabled = true;
	pending = vdev->config_change_pending;
	vdev->config_change_pending = false;
	spin_unlock_irq(&vdev->config_lock);
	if (pending)
		schedule_work(&vdev->config_work);
}

static void revirt_config_disable(struct revirt_device *vdev)
{
	spin_lock_irq(&vdev->config_lock);
	vdev->config_enabled = false;
	spin_unlock_irq(&vdev->config_lock);
	flush_work(&vdev->config_work);
}

static void revirt_config_work(struct work_struct *work)
{
	struct revirt_device *vdev =
		container_of(work, struct revirt_device, config_work);
	struct revirt_driver *drv;

	spin_lock_irq(&vdev->config_lock);
	if (!vdev->config_enabled) {
		spin_unlock_irq(&vdev->config_lock);
		return;
	}
	spin_unlock_irq(&vdev->config_lock);

	/* Disabling flushes this work before the driver goes away. */
	drv = drv_to_revirt(vdev->dev.driver);
	if (drv->config_changed)
		drv->config_changed(vdev);
}

/*
 * DEVICE_NEEDS_RESET: the device gave up (QEMU does so on a malformed
 * descriptor).  Recover without user action, through the same path as the
 * reset attribute: the driver is removed (its requests in flight end with
 * an error and the device is reset), then probed again.
 */
static bool revirt_take_reset_request(struct revirt_device *vdev)
{
	bool requested;

	spin_lock_irq(&vdev->config_lock);
	requested = vdev->reset_requested;
	vdev->reset_requested = false;
	/* The device reset set every queue up again. */
	vdev->vq_reset_pending = 0;
	spin_unlock_irq(&vdev->config_lock);
	return requested;
}

/*
 * A reset the bound driver asked for (a request timed out), possibly while
 * it is being removed: once the device lock is ours the driver may be gone,
 * and then nothing is reset or probed again (an unbind must stay one).
 */
static int revirt_reinit(struct revirt_device *vdev,
			 struct revirt_driver *drv);

static int revirt_driver_reset(struct revirt_device *vdev)
{
	struct revirt_driver *drv;
	int err = 0;

	device_lock(&vdev->dev);
	drv = vdev->dev.driver ? drv_to_revirt(vdev->dev.driver) : NULL;
	if (drv && drv->reinit)
		err = revirt_reinit(vdev, drv);
	device_unlock(&vdev->dev);
	if (drv && !drv->reinit)
		err = revirt_reprobe(vdev);
	return err;
}

/* After a reset_vq that returned @err, the queue works (maybe unresized). */
static bool revirt_vq_runs_on(int err)
{
	return !err || err == -EINVAL || err == -ENOMEM;
}

/*
 * Reset queue @index alone through the bound driver, under reprobe_lock.
 * A queue reset that failed leaves a queue the device may still hold:
 * the whole device is reset then, and so it is, if @fallback, where the
 * device cannot reset one queue.
 */
static int revirt_reset_vq_or_device(struct revirt_device *vdev,
				     unsigned int index, unsigned int num,
				     bool fallback)
{
	struct revirt_driver *drv;
	int err;

	device_lock(&vdev->dev);
	drv = vdev->dev.driver ? drv_to_revirt(vdev->dev.driver) : NULL;
	if (!drv) {
		device_unlock(&vdev->dev);
		return -ENODEV;
	}
	if (vdev->frozen) {
		/* The queues are gone; the restore sets every one up anew. */
		device_unlock(&vdev->dev);
		return -EBUSY;
	}
	if (!drv->reset_vq || !revirt_has_feature(vdev, VIRTIO_F_RING_RESET)) {
		dev_info(&vdev->dev, "queue %u: no per-queue reset (VIRTIO_F_RING_RESET not negotiated)%s\n",
			 index, fallback ? ": resetting the device" : "");
		err = -EOPNOTSUPP;
	} else {
		err = drv->reset_vq(vdev, index, num);
		if (!revirt_vq_runs_on(err) && err != -EOPNOTSUPP) {
			dev_warn(&vdev->dev, "queue %u: reset of the queue alone failed (%d): resetting the device\n",
				 index, err);
			fallback = true;
		}
	}
	device_unlock(&vdev->dev);
	if (!revirt_vq_runs_on(err) && fallback)
		revirt_driver_reset(vdev);
	return err;
}

/* The queues whose driver asked for a reset of that queue alone. */
static void revirt_recover_vqs(struct revirt_device *vdev)
{
	unsigned int index;
	u64 pending;

	spin_lock_irq(&vdev->config_lock);
	pending = vdev->vq_reset_pending;
	vdev->vq_reset_pending = 0;
	spin_unlock_irq(&vdev->config_lock);

	while (pending) {
		index = __ffs64(pending);
		pending &= pending - 1;
		/* After a failure the device was reset: nothing is left. */
		if (revirt_reset_vq_or_device(vdev, index, 0, true))
			break;
	}
}

/*
 * A device that is gone: the driver wakes what waits for the device, then
 * is stopped through the path of a reset, which fails at once; a driver
 * with reinit stays bound and fails its I/O, any other is removed (and
 * not probed again: the device is broken).  Once: later requests merge.
 */
static void revirt_recover_gone(struct revirt_device *vdev)
{
	struct revirt_driver *drv;

	if (!revirt_take_reset_request(vdev))
		return;
	device_lock(&vdev->dev);
	drv = vdev->dev.driver ? drv_to_revirt(vdev->dev.driver) : NULL;
	if (drv && drv->device_gone)
		drv->device_gone(vdev);
	device_unlock(&vdev->dev);
	if (drv)
		revirt_driver_reset(vdev);
}

static void revirt_recover_work(struct work_struct *work)
{
	struct revirt_device *vdev =
		container_of(work, struct revirt_device, recover_work);
	int err = 0;

	mutex_lock(&vdev->reprobe_lock);
	if (READ_ONCE(vdev->gone)) {
		revirt_recover_gone(vdev);
		mutex_unlock(&vdev->reprobe_lock);
		return;
	}
	if (vdev->config->get_status(vdev) & VIRTIO_CONFIG_S_NEEDS_RESET) {
		dev_warn(&vdev->dev, "device needs a reset: resetting it and setting it up again\n");
		err = revirt_reprobe(vdev);
	} else if (READ_ONCE(vdev->reset_requested) && READ_ONCE(vdev->dev.driver)) {
		dev_warn(&vdev->dev, "driver asked for a reset: resetting the device and setting it up again\n");
		err = revirt_driver_reset(vdev);
	} else {
		revirt_recover_vqs(vdev);
		mutex_unlock(&vdev->reprobe_lock);
		return;
	}
	/* Requests that came in while the reset ran are answered by it. */
	revirt_take_reset_request(vdev);
	mutex_unlock(&vdev->reprobe_lock);
	if (err)
		dev_err(&vdev->dev, "recovery failed (%d)\n", err);
}

/**
 * revirt_reset_one_vq - reset one queue alone, for the sysfs attributes
 * @vdev: the device
 * @index: the queue
 * @num: its new size, or 0 to keep it
 *
 * Return: 0, -EOPNOTSUPP without a per-queue reset, -EINVAL for a queue
 * or a size the device refused (the queue runs on), or the error of a
 * queue reset that failed (the device was then reset as a whole).
 */
int revirt_reset_one_vq(struct revirt_device *vdev, unsigned int index,
			unsigned int num)
{
	int err;

	mutex_lock(&vdev->reprobe_lock);
	err = revirt_reset_vq_or_device(vdev, index, num, false);
	mutex_unlock(&vdev->reprobe_lock);
	return err;
}

/**
 * revirt_schedule_reset - ask the core to reset the device and set it up again
 * @vdev: the device, with a driver bound
 *
 * For a driver whose device stopped answering (a request timed out): the
 * core runs, from a work item, the path of the reset attribute.  Requests
 * made before that reset has run are merged into it.  May be called in
 * atomic context.
 */
void revirt_schedule_reset(struct revirt_device *vdev)
{
	unsigned long flags;

	spin_lock_irqsave(&vdev->config_lock, flags);
	if (!vdev->unregistering && !vdev->reset_requested) {
		vdev->reset_requested = true;
		schedule_work(&vdev->recover_work);
	}
	spin_unlock_irqrestore(&vdev->config_lock, flags);
}
EXPORT_SYMBOL_GPL(revirt_schedule_reset);

/**
 * revirt_schedule_vq_reset - ask the core to reset one queue alone
 * @vdev: the device, with a driver bound
 * @index: the queue the device broke, or on which a request timed out
 *
 * The core calls the driver's reset_vq operation from a work item, under
 * the locks of the reset attribute, and resets the whole device instead
 * where the device cannot reset one queue or the queue reset fails.  May
 * be called in atomic context.
 */
void revirt_schedule_vq_reset(struct revirt_device *vdev, unsigned int index)
{
	unsigned long flags;

	if (index >= 64) {
		revirt_schedule_reset(vdev);
		return;
	}
	spin_lock_irqsave(&vdev->config_lock, flags);
	if (!vdev->unregistering && !(vdev->vq_reset_pending & BIT_ULL(index))) {
		vdev->vq_reset_pending |= BIT_ULL(index);
		schedule_work(&vdev->recover_work);
	}
	spin_unlock_irqrestore(&vdev->config_lock, flags);
}
EXPORT_SYMBOL_GPL(revirt_schedule_vq_reset);

/**
 * revirt_config_changed - the transport saw a config-change interrupt
 * @vdev: the device
 *
 * A device that raised DEVICE_NEEDS_RESET is recovered by the core; other
 * changes reach the driver's config_changed.  May be called in interrupt
 * context.
 */
void revirt_config_changed(struct revirt_device *vdev)
{
	bool needs_reset = vdev->config->get_status(vdev) &
			   VIRTIO_CONFIG_S_NEEDS_RESET;
	unsigned long flags;

	spin_lock_irqsave(&vdev->config_lock, flags);
	if (needs_reset && !vdev->unregistering)
		schedule_work(&vdev->recover_work);
	else if (vdev->config_enabled)
		schedule_work(&vdev->config_work);
	else
		vdev->config_change_pending = true;
	spin_unlock_irqrestore(&vdev->config_lock, flags);
}
EXPORT_SYMBOL_GPL(revirt_config_changed);

static int revirt_reset_and_ack(struct revirt_device *vdev)
{
	int err = revirt_reset_device(vdev);

	if (!err)
		revirt_add_status(vdev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	return err;
}

/*
 * Bring the device to ACKNOWLEDGE: a device fresh from a reset is only
 * acknowledged; one a previous owner left set up is reset first.
 */
static int revirt_acknowledge(struct revirt_device *vdev)
{
	u8 status = vdev->config->get_status(vdev);

	if (!vdev->broken && status == VIRTIO_CONFIG_S_ACKNOWLEDGE)
		return 0;
	if (!vdev->broken && !status) {
		revirt_add_status(vdev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
		return 0;
	}
	return revirt_reset_and_ack(vdev);
}

static u64 revirt_driver_features(const struct revirt_driver *drv)
{
	u64 features = 0;
	unsigned int i;

	for (i = 0; i < drv->feature_table_size; i++)
		if (drv->feature_table[i] < 64)
			features |= BIT_ULL(drv->feature_table[i]);
	return features;
}

static int revirt_negotiate(struct revirt_device *vdev,
			    const struct revirt_driver *drv)
{
	u64 offered = vdev->config->get_features(vdev);
	int err;

	vdev->features = offered & vdev->features_mask &
			 (revirt_driver_features(drv) |
			  revirt_transport_features);
	if (!vdev->config->reset_vq || !drv->reset_vq)
		vdev->features &= ~BIT_ULL(VIRTIO_F_RING_RESET);
	err = vdev->config->finalize_features(vdev);
	if (err)
		return err;
	if (!revirt_has_feature(vdev, VIRTIO_F_VERSION_1))
		return 0;

	revirt_add_status(vdev, VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(vdev->config->get_status(vdev) & VIRTIO_CONFIG_S_FEATURES_OK)) {
		dev_err(&vdev->dev, "device refused features 0x%llx (FEATURES_OK not set)\n",
			vdev->features);
		return -ENODEV;
	}
	return 0;
}

/**
 * revirt_renegotiate - take a reset device through feature negotiation
 * @vdev: the device, reset by its bound driver's reinit operation
 *
 * ACKNOWLEDGE, DRIVER, the features (the driver's table, features_mask
 * and what the device offers) and, for version-1 devices, FEATURES_OK read
 * back.  The driver then sets up its queues.  On error the device is
 * marked FAILED (unless it could not even be reset).
 *
 * Return: 0 or a negative error.
 */
int revirt_renegotiate(struct revirt_device *vdev)
{
	struct revirt_driver *drv = drv_to_revirt(vdev->dev.driver);
	int err;

	err = revirt_acknowledge(vdev);
	if (err)
		return err;
	revirt_add_status(vdev, VIRTIO_CONFIG_S_DRIVER);
	err = revirt_negotiate(vdev, drv);
	if (err)
		revirt_add_status(vdev, VIRTIO_CONFIG_S_FAILED);
	return err;
}
EXPORT_SYMBOL_GPL(revirt_renegotiate);

/*
 * After a probe, reinit or restore: DRIVER_OK unless the driver set it
 * already (to use the device during its probe), then config changes.
 */
static void revirt_driver_running(struct revirt_device *vdev)
{
	if (!(vdev->config->get_status(vdev) & VIRTIO_CONFIG_S_DRIVER_OK))
		revirt_device_ready(vdev);
	revirt_config_enable(vdev);
}

static int revirt_dev_probe(struct device *dev)
{
	struct revirt_device *vdev = dev_to_revirt(dev);
	struct revirt_driver *drv = drv_to_revirt(dev->driver);
	int err;

	err = revirt_acknowledge(vdev);
	if (err)
		return err;
	revirt_add_status(vdev, VIRTIO_CONFIG_S_DRIVER);

	err = revirt_negotiate(vdev, drv);
	if (err)
		goto failed;
	err = drv->probe(vdev);
	if (err)
		goto failed;
	revirt_driver_running(vdev);
	return 0;

failed:
	if (!list_empty(&vdev->vqs)) {
		dev_err(&vdev->dev, "driver %s left queues after a failed probe; deleting them\n",
			drv->driver.name);
		revirt_reset_and_ack(vdev);
		revirt_del_vqs(vdev);
	}
	revirt_add_status(vdev, VIRTIO_CONFIG_S_FAILED);
	dev_err(&vdev->dev, "probe of %s failed (%d): device marked FAILED\n",
		drv->driver.name, err);
	return err;
}

static void revirt_dev_remove(struct device *dev)
{
	struct revirt_device *vdev = dev_to_revirt(dev);
	struct revirt_driver *drv = drv_to_revirt(dev->driver);
	u8 status;

	/* The driver's remove expects what its restore sets up. */
	if (vdev->frozen)
		revirt_device_restore(vdev);
	revirt_config_disable(vdev);
	/* A reset the driver asked for has nobody to set up again. */
	revirt_take_reset_request(vdev);
	drv->remove(vdev);

	status = vdev->config->get_status(vdev);
	if (status && !vdev->broken) {
		dev_err(&vdev->dev, "driver %s did not reset the device (status 0x%02x); resetting it\n",
			drv->driver.name, status);
		revirt_reset_device(vdev);
	}
	if (!list_empty(&vdev->vqs)) {
		dev_err(&vdev->dev, "driver %s did not delete its queues; deleting them\n",
			drv->driver.name);
		revirt_del_vqs(vdev);
	}
	if (!vdev->broken)
		revirt_add_status(vdev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
}

static void revirt_dev_shutdown(struct device *dev)
{
	struct revirt_device *vdev = dev_to_revirt(dev);

	/* No DMA may outlive the kernel (kexec, reboot). */
	revirt_config_disable(vdev);
	revirt_reset_device(vdev);
}

static bool revirt_id_matches(const struct revirt_device_id *id,
			      const struct revirt_device *vdev)
{
	if (id->device != vdev->id.device && id->device != REVIRT_DEV_ANY_ID)
		return false;
	return id->vendor == REVIRT_DEV_ANY_ID || id->vendor == vdev->id.vendor;
}

static int revirt_dev_match(struct device *dev,
			    REVIRT_BUS_MATCH_CONST struct device_driver *drv)
{
	const struct revirt_driver *rdrv =
		container_of(drv, struct revirt_driver, driver);
	const struct revirt_device_id *id = rdrv->id_table;
	const struct revirt_device *vdev = dev_to_revirt(dev);

	for (; id && id->device; id++)
		if (revirt_id_matches(id, vdev))
			return 1;
	return 0;
}

static int revirt_dev_uevent(REVIRT_BUS_UEVENT_CONST struct device *dev,
			     struct kobj_uevent_env *env)
{
	const struct revirt_device *vdev =
		container_of(dev, struct revirt_device, dev);

	return add_uevent_var(env, "MODALIAS=revirt:d%08Xv%08X",
			      vdev->id.device, vdev->id.vendor);
}

/* ---- system sleep and function resets ------------------------------------ */

static void revirt_set_frozen(struct revirt_device *vdev, bool frozen)
{
	spin_lock_irq(&vdev->config_lock);
	vdev->frozen = frozen;
	spin_unlock_irq(&vdev->config_lock);
}

/**
 * revirt_device_freeze - stop the bound driver and leave its device reset
 * @vdev: the device; the caller holds its device lock
 *
 * For system sleep (the bus's PM operations) and for a transport whose
 * function is about to be reset (PCI reset_prepare).  The driver's freeze
 * operation stops the I/O, keeping the requests in flight, resets the
 * device and deletes the queues.  Until revirt_device_restore() no reset,
 * renegotiation or recovery runs: what is asked meanwhile is answered by
 * the restore, and a device found gone meanwhile is found so again by it.
 * A device without a driver, or whose driver cannot freeze, is left as it
 * is.
 *
 * Return: 0, or the driver's error (the device then runs on).
 */
int revirt_device_freeze(struct revirt_device *vdev)
{
	struct revirt_driver *drv;
	int err;

	device_lock_assert(&vdev->dev);
	drv = vdev->dev.driver ? drv_to_revirt(vdev->dev.driver) : NULL;
	if (!drv || !drv->freeze || !drv->restore || vdev->frozen)
		return 0;
	revirt_config_disable(vdev);
	revirt_set_frozen(vdev, true);
	err = drv->freeze(vdev);
	if (err) {
		revirt_set_frozen(vdev, false);
		revirt_config_enable(vdev);
		dev_err(&vdev->dev, "driver %s could not stop for a sleep or a reset (%d)\n",
			drv->driver.name, err);
	}
	return err;
}
EXPORT_SYMBOL_GPL(revirt_device_freeze);

/**
 * revirt_device_restore - set a frozen device up again
 * @vdev: the device; the caller holds its device lock
 *
 * The bound driver negotiates the features again and sets its queues up
 * (its restore operation), from a reset: the device may have been reset
 * by a function reset, or left as anything by the boot that restored a
 * hibernation image.  Resets and recoveries asked for while frozen are
 * answered by this set-up.  If it fails, one reset is scheduled: a driver
 * with reinit tries again, any other is removed and probed again.
 *
 * Return: 0, or the driver's error.
 */
int revirt_device_restore(struct revirt_device *vdev)
{
	struct revirt_driver *drv;
	int err;

	device_lock_assert(&vdev->dev);
	if (!vdev->frozen)
		return 0;
	drv = drv_to_revirt(vdev->dev.driver);
	revirt_set_frozen(vdev, false);
	revirt_take_reset_request(vdev);
	err = drv->restore(vdev);
	if (err) {
		dev_err(&vdev->dev, "driver %s could not set the device up after a sleep or a reset (%d)\n",
			drv->driver.name, err);
		revirt_schedule_reset(vdev);
		return err;
	}
	revirt_driver_running(vdev);
	return 0;
}
EXPORT_SYMBOL_GPL(revirt_device_restore);

static int revirt_pm_freeze(struct device *dev)
{
	return revirt_device_freeze(dev_to_revirt(dev));
}

static int revirt_pm_restore(struct device *dev)
{
	return revirt_device_restore(dev_to_revirt(dev));
}

/*
 * Suspend, hibernation's freeze and poweroff all stop the driver with its
 * device reset: the device is then quiet while memory is saved, whatever
 * the platform does to it.  Resume, thaw and restore set it up from there.
 * The device lock is held by the PM core.
 */
static DEFINE_SIMPLE_DEV_PM_OPS(revirt_pm_ops, revirt_pm_freeze,
				revirt_pm_restore);

/* const wherever the driver core allows it (revirt_compat.h) */
static REVIRT_BUS_TYPE revirt_bus = {
	.name = "revirt",
	.match = revirt_dev_match,
	.uevent = revirt_dev_uevent,
	.probe = revirt_dev_probe,
	.remove = revirt_dev_remove,
	.shutdown = revirt_dev_shutdown,
	.dev_groups = revirt_dev_groups,
	.pm = pm_sleep_ptr(&revirt_pm_ops),
};

/* A driver that resets and sets up its device itself, staying bound. */
static int revirt_reinit(struct revirt_device *vdev,
			 struct revirt_driver *drv)
{
	int err;

	/* Frozen: the restore resets and sets up; it answers this request. */
	if (vdev->frozen)
		return 0;
	revirt_config_disable(vdev);
	err = drv->reinit(vdev);
	if (err) {
		dev_err(&vdev->dev, "driver %s could not set the device up again (%d)\n",
			drv->driver.name, err);
		return err;
	}
	revirt_driver_running(vdev);
	return 0;
}

/*
 * Reset the device and set its driver up again: the way to renegotiate
 * features and to recover a device that got into a bad state.  A driver
 * with a reinit operation does it while bound; others are removed and
 * probed again.
 */
int revirt_reprobe(struct revirt_device *vdev)
{
	struct revirt_driver *drv;
	bool bound;
	int err = 0;

	/* Removing a driver resets the device; without one, reset here. */
	device_lock(&vdev->dev);
	bound = vdev->dev.driver;
	drv = bound ? drv_to_revirt(vdev->dev.driver) : NULL;
	if (drv && drv->reinit) {
		/* The driver stays bound; unbind waits for the lock. */
		err = revirt_reinit(vdev, drv);
		device_unlock(&vdev->dev);
		return err;
	}
	if (bound && vdev->frozen) {
		/* As in revirt_reinit(): the restore answers this request. */
		device_unlock(&vdev->dev);
		return 0;
	}
	if (!bound)
		err = revirt_reset_and_ack(vdev);
	device_unlock(&vdev->dev);
	if (bound)
		device_release_driver(&vdev->dev);
	if (err)
		return err;
	if (vdev->broken)
		return -EIO;
	err = device_attach(&vdev->dev);
	return err < 0 ? err : 0;
}

/**
 * __revirt_register_driver - register a driver on the revirt bus
 * @drv: the driver
 * @owner: module of the driver
 *
 * Return: 0 or a negative error.
 */
int __revirt_register_driver(struct revirt_driver *drv, struct module *owner)
{
	drv->driver.bus = &revirt_bus;
	drv->driver.owner = owner;
	return driver_register(&drv->driver);
}
EXPORT_SYMBOL_GPL(__revirt_register_driver);

/**
 * revirt_unregister_driver - unregister a driver; its devices are removed
 * @drv: the driver
 */
void revirt_unregister_driver(struct revirt_driver *drv)
{
	driver_unregister(&drv->driver);
}
EXPORT_SYMBOL_GPL(revirt_unregister_driver);

/**
 * revirt_register_device - reset a device, acknowledge it and add it
 * @vdev: the device; the transport set @id, @config and @dev.parent and
 *	@dev.release, which frees it
 *
 * On error the caller drops its reference with put_device(&vdev->dev).
 *
 * Return: 0 or a negative error.
 */
int revirt_register_device(struct revirt_device *vdev)
{
	int err;

	device_initialize(&vdev->dev);
	INIT_LIST_HEAD(&vdev->vqs);
	spin_lock_init(&vdev->config_lock);
	INIT_WORK(&vdev->config_work, revirt_config_work);
	mutex_init(&vdev->reprobe_lock);
	INIT_WORK(&vdev->recover_work, revirt_recover_work);
	vdev->features_mask = ~0ULL;
	atomic_set(&vdev->resets, 0);

	err = ida_alloc(&revirt_index_ida, GFP_KERNEL);
	if (err < 0)
		return err;
	vdev->index = err;
	vdev->dev.bus = &revirt_bus;
	err = dev_set_name(&vdev->dev, "revirt%u", vdev->index);
	if (err)
		goto free_index;

	/* A previous driver, or the firmware, may have left it running. */
	err = revirt_reset_and_ack(vdev);
	if (err)
		goto free_index;
	err = device_add(&vdev->dev);
	if (err)
		goto free_index;
	return 0;

free_index:
	/* A device found gone by the first reset scheduled its recovery. */
	cancel_work_sync(&vdev->recover_work);
	ida_free(&revirt_index_ida, vdev->index);
	return err;
}
EXPORT_SYMBOL_GPL(revirt_register_device);

/**
 * revirt_unregister_device - remove a device from the bus
 * @vdev: the device; its driver is removed first (which resets it)
 *
 * The device is reset once more at the end, so that the next owner of the
 * function (another driver, a reloaded transport) finds it quiet.
 */
void revirt_unregister_device(struct revirt_device *vdev)
{
	unsigned int index = vdev->index;

	/* No recovery may start, or still run, once the device goes. */
	spin_lock_irq(&vdev->config_lock);
	vdev->unregistering = true;
	spin_unlock_irq(&vdev->config_lock);
	cancel_work_sync(&vdev->recover_work);

	/* Keep the structure, which the transport owns, for the last reset. */
	get_device(&vdev->dev);
	device_unregister(&vdev->dev);
	/* Nothing answers a device that is gone: do not wait for it. */
	if (!READ_ONCE(vdev->gone))
		vdev->config->reset(vdev);
	put_device(&vdev->dev);
	ida_free(&revirt_index_ida, index);
}
EXPORT_SYMBOL_GPL(revirt_unregister_device);

static int __init revirt_init(void)
{
	return bus_register(&revirt_bus);
}

static void __exit revirt_exit(void)
{
	bus_unregister(&revirt_bus);
	ida_destroy(&revirt_index_ida);
}

module_init(revirt_init);
module_exit(revirt_exit);
MODULE_DESCRIPTION("revirt: virtio bus with a reset lifecycle, and virtqueues");
MODULE_LICENSE("GPL");
