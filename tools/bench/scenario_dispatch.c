/* SPDX-License-Identifier: MIT */
/*
 * scenario_dispatch.c: one stream of events balanced over C consumers
 * (sweep --consumers), onering's group policies against DPDK event_sw and
 * event_dsw (method: docs/benchmarks.md, Dispatch).
 *
 * Peer hooks (state starts with struct dispatch_common): setup; control()
 * with the DISPATCH_OP_* of peers.h; produce(state, C, evs, n): how many
 * it took; consume(state, k, evs, max): consumer k's events; teardown
 * (counts events still inside in common.leftover).
 *
 * Ordering: the team's gate (bench.h); stop set by the one consumer whose
 * events cross N (R2 after end_ns), relaxed in the loops, A2 by main; a
 * failure (the team's) stops the loops too; received: relaxed fetch_add
 * (only crossing N matters); the per-flow next seq is relaxed: a check, not
 * a synchronisation. The rest is read after the join.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/bench/peers.h"

#define STALL_NS 5000000000ull /* nothing taken this long after the last post: lost */
#define MAINTAIN_NS 50000ull
#define HIST_SUB_BITS 6u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40u
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

enum { FIG_EVENTS_PER_S, FIG_EVENTS_PER_CPU_S, FIG_SCHED_NS, FIG_P50_US, FIG_P99_US,
       FIG_RETRIES, FIG_QORDER, FIG_SHARE_MIN, FIG_COUNT };

struct consumer {
	struct dispatch_run *r;
	unsigned idx;
	uint64_t *seen;   /* a bit per event */
	uint32_t *qnext;  /* per flow: 1 + the last seq this consumer took */
	uint64_t count, dups, bad, qorder, gorder, extra, cpu_ns;
	uint64_t hist[HIST_BUCKETS];
};

struct dispatch_run {
	const struct bench_peer_ops *peer;
	void *state;
	struct dispatch_common *c;
	uint64_t n;
	bool ordered, has_sched, idle_yield, consume_blocks;
	cpu_set_t app_cpus;
	struct consumer *cons; /* [consumers] */
	ONERING_ATOMIC(uint32_t) *gnext; /* ordered peers: per flow, the next seq */
	uint64_t start_ns, end_ns, prod_cpu_ns, sched_cpu_ns, retries;
	uint64_t broker_cpu0_ns, broker_cpu1_ns;
	struct bench_team team; /* consumers, producer, scheduler */
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) received;
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(int) stop;
	ONERING_ATOMIC(int) prod_done;
};

#define run_fail(r, ...) bench_team_fail(&(r)->team, __VA_ARGS__)

static BENCH_ALWAYS_INLINE bool stopped(struct dispatch_run *r)
{
	return onering_atomic_load(&r->stop, onering_mo_relaxed) || bench_team_failed(&r->team);
}

static BENCH_ALWAYS_INLINE void idle_pause(const struct dispatch_run *r)
{
	if (r->idle_yield)
		sched_yield();
	else
		onering_cpu_relax();
}

static BENCH_ALWAYS_INLINE unsigned hist_idx(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	if (v >= (1ull << HIST_MAX_BITS))
		return HIST_BUCKETS - 1;
	unsigned e = 63u - (unsigned)__builtin_clzll(v);
	unsigned sub = (unsigned)(v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
	return (e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

/* Nearest-rank percentile of a histogram, the bucket's middle; -1 if empty. */
static double hist_percentile(const uint64_t *h, double q)
{
	uint64_t total = 0, cum = 0;

	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		total += h[i];
	if (total == 0)
		return -1;
	uint64_t rank = (uint64_t)(q * (double)total + 0.999999);
	unsigned i = 0;
	for (; i < HIST_BUCKETS - 1 && (cum += h[i]) < (rank ? rank : 1); i++)
		;
	if (i < HIST_SUB)
		return i;
	unsigned g = i / HIST_SUB, sub = i % HIST_SUB;
	return (double)((uint64_t)(HIST_SUB + sub) << (g - 1)) + (double)(1ull << (g - 1)) / 2;
}

/* Each thread: its CPUs (cpu, else the app CPUs), its setup, the gate. */
static void gate_wait(struct dispatch_run *r, unsigned idx, int cpu)
{
	char who[32];

	snprintf(who, sizeof(who), "thread %u", idx);
	int rc = bench_team_pin(&r->team, who, cpu, &r->app_cpus);
	if (rc == 0 && (rc = bench_control(r->peer, r->state, BENCH_OP_THREAD_INIT, &idx)) < 0 &&
	    rc != -ENOTSUP)
		run_fail(r, "%s: thread %u setup: %s", r->peer->name, idx, strerror(-rc));
	bench_team_ready(&r->team, true);
}

/* Check and account one event taken by consumer c. */
static BENCH_ALWAYS_INLINE void take(struct consumer *c, const struct dispatch_event *ev,
				     uint64_t now)
{
	struct dispatch_run *r = c->r;
	uint64_t idx = ev->seq * r->c->flows + ev->flow;

	if (ONERING_UNLIKELY(ev->flow >= r->c->flows || idx >= r->n || idx != ev->idx)) {
		c->bad++;
		return;
	}
	uint64_t bit = 1ull << (idx & 63), *w = &c->seen[idx >> 6];
	if (ONERING_UNLIKELY(*w & bit)) {
		c->dups++;
		return;
	}
	*w |= bit;
	c->qorder += ev->seq + 1 <= c->qnext[ev->flow];
	c->qnext[ev->flow] = (uint32_t)(ev->seq + 1);
	if (r->gnext) {
		/* relaxed: a check, not a synchronisation (see the contract) */
		c->gorder += onering_atomic_load(&r->gnext[ev->flow], onering_mo_relaxed) !=
			     (uint32_t)ev->seq;
		onering_atomic_store(&r->gnext[ev->flow], (uint32_t)(ev->seq + 1),
				     onering_mo_relaxed);
	}
	c->hist[hist_idx(now > ev->stamp_ns ? now - ev->stamp_ns : 0)]++;
}

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;
	struct dispatch_run *r = c->r;
	struct dispatch_event evs[DISPATCH_BURST];

	gate_wait(r, c->idx, -1);
	uint64_t cpu0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	while (!stopped(r)) {
		int n = r->peer->consume(r->state, c->idx, evs, DISPATCH_BURST);
		if (ONERING_UNLIKELY(n <= 0)) {
			if (n < 0)
				run_fail(r, "%s: consumer %u: %s", r->peer->name, c->idx,
					 strerror(-n));
			else if (!r->consume_blocks)
				idle_pause(r);
			continue;
		}
		uint64_t now = bench_now_ns();
		for (int k = 0; k < n; k++)
			take(c, &evs[k], now);
		c->count += (uint64_t)n;
		uint64_t total = onering_atomic_fetch_add(&r->received, (uint64_t)n,
							  onering_mo_relaxed) + (uint64_t)n;
		if (ONERING_UNLIKELY(total >= r->n && total - (uint64_t)n < r->n)) {
			r->end_ns = now;
			r->broker_cpu1_ns = bench_proc_cpu_ns(r->c->broker.pid);
			/* R2: after end_ns and the broker's CPU */
			onering_atomic_store(&r->stop, 1, onering_mo_release);
		}
	}
	c->cpu_ns = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	if (onering_atomic_load(&r->stop, onering_mo_acquire)) { /* all taken: any left? */
		int extra = bench_control(r->peer, r->state, DISPATCH_OP_DRAIN, &c->idx);
		c->extra = extra > 0 ? (uint64_t)extra : 0;
	}
	bench_control(r->peer, r->state, BENCH_OP_THREAD_FINI, &c->idx);
	return NULL;
}

static void *producer_main(void *arg)
{
	struct dispatch_run *r = arg;
	struct dispatch_event evs[DISPATCH_BURST];
	unsigned idx = r->c->consumers;
	uint64_t i = 0, seq = 0;
	uint32_t flow = 0;

	gate_wait(r, idx, -1);
	uint64_t cpu0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	r->start_ns = bench_now_ns();
	while (i < r->n && !stopped(r)) {
		unsigned m = r->n - i < DISPATCH_BURST ? (unsigned)(r->n - i) : DISPATCH_BURST;
		uint64_t stamp = bench_now_ns();
		for (unsigned k = 0; k < m; k++) {
			evs[k] = (struct dispatch_event){ .flow = flow, .seq = seq, .idx = i + k,
							  .stamp_ns = stamp };
			if (++flow == r->c->flows) {
				flow = 0;
				seq++;
			}
		}
		for (unsigned done = 0; done < m && !stopped(r);) {
			int rc = r->peer->produce(r->state, idx, evs + done, m - done);
			if (ONERING_UNLIKELY(rc < 0)) {
				run_fail(r, "%s: producer: %s", r->peer->name, strerror(-rc));
				break;
			}
			done += (unsigned)rc;
			if (done == m)
				break;
			/* Refused (full): retry the rest, re-stamped. */
			r->retries++;
			idle_pause(r);
			stamp = bench_now_ns();
			for (unsigned k = done; k < m; k++)
				evs[k].stamp_ns = stamp;
		}
		i += m;
	}
	bench_control(r->peer, r->state, DISPATCH_OP_FLUSH, NULL);
	r->prod_cpu_ns = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	onering_atomic_store(&r->prod_done, 1, onering_mo_relaxed);
	while (!stopped(r)) { /* keep the port attended, the queue open */
		bench_control(r->peer, r->state, DISPATCH_OP_MAINTAIN, NULL);
		bench_sleep_ns(MAINTAIN_NS);
	}
	bench_control(r->peer, r->state, BENCH_OP_THREAD_FINI, &idx);
	return NULL;
}

static void *sched_main(void *arg)
{
	struct dispatch_run *r = arg;
	unsigned idx = r->c->consumers + 1;

	gate_wait(r, idx, r->c->sched_cpu);
	uint64_t cpu0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	while (!stopped(r))
		bench_control(r->peer, r->state, DISPATCH_OP_SCHEDULE, NULL);
	r->sched_cpu_ns = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	bench_control(r->peer, r->state, BENCH_OP_THREAD_FINI, &idx);
	return NULL;
}

/* Wait for the end of the run, the timeout, a stall, a dead broker or ^C. */
static void run_watch(struct dispatch_run *r, uint64_t timeout_ns)
{
	uint64_t t0 = bench_now_ns(), last_change = t0, last_count = 0;

	while (!onering_atomic_load(&r->stop, onering_mo_acquire) && /* A2 */
	       !bench_team_failed(&r->team)) {
		bench_sleep_ns(5000000);
		uint64_t now = bench_now_ns();
		uint64_t got = onering_atomic_load(&r->received, onering_mo_relaxed);
		if (got != last_count) {
			last_count = got;
			last_change = now;
		}
		if (bench_interrupted)
			run_fail(r, "interrupted");
		else if (now - t0 > timeout_ns)
			run_fail(r, "timeout: %" PRIu64 " of %" PRIu64 " events taken", got, r->n);
		else if (onering_atomic_load(&r->prod_done, onering_mo_relaxed) &&
			 now - last_change > STALL_NS)
			run_fail(r, "lost: %" PRIu64 " of %" PRIu64 " events taken, none for 5 s "
				 "after the producer finished", got, r->n);
		else if (bench_broker_died(&r->c->broker))
			run_fail(r, "oneringd exited during the run");
	}
}

/* Exactly once, in order where promised (else BENCH_WRONG, said); then the figures. */
static int run_results(struct dispatch_run *r, double *fig)
{
	uint64_t count = 0, dups = 0, bad = 0, gorder = 0, qorder = 0, extra = r->c->leftover;
	uint64_t overlap = 0, have = 0, cmin = UINT64_MAX, cpu = r->prod_cpu_ns + r->sched_cpu_ns;
	uint64_t hist[HIST_BUCKETS] = { 0 };
	unsigned nc = r->c->consumers;

	for (struct consumer *c = r->cons; c < r->cons + nc; c++) {
		count += c->count;
		dups += c->dups;
		bad += c->bad;
		gorder += c->gorder;
		qorder += c->qorder;
		extra += c->extra;
		cpu += c->cpu_ns;
		cmin = c->count < cmin ? c->count : cmin;
		for (unsigned k = 0; k < HIST_BUCKETS; k++)
			hist[k] += c->hist[k];
	}
	for (size_t w = 0; w < (r->n + 63) / 64; w++) {
		uint64_t u = 0;
		for (unsigned i = 0; i < nc; i++) {
			overlap += (uint64_t)__builtin_popcountll(u & r->cons[i].seen[w]);
			u |= r->cons[i].seen[w];
		}
		have += (uint64_t)__builtin_popcountll(u);
	}
	if (have != r->n || dups || overlap || bad || extra || (r->ordered && gorder))
		return bench_fail(BENCH_WRONG, "%s C=%u: WRONG DELIVERY: sent %" PRIu64 ", taken %"
				  PRIu64 " (%" PRIu64 " distinct): lost %" PRIu64 ", duplicated %"
				  PRIu64 " (same consumer) + %" PRIu64 " (two consumers) + %" PRIu64
				  " (left over), malformed %" PRIu64 ", out of flow order %" PRIu64
				  "%s", r->peer->name, nc, r->n, count, have, r->n - have, dups,
				  overlap, extra, bad, gorder,
				  r->ordered ? " (promised)" : " (not promised)");
	/* The scheduling core's CPU: oneringd's (all its threads), or the
	 * event_sw service thread's (sched_cpu_ns); dsw has none. */
	uint64_t sched = r->sched_cpu_ns;
	if (r->broker_cpu1_ns > r->broker_cpu0_ns)
		sched += r->broker_cpu1_ns - r->broker_cpu0_ns;
	cpu += sched - r->sched_cpu_ns;
	fig[FIG_SCHED_NS] = (double)sched / (double)r->n;
	fig[FIG_EVENTS_PER_S] = (double)r->n * 1e9 / (double)(r->end_ns - r->start_ns);
	fig[FIG_EVENTS_PER_CPU_S] = (double)r->n * 1e9 / (double)cpu;
	fig[FIG_P50_US] = hist_percentile(hist, 0.50) / 1e3;
	fig[FIG_P99_US] = hist_percentile(hist, 0.99) / 1e3;
	fig[FIG_RETRIES] = (double)r->retries;
	fig[FIG_QORDER] = (double)qorder;
	fig[FIG_SHARE_MIN] = (double)cmin / (double)r->n;
	return 0;
}

static int dispatch_measure(struct bench_ctx *ctx, const struct bench_peer_ops *peer, void *state,
			    uint64_t nc, double *fig)
{
	struct dispatch_run *r = bench_alloc_lines(sizeof(*r));
	bool up = true;
	int rc = -ENOMEM;

	if (nc == 0 || nc > DISPATCH_MAX_CONSUMERS)
		return bench_fail(-EINVAL, "dispatch: --consumers is 1..%u", DISPATCH_MAX_CONSUMERS);
	if (!r)
		return -ENOMEM;
	*r = (struct dispatch_run){ .peer = peer, .state = state, .c = state,
		.n = bench_param(ctx, "events"), .idle_yield = bench_param(ctx, "idle") == 0 };
	*r->c = (struct dispatch_common){
		.consumers = (unsigned)nc, .flows = (uint32_t)bench_param(ctx, "flows"),
		.capacity = (uint32_t)bench_param(ctx, "capacity"),
		.sq_capacity = (uint32_t)bench_param(ctx, "sq-capacity"),
		.inflight = (uint32_t)bench_param(ctx, "inflight"),
		.consume_poll = bench_param(ctx, "consume") == 0, .sched_cpu = ctx->cores[0] };
	CPU_ZERO(&r->app_cpus);
	for (unsigned k = 1; k < ctx->core_count; k++)
		CPU_SET(ctx->cores[k], &r->app_cpus);
	if (!(r->cons = calloc(nc, sizeof(*r->cons))))
		goto out;
	for (unsigned i = 0; i < nc; i++) {
		r->cons[i] = (struct consumer){ .r = r, .idx = i,
			.seen = calloc((r->n + 63) / 64, sizeof(uint64_t)),
			.qnext = calloc(r->c->flows, sizeof(uint32_t)) };
		if (!r->cons[i].seen || !r->cons[i].qnext)
			goto out;
	}
	if ((rc = peer->setup(ctx, peer, r->state)) < 0)
		goto teardown;
	r->ordered = bench_control(peer, r->state, DISPATCH_OP_ORDERED, NULL) == 1;
	r->consume_blocks = bench_control(peer, r->state, DISPATCH_OP_BLOCKS, NULL) == 1;
	r->has_sched = bench_control(peer, r->state, DISPATCH_OP_SCHEDULE, NULL) != -ENOTSUP;
	if (r->ordered && !(r->gnext = calloc(r->c->flows, sizeof(*r->gnext)))) {
		rc = -ENOMEM;
		goto teardown;
	}
	r->c->base_ns = bench_now_ns();
	bench_team_init(&r->team);
	for (unsigned i = 0; i < nc && up; i++)
		up = bench_team_start(&r->team, consumer_main, &r->cons[i]) == 0;
	up = up && bench_team_start(&r->team, producer_main, r) == 0;
	up = up && (!r->has_sched || bench_team_start(&r->team, sched_main, r) == 0);
	if (up && bench_team_wait(&r->team)) {
		r->broker_cpu0_ns = bench_proc_cpu_ns(r->c->broker.pid);
		bench_team_open(&r->team);
		run_watch(r, bench_param(ctx, "timeout-s") * 1000000000ull);
	} else {
		run_fail(r, "interrupted"); /* unless a thread failed first */
	}
	bench_team_join(&r->team, 0);
teardown:
	peer->teardown(ctx, r->state);
	if (rc == 0 && bench_team_failed(&r->team)) {
		fprintf(stderr, "%s C=%u: %s\n", peer->name, (unsigned)nc, r->team.err);
		rc = bench_interrupted ? -EINTR : BENCH_WRONG;
	}
	if (rc == 0)
		rc = run_results(r, fig);
out:
	for (unsigned i = 0; r->cons && i < nc; i++) {
		free(r->cons[i].seen);
		free(r->cons[i].qnext);
	}
	free(r->cons);
	free((void *)(uintptr_t)r->gnext);
	free(r);
	return rc;
}

static const struct bench_peer_ops *const dispatch_peers[] = {
	&bench_peer_dispatch_onering_rr, &bench_peer_dispatch_onering_least,
	&bench_peer_dispatch_onering_sticky, &bench_peer_dispatch_onering_lifo,
	&bench_peer_dispatch_onering_local,
#if BENCH_HAVE_DPDK
	&bench_peer_dispatch_sw_atomic, &bench_peer_dispatch_sw_parallel,
	&bench_peer_dispatch_dsw_atomic, &bench_peer_dispatch_dsw_parallel,
#endif
};

static const char *const idle_names[] = { "yield", "spin", NULL };
static const char *const consume_names[] = { "poll", "wait", NULL };

static struct bench_param dispatch_params[] = {
	BENCH_INT("events", "events per measurement", 2000000, 100000, 1000, 200000000),
	BENCH_INT("flows", "flows", 1024, 1024, 1, 65536),
	BENCH_INT("capacity", "onering consumer queue slots", 1024, 1024, 64, 1u << 20),
	BENCH_INT("sq-capacity", "onering producer submission slots", 1024, 1024, 64, 1u << 20),
	BENCH_INT("inflight", "eventdev in-flight limit (clamped to the device's)", 4096, 4096, 64,
		  1u << 20),
	BENCH_CHOICE("idle", "busy loops when idle or refused: yield or spin", 0, idle_names),
	BENCH_CHOICE("consume", "onering consumers: poll (onering_poll, then --idle when empty: the "
		     "eventdev peers' loop) or wait (onering_wait)", 0, consume_names),
	BENCH_INT("timeout-s", "a measurement longer than this fails", 60, 60, 1, 3600),
};

BENCH_SCENARIO(dispatch, "consumers", "1,2,4", "1,2,4", "1,0", 3, 1,
	.about = "one stream of posted events over C consumers: onering's group policies vs "
		"DPDK event_sw and event_dsw (atomic, parallel); exactly once, flow order",
	.cores_help = "scheduler CPU S (oneringd, event_sw service), app CPUs A...",
	.fig_names = "events/s events/CPU-s sched_ns/ev:1 p50_us:1 p99_us:1 retries queue_reorder "
		"min_share:3",
	.ratio_text = "events/s onering-* sw-* >=2; events/CPU-s onering-* sw-*; "
		"events/CPU-s onering-* dsw-* >=1.5; events/s onering-* dsw-*; "
		"events/CPU-s onering-sticky dsw-atomic; events/CPU-s onering-sticky sw-atomic",
	.cores_more = true
);
