# SPDX-License-Identifier: GPL-2.0-only
"""Issue 2, item 4: 100 unbind/bind cycles of revirt_rng on one device and
20 unload/load cycles of each module, entropy read after every cycle, then
no WARNING/BUG/Oops/Call Trace in dmesg, and as many kmalloc objects
allocated by revirt code live as before (slub_debug=U, see rv_live_objects;
an unavailable count is a not ok, a kernel that cannot count a SKIP).

The bind loop runs inside the guest, one script; the host checks the
status writes it saw during it.  The module loops run a script per unload
and per load (with the entropy reads), so that the host sees each apart:
every unload must reset each device it affects (status 0 in the host's
trace before the load), every load must register and probe them again,
and the devices a loop should not touch must see no status write at all.
"""

from revirt_vm import VMError, collapse
from revirt_rig import (RNGS, driver_ok_value, expected_probe, kernel_bad_lines,
                        live_check, live_objects)

DEV = "rng1"
BIND_CYCLES = 100
MOD_CYCLES = 20

# what each module loop unloads (in order) and loads again (in order)
MOD_LOOPS = [
    ("revirt_rng", ["revirt_rng"]),
    ("revirt_pci", ["revirt_rng", "revirt_pci"]),
    ("revirt", ["revirt_rng", "revirt_pci", "revirt"]),
]
PCI_DEVS = RNGS + ["blk0"]

# The distinct states (revirt_vm.collapse()) the host sees of one device
# while a module unloads or loads.  Unloading revirt_rng removes the
# driver from each rng, which resets it (0) and leaves it acknowledged
# (1); unloading revirt_pci unregisters every device, resetting it once
# more (0); loading revirt_pci registers every device, reset and
# acknowledged (0 1); loading revirt_rng probes each rng.  revirt itself
# has no device.
UNLOAD_SEEN = {
    "revirt_rng": lambda q: [0, 1] if q in RNGS else [],
    "revirt_pci": lambda q: [0],
    "revirt": lambda q: [],
}
LOAD_SEEN = {
    "revirt": lambda q: [],
    "revirt_pci": lambda q: [0, 1],
    "revirt_rng": lambda q: expected_probe(q) if q in RNGS else [],
}


def expected_cycle(mods):
    """({qdev: states}, {qdev: states}) the host must see for the unload
    and for the load of one cycle; devices not named must see nothing."""
    unload, load = {}, {}
    for q in PCI_DEVS:
        u = collapse(sum((UNLOAD_SEEN[m](q) for m in mods), []))
        l = collapse(sum((LOAD_SEEN[m](q) for m in reversed(mods)), []))
        if u:
            unload[q] = u
        if l:
            load[q] = l
    return unload, load


def fmt_seen(seen):
    """"rng1,rng2: 0 1 3 b f; blk0: 0 1" (devices with the same states together)."""
    groups = {}
    for q, vals in seen.items():
        groups.setdefault(tuple(vals), []).append(str(q))
    return "; ".join("%s: %s" % (",".join(qs), " ".join("%x" % v for v in vals) or "-")
                     for vals, qs in groups.items()) or "nothing"


def entropy_all_script():
    # revirt indexes can change when revirt_pci re-registers the devices, so
    # read from every revirt_rng.N that rng_available lists and insist on 3.
    return (
        "set -- $(tr ' ' '\\n' < $RV_HWRNG/rng_available | grep '^revirt_rng\\.')\n"
        "[ $# -eq 3 ] || { echo \"cycle $i: rng_available: $(cat $RV_HWRNG/rng_available)\"; exit 1; }\n"
        "for r in \"$@\"; do rv_entropy_ok ${r#revirt_rng.} || { echo \"cycle $i: $r\"; exit 1; }; done\n")


def run(ktap, env):
    if env.skip_unbuilt(ktap, "stress: bind/unbind and module reload cycles"):
        return
    rig = env.rig()
    ok = ktap.ok
    rig.load_all()
    rig.kmsg_mark("test_60")
    n = rig.index(DEV)
    rig.vdev(DEV)

    live_before = live_objects(rig.vm)
    ma = rig.mark()
    rc, out = rig.sh(
        "i=0\n"
        "while [ $i -lt %d ]; do\n"
        "  i=$((i + 1))\n"
        "  echo revirt%d > $RV_BUS/drivers/revirt_rng/unbind || { echo \"cycle $i: unbind failed\"; exit 1; }\n"
        "  echo revirt%d > $RV_BUS/drivers/revirt_rng/bind || { echo \"cycle $i: bind failed\"; exit 1; }\n"
        "  rv_entropy_ok %d || { echo \"cycle $i: no entropy\"; exit 1; }\n"
        "done\n"
        "echo cycles=$i\n" % (BIND_CYCLES, n, n, n), timeout=400)
    mb = rig.mark()
    ok("stress: %d unbind/bind cycles of %s with entropy each time" % (BIND_CYCLES, DEV),
       rc == 0 and "cycles=%d" % BIND_CYCLES in out,
       lambda: "rc=%d\n%s\n%s" % (rc, out, rig.dmesg_tail()))
    w = rig.writes(ma, mb)
    want = ([0, 1] + expected_probe(DEV)) * BIND_CYCLES
    seq = collapse(w.get(DEV, []))
    ok("stress: host saw (0 1 %s) x%d for %s and nothing for the others"
       % (" ".join("0x%x" % v for v in expected_probe(DEV)), BIND_CYCLES, DEV),
       seq == want and list(w) == [DEV],
       lambda: "got %d distinct-state writes (want %d); first differences at %s\nothers: %s"
       % (len(seq), len(want),
          next((i for i, (a, b) in enumerate(zip(seq, want)) if a != b), min(len(seq), len(want))),
          {k: len(v) for k, v in w.items() if k != DEV}))

    # the host check of the module loops names every device it sees
    try:
        rig.map_all(PCI_DEVS)
        unmapped = None
    except VMError as e:
        unmapped = str(e)
    for name, mods in MOD_LOOPS:
        reload_loop(ktap, rig, name, mods, unmapped)

    info = rig.info()
    states = {q: (info.get(q, {}).get("status_val"), rig.host_status(q)) for q in RNGS + ["blk0"]}
    ok("stress: afterwards every rng is DRIVER_OK and blk0 ACKNOWLEDGE, guest and host",
       all(states[q] == (driver_ok_value(q), driver_ok_value(q)) for q in RNGS)
       and states["blk0"] == (1, 1),
       "guest/host status: %s" % {q: tuple("0x%x" % v if v is not None else None for v in s)
                                  for q, s in states.items()})

    live_check(ktap, rig.vm, "stress: no revirt kmalloc object leaked by the cycles",
               live_before, skip_impossible=True)

    dm = rig.dmesg_after("test_60")
    bad = kernel_bad_lines(dm)
    ok("stress: dmesg has no WARNING, BUG, Oops, Call Trace", not bad,
       "\n".join(bad[:60]))


def reload_loop(ktap, rig, name, mods, unmapped):
    """MOD_CYCLES cycles of unloading mods (in order) and loading them again
    (in reverse), with entropy from every rng after each load: one line for
    the guest's side, one for the status writes the host saw."""
    unload = " ".join("rmmod %s || { echo \"cycle $i: rmmod %s failed\"; exit 1; };" % (m, m)
                      for m in mods)
    load = " ".join("rv_insmod %s || { echo \"cycle $i: insmod %s failed\"; exit 1; };"
                    % (m, m) for m in reversed(mods))
    want_unload, want_load = expected_cycle(mods)
    rc, out, done = 0, "", 0
    marks = [rig.mark()]          # before each unload and each load, and at the end
    for i in range(1, MOD_CYCLES + 1):
        rc, out = rig.sh("i=%d\n%s\necho unloaded\n" % (i, unload), timeout=120)
        marks.append(rig.mark())
        if rc == 0:
            rc, out = rig.sh("i=%d\n%s\n%secho loaded\n" % (i, load, entropy_all_script()),
                             timeout=120)
        marks.append(rig.mark())
        if rc != 0:
            break
        done = i
    bad = []            # (cycle, "unload" | "load", seen)
    windows = rig.writes_between(marks)
    for k, w in enumerate(windows):
        got = {q: collapse(v) for q, v in w.items()}
        if got != (want_load if k % 2 else want_unload):
            bad.append((k // 2 + 1, "load" if k % 2 else "unload", got))
    ktap.ok("stress: %d unload/load cycles of %s with entropy from all three rngs"
            % (MOD_CYCLES, name), done == MOD_CYCLES,
            lambda: "cycle %d: rc=%d\n%s\n%s" % (done + 1, rc, out, rig.dmesg_tail()))
    ktap.ok("stress: host saw each of the %d cycles of %s: unload %s; load %s; "
            "nothing for the others" % (MOD_CYCLES, name, fmt_seen(want_unload),
                                        fmt_seen(want_load)),
            not unmapped and not bad and done == MOD_CYCLES,
            lambda: "\n".join(
                ([unmapped] if unmapped else []) +
                (["the guest's loop stopped in cycle %d" % (done + 1)]
                 if done < MOD_CYCLES else []) +
                (["%d of %d cycles differ; the first differences:"
                  % (len({c for c, _, _ in bad}), len(windows) // 2)] if bad else []) +
                ["cycle %d %s: %s" % (c, what, fmt_seen(got)) for c, what, got in bad[:8]]))
