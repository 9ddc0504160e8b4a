/* SPDX-License-Identifier: MIT */
/*
 * A poller: one thread per configured core, the broker's hot loop
 * (poller.c). It owns the sources homed on it and produces into the event
 * rings of the queues it serves.
 */
#ifndef ONERING_BROKER_POLLER_H
#define ONERING_BROKER_POLLER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>

#include "broker/clock.h"
#include "broker/config.h"
#include "broker/rcu.h"
#include "broker/source.h"
#include "shm/atomic.h"
#include "shm/proto.h"

struct broker;
struct broker_rxq;
struct broker_sub;

/*
 * Laid out by who writes: what the control thread set before the poller
 * started (read-only since), what other threads write, what the poller
 * writes and others read, and the poller's own - each group on its own
 * cache lines, so a kick or a settle never invalidates the hot loop's
 * state.
 *
 * Ordering of the shared words (labels used in poller.c and lane.c):
 *   sleeping  poller: relaxed store, then F2 (seq_cst fence) in
 *             announce_sleep; senders: F1 (fence) then relaxed load
 *             (lane.c, and a client's submit via NEED_WAKEUP).
 *   stop      control: store-release (R5, poller_stop); poller:
 *             load-acquire each loop (A8).
 *   settled   poller: store-release after a whole loop (R6); control:
 *             load-acquire (A9, broker_pollers_settle).
 *   b->settle_seq  control: store-release (R8) after changing group
 *             settings; poller: load-acquire at the top of a loop (A10).
 *   b->nr_groups_pub  control: store-release (R7, group.c); poller:
 *             load-acquire in deliver_flush and before an idle block
 *             (A11, deliver_waiting).
 *   queues_gen  control: release RMW after changing `queues` (R12);
 *             poller: load-acquire in deliver_flush (A15).
 *   bells, nr_bells  control (R11, bells.c); poller (A14, source_submit.c).
 */
/* Queues whose blocked POSTs a poller lists (source_submit.c); more make it
 * look at every ring once a backlog moves. */
#define POLLER_POSTS_BLOCKED_MAX 16

struct poller {
	/* Set up by the control thread before the poller starts. */
	ONERING_LINES(setup_lines, 4,
		struct broker *b;
		unsigned idx;
		int cpu;
		int node;
		int epfd;    /* the poller's wait set: fd sources and the kick fd */
		int kick_fd; /* eventfd in epfd, key 0: new work or stop */
		bool started;
		pthread_t thread;
		void *stack;       /* the thread's stack, bound to node (poller_start) */
		size_t stack_size; /* with its guard page */
		struct broker_rxq *rxqs; /* NIC rx queues homed here (fixed at start) */
		unsigned nr_rxqs;
		unsigned nr_sources;
		struct broker_source *source[BROKER_SOURCE_NR];  /* by kind, NULL: none here */
		struct broker_source *sources[BROKER_SOURCE_NR]; /* in polling order */
	);
	uint16_t dist[BROKER_MAX_POLLERS]; /* node distance to each poller's node (SLIT) */

	/* Written by other threads. */
	ONERING_LINES(foreign_lines, 4,
		struct cds_list_head queues; /* RCU list of struct broker_queue (control) */
		/* Redelivery batches from the control thread (dead consumers). */
		struct cds_wfcq_head redeliver_head;
		struct cds_wfcq_tail redeliver_tail;
		ONERING_ATOMIC(int) stop;
		/* Client fds in epfd (the control thread adds and finalizes
		 * them): 0 lets the fd source skip epoll_wait while the loop is
		 * awake. A hint, relaxed: what it misses wakes the idle sleep. */
		ONERING_ATOMIC(uint32_t) fd_subs;
		/* Bumped by the control thread after each change of `queues`
		 * (R12: release; deliver_flush's A15): the poller then counts
		 * its queues again. */
		ONERING_ATOMIC(uint32_t) queues_gen;
		/* Submission bells pages, one per user with queues here (bells.h:
		 * R11/A14). */
		struct broker_bells **bells;
		ONERING_ATOMIC(uint32_t) nr_bells;
		unsigned max_bells;
	);

	/* Written by the poller, read by others. */
	ONERING_LINES(published_lines, 3,
		ONERING_ATOMIC(int) sleeping; /* announced an idle sleep: kick to hand off */
		/* The last broker->settle_seq this poller has run a whole loop under
		 * (the control thread waits for it: broker_pollers_settle). */
		ONERING_ATOMIC(uint64_t) settled;
		ONERING_ATOMIC(uint64_t) ctr[ONERING_PC_NR]; /* read by stats */
	);

	/* The poller's own. */
	uint64_t loop_no;      /* poll loops so far */
	uint64_t settled_seen; /* what it last stored in settled */
	uint32_t sleeps;       /* idle sleeps announced (poller_flags' upper bits) */
	bool epoll_due;        /* the idle sleep saw epfd readable: harvest it */
	bool harvest_batched;  /* this loop's epoll_wait took more than one readiness
				* event and emptied the ready list (--coalesce-us) */
	bool full_look;        /* look at every submission ring, bell or not (after a sleep;
				* at most once a ms while more posters wait than listed) */
	/* source_submit.c's: a queue's POSTs wait for room since the last full
	 * look; the last full look's clock; the queues whose POSTs wait (slot
	 * and id: looked up again, never kept as pointers across loops), or
	 * too many to list. */
	bool posts_blocked;
	bool posts_blocked_many;
	bool backlog_moved;    /* deliver.c: a backlog moved while POSTs waited */
	uint32_t nr_posts_blocked;
	uint64_t posts_look_ns;
	uint64_t bells_sweep_ns; /* the last summary_sweep of every summary page (source_submit.c) */
	struct { uint32_t slot, id; } posts_blocked_q[POLLER_POSTS_BLOCKED_MAX];
	/* deliver.c's: the queues written this loop (published and emptied by
	 * deliver_flush), queues with pending records at the last count (or
	 * more: an append adds one), the queues_gen that count saw, and a
	 * fault since (a queue no longer served). */
	struct broker_queue *dirty;
	uint32_t nr_waiting;
	uint32_t queues_gen_seen;
	bool recount;
	struct broker_clock clock; /* the loop's clock (clock.h) */
};
ONERING_STATIC_ASSERT(offsetof(struct poller, queues) % ONERING_CACHE_LINE == 0 &&
			      offsetof(struct poller, sleeping) % ONERING_CACHE_LINE == 0 &&
			      offsetof(struct poller, loop_no) % ONERING_CACHE_LINE == 0,
		      "struct poller: each writer's fields start a cache line");

/* Control thread: create p's sources, its wait set, and start its thread. */
int poller_start(struct poller *p);
/* What poller_start() sets up but the thread and its stack (a harness that
 * runs the loop itself, tests/fuzz): 0 or -errno. */
int poller_init(struct poller *p);
/* On the thread that runs p's loops, before the first: its clock and the
 * sources' thread_start. */
void poller_thread_init(struct poller *p);
/* One loop's work on p's thread: every source polled, then the deliveries
 * flushed, the loops counter counted; returns the work done (0: idle). The
 * caller bumps p->loop_no and fills ctx (now_ns, loop_no) before. */
unsigned poller_loop_work(struct poller *p, struct broker_poll_ctx *ctx);
/* Control thread: stop and join p, free its sources. */
void poller_stop(struct poller *p);
/* Any thread: wake p (an eventfd write), asleep or not. */
void poller_kick(struct poller *p);
/* Control thread, after changing settings pollers read (a tune): returns
 * once every poller has run a whole loop that began after the change - so
 * every decision made from then on uses the new settings, and what waited
 * in a backlog was decided again under them. Kicks sleeping pollers; waits
 * at most 1 s for a stalled one (logged). */
void broker_pollers_settle(struct broker *b);

#endif /* ONERING_BROKER_POLLER_H */
