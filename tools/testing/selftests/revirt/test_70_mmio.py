# SPDX-License-Identifier: GPL-2.0-only
"""revirt_mmio on QEMU's microvm: virtio-mmio version 1 (force-legacy=true)
and version 2 (force-legacy=false) entropy devices found through ACPI
(LNRO0005), and the same devices given with the device= parameter on a
microvm without ACPI.

Guest side: both devices probe, give entropy, survive unbind/bind and
module reload cycles; sysfs status.  Host side: QMP status, and the status
writes of the trace: reset (0) then ACKNOWLEDGE (1) at registration and at
every unbind, the probe sequence at every bind.
"""

from revirt_vm import VM, VMError, by_vdev, collapse, status_value
from revirt_rig import GUEST_LIB, kernel_bad_lines

MODULES = ["revirt", "revirt_mmio", "revirt_rng"]
BIND_CYCLES = 100
MOD_CYCLES = 20
DEVICES = ["mrng0", "mrng1"]

# microvm without ACPI passes its devices as virtio_mmio.device=... on the
# kernel command line; hand the same strings to revirt_mmio as device=.
PARAMS_FROM_CMDLINE = (
    "tr ' ' '\\n' </proc/cmdline | sed -n 's/^virtio_mmio.device=/device=/p'")


def probe_seq(version):
    return [3, 7] if version == 1 else [3, 0xb, 0xf]


def ok_status(version):
    return 7 if version == 1 else 0xf


def boot(env, version, acpi):
    devices = ["-global", "virtio-mmio.force-legacy=%s"
               % ("true" if version == 1 else "false")]
    for qid in DEVICES:
        devices += ["-device", "virtio-rng-device,id=%s" % qid]
    # microvm has no HPET or PM timer: under TCG the kernel's TSC
    # calibration against the PIT fails now and then and boot hangs (1 in
    # 4 here); tsc_early_khz gives it the frequency instead.
    append = "tsc_early_khz=2000000"
    # Without ACPI, poweroff cannot turn the machine off: reboot, which
    # -no-reboot turns into an exit, by a triple fault.
    if not acpi:
        append += " reboot=t"
    return VM(devices=devices, machine="microvm,acpi=%s" % ("on" if acpi else "off"),
              kernel=env.kernel, initrd=env.initrd, extra_append=append,
              name="microvm-v%d" % version)


def host_status(vm, qid):
    return status_value(vm.virtio_status("/machine/peripheral/%s" % qid))


def guest(vm, script, timeout=120):
    return vm.sh(GUEST_LIB + script, timeout=timeout)


def check_probe(ktap, vm, version, tag, load):
    ok = ktap.ok
    m0 = vm.trace_mark()
    rc, out = guest(vm, "rv_insmod revirt && %s && rv_insmod revirt_rng && rv_info" % load)
    m1 = vm.trace_mark()
    ok("%s: revirt_mmio and revirt_rng load" % tag, rc == 0, out)
    lines = [l for l in out.splitlines() if l.startswith("revirt")]
    want = "status=0x%02x driver=revirt_rng" % ok_status(version)
    ok("%s: two devices bound to revirt_rng, status 0x%02x"
       % (tag, ok_status(version)),
       len(lines) == 2 and all(want in l for l in lines), out)

    writes = by_vdev(vm.status_writes(m0, m1))
    seqs = [collapse(v) for v in writes.values()]
    want_seq = [0, 1] + probe_seq(version)
    ok("%s: host sees each device reset, ACKNOWLEDGE, then %s" % (tag, probe_seq(version)),
       len(seqs) == 2 and all(s == want_seq for s in seqs), "status writes: %s" % writes)

    for qid in DEVICES:
        st = host_status(vm, qid)
        ok("%s: host QMP status of %s is 0x%x" % (tag, qid, ok_status(version)),
           st == ok_status(version), "QMP status 0x%x" % st)

    rc, out = guest(vm, "for n in 0 1; do rv_entropy_ok $n || exit 1; done")
    ok("%s: entropy from both devices" % tag, rc == 0, out)


def check_cycles(ktap, vm, version, tag):
    ok = ktap.ok
    m0 = vm.trace_mark()
    rc, out = guest(vm,
                    "i=0\n"
                    "while [ $i -lt %d ]; do\n"
                    "  i=$((i + 1))\n"
                    "  echo revirt0 > $RV_BUS/drivers/revirt_rng/unbind || exit 1\n"
                    "  [ \"$(cat $RV_BUS/devices/revirt0/status)\" = 0x01 ] || { echo \"cycle $i: status $(cat $RV_BUS/devices/revirt0/status)\"; exit 1; }\n"
                    "  echo revirt0 > $RV_BUS/drivers/revirt_rng/bind || exit 1\n"
                    "  rv_entropy_ok 0 || { echo \"cycle $i\"; exit 1; }\n"
                    "done\n"
                    "echo cycles=$i\n" % BIND_CYCLES, timeout=400)
    m1 = vm.trace_mark()
    ok("%s: %d unbind/bind cycles with entropy each time" % (tag, BIND_CYCLES),
       rc == 0 and "cycles=%d" % BIND_CYCLES in out, out)
    writes = by_vdev(vm.status_writes(m0, m1))
    want = ([0, 1] + probe_seq(version)) * BIND_CYCLES
    seqs = {k: collapse(v) for k, v in writes.items()}
    ok("%s: host sees reset then ACKNOWLEDGE at every unbind, one device only" % tag,
       len(seqs) == 1 and list(seqs.values())[0] == want,
       "devices written: %d; first writes: %s"
       % (len(seqs), {k: v[:12] for k, v in seqs.items()}))

    m0 = vm.trace_mark()
    rc, out = guest(vm,
                    "i=0\n"
                    "while [ $i -lt %d ]; do\n"
                    "  i=$((i + 1))\n"
                    "  rmmod revirt_rng && rmmod revirt_mmio || exit 1\n"
                    "  rv_insmod revirt_mmio && rv_insmod revirt_rng || exit 1\n"
                    "  for n in $(ls $RV_BUS/devices | sed 's/revirt//'); do\n"
                    "    rv_entropy_ok $n || { echo \"cycle $i\"; exit 1; }\n"
                    "  done\n"
                    "done\n"
                    "echo cycles=$i\n" % MOD_CYCLES, timeout=400)
    m1 = vm.trace_mark()
    ok("%s: %d unload/load cycles of revirt_mmio with entropy each time"
       % (tag, MOD_CYCLES), rc == 0 and "cycles=%d" % MOD_CYCLES in out, out)
    writes = by_vdev(vm.status_writes(m0, m1))
    # unload: driver remove resets (0, 1), transport removal resets (0);
    # load: registration 0, 1, then the probe.
    cycle = [0, 1, 0, 1] + probe_seq(version)
    seqs = [collapse(v) for v in writes.values()]
    ok("%s: host sees reset then ACKNOWLEDGE around every reload" % tag,
       len(seqs) == 2 and all(s == cycle * MOD_CYCLES for s in seqs),
       "first writes: %s" % [s[:16] for s in seqs])


def check_clean(ktap, vm, tag):
    rc, out = guest(vm, "dmesg")
    bad = kernel_bad_lines(out.splitlines())
    ktap.ok("%s: no warning or oops in dmesg" % tag, rc == 0 and not bad,
            "\n".join(bad[:40]))


def run_acpi(ktap, env, version):
    tag = "mmio v%d acpi" % version
    try:
        vm = boot(env, version, acpi=True)
    except VMError as e:
        ktap.ok("%s: microvm boots" % tag, False, str(e))
        return
    with vm:
        check_probe(ktap, vm, version, tag, "rv_insmod revirt_mmio")
        check_cycles(ktap, vm, version, tag)
        check_clean(ktap, vm, tag)


def run_param(ktap, env):
    tag = "mmio device="
    ok = ktap.ok
    try:
        vm = boot(env, 2, acpi=False)
    except VMError as e:
        ktap.ok("%s: microvm without ACPI boots" % tag, False, str(e))
        return
    with vm:
        rc, out = guest(vm, "rv_insmod revirt && "
                        "insmod $RV_MODDIR/revirt_mmio.ko device=0x200@nowhere; echo rc=$?; "
                        "dmesg | tail -n 3; ls /sys/module | grep -c '^revirt_mmio$'")
        ok("%s: a malformed device= fails the load with a clear error" % tag,
           "rc=0" not in out and "expected <size>@<base>:<irq>" in out
           and out.rstrip().endswith("0"), out)
        check_probe(ktap, vm, 2, tag,
                    "rv_insmod revirt_mmio $(%s)" % PARAMS_FROM_CMDLINE)
        rc, out = guest(vm, "cat /sys/module/revirt_mmio/parameters/device")
        ok("%s: the device parameter reads back both devices" % tag,
           rc == 0 and out.count("@0x") == 2, out)
        check_clean(ktap, vm, tag)


def run(ktap, env):
    if env.skip_unbuilt(ktap, "mmio: microvm entropy devices", MODULES):
        return
    run_acpi(ktap, env, 1)
    run_acpi(ktap, env, 2)
    run_param(ktap, env)
