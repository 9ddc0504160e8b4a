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

/**
 * True when $ONERING_NO_PLACEMENT is set to a non-empty value other than
 * "0": a diagnostic switch that turns placement off, so that a check of
 * placement on a real multi-node machine can be shown to fail without it
 * (tests/numavm). Then the placement hook binds nothing (pages come from
 * wherever the first touch is) and onering_topo_pin_thread() pins nothing.
 * Read once; said once in the log (notice).
 */
int onering_numa_placement_off(void);

/** The placement hook for onering_seg_create(), backed by onering_numa_bind_memory()
 * (a no-op under onering_numa_placement_off()). */
const struct onering_placement *onering_numa_placement(void);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_NUMA_PLACEMENT_H */
