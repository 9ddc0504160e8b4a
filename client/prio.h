/* SPDX-License-Identifier: MIT */
/*
 * Priority levels of a queue, the consumer's side (ABI 1.6, private to
 * client/): the rings of levels 1..nr_levels-1 that follow the slots (and
 * the packet area) of a queue's events segment, mapped and checked here;
 * client/queue.c takes records from the highest level that has any.
 *
 * Everything read here is the broker's (a segment the client maps
 * read-only) and checked before use: the level count against
 * ONERING_PRIO_LEVELS and what the queue asked for, the rings against the
 * mapping's size. The rings' own words follow shm/ring.h's contract (A1 on
 * each level's tail, R2 on each level's head in consumer_ctl.level_head_pos).
 */
#ifndef ONERING_CLIENT_PRIO_H
#define ONERING_CLIENT_PRIO_H

#include <stdint.h>
#include <stdio.h>

#include "shm/abi.h"
#include "shm/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Set up the consumer handles of levels 1..levels-1 (lvc[k - 1] for level k)
 * of an events segment mapped at ev (ev_size bytes) whose control block is
 * ectl, with the consumer indices in cctl.
 * @param want   the levels the queue asked for and the broker granted (1..)
 * @return 0; -EPROTO (with a reason in err) when the segment does not say
 *   the same or its rings do not fit the mapping.
 * Context: the opener, before the queue is used; no system call.
 */
static inline int client_prio_map(struct onering_ring_consumer *lvc, const unsigned char *ev,
				  uint64_t ev_size, const struct onering_events_ctl *ectl,
				  struct onering_consumer_ctl *cctl, uint32_t want,
				  uint64_t start_pos, char *err, size_t err_size)
{
	uint32_t levels = ectl->nr_levels ? ectl->nr_levels : 1;
	uint32_t cap = ectl->ev_capacity;
	uint64_t pkt = ectl->packet_area_size;

	if (want == 0 || want > ONERING_PRIO_LEVELS || levels != want) {
		snprintf(err, err_size, "the queue has %u priority levels, %u were granted", levels,
			 want);
		return -EPROTO;
	}
	if (levels == 1)
		return 0;
	/* The whole levels area inside the mapping (no overflow: cap < 2^31,
	 * levels <= 4, pkt checked against the mapping by the caller). */
	uint64_t off = onering_events_levels_offset(cap, pkt);
	if (pkt > ev_size || off > ev_size ||
	    onering_events_levels_size(cap, levels) > ev_size - off) {
		snprintf(err, err_size, "the queue's priority rings do not fit its segment");
		return -EPROTO;
	}
	const struct onering_levels_ctl *lctl = (const struct onering_levels_ctl *)(ev + off);
	for (uint32_t k = 1; k < levels; k++) {
		if (onering_ring_consumer_init(&lvc[k - 1], &lctl->level_tail_pos[k - 1],
					       &cctl->level_head_pos[k - 1],
					       ev + onering_events_level_slots(cap, pkt, k), cap,
					       start_pos) < 0) {
			snprintf(err, err_size, "queue geometry from the broker is not valid");
			return -EPROTO;
		}
	}
	return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* ONERING_CLIENT_PRIO_H */
