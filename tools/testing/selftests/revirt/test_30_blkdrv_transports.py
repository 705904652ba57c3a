# SPDX-License-Identifier: GPL-2.0-only
"""revirt_blk on a legacy virtio-pci disk (disable-modern=on) and on
virtio-mmio version 1 and version 2 disks of a microvm: probe, serial, a checksummed
pattern across unbind/bind and rmmod/insmod, the host's view of the
resets, and the image file after the VM exits.
"""

from blkdrv import BlkVM, Disk, check_reload, guest_sha, sha256_file

MiB = 1 << 20


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
