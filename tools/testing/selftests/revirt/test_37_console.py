# SPDX-License-Identifier: GPL-2.0-only
"""Issue 24: the console driver revirt_console keeps every port's byte
stream exactly once and in order across device resets.

One VM per transport: QEMU's virtio-serial-pci on the pc machine and
virtio-serial-device (virtio-mmio version 2) on microvm, each with a
virtconsole (/dev/hvc0, name org.revirt.console) and two virtserialports
(org.revirt.port1, org.revirt.port2), every one on a chardev unix socket
the test holds (cons_stream.py).

Streams: guest/rvcons-stream on each port and cons_stream.Stream on its
socket send each other sequence-numbered, crc32-checked records of varying
length (1..1024 bytes) both ways at once, then an END record with the
number of records sent.  What is asserted, per port and direction:
  resets (the reset attribute, features_mask written without EVENT_IDX
  and written back; each write a renegotiation): the guest tool keeps
  its fd, never sees EOF or an error, and each side receives every
  record the other sent, exactly once, in order (dup 0, lost 0, no
  bad byte, record counts equal, END seen) -- on the two serial ports
  and on the console port (the tool sets the hvc tty raw);
  unbind/bind of revirt_console: the tool (-r) sees the port go (EOF or
  an error), opens it again when it is back and goes on with the next
  sequence number.  The driver sends what it holds before it lets the
  device go (bounded) and parks the rest, and what the port received and
  nobody read, until the port comes back: each way, every record exactly
  once and in order (the tool goes on writing a record where write()
  stopped and parsing where read() stopped), the tool saw every cycle
  (reopens == cycles), both directions move again after every bind, and
  the END arrives both ways.  The
  console port takes no part in the unbind stream: its new tty is not
  raw until the tool reopens it, and the echo of a cooked tty would come
  back to the host as bytes that are no records.
DEVICE_NEEDS_RESET: QEMU's virtio-serial has no malformed-ring path a
guest program can reach, so it is shown on revirt_sim's console below.

Host side: QMP VSERPORT_CHANGE events (for each port the guest holds
open, open true again after every reset, last event open true), the
virtio_set_status trace (each reset is 0 then the whole setup 1, 3, 0xb,
0xf; the number of setups equals the resets made), QMP status DRIVER_OK.

Ports (PCI VM): the names in /sys/class/revirt-ports/*/name; a
virtserialport hot-added with QMP chardev-add + device_add appears
(class entry, device node, its name) and carries data, and device_del
makes it go, the program holding it open getting EOF; port2's host side
closing and reconnecting: host_connected 1, 0, 1 and the guest's reader
sees the data before, EOF, the data after.

Console shell: `setsid sh -c 'exec sh </dev/hvc0 >/dev/hvc0 2>&1'`,
driven from the virtconsole's socket: "sleep 2; echo done-$((6*7))", a
reset during the sleep, and the host reads done-42.

The device's lies (a VM of its own, revirt_sim console=1 console_ports=3,
each port looping back): a PORT_OPEN naming a port beyond the device's, a
4-byte control message and an unknown event each give one line naming
revirt0 and both ports loop back on across the reset that sent them;
DEVICE_NEEDS_RESET (the sim's needs_reset) with a line on its way: the
device is reset, the fds stay, the line arrives once; a
used length beyond port 2's receive buffer breaks that queue (one line)
and the driver resets the device, after which both ports loop back
again; closing the ports reaches the device (port_guest_open); rmmod.

REVIRT_CONS_DRIVER=kernel runs the same streams against the kernel's
virtio_console (PCI only, revirt.takeover=off; ports /dev/vportNpM,
/sys/class/virtio-ports): there are no resets there, only unbind/bind.
"""

import json
import os
import re
import time

import cons_stream as cs
from revirt_vm import VM, VMError, collapse, status_value
from revirt_rig import GUEST_LIB, kernel_bad_lines, kmods_initrd

RESETS = 50             # of each kind (reset attribute, features_mask writes)
BINDS = 10              # unbind/bind cycles
BPS = 24000             # bytes/s each way per port
MASK_OFF = "0xffffffffdfffffff"     # without VIRTIO_RING_F_EVENT_IDX
MASK_ALL = "0xffffffffffffffff"
SETUP = [0, 1, 3, 0xb, 0xf]
PORTS = [("con0", "org.revirt.console", 1), ("port1", "org.revirt.port1", 3),
         ("port2", "org.revirt.port2", 5)]
SERIAL = ["port1", "port2"]


class Drv:
    def __init__(self, kind):
        self.kind = kind
        if kind == "revirt":
            self.cls = "/sys/class/revirt-ports"
            self.bus = "/sys/bus/revirt"
            self.driver = "revirt_console"
        else:
            self.cls = "/sys/class/virtio-ports"
            self.bus = "/sys/bus/virtio"
            self.driver = "virtio_console"
        self.drvdir = "%s/drivers/%s" % (self.bus, self.driver)


class ConsVM:
    def __init__(self, ktap, env, drv, transport):
        self.ktap = ktap
        self.env = env
        self.drv = drv
        self.transport = transport
        self.tag = "console %s%s" % (transport, "" if drv.kind == "revirt" else " (virtio_console)")
        self.sockdir = os.path.join(env.tmp, "cons-" + transport)
        os.makedirs(self.sockdir, exist_ok=True)
        self.events = []
        self.streams = []
        bus = "virtio-serial-pci,id=vser0,addr=0x4" if transport == "pci" \
            else "virtio-serial-device,id=vser0"
        devs = ["-device", bus + ",max_ports=8"]
        for qid, name, _ in PORTS:
            devs += ["-chardev", "socket,id=ch_%s,path=%s,server=on,wait=off"
                     % (qid, self.sock(qid)),
                     "-device", "%s,chardev=ch_%s,id=%s,name=%s"
                     % ("virtconsole" if qid == "con0" else "virtserialport", qid, qid, name)]
        initrd = env.initrd
        append = ""
        if drv.kind == "kernel":
            initrd = kmods_initrd(env, ["virtio_pci", "virtio_console"], "cons")
            append = "revirt.takeover=off"
        if transport == "pci":
            self.vm = VM(devices=devs, kernel=env.kernel, initrd=initrd,
                         extra_append=append, name="cons-pci")
            self.qom = "/machine/peripheral/vser0/virtio-backend"
        else:
            devs = ["-global", "virtio-mmio.force-legacy=false"] + devs
            self.vm = VM(devices=devs, machine="microvm,acpi=on", kernel=env.kernel,
                         initrd=initrd, extra_append="tsc_early_khz=2000000",
                         name="cons-mmio")
            self.qom = "/machine/peripheral/vser0"
        orig = self.vm._qmp_read

        def rd():
            r = orig()
            if "event" in r:
                self.events.append(r)
            return r
        self.vm._qmp_read = rd

    def oops(self):
        """The console lines from a kernel report (oops, BUG, WARNING) and
        the ones after it, "" if none."""
        lines = self.vm.console().splitlines()
        for i, l in enumerate(lines):
            if OOPS_RE.search(l) and l.lstrip().startswith("["):
                return "\n".join(lines[i:i + 40])
        return ""

    def sock(self, qid):
        return os.path.join(self.sockdir, qid + ".sock")

    def sh(self, script, timeout=120):
        return self.vm.sh(GUEST_LIB + "D=%s\nCLS=%s\n" % (self.drvdir_dev(), self.drv.cls)
                          + script, timeout)

    def drvdir_dev(self):
        return getattr(self, "devdir", "/nonexistent")

    def ok(self, name, cond, diag=""):
        return self.ktap.ok("%s: %s" % (self.tag, name), cond, diag)

    def stop(self):
        self.vm.stop()

    # ---- setup ---------------------------------------------------------

    def load(self):
        if self.drv.kind == "kernel":
            script = "rv_kmods_load"
        else:
            script = "rv_insmod revirt && rv_insmod revirt_%s && rv_insmod revirt_console" \
                % self.transport
        rc, out = self.sh(script + " && sleep 1 && ls %s/ && ls %s" % (self.drv.drvdir, self.drv.cls))
        words = out.split()
        devs = [w for w in words if re.match(r"^(revirt|virtio)\d+$", w)]
        self.ok("%s binds the virtio-serial device" % self.drv.driver,
                rc == 0 and len(devs) == 1, out)
        if rc != 0 or len(devs) != 1:
            return False
        self.dev = devs[0]
        self.devdir = "%s/devices/%s" % (self.drv.bus, self.dev)
        return True

    def ports(self):
        """{name: {"entry": rvportNpM, attr: value}} from the class dir."""
        rc, out = self.sh("for p in $CLS/*; do [ -e $p/name ] || continue; "
                          "echo \"P ${p##*/} name=$(cat $p/name)"
                          " host_connected=$(rv_attr $p/host_connected)"
                          " console=$(rv_attr $p/console) node=$([ -c /dev/${p##*/} ] && echo 1 || echo 0)\"; done")
        res = {}
        for line in out.splitlines():
            w = line.split()
            if len(w) < 3 or w[0] != "P":
                continue
            d = {"entry": w[1]}
            for x in w[2:]:
                k, _, v = x.partition("=")
                d[k] = v
            res[d.get("name", "")] = d
        return res

    def drain_events(self):
        self.vm.qmp("query-status")

    def host_status(self):
        return status_value(self.vm.virtio_status(self.qom))

    # ---- streams -------------------------------------------------------

    def start_streams(self, qids, label, secs, reopen=False):
        """Guest tools (in the background) and host streams on qids."""
        script = ""
        names = dict((q, n) for q, n, _ in PORTS)
        sids = dict((q, s) for q, _, s in PORTS)
        for q in qids:
            port = "/dev/hvc0" if q == "con0" else "name=" + names[q]
            opts = "-r -o /tmp/%s-%s.opens" % (q, label) if reopen else ""
            script += ("RVCONS_CLASS=$CLS rvcons-stream duplex %s %d %d %d -b %d %s "
                       "</dev/null >/tmp/%s-%s.raw 2>&1 &\necho $! > /tmp/%s-%s.pid\n"
                       % (port, sids[q], sids[q] + 1, secs, BPS, opts,
                          q, label, q, label))
        # connect first: QEMU drops what a virtconsole writes while no
        # host is connected (serial ports block instead)
        socks = {q: cs.connect(self.sock(q)) for q in qids}
        time.sleep(0.3)
        self.sh("rm -f /tmp/*-%s.raw /tmp/*-%s.opens\n" % (label, label) + script)
        streams = {}
        for q in qids:
            streams[q] = cs.Stream(socks[q], sids[q] + 1, sids[q], q,
                                   bps=BPS, wait_first=True, maxsecs=secs + 30)
            self.streams.append(streams[q])
        return streams

    def flowing(self, streams, timeout=30, since=None):
        """Wait until every stream received records (more than since[q])."""
        deadline = time.monotonic() + timeout
        since = since or {}
        while time.monotonic() < deadline and not self.oops():
            if all(s.rx.next > since.get(q, 0) for q, s in streams.items()):
                return True
            time.sleep(0.1)
        return False

    def finish_streams(self, streams, label, timeout=40):
        for s in streams.values():
            s.stop()
        deadline = time.monotonic() + timeout
        for s in streams.values():
            while not s.wait(1) and time.monotonic() < deadline:
                if self.oops():
                    raise VMError("kernel report while the streams end")
        # the tools end by themselves once the END records crossed; one
        # that does not within 15 s is stopped (SIGTERM: it still reports)
        rc, out = self.sh(
                          "i=0; while [ $i -lt 150 ]; do n=0; for q in {q}; do "
                          "kill -0 $(cat /tmp/$q-{l}.pid) 2>/dev/null && n=$((n + 1)); done; "
                          "[ $n -eq 0 ] && break; usleep 100000; i=$((i + 1)); done\n"
                          "for q in {q}; do kill -0 $(cat /tmp/$q-{l}.pid) 2>/dev/null && "
                          "{{ echo \"$q: still running after 15 s: SIGTERM\"; kill $(cat /tmp/$q-{l}.pid); }}; done\n"
                          "usleep 500000; for q in {q}; do echo \"$q $(cat /tmp/$q-{l}.raw)\"; done"
                          .format(q=" ".join(streams), l=label), timeout=60)
        guest = cs.guest_lines(out)
        for s in streams.values():
            s.close()
        return guest, out

    def check_exact(self, what, streams, guest, out):
        """Exactly once, in order, both ways, on every stream."""
        for q, s in streams.items():
            g = guest.get(q)
            diag = "guest: %s\nhost: %s" % (g or out, s.summary())
            if not g:
                self.ok("%s: %s: the guest tool reported" % (what, q), False, diag)
                continue
            self.ok("%s: %s: guest kept its fd (no EOF, no write error)" % (what, q),
                    g["eof"] == 0 and g["werr"] == 0 and g["reopens"] == 0, diag)
            self.ok("%s: %s: host -> guest: %d records exactly once, in order"
                    % (what, q, s.tx_recs),
                    s.tx_end and g["rx_end"] == 1 and g["rx_recs"] == s.tx_recs
                    and g["end_seq"] == s.tx_recs and g["dup"] == 0 and g["lost"] == 0
                    and g["bad_bytes"] == 0 and g["bad_crc"] == 0 and g["wrong_sid"] == 0
                    and s.tx_recs > 0, diag)
            r = s.rx
            self.ok("%s: %s: guest -> host: %d records exactly once, in order"
                    % (what, q, g["tx_recs"]),
                    g["tx_end"] == 1 and r.end and r.recs == g["tx_recs"]
                    and r.end_seq == g["tx_recs"] and r.dup == 0 and r.lost == 0
                    and r.bad_bytes == 0 and r.bad_crc == 0 and r.wrong_sid == 0
                    and r.recs > 0, diag)

    # ---- resets --------------------------------------------------------

    def run_resets(self, n):
        """The stream on every port while n reset-attribute resets and n
        features_mask writes run."""
        what = "stream across %d resets and %d features_mask writes" % (n, n)
        streams = self.start_streams([q for q, _, _ in PORTS], "rst", 240)
        flowing = self.flowing(streams)
        self.ok("%s: every port streams both ways before" % what, flowing,
                lambda: "\n".join(s.summary() for s in streams.values()))
        self.drain_events()
        ev0 = len(self.events)
        m0 = self.vm.trace_mark()
        t0 = time.monotonic()
        rc, out = self.sh(
            "r0=$(cat $D/resets)\n"
            "i=0; while [ $i -lt %d ]; do i=$((i + 1));\n"
            "  echo 1 > $D/reset || echo \"reset $i failed\"; usleep 150000\n"
            "done\n"
            "i=0; while [ $i -lt %d ]; do i=$((i + 1));\n"
            "  if [ $((i %% 2)) -eq 1 ]; then m=%s; else m=%s; fi\n"
            "  echo $m > $D/features_mask || echo \"features_mask $i failed\"; usleep 150000\n"
            "done\n"
            "[ $((i %% 2)) -eq 1 ] && echo %s > $D/features_mask\n"
            "echo resets=$r0/$(cat $D/resets) status=$(cat $D/status) mask=$(cat $D/features_mask)\n"
            % (n, n, MASK_OFF, MASK_ALL, MASK_ALL), timeout=600)
        took = time.monotonic() - t0
        m1 = self.vm.trace_mark()
        self.ktap.diag("%s: %d resets took %.1fs" % (self.tag, 2 * n, took))
        m = re.search(r"resets=(\d+)/(\d+)", out)
        made = int(m.group(2)) - int(m.group(1)) if m else -1
        self.ok("%s: the guest made %d resets (resets counter)" % (what, 2 * n),
                rc == 0 and "failed" not in out and made == 2 * n, out)
        # let the ports settle before the END records (and QEMU's event
        # rate limit of a second let the last VSERPORT_CHANGE out)
        time.sleep(2.5)
        self.drain_events()
        events = self.events[ev0:]
        guest, gout = self.finish_streams(streams, "rst")
        self.check_exact(what, streams, guest, gout)

        for q in SERIAL:
            evs = [e["data"].get("open") for e in events
                   if e.get("event") == "VSERPORT_CHANGE" and e.get("data", {}).get("id") == q]
            trues = evs.count(True)
            # QEMU rate-limits VSERPORT_CHANGE to one a second per port
            # (monitor_qapi_event_conf) and sends the last of each second:
            # the "false" of a reset is followed within it by the "true"
            # of the guest's PORT_OPEN, so a burst of resets shows as a
            # run of "true" events, each one a port opened again.
            falses = evs.count(False)
            self.ok("%s: QMP VSERPORT_CHANGE of %s: opened again after the resets, "
                    "open at the end (%d true, %d false; QEMU sends one a second)"
                    % (what, q, trues, falses),
                    trues >= 2 and evs[-1] is True,
                    "events for %s: %s" % (q, evs))
        vals = collapse([v for _, v in self.vm.status_writes(m0, m1)])
        self.ok("%s: the trace shows each reset as 0 then 1, 3, 0xb, 0xf (%d times)"
                % (what, 2 * n), vals == SETUP * (2 * n),
                "collapsed status writes (%d): %s" % (len(vals), " ".join("0x%x" % v for v in vals[:40])))
        st = self.host_status()
        self.ok("%s: QMP status DRIVER_OK after (0x%x)" % (what, st), st == 0xf, "")

    # ---- unbind/bind ---------------------------------------------------

    def wait_reopened(self, streams, label, count):
        """Wait (20 s at most) until each tool of streams has reopened its
        port count times (its -o file); (all did, what the files said)."""
        files = " ".join("/tmp/%s-%s.opens" % (q, label) for q in streams)
        rc, out = self.sh("n=0; while [ $n -lt 200 ]; do ok=1; for f in %s; do "
                          "[ \"$(cat $f 2>/dev/null || echo 0)\" -ge %d ] || ok=0; done; "
                          "[ $ok = 1 ] && break; usleep 100000; n=$((n + 1)); done; "
                          "echo opens: $(cat %s 2>/dev/null)" % (files, count, files))
        vals = out.split("opens:")[-1].split()
        return (rc == 0 and len(vals) == len(streams)
                and all(v.isdigit() and int(v) >= count for v in vals)), out

    def run_binds(self, n):
        what = "stream across %d unbind/bind cycles" % n
        streams = self.start_streams(SERIAL, "ub", 240, reopen=True)
        self.ok("%s: the serial ports stream both ways before" % what, self.flowing(streams),
                lambda: "\n".join(s.summary() for s in streams.values()))
        stalled = []
        m0 = self.vm.trace_mark()
        for i in range(1, n + 1):
            rx0 = {q: s.rx.next for q, s in streams.items()}
            tx0 = {q: s.tx_bytes for q, s in streams.items()}
            rc, out = self.sh("echo %s > %s/unbind && usleep 300000 && echo %s > %s/bind && "
                              "echo bound" % (self.dev, self.drv.drvdir, self.dev, self.drv.drvdir))
            if rc != 0:
                stalled.append("cycle %d: unbind/bind failed: %s" % (i, out))
                break
            # The driver sends what it parked at unbind without the tool:
            # data moving is no proof that the tool is back on its port.
            # Take the port away again only once it is, or a cycle falls
            # into the tool's reopen and it sees one where there were two.
            ok, out = self.wait_reopened(streams, "ub", i)
            if not ok:
                stalled.append("cycle %d: the tools were not back on their ports within "
                               "20 s: %s" % (i, out))
                break
            # both ways moving again: host got new records, QEMU took new bytes
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if all(s.rx.next > rx0[q] and s.tx_bytes > tx0[q] + 4096
                       for q, s in streams.items()):
                    break
                time.sleep(0.1)
            else:
                stalled.append("cycle %d: %s" % (i, "; ".join(s.summary() for s in streams.values())))
                break
        m1 = self.vm.trace_mark()
        self.ok("%s: both ways move again after every bind" % what, not stalled,
                "\n".join(stalled))
        guest, gout = self.finish_streams(streams, "ub")
        for q, s in streams.items():
            g = guest.get(q)
            r = s.rx
            diag = "guest: %s\nhost: %s" % (g or gout, s.summary())
            if not g:
                self.ok("%s: %s: the guest tool reported" % (what, q), False, diag)
                continue
            self.ktap.diag("%s: %s: %s: lost at unbind: host->guest %d records (%d bytes "
                           "skipped), guest->host %d records (%d bytes skipped)"
                           % (self.tag, what, q, g["lost"], g["bad_bytes"], r.lost, r.bad_bytes))
            self.ok("%s: %s: the tool saw the port go and reopened it %d times"
                    % (what, q, n), g["reopens"] == n, diag)
            # revirt_console parks what a port held across unbind/bind:
            # nothing may be lost; the kernel's driver is held to order only.
            exact = self.drv.kind == "revirt"
            self.ok("%s: %s: host -> guest %s, END arrived"
                    % (what, q, "exactly once, in order" if exact else "in order, no duplicate"),
                    g["rx_end"] == 1 and g["dup"] == 0 and g["wrong_sid"] == 0
                    and g["end_seq"] == s.tx_recs and g["rx_recs"] > 0
                    and (not exact or (g["lost"] == 0 and g["bad_bytes"] == 0
                                       and g["bad_crc"] == 0 and g["rx_recs"] == s.tx_recs)),
                    diag)
            self.ok("%s: %s: guest -> host %s, END arrived"
                    % (what, q, "exactly once, in order" if exact else "in order, no duplicate"),
                    r.end and r.dup == 0 and r.wrong_sid == 0 and r.end_seq == g["tx_recs"]
                    and r.recs > 0
                    and (not exact or (r.lost == 0 and r.bad_bytes == 0 and r.bad_crc == 0
                                       and r.recs == g["tx_recs"])),
                    diag)
        vals = collapse([v for _, v in self.vm.status_writes(m0, m1)])
        want = SETUP     # unbind: 0, 1; bind: 3, 0xb, 0xf
        self.ok("%s: the trace shows every unbind reset (0, 1) and every bind set up "
                "(3, 0xb, 0xf)" % what,
                vals == want * n if self.drv.kind == "revirt" else vals.count(0xf) >= n,
                "collapsed status writes: %s" % " ".join("0x%x" % v for v in vals[:40]))
        names = self.ports()
        self.ok("%s: all ports back with their names" % what,
                all(nm in names for _, nm, _ in PORTS), "ports: %s" % names)

    # ---- ports ---------------------------------------------------------

    def run_names(self):
        p = self.ports()
        want = {nm: ("1" if q == "con0" else "0") for q, nm, _ in PORTS}
        good = all(nm in p for nm in want)
        diag = "ports: %s" % p
        if good and self.drv.kind == "revirt":
            good = all(p[nm].get("console") == c and p[nm].get("node") == "1"
                       for nm, c in want.items())
            # A console is the hvc tty; its own node refuses to open.
            con = p["org.revirt.console"]["entry"]
            rc, out = self.sh("cat /dev/%s 2>&1; echo rc=$?" % con)
            diag += "; open /dev/%s: %s" % (con, out.strip())
            good = good and "No such device or address" in out
        self.ok("port names in %s/*/name; serial ports are device nodes, the console's "
                "node refuses to open (ENXIO)" % self.drv.cls, good, diag)
        rc, out = self.sh("[ -c /dev/hvc0 ] && echo hvc0")
        self.ok("the virtconsole is /dev/hvc0", "hvc0" in out, out)
        return p

    def run_hotplug(self):
        path = self.sock("port3")
        name = "org.revirt.port3"
        try:
            self.vm.qmp("chardev-add", id="ch_port3",
                        backend={"type": "socket", "data": {
                            "addr": {"type": "unix", "data": {"path": path}},
                            "server": True, "wait": False}})
            self.vm.qmp("device_add", driver="virtserialport", bus="vser0.0",
                        chardev="ch_port3", id="port3", name=name)
        except Exception as e:
            self.ok("hot-add a virtserialport with QMP device_add", False, str(e))
            return
        rc, out = self.sh(
            "i=0; while [ $i -lt 100 ]; do for p in $CLS/*; do\n"
            "  [ \"$(cat $p/name 2>/dev/null)\" = %s ] && [ -c /dev/${p##*/} ] && break 2; done\n"
            "  usleep 100000; i=$((i + 1)); done\n"
            "[ $i -lt 100 ] || { echo 'no port named %s'; ls $CLS; exit 1; }\n"
            "echo entry=${p##*/}\n"
            "rvcons-stream watch /dev/${p##*/} 30 > /tmp/w3.out 2>&1 </dev/null &\n"
            "echo $! > /tmp/w3.pid\n" % (name, name))
        m = re.search(r"entry=(\S+)", out)
        self.ok("hot-added port: class entry named %s and its device node appear" % name,
                rc == 0 and m, out)
        if not m:
            return
        entry = m.group(1)
        s = cs.connect(path)
        time.sleep(0.5)
        s.sendall(b"hotplug-data\n")
        rc, out = self.sh("i=0; while [ $i -lt 100 ] && ! grep -q hotplug-data /tmp/w3.out; do "
                          "usleep 100000; i=$((i + 1)); done; cat /tmp/w3.out")
        self.ok("hot-added port carries data to a guest reader", "hotplug-data" in out, out)
        self.drain_events()
        try:
            self.vm.qmp("device_del", id="port3")
        except Exception as e:
            self.ok("hot-remove the port with QMP device_del", False, str(e))
            s.close()
            return
        rc, out = self.sh(
            "i=0; while [ $i -lt 100 ] && { [ -e $CLS/%s ] || [ -e /dev/%s ]; }; do "
            "usleep 100000; i=$((i + 1)); done\n"
            "echo gone_entry=$([ -e $CLS/%s ] && echo 0 || echo 1) gone_node=$([ -e /dev/%s ] && echo 0 || echo 1)\n"
            "i=0; while [ $i -lt 50 ] && ! grep -q -e '^eof' -e '^err' /tmp/w3.out; do "
            "usleep 100000; i=$((i + 1)); done; cat /tmp/w3.out" % (entry, entry, entry, entry))
        s.close()
        self.sh("kill $(cat /tmp/w3.pid) 2>/dev/null; true")
        self.ok("device_del: class entry and device node of %s go away" % entry,
                "gone_entry=1 gone_node=1" in out, out)
        eof = re.search(r"^eof ", out, re.M)
        err = re.search(r"^err ", out, re.M)
        self.ok("device_del: the program holding %s open gets EOF" % entry,
                eof and not err if self.drv.kind == "revirt" else (eof or err), out)
        try:
            self.vm.qmp("chardev-remove", id="ch_port3")
        except Exception:
            pass

    def run_host_reconnect(self):
        ports = self.ports()
        q, name = "port2", "org.revirt.port2"
        entry = ports.get(name, {}).get("entry")
        if not entry:
            self.ok("host close/reopen: port %s exists" % name, False, "ports: %s" % ports)
            return
        attr = "%s/%s/host_connected" % (self.drv.cls, entry)
        has = self.drv.kind == "revirt"

        def hc(want):
            rc, out = self.sh("i=0; while [ $i -lt 50 ] && [ \"$(cat %s)\" != %s ]; do "
                              "usleep 100000; i=$((i + 1)); done; cat %s" % (attr, want, attr))
            return out.strip()
        s = cs.connect(self.sock(q))
        seen = [hc(1)] if has else []
        self.sh("rvcons-stream watch /dev/%s 30 > /tmp/w2.out 2>&1 </dev/null &\n"
                "echo $! > /tmp/w2.pid" % entry)
        time.sleep(0.5)
        s.sendall(b"before-close\n")
        self.sh("i=0; while [ $i -lt 50 ] && ! grep -q before-close /tmp/w2.out; do "
                "usleep 100000; i=$((i + 1)); done")
        s.close()
        if has:
            seen.append(hc(0))
        time.sleep(1)
        s = cs.connect(self.sock(q))
        if has:
            seen.append(hc(1))
        time.sleep(0.5)
        s.sendall(b"after-reopen\n")
        rc, out = self.sh("i=0; while [ $i -lt 50 ] && ! grep -q after-reopen /tmp/w2.out; do "
                          "usleep 100000; i=$((i + 1)); done; cat /tmp/w2.out")
        s.close()
        self.sh("kill $(cat /tmp/w2.pid) 2>/dev/null; true")
        if has:
            self.ok("host close/reopen of %s: host_connected 1, 0, 1" % entry,
                    seen == ["1", "0", "1"], "host_connected: %s" % seen)
        lines = [l.split()[0] + (" " + l.split()[-1] if l.startswith("data") else "")
                 for l in out.splitlines() if l.split()]
        want = ["data before-close_", "eof", "data after-reopen_"]
        got = [l for l in lines if l.startswith(("data", "eof", "err"))]
        if got[3:] == ["eof"]:
            got = got[:3]       # the host closed again at the end
        self.ok("host close/reopen of %s: guest reader sees data, EOF, data again" % entry,
                got == want, "watch output:\n%s" % out)

    # ---- shell ---------------------------------------------------------

    def run_shell(self):
        s = cs.connect(self.sock("con0"))
        s.settimeout(0.2)
        rc, out = self.sh("stty -F /dev/hvc0 raw -echo; "
                          "(setsid sh -c 'exec sh </dev/hvc0 >/dev/hvc0 2>&1' &) ; echo started")
        buf = b""

        def read_until(pat, secs):
            nonlocal buf
            deadline = time.monotonic() + secs
            while time.monotonic() < deadline:
                if pat in buf:
                    return True
                try:
                    d = s.recv(4096)
                    if not d:
                        return pat in buf
                    buf += d
                except OSError:
                    pass
            return pat in buf
        s.sendall(b"echo ready-$((2+3))\n")
        up = read_until(b"ready-5", 20)
        self.ok("a shell on /dev/hvc0 answers on the virtconsole's socket", up,
                "host read: %r\nguest: %s" % (buf[-300:], out))
        if not up:
            s.close()
            return
        buf = b""
        s.sendall(b"sleep 2; echo done-$((6*7))\n")
        time.sleep(0.5)
        if self.drv.kind == "revirt":
            rc, out = self.sh("r=$(cat $D/resets); echo 1 > $D/reset; echo rc=$? resets=$r/$(cat $D/resets)")
            self.ok("reset during the shell's sleep", "rc=0" in out, out)
        got = read_until(b"done-42", 30)
        self.ok("the shell's command survives %s: host reads done-42"
                % ("a reset in its middle" if self.drv.kind == "revirt" else "(no reset: kernel driver)"),
                got, "host read: %r" % buf[-300:])
        s.sendall(b"exit\n")
        time.sleep(0.3)
        s.close()

    def check_clean(self):
        rc, out = self.sh("dmesg")
        bad = kernel_bad_lines(out.splitlines())
        self.ok("no warning or oops in dmesg", rc == 0 and not bad, "\n".join(bad[:40]))


OOPS_RE = re.compile(r"BUG:|Oops|Kernel panic|WARNING:|general protection")


def run_vm(ktap, env, drv, transport):
    """Every part on one VM, the resets last (they matter most, and a guest
    that breaks there takes nothing else with it); a part that loses the
    guest (oops, console timeout) ends the VM with a not ok that carries
    the kernel's report."""
    try:
        c = ConsVM(ktap, env, drv, transport)
    except VMError as e:
        ktap.ok("console %s: VM boots" % transport, False, str(e))
        return
    pci = transport == "pci"
    revirt = drv.kind == "revirt"
    parts = [("names", c.run_names)]
    if pci:
        parts += [("hot-add and remove", c.run_hotplug),
                  ("host close and reopen", c.run_host_reconnect)]
    parts += [("shell on hvc0", c.run_shell),
              ("unbind/bind stream", lambda: c.run_binds(BINDS))]
    if revirt:
        parts += [("reset stream", lambda: c.run_resets(RESETS))]
    else:
        parts += [("plain stream", c.run_plain)]
    try:
        if not c.load():
            return
        for name, fn in parts:
            try:
                fn()
            except (VMError, OSError) as e:
                c.ok("%s: completes with the guest alive" % name, False,
                     "%s\nkernel report on the console:\n%s" % (str(e).splitlines()[0], c.oops()))
                return
            if c.oops():
                c.ok("%s: no oops or warning on the console" % name, False, c.oops())
                return
        c.check_clean()
    finally:
        for s in c.streams:
            s.close()
        c.stop()


def _run_plain(self):
    what = "stream (no reset)"
    streams = self.start_streams([q for q, _, _ in PORTS], "plain", 120)
    self.ok("%s: every port streams both ways" % what, self.flowing(streams),
            lambda: "\n".join(s.summary() for s in streams.values()))
    time.sleep(5)
    guest, out = self.finish_streams(streams, "plain")
    self.check_exact(what, streams, guest, out)


ConsVM.run_plain = _run_plain


# ---- the simulated device's lies ----------------------------------------

SIM_SCRIPT = r"""
SIM=/sys/kernel/debug/revirt_sim/revirt0
D=/sys/bus/revirt/devices/revirt0
rv_insmod revirt && rv_insmod revirt_sim rng=0 blk=0 console=1 console_ports=3 &&
rv_insmod revirt_console || exit 1
i=0; while [ ! -c /dev/rvport0p2 ] && [ $i -lt 50 ]; do usleep 100000; i=$((i+1)); done
# A port held open on fd 3 (port 1) and 4 (port 2): the loopback answers.
exec 3<>/dev/rvport0p1 4<>/dev/rvport0p2
loop() {  # loop FD WORD: write WORD, read it back, print what came
	echo "$2" >&$1
	line=; read -t 5 line <&$1
	echo "loop$1=$line"
}
loop 3 one-a; loop 4 two-a
r0=$(cat $D/resets)
echo 1 >$SIM/ctrl_bad_port; echo 1 >$SIM/ctrl_short; echo 1 >$SIM/ctrl_bad_event
echo 1 >$D/reset; usleep 500000
loop 3 one-b; loop 4 two-b
echo "lies_resets=$r0/$(cat $D/resets)"
# DEVICE_NEEDS_RESET with a line on its way: it arrives once, the fds stay.
r2=$(cat $D/resets)
echo before-nr >&3; echo 1 >$SIM/needs_reset
i=0; while [ "$(cat $D/resets)" = "$r2" ] && [ $i -lt 50 ]; do usleep 100000; i=$((i+1)); done
line=; read -t 5 line <&3; echo "nr3=$line"
line=; read -t 1 line <&3; echo "nr3again=$line"
loop 4 two-n
echo "nr_resets=$r2/$(cat $D/resets)"
# A used length beyond port 2's receive buffer (queue 6): the ring breaks
# the queue, the driver resets the device.
r1=$(cat $D/resets)
echo 6 >$SIM/fault_queue; echo 1 >$SIM/used_long_len
echo lost >&4
i=0; while [ "$(cat $D/resets)" = "$r1" ] && [ $i -lt 50 ]; do usleep 100000; i=$((i+1)); done
echo 0xffffffff >$SIM/fault_queue
usleep 300000
echo "long_resets=$r1/$(cat $D/resets)"
loop 3 one-c; loop 4 two-c
exec 3>&- 4>&-
echo "guest_open=$(cat $SIM/port_guest_open)"
rmmod revirt_console && rmmod revirt_sim && echo rmmod=ok
dmesg | grep -E 'revirt_console|broken|revirt_sim: fault'
"""


def run_sim(ktap, env):
    """revirt_sim's console lies; the driver says so once and goes on."""
    tag = "console sim"
    try:
        vm = VM(kernel=env.kernel, initrd=env.initrd, name="console-sim")
    except VMError as e:
        ktap.ok("%s: VM boots" % tag, False, str(e))
        return
    try:
        rc, out = vm.sh(GUEST_LIB + SIM_SCRIPT, 120)
        vals = dict(m.groups() for m in re.finditer(r"^(\w+)=(.*)$", out, re.M))
        ktap.ok("%s: ports 1 and 2 loop back" % tag,
                re.search(r"^loop3=one-a$", out, re.M) is not None
                and re.search(r"^loop4=two-a$", out, re.M) is not None, out)
        lies = [("a PORT_OPEN naming port 10", r"control event 6 names port 10, the device has 3"),
                ("a 4-byte control message", r"a control message of 4 bytes"),
                ("an unknown event", r"unknown control event 99")]
        for what, pat in lies:
            n = len(re.findall(r"revirt_console revirt0: revirt_console: " + pat, out))
            ktap.ok("%s: %s: one line naming revirt0" % (tag, what), n == 1,
                    "%d lines matching %r\n%s" % (n, pat, out))
        ktap.ok("%s: after the lies both ports still loop back, across the reset" % tag,
                re.search(r"^loop3=one-b$", out, re.M) is not None
                and re.search(r"^loop4=two-b$", out, re.M) is not None, out)
        r = vals.get("nr_resets", "0/0").split("/")
        ktap.ok("%s: DEVICE_NEEDS_RESET: the device is reset, the open ports stay, the line "
                "written before arrives once" % tag,
                len(r) == 2 and int(r[1]) > int(r[0]) and vals.get("nr3") == "before-nr"
                and vals.get("nr3again") == "" and vals.get("loop4", "") and
                re.search(r"^loop4=two-n$", out, re.M) is not None, out)
        r = vals.get("long_resets", "0/0").split("/")
        ktap.ok("%s: a used length beyond the buffer breaks the queue and resets the device"
                % tag, "queue input2 broken" in out and len(r) == 2 and int(r[1]) > int(r[0]),
                out)
        ktap.ok("%s: both ports loop back after that reset" % tag,
                re.search(r"^loop3=one-c$", out, re.M) is not None
                and re.search(r"^loop4=two-c$", out, re.M) is not None, out)
        ktap.ok("%s: closing the ports told the device (port_guest_open 1 0 0)" % tag,
                vals.get("guest_open") == "1 0 0", out)
        ktap.ok("%s: rmmod revirt_console and revirt_sim" % tag,
                vals.get("rmmod") == "ok" and rc == 0, out)
        bad = [r for r in vm.kernel_reports()]
        rc2, dm = vm.sh("dmesg")
        bad += kernel_bad_lines(dm.splitlines())
        ktap.ok("%s: no warning or oops" % tag, not bad, "\n".join(bad[:40]))
    except VMError as e:
        ktap.ok("%s: guest" % tag, False, str(e))
    finally:
        vm.stop()


def run(ktap, env):
    kind = os.environ.get("REVIRT_CONS_DRIVER", "revirt")
    drv = Drv(kind)
    if kind == "revirt":
        if env.skip_unbuilt(ktap, "console: revirt_console streams across resets",
                            ["revirt", "revirt_pci", "revirt_mmio", "revirt_console"]):
            return
        run_vm(ktap, env, drv, "pci")
        run_vm(ktap, env, drv, "mmio")
        if not env.skip_unbuilt(ktap, "console sim: the device's lies",
                                ["revirt", "revirt_sim", "revirt_console"]):
            run_sim(ktap, env)
    else:
        run_vm(ktap, env, drv, "pci")
