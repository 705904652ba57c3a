// SPDX-License-Identifier: GPL-2.0-only
/*
 * revirt block driver: a virtio-blk device as the disk /dev/rvdX.
 *
 * blk-mq with one hardware queue per virtqueue.  A request is a header
 * (type, sector) the device reads, the data, and a status byte the device
 * writes, offered as one chain.  Completions are taken from the ring in
 * the interrupt and ended right there, in batches where the block layer
 * allows it, without a detour through a softirq.
 *
 * Stopping the device is one path, shared by remove and by a reset:
 * quiesce the queues (no new request reaches the ring), reset the device
 * (it touches no buffer any more), reclaim (requests the device completed
 * end with its status; the others fail for remove, and go back to the
 * block layer's requeue list for a reset).
 *
 * A reset (the reset attribute, a features_mask write, DEVICE_NEEDS_RESET,
 * a request that timed out) keeps the disk: rvblk_reinit() stops as above,
 * deletes the queues, negotiates again, sets up the queues the features
 * now give, and unquiesces, so the requeued requests go to the new rings.
 * Nobody above the disk sees more than a pause.  A device that does not
 * come back makes the disk dead: every request fails at once with an I/O
 * error until a later reset succeeds.
 *
 * One queue the device broke (a used entry that lies) or on which a
 * request timed out is reset alone where the device can (VIRTIO_F_RING_RESET):
 * rvblk_reset_vq() keeps new requests off that queue, lets the device
 * finish what it has (a healthy queue, bounded), resets the queue, requeues
 * what the device did not complete and enables the queue again, maybe
 * with another size; the other queues never stop.  Where that cannot be
 * done the core resets the whole device instead.
 *
 * Remove, for a healthy device: stop config changes (the core does that),
 * del_gendisk() (dirty data is written and every request finishes), then
 * the stop path above, delete the queues, free.  For a device that raised
 * DEVICE_NEEDS_RESET or broke a queue nothing in flight will ever
 * complete, so the stop path runs first and del_gendisk() after it.
 */

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/delay.h>
#include <linux/hdreg.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/revirt.h>
#include <linux/revirt_ring.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string_helpers.h>
#include <uapi/linux/virtio_blk.h>
#include <uapi/linux/virtio_ids.h>
#include <uapi/linux/virtio_ring.h>

#include "revirt_compat.h"

#define RVBLK_PART_BITS		4
#define RVBLK_MINORS		BIT(RVBLK_PART_BITS)
#define RVBLK_INLINE_SG		2
#define RVBLK_MAX_DISCARD_SEGS	256
/* How long a queue reset alone waits for the device to finish a queue. */
#define RVBLK_DRAIN_MS		2000
/* A status the device never writes: an unwritten status reads as error. */
#define RVBLK_S_UNSET		0xff

#define RVBLK_CFG(field)	offsetof(struct virtio_blk_config, field)

/*
 * A request followed by an avail entry out of range is a malformed ring to
 * QEMU, whose device raises DEVICE_NEEDS_RESET: the recovery test's knob.
 * The bad entry goes before the request, so that the request is in flight
 * on a device that will never answer it.
 */
static unsigned int malformed_requests;
module_param(malformed_requests, uint, 0644);
MODULE_PARM_DESC(malformed_requests,
		 "Test only: put a malformed avail entry before the next N requests");

static int rvblk_major;
static DEFINE_IDA(rvblk_index_ida);

/**
 * struct rvblk_vq - one virtqueue and its hardware queue
 * @vq: the virtqueue
 * @lock: serialises the ring operations (submission and completion)
 * @stopped: a hardware queue was stopped because the ring was full, or
 *	while the queue is reset alone
 * @resetting: the queue is reset alone; no request goes on its ring
 * @timed_out: a request timed out and the queue was reset alone for it;
 *	cleared when the device completes a request of the queue again
 * @unanswered: requests the device used without writing their status; it
 *	may still work on them, so they wait for the queue's next reset
 * @name: queue name, "req.N"
 */
struct rvblk_vq {
	struct revirt_virtqueue *vq;
	spinlock_t lock;		/* the ring, @stopped, @resetting */
	bool stopped;
	bool resetting;
	bool timed_out;
	struct rvblk_req *unanswered;
	char name[16];
} ____cacheline_aligned_in_smp;

/**
 * struct rvblk - one disk
 * @vdev: the revirt device; NULL once removed (the disk may outlive it)
 * @disk: the disk
 * @tag_set: blk-mq tags, one hardware queue per virtqueue
 * @vqs: the queues; NULL while the disk is dead
 * @nvqs: number of queues; hardware queue i uses queue i % @nvqs
 * @index: the disk's number, for its name and minors
 * @little_endian: the device's byte order for headers and config
 * @stopped: the stop path ran; the queues take no request any more
 * @dead: the device did not come back from a reset: requests fail at once
 * @removing: remove runs; a timeout stops the device instead of a reset
 * @stop_lock: one stop path at a time (remove, a timeout during remove)
 * @geo: geometry for HDIO_GETGEO, read at probe
 */
struct rvblk {
	struct revirt_device *vdev;
	struct gendisk *disk;
	struct blk_mq_tag_set tag_set;
	struct rvblk_vq *vqs;
	unsigned int nvqs;
	int index;
	bool little_endian;
	bool stopped;
	bool dead;
	bool removing;
	struct mutex stop_lock;		/* rvblk_stop() */
	struct hd_geometry geo;
};

/**
 * struct rvblk_req - per-request driver data (the blk-mq pdu)
 * @hdr: what the device reads first
 * @status: what the device writes last
 * @ranges: discard / write-zeroes ranges, or NULL
 * @sg_table: the data's scatterlist
 * @next: link in a list of requests to end (rq_next is the block
 *	layer's, used by the completion batch)
 * @sg: inline scatterlist entries; longer lists are chained from a pool
 */
struct rvblk_req {
	struct virtio_blk_outhdr hdr;
	u8 status;
	struct virtio_blk_discard_write_zeroes *ranges;
	struct sg_table sg_table;
	struct rvblk_req *next;
	struct scatterlist sg[];
};

/* ---- requests ---------------------------------------------------------- */

static __virtio32 rvblk_cpu32(const struct rvblk *vblk, u32 val)
{
	return __cpu_to_virtio32(vblk->little_endian, val);
}

static __virtio64 rvblk_cpu64(const struct rvblk *vblk, u64 val)
{
	return __cpu_to_virtio64(vblk->little_endian, val);
}

static bool rvblk_single_range(struct request *req)
{
	return req_op(req) == REQ_OP_WRITE_ZEROES ||
	       queue_max_discard_segments(req->q) == 1;
}

static blk_status_t rvblk_setup_ranges(struct request *req,
				       struct rvblk_req *br, bool unmap)
{
	unsigned short n = blk_rq_nr_discard_segments(req);
	u32 flags = unmap ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
	struct bio *bio;
	unsigned short i = 0;

	br->ranges = kmalloc_array(n, sizeof(*br->ranges), GFP_ATOMIC);
	if (!br->ranges)
		return BLK_STS_RESOURCE;

	/*
	 * Write-zeroes requests, and discards when one segment is allowed,
	 * are one contiguous range even when bios were merged.
	 */
	if (rvblk_single_range(req)) {
		br->ranges[0].sector = cpu_to_le64(blk_rq_pos(req));
		br->ranges[0].num_sectors = cpu_to_le32(blk_rq_sectors(req));
		br->ranges[0].flags = cpu_to_le32(flags);
		n = 1;
	} else {
		__rq_for_each_bio(bio, req) {
			if (WARN_ON_ONCE(i >= n))
				break;
			br->ranges[i].sector =
				cpu_to_le64(bio->bi_iter.bi_sector);
			br->ranges[i].num_sectors =
				cpu_to_le32(bio->bi_iter.bi_size >> SECTOR_SHIFT);
			br->ranges[i].flags = cpu_to_le32(flags);
			i++;
		}
		n = i;
	}
	req->special_vec.bv_page = virt_to_page(br->ranges);
	req->special_vec.bv_offset = offset_in_page(br->ranges);
	req->special_vec.bv_len = n * sizeof(*br->ranges);
	req->rq_flags |= RQF_SPECIAL_PAYLOAD;
	return BLK_STS_OK;
}

/* The header for @req; ranges for discard and write-zeroes. */
static blk_status_t rvblk_setup_cmd(struct rvblk *vblk, struct request *req,
				    struct rvblk_req *br)
{
	u32 type;
	u64 sector = 0;

	br->ranges = NULL;
	switch (req_op(req)) {
	case REQ_OP_READ:
		type = VIRTIO_BLK_T_IN;
		sector = blk_rq_pos(req);
		break;
	case REQ_OP_WRITE:
		type = VIRTIO_BLK_T_OUT;
		sector = blk_rq_pos(req);
		break;
	case REQ_OP_FLUSH:
		type = VIRTIO_BLK_T_FLUSH;
		break;
	case REQ_OP_DISCARD:
		type = VIRTIO_BLK_T_DISCARD;
		break;
	case REQ_OP_WRITE_ZEROES:
		type = VIRTIO_BLK_T_WRITE_ZEROES;
		break;
	case REQ_OP_DRV_IN:
		type = VIRTIO_BLK_T_GET_ID;
		break;
	default:
		return BLK_STS_NOTSUPP;
	}
	br->hdr.type = rvblk_cpu32(vblk, type);
	br->hdr.ioprio = rvblk_cpu32(vblk, 0);
	br->hdr.sector = rvblk_cpu64(vblk, sector);
	br->status = RVBLK_S_UNSET;

	if (type == VIRTIO_BLK_T_DISCARD)
		return rvblk_setup_ranges(req, br, false);
	if (type == VIRTIO_BLK_T_WRITE_ZEROES)
		return rvblk_setup_ranges(req, br,
					  !(req->cmd_flags & REQ_NOUNMAP));
	return BLK_STS_OK;
}

/* Map the data (or the ranges) into br->sg_table; returns the entries. */
static int rvblk_map_data(struct request *req, struct rvblk_req *br)
{
	int err;

	if (!blk_rq_nr_phys_segments(req))
		return 0;
	/* The inline entries are the first chunk; the pool adds the rest. */
	br->sg_table.sgl = br->sg;
	err = sg_alloc_table_chained(&br->sg_table,
				     blk_rq_nr_phys_segments(req), br->sg,
				     RVBLK_INLINE_SG);
	if (err)
		return -ENOMEM;
	return blk_rq_map_sg(req->q, req, br->sg_table.sgl);
}

static void rvblk_cleanup(struct request *req)
{
	struct rvblk_req *br = blk_mq_rq_to_pdu(req);

	if (br->sg_table.nents) {
		sg_free_table_chained(&br->sg_table, RVBLK_INLINE_SG);
		br->sg_table.nents = 0;
	}
	kfree(br->ranges);
	br->ranges = NULL;
	req->rq_flags &= ~RQF_SPECIAL_PAYLOAD;
}

static blk_status_t rvblk_prepare(struct rvblk *vblk, struct request *req,
				  struct rvblk_req *br)
{
	blk_status_t status;
	int nents;

	br->sg_table.nents = 0;
	status = rvblk_setup_cmd(vblk, req, br);
	if (status) {
		rvblk_cleanup(req);
		return status;
	}
	nents = rvblk_map_data(req, br);
	if (nents < 0) {
		rvblk_cleanup(req);
		return BLK_STS_RESOURCE;
	}
	br->sg_table.nents = nents;
	return BLK_STS_OK;
}

/* Header, data, status as one chain; the caller holds the queue's lock. */
static int rvblk_add_req(struct revirt_virtqueue *vq, struct request *req,
			 struct rvblk_req *br)
{
	struct scatterlist hdr, status, *sgs[3];
	unsigned int out = 0, in = 0;

	sg_init_one(&hdr, &br->hdr, sizeof(br->hdr));
	sgs[out++] = &hdr;
	if (br->sg_table.nents) {
		if (rq_data_dir(req) == WRITE || br->ranges)
			sgs[out++] = br->sg_table.sgl;
		else
			sgs[out + in++] = br->sg_table.sgl;
	}
	sg_init_one(&status, &br->status, sizeof(br->status));
	sgs[out + in++] = &status;
	return revirt_vq_add_sgs(vq, sgs, out, in, br, GFP_ATOMIC);
}

static void rvblk_maybe_malform(struct rvblk *vblk, struct revirt_virtqueue *vq)
{
	unsigned int n = READ_ONCE(malformed_requests);

	/* Queues run in parallel: take one from the count, never below 0. */
	while (unlikely(n)) {
		unsigned int seen = cmpxchg(&malformed_requests, n, n - 1);

		if (seen == n)
			break;
		n = seen;
	}
	if (likely(!n))
		return;
	dev_warn(&vblk->vdev->dev, "malforming the avail ring (malformed_requests)\n");
	revirt_vq_inject_bad_head(vq);
}

/*
 * The queues change only while the hardware queues are quiesced; between
 * a reset that changed their number and blk_mq_update_nr_hw_queues()
 * several hardware queues may share one virtqueue.
 */
static struct rvblk_vq *rvblk_hctx_vq(struct rvblk *vblk,
				      struct blk_mq_hw_ctx *hctx)
{
	return &vblk->vqs[hctx->queue_num % vblk->nvqs];
}

/*
 * A queue the device broke is reset from a work item, which then restarts
 * the hardware queues; none is coming once the disk is stopped or removed,
 * or when the device itself is gone or broken.
 */
static bool rvblk_reset_coming(const struct rvblk *vblk)
{
	return !READ_ONCE(vblk->removing) && !READ_ONCE(vblk->stopped) &&
	       !READ_ONCE(vblk->vdev->broken);
}

static blk_status_t rvblk_add_error(struct rvblk *vblk, struct rvblk_vq *bq,
				    struct blk_mq_hw_ctx *hctx, int err)
{
	switch (err) {
	case -ENOSPC:
		/* Restarted when the device gives a buffer back. */
		break;
	case -EIO:
		/* A broken ring: the request waits for the queue's reset. */
		if (rvblk_reset_coming(vblk))
			break;
		return BLK_STS_IOERR;
	case -ENOMEM:
		return BLK_STS_RESOURCE;
	default:
		return BLK_STS_IOERR;
	}
	blk_mq_stop_hw_queue(hctx);
	bq->stopped = true;
	return BLK_STS_DEV_RESOURCE;
}

static blk_status_t rvblk_queue_rq(struct blk_mq_hw_ctx *hctx,
				   const struct blk_mq_queue_data *bd)
{
	struct rvblk *vblk = hctx->queue->queuedata;
	struct request *req = bd->rq;
	struct rvblk_req *br = blk_mq_rq_to_pdu(req);
	struct rvblk_vq *bq;
	blk_status_t status;
	unsigned long flags;
	bool notify;
	int err;

	if (unlikely(vblk->dead))
		return BLK_STS_IOERR;
	bq = rvblk_hctx_vq(vblk, hctx);
	status = rvblk_prepare(vblk, req, br);
	if (unlikely(status))
		return status;
	blk_mq_start_request(req);

	spin_lock_irqsave(&bq->lock, flags);
	if (unlikely(bq->resetting)) {
		/* rvblk_reset_vq() starts the hardware queue again. */
		blk_mq_stop_hw_queue(hctx);
		bq->stopped = true;
		spin_unlock_irqrestore(&bq->lock, flags);
		rvblk_cleanup(req);
		return BLK_STS_DEV_RESOURCE;
	}
	rvblk_maybe_malform(vblk, bq->vq);
	err = rvblk_add_req(bq->vq, req, br);
	if (unlikely(err)) {
		/* Let the device see what was queued before this one. */
		revirt_vq_kick(bq->vq);
		status = rvblk_add_error(vblk, bq, hctx, err);
		spin_unlock_irqrestore(&bq->lock, flags);
		rvblk_cleanup(req);
		return status;
	}
	notify = bd->last && revirt_vq_kick_prepare(bq->vq);
	spin_unlock_irqrestore(&bq->lock, flags);

	if (notify)
		revirt_vq_notify(bq->vq);
	return BLK_STS_OK;
}

static void rvblk_commit_rqs(struct blk_mq_hw_ctx *hctx)
{
	struct rvblk *vblk = hctx->queue->queuedata;
	struct rvblk_vq *bq;
	unsigned long flags;
	bool notify;

	if (unlikely(vblk->dead))
		return;
	bq = rvblk_hctx_vq(vblk, hctx);
	spin_lock_irqsave(&bq->lock, flags);
	notify = !bq->resetting && revirt_vq_kick_prepare(bq->vq);
	spin_unlock_irqrestore(&bq->lock, flags);
	if (notify)
		revirt_vq_notify(bq->vq);
}

/* ---- completions ------------------------------------------------------- */

static blk_status_t rvblk_result(u8 status)
{
	switch (status) {
	case VIRTIO_BLK_S_OK:
		return BLK_STS_OK;
	case VIRTIO_BLK_S_UNSUPP:
		return BLK_STS_NOTSUPP;
	case VIRTIO_BLK_S_IOERR:
		return BLK_STS_IOERR;
	default:
		/* Unwritten (RVBLK_S_UNSET) or a value the spec does not know. */
		return BLK_STS_IOERR;
	}
}

static void rvblk_complete_batch(struct io_comp_batch *iob)
{
	struct request *req;

	rq_list_for_each(&iob->req_list, req)
		rvblk_cleanup(req);
	blk_mq_end_request_batch(iob);
}

/*
 * End a list of requests, outside the queue lock (their completion may
 * submit more).  @status overrides the device's status unless it is OK.
 */
static void rvblk_end_list(struct rvblk_req *br, blk_status_t status)
{
	DEFINE_IO_COMP_BATCH(iob);

	while (br) {
		struct request *req = blk_mq_rq_from_pdu(br);
		blk_status_t st = status ? status : rvblk_result(br->status);

		br = br->next;
		if (blk_mq_add_to_batch(req, &iob, st != BLK_STS_OK,
					rvblk_complete_batch))
			continue;
		rvblk_cleanup(req);
		blk_mq_end_request(req, st);
	}
	if (iob.complete)
		iob.complete(&iob);
}

/*
 * A used entry whose request has no status is a device that named the
 * wrong buffer (the request is likely still on its avail ring): ending the
 * request would fail it, or complete it before its data moved.  The queue
 * breaks, and its reset gives the request back to the block layer.
 */
static void rvblk_hold_unanswered(struct rvblk_vq *bq, struct rvblk_req *br)
{
	dev_warn_ratelimited(&bq->vq->vdev->dev, "queue %s: the device used request %d without writing its status: retrying it after a reset of the queue\n",
			     bq->name, blk_mq_rq_from_pdu(br)->tag);
	revirt_vq_mark_broken(bq->vq);
	br->next = bq->unanswered;
	bq->unanswered = br;
}

/* Take every used buffer off the ring; the caller holds the queue lock. */
static struct rvblk_req *rvblk_reap(struct rvblk_vq *bq, struct rvblk_req *list)
{
	struct rvblk_req *br;
	unsigned int len;

	while ((br = revirt_vq_get_buf(bq->vq, &len))) {
		/* The ring checked len against the writable bytes. */
		if (unlikely(READ_ONCE(br->status) == RVBLK_S_UNSET)) {
			rvblk_hold_unanswered(bq, br);
			break;
		}
		br->next = list;
		list = br;
	}
	return list;
}

static void rvblk_done(struct revirt_virtqueue *vq)
{
	struct rvblk *vblk = vq->vdev->priv;
	struct rvblk_vq *bq = &vblk->vqs[vq->index];
	struct rvblk_req *list = NULL;
	unsigned long flags;
	bool restart, broken;

	spin_lock_irqsave(&bq->lock, flags);
	do {
		revirt_vq_disable_cb(vq);
		list = rvblk_reap(bq, list);
	} while (!revirt_vq_enable_cb(vq) && !revirt_vq_is_broken(vq));
	restart = list && bq->stopped && !bq->resetting;
	if (restart)
		bq->stopped = false;
	if (list)
		bq->timed_out = false;
	broken = revirt_vq_is_broken(vq) && !bq->resetting;
	spin_unlock_irqrestore(&bq->lock, flags);

	rvblk_end_list(list, BLK_STS_OK);
	if (restart)
		blk_mq_start_stopped_hw_queues(vblk->disk->queue, true);
	/* What is left on the ring comes back only through a reset. */
	if (broken) {
		dev_warn_ratelimited(&vblk->vdev->dev, "queue %s broken by the device: resetting it\n",
				     bq->name);
		revirt_schedule_vq_reset(vblk->vdev, vq->index);
	}
}

/* ---- the stop path ----------------------------------------------------- */

/* Requests the device never saw again go back to the block layer. */
static void rvblk_requeue_list(struct rvblk_req *br)
{
	while (br) {
		struct request *req = blk_mq_rq_from_pdu(br);

		br = br->next;
		rvblk_cleanup(req);
		blk_mq_requeue_request(req, false);
	}
}

/*
 * Take every request off the ring of a reset queue: the device used @used
 * (they end with its status), the others it never will (returned), with
 * those it used without an answer.
 */
static struct rvblk_req *rvblk_vq_take_all(struct rvblk_vq *bq,
					   struct rvblk_req **used)
{
	struct rvblk_req *left, *br;
	unsigned long flags;

	spin_lock_irqsave(&bq->lock, flags);
	*used = rvblk_reap(bq, NULL);
	left = bq->unanswered;
	bq->unanswered = NULL;
	while ((br = revirt_vq_detach_unused_buf(bq->vq))) {
		br->next = left;
		left = br;
	}
	spin_unlock_irqrestore(&bq->lock, flags);
	return left;
}

/*
 * After the reset: requests the device completed end with their status,
 * the others with @unused, or are requeued if @unused is BLK_STS_OK; new
 * requests fail at once (a broken ring).
 */
static void rvblk_reclaim(struct rvblk *vblk, blk_status_t unused)
{
	unsigned int i;

	for (i = 0; i < vblk->nvqs; i++) {
		struct rvblk_vq *bq = &vblk->vqs[i];
		struct rvblk_req *used, *left;
		unsigned long flags;

		left = rvblk_vq_take_all(bq, &used);
		spin_lock_irqsave(&bq->lock, flags);
		revirt_vq_mark_broken(bq->vq);
		bq->stopped = false;
		spin_unlock_irqrestore(&bq->lock, flags);

		rvblk_end_list(used, BLK_STS_OK);
		if (unused == BLK_STS_OK) {
			rvblk_requeue_list(left);
			continue;
		}
		if (left)
			dev_warn(&vblk->vdev->dev, "queue %s: requests the device did not complete end with an error\n",
				 bq->name);
		rvblk_end_list(left, unused);
	}
}

/*
 * Quiesce, reset, reclaim: afterwards the device touches no buffer, no
 * request is on a ring, and new requests fail at once.  Runs once: remove
 * and a timeout during remove may both ask for it.
 */
static void rvblk_stop(struct rvblk *vblk, blk_status_t unused)
{
	struct request_queue *q = vblk->disk->queue;

	mutex_lock(&vblk->stop_lock);
	if (!vblk->stopped) {
		blk_mq_quiesce_queue(q);
		revirt_reset_device(vblk->vdev);
		rvblk_reclaim(vblk, unused);
		/* A queue stopped on a full ring waits for nothing any more. */
		blk_mq_start_stopped_hw_queues(q, true);
		vblk->stopped = true;
		blk_mq_unquiesce_queue(q);
	}
	mutex_unlock(&vblk->stop_lock);
}

/* Nothing in flight will complete on a device that gave up. */
static bool rvblk_device_failed(struct rvblk *vblk)
{
	unsigned int i;

	if (vblk->dead || vblk->vdev->broken ||
	    (vblk->vdev->config->get_status(vblk->vdev) &
	     VIRTIO_CONFIG_S_NEEDS_RESET))
		return true;
	for (i = 0; i < vblk->nvqs; i++)
		if (revirt_vq_is_broken(vblk->vqs[i].vq))
			return true;
	return false;
}

/*
 * The request's queue alone first; if the device completed nothing of it
 * since that queue reset, resetting the queue did not help: the device.
 */
static void rvblk_schedule_timeout_reset(struct rvblk *vblk,
					 struct request *req)
{
	struct rvblk_vq *bq;
	unsigned long flags;
	bool again;

	if (!vblk->nvqs) {
		revirt_schedule_reset(vblk->vdev);
		return;
	}
	bq = rvblk_hctx_vq(vblk, req->mq_hctx);
	spin_lock_irqsave(&bq->lock, flags);
	again = bq->timed_out;
	bq->timed_out = true;
	spin_unlock_irqrestore(&bq->lock, flags);
	if (again)
		revirt_schedule_reset(vblk->vdev);
	else
		revirt_schedule_vq_reset(vblk->vdev, bq - vblk->vqs);
}

static enum blk_eh_timer_return rvblk_timeout(struct request *req)
{
	struct rvblk *vblk = req->q->queuedata;

	/*
	 * Remove holds the device lock, so no reset can run: a device silent
	 * then would keep del_gendisk() waiting.  Stop it here instead; the
	 * requests in flight fail.
	 */
	if (READ_ONCE(vblk->removing)) {
		dev_warn(disk_to_dev(vblk->disk),
			 "request %d gets no answer while the disk is removed: stopping the device\n",
			 req->tag);
		rvblk_stop(vblk, BLK_STS_IOERR);
		return BLK_EH_DONE;
	}
	/*
	 * Is anybody still there?  Reading the status lets the transport find
	 * a device that is gone (all-ones); the core then stops the disk
	 * (rvblk_reinit() fails at once) and this request fails with it.
	 */
	vblk->vdev->config->get_status(vblk->vdev);
	if (READ_ONCE(vblk->vdev->gone))
		return BLK_EH_RESET_TIMER;
	/*
	 * The device still owns the buffer; only a reset gives it back.  The
	 * core runs it: of the request's queue alone (rvblk_reset_vq()) where
	 * the device can and that has not failed already, otherwise of the
	 * device (rvblk_reinit()); either
	 * requeues the request, or fails it if the device does not come
	 * back.  Timeouts of other requests until then are merged into it.
	 */
	dev_warn_ratelimited(disk_to_dev(vblk->disk),
			     "request %d (op 0x%x) gets no answer from the device: resetting it\n",
			     req->tag, req->cmd_flags & REQ_OP_MASK);
	rvblk_schedule_timeout_reset(vblk, req);
	return BLK_EH_RESET_TIMER;
}

/* ---- blk-mq and block device operations -------------------------------- */

static const struct blk_mq_ops rvblk_mq_ops = {
	.queue_rq = rvblk_queue_rq,
	.commit_rqs = rvblk_commit_rqs,
	.timeout = rvblk_timeout,
};

static int rvblk_getgeo(struct block_device *bdev, struct hd_geometry *geo)
{
	struct rvblk *vblk = bdev->bd_disk->private_data;

	*geo = vblk->geo;
	return 0;
}

/* The disk may outlive the device (an open file); free with the disk. */
static void rvblk_free_disk(struct gendisk *disk)
{
	struct rvblk *vblk = disk->private_data;

	ida_free(&rvblk_index_ida, vblk->index);
	kfree(vblk);
}

static const struct block_device_operations rvblk_fops = {
	.owner = THIS_MODULE,
	.getgeo = rvblk_getgeo,
	.free_disk = rvblk_free_disk,
};

/* The device's serial number (GET_ID), up to 20 bytes. */
static int rvblk_get_id(struct gendisk *disk, char *buf)
{
	struct request_queue *q = disk->queue;
	struct request *req;
	blk_status_t status;
	int err;

	req = blk_mq_alloc_request(q, REQ_OP_DRV_IN, 0);
	if (IS_ERR(req))
		return PTR_ERR(req);
	err = blk_rq_map_kern(q, req, buf, VIRTIO_BLK_ID_BYTES, GFP_KERNEL);
	if (err)
		goto free;
	status = blk_execute_rq(req, false);
	err = blk_status_to_errno(status);
free:
	blk_mq_free_request(req);
	return err;
}

static ssize_t serial_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct gendisk *disk = dev_to_disk(dev);
	char *id;
	int err;

	/* Mapped for the device: not on the stack. */
	id = kzalloc(VIRTIO_BLK_ID_BYTES + 1, GFP_KERNEL);
	if (!id)
		return -ENOMEM;
	err = rvblk_get_id(disk, id);
	if (!err)
		err = sysfs_emit(buf, "%s\n", id);
	kfree(id);
	return err;
}
static DEVICE_ATTR_RO(serial);

static struct attribute *rvblk_attrs[] = {
	&dev_attr_serial.attr,
	NULL,
};

static const struct attribute_group rvblk_attr_group = {
	.attrs = rvblk_attrs,
};

static const struct attribute_group *rvblk_attr_groups[] = {
	&rvblk_attr_group,
	NULL,
};

/* ---- configuration ----------------------------------------------------- */

static u32 rvblk_cread32(struct rvblk *vblk, unsigned int offset)
{
	return revirt_cread(vblk->vdev, offset, 4);
}

static sector_t rvblk_capacity(struct rvblk *vblk)
{
	return revirt_cread(vblk->vdev, RVBLK_CFG(capacity), 8);
}

static unsigned int rvblk_block_size(struct rvblk *vblk)
{
	u32 bs;

	if (!revirt_has_feature(vblk->vdev, VIRTIO_BLK_F_BLK_SIZE))
		return SECTOR_SIZE;
	bs = rvblk_cread32(vblk, RVBLK_CFG(blk_size));
	if (bs < SECTOR_SIZE || bs > PAGE_SIZE || !is_power_of_2(bs)) {
		dev_warn(&vblk->vdev->dev, "block size %u unusable; using 512\n",
			 bs);
		return SECTOR_SIZE;
	}
	return bs;
}

static void rvblk_topology(struct rvblk *vblk, struct revirt_blk_limits *lim)
{
	unsigned int bs = lim->logical_block_size;
	u8 exp, align;
	u32 min_io, opt_io;

	if (!revirt_has_feature(vblk->vdev, VIRTIO_BLK_F_TOPOLOGY))
		return;
	exp = revirt_cread(vblk->vdev, RVBLK_CFG(physical_block_exp), 1);
	align = revirt_cread(vblk->vdev, RVBLK_CFG(alignment_offset), 1);
	min_io = revirt_cread(vblk->vdev, RVBLK_CFG(min_io_size), 2);
	opt_io = rvblk_cread32(vblk, RVBLK_CFG(opt_io_size));

	/* Keep every product within 32 bits. */
	if (exp <= 12)
		lim->physical_block_size = bs << exp;
	lim->alignment_offset = (u64)bs * align <= SZ_1M ? bs * align : 0;
	lim->io_min = (u64)bs * min_io <= SZ_1G ? bs * min_io : 0;
	lim->io_opt = (u64)bs * opt_io <= SZ_1G ? bs * opt_io : 0;
}

static void rvblk_discard_limits(struct rvblk *vblk,
				 struct revirt_blk_limits *lim,
				 unsigned int sg_max)
{
	struct revirt_device *vdev = vblk->vdev;
	u32 v;

	if (revirt_has_feature(vdev, VIRTIO_BLK_F_DISCARD)) {
		v = rvblk_cread32(vblk, RVBLK_CFG(max_discard_sectors));
		lim->max_discard_sectors = v ? v : UINT_MAX;
		v = rvblk_cread32(vblk, RVBLK_CFG(max_discard_seg));
		lim->max_discard_segments =
			clamp_t(u32, v, 1, min_t(u32, sg_max,
						 RVBLK_MAX_DISCARD_SEGS));
		v = rvblk_cread32(vblk, RVBLK_CFG(discard_sector_alignment));
		lim->discard_granularity = v && v <= (SZ_1G >> SECTOR_SHIFT) ?
					   v << SECTOR_SHIFT :
					   lim->logical_block_size;
	}
	if (revirt_has_feature(vdev, VIRTIO_BLK_F_WRITE_ZEROES)) {
		v = rvblk_cread32(vblk, RVBLK_CFG(max_write_zeroes_sectors));
		lim->max_write_zeroes_sectors = v ? v : UINT_MAX;
	}
}

static bool rvblk_write_cache(struct rvblk *vblk)
{
	if (revirt_has_feature(vblk->vdev, VIRTIO_BLK_F_CONFIG_WCE))
		return revirt_cread(vblk->vdev, RVBLK_CFG(wce), 1);
	return revirt_has_feature(vblk->vdev, VIRTIO_BLK_F_FLUSH);
}

/* Smallest ring: every queue must take the largest request. */
static unsigned int rvblk_min_ring(struct rvblk *vblk)
{
	unsigned int i, num = UINT_MAX;

	for (i = 0; i < vblk->nvqs; i++)
		num = min(num, revirt_vq_get_vring_size(vblk->vqs[i].vq));
	return num;
}

/* Data entries of one request: the ring holds them plus header and status. */
static unsigned int rvblk_sg_max(struct rvblk *vblk)
{
	unsigned int ring = rvblk_min_ring(vblk), n = ring - 2;

	if (revirt_has_feature(vblk->vdev, VIRTIO_BLK_F_SEG_MAX)) {
		u32 seg_max = rvblk_cread32(vblk, RVBLK_CFG(seg_max));

		if (seg_max)
			n = min_t(u32, n, seg_max);
	}
	return clamp_t(unsigned int, n, 1, USHRT_MAX);
}

static void rvblk_limits(struct rvblk *vblk, struct revirt_blk_limits *lim)
{
	unsigned int sg_max = rvblk_sg_max(vblk);
	u32 size_max = U32_MAX;

	if (revirt_has_feature(vblk->vdev, VIRTIO_BLK_F_SIZE_MAX)) {
		size_max = rvblk_cread32(vblk, RVBLK_CFG(size_max));
		/* The block layer takes nothing below a page. */
		size_max = max_t(u32, size_max, PAGE_SIZE);
	}
	memset(lim, 0, sizeof(*lim));
	lim->logical_block_size = rvblk_block_size(vblk);
	lim->physical_block_size = lim->logical_block_size;
	lim->max_hw_sectors = UINT_MAX;
	lim->max_segments = sg_max;
	lim->max_segment_size = size_max;
	lim->write_cache = rvblk_write_cache(vblk);
	rvblk_topology(vblk, lim);
	rvblk_discard_limits(vblk, lim, sg_max);
}

static void rvblk_read_geometry(struct rvblk *vblk)
{
	sector_t cap = rvblk_capacity(vblk);

	if (revirt_has_feature(vblk->vdev, VIRTIO_BLK_F_GEOMETRY)) {
		vblk->geo.cylinders = revirt_cread(vblk->vdev,
						   RVBLK_CFG(geometry.cylinders), 2);
		vblk->geo.heads = revirt_cread(vblk->vdev,
					       RVBLK_CFG(geometry.heads), 1);
		vblk->geo.sectors = revirt_cread(vblk->vdev,
						 RVBLK_CFG(geometry.sectors), 1);
		return;
	}
	/* No geometry given: a made-up one that covers the disk. */
	vblk->geo.heads = 64;
	vblk->geo.sectors = 32;
	vblk->geo.cylinders = min_t(sector_t, cap >> 11, USHRT_MAX);
}

static void rvblk_update_capacity(struct rvblk *vblk, bool announce)
{
	sector_t cap = rvblk_capacity(vblk);
	unsigned int lbs = queue_logical_block_size(vblk->disk->queue);
	char cap_str[2][10];

	/* Whole logical blocks only. */
	cap = round_down(cap, lbs >> SECTOR_SHIFT);
	string_get_size(cap, SECTOR_SIZE, STRING_UNITS_10, cap_str[0],
			sizeof(cap_str[0]));
	string_get_size(cap, SECTOR_SIZE, STRING_UNITS_2, cap_str[1],
			sizeof(cap_str[1]));
	dev_info(&vblk->vdev->dev, "%s: %llu %u-byte logical blocks (%s/%s)\n",
		 vblk->disk->disk_name,
		 (unsigned long long)cap / (lbs >> SECTOR_SHIFT), lbs,
		 cap_str[0], cap_str[1]);
	if (announce)
		set_capacity_and_notify(vblk->disk, cap);
	else
		set_capacity(vblk->disk, cap);
}

static void rvblk_config_changed(struct revirt_device *vdev)
{
	struct rvblk *vblk = vdev->priv;

	rvblk_update_capacity(vblk, true);
}

/* ---- probe and remove -------------------------------------------------- */

static unsigned int rvblk_num_queues(struct revirt_device *vdev)
{
	u16 n = 1;

	if (revirt_has_feature(vdev, VIRTIO_BLK_F_MQ))
		n = revirt_cread(vdev, RVBLK_CFG(num_queues), 2);
	return clamp_t(unsigned int, n, 1, nr_cpu_ids);
}

static int rvblk_init_vqs(struct rvblk *vblk)
{
	struct revirt_virtqueue **vqs;
	struct revirt_vq_info *info;
	unsigned int i, n = rvblk_num_queues(vblk->vdev);
	int err = -ENOMEM;

	vblk->vqs = kcalloc(n, sizeof(*vblk->vqs), GFP_KERNEL);
	vqs = kcalloc(n, sizeof(*vqs), GFP_KERNEL);
	info = kcalloc(n, sizeof(*info), GFP_KERNEL);
	if (!vblk->vqs || !vqs || !info)
		goto free;

	for (i = 0; i < n; i++) {
		snprintf(vblk->vqs[i].name, sizeof(vblk->vqs[i].name),
			 "req.%u", i);
		spin_lock_init(&vblk->vqs[i].lock);
		info[i].name = vblk->vqs[i].name;
		info[i].callback = rvblk_done;
	}
	err = revirt_find_vqs(vblk->vdev, n, vqs, info);
	if (err)
		goto free;
	for (i = 0; i < n; i++)
		vblk->vqs[i].vq = vqs[i];
	vblk->nvqs = n;
free:
	kfree(info);
	kfree(vqs);
	if (err) {
		kfree(vblk->vqs);
		vblk->vqs = NULL;
	}
	return err;
}

static int rvblk_init_tag_set(struct rvblk *vblk)
{
	struct blk_mq_tag_set *set = &vblk->tag_set;
	unsigned int depth = rvblk_min_ring(vblk);

	/* Without indirect descriptors a request takes several entries. */
	if (!revirt_has_feature(vblk->vdev, VIRTIO_RING_F_INDIRECT_DESC))
		depth = max(depth / 2, 1U);

	memset(set, 0, sizeof(*set));
	set->ops = &rvblk_mq_ops;
	set->nr_hw_queues = vblk->nvqs;
	set->queue_depth = depth;
	set->numa_node = NUMA_NO_NODE;
	/* The host schedules the I/O; a guest elevator only adds latency. */
	set->flags = BLK_MQ_F_SHOULD_MERGE | BLK_MQ_F_NO_SCHED_BY_DEFAULT;
	set->cmd_size = sizeof(struct rvblk_req) +
			sizeof(struct scatterlist) * RVBLK_INLINE_SG;
	set->driver_data = vblk;
	return blk_mq_alloc_tag_set(set);
}

/* "rvda" ... "rvdz", "rvdaa" ... as sd does it. */
static int rvblk_name(char *buf, size_t len, int index)
{
	char letters[8];
	int i = sizeof(letters);

	do {
		if (!i)
			return -EINVAL;
		letters[--i] = 'a' + index % 26;
		index = index / 26 - 1;
	} while (index >= 0);
	if (snprintf(buf, len, "rvd%.*s", (int)sizeof(letters) - i,
		     letters + i) >= len)
		return -EINVAL;
	return 0;
}

static void rvblk_init_disk(struct rvblk *vblk)
{
	struct gendisk *disk = vblk->disk;

	disk->major = rvblk_major;
	disk->first_minor = vblk->index << RVBLK_PART_BITS;
	disk->minors = RVBLK_MINORS;
	disk->fops = &rvblk_fops;
	disk->private_data = vblk;
	rvblk_name(disk->disk_name, DISK_NAME_LEN, vblk->index);
	if (revirt_has_feature(vblk->vdev, VIRTIO_BLK_F_RO))
		set_disk_ro(disk, true);
	rvblk_read_geometry(vblk);
	rvblk_update_capacity(vblk, false);
}

static int rvblk_probe(struct revirt_device *vdev)
{
	struct revirt_blk_limits lim;
	struct rvblk *vblk;
	int index, err;

	index = ida_alloc_max(&rvblk_index_ida, (MINORMASK >> RVBLK_PART_BITS),
			      GFP_KERNEL);
	if (index < 0)
		return index;
	vblk = kzalloc(sizeof(*vblk), GFP_KERNEL);
	if (!vblk) {
		err = -ENOMEM;
		goto free_index;
	}
	vblk->vdev = vdev;
	vblk->index = index;
	mutex_init(&vblk->stop_lock);
	vblk->little_endian = revirt_is_little_endian(vdev);
	vdev->priv = vblk;

	err = rvblk_init_vqs(vblk);
	if (err)
		goto free_vblk;
	rvblk_limits(vblk, &lim);
	err = rvblk_init_tag_set(vblk);
	if (err)
		goto del_vqs;
	vblk->disk = revirt_blk_alloc_disk(&vblk->tag_set, &lim, vblk);
	if (IS_ERR(vblk->disk)) {
		err = PTR_ERR(vblk->disk);
		goto free_tag_set;
	}
	rvblk_init_disk(vblk);

	/* Adding the disk reads the partition table: the device must be live. */
	revirt_device_ready(vdev);
	err = device_add_disk(&vdev->dev, vblk->disk, rvblk_attr_groups);
	if (err)
		goto reset_device;
	return 0;

reset_device:
	rvblk_stop(vblk, BLK_STS_IOERR);
	put_disk(vblk->disk);
free_tag_set:
	blk_mq_free_tag_set(&vblk->tag_set);
del_vqs:
	if (!vblk->stopped)
		revirt_reset_device(vdev);
	revirt_del_vqs(vdev);
	kfree(vblk->vqs);
free_vblk:
	vdev->priv = NULL;
	kfree(vblk);
free_index:
	ida_free(&rvblk_index_ida, index);
	return err;
}

/* ---- reset while bound -------------------------------------------------- */

/* Delete the queues of a reset device whose buffers were all taken back. */
static void rvblk_del_vqs(struct rvblk *vblk)
{
	if (!vblk->vqs)
		return;
	revirt_del_vqs(vblk->vdev);
	kfree(vblk->vqs);
	vblk->vqs = NULL;
	vblk->nvqs = 0;
}

/* A device may come back from a reset with another size. */
static void rvblk_recheck_capacity(struct rvblk *vblk)
{
	unsigned int lbs = queue_logical_block_size(vblk->disk->queue);
	sector_t cap = round_down(rvblk_capacity(vblk), lbs >> SECTOR_SHIFT);

	if (cap != get_capacity(vblk->disk))
		rvblk_update_capacity(vblk, true);
}

/* Negotiate again and set up the queues the features now give. */
static int rvblk_restart(struct rvblk *vblk)
{
	int err;

	err = revirt_renegotiate(vblk->vdev);
	if (err)
		return err;
	err = rvblk_init_vqs(vblk);
	if (err) {
		revirt_add_status(vblk->vdev, VIRTIO_CONFIG_S_FAILED);
		return err;
	}
	rvblk_recheck_capacity(vblk);
	revirt_device_ready(vblk->vdev);
	return 0;
}

/*
 * Stop with the device reset: the requests the device did not complete
 * wait on the requeue list (they fail if the device did not confirm the
 * reset, which would leave it free to write into them), the queue stays
 * quiesced and the queues are deleted.  Returns the reset's error.
 */
static int rvblk_stop_reset(struct rvblk *vblk)
{
	int err;

	blk_mq_quiesce_queue(vblk->disk->queue);
	err = revirt_reset_device(vblk->vdev);
	rvblk_reclaim(vblk, err ? BLK_STS_IOERR : BLK_STS_OK);
	blk_mq_start_stopped_hw_queues(vblk->disk->queue, true);
	rvblk_del_vqs(vblk);
	return err;
}

/*
 * After rvblk_stop_reset() returned @err: set the device up again and let
 * the requeued requests go.  A device that does not come back leaves the
 * disk dead: the requeued requests and every new one fail with an I/O
 * error until a later reset succeeds.
 */
static int rvblk_start_again(struct rvblk *vblk, int err)
{
	struct revirt_device *vdev = vblk->vdev;
	struct request_queue *q = vblk->disk->queue;

	if (!err)
		err = rvblk_restart(vblk);
	if (err && !vblk->dead)
		dev_err(&vdev->dev, "%s: the device did not come back from a reset (%d): the disk is dead, I/O fails until a reset succeeds\n",
			vblk->disk->disk_name, err);
	else if (!err && vblk->dead)
		dev_info(&vdev->dev, "%s: the device is back\n",
			 vblk->disk->disk_name);
	vblk->dead = err != 0;
	vblk->stopped = false;
	blk_mq_unquiesce_queue(q);
	blk_mq_kick_requeue_list(q);
	/*
	 * Freezes the queue, so it drains first through the new queues
	 * (rvblk_hctx_vq() maps the old hardware queues onto them).
	 */
	if (!err && vblk->nvqs != vblk->tag_set.nr_hw_queues)
		blk_mq_update_nr_hw_queues(&vblk->tag_set, vblk->nvqs);
	return err;
}

/* The core's reinit operation, under the device lock. */
static int rvblk_reinit(struct revirt_device *vdev)
{
	struct rvblk *vblk = vdev->priv;

	return rvblk_start_again(vblk, rvblk_stop_reset(vblk));
}

/*
 * System sleep and function resets (under the device lock): the disk, its
 * open files and the requests in flight stay; the requests wait on the
 * requeue list until the restore.  A reset the device did not confirm
 * failed them already: nothing is left to undo, so this never fails.
 */
static int rvblk_freeze(struct revirt_device *vdev)
{
	rvblk_stop_reset(vdev->priv);
	return 0;
}

static int rvblk_restore(struct revirt_device *vdev)
{
	return rvblk_start_again(vdev->priv, 0);
}

/* ---- one queue reset alone ---------------------------------------------- */

static void rvblk_vq_block(struct rvblk_vq *bq, bool block)
{
	unsigned long flags;

	spin_lock_irqsave(&bq->lock, flags);
	bq->resetting = block;
	/* The caller starts the stopped hardware queues after unblocking. */
	if (!block)
		bq->stopped = false;
	spin_unlock_irqrestore(&bq->lock, flags);
}

static bool rvblk_vq_idle(struct rvblk_vq *bq)
{
	unsigned long flags;
	bool idle;

	spin_lock_irqsave(&bq->lock, flags);
	idle = revirt_vq_is_broken(bq->vq) ||
	       bq->vq->num_free == revirt_vq_get_vring_size(bq->vq);
	spin_unlock_irqrestore(&bq->lock, flags);
	return idle;
}

/*
 * A device completes nothing of a queue after its reset; requests it is
 * still working on would be done again.  Give it a bounded while first.
 */
static void rvblk_vq_drain(struct rvblk_vq *bq)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(RVBLK_DRAIN_MS);

	while (!rvblk_vq_idle(bq) && time_before(jiffies, deadline))
		usleep_range(200, 500);
}

/* Without indirect descriptors the largest request must fit the ring. */
static int rvblk_vq_size_ok(struct rvblk *vblk, unsigned int num)
{
	unsigned int need = queue_max_segments(vblk->disk->queue) + 2;

	if (!num || num >= need ||
	    revirt_has_feature(vblk->vdev, VIRTIO_RING_F_INDIRECT_DESC))
		return 0;
	dev_err(&vblk->vdev->dev, "%s: a queue of %u entries cannot take a request of %u descriptors without indirect descriptors\n",
		vblk->disk->disk_name, num, need);
	return -EINVAL;
}

/*
 * The core's reset_vq operation, under the device lock.  On an error other
 * than a refused size the queue stays blocked: the core resets the whole
 * device next, which takes its requests back.
 */
static int rvblk_reset_vq(struct revirt_device *vdev, unsigned int index,
			  unsigned int num)
{
	struct rvblk *vblk = vdev->priv;
	struct request_queue *q = vblk->disk->queue;
	struct rvblk_req *used, *left;
	struct rvblk_vq *bq;
	int err;

	if (vblk->dead || !vblk->vqs)
		return -ENODEV;
	if (index >= vblk->nvqs)
		return -EINVAL;
	bq = &vblk->vqs[index];
	if (!revirt_vq_can_reset(bq->vq))
		return -EOPNOTSUPP;
	err = rvblk_vq_size_ok(vblk, num);
	if (err)
		return err;

	rvblk_vq_block(bq, true);
	/* A queue whose request timed out gets no more time. */
	if (!READ_ONCE(bq->timed_out))
		rvblk_vq_drain(bq);
	err = revirt_vq_reset(bq->vq);
	if (err)
		return err;
	left = rvblk_vq_take_all(bq, &used);
	rvblk_end_list(used, BLK_STS_OK);
	rvblk_requeue_list(left);
	err = revirt_vq_enable(bq->vq, num);
	if (err && err != -EINVAL && err != -ENOMEM)
		return err;
	rvblk_vq_block(bq, false);
	blk_mq_start_stopped_hw_queues(q, true);
	blk_mq_kick_requeue_list(q);
	return err;
}

static void rvblk_remove(struct revirt_device *vdev)
{
	struct rvblk *vblk = vdev->priv;
	struct gendisk *disk = vblk->disk;
	bool failed;

	/* From here a request on a broken ring fails instead of waiting. */
	WRITE_ONCE(vblk->removing, true);
	/*
	 * Orders that against reading the rings: a request that found its
	 * ring broken and did not see removing stopped its hardware queue,
	 * and the broken ring makes the stop below start it again.
	 */
	smp_mb();
	failed = rvblk_device_failed(vblk);
	/*
	 * The core stopped config changes.  A failed device answers nothing:
	 * stop it first, so that del_gendisk() sees every request fail.
	 */
	if (failed) {
		dev_warn(&vdev->dev, "%s: the device failed; requests in flight end with an error\n",
			 disk->disk_name);
		rvblk_stop(vblk, BLK_STS_IOERR);
	}
	/* Unregister: dirty data is written, every request finishes. */
	del_gendisk(disk);
	/* Reset and reclaim (unless done): nothing is left on the rings. */
	rvblk_stop(vblk, BLK_STS_IOERR);
	rvblk_del_vqs(vblk);
	blk_mq_free_tag_set(&vblk->tag_set);
	vblk->vdev = NULL;
	vdev->priv = NULL;
	/* Frees vblk (rvblk_free_disk) once nobody holds the disk open. */
	put_disk(disk);
}

static const unsigned int rvblk_features[] = {
	VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_GEOMETRY,
	VIRTIO_BLK_F_RO, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH,
	VIRTIO_BLK_F_TOPOLOGY, VIRTIO_BLK_F_CONFIG_WCE, VIRTIO_BLK_F_MQ,
	VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES,
};

static const struct revirt_device_id rvblk_ids[] = {
	{ VIRTIO_ID_BLOCK, REVIRT_DEV_ANY_ID },
	{ }
};

static struct revirt_driver rvblk_driver = {
	.driver.name = KBUILD_MODNAME,
	.id_table = rvblk_ids,
	.feature_table = rvblk_features,
	.feature_table_size = ARRAY_SIZE(rvblk_features),
	.probe = rvblk_probe,
	.remove = rvblk_remove,
	.reinit = rvblk_reinit,
	.reset_vq = rvblk_reset_vq,
	.freeze = rvblk_freeze,
	.restore = rvblk_restore,
	.config_changed = rvblk_config_changed,
};

static int __init rvblk_init(void)
{
	int err;

	rvblk_major = register_blkdev(0, "rvd");
	if (rvblk_major < 0)
		return rvblk_major;
	err = revirt_register_driver(&rvblk_driver);
	if (err)
		unregister_blkdev(rvblk_major, "rvd");
	return err;
}

static void __exit rvblk_exit(void)
{
	revirt_unregister_driver(&rvblk_driver);
	unregister_blkdev(rvblk_major, "rvd");
	ida_destroy(&rvblk_index_ida);
}

module_init(rvblk_init);
module_exit(rvblk_exit);
REVIRT_MODULE_ALIAS(00000002);
MODULE_DESCRIPTION("revirt: virtio block device as the disk /dev/rvdX");
MODULE_LICENSE("GPL");
