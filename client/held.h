/* SPDX-License-Identifier: MIT */
/*
 * libonering internals (private to client/, not installed): the batch a
 * queue holds, and what of it is released to the broker when.
 *
 * A queue that is a group member keeps the records of its last batch in
 * the event ring, unreleased, until its next poll/wait: the broker sees
 * them as unconsumed while the caller works on them (which is what sticky
 * and lifo groups go by). So does a queue whose batch has NIC records (the
 * packet bytes live in the slots' packet area). The held records are
 * [head_pos, head_pos + nr) of the ring, head_pos the consumer's released
 * position (free-running u64, slot = pos & mask).
 *
 * In ack mode a group member gives each record back as soon as it and
 * every record before it are done (onering_done()), so a crash redelivers
 * only what was not done: done[i] says record head_pos + i needs no more
 * onering_done(), and the done prefix is released at once. The ring
 * releases in order only, so a done record behind one not done waits.
 *
 * Single-threaded: the queue's consumer thread (onering_done() is called on
 * the thread that polls the queue).
 */
#ifndef ONERING_CLIENT_HELD_H
#define ONERING_CLIENT_HELD_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "shm/abi.h"

#define CLIENT_HELD_MAX 256u /* ack mode, group member: records per batch */

struct client_held {
	uint32_t nr; /* records of the last batch not yet released */
	/* Ack mode, group member: done[i] for record head_pos + i. */
	uint8_t done[CLIENT_HELD_MAX];
};

/* How many records to peek for a batch of up to want: a tracked batch (ack
 * mode, group member) has one done flag per record, CLIENT_HELD_MAX at most. */
static inline uint32_t client_held_want(bool track, uint32_t want)
{
	return track && want > CLIENT_HELD_MAX ? CLIENT_HELD_MAX : want;
}

/*
 * The held record ev (a copy the caller got) stands for: the first one not
 * yet done with the same bytes (records with the same bytes are
 * interchangeable). slots/mask are the ring's, head_pos its released
 * position. Returns its index in the batch, or h->nr if none.
 */
static inline uint32_t client_held_find(const struct client_held *h,
					const struct onering_event *slots, uint64_t mask,
					uint64_t head_pos, const struct onering_event *ev)
{
	uint32_t i;

	for (i = 0; i < h->nr; i++)
		if (!h->done[i] && memcmp(&slots[(head_pos + i) & mask], ev, sizeof(*ev)) == 0)
			break;
	return i;
}

/*
 * Record i of the batch is done. Returns the number of records at the
 * front that are all done now - the caller releases exactly these to the
 * broker - and drops them from the batch (record head_pos + prefix becomes
 * index 0). Returns 0 while an earlier record is not done.
 */
static inline uint32_t client_held_mark(struct client_held *h, uint32_t i)
{
	uint32_t prefix = 0;

	h->done[i] = 1;
	while (prefix < h->nr && h->done[prefix])
		prefix++;
	if (prefix == 0)
		return 0;
	h->nr -= prefix;
	memmove(h->done, h->done + prefix, h->nr);
	return prefix;
}

/* Records the caller may still ask for: the ring's unconsumed count less
 * those it holds already. */
static inline int64_t client_held_pending(int64_t ring_count, uint32_t held)
{
	return ring_count < 0 ? ring_count : ring_count - held;
}

#endif /* ONERING_CLIENT_HELD_H */
