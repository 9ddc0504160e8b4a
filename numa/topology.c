/* SPDX-License-Identifier: MIT */
/* Topology and thread pinning through hwloc (numa/topology.h). */
#include <errno.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numa/topology.h"

struct onering_topo {
	hwloc_topology_t topo;
};

int onering_topo_load(const char *synthetic, struct onering_topo **out, char *err, size_t err_size)
{
	struct onering_topo *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	if (hwloc_topology_init(&t->topo) < 0) {
		free(t);
		return -ENOMEM;
	}
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
	*out = t;
	return 0;
}

void onering_topo_free(struct onering_topo *t)
{
	if (!t)
		return;
	hwloc_topology_destroy(t->topo);
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

int onering_topo_pin_thread(const struct onering_topo *t, int cpu)
{
	hwloc_obj_t pu = pu_of(t, cpu);

	if (!pu)
		return -EINVAL;
	if (!onering_topo_is_this_system(t))
		return 0; /* a synthetic machine: nothing to bind to */
	if (hwloc_set_cpubind(t->topo, pu->cpuset, HWLOC_CPUBIND_THREAD) < 0)
		return errno ? -errno : -EINVAL;
	return 0;
}
