#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""make bench: what a revirt_blk reset under I/O costs.  A benchmark, not a
test: it prints numbers and ratios.

  bench_blkreset.py --initrd FILE [--kernel FILE] [--quick]

The VM of bench_blk.py (-icount shift=0, one vCPU, two identical disks:
/dev/vda on the kernel's virtio_blk, /dev/rvda on revirt_blk).  The guest
tool rvblk-stamp (4 jobs, 4 KiB O_DIRECT|O_DSYNC writes, i.e. a write and
a flush each) runs for the same time on:

  vda            the kernel's driver, no reset (it has none while bound)
  rvda           revirt_blk, no reset
  rvda+resets    revirt_blk, a reset through the reset attribute every
                 RESET_EVERY seconds

and reports writes per second and the longest write latency (the pause an
application sees across a reset).  The reset itself is measured on the idle
revirt disk: wall time of the reset attribute write, and guest CPU time
(/proc/stat, all CPU states but idle and iowait) per reset.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True

import bench_blk  # noqa: E402
from revirt_vm import VM, default_kernel  # noqa: E402
from revirt_rig import GUEST_LIB  # noqa: E402

RESET_EVERY = 0.5
CPU = r"""
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
"""


def stamp_run(vm, disk, secs, resets):
    script = GUEST_LIB + CPU + (
        "rm -f /tmp/stop\n"
        "rvblk-stamp write /dev/%s 0 1024 4 %d /tmp/stop >/tmp/s.out 2>&1 &\n"
        "w=$!\n" % (disk, secs))
    if resets:
        script += ("r=$(basename $(readlink -f /sys/block/%s/device))\n"
                   "n=0; t0=$(now_ms)\n"
                   "while [ $(($(now_ms) - t0)) -lt %d ]; do\n"
                   "  usleep %d; echo 1 > $RV_BUS/devices/$r/reset && n=$((n + 1))\n"
                   "done\n"
                   "echo resets=$n\n" % (disk, secs * 1000 - 500, RESET_EVERY * 1e6))
    script += "wait $w; echo rc=$?; cat /tmp/s.out\n"
    out = vm.check(script, timeout=secs * 20 + 300)
    writes = sum(int(v) for v in re.findall(r" writes (\d+)", out))
    lat = max([int(v) for v in re.findall(r"maxlat_us (\d+)", out)] or [0])
    errs = sum(int(v) for v in re.findall(r" errors (\d+)", out))
    m = re.search(r"resets=(\d+)", out)
    return {"wps": writes / secs, "maxlat_ms": lat / 1000.0, "errors": errs,
            "resets": int(m.group(1)) if m else 0}


def reset_cost(vm, n):
    out = vm.check(GUEST_LIB + CPU + (
        "r=$(basename $(readlink -f /sys/block/rvda/device))\n"
        "hz=$(getconf CLK_TCK 2>/dev/null || echo 100)\n"
        "b0=$(busy); t0=$(now_ms)\n"
        "i=0; while [ $i -lt %d ]; do echo 1 > $RV_BUS/devices/$r/reset; i=$((i + 1)); done\n"
        "echo wall_ms=$(($(now_ms) - t0)) busy=$(($(busy) - b0)) hz=$hz\n" % n),
        timeout=n * 10 + 120)
    m = re.search(r"wall_ms=(\d+) busy=(\d+) hz=(\d+)", out)
    wall, busy, hz = (int(v) for v in m.groups())
    # /proc/stat counts in ticks: below one tick in all, give the bound
    cpu = ("%.2f ms" % (busy * 1000.0 / hz / n) if busy
           else "< %.2f ms" % (1000.0 / hz / n))
    return wall / n, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--kernel", default=None)
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    opts = ap.parse_args()
    secs = 5 if opts.quick else 15
    nresets = 20 if opts.quick else 100

    tmp = tempfile.mkdtemp(prefix="revirt-bench-reset.")
    args = ["-icount", "shift=0"]
    for i, (name, addr) in enumerate((("kern", 8), ("rv", 9))):
        path = os.path.join(tmp, "%s.img" % name)
        with open(path, "wb") as f:
            f.truncate(bench_blk.DISK_SIZE)
        args += ["-drive", "file=%s,if=none,format=raw,id=d%d" % (path, i),
                 "-device", "virtio-blk-pci,drive=d%d,num-queues=1,addr=0x%x" % (i, addr)]
    vm = VM(devices=args, kernel=opts.kernel or default_kernel(), initrd=opts.initrd,
            mem=1024, name="bench-blkreset")
    try:
        rc, out = vm.sh(bench_blk.SETUP, timeout=300)
        print("# setup:\n# " + out.strip().replace("\n", "\n# "), flush=True)
        if rc != 0:
            return 1
        kern = stamp_run(vm, "vda", secs, False)
        rv = stamp_run(vm, "rvda", secs, False)
        rvr = stamp_run(vm, "rvda", secs, True)
        wall, cpu = reset_cost(vm, nresets)
    finally:
        vm.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("4 KiB O_DIRECT|O_DSYNC writes, 4 jobs, %d s each (guest time, -icount):" % secs)
    print("%-26s %12s %16s %8s %8s" % ("", "writes/s", "max latency ms", "errors", "resets"))
    for name, r in (("vda (virtio_blk)", kern), ("rvda (revirt_blk)", rv),
                    ("rvda, reset every %.1f s" % RESET_EVERY, rvr)):
        print("%-26s %12.0f %16.1f %8d %8d"
              % (name, r["wps"], r["maxlat_ms"], r["errors"], r["resets"]))
    print("ratio rvda+resets / rvda: writes/s %.2f, max latency %.2f"
          % (rvr["wps"] / max(rv["wps"], 1e-9), rvr["maxlat_ms"] / max(rv["maxlat_ms"], 1e-9)))
    print("ratio rvda / vda: writes/s %.2f, max latency %.2f"
          % (rv["wps"] / max(kern["wps"], 1e-9), rv["maxlat_ms"] / max(kern["maxlat_ms"], 1e-9)))
    print()
    print("one reset of the idle revirt disk (%d resets): %.1f ms wall, %s guest CPU"
          % (nresets, wall, cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
