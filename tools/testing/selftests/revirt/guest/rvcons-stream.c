// SPDX-License-Identifier: GPL-2.0-only
/*
 * rvcons-stream: a sequence-numbered, checksummed byte stream over a
 * console port, both ways at once (test_37_console; the host side is
 * cons_stream.py, which speaks the same records).
 *
 *   rvcons-stream duplex|send|recv PORT TXID RXID MAXSECS [-r] [-b BPS]
 *		[-o FILE]
 *	PORT: a device (/dev/hvc0, /dev/rvport0p1) or name=NAME, the port
 *	whose CLASS/<entry>/name is NAME (CLASS: $RVCONS_CLASS, default
 *	/sys/class/revirt-ports), opened as /dev/<entry>.  A tty is set raw.
 *	TXID: the stream id of the records it sends, RXID: the id it expects.
 *	send/duplex: sends data records (seq 0, 1, ...; payload lengths
 *	1..1024, at most BPS bytes per second, default 32768) until the
 *	peer's END record arrived (duplex, recv) or MAXSECS/2 passed (send),
 *	then an END record holding the number of data records it sent; then
 *	waits (bounded) for the device to take everything (fsync/tcdrain).
 *	recv/duplex: checks every record it reads until the peer's END.
 *	MAXSECS bounds the whole run, whatever happens; SIGTERM ends it
 *	early (err=... as it was, the summary is printed all the same).
 *	-r: on EOF or a write error (ENODEV, EIO, EPIPE: the port went away
 *	with an unbind), close, wait (bounded) for the port to come back,
 *	open it again and go on with the next sequence number; the rest of a
 *	record half written is dropped, the receive buffer too.  Without -r
 *	such an event ends the run (counted as eof/werr).
 *	-o FILE: FILE holds the number of reopens so far (0 once the port
 *	is first open), rewritten after each one, so that a test waits for
 *	the tool to be back on the port before it takes the port away again.
 *	Prints one line:
 *	  rvcons port=P tx_recs=N tx_bytes=B tx_end=0|1 rx_recs=N rx_bytes=B
 *	  rx_end=0|1 end_seq=S rx_next=S dup=N lost=N bad_bytes=N bad_crc=N
 *	  wrong_sid=N first_bad_seq=S reopens=N eof=N werr=N err=TEXT secs=T
 *	dup: records seen again (seq below the next expected), lost: records
 *	skipped (seq above it), bad_bytes: bytes skipped looking for a record
 *	header, first_bad_seq: the expected seq at the first such anomaly
 *	(-1: none).
 *   rvcons-stream watch DEV MAXSECS
 *	read DEV until MAXSECS; print "eof T" at each EOF (the host side
 *	closed; read again 50 ms later) and "data N TEXT" for what arrives
 *	(printable characters only); "err ERRNO" and stop on an error.
 *
 * Record: 16-byte header, little endian: u32 magic 0x53435652 ("RVCS"),
 * u8 stream id, u8 type (0 data, 1 END), u16 payload length, u32 seq,
 * u32 crc32 (IEEE, as zlib) of the payload; then the payload, byte i of
 * record seq of stream s being the low byte of mix(s, seq, i) below.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAGIC		0x53435652u
#define HDR		16
#define MAXPAY		1024
#define T_DATA		0
#define T_END		1
#define REOPEN_SECS	30.0

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t crc_table[256];

static void crc_init(void)
{
	uint32_t c, n, k;

	for (n = 0; n < 256; n++) {
		c = n;
		for (k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[n] = c;
	}
}

static uint32_t crc32(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* Payload length of record seq of stream sid: 1..MAXPAY. */
static unsigned int pay_len(unsigned int sid, uint32_t seq)
{
	uint32_t x = seq * 2654435761u ^ sid * 40503u;

	x ^= x >> 13;
	x *= 0x5bd1e995u;
	x ^= x >> 15;
	return 1 + x % MAXPAY;
}

static uint8_t pay_byte(unsigned int sid, uint32_t seq, unsigned int i)
{
	return (uint8_t)(seq * 31u + i * 7u + sid * 101u + (i >> 8));
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static uint32_t get32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t build(uint8_t *buf, unsigned int sid, unsigned int type, uint32_t seq)
{
	unsigned int len = type == T_DATA ? pay_len(sid, seq) : 0, i;

	for (i = 0; i < len; i++)
		buf[HDR + i] = pay_byte(sid, seq, i);
	put32(buf, MAGIC);
	buf[4] = sid;
	buf[5] = type;
	buf[6] = len;
	buf[7] = len >> 8;
	put32(buf + 8, seq);
	put32(buf + 12, crc32(buf + HDR, len));
	return HDR + len;
}

struct rx {
	unsigned int sid;
	uint8_t buf[4 * (HDR + MAXPAY)];
	size_t have;
	uint32_t next;
	unsigned long recs, dup, lost, bad_crc, wrong_sid;
	unsigned long long bytes, bad_bytes;
	long long first_bad;
	int end;
	uint32_t end_seq;
};

static void rx_bad(struct rx *r)
{
	if (r->first_bad < 0)
		r->first_bad = r->next;
}

/* Take complete records out of r->buf. */
static void rx_parse(struct rx *r)
{
	size_t pos = 0;

	while (!r->end && r->have - pos >= HDR) {
		uint8_t *h = r->buf + pos;
		unsigned int len = h[6] | h[7] << 8;
		uint32_t seq;

		if (get32(h) != MAGIC || h[5] > T_END || len > MAXPAY) {
			pos++;
			r->bad_bytes++;
			rx_bad(r);
			continue;
		}
		if (r->have - pos < HDR + len)
			break;
		if (crc32(h + HDR, len) != get32(h + 12)) {
			r->bad_crc++;
			rx_bad(r);
			pos++;
			r->bad_bytes++;
			continue;
		}
		seq = get32(h + 8);
		pos += HDR + len;
		if (h[4] != r->sid) {
			r->wrong_sid++;
			rx_bad(r);
			continue;
		}
		if (h[5] == T_END) {
			r->end = 1;
			r->end_seq = seq;
			if (seq > r->next) {
				r->lost += seq - r->next;
				rx_bad(r);
			}
			break;
		}
		if (seq < r->next) {
			r->dup++;
			rx_bad(r);
			continue;
		}
		if (seq > r->next) {
			r->lost += seq - r->next;
			rx_bad(r);
		}
		r->next = seq + 1;
		r->recs++;
		r->bytes += HDR + len;
	}
	memmove(r->buf, r->buf + pos, r->have - pos);
	r->have -= pos;
}

static char portname[300];
static volatile sig_atomic_t stopped;

static void on_term(int sig)
{
	stopped = sig;
}

/* The device path of PORT (see the usage above); 0 on success. */
static int resolve(const char *port, char *path, size_t size)
{
	const char *cls = getenv("RVCONS_CLASS");
	struct dirent *de;
	char fn[512], name[256];
	int found = -1;
	DIR *d;

	if (strncmp(port, "name=", 5)) {
		snprintf(path, size, "%s", port);
		return access(path, F_OK);
	}
	if (!cls)
		cls = "/sys/class/revirt-ports";
	d = opendir(cls);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(fn, sizeof(fn), "%s/%s/name", cls, de->d_name);
		f = fopen(fn, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f)) {
			name[strcspn(name, "\n")] = 0;
			if (!strcmp(name, port + 5)) {
				snprintf(path, size, "/dev/%s", de->d_name);
				found = access(path, F_OK);
			}
		}
		fclose(f);
		if (!found)
			break;
	}
	closedir(d);
	return found;
}

static int open_port(const char *port, double deadline, char *err, size_t esz)
{
	char path[300];
	int fd;

	for (;;) {
		if (!resolve(port, path, sizeof(path))) {
			fd = open(path, O_RDWR | O_NONBLOCK | O_NOCTTY);
			if (fd >= 0) {
				if (isatty(fd)) {
					struct termios t;

					if (tcgetattr(fd, &t) == 0) {
						cfmakeraw(&t);
						tcsetattr(fd, TCSANOW, &t);
					}
				}
				snprintf(portname, sizeof(portname), "%s", path);
				return fd;
			}
			snprintf(err, esz, "open-%s:%s", path, strerror(errno));
		} else {
			snprintf(err, esz, "nodev-%s", port);
		}
		if (now() > deadline)
			return -1;
		usleep(50000);
	}
}

static void drain(int fd)
{
	/* fsync waits (bounded) for the device (revirt_console); a tty drains */
	if (isatty(fd))
		tcdrain(fd);
	else if (fsync(fd) && errno == EINVAL)
		usleep(300000);	/* no fsync (virtio_console): a moment */
}

static void sanitize(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e || *s == ' ')
			*s = '_';
}

static int watch(const char *dev, double secs)
{
	double t0 = now(), deadline = t0 + secs;
	char buf[4096];
	int fd, in_eof = 0;

	fd = open(dev, O_RDONLY | O_NONBLOCK);
	if (fd < 0) {
		printf("err open %s\n", strerror(errno));
		return 1;
	}
	printf("open %.2f\n", now() - t0);
	fflush(stdout);
	while (now() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		poll(&p, 1, 100);
		n = read(fd, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = 0;
			sanitize(buf);
			printf("data %zd %.2f %s\n", n, now() - t0, buf);
			in_eof = 0;
		} else if (n == 0) {
			if (!in_eof)
				printf("eof %.2f\n", now() - t0);
			in_eof = 1;
			usleep(50000);
		} else if (errno != EAGAIN && errno != EINTR) {
			printf("err %s %.2f\n", strerror(errno), now() - t0);
			return 1;
		}
		fflush(stdout);
	}
	printf("end %.2f\n", now() - t0);
	return 0;
}

/* FILE of -o: the number of reopens, written whole each time */
static void note_opens(const char *file, unsigned long reopens)
{
	char tmp[600];
	FILE *f;

	if (!file)
		return;
	snprintf(tmp, sizeof(tmp), "%s.new", file);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%lu\n", reopens);
	if (fclose(f) == 0)
		rename(tmp, file);
}

static void usage(void)
{
	fprintf(stderr, "usage: rvcons-stream duplex|send|recv PORT TXID RXID MAXSECS [-r] [-b BPS] "
		"[-o FILE]\n"
		"       rvcons-stream watch DEV MAXSECS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static uint8_t txbuf[HDR + MAXPAY];
	static struct rx rx;
	int do_tx, do_rx, reopen = 0, fd, i, tx_end = 0, stop_tx = 0;
	unsigned long tx_recs = 0, reopens = 0, eofs = 0, werrs = 0;
	unsigned long long tx_bytes = 0;
	double t0, deadline, send_until, bps = 32768;
	size_t txlen = 0, txoff = 0;
	unsigned int txid;
	uint32_t seq = 0;
	char err[700] = "-";
	const char *port, *opens_file = NULL;

	if (argc >= 4 && !strcmp(argv[1], "watch"))
		return watch(argv[2], atof(argv[3]));
	if (argc < 6)
		usage();
	do_tx = strcmp(argv[1], "recv") != 0;
	do_rx = strcmp(argv[1], "send") != 0;
	if (strcmp(argv[1], "duplex") && strcmp(argv[1], "send") && strcmp(argv[1], "recv"))
		usage();
	port = argv[2];
	txid = atoi(argv[3]);
	rx.sid = atoi(argv[4]);
	rx.first_bad = -1;
	t0 = now();
	deadline = t0 + atof(argv[5]);
	send_until = do_rx ? deadline : t0 + atof(argv[5]) / 2;
	for (i = 6; i < argc; i++) {
		if (!strcmp(argv[i], "-r"))
			reopen = 1;
		else if (!strcmp(argv[i], "-b") && i + 1 < argc)
			bps = atof(argv[++i]);
		else if (!strcmp(argv[i], "-o") && i + 1 < argc)
			opens_file = argv[++i];
		else
			usage();
	}
	crc_init();
	fd = open_port(port, t0 + REOPEN_SECS, err, sizeof(err));
	if (fd < 0) {
		sanitize(err);
		printf("rvcons port=%s tx_recs=0 tx_bytes=0 tx_end=0 rx_recs=0 rx_bytes=0 rx_end=0 "
		       "end_seq=0 rx_next=0 dup=0 lost=0 bad_bytes=0 bad_crc=0 wrong_sid=0 "
		       "first_bad_seq=-1 reopens=0 eof=0 werr=0 err=%s secs=%.1f\n",
		       port, err, now() - t0);
		return 1;
	}
	snprintf(err, sizeof(err), "-");
	note_opens(opens_file, 0);
	signal(SIGTERM, on_term);
	while (now() < deadline && !stopped) {
		struct pollfd p = { .fd = fd, .events = 0 };
		double t = now();
		int dead = 0;

		if ((!do_tx || tx_end == 1) && (!do_rx || rx.end))
			break;

		if (do_tx && !tx_end) {
			if (txoff == txlen) {
				if (!stop_tx && (t > send_until || (do_rx && rx.end)))
					stop_tx = 1;
				if (stop_tx) {
					txlen = build(txbuf, txid, T_END, seq);
					tx_end = -1;	/* END being written */
				} else if (tx_bytes < (t - t0) * bps + 4096) {
					txlen = build(txbuf, txid, T_DATA, seq);
				} else {
					txlen = 0;
				}
				txoff = 0;
			}
			if (txoff < txlen)
				p.events |= POLLOUT;
		}
		if (do_rx && !rx.end)
			p.events |= POLLIN;
		poll(&p, 1, p.events ? 50 : 10);
		if (p.revents & POLLOUT || (p.events & POLLOUT && p.revents & POLLHUP)) {
			ssize_t n = write(fd, txbuf + txoff, txlen - txoff);

			if (n > 0) {
				txoff += n;
				tx_bytes += n;
				if (txoff == txlen) {
					if (tx_end == -1)
						tx_end = 1;
					else {
						tx_recs++;
						seq++;
					}
				}
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				werrs++;
				snprintf(err, sizeof(err), "write:%s", strerror(errno));
				dead = 1;
			}
		}
		if (!dead && do_rx && !rx.end && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(fd, rx.buf + rx.have, sizeof(rx.buf) - rx.have);

			if (n > 0) {
				rx.have += n;
				rx_parse(&rx);
			} else if (n == 0) {
				/* EOF: the port went away (or the host is not connected) */
				eofs++;
				snprintf(err, sizeof(err), "eof");
				dead = 1;
			} else if (errno != EAGAIN && errno != EINTR) {
				eofs++;
				snprintf(err, sizeof(err), "read:%s", strerror(errno));
				dead = 1;
			}
		}
		if (dead) {
			if (!reopen)
				break;
			close(fd);
			/* let the old port go away before looking for it again */
			usleep(200000);
			fd = open_port(port, now() + REOPEN_SECS < deadline ?
				       now() + REOPEN_SECS : deadline, err, sizeof(err));
			if (fd < 0)
				break;
			reopens++;
			note_opens(opens_file, reopens);
			/*
			 * The port is the same byte stream after it came back
			 * (revirt_console keeps what was not delivered): go
			 * on writing the record where write() stopped, and
			 * parsing where the last read ended.
			 */
		}
	}
	sanitize(err);
	if (fd >= 0) {
		drain(fd);
		close(fd);
	}
	printf("rvcons port=%s tx_recs=%lu tx_bytes=%llu tx_end=%d rx_recs=%lu rx_bytes=%llu "
	       "rx_end=%d end_seq=%u rx_next=%u dup=%lu lost=%lu bad_bytes=%llu bad_crc=%lu "
	       "wrong_sid=%lu first_bad_seq=%lld reopens=%lu eof=%lu werr=%lu err=%s secs=%.1f\n",
	       portname[0] ? portname : port, tx_recs, tx_bytes, tx_end == 1, rx.recs, rx.bytes,
	       rx.end, rx.end_seq, rx.next, rx.dup, rx.lost, rx.bad_bytes, rx.bad_crc,
	       rx.wrong_sid, rx.first_bad, reopens, eofs, werrs, err, now() - t0);
	return 0;
}
