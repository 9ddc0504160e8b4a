/* SPDX-License-Identifier: MIT */
/*
 * Subscriptions and the table that finds them by (id, generation).
 * The control thread writes the table (rcu_assign_pointer); pollers read
 * it between quiescent states and never free what they find.
 */
#ifndef ONERING_BROKER_REGISTRY_H
#define ONERING_BROKER_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/rcu.h"

struct broker_conn;
struct broker_queue;
struct broker_group;
struct poller;

struct broker_sub {
	uint32_t id;
	uint32_t gen;
	int fd;          /* the broker's duplicate of the client's fd */
	uint32_t events; /* epoll events asked for (home-poller-owned after creation) */
	uint8_t mode;    /* enum onering_sub_mode */
	uint16_t kind;   /* enum onering_event_kind of its records (FD, SIGNAL, TIMER, ...) */
	uint8_t prio;    /* its records' priority, < ONERING_PRIO_LEVELS */
	uint64_t cookie;
	struct broker_queue *queue;  /* the owner: the queue it was added through */
	struct broker_group *group;  /* target group, or NULL: records go to queue */
	struct poller *home;         /* the poller whose epoll watches fd */
	struct cds_list_head queue_node; /* in queue->subs, control thread only */
	struct rcu_head rcu;
	struct cds_wfcq_node reap_node;

	/* Home-poller-owned delivery state. */
	bool pending;            /* waiting for ring space (queue) or in the group backlog */
	ONERING_ATOMIC(uint32_t) dead; /* deleted: ignore every later event (home poller
					* writes; broker_sub_dead() reads anywhere) */
	uint32_t pending_events;
	uint32_t pending_count;  /* readiness notifications (timer: expirations) merged */
	struct broker_sub *pending_next;

	/* Timers (kind TIMER), home-poller-owned. */
	uint64_t t_expiry;  /* CLOCK_MONOTONIC ns of the next expiry */
	uint64_t t_period;  /* 0: one-shot */
	uint32_t t_seq;     /* bumped on every arm/disarm: older heap entries are stale */

	/* Completion-mode sockets (kind STREAM, stream.h): set up by the
	 * control thread before publication, the home poller's after. */
	struct broker_conn *conn;
};

static inline bool broker_sub_dead(const struct broker_sub *s)
{
	return onering_atomic_load(&s->dead, onering_mo_relaxed) != 0;
}

/* Pack (gen, id) into epoll_event.data.u64; 0 is the poller's kick fd. */
static inline uint64_t broker_sub_key(uint32_t id, uint32_t gen)
{
	return ((uint64_t)gen << 32) | id;
}

struct broker_registry {
	struct broker_sub **table; /* RCU pointers, index = id, 0 unused */
	uint32_t *gens;            /* control thread only */
	uint32_t *free_ids;        /* stack of free ids, control thread only */
	uint32_t nr_free;
	uint32_t size;
	uint32_t live;
};

int broker_registry_init(struct broker_registry *r, uint32_t size);
void broker_registry_fini(struct broker_registry *r);
/* Control thread: reserve an id and its next generation. -ENOSPC when full. */
int broker_registry_alloc(struct broker_registry *r, uint32_t *id, uint32_t *gen);
/* Control thread: give back an id that was never published. */
void broker_registry_unalloc(struct broker_registry *r, uint32_t id);
/* Control thread: make sub visible to pollers (release). */
void broker_registry_publish(struct broker_registry *r, struct broker_sub *sub);
/* Control thread: hide sub; its id is reusable after the caller's call_rcu. */
void broker_registry_remove(struct broker_registry *r, struct broker_sub *sub);
/* Poller, in a read-side section: the live sub with this key, or NULL. */
static inline struct broker_sub *broker_registry_lookup(struct broker_registry *r, uint64_t key)
{
	uint32_t id = (uint32_t)key, gen = (uint32_t)(key >> 32);

	if (id == 0 || id >= r->size)
		return NULL;
	struct broker_sub *s = rcu_dereference(r->table[id]);
	if (!s)
		return NULL;
	BROKER_TSAN_OBSERVE(s);
	return s->gen == gen ? s : NULL;
}

#endif /* ONERING_BROKER_REGISTRY_H */
