/* SPDX-License-Identifier: MIT */
/*
 * peer_nic_rte_ring.c: nic peer "rte_ring": an rx thread enqueues mbufs
 * into an SP/SC rte_ring (overflow freed, counted as dropped), a consumer
 * dequeues them; docs/benchmarks.md, NIC receive.
 */
#include <errno.h>
#include <stdio.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "tools/bench/peers.h"

struct nic_rte_ring {
	struct nic_common c;
	struct rte_ring *ring;
};

static int nic_rte_ring_setup(struct bench_ctx *ctx BENCH_UNUSED,
			      const struct bench_peer_ops *self BENCH_UNUSED, void *state)
{
	struct nic_rte_ring *s = state;
	static unsigned serial;
	char name[32];

	snprintf(name, sizeof(name), "bench_nic_ring%u", serial++);
	s->ring = rte_ring_create(name, s->c.capacity, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	return s->ring ? 0 : -rte_errno;
}

static int nic_rte_ring_produce(void *state, unsigned side BENCH_UNUSED,
			       void *items BENCH_UNUSED, unsigned count BENCH_UNUSED)
{
	struct nic_rte_ring *s = state;
	struct rte_mbuf *m[NIC_RX_BURST];

	uint16_t n = rte_eth_rx_burst(s->c.port, 0, m, NIC_RX_BURST);
	unsigned k = n ? rte_ring_sp_enqueue_burst(s->ring, (void *const *)m, n, NULL) : 0;
	if (k < n) { /* ring full: drop */
		rte_pktmbuf_free_bulk(m + k, n - k);
		nic_count(&s->c.dropped, n - k);
	}
	nic_count(&s->c.received, n);
	return n;
}

static int nic_rte_ring_consume(void *state, unsigned side BENCH_UNUSED,
			       void *items BENCH_UNUSED, unsigned count BENCH_UNUSED)
{
	struct nic_rte_ring *s = state;
	struct rte_mbuf *m[NIC_TAKE];

	unsigned n = rte_ring_sc_dequeue_burst(s->ring, (void **)m, NIC_TAKE, NULL);
	bench_nic_consume_mbufs(&s->c, m, n);
	return (int)n;
}

static void nic_rte_ring_teardown(struct bench_ctx *ctx BENCH_UNUSED, void *state)
{
	struct nic_rte_ring *s = state;
	void *m[NIC_TAKE];
	unsigned n;

	while (s->ring && (n = rte_ring_sc_dequeue_burst(s->ring, m, NIC_TAKE, NULL)) > 0)
		rte_pktmbuf_free_bulk((struct rte_mbuf **)m, n);
	rte_ring_free(s->ring);
}

BENCH_PEER(bench_peer_nic_rte_ring, "rte_ring", "rx_burst -> rte_ring SP/SC -> a consumer "
	   "thread (touch, free)", "dpdk", struct nic_rte_ring, 0, nic_rte_ring_setup,
	   nic_rte_ring_produce, nic_rte_ring_consume, bench_nic_inprocess_control,
	   nic_rte_ring_teardown);
