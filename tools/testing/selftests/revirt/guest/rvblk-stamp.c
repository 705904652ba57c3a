// SPDX-License-Identifier: GPL-2.0-only
/*
 * rvblk-stamp: a writer that must not notice device resets (test_35).
 *
 *   rvblk-stamp write DEV FIRST COUNT JOBS MAXSECS STOP
 *	JOBS processes share blocks FIRST..FIRST+COUNT-1 (4 KiB each), job j
 *	the j-th slice.  Each rewrites its slice round after round with
 *	O_DIRECT|O_DSYNC (so every write is followed by a flush), stamping
 *	each block with its number, the round (the generation) and a
 *	checksum, until the file STOP exists or MAXSECS passed.  A failed
 *	write is counted and tried again.  Each job prints one line:
 *	"stamp job J first F count C round R pos P writes W errors E
 *	maxlat_us L tried T": blocks F..F+P-1 were last written in round R,
 *	the others in round R-1 (0: never).  T is 1 when the job stopped
 *	after a write of block F+P failed: a failed write may still have
 *	reached the disk, so that block may hold round R as well.
 *   rvblk-stamp check DEV STATE
 *	read every block named by the "stamp job" lines of the file STATE
 *	and check it holds its last acknowledged stamp (or, for the block
 *	of a failed last write, the stamp that write carried); prints
 *	"checked N bad M" and one line per bad block.
 *
 * The stamp format is also read by the host (test_35_blkreset.py): words
 * of 64 bits, little endian: magic, block, generation, checksum, then 508
 * words derived from (block, generation); the checksum is the sum of
 * those 508 words xor the magic.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rvblk-mix.h"

#define BLK		4096
#define WORDS		(BLK / 8)
#define HDR_WORDS	4
#define MAGIC		0x72767374616d7031ULL	/* "rvstamp1" */
#define STEP		0x9e3779b97f4a7c15ULL

/* The stamp of @block in round @gen (x86: the words are little endian). */
static void stamp(uint64_t *w, uint64_t block, uint64_t gen)
{
	uint64_t x = mix(block ^ (gen << 40) ^ MAGIC), sum = 0;
	unsigned int i;

	for (i = HDR_WORDS; i < WORDS; i++) {
		w[i] = x ^ (i * STEP);
		sum += w[i];
	}
	w[0] = MAGIC;
	w[1] = block;
	w[2] = gen;
	w[3] = sum ^ MAGIC;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *buf_alloc(void)
{
	void *p;

	if (posix_memalign(&p, BLK, BLK)) {
		perror("posix_memalign");
		exit(2);
	}
	return p;
}

static int job(const char *dev, uint64_t first, uint64_t count, int j,
	       double maxsecs, const char *stop)
{
	uint64_t *w = buf_alloc(), round = 1, pos = 0, writes = 0, errors = 0;
	double start = now(), maxlat = 0;
	struct stat st;
	int fd, tried = 0;

	fd = open(dev, O_RDWR | O_DIRECT | O_DSYNC);
	if (fd < 0) {
		perror(dev);
		return 2;
	}
	while (now() - start < maxsecs && stat(stop, &st) != 0) {
		uint64_t b = first + pos;
		double t0 = now(), lat;
		ssize_t n;

		stamp(w, b, round);
		n = pwrite(fd, w, BLK, (off_t)b * BLK);
		tried = n != BLK;
		lat = now() - t0;
		if (lat > maxlat)
			maxlat = lat;
		if (n != BLK) {
			errors++;
			fprintf(stderr, "job %d: write of block %llu: %s\n", j,
				(unsigned long long)b,
				n < 0 ? strerror(errno) : "short write");
			usleep(10000);
			continue;
		}
		writes++;
		if (++pos == count) {
			pos = 0;
			round++;
		}
	}
	close(fd);
	/* Blocks first..first+pos-1 are in round @round, the rest before. */
	printf("stamp job %d first %llu count %llu round %llu pos %llu writes %llu errors %llu maxlat_us %llu tried %d\n",
	       j, (unsigned long long)first, (unsigned long long)count,
	       (unsigned long long)round, (unsigned long long)pos,
	       (unsigned long long)writes, (unsigned long long)errors,
	       (unsigned long long)(maxlat * 1e6), tried);
	fflush(stdout);
	return errors ? 1 : 0;
}

static int cmd_write(const char *dev, uint64_t first, uint64_t count,
		     int jobs, double maxsecs, const char *stop)
{
	uint64_t per = count / jobs;
	int j, status, rc = 0;

	if (jobs < 1 || !per) {
		fprintf(stderr, "rvblk-stamp: need 1 <= JOBS <= COUNT\n");
		return 2;
	}
	fflush(stdout);
	for (j = 0; j < jobs; j++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (!pid)
			exit(job(dev, first + j * per, per, j, maxsecs, stop));
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			rc = 1;
	return rc;
}

/* Check one job's slice; returns the bad blocks. */
static uint64_t check_slice(int fd, uint64_t first, uint64_t count,
			    uint64_t round, uint64_t pos, int tried,
			    uint64_t *checked)
{
	uint64_t *got = buf_alloc(), *want = buf_alloc(), i, bad = 0;

	for (i = 0; i < count; i++) {
		uint64_t b = first + i, gen = i < pos ? round : round - 1;

		if (!gen)
			continue;	/* never written */
		(*checked)++;
		if (pread(fd, got, BLK, (off_t)b * BLK) != BLK) {
			printf("bad %llu: read failed\n", (unsigned long long)b);
			bad++;
			continue;
		}
		stamp(want, b, gen);
		if (memcmp(got, want, BLK) && tried && i == pos)
			stamp(want, b, round);	/* the failed write landed */
		if (memcmp(got, want, BLK)) {
			printf("bad %llu: want gen %llu, has magic %llx block %llu gen %llu\n",
			       (unsigned long long)b, (unsigned long long)gen,
			       (unsigned long long)got[0],
			       (unsigned long long)got[1],
			       (unsigned long long)got[2]);
			bad++;
		}
	}
	free(got);
	free(want);
	return bad;
}

static int cmd_check(const char *dev, const char *state)
{
	unsigned long long first, count, round, pos;
	int tried;
	uint64_t checked = 0, bad = 0;
	char line[512];
	FILE *f;
	int fd, j;

	f = fopen(state, "r");
	fd = open(dev, O_RDONLY | O_DIRECT);
	if (!f || fd < 0) {
		perror(!f ? state : dev);
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		tried = strstr(line, " tried 1") != NULL;
		if (sscanf(line, "stamp job %d first %llu count %llu round %llu pos %llu",
			   &j, &first, &count, &round, &pos) == 5)
			bad += check_slice(fd, first, count, round, pos, tried,
					   &checked);
	}
	fclose(f);
	close(fd);
	printf("checked %llu bad %llu\n", (unsigned long long)checked,
	       (unsigned long long)bad);
	return bad || !checked ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 8 && !strcmp(argv[1], "write"))
		return cmd_write(argv[2], strtoull(argv[3], NULL, 0),
				 strtoull(argv[4], NULL, 0), atoi(argv[5]),
				 atof(argv[6]), argv[7]);
	if (argc == 4 && !strcmp(argv[1], "check"))
		return cmd_check(argv[2], argv[3]);
	fprintf(stderr, "usage: rvblk-stamp write DEV FIRST COUNT JOBS MAXSECS STOP\n"
		"       rvblk-stamp check DEV STATE\n");
	return 2;
}
