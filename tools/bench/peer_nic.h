/* SPDX-License-Identifier: MIT */
/*
 * peer_nic.h: what the nic scenario and its peers share (the hooks' meaning
 * is at the top of scenario_nic.c): the device's constants, the per-packet
 * work every consumer does, and struct nic_common, which starts each peer's
 * state.
 */
#ifndef ONERING_TOOLS_BENCH_PEER_NIC_H
#define ONERING_TOOLS_BENCH_PEER_NIC_H

#include <string.h>

#include "tools/bench/bench.h"

#define NIC_VDEV "net_null0"
#define NIC_PKT_SIZE 64u  /* net_null's packet length */
#define NIC_SNAPLEN 64u   /* bytes each consumer touches, and the broker keeps */
#define NIC_RX_BURST 32u  /* rte_eth_rx_burst size, every peer (and the broker) */
#define NIC_TAKE 64u      /* records a consumer takes per call */

enum {
	NIC_OP_THREAD_INIT = 1, /* arg: unsigned *side (0 rx, 1 consumer), on it */
	NIC_OP_THREAD_FINI,
	NIC_OP_COUNTERS,        /* arg: struct nic_counters * (main thread) */
};

struct nic_counters {
	uint64_t received, dropped; /* packets the rx side took, and dropped */
	uint64_t loops;             /* onering: the broker's poll loops; else 0 */
};

struct nic_common {
	uint16_t port;             /* this process's net_null port */
	uint32_t capacity;         /* rte_ring and onering queue records */
	int rx_cpu, cons_cpu;
	bool copy;                 /* net_null copy=1 */
	struct bench_broker broker;
	uint64_t sink;             /* checksums, so the reads happen */
	/* written by the rx thread only, read by main (relaxed) */
	ONERING_ATOMIC(uint64_t) received, dropped;
};

/*
 * The work every consumer does per packet: read len bytes and sum them as
 * 64-bit words (the tail byte by byte). With len = 64: eight loads of one
 * cache line.
 */
static BENCH_ALWAYS_INLINE uint64_t nic_touch(const void *p, uint32_t len)
{
	const unsigned char *b = p;
	uint64_t sum = 0, w;
	uint32_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, b + i, sizeof(w));
		sum += w;
	}
	for (; i < len; i++)
		sum += b[i];
	return sum;
}

extern const struct bench_peer_ops bench_peer_nic_floor;
extern const struct bench_peer_ops bench_peer_nic_rte_ring;
extern const struct bench_peer_ops bench_peer_nic_onering;

#endif /* ONERING_TOOLS_BENCH_PEER_NIC_H */
