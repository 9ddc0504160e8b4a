/* SPDX-License-Identifier: MIT */
/*
 * onering topo: the machine's NUMA nodes (or an hwloc synthetic topology),
 * the broker's placement plan, node distances and NICs - numa/, no broker.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numa/placement.h"
#include "numa/plan.h"
#include "tool.h"

static json_t *plan_json(const struct onering_topo *t, const struct onering_plan *plan)
{
	json_t *root = json_object(), *nodes = json_array(), *pollers = json_array();
	char desc[256];
	int cpus[4096];

	onering_topo_describe(t, desc, sizeof(desc));
	json_object_set_new(root, "topology", json_string(desc));
	json_object_set_new(root, "synthetic", json_boolean(!onering_topo_is_this_system(t)));
	for (int i = 0; i < onering_topo_node_count(t); i++) {
		int node = onering_topo_node_at(t, i);
		int n = onering_topo_node_cpus(t, node, cpus, 4096);
		json_t *o = json_object(), *list = json_array();
		for (int k = 0; k < n && k < 4096; k++)
			json_array_append_new(list, json_integer(cpus[k]));
		json_object_set_new(o, "node", json_integer(node));
		json_object_set_new(o, "cpus", list);
		json_object_set_new(o, "memory_on_this_machine",
				    json_boolean(onering_numa_node_exists((uint32_t)node)));
		json_array_append_new(nodes, o);
	}
	for (unsigned i = 0; i < plan->nr_pollers; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "poller", json_integer(i));
		json_object_set_new(o, "node", json_integer(plan->pollers[i].node));
		json_object_set_new(o, "cpu", json_integer(plan->pollers[i].cpu));
		json_object_set_new(o, "core", json_integer(plan->pollers[i].core));
		json_array_append_new(pollers, o);
	}
	json_object_set_new(root, "nodes", nodes);
	json_object_set_new(root, "control_cpu", json_integer(plan->control_cpu));
	json_object_set_new(root, "pollers", pollers);
	return root;
}

/* Node distances and NICs: added to root as "distances" (rows by "nodes"
 * order, row = from) and "nics" when root is given, else printed to out. */
static void topo_locality(const struct onering_topo *t, json_t *root, FILE *out)
{
	struct onering_topo_nic nics[64];
	int nr_nodes = onering_topo_node_count(t);
	int nr_nics = onering_topo_nics(t, nics, 64);

	if (nr_nics > 64)
		nr_nics = 64;
	if (root) {
		json_t *rows = json_array(), *list = json_array();
		for (int i = 0; i < nr_nodes; i++) {
			json_t *row = json_array();
			for (int k = 0; k < nr_nodes; k++)
				json_array_append_new(row, json_integer(onering_topo_node_distance(
								   t, onering_topo_node_at(t, i),
								   onering_topo_node_at(t, k))));
			json_array_append_new(rows, row);
		}
		for (int i = 0; i < nr_nics; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "busid", json_string(nics[i].busid));
			json_object_set_new(o, "ifname", json_string(nics[i].ifname));
			json_object_set_new(o, "node", json_integer(nics[i].node));
			json_array_append_new(list, o);
		}
		json_object_set_new(root, "distances", rows);
		json_object_set_new(root, "nics", list);
		return;
	}
	onering_distances_print(t, out);
	if (nr_nics == 0)
		fprintf(out, "nic           none found\n");
	for (int i = 0; i < nr_nics; i++) {
		char node[16];
		snprintf(node, sizeof(node), "%d", nics[i].node);
		fprintf(out, "nic           %-13s %-15s node %s\n", nics[i].busid,
			nics[i].ifname[0] ? nics[i].ifname : "-",
			nics[i].node >= 0 ? node : "unknown");
	}
}

int tool_parse_cpu_list(const char *s, int *cpus, unsigned max, unsigned *n)
{
	char buf[256], *save = NULL;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -EINVAL;
	*n = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned cpu;
		if (*n == max || tool_parse_uint(tok, 0, 4095, &cpu) < 0)
			return -EINVAL;
		cpus[(*n)++] = (int)cpu;
	}
	return *n ? 0 : -EINVAL;
}

int tool_plan_load(const char *synthetic, const int *cpus, unsigned nr, struct onering_topo **t,
		   struct onering_plan *plan, char *err, size_t err_size)
{
	cpu_set_t allowed;
	int r = onering_topo_load(synthetic, t, err, err_size);

	if (r < 0)
		return r;
	sched_getaffinity(0, sizeof(allowed), &allowed);
	struct onering_plan_request req = {.cpus = cpus,
					   .nr_cpus = nr,
					   .control_cpu = -1,
					   .allowed = onering_topo_is_this_system(*t) ? &allowed : NULL};
	r = onering_plan_make(*t, &req, plan, err, err_size);
	if (r < 0)
		onering_topo_free(*t);
	return r;
}

int tool_topo(int argc, char **argv)
{
	static const struct option opts[] = {{"synthetic", required_argument, NULL, 's'},
					     {"cores", required_argument, NULL, 'c'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *synthetic = NULL;
	int cores[ONERING_PLAN_MAX_POLLERS], opt;
	unsigned nr_cores = 0;
	bool json = false;

	while ((opt = onering_cli_getopt("onering topo", argc, argv, "h", opts)) != -1) {
		switch (opt) {
		case 's':
			synthetic = optarg;
			break;
		case 'c':
			if (tool_parse_cpu_list(optarg, cores, ONERING_PLAN_MAX_POLLERS, &nr_cores) < 0) {
				return onering_cli_bad_value("onering topo", "cores", optarg,
							     "expected a comma list of CPU numbers");
			}
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: onering topo [--synthetic DESC] [--cores LIST] [--json]\n"
			       "Prints the machine's NUMA nodes and the broker's placement plan: the\n"
			       "control CPU and one poller per node; then the node distances (10 =\n"
			       "local) and the NICs with their node. DESC is an hwloc synthetic\n"
			       "topology, e.g. \"pack:2 numa:1 core:4 pu:2\".\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc)
		return onering_cli_extra("onering topo", argv[optind]);
	struct onering_topo *t;
	struct onering_plan plan;
	char err[1024];
	if (tool_plan_load(synthetic, cores, nr_cores, &t, &plan, err, sizeof(err)) < 0) {
		fprintf(stderr, "onering topo: %s\n", err);
		return 1;
	}
	if (json) {
		json_t *root = plan_json(t, &plan);
		topo_locality(t, root, NULL);
		json_dumpf(root, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(root);
	} else {
		onering_plan_print(t, &plan, stdout);
		topo_locality(t, NULL, stdout);
	}
	onering_topo_free(t);
	return 0;
}
