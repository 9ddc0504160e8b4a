/* SPDX-License-Identifier: MIT */
/*
 * DPDK NIC receive queues as event sources (broker/nic.c).
 *
 * This header carries no DPDK type: only nic.c is compiled with DPDK's
 * flags (pkg-config libdpdk injects -march and -include rte_config.h), so
 * the rest of the broker, and everything the client sees, stays free of it.
 *
 * The EAL is started only when the command line has EAL options (before
 * "--") or a --port; a broker without either never touches DPDK. Pollers
 * are the broker's own threads in both cases: with the EAL up each one
 * registers itself (rte_thread_register), which gives it an lcore id for
 * mbuf pool caches - one poll loop, one code path.
 */
#ifndef ONERING_BROKER_NIC_H
#define ONERING_BROKER_NIC_H

#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>

#include "shm/abi.h"
#include "shm/atomic.h"
#include "broker/settings.h"
#include "shm/proto.h"

struct broker;
struct broker_group;
struct poller;
struct onering_msg;

#define BROKER_MAX_PORT_ARGS 16
#define BROKER_MAX_EAL_ARGS 64
/* Counters of one rx queue (stats item ONERING_STATS_RXQ). */
enum broker_rxq_counter {
	BROKER_RXQ_RECEIVED,  /* packets rte_eth_rx_burst gave */
	BROKER_RXQ_DELIVERED, /* records published for them */
	BROKER_RXQ_DROPPED,   /* no member queue of the group had room (ring full) */
	BROKER_RXQ_BYTES,     /* bytes received (wire length) */
	BROKER_RXQ_TRUNCATED, /* delivered with fewer bytes than the packet had */
	BROKER_RXQ_NR,
};

/* One rx queue, homed on one poller (set up before the pollers start). */
struct broker_rxq {
	uint16_t port;
	uint16_t queue;
	uint32_t snaplen;
	struct broker_group *group;
	ONERING_ATOMIC(uint64_t) ctr[BROKER_RXQ_NR];
};

/* Start the EAL if there are EAL arguments or ports. argv[0] is the program
 * name. Returns 0 (also when not needed), or -errno after logging what failed
 * and how to fix it. */
int broker_nic_init(struct broker *b);
/* Configure and start every --port, home its rx queues on pollers.
 * Groups must exist (the default group at least). */
int broker_nic_setup(struct broker *b);
/* Stop ports and the EAL (pollers stopped). */
void broker_nic_fini(struct broker *b);
/* One port as stats and telemetry show it: its identity, and its counters
 * in ONERING_PORT_COUNTERS order (rte_eth_stats_get; zeros if that fails). */
struct broker_nic_port {
	uint16_t port;
	int node; /* -1: unknown */
	char name[BROKER_PORT_DEV_MAX];
	char driver[64];
	uint64_t ctr[ONERING_PORTC_NR];
};
/* The i-th port of --port (0 first) into out: 0, or -ENOENT past the last
 * (or without the EAL). Context: any thread once broker_nic_setup returned
 * (ports are fixed then); rte_eth_stats_get reads the driver's counters. */
int broker_nic_port_get(const struct broker *b, unsigned i, struct broker_nic_port *out);
/* Control thread: send port and rx queue stats items; 0 or -errno. */
int broker_nic_stats(struct broker *b, int (*send)(void *ctx, const struct onering_msg *m),
		     void *ctx, uint32_t seq);
/* Control thread: transmit one frame on a port (--allow-inject). */
int broker_nic_inject(struct broker *b, uint16_t port, const void *frame, uint32_t len);
/* True when the EAL is running. */
bool broker_nic_active(const struct broker *b);

#endif /* ONERING_BROKER_NIC_H */
