/* SPDX-License-Identifier: MIT */
/*
 * deliver: the only way a record reaches a consumer's ring (deliver.c).
 *
 * Sources emit here; deliver decides where a record goes and puts it there:
 *   - to a subscription's own queue, merging into a record that already
 *     waits for ring space (pending/coalescing, per queue, oldest first);
 *   - through a group: balance.c chooses a member from a snapshot of the
 *     members; a member this poller serves gets the record now, one served
 *     by another poller gets it through the lane (lane.h); when none may
 *     take it, it waits in this poller's slice of the group (the backlog);
 *   - packets of a NIC burst, into a member's ring and packet area;
 * and at the end of each loop (deliver_flush) it places what waited,
 * publishes every ring written (one release store per queue) and rings the
 * doorbells of consumers that announced sleep.
 *
 * Context: a poller thread, inside its RCU read side; no function here
 * blocks, and none calls back into the loop or into a source.
 */
#ifndef ONERING_BROKER_DELIVER_H
#define ONERING_BROKER_DELIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "shm/abi.h"

struct broker_flow;
struct broker_group;
struct broker_queue;
struct broker_sub;
struct onering_request;
struct poller;

/* One readiness report of s (count notifications, or timer expirations):
 * into its group if it targets one, else into its own queue. Never lost: a
 * full ring or no taker makes it wait, merged with later reports. */
void deliver_sub(struct poller *p, struct broker_sub *s, uint32_t events, uint32_t count,
		 uint64_t ts);

/* A whole record for group g (a post). 0, or -EAGAIN: the group's backlog
 * is at its limit (the caller keeps the post: back-pressure). */
int deliver_post(struct poller *p, struct broker_group *g, const struct onering_event *rec,
		 uint64_t flow_key);

/* A burst of n posts for group g, all of one priority, in order (each
 * record's flow key is its payload.user.flow): under rr, local and least
 * one decision for the burst (balance_split) and one copy per member's run;
 * under sticky and lifo deliver_post per record. Returns how many were
 * taken (placed or waiting in the backlog); fewer than n when the backlog
 * is at its limit (the caller keeps the rest, in order: back-pressure). */
unsigned deliver_post_burst(struct poller *p, struct broker_group *g,
			    const struct onering_event *recs, unsigned n);

/* A record for g that must not be refused (a redelivery, or a hand-off
 * whose queue left the group): into the backlog, decided again later.
 * 0, or -ENOMEM (logged: the record is lost). */
int deliver_requeue(struct poller *p, struct broker_group *g, const struct onering_event *rec,
		    uint64_t flow_key);

/* A record a source built for queue q itself (a word change, a refused
 * post's CONTROL record): 0, -EAGAIN if the ring is full (the source tries
 * again next loop), -EPROTO if the queue faulted. */
int deliver_to_queue(struct poller *p, struct broker_queue *q, const struct onering_event *rec);

/* A record another poller handed off to q, which p serves (lane.h): 0,
 * -EAGAIN full (the lane waits), -EPROTO faulted. flow: the sticky bucket
 * to account it in, or NULL. */
int deliver_handoff(struct poller *p, struct broker_queue *q, const struct onering_event *rec,
		    struct broker_flow *flow);

/* A burst of NIC packets for g: recs[i] with data[i] (lens[i] bytes) into
 * members this poller serves that have a packet area. rr/least/local
 * decide once per burst (again when that queue fills); sticky and lifo per
 * packet. Returns packets placed (the first ones that found room; the rest
 * are the caller's to count as dropped); *truncated: how many were cut. */
unsigned deliver_packets(struct poller *p, struct broker_group *g, struct onering_event *recs,
			 const void *const *data, const uint32_t *lens, unsigned n,
			 unsigned *truncated);

/* s was deleted on its home poller: forget a record of it that waits for
 * ring space (a group backlog drops it when it comes up). */
void deliver_sub_forget(struct broker_sub *s);

/* Once per loop, after the sources: place what waits in group backlogs and
 * queue pending lists, publish every ring written since the last flush and
 * ring the doorbells. Walks every queue of p only while a record waits in a
 * pending list or after p's queues changed; otherwise it costs the group
 * backlogs' flags and the rings written this loop. Returns records placed
 * and published. */
unsigned deliver_flush(struct poller *p, uint64_t ts);

/* Is a record of q's (any priority level) pending, waiting for ring space?
 * Context: q's poller. */
bool deliver_queue_waiting(const struct broker_queue *q);

/* Does a record of p wait for ring space - in a queue's pending list or in
 * its slice of a group's backlog? deliver_flush retries those every loop and
 * the consumer's progress does not wake the poller, so its idle block must
 * end by itself while any waits. Context: p's thread. */
bool deliver_waiting(struct poller *p);

/* The client broke the ring ABI of q: stop serving it and tell the control
 * thread (once). */
void deliver_queue_fault(struct poller *p, struct broker_queue *q, const char *what);

/* Fill record e for s (events, count merged reports, timestamp ts). */
void deliver_write_record(struct onering_event *e, const struct broker_sub *s, uint32_t events,
			  uint32_t count, uint64_t ts);

#endif /* ONERING_BROKER_DELIVER_H */
