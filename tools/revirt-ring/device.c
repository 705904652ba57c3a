// SPDX-License-Identifier: GPL-2.0-only
/*
 * A simulated virtio device for revirt's split virtqueue; see device.h.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/virtio_byteorder.h>
#include "device.h"
#include "shim.h"

static u16 d16(const struct sim_dev *d, __virtio16 v)
{
	return __virtio16_to_cpu(d->le, v);
}

static u32 d32(const struct sim_dev *d, __virtio32 v)
{
	return __virtio32_to_cpu(d->le, v);
}

static u64 d64(const struct sim_dev *d, __virtio64 v)
{
	return __virtio64_to_cpu(d->le, v);
}

static __virtio16 c16(const struct sim_dev *d, u16 v)
{
	return __cpu_to_virtio16(d->le, v);
}

static __virtio32 c32(const struct sim_dev *d, u32 v)
{
	return __cpu_to_virtio32(d->le, v);
}

static int dev_fail(struct sim_dev *d, const char *fmt, ...) __printf(2, 3);
static int dev_fail(struct sim_dev *d, const char *fmt, ...)
{
	char msg[sizeof(d->error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!d->errors++)
		snprintf(d->error, sizeof(d->error), "%s", msg);
	fprintf(stderr, "# device: %s\n", msg);
	return -1;
}

int sim_dev_init(struct sim_dev *d, struct revirt_virtqueue *vq,
		 const struct revirt_vring_config *cfg)
{
	struct vring expect;
	void *desc;

	memset(d, 0, sizeof(*d));
	d->vq = vq;
	d->num = cfg->num;
	d->le = cfg->little_endian;
	d->event_idx = cfg->event_idx;
	d->indirect = cfg->indirect;
	d->phys = !cfg->use_dma_api;
	d->write_limit = ~0U;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);

	/* The bus addresses are the ring's virtual addresses in the shim. */
	desc = (void *)(uintptr_t)revirt_vring_desc_dma(vq);
	d->vr.num = cfg->num;
	d->vr.desc = desc;
	d->vr.avail = (void *)(uintptr_t)revirt_vring_avail_dma(vq);
	d->vr.used = (void *)(uintptr_t)revirt_vring_used_dma(vq);
	vring_init(&expect, cfg->num, desc, cfg->align);
	if (expect.avail != d->vr.avail || expect.used != d->vr.used)
		dev_fail(d, "ring layout: avail at +%td (want +%td), used at +%td (want +%td)",
			 (char *)d->vr.avail - (char *)desc,
			 (char *)expect.avail - (char *)desc,
			 (char *)d->vr.used - (char *)desc,
			 (char *)expect.used - (char *)desc);

	d->owner = calloc(d->num, sizeof(*d->owner));
	d->chain_next = calloc(d->num, sizeof(*d->chain_next));
	d->chain_len = calloc(d->num, sizeof(*d->chain_len));
	d->seg = calloc(d->num, sizeof(*d->seg));
	if (!d->owner || !d->chain_next || !d->chain_len || !d->seg) {
		sim_dev_exit(d);
		return -ENOMEM;
	}
	vq->priv = d;
	return d->errors ? -EINVAL : 0;
}

void sim_dev_exit(struct sim_dev *d)
{
	if (d->threaded)
		sim_dev_stop(d);
	free(d->owner);
	free(d->chain_next);
	free(d->chain_len);
	free(d->seg);
	d->owner = NULL;
	d->chain_next = NULL;
	d->chain_len = NULL;
	d->seg = NULL;
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
}

bool sim_dev_notify(struct revirt_virtqueue *vq)
{
	struct sim_dev *d = vq->priv;

	__atomic_add_fetch(&d->kicks, 1, __ATOMIC_RELAXED);
	if (d->threaded) {
		pthread_mutex_lock(&d->lock);
		d->kick_seq++;
		pthread_cond_signal(&d->cond);
		pthread_mutex_unlock(&d->lock);
	}
	return !d->gone;
}

static u16 avail_idx(struct sim_dev *d)
{
	return d16(d, __atomic_load_n(&d->vr.avail->idx, __ATOMIC_ACQUIRE));
}

u16 sim_dev_avail_pending(struct sim_dev *d)
{
	return avail_idx(d) - d->last_avail;
}

u16 sim_dev_avail_flags(struct sim_dev *d)
{
	return d16(d, __atomic_load_n(&d->vr.avail->flags, __ATOMIC_RELAXED));
}

u16 sim_dev_used_event(struct sim_dev *d)
{
	return d16(d, __atomic_load_n(&vring_used_event(&d->vr),
				      __ATOMIC_RELAXED));
}

static u8 *scratch;
static size_t scratch_len;
static pthread_mutex_t scratch_lock = PTHREAD_MUTEX_INITIALIZER;

u32 sim_echo_handler(struct sim_dev *d, const struct sim_seg *seg,
		     unsigned int nseg, u32 out_bytes, u32 in_bytes)
{
	u32 limit = in_bytes < d->write_limit ? in_bytes : d->write_limit;
	u32 k = 0, pos = 0;
	unsigned int i;

	pthread_mutex_lock(&scratch_lock);
	if (out_bytes > scratch_len) {
		u8 *p = realloc(scratch, out_bytes);

		if (!p)
			abort();
		scratch = p;
		scratch_len = out_bytes;
	}
	for (i = 0; i < nseg && !seg[i].write; i++) {
		memcpy(scratch + pos, seg[i].buf, seg[i].len);
		pos += seg[i].len;
	}
	for (; i < nseg && k < limit; i++) {
		u32 j;

		for (j = 0; j < seg[i].len && k < limit; j++, k++)
			seg[i].buf[j] = (out_bytes ? scratch[k % out_bytes] :
					 (u8)k) ^ 0x5a;
	}
	pthread_mutex_unlock(&scratch_lock);
	return k;
}

/*
 * May the device touch [addr, addr + len) in direction @dir?  With the DMA
 * API: inside a live mapping made for it.  Without: a physical address
 * that the ring did not map (a mapping would leak or be undone twice).
 */
static const char *addr_check(const struct sim_dev *d, u64 addr, u32 len,
			      enum dma_data_direction dir)
{
	if (!d->phys)
		return shim_dma_mapped(addr, len, dir) ? NULL :
		       "not mapped for the device";
	if (!addr)
		return "a null physical address";
	return shim_dma_mapped(addr, len, dir) ?
	       "mapped with the DMA API, which this device does not use" :
	       NULL;
}

int sim_dev_pop(struct sim_dev *d, u16 *head_out, u32 *len_out)
{
	struct vring_desc *table = d->vr.desc;
	unsigned int tsize = d->num, steps = 0, nseg = 0, nmain = 0;
	u32 out = 0, in = 0, written;
	bool indirect = false, seen_write = false;
	u16 pending, head, i, prev = 0;
	const char *why;

	if (d->stopped)
		return 0;
	pending = sim_dev_avail_pending(d);
	if (!pending)
		return 0;
	if (pending > d->num)
		return dev_fail(d, "avail index %u is %u entries ahead of %u (ring size %u)",
				avail_idx(d), pending, d->last_avail, d->num);
	head = d16(d, d->vr.avail->ring[d->last_avail & (d->num - 1)]);
	if (head >= d->num)
		return dev_fail(d, "avail entry %u: head %u out of range",
				d->last_avail, head);

	for (i = head;;) {
		struct vring_desc *desc;
		u64 addr;
		u32 len;
		u16 flags;
		bool write;

		if (i >= tsize)
			return dev_fail(d, "buffer %u: descriptor %u out of range (%u)",
					head, i, tsize);
		if (++steps > tsize)
			return dev_fail(d, "buffer %u: descriptor loop", head);
		desc = &table[i];
		addr = d64(d, desc->addr);
		len = d32(d, desc->len);
		flags = d16(d, desc->flags);
		if (!indirect) {
			if (d->owner[i])
				return dev_fail(d, "buffer %u: descriptor %u already in flight in buffer %u",
						head, i, d->owner[i] - 1);
			if (nmain)
				d->chain_next[prev] = i;
			prev = i;
			nmain++;
		}
		if (flags & VRING_DESC_F_INDIRECT) {
			if (!d->indirect)
				return dev_fail(d, "buffer %u: indirect descriptor not negotiated",
						head);
			if (indirect)
				return dev_fail(d, "buffer %u: nested indirect table",
						head);
			if (steps != 1 ||
			    (flags & (VRING_DESC_F_NEXT | VRING_DESC_F_WRITE)))
				return dev_fail(d, "buffer %u: indirect descriptor with flags %#x at step %u",
						head, flags, steps);
			if (!len || len % sizeof(struct vring_desc))
				return dev_fail(d, "buffer %u: indirect table of %u bytes",
						head, len);
			why = addr_check(d, addr, len, DMA_TO_DEVICE);
			if (why)
				return dev_fail(d, "buffer %u: indirect table %#llx+%u %s",
						head, (unsigned long long)addr, len,
						why);
			table = (struct vring_desc *)(uintptr_t)addr;
			tsize = len / sizeof(struct vring_desc);
			indirect = true;
			steps = 0;
			i = 0;
			continue;
		}
		write = flags & VRING_DESC_F_WRITE;
		if (write)
			seen_write = true;
		else if (seen_write)
			return dev_fail(d, "buffer %u: readable descriptor after a writable one",
					head);
		why = addr_check(d, addr, len,
				 write ? DMA_FROM_DEVICE : DMA_TO_DEVICE);
		if (why)
			return dev_fail(d, "buffer %u: %#llx+%u (%s) %s",
					head, (unsigned long long)addr, len,
					write ? "writable" : "readable", why);
		if (nseg == d->num)
			return dev_fail(d, "buffer %u: chain longer than the ring",
					head);
		d->seg[nseg].buf = (u8 *)(uintptr_t)addr;
		d->seg[nseg].len = len;
		d->seg[nseg].write = write;
		nseg++;
		if (write)
			in += len;
		else
			out += len;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		i = d16(d, desc->next);
	}

	/* The descriptors of the main table belong to the device now. */
	d->chain_len[head] = nmain;
	for (i = head; nmain--; i = d->chain_next[i])
		d->owner[i] = head + 1;

	d->last_avail++;
	d->popped++;
	d->last_head = head;
	d->last_nseg = nseg;
	d->last_indirect = indirect;
	d->last_out = out;
	d->last_in = in;
	written = (d->handler ? d->handler : sim_echo_handler)(d, d->seg, nseg,
								out, in);
	if (written > in)
		return dev_fail(d, "handler wrote %u of %u bytes", written, in);
	*head_out = head;
	*len_out = written;
	return 1;
}

void sim_dev_push_raw(struct sim_dev *d, u32 id, u32 len)
{
	struct vring_used_elem *e;

	e = &d->vr.used->ring[d->used_shadow & (d->num - 1)];
	e->id = c32(d, id);
	e->len = c32(d, len);
	d->used_shadow++;
}

void sim_dev_push(struct sim_dev *d, u16 head, u32 len)
{
	u16 i, n;

	if (head >= d->num || d->owner[head] != head + 1) {
		dev_fail(d, "test bug: push of buffer %u that is not in flight",
			 head);
		return;
	}
	for (i = head, n = d->chain_len[head]; n--; i = d->chain_next[i])
		d->owner[i] = 0;
	sim_dev_push_raw(d, head, len);
	d->pushed++;
}

void sim_dev_set_used_idx(struct sim_dev *d, u16 idx)
{
	d->used_shadow = idx;
	d->used_pub = idx;
	__atomic_store_n(&d->vr.used->idx, c16(d, idx), __ATOMIC_RELEASE);
}

bool sim_dev_publish(struct sim_dev *d)
{
	u16 old = d->used_pub, new = d->used_shadow;
	bool need;

	if (old == new)
		return false;
	__atomic_store_n(&d->vr.used->idx, c16(d, new), __ATOMIC_RELEASE);
	d->used_pub = new;
	/* The new index must be visible before we read the driver's wish. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (d->event_idx)
		need = vring_need_event(sim_dev_used_event(d), new, old);
	else
		need = !(sim_dev_avail_flags(d) & VRING_AVAIL_F_NO_INTERRUPT);
	if (!need) {
		d->irqs_suppressed++;
		return false;
	}
	d->irqs++;
	revirt_vring_interrupt(0, d->vq);
	return true;
}

unsigned int sim_dev_process(struct sim_dev *d, unsigned int max)
{
	unsigned int n = 0;
	u16 head;
	u32 len;

	while (n < max && sim_dev_pop(d, &head, &len) == 1) {
		sim_dev_push(d, head, len);
		n++;
	}
	sim_dev_publish(d);
	return n;
}

void sim_dev_set_avail_event(struct sim_dev *d, u16 idx)
{
	__atomic_store_n(&vring_avail_event(&d->vr), c16(d, idx),
			 __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void sim_dev_want_kicks(struct sim_dev *d, bool want)
{
	if (d->event_idx) {
		/* Behind the avail index: no kick until it wraps around. */
		sim_dev_set_avail_event(d, want ? d->last_avail :
					(u16)(d->last_avail - 1));
		return;
	}
	__atomic_store_n(&d->vr.used->flags,
			 c16(d, want ? 0 : VRING_USED_F_NO_NOTIFY),
			 __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* ---- thread mode ------------------------------------------------------- */

#define SIM_SPIN	200

static void *sim_thread(void *arg)
{
	struct sim_dev *d = arg;

	for (;;) {
		unsigned long seq;
		unsigned int spin;
		bool stop;

		pthread_mutex_lock(&d->lock);
		stop = d->stop;
		seq = d->kick_seq;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			break;
		if (d->errors)
			d->stopped = true;
		if (sim_dev_process(d, d->batch))
			continue;
		for (spin = 0; spin < SIM_SPIN && !sim_dev_avail_pending(d);
		     spin++)
			sched_yield();
		if (sim_dev_avail_pending(d) && !d->stopped)
			continue;

		/* Ask for a kick, then look again before sleeping. */
		sim_dev_want_kicks(d, true);
		if (sim_dev_avail_pending(d) && !d->stopped) {
			if (!d->event_idx)
				sim_dev_want_kicks(d, false);
			continue;
		}
		pthread_mutex_lock(&d->lock);
		while (d->kick_seq == seq && !d->stop) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 2;
			if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) ==
			    ETIMEDOUT && sim_dev_avail_pending(d) &&
			    !d->stopped) {
				d->lost_kicks++;
				break;
			}
		}
		pthread_mutex_unlock(&d->lock);
		/* Busy again: no kicks wanted (event_idx: one will come). */
		if (!d->event_idx)
			sim_dev_want_kicks(d, false);
	}
	return NULL;
}

int sim_dev_start(struct sim_dev *d, unsigned int batch)
{
	d->batch = batch ? batch : 1;
	d->stop = false;
	d->threaded = true;
	if (!d->event_idx)
		sim_dev_want_kicks(d, false);
	if (pthread_create(&d->thread, NULL, sim_thread, d)) {
		d->threaded = false;
		return -1;
	}
	return 0;
}

void sim_dev_stop(struct sim_dev *d)
{
	if (!d->threaded)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	d->threaded = false;
}
