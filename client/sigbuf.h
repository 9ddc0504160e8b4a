/* SPDX-License-Identifier: MIT */
/*
 * libonering internals (private to client/, not installed): the buffer
 * between the library's signal handler and onering_signal_read().
 *
 * Many producers (the handler, on whichever threads signals land, possibly
 * at once), one consumer (the thread that calls onering_signal_read()). A
 * bounded array of CLIENT_SIG_SLOTS slots; head and tail are free-running
 * u64 counters (slot = pos % CLIENT_SIG_SLOTS; they never wrap in practice,
 * and the differences below are modular anyway). A producer claims slot
 * tail only while the consumer has freed it (tail - head < slots): a full
 * buffer counts the signal as lost instead; there are no holes.
 * Async-signal-safe: lock-free atomics and plain stores only.
 *
 * Ordering contract
 * -----------------
 * Shared words and their writers:
 *   tail        claimed by producers with a CAS (C8); several may race;
 *   slot fields written by the one producer that claimed the slot, between
 *               its C8 and its R9;
 *   ready       set by that producer (R9), cleared by the consumer (relaxed,
 *               ordered before R10);
 *   head        written by the consumer only (R10);
 *   lost        counter, relaxed (a statistic, orders nothing).
 *
 *   C8   producer: CAS-acq_rel(tail, t -> t + 1): orders the claims.
 *   A10  producer: load-acquire(head) before claiming. Synchronises with
 *        R10: the consumer's reads of the slot, and its clearing of ready,
 *        happen before the producer rewrites it.
 *   R9   producer: store-release(slot.ready, 1) after the slot's fields.
 *        Synchronises with A9.
 *   A9   consumer: load-acquire(tail), then load-acquire(slot.ready) before
 *        reading the fields. Synchronises with R9 (and with C8 for tail);
 *        a slot claimed but not yet ready reads as empty for now.
 *   R10  consumer: store-release(head, h + 1) after reading the slot and
 *        clearing ready. Synchronises with A10.
 */
#ifndef ONERING_CLIENT_SIGBUF_H
#define ONERING_CLIENT_SIGBUF_H

#include <stdbool.h>
#include <stdint.h>

#include "shm/atomic.h"

#define CLIENT_SIG_SLOTS 128u

/* What the handler keeps of one signal (its siginfo's fields). */
struct client_sig_info {
	uint32_t signo;
	int32_t code;
	int32_t value;
	uint32_t pid, uid;
};

struct client_sig_slot {
	ONERING_ATOMIC(uint32_t) ready; /* R9 / A9 */
	struct client_sig_info info;
};

struct client_sig_buf {
	struct client_sig_slot slots[CLIENT_SIG_SLOTS];
	ONERING_ATOMIC(uint64_t) head; /* next slot the consumer takes (R10 / A10) */
	ONERING_ATOMIC(uint64_t) tail; /* next slot a producer claims (C8 / A9) */
	ONERING_ATOMIC(uint64_t) lost; /* signals that found the buffer full */
};

/*
 * Producer: store info in the next free slot. Returns false (and counts it
 * lost) if the buffer is full. Context: the signal handler, any thread;
 * async-signal-safe.
 */
static inline bool client_sig_buf_push(struct client_sig_buf *b, const struct client_sig_info *info)
{
	uint64_t t = onering_atomic_load(&b->tail, onering_mo_relaxed);

	for (;;) {
		/* A10: synchronises with R10 (the consumer freed the slot). */
		if (t - onering_atomic_load(&b->head, onering_mo_acquire) >= CLIENT_SIG_SLOTS) {
			onering_atomic_fetch_add(&b->lost, 1u, onering_mo_relaxed);
			return false;
		}
		/* C8: orders racing producers; a failure reloads t. */
		if (onering_atomic_cas(&b->tail, &t, t + 1, onering_mo_acq_rel, onering_mo_relaxed)) {
			struct client_sig_slot *s = &b->slots[t % CLIENT_SIG_SLOTS];
			s->info = *info;
			/* R9: synchronises with A9 (the consumer reads the fields). */
			onering_atomic_store(&s->ready, 1u, onering_mo_release);
			return true;
		}
	}
}

/*
 * Consumer: take the oldest signal into *info. Returns false if there is
 * none ready (empty, or the oldest claimed slot is still being written).
 * Context: one consumer thread at a time.
 */
static inline bool client_sig_buf_pop(struct client_sig_buf *b, struct client_sig_info *info)
{
	/* Relaxed: the consumer is head's only writer. */
	uint64_t h = onering_atomic_load(&b->head, onering_mo_relaxed);
	struct client_sig_slot *s = &b->slots[h % CLIENT_SIG_SLOTS];

	/* A9: synchronises with C8 (tail) and R9 (ready). */
	if (h == onering_atomic_load(&b->tail, onering_mo_acquire) ||
	    !onering_atomic_load(&s->ready, onering_mo_acquire))
		return false;
	*info = s->info;
	/* Relaxed: ordered before R10, which publishes it with the free slot. */
	onering_atomic_store(&s->ready, 0u, onering_mo_relaxed);
	/* R10: synchronises with A10 (a producer may rewrite the slot). */
	onering_atomic_store(&b->head, h + 1, onering_mo_release);
	return true;
}

/* Signals that found the buffer full since it was made. */
static inline uint64_t client_sig_buf_lost(const struct client_sig_buf *b)
{
	return onering_atomic_load(&b->lost, onering_mo_relaxed);
}

#endif /* ONERING_CLIENT_SIGBUF_H */
