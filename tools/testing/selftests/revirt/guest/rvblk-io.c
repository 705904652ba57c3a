// SPDX-License-Identifier: GPL-2.0-only
/*
 * rvblk-io: block I/O for the revirt_blk tests and "make bench", built
 * static into the guest's initramfs (scripts/mkinitramfs).
 *
 *   rvblk-io fill   DEV SEED FIRST COUNT     write pattern blocks, fsync
 *   rvblk-io verify DEV SEED FIRST COUNT     check them; print "bad N" lines
 *   rvblk-io writer DEV SEED COUNT SECS STATE
 *	rewrite blocks 0..COUNT-1 round after round with O_DIRECT|O_DSYNC for
 *	SECS seconds, DEV closed for a moment between rounds; on an error
 *	reopen DEV (a symlink the caller points at the disk) and go on;
 *	write to STATE what each block must hold
 *   rvblk-io check  DEV SEED STATE           check the device against STATE
 *   rvblk-io zeroout DEV OFFSET LEN          ioctl BLKZEROOUT
 *   rvblk-io discard DEV OFFSET LEN          ioctl BLKDISCARD
 *   rvblk-io bench  DEV randread|read|write BS QD COUNT
 *	COUNT O_DIRECT I/Os at queue depth QD with Linux AIO (raw system
 *	calls, no library); prints elapsed and busy CPU time in ns, where
 *	busy = elapsed - delta(idle + iowait sleep time of /proc/timer_list)
 *
 * A pattern block is BLK bytes: a header (magic, seed, block number,
 * generation, checksum of the rest) and bytes derived from those, so a
 * torn, stale or misplaced block is told apart from a good one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rvblk-mix.h"

#define BLK		4096
#define MAGIC		0x7276626c6b696f31ULL	/* "rvblkio1" */

struct blk_hdr {
	uint64_t magic;
	uint64_t seed;
	uint64_t block;
	uint64_t gen;
	uint64_t sum;
};

static uint64_t body_sum(const unsigned char *b)
{
	uint64_t s = 0;
	size_t i;

	for (i = sizeof(struct blk_hdr); i < BLK; i += 8) {
		uint64_t w;

		memcpy(&w, b + i, 8);
		s = mix(s ^ w);
	}
	return s;
}

static void make_block(unsigned char *b, uint64_t seed, uint64_t block,
		       uint64_t gen)
{
	struct blk_hdr h = { MAGIC, seed, block, gen, 0 };
	uint64_t x = mix(seed ^ mix(block) ^ mix(gen + 0x9e37));
	size_t i;

	for (i = sizeof(h); i < BLK; i += 8) {
		x = mix(x + i);
		memcpy(b + i, &x, 8);
	}
	h.sum = body_sum(b);
	memcpy(b, &h, sizeof(h));
}

/* -1: not a pattern block (or torn); else its generation. */
static int64_t block_gen(const unsigned char *b, uint64_t seed, uint64_t block)
{
	unsigned char want[BLK];
	struct blk_hdr h;

	memcpy(&h, b, sizeof(h));
	if (h.magic != MAGIC || h.seed != seed || h.block != block ||
	    h.sum != body_sum(b))
		return -1;
	make_block(want, seed, block, h.gen);
	if (memcmp(want, b, BLK))
		return -1;
	return (int64_t)h.gen;
}

static void *buf_alloc(size_t len)
{
	void *p;

	if (posix_memalign(&p, 4096, len)) {
		perror("posix_memalign");
		exit(2);
	}
	memset(p, 0, len);
	return p;
}

static int open_dev(const char *dev, int flags)
{
	int fd = open(dev, flags);

	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", dev, strerror(errno));
		exit(2);
	}
	return fd;
}

static int cmd_fill(const char *dev, uint64_t seed, uint64_t first,
		    uint64_t count)
{
	unsigned char *b = buf_alloc(BLK);
	int fd = open_dev(dev, O_WRONLY | O_DIRECT);
	uint64_t i;

	for (i = first; i < first + count; i++) {
		make_block(b, seed, i, 0);
		if (pwrite(fd, b, BLK, i * BLK) != BLK) {
			fprintf(stderr, "write block %llu: %s\n",
				(unsigned long long)i, strerror(errno));
			return 1;
		}
	}
	if (fsync(fd)) {
		perror("fsync");
		return 1;
	}
	printf("filled %llu blocks\n", (unsigned long long)count);
	return close(fd) ? 1 : 0;
}

static int cmd_verify(const char *dev, uint64_t seed, uint64_t first,
		      uint64_t count)
{
	unsigned char *b = buf_alloc(BLK);
	int fd = open_dev(dev, O_RDONLY | O_DIRECT);
	uint64_t i, bad = 0;

	for (i = first; i < first + count; i++) {
		if (pread(fd, b, BLK, i * BLK) != BLK) {
			fprintf(stderr, "read block %llu: %s\n",
				(unsigned long long)i, strerror(errno));
			return 1;
		}
		if (block_gen(b, seed, i) != 0 && bad++ < 10)
			printf("bad %llu\n", (unsigned long long)i);
	}
	printf("verified %llu blocks, %llu bad\n", (unsigned long long)count,
	       (unsigned long long)bad);
	return bad ? 1 : 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * State line per block: "block acked attempted": the generation the last
 * successful write put there and the one of a write that failed after it
 * (equal if none failed).  The disk must hold one of the two.
 */
static int cmd_writer(const char *dev, uint64_t seed, uint64_t count,
		      double secs, const char *state)
{
	uint64_t *acked = calloc(count, 8), *tried = calloc(count, 8);
	unsigned long long ok = 0, failed = 0, reopened = 0;
	unsigned char *b = buf_alloc(BLK);
	double end = now() + secs;
	uint64_t gen = 0, i;
	int fd = -1;
	FILE *f;

	while (now() < end) {
		gen++;
		/* Not open between rounds, so that rmmod can get through. */
		if (fd >= 0) {
			close(fd);
			fd = -1;
			usleep(10000);
		}
		for (i = 0; i < count && now() < end; i++) {
			if (fd < 0) {
				fd = open(dev, O_WRONLY | O_DIRECT | O_DSYNC);
				if (fd < 0) {
					usleep(20000);
					i--;
					continue;
				}
				reopened++;
			}
			make_block(b, seed, i, gen);
			tried[i] = gen;
			if (pwrite(fd, b, BLK, i * BLK) == BLK) {
				acked[i] = gen;
				ok++;
				continue;
			}
			failed++;
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	f = fopen(state, "w");
	if (!f) {
		perror(state);
		return 2;
	}
	for (i = 0; i < count; i++)
		fprintf(f, "%llu %llu %llu\n", (unsigned long long)i,
			(unsigned long long)acked[i],
			(unsigned long long)tried[i]);
	fclose(f);
	printf("writes ok %llu failed %llu opens %llu rounds %llu\n", ok,
	       failed, reopened, (unsigned long long)gen);
	return ok ? 0 : 1;
}

static int cmd_check(const char *dev, uint64_t seed, const char *state)
{
	unsigned long long blk, acked, tried, n = 0, bad = 0, newer = 0;
	unsigned char *b = buf_alloc(BLK);
	int fd = open_dev(dev, O_RDONLY | O_DIRECT);
	FILE *f = fopen(state, "r");

	if (!f) {
		perror(state);
		return 2;
	}
	while (fscanf(f, "%llu %llu %llu", &blk, &acked, &tried) == 3) {
		int64_t g;

		if (pread(fd, b, BLK, blk * BLK) != BLK) {
			fprintf(stderr, "read block %llu: %s\n", blk,
				strerror(errno));
			return 1;
		}
		g = block_gen(b, seed, blk);
		n++;
		if (g == (int64_t)acked)
			continue;
		if (g == (int64_t)tried) {
			newer++;	/* a failed write that reached the disk */
			continue;
		}
		if (bad++ < 10)
			printf("bad block %llu: holds generation %lld, acknowledged %llu\n",
			       blk, (long long)g, acked);
	}
	printf("checked %llu blocks: %llu bad, %llu hold a failed write\n", n,
	       bad, newer);
	return bad || !n ? 1 : 0;
}

static int cmd_range_ioctl(const char *dev, unsigned long req, uint64_t off,
			   uint64_t len)
{
	uint64_t range[2] = { off, len };
	int fd = open_dev(dev, O_WRONLY);

	if (ioctl(fd, req, range)) {
		fprintf(stderr, "ioctl: %s\n", strerror(errno));
		return 1;
	}
	return close(fd) ? 1 : 0;
}

/* ---- bench ------------------------------------------------------------- */

/* Sum of idle and iowait sleep time of every CPU, ns. */
static unsigned long long idle_ns(void)
{
	unsigned long long sum = 0, v;
	char line[256];
	FILE *f = fopen("/proc/timer_list", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " .idle_sleeptime : %llu", &v) == 1 ||
		    sscanf(line, " .iowait_sleeptime: %llu", &v) == 1)
			sum += v;
	}
	fclose(f);
	return sum;
}

static unsigned long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t rnd_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static int cmd_bench(const char *dev, const char *mode, size_t bs, int qd,
		     unsigned long long count)
{
	int wr = !strcmp(mode, "write"), random = !strcmp(mode, "randread");
	int fd = open_dev(dev, (wr ? O_WRONLY : O_RDONLY) | O_DIRECT);
	struct iocb *cbs = calloc(qd, sizeof(*cbs));
	struct iocb **ptrs = calloc(qd, sizeof(*ptrs));
	struct io_event *ev = calloc(qd, sizeof(*ev));
	unsigned long long submitted = 0, done = 0, t0, t1, i0, i1;
	unsigned long long size, nblocks, next = 0;
	char *bufs = buf_alloc(bs * qd);
	aio_context_t ctx = 0;
	int i, n;

	if (ioctl(fd, BLKGETSIZE64, &size) || size < bs) {
		fprintf(stderr, "%s: no size\n", dev);
		return 2;
	}
	nblocks = size / bs;
	if (syscall(SYS_io_setup, qd, &ctx)) {
		perror("io_setup");
		return 2;
	}
	for (i = 0; i < qd; i++) {
		cbs[i].aio_fildes = fd;
		cbs[i].aio_lio_opcode = wr ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
		cbs[i].aio_buf = (uint64_t)(uintptr_t)(bufs + i * bs);
		cbs[i].aio_nbytes = bs;
		cbs[i].aio_data = i;
	}
	i0 = idle_ns();
	t0 = mono_ns();
	/* Keep qd in flight: refill each slot as it completes. */
	for (n = 0; n < qd && submitted < count; n++)
		ptrs[n] = &cbs[n];
	while (done < count) {
		for (i = 0; i < n; i++) {
			unsigned long long blk = random ? rnd() % nblocks :
						 next++ % nblocks;

			ptrs[i]->aio_offset = blk * bs;
		}
		if (n && syscall(SYS_io_submit, ctx, n, ptrs) != n) {
			perror("io_submit");
			return 1;
		}
		submitted += n;
		n = syscall(SYS_io_getevents, ctx, 1, qd, ev, NULL);
		if (n < 0) {
			perror("io_getevents");
			return 1;
		}
		for (i = 0; i < n; i++) {
			if (ev[i].res != (long long)bs) {
				fprintf(stderr, "I/O error %lld\n",
					(long long)ev[i].res);
				return 1;
			}
			ptrs[i] = &cbs[ev[i].data];
		}
		done += n;
		if (submitted + n > count)
			n = count - submitted;
	}
	t1 = mono_ns();
	i1 = idle_ns();
	printf("bench %s bs %zu qd %d ios %llu elapsed_ns %llu busy_ns %llu\n",
	       mode, bs, qd, done, t1 - t0, (t1 - t0) - (i1 - i0));
	syscall(SYS_io_destroy, ctx);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: see the comment at the top of rvblk-io.c\n");
	exit(2);
}

static uint64_t num(const char *s)
{
	return strtoull(s, NULL, 0);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "fill") && argc == 6)
		return cmd_fill(argv[2], num(argv[3]), num(argv[4]), num(argv[5]));
	if (!strcmp(cmd, "verify") && argc == 6)
		return cmd_verify(argv[2], num(argv[3]), num(argv[4]), num(argv[5]));
	if (!strcmp(cmd, "writer") && argc == 7)
		return cmd_writer(argv[2], num(argv[3]), num(argv[4]),
				  atof(argv[5]), argv[6]);
	if (!strcmp(cmd, "check") && argc == 5)
		return cmd_check(argv[2], num(argv[3]), argv[4]);
	if (!strcmp(cmd, "zeroout") && argc == 5)
		return cmd_range_ioctl(argv[2], BLKZEROOUT, num(argv[3]), num(argv[4]));
	if (!strcmp(cmd, "discard") && argc == 5)
		return cmd_range_ioctl(argv[2], BLKDISCARD, num(argv[3]), num(argv[4]));
	if (!strcmp(cmd, "bench") && argc == 7)
		return cmd_bench(argv[2], argv[3], num(argv[4]), num(argv[5]),
				 num(argv[6]));
	usage();
	return 2;
}
