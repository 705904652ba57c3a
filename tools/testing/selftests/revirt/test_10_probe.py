# SPDX-License-Identifier: GPL-2.0-only
"""Issue 2, items 1 and 2: three rng devices (legacy, modern, transitional)
register, probe and give entropy; the host sees the reset lifecycle.

Guest side: rng_available lists three revirt_rng.N, /dev/hwrng gives data
from each, sysfs status is DRIVER_OK.  Host side: QMP status has DRIVER_OK;
the status-write trace shows, per device, 0 then 1 on insmod revirt_pci,
3 (0xb) 0xf on insmod revirt_rng, 0 then 1 on unbind (that device only),
3 (0xb) 0xf on bind.
"""

from revirt_vm import DRIVER_OK, collapse
from revirt_rig import (KIND, RNGS, VERSION_1, driver_ok_value,
                        expected_probe, kernel_bad_lines)

ALL = RNGS + ["blk0"]


def hx(vals):
    return " ".join("0x%x" % v for v in vals) or "(none)"


def run(ktap, env):
    if env.skip_unbuilt(ktap, "probe: three rng devices probe and give entropy"):
        return
    rig = env.rig()
    vm = rig.vm
    ok = ktap.ok

    # Start from nothing loaded so that insmod revirt_pci is the first
    # registration this test sees (a shared VM may have them loaded).
    rig.check("rv_unload_all")
    rig.kmsg_mark("test_10")

    m0 = rig.mark()
    rc0, out0 = rig.sh("rv_insmod revirt")
    m1 = rig.mark()
    rc1, out1 = rig.sh("rv_insmod revirt_pci && rv_info")
    m2 = rig.mark()
    rc2, out2 = rig.sh("rv_insmod revirt_rng && rv_info")
    m3 = rig.mark()
    ok("probe: insmod revirt, revirt_pci, revirt_rng", rc0 == rc1 == rc2 == 0,
       "revirt: rc=%d %s\nrevirt_pci: rc=%d %s\nrevirt_rng: rc=%d %s"
       % (rc0, out0, rc1, out1, rc2, out2))

    info = rig.info()
    dev_lines = "\n".join(v["line"] for v in info.values())
    ok("probe: four revirt devices at the expected PCI addresses",
       all(q in info for q in ALL), dev_lines)

    # ---- item 1, guest side
    rc, avail = rig.sh("cat $RV_HWRNG/rng_available")
    names = sorted(w for w in avail.split() if w.startswith("revirt_rng."))
    want = sorted("revirt_rng.%d" % rig.index(q, info) for q in RNGS if q in info)
    ok("probe: rng_available lists three revirt_rng.N", len(names) == 3 and names == want,
       "rng_available: %r\nwant: %r\n%s" % (avail.strip(), want, dev_lines))

    for q in RNGS:
        d = info.get(q, {})
        ok("probe: %s (%s) bound to revirt_rng, sysfs status 0x%02x"
           % (q, KIND[q], driver_ok_value(q)),
           d.get("driver") == "revirt_rng" and d.get("status_val") == driver_ok_value(q),
           lambda: "%s\n%s" % (d.get("line"), rig.dmesg_tail()))
        feats = d.get("features", "")
        v1 = len(feats) == 64 and feats[32] == "1"
        ok("probe: %s negotiated VERSION_1=%d" % (q, VERSION_1[q]),
           len(feats) == 64 and v1 == VERSION_1[q], "features=%s" % feats)

    for q in RNGS:
        good, diag = rig.entropy(q, info)
        ok("probe: entropy from %s (%s)" % (q, KIND[q]), good, diag)

    # ---- item 1, host side
    for q in RNGS:
        st = rig.host_status(q)
        ok("probe: host QMP status of %s is 0x%x (DRIVER_OK)" % (q, driver_ok_value(q)),
           st & DRIVER_OK and st == driver_ok_value(q), "QMP status 0x%x" % st)
        gf = rig.host_guest_features(q)
        ok("probe: host sees %s guest features %s VERSION_1"
           % (q, "with" if VERSION_1[q] else "without"),
           ("VIRTIO_F_VERSION_1" in gf) == VERSION_1[q], "guest features: %s" % gf)

    # ---- item 2: what the host saw during the insmods
    rig.map_all(ALL)
    w01 = rig.writes(m0, m1)
    ok("lifecycle: insmod revirt (no devices yet) writes no status", not w01,
       rig.fmt(w01))
    w12 = rig.writes(m1, m2)
    for q in ALL:
        seq = collapse(w12.get(q, []))
        ok("lifecycle: insmod revirt_pci: host sees %s reset (0) then ACKNOWLEDGE (1)" % q,
           seq == [0, 1],
           "status writes of %s: %s (repeats collapsed: %s)\nall: %s"
           % (q, hx(w12.get(q, [])), hx(seq), rig.fmt(w12)))
    w23 = rig.writes(m2, m3)
    for q in RNGS:
        seq = collapse(w23.get(q, []))
        ok("lifecycle: insmod revirt_rng: host sees %s go %s" % (q, hx(expected_probe(q))),
           seq == expected_probe(q),
           "status writes of %s: %s\nall: %s" % (q, hx(w23.get(q, [])), rig.fmt(w23)))
    ok("lifecycle: insmod revirt_rng leaves blk0 alone", "blk0" not in w23, rig.fmt(w23))

    # ---- item 2: unbind and bind each rng, one at a time
    for q in RNGS:
        n = rig.index(q, info)
        ma = rig.mark()
        rcu, outu = rig.sh("echo revirt%d > $RV_BUS/drivers/revirt_rng/unbind && rv_info" % n)
        mb = rig.mark()
        wu = rig.writes(ma, mb)
        after = rig.info().get(q, {})
        hst = rig.host_status(q)
        ok("lifecycle: unbind %s: host sees 0 then 1 for it only" % q,
           rcu == 0 and list(wu) == [q] and collapse(wu[q]) == [0, 1],
           "unbind rc=%d %s\nstatus writes: %s" % (rcu, outu, rig.fmt(wu)))
        ok("lifecycle: unbind %s: no driver, status 0x01 in guest and host" % q,
           after.get("driver") == "-" and after.get("status_val") == 1 and hst == 1,
           "guest: %s\nhost QMP status 0x%x" % (after.get("line"), hst))

        rcb, outb = rig.sh("echo revirt%d > $RV_BUS/drivers/revirt_rng/bind && rv_info" % n)
        mc = rig.mark()
        wb = rig.writes(mb, mc)
        after = rig.info().get(q, {})
        hst = rig.host_status(q)
        ok("lifecycle: bind %s: host sees %s for it only" % (q, hx(expected_probe(q))),
           rcb == 0 and list(wb) == [q] and collapse(wb[q]) == expected_probe(q),
           "bind rc=%d %s\nstatus writes: %s" % (rcb, outb, rig.fmt(wb)))
        ok("lifecycle: bind %s: driver back, DRIVER_OK in guest and host" % q,
           after.get("driver") == "revirt_rng"
           and after.get("status_val") == driver_ok_value(q) == hst,
           "guest: %s\nhost QMP status 0x%x" % (after.get("line"), hst))
        good, diag = rig.entropy(q)
        ok("lifecycle: entropy from %s after rebind" % q, good, diag)

    bad = kernel_bad_lines(rig.dmesg_after("test_10"))
    ok("probe: no kernel warnings", not bad, "\n".join(bad[:40]))
