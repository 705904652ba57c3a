# SPDX-License-Identifier: GPL-2.0-only
"""Host side of the console stream of test_37_console: the records of
guest/rvcons-stream.c over a QEMU chardev unix socket (QEMU the server,
-chardev socket,server=on,wait=off).

Record: 16-byte header, little endian: u32 magic 0x53435652 ("RVCS"),
u8 stream id, u8 type (0 data, 1 END), u16 payload length, u32 seq,
u32 crc32 (zlib) of the payload; the payload of record seq of stream s is
pay_len(s, seq) bytes, byte i = pay_byte(s, seq, i) (as in the C tool).
Only the Python 3 standard library is used.
"""

import socket
import struct
import threading
import time
import zlib

MAGIC = 0x53435652
HDR = 16
MAXPAY = 1024
T_DATA, T_END = 0, 1
M32 = 0xffffffff


def pay_len(sid, seq):
    x = ((seq * 2654435761) & M32) ^ ((sid * 40503) & M32)
    x ^= x >> 13
    x = (x * 0x5bd1e995) & M32
    x ^= x >> 15
    return 1 + x % MAXPAY


def payload(sid, seq):
    n = pay_len(sid, seq)
    return bytes(((seq * 31 + i * 7 + sid * 101 + (i >> 8)) & 0xff) for i in range(n))


def record(sid, seq, typ=T_DATA):
    pay = payload(sid, seq) if typ == T_DATA else b""
    return struct.pack("<IBBHII", MAGIC, sid, typ, len(pay), seq & M32,
                       zlib.crc32(pay) & M32) + pay


class Receiver:
    """The checking side of a stream: feed() bytes; the counters as the C
    tool's (dup, lost, bad_bytes, bad_crc, wrong_sid, first_bad)."""

    def __init__(self, sid):
        self.sid = sid
        self.buf = bytearray()
        self.next = 0
        self.recs = self.dup = self.lost = self.bad_crc = self.wrong_sid = 0
        self.bytes = self.bad_bytes = 0
        self.first_bad = -1
        self.end = False
        self.end_seq = None
        self.total = 0          # every byte that arrived

    def _bad(self):
        if self.first_bad < 0:
            self.first_bad = self.next

    def reset_buffer(self):
        """Forget a partial record (the peer reopened the port)."""
        self.buf = bytearray()

    def feed(self, data):
        self.total += len(data)
        self.buf += data
        b = self.buf
        pos = 0
        while not self.end and len(b) - pos >= HDR:
            magic, sid, typ, ln, seq, crc = struct.unpack_from("<IBBHII", b, pos)
            if magic != MAGIC or typ > T_END or ln > MAXPAY:
                pos += 1
                self.bad_bytes += 1
                self._bad()
                continue
            if len(b) - pos < HDR + ln:
                break
            pay = bytes(b[pos + HDR:pos + HDR + ln])
            if zlib.crc32(pay) & M32 != crc:
                self.bad_crc += 1
                self._bad()
                pos += 1
                self.bad_bytes += 1
                continue
            pos += HDR + ln
            if sid != self.sid:
                self.wrong_sid += 1
                self._bad()
                continue
            if typ == T_END:
                self.end = True
                self.end_seq = seq
                if seq > self.next:
                    self.lost += seq - self.next
                    self._bad()
                break
            if seq < self.next:
                self.dup += 1
                self._bad()
                continue
            if seq > self.next:
                self.lost += seq - self.next
                self._bad()
            self.next = seq + 1
            self.recs += 1
            self.bytes += HDR + ln
        del b[:pos]

    def summary(self):
        return ("rx_recs=%d rx_bytes=%d rx_end=%d end_seq=%s rx_next=%d dup=%d lost=%d "
                "bad_bytes=%d bad_crc=%d wrong_sid=%d first_bad_seq=%d"
                % (self.recs, self.bytes, self.end, self.end_seq, self.next, self.dup,
                   self.lost, self.bad_bytes, self.bad_crc, self.wrong_sid, self.first_bad))


def connect(path, timeout=20):
    """A connection to QEMU's chardev server socket at path."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Stream:
    """Both directions of one port's stream over socket sock: a sender
    thread (records of stream txid, at most bps bytes/s, until stop(),
    then END) and a receiver thread (records of stream rxid, until the
    peer's END or the deadline).  With wait_first, the sender starts only
    once a record of the peer arrived (a tty that is not raw yet would
    echo what it gets)."""

    def __init__(self, sock, txid, rxid, name, bps=32768, wait_first=False,
                 maxsecs=300):
        self.sock = sock
        self.name = name
        self.txid = txid
        self.rx = Receiver(rxid)
        self.bps = bps
        self.wait_first = wait_first
        self.deadline = time.monotonic() + maxsecs
        self.tx_recs = 0
        self.tx_bytes = 0
        self.tx_end = False
        self.errors = []
        self._stop = threading.Event()
        self._first = threading.Event()
        self._lock = threading.Lock()
        self.sock.settimeout(0.2)
        self._threads = [threading.Thread(target=self._send_loop, daemon=True),
                         threading.Thread(target=self._recv_loop, daemon=True)]
        for t in self._threads:
            t.start()

    def _sendall(self, data):
        """Send data; False if the deadline passed or the socket died."""
        view = memoryview(data)
        while view:
            if time.monotonic() > self.deadline:
                return False
            try:
                n = self.sock.send(view)
            except socket.timeout:
                continue
            except OSError as e:
                self.errors.append("send: %s" % e)
                return False
            view = view[n:]
            self.tx_bytes += n
        return True

    def _send_loop(self):
        t0 = time.monotonic()
        if self.wait_first:
            while not self._first.wait(0.2):
                if self._stop.is_set() or time.monotonic() > self.deadline:
                    break
            t0 = time.monotonic()
        seq = 0
        while not self._stop.is_set():
            if self.tx_bytes > (time.monotonic() - t0) * self.bps + 4096:
                time.sleep(0.02)
                continue
            if not self._sendall(record(self.txid, seq)):
                return
            seq += 1
            self.tx_recs = seq
        if self._sendall(record(self.txid, seq, T_END)):
            self.tx_end = True

    def _recv_loop(self):
        while not self.rx.end and time.monotonic() < self.deadline:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:
                self.errors.append("recv: %s" % e)
                return
            if not data:
                self.errors.append("recv: EOF from QEMU")
                return
            with self._lock:
                self.rx.feed(data)
                if self.rx.recs:
                    self._first.set()

    def stop(self):
        """Stop sending: the END record goes out next."""
        self._stop.set()

    def wait(self, timeout):
        """Wait (bounded) for the END to be sent and the peer's END."""
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def close(self):
        self._stop.set()
        self.deadline = 0
        for t in self._threads:
            t.join(2)
        try:
            self.sock.close()
        except OSError:
            pass

    def summary(self):
        return ("%s: host tx_recs=%d tx_bytes=%d tx_end=%d %s%s"
                % (self.name, self.tx_recs, self.tx_bytes, self.tx_end, self.rx.summary(),
                   (" errors=" + "; ".join(self.errors[:3])) if self.errors else ""))


def parse_guest(line):
    """{key: value} of an "rvcons ..." summary line of rvcons-stream
    (numbers as int where they are)."""
    out = {}
    for w in line.split()[1:]:
        k, _, v = w.partition("=")
        try:
            out[k] = int(v)
        except ValueError:
            out[k] = v
    return out


def guest_lines(text):
    """The rvcons-stream summary lines in guest output, by port tag: lines
    "TAG rvcons ..." (the test prefixes each tool's output with a tag)."""
    res = {}
    for l in text.splitlines():
        words = l.split(None, 1)
        if len(words) == 2 and words[1].startswith("rvcons "):
            res[words[0]] = parse_guest(words[1])
    return res
