/* SPDX-License-Identifier: MIT */
/* Topology and thread pinning through hwloc (numa/topology.h). */
#include <errno.h>
#include <hwloc.h>
#include <hwloc/glibc-sched.h>
#include <limits.h>
#include <numa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numa/placement.h"
#include "numa/topology.h"

struct onering_topo {
	hwloc_topology_t topo;
	/* Node distances, filled once by onering_topo_load(): nr_nodes^2 entries,
	 * row = from, both indexed by the nodes' hwloc logical index. */
	int nr_nodes;
	int *distances;
};

static int distances_fill(struct onering_topo *t);

int onering_topo_load(const char *synthetic, struct onering_topo **out, char *err, size_t err_size)
{
	struct onering_topo *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	if (hwloc_topology_init(&t->topo) < 0) {
		free(t);
		return -ENOMEM;
	}
	/*
	 * Keep I/O objects for NIC locality: bridges and OS devices (network
	 * interfaces, disks) only when important, but every PCI device, so that
	 * any bus id in /sys/bus/pci/devices can be looked up (the "important"
	 * filter drops e.g. virtio-vsock and host bridges). CPU and NUMA objects
	 * are the same either way. The cost is reading each device's config
	 * space: ~8 ms for 6 virtio devices on a VM, where each read traps.
	 * The Linux backend reads PCI devices from sysfs itself; hwloc's "pci"
	 * plugin (libpciaccess) would find the same ones and leaks ~1 KiB per
	 * load, which LeakSanitizer reports at every exit.
	 */
	hwloc_topology_set_io_types_filter(t->topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
	hwloc_topology_set_type_filter(t->topo, HWLOC_OBJ_PCI_DEVICE, HWLOC_TYPE_FILTER_KEEP_ALL);
	hwloc_topology_set_components(t->topo, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "pci");
	if (synthetic && hwloc_topology_set_synthetic(t->topo, synthetic) < 0) {
		if (err)
			snprintf(err, err_size, "bad synthetic topology \"%s\" (example: "
						"\"pack:2 numa:1 core:4 pu:2\")", synthetic);
		hwloc_topology_destroy(t->topo);
		free(t);
		return -EINVAL;
	}
	if (hwloc_topology_load(t->topo) < 0) {
		int e = errno ? -errno : -EINVAL;
		if (err)
			snprintf(err, err_size, "hwloc could not load the topology: %s",
				 strerror(-e));
		hwloc_topology_destroy(t->topo);
		free(t);
		return e;
	}
	if (distances_fill(t) < 0) {
		onering_topo_free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

void onering_topo_free(struct onering_topo *t)
{
	if (!t)
		return;
	hwloc_topology_destroy(t->topo);
	free(t->distances);
	free(t);
}

int onering_topo_cpu_count(const struct onering_topo *t)
{
	return hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_PU);
}

int onering_topo_cpu_at(const struct onering_topo *t, int i)
{
	hwloc_obj_t pu = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_PU, (unsigned)i);

	return pu ? (int)pu->os_index : -1;
}

static hwloc_obj_t pu_of(const struct onering_topo *t, int cpu)
{
	if (cpu < 0)
		return NULL;
	return hwloc_get_pu_obj_by_os_index(t->topo, (unsigned)cpu);
}

int onering_topo_cpu_valid(const struct onering_topo *t, int cpu)
{
	return pu_of(t, cpu) != NULL;
}

int onering_topo_cpu_node(const struct onering_topo *t, int cpu)
{
	hwloc_obj_t pu = pu_of(t, cpu);
	int n = onering_topo_node_count(t);

	if (!pu)
		return -1;
	/* The node whose cpuset holds the PU (the first, if several). */
	for (int i = 0; i < n; i++) {
		hwloc_obj_t node = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, (unsigned)i);
		if (node && hwloc_bitmap_isset(node->cpuset, pu->os_index))
			return (int)node->os_index;
	}
	return 0;
}

int onering_topo_node_count(const struct onering_topo *t)
{
	int n = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE);

	return n > 0 ? n : 1;
}

int onering_topo_node_at(const struct onering_topo *t, int i)
{
	hwloc_obj_t node = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, (unsigned)i);

	if (node)
		return (int)node->os_index;
	return i == 0 ? 0 : -1;
}

int onering_topo_node_cpus(const struct onering_topo *t, int node, int *cpus, int max)
{
	hwloc_obj_t obj = hwloc_get_numanode_obj_by_os_index(t->topo, (unsigned)node);
	int n = 0;

	for (int i = 0; i < onering_topo_cpu_count(t); i++) {
		hwloc_obj_t pu = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_PU, (unsigned)i);
		if (!pu || (obj && !hwloc_bitmap_isset(obj->cpuset, pu->os_index)) ||
		    (!obj && node != 0))
			continue;
		if (n < max)
			cpus[n] = (int)pu->os_index;
		n++;
	}
	return n;
}

int onering_topo_core_of(const struct onering_topo *t, int cpu)
{
	hwloc_obj_t pu = pu_of(t, cpu);

	if (!pu)
		return -1;
	hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(t->topo, HWLOC_OBJ_CORE, pu);
	/* No core level (some synthetic descriptions): each PU is its own core. */
	return core ? (int)core->logical_index : 100000 + (int)pu->logical_index;
}

int onering_topo_describe(const struct onering_topo *t, char *buf, size_t len)
{
	int r = hwloc_topology_export_synthetic(t->topo, buf, len, 0);

	if (r < 0)
		snprintf(buf, len, "(not expressible as a synthetic description)");
	return r < 0 ? -EINVAL : 0;
}

void onering_topo_cpu_list(const struct onering_topo *t, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < onering_topo_cpu_count(t) && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%d", i ? "," : "", onering_topo_cpu_at(t, i));
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

int onering_topo_is_this_system(const struct onering_topo *t)
{
	return hwloc_topology_is_thissystem(t->topo);
}

int onering_topo_cpu_set(const struct onering_topo *t, int cpu, cpu_set_t *set)
{
	hwloc_obj_t pu = pu_of(t, cpu);

	if (!pu)
		return -EINVAL;
	if (!onering_topo_is_this_system(t) || onering_numa_placement_off())
		return 0; /* a synthetic machine: nothing to bind to */
	if (hwloc_cpuset_to_glibc_sched_affinity(t->topo, pu->cpuset, set, sizeof(*set)) < 0)
		return -EINVAL;
	return 1;
}

int onering_topo_pin_thread(const struct onering_topo *t, int cpu)
{
	cpu_set_t set;
	int r = onering_topo_cpu_set(t, cpu, &set);

	if (r <= 0)
		return r;
	r = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	return -r;
}

/* ---- distances --------------------------------------------------------------- */

/* Logical index of a NUMA node given by OS index, or -1. hwloc 2 always has at
 * least one NUMA node; the "node 0 without a NUMA object" case mirrors
 * onering_topo_node_at(). */
static int node_idx(const struct onering_topo *t, int node)
{
	hwloc_obj_t obj;

	if (node < 0)
		return -1;
	obj = hwloc_get_numanode_obj_by_os_index(t->topo, (unsigned)node);
	if (obj)
		return (int)obj->logical_index;
	return node == 0 && hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE) <= 0 ? 0 : -1;
}

/* hwloc's latency matrix between NUMA nodes, when there is one: the one Linux
 * names "NUMALatency" (sysfs, SLIT), else the first of the OS's or the user's. */
static void distances_from_hwloc(struct onering_topo *t)
{
	struct hwloc_distances_s *d[8];
	unsigned nr = 8, pick = 0;
	unsigned long kind = HWLOC_DISTANCES_KIND_MEANS_LATENCY | HWLOC_DISTANCES_KIND_FROM_OS |
			     HWLOC_DISTANCES_KIND_FROM_USER;

	if (hwloc_distances_get_by_type(t->topo, HWLOC_OBJ_NUMANODE, &nr, d, kind, 0) < 0)
		return;
	if (nr > 8)
		nr = 8; /* hwloc filled the first 8 and reported how many there are */
	if (nr == 0)
		return;
	for (unsigned i = 0; i < nr; i++) {
		const char *name = hwloc_distances_get_name(t->topo, d[i]);
		if (name && strcmp(name, "NUMALatency") == 0) {
			pick = i;
			break;
		}
	}
	for (unsigned i = 0; i < d[pick]->nbobjs; i++) {
		for (unsigned j = 0; j < d[pick]->nbobjs; j++) {
			hwloc_uint64_t v = d[pick]->values[i * d[pick]->nbobjs + j];
			hwloc_obj_t from = d[pick]->objs[i], to = d[pick]->objs[j];
			if (!from || !to || v == 0 || v > INT_MAX ||
			    (int)from->logical_index >= t->nr_nodes ||
			    (int)to->logical_index >= t->nr_nodes)
				continue;
			t->distances[(int)from->logical_index * t->nr_nodes +
				     (int)to->logical_index] = (int)v;
		}
	}
	for (unsigned i = 0; i < nr; i++)
		hwloc_distances_release(t->topo, d[i]);
}

static int distances_fill(struct onering_topo *t)
{
	int n = onering_topo_node_count(t);

	t->nr_nodes = n;
	t->distances = calloc((size_t)n * (size_t)n, sizeof(*t->distances));
	if (!t->distances)
		return -ENOMEM;
	/* Lowest priority first: the 10/20 guess, hwloc's matrix, libnuma. */
	for (int a = 0; a < n; a++)
		for (int b = 0; b < n; b++)
			t->distances[a * n + b] = a == b ? 10 : 20;
	distances_from_hwloc(t);
	if (onering_topo_is_this_system(t) && numa_available() >= 0) {
		for (int a = 0; a < n; a++) {
			for (int b = 0; b < n; b++) {
				/* 0: libnuma does not know the pair. */
				int v = numa_distance(onering_topo_node_at(t, a),
						      onering_topo_node_at(t, b));
				if (v > 0)
					t->distances[a * n + b] = v;
			}
		}
	}
	return 0;
}

int onering_topo_node_distance(const struct onering_topo *t, int a, int b)
{
	int ia = node_idx(t, a), ib = node_idx(t, b);

	if (ia < 0 || ib < 0 || ia >= t->nr_nodes || ib >= t->nr_nodes)
		return -1;
	return t->distances[ia * t->nr_nodes + ib];
}

/* ---- PCI locality ------------------------------------------------------------ */

/* "DDDD:BB:DD.F" or "BB:DD.F", hexadecimal, nothing after. */
static int parse_busid(const char *s, unsigned *domain, unsigned *bus, unsigned *dev,
		       unsigned *func)
{
	int end = 0;

	if (!s || !*s || strspn(s, "0123456789abcdefABCDEF:.") != strlen(s))
		return -EINVAL;
	*domain = 0;
	if (!(sscanf(s, "%x:%x:%x.%x%n", domain, bus, dev, func, &end) == 4 && !s[end])) {
		end = 0;
		*domain = 0;
		if (!(sscanf(s, "%x:%x.%x%n", bus, dev, func, &end) == 3 && !s[end]))
			return -EINVAL;
	}
	return *bus <= 0xff && *dev <= 0x1f && *func <= 7 ? 0 : -EINVAL;
}

/* Node of a PCI device object, or -1 unknown (see onering_topo_pci_node()). */
static int pcidev_node(const struct onering_topo *t, hwloc_obj_t dev)
{
	hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t->topo, dev);
	hwloc_const_nodeset_t all = hwloc_topology_get_topology_nodeset(t->topo);

	if (hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE) <= 1)
		return onering_topo_node_at(t, 0);
	if (!anc || !anc->nodeset || hwloc_bitmap_iszero(anc->nodeset) ||
	    hwloc_bitmap_isincluded(all, anc->nodeset))
		return -1;
	return hwloc_bitmap_first(anc->nodeset);
}

static void format_busid(hwloc_obj_t dev, char *buf, size_t len)
{
	snprintf(buf, len, "%04x:%02x:%02x.%x", dev->attr->pcidev.domain, dev->attr->pcidev.bus,
		 dev->attr->pcidev.dev, dev->attr->pcidev.func);
}

int onering_topo_pci_node(const struct onering_topo *t, const char *busid, char *err,
			  size_t err_size)
{
	unsigned domain, bus, dev, func;
	hwloc_obj_t obj;
	int node;

	if (parse_busid(busid, &domain, &bus, &dev, &func) < 0) {
		if (err)
			snprintf(err, err_size, "bad PCI bus id \"%s\" (expected DDDD:BB:DD.F or "
						"BB:DD.F, e.g. 0000:03:00.0)", busid ? busid : "");
		return -EINVAL;
	}
	obj = hwloc_get_pcidev_by_busid(t->topo, domain, bus, dev, func);
	if (!obj) {
		if (err)
			snprintf(err, err_size, "no PCI device %04x:%02x:%02x.%x in the %s", domain,
				 bus, dev, func,
				 onering_topo_is_this_system(t)
					 ? "machine (see /sys/bus/pci/devices)"
					 : "topology (synthetic ones have no PCI devices)");
		return -ENOENT;
	}
	node = pcidev_node(t, obj);
	if (node < 0 && err)
		snprintf(err, err_size, "PCI device %04x:%02x:%02x.%x: NUMA node unknown (the "
					"firmware reports no locality for it)", domain, bus, dev, func);
	return node;
}

/* A network controller (class 02xx), or a device with a kernel network interface. */
static hwloc_obj_t netdev_of(hwloc_obj_t pcidev, int *is_nic)
{
	*is_nic = (pcidev->attr->pcidev.class_id >> 8) == 0x02;
	for (hwloc_obj_t c = pcidev->io_first_child; c; c = c->next_sibling) {
		if (c->type == HWLOC_OBJ_OS_DEVICE &&
		    c->attr->osdev.type == HWLOC_OBJ_OSDEV_NETWORK) {
			*is_nic = 1;
			return c;
		}
	}
	return NULL;
}

int onering_topo_nics(const struct onering_topo *t, struct onering_topo_nic *out, int max)
{
	int n = 0;

	for (hwloc_obj_t dev = hwloc_get_next_pcidev(t->topo, NULL); dev;
	     dev = hwloc_get_next_pcidev(t->topo, dev)) {
		int is_nic;
		hwloc_obj_t net = netdev_of(dev, &is_nic);
		if (!is_nic)
			continue;
		if (n < max) {
			struct onering_topo_nic *nic = &out[n];
			format_busid(dev, nic->busid, sizeof(nic->busid));
			snprintf(nic->ifname, sizeof(nic->ifname), "%s",
				 net && net->name ? net->name : "");
			nic->node = pcidev_node(t, dev);
		}
		n++;
	}
	return n;
}
