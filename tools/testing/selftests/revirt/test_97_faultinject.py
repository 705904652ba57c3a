# SPDX-License-Identifier: GPL-2.0-only
"""Every error path of probe, reset and renegotiation, by fault injection
(needs a kernel with it: make check-debug; Debian's kernels skip).

For each operation -- bind (probe), a write to reset, a write to
features_mask -- on a modern and a legacy PCI entropy device and on a
disk (revirt_blk), the guest tool rv-failnth asks the kernel to fail the
1st, 2nd, ... allocation of that one write (/proc/self/fail-nth: failslab
and fail_page_alloc, GFP_KERNEL allocations included), until a write
completes with no failure injected.  After each injected failure the
device must be in a clean state (bound and working, or not bound), and
the next bind without faults must work (entropy, or a read of the disk).
With verbose=2 every injection dumps its stack: the distinct revirt
functions at the top of those stacks are the error paths hit, printed
with the count of failures injected.

DMA mapping failures: revirt maps every buffer through
revirt_vring_dma_map(), which fail_function makes fail; a read then gets an
error, and entropy flows once the injection is off.

KASAN, lockdep, kmemleak and DMA-API debug watch all of it (run.py's
report line after this module).
"""

import os
import re

from revirt_rig import GUEST_LIB, kernel_bad_lines

# qdev of the rig, its revirt driver, what it is
TARGETS = [
    ("rng1", "revirt_rng", "modern PCI entropy"),
    ("rng0", "revirt_rng", "legacy PCI entropy"),
    ("blk0", "revirt_blk", "PCI disk"),
]
MAX_STEPS = 600

# works: the device does its job after a bind without faults.
WORKS = {
    "revirt_rng": "works() { rv_entropy_ok %(n)d; }\n",
    "revirt_blk": ("works() {\n"
                   "\t_d=$(ls $dev/block 2>/dev/null | head -n 1)\n"
                   "\t[ -n \"$_d\" ] || { echo \"no disk under revirt%(n)d\"; return 1; }\n"
                   "\tdd if=/dev/$_d of=/dev/null bs=4096 count=16 2>/dev/null ||\n"
                   "\t\t{ echo \"cannot read /dev/$_d\"; return 1; }\n"
                   "}\n"),
}
FI = "/sys/kernel/debug"

SETUP = r"""
fi_setup() {
	for a in failslab fail_page_alloc; do
		echo N > %(fi)s/$a/ignore-gfp-wait
		echo 2 > %(fi)s/$a/verbose
		echo N > %(fi)s/$a/task-filter
	done
	echo 0 > %(fi)s/fail_page_alloc/min-order
}
dev=$RV_BUS/devices/revirt%(n)d
drv=$RV_BUS/drivers/%(drv)s
is_bound() { [ -e $dev/driver ]; }
ensure_bound() { is_bound || echo revirt%(n)d > $drv/bind; is_bound; }
ensure_unbound() { ! is_bound || echo revirt%(n)d > $drv/unbind; ! is_bound; }
# the operation under test: a file and what rv-failnth writes to it
op_bind() { echo $drv/bind revirt%(n)d; }
op_reset() { echo $dev/reset 1; }
op_mask() { echo $dev/features_mask 0xffffffffcfffffff; }
prep_bind() { ensure_unbound; }
prep_reset() { ensure_bound; }
prep_mask() { echo 0xffffffffffffffff > $dev/features_mask 2>/dev/null; ensure_bound; }
# a clean state after an injected failure: bound with DRIVER_OK and
# working, or not bound (FAILED or ACKNOWLEDGE) and a bind without faults
# works
settle() {
	_s=$(cat $dev/status)
	if is_bound; then
		[ "$_s" = %(ok)s ] || { echo "bound with status $_s"; return 1; }
	else
		case $_s in 0x01|0x8*) ;; *) echo "unbound with status $_s"; return 1 ;; esac
		echo 0xffffffffffffffff > $dev/features_mask 2>/dev/null
		ensure_bound || { echo "bind without faults failed"; return 1; }
	fi
	works || { echo "not working after the failure"; return 1; }
}
"""

LOOP = r"""
fi_setup
n=1; injected=0
while [ $n -le %(max)d ]; do
	prep_%(op)s >/dev/null 2>&1 || { echo "prepare failed at $n"; exit 1; }
	rv_kmsg "fi %(op)s $n"
	r=$(rv-failnth $n $(op_%(op)s) 2>&1) || { echo "rv-failnth: $r"; exit 1; }
	case $r in "left=0 "*) ;; *) break ;; esac
	injected=$((injected + 1))
	settle || { echo "step $n: not clean ($r)"; exit 1; }
	n=$((n + 1))
done
echo op=%(op)s injected=$injected last="$r"
[ $n -le %(max)d ] || { echo "still injecting after %(max)d"; exit 1; }
settle
"""


def error_paths(dmesg):
    """Distinct revirt functions at the top of the injected failures' stacks."""
    paths, cur, inside = set(), None, False
    for line in dmesg:
        if "FAULT_INJECTION: forcing a failure" in line:
            if cur:
                paths.add(cur)
            cur, inside = None, True
            continue
        if inside and cur is None:
            m = re.search(r"\b([a-z_0-9]+)\+0x[0-9a-f]+/0x[0-9a-f]+ \[revirt", line)
            if m:
                cur = m.group(1)
    if cur:
        paths.add(cur)
    return paths


def inject(ktap, sh, n, drv, status_ok, kind, totals):
    """The three operations on revirtN with each allocation failed in turn;
    sh(script, timeout) runs a guest script with lib.sh."""
    setup = SETUP % {"fi": FI, "n": n, "drv": drv, "ok": status_ok}
    setup += WORKS[drv] % {"n": n}
    for op, what in (("bind", "bind (probe)"), ("reset", "reset attribute"),
                     ("mask", "features_mask write")):
        tag = "test_97_%d_%s" % (n, op)
        sh("rv_kmsg %s" % tag, 30)
        rc, out = sh(setup + LOOP % {"op": op, "max": MAX_STEPS}, 1800)
        # every failure dumped its stack: a long log for a KASAN guest
        # under TCG to read
        _, dm = sh("rv_dmesg_after %s" % tag, 600)
        dm = dm.splitlines()
        paths = error_paths(dm)
        totals["paths"] |= paths
        m = re.search(r"injected=(\d+)", out)
        totals["injected"] += int(m.group(1)) if m else 0
        bad = [l for l in kernel_bad_lines(dm) if "Call Trace" not in l]
        ktap.ok("faultinject: %s, %s: %s allocation failures injected in turn, each "
                "ended clean and the next bind worked; %d distinct revirt error paths: %s"
                % (kind, what, m.group(1) if m else "?", len(paths),
                   " ".join(sorted(paths))),
                rc == 0 and m and int(m.group(1)) > 0 and not bad,
                "%s\n%s" % (out[-3000:], "\n".join(bad[:20])))


def inject_mmio(ktap, env, totals):
    """The same on a virtio-mmio (version 2) entropy device of a microvm."""
    import test_70_mmio

    try:
        vm = test_70_mmio.boot(env, 2, True)
    except Exception as e:     # the reason is the test's diagnostic
        ktap.ok("faultinject: microvm with virtio-mmio boots", False, str(e))
        return
    try:
        def sh(script, timeout):
            return vm.sh(GUEST_LIB + script, timeout=timeout)
        rc, out = sh("rv_insmod revirt && rv_insmod revirt_mmio && "
                     "rv_insmod revirt_rng && rv_info", 120)
        m = re.search(r"^revirt(\d+) .*driver=revirt_rng", out, re.M)
        if rc != 0 or not m:
            ktap.ok("faultinject: MMIO entropy device bound to revirt_rng", False, out)
            return
        inject(ktap, sh, int(m.group(1)), "revirt_rng", "0x0f", "MMIO v2 entropy",
               totals)
    finally:
        vm.stop()


def run(ktap, env):
    if env.skip_unbuilt(ktap, "faultinject: every error path of probe, reset, renegotiation"):
        return
    rig = env.rig()
    rig.load_all()
    rc, out = rig.sh("[ -d %s/failslab ] && [ -d %s/fail_function ] && "
                     "[ -e /proc/$$/fail-nth ] && echo have" % (FI, FI))
    if "have" not in out:
        ktap.skip("faultinject: every error path of probe, reset, renegotiation",
                  "kernel without fault injection (make check-debug has it)")
        return
    rig.sh("rv_insmod revirt_blk")
    info = rig.info()
    totals = {"paths": set(), "injected": 0}
    # REVIRT_DEBUG_SUBSET: the modern entropy device only, which takes
    # the core and PCI paths; a step costs seconds on the debug kernel
    # under TCG.
    subset = bool(os.environ.get("REVIRT_DEBUG_SUBSET"))
    for qdev, drv, kind in TARGETS[:1] if subset else TARGETS:
        if qdev not in info:
            ktap.ok("faultinject: %s (%s) has a revirt device" % (kind, qdev), False,
                    "\n".join(v["line"] for v in info.values()))
            continue
        inject(ktap, rig.sh, rig.index(qdev, info), drv,
               "0x07" if qdev == "rng0" else "0x0f", kind, totals)
    if not subset:
        inject_mmio(ktap, env, totals)
    ktap.diag("faultinject: %d failures injected, %d distinct revirt error paths hit: %s"
              % (totals["injected"], len(totals["paths"]),
                 " ".join(sorted(totals["paths"]))))

    n = rig.index("rng1")
    rig.kmsg_mark("test_97_dma")
    rc, out = rig.sh(
        "fi=%(fi)s/fail_function\n"
        "echo revirt_vring_dma_map > $fi/inject || exit 1\n"
        "echo -1 > $fi/revirt_vring_dma_map/retval\n"
        "echo 100 > $fi/probability; echo 1 > $fi/interval; echo -1 > $fi/times\n"
        "echo N > $fi/task-filter; echo 1 > $fi/verbose\n"
        "rv_select %(n)d\n"
        "timeout 10 head -c 64 /dev/hwrng >/dev/null 2>/tmp/dma.err; echo read_rc=$?\n"
        "echo '!revirt_vring_dma_map' > $fi/inject\n"
        "rv_entropy_ok %(n)d && echo ENTROPY\n" % {"fi": FI, "n": n}, timeout=120)
    dm = rig.dmesg_after("test_97_dma")
    ktap.ok("faultinject: DMA mapping failures (fail_function on revirt_vring_dma_map): "
            "the read fails, entropy flows once the injection is off",
            re.search(r"read_rc=[1-9]", out) is not None and "ENTROPY" in out
            and any("FAULT_INJECTION" in l for l in dm),
            "%s\n%s" % (out, "\n".join(dm[-30:])))
