# SPDX-License-Identifier: GPL-2.0-only
"""Issue 2, item 5: features_mask renegotiates, reset re-probes.

virtio-rng-pci offers VIRTIO_RING_F_INDIRECT_DESC (28) and EVENT_IDX (29)
(checked against the host's host-features first).  Clearing them in
features_mask must take them out of what the host sees as guest features and
out of the guest's features string, through a reset (host sees 0) and a new
probe; restoring the mask brings them back.  Writing 1 to reset bumps
resets, re-binds the driver and entropy still flows.
"""

from revirt_vm import collapse
from revirt_rig import KIND, driver_ok_value, expected_probe, kernel_bad_lines

MASK_OFF = "0xffffffffcfffffff"
MASK_ALL = "0xffffffffffffffff"
RING_FEATS = ("VIRTIO_RING_F_INDIRECT_DESC", "VIRTIO_RING_F_EVENT_IDX")

DEVS = ["rng2", "rng0"]      # transitional (modern) and legacy


def hx(vals):
    return " ".join("0x%x" % v for v in vals) or "(none)"


def bits(feats, *nums):
    return [feats[n] if len(feats) == 64 else "?" for n in nums]


def run(ktap, env):
    if env.skip_unbuilt(ktap, "renegotiate: features_mask and reset"):
        return
    rig = env.rig()
    ok = ktap.ok
    rig.load_all()
    # name each device's trace pointer here too: test_10 may not have run
    rig.map_all(DEVS)
    rig.kmsg_mark("test_40")

    for q in DEVS:
        info = rig.info()
        n = rig.index(q, info)
        attr = "$RV_BUS/devices/revirt%d" % n
        offered = rig.host_offered_features(q)
        ok("renegotiate: %s (%s) offers INDIRECT_DESC and EVENT_IDX" % (q, KIND[q]),
           all(f in offered for f in RING_FEATS), "host features: %s" % offered)
        before = info[q]
        ok("renegotiate: %s negotiated bits 28, 29 before" % q,
           bits(before.get("features", ""), 28, 29) == ["1", "1"]
           and all(f in rig.host_guest_features(q) for f in RING_FEATS),
           lambda: "guest: %s\nhost guest features: %s"
           % (before["line"], rig.host_guest_features(q)))

        # clear 28 and 29
        ma = rig.mark()
        rc, out = rig.sh("rv_write %s/features_mask %s" % (attr, MASK_OFF))
        mb = rig.mark()
        d = rig.info().get(q, {})
        gf = rig.host_guest_features(q)
        w = rig.writes(ma, mb)
        seq = collapse(w.get(q, []))
        ok("renegotiate: %s features_mask=%s accepted" % (q, MASK_OFF),
           rc == 0 and d.get("features_mask") == MASK_OFF, "%s\n%s" % (out, d.get("line")))
        ok("renegotiate: %s guest features string has bits 28, 29 = 0" % q,
           bits(d.get("features", ""), 28, 29) == ["0", "0"], d.get("line"))
        ok("renegotiate: %s host guest-features lack INDIRECT_DESC and EVENT_IDX" % q,
           not any(f in gf for f in RING_FEATS)
           and ("VIRTIO_F_VERSION_1" in gf) == (q != "rng0"),
           "host guest features: %s" % gf)
        ok("renegotiate: %s host sees a reset and a new probe (%s)"
           % (q, hx([0, 1] + expected_probe(q))),
           seq[:1] == [0] and seq[-len(expected_probe(q)):] == expected_probe(q)
           and list(w) == [q],
           "status writes: %s" % rig.fmt(w))
        ok("renegotiate: %s driver bound, DRIVER_OK after the new mask" % q,
           d.get("driver") == "revirt_rng" and d.get("status_val") == driver_ok_value(q)
           and rig.host_status(q) == driver_ok_value(q),
           lambda: "%s\nhost status 0x%x" % (d.get("line"), rig.host_status(q)))
        good, diag = rig.entropy(q)
        ok("renegotiate: %s entropy without INDIRECT_DESC/EVENT_IDX" % q, good, diag)

        # restore
        ma = rig.mark()
        rc, out = rig.sh("rv_write %s/features_mask %s" % (attr, MASK_ALL))
        mb = rig.mark()
        d = rig.info().get(q, {})
        gf = rig.host_guest_features(q)
        w = rig.writes(ma, mb)
        ok("renegotiate: %s restoring the mask brings bits 28, 29 back on both sides" % q,
           rc == 0 and d.get("features_mask") == MASK_ALL
           and bits(d.get("features", ""), 28, 29) == ["1", "1"]
           and all(f in gf for f in RING_FEATS)
           and collapse(w.get(q, []))[:1] == [0],
           "%s\n%s\nhost guest features: %s\nstatus writes: %s"
           % (out, d.get("line"), gf, rig.fmt(w)))
        good, diag = rig.entropy(q)
        ok("renegotiate: %s entropy after restoring" % q, good, diag)

        # reset
        r0 = d.get("resets")
        ma = rig.mark()
        rc, out = rig.sh("rv_write %s/reset 1" % attr)
        mb = rig.mark()
        d = rig.info().get(q, {})
        w = rig.writes(ma, mb)
        try:
            bumped = int(d.get("resets")) >= int(r0) + 1
        except (TypeError, ValueError):
            bumped = False
        ok("renegotiate: %s reset=1 bumps resets (%s -> %s)" % (q, r0, d.get("resets")),
           rc == 0 and bumped, "%s\n%s" % (out, d.get("line")))
        hst = rig.host_status(q)
        ok("renegotiate: %s reset: driver bound again, DRIVER_OK on both sides" % q,
           d.get("driver") == "revirt_rng" and d.get("status_val") == driver_ok_value(q) == hst,
           "%s\nhost status 0x%x" % (d.get("line"), hst))
        seq = collapse(w.get(q, []))
        ok("renegotiate: %s reset: host sees status 0 then the probe" % q,
           0 in seq and seq[-len(expected_probe(q)):] == expected_probe(q)
           and list(w) == [q],
           "status writes: %s" % rig.fmt(w))
        good, diag = rig.entropy(q)
        ok("renegotiate: %s entropy after reset" % q, good, diag)

    bad = kernel_bad_lines(rig.dmesg_after("test_40"))
    ok("renegotiate: no kernel warnings", not bad, "\n".join(bad[:40]))
