/* SPDX-License-Identifier: MIT */
/*
 * peer_ring_rte.c: ring peer "rte_ring": DPDK rte_ring, SP/SC, 64-byte
 * elements; throughput only (docs/benchmarks.md, Ring).
 */
#include <stdio.h>

#include <rte_errno.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "shm/abi.h"
#include "tools/bench/peers.h"

struct rte_state {
	struct rte_ring *ring;
};

static int ring_rte_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self BENCH_UNUSED,
			  void *state)
{
	struct rte_state *s = state;
	char lcores[32], name[32];
	static unsigned serial;

	snprintf(lcores, sizeof(lcores), "%d,%d", ctx->cores[0], ctx->cores[1]);
	int rc = bench_eal_start(ctx, lcores, NULL);
	if (rc)
		return rc;
	snprintf(name, sizeof(name), "bench%u", serial++);
	s->ring = rte_ring_create_elem(name, sizeof(struct onering_event),
				       (unsigned)bench_param(ctx, "capacity"), SOCKET_ID_ANY,
				       RING_F_SP_ENQ | RING_F_SC_DEQ);
	return s->ring ? 0 : -rte_errno;
}

static int ring_rte_produce(void *state, unsigned ring BENCH_UNUSED, void *recs, unsigned count)
{
	return (int)rte_ring_sp_enqueue_burst_elem(((struct rte_state *)state)->ring, recs,
						   sizeof(struct onering_event), count, NULL);
}

static int ring_rte_consume(void *state, unsigned ring BENCH_UNUSED, void *out, unsigned max_count)
{
	return (int)rte_ring_sc_dequeue_burst_elem(((struct rte_state *)state)->ring, out,
						   sizeof(struct onering_event), max_count, NULL);
}

static void ring_rte_teardown(struct bench_ctx *ctx BENCH_UNUSED, void *state)
{
	rte_ring_free(((struct rte_state *)state)->ring);
}

BENCH_PEER(bench_peer_ring_rte, "rte_ring", "DPDK rte_ring SP/SC, 64-byte elements (throughput "
	   "only)", "dpdk", struct rte_state, RING_MODE_THROUGHPUT, ring_rte_setup, ring_rte_produce,
	   ring_rte_consume, NULL, ring_rte_teardown);
