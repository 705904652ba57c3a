# SPDX-License-Identifier: GPL-2.0-only
"""revirt_blk on a legacy virtio-pci disk (disable-modern=on) and on
virtio-mmio version 1 and version 2 disks of a microvm: probe, serial, a checksummed
pattern across unbind/bind and rmmod/insmod, the host's view of the
resets, and the image file after the VM exits.

Then both ways the ring gives a device addresses, behind an IOMMU that
translates (q35 with QEMU's intel-iommu, guest intel_iommu=on): a disk
with iommu_platform=on negotiates VIRTIO_F_ACCESS_PLATFORM, so its
accesses go through the IOMMU and the ring must map every buffer with the
DMA API; a default disk does not, bypasses the IOMMU and must be given
physical addresses.  An address of the wrong kind makes the device fail
its requests (an IOMMU fault, or the wrong memory) and the pattern check
fail.
"""

from blkdrv import BlkVM, Disk, check_reload, guest_sha, sha256_file

MiB = 1 << 20
ACCESS_PLATFORM = 33


def run_one(ktap, env, tag, transport, disk, version1, machine, extra, append):
    mods = ["revirt", transport, "revirt_blk"]
    if env.skip_unbuilt(ktap, "blkdrv: %s disk" % tag, mods):
        return
    bvm = BlkVM(env, "blkdrv-%s" % tag.replace(" ", "-"), [disk], machine=machine,
                extra=extra, append=append)
    try:
        rc, out = bvm.sh("rv_insmod revirt && rv_insmod %s && rv_insmod revirt_blk || exit 1\n"
                         "d=$(rvb_wait %s) || exit 1\n"
                         "echo $d $(cat /sys/block/$d/size) $(cat /sys/block/$d/serial)"
                         " $(cat $RV_BUS/devices/$(rvb_rv %s)/status)"
                         % (transport, disk.qid, disk.qid))
        w = out.split()
        want = "0x0f" if version1 else "0x07"
        ktap.ok("blkdrv: %s: disk probes with its serial, size and status %s" % (tag, want),
                rc == 0 and len(w) == 4 and w[1] == str(disk.size // 512)
                and w[2] == disk.qid and w[3] == want, out)
        if rc != 0:
            return
        check_reload(ktap, bvm, disk.qid, "blkdrv: %s" % tag, version1=version1)
        sha = guest_sha(bvm, disk.qid, blocks=1024)
        bad = bvm.clean_dmesg()
        ktap.ok("blkdrv: %s: no warning or oops in dmesg" % tag, not bad, "\n".join(bad[:40]))
    finally:
        bvm.stop()
    host = sha256_file(disk.path, 0, 1024 * 4096)
    ktap.ok("blkdrv: %s: host image holds the pattern the guest read" % tag,
            host == sha, "guest %s host %s" % (sha, host))


def run(ktap, env):
    run_one(ktap, env, "pci legacy", "revirt_pci",
            Disk(env.tmp, "leg", 8 * MiB, props="disable-modern=on"),
            False, "pc", [], "")
    # microvm: see test_70_mmio for tsc_early_khz
    run_one(ktap, env, "mmio v1", "revirt_mmio",
            Disk(env.tmp, "mm1", 8 * MiB, dev="virtio-blk-device"),
            False, "microvm,acpi=on", ["-global", "virtio-mmio.force-legacy=true"],
            "tsc_early_khz=2000000")
    run_one(ktap, env, "mmio v2", "revirt_mmio",
            Disk(env.tmp, "mm", 8 * MiB, dev="virtio-blk-device"),
            True, "microvm,acpi=on", ["-global", "virtio-mmio.force-legacy=false"],
            "tsc_early_khz=2000000")
    run_iommu(ktap, env)


def feature_bit(bvm, qid, bit):
    rc, out = bvm.sh("cut -c%d $RV_BUS/devices/$(rvb_rv %s)/features" % (bit + 1, qid))
    return out.strip() if rc == 0 else "(rc=%d %s)" % (rc, out.strip())


def run_iommu(ktap, env):
    tag = "blkdrv: iommu"
    if env.skip_unbuilt(ktap, tag, ["revirt", "revirt_pci", "revirt_blk"]):
        return
    # QEMU offers VIRTIO_F_ACCESS_PLATFORM on modern-only devices.
    dma = Disk(env.tmp, "iop", 8 * MiB, props="disable-legacy=on,iommu_platform=on")
    phys = Disk(env.tmp, "iob", 8 * MiB)
    # intremap needs a split irqchip, which TCG has not.
    bvm = BlkVM(env, "blkdrv-iommu", [dma, phys], machine="q35",
                extra=["-device", "intel-iommu,intremap=off"], append="intel_iommu=on")
    shas = {}
    try:
        rc, out = bvm.sh("rv_insmod revirt && rv_insmod revirt_pci && rv_insmod revirt_blk"
                         " || exit 1\n"
                         "rvb_wait iop >/dev/null && rvb_wait iob >/dev/null || exit 1\n"
                         "ls /sys/class/iommu\n"
                         "for d in iop iob; do\n"
                         "  p=$(readlink -f /sys/block/$(rvb_dev $d)/device/..)\n"
                         "  echo $d ${p##*/} group $(readlink $p/iommu_group) || exit 2\n"
                         "  [ -e $p/iommu_group ] || exit 2\n"
                         "done")
        ktap.ok("%s: both disks probe, behind the guest's IOMMU" % tag,
                rc == 0 and "dmar" in out, out)
        if rc != 0:
            return
        bits = (feature_bit(bvm, "iop", ACCESS_PLATFORM), feature_bit(bvm, "iob", ACCESS_PLATFORM))
        ktap.ok("%s: VIRTIO_F_ACCESS_PLATFORM negotiated on iommu_platform=on only" % tag,
                bits == ("1", "0"), "bit %d: iop %s, iob %s" % ((ACCESS_PLATFORM,) + bits))
        # DMA API mappings: the whole reload cycle of the other transports.
        check_reload(ktap, bvm, "iop", "%s: iommu_platform disk" % tag)
        rc, out = bvm.sh("d=$(rvb_dev iob) || exit 1\n"
                         "rvblk-io fill /dev/$d 13 0 1024 && rvblk-io verify /dev/$d 13 0 1024",
                         timeout=300)
        ktap.ok("%s: default disk (physical addresses): 1024 checksummed blocks"
                " written and read back" % tag, rc == 0 and "0 bad" in out, out)
        for d in (dma, phys):
            shas[d.qid] = guest_sha(bvm, d.qid, blocks=1024)
        rc, out = bvm.sh("dmesg")
        bad = [l for l in out.splitlines() if "DMAR" in l and "fault" in l.lower()]
        bad += bvm.clean_dmesg()
        ktap.ok("%s: no IOMMU fault, warning or oops in dmesg" % tag, not bad,
                "\n".join(bad[:40]))
    finally:
        bvm.stop()
    for d in (dma, phys):
        if d.qid not in shas:
            continue
        host = sha256_file(d.path, 0, 1024 * 4096)
        ktap.ok("%s: host image of %s holds the pattern the guest read" % (tag, d.qid),
                host == shas[d.qid], "guest %s host %s" % (shas[d.qid], host))
