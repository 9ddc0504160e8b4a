/* SPDX-License-Identifier: MIT */
/*
 * peer_ring_bare.c: the ring floors (docs/benchmarks.md, Ring), two
 * rings each, one each way: "bare", a minimal Lamport SPSC ring with cached
 * indices, and "bare-seq", sequence-in-slot: no tail word, the producer writes
 * each slot's sequence (its last word) last, the consumer polls the slots.
 *
 * Ordering contract:
 *   tail word  (bare) written by the producer only: BR1 store-release after
 *              the slots it covers; the consumer's BA1 load-acquire pairs with it.
 *   slot seq   (bare-seq) written by the producer only: BR3 store-release of
 *              position + 1 after the slot's other bytes; the consumer's BA3
 *              load-acquire pairs with it before it copies the slot out.
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

/* Each side's view on its own line, as on its own stack: no false sharing.
 * pos: the producer's tail or the consumer's head; cache: the other one's. */
struct bare_side {
	alignas(ONERING_CACHE_LINE) struct bare_shared *shared;
	struct onering_event *slots;
	uint64_t mask, pos, cache;
	bool seq; /* bare-seq */
};

struct bare_state {
	struct bare_side tx[2], rx[2];
};

struct seq_slot { /* bare-seq's view of a slot */
	unsigned char rec[REC_SIZE - 8];
	ONERING_ATOMIC(uint64_t) seq; /* BR3: 1 + the position it holds */
};
ONERING_STATIC_ASSERT(sizeof(struct seq_slot) == REC_SIZE, "a bare-seq slot is a record");
#define seq_word(side, pos) (&((struct seq_slot *)&(side)->slots[(pos) & (side)->mask])->seq)

static int ring_bare_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self, void *state)
{
	struct bare_state *s = state;
	uint64_t capacity = bench_param(ctx, "capacity");

	for (int i = 0; i < 2; i++) {
		s->tx[i].shared = s->rx[i].shared = bench_alloc_lines(sizeof(struct bare_shared));
		s->tx[i].slots = s->rx[i].slots = bench_alloc_lines(capacity * REC_SIZE);
		s->tx[i].mask = s->rx[i].mask = capacity - 1;
		s->tx[i].seq = s->rx[i].seq = self->variant & RING_SEQ_IN_SLOT;
		if (!s->tx[i].shared || !s->tx[i].slots)
			return -ENOMEM;
	}
	return 0;
}

static int ring_bare_produce(void *state, unsigned ring, void *items, unsigned n)
{
	struct bare_side *p = &((struct bare_state *)state)->tx[ring];
	const struct onering_event *recs = items;
	uint64_t cap = p->mask + 1;
	uint64_t space = cap - (p->pos - p->cache);

	if (space < n) {
		/* BA2: synchronises with BR2 (consumer's release of head). */
		p->cache = onering_atomic_load(&p->shared->head, onering_mo_acquire);
		space = cap - (p->pos - p->cache);
		if (space < n)
			n = (unsigned)space;
		if (n == 0)
			return 0;
	}
	if (p->seq) {
		for (unsigned i = 0; i < n; i++, p->pos++) {
			memcpy(&p->slots[p->pos & p->mask], &recs[i], REC_SIZE - 8);
			/* BR3: synchronises with BA3 (the consumer's acquire of the slot). */
			onering_atomic_store(seq_word(p, p->pos), p->pos + 1, onering_mo_release);
		}
		return (int)n;
	}
	uint64_t idx = p->pos & p->mask;
	uint64_t first = cap - idx < n ? cap - idx : n;
	memcpy(&p->slots[idx], recs, first * REC_SIZE);
	if (n > first)
		memcpy(&p->slots[0], recs + first, (n - first) * REC_SIZE);
	p->pos += n;
	/* BR1: synchronises with BA1 (consumer's acquire of tail). */
	onering_atomic_store(&p->shared->tail, p->pos, onering_mo_release);
	return (int)n;
}

static int ring_bare_consume(void *state, unsigned ring, void *items, unsigned n)
{
	struct bare_side *c = &((struct bare_state *)state)->rx[ring];
	struct onering_event *out = items;
	uint64_t avail = c->cache - c->pos;

	if (c->seq) /* BA3: synchronises with BR3 (the producer's release of the slot) */
		for (avail = 0; avail < n && onering_atomic_load(seq_word(c, c->pos + avail),
					     onering_mo_acquire) == c->pos + avail + 1; avail++)
			;
	if (avail < n && !c->seq) {
		/* BA1: synchronises with BR1 (producer's release of tail). */
		c->cache = onering_atomic_load(&c->shared->tail, onering_mo_acquire);
		avail = c->cache - c->pos;
	}
	if (avail < n)
		n = (unsigned)avail;
	if (n == 0)
		return 0;
	uint64_t cap = c->mask + 1;
	uint64_t idx = c->pos & c->mask;
	uint64_t first = cap - idx < n ? cap - idx : n;
	memcpy(out, &c->slots[idx], first * REC_SIZE);
	if (n > first)
		memcpy(out + first, &c->slots[0], (n - first) * REC_SIZE);
	c->pos += n;
	/* BR2: synchronises with BA2 (producer's acquire of head). */
	onering_atomic_store(&c->shared->head, c->pos, onering_mo_release);
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
BENCH_PEER(bench_peer_ring_bare_seq, "bare-seq", "the same with a sequence word in each slot "
	   "(the batch-1 floor)", NULL, struct bare_state,
	   RING_MODE_THROUGHPUT | RING_MODE_LATENCY | RING_SEQ_IN_SLOT, ring_bare_setup,
	   ring_bare_produce, ring_bare_consume, NULL, ring_bare_teardown);
