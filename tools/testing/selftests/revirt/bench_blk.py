#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""make bench: revirt_blk against the kernel's own virtio_blk, side by
side in one VM.  A benchmark, not a test: it prints costs and ratios.

  bench_blk.py --initrd FILE [--kernel FILE] [--quick] [--repeat N]
               [--doc FILE --doc-command CMD]

The initramfs must carry revirt's modules and, in /lib/modules/kernel,
Debian's virtio_pci and virtio_blk (scripts/revirt-bench builds it with
KMODS).  One VM under -icount shift=0 (guest time counts instructions, so
CPU numbers repeat on a loaded host) with one vCPU and two identical raw
disks: 00:08.0 goes to the kernel's virtio-pci (driver_override), 00:09.0
to revirt-pci.  Each workload runs on /dev/vda and then on /dev/rvda,
--repeat times, alternating, with guest/rvblk-io (O_DIRECT, Linux AIO).
Every figure is a cost per I/O or per request, given as median (min-max)
of the runs:

  CPU us/IO          guest CPU per I/O: busy / ios, busy = elapsed -
                     delta(idle + iowait sleep time) summed over
                     /proc/timer_list; load-independent under -icount
  wall us/IO         elapsed guest time per I/O (1 / IOPS); while the
                     guest waits, virtual time follows the host's clock,
                     so this moves with the host's load and I/O latency
  kicks, irqs/req    QEMU trace virtio_queue_notify and virtio_notify(_irqfd)
                     of that disk's device, per request (virtio_blk_handle_*)

and the ratio kernel/revirt of each (above 1: revirt_blk is cheaper), the
one convention of revirt's benchmarks: the median (min-max) of the ratios
of the runs taken in pairs (run i of vda against run i of rvda).

Both disks run with the same I/O scheduler ("none"; revirt_blk's default,
virtio_blk's for more than one queue), then each with its driver's default.
With --doc, the tables also replace the ".. begin: make bench
(bench_blk.py)" block of that reST file (scripts/revirt-bench-doc).
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from revirt_vm import QEMU, VM, default_kernel  # noqa: E402
from revirt_rig import GUEST_LIB  # noqa: E402

TOP = os.path.normpath(os.path.join(HERE, "..", "..", "..", ".."))
DISK_SIZE = 256 << 20
KERNEL_PCI = "0000:00:08.0"
REVIRT_PCI = "0000:00:09.0"
TRACE = ["virtio_queue_notify", "virtio_notify", "virtio_notify_irqfd",
         "virtio_blk_handle_read", "virtio_blk_handle_write"]

# name, mode, block size, queue depth, I/Os (full run)
WORKLOADS = [
    ("4k randread qd1", "randread", 4096, 1, 4000),
    ("4k randread qd32", "randread", 4096, 32, 16000),
    ("128k read qd4", "read", 131072, 4, 1500),
    ("128k write qd4", "write", 131072, 4, 1500),
]

SETUP = GUEST_LIB + """
echo virtio-pci > /sys/bus/pci/devices/%s/driver_override
echo revirt-pci > /sys/bus/pci/devices/%s/driver_override
for m in $(cat /lib/modules/kernel/order); do
	insmod /lib/modules/kernel/$m || exit 1
done
rv_insmod revirt && rv_insmod revirt_pci && rv_insmod revirt_blk || exit 1
i=0
while [ ! -b /dev/vda ] || [ ! -b /dev/rvda ]; do
	i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.1
done
for d in vda rvda; do
	echo "$d $(cat /sys/block/$d/size) $(cat /sys/block/$d/queue/scheduler)" \
		"$(readlink -f /sys/block/$d/device/driver)"
done
echo "guest kernel $(uname -r) $(uname -v)"
""" % (KERNEL_PCI, REVIRT_PCI)


def per_device(vm, since, until):
    """{vdev: {"req": n, "kick": n, "irq": n}} from the trace window."""
    out = {}
    for ev, args in vm.trace_events(since, until):
        m = re.match(r"vdev (\S+)", args)
        if not m:
            continue
        d = out.setdefault(m.group(1), {"req": 0, "kick": 0, "irq": 0})
        if ev.startswith("virtio_blk_handle_"):
            d["req"] += 1
        elif ev == "virtio_queue_notify":
            d["kick"] += 1
        elif ev.startswith("virtio_notify"):
            d["irq"] += 1
    return out


def run_one(vm, disk, mode, bs, qd, ios):
    m0 = vm.trace_mark()
    rc, out = vm.sh("rvblk-io bench /dev/%s %s %d %d %d" % (disk, mode, bs, qd, ios),
                    timeout=1200)
    m1 = vm.trace_mark()
    m = re.search(r"ios (\d+) elapsed_ns (\d+) busy_ns (\d+)", out)
    if rc != 0 or not m:
        raise RuntimeError("bench on %s failed (rc=%d): %s" % (disk, rc, out))
    n, elapsed, busy = (int(x) for x in m.groups())
    counts = per_device(vm, m0, m1)
    dev = max(counts.values(), key=lambda d: d["req"]) if counts else \
        {"req": 0, "kick": 0, "irq": 0}
    req = max(dev["req"], 1)
    # Every figure a cost, so that one ratio convention (kernel/revirt,
    # above 1: revirt cheaper) holds for all of them.
    return {
        "cpu_us": busy / n / 1e3,
        "wall_us": elapsed / n / 1e3,
        "kick": dev["kick"] / req,
        "irq": dev["irq"] / req,
    }


COLS = (("cpu_us", "CPU us/IO"), ("wall_us", "wall us/IO"),
        ("kick", "kicks/req"), ("irq", "irqs/req"))


def num(v):
    # Three or four significant digits; the spread is given beside it.
    return "%.0f" % v if v >= 1000 else "%.1f" % v if v >= 100 else \
        "%.2f" % v if v >= 10 else "%.3f" % v


def spread(vals, fmt=num):
    """median (min-max) of a list of numbers"""
    if not vals:
        return "-"
    return "%s (%s-%s)" % (fmt(statistics.median(vals)), fmt(min(vals)), fmt(max(vals)))


def rfmt(v):
    return "%.3f" % v


def paired(kern, rv):
    """kernel/revirt of each pair of runs; none where a cost is 0"""
    return [k / r for k, r in zip(kern, rv) if k and r]


def table(title, rows):
    """rows: (name, [vda runs], [rvda runs])"""
    fmt = "%-17s %-13s" + " %21s" * len(COLS)
    head = fmt % (("workload", "driver") + tuple(c[1] for c in COLS))
    lines = [title, head, "-" * len(head)]
    for name, kern, rv in rows:
        for drv, runs in (("virtio_blk", kern), ("revirt_blk", rv)):
            lines.append(fmt % ((name, drv) +
                                tuple(spread([r[c] for r in runs]) for c, _ in COLS)))
            name = ""
        lines.append(fmt % (("", "kernel/revirt") +
                            tuple(spread(paired([r[c] for r in kern], [r[c] for r in rv]), rfmt)
                                  for c, _ in COLS)))
    return "\n".join(lines)


def legend(repeat):
    return "\n".join([
        "%d runs per disk and workload, the disks alternating: median (min-max)." % repeat,
        "CPU us/IO: guest CPU per I/O, busy = elapsed - delta(idle + iowait sleep",
        "    time of /proc/timer_list).  -icount shift=0 makes it count guest",
        "    instructions: load-independent (the idle loop moves it a few percent",
        "    at depth 1).",
        "wall us/IO: elapsed guest time per I/O (1 / IOPS).  Virtual time follows",
        "    the host clock while the guest waits: follows the host's load.",
        "kicks/req, irqs/req: QEMU trace virtio_queue_notify, virtio_notify(_irqfd)",
        "    per virtio_blk_handle_read/_write of the disk's device.",
        "kernel/revirt: the cost's ratio, above 1: revirt_blk is cheaper; median",
        "    (min-max) of the %d ratios of runs taken in pairs." % repeat,
    ])


def qemu_version():
    try:
        r = subprocess.run([QEMU, "--version"], capture_output=True, text=True)
        return r.stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "unknown"


def guest_kernel(setup_out):
    m = re.search(r"^guest kernel (.*)$", setup_out, re.M)
    return m.group(1).strip() if m else "unknown"


SOURCES = ["drivers/revirt", "include", "tools/testing/selftests/revirt/guest"]


def write_doc(doc, block, command, tables, load0, stamps):
    """Replace BLOCK of DOC with TABLES (scripts/revirt-bench-doc)."""
    cmd = [os.path.join(TOP, "scripts", "revirt-bench-doc"), doc, block,
           "--command", command, "--load-start", "%.2f" % load0, "--sources"] + SOURCES
    for s in stamps:
        cmd += ["--stamp", s]
    return subprocess.run(cmd, input=tables + "\n", text=True).returncode


def vm_stamps(setup_out, extra):
    return ["guest: %s; one vCPU, -icount shift=0" % guest_kernel(setup_out),
            "QEMU: %s, TCG" % qemu_version()] + extra


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--kernel", default=None)
    ap.add_argument("--quick", action="store_true", help="a tenth of the I/Os")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per disk and workload, alternating; medians and ranges are shown")
    ap.add_argument("--revirt-features-mask", metavar="HEX",
                    help="write this to the revirt disk's features_mask first "
                    "(e.g. 0xffffffffefffffff: no indirect descriptors)")
    ap.add_argument("--same-only", action="store_true",
                    help="only the run with the same scheduler on both disks")
    ap.add_argument("--doc", metavar="FILE",
                    help="write the tables into this reST file's block")
    ap.add_argument("--doc-command", metavar="CMD", default=None,
                    help="the command line to stamp in --doc (default: this one)")
    opts = ap.parse_args()

    repeat = max(opts.repeat, 1)
    start, load0 = time.monotonic(), os.getloadavg()[0]
    tmp = tempfile.mkdtemp(prefix="revirt-bench.")
    args = ["-icount", "shift=0"]
    for i, (name, addr) in enumerate((("kern", 8), ("rv", 9))):
        path = os.path.join(tmp, "%s.img" % name)
        with open(path, "wb") as f:
            f.truncate(DISK_SIZE)
        args += ["-drive", "file=%s,if=none,format=raw,id=d%d" % (path, i),
                 "-device", "virtio-blk-pci,drive=d%d,num-queues=1,addr=0x%x" % (i, addr)]
    vm = VM(devices=args, kernel=opts.kernel or default_kernel(), initrd=opts.initrd,
            trace_events=TRACE, mem=1024, name="bench-blk")
    try:
        rc, setup = vm.sh(SETUP, timeout=300)
        print("# setup:\n# " + setup.strip().replace("\n", "\n# "), flush=True)
        if rc != 0:
            return 1
        if opts.revirt_features_mask:
            out = vm.check(GUEST_LIB + "r=$(rv_name %s) || exit 1\n"
                           "echo %s > $RV_BUS/devices/$r/features_mask || exit 1\n"
                           "i=0; while [ ! -b /dev/rvda ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done\n"
                           "echo features $(cat $RV_BUS/devices/$r/features)"
                           % (REVIRT_PCI, opts.revirt_features_mask))
            print("# revirt disk: " + out.strip(), flush=True)
        results = {}
        for sched in ("none",) if opts.same_only else ("none", "default"):
            if sched == "none":
                vm.check("echo none > /sys/block/vda/queue/scheduler; "
                         "echo none > /sys/block/rvda/queue/scheduler")
            else:
                vm.check("echo mq-deadline > /sys/block/vda/queue/scheduler; "
                         "echo none > /sys/block/rvda/queue/scheduler")
            rows = []
            for name, mode, bs, qd, ios in WORKLOADS:
                n = max(ios // 10, 100) if opts.quick else ios
                runs = {"vda": [], "rvda": []}
                for _ in range(repeat):
                    for disk in ("vda", "rvda"):
                        runs[disk].append(run_one(vm, disk, mode, bs, qd, n))
                rows.append((name, runs["vda"], runs["rvda"]))
                print("# %s %s (%d I/Os): CPU us/IO kernel %s, revirt %s"
                      % (sched, name, n, spread([r["cpu_us"] for r in runs["vda"]]),
                         spread([r["cpu_us"] for r in runs["rvda"]])), flush=True)
            results[sched] = rows
    finally:
        vm.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    ios = ", ".join("%s %d" % (w[0], max(w[4] // 10, 100) if opts.quick else w[4])
                    for w in WORKLOADS)
    parts = [legend(repeat), "I/Os per run: " + ios + ".", "",
             table("Same scheduler (none) on both disks:", results["none"])]
    if not opts.same_only:
        parts += ["", table("Each driver's default scheduler (virtio_blk: mq-deadline, "
                            "revirt_blk: none):", results["default"])]
    if opts.revirt_features_mask:
        parts += ["", "revirt disk's features_mask: " + opts.revirt_features_mask]
    tables = "\n".join(parts)
    print()
    print(tables, flush=True)
    if opts.doc:
        elapsed = time.monotonic() - start
        return write_doc(opts.doc, "make bench (bench_blk.py)",
                         opts.doc_command or " ".join(sys.argv), tables, load0,
                         vm_stamps(setup, ["duration: %.1f min" % (elapsed / 60)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
