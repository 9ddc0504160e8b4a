/* SPDX-License-Identifier: MIT */
/*
 * Slow paths of the SPSC ring (shm/ring.h): naming a corrupt peer. These
 * run once per faulted handle; the fast paths stay inline in ring.h.
 */
#include "shm/ring.h"

int onering_ring_producer_fault(struct onering_ring_producer *p, uint64_t head)
{
	/* Classify against the published tail: that is all the consumer saw. */
	if ((int64_t)(head - p->published_pos) > 0)
		p->fault = ONERING_RING_PEER_AHEAD;
	else if (p->published_pos - head > p->capacity)
		p->fault = ONERING_RING_PEER_BEHIND;
	else
		p->fault = ONERING_RING_PEER_REWOUND;
	p->seen_head = head;
	return -EPROTO;
}

int onering_ring_consumer_fault(struct onering_ring_consumer *c, uint64_t tail)
{
	if ((int64_t)(tail - c->head_pos) < 0)
		c->fault = ONERING_RING_PEER_BEHIND;
	else if (tail - c->head_pos > c->capacity)
		c->fault = ONERING_RING_PEER_AHEAD;
	else
		c->fault = ONERING_RING_PEER_REWOUND;
	c->seen_tail = tail;
	return -EPROTO;
}

const char *onering_ring_fault_str(int fault)
{
	switch (fault) {
	case ONERING_RING_OK:
		return "no fault";
	case ONERING_RING_PEER_AHEAD:
		return "peer position ahead of what it may be";
	case ONERING_RING_PEER_BEHIND:
		return "peer position behind by more than the ring allows";
	case ONERING_RING_PEER_REWOUND:
		return "peer position moved backwards";
	default:
		return "unknown ring fault";
	}
}
