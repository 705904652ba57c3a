#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# What "make run" shows: revirt drives the VM's devices, then a reset and
# a reload of each layer, with entropy read after each step.
. /usr/share/revirt/lib.sh

step() {
	echo
	echo "### $*"
}

show() {
	for d in $RV_BUS/devices/revirt*; do
		[ -e "$d" ] || continue
		drv=-
		[ -e "$d/driver" ] && drv=$(basename "$(readlink -f "$d/driver")")
		echo "${d##*/}: device $(cat "$d/device") status $(cat "$d/status") driver $drv resets $(cat "$d/resets")"
	done
}

entropy() {
	for r in $(cat $RV_HWRNG/rng_available); do
		case "$r" in revirt_rng.*) ;; *) continue ;; esac
		echo "$r" >$RV_HWRNG/rng_current
		printf '%s: ' "$r"
		dd if=/dev/hwrng bs=16 count=1 2>/dev/null | hexdump -v -e '16/1 "%02x" "\n"'
	done
}

step "insmod revirt revirt_pci revirt_rng"
rv_insmod revirt && rv_insmod revirt_pci && rv_insmod revirt_rng || exit 1
show
entropy

step "echo 1 > /sys/bus/revirt/devices/revirt0/reset"
echo 1 >$RV_BUS/devices/revirt0/reset
show
entropy

step "revirt1: renegotiate without indirect descriptors and event index"
echo 0xffffffffcfffffff >$RV_BUS/devices/revirt1/features_mask
echo "revirt1 features: $(cat $RV_BUS/devices/revirt1/features)"
echo 0xffffffffffffffff >$RV_BUS/devices/revirt1/features_mask
echo "revirt1 features: $(cat $RV_BUS/devices/revirt1/features)"

step "reload every layer: rmmod revirt_rng revirt_pci revirt; insmod again"
rmmod revirt_rng && rmmod revirt_pci && rmmod revirt || exit 1
rv_insmod revirt && rv_insmod revirt_pci && rv_insmod revirt_rng || exit 1
show
entropy

step "kernel messages of revirt"
dmesg | grep -E 'revirt' | tail -n 20
