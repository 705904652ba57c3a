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
With verbose=2 every injection dumps its stack: the first revirt frame
of each stack is the error path it hit (a call site).  Each operation's
line says how many failures were injected and which revirt functions
they hit, and kmemleak is asked after each operation for records that
point into revirt.  At the end: the totals by module, and the functions
that call an allocator directly but never had a failure injected here
(those of the data path, e.g. revirt_blk's requests, belong there).
Remove allocates nothing; it runs before every bind step.  A virtio-mmio
(version 2) entropy device on a microvm goes through the same three
operations.

DMA mapping failures: revirt maps every buffer through
revirt_vring_dma_map(), which fail_function makes fail.  An entropy read
then fails and entropy flows once the injection is off; on the disk the
failure is -ENOMEM, which the block layer retries, so a read under a few
injected failures returns the same data.

KASAN, lockdep, kmemleak and DMA-API debug watch all of it (run.py's
report line after this module).
"""

import glob
import os
import re
import subprocess
import time

from revirt_rig import GUEST_LIB
from revirt_vm import report_lines_cmd, reports_in

# The operations, each a write to a sysfs file: bind on the revirt bus
# (the driver's probe), the reset and features_mask attributes (the core's
# reprobe, the transport's find_vqs), and bind of the transport's own
# driver on the PCI or platform bus (the transport's probe, the core's
# registration of the device, then the driver's probe in the same write).
# The transport bind renames the device (a new revirtN): it comes last.
ALL_OPS = ("bind", "reset", "mask", "tbind")
# qdev of the rig, its revirt driver, what it is, the operations: the
# legacy device and the disk add the paths that differ from the modern
# entropy device's.
TARGETS = [
    ("rng1", "revirt_rng", "modern PCI entropy", ALL_OPS),
    ("rng0", "revirt_rng", "legacy PCI entropy", ("bind", "tbind")),
    ("blk0", "revirt_blk", "PCI disk", ("bind", "reset", "mask")),
]
MMIO_OPS = ("bind", "tbind")
OP_WHAT = {"bind": "bind (probe)", "reset": "reset attribute",
           "mask": "features_mask write", "tbind": "transport bind"}
# allocations of one operation, at most: the disk's probe makes its
# queue, tag set, gendisk and their sysfs entries, a thousand and more
MAX_STEPS = {"revirt_rng": 600, "revirt_blk": 3000}
# drivers with a reinit operation: a failed reset leaves them bound and
# the device FAILED (the disk's I/O fails) until a reset works
STAYS_BOUND = {"revirt_blk"}
# the modules whose probe, reset and remove paths should all be failed
GOAL_MODULES = {"revirt", "revirt_pci", "revirt_mmio", "revirt_rng", "revirt_blk"}

# works: the device does its job after a bind without faults.
WORKS = {
    "revirt_rng": "works() { rv_entropy_ok $idx; }\n",
    "revirt_blk": ("works() {\n"
                   "\t_d=$(ls $dev/block 2>/dev/null | head -n 1)\n"
                   "\t[ -n \"$_d\" ] || { echo \"no disk under $dev\"; return 1; }\n"
                   "\tdd if=/dev/$_d of=/dev/null bs=4096 count=16 2>/dev/null ||\n"
                   "\t\t{ echo \"cannot read /dev/$_d\"; return 1; }\n"
                   "}\n"),
}
FI = "/sys/kernel/debug"

# $dev and $idx follow the device through a transport bind: it is the
# revirt device under the transport's device $par.
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
idx=%(n)d
drv=$RV_BUS/drivers/%(drv)s
par=$(readlink -f $dev)
par=${par%%/*}
tname=${par##*/}
tdrv=$(readlink -f $par/driver)
find_dev() {
	for _d in $par/revirt[0-9]*; do
		[ -e "$_d" ] || continue
		dev=$RV_BUS/devices/${_d##*/}; idx=${_d##*/revirt}
		return 0
	done
	return 1
}
is_bound() { [ -e $dev/driver ]; }
ensure_bound() { is_bound || echo revirt$idx > $drv/bind; is_bound; }
ensure_unbound() { ! is_bound || echo revirt$idx > $drv/unbind; ! is_bound; }
t_bound() { [ -e $par/driver ]; }
# the operation under test: a file and what rv-failnth writes to it
op_bind() { echo $drv/bind revirt$idx; }
op_reset() { echo $dev/reset 1; }
op_mask() { echo $dev/features_mask 0xffffffffcfffffff; }
op_tbind() { echo $tdrv/bind $tname; }
prep_bind() { ensure_unbound; }
prep_reset() { ensure_bound; }
prep_mask() { echo 0xffffffffffffffff > $dev/features_mask 2>/dev/null; ensure_bound; }
prep_tbind() { ! t_bound || echo $tname > $tdrv/unbind; ! t_bound; }
# a clean state after an injected failure: the transport bound (bound
# again without faults if its probe failed), the device bound with
# DRIVER_OK and working, or not bound (FAILED or ACKNOWLEDGE) and a bind
# without faults works
settle() {
	if ! t_bound; then
		! find_dev || { echo "transport unbound, $dev left"; return 1; }
		echo $tname > $tdrv/bind
		t_bound || { echo "transport bind without faults failed"; return 1; }
	fi
	find_dev || { echo "no revirt device under $par"; return 1; }
	_s=$(cat $dev/status)
	if is_bound; then
		case $_s in
		%(ok)s) ;;
		0x8*)
			# a driver with a reinit stays bound through a failed
			# reset, its device FAILED until a reset works
			[ %(stays)s = y ] || { echo "bound with status $_s"; return 1; }
			echo 0xffffffffffffffff > $dev/features_mask
			echo 1 > $dev/reset
			_s=$(cat $dev/status)
			[ "$_s" = %(ok)s ] || { echo "FAILED, then status $_s after a reset"; return 1; }
			;;
		*) echo "bound with status $_s"; return 1 ;;
		esac
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


# After an operation: one "site FUNC+0xOFF/0xLEN [MODULE]" line per
# injected failure (the first revirt frame of its stack, "site -" when
# none: the failure hit before revirt's code, e.g. in kernfs), the
# checkers' reports (revirt_vm.report_lines_cmd()), and kmemleak's
# records that point into revirt.  Worked out in the guest: the log of a few hundred stack dumps
# is slow to carry over the serial console of a KASAN guest under TCG.
SUMMARY = r"""
rv_dmesg_after %(tag)s >/tmp/fi.op
awk '/FAULT_INJECTION: forcing a failure/ { if (want) print "site -"; want = 1; next }
	want && /<\/TASK>/ { print "site -"; want = 0; next }
	want && /\[revirt/ {
		for (i = 2; i < NF; i++)
			if ($i ~ /\+0x/ && $(i + 1) ~ /^\[revirt/ && $(i - 1) != "?") {
				print "site", $i, $(i + 1); want = 0; break
			}
	}
	END { if (want) print "site -" }' /tmp/fi.op
%(reports)s </tmp/fi.op
rm -f /tmp/fi.op
rv_kmemleak_revirt
"""

SITE_RE = re.compile(r"^site ([a-z_0-9.]+)\+(0x[0-9a-f]+)/0x[0-9a-f]+ \[(revirt[a-z_]*)", re.M)


def error_paths(summary):
    """{(module, function, offset)} of the injected failures in revirt."""
    return {(m.group(3), m.group(1), m.group(2)) for m in SITE_RE.finditer(summary)}


def inject(ktap, sh, n, drv, status_ok, kind, ops, totals):
    """The operations on revirtN with each allocation failed in turn;
    sh(script, timeout) runs a guest script with lib.sh."""
    for op in ops:
        what = OP_WHAT[op]
        setup = SETUP % {"fi": FI, "n": n, "drv": drv, "ok": status_ok,
                         "stays": "y" if drv in STAYS_BOUND else "n"} + WORKS[drv]
        tag = "test_97_%d_%s" % (n, op)
        t0 = time.monotonic()
        sh("rv_kmsg %s" % tag, 30)
        rc, out = sh(setup + LOOP % {"op": op, "max": MAX_STEPS.get(drv, 600)}, 3600)
        _, summary = sh(SUMMARY % {"tag": tag, "reports": report_lines_cmd()}, 600)
        sites = error_paths(summary)
        totals["sites"] |= sites
        m = re.search(r"injected=(\d+)", out)
        injected = int(m.group(1)) if m else 0
        totals["injected"] += injected
        bad = reports_in(summary) + [l for l in summary.splitlines()
                                     if l.startswith("kmemleak: ")]
        own = summary.count("faultinject: ")
        funcs = sorted({f for _, f, _ in sites})
        ktap.ok("faultinject: %s, %s: %d allocation failures injected in turn, each "
                "ended clean, no leak, and the next bind worked; %d in revirt at %d "
                "sites of %d functions (%ds): %s"
                % (kind, what, injected, summary.count("site ") - summary.count("site -"),
                   len(sites), len(funcs), time.monotonic() - t0, " ".join(funcs)),
                rc == 0 and injected > 0 and not bad,
                "%s\n%s" % (out[-3000:], "\n".join(bad[:40])))
        if own:
            ktap.diag("faultinject: %d kernel warnings from free_irq() for /proc/irq "
                      "entries an injected failure kept request_irq() from creating "
                      "(genirq does not record those failures)" % own)


def allocating_functions(ko_dir):
    """{(module, function)}: revirt functions that call an allocator
    directly (relocations in the built modules), for the coverage line."""
    allocs = re.compile(r"R_X86_64_PLT32\s+(__kmalloc\S*|kmalloc\S*|kmem_cache_alloc\S*|"
                        r"__alloc_pages\S*|alloc_pages\S*|__get_free_pages|"
                        r"kvmalloc\S*|devm_kmalloc|dma_alloc_attrs|krealloc)-")
    found = set()
    for ko in glob.glob(os.path.join(ko_dir, "revirt*.ko")):
        mod = os.path.basename(ko)[:-3]
        try:
            dis = subprocess.run(["objdump", "-dr", ko], capture_output=True,
                                 text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            continue
        func = None
        for line in dis.splitlines():
            m = re.match(r"^[0-9a-f]+ <([^>]+)>:", line)
            if m:
                func = m.group(1).split(".")[0]
            elif func and allocs.search(line):
                found.add((mod, func))
    return found


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
               MMIO_OPS, totals)
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
    totals = {"sites": set(), "injected": 0}
    # REVIRT_DEBUG_SUBSET: the modern entropy device only, which takes
    # the core and PCI paths; a step costs seconds on the debug kernel
    # under TCG.
    subset = bool(os.environ.get("REVIRT_DEBUG_SUBSET"))
    for qdev, drv, kind, ops in TARGETS[:1] if subset else TARGETS:
        if qdev not in info:
            ktap.ok("faultinject: %s (%s) has a revirt device" % (kind, qdev), False,
                    "\n".join(v["line"] for v in info.values()))
            continue
        inject(ktap, rig.sh, rig.index(qdev), drv,
               "0x07" if qdev == "rng0" else "0x0f", kind, ops, totals)
    if not subset:
        inject_mmio(ktap, env, totals)
    report_coverage(ktap, env, totals)
    check_dma_rng(ktap, rig)
    check_dma_blk(ktap, rig)


def report_coverage(ktap, env, totals):
    """The totals, by module, and the functions that allocate directly
    but never had a failure injected (a diagnostic: some allocate only on
    the data path)."""
    hit = {(mod, f) for mod, f, _ in totals["sites"]}
    ktap.diag("faultinject: %d failures injected; %d distinct revirt error paths "
              "(call sites) in %d functions"
              % (totals["injected"], len(totals["sites"]), len(hit)))
    for mod in sorted({mod for mod, _ in hit}):
        ktap.diag("faultinject:   %s: %s" % (mod, " ".join(sorted(f for m, f in hit
                                                                if m == mod))))
    allocating = {(mod, f) for mod, f in
                  allocating_functions(os.path.join(env.srcdir, "drivers", "revirt"))
                  if mod in GOAL_MODULES}
    missed = sorted("%s:%s" % mf for mf in allocating - hit)
    ktap.diag("faultinject: allocating directly, never failed here: %s"
              % (" ".join(missed) or "none"))


def arm_dma_failures(times):
    """Guest script: revirt_vring_dma_map() fails @times times (-1: always),
    returning DMA_MAPPING_ERROR (the retval file takes no sign)."""
    return ("fi=%(fi)s/fail_function\n"
            "echo revirt_vring_dma_map > $fi/inject || exit 1\n"
            "echo 0xffffffffffffffff > $fi/revirt_vring_dma_map/retval || exit 1\n"
            "echo 100 > $fi/probability; echo 1 > $fi/interval; echo %(times)d > $fi/times\n"
            "echo N > $fi/task-filter; echo 1 > $fi/verbose\n" % {"fi": FI, "times": times})


DISARM_DMA = "echo '!revirt_vring_dma_map' > %s/fail_function/inject\n" % FI


def check_dma_rng(ktap, rig):
    n = rig.index("rng1")
    rig.kmsg_mark("test_97_dma")
    rc, out = rig.sh(
        arm_dma_failures(-1) +
        "rv_select %(n)d\n"
        # more than the hwrng core and the driver keep buffered
        "timeout 10 head -c 4096 /dev/hwrng >/dev/null 2>/tmp/dma.err; echo read_rc=$?\n"
        % {"n": n} + DISARM_DMA +
        "rv_entropy_ok %d && echo ENTROPY\n" % n, timeout=120)
    dm = rig.dmesg_after("test_97_dma")
    ktap.ok("faultinject: DMA mapping failures (fail_function on revirt_vring_dma_map): "
            "the read fails, entropy flows once the injection is off",
            re.search(r"read_rc=[1-9]", out) is not None and "ENTROPY" in out
            and any("FAULT_INJECTION" in l for l in dm),
            "%s\n%s" % (out, "\n".join(dm[-30:])))


def check_dma_blk(ktap, rig):
    """A mapping failure on the disk is -ENOMEM, which the block layer
    retries: the read completes with the same data."""
    n = rig.index("blk0")
    rig.kmsg_mark("test_97_dma_blk")
    rc, out = rig.sh(
        "d=$(ls $RV_BUS/devices/revirt%(n)d/block | head -n 1)\n"
        "a=$(dd if=/dev/$d bs=64k count=4 iflag=direct 2>/dev/null | md5sum)\n"
        % {"n": n} + arm_dma_failures(8) +
        "b=$(timeout 60 dd if=/dev/$d bs=64k count=4 iflag=direct 2>/dev/null | md5sum)\n"
        + DISARM_DMA +
        "echo \"before=$a\"; echo \"under=$b\"\n"
        "[ -n \"$a\" ] && [ \"$a\" = \"$b\" ] && echo SAME\n", timeout=180)
    dm = rig.dmesg_after("test_97_dma_blk")
    injected = sum("FAULT_INJECTION" in l for l in dm)
    ktap.ok("faultinject: DMA mapping failures on the disk: %d injected, the read "
            "is retried and returns the same data" % injected,
            "SAME" in out and injected > 0,
            "%s\n%s" % (out, "\n".join(dm[-30:])))
