/* SPDX-License-Identifier: MIT */
/*
 * onering stat: a running broker's counters, as text or JSON, and the
 * description of every counter (--list-counters; --markdown writes the
 * counters section of docs/operations.md).
 *
 * It reads the broker's counters segment (shm/counters_seg.h), never
 * attaching: names, help, kinds and each object's labels come from the
 * segment itself, so this file knows no counter and no object's fields;
 * --list-counters prints this build's table (shm/counters.h).
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

/* ---- values and rates --------------------------------------------------------- */

uint64_t tool_value(const struct onering_metrics_object *o, const char *name)
{
	int c = onering_metrics_counter(o->list, name);

	return c < 0 ? 0 : o->value[c];
}

/* Counter c of o per second against prev (its object of the same slot and
 * generation), over the broker's own update times. */
static double rate_of(const struct onering_metrics *m, const struct onering_metrics *prev,
		      const struct onering_metrics_object *o, unsigned c)
{
	const struct onering_metrics_object *was = prev ? onering_metrics_same(prev, o) : NULL;

	if (!was || m->updated_ns <= prev->updated_ns || o->value[c] < was->value[c])
		return 0;
	return (double)(o->value[c] - was->value[c]) * 1e9 /
	       (double)(m->updated_ns - prev->updated_ns);
}

double tool_rate(const struct onering_metrics *m, const struct onering_metrics *prev,
		 const struct onering_metrics_object *o, const char *name)
{
	int c = onering_metrics_counter(o->list, name);

	return c < 0 ? 0 : rate_of(m, prev, o, (unsigned)c);
}

/* What to print for counter c of o: its value, or (prev) a counter's rate. */
static unsigned long long shown(const struct onering_metrics *m, const struct onering_metrics *prev,
				const struct onering_metrics_object *o, unsigned c)
{
	if (prev && o->list->desc[c].kind == ONERING_COUNTER_COUNTER)
		return (unsigned long long)(rate_of(m, prev, o, c) + 0.5);
	return (unsigned long long)o->value[c];
}

/* ---- text -------------------------------------------------------------------- */

static int column_width(const struct onering_metrics_desc *d)
{
	int w = (int)strlen(d->name);

	return w < 9 ? 9 : w;
}

/* A list of one object (the broker, the export), as sentences: "broker pid
 * 7: 3 clients, 5 attaches, ...", wrapped. */
static void sentences(const struct onering_metrics *m, const struct onering_metrics *prev,
		      const struct onering_metrics_object *o, FILE *out)
{
	const struct onering_metrics_list *l = o->list;
	int col = fprintf(out, "%s", l->object);

	for (unsigned i = 0; i < o->nr_labels; i++)
		col += fprintf(out, " %s %s", o->label[i].key, o->label[i].value);
	col += fprintf(out, ":");
	for (unsigned c = 0; c < l->nr; c++) {
		char word[160];
		snprintf(word, sizeof(word), " %llu %s%s", shown(m, prev, o, c), l->desc[c].name,
			 c + 1 < l->nr ? "," : "");
		for (char *p = word; *p; p++)
			if (*p == '_')
				*p = ' ';
		if (col + (int)strlen(word) > 90)
			col = fprintf(out, "\n ");
		col += fprintf(out, "%s", word);
	}
	fputc('\n', out);
}

void tool_stats_print(const struct onering_metrics *m, const struct onering_metrics *prev,
		      FILE *out)
{
	for (unsigned k = 0; k < m->nr_lists; k++) {
		const struct onering_metrics_list *l = &m->lists[k];
		const struct onering_metrics_object *first = NULL;
		unsigned n = 0;
		for (unsigned i = 0; i < m->nr_objects; i++)
			if (m->objects[i].list == l && n++ == 0)
				first = &m->objects[i];
		if (!first)
			continue;
		if (l->what == ONERING_STATS_BROKER || l->what == ONERING_STATS_EXPORT) {
			if (l->what != ONERING_STATS_BROKER)
				fputc('\n', out);
			for (unsigned i = 0; i < m->nr_objects; i++)
				if (m->objects[i].list == l)
					sentences(m, prev, &m->objects[i], out);
			continue;
		}
		/* Columns: the first object's labels (every object of a list has
		 * the same), each as wide as its widest value, then the counters. */
		int width[ONERING_COUNTERS_LABELS_MAX];
		for (unsigned j = 0; j < first->nr_labels; j++) {
			width[j] = (int)strlen(first->label[j].key);
			for (unsigned i = 0; i < m->nr_objects; i++) {
				const struct onering_metrics_object *o = &m->objects[i];
				int w = j < o->nr_labels ? (int)strlen(o->label[j].value) : 0;
				if (o->list == l && w > width[j])
					width[j] = w;
			}
		}
		fputc('\n', out);
		for (unsigned j = 0; j < first->nr_labels; j++)
			fprintf(out, "%s%-*s", j ? " " : "", width[j], first->label[j].key);
		for (unsigned c = 0; c < l->nr; c++)
			fprintf(out, " %*s", column_width(&l->desc[c]), l->desc[c].name);
		fputc('\n', out);
		for (unsigned i = 0; i < m->nr_objects; i++) {
			const struct onering_metrics_object *o = &m->objects[i];
			if (o->list != l)
				continue;
			for (unsigned j = 0; j < first->nr_labels; j++)
				fprintf(out, "%s%-*s", j ? " " : "", width[j],
					j < o->nr_labels ? o->label[j].value : "-");
			for (unsigned c = 0; c < l->nr; c++)
				fprintf(out, " %*llu", column_width(&l->desc[c]), shown(m, prev, o, c));
			fputc('\n', out);
		}
	}
}

/* ---- JSON -------------------------------------------------------------------- */

static json_t *stats_json(const struct onering_metrics *m)
{
	json_t *root = json_object();

	for (unsigned k = 0; k < m->nr_lists; k++)
		if (m->lists[k].what != ONERING_STATS_BROKER && m->lists[k].what != ONERING_STATS_EXPORT)
			json_object_set_new(root, m->lists[k].family, json_array());
	for (unsigned i = 0; i < m->nr_objects; i++) {
		const struct onering_metrics_object *o = &m->objects[i];
		json_t *j = json_object();
		for (unsigned n = 0; n < o->nr_labels; n++) {
			const struct onering_counters_label *lb = &o->label[n];
			json_object_set_new(j, lb->key,
					    lb->flags & ONERING_COUNTERS_LABEL_NUMBER
						    ? json_integer(strtoll(lb->value, NULL, 10))
						    : json_string(lb->value));
		}
		for (unsigned c = 0; c < o->list->nr; c++)
			json_object_set_new(j, o->list->desc[c].name,
					    json_integer((json_int_t)o->value[c]));
		json_t *arr = json_object_get(root, o->list->family);
		if (arr)
			json_array_append_new(arr, j);
		else
			json_object_set_new(root, o->list->family, j);
	}
	return root;
}

/* ---- --interval: rates ------------------------------------------------------------ */

/* Every `seconds`, the rates of the last interval, count times (0: until
 * interrupted or the broker goes). */
static int stats_every(const struct tool_instance *inst, const struct onering_seg *seg,
		       unsigned seconds, unsigned count)
{
	struct onering_metrics prev, cur;
	char err[512];

	if (tool_counters_read(inst, seg, &prev, err, sizeof(err)) < 0)
		goto fail;
	for (unsigned n = 0; count == 0 || n < count; n++) {
		struct timespec t = {.tv_sec = seconds};
		while (nanosleep(&t, &t) < 0 && errno == EINTR)
			;
		if (tool_counters_read(inst, seg, &cur, err, sizeof(err)) < 0) {
			onering_metrics_free(&prev);
			goto fail;
		}
		if (tool_counters_gone(&cur)) {
			snprintf(err, sizeof(err), "broker \"%s\" (pid %u) stopped", inst->name,
				 cur.pid);
			onering_metrics_free(&cur);
			onering_metrics_free(&prev);
			goto fail;
		}
		printf("%s== per second over the last %u s (gauges: now) ==\n", n ? "\n" : "",
		       seconds);
		tool_stats_print(&cur, &prev, stdout);
		fflush(stdout);
		onering_metrics_free(&prev);
		prev = cur;
	}
	onering_metrics_free(&prev);
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
	struct onering_metrics m;
	struct onering_seg seg;
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
	/* The segment, not a client slot: reading counters attaches nothing. */
	if (tool_counters_open(&inst, &seg, err, sizeof(err)) < 0) {
		fprintf(stderr, "onering stat: %s\n", err);
		return 1;
	}
	if (interval) {
		int status = stats_every(&inst, &seg, interval, count);
		onering_seg_destroy(&seg);
		return status;
	}
	if (tool_counters_read(&inst, &seg, &m, err, sizeof(err)) < 0) {
		fprintf(stderr, "onering stat: %s\n", err);
		onering_seg_destroy(&seg);
		return 1;
	}
	onering_seg_destroy(&seg);
	int status = 0;
	if (json) {
		json_t *root = stats_json(&m);
		json_dumpf(root, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		fputc('\n', stdout);
		json_decref(root);
	} else if (prometheus) {
		status = onering_metrics_prometheus(&m, inst.name, stdout) < 0;
	} else {
		tool_stats_print(&m, NULL, stdout);
	}
	onering_metrics_free(&m);
	return status;
}
