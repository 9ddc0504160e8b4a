/* SPDX-License-Identifier: MIT */
/*
 * peer_ring.h: the peers of the ring scenario (scenario_ring.c says what
 * their hooks mean) and the one control op they answer.
 */
#ifndef ONERING_TOOLS_BENCH_PEER_RING_H
#define ONERING_TOOLS_BENCH_PEER_RING_H

#include "tools/bench/bench.h"

enum { RING_OP_MODES = 1 };                             /* control(): what it measures */
enum { RING_MODE_THROUGHPUT = 1, RING_MODE_LATENCY = 2 }; /* its answer's bits */

extern const struct bench_peer_ops bench_peer_ring_onering;
extern const struct bench_peer_ops bench_peer_ring_bare;
extern const struct bench_peer_ops bench_peer_ring_rte;
extern const struct bench_peer_ops bench_peer_ring_pingpong;
extern const struct bench_peer_ops bench_peer_ring_pp_lines;

#endif /* ONERING_TOOLS_BENCH_PEER_RING_H */
