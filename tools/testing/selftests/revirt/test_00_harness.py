# SPDX-License-Identifier: GPL-2.0-only
"""The harness itself, without any revirt module: console protocol (exit
status, exact output, scripts longer than one tty line), QMP, and the
status-write trace of the firmware's boot disk."""

import base64

from revirt_vm import DRIVER_OK, MAX_LINE, NUDGE_SECS, collapse
from revirt_rig import DEVICES


def run(ktap, env):
    rig = env.rig()
    vm = rig.vm
    ok = ktap.ok
    ktap.diag("VM booted in %.1fs" % vm.boot_time)

    rc, out = vm.sh("echo one; echo two >&2; exit 7")
    ok("harness: exit status and stdout+stderr come back", (rc, out) == (7, "one\ntwo\n"),
       "rc=%d out=%r" % (rc, out))
    rc, out = vm.sh("printf 'no newline'")
    ok("harness: output without a final newline is exact", (rc, out) == (0, "no newline"),
       "rc=%d out=%r" % (rc, out))

    body = "".join("echo line%d\n" % i for i in range(1500))
    assert len(base64.b64encode(body.encode())) > 3 * MAX_LINE
    rc, out = vm.sh(body + "echo done\n")
    want = "".join("line%d\n" % i for i in range(1500)) + "done\n"
    ok("harness: a %d-byte script goes through in chunks" % len(body),
       rc == 0 and out == want, "rc=%d, %d bytes of output, want %d" % (rc, len(out), len(want)))

    # Nudges sent into a console quiet for longer than NUDGE_SECS must
    # leave every script's output as it was.
    before = vm.nudges
    rc, out = vm.sh("sleep %d; echo quiet" % (NUDGE_SECS + 2))
    rc2, out2 = vm.sh("echo after")
    ok("harness: nudges of a quiet console leave the scripts' output exact",
       vm.nudges > before and (rc, out, rc2, out2) == (0, "quiet\n", 0, "after\n"),
       "nudges %d, rc=%d out=%r, then rc=%d out=%r"
       % (vm.nudges - before, rc, out, rc2, out2))

    paths = vm.virtio_paths()
    want_paths = {"/machine/peripheral/%s/virtio-backend" % q for q, *_ in DEVICES}
    ok("harness: QMP x-query-virtio lists the four devices", set(paths) == want_paths,
       "x-query-virtio: %r" % paths)

    boot = vm.status_writes(0, vm.boot_mark)
    per = {}
    for p, v in boot:
        per.setdefault(p, []).append(v)
    driven = [p for p, vals in per.items() if any(v & DRIVER_OK for v in vals)]
    ok("harness: the trace holds status writes; only the boot disk reached DRIVER_OK",
       len(per) == len(DEVICES) and len(driven) == 1,
       "status writes before @@READY: %s" % {p: collapse(v) for p, v in per.items()})
