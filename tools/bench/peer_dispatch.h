/* SPDX-License-Identifier: MIT */
/*
 * peer_dispatch.h: what the dispatch scenario and its peers share (the
 * hooks' meaning is at the top of scenario_dispatch.c). Each peer's state
 * starts with struct dispatch_common, which the scenario fills.
 */
#ifndef ONERING_TOOLS_BENCH_PEER_DISPATCH_H
#define ONERING_TOOLS_BENCH_PEER_DISPATCH_H

#include "tools/bench/bench.h"

#define DISPATCH_BURST 32u /* events per enqueue/dequeue/post/poll call */
#define DISPATCH_MAX_CONSUMERS 16u

enum {
	DISPATCH_OP_THREAD_INIT = 1, /* arg: unsigned *thread_idx; on that thread, first */
	DISPATCH_OP_THREAD_FINI,     /* ... and last (after DRAIN for consumers) */
	DISPATCH_OP_ORDERED,         /* 1: the peer promises per-flow order */
	DISPATCH_OP_BLOCKS,          /* 1: consume() sleeps itself when idle */
	DISPATCH_OP_SCHEDULE,        /* one scheduler iteration; -ENOTSUP: no scheduler */
	DISPATCH_OP_FLUSH,           /* producer: after its last event */
	DISPATCH_OP_MAINTAIN,        /* producer: every 50 us until the run ends */
	DISPATCH_OP_DRAIN,           /* arg: unsigned *consumer: events left after the run */
};

/* One event: flow, its sequence in the flow, its index, the stamp. */
struct dispatch_event {
	uint32_t flow;
	uint64_t seq;
	uint64_t idx;
	uint64_t stamp_ns;
};

struct dispatch_common {
	unsigned consumers;   /* threads 0..consumers-1; the producer is thread consumers */
	uint32_t flows;
	uint32_t capacity;    /* onering: consumer queue slots */
	uint32_t sq_capacity; /* onering: the producer's submission slots */
	uint32_t inflight;    /* eventdev: nb_events_limit */
	bool consume_poll;    /* onering consumers busy-poll */
	int sched_cpu;        /* the central scheduler's CPU */
	uint64_t base_ns;     /* eventdev stamps are ns since this */
	uint64_t leftover;    /* events still inside the peer when it stopped */
	struct bench_broker broker;
};

extern const struct bench_peer_ops bench_peer_dispatch_onering_rr;
extern const struct bench_peer_ops bench_peer_dispatch_onering_least;
extern const struct bench_peer_ops bench_peer_dispatch_onering_sticky;
extern const struct bench_peer_ops bench_peer_dispatch_onering_lifo;
extern const struct bench_peer_ops bench_peer_dispatch_onering_local;
extern const struct bench_peer_ops bench_peer_dispatch_sw_atomic;
extern const struct bench_peer_ops bench_peer_dispatch_sw_parallel;
extern const struct bench_peer_ops bench_peer_dispatch_dsw_atomic;
extern const struct bench_peer_ops bench_peer_dispatch_dsw_parallel;

#endif /* ONERING_TOOLS_BENCH_PEER_DISPATCH_H */
