/* SPDX-License-Identifier: MIT */
/* Node-local memory for shared segments (numa/placement.h). */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <stdlib.h>
#include <string.h>

#include "numa/placement.h"
#include "shm/atomic.h"
#include "shm/log.h"

#define SAID_NODES 1024

int onering_numa_node_count(void)
{
	if (numa_available() < 0)
		return 1;
	return numa_max_node() + 1;
}

int onering_numa_node_exists(uint32_t node)
{
	if (numa_available() < 0)
		return node == 0;
	if (node >= SAID_NODES || (int)node > numa_max_node())
		return 0;
	return numa_bitmask_isbitset(numa_all_nodes_ptr, node) ? 1 : 0;
}

/* Say once per node that it is missing here. */
static void say_missing_once(uint32_t node)
{
	static ONERING_ATOMIC(uint8_t) said[SAID_NODES];
	uint8_t expect = 0;

	if (node < SAID_NODES &&
	    !onering_atomic_cas(&said[node], &expect, 1, onering_mo_relaxed, onering_mo_relaxed))
		return;
	onering_log(ONERING_LOG_NOTICE,
		    "NUMA node %u does not exist on this machine (%d node%s): its memory "
		    "falls back to the default policy",
		    node, onering_numa_node_count(), onering_numa_node_count() == 1 ? "" : "s");
}

int onering_numa_bind_memory(void *addr, size_t len, uint32_t node)
{
	unsigned long mask[SAID_NODES / (8 * sizeof(unsigned long))];

	if (!onering_numa_node_exists(node)) {
		say_missing_once(node);
		return 1;
	}
	memset(mask, 0, sizeof(mask));
	mask[node / (8 * sizeof(unsigned long))] |= 1ul << (node % (8 * sizeof(unsigned long)));
	if (mbind(addr, len, MPOL_BIND, mask, SAID_NODES, 0) < 0)
		return -errno;
	return 0;
}

int onering_numa_node_of(const void *addr)
{
	int node = -1;

	if (get_mempolicy(&node, NULL, 0, (void *)(uintptr_t)addr, MPOL_F_NODE | MPOL_F_ADDR) < 0)
		return -errno;
	return node;
}

int onering_numa_placement_off(void)
{
	/* 0: not read yet, 1: on, 2: off. Racing first readers read the same
	 * environment; only the one that sets it says so. */
	static ONERING_ATOMIC(uint8_t) state;
	uint8_t s = onering_atomic_load(&state, onering_mo_relaxed), expect = 0;

	if (s == 0) {
		const char *v = getenv("ONERING_NO_PLACEMENT");
		s = v && *v && strcmp(v, "0") != 0 ? 2 : 1;
		if (onering_atomic_cas(&state, &expect, s, onering_mo_relaxed, onering_mo_relaxed) &&
		    s == 2)
			onering_log(ONERING_LOG_NOTICE, "ONERING_NO_PLACEMENT is set: queue memory is "
				    "not bound to its node and threads are not pinned");
	}
	return s == 2;
}

static int placement_bind(void *addr, size_t len, uint32_t node, void *arg)
{
	(void)arg;
	if (onering_numa_placement_off())
		return 0;
	int r = onering_numa_bind_memory(addr, len, node);

	return r > 0 ? 0 : r;
}

static const struct onering_placement numa_placement = {
	.bind = placement_bind,
	.arg = NULL,
};

const struct onering_placement *onering_numa_placement(void)
{
	return &numa_placement;
}
