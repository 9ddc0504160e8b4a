/* SPDX-License-Identifier: MIT */
/*
 * Lanes between pollers on shm/ring.h (see lane.h for the contract).
 *
 * Ordering, beyond the ring's own R1/A1 and R2/A2:
 *   F1  sender, after publishing (R1): a full fence, then a relaxed load of
 *       the receiver's `sleeping` flag. Pairs with F2.
 *   F2  receiver, in the loop's announce_sleep: store `sleeping`, a full
 *       fence, then look at every lane (broker_lane_empty). Either the
 *       receiver sees the hand-off and does not sleep, or the sender sees
 *       the flag and kicks its eventfd.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "broker/broker.h"
#include "broker/lane.h"
#include "shm/log.h"

#define LANE_SLOTS (BROKER_LANE_HANDOFFS * 2u)
#define LANE_RELEASE_EVERY 64u /* slots: give back every 32 hand-offs */

int broker_lanes_init(struct broker *b)
{
	unsigned n = b->cfg.plan.nr_pollers;

	b->lanes = calloc((size_t)n * n, sizeof(*b->lanes));
	if (!b->lanes)
		return -ENOMEM;
	for (unsigned i = 0; i < n * n; i++) {
		if (i / n == i % n)
			continue; /* a poller never hands off to itself */
		struct broker_lane *l = aligned_alloc(64, sizeof(*l));
		if (!l)
			return -ENOMEM;
		memset(l, 0, sizeof(*l));
		onering_ring_shared_init(&l->tail_word, &l->head_word, 0);
		if (onering_ring_producer_init(&l->tx, &l->tail_word, &l->head_word, l->slots,
					       LANE_SLOTS, 0) < 0 ||
		    onering_ring_consumer_init(&l->rx, &l->tail_word, &l->head_word, l->slots,
					       LANE_SLOTS, 0) < 0) {
			free(l);
			return -EINVAL;
		}
		l->rx_first = l->slots;
		b->lanes[i] = l;
	}
	return 0;
}

void broker_lanes_fini(struct broker *b)
{
	unsigned n = b->cfg.plan.nr_pollers;

	if (b->lanes)
		for (unsigned i = 0; i < n * n; i++)
			free(b->lanes[i]);
	free(b->lanes);
	b->lanes = NULL;
}

struct broker_lane *broker_lane(struct broker *b, unsigned src, unsigned dst)
{
	return b->lanes[src * b->cfg.plan.nr_pollers + dst];
}

int broker_lane_send(struct poller *from, struct poller *to, const struct broker_handoff *h,
		     const void *body)
{
	struct broker_lane *l = broker_lane(from->b, from->idx, to->idx);
	void *hdr = NULL, *slot = NULL;

	/* Both slots or neither: only this sender adds, so the free space
	 * seen here can only grow until the claims below. */
	if (onering__ring_space(&l->tx, 2) < 2)
		return -EAGAIN;
	if (onering_ring_claim(&l->tx, &hdr) != 1 || onering_ring_claim(&l->tx, &slot) != 1)
		return -EAGAIN; /* not reached: space was checked */
	memcpy(hdr, h, sizeof(*h));
	memcpy(slot, body, ONERING_RING_SLOT_SIZE);
	onering_ring_publish(&l->tx); /* R1 (shm/ring.h) */
	/* F1: pairs with F2 in the receiver's announce_sleep. */
	onering_fence(onering_mo_seq_cst);
	if (onering_atomic_load(&to->sleeping, onering_mo_relaxed) &&
	    eventfd_write(to->kick_fd, 1) < 0)
		onering_log(ONERING_LOG_ERR, "poller %u: cannot kick poller %u: %s", from->idx,
			    to->idx, strerror(errno));
	return 0;
}

void broker_lane_flush(struct broker_lane *l)
{
	if (l->rx_done == 0)
		return;
	onering_ring_release(&l->rx, l->rx_done); /* R2 (shm/ring.h) */
	l->rx_first += (size_t)l->rx_done * ONERING_RING_SLOT_SIZE;
	if (l->rx_first == l->slots + sizeof(l->slots))
		l->rx_first = l->slots;
	l->rx_done = 0;
}

int broker_lane_peek(struct broker_lane *l, const struct broker_handoff **h, const void **body)
{
	if (l->rx_done == l->rx.peeked) {
		const void *first = NULL;
		broker_lane_flush(l);
		/* A1 inside when the cached view is empty (shm/ring.h). The lane
		 * is the broker's own memory: a fault would be our bug. */
		int n = onering_ring_peek(&l->rx, &first, LANE_RELEASE_EVERY);
		if (n < 2)
			return 0;
		l->rx_first = first;
	}
	const unsigned char *at = l->rx_first + (size_t)l->rx_done * ONERING_RING_SLOT_SIZE;
	*h = (const struct broker_handoff *)at;
	*body = at + ONERING_RING_SLOT_SIZE;
	return 1;
}

void broker_lane_done(struct broker_lane *l)
{
	l->rx_done += 2;
	if (l->rx_done >= LANE_RELEASE_EVERY)
		broker_lane_flush(l);
}

bool broker_lane_empty(const struct broker_lane *l)
{
	return onering_atomic_load(&l->tail_word, onering_mo_relaxed) ==
	       onering_atomic_load(&l->head_word, onering_mo_relaxed);
}

uint64_t broker_lane_sent(const struct broker_lane *l)
{
	return onering_atomic_load(&l->tail_word, onering_mo_relaxed);
}

bool broker_lane_done_past(const struct broker_lane *l, uint64_t pos)
{
	/* A3: pairs with the receiver's R2 (broker_lane_flush): the hand-offs
	 * before head are done with, nothing holds what they named. */
	return (int64_t)(onering_atomic_load(&l->head_word, onering_mo_acquire) - pos) >= 0;
}
