# SPDX-License-Identifier: GPL-2.0-only
"""Issue 5: revirt_balloon follows the host's target, reports statistics,
deflates on OOM, and hands every page back before the device is reset.

One VM of its own (512 MiB, 768 on the debug kernel; one virtio-balloon-pci with deflate-on-oom and
free-page-reporting), one microvm with virtio-balloon-device (MMIO
version 2) and one VM with a legacy-only virtio-balloon-pci.

Host side: QMP balloon / query-balloon (actual in bytes of guest memory),
qom-get guest-stats, and the trace: virtio_balloon_set_config (the
guest's writes of actual, in 4 KiB pages held) and virtio_set_status.  For
unbind, rmmod and the reset attribute the last actual the host saw before
the status write 0 must be 0 (the balloon is empty).

Guest side: MemTotal and MemAvailable of /proc/meminfo, the driver binding,
a program that needs the ballooned memory, rv_live_objects and dmesg.  The
PCI VM boots with slub_debug=U,kmalloc-* (and init mounts debugfs) so that
rv_live_objects counts; a count that is unavailable, for whatever reason,
is a not ok that says why (revirt_rig.live_check), never a pass.
"""

import os
import re
import time

from revirt_vm import VM, VMError, backend_path, guest_feature_names
from revirt_rig import GUEST_LIB, kernel_bad_lines, live_check, live_objects

MODULES = ["revirt", "revirt_pci", "revirt_mmio", "revirt_balloon"]
MIB = 1 << 20
# The debug kernel (make check-debug, which sets REVIRT_KERNEL_REPORTS)
# keeps about 190 MiB of a 512 MiB guest for KASAN's shadow and the
# checkers' records: its guests get DEBUG_EXTRA MiB more, so that the same
# 256 MiB still fit in the balloon, and its waits are DEBUG_SLOW times
# longer (inflating runs at about 450 pages/s there under TCG).
DEBUG = bool(os.environ.get("REVIRT_KERNEL_REPORTS"))
DEBUG_EXTRA = 256 if DEBUG else 0
DEBUG_SLOW = 3 if DEBUG else 1
MEM = 512 + DEBUG_EXTRA       # guest RAM, MiB
TARGET = 256 + DEBUG_EXTRA    # first target: 256 MiB ballooned
HIGHER = 384 + DEBUG_EXTRA    # a higher target deflates
TRACE = ["virtio_set_status", "virtio_balloon_set_config", "virtio_queue_notify"]
SLACK_KB = 2048               # MemTotal may move by a page table or two

_SET_CONFIG_RE = re.compile(r"virtio_balloon_set_config actual: (\d+) oldactual: (-?\d+)")
_STATUS_RE = re.compile(r"virtio_set_status vdev (\S+) val (\d+)")


def guest(vm, script, timeout=120):
    return vm.sh(GUEST_LIB + script, timeout=timeout)


def gcheck(vm, script, timeout=120):
    return vm.check(GUEST_LIB + script, timeout=timeout)


def meminfo(vm):
    out = gcheck(vm, "cat /proc/meminfo")
    res = {}
    for line in out.splitlines():
        m = re.match(r"(\w+):\s+(\d+)", line)
        if m:
            res[m.group(1)] = int(m.group(2))
    return res


def actual_mib(vm):
    return vm.qmp("query-balloon")["actual"] / MIB


def wait_actual(vm, mib, timeout=150):
    """Poll query-balloon until actual is mib; (ok, seconds, last)."""
    timeout *= DEBUG_SLOW
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        last = actual_mib(vm)
        if last == mib:
            return True, time.monotonic() - t0, last
        time.sleep(0.5)
    return False, time.monotonic() - t0, last


def order_events(vm, since, until=None):
    """[("actual", pages) | ("status", val)] in trace order."""
    out = []
    for line in vm.trace_lines(since, until):
        m = _SET_CONFIG_RE.search(line)
        if m:
            out.append(("actual", int(m.group(1))))
            continue
        m = _STATUS_RE.search(line)
        if m:
            out.append(("status", int(m.group(2))))
    return out


def empty_before_reset(events):
    """(ok, diag): a status 0 was written, and the last actual the host saw
    before the first one was 0 after having been non-zero."""
    seen = []
    for kind, val in events:
        if kind == "status" and val == 0:
            ok = bool(seen) and seen[-1] == 0 and max(seen) > 0
            return ok, "actual writes before status 0: %d, first %s, last %s" % (
                len(seen), seen[:1], seen[-3:])
        if kind == "actual":
            seen.append(val)
    return False, "no status 0 in %d events (last %s)" % (len(events), events[-5:])


def boot_pci(env):
    dev = "virtio-balloon-pci,id=balloon0,addr=0x4,deflate-on-oom=on,free-page-reporting=on"
    return VM(devices=["-device", dev], kernel=env.kernel, initrd=env.initrd,
              mem=MEM, trace_events=TRACE, name="balloon-pci",
              extra_append="slub_debug=U,kmalloc-*")


def boot_legacy(env):
    dev = "virtio-balloon-pci,id=balloon0,addr=0x4,disable-modern=on,deflate-on-oom=on"
    return VM(devices=["-device", dev], kernel=env.kernel, initrd=env.initrd,
              mem=MEM, trace_events=TRACE, name="balloon-legacy")


def boot_mmio(env):
    devices = ["-global", "virtio-mmio.force-legacy=false",
               "-device", "virtio-balloon-device,id=balloon0,deflate-on-oom=on"]
    return VM(devices=devices, machine="microvm,acpi=on", kernel=env.kernel,
              initrd=env.initrd, mem=MEM, trace_events=TRACE, name="balloon-mmio",
              extra_append="tsc_early_khz=2000000")


def inflate(ktap, vm, tag, mib, mem0):
    """Set target mib; actual reaches it; MemTotal drops by the balloon."""
    vm.qmp("balloon", value=mib * MIB)
    good, secs, last = wait_actual(vm, mib)
    ktap.ok("%s: target %d MiB: query-balloon actual reaches it (%.1fs)" % (tag, mib, secs),
            good, "actual %s MiB after %.1fs\n%s" % (last, secs,
                                                      gcheck(vm, "dmesg | tail -n 5")))
    mi = meminfo(vm)
    want = mem0["MemTotal"] - (MEM - mib) * 1024
    ktap.ok("%s: guest MemTotal %d kB is %d MiB below the start" % (tag, mi["MemTotal"], MEM - mib),
            abs(mi["MemTotal"] - want) <= SLACK_KB,
            "MemTotal %d kB, want %d kB (start %d)" % (mi["MemTotal"], want, mem0["MemTotal"]))
    return mi


def check_returns(ktap, vm, tag, what, script, mem0, back):
    """Run script (unbind, rmmod, reset) with the balloon inflated; the
    host must see actual 0 before status 0; MemTotal is whole afterwards
    (or, when the driver is back, the balloon comes back to the target)."""
    m0 = vm.trace_mark()
    rc, out = guest(vm, script, timeout=180)
    m1 = vm.trace_mark()
    ev = order_events(vm, m0, m1)
    good, diag = empty_before_reset(ev)
    ktap.ok("%s: %s: host sees actual 0 before status 0" % (tag, what),
            rc == 0 and good, "rc=%d %s\n%s" % (rc, out, diag))
    if back:
        ok2, secs, last = wait_actual(vm, TARGET)
        mi = meminfo(vm)
        want = mem0["MemTotal"] - (MEM - TARGET) * 1024
        ktap.ok("%s: %s: driver back, balloon back at %d MiB, MemTotal consistent"
                % (tag, what, TARGET),
                ok2 and abs(mi["MemTotal"] - want) <= SLACK_KB,
                "actual %s MiB; MemTotal %d, want %d" % (last, mi["MemTotal"], want))
    else:
        mi = meminfo(vm)
        ktap.ok("%s: %s: guest MemTotal whole again (%d kB)" % (tag, what, mi["MemTotal"]),
                abs(mi["MemTotal"] - mem0["MemTotal"]) <= SLACK_KB,
                "MemTotal %d kB, at start %d kB" % (mi["MemTotal"], mem0["MemTotal"]))


def check_stats(ktap, vm, tag):
    path = "/machine/peripheral/balloon0"
    # The driver gave the host statistics once at probe; wait for fresh
    # ones, which the host asks for every 2 s once polling is on.
    first = vm.qmp("qom-get", path=path, property="guest-stats").get("last-update", 0)
    vm.qmp("qom-set", path=path, property="guest-stats-polling-interval", value=2)
    stats = {}
    updates = set()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(updates) < 2:
        reply = vm.qmp("qom-get", path=path, property="guest-stats")
        stats = reply.get("stats", {})
        if reply.get("last-update", 0) > first:
            updates.add(reply["last-update"])
        time.sleep(1)
    mi = meminfo(vm)
    tot = stats.get("stat-total-memory", -1)
    ktap.ok("%s: statistics reach the host (total %d kB, free %d kB, available %d kB)"
            % (tag, tot // 1024, stats.get("stat-free-memory", -1) // 1024,
               stats.get("stat-available-memory", -1) // 1024),
            len(updates) >= 2
            and abs(tot // 1024 - mi["MemTotal"]) <= SLACK_KB
            and stats.get("stat-free-memory", -1) > 0
            and stats.get("stat-available-memory", -1) > 0
            and stats.get("stat-minor-faults", -1) > 0
            and stats.get("stat-disk-caches", -1) > 0
            and stats.get("stat-swap-in", -1) >= 0,
            "%d fresh updates; guest-stats %r; guest MemTotal %d kB"
            % (len(updates), stats, mi["MemTotal"]))
    vm.qmp("qom-set", path=path, property="guest-stats-polling-interval", value=0)


def check_oom(ktap, vm, tag):
    """A program needs memory the balloon holds: it gets it, the host sees
    actual rise, and nothing is OOM-killed."""
    before = actual_mib(vm)
    mi = meminfo(vm)
    eat = mi["MemAvailable"] // 1024 + 48
    gcheck(vm, "rv_kmsg balloon-oom")
    rc, out = guest(vm, "rvballoon-eat %d; echo rc=$?" % eat, timeout=240)
    after = actual_mib(vm)
    dm = gcheck(vm, "rv_dmesg_after balloon-oom")
    ktap.ok("%s: deflate on OOM: a %d MiB program (%d MiB available) gets its memory"
            % (tag, eat, mi["MemAvailable"] // 1024),
            "ate %d" % eat in out and "rc=0" in out and "Killed process" not in dm,
            "%s\n%s" % (out, dm))
    ktap.ok("%s: deflate on OOM: host actual rises from %d to %d MiB" % (tag, before, after),
            after > before, dm)


def vmstat(vm, key):
    m = re.search(r"^%s (\d+)$" % key, gcheck(vm, "cat /proc/vmstat"), re.M)
    return int(m.group(1)) if m else -1


def check_short(ktap, vm, tag):
    """A target the guest cannot give: inflating pauses with a message and
    the OOM killer kills nothing."""
    low = 32
    kills = vmstat(vm, "oom_kill")
    gcheck(vm, "rv_kmsg balloon-short")
    vm.qmp("balloon", value=low * MIB)
    dm = ""
    deadline = time.monotonic() + 120 * DEBUG_SLOW
    while time.monotonic() < deadline and "inflating paused" not in dm:
        time.sleep(2)
        dm = gcheck(vm, "rv_dmesg_after balloon-short")
    act = actual_mib(vm)
    rc, out = guest(vm, "echo alive", timeout=60)
    ktap.ok("%s: target %d MiB: inflating pauses at %d MiB, the OOM killer kills nothing"
            % (tag, low, act),
            "inflating paused" in dm and act > low and rc == 0 and "alive" in out
            and vmstat(vm, "oom_kill") == kills and "Killed process" not in dm,
            "actual %d MiB; oom_kill %d -> %d\n%s"
            % (act, kills, vmstat(vm, "oom_kill"), dm))


def check_reporting(ktap, vm, tag, since):
    """Free page reporting: the deflate freed 128 MiB in large blocks; the
    kernel's page reporting hands some to the driver, which puts them on
    the reporting queue (number 3: inflate, deflate, stats, reporting)."""
    kicks = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not kicks:
        time.sleep(1)
        kicks = sum(1 for l in vm.trace_lines(since)
                    if re.search(r"virtio_queue_notify vdev \S+ n 3 ", l))
    out = gcheck(vm, "dmesg | grep -e revirt_balloon -e 'did not take' || true")
    ktap.ok("%s: free page reporting: the host is notified on the reporting queue (%d kicks)"
            % (tag, kicks), kicks > 0 and "did not take" not in out, out)


def check_mask(ktap, vm, tag, name, mem0):
    """A features_mask write without DEFLATE_ON_OOM renegotiates through
    remove and probe: the pages come back before the reset, the host's
    guest features lose the bit, and get it back."""
    dev = "$RV_BUS/devices/%s" % name
    check_returns(ktap, vm, tag, "features_mask without DEFLATE_ON_OOM",
                  "echo 0xfffffffffffffffb > %s/features_mask" % dev, mem0, True)
    feats = guest_feature_names(vm.virtio_status(backend_path("balloon0")))
    ok1 = "VIRTIO_BALLOON_F_DEFLATE_ON_OOM" not in feats
    check_returns(ktap, vm, tag, "features_mask all ones again",
                  "echo 0xffffffffffffffff > %s/features_mask" % dev, mem0, True)
    feats2 = guest_feature_names(vm.virtio_status(backend_path("balloon0")))
    ktap.ok("%s: host's guest features lose DEFLATE_ON_OOM and get it back" % tag,
            ok1 and "VIRTIO_BALLOON_F_DEFLATE_ON_OOM" in feats2,
            "masked: %s\nunmasked: %s" % (feats, feats2))


def check_remove_inflating(ktap, vm, tag, name, mem0, live_unbound):
    """Unbind while the balloon is still growing: the step in flight ends,
    every page comes back before the reset.  Unbound again, revirt holds
    as many objects as at the first unbind, many cycles ago."""
    drv = "$RV_BUS/drivers/revirt_balloon"
    vm.qmp("balloon", value=96 * MIB)
    time.sleep(1)
    inflating = actual_mib(vm)
    check_returns(ktap, vm, tag, "unbind while inflating (at %d MiB)" % inflating,
                  "echo %s > %s/unbind" % (name, drv), mem0, False)
    live_check(ktap, vm, "%s: live revirt objects unbound as at the first unbind "
               "(bind, reload, reset, two features_mask writes since)" % tag, live_unbound)
    vm.qmp("balloon", value=TARGET * MIB)
    rc, out = guest(vm, "echo %s > %s/bind && rv_info" % (name, drv))
    good, secs, last = wait_actual(vm, TARGET)
    ktap.ok("%s: bind after that: balloon back at %d MiB" % (tag, TARGET),
            rc == 0 and good, "%s\nactual %s" % (out, last))


def run_pci(ktap, env):
    tag = "balloon pci"
    ok = ktap.ok
    try:
        vm = boot_pci(env)
    except VMError as e:
        ok("%s: VM boots" % tag, False, str(e))
        return
    with vm:
        gcheck(vm, "rv_kmsg balloon-start")
        mem0 = meminfo(vm)
        rc, out = guest(vm, "rv_insmod revirt && rv_insmod revirt_pci")
        live0 = live_objects(vm)
        rc, out = guest(vm, "rv_insmod revirt_balloon && rv_info")
        ok("%s: driver binds the device" % tag,
           rc == 0 and "driver=revirt_balloon" in out and "status=0x0f" in out, out)
        if rc != 0:
            return
        name = re.search(r"^(revirt\d+) ", out, re.M).group(1)
        ok("%s: query-balloon actual is the full %d MiB" % (tag, MEM),
           actual_mib(vm) == MEM, "actual %s" % actual_mib(vm))

        mi = inflate(ktap, vm, tag, TARGET, mem0)
        ok("%s: guest MemAvailable drops by about %d MiB (%d -> %d kB)"
           % (tag, MEM - TARGET, mem0["MemAvailable"], mi["MemAvailable"]),
           mem0["MemAvailable"] - mi["MemAvailable"] >= (MEM - TARGET - 24) * 1024,
           "%r" % mi)
        rc, out = guest(vm, "grep balloon /proc/vmstat")
        m = re.search(r"balloon_inflate (\d+)", out)
        ok("%s: /proc/vmstat counts %d MiB of balloon pages inflated" % (tag, MEM - TARGET),
           m is not None and int(m.group(1)) >= (MEM - TARGET) * 256, out)
        m0 = vm.trace_mark()
        inflate(ktap, vm, tag + " deflate", HIGHER, mem0)
        check_reporting(ktap, vm, tag, m0)
        inflate(ktap, vm, tag, TARGET, mem0)

        check_stats(ktap, vm, tag)

        # Compaction may migrate balloon pages: the host is told, nothing breaks.
        rc, out = guest(vm, "echo 1 > /proc/sys/vm/compact_memory; grep balloon_migrate /proc/vmstat")
        ok("%s: compaction with the balloon inflated (%s)" % (tag, out.strip()),
           rc == 0 and actual_mib(vm) == TARGET, out)

        dev = "$RV_BUS/devices/%s" % name
        drv = "$RV_BUS/drivers/revirt_balloon"
        check_returns(ktap, vm, tag, "unbind",
                      "echo %s > %s/unbind && cat %s/status" % (name, drv, dev), mem0, False)
        # Counted with no driver bound: a bound driver's rings may hold a
        # cached indirect table or not, depending on the reports so far.
        live_unbound = live_objects(vm)
        rc, out = guest(vm, "echo %s > %s/bind && rv_info" % (name, drv))
        ok("%s: bind again" % tag, rc == 0 and "driver=revirt_balloon" in out, out)
        good, secs, last = wait_actual(vm, TARGET)
        ok("%s: after bind the balloon goes back to %d MiB (%.1fs)" % (tag, TARGET, secs),
           good, "actual %s" % last)
        check_returns(ktap, vm, tag, "rmmod revirt_balloon", "rmmod revirt_balloon", mem0, False)
        live_check(ktap, vm, "%s: live revirt objects after unload as before the load" % tag,
                   live0)
        rc, out = guest(vm, "rv_insmod revirt_balloon && rv_info")
        good, secs, last = wait_actual(vm, TARGET)
        ok("%s: reload: balloon back at %d MiB (%.1fs)" % (tag, TARGET, secs),
           rc == 0 and good, "%s\nactual %s" % (out, last))
        check_returns(ktap, vm, tag, "reset attribute", "echo 1 > %s/reset" % dev, mem0, True)

        check_mask(ktap, vm, tag, name, mem0)
        check_remove_inflating(ktap, vm, tag, name, mem0, live_unbound)
        check_oom(ktap, vm, tag)
        check_short(ktap, vm, tag)

        vm.qmp("balloon", value=MEM * MIB)
        good, secs, last = wait_actual(vm, MEM)
        mi = meminfo(vm)
        ok("%s: full target: balloon empty, MemTotal whole (%d kB)" % (tag, mi["MemTotal"]),
           good and abs(mi["MemTotal"] - mem0["MemTotal"]) <= SLACK_KB,
           "actual %s; MemTotal %d, start %d" % (last, mi["MemTotal"], mem0["MemTotal"]))
        bad = kernel_bad_lines(gcheck(vm, "rv_dmesg_after balloon-start").splitlines())
        ok("%s: no warning or oops in dmesg" % tag, not bad, "\n".join(bad[:40]))


def run_quick(ktap, env, tag, boot, transport, status):
    """Another transport: bind, inflate, statistics, unbind in order."""
    ok = ktap.ok
    try:
        vm = boot(env)
    except VMError as e:
        ok("%s: VM boots" % tag, False, str(e))
        return
    with vm:
        mem0 = meminfo(vm)
        rc, out = guest(vm, "rv_insmod revirt && rv_insmod %s && "
                        "rv_insmod revirt_balloon && rv_info" % transport)
        ok("%s: driver binds the device, status 0x%02x" % (tag, status),
           rc == 0 and "driver=revirt_balloon" in out and "status=0x%02x" % status in out,
           out)
        if rc != 0:
            return
        name = re.search(r"^(revirt\d+) ", out, re.M).group(1)
        inflate(ktap, vm, tag, TARGET, mem0)
        check_stats(ktap, vm, tag)
        check_returns(ktap, vm, tag, "unbind",
                      "echo %s > $RV_BUS/drivers/revirt_balloon/unbind" % name, mem0, False)
        bad = kernel_bad_lines(gcheck(vm, "dmesg").splitlines())
        ok("%s: no warning or oops in dmesg" % tag, not bad, "\n".join(bad[:40]))


def run(ktap, env):
    if env.skip_unbuilt(ktap, "balloon: revirt_balloon on PCI and MMIO", MODULES):
        return
    run_pci(ktap, env)
    run_quick(ktap, env, "balloon mmio v2", boot_mmio, "revirt_mmio", 0x0f)
    run_quick(ktap, env, "balloon pci legacy", boot_legacy, "revirt_pci", 0x07)
