/* SPDX-License-Identifier: MIT */
/*
 * DPDK rx queues as a source: each poller polls the rx queues homed on it
 * (broker_nic_setup decides, by the device's node), one burst per queue per
 * loop, and hands the packets to deliver as one burst for the queue's
 * group. Built with DPDK's flags (the broker_nic library), like nic.c.
 *
 * NIC queues do not wake epoll: a poller that has some never sleeps
 * (next_deadline is always 0).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_thash.h>
#include <rte_version.h>

#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/group.h"
#include "broker/nic.h"
#include "broker/source.h"
#include "shm/log.h"

/* Packets per rte_eth_rx_burst. 64 rather than DPDK's usual 32: the loop's
 * own costs (the other sources, publish, bells) are paid per burst, and
 * at 64 B line rate they were a tenth of the poller (onering-bench nic,
 * 2026-12-07: 0.46-0.54x the floor at 32, 0.52-0.57x at 64, every peer's
 * burst 64). A burst is what the device has, so a slow port waits for no
 * more. */
#define RX_BURST 64

/* With the EAL up, a poller registers itself (an lcore id for mbuf pool
 * caches): one poll loop, one code path. */
static void nic_thread_start(struct broker_source *src)
{
	struct poller *p = src->p;

	if (rte_thread_register() < 0)
		onering_log(ONERING_LOG_WARN, "poller %u: cannot register with the EAL: %s "
			    "(mbuf caches unused)", p->idx, rte_strerror(rte_errno));
}

static void nic_thread_stop(struct broker_source *src)
{
	(void)src;
	rte_thread_unregister();
}

/* The common 40-byte RSS key (Microsoft's, the default of most NICs). */
static const uint8_t rss_key[40] = {
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
	0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
	0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

static inline uint16_t be16_at(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * Toeplitz hash of a frame's IPv4/IPv6 addresses and TCP/UDP ports (the
 * addresses alone for other protocols and fragments), as a NIC computes its
 * RSS hash; 0 for anything else. Reads only the first segment.
 */
static uint32_t soft_rss(const struct rte_mbuf *m)
{
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t len = m->data_len, off = 14;
	union rte_thash_tuple t;

	if (len < 14)
		return 0;
	uint16_t type = be16_at(f + 12);
	if (type == 0x8100 && len >= 18) { /* one VLAN tag */
		type = be16_at(f + 16);
		off = 18;
	}
	memset(&t, 0, sizeof(t));
	if (type == 0x0800 && len >= off + 20) {
		const uint8_t *ip = f + off;
		uint32_t ihl = (ip[0] & 0x0fu) * 4;
		bool first_fragment = (be16_at(ip + 6) & 0x1fff) == 0 && !(ip[6] & 0x20);
		t.v4.src_addr = (uint32_t)be16_at(ip + 12) << 16 | be16_at(ip + 14);
		t.v4.dst_addr = (uint32_t)be16_at(ip + 16) << 16 | be16_at(ip + 18);
		if ((ip[9] == 6 || ip[9] == 17) && first_fragment && ihl >= 20 &&
		    len >= off + ihl + 4) {
			t.v4.sport = be16_at(ip + ihl);
			t.v4.dport = be16_at(ip + ihl + 2);
			return rte_softrss((uint32_t *)&t, RTE_THASH_V4_L4_LEN, rss_key);
		}
		return rte_softrss((uint32_t *)&t, RTE_THASH_V4_L3_LEN, rss_key);
	}
	if (type == 0x86dd && len >= off + 40) {
		const uint8_t *ip = f + off;
		struct rte_ipv6_hdr h;
		memcpy(&h, ip, sizeof(h));
		rte_thash_load_v6_addrs(&h, &t);
		if ((ip[6] == 6 || ip[6] == 17) && len >= off + 44) {
			t.v6.sport = be16_at(ip + 40);
			t.v6.dport = be16_at(ip + 42);
			return rte_softrss((uint32_t *)&t, RTE_THASH_V6_L4_LEN, rss_key);
		}
		return rte_softrss((uint32_t *)&t, RTE_THASH_V6_L3_LEN, rss_key);
	}
	return 0;
}

/* One rx burst on each of this poller's queues. Returns packets handled. */
static unsigned nic_poll(struct broker_source *src, const struct broker_poll_ctx *ctx)
{
	struct poller *p = src->p;
	uint64_t ts = ctx->now_ns;
	struct rte_mbuf *m[RX_BURST];
	unsigned total = 0;

	for (unsigned i = 0; i < p->nr_rxqs; i++) {
		struct broker_rxq *rq = &p->rxqs[i];
		/* Nobody to give packets to: leave them to the NIC (which counts
		 * what it drops meanwhile as missed) rather than drain and drop. */
		const struct broker_members *mem = rcu_dereference(rq->group->members);
		if (!mem || mem->n == 0)
			continue;
		uint16_t n = rte_eth_rx_burst(rq->port, rq->queue, m, RX_BURST);
		if (n == 0)
			continue;
		struct onering_event recs[RX_BURST];
		const void *data[RX_BURST];
		uint32_t lens[RX_BURST];
		uint64_t bytes = 0;
		for (uint16_t k = 0; k < n; k++) {
			const struct rte_mbuf *mb = m[k];
			struct onering_event *rec = &recs[k];
			memset(rec, 0, sizeof(*rec));
			rec->kind = ONERING_EV_NIC;
			rec->timestamp_ns = ts;
			rec->payload.nic.port = rq->port;
			rec->payload.nic.queue = rq->queue;
			rec->payload.nic.length = mb->pkt_len;
			rec->payload.nic.rss_hash =
				(mb->ol_flags & RTE_MBUF_F_RX_RSS_HASH) ? mb->hash.rss : soft_rss(mb);
			rec->payload.nic.rx_timestamp_ns = ts;
			/* Only the first segment is copied (snaplen fits one mbuf). */
			data[k] = rte_pktmbuf_mtod(mb, const void *);
			lens[k] = mb->data_len < rq->snaplen ? mb->data_len : rq->snaplen;
			bytes += mb->pkt_len;
		}
		unsigned truncated = 0;
		unsigned delivered = deliver_packets(p, rq->group, recs, data, lens, n, &truncated);
		rte_pktmbuf_free_bulk(m, n);
		broker_count(&rq->ctr[BROKER_RXQ_RECEIVED], n);
		broker_count(&rq->ctr[BROKER_RXQ_DELIVERED], delivered);
		broker_count(&rq->ctr[BROKER_RXQ_DROPPED], n - delivered);
		broker_count(&rq->ctr[BROKER_RXQ_BYTES], bytes);
		broker_count(&rq->ctr[BROKER_RXQ_TRUNCATED], truncated);
		total += n;
	}
	return total;
}


static uint64_t nic_next_deadline(struct broker_source *src, uint64_t now_ns)
{
	(void)src;
	(void)now_ns;
	return 0;
}

static const struct broker_source_ops nic_ops = {
	.name = "nic",
	.poll = nic_poll,
	.next_deadline = nic_next_deadline,
	.thread_start = nic_thread_start,
	.thread_stop = nic_thread_stop,
	.destroy = broker_source_free,
};

int broker_source_nic_create(struct poller *p, struct broker_source **out)
{
	*out = NULL;
	if (!p->b->nic || p->nr_rxqs == 0)
		return 0; /* no EAL, or no rx queue homed here */
	*out = broker_source_alloc(p, &nic_ops, sizeof(struct broker_source));
	return *out ? 0 : -ENOMEM;
}
