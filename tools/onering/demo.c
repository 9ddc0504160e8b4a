/* SPDX-License-Identifier: MIT */
/*
 * onering demo: a bounded, self-cleaning tour. Starts a private broker,
 * watches a socketpair, a pipe, an eventfd and a timerfd through it, prints
 * events and counters, then stops everything it started.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "shm/atomic.h"
#include "tool.h"
#include "tools/common/child.h"

struct demo_sources {
	int sp[2];
	int pipe[2];
	int efd;
	int tfd;
	ONERING_ATOMIC(int) stop; /* main -> writer; relaxed: a flag, pthread_join orders the rest */
};

/* Makes the sources fire at their own pace while the consumer waits. */
static void *demo_writer(void *arg)
{
	struct demo_sources *s = arg;

	for (unsigned i = 0; !onering_atomic_load(&s->stop, onering_mo_relaxed); i++) {
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

/* oneringd --foreground on dir, ready (its 'R' on fd 3) within 10 s. */
static int start_broker(char *path, char *name, char *dir, pid_t *pid)
{
	static char fg[] = "--foreground", n[] = "--name", sd[] = "--socket-dir",
		    rf[] = "--ready-fd", three[] = "3";
	char *argv[] = {path, fg, n, name, sd, dir, rf, three, NULL};
	int p[2], r;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	r = tool_child_start(argv, NULL, NULL, p[1], pid);
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		return r;
	}
	return tool_child_wait_ready(p[0], 10000);
}

int tool_demo(int argc, char **argv)
{
	char path[PATH_MAX], self[PATH_MAX], dir[] = "/tmp/onering-demo-XXXXXX", name[32], err[512];
	const char *labels[5] = {"", "socketpair", "pipe", "eventfd", "timerfd"};
	long seconds = 5;
	struct demo_sources src = {.sp = {-1, -1}, .pipe = {-1, -1}, .efd = -1, .tfd = -1, .stop = 0};
	struct onering_attach_options ao = {
		.name = name, .socket_dir = dir, .flags = ONERING_ATTACH_NO_RECOVER};
	struct tool_instance inst = {.name = name, .dir = dir}; /* for the counters */
	struct onering *att = NULL;
	struct onering_queue *q = NULL;
	struct onering_sub subs[4];
	pthread_t writer;
	pid_t broker = -1;
	int rc = 1, r;

	static const struct option opts[] = {{"seconds", required_argument, NULL, 's'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	unsigned u;

	while ((r = onering_cli_getopt("onering demo", argc, argv, "h", opts)) != -1) {
		if (r == 's' && tool_parse_uint(optarg, 1, 3600, &u) == 0) {
			seconds = u;
		} else if (r == 's') {
			return onering_cli_bad_value("onering demo", "seconds", optarg,
						     "expected seconds, 1..3600");
		} else if (r == 'h') {
			printf("usage: onering demo [--seconds N]\n"
			       "Starts a private broker, watches a socketpair, a pipe, an eventfd "
			       "and a timerfd through it,\nprints events and counters, then stops "
			       "everything it started.\n");
			return 0;
		} else {
			return 2;
		}
	}
	if (optind < argc)
		return onering_cli_extra("onering demo", argv[optind]);
	if (tool_self_dir(self, sizeof(self)) < 0 ||
	    tool_find_program(self, "ONERINGD", "oneringd", "broker", ONERINGD_DEFAULT_PATH, path,
			      sizeof(path)) < 0) {
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

	signal(SIGINT, tool_on_signal);
	uint64_t t0 = tool_now_ns(), end = t0 + (uint64_t)seconds * 1000000000ull, next_stat = t0 + 1000000000ull;
	unsigned long per_kind[5] = {0};
	while (!tool_stop_requested && tool_now_ns() < end) {
		struct onering_event evs[16];
		int n = onering_wait(q, evs, 1, 16, 100 * 1000 * 1000);
		if (n < 0) {
			fprintf(stderr, "onering demo: %s\n", onering_strerror(n));
			break;
		}
		for (int i = 0; i < n; i++) {
			unsigned k = (unsigned)evs[i].cookie;
			char buf[256];
			tool_print_event(&evs[i], t0, k < 5 ? labels[k] : "?");
			if (k < 5)
				per_kind[k]++;
			/* Consume what made it ready, so the next edge is a new one. */
			if (k >= 1 && k <= 4)
				while (read(watch[k - 1], buf, sizeof(buf)) > 0)
					;
		}
		if (tool_now_ns() >= next_stat) {
			struct onering_metrics m;
			next_stat += 1000000000ull;
			if (tool_counters_fetch(&inst, &m, err, sizeof(err)) == 0) {
				for (unsigned i = 0; i < m.nr_objects; i++) {
					const struct onering_metrics_object *o = &m.objects[i];
					if (o->what != ONERING_STATS_QUEUE)
						continue;
					printf("   -- queue %u: published %llu, consumed %llu, "
					       "wakes %llu, coalesced %llu\n", o->id,
					       (unsigned long long)tool_value(o, "published"),
					       (unsigned long long)tool_value(o, "consumed"),
					       (unsigned long long)tool_value(o, "wakes"),
					       (unsigned long long)tool_value(o, "coalesced"));
				}
				onering_metrics_free(&m);
			}
		}
	}
	onering_atomic_store(&src.stop, 1, onering_mo_relaxed);
	pthread_join(writer, NULL);
	printf("== events: socketpair %lu, pipe %lu, eventfd %lu, timerfd %lu\n", per_kind[1],
	       per_kind[2], per_kind[3], per_kind[4]);
	struct onering_metrics m;
	if (tool_counters_fetch(&inst, &m, err, sizeof(err)) == 0) {
		printf("== broker counters\n");
		tool_stats_print(&m, NULL, stdout);
		onering_metrics_free(&m);
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
		tool_child_stop(broker);
		printf("== broker %d stopped\n", (int)broker);
	}
	rmdir(dir);
	return rc;
}
