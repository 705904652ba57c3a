// SPDX-License-Identifier: GPL-2.0-only
/*
 * Userspace tests of revirt's split virtqueue (drivers/revirt/revirt_ring.c,
 * compiled unchanged against the shims in include/) with a simulated device.
 *
 * Usage: test_ring [--tag NAME] [--quick] [--list] [SUBSTRING]
 * Prints "ok - ring[NAME]: <test>" or "not ok - ...", with "# " diagnostics.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/revirt_ring.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/virtio_byteorder.h>
#include "device.h"
#include "shim.h"

/* ---- the test framework ------------------------------------------------ */

static const char *tag_suffix = "";
static bool quick;
static unsigned int n_failed;
static unsigned int n_run;
static jmp_buf test_env;
static bool test_failed;
static unsigned long exp_err, exp_warn, exp_warn_on;

static void diag(const char *fmt, ...) __printf(1, 2);
static void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* Record a failure and go on (for cleanup paths). */
static void fail_soft(const char *fmt, ...) __printf(1, 2);
static void fail_soft(const char *fmt, ...)
{
	va_list ap;

	test_failed = true;
	fputs("# FAIL: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static void fail_hard(void) __attribute__((__noreturn__));
static void fail_hard(void)
{
	longjmp(test_env, 1);
}

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fail_soft("line %d: %s", __LINE__, #cond);		\
		fail_hard();						\
	}								\
} while (0)

#define CHECK_EQ(a, b) do {						\
	long long _a = (long long)(a), _b = (long long)(b);		\
	if (_a != _b) {							\
		fail_soft("line %d: %s == %s: %lld != %lld", __LINE__,	\
			  #a, #b, _a, _b);				\
		fail_hard();						\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *_a = (a), *_b = (b);				\
	if (strcmp(_a, _b)) {						\
		fail_soft("line %d: %s: \"%s\" != \"%s\"", __LINE__,	\
			  #a, _a, _b);					\
		fail_hard();						\
	}								\
} while (0)

/* Messages a test expects (checked after it); default none. */
static void expect_log(unsigned long err, unsigned long warn,
		       unsigned long warn_on)
{
	exp_err = err;
	exp_warn = warn;
	exp_warn_on = warn_on;
}

/* Test memory, freed after each test. */
struct tmem_hdr {
	struct tmem_hdr *next;
	max_align_t data[];
};
static struct tmem_hdr *tmem_list;

static void *tmem(size_t size)
{
	struct tmem_hdr *h = calloc(1, sizeof(*h) + size);

	if (!h) {
		fail_soft("out of memory");
		fail_hard();
	}
	h->next = tmem_list;
	tmem_list = h;
	return h->data;
}

static void tmem_free_all(void)
{
	while (tmem_list) {
		struct tmem_hdr *h = tmem_list;

		tmem_list = h->next;
		free(h);
	}
}

/* Deterministic pseudo-random numbers. */
static u64 rnd_state;

static u32 rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (u32)(rnd_state >> 16);
}

/* ---- queues under test ------------------------------------------------- */

enum {
	M_IND = 1,	/* indirect descriptors */
	M_EVT = 2,	/* event index */
	M_BE = 4,	/* big-endian ring fields (little_endian = false) */
	M_ALL = 8,	/* number of combinations */
	/* Outside M_ALL: physical addresses (no DMA API) instead of mappings. */
	M_PHYS = 8,
};

static const char *mode_name(unsigned int mode)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "%s%s%s%s", mode & M_IND ? "indirect " : "",
		 mode & M_EVT ? "event-idx " : "",
		 mode & M_BE ? "big-endian" : "little-endian",
		 mode & M_PHYS ? " physical" : "");
	return buf;
}

struct tq {
	struct tq *next;
	struct revirt_virtqueue *vq;
	struct sim_dev dev;
	struct revirt_vring_config cfg;
	unsigned long callbacks;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static struct tq *tq_list;
static struct device test_device = { .name = "revirt-test" };

static void tq_callback(struct revirt_virtqueue *vq)
{
	struct sim_dev *d = vq->priv;
	struct tq *t = container_of(d, struct tq, dev);

	pthread_mutex_lock(&t->lock);
	__atomic_add_fetch(&t->callbacks, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static unsigned long tq_callbacks(struct tq *t)
{
	return __atomic_load_n(&t->callbacks, __ATOMIC_ACQUIRE);
}

static struct tq *tq_new(unsigned int num, unsigned int mode, bool callback)
{
	struct tq *t = calloc(1, sizeof(*t));

	CHECK(t);
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->cfg.index = 0;
	t->cfg.num = num;
	t->cfg.align = (mode & M_BE) ? 4096 : 64;
	t->cfg.little_endian = !(mode & M_BE);
	t->cfg.event_idx = mode & M_EVT;
	t->cfg.indirect = mode & M_IND;
	/* Both barrier flavours get exercised. */
	t->cfg.weak_barriers = !(mode & M_BE);
	t->cfg.use_dma_api = !(mode & M_PHYS);
	t->cfg.dma_dev = &test_device;
	t->cfg.msg_dev = &test_device;
	t->cfg.notify = sim_dev_notify;
	t->vq = revirt_vring_create(&t->cfg, NULL, callback ? tq_callback : NULL,
				    "tq");
	if (IS_ERR(t->vq)) {
		long err = PTR_ERR(t->vq);

		free(t);
		fail_soft("revirt_vring_create(%u, %s) = %ld", num,
			  mode_name(mode), err);
		fail_hard();
	}
	t->next = tq_list;
	tq_list = t;
	if (sim_dev_init(&t->dev, t->vq, &t->cfg)) {
		fail_soft("device: %s", t->dev.error);
		fail_hard();
	}
	return t;
}

/* Detach what is left, delete the queue; no fail_hard() in here. */
static void tq_del(struct tq *t)
{
	struct tq **pp;

	sim_dev_stop(&t->dev);
	if (t->dev.errors)
		fail_soft("device saw %lu protocol errors, first: %s",
			  t->dev.errors, t->dev.error);
	for (pp = &tq_list; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	revirt_vring_del(t->vq);
	sim_dev_exit(&t->dev);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t);
}

/* After a failed test: take back buffers quietly and free the queues. */
static void tq_cleanup_all(void)
{
	while (tq_list) {
		struct tq *t = tq_list;

		sim_dev_stop(&t->dev);
		while (revirt_vq_detach_unused_buf(t->vq))
			;
		tq_del(t);
	}
}

/* ---- buffers ----------------------------------------------------------- */

/*
 * A test buffer: @nout device-readable entries over @out_lists lists, then
 * @nin writable ones over @in_lists lists.  Entry k of a list is len + k % 3
 * bytes; lists of three or more entries are built from two chained arrays.
 * The bytes of all readable (writable) entries are contiguous in out (in).
 */
struct tbuf {
	struct scatterlist *sgs[4];
	unsigned int out_sgs, in_sgs;
	unsigned int nout, nin;
	u32 out_bytes, in_bytes;
	u8 *out, *in;
	u64 seq;
	bool busy;
};

static struct scatterlist *mk_list(u8 *base, unsigned int n, unsigned int len,
				   u32 *bytes)
{
	struct scatterlist *a, *b = NULL, *sg;
	unsigned int k;

	if (n >= 3) {
		a = tmem(3 * sizeof(*a));
		b = tmem((n - 2) * sizeof(*b));
		sg_init_table(a, 3);
		sg_init_table(b, n - 2);
		sg_chain(a, 3, b);
	} else {
		a = tmem(n * sizeof(*a));
		sg_init_table(a, n);
	}
	for (k = 0, sg = a; k < n; k++, sg = sg_next(sg)) {
		unsigned int l = len + k % 3;

		sg_set_buf(sg, base + *bytes, l);
		*bytes += l;
	}
	return a;
}

static void tbuf_fill(struct tbuf *b, u64 seq)
{
	u32 k;

	b->seq = seq;
	for (k = 0; k < b->out_bytes; k++)
		b->out[k] = (u8)(seq * 131 + k * 7 + (k >> 8));
	memset(b->in, 0xee, b->in_bytes);
}

static struct tbuf *tbuf_new2(unsigned int nout, unsigned int out_lists,
			      unsigned int nin, unsigned int in_lists,
			      unsigned int len)
{
	struct tbuf *b = tmem(sizeof(*b));
	unsigned int l, n, left;
	u32 ob = 0, ib = 0;

	if (!nout)
		out_lists = 0;
	if (!nin)
		in_lists = 0;
	if (out_lists > nout)
		out_lists = nout;
	if (in_lists > nin)
		in_lists = nin;
	b->nout = nout;
	b->nin = nin;
	/* Worst case: every entry is len + 2 bytes. */
	b->out = tmem((size_t)nout * (len + 2) + 1);
	b->in = tmem((size_t)nin * (len + 2) + 1);
	for (l = 0, left = nout; l < out_lists; l++, left -= n) {
		n = l + 1 == out_lists ? left : left / 2;
		b->sgs[b->out_sgs++] = mk_list(b->out, n, len, &ob);
	}
	for (l = 0, left = nin; l < in_lists; l++, left -= n) {
		n = l + 1 == in_lists ? left : left / 2;
		b->sgs[b->out_sgs + b->in_sgs++] = mk_list(b->in, n, len, &ib);
	}
	b->out_bytes = ob;
	b->in_bytes = ib;
	tbuf_fill(b, 0);
	return b;
}

static struct tbuf *tbuf_new(unsigned int nout, unsigned int nin,
			     unsigned int len)
{
	return tbuf_new2(nout, 1, nin, 1, len);
}

static int tq_add(struct tq *t, struct tbuf *b)
{
	int err = revirt_vq_add_sgs(t->vq, b->sgs, b->out_sgs, b->in_sgs, b,
				    GFP_ATOMIC);

	if (!err)
		b->busy = true;
	return err;
}

/* What the echo device writes: readable bytes ^ 0x5a, cyclically. */
static void tbuf_verify(struct tbuf *b, u32 len, u32 limit)
{
	u32 want = b->in_bytes < limit ? b->in_bytes : limit, k;

	CHECK(b->busy);
	b->busy = false;
	CHECK_EQ(len, want);
	for (k = 0; k < b->in_bytes; k++) {
		u8 exp = k >= len ? 0xee :
			 (u8)((b->out_bytes ? b->out[k % b->out_bytes] :
			       (u8)k) ^ 0x5a);

		if (b->in[k] != exp) {
			fail_soft("buffer %llu: byte %u is %#x, want %#x",
				  (unsigned long long)b->seq, k, b->in[k], exp);
			fail_hard();
		}
	}
}

/* Take back the next used buffer, which must be @want. */
static void tq_get_expect(struct tq *t, struct tbuf *want)
{
	unsigned int len = ~0U;
	struct tbuf *b = revirt_vq_get_buf(t->vq, &len);

	CHECK(b != NULL);
	CHECK(b == want);
	tbuf_verify(b, len, t->dev.write_limit);
}

static unsigned int descs_for(struct tq *t, struct tbuf *b)
{
	unsigned int total = b->nout + b->nin;

	return t->cfg.indirect && total > 1 ? 1 : total;
}

/* Add, kick, let the device use it, take it back. */
static void round_trip(struct tq *t, struct tbuf *b)
{
	unsigned int before = t->vq->num_free;

	CHECK_EQ(tq_add(t, b), 0);
	CHECK_EQ(t->vq->num_free, before - descs_for(t, b));
	CHECK(revirt_vq_kick(t->vq));
	CHECK_EQ(sim_dev_process(&t->dev, 1), 1);
	CHECK_EQ(t->dev.last_nseg, b->nout + b->nin);
	CHECK_EQ(t->dev.last_out, b->out_bytes);
	CHECK_EQ(t->dev.last_in, b->in_bytes);
	CHECK_EQ(t->dev.last_indirect, descs_for(t, b) == 1 &&
		 b->nout + b->nin > 1);
	tq_get_expect(t, b);
	CHECK_EQ(t->vq->num_free, before);
}

/* Take back every buffer after a reset; each must come back once. */
static unsigned int detach_all(struct tq *t, struct tbuf **bufs,
			       unsigned int n)
{
	unsigned int got = 0, i;
	struct tbuf *b;

	t->dev.stopped = true;
	while ((b = revirt_vq_detach_unused_buf(t->vq))) {
		for (i = 0; i < n && bufs[i] != b; i++)
			;
		CHECK(i < n);
		CHECK(b->busy);
		b->busy = false;
		got++;
	}
	CHECK(revirt_vq_detach_unused_buf(t->vq) == NULL);
	CHECK_EQ(t->vq->num_free, t->cfg.num);
	return got;
}

/* ---- the harness itself ------------------------------------------------ */

/* The checks the other tests rely on do catch leaks and bad unmaps. */
static void t_shim_selftest(void)
{
	static u8 page[64];
	char why[SHIM_MSG_MAX + 64];
	dma_addr_t a;
	void *p;

	a = dma_map_page(NULL, virt_to_page(page), offset_in_page(page), 64,
			 DMA_TO_DEVICE);
	CHECK(a == (dma_addr_t)(uintptr_t)page);
	CHECK(shim_dma_mapped(a, 64, DMA_TO_DEVICE));
	CHECK(!shim_dma_mapped(a, 65, DMA_TO_DEVICE));
	CHECK(!shim_dma_mapped(a, 64, DMA_FROM_DEVICE));
	CHECK(!shim_clean(why, sizeof(why)));		/* a leak */
	dma_unmap_page(NULL, a, 32, DMA_TO_DEVICE);	/* wrong length */
	CHECK_EQ(shim.dma_errors, 1);
	dma_unmap_page(NULL, a, 64, DMA_TO_DEVICE);
	CHECK(!shim_dma_mapped(a, 64, DMA_TO_DEVICE));
	dma_unmap_page(NULL, a, 64, DMA_TO_DEVICE);	/* twice */
	CHECK_EQ(shim.dma_errors, 2);
	CHECK(!shim_clean(why, sizeof(why)));
	shim.dma_errors = 0;

	shim_fail_map_nth(2);
	a = dma_map_page(NULL, virt_to_page(page), 0, 1, DMA_TO_DEVICE);
	CHECK(!dma_mapping_error(NULL, a));
	CHECK(dma_mapping_error(NULL, dma_map_page(NULL, virt_to_page(page),
						   0, 1, DMA_TO_DEVICE)));
	dma_unmap_page(NULL, a, 1, DMA_TO_DEVICE);
	shim_fail_alloc_from(1);
	CHECK(kmalloc(1, GFP_KERNEL) == NULL);
	CHECK(kzalloc(1, GFP_KERNEL) == NULL);
	shim_fail_alloc_nth(0);
	p = kmalloc(1, GFP_KERNEL);
	CHECK(p && shim.kmalloc_live == 1);
	kfree(p);
	CHECK(shim_clean(why, sizeof(why)));
}

/* ---- basic operation --------------------------------------------------- */

static void t_out_only(void)
{
	unsigned int mode, n;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(16, mode, true);

		for (n = 1; n <= 6; n++) {
			round_trip(t, tbuf_new(n, 0, 10));
			round_trip(t, tbuf_new2(n, 2, 0, 0, 1));
		}
		tq_del(t);
	}
}

static void t_in_only(void)
{
	unsigned int mode, n;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(16, mode, true);

		for (n = 1; n <= 6; n++) {
			round_trip(t, tbuf_new(0, n, 10));
			round_trip(t, tbuf_new2(0, 0, n, 2, 3));
		}
		tq_del(t);
	}
}

static void t_mixed(void)
{
	unsigned int mode, o, i;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(16, mode, true);

		for (o = 1; o <= 5; o++)
			for (i = 1; i <= 5; i++) {
				round_trip(t, tbuf_new(o, i, 5));
				round_trip(t, tbuf_new2(o, 2, i, 2, 100));
			}
		/* Entries crossing page boundaries. */
		round_trip(t, tbuf_new2(3, 2, 3, 2, 5000));
		tq_del(t);
	}
}

/*
 * Without the DMA API (no VIRTIO_F_ACCESS_PLATFORM) the device gets
 * physical addresses: the ring maps nothing, keeps no coherent memory,
 * and still takes buffers back and frees its pages (shim_clean()).  The
 * device checks that no address it is given is a DMA mapping.
 */
static void t_physical(void)
{
	unsigned int mode, o, i;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(16, mode | M_PHYS, true);
		struct tbuf *b[4];

		CHECK_EQ(shim.coherent_live, 0);
		CHECK_EQ(revirt_vring_desc_dma(t->vq) % 4096, 0);
		for (o = 0; o <= 3; o++)
			for (i = !o; i <= 3; i++)
				round_trip(t, tbuf_new(o, i, 24));
		round_trip(t, tbuf_new2(3, 2, 3, 2, 5000));
		/* Several in flight, then a reset takes them back. */
		for (i = 0; i < 4; i++) {
			b[i] = tbuf_new(1, 2, 8);
			CHECK_EQ(tq_add(t, b[i]), 0);
		}
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(detach_all(t, b, 4), 4);
		CHECK_EQ(shim.map_calls, 0);
		CHECK_EQ(shim.maps_live, 0);
		tq_del(t);
	}
}

static void t_partial_write(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(8, mode, true);

		t->dev.write_limit = 7;
		round_trip(t, tbuf_new(2, 3, 10));
		t->dev.write_limit = 0;
		round_trip(t, tbuf_new(2, 3, 10));
		t->dev.write_limit = ~0U;
		tq_del(t);
	}
}

static void t_outbuf_inbuf(void)
{
	unsigned int mode, len;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(8, mode, true);
		struct scatterlist sg[6];
		u8 data[6][8];
		int k, token = 1;

		sg_init_table(sg, 6);
		for (k = 0; k < 6; k++) {
			memset(data[k], k, sizeof(data[k]));
			sg_set_buf(&sg[k], data[k], sizeof(data[k]));
		}
		/* Only the first 4 of the 6 entries. */
		CHECK_EQ(revirt_vq_add_outbuf(t->vq, sg, 4, &token, GFP_KERNEL), 0);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_process(&t->dev, 8), 1);
		CHECK_EQ(t->dev.last_nseg, 4);
		CHECK_EQ(t->dev.last_out, 32);
		CHECK(revirt_vq_get_buf(t->vq, &len) == &token);
		CHECK_EQ(len, 0);

		sg_init_table(sg, 6);
		for (k = 0; k < 6; k++)
			sg_set_buf(&sg[k], data[k], sizeof(data[k]));
		CHECK_EQ(revirt_vq_add_inbuf(t->vq, sg, 3, &token, GFP_KERNEL), 0);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_process(&t->dev, 8), 1);
		CHECK_EQ(t->dev.last_nseg, 3);
		CHECK_EQ(t->dev.last_in, 24);
		CHECK(revirt_vq_get_buf(t->vq, &len) == &token);
		CHECK_EQ(len, 24);
		for (k = 0; k < 24; k++)
			CHECK_EQ(data[k / 8][k % 8], (u8)k ^ 0x5a);

		/* Bad counts are refused with a warning. */
		CHECK_EQ(revirt_vq_add_outbuf(t->vq, sg, 0, &token, GFP_KERNEL),
			 -EINVAL);
		CHECK_EQ(revirt_vq_add_inbuf(t->vq, sg, 4, &token, GFP_KERNEL),
			 -EINVAL);
		CHECK_EQ(t->vq->num_free, 8);
		tq_del(t);
	}
	expect_log(0, 0, 2 * M_ALL);
}

/* add_outbuf()/add_inbuf() take the first @num entries of a chained list. */
static void t_outbuf_chained(void)
{
	unsigned int mode, len;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(8, mode, true);
		struct tbuf *b = tbuf_new(5, 0, 10);	/* 2 + link, then 3 */
		struct tbuf *c = tbuf_new(0, 5, 10);
		int token = 1;

		/* Entries 10, 11, then 12 from the second array. */
		CHECK_EQ(revirt_vq_add_outbuf(t->vq, b->sgs[0], 3, &token,
					      GFP_KERNEL), 0);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_process(&t->dev, 1), 1);
		CHECK_EQ(t->dev.last_nseg, 3);
		CHECK_EQ(t->dev.last_out, 33);
		CHECK(revirt_vq_get_buf(t->vq, &len) == &token);
		CHECK_EQ(revirt_vq_add_inbuf(t->vq, c->sgs[0], 4, &token,
					     GFP_KERNEL), 0);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_process(&t->dev, 1), 1);
		CHECK_EQ(t->dev.last_nseg, 4);
		CHECK_EQ(t->dev.last_in, 43);
		CHECK(revirt_vq_get_buf(t->vq, &len) == &token);
		CHECK_EQ(len, 43);
		tq_del(t);
	}
}

static void t_bad_args(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(4, mode, true);
		struct tbuf *b = tbuf_new(2, 2, 4);
		unsigned long maps = shim.map_calls;

		CHECK_EQ(revirt_vq_add_sgs(t->vq, b->sgs, 1, 1, NULL, GFP_KERNEL),
			 -EINVAL);
		CHECK_EQ(revirt_vq_add_sgs(t->vq, b->sgs, 0, 0, b, GFP_KERNEL),
			 -EINVAL);
		/* Longer than the ring, even with indirect descriptors. */
		CHECK_EQ(tq_add(t, tbuf_new(3, 2, 4)), -EINVAL);
		CHECK_EQ(shim.map_calls, maps);
		CHECK_EQ(t->vq->num_free, 4);
		round_trip(t, b);
		tq_del(t);
	}
	expect_log(0, 0, 3 * M_ALL);
}

static void t_invalid_sizes(void)
{
	static const struct { unsigned int num, align; } bad[] = {
		{ 0, 4096 }, { 3, 4096 }, { 6, 64 }, { 32769, 4096 },
		{ 65536, 4096 }, { 1U << 31, 4096 }, { 8, 0 }, { 8, 3 },
		{ 8, 100 }, { 8, 1 }, { 8, 2 },
	};
	struct revirt_vring_config cfg = {
		.little_endian = true,
		.dma_dev = &test_device,
		.msg_dev = &test_device,
		.notify = sim_dev_notify,
	};
	char want[128];
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct revirt_virtqueue *vq;

		cfg.num = bad[i].num;
		cfg.align = bad[i].align;
		vq = revirt_vring_create(&cfg, NULL, NULL, "bad");
		CHECK(IS_ERR(vq));
		CHECK_EQ(PTR_ERR(vq), -EINVAL);
		CHECK_EQ(shim.dev_err, i + 1);
		snprintf(want, sizeof(want),
			 "revirt: queue bad: invalid size %u or alignment %u",
			 bad[i].num, bad[i].align);
		CHECK_STR(shim.last_msg, want);
	}
	CHECK_EQ(shim.alloc_calls, 0);
	expect_log(i, 0, 0);
}

static void t_layout(void)
{
	unsigned int mode, num;

	/* sim_dev_init() checks the bus addresses against vring_init(). */
	for (mode = 0; mode < M_ALL; mode += M_BE)
		for (num = 1; num <= 32768; num *= 2) {
			struct tq *t = tq_new(num, mode, false);

			CHECK_EQ(revirt_vring_desc_dma(t->vq) % 4096, 0);
			CHECK_EQ(revirt_vring_used_dma(t->vq) % t->cfg.align, 0);
			tq_del(t);
		}
}

/* ---- ring sizes -------------------------------------------------------- */

static void size_test(unsigned int num)
{
	static const unsigned int modes[] = { 0, M_IND | M_EVT, M_BE | M_IND,
					      M_BE | M_EVT };
	unsigned int m, i, len;

	for (m = 0; m < 4; m++) {
		struct tq *t = tq_new(num, modes[m], true);
		struct tbuf **bufs = tmem(num * sizeof(*bufs));
		struct tbuf *b;

		CHECK_EQ(revirt_vq_get_vring_size(t->vq), num);
		CHECK_EQ(t->vq->num_free, num);

		/* Fill with one-descriptor buffers. */
		for (i = 0; i < num; i++) {
			bufs[i] = i & 1 ? tbuf_new(1, 0, 8) : tbuf_new(0, 1, 8);
			tbuf_fill(bufs[i], i);
			CHECK_EQ(tq_add(t, bufs[i]), 0);
		}
		CHECK_EQ(t->vq->num_free, 0);
		CHECK_EQ(tq_add(t, tbuf_new(1, 0, 8)), -ENOSPC);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_avail_pending(&t->dev), num);
		CHECK_EQ(sim_dev_process(&t->dev, ~0U), num);
		for (i = 0; i < num; i++)
			tq_get_expect(t, bufs[i]);
		CHECK(revirt_vq_get_buf(t->vq, &len) == NULL);
		CHECK_EQ(t->vq->num_free, num);

		/* One chain as long as the ring, readable then writable. */
		b = tbuf_new2(num / 2, 2, num - num / 2, 2, 3);
		round_trip(t, b);
		/* One longer than the ring is refused. */
		CHECK_EQ(tq_add(t, tbuf_new(num, 1, 1)), -EINVAL);
		CHECK_EQ(t->vq->num_free, num);
		tq_del(t);
	}
	expect_log(0, 0, 4);
}

static unsigned int size_under_test;

static void t_size(void)
{
	size_test(size_under_test);
}

/* ---- full ring --------------------------------------------------------- */

static void t_full_ring(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(8, mode, true);
		struct tbuf *b[8];
		unsigned long maps;
		unsigned int i;

		if (mode & M_IND) {
			/* Each chain takes one descriptor. */
			for (i = 0; i < 8; i++)
				CHECK_EQ(tq_add(t, b[i] = tbuf_new(2, 1, 4)), 0);
		} else {
			CHECK_EQ(tq_add(t, b[0] = tbuf_new(2, 1, 4)), 0);
			CHECK_EQ(tq_add(t, b[1] = tbuf_new(1, 2, 4)), 0);
			CHECK_EQ(t->vq->num_free, 2);
			maps = shim.map_calls;
			CHECK_EQ(tq_add(t, tbuf_new(2, 1, 4)), -ENOSPC);
			CHECK_EQ(shim.map_calls, maps);
			CHECK_EQ(tq_add(t, b[2] = tbuf_new(1, 1, 4)), 0);
			i = 3;
		}
		CHECK_EQ(t->vq->num_free, 0);
		maps = shim.map_calls;
		CHECK_EQ(tq_add(t, tbuf_new(1, 0, 4)), -ENOSPC);
		CHECK_EQ(tq_add(t, tbuf_new(1, 1, 4)), -ENOSPC);
		CHECK_EQ(shim.map_calls, maps);
		CHECK(revirt_vq_kick(t->vq));

		/* The device uses one: there is room again, once. */
		CHECK_EQ(sim_dev_process(&t->dev, 1), 1);
		tq_get_expect(t, b[0]);
		CHECK_EQ(tq_add(t, b[0] = tbuf_new(2, 1, 4)), 0);
		CHECK_EQ(t->vq->num_free, 0);
		CHECK_EQ(tq_add(t, tbuf_new(1, 0, 4)), -ENOSPC);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_process(&t->dev, ~0U), i);
		while (i--) {
			unsigned int len;
			struct tbuf *got = revirt_vq_get_buf(t->vq, &len);

			CHECK(got != NULL);
			tbuf_verify(got, len, ~0U);
		}
		CHECK_EQ(t->vq->num_free, 8);
		tq_del(t);
	}
}

/* Random sizes, completion in a random order: the free list survives. */
static void t_out_of_order(void)
{
	unsigned int mode, round, rounds = quick ? 200 : 2000;

	rnd_state = 0x1234567;
	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(16, mode, true);
		struct tbuf *pool[16], *inflight[16];
		u16 heads[16];
		u32 lens[16];
		unsigned int i;

		for (i = 0; i < 16; i++)
			pool[i] = tbuf_new(1 + i % 3, 1 + i % 4, 1 + i);
		for (round = 0; round < rounds; round++) {
			unsigned int n = 0, k, p = rnd() % 16;

			/* Add until full. */
			for (;;) {
				struct tbuf *b = pool[(p + n) % 16];

				if (n == 16 || b->busy)
					break;
				tbuf_fill(b, round * 16 + n);
				if (tq_add(t, b))
					break;
				inflight[n++] = b;
			}
			CHECK(n > 0);
			CHECK(revirt_vq_kick(t->vq));
			for (k = 0; k < n; k++)
				CHECK_EQ(sim_dev_pop(&t->dev, &heads[k], &lens[k]), 1);
			/* Shuffle, then complete in that order. */
			for (k = n; k > 1; k--) {
				unsigned int j = rnd() % k;
				u16 h = heads[k - 1];
				u32 l = lens[k - 1];
				struct tbuf *b = inflight[k - 1];

				heads[k - 1] = heads[j];
				lens[k - 1] = lens[j];
				inflight[k - 1] = inflight[j];
				heads[j] = h;
				lens[j] = l;
				inflight[j] = b;
			}
			for (k = 0; k < n; k++) {
				sim_dev_push(&t->dev, heads[k], lens[k]);
				if (rnd() & 1)
					sim_dev_publish(&t->dev);
			}
			sim_dev_publish(&t->dev);
			for (k = 0; k < n; k++)
				tq_get_expect(t, inflight[k]);
			CHECK_EQ(t->vq->num_free, 16);
		}
		tq_del(t);
	}
}

/* ---- notifications ----------------------------------------------------- */

static void add_n(struct tq *t, struct tbuf **b, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		CHECK_EQ(tq_add(t, b[i] = tbuf_new(1, 1, 4)), 0);
}

static void use_and_get(struct tq *t, struct tbuf **b, unsigned int n)
{
	unsigned int i;

	CHECK_EQ(sim_dev_process(&t->dev, ~0U), n);
	for (i = 0; i < n; i++)
		tq_get_expect(t, b[i]);
}

/* The device forgot the queue (reset alone): it starts over from index 0. */
static void tq_device_restart(struct tq *t)
{
	sim_dev_exit(&t->dev);
	if (sim_dev_init(&t->dev, t->vq, &t->cfg)) {
		fail_soft("device: %s", t->dev.error);
		fail_hard();
	}
}

/*
 * A queue reset alone: buffers in flight are taken back, the ring starts
 * over empty at the same size or another, a refused size keeps the old
 * ring, and the queue works again each time (every buffer once, intact).
 */
static void t_queue_reset(void)
{
	static const unsigned int sizes[] = { 0, 64, 4, 1, 256 };
	unsigned int mode, k, i;

	expect_log(M_ALL, 0, 0);
	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(16, mode, true);
		struct tbuf *b[8];

		for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			unsigned int num = sizes[k] ? sizes[k] : t->cfg.num;
			unsigned int n = t->cfg.num < 8 ? t->cfg.num : 8;

			/* One descriptor each, so that a ring of 1 takes one. */
			for (i = 0; i < n; i++)
				CHECK_EQ(tq_add(t, b[i] = tbuf_new(1, 0, 4)), 0);
			CHECK(revirt_vq_kick(t->vq));
			/* Used before the reset: the driver takes it normally. */
			CHECK_EQ(sim_dev_process(&t->dev, 1), 1);
			tq_get_expect(t, b[0]);
			CHECK_EQ(detach_all(t, b + 1, n - 1), n - 1);
			CHECK_EQ(revirt_vring_reinit(t->vq, sizes[k]), 0);
			t->cfg.num = num;
			CHECK_EQ(revirt_vq_get_vring_size(t->vq), num);
			CHECK_EQ(t->vq->num_free, num);
			CHECK(!revirt_vq_is_broken(t->vq));
			tq_device_restart(t);
			/* Twice round the ring: the indexes started over. */
			for (i = 0; i < 2 * num + 1; i++)
				round_trip(t, tbuf_new(1, num > 1, 8));
			CHECK_EQ(t->dev.used_pub, (u16)(2 * num + 1));
		}
		/* A size that is no power of two: refused, ring kept, emptied. */
		add_n(t, b, 2);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(detach_all(t, b, 2), 2);
		CHECK_EQ(revirt_vring_reinit(t->vq, 100), -EINVAL);
		CHECK_EQ(revirt_vq_get_vring_size(t->vq), t->cfg.num);
		tq_device_restart(t);
		round_trip(t, tbuf_new(2, 2, 16));
		/* A device that broke the queue: the reset heals it. */
		add_n(t, b, 1);
		CHECK(revirt_vq_kick(t->vq));
		sim_dev_push_raw(&t->dev, t->cfg.num + 3, 0);
		sim_dev_publish(&t->dev);
		CHECK(revirt_vq_get_buf(t->vq, &i) == NULL);
		CHECK(revirt_vq_is_broken(t->vq));
		CHECK_EQ(detach_all(t, b, 1), 1);
		CHECK_EQ(revirt_vring_reinit(t->vq, 0), 0);
		CHECK(!revirt_vq_is_broken(t->vq));
		tq_device_restart(t);
		round_trip(t, tbuf_new(1, 1, 8));
		tq_del(t);
	}
}

static void t_kick_flags(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t;
		struct tbuf *b[16];
		struct sim_dev *d;

		if (mode & M_EVT)
			continue;
		t = tq_new(16, mode, true);
		d = &t->dev;
		add_n(t, b, 1);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(d->kicks, 1);
		/* The device is busy: no kicks. */
		sim_dev_want_kicks(d, false);
		add_n(t, b + 1, 3);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(d->kicks, 1);
		add_n(t, b + 4, 1);
		CHECK(!revirt_vq_kick_prepare(t->vq));
		/* It wants them again. */
		sim_dev_want_kicks(d, true);
		add_n(t, b + 5, 2);
		CHECK(revirt_vq_kick_prepare(t->vq));
		CHECK(revirt_vq_notify(t->vq));
		CHECK_EQ(d->kicks, 2);
		use_and_get(t, b, 7);
		/* The avail_event field means nothing without event index. */
		sim_dev_want_kicks(d, false);
		sim_dev_set_avail_event(d, d->last_avail);
		add_n(t, b, 1);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(d->kicks, 2);
		use_and_get(t, b, 1);
		tq_del(t);
	}
}

static void t_kick_event_idx(void)
{
	unsigned int mode;

	for (mode = M_EVT; mode < M_ALL; mode++) {
		struct tq *t;
		struct tbuf *b[16];
		struct sim_dev *d;

		if (!(mode & M_EVT))
			continue;
		t = tq_new(32, mode, true);
		d = &t->dev;
		/* avail_event 0: kick when the index passes 0. */
		add_n(t, b, 1);				/* 0 -> 1 */
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(d->kicks, 1);
		add_n(t, b + 1, 2);			/* 1 -> 3 */
		CHECK(!revirt_vq_kick_prepare(t->vq));
		sim_dev_set_avail_event(d, 4);
		add_n(t, b + 3, 1);			/* 3 -> 4 */
		CHECK(!revirt_vq_kick_prepare(t->vq));
		add_n(t, b + 4, 2);			/* 4 -> 6 */
		CHECK(revirt_vq_kick_prepare(t->vq));
		sim_dev_set_avail_event(d, 6);
		add_n(t, b + 6, 3);			/* 6 -> 9 */
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(d->kicks, 2);
		sim_dev_set_avail_event(d, 10);
		add_n(t, b + 9, 1);			/* 9 -> 10 */
		CHECK(!revirt_vq_kick_prepare(t->vq));
		CHECK(!revirt_vq_kick_prepare(t->vq));	/* nothing added */
		/* The NO_NOTIFY flag means nothing with event index. */
		sim_dev_set_avail_event(d, 10);
		__atomic_store_n(&d->vr.used->flags,
				 __cpu_to_virtio16(d->le, VRING_USED_F_NO_NOTIFY),
				 __ATOMIC_RELAXED);
		add_n(t, b + 10, 1);			/* 10 -> 11 */
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(d->kicks, 3);
		use_and_get(t, b, 11);
		tq_del(t);
	}
}

/*
 * More adds between two kicks than the 16-bit index can count: the device
 * asked for a kick at avail index 5 and went to sleep; the driver added
 * 65536 buffers (a polling device used them) and then kicks.  Index 5 was
 * passed, so the device must be notified.
 */
static void t_kick_after_65536_adds(void)
{
	unsigned int mode, i, extra;

	for (mode = M_EVT; mode < M_ALL; mode++) {
		if (!(mode & M_EVT) || (mode & M_IND))
			continue;
		for (extra = 0; extra < 2; extra++) {
			struct tq *t = tq_new(4, mode, true);
			struct tbuf *b = tbuf_new(0, 1, 4);
			struct sim_dev *d = &t->dev;

			sim_dev_set_avail_event(d, 5);
			for (i = 0; i < 65536 + extra; i++) {
				CHECK_EQ(tq_add(t, b), 0);
				CHECK_EQ(sim_dev_process(d, 1), 1);
				tq_get_expect(t, b);
			}
			CHECK_EQ(d->kicks, 0);
			CHECK(revirt_vq_kick(t->vq));
			if (d->kicks != 1) {
				fail_soft("%s: %u adds passed avail_event but no kick",
					  mode_name(mode), 65536 + extra);
				fail_hard();
			}
			tq_del(t);
		}
	}
}

static void t_irq_flags(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t;
		struct tbuf *b[16];
		struct sim_dev *d;

		if (mode & M_EVT)
			continue;
		t = tq_new(16, mode, true);
		d = &t->dev;
		add_n(t, b, 1);
		CHECK_EQ(sim_dev_process(d, ~0U), 1);
		CHECK_EQ(d->irqs, 1);
		CHECK_EQ(tq_callbacks(t), 1);
		tq_get_expect(t, b[0]);

		revirt_vq_disable_cb(t->vq);
		CHECK(sim_dev_avail_flags(d) & VRING_AVAIL_F_NO_INTERRUPT);
		add_n(t, b, 2);
		CHECK_EQ(sim_dev_process(d, 1), 1);
		CHECK_EQ(sim_dev_process(d, 1), 1);
		CHECK_EQ(d->irqs, 1);
		CHECK_EQ(tq_callbacks(t), 1);
		/* Buffers were used meanwhile: enable_cb says so. */
		CHECK(!revirt_vq_enable_cb(t->vq));
		CHECK(!(sim_dev_avail_flags(d) & VRING_AVAIL_F_NO_INTERRUPT));
		tq_get_expect(t, b[0]);
		tq_get_expect(t, b[1]);
		CHECK(revirt_vq_enable_cb(t->vq));
		add_n(t, b, 1);
		CHECK_EQ(sim_dev_process(d, ~0U), 1);
		CHECK_EQ(d->irqs, 2);
		CHECK_EQ(tq_callbacks(t), 2);
		tq_get_expect(t, b[0]);
		/* Nothing used: the interrupt is not ours. */
		CHECK_EQ(revirt_vring_interrupt(0, t->vq), IRQ_NONE);
		CHECK_EQ(tq_callbacks(t), 2);
		tq_del(t);
	}
}

static void t_irq_event_idx(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t;
		struct tbuf *b[16];
		struct sim_dev *d;
		unsigned long irqs;
		unsigned int i;

		if (!(mode & M_EVT))
			continue;
		t = tq_new(16, mode, true);
		d = &t->dev;
		add_n(t, b, 1);
		CHECK_EQ(sim_dev_process(d, ~0U), 1);
		CHECK_EQ(d->irqs, 1);
		tq_get_expect(t, b[0]);
		CHECK_EQ(sim_dev_used_event(d), 1);
		add_n(t, b, 1);
		CHECK_EQ(sim_dev_process(d, ~0U), 1);
		CHECK_EQ(d->irqs, 2);
		CHECK_EQ(tq_callbacks(t), 2);
		tq_get_expect(t, b[0]);
		CHECK_EQ(sim_dev_used_event(d), 2);

		revirt_vq_disable_cb(t->vq);
		add_n(t, b, 3);
		for (i = 0; i < 3; i++)
			CHECK_EQ(sim_dev_process(d, 1), 1);
		/*
		 * disable_cb() only stops moving used_event, so the device may
		 * still interrupt once for the event it was given before.
		 */
		CHECK(d->irqs - 2 <= 1);
		if (d->irqs - 2)
			diag("%s: one interrupt after disable_cb()",
			     mode_name(mode));
		irqs = d->irqs;
		for (i = 0; i < 3; i++)
			tq_get_expect(t, b[i]);
		CHECK_EQ(sim_dev_used_event(d), 2);	/* not advanced */
		add_n(t, b, 2);
		CHECK_EQ(sim_dev_process(d, 1), 1);
		CHECK_EQ(sim_dev_process(d, 1), 1);
		CHECK_EQ(d->irqs, irqs);
		CHECK(!revirt_vq_enable_cb(t->vq));
		CHECK_EQ(sim_dev_used_event(d), 5);
		tq_get_expect(t, b[0]);
		tq_get_expect(t, b[1]);
		CHECK(revirt_vq_enable_cb(t->vq));
		CHECK_EQ(sim_dev_used_event(d), 7);
		add_n(t, b, 1);
		CHECK_EQ(sim_dev_process(d, ~0U), 1);
		CHECK_EQ(d->irqs, irqs + 1);
		CHECK_EQ(tq_callbacks(t), irqs + 1);
		tq_get_expect(t, b[0]);
		tq_del(t);
	}
}

static void t_no_callback(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(4, mode, false);
		struct tbuf *b;

		if (!(mode & M_EVT))
			CHECK(sim_dev_avail_flags(&t->dev) &
			      VRING_AVAIL_F_NO_INTERRUPT);
		b = tbuf_new(1, 1, 4);
		CHECK_EQ(tq_add(t, b), 0);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_process(&t->dev, 1), 1);
		/* No callback to run, whatever the device did. */
		CHECK_EQ(revirt_vring_interrupt(0, t->vq), IRQ_HANDLED);
		tq_get_expect(t, b);
		tq_del(t);
	}
}

/* ---- 16-bit index wrap ------------------------------------------------- */

static void wrap_test(unsigned int num, unsigned int mode, unsigned long rounds)
{
	struct tq *t = tq_new(num, mode, true);
	struct sim_dev *d = &t->dev;
	struct tbuf **pool = tmem(2 * num * sizeof(*pool));
	struct tbuf **inflight = tmem(num * sizeof(*inflight));
	unsigned long done = 0, kicks = 0;
	unsigned int i, npool = 2 * num;

	for (i = 0; i < npool; i++)
		pool[i] = (i & 1) || num == 1 ? tbuf_new(0, 1, 4) :
						 tbuf_new(1, 1, 4);
	while (done < rounds) {
		unsigned int want = 1 + rnd() % num, n = 0, k;
		bool wants_kick = rnd() & 1;
		unsigned long before = d->kicks, irqs;

		sim_dev_want_kicks(d, wants_kick);
		for (i = 0; i < npool && n < want; i++) {
			struct tbuf *b = pool[(done + i) % npool];

			if (b->busy)
				continue;
			tbuf_fill(b, done + n);
			if (tq_add(t, b) == -ENOSPC)
				break;
			CHECK(b->busy);
			inflight[n++] = b;
		}
		CHECK(n > 0);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(d->kicks - before, wants_kick);
		kicks += wants_kick;
		irqs = d->irqs;
		if (rnd() & 1) {
			CHECK_EQ(sim_dev_process(d, ~0U), n);
		} else {
			u16 h[4];
			u32 l[4];

			/* Reverse order, in two publishes. */
			for (k = 0; k < n; k++)
				CHECK_EQ(sim_dev_pop(d, &h[k], &l[k]), 1);
			for (k = n; k-- > 0;) {
				sim_dev_push(d, h[k], l[k]);
				if (k == n / 2)
					sim_dev_publish(d);
			}
			sim_dev_publish(d);
			for (k = 0; k < n / 2; k++) {
				struct tbuf *x = inflight[k];

				inflight[k] = inflight[n - 1 - k];
				inflight[n - 1 - k] = x;
			}
		}
		/*
		 * get_buf() asked for the next interrupt: it came; with event
		 * index only once for both publishes (nothing was taken back
		 * in between), without it once per publish.
		 */
		if (d->event_idx)
			CHECK_EQ(d->irqs, irqs + 1);
		else
			CHECK(d->irqs > irqs);
		for (k = 0; k < n; k++)
			tq_get_expect(t, inflight[k]);
		done += n;
	}
	CHECK_EQ(__virtio16_to_cpu(d->le, d->vr.avail->idx), (u16)done);
	CHECK_EQ(__virtio16_to_cpu(d->le, d->vr.used->idx), (u16)done);
	CHECK_EQ(d->kicks, kicks);
	CHECK_EQ(tq_callbacks(t), d->irqs);
	tq_del(t);
}

static void t_wrap(void)
{
	unsigned long rounds = 66000;
	unsigned int mode;

	rnd_state = 42;
	for (mode = 0; mode < M_ALL; mode++)
		wrap_test(4, mode, rounds);
	wrap_test(1, 0, rounds);
	wrap_test(2, M_EVT | M_IND | M_BE, rounds);
}

/*
 * The largest ring, filled to the last descriptor three times: the 16-bit
 * indices pass 65536 with every descriptor in flight (the used index then
 * moves by exactly the ring size, the most a device may move it).  The
 * fourth fill is left on the ring, half of it used and published, and the
 * device is reset: every buffer comes back once.
 */
static void full_wrap(unsigned int mode)
{
	const unsigned int num = 32768;
	struct tq *t = tq_new(num, mode, true);
	struct sim_dev *d = &t->dev;
	struct tbuf **b = tmem(num * sizeof(*b));
	unsigned int fill, i;

	/* One descriptor each: one entry, or two in an indirect table. */
	for (i = 0; i < num; i++)
		b[i] = mode & M_IND ? tbuf_new(1, 1, 2) :
		       i & 1 ? tbuf_new(0, 1, 4) : tbuf_new(1, 0, 4);
	for (fill = 0; fill < 4; fill++) {
		for (i = 0; i < num; i++) {
			tbuf_fill(b[i], (u64)fill * num + i);
			CHECK_EQ(tq_add(t, b[i]), 0);
		}
		CHECK_EQ(t->vq->num_free, 0);
		CHECK_EQ(tq_add(t, tbuf_new(1, 0, 1)), -ENOSPC);
		CHECK(revirt_vq_kick(t->vq));
		if (fill == 3)
			break;
		CHECK_EQ(sim_dev_process(d, ~0U), num);
		for (i = 0; i < num; i++)
			tq_get_expect(t, b[i]);
		CHECK_EQ(t->vq->num_free, num);
	}
	CHECK_EQ(__virtio16_to_cpu(d->le, d->vr.avail->idx), (u16)(4 * num));
	CHECK_EQ(__virtio16_to_cpu(d->le, d->vr.used->idx), (u16)(3 * num));
	/* Half used and published, one taken back, then the reset. */
	CHECK_EQ(sim_dev_process(d, num / 2), num / 2);
	tq_get_expect(t, b[0]);
	CHECK_EQ(detach_all(t, b, num), num - 1);
	tq_del(t);
}

static void t_full_wrap_max(void)
{
	if (quick) {
		full_wrap(0);
		return;
	}
	full_wrap(M_EVT);
	full_wrap(M_IND | M_EVT | M_BE);
}

/* ---- reset, detach and delete ------------------------------------------ */

static void t_detach_after_reset(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(16, mode, true);
		struct tbuf *b[16];
		unsigned int n = 0, i, len;
		u16 h;
		u32 l;

		for (i = 0; i < 16; i++) {
			struct tbuf *x = tbuf_new(i % 3, 1 + i % 2, 4 + i);

			if (tq_add(t, x))
				break;
			b[n++] = x;
		}
		CHECK(n >= 4);
		CHECK(revirt_vq_kick(t->vq));
		/* Two used and published, one taken back by the driver. */
		CHECK_EQ(sim_dev_process(&t->dev, 2), 2);
		CHECK(revirt_vq_get_buf(t->vq, &len) == b[0]);
		b[0]->busy = false;
		/* One taken by the device, never returned. */
		CHECK_EQ(sim_dev_pop(&t->dev, &h, &l), 1);
		/* The device is reset: every other buffer comes back once. */
		CHECK_EQ(detach_all(t, b, n), n - 1);
		tq_del(t);
	}
}

/* Buffers never made known to the device can all be taken back. */
static void t_detach_before_kick(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(8, mode, true);
		struct tbuf *b[3];
		unsigned int i;

		for (i = 0; i < 3; i++)
			CHECK_EQ(tq_add(t, b[i] = tbuf_new(1, 1, 4)), 0);
		CHECK_EQ(detach_all(t, b, 3), 3);
		t->dev.stopped = false;
		/* The ring is as new: the device sees only what follows. */
		for (i = 0; i < 3; i++)
			round_trip(t, b[i]);
		CHECK_EQ(t->dev.popped, 3);
		tq_del(t);
	}
}

static void t_del_with_buffers(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(8, mode, true);
		char want[128];

		CHECK_EQ(tq_add(t, tbuf_new(2, 2, 8)), 0);
		CHECK_EQ(tq_add(t, tbuf_new(1, 0, 8)), 0);
		CHECK_EQ(tq_add(t, tbuf_new(0, 3, 8)), 0);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_process(&t->dev, 1), 1);
		t->dev.stopped = true;
		tq_del(t);
		CHECK_EQ(shim.dev_warn, mode + 1);
		snprintf(want, sizeof(want),
			 "revirt: queue tq freed with 3 buffers not reclaimed");
		CHECK_STR(shim.last_msg, want);
	}
	expect_log(0, M_ALL, 0);
}

/* ---- error paths ------------------------------------------------------- */

static void t_map_failure(void)
{
	unsigned int mode, k;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t;
		struct tbuf *b, *one;
		unsigned int total, calls, nf;
		u16 h1;
		u32 l1;

		if (mode & M_IND)
			continue;
		t = tq_new(8, mode, true);
		/* The free list does not start at 0 any more. */
		one = tbuf_new(1, 0, 8);
		round_trip(t, one);
		CHECK_EQ(tq_add(t, one), 0);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_pop(&t->dev, &h1, &l1), 1);
		b = tbuf_new2(2, 2, 3, 2, 8);
		total = 5;
		for (k = 1; k <= total; k++) {
			nf = t->vq->num_free;
			shim_fail_map_nth(k);
			CHECK_EQ(tq_add(t, b), -ENOMEM);
			CHECK_EQ(shim.maps_live, 1);
			CHECK_EQ(t->vq->num_free, nf);
			CHECK_EQ(sim_dev_avail_pending(&t->dev), 0);
		}
		shim_fail_map_nth(0);
		/* Every descriptor is still usable. */
		calls = shim.map_calls;
		round_trip(t, b);
		CHECK_EQ(shim.map_calls - calls, total);
		sim_dev_push(&t->dev, h1, l1);
		sim_dev_publish(&t->dev);
		tq_get_expect(t, one);
		round_trip(t, tbuf_new2(4, 2, 4, 2, 3));
		tq_del(t);
	}
}

static void t_map_failure_indirect(void)
{
	unsigned int mode, k;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t;
		struct tbuf *b, *fill[8];
		unsigned int nf, fell_back = 0;
		long kmallocs;

		if (!(mode & M_IND))
			continue;
		t = tq_new(8, mode, true);
		b = tbuf_new2(2, 2, 2, 1, 8);	/* 4 entries + the table */
		kmallocs = shim.kmalloc_live;

		/* Mapping keeps failing: -ENOMEM, nothing left behind. */
		for (k = 1; k <= 5; k++) {
			shim_fail_map_from(k);
			CHECK_EQ(tq_add(t, b), -ENOMEM);
			CHECK_EQ(shim.maps_live, 0);
			CHECK_EQ(shim.kmalloc_live, kmallocs);
			CHECK_EQ(t->vq->num_free, 8);
		}
		/* One failure: either -ENOMEM or a consistent direct chain. */
		for (k = 1; k <= 5; k++) {
			int err;

			shim_fail_map_nth(k);
			err = tq_add(t, b);
			shim_fail_map_nth(0);
			if (err) {
				CHECK_EQ(err, -ENOMEM);
				CHECK_EQ(shim.maps_live, 0);
				CHECK_EQ(t->vq->num_free, 8);
				continue;
			}
			fell_back++;
			CHECK_EQ(t->vq->num_free, 4);
			CHECK_EQ(shim.maps_live, 4);
			CHECK(revirt_vq_kick(t->vq));
			CHECK_EQ(sim_dev_process(&t->dev, 1), 1);
			CHECK(!t->dev.last_indirect);
			tq_get_expect(t, b);
			CHECK_EQ(t->vq->num_free, 8);
		}
		if (fell_back)
			diag("%s: %u of 5 single mapping failures retried with direct descriptors",
			     mode_name(mode), fell_back);
		/* No room for a direct retry: -ENOMEM. */
		for (k = 0; k < 6; k++)
			CHECK_EQ(tq_add(t, fill[k] = tbuf_new(1, 0, 4)), 0);
		nf = t->vq->num_free;
		shim_fail_map_nth(1);
		CHECK_EQ(tq_add(t, b), -ENOMEM);
		CHECK_EQ(t->vq->num_free, nf);
		CHECK_EQ(shim.maps_live, 6);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_process(&t->dev, ~0U), 6);
		for (k = 0; k < 6; k++)
			tq_get_expect(t, fill[k]);
		round_trip(t, b);
		tq_del(t);
	}
}

static void t_indirect_alloc_failure(void)
{
	unsigned int mode, k;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t;
		struct tbuf *b, *fill[8];
		unsigned long allocs;
		long kmallocs;

		if (!(mode & M_IND))
			continue;
		t = tq_new(8, mode, true);
		b = tbuf_new2(2, 2, 2, 2, 8);
		kmallocs = shim.kmalloc_live;

		/* No memory for the table: a direct chain instead. */
		shim_fail_alloc_nth(1);
		CHECK_EQ(tq_add(t, b), 0);
		CHECK_EQ(t->vq->num_free, 4);
		CHECK_EQ(shim.kmalloc_live, kmallocs);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_process(&t->dev, 1), 1);
		CHECK(!t->dev.last_indirect);
		CHECK_EQ(t->dev.last_nseg, 4);
		tq_get_expect(t, b);
		CHECK_EQ(t->vq->num_free, 8);

		/* And with the table it is one descriptor again. */
		round_trip(t, b);
		/* The small table is kept: the next one costs no allocation. */
		CHECK_EQ(shim.kmalloc_live, kmallocs + 1);
		allocs = shim.alloc_calls;
		round_trip(t, b);
		CHECK_EQ(shim.alloc_calls, allocs);

		/*
		 * No room for the fallback: -ENOMEM, nothing mapped.  A table
		 * of six entries is too big to be kept, so it is allocated.
		 */
		for (k = 0; k < 6; k++)
			CHECK_EQ(tq_add(t, fill[k] = tbuf_new(0, 1, 4)), 0);
		shim_fail_alloc_nth(1);
		CHECK_EQ(tq_add(t, tbuf_new2(3, 2, 3, 2, 8)), -ENOMEM);
		CHECK_EQ(shim.maps_live, 6);
		CHECK_EQ(t->vq->num_free, 2);
		CHECK_EQ(tq_add(t, b), 0);
		CHECK_EQ(t->vq->num_free, 1);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_process(&t->dev, ~0U), 7);
		for (k = 0; k < 6; k++)
			tq_get_expect(t, fill[k]);
		tq_get_expect(t, b);
		tq_del(t);
	}
}

/*
 * Small indirect tables are kept for reuse, as many as the ring has
 * descriptors but at most 256; bigger ones are freed at once, and
 * deleting the queue frees what is kept (the harness checks that nothing
 * leaks).
 */
static void t_indirect_tables_kept(void)
{
	unsigned int mode, i, round;

	for (mode = 0; mode < M_ALL; mode++) {
		const unsigned int n = 300;
		struct tbuf **b = tmem(n * sizeof(*b)), *big;
		unsigned long allocs;
		long kmallocs;
		struct tq *t;

		if (!(mode & M_IND))
			continue;
		t = tq_new(512, mode, true);
		kmallocs = shim.kmalloc_live;
		for (i = 0; i < n; i++)
			b[i] = tbuf_new(1 + i % 3, 1, 4);	/* 2 to 4 entries */
		for (round = 0; round < 2; round++) {
			allocs = shim.alloc_calls;
			for (i = 0; i < n; i++)
				CHECK_EQ(tq_add(t, b[i]), 0);
			/* All allocated the first time, then 256 are kept. */
			CHECK_EQ(shim.alloc_calls - allocs,
				 round ? n - 256 : n);
			CHECK_EQ(t->vq->num_free, 512 - n);
			CHECK(revirt_vq_kick(t->vq));
			CHECK_EQ(sim_dev_process(&t->dev, ~0U), n);
			for (i = 0; i < n; i++)
				tq_get_expect(t, b[i]);
			CHECK_EQ(shim.kmalloc_live, kmallocs + 256);
		}
		big = tbuf_new2(3, 2, 3, 2, 4);
		allocs = shim.alloc_calls;
		round_trip(t, big);
		CHECK_EQ(shim.alloc_calls - allocs, 1);
		CHECK_EQ(shim.kmalloc_live, kmallocs + 256);
		tq_del(t);
	}
}

static void t_create_alloc_failure(void)
{
	struct revirt_vring_config cfg = {
		.num = 64,
		.align = 4096,
		.little_endian = true,
		.indirect = true,
		.dma_dev = &test_device,
		.msg_dev = &test_device,
		.notify = sim_dev_notify,
	};
	unsigned int dma, k, failures;

	/* The ring's memory: plain pages, or coherent DMA memory. */
	for (dma = 0; dma < 2; dma++) {
		cfg.use_dma_api = dma;
		failures = 0;
		for (k = 1; k < 20; k++) {
			struct revirt_virtqueue *vq;

			shim_fail_alloc_nth(k);
			vq = revirt_vring_create(&cfg, NULL, NULL, "nomem");
			shim_fail_alloc_nth(0);
			if (!IS_ERR(vq)) {
				revirt_vring_del(vq);
				break;
			}
			CHECK_EQ(PTR_ERR(vq), -ENOMEM);
			CHECK_EQ(shim.kmalloc_live, 0);
			CHECK_EQ(shim.coherent_live, 0);
			failures++;
		}
		CHECK(k < 20);
		CHECK(failures >= 2);
	}
}

/* ---- a device that lies ------------------------------------------------ */

/* Three buffers in flight on a ring of 8; the device has taken them. */
static struct tq *liar_setup(unsigned int mode, struct tbuf **b, u16 *heads)
{
	struct tq *t = tq_new(8, mode, true);
	u32 len;
	int i;

	b[0] = tbuf_new(1, 1, 16);	/* in_len 16 */
	b[1] = tbuf_new(1, 0, 16);	/* out only: in_len 0 */
	b[2] = tbuf_new(0, 1, 32);	/* in_len 32 */
	for (i = 0; i < 3; i++)
		CHECK_EQ(tq_add(t, b[i]), 0);
	CHECK(revirt_vq_kick(t->vq));
	for (i = 0; i < 3; i++)
		CHECK_EQ(sim_dev_pop(&t->dev, &heads[i], &len), 1);
	return t;
}

/* What must hold once the device lied; @pending buffers were not taken. */
static void check_broken(struct tq *t, const char *want, struct tbuf **b,
			 unsigned int pending)
{
	struct tbuf *x = tbuf_new(1, 1, 4);
	unsigned long cb, maps, irqs;
	unsigned int len;
	char msg[160];

	snprintf(msg, sizeof(msg), "revirt: queue tq broken: %s", want);
	/* The device's interrupt ran the callback; it takes the buffers. */
	CHECK(tq_callbacks(t) > 0);
	CHECK_EQ(shim.dev_err, 0);
	CHECK(revirt_vq_get_buf(t->vq, &len) == NULL);
	CHECK_EQ(shim.dev_err, 1);
	CHECK_STR(shim.last_msg, msg);
	CHECK(revirt_vq_is_broken(t->vq));
	CHECK(revirt_vq_get_buf(t->vq, &len) == NULL);
	CHECK(revirt_vq_get_buf(t->vq, &len) == NULL);
	maps = shim.map_calls;
	CHECK_EQ(tq_add(t, x), -EIO);
	CHECK_EQ(revirt_vq_add_inbuf(t->vq, x->sgs[1], 1, x, GFP_KERNEL), -EIO);
	CHECK_EQ(shim.map_calls, maps);
	CHECK(!revirt_vq_kick(t->vq));
	/* Nothing to poll for: a driver's enable_cb() loop ends. */
	CHECK(revirt_vq_enable_cb(t->vq));
	/* A broken queue runs no callback. */
	cb = tq_callbacks(t);
	irqs = t->dev.irqs;
	CHECK_EQ(revirt_vring_interrupt(0, t->vq), IRQ_HANDLED);
	sim_dev_push_raw(&t->dev, 0, 0);
	sim_dev_publish(&t->dev);
	CHECK_EQ(tq_callbacks(t), cb);
	(void)irqs;
	/* Still one message, however often it is poked. */
	CHECK(revirt_vq_get_buf(t->vq, &len) == NULL);
	CHECK_EQ(shim.dev_err, 1);
	/* Reset: everything comes back once, nothing leaks. */
	CHECK_EQ(detach_all(t, b, 3), pending);
	tq_del(t);
	expect_log(1, 0, 0);
}

static void t_liar_id_range(void)
{
	static const u32 ids[] = { 8, 9, 0xffff, 0x10000, 0xffffffff };
	unsigned int mode, i;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		for (mode = 0; mode < M_ALL; mode++) {
			struct tbuf *b[3];
			u16 h[3];
			struct tq *t = liar_setup(mode, b, h);
			char want[96];

			shim_reset();
			sim_dev_push_raw(&t->dev, ids[i], 0);
			sim_dev_publish(&t->dev);
			snprintf(want, sizeof(want),
				 "used id %u out of range (ring size 8)", ids[i]);
			check_broken(t, want, b, 3);
		}
}

static void t_liar_id_not_in_flight(void)
{
	unsigned int mode, id;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tbuf *b[3];
		u16 h[3];
		struct tq *t = liar_setup(mode, b, h);
		char want[96];

		/* A descriptor that is not the head of a buffer. */
		for (id = 0; id < 8; id++)
			if (id != h[0] && id != h[1] && id != h[2])
				break;
		shim_reset();
		sim_dev_push_raw(&t->dev, id, 0);
		sim_dev_publish(&t->dev);
		snprintf(want, sizeof(want), "used id %u not in flight", id);
		check_broken(t, want, b, 3);
	}
}

static void t_liar_id_twice(void)
{
	unsigned int mode, len;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tbuf *b[3];
		u16 h[3];
		struct tq *t = liar_setup(mode, b, h);
		char want[96];

		shim_reset();
		sim_dev_push(&t->dev, h[0], 16);
		sim_dev_push_raw(&t->dev, h[0], 16);
		sim_dev_publish(&t->dev);
		CHECK(revirt_vq_get_buf(t->vq, &len) == b[0]);
		tbuf_verify(b[0], len, ~0U);
		snprintf(want, sizeof(want), "used id %u not in flight", h[0]);
		check_broken(t, want, b, 2);
	}
}

static void t_liar_len(void)
{
	static const struct { unsigned int buf; u32 len, limit; } cases[] = {
		{ 0, 17, 16 }, { 1, 1, 0 }, { 2, 33, 32 }, { 2, 0xffffffff, 32 },
	};
	unsigned int mode, i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (mode = 0; mode < M_ALL; mode++) {
			struct tbuf *b[3];
			u16 h[3];
			struct tq *t = liar_setup(mode, b, h);
			char want[96];

			shim_reset();
			sim_dev_push_raw(&t->dev, h[cases[i].buf], cases[i].len);
			sim_dev_publish(&t->dev);
			snprintf(want, sizeof(want),
				 "used length %u beyond the %u writable bytes",
				 cases[i].len, cases[i].limit);
			check_broken(t, want, b, 3);
		}
}

static void t_liar_used_idx(void)
{
	static const u16 moves[] = { 4, 5, 8, 9, 0x8000, 0xffff };
	unsigned int mode, i;

	for (i = 0; i < sizeof(moves) / sizeof(moves[0]); i++)
		for (mode = 0; mode < M_ALL; mode++) {
			struct tbuf *b[3];
			u16 h[3];
			struct tq *t = liar_setup(mode, b, h);
			char want[96];

			shim_reset();
			sim_dev_push(&t->dev, h[0], 0);
			sim_dev_push(&t->dev, h[1], 0);
			sim_dev_push(&t->dev, h[2], 0);
			sim_dev_set_used_idx(&t->dev, moves[i]);
			revirt_vring_interrupt(0, t->vq);
			snprintf(want, sizeof(want),
				 "used index moved by %u with 3 buffers in flight",
				 moves[i]);
			check_broken(t, want, b, 3);
		}
}

static void t_notify_failure(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(8, mode, true);
		struct tbuf *b[3];

		b[0] = tbuf_new(1, 1, 8);
		b[1] = tbuf_new(1, 1, 8);
		b[2] = tbuf_new(1, 1, 8);
		CHECK_EQ(tq_add(t, b[0]), 0);
		t->dev.gone = true;
		CHECK(!revirt_vq_kick(t->vq));
		CHECK(revirt_vq_is_broken(t->vq));
		CHECK_EQ(tq_add(t, b[1]), -EIO);
		CHECK(!revirt_vq_notify(t->vq));
		CHECK_EQ(t->dev.kicks, 1);
		CHECK_EQ(detach_all(t, b, 3), 1);
		tq_del(t);
	}
}

/* The test knob offers a head no device can use; nothing else changes. */
static void t_inject_bad_head(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(8, mode, true);
		struct tbuf *b = tbuf_new(1, 1, 4);
		u16 h;
		u32 l;

		CHECK_EQ(tq_add(t, b), 0);
		revirt_vq_inject_bad_head(t->vq);
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(t->dev.kicks, 1);
		CHECK_EQ(sim_dev_pop(&t->dev, &h, &l), 1);
		CHECK_EQ(sim_dev_pop(&t->dev, &h, &l), -1);
		CHECK_STR(t->dev.error, "avail entry 1: head 8 out of range");
		t->dev.errors = 0;		/* expected */
		CHECK_EQ(t->vq->num_free, 8 - descs_for(t, b));
		/* Reset: only the real buffer comes back. */
		CHECK_EQ(detach_all(t, &b, 1), 1);
		tq_del(t);
	}
}

static void t_mark_broken(void)
{
	unsigned int mode, len;

	for (mode = 0; mode < M_ALL; mode++) {
		struct tq *t = tq_new(8, mode, true);
		struct tbuf *b[3];

		b[0] = tbuf_new(1, 1, 8);
		b[1] = tbuf_new(0, 2, 8);
		b[2] = tbuf_new(1, 1, 8);
		CHECK_EQ(tq_add(t, b[0]), 0);
		CHECK_EQ(tq_add(t, b[1]), 0);
		CHECK(revirt_vq_kick(t->vq));
		revirt_vq_mark_broken(t->vq);
		CHECK(revirt_vq_is_broken(t->vq));
		CHECK_EQ(sim_dev_process(&t->dev, ~0U), 2);
		CHECK_EQ(tq_callbacks(t), 0);
		CHECK_EQ(revirt_vring_interrupt(0, t->vq), IRQ_HANDLED);
		CHECK_EQ(tq_callbacks(t), 0);
		CHECK(revirt_vq_get_buf(t->vq, &len) == NULL);
		CHECK_EQ(tq_add(t, b[2]), -EIO);
		CHECK_EQ(detach_all(t, b, 3), 2);
		tq_del(t);
	}
}

/* ---- byte order -------------------------------------------------------- */

static void raw_eq(const void *p, const u8 *want, size_t n, const char *what)
{
	if (memcmp(p, want, n)) {
		const u8 *q = p;
		char got[64] = "", exp[64] = "";
		size_t i;

		for (i = 0; i < n; i++) {
			snprintf(got + 3 * i, 4, "%02x ", q[i]);
			snprintf(exp + 3 * i, 4, "%02x ", want[i]);
		}
		fail_soft("%s: bytes %s, want %s", what, got, exp);
		fail_hard();
	}
}

static void t_byte_order(void)
{
	unsigned int mode;

	for (mode = 0; mode < M_ALL; mode += M_BE) {
		bool be = mode & M_BE;
		struct tq *t = tq_new(8, mode | M_EVT, true);
		struct sim_dev *d = &t->dev;
		struct tbuf *b = tbuf_new(1, 1, 16);
		u8 idx1[2] = { be ? 0 : 1, be ? 1 : 0 };
		u8 len16[4] = { be ? 0 : 16, 0, 0, be ? 16 : 0 };
		u8 next_f[2] = { be ? 0 : 1, be ? 1 : 0 };
		u8 write_f[2] = { be ? 0 : 2, be ? 2 : 0 };
		u8 addr[8];
		u64 a = (u64)(uintptr_t)b->out;
		u16 head, second;
		int i;

		for (i = 0; i < 8; i++)
			addr[i] = (u8)(a >> (be ? 56 - 8 * i : 8 * i));
		CHECK_EQ(tq_add(t, b), 0);
		head = __virtio16_to_cpu(!be, d->vr.avail->ring[0]);
		CHECK(head < 8);
		raw_eq(&d->vr.avail->idx, idx1, 2, "avail idx");
		raw_eq(&d->vr.desc[head].len, len16, 4, "desc len");
		raw_eq(&d->vr.desc[head].addr, addr, 8, "desc addr");
		raw_eq(&d->vr.desc[head].flags, next_f, 2, "desc flags");
		CHECK(revirt_vq_kick(t->vq));
		CHECK_EQ(sim_dev_process(d, 1), 1);
		second = __virtio16_to_cpu(!be, d->vr.desc[head].next);
		CHECK(second < 8);
		raw_eq(&d->vr.desc[second].flags, write_f, 2, "second desc flags");
		raw_eq(&d->vr.used->ring[0].len, len16, 4, "used len");
		tq_get_expect(t, b);
		raw_eq(&vring_used_event(&d->vr), idx1, 2, "used_event");
		tq_del(t);
	}
	/* The shim runs the ring as on a big-endian CPU (virtio_byteorder.h). */
	CHECK(!virtio_legacy_is_little_endian());
}

/* ---- threads ----------------------------------------------------------- */

struct treq {
	u64 out, in;
	struct scatterlist sg[2];
	struct scatterlist *sgs[2];
	u64 seq;
	struct treq *next_free;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void threaded(unsigned int num, unsigned int mode, unsigned int batch,
		     bool poll, unsigned long rounds)
{
	struct tq *t = tq_new(num, mode, true);
	struct treq *reqs = tmem(batch * sizeof(*reqs)), *free_list = NULL;
	unsigned long sent = 0, done = 0, waits = 0;
	unsigned int i, inflight = 0;
	double start = now(), last_progress = start;

	for (i = 0; i < batch; i++) {
		struct treq *r = &reqs[i];

		sg_init_one(&r->sg[0], &r->out, sizeof(r->out));
		sg_init_one(&r->sg[1], &r->in, sizeof(r->in));
		r->sgs[0] = &r->sg[0];
		r->sgs[1] = &r->sg[1];
		r->next_free = free_list;
		free_list = r;
	}
	revirt_vq_disable_cb(t->vq);
	CHECK_EQ(sim_dev_start(&t->dev, batch), 0);

	while (done < rounds) {
		unsigned int len, got = 0;
		struct treq *r;

		while (free_list && sent < rounds) {
			r = free_list;
			free_list = r->next_free;
			r->seq = sent++;
			r->out = r->seq * 0x9e3779b97f4a7c15ULL;
			r->in = 0;
			CHECK_EQ(revirt_vq_add_sgs(t->vq, r->sgs, 1, 1, r,
						   GFP_ATOMIC), 0);
			inflight++;
		}
		CHECK(revirt_vq_kick(t->vq));
		while ((r = revirt_vq_get_buf(t->vq, &len))) {
			if (r->seq != done || len != 8 ||
			    r->in != (r->out ^ 0x5a5a5a5a5a5a5a5aULL)) {
				fail_soft("completion %lu: seq %llu, len %u, data %#llx for %#llx",
					  done, (unsigned long long)r->seq, len,
					  (unsigned long long)r->in,
					  (unsigned long long)r->out);
				fail_hard();
			}
			done++;
			inflight--;
			got++;
			r->next_free = free_list;
			free_list = r;
		}
		if (got) {
			last_progress = now();
			continue;
		}
		CHECK(!t->dev.errors);
		if (poll) {
			sched_yield();
			if (!(++waits & 1023) && now() - last_progress > 5) {
				fail_soft("no progress for 5s (%lu done, %u in flight)",
					  done, inflight);
				fail_hard();
			}
			continue;
		} else {
			unsigned long seen = tq_callbacks(t);
			struct timespec ts;

			if (!revirt_vq_enable_cb(t->vq)) {
				revirt_vq_disable_cb(t->vq);
				continue;
			}
			waits++;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 5;
			pthread_mutex_lock(&t->lock);
			while (tq_callbacks(t) == seen)
				if (pthread_cond_timedwait(&t->cond, &t->lock,
							   &ts) == ETIMEDOUT)
					break;
			pthread_mutex_unlock(&t->lock);
			revirt_vq_disable_cb(t->vq);
			if (tq_callbacks(t) == seen) {
				fail_soft("lost interrupt (%lu done, %u in flight, %lu lost kicks)",
					  done, inflight, t->dev.lost_kicks);
				fail_hard();
			}
		}
	}
	sim_dev_stop(&t->dev);
	CHECK_EQ(t->dev.lost_kicks, 0);
	CHECK_EQ(t->dev.errors, 0);
	CHECK_EQ(t->vq->num_free, num);
	diag("%lu round trips, batch %u, %s, %s: %.2fs, %lu kicks, %lu interrupts (%lu suppressed), %lu %s",
	     rounds, batch, mode_name(mode), poll ? "polling" : "waiting",
	     now() - start, t->dev.kicks, t->dev.irqs, t->dev.irqs_suppressed,
	     waits, poll ? "idle polls" : "waits");
	tq_del(t);
}

static unsigned long thread_rounds(void)
{
	return quick ? 20000 : 1000000;
}

static void t_thread_1(void)
{
	threaded(8, M_EVT, 1, true, thread_rounds());
}

static void t_thread_16(void)
{
	threaded(32, M_BE, 16, false, thread_rounds());
}

static void t_thread_256(void)
{
	threaded(256, M_IND | M_EVT, 256, false, thread_rounds());
}

/* ---- main -------------------------------------------------------------- */

static void run(const char *name, void (*fn)(void), const char *filter,
		bool list)
{
	char why[SHIM_MSG_MAX + 64];

	if (filter && !strstr(name, filter))
		return;
	if (list) {
		printf("%s\n", name);
		return;
	}
	n_run++;
	shim_reset();
	expect_log(0, 0, 0);
	test_failed = false;
	rnd_state = 0x9e3779b97f4a7c15ULL;
	if (!setjmp(test_env))
		fn();
	tq_cleanup_all();
	tmem_free_all();
	if (!test_failed) {
		if (shim.dev_err != exp_err || shim.dev_warn != exp_warn ||
		    shim.warn_on != exp_warn_on)
			fail_soft("messages: %lu errors, %lu warnings, %lu WARN_ON (want %lu, %lu, %lu); last: %s",
				  shim.dev_err, shim.dev_warn, shim.warn_on,
				  exp_err, exp_warn, exp_warn_on,
				  shim.last_msg);
	}
	if (!shim_clean(why, sizeof(why))) {
		fail_soft("%s", why);
		shim.maps_live = 0;
		shim.coherent_live = 0;
		shim.kmalloc_live = 0;
	}
	if (test_failed)
		n_failed++;
	printf("%sok - ring%s: %s\n", test_failed ? "not " : "", tag_suffix,
	       name);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static char sizes[16][32];
	const char *filter = NULL;
	bool list = false;
	char tagbuf[64];
	unsigned int i;
	int a;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--quick")) {
			quick = true;
		} else if (!strcmp(argv[a], "--list")) {
			list = true;
		} else if (!strcmp(argv[a], "--tag") && a + 1 < argc) {
			snprintf(tagbuf, sizeof(tagbuf), "[%s]", argv[++a]);
			tag_suffix = tagbuf;
		} else if (argv[a][0] == '-') {
			fprintf(stderr,
				"usage: %s [--tag NAME] [--quick] [--list] [SUBSTRING]\n",
				argv[0]);
			return 2;
		} else {
			filter = argv[a];
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	run("harness self-check", t_shim_selftest, filter, list);
	run("out-only buffers", t_out_only, filter, list);
	run("in-only buffers", t_in_only, filter, list);
	run("mixed out/in scatterlists", t_mixed, filter, list);
	run("physical addresses without the DMA API", t_physical, filter,
	    list);
	run("partial device writes", t_partial_write, filter, list);
	run("add_outbuf and add_inbuf", t_outbuf_inbuf, filter, list);
	run("add_outbuf and add_inbuf, chained lists", t_outbuf_chained,
	    filter, list);
	run("invalid arguments", t_bad_args, filter, list);
	run("invalid sizes rejected", t_invalid_sizes, filter, list);
	run("ring layout and bus addresses", t_layout, filter, list);
	for (i = 0; i < 16; i++) {
		snprintf(sizes[i], sizeof(sizes[i]), "ring size %u", 1U << i);
		size_under_test = 1U << i;
		run(sizes[i], t_size, filter, list);
	}
	run("full ring and refill", t_full_ring, filter, list);
	run("queue reset alone, resized", t_queue_reset, filter, list);
	run("out-of-order completion", t_out_of_order, filter, list);
	run("kick suppression, flags", t_kick_flags, filter, list);
	run("kick suppression, event index", t_kick_event_idx, filter, list);
	run("kick after 65536 adds", t_kick_after_65536_adds, filter, list);
	run("interrupt suppression, flags", t_irq_flags, filter, list);
	run("interrupt suppression, event index", t_irq_event_idx, filter,
	    list);
	run("no callback", t_no_callback, filter, list);
	run("16-bit index wrap", t_wrap, filter, list);
	run("full ring of 32768 across the index wrap, then reset",
	    t_full_wrap_max, filter, list);
	run("detach after reset", t_detach_after_reset, filter, list);
	run("detach before kick", t_detach_before_kick, filter, list);
	run("delete with buffers in flight", t_del_with_buffers, filter, list);
	run("mapping failure unwinds", t_map_failure, filter, list);
	run("mapping failure unwinds, indirect", t_map_failure_indirect,
	    filter, list);
	run("indirect table allocation failure", t_indirect_alloc_failure,
	    filter, list);
	run("indirect tables kept for reuse", t_indirect_tables_kept, filter,
	    list);
	run("allocation failure in create", t_create_alloc_failure, filter,
	    list);
	run("hardening: used id out of range", t_liar_id_range, filter, list);
	run("hardening: used id not in flight", t_liar_id_not_in_flight,
	    filter, list);
	run("hardening: used id returned twice", t_liar_id_twice, filter,
	    list);
	run("hardening: used length beyond writable bytes", t_liar_len,
	    filter, list);
	run("hardening: used index jump", t_liar_used_idx, filter, list);
	run("notify failure breaks the queue", t_notify_failure, filter, list);
	run("mark_broken", t_mark_broken, filter, list);
	run("inject_bad_head test knob", t_inject_bad_head, filter, list);
	run("byte order of ring fields", t_byte_order, filter, list);
	run("threads: batch 1, polling", t_thread_1, filter, list);
	run("threads: batch 16, callbacks", t_thread_16, filter, list);
	run("threads: batch 256, callbacks", t_thread_256, filter, list);
	/* the plan last: a run that stopped early has none */
	if (!list)
		printf("1..%u\n", n_run);
	return n_failed ? 1 : 0;
}
