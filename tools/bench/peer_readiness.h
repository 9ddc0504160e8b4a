/* SPDX-License-Identifier: MIT */
/*
 * peer_readiness.h: what the readiness scenario and its peers share (the
 * hooks' meaning is at the top of scenario_readiness.c). Each peer's state
 * starts with struct readiness_common, which the scenario fills.
 */
#ifndef ONERING_TOOLS_BENCH_PEER_READINESS_H
#define ONERING_TOOLS_BENCH_PEER_READINESS_H

#include "tools/bench/bench.h"

#define READINESS_BATCH 64u         /* events taken per call, every peer */
#define READINESS_BLOCK_MS 50       /* blocking peers wake this often to see stop */

enum {
	READINESS_OP_THREAD_INIT = 1, /* control() on the consumer thread, first */
	READINESS_OP_THREAD_FINI = 2, /* ... and last */
};

/* One readiness event handed to the consumer. */
struct ready_event {
	uint32_t idx;       /* the source */
	uint64_t broker_ns; /* onering: the record's publish time; else 0 */
};

struct readiness_common {
	unsigned n;        /* sources */
	const int *rfd;    /* what the peer watches and the consumer reads */
	uint32_t capacity; /* onering queue capacity */
	int broker_cpu;    /* onering: poller and control thread */
	struct bench_broker broker;
};

extern const struct bench_peer_ops bench_peer_readiness_onering_busy;
extern const struct bench_peer_ops bench_peer_readiness_onering_adaptive;
extern const struct bench_peer_ops bench_peer_readiness_onering_wait;
extern const struct bench_peer_ops bench_peer_readiness_epoll_busy;
extern const struct bench_peer_ops bench_peer_readiness_epoll_block;
extern const struct bench_peer_ops bench_peer_readiness_uring_busy;
extern const struct bench_peer_ops bench_peer_readiness_uring_block;
extern const struct bench_peer_ops bench_peer_readiness_uring_peek;

#endif /* ONERING_TOOLS_BENCH_PEER_READINESS_H */
