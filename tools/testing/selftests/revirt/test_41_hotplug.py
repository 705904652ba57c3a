# SPDX-License-Identifier: GPL-2.0-only
"""PCIe hot-unplug of a disk under I/O, and a disk hot-added afterwards.

One VM (q35, 2 vCPUs) per mode, with two pcie-root-ports: the QEMU
virtio-blk-pci disk "hp" behind rp1, driven by revirt_blk; rp2 empty; a
second drive (drv-hp2) defined with -drive if=none and no device.  The
hung-task detector is armed at HUNG_SECS.  Two modes, because QEMU 7.2
offers the root ports' slots to the guest in one of two ways:

  acpiphp  QEMU's default for q35 (acpi-pci-hotplug-with-bridge-support):
           the firmware keeps PCIe hotplug (_OSC), the guest's acpiphp
           gets an ACPI notification, removes the function and ejects it
           at once.
  pciehp   that property off: native PCIe hotplug, the guest's pciehp
           gets an attention-button press, waits its 5 s (the function
           keeps working meanwhile), removes the function and powers the
           slot off.

In each:

  unplug  the stamping writer (rvblk-stamp, 4 jobs, O_DIRECT|O_DSYNC)
          runs on hp; once the host traces its writes and ~2 s later,
          QMP device_del hp: revirt-pci's remove and revirt_blk's remove
          run under the writer; QEMU deletes the device (query-pci no
          longer lists it) within DELETE_SECS; the revirt device, its
          rvdX and the PCI function are gone within GONE_SECS; told to
          stop, the writer ends within LIMIT_MS (its writes fail once the
          disk is gone: allowed; hanging is not).
  add     QMP device_add virtio-blk-pci id=hp2 on rp2 with drv-hp2.  On a
          kernel whose virtio-pci is built in (Debian's 6.12) it binds
          the new function first; the guest hands it to revirt-pci
          (lib.sh: rv_pci_take, as rv_takeover does at boot).  A new
          revirt device bound to revirt_blk and a new rvdX appear; the
          host traces, for the new VirtIODevice, a reset (0) before the
          first ACKNOWLEDGE and a reset before the last set-up, which ends
          at DRIVER_OK (0xf); the writer runs ~2 s on it with 0 errors and
          every block reads back right.

At the end: rmmod revirt_blk, revirt_pci and revirt each return within
LIMIT_MS; after HUNG_SECS + 2 s no "blocked for more than" and no
WARNING, BUG or Oops in dmesg; after QEMU exited, every stamp the writer
was told was written is on the host images of hp and hp2 (a job's failed
last write may have landed: the "tried 1" convention).
"""

import re
import threading
import time

from blkdrv import BLK_LIB, BlkVM, Disk, check_quiet, collapse, hx
from revirt_vm import QMPError, VMError, by_vdev
from test_35_blkreset import host_check_stamps, stamp_state, summary, writer_ok
from test_38_dead import LIB as DEAD_LIB, numbers, writer_errors

MODULES = ["revirt", "revirt_pci", "revirt_blk"]
MiB = 1 << 20
HUNG_SECS = 5
# pciehp's attention-button delay is 5 s; the rest is room for a loaded host
DELETE_SECS = 30
GONE_SECS = 45
ADD_SECS = 30
LIMIT_MS = 5000
# acpiphp: QEMU's default for q35's root ports; pciehp: native PCIe hotplug
MODES = ("acpiphp", "pciehp")

LIB = DEAD_LIB + r"""
# hp_new: hand every virtio PCI function bound to the kernel's virtio-pci
# to revirt-pci; print the address of the one whose disk has serial $1
hp_new() {
	for _p in $RV_PCI/devices/*; do
		[ "$(rv_pci_driver ${_p##*/})" = virtio-pci ] &&
			{ rv_pci_take ${_p##*/} && echo took=${_p##*/}; }
	done
	rvb_dev $1 >/dev/null 2>&1
}
"""

UNPLUG = r"""
d=$(rvb_dev hp) && r=$(rvb_rv hp) || exit 1
pci=$(rv_pci_of $r)
echo hp=$d rv=$r pci=$pci
stamp_start $d 0 512
t0=$(now_ms); i=0
while { [ -e /sys/block/$d ] || [ -e $RV_BUS/devices/$r ] || [ -e $RV_PCI/devices/$pci ]; } &&
		[ $i -lt %d ]; do
	usleep 100000; i=$((i + 1))
done
echo gone_ms=$(($(now_ms) - t0)) disk=$([ -e /sys/block/$d ] && echo there) \
	rv=$([ -e $RV_BUS/devices/$r ] && echo there) pcidev=$([ -e $RV_PCI/devices/$pci ] && echo there)
stamp_end
echo errlines=$(grep -c . /tmp/stamp.err)
sed 's/^job [0-9]*: write of block [0-9]*: //' /tmp/stamp.err | sort | uniq -c | sed 's/^ */err: /'
dmesg | grep -i -e pciehp -e acpiphp -e 'hot.*plug' | sed 's/^/hpmsg: /' | tail -n 8
""" % (GONE_SECS * 10)

ADD = r"""
i=0
while ! hp_new hp2 && [ $i -lt %d ]; do usleep 100000; i=$((i + 1)); done
d=$(rvb_dev hp2) && r=$(rvb_rv hp2) || { lspci 2>/dev/null; ls $RV_BUS/devices; exit 1; }
pci=$(rv_pci_of $r)
echo hp2=$d rv=$r pci=$pci driver=$(basename $(readlink $RV_BUS/devices/$r/driver)) \
	pcidrv=$(rv_pci_driver $pci) status=$(cat $RV_BUS/devices/$r/status)
stamp_start $d 0 512
sleep 1
stamp_stop $d
""" % (ADD_SECS * 10)

END = r"""
timed rmblk rvb_rmmod
timed rmpci rmmod revirt_pci
timed rmcore rmmod revirt
sleep %d
echo hung=$(dmesg | grep -c 'blocked for more than')
dmesg | grep -A3 'blocked for more than' | head -n 20
""" % (HUNG_SECS + 2)


class HpVM(BlkVM):
    def __init__(self, env, mode):
        self.tag = "hotplug %s" % mode
        self.hp = Disk(env.tmp, "hp", 16 * MiB, props="num-queues=1,bus=rp1")
        # hp2's image and drive only: its device comes with device_add
        self.hp2 = Disk(env.tmp, "hp2", 16 * MiB)
        extra = ["-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=0x4",
                 "-device", "pcie-root-port,id=rp2,bus=pcie.0,chassis=2,addr=0x5"]
        if mode == "pciehp":
            extra += ["-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"]
        super().__init__(env, self.tag.replace(" ", "-"), [self.hp], machine="q35", smp=2,
                         extra=extra + self.hp2.args[:2])

    def sh(self, script, timeout=120):
        return self.vm.sh(BLK_LIB + LIB + script, timeout)

    def listed(self, qid):
        """Whether query-pci lists a device of that qdev id (bridges too)."""
        def walk(devs):
            for d in devs:
                if d.get("qdev_id") == qid or walk(d.get("pci_bridge", {}).get("devices", [])):
                    return True
            return False
        return any(walk(b.get("devices", [])) for b in self.vm.qmp("query-pci"))

    def writes_seen(self, event, since):
        return len(self.vm.trace_events(since, None, event=event))


def check_setup(ktap, hvm, mode):
    rc, out = hvm.sh(
        "for m in %s; do rv_insmod $m || exit 1; done\n"
        "d=$(rvb_wait hp) || exit 1; echo hp $d\n"
        "rv_hung_arm %d\n"
        "echo slots=$(ls /sys/bus/pci/slots | tr '\\n' ' ')\n"
        "echo pciehp=$(dmesg | grep -c 'pciehp.*Slot') acpiphp=$(dmesg | grep -c 'acpiphp: Slot')"
        % (" ".join(MODULES), HUNG_SECS))
    ok = ktap.ok(hvm.tag + ": the disk hp behind pcie-root-port rp1 is bound to revirt_blk",
                 rc == 0 and re.search(r"hp rvd\w+", out), out)
    slots = re.search(r"%s=[1-9]" % mode, out)
    ktap.diag(hvm.tag + ": setup: " + " ".join(l for l in out.splitlines()
                                   if l.startswith(("slots=", "pciehp=", "hung="))))
    if ok and not slots:
        ktap.skip(hvm.tag + ": device_del and device_add of a virtio-blk-pci disk",
                  "the guest kernel's %s drives no slot:\n%s" % (mode, out))
        return False, False
    return ok, "hung=%d" % HUNG_SECS in out


def check_unplug(ktap, hvm):
    """device_del hp under the writer; returns the writer's state."""
    m0 = hvm.mark()
    res = {}

    def guest():
        try:
            res["out"] = hvm.sh(UNPLUG, timeout=GONE_SECS + 120)
        except VMError as e:
            res["err"] = e
    t = threading.Thread(target=guest, daemon=True)
    t.start()
    # the writer is running once the host sees its writes; ~2 s more
    deadline = time.monotonic() + 60
    while hvm.writes_seen("virtio_blk_handle_write", m0) < 8 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    t0 = time.monotonic()
    try:
        hvm.vm.qmp("device_del", id="hp")
        err = ""
    except QMPError as e:
        err = str(e)
    while not err and hvm.listed("hp") and time.monotonic() - t0 < DELETE_SECS:
        time.sleep(0.2)
    took = time.monotonic() - t0
    ktap.ok(hvm.tag + ": QMP device_del hp under the writer: QEMU deletes it within %d s"
            % DELETE_SECS, not err and not hvm.listed("hp"),
            err or "still listed by query-pci after %.1f s" % took)
    t.join(GONE_SECS + 150)
    if "out" not in res:
        raise res.get("err") or VMError("the unplug script did not return")
    rc, out = res["out"]
    ms = numbers(out)
    ktap.diag(hvm.tag + ": unplug: QEMU deleted hp %.1f s after device_del; guest: %s; writer: %s"
              % (took, ", ".join("%s %d" % kv for kv in sorted(ms.items())), summary(out)))
    seq = collapse(by_vdev(hvm.vm.status_writes(m0)).get(hvm.learn_ptr("hp", m0), []))
    ktap.diag(hvm.tag + ": unplug: host status writes of hp: %s" % hx(seq))
    ktap.ok(hvm.tag + ": the revirt device, its rvdX and the PCI function are gone in the "
            "guest within %d s of the writer's start" % GONE_SECS,
            rc == 0 and ms.get("gone_ms", 1 << 30) < GONE_SECS * 1000
            and "there" not in out.split("gone_ms=", 1)[-1].split("\n", 1)[0], out)
    ktap.ok(hvm.tag + ": the writer ends within %d ms of being told to (errors allowed, "
            "no hang)" % LIMIT_MS,
            ms.get("writer_stop_ms", 1 << 30) < LIMIT_MS
            and len(stamp_state(out)) == 4, out)
    ktap.diag(hvm.tag + ": unplug: %d writes failed\n%s" % (writer_errors(out), "\n".join(
        l for l in out.splitlines() if l.startswith(("hpmsg: ", "err: ")))))
    return stamp_state(out)


def check_add(ktap, hvm):
    m0 = hvm.mark()
    try:
        hvm.vm.qmp("device_add", driver="virtio-blk-pci", drive="drv-hp2", id="hp2",
                   serial="hp2", bus="rp2")
        err = ""
    except QMPError as e:
        err = str(e)
    if not ktap.ok(hvm.tag + ": QMP device_add virtio-blk-pci hp2 on rp2", not err, err):
        return []
    rc, out = hvm.sh(ADD, timeout=ADD_SECS + 120)
    m1 = hvm.mark()
    ktap.diag(hvm.tag + ": add: " + " ".join(l for l in out.splitlines()
                                 if l.startswith(("hp2=", "took="))))
    ktap.ok(hvm.tag + ": a new revirt device bound to revirt_blk (PCI: revirt-pci) and a new "
            "rvdX appear within %d s, at DRIVER_OK" % ADD_SECS,
            re.search(r"hp2=rvd\w+ .*driver=revirt_blk pcidrv=revirt-pci status=0x0f", out),
            out)
    ktap.ok(hvm.tag + ": the writer on the new disk: 0 errors, every acknowledged block "
            "reads back right", rc == 0 and writer_ok(out), out)
    ptr = hvm.learn_ptr("hp2", m0, m1)
    raw = by_vdev(hvm.vm.status_writes(m0, m1))
    seq = collapse(raw.get(ptr, []))
    ok = (ptr is not None and 0 in seq and 1 in seq and seq.index(0) < seq.index(1)
          and seq[-1] == 0xf and seq[len(seq) - 1 - seq[::-1].index(1) - 1] == 0)
    ktap.diag("%s: add: host status writes of hp2: %s" % (hvm.tag, hx(seq)))
    ktap.ok(hvm.tag + ": the host traces the new device's reset (0) before its first "
            "ACKNOWLEDGE, and a reset before the last set-up ending at DRIVER_OK (0xf)",
            ok, "ptr %s, status writes: %s; all devices: %r" % (ptr, hx(seq), sorted(raw)))
    return stamp_state(out) if writer_ok(out) else []


def check_end(ktap, hvm, hung):
    rc, out = hvm.sh(END, timeout=120)
    ms = numbers(out)
    ktap.ok(hvm.tag + ": rmmod revirt_blk, revirt_pci and revirt each return within %d ms"
            % LIMIT_MS,
            all(ms.get(k + "_rc") == 0 and ms.get(k + "_ms", 1 << 30) < LIMIT_MS
                for k in ("rmblk", "rmpci", "rmcore")), out)
    check_quiet(ktap, hvm, hvm.tag, hung, HUNG_SECS, out)


def run_mode(ktap, env, mode):
    hvm = HpVM(env, mode)
    states = {}
    try:
        ok, hung = check_setup(ktap, hvm, mode)
        if not ok:
            return
        states["hp"] = check_unplug(ktap, hvm)
        states["hp2"] = check_add(ktap, hvm)
        check_end(ktap, hvm, hung)
    except VMError as e:
        ktap.ok(hvm.tag + ": the VM answered", False, str(e))
    finally:
        hvm.stop()
    for qid, disk in (("hp", hvm.hp), ("hp2", hvm.hp2)):
        if qid in states:
            checked, bad = host_check_stamps(disk.path, states[qid])
            ktap.ok(hvm.tag + ": host image of %s: every acknowledged stamp is there "
                    "(%d blocks checked)" % (qid, checked), checked > 0 and bad == 0,
                    "checked %d bad %d" % (checked, bad))


def run(ktap, env):
    if env.skip_unbuilt(ktap, "hotplug: PCIe hot-unplug and hot-add of a disk", MODULES):
        return
    for mode in MODES:
        run_mode(ktap, env, mode)
