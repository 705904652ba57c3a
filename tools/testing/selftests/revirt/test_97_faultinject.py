# SPDX-License-Identifier: GPL-2.0-only
"""Every error path of probe, reset and renegotiation, by fault injection
(needs a kernel with it: make check-debug; Debian's kernels skip).

For each operation -- bind (probe), a write to reset, a write to
features_mask -- on a modern entropy device, the shell that performs it
asks the kernel to fail its 1st, 2nd, ... allocation (/proc/PID/fail-nth,
failslab and fail_page_alloc with GFP_KERNEL allocations included), until a
run completes with no failure injected.  After each injected failure the
device must be in a clean state (bound and working, or not bound), and
the next bind without faults must give entropy.  With verbose=2 every
injection dumps its stack: the distinct revirt functions at the top of
those stacks are the error paths hit, printed with the count.

DMA mapping failures: revirt maps every buffer through
revirt_vring_dma_map(), which fail_function makes fail; a read then gets an
error, and entropy flows once the injection is off.

KASAN, lockdep, kmemleak and DMA-API debug watch all of it (run.py's
report line after this module).
"""

import re

from revirt_rig import kernel_bad_lines

DEV = "rng1"
MAX_STEPS = 600
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
drv=$RV_BUS/drivers/revirt_rng
is_bound() { [ -e $dev/driver ]; }
ensure_bound() { is_bound || echo revirt%(n)d > $drv/bind; is_bound; }
ensure_unbound() { ! is_bound || echo revirt%(n)d > $drv/unbind; ! is_bound; }
# the operation under test, from this shell (its allocations are counted)
op_bind() { echo revirt%(n)d > $drv/bind; }
op_reset() { echo 1 > $dev/reset; }
op_mask() { echo 0xffffffffcfffffff > $dev/features_mask; }
prep_bind() { ensure_unbound; }
prep_reset() { ensure_bound; }
prep_mask() { echo 0xffffffffffffffff > $dev/features_mask 2>/dev/null; ensure_bound; }
# a clean state after an injected failure: bound with DRIVER_OK, or not
# bound (FAILED or ACKNOWLEDGE); and a bind without faults works
settle() {
	_s=$(cat $dev/status)
	if is_bound; then
		[ "$_s" = 0x0f ] || { echo "bound with status $_s"; return 1; }
	else
		case $_s in 0x01|0x8*) ;; *) echo "unbound with status $_s"; return 1 ;; esac
	fi
	echo 0xffffffffffffffff > $dev/features_mask 2>/dev/null
	ensure_unbound && ensure_bound || { echo "bind without faults failed"; return 1; }
	rv_entropy_ok %(n)d || { echo "no entropy after the failure"; return 1; }
}
"""

LOOP = r"""
fi_setup
n=1; injected=0
while [ $n -le %(max)d ]; do
	prep_%(op)s >/dev/null 2>&1 || { echo "prepare failed at $n"; exit 1; }
	rv_kmsg "fi %(op)s $n"
	echo $n > /proc/$$/fail-nth
	op_%(op)s 2>/dev/null
	read left < /proc/$$/fail-nth
	echo 0 > /proc/$$/fail-nth
	[ "$left" = 0 ] || break
	injected=$((injected + 1))
	settle || { echo "step $n: not clean"; exit 1; }
	n=$((n + 1))
done
echo op=%(op)s injected=$injected
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
    n = rig.index(DEV)
    setup = SETUP % {"fi": FI, "n": n}
    total_paths = set()
    for op, what in (("bind", "bind (probe)"), ("reset", "reset attribute"),
                     ("mask", "features_mask write")):
        rig.kmsg_mark("test_97_%s" % op)
        rc, out = rig.sh(setup + LOOP % {"op": op, "max": MAX_STEPS}, timeout=1800)
        dm = rig.dmesg_after("test_97_%s" % op)
        paths = error_paths(dm)
        total_paths |= paths
        m = re.search(r"injected=(\d+)", out)
        bad = [l for l in kernel_bad_lines(dm) if "Call Trace" not in l]
        ktap.ok("faultinject: %s: %s allocation failures injected in turn, each ended clean "
                "and the next bind worked; %d distinct revirt error paths: %s"
                % (what, m.group(1) if m else "?", len(paths), " ".join(sorted(paths))),
                rc == 0 and m and int(m.group(1)) > 0 and not bad,
                "%s\n%s" % (out[-3000:], "\n".join(bad[:20])))
    ktap.diag("faultinject: error paths hit in all: %d" % len(total_paths))

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
