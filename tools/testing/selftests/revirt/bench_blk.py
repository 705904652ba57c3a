#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""make bench-blk: revirt_blk against the kernel's own virtio_blk, side by
side in one VM.  A benchmark, not a test: it prints numbers and ratios.

  bench_blk.py --initrd FILE [--kernel FILE] [--quick]

The initramfs must carry revirt's modules and, in /lib/modules/kernel,
Debian's virtio_pci and virtio_blk (scripts/revirt-bench builds it with
KMODS).  One VM under -icount shift=0 (guest time counts instructions, so
CPU numbers repeat on a loaded host) with one vCPU and two identical raw
disks: 00:08.0 goes to the kernel's virtio-pci (driver_override), 00:09.0
to revirt-pci.  Each workload runs on /dev/vda and then on /dev/rvda,
--repeat times (medians shown), with guest/rvblk-io (O_DIRECT, Linux AIO):

  guest CPU per I/O  busy / ios, busy = elapsed - delta(idle + iowait
                     sleep time) summed over /proc/timer_list
  IOPS, MB/s         ios and bytes over elapsed guest time; while the
                     guest waits, virtual time follows the host's clock,
                     so these move with the host's load and I/O latency
  kicks, interrupts  QEMU trace virtio_queue_notify and virtio_notify(_irqfd)
                     of that disk's device, per request (virtio_blk_handle_*)

Both disks run with the same I/O scheduler ("none"; revirt_blk's default,
virtio_blk's for more than one queue), then each with its driver's default.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from revirt_vm import VM, default_kernel  # noqa: E402
from revirt_rig import GUEST_LIB  # noqa: E402

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
    return {
        "iops": n / (elapsed / 1e9),
        "mbs": n * bs / (elapsed / 1e9) / 1e6,
        "cpu_us": busy / n / 1e3,
        "kick": dev["kick"] / req,
        "irq": dev["irq"] / req,
        "req_per_io": dev["req"] / n,
    }


def median(runs):
    """Per-key median of a list of run_one() results."""
    out = {}
    for k in runs[0]:
        vals = sorted(r[k] for r in runs)
        out[k] = vals[len(vals) // 2]
    return out


def ratio(a, b):
    return a / b if b else float("nan")


def table(title, rows):
    head = ("workload", "driver", "IOPS", "MB/s", "CPU us/IO", "kicks/req", "irqs/req")
    lines = [title, "", "  ".join(head)]
    for name, kern, rv in rows:
        for drv, r in (("virtio_blk", kern), ("revirt_blk", rv)):
            lines.append("%-17s %-10s %8.0f %8.1f %9.2f %9.3f %9.3f"
                         % (name, drv, r["iops"], r["mbs"], r["cpu_us"], r["kick"], r["irq"]))
        lines.append("%-17s %-10s %8.3f %8.3f %9.3f %9.3f %9.3f"
                     % (name, "ratio r/k", ratio(rv["iops"], kern["iops"]),
                        ratio(rv["mbs"], kern["mbs"]), ratio(rv["cpu_us"], kern["cpu_us"]),
                        ratio(rv["kick"], kern["kick"]), ratio(rv["irq"], kern["irq"])))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--kernel", default=None)
    ap.add_argument("--quick", action="store_true", help="a tenth of the I/Os")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per disk and workload, alternating; medians are shown")
    ap.add_argument("--revirt-features-mask", metavar="HEX",
                    help="write this to the revirt disk's features_mask first "
                    "(e.g. 0xffffffffefffffff: no indirect descriptors)")
    ap.add_argument("--same-only", action="store_true",
                    help="only the run with the same scheduler on both disks")
    opts = ap.parse_args()

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
        rc, out = vm.sh(SETUP, timeout=300)
        print("# setup:\n# " + out.strip().replace("\n", "\n# "), flush=True)
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
                for _ in range(max(opts.repeat, 1)):
                    for disk in ("vda", "rvda"):
                        runs[disk].append(run_one(vm, disk, mode, bs, qd, n))
                kern, rv = median(runs["vda"]), median(runs["rvda"])
                rows.append((name, kern, rv))
                print("# %s %s: kernel %.2f us/IO, revirt %.2f us/IO"
                      % (sched, name, kern["cpu_us"], rv["cpu_us"]), flush=True)
            results[sched] = rows
        print()
        print(table("Same scheduler (none) on both disks:", results["none"]))
        if opts.same_only:
            return 0
        print()
        print(table("Each driver's default scheduler (virtio_blk: mq-deadline, "
                    "revirt_blk: none):", results["default"]))
    finally:
        vm.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
