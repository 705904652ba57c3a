# SPDX-License-Identifier: GPL-2.0-only
"""Issue 2, item 4: 100 unbind/bind cycles of revirt_rng on one device and
20 unload/load cycles of each module, entropy read after every cycle, then
no WARNING/BUG/Oops/Call Trace in dmesg, and as many kmalloc objects
allocated by revirt code live as before (slub_debug=U, see rv_live_objects).
The loops run inside the guest,
one script per loop; the host checks the status writes of the bind loop.
"""

from revirt_vm import collapse
from revirt_rig import RNGS, driver_ok_value, expected_probe, kernel_bad_lines, live_objects

DEV = "rng1"
BIND_CYCLES = 100
MOD_CYCLES = 20

# what each module loop unloads (in order) and loads again (in order)
MOD_LOOPS = [
    ("revirt_rng", ["revirt_rng"]),
    ("revirt_pci", ["revirt_rng", "revirt_pci"]),
    ("revirt", ["revirt_rng", "revirt_pci", "revirt"]),
]


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

    for name, mods in MOD_LOOPS:
        unload = " ".join("rmmod %s || { echo \"cycle $i: rmmod %s failed\"; exit 1; };" % (m, m)
                          for m in mods)
        load = " ".join("rv_insmod %s || { echo \"cycle $i: insmod %s failed\"; exit 1; };"
                        % (m, m) for m in reversed(mods))
        rc, out = rig.sh(
            "i=0\n"
            "while [ $i -lt %d ]; do\n"
            "  i=$((i + 1))\n"
            "  %s\n"
            "  %s\n"
            "%s"
            "done\n"
            "echo cycles=$i\n" % (MOD_CYCLES, unload, load, entropy_all_script()),
            timeout=400)
        ok("stress: %d unload/load cycles of %s with entropy from all three rngs"
           % (MOD_CYCLES, name),
           rc == 0 and "cycles=%d" % MOD_CYCLES in out,
           lambda: "rc=%d\n%s\n%s" % (rc, out, rig.dmesg_tail()))

    info = rig.info()
    states = {q: (info.get(q, {}).get("status_val"), rig.host_status(q)) for q in RNGS + ["blk0"]}
    ok("stress: afterwards every rng is DRIVER_OK and blk0 ACKNOWLEDGE, guest and host",
       all(states[q] == (driver_ok_value(q), driver_ok_value(q)) for q in RNGS)
       and states["blk0"] == (1, 1),
       "guest/host status: %s" % {q: tuple("0x%x" % v if v is not None else None for v in s)
                                  for q, s in states.items()})

    if live_before < 0:
        ktap.skip("stress: no revirt kmalloc object leaked by the cycles",
                  "no slub user tracking in this kernel")
    else:
        live_after = live_objects(rig.vm, want=live_before)
        ok("stress: no revirt kmalloc object leaked by the cycles (%d live before, %d after)"
           % (live_before, live_after), live_after == live_before)

    dm = rig.dmesg_after("test_60")
    bad = kernel_bad_lines(dm)
    ok("stress: dmesg has no WARNING, BUG, Oops, Call Trace", not bad,
       "\n".join(bad[:60]))
