/* SPDX-License-Identifier: MIT */
/*
 * A consumer queue as the broker holds it: the event ring it produces into,
 * the submission ring it drains, the doorbell, the watched words.
 */
#ifndef ONERING_BROKER_QUEUE_H
#define ONERING_BROKER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/rcu.h"
#include "shm/abi.h"
#include "shm/proto.h"
#include "shm/ring.h"
#include "shm/segment.h"

enum broker_queue_state {
	BROKER_QUEUE_LIVE = 0,
	BROKER_QUEUE_CLOSING = 1, /* control thread took it back */
	BROKER_QUEUE_FAULTED = 2, /* the client broke the ring ABI */
};

struct broker;
struct broker_bells;
struct broker_client;
struct broker_cred;
struct broker_group;
struct broker_streams;
struct broker_sub;
struct poller;

/* A priority level above 0 of a queue (poller-owned, as evp and the pending
 * list of struct broker_queue are for level 0). */
struct broker_level {
	struct onering_ring_producer evp; /* the level's event ring: we produce */
	struct broker_sub *pending_head;  /* subscriptions of the level waiting for space */
	struct broker_sub **pending_tail;
};

/*
 * Laid out by who writes, each group starting a cache line:
 *   set up  by the control thread before the queue is published; read-only
 *           for pollers after (identity, segments, geometry);
 *   control the control thread's lists (never read by pollers);
 *   poller  the serving poller's own: ring handles, pending list, flags -
 *           the hot line, written every loop;
 *   shared  written by several threads: `inflight` (other pollers add and
 *           the serving poller subtracts, relaxed RMW: a hint for balance),
 *           `state` (below) and the counters (the serving poller writes,
 *           stats read).
 *
 * The state word: LIVE -> CLOSING by the control thread (R4: store-release
 * in broker_queue_begin_close), LIVE -> FAULTED by a poller (acq_rel CAS in
 * deliver_queue_fault). Every poller path that uses a queue it found
 * through a list, a member array, a lane or a subscription loads it with
 * acquire first (A5) and serves only a LIVE queue; after CLOSING the
 * control thread waits a grace period before teardown, so no poller
 * iteration that saw LIVE is still running then.
 */
struct broker_queue {
	/* Set up by the control thread before it is published. */
	ONERING_LINES(setup_lines, 4,
		uint32_t id;
		uint32_t slot;                  /* index in broker->queues */
		pid_t owner_pid;
		uint32_t node;                  /* NUMA node of its memory (its consumer's) */
		struct broker_group *group;     /* member of, or NULL (set before publishing) */
		uint64_t nr_slots;              /* event + submission slots (its client's quota) */
		const struct broker_cred *cred; /* its client's (lives as long as the queue) */
		struct poller *poller;          /* the one that serves it: its only producer */
		struct onering_seg ev_seg;
		struct onering_seg cons_seg;
		struct onering_events_ctl *ectl;
		struct onering_consumer_ctl *cctl; /* the client's: every word untrusted */
		struct onering_doorbell *db;
		int bell_fd;                    /* eventfd: wakes the consumer (protocol 2) */
		unsigned char *pkt_area;        /* packet bytes, pkt_stride per slot, or NULL */
		uint32_t pkt_stride;
		uint32_t nr_words;
		const ONERING_ATOMIC(uint32_t) *words; /* the client's watched words, or NULL */
		uint32_t top_level;             /* priority levels - 1 (0: one ring, evp) */
		struct onering_levels_ctl *lctl; /* the upper levels' tails, or NULL */
		struct broker_bells *bells;     /* its user's bells page on its poller */
		uint32_t bell;                  /* its bit there */
		struct broker_streams *streams; /* (1.8) its stream area, or NULL (stream.h) */
	);
	/* The control thread's. */
	ONERING_LINES(control_lines, 2,
		struct broker_client *client;
		struct cds_list_head poller_node; /* in the poller's RCU list (control adds) */
		struct cds_list_head client_node;
		struct cds_list_head subs;
		struct rcu_head rcu;
		struct cds_wfcq_node fault_node;  /* a poller enqueues it once, on fault */
	);
	/* The serving poller's. */
	ONERING_LINES(poller_lines, 4,
		struct onering_ring_producer evp; /* event ring: we produce */
		struct onering_ring_consumer sqc; /* submission ring: we consume */
		struct broker_sub *pending_head;
		struct broker_sub **pending_tail;
		uint64_t used_loop;        /* poller loop whose head refresh evp.head_cache holds */
		struct broker_word *watch; /* [nr_words] */
		uint32_t *watched;         /* indices being watched */
		uint32_t nr_watched;
		bool dirty;                /* records written since the last publish */
		bool posts_blocked;        /* its POSTs wait for space (a backlog, its ring):
					    * its bell is not set again (source_submit.c) */
		struct broker_queue *dirty_next; /* on the poller's dirty list */
	);
	/* Written by several threads. */
	ONERING_LINES(shared_lines, 1,
		/* hand-offs on their way here, by the level they go to */
		ONERING_ATOMIC(uint64_t) inflight[ONERING_PRIO_LEVELS];
		ONERING_ATOMIC(int) state;         /* enum broker_queue_state */
	);
	ONERING_ATOMIC(uint64_t) ctr[ONERING_QC_NR]; /* the serving poller writes, stats read */
	/* Levels 1..top_level (the serving poller's), and every level's counters
	 * (the serving poller writes, stats read; kept only with top_level > 0). */
	struct broker_level hi[ONERING_PRIO_LEVELS - 1];
	ONERING_ATOMIC(uint64_t) level_ctr[ONERING_PRIO_LEVELS][ONERING_LC_NR];
};
ONERING_STATIC_ASSERT(offsetof(struct broker_queue, client) == 4 * ONERING_CACHE_LINE &&
			      offsetof(struct broker_queue, evp) == 6 * ONERING_CACHE_LINE &&
			      offsetof(struct broker_queue, inflight) == 10 * ONERING_CACHE_LINE &&
			      offsetof(struct broker_queue, ctr) == 11 * ONERING_CACHE_LINE,
		      "struct broker_queue: each writer's fields fit their lines");

/* The level a record of priority prio takes in q: min(prio, levels - 1). */
static inline uint32_t broker_queue_level(const struct broker_queue *q, uint32_t prio)
{
	return prio < q->top_level ? prio : q->top_level;
}

/* The event ring of level (<= top_level) of q. */
static inline struct onering_ring_producer *broker_queue_ring(struct broker_queue *q,
							       uint32_t level)
{
	return level == 0 ? &q->evp : &q->hi[level - 1].evp;
}

/* Records q's consumer has released, summed over its levels (the heads it
 * wrote: untrusted, for display). Any thread. */
uint64_t broker_queue_consumed(const struct broker_queue *q);
/* Published records not yet released, every level, each level's clamped to
 * the capacity (relaxed loads: a gauge). Any thread. */
uint64_t broker_queue_unconsumed(const struct broker_queue *q);

/* A watched word of a queue (poller-owned). */
struct broker_word {
	uint32_t gen;   /* the watch's generation, 0: not watched */
	uint32_t last;  /* value last delivered */
	uint64_t cookie;
};

/* Control thread (queue.c). */
/* node: where the segments' pages go (bound before first touch), or
 * ONERING_NODE_ANY. */
/* (1.8) A stream area for completion-mode sockets: rx receive and tx
 * transmit buffers of buf bytes (rx 0: none). */
struct broker_stream_geom {
	uint32_t rx, tx, buf;
};
int broker_queue_create(struct broker *b, struct broker_client *c, uint32_t ev_capacity,
			uint32_t sq_capacity, uint32_t pkt_stride, uint32_t nr_words, uint32_t nr_levels,
			const struct broker_stream_geom *sg, uint32_t node, struct broker_queue **out);

/* Set up q's rings of levels 1..nr_levels-1 (nr_levels <= ONERING_PRIO_LEVELS)
 * over lctl (their tails), head_words (the consumer's level_head_pos) and
 * slots (nr_levels - 1 rings of q->evp.capacity slots, one after the other),
 * all starting at 0. Before the queue is published; -EINVAL. */
int broker_queue_levels_init(struct broker_queue *q, uint32_t nr_levels,
			     struct onering_levels_ctl *lctl, ONERING_ATOMIC(uint64_t) *head_words,
			     unsigned char *slots);

/* The fds the broker holds per queue: its two segments and its bell
 * (counted against --max-client-fds). */
#define BROKER_QUEUE_FDS 3

/* After publishing to q (R1): wake its consumer if it announced sleep - the
 * doorbell's claim, then one write to its bell. @return true if woken.
 * Context: q's poller, or the control thread once pollers are stopped. */
bool broker_queue_wake(struct broker_queue *q);

/* Pollers, in a read-side section: the live queue in table slot `slot`
 * with this id, or NULL (it closed, or the slot was reused). */
struct broker_queue *broker_queue_lookup(struct broker *b, uint32_t slot, uint32_t id);
/* Mark CLOSING; the caller waits a grace period before broker_queue_teardown(). */
void broker_queue_begin_close(struct broker_queue *q);
/* After the grace period: drop every sub, unlink, free after RCU. */
void broker_queue_teardown(struct broker *b, struct broker_queue *q);
/* Finish a subscription the poller already detached (or that never was). */
void broker_sub_finalize(struct broker *b, struct broker_sub *s);

#endif /* ONERING_BROKER_QUEUE_H */
