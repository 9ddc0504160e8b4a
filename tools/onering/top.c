/* SPDX-License-Identifier: MIT */
/*
 * onering top: a running broker's pollers, queues and groups, refreshed every
 * second with rates (ncurses). Keys: q quits; v switches the view (pollers
 * and queues / groups); s changes the queues' order (by id / by records per
 * second). It ends by itself, with a message, when the broker goes.
 *
 * It maps the broker's counters segment once (no client slot, no HELLO)
 * and reads it each second; rates are over the broker's own update times.
 *
 * Busy % is the poller's busy_ns counter (time in loops that did work) over
 * the interval: a spinning poller with nothing to do shows 0 %.
 */
#include <curses.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

struct top {
	struct onering_metrics prev, cur; /* two snapshots of the counters segment */
	bool groups_view;
	bool by_rate;   /* queues by records/s, else by id */
};

/* The rate of counter name of o over the interval (0 for an object new since). */
static double rate(const struct top *t, const struct onering_metrics_object *o, const char *name)
{
	return tool_rate(&t->cur, &t->prev, o, name);
}

static const char *label(const struct onering_metrics_object *o, const char *key)
{
	const char *v = onering_metrics_label(o, key);

	return v ? v : "-";
}

static void show_pollers(const struct top *t, int *row)
{
	mvprintw((*row)++, 0, "%-7s %4s %6s %12s %12s %12s %10s", "POLLER", "CPU", "BUSY%",
		 "LOOPS/S", "EVENTS/S", "RECORDS/S", "SLEEPS/S");
	for (unsigned i = 0; i < t->cur.nr_objects; i++) {
		const struct onering_metrics_object *o = &t->cur.objects[i];
		if (o->what != ONERING_STATS_POLLER)
			continue;
		double busy = rate(t, o, "busy_ns") / 1e7; /* ns/s -> % */
		mvprintw((*row)++, 0, "%-7u %4llu %6.1f %12.0f %12.0f %12.0f %10.0f", o->id,
			 (unsigned long long)tool_value(o, "cpu"), busy > 100 ? 100 : busy,
			 rate(t, o, "loops"), rate(t, o, "events"), rate(t, o, "published"),
			 rate(t, o, "sleeps"));
	}
}

static const struct top *sort_top; /* qsort has no context argument */

static int queue_order(const void *a, const void *b)
{
	const struct onering_metrics_object *x = *(const struct onering_metrics_object *const *)a;
	const struct onering_metrics_object *y = *(const struct onering_metrics_object *const *)b;

	if (sort_top->by_rate) {
		double rx = rate(sort_top, x, "published"), ry = rate(sort_top, y, "published");
		if (rx != ry)
			return rx < ry ? 1 : -1;
	}
	return x->id < y->id ? -1 : x->id > y->id;
}

static void show_queues(const struct top *t, int *row)
{
	const struct onering_metrics_object **q =
		calloc(t->cur.nr_objects ? t->cur.nr_objects : 1, sizeof(*q));
	size_t n = 0;

	if (!q)
		return;
	for (unsigned i = 0; i < t->cur.nr_objects; i++)
		if (t->cur.objects[i].what == ONERING_STATS_QUEUE)
			q[n++] = &t->cur.objects[i];
	sort_top = t;
	qsort(q, n, sizeof(*q), queue_order);
	mvprintw((*row)++, 0, "%-6s %7s %4s %12s %12s %8s %10s %7s   (s: order by %s)", "QUEUE",
		 "PID", "NODE", "RECORDS/S", "TAKEN/S", "PENDING", "WAKES/S", "GROUP",
		 t->by_rate ? "id" : "rate");
	for (size_t i = 0; i < n && *row < LINES - 1; i++) {
		const struct onering_metrics_object *o = q[i];
		mvprintw((*row)++, 0, "%-6u %7s %4s %12.0f %12.0f %8llu %10.0f %7llu", o->id,
			 label(o, "pid"), label(o, "node"), rate(t, o, "published"),
			 rate(t, o, "consumed"), (unsigned long long)tool_value(o, "pending"),
			 rate(t, o, "wakes"), (unsigned long long)tool_value(o, "group"));
	}
	free(q);
}

static void show_groups(const struct top *t, int *row)
{
	mvprintw((*row)++, 0, "%-5s %-16s %-7s %7s %12s %8s %10s %10s", "GROUP", "NAME", "POLICY",
		 "MEMBERS", "DELIVERED/S", "BACKLOG", "SPILLED/S", "HANDOFF/S");
	for (unsigned i = 0; i < t->cur.nr_objects && *row < LINES - 1; i++) {
		const struct onering_metrics_object *o = &t->cur.objects[i];
		if (o->what != ONERING_STATS_GROUP)
			continue;
		mvprintw((*row)++, 0, "%-5u %-16s %-7s %7s %12.0f %8llu %10.0f %10.0f", o->id,
			 label(o, "name"), label(o, "policy"), label(o, "members"),
			 rate(t, o, "delivered"), (unsigned long long)tool_value(o, "backlog"),
			 rate(t, o, "spilled"), rate(t, o, "handoffs"));
	}
}

static void show(const struct top *t, const struct tool_instance *inst)
{
	const struct onering_metrics_object *b = NULL;
	int row = 0;

	for (unsigned i = 0; i < t->cur.nr_objects && !b; i++)
		if (t->cur.objects[i].what == ONERING_STATS_BROKER)
			b = &t->cur.objects[i];
	erase();
	mvprintw(row++, 0, "onering top - %s (pid %u): %llu clients, %llu groups   "
		 "q quit, v %s", inst->name, t->cur.pid,
		 b ? (unsigned long long)tool_value(b, "clients") : 0ull,
		 b ? (unsigned long long)tool_value(b, "groups") : 0ull,
		 t->groups_view ? "pollers and queues" : "groups");
	row++;
	if (t->groups_view) {
		show_groups(t, &row);
	} else {
		show_pollers(t, &row);
		row++;
		show_queues(t, &row);
	}
	refresh();
}

int tool_top(int argc, char **argv)
{
	static const struct option opts[] = {TOOL_INSTANCE_OPTIONS,
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct tool_instance inst;
	struct top t = {.by_rate = true};
	struct onering_seg seg;
	char err[512];
	int opt, status = 0;

	tool_instance_init(&inst);
	while ((opt = onering_cli_getopt("onering top", argc, argv, "h", opts)) != -1) {
		if (tool_instance_option(&inst, opt, optarg))
			continue;
		if (opt == 'h') {
			printf("usage: onering top [--name NAME] [--socket-dir DIR]\n"
			       "A live view of a running broker, refreshed every second: per poller\n"
			       "busy %% and loops, events and records per second; per queue records\n"
			       "published and taken per second, pending, wakes; per group records\n"
			       "delivered, backlog, spills. Keys: q quit, v switch view, s order the\n"
			       "queues by rate or by id.\n");
			return 0;
		}
		return 2;
	}
	if (optind < argc) {
		return onering_cli_extra("onering top", argv[optind]);
	}
	/* The segment, mapped once: no client slot, nothing sent after this. */
	if (tool_counters_open(&inst, &seg, err, sizeof(err)) < 0 ||
	    tool_counters_read(&inst, &seg, &t.prev, err, sizeof(err)) < 0) {
		onering_seg_destroy(&seg);
		fprintf(stderr, "onering top: %s\n", err);
		return 1;
	}
	initscr();
	cbreak();
	noecho();
	curs_set(0);
	timeout(1000); /* getch waits a second at most: the refresh */
	for (;;) {
		int key = getch();
		if (key == 'q' || key == 'Q')
			break;
		if (key == 'v')
			t.groups_view = !t.groups_view;
		if (key == 's')
			t.by_rate = !t.by_rate;
		if (tool_counters_read(&inst, &seg, &t.cur, err, sizeof(err)) < 0) {
			status = 1;
			break;
		}
		if (tool_counters_gone(&t.cur)) {
			snprintf(err, sizeof(err), "broker \"%s\" (pid %u) stopped", inst.name,
				 t.cur.pid);
			onering_metrics_free(&t.cur);
			status = 1;
			break;
		}
		/* Rates over the broker's update times; the same snapshot twice
		 * (no update in between) keeps the last rates' base. */
		show(&t, &inst);
		if (t.cur.updated_ns != t.prev.updated_ns) {
			onering_metrics_free(&t.prev);
			t.prev = t.cur;
		} else {
			onering_metrics_free(&t.cur);
		}
	}
	endwin();
	onering_metrics_free(&t.prev);
	onering_seg_destroy(&seg);
	if (status)
		fprintf(stderr, "onering top: %s\n", err);
	return status;
}
