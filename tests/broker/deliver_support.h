/* SPDX-License-Identifier: MIT */
/*
 * A broker in memory for tests/broker/deliver_test.cpp (deliver_support.c).
 *
 * The broker's private headers are C11 only (_Alignas, _Static_assert, the
 * layouts of struct poller and struct broker_lane), so the C++ test cannot
 * include them; this harness builds the minimum deliver.c needs - a zeroed
 * struct broker with a registry, pollers, queues whose event rings live in
 * malloc'd memory, groups with members - and gives the test a C interface
 * by index: queue qi, subscription si, group gi, poller pi. No oneringd, no
 * EAL, no socket, no memfd: the only system calls are an eventfd (the
 * broker's reap_fd) and, when a test puts a consumer to sleep, FUTEX_WAKE.
 *
 * The test plays the consumer of each queue: a shm/ring.h consumer handle
 * over the same ring (dt_consume, dt_visible), and writes the consumer's
 * shared words (dt_set_head, dt_set_consumer) as a client would.
 */
#ifndef ONERING_TESTS_BROKER_DELIVER_SUPPORT_H
#define ONERING_TESTS_BROKER_DELIVER_SUPPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "shm/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DT_MAX_POLLERS 2
#define DT_MAX_QUEUES 8
#define DT_MAX_SUBS 16
#define DT_MAX_GROUPS 2

struct dt;

/* A broker with nr_pollers pollers (1 or 2; poller pi is on node pi, and
 * two pollers get the lanes between them). NULL on failure. */
struct dt *dt_new(unsigned nr_pollers);
/* Frees everything, checking nothing is left half-done. */
void dt_free(struct dt *t);

/* A LIVE queue of capacity cap served by poller pi (pkt_stride > 0: with a
 * packet area). Returns its index, or -1. */
int dt_queue_add(struct dt *t, unsigned pi, uint32_t cap, uint32_t pkt_stride);
/* Give queue qi nr_levels priority levels (2..ONERING_PRIO_LEVELS), as a
 * queue opened with onering_queue_options.levels: rings of the same
 * capacity for levels 1.. Before any record goes to it. 0, or -1. */
int dt_queue_levels(struct dt *t, unsigned qi, uint32_t nr_levels);
/* A group (policy: enum onering_group_policy, NUMA interleave, wake lifo,
 * backlog_max 0: none) of the queues in members[]. Returns its index, or -1. */
int dt_group_add(struct dt *t, uint32_t policy, uint32_t backlog_max, const unsigned *members,
		 unsigned n);
void dt_group_set_numa(struct dt *t, int gi, uint32_t numa, uint32_t spill_pct);
void dt_group_set_wake(struct dt *t, int gi, uint32_t wake, uint32_t max_running);
/* A subscription (kind FD, edge mode) homed on poller 0 whose records go
 * to queue qi, or to group gi when gi >= 0 (qi: the queue it was added
 * through). Published in the registry. Returns its index, or -1. */
int dt_sub_add(struct dt *t, unsigned qi, int gi, uint64_t cookie);
/* Its records' priority (0..ONERING_PRIO_LEVELS-1), before it reports. */
void dt_sub_set_prio(struct dt *t, int si, uint32_t prio);
/* Mark it deleted (as its home poller does) and take it out of the table. */
void dt_sub_kill(struct dt *t, int si);

/* A new poll loop on poller pi (deliver.c rereads consumers' heads once per loop). */
void dt_next_loop(struct dt *t, unsigned pi);

/* deliver.h, by index. */
void dt_report(struct dt *t, unsigned pi, int si, uint32_t events, uint32_t count, uint64_t ts);
unsigned dt_flush(struct dt *t, unsigned pi, uint64_t ts);
int dt_to_queue(struct dt *t, unsigned pi, unsigned qi, const struct onering_event *rec);
int dt_post(struct dt *t, unsigned pi, int gi, const struct onering_event *rec, uint64_t flow);
void dt_forget(struct dt *t, int si);
/* NIC packets for group gi from poller pi: n packets of lens[i] bytes
 * (bytes: the value each packet's bytes are filled with, i + 1). */
unsigned dt_packets(struct dt *t, unsigned pi, int gi, const uint32_t *lens, unsigned n,
		    unsigned *truncated, struct onering_event *recs);
/* Poller pi takes one hand-off from poller src's lane as source_lanes.c
 * does (deliver_handoff into the queue it names). 1 placed, 0 none waiting,
 * or deliver_handoff's -errno (the hand-off stays). */
int dt_take_handoff(struct dt *t, unsigned pi, unsigned src);

/* The consumer side of queue qi. */
int64_t dt_visible(struct dt *t, unsigned qi); /* published, not consumed, every level */
int64_t dt_level_visible(struct dt *t, unsigned qi, uint32_t level);
/* The consumer's head has reached the published tail (any thread: reads
 * the two shared words only). */
bool dt_ring_drained(struct dt *t, unsigned qi);
/* Up to max records, the highest level first (as onering_poll). */
int dt_consume(struct dt *t, unsigned qi, struct onering_event *out, unsigned max);
int dt_consume_level(struct dt *t, unsigned qi, uint32_t level, struct onering_event *out,
		     unsigned max);
void dt_set_head(struct dt *t, unsigned qi, uint64_t pos); /* raw: a corrupt client */
void dt_set_consumer(struct dt *t, unsigned qi, uint32_t state, uint64_t idle_ns);
uint32_t dt_consumer_state(struct dt *t, unsigned qi);
uint32_t dt_futex(struct dt *t, unsigned qi);
/* The packet bytes of queue qi at a record's payload_offset. */
const unsigned char *dt_packet(struct dt *t, unsigned qi, uint64_t offset);

/* What deliver.c keeps, read back. */
uint64_t dt_qctr(struct dt *t, unsigned qi, unsigned ctr); /* ONERING_QC_* */
uint64_t dt_lctr(struct dt *t, unsigned qi, uint32_t level, unsigned ctr); /* ONERING_LC_* */
uint64_t dt_gctr(struct dt *t, int gi, unsigned pi, unsigned ctr); /* ONERING_GC_* */
uint64_t dt_pctr(struct dt *t, unsigned pi, unsigned ctr); /* ONERING_PC_* */
int dt_queue_state(struct dt *t, unsigned qi); /* enum broker_queue_state */
uint64_t dt_queue_inflight(struct dt *t, unsigned qi);
unsigned dt_pending_len(struct dt *t, unsigned qi); /* subs on its pending list */
int dt_pending_at(struct dt *t, unsigned qi, unsigned k); /* sub index k-th on it, or -1 */
struct dt_sub_view {
	bool pending;
	uint32_t events;
	uint32_t count;
	uint32_t id, gen;
};
void dt_sub_get(struct dt *t, int si, struct dt_sub_view *out);
uint32_t dt_backlog_subs(struct dt *t, int gi, unsigned pi);
uint32_t dt_backlog_recs(struct dt *t, int gi, unsigned pi);
/* Queues on the broker's fault list, dequeued (the control thread's part):
 * how many, and the index of the first in *first. */
unsigned dt_take_faults(struct dt *t, int *first);
/* The reap eventfd's count since the last call (0: not written). */
uint64_t dt_reap_count(struct dt *t);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_TESTS_BROKER_DELIVER_SUPPORT_H */
