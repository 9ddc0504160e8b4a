/* SPDX-License-Identifier: MIT */
/*
 * Lanes: hand-offs from one poller to another (lane.c).
 *
 * A queue's event ring has one producer, the poller that serves it. When a
 * poller's decision picks a queue another poller serves, or a client asks
 * (through a submission ring served here) to change a subscription homed on
 * another poller, the work travels on the lane from this poller to that one
 * and the other poller does it on its next loop.
 *
 * A lane is shm/ring.h's SPSC ring in the broker's private memory: the same
 * ordering contract (R1/A1 publish a hand-off, R2/A2 give its slots back)
 * and the same checks, no second hand-written ring. A hand-off takes two
 * 64-byte slots (header, then the record or request); the capacity is even
 * and every hand-off starts at an even position, so a pair never wraps.
 *
 * After the sender publishes it wakes the receiver if that one announced an
 * idle sleep (the fence here pairs with the one in the loop's
 * announce_sleep: either the receiver sees the hand-off before it sleeps,
 * or the sender sees it asleep and kicks it).
 */
#ifndef ONERING_BROKER_LANE_H
#define ONERING_BROKER_LANE_H

#include <stdbool.h>
#include <stdint.h>

#include "shm/abi.h"
#include "shm/ring.h"

struct broker;
struct broker_flow;
struct poller;

#define BROKER_LANE_HANDOFFS 1024 /* hand-offs in flight between two pollers */

enum broker_handoff_kind {
	BROKER_HANDOFF_RECORD = 1,  /* place rec in queue (qslot, qid) */
	BROKER_HANDOFF_REQUEST = 2, /* apply req, which came on queue (qslot, qid) */
};

/* The first slot of a hand-off; the second holds the record or request. */
struct broker_handoff {
	uint32_t kind;            /* enum broker_handoff_kind */
	uint32_t qslot, qid;      /* RECORD: target queue; REQUEST: the queue it came on */
	uint32_t group_id;        /* RECORD: its group (decided again there if the queue left) */
	struct broker_flow *flow; /* RECORD: sticky bucket to account it in, or NULL */
	uint64_t flow_key;
	uint8_t reserved[32];
};
_Static_assert(sizeof(struct broker_handoff) == ONERING_RING_SLOT_SIZE,
	       "a hand-off header is one ring slot");

struct broker_lane {
	/* Shared words, each on its own line: tail written by the sender (R1),
	 * head by the receiver (R2). */
	_Alignas(64) ONERING_ATOMIC(uint64_t) tail_word;
	_Alignas(64) ONERING_ATOMIC(uint64_t) head_word;
	/* The sender's handle (its line), then the receiver's. */
	_Alignas(64) struct onering_ring_producer tx;
	_Alignas(64) struct onering_ring_consumer rx;
	const unsigned char *rx_first; /* receiver: the slot at rx's head */
	uint32_t rx_done;              /* receiver: slots done with, not yet given back */
	_Alignas(64) unsigned char slots[BROKER_LANE_HANDOFFS * 2 * ONERING_RING_SLOT_SIZE];
};

/* Allocate / free the lanes between every two pollers (nr_pollers known). */
int broker_lanes_init(struct broker *b);
void broker_lanes_fini(struct broker *b);

/* The lane from poller src to poller dst (src != dst). */
struct broker_lane *broker_lane(struct broker *b, unsigned src, unsigned dst);

/* Sender (poller from): hand off h and its record or request (64 bytes) to
 * poller to, waking it if it sleeps. 0, or -EAGAIN: the lane is full. */
int broker_lane_send(struct poller *from, struct poller *to, const struct broker_handoff *h,
		     const void *body);

/* Receiver: the oldest hand-off not yet done: 1 and *h, *body; 0 if none. */
int broker_lane_peek(struct broker_lane *l, const struct broker_handoff **h, const void **body);
/* Receiver: done with the hand-off the last peek returned. Gives the slots
 * back every 32 hand-offs, and at broker_lane_flush. */
void broker_lane_done(struct broker_lane *l);
/* Receiver: give back every slot done with (R2). */
void broker_lane_flush(struct broker_lane *l);
/* Nothing published in l is waiting (any thread; a hint, relaxed). */
bool broker_lane_empty(const struct broker_lane *l);

/* Control thread: positions for "every hand-off in l so far is done":
 * broker_lane_sent() now, later broker_lane_done_past(l, that) is true once
 * the receiver has given back everything up to it. */
uint64_t broker_lane_sent(const struct broker_lane *l);
bool broker_lane_done_past(const struct broker_lane *l, uint64_t pos);

#endif /* ONERING_BROKER_LANE_H */
