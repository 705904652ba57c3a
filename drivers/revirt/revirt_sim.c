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
 * Devices (module parameters rng=, blk= and console=): entropy (virtio
 * id 4), a RAM-backed block device (id 2, blk_size_kb) and a console
 * (id 3) whose console_ports ports loop back what the driver writes.  All
 * are version-1 devices with split rings, without indirect descriptors or
 * event index.  The entropy device has one queue; the block device has
 * blk_queues (1 to SIM_BLK_MAX_QUEUES) and offers VIRTIO_BLK_F_MQ when it
 * has more than one; the console offers VIRTIO_CONSOLE_F_MULTIPORT and has
 * two queues per port and two control queues.  Buffers are reached through
 * the DMA API of a platform device "revirt-sim", which direct-maps them.
 *
 * The device side runs in a work item, as a real device runs beside the
 * CPU: a kick schedules it; it walks the avail ring of every ready queue,
 * serves the requests, writes the used rings and "interrupts" each queue
 * it used buffers of by calling the ring's interrupt handler with
 * interrupts off.  A malformed ring makes the device give up as QEMU's
 * devices do: DEVICE_NEEDS_RESET and a config interrupt.
 *
 * Reset: writing status 0 stops the device at once (it touches no ring
 * after that), then it reports completion (status reads 0) at once, after
 * reset_delay_ms, or never (reset_hang).  The transport polls for it,
 * bounded by the reset_timeout_ms parameter.
 *
 * Queue reset (VIRTIO_F_RING_RESET, offered unless ring_reset=0): the same
 * handshake for one queue while the others run.  The queue stops at once;
 * completion comes at once, after queue_reset_delay_ms, or never
 * (queue_reset_hang), polled with the same bound.  The queue then stays
 * off until the driver enables it again, at the size it chose (up to
 * max_vq_size) and at the ring addresses it has then.
 *
 * Fault knobs, per device, in /sys/kernel/debug/revirt_sim/revirtN/:
 *
 *   reset_delay_ms   a reset completes this many milliseconds late
 *   reset_hang       a reset never completes
 *   refuse_features  FEATURES_OK is never set
 *   hold             requests stay in flight, unanswered, on every queue
 *   used_bad_id      next N used entries: id out of range
 *   used_stale_id    next N used entries: the id of a descriptor that
 *                    heads no request in flight (as far as the device
 *                    knows: not the request answered, not one waiting)
 *   used_waiting_id  next N used entries: the id of the request made
 *                    available after the one answered, which the device
 *                    leaves waiting (the answer names the wrong buffer)
 *   used_long_len    next N used entries: length beyond the buffer
 *   used_idx_jump    next N used index updates: move by ring size + 1
 *   fault_queue      the used_* faults hit only this queue's used ring;
 *                    0xffffffff (the default): any queue
 *   config_flips     next N config reads: the config changes under them
 *   queue_reset_delay_ms  a queue reset completes this many ms late
 *   queue_reset_hang      a queue reset never completes
 *   needs_reset      (write 1) raise DEVICE_NEEDS_RESET now
 *   dead             (write 1) the device is gone for good: status and
 *                    config read all-ones, nothing is answered, no
 *                    interrupt comes, a reset never completes; the
 *                    transport reports it (revirt_device_gone()) at once
 *   in_flight        (read) buffers made available and not used yet,
 *                    summed over the ready queues
 *   requests         (read) requests served since the module loaded
 *   queue_requests   (read) the same per queue, in index order, space
 *                    separated: "120 98"
 *   queue_resets     (read) queue resets the device completed
 *
 * and on a console only:
 *
 *   ctrl_bad_port    next N control messages the device sends are each
 *                    preceded by a PORT_OPEN for port max_nr_ports + 7
 *   ctrl_bad_event   ... preceded by the same header with event 99
 *   ctrl_short       ... preceded by the first 4 bytes of the message
 *   port_bytes       (read) per port, bytes looped back into its receive
 *                    buffers, space separated
 *   port_guest_open  (read) per port, the driver's last PORT_OPEN (0/1)
 *
 * The counted faults are one-shot: each one applied counts one down.
 */

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/jiffies.h>
#include <linux/kfifo.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/random.h>
#include <linux/revirt.h>
#include <linux/revirt_ring.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <uapi/linux/virtio_blk.h>
#include <uapi/linux/virtio_console.h>
#include <uapi/linux/virtio_ids.h>
#include <uapi/linux/virtio_ring.h>

#define REVIRT_SIM_VENDOR	0x4d495352	/* "RSIM" */
#define REVIRT_SIM_MAX_DEVICES	8
#define SIM_BLK_MAX_QUEUES	8
#define SIM_CONS_MAX_PORTS	8
/* The most any device has: a console's two per port and two for control. */
#define SIM_MAX_QUEUES		(2 * SIM_CONS_MAX_PORTS + 2)
#define SIM_RNG_QUEUE_SIZE	64
#define SIM_RNG_QUEUE_MAX	64
#define SIM_BLK_QUEUE_SIZE	128
#define SIM_BLK_QUEUE_MAX	256
#define SIM_CONS_QUEUE_SIZE	128
#define SIM_CONS_QUEUE_MAX	256
#define SIM_CONS_CTRL_RX	2	/* device to driver */
#define SIM_CONS_CTRL_TX	3	/* driver to device */
/* Bytes a port holds between its transmit and its receive queue. */
#define SIM_CONS_FIFO_BYTES	SZ_64K
/* Control messages waiting for the driver's control receive buffers. */
#define SIM_CONS_MAX_MSGS	64
#define SIM_CONS_NAME_MAX	16
#define SIM_CONS_BAD_EVENT	99
/* fault_queue: the used-ring faults hit whichever queue comes first. */
#define SIM_ANY_QUEUE		0xffffffff
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

static unsigned int blk_queues = 1;
module_param(blk_queues, uint, 0444);
MODULE_PARM_DESC(blk_queues,
		 "Queues of each simulated block device (1-8; >1: VIRTIO_BLK_F_MQ)");

static unsigned int console;
module_param(console, uint, 0444);
MODULE_PARM_DESC(console, "Number of simulated console devices");

static unsigned int console_ports = 2;
module_param(console_ports, uint, 0444);
MODULE_PARM_DESC(console_ports,
		 "Ports of each simulated console device (1-8), each looped back");

static bool ring_reset = true;
module_param(ring_reset, bool, 0644);
MODULE_PARM_DESC(ring_reset,
		 "Offer VIRTIO_F_RING_RESET (read when a driver reads features)");

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
	u32 used_waiting_id;
	u32 used_long_len;
	u32 used_idx_jump;
	u32 fault_queue;
	u32 config_flips;
	u32 queue_reset_delay_ms;
	u32 queue_reset_hang;
	u32 ctrl_bad_port;
	u32 ctrl_bad_event;
	u32 ctrl_short;
};

/* @console: the knob exists on console devices only. */
struct sim_knob {
	const char *name;
	size_t offset;
	bool console;
};

#define SIM_KNOB(field) { #field, offsetof(struct sim_faults, field), false }
#define SIM_CONS_KNOB(field) { #field, offsetof(struct sim_faults, field), true }

static const struct sim_knob sim_knobs[] = {
	SIM_KNOB(reset_delay_ms),
	SIM_KNOB(reset_hang),
	SIM_KNOB(refuse_features),
	SIM_KNOB(hold),
	SIM_KNOB(used_bad_id),
	SIM_KNOB(used_stale_id),
	SIM_KNOB(used_waiting_id),
	SIM_KNOB(used_long_len),
	SIM_KNOB(used_idx_jump),
	SIM_KNOB(fault_queue),
	SIM_KNOB(config_flips),
	SIM_KNOB(queue_reset_delay_ms),
	SIM_KNOB(queue_reset_hang),
	SIM_CONS_KNOB(ctrl_bad_port),
	SIM_CONS_KNOB(ctrl_bad_event),
	SIM_CONS_KNOB(ctrl_short),
};

struct revirt_sim;

/* What a debugfs knob file points at: the device and the field. */
struct sim_knob_file {
	struct revirt_sim *sim;
	const struct sim_knob *knob;
};

/**
 * struct sim_queue - the device's view of one queue, as a transport
 *	would program it
 * @sim: the device
 * @index: queue number
 * @ready: the device serves the queue: enabled, not reset since
 * @resetting: a reset of this queue alone did not complete yet
 * @num: ring size
 * @desc: descriptor table
 * @avail: avail ring
 * @used: used ring
 * @last_avail: next avail entry the device takes
 * @used_idx: the device's used index
 * @vq: the driver side, for interrupts and deletion
 * @requests: requests served on the queue since the module loaded
 * @reset_work: completes a reset of the queue late
 */
struct sim_queue {
	struct revirt_sim *sim;
	unsigned int index;
	bool ready;
	bool resetting;
	unsigned int num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	u16 last_avail;
	u16 used_idx;
	struct revirt_virtqueue *vq;
	u64 requests;
	struct delayed_work reset_work;
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

enum sim_kind { SIM_RNG, SIM_BLK, SIM_CONS };

/* One control message as it goes into a control receive buffer. */
struct sim_cons_msg {
	u8 data[sizeof(struct virtio_console_control) + SIM_CONS_NAME_MAX];
	u32 len;
};

/**
 * struct sim_port - one port of a console device
 * @fifo: bytes taken from the port's transmit queue and not yet written
 *	into its receive queue; the device's own, so a reset keeps them
 * @bytes: bytes written into the port's receive buffers since the module
 *	loaded
 * @guest_open: the driver's last PORT_OPEN for the port
 */
struct sim_port {
	struct kfifo fifo;
	u64 bytes;
	bool guest_open;
};

/**
 * struct sim_console - the state of a console device beyond its queues
 * @nports: ports the device has (max_nr_ports)
 * @ports: the ports
 * @msgs: control messages waiting for control receive buffers, a ring
 * @msg_head: the oldest of them
 * @nmsgs: how many wait
 */
struct sim_console {
	unsigned int nports;
	struct sim_port ports[SIM_CONS_MAX_PORTS];
	struct sim_cons_msg msgs[SIM_CONS_MAX_MSGS];
	unsigned int msg_head;
	unsigned int nmsgs;
};

/**
 * struct revirt_sim - one simulated device
 * @vdev: the revirt device
 * @kind: entropy, block or console
 * @dma_dev: device the rings and buffers are mapped for
 * @lock: serialises the device model: everything below it
 * @status: the status byte as the driver reads it
 * @stopped: status 0 was written and the reset did not complete yet
 * @dead: the device is gone (the dead knob): every read is all-ones
 * @generation: config generation
 * @faults: the fault knobs
 * @nqueues: queues the device has
 * @queues: the queues, device side and driver side
 * @queue_resets: resets of one queue the device completed
 * @segs: scratch for the segments of one chain, as many as the largest
 *	ring the device allows (sim_max_queue_size())
 * @work: the device running: serves every ready queue
 * @reset_work: completes a reset late
 * @debugfs: the device's knob directory
 * @knob_files: what each knob file refers to
 * @config: device-specific config space
 * @config_len: its size
 * @disk: backing store of a block device
 * @capacity: its size in 512-byte sectors
 * @serial: answer to VIRTIO_BLK_T_GET_ID
 * @cons: ports and control messages of a console device
 */
struct revirt_sim {
	struct revirt_device vdev;
	enum sim_kind kind;
	struct device *dma_dev;
	struct mutex lock;		/* the device model */
	u8 status;
	bool stopped;
	bool dead;
	u32 generation;
	struct sim_faults faults;
	unsigned int nqueues;
	struct sim_queue queues[SIM_MAX_QUEUES];
	u64 queue_resets;
	struct sim_seg *segs;
	struct work_struct work;
	struct delayed_work reset_work;
	struct dentry *debugfs;
	struct sim_knob_file knob_files[ARRAY_SIZE(sim_knobs)];
	union {
		struct virtio_blk_config blk;
		struct virtio_console_config cons;
	} config;
	unsigned int config_len;
	u8 *disk;
	u64 capacity;
	char serial[VIRTIO_BLK_ID_BYTES];
	struct sim_console *cons;
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

/* The device serves its ready queues; a queue of its own is @ready. */
static bool sim_running(const struct revirt_sim *sim)
{
	return !sim->stopped && !sim->dead && !sim->faults.hold &&
	       (sim->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !(sim->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* The segment scratch and a resized ring are bounded by this. */
static unsigned int sim_max_queue_size(const struct revirt_sim *sim)
{
	switch (sim->kind) {
	case SIM_RNG:
		return SIM_RNG_QUEUE_MAX;
	case SIM_BLK:
		return SIM_BLK_QUEUE_MAX;
	default:
		return SIM_CONS_QUEUE_MAX;
	}
}

/* The size a queue starts at when the driver sets it up. */
static unsigned int sim_queue_size(const struct revirt_sim *sim)
{
	switch (sim->kind) {
	case SIM_RNG:
		return SIM_RNG_QUEUE_SIZE;
	case SIM_BLK:
		return SIM_BLK_QUEUE_SIZE;
	default:
		return SIM_CONS_QUEUE_SIZE;
	}
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
static int sim_collect(struct revirt_sim *sim, struct sim_queue *q, u16 head,
		       struct sim_chain *c)
{
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

/* The head of the avail entry @idx (free running). */
static u16 sim_avail_head(const struct sim_queue *q, u16 idx)
{
	return __virtio16_to_cpu(true, q->avail->ring[idx % q->num]);
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
			if (sim_avail_head(q, i) == id)
				break;
		if (i == avail_idx)
			return id;
	}
	return q->num;	/* a ring of one: out of range instead */
}

/*
 * The used-ring faults hit the queue fault_queue names, so that a test
 * breaks one queue of several and watches the others run on.
 */
static bool sim_fault_aims_at(const struct revirt_sim *sim,
			      const struct sim_queue *q)
{
	u32 target = sim->faults.fault_queue;

	return target == SIM_ANY_QUEUE || target == q->index;
}

/*
 * Publish one used entry for the request at @head, naming @id, lying
 * further if a fault knob says so.
 */
static void sim_push_used(struct revirt_sim *sim, struct sim_queue *q,
			  u32 id, u16 head, u32 len, u32 writable)
{
	struct sim_faults *f = &sim->faults;
	bool aimed = sim_fault_aims_at(sim, q);

	if (aimed && sim_take_fault(sim, &f->used_bad_id, "used id out of range"))
		id = q->num + head;
	if (aimed && sim_take_fault(sim, &f->used_long_len, "used length beyond the buffer"))
		len = writable + PAGE_SIZE;
	if (aimed && sim_take_fault(sim, &f->used_stale_id, "used id not in flight"))
		id = sim_idle_id(q, head);
	sim_write_used(q, id, len);
	if (aimed && sim_take_fault(sim, &f->used_idx_jump, "used index jumps past the ring size"))
		q->used_idx += q->num + 1;
	/* The entries before the index that exposes them. */
	virt_wmb();
	WRITE_ONCE(q->used->idx, __cpu_to_virtio16(true, q->used_idx));
}

static int sim_serve_one(struct revirt_sim *sim, struct sim_queue *q, u16 head,
			 u32 named)
{
	struct sim_chain c;
	int len;

	len = sim_collect(sim, q, head, &c);
	if (len)
		return len;
	len = sim->kind == SIM_RNG ? sim_rng_serve(sim, &c) :
				     sim_blk_serve(sim, &c);
	if (len < 0)
		return len;
	q->requests++;
	sim_push_used(sim, q, named, head, len, c.in_len);
	return 0;
}

/* Entries of @q's avail ring the device did not take yet, or -EINVAL. */
static int sim_avail_pending(struct revirt_sim *sim, struct sim_queue *q)
{
	u16 avail_idx = __virtio16_to_cpu(true, READ_ONCE(q->avail->idx));
	u16 n = avail_idx - q->last_avail;

	if (n > q->num) {
		sim_give_up(sim, "avail index beyond the ring");
		return -EINVAL;
	}
	/* Entries are read after the index that exposed them. */
	virt_rmb();
	return n;
}

/* The driver did not suppress interrupts for the buffers @q used. */
static bool sim_wants_irq(const struct sim_queue *q)
{
	return !(__virtio16_to_cpu(true, READ_ONCE(q->avail->flags)) &
		 VRING_AVAIL_F_NO_INTERRUPT);
}

/* A request waits behind the one served: used_waiting_id may name it. */
static bool sim_names_waiting(struct revirt_sim *sim, struct sim_queue *q,
			      int pending)
{
	return pending > 1 && sim_fault_aims_at(sim, q) &&
	       sim_take_fault(sim, &sim->faults.used_waiting_id,
			      "used id of a request still waiting");
}

/* Serve what is available; returns true if buffers were used. */
static bool sim_serve_queue(struct revirt_sim *sim, struct sim_queue *q)
{
	int n = sim_avail_pending(sim, q);
	bool used = false;

	for (; n > 0; n--) {
		u16 head = sim_avail_head(q, q->last_avail);
		bool wrong = sim_names_waiting(sim, q, n);
		u32 named = wrong ? sim_avail_head(q, q->last_avail + 1) : head;

		if (sim_serve_one(sim, q, head, named)) {
			sim_give_up(sim, "bad descriptor chain");
			return used;
		}
		q->last_avail++;
		used = true;
		/* The request named stays unanswered while the driver looks. */
		if (wrong)
			break;
	}
	return used;
}

/* ---- the console: ports looped back, control messages ------------------ */

/* Port 0 has queues 0 and 1; port M >= 1 has 2M + 2 and 2M + 3. */
static unsigned int sim_cons_rxq(unsigned int port)
{
	return port ? 2 * port + 2 : 0;
}

static unsigned int sim_cons_txq(unsigned int port)
{
	return sim_cons_rxq(port) + 1;
}

/* Without VIRTIO_CONSOLE_F_MULTIPORT there is port 0 and no control. */
static bool sim_cons_multiport(const struct revirt_sim *sim)
{
	return revirt_has_feature(&sim->vdev, VIRTIO_CONSOLE_F_MULTIPORT);
}

/*
 * Gather the chain the driver made available next on @q without taking
 * it: a transmit buffer that does not fit yet stays in flight.  @rx: the
 * buffer must be device-writable only, else device-readable only.
 */
static bool sim_cons_peek(struct revirt_sim *sim, struct sim_queue *q,
			  bool rx, struct sim_chain *c, u16 *head)
{
	if (!q->ready || !sim_running(sim) || sim_avail_pending(sim, q) <= 0)
		return false;
	*head = sim_avail_head(q, q->last_avail);
	if (sim_collect(sim, q, *head, c) || (rx ? c->nout : c->nin)) {
		sim_give_up(sim, "bad descriptor chain");
		return false;
	}
	return true;
}

/* Take the chain sim_cons_peek() gathered and use it, @len bytes written. */
static void sim_cons_use(struct revirt_sim *sim, struct sim_queue *q,
			 u16 head, u32 len, const struct sim_chain *c,
			 unsigned long *used)
{
	q->requests++;
	sim_push_used(sim, q, head, head, len, c->in_len);
	q->last_avail++;
	*used |= BIT(q->index);
}

static void sim_cons_msg_init(struct sim_cons_msg *msg, u32 id, u16 event,
			      u16 value)
{
	struct virtio_console_control ctl = {
		.id = __cpu_to_virtio32(true, id),
		.event = __cpu_to_virtio16(true, event),
		.value = __cpu_to_virtio16(true, value),
	};

	memcpy(msg->data, &ctl, sizeof(ctl));
	msg->len = sizeof(ctl);
}

/*
 * Queue a control message for the driver.  It waits for a control
 * receive buffer; the list is bounded, and a message that finds it full
 * is dropped with a line in dmesg, never silently.
 */
static void sim_cons_send(struct revirt_sim *sim, u32 id, u16 event,
			  u16 value, const char *name)
{
	struct sim_console *cons = sim->cons;
	struct sim_cons_msg *msg;
	size_t name_len;

	if (cons->nmsgs == SIM_CONS_MAX_MSGS) {
		dev_warn_ratelimited(&sim->vdev.dev,
				     "revirt_sim: %u control messages wait for buffers: event %u for port %u dropped\n",
				     cons->nmsgs, event, id);
		return;
	}
	msg = &cons->msgs[(cons->msg_head + cons->nmsgs++) % SIM_CONS_MAX_MSGS];
	sim_cons_msg_init(msg, id, event, value);
	if (!name)
		return;
	/* The name follows the header, without a NUL, as QEMU sends it. */
	name_len = min_t(size_t, strlen(name), SIM_CONS_NAME_MAX);
	memcpy(msg->data + msg->len, name, name_len);
	msg->len += name_len;
}

/* Port @id is ready in the driver: its name or console role, then open. */
static void sim_cons_port_ready(struct revirt_sim *sim, u32 id)
{
	char name[sizeof("simport4294967295")];

	if (id) {
		snprintf(name, sizeof(name), "simport%u", id);
		sim_cons_send(sim, id, VIRTIO_CONSOLE_PORT_NAME, 0, name);
	} else {
		sim_cons_send(sim, 0, VIRTIO_CONSOLE_CONSOLE_PORT, 1, NULL);
	}
	/* The host side is connected from the start. */
	sim_cons_send(sim, id, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
}

/* One control message from the driver (virtio 1.2, 5.3.6.2). */
static void sim_cons_control(struct revirt_sim *sim,
			     const struct virtio_console_control *ctl)
{
	struct sim_console *cons = sim->cons;
	u32 id = __virtio32_to_cpu(true, ctl->id);
	u16 event = __virtio16_to_cpu(true, ctl->event);
	u16 value = __virtio16_to_cpu(true, ctl->value);
	unsigned int i;

	if (event != VIRTIO_CONSOLE_DEVICE_READY && id >= cons->nports) {
		dev_warn_ratelimited(&sim->vdev.dev,
				     "revirt_sim: control event %u for port %u of %u: ignored\n",
				     event, id, cons->nports);
		return;
	}
	switch (event) {
	case VIRTIO_CONSOLE_DEVICE_READY:
		if (value != 1)
			break;
		for (i = 0; i < cons->nports; i++)
			sim_cons_send(sim, i, VIRTIO_CONSOLE_PORT_ADD, 1, NULL);
		return;
	case VIRTIO_CONSOLE_PORT_READY:
		if (value != 1)
			break;
		sim_cons_port_ready(sim, id);
		return;
	case VIRTIO_CONSOLE_PORT_OPEN:
		cons->ports[id].guest_open = value;
		return;
	}
	/* A driver that failed (value 0) or an event a driver does not send. */
	dev_info_ratelimited(&sim->vdev.dev,
			     "revirt_sim: control event %u value %u for port %u: ignored\n",
			     event, value, id);
}

/* The control transmit queue: each buffer is one message, used at once. */
static void sim_cons_ctrl_tx(struct revirt_sim *sim, unsigned long *used)
{
	struct sim_queue *q = &sim->queues[SIM_CONS_CTRL_TX];
	struct virtio_console_control ctl;
	struct sim_chain c;
	u16 head;

	while (sim_cons_peek(sim, q, false, &c, &head)) {
		if (sim_read_out(&c, 0, &ctl, sizeof(ctl)) == sizeof(ctl))
			sim_cons_control(sim, &ctl);
		else
			dev_warn_ratelimited(&sim->vdev.dev,
					     "revirt_sim: control message of %u bytes: ignored\n",
					     c.out_len);
		sim_cons_use(sim, q, head, 0, &c, used);
	}
}

/*
 * The lie a ctrl_* knob asks for, sent just before @real: the real
 * message follows in the next buffer, so the driver's state stays right.
 */
static bool sim_cons_lie(struct revirt_sim *sim,
			 const struct sim_cons_msg *real,
			 struct sim_cons_msg *lie)
{
	struct sim_faults *f = &sim->faults;
	struct virtio_console_control *ctl = (void *)lie->data;

	if (sim_take_fault(sim, &f->ctrl_bad_port,
			   "control message for a port that does not exist")) {
		sim_cons_msg_init(lie, sim->cons->nports + 7,
				  VIRTIO_CONSOLE_PORT_OPEN, 1);
		return true;
	}
	*lie = *real;
	lie->len = sizeof(*ctl);
	if (sim_take_fault(sim, &f->ctrl_bad_event,
			   "control message with an unknown event")) {
		ctl->event = __cpu_to_virtio16(true, SIM_CONS_BAD_EVENT);
		ctl->value = 0;
		return true;
	}
	if (sim_take_fault(sim, &f->ctrl_short, "control message of 4 bytes")) {
		lie->len = 4;
		return true;
	}
	return false;
}

/* Hand waiting control messages to the driver, one per receive buffer. */
static void sim_cons_ctrl_rx(struct revirt_sim *sim, unsigned long *used)
{
	struct sim_queue *q = &sim->queues[SIM_CONS_CTRL_RX];
	struct sim_console *cons = sim->cons;
	struct sim_cons_msg lie;
	struct sim_chain c;
	u16 head;

	while (cons->nmsgs && sim_cons_peek(sim, q, true, &c, &head)) {
		const struct sim_cons_msg *msg = &cons->msgs[cons->msg_head];
		bool lied = sim_cons_lie(sim, msg, &lie);
		u32 len;

		if (lied)
			msg = &lie;
		len = sim_write_in(&c, 0, msg->data, msg->len);
		sim_cons_use(sim, q, head, len, &c, used);
		if (lied)
			continue;
		cons->msg_head = (cons->msg_head + 1) % SIM_CONS_MAX_MSGS;
		cons->nmsgs--;
	}
}

/*
 * Port @p's transmit buffers go into its FIFO, each whole or not at all:
 * a buffer is used only once all its bytes are the device's, so that a
 * driver that resends what the device did not use sends nothing twice.
 * One that does not fit stays in flight until receive buffers drain the
 * FIFO (the run after the driver kicks the receive queue).
 */
static void sim_cons_tx(struct revirt_sim *sim, unsigned int p,
			unsigned long *used)
{
	struct sim_port *port = &sim->cons->ports[p];
	struct sim_queue *q = &sim->queues[sim_cons_txq(p)];
	struct sim_chain c;
	unsigned int i;
	u16 head;

	while (sim_cons_peek(sim, q, false, &c, &head)) {
		if (c.out_len > SIM_CONS_FIFO_BYTES) {
			/* It would never fit: the driver is broken. */
			sim_give_up(sim, "transmit buffer larger than the port FIFO");
			return;
		}
		if (c.out_len > kfifo_avail(&port->fifo))
			return;
		for (i = 0; i < c.nout; i++)
			kfifo_in(&port->fifo, (u8 *)c.seg[i].buf, c.seg[i].len);
		sim_cons_use(sim, q, head, 0, &c, used);
	}
}

/* Fill port @p's receive buffers from its FIFO; true if it used one. */
static bool sim_cons_rx(struct revirt_sim *sim, unsigned int p,
			unsigned long *used)
{
	struct sim_port *port = &sim->cons->ports[p];
	struct sim_queue *q = &sim->queues[sim_cons_rxq(p)];
	struct sim_chain c;
	bool any = false;
	unsigned int i;
	u16 head;

	while (!kfifo_is_empty(&port->fifo) &&
	       sim_cons_peek(sim, q, true, &c, &head)) {
		u32 len = 0;

		for (i = 0; i < c.nin; i++)
			len += kfifo_out(&port->fifo, (u8 *)c.seg[i].buf,
					 c.seg[i].len);
		port->bytes += len;
		sim_cons_use(sim, q, head, len, &c, used);
		any = true;
	}
	return any;
}

/*
 * One run of the console: the driver's control messages first, so that
 * the answers go out in the same run, then every port.  Returns the
 * queues that used buffers, one bit per queue index.
 */
static unsigned long sim_cons_run(struct revirt_sim *sim)
{
	unsigned int p, nports = 1;
	unsigned long used = 0;

	if (sim_cons_multiport(sim)) {
		nports = sim->cons->nports;
		sim_cons_ctrl_tx(sim, &used);
		sim_cons_ctrl_rx(sim, &used);
	}
	for (p = 0; p < nports; p++) {
		sim_cons_tx(sim, p, &used);
		/* Room made: a transmit buffer that waited may fit now. */
		if (sim_cons_rx(sim, p, &used)) {
			sim_cons_tx(sim, p, &used);
			sim_cons_rx(sim, p, &used);
		}
	}
	return used;
}

/*
 * A device reset ends the driver's session: its control messages and
 * port states go.  The FIFOs stay: their bytes came from used transmit
 * buffers, so they are the device's, delivered once the driver is back.
 */
static void sim_cons_reset(struct sim_console *cons)
{
	unsigned int i;

	cons->msg_head = 0;
	cons->nmsgs = 0;
	for (i = 0; i < cons->nports; i++)
		cons->ports[i].guest_open = false;
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
	struct revirt_virtqueue *irq[SIM_MAX_QUEUES];
	unsigned int i, nirq = 0;
	bool was_running, gave_up;
	unsigned long used = 0;

	mutex_lock(&sim->lock);
	was_running = sim_running(sim);
	/* A give-up on one queue stops the device: the rest wait. */
	if (sim->cons) {
		used = sim_cons_run(sim);
	} else {
		for (i = 0; i < sim->nqueues && sim_running(sim); i++) {
			struct sim_queue *q = &sim->queues[i];

			if (q->ready && sim_serve_queue(sim, q))
				used |= BIT(i);
		}
	}
	for_each_set_bit(i, &used, sim->nqueues)
		if (sim_wants_irq(&sim->queues[i]))
			irq[nirq++] = sim->queues[i].vq;
	/* Only a give-up of this run, not an older one, interrupts. */
	gave_up = was_running && (sim->status & VIRTIO_CONFIG_S_NEEDS_RESET);
	mutex_unlock(&sim->lock);

	/* The queues stay until a flush or cancel of this work returned. */
	for (i = 0; i < nirq; i++)
		sim_interrupt(irq[i]);
	if (gave_up)
		revirt_config_changed(&sim->vdev);
}

/* A reset forgets a queue: off, and no reset of it alone goes on. */
static void sim_queue_forget(struct sim_queue *q)
{
	q->ready = false;
	WRITE_ONCE(q->resetting, false);
	q->desc = NULL;
	q->avail = NULL;
	q->used = NULL;
}

static void sim_reset_complete(struct revirt_sim *sim)
{
	unsigned int i;

	mutex_lock(&sim->lock);
	/* A dead device never completes a reset: status stays all-ones. */
	if (sim->stopped && !sim->dead) {
		sim->stopped = false;
		WRITE_ONCE(sim->status, 0);
		for (i = 0; i < sim->nqueues; i++)
			sim_queue_forget(&sim->queues[i]);
		if (sim->cons)
			sim_cons_reset(sim->cons);
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

static void sim_cancel_queue_resets(struct revirt_sim *sim)
{
	unsigned int i;

	for (i = 0; i < sim->nqueues; i++)
		cancel_delayed_work_sync(&sim->queues[i].reset_work);
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
	/* A queue reset still pending is overtaken by this one. */
	sim_cancel_queue_resets(sim);
	if (hang)
		return;
	if (delay)
		mod_delayed_work(system_wq, &sim->reset_work,
				 msecs_to_jiffies(delay));
	else
		sim_reset_complete(sim);
}

/* Queue @q reset alone: it completes once, if it was not overtaken. */
static void sim_queue_reset_complete(struct sim_queue *q)
{
	struct revirt_sim *sim = q->sim;

	mutex_lock(&sim->lock);
	if (q->resetting && !sim->dead) {
		sim_queue_forget(q);
		sim->queue_resets++;
	}
	mutex_unlock(&sim->lock);
}

static void sim_queue_reset_work(struct work_struct *work)
{
	struct sim_queue *q = container_of(to_delayed_work(work),
					   struct sim_queue, reset_work);

	sim_queue_reset_complete(q);
}

/* ---- the transport ---------------------------------------------------- */

/*
 * The transport's check of every status read, as a PCI transport's: a
 * status byte of all-ones means nobody answers any more.
 */
static bool sim_status_gone(struct revirt_sim *sim, u8 status)
{
	if (status != 0xff)
		return false;
	revirt_device_gone(&sim->vdev, "revirt_sim: status reads 0xff");
	return true;
}

static u8 sim_get_status(struct revirt_device *vdev)
{
	struct revirt_sim *sim = to_sim(vdev);
	u8 status = READ_ONCE(sim->status);

	sim_status_gone(sim, status);
	return status;
}

static void sim_set_status(struct revirt_device *vdev, u8 status)
{
	struct revirt_sim *sim = to_sim(vdev);

	mutex_lock(&sim->lock);
	if (sim->faults.refuse_features)
		status &= ~VIRTIO_CONFIG_S_FEATURES_OK;
	/* A device busy resetting, or dead, ignores the driver. */
	if (!sim->stopped && !sim->dead)
		WRITE_ONCE(sim->status, status);
	mutex_unlock(&sim->lock);
	if (status & VIRTIO_CONFIG_S_DRIVER_OK)
		queue_work(system_wq, &sim->work);
}

static unsigned long sim_deadline(void)
{
	return jiffies + msecs_to_jiffies(READ_ONCE(reset_timeout_ms));
}

/* One step of polling a device register: -ETIMEDOUT past @deadline. */
static int sim_poll_step(unsigned long deadline)
{
	if (time_after(jiffies, deadline))
		return -ETIMEDOUT;
	usleep_range(1000, 2000);
	return 0;
}

static int sim_reset(struct revirt_device *vdev)
{
	struct revirt_sim *sim = to_sim(vdev);
	unsigned long deadline;
	u8 status;
	int err;

	sim_reset_begin(sim);
	deadline = sim_deadline();
	while ((status = READ_ONCE(sim->status))) {
		if (sim_status_gone(sim, status))
			return -ENODEV;
		err = sim_poll_step(deadline);
		if (err)
			return err;
	}
	return 0;
}

static u64 sim_get_features(struct revirt_device *vdev)
{
	struct revirt_sim *sim = to_sim(vdev);
	u64 features = BIT_ULL(VIRTIO_F_VERSION_1);

	if (READ_ONCE(ring_reset))
		features |= BIT_ULL(VIRTIO_F_RING_RESET);
	if (sim->kind == SIM_BLK)
		features |= BIT_ULL(VIRTIO_BLK_F_SEG_MAX) |
			    BIT_ULL(VIRTIO_BLK_F_BLK_SIZE) |
			    BIT_ULL(VIRTIO_BLK_F_FLUSH);
	if (sim->kind == SIM_BLK && sim->nqueues > 1)
		features |= BIT_ULL(VIRTIO_BLK_F_MQ);
	if (sim->kind == SIM_CONS)
		features |= BIT_ULL(VIRTIO_CONSOLE_F_MULTIPORT);
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
	if (sim->dead) {
		memset(buf, 0xff, len);
		mutex_unlock(&sim->lock);
		return;
	}
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
	struct revirt_sim *sim = to_sim(vdev);
	__le32 wr = 0;

	/* Only a console's emergency write register is writable: logged. */
	if (sim->kind != SIM_CONS || len > sizeof(wr) ||
	    offset != offsetof(struct virtio_console_config, emerg_wr))
		return;
	memcpy(&wr, buf, len);
	dev_info_ratelimited(&vdev->dev, "revirt_sim: emergency write 0x%02x\n",
			     le32_to_cpu(wr) & 0xff);
}

static u32 sim_generation(struct revirt_device *vdev)
{
	struct revirt_sim *sim = to_sim(vdev);

	return READ_ONCE(sim->dead) ? U32_MAX : READ_ONCE(sim->generation);
}

static bool sim_notify(struct revirt_virtqueue *vq)
{
	queue_work(system_wq, &to_sim(vq->vdev)->work);
	return true;
}

/*
 * Program @q from the driver's ring, as a transport writes the queue
 * registers, and enable it.  The ring starts at index 0 on both sides.
 */
static int sim_activate_queue(struct revirt_sim *sim, struct sim_queue *q,
			      struct revirt_virtqueue *vq)
{
	unsigned int num = revirt_vq_get_vring_size(vq);
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;

	if (num > sim_max_queue_size(sim))
		return -EINVAL;
	desc = sim_dma_to_virt(sim, revirt_vring_desc_dma(vq),
			       num * sizeof(*desc));
	avail = sim_dma_to_virt(sim, revirt_vring_avail_dma(vq),
				struct_size(avail, ring, num));
	used = sim_dma_to_virt(sim, revirt_vring_used_dma(vq),
			       struct_size(used, ring, num));
	if (!desc || !avail || !used)
		return -EFAULT;

	mutex_lock(&sim->lock);
	q->num = num;
	q->desc = desc;
	q->avail = avail;
	q->used = used;
	q->last_avail = 0;
	q->used_idx = 0;
	q->ready = true;
	mutex_unlock(&sim->lock);
	return 0;
}

/* Handles queues in any state: ready, reset alone, or hung resetting. */
static void sim_del_vqs(struct revirt_device *vdev)
{
	struct revirt_sim *sim = to_sim(vdev);
	struct revirt_virtqueue *vqs[SIM_MAX_QUEUES];
	unsigned int i;

	mutex_lock(&sim->lock);
	for (i = 0; i < sim->nqueues; i++) {
		vqs[i] = sim->queues[i].vq;
		sim->queues[i].vq = NULL;
		sim_queue_forget(&sim->queues[i]);
	}
	mutex_unlock(&sim->lock);
	cancel_work_sync(&sim->work);
	sim_cancel_queue_resets(sim);

	for (i = 0; i < sim->nqueues; i++) {
		if (!vqs[i])
			continue;
		list_del(&vqs[i]->list);
		revirt_vring_del(vqs[i]);
	}
	kfree(sim->segs);
	sim->segs = NULL;
}

static int sim_find_vqs(struct revirt_device *vdev, unsigned int nvqs,
			struct revirt_virtqueue *vqs[],
			const struct revirt_vq_info info[])
{
	struct revirt_sim *sim = to_sim(vdev);
	unsigned int i, num = sim_queue_size(sim);
	struct revirt_virtqueue *vq;
	int err;

	/*
	 * Fewer are fine: one, for a driver that masked VIRTIO_BLK_F_MQ off;
	 * two, for a console without VIRTIO_CONSOLE_F_MULTIPORT.
	 */
	if (!nvqs || nvqs > sim->nqueues) {
		dev_err(&vdev->dev, "revirt_sim: %u queues asked, the device has %u\n",
			nvqs, sim->nqueues);
		return -ENOENT;
	}
	/* A queue reset alone may come back larger: room for the largest. */
	sim->segs = kcalloc(sim_max_queue_size(sim), sizeof(*sim->segs),
			    GFP_KERNEL);
	if (!sim->segs)
		return -ENOMEM;
	for (i = 0; i < nvqs; i++) {
		vq = revirt_create_vq(vdev, i, num, SMP_CACHE_BYTES,
				      sim->dma_dev, sim_notify, &info[i]);
		if (IS_ERR(vq)) {
			err = PTR_ERR(vq);
			goto del_vqs;
		}
		list_add_tail(&vq->list, &vdev->vqs);
		/* Owned by the device from here: sim_del_vqs() frees it. */
		mutex_lock(&sim->lock);
		sim->queues[i].vq = vq;
		mutex_unlock(&sim->lock);
		err = sim_activate_queue(sim, &sim->queues[i], vq);
		if (err)
			goto del_vqs;
		vqs[i] = vq;
	}
	return 0;

del_vqs:
	sim_del_vqs(vdev);
	return err;
}

static struct sim_queue *sim_queue_of(struct revirt_virtqueue *vq)
{
	return &to_sim(vq->vdev)->queues[vq->index];
}

/* Queue reset written: stop the queue at once; complete now, late or never. */
static void sim_queue_reset_begin(struct revirt_sim *sim, struct sim_queue *q)
{
	u32 delay, hang;

	/* The late completion of an earlier reset that timed out is stale. */
	cancel_delayed_work_sync(&q->reset_work);
	mutex_lock(&sim->lock);
	q->ready = false;
	WRITE_ONCE(q->resetting, true);
	delay = sim->faults.queue_reset_delay_ms;
	hang = sim->faults.queue_reset_hang;
	mutex_unlock(&sim->lock);

	/*
	 * This transport's synchronize_irq for the queue: a run that saw it
	 * ready ends, callback included; later runs skip it.  A flush and
	 * not a cancel, so that the kicks of the other queues are kept.
	 */
	flush_work(&sim->work);
	if (hang)
		return;
	if (delay)
		mod_delayed_work(system_wq, &q->reset_work,
				 msecs_to_jiffies(delay));
	else
		sim_queue_reset_complete(q);
}

static int sim_reset_vq(struct revirt_virtqueue *vq)
{
	struct revirt_sim *sim = to_sim(vq->vdev);
	struct sim_queue *q = sim_queue_of(vq);
	unsigned long deadline;
	int err;

	sim_queue_reset_begin(sim, q);
	deadline = sim_deadline();
	while (READ_ONCE(q->resetting)) {
		/* The queue's reset register reads all-ones too. */
		if (sim_status_gone(sim, READ_ONCE(sim->status)))
			return -ENODEV;
		err = sim_poll_step(deadline);
		if (err)
			return err;
	}
	return 0;
}

/* The ring was set up again by the core: new size, maybe new memory. */
static int sim_enable_vq(struct revirt_virtqueue *vq)
{
	struct revirt_sim *sim = to_sim(vq->vdev);
	struct sim_queue *q = sim_queue_of(vq);
	bool busy;
	int err;

	mutex_lock(&sim->lock);
	busy = q->resetting || q->vq != vq;
	mutex_unlock(&sim->lock);
	/* A device enables no queue whose reset did not complete. */
	if (busy)
		return -EBUSY;
	err = sim_activate_queue(sim, q, vq);
	if (err)
		return err;
	queue_work(system_wq, &sim->work);
	return 0;
}

static unsigned int sim_max_vq_size(struct revirt_virtqueue *vq)
{
	return sim_max_queue_size(to_sim(vq->vdev));
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
	.reset_vq = sim_reset_vq,
	.enable_vq = sim_enable_vq,
	.max_vq_size = sim_max_vq_size,
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

static int sim_dead_get(void *data, u64 *val)
{
	*val = READ_ONCE(((struct revirt_sim *)data)->dead);
	return 0;
}

/*
 * The device goes away for good, as a surprise removal or a function
 * whose memory decoding was turned off: it stops at once (its work item
 * is waited for, so no used buffer and no interrupt comes after this),
 * then reads all-ones.  The transport reads the status once, as a PCI
 * transport does on the hot-plug event of a surprise removal, and finds
 * it gone; it would at its next read of the device anyway.
 */
static int sim_dead_set(void *data, u64 val)
{
	struct revirt_sim *sim = data;

	if (val != 1)
		return -EINVAL;
	mutex_lock(&sim->lock);
	sim->dead = true;
	WRITE_ONCE(sim->status, 0xff);
	mutex_unlock(&sim->lock);
	cancel_work_sync(&sim->work);
	cancel_delayed_work_sync(&sim->reset_work);
	sim_cancel_queue_resets(sim);
	dev_info(&sim->vdev.dev, "revirt_sim: fault: device is dead\n");
	sim_get_status(&sim->vdev);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(sim_dead_fops, sim_dead_get, sim_dead_set, "%llu\n");

static u16 sim_queue_in_flight(const struct sim_queue *q)
{
	if (!q->ready)
		return 0;
	return __virtio16_to_cpu(true, READ_ONCE(q->avail->idx)) -
	       q->last_avail;
}

static int sim_in_flight_get(void *data, u64 *val)
{
	struct revirt_sim *sim = data;
	unsigned int i;

	*val = 0;
	mutex_lock(&sim->lock);
	for (i = 0; i < sim->nqueues; i++)
		*val += sim_queue_in_flight(&sim->queues[i]);
	mutex_unlock(&sim->lock);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(sim_in_flight_fops, sim_in_flight_get, NULL,
			 "%llu\n");

static int sim_requests_get(void *data, u64 *val)
{
	struct revirt_sim *sim = data;
	unsigned int i;

	*val = 0;
	mutex_lock(&sim->lock);
	for (i = 0; i < sim->nqueues; i++)
		*val += sim->queues[i].requests;
	mutex_unlock(&sim->lock);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(sim_requests_fops, sim_requests_get, NULL, "%llu\n");

static int sim_queue_resets_get(void *data, u64 *val)
{
	struct revirt_sim *sim = data;

	mutex_lock(&sim->lock);
	*val = sim->queue_resets;
	mutex_unlock(&sim->lock);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(sim_queue_resets_fops, sim_queue_resets_get, NULL,
			 "%llu\n");

/* One line, every queue of the device whether the driver uses it or not. */
static int sim_queue_requests_show(struct seq_file *m, void *unused)
{
	struct revirt_sim *sim = m->private;
	unsigned int i;

	mutex_lock(&sim->lock);
	for (i = 0; i < sim->nqueues; i++)
		seq_printf(m, "%s%llu", i ? " " : "", sim->queues[i].requests);
	mutex_unlock(&sim->lock);
	seq_putc(m, '\n');
	return 0;
}

DEFINE_SHOW_ATTRIBUTE(sim_queue_requests);

static int sim_port_bytes_show(struct seq_file *m, void *unused)
{
	struct revirt_sim *sim = m->private;
	unsigned int i;

	mutex_lock(&sim->lock);
	for (i = 0; i < sim->cons->nports; i++)
		seq_printf(m, "%s%llu", i ? " " : "", sim->cons->ports[i].bytes);
	mutex_unlock(&sim->lock);
	seq_putc(m, '\n');
	return 0;
}

DEFINE_SHOW_ATTRIBUTE(sim_port_bytes);

static int sim_port_guest_open_show(struct seq_file *m, void *unused)
{
	struct revirt_sim *sim = m->private;
	unsigned int i;

	mutex_lock(&sim->lock);
	for (i = 0; i < sim->cons->nports; i++)
		seq_printf(m, "%s%d", i ? " " : "",
			   sim->cons->ports[i].guest_open);
	mutex_unlock(&sim->lock);
	seq_putc(m, '\n');
	return 0;
}

DEFINE_SHOW_ATTRIBUTE(sim_port_guest_open);

static void sim_debugfs_init(struct revirt_sim *sim)
{
	unsigned int i;

	sim->debugfs = debugfs_create_dir(dev_name(&sim->vdev.dev),
					  sim_debugfs_root);
	for (i = 0; i < ARRAY_SIZE(sim_knobs); i++) {
		if (sim_knobs[i].console && !sim->cons)
			continue;
		sim->knob_files[i].sim = sim;
		sim->knob_files[i].knob = &sim_knobs[i];
		debugfs_create_file_unsafe(sim_knobs[i].name, 0600,
					   sim->debugfs, &sim->knob_files[i],
					   &sim_knob_fops);
	}
	debugfs_create_file_unsafe("needs_reset", 0200, sim->debugfs, sim,
				   &sim_needs_reset_fops);
	debugfs_create_file_unsafe("dead", 0600, sim->debugfs, sim,
				   &sim_dead_fops);
	debugfs_create_file_unsafe("in_flight", 0400, sim->debugfs, sim,
				   &sim_in_flight_fops);
	debugfs_create_file_unsafe("requests", 0400, sim->debugfs, sim,
				   &sim_requests_fops);
	debugfs_create_file_unsafe("queue_resets", 0400, sim->debugfs, sim,
				   &sim_queue_resets_fops);
	/* A seq_file has no guard of its own: the full debugfs proxy. */
	debugfs_create_file("queue_requests", 0400, sim->debugfs, sim,
			    &sim_queue_requests_fops);
	if (!sim->cons)
		return;
	debugfs_create_file("port_bytes", 0400, sim->debugfs, sim,
			    &sim_port_bytes_fops);
	debugfs_create_file("port_guest_open", 0400, sim->debugfs, sim,
			    &sim_port_guest_open_fops);
}

/* ---- devices ----------------------------------------------------------- */

static void sim_cons_free(struct sim_console *cons)
{
	unsigned int i;

	if (!cons)
		return;
	for (i = 0; i < cons->nports; i++)
		kfifo_free(&cons->ports[i].fifo);
	kfree(cons);
}

static void sim_release(struct device *dev)
{
	struct revirt_sim *sim = to_sim(dev_to_revirt(dev));

	vfree(sim->disk);
	sim_cons_free(sim->cons);
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
	sim->config.blk.capacity = __cpu_to_virtio64(true, sim->capacity);
	sim->config.blk.seg_max = __cpu_to_virtio32(true,
						    SIM_BLK_QUEUE_SIZE - 2);
	sim->config.blk.blk_size = __cpu_to_virtio32(true, SIM_SECTOR_SIZE);
	if (sim->nqueues > 1)
		sim->config.blk.num_queues = __cpu_to_virtio16(true,
							       sim->nqueues);
	sim->config_len = sizeof(sim->config.blk);
	snprintf(sim->serial, sizeof(sim->serial), "rvsim-%u", nr);
	return 0;
}

/* Ports 1.. are named "simportM"; port 0 is the console. 80x25. */
static int sim_cons_init(struct revirt_sim *sim)
{
	struct sim_console *cons;
	unsigned int i;
	int err;

	cons = kzalloc(sizeof(*cons), GFP_KERNEL);
	if (!cons)
		return -ENOMEM;
	sim->cons = cons;
	for (i = 0; i < console_ports; i++) {
		err = kfifo_alloc(&cons->ports[i].fifo, SIM_CONS_FIFO_BYTES,
				  GFP_KERNEL);
		if (err)
			return err;	/* sim_cons_free() frees the others */
		cons->nports++;
	}
	sim->config.cons.cols = __cpu_to_virtio16(true, 80);
	sim->config.cons.rows = __cpu_to_virtio16(true, 25);
	sim->config.cons.max_nr_ports = __cpu_to_virtio32(true, console_ports);
	sim->config_len = sizeof(sim->config.cons);
	return 0;
}

static void sim_queues_init(struct revirt_sim *sim, unsigned int n)
{
	unsigned int i;

	sim->nqueues = n;
	for (i = 0; i < n; i++) {
		sim->queues[i].sim = sim;
		sim->queues[i].index = i;
		INIT_DELAYED_WORK(&sim->queues[i].reset_work,
				  sim_queue_reset_work);
	}
}

static const char *const sim_kind_names[] = {
	[SIM_RNG] = "entropy",
	[SIM_BLK] = "block",
	[SIM_CONS] = "console",
};

static const u32 sim_kind_ids[] = {
	[SIM_RNG] = VIRTIO_ID_RNG,
	[SIM_BLK] = VIRTIO_ID_BLOCK,
	[SIM_CONS] = VIRTIO_ID_CONSOLE,
};

/* Queues of a device: a console has two per port and two for control. */
static unsigned int sim_nqueues(enum sim_kind kind)
{
	switch (kind) {
	case SIM_RNG:
		return 1;
	case SIM_BLK:
		return blk_queues;
	default:
		return 2 * console_ports + 2;
	}
}

static struct revirt_sim *sim_create(enum sim_kind kind, unsigned int nr)
{
	struct revirt_sim *sim;
	int err = 0;

	sim = kzalloc(sizeof(*sim), GFP_KERNEL);
	if (!sim)
		return ERR_PTR(-ENOMEM);
	sim->kind = kind;
	sim->dma_dev = &sim_parent->dev;
	mutex_init(&sim->lock);
	INIT_WORK(&sim->work, sim_work);
	INIT_DELAYED_WORK(&sim->reset_work, sim_reset_work);
	sim_queues_init(sim, sim_nqueues(kind));
	sim->faults.fault_queue = SIM_ANY_QUEUE;
	sim->vdev.id.device = sim_kind_ids[kind];
	sim->vdev.id.vendor = REVIRT_SIM_VENDOR;
	sim->vdev.config = &sim_config_ops;
	sim->vdev.dev.parent = &sim_parent->dev;
	sim->vdev.dev.release = sim_release;
	if (kind == SIM_BLK)
		err = sim_blk_init(sim, nr);
	else if (kind == SIM_CONS)
		err = sim_cons_init(sim);
	if (err) {
		sim_cons_free(sim->cons);
		kfree(sim);
		return ERR_PTR(err);
	}

	err = revirt_register_device(&sim->vdev);
	if (err) {
		put_device(&sim->vdev.dev);	/* frees it */
		return ERR_PTR(err);
	}
	sim_debugfs_init(sim);
	dev_info(&sim->vdev.dev, "revirt_sim: simulated %s device\n",
		 sim_kind_names[kind]);
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
	sim_cancel_queue_resets(sim);
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

	if (!blk_queues || blk_queues > SIM_BLK_MAX_QUEUES) {
		pr_err("revirt_sim: blk_queues=%u: 1 to %u queues\n",
		       blk_queues, SIM_BLK_MAX_QUEUES);
		return -EINVAL;
	}
	if (!console_ports || console_ports > SIM_CONS_MAX_PORTS) {
		pr_err("revirt_sim: console_ports=%u: 1 to %u ports\n",
		       console_ports, SIM_CONS_MAX_PORTS);
		return -EINVAL;
	}
	sim_parent = platform_device_register_full(&parent_info);
	if (IS_ERR(sim_parent))
		return PTR_ERR(sim_parent);
	sim_debugfs_root = debugfs_create_dir("revirt_sim", NULL);

	err = sim_create_all(SIM_RNG, rng);
	if (!err)
		err = sim_create_all(SIM_BLK, blk);
	if (!err)
		err = sim_create_all(SIM_CONS, console);
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
