# SPDX-License-Identifier: GPL-2.0-only
"""Issue 2, item 6: bad input is refused and changes nothing; a failing
probe leaves the device FAILED and without driver; the next bind works.
"""

from revirt_vm import FAILED
from revirt_rig import driver_ok_value, expected_probe, kernel_bad_lines
from revirt_vm import collapse

DEV = "rng1"     # modern only

BAD_MASKS = [("zz", "zz"), ("0x1ffffffffffffffff", "0x1ffffffffffffffff"),
             ("empty", "")]
BAD_RESETS = ["2", "x"]
KEYS = ("features", "features_mask", "resets", "status", "driver")


def snapshot(d):
    return {k: d.get(k) for k in KEYS}


def run(ktap, env):
    if env.skip_unbuilt(ktap, "badinput: malformed writes, rmmod refusal, failing probe"):
        return
    rig = env.rig()
    ok = ktap.ok
    rig.load_all()
    rig.kmsg_mark("test_50")
    info = rig.info()
    n = rig.index(DEV, info)
    attr = "$RV_BUS/devices/revirt%d" % n
    rig.vdev(DEV)

    def bad_write(what, file, value):
        before = snapshot(rig.info()[DEV])
        hbefore = rig.host_status(DEV)
        ma = rig.mark()
        rc, out = rig.sh("rv_write %s/%s '%s'" % (attr, file, value))
        mb = rig.mark()
        after = snapshot(rig.info()[DEV])
        hafter = rig.host_status(DEV)
        w = rig.writes(ma, mb)
        ok("badinput: %s=%s fails with EINVAL" % (file, what),
           out.startswith("rc=1") and "Invalid argument" in out, out)
        ok("badinput: %s=%s changes nothing (guest sysfs, host status, no status write)"
           % (file, what),
           before == after and hbefore == hafter and not w,
           "before: %s\nafter:  %s\nhost 0x%x -> 0x%x\nstatus writes: %s"
           % (before, after, hbefore, hafter, rig.fmt(w)))

    for what, value in BAD_MASKS:
        bad_write(what, "features_mask", value)
    for value in BAD_RESETS:
        bad_write(value, "reset", value)

    # the core cannot go while the transport uses it
    rc, out = rig.sh("rmmod revirt; echo rc=$?; rv_loaded revirt && echo still-loaded;"
                     " lsmod | grep '^revirt'")
    ok("badinput: rmmod revirt with revirt_pci loaded is refused, core stays",
       "rc=0" not in out and "still-loaded" in out, out)
    good, diag = rig.entropy(DEV)
    ok("badinput: entropy after the refused rmmod", good, diag)

    # failing probe
    ma = rig.mark()
    rc, out = rig.sh(
        "echo revirt%d > $RV_BUS/drivers/revirt_rng/unbind || exit 1\n"
        "echo 1 > /sys/module/revirt_rng/parameters/fail_probe || exit 1\n"
        "rv_kmsg test_50_failprobe\n"
        "rv_write $RV_BUS/drivers/revirt_rng/bind revirt%d\n"
        "rv_info\n" % (n, n))
    mb = rig.mark()
    d = rig.info().get(DEV, {})
    hst = rig.host_status(DEV)
    w = rig.writes(ma, mb)
    dm = rig.dmesg_after("test_50_failprobe")
    ok("badinput: fail_probe=1: bind fails", rc == 0 and "rc=1" in out, out)
    ok("badinput: fail_probe=1: guest status has FAILED (0x80), no driver",
       d.get("status_val") is not None and d["status_val"] & FAILED
       and d.get("driver") == "-", d.get("line"))
    ok("badinput: fail_probe=1: host QMP status has FAILED", hst & FAILED,
       "host status 0x%x\nstatus writes: %s" % (hst, rig.fmt(w)))
    seq = w.get(DEV, [])
    ok("badinput: fail_probe=1: host saw a status write with FAILED for that device only",
       any(v & FAILED for v in seq) and list(w) == [DEV], "status writes: %s" % rig.fmt(w))
    clear = [l for l in dm if "revirt" in l and ("probe" in l or "fail" in l.lower())]
    ok("badinput: fail_probe=1: dmesg has a line about the failed probe", clear,
       "dmesg after bind:\n" + ("\n".join(dm) or "(nothing)"))

    ma = rig.mark()
    rc, out = rig.sh(
        "echo 0 > /sys/module/revirt_rng/parameters/fail_probe || exit 1\n"
        "rv_write $RV_BUS/drivers/revirt_rng/bind revirt%d\n" % n)
    mb = rig.mark()
    d = rig.info().get(DEV, {})
    hst = rig.host_status(DEV)
    w = rig.writes(ma, mb)
    ok("badinput: fail_probe=0: next bind works, DRIVER_OK on both sides",
       "rc=0" in out and d.get("driver") == "revirt_rng"
       and d.get("status_val") == driver_ok_value(DEV) == hst,
       "%s\n%s\nhost status 0x%x" % (out, d.get("line"), hst))
    ok("badinput: fail_probe=0: host sees the probe %s"
       % " ".join("0x%x" % v for v in expected_probe(DEV)),
       collapse(w.get(DEV, []))[-3:] == expected_probe(DEV),
       "status writes: %s" % rig.fmt(w))
    good, diag = rig.entropy(DEV)
    ok("badinput: entropy after the working bind", good, diag)

    bad = kernel_bad_lines(rig.dmesg_after("test_50"))
    ok("badinput: no kernel warnings", not bad, "\n".join(bad[:40]))
