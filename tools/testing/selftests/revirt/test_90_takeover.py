# SPDX-License-Identifier: GPL-2.0-only
"""Issue 7, item 2: a device handed between the kernel's virtio-pci and
revirt-pci, and back, several times (Documentation/revirt/takeover.rst).

One virtio-rng-pci at 00:04.0 in a VM of its own, booted with
revirt.takeover=off so that the kernel's driver keeps it: virtio-pci is
built in on 6.12 and a module on 6.1 (loaded here from the initramfs, with
virtio_rng, through KMODS).  Each cycle:

  take:  unbind from virtio-pci; driver_override=revirt-pci; bind
  give:  unbind from revirt-pci; clear driver_override; bind virtio-pci

Guest side: the PCI driver link, which hwrng exists, entropy from
/dev/hwrng with rng_current set to the owner's hwrng (virtio_rng.N or
revirt_rng.N).  Host side: the device's status writes; every owner that
lets go leaves a reset (0) behind, and every new owner starts with a
reset: reset, ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK.  The
virtio_rng_request trace shows the device served each read.
"""

import subprocess

from revirt_vm import VM, collapse
from revirt_rig import (GUEST_LIB, MODULES, kernel_bad_lines, kernel_modules_base,
                        kmods_initrd)

CYCLES = 3
ADDR = "0000:00:04.0"
KMODS = "virtio_pci virtio_rng"
ACQUIRE = [0, 1, 3, 0xb, 0xf]


def hx(vals):
    return " ".join("0x%x" % v for v in vals) or "(none)"


def kernel_has_virtio_rng(kver):
    return subprocess.run(["modinfo", "-b", kernel_modules_base(), "-k", kver,
                           "-n", "virtio_rng"],
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


class Takeover:
    def __init__(self, ktap, env):
        self.ktap = ktap
        self.vm = VM(devices=["-device", "virtio-rng-pci,id=trng,addr=0x4"],
                     kernel=env.kernel, initrd=kmods_initrd(env, KMODS.split(), "takeover"),
                     extra_append="revirt.takeover=off",
                     trace_events=("virtio_set_status", "virtio_rng_request"),
                     name="takeover-vm")

    def sh(self, script, timeout=120):
        return self.vm.sh(GUEST_LIB + script, timeout)

    def owner(self):
        rc, out = self.sh("rv_pci_driver %s" % ADDR)
        return out.strip()

    def hwrngs(self):
        rc, out = self.sh("cat $RV_HWRNG/rng_available")
        return out.split()

    def step(self, script):
        """Run script; return (rc, out, collapsed status writes)."""
        m0 = self.vm.trace_mark()
        rc, out = self.sh(script)
        m1 = self.vm.trace_mark()
        return rc, out, collapse([v for _, v in self.vm.status_writes(m0, m1)])

    def requests(self, script):
        """Run script; return (rc, out, number of rng requests with bytes)."""
        m0 = self.vm.trace_mark()
        rc, out = self.sh(script)
        n = sum(1 for _, a in self.vm.trace_events(m0, event="virtio_rng_request")
                if " 0 bytes requested" not in a)
        return rc, out, n

    def entropy(self, tag, prefix):
        ok = self.ktap.ok
        names = [n for n in self.hwrngs() if n.startswith(prefix)]
        if len(names) != 1:
            ok("%s: entropy from %s*" % (tag, prefix), False,
               "hwrngs: %r" % self.hwrngs())
            return
        rc, out, n = self.requests("rv_hwrng_ok %s" % names[0])
        ok("%s: entropy from %s, served by the device" % (tag, names[0]),
           rc == 0 and n > 0, "rc=%d, %d requests in the trace\n%s" % (rc, n, out))

    def hand(self, tag, old, new, release, acquire, prefix, gone):
        """Move the device from driver old to new in two steps."""
        ok = self.ktap.ok
        rc, out, seq = self.step(release)
        ok("%s: unbind from %s; it leaves the device reset (0)" % (tag, old),
           rc == 0 and 0 in seq and self.owner() == "-",
           "rc=%d %s\nstatus writes: %s" % (rc, out, hx(seq)))
        rc, out, seq = self.step(acquire)
        owner = self.owner()
        ok("%s: %s takes it from a reset: host sees %s" % (tag, new, hx(ACQUIRE)),
           rc == 0 and owner == new and seq == ACQUIRE,
           "rc=%d %s\nowner %s; status writes: %s" % (rc, out, owner, hx(seq)))
        left = [n for n in self.hwrngs() if n.startswith(gone)]
        ok("%s: no %s* hwrng left" % (tag, gone), not left, "left: %r" % left)
        self.entropy(tag, prefix)

    def cycle(self, i):
        self.hand("takeover: cycle %d: to revirt" % i, "virtio-pci", "revirt-pci",
                  "rv_pci_unbind %s" % ADDR,
                  "echo revirt-pci > $RV_PCI/devices/%s/driver_override && "
                  "echo %s > $RV_PCI/drivers/revirt-pci/bind" % (ADDR, ADDR),
                  "revirt_rng.", "virtio_rng.")
        self.hand("takeover: cycle %d: back" % i, "revirt-pci", "virtio-pci",
                  "rv_pci_unbind %s" % ADDR,
                  "echo > $RV_PCI/devices/%s/driver_override && "
                  "echo %s > $RV_PCI/drivers/virtio-pci/bind" % (ADDR, ADDR),
                  "virtio_rng.", "revirt_rng.")

    def run(self):
        ok = self.ktap.ok
        rc, out = self.sh("rv_kmods_load && rv_load_all")
        ok("takeover: virtio_pci, virtio_rng and revirt load", rc == 0, out)
        owner = self.owner()
        ok("takeover: the kernel's virtio-pci drives the device at first",
           owner == "virtio-pci", "owner: %s" % owner)
        if owner != "virtio-pci":
            return
        self.entropy("takeover: start", "virtio_rng.")
        self.sh("rv_kmsg test_90")
        for i in range(1, CYCLES + 1):
            self.cycle(i)
        rc, out = self.sh("rv_dmesg_after test_90")
        bad = kernel_bad_lines(out.splitlines())
        ok("takeover: no kernel warnings", rc == 0 and not bad, "\n".join(bad[:40]))

    def stop(self):
        self.vm.stop()


def run(ktap, env):
    what = "takeover: hand a device between virtio-pci and revirt-pci"
    if env.skip_unbuilt(ktap, what, MODULES):
        return
    if not kernel_has_virtio_rng(env.kver):
        ktap.skip(what, "%s has no virtio_rng module" % env.kver)
        return
    t = Takeover(ktap, env)
    try:
        t.run()
    finally:
        t.stop()
