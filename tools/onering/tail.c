/* SPDX-License-Identifier: MIT */
/*
 * onering tail: print each event of given fds, a listening port's
 * connections or a group as it comes, like tcpdump (time, source,
 * subscription, events, flags). Through libonering, as any consumer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

volatile sig_atomic_t tool_stop_requested;

void tool_on_signal(int sig)
{
	(void)sig;
	tool_stop_requested = 1;
}

uint64_t tool_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int tool_parse_bound(const char *prog, int opt, const char *arg, long *count, long *seconds)
{
	unsigned u;

	if (tool_parse_uint(arg, 1, INT32_MAX, &u) < 0)
		return onering_cli_bad_value(prog, opt == 'c' ? "count" : "seconds", arg,
					     "expected a number, 1 or more");
	*(opt == 'c' ? count : seconds) = u;
	return 0;
}

int tool_wait_until(struct onering_queue *q, struct onering_event *evs, unsigned max,
		    uint64_t end_ns)
{
	int64_t left = end_ns ? (int64_t)(end_ns - tool_now_ns()) : 200 * 1000 * 1000;

	if (end_ns && left <= 0)
		return -ETIMEDOUT;
	int n = onering_wait(q, evs, 1, max, left > 200000000 ? 200000000 : left);
	return n == -EINTR ? 0 : n;
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

void tool_print_event(const struct onering_event *e, uint64_t t0, const char *label)
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

/* A user event's 24 bytes as text: printable up to the first NUL, then only
 * NULs (what `onering notify --payload` posts). */
static bool user_data_is_text(const uint8_t *d, size_t len)
{
	size_t i = 0;

	while (i < len && d[i] >= 0x20 && d[i] < 0x7f && d[i] != '"' && d[i] != '\\')
		i++;
	while (i < len && d[i] == 0)
		i++;
	return i == len;
}

void tool_print_group_record(const struct onering_queue *q, const struct onering_event *e,
			     uint64_t t0)
{
	double t = (double)(int64_t)(e->timestamp_ns - t0) / 1e9;

	if (e->kind == ONERING_EV_USER) {
		const uint8_t *d = e->payload.user.data;
		printf("%10.6f  user       flow %llu  cookie %llu  data", t,
		       (unsigned long long)e->payload.user.flow, (unsigned long long)e->cookie);
		if (user_data_is_text(d, sizeof(e->payload.user.data)))
			printf(" \"%.24s\"", (const char *)d);
		else
			for (int i = 0; i < 24; i++)
				printf("%s%02x", i % 8 ? "" : " ", d[i]);
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

int tool_tail(int argc, char **argv)
{
	static const struct option opts[] = {TOOL_INSTANCE_OPTIONS,
					     {"fd", required_argument, NULL, 'f'},
					     {"stdin", no_argument, NULL, 's'},
					     {"listen", required_argument, NULL, 'l'},
					     {"count", required_argument, NULL, 'c'},
					     {"seconds", required_argument, NULL, 'S'},
					     {"group", required_argument, NULL, 'g'},
					     {"snaplen", required_argument, NULL, 'p'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct tool_instance inst;
	struct onering_queue_options qo = {.group = NULL, .packet_snap = 64};
	struct onering *att;
	struct onering_queue *q;
	struct onering_sub sub;
	int fds[64], nfds = 0, listener = -1, opt, r;
	long count = -1, seconds = -1;
	unsigned u;

	tool_instance_init(&inst);
	while ((opt = onering_cli_getopt("onering tail", argc, argv, "h", opts)) != -1) {
		if (tool_instance_option(&inst, opt, optarg))
			continue;
		switch (opt) {
		case 'f':
		case 's':
			if (nfds == 64)
				return onering_cli_error("onering tail", "at most 64 --fd and --stdin");
			if (opt == 's')
				u = 0;
			else if (tool_parse_uint(optarg, 0, INT32_MAX, &u) < 0)
				return onering_cli_bad_value("onering tail", "fd", optarg,
							     "expected an open file descriptor number");
			fds[nfds++] = (int)u;
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
		case 'S':
			if (tool_parse_bound("onering tail", opt, optarg, &count, &seconds) < 0)
				return ONERING_CLI_USAGE;
			break;
		case 'g':
			qo.group = optarg;
			break;
		case 'p':
			if (tool_parse_uint(optarg, 0, ONERING_PKT_STRIDE_MAX, &u) < 0)
				return onering_cli_bad_value("onering tail", "snaplen", optarg,
							     "expected bytes, 0..2048");
			qo.packet_snap = u;
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
	if (optind < argc)
		return onering_cli_extra("onering tail", argv[optind]);
	if (nfds == 0 && listener < 0 && !qo.group) {
		fprintf(stderr, "onering tail: nothing to watch: give --fd N, --stdin, --listen PORT "
			"or --group G\n");
		return 2;
	}
	struct onering_attach_options ao = {
		.name = inst.name, .socket_dir = inst.dir, .flags = ONERING_ATTACH_NO_RECOVER};
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

	signal(SIGINT, tool_on_signal);
	signal(SIGTERM, tool_on_signal);
	uint64_t t0 = tool_now_ns(), end = seconds >= 0 ? t0 + (uint64_t)seconds * 1000000000ull : 0;
	long printed = 0;
	struct onering_event evs[32];
	while (!tool_stop_requested && (count < 0 || printed < count)) {
		int n = tool_wait_until(q, evs, 32, end);
		if (n == -ETIMEDOUT)
			break;
		if (n < 0) {
			fprintf(stderr, "onering tail: %s\n", onering_strerror(n));
			break;
		}
		for (int i = 0; i < n && (count < 0 || printed < count); i++, printed++) {
			const struct onering_event *e = &evs[i];
			char label[32];
			if (e->kind == ONERING_EV_NIC || e->kind == ONERING_EV_USER) {
				tool_print_group_record(q, e, t0);
				continue;
			}
			if (e->cookie == TAIL_LISTENER) {
				tool_print_event(e, t0, "listener");
				int c;
				while ((c = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
					if (onering_add(q, c, EPOLLIN | EPOLLRDHUP, ONERING_EDGE,
							TAIL_CONN | (uint64_t)c, &sub) < 0)
						close(c);
				continue;
			}
			int fd = (int)(e->cookie & 0xffffffff);
			snprintf(label, sizeof(label), "%s %d", (e->cookie & TAIL_CONN) ? "conn" : "fd", fd);
			tool_print_event(e, t0, label);
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
