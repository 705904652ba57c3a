#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""make bench: what a revirt_blk reset under I/O costs.  A benchmark, not a
test: it prints costs and ratios.

  bench_blkreset.py --initrd FILE [--kernel FILE] [--quick] [--repeat N]
                    [--doc FILE --doc-command CMD]

The VM of bench_blk.py (-icount shift=0, one vCPU, two identical disks:
/dev/vda on the kernel's virtio_blk, /dev/rvda on revirt_blk).  The guest
tool rvblk-stamp (4 jobs, 4 KiB O_DIRECT|O_DSYNC writes, i.e. a write and
a flush each) runs for the same time on:

  vda            the kernel's driver, no reset (it has none while bound)
  rvda           revirt_blk, no reset
  rvda+resets    revirt_blk, a reset through the reset attribute every
                 RESET_EVERY seconds

--repeat times, the three alternating, and reports costs, each as median
(min-max) of the runs: guest time per write (all jobs together: 1 /
writes per second) and the longest write latency (the pause an
application sees across a reset).  Ratios follow the one convention of
revirt's benchmarks, reference cost / revirt's cost, above 1 meaning
revirt (or revirt with resets) is cheaper: vda / rvda, and rvda /
rvda+resets for what the resets cost.  The reset itself is measured on
the idle revirt disk, in batches: guest time of the reset attribute write,
and guest CPU time (/proc/stat, all CPU states but idle and iowait) per
reset.  With --doc, the tables also replace the ".. begin: make bench
(bench_blkreset.py)" block of that reST file.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time

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
    return {"us_write": secs * 1e6 / max(writes, 1), "maxlat_ms": lat / 1000.0,
            "errors": errs, "resets": int(m.group(1)) if m else 0}


def reset_cost(vm, n, batches):
    """Per batch of n resets of the idle disk: guest ms per reset; busy ticks."""
    walls, busy_all = [], 0
    for _ in range(batches):
        out = vm.check(GUEST_LIB + CPU + (
            "r=$(basename $(readlink -f /sys/block/rvda/device))\n"
            "hz=$(getconf CLK_TCK 2>/dev/null || echo 100)\n"
            "b0=$(busy); t0=$(now_ms)\n"
            "i=0; while [ $i -lt %d ]; do echo 1 > $RV_BUS/devices/$r/reset; i=$((i + 1)); done\n"
            "echo wall_ms=$(($(now_ms) - t0)) busy=$(($(busy) - b0)) hz=$hz\n" % n),
            timeout=n * 10 + 120)
        m = re.search(r"wall_ms=(\d+) busy=(\d+) hz=(\d+)", out)
        wall, busy, hz = (int(v) for v in m.groups())
        walls.append(wall / n)
        busy_all += busy
    total = n * batches
    # /proc/stat counts in ticks of 1/hz s, too coarse for one reset: give
    # the ticks too, and below one tick in all only the bound.
    tick = 1000.0 / hz
    cpu = ("%.2f ms (%d tick%s of %.0f ms over %d resets)"
           % (busy_all * tick / total, busy_all, "s" if busy_all > 1 else "", tick, total)
           if busy_all else
           "< %.2f ms (no tick of %.0f ms over %d resets)" % (tick / total, tick, total))
    return walls, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--kernel", default=None)
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each case, alternating; medians and ranges are shown")
    ap.add_argument("--doc", metavar="FILE",
                    help="write the tables into this reST file's block")
    ap.add_argument("--doc-command", metavar="CMD", default=None,
                    help="the command line to stamp in --doc (default: this one)")
    opts = ap.parse_args()
    secs = 5 if opts.quick else 10
    repeat = max(opts.repeat, 1)
    batch, nbatches = (5, 4) if opts.quick else (20, 5)
    start, load0 = time.monotonic(), os.getloadavg()[0]

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
    cases = ("vda", "rvda", "rvda+resets")
    runs = {c: [] for c in cases}
    try:
        rc, setup = vm.sh(bench_blk.SETUP, timeout=300)
        print("# setup:\n# " + setup.strip().replace("\n", "\n# "), flush=True)
        if rc != 0:
            return 1
        for k in range(repeat):
            for c in cases:
                r = stamp_run(vm, c.split("+")[0], secs, c.endswith("resets"))
                runs[c].append(r)
                print("# run %d %s: %.0f us/write, max %.1f ms, %d errors, %d resets"
                      % (k + 1, c, r["us_write"], r["maxlat_ms"], r["errors"], r["resets"]),
                      flush=True)
        walls, cpu = reset_cost(vm, batch, nbatches)
    finally:
        vm.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    sp = bench_blk.spread
    fmt = "%-26s %21s %21s %7s %15s"
    head = fmt % ("", "us/write (elapsed)", "max latency ms", "errors", "resets per run")
    lines = [
        "4 KiB O_DIRECT|O_DSYNC writes (a write and a flush each), 4 jobs, %d s of" % secs,
        "guest time per run, %d runs of each case, the cases alternating:" % repeat,
        "median (min-max).  us/write: guest time per write of all jobs together",
        "(1 / writes per second); virtual time follows the host clock while the",
        "guest waits, so both columns follow the host's load and flush latency.",
        "Ratios: reference cost / revirt's cost, above 1: revirt (with resets)",
        "is cheaper; median (min-max) of the ratios of runs taken together.",
        "",
        head, "-" * len(head)]
    labels = {"vda": "vda (virtio_blk)", "rvda": "rvda (revirt_blk)",
              "rvda+resets": "rvda, reset every %.1f s" % RESET_EVERY}
    for c in cases:
        rs = runs[c]
        lines.append(fmt % (labels[c], sp([r["us_write"] for r in rs]),
                            sp([r["maxlat_ms"] for r in rs]),
                            sum(r["errors"] for r in rs),
                            sp([r["resets"] for r in rs], lambda v: "%.0f" % v)))
    for name, ref, sub in (("vda / rvda (kernel/revirt)", "vda", "rvda"),
                           ("rvda / rvda+resets", "rvda", "rvda+resets")):
        lines.append(fmt % ((name,) + tuple(
            sp(bench_blk.paired([r[key] for r in runs[ref]], [r[key] for r in runs[sub]]),
               bench_blk.rfmt)
            for key in ("us_write", "maxlat_ms")) + ("", "")))
    lines += ["",
              "One reset of the idle revirt disk, %d batches of %d resets:" % (nbatches, batch),
              "elapsed ms per reset %s (median (min-max) of the batches;" % sp(walls),
              "    /proc/uptime resolves 10 ms per batch, %.1f ms per reset)" % (10.0 / batch),
              "guest CPU per reset %s" % cpu]
    tables = "\n".join(line.rstrip() for line in lines)
    print()
    print(tables, flush=True)
    if opts.doc:
        elapsed = time.monotonic() - start
        return bench_blk.write_doc(opts.doc, "make bench (bench_blkreset.py)",
                                   opts.doc_command or " ".join(sys.argv), tables, load0,
                                   bench_blk.vm_stamps(setup, ["duration: %.1f min"
                                                               % (elapsed / 60)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
