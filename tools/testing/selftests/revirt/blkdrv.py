# SPDX-License-Identifier: GPL-2.0-only
"""What the revirt_blk tests (test_30_blkdrv*.py) share: disk images, VMs
with their own disks, guest helpers, and the checks every transport gets.

Each disk has a serial equal to its QEMU id; the guest finds its rvdX by
reading /sys/block/rvd*/serial, so no test depends on probe order.  The
trace pointer of a disk's VirtIODevice comes from the
virtio_blk_handle_write events seen while the guest writes to that disk
only.
"""

import hashlib
import os
import random
import re

from revirt_vm import VM, by_vdev, collapse, status_value
from revirt_rig import GUEST_LIB, kernel_bad_lines

TRACE = ["virtio_set_status", "virtio_blk_handle_write", "virtio_queue_notify"]

BLK_LIB = GUEST_LIB + r"""
# rvb_dev SERIAL: the rvdX whose serial is SERIAL.
rvb_dev() {
	for _b in /sys/block/rvd*; do
		[ -e "$_b/serial" ] || continue
		if [ "$(cat $_b/serial 2>/dev/null)" = "$1" ]; then
			echo "${_b##*/}"
			return 0
		fi
	done
	echo "no disk with serial $1" >&2
	return 1
}

# rvb_rv SERIAL: the revirtN under that disk.
rvb_rv() {
	_d=$(rvb_dev "$1") || return 1
	_r=$(readlink -f /sys/block/$_d/device)
	echo "${_r##*/}"
}

# rvb_wait SERIAL: wait (bounded) until the disk is there.
rvb_wait() {
	_i=0
	while [ $_i -lt 100 ]; do
		rvb_dev "$1" 2>/dev/null && return 0
		_i=$((_i + 1))
		sleep 0.1
	done
	rvb_dev "$1"
}

rvb_unbind() {
	echo "$1" >$RV_BUS/drivers/revirt_blk/unbind
}

rvb_bind() {
	echo "$1" >$RV_BUS/drivers/revirt_blk/bind
}

# rvb_rmmod: unload revirt_blk, retrying while a writer holds a disk open.
rvb_rmmod() {
	_i=0
	while ! rmmod revirt_blk 2>/dev/null; do
		_i=$((_i + 1))
		[ $_i -lt 2000 ] || { rmmod revirt_blk; return 1; }
		usleep 5000
	done
}
"""


def make_image(path, size, fill=None):
    """A raw image of size bytes; fill: None (sparse zeros) or bytes for
    its start."""
    with open(path, "wb") as f:
        f.truncate(size)
        if fill:
            f.write(fill)


def random_bytes(n, seed):
    return random.Random(seed).randbytes(n)


def sha256_file(path, offset=0, length=None):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        left = length if length is not None else os.path.getsize(path) - offset
        while left > 0:
            data = f.read(min(left, 1 << 20))
            if not data:
                break
            h.update(data)
            left -= len(data)
    return h.hexdigest()


class Disk:
    def __init__(self, tmp, qid, size, dev="virtio-blk-pci", props="",
                 drive_props="", fill=None, blkdebug=None):
        self.qid = qid
        self.path = os.path.join(tmp, "%s.img" % qid)
        self.size = size
        make_image(self.path, size, fill)
        fname = self.path
        if blkdebug:
            # QEMU's blkdebug driver fails the requests the rules name
            cfg = os.path.join(tmp, "%s.blkdebug" % qid)
            with open(cfg, "w") as f:
                f.write(blkdebug)
            fname = "blkdebug:%s:%s" % (cfg, self.path)
        self.args = ["-drive", "file=%s,if=none,format=raw,id=drv-%s%s"
                     % (fname, qid, "," + drive_props if drive_props else ""),
                     "-device", "%s,drive=drv-%s,id=%s,serial=%s%s"
                     % (dev, qid, qid, qid, "," + props if props else "")]


class BlkVM:
    """A VM of its own for the block tests."""

    def __init__(self, env, name, disks, machine="pc", smp=1, extra=(),
                 append="", mem=512):
        self.disks = {d.qid: d for d in disks}
        args = ["-smp", str(smp)] + list(extra)
        for d in disks:
            args += d.args
        self.vm = VM(devices=args, machine=machine, kernel=env.kernel,
                     initrd=env.initrd, trace_events=TRACE, extra_append=append,
                     name=name, mem=mem)
        self.ptr = {}

    def sh(self, script, timeout=120):
        return self.vm.sh(BLK_LIB + script, timeout)

    def stop(self):
        self.vm.stop()

    def mark(self):
        return self.vm.trace_mark()

    def writes_of(self, qid, since, until=None):
        return by_vdev(self.vm.status_writes(since, until)).get(self.ptr.get(qid), [])

    def learn_ptr(self, qid, since, until=None):
        """Trace pointer of qid from the writes in [since, until)."""
        ptrs = {a.split()[1] for _, a in
                self.vm.trace_events(since, until, event="virtio_blk_handle_write")}
        if len(ptrs) == 1:
            self.ptr[qid] = ptrs.pop()
        return self.ptr.get(qid)

    def notified_queues(self, qid, since, until=None):
        out = set()
        for _, a in self.vm.trace_events(since, until, event="virtio_queue_notify"):
            m = re.match(r"vdev (\S+) n (\d+)", a)
            if m and m.group(1) == self.ptr.get(qid):
                out.add(int(m.group(2)))
        return out

    def host_status(self, qid, machine="pc"):
        path = ("/machine/peripheral/%s/virtio-backend" % qid if machine == "pc"
                else "/machine/peripheral/%s" % qid)
        try:
            return status_value(self.vm.virtio_status(path))
        except Exception:
            # virtio-*-device on microvm: the device is the backend itself
            return status_value(self.vm.virtio_status("/machine/peripheral/%s" % qid))

    def clean_dmesg(self):
        rc, out = self.vm.sh("dmesg", timeout=30)
        return kernel_bad_lines(out.splitlines())


def check_quiet(ktap, bvm, tag, hung, hung_secs, out):
    """The end of a test under the hung-task detector: out holds the
    guest's "hung=N" (tasks reported blocked); hung says whether the
    detector could be armed.  Then a dmesg with no warning or oops."""
    if hung:
        ktap.ok("%s: the hung-task detector (%d s) reports no blocked task" % (tag, hung_secs),
                "hung=0" in out, out)
    else:
        ktap.skip("%s: the hung-task detector reports no blocked task" % tag,
                  "no /proc/sys/kernel/hung_task_timeout_secs")
    bad = bvm.clean_dmesg()
    ktap.ok("%s: no warning or oops in dmesg" % tag, not bad, "\n".join(bad[:40]))


def hx(vals):
    return " ".join("0x%x" % v for v in vals) or "(none)"


def probe_seq(version1):
    return [3, 0xb, 0xf] if version1 else [3, 7]


def check_reload(ktap, bvm, qid, tag, version1=True, blocks=1024, seed=11):
    """Pattern written and flushed, driver unbound and bound, then unloaded
    and loaded: read back identical each time; the host sees a reset of
    the disk at the unbind and at the rmmod.  Returns True if all passed."""
    ok = ktap.ok
    good = True
    m0 = bvm.mark()
    rc, out = bvm.sh("d=$(rvb_dev %s) || exit 1\n"
                     "rvblk-io fill /dev/$d %d 0 %d && rvblk-io verify /dev/$d %d 0 %d"
                     % (qid, seed, blocks, seed, blocks), timeout=300)
    m1 = bvm.mark()
    ptr = bvm.learn_ptr(qid, m0, m1)
    good &= ok("%s: %d checksummed blocks written, flushed and read back" % (tag, blocks),
               rc == 0 and "0 bad" in out and ptr is not None,
               "%s\ntrace pointer %s" % (out, ptr))

    rc, out = bvm.sh("r=$(rvb_rv %s) || exit 1\n"
                     "rvb_unbind $r || exit 1\n"
                     "echo status=$(cat $RV_BUS/devices/$r/status)\n"
                     "ls /sys/block | grep -c . >/dev/null\n"
                     "rvb_dev %s 2>/dev/null && echo still-there\n"
                     "true" % (qid, qid))
    m2 = bvm.mark()
    seq = collapse(bvm.writes_of(qid, m1, m2))
    good &= ok("%s: unbind removes the disk; guest status 0x01" % tag,
               rc == 0 and "status=0x01" in out and "still-there" not in out, out)
    good &= ok("%s: unbind: host sees the disk reset (0) then ACKNOWLEDGE" % tag,
               seq == [0, 1], "status writes of %s: %s" % (qid, hx(seq)))

    rc, out = bvm.sh("for r in $(ls $RV_BUS/devices); do\n"
                     "  [ -e $RV_BUS/devices/$r/driver ] || rvb_bind $r\n"
                     "done\n"
                     "d=$(rvb_wait %s) || exit 1\n"
                     "rvblk-io verify /dev/$d %d 0 %d" % (qid, seed, blocks), timeout=300)
    m3 = bvm.mark()
    seq = collapse(bvm.writes_of(qid, m2, m3))
    good &= ok("%s: bind: the same data reads back" % tag,
               rc == 0 and "0 bad" in out, out)
    good &= ok("%s: bind: host sees %s" % (tag, hx(probe_seq(version1))),
               seq == probe_seq(version1), "status writes: %s" % hx(seq))

    rc, out = bvm.sh("rvb_rmmod || exit 1\n"
                     "ls /sys/block | grep rvd && exit 1\n"
                     "echo unloaded")
    m4 = bvm.mark()
    seq = collapse(bvm.writes_of(qid, m3, m4))
    good &= ok("%s: rmmod revirt_blk removes every disk" % tag,
               rc == 0 and "unloaded" in out, out)
    good &= ok("%s: rmmod: host sees the disk reset (0) then ACKNOWLEDGE" % tag,
               seq == [0, 1], "status writes: %s" % hx(seq))

    rc, out = bvm.sh("rv_insmod revirt_blk || exit 1\n"
                     "d=$(rvb_wait %s) || exit 1\n"
                     "rvblk-io verify /dev/$d %d 0 %d" % (qid, seed, blocks), timeout=300)
    m5 = bvm.mark()
    seq = collapse(bvm.writes_of(qid, m4, m5))
    good &= ok("%s: insmod revirt_blk: the same data reads back" % tag,
               rc == 0 and "0 bad" in out, out)
    good &= ok("%s: insmod: host sees %s" % (tag, hx(probe_seq(version1))),
               seq == probe_seq(version1), "status writes: %s" % hx(seq))
    return good


def guest_sha(bvm, qid, part="", blocks=None):
    cnt = "count=%d" % blocks if blocks else ""
    rc, out = bvm.sh("d=$(rvb_dev %s) || exit 1\n"
                     "dd if=/dev/${d}%s bs=4096 %s 2>/dev/null | sha256sum"
                     % (qid, part, cnt), timeout=120)
    words = out.split()
    return words[0] if rc == 0 and words else "(rc=%d %s)" % (rc, out.strip())
