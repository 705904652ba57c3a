# SPDX-License-Identifier: GPL-2.0-only
"""Issue 2, item 3: a device that firmware left running and that no revirt
driver handles (virtio-blk, the SeaBIOS boot disk).

SeaBIOS drives the disk to DRIVER_OK before the kernel starts (checked in
the trace up to @@READY: see revirt_rig for why the disk has bootindex=1).
insmod revirt_pci must reset it (0) and acknowledge it (1) and nothing
more; in the guest no driver is bound and status reads 0x01.
"""

from revirt_vm import DRIVER_OK, collapse
from revirt_rig import kernel_bad_lines


def hx(vals):
    return " ".join("0x%x" % v for v in vals) or "(none)"


def run(ktap, env):
    if env.skip_unbuilt(ktap, "blk: unhandled device is reset and left alone", ["revirt", "revirt_pci"]):
        return
    rig = env.rig()
    ok = ktap.ok

    # firmware side, from the trace before the guest ran anything
    boot = rig.vm.status_writes(0, rig.vm.boot_mark)
    vdev = None
    try:
        vdev = rig.vdev("blk0")
    except Exception as e:     # reported just below
        vdev_err = str(e)
    seabios = collapse([v for p, v in boot if p == vdev])
    if not env.skip_boot_disk_reset(
            ktap, "blk: SeaBIOS drove the disk to DRIVER_OK before the guest loaded revirt"):
        ok("blk: SeaBIOS drove the disk to DRIVER_OK before the guest loaded revirt",
           vdev is not None and seabios and seabios[-1] & DRIVER_OK
           and rig.boot_status["blk0"] & DRIVER_OK,
           lambda: "blk vdev %s; its status writes before @@READY: %s; QMP status at "
           "boot 0x%x\n%s" % (vdev, hx(seabios), rig.boot_status["blk0"],
                              "" if vdev else vdev_err))

    rig.kmsg_mark("test_20")
    rig.check("for m in revirt_rng revirt_pci; do ! rv_loaded $m || rmmod $m; done")
    ma = rig.mark()
    rc, out = rig.sh("rv_insmod revirt && rv_insmod revirt_pci && rv_info")
    mb = rig.mark()
    ok("blk: insmod revirt_pci", rc == 0, out)
    w = rig.writes(ma, mb)
    seq = w.get("blk0", [])
    ok("blk: insmod revirt_pci: host sees reset (0) then ACKNOWLEDGE (1) only",
       collapse(seq) == [0, 1],
       "blk0 status writes: %s\nall: %s" % (hx(seq), rig.fmt(w)))

    rc, out = rig.sh("rv_insmod revirt_rng")
    mc = rig.mark()
    w2 = rig.writes(mb, mc)
    ok("blk: insmod revirt_rng does not touch the disk", rc == 0 and "blk0" not in w2,
       "rc=%d %s\nstatus writes: %s" % (rc, out, rig.fmt(w2)))

    info = rig.info()
    d = info.get("blk0", {})
    ok("blk: a revirt device for the disk with device id 0x0002",
       d.get("device") == "0x0002", "\n".join(v["line"] for v in info.values()))
    rc, out = rig.sh("ls -l $RV_BUS/devices/%s/" % d.get("name", "revirt-none"))
    ok("blk: no driver bound in the guest (driver link absent)",
       rc == 0 and d.get("driver") == "-", "%s\n%s" % (d.get("line"), out))
    ok("blk: guest status reads 0x01", d.get("status_val") == 1, d.get("line"))
    hst = rig.host_status("blk0")
    ok("blk: host QMP status is 0x1 (ACKNOWLEDGE only)", hst == 1, "QMP status 0x%x" % hst)

    bad = kernel_bad_lines(rig.dmesg_after("test_20"))
    ok("blk: no kernel warnings", not bad, "\n".join(bad[:40]))
