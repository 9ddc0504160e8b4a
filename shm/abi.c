/* SPDX-License-Identifier: MIT */
/* Segment header init and validation (shm/abi.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "shm/abi.h"

void onering_seg_header_init(struct onering_seg_header *hdr, uint32_t kind, uint64_t size,
			     uint32_t node, uint64_t epoch)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = ONERING_SEG_MAGIC;
	hdr->abi_major = ONERING_ABI_MAJOR;
	hdr->abi_minor = ONERING_ABI_MINOR;
	hdr->kind = kind;
	hdr->node = node;
	hdr->size = size;
	hdr->epoch = epoch;
}

#define FAIL(code, ...)                                       \
	do {                                                  \
		if (err && err_size)                          \
			snprintf(err, err_size, __VA_ARGS__); \
		return (code);                                \
	} while (0)

int onering_seg_header_check(const void *hdr, size_t map_size, uint32_t kind, char *err,
			     size_t err_size)
{
	struct onering_seg_header h;

	if (!hdr || map_size < sizeof(h))
		FAIL(-EINVAL, "mapping of %zu bytes cannot hold a %zu-byte segment header",
		     map_size, sizeof(h));
	/* One copy of the peer's bytes; every check below reads the copy. */
	memcpy(&h, hdr, sizeof(h));
	if (h.magic != ONERING_SEG_MAGIC)
		FAIL(-EPROTO, "not an onering segment: magic 0x%08" PRIx32 ", expected 0x%08x",
		     h.magic, ONERING_SEG_MAGIC);
	if (h.abi_major != ONERING_ABI_MAJOR)
		FAIL(-EPROTO,
		     "shared-memory ABI mismatch: segment has %u.%u, this library speaks %u.%u",
		     h.abi_major, h.abi_minor, ONERING_ABI_MAJOR, ONERING_ABI_MINOR);
	if (h.kind == 0 || h.kind > ONERING_SEG_KIND_MAX)
		FAIL(-EPROTO, "unknown segment kind %" PRIu32, h.kind);
	if (kind && h.kind != kind)
		FAIL(-EPROTO, "segment kind %" PRIu32 ", expected %" PRIu32, h.kind, kind);
	if (h.features != 0)
		FAIL(-EPROTO, "segment needs unknown features 0x%" PRIx64, h.features);
	if (h.size < sizeof(h) || h.size > map_size)
		FAIL(-ERANGE, "segment size %" PRIu64 " does not fit the %zu-byte mapping", h.size,
		     map_size);
	return 0;
}
