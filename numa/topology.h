/* SPDX-License-Identifier: MIT */
/*
 * The machine's topology, from hwloc: the real machine, or a synthetic one
 * ($HWLOC_SYNTHETIC, $HWLOC_XMLFILE, or a description given to
 * onering_topo_load()). Used to validate operator-given cores, to pin
 * threads, and to tell how far NUMA nodes and NICs are from each other.
 * CPUs and NUMA nodes are named by their OS index (what taskset, numactl
 * and -l use).
 */
#ifndef ONERING_NUMA_TOPOLOGY_H
#define ONERING_NUMA_TOPOLOGY_H

#include <sched.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct onering_topo;

/**
 * Load a topology. synthetic: an hwloc synthetic description
 * ("pack:2 numa:1 core:4 pu:1"), or NULL for the machine (hwloc itself
 * honours $HWLOC_SYNTHETIC and $HWLOC_XMLFILE). PCI devices and their
 * network interfaces are discovered too (on a VM with slow PCI config space
 * this costs a few milliseconds); node distances are read here once.
 * Slow path: reads sysfs; call at start-up, not per event.
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
 * Pin the calling thread to one CPU (OS index) of the real machine (not
 * under onering_numa_placement_off(), numa/placement.h).
 * @return 0; -EINVAL no such CPU; -errno from the binding.
 */
int onering_topo_pin_thread(const struct onering_topo *t, int cpu);

/**
 * The CPU set that pins a thread to one CPU (OS index) of the real machine,
 * for pthread_attr_setaffinity_np(): a thread created with it runs on that
 * CPU from its first instruction, where one that pins itself first runs
 * wherever its creator may.
 * @return 1 and *set filled; 0 when nothing is to be pinned (a synthetic or
 * XML topology, onering_numa_placement_off()); -EINVAL no such CPU.
 */
int onering_topo_cpu_set(const struct onering_topo *t, int cpu, cpu_set_t *set);

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

/**
 * Relative distance between two NUMA nodes (OS indexes), in the ACPI SLIT
 * convention: 10 for a node to itself, larger for farther nodes (a row is the
 * distance from a, so an asymmetric table gives a->b != b->a).
 *
 * Sources, first known wins for each pair, all read once by
 * onering_topo_load(): on the running machine libnuma's numa_distance()
 * (when numa_available() >= 0); then hwloc's NUMA-node distance matrix
 * (latency, from the OS or the user: what Linux sysfs reports, or a
 * <distances2> matrix in an $HWLOC_XMLFILE topology); then 10 for a == b and
 * 20 otherwise. Synthetic descriptions carry no distances, so they always get
 * 10/20.
 *
 * Any thread; no syscall (a table lookup).
 * @return the distance (>= 10 in practice), or -1 when a or b is not a NUMA
 * node of the topology.
 */
int onering_topo_node_distance(const struct onering_topo *t, int a, int b);

/**
 * NUMA node of a PCI device (where its interrupts and DMA are local), from
 * hwloc's I/O discovery: the node set of the device's nearest non-I/O
 * ancestor (package, group or machine).
 *
 * busid: "DDDD:BB:DD.F" or "BB:DD.F" (domain 0), hexadecimal, as in
 * /sys/bus/pci/devices or lspci -D.
 * err: a one-line reason on failure (may be NULL).
 *
 * A topology with a single NUMA node returns that node for every device,
 * located or not: single-node VMs usually report no locality (sysfs
 * numa_node -1) and the answer cannot be another node. When the device is
 * local to several nodes but not the whole machine (e.g. a package split
 * into sub-NUMA clusters), the lowest of them is returned.
 * Synthetic topologies have no PCI devices; XML ones have those exported
 * into the file.
 *
 * Any thread; no syscall.
 * @return the node's OS index (>= 0); -1 the device exists but its locality
 * is unknown (attached to the whole machine of several nodes; err says
 * "unknown"); -EINVAL busid is malformed; -ENOENT no such device.
 */
int onering_topo_pci_node(const struct onering_topo *t, const char *busid, char *err,
			  size_t err_size);

/** A network PCI device, as listed by onering_topo_nics(). */
struct onering_topo_nic {
	char busid[16];  /**< "DDDD:BB:DD.F" */
	char ifname[32]; /**< kernel interface ("eth0"); empty when the device
			      has none (e.g. bound to vfio-pci for DPDK) */
	int node;        /**< as onering_topo_pci_node(): OS index, or -1 unknown */
};

/**
 * The network PCI devices (class 02xx, or any PCI device with a kernel
 * network interface), in hwloc's topology order (grouped by locality, not
 * sorted by bus id), at most max of them into out (may be NULL when max is 0).
 * Any thread; no syscall.
 * @return how many the topology has (may exceed max); 0 for synthetic
 * topologies.
 */
int onering_topo_nics(const struct onering_topo *t, struct onering_topo_nic *out, int max);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_NUMA_TOPOLOGY_H */
