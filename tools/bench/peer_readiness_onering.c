/* SPDX-License-Identifier: MIT */
/*
 * peer_readiness_onering.c: readiness peers "onering-busy",
 * "onering-adaptive" and "onering-wait". oneringd is started per
 * measurement with its poller and control thread on CPU B; one queue
 * (--capacity) with the N sources added EDGE, cookie = the source.
 *   onering-busy      oneringd --idle-sleep-ms -1 (the poller never
 *                     sleeps); the consumer busy-polls onering_poll();
 *   onering-adaptive  the broker's default idle policy (spin 100 us, then
 *                     epoll_wait for at most 1 ms); onering_poll() loop;
 *   onering-wait      busy broker; the consumer calls onering_wait(min 1):
 *                     it spins 50 us, then sleeps on the queue's futex.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>

#include "client/onering.h"
#include "tools/bench/peer_readiness.h"

struct onering_readiness {
	struct readiness_common c;
	struct onering *att;
	struct onering_queue *q;
	bool wait;
	struct onering_event evs[READINESS_BATCH];
};

static int readiness_onering_open(struct bench_ctx *ctx, void *state, bool busy, bool wait)
{
	struct onering_readiness *s = state;
	struct onering_queue_options qo = { .capacity = s->c.capacity };
	char cpu[16];
	int rc;

	snprintf(cpu, sizeof(cpu), "%d", s->c.broker_cpu);
	const char *extra[] = { "--cores", cpu, "--control-core", cpu,
				busy ? "--idle-sleep-ms" : NULL, "-1", NULL };
	s->wait = wait;
	if ((rc = bench_onering_open(ctx, &s->c.broker, extra, &qo, &s->att, &s->q)) < 0)
		return rc;
	for (unsigned i = 0; i < s->c.n; i++) {
		struct onering_sub sub;
		if ((rc = onering_add(s->q, s->c.rfd[i], EPOLLIN, ONERING_EDGE, i, &sub)) < 0)
			return bench_fail(rc, "onering_add source %u of %u: %s (%s)", i, s->c.n,
					  onering_strerror(rc), onering_last_error(s->att));
	}
	return 0;
}

static int readiness_onering_busy_setup(struct bench_ctx *ctx, void *state)
{
	return readiness_onering_open(ctx, state, true, false);
}

static int readiness_onering_adaptive_setup(struct bench_ctx *ctx, void *state)
{
	return readiness_onering_open(ctx, state, false, false);
}

static int readiness_onering_wait_setup(struct bench_ctx *ctx, void *state)
{
	return readiness_onering_open(ctx, state, true, true);
}

static int readiness_onering_consume(void *state, unsigned thread_idx, void *items,
				     unsigned max_count)
{
	struct onering_readiness *s = state;
	struct ready_event *out = items;

	(void)thread_idx;
	int k = s->wait ? onering_wait(s->q, s->evs, 1, max_count, READINESS_BLOCK_MS * 1000000ll)
			: onering_poll(s->q, s->evs, max_count);
	if (k == -EINTR)
		return 0;
	for (int i = 0; i < k; i++)
		out[i] = (struct ready_event){ .idx = (uint32_t)s->evs[i].cookie,
					       .broker_ns = s->evs[i].timestamp_ns };
	return k;
}

static int readiness_onering_control(void *state, unsigned op, void *arg)
{
	(void)state;
	(void)arg;
	return op == READINESS_OP_THREAD_INIT || op == READINESS_OP_THREAD_FINI ? 0 : -EINVAL;
}

static void readiness_onering_teardown(struct bench_ctx *ctx, void *state)
{
	struct onering_readiness *s = state;

	bench_onering_close(ctx, &s->c.broker, &s->att, &s->q);
}

#define READINESS_ONERING_PEER(var, peer_name, text, setup_fn)                                  \
	const struct bench_peer_ops var = {                                                     \
		.name = peer_name,                                                              \
		.about = text,                                                                  \
		.state_size = sizeof(struct onering_readiness),                                 \
		.setup = setup_fn,                                                              \
		.consume = readiness_onering_consume,                                           \
		.control = readiness_onering_control,                                           \
		.teardown = readiness_onering_teardown,                                         \
	}

READINESS_ONERING_PEER(bench_peer_readiness_onering_busy, "onering-busy",
		       "busy broker (--idle-sleep-ms -1), onering_poll() loop",
		       readiness_onering_busy_setup);
READINESS_ONERING_PEER(bench_peer_readiness_onering_adaptive, "onering-adaptive",
		       "default idle policy broker, onering_poll() loop",
		       readiness_onering_adaptive_setup);
READINESS_ONERING_PEER(bench_peer_readiness_onering_wait, "onering-wait",
		       "busy broker, onering_wait(): spin 50 us then futex",
		       readiness_onering_wait_setup);
