# SPDX-License-Identifier: GPL-2.0-only
# Helpers for the revirt selftest guest scripts (busybox sh).
# Installed as /usr/share/revirt/lib.sh; the host prepends ". <this>".

RV_MODDIR=/lib/modules/revirt
RV_BUS=/sys/bus/revirt
RV_HWRNG=/sys/class/misc/hw_random

rv_loaded() {
	[ -d "/sys/module/$1" ]
}

# rv_insmod NAME [PARAM...]: load $RV_MODDIR/NAME.ko unless loaded.
rv_insmod() {
	_m=$1
	shift
	rv_loaded "$_m" && return 0
	if [ ! -f "$RV_MODDIR/$_m.ko" ]; then
		echo "rv_insmod: $RV_MODDIR/$_m.ko missing"
		return 1
	fi
	insmod "$RV_MODDIR/$_m.ko" "$@"
}

rv_load_all() {
	rv_insmod revirt && rv_insmod revirt_pci && rv_insmod revirt_rng
}

rv_unload_all() {
	for _m in revirt_rng revirt_pci revirt; do
		if rv_loaded $_m; then
			rmmod $_m || return 1
		fi
	done
}

rv_attr() {
	if [ -r "$1" ]; then
		cat "$1" 2>/dev/null || echo '?'
	else
		echo '-'
	fi
}

# One line per revirt device:
# revirtN pci=ADDR device=.. vendor=.. status=.. driver=NAME|- resets=..
#   features_mask=.. features=..
rv_info() {
	[ -d $RV_BUS/devices ] || return 0
	for _d in $RV_BUS/devices/*; do
		[ -e "$_d" ] || continue
		_n=${_d##*/}
		_p=$(readlink -f "$_d")
		_p=${_p%/*}
		_p=${_p##*/}
		if [ -e "$_d/driver" ]; then
			_drv=$(readlink -f "$_d/driver")
			_drv=${_drv##*/}
		else
			_drv=-
		fi
		echo "$_n pci=$_p device=$(rv_attr $_d/device) vendor=$(rv_attr $_d/vendor)" \
			"status=$(rv_attr $_d/status) driver=$_drv resets=$(rv_attr $_d/resets)" \
			"features_mask=$(rv_attr $_d/features_mask) features=$(rv_attr $_d/features)" \
			"modalias=$(rv_attr $_d/modalias)"
	done
}

# rv_name PCIADDR: the revirtN whose parent is that PCI device.
rv_name() {
	for _d in $RV_BUS/devices/*; do
		_p=$(readlink -f "$_d")
		_p=${_p%/*}
		if [ "${_p##*/}" = "$1" ]; then
			echo "${_d##*/}"
			return 0
		fi
	done
	return 1
}

# rv_hex FILE COUNT: COUNT bytes of FILE as one hex string.
rv_read_hex() {
	timeout 10 head -c "$2" "$1" | od -An -v -tx1 | tr -d ' \n'
}

# rv_select N: make revirt_rng.N the current hwrng.
rv_select() {
	echo "revirt_rng.$1" >$RV_HWRNG/rng_current || return 1
	_cur=$(cat $RV_HWRNG/rng_current)
	if [ "$_cur" != "revirt_rng.$1" ]; then
		echo "rng_current is '$_cur', not revirt_rng.$1"
		return 1
	fi
}

# rv_entropy N: select revirt_rng.N, print "A <hex>" and "B <hex>", two
# reads of 64 bytes from /dev/hwrng.
rv_entropy() {
	rv_select "$1" || return 1
	echo "A $(rv_read_hex /dev/hwrng 64)"
	echo "B $(rv_read_hex /dev/hwrng 64)"
}

# rv_hung_arm SECS: arm the hung-task detector at SECS seconds, every
# blocked task reported; prints hung=SECS, or hung=none on a kernel
# without the detector.
rv_hung_arm() {
	_h=/proc/sys/kernel/hung_task_timeout_secs
	if [ -w $_h ]; then
		echo "$1" >$_h && echo -1 >/proc/sys/kernel/hung_task_warnings
		echo hung=$(cat $_h)
	else
		echo hung=none
	fi
}

# rv_bound_to DRIVER: the first revirtN bound to DRIVER (e.g. revirt_rng)
rv_bound_to() {
	for _x in $RV_BUS/devices/*; do
		[ "$(basename "$(readlink $_x/driver)")" = "$1" ] && { echo ${_x##*/}; return 0; }
	done
	return 1
}

# rv_wait_bound DRIVER: rv_bound_to, waiting up to 10 s for the device
rv_wait_bound() {
	_i=0
	while ! rv_bound_to "$1" >/dev/null && [ $_i -lt 100 ]; do
		usleep 100000; _i=$((_i + 1))
	done
	rv_bound_to "$1"
}

# rv_entropy_ok N: like rv_entropy but only checks: 64 bytes each, not all
# zero, the two reads differ.  Prints the reason and fails otherwise.
rv_entropy_ok() {
	rv_select "$1" || return 1
	_a=$(rv_read_hex /dev/hwrng 64)
	_b=$(rv_read_hex /dev/hwrng 64)
	if [ ${#_a} -ne 128 ] || [ ${#_b} -ne 128 ]; then
		echo "revirt_rng.$1: short read (${#_a}/2, ${#_b}/2 bytes)"
		return 1
	fi
	case $_a in *[1-9a-f]*) ;; *)
		echo "revirt_rng.$1: all zero"
		return 1
		;;
	esac
	if [ "$_a" = "$_b" ]; then
		echo "revirt_rng.$1: two reads returned the same data $_a"
		return 1
	fi
}

# rv_write FILE VALUE: write VALUE and a newline with one write(2) (echo);
# print "rc=<0|1> <error message>" (busybox: "sh: write error: <strerror>").
rv_write() {
	_err=$( (echo "$2" >"$1") 2>&1)
	_rc=$?
	echo "rc=$_rc $_err"
	return $_rc
}

# rv_kmsg TEXT: put a marker into the kernel log.
rv_kmsg() {
	echo "revirt-selftest: $*" >/dev/kmsg
}

# rv_dmesg_after TEXT: kernel log lines after the last marker TEXT (the
# whole log if there is none).  Linear in the log's length: after fault
# injection the log holds thousands of stack dumps.
rv_dmesg_after() {
	_log=/tmp/rv-dmesg.$$
	dmesg >"$_log"
	_at=$(grep -n -F "revirt-selftest: $*" "$_log" | tail -n 1 | cut -d: -f1)
	tail -n +$((${_at:-0} + 1)) "$_log"
	rm -f "$_log"
}

# rv_report_lines: from a kernel log on stdin, the lines holding one of
# the "|"-separated words of $RV_REPORT_WORDS (the checkers' reports),
# each as "report: LINE".  Two reports that fault injection makes the
# kernel give about itself are printed as "faultinject: LINE" instead:
#  - remove_proc_entry() warning from free_irq() about a /proc/irq entry
#    that request_irq() never created because an allocation failed
#    (genirq treats those entries as optional and keeps no record);
#  - lockdep's "inconsistent lock state" from fail_function's kprobe
#    handler: should_fail_ex() draws its random number under the CRNG's
#    spinlock from the int3 handler, which lockdep counts as NMI context.
rv_report_lines() {
	awk -v words="$RV_REPORT_WORDS" '
		function flush() {
			if (warn != "")
				print (warn ~ /remove_proc_entry/ &&
				       ctx ~ /unregister_(irq|handler)_proc/ ||
				       warn ~ /inconsistent lock state/ &&
				       ctx ~ /fei_kprobe_handler/ ? "faultinject: " : "report: ") warn
			warn = ""; ctx = ""
		}
		BEGIN { n = split(words, w, "|") }
		{
			if (warn != "") {
				ctx = ctx $0 "\n"
				if (index($0, "---[ end trace") || index($0, "</TASK>"))
					flush()
			}
			for (i = 1; i <= n; i++)
				if (index($0, w[i]))
					break
			if (i > n)
				next
			if (index($0, "WARNING:")) {
				flush(); warn = $0
			} else {
				print "report: " $0
			}
		}
		END { flush() }'
}

# rv_kmemleak_revirt: scan for leaks now; print the records of kmemleak
# that point into revirt (each line prefixed "kmemleak: "), then forget
# every record so that the next scan reports only new ones.  Prints
# nothing on a kernel without kmemleak.
rv_kmemleak_revirt() {
	_kl=/sys/kernel/debug/kmemleak
	[ -w $_kl ] || return 0
	echo scan >$_kl
	awk '/^unreferenced object/ { if (rec ~ /revirt/) printf "%s", rec; rec = "" }
		{ rec = rec "kmemleak: " $0 "\n" }
		END { if (rec ~ /revirt/) printf "%s", rec }' $_kl
	echo clear >$_kl
}

# rv_live_objects: objects live in the kmalloc caches that revirt code
# allocated itself (the allocation site is a revirt module's function, or
# the bare address of a module unloaded since).  Sysfs and kobject
# bookkeeping the kernel allocates for revirt's devices is left out: it
# lives as long as the device structures, which revirt allocates itself.  Needs the kernel booted with
# slub_debug=U,kmalloc-* (user tracking) and debugfs; prints -1 without.
# With -v, one "count site" line per allocation site before the total.
# The caches are shrunk first: under KASAN a freed object waits in the
# quarantine, still allocated as SLUB sees it, until its cache shrinks.
rv_live_objects() {
	_v=0
	[ "${1:-}" = -v ] && _v=1
	set -- /sys/kernel/debug/slab/kmalloc-*/alloc_traces
	if [ ! -r "$1" ]; then
		echo -1
		return
	fi
	for _c in /sys/kernel/slab/kmalloc-*/shrink; do
		echo 1 > "$_c" 2>/dev/null
	done
	cat "$@" | awk -v v=$_v '
		function flush() {
			if (mine) { total += count; if (v) print count, site }
			count = 0; mine = 0
		}
		/^ *[0-9]+ / {
			flush(); count = $1; site = $2
			mine = $0 ~ /\[revirt|0xffffffffc0/
		}
		END { flush(); print total + 0 }'
}

# rv_read_sum DEV BS SKIP COUNT [OUT]: read COUNT blocks of BS bytes of
# DEV from block SKIP with O_DIRECT (dd, for at most $RV_READ_TIMEOUT s,
# default 60) and print one line: "read rc=<dd's exit status>
# bytes=<bytes read> md5=<md5 of those bytes> err=<dd's error message>".
# With OUT the line goes into the file OUT, which appears only once the
# read is over (for a read in the background).
rv_read_sum() {
	_rf=$(mktemp /tmp/rv-read.XXXXXX) || return 1
	timeout "${RV_READ_TIMEOUT:-60}" dd if="$1" of="$_rf" bs="$2" skip="$3" count="$4" \
		iflag=direct 2>"$_rf.err"
	_rc=$?
	_line="read rc=$_rc bytes=$(($(wc -c <"$_rf"))) md5=$(md5sum "$_rf" | cut -d' ' -f1)"
	_line="$_line err=$(grep -v -e 'records in' -e 'records out' -e copied "$_rf.err" | tr '\n' ' ')"
	rm -f "$_rf" "$_rf.err"
	if [ -n "${5:-}" ]; then
		echo "$_line" >"$5.tmp" && mv "$5.tmp" "$5"
	else
		echo "$_line"
	fi
}

# rv_live_why: whether rv_live_objects can count here, one line:
#   "live: ok N"            it can (N: its count now)
#   "live: unavailable WHY" this guest was not set up for it (debugfs not
#                           mounted, the kernel booted without
#                           slub_debug=U,kmalloc-*), or it failed anyway
#   "live: impossible WHY"  the kernel cannot count (no SLUB debugging,
#                           no debugfs, no slab entries in debugfs)
rv_live_why() {
	_cmd=$(cat /proc/cmdline)
	set -- /sys/kernel/slab/kmalloc-[0-9]*
	if [ ! -d "$1" ]; then
		echo "live: impossible: no /sys/kernel/slab/kmalloc-* (not SLUB, or no sysfs)"
		return
	fi
	if [ ! -e "$1/store_user" ]; then
		echo "live: impossible: no $1/store_user (kernel without CONFIG_SLUB_DEBUG)"
		return
	fi
	if ! grep -q ' /sys/kernel/debug debugfs ' /proc/mounts; then
		if ! grep -qw debugfs /proc/filesystems; then
			echo "live: impossible: kernel without debugfs (CONFIG_DEBUG_FS)"
		else
			echo "live: unavailable: debugfs is not mounted on /sys/kernel/debug (cmdline: $_cmd)"
		fi
		return
	fi
	if [ ! -d /sys/kernel/debug/slab ]; then
		echo "live: impossible: no /sys/kernel/debug/slab (SLUB's debugfs files: kernel older than 5.14, or debugfs restricted; lockdown: $(cat /sys/kernel/security/lockdown 2>/dev/null || echo -))"
		return
	fi
	_all=0 _on=0 _traces=0
	for _c in /sys/kernel/slab/kmalloc-*; do
		[ -L "$_c" ] && continue
		_all=$((_all + 1))
		[ "$(cat "$_c/store_user" 2>/dev/null)" = 1 ] && _on=$((_on + 1))
		[ -r "/sys/kernel/debug/slab/${_c##*/}/alloc_traces" ] && _traces=$((_traces + 1))
	done
	if [ $_on -ne $_all ]; then
		echo "live: unavailable: $_on of $_all kmalloc caches track their users: boot with slub_debug=U,kmalloc-* (cmdline: $_cmd)"
		return
	fi
	if [ $_traces -ne $_all ]; then
		echo "live: unavailable: $_traces of $_all kmalloc caches have a readable alloc_traces in /sys/kernel/debug/slab, though all track their users"
		return
	fi
	_n=$(rv_live_objects 2>&1)
	case $_n in
	'' | *[!0-9]*) echo "live: unavailable: rv_live_objects printed '$_n' though all $_all kmalloc caches track their users and have alloc_traces" ;;
	*) echo "live: ok $_n" ;;
	esac
}

# ---- handing PCI devices between the kernel's virtio-pci and revirt-pci
# (Documentation/revirt/takeover.rst)

RV_PCI=/sys/bus/pci

# rv_pci_of REVIRTN: the address of the PCI function under a revirt device
rv_pci_of() {
	basename "$(dirname "$(readlink -f $RV_BUS/devices/$1)")"
}

# rv_pci_driver ADDR: the driver bound to PCI device ADDR, or "-".
rv_pci_driver() {
	if [ -e "$RV_PCI/devices/$1/driver" ]; then
		_drv=$(readlink -f "$RV_PCI/devices/$1/driver")
		echo "${_drv##*/}"
	else
		echo -
	fi
}

# rv_pci_unbind ADDR: unbind PCI device ADDR from its driver, if any.
rv_pci_unbind() {
	[ -e "$RV_PCI/devices/$1/driver" ] || return 0
	echo "$1" >"$RV_PCI/devices/$1/driver/unbind"
}

# rv_pci_take ADDR: hand PCI device ADDR to revirt-pci: unbind it, write
# revirt-pci to driver_override, bind it (now if revirt_pci is loaded,
# else when it loads).
rv_pci_take() {
	rv_pci_unbind "$1" || return 1
	echo revirt-pci >"$RV_PCI/devices/$1/driver_override" || return 1
	[ -d "$RV_PCI/drivers/revirt-pci" ] || return 0
	echo "$1" >"$RV_PCI/drivers/revirt-pci/bind"
}

# rv_pci_give_back ADDR: unbind PCI device ADDR from revirt-pci, clear
# driver_override, bind the kernel's virtio-pci.
rv_pci_give_back() {
	rv_pci_unbind "$1" || return 1
	echo >"$RV_PCI/devices/$1/driver_override" || return 1
	echo "$1" >"$RV_PCI/drivers/virtio-pci/bind"
}

# rv_takeover: run by init before the tests.  A kernel whose virtio-pci
# is built in (Debian's 6.12) has bound every virtio PCI device at boot;
# take each over for revirt-pci, so that the tests find them as on a
# kernel whose virtio-pci is a module nobody loaded (6.1).
rv_takeover() {
	for _d in "$RV_PCI"/devices/*; do
		[ "$(rv_pci_driver "${_d##*/}")" = virtio-pci ] || continue
		rv_pci_take "${_d##*/}" || return 1
	done
}

# rv_kmods_load: insmod the kernel's own modules that the initramfs
# carries (KMODS of scripts/mkinitramfs), in dependency order.
rv_kmods_load() {
	[ -f /lib/modules/kernel/order ] || return 0
	for _f in $(cat /lib/modules/kernel/order); do
		rv_loaded "${_f%.ko}" && continue
		insmod "/lib/modules/kernel/$_f" || return 1
	done
}

# rv_hwrng_ok NAME: make hwrng NAME current and read it twice (64 bytes,
# not all zero, the two reads differ); prints the reason and fails
# otherwise.
rv_hwrng_ok() {
	echo "$1" >$RV_HWRNG/rng_current || return 1
	_cur=$(cat $RV_HWRNG/rng_current)
	if [ "$_cur" != "$1" ]; then
		echo "rng_current is '$_cur', not $1"
		return 1
	fi
	_a=$(rv_read_hex /dev/hwrng 64)
	_b=$(rv_read_hex /dev/hwrng 64)
	if [ ${#_a} -ne 128 ] || [ ${#_b} -ne 128 ]; then
		echo "$1: short read (${#_a}/2, ${#_b}/2 bytes)"
		return 1
	fi
	case $_a in *[1-9a-f]*) ;; *)
		echo "$1: all zero"
		return 1
		;;
	esac
	if [ "$_a" = "$_b" ]; then
		echo "$1: two reads returned the same data"
		return 1
	fi
}
