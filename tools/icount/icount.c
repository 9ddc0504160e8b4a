/* SPDX-License-Identifier: MIT */
/*
 * onering-icount ONERINGD MODE [ROUNDS]: a fixed consume workload, to be run
 * under callgrind for instructions per record (docs/benchmarks.md,
 * Instructions per event; onering-bench icount runs it).
 *
 * It starts ONERINGD (--foreground, its own name and socket directory,
 * --group g:policy=rr, --cores 1), attaches, and opens two queues: a member
 * of group g and a private queue with 256 eventfds subscribed (EDGE). Each
 * round posts 1,000 user events to g and writes every eventfd once, waits
 * until both queues hold them all, then drains them by MODE, 32 records a
 * call:
 *   peek   onering_peek() + onering_advance()
 *   poll   onering_poll() (copy-out)
 *   empty  no draining in the measured calls: 10,000 onering_poll() calls on
 *          each queue with nothing in it (the records are taken by
 *          onering_wait(), which is not counted)
 *   post   the posts are what is counted (--toggle-collect=onering_post_burst:
 *          bursts of 32 user events of 8 bytes, the last of each round 8);
 *          the records are taken by onering_wait()
 *   timers instead of the above: TIMERS timers of the private queue are
 *          armed each round at absolute expiries 10 s ahead in a shuffled
 *          order (each round re-arms them, so the broker's heap also sees
 *          stale entries and compacts), then a sentinel timer armed in the
 *          past; its record says the broker applied the round. Count the
 *          broker's side (oneringd under callgrind through a wrapper given
 *          as ONERINGD, --toggle-collect=submit_poll); prints "arms N"
 * and prints what the counted calls did. The broker is stopped by its pid
 * at the end. Count with, e.g.:
 *   valgrind --tool=callgrind --callgrind-out-file=cg.peek \
 *     --toggle-collect=onering_peek --toggle-collect=onering_advance \
 *     build/tools/icount/onering-icount build/broker/oneringd peek
 *   callgrind_annotate cg.peek | head
 * (poll: --toggle-collect=onering_poll; empty: the same with MODE empty).
 * The broker runs natively (callgrind does not follow the exec).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "client/onering.h"
#include "tools/common/child.h"

#define POSTS 1000u
#define FDS 256u
#define BATCH 32u
#define EMPTY_CALLS 10000u
#define TIMERS 4096u

static pid_t broker_pid = -1;

static void stop_broker(void)
{
	if (broker_pid > 0)
		tool_child_stop(broker_pid);
	broker_pid = -1;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "onering-icount: %s: %s\n", what, onering_strerror(err));
	stop_broker();
	exit(1);
}

/* Start oneringd (its log to dir/oneringd.log) and wait (bounded: 10 s)
 * for its ready byte. */
static int start_broker(const char *path, const char *dir, const char *name)
{
	static const char *const args[] = {"--foreground", "--ready-fd", "3", "--no-hugepages",
					   "--cores", "1", "--group", "g:policy=rr"};
	char *argv[16], log[256];
	unsigned argc = 0;
	int p[2];

	argv[argc++] = (char *)(uintptr_t)path;
	argv[argc++] = (char *)(uintptr_t)"--name";
	argv[argc++] = (char *)(uintptr_t)name;
	argv[argc++] = (char *)(uintptr_t)"--socket-dir";
	argv[argc++] = (char *)(uintptr_t)dir;
	for (unsigned i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		argv[argc++] = (char *)(uintptr_t)args[i];
	argv[argc] = NULL;
	snprintf(log, sizeof(log), "%s/oneringd.log", dir);
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	int r = tool_child_start(argv, log, NULL, p[1], &broker_pid);
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		return r;
	}
	return tool_child_wait_ready(p[0], 10000);
}

/* Wait (bounded: 10 s) until q holds n records. */
static void wait_pending(struct onering_queue *q, int n)
{
	for (int i = 0; i < 10000; i++) {
		int k = onering_pending(q);
		if (k < 0)
			die("onering_pending", k);
		if (k >= n)
			return;
		usleep(1000);
	}
	die("records did not arrive", -ETIMEDOUT);
}

/* Modes whose records are taken by onering_wait() (not counted). */
static bool wait_mode(const char *mode)
{
	return strcmp(mode, "empty") == 0 || strcmp(mode, "post") == 0;
}

/* Take n records from q by mode; returns how many the counted calls took. */
static unsigned drain(struct onering_queue *q, const char *mode, unsigned n)
{
	struct onering_event evs[BATCH];
	unsigned got = 0;

	while (got < n) {
		int k;
		if (strcmp(mode, "peek") == 0) {
			const struct onering_event *first;
			k = onering_peek(q, &first, BATCH);
			if (k > 0 && onering_advance(q, (unsigned)k) < 0)
				die("onering_advance", -EINVAL);
		} else if (strcmp(mode, "poll") == 0) {
			k = onering_poll(q, evs, BATCH);
		} else {
			k = onering_wait(q, evs, 1, BATCH, 1000000000);
		}
		if (k < 0)
			die(mode, k);
		if (k == 0 && !wait_mode(mode))
			die("a record was not returned", -EAGAIN);
		got += (unsigned)k;
	}
	return wait_mode(mode) ? 0 : got;
}

/* Mode timers: rounds of TIMERS arms through the submission ring, each
 * round ended by a sentinel timer armed in the past (its record: applied). */
static unsigned arm_rounds(struct onering_queue *q, unsigned rounds)
{
	static struct onering_sub subs[TIMERS + 1];
	struct onering_event ev;
	uint64_t seed = 88172645463325252ull, arms = 0;
	struct timespec now;
	int r;

	for (unsigned i = 0; i <= TIMERS; i++)
		if ((r = onering_timer_create(q, i, &subs[i])) < 0)
			die("onering_timer_create", r);
	for (unsigned round = 0; round < rounds; round++) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		uint64_t base = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec +
				10000000000ull;
		for (unsigned i = 0; i < TIMERS; i++) {
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17; /* xorshift */
			uint64_t at = base + seed % 1000000000ull;
			while ((r = onering_timer_arm(q, subs[i], at, 0, ONERING_TIMER_ABS)) == -EAGAIN)
				usleep(50);
			if (r < 0)
				die("onering_timer_arm", r);
			arms++;
		}
		while ((r = onering_timer_arm(q, subs[TIMERS], 1, 0, ONERING_TIMER_ABS)) == -EAGAIN)
			usleep(50);
		if (r < 0)
			die("onering_timer_arm (sentinel)", r);
		arms++;
		if ((r = onering_wait(q, &ev, 1, 1, 10000000000ll)) != 1 || ev.cookie != TIMERS)
			die("the sentinel did not fire", r < 0 ? r : -ETIMEDOUT);
	}
	return (unsigned)arms;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/onering-icount.XXXXXX", name[32];
	struct onering_user_event posts[BATCH];
	struct onering_event ev;
	struct onering *att;
	struct onering_queue *member, *priv;
	int fds[FDS], r;
	unsigned rounds, records = 0, empties = 0;

	if (argc < 3 || argc > 4 ||
	    (strcmp(argv[2], "peek") && strcmp(argv[2], "poll") && strcmp(argv[2], "empty") &&
	     strcmp(argv[2], "post") && strcmp(argv[2], "timers"))) {
		fprintf(stderr, "usage: %s ONERINGD peek|poll|empty|post|timers [ROUNDS]\n", argv[0]);
		return 2;
	}
	const char *mode = argv[2];
	rounds = argc == 4 ? (unsigned)strtoul(argv[3], NULL, 10) : 4;
	if (!mkdtemp(dir))
		die("mkdtemp", -errno);
	snprintf(name, sizeof(name), "icount%d", (int)getpid());
	r = start_broker(argv[1], dir, name);
	if (r < 0)
		die("start oneringd", r);

	struct onering_attach_options ao = {
		.name = name, .socket_dir = dir, .flags = ONERING_ATTACH_NO_RECOVER};
	r = onering_attach_opts(&ao, &att);
	if (r < 0)
		die("attach", r);
	struct onering_queue_options mo = {.capacity = 1024, .sq_capacity = 1024, .group = "g"};
	r = onering_queue_open(att, &mo, &member);
	if (r < 0)
		die("open the member queue", r);
	struct onering_queue_options po = {.capacity = 1024};
	r = onering_queue_open(att, &po, &priv);
	if (r < 0)
		die("open the private queue", r);
	if (strcmp(mode, "timers") == 0) {
		printf("arms %u\n", arm_rounds(priv, rounds));
		onering_detach(att);
		stop_broker();
		tool_remove_dir(dir);
		return 0;
	}
	uint32_t group = onering_queue_group(member);
	for (unsigned i = 0; i < FDS; i++) {
		struct onering_sub sub;
		fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (fds[i] < 0)
			die("eventfd", -errno);
		r = onering_add(priv, fds[i], POLLIN, ONERING_EDGE, i, &sub);
		if (r < 0)
			die("onering_add", r);
	}
	memset(posts, 0, sizeof(posts));
	for (unsigned i = 0; i < BATCH; i++) {
		posts[i].flow = i;
		posts[i].cookie = i;
		posts[i].len = 8;
	}

	for (unsigned round = 0; round < rounds; round++) {
		for (unsigned sent = 0; sent < POSTS;) {
			unsigned n = POSTS - sent < BATCH ? POSTS - sent : BATCH;
			r = onering_post_burst(member, group, posts, n);
			if (r < 0)
				die("onering_post_burst", r);
			if (r == 0)
				usleep(100);
			sent += (unsigned)r;
		}
		for (unsigned i = 0; i < FDS; i++)
			if (eventfd_write(fds[i], 1) < 0)
				die("eventfd_write", -errno);
		wait_pending(member, (int)POSTS);
		wait_pending(priv, (int)FDS);
		records += drain(member, mode, POSTS);
		records += drain(priv, mode, FDS);
		for (unsigned i = 0; i < FDS; i++) {
			eventfd_t v;
			(void)eventfd_read(fds[i], &v);
		}
		if (strcmp(mode, "empty") == 0) {
			/* Give the member's held batch back first (not counted). */
			if (onering_wait(member, &ev, 0, 1, 0) < 0)
				die("onering_wait", -EPROTO);
			for (unsigned i = 0; i < EMPTY_CALLS; i++) {
				if (onering_poll(member, &ev, 1) != 0 || onering_poll(priv, &ev, 1) != 0)
					die("an empty poll returned a record", -EPROTO);
				empties += 2;
			}
		}
	}
	if (strcmp(mode, "empty") == 0)
		printf("empty polls %u\n", empties);
	else if (strcmp(mode, "post") == 0)
		printf("posts %u\n", rounds * POSTS);
	else
		printf("records %u\n", records);
	onering_detach(att);
	for (unsigned i = 0; i < FDS; i++)
		close(fds[i]);
	stop_broker();
	tool_remove_dir(dir);
	return 0;
}
