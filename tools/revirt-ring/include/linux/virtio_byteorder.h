/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Userspace shim of the virtio byte-order helpers, with the kernel's
 * meaning: little_endian true means little-endian fields, false means
 * big-endian ones (a legacy device on a big-endian host).  Transports pass
 * virtio_legacy_is_little_endian() for legacy devices.
 */
#ifndef _SHIM_LINUX_VIRTIO_BYTEORDER_H
#define _SHIM_LINUX_VIRTIO_BYTEORDER_H
#include <endian.h>
#include <shim_kernel.h>
#include <linux/types.h>
#include <linux/virtio_types.h>

/*
 * The tests and the fuzzer run the ring as on a big-endian CPU, where a
 * ring's byte order is what the transport says (little_endian), so that
 * both orders are exercised on this little-endian machine.  On a
 * little-endian CPU every ring is little endian and the ring's
 * conversions fold away; the benchmark (SHIM_NATIVE_HOST) builds that.
 */
static inline bool virtio_legacy_is_little_endian(void)
{
#ifdef SHIM_NATIVE_HOST
	return __BYTE_ORDER == __LITTLE_ENDIAN;
#else
	return false;
#endif
}

/*
 * A conversion to the CPU's order follows a read of the ring: the fuzzer's
 * device may write it now (SHIM_FUZZ, see READ_ONCE() in shim_kernel.h).
 */
#ifdef SHIM_FUZZ
#define shim_read_done()	shim_device_access(NULL)
#else
#define shim_read_done()	do { } while (0)
#endif

static inline u16 __virtio16_to_cpu(bool little_endian, __virtio16 val)
{
	shim_read_done();
	return little_endian ? le16toh(val) : be16toh(val);
}

static inline __virtio16 __cpu_to_virtio16(bool little_endian, u16 val)
{
	return little_endian ? htole16(val) : htobe16(val);
}

static inline u32 __virtio32_to_cpu(bool little_endian, __virtio32 val)
{
	shim_read_done();
	return little_endian ? le32toh(val) : be32toh(val);
}

static inline __virtio32 __cpu_to_virtio32(bool little_endian, u32 val)
{
	return little_endian ? htole32(val) : htobe32(val);
}

static inline u64 __virtio64_to_cpu(bool little_endian, __virtio64 val)
{
	shim_read_done();
	return little_endian ? le64toh(val) : be64toh(val);
}

static inline __virtio64 __cpu_to_virtio64(bool little_endian, u64 val)
{
	return little_endian ? htole64(val) : htobe64(val);
}
#endif
