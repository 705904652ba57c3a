# SPDX-License-Identifier: GPL-2.0-only
"""The machine the revirt tests share, and what the tests ask of it.

One VM carries every device the issue-2 tests need:

  rng0  virtio-rng-pci, legacy only (disable-modern=on)     PCI 00:04.0
  rng1  virtio-rng-pci, modern only (disable-legacy=on)     PCI 00:05.0
  rng2  virtio-rng-pci, transitional (revirt uses modern)   PCI 00:06.0
  blk0  virtio-blk-pci, bootindex=1, raw 1 MiB image        PCI 00:07.0
        (zero, but for disk_pattern() after the first 64 KiB)

Why bootindex=1 and not 0: with -kernel, QEMU 7.2 gives the linuxboot
option ROM bootindex 0 itself, and "-device virtio-blk-pci,bootindex=0"
is refused ("The bootindex 0 has already been used").  SeaBIOS still
initialises every virtio-blk disk that is in the boot order during POST,
before it runs the linuxboot ROM: the trace shows reset, 3, 0xb, 0xf and a
read of sector 0 from SeaBIOS before the guest kernel starts.  The blk test
verifies that from the trace rather than trusting this comment.

Mapping host devices to trace lines: virtio_set_status only names the
VirtIODevice pointer.  The pointer of each rng comes from the
virtio_rng_request events (same pointer: VirtIORNG starts with its
VirtIODevice) seen while the guest reads from that very device; the blk
pointer from the virtio_blk_handle_read events of SeaBIOS.  Guest device
names (revirtN) map to QEMU ids through the PCI address of their parent.
"""

import hashlib
import os
import re
import subprocess
import time

from revirt_vm import (VM, VMError, _SET_STATUS_RE, backend_path, by_vdev, collapse,
                       guest_feature_names, host_feature_names, status_value)

DEVICES = [
    # qdev id, device, properties, PCI slot
    ("rng0", "virtio-rng-pci", "disable-modern=on", 4),
    ("rng1", "virtio-rng-pci", "disable-legacy=on", 5),
    ("rng2", "virtio-rng-pci", "", 6),
    ("blk0", "virtio-blk-pci", "drive=d0,bootindex=1", 7),
]
RNGS = ["rng0", "rng1", "rng2"]
VERSION_1 = {"rng0": False, "rng1": True, "rng2": True, "blk0": True}
KIND = {"rng0": "legacy", "rng1": "modern", "rng2": "transitional",
        "blk0": "virtio-blk"}

TRACE_EVENTS = ["virtio_set_status", "virtio_rng_request",
                "virtio_blk_handle_read"]

MODULES = ["revirt", "revirt_pci", "revirt_rng"]

# blk0's image: DISK_SIZE bytes, zero but for a pattern the host writes at
# [DISK_PATTERN_START, DISK_SIZE) before boot (disk_pattern()), so that a
# read of the disk is known to return the right bytes and not merely the
# same ones twice.  The first 64 KiB stay zero: SeaBIOS reads sector 0,
# and the kernel's partition parsers look at the first sectors for their
# magic numbers; zero sectors are no partition table to any of them.
DISK_SIZE = 1 << 20
DISK_PATTERN_START = 64 << 10

GUEST_LIB = ". /usr/share/revirt/lib.sh\n"

KERNEL_BAD_RE = re.compile(r"WARNING|BUG|Oops|Call Trace")


def pci_addr(slot):
    return "0000:00:%02x.0" % slot


def expected_probe(qdev):
    """Distinct status values the host sees while a driver probes."""
    return [0x3, 0xb, 0xf] if VERSION_1[qdev] else [0x3, 0x7]


def driver_ok_value(qdev):
    return 0xf if VERSION_1[qdev] else 0x7


class Rig:
    def __init__(self, env):
        self.env = env
        self.disk = os.path.join(env.tmp, "blk0.img")
        with open(self.disk, "wb") as f:
            f.truncate(DISK_SIZE)
            f.seek(DISK_PATTERN_START)
            f.write(disk_pattern(DISK_PATTERN_START, DISK_SIZE - DISK_PATTERN_START))
        args = ["-drive", "file=%s,if=none,format=raw,id=d0" % self.disk]
        for qdev, dev, props, slot in DEVICES:
            opt = "%s,id=%s,addr=0x%x" % (dev, qdev, slot)
            if props:
                opt += "," + props
            args += ["-device", opt]
        # slub_debug=U,kmalloc-*: the kernel records who allocated each
        # kmalloc object, which rv_live_objects counts for the leak checks.
        self.vm = VM(devices=args, kernel=env.kernel, initrd=env.initrd,
                     trace_events=TRACE_EVENTS, name="revirt-vm",
                     extra_append="slub_debug=U,kmalloc-*")
        self._vdev = {}
        # host view before the guest touched anything
        self.boot_status = {q: self.host_status(q) for q, *_ in DEVICES}

    # ---- guest ---------------------------------------------------------

    def alive(self):
        return self.vm.alive()

    def stop(self):
        self.vm.stop()

    def sh(self, script, timeout=120):
        return self.vm.sh(GUEST_LIB + script, timeout)

    def check(self, script, timeout=120):
        return self.vm.check(GUEST_LIB + script, timeout)

    def loaded(self):
        out = self.check("for m in %s; do rv_loaded $m && echo $m; done; true"
                         % " ".join(MODULES))
        return out.split()

    def load_all(self):
        return self.check("rv_load_all")

    def info(self):
        """{qdev: {"name": "revirtN", "status": int, "driver": str, ...}}
        plus entries keyed by revirtN for devices at unknown addresses."""
        out = self.check("rv_info")
        by_addr = {pci_addr(slot): q for q, _, _, slot in DEVICES}
        res = {}
        for line in out.splitlines():
            words = line.split()
            if not words:
                continue
            d = {"name": words[0], "line": line}
            for w in words[1:]:
                k, _, v = w.partition("=")
                d[k] = v
            try:
                d["status_val"] = int(d.get("status", ""), 16)
            except ValueError:
                d["status_val"] = None
            res[by_addr.get(d.get("pci"), words[0])] = d
        return res

    def index(self, qdev, info=None):
        """N of the revirtN device of qdev."""
        info = info or self.info()
        if qdev not in info:
            raise VMError("no revirt device for %s (PCI %s); guest sees:\n%s"
                          % (qdev, pci_addr(dict((q, s) for q, _, _, s in DEVICES)[qdev]),
                             "\n".join(v["line"] for v in info.values()) or "(nothing)"))
        return int(info[qdev]["name"][len("revirt"):])

    def kmsg_mark(self, tag):
        self.check("rv_kmsg %s" % tag)

    def dmesg_after(self, tag):
        return self.check("rv_dmesg_after %s" % tag).splitlines()

    def dmesg_tail(self, n=30):
        try:
            rc, out = self.vm.sh("dmesg | tail -n %d" % n, timeout=30)
            return out
        except VMError as e:
            return "(dmesg unavailable: %s)" % str(e).splitlines()[0]

    def entropy(self, qdev, info=None):
        """(ok, diag) for two 64-byte reads of the device's hwrng."""
        n = self.index(qdev, info)
        rc, out = self.sh("rv_entropy %d" % n, timeout=60)
        reads = {}
        for line in out.splitlines():
            if line[:2] in ("A ", "B "):
                reads[line[0]] = line[2:].strip()
        a, b = reads.get("A", ""), reads.get("B", "")
        problems = []
        if rc != 0:
            problems.append("rv_entropy failed (rc=%d)" % rc)
        for tag, data in (("first", a), ("second", b)):
            if len(data) != 128:
                problems.append("%s read: %d bytes, want 64" % (tag, len(data) // 2))
            elif not data.strip("0"):
                problems.append("%s read: all zero" % tag)
        if a and a == b:
            problems.append("two reads returned the same data")
        return (not problems,
                "revirt_rng.%d (%s): %s\n%s" % (n, qdev, "; ".join(problems) or "fine", out))

    # ---- host ----------------------------------------------------------

    def host_status(self, qdev):
        return status_value(self.vm.virtio_status(backend_path(qdev)))

    def host_guest_features(self, qdev):
        return guest_feature_names(self.vm.virtio_status(backend_path(qdev)))

    def host_offered_features(self, qdev):
        return host_feature_names(self.vm.virtio_status(backend_path(qdev)))

    def mark(self):
        return self.vm.trace_mark()

    def vdev(self, qdev):
        """Trace pointer of a device (see the module comment)."""
        if qdev in self._vdev:
            return self._vdev[qdev]
        if qdev.startswith("blk"):
            reads = self.vm.trace_events(0, self.vm.boot_mark,
                                         event="virtio_blk_handle_read")
            ptrs = {a.split()[1] for _, a in reads}
            if not ptrs:
                # Before the debug kernel, SeaBIOS sets the disk up but
                # reads nothing; it is still the one device at DRIVER_OK.
                early = by_vdev(self.vm.status_writes(0, self.vm.boot_mark))
                ptrs = {p for p, vals in early.items() if any(v & 4 for v in vals)}
            if len(ptrs) != 1:
                raise VMError("cannot find the blk device in the trace: SeaBIOS "
                              "reads %r" % reads[:5])
            self._vdev[qdev] = ptrs.pop()
            return self._vdev[qdev]
        info = self.info()
        n = self.index(qdev, info)
        mark = self.mark()
        rc, out = self.sh("rv_entropy %d" % n, timeout=60)
        counts = {}
        for _, args in self.vm.trace_events(mark, event="virtio_rng_request"):
            m = re.match(r"rng (\S+): (\d+) bytes requested", args)
            if m and int(m.group(2)) > 0:
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        if rc != 0 or not counts:
            raise VMError("cannot map %s to a QEMU device: reading revirt_rng.%d "
                          "gave rc=%d, requests %r\n%s" % (qdev, n, rc, counts, out))
        ptr = max(counts, key=counts.get)
        if ptr in self._vdev.values():
            raise VMError("%s maps to %s, which is already %r" % (qdev, ptr, self._vdev))
        self._vdev[qdev] = ptr
        return ptr

    def map_all(self, qdevs):
        for q in qdevs:
            self.vdev(q)

    def names(self):
        return {v: k for k, v in self._vdev.items()}

    def writes(self, since, until=None):
        """{qdev or pointer: [val, ...]} of status writes in [since, until)."""
        names = self.names()
        raw = by_vdev(self.vm.status_writes(since, until))
        return {names.get(p, p): vals for p, vals in raw.items()}

    def writes_between(self, marks):
        """[writes(marks[i], marks[i + 1]) for each i]: the trace read once,
        without waiting for it to settle again (each mark waited)."""
        names = self.names()
        with open(self.vm.trace_path, "rb") as f:
            f.seek(marks[0])
            data = f.read(marks[-1] - marks[0])
        res = []
        for a, b in zip(marks, marks[1:]):
            text = data[a - marks[0]:b - marks[0]].decode("utf-8", "replace")
            writes = []
            for line in text.splitlines():
                m = _SET_STATUS_RE.match(line)
                if m:
                    writes.append((m.group(1), int(m.group(2))))
            res.append({names.get(p, p): vals for p, vals in by_vdev(writes).items()})
        return res

    def fmt(self, writes):
        return "; ".join("%s: %s" % (k, " ".join("0x%x" % v for v in vals))
                         for k, vals in writes.items()) or "(no status writes)"


def disk_pattern(offset, length):
    """The bytes at [offset, offset + length) of blk0's pattern: 32-byte
    blocks, each the SHA-256 of "revirt-blk0 <its byte offset>", so that
    every sector differs from every other (a read of the wrong sectors
    does not match either).  offset and length are multiples of 32."""
    assert offset % 32 == 0 and length % 32 == 0
    return b"".join(hashlib.sha256(b"revirt-blk0 %d" % o).digest()
                    for o in range(offset, offset + length, 32))


def disk_md5(offset, length):
    """md5 (hex) of blk0's image at [offset, offset + length), computed on
    the host from the pattern (zero before DISK_PATTERN_START)."""
    end = offset + length
    assert 0 <= offset <= end <= DISK_SIZE
    zero = max(0, min(end, DISK_PATTERN_START) - offset)
    data = bytes(zero)
    if end > offset + zero:
        data += disk_pattern(offset + zero, end - offset - zero)
    return hashlib.md5(data).hexdigest()


def live_objects(vm, want=None, settle=5.0):
    """rv_live_objects in the guest (kmalloc objects revirt code allocated);
    with want, wait a bounded time for frees still on their way."""
    deadline = time.monotonic() + settle
    while True:
        n = int(vm.check(GUEST_LIB + "rv_live_objects").split()[-1])
        if want is None or n == want or time.monotonic() > deadline:
            return n
        time.sleep(0.5)


def live_why(vm):
    """(kind, why) for the leak checks: kind "ok" when rv_live_objects can
    count in this guest; "unavailable" when the guest was not set up for
    it (debugfs not mounted, no slub_debug=U,kmalloc-*) or the count failed
    anyway -- a test fault; "impossible" when the kernel cannot count (no
    CONFIG_SLUB_DEBUG, no debugfs).  why says which (lib.sh's rv_live_why)."""
    out = vm.check(GUEST_LIB + "rv_live_why").strip().splitlines()
    line = out[-1] if out else ""
    m = re.match(r"live: (ok|unavailable|impossible):? ?(.*)$", line)
    if not m:
        return "unavailable", "rv_live_why printed %r" % "\n".join(out)
    return m.group(1), m.group(2)


def live_check(ktap, vm, name, before, skip_impossible=False, diag=""):
    """The KTAP line of a leak check: revirt's live kmalloc objects now
    (rv_live_objects, waiting a bounded time for frees on their way) are
    as many as `before`.  A count that is unavailable, before or now, is a
    not ok that says why; with skip_impossible, a kernel that cannot count
    at all (live_why's "impossible") is a SKIP instead.  diag: text or a
    callable for the not ok.  Returns the count now (-1: unavailable)."""
    now = live_objects(vm, want=before) if before >= 0 else -1
    if before >= 0 and now >= 0:
        ktap.ok("%s (%d live before, %d now)" % (name, before, now), now == before,
                diag or (lambda: "before %d now %d\n%s"
                         % (before, now, vm.check(GUEST_LIB + "rv_live_objects -v"))))
        return now
    kind, why = live_why(vm)
    if kind == "ok":
        kind, why = "unavailable", ("rv_live_objects printed -1 %s, yet rv_live_why "
                                    "finds it counting (%s)"
                                    % ("before" if before < 0 else "now", why))
    if kind == "impossible" and skip_impossible:
        ktap.skip(name, "the kernel cannot count live objects: %s" % why)
        return now
    ktap.ok("%s: live-object count unavailable: %s" % (name, why), False,
            "rv_live_objects: %d before, %d now\n%s"
            % (before, now, diag() if callable(diag) else diag))
    return now


def kernel_modules_base():
    """The root that lib/modules of the kernel under test is under: / or,
    for a kernel built here (scripts/check-debug), $KMOD_BASE, as
    scripts/mkinitramfs."""
    return os.environ.get("KMOD_BASE") or "/"


def kernel_modules_dir(kver):
    """/lib/modules/KVER of the kernel under test (kernel_modules_base())."""
    return os.path.join(kernel_modules_base(), "lib", "modules", kver)


def kmods_initrd(env, kmods, name):
    """env.initrd with the kernel's modules `kmods` (and what they depend
    on) appended, through KMODS of scripts/mkinitramfs: the kernel unpacks
    concatenated cpio archives in order, so the second one adds
    /lib/modules/kernel/ and its load order (rv_kmods_load) to the
    first."""
    extra = os.path.join(env.tmp, name + "-kmods.cpio.gz")
    out = os.path.join(env.tmp, name + ".cpio.gz")
    subprocess.run([os.path.join(env.srcdir, "scripts", "mkinitramfs"),
                    extra, env.kver], check=True,
                   env=dict(os.environ, KMODS=" ".join(kmods)))
    with open(out, "wb") as o:
        for part in (env.initrd, extra):
            with open(part, "rb") as f:
                o.write(f.read())
    return out


def kernel_bad_lines(lines):
    return [l for l in lines if KERNEL_BAD_RE.search(l)]


class Env:
    """What run.py hands to every test module's run(ktap, env)."""

    def __init__(self, kernel, initrd, kver, tmp, srcdir, initrd_modules):
        self.kernel = kernel
        self.initrd = initrd
        self.kver = kver
        self.tmp = tmp
        self.srcdir = srcdir
        self.initrd_modules = set(initrd_modules)   # revirt *.ko names
        self._rig = None

    def builtin(self, kmod):
        """True if the kernel under test builds kmod (e.g. "virtio_pci")
        in, as Debian's 6.12 does; from modules.builtin."""
        path = os.path.join(kernel_modules_dir(self.kver), "modules.builtin")
        try:
            with open(path) as f:
                names = {os.path.basename(l.strip())[:-3] for l in f}
        except OSError:
            return False
        return kmod in names

    def missing(self, names=MODULES):
        """Modules a test needs that the initramfs does not carry."""
        return [n for n in names if n not in self.initrd_modules]

    def skip_unbuilt(self, ktap, what, names=MODULES):
        """Report a SKIP for `what` and return True if modules are missing."""
        missing = self.missing(names)
        if missing:
            ktap.skip(what, "module(s) not built: %s" % " ".join(missing))
        return bool(missing)

    def skip_boot_disk_reset(self, ktap, what):
        """Report a SKIP for `what` and return True if a built-in virtio-pci
        resets SeaBIOS's boot disk at boot, before revirt can find it running."""
        if self.builtin("virtio_pci"):
            ktap.skip(what, "the built-in virtio-pci of %s resets the disk at boot, "
                      "before revirt can find it running" % self.kver)
            return True
        return False

    def rig(self, fresh=False):
        """The shared VM; booted again if it died or lost its console."""
        if self._rig is not None and (fresh or not self._rig.alive()):
            self._rig.stop()
            self._rig = None
        if self._rig is None:
            self._rig = Rig(self)
        return self._rig

    def close(self):
        if self._rig is not None:
            self._rig.stop()
            self._rig = None
