/* SPDX-License-Identifier: MIT */
/*
 * onering: the operator command.
 *
 *   onering demo [--seconds N]          a bounded, self-cleaning tour
 *   onering stat [--name N] [--json]    broker, poller and queue counters
 *   onering tail [--name N] SOURCES     print events as they come
 *   onering tune [--name N] --group G SETTING...   change a group at run time
 *   onering topo [--synthetic D] [--json]         the placement plan
 *   onering version
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "client/onering.h"
#include "numa/placement.h"
#include "numa/plan.h"
#include "shm/proto.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void events_str(uint32_t ev, char *buf, size_t len)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {{EPOLLIN, "IN"},   {EPOLLOUT, "OUT"},     {EPOLLPRI, "PRI"},
		     {EPOLLERR, "ERR"}, {EPOLLHUP, "HUP"},     {EPOLLRDHUP, "RDHUP"}};
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((ev & names[i].bit) && used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "|" : "",
						 names[i].name);
	if (!used)
		snprintf(buf, len, "0x%x", ev);
}

static void print_event(const struct onering_event *e, uint64_t t0, const char *label)
{
	char ev[64];

	events_str(e->events, ev, sizeof(ev));
	printf("%10.6f  %-10s sub %u/%u  %-12s%s%s%s  cookie %llu\n",
	       (double)(int64_t)(e->timestamp_ns - t0) / 1e9, label ? label : "fd", e->sub_id, e->sub_gen,
	       ev, (e->flags & ONERING_EVF_COALESCED) ? " coalesced" : "",
	       (e->flags & ONERING_EVF_LEVEL) ? " level" : "",
	       (e->flags & ONERING_EVF_REDELIVERED) ? " redelivered" : "",
	       (unsigned long long)e->cookie);
}

/* ---- stat ------------------------------------------------------------------ */

static const char *const broker_ctr_names[ONERING_BC_NR] = {
	"clients", "attaches", "bad_messages", "extra_fds", "denied", "dropped", "posts_refused",
	"hello_timeouts", "pending_limited", "fd_limit", "quota_refusals", "groups"};
static const char *const poller_ctr_names[ONERING_PC_NR] = {
	"loops", "events", "published", "sleeps", "queues", "cpu", "kicks", "syscall_errors"};
static const char *const queue_ctr_names[ONERING_QC_NR] = {
	"published", "consumed", "coalesced", "pending", "deferred",
	"wakes",     "requests", "bad_requests", "subs", "capacity", "group", "redelivered"};
static const char *const port_ctr_names[ONERING_PORTC_NR] = {
	"ipackets", "ibytes", "imissed", "ierrors", "rx_nombuf", "rx_queues"};
static const char *const rxq_ctr_names[ONERING_RXQC_NR] = {
	"received", "delivered", "dropped", "bytes", "truncated", "group"};
static const char *const group_ctr_names[ONERING_GC_NR] = {
	"delivered", "backlog", "backlogged", "spilled", "redelivered", "running", "handoffs"};

/* A stats item: which one, by .what (the same place in both). */
union stat_item {
	struct onering_msg_stats_item it;
	struct onering_msg_group_stats g;
};

struct stat_items {
	union stat_item *items;
	size_t n;
};

/* Connect to instance name (socket directory dir, or the default) and say HELLO. */
static int broker_connect(const char *name, const char *dir, int *sock, char *err,
			  size_t err_size)
{
	char path[256];
	int r = onering_socket_path(name, dir, path, sizeof(path));

	if (r < 0) {
		snprintf(err, err_size, "bad instance name \"%s\"", name);
		return r;
	}
	return onering_proto_connect(path, name, -1, sock, NULL, err, err_size);
}

/* Fetch every STATS_ITEM of a broker. */
static int fetch_stats(const char *name, const char *dir, struct stat_items *out, char *err,
		       size_t err_size)
{
	struct onering_msg m;
	int sock, r;

	out->items = NULL;
	out->n = 0;
	r = broker_connect(name, dir, &sock, err, err_size);
	if (r < 0)
		return r;
	onering_msg_init(&m, ONERING_MSG_STATS, 2);
	r = onering_msg_send(sock, &m, NULL, 0, 0);
	while (r == 0) {
		r = onering_msg_recv_timeout(sock, &m, NULL, 0, NULL, 5000);
		if (r < 0)
			break;
		if (m.type == ONERING_MSG_STATS_END) {
			r = m.status;
			break;
		}
		if (m.type != ONERING_MSG_STATS_ITEM)
			continue;
		void *t = realloc(out->items, (out->n + 1) * sizeof(*out->items));
		if (!t) {
			r = -ENOMEM;
			break;
		}
		out->items = t;
		memcpy(&out->items[out->n++], m.u.raw, sizeof(union stat_item));
	}
	close(sock);
	if (r < 0)
		snprintf(err, err_size, "reading stats of \"%s\": %s", name, strerror(-r));
	return r;
}

static json_t *stats_json(const struct stat_items *s)
{
	json_t *root = json_object(), *pollers = json_array(), *queues = json_array();
	json_t *groups = json_array(), *ports = json_array(), *rxqs = json_array();

	for (size_t i = 0; i < s->n; i++) {
		const struct onering_msg_stats_item *it = &s->items[i].it;
		json_t *o = json_object();
		if (it->what == ONERING_STATS_GROUP) {
			const struct onering_msg_group_stats *g = &s->items[i].g;
			char name[ONERING_NAME_MAX + 1] = {0};
			memcpy(name, g->name, ONERING_NAME_MAX);
			json_object_set_new(o, "group", json_integer(g->id));
			json_object_set_new(o, "name", json_string(name));
			json_object_set_new(o, "policy", json_string(onering_policy_name(g->policy)));
			json_object_set_new(o, "numa", json_string(onering_numa_name(g->numa)));
			json_object_set_new(o, "spill_pct", json_integer(g->spill_pct));
			json_object_set_new(o, "wake", json_string(onering_wake_name(g->wake)));
			json_object_set_new(o, "max_running", json_integer(g->max_running));
			json_object_set_new(o, "backlog_max", json_integer(g->backlog_max));
			json_object_set_new(o, "members", json_integer(g->members));
			json_object_set_new(o, "sleeping", json_integer(g->sleeping));
			for (unsigned c = 0; c < ONERING_GC_NR; c++)
				json_object_set_new(o, group_ctr_names[c],
						    json_integer((json_int_t)g->counter[c]));
			json_array_append_new(groups, o);
			continue;
		}
		const char *const *names = NULL;
		unsigned nr = 0;
		switch (it->what) {
		case ONERING_STATS_BROKER:
			names = broker_ctr_names;
			nr = ONERING_BC_NR;
			json_object_set_new(o, "pid", json_integer(it->owner_pid));
			json_object_set_new(root, "broker", o);
			break;
		case ONERING_STATS_POLLER:
			names = poller_ctr_names;
			nr = ONERING_PC_NR;
			json_object_set_new(o, "poller", json_integer(it->id));
			json_object_set_new(o, "node", json_integer((int32_t)it->node));
			json_array_append_new(pollers, o);
			break;
		case ONERING_STATS_PORT:
			names = port_ctr_names;
			nr = ONERING_PORTC_NR;
			json_object_set_new(o, "port", json_integer(it->id));
			json_object_set_new(o, "node", json_integer((int32_t)it->node));
			json_array_append_new(ports, o);
			break;
		case ONERING_STATS_RXQ:
			names = rxq_ctr_names;
			nr = ONERING_RXQC_NR;
			json_object_set_new(o, "port", json_integer(it->id >> 16));
			json_object_set_new(o, "queue", json_integer(it->id & 0xffff));
			json_object_set_new(o, "poller", json_integer(it->owner_pid));
			json_array_append_new(rxqs, o);
			break;
		case ONERING_STATS_QUEUE:
			names = queue_ctr_names;
			nr = ONERING_QC_NR;
			json_object_set_new(o, "queue", json_integer(it->id));
			json_object_set_new(o, "pid", json_integer(it->owner_pid));
			json_object_set_new(o, "node", json_integer((int32_t)it->node));
			json_array_append_new(queues, o);
			break;
		default:
			json_decref(o);
			continue;
		}
		for (unsigned c = 0; c < nr; c++)
			json_object_set_new(o, names[c], json_integer((json_int_t)it->counter[c]));
	}
	json_object_set_new(root, "pollers", pollers);
	json_object_set_new(root, "queues", queues);
	json_object_set_new(root, "groups", groups);
	json_object_set_new(root, "ports", ports);
	json_object_set_new(root, "rx_queues", rxqs);
	return root;
}

static void stats_text(const struct stat_items *s, FILE *out)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct onering_msg_stats_item *it = &s->items[i].it;
		const uint64_t *c = it->counter;
		if (it->what == ONERING_STATS_BROKER)
			fprintf(out,
				"broker pid %u: %llu clients attached, %llu attaches, %llu bad "
				"messages, %llu extra fds closed, %llu denied, %llu dropped, %llu "
				"posts refused\n"
				"  %llu groups; %llu connections without HELLO in time, %llu closed "
				"over the pending limit, %llu times at the fd limit, %llu quota "
				"refusals\n",
				it->owner_pid, (unsigned long long)c[ONERING_BC_CLIENTS],
				(unsigned long long)c[ONERING_BC_ATTACHES],
				(unsigned long long)c[ONERING_BC_BAD_MESSAGES],
				(unsigned long long)c[ONERING_BC_EXTRA_FDS],
				(unsigned long long)c[ONERING_BC_DENIED],
				(unsigned long long)c[ONERING_BC_DROPPED],
				(unsigned long long)c[ONERING_BC_POSTS_REFUSED],
				(unsigned long long)c[ONERING_BC_GROUPS],
				(unsigned long long)c[ONERING_BC_HELLO_TIMEOUTS],
				(unsigned long long)c[ONERING_BC_PENDING_LIMITED],
				(unsigned long long)c[ONERING_BC_FD_LIMIT],
				(unsigned long long)c[ONERING_BC_QUOTA]);
	}
	fprintf(out, "\n%-7s %4s %5s %12s %12s %12s %10s %8s %7s\n", "poller", "node", "cpu",
		"loops", "events", "published", "sleeps", "kicks", "queues");
	for (size_t i = 0; i < s->n; i++) {
		const struct onering_msg_stats_item *it = &s->items[i].it;
		const uint64_t *c = it->counter;
		if (it->what == ONERING_STATS_POLLER)
			fprintf(out, "%-7u %4d %5llu %12llu %12llu %12llu %10llu %8llu %7llu\n", it->id,
				(int32_t)it->node,
				(unsigned long long)c[ONERING_PC_CPU],
				(unsigned long long)c[ONERING_PC_LOOPS],
				(unsigned long long)c[ONERING_PC_EVENTS],
				(unsigned long long)c[ONERING_PC_PUBLISHED],
				(unsigned long long)c[ONERING_PC_SLEEPS],
				(unsigned long long)c[ONERING_PC_KICKS],
				(unsigned long long)c[ONERING_PC_QUEUES]);
	}
	fprintf(out, "\n%-6s %7s %4s %5s %6s %11s %11s %9s %8s %9s %7s %9s %5s\n", "queue", "pid",
		"node", "group", "slots", "published", "consumed", "coalesced", "pending", "deferred",
		"wakes", "requests", "subs");
	for (size_t i = 0; i < s->n; i++) {
		const struct onering_msg_stats_item *it = &s->items[i].it;
		const uint64_t *c = it->counter;
		if (it->what == ONERING_STATS_QUEUE)
			fprintf(out, "%-6u %7u %4d %5llu %6llu %11llu %11llu %9llu %8llu %9llu %7llu %9llu "
				"%5llu\n",
				it->id, it->owner_pid, (int32_t)it->node,
				(unsigned long long)c[ONERING_QC_GROUP],
				(unsigned long long)c[ONERING_QC_CAPACITY],
				(unsigned long long)c[ONERING_QC_PUBLISHED],
				(unsigned long long)c[ONERING_QC_CONSUMED],
				(unsigned long long)c[ONERING_QC_COALESCED],
				(unsigned long long)c[ONERING_QC_PENDING],
				(unsigned long long)c[ONERING_QC_DEFERRED],
				(unsigned long long)c[ONERING_QC_WAKES],
				(unsigned long long)c[ONERING_QC_REQUESTS],
				(unsigned long long)c[ONERING_QC_SUBS]);
	}
	fprintf(out, "\n%-5s %-16s %-7s %-10s %-11s %7s %7s %7s %11s %8s %8s %11s %9s\n", "group",
		"name", "policy", "numa", "wake", "members", "running", "max_run", "delivered",
		"backlog", "spilled", "redelivered", "handoffs");
	for (size_t i = 0; i < s->n; i++) {
		const struct onering_msg_group_stats *g = &s->items[i].g;
		const uint64_t *c = g->counter;
		char numa[16], name[ONERING_NAME_MAX + 1] = {0};
		if (g->what != ONERING_STATS_GROUP)
			continue;
		memcpy(name, g->name, ONERING_NAME_MAX);
		if (g->numa == ONERING_NUMA_SPILL)
			snprintf(numa, sizeof(numa), "spill:%u", g->spill_pct);
		else
			snprintf(numa, sizeof(numa), "%s", onering_numa_name(g->numa));
		fprintf(out, "%-5u %-16s %-7s %-10s %-11s %7u %7llu %7u %11llu %8llu %8llu %11llu %9llu\n",
			g->id, name, onering_policy_name(g->policy), numa, onering_wake_name(g->wake),
			g->members, (unsigned long long)c[ONERING_GC_RUNNING], g->max_running,
			(unsigned long long)c[ONERING_GC_DELIVERED],
			(unsigned long long)c[ONERING_GC_BACKLOG],
			(unsigned long long)c[ONERING_GC_SPILLED],
			(unsigned long long)c[ONERING_GC_REDELIVERED],
			(unsigned long long)c[ONERING_GC_HANDOFFS]);
	}
}

/* Ports and rx queues, when the broker has any. */
static void stats_text_nic(const struct stat_items *s, FILE *out)
{
	bool header = false;

	for (size_t i = 0; i < s->n; i++) {
		const struct onering_msg_stats_item *it = &s->items[i].it;
		const uint64_t *c = it->counter;
		if (it->what != ONERING_STATS_PORT)
			continue;
		if (!header)
			fprintf(out, "\n%-5s %4s %4s %12s %14s %10s %8s %10s\n", "port", "node", "rxqs",
				"nic rx", "bytes", "missed", "errors", "no mbuf");
		header = true;
		fprintf(out, "%-5u %4d %4llu %12llu %14llu %10llu %8llu %10llu\n", it->id,
			(int32_t)it->node, (unsigned long long)c[ONERING_PORTC_RXQS],
			(unsigned long long)c[ONERING_PORTC_IPACKETS],
			(unsigned long long)c[ONERING_PORTC_IBYTES],
			(unsigned long long)c[ONERING_PORTC_IMISSED],
			(unsigned long long)c[ONERING_PORTC_IERRORS],
			(unsigned long long)c[ONERING_PORTC_NOMBUF]);
	}
	header = false;
	for (size_t i = 0; i < s->n; i++) {
		const struct onering_msg_stats_item *it = &s->items[i].it;
		const uint64_t *c = it->counter;
		if (it->what != ONERING_STATS_RXQ)
			continue;
		if (!header)
			fprintf(out, "\n%-9s %6s %5s %12s %12s %10s %14s %10s\n", "rx queue", "poller",
				"group", "received", "delivered", "dropped", "bytes", "truncated");
		header = true;
		char name[16];
		snprintf(name, sizeof(name), "%u/%u", it->id >> 16, it->id & 0xffff);
		fprintf(out, "%-9s %6u %5llu %12llu %12llu %10llu %14llu %10llu\n", name,
			it->owner_pid, (unsigned long long)c[ONERING_RXQC_GROUP],
			(unsigned long long)c[ONERING_RXQC_RECEIVED],
			(unsigned long long)c[ONERING_RXQC_DELIVERED],
			(unsigned long long)c[ONERING_RXQC_DROPPED],
			(unsigned long long)c[ONERING_RXQC_BYTES],
			(unsigned long long)c[ONERING_RXQC_TRUNCATED]);
	}
}

/* ---- tune ------------------------------------------------------------------ */

static int cmd_tune(int argc, char **argv)
{
	static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
					     {"socket-dir", required_argument, NULL, 'd'},
					     {"group", required_argument, NULL, 'g'},
					     {"create", no_argument, NULL, 'c'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *name = getenv("ONERING_NAME"), *dir = NULL, *group = NULL;
	bool create = false;
	struct onering_msg m, rep;
	char err[512];
	int opt, sock, r;

	if (!name)
		name = "default";
	memset(&m, 0, sizeof(m));
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			name = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'g':
			group = optarg;
			break;
		case 'c':
			create = true;
			break;
		case 'h':
			printf("usage: onering tune [--name NAME] [--socket-dir DIR] --group GROUP "
			       "[--create] SETTING...\n"
			       "  policy=rr|least|sticky|lifo|local\n"
			       "  numa=strict|interleave|spill:P     (P: percent full, 1..100)\n"
			       "  wake=lifo|fifo|rr|local-first\n"
			       "  max_running=N                       (lifo; 0 = the CPU count)\n"
			       "  backlog=N                           (records held per poller)\n"
			       "Without settings it prints the group's current ones. Clients stay\n"
			       "attached; every decision the broker makes after this command returns\n"
			       "uses the new settings (records waiting in the group's backlog too).\n"
			       "--create makes the group if it does not exist yet.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!group || !onering_name_valid(group)) {
		fprintf(stderr, "onering tune: --group NAME is required ([A-Za-z0-9_.-]{1,31})\n");
		return 2;
	}
	onering_msg_init(&m, ONERING_MSG_GROUP, 1);
	memcpy(m.u.group.name, group, strlen(group) + 1);
	m.u.group.flags = create ? 0 : ONERING_GROUP_NO_CREATE;
	for (int i = optind; i < argc; i++)
		if (onering_group_setting_parse(&m.u.group, argv[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "onering tune: %s\n", err);
			return 2;
		}
	r = broker_connect(name, dir, &sock, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "onering tune: %s\n", err);
		return 1;
	}
	r = onering_msg_send(sock, &m, NULL, 0, 0);
	if (r == 0)
		r = onering_msg_recv_timeout(sock, &rep, NULL, 0, NULL, 5000);
	close(sock);
	if (r == 0)
		r = rep.status;
	if (r < 0) {
		fprintf(stderr, "onering tune: group \"%s\" on \"%s\": %s\n", group, name,
			r == -ENOENT ? "no such group (use --create to make it)"
			: r == -EINVAL ? "the broker refused these settings"
				       : strerror(-r));
		return 1;
	}
	const struct onering_msg_group *g = &rep.u.group;
	printf("group %u \"%s\": policy=%s numa=%s", g->group_id, group,
	       onering_policy_name(g->policy), onering_numa_name(g->numa));
	if (g->numa == ONERING_NUMA_SPILL)
		printf(":%u", g->spill_pct);
	printf(" wake=%s max_running=%u backlog=%u members=%u\n", onering_wake_name(g->wake),
	       g->max_running, g->backlog_max, g->members);
	return 0;
}

static int cmd_stat(int argc, char **argv)
{
	static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
					     {"socket-dir", required_argument, NULL, 'd'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *name = getenv("ONERING_NAME"), *dir = NULL;
	bool json = false;
	struct stat_items s;
	char err[512];
	int opt;

	if (!name)
		name = "default";
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			name = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: onering stat [--name NAME] [--socket-dir DIR] [--json]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (fetch_stats(name, dir, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "onering stat: %s\n", err);
		return 1;
	}
	if (json) {
		json_t *root = stats_json(&s);
		json_dumpf(root, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		fputc('\n', stdout);
		json_decref(root);
	} else {
		stats_text(&s, stdout);
		stats_text_nic(&s, stdout);
	}
	free(s.items);
	return 0;
}

/* ---- tail ------------------------------------------------------------------ */

static int listen_on(const char *spec)
{
	char host[64] = "127.0.0.1";
	const char *colon = strrchr(spec, ':');
	long port;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int one = 1;

	if (colon) {
		snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
		spec = colon + 1;
	}
	port = strtol(spec, NULL, 10);
	if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	sa.sin_port = htons((uint16_t)port);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 128) < 0) {
		int e = -errno;
		close(s);
		return e;
	}
	return s;
}

#define TAIL_LISTENER (1ull << 62)
#define TAIL_CONN (1ull << 61)

/* A packet or a user event, as tail prints it. */
static void print_group_record(const struct onering_queue *q, const struct onering_event *e,
			       uint64_t t0)
{
	double t = (double)(int64_t)(e->timestamp_ns - t0) / 1e9;

	if (e->kind == ONERING_EV_USER) {
		printf("%10.6f  user       flow %llu  cookie %llu  data", t,
		       (unsigned long long)e->payload.user.flow, (unsigned long long)e->cookie);
		for (int i = 0; i < 24; i++)
			printf("%s%02x", i % 8 ? "" : " ", e->payload.user.data[i]);
		printf("%s\n", (e->flags & ONERING_EVF_REDELIVERED) ? " redelivered" : "");
		return;
	}
	const struct onering_event_nic *n = &e->payload.nic;
	uint32_t len = 0;
	const unsigned char *b = onering_event_packet(q, e, &len);
	printf("%10.6f  port %u/%u  len %u  hash %08x ", t, n->port, n->queue, n->length,
	       n->rss_hash);
	for (uint32_t i = 0; b && i < len && i < 32; i++)
		printf("%s%02x", i % 4 ? "" : " ", b[i]);
	printf("%s\n", len < n->length ? " ..." : "");
}

static int cmd_tail(int argc, char **argv)
{
	static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
					     {"socket-dir", required_argument, NULL, 'd'},
					     {"fd", required_argument, NULL, 'f'},
					     {"stdin", no_argument, NULL, 's'},
					     {"listen", required_argument, NULL, 'l'},
					     {"count", required_argument, NULL, 'c'},
					     {"seconds", required_argument, NULL, 'S'},
					     {"group", required_argument, NULL, 'g'},
					     {"snaplen", required_argument, NULL, 'p'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct onering_attach_options ao = {.name = NULL, .socket_dir = NULL};
	struct onering_queue_options qo = {.group = NULL, .packet_snap = 64};
	struct onering *att;
	struct onering_queue *q;
	struct onering_sub sub;
	int fds[64], nfds = 0, listener = -1, opt, r;
	long count = -1, seconds = -1;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			ao.name = optarg;
			break;
		case 'd':
			ao.socket_dir = optarg;
			break;
		case 'f':
			if (nfds < 64)
				fds[nfds++] = atoi(optarg);
			break;
		case 's':
			if (nfds < 64)
				fds[nfds++] = 0;
			break;
		case 'l':
			listener = listen_on(optarg);
			if (listener < 0) {
				fprintf(stderr, "onering tail: --listen %s: %s\n", optarg,
					strerror(-listener));
				return 1;
			}
			break;
		case 'c':
			count = atol(optarg);
			break;
		case 'S':
			seconds = atol(optarg);
			break;
		case 'g':
			qo.group = optarg;
			break;
		case 'p':
			qo.packet_snap = (uint32_t)atol(optarg);
			break;
		case 'h':
			printf("usage: onering tail [--name NAME] [--socket-dir DIR] [--fd N]... "
			       "[--stdin]\n"
			       "                    [--listen [HOST:]PORT] [--group G [--snaplen B]]\n"
			       "                    [--count N] [--seconds S]\n"
			       "Prints each event as it comes, like tcpdump: time, source, "
			       "subscription, events, flags.\n"
			       "--listen accepts connections and follows them too.\n"
			       "--group joins group G as one more member and prints what it is given:\n"
			       "packets (port, queue, length, hash, first bytes; B bytes kept, default\n"
			       "64) and user events.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (nfds == 0 && listener < 0 && !qo.group) {
		fprintf(stderr, "onering tail: nothing to watch: give --fd N, --stdin, --listen PORT "
			"or --group G\n");
		return 2;
	}
	r = onering_attach_opts(&ao, &att);
	if (r < 0) {
		fprintf(stderr, "onering tail: %s\n", onering_last_error(NULL));
		return 1;
	}
	if (!qo.group)
		qo.packet_snap = 0;
	r = onering_queue_open(att, &qo, &q);
	if (r < 0) {
		fprintf(stderr, "onering tail: %s\n", onering_strerror(r));
		onering_detach(att);
		return 1;
	}
	for (int i = 0; i < nfds; i++) {
		r = onering_add(q, fds[i], EPOLLIN | EPOLLRDHUP, ONERING_EDGE, (uint64_t)fds[i], &sub);
		if (r < 0)
			fprintf(stderr, "onering tail: fd %d: %s\n", fds[i], onering_strerror(r));
	}
	if (listener >= 0 &&
	    (r = onering_add(q, listener, EPOLLIN, ONERING_EDGE, TAIL_LISTENER, &sub)) < 0)
		fprintf(stderr, "onering tail: listener: %s\n", onering_strerror(r));

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	uint64_t t0 = now_ns(), end = seconds >= 0 ? t0 + (uint64_t)seconds * 1000000000ull : 0;
	long printed = 0;
	struct onering_event evs[32];
	while (!stop_requested && (count < 0 || printed < count)) {
		int64_t left = end ? (int64_t)(end - now_ns()) : 200 * 1000 * 1000;
		if (end && left <= 0)
			break;
		int n = onering_wait(q, evs, 1, 32, left > 200000000 ? 200000000 : left);
		if (n < 0) {
			if (n == -EINTR)
				continue;
			fprintf(stderr, "onering tail: %s\n", onering_strerror(n));
			break;
		}
		for (int i = 0; i < n && (count < 0 || printed < count); i++, printed++) {
			const struct onering_event *e = &evs[i];
			char label[32];
			if (e->kind == ONERING_EV_NIC || e->kind == ONERING_EV_USER) {
				print_group_record(q, e, t0);
				continue;
			}
			if (e->cookie == TAIL_LISTENER) {
				print_event(e, t0, "listener");
				int c;
				while ((c = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
					if (onering_add(q, c, EPOLLIN | EPOLLRDHUP, ONERING_EDGE,
							TAIL_CONN | (uint64_t)c, &sub) < 0)
						close(c);
				continue;
			}
			int fd = (int)(e->cookie & 0xffffffff);
			snprintf(label, sizeof(label), "%s %d", (e->cookie & TAIL_CONN) ? "conn" : "fd", fd);
			print_event(e, t0, label);
			if (e->cookie & TAIL_CONN) {
				char buf[4096];
				ssize_t got, total = 0;
				while ((got = read(fd, buf, sizeof(buf))) > 0)
					total += got;
				if (total)
					printf("%22s %zd bytes\n", "", total);
				if (got == 0) {
					onering_del(q, (struct onering_sub){e->sub_id, e->sub_gen});
					close(fd);
				}
			}
		}
		fflush(stdout);
	}
	onering_detach(att);
	if (listener >= 0)
		close(listener);
	return 0;
}

/* ---- topo ------------------------------------------------------------------ */

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

static int cmd_topo(int argc, char **argv)
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

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			synthetic = optarg;
			break;
		case 'c': {
			char buf[256], *save = NULL;
			snprintf(buf, sizeof(buf), "%s", optarg);
			for (char *tok = strtok_r(buf, ",", &save); tok && nr_cores < ONERING_PLAN_MAX_POLLERS;
			     tok = strtok_r(NULL, ",", &save))
				cores[nr_cores++] = atoi(tok);
			break;
		}
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
	struct onering_topo *t;
	struct onering_plan plan;
	char err[1024];
	cpu_set_t allowed;
	if (onering_topo_load(synthetic, &t, err, sizeof(err)) < 0) {
		fprintf(stderr, "onering topo: %s\n", err);
		return 1;
	}
	sched_getaffinity(0, sizeof(allowed), &allowed);
	struct onering_plan_request req = {.cpus = cores,
					   .nr_cpus = nr_cores,
					   .control_cpu = -1,
					   .allowed = onering_topo_is_this_system(t) ? &allowed : NULL};
	if (onering_plan_make(t, &req, &plan, err, sizeof(err)) < 0) {
		fprintf(stderr, "onering topo: %s\n", err);
		onering_topo_free(t);
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

/* ---- demo ------------------------------------------------------------------ */

/* Where oneringd is: $ONERINGD, beside this program in the build tree,
 * beside it when installed, or the configured install path. */
static int find_oneringd(const char *argv0, char *out, size_t len)
{
	char self[PATH_MAX], dir[PATH_MAX];
	const char *env = getenv("ONERINGD");
	ssize_t n;

	if (env && access(env, X_OK) == 0)
		return snprintf(out, len, "%s", env) < (int)len ? 0 : -ENAMETOOLONG;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		snprintf(dir, sizeof(dir), "%s", dirname(self));
		static const char *const rel[] = {"/../broker/oneringd", "/oneringd"};
		for (size_t i = 0; i < 2; i++) {
			if (strlen(dir) + strlen(rel[i]) >= len)
				continue;
			memcpy(out, dir, strlen(dir));
			memcpy(out + strlen(dir), rel[i], strlen(rel[i]) + 1);
			if (access(out, X_OK) == 0)
				return 0;
		}
	}
	(void)argv0;
	snprintf(out, len, "%s", ONERINGD_DEFAULT_PATH);
	return access(out, X_OK) == 0 ? 0 : -ENOENT;
}

struct demo_sources {
	int sp[2];
	int pipe[2];
	int efd;
	int tfd;
	volatile int stop;
};

/* Makes the sources fire at their own pace while the consumer waits. */
static void *demo_writer(void *arg)
{
	struct demo_sources *s = arg;

	for (unsigned i = 0; !s->stop; i++) {
		struct timespec ts = {0, 150 * 1000 * 1000};
		nanosleep(&ts, NULL);
		switch (i % 3) {
		case 0:
			if (write(s->sp[1], "ping", 4) < 0)
				return NULL;
			break;
		case 1:
			if (write(s->pipe[1], "data", 4) < 0)
				return NULL;
			break;
		default:
			eventfd_write(s->efd, 1);
			break;
		}
	}
	return NULL;
}

static int start_broker(const char *path, const char *name, const char *dir, pid_t *pid)
{
	int p[2];
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	*pid = fork();
	if (*pid < 0)
		return -errno;
	if (*pid == 0) {
		dup2(p[1], 3);
		execl(path, "oneringd", "--foreground", "--name", name, "--socket-dir", dir,
		      "--ready-fd", "3", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	struct pollfd pfd = {.fd = p[0], .events = POLLIN};
	int ok = poll(&pfd, 1, 10000) == 1 && read(p[0], &c, 1) == 1;
	close(p[0]);
	return ok ? 0 : -EIO;
}

static void stop_broker(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	for (int i = 0; i < 500; i++) { /* 5 s, then SIGKILL */
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static int cmd_demo(int argc, char **argv)
{
	char path[PATH_MAX], dir[] = "/tmp/onering-demo-XXXXXX", name[32], err[512];
	const char *labels[5] = {"", "socketpair", "pipe", "eventfd", "timerfd"};
	long seconds = 5;
	struct demo_sources src = {.sp = {-1, -1}, .pipe = {-1, -1}, .efd = -1, .tfd = -1, .stop = 0};
	struct onering_attach_options ao;
	struct onering *att = NULL;
	struct onering_queue *q = NULL;
	struct onering_sub subs[4];
	pthread_t writer;
	pid_t broker = -1;
	int rc = 1, r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atol(argv[++i]);
		else {
			printf("usage: onering demo [--seconds N]\n"
			       "Starts a private broker, watches a socketpair, a pipe, an eventfd "
			       "and a timerfd through it,\nprints events and counters, then stops "
			       "everything it started.\n");
			return strcmp(argv[i], "--help") == 0 ? 0 : 2;
		}
	}
	if (find_oneringd(argv[0], path, sizeof(path)) < 0) {
		fprintf(stderr, "onering demo: cannot find oneringd (set $ONERINGD)\n");
		return 1;
	}
	if (!mkdtemp(dir)) {
		perror("onering demo: mkdtemp");
		return 1;
	}
	snprintf(name, sizeof(name), "demo-%d", (int)getpid());
	printf("== starting %s --name %s --socket-dir %s\n", path, name, dir);
	if (start_broker(path, name, dir, &broker) < 0) {
		fprintf(stderr, "onering demo: the broker did not start\n");
		goto out;
	}
	ao.name = name;
	ao.socket_dir = dir;
	if ((r = onering_attach_opts(&ao, &att)) < 0 || (r = onering_queue_open(att, NULL, &q)) < 0) {
		fprintf(stderr, "onering demo: %s\n", onering_last_error(att));
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, src.sp) < 0 ||
	    pipe2(src.pipe, O_NONBLOCK) < 0 || (src.efd = eventfd(0, EFD_NONBLOCK)) < 0 ||
	    (src.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK)) < 0) {
		perror("onering demo: sources");
		goto out;
	}
	int watch[4] = {src.sp[0], src.pipe[0], src.efd, src.tfd};
	for (int i = 0; i < 4; i++) {
		r = onering_add(q, watch[i], EPOLLIN, ONERING_EDGE, (uint64_t)(i + 1), &subs[i]);
		if (r < 0) {
			fprintf(stderr, "onering demo: add %s: %s\n", labels[i + 1], onering_strerror(r));
			goto out;
		}
	}
	struct itimerspec its = {.it_interval = {0, 400 * 1000 * 1000}, .it_value = {0, 400 * 1000 * 1000}};
	timerfd_settime(src.tfd, 0, &its, NULL);
	pthread_create(&writer, NULL, demo_writer, &src);
	printf("== watching a socketpair, a pipe, an eventfd and a timerfd for %ld s\n", seconds);

	signal(SIGINT, on_signal);
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)seconds * 1000000000ull, next_stat = t0 + 1000000000ull;
	unsigned long per_kind[5] = {0};
	while (!stop_requested && now_ns() < end) {
		struct onering_event evs[16];
		int n = onering_wait(q, evs, 1, 16, 100 * 1000 * 1000);
		if (n < 0) {
			fprintf(stderr, "onering demo: %s\n", onering_strerror(n));
			break;
		}
		for (int i = 0; i < n; i++) {
			unsigned k = (unsigned)evs[i].cookie;
			char buf[256];
			print_event(&evs[i], t0, k < 5 ? labels[k] : "?");
			if (k < 5)
				per_kind[k]++;
			/* Consume what made it ready, so the next edge is a new one. */
			if (k >= 1 && k <= 4)
				while (read(watch[k - 1], buf, sizeof(buf)) > 0)
					;
		}
		if (now_ns() >= next_stat) {
			struct stat_items s;
			next_stat += 1000000000ull;
			if (fetch_stats(name, dir, &s, err, sizeof(err)) == 0) {
				for (size_t i = 0; i < s.n; i++)
					if (s.items[i].it.what == ONERING_STATS_QUEUE)
						printf("   -- queue %u: published %llu, consumed %llu, "
						       "wakes %llu, coalesced %llu\n",
						       s.items[i].it.id,
						       (unsigned long long)s.items[i].it.counter[ONERING_QC_PUBLISHED],
						       (unsigned long long)s.items[i].it.counter[ONERING_QC_CONSUMED],
						       (unsigned long long)s.items[i].it.counter[ONERING_QC_WAKES],
						       (unsigned long long)s.items[i].it.counter[ONERING_QC_COALESCED]);
				free(s.items);
			}
		}
	}
	src.stop = 1;
	pthread_join(writer, NULL);
	printf("== events: socketpair %lu, pipe %lu, eventfd %lu, timerfd %lu\n", per_kind[1],
	       per_kind[2], per_kind[3], per_kind[4]);
	struct stat_items s;
	if (fetch_stats(name, dir, &s, err, sizeof(err)) == 0) {
		printf("== broker counters\n");
		stats_text(&s, stdout);
		free(s.items);
	}
	rc = (per_kind[1] && per_kind[2] && per_kind[3] && per_kind[4]) ? 0 : 1;
	if (rc)
		fprintf(stderr, "onering demo: some source delivered nothing\n");
out:
	onering_detach(att);
	for (int i = 0; i < 2; i++) {
		if (src.sp[i] >= 0)
			close(src.sp[i]);
		if (src.pipe[i] >= 0)
			close(src.pipe[i]);
	}
	if (src.efd >= 0)
		close(src.efd);
	if (src.tfd >= 0)
		close(src.tfd);
	if (broker > 0) {
		stop_broker(broker);
		printf("== broker %d stopped\n", (int)broker);
	}
	rmdir(dir);
	return rc;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "help";

	if (strcmp(cmd, "demo") == 0)
		return cmd_demo(argc - 1, argv + 1);
	if (strcmp(cmd, "stat") == 0)
		return cmd_stat(argc - 1, argv + 1);
	if (strcmp(cmd, "tail") == 0)
		return cmd_tail(argc - 1, argv + 1);
	if (strcmp(cmd, "topo") == 0)
		return cmd_topo(argc - 1, argv + 1);
	if (strcmp(cmd, "tune") == 0)
		return cmd_tune(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("onering %s (shared-memory ABI %u.%u, control protocol %u)\n",
		       ONERING_PKG_VERSION, ONERING_ABI_MAJOR, ONERING_ABI_MINOR,
		       ONERING_PROTO_VERSION);
		return 0;
	}
	printf("usage: onering COMMAND [options]\n"
	       "  demo      start a private broker, watch four kinds of fd, print events; bounded\n"
	       "  stat      counters of a running broker (--json)\n"
	       "  tail      print events of given fds or a listening port as they come\n"
	       "  topo      NUMA nodes and the placement plan (--synthetic DESC, --json)\n"
	       "  tune      change a group's balancing at run time (policy=, numa=, wake=, ...)\n"
	       "  version\n"
	       "Each command takes --help.\n");
	return strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ? 0 : 2;
}
