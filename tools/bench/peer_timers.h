/* SPDX-License-Identifier: MIT */
/*
 * peer_timers.h: what the timers scenario and its peers share (the hooks'
 * meaning is at the top of scenario_timers.c). Each peer's state starts
 * with struct timers_common, which the scenario fills and reads.
 */
#ifndef ONERING_TOOLS_BENCH_PEER_TIMERS_H
#define ONERING_TOOLS_BENCH_PEER_TIMERS_H

#include "tools/bench/bench.h"

#define TIMERS_BATCH 256u /* fires taken per consume() at most */

enum {
	TIMERS_OP_SENTINEL = 1, /* control(): arm the sentinel in the past; -ENOTSUP */
	TIMERS_OP_LEFT = 2,     /* control(): records or ready timers left over */
};

/* One timer handed to the consumer. idx == n: the sentinel. */
struct timer_fire {
	uint32_t idx;
	uint64_t stamp_ns;    /* the broker's publish time, 0 if none */
	uint64_t expirations; /* a one-shot timer: 1 */
};

struct timers_common {
	unsigned n;       /* timers, set before setup() */
	uint64_t wait_ns; /* consume() returns after this at most */
	uint64_t eagain;  /* arms retried on a full submission ring */
	uint64_t known_syscalls; /* syscalls the arming made (each peer counts its own) */
	struct bench_broker broker; /* onering peers: their broker */
};

extern const struct bench_peer_ops bench_peer_timers_onering;
extern const struct bench_peer_ops bench_peer_timers_onering_busy;
extern const struct bench_peer_ops bench_peer_timers_timerfd;
extern const struct bench_peer_ops bench_peer_timers_wheel;

#endif /* ONERING_TOOLS_BENCH_PEER_TIMERS_H */
