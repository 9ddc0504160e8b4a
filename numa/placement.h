/* SPDX-License-Identifier: MIT */
/*
 * Node-local memory for shared segments. The placement hook binds a fresh
 * mapping to a NUMA node before its first touch (mbind MPOL_BIND), so the
 * pages of a consumer's queue come from the consumer's node. Where the
 * node does not exist in the running kernel (a synthetic topology larger
 * than the machine), the memory is left to the default policy and that is
 * said once per node.
 */
#ifndef ONERING_NUMA_PLACEMENT_H
#define ONERING_NUMA_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "shm/segment.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Nodes the running kernel has (highest node id + 1), at least 1. */
int onering_numa_node_count(void);

/** True when node exists in the running kernel and has memory. */
int onering_numa_node_exists(uint32_t node);

/**
 * Bind [addr, addr + len) (page aligned, not yet touched) to node.
 * @return 0 when bound; 1 when the node does not exist here and the range
 *         keeps the default policy (said once per node); -errno from mbind.
 * Context: slow path; one system call.
 */
int onering_numa_bind_memory(void *addr, size_t len, uint32_t node);

/**
 * The node that backs the page at addr (touch it first), via
 * get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR).
 * @return node id, or -errno.
 */
int onering_numa_node_of(const void *addr);

/** The placement hook for onering_seg_create(), backed by onering_numa_bind_memory(). */
const struct onering_placement *onering_numa_placement(void);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_NUMA_PLACEMENT_H */
