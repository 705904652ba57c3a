// SPDX-License-Identifier: GPL-2.0-only
/*
 * revirt split virtqueues.
 *
 * Layout (virtio 1.x, 2.7): a descriptor table, the driver-written avail
 * ring and the device-written used ring, in one allocation: DMA-coherent
 * memory for a device that reaches memory through the DMA API
 * (VIRTIO_F_ACCESS_PLATFORM), plain pages whose physical address the
 * device is given otherwise.  Buffers are mapped likewise: with the DMA
 * API, or as their physical address with no mapping to undo.
 *
 * The device is not trusted.  Everything the ring needs to find, unmap and
 * free a buffer (addresses, lengths, flags, chain links) is kept in memory
 * the device cannot see; what the device writes (used index, used id and
 * length) is checked before use, and a lie breaks the queue with one error
 * line.  A broken queue runs no callbacks and accepts no buffers; its
 * buffers are taken back after the device is reset.
 */

#include <linux/dma-mapping.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/revirt_ring.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/error-injection.h>
#include <linux/virtio_byteorder.h>
#include <uapi/linux/virtio_ring.h>

/* What the ring remembers of one descriptor, out of the device's reach. */
struct revirt_desc_extra {
	dma_addr_t addr;
	u32 len;
	u16 flags;
	u16 next;
};

/* One buffer in flight, indexed by its head descriptor. */
struct revirt_desc_state {
	void *data;
	struct vring_desc *indir;	/* indirect table, or NULL */
	struct revirt_desc_extra *indir_extra;	/* NULL: nothing to unmap */
	u32 in_len;			/* bytes the device may write */
	u16 ndescs;			/* descriptors used in the main table */
	u16 indir_num;			/* entries in @indir */
};

/*
 * Indirect tables of up to RV_TABLE_SMALL entries are allocated at that
 * size and, once their buffer is used, kept for the next buffers instead
 * of a kfree() and a kmalloc() per buffer (most indirect buffers are a
 * header, some data and a status): as many as the ring has descriptors,
 * at most RV_TABLES_KEPT (32 KiB, half that with physical addresses), so
 * that a full queue recycles them.
 */
#define RV_TABLE_SMALL	4
#define RV_TABLES_KEPT	256

struct revirt_vring {
	struct revirt_virtqueue vq;
	struct vring vring;
	void *ring_mem;
	dma_addr_t ring_dma;
	size_t ring_bytes;
	unsigned int align;
	struct device *map_dev;		/* DMA API device, or NULL: physical */
	struct device *msg_dev;
	bool (*notify)(struct revirt_virtqueue *vq);

	bool little_endian;
	bool event_idx;
	bool indirect;
	bool weak_barriers;
	bool broken;

	u16 free_head;
	u16 avail_idx_shadow;
	u16 avail_flags_shadow;
	u16 last_used_idx;
	u32 num_added;			/* since the last kick, up to 65536 */
	u16 in_flight;			/* buffers (heads) on the ring */

	struct revirt_desc_state *state;
	struct revirt_desc_extra *extra;

	/* Small indirect tables kept for reuse; the queue owns them. */
	void **tables;
	unsigned int ntables;
	unsigned int max_tables;
};

#define to_rvring(_vq) container_of(_vq, struct revirt_vring, vq)

/*
 * The byte order of the ring fields: what the transport says, except that
 * on a little-endian CPU every ring is little endian (a legacy device uses
 * the guest's order, a version-1 device little endian), which the compiler
 * knows: there the conversions below cost nothing.
 */
static inline bool rv_le(const struct revirt_vring *vr)
{
	return virtio_legacy_is_little_endian() || vr->little_endian;
}

static inline __virtio16 rv_cpu16(const struct revirt_vring *vr, u16 val)
{
	return __cpu_to_virtio16(rv_le(vr), val);
}

static inline __virtio32 rv_cpu32(const struct revirt_vring *vr, u32 val)
{
	return __cpu_to_virtio32(rv_le(vr), val);
}

static inline __virtio64 rv_cpu64(const struct revirt_vring *vr, u64 val)
{
	return __cpu_to_virtio64(rv_le(vr), val);
}

static inline u16 rv_16(const struct revirt_vring *vr, __virtio16 val)
{
	return __virtio16_to_cpu(rv_le(vr), val);
}

static inline u32 rv_32(const struct revirt_vring *vr, __virtio32 val)
{
	return __virtio32_to_cpu(rv_le(vr), val);
}

/*
 * Barriers between ring accesses: SMP ones when the device is another CPU
 * (a hypervisor), mandatory ones when it may be real hardware.  Callers
 * say which accesses each one orders.
 */
static inline void rv_mb(const struct revirt_vring *vr)
{
	if (vr->weak_barriers)
		virt_mb(); /* see the caller */
	else
		mb(); /* see the caller */
}

static inline void rv_rmb(const struct revirt_vring *vr)
{
	if (vr->weak_barriers)
		virt_rmb(); /* see the caller */
	else
		dma_rmb(); /* see the caller */
}

static inline void rv_wmb(const struct revirt_vring *vr)
{
	if (vr->weak_barriers)
		virt_wmb(); /* see the caller */
	else
		dma_wmb(); /* see the caller */
}

static __printf(2, 3) void rv_break(struct revirt_vring *vr,
				     const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	if (vr->broken)
		return;
	WRITE_ONCE(vr->broken, true);
	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	dev_err(vr->msg_dev, "revirt: queue %s broken: %pV", vr->vq.name,
		&vaf);
	va_end(args);
}

/**
 * revirt_vring_dma_map - map one buffer of a virtqueue for the device
 * @dma_dev: device the buffer is mapped for with the DMA API, or NULL for
 *	a device that is given physical addresses (no mapping to undo)
 * @page: first page of the buffer
 * @offset: offset of the buffer in @page
 * @len: length in bytes
 * @dir: direction of the transfer
 *
 * Every buffer mapping of revirt goes through here, with the DMA API or
 * without, so that fault injection (fail_function) can make any of them
 * fail.
 *
 * Return: the address to give the device, or DMA_MAPPING_ERROR.
 */
noinline dma_addr_t revirt_vring_dma_map(struct device *dma_dev,
					 struct page *page,
					 unsigned long offset, size_t len,
					 enum dma_data_direction dir)
{
	dma_addr_t addr;

	if (!dma_dev)
		return page_to_phys(page) + offset;
	addr = dma_map_page(dma_dev, page, offset, len, dir);
	if (dma_mapping_error(dma_dev, addr))
		return DMA_MAPPING_ERROR;
	return addr;
}

ALLOW_ERROR_INJECTION(revirt_vring_dma_map, ERRNO);

/*
 * A failed mapping: DMA_MAPPING_ERROR, or any -errno fail_function was
 * told to return (its default is -EINVAL).  No device address lies in
 * the last MAX_ERRNO bytes of the space.
 */
static bool rv_map_failed(dma_addr_t addr)
{
	return addr >= (dma_addr_t)-MAX_ERRNO;
}

/* Undo a mapping; a physical address (no DMA API) has nothing to undo. */
static void rv_unmap(const struct revirt_vring *vr,
		     const struct revirt_desc_extra *ex)
{
	if (!vr->map_dev)
		return;
	dma_unmap_page(vr->map_dev, ex->addr, ex->len,
		       (ex->flags & VRING_DESC_F_WRITE) ?
		       DMA_FROM_DEVICE : DMA_TO_DEVICE);
}

/* Write a descriptor, and our private copy of it unless @ex is NULL. */
static __always_inline void rv_set_desc(const struct revirt_vring *vr,
					struct vring_desc *desc,
					struct revirt_desc_extra *ex,
					dma_addr_t addr, u32 len, u16 flags,
					u16 next)
{
	desc->addr = rv_cpu64(vr, addr);
	desc->len = rv_cpu32(vr, len);
	desc->flags = rv_cpu16(vr, flags);
	desc->next = rv_cpu16(vr, next);
	if (!ex)
		return;
	ex->addr = addr;
	ex->len = len;
	ex->flags = flags;
	ex->next = next;
}

/* The descriptor after @i: the free list, or the next entry of a table. */
static __always_inline u16 rv_next(const struct revirt_desc_extra *extra,
				   u16 i, bool table)
{
	return table ? i + 1 : extra[i].next;
}

/*
 * Map the scatterlists into descriptors starting at @first, linked
 * through the free list of the main table, or one after the other in an
 * indirect @table.  On failure, everything mapped here is unmapped again.
 * Inlined, so that each caller gets the linking it needs for free.  An
 * indirect table may come without private copies (!@priv, @extra NULL)
 * when there is nothing to unmap.
 */
static __always_inline int rv_map_sgs(struct revirt_vring *vr,
				      struct vring_desc *desc,
				      struct revirt_desc_extra *extra,
				      bool table, bool priv, u16 first,
				      struct scatterlist *sgs[],
				      unsigned int out_sgs,
				      unsigned int in_sgs, u32 *in_len,
				      u16 *last)
{
	enum dma_data_direction dir = DMA_TO_DEVICE;
	u16 flags = VRING_DESC_F_NEXT;
	u16 i = first, prev = first;
	unsigned int n;
	u32 in_bytes = 0;

	for (n = 0; n < out_sgs + in_sgs; n++) {
		struct scatterlist *sg;

		if (n == out_sgs) {
			dir = DMA_FROM_DEVICE;
			flags |= VRING_DESC_F_WRITE;
		}
		for (sg = sgs[n]; sg; sg = sg_next(sg)) {
			u16 next = rv_next(extra, i, table);
			dma_addr_t addr;

			addr = revirt_vring_dma_map(vr->map_dev, sg_page(sg),
						    sg->offset, sg->length, dir);
			if (rv_map_failed(addr))
				goto unmap;
			rv_set_desc(vr, &desc[i], priv ? &extra[i] : NULL,
				    addr, sg->length, flags, next);
			if (dir == DMA_FROM_DEVICE)
				in_bytes += sg->length;
			prev = i;
			i = next;
		}
	}
	/* The last descriptor ends the chain. */
	flags &= ~VRING_DESC_F_NEXT;
	if (priv)
		extra[prev].flags = flags;
	desc[prev].flags = rv_cpu16(vr, flags);
	*in_len = in_bytes;
	*last = prev;
	return 0;

unmap:
	/* Descriptor @i failed; those before it in the chain are mapped. */
	for (; priv && first != i; first = rv_next(extra, first, table))
		rv_unmap(vr, &extra[first]);
	return -ENOMEM;
}

/*
 * One entry of an indirect table, as the device sees it and as we keep it
 * to unmap it; with physical addresses only the device's part.
 */
static size_t rv_table_entry(const struct revirt_vring *vr)
{
	return sizeof(struct vring_desc) +
	       (vr->map_dev ? sizeof(struct revirt_desc_extra) : 0);
}

static struct vring_desc *rv_table_get(struct revirt_vring *vr,
				       unsigned int total, gfp_t gfp)
{
	if (total > RV_TABLE_SMALL)
		return kmalloc_array(total, rv_table_entry(vr), gfp);
	if (vr->ntables)
		return vr->tables[--vr->ntables];
	return kmalloc_array(RV_TABLE_SMALL, rv_table_entry(vr), gfp);
}

/* Keep a small table of a used buffer for the next one, or free it. */
static void rv_table_put(struct revirt_vring *vr, struct vring_desc *table,
			 unsigned int total)
{
	if (total <= RV_TABLE_SMALL && vr->ntables < vr->max_tables)
		vr->tables[vr->ntables++] = table;
	else
		kfree(table);
}

static int rv_add_indirect(struct revirt_vring *vr, struct scatterlist *sgs[],
			   unsigned int out_sgs, unsigned int in_sgs,
			   unsigned int total, u16 head, gfp_t gfp)
{
	struct revirt_desc_state *st = &vr->state[head];
	struct revirt_desc_extra *iextra;
	struct vring_desc *indir;
	dma_addr_t addr;
	u16 last;
	unsigned int i;
	int err;

	/* Device-visible table and private copies in one allocation. */
	indir = rv_table_get(vr, total, gfp);
	if (!indir)
		return -EAGAIN;		/* the caller falls back to direct */

	/*
	 * The private copy of the entries serves to unmap them; physical
	 * addresses (no DMA API) have nothing to unmap, so none is kept.
	 * Two calls, so that the inlined copy without it stores nothing.
	 */
	if (vr->map_dev) {
		iextra = (struct revirt_desc_extra *)&indir[total];
		err = rv_map_sgs(vr, indir, iextra, true, true, 0, sgs,
				 out_sgs, in_sgs, &st->in_len, &last);
	} else {
		iextra = NULL;
		err = rv_map_sgs(vr, indir, NULL, true, false, 0, sgs,
				 out_sgs, in_sgs, &st->in_len, &last);
	}
	if (err)
		goto free;

	addr = revirt_vring_dma_map(vr->map_dev, virt_to_page(indir),
				    offset_in_page(indir),
				    total * sizeof(*indir), DMA_TO_DEVICE);
	if (rv_map_failed(addr)) {
		err = -ENOMEM;
		goto unmap;
	}
	rv_set_desc(vr, &vr->vring.desc[head], &vr->extra[head], addr,
		    total * sizeof(*indir), VRING_DESC_F_INDIRECT,
		    vr->extra[head].next);
	st->indir = indir;
	st->indir_extra = iextra;
	st->indir_num = total;
	st->ndescs = 1;
	vr->free_head = vr->extra[head].next;
	return 0;

unmap:
	for (i = 0; iextra && i < total; i++)
		rv_unmap(vr, &iextra[i]);
free:
	kfree(indir);
	return err;
}

static int rv_add_direct(struct revirt_vring *vr, struct scatterlist *sgs[],
			 unsigned int out_sgs, unsigned int in_sgs,
			 unsigned int total, u16 head)
{
	struct revirt_desc_state *st = &vr->state[head];
	u16 last;
	int err;

	err = rv_map_sgs(vr, vr->vring.desc, vr->extra, false, true, head,
			 sgs, out_sgs, in_sgs, &st->in_len, &last);
	if (err)
		return err;
	/* st->indir is NULL: a free head's state is cleared by rv_detach(). */
	st->ndescs = total;
	vr->free_head = vr->extra[last].next;
	return 0;
}

static unsigned int rv_count_sgs(struct scatterlist *sgs[], unsigned int n)
{
	struct scatterlist *sg;
	unsigned int i, total = 0;

	for (i = 0; i < n; i++)
		for (sg = sgs[i]; sg; sg = sg_next(sg))
			total++;
	return total;
}

static void rv_publish(struct revirt_vring *vr, u16 head)
{
	u16 slot = vr->avail_idx_shadow & (vr->vring.num - 1);

	vr->vring.avail->ring[slot] = rv_cpu16(vr, head);
	/* The device must see the descriptors before the new index. */
	rv_wmb(vr);
	vr->avail_idx_shadow++;
	vr->vring.avail->idx = rv_cpu16(vr, vr->avail_idx_shadow);
	vr->num_added += vr->num_added <= U16_MAX;
	vr->in_flight++;
}

/**
 * revirt_vq_add_sgs - offer a buffer made of scatterlists to the device
 * @vq: the virtqueue
 * @sgs: @out_sgs device-readable scatterlists, then @in_sgs writable ones
 * @out_sgs: number of device-readable scatterlists
 * @in_sgs: number of device-writable scatterlists
 * @data: token returned by revirt_vq_get_buf(); must not be NULL
 * @gfp: allocation flags for an indirect table
 *
 * Return: 0, -ENOSPC if the ring is full, -ENOMEM if mapping or
 * allocation failed, -EIO if the queue is broken, -EINVAL on bad input.
 */
int revirt_vq_add_sgs(struct revirt_virtqueue *vq, struct scatterlist *sgs[],
		      unsigned int out_sgs, unsigned int in_sgs,
		      void *data, gfp_t gfp)
{
	struct revirt_vring *vr = to_rvring(vq);
	struct revirt_desc_state *st;
	unsigned int total;
	u16 head;
	int err;

	if (unlikely(vr->broken))
		return -EIO;
	total = rv_count_sgs(sgs, out_sgs + in_sgs);
	/* A chain, indirect or not, may not be longer than the ring. */
	if (WARN_ON_ONCE(!data || !total || total > vr->vring.num))
		return -EINVAL;
	if (!vq->num_free)
		return -ENOSPC;

	head = vr->free_head;
	err = -ENOSPC;
	if (vr->indirect && total > 1)
		err = rv_add_indirect(vr, sgs, out_sgs, in_sgs, total, head,
				      gfp);
	/*
	 * Without an indirect table (not negotiated, one entry, or no memory
	 * for it), fall back to the main ring; a mapping failure is final.
	 */
	if (err == -ENOSPC || err == -EAGAIN) {
		if (total <= vq->num_free)
			err = rv_add_direct(vr, sgs, out_sgs, in_sgs, total,
					    head);
		else if (err == -EAGAIN)
			err = -ENOMEM;
	}
	if (err)
		return err;

	st = &vr->state[head];
	st->data = data;
	vq->num_free -= st->ndescs;
	rv_publish(vr, head);
	return 0;
}
EXPORT_SYMBOL_GPL(revirt_vq_add_sgs);

/* Entry @num (from 1) of a scatterlist, across chain links; NULL if short. */
static struct scatterlist *rv_sg_nth(struct scatterlist *sg, unsigned int num)
{
	while (sg && --num)
		sg = sg_next(sg);
	return sg;
}

/**
 * revirt_vq_add_outbuf - offer a device-readable buffer
 * @vq: the virtqueue
 * @sg: scatterlist of @num entries
 * @num: entries in @sg
 * @data: token returned by revirt_vq_get_buf()
 * @gfp: allocation flags
 *
 * The @num-th entry of @sg is marked as the end of the list.
 *
 * Return: as revirt_vq_add_sgs().
 */
int revirt_vq_add_outbuf(struct revirt_virtqueue *vq, struct scatterlist *sg,
			 unsigned int num, void *data, gfp_t gfp)
{
	struct scatterlist *last = num ? rv_sg_nth(sg, num) : NULL;

	if (WARN_ON_ONCE(!last))
		return -EINVAL;
	sg_mark_end(last);
	return revirt_vq_add_sgs(vq, &sg, 1, 0, data, gfp);
}
EXPORT_SYMBOL_GPL(revirt_vq_add_outbuf);

/**
 * revirt_vq_add_inbuf - offer a device-writable buffer
 * @vq: the virtqueue
 * @sg: scatterlist of @num entries
 * @num: entries in @sg
 * @data: token returned by revirt_vq_get_buf()
 * @gfp: allocation flags
 *
 * The @num-th entry of @sg is marked as the end of the list.
 *
 * Return: as revirt_vq_add_sgs().
 */
int revirt_vq_add_inbuf(struct revirt_virtqueue *vq, struct scatterlist *sg,
			unsigned int num, void *data, gfp_t gfp)
{
	struct scatterlist *last = num ? rv_sg_nth(sg, num) : NULL;

	if (WARN_ON_ONCE(!last))
		return -EINVAL;
	sg_mark_end(last);
	return revirt_vq_add_sgs(vq, &sg, 0, 1, data, gfp);
}
EXPORT_SYMBOL_GPL(revirt_vq_add_inbuf);

/**
 * revirt_vq_inject_bad_head - test support: publish a head out of range
 * @vq: the virtqueue
 *
 * Makes the avail ring offer descriptor index "ring size", which no device
 * can use: a device must call the ring malformed (QEMU's devices raise
 * DEVICE_NEEDS_RESET).  Only for the test knobs of drivers, to show the
 * recovery against a real device model; the entry is not a buffer of the
 * ring's and needs no reclaiming after the reset that must follow.
 */
void revirt_vq_inject_bad_head(struct revirt_virtqueue *vq)
{
	struct revirt_vring *vr = to_rvring(vq);
	u16 slot = vr->avail_idx_shadow & (vr->vring.num - 1);

	vr->vring.avail->ring[slot] = rv_cpu16(vr, vr->vring.num);
	/* The entry must be visible before the index that publishes it. */
	rv_wmb(vr);
	vr->avail_idx_shadow++;
	vr->vring.avail->idx = rv_cpu16(vr, vr->avail_idx_shadow);
	vr->num_added++;
}
EXPORT_SYMBOL_GPL(revirt_vq_inject_bad_head);

/**
 * revirt_vq_kick_prepare - decide whether the device needs a notification
 * @vq: the virtqueue
 *
 * Return: true if revirt_vq_notify() must be called for the buffers added
 * since the last kick.
 */
bool revirt_vq_kick_prepare(struct revirt_virtqueue *vq)
{
	struct revirt_vring *vr = to_rvring(vq);
	u16 new_idx, old_idx;
	u32 added;

	/* The new avail index must be visible before we read the device's wish. */
	rv_mb(vr);
	new_idx = vr->avail_idx_shadow;
	added = vr->num_added;
	old_idx = new_idx - added;
	vr->num_added = 0;

	/* After 65536 adds every avail_event value has been passed. */
	if (vr->event_idx)
		return added > U16_MAX ||
		       vring_need_event(rv_16(vr, vring_avail_event(&vr->vring)),
					new_idx, old_idx);
	return !(vr->vring.used->flags &
		 rv_cpu16(vr, VRING_USED_F_NO_NOTIFY));
}
EXPORT_SYMBOL_GPL(revirt_vq_kick_prepare);

/**
 * revirt_vq_notify - notify the device of new buffers
 * @vq: the virtqueue
 *
 * Return: false if the device is gone; the queue is then broken.
 */
bool revirt_vq_notify(struct revirt_virtqueue *vq)
{
	struct revirt_vring *vr = to_rvring(vq);

	if (unlikely(vr->broken))
		return false;
	if (!vr->notify(vq)) {
		WRITE_ONCE(vr->broken, true);
		return false;
	}
	return true;
}
EXPORT_SYMBOL_GPL(revirt_vq_notify);

/**
 * revirt_vq_kick - notify the device if it asked for it
 * @vq: the virtqueue
 *
 * Return: false if the queue is broken.
 */
bool revirt_vq_kick(struct revirt_virtqueue *vq)
{
	if (revirt_vq_kick_prepare(vq))
		return revirt_vq_notify(vq);
	return !to_rvring(vq)->broken;
}
EXPORT_SYMBOL_GPL(revirt_vq_kick);

static __always_inline void rv_detach(struct revirt_vring *vr, u16 head)
{
	struct revirt_desc_state *st = &vr->state[head];
	u16 i = head, n = st->ndescs;

	/* A chain has at least one descriptor; @i ends on its last. */
	for (;;) {
		rv_unmap(vr, &vr->extra[i]);
		if (!--n)
			break;
		i = vr->extra[i].next;
	}
	vr->extra[i].next = vr->free_head;
	vr->free_head = head;
	vr->vq.num_free += st->ndescs;

	if (st->indir) {
		for (n = 0; vr->map_dev && n < st->indir_num; n++)
			rv_unmap(vr, &st->indir_extra[n]);
		rv_table_put(vr, st->indir, st->indir_num);
	}
	st->data = NULL;
	st->indir = NULL;
	st->indir_extra = NULL;
	vr->in_flight--;
}

static bool rv_more_used(const struct revirt_vring *vr)
{
	return vr->last_used_idx !=
	       rv_16(vr, READ_ONCE(vr->vring.used->idx));
}

/* Check the device's claim about the next used entry; false breaks. */
static bool rv_used_entry_ok(struct revirt_vring *vr, u16 used_idx, u32 id,
			     u32 len)
{
	u16 pending = used_idx - vr->last_used_idx;

	if (pending > vr->in_flight) {
		rv_break(vr, "used index moved by %u with %u buffers in flight\n",
			 pending, vr->in_flight);
		return false;
	}
	if (id >= vr->vring.num) {
		rv_break(vr, "used id %u out of range (ring size %u)\n",
			 id, vr->vring.num);
		return false;
	}
	if (!vr->state[id].data) {
		rv_break(vr, "used id %u not in flight\n", id);
		return false;
	}
	if (len > vr->state[id].in_len) {
		rv_break(vr, "used length %u beyond the %u writable bytes\n",
			 len, vr->state[id].in_len);
		return false;
	}
	return true;
}

/**
 * revirt_vq_get_buf - take back a buffer the device has used
 * @vq: the virtqueue
 * @len: set to the number of bytes the device wrote
 *
 * Return: the @data token given when the buffer was added, or NULL if no
 * buffer is used or the queue is broken.
 */
void *revirt_vq_get_buf(struct revirt_virtqueue *vq, unsigned int *len)
{
	struct revirt_vring *vr = to_rvring(vq);
	struct vring_used_elem *elem;
	u16 used_idx;
	u32 id, used_len;
	void *data;

	if (unlikely(vr->broken))
		return NULL;
	used_idx = rv_16(vr, READ_ONCE(vr->vring.used->idx));
	if (used_idx == vr->last_used_idx)
		return NULL;
	/* Read the entry only after the index that published it. */
	rv_rmb(vr);

	elem = &vr->vring.used->ring[vr->last_used_idx & (vr->vring.num - 1)];
	id = rv_32(vr, READ_ONCE(elem->id));
	used_len = rv_32(vr, READ_ONCE(elem->len));
	if (!rv_used_entry_ok(vr, used_idx, id, used_len))
		return NULL;

	data = vr->state[id].data;
	rv_detach(vr, id);
	vr->last_used_idx++;
	*len = used_len;

	/* With event index, ask for the next interrupt after this entry. */
	if (vr->event_idx &&
	    !(vr->avail_flags_shadow & VRING_AVAIL_F_NO_INTERRUPT)) {
		vring_used_event(&vr->vring) = rv_cpu16(vr, vr->last_used_idx);
		rv_mb(vr);
	}
	return data;
}
EXPORT_SYMBOL_GPL(revirt_vq_get_buf);

/**
 * revirt_vq_disable_cb - ask the device not to interrupt for used buffers
 * @vq: the virtqueue
 *
 * A hint only: callbacks may still run after it.
 */
void revirt_vq_disable_cb(struct revirt_virtqueue *vq)
{
	struct revirt_vring *vr = to_rvring(vq);

	if (vr->avail_flags_shadow & VRING_AVAIL_F_NO_INTERRUPT)
		return;
	vr->avail_flags_shadow |= VRING_AVAIL_F_NO_INTERRUPT;
	/* With event index the used_event is simply not advanced. */
	if (!vr->event_idx)
		vr->vring.avail->flags = rv_cpu16(vr, vr->avail_flags_shadow);
}
EXPORT_SYMBOL_GPL(revirt_vq_disable_cb);

/**
 * revirt_vq_enable_cb - ask for interrupts again, and check for a race
 * @vq: the virtqueue
 *
 * Return: false if buffers were used meanwhile: the caller must process
 * them (and may disable callbacks again), true otherwise.  A broken queue
 * gives no buffer back, so it always returns true there: a caller that
 * loops until it gets true must not spin on a device that lied.
 */
bool revirt_vq_enable_cb(struct revirt_virtqueue *vq)
{
	struct revirt_vring *vr = to_rvring(vq);

	if (vr->avail_flags_shadow & VRING_AVAIL_F_NO_INTERRUPT) {
		vr->avail_flags_shadow &= ~VRING_AVAIL_F_NO_INTERRUPT;
		if (!vr->event_idx)
			vr->vring.avail->flags =
				rv_cpu16(vr, vr->avail_flags_shadow);
	}
	vring_used_event(&vr->vring) = rv_cpu16(vr, vr->last_used_idx);
	/* Publish the wish before looking at the used index again. */
	rv_mb(vr);
	return READ_ONCE(vr->broken) || !rv_more_used(vr);
}
EXPORT_SYMBOL_GPL(revirt_vq_enable_cb);

/**
 * revirt_vq_detach_unused_buf - take back a buffer the device never used
 * @vq: the virtqueue
 *
 * Only valid after the device was reset: the device must not use the
 * ring any more.  Detach every buffer before the queue is reused or freed.
 *
 * Return: the @data token of one buffer still on the ring, or NULL.
 */
void *revirt_vq_detach_unused_buf(struct revirt_virtqueue *vq)
{
	struct revirt_vring *vr = to_rvring(vq);
	unsigned int i;
	void *data;

	for (i = 0; i < vr->vring.num; i++) {
		data = vr->state[i].data;
		if (!data)
			continue;
		rv_detach(vr, i);
		/* Keep the avail ring consistent should the queue be reused. */
		vr->avail_idx_shadow--;
		vr->vring.avail->idx = rv_cpu16(vr, vr->avail_idx_shadow);
		return data;
	}
	return NULL;
}
EXPORT_SYMBOL_GPL(revirt_vq_detach_unused_buf);

/**
 * revirt_vq_is_broken - tell whether the queue stopped working
 * @vq: the virtqueue
 *
 * Return: true after a device error or a failed notification.
 */
bool revirt_vq_is_broken(const struct revirt_virtqueue *vq)
{
	return READ_ONCE(to_rvring(vq)->broken);
}
EXPORT_SYMBOL_GPL(revirt_vq_is_broken);

/**
 * revirt_vq_mark_broken - stop a queue whose device is gone or in error
 * @vq: the virtqueue
 *
 * New buffers fail with -EIO and callbacks stop; the buffers on the ring
 * are taken back with revirt_vq_detach_unused_buf() after a reset.
 */
void revirt_vq_mark_broken(struct revirt_virtqueue *vq)
{
	WRITE_ONCE(to_rvring(vq)->broken, true);
}
EXPORT_SYMBOL_GPL(revirt_vq_mark_broken);

/**
 * revirt_vq_get_vring_size - number of descriptors of the ring
 * @vq: the virtqueue
 *
 * Return: the ring size.
 */
unsigned int revirt_vq_get_vring_size(const struct revirt_virtqueue *vq)
{
	return to_rvring(vq)->vring.num;
}
EXPORT_SYMBOL_GPL(revirt_vq_get_vring_size);

/**
 * revirt_vring_interrupt - run the callback of a queue with used buffers
 * @irq: interrupt number (unused)
 * @vq: the virtqueue, as a void pointer for request_irq()
 *
 * Return: IRQ_NONE if the queue has nothing used, IRQ_HANDLED otherwise.
 */
irqreturn_t revirt_vring_interrupt(int irq, void *vq)
{
	struct revirt_vring *vr = to_rvring((struct revirt_virtqueue *)vq);

	if (!rv_more_used(vr))
		return IRQ_NONE;
	if (unlikely(READ_ONCE(vr->broken)))
		return IRQ_HANDLED;
	if (vr->vq.callback)
		vr->vq.callback(&vr->vq);
	return IRQ_HANDLED;
}
EXPORT_SYMBOL_GPL(revirt_vring_interrupt);

static int rv_alloc_ring(struct revirt_vring *vr, unsigned int num,
			 unsigned int align)
{
	vr->ring_bytes = PAGE_ALIGN(vring_size(num, align));
	if (vr->map_dev) {
		vr->ring_mem = dma_alloc_coherent(vr->map_dev, vr->ring_bytes,
						  &vr->ring_dma, GFP_KERNEL);
	} else {
		/* Physically contiguous, as the device sees one range. */
		vr->ring_mem = alloc_pages_exact(vr->ring_bytes,
						 GFP_KERNEL | __GFP_ZERO);
		if (vr->ring_mem)
			vr->ring_dma = virt_to_phys(vr->ring_mem);
	}
	if (!vr->ring_mem)
		return -ENOMEM;
	vring_init(&vr->vring, num, vr->ring_mem, align);
	return 0;
}

static void rv_free_ring(struct revirt_vring *vr)
{
	if (vr->map_dev)
		dma_free_coherent(vr->map_dev, vr->ring_bytes, vr->ring_mem,
				  vr->ring_dma);
	else
		free_pages_exact(vr->ring_mem, vr->ring_bytes);
}

/* The used ring holds 32-bit fields: it is at least 4-byte aligned. */
static bool rv_size_ok(unsigned int num)
{
	return num && num <= 32768 && is_power_of_2(num);
}

/* What the ring keeps per descriptor and the ring memory, at @num entries. */
static int rv_alloc_layout(struct revirt_vring *vr, unsigned int num)
{
	int err = -ENOMEM;

	vr->state = kcalloc(num, sizeof(*vr->state), GFP_KERNEL);
	vr->extra = kcalloc(num, sizeof(*vr->extra), GFP_KERNEL);
	if (!vr->state || !vr->extra)
		goto free_arrays;
	if (vr->indirect) {
		vr->max_tables = min_t(unsigned int, num, RV_TABLES_KEPT);
		vr->tables = kcalloc(vr->max_tables, sizeof(*vr->tables),
				     GFP_KERNEL);
		if (!vr->tables)
			goto free_arrays;
	}
	err = rv_alloc_ring(vr, num, vr->align);
	if (err)
		goto free_arrays;
	return 0;

free_arrays:
	kfree(vr->tables);
	kfree(vr->extra);
	kfree(vr->state);
	vr->tables = NULL;
	vr->extra = NULL;
	vr->state = NULL;
	return err;
}

static void rv_free_layout(struct revirt_vring *vr)
{
	while (vr->ntables)
		kfree(vr->tables[--vr->ntables]);
	kfree(vr->tables);
	rv_free_ring(vr);
	kfree(vr->extra);
	kfree(vr->state);
}

/*
 * An empty ring, as a device fresh from a reset expects it: indexes at 0,
 * every descriptor free; the driver's wish for interrupts is kept.
 */
static void rv_reset_state(struct revirt_vring *vr)
{
	unsigned int i, num = vr->vring.num;

	memset(vr->ring_mem, 0, vr->ring_bytes);
	memset(vr->state, 0, num * sizeof(*vr->state));
	for (i = 0; i < num; i++)
		vr->extra[i].next = i + 1;
	vr->free_head = 0;
	vr->avail_idx_shadow = 0;
	vr->last_used_idx = 0;
	vr->num_added = 0;
	vr->in_flight = 0;
	vr->vq.num_free = num;
	if (!vr->event_idx)
		vr->vring.avail->flags = rv_cpu16(vr, vr->avail_flags_shadow);
	WRITE_ONCE(vr->broken, false);
}

/**
 * revirt_vring_create - allocate a split virtqueue for a transport
 * @cfg: ring layout and device properties
 * @vdev: device the queue belongs to
 * @callback: driver callback for used buffers, or NULL
 * @name: name for messages
 *
 * Return: the queue, or an ERR_PTR().
 */
struct revirt_virtqueue *
revirt_vring_create(const struct revirt_vring_config *cfg,
		    struct revirt_device *vdev,
		    void (*callback)(struct revirt_virtqueue *vq),
		    const char *name)
{
	struct revirt_vring *vr;
	int err;

	if (!rv_size_ok(cfg->num) || !is_power_of_2(cfg->align) ||
	    cfg->align < 4) {
		dev_err(cfg->msg_dev, "revirt: queue %s: invalid size %u or alignment %u\n",
			name, cfg->num, cfg->align);
		return ERR_PTR(-EINVAL);
	}

	vr = kzalloc(sizeof(*vr), GFP_KERNEL);
	if (!vr)
		return ERR_PTR(-ENOMEM);
	vr->map_dev = cfg->use_dma_api ? cfg->dma_dev : NULL;
	vr->msg_dev = cfg->msg_dev;
	vr->align = cfg->align;
	vr->indirect = cfg->indirect;
	err = rv_alloc_layout(vr, cfg->num);
	if (err) {
		kfree(vr);
		return ERR_PTR(err);
	}

	vr->little_endian = cfg->little_endian;
	vr->event_idx = cfg->event_idx;
	vr->weak_barriers = cfg->weak_barriers;
	vr->notify = cfg->notify;
	vr->vq.callback = callback;
	vr->vq.name = name;
	vr->vq.vdev = vdev;
	vr->vq.index = cfg->index;
	INIT_LIST_HEAD(&vr->vq.list);
	/* No interrupts wanted until the driver enables them, if no callback. */
	if (!callback)
		vr->avail_flags_shadow = VRING_AVAIL_F_NO_INTERRUPT;
	rv_reset_state(vr);
	return &vr->vq;
}
EXPORT_SYMBOL_GPL(revirt_vring_create);

/**
 * revirt_vring_del - free a virtqueue
 * @vq: the virtqueue; the device must be reset and every buffer taken back
 *
 * Buffers still on the ring are unmapped and dropped with a warning: their
 * owner forgot to reclaim them.
 */
void revirt_vring_del(struct revirt_virtqueue *vq)
{
	struct revirt_vring *vr = to_rvring(vq);

	if (vr->in_flight) {
		dev_warn(vr->msg_dev,
			 "revirt: queue %s freed with %u buffers not reclaimed\n",
			 vq->name, vr->in_flight);
		while (revirt_vq_detach_unused_buf(vq))
			;
	}
	rv_free_layout(vr);
	kfree(vr);
}
EXPORT_SYMBOL_GPL(revirt_vring_del);

/**
 * revirt_vring_reinit - empty a queue that was reset alone, maybe resized
 * @vq: the virtqueue; the device reset it and every buffer was taken back
 * @num: new ring size, a power of two up to 32768; 0 keeps the size
 *
 * For a transport's per-queue reset (VIRTIO_F_RING_RESET): the ring starts
 * over at index 0, as the device does after the queue reset, in the same
 * memory or, for another size, in new memory (the transport gives the
 * device the new addresses).  Buffers still on the ring are dropped with
 * a warning, as in revirt_vring_del().
 *
 * Return: 0, -EINVAL for an invalid size, or -ENOMEM; on error the ring
 * keeps its size and memory, emptied.
 */
int revirt_vring_reinit(struct revirt_virtqueue *vq, unsigned int num)
{
	struct revirt_vring *vr = to_rvring(vq);
	struct revirt_vring old;
	int err = 0;

	if (vr->in_flight) {
		dev_warn(vr->msg_dev,
			 "revirt: queue %s reset with %u buffers not reclaimed\n",
			 vq->name, vr->in_flight);
		while (revirt_vq_detach_unused_buf(vq))
			;
	}
	if (num && num != vr->vring.num) {
		if (!rv_size_ok(num)) {
			err = -EINVAL;
			goto reset;
		}
		old = *vr;
		vr->ntables = 0;
		err = rv_alloc_layout(vr, num);
		if (err) {
			*vr = old;
			goto reset;
		}
		rv_free_layout(&old);
	}
reset:
	rv_reset_state(vr);
	return err;
}
EXPORT_SYMBOL_GPL(revirt_vring_reinit);

/**
 * revirt_vring_desc_dma - bus address of the descriptor table
 * @vq: the virtqueue
 *
 * Return: the DMA address to give the device.
 */
dma_addr_t revirt_vring_desc_dma(const struct revirt_virtqueue *vq)
{
	return to_rvring(vq)->ring_dma;
}
EXPORT_SYMBOL_GPL(revirt_vring_desc_dma);

/**
 * revirt_vring_avail_dma - bus address of the avail ring
 * @vq: the virtqueue
 *
 * Return: the DMA address to give the device.
 */
dma_addr_t revirt_vring_avail_dma(const struct revirt_virtqueue *vq)
{
	const struct revirt_vring *vr = to_rvring(vq);

	return vr->ring_dma + ((void *)vr->vring.avail - vr->ring_mem);
}
EXPORT_SYMBOL_GPL(revirt_vring_avail_dma);

/**
 * revirt_vring_used_dma - bus address of the used ring
 * @vq: the virtqueue
 *
 * Return: the DMA address to give the device.
 */
dma_addr_t revirt_vring_used_dma(const struct revirt_virtqueue *vq)
{
	const struct revirt_vring *vr = to_rvring(vq);

	return vr->ring_dma + ((void *)vr->vring.used - vr->ring_mem);
}
EXPORT_SYMBOL_GPL(revirt_vring_used_dma);
