/* SPDX-License-Identifier: MIT */
/*
 * libonering internals (private to client/, not installed): the client's
 * table of its subscriptions and the cancellation check.
 *
 * Every record carries (sub_id, sub_gen). The client keeps, per id, the
 * generation of the subscription it has there (0: none live); a record is
 * returned only while that generation equals the record's, and
 * onering_del() zeroes the generation before it returns, so no record of a
 * deleted subscription is ever returned, even one already in the ring.
 * Generation 0 never names a live subscription.
 *
 * The table is shared by every queue of an attachment (a group's record
 * may reach any of them): pages of CLIENT_SUB_PAGE entries, allocated under
 * att->lock and never freed before detach, so queue threads read them
 * without a lock.
 *
 * Ordering contract
 * -----------------
 * Labels are numbered after shm/ring.h (R1, R2, A1, A2) and shm/doorbell.h
 * (R3, A3, F1, F2), so that one label names one edge in shm/ and client/.
 *
 * Shared words and their writers:
 *   pages[pg]     written once, under att->lock, by client_sub_slot (R4);
 *   s->gen        written under att->lock by client_sub_publish (R5), and
 *                 zeroed by client_sub_cancel (S1) on the thread that deletes;
 *   s->inflight   ack mode: raised by client_sub_take (S2) on the thread
 *                 that takes a record, lowered by client_sub_put (R6) on
 *                 the thread that is done with it;
 *   the other fields of struct client_sub: written before R5 (add), read
 *                 after A5; level_out only by the queue that delivers the
 *                 subscription's records (LEVEL subscriptions are private).
 *
 *   R4  client_sub_slot: store-release(pages[pg]) after zeroing the page.
 *       Synchronises with A4.
 *   A4  client_sub_at: load-acquire(pages[pg]) before touching an entry.
 *       Synchronises with R4: the reader sees a zeroed page, never garbage.
 *   R5  client_sub_publish: store-release(gen) after mode, fd, events,
 *       cookie are written. Synchronises with A5.
 *   A5  client_sub_live: load-acquire(gen). Synchronises with R5: a thread
 *       that sees the generation sees the fields written before it.
 *   S1  client_sub_cancel: seq_cst store(gen, 0), then seq_cst load(inflight).
 *   S2  client_sub_take: seq_cst fetch_add(inflight, 1), then seq_cst
 *       load(gen). S1 and S2 are a Dekker pair: in the single total order
 *       of seq_cst operations one of the two comes first, so either the
 *       taker sees gen 0 (and backs out) or the canceller sees the count
 *       (and reports the record busy). Never both miss.
 *   R6  client_sub_put (and the taker's back-out): fetch_add-release(inflight,
 *       -1) after the thread's work on the record. Synchronises with A6.
 *   A6  client_sub_inflight: load-acquire(inflight). Synchronises with R6:
 *       onering_teardown() that sees 0 sees everything done with the records.
 */
#ifndef ONERING_CLIENT_SUB_H
#define ONERING_CLIENT_SUB_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "shm/atomic.h"

#define CLIENT_SUB_PAGE 1024u

struct onering_queue;

/*
 * What the client remembers of one of its subscriptions. The entry's index
 * and gen are the handle the application holds (struct onering_sub); they
 * are the broker's id and generation until a broker restart, after which
 * the restored subscription has new broker ids (bid, bgen) and the handle
 * stays (client/recover.h).
 */
struct client_sub {
	ONERING_ATOMIC(uint32_t) gen; /* 0: not live; R5 (add), S1 (del) */
	ONERING_ATOMIC(uint32_t) inflight; /* ack mode: records taken, not done (S2, R6) */
	uint8_t mode;
	bool level_out; /* LEVEL record delivered, not collected yet */
	int fd;         /* the caller's fd, for the collection poll() */
	uint32_t events;
	uint64_t cookie;
	/* The broker's name for it now: what requests carry. Written under
	 * att->lock (add, recovery); relaxed (a queue thread copies them into
	 * requests, and a request made while they change goes to a broker
	 * that is gone: recover.h). */
	ONERING_ATOMIC(uint32_t) bid;
	ONERING_ATOMIC(uint32_t) bgen;
	uint32_t last_gen; /* the last handle generation of this slot (under att->lock) */
	/* How to add it again (recovery); written under att->lock. */
	struct onering_queue *owner; /* the queue it was added through */
	uint32_t group_hid;          /* target group as the application named it, 0: none */
	int32_t home_node;
	uint16_t kind;
	/* A timer's arming (kind TIMER), by the owner queue's thread: the
	 * next expiry on its clock (0: disarmed), the period, the flags. */
	uint64_t t_expiry;
	uint64_t t_period;
	uint32_t t_flags;
};

/* Subscriptions by id: nr_pages pages of CLIENT_SUB_PAGE entries. */
struct client_sub_table {
	ONERING_ATOMIC(struct client_sub *) *pages; /* R4 / A4; NULL: not allocated */
	uint32_t nr_pages;
};

/* The entry for id, or NULL if no page holds it. Any thread. */
static inline struct client_sub *client_sub_at(const struct client_sub_table *t, uint32_t id)
{
	if (id / CLIENT_SUB_PAGE >= t->nr_pages)
		return NULL;
	/* A4: synchronises with R4 (client_sub_slot's release of the page). */
	struct client_sub *page = onering_atomic_load(&t->pages[id / CLIENT_SUB_PAGE],
						      onering_mo_acquire);
	return page ? &page[id % CLIENT_SUB_PAGE] : NULL;
}

/* The entry for id, allocating its page; NULL beyond the table or out of
 * memory. Context: under att->lock (the single writer of pages). */
static inline struct client_sub *client_sub_slot(struct client_sub_table *t, uint32_t id)
{
	uint32_t pg = id / CLIENT_SUB_PAGE;

	if (pg >= t->nr_pages)
		return NULL;
	/* Relaxed: we are the writer (the lock orders us after earlier ones). */
	struct client_sub *page = onering_atomic_load(&t->pages[pg], onering_mo_relaxed);
	if (!page) {
		page = (struct client_sub *)calloc(CLIENT_SUB_PAGE, sizeof(*page));
		if (!page)
			return NULL;
		/* R4: synchronises with A4 in client_sub_at (readers see zeroes). */
		onering_atomic_store(&t->pages[pg], page, onering_mo_release);
	}
	return &page[id % CLIENT_SUB_PAGE];
}

/* Make s live as generation gen; fill its other fields first.
 * Context: under att->lock. */
static inline void client_sub_publish(struct client_sub *s, uint32_t gen)
{
	/* R5: synchronises with A5 (a thread that sees gen sees the fields). */
	onering_atomic_store(&s->gen, gen, onering_mo_release);
}

/*
 * The cancellation check: is the subscription at s (NULL: no entry) still
 * the one generation gen names? False for gen 0, for an entry deleted
 * since, and for one re-used by a later subscription. Any thread.
 */
static inline bool client_sub_live(const struct client_sub *s, uint32_t gen)
{
	/* A5: synchronises with R5 (client_sub_publish). */
	return s && gen != 0 && onering_atomic_load(&s->gen, onering_mo_acquire) == gen;
}

/*
 * The consume path's lookup: the entry of subscription id while generation
 * gen is live there, else NULL (client_sub_at, then client_sub_live: A4,
 * A5). t may be the caller's copy of the table (pages and nr_pages never
 * change after attach), taken once per batch of records. Any thread.
 */
static inline struct client_sub *client_sub_find_live(const struct client_sub_table *t,
						      uint32_t id, uint32_t gen)
{
	struct client_sub *s = client_sub_at(t, id);

	return client_sub_live(s, gen) ? s : NULL;
}

/*
 * Ack mode: count a record of generation gen as in flight, then check the
 * generation again (S2, against a delete racing on another thread).
 * Returns false, the count unchanged, if the subscription was cancelled:
 * drop the record.
 */
static inline bool client_sub_take(struct client_sub *s, uint32_t gen)
{
	/* S2: seq_cst, pairs with S1 in client_sub_cancel (one sees the other). */
	onering_atomic_fetch_add(&s->inflight, 1u, onering_mo_seq_cst);
	if (onering_atomic_load(&s->gen, onering_mo_seq_cst) != gen) {
		/* R6: the back-out; synchronises with A6. */
		onering_atomic_fetch_add(&s->inflight, (uint32_t)-1, onering_mo_release);
		return false;
	}
	return true;
}

/* Ack mode: a record taken by client_sub_take is done. */
static inline void client_sub_put(struct client_sub *s)
{
	/* R6: what the thread did with the record happens before a teardown
	 * that sees the count drop (A6). */
	onering_atomic_fetch_add(&s->inflight, (uint32_t)-1, onering_mo_release);
}

/* Records of s taken and not yet done (ack mode). */
static inline uint32_t client_sub_inflight(const struct client_sub *s)
{
	/* A6: synchronises with R6 (client_sub_put). */
	return onering_atomic_load(&s->inflight, onering_mo_acquire);
}

/*
 * The cancellation itself: from here on client_sub_live() and
 * client_sub_take() refuse every record of s. Returns true if records were
 * in flight at that moment (ack mode: onering_teardown() waits for them).
 */
static inline bool client_sub_cancel(struct client_sub *s)
{
	/* S1: seq_cst, pairs with S2 in client_sub_take (one sees the other). */
	onering_atomic_store(&s->gen, 0u, onering_mo_seq_cst);
	return onering_atomic_load(&s->inflight, onering_mo_seq_cst) != 0;
}

#endif /* ONERING_CLIENT_SUB_H */
