/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A simulated virtio device for the split virtqueue of revirt_ring.c.
 *
 * It finds the ring through the bus addresses the ring reports, takes
 * buffers from the avail ring, walks their descriptors (direct and
 * indirect) checking what a strict device would check (and that every
 * buffer is mapped in the right direction), lets a handler read and
 * write the data, and returns buffers on the used ring, honouring
 * VRING_AVAIL_F_NO_INTERRUPT / used_event and setting
 * VRING_USED_F_NO_NOTIFY / avail_event.  It runs inline (the test calls
 * it) or in a thread of its own.
 */
#ifndef REVIRT_RING_DEVICE_H
#define REVIRT_RING_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <linux/types.h>
#include <linux/revirt_ring.h>
#include <uapi/linux/virtio_ring.h>

struct sim_seg {
	u8 *buf;
	u32 len;
	bool write;
};

struct sim_dev;

/* Handle one buffer; return the number of bytes written. */
typedef u32 (*sim_handler_t)(struct sim_dev *d, const struct sim_seg *seg,
			     unsigned int nseg, u32 out_bytes, u32 in_bytes);

struct sim_dev {
	struct revirt_virtqueue *vq;
	unsigned int num;
	bool le;			/* ring byte order */
	bool event_idx;
	bool indirect;			/* indirect descriptors allowed */
	bool phys;			/* physical addresses, no DMA API */
	struct vring vr;		/* as found from the bus addresses */

	u16 last_avail;			/* next avail entry to take */
	u16 used_shadow;		/* used index incl. unpublished entries */
	u16 used_pub;			/* used index the driver can see */

	sim_handler_t handler;		/* NULL: sim_echo_handler */
	u32 write_limit;		/* echo: write at most this (~0: all) */

	/* Last buffer taken (for tests). */
	u16 last_head;
	unsigned int last_nseg;
	bool last_indirect;
	u32 last_out, last_in;

	/* Descriptor ownership: owner[i] = head + 1 while i is in flight. */
	u16 *owner;
	u16 *chain_next;
	u16 *chain_len;
	struct sim_seg *seg;

	/* Counters. */
	unsigned long kicks;		/* notify() calls */
	unsigned long irqs;		/* interrupts raised */
	unsigned long irqs_suppressed;	/* publishes the driver muted */
	unsigned long popped, pushed;

	/* Protocol errors the device saw (a correct driver has none). */
	unsigned long errors;
	char error[256];

	bool gone;			/* notify() fails */
	bool stopped;			/* reset: the device does nothing */

	/* Thread mode. */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool threaded;
	bool stop;
	unsigned long kick_seq;		/* under lock */
	unsigned int batch;		/* buffers per publish in thread mode */
	unsigned long lost_kicks;	/* waits that timed out with work */
};

int sim_dev_init(struct sim_dev *d, struct revirt_virtqueue *vq,
		 const struct revirt_vring_config *cfg);
void sim_dev_exit(struct sim_dev *d);

/* The transport's notify callback (vq->priv must be the sim_dev). */
bool sim_dev_notify(struct revirt_virtqueue *vq);

/* Buffers made available and not yet taken. */
u16 sim_dev_avail_pending(struct sim_dev *d);
/* Take one buffer and run the handler: 1, 0 if none, -1 on an error. */
int sim_dev_pop(struct sim_dev *d, u16 *head, u32 *len);
/* Put a used entry (not yet visible to the driver). */
void sim_dev_push(struct sim_dev *d, u16 head, u32 len);
/* Make the pushed entries visible; interrupt if the driver wants it. */
bool sim_dev_publish(struct sim_dev *d);
/* Pop, push and publish up to @max buffers; returns how many. */
unsigned int sim_dev_process(struct sim_dev *d, unsigned int max);
/* Ask for kicks (true) or tell the driver not to kick (false). */
void sim_dev_want_kicks(struct sim_dev *d, bool want);
/* event_idx: ask for a kick when the avail index passes @idx. */
void sim_dev_set_avail_event(struct sim_dev *d, u16 idx);

/* A lying device: raw used entries and used index. */
void sim_dev_push_raw(struct sim_dev *d, u32 id, u32 len);
void sim_dev_set_used_idx(struct sim_dev *d, u16 idx);

/* Raw views, converted from the ring byte order. */
u16 sim_dev_avail_flags(struct sim_dev *d);
u16 sim_dev_used_event(struct sim_dev *d);

/* The default handler: writable bytes = readable bytes ^ 0x5a, cyclic. */
u32 sim_echo_handler(struct sim_dev *d, const struct sim_seg *seg,
		     unsigned int nseg, u32 out_bytes, u32 in_bytes);

/* Thread mode: the device polls @spin times before sleeping for a kick. */
int sim_dev_start(struct sim_dev *d, unsigned int batch);
void sim_dev_stop(struct sim_dev *d);

#endif
