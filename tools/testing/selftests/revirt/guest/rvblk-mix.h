/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The 64-bit mixing step of the guest's block tools (rvblk-io.c,
 * rvblk-stamp.c): their patterns, stamps and checksums are made of it,
 * and the host side of test_35 computes the same in Python.
 */
#ifndef RVBLK_MIX_H
#define RVBLK_MIX_H

#include <stdint.h>

static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

#endif
