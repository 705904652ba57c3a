# SPDX-License-Identifier: GPL-2.0-only
"""PCI error recovery (AER) under I/O that no application notices.

One VM (q35, 2 vCPUs) with two pcie-root-ports: the QEMU virtio-blk-pci
disk "pd" behind rp1 and a virtio-rng-pci "rng0" behind rp2, both with
QEMU's AER capability (aer=on), driven by revirt_blk and revirt_rng.  The
guest kernel's AER service of the root ports handles what the host
injects with QEMU's pcie_aer_inject_error (HMP, through QMP).  The root
ports run at 5 GT/s (x-speed=5): at QEMU 7.2's default of 16 GT/s Linux
waits after the link reset for Data Link Layer Link Active, which
QEMU's port never sets again, and the recovery fails.

  pd   CYCLES errors under the stamping writer (rvblk-stamp, 4 jobs,
       O_DIRECT and O_DSYNC), alternately an uncorrectable fatal one (DLP,
       a data link protocol error: the AER core resets the link below the
       root port, and the function with it) and an uncorrectable
       non-fatal one (POISON_TLP: no link reset, the device is left as it
       is).  revirt-pci answers both with a virtio reset and the whole
       set-up at the slot reset.  The host waits for each set-up in its
       trace before the next error.
  rng0 RNG_CYCLES fatal errors while /dev/hwrng is read.

Checks: the guest's AER counters of the root port
(aer_rootport_total_err_fatal and _nonfatal) rose by the errors
injected, and the kernel said
"device recovery successful" and revirt "recovered from the PCI error"
for each; the writer saw 0 errors and every block it was told was
written reads back right (in the guest, and on the host image after QEMU
exited); the disk kept its name and an open descriptor still reads; no
request timed out; the host trace shows, per error, a reset followed by
the whole set-up 0 1 3 0xb 0xf, and pd's errors reset rng0 not at all;
both devices at DRIVER_OK with the features they had; /dev/hwrng serves
entropy; no WARNING, BUG or hung task in dmesg.
"""

import re
import threading
import time

from blkdrv import BLK_LIB, BlkVM, Disk, check_quiet, collapse, hx
from revirt_vm import QMPError, VMError, backend_path, by_vdev, guest_feature_names
from test_35_blkreset import LIB as STAMP_LIB, stamp_state, summary, writer_ok
from test_39_pm import notified, run_frame, setups

MODULES = ["revirt", "revirt_pci", "revirt_blk", "revirt_rng"]
MiB = 1 << 20
CYCLES = 20
RNG_CYCLES = 4
ERRORS = ("DLP", "POISON_TLP")
HUNG_SECS = 10
IO_TIMEOUT_MS = 5000
# one error's recovery, as the host trace shows it, on a loaded TCG host
RECOVER_SECS = 30
SERIES_SECS = 300
QIDS = ("pd", "rng0")

LIB = STAMP_LIB + r"""
# aer_count PORT KIND: the errors of KIND (fatal, nonfatal) the root port
# PORT received (the function's own counters miss the fatal ones: with the
# link down the kernel does not read the function's AER registers)
aer_count() {
	cat /sys/bus/pci/devices/$1/aer_rootport_total_err_$2 2>/dev/null
}
# aer_port PCI: the root port above the function
aer_port() {
	basename $(dirname $(readlink -f /sys/bus/pci/devices/$1))
}
# aer_state PORT: its AER counters, and the recoveries the kernel reported
aer_state() {
	echo fatal=$(aer_count $1 fatal) nonfatal=$(aer_count $1 nonfatal) \
		recovered=$(dmesg | grep -c 'device recovery successful') \
		revirt=$(dmesg | grep -c 'recovered from the PCI error')
}
"""

# The guest side of the pd series: the writer runs until revirt has
# recovered from every error the host injects (or SERIES_SECS).
SERIES = r"""
d=$(rvb_dev pd) && r=$(rvb_rv pd) || exit 1
pci=$(rv_pci_of $r); port=$(aer_port $pci)
exec 3</dev/$d
echo %(iot)d > /sys/block/$d/queue/io_timeout
g0=$(dmesg | grep -c 'gets no answer from the device')
n0=$(dmesg | grep -c 'recovered from the PCI error')
echo before: $(aer_state $port)
stamp_start $d 0 512 900
t0=$(now_ms)
while [ $(($(dmesg | grep -c 'recovered from the PCI error') - n0)) -lt %(cycles)d ] &&
		[ $(($(now_ms) - t0)) -lt %(secs)d000 ]; do
	usleep 200000
done
echo took_ms=$(($(now_ms) - t0))
echo after: $(aer_state $port)
stamp_stop $d
echo same=$(rvb_dev pd) was=$d fd3=$(dd bs=4096 count=1 <&3 2>/dev/null | wc -c)
echo timeouts=$(($(dmesg | grep -c 'gets no answer from the device') - g0))
echo status=$(cat $RV_BUS/devices/$r/status)
"""


class AerVM(BlkVM):
    def __init__(self, env):
        self.disk = Disk(env.tmp, "pd", 16 * MiB, props="num-queues=1,bus=rp1,aer=on")
        extra = ["-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=0x4,x-speed=5",
                 "-device", "pcie-root-port,id=rp2,bus=pcie.0,chassis=2,addr=0x5,x-speed=5",
                 "-device", "virtio-rng-pci,id=rng0,bus=rp2,aer=on"]
        super().__init__(env, "aer", [self.disk], machine="q35", smp=2, extra=extra)

    def sh(self, script, timeout=120):
        return self.vm.sh(BLK_LIB + LIB + script, timeout)

    def inject(self, qid, error):
        """pcie_aer_inject_error through QMP; returns HMP's answer."""
        return self.vm.qmp("human-monitor-command",
                           **{"command-line": "pcie_aer_inject_error %s %s" % (qid, error)})

    def setups_of(self, qid, since):
        seq = collapse(by_vdev(self.vm.status_writes(since)).get(self.ptr.get(qid), []))
        return setups(seq), seq

    def features(self):
        return {q: sorted(guest_feature_names(self.vm.virtio_status(backend_path(q))))
                for q in QIDS}


def check_setup(ktap, avm):
    rc, out = avm.sh(
        "for m in %s; do rv_insmod $m || exit 1; done\n"
        "d=$(rvb_wait pd) || exit 1; echo pd $d\n"
        "echo rng $(rv_wait_bound revirt_rng)\n"
        "rv_hung_arm %d\n"
        "for x in $(rvb_rv pd) $(rv_bound_to revirt_rng); do p=$(aer_port $(rv_pci_of $x)); "
        "echo aer $x $p fatal=$(aer_count $p fatal); done\n"
        "dmesg | grep -i 'aer' | tail -n 5" % (" ".join(MODULES), HUNG_SECS))
    ok = ktap.ok("aer: the disk pd and the entropy device are bound, each behind a root port "
                 "with the guest's AER service", rc == 0 and re.search(r"pd rvd\w+", out)
                 and re.search(r"rng revirt\d+", out)
                 and len(re.findall(r"^aer revirt\d+ \S+ fatal=\d+$", out, re.M)) == 2, out)
    if not ok:
        return False, False
    m0 = avm.mark()
    rc2, _ = avm.sh("d=$(rvb_dev pd) || exit 1\n"
                    "dd if=/dev/zero of=/dev/$d bs=4096 count=4 seek=4000 oflag=direct")
    m1 = avm.mark()
    avm.learn_ptr("pd", m0, m1)
    rc3, out3 = avm.sh("r=$(rv_bound_to revirt_rng) || exit 1; rv_entropy_ok ${r#revirt}")
    m2 = avm.mark()
    rng = notified(avm, m1, m2)
    if len(rng) == 1:
        avm.ptr["rng0"] = rng.pop()
    ok = ktap.ok("aer: both devices found in the host trace",
                 rc2 == 0 and rc3 == 0 and all(avm.ptr.get(q) for q in QIDS),
                 "pointers %r\n%s" % (avm.ptr, out3))
    return ok, "hung=%d" % HUNG_SECS in out


def inject_series(avm, qid, cycles, errors, m0, res):
    """The host side: one error at a time, each once the previous one's
    set-up is in the trace.  res["log"]: what went wrong, then how long
    the set-ups took to appear."""
    res["log"] = log = []
    took = []
    for i in range(cycles):
        err = errors[i % len(errors)]
        try:
            ans = avm.inject(qid, err).strip()
        except QMPError as e:
            log.append("error %d (%s): QMP: %s" % (i, err, e))
            break
        if not ans.startswith("OK id: %s " % qid):
            log.append("error %d (%s): HMP answered %r" % (i, err, ans))
        t0 = time.monotonic()
        n = 0
        while n <= i and time.monotonic() - t0 < RECOVER_SECS:
            time.sleep(0.2)
            n, _ = avm.setups_of(qid, m0)
        took.append(time.monotonic() - t0)
        if n <= i:
            log.append("error %d (%s): %d set-ups after %ds" % (i, err, n, RECOVER_SECS))
            break
        time.sleep(0.3 + (i % 4) * 0.2)
    if took:
        log.append("%d errors injected, each set-up in the trace after %.1f-%.1f s"
                   % (len(took), min(took), max(took)))


def check_disk(ktap, avm, feats0):
    tag = "aer: pd"
    m0 = avm.mark()
    res = {}

    def guest():
        try:
            res["out"] = avm.sh(SERIES % dict(iot=IO_TIMEOUT_MS, cycles=CYCLES,
                                              secs=SERIES_SECS), timeout=SERIES_SECS + 120)
        except VMError as e:
            res["err"] = e
    t = threading.Thread(target=guest, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while (len(avm.vm.trace_events(m0, None, event="virtio_blk_handle_write")) < 8
           and time.monotonic() < deadline):
        time.sleep(0.2)
    host = {}
    inject_series(avm, "pd", CYCLES, ERRORS, m0, host)
    t.join(SERIES_SECS + 150)
    if "out" not in res:
        raise res.get("err") or VMError("the AER series script did not return")
    rc, out = res["out"]
    m1 = avm.mark()
    ktap.diag("%s: host: %s" % (tag, "; ".join(host["log"])))
    ktap.diag("%s: %s; writer: %s" % (tag, " ".join(
        l for l in out.splitlines() if l.startswith(("before:", "after:", "took_ms="))),
        summary(out)))
    b = dict(re.findall(r"(\w+)=(\d+)", out.split("before:", 1)[-1].split("\n", 1)[0]))
    a = dict(re.findall(r"(\w+)=(\d+)", out.split("after:", 1)[-1].split("\n", 1)[0]))
    d = {k: int(a.get(k, 0)) - int(b.get(k, 0)) for k in ("fatal", "nonfatal", "recovered",
                                                            "revirt")}
    nfatal = (CYCLES + 1) // 2
    ktap.ok("%s: %d errors injected (%d fatal DLP, %d non-fatal POISON_TLP): the guest's AER "
            "counts them, and recovers from each" % (tag, CYCLES, nfatal, CYCLES - nfatal),
            d["fatal"] == nfatal and d["nonfatal"] == CYCLES - nfatal
            and d["recovered"] == CYCLES and d["revirt"] == CYCLES,
            "counters rose by %r\n%s\n%s" % (d, "\n".join(host["log"]), out))
    ktap.ok("%s: the stamping writer across them: 0 errors, every acknowledged block reads "
            "back right" % tag, rc == 0 and writer_ok(out), out)
    m = re.search(r"same=(\S+) was=(\S+)", out)
    ktap.ok("%s: the disk stays: same name, an open descriptor still reads, no request "
            "timed out, DRIVER_OK" % tag,
            m and m.group(1) == m.group(2) and "fd3=4096" in out and "timeouts=0" in out
            and "status=0x0f" in out, out)
    raw = by_vdev(avm.vm.status_writes(m0, m1))
    seq = collapse(raw.get(avm.ptr["pd"], []))
    n = setups(seq)
    ktap.ok("%s: the host traces %d resets of pd, each followed by the whole set-up "
            "0 1 3 0xb 0xf (saw %d)" % (tag, CYCLES, n), n >= CYCLES,
            "collapsed status writes (%d): %s" % (len(seq), hx(seq[:100])))
    rseq = collapse(raw.get(avm.ptr["rng0"], []))
    ktap.ok("%s: the errors of pd leave rng0 alone (no status write)" % tag, not rseq,
            hx(rseq))
    feats = avm.features()
    ktap.ok("%s: the host sees the same features accepted as before" % tag,
            feats == feats0, "before %r\nnow %r" % (feats0, feats))
    return stamp_state(out) if writer_ok(out) else []


def check_rng(ktap, avm):
    tag = "aer: rng0"
    m0 = avm.mark()
    host = {}
    inject_series(avm, "rng0", RNG_CYCLES, ERRORS[:1], m0, host)
    n, seq = avm.setups_of("rng0", m0)
    rc, out = avm.sh("r=$(rv_bound_to revirt_rng) || exit 1\n"
                     "rv_entropy_ok ${r#revirt} && echo entropy-ok\n"
                     "echo status=$(cat $RV_BUS/devices/$r/status)")
    ktap.diag("%s: host: %s" % (tag, "; ".join(host["log"])))
    ktap.ok("%s: %d fatal errors: the host traces a reset and the whole set-up for each, and "
            "/dev/hwrng serves entropy afterwards at DRIVER_OK" % (tag, RNG_CYCLES),
            n >= RNG_CYCLES and rc == 0 and "entropy-ok" in out and "status=0x0f" in out,
            "set-ups %d, status writes %s\n%s\n%s" % (n, hx(seq), "\n".join(host["log"]), out))


def run(ktap, env):
    if env.skip_unbuilt(ktap, "aer: PCI error recovery under I/O", MODULES):
        return
    avm = AerVM(env)

    def body(hung, state):
        state += check_disk(ktap, avm, avm.features())
        check_rng(ktap, avm)
        rc, out = avm.sh("sleep 1; echo hung=$(dmesg | grep -c 'blocked for more than')\n"
                         "dmesg | grep -A3 'blocked for more than' | head -n 20", timeout=60)
        check_quiet(ktap, avm, "aer", hung, HUNG_SECS, out)
    run_frame(ktap, avm, "aer", check_setup, body)
