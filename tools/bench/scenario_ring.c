/* SPDX-License-Identifier: MIT */
/*
 * scenario_ring.c: 64-byte records between two pinned cores, onering's SPSC
 * ring against its floors (method: docs/benchmarks.md, Ring).
 * Sweep --batch: 32 and 1 are throughput, 0 one-way latency.
 *
 * Peer hooks: setup (two rings of --capacity); produce(state, ring, recs, n)
 * / consume(state, ring, out, n): how many, or -errno; the variant's
 * RING_MODE_* bits say what a peer measures.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "shm/abi.h"
#include "tools/bench/peers.h"

enum { FIG_MRPS, FIG_P50_NS, FIG_P99_NS, FIG_COUNT };

struct side {
	const struct bench_peer_ops *peer;
	void *state;
	int idx; /* 0: producer / ping, 1: consumer / echo */
	int core;
	uint32_t batch;
	uint64_t warm, count;
	uint64_t *samples; /* round-trip ticks, side 0 of a latency run */
	ONERING_ATOMIC(uint32_t) *arrived;
	struct bench_team *team; /* its failure, the run's, aborts the run */
	uint64_t t_ns;
};

static double ticks_per_ns = 1.0;

static BENCH_ALWAYS_INLINE uint64_t ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __rdtsc();
#else
	return bench_now_ns();
#endif
}

#define aborted(s) bench_team_failed((s)->team)

static bool side_fail(struct side *s, const char *what, uint64_t want, int64_t got)
{
	bench_team_fail(s->team, "%s: %s: want %" PRIu64 ", got %" PRId64, s->peer->name, what,
			want, got);
	return false;
}

/* Both sides arrive here, after the warm-up; false if the run aborted. */
static bool barrier_wait(struct side *s)
{
	onering_atomic_fetch_add(s->arrived, 1, onering_mo_acq_rel);
	while (onering_atomic_load(s->arrived, onering_mo_acquire) < 2)
		if (aborted(s))
			return false;
	return true;
}

/* Move n records (all of them) through ring; false on abort or error. */
static BENCH_ALWAYS_INLINE bool send_all(struct side *s, unsigned ring, struct onering_event *recs,
					 uint32_t n)
{
	for (uint32_t done = 0; done < n;) {
		int r = s->peer->produce(s->state, ring, recs + done, n - done);
		if (r < 0)
			return side_fail(s, "produce", n - done, r);
		done += (uint32_t)r;
		if (r == 0 && aborted(s))
			return false;
	}
	return true;
}

/* Receive exactly n records and check their cookies run from seq. */
static BENCH_ALWAYS_INLINE bool recv_all(struct side *s, unsigned ring, struct onering_event *out,
					 uint64_t seq, uint32_t n)
{
	for (uint32_t done = 0; done < n;) {
		int r = s->peer->consume(s->state, ring, out, n - done);
		if (r <= 0) {
			if (r < 0)
				return side_fail(s, "consume", n - done, r);
			if (aborted(s))
				return false;
			continue;
		}
		uint64_t bad = 0;
		for (int i = 0; i < r; i++)
			bad |= out[i].cookie ^ (seq + done + (uint64_t)i);
		if (bad)
			for (int i = 0; i < r; i++)
				if (out[i].cookie != seq + done + (uint64_t)i)
					return side_fail(s, "sequence (lost or reordered)",
							 seq + done + (uint64_t)i,
							 (int64_t)out[i].cookie);
		done += (uint32_t)r;
	}
	return true;
}

/* Throughput: side 0 sends seq .. seq+n in batches, side 1 receives them. */
static bool stream(struct side *s, struct onering_event *buf, uint64_t seq, uint64_t n)
{
	for (uint64_t end = seq + n; seq < end;) {
		uint32_t want = end - seq < s->batch ? (uint32_t)(end - seq) : s->batch;
		if (s->idx == 0) {
			for (uint32_t i = 0; i < want; i++)
				buf[i].cookie = seq + i;
			if (!send_all(s, 0, buf, want))
				return false;
		} else if (!recv_all(s, 0, buf, seq, want)) {
			return false;
		}
		seq += want;
	}
	return true;
}

/* Latency: side 0 pings one record on ring 0, side 1 echoes it on ring 1. */
static bool ping_pong(struct side *s, struct onering_event *rec, uint64_t seq, uint64_t n,
		      uint64_t *samples)
{
	uint64_t prev = ticks();

	for (uint64_t i = 0; i < n; i++) {
		rec->cookie = seq + i;
		if (s->idx == 0) {
			if (!send_all(s, 0, rec, 1) || !recv_all(s, 1, rec, seq + i, 1))
				return false;
			uint64_t now = ticks();
			if (samples)
				samples[i] = now - prev;
			prev = now;
		} else if (!recv_all(s, 0, rec, seq + i, 1) || !send_all(s, 1, rec, 1)) {
			return false;
		}
	}
	return true;
}

static void *side_main(void *arg)
{
	struct side *s = arg;
	struct onering_event buf[32];

	if (bench_team_pin(s->team, s->idx ? "side 1" : "side 0", s->core, NULL) < 0)
		return NULL;
	for (unsigned i = 0; i < 32; i++)
		buf[i] = (struct onering_event){ .kind = ONERING_EV_USER, .sub_id = 7, .sub_gen = 1 };
	/* Warm-up: caches, TLB, branch predictors; not timed (the sides need not meet first). */
	if (s->batch ? !stream(s, buf, 0, s->warm) : !ping_pong(s, buf, 0, s->warm, NULL))
		return NULL;
	if (!barrier_wait(s))
		return NULL;
	uint64_t t0 = bench_now_ns();
	if (s->batch ? stream(s, buf, s->warm, s->count)
		     : ping_pong(s, buf, s->warm, s->count, s->samples))
		s->t_ns = bench_now_ns() - t0;
	return NULL;
}

static int ring_init(struct bench_ctx *ctx BENCH_UNUSED)
{
#if defined(__x86_64__) || defined(__i386__)
	/* Spin 50 ms against CLOCK_MONOTONIC; the TSC is invariant here. */
	uint64_t t0 = bench_now_ns(), c0 = ticks(), t1;
	do
		t1 = bench_now_ns();
	while (t1 - t0 < 50000000u);
	ticks_per_ns = (double)(ticks() - c0) / (double)(t1 - t0);
#endif
	return 0;
}

static int ring_measure(struct bench_ctx *ctx, const struct bench_peer_ops *peer, void *state,
			uint64_t batch, double *fig)
{
	uint64_t count = batch == 0 ? bench_param(ctx, "round-trips")
		       : batch == 1 ? bench_param(ctx, "records") / 2
				    : bench_param(ctx, "records");
	ONERING_ATOMIC(uint32_t) arrived;
	struct side sides[2];
	struct bench_team team;
	int rc;

	if (!(peer->variant & (batch ? RING_MODE_THROUGHPUT : RING_MODE_LATENCY)))
		return BENCH_NA;
	if (batch > 32)
		return bench_fail(-EINVAL, "ring: --batch is 0 (latency) or 1..32");
	uint64_t *samples = batch ? NULL : calloc(count, sizeof(uint64_t));
	if (!batch && !samples)
		return -ENOMEM;
	if ((rc = peer->setup(ctx, peer, state)) < 0)
		goto out;
	onering_atomic_init(&arrived, 0);
	bench_team_init(&team);
	for (int i = 0; i < 2; i++) {
		sides[i] = (struct side){ .peer = peer, .state = state, .idx = i,
					  .core = ctx->cores[i], .batch = (uint32_t)batch,
					  .count = count, .samples = i ? NULL : samples,
					  .arrived = &arrived, .team = &team };
		sides[i].warm = batch ? (count / 20 < 100000 ? count / 20 : 100000)
				      : (count / 10 < 20000 ? count / 10 : 20000);
	}
	if ((rc = bench_team_start(&team, side_main, &sides[0])) == 0)
		rc = bench_team_start(&team, side_main, &sides[1]);
	bench_team_join(&team, 0); /* the sides meet at their own barriers */
	peer->teardown(ctx, state);
	if (rc < 0)
		goto out;
	if (bench_team_failed(&team)) {
		fprintf(stderr, "FAIL: %s\n", team.err);
		rc = strstr(team.err, "cannot pin") ? -EINVAL : BENCH_WRONG;
		goto out;
	}
	if (batch) {
		fig[FIG_MRPS] = (double)count * 1e3 / (double)sides[1].t_ns;
	} else {
		/* A round trip is two hand-offs: one way = round trip / 2. */
		fig[FIG_P50_NS] = bench_percentile(samples, count, 0.50) / ticks_per_ns / 2;
		fig[FIG_P99_NS] = bench_percentile(samples, count, 0.99) / ticks_per_ns / 2;
	}
out:
	free(samples);
	return rc;
}

static const struct bench_peer_ops *const ring_peers[] = {
	&bench_peer_ring_onering, &bench_peer_ring_bare, &bench_peer_ring_bare_seq,
#if BENCH_HAVE_DPDK
	&bench_peer_ring_rte,
#endif
	&bench_peer_ring_pp_lines, &bench_peer_ring_pingpong,
};

static struct bench_param ring_params[] = {
	BENCH_INT("records", "records per throughput run at batch 32; batch 1 moves half",
		  20000000, 1000000, 1000, 1ull << 40),
	BENCH_INT("round-trips", "ping-pong round trips per latency run", 200000, 20000, 100,
		  1ull << 32),
	BENCH_INT("capacity", "ring capacity in records, a power of two", 1024, 1024, 2, 1u << 20),
};

BENCH_SCENARIO(ring, "batch", "32,1,0", "32,1,0", "0,1", 5, 0,
	.about = "64-byte records between two pinned cores: onering's SPSC ring vs bare SPSC "
		"floors (cached indices; sequence in slot), rte_ring SP/SC, cache-line ping-pong",
	.cores_help = "producer/ping CPU A, consumer/echo CPU B",
	.fig_names = "Mrec/s:1 p50_ns:1 p99_ns:1",
	.ratio_text = "Mrec/s onering bare @32 >=0.90; Mrec/s onering bare-seq @32; Mrec/s "
		"onering bare @1; Mrec/s onering bare-seq @1 >=0.85; Mrec/s onering rte_ring @32 "
		">=1.70; Mrec/s onering rte_ring @1 >=5; Mrec/s bare rte_ring @32; p50_ns onering "
		"pingpong @0 <=1.50; p99_ns onering pingpong @0; p50_ns onering bare @0; p50_ns "
		"onering bare-seq @0; p50_ns onering pp-lines @0",
	.init = ring_init
);
