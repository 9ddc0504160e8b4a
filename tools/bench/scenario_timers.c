/* SPDX-License-Identifier: MIT */
/*
 * scenario_timers.c: arming and firing N one-shot timers (sweep --timers),
 * onering's broker-side timers against a timerfd per timer and a wheel over
 * one timerfd (method and passes: docs/benchmarks.md, Timers).
 *
 * Peer hooks (state starts with struct timers_common): setup (common.n
 * timers, disarmed); produce(state, 0, exp, n): the pass, exp[i] absolute
 * CLOCK_MONOTONIC, or disarm all if exp is NULL; consume(state, 0, fires,
 * max): what fired within common.wait_ns; control(TIMERS_OP_SENTINEL /
 * TIMERS_OP_LEFT); teardown.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/proto.h"
#include "tools/bench/peers.h"

#define LOST_NS 2000000000ull         /* a timer this late never fired */
#define CANCEL_GRACE_NS 20000000ull   /* watch this long past a cancelled expiry */
#define WAIT_SLICE_NS 20000000ull     /* consume() returns at least this often */
#define QUIET_NS 5000000ull           /* quiet before the ARM pass */
#define LEAD_NS 20000000ull           /* re-arm, cancel: old expiries' lead */
#define NEVER UINT64_MAX              /* the expiry of a cancelled timer */
#define DISTURBED 3                   /* internal: redo the measurement */

enum {
	FIG_ENQUEUED, FIG_APPLIED, FIG_APPLIED_ARMS, FIG_REARMS, FIG_CANCELS, FIG_ARM_CPU_NS,
	FIG_SC_PER_ARM, FIG_LATE_P50_US, FIG_LATE_P99_US, FIG_LATE_MAX_US, FIG_STAMP_P50_US,
	FIG_STAMP_P99_US, FIG_CPU_US, FIG_BROKER_US, FIG_EAGAIN, FIG_COUNT
};

struct phase {
	const char *name;
	const uint64_t *expiry;     /* per timer: intended expiry; NULL: none may fire */
	const uint64_t *old_expiry; /* re-arm, cancel: what the timed pass replaced */
	uint64_t deadline_ns;
	unsigned want;       /* timers that must fire (onering: and the sentinel) */
	bool until_deadline; /* cancel: watch until the deadline */
	/* what came */
	unsigned fired;
	bool sentinel_seen;
	uint64_t sentinel_ns;
};

struct timers_run {
	const struct bench_peer_ops *peer;
	void *state;
	struct timers_common *c;
	bool has_sentinel;
	uint64_t *seen_ns, *stamp_ns, *exp, *exp2;
	uint32_t *rank, *rank2;
	struct timer_fire fires[TIMERS_BATCH];
};

/* v: the shuffle (Fisher-Yates) of 0..n-1 that seed picks. */
static void permute(uint32_t *v, unsigned n, unsigned short seed)
{
	unsigned short x[3] = { 0x330e, seed, (unsigned short)n };

	for (unsigned i = 0; i < n; i++)
		v[i] = i;
	for (unsigned i = n; i > 1; i--) {
		uint32_t j = (uint32_t)nrand48(x) % i, t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* Expiries from base (rank 0) to before base + spread (rank n - 1). */
static void plan(uint64_t *exp, const uint32_t *rank, unsigned n, uint64_t base, uint64_t spread)
{
	for (unsigned i = 0; i < n; i++)
		exp[i] = base + (uint64_t)((double)spread * (double)rank[i] / (double)n);
}

/* One fire handed over at now; checks exactly-once, never early, never cancelled. */
static int take(struct timers_run *t, struct phase *ph, const struct timer_fire *f, uint64_t now)
{
	const char *name = t->peer->name;
	unsigned n = t->c->n;

	if (f->idx == n && t->has_sentinel) {
		if (ph->sentinel_seen)
			return bench_fail(BENCH_WRONG, "%s: the sentinel fired twice", name);
		ph->sentinel_seen = true;
		ph->sentinel_ns = f->stamp_ns;
		return 0;
	}
	if (f->idx >= n || f->expirations != 1)
		return bench_fail(BENCH_WRONG, "%s: %s phase: timer %u of %u with %" PRIu64
				  " expirations (one-shot: 1)", name, ph->name, f->idx, n,
				  f->expirations);
	uint64_t exp = ph->expiry ? ph->expiry[f->idx] : NEVER;
	bool stale = exp == NEVER || now < exp || (f->stamp_ns && f->stamp_ns < exp);
	/* onering: a timer firing at its old expiry before the sentinel says
	 * the pass was applied met a stalled broker, not a bug. */
	if (stale && ph->old_expiry && t->has_sentinel && !ph->sentinel_seen &&
	    f->stamp_ns >= ph->old_expiry[f->idx])
		return DISTURBED;
	if (exp == NEVER)
		return bench_fail(BENCH_WRONG, "%s: %s phase: timer %u fired after it was "
				  "cancelled", name, ph->name, f->idx);
	if (t->seen_ns[f->idx])
		return bench_fail(BENCH_WRONG, "%s: %s phase: timer %u fired twice", name,
				  ph->name, f->idx);
	if (stale)
		return bench_fail(BENCH_WRONG, "%s: %s phase: timer %u fired %.3f ms before its "
				  "expiry", name, ph->name, f->idx,
				  (double)(exp - (f->stamp_ns && f->stamp_ns < now ? f->stamp_ns
										     : now)) / 1e6);
	t->seen_ns[f->idx] = now;
	t->stamp_ns[f->idx] = f->stamp_ns;
	ph->fired++;
	return 0;
}

/* Take fires until the phase has what it wants or its deadline passed. */
static int collect(struct timers_run *t, struct phase *ph)
{
	memset(t->seen_ns, 0, t->c->n * sizeof(uint64_t));
	for (;;) {
		uint64_t now = bench_now_ns();
		if (!ph->until_deadline && ph->fired >= ph->want &&
		    (!t->has_sentinel || ph->sentinel_seen))
			return 0;
		if (bench_interrupted)
			return -EINTR;
		if (now >= ph->deadline_ns)
			break;
		t->c->wait_ns = ph->deadline_ns - now < WAIT_SLICE_NS ? ph->deadline_ns - now
								       : WAIT_SLICE_NS;
		int r = t->peer->consume(t->state, 0, t->fires, TIMERS_BATCH);
		if (r < 0)
			return bench_fail(r, "%s: %s phase: %s", t->peer->name, ph->name,
					  strerror(-r));
		now = bench_now_ns();
		for (int i = 0; i < r; i++) {
			int rc = take(t, ph, &t->fires[i], now);
			if (rc)
				return rc;
		}
	}
	if (t->has_sentinel && !ph->sentinel_seen)
		return bench_fail(BENCH_WRONG, "%s: %s phase: the sentinel (armed in the past) "
				  "never fired", t->peer->name, ph->name);
	if (ph->fired < ph->want)
		return bench_fail(BENCH_WRONG, "%s: %s phase: %u of %u timers never fired",
				  t->peer->name, ph->name, ph->want - ph->fired, ph->want);
	return 0;
}

/* The timed pass (exp NULL: disarm all); then, if asked, the sentinel: one
 * outstanding at a time, taken by the next collect() that wants it. */
static int pass(struct timers_run *t, const uint64_t *exp, bool sentinel, uint64_t *ns)
{
	uint64_t t0 = bench_now_ns();
	int rc = t->peer->produce(t->state, 0, (void *)(uintptr_t)exp, t->c->n);

	*ns = bench_now_ns() - t0;
	if (rc < 0)
		return bench_fail(rc, "%s: arming: %s", t->peer->name, strerror(-rc));
	if (sentinel && t->has_sentinel && (rc = bench_control(t->peer, t->state, TIMERS_OP_SENTINEL, NULL)) < 0)
		return bench_fail(rc, "%s: the sentinel: %s", t->peer->name, strerror(-rc));
	return 0;
}

/* onering: wait until the broker applied what was submitted (nothing may fire). */
static int wait_applied(struct timers_run *t, const uint64_t *exp, const char *name)
{
	struct phase ph = { .name = name, .expiry = exp, .deadline_ns = bench_now_ns() + LOST_NS };

	if (!t->has_sentinel)
		return 0;
	int rc = collect(t, &ph);
	return rc ? rc : ph.fired ? DISTURBED : 0;
}

/* A STATS item: the requests a queue's broker applied (handled, less refused). */
static int applied_item(const struct onering_msg *m, void *arg)
{
	const struct onering_msg_stats_item *it = &m->u.stats_item;

	if (it->what == ONERING_STATS_QUEUE)
		*(uint64_t *)arg += it->counter[ONERING_QC_REQUESTS] -
				    it->counter[ONERING_QC_BAD_REQUESTS];
	return 0;
}

static double lateness_us(const uint64_t *at, const uint64_t *exp, unsigned n, uint64_t ready,
			  double q, uint64_t *tmp)
{
	size_t m = 0;

	for (unsigned i = 0; i < n; i++)
		if (exp[i] >= ready && at[i])
			tmp[m++] = at[i] - exp[i];
	return m ? bench_percentile(tmp, m, q) / 1e3 : -1;
}

static int phases(struct bench_ctx *ctx, struct timers_run *t, double *fig)
{
	unsigned n = t->c->n;
	uint64_t first_ns = bench_param(ctx, "first-ms") * 1000000ull;
	uint64_t spread_ns = bench_param(ctx, "spread-ms") * 1000000ull;
	uint64_t ns, t0, *tmp = t->exp2;
	int rc;

	/* Warm-up: every timer 10 s ahead, then disarmed. */
	t0 = bench_now_ns();
	for (unsigned i = 0; i < n; i++)
		t->exp[i] = t0 + 10000000000ull + i;
	if ((rc = pass(t, t->exp, false, &ns)) || (rc = pass(t, NULL, true, &ns)) ||
	    (rc = wait_applied(t, NULL, "warm-up")))
		return rc;

	/* ARM; applied: the broker's requests less the sentinel (else each call) */
	uint64_t applied0 = 0, applied1 = 0, eagain0 = t->c->eagain, sc0 = t->c->known_syscalls;
	uint64_t bcpu0 = bench_proc_cpu_ns(t->c->broker.pid);
	struct bench_broker *b = t->c->broker.pid > 0 ? &t->c->broker : NULL;
	if (b && (rc = bench_broker_stats(b, applied_item, &applied0)))
		return rc;
	bench_sleep_ns(QUIET_NS);
	uint64_t cpu0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	t0 = bench_now_ns();
	plan(t->exp, t->rank, n, t0 + first_ns, spread_ns);
	uint64_t ta = bench_now_ns();
	if ((rc = pass(t, t->exp, true, &ns)))
		return rc;
	fig[FIG_ARM_CPU_NS] = (double)(bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0) / n;
	fig[FIG_ENQUEUED] = (double)n * 1e9 / (double)ns;
	fig[FIG_EAGAIN] = (double)(t->c->eagain - eagain0);
	fig[FIG_SC_PER_ARM] = (double)(t->c->known_syscalls - sc0) / n;
	struct phase arm = { .name = "arm", .expiry = t->exp, .want = n,
			     .deadline_ns = t0 + first_ns + spread_ns + LOST_NS };
	if ((rc = collect(t, &arm)))
		return rc;
	if (b && (rc = bench_broker_stats(b, applied_item, &applied1)))
		return rc;
	uint64_t applied = arm.sentinel_ns > ta ? arm.sentinel_ns : ta + ns;
	fig[FIG_APPLIED_ARMS] = b ? (double)(applied1 - applied0 - 1) : n;
	fig[FIG_APPLIED] = fig[FIG_APPLIED_ARMS] * 1e9 / (double)(applied - ta);
	fig[FIG_CPU_US] = (double)(bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0) / 1e3 / n;
	if (b)
		fig[FIG_BROKER_US] = (double)(bench_proc_cpu_ns(b->pid) - bcpu0) / 1e3 / n;
	/* Timers whose expiry came before the pass was applied are left out. */
	fig[FIG_LATE_P50_US] = lateness_us(t->seen_ns, t->exp, n, applied, 0.5, tmp);
	fig[FIG_LATE_P99_US] = lateness_us(t->seen_ns, t->exp, n, applied, 0.99, tmp);
	fig[FIG_LATE_MAX_US] = lateness_us(t->seen_ns, t->exp, n, applied, 1, tmp);
	if (t->has_sentinel) {
		fig[FIG_STAMP_P50_US] = lateness_us(t->stamp_ns, t->exp, n, applied, 0.5, tmp);
		fig[FIG_STAMP_P99_US] = lateness_us(t->stamp_ns, t->exp, n, applied, 0.99, tmp);
	}
	uint64_t lead = LEAD_NS + 4 * (applied - ta);

	/* RE-ARM: E1 untimed and applied, then E2 (after every E1) timed. */
	t0 = bench_now_ns();
	plan(t->exp, t->rank, n, t0 + lead, spread_ns);
	if ((rc = pass(t, t->exp, true, &ns)) || (rc = wait_applied(t, t->exp, "re-arm")))
		return rc;
	plan(t->exp2, t->rank2, n, t0 + lead + spread_ns + LEAD_NS, spread_ns);
	if ((rc = pass(t, t->exp2, true, &ns)))
		return rc;
	if (bench_now_ns() >= t0 + lead) /* the first old expiry */
		return DISTURBED;
	fig[FIG_REARMS] = (double)n * 1e9 / (double)ns;
	struct phase rearm = { .name = "re-arm", .expiry = t->exp2, .old_expiry = t->exp,
			       .want = n,
			       .deadline_ns = t0 + lead + 2 * spread_ns + LEAD_NS + LOST_NS };
	if ((rc = collect(t, &rearm)))
		return rc;

	/* CANCEL */
	t0 = bench_now_ns();
	plan(t->exp, t->rank, n, t0 + lead, spread_ns);
	if ((rc = pass(t, t->exp, true, &ns)) || (rc = wait_applied(t, t->exp, "cancel")))
		return rc;
	if ((rc = pass(t, NULL, true, &ns)))
		return rc;
	if (bench_now_ns() >= t0 + lead) /* the first old expiry */
		return DISTURBED;
	fig[FIG_CANCELS] = (double)n * 1e9 / (double)ns;
	struct phase cancel = { .name = "cancel", .old_expiry = t->exp, .until_deadline = true,
				.deadline_ns = t0 + lead + spread_ns + CANCEL_GRACE_NS };
	if ((rc = collect(t, &cancel)))
		return rc;
	rc = bench_control(t->peer, t->state, TIMERS_OP_LEFT, NULL);
	if (rc > 0)
		return bench_fail(BENCH_WRONG, "%s: %d timer(s) left after the last phase",
				  t->peer->name, rc);
	return rc < 0 ? rc : 0;
}

static int timers_measure(struct bench_ctx *ctx, const struct bench_peer_ops *peer, void *state,
			  uint64_t n, double *fig)
{
	struct timers_run t = { .peer = peer, .state = state, .c = state };
	int rc = -ENOMEM;

	if (n == 0 || n > 1000000)
		return bench_fail(-EINVAL, "timers: --timers is 1..1000000");
	/* One block: four arrays of n uint64_t, two of n uint32_t. */
	uint64_t *block = calloc(5 * n, sizeof(uint64_t));
	if (!block)
		return -ENOMEM;
	t.seen_ns = block;
	t.stamp_ns = block + n;
	t.exp = block + 2 * n;
	t.exp2 = block + 3 * n;
	t.rank = (uint32_t *)(block + 4 * n);
	t.rank2 = t.rank + n;
	/* The same permutations for every peer of a round. */
	permute(t.rank, (unsigned)n, (unsigned short)(2 * ctx->round + 1));
	permute(t.rank2, (unsigned)n, (unsigned short)(2 * ctx->round + 2));
	for (int attempt = 0; attempt < 3; attempt++) {
		memset(t.state, 0, peer->state_size);
		t.c->n = (unsigned)n;
		if ((rc = peer->setup(ctx, peer, t.state)) == 0) {
			t.has_sentinel = bench_control(peer, t.state, TIMERS_OP_SENTINEL, NULL) == 0;
			if ((rc = wait_applied(&t, NULL, "setup")) == 0)
				rc = phases(ctx, &t, fig);
		}
		if (rc)
			bench_broker_died(&t.c->broker); /* says so if it did */
		peer->teardown(ctx, t.state);
		if (rc != DISTURBED)
			break;
		printf("  (%s: the machine stalled a pass past its old expiries: again)\n",
		       peer->name);
	}
	if (rc == DISTURBED)
		rc = bench_fail(-EAGAIN, "%s: disturbed 3 times in a row", peer->name);
	free(block);
	return rc;
}

static int timers_init(struct bench_ctx *ctx)
{
	return bench_pin_self(ctx->cores[0]); /* the consumer is this thread */
}

static const struct bench_peer_ops *const timers_peers[] = {
	&bench_peer_timers_onering, &bench_peer_timers_onering_busy,
	&bench_peer_timers_timerfd, &bench_peer_timers_wheel,
};

static struct bench_param timers_params[] = {
	BENCH_INT("first-ms", "earliest expiry, ms after the arming pass starts", 100, 100, 1,
		  100000),
	BENCH_INT("spread-ms", "expiries spread evenly over this many ms", 50, 50, 1, 100000),
	BENCH_INT("sq-capacity", "onering submission ring slots (0: the least power of two >= N)",
		  0, 0, 0, 1u << 20),
};

BENCH_SCENARIO(timers, "timers", "10000", "2000", "0,1", 5, 2,
	.about = "arm, fire, re-arm and cancel N one-shot timers: onering's broker-side "
		"timers vs one timerfd per timer vs a consumer-side wheel over one timerfd",
	.cores_help = "consumer CPU C (and oneringd's control thread), poller CPU B",
	.fig_names = "enqueued/s applied/s applied rearms/s cancels/s arm_cpu_ns syscalls/arm:3 "
		"late_p50_us:1 late_p99_us:1 late_max_us stamp_p50_us:1 stamp_p99_us:1 "
		"cpu_us/timer:2 broker_us/tmr:2 eagain",
	.ratio_text = "applied/s onering timerfd >=10; enqueued/s onering timerfd; "
		"applied/s onering wheel; rearms/s onering timerfd; "
		"cancels/s onering timerfd; late_p99_us onering timerfd; "
		"applied/s onering-busy timerfd",
	.init = timers_init
);
