#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Run the revirt VM selftests and print KTAP result lines (unnumbered;
pipe through scripts/ktap-sum for numbers, the plan and the summary).

  run.py [-k PATTERN]... [--shard I/N] [--kver KVER] [--kernel FILE]
         [--initrd FILE | --moddir DIR...]

Every tools/testing/selftests/revirt/test_*.py defines run(ktap, env); they
run in name order and share one VM (env.rig()).  Without --initrd the
initramfs is built with scripts/mkinitramfs from the *.ko files in the
--moddir directories (default drivers/revirt).
"""

import argparse
import fnmatch
import glob
import gzip
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
sys.path.insert(0, HERE)

from revirt_vm import STOPPED_REPORTS, Ktap, default_kernel  # noqa: E402
from revirt_rig import Env  # noqa: E402


def initrd_kos(path):
    """Module names (without .ko) under lib/modules/revirt/ in a gzip'd
    newc cpio."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    names = []
    pos = 0
    while pos + 110 <= len(data):
        hdr = data[pos:pos + 110]
        if hdr[:6] not in (b"070701", b"070702"):
            break
        namesize = int(hdr[94:102], 16)
        filesize = int(hdr[54:62], 16)
        name = data[pos + 110:pos + 110 + namesize - 1].decode("utf-8", "replace")
        pos = (pos + 110 + namesize + 3) & ~3
        pos = (pos + filesize + 3) & ~3
        if name == "TRAILER!!!":
            break
        if name.startswith("lib/modules/revirt/") and name.endswith(".ko"):
            names.append(os.path.basename(name)[:-3])
    return names


def selected(name, patterns):
    if not patterns:
        return True
    for p in patterns:
        if any(c in p for c in "*?[") and fnmatch.fnmatch(name, p):
            return True
        if p in name:
            return True
    return False


# Seconds of wall time each module took in "make check" on Debian 6.12
# (2 cores, both kernels side by side): what --shard balances.  A module
# missing here counts as SHARD_DEFAULT_COST, and runs in some shard all
# the same.
SHARD_COST = {
    "test_00_harness": 10, "test_10_probe": 18, "test_20_blk": 4,
    "test_30_blkdrv": 44, "test_30_blkdrv_transports": 60,
    "test_35_blkreset": 75, "test_36_queue_reset": 80,
    "test_37_console": 130, "test_38_dead": 45, "test_39_pm": 90,
    "test_40_renegotiate": 16, "test_41_hotplug": 113, "test_42_aer": 90,
    "test_45_balloon": 88,
    "test_50_badinput": 20, "test_60_stress": 57, "test_70_mmio": 110,
    "test_80_needs_reset": 6, "test_85_sim": 73, "test_90_takeover": 34,
}
SHARD_DEFAULT_COST = 60


def shard_of(names, index, count):
    """The modules of shard `index` (1-based) of `count`: longest first,
    each to the shard with the least work so far, so that the shards of
    one run, side by side, end at about the same time.  Every module is in
    exactly one shard."""
    load = [0] * count
    mine = set()
    order = sorted(names, key=lambda n: (-SHARD_COST.get(n, SHARD_DEFAULT_COST), n))
    for n in order:
        i = load.index(min(load))
        load[i] += SHARD_COST.get(n, SHARD_DEFAULT_COST)
        if i == index - 1:
            mine.add(n)
    return mine


def check_kernel_reports(ktap, env, name):
    """One line per test module on a debug kernel: nothing from KASAN,
    lockdep, UBSAN, DMA-API debug or kmemleak, no WARNING or BUG, in the
    guests the module stopped and in the shared VM."""
    reports = list(STOPPED_REPORTS)
    del STOPPED_REPORTS[:]
    rig = env._rig
    if rig is not None and rig.alive():
        try:
            reports += ["revirt-vm: " + r for r in rig.vm.kernel_reports()]
        except Exception as e:
            reports.append("revirt-vm: reports unavailable: %s" % str(e).splitlines()[0])
    ktap.ok("%s: no report from KASAN, lockdep, UBSAN, DMA-API debug, kmemleak; "
            "no WARNING or BUG" % name, not reports, "\n".join(reports[:80]))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", dest="patterns", action="append", default=[],
                    help="run only tests whose module name contains/matches this")
    ap.add_argument("--kver", default=os.environ.get("KVER"))
    ap.add_argument("--kernel")
    ap.add_argument("--initrd")
    ap.add_argument("--moddir", action="append", default=[])
    ap.add_argument("--list", action="store_true", help="list test modules")
    ap.add_argument("--shard", metavar="I/N",
                    help="run only the I-th of N balanced parts of the selected modules")
    opts = ap.parse_args()

    tests = sorted(glob.glob(os.path.join(HERE, "test_*.py")))
    tests = [t for t in tests
             if selected(os.path.basename(t)[:-3], opts.patterns)]
    if opts.shard:
        index, count = (int(x) for x in opts.shard.split("/"))
        if not 1 <= index <= count:
            ap.error("--shard %s: want I/N with 1 <= I <= N" % opts.shard)
        mine = shard_of([os.path.basename(t)[:-3] for t in tests], index, count)
        tests = [t for t in tests if os.path.basename(t)[:-3] in mine]
    if opts.list:
        for t in tests:
            print(os.path.basename(t)[:-3])
        return 0

    kernel = opts.kernel
    if kernel is None:
        kernel = ("/boot/vmlinuz-" + opts.kver) if opts.kver else default_kernel()
    kver = opts.kver or os.path.basename(kernel).replace("vmlinuz-", "", 1)
    if opts.kver:
        os.environ["KVER"] = opts.kver

    # make SIGTERM (e.g. a timeout around "make check") unwind through the
    # finally below, so that the VM is killed and the temp dir removed
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="revirt-selftest.")
    print("KTAP version 1", flush=True)
    ktap = Ktap()
    env = None
    t0 = time.monotonic()
    try:
        initrd = opts.initrd
        if initrd is None:
            moddirs = opts.moddir or [os.path.join(SRCDIR, "drivers", "revirt")]
            initrd = os.path.join(tmp, "initrd.cpio.gz")
            subprocess.run([os.path.join(SRCDIR, "scripts", "mkinitramfs"),
                            initrd, kver] + moddirs, check=True)
        kos = initrd_kos(initrd)
        print("# kernel %s, initramfs %s, revirt modules: %s"
              % (kernel, initrd, " ".join(sorted(kos)) or "none"), flush=True)
        env = Env(kernel=kernel, initrd=initrd, kver=kver, tmp=tmp,
                  srcdir=SRCDIR, initrd_modules=kos)
        if not tests:
            print("# no test matches %s" % opts.patterns, flush=True)
        for path in tests:
            name = os.path.basename(path)[:-3]
            t1 = time.monotonic()
            print("# ---- %s" % name, flush=True)
            try:
                spec = importlib.util.spec_from_file_location(name, path)
                mod = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(mod)
                mod.run(ktap, env)
            except Exception:
                diag = traceback.format_exc()
                rig = env._rig
                if rig is not None and "console tail:" not in diag:
                    diag += "\n" + rig.vm.diag_tail()
                ktap.ok("%s: completes without an exception" % name, False, diag)
            if os.environ.get("REVIRT_KERNEL_REPORTS"):
                check_kernel_reports(ktap, env, name)
            print("# %s took %.1fs" % (name, time.monotonic() - t1), flush=True)
    except Exception:
        ktap.ok("selftest setup", False, traceback.format_exc())
    finally:
        if env is not None:
            env.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("# total %.1fs" % (time.monotonic() - t0), flush=True)
    # The plan comes last: only a run that got here vouches for its count.
    print("1..%d" % (ktap.passed + ktap.failed + ktap.skipped), flush=True)
    return 1 if ktap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
