# SPDX-License-Identifier: GPL-2.0-only
"""revirt_blk: device resets under I/O that no application notices.

One VM (2 vCPUs) with two QEMU virtio-blk-pci disks and the simulated
block device of revirt_sim:

  rs   num-queues=2: a stamping writer (rvblk-stamp: 4 jobs, O_DIRECT and
       O_DSYNC, every 4 KiB block stamped with its number, generation and
       a checksum) across 100 resets through the reset attribute at random
       moments, across DEVICE_NEEDS_RESET raised by QEMU (a malformed ring,
       revirt_blk's malformed_requests knob) and across features_mask
       turning VIRTIO_BLK_F_MQ off and on
  fs   an ext4 image made on the host (mkfs.ext4), mounted in the guest,
       files written with fsync across 20 resets
  sim  revirt_sim's disk: 50 resets while it holds the requests it got
       (QEMU's device answers everything before its reset completes, so
       only these find requests in flight to requeue every time),
       DEVICE_NEEDS_RESET under I/O, a device that
       holds its requests (the blk-mq timeout resets it) and one whose
       reset hangs too (the disk goes dead, requests fail, nothing hangs,
       unbind and rmmod work)

The promise: the disk stays (same name, same open descriptors), the writer
sees 0 errors, every block it was told was written reads back right, in
the guest and on the host image after QEMU exited; e2fsck -fn finds
nothing.  The host sees every reset in the virtio_set_status trace.
"""

import os
import re
import shutil
import struct
import subprocess
import types

from blkdrv import BlkVM, Disk, collapse, hx
from revirt_rig import kmods_initrd
from revirt_vm import VMError

MODULES = ["revirt", "revirt_pci", "revirt_blk", "revirt_sim"]
MiB = 1 << 20
RESETS = 100
SIM_RESETS = 50
FS_RESETS = 20
STAMP_BLOCKS = 512
STAMP_JOBS = 4
MQ_BIT = 12
FS_KMODS = ["crc16", "mbcache", "jbd2", "crc32c_generic", "ext4"]

LIB = r"""
# the disk of revirt_sim
rvb_sim() {
	for _b in /sys/block/rvd*; do
		case "$(cat $_b/serial 2>/dev/null)" in
		rvsim*) echo "${_b##*/}"; return 0 ;;
		esac
	done
	return 1
}
rvb_resets() { cat $RV_BUS/devices/$1/resets; }
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
# stamp_start DEV FIRST COUNT [SECS]: the writer in the background, until
# /tmp/stop (or SECS, 300 by default)
stamp_start() {
	rm -f /tmp/stop /tmp/stamp.out /tmp/stamp.err
	rvblk-stamp write /dev/$1 $2 $3 4 ${4:-300} /tmp/stop >/tmp/stamp.out 2>/tmp/stamp.err &
	STAMP=$!
	sleep 1
}
# stamp_stop DEV: stop the writer, report it and check the blocks
stamp_stop() {
	touch /tmp/stop
	wait $STAMP
	echo writer=$?
	cat /tmp/stamp.out
	head -n 5 /tmp/stamp.err
	rvblk-stamp check /dev/$1 /tmp/stamp.out
	echo check=$?
}
"""

# ---- the stamp format of guest/rvblk-stamp.c, read on the host ----------

MAGIC = 0x72767374616d7031
STEP = 0x9e3779b97f4a7c15
M64 = (1 << 64) - 1


def mix(x):
    x ^= x >> 33
    x = (x * 0xff51afd7ed558ccd) & M64
    x ^= x >> 33
    x = (x * 0xc4ceb9fe1a85ec53) & M64
    x ^= x >> 33
    return x


def stamp(block, gen):
    x = mix(block ^ ((gen << 40) & M64) ^ MAGIC)
    body = [x ^ ((i * STEP) & M64) for i in range(4, 512)]
    return struct.pack("<4Q", MAGIC, block, gen, (sum(body) & M64) ^ MAGIC) + \
        struct.pack("<508Q", *body)


def stamp_state(out):
    """(first, count, round, pos, tried) of each job's line (guest/rvblk-stamp.c)."""
    return [tuple(int(v or 0) for v in m.groups()) for m in re.finditer(
        r"stamp job \d+ first (\d+) count (\d+) round (\d+) pos (\d+)[^\n]*?"
        r"(?: tried (\d))?$", out, re.M)]


def host_check_stamps(path, state):
    """(checked, bad) for the blocks the writer was told were written; the
    block of a job's failed last write may hold that write's stamp (a write
    that failed may still have reached the disk)."""
    checked = bad = 0
    with open(path, "rb") as f:
        for first, count, rnd, pos, tried in state:
            for i in range(count):
                gen = rnd if i < pos else rnd - 1
                if not gen:
                    continue
                f.seek((first + i) * 4096)
                checked += 1
                got = f.read(4096)
                if got != stamp(first + i, gen) and \
                        not (tried and i == pos and got == stamp(first + i, rnd)):
                    bad += 1
    return checked, bad


def writer_ok(out, jobs=STAMP_JOBS):
    """The writer's lines: all jobs, 0 errors, exit 0, check clean."""
    errs = [int(e) for e in re.findall(r" errors (\d+) ", out)]
    writes = sum(int(w) for w in re.findall(r" writes (\d+) ", out))
    return ("writer=0" in out and len(errs) == jobs and not any(errs)
            and writes > 0 and re.search(r"checked [1-9]\d* bad 0", out)
            and "check=0" in out)


def summary(out):
    """One diagnostic line: the run's numbers."""
    writes = sum(int(w) for w in re.findall(r" writes (\d+) ", out))
    lat = max([int(v) for v in re.findall(r"maxlat_us (\d+)", out)] or [0])
    took = re.search(r"took_ms=(\d+)", out)
    return "writes %d, longest write %.1f ms%s" % (
        writes, lat / 1000.0, ", resets took %s ms" % took.group(1) if took else "")


def resets_of(out, tag="resets"):
    m = re.search(r"%s=(\d+)/(\d+)" % tag, out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def host_resets(seq):
    """Resets that reached DRIVER_OK again in a collapsed status sequence."""
    n = 0
    for i, v in enumerate(seq):
        if v == 0 and 0xf in seq[i + 1:i + 5]:
            n += 1
    return n


# ---- the VM ---------------------------------------------------------------

def mkfs(path):
    exe = shutil.which("mkfs.ext4") or "/sbin/mkfs.ext4"
    if not os.path.exists(exe):
        return False
    return subprocess.run([exe, "-q", "-F", "-O", "^metadata_csum", path],
                          capture_output=True).returncode == 0


def e2fsck(path):
    exe = shutil.which("e2fsck") or "/sbin/e2fsck"
    r = subprocess.run([exe, "-fn", path], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


# ---- the checks -------------------------------------------------------------

def check_setup(ktap, bvm):
    rc, out = bvm.sh("rv_insmod revirt && rv_insmod revirt_pci && rv_insmod revirt_blk || exit 1\n"
                     "rv_insmod revirt_sim || exit 1\n"
                     "for q in rs fs; do d=$(rvb_wait $q) || exit 1; "
                     "echo $q $d mq=$(ls /sys/block/$d/mq | wc -l); done\n"
                     "i=0; while ! rvb_sim >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done\n"
                     "echo sim $(rvb_sim)")
    ok = ktap.ok("blkreset: the disks rs (2 queues), fs and revirt_sim's disk appear",
                 rc == 0 and re.search(r"rs rvd\w+ mq=2", out)
                 and re.search(r"sim rvd\w+", out), out)
    return ok


def check_resets(ktap, bvm):
    """(1) 100 resets through the reset attribute under the stamping writer."""
    m0 = bvm.mark()
    rc, out = bvm.sh(
        "d=$(rvb_dev rs) && r=$(rvb_rv rs) || exit 1\n"
        "exec 3</dev/$d\n"
        "n=$(rvb_resets $r); t0=$(now_ms)\n"
        "stamp_start $d 0 %d\n"
        "i=0; fail=0\n"
        "while [ $i -lt %d ]; do\n"
        "  usleep $((RANDOM %% 100 * 1000))\n"
        "  echo 1 > $RV_BUS/devices/$r/reset || fail=$((fail + 1))\n"
        "  i=$((i + 1))\n"
        "done\n"
        "echo resets=$n/$(rvb_resets $r) failed=$fail took_ms=$(($(now_ms) - t0))\n"
        "stamp_stop $d\n"
        "echo same=$(rvb_dev rs) was=$d fd3=$(dd bs=4096 count=1 <&3 2>/dev/null | wc -c)\n"
        "echo gone=$(dmesg | grep -c 'did not come back')"
        % (STAMP_BLOCKS, RESETS), timeout=900)
    m1 = bvm.mark()
    ktap.diag("reset run: " + summary(out))
    a, b = resets_of(out)
    m = re.search(r"same=(\S+) was=(\S+)", out)
    ktap.ok("blkreset: %d resets under the stamping writer: 0 errors, every acknowledged block "
            "reads back right in the guest" % RESETS,
            rc == 0 and writer_ok(out) and b - a >= RESETS and "failed=0" in out, out)
    ktap.ok("blkreset: the disk stays across the resets: same name, an open descriptor still reads",
            m and m.group(1) == m.group(2) and "fd3=4096" in out
            and "gone=0" in out, out)
    ptr = bvm.learn_ptr("rs", m0, m1)
    seq = collapse(bvm.writes_of("rs", m0, m1))
    n = host_resets(seq)
    ktap.ok("blkreset: the host traces %d resets of rs back to DRIVER_OK (saw %d)" % (RESETS, n),
            ptr is not None and n >= RESETS, "ptr %s, status writes: %s" % (ptr, hx(seq[:60])))
    return stamp_state(out)


def check_needs_reset_qemu(ktap, bvm):
    """(3) DEVICE_NEEDS_RESET raised by QEMU under the writer."""
    m0 = bvm.mark()
    rc, out = bvm.sh(
        "d=$(rvb_dev rs) && r=$(rvb_rv rs) || exit 1\n"
        "n=$(rvb_resets $r)\n"
        "stamp_start $d 1024 512\n"
        "for k in 1 2 3; do\n"
        "  m=$(rvb_resets $r)\n"
        "  echo 1 > /sys/module/revirt_blk/parameters/malformed_requests\n"
        "  i=0; while [ $(rvb_resets $r) -le $m ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done\n"
        "  sleep 0.5\n"
        "done\n"
        "echo resets=$n/$(rvb_resets $r) status=$(cat $RV_BUS/devices/$r/status) same=$(rvb_dev rs)/$d\n"
        "stamp_stop $d\n"
        "echo recovered=$(dmesg | grep -c 'needs a reset')", timeout=600)
    seq = collapse(bvm.writes_of("rs", m0, bvm.mark()))
    a, b = resets_of(out)
    m = re.search(r"same=(\S+)/(\S+)", out)
    ktap.ok("blkreset: DEVICE_NEEDS_RESET from QEMU 3 times under the writer: recovered by itself, "
            "0 errors, the blocks read back right",
            rc == 0 and writer_ok(out) and b - a >= 3 and "status=0x0f" in out
            and m and m.group(1) == m.group(2), out)
    try:
        with open(bvm.vm.stderr_path, errors="replace") as f:
            qerr = f.read()
    except OSError:
        qerr = ""
    state = stamp_state(out) if writer_ok(out) else []
    ktap.ok("blkreset: the host traces the 3 recoveries of rs back to DRIVER_OK",
            host_resets(seq) >= 3, "status writes: %s" % hx(seq[:40]))
    ktap.ok("blkreset: QEMU reported the malformed rings", qerr.count("Guest says index") >= 3,
            qerr[-800:])
    return state


def check_mq(ktap, bvm):
    """(4) features_mask: VIRTIO_BLK_F_MQ off and on under the writer."""
    off = "0x%016x" % (((1 << 64) - 1) & ~(1 << MQ_BIT))
    rc, out = bvm.sh(
        "d=$(rvb_dev rs) && r=$(rvb_rv rs) || exit 1\n"
        "stamp_start $d 2048 512\n"
        "echo %s > $RV_BUS/devices/$r/features_mask && echo mq_off=$(ls /sys/block/$d/mq | wc -l)\n"
        "sleep 2\n"
        "echo 0xffffffffffffffff > $RV_BUS/devices/$r/features_mask && "
        "echo mq_on=$(ls /sys/block/$d/mq | wc -l)\n"
        "sleep 2\n"
        "echo %s > $RV_BUS/devices/$r/features_mask && echo mq_off2=$(ls /sys/block/$d/mq | wc -l)\n"
        "echo 0xffffffffffffffff > $RV_BUS/devices/$r/features_mask && "
        "echo mq_on2=$(ls /sys/block/$d/mq | wc -l)\n"
        "echo same=$(rvb_dev rs)/$d\n"
        "stamp_stop $d" % (off, off), timeout=600)
    m = re.search(r"same=(\S+)/(\S+)", out)
    ktap.ok("blkreset: features_mask turns VIRTIO_BLK_F_MQ off and on under the writer: "
            "hardware queues 2 -> 1 -> 2, 0 errors",
            rc == 0 and writer_ok(out) and "mq_off=1" in out and "mq_on=2" in out
            and "mq_off2=1" in out and "mq_on2=2" in out and m and m.group(1) == m.group(2), out)
    return stamp_state(out) if writer_ok(out) else []


def check_fs(ktap, bvm):
    """(2) ext4 on the disk fs, files written with fsync across 20 resets."""
    rc, out = bvm.sh(
        "rv_kmods_load || echo KMODS_FAILED\n"
        "grep -qw ext4 /proc/filesystems || { echo NOEXT4 $(cat /lib/modules/kernel/order); exit 0; }\n"
        "d=$(rvb_dev fs) && r=$(rvb_rv fs) || exit 1\n"
        "mkdir -p /mnt && mount -t ext4 /dev/$d /mnt || exit 1\n"
        "dd if=/dev/urandom of=/tmp/src bs=65536 count=16 2>/dev/null\n"
        "want=$(sha256sum </tmp/src)\n"
        "rm -f /tmp/stop\n"
        "( i=0; while [ ! -e /tmp/stop ]; do i=$((i + 1));\n"
        "    dd if=/tmp/src of=/mnt/f$((i %% 8)) bs=65536 conv=fsync 2>/dev/null || echo WRITE_FAILED $i;\n"
        "  done; echo files=$i ) >/tmp/fs.out 2>&1 &\n"
        "w=$!\n"
        "n=$(rvb_resets $r); sleep 1\n"
        "k=0; while [ $k -lt %d ]; do usleep $((RANDOM %% 300 * 1000)); "
        "echo 1 > $RV_BUS/devices/$r/reset; k=$((k + 1)); done\n"
        "touch /tmp/stop; wait $w; cat /tmp/fs.out\n"
        "echo resets=$n/$(rvb_resets $r)\n"
        "umount /mnt || echo UMOUNT_FAILED\n"
        "mount -t ext4 -o ro /dev/$d /mnt || exit 1\n"
        "bad=0; for f in /mnt/f*; do [ \"$(sha256sum <$f)\" = \"$want\" ] || bad=$((bad + 1)); done\n"
        "echo files_bad=$bad count=$(ls /mnt | grep -c '^f')\n"
        "umount /mnt; sync\n"
        "echo fserr=$(dmesg | grep -ci 'EXT4-fs error')"
        % FS_RESETS, timeout=600)
    if "NOEXT4" in out:
        ktap.diag(out)
        ktap.skip("blkreset: ext4 across resets", "no ext4 in the guest kernel")
        return False
    a, b = resets_of(out)
    ktap.ok("blkreset: ext4 mounted on the disk, files written with fsync across %d resets: "
            "no write failed, all intact after umount" % FS_RESETS,
            rc == 0 and "KMODS_FAILED" not in out and "WRITE_FAILED" not in out
            and "UMOUNT_FAILED" not in out
            and b - a >= FS_RESETS and "files_bad=0" in out and "count=8" in out
            and "fserr=0" in out, out)
    return True


def check_needs_reset_sim(ktap, bvm):
    """(3) DEVICE_NEEDS_RESET raised by revirt_sim's disk under the writer."""
    rc, out = bvm.sh(
        "d=$(rvb_sim) || exit 1\n"
        "r=$(basename $(readlink -f /sys/block/$d/device))\n"
        "K=/sys/kernel/debug/revirt_sim/$r\n"
        "n=$(rvb_resets $r)\n"
        "stamp_start $d 0 512\n"
        "for k in 1 2 3; do echo 1 > $K/needs_reset; sleep 1; done\n"
        "echo resets=$n/$(rvb_resets $r) status=$(cat $RV_BUS/devices/$r/status) same=$(rvb_sim)/$d\n"
        "stamp_stop $d", timeout=300)
    a, b = resets_of(out)
    m = re.search(r"same=(\S+)/(\S+)", out)
    ktap.ok("blkreset: DEVICE_NEEDS_RESET from revirt_sim 3 times under the writer: "
            "0 errors, the blocks read back right",
            rc == 0 and writer_ok(out) and b - a >= 3 and "status=0x0f" in out
            and m and m.group(1) == m.group(2), out)


def check_resets_sim(ktap, bvm):
    """(1) again on revirt_sim's disk, each reset while the device holds
    the requests it got (the hold knob): QEMU's device, and revirt_sim's
    without hold, answer what they have before a reset completes, so
    only this makes every reset find requests in flight, which must be
    requeued, not failed."""
    rc, out = bvm.sh(
        "d=$(rvb_sim) || exit 1\n"
        "r=$(basename $(readlink -f /sys/block/$d/device))\n"
        "K=/sys/kernel/debug/revirt_sim/$r\n"
        "n=$(rvb_resets $r); t0=$(now_ms)\n"
        "stamp_start $d 1024 512\n"
        "i=0; fail=0; held=0\n"
        "while [ $i -lt %d ]; do\n"
        "  echo 1 > $K/hold\n"
        "  usleep $((RANDOM %% 50 * 1000 + 5000))\n"
        "  h=$(cat $K/in_flight); [ \"$h\" -gt 0 ] 2>/dev/null && held=$((held + 1))\n"
        "  echo 1 > $RV_BUS/devices/$r/reset || fail=$((fail + 1))\n"
        "  echo 0 > $K/hold\n"
        "  usleep $((RANDOM %% 50 * 1000))\n"
        "  i=$((i + 1))\n"
        "done\n"
        "echo held=$held\n"
        "echo resets=$n/$(rvb_resets $r) failed=$fail took_ms=$(($(now_ms) - t0))\n"
        "stamp_stop $d\n"
        "echo same=$(rvb_sim)/$d" % SIM_RESETS, timeout=600)
    ktap.diag("sim reset run: " + summary(out))
    a, b = resets_of(out)
    m = re.search(r"same=(\S+)/(\S+)", out)
    ktap.ok("blkreset: %d resets of revirt_sim's disk holding requests in flight, under the "
            "stamping writer: 0 errors, every acknowledged block reads back right" % SIM_RESETS,
            rc == 0 and writer_ok(out) and b - a >= SIM_RESETS and "failed=0" in out
            and m and m.group(1) == m.group(2)
            and int((re.search(r"held=(\d+)", out) or [0, "0"])[1]) >= SIM_RESETS // 2, out)


def check_hold(ktap, bvm):
    """(5) a device that does not answer: the timeout handler resets it."""
    rc, out = bvm.sh(
        "d=$(rvb_sim) || exit 1\n"
        "r=$(basename $(readlink -f /sys/block/$d/device))\n"
        "K=/sys/kernel/debug/revirt_sim/$r\n"
        "echo 2000 > /sys/block/$d/queue/io_timeout\n"
        "n=$(rvb_resets $r)\n"
        "echo 1 > $K/hold\n"
        "stamp_start $d 512 256\n"
        "sleep 6\n"
        "echo held_resets=$n/$(rvb_resets $r)\n"
        "echo 0 > $K/hold\n"
        "sleep 2\n"
        "stamp_stop $d\n"
        "echo timeouts=$(dmesg | grep -c 'gets no answer from the device: resetting it')",
        timeout=300)
    a, b = resets_of(out, "held_resets")
    m = re.search(r"timeouts=(\d+)", out)
    ktap.ok("blkreset: a device that holds its requests: the blk-mq timeout resets it, "
            "I/O completes once hold is off, 0 errors",
            rc == 0 and writer_ok(out) and b - a >= 1
            and m and int(m.group(1)) >= 1, out)


def check_dead(ktap, bvm):
    """(5) hold and reset_hang: requests fail after the bound, the disk is
    dead, a good reset brings it back; unbind and rmmod are bounded."""
    rc, out = bvm.sh(
        "d=$(rvb_sim) || exit 1\n"
        "r=$(basename $(readlink -f /sys/block/$d/device))\n"
        "K=/sys/kernel/debug/revirt_sim/$r\n"
        "echo 2000 > /sys/block/$d/queue/io_timeout\n"
        "echo 1 > $K/hold; echo 1 > $K/reset_hang\n"
        "t0=$(now_ms)\n"
        "timeout 60 dd if=/dev/zero of=/dev/$d bs=4096 count=1 seek=10 oflag=direct 2>&1 | tail -n 1\n"
        "echo dd_ms=$(($(now_ms) - t0))\n"
        "t0=$(now_ms)\n"
        "timeout 20 dd if=/dev/$d of=/dev/null bs=4096 count=1 iflag=direct 2>&1 | tail -n 1\n"
        "echo dead_read_ms=$(($(now_ms) - t0))\n"
        "echo dead=$(dmesg | grep -c 'did not come back from a reset')\n"
        "echo 0 > $K/hold; echo 0 > $K/reset_hang\n"
        "echo 1 > $RV_BUS/devices/$r/reset; echo reset_rc=$?\n"
        "dd if=/dev/zero of=/dev/$d bs=4096 count=4 seek=10 oflag=direct 2>&1 | grep -c '4+0 records out' "
        "| sed 's/^/back=/'\n"
        "echo 1 > $K/hold; echo 1 > $K/reset_hang\n"
        "timeout 60 dd if=/dev/zero of=/dev/$d bs=4096 count=1 oflag=direct >/dev/null 2>&1 &\n"
        "sleep 1\n"
        "t0=$(now_ms)\n"
        "echo $r > $RV_BUS/drivers/revirt_blk/unbind; echo unbind_rc=$? unbind_ms=$(($(now_ms) - t0))\n"
        "wait\n"
        "t0=$(now_ms)\n"
        "rmmod revirt_blk; echo rmmod_rc=$? rmmod_ms=$(($(now_ms) - t0))\n"
        "echo 0 > $K/hold; echo 0 > $K/reset_hang\n"
        "rmmod revirt_sim; echo rmsim_rc=$?", timeout=300)
    ms = {k: int(v) for k, v in re.findall(r"(\w+_ms)=(\d+)", out)}
    ktap.diag("dead disk: " + ", ".join("%s %d" % kv for kv in sorted(ms.items())))
    ktap.ok("blkreset: hold + reset_hang: the request fails with an I/O error after the bound "
            "and the disk is reported dead",
            "dd_ms" in ms and ms["dd_ms"] < 30000 and re.search(r"error|Input/output", out)
            and re.search(r"dead=[1-9]", out)
            and ms.get("dead_read_ms", 99999) < 5000, out)
    ktap.ok("blkreset: a dead disk comes back with the next reset that succeeds",
            "reset_rc=0" in out and "back=1" in out, out)
    ktap.ok("blkreset: unbind and rmmod with a hanging device return in bounded time",
            "unbind_rc=0" in out and ms.get("unbind_ms", 99999) < 20000
            and "rmmod_rc=0" in out and ms.get("rmmod_ms", 99999) < 20000
            and "rmsim_rc=0" in out, out)


def run(ktap, env):
    if env.skip_unbuilt(ktap, "blkreset: resets under I/O", MODULES):
        return
    disks = [Disk(env.tmp, "rs", 16 * MiB, props="num-queues=2"),
             Disk(env.tmp, "fs", 32 * MiB, props="num-queues=1")]
    have_fs = mkfs(disks[1].path)
    vmenv = types.SimpleNamespace(kernel=env.kernel, initrd=kmods_initrd(env, FS_KMODS, "blkreset"))
    bvm = BlkVM(vmenv, "blkreset", disks, smp=2)
    bvm.sh = lambda script, timeout=120: bvm.vm.sh(
        __import__("blkdrv").BLK_LIB + LIB + script, timeout)
    state = []
    fs_ran = False
    try:
        if not check_setup(ktap, bvm):
            return
        state = check_resets(ktap, bvm)
        state += check_needs_reset_qemu(ktap, bvm)
        check_needs_reset_sim(ktap, bvm)
        check_resets_sim(ktap, bvm)
        check_hold(ktap, bvm)
        if have_fs:
            fs_ran = check_fs(ktap, bvm)
        else:
            ktap.skip("blkreset: ext4 across resets", "mkfs.ext4 missing on the host")
        state += check_mq(ktap, bvm)
        check_dead(ktap, bvm)
        bad = bvm.clean_dmesg()
        ktap.ok("blkreset: no warning or oops in dmesg", not bad, "\n".join(bad[:40]))
    except VMError as e:
        ktap.ok("blkreset: the VM answered", False, str(e))
    finally:
        bvm.stop()
    if state:
        checked, bad = host_check_stamps(disks[0].path, state)
        ktap.ok("blkreset: host image of rs: every acknowledged stamp of the runs is there "
                "(%d blocks checked)" % checked, checked > 0 and bad == 0,
                "checked %d bad %d" % (checked, bad))
    if fs_ran:
        rc, out = e2fsck(disks[1].path)
        ktap.ok("blkreset: host e2fsck -fn on the ext4 image finds nothing", rc == 0, out)
