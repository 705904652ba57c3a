// SPDX-License-Identifier: GPL-2.0-only
/*
 * revirt entropy driver: a virtio-rng device as a hwrng "revirt_rng.N".
 *
 * One request of up to 64 bytes is on the device at a time.  Remove stops
 * the hwrng first (no reader left), then resets the device so that it no
 * longer writes into the buffer, and only then takes the buffer back and
 * frees the queue.
 */

#include <linux/hw_random.h>
#include <linux/module.h>
#include <linux/revirt.h>
#include <linux/revirt_ring.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <uapi/linux/virtio_ids.h>

/* Bound on waiting for the device to answer one request. */
#define REVIRT_RNG_TIMEOUT	(2 * HZ)

static unsigned int fail_probe;
module_param(fail_probe, uint, 0644);
MODULE_PARM_DESC(fail_probe, "Test only: fail the next N probes with -EIO");

/*
 * A request followed by an avail entry out of range is a malformed ring to
 * QEMU, whose device then raises DEVICE_NEEDS_RESET: how the core's
 * recovery is shown against a real device model.
 */
static unsigned int malformed_requests;
module_param(malformed_requests, uint, 0644);
MODULE_PARM_DESC(malformed_requests,
		 "Test only: follow the next N requests by a malformed avail entry");

struct revirt_rng {
	struct revirt_device *vdev;
	struct revirt_virtqueue *vq;
	struct hwrng hwrng;
	char name[32];
	wait_queue_head_t settled;	/* busy, removed or broken changed */
	spinlock_t lock;		/* the queue, and the fields below */
	bool busy;			/* a request is on the device */
	bool removed;
	unsigned int data_avail;
	unsigned int data_idx;
	u8 data[64] ____cacheline_aligned;	/* written by the device */
};

static void revirt_rng_done(struct revirt_virtqueue *vq)
{
	struct revirt_rng *vi = vq->vdev->priv;
	unsigned long flags;
	unsigned int len;

	spin_lock_irqsave(&vi->lock, flags);
	if (revirt_vq_get_buf(vq, &len)) {
		/* The ring checked len against the buffer; keep it bounded. */
		vi->data_avail = min_t(unsigned int, len, sizeof(vi->data));
		vi->data_idx = 0;
		vi->busy = false;
	}
	spin_unlock_irqrestore(&vi->lock, flags);
	/* Also when the device lied: the reader gets -EIO now, not later. */
	wake_up(&vi->settled);
}

static void revirt_rng_maybe_malform(struct revirt_rng *vi)
{
	if (!malformed_requests)
		return;
	malformed_requests--;
	dev_warn(&vi->vdev->dev, "revirt_rng: malforming the avail ring (malformed_requests)\n");
	revirt_vq_inject_bad_head(vi->vq);
}

static int revirt_rng_request(struct revirt_rng *vi)
{
	struct scatterlist sg;
	unsigned long flags;
	int err = 0;

	spin_lock_irqsave(&vi->lock, flags);
	if (vi->removed) {
		err = -ENODEV;
	} else if (!vi->busy) {
		sg_init_one(&sg, vi->data, sizeof(vi->data));
		err = revirt_vq_add_inbuf(vi->vq, &sg, 1, vi, GFP_ATOMIC);
		if (!err) {
			vi->busy = true;
			revirt_rng_maybe_malform(vi);
			revirt_vq_kick(vi->vq);
		}
	}
	spin_unlock_irqrestore(&vi->lock, flags);
	return err;
}

static unsigned int revirt_rng_take(struct revirt_rng *vi, void *buf,
				    size_t size)
{
	unsigned long flags;
	unsigned int n;

	spin_lock_irqsave(&vi->lock, flags);
	n = min_t(size_t, size, vi->data_avail);
	memcpy(buf, vi->data + vi->data_idx, n);
	vi->data_idx += n;
	vi->data_avail -= n;
	spin_unlock_irqrestore(&vi->lock, flags);
	return n;
}

/* The request in flight was answered, or never will be. */
static bool revirt_rng_settled(struct revirt_rng *vi)
{
	return !READ_ONCE(vi->busy) || READ_ONCE(vi->removed) ||
	       revirt_vq_is_broken(vi->vq);
}

static int revirt_rng_read(struct hwrng *rng, void *buf, size_t size,
			   bool wait)
{
	struct revirt_rng *vi = (struct revirt_rng *)rng->priv;
	long ret;
	int err;

	if (READ_ONCE(vi->data_avail))
		return revirt_rng_take(vi, buf, size);

	err = revirt_rng_request(vi);
	if (err)
		return err;
	if (!wait)
		return 0;

	ret = wait_event_killable_timeout(vi->settled, revirt_rng_settled(vi),
					  REVIRT_RNG_TIMEOUT);
	if (ret < 0)
		return ret;
	if (READ_ONCE(vi->removed))
		return -ENODEV;
	if (revirt_vq_is_broken(vi->vq))
		return -EIO;
	if (!ret)
		return -ETIMEDOUT;
	return revirt_rng_take(vi, buf, size);
}

static int revirt_rng_probe(struct revirt_device *vdev)
{
	const struct revirt_vq_info info = {
		.name = "input",
		.callback = revirt_rng_done,
	};
	struct revirt_rng *vi;
	int err;

	if (fail_probe) {
		fail_probe--;
		dev_err(&vdev->dev, "revirt_rng: probe failed on purpose (fail_probe)\n");
		return -EIO;
	}

	vi = kzalloc(sizeof(*vi), GFP_KERNEL);
	if (!vi)
		return -ENOMEM;
	vi->vdev = vdev;
	vdev->priv = vi;
	spin_lock_init(&vi->lock);
	init_waitqueue_head(&vi->settled);

	err = revirt_find_vqs(vdev, 1, &vi->vq, &info);
	if (err)
		goto free;

	snprintf(vi->name, sizeof(vi->name), "revirt_rng.%u", vdev->index);
	vi->hwrng.name = vi->name;
	vi->hwrng.read = revirt_rng_read;
	vi->hwrng.priv = (unsigned long)vi;

	/* hwrng_register() may read at once: the device must be live. */
	revirt_device_ready(vdev);
	err = hwrng_register(&vi->hwrng);
	if (err)
		goto reset;
	return 0;

reset:
	revirt_reset_device(vdev);
	while (revirt_vq_detach_unused_buf(vi->vq))
		;
	revirt_del_vqs(vdev);
free:
	vdev->priv = NULL;
	kfree(vi);
	return err;
}

static void revirt_rng_remove(struct revirt_device *vdev)
{
	struct revirt_rng *vi = vdev->priv;
	unsigned long flags;

	if (!vi)
		return;		/* a restore that failed left nothing */

	spin_lock_irqsave(&vi->lock, flags);
	vi->removed = true;
	vi->data_avail = 0;
	spin_unlock_irqrestore(&vi->lock, flags);
	wake_up_all(&vi->settled);
	hwrng_unregister(&vi->hwrng);

	/* After the reset the device no longer writes into vi->data. */
	revirt_reset_device(vdev);
	while (revirt_vq_detach_unused_buf(vi->vq))
		;
	revirt_del_vqs(vdev);
	vdev->priv = NULL;
	kfree(vi);
}

/* A read waiting for the device gets -EIO now: its queue is broken. */
static void revirt_rng_device_gone(struct revirt_device *vdev)
{
	struct revirt_rng *vi = vdev->priv;

	if (vi)
		wake_up_all(&vi->settled);
}

/*
 * System sleep and function resets: remove and probe, which already reset
 * the device and set it up from nothing.  The hwrng goes away and comes
 * back, so that no reader waits on a device that sleeps.
 */
static int revirt_rng_freeze(struct revirt_device *vdev)
{
	revirt_rng_remove(vdev);
	return 0;
}

static int revirt_rng_restore(struct revirt_device *vdev)
{
	int err = revirt_renegotiate(vdev);

	return err ? err : revirt_rng_probe(vdev);
}

static const struct revirt_device_id revirt_rng_ids[] = {
	{ VIRTIO_ID_RNG, REVIRT_DEV_ANY_ID },
	{ }
};

static struct revirt_driver revirt_rng_driver = {
	.driver.name = KBUILD_MODNAME,
	.id_table = revirt_rng_ids,
	.probe = revirt_rng_probe,
	.remove = revirt_rng_remove,
	.freeze = revirt_rng_freeze,
	.restore = revirt_rng_restore,
	.device_gone = revirt_rng_device_gone,
};

module_revirt_driver(revirt_rng_driver);
REVIRT_MODULE_ALIAS(00000004);
MODULE_DESCRIPTION("revirt: virtio entropy device as a hwrng");
MODULE_LICENSE("GPL");
