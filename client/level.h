/* SPDX-License-Identifier: MIT */
/*
 * libonering internals (private to client/, not installed): the LEVEL
 * bookkeeping of one queue.
 *
 * The broker reports a LEVEL source once and then leaves it alone until the
 * client re-arms it. The client keeps the ids it has delivered and not yet
 * collected (the outstanding set); every collect_every records returned
 * (and before the consumer sleeps) onering_collect() polls their fds once:
 * a source still ready goes back on the re-delivery queue and stays
 * outstanding, one no longer ready is re-armed at the broker and leaves
 * the set.
 *
 * Single-threaded: everything here belongs to the queue's consumer thread.
 */
#ifndef ONERING_CLIENT_LEVEL_H
#define ONERING_CLIENT_LEVEL_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shm/abi.h"

/* Subscription ids delivered and not collected, in delivery order. */
struct client_level_set {
	uint32_t *ids;
	uint32_t nr;
	uint32_t cap;
};

/* Still-ready LEVEL sources found by a collection, returned again first. */
struct client_redeliver {
	struct onering_event *evs;
	uint32_t nr;
	uint32_t cap;
};

/* Append id (no duplicate check: see client_level_note). 0 or -ENOMEM. */
static inline int client_level_add(struct client_level_set *set, uint32_t id)
{
	if (set->nr == set->cap) {
		uint32_t n = set->cap ? set->cap * 2 : 16;
		uint32_t *t = (uint32_t *)realloc(set->ids, n * sizeof(*t));
		if (!t)
			return -ENOMEM;
		set->ids = t;
		set->cap = n;
	}
	set->ids[set->nr++] = id;
	return 0;
}

/*
 * A record of LEVEL subscription id was delivered: make it outstanding
 * unless it is already (*outstanding, the subscription's flag, keeps the
 * set free of duplicates). Out of memory leaves it not outstanding: it is
 * then neither collected nor re-armed, as before the record.
 */
static inline void client_level_note(struct client_level_set *set, bool *outstanding, uint32_t id)
{
	if (*outstanding)
		return;
	*outstanding = true;
	if (client_level_add(set, id) < 0)
		*outstanding = false;
}

/* Drop id from the set, keeping the order of the rest. */
static inline void client_level_del(struct client_level_set *set, uint32_t id)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < set->nr; i++)
		if (set->ids[i] != id)
			set->ids[n++] = set->ids[i];
	set->nr = n;
}

/* Is a collection due before returning more records? After collect_every
 * records since the last one, and only with something outstanding. */
static inline bool client_level_collect_due(const struct client_level_set *set,
					    uint32_t since_collect, uint32_t collect_every)
{
	return set->nr != 0 && since_collect >= collect_every;
}

/* What a collection's poll() says is still ready for a subscription that
 * asked for events: its own events, and errors and hang-ups always. */
static inline uint32_t client_level_ready(short revents, uint32_t events)
{
	return (uint32_t)revents & (events | POLLERR | POLLHUP);
}

/* Queue e for re-delivery. 0 or -ENOMEM. */
static inline int client_redeliver_push(struct client_redeliver *rd, const struct onering_event *e)
{
	if (rd->nr == rd->cap) {
		uint32_t n = rd->cap ? rd->cap * 2 : 16;
		struct onering_event *t = (struct onering_event *)realloc(rd->evs, n * sizeof(*t));
		if (!t)
			return -ENOMEM;
		rd->evs = t;
		rd->cap = n;
	}
	rd->evs[rd->nr++] = *e;
	return 0;
}

/* Move up to max queued events, oldest first, to out; returns how many. */
static inline uint32_t client_redeliver_take(struct client_redeliver *rd, struct onering_event *out,
					     uint32_t max)
{
	uint32_t k = rd->nr < max ? rd->nr : max;

	if (k == 0)
		return 0;
	memcpy(out, rd->evs, k * sizeof(*out));
	memmove(rd->evs, rd->evs + k, (rd->nr - k) * sizeof(*out));
	rd->nr -= k;
	return k;
}

/* Drop the first n queued events (onering_advance over a peeked run). */
static inline void client_redeliver_drop(struct client_redeliver *rd, uint32_t n)
{
	if (n > rd->nr)
		n = rd->nr;
	if (n == 0)
		return; /* evs may still be NULL */
	memmove(rd->evs, rd->evs + n, (rd->nr - n) * sizeof(*rd->evs));
	rd->nr -= n;
}

/* Drop every queued event of subscription id, keeping the order of the rest. */
static inline void client_redeliver_del(struct client_redeliver *rd, uint32_t id)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < rd->nr; i++)
		if (rd->evs[i].sub_id != id)
			rd->evs[n++] = rd->evs[i];
	rd->nr = n;
}

#endif /* ONERING_CLIENT_LEVEL_H */
