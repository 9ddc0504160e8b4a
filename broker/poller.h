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

#include "broker/config.h"
#include "broker/rcu.h"
#include "shm/proto.h"

struct broker;
struct broker_rxq;
struct broker_sub;

/* Timer heap entry: stale once the sub's t_seq moved on (lazy cancel). */
struct timer_entry {
	uint64_t expiry;
	uint64_t key; /* broker_sub_key(id, gen) */
	uint32_t seq;
};

struct poller {
	struct broker *b;
	unsigned idx;
	int cpu;
	int node;
	int epfd;
	int kick_fd; /* eventfd in epfd, key 0: new work or stop */
	pthread_t thread;
	bool started;
	struct cds_list_head queues; /* RCU list of struct broker_queue */
	ONERING_ATOMIC(int) sleeping; /* announced an idle sleep: kick to hand off */
	uint64_t loop_no;             /* poll loops so far */
	uint32_t sleeps;              /* idle sleeps announced (poller_flags' upper bits) */
	uint16_t dist[BROKER_MAX_POLLERS]; /* node distance to each poller's node (SLIT) */
	struct broker_rxq *rxqs;      /* NIC rx queues homed here (fixed at start) */
	unsigned nr_rxqs;
	struct timer_entry *theap;    /* min-heap by expiry */
	uint32_t nr_timers, cap_timers;
	uint32_t nr_word_queues;      /* queues with watched words (a hint to scan) */
	/* Redelivery batches from the control thread (dead consumers). */
	struct cds_wfcq_head redeliver_head;
	struct cds_wfcq_tail redeliver_tail;
	ONERING_ATOMIC(int) stop;
	/* The last broker->settle_seq this poller has run a whole loop under
	 * (it writes, the control thread waits for it: broker_pollers_settle). */
	ONERING_ATOMIC(uint64_t) settled;
	uint64_t settled_seen; /* poller only: what it last stored there */
	ONERING_ATOMIC(uint64_t) ctr[ONERING_PC_NR];
};

/* epoll flags for a subscription mode: EDGE -> ET, ONESHOT -> ET|ONESHOT,
 * LEVEL -> level|ONESHOT (published once, re-armed after collection). */
uint32_t broker_epoll_flags(uint8_t mode, uint32_t events);

int poller_start(struct poller *p);
void poller_stop(struct poller *p);
void poller_kick(struct poller *p);
/* Control thread, after changing settings pollers read (a tune): returns
 * once every poller has run a whole loop that began after the change - so
 * every decision made from then on uses the new settings, and what waited
 * in a backlog was decided again under them. Kicks sleeping pollers; waits
 * at most 1 s for a stalled one (logged). */
void broker_pollers_settle(struct broker *b);
/* Kick p only if it announced an idle sleep (after a release of new work:
 * the fence here pairs with the one in the poller's announce_sleep). */
void poller_kick_if_sleeping(struct poller *p);

/* timer.c (poller side) */
/* Arm (value != 0) or disarm a timer subscription homed on p. */
void timer_arm(struct poller *p, struct broker_sub *s, const struct onering_request *req);
/* Fire what is due; returns timers fired. */
unsigned timers_fire(struct poller *p, uint64_t now);
/* ns until the next expiry (0 if due), or UINT64_MAX. */
uint64_t timers_next(struct poller *p, uint64_t now);
void timers_fini(struct poller *p);
/* Deliver count (expirations, or merged notifications) of s into its queue. */
void poller_deliver(struct poller *p, struct broker_sub *s, uint32_t events, uint32_t count,
		    uint64_t ts);
#endif /* ONERING_BROKER_POLLER_H */
