/* SPDX-License-Identifier: MIT */
/*
 * The placement plan: which CPU the control thread and each poller run on.
 *
 * Chosen (no operator cores): one poller per NUMA node that has an allowed
 * CPU, on a core of that node; the node's first core is avoided when the
 * node has another (it tends to take interrupts and housekeeping), and so
 * is the control thread's core. The control thread takes the first allowed
 * CPU. Two pollers never share a core (hardware-thread siblings).
 *
 * Operator-given (--cores LIST, --poller NODE:CPU): every CPU is checked
 * against the topology and the allowed set; a poller pinned to a node must
 * be on that node; errors name the node and its valid CPUs.
 */
#ifndef ONERING_NUMA_PLAN_H
#define ONERING_NUMA_PLAN_H

#include <sched.h>
#include <stddef.h>
#include <stdio.h>

#include "numa/topology.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ONERING_PLAN_MAX_POLLERS 64

struct onering_plan_poller {
	int cpu;  /* OS index */
	int node; /* its NUMA node */
	int core; /* logical core index (siblings share it) */
};

struct onering_plan {
	int control_cpu;
	unsigned nr_pollers;
	struct onering_plan_poller pollers[ONERING_PLAN_MAX_POLLERS];
};

/* What the operator asked for; zero-initialise for "choose everything". */
struct onering_plan_request {
	const int *cpus;       /* poller CPUs (--cores) ... */
	const int *cpu_nodes;  /* ... and the node each must be on (--poller NODE:CPU), or NULL / -1 */
	unsigned nr_cpus;
	int control_cpu;       /* -1: choose */
	const cpu_set_t *allowed; /* CPUs this process may use; NULL: every CPU of the topology */
};

/**
 * Make a plan. @return 0, or -EINVAL with a readable reason in err
 * (naming the CPU, its node and the node's valid CPUs).
 */
int onering_plan_make(const struct onering_topo *t, const struct onering_plan_request *req,
		      struct onering_plan *plan, char *err, size_t err_size);

/** Format CPUs as ranges: "0-3,8". */
void onering_cpus_format(const int *cpus, int n, char *buf, size_t len);

/** Print the plan (and the topology it was made for) as text. */
void onering_plan_print(const struct onering_topo *t, const struct onering_plan *plan, FILE *out);

/** Print the node distance table (onering_topo_node_distance(), 10 = local) as
 * text: a "distances" header row of node ids, then one row per node (from). */
void onering_distances_print(const struct onering_topo *t, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_NUMA_PLAN_H */
