// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness for revirt's split virtqueue: the fuzzer plays the
 * device.
 *
 * An input is a queue configuration followed by a list of operations.
 * Driver operations (add, kick, get_buf, the enable_cb loop of a driver,
 * interrupts, reset and detach) are made the way a driver makes them;
 * device operations write whatever the device can write: used entries,
 * the used index and flags, avail_event, and any byte of the descriptor
 * table, the avail ring or the used ring.  Next to the ring runs a model
 * of what the virtqueue contract (design.md "Untrusted devices") says
 * must happen, and every result is compared with it:
 *
 * - a buffer comes back only if it is in flight, only once, and exactly
 *   when the used entry the device published names it with a length
 *   within its writable bytes;
 * - any other used entry, or a used index that moves by more than the
 *   buffers in flight, breaks the queue with exactly one error line; a
 *   broken queue takes no buffers (-EIO), returns none, runs no callback,
 *   and its enable_cb() does not ask the caller to poll again;
 * - descriptor counts, DMA mappings and allocations add up after every
 *   operation; after a reset every buffer still in flight comes back once;
 * - every loop a driver runs ends within a bound.
 *
 * AddressSanitizer watches the ring's memory; the padding of the ring
 * allocation, which no field lives in, is poisoned as a guard.  Anything
 * that differs from the model aborts with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sanitizer/asan_interface.h>
#include <linux/revirt_ring.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/virtio_byteorder.h>
#include <uapi/linux/virtio_ring.h>
#include "shim.h"

#define NPOOL		64	/* buffers the harness owns */
#define MAXSEG		6	/* entries per buffer: up to 3 out, 3 in */
#define SEGLEN		16
#define MAX_OPS		1024	/* per input */

/* ---- input ------------------------------------------------------------- */

static const u8 *in_p;
static size_t in_n;

static u8 take8(void)
{
	if (!in_n)
		return 0;
	in_n--;
	return *in_p++;
}

static u16 take16(void)
{
	u16 lo = take8();

	return lo | (u16)take8() << 8;
}

static u32 take32(void)
{
	u32 lo = take16();

	return lo | (u32)take16() << 16;
}

/* ---- failures ---------------------------------------------------------- */

static unsigned int op_no;
static const char *op_name = "setup";

static void finding(const char *fmt, ...) __printf(1, 2);
static void finding(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FINDING at operation %u (%s): ", op_no, op_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (shim.last_msg[0])
		fprintf(stderr, "last ring message: %s\n", shim.last_msg);
	abort();
}

#define EXPECT(cond, ...) do {						\
	if (!(cond))							\
		finding(__VA_ARGS__);					\
} while (0)

/* ---- harness buffers --------------------------------------------------- */

struct fbuf {
	struct scatterlist out[MAXSEG], in[MAXSEG];
	struct scatterlist *sgs[2];
	u8 mem[MAXSEG][SEGLEN];
	unsigned int nout, nin;
	u32 in_len;
	bool inflight;
	bool returned;		/* during a detach sweep */
	bool indirect;		/* took one descriptor holding a table */
	u16 head;
};

static struct fbuf pool[NPOOL];

/* ---- the queue and its model ------------------------------------------- */

struct model {
	struct revirt_virtqueue *vq;
	struct revirt_vring_config cfg;
	struct vring vr;		/* the device's view */
	size_t ring_bytes;
	void *guard[2];
	size_t guard_len[2];

	int *owner;			/* head -> pool index, or -1 */
	unsigned int inflight;
	unsigned int free_descs;
	long maps;			/* mappings the buffers in flight hold */
	u16 avail_idx;			/* driver's avail index */
	u32 added;			/* adds since the last kick */
	u16 last_used;			/* entries the driver took back */
	u16 used_shadow;		/* device: next used slot it writes */
	bool cb_off;			/* VRING_AVAIL_F_NO_INTERRUPT shadow */
	bool broken;
	bool gone;			/* notify() fails */
	bool fault_armed;		/* next add may fail to map/allocate */
	unsigned long errors;		/* error lines the ring must have printed */
	unsigned long warnings;
	unsigned long notifies;		/* notify() calls */
	unsigned long callbacks;
	unsigned int cb_depth;
};

static struct model m;
static struct device fz_device = { .name = "revirt-fuzz" };

static u16 d16(__virtio16 v)
{
	return __virtio16_to_cpu(m.cfg.little_endian, v);
}

static __virtio16 c16(u16 v)
{
	return __cpu_to_virtio16(m.cfg.little_endian, v);
}

static __virtio32 c32(u32 v)
{
	return __cpu_to_virtio32(m.cfg.little_endian, v);
}

static u32 d32(__virtio32 v)
{
	return __virtio32_to_cpu(m.cfg.little_endian, v);
}

static u16 used_idx(void)
{
	return d16(m.vr.used->idx);
}

static bool fz_notify(struct revirt_virtqueue *vq)
{
	(void)vq;
	m.notifies++;
	return !m.gone;
}

static void drain(void);

static void fz_callback(struct revirt_virtqueue *vq)
{
	EXPECT(vq == m.vq, "callback for another queue");
	EXPECT(!m.broken, "callback on a broken queue");
	m.callbacks++;
	/* A driver's callback takes back what was used. */
	if (m.cb_depth++ == 0)
		drain();
	m.cb_depth--;
}

/* Poison what lies around the ring's fields inside its allocation. */
static void guard_set(void)
{
	u8 *base = (u8 *)m.vr.desc;
	u8 *avail_end = (u8 *)&m.vr.avail->ring[m.cfg.num] + sizeof(__virtio16);
	u8 *used = (u8 *)m.vr.used;
	u8 *used_end = (u8 *)&m.vr.used->ring[m.cfg.num] + sizeof(__virtio16);

	m.guard[0] = avail_end;
	m.guard_len[0] = used - avail_end;
	m.guard[1] = used_end;
	m.guard_len[1] = base + m.ring_bytes - used_end;
	ASAN_POISON_MEMORY_REGION(m.guard[0], m.guard_len[0]);
	ASAN_POISON_MEMORY_REGION(m.guard[1], m.guard_len[1]);
}

static void guard_clear(void)
{
	ASAN_UNPOISON_MEMORY_REGION(m.guard[0], m.guard_len[0]);
	ASAN_UNPOISON_MEMORY_REGION(m.guard[1], m.guard_len[1]);
}

/* What every operation leaves true. */
static void invariants(void)
{
	EXPECT(revirt_vq_is_broken(m.vq) == m.broken,
	       "queue broken %d, model says %d", revirt_vq_is_broken(m.vq),
	       m.broken);
	EXPECT(shim.dev_err == m.errors, "%lu error lines, want %lu",
	       shim.dev_err, m.errors);
	EXPECT(shim.dev_warn == m.warnings, "%lu warnings, want %lu",
	       shim.dev_warn, m.warnings);
	EXPECT(!shim.warn_on, "WARN_ON hit");
	EXPECT(!shim.dma_errors, "DMA API misuse: %s", shim.dma_error);
	EXPECT(m.vq->num_free == m.free_descs, "num_free %u, want %u",
	       m.vq->num_free, m.free_descs);
	EXPECT(shim.maps_live == m.maps, "%ld mappings live, want %ld",
	       shim.maps_live, m.maps);
}

static bool queue_new(void)
{
	u8 sz = take8(), fl = take8(), al = take8();
	unsigned int i;

	/* A fault armed for an add that never came is dropped. */
	shim_fail_map_nth(0);
	shim_fail_alloc_nth(0);
	memset(&m.cfg, 0, sizeof(m.cfg));
	/* Every size from 1 to 32768; the small ones, which fill and wrap
	 * within one input, more often. */
	m.cfg.num = 1U << (sz >= 0xf0 ? sz % 16 : sz % 6);
	m.cfg.align = 1U << (al % 13);
	m.cfg.event_idx = fl & 1;
	m.cfg.indirect = fl & 2;
	m.cfg.little_endian = !(fl & 4);
	m.cfg.weak_barriers = fl & 8;
	/* The harness counts the DMA mappings it expects live. */
	m.cfg.use_dma_api = true;
	m.cfg.dma_dev = &fz_device;
	m.cfg.msg_dev = &fz_device;
	m.cfg.notify = fz_notify;
	m.vq = revirt_vring_create(&m.cfg, NULL,
				   fl & 16 ? NULL : fz_callback, "fz");
	if (IS_ERR(m.vq)) {
		EXPECT(PTR_ERR(m.vq) == -EINVAL, "create failed with %ld",
		       PTR_ERR(m.vq));
		EXPECT(m.cfg.align < 4, "create refused size %u align %u",
		       m.cfg.num, m.cfg.align);
		/* Refused with one line; nothing to run on. */
		EXPECT(shim.dev_err == ++m.errors, "refusal without a message");
		m.vq = NULL;
		return false;
	}
	m.vr.num = m.cfg.num;
	m.vr.desc = (void *)(uintptr_t)revirt_vring_desc_dma(m.vq);
	m.vr.avail = (void *)(uintptr_t)revirt_vring_avail_dma(m.vq);
	m.vr.used = (void *)(uintptr_t)revirt_vring_used_dma(m.vq);
	m.ring_bytes = PAGE_ALIGN(vring_size(m.cfg.num, m.cfg.align));
	m.owner = malloc(m.cfg.num * sizeof(*m.owner));
	if (!m.owner)
		abort();
	for (i = 0; i < m.cfg.num; i++)
		m.owner[i] = -1;
	m.inflight = 0;
	m.free_descs = m.cfg.num;
	m.maps = 0;
	m.avail_idx = 0;
	m.added = 0;
	m.last_used = 0;
	m.used_shadow = 0;
	m.cb_off = !(fl & 16) ? false : true;
	m.broken = false;
	m.gone = false;
	m.fault_armed = false;
	m.notifies = 0;
	guard_set();
	for (i = 0; i < NPOOL; i++)
		pool[i].inflight = false;
	invariants();
	return true;
}

/* ---- driver operations ------------------------------------------------- */

static void buf_release(struct fbuf *b)
{
	b->inflight = false;
	m.owner[b->head] = -1;
	m.inflight--;
	m.free_descs += b->indirect ? 1 : b->nout + b->nin;
	m.maps -= b->nout + b->nin + (b->indirect ? 1 : 0);
}

static struct fbuf *buf_prepare(unsigned int *total)
{
	u8 shape = take8(), start = take8();
	struct fbuf *b = NULL;
	unsigned int i, n;

	for (i = 0; i < NPOOL; i++) {
		b = &pool[(start + i) % NPOOL];
		if (!b->inflight)
			break;
	}
	if (i == NPOOL)
		return NULL;
	b->nout = shape & 3;
	b->nin = (shape >> 2) & 3;
	if (!b->nout && !b->nin)
		b->nout = 1;
	while (b->nout + b->nin > m.cfg.num) {
		if (b->nout >= b->nin)
			b->nout--;
		else
			b->nin--;
	}
	b->in_len = 0;
	sg_init_table(b->out, b->nout ? b->nout : 1);
	sg_init_table(b->in, b->nin ? b->nin : 1);
	for (n = 0; n < b->nout; n++)
		sg_set_buf(&b->out[n], b->mem[n], 1 + take8() % SEGLEN);
	for (n = 0; n < b->nin; n++) {
		u32 len = 1 + take8() % SEGLEN;

		sg_set_buf(&b->in[n], b->mem[b->nout + n], len);
		b->in_len += len;
	}
	n = 0;
	if (b->nout)
		b->sgs[n++] = b->out;
	if (b->nin)
		b->sgs[n++] = b->in;
	*total = b->nout + b->nin;
	return b;
}

static void op_add(void)
{
	unsigned int total, want_descs, used_descs;
	bool relaxed = m.fault_armed;
	struct fbuf *b = buf_prepare(&total);
	u16 head;
	int err, want;

	if (!b)
		return;
	want_descs = m.cfg.indirect && total > 1 ? 1 : total;
	if (m.broken)
		want = -EIO;
	else if (want_descs > m.free_descs)
		want = -ENOSPC;
	else
		want = 0;
	err = revirt_vq_add_sgs(m.vq, b->sgs, b->nout ? 1 : 0, b->nin ? 1 : 0,
				b, GFP_ATOMIC);
	if (relaxed) {
		shim_fail_map_nth(0);
		shim_fail_alloc_nth(0);
		m.fault_armed = false;
		/* A mapping or table allocation failed: -ENOMEM is fine. */
		if (want == 0 && err == -ENOMEM)
			want = err;
	}
	EXPECT(err == want, "add of %u+%u entries returned %d, want %d",
	       b->nout, b->nin, err, want);
	if (err) {
		invariants();
		return;
	}

	EXPECT(d16(m.vr.avail->idx) == (u16)(m.avail_idx + 1),
	       "avail index %u after add, want %u", d16(m.vr.avail->idx),
	       (u16)(m.avail_idx + 1));
	head = d16(m.vr.avail->ring[m.avail_idx & (m.cfg.num - 1)]);
	m.avail_idx++;
	if (m.added <= U16_MAX)
		m.added++;
	EXPECT(head < m.cfg.num, "published head %u of ring %u", head,
	       m.cfg.num);
	EXPECT(m.owner[head] < 0, "head %u published while in flight", head);
	b->head = head;
	b->indirect = total > 1 &&
		      (d16(m.vr.desc[head].flags) & VRING_DESC_F_INDIRECT);
	used_descs = b->indirect ? 1 : total;
	EXPECT(!b->indirect || m.cfg.indirect, "indirect not negotiated");
	/* Without a fault a table is used whenever it can be. */
	EXPECT(relaxed || used_descs == want_descs,
	       "%u descriptors for %u entries, want %u", used_descs, total,
	       want_descs);
	EXPECT(used_descs <= m.free_descs, "%u descriptors taken, %u free",
	       used_descs, m.free_descs);
	b->inflight = true;
	m.owner[head] = b - pool;
	m.inflight++;
	m.free_descs -= used_descs;
	m.maps += total + (b->indirect ? 1 : 0);
	invariants();
}

static void op_kick(void)
{
	u16 new_idx = m.avail_idx, old_idx = new_idx - m.added;
	unsigned long before = m.notifies;
	bool prep, ret, want_ret;

	if (m.cfg.event_idx)
		prep = m.added > U16_MAX ||
		       vring_need_event(d16(vring_avail_event(&m.vr)), new_idx,
					old_idx);
	else
		prep = !(d16(m.vr.used->flags) & VRING_USED_F_NO_NOTIFY);
	ret = revirt_vq_kick(m.vq);
	m.added = 0;
	want_ret = !m.broken;
	if (prep && !m.broken) {
		EXPECT(m.notifies == before + 1, "no notification");
		if (m.gone) {
			m.broken = true;
			want_ret = false;
		}
	} else {
		EXPECT(m.notifies == before, "notification not asked for");
	}
	EXPECT(ret == want_ret, "kick returned %d, want %d", ret, want_ret);
	invariants();
}

/* One get_buf(), checked against the used entry the device published. */
static bool checked_get(void)
{
	u16 uidx = used_idx(), pending = uidx - m.last_used;
	struct vring_used_elem *e;
	unsigned int len = 0xdeadbeef;
	struct fbuf *want = NULL, *got;
	bool lie = false;
	u32 id = 0, ulen = 0;

	if (!m.broken && pending) {
		e = &m.vr.used->ring[m.last_used & (m.cfg.num - 1)];
		id = d32(e->id);
		ulen = d32(e->len);
		if (pending > m.inflight || id >= m.cfg.num ||
		    m.owner[id] < 0 || ulen > pool[m.owner[id]].in_len)
			lie = true;
		else
			want = &pool[m.owner[id]];
	}
	got = revirt_vq_get_buf(m.vq, &len);
	if (lie) {
		EXPECT(!got, "get_buf returned %p for a lie (used idx %u, last %u, id %u, len %u)",
		       (void *)got, uidx, m.last_used, id, ulen);
		m.broken = true;
		m.errors++;
		EXPECT(strstr(shim.last_msg, "revirt: queue fz broken: "),
		       "error line \"%s\"", shim.last_msg);
		invariants();
		return false;
	}
	EXPECT(got == want, "get_buf returned %p, want %p (id %u)",
	       (void *)got, (void *)want, id);
	if (!got)
		return false;
	EXPECT(got->inflight, "buffer returned that is not in flight");
	EXPECT(len == ulen, "length %u, device said %u", len, ulen);
	buf_release(got);
	m.last_used++;
	if (m.cfg.event_idx && !m.cb_off)
		EXPECT(d16(vring_used_event(&m.vr)) == m.last_used,
		       "used_event %u after get_buf, want %u",
		       d16(vring_used_event(&m.vr)), m.last_used);
	invariants();
	return true;
}

static bool checked_enable_cb(void)
{
	bool more = used_idx() != m.last_used;
	bool ret = revirt_vq_enable_cb(m.vq);

	m.cb_off = false;
	/* A broken queue has nothing to poll for: no endless loop. */
	if (m.broken)
		EXPECT(ret, "enable_cb on a broken queue asks to poll again");
	else
		EXPECT(ret == !more, "enable_cb returned %d with %s used",
		       ret, more ? "more" : "nothing");
	if (!m.broken)
		EXPECT(d16(vring_used_event(&m.vr)) == m.last_used,
		       "used_event %u after enable_cb, want %u",
		       d16(vring_used_event(&m.vr)), m.last_used);
	invariants();
	return ret;
}

static void checked_disable_cb(void)
{
	revirt_vq_disable_cb(m.vq);
	m.cb_off = true;
	invariants();
}

/* The loop of a driver's callback or poll routine; it must end. */
static void drain(void)
{
	unsigned int rounds = 0, bound = m.inflight + 2;

	do {
		checked_disable_cb();
		while (checked_get())
			EXPECT(++rounds <= bound, "get_buf loop does not end");
		EXPECT(++rounds <= bound + 2, "enable_cb loop does not end");
	} while (!checked_enable_cb());
}

static void op_interrupt(void)
{
	bool more = used_idx() != m.last_used;
	unsigned long cb = m.callbacks;
	/* The callback itself may find the lie and break the queue. */
	unsigned long want = cb + (more && !m.broken && m.vq->callback);
	irqreturn_t r;

	r = revirt_vring_interrupt(0, m.vq);
	EXPECT(r == (more ? IRQ_HANDLED : IRQ_NONE),
	       "interrupt returned %d with %s used", r, more ? "more" : "nothing");
	EXPECT(m.callbacks == want, "%lu callbacks, want %lu", m.callbacks,
	       want);
	invariants();
}

/* Reset: the device lets go; every buffer in flight comes back once. */
static void op_reset(bool detach)
{
	unsigned int i, n = 0, want = m.inflight;
	struct fbuf *b;

	for (i = 0; i < NPOOL; i++)
		pool[i].returned = false;
	while (detach && (b = revirt_vq_detach_unused_buf(m.vq))) {
		EXPECT(b >= pool && b < pool + NPOOL, "detach returned %p",
		       (void *)b);
		EXPECT(b->inflight && !b->returned,
		       "detach returned a buffer %s",
		       b->returned ? "twice" : "not in flight");
		b->returned = true;
		buf_release(b);
		EXPECT(++n <= want, "detach loop does not end");
		invariants();
	}
	EXPECT(n == (detach ? want : 0), "detach gave %u of %u", n, want);
	if (!detach && m.inflight) {
		m.warnings++;
		for (i = 0; i < NPOOL; i++)
			if (pool[i].inflight)
				buf_release(&pool[i]);
	}
	guard_clear();
	revirt_vring_del(m.vq);
	m.vq = NULL;
	free(m.owner);
	m.owner = NULL;
	EXPECT(shim.dev_warn == m.warnings, "%lu warnings at delete, want %lu",
	       shim.dev_warn, m.warnings);
	EXPECT(!shim.maps_live && !shim.coherent_live && !shim.kmalloc_live,
	       "leak after delete: %ld mappings, %ld coherent, %ld kmalloc",
	       shim.maps_live, shim.coherent_live, shim.kmalloc_live);
	EXPECT(!shim.dma_errors, "DMA API misuse: %s", shim.dma_error);
}

/* ---- device operations ------------------------------------------------- */

static void dev_used_elem(u16 slot, u32 id, u32 len)
{
	struct vring_used_elem *e = &m.vr.used->ring[slot & (m.cfg.num - 1)];

	e->id = c32(id);
	e->len = c32(len);
}

/* A device that does its job: complete a buffer in flight. */
static void dev_complete_valid(void)
{
	unsigned int k = take8(), i, seen = 0;
	u32 len = take8();

	if (!m.inflight)
		return;
	k %= m.inflight;
	for (i = 0; i < NPOOL; i++) {
		struct fbuf *b = &pool[i];

		if (!b->inflight || seen++ != k)
			continue;
		dev_used_elem(m.used_shadow++, b->head, len % (b->in_len + 1));
		return;
	}
}

/*
 * A device that lies about a buffer in flight, the ways the contract
 * names, so that the fuzzer need not guess a head to reach them: a length
 * beyond the writable bytes, a descriptor that is not a head in flight,
 * an id out of range, the same head twice.
 */
static void dev_lie(void)
{
	u8 kind = take8(), k = take8();
	unsigned int i, seen = 0;
	struct fbuf *b = NULL;

	for (i = 0; i < NPOOL && m.inflight; i++) {
		if (pool[i].inflight && seen++ == k % m.inflight) {
			b = &pool[i];
			break;
		}
	}
	switch (kind % 4) {
	case 0:
		if (b)
			dev_used_elem(m.used_shadow++, b->head,
				      b->in_len + 1 + take8());
		break;
	case 1:
		for (i = 0; i < m.cfg.num; i++) {
			u16 id = (k + i) % m.cfg.num;

			if (m.owner[id] < 0) {
				dev_used_elem(m.used_shadow++, id, 0);
				break;
			}
		}
		break;
	case 2:
		dev_used_elem(m.used_shadow++, m.cfg.num + take16(), 0);
		break;
	default:
		if (b) {
			dev_used_elem(m.used_shadow++, b->head, 0);
			dev_used_elem(m.used_shadow++, b->head, 0);
		}
		break;
	}
	m.vr.used->idx = c16(m.used_shadow);
}

static void dev_publish(void)
{
	m.vr.used->idx = c16(m.used_shadow);
}

static void dev_scribble(void)
{
	size_t avail_off = (u8 *)m.vr.avail - (u8 *)m.vr.desc;
	size_t avail_len = sizeof(__virtio16) * (3 + m.cfg.num);
	size_t used_len = sizeof(__virtio16) * 3 +
			  sizeof(struct vring_used_elem) * m.cfg.num;
	u32 where = take32(), n = 1 + take8() % 8, k;
	u8 *p;

	/* Anywhere in the descriptor table, avail ring or used ring. */
	switch (where % 3) {
	case 0:
		where = (where / 3) % (avail_off - 0);
		p = (u8 *)m.vr.desc + where;
		if (where + n > avail_off)
			n = avail_off - where;
		break;
	case 1:
		where = (where / 3) % avail_len;
		p = (u8 *)m.vr.avail + where;
		if (where + n > avail_len)
			n = avail_len - where;
		break;
	default:
		where = (where / 3) % used_len;
		p = (u8 *)m.vr.used + where;
		if (where + n > used_len)
			n = used_len - where;
		break;
	}
	for (k = 0; k < n; k++)
		p[k] = take8();
	m.used_shadow = used_idx();
}

/* ---- the entry point --------------------------------------------------- */

enum {
	OP_ADD, OP_ADD2, OP_KICK, OP_GET, OP_DRAIN, OP_ENABLE_CB,
	OP_DISABLE_CB, OP_INTERRUPT, OP_RESET, OP_DELETE, OP_FAULT_MAP,
	OP_FAULT_ALLOC, OP_GONE, OP_MARK_BROKEN,
	OP_DEV_COMPLETE, OP_DEV_COMPLETE2, OP_DEV_PUBLISH, OP_DEV_USED_ELEM,
	OP_DEV_USED_IDX, OP_DEV_USED_FLAGS, OP_DEV_AVAIL_EVENT,
	OP_DEV_SCRIBBLE, OP_DEV_SERVE, OP_DEV_LIE,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"add", "add", "kick", "get_buf", "driver loop", "enable_cb",
	"disable_cb", "interrupt", "reset and detach", "delete with buffers",
	"map fault", "allocation fault", "notify fails", "mark broken",
	"device completes", "device completes", "device publishes",
	"device writes used entry", "device writes used index",
	"device writes used flags", "device writes avail_event",
	"device scribbles", "device serves all", "device lies",
};

static void one_op(u8 op)
{
	op_name = op_names[op];
	switch (op) {
	case OP_ADD:
	case OP_ADD2:
		op_add();
		break;
	case OP_KICK:
		op_kick();
		break;
	case OP_GET:
		checked_get();
		break;
	case OP_DRAIN:
		drain();
		break;
	case OP_ENABLE_CB:
		checked_enable_cb();
		break;
	case OP_DISABLE_CB:
		checked_disable_cb();
		break;
	case OP_INTERRUPT:
		op_interrupt();
		break;
	case OP_RESET:
	case OP_DELETE:
		op_reset(op == OP_RESET);
		if (!queue_new())
			in_n = 0;	/* nothing left to run on */
		break;
	case OP_FAULT_MAP:
		shim_fail_map_nth(1 + take8() % 8);
		m.fault_armed = true;
		break;
	case OP_FAULT_ALLOC:
		shim_fail_alloc_nth(1);
		m.fault_armed = true;
		break;
	case OP_GONE:
		m.gone = !m.gone;
		break;
	case OP_MARK_BROKEN:
		revirt_vq_mark_broken(m.vq);
		m.broken = true;
		invariants();
		break;
	case OP_DEV_COMPLETE:
	case OP_DEV_COMPLETE2:
		dev_complete_valid();
		break;
	case OP_DEV_PUBLISH:
		dev_publish();
		break;
	case OP_DEV_USED_ELEM: {
		u16 slot = take16();
		u32 id = take32();

		dev_used_elem(slot, id, take32());
		break;
	}
	case OP_DEV_USED_IDX:
		m.used_shadow = take16();
		dev_publish();
		break;
	case OP_DEV_USED_FLAGS:
		m.vr.used->flags = c16(take16());
		break;
	case OP_DEV_AVAIL_EVENT:
		vring_avail_event(&m.vr) = c16(take16());
		break;
	case OP_DEV_SCRIBBLE:
		dev_scribble();
		break;
	case OP_DEV_LIE:
		dev_lie();
		break;
	case OP_DEV_SERVE: {
		unsigned int k, n = m.inflight;

		/* Complete everything in flight, in pool order, and publish. */
		for (k = 0; k < NPOOL; k++)
			if (pool[k].inflight && n--)
				dev_used_elem(m.used_shadow++, pool[k].head,
					      pool[k].in_len);
		dev_publish();
		break;
	}
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const u8 *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	shim_quiet(true);
	return 0;
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	in_p = data;
	in_n = size;
	op_no = 0;
	op_name = "setup";
	memset(&m, 0, sizeof(m));
	shim_reset();
	shim.maps_live = 0;

	if (!queue_new())
		return 0;
	while (in_n && ++op_no <= MAX_OPS) {
		/* Codes up to 31, so that a new operation changes no input. */
		u8 op = take8() % 32;

		if (op < OP_COUNT)
			one_op(op);
	}
	op_name = "final reset";
	if (m.vq)
		op_reset(true);
	shim_reset();
	return 0;
}
