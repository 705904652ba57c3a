# SPDX-License-Identifier: GPL-2.0-only
"""Boot a QEMU guest for the revirt selftests and talk to it.

The guest is the busybox initramfs of scripts/mkinitramfs; its /init
(guest/init) runs shell scripts that arrive base64-encoded on the serial
console and reports their output between @@BEGIN and @@END <rc>.  The host
side of the virtio devices is observed through QMP (x-query-virtio*) and
through QEMU's trace log (the "log" trace backend writing into a file).

Only the Python 3 standard library is used.
"""

import base64
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import traceback

QEMU = os.environ.get("QEMU", "qemu-system-x86_64")

READY_TIMEOUT = 120
# A console quiet for this long while the host waits gets an empty line
# (guest/init answers it with a lone "\r", which the host drops).  The
# 8250's transmitter has been seen to stop mid-line under a loaded TCG
# host ("@@READY" arriving without its newline until the boot timed
# out): the receive interrupt, and the guest's next write, start it again.
NUDGE_SECS = 10

# What the debug kernel's checkers print (and any kernel's WARN or BUG).
# The guest keeps the lines holding one of these words (lib.sh's
# rv_report_lines); the host then applies KERNEL_REPORT_RE.
KERNEL_REPORT_WORDS = [
    "BUG:", "WARNING:", "Oops", "KASAN", "UBSAN", "DMA-API: ",
    "possible circular locking", "possible recursive locking",
    "inconsistent lock state", "suspicious RCU usage",
    "sleeping function called from invalid context", "Kernel panic"]
PANIC_RE = re.compile(r"Kernel panic - not syncing")
# DMA-API debug announces itself at boot; anything else it says is a report.
KERNEL_REPORT_RE = re.compile(
    "|".join(re.escape(w) for w in KERNEL_REPORT_WORDS if w != "DMA-API: ") +
    r"|DMA-API: (?!preallocated \d+ debug entries|debugging enabled)")


def report_lines_cmd():
    """Guest command (lib.sh) that filters a kernel log on stdin down to
    the report lines, for reports_in()."""
    return "RV_REPORT_WORDS='%s' rv_report_lines" % "|".join(KERNEL_REPORT_WORDS)


def reports_in(out):
    """The checkers' reports in the output of report_lines_cmd()."""
    return [l[len("report: "):] for l in out.splitlines()
            if l.startswith("report: ") and KERNEL_REPORT_RE.search(l)]


# Reports of guests stopped since run.py last looked (REVIRT_KERNEL_REPORTS).
STOPPED_REPORTS = []

# The tty of the guest takes at most 4095 characters per line in canonical
# mode; stay well below that.
MAX_LINE = 3000

# virtio status bits
ACKNOWLEDGE = 0x01
DRIVER = 0x02
DRIVER_OK = 0x04
FEATURES_OK = 0x08
NEEDS_RESET = 0x40
FAILED = 0x80

# virtio feature bits used by the tests
F_INDIRECT_DESC = 28
F_EVENT_IDX = 29
F_VERSION_1 = 32

# Names x-query-virtio-status (QEMU 7.2) uses for status bits; each entry of
# "statuses" is "<NAME>: <description>".
_STATUS_NAMES = {
    "VIRTIO_CONFIG_S_ACKNOWLEDGE": ACKNOWLEDGE,
    "VIRTIO_CONFIG_S_DRIVER": DRIVER,
    "VIRTIO_CONFIG_S_DRIVER_OK": DRIVER_OK,
    "VIRTIO_CONFIG_S_FEATURES_OK": FEATURES_OK,
    "VIRTIO_CONFIG_S_NEEDS_RESET": NEEDS_RESET,
    "VIRTIO_CONFIG_S_FAILED": FAILED,
}

# One line of the log trace backend.  With "-msg timestamp=on" QEMU puts
# "<pid>@<sec>.<usec>:" in front of the event name; without it (the
# default, and what VM uses) the line starts with the event name.
_SET_STATUS_RE = re.compile(
    r"^(?:\d+@\d+\.\d+:)?virtio_set_status vdev (0x[0-9a-fA-F]+|\(nil\)) val (\d+)\s*$")
_TRACE_RE = re.compile(r"^(?:\d+@\d+\.\d+:)?(\w+) (.*)$")


class VMError(Exception):
    """The guest or QEMU did not behave (boot failure, timeout, death)."""


class VMTimeout(VMError):
    pass


class QMPError(Exception):
    def __init__(self, cmd, error):
        super().__init__("%s: %s: %s" % (cmd, error.get("class"), error.get("desc")))
        self.error = error


def status_value(status):
    """Status byte from an x-query-virtio-status reply (the whole reply or
    its "status" member, {"statuses": [...], "unknown-statuses": n})."""
    if "status" in status and isinstance(status["status"], dict):
        status = status["status"]
    val = int(status.get("unknown-statuses", 0))
    for s in status.get("statuses", []):
        name = s.split(":", 1)[0].strip()
        if name not in _STATUS_NAMES:
            raise ValueError("unknown virtio status name %r" % s)
        val |= _STATUS_NAMES[name]
    return val


def _feature_names(feats):
    names = []
    for s in feats.get("transports", []) + feats.get("dev-features", []):
        names.append(s.split(":", 1)[0].strip())
    return names


def guest_feature_names(status):
    """Names (e.g. "VIRTIO_RING_F_EVENT_IDX", "VIRTIO_F_VERSION_1") of the
    features the guest driver accepted, from an x-query-virtio-status reply.
    Bits QEMU cannot name are reported as "unknown-dev-features" and appear
    here as "UNKNOWN:0x..."."""
    return _features(status["guest-features"])


def host_feature_names(status):
    """Names of the features the device offers."""
    return _features(status["host-features"])


def _features(feats):
    names = _feature_names(feats)
    if feats.get("unknown-dev-features"):
        names.append("UNKNOWN:0x%x" % feats["unknown-dev-features"])
    return names


def collapse(vals):
    """Drop immediate repeats from a sequence of status values.

    QEMU traces virtio_set_status for more than the guest's writes: a guest
    write of 0 is followed by virtio_reset()'s own virtio_set_status(0), and a
    PCI COMMAND write without bus mastering re-sets status & ~DRIVER_OK.
    Collapsing repeats keeps the sequence of distinct states the device went
    through."""
    out = []
    for v in vals:
        if not out or out[-1] != v:
            out.append(v)
    return out


def by_vdev(writes):
    """{vdev: [val, ...]} from [(vdev, val), ...], order kept."""
    out = {}
    for vdev, val in writes:
        out.setdefault(vdev, []).append(val)
    return out


def fmt_writes(writes, names=None):
    """Readable form of a status-write list for diagnostics."""
    names = names or {}
    return ", ".join("%s:0x%x" % (names.get(v, v), val) for v, val in writes) or "(none)"


class VM:
    """A QEMU guest running guest/init.

    devices: extra QEMU arguments (e.g. ["-device", "virtio-rng-pci,id=rng0"]).
    """

    def __init__(self, devices=(), machine="pc", kernel=None, initrd=None,
                 mem=512, extra_append="", trace_events=("virtio_set_status",),
                 ready_timeout=READY_TIMEOUT, name="vm"):
        if kernel is None:
            kernel = default_kernel()
        if initrd is None:
            raise ValueError("VM needs an initrd (scripts/mkinitramfs)")
        self.name = name
        self.broken = None          # reason once the console is out of sync
        self.tmp = tempfile.mkdtemp(prefix="revirt-vm.")
        self.qmp_path = os.path.join(self.tmp, "qmp.sock")
        self.trace_path = os.path.join(self.tmp, "trace.log")
        self.stderr_path = os.path.join(self.tmp, "qemu.stderr")
        self._buf = ""
        self._pos = 0
        self._lock = threading.Condition()
        self._eof = False
        self._last_data = time.monotonic()
        self.nudges = 0
        # the asynchronous QMP events read so far, in order: the name,
        # then its data if it has any
        self.qmp_events = []
        self._qmp = None
        self._qmp_file = None
        self.proc = None
        self.boot_mark = 0
        self.boot_time = None

        append = "console=ttyS0 loglevel=1 panic=-1"
        if extra_append:
            append += " " + extra_append
        # for a kernel built here, from scripts/kdebug-env
        if os.environ.get("REVIRT_APPEND"):
            append += " " + os.environ["REVIRT_APPEND"]
        if machine.split(",")[0] == "pc" and os.environ.get("REVIRT_APPEND_PC"):
            append += " " + os.environ["REVIRT_APPEND_PC"]
        self._reports_mark = 0
        self.argv = [QEMU, "-accel", "tcg", "-M", machine, "-m", str(mem),
                     "-smp", "1", "-nodefaults", "-display", "none",
                     "-no-reboot", "-serial", "stdio",
                     "-kernel", kernel, "-initrd", initrd, "-append", append,
                     "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        for ev in trace_events:
            self.argv += ["-trace", ev]
        self.argv += ["-D", self.trace_path]
        self.argv += list(devices)

        t0 = time.monotonic()
        try:
            try:
                self._boot(ready_timeout)
            except VMError:
                why = self._early_panic()
                if not why:
                    raise
                # Not revirt's: say so, and boot once more.
                print("# %s: the guest kernel panicked before user space, with no "
                      "revirt module loaded (%s); booting once more" % (self.name, why),
                      flush=True)
                self._kill()
                self._buf, self._pos, self._eof = "", 0, False
                self._boot(ready_timeout)
            self.boot_time = time.monotonic() - t0
            self._qmp_connect()
            self.boot_mark = self.trace_mark()
        except BaseException:
            self.stop()
            raise

    def _boot(self, ready_timeout):
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=self._stderr,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self._expect(r"@@READY\n", ready_timeout, "boot")

    def _early_panic(self):
        """The panic line of a guest kernel that died during its own boot,
        before any revirt module was loaded (TCG has crashed a booting
        Debian kernel under load: a fault at a patched NOP of
        sched_clock_cpu, with 4 vCPUs); None for any other failure."""
        text = self.console()
        if "Kernel panic" not in text or "revirt" in text.lower():
            return None
        mods = re.findall(r"Modules linked in:(.*)", text)
        if any(m.strip() for m in mods):
            return None
        rip = re.search(r"RIP: [0-9a-f]{4}:(\S+)", text)
        return "Kernel panic%s" % (" at " + rip.group(1) if rip else "")

    def _kill(self):
        """End a QEMU that did not boot, without asking the guest."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._reader.join(10)
        self._stderr.close()

    # ---- console -------------------------------------------------------

    def _read_loop(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            with self._lock:
                if not data:
                    self._eof = True
                    self._lock.notify_all()
                    return
                self._buf += data.decode("utf-8", "replace").replace("\r", "")
                self._last_data = time.monotonic()
                self._lock.notify_all()

    def _expect(self, pattern, timeout, what):
        """Wait for pattern after the read cursor; move the cursor past it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        nudged = 0
        with self._lock:
            while True:
                m = rx.search(self._buf, self._pos)
                if m:
                    self._pos = m.end()
                    if nudged:
                        print("# %s: the console stopped mid-line and went on after "
                              "%d nudge(s), waiting for %s" % (self.name, nudged, what),
                              flush=True)
                    return m
                # only a stop mid-line is the transmitter's; a quiet
                # console at a line's end is a guest at work
                if self._nudge() and self._buf and not self._buf.endswith("\n"):
                    nudged += 1
                if self._eof:
                    raise VMError("%s: QEMU exited (rc=%s) while waiting for %r\n%s"
                                  % (self.name, self.proc.poll(), pattern, self.diag_tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise VMTimeout("%s: timeout (%ds) waiting for %s (%r)\n%s"
                                    % (self.name, timeout, what, pattern, self.diag_tail()))
                self._lock.wait(min(left, 1.0))

    def _nudge(self):
        """Send an empty line if the console has been quiet for NUDGE_SECS
        since its last data or the last nudge (called with _lock held)."""
        now = time.monotonic()
        if self._eof or now - self._last_data < NUDGE_SECS:
            return False
        self._last_data = now
        try:
            self._send("")
        except (OSError, VMError):
            return False
        self.nudges += 1
        return True

    def _send(self, line):
        if self.proc is None or self.proc.poll() is not None:
            raise VMError("%s: QEMU is not running" % self.name)
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def console(self):
        """Everything the guest printed so far (\\r removed)."""
        with self._lock:
            return self._buf

    def diag_tail(self, lines=30):
        text = self.console().splitlines()[-lines:]
        out = "console tail:\n  " + "\n  ".join(text)
        try:
            with open(self.stderr_path, errors="replace") as f:
                err = f.read().strip()
            if err:
                out += "\nqemu stderr:\n  " + "\n  ".join(err.splitlines()[-10:])
        except OSError:
            pass
        return out

    def alive(self):
        return (self.proc is not None and self.proc.poll() is None
                and not self.broken)

    def sh(self, script, timeout=120):
        """Run a shell script in the guest; return (rc, output)."""
        if self.broken:
            raise VMError("%s: unusable: %s" % (self.name, self.broken))
        enc = base64.b64encode(script.encode()).decode()
        try:
            if len(enc) <= MAX_LINE:
                self._send(enc)
            else:
                for i in range(0, len(enc), MAX_LINE):
                    self._send("@@CHUNK " + enc[i:i + MAX_LINE])
                    # the guest appends and answers at once, but under
                    # load a TCG guest can be starved for longer than 30 s
                    self._expect(r"@@ACK\n", max(30, timeout), "chunk ack")
                self._send("@@RUN")
            self._expect(r"@@BEGIN\n", timeout, "script start")
            start = self._pos
            m = self._expect(r"\n@@END (-?\d+)\n", timeout, "script end")
            with self._lock:
                out = self._buf[start:m.start()]
            return int(m.group(1)), out
        except VMError as e:
            # Whatever the guest does later would be taken for the answer
            # to the next script: never use this console again.
            self.broken = str(e).splitlines()[0]
            raise

    def check(self, script, timeout=120):
        """sh() that raises VMError when the script fails."""
        rc, out = self.sh(script, timeout)
        if rc != 0:
            raise VMError("guest script failed (rc=%d):\n%s\n--- output:\n%s"
                          % (rc, script.strip(), out))
        return out

    # ---- QMP -----------------------------------------------------------

    def _qmp_connect(self):
        deadline = time.monotonic() + 20
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.qmp_path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise VMError("%s: cannot connect to QMP" % self.name)
                time.sleep(0.1)
        s.settimeout(60)
        self._qmp = s
        self._qmp_file = s.makefile("rwb")
        greeting = self._qmp_read()
        if "QMP" not in greeting:
            raise VMError("unexpected QMP greeting %r" % greeting)
        self.qmp("qmp_capabilities")

    def _qmp_read(self):
        line = self._qmp_file.readline()
        if not line:
            raise VMError("%s: QMP connection closed" % self.name)
        return json.loads(line)

    def qmp(self, cmd, _args=None, **kw):
        """Execute a QMP command, return its "return" value; raise QMPError
        on "error".  Keyword names have "_" replaced by "-"; pass _args for
        names that must keep "_"."""
        args = dict(_args or {})
        for k, v in kw.items():
            args[k.replace("_", "-")] = v
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self._qmp_file.write(json.dumps(msg).encode() + b"\n")
        self._qmp_file.flush()
        while True:
            reply = self._qmp_read()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise QMPError(cmd, reply["error"])
            if "event" in reply:
                data = reply.get("data")
                self.qmp_events.append(reply["event"] + (" %s" % json.dumps(data)
                                                         if data else ""))

    def virtio_paths(self):
        """{path: name} of the virtio devices, e.g.
        {"/machine/peripheral/rng0/virtio-backend": "virtio-rng"}."""
        return {d["path"]: d["name"] for d in self.qmp("x-query-virtio")}

    def virtio_status(self, path):
        """The x-query-virtio-status reply for a device path (see
        status_value() and guest_feature_names())."""
        return self.qmp("x-query-virtio-status", path=path)

    def device_status(self, qdev_id):
        """Status byte of the device -device ...,id=<qdev_id> (host view)."""
        return status_value(self.virtio_status(backend_path(qdev_id)))

    # ---- trace ---------------------------------------------------------

    def trace_mark(self):
        """Current size of the trace file; pass it to status_writes()."""
        self._trace_settle()
        try:
            return os.path.getsize(self.trace_path)
        except OSError:
            return 0

    def _trace_settle(self, quiet=0.15, limit=3.0):
        """Wait until the trace file stopped growing for `quiet` seconds.

        The log backend writes through stdio.  Measured with QEMU 7.2: a
        line is in the file as soon as the event fired (the log file is
        line-buffered/flushed per event; no lag was ever seen), and the
        guest's MMIO/PIO write has completed before it prints @@END.  Do not
        rely on that alone: a QMP round trip lets the main loop run once,
        then the size has to stay put for a moment (bounded by `limit`)."""
        try:
            if self._qmp is not None and self.proc.poll() is None:
                self.qmp("query-status")
        except (VMError, QMPError, OSError):
            pass
        deadline = time.monotonic() + limit
        last = -1
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            try:
                size = os.path.getsize(self.trace_path)
            except OSError:
                size = 0
            now = time.monotonic()
            if size != last:
                last = size
                stable_since = now
            elif now - stable_since >= quiet:
                return
            time.sleep(0.03)

    def trace_lines(self, since=0, until=None):
        """Complete lines of the trace file in [since, until)."""
        self._trace_settle()
        with open(self.trace_path, "rb") as f:
            f.seek(since)
            data = f.read() if until is None else f.read(max(0, until - since))
        text = data.decode("utf-8", "replace")
        if not text.endswith("\n"):
            text = text[:text.rfind("\n") + 1]
        return text.splitlines()

    def trace_events(self, since=0, until=None, event=None):
        """[(event, args_str)] of trace lines."""
        out = []
        for line in self.trace_lines(since, until):
            m = _TRACE_RE.match(line)
            if m and (event is None or m.group(1) == event):
                out.append((m.group(1), m.group(2)))
        return out

    def status_writes(self, since=0, until=None):
        """[(vdev, val)] of virtio_set_status events after `since`."""
        out = []
        for line in self.trace_lines(since, until):
            m = _SET_STATUS_RE.match(line)
            if m:
                out.append((m.group(1), int(m.group(2))))
        return out

    # ---- dmesg ---------------------------------------------------------

    def dmesg_lines(self):
        rc, out = self.sh("dmesg", timeout=30)
        return out.splitlines()

    # ---- teardown ------------------------------------------------------

    def kernel_reports(self):
        """Reports of the kernel's checkers since the last call: dmesg lines
        of KASAN, UBSAN, lockdep, DMA-API debug, WARNING, BUG, Oops, and
        kmemleak records that point into revirt (after a scan)."""
        seen, self._reports_mark = self._reports_mark, self._reports_mark + 1
        rc, out = self.sh(
            ". /usr/share/revirt/lib.sh\n"
            "rv_kmemleak_revirt\n"
            "rv_dmesg_after reports-%d. | %s\n"
            "rv_kmsg reports-%d.\n" % (seen, report_lines_cmd(), seen + 1), timeout=120)
        return [l for l in out.splitlines() if l.startswith("kmemleak: ")] + reports_in(out)

    def stop(self, timeout=20):
        """Power the guest off (kill QEMU if it does not go) and clean up.
        With REVIRT_KERNEL_REPORTS set, the checkers' reports of this guest
        are kept in STOPPED_REPORTS first."""
        if os.environ.get("REVIRT_KERNEL_REPORTS") and self.alive() and not self.broken:
            try:
                STOPPED_REPORTS.extend("%s: %s" % (self.name, r)
                                       for r in self.kernel_reports())
            except VMError as e:
                STOPPED_REPORTS.append("%s: reports unavailable: %s"
                                       % (self.name, str(e).splitlines()[0]))
        elif os.environ.get("REVIRT_KERNEL_REPORTS"):
            # A guest that died cannot be asked; a panic reaches the
            # console whatever the loglevel.  (Only the panic line: the
            # console also carries the scripts' output, dmesg lines
            # included.)
            STOPPED_REPORTS.extend("%s: console: %s" % (self.name, l)
                                   for l in self.console().splitlines()
                                   if PANIC_RE.search(l))
        try:
            if self.proc is not None and self.proc.poll() is None:
                # A guest whose console is out of sync may still be running
                # a script: do not wait for it to notice @@POWEROFF.
                if not self.broken:
                    try:
                        self._send("@@POWEROFF")
                        self.proc.stdin.close()
                    except (OSError, VMError, ValueError):
                        pass
                    try:
                        self.proc.wait(timeout)
                    except subprocess.TimeoutExpired:
                        pass
                if self.proc.poll() is None:
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except OSError:
                        self.proc.kill()
                    self.proc.wait(10)
        finally:
            for f in (self._qmp_file, self._qmp):
                try:
                    if f is not None:
                        f.close()
                except OSError:
                    pass
            self._qmp = self._qmp_file = None
            try:
                self._stderr.close()
            except (OSError, AttributeError):
                pass
            if self.proc is not None and self.proc.stdout:
                try:
                    self.proc.stdout.close()
                except OSError:
                    pass
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def default_kernel():
    """/boot/vmlinuz-<KVER> of $KVER, else the newest installed kernel."""
    kver = os.environ.get("KVER")
    if kver:
        return "/boot/vmlinuz-" + kver
    found = sorted(glob.glob("/boot/vmlinuz-*"))
    if not found:
        raise VMError("no kernel in /boot (scripts/revirt-deps installs one)")
    return found[-1]


def backend_path(qdev_id):
    """QOM path of the virtio device inside a -device virtio-*-pci,id=..."""
    return "/machine/peripheral/%s/virtio-backend" % qdev_id


class Ktap:
    """KTAP result lines without numbers (scripts/ktap-sum numbers them)."""

    def __init__(self, prefix=""):
        self.prefix = prefix
        self.passed = self.failed = self.skipped = 0

    @staticmethod
    def _diag(text):
        for line in str(text).rstrip("\n").splitlines():
            print("# " + line if line else "#", flush=True)

    def diag(self, text):
        self._diag(text)

    def ok(self, name, cond, diag=""):
        name = self.prefix + name
        if cond:
            self.passed += 1
            print("ok - " + name, flush=True)
        else:
            self.failed += 1
            print("not ok - " + name, flush=True)
            if callable(diag):
                try:
                    diag = diag()
                except Exception:
                    diag = "(diagnostics failed)\n" + traceback.format_exc()
            if diag:
                self._diag(diag)
        return bool(cond)

    def skip(self, name, reason):
        self.skipped += 1
        print("ok - %s%s # SKIP %s" % (self.prefix, name, reason), flush=True)
