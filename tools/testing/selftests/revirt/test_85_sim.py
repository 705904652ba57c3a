# SPDX-License-Identifier: GPL-2.0-only
"""revirt_sim: every fault knob of the simulated devices, and what the core
and the drivers promise for each.

revirt_sim.ko creates two entropy devices (revirt0, revirt1) and a block
device (revirt2) with no QEMU device behind them.  revirt0 is made to
misbehave; revirt1 is the witness that the guest goes on working.  For
each fault the test checks the error text in dmesg, the device state in
sysfs, the error a reader sees, that the witness still gives entropy, and
that the faulty device works again once the fault is off and the device is
reset through its reset attribute (or, for DEVICE_NEEDS_RESET, by itself).

The guest boots with slub_debug=U,kmalloc-* so that rv_live_objects counts
the kmalloc objects allocated by revirt code.  Once every fault has run
(so that what the kernel allocates once and keeps exists), another round
of every fault with unbind/bind and reload cycles must not change the
count, nor must loading, a round of faults and unloading.
"""

import re

from revirt_vm import VM, VMError
from revirt_rig import GUEST_LIB, kernel_bad_lines, live_check, live_objects

MODULES = ["revirt", "revirt_rng", "revirt_sim"]
RESET_TIMEOUT_MS = 1000
BIND_CYCLES = 20
RELOADS = 5

SETUP = r"""
SIM=/sys/kernel/debug/revirt_sim
DEV=$RV_BUS/devices
knob() { echo "$3" > $SIM/revirt$1/$2; }
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
# bound N: revirtN has a driver and status 0x0f, waiting up to 10 s
bound() {
	_i=0
	while [ $_i -lt 50 ]; do
		[ -e $DEV/revirt$1/driver ] && [ "$(cat $DEV/revirt$1/status)" = 0x0f ] && return 0
		_i=$((_i + 1)); sleep 0.2
	done
	return 1
}
state() {
	_d=-; [ -e $DEV/revirt$1/driver ] && _d=bound
	echo "state status=$(cat $DEV/revirt$1/status) driver=$_d resets=$(cat $DEV/revirt$1/resets)"
}
# round: every fault once on revirt0, each followed by its recovery.
round() {
	knob 0 reset_delay_ms 300; echo 1 > $DEV/revirt0/reset; knob 0 reset_delay_ms 0
	knob 0 reset_hang 1; echo revirt0 > $RV_BUS/drivers/revirt_rng/unbind
	knob 0 reset_hang 0; echo 1 > $DEV/revirt0/reset
	knob 0 refuse_features 1; echo 1 > $DEV/revirt0/reset
	knob 0 refuse_features 0; echo 1 > $DEV/revirt0/reset
	knob 0 hold 1; bound 0; knob 0 needs_reset 1; sleep 0.5; bound 0; knob 0 hold 0
	for _k in used_bad_id used_stale_id used_long_len used_idx_jump; do
		rv_select 0; knob 0 $_k 1; head -c 256 /dev/hwrng >/dev/null 2>&1
		echo 1 > $DEV/revirt0/reset; bound 0
	done
	bound 0 && bound 1
}
"""


def boot(env):
    return VM(kernel=env.kernel, initrd=env.initrd, name="sim",
              extra_append="slub_debug=U,kmalloc-*")


class Sim:
    def __init__(self, vm):
        self.vm = vm

    def sh(self, script, timeout=120):
        return self.vm.sh(GUEST_LIB + SETUP + script, timeout)

    def mark(self, tag):
        self.sh("rv_kmsg %s" % tag)

    def dmesg_after(self, tag):
        rc, out = self.sh("rv_dmesg_after %s" % tag)
        return out.splitlines()

    def entropy(self, n):
        rc, out = self.sh("rv_entropy_ok %d" % n, timeout=60)
        return rc == 0, "revirt_rng.%d: %s" % (n, out.strip() or "ok")

    def state(self, n):
        rc, out = self.sh("state %d" % n)
        m = re.search(r"state status=(\S+) driver=(\S+) resets=(\d+)", out)
        if not m:
            raise VMError("no state for revirt%d: %s" % (n, out))
        return {"status": int(m.group(1), 16), "bound": m.group(2) == "bound",
                "resets": int(m.group(3))}

    def live_objects(self, want=None):
        return live_objects(self.vm, want=want)

    def recover(self, n):
        """Write 1 to reset; (ok, diag): bound with 0x0f and entropy flows."""
        rc, out = self.sh("echo 1 > $DEV/revirt%d/reset; bound %d && echo BOUND; state %d"
                          % (n, n, n))
        good, ediag = self.entropy(n)
        return "BOUND" in out and good, out + ediag


def check_setup(ktap, sim):
    rc, out = sim.sh("rv_insmod revirt && rv_insmod revirt_rng && rv_insmod revirt_sim && "
                     "bound 0 && bound 1 && echo BOUND; rv_info")
    before = [int(x) for x in sim.sh("cat $SIM/revirt0/requests $SIM/revirt1/requests")[1].split()]
    good0, d0 = sim.entropy(0)
    good1, d1 = sim.entropy(1)
    after = [int(x) for x in sim.sh("cat $SIM/revirt0/requests $SIM/revirt1/requests")[1].split()]
    served = all(a > b for a, b in zip(after, before))
    return ktap.ok("sim: two simulated entropy devices probe and their entropy comes from the device model",
                   rc == 0 and "BOUND" in out and good0 and good1 and served,
                   "%s\n%s\n%s\nrequests before %r after %r" % (out, d0, d1, before, after))


def check_reset_late(ktap, sim):
    """A reset that completes late but within the bound is waited for."""
    sim.mark("sim_late")
    s0 = sim.state(0)
    rc, out = sim.sh("knob 0 reset_delay_ms 300; t0=$(now_ms); "
                     "rv_write $DEV/revirt0/reset 1; t1=$(now_ms); knob 0 reset_delay_ms 0; "
                     "echo took=$((t1 - t0)); bound 0 && echo BOUND")
    took = int(re.search(r"took=(-?\d+)", out).group(1))
    good, ediag = sim.entropy(0)
    dm = sim.dmesg_after("sim_late")
    ktap.ok("sim: reset_delay_ms 300: the reset is waited for (%d ms) and the device comes back" % took,
            "rc=0" in out and 300 <= took < RESET_TIMEOUT_MS + 500 and "BOUND" in out
            and good and sim.state(0)["resets"] > s0["resets"]
            and not any("did not complete" in l for l in dm),
            "%s\n%s\n%s" % (out, ediag, "\n".join(dm)))


def check_reset_timeout(ktap, sim):
    """A reset that completes after the bound: error, device broken, no hang."""
    sim.mark("sim_timeout")
    rc, out = sim.sh("knob 0 reset_delay_ms 2500; t0=$(now_ms); "
                     "rv_write $DEV/revirt0/reset 1; t1=$(now_ms); "
                     "echo took=$((t1 - t0)); state 0")
    took = int(re.search(r"took=(-?\d+)", out).group(1))
    dm = sim.dmesg_after("sim_timeout")
    wgood, wdiag = sim.entropy(1)
    ktap.ok("sim: reset completing after the bound: the write fails within %d ms, "
            "'device marked broken' in dmesg, no driver bound, the witness works" % took,
            "rc=1" in out and took < 2 * RESET_TIMEOUT_MS + 500 and "driver=-" in out
            and any("reset did not complete (-110): device marked broken" in l for l in dm)
            and wgood,
            "%s\n%s\n%s" % (out, wdiag, "\n".join(dm)))
    sim.sh("sleep 2; knob 0 reset_delay_ms 0")
    good, diag = sim.recover(0)
    ktap.ok("sim: after the late reset, writing reset brings the device back with entropy",
            good, diag)


def check_reset_hang(ktap, sim):
    """A reset that never completes: unbind, bind and rmmod stay bounded."""
    sim.mark("sim_hang")
    rc, out = sim.sh(
        "knob 0 reset_hang 1; t0=$(now_ms); "
        "echo revirt0 > $RV_BUS/drivers/revirt_rng/unbind; t1=$(now_ms); "
        "rv_write $RV_BUS/drivers/revirt_rng/bind revirt0; t2=$(now_ms); "
        "rmmod revirt_rng && rv_insmod revirt_rng; t3=$(now_ms); "
        "echo unbind=$((t1 - t0)) bind=$((t2 - t1)) reload=$((t3 - t2)); state 0; "
        "bound 1 && echo WITNESS_BOUND", timeout=120)
    times = dict((k, int(v)) for k, v in re.findall(r"(unbind|bind|reload)=(-?\d+)", out))
    dm = sim.dmesg_after("sim_hang")
    wgood, wdiag = sim.entropy(1)
    bounded = all(t < 3 * RESET_TIMEOUT_MS for t in times.values()) and len(times) == 3
    ktap.ok("sim: reset_hang: unbind, a refused bind and a module reload all return in bounded "
            "time (%s), the device is marked broken once, the witness works"
            % " ".join("%s=%dms" % kv for kv in sorted(times.items())),
            bounded and "rc=1" in out and "driver=-" in out and "WITNESS_BOUND" in out and wgood
            and sum("device marked broken" in l for l in dm) == 1,
            "%s\n%s\n%s" % (out, wdiag, "\n".join(dm)))
    sim.sh("knob 0 reset_hang 0")
    good, diag = sim.recover(0)
    ktap.ok("sim: reset_hang switched off, writing reset brings the device back with entropy",
            good, diag)


def check_refuse_features(ktap, sim):
    sim.mark("sim_features")
    rc, out = sim.sh("knob 0 refuse_features 1; echo 1 > $DEV/revirt0/reset; state 0")
    dm = sim.dmesg_after("sim_features")
    m = re.search(r"status=(\S+)", out)
    status = int(m.group(1), 16) if m else 0
    wgood, wdiag = sim.entropy(1)
    ktap.ok("sim: refuse_features: probe fails with 'device refused features', "
            "status 0x%02x has FAILED, no driver, the witness works" % status,
            status & 0x80 and not status & 0x08 and "driver=-" in out and wgood
            and any("device refused features" in l for l in dm)
            and any("probe of revirt_rng failed (-19)" in l for l in dm),
            "%s\n%s\n%s" % (out, wdiag, "\n".join(dm)))
    sim.sh("knob 0 refuse_features 0")
    good, diag = sim.recover(0)
    ktap.ok("sim: refuse_features switched off, writing reset brings the device back with entropy",
            good, diag)


def check_needs_reset(ktap, sim):
    """DEVICE_NEEDS_RESET while a request is in flight: the reader gets an
    error, the core resets and re-probes by itself."""
    sim.mark("sim_needs_reset")
    resets = sim.state(0)["resets"]
    rc, out = sim.sh(
        # Bound afresh with "hold" set, the driver has no bytes left over
        # from earlier requests: its first request (the hwrng core's early
        # read) stays on the device.  The hwrng core's fill thread reads
        # too and may be the one waiting for it; with the witness unbound
        # there is no other rng to read from, so every read of the reader
        # ends in an error while "hold" is set.
        "echo revirt1 > $RV_BUS/drivers/revirt_rng/unbind\n"
        "knob 0 hold 1\n"
        "echo revirt0 > $RV_BUS/drivers/revirt_rng/unbind\n"
        "echo revirt0 > $RV_BUS/drivers/revirt_rng/bind\n"
        "rv_select 0 || exit 1\n"
        "timeout 10 head -c 64 /dev/hwrng >/tmp/nr.data 2>/tmp/nr.err & rpid=$!\n"
        "i=0; while [ $i -lt 50 ]; do\n"
        "  [ \"$(cat $SIM/revirt0/in_flight)\" = 1 ] && pidof head >/dev/null && break\n"
        "  i=$((i+1)); sleep 0.1; done\n"
        "sleep 0.2; echo in_flight=$(cat $SIM/revirt0/in_flight)\n"
        "knob 0 needs_reset 1\n"
        "wait $rpid; echo reader_rc=$? bytes=$(wc -c </tmp/nr.data) err=\"$(cat /tmp/nr.err)\"\n"
        "bound 0 && echo BOUND; state 0\n"
        "echo revirt1 > $RV_BUS/drivers/revirt_rng/bind\n", timeout=60)
    dm = sim.dmesg_after("sim_needs_reset")
    st = sim.state(0)
    m = re.search(r"bytes=(\d+)", out)
    ktap.ok("sim: needs_reset with a request in flight: the reader gets an error and not "
            "the data it waited for",
            "in_flight=1" in out
            and re.search(r"reader_rc=[1-9]", out) is not None and m and int(m.group(1)) < 64, "%s\n%s" % (out, "\n".join(dm)))
    sim.sh("knob 0 hold 0")
    good, ediag = sim.entropy(0)
    ktap.ok("sim: needs_reset: the core resets the device and probes its driver again "
            "without user action, entropy flows",
            "BOUND" in out and st["resets"] > resets and good
            and any("device needs a reset" in l for l in dm),
            "%s\n%s\n%s" % (out, ediag, "\n".join(dm)))


USED_FAULTS = [
    ("used_bad_id", "out of range"),
    ("used_stale_id", "not in flight"),
    ("used_long_len", "beyond the"),
    ("used_idx_jump", "used index moved by"),
]


def check_used_fault(ktap, sim, knob, text):
    tag = "sim_" + knob
    sim.mark(tag)
    rc, out = sim.sh(
        "rv_select 0 || exit 1\n"
        "knob 0 %s 1\n"
        "t0=$(now_ms); timeout 10 head -c 512 /dev/hwrng >/dev/null 2>/tmp/uf.err; "
        "echo read_rc=$? took=$(($(now_ms) - t0)) err=\"$(cat /tmp/uf.err)\"\n"
        "echo left=$(cat $SIM/revirt0/%s)\n" % (knob, knob), timeout=60)
    dm = sim.dmesg_after(tag)
    broken = [l for l in dm if "broken:" in l]
    wgood, wdiag = sim.entropy(1)
    m = re.search(r"took=(\d+)", out)
    ktap.ok("sim: %s: one 'queue input broken: ... %s' line, the reader gets an I/O error "
            "at once, the witness works" % (knob, text),
            re.search(r"read_rc=[1-9]", out) is not None
            and re.search(r"I/O error|Input/output error", out) is not None
            and m and int(m.group(1)) < 2000 and "left=0" in out
            and len(broken) == 1 and text in broken[0] and wgood,
            "%s\n%s\n%s" % (out, wdiag, "\n".join(dm)))
    good, diag = sim.recover(0)
    ktap.ok("sim: %s: writing reset brings the device back with entropy" % knob, good, diag)


def check_config_flips(ktap, env, sim):
    name = "sim: config_flips: a config that changes under the read is read again until stable"
    if env.skip_unbuilt(ktap, name, ["revirt_blk"]):
        return
    sim.mark("sim_flips")
    rc, out = sim.sh(
        "rv_insmod revirt_blk; knob 2 config_flips 5; echo 1 > $DEV/revirt2/reset; bound 2 && echo BOUND\n"
        "echo left=$(cat $SIM/revirt2/config_flips)\n"
        "for b in /sys/block/rvd*; do echo size=$(cat $b/size); done\n"
        # back to the state of the other tests
        "rmmod revirt_blk\n")
    dm = sim.dmesg_after("sim_flips")
    want = "size=%d" % (8192 * 2)
    ktap.ok(name, "BOUND" in out and "left=0" in out and want in out
            and not any("keeps changing" in l for l in dm),
            "%s\n%s" % (out, "\n".join(dm)))


def check_cycles_and_leaks(ktap, sim):
    """Every fault ran once already, so whatever the kernel allocates once
    and keeps is there; a second round of faults and the cycles must not
    add a single object."""
    before = sim.live_objects()
    sites = sim.sh("rv_live_objects -v")[1]
    rc, out = sim.sh(
        "round || exit 1\n"
        "i=0; while [ $i -lt %d ]; do\n"
        "  echo revirt0 > $RV_BUS/drivers/revirt_rng/unbind || exit 1\n"
        "  echo revirt0 > $RV_BUS/drivers/revirt_rng/bind || exit 1\n"
        "  i=$((i + 1)); done\n"
        "i=0; while [ $i -lt %d ]; do rmmod revirt_rng && rv_insmod revirt_rng || exit 1; i=$((i + 1)); done\n"
        "bound 0 && bound 1 && echo BOUND\n" % (BIND_CYCLES, RELOADS), timeout=300)
    good0, d0 = sim.entropy(0)
    good1, d1 = sim.entropy(1)
    ktap.ok("sim: every fault again, %d unbind/bind cycles and %d reloads of revirt_rng, "
            "entropy from both" % (BIND_CYCLES, RELOADS),
            rc == 0 and "BOUND" in out and good0 and good1, "%s\n%s\n%s" % (out, d0, d1))
    live_check(ktap, sim.vm, "sim: no revirt object leaked by the faults and cycles",
               before, skip_impossible=True,
               diag=lambda: "before:\n%s\nafter:\n%s" % (sites, sim.sh("rv_live_objects -v")[1]))


UNLOAD = ("knob 0 reset_hang 1; t0=$(now_ms); "
          "rmmod revirt_sim; echo rmmod_rc=$? took=$(($(now_ms) - t0)); "
          "rmmod revirt_rng; rmmod revirt")
LOAD = "rv_insmod revirt && rv_insmod revirt_rng && rv_insmod revirt_sim && bound 0 && bound 1"


def check_unload(ktap, sim):
    """rmmod revirt_sim while a device cannot reset is bounded; loading,
    a round of faults and unloading again leaves nothing behind."""
    rc, out = sim.sh(UNLOAD, timeout=120)
    m = re.search(r"took=(\d+)", out)
    ktap.ok("sim: rmmod revirt_sim with a device whose reset hangs returns in %s ms"
            % (m.group(1) if m else "?"),
            "rmmod_rc=0" in out and m and int(m.group(1)) < 10 * RESET_TIMEOUT_MS, out)
    first = sim.live_objects()
    sites = sim.sh("rv_live_objects -v")[1]
    rc, out = sim.sh("%s && round && %s" % (LOAD, UNLOAD), timeout=180)
    ktap.ok("sim: load, every fault, unload again", rc == 0 and "rmmod_rc=0" in out, out)
    live_check(ktap, sim.vm, "sim: load, every fault, unload: nothing allocated by revirt "
               "code is left (counted after the first unload and the second)",
               first, skip_impossible=True,
               diag=lambda: "%s\nafter the first unload:\n%s\nafter the second:\n%s"
               % (out, sites, sim.sh("rv_live_objects -v")[1]))


def run(ktap, env):
    if env.skip_unbuilt(ktap, "sim: simulated devices and their faults", MODULES):
        return
    try:
        vm = boot(env)
    except VMError as e:
        ktap.ok("sim: boot the guest", False, str(e))
        return
    sim = Sim(vm)
    try:
        if not check_setup(ktap, sim):
            return
        check_reset_late(ktap, sim)
        check_reset_timeout(ktap, sim)
        check_reset_hang(ktap, sim)
        check_refuse_features(ktap, sim)
        check_needs_reset(ktap, sim)
        for knob, text in USED_FAULTS:
            check_used_fault(ktap, sim, knob, text)
        check_config_flips(ktap, env, sim)
        check_cycles_and_leaks(ktap, sim)
        check_unload(ktap, sim)
        rc, out = sim.sh("dmesg")
        bad = kernel_bad_lines(out.splitlines())
        ktap.ok("sim: no warning, oops or BUG in dmesg across the faults", not bad,
                "\n".join(bad[:40]))
    except VMError as e:
        ktap.ok("sim: the guest stayed usable", False, str(e))
    finally:
        vm.stop()
