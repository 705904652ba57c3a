# SPDX-License-Identifier: GPL-2.0-only
"""Dead devices: a device that stops answering under I/O is found gone at
once, its requests fail, and nothing waits for it.

One VM (2 vCPUs) with one QEMU virtio-blk-pci disk "dd" and revirt_sim's
disk, the stamping writer (rvblk-stamp) on each in turn, the hung-task
detector armed at 5 s:

  sim  revirt_sim's dead knob: status and config read all-ones, nothing is
       answered.  The writer gets I/O errors within a few seconds, dmesg
       says "device is gone", unbind, rmmod revirt_blk and rmmod
       revirt_sim each return within 3 s, the reset bound raised to 8 s.
  rng  the dead knob on revirt_sim's entropy device while a /dev/hwrng
       read waits for it: the read fails at once (revirt_rng's
       device_gone wakes it), the driver is removed, rmmod returns.
  pci  the memory-space enable bit of dd's PCI COMMAND register cleared
       from the guest: every read of its BARs returns all-ones (QEMU).
       The first request that times out (io_timeout 2 s) reads the status
       and finds the device gone: the same assertions; then COMMAND is
       restored, revirt-pci unbound and bound again, and the host traces
       the new device's reset and probe; every block the writer was told
       was written reads back right.
  mounted  an ext4 filesystem (made on the host) on a second disk "df",
       mounted in the guest, a loop writing files with fsync; df's memory
       decoding turned off the same way: the device is found gone, the
       writer loop ends, umount returns within 3 s and /proc/mounts no
       longer lists it, revirt-pci unbinds, and bound again the disk is
       back at DRIVER_OK.
"""

import re
import types

from blkdrv import BLK_LIB, BlkVM, Disk, collapse, hx, check_quiet
from revirt_vm import VMError
from revirt_rig import kmods_initrd
from test_35_blkreset import FS_KMODS, LIB as STAMP_LIB, mkfs, summary

MODULES = ["revirt", "revirt_pci", "revirt_blk", "revirt_sim"]
MiB = 1 << 20
# A writer must see its first error within this (PCI: io_timeout + recovery).
ERROR_MS = 8000
HUNG_SECS = 5
# The transports' reset bound is raised to BOUND_MS: a path that waited
# for the dead device would take at least that long (and trip the hung-task
# detector); LIMIT_MS leaves room for a loaded TCG host.
BOUND_MS = 8000
LIMIT_MS = 3000

LIB = STAMP_LIB + r"""
# err_wait T0: wait (bounded) for the writer's first I/O error
err_wait() {
	_i=0
	while ! grep -q 'Input/output error' /tmp/stamp.err 2>/dev/null && [ $_i -lt 200 ]; do
		usleep 50000; _i=$((_i + 1))
	done
	echo err_ms=$(($(now_ms) - $1)) first_err="$(head -n 1 /tmp/stamp.err)"
}
# stamp_end: stop the writer, bounded; its lines
stamp_end() {
	touch /tmp/stop
	t=$(now_ms)
	wait $STAMP
	echo writer=$? writer_stop_ms=$(($(now_ms) - t))
	cat /tmp/stamp.out
}
# pcidev QID: set r, pci, C (its config file) and cmd (COMMAND, in hex)
# for the PCI function of a disk
pcidev() {
	r=$(rvb_rv $1) || return 1
	pci=$(rv_pci_of $r)
	C=/sys/bus/pci/devices/$pci/config
	cmd=$(od -An -tx2 -j4 -N2 $C | tr -d ' ')
}
# cmdw CONFIG VALUE: write a function's 16-bit COMMAND register
cmdw() {
	printf "$(printf '\\%03o\\%03o' $(($2 & 255)) $(($2 >> 8)))" |
		dd of=$1 bs=2 seek=2 count=1 conv=notrunc 2>/dev/null
}
# timed NAME CMD...: run CMD, print NAME_rc and NAME_ms
timed() {
	_n=$1; shift
	_t=$(now_ms)
	"$@"
	echo ${_n}_rc=$? ${_n}_ms=$(($(now_ms) - _t))
}
"""


def numbers(out):
    return {k: int(v) for k, v in re.findall(r"(\w+_(?:ms|rc))=(-?\d+)", out)}


def writer_errors(out):
    return sum(int(e) for e in re.findall(r" errors (\d+) ", out))


def check_setup(ktap, bvm):
    rc, out = bvm.sh(
        "rv_insmod revirt && rv_insmod revirt_pci && rv_insmod revirt_blk || exit 1\n"
        "rv_insmod revirt_sim rng=0 blk=1 || exit 1\n"
        "d=$(rvb_wait dd) || exit 1; echo dd $d\n"
        "i=0; while ! rvb_sim >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done\n"
        "echo sim $(rvb_sim)\n"
        "rv_hung_arm %d\n"
        "echo %d > /sys/module/revirt_pci/parameters/reset_timeout_ms\n"
        "echo %d > /sys/module/revirt_sim/parameters/reset_timeout_ms\n"
        "echo bound=$(cat /sys/module/revirt_pci/parameters/reset_timeout_ms)"
        "/$(cat /sys/module/revirt_sim/parameters/reset_timeout_ms)"
        % (HUNG_SECS, BOUND_MS, BOUND_MS))
    ok = ktap.ok("dead: the disks dd and revirt_sim's appear",
                 rc == 0 and re.search(r"dd rvd\w+", out) and re.search(r"sim rvd\w+", out),
                 out)
    m = re.search(r"bound=(\d+)/(\d+)", out)
    bound = (int(m.group(1)), int(m.group(2))) if m else (1000, 1000)
    return ok, "hung=%d" % HUNG_SECS in out, bound


def check_sim(ktap, bvm, bound):
    """(a) revirt_sim's dead knob under the writer."""
    rc, out = bvm.sh(
        "d=$(rvb_sim) || exit 1\n"
        "r=$(basename $(readlink -f /sys/block/$d/device))\n"
        "K=/sys/kernel/debug/revirt_sim/$r\n"
        "stamp_start $d 0 512\n"
        "g0=$(dmesg | grep -c \"$r: device is gone (\")\n"
        "t0=$(now_ms); echo 1 > $K/dead; echo knob_rc=$?\n"
        "err_wait $t0\n"
        "echo gone=$(($(dmesg | grep -c \"$r: device is gone (\") - g0))\n"
        "dmesg | grep \"$r: device is gone\"\n"
        "echo status=$(cat $RV_BUS/devices/$r/status)\n"
        "timed unbind sh -c \"echo $r > $RV_BUS/drivers/revirt_blk/unbind\"\n"
        "stamp_end\n"
        "timed rmblk rmmod revirt_blk\n"
        "timed rmsim rmmod revirt_sim\n"
        "rv_insmod revirt_blk && rvb_wait dd >/dev/null && echo reloaded", timeout=120)
    ms = numbers(out)
    ktap.diag("sim dead: " + ", ".join("%s %d" % kv for kv in sorted(ms.items())))
    ktap.ok("dead: sim: the dead knob under the writer: its writes fail with an I/O error "
            "within %d ms" % ERROR_MS,
            rc == 0 and ms.get("knob_rc") == 0 and ms.get("err_ms", 99999) < ERROR_MS
            and "Input/output error" in out and writer_errors(out) > 0, out)
    ktap.ok("dead: sim: one line \"revirtN: device is gone (revirt_sim: status reads 0xff)\"",
            "gone=1" in out and "status reads 0xff" in out, out)
    ktap.ok("dead: sim: unbind (writer running), the writer's end, rmmod revirt_blk and "
            "rmmod revirt_sim each within %d ms (reset bound %d ms)"
            % (LIMIT_MS, bound[1]),
            all(ms.get(k + "_rc", 1) == 0 and ms.get(k + "_ms", 99999) < LIMIT_MS
                for k in ("unbind", "rmblk", "rmsim"))
            and ms.get("writer_stop_ms", 99999) < LIMIT_MS and "reloaded" in out, out)


RNG_DEAD = r"""
rv_insmod revirt_rng && rv_insmod revirt_sim rng=1 blk=0 || exit 1
i=0; r=
while [ -z "$r" ] && [ $i -lt 100 ]; do
	for x in $RV_BUS/devices/*; do
		[ "$(basename $(readlink -f $x/driver 2>/dev/null) 2>/dev/null)" = revirt_rng ] && r=${x##*/}
	done
	sleep 0.1; i=$((i + 1))
done
[ -n "$r" ] || exit 1
K=/sys/kernel/debug/revirt_sim/$r
echo revirt_rng.${r#revirt} > /sys/class/misc/hw_random/rng_current
echo rng=$r current=$(cat /sys/class/misc/hw_random/rng_current)
head -c 16 /dev/hwrng | wc -c | sed 's/^/before=/'
echo 1 > $K/hold
timeout 10 head -c 64 /dev/hwrng >/dev/null 2>/tmp/rng.err & rpid=$!
sleep 0.5
g0=$(dmesg | grep -c "$r: device is gone (")
t0=$(now_ms); echo 1 > $K/dead
wait $rpid; echo read_rc=$? read_ms=$(($(now_ms) - t0)) err="$(cat /tmp/rng.err)"
echo gone=$(($(dmesg | grep -c "$r: device is gone (") - g0))
echo bound=$([ -e $RV_BUS/devices/$r/driver ] && echo yes || echo no)
timed again timeout 5 head -c 16 /dev/hwrng >/dev/null 2>/tmp/rng.err; echo again_err="$(cat /tmp/rng.err)" current=$(cat /sys/class/misc/hw_random/rng_current)
timed rmrng rmmod revirt_rng
timed rmsim rmmod revirt_sim
"""


def check_rng(ktap, bvm, bound):
    """(c) revirt_rng: a read waiting on a device that goes dead."""
    rc, out = bvm.sh(RNG_DEAD, timeout=120)
    ms = numbers(out)
    ktap.diag("rng dead: " + ", ".join("%s %d" % kv for kv in sorted(ms.items())))
    ktap.ok("dead: rng: a /dev/hwrng read waiting on revirt_sim's entropy device fails "
            "within %d ms (reset bound %d ms) when it goes dead; the driver is removed"
            % (LIMIT_MS, bound[1]),
            rc == 0 and "before=16" in out and ms.get("read_rc", 0) != 0
            and ms.get("read_ms", 99999) < LIMIT_MS and "gone=1" in out
            and "bound=no" in out, out)
    ktap.ok("dead: rng: rmmod revirt_rng and revirt_sim within the reset bound",
            all(ms.get(k + "_rc", 1) == 0 and ms.get(k + "_ms", 99999) < LIMIT_MS
                for k in ("rmrng", "rmsim")), out)


PCI_DEAD = r"""
d=$(rvb_dev dd) && pcidev dd || exit 1
echo pci=$pci cmd=0x$cmd
echo 2000 > /sys/block/$d/queue/io_timeout
stamp_start $d 0 512
g0=$(dmesg | grep -c "$r: device is gone (")
t0=$(now_ms); cmdw $C $((0x$cmd & ~2)); echo cmdw_rc=$? now=$(od -An -tx2 -j4 -N2 $C | tr -d ' ')
err_wait $t0
echo gone=$(($(dmesg | grep -c "$r: device is gone (") - g0))
dmesg | grep "$r: device is gone" | tail -n 1
echo status=$(cat $RV_BUS/devices/$r/status)
timed unbind sh -c "echo $r > $RV_BUS/drivers/revirt_blk/unbind"
stamp_end
cp /tmp/stamp.out /tmp/pci.state
cmdw $C $((0x$cmd)); echo restored=$(od -An -tx2 -j4 -N2 $C | tr -d ' ')
echo $pci > /sys/bus/pci/drivers/revirt-pci/unbind; echo pci_unbind_rc=$?
"""

PCI_BACK = r"""
pci=%s
echo $pci > /sys/bus/pci/drivers/revirt-pci/bind; echo pci_bind_rc=$?
d=$(rvb_wait dd) || exit 1
r=$(rvb_rv dd)
echo back=$d status=$(cat $RV_BUS/devices/$r/status)
rvblk-stamp check /dev/$d /tmp/pci.state; echo check=$?
"""


def check_pci(ktap, bvm, bound):
    """(b) dd's BARs made dead through the PCI COMMAND register."""
    m0 = bvm.mark()
    rc, out = bvm.sh(PCI_DEAD, timeout=120)
    m1 = bvm.mark()
    ms = numbers(out)
    ktap.diag("pci dead: " + ", ".join("%s %d" % kv for kv in sorted(ms.items())))
    ktap.diag("pci dead: writer before: " + summary(out))
    ptr = bvm.learn_ptr("dd", m0, m1)
    ktap.ok("dead: pci: memory decoding of dd turned off under the writer: its writes fail "
            "with an I/O error within %d ms" % ERROR_MS,
            rc == 0 and ms.get("cmdw_rc") == 0 and ms.get("err_ms", 99999) < ERROR_MS
            and writer_errors(out) > 0, out)
    ktap.ok("dead: pci: one line \"revirtN: device is gone (memory decoding off, ...)\"",
            "gone=1" in out and "memory decoding off" in out, out)
    ktap.ok("dead: pci: unbind (writer running) and the writer's end within %d ms "
            "(reset bound %d ms), revirt-pci unbinds" % (LIMIT_MS, bound[0]),
            ms.get("unbind_rc") == 0 and ms.get("unbind_ms", 99999) < LIMIT_MS
            and ms.get("writer_stop_ms", 99999) < LIMIT_MS and ms.get("pci_unbind_rc") == 0
            and "restored=" in out, out)
    pm = re.search(r"pci=(\S+)", out)
    if not pm or ms.get("pci_unbind_rc") != 0:
        ktap.ok("dead: pci: the disk comes back from a reset after revirt-pci is bound again",
                False, "no PCI address or unbind failed:\n" + out)
        return
    m2 = bvm.mark()
    rc, out = bvm.sh(PCI_BACK % pm.group(1), timeout=120)
    m3 = bvm.mark()
    seq = collapse(bvm.writes_of("dd", m2, m3))
    # Enabling the function writes COMMAND without bus mastering first:
    # QEMU echoes that as status & ~DRIVER_OK (revirt_vm.collapse()).
    first = seq.index(0) if 0 in seq else len(seq)
    echo_only = all(not v & 0x4 for v in seq[:first])
    ktap.ok("dead: pci: revirt-pci bound again: dd is back at DRIVER_OK, every block the "
            "writer was told was written reads back right",
            rc == 0 and "pci_bind_rc=0" in out and "status=0x0f" in out
            and re.search(r"checked [1-9]\d* bad 0", out) and "check=0" in out, out)
    ktap.ok("dead: pci: the host traces the new device's reset, then the probe "
            "(0 1 3 0xb 0xf)",
            ptr is not None and echo_only and seq[first:] == [0, 1, 3, 0xb, 0xf],
            "ptr %s, status writes: %s" % (ptr, hx(seq)))


MOUNTED_DEAD = r"""
d=$(rvb_dev df) && pcidev df || exit 1
rv_kmods_load || echo KMODS_FAILED
mkdir -p /mnt/df && mount -t ext4 /dev/$d /mnt/df || exit 1
echo mounted=$d
echo 2000 > /sys/block/$d/queue/io_timeout
rm -f /tmp/df.stop /tmp/df.err
(i=0; while [ $i -lt 100000 ] && [ ! -e /tmp/df.stop ]; do
	dd if=/dev/zero of=/mnt/df/f$((i %% 8)) bs=4096 count=16 conv=fsync 2>>/tmp/df.err
	i=$((i + 1))
done; echo loops=$i >/tmp/df.loops) &
W=$!
sleep 1
g0=$(dmesg | grep -c "$r: device is gone (")
t0=$(now_ms); cmdw $C $((0x$cmd & ~2)); echo cmdw_rc=$?
i=0
while [ $(($(dmesg | grep -c "$r: device is gone (") - g0)) -eq 0 ] && [ $i -lt %d ]; do
	usleep 50000; i=$((i + 1))
done
echo gone_ms=$(($(now_ms) - t0)) gone=$(($(dmesg | grep -c "$r: device is gone (") - g0))
touch /tmp/df.stop
timed wstop wait $W
cat /tmp/df.loops; echo errlines=$(grep -c . /tmp/df.err)
timed umount umount /mnt/df
echo mounts=$(grep -c ' /mnt/df ' /proc/mounts)
cmdw $C $((0x$cmd))
timed unbindpci sh -c "echo $pci > /sys/bus/pci/drivers/revirt-pci/unbind"
echo $pci > /sys/bus/pci/drivers/revirt-pci/bind; echo pci_bind_rc=$?
d=$(rvb_wait df) && echo back=$d status=$(cat $RV_BUS/devices/$(rvb_rv df)/status)
""" % (ERROR_MS // 50)


def check_mounted(ktap, bvm):
    """(d) an ext4 filesystem mounted on a disk that goes dead under a
    writer: the umount finishes, and the disk comes back after."""
    rc, out = bvm.sh(MOUNTED_DEAD, timeout=120)
    ms = numbers(out)
    ktap.diag("mounted dead: " + ", ".join("%s %d" % kv for kv in sorted(ms.items())))
    ktap.ok("dead: mounted: ext4 on df, memory decoding turned off under a file writer: "
            "the device is found gone within %d ms" % ERROR_MS,
            rc == 0 and "mounted=" in out and ms.get("cmdw_rc") == 0 and "gone=1" in out
            and ms.get("gone_ms", 99999) < ERROR_MS, out)
    ktap.ok("dead: mounted: the file writer ends within %d ms, then umount returns within "
            "%d ms and the filesystem is gone from /proc/mounts" % (LIMIT_MS, LIMIT_MS),
            ms.get("umount_rc") == 0 and ms.get("umount_ms", 99999) < LIMIT_MS
            and "mounts=0" in out and ms.get("wstop_ms", 99999) < LIMIT_MS, out)
    ktap.ok("dead: mounted: revirt-pci unbinds within %d ms, and bound again the disk is "
            "back at DRIVER_OK" % LIMIT_MS,
            ms.get("unbindpci_rc") == 0 and ms.get("unbindpci_ms", 99999) < LIMIT_MS
            and "pci_bind_rc=0" in out and re.search(r"back=rvd\w+ status=0x0f", out), out)


def check_end(ktap, bvm, hung, bound):
    rc, out = bvm.sh(
        "timed rmblk rvb_rmmod\n"
        "sleep %d\n"
        "echo hung=$(dmesg | grep -c 'blocked for more than')\n"
        "dmesg | grep -A3 'blocked for more than' | head -n 20" % (HUNG_SECS + 2), timeout=120)
    ms = numbers(out)
    ktap.ok("dead: rmmod revirt_blk at the end within %d ms (reset bound %d ms)"
            % (LIMIT_MS, bound[0]),
            ms.get("rmblk_rc") == 0 and ms.get("rmblk_ms", 99999) < LIMIT_MS, out)
    check_quiet(ktap, bvm, "dead", hung, HUNG_SECS, out)
    reports = bvm.vm.kernel_reports()
    ktap.ok("dead: the kernel's checkers report nothing", not reports, "\n".join(reports[:40]))


def run(ktap, env):
    if env.skip_unbuilt(ktap, "dead: dead devices under I/O", MODULES):
        return
    disks = [Disk(env.tmp, "dd", 16 * MiB, props="num-queues=1"),
             Disk(env.tmp, "df", 32 * MiB, props="num-queues=1")]
    if not mkfs(disks[1].path):
        ktap.ok("dead: mkfs.ext4 makes df's image on the host", False,
                "mkfs.ext4 failed or is missing (e2fsprogs, scripts/revirt-deps)")
        return
    vmenv = types.SimpleNamespace(kernel=env.kernel, initrd=kmods_initrd(env, FS_KMODS, "dead"))
    bvm = BlkVM(vmenv, "dead", disks, smp=2)
    bvm.sh = lambda script, timeout=120: bvm.vm.sh(BLK_LIB + LIB + script, timeout)
    try:
        ok, hung, bound = check_setup(ktap, bvm)
        if not ok:
            return
        check_sim(ktap, bvm, bound)
        check_rng(ktap, bvm, bound)
        check_pci(ktap, bvm, bound)
        check_mounted(ktap, bvm)
        check_end(ktap, bvm, hung, bound)
    except VMError as e:
        ktap.ok("dead: the VM answered", False, str(e))
    finally:
        bvm.stop()
