/* SPDX-License-Identifier: MIT */
/*
 * A consumer queue as the broker holds it: the event ring it produces into,
 * the submission ring it drains, the doorbell, the watched words.
 */
#ifndef ONERING_BROKER_QUEUE_H
#define ONERING_BROKER_QUEUE_H

#include <stdbool.h>
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
struct broker_client;
struct broker_cred;
struct broker_group;
struct broker_sub;
struct poller;

struct broker_queue {
	uint32_t id;
	uint32_t slot;                  /* index in broker->queues */
	pid_t owner_pid;
	struct broker_group *group;     /* member of, or NULL (set before it is published) */
	uint32_t node;                  /* NUMA node of its memory (its consumer's) */
	uint64_t nr_slots;              /* event + submission slots (its client's quota) */
	struct broker_client *client;   /* control thread only */
	const struct broker_cred *cred; /* its client's (lives as long as the queue) */
	struct poller *poller;
	struct cds_list_head poller_node; /* RCU list of the poller */
	struct cds_list_head client_node; /* control thread only */
	struct cds_list_head subs;        /* control thread only */
	struct rcu_head rcu;
	struct cds_wfcq_node fault_node;

	struct onering_seg ev_seg;
	struct onering_seg cons_seg;
	struct onering_events_ctl *ectl;
	struct onering_consumer_ctl *cctl;
	struct onering_doorbell *db;
	unsigned char *pkt_area;        /* packet bytes, pkt_stride per event slot, or NULL */
	uint32_t pkt_stride;
	const ONERING_ATOMIC(uint32_t) *words; /* the client's watched words, or NULL */
	uint32_t nr_words;
	struct broker_word *watch;      /* [nr_words], poller-owned */
	uint32_t *watched;              /* indices being watched, poller-owned */
	uint32_t nr_watched;

	/* Poller-owned. */
	struct onering_ring_producer evp;  /* event ring: we produce */
	struct onering_ring_consumer sqc;  /* submission ring: we consume */
	struct broker_sub *pending_head;
	struct broker_sub **pending_tail;
	bool dirty; /* published records this round */

	uint64_t used_loop; /* poller loop whose head refresh evp.head_cache holds */

	/* Hand-offs other pollers pushed for this queue, not yet placed. */
	ONERING_ATOMIC(uint64_t) inflight;

	ONERING_ATOMIC(int) state;
	ONERING_ATOMIC(uint64_t) ctr[ONERING_QC_NR];
};

/* A watched word of a queue (poller-owned). */
struct broker_word {
	uint32_t gen;   /* the watch's generation, 0: not watched */
	uint32_t last;  /* value last delivered */
	uint64_t cookie;
};

/* Control thread (queue.c). */
/* node: where the segments' pages go (bound before first touch), or
 * ONERING_NODE_ANY. */
int broker_queue_create(struct broker *b, struct broker_client *c, uint32_t ev_capacity,
			uint32_t sq_capacity, uint32_t pkt_stride, uint32_t nr_words, uint32_t node,
			struct broker_queue **out);

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
