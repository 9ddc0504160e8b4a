/* SPDX-License-Identifier: MIT */
/*
 * peer_ring_bare.c: ring peer "bare", the floor: a minimal Lamport SPSC ring
 * (docs/benchmarks.md, Ring hand-off). Two rings, one each way.
 *
 * Ordering contract:
 *   tail word  written by the producer only: BR1 store-release after the
 *              slots it covers; the consumer's BA1 load-acquire pairs with it.
 *   head word  written by the consumer only: BR2 store-release after it has
 *              copied the slots out; the producer's BA2 load-acquire pairs
 *              with it before it overwrites them.
 * Indices run free (never masked in the shared words); slot = index & mask.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "shm/abi.h"
#include "tools/bench/peers.h"

#define REC_SIZE sizeof(struct onering_event)

struct bare_shared {
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) tail; /* producer: BR1 */
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) head; /* consumer: BR2 */
};
ONERING_STATIC_ASSERT(offsetof(struct bare_shared, head) == ONERING_CACHE_LINE,
		      "bare ring indices on separate lines");

/* Each side's view on its own line, as on its own stack: no false sharing. */
struct bare_producer {
	alignas(ONERING_CACHE_LINE) struct bare_shared *shared;
	struct onering_event *slots;
	uint64_t mask, tail, head_cache;
};

struct bare_consumer {
	alignas(ONERING_CACHE_LINE) struct bare_shared *shared;
	struct onering_event *slots;
	uint64_t mask, head, tail_cache;
};

struct bare_state {
	struct bare_producer tx[2];
	struct bare_consumer rx[2];
};

static int ring_bare_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self BENCH_UNUSED,
			   void *state)
{
	struct bare_state *s = state;
	uint64_t capacity = bench_param(ctx, "capacity");

	for (int i = 0; i < 2; i++) {
		s->tx[i].shared = s->rx[i].shared = bench_alloc_lines(sizeof(struct bare_shared));
		s->tx[i].slots = s->rx[i].slots = bench_alloc_lines(capacity * REC_SIZE);
		s->tx[i].mask = s->rx[i].mask = capacity - 1;
		if (!s->tx[i].shared || !s->tx[i].slots)
			return -ENOMEM;
	}
	return 0;
}

static int ring_bare_produce(void *state, unsigned ring, void *items, unsigned n)
{
	struct bare_producer *p = &((struct bare_state *)state)->tx[ring];
	const struct onering_event *recs = items;
	uint64_t cap = p->mask + 1;
	uint64_t space = cap - (p->tail - p->head_cache);

	if (space < n) {
		/* BA2: synchronises with BR2 (consumer's release of head). */
		p->head_cache = onering_atomic_load(&p->shared->head, onering_mo_acquire);
		space = cap - (p->tail - p->head_cache);
		if (space < n)
			n = (unsigned)space;
		if (n == 0)
			return 0;
	}
	uint64_t idx = p->tail & p->mask;
	uint64_t first = cap - idx < n ? cap - idx : n;
	memcpy(&p->slots[idx], recs, first * REC_SIZE);
	if (n > first)
		memcpy(&p->slots[0], recs + first, (n - first) * REC_SIZE);
	p->tail += n;
	/* BR1: synchronises with BA1 (consumer's acquire of tail). */
	onering_atomic_store(&p->shared->tail, p->tail, onering_mo_release);
	return (int)n;
}

static int ring_bare_consume(void *state, unsigned ring, void *items, unsigned n)
{
	struct bare_consumer *c = &((struct bare_state *)state)->rx[ring];
	struct onering_event *out = items;
	uint64_t avail = c->tail_cache - c->head;

	if (avail < n) {
		/* BA1: synchronises with BR1 (producer's release of tail). */
		c->tail_cache = onering_atomic_load(&c->shared->tail, onering_mo_acquire);
		avail = c->tail_cache - c->head;
		if (avail < n)
			n = (unsigned)avail;
		if (n == 0)
			return 0;
	}
	uint64_t cap = c->mask + 1;
	uint64_t idx = c->head & c->mask;
	uint64_t first = cap - idx < n ? cap - idx : n;
	memcpy(out, &c->slots[idx], first * REC_SIZE);
	if (n > first)
		memcpy(out + first, &c->slots[0], (n - first) * REC_SIZE);
	c->head += n;
	/* BR2: synchronises with BA2 (producer's acquire of head). */
	onering_atomic_store(&c->shared->head, c->head, onering_mo_release);
	return (int)n;
}

static void ring_bare_teardown(struct bench_ctx *ctx BENCH_UNUSED, void *state)
{
	struct bare_state *s = state;

	for (int i = 0; i < 2; i++) {
		free(s->tx[i].shared);
		free(s->tx[i].slots);
	}
}

BENCH_PEER(bench_peer_ring_bare, "bare", "a minimal SPSC ring with cached indices (the floor)",
	   NULL, struct bare_state, RING_MODE_THROUGHPUT | RING_MODE_LATENCY, ring_bare_setup,
	   ring_bare_produce, ring_bare_consume, NULL, ring_bare_teardown);
