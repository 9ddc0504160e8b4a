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
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
const uint64_t *tool_item_counters(const union tool_stats_item *s)
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
			const uint64_t *ctr = tool_item_counters(item);
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
		const uint64_t *ctr = tool_item_counters(&s->items[i]);
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

/* ---- Prometheus ---------------------------------------------------------------- */

/* The metric name's object word for a list: onering_<object>_<counter>. */
static const char *prom_object(uint32_t what)
{
	switch (what) {
	case ONERING_STATS_BROKER:
		return "broker";
	case ONERING_STATS_POLLER:
		return "poller";
	case ONERING_STATS_QUEUE:
		return "queue";
	case ONERING_STATS_GROUP:
		return "group";
	case ONERING_STATS_PORT:
		return "port";
	default:
		return "rxq";
	}
}

/* A label value or help text as the exposition format wants it: \\, \" (in
 * label values) and \n escaped. */
static void prom_escape(const char *v, bool quote, FILE *out)
{
	for (; *v; v++) {
		if (*v == '\\' || (quote && *v == '"'))
			fputc('\\', out);
		if (*v == '\n')
			fputs("\\n", out);
		else
			fputc(*v, out);
	}
}

/* An object's labels: the instance, its identity, and its label-kind
 * counters (ids and cpus are not samples). */
static void prom_labels(const char *instance, const union tool_stats_item *s,
			const struct onering_counter_list *l, FILE *out)
{
	const struct onering_msg_stats_item *it = &s->it;
	char name[ONERING_NAME_MAX + 1];

	fputs("{instance=\"", out);
	prom_escape(instance, true, out);
	fputc('"', out);
	switch (it->what) {
	case ONERING_STATS_BROKER:
		fprintf(out, ",pid=\"%u\"", it->owner_pid);
		break;
	case ONERING_STATS_POLLER:
	case ONERING_STATS_PORT:
		fprintf(out, ",%s=\"%u\",node=\"%d\"", prom_object(it->what), it->id,
			(int32_t)it->node);
		break;
	case ONERING_STATS_QUEUE:
		fprintf(out, ",queue=\"%u\",pid=\"%u\",node=\"%d\"", it->id, it->owner_pid,
			(int32_t)it->node);
		break;
	case ONERING_STATS_GROUP:
		group_name(&s->g, name);
		fprintf(out, ",group=\"%u\",name=\"", s->g.id);
		prom_escape(name, true, out);
		fputc('"', out);
		break;
	case ONERING_STATS_RXQ:
		fprintf(out, ",port=\"%u\",queue=\"%u\",poller=\"%u\"", it->id >> 16,
			it->id & 0xffff, it->owner_pid);
		break;
	}
	const uint64_t *ctr = tool_item_counters(s);
	for (unsigned c = 0; c < l->nr; c++)
		if (l->desc[c].kind == ONERING_COUNTER_LABEL)
			fprintf(out, ",%s=\"%llu\"", l->desc[c].name, (unsigned long long)ctr[c]);
	fputc('}', out);
}

/* Every counter of the table, once, with HELP and TYPE (also when no object
 * has it now), then one sample per object; counters end in _total. */
static void stats_prometheus(const struct tool_stats *s, const char *instance, FILE *out)
{
	unsigned nr_lists;
	const struct onering_counter_list *lists = onering_counter_lists(&nr_lists);

	for (unsigned k = 0; k < nr_lists; k++) {
		const struct onering_counter_list *l = &lists[k];
		for (unsigned c = 0; c < l->nr; c++) {
			const struct onering_counter_desc *d = &l->desc[c];
			bool counter = d->kind == ONERING_COUNTER_COUNTER;
			char metric[96];
			if (d->kind == ONERING_COUNTER_LABEL)
				continue;
			snprintf(metric, sizeof(metric), "onering_%s_%s%s", prom_object(l->what),
				 d->name, counter ? "_total" : "");
			fprintf(out, "# HELP %s ", metric);
			prom_escape(d->help, false, out);
			fprintf(out, " (%s)\n# TYPE %s %s\n", d->unit, metric,
				counter ? "counter" : "gauge");
			for (size_t i = 0; i < s->n; i++) {
				if (s->items[i].it.what != l->what)
					continue;
				fputs(metric, out);
				prom_labels(instance, &s->items[i], l, out);
				fprintf(out, " %llu\n",
					(unsigned long long)tool_item_counters(&s->items[i])[c]);
			}
		}
	}
}

/* ---- --interval: rates ------------------------------------------------------------ */

const union tool_stats_item *tool_stats_find(const struct tool_stats *s, uint32_t what,
					     uint32_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->items[i].it.what == what && s->items[i].it.id == id)
			return &s->items[i];
	return NULL;
}

/* cur with its counters turned into per-second rates against prev (an
 * object new since then: 0); gauges and labels stay as they are. */
static void stats_rates(struct tool_stats *cur, const struct tool_stats *prev, unsigned seconds)
{
	for (size_t i = 0; i < cur->n; i++) {
		union tool_stats_item *it = &cur->items[i];
		const struct onering_counter_list *l = onering_counter_list_find(it->it.what);
		const union tool_stats_item *was = tool_stats_find(prev, it->it.what, it->it.id);
		uint64_t *ctr = it->it.what == ONERING_STATS_GROUP ? it->g.counter : it->it.counter;
		for (unsigned c = 0; l && c < l->nr; c++) {
			if (l->desc[c].kind != ONERING_COUNTER_COUNTER)
				continue;
			uint64_t before = was ? tool_item_counters(was)[c] : ctr[c];
			ctr[c] = ctr[c] >= before ? (ctr[c] - before + seconds / 2) / seconds : 0;
		}
	}
}

/* Every `seconds`, the rates of the last interval, count times (0: until
 * interrupted or the broker goes). */
static int stats_every(const struct tool_instance *inst, unsigned seconds, unsigned count)
{
	struct tool_stats prev, cur;
	char err[512];

	if (tool_stats_fetch(inst, &prev, err, sizeof(err)) < 0)
		goto fail;
	for (unsigned n = 0; count == 0 || n < count; n++) {
		struct timespec t = {.tv_sec = seconds};
		while (nanosleep(&t, &t) < 0 && errno == EINTR)
			;
		if (tool_stats_fetch(inst, &cur, err, sizeof(err)) < 0) {
			free(prev.items);
			goto fail;
		}
		struct tool_stats now = cur;
		now.items = malloc(cur.n * sizeof(*cur.items));
		if (!now.items) {
			free(cur.items);
			free(prev.items);
			snprintf(err, sizeof(err), "out of memory");
			goto fail;
		}
		memcpy(now.items, cur.items, cur.n * sizeof(*cur.items));
		stats_rates(&now, &prev, seconds);
		printf("%s== per second over the last %u s (gauges: now) ==\n", n ? "\n" : "",
		       seconds);
		tool_stats_print(&now, stdout);
		fflush(stdout);
		free(now.items);
		free(prev.items);
		prev = cur;
	}
	free(prev.items);
	return 0;
fail:
	fprintf(stderr, "onering stat: %s\n", err);
	return 1;
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
					     {"prometheus", no_argument, NULL, 'p'},
					     {"interval", required_argument, NULL, 'i'},
					     {"count", required_argument, NULL, 'c'},
					     {"list-counters", no_argument, NULL, 'l'},
					     {"markdown", no_argument, NULL, 'm'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct tool_instance inst;
	bool json = false, list = false, markdown = false, prometheus = false;
	unsigned interval = 0, count = 0;
	struct tool_stats s;
	char err[512];
	int opt;

	tool_instance_init(&inst);
	while ((opt = onering_cli_getopt("onering stat", argc, argv, "h", opts)) != -1) {
		if (tool_instance_option(&inst, opt, optarg))
			continue;
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'p':
			prometheus = true;
			break;
		case 'i':
		case 'c':
			if (tool_parse_uint(optarg, opt == 'i' ? 1 : 0, 86400,
					    opt == 'i' ? &interval : &count) < 0) {
				return onering_cli_bad_value("onering stat",
							     opt == 'i' ? "interval" : "count", optarg,
							     opt == 'i' ? "expected seconds, 1..86400"
									: "expected a count, 0..86400");
			}
			break;
		case 'l':
			list = true;
			break;
		case 'm':
			markdown = true;
			break;
		case 'h':
			printf("usage: onering stat [--name NAME] [--socket-dir DIR] [--json | --prometheus]\n"
			       "       onering stat [--name NAME] --interval SECONDS [--count N]\n"
			       "       onering stat --list-counters [--markdown]\n"
			       "Prints a running broker's counters: the broker's, then one row per\n"
			       "poller, queue, group, NIC port and rx queue. --prometheus: the text\n"
			       "exposition format (HELP and TYPE for every counter). --interval: every\n"
			       "SECONDS, the counters' rates over the last interval, N times (0: until\n"
			       "interrupted). --list-counters says what each counter means (--markdown:\n"
			       "as docs/operations.md has it).\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		return onering_cli_extra("onering stat", argv[optind]);
	}
	if (list) {
		list_counters(markdown, stdout);
		return 0;
	}
	if (json + prometheus + (interval > 0) > 1) {
		fprintf(stderr, "onering stat: --json, --prometheus and --interval do not combine\n");
		return 2;
	}
	if (interval)
		return stats_every(&inst, interval, count);
	if (tool_stats_fetch(&inst, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "onering stat: %s\n", err);
		return 1;
	}
	if (json) {
		json_t *root = stats_json(&s);
		json_dumpf(root, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		fputc('\n', stdout);
		json_decref(root);
	} else if (prometheus) {
		stats_prometheus(&s, inst.name, stdout);
	} else {
		tool_stats_print(&s, stdout);
	}
	free(s.items);
	return 0;
}
