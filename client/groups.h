/* SPDX-License-Identifier: MIT */
/*
 * libonering internals (private to client/, not installed): the group ids
 * an attachment has learned (onering_group_id(), the group of a queue it
 * opened), the ids onering_post() accepts without asking the broker.
 *
 * A set with open addressing (linear probing from a multiplicative hash),
 * CLIENT_GROUPS slots, 0 an empty slot; ids are never removed. Once more
 * than CLIENT_GROUPS ids were learned the set is full and every id passes
 * (the broker still refuses a post to a group that does not exist).
 *
 * Ordering contract
 * -----------------
 * Shared words and their single writer:
 *   slots[i], full  written by client_group_set_add, under att->lock;
 *                   read by client_group_set_has on any queue's thread,
 *                   without the lock.
 *
 *   R7  client_group_set_add: store-release(slots[i], id) / (full, 1).
 *       Synchronises with A7.
 *   A7  client_group_set_has: load-acquire(slots[i]) / (full).
 *       Synchronises with R7. A slot goes from 0 to an id once and never
 *       changes again, so a reader's probe sees either the id or an empty
 *       slot that ends the probe early (the id is then "not yet learned",
 *       as it was before the add).
 */
#ifndef ONERING_CLIENT_GROUPS_H
#define ONERING_CLIENT_GROUPS_H

#include <stdbool.h>
#include <stdint.h>

#include "shm/atomic.h"

#define CLIENT_GROUPS 256u /* group ids an attachment remembers (a power of two) */

struct client_group_set {
	ONERING_ATOMIC(uint32_t) slots[CLIENT_GROUPS]; /* R7 / A7; 0: empty */
	ONERING_ATOMIC(uint32_t) full; /* learned more than CLIENT_GROUPS: any id passes */
};

/* Where id's probe starts. */
static inline uint32_t client_group_slot(uint32_t id)
{
	return (id * 2654435761u) & (CLIENT_GROUPS - 1);
}

/* Learn id (0 is not a group: ignored). Context: the single writer (under
 * att->lock). */
static inline void client_group_set_add(struct client_group_set *set, uint32_t id)
{
	if (id == 0)
		return;
	for (uint32_t k = 0, i = client_group_slot(id); k < CLIENT_GROUPS;
	     k++, i = (i + 1) & (CLIENT_GROUPS - 1)) {
		/* Relaxed: we are the writer. */
		uint32_t v = onering_atomic_load(&set->slots[i], onering_mo_relaxed);
		if (v == id)
			return;
		if (v == 0) {
			/* R7: synchronises with A7 in client_group_set_has. */
			onering_atomic_store(&set->slots[i], id, onering_mo_release);
			return;
		}
	}
	/* R7 (full): synchronises with A7 (full). */
	onering_atomic_store(&set->full, 1u, onering_mo_release);
}

/* Has id been learned (or is the set full)? Any thread; no system call. */
static inline bool client_group_set_has(const struct client_group_set *set, uint32_t id)
{
	for (uint32_t k = 0, i = client_group_slot(id); k < CLIENT_GROUPS;
	     k++, i = (i + 1) & (CLIENT_GROUPS - 1)) {
		/* A7: synchronises with R7 in client_group_set_add. */
		uint32_t v = onering_atomic_load(&set->slots[i], onering_mo_acquire);
		if (v == id)
			return true;
		if (v == 0)
			break;
	}
	/* A7 (full): synchronises with R7 (full). */
	return onering_atomic_load(&set->full, onering_mo_acquire) != 0;
}

#endif /* ONERING_CLIENT_GROUPS_H */
