/* SPDX-License-Identifier: MIT */
/*
 * peer_idle.c: idle peers "onering" (oneringd's default idle strategy),
 * "onering-overprov" (--idle overprovisioned), "onering-busy" (--idle busy)
 * - Q private queues, the first waited on with onering_wait() - and
 * "epoll-block": Q eventfds in one epoll set, a blocking epoll_wait().
 */
#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "client/onering.h"
#include "tools/bench/peers.h"

struct idle_onering {
	struct idle_common c;
	struct onering *att;
	struct onering_queue *q[IDLE_MAX_QUEUES];
};

/* variant: oneringd's --idle value. */
static int idle_onering_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self,
			      void *state)
{
	struct idle_onering *s = state;
	char cpu[16];
	int rc;

	snprintf(cpu, sizeof(cpu), "%d", s->c.broker_cpu);
	const char *extra[] = { "--cores", cpu, "--control-core", cpu, "--idle",
				(const char *)self->variant, "--max-queues", "4096", NULL };
	if ((rc = bench_onering_open(ctx, &s->c.broker, NULL, extra, NULL, &s->att, NULL)) < 0)
		return rc;
	for (unsigned i = 0; i < s->c.queues && i < IDLE_MAX_QUEUES; i++) {
		struct onering_queue_options o = { .capacity = 64, .sq_capacity = 64 };
		if ((rc = onering_queue_open(s->att, &o, &s->q[i])) < 0)
			return bench_fail(rc, "onering_queue_open %u: %s", i, onering_strerror(rc));
	}
	return 0;
}

/* consume()'s items: the deadline; what is left of it, ns (0: past). */
static int64_t idle_left_ns(const void *items)
{
	uint64_t deadline = *(const uint64_t *)items, now = bench_now_ns();

	return now < deadline ? (int64_t)(deadline - now) : 0;
}

static int idle_onering_consume(void *state, unsigned thread_idx BENCH_UNUSED, void *items,
				unsigned max_count BENCH_UNUSED)
{
	struct idle_onering *s = state;
	struct onering_event ev;
	int64_t left = idle_left_ns(items);
	int n = left ? onering_wait(s->q[0], &ev, 1, 1, left) : 0;

	return n == -EINTR ? 0 : n;
}

static void idle_onering_teardown(struct bench_ctx *ctx, void *state)
{
	struct idle_onering *s = state;

	for (unsigned i = 0; i < IDLE_MAX_QUEUES; i++)
		if (s->q[i])
			onering_queue_close(s->q[i]);
	bench_onering_close(ctx, &s->c.broker, &s->att, NULL);
}

#define ONERING_IDLE_PEER(var, name, idle, text)                                                \
	BENCH_PEER(var, name, text, NULL, struct idle_onering, idle, idle_onering_setup, NULL,  \
		   idle_onering_consume, NULL, idle_onering_teardown)
ONERING_IDLE_PEER(bench_peer_idle_onering, "onering", "backoff",
		  "oneringd's default idle strategy (backoff), onering_wait()");
ONERING_IDLE_PEER(bench_peer_idle_onering_overprov, "onering-overprov", "overprovisioned",
		  "oneringd --idle overprovisioned, onering_wait()");
ONERING_IDLE_PEER(bench_peer_idle_onering_busy, "onering-busy", "busy",
		  "oneringd --idle busy (a polling core: its cost per loop), onering_wait()");

struct idle_epoll {
	struct idle_common c;
	int epfd;
	int fd[IDLE_MAX_QUEUES];
};

static int idle_epoll_setup(struct bench_ctx *ctx BENCH_UNUSED,
			    const struct bench_peer_ops *self BENCH_UNUSED, void *state)
{
	struct idle_epoll *s = state;

	if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	for (unsigned i = 0; i < s->c.queues && i < IDLE_MAX_QUEUES; i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = i };
		if ((s->fd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
		    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->fd[i], &ev) < 0)
			return bench_fail(-errno, "eventfd %u in epoll: %m", i);
	}
	return 0;
}

static int idle_epoll_consume(void *state, unsigned thread_idx BENCH_UNUSED, void *items,
			      unsigned max_count BENCH_UNUSED)
{
	struct idle_epoll *s = state;
	struct epoll_event ev;
	int64_t left = idle_left_ns(items);
	int n = left ? epoll_wait(s->epfd, &ev, 1, (int)(left / 1000000) + 1) : 0;

	return n < 0 ? (errno == EINTR ? 0 : -errno) : n;
}

static void idle_epoll_teardown(struct bench_ctx *ctx BENCH_UNUSED, void *state)
{
	struct idle_epoll *s = state;

	for (unsigned i = 0; i < IDLE_MAX_QUEUES; i++)
		if (s->fd[i] > 0)
			close(s->fd[i]);
	if (s->epfd > 0)
		close(s->epfd);
}

BENCH_PEER(bench_peer_idle_epoll, "epoll-block", "Q eventfds in one epoll set, a blocking "
	   "epoll_wait()", NULL, struct idle_epoll, 0, idle_epoll_setup, NULL, idle_epoll_consume,
	   NULL, idle_epoll_teardown);
