/* SPDX-License-Identifier: MIT */
/*
 * peers.h: what each scenario shares with its peers: control ops, the items
 * the hooks pass, the common head of the peers' state, the peers' tables.
 * What the hooks mean is at the top of each scenario_*.c.
 */
#ifndef ONERING_TOOLS_BENCH_PEERS_H
#define ONERING_TOOLS_BENCH_PEERS_H

#include <stdalign.h>
#include <string.h>

#include "tools/bench/bench.h"

/* A ring peer's variant: what it measures (pp-lines adds PP_LINES, bare-seq SEQ_IN_SLOT). */
enum { RING_MODE_THROUGHPUT = 1, RING_MODE_LATENCY = 2, RING_PP_LINES = 4, RING_SEQ_IN_SLOT = 8 };

extern const struct bench_peer_ops bench_peer_ring_onering, bench_peer_ring_bare,
	bench_peer_ring_bare_seq, bench_peer_ring_rte, bench_peer_ring_pingpong,
	bench_peer_ring_pp_lines;

#define TIMERS_BATCH 256u /* fires taken per consume() at most */

enum {
	TIMERS_OP_SENTINEL = BENCH_OP_SCENARIO, /* arm the sentinel in the past; -ENOTSUP */
	TIMERS_OP_LEFT,                         /* records or ready timers left over */
};

/* One timer handed to the consumer. idx == n: the sentinel. */
struct timer_fire {
	uint32_t idx;
	uint64_t stamp_ns, expirations; /* the broker's publish time (or 0); 1 */
};

struct timers_common {
	unsigned n;       /* timers, set before setup() */
	uint64_t wait_ns; /* consume() returns after this at most */
	uint64_t eagain;  /* arms retried on a full submission ring */
	uint64_t known_syscalls; /* syscalls the arming made (each peer counts its own) */
	struct bench_broker broker; /* onering peers: their broker */
};

extern const struct bench_peer_ops bench_peer_timers_onering, bench_peer_timers_onering_busy,
	bench_peer_timers_timerfd, bench_peer_timers_wheel;

#define READINESS_BATCH 64u         /* events taken per call, every peer */
#define READINESS_BLOCK_MS 50       /* blocking peers wake this often to see stop */

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

extern const struct bench_peer_ops bench_peer_readiness_onering_busy,
	bench_peer_readiness_onering_adaptive, bench_peer_readiness_onering_overprov,
	bench_peer_readiness_onering_overprov_co50, bench_peer_readiness_onering_overprov_co100,
	bench_peer_readiness_onering_wait, bench_peer_readiness_epoll_busy,
	bench_peer_readiness_epoll_block, bench_peer_readiness_uring_busy,
	bench_peer_readiness_uring_block, bench_peer_readiness_uring_peek;

#define DISPATCH_BURST 32u /* events per enqueue/dequeue/post/poll call */
#define DISPATCH_MAX_CONSUMERS 16u

/* BENCH_OP_THREAD_*: arg unsigned *thread_idx (FINI after DRAIN for consumers). */
enum {
	DISPATCH_OP_ORDERED = BENCH_OP_SCENARIO, /* 1: the peer promises per-flow order */
	DISPATCH_OP_BLOCKS,          /* 1: consume() sleeps itself when idle */
	DISPATCH_OP_SCHEDULE,        /* one scheduler iteration; -ENOTSUP: no scheduler */
	DISPATCH_OP_FLUSH,           /* producer: after its last event */
	DISPATCH_OP_MAINTAIN,        /* producer: every 50 us until the run ends */
	DISPATCH_OP_DRAIN,           /* arg: unsigned *consumer: events left after the run */
};

/* One event: flow, its sequence in the flow, its index, the stamp. */
struct dispatch_event {
	uint32_t flow;
	uint64_t seq, idx, stamp_ns;
};

struct dispatch_common {
	unsigned consumers;   /* threads 0..consumers-1; the producer is thread consumers */
	uint32_t flows;
	uint32_t capacity;    /* onering: consumer queue slots */
	uint32_t sq_capacity; /* onering: the producer's submission slots */
	uint32_t inflight;    /* eventdev: nb_events_limit */
	bool consume_poll;    /* onering consumers busy-poll */
	int sched_cpu;        /* the central scheduler's CPU */
	uint64_t base_ns;     /* eventdev stamps are ns since this */
	uint64_t leftover;    /* events still inside the peer when it stopped */
	struct bench_broker broker;
};

extern const struct bench_peer_ops bench_peer_dispatch_onering_rr,
	bench_peer_dispatch_onering_least, bench_peer_dispatch_onering_sticky,
	bench_peer_dispatch_onering_lifo, bench_peer_dispatch_onering_local,
	bench_peer_dispatch_sw_atomic, bench_peer_dispatch_sw_parallel,
	bench_peer_dispatch_dsw_atomic, bench_peer_dispatch_dsw_parallel;

#define NIC_VDEV "net_null0"
#define NIC_PKT_SIZE 64u  /* net_null's packet length */
#define NIC_SNAPLEN 64u   /* bytes each consumer touches, and the broker keeps */
#define NIC_RX_BURST 64u  /* rte_eth_rx_burst size, every peer (the broker's RX_BURST too) */
#define NIC_TAKE 64u      /* records a consumer takes per call */

enum { NIC_OP_COUNTERS = BENCH_OP_SCENARIO }; /* arg: struct nic_counters * (main thread) */

struct nic_counters {
	uint64_t received, dropped; /* packets the rx side took, and dropped */
	uint64_t loops;             /* onering: the broker's poll loops; else 0 */
};

struct nic_common {
	uint16_t port;     /* this process's net_null port */
	uint32_t capacity; /* rte_ring and onering queue records */
	int rx_cpu, cons_cpu;
	bool copy;         /* net_null copy=1 */
	struct bench_broker broker;
	/* the consumer's line: checksums, so the reads happen */
	alignas(ONERING_CACHE_LINE) uint64_t sink;
	/* the rx thread's line (single writer; main reads them relaxed) */
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) received, dropped;
};

/* Every consumer's work per packet: sum len bytes as 64-bit words (the tail
 * byte by byte); len 64: eight loads of one cache line. */
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

extern const struct bench_peer_ops bench_peer_nic_floor, bench_peer_nic_rte_ring,
	bench_peer_nic_onering;

struct servers_common {
	unsigned port;
	pid_t server;
	struct bench_broker broker;
};

/* Start onering-http-server (found like oneringd; $ONERING_HTTP_SERVER) on
 * c->port with extra (NULL-terminated), on --cores' CPUs if given, and wait
 * (5 s) until it accepts connections. -errno: printed. */
int servers_start(struct bench_ctx *ctx, struct servers_common *c, const char *const *extra);
/* Stop the server (SIGTERM, SIGKILL after 5 s) and the broker: the peers' teardown. */
void servers_stop(struct bench_ctx *ctx, void *state);

extern const struct bench_peer_ops bench_peer_servers_onering, bench_peer_servers_epoll,
	bench_peer_servers_uring, bench_peer_servers_completion, bench_peer_servers_completion_calls;

/* idle (scenario_idle.c). */
#define IDLE_MAX_QUEUES 4096
struct idle_common {
	unsigned queues;    /* Q */
	int broker_cpu;     /* oneringd's --cores */
	struct bench_broker broker;
};

extern const struct bench_peer_ops bench_peer_idle_onering, bench_peer_idle_onering_overprov,
	bench_peer_idle_onering_busy, bench_peer_idle_epoll;

#endif /* ONERING_TOOLS_BENCH_PEERS_H */
