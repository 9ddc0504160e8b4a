/* SPDX-License-Identifier: MIT */
/*
 * peer_timers_timerfd.c: timers peer "timerfd": one timerfd per timer in
 * one epoll set (docs/benchmarks.md, Timers).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "tools/bench/peers.h"

struct timerfd_timers {
	struct timers_common c;
	int *tfds;
	int epfd;
	struct epoll_event evs[TIMERS_BATCH];
};

static int timers_timerfd_setup(struct bench_ctx *ctx BENCH_UNUSED,
				const struct bench_peer_ops *self BENCH_UNUSED, void *state)
{
	struct timerfd_timers *s = state;

	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0 || !(s->tfds = malloc(s->c.n * sizeof(*s->tfds))))
		return s->epfd < 0 ? -errno : -ENOMEM;
	for (unsigned i = 0; i < s->c.n; i++)
		s->tfds[i] = -1;
	for (unsigned i = 0; i < s->c.n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
		s->tfds[i] = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (s->tfds[i] < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->tfds[i], &ev) < 0)
			return bench_fail(-errno, "timerfd %u of %u: %m (ulimit -n?)", i, s->c.n);
	}
	return 0;
}

static int timers_timerfd_produce(void *state, unsigned thread_idx BENCH_UNUSED, void *items,
				  unsigned count)
{
	struct timerfd_timers *s = state;
	const uint64_t *expiry = items;

	for (uint32_t i = 0; i < count; i++) {
		struct itimerspec its = { .it_value = bench_ts(expiry ? expiry[i] : 0) };
		if (ONERING_UNLIKELY(timerfd_settime(s->tfds[i], TFD_TIMER_ABSTIME, &its, NULL) < 0))
			return -errno;
	}
	s->c.known_syscalls += count;
	return 0;
}

static int timers_timerfd_consume(void *state, unsigned thread_idx BENCH_UNUSED, void *items,
				  unsigned max_count)
{
	struct timerfd_timers *s = state;
	struct timer_fire *f = items;
	struct timespec tmo = bench_ts(s->c.wait_ns);
	int k = 0;
	int r = epoll_pwait2(s->epfd, s->evs, (int)max_count, &tmo, NULL);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < r; i++) {
		uint32_t idx = s->evs[i].data.u32;
		uint64_t v = 0;
		if (read(s->tfds[idx], &v, sizeof(v)) != (ssize_t)sizeof(v)) {
			if (errno == EAGAIN)
				continue; /* re-armed or disarmed after epoll saw it */
			return -errno;
		}
		f[k++] = (struct timer_fire){ .idx = idx, .expirations = v };
	}
	return k;
}

static int timers_timerfd_control(void *state, unsigned op, void *arg BENCH_UNUSED)
{
	struct timerfd_timers *s = state;

	if (op == TIMERS_OP_LEFT)
		return epoll_wait(s->epfd, s->evs, (int)TIMERS_BATCH, 0);
	return op == TIMERS_OP_SENTINEL ? -ENOTSUP : -EINVAL;
}

static void timers_timerfd_teardown(struct bench_ctx *ctx BENCH_UNUSED, void *state)
{
	struct timerfd_timers *s = state;

	for (unsigned i = 0; s->tfds && i < s->c.n; i++)
		if (s->tfds[i] >= 0)
			close(s->tfds[i]);
	if (s->epfd > 0)
		close(s->epfd);
	free(s->tfds);
}

BENCH_PEER(bench_peer_timers_timerfd, "timerfd", "one timerfd per timer in one epoll set; "
	   "timerfd_settime per arm", NULL, struct timerfd_timers, 0, timers_timerfd_setup,
	   timers_timerfd_produce, timers_timerfd_consume, timers_timerfd_control,
	   timers_timerfd_teardown);
