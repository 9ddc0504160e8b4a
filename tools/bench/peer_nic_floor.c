/* SPDX-License-Identifier: MIT */
/*
 * peer_nic_floor.c: nic peer "floor": one rx thread in this process,
 * rx_burst, touch, free_bulk; docs/benchmarks.md, NIC receive.
 */
#include <errno.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "tools/bench/peers.h"

struct nic_floor {
	struct nic_common c;
};

static int nic_floor_produce(void *state, unsigned side BENCH_UNUSED, void *items BENCH_UNUSED,
			     unsigned count BENCH_UNUSED)
{
	struct nic_floor *s = state;
	struct rte_mbuf *m[NIC_RX_BURST];

	uint16_t n = rte_eth_rx_burst(s->c.port, 0, m, NIC_RX_BURST);
	bench_nic_consume_mbufs(&s->c, m, n);
	nic_count(&s->c.received, n);
	return n;
}

void bench_nic_consume_mbufs(struct nic_common *c, struct rte_mbuf **m, unsigned n)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += nic_touch(rte_pktmbuf_mtod(m[i], const void *),
				 m[i]->data_len < NIC_SNAPLEN ? m[i]->data_len : NIC_SNAPLEN);
	rte_pktmbuf_free_bulk(m, n);
	c->sink += sum;
}

int bench_nic_inprocess_control(void *state, unsigned op, void *arg)
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
	   "dpdk", struct nic_floor, 0, NULL, nic_floor_produce, NULL, bench_nic_inprocess_control,
	   NULL);
