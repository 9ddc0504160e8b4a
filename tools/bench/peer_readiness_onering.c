/* SPDX-License-Identifier: MIT */
/*
 * peer_readiness_onering.c: readiness peers "onering-busy",
 * "onering-adaptive", "onering-overprov", "onering-overprov-co50" and
 * "-co100" (with --coalesce-us) and "onering-wait" over a
 * per-measurement oneringd on
 * CPU B (docs/benchmarks.md, Readiness).
 */
#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>

#include "client/onering.h"
#include "tools/bench/peers.h"

struct onering_readiness {
	struct readiness_common c;
	struct onering *att;
	struct onering_queue *q;
	bool wait;
	struct onering_event evs[READINESS_BATCH];
};

enum { BUSY = 1, WAIT = 2, OVERPROV = 4, CO50 = 8, CO100 = 16 }; /* variant bits */

static int readiness_onering_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self,
				   void *state)
{
	struct onering_readiness *s = state;
	bool busy = self->variant & BUSY;
	struct onering_queue_options qo = { .capacity = s->c.capacity };
	char cpu[16];
	int rc;

	snprintf(cpu, sizeof(cpu), "%d", s->c.broker_cpu);
	const char *extra[] = { "--cores", cpu, "--control-core", cpu, "--idle",
				busy ? "busy" : self->variant & OVERPROV ? "overprovisioned" : "backoff",
				"--coalesce-us", self->variant & CO50 ? "50" : self->variant & CO100 ? "100" : "0",
				NULL };
	s->wait = self->variant & WAIT;
	if ((rc = bench_onering_open(ctx, &s->c.broker, NULL, extra, &qo, &s->att, &s->q)) < 0)
		return rc;
	for (unsigned i = 0; i < s->c.n; i++) {
		struct onering_sub sub;
		if ((rc = onering_add(s->q, s->c.rfd[i], EPOLLIN, ONERING_EDGE, i, &sub)) < 0)
			return bench_fail(rc, "onering_add source %u of %u: %s (%s)", i, s->c.n,
					  onering_strerror(rc), onering_last_error(s->att));
	}
	return 0;
}

static int readiness_onering_consume(void *state, unsigned thread_idx BENCH_UNUSED, void *items,
				     unsigned max_count)
{
	struct onering_readiness *s = state;
	struct ready_event *out = items;
	int k = s->wait ? onering_wait(s->q, s->evs, 1, max_count, READINESS_BLOCK_MS * 1000000ll)
			: onering_poll(s->q, s->evs, max_count);
	if (k == -EINTR)
		return 0;
	for (int i = 0; i < k; i++)
		out[i] = (struct ready_event){ .idx = (uint32_t)s->evs[i].cookie,
					       .broker_ns = s->evs[i].timestamp_ns };
	return k;
}

static void readiness_onering_teardown(struct bench_ctx *ctx, void *state)
{
	struct onering_readiness *s = state;

	bench_onering_close(ctx, &s->c.broker, &s->att, &s->q);
}

#define ONERING_HOOKS readiness_onering_setup, NULL, readiness_onering_consume, NULL, \
	readiness_onering_teardown
BENCH_PEER(bench_peer_readiness_onering_busy, "onering-busy", "busy broker (--idle busy), "
	   "onering_poll() loop", NULL, struct onering_readiness, BUSY, ONERING_HOOKS);
BENCH_PEER(bench_peer_readiness_onering_adaptive, "onering-adaptive", "default idle policy "
	   "broker, onering_poll() loop", NULL, struct onering_readiness, 0, ONERING_HOOKS);
BENCH_PEER(bench_peer_readiness_onering_overprov, "onering-overprov", "--idle overprovisioned "
	   "broker, onering_poll() loop", NULL, struct onering_readiness, OVERPROV, ONERING_HOOKS);
/* --coalesce-us windows: 50 us is about what a producer on one CPU of this
 * machine takes to write 64 fds once (the best at N = 64), 100 us did better
 * at N = 1,024 (docs/benchmarks.md). */
BENCH_PEER(bench_peer_readiness_onering_overprov_co50, "onering-overprov-co50", "--idle "
	   "overprovisioned --coalesce-us 50 broker, onering_poll() loop", NULL,
	   struct onering_readiness, OVERPROV | CO50, ONERING_HOOKS);
BENCH_PEER(bench_peer_readiness_onering_overprov_co100, "onering-overprov-co100", "--idle "
	   "overprovisioned --coalesce-us 100 broker, onering_poll() loop", NULL,
	   struct onering_readiness, OVERPROV | CO100, ONERING_HOOKS);
BENCH_PEER(bench_peer_readiness_onering_wait, "onering-wait", "busy broker, onering_wait(): spin "
	   "50 us then futex", NULL, struct onering_readiness, BUSY | WAIT, ONERING_HOOKS);
