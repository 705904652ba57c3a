# SPDX-License-Identifier: GPL-2.0-only
#
# revirt: out-of-tree build of the modules, and the test entry points.
#
#   make                  build the modules against KDIR (Debian 6.1 headers)
#   make check            run every test on 6.1 and 6.12 and a subset on the
#                         debug kernel (installs what is missing); KVER=...
#                         for one kernel only
#   make check-intree     build the debug kernel's 6.1 tree with revirt in
#                         it, =y and =m, and run the unbind/bind tests on each
#   make check-debug      the suite on a debug kernel built here (KASAN,
#                         lockdep, kmemleak, DMA-API debug, UBSAN)
#   make run              boot a VM in which revirt drives its devices
#   make bench            revirt_blk against the kernel's virtio_blk (numbers)
#   make bench-ring       revirt's virtqueue against the kernel's own, side by
#                         side (not a test); both write their tables into
#                         Documentation/revirt/performance.rst
#   make fuzz             fuzz the virtqueue (tools/revirt-ring) for FUZZ_TIME
#                         s (600), then report the coverage of revirt_ring.c
#                         the inputs reach: tools/revirt-ring/build/fuzz-report/
#   make clean

# "make check" runs on every kernel of scripts/revirt-kernels (Debian 6.1
# and 6.12); "make check KVER=..." on that one only.
CHECK_KVERS := $(if $(filter command line,$(origin KVER)),$(KVER))
KVER ?= $(shell ls -1 /lib/modules 2>/dev/null | grep -E '^6\.1\.0-.*-amd64$$' | sort -V | tail -n 1)
KDIR ?= /lib/modules/$(KVER)/build
REVIRT_CONFIG := CONFIG_REVIRT=m CONFIG_REVIRT_PCI=m CONFIG_REVIRT_MMIO=m CONFIG_REVIRT_RNG=m \
		 CONFIG_REVIRT_SIM=m CONFIG_REVIRT_BLK=m CONFIG_REVIRT_BALLOON=m \
		 CONFIG_REVIRT_CONSOLE=m
MODDIR := $(CURDIR)/drivers/revirt

.PHONY: all modules deps check check-ring check-debug check-intree run bench bench-ring fuzz clean

all: modules

deps:
	scripts/revirt-deps

modules:
	$(MAKE) -C $(KDIR) M=$(MODDIR) $(REVIRT_CONFIG) W=1 modules

check: deps
	scripts/check $(CHECK_KVERS)

check-ring:
	$(MAKE) -C tools/revirt-ring check

# A long campaign, not a test (check-ring runs a short one).
fuzz: deps
	$(MAKE) -C tools/revirt-ring fuzz

check-debug: deps
	scripts/check-debug

# The benchmarks write their tables into performance.rst's generated blocks
# (scripts/revirt-bench-doc); "BENCH_DOC=" runs them without.
BENCH_DOC ?= $(CURDIR)/Documentation/revirt/performance.rst

bench-ring: deps
	BENCH_DOC='$(BENCH_DOC)' BENCH_CMD='make bench-ring' $(MAKE) -C tools/revirt-ring bench

# revirt in a linux-source-6.1 tree, =y and =m (minutes: not in "check")
check-intree: deps
	scripts/revirt-intree

run: deps modules
	scripts/revirt-run "$(KVER)" $(MODDIR)

bench: deps modules
	BENCH_DOC='$(BENCH_DOC)' BENCH_CMD='make bench' scripts/revirt-bench "$(KVER)" $(MODDIR) $(BENCH_ARGS)

clean:
	$(MAKE) -C $(KDIR) M=$(MODDIR) clean 2>/dev/null || true
	$(MAKE) -C tools/revirt-ring clean 2>/dev/null || true
