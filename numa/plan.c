/* SPDX-License-Identifier: MIT */
/* The placement plan (numa/plan.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "numa/placement.h"
#include "numa/plan.h"

#define MAX_CPUS 4096

void onering_cpus_format(const int *cpus, int n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && used < len; i++) {
		int j = i;
		while (j + 1 < n && cpus[j + 1] == cpus[j] + 1)
			j++;
		int w = j > i ? snprintf(buf + used, len - used, "%s%d-%d", used ? "," : "", cpus[i],
					 cpus[j])
			      : snprintf(buf + used, len - used, "%s%d", used ? "," : "", cpus[i]);
		if (w < 0)
			break;
		used += (size_t)w;
		i = j;
	}
}

static bool allowed(const struct onering_plan_request *req, int cpu)
{
	return !req->allowed || (cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET(cpu, req->allowed));
}

/* Allowed CPUs of a node, in topology order. */
static int node_allowed_cpus(const struct onering_topo *t, const struct onering_plan_request *req,
			     int node, int *out, int max)
{
	static int all[MAX_CPUS];
	int n = onering_topo_node_cpus(t, node, all, MAX_CPUS), k = 0;

	for (int i = 0; i < n && i < MAX_CPUS; i++)
		if (allowed(req, all[i]) && k < max)
			out[k++] = all[i];
	return k;
}

static void node_list(const struct onering_topo *t, const struct onering_plan_request *req,
		      int node, char *buf, size_t len)
{
	static int cpus[MAX_CPUS];
	int n = node_allowed_cpus(t, req, node, cpus, MAX_CPUS);

	if (n == 0)
		snprintf(buf, len, "none");
	else
		onering_cpus_format(cpus, n, buf, len);
}

/* "node 0: 0-3; node 1: 4-7" */
static void all_nodes_list(const struct onering_topo *t, const struct onering_plan_request *req,
			   char *buf, size_t len)
{
	size_t used = 0;
	char one[256];

	buf[0] = '\0';
	for (int i = 0; i < onering_topo_node_count(t) && used < len; i++) {
		int node = onering_topo_node_at(t, i);
		node_list(t, req, node, one, sizeof(one));
		int w = snprintf(buf + used, len - used, "%snode %d: %s", used ? "; " : "", node, one);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

#define FAIL(...)                                             \
	do {                                                  \
		if (err && err_size)                          \
			snprintf(err, err_size, __VA_ARGS__); \
		return -EINVAL;                               \
	} while (0)

static int plan_given(const struct onering_topo *t, const struct onering_plan_request *req,
		      struct onering_plan *plan, char *err, size_t err_size)
{
	char list[1024];

	if (req->nr_cpus > ONERING_PLAN_MAX_POLLERS)
		FAIL("%u pollers asked for; at most %d", req->nr_cpus, ONERING_PLAN_MAX_POLLERS);
	for (unsigned i = 0; i < req->nr_cpus; i++) {
		int cpu = req->cpus[i];
		int want = req->cpu_nodes ? req->cpu_nodes[i] : -1;
		int node = onering_topo_cpu_node(t, cpu);
		if (want >= 0) {
			bool node_exists = false;
			for (int k = 0; k < onering_topo_node_count(t); k++)
				node_exists |= onering_topo_node_at(t, k) == want;
			if (!node_exists) {
				all_nodes_list(t, req, list, sizeof(list));
				FAIL("poller %d:%d: there is no node %d (%s)", want, cpu, want, list);
			}
			if (!onering_topo_cpu_valid(t, cpu) || node != want || !allowed(req, cpu)) {
				node_list(t, req, want, list, sizeof(list));
				FAIL("poller %d:%d: CPU %d is not a usable CPU of node %d (node %d has CPUs %s)",
				     want, cpu, cpu, want, want, list);
			}
		} else if (!onering_topo_cpu_valid(t, cpu) || !allowed(req, cpu)) {
			all_nodes_list(t, req, list, sizeof(list));
			FAIL("CPU %d is not present or not allowed here (CPUs: %s)", cpu, list);
		}
		int core = onering_topo_core_of(t, cpu);
		for (unsigned j = 0; j < i; j++) {
			if (plan->pollers[j].cpu == cpu)
				FAIL("CPU %d is given twice", cpu);
			if (plan->pollers[j].core == core)
				FAIL("CPUs %d and %d are hardware threads of one core: give each poller "
				     "a core of its own",
				     plan->pollers[j].cpu, cpu);
		}
		plan->pollers[i] = (struct onering_plan_poller){.cpu = cpu, .node = node, .core = core};
	}
	plan->nr_pollers = req->nr_cpus;
	return 0;
}

static int plan_chosen(const struct onering_topo *t, const struct onering_plan_request *req,
		       struct onering_plan *plan, char *err, size_t err_size)
{
	static int cpus[MAX_CPUS];
	int control_core = onering_topo_core_of(t, plan->control_cpu);

	for (int i = 0; i < onering_topo_node_count(t); i++) {
		int node = onering_topo_node_at(t, i);
		int n = node_allowed_cpus(t, req, node, cpus, MAX_CPUS);
		if (n == 0)
			continue; /* a memory-only node, or none of its CPUs allowed */
		if (plan->nr_pollers == ONERING_PLAN_MAX_POLLERS)
			break;
		/* The first CPU of each core, in order. */
		int firsts[MAX_CPUS], nf = 0, prev_core = -2;
		for (int k = 0; k < n; k++) {
			int core = onering_topo_core_of(t, cpus[k]);
			if (core != prev_core)
				firsts[nf++] = cpus[k];
			prev_core = core;
		}
		/* Prefer a core that is neither the node's first nor the control's. */
		int pick = -1;
		for (int k = 0; k < nf && pick < 0; k++)
			if ((k > 0 || nf == 1) && onering_topo_core_of(t, firsts[k]) != control_core)
				pick = firsts[k];
		for (int k = nf - 1; k >= 0 && pick < 0; k--)
			if (k > 0 || nf == 1)
				pick = firsts[k];
		plan->pollers[plan->nr_pollers++] = (struct onering_plan_poller){
			.cpu = pick, .node = node, .core = onering_topo_core_of(t, pick)};
	}
	if (plan->nr_pollers == 0)
		FAIL("no allowed CPU in the topology");
	return 0;
}

int onering_plan_make(const struct onering_topo *t, const struct onering_plan_request *req,
		      struct onering_plan *plan, char *err, size_t err_size)
{
	struct onering_plan_request none = {.control_cpu = -1};
	char list[1024];

	if (!req)
		req = &none;
	memset(plan, 0, sizeof(*plan));
	plan->control_cpu = req->control_cpu;
	if (plan->control_cpu >= 0) {
		if (!onering_topo_cpu_valid(t, plan->control_cpu) || !allowed(req, plan->control_cpu)) {
			all_nodes_list(t, req, list, sizeof(list));
			FAIL("control CPU %d is not present or not allowed here (CPUs: %s)",
			     plan->control_cpu, list);
		}
	} else {
		for (int i = 0; i < onering_topo_cpu_count(t) && plan->control_cpu < 0; i++)
			if (allowed(req, onering_topo_cpu_at(t, i)))
				plan->control_cpu = onering_topo_cpu_at(t, i);
	}
	return req->nr_cpus ? plan_given(t, req, plan, err, err_size)
			    : plan_chosen(t, req, plan, err, err_size);
}

void onering_plan_print(const struct onering_topo *t, const struct onering_plan *plan, FILE *out)
{
	static int cpus[MAX_CPUS];
	char desc[256], list[1024];

	onering_topo_describe(t, desc, sizeof(desc));
	fprintf(out, "topology      %s%s\n", desc,
		onering_topo_is_this_system(t) ? "" : "  (synthetic: not this machine)");
	for (int i = 0; i < onering_topo_node_count(t); i++) {
		int node = onering_topo_node_at(t, i);
		int n = onering_topo_node_cpus(t, node, cpus, MAX_CPUS);
		onering_cpus_format(cpus, n < MAX_CPUS ? n : MAX_CPUS, list, sizeof(list));
		fprintf(out, "node %-3d      CPUs %s%s\n", node, n ? list : "none",
			onering_numa_node_exists((uint32_t)node) ? ""
								  : "  (memory: not on this machine, "
								    "falls back)");
	}
	fprintf(out, "control       CPU %d\n", plan->control_cpu);
	for (unsigned i = 0; i < plan->nr_pollers; i++)
		fprintf(out, "poller %-3u    node %d, CPU %d (core %d)\n", i, plan->pollers[i].node,
			plan->pollers[i].cpu, plan->pollers[i].core);
}

void onering_distances_print(const struct onering_topo *t, FILE *out)
{
	int nr_nodes = onering_topo_node_count(t);

	fprintf(out, "distances     node");
	for (int k = 0; k < nr_nodes; k++)
		fprintf(out, " %4d", onering_topo_node_at(t, k));
	fputc('\n', out);
	for (int i = 0; i < nr_nodes; i++) {
		fprintf(out, "              %-4d", onering_topo_node_at(t, i));
		for (int k = 0; k < nr_nodes; k++)
			fprintf(out, " %4d", onering_topo_node_distance(t, onering_topo_node_at(t, i),
								 onering_topo_node_at(t, k)));
		fputc('\n', out);
	}
}
