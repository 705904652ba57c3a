# SPDX-License-Identifier: GPL-2.0-only
"""DEVICE_NEEDS_RESET raised by QEMU's own device model is recovered by the
core with no user action.

revirt_rng's test knob malformed_requests follows one request by an avail
entry out of range; QEMU's virtio-rng (a version-1 device) calls that a
malformed ring ("Guest says index N is available"), marks itself broken,
sets DEVICE_NEEDS_RESET and raises a config interrupt.  The core must reset the device and probe the
driver again.

Guest side: the read in flight ends (with an error or short), the device is
bound again with status 0x0f, resets went up, entropy flows, dmesg names the
recovery.  Host side: QEMU reported the malformed descriptor (stderr), the
trace shows the reset and a new probe, QMP shows DRIVER_OK without
NEEDS_RESET.
"""

from revirt_vm import collapse
from revirt_rig import kernel_bad_lines

DEV = "rng1"     # modern-only: QEMU raises NEEDS_RESET for version-1 devices
NEEDS_RESET = 0x40


def qemu_stderr(vm):
    try:
        with open(vm.stderr_path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def run(ktap, env):
    if env.skip_unbuilt(ktap, "needs-reset: recovery from a malformed descriptor"):
        return
    rig = env.rig()
    ok = ktap.ok
    rig.load_all()
    rig.kmsg_mark("test_80")
    n = rig.index(DEV)
    rig.vdev(DEV)
    dev = "$RV_BUS/devices/revirt%d" % n

    rc, before = rig.sh("cat %s/resets" % dev)
    resets_before = int(before.strip() or 0)
    err_before = qemu_stderr(rig.vm).count("Guest says index")

    m0 = rig.mark()
    rc, out = rig.sh(
        # Select first: the hwrng core reads from the current rng as soon
        # as it is selected, and the knob affects the next request.
        "rv_select %d || exit 1\n"
        "echo 1 > /sys/module/revirt_rng/parameters/malformed_requests\n"
        "timeout 10 head -c 64 /dev/hwrng >/dev/null 2>&1\n"
        "echo read_rc=$?\n"
        # recovery runs from a work item: give it a bounded moment
        "i=0\n"
        "while [ $i -lt 50 ]; do\n"
        "  s=$(cat %s/status); r=$(cat %s/resets)\n"
        "  [ \"$s\" = 0x0f ] && [ \"$r\" -gt %d ] && [ -e %s/driver ] && break\n"
        "  i=$((i + 1)); sleep 0.2\n"
        "done\n"
        "echo status=$(cat %s/status) resets=$(cat %s/resets) knob=$(cat /sys/module/revirt_rng/parameters/malformed_requests)\n"
        % (n, dev, dev, resets_before, dev, dev, dev), timeout=60)
    m1 = rig.mark()
    ok("needs-reset: the device is bound again with status 0x0f and resets went up",
       rc == 0 and "status=0x0f" in out and "knob=0" in out
       and int(out.split("resets=")[1].split()[0]) > resets_before,
       "%s\n%s" % (out, rig.dmesg_tail()))

    good, diag = rig.entropy(DEV)
    ok("needs-reset: entropy flows again without user action", good, diag)

    dm = rig.dmesg_after("test_80")
    ok("needs-reset: dmesg names the recovery",
       any("device needs a reset" in l for l in dm), "\n".join(dm[-20:]))

    ok("needs-reset: host QEMU reported the malformed descriptor",
       qemu_stderr(rig.vm).count("Guest says index") > err_before,
       qemu_stderr(rig.vm)[-2000:])

    w = rig.writes(m0, m1)
    seq = collapse(w.get(DEV, []))
    ok("needs-reset: host trace shows the reset and a new probe of %s only" % DEV,
       seq == [0, 1, 3, 0xb, 0xf] and list(w) == [DEV],
       "status writes: %s" % rig.fmt(w))

    st = rig.host_status(DEV)
    ok("needs-reset: host QMP status is DRIVER_OK without NEEDS_RESET",
       st == 0xf and not st & NEEDS_RESET, "QMP status 0x%x" % st)

    bad = kernel_bad_lines(dm)
    ok("needs-reset: no warning or oops in dmesg", not bad, "\n".join(bad[:40]))
