/* SPDX-License-Identifier: MIT */
/*
 * onering stat: a running broker's counters, as text or JSON, and the
 * description of every counter (--list-counters; --markdown writes the
 * counters section of docs/operations.md).
 *
 * Counter names, order and help come from the lists in shm/counters.h
 * only; this file knows each object's identity fields (its id, node, pid,
 * a group's settings), never which counters it has.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

/* ---- identity fields, by object -------------------------------------------- */

static void group_name(const struct onering_msg_group_stats *g, char name[ONERING_NAME_MAX + 1])
{
	memcpy(name, g->name, ONERING_NAME_MAX);
	name[ONERING_NAME_MAX] = '\0';
}

/* An object's fields other than its counters, into o. */
static void ident_json(const union tool_stats_item *s, json_t *o)
{
	const struct onering_msg_stats_item *it = &s->it;
	char name[ONERING_NAME_MAX + 1];

	switch (it->what) {
	case ONERING_STATS_BROKER:
		json_object_set_new(o, "pid", json_integer(it->owner_pid));
		break;
	case ONERING_STATS_POLLER:
		json_object_set_new(o, "poller", json_integer(it->id));
		json_object_set_new(o, "node", json_integer((int32_t)it->node));
		break;
	case ONERING_STATS_QUEUE:
		json_object_set_new(o, "queue", json_integer(it->id));
		json_object_set_new(o, "pid", json_integer(it->owner_pid));
		json_object_set_new(o, "node", json_integer((int32_t)it->node));
		break;
	case ONERING_STATS_GROUP:
		group_name(&s->g, name);
		json_object_set_new(o, "group", json_integer(s->g.id));
		json_object_set_new(o, "name", json_string(name));
		json_object_set_new(o, "policy", json_string(onering_policy_name(s->g.policy)));
		json_object_set_new(o, "numa", json_string(onering_numa_name(s->g.numa)));
		json_object_set_new(o, "spill_pct", json_integer(s->g.spill_pct));
		json_object_set_new(o, "wake", json_string(onering_wake_name(s->g.wake)));
		json_object_set_new(o, "max_running", json_integer(s->g.max_running));
		json_object_set_new(o, "backlog_max", json_integer(s->g.backlog_max));
		json_object_set_new(o, "members", json_integer(s->g.members));
		json_object_set_new(o, "sleeping", json_integer(s->g.sleeping));
		break;
	case ONERING_STATS_PORT:
		json_object_set_new(o, "port", json_integer(it->id));
		json_object_set_new(o, "node", json_integer((int32_t)it->node));
		break;
	case ONERING_STATS_RXQ:
		json_object_set_new(o, "port", json_integer(it->id >> 16));
		json_object_set_new(o, "queue", json_integer(it->id & 0xffff));
		json_object_set_new(o, "poller", json_integer(it->owner_pid));
		break;
	}
}

/* The text columns before the counters: header (s NULL) or one object's. */
static void ident_text(uint32_t what, const union tool_stats_item *s, FILE *out)
{
	const struct onering_msg_stats_item *it = s ? &s->it : NULL;
	char name[ONERING_NAME_MAX + 1], numa[16], rxq[16];

	switch (what) {
	case ONERING_STATS_POLLER:
		if (!it)
			fprintf(out, "%-7s %4s", "poller", "node");
		else
			fprintf(out, "%-7u %4d", it->id, (int32_t)it->node);
		break;
	case ONERING_STATS_QUEUE:
		if (!it)
			fprintf(out, "%-6s %7s %4s", "queue", "pid", "node");
		else
			fprintf(out, "%-6u %7u %4d", it->id, it->owner_pid, (int32_t)it->node);
		break;
	case ONERING_STATS_GROUP:
		if (!it) {
			fprintf(out, "%-5s %-16s %-7s %-10s %-11s %7s %7s %8s", "group", "name",
				"policy", "numa", "wake", "members", "max_run", "sleeping");
			break;
		}
		group_name(&s->g, name);
		if (s->g.numa == ONERING_NUMA_SPILL)
			snprintf(numa, sizeof(numa), "spill:%u", s->g.spill_pct);
		else
			snprintf(numa, sizeof(numa), "%s", onering_numa_name(s->g.numa));
		fprintf(out, "%-5u %-16s %-7s %-10s %-11s %7u %7u %8u", s->g.id, name,
			onering_policy_name(s->g.policy), numa, onering_wake_name(s->g.wake),
			s->g.members, s->g.max_running, s->g.sleeping);
		break;
	case ONERING_STATS_PORT:
		if (!it)
			fprintf(out, "%-5s %4s", "port", "node");
		else
			fprintf(out, "%-5u %4d", it->id, (int32_t)it->node);
		break;
	case ONERING_STATS_RXQ:
		if (!it) {
			fprintf(out, "%-9s %6s", "rx queue", "poller");
			break;
		}
		snprintf(rxq, sizeof(rxq), "%u/%u", it->id >> 16, it->id & 0xffff);
		fprintf(out, "%-9s %6u", rxq, it->owner_pid);
		break;
	}
}

/* An object's counters: the group item keeps them elsewhere. */
static const uint64_t *item_counters(const union tool_stats_item *s)
{
	return s->it.what == ONERING_STATS_GROUP ? s->g.counter : s->it.counter;
}

/* ---- text -------------------------------------------------------------------- */

static int column_width(const struct onering_counter_desc *d)
{
	int w = (int)strlen(d->name);

	return w < 9 ? 9 : w;
}

/* The broker, as sentences: "3 clients, 5 attaches, ...", wrapped. */
static void broker_text(const union tool_stats_item *s, const struct onering_counter_list *l,
			FILE *out)
{
	int col = fprintf(out, "broker pid %u:", s->it.owner_pid);

	for (unsigned c = 0; c < l->nr; c++) {
		char word[64];
		snprintf(word, sizeof(word), " %llu %s%s", (unsigned long long)s->it.counter[c],
			 l->desc[c].name, c + 1 < l->nr ? "," : "");
		for (char *p = word; *p; p++)
			if (*p == '_')
				*p = ' ';
		if (col + (int)strlen(word) > 90)
			col = fprintf(out, "\n ");
		col += fprintf(out, "%s", word);
	}
	fputc('\n', out);
}

void tool_stats_print(const struct tool_stats *s, FILE *out)
{
	unsigned nr_lists;
	const struct onering_counter_list *lists = onering_counter_lists(&nr_lists);

	for (unsigned k = 0; k < nr_lists; k++) {
		const struct onering_counter_list *l = &lists[k];
		bool header = false;
		for (size_t i = 0; i < s->n; i++) {
			const union tool_stats_item *item = &s->items[i];
			if (item->it.what != l->what)
				continue;
			if (l->what == ONERING_STATS_BROKER) {
				broker_text(item, l, out);
				continue;
			}
			if (!header) {
				fputc('\n', out);
				ident_text(l->what, NULL, out);
				for (unsigned c = 0; c < l->nr; c++)
					fprintf(out, " %*s", column_width(&l->desc[c]), l->desc[c].name);
				fputc('\n', out);
				header = true;
			}
			const uint64_t *ctr = item_counters(item);
			ident_text(l->what, item, out);
			for (unsigned c = 0; c < l->nr; c++)
				fprintf(out, " %*llu", column_width(&l->desc[c]),
					(unsigned long long)ctr[c]);
			fputc('\n', out);
		}
	}
}

/* ---- JSON -------------------------------------------------------------------- */

static json_t *stats_json(const struct tool_stats *s)
{
	json_t *root = json_object();
	unsigned nr_lists;
	const struct onering_counter_list *lists = onering_counter_lists(&nr_lists);

	for (unsigned k = 0; k < nr_lists; k++)
		if (lists[k].what != ONERING_STATS_BROKER)
			json_object_set_new(root, lists[k].family, json_array());
	for (size_t i = 0; i < s->n; i++) {
		const struct onering_counter_list *l = onering_counter_list_find(s->items[i].it.what);
		if (!l)
			continue; /* an object this tool does not know yet */
		const uint64_t *ctr = item_counters(&s->items[i]);
		json_t *o = json_object();
		ident_json(&s->items[i], o);
		for (unsigned c = 0; c < l->nr; c++)
			json_object_set_new(o, l->desc[c].name, json_integer((json_int_t)ctr[c]));
		if (l->what == ONERING_STATS_BROKER)
			json_object_set_new(root, l->family, o);
		else
			json_array_append_new(json_object_get(root, l->family), o);
	}
	return root;
}

/* ---- --list-counters ----------------------------------------------------------- */

static void list_counters(bool markdown, FILE *out)
{
	unsigned nr_lists;
	const struct onering_counter_list *lists = onering_counter_lists(&nr_lists);

	for (unsigned k = 0; k < nr_lists; k++) {
		const struct onering_counter_list *l = &lists[k];
		if (markdown)
			fprintf(out, "%s**%s** (`--json`: `\"%s\"`)\n\n| counter | kind | unit | "
				"meaning |\n|---|---|---|---|\n", k ? "\n" : "", l->family,
				l->family);
		for (unsigned c = 0; c < l->nr; c++) {
			const struct onering_counter_desc *d = &l->desc[c];
			if (markdown)
				fprintf(out, "| `%s` | %s | %s | %s |\n", d->name,
					onering_counter_kind_name(d->kind), d->unit, d->help);
			else
				fprintf(out, "%-9s %-16s %-7s %-13s %s\n", l->family, d->name,
					onering_counter_kind_name(d->kind), d->unit, d->help);
		}
	}
}

int tool_stat(int argc, char **argv)
{
	static const struct option opts[] = {TOOL_INSTANCE_OPTIONS,
					     {"json", no_argument, NULL, 'j'},
					     {"list-counters", no_argument, NULL, 'l'},
					     {"markdown", no_argument, NULL, 'm'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct tool_instance inst;
	bool json = false, list = false, markdown = false;
	struct tool_stats s;
	char err[512];
	int opt;

	tool_instance_init(&inst);
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (tool_instance_option(&inst, opt, optarg))
			continue;
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'l':
			list = true;
			break;
		case 'm':
			markdown = true;
			break;
		case 'h':
			printf("usage: onering stat [--name NAME] [--socket-dir DIR] [--json]\n"
			       "       onering stat --list-counters [--markdown]\n"
			       "Prints a running broker's counters: the broker's, then one row per\n"
			       "poller, queue, group, NIC port and rx queue. --list-counters says what\n"
			       "each counter means (--markdown: as docs/operations.md has it).\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "onering stat: unexpected \"%s\" (see onering stat --help)\n",
			argv[optind]);
		return 2;
	}
	if (list) {
		list_counters(markdown, stdout);
		return 0;
	}
	if (tool_stats_fetch(&inst, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "onering stat: %s\n", err);
		return 1;
	}
	if (json) {
		json_t *root = stats_json(&s);
		json_dumpf(root, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		fputc('\n', stdout);
		json_decref(root);
	} else {
		tool_stats_print(&s, stdout);
	}
	free(s.items);
	return 0;
}
