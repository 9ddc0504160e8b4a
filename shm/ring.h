/* SPDX-License-Identifier: MIT */
/*
 * Single-producer / single-consumer ring of 64-byte records over
 * caller-provided memory, meant to live in a memfd shared by two
 * processes. One shape serves both queues of onering:
 *
 *   event ring       broker produces struct onering_event, client consumes;
 *   submission ring  client produces struct onering_request, broker consumes.
 *
 * Each side keeps a private handle (struct onering_ring_producer /
 * struct onering_ring_consumer) with its own position, a cached copy of
 * the peer's position and the geometry it was given by its own side (never
 * read back from shared memory). The shared state is two 64-bit words,
 * each on its own cache line, and the slots.
 *
 * Ordering contract
 * -----------------
 * Shared words and their single writer:
 *   tail word  written by the producer only (release store R1);
 *   head word  written by the consumer only (release store R2);
 *   slots      written by the producer only, for positions in [head, tail).
 *
 *   R1  producer: store-release(tail)   after writing the slots it covers.
 *       Synchronises with A1.
 *   A1  consumer: load-acquire(tail)    before reading those slots.
 *       Synchronises with R1: the slot bytes written before R1 are visible.
 *   R2  consumer: store-release(head)   after it has finished reading the
 *       slots it gives back. Synchronises with A2.
 *   A2  producer: load-acquire(head)    before overwriting the freed slots.
 *       Synchronises with R2: the consumer's reads happened before the
 *       producer's overwrite (no torn record for the consumer).
 *
 * Publication is batched: produce/claim only advance the producer's local
 * position; one R1 per batch (onering_ring_publish) makes the batch
 * visible. The consumer releases once per burst.
 *
 * Trust
 * -----
 * The peer's word is written by another process and is untrusted. Each
 * side reads it once (A1 / A2) into a local, checks it against what it
 * knows, and only then uses it:
 *   producer: head may not pass the published tail, may not fall behind
 *             it by more than the capacity, and may not move backwards;
 *   consumer: tail may not fall behind the released head, may not run
 *             ahead of it by more than the capacity, and may not move
 *             backwards.
 * A bad value makes the handle faulted (sticky): every later call returns
 * -EPROTO and onering_ring_fault_str() names what was seen. Indices are
 * always masked local values; no unchecked peer value ever indexes memory,
 * and nothing here asserts on peer data.
 *
 * Positions (_pos) are free-running u64 counters, slot index = pos & mask;
 * all arithmetic is modular, so the ring works across the 2^64 wrap.
 */
#ifndef ONERING_SHM_RING_H
#define ONERING_SHM_RING_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "shm/atomic.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ONERING_RING_SLOT_SIZE 64u

enum onering_ring_fault {
	ONERING_RING_OK = 0,
	ONERING_RING_PEER_AHEAD,   /* peer's position beyond what it may be */
	ONERING_RING_PEER_BEHIND,  /* peer's position behind by more than allowed */
	ONERING_RING_PEER_REWOUND, /* peer's position moved backwards */
};

struct onering_ring_producer {
	ONERING_ATOMIC(uint64_t) *tail_word;       /* ours: R1 */
	const ONERING_ATOMIC(uint64_t) *head_word; /* the consumer's: A2, untrusted */
	unsigned char *slots;
	uint64_t mask;
	uint64_t tail_pos;      /* next position to fill (staged, maybe unpublished) */
	uint64_t published_pos; /* last value stored by R1 */
	uint64_t head_cache;    /* last validated consumer position */
	uint64_t seen_head;     /* raw value behind a fault, for the log */
	uint32_t capacity;
	int fault; /* enum onering_ring_fault, sticky */
};

struct onering_ring_consumer {
	const ONERING_ATOMIC(uint64_t) *tail_word; /* the producer's: A1, untrusted */
	ONERING_ATOMIC(uint64_t) *head_word;       /* ours: R2 */
	const unsigned char *slots;
	uint64_t mask;
	uint64_t head_pos;   /* next position to read (== released position) */
	uint64_t tail_cache; /* last validated producer position */
	uint64_t seen_tail;  /* raw value behind a fault, for the log */
	uint32_t capacity;
	uint32_t peeked; /* records the last peek exposed; release gives back at most these */
	int fault;       /* enum onering_ring_fault, sticky */
};

/* Largest ring: burst counts must stay positive ints. */
#define ONERING_RING_CAPACITY_LIMIT (1u << 30)

static inline bool onering_ring_capacity_valid(uint32_t capacity)
{
	return capacity != 0 && (capacity & (capacity - 1)) == 0 &&
	       capacity <= ONERING_RING_CAPACITY_LIMIT;
}

/**
 * Set both shared words of a new ring to start_pos. Called by the side that
 * creates the memory, before either handle exists or the memory is shared.
 */
static inline void onering_ring_shared_init(ONERING_ATOMIC(uint64_t) *tail_word,
					    ONERING_ATOMIC(uint64_t) *head_word, uint64_t start_pos)
{
	onering_atomic_store(tail_word, start_pos, onering_mo_relaxed);
	onering_atomic_store(head_word, start_pos, onering_mo_relaxed);
}

/**
 * Producer handle over slots (capacity x 64 bytes).
 * @return 0, or -EINVAL if capacity is not a power of two or a pointer is NULL.
 */
static inline int onering_ring_producer_init(struct onering_ring_producer *p,
					     ONERING_ATOMIC(uint64_t) *tail_word,
					     const ONERING_ATOMIC(uint64_t) *head_word, void *slots,
					     uint32_t capacity, uint64_t start_pos)
{
	if (!p || !tail_word || !head_word || !slots || !onering_ring_capacity_valid(capacity))
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->tail_word = tail_word;
	p->head_word = head_word;
	p->slots = (unsigned char *)slots;
	p->capacity = capacity;
	p->mask = capacity - 1;
	p->tail_pos = start_pos;
	p->published_pos = start_pos;
	p->head_cache = start_pos;
	return 0;
}

/**
 * Consumer handle over slots (capacity x 64 bytes).
 * @return 0, or -EINVAL if capacity is not a power of two or a pointer is NULL.
 */
static inline int onering_ring_consumer_init(struct onering_ring_consumer *c,
					     const ONERING_ATOMIC(uint64_t) *tail_word,
					     ONERING_ATOMIC(uint64_t) *head_word, const void *slots,
					     uint32_t capacity, uint64_t start_pos)
{
	if (!c || !tail_word || !head_word || !slots || !onering_ring_capacity_valid(capacity))
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	c->tail_word = tail_word;
	c->head_word = head_word;
	c->slots = (const unsigned char *)slots;
	c->capacity = capacity;
	c->mask = capacity - 1;
	c->head_pos = start_pos;
	c->tail_cache = start_pos;
	return 0;
}

/* Slow path: name what a bad consumer head is. Never inline into the fast path. */
int onering_ring_producer_fault(struct onering_ring_producer *p, uint64_t head);
/* Slow path: name what a bad producer tail is. */
int onering_ring_consumer_fault(struct onering_ring_consumer *c, uint64_t tail);

/** Human-readable name of an enum onering_ring_fault. */
const char *onering_ring_fault_str(int fault);

/*
 * Reload and check the consumer's head. On success the cache is updated and
 * the number of free slots is returned; -EPROTO on a corrupt peer.
 */
static inline int64_t onering_ring_producer_refresh(struct onering_ring_producer *p)
{
	if (ONERING_UNLIKELY(p->fault))
		return -EPROTO;
	/* A2: synchronises with R2 (consumer's release of head). */
	uint64_t head = onering_atomic_load(p->head_word, onering_mo_acquire);
	/* head must lie in [head_cache, published_pos]: one modular compare. */
	if (ONERING_UNLIKELY(head - p->head_cache > p->published_pos - p->head_cache))
		return onering_ring_producer_fault(p, head);
	p->head_cache = head;
	return (int64_t)(p->capacity - (p->tail_pos - head));
}

/** Free slots from the producer's view, reloading the consumer's head. */
static inline int64_t onering_ring_producer_free(struct onering_ring_producer *p)
{
	return onering_ring_producer_refresh(p);
}

/** Unconsumed records (published or staged), reloading the consumer's head. */
static inline int64_t onering_ring_producer_count(struct onering_ring_producer *p)
{
	int64_t free_slots = onering_ring_producer_refresh(p);
	return free_slots < 0 ? free_slots : (int64_t)p->capacity - free_slots;
}

/* Free slots, trying the cache first; reloads only when the cache has < want. */
static inline int64_t onering__ring_space(struct onering_ring_producer *p, uint32_t want)
{
	uint64_t space = p->capacity - (p->tail_pos - p->head_cache);

	if (ONERING_LIKELY(space >= want && !p->fault))
		return (int64_t)space;
	return onering_ring_producer_refresh(p);
}

/**
 * Free slots for up to want records, from the cached head when it shows
 * enough (else reloaded): the producer may write slots tail_pos ..
 * tail_pos + room - 1 in place (onering_ring_slot), then advance tail_pos
 * over what it wrote and publish.
 * @return free slots (0 if full), or -EPROTO if the consumer is corrupt.
 * Context: the producer thread only; no system call.
 */
static inline int64_t onering_ring_producer_room(struct onering_ring_producer *p, uint32_t want)
{
	return onering__ring_space(p, want);
}

/** The slot of position pos in the producer's ring. */
static inline void *onering_ring_slot(const struct onering_ring_producer *p, uint64_t pos)
{
	return p->slots + (pos & p->mask) * ONERING_RING_SLOT_SIZE;
}

/**
 * Copy up to n records into the ring without publishing them.
 * @return records staged (0 if full), or -EPROTO if the consumer is corrupt.
 * Context: the producer thread only; no system call.
 */
static inline int onering_ring_produce_burst(struct onering_ring_producer *p, const void *recs,
					     uint32_t n)
{
	int64_t space = onering__ring_space(p, n);

	if (ONERING_UNLIKELY(space < 0))
		return (int)space;
	if ((uint64_t)space < n)
		n = (uint32_t)space;
	if (n == 0)
		return 0;
	uint64_t idx = p->tail_pos & p->mask;
	uint64_t first = p->capacity - idx;
	if (first > n)
		first = n;
	memcpy(p->slots + idx * ONERING_RING_SLOT_SIZE, recs, first * ONERING_RING_SLOT_SIZE);
	if (n > first)
		memcpy(p->slots, (const unsigned char *)recs + first * ONERING_RING_SLOT_SIZE,
		       (n - first) * ONERING_RING_SLOT_SIZE);
	p->tail_pos += n;
	return (int)n;
}

/**
 * Stage one slot for in-place writing: *slot points at it, and it is
 * published by the next onering_ring_publish(); fill it before that.
 * @return 1, 0 if the ring is full, -EPROTO if the consumer is corrupt.
 * Context: the producer thread only; no system call.
 */
static inline int onering_ring_claim(struct onering_ring_producer *p, void **slot)
{
	int64_t space = onering__ring_space(p, 1);

	if (ONERING_UNLIKELY(space <= 0))
		return (int)space;
	*slot = p->slots + (p->tail_pos & p->mask) * ONERING_RING_SLOT_SIZE;
	p->tail_pos++;
	return 1;
}

/**
 * Make every staged record visible to the consumer: one release store.
 * @return true if anything new was published.
 * Context: the producer thread only; no system call.
 */
static inline bool onering_ring_publish(struct onering_ring_producer *p)
{
	if (p->tail_pos == p->published_pos)
		return false;
	/* R1: synchronises with A1 (consumer's acquire of tail). */
	onering_atomic_store(p->tail_word, p->tail_pos, onering_mo_release);
	p->published_pos = p->tail_pos;
	return true;
}

/**
 * Copy up to n records in and publish them.
 * @return records enqueued, 0 if full, -EPROTO if the consumer is corrupt.
 * Context: the producer thread only; no system call.
 */
static inline int onering_ring_enqueue_burst(struct onering_ring_producer *p, const void *recs,
					     uint32_t n)
{
	int64_t space = onering__ring_space(p, n);

	if (ONERING_UNLIKELY(space < 0))
		return (int)space;
	if ((uint64_t)space < n)
		n = (uint32_t)space;
	if (n == 0)
		return 0;
	/* The new tail is kept in a register from here to the release store
	 * (produce_burst + publish read it back from the handle: at batch 1 that
	 * shape ran at 0.4x of this one, docs/benchmarks-history.md, Ring). */
	uint64_t tail = p->tail_pos;
	uint64_t idx = tail & p->mask;
	uint64_t first = p->capacity - idx;
	if (first > n)
		first = n;
	memcpy(p->slots + idx * ONERING_RING_SLOT_SIZE, recs, first * ONERING_RING_SLOT_SIZE);
	if (n > first)
		memcpy(p->slots, (const unsigned char *)recs + first * ONERING_RING_SLOT_SIZE,
		       (n - first) * ONERING_RING_SLOT_SIZE);
	tail += n;
	p->tail_pos = tail;
	/* R1: synchronises with A1 (consumer's acquire of tail); it publishes
	 * whatever was staged before too. */
	onering_atomic_store(p->tail_word, tail, onering_mo_release);
	p->published_pos = tail;
	return (int)n;
}

/*
 * Reload and check the producer's tail; returns the records available or
 * -EPROTO on a corrupt peer.
 */
static inline int64_t onering_ring_consumer_refresh(struct onering_ring_consumer *c)
{
	if (ONERING_UNLIKELY(c->fault))
		return -EPROTO;
	/* A1: synchronises with R1 (producer's release of tail). */
	uint64_t tail = onering_atomic_load(c->tail_word, onering_mo_acquire);
	/* tail must lie in [tail_cache, head_pos + capacity]: one modular compare. */
	if (ONERING_UNLIKELY(tail - c->tail_cache > c->head_pos + c->capacity - c->tail_cache))
		return onering_ring_consumer_fault(c, tail);
	c->tail_cache = tail;
	return (int64_t)(tail - c->head_pos);
}

/* Available records, trying the cache first. */
static inline int64_t onering__ring_avail(struct onering_ring_consumer *c)
{
	uint64_t avail = c->tail_cache - c->head_pos;

	if (ONERING_LIKELY(avail != 0 && !c->fault))
		return (int64_t)avail;
	return onering_ring_consumer_refresh(c);
}

/** Records published and not yet consumed, reloading the producer's tail. */
static inline int64_t onering_ring_consumer_count(struct onering_ring_consumer *c)
{
	return onering_ring_consumer_refresh(c);
}

/**
 * Is there nothing to read: has the producer published nothing beyond the
 * consumer's released position? One load of the producer's tail (A1), only
 * compared, never used as an index; false for a faulted handle (its calls
 * say -EPROTO). Slots exposed by a peek and not released count as
 * something to read.
 * Context: the consumer thread only; no system call.
 */
static inline bool onering_ring_consumer_idle(const struct onering_ring_consumer *c)
{
	/* A1: synchronises with R1 (producer's release of tail); when it says
	 * idle no slot is read after it. */
	return onering_atomic_load(c->tail_word, onering_mo_acquire) == c->head_pos && !c->fault;
}

/**
 * Copy up to n records out and give their slots back (one release store).
 * The producer's index is reloaded only when the cached view is empty, so a
 * call may return fewer than are published by now; the next call sees them.
 * @return records dequeued, 0 if empty, -EPROTO if the producer is corrupt.
 * Context: the consumer thread only; no system call.
 */
static inline int onering_ring_dequeue_burst(struct onering_ring_consumer *c, void *out,
					     uint32_t n)
{
	int64_t avail = onering__ring_avail(c);

	if (ONERING_UNLIKELY(avail < 0))
		return (int)avail;
	if ((uint64_t)avail < n)
		n = (uint32_t)avail;
	if (n == 0)
		return 0;
	uint64_t head = c->head_pos; /* in a register to the release store (see enqueue) */
	uint64_t idx = head & c->mask;
	uint64_t first = c->capacity - idx;
	if (first > n)
		first = n;
	memcpy(out, c->slots + idx * ONERING_RING_SLOT_SIZE, first * ONERING_RING_SLOT_SIZE);
	if (n > first)
		memcpy((unsigned char *)out + first * ONERING_RING_SLOT_SIZE, c->slots,
		       (n - first) * ONERING_RING_SLOT_SIZE);
	head += n;
	c->head_pos = head;
	/* R2: synchronises with A2 (producer's acquire of head). */
	onering_atomic_store(c->head_word, head, onering_mo_release);
	return (int)n;
}

/**
 * Zero-copy read: *first points at up to max contiguous records (the run
 * stops at the end of the slot array; peek again after release for the
 * rest). The records stay valid until onering_ring_release() gives them back.
 * @return records visible at *first, 0 if empty, -EPROTO if the producer is corrupt.
 * Context: the consumer thread only; no system call.
 */
static inline int onering_ring_peek(struct onering_ring_consumer *c, const void **first,
				    uint32_t max)
{
	int64_t avail = onering__ring_avail(c);

	c->peeked = 0;
	if (ONERING_UNLIKELY(avail <= 0))
		return (int)avail;
	uint64_t idx = c->head_pos & c->mask;
	uint64_t run = c->capacity - idx;
	if (run > (uint64_t)avail)
		run = (uint64_t)avail;
	if (run > max)
		run = max;
	*first = c->slots + idx * ONERING_RING_SLOT_SIZE;
	c->peeked = (uint32_t)run;
	return (int)run;
}

/**
 * Give back n records obtained from the last onering_ring_peek() (one
 * release store). n is clamped to what that peek exposed, so records never
 * seen are never given back; release(0) does nothing.
 * Context: the consumer thread only; no system call.
 */
static inline void onering_ring_release(struct onering_ring_consumer *c, uint32_t n)
{
	if (n > c->peeked)
		n = c->peeked;
	if (n == 0)
		return;
	c->peeked -= n;
	c->head_pos += n;
	/* R2: synchronises with A2 (producer's acquire of head). */
	onering_atomic_store(c->head_word, c->head_pos, onering_mo_release);
}

#ifdef __cplusplus
}
#endif

#endif /* ONERING_SHM_RING_H */
