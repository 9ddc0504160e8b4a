/* SPDX-License-Identifier: MIT */
/*
 * peer_nic_inprocess.c: the nic peers that receive in this process
 * (docs/benchmarks.md, NIC receive): "floor", one rx thread doing rx_burst,
 * touch, free_bulk; "rte_ring", an rx thread that enqueues the mbufs into an
 * SP/SC rte_ring (overflow freed, counted as dropped) and a consumer that
 * dequeues, touches and frees them.
 */
#include <errno.h>
#include <stdio.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "tools/bench/peers.h"

/* Add n to a counter of the rx thread's (its only writer; main reads it relaxed). */
#define nic_count(ctr, n)                                                                      \
	onering_atomic_store(ctr, (n) + onering_atomic_load(ctr, onering_mo_relaxed),         \
			     onering_mo_relaxed)

struct nic_rte_ring {
	struct nic_common c;
	struct rte_ring *ring;
};

/* The consumer's work on n received mbufs: touch, free. */
static void consume_mbufs(struct nic_common *c, struct rte_mbuf **m, unsigned n)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += nic_touch(rte_pktmbuf_mtod(m[i], const void *),
				 m[i]->data_len < NIC_SNAPLEN ? m[i]->data_len : NIC_SNAPLEN);
	rte_pktmbuf_free_bulk(m, n);
	c->sink += sum;
}

static int nic_floor_produce(void *state, unsigned side BENCH_UNUSED, void *items BENCH_UNUSED,
			     unsigned count BENCH_UNUSED)
{
	struct nic_common *c = state;
	struct rte_mbuf *m[NIC_RX_BURST];

	uint16_t n = rte_eth_rx_burst(c->port, 0, m, NIC_RX_BURST);
	consume_mbufs(c, m, n);
	nic_count(&c->received, n);
	return n;
}

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
	consume_mbufs(&s->c, m, n);
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

/* Both peers': thread init/fini (an lcore id: mempool caches work), the counters. */
static int nic_inprocess_control(void *state, unsigned op, void *arg)
{
	struct nic_common *c = state;
	struct nic_counters *k = arg;

	switch (op) {
	case BENCH_OP_THREAD_INIT:
		return rte_thread_register() < 0 ? -rte_errno : 0;
	case BENCH_OP_THREAD_FINI:
		rte_thread_unregister();
		return 0;
	case NIC_OP_COUNTERS:
		k->received = onering_atomic_load(&c->received, onering_mo_relaxed);
		k->dropped = onering_atomic_load(&c->dropped, onering_mo_relaxed);
		k->loops = 0;
		return 0;
	default:
		return -EINVAL;
	}
}

BENCH_PEER(bench_peer_nic_floor, "floor", "rx_burst -> touch -> free in this process, one core",
	   "dpdk", struct nic_common, 0, NULL, nic_floor_produce, NULL, nic_inprocess_control,
	   NULL);
BENCH_PEER(bench_peer_nic_rte_ring, "rte_ring", "rx_burst -> rte_ring SP/SC -> a consumer "
	   "thread (touch, free)", "dpdk", struct nic_rte_ring, 0, nic_rte_ring_setup,
	   nic_rte_ring_produce, nic_rte_ring_consume, nic_inprocess_control,
	   nic_rte_ring_teardown);
