/* SPDX-License-Identifier: MIT */
/*
 * The machine's topology, from hwloc: the real machine, or a synthetic one
 * ($HWLOC_SYNTHETIC, $HWLOC_XMLFILE, or a description given to
 * onering_topo_load()). Used to validate operator-given cores and to pin
 * threads. CPUs are named by their OS index (what taskset and -l use).
 */
#ifndef ONERING_NUMA_TOPOLOGY_H
#define ONERING_NUMA_TOPOLOGY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct onering_topo;

/**
 * Load a topology. synthetic: an hwloc synthetic description
 * ("pack:2 numa:1 core:4 pu:1"), or NULL for the machine (hwloc itself
 * honours $HWLOC_SYNTHETIC and $HWLOC_XMLFILE).
 * @return 0; -EINVAL bad description (err says why); -ENOMEM.
 */
int onering_topo_load(const char *synthetic, struct onering_topo **out, char *err, size_t err_size);

void onering_topo_free(struct onering_topo *t);

/** Logical CPUs (PUs) in the topology. */
int onering_topo_cpu_count(const struct onering_topo *t);

/** OS index of the i-th PU (0 <= i < cpu_count), or -1. */
int onering_topo_cpu_at(const struct onering_topo *t, int i);

/** True when a PU with this OS index exists (and is allowed). */
int onering_topo_cpu_valid(const struct onering_topo *t, int cpu);

/** NUMA node of a PU (OS index), or -1. */
int onering_topo_cpu_node(const struct onering_topo *t, int cpu);

/** Comma list of valid CPU OS indexes, for error messages. */
void onering_topo_cpu_list(const struct onering_topo *t, char *buf, size_t len);

/**
 * Pin the calling thread to one CPU (OS index) of the real machine.
 * @return 0; -EINVAL no such CPU; -errno from the binding.
 */
int onering_topo_pin_thread(const struct onering_topo *t, int cpu);

/** True when the topology is the running machine's (not synthetic/XML). */
int onering_topo_is_this_system(const struct onering_topo *t);

/** NUMA nodes in the topology (at least 1). */
int onering_topo_node_count(const struct onering_topo *t);

/** OS index of the i-th NUMA node, or -1. */
int onering_topo_node_at(const struct onering_topo *t, int i);

/**
 * CPUs (OS indexes) of a node, in topology order, at most max of them.
 * @return how many the node has (may exceed max), 0 for an unknown node.
 */
int onering_topo_node_cpus(const struct onering_topo *t, int node, int *cpus, int max);

/** Logical index of the core a CPU belongs to (CPUs of one core are hardware
 * threads of each other), or -1. */
int onering_topo_core_of(const struct onering_topo *t, int cpu);

/** The synthetic description of the topology (also for the real machine). */
int onering_topo_describe(const struct onering_topo *t, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_NUMA_TOPOLOGY_H */
