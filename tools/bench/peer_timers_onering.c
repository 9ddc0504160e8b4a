/* SPDX-License-Identifier: MIT */
/*
 * peer_timers_onering.c: timers peers "onering" and "onering-busy"
 * (--idle-sleep-ms -1): broker-side timers over a per-measurement oneringd;
 * docs/benchmarks.md, Timers.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "client/onering.h"
#include "tools/bench/peers.h"

#define RING_FULL_NS 1000000000ull /* the ring full this long: the broker is stuck */

struct onering_timers {
	struct timers_common c;
	struct onering *att;
	struct onering_queue *q;
	struct onering_sub *subs; /* n + 1 */
	struct onering_event evs[TIMERS_BATCH];
	bool shared_cpu; /* the poller runs on the consumer's CPU */
};

/* The least power of two >= v and >= min (a power of two). */
#define pow2_at_least(v, min) ((v) <= (min) ? (min) : 1u << (64 - __builtin_clzll((v) - 1)))

/* Write syscalls of this thread so far; 0 when the kernel does not count them. */
static uint64_t thread_write_calls(void)
{
	char line[128];
	unsigned long long v = 0;
	FILE *f = fopen("/proc/thread-self/io", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f) && sscanf(line, "syscw: %llu", &v) != 1)
		;
	fclose(f);
	return v;
}

/* variant 1: onering-busy. */
static int timers_onering_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self,
				void *state)
{
	struct onering_timers *s = state;
	bool busy = self->variant;
	unsigned n = s->c.n;
	char poller[16], control[16], subs[16];
	struct onering_queue_options qo = { .capacity = pow2_at_least(2ull * (n + 1), 16384),
					    .sq_capacity = (uint32_t)bench_param(ctx, "sq-capacity") };

	snprintf(poller, sizeof(poller), "%d", ctx->cores[1]);
	snprintf(control, sizeof(control), "%d", ctx->cores[0]);
	snprintf(subs, sizeof(subs), "%u", pow2_at_least(n + 64, 65536));
	const char *extra[] = { "--cores", poller, "--control-core", control, "--max-subs", subs,
				busy ? "--idle-sleep-ms" : NULL, "-1", NULL };
	s->shared_cpu = ctx->cores[0] == ctx->cores[1];
	if (qo.sq_capacity == 0)
		qo.sq_capacity = pow2_at_least(n + 1, 64);
	int rc = bench_onering_open(ctx, &s->c.broker, NULL, extra, &qo, &s->att, &s->q);
	if (rc < 0)
		return rc;
	if (!(s->subs = calloc(n + 1, sizeof(*s->subs))))
		return -ENOMEM;
	for (unsigned i = 0; i <= n && rc == 0 && !bench_interrupted; i++)
		if ((rc = onering_timer_create(s->q, i, &s->subs[i])) < 0)
			fprintf(stderr, "onering_timer_create(%u): %s\n", i, onering_strerror(rc));
	return bench_interrupted ? -EINTR : rc;
}

/* onering_timer_arm, retrying while the submission ring is full (1 s at most). */
static int arm_one(struct onering_timers *s, uint32_t i, uint64_t value_ns, unsigned flags)
{
	int r = onering_timer_arm(s->q, s->subs[i], value_ns, 0, flags);

	if (ONERING_LIKELY(r != -EAGAIN))
		return r;
	uint64_t start = bench_now_ns();
	for (unsigned tries = 1; r == -EAGAIN; tries++) {
		s->c.eagain++;
		if ((tries & 1023) == 0) {
			if (bench_interrupted || bench_now_ns() - start > RING_FULL_NS)
				return bench_interrupted ? -EINTR : -ETIMEDOUT;
			if (s->shared_cpu) {
				s->c.known_syscalls++;
				sched_yield();
			}
		}
		onering_cpu_relax();
		r = onering_timer_arm(s->q, s->subs[i], value_ns, 0, flags);
	}
	return r;
}

static int timers_onering_produce(void *state, unsigned thread_idx BENCH_UNUSED, void *items,
				  unsigned count)
{
	struct onering_timers *s = state;
	const uint64_t *expiry = items;
	uint64_t writes0 = thread_write_calls();

	for (uint32_t i = 0; i < count; i++) {
		int r = arm_one(s, i, expiry ? expiry[i] : 0, expiry ? ONERING_TIMER_ABS : 0);
		if (ONERING_UNLIKELY(r < 0))
			return r;
	}
	s->c.known_syscalls += thread_write_calls() - writes0;
	return 0;
}

static int timers_onering_consume(void *state, unsigned thread_idx BENCH_UNUSED, void *items,
				  unsigned max_count)
{
	struct onering_timers *s = state;
	struct timer_fire *f = items;
	int r = onering_wait(s->q, s->evs, 1, max_count, (int64_t)s->c.wait_ns);
	if (r == -EINTR || r == -ETIMEDOUT)
		return 0;
	for (int i = 0; i < r; i++) {
		const struct onering_event *e = &s->evs[i];
		if (e->kind != ONERING_EV_TIMER || e->cookie > s->c.n ||
		    e->sub_id != s->subs[e->cookie].id || e->sub_gen != s->subs[e->cookie].gen)
			return bench_fail(-EPROTO, "onering: a record (kind %u, cookie %llu) that "
					  "is not one of our timers", e->kind,
					  (unsigned long long)e->cookie);
		f[i] = (struct timer_fire){ .idx = (uint32_t)e->cookie,
					    .stamp_ns = e->timestamp_ns,
					    .expirations = e->payload.timer.expirations };
	}
	return r;
}

static int timers_onering_control(void *state, unsigned op, void *arg BENCH_UNUSED)
{
	struct onering_timers *s = state;

	if (op == TIMERS_OP_SENTINEL)
		return arm_one(s, s->c.n, 1, ONERING_TIMER_ABS);
	if (op == TIMERS_OP_LEFT)
		return onering_poll(s->q, s->evs, TIMERS_BATCH);
	return -EINVAL;
}

static void timers_onering_teardown(struct bench_ctx *ctx, void *state)
{
	struct onering_timers *s = state;

	bench_onering_close(ctx, &s->c.broker, &s->att, &s->q);
	free(s->subs);
}

#define ONERING_HOOKS timers_onering_setup, timers_onering_produce, timers_onering_consume, \
	timers_onering_control, timers_onering_teardown
BENCH_PEER(bench_peer_timers_onering, "onering", "broker-side timers through the submission ring "
	   "(default idle policy)", NULL, struct onering_timers, 0, ONERING_HOOKS);
BENCH_PEER(bench_peer_timers_onering_busy, "onering-busy", "the same, the poller never sleeps "
	   "(--idle-sleep-ms -1)", NULL, struct onering_timers, 1, ONERING_HOOKS);
