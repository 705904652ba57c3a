// SPDX-License-Identifier: GPL-2.0-only
/*
 * revirt simulated transport: device models inside the guest kernel, on
 * the revirt bus, with faults that can be switched on.
 *
 * lguest once gave Linux a virtio transport whose devices lived in a
 * hypervisor next to the kernel.  Here the device lives in this module, so
 * that every path the core and the drivers take when a device misbehaves
 * can be driven on purpose, with no QEMU and no hardware.
 *
 * Devices (module parameters rng= and blk=): entropy (virtio id 4) and a
 * RAM-backed block device (id 2, blk_size_kb).  Both are version-1
 * devices with one split ring, without indirect descriptors or event
 * index.  Buffers are reached through the DMA API of a platform device
 * "revirt-sim", which direct-maps them.
 *
 * The device side runs in a work item, as a real device runs beside the
 * CPU: a kick schedules it; it walks the avail ring, serves the requests,
 * writes the used ring and "interrupts" by calling the ring's interrupt
 * handler with interrupts off.  A malformed ring makes the device give up
 * as QEMU's devices do: DEVICE_NEEDS_RESET and a config interrupt.
 *
 * Reset: writing status 0 stops the device at once (it touches no ring
 * after that), then it reports completion (status reads 0) at once, after
 * reset_delay_ms, or never (reset_hang).  The transport polls for it,
 * bounded by the reset_timeout_ms parameter.
 *
 * Fault knobs, per device, in /sys/kernel/debug/revirt_sim/revirtN/:
 *
 *   reset_delay_ms   a reset completes this many milliseconds late
 *   reset_hang       a reset never completes
 *   refuse_features  FEATURES_OK is never set
 *   hold             requests stay in flight, unanswered
 *   used_bad_id      next N used entries: id out of range
 *   used_stale_id    next N used entries: the id of a descriptor that
 *                    heads no request in flight (as far as the device
 *                    knows: not the request answered, not one waiting)
 *   used_long_len    next N used entries: length beyond the buffer
 *   used_idx_jump    next N used index updates: move by ring size + 1
 *   config_flips     next N config reads: the config changes under them
 *   needs_reset      (write 1) raise DEVICE_NEEDS_RESET now
 *   in_flight        (read) buffers made available and not used yet
 *   requests         (read) requests served since the module loaded
 *
 * The counted faults are one-shot: each one applied counts one down.
 */

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/random.h>
#include <linux/revirt.h>
#include <linux/revirt_ring.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <uapi/linux/virtio_blk.h>
#include <uapi/linux/virtio_ids.h>
#include <uapi/linux/virtio_ring.h>

#define REVIRT_SIM_VENDOR	0x4d495352	/* "RSIM" */
#define REVIRT_SIM_MAX_DEVICES	8
#define SIM_RNG_QUEUE_SIZE	64
#define SIM_BLK_QUEUE_SIZE	128
#define SIM_SECTOR_SIZE		512
/* Most bytes one descriptor may describe; a driver asking more is broken. */
#define SIM_MAX_SEG_BYTES	(4U << 20)

static unsigned int rng = 2;
module_param(rng, uint, 0444);
MODULE_PARM_DESC(rng, "Number of simulated entropy devices");

static unsigned int blk = 1;
module_param(blk, uint, 0444);
MODULE_PARM_DESC(blk, "Number of simulated block devices");

static unsigned int blk_size_kb = 8192;
module_param(blk_size_kb, uint, 0444);
MODULE_PARM_DESC(blk_size_kb, "Size of each simulated block device (KiB)");

static unsigned int reset_timeout_ms = 1000;
module_param(reset_timeout_ms, uint, 0644);
MODULE_PARM_DESC(reset_timeout_ms,
		 "Bound on waiting for a simulated device to complete a reset");

/* Each is a u32 so that one pair of debugfs handlers serves them all. */
struct sim_faults {
	u32 reset_delay_ms;
	u32 reset_hang;
	u32 refuse_features;
	u32 hold;
	u32 used_bad_id;
	u32 used_stale_id;
	u32 used_long_len;
	u32 used_idx_jump;
	u32 config_flips;
};

struct sim_knob {
	const char *name;
	size_t offset;
};

#define SIM_KNOB(field) { #field, offsetof(struct sim_faults, field) }

static const struct sim_knob sim_knobs[] = {
	SIM_KNOB(reset_delay_ms),
	SIM_KNOB(reset_hang),
	SIM_KNOB(refuse_features),
	SIM_KNOB(hold),
	SIM_KNOB(used_bad_id),
	SIM_KNOB(used_stale_id),
	SIM_KNOB(used_long_len),
	SIM_KNOB(used_idx_jump),
	SIM_KNOB(config_flips),
};

struct revirt_sim;

/* What a debugfs knob file points at: the device and the field. */
struct sim_knob_file {
	struct revirt_sim *sim;
	const struct sim_knob *knob;
};

/* The device's view of its queue, as a transport would program it. */
struct sim_queue {
	bool ready;
	unsigned int num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	u16 last_avail;
	u16 used_idx;
};

struct sim_seg {
	void *buf;
	u32 len;
};

/* One request: its readable segments first, then its writable ones. */
struct sim_chain {
	struct sim_seg *seg;
	unsigned int nout;
	unsigned int nin;
	u32 out_len;
	u32 in_len;
};

enum sim_kind { SIM_RNG, SIM_BLK };

/**
 * struct revirt_sim - one simulated device
 * @vdev: the revirt device
 * @kind: entropy or block
 * @dma_dev: device the rings and buffers are mapped for
 * @lock: serialises the device model: everything below it
 * @status: the status byte as the driver reads it
 * @stopped: status 0 was written and the reset did not complete yet
 * @generation: config generation
 * @faults: the fault knobs
 * @q: the device side of the one queue
 * @segs: scratch for the segments of one chain, @q.num entries
 * @vq: the driver side of the queue, for interrupts and deletion
 * @requests: requests served
 * @work: the device running: serves the queue
 * @reset_work: completes a reset late
 * @debugfs: the device's knob directory
 * @knob_files: what each knob file refers to
 * @config: device-specific config space
 * @config_len: its size
 * @disk: backing store of a block device
 * @capacity: its size in 512-byte sectors
 * @serial: answer to VIRTIO_BLK_T_GET_ID
 */
struct revirt_sim {
	struct revirt_device vdev;
	enum sim_kind kind;
	struct device *dma_dev;
	struct mutex lock;		/* the device model */
	u8 status;
	bool stopped;
	u32 generation;
	struct sim_faults faults;
	struct sim_queue q;
	struct sim_seg *segs;
	struct revirt_virtqueue *vq;
	u64 requests;
	struct work_struct work;
	struct delayed_work reset_work;
	struct dentry *debugfs;
	struct sim_knob_file knob_files[ARRAY_SIZE(sim_knobs)];
	struct virtio_blk_config config;
	unsigned int config_len;
	u8 *disk;
	u64 capacity;
	char serial[VIRTIO_BLK_ID_BYTES];
};

static struct platform_device *sim_parent;
static struct revirt_sim *sim_devs[REVIRT_SIM_MAX_DEVICES];
static unsigned int sim_count;
static struct dentry *sim_debugfs_root;

static inline struct revirt_sim *to_sim(struct revirt_device *vdev)
{
	return container_of(vdev, struct revirt_sim, vdev);
}

/* ---- the device model ------------------------------------------------ */

static bool sim_running(const struct revirt_sim *sim)
{
	return !sim->stopped && sim->q.ready && !sim->faults.hold &&
	       (sim->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !(sim->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* A device gives up on a malformed ring, as QEMU's do: NEEDS_RESET. */
static void sim_give_up(struct revirt_sim *sim, const char *why)
{
	dev_warn(&sim->vdev.dev, "revirt_sim: malformed ring (%s): device needs a reset\n",
		 why);
	WRITE_ONCE(sim->status, sim->status | VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void *sim_dma_to_virt(struct revirt_sim *sim, u64 addr, u32 len)
{
	phys_addr_t phys = dma_to_phys(sim->dma_dev, addr);

	if (!len || len > SIM_MAX_SEG_BYTES)
		return NULL;
	if (!pfn_valid(PHYS_PFN(phys)) || !pfn_valid(PHYS_PFN(phys + len - 1)))
		return NULL;
	return phys_to_virt(phys);
}

static int sim_add_seg(struct revirt_sim *sim, struct sim_chain *c,
		       const struct vring_desc *desc)
{
	u16 flags = __virtio16_to_cpu(true, desc->flags);
	u32 len = __virtio32_to_cpu(true, desc->len);
	struct sim_seg *seg = &c->seg[c->nout + c->nin];

	if (flags & VRING_DESC_F_INDIRECT)
		return -EINVAL;		/* not offered */
	seg->buf = sim_dma_to_virt(sim, __virtio64_to_cpu(true, desc->addr),
				   len);
	seg->len = len;
	if (!seg->buf)
		return -EFAULT;
	if (flags & VRING_DESC_F_WRITE) {
		c->nin++;
		c->in_len += len;
	} else {
		if (c->nin)
			return -EINVAL;	/* readable after writable */
		c->nout++;
		c->out_len += len;
	}
	return 0;
}

/* Gather the chain at @head; every index and length is checked. */
static int sim_collect(struct revirt_sim *sim, u16 head, struct sim_chain *c)
{
	struct sim_queue *q = &sim->q;
	unsigned int i = head;
	int err;

	memset(c, 0, sizeof(*c));
	c->seg = sim->segs;
	for (;;) {
		const struct vring_desc *desc;

		if (i >= q->num || c->nout + c->nin >= q->num)
			return -EINVAL;
		desc = &q->desc[i];
		err = sim_add_seg(sim, c, desc);
		if (err)
			return err;
		if (!(__virtio16_to_cpu(true, desc->flags) & VRING_DESC_F_NEXT))
			return 0;
		i = __virtio16_to_cpu(true, desc->next);
	}
}

/* Copy between a flat buffer and the segments [first, first + n) of @c. */
static u32 sim_copy(struct sim_chain *c, unsigned int first, unsigned int n,
		    u32 offset, void *buf, u32 len, bool to_chain)
{
	u32 done = 0;
	unsigned int i;

	for (i = first; i < first + n && done < len; i++) {
		struct sim_seg *seg = &c->seg[i];
		u32 chunk;

		if (offset >= seg->len) {
			offset -= seg->len;
			continue;
		}
		chunk = min(seg->len - offset, len - done);
		if (to_chain)
			memcpy(seg->buf + offset, buf + done, chunk);
		else
			memcpy(buf + done, seg->buf + offset, chunk);
		done += chunk;
		offset = 0;
	}
	return done;
}

static u32 sim_read_out(struct sim_chain *c, u32 offset, void *buf, u32 len)
{
	return sim_copy(c, 0, c->nout, offset, buf, len, false);
}

static u32 sim_write_in(struct sim_chain *c, u32 offset, const void *buf,
			u32 len)
{
	return sim_copy(c, c->nout, c->nin, offset, (void *)buf, len, true);
}

static int sim_rng_serve(struct revirt_sim *sim, struct sim_chain *c)
{
	unsigned int i;

	if (c->nout)
		return -EINVAL;
	for (i = 0; i < c->nin; i++)
		get_random_bytes(c->seg[i].buf, c->seg[i].len);
	return c->in_len;
}

static u8 sim_blk_rw(struct revirt_sim *sim, struct sim_chain *c, u64 sector,
		     u32 bytes, bool write)
{
	u8 *where;

	if (bytes % SIM_SECTOR_SIZE || sector > sim->capacity ||
	    bytes / SIM_SECTOR_SIZE > sim->capacity - sector)
		return VIRTIO_BLK_S_IOERR;
	where = sim->disk + sector * SIM_SECTOR_SIZE;
	if (write)
		sim_read_out(c, sizeof(struct virtio_blk_outhdr), where, bytes);
	else
		sim_write_in(c, 0, where, bytes);
	return VIRTIO_BLK_S_OK;
}

/* Returns the bytes written into the chain (data and status), or -errno. */
static int sim_blk_serve(struct revirt_sim *sim, struct sim_chain *c)
{
	struct virtio_blk_outhdr hdr;
	u32 data_in, data_out, written = 0;
	u8 status;
	u64 sector;

	if (sim_read_out(c, 0, &hdr, sizeof(hdr)) != sizeof(hdr) || !c->in_len)
		return -EINVAL;
	data_in = c->in_len - 1;
	data_out = c->out_len - sizeof(hdr);
	sector = __virtio64_to_cpu(true, hdr.sector);

	switch (__virtio32_to_cpu(true, hdr.type)) {
	case VIRTIO_BLK_T_IN:
		status = sim_blk_rw(sim, c, sector, data_in, false);
		if (status == VIRTIO_BLK_S_OK)
			written = data_in;
		break;
	case VIRTIO_BLK_T_OUT:
		status = sim_blk_rw(sim, c, sector, data_out, true);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = VIRTIO_BLK_S_OK;	/* RAM is always stable */
		break;
	case VIRTIO_BLK_T_GET_ID:
		written = min_t(u32, data_in, sizeof(sim->serial));
		sim_write_in(c, 0, sim->serial, written);
		status = VIRTIO_BLK_S_OK;
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	sim_write_in(c, data_in, &status, 1);
	return written + 1;
}

static void sim_write_used(struct sim_queue *q, u32 id, u32 len)
{
	struct vring_used_elem *elem = &q->used->ring[q->used_idx % q->num];

	elem->id = __cpu_to_virtio32(true, id);
	elem->len = __cpu_to_virtio32(true, len);
	q->used_idx++;
}

static bool sim_take_fault(struct revirt_sim *sim, u32 *count,
			   const char *what)
{
	if (!*count)
		return false;
	(*count)--;
	dev_info(&sim->vdev.dev, "revirt_sim: fault: %s\n", what);
	return true;
}

/* A descriptor that no request the device knows of starts at. */
static u32 sim_idle_id(struct sim_queue *q, u16 head)
{
	u16 avail_idx = __virtio16_to_cpu(true, READ_ONCE(q->avail->idx));
	unsigned int k;
	u16 i;

	for (k = 1; k < q->num; k++) {
		u32 id = (head + k) % q->num;

		for (i = q->last_avail; i != avail_idx; i++)
			if (__virtio16_to_cpu(true,
					      q->avail->ring[i % q->num]) == id)
				break;
		if (i == avail_idx)
			return id;
	}
	return q->num;	/* a ring of one: out of range instead */
}

/* Publish one used entry, lying about it if a fault knob says so. */
static void sim_push_used(struct revirt_sim *sim, u16 head, u32 len,
			  u32 writable)
{
	struct sim_faults *f = &sim->faults;
	struct sim_queue *q = &sim->q;
	u32 id = head;

	if (sim_take_fault(sim, &f->used_bad_id, "used id out of range"))
		id = q->num + head;
	if (sim_take_fault(sim, &f->used_long_len, "used length beyond the buffer"))
		len = writable + PAGE_SIZE;
	if (sim_take_fault(sim, &f->used_stale_id, "used id not in flight"))
		id = sim_idle_id(q, head);
	sim_write_used(q, id, len);
	if (sim_take_fault(sim, &f->used_idx_jump, "used index jumps past the ring size"))
		q->used_idx += q->num + 1;
	/* The entries before the index that exposes them. */
	virt_wmb();
	WRITE_ONCE(q->used->idx, __cpu_to_virtio16(true, q->used_idx));
}

static int sim_serve_one(struct revirt_sim *sim, u16 head)
{
	struct sim_chain c;
	int len;

	len = sim_collect(sim, head, &c);
	if (len)
		return len;
	len = sim->kind == SIM_RNG ? sim_rng_serve(sim, &c) :
				     sim_blk_serve(sim, &c);
	if (len < 0)
		return len;
	sim->requests++;
	sim_push_used(sim, head, len, c.in_len);
	return 0;
}

/* Serve what is available; returns true if the driver wants an interrupt. */
static bool sim_serve_queue(struct revirt_sim *sim)
{
	struct sim_queue *q = &sim->q;
	u16 avail_idx = __virtio16_to_cpu(true, READ_ONCE(q->avail->idx));
	bool used = false;

	if ((u16)(avail_idx - q->last_avail) > q->num) {
		sim_give_up(sim, "avail index beyond the ring");
		return false;
	}
	/* Entries are read after the index that exposed them. */
	virt_rmb();
	while (q->last_avail != avail_idx) {
		u16 head = __virtio16_to_cpu(true,
				q->avail->ring[q->last_avail % q->num]);

		if (sim_serve_one(sim, head)) {
			sim_give_up(sim, "bad descriptor chain");
			return used;
		}
		q->last_avail++;
		used = true;
	}
	return used && !(__virtio16_to_cpu(true, READ_ONCE(q->avail->flags)) &
			 VRING_AVAIL_F_NO_INTERRUPT);
}

static void sim_interrupt(struct revirt_virtqueue *vq)
{
	unsigned long flags;

	/* Drivers' callbacks expect interrupt context: no interrupts. */
	local_irq_save(flags);
	revirt_vring_interrupt(0, vq);
	local_irq_restore(flags);
}

/*
 * The device running.  A reset or a queue deletion waits for it
 * (cancel_work_sync), which is this transport's synchronize_irq.
 */
static void sim_work(struct work_struct *work)
{
	struct revirt_sim *sim = container_of(work, struct revirt_sim, work);
	struct revirt_virtqueue *vq = NULL;
	bool gave_up = false;

	mutex_lock(&sim->lock);
	if (sim_running(sim)) {
		if (sim_serve_queue(sim))
			vq = sim->vq;
		gave_up = sim->status & VIRTIO_CONFIG_S_NEEDS_RESET;
	}
	mutex_unlock(&sim->lock);

	if (vq)
		sim_interrupt(vq);
	if (gave_up)
		revirt_config_changed(&sim->vdev);
}

static void sim_reset_complete(struct revirt_sim *sim)
{
	mutex_lock(&sim->lock);
	if (sim->stopped) {
		sim->stopped = false;
		WRITE_ONCE(sim->status, 0);
		sim->q.ready = false;
		sim->generation++;
	}
	mutex_unlock(&sim->lock);
}

static void sim_reset_work(struct work_struct *work)
{
	struct revirt_sim *sim = container_of(to_delayed_work(work),
					      struct revirt_sim, reset_work);

	sim_reset_complete(sim);
}

/* Status 0 written: stop at once, complete now, late or never. */
static void sim_reset_begin(struct revirt_sim *sim)
{
	u32 delay, hang;

	mutex_lock(&sim->lock);
	sim->stopped = true;
	delay = sim->faults.reset_delay_ms;
	hang = sim->faults.reset_hang;
	mutex_unlock(&sim->lock);

	cancel_work_sync(&sim->work);
	if (hang)
		return;
	if (delay)
		mod_delayed_work(system_wq, &sim->reset_work,
				 msecs_to_jiffies(delay));
	else
		sim_reset_complete(sim);
}

/* ---- the transport ---------------------------------------------------- */

static u8 sim_get_status(struct revirt_device *vdev)
{
	return READ_ONCE(to_sim(vdev)->status);
}

static void sim_set_status(struct revirt_device *vdev, u8 status)
{
	struct revirt_sim *sim = to_sim(vdev);

	mutex_lock(&sim->lock);
	if (sim->faults.refuse_features)
		status &= ~VIRTIO_CONFIG_S_FEATURES_OK;
	/* A device busy resetting ignores the driver. */
	if (!sim->stopped)
		WRITE_ONCE(sim->status, status);
	mutex_unlock(&sim->lock);
	if (status & VIRTIO_CONFIG_S_DRIVER_OK)
		queue_work(system_wq, &sim->work);
}

static int sim_reset(struct revirt_device *vdev)
{
	struct revirt_sim *sim = to_sim(vdev);
	unsigned long deadline;

	sim_reset_begin(sim);
	deadline = jiffies + msecs_to_jiffies(READ_ONCE(reset_timeout_ms));
	while (READ_ONCE(sim->status)) {
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		usleep_range(1000, 2000);
	}
	return 0;
}

static u64 sim_get_features(struct revirt_device *vdev)
{
	u64 features = BIT_ULL(VIRTIO_F_VERSION_1);

	if (to_sim(vdev)->kind == SIM_BLK)
		features |= BIT_ULL(VIRTIO_BLK_F_SEG_MAX) |
			    BIT_ULL(VIRTIO_BLK_F_BLK_SIZE) |
			    BIT_ULL(VIRTIO_BLK_F_FLUSH);
	return features;
}

static int sim_finalize_features(struct revirt_device *vdev)
{
	/* Little-endian rings only: a legacy driver cannot use this device. */
	if (!revirt_has_feature(vdev, VIRTIO_F_VERSION_1))
		return -ENODEV;
	return 0;
}

static void sim_get(struct revirt_device *vdev, unsigned int offset,
		    void *buf, unsigned int len)
{
	struct revirt_sim *sim = to_sim(vdev);
	const u8 *config = (const u8 *)&sim->config;
	unsigned int i;
	bool flip;

	memset(buf, 0, len);
	mutex_lock(&sim->lock);
	flip = sim_take_fault(sim, &sim->faults.config_flips,
			      "config changes under a read");
	if (flip)
		sim->generation++;
	for (i = 0; i < len && offset + i < sim->config_len; i++)
		((u8 *)buf)[i] = flip ? config[offset + i] ^ 0xa5 :
					config[offset + i];
	mutex_unlock(&sim->lock);
}

static void sim_set(struct revirt_device *vdev, unsigned int offset,
		    const void *buf, unsigned int len)
{
	/* Nothing in these devices' config is writable. */
}

static u32 sim_generation(struct revirt_device *vdev)
{
	return READ_ONCE(to_sim(vdev)->generation);
}

static bool sim_notify(struct revirt_virtqueue *vq)
{
	queue_work(system_wq, &to_sim(vq->vdev)->work);
	return true;
}

static int sim_activate_queue(struct revirt_sim *sim,
			      struct revirt_virtqueue *vq)
{
	struct sim_queue *q = &sim->q;
	unsigned int num = revirt_vq_get_vring_size(vq);

	q->num = num;
	q->desc = sim_dma_to_virt(sim, revirt_vring_desc_dma(vq),
				  num * sizeof(*q->desc));
	q->avail = sim_dma_to_virt(sim, revirt_vring_avail_dma(vq),
				   struct_size(q->avail, ring, num));
	q->used = sim_dma_to_virt(sim, revirt_vring_used_dma(vq),
				  struct_size(q->used, ring, num));
	if (!q->desc || !q->avail || !q->used)
		return -EFAULT;
	q->last_avail = 0;
	q->used_idx = 0;
	mutex_lock(&sim->lock);
	sim->vq = vq;
	q->ready = true;
	mutex_unlock(&sim->lock);
	return 0;
}

static void sim_del_vqs(struct revirt_device *vdev)
{
	struct revirt_sim *sim = to_sim(vdev);
	struct revirt_virtqueue *vq = sim->vq;

	mutex_lock(&sim->lock);
	sim->q.ready = false;
	sim->vq = NULL;
	mutex_unlock(&sim->lock);
	cancel_work_sync(&sim->work);

	if (vq) {
		list_del(&vq->list);
		revirt_vring_del(vq);
	}
	kfree(sim->segs);
	sim->segs = NULL;
}

static int sim_find_vqs(struct revirt_device *vdev, unsigned int nvqs,
			struct revirt_virtqueue *vqs[],
			const struct revirt_vq_info info[])
{
	struct revirt_sim *sim = to_sim(vdev);
	unsigned int num = sim->kind == SIM_RNG ? SIM_RNG_QUEUE_SIZE :
						  SIM_BLK_QUEUE_SIZE;
	struct revirt_virtqueue *vq;
	int err;

	if (nvqs != 1) {
		dev_err(&vdev->dev, "revirt_sim: %u queues asked, the device has 1\n",
			nvqs);
		return -ENOENT;
	}
	sim->segs = kcalloc(num, sizeof(*sim->segs), GFP_KERNEL);
	if (!sim->segs)
		return -ENOMEM;
	vq = revirt_create_vq(vdev, 0, num, SMP_CACHE_BYTES, sim->dma_dev,
			      sim_notify, &info[0]);
	if (IS_ERR(vq)) {
		err = PTR_ERR(vq);
		goto free_segs;
	}
	err = sim_activate_queue(sim, vq);
	if (err)
		goto del_vq;
	list_add_tail(&vq->list, &vdev->vqs);
	vqs[0] = vq;
	return 0;

del_vq:
	revirt_vring_del(vq);
free_segs:
	kfree(sim->segs);
	sim->segs = NULL;
	return err;
}

static const struct revirt_config_ops sim_config_ops = {
	.get = sim_get,
	.set = sim_set,
	.generation = sim_generation,
	.get_status = sim_get_status,
	.set_status = sim_set_status,
	.reset = sim_reset,
	.get_features = sim_get_features,
	.finalize_features = sim_finalize_features,
	.find_vqs = sim_find_vqs,
	.del_vqs = sim_del_vqs,
};

/* ---- fault knobs (debugfs) ---------------------------------------------- */

static int sim_knob_get(void *data, u64 *val)
{
	struct sim_knob_file *kf = data;
	struct revirt_sim *sim = kf->sim;

	mutex_lock(&sim->lock);
	*val = *(u32 *)((u8 *)&sim->faults + kf->knob->offset);
	mutex_unlock(&sim->lock);
	return 0;
}

static int sim_knob_set(void *data, u64 val)
{
	struct sim_knob_file *kf = data;
	struct revirt_sim *sim = kf->sim;

	if (val > U32_MAX)
		return -EINVAL;
	mutex_lock(&sim->lock);
	*(u32 *)((u8 *)&sim->faults + kf->knob->offset) = val;
	mutex_unlock(&sim->lock);
	/* Releasing "hold" lets the device serve what waited. */
	queue_work(system_wq, &sim->work);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(sim_knob_fops, sim_knob_get, sim_knob_set, "%llu\n");

static int sim_needs_reset_set(void *data, u64 val)
{
	struct revirt_sim *sim = data;

	if (val != 1)
		return -EINVAL;
	mutex_lock(&sim->lock);
	WRITE_ONCE(sim->status, sim->status | VIRTIO_CONFIG_S_NEEDS_RESET);
	mutex_unlock(&sim->lock);
	dev_info(&sim->vdev.dev, "revirt_sim: fault: device needs a reset\n");
	revirt_config_changed(&sim->vdev);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(sim_needs_reset_fops, NULL, sim_needs_reset_set,
			 "%llu\n");

static int sim_in_flight_get(void *data, u64 *val)
{
	struct revirt_sim *sim = data;
	struct sim_queue *q = &sim->q;

	mutex_lock(&sim->lock);
	*val = q->ready ? (u16)(__virtio16_to_cpu(true, READ_ONCE(q->avail->idx)) -
				q->last_avail) : 0;
	mutex_unlock(&sim->lock);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(sim_in_flight_fops, sim_in_flight_get, NULL,
			 "%llu\n");

static int sim_requests_get(void *data, u64 *val)
{
	struct revirt_sim *sim = data;

	mutex_lock(&sim->lock);
	*val = sim->requests;
	mutex_unlock(&sim->lock);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(sim_requests_fops, sim_requests_get, NULL, "%llu\n");

static void sim_debugfs_init(struct revirt_sim *sim)
{
	unsigned int i;

	sim->debugfs = debugfs_create_dir(dev_name(&sim->vdev.dev),
					  sim_debugfs_root);
	for (i = 0; i < ARRAY_SIZE(sim_knobs); i++) {
		sim->knob_files[i].sim = sim;
		sim->knob_files[i].knob = &sim_knobs[i];
		debugfs_create_file_unsafe(sim_knobs[i].name, 0600,
					   sim->debugfs, &sim->knob_files[i],
					   &sim_knob_fops);
	}
	debugfs_create_file_unsafe("needs_reset", 0200, sim->debugfs, sim,
				   &sim_needs_reset_fops);
	debugfs_create_file_unsafe("in_flight", 0400, sim->debugfs, sim,
				   &sim_in_flight_fops);
	debugfs_create_file_unsafe("requests", 0400, sim->debugfs, sim,
				   &sim_requests_fops);
}

/* ---- devices ----------------------------------------------------------- */

static void sim_release(struct device *dev)
{
	struct revirt_sim *sim = to_sim(dev_to_revirt(dev));

	vfree(sim->disk);
	kfree(sim);
}

static int sim_blk_init(struct revirt_sim *sim, unsigned int nr)
{
	sim->capacity = (u64)blk_size_kb * 1024 / SIM_SECTOR_SIZE;
	if (!sim->capacity)
		return -EINVAL;
	sim->disk = vzalloc(sim->capacity * SIM_SECTOR_SIZE);
	if (!sim->disk)
		return -ENOMEM;
	sim->config.capacity = __cpu_to_virtio64(true, sim->capacity);
	sim->config.seg_max = __cpu_to_virtio32(true, SIM_BLK_QUEUE_SIZE - 2);
	sim->config.blk_size = __cpu_to_virtio32(true, SIM_SECTOR_SIZE);
	sim->config_len = sizeof(sim->config);
	snprintf(sim->serial, sizeof(sim->serial), "rvsim-%u", nr);
	return 0;
}

static struct revirt_sim *sim_create(enum sim_kind kind, unsigned int nr)
{
	struct revirt_sim *sim;
	int err;

	sim = kzalloc(sizeof(*sim), GFP_KERNEL);
	if (!sim)
		return ERR_PTR(-ENOMEM);
	sim->kind = kind;
	sim->dma_dev = &sim_parent->dev;
	mutex_init(&sim->lock);
	INIT_WORK(&sim->work, sim_work);
	INIT_DELAYED_WORK(&sim->reset_work, sim_reset_work);
	sim->vdev.id.device = kind == SIM_RNG ? VIRTIO_ID_RNG : VIRTIO_ID_BLOCK;
	sim->vdev.id.vendor = REVIRT_SIM_VENDOR;
	sim->vdev.config = &sim_config_ops;
	sim->vdev.dev.parent = &sim_parent->dev;
	sim->vdev.dev.release = sim_release;
	if (kind == SIM_BLK) {
		err = sim_blk_init(sim, nr);
		if (err) {
			kfree(sim);
			return ERR_PTR(err);
		}
	}

	err = revirt_register_device(&sim->vdev);
	if (err) {
		put_device(&sim->vdev.dev);	/* frees it */
		return ERR_PTR(err);
	}
	sim_debugfs_init(sim);
	dev_info(&sim->vdev.dev, "revirt_sim: simulated %s device\n",
		 kind == SIM_RNG ? "entropy" : "block");
	return sim;
}

static void sim_destroy(struct revirt_sim *sim)
{
	/* No knob write may run once the device starts to go. */
	debugfs_remove(sim->debugfs);
	get_device(&sim->vdev.dev);
	revirt_unregister_device(&sim->vdev);
	cancel_work_sync(&sim->work);
	cancel_delayed_work_sync(&sim->reset_work);
	put_device(&sim->vdev.dev);
}

static void sim_destroy_all(void)
{
	while (sim_count)
		sim_destroy(sim_devs[--sim_count]);
}

static int sim_create_all(enum sim_kind kind, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct revirt_sim *sim;

		if (sim_count == REVIRT_SIM_MAX_DEVICES) {
			pr_err("revirt_sim: at most %u devices\n",
			       REVIRT_SIM_MAX_DEVICES);
			return -EINVAL;
		}
		sim = sim_create(kind, i);
		if (IS_ERR(sim))
			return PTR_ERR(sim);
		sim_devs[sim_count++] = sim;
	}
	return 0;
}

static int __init sim_init(void)
{
	const struct platform_device_info parent_info = {
		.name = "revirt-sim",
		.id = PLATFORM_DEVID_NONE,
		.dma_mask = DMA_BIT_MASK(64),
	};
	int err;

	sim_parent = platform_device_register_full(&parent_info);
	if (IS_ERR(sim_parent))
		return PTR_ERR(sim_parent);
	sim_debugfs_root = debugfs_create_dir("revirt_sim", NULL);

	err = sim_create_all(SIM_RNG, rng);
	if (!err)
		err = sim_create_all(SIM_BLK, blk);
	if (err)
		goto destroy;
	return 0;

destroy:
	pr_err("revirt_sim: cannot create the devices (%d)\n", err);
	sim_destroy_all();
	debugfs_remove(sim_debugfs_root);
	platform_device_unregister(sim_parent);
	return err;
}

static void __exit sim_exit(void)
{
	sim_destroy_all();
	debugfs_remove(sim_debugfs_root);
	platform_device_unregister(sim_parent);
}

module_init(sim_init);
module_exit(sim_exit);
MODULE_DESCRIPTION("revirt: simulated virtio devices with fault injection");
MODULE_LICENSE("GPL");
