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
then fails and entropy flows once the injection is off.  On the disk the
failure is -ENOMEM, which the block layer retries.  The disk holds a
pattern the host wrote into its image before boot (revirt_rig.disk_pattern,
its md5 computed on the host): every read that is to succeed must return
all its bytes with that md5 -- with no failure injected, and under a few
injected failures (retried).  Under failures that go on, the read cannot
complete: it must not return success while they last, and once the
injection is off it completes with the right data (or, had it failed, a
read after it must return the right data).

KASAN, lockdep, kmemleak and DMA-API debug watch all of it (run.py's
report line after this module).
"""

import glob
import os
import re
import subprocess
import time

from revirt_rig import DISK_PATTERN_START, GUEST_LIB, disk_md5
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
SUBSET_OPS = ("reset", "tbind")
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
    # REVIRT_DEBUG_SUBSET (make check): the modern entropy device only,
    # which takes the core and PCI paths, and of its operations the
    # transport bind and the reset: between them they reach every revirt
    # function that all four reach on it (the transport bind runs the
    # driver's probe, the reset the core's reprobe).  A step costs seconds
    # on the debug kernel under TCG; the four took 20 minutes.
    subset = bool(os.environ.get("REVIRT_DEBUG_SUBSET"))
    targets = [(q, d, k, SUBSET_OPS) for q, d, k, _ in TARGETS[:1]] if subset else TARGETS
    for qdev, drv, kind, ops in targets:
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


def arm_dma_failures(times, verbose=1):
    """Guest script: revirt_vring_dma_map() fails @times times (-1: always),
    returning DMA_MAPPING_ERROR (the retval file takes no sign); verbose 2
    dumps the stack of each (ratelimited: 10 in 5 s), 0 prints nothing.
    $fi/times counts down the failures left."""
    return ("fi=%(fi)s/fail_function\n"
            "echo revirt_vring_dma_map > $fi/inject || exit 1\n"
            "echo 0xffffffffffffffff > $fi/revirt_vring_dma_map/retval || exit 1\n"
            "echo 100 > $fi/probability; echo 1 > $fi/interval; echo %(times)d > $fi/times\n"
            "echo N > $fi/task-filter; echo %(verbose)d > $fi/verbose\n"
            % {"fi": FI, "times": times, "verbose": verbose})


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


# check_dma_blk's reads: DMA_BLK_COUNT blocks of DMA_BLK_BS bytes of the
# disk from block DMA_BLK_SKIP, all of them in revirt_rig's pattern.
DMA_BLK_BS = 64 << 10
DMA_BLK_SKIP = DISK_PATTERN_START // DMA_BLK_BS
DMA_BLK_COUNT = 4
DMA_BLK_BYTES = DMA_BLK_BS * DMA_BLK_COUNT
# mapping failures that go on: more than the block layer's retries of
# one read (every few ms) for DMA_BLK_PENDING seconds
DMA_BLK_PERSISTENT = 1000000
DMA_BLK_PENDING = 5

_READ_RE = re.compile(r"^(\w+): read rc=(\d+) bytes=(\d+) md5=([0-9a-f]*) err=(.*)$", re.M)


def blk_reads(out):
    """{tag: {"rc", "bytes", "md5", "err"}} of the "TAG: read ..." lines
    (rv_read_sum) in a guest script's output."""
    return {m.group(1): {"rc": int(m.group(2)), "bytes": int(m.group(3)),
                         "md5": m.group(4), "err": m.group(5).strip()}
            for m in _READ_RE.finditer(out)}


def read_problem(reads, tag, want):
    """Why read `tag` is not a complete read of the pattern ("" if it is)."""
    r = reads.get(tag)
    if r is None:
        return "%s: no read result" % tag
    if r["rc"] != 0 or r["bytes"] != DMA_BLK_BYTES or r["md5"] != want:
        return ("%s: rc=%d, %d of %d bytes, md5 %s (want %s) %s"
                % (tag, r["rc"], r["bytes"], DMA_BLK_BYTES, r["md5"] or "-", want, r["err"]))
    return ""


def read_cmd(tag, out_file=""):
    return ("echo \"%s: $(rv_read_sum /dev/$d %d %d %d %s)\"\n"
            % (tag, DMA_BLK_BS, DMA_BLK_SKIP, DMA_BLK_COUNT, out_file)
            if not out_file else
            "rv_read_sum /dev/$d %d %d %d %s &\n"
            % (DMA_BLK_BS, DMA_BLK_SKIP, DMA_BLK_COUNT, out_file))


def check_dma_blk(ktap, rig):
    """Mapping failures on the disk (see the module comment): each read
    that is to succeed returns the host's pattern, byte for byte; a read
    under failures that go on does not succeed until they stop."""
    n = rig.index("blk0")
    want = disk_md5(DMA_BLK_SKIP * DMA_BLK_BS, DMA_BLK_BYTES)
    disk = "d=$(ls $RV_BUS/devices/revirt%d/block | head -n 1)\n[ -n \"$d\" ] || exit 1\n" % n
    what = "%d KiB from %d KiB, md5 %s on the host" % (DMA_BLK_BYTES >> 10,
                                                        DMA_BLK_SKIP * DMA_BLK_BS >> 10, want)

    # a few failures: retried, the read completes with the pattern
    rig.kmsg_mark("test_97_dma_blk")
    rc, out = rig.sh(disk + read_cmd("before") + arm_dma_failures(8, verbose=2) +
                     read_cmd("under") +
                     "echo left=$(cat $fi/times)\n" + DISARM_DMA, timeout=180)
    dm = rig.dmesg_after("test_97_dma_blk")
    reads = blk_reads(out)
    m = re.search(r"^left=(\d+)", out, re.M)
    injected = 8 - int(m.group(1)) if m else 0
    # the stacks of the failures (verbose 2): those of the disk's requests
    stacks, cur = [], None
    for l in dm:
        if "FAULT_INJECTION: forcing a failure" in l:
            cur = []
            stacks.append(cur)
        elif cur is not None:
            cur.append(l)
            if "</TASK>" in l:
                cur = None
    on_disk = sum(any("rvblk_" in l for l in st) for st in stacks)
    problems = [p for p in (read_problem(reads, "before", want),
                            read_problem(reads, "under", want)) if p]
    if not on_disk:
        problems.append("no injected failure hit the disk's requests "
                        "(%d injected, %d stacks, none through rvblk_)" % (injected, len(stacks)))
    ktap.ok("faultinject: DMA mapping failures on the disk: %d injected (%d on the "
            "disk's requests), the read is retried and returns the host's pattern (%s)"
            % (injected, on_disk, what),
            rc == 0 and not problems,
            lambda: "%s\nrc=%d\n%s\n%s" % ("\n".join(problems), rc, out, "\n".join(dm[-40:])))

    # failures that go on: the read cannot complete while they last
    rc, out = rig.sh(
        disk + "rm -f /tmp/dma_blk.out\n" + arm_dma_failures(DMA_BLK_PERSISTENT, verbose=0) +
        read_cmd("pending", "/tmp/dma_blk.out") + "p=$!\n"
        "sleep %d\n" % DMA_BLK_PENDING +
        "echo left=$(cat $fi/times)\n"
        "if [ -e /tmp/dma_blk.out ]; then echo \"early: $(cat /tmp/dma_blk.out)\"; "
        "else echo still=pending; fi\n" + DISARM_DMA +
        "wait $p\n"
        "echo \"late: $(cat /tmp/dma_blk.out)\"\n" + read_cmd("after"), timeout=240)
    reads = blk_reads(out)
    m = re.search(r"^left=(\d+)", out, re.M)
    injected = DMA_BLK_PERSISTENT - int(m.group(1)) if m else 0
    problems = []
    early = reads.get("early")
    if "still=pending" in out:
        outcome = "pending while they lasted, then the pattern"
        p = read_problem(reads, "late", want)
        if p:
            problems.append("once the injection was off: " + p)
    elif early is None:
        outcome = "no result"
        problems.append("the read neither pending nor over after %ds" % DMA_BLK_PENDING)
    elif early["rc"] != 0 and early["bytes"] < DMA_BLK_BYTES:
        outcome = "failed, rc=%d, %d of %d bytes: %s" % (early["rc"], early["bytes"],
                                                          DMA_BLK_BYTES, early["err"])
    else:
        outcome = "returned while no buffer could be mapped"
        problems.append("the read was over while every mapping failed, not as a "
                        "failure: rc=%d, %d of %d bytes, md5 %s"
                        % (early["rc"], early["bytes"], DMA_BLK_BYTES, early["md5"]))
    if injected <= 0:
        problems.append("no failure injected (%d left of %d)" % (DMA_BLK_PERSISTENT - injected,
                                                                 DMA_BLK_PERSISTENT))
    p = read_problem(reads, "after", want)
    if p:
        problems.append("the read after: " + p)
    ktap.ok("faultinject: DMA mapping failures on the disk for %ds (%d injected): the read "
            "does not succeed while they last (%s); the next read returns the host's pattern"
            % (DMA_BLK_PENDING, injected, outcome),
            rc == 0 and not problems,
            lambda: "%s\nrc=%d\n%s\n%s" % ("\n".join(problems), rc, out,
                                              rig.dmesg_tail(40)))
