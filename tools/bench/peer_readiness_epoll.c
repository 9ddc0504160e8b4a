/* SPDX-License-Identifier: MIT */
/*
 * peer_readiness_epoll.c: readiness peers "epoll-busy" (epoll_wait with
 * timeout 0 in a loop) and "epoll-block" (blocking epoll_wait), the N
 * sources in one epoll set, EPOLLET.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "tools/bench/peer_readiness.h"

struct epoll_readiness {
	struct readiness_common c;
	int epfd;
	int timeout_ms;
	struct epoll_event evs[READINESS_BATCH];
};

static int readiness_epoll_open(void *state, int timeout_ms)
{
	struct epoll_readiness *s = state;

	s->timeout_ms = timeout_ms;
	if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	for (unsigned i = 0; i < s->c.n; i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = i };
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->c.rfd[i], &ev) < 0)
			return bench_fail(-errno, "epoll_ctl ADD source %u: %m", i);
	}
	return 0;
}

static int readiness_epoll_busy_setup(struct bench_ctx *ctx, void *state)
{
	(void)ctx;
	return readiness_epoll_open(state, 0);
}

static int readiness_epoll_block_setup(struct bench_ctx *ctx, void *state)
{
	(void)ctx;
	return readiness_epoll_open(state, READINESS_BLOCK_MS);
}

static int readiness_epoll_consume(void *state, unsigned thread_idx, void *items,
				   unsigned max_count)
{
	struct epoll_readiness *s = state;
	struct ready_event *out = items;

	(void)thread_idx;
	int k = epoll_wait(s->epfd, s->evs, (int)max_count, s->timeout_ms);
	if (k < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < k; i++)
		out[i] = (struct ready_event){ .idx = s->evs[i].data.u32 };
	return k;
}

static int readiness_epoll_control(void *state, unsigned op, void *arg)
{
	(void)state;
	(void)arg;
	return op == READINESS_OP_THREAD_INIT || op == READINESS_OP_THREAD_FINI ? 0 : -EINVAL;
}

static void readiness_epoll_teardown(struct bench_ctx *ctx, void *state)
{
	struct epoll_readiness *s = state;

	(void)ctx;
	if (s->epfd > 0)
		close(s->epfd);
}

const struct bench_peer_ops bench_peer_readiness_epoll_busy = {
	.name = "epoll-busy",
	.about = "epoll_wait(timeout 0) in a loop, EPOLLET",
	.state_size = sizeof(struct epoll_readiness),
	.setup = readiness_epoll_busy_setup,
	.consume = readiness_epoll_consume,
	.control = readiness_epoll_control,
	.teardown = readiness_epoll_teardown,
};

const struct bench_peer_ops bench_peer_readiness_epoll_block = {
	.name = "epoll-block",
	.about = "blocking epoll_wait, EPOLLET",
	.state_size = sizeof(struct epoll_readiness),
	.setup = readiness_epoll_block_setup,
	.consume = readiness_epoll_consume,
	.control = readiness_epoll_control,
	.teardown = readiness_epoll_teardown,
};
