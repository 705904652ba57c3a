// SPDX-License-Identifier: GPL-2.0-only
/*
 * make bench-ring: round trips (add, kick, device uses, get_buf) per second
 * through revirt's split virtqueue and through the kernel's own
 * drivers/virtio/virtio_ring.c, both built against the same shims
 * (bench_shim.c: identity DMA mapping, malloc) and driven by the same
 * device model through the same table of function pointers.
 *
 *   bench_ring thread RING BATCH EVT IND MS    device in a second thread;
 *                                              prints buffers per second
 *   bench_ring inline RING BATCH EVT IND N     one thread, the device runs
 *                                              between the driver's calls;
 *                                              for instruction counting
 *
 * RING is "revirt" or "kernel"; EVT and IND (0/1) negotiate event index
 * and indirect descriptors.  Each buffer is one 16-byte readable and one
 * 16-byte writable entry; BENCH_IN=N in the environment makes that N
 * writable entries (up to MAX_IN), e.g. 33 for the chain of a 128 KiB
 * block request (header, 32 pages, status).  With BENCH_DMA=1 in the environment the device
 * offers VIRTIO_F_ACCESS_PLATFORM, so that both rings map buffers with the
 * DMA API; otherwise (QEMU's default devices) both give the device
 * physical addresses.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/revirt_ring.h>
#include <linux/scatterlist.h>
#include <linux/virtio_byteorder.h>
#include <uapi/linux/virtio_ring.h>

#define RING_NUM	512
#define MAX_BATCH	256
#define MAX_IN		64

/* The kernel ring's entry points (its own header clashes with ours). */
struct virtqueue;
struct virtio_device;
int virtqueue_add_sgs(struct virtqueue *vq, struct scatterlist *sgs[],
		      unsigned int out_sgs, unsigned int in_sgs, void *data,
		      gfp_t gfp);
bool virtqueue_kick(struct virtqueue *vq);
void *virtqueue_get_buf(struct virtqueue *vq, unsigned int *len);
void virtqueue_disable_cb(struct virtqueue *vq);
bool virtqueue_enable_cb(struct virtqueue *vq);
void *virtqueue_detach_unused_buf(struct virtqueue *vq);
dma_addr_t virtqueue_get_desc_addr(struct virtqueue *vq);
dma_addr_t virtqueue_get_avail_addr(struct virtqueue *vq);
dma_addr_t virtqueue_get_used_addr(struct virtqueue *vq);
irqreturn_t vring_interrupt(int irq, void *vq);
void vring_del_virtqueue(struct virtqueue *vq);
/* In kadapter.c, which sees the kernel's types. */
struct virtqueue *kadapter_create(unsigned int num, bool evt, bool ind,
				  bool dma, bool (*notify)(struct virtqueue *vq),
				  void (*callback)(struct virtqueue *vq));
void kadapter_destroy(struct virtqueue *vq);

static struct device bench_device = { .name = "bench" };
static unsigned long kicks, callbacks;
static bool bench_dma;		/* VIRTIO_F_ACCESS_PLATFORM offered */

struct ring_ops {
	void *(*create)(unsigned int num, bool evt, bool ind);
	int (*add)(void *q, struct scatterlist *sgs[], void *data);
	bool (*kick)(void *q);
	void *(*get)(void *q, unsigned int *len);
	void (*disable_cb)(void *q);
	bool (*enable_cb)(void *q);
	irqreturn_t (*interrupt)(void *q);
	void (*layout)(void *q, struct vring *vr);
	void (*destroy)(void *q);
};

/* ---- revirt ------------------------------------------------------------ */

static bool rv_notify(struct revirt_virtqueue *vq)
{
	__atomic_add_fetch(&kicks, 1, __ATOMIC_RELAXED);
	return true;
}

static void rv_callback(struct revirt_virtqueue *vq)
{
	__atomic_add_fetch(&callbacks, 1, __ATOMIC_RELAXED);
}

static void *rv_create(unsigned int num, bool evt, bool ind)
{
	struct revirt_vring_config cfg = {
		.num = num, .align = 64, .little_endian = true,
		.event_idx = evt, .indirect = ind, .weak_barriers = true,
		.use_dma_api = bench_dma, .dma_dev = &bench_device, .msg_dev = &bench_device,
		.notify = rv_notify,
	};
	struct revirt_virtqueue *vq;

	vq = revirt_vring_create(&cfg, NULL, rv_callback, "bench");
	return IS_ERR(vq) ? NULL : vq;
}

static int rv_add(void *q, struct scatterlist *sgs[], void *data)
{
	return revirt_vq_add_sgs(q, sgs, 1, 1, data, GFP_ATOMIC);
}

static bool rv_kick(void *q) { return revirt_vq_kick(q); }
static void *rv_get(void *q, unsigned int *len) { return revirt_vq_get_buf(q, len); }
static void rv_disable_cb(void *q) { revirt_vq_disable_cb(q); }
static bool rv_enable_cb(void *q) { return revirt_vq_enable_cb(q); }
static irqreturn_t rv_interrupt(void *q) { return revirt_vring_interrupt(0, q); }

static void rv_layout(void *q, struct vring *vr)
{
	vr->num = revirt_vq_get_vring_size(q);
	vr->desc = (void *)(uintptr_t)revirt_vring_desc_dma(q);
	vr->avail = (void *)(uintptr_t)revirt_vring_avail_dma(q);
	vr->used = (void *)(uintptr_t)revirt_vring_used_dma(q);
}

static void rv_destroy(void *q)
{
	while (revirt_vq_detach_unused_buf(q))
		;
	revirt_vring_del(q);
}

static const struct ring_ops revirt_ops = {
	rv_create, rv_add, rv_kick, rv_get, rv_disable_cb, rv_enable_cb,
	rv_interrupt, rv_layout, rv_destroy,
};

/* ---- the kernel's ring ------------------------------------------------- */

static bool k_notify(struct virtqueue *vq)
{
	__atomic_add_fetch(&kicks, 1, __ATOMIC_RELAXED);
	return true;
}

static void k_callback(struct virtqueue *vq)
{
	__atomic_add_fetch(&callbacks, 1, __ATOMIC_RELAXED);
}

static void *k_create(unsigned int num, bool evt, bool ind)
{
	return kadapter_create(num, evt, ind, bench_dma, k_notify, k_callback);
}

static int k_add(void *q, struct scatterlist *sgs[], void *data)
{
	return virtqueue_add_sgs(q, sgs, 1, 1, data, GFP_ATOMIC);
}

static bool k_kick(void *q) { return virtqueue_kick(q); }
static void *k_get(void *q, unsigned int *len) { return virtqueue_get_buf(q, len); }
static void k_disable_cb(void *q) { virtqueue_disable_cb(q); }
static bool k_enable_cb(void *q) { return virtqueue_enable_cb(q); }
static irqreturn_t k_interrupt(void *q) { return vring_interrupt(0, q); }

static void k_layout(void *q, struct vring *vr)
{
	vr->num = RING_NUM;
	vr->desc = (void *)(uintptr_t)virtqueue_get_desc_addr(q);
	vr->avail = (void *)(uintptr_t)virtqueue_get_avail_addr(q);
	vr->used = (void *)(uintptr_t)virtqueue_get_used_addr(q);
}

static void k_destroy(void *q)
{
	while (virtqueue_detach_unused_buf(q))
		;
	kadapter_destroy(q);
}

static const struct ring_ops kernel_ops = {
	k_create, k_add, k_kick, k_get, k_disable_cb, k_enable_cb,
	k_interrupt, k_layout, k_destroy,
};

/* ---- the device -------------------------------------------------------- */

struct bdev {
	const struct ring_ops *ops;
	void *q;
	struct vring vr;
	bool evt;
	bool polling;		/* asks for no kicks */
	u16 last_avail;
	u16 used;
	volatile int stop;
};

static u16 acquire16(__virtio16 *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}

/* Use one buffer: walk its descriptors, write the writable bytes. */
static void dev_use_one(struct bdev *d)
{
	u16 head = le16toh(d->vr.avail->ring[d->last_avail & (d->vr.num - 1)]);
	struct vring_desc *table = d->vr.desc;
	unsigned int i = head, n = 0;
	u32 written = 0;
	struct vring_used_elem *e;

	for (;;) {
		struct vring_desc *desc = &table[i];
		u16 flags = le16toh(desc->flags);

		if (flags & VRING_DESC_F_INDIRECT) {
			table = (struct vring_desc *)(uintptr_t)le64toh(desc->addr);
			i = 0;
			continue;
		}
		if (flags & VRING_DESC_F_WRITE) {
			u32 len = le32toh(desc->len);

			memset((void *)(uintptr_t)le64toh(desc->addr), 0x5a, len);
			written += len;
		}
		if (!(flags & VRING_DESC_F_NEXT) || ++n > d->vr.num)
			break;
		i = le16toh(desc->next);
	}
	e = &d->vr.used->ring[d->used & (d->vr.num - 1)];
	e->id = htole32(head);
	e->len = htole32(written);
	d->used++;
	d->last_avail++;
}

/* Publish what was used; interrupt if the driver asked for it. */
static void dev_publish(struct bdev *d, u16 old)
{
	bool need;

	__atomic_store_n(&d->vr.used->idx, htole16(d->used), __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (d->evt)
		need = vring_need_event(acquire16(&vring_used_event(&d->vr)),
					d->used, old);
	else
		need = !(acquire16(&d->vr.avail->flags) &
			 VRING_AVAIL_F_NO_INTERRUPT);
	if (need)
		d->ops->interrupt(d->q);
}

/* Take everything available; false if there was nothing. */
static bool dev_process(struct bdev *d)
{
	u16 avail = acquire16(&d->vr.avail->idx), old = d->used;

	if (avail == d->last_avail)
		return false;
	while (d->last_avail != avail)
		dev_use_one(d);
	if (d->polling && d->evt)
		/* Far from anything the driver will publish soon. */
		vring_avail_event(&d->vr) = htole16(d->last_avail + 0x8000);
	dev_publish(d, old);
	return true;
}

static void *dev_thread(void *arg)
{
	struct bdev *d = arg;
	unsigned int idle = 0;

	while (!d->stop) {
		if (dev_process(d)) {
			idle = 0;
		} else if (++idle > 64) {
			sched_yield();
			idle = 0;
		}
	}
	return NULL;
}

static void dev_init(struct bdev *d, const struct ring_ops *ops, void *q,
		     bool evt, bool polling)
{
	memset(d, 0, sizeof(*d));
	d->ops = ops;
	d->q = q;
	d->evt = evt;
	d->polling = polling;
	ops->layout(q, &d->vr);
	if (polling) {
		if (evt)
			vring_avail_event(&d->vr) = htole16(0x8000);
		else
			d->vr.used->flags = htole16(VRING_USED_F_NO_NOTIFY);
	}
}

/* ---- the driver -------------------------------------------------------- */

struct breq {
	u8 out[16], in[16 * MAX_IN];
	struct scatterlist sg[1 + MAX_IN];
	struct scatterlist *sgs[2];
};

static unsigned int n_in = 1;	/* writable entries per buffer */

static struct breq reqs[MAX_BATCH];

static void reqs_init(void)
{
	unsigned int i;

	for (i = 0; i < MAX_BATCH; i++) {
		struct breq *r = &reqs[i];

		unsigned int k;

		sg_init_one(&r->sg[0], r->out, sizeof(r->out));
		sg_init_table(&r->sg[1], n_in);
		for (k = 0; k < n_in; k++)
			sg_set_buf(&r->sg[1 + k], r->in + 16 * k, 16);
		r->sgs[0] = &r->sg[0];
		r->sgs[1] = &r->sg[1];
	}
}

static void die(const char *what)
{
	fprintf(stderr, "bench_ring: %s\n", what);
	exit(1);
}

/* The driver side of one batch; instruction counting looks only here. */
static noinline void drv_add_kick(const struct ring_ops *ops, void *q,
				  unsigned int batch)
{
	unsigned int i;

	for (i = 0; i < batch; i++)
		if (ops->add(q, reqs[i].sgs, &reqs[i]))
			die("add failed");
	if (!ops->kick(q))
		die("kick failed");
}

static noinline unsigned int drv_get(const struct ring_ops *ops, void *q)
{
	unsigned int len, n = 0;

	while (ops->get(q, &len)) {
		if (len != 16 * n_in)
			die("bad length");
		n++;
	}
	return n;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Device thread polling, driver polling: the ring's own cost. */
static double run_thread(const struct ring_ops *ops, unsigned int batch,
			 bool evt, bool ind, double secs)
{
	void *q = ops->create(RING_NUM, evt, ind);
	unsigned long done = 0;
	struct bdev d;
	pthread_t th;
	double start, end;

	if (!q)
		die("create failed");
	ops->disable_cb(q);
	dev_init(&d, ops, q, evt, true);
	if (pthread_create(&th, NULL, dev_thread, &d))
		die("pthread_create");
	start = now();
	end = start + secs;
	do {
		unsigned int i, got = 0, spins = 0;

		for (i = 0; i < 64; i++) {
			drv_add_kick(ops, q, batch);
			for (got = 0; got < batch;) {
				unsigned int n = drv_get(ops, q);

				got += n;
				if (!n && ++spins > 64) {
					sched_yield();
					spins = 0;
				}
			}
			done += batch;
		}
	} while (now() < end);
	end = now();
	d.stop = 1;
	pthread_join(th, NULL);
	ops->destroy(q);
	return done / (end - start);
}

/* One thread; the device wants kicks and the driver interrupts. */
static void run_inline(const struct ring_ops *ops, unsigned int batch,
		       bool evt, bool ind, unsigned long n)
{
	void *q = ops->create(RING_NUM, evt, ind);
	unsigned long done = 0;
	struct bdev d;

	if (!q)
		die("create failed");
	dev_init(&d, ops, q, evt, false);
	while (done < n) {
		unsigned int got;

		drv_add_kick(ops, q, batch);
		dev_process(&d);
		got = drv_get(ops, q);
		if (got != batch)
			die("lost buffers");
		done += got;
	}
	ops->destroy(q);
}

int main(int argc, char **argv)
{
	const struct ring_ops *ops;
	unsigned int batch;
	bool evt, ind;

	if (argc != 7)
		die("usage: bench_ring thread|inline revirt|kernel BATCH EVT IND MS|N");
	ops = !strcmp(argv[2], "kernel") ? &kernel_ops : &revirt_ops;
	batch = atoi(argv[3]);
	evt = atoi(argv[4]);
	ind = atoi(argv[5]);
	bench_dma = getenv("BENCH_DMA") && atoi(getenv("BENCH_DMA"));
	if (getenv("BENCH_IN"))
		n_in = atoi(getenv("BENCH_IN"));
	if (!n_in || n_in > MAX_IN)
		die("BENCH_IN out of range");
	if (!batch || batch > MAX_BATCH)
		die("batch out of range");
	reqs_init();
	if (!strcmp(argv[1], "thread"))
		printf("%.0f\n", run_thread(ops, batch, evt, ind,
					    atof(argv[6]) / 1000));
	else
		run_inline(ops, batch, evt, ind, strtoul(argv[6], NULL, 0));
	return 0;
}
