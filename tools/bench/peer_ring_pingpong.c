/* SPDX-License-Identifier: MIT */
/*
 * peer_ring_pingpong.c: the latency floors of the ring scenario, pingpong
 * (one line each way) and pp-lines (a fresh line per message);
 * docs/benchmarks.md, Ring. Ordering: PR1 store-release of the
 * line by the sending side pairs with the receiving side's PA1 load-acquire.
 * Each line is written by one side only.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>

#include "shm/abi.h"
#include "tools/bench/peers.h"

struct pp_line {
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) word;
};
ONERING_STATIC_ASSERT(sizeof(struct pp_line) == ONERING_CACHE_LINE, "one word per line");

struct pp_state {
	struct pp_line *lines[2]; /* [0] ping, [1] pong */
	uint64_t mask;
	/* Side 0 sends on direction 0 and receives on 1, side 1 the reverse:
	 * each side's counts on its own line. */
	struct {
		alignas(ONERING_CACHE_LINE) uint64_t sent, received;
	} by_side[2];
};

/* One line each way; RING_PP_LINES: --capacity lines. */
static int pp_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self, void *state)
{
	struct pp_state *s = state;
	uint64_t line_count = self->variant & RING_PP_LINES ? bench_param(ctx, "capacity") : 1;

	s->mask = line_count - 1;
	for (int d = 0; d < 2; d++)
		if (!(s->lines[d] = bench_alloc_lines(line_count * sizeof(struct pp_line))))
			return -ENOMEM;
	return 0;
}

static int pp_produce(void *state, unsigned dir, void *items BENCH_UNUSED,
		      unsigned count BENCH_UNUSED)
{
	struct pp_state *s = state;
	uint64_t v = ++s->by_side[dir].sent;

	/* PR1: synchronises with PA1 (the receiver's acquire of this line). */
	onering_atomic_store(&s->lines[dir][v & s->mask].word, v, onering_mo_release);
	return 1;
}

static int pp_consume(void *state, unsigned dir, void *items, unsigned max_count BENCH_UNUSED)
{
	struct pp_state *s = state;
	struct onering_event *out = items;
	uint64_t *received = &s->by_side[1 - dir].received;
	uint64_t v = *received + 1;

	/* PA1: synchronises with PR1 (the sender's release of this line). */
	uint64_t seen = onering_atomic_load(&s->lines[dir][v & s->mask].word, onering_mo_acquire);
	if (seen != v)
		return seen > v ? -EPROTO : 0;
	/* The cookie is the sequence the scenario sent (it counts from 0 after warm-up). */
	out->cookie = (*received)++;
	return 1;
}

static void pp_teardown(struct bench_ctx *ctx BENCH_UNUSED, void *state)
{
	struct pp_state *s = state;

	free(s->lines[0]);
	free(s->lines[1]);
}

BENCH_PEER(bench_peer_ring_pingpong, "pingpong", "one cache line each way (the latency floor)",
	   NULL, struct pp_state, RING_MODE_LATENCY, pp_setup, pp_produce, pp_consume, NULL,
	   pp_teardown);
BENCH_PEER(bench_peer_ring_pp_lines, "pp-lines",
	   "a fresh line per message over --capacity lines (rotating-slot floor)", NULL,
	   struct pp_state, RING_MODE_LATENCY | RING_PP_LINES, pp_setup, pp_produce, pp_consume,
	   NULL, pp_teardown);
