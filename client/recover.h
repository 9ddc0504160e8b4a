/* SPDX-License-Identifier: MIT */
/*
 * libonering internals (private to client/, not installed): recovery after
 * a broker restart (client/recover.c), and the map from a restarted
 * broker's subscription ids to the handles the application holds.
 *
 * The application's handle (struct onering_sub) is the id and generation
 * the first broker gave. A broker that comes back gives every restored
 * subscription a new id; records carry the new one. So each incarnation
 * after the first has a bmap: broker id -> (handle id, handle generation,
 * broker generation). A queue reads the bmap of the incarnation its ring
 * belongs to (q->bmap; NULL for the first: ids are handles) and returns
 * records with the handle in sub_id/sub_gen, so the application never sees
 * a restart in its ids. Requests go the other way through the entry's
 * bid/bgen (client/sub.h).
 *
 * Ordering contract
 * -----------------
 * Labels continue client/sub.h's and client/groups.h's numbering.
 *   pages[pg]  written once, under att->lock, R14 (store-release after
 *              zeroing); read by A14 (load-acquire) on any queue thread.
 *   an entry   written under att->lock by client_bmap_set, read by any
 *              queue thread in client_bmap_get: a seqlock on bgen.
 *   R15  client_bmap_set: relaxed store(bgen, 0), release fence, relaxed
 *        store(handle), store-release(bgen, new).
 *   A15  client_bmap_get: load-acquire(bgen), relaxed load(handle), acquire
 *        fence, relaxed load(bgen) again; the entry is taken only when both
 *        loads of bgen equal the record's generation. The fences pair as a
 *        seqlock's: a reader that saw the second bgen store saw the handle
 *        written before it, and a reader that raced a rewrite sees bgen
 *        change (or 0) and drops the record - which belonged to a
 *        subscription that was deleted, since the broker reuses an id only
 *        after its subscription is gone.
 */
#ifndef ONERING_CLIENT_RECOVER_H
#define ONERING_CLIENT_RECOVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "shm/atomic.h"
#include "shm/proto.h"

#define CLIENT_BMAP_PAGE 1024u

struct client_bmap_entry {
	ONERING_ATOMIC(uint64_t) handle; /* handle id | handle gen << 32 */
	ONERING_ATOMIC(uint32_t) bgen;   /* 0: empty */
};

/* One incarnation's broker id -> handle map, paged like the sub table. */
struct client_bmap {
	ONERING_ATOMIC(struct client_bmap_entry *) *pages;
	uint32_t nr_pages;
	struct client_bmap *older; /* the incarnations before (freed at detach) */
};

static inline struct client_bmap *client_bmap_new(uint32_t max_ids)
{
	struct client_bmap *m = (struct client_bmap *)calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->nr_pages = (max_ids + CLIENT_BMAP_PAGE - 1) / CLIENT_BMAP_PAGE;
	m->pages = (ONERING_ATOMIC(struct client_bmap_entry *) *)calloc(m->nr_pages,
									sizeof(*m->pages));
	if (!m->pages) {
		free(m);
		return NULL;
	}
	return m;
}

static inline void client_bmap_free(struct client_bmap *m)
{
	while (m) {
		struct client_bmap *older = m->older;
		/* Relaxed: freed at detach, no queue thread left. */
		for (uint32_t i = 0; i < m->nr_pages; i++)
			free(onering_atomic_load(&m->pages[i], onering_mo_relaxed));
		free(m->pages);
		free(m);
		m = older;
	}
}

/* Map broker (bid, bgen) to handle (hid, hgen). Context: under att->lock.
 * Returns false beyond the map or out of memory. */
static inline bool client_bmap_set(struct client_bmap *m, uint32_t bid, uint32_t bgen,
				   uint32_t hid, uint32_t hgen)
{
	uint32_t pg = bid / CLIENT_BMAP_PAGE;

	if (pg >= m->nr_pages)
		return false;
	/* Relaxed: we are the only writer. */
	struct client_bmap_entry *page = onering_atomic_load(&m->pages[pg], onering_mo_relaxed);
	if (!page) {
		page = (struct client_bmap_entry *)calloc(CLIENT_BMAP_PAGE, sizeof(*page));
		if (!page)
			return false;
		/* R14: synchronises with A14 (readers see a zeroed page). */
		onering_atomic_store(&m->pages[pg], page, onering_mo_release);
	}
	struct client_bmap_entry *e = &page[bid % CLIENT_BMAP_PAGE];
	/* R15: the seqlock's write side (see the contract above). */
	onering_atomic_store(&e->bgen, 0u, onering_mo_relaxed);
	onering_fence(onering_mo_release);
	onering_atomic_store(&e->handle, (uint64_t)hid | (uint64_t)hgen << 32, onering_mo_relaxed);
	onering_atomic_store(&e->bgen, bgen, onering_mo_release);
	return true;
}

/* The handle of the record (bid, bgen), or false: not one of ours (any
 * more). Any thread; plain loads, no system call. */
static inline bool client_bmap_get(const struct client_bmap *m, uint32_t bid, uint32_t bgen,
				   uint32_t *hid, uint32_t *hgen)
{
	uint32_t pg = bid / CLIENT_BMAP_PAGE;

	if (pg >= m->nr_pages || bgen == 0)
		return false;
	/* A14: synchronises with R14. */
	struct client_bmap_entry *page = onering_atomic_load(&m->pages[pg], onering_mo_acquire);
	if (!page)
		return false;
	struct client_bmap_entry *e = &page[bid % CLIENT_BMAP_PAGE];
	/* A15: the seqlock's read side (see the contract above). */
	if (onering_atomic_load(&e->bgen, onering_mo_acquire) != bgen)
		return false;
	uint64_t h = onering_atomic_load(&e->handle, onering_mo_relaxed);
	onering_fence(onering_mo_acquire);
	if (onering_atomic_load(&e->bgen, onering_mo_relaxed) != bgen)
		return false;
	*hid = (uint32_t)h;
	*hgen = (uint32_t)(h >> 32);
	return true;
}

/* What a recovering thread prepared for one queue: the new broker's
 * QUEUE_OPEN reply and its four fds, taken by the queue's own thread. */
/* QUEUE_OPEN's reply carries the events and consumer segments, the poller's
 * kick, the queue's bell and the bells segment, in this order. */
#define CLIENT_QUEUE_OPEN_FDS 5

struct client_reopen {
	int status;            /* 0: ready; <0: the new broker refused the queue */
	struct onering_msg rep;
	int fds[CLIENT_QUEUE_OPEN_FDS]; /* -1: none */
	uint32_t not_restored; /* subscriptions of this queue the new broker lacks */
	int first_error;       /* why the first of them failed, or 0 */
	uint64_t died_ns;      /* when the outage was noticed (timers' re-arming) */
	int64_t died_wall_ns;
};

/* Recovery settings and state of an attachment (under rec.lock). */
struct client_recovery {
	bool off;              /* ONERING_ATTACH_NO_RECOVER or $ONERING_RECOVER=0 */
	long trust_uid;
	uint64_t give_up_ns;   /* 0: wait for the broker forever */
	uint64_t step_max_ns;  /* back-off cap between two connects */
	pthread_mutex_t lock;  /* one recovering thread; queue swaps */
	uint64_t died_ns;      /* when this outage was noticed, 0: none */
	int64_t died_wall_ns;  /* the same on CLOCK_REALTIME (wall-clock timers) */
	uint64_t next_try_ns;
	uint64_t step_ns;
	ONERING_ATOMIC(uint32_t) gave_up; /* read without the lock by client_recovering() */
	uint32_t restarts;     /* incarnations after the first */
	struct client_bmap *bmap; /* the current incarnation's, NULL: the first */
};

#endif /* ONERING_CLIENT_RECOVER_H */
