/* SPDX-License-Identifier: MIT */
/*
 * The subscription table: id -> struct broker_sub *, RCU-protected.
 * Written by the control thread only; pollers look subscriptions up by the
 * (gen, id) key epoll hands back, so an event harvested for a deleted
 * subscription (or for an id since reused) finds nothing.
 */
#include <errno.h>
#include <stdlib.h>

#include "broker/broker.h"

#ifdef ONERING_TSAN
char broker_tsan_grace;
#endif

int broker_registry_init(struct broker_registry *r, uint32_t size)
{
	r->size = size;
	r->table = calloc(size, sizeof(*r->table));
	r->gens = calloc(size, sizeof(*r->gens));
	r->free_ids = calloc(size, sizeof(*r->free_ids));
	if (!r->table || !r->gens || !r->free_ids) {
		broker_registry_fini(r);
		return -ENOMEM;
	}
	/* Hand out low ids first; id 0 is never used (it keys the kick fd). */
	r->nr_free = 0;
	for (uint32_t id = size - 1; id >= 1; id--)
		r->free_ids[r->nr_free++] = id;
	r->live = 0;
	return 0;
}

void broker_registry_fini(struct broker_registry *r)
{
	free(r->table);
	free(r->gens);
	free(r->free_ids);
	r->table = NULL;
	r->gens = NULL;
	r->free_ids = NULL;
	r->size = 0;
}

int broker_registry_alloc(struct broker_registry *r, uint32_t *id, uint32_t *gen)
{
	if (r->nr_free == 0)
		return -ENOSPC;
	*id = r->free_ids[--r->nr_free];
	/* Generation 0 is never handed out: a zeroed record never matches. */
	if (++r->gens[*id] == 0)
		r->gens[*id] = 1;
	*gen = r->gens[*id];
	return 0;
}

void broker_registry_unalloc(struct broker_registry *r, uint32_t id)
{
	r->free_ids[r->nr_free++] = id; /* never published: no grace period needed */
}

void broker_registry_publish(struct broker_registry *r, struct broker_sub *sub)
{
	/* Release: the sub's fields are visible to a poller that sees the pointer. */
	BROKER_TSAN_PUBLISH(sub);
	rcu_assign_pointer(r->table[sub->id], sub);
	r->live++;
}

void broker_registry_remove(struct broker_registry *r, struct broker_sub *sub)
{
	rcu_assign_pointer(r->table[sub->id], NULL);
	/*
	 * The id can be reused at once: a poller still holding the old pointer
	 * keeps it until its next quiescent state (the memory goes through
	 * call_rcu), and epoll keys carry the generation, which the next
	 * alloc of this id bumps.
	 */
	r->free_ids[r->nr_free++] = sub->id;
	r->live--;
}
