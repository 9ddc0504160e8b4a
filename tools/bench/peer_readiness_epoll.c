/* SPDX-License-Identifier: MIT */
/*
 * peer_readiness_epoll.c: readiness peers "epoll-busy" (epoll_wait with
 * timeout 0 in a loop) and "epoll-block" (blocking epoll_wait), the N
 * sources in one epoll set, EPOLLET.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "tools/bench/peers.h"

struct epoll_readiness {
	struct readiness_common c;
	int epfd;
	int timeout_ms;
	struct epoll_event evs[READINESS_BATCH];
};

/* variant: the epoll_wait timeout, ms. */
static int readiness_epoll_setup(struct bench_ctx *ctx BENCH_UNUSED,
				 const struct bench_peer_ops *self, void *state)
{
	struct epoll_readiness *s = state;

	s->timeout_ms = (int)self->variant;
	if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	for (unsigned i = 0; i < s->c.n; i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = i };
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->c.rfd[i], &ev) < 0)
			return bench_fail(-errno, "epoll_ctl ADD source %u: %m", i);
	}
	return 0;
}

static int readiness_epoll_consume(void *state, unsigned thread_idx BENCH_UNUSED, void *items,
				   unsigned max_count)
{
	struct epoll_readiness *s = state;
	struct ready_event *out = items;
	int k = epoll_wait(s->epfd, s->evs, (int)max_count, s->timeout_ms);
	if (k < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < k; i++)
		out[i] = (struct ready_event){ .idx = s->evs[i].data.u32 };
	return k;
}

static void readiness_epoll_teardown(struct bench_ctx *ctx BENCH_UNUSED, void *state)
{
	struct epoll_readiness *s = state;

	if (s->epfd > 0)
		close(s->epfd);
}

BENCH_PEER(bench_peer_readiness_epoll_busy, "epoll-busy", "epoll_wait(timeout 0) in a loop, "
	   "EPOLLET", NULL, struct epoll_readiness, 0, readiness_epoll_setup, NULL,
	   readiness_epoll_consume, NULL, readiness_epoll_teardown);
BENCH_PEER(bench_peer_readiness_epoll_block, "epoll-block", "blocking epoll_wait, EPOLLET", NULL,
	   struct epoll_readiness, READINESS_BLOCK_MS, readiness_epoll_setup, NULL,
	   readiness_epoll_consume, NULL, readiness_epoll_teardown);
