/* SPDX-License-Identifier: MIT */
/*
 * onering top: a running broker's pollers, queues and groups, refreshed every
 * second with rates (ncurses). Keys: q quits; v switches the view (pollers
 * and queues / groups); s changes the queues' order (by id / by records per
 * second). It ends by itself, with a message, when the broker goes.
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
	struct tool_stats prev, cur;
	double seconds; /* between prev and cur */
	bool groups_view;
	bool by_rate;   /* queues by records/s, else by id */
};

/* The rate of counter c of s over the interval (0 for an object new since). */
static double rate(const struct top *t, const union tool_stats_item *s, unsigned c)
{
	const union tool_stats_item *was = tool_stats_find(&t->prev, s->it.what, s->it.id);
	uint64_t now = tool_item_counters(s)[c], before = was ? tool_item_counters(was)[c] : now;

	return now >= before && t->seconds > 0 ? (double)(now - before) / t->seconds : 0;
}

static void show_pollers(const struct top *t, int *row)
{
	mvprintw((*row)++, 0, "%-7s %4s %6s %12s %12s %12s %10s", "POLLER", "CPU", "BUSY%",
		 "LOOPS/S", "EVENTS/S", "RECORDS/S", "SLEEPS/S");
	for (size_t i = 0; i < t->cur.n; i++) {
		const union tool_stats_item *s = &t->cur.items[i];
		if (s->it.what != ONERING_STATS_POLLER)
			continue;
		double busy = rate(t, s, ONERING_PC_BUSY_NS) / 1e7; /* ns/s -> % */
		mvprintw((*row)++, 0, "%-7u %4llu %6.1f %12.0f %12.0f %12.0f %10.0f", s->it.id,
			 (unsigned long long)s->it.counter[ONERING_PC_CPU], busy > 100 ? 100 : busy,
			 rate(t, s, ONERING_PC_LOOPS), rate(t, s, ONERING_PC_EVENTS),
			 rate(t, s, ONERING_PC_PUBLISHED), rate(t, s, ONERING_PC_SLEEPS));
	}
}

static const struct top *sort_top; /* qsort has no context argument */

static int queue_order(const void *a, const void *b)
{
	const union tool_stats_item *x = *(const union tool_stats_item *const *)a;
	const union tool_stats_item *y = *(const union tool_stats_item *const *)b;

	if (sort_top->by_rate) {
		double rx = rate(sort_top, x, ONERING_QC_PUBLISHED);
		double ry = rate(sort_top, y, ONERING_QC_PUBLISHED);
		if (rx != ry)
			return rx < ry ? 1 : -1;
	}
	return x->it.id < y->it.id ? -1 : x->it.id > y->it.id;
}

static void show_queues(const struct top *t, int *row)
{
	const union tool_stats_item **q = calloc(t->cur.n ? t->cur.n : 1, sizeof(*q));
	size_t n = 0;

	if (!q)
		return;
	for (size_t i = 0; i < t->cur.n; i++)
		if (t->cur.items[i].it.what == ONERING_STATS_QUEUE)
			q[n++] = &t->cur.items[i];
	sort_top = t;
	qsort(q, n, sizeof(*q), queue_order);
	mvprintw((*row)++, 0, "%-6s %7s %4s %12s %12s %8s %10s %7s   (s: order by %s)", "QUEUE",
		 "PID", "NODE", "RECORDS/S", "TAKEN/S", "PENDING", "WAKES/S", "GROUP",
		 t->by_rate ? "id" : "rate");
	for (size_t i = 0; i < n && *row < LINES - 1; i++) {
		const union tool_stats_item *s = q[i];
		mvprintw((*row)++, 0, "%-6u %7u %4d %12.0f %12.0f %8llu %10.0f %7llu", s->it.id,
			 s->it.owner_pid, (int32_t)s->it.node, rate(t, s, ONERING_QC_PUBLISHED),
			 rate(t, s, ONERING_QC_CONSUMED),
			 (unsigned long long)s->it.counter[ONERING_QC_PENDING],
			 rate(t, s, ONERING_QC_WAKES),
			 (unsigned long long)s->it.counter[ONERING_QC_GROUP]);
	}
	free(q);
}

static void show_groups(const struct top *t, int *row)
{
	mvprintw((*row)++, 0, "%-5s %-16s %-7s %7s %12s %8s %10s %10s", "GROUP", "NAME", "POLICY",
		 "MEMBERS", "DELIVERED/S", "BACKLOG", "SPILLED/S", "HANDOFF/S");
	for (size_t i = 0; i < t->cur.n && *row < LINES - 1; i++) {
		const union tool_stats_item *s = &t->cur.items[i];
		char name[ONERING_NAME_MAX + 1];
		if (s->it.what != ONERING_STATS_GROUP)
			continue;
		memcpy(name, s->g.name, ONERING_NAME_MAX);
		name[ONERING_NAME_MAX] = '\0';
		mvprintw((*row)++, 0, "%-5u %-16s %-7s %7u %12.0f %8llu %10.0f %10.0f", s->g.id,
			 name, onering_policy_name(s->g.policy), s->g.members,
			 rate(t, s, ONERING_GC_DELIVERED),
			 (unsigned long long)s->g.counter[ONERING_GC_BACKLOG],
			 rate(t, s, ONERING_GC_SPILLED), rate(t, s, ONERING_GC_HANDOFFS));
	}
}

static void show(const struct top *t, const struct tool_instance *inst)
{
	const union tool_stats_item *b = NULL;
	int row = 0;

	for (size_t i = 0; i < t->cur.n && !b; i++)
		if (t->cur.items[i].it.what == ONERING_STATS_BROKER)
			b = &t->cur.items[i];
	erase();
	mvprintw(row++, 0, "onering top - %s (pid %u): %llu clients, %llu groups   "
		 "q quit, v %s", inst->name, b ? b->it.owner_pid : 0,
		 b ? (unsigned long long)b->it.counter[ONERING_BC_CLIENTS] : 0ull,
		 b ? (unsigned long long)b->it.counter[ONERING_BC_GROUPS] : 0ull,
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
	if (tool_stats_fetch(&inst, &t.prev, err, sizeof(err)) < 0) {
		fprintf(stderr, "onering top: %s\n", err);
		return 1;
	}
	uint64_t prev_ns = tool_now_ns();
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
		if (tool_stats_fetch(&inst, &t.cur, err, sizeof(err)) < 0) {
			status = 1;
			break;
		}
		uint64_t now = tool_now_ns();
		t.seconds = (double)(now - prev_ns) / 1e9;
		show(&t, &inst);
		free(t.prev.items);
		t.prev = t.cur;
		prev_ns = now;
	}
	endwin();
	free(t.prev.items);
	if (status)
		fprintf(stderr, "onering top: %s\n", err);
	return status;
}
