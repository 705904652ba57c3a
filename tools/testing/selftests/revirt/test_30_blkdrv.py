# SPDX-License-Identifier: GPL-2.0-only
"""revirt_blk on modern virtio-pci disks, in a VM of its own (4 vCPUs):

  boot  bootindex=1: SeaBIOS leaves it in DRIVER_OK; host-written data
  data  num-queues=4: the pattern, reloads, a writer during reloads,
        the multiqueue check and the DEVICE_NEEDS_RESET recovery
  ro    readonly=on
  disc  discard=unmap, an MBR with two partitions; resized through QMP
  err   behind QEMU's blkdebug: reads of sector 4096, writes of sector
        6144 and every flush fail on the host with EIO

Guest side: sysfs (serial, size, ro, mq), data read back, errors seen by
the writer of a failed request.  Host side: QMP status, the status writes
(a reset at unbind and rmmod), queue notifications per virtqueue, the
image files after the VM exits.
"""

import os
import re
import struct

from blkdrv import (BlkVM, Disk, check_reload, collapse, guest_sha, hx,
                    random_bytes, sha256_file)

MODULES = ["revirt", "revirt_pci", "revirt_blk"]
MiB = 1 << 20
DRIVER_OK = 0x04
NEEDS_RESET = 0x40

# disc: two partitions of 3 MiB from sector 2048 and 8192
PART1 = (2048, 6144)
PART2 = (8192, 6144)


def mbr():
    table = b""
    for start, count in (PART1, PART2):
        table += struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", start, count)
    sector = bytearray(512)
    sector[446:446 + len(table)] = table
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def od_zero(out):
    """True if the od -An -tx1 | sort -u output in out shows zeros only."""
    lines = [l.split() for l in out.splitlines()
             if l.startswith(" ") or l.strip() == "*"]
    return lines == [["00"] * 16, ["*"]]


# blkdebug rules for the disk "err" (sectors of 512 bytes)
ERR_READ_SECTOR = 4096
ERR_WRITE_SECTOR = 6144
BLKDEBUG = """[inject-error]
event = "read_aio"
errno = "5"
sector = "%d"
once = "off"

[inject-error]
event = "write_aio"
errno = "5"
sector = "%d"
once = "off"

[inject-error]
event = "flush_to_disk"
errno = "5"
once = "off"
""" % (ERR_READ_SECTOR, ERR_WRITE_SECTOR)


def qemu_stderr(bvm):
    try:
        with open(bvm.vm.stderr_path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def check_probe(ktap, env, bvm, boot_status):
    ok = ktap.ok
    if not env.skip_boot_disk_reset(ktap, "blkdrv: SeaBIOS left the boot disk in DRIVER_OK"):
        ok("blkdrv: SeaBIOS left the boot disk in DRIVER_OK",
           boot_status & DRIVER_OK, "QMP status at boot 0x%x" % boot_status)
    rc, out = bvm.sh("rv_insmod revirt && rv_insmod revirt_pci && rv_insmod revirt_blk || exit 1\n"
                     "for q in boot data ro disc err; do\n"
                     "  d=$(rvb_wait $q) || exit 1\n"
                     "  echo \"$q $d $(cat /sys/block/$d/size) ro=$(cat /sys/block/$d/ro)"
                     " mq=$(ls /sys/block/$d/mq | wc -l) serial=$(cat /sys/block/$d/serial)\"\n"
                     "done\n"
                     "ls /sys/block/$(rvb_dev disc)")
    disks = {}
    for line in out.splitlines():
        w = line.split()
        if len(w) == 6 and w[0] in bvm.disks:
            disks[w[0]] = w
    ok("blkdrv: five disks rvdX appear, each with its serial in /sys/block/rvdX/serial",
       rc == 0 and len(disks) == 5 and all(w[1].startswith("rvd") and w[5] == "serial=" + q
                                           for q, w in disks.items()), out)
    ok("blkdrv: sizes in sectors match the images",
       all(int(w[2]) == bvm.disks[q].size // 512 for q, w in disks.items()), out)
    ok("blkdrv: the disk with num-queues=4 has 4 hardware queues, those with 1 have 1",
       disks.get("data", [""] * 6)[4] == "mq=4"
       and all(w[4] == "mq=1" for q, w in disks.items() if q != "data"), out)
    d = disks.get("disc", [None, "rvdX"])[1]
    ok("blkdrv: partitions %s1 and %s2 appear" % (d, d),
       "%s1" % d in out.split() and "%s2" % d in out.split(), out)
    sts = {q: bvm.host_status(q) for q in bvm.disks}
    ok("blkdrv: host QMP status 0xf for every disk", all(v == 0xf for v in sts.values()),
       repr(sts))
    return disks


def check_takeover(ktap, bvm):
    want = sha256_file(bvm.disks["boot"].path)
    got = guest_sha(bvm, "boot")
    ktap.ok("blkdrv: the disk SeaBIOS booted from reads back what the host wrote",
            got == want, "guest %s host %s" % (got, want))


def check_mq(ktap, bvm):
    m0 = bvm.mark()
    rc, out = bvm.sh("d=$(rvb_dev data) || exit 1\n"
                     "for c in 0 1 2 3; do\n"
                     "  taskset -c $c dd if=/dev/$d of=/dev/null bs=4096 count=64 skip=$((c * 64)) iflag=direct 2>&1 | grep -q '64+0 records in' || exit 1\n"
                     "  taskset -c $c dd if=/dev/zero of=/dev/$d bs=4096 count=8 seek=$((4000 + c * 8)) oflag=direct 2>&1 | grep -q '8+0 records out' || exit 1\n"
                     "done\necho io-ok")
    m1 = bvm.mark()
    bvm.learn_ptr("data", m0, m1)
    qs = bvm.notified_queues("data", m0, m1)
    ktap.ok("blkdrv: mq: I/O from each of 4 CPUs works", rc == 0 and "io-ok" in out, out)
    ktap.ok("blkdrv: mq: host sees kicks on virtqueues 0, 1, 2 and 3",
            qs == {0, 1, 2, 3}, "queues notified: %s" % sorted(qs))


def check_writer(ktap, bvm):
    """Every write that returned success is on disk after two reloads."""
    rc, out = bvm.sh(
        "link() { ln -sf /dev/$(rvb_wait data) /tmp/wdisk; }\n"
        "link || exit 1\n"
        "rvblk-io writer /tmp/wdisk 99 64 14 /tmp/wstate >/tmp/wout 2>&1 &\n"
        "w=$!\n"
        "sleep 3\n"
        "r=$(rvb_rv data) || exit 1\n"
        "rvb_unbind $r && echo unbound\n"
        "sleep 1\n"
        "rvb_bind $r && link && echo bound\n"
        "sleep 3\n"
        "rvb_rmmod && echo unloaded\n"
        "sleep 1\n"
        "rv_insmod revirt_blk && link && echo loaded\n"
        "wait $w\n"
        "echo writer=$?\n"
        "cat /tmp/wout\n"
        "d=$(rvb_wait data) || exit 1\n"
        "rvblk-io check /dev/$d 99 /tmp/wstate", timeout=300)
    m = re.search(r"writes ok (\d+) failed (\d+) opens (\d+)", out)
    okw = int(m.group(1)) if m else 0
    ktap.ok("blkdrv: a writer across unbind/bind and rmmod/insmod: every acknowledged write is on disk",
            rc == 0 and "0 bad" in out and all(s in out for s in ("unbound", "bound", "unloaded", "loaded"))
            and okw > 0 and m and int(m.group(3)) >= 3, out)


def check_errors(ktap, bvm):
    """Errors the host's block layer returns reach the caller as EIO."""
    rb, wb = ERR_READ_SECTOR // 8, ERR_WRITE_SECTOR // 8
    rc, out = bvm.sh("d=$(rvb_dev err) || exit 1\n"
                     "dd if=/dev/$d of=/dev/null bs=4096 skip=%d count=1 iflag=direct 2>&1; echo read_bad=$?\n"
                     "dd if=/dev/$d of=/dev/null bs=4096 skip=0 count=1 iflag=direct 2>&1; echo read_good=$?\n"
                     "dd if=/dev/zero of=/dev/$d bs=4096 seek=%d count=1 oflag=direct 2>&1; echo write_bad=$?\n"
                     "dd if=/dev/zero of=/dev/$d bs=4096 seek=%d count=1 oflag=direct 2>&1; echo write_good=$?\n"
                     "dmesg | grep \"I/O error, dev $d,\"" % (rb, wb, wb + 1))
    ktap.ok("blkdrv: device errors: a failed read and a failed write end with EIO, their neighbours work",
            "read_bad=1" in out and "read_good=0" in out and "write_bad=1" in out
            and "write_good=0" in out and out.count("Input/output error") >= 2
            and "sector %d op 0x0:(READ)" % ERR_READ_SECTOR in out
            and "sector %d op 0x1:(WRITE)" % ERR_WRITE_SECTOR in out, out)

    rc, out = bvm.sh("for q in err data; do\n"
                     "  d=$(rvb_dev $q) || exit 1\n"
                     "  f0=$(awk '{print $16}' /sys/block/$d/stat)\n"
                     "  rvblk-io fill /dev/$d 21 100 4 2>&1; echo $q fill=$?\n"
                     "  echo $q cache=\"$(cat /sys/block/$d/queue/write_cache)\" flushes=$f0/$(awk '{print $16}' /sys/block/$d/stat)\n"
                     "done")
    m = re.search(r"data cache=write back flushes=(\d+)/(\d+)", out)
    ktap.ok("blkdrv: flush: fsync sends a flush to the device (write-back cache); "
            "a flush the host fails makes fsync fail",
            "err fill=1" in out and "fsync: Input/output error" in out
            and "data fill=0" in out and m and int(m.group(2)) > int(m.group(1)), out)


def check_open_across_unbind(ktap, bvm):
    """The disk may outlive its device: a file held open across unbind."""
    rc, out = bvm.sh("old=$(rvb_dev boot) || exit 1\n"
                     "r=$(rvb_rv boot)\n"
                     "exec 3</dev/$old\n"
                     "rvb_unbind $r || exit 1\n"
                     "dd bs=4096 count=1 <&3 >/dev/null 2>&1; echo stale_read=$?\n"
                     "rvb_bind $r || exit 1\n"
                     "new=$(rvb_wait boot) || exit 1\n"
                     "echo old=$old new=$new\n"
                     "exec 3<&-\n"
                     "dd if=/dev/$new of=/dev/null bs=4096 count=16 iflag=direct 2>&1 | grep -c '16+0 records in'\n"
                     "echo left=$(ls /sys/block | grep -c \"^$old\\$\")\n"
                     "rvb_unbind $r && rvb_bind $r || exit 1\n"
                     "echo again=$(rvb_wait boot)")
    m = re.search(r"old=(\S+) new=(\S+)", out)
    lines = out.split()
    ktap.ok("blkdrv: a disk held open across unbind: the new disk gets another "
            "name and works; after the close the old name is given again",
            rc == 0 and m and m.group(1) != m.group(2)
            and lines[-3:] == ["1", "left=0", "again=" + m.group(1)], out)


def check_ro(ktap, bvm):
    rc, out = bvm.sh("d=$(rvb_dev ro) || exit 1\n"
                     "echo ro=$(cat /sys/block/$d/ro)\n"
                     "dd if=/dev/zero of=/dev/$d bs=4096 count=1 oflag=direct 2>&1\n"
                     "echo dd=$?")
    ktap.ok("blkdrv: read-only disk: ro=1 and a write fails with 'Operation not permitted'",
            "ro=1" in out and "dd=0" not in out and "not permitted" in out, out)


def check_discard(ktap, bvm):
    disc = bvm.disks["disc"]
    p1 = PART1[0] * 512
    rc, out = bvm.sh("d=$(rvb_dev disc) || exit 1\n"
                     "rvblk-io fill /dev/${d}1 5 0 256 || exit 1\n"
                     "rvblk-io fill /dev/${d}2 6 0 256 || exit 1\n"
                     "echo limits $(cat /sys/block/$d/queue/discard_max_bytes) $(cat /sys/block/$d/queue/write_zeroes_max_bytes)")
    before = os.stat(disc.path).st_blocks
    rc2, out2 = bvm.sh("d=$(rvb_dev disc) || exit 1\n"
                       "blkdiscard -o 0 -l 1048576 /dev/${d}1 || exit 1\n"
                       "dd if=/dev/${d}1 bs=4096 count=256 iflag=direct 2>/dev/null | od -An -tx1 | sort -u")
    after = os.stat(disc.path).st_blocks
    with open(disc.path, "rb") as f:
        f.seek(p1)
        host = f.read(MiB)
    ktap.ok("blkdrv: discard: the range reads zero in the guest and the host image is punched",
            rc == 0 and rc2 == 0 and od_zero(out2)
            and host == bytes(MiB) and after < before,
            "%s\n%s\nst_blocks %d -> %d, host range zero: %s"
            % (out, out2, before, after, host == bytes(MiB)))

    rc, out = bvm.sh("d=$(rvb_dev disc) || exit 1\n"
                     "rvblk-io fill /dev/${d}1 7 0 64 || exit 1\n"
                     "rvblk-io zeroout /dev/${d}1 0 262144 || exit 1\n"
                     "dd if=/dev/${d}1 bs=4096 count=64 iflag=direct 2>/dev/null | od -An -tx1 | sort -u\n"
                     "rvblk-io verify /dev/${d}2 6 0 256")
    ktap.ok("blkdrv: write-zeroes (BLKZEROOUT) zeroes the range, the other partition keeps its data",
            rc == 0 and od_zero(out) and "0 bad" in out, out)


def check_resize(ktap, bvm):
    rc, before = bvm.sh("d=$(rvb_dev disc); r=$(rvb_rv disc); echo $d $(cat /sys/block/$d/size) $(cat $RV_BUS/devices/$r/resets)")
    bvm.vm.qmp("block_resize", device="drv-disc", size=16 * MiB)
    rc, after = bvm.sh("d=$(rvb_dev disc); r=$(rvb_rv disc)\n"
                       "i=0; while [ $i -lt 50 ] && [ $(cat /sys/block/$d/size) != 32768 ]; do i=$((i+1)); sleep 0.1; done\n"
                       "echo $d $(cat /sys/block/$d/size) $(cat $RV_BUS/devices/$r/resets)\n"
                       "dd if=/dev/zero of=/dev/$d bs=4096 count=1 seek=4000 oflag=direct 2>&1 | grep -c '1+0 records out'\n"
                       "dmesg | grep -c 'capacity change'")
    b, a = before.split(), after.split()
    ktap.ok("blkdrv: QMP block_resize: the guest sees 16 MiB without a reload",
            len(b) == 3 and len(a) >= 5 and a[0] == b[0] and a[1] == "32768"
            and a[2] == b[2] and a[3] == "1" and int(a[4]) >= 1,
            "before: %s\nafter: %s" % (before, after))


def check_needs_reset(ktap, bvm):
    ok = ktap.ok
    err_before = qemu_stderr(bvm).count("Guest says index")
    m0 = bvm.mark()
    rc, out = bvm.sh(
        "r=$(rvb_rv data) || exit 1\n"
        "d=$(rvb_dev data)\n"
        "n=$(cat $RV_BUS/devices/$r/resets)\n"
        "echo 1 > /sys/module/revirt_blk/parameters/malformed_requests\n"
        "timeout 30 dd if=/dev/zero of=/dev/$d bs=4096 count=1 seek=3000 oflag=direct 2>&1\n"
        "echo dd=$?\n"
        "i=0\n"
        "while [ $i -lt 100 ]; do\n"
        "  [ \"$(cat $RV_BUS/devices/$r/status)\" = 0x0f ] && [ $(cat $RV_BUS/devices/$r/resets) -gt $n ] && rvb_dev data >/dev/null 2>&1 && break\n"
        "  i=$((i + 1)); sleep 0.1\n"
        "done\n"
        "echo status=$(cat $RV_BUS/devices/$r/status) resets=$n/$(cat $RV_BUS/devices/$r/resets)\n"
        "d=$(rvb_wait data) || exit 1\n"
        "rvblk-io fill /dev/$d 12 600 64 && rvblk-io verify /dev/$d 12 600 64\n"
        "dmesg | grep -E 'needs a reset|device failed|did not complete'", timeout=120)
    m1 = bvm.mark()
    ok("blkdrv: needs-reset: the request in flight is requeued and completes, no error",
       "dd=0" in out and "1+0 records out" in out, out)
    m = re.search(r"resets=(\d+)/(\d+)", out)
    ok("blkdrv: needs-reset: the core recovers the disk: bound again, status 0x0f, I/O works",
       rc == 0 and "status=0x0f" in out and m and int(m.group(2)) > int(m.group(1))
       and "0 bad" in out, out)
    ok("blkdrv: needs-reset: dmesg names the recovery, and no failed request",
       "needs a reset" in out and "device failed" not in out
       and "did not complete" not in out, out)
    ok("blkdrv: needs-reset: host QEMU reported the malformed ring",
       qemu_stderr(bvm).count("Guest says index") > err_before, qemu_stderr(bvm)[-1500:])
    seq = collapse(bvm.writes_of("data", m0, m1))
    st = bvm.host_status("data")
    ok("blkdrv: needs-reset: host sees a reset and the renegotiation, ends DRIVER_OK without NEEDS_RESET",
       seq[-5:] == [0, 1, 3, 0xb, 0xf] and st == 0xf,
       "status writes: %s; QMP 0x%x" % (hx(seq), st))


def check_full_ring(ktap, bvm):
    """Without indirect descriptors a 128 KiB request takes 34 ring
    entries: 32 of them in flight fill the ring, which stops the hardware
    queue until a completion restarts it.  A device that fails under that
    load must fail the I/O, not hang it, and come back."""
    wait_back = ("i=0\n"
                 "while [ $i -lt 100 ]; do\n"
                 "  [ \"$(cat $RV_BUS/devices/$r/status)\" = 0x0f ] && rvb_dev data >/dev/null 2>&1 && break\n"
                 "  i=$((i + 1)); sleep 0.1\n"
                 "done\n")
    rc, out = bvm.sh("r=$(rvb_rv data) || exit 1\n"
                     "echo 0xffffffffefffffff > $RV_BUS/devices/$r/features_mask || exit 1\n"
                     + wait_back +
                     "echo indirect=$(cut -c29 $RV_BUS/devices/$r/features)\n"
                     "d=$(rvb_wait data) || exit 1\n"
                     "timeout 120 rvblk-io bench /dev/$d read 131072 32 400", timeout=200)
    ktap.ok("blkdrv: full ring: 128 KiB reads at depth 32 without indirect descriptors complete",
            rc == 0 and "indirect=0" in out and "ios 400 " in out, out)

    rc, out = bvm.sh("r=$(rvb_rv data) || exit 1\n"
                     "d=$(rvb_dev data)\n"
                     "n=$(cat $RV_BUS/devices/$r/resets)\n"
                     "timeout 150 rvblk-io bench /dev/$d read 131072 32 40000 >/tmp/b.out 2>&1 &\n"
                     "b=$!\n"
                     "sleep 1\n"
                     "echo 1 > /sys/module/revirt_blk/parameters/malformed_requests\n"
                     "wait $b; echo bench=$?; cat /tmp/b.out\n"
                     + wait_back +
                     "echo status=$(cat $RV_BUS/devices/$r/status) resets=$n/$(cat $RV_BUS/devices/$r/resets)\n"
                     "echo 0xffffffffffffffff > $RV_BUS/devices/$r/features_mask || exit 1\n"
                     + wait_back +
                     "d=$(rvb_wait data) || exit 1\n"
                     "dd if=/dev/$d of=/dev/null bs=131072 count=8 iflag=direct 2>&1 | grep -c '8+0 records in'",
                     timeout=200)
    m = re.search(r"resets=(\d+)/(\d+)", out)
    ktap.ok("blkdrv: full ring: a device failing under a full ring is reset, its requests are "
            "requeued and the I/O completes without an error",
            rc == 0 and "bench=0" in out and "ios 40000 " in out and "I/O error" not in out
            and "status=0x0f" in out and m and int(m.group(2)) > int(m.group(1))
            and out.split()[-1] == "1", out)


def run(ktap, env):
    if env.skip_unbuilt(ktap, "blkdrv: revirt_blk on modern virtio-pci disks", MODULES):
        return
    disks = [
        Disk(env.tmp, "boot", 4 * MiB, props="bootindex=1,num-queues=1",
             fill=random_bytes(4 * MiB, 1)),
        Disk(env.tmp, "data", 16 * MiB, props="num-queues=4"),
        Disk(env.tmp, "ro", 4 * MiB, props="num-queues=1", drive_props="readonly=on",
             fill=random_bytes(MiB, 2)),
        Disk(env.tmp, "disc", 8 * MiB, props="num-queues=1", drive_props="discard=unmap",
             fill=mbr()),
        Disk(env.tmp, "err", 8 * MiB, props="num-queues=1",
             blkdebug=BLKDEBUG),
    ]
    ro_sha = sha256_file(disks[2].path)
    bvm = BlkVM(env, "blkdrv-modern", disks, smp=4)
    try:
        boot_status = bvm.host_status("boot")
        probed = check_probe(ktap, env, bvm, boot_status)
        if len(probed) != 5:
            return
        check_takeover(ktap, bvm)
        check_open_across_unbind(ktap, bvm)
        check_reload(ktap, bvm, "data", "blkdrv: modern")
        check_mq(ktap, bvm)
        check_writer(ktap, bvm)
        check_ro(ktap, bvm)
        check_errors(ktap, bvm)
        check_discard(ktap, bvm)
        check_resize(ktap, bvm)
        part2 = guest_sha(bvm, "disc", part="2")
        data_sha = guest_sha(bvm, "data", blocks=512)
        check_needs_reset(ktap, bvm)
        check_full_ring(ktap, bvm)
        bad = bvm.clean_dmesg()
        ktap.ok("blkdrv: no warning or oops in dmesg", not bad, "\n".join(bad[:40]))
    finally:
        bvm.stop()
    # host side, after QEMU flushed and exited
    ktap.ok("blkdrv: host image of the read-only disk is unchanged",
            sha256_file(disks[2].path) == ro_sha, "")
    host2 = sha256_file(disks[3].path, PART2[0] * 512, PART2[1] * 512)
    ktap.ok("blkdrv: host image holds what the guest wrote to partition 2",
            host2 == part2, "guest %s host %s" % (part2, host2))
    host_data = sha256_file(disks[1].path, 0, 512 * 4096)
    ktap.ok("blkdrv: host image of the data disk matches the guest's last read",
            host_data == data_sha, "guest %s host %s" % (data_sha, host_data))
