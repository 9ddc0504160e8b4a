/* SPDX-License-Identifier: MIT */
/*
 * peer_ring_onering.c: ring peer "onering": shm/ring.h's SPSC ring,
 * enqueue_burst / dequeue_burst over the ABI's own control blocks (tail and
 * head on their own lines, as in a client's queue). Two rings, one each way.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>

#include "shm/abi.h"
#include "shm/ring.h"
#include "tools/bench/peers.h"

/* Each handle on its own line: side 0 owns tx[0] and rx[1], side 1 the others. */
struct onering_ring_state {
	struct onering_events_ctl *ev_ctl[2];  /* ev_tail_pos: the producer's word */
	struct onering_consumer_ctl *c_ctl[2]; /* ev_head_pos: the consumer's word */
	struct onering_event *slots[2];
	struct {
		alignas(ONERING_CACHE_LINE) struct onering_ring_producer h;
	} tx[2];
	struct {
		alignas(ONERING_CACHE_LINE) struct onering_ring_consumer h;
	} rx[2];
};

static int ring_onering_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self BENCH_UNUSED,
			      void *state)
{
	struct onering_ring_state *s = state;
	uint32_t capacity = (uint32_t)bench_param(ctx, "capacity");

	for (int i = 0; i < 2; i++) {
		s->ev_ctl[i] = bench_alloc_lines(sizeof(*s->ev_ctl[i]));
		s->c_ctl[i] = bench_alloc_lines(sizeof(*s->c_ctl[i]));
		s->slots[i] = bench_alloc_lines((size_t)capacity * sizeof(struct onering_event));
		if (!s->ev_ctl[i] || !s->c_ctl[i] || !s->slots[i])
			return -ENOMEM;
		onering_ring_shared_init(&s->ev_ctl[i]->ev_tail_pos, &s->c_ctl[i]->ev_head_pos, 0);
		int rc = onering_ring_producer_init(&s->tx[i].h, &s->ev_ctl[i]->ev_tail_pos,
						    &s->c_ctl[i]->ev_head_pos, s->slots[i],
						    capacity, 0);
		if (rc || (rc = onering_ring_consumer_init(&s->rx[i].h, &s->ev_ctl[i]->ev_tail_pos,
							   &s->c_ctl[i]->ev_head_pos, s->slots[i],
							   capacity, 0)))
			return rc;
	}
	return 0;
}

static int ring_onering_produce(void *state, unsigned ring, void *recs, unsigned count)
{
	struct onering_ring_state *s = state;

	return onering_ring_enqueue_burst(&s->tx[ring].h, recs, count);
}

static int ring_onering_consume(void *state, unsigned ring, void *out, unsigned max_count)
{
	struct onering_ring_state *s = state;

	return onering_ring_dequeue_burst(&s->rx[ring].h, out, max_count);
}

static void ring_onering_teardown(struct bench_ctx *ctx BENCH_UNUSED, void *state)
{
	struct onering_ring_state *s = state;

	for (int i = 0; i < 2; i++) {
		free(s->ev_ctl[i]);
		free(s->c_ctl[i]);
		free(s->slots[i]);
	}
}

BENCH_PEER(bench_peer_ring_onering, "onering",
	   "shm/ring.h enqueue_burst/dequeue_burst (a pair for latency)", NULL,
	   struct onering_ring_state, RING_MODE_THROUGHPUT | RING_MODE_LATENCY, ring_onering_setup,
	   ring_onering_produce, ring_onering_consume, NULL, ring_onering_teardown);
