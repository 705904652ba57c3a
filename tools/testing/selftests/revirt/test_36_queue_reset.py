# SPDX-License-Identifier: GPL-2.0-only
"""Per-queue reset (VIRTIO_F_RING_RESET): one virtqueue is reset alone, or
set up again with another size, while the others keep running.

One VM (2 vCPUs: the two hardware queues of a 2-queue disk each get the
traffic of one CPU) with two QEMU virtio-blk-pci disks and the simulated
disk of revirt_sim:

  qr   num-queues=2,queue_reset=on,queue-size=128: 100 resets of one queue
       through reset_queue at random moments under the stamping writer,
       each one seen by the host (x-query-virtio-queue-status: the reset
       queue's indexes start over, the other's go on); resize_queue to
       smaller, larger and the largest size the device allows, and sizes
       it must refuse (QEMU itself takes any size up to 1024: the kernel
       has to refuse them)
  nq   queue_reset=off: reset_queue fails with EOPNOTSUPP; a blk-mq
       timeout (QEMU's I/O throttling holds the requests) takes the
       whole-device reset
  sim  revirt_sim blk_queues=2: each used-ring fault aimed at queue 1
       resets queue 1 alone while queue 0 keeps serving; a queue reset
       that never completes falls back to the whole-device reset, and
       unbind and rmmod still work; reloaded with ring_reset=0, the same
       fault takes the whole-device reset

The writer is test_35's rvblk-stamp, run as two instances of 2 jobs, one
pinned to each CPU (blk-mq maps CPU n to hardware queue n): both queues
get traffic whatever the scheduler does.  0 writer errors, every
acknowledged block reads back right in the guest and, for the QEMU disks,
in the host's image after QEMU exited.
"""

import random
import re
import time

import blkdrv
from blkdrv import BlkVM, Disk, collapse, hx
from revirt_vm import VMError, backend_path
import test_35_blkreset as t35
from test_35_blkreset import host_check_stamps, host_resets, stamp_state, writer_ok

MODULES = ["revirt", "revirt_pci", "revirt_blk", "revirt_sim"]
MiB = 1 << 20
RESETS = 100
QR_SIZE = 128          # queue-size of qr: the largest ring its device allows
NQ_SIZE = 256          # QEMU's default queue-size (nq)
SIM_SIZE = 128         # revirt_sim's ring size (SIM_BLK_QUEUE_SIZE)
F_RING_RESET = 40
ANY_QUEUE = 4294967295
RESET_BUDGET = 240     # seconds for the 100 resets, whatever happens
# The host's criterion for "this queue started over": its used index went
# back below where it was.  A queue that was reset has served only the
# requests between the guest's write and the host's query since (measured:
# at most 25, about 0.08 s worth); so a queue is reset only when its index
# (and the other queue's) is at least W = max(W_MIN, W_SECS * the fastest
# rate seen), 5 times that, and a queue that was not reset cannot go back
# by accident (its index only moves forward, by far less than 32768 in one
# step).
W_MIN = 100
W_SECS = 0.4
# revirt_sim's knobs (drivers/revirt/revirt_sim.c)
SIM_PARAMS = "rng=0 blk=1 blk_queues=2"
# A queue reset of the sim held this long, under revirt_sim's reset bound
# raised to SIM_BOUND_MS for the fault checks: the guest's samples come
# 40-700 ms apart on a loaded machine, and must see the stall.
QUEUE_DELAY_MS = 1500
SIM_BOUND_MS = 5000
SAMPLE_MS = 4500
USED_FAULTS = ["used_bad_id", "used_stale_id", "used_waiting_id", "used_long_len",
               "used_idx_jump"]
# The core's line when a queue reset failed and it resets the device.
FALLBACK_RE = re.compile(r"queue.*resetting the device")

LIB = r"""
qs_attr() { cat $RV_BUS/devices/$1/$2 2>/dev/null || echo '?'; }
# qs_write FILE VALUE: write VALUE, print "rc=N err=MESSAGE"
qs_write() {
	_e=$( (echo "$2" > "$1") 2>&1 )
	echo "rc=$? err=$_e"
}
# qs_start DEV FIRST COUNT: two writers of 2 jobs, pinned to CPU 0 and
# CPU 1, on the two halves of the blocks, in the background until
# qs_stop (which may run in another script).
qs_start() {
	rm -f /tmp/stop /tmp/qs.*
	_h=$(($3 / 2))
	( taskset 1 rvblk-stamp write /dev/$1 $2 $_h 2 300 /tmp/stop >/tmp/qs.out0 2>/tmp/qs.err0
	  echo $? >/tmp/qs.rc0 ) </dev/null >/dev/null 2>&1 &
	( taskset 2 rvblk-stamp write /dev/$1 $(($2 + _h)) $_h 2 300 /tmp/stop >/tmp/qs.out1 2>/tmp/qs.err1
	  echo $? >/tmp/qs.rc1 ) </dev/null >/dev/null 2>&1 &
	sleep 1
}
# qs_stop DEV: stop the writers, report them (test_35's format) and check
qs_stop() {
	touch /tmp/stop
	_i=0
	while { [ ! -s /tmp/qs.rc0 ] || [ ! -s /tmp/qs.rc1 ]; } && [ $_i -lt 600 ]; do
		usleep 100000; _i=$((_i + 1))
	done
	echo writer=$(( $(cat /tmp/qs.rc0 2>/dev/null || echo 99) | $(cat /tmp/qs.rc1 2>/dev/null || echo 99) ))
	cat /tmp/qs.out0 /tmp/qs.out1 >/tmp/qs.out
	cat /tmp/qs.out
	cat /tmp/qs.err0 /tmp/qs.err1 | head -n 5
	rvblk-stamp check /dev/$1 /tmp/qs.out
	echo check=$?
}
# the revirt device and the debugfs directory of revirt_sim's disk
qs_sim() {
	_i=0
	while ! d=$(rvb_sim) && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
	d=$(rvb_sim) || return 1
	r=$(basename $(readlink -f /sys/block/$d/device))
	B=$RV_BUS/devices/$r
	K=/sys/kernel/debug/revirt_sim/$r
}
"""


# ---- the host's view --------------------------------------------------------

def hq(bvm, qid, n):
    return bvm.vm.qmp("x-query-virtio-queue-status", path=backend_path(qid), queue=n)


def host_queues(bvm, qid, nq):
    """[(used-idx, last-avail-idx, vring-num)] of each queue."""
    out = []
    for n in range(nq):
        s = hq(bvm, qid, n)
        out.append((s["used-idx"], s["last-avail-idx"], s["vring-num"]))
    return out


def has_ring_reset(feats):
    """VIRTIO_F_RING_RESET in a feature set of x-query-virtio-status; QEMU
    7.2 cannot name bit 40 and counts it in unknown-dev-features."""
    names = feats.get("transports", []) + feats.get("dev-features", [])
    return (any("RING_RESET" in n for n in names)
            or bool((feats.get("unknown-dev-features", 0) >> F_RING_RESET) & 1))


def fwd(a, b):
    """How far a 16-bit index moved from a to b (>= 0x8000: backwards)."""
    return (b - a) & 0xffff


def ints(text):
    return [int(v) for v in text.split()] if text and re.fullmatch(r"[\d\s]+", text) else []


def num(out, key):
    """The number after KEY= in a script's output (None if absent)."""
    m = re.search(r"(?<![\w])%s=(\d+)\b" % re.escape(key), out)
    return int(m.group(1)) if m else None


def pair(out, key):
    """(a, b) of KEY=a/b, or None."""
    m = re.search(r"(?<![\w])%s=(\d+)/(\d+)\b" % re.escape(key), out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def rest(out, key):
    """What follows KEY= up to the end of its line (lists of numbers
    come last on a line)."""
    m = re.search(r"(?m)(?<![\w])%s=(.*)$" % re.escape(key), out)
    return m.group(1).strip() if m else ""


def qemu_complaints(bvm):
    """QEMU's stderr lines about virtqueues (a malformed ring, a bad index)."""
    try:
        with open(bvm.vm.stderr_path, errors="replace") as f:
            text = f.read()
    except OSError:
        return ["(no QEMU stderr)"]
    return [l for l in text.splitlines() if re.search(r"(?i)virt|vring|queue|guest", l)]


# ---- the checks -------------------------------------------------------------

def check_setup(ktap, bvm):
    rc, out = bvm.sh(
        "rv_insmod revirt && rv_insmod revirt_pci && rv_insmod revirt_blk || exit 1\n"
        "for q in qr nq; do d=$(rvb_wait $q) || exit 1; r=$(rvb_rv $q)\n"
        "  echo $q $d $r mq=$(ls /sys/block/$d/mq | wc -l) sizes=$(qs_attr $r queue_sizes) "
        "queue_resets=$(qs_attr $r queue_resets)\n"
        "  for a in reset_queue resize_queue queue_resets queue_sizes resets; do\n"
        "    [ -e $RV_BUS/devices/$r/$a ] || echo missing $q $a; done\n"
        "done")
    qr = bvm.vm.virtio_status(backend_path("qr"))
    nq = bvm.vm.virtio_status(backend_path("nq"))
    hs = host_queues(bvm, "qr", 2) + host_queues(bvm, "nq", 1)
    m = re.search(r"qr (\w+) (revirt\d+) mq=(\d+) sizes=(.*) queue_resets=(\S+)", out)
    ok = ktap.ok("qreset: setup: qr has 2 hardware queues, both disks have reset_queue, "
                 "resize_queue, queue_resets and queue_sizes; queue_sizes of qr '%d %d', "
                 "of nq '%d', as the host's vring-num" % (QR_SIZE, QR_SIZE, NQ_SIZE),
                 rc == 0 and m and m.group(3) == "2" and "missing" not in out
                 and ints(m.group(4)) == [QR_SIZE, QR_SIZE]
                 and re.search(r"nq \w+ revirt\d+ mq=1 sizes=%d " % NQ_SIZE, out)
                 and [h[2] for h in hs] == [QR_SIZE, QR_SIZE, NQ_SIZE],
                 "%s\nhost (used, avail, num): %s" % (out, hs))
    ktap.ok("qreset: the host sees VIRTIO_F_RING_RESET offered and taken on qr, "
            "not offered on nq (queue_reset=off)",
            has_ring_reset(qr["host-features"]) and has_ring_reset(qr["guest-features"])
            and not has_ring_reset(nq["host-features"])
            and not has_ring_reset(nq["guest-features"]),
            "qr host %s\nqr guest %s\nnq host %s\nnq guest %s"
            % (qr["host-features"], qr["guest-features"], nq["host-features"],
               nq["guest-features"]))
    return m.group(2) if ok else None


def check_resets(ktap, bvm, rv):
    """(1) 100 single-queue resets under the writer, each seen by the host."""
    rng = random.Random(36)
    rc, out = bvm.sh("d=$(rvb_dev qr) || exit 1\n"
                     "echo queue_resets=$(qs_attr %s queue_resets) resets=$(qs_attr %s resets)\n"
                     "qs_start $d 0 512" % (rv, rv))
    before = out
    m0 = bvm.mark()
    write = "echo %%d > /sys/bus/revirt/devices/%s/reset_queue; echo rc=$?" % rv
    t_end = time.monotonic() + RESET_BUDGET
    rate = 0.0
    prev = (time.monotonic(), host_queues(bvm, "qr", 2))
    steps = []
    last_step = time.monotonic()
    stalled = ""
    while len(steps) < RESETS and time.monotonic() < t_end:
        time.sleep(rng.uniform(0, 0.1))
        t = time.monotonic()
        s = host_queues(bvm, "qr", 2)
        for n in (0, 1):
            d = fwd(prev[1][n][0], s[n][0])
            if d < 0x8000 and t > prev[0]:
                rate = max(rate * 0.95, d / (t - prev[0]))
        prev = (t, s)
        w = max(W_MIN, int(rate * W_SECS))
        if min(s[0][0], s[1][0]) < w or rate == 0.0:
            if t - last_step > 20:
                stalled = "no step for 20 s: host (used, avail, num) %s, W %d" % (s, w)
                break
            continue
        n = len(steps) % 2
        rc, o = bvm.vm.sh(write % n)
        t2 = time.monotonic()
        a = host_queues(bvm, "qr", 2)
        prev = (t2, a)
        last_step = t2
        steps.append({"n": n, "b": s, "a": a, "w": w, "rc": rc, "out": o.strip(),
                      "ms": int((t2 - t) * 1000)})
    m1 = bvm.mark()
    rc, out = bvm.sh("d=$(rvb_dev qr) || exit 1\n"
                     "echo queue_resets=$(qs_attr %s queue_resets) resets=$(qs_attr %s resets) "
                     "sizes=$(qs_attr %s queue_sizes)\n"
                     "qs_stop $d" % (rv, rv, rv), timeout=300)

    failed = [s for s in steps if s["rc"] != 0 or "rc=0" not in s["out"]]
    # the criterion's margin: the reset queue's index before over after
    margin = min([s["b"][s["n"]][0] / max(1, s["a"][s["n"]][0]) for s in steps] or [0])
    ktap.diag("queue resets: %d steps, %s; window %s ms, W %s, largest index after a reset "
              "%d, smallest margin %.1fx"
              % (len(steps), t35.summary(out),
                 "-".join(str(f(x["ms"] for x in steps)) for f in (min, max)) if steps else "-",
                 "-".join(str(f(x["w"] for x in steps)) for f in (min, max)) if steps else "-",
                 max([s["a"][s["n"]][0] for s in steps] or [0]), margin))
    ktap.ok("qreset: %d resets of one queue of qr through reset_queue at random moments "
            "under the stamping writer: every write succeeds, 0 writer errors, every "
            "acknowledged block reads back right in the guest" % RESETS,
            rc == 0 and len(steps) == RESETS and not failed and writer_ok(out, 4),
            "%s\n%s\nfailed writes: %s" % (stalled, out, failed[:5]))

    bad = []
    for s in steps:
        n, m = s["n"], 1 - s["n"]
        (bu, ba, bnum), (au, aa, anum) = s["b"][n], s["a"][n]
        restarted = au < bu and aa < ba and fwd(bu, au) >= 0x8000 and anum == bnum
        kept = (fwd(s["b"][m][0], s["a"][m][0]) < 0x8000
                and fwd(s["b"][m][1], s["a"][m][1]) < 0x8000
                and s["a"][m][2] == s["b"][m][2])
        if not (restarted and kept):
            bad.append(s)
    ktap.ok("qreset: the host sees each of the %d resets: the reset queue's used and avail "
            "indexes start over, the other queue's go on, both keep %d entries" % (RESETS, QR_SIZE),
            len(steps) == RESETS and not bad,
            lambda: "%d of %d steps wrong; (used, avail, num) of queues 0 and 1 before and "
            "after resetting queue n:\n%s" % (len(bad), len(steps), "\n".join(
                "n=%d before %s after %s W %d" % (s["n"], s["b"], s["a"], s["w"])
                for s in bad[:12])))

    q0, r0 = num(before, "queue_resets"), num(before, "resets")
    q1, r1 = num(out, "queue_resets"), num(out, "resets")
    ptr = bvm.learn_ptr("qr", m0, m1)
    seq = collapse(bvm.writes_of("qr", m0, m1))
    ktap.ok("qreset: queue_resets of qr moved by %d, resets (whole device) did not move, "
            "the host traced no status write of qr, queue_sizes still '%d %d'"
            % (RESETS, QR_SIZE, QR_SIZE),
            None not in (q0, q1, r0, r1) and q1 - q0 == len(steps) == RESETS
            and r1 == r0 and ptr is not None and not seq
            and ints(rest(out, "sizes")) == [QR_SIZE, QR_SIZE],
            "before: %s\nafter: %s\ntrace pointer %s, status writes %s"
            % (before, out, ptr, hx(seq[:40])))
    return stamp_state(out)


def check_resize(ktap, bvm, rv):
    """(2) resize_queue under the writer; sizes the device cannot take."""
    rc, out = bvm.sh("d=$(rvb_dev qr) || exit 1\nqs_start $d 1024 512")
    wrong, log, bad = [], [], []

    def resize(n, size):
        rc, o = bvm.sh("qs_write $RV_BUS/devices/%s/resize_queue '%d %d'\n"
                       "echo sizes=$(qs_attr %s queue_sizes)" % (rv, n, size, rv))
        h = host_queues(bvm, "qr", 2)
        # the queue serves: its used index moves within 10 s
        t = time.monotonic() + 10
        moved = 0
        while time.monotonic() < t:
            time.sleep(0.1)
            moved = fwd(h[n][0], host_queues(bvm, "qr", 2)[n][0])
            if 20 <= moved < 0x8000:
                break
        log.append("resize %d %d: %s host %s served %d" % (n, size, " ".join(o.split()), h, moved))
        return o, [x[2] for x in h], 20 <= moved < 0x8000

    sizes = [QR_SIZE, QR_SIZE]
    for n, size in [(1, 64), (1, 32), (1, QR_SIZE), (0, 64), (0, QR_SIZE)]:
        o, nums, served = resize(n, size)
        sizes[n] = size
        if not ("rc=0" in o and ints(rest(o, "sizes")) == sizes and nums == sizes and served):
            wrong.append((n, size))
    refused = [100, 0, 4096, 2 * QR_SIZE]
    for size in refused:
        o, nums, served = resize(1, size)
        if not (re.search(r"rc=[1-9]", o) and "Invalid argument" in o
                and ints(rest(o, "sizes")) == [QR_SIZE, QR_SIZE]
                and nums == [QR_SIZE, QR_SIZE] and served):
            bad.append(size)
    rc, out = bvm.sh("d=$(rvb_dev qr) || exit 1\nqs_stop $d", timeout=300)
    ktap.ok("qreset: resize_queue under the writer: queue 1 to 64, 32, %d (the device's "
            "largest), queue 0 to 64 and %d: each write succeeds, queue_sizes and the host's "
            "vring-num agree, the queue serves at its new size" % (QR_SIZE, QR_SIZE),
            not wrong, "wrong: %s\n%s" % (wrong, "\n".join(log)))
    ktap.ok("qreset: resize_queue refuses %s (QEMU would take all but 0 and 4096): EINVAL, "
            "queue_sizes and the host's vring-num stay %d, the queue keeps serving"
            % (", ".join(map(str, refused)), QR_SIZE),
            not bad, "refused wrongly: %s\n%s" % (bad, "\n".join(log)))
    ktap.ok("qreset: the writer across the 5 resizes the host saw: 0 errors, every "
            "acknowledged block reads back right",
            rc == 0 and not wrong and writer_ok(out, 4), out)
    return stamp_state(out)


def throttle(bvm, iops):
    bvm.vm.qmp("block_set_io_throttle", _args=dict(
        device="drv-nq", bps=0, bps_rd=0, bps_wr=0, iops=0, iops_rd=0, iops_wr=iops))


def check_no_ring_reset(ktap, bvm):
    """(3) nq, queue_reset=off: EOPNOTSUPP; a timeout resets the device."""
    rc, out = bvm.sh(
        "r=$(rvb_rv nq) || exit 1; B=$RV_BUS/devices/$r\n"
        "n=$(cat $B/resets); c=$(dmesg | grep -c 'no per-queue reset')\n"
        "echo reset_$(qs_write $B/reset_queue 0)\n"
        "echo resize_$(qs_write $B/resize_queue '0 64')\n"
        "echo said=$c/$(dmesg | grep -c 'no per-queue reset') resets=$n/$(cat $B/resets) "
        "queue_resets=$(qs_attr $r queue_resets) sizes=$(qs_attr $r queue_sizes)")
    h = host_queues(bvm, "nq", 1)
    said, res = pair(out, "said"), pair(out, "resets")
    ktap.ok("qreset: nq (queue_reset=off): writing reset_queue fails with EOPNOTSUPP and "
            "dmesg says 'no per-queue reset'; resize_queue fails too; nothing was reset",
            rc == 0 and re.search(r"reset_rc=[1-9] err=.*not supported", out)
            and re.search(r"resize_rc=[1-9]", out)
            and said and said[1] > said[0] and res and res[0] == res[1]
            and num(out, "queue_resets") == 0 and ints(rest(out, "sizes")) == [NQ_SIZE]
            and h[0][2] == NQ_SIZE, "%s\nhost %s" % (out, h))

    m0 = bvm.mark()
    rc, out = bvm.sh(
        "d=$(rvb_dev nq) && r=$(rvb_rv nq) || exit 1; B=$RV_BUS/devices/$r\n"
        "echo 300 > /sys/block/$d/queue/io_timeout\n"
        "qs_start $d 0 256\n"
        "echo before resets=$(cat $B/resets) queue_resets=$(qs_attr $r queue_resets) "
        "timeouts=$(dmesg | grep -c 'gets no answer')")
    throttle(bvm, 1)
    try:
        rc2, out2 = bvm.sh(
            "r=$(rvb_rv nq); B=$RV_BUS/devices/$r; n=%s\n"
            "i=0; while [ $(cat $B/resets) -le $n ] && [ $i -lt 200 ]; do usleep 100000; "
            "i=$((i + 1)); done\n"
            "echo waited_ms=$((i * 100))" % num(out, "resets"), timeout=60)
    finally:
        throttle(bvm, 0)
    rc3, out3 = bvm.sh(
        "d=$(rvb_dev nq) && r=$(rvb_rv nq) || exit 1; B=$RV_BUS/devices/$r\n"
        "sleep 1\n"
        "echo after resets=$(cat $B/resets) queue_resets=$(qs_attr $r queue_resets) "
        "timeouts=$(dmesg | grep -c 'gets no answer')\n"
        "qs_stop $d\n"
        "echo 30000 > /sys/block/$d/queue/io_timeout", timeout=300)
    m1 = bvm.mark()
    ptr = bvm.learn_ptr("nq", m0, m1)
    seq = collapse(bvm.writes_of("nq", m0, m1))
    b = {k: num(out, k) for k in ("resets", "queue_resets", "timeouts")}
    a = {k: num(out3, k) for k in ("resets", "queue_resets", "timeouts")}
    path = ("whole-device reset (resets %s -> %s, queue_resets %s -> %s, host status writes %s)"
            % (b.get("resets"), a.get("resets"), b.get("queue_resets"), a.get("queue_resets"),
               hx(seq[:12])))
    ktap.diag("nq timeout path: " + path)
    ktap.ok("qreset: nq: a blk-mq timeout (QEMU throttled to 1 write/s) takes the "
            "whole-device reset: resets moves, queue_resets stays 0, the host traces the "
            "reset; 0 writer errors once the throttle is off",
            rc == 0 and rc2 == 0 and rc3 == 0 and None not in list(a.values()) + list(b.values())
            and a["resets"] > b["resets"] and a["queue_resets"] == b["queue_resets"] == 0
            and a["timeouts"] > b["timeouts"]
            and ptr is not None and host_resets(seq) >= 1 and writer_ok(out3, 4),
            "%s\n%s\n%s\n%s" % (path, out, out2, out3))
    return stamp_state(out3) if writer_ok(out3, 4) else []


def sim_stall(samples):
    """The longest stretch in which queue 1 served nothing: (ms, served by
    queue 0 meanwhile)."""
    best = (0, 0)
    i = 0
    while i < len(samples):
        j = i
        while j + 1 < len(samples) and samples[j + 1][2] == samples[i][2]:
            j += 1
        span = (samples[j][0] - samples[i][0], samples[j][1] - samples[i][1])
        if span[0] > best[0]:
            best = span
        i = j + 1
    return best


def per_queue(before, after):
    """Moves of a sim counter read as one number or one per queue."""
    b, a = ints(before), ints(after)
    if len(b) != len(a) or not b:
        return None
    return [y - x for x, y in zip(b, a)]


def check_sim_faults(ktap, bvm):
    """(4) used-ring faults aimed at queue 1 of revirt_sim's 2-queue disk."""
    rc, out = bvm.sh(
        "rv_insmod revirt_sim %s || exit 1\n"
        "qs_sim || exit 1\n"
        "echo sim $d $r mq=$(ls /sys/block/$d/mq | wc -l) sizes=$(qs_attr $r queue_sizes)\n"
        "for k in fault_queue queue_reset_hang queue_reset_delay_ms queue_resets "
        "queue_requests; do [ -e $K/$k ] || echo missing $k; done" % SIM_PARAMS)
    ok = ktap.ok("qreset: revirt_sim %s: a disk with 2 hardware queues of %d entries, "
                 "the per-queue knobs are there" % (SIM_PARAMS, SIM_SIZE),
                 rc == 0 and re.search(r"mq=2 sizes=%d %d$" % (SIM_SIZE, SIM_SIZE), out, re.M)
                 and "missing" not in out, out)
    if not ok:
        return False
    rc, out = bvm.sh(
        "qs_sim || exit 1\n"
        "P=/sys/module/revirt_sim/parameters/reset_timeout_ms; T0=$(cat $P); echo %d > $P\n"
        "echo 1 > $K/fault_queue; echo %d > $K/queue_reset_delay_ms\n"
        "qs_start $d 0 512\n"
        "R0=$(cat $B/resets); Q0=$(cat $B/queue_resets)\n"
        "for k in %s; do\n"
        "  echo fault $k qr=$(cat $B/queue_resets) sim=$(cat $K/queue_resets)\n"
        "  echo 1 > $K/$k\n"
        # no fork but usleep: on the debug kernel each costs 0.1-0.3 s
        "  t0=$(now_ms); while :; do\n"
        "    read up _ < /proc/uptime; t=${up%%.*}${up#*.}0\n"
        "    [ $((t - t0)) -lt %d ] || break\n"
        "    read rq < $K/queue_requests; read qr < $B/queue_resets\n"
        "    echo \"s $t $rq $qr\"\n"
        "    usleep 40000; done\n"
        "  echo done $k left=$(cat $K/$k) qr=$(cat $B/queue_resets) sim=$(cat $K/queue_resets)\n"
        "done\n"
        "echo resets=$R0/$(cat $B/resets) queue_resets=$Q0/$(cat $B/queue_resets)\n"
        "echo unanswered=$(dmesg | grep -c 'without writing its status')\n"
        "echo %d > $K/fault_queue; echo 0 > $K/queue_reset_delay_ms; echo $T0 > $P\n"
        "qs_stop $d" % (SIM_BOUND_MS, QUEUE_DELAY_MS, " ".join(USED_FAULTS), SAMPLE_MS,
                        ANY_QUEUE), timeout=300)
    for knob in USED_FAULTS:
        part = out.split("fault %s " % knob, 1)[-1].split("done %s " % knob)
        head = part[0].splitlines()[0] if part else ""
        tail = part[1].splitlines()[0] if len(part) > 1 else ""
        samples = [tuple(int(v) for v in m.groups()) for m in re.finditer(
            r"^s (\d+) (\d+) (\d+) \d+$", part[0], re.M)] if len(part) > 1 else []
        qa, qb = num(head, "qr"), num(tail, "qr")
        qmove = [qb - qa] if None not in (qa, qb) else None
        smove = per_queue(rest(head, "sim"), rest(tail, "sim"))
        stall_ms, q0_served = sim_stall(samples)
        healed = len(samples) > 1 and samples[-1][2] > samples[0][2]
        sim_ok = smove is not None and (smove[1] >= 1 and smove[0] == 0 if len(smove) == 2
                                        else len(smove) == 1 and smove[0] >= 1)
        ktap.ok("qreset: sim %s on queue 1 under the writer: queue 1 alone is reset "
                "(queue_resets +1, the device's too), queue 0 serves while queue 1 is held "
                "by the reset, queue 1 serves again" % knob,
                qmove == [1] and sim_ok and "left=0" in tail and healed
                and stall_ms >= QUEUE_DELAY_MS // 3 and q0_served >= 3,
                "queue_resets %s, sim queue_resets %s, longest stall of queue 1 %d ms in "
                "which queue 0 served %d\n%s\n%s\nsamples (ms, q0, q1): %s"
                % (qmove, smove, stall_ms, q0_served, head, tail, samples))
    # used_waiting_id: the driver finds no status in the request named, or
    # (if the device served that one first) a used entry not in flight.
    ktap.diag("sim: requests held for the queue's reset as used without a status: %s"
              % num(out, "unanswered"))
    res, healed_all = pair(out, "resets"), pair(out, "queue_resets")
    ktap.ok("qreset: sim faults on queue 1: healed by %d queue resets, resets (whole device) "
            "did not move, 0 writer errors, every acknowledged block reads back right"
            % len(USED_FAULTS),
            rc == 0 and res and res[0] == res[1] and healed_all
            and healed_all[1] - healed_all[0] == len(USED_FAULTS) and writer_ok(out, 4), out)
    return True


def check_sim_hang(ktap, bvm):
    """(5) a queue reset that never completes: the device is reset."""
    rc, out = bvm.sh(
        "qs_sim || exit 1\n"
        "qs_start $d 0 512\n"
        "n=$(cat $B/resets); q=$(cat $B/queue_resets)\n"
        "echo 1 > $K/queue_reset_hang; echo hang_rc=$?\n"
        "t0=$(now_ms); echo write_$(qs_write $B/reset_queue 1) ms=$(($(now_ms) - t0))\n"
        "sleep 1\n"
        "echo resets=$n/$(cat $B/resets) queue_resets=$q/$(cat $B/queue_resets)\n"
        "qs_stop $d\n"
        "dmesg | tail -n 30 | grep -i 'queue\\|reset' | sed 's/^/dmesg: /'", timeout=300)
    m = re.search(r"write_rc=(\d+).* ms=(\d+)", out)
    res = pair(out, "resets")
    said = [l for l in out.splitlines() if l.startswith("dmesg: ") and FALLBACK_RE.search(l)]
    ktap.diag("queue reset hang: write rc %s after %s ms, resets %s"
              % (m and m.group(1), m and m.group(2), res))
    ktap.ok("qreset: sim queue_reset_hang: the reset_queue write returns within 5 s, dmesg "
            "says the core resets the device, resets moved",
            rc == 0 and m and int(m.group(2)) < 5000 and res and res[1] > res[0]
            and said, out)
    ktap.ok("qreset: sim queue_reset_hang: the disk works after the whole-device reset: "
            "0 writer errors, every acknowledged block reads back right",
            rc == 0 and res and res[1] > res[0] and writer_ok(out, 4), out)
    hang_set = "hang_rc=0" in out
    rc, out = bvm.sh(
        "qs_sim || exit 1\n"
        "t0=$(now_ms); echo $r > $RV_BUS/drivers/revirt_blk/unbind; "
        "echo unbind_rc=$? unbind_ms=$(($(now_ms) - t0))\n"
        "t0=$(now_ms); rmmod revirt_sim; echo rmmod_rc=$? rmmod_ms=$(($(now_ms) - t0))",
        timeout=120)
    ms = {k: int(v) for k, v in re.findall(r"(\w+_ms)=(\d+)", out)}
    ktap.ok("qreset: sim: unbind and rmmod revirt_sim with queue_reset_hang set return "
            "in bounded time",
            hang_set and "unbind_rc=0" in out and ms.get("unbind_ms", 99999) < 20000
            and "rmmod_rc=0" in out and ms.get("rmmod_ms", 99999) < 20000, out)


def check_sim_no_ring_reset(ktap, bvm):
    """(6) revirt_sim ring_reset=0: the same fault resets the device."""
    rc, out = bvm.sh(
        "rv_insmod revirt_sim %s ring_reset=0 || exit 1\n"
        "qs_sim || exit 1\n"
        "c=$(dmesg | grep -c 'no per-queue reset')\n"
        "echo write_$(qs_write $B/reset_queue 1) said=$c/$(dmesg | grep -c 'no per-queue reset')\n"
        "qs_start $d 0 512\n"
        "n=$(cat $B/resets); q=$(cat $B/queue_resets); s=$(cat $K/queue_resets)\n"
        "echo 1 > $K/fault_queue; echo 1 > $K/used_bad_id\n"
        "i=0; while [ $(cat $B/resets) -le $n ] && [ $i -lt 100 ]; do usleep 100000; "
        "i=$((i + 1)); done\n"
        "sleep 1\n"
        "echo resets=$n/$(cat $B/resets) queue_resets=$q/$(cat $B/queue_resets) "
        "left=$(cat $K/used_bad_id)\n"
        "echo sim_before=$s\necho sim_after=$(cat $K/queue_resets)\n"
        "qs_stop $d" % SIM_PARAMS, timeout=300)
    res, qres, said = pair(out, "resets"), pair(out, "queue_resets"), pair(out, "said")
    sim = (ints(rest(out, "sim_before")), ints(rest(out, "sim_after")))
    path = ("whole-device reset" if res and res[1] > res[0] else "no whole-device reset") + \
        " (resets %s), queue_resets %s, sim queue_resets %s -> %s" % ((res, qres) + sim)
    ktap.diag("sim ring_reset=0: used_bad_id on queue 1 took the path: " + path)
    ktap.ok("qreset: sim ring_reset=0: reset_queue fails with EOPNOTSUPP ('no per-queue "
            "reset'); used_bad_id on queue 1 takes the whole-device reset (resets moves, "
            "queue_resets does not); 0 writer errors, the blocks read back right",
            rc == 0 and re.search(r"write_rc=[1-9] err=.*not supported", out)
            and said and said[1] > said[0] and res and res[1] > res[0]
            and qres and qres[0] == qres[1] and sim[0] and sim[0] == sim[1] and "left=0" in out
            and writer_ok(out, 4), "%s\n%s" % (path, out))


def run(ktap, env):
    if env.skip_unbuilt(ktap, "qreset: per-queue reset", MODULES):
        return
    disks = [Disk(env.tmp, "qr", 16 * MiB,
                  props="num-queues=2,queue_reset=on,queue-size=%d" % QR_SIZE),
             Disk(env.tmp, "nq", 8 * MiB, props="num-queues=1,queue_reset=off")]
    bvm = BlkVM(env, "qreset", disks, smp=2)
    bvm.sh = lambda script, timeout=120: bvm.vm.sh(
        blkdrv.BLK_LIB + t35.LIB + LIB + script, timeout)
    qr_state, nq_state = [], []
    paths = {d.qid: d.path for d in disks}
    try:
        rv = check_setup(ktap, bvm)
        if not rv:
            return
        t = [time.monotonic()]
        qr_state = check_resets(ktap, bvm, rv)
        t.append(time.monotonic())
        qr_state += check_resize(ktap, bvm, rv)
        t.append(time.monotonic())
        nq_state = check_no_ring_reset(ktap, bvm)
        t.append(time.monotonic())
        if check_sim_faults(ktap, bvm):
            check_sim_hang(ktap, bvm)
            bvm.sh("rmmod revirt_sim")
            check_sim_no_ring_reset(ktap, bvm)
        t.append(time.monotonic())
        ktap.diag("took: resets %.0fs, resizes %.0fs, queue_reset=off %.0fs, sim %.0fs"
                  % tuple(b - a for a, b in zip(t, t[1:])))
        rc, out = bvm.sh("rmmod revirt_sim; rvb_rmmod && echo rmmod_ok", timeout=120)
        ktap.ok("qreset: rmmod revirt_sim and revirt_blk at the end", "rmmod_ok" in out, out)
        bad = bvm.clean_dmesg()
        ktap.ok("qreset: no warning or oops in dmesg", not bad, "\n".join(bad[:40]))
        bad = qemu_complaints(bvm)
        ktap.ok("qreset: QEMU reported no malformed ring across the queue resets and resizes",
                not bad, "\n".join(bad[:20]))
    except VMError as e:
        ktap.ok("qreset: the VM answered", False, str(e))
    finally:
        bvm.stop()
    for qid, state in (("qr", qr_state), ("nq", nq_state)):
        checked, bad = host_check_stamps(paths[qid], state)
        ktap.ok("qreset: host image of %s: every acknowledged stamp is there (%d blocks "
                "checked)" % (qid, checked), checked > 0 and bad == 0,
                "checked %d bad %d" % (checked, bad))
