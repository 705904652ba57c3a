// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer harness for revirt's split virtqueue: the fuzzer plays the
 * device.
 *
 * An input is a mode byte, a queue configuration and a list of
 * operations.  The mode byte picks how the device reaches memory (bit 0:
 * physical addresses, use_dma_api false, as QEMU's devices without
 * VIRTIO_F_ACCESS_PLATFORM; else the DMA API) and the ring layout (the
 * bits above; the split ring is the only one so far).  Driver operations
 * (add, kick, get_buf, the enable_cb loop of a driver, interrupts, reset
 * and detach, mapping and allocation failures, in create too) are made
 * the way a driver makes them; device operations
 * write whatever the device can write: used entries, the used index and
 * flags, avail_event, and any byte of the descriptor table, the avail ring
 * or the used ring.  A device operation can also be armed to happen
 * during a later driver call, at the Nth read the ring makes of device
 * memory (the shims' READ_ONCE() and byte-order conversions call a hook),
 * so that a field the ring reads twice can change in between.
 *
 * Next to the ring runs a model of what the virtqueue contract (design.md
 * "Untrusted devices") says must happen, and every result is compared
 * with it:
 *
 * - a buffer comes back only if it is in flight, only once, and exactly
 *   when the used entry the device published names it with a length
 *   within its writable bytes; when the device wrote during the call, the
 *   result must be what some value each field held during the call gives;
 * - any other used entry, or a used index that moves by more than the
 *   buffers in flight, breaks the queue with exactly one error line; a
 *   broken queue takes no buffers (-EIO), returns none, runs no callback,
 *   and its enable_cb() does not ask the caller to poll again;
 * - descriptor counts, DMA mappings and allocations add up after every
 *   operation; after a reset every buffer still in flight comes back once;
 * - every loop a driver runs ends within a bound.
 *
 * And the harness is a strict device: after every add it checks the
 * descriptors published against the scatterlists given (address of the
 * right kind for the mode, length, flags, chain, indirect table), and at
 * every kick that the avail ring holds what the driver published, each
 * chain still intact.
 *
 * AddressSanitizer watches the ring's memory; the padding of the ring
 * allocation, which no field lives in, is poisoned as a guard.  Anything
 * that differs from the model aborts with a message.
 *
 * Speed: nothing makes a system call per input.  The shim's allocator is
 * an arena set up once and emptied between queues (shim.c, "memory"), and
 * the model's tables are static.
 */
#include <endian.h>
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
#define MAX_NUM		32768	/* largest ring */
#define MAX_RACES	4	/* device writes armed at once */
#define RACE_BYTES	16	/* input bytes a racing device operation reads */

/* Arena of the shim: a ring of 32768 takes 2.5 MiB, an input far less. */
#define ARENA_BYTES	(64UL << 20)
#define ARENA_BLOCKS	(1U << 16)

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

/*
 * The mode byte.  Bit 0: physical addresses instead of the DMA API.  The
 * bits above: the layout, modulo the layouts there are; a packed ring
 * gets value 1, so that inputs with bit 1 set become packed-ring inputs
 * the day it comes.  An input made before the mode byte existed is that
 * input with a 0 in front.
 */
#define MODE_PHYS	0x01
#define MODE_LAYOUT(b)	((b) >> 1)

enum fz_layout {
	FZ_SPLIT,
	FZ_LAYOUTS
};

static const char *const layout_names[FZ_LAYOUTS] = { "split" };

/* Operation codes; an input's byte modulo 32, the codes above unused. */
enum {
	OP_ADD, OP_ADD2, OP_KICK, OP_GET, OP_DRAIN, OP_ENABLE_CB,
	OP_DISABLE_CB, OP_INTERRUPT, OP_RESET, OP_DELETE, OP_FAULT_MAP,
	OP_FAULT_ALLOC, OP_GONE, OP_MARK_BROKEN,
	OP_DEV_COMPLETE, OP_DEV_COMPLETE2, OP_DEV_PUBLISH, OP_DEV_USED_ELEM,
	OP_DEV_USED_IDX, OP_DEV_USED_FLAGS, OP_DEV_AVAIL_EVENT,
	OP_DEV_SCRIBBLE, OP_DEV_SERVE, OP_DEV_LIE,
	OP_DEV_RACE, OP_DEV_REWRITE,
	OP_COUNT
};

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

/* ---- failures ---------------------------------------------------------- */

static unsigned int op_no;
static const char *op_name = "setup";

static void finding(const char *fmt, ...)
	__printf(1, 2) __attribute__((__noreturn__));

#define EXPECT(cond, ...) do {						\
	if (!(cond))							\
		finding(__VA_ARGS__);					\
} while (0)

/* A check of the strict device: the driver published something wrong. */
#define STRICT(cond, fmt, ...)						\
	EXPECT(cond, "strict device: " fmt, ##__VA_ARGS__)

/* ---- harness buffers --------------------------------------------------- */

struct fbuf {
	struct scatterlist out[MAXSEG], in[MAXSEG];
	struct scatterlist *sgs[2];
	u8 mem[MAXSEG][SEGLEN];
	unsigned int nout, nin;
	u32 in_len;
	bool one_call;		/* one direction: add_outbuf() or add_inbuf() */
	bool inflight;
	bool returned;		/* during a detach sweep */
	bool indirect;		/* took one descriptor holding a table */
	bool tainted;		/* the device scribbled on the descriptors */
	u16 head;
	u16 avail_pos;		/* avail index it was published at */
	u16 descs[MAXSEG];	/* descriptors of the main table it holds */
	unsigned int ndescs;
};

static struct fbuf pool[NPOOL];

/* ---- the queue and its model ------------------------------------------- */

/* The device-written fields get_buf() and friends read, at one moment. */
struct snap {
	u16 used_idx;
	u16 used_flags;
	u16 avail_event;
	u32 id, len;		/* used entry at the driver's next slot */
};

/* A device operation armed to happen during a driver call. */
struct race {
	unsigned int delay;	/* reads of device memory to let pass */
	u8 op;
	const u8 *arg;		/* the bytes it reads, inside the input */
	size_t arg_len;
};

struct model {
	struct revirt_virtqueue *vq;
	struct revirt_vring_config cfg;
	enum fz_layout layout;
	bool phys;			/* physical addresses, no DMA API */
	struct vring vr;		/* the device's view */
	u8 *ring;			/* where the ring is, as the device found it */
	size_t ring_bytes;
	void *guard[2];
	size_t guard_len[2];

	unsigned int inflight;
	unsigned int free_descs;
	long maps;			/* mappings the buffers in flight hold */
	u16 avail_idx;			/* driver's avail index */
	u32 added;			/* adds since the last kick */
	u16 last_used;			/* entries the driver took back */
	u16 used_shadow;		/* device: next used slot it writes */
	u16 dev_avail;			/* device: next avail entry it checks */
	bool avail_tainted;		/* device wrote the avail index */
	bool cb_off;			/* VRING_AVAIL_F_NO_INTERRUPT shadow */
	bool broken;
	bool gone;			/* notify() fails */
	bool fault_armed;		/* next add may fail to map/allocate */
	unsigned long errors;		/* error lines the ring must have printed */
	unsigned long warnings;
	unsigned long notifies;		/* notify() calls */
	unsigned long callbacks;
	unsigned int cb_depth;

	/* Device writes during driver calls. */
	struct race races[MAX_RACES];
	unsigned int nraces;
	bool racing;			/* a race's operation runs now */
	struct snap fired[MAX_RACES];	/* after each write of this operation */
	unsigned int nfired;
	unsigned long scribbles;	/* writes to the driver's areas */
};

static struct model m;
static struct device fz_device = { .name = "revirt-fuzz" };

/*
 * Head -> pool index, descriptor -> head holding it, or -1; avail slot ->
 * head published there.  Static: a queue of 32768 costs no allocation.
 */
static s16 owner[MAX_NUM];
static s16 desc_owner[MAX_NUM];
static u16 pub_head[MAX_NUM];
/* Descriptors seen in the chain being walked: stamp == walk_gen. */
static u32 stamp[MAX_NUM];
static u32 walk_gen;

static void finding(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FINDING at operation %u (%s): ", op_no, op_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fprintf(stderr, "mode: %s ring, %s, size %u, %s%s%s, %u device writes during this operation\n",
		layout_names[m.layout],
		m.phys ? "physical addresses" : "DMA API", m.cfg.num,
		m.cfg.little_endian ? "little endian" : "big endian",
		m.cfg.indirect ? ", indirect" : "",
		m.cfg.event_idx ? ", event index" : "", m.nfired);
	if (shim.last_msg[0])
		fprintf(stderr, "last ring message: %s\n", shim.last_msg);
	abort();
}

/*
 * The harness's own byte-order conversions: the shim's would count as the
 * ring's reads of device memory (see the hook below).
 */
static u16 d16(__virtio16 v)
{
	return m.cfg.little_endian ? le16toh(v) : be16toh(v);
}

static u32 d32(__virtio32 v)
{
	return m.cfg.little_endian ? le32toh(v) : be32toh(v);
}

static u64 d64(__virtio64 v)
{
	return m.cfg.little_endian ? le64toh(v) : be64toh(v);
}

static __virtio16 c16(u16 v)
{
	return m.cfg.little_endian ? htole16(v) : htobe16(v);
}

static __virtio32 c32(u32 v)
{
	return m.cfg.little_endian ? htole32(v) : htobe32(v);
}

static u16 used_idx(void)
{
	return d16(m.vr.used->idx);
}

static struct snap snap_now(void)
{
	struct vring_used_elem *e =
		&m.vr.used->ring[m.last_used & (m.cfg.num - 1)];
	struct snap s = {
		.used_idx = used_idx(),
		.used_flags = d16(m.vr.used->flags),
		.avail_event = d16(vring_avail_event(&m.vr)),
		.id = d32(e->id),
		.len = d32(e->len),
	};

	return s;
}

static struct fbuf *nth_inflight(unsigned int k)
{
	unsigned int i, seen = 0;

	if (!m.inflight)
		return NULL;
	k %= m.inflight;
	for (i = 0; i < NPOOL; i++)
		if (pool[i].inflight && seen++ == k)
			return &pool[i];
	return NULL;
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
	EXPECT(revirt_vq_get_vring_size(m.vq) == m.cfg.num,
	       "ring size %u, want %u", revirt_vq_get_vring_size(m.vq),
	       m.cfg.num);
}

/* ---- the device's view of memory --------------------------------------- */

/* The address a descriptor must hold for @virt in this mode. */
static u64 bus_addr(const void *virt)
{
	return (uintptr_t)virt + (m.phys ? SHIM_PHYS_OFFSET : SHIM_DMA_OFFSET);
}

static void *bus_to_virt(u64 addr)
{
	return m.phys ? shim_phys_to_virt(addr) : shim_dma_to_virt(addr);
}

/* What @addr is of @virt, for messages. */
static const char *addr_kind(u64 addr, const void *virt)
{
	uintptr_t v = (uintptr_t)virt;

	if (addr == v + SHIM_DMA_OFFSET)
		return "its DMA handle";
	if (addr == v + SHIM_PHYS_OFFSET)
		return "its physical address";
	if (addr == v)
		return "its virtual address";
	return "no address of it";
}

static const char *mode_addr(void)
{
	return m.phys ? "its physical address" : "its DMA handle";
}

/*
 * Where the ring says it is must be memory of the right kind: coherent
 * memory with the DMA API, else the physical address of live pages.
 */
static bool ring_found(u64 desc)
{
	void *virt = bus_to_virt(desc);

	if (m.phys)
		return shim_heap_live(virt, m.ring_bytes) &&
		       !shim_dma_coherent(desc, 1);
	return shim_dma_coherent(desc, m.ring_bytes) &&
	       shim_heap_live(virt, m.ring_bytes);
}

/* ---- the strict device ------------------------------------------------- */

/*
 * Entry @n of buffer @b (outs, then ins) against the descriptor the
 * driver made of it: exactly its address, of the mode's kind, and length;
 * WRITE exactly on ins; no flag but NEXT and WRITE.  NEXT is the chain's
 * business (strict_buffer()).
 */
static void strict_entry(const struct fbuf *b, const char *where,
			 unsigned int n, const struct vring_desc *d)
{
	bool write = n >= b->nout;
	const struct scatterlist *sg = write ? &b->in[n - b->nout] : &b->out[n];
	u64 addr = d64(d->addr), want = bus_addr(sg_virt(sg));
	u32 len = d32(d->len);
	u16 flags = d16(d->flags);

	STRICT(!(flags & ~(VRING_DESC_F_NEXT | VRING_DESC_F_WRITE)),
	       "head %u, %s, entry %u of %u+%u: flags %#x%s", b->head, where,
	       n, b->nout, b->nin, flags, flags & VRING_DESC_F_INDIRECT ?
	       " (INDIRECT inside a chain or a table)" : "");
	STRICT(!!(flags & VRING_DESC_F_WRITE) == write,
	       "head %u, %s, entry %u of %u+%u: WRITE %s on a device-%s entry",
	       b->head, where, n, b->nout, b->nin, write ? "missing" : "set",
	       write ? "writable" : "readable");
	STRICT(len == sg->length,
	       "head %u, %s, entry %u of %u+%u: length %u, the scatterlist says %u",
	       b->head, where, n, b->nout, b->nin, len, sg->length);
	STRICT(addr == want,
	       "head %u, %s, entry %u of %u+%u: address %#llx is %s, want %s %#llx",
	       b->head, where, n, b->nout, b->nin, (unsigned long long)addr,
	       addr_kind(addr, sg_virt(sg)), mode_addr(),
	       (unsigned long long)want);
	if (!m.phys)
		STRICT(shim_dma_mapped(addr, len,
				       write ? DMA_FROM_DEVICE : DMA_TO_DEVICE),
		       "head %u, %s, entry %u of %u+%u: %#llx+%u not mapped %s the device",
		       b->head, where, n, b->nout, b->nin,
		       (unsigned long long)addr, len, write ? "from" : "to");
}

/*
 * A descriptor of the main table that a chain of @b runs through: a
 * fresh buffer's must have been free, a buffer's at a later kick still its
 * own.
 */
static void strict_claim(struct fbuf *b, u16 i, bool fresh)
{
	if (fresh) {
		STRICT(desc_owner[i] < 0,
		       "head %u: descriptor %u is already the buffer's at head %d, in flight",
		       b->head, i, desc_owner[i]);
		desc_owner[i] = b->head;
		b->descs[b->ndescs++] = i;
	} else {
		STRICT(desc_owner[i] == b->head,
		       "head %u: descriptor %u now in its chain belongs to %d",
		       b->head, i, desc_owner[i]);
	}
}

static u32 walk_begin(void)
{
	if (!++walk_gen) {
		memset(stamp, 0, sizeof(stamp));
		walk_gen = 1;
	}
	return walk_gen;
}

/*
 * Walk a chain from @first through @table of @size descriptors: each
 * link in range and new (no loop), as many descriptors as @b has entries,
 * NEXT on all but the last, each one checked by strict_entry().
 */
static void strict_chain(struct fbuf *b, const struct vring_desc *table,
			 unsigned int size, u16 first, bool main, bool fresh)
{
	unsigned int total = b->nout + b->nin, n = 0;
	const char *where = main ? "chain" : "indirect table";
	u32 gen = walk_begin();
	u16 i = first;

	for (;;) {
		const struct vring_desc *d;
		u16 flags;

		STRICT(i < size, "head %u, %s: link %u to descriptor %u of %u",
		       b->head, where, n, i, size);
		STRICT(stamp[i] != gen, "head %u, %s: loops back to descriptor %u after %u",
		       b->head, where, i, n);
		STRICT(n < total,
		       "head %u, %s: more than the %u descriptors of %u+%u entries",
		       b->head, where, total, b->nout, b->nin);
		stamp[i] = gen;
		d = &table[i];
		if (main)
			strict_claim(b, i, fresh);
		strict_entry(b, where, n, d);
		flags = d16(d->flags);
		n++;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		i = d16(d->next);
	}
	STRICT(n == total, "head %u, %s: %u descriptors for %u+%u entries",
	       b->head, where, n, b->nout, b->nin);
}

/* What an indirect table's address @addr is, for messages. */
static const char *table_kind(u64 addr, u32 len)
{
	if (shim_heap_live(shim_dma_to_virt(addr), len))
		return "a DMA handle of a table";
	if (shim_heap_live(shim_phys_to_virt(addr), len))
		return "the physical address of a table";
	if (shim_heap_live((void *)(uintptr_t)addr, len))
		return "the virtual address of a table";
	return "no table";
}

/*
 * The buffer @b at its head, as a strict device takes it: a chain in the
 * main table, or one INDIRECT descriptor (alone: no NEXT, no WRITE) for a
 * table of exactly its entries, in memory the device may read (in a
 * live allocation; mapped to the device with the DMA API).
 */
static void strict_buffer(struct fbuf *b, bool fresh)
{
	const struct vring_desc *d = &m.vr.desc[b->head];
	u16 flags = d16(d->flags);
	unsigned int total = b->nout + b->nin;
	struct vring_desc *table;
	u64 addr;
	u32 len;

	if (fresh)
		b->ndescs = 0;
	if (!(flags & VRING_DESC_F_INDIRECT)) {
		strict_chain(b, m.vr.desc, m.cfg.num, b->head, true, fresh);
		return;
	}
	addr = d64(d->addr);
	len = d32(d->len);
	STRICT(m.cfg.indirect, "head %u: INDIRECT not negotiated", b->head);
	STRICT(flags == VRING_DESC_F_INDIRECT,
	       "head %u: indirect descriptor with flags %#x", b->head, flags);
	STRICT(len == total * sizeof(*table),
	       "head %u: indirect table of %u bytes for %u+%u entries",
	       b->head, len, b->nout, b->nin);
	table = bus_to_virt(addr);
	if (m.phys)
		STRICT(shim_heap_live(table, len),
		       "head %u: indirect table at %#llx is not the physical address of a live table (%s)",
		       b->head, (unsigned long long)addr, table_kind(addr, len));
	else
		STRICT(shim_dma_mapped(addr, len, DMA_TO_DEVICE) &&
		       shim_heap_live(table, len),
		       "head %u: indirect table at %#llx+%u is not mapped to the device (%s)",
		       b->head, (unsigned long long)addr, len,
		       table_kind(addr, len));
	strict_claim(b, b->head, fresh);
	strict_chain(b, table, total, 0, false, fresh);
}

/*
 * At a kick the device reads the avail entries published since the last
 * one (at most a ring's worth): each must hold the head the driver
 * published there, and a buffer still in flight its intact chain.  What
 * the device scribbled on is left out (taint()).
 */
static void strict_kick(void)
{
	u16 s = m.dev_avail;

	if (!m.avail_tainted)
		STRICT(d16(m.vr.avail->idx) == m.avail_idx,
		       "avail index %u at a kick, the driver published %u",
		       d16(m.vr.avail->idx), m.avail_idx);
	if ((u16)(m.avail_idx - s) > m.cfg.num)
		s = m.avail_idx - m.cfg.num;
	for (; s != m.avail_idx; s++) {
		u16 slot = s & (m.cfg.num - 1);
		u16 head = d16(m.vr.avail->ring[slot]);
		struct fbuf *b;

		STRICT(head == pub_head[slot],
		       "avail entry %u names head %u, the driver published %u",
		       s, head, pub_head[slot]);
		/* One the device completed before it was kicked is gone. */
		b = owner[head] >= 0 ? &pool[owner[head]] : NULL;
		if (b && b->avail_pos == s && !b->tainted)
			strict_buffer(b, false);
	}
	m.dev_avail = m.avail_idx;
}

/* The device wrote the driver's areas: the strict device trusts none of it. */
static void taint(bool avail)
{
	unsigned int i;

	for (i = 0; i < NPOOL; i++)
		if (pool[i].inflight)
			pool[i].tainted = true;
	m.dev_avail = m.avail_idx;
	if (avail)
		m.avail_tainted = true;
	m.scribbles++;
}

/* ---- the queue --------------------------------------------------------- */

static bool queue_new(void)
{
	u8 sz = take8(), fl = take8(), al = take8();
	u64 desc;
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
	m.cfg.use_dma_api = !m.phys;
	m.cfg.dma_dev = &fz_device;
	m.cfg.msg_dev = &fz_device;
	m.cfg.notify = fz_notify;
	/*
	 * Bit 5: a first try fails its allocation number 1 + bits 6-7 (the
	 * queue, its two arrays, then the table cache or the ring) and must
	 * leave nothing behind; the second one has no fault.  Not for large
	 * rings, whose arrays would take most of the time of the input.
	 */
	if ((fl & 32) && m.cfg.align >= 4 && m.cfg.num <= 1024) {
		shim_fail_alloc_nth(1 + (fl >> 6));
		m.vq = revirt_vring_create(&m.cfg, NULL, fz_callback, "fz");
		shim_fail_alloc_nth(0);
		EXPECT(PTR_ERR(m.vq) == -ENOMEM,
		       "create with allocation %u failing returned %ld",
		       1 + (fl >> 6), PTR_ERR(m.vq));
		EXPECT(!shim.maps_live && !shim.coherent_live &&
		       !shim.kmalloc_live,
		       "leak after a failed create: %ld mappings, %ld coherent, %ld kmalloc",
		       shim.maps_live, shim.coherent_live, shim.kmalloc_live);
		shim_arena_reset();
	}
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
	m.ring_bytes = PAGE_ALIGN(vring_size(m.cfg.num, m.cfg.align));
	desc = revirt_vring_desc_dma(m.vq);
	EXPECT(ring_found(desc), "ring at %#llx is not %s of %zu bytes of ring memory",
	       (unsigned long long)desc,
	       m.phys ? "the physical address" : "the DMA handle",
	       m.ring_bytes);
	m.vr.num = m.cfg.num;
	m.vr.desc = bus_to_virt(desc);
	m.vr.avail = bus_to_virt(revirt_vring_avail_dma(m.vq));
	m.vr.used = bus_to_virt(revirt_vring_used_dma(m.vq));
	m.ring = (u8 *)m.vr.desc;
	memset(owner, 0xff, m.cfg.num * sizeof(owner[0]));
	memset(desc_owner, 0xff, m.cfg.num * sizeof(desc_owner[0]));
	m.inflight = 0;
	m.free_descs = m.cfg.num;
	m.maps = 0;
	m.avail_idx = 0;
	m.added = 0;
	m.last_used = 0;
	m.used_shadow = 0;
	m.dev_avail = 0;
	m.avail_tainted = false;
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

/* ---- device writes during driver calls ---------------------------------- */

static void dev_op(u8 op);

/*
 * The shims call this at each read the ring makes of device memory
 * (READ_ONCE() before it, a byte-order conversion after it).  Reads of
 * the ring's private memory do not count.  When a race's count of reads
 * runs out, its device operation runs now, reading its own bytes of the
 * input, and the device-written fields are recorded as they are after it.
 */
static void fz_device_hook(const volatile void *addr)
{
	const u8 *p = (const u8 *)addr;
	unsigned int i = 0, k;

	if (m.racing || (p && (p < m.ring || p >= m.ring + m.ring_bytes)))
		return;
	while (i < m.nraces) {
		struct race r = m.races[i];
		const u8 *saved_p = in_p;
		size_t saved_n = in_n;

		if (m.races[i].delay) {
			m.races[i].delay--;
			i++;
			continue;
		}
		for (k = i + 1; k < m.nraces; k++)
			m.races[k - 1] = m.races[k];
		m.nraces--;
		in_p = r.arg;
		in_n = r.arg_len;
		m.racing = true;
		dev_op(r.op);
		m.racing = false;
		in_p = saved_p;
		in_n = saved_n;
		m.fired[m.nfired++] = snap_now();
	}
	if (!m.nraces)
		shim_device_hook = NULL;
}

static void race_arm(void)
{
	/* The device operations a race can run. */
	static const u8 ops[] = {
		OP_DEV_COMPLETE, OP_DEV_PUBLISH, OP_DEV_USED_ELEM,
		OP_DEV_USED_IDX, OP_DEV_USED_FLAGS, OP_DEV_AVAIL_EVENT,
		OP_DEV_SCRIBBLE, OP_DEV_SERVE, OP_DEV_LIE, OP_DEV_REWRITE,
	};
	u8 delay = take8(), op = take8();
	size_t n = in_n < RACE_BYTES ? in_n : RACE_BYTES;
	struct race *r;

	/* Its bytes are taken whether it is armed or not. */
	if (m.nraces < MAX_RACES) {
		r = &m.races[m.nraces++];
		r->delay = delay % 16;
		r->op = ops[op % ARRAY_SIZE(ops)];
		r->arg = in_p;
		r->arg_len = n;
		shim_device_hook = fz_device_hook;
	}
	in_p += n;
	in_n -= n;
}

static void race_disarm(void)
{
	m.nraces = 0;
	shim_device_hook = NULL;
}

/* The fields a call may have read: before it, and after each write in it. */
struct seen {
	struct snap v[1 + MAX_RACES];
	unsigned int n;
	unsigned long scribbles;
};

static void seen_begin(struct seen *s)
{
	s->v[0] = snap_now();
	s->n = m.nfired;	/* first write of this call */
	s->scribbles = m.scribbles;
}

/* After the call: true if the device wrote during it. */
static bool seen_end(struct seen *s)
{
	unsigned int first = s->n, k;

	for (k = first; k < m.nfired; k++)
		s->v[1 + k - first] = m.fired[k];
	s->n = 1 + m.nfired - first;
	return s->n > 1;
}

/* ---- driver operations ------------------------------------------------- */

static void buf_release(struct fbuf *b)
{
	unsigned int i;

	b->inflight = false;
	owner[b->head] = -1;
	for (i = 0; i < b->ndescs; i++)
		desc_owner[b->descs[i]] = -1;
	m.inflight--;
	m.free_descs += b->indirect ? 1 : b->nout + b->nin;
	if (!m.phys)
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
	b->one_call = shape & 16;
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
	/* The calls for one direction must make the same buffer. */
	if (b->one_call && !b->nin)
		err = revirt_vq_add_outbuf(m.vq, b->out, b->nout, b, GFP_ATOMIC);
	else if (b->one_call && !b->nout)
		err = revirt_vq_add_inbuf(m.vq, b->in, b->nin, b, GFP_ATOMIC);
	else
		err = revirt_vq_add_sgs(m.vq, b->sgs, b->nout ? 1 : 0,
					b->nin ? 1 : 0, b, GFP_ATOMIC);
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
		if (!m.avail_tainted)
			STRICT(d16(m.vr.avail->idx) == m.avail_idx,
			       "avail index %u after a failed add, want %u",
			       d16(m.vr.avail->idx), m.avail_idx);
		invariants();
		return;
	}

	EXPECT(d16(m.vr.avail->idx) == (u16)(m.avail_idx + 1),
	       "avail index %u after add, want %u", d16(m.vr.avail->idx),
	       (u16)(m.avail_idx + 1));
	head = d16(m.vr.avail->ring[m.avail_idx & (m.cfg.num - 1)]);
	EXPECT(head < m.cfg.num, "published head %u of ring %u", head,
	       m.cfg.num);
	EXPECT(owner[head] < 0, "head %u published while in flight", head);
	b->head = head;
	b->avail_pos = m.avail_idx;
	b->tainted = false;
	pub_head[m.avail_idx & (m.cfg.num - 1)] = head;
	m.avail_idx++;
	m.avail_tainted = false;
	if (m.added <= U16_MAX)
		m.added++;
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
	strict_buffer(b, true);
	b->inflight = true;
	owner[head] = b - pool;
	m.inflight++;
	m.free_descs -= used_descs;
	if (!m.phys)
		m.maps += total + (b->indirect ? 1 : 0);
	invariants();
}

/* Does the device ask for a notification, with its fields as in @s? */
static bool kick_wanted(const struct snap *s, u16 new_idx, u16 old_idx)
{
	if (m.cfg.event_idx)
		return m.added > U16_MAX ||
		       vring_need_event(s->avail_event, new_idx, old_idx);
	return !(s->used_flags & VRING_USED_F_NO_NOTIFY);
}

static void op_kick(void)
{
	u16 new_idx = m.avail_idx, old_idx = new_idx - m.added;
	unsigned long before = m.notifies;
	bool may = false, may_not = false, notified, ret, want_ret;
	struct seen s;
	unsigned int k;

	seen_begin(&s);
	ret = revirt_vq_kick(m.vq);
	seen_end(&s);
	for (k = 0; k < s.n; k++) {
		if (kick_wanted(&s.v[k], new_idx, old_idx))
			may = true;
		else
			may_not = true;
	}
	m.added = 0;
	notified = m.notifies != before;
	EXPECT(m.notifies <= before + 1, "%lu notifications",
	       m.notifies - before);
	if (m.broken)
		EXPECT(!notified, "notification not asked for");
	else if (notified)
		EXPECT(may, "notification not asked for");
	else
		EXPECT(may_not, "no notification");
	if (notified && m.gone)
		m.broken = true;
	want_ret = !m.broken;
	EXPECT(ret == want_ret, "kick returned %d, want %d", ret, want_ret);
	strict_kick();
	invariants();
}

enum { GOT_NONE, GOT_LIE, GOT_BUF };

struct get_want {
	int what;
	struct fbuf *buf;
	u32 len;
};

/* What get_buf() must do having read used index @uidx and entry @id, @len. */
static struct get_want expect_get(u16 uidx, u32 id, u32 len)
{
	u16 pending = uidx - m.last_used;
	struct get_want w = { GOT_NONE, NULL, 0 };

	if (m.broken || !pending)
		return w;
	w.what = GOT_LIE;
	if (pending > m.inflight || id >= m.cfg.num || owner[id] < 0 ||
	    len > pool[owner[id]].in_len)
		return w;
	w.what = GOT_BUF;
	w.buf = &pool[owner[id]];
	w.len = len;
	return w;
}

/*
 * The device wrote during get_buf(): the result must be what some value
 * of each field, as it was at some moment of the call, gives.
 */
static struct get_want race_get(const struct seen *s, struct fbuf *got,
				unsigned int len)
{
	bool broke = revirt_vq_is_broken(m.vq) && !m.broken;
	unsigned int a, b, c;

	for (a = 0; a < s->n; a++)
		for (b = 0; b < s->n; b++)
			for (c = 0; c < s->n; c++) {
				struct get_want w;

				w = expect_get(s->v[a].used_idx, s->v[b].id,
					       s->v[c].len);
				if (w.what == GOT_BUF ? got == w.buf && len == w.len :
				    !got && broke == (w.what == GOT_LIE))
					return w;
			}
	finding("get_buf returned %p (length %u, queue %s) while the device wrote %u times: no value of the used index and entry explains it",
		(void *)got, len, broke ? "broken" : "not broken", s->n - 1);
}

/* One get_buf(), checked against the used entry the device published. */
static bool checked_get(void)
{
	unsigned int len = 0xdeadbeef;
	struct get_want w;
	struct fbuf *got;
	struct seen s;

	seen_begin(&s);
	w = expect_get(s.v[0].used_idx, s.v[0].id, s.v[0].len);
	got = revirt_vq_get_buf(m.vq, &len);
	if (seen_end(&s))
		w = race_get(&s, got, len);
	if (w.what == GOT_LIE) {
		EXPECT(!got, "get_buf returned %p for a lie (used idx %u, last %u, id %u, len %u)",
		       (void *)got, s.v[0].used_idx, m.last_used, s.v[0].id,
		       s.v[0].len);
		m.broken = true;
		m.errors++;
		EXPECT(strstr(shim.last_msg, "revirt: queue fz broken: "),
		       "error line \"%s\"", shim.last_msg);
		invariants();
		return false;
	}
	EXPECT(got == w.buf, "get_buf returned %p, want %p (id %u)",
	       (void *)got, (void *)w.buf, s.v[0].id);
	if (!got)
		return false;
	EXPECT(got->inflight, "buffer returned that is not in flight");
	EXPECT(len == w.len, "length %u, device said %u", len, w.len);
	buf_release(got);
	m.last_used++;
	/* Unless the device wrote over it meanwhile. */
	if (m.cfg.event_idx && !m.cb_off && s.scribbles == m.scribbles)
		EXPECT(d16(vring_used_event(&m.vr)) == m.last_used,
		       "used_event %u after get_buf, want %u",
		       d16(vring_used_event(&m.vr)), m.last_used);
	invariants();
	return true;
}

static bool checked_enable_cb(void)
{
	bool ret, ok = false;
	struct seen s;
	unsigned int k;

	seen_begin(&s);
	ret = revirt_vq_enable_cb(m.vq);
	seen_end(&s);
	m.cb_off = false;
	/* A broken queue has nothing to poll for: no endless loop. */
	if (m.broken) {
		EXPECT(ret, "enable_cb on a broken queue asks to poll again");
	} else {
		for (k = 0; k < s.n; k++)
			ok |= ret == (s.v[k].used_idx == m.last_used);
		EXPECT(ok, "enable_cb returned %d with %s used", ret,
		       s.v[0].used_idx != m.last_used ? "more" : "nothing");
	}
	if (!m.broken && s.scribbles == m.scribbles)
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

/*
 * The loop of a driver's callback or poll routine; it must end.  Each
 * racing write of the device may add a round.
 */
static void drain(void)
{
	unsigned int rounds = 0, bound = m.inflight + 2 + 2 * MAX_RACES;

	do {
		checked_disable_cb();
		while (checked_get())
			EXPECT(++rounds <= bound, "get_buf loop does not end");
		EXPECT(++rounds <= bound + 2, "enable_cb loop does not end");
	} while (!checked_enable_cb());
}

static void op_interrupt(void)
{
	unsigned long cb = m.callbacks;
	bool broken = m.broken, more = false, none = false;
	u16 last_used = m.last_used;
	irqreturn_t r;
	struct seen s;
	unsigned int k;

	seen_begin(&s);
	r = revirt_vring_interrupt(0, m.vq);
	/* Writes during the callback's own calls count too: a superset. */
	seen_end(&s);
	for (k = 0; k < s.n; k++) {
		if (s.v[k].used_idx != last_used)
			more = true;
		else
			none = true;
	}
	EXPECT(r == IRQ_HANDLED ? more : none,
	       "interrupt returned %d with %s used", r,
	       s.v[0].used_idx != last_used ? "more" : "nothing");
	/* The callback itself may find the lie and break the queue. */
	EXPECT(m.callbacks ==
	       cb + (r == IRQ_HANDLED && !broken && m.vq->callback),
	       "%lu callbacks after an interrupt returning %d", m.callbacks - cb,
	       r);
	invariants();
}

/* Reset: the device lets go; every buffer in flight comes back once. */
static void op_reset(bool detach)
{
	unsigned int i, n = 0, want = m.inflight;
	struct fbuf *b;

	race_disarm();
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
	EXPECT(shim.dev_warn == m.warnings, "%lu warnings at delete, want %lu",
	       shim.dev_warn, m.warnings);
	EXPECT(!shim.maps_live && !shim.coherent_live && !shim.kmalloc_live,
	       "leak after delete: %ld mappings, %ld coherent, %ld kmalloc",
	       shim.maps_live, shim.coherent_live, shim.kmalloc_live);
	EXPECT(!shim.dma_errors, "DMA API misuse: %s", shim.dma_error);
	/* Nothing is live: the next queue starts from an empty arena. */
	shim_arena_reset();
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
	unsigned int k = take8();
	u32 len = take8();
	struct fbuf *b = nth_inflight(k);

	if (b)
		dev_used_elem(m.used_shadow++, b->head, len % (b->in_len + 1));
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
	struct fbuf *b = nth_inflight(k);
	unsigned int i;

	switch (kind % 4) {
	case 0:
		if (b)
			dev_used_elem(m.used_shadow++, b->head,
				      b->in_len + 1 + take8());
		break;
	case 1:
		for (i = 0; i < m.cfg.num; i++) {
			u16 id = (k + i) % m.cfg.num;

			if (owner[id] < 0) {
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

/*
 * Rewrite the used entry the driver reads next, published or not: most
 * useful armed as a race, between the driver's reads of it.  Another
 * buffer in flight, an id out of range, a length beyond the writable
 * bytes of the buffer it names, or a valid completion of a buffer.
 */
static void dev_rewrite_next(void)
{
	struct vring_used_elem *e =
		&m.vr.used->ring[m.last_used & (m.cfg.num - 1)];
	u8 kind = take8(), k = take8();
	struct fbuf *b = nth_inflight(k);
	u32 id = d32(e->id);

	switch (kind % 4) {
	case 0:
		if (b)
			e->id = c32(b->head);
		break;
	case 1:
		e->id = c32(m.cfg.num + take16());
		break;
	case 2:
		e->len = c32((id < m.cfg.num && owner[id] >= 0 ?
			      pool[owner[id]].in_len : 0) + 1 + take8());
		break;
	default:
		if (b) {
			e->id = c32(b->head);
			e->len = c32(take8() % (b->in_len + 1));
		}
		break;
	}
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
		taint(false);
		break;
	case 1:
		where = (where / 3) % avail_len;
		p = (u8 *)m.vr.avail + where;
		if (where + n > avail_len)
			n = avail_len - where;
		taint(true);
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

static const char *const op_names[OP_COUNT] = {
	"add", "add", "kick", "get_buf", "driver loop", "enable_cb",
	"disable_cb", "interrupt", "reset and detach", "delete with buffers",
	"map fault", "allocation fault", "notify fails", "mark broken",
	"device completes", "device completes", "device publishes",
	"device writes used entry", "device writes used index",
	"device writes used flags", "device writes avail_event",
	"device scribbles", "device serves all", "device lies",
	"device arms a racing write", "device rewrites the next used entry",
};

/* A device operation; also what a race runs, during a driver call. */
static void dev_op(u8 op)
{
	switch (op) {
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
	case OP_DEV_REWRITE:
		dev_rewrite_next();
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

static void one_op(u8 op)
{
	op_name = op_names[op];
	m.nfired = 0;
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
	case OP_DEV_RACE:
		race_arm();
		break;
	default:
		dev_op(op);
		break;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const u8 *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	shim_quiet(true);
	/* Once: no input maps or unmaps memory. */
	if (shim_arena_init(ARENA_BYTES, ARENA_BLOCKS)) {
		fprintf(stderr, "fuzz_ring: no memory for the arena\n");
		exit(1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	u8 mode;

	in_p = data;
	in_n = size;
	op_no = 0;
	op_name = "setup";
	memset(&m, 0, sizeof(m));
	race_disarm();
	shim_reset();
	shim_arena_reset();
	shim.maps_live = 0;

	mode = take8();
	m.phys = mode & MODE_PHYS;
	/* Every layout is the split ring so far. */
	m.layout = MODE_LAYOUT(mode) % FZ_LAYOUTS;
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
