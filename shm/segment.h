/* SPDX-License-Identifier: MIT */
/*
 * Shared-memory segments: memfds that the broker creates, sizes, places on
 * a NUMA node, seals and sends; and that a client maps and validates.
 *
 * Nothing lives under /dev/shm: a segment is reachable only through its fd,
 * so a crash leaves nothing behind. Segments are hugepage-backed
 * (MFD_HUGETLB) when the default hugepage pool has room, normal pages
 * otherwise; which one is said once in the log.
 *
 * Seals: every segment gets F_SEAL_SHRINK | F_SEAL_GROW (a peer that shrank
 * it would SIGBUS the other side). A segment the client may only read also
 * gets F_SEAL_FUTURE_WRITE after the broker has mapped it: the broker's
 * mapping stays writable, and no new writable mapping, write(2),
 * ftruncate(2) or mprotect upgrade is possible for anyone holding the fd.
 */
#ifndef ONERING_SHM_SEGMENT_H
#define ONERING_SHM_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct onering_seg {
	int fd;
	void *base;
	size_t size;  /* bytes mapped (the memfd's size) */
	bool hugetlb; /* backed by hugepages */
	bool writable;
};

/*
 * Placement hook: bind [addr, addr + len) to node before the first touch.
 * numa/ provides one (onering_numa_placement()); NULL places nowhere.
 * Returns 0 (also when it fell back and said so) or a negative errno.
 */
struct onering_placement {
	int (*bind)(void *addr, size_t len, uint32_t node, void *arg);
	void *arg;
};

/* onering_seg_create() flags */
#define ONERING_SEG_NO_HUGETLB 0x1u /* normal pages even if hugepages are reserved */

/**
 * Create a segment: memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING, MFD_HUGETLB when
 * possible), sized to at least size bytes, mapped read-write, placed on
 * node through place (before first touch), then its header written.
 * @param name   memfd name (shown in /proc/PID/fd), e.g. "onering-ev-3"
 * @param kind   enum onering_seg_kind
 * @param size   bytes needed, header included (rounded up to the page size)
 * @param node   NUMA node, or ONERING_NODE_ANY
 * @param epoch  broker epoch stored in the header
 * @param place  placement hook, or NULL
 * @param flags  ONERING_SEG_* flags
 * @return 0, -EINVAL for a size of 0 or below a header, or -errno from
 *         memfd_create/ftruncate/mmap or the placement hook (logged).
 * Context: slow path; system calls.
 */
int onering_seg_create(struct onering_seg *seg, const char *name, uint32_t kind, size_t size,
		       uint32_t node, uint64_t epoch, const struct onering_placement *place,
		       unsigned flags);

/**
 * Seal a created segment: F_SEAL_SHRINK | F_SEAL_GROW, plus
 * F_SEAL_FUTURE_WRITE when peer_readonly (the creator's mapping stays
 * writable), then F_SEAL_SEAL so that no holder can add more. Call once,
 * before the fd is sent.
 * @return 0 or -errno from fcntl(F_ADD_SEALS) (logged).
 */
int onering_seg_seal(struct onering_seg *seg, bool peer_readonly);

/**
 * Map a segment received from a peer and validate its header.
 * @param fd        the memfd; owned by seg on success, untouched on failure
 * @param kind      expected enum onering_seg_kind
 * @param writable  map read-write (only for segments not sealed FUTURE_WRITE)
 * @param err       if not NULL, a readable reason on failure
 * @return 0; -EPROTO / -ERANGE from onering_seg_header_check(); -EINVAL for
 *         a file that is too small; -errno from fstat/mmap (e.g. -EPERM for a
 *         writable map of a FUTURE_WRITE-sealed segment).
 * Context: slow path; system calls.
 */
int onering_seg_attach(struct onering_seg *seg, int fd, uint32_t kind, bool writable, char *err,
		       size_t err_size);

/**
 * onering_seg_attach(), then, if the segment is at_size bytes, move the
 * mapping to at, replacing what is mapped there in one step (mremap with
 * MREMAP_FIXED): pointers into the old mapping at at now point into the new
 * segment. With at NULL, or another size, the segment stays where mmap put
 * it (seg->base says where). Used when a client moves a queue to a broker
 * that replaced a dead one.
 * @return as onering_seg_attach(); a failed move is not an error.
 */
int onering_seg_attach_at(struct onering_seg *seg, int fd, uint32_t kind, bool writable,
			  void *at, size_t at_size, char *err, size_t err_size);

/** Unmap and close; safe on a seg already destroyed or whose create/attach failed. */
void onering_seg_destroy(struct onering_seg *seg);

/** Bytes of the default hugepage, or 0 when the kernel has none configured. */
size_t onering_hugepage_size(void);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_SHM_SEGMENT_H */
