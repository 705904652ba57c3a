# SPDX-License-Identifier: GPL-2.0-only
"""Issue 7, item 4: revirt built into the kernel (CONFIG_REVIRT=y, the
in-tree build of scripts/revirt-intree) beside a built-in virtio-pci.

Runs only when the initramfs carries no revirt module and the guest has
the revirt bus at boot; with modules, test_10 to test_60 cover the same.
At boot the kernel's virtio-pci binds the devices first (it links before
revirt) and init's rv_takeover hands them to revirt-pci, which is there
already.  Then, per entropy device: unbind and bind on the revirt bus and
on the PCI bus, entropy after each bind; the host sees 0 then 1 at each
unbind and the probe sequence at each bind, for that device only.
"""

from revirt_vm import collapse
from revirt_rig import (KIND, MODULES, RNGS, driver_ok_value, expected_probe,
                        kernel_bad_lines, pci_addr)

SLOT = {"rng0": 4, "rng1": 5, "rng2": 6}
CYCLES = 3


def hx(vals):
    return " ".join("0x%x" % v for v in vals) or "(none)"


def run(ktap, env):
    what = "builtin: revirt built into the kernel"
    if not env.missing(MODULES):
        ktap.skip(what, "revirt is built as modules here (test_10 to test_60)")
        return
    rig = env.rig()
    rc, out = rig.sh("[ -d $RV_BUS ] && echo builtin")
    if "builtin" not in out:
        ktap.skip(what, "neither modules nor a built-in revirt (/sys/bus/revirt)")
        return
    ok = ktap.ok
    rig.kmsg_mark("test_95")

    info = rig.info()
    ok("builtin: revirt-pci took the four devices at boot",
       all(q in info for q in RNGS + ["blk0"]),
       "\n".join(v["line"] for v in info.values()) or "(no revirt device)")
    for q in RNGS:
        d = info.get(q, {})
        ok("builtin: %s (%s) bound to revirt_rng, DRIVER_OK" % (q, KIND[q]),
           d.get("driver") == "revirt_rng"
           and d.get("status_val") == driver_ok_value(q), d.get("line"))
    rig.map_all([q for q in RNGS if q in info])

    for q in RNGS:
        if q not in info:
            continue
        name = info[q]["name"]
        addr = pci_addr(SLOT[q])
        bus_cycle = ("echo %s > $RV_BUS/drivers/revirt_rng/unbind && "
                     "echo %s > $RV_BUS/drivers/revirt_rng/bind"
                     % (name, name))
        pci_cycle = ("echo %s > $RV_PCI/drivers/revirt-pci/unbind && "
                     "echo %s > $RV_PCI/drivers/revirt-pci/bind" % (addr, addr))
        for label, script, want in (
                ("revirt bus", bus_cycle, [0, 1] + expected_probe(q)),
                ("PCI bus", pci_cycle, [0, 1, 0, 1] + expected_probe(q))):
            m0 = rig.mark()
            rc, out = rig.sh("i=0; while [ $i -lt %d ]; do i=$((i + 1)); %s || exit 1; "
                             "n=$(rv_name %s | sed 's/revirt//'); "
                             "rv_entropy_ok $n || exit 1; done"
                             % (CYCLES, script, addr), timeout=240)
            w = rig.writes(m0, rig.mark())
            seq = collapse(w.get(q, []))
            # Only the device itself: entropy reads write no status.
            others = [k for k in w if k != q]
            ok("builtin: %s: %d unbind/bind cycles on the %s, entropy each time"
               % (q, CYCLES, label), rc == 0, out)
            ok("builtin: %s: host sees %s per %s cycle, this device only"
               % (q, hx(want), label), seq == want * CYCLES and not others,
               "status writes: %s" % rig.fmt(w))

    bad = kernel_bad_lines(rig.dmesg_after("test_95"))
    ok("builtin: no kernel warnings", not bad, "\n".join(bad[:40]))
