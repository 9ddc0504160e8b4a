/* SPDX-License-Identifier: MIT */
/*
 * onering-bench-ring: ring hand-off of 64-byte records between two pinned
 * cores, onering's SPSC ring (shm/ring.h) against its peers, all in one run.
 *
 * Peers
 *   onering   shm/ring.h: enqueue_burst / dequeue_burst (and, for latency,
 *             a pair of rings, one each way);
 *   bare      a minimal SPSC ring written here, the floor: Lamport ring with
 *             a cached peer index, 64-byte slots, indices on separate cache
 *             lines, one acquire/release pair per batch, no validation;
 *   rte_ring  DPDK rte_ring, SP/SC, 64-byte elements;
 *   pingpong  (latency only) two cache lines, each written by one side:
 *             the cost of moving one line each way, the latency floor;
 *   pp-lines  (latency only, for reference) the same ping-pong over as many
 *             lines as the ring has slots, a fresh line per message: what
 *             any ring whose slots rotate pays at least. The bare ring is
 *             also run as a ring pair, the floor of onering's ring shape.
 *
 * Every peer runs on the same two pthreads pinned with
 * pthread_setaffinity_np (no EAL lcore launch), with the same record
 * filling and the same consumer-side check that the sequence number in
 * each record's cookie is exactly the next one (no loss, no reorder).
 * Rounds interleave the peers in a fixed order so machine noise hits all
 * of them alike; the figures that matter are the per-round ratios.
 *
 * Exit status: 0 when every peer moved every record in order (a missed
 * performance target is a figure, not a failure); 1 on a correctness
 * failure; 2 on a usage or setup error.
 *
 * Ordering contract of the bare ring (the onering ring states its own in
 * shm/ring.h, the ping-pong lines theirs at struct pp_line):
 *   tail word  written by the producer only: BR1 store-release after the
 *              slots it covers; the consumer's BA1 load-acquire pairs with it.
 *   head word  written by the consumer only: BR2 store-release after it has
 *              copied the slots out; the producer's BA2 load-acquire pairs
 *              with it before it overwrites them.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define BENCH_HAVE_TSC 1
#else
#define BENCH_HAVE_TSC 0
#endif

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_memory.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "shm/abi.h"
#include "shm/atomic.h"
#include "shm/ring.h"

#define BENCH_ALWAYS_INLINE inline __attribute__((always_inline))
#define BENCH_REC_SIZE ((uint32_t)sizeof(struct onering_event))
#define BENCH_MAX_BATCH 32u
#define BENCH_MAX_ROUNDS 100u

ONERING_STATIC_ASSERT(sizeof(struct onering_event) == ONERING_RING_SLOT_SIZE,
		      "a record is one ring slot");

/* ---------------------------------------------------------------------- */
/* Options.                                                                */

struct bench_opts {
	unsigned rounds;
	uint64_t records_b32; /* records per throughput run at batch 32 */
	uint64_t records_b1;  /* records per throughput run at batch 1 */
	uint64_t round_trips; /* ping-pong round trips per latency run */
	uint32_t capacity;
	int cores[2]; /* [0] producer / ping side, [1] consumer / echo side */
	bool quick;
	bool with_rte;
	const char *csv_path;
};

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s [options]\n"
		"\n"
		"Ring hand-off of 64-byte records between two pinned cores: onering's SPSC\n"
		"ring (shm/ring.h) against a bare minimal SPSC ring (the floor) and DPDK\n"
		"rte_ring SP/SC, at batch 32 and batch 1; then one-way hand-off latency of\n"
		"an onering ring pair against a bare cache-line ping-pong (the floor), with\n"
		"a bare ring pair and a ping-pong over as many lines as the ring has slots\n"
		"(pp-lines) for reference. Every peer runs once per round, in the same\n"
		"order; the summary gives medians across rounds and per-round ratios next\n"
		"to the targets of the performance contract.\n"
		"\n"
		"Options:\n"
		"  --rounds N       interleaved rounds (default 5)\n"
		"  --records N      records per throughput run at batch 32 (default 20000000);\n"
		"                   batch 1 moves N/2\n"
		"  --round-trips N  ping-pong round trips per latency run (default 200000)\n"
		"  --capacity N     ring capacity in records, a power of two (default 1024)\n"
		"  --cores A,B      producer/ping core A, consumer/echo core B (default 0,1)\n"
		"  --quick          smoke run: 3 rounds, 1M records, 20k round trips\n"
		"  --no-rte         skip DPDK rte_ring (no EAL initialisation)\n"
		"  --csv FILE       also write every figure as CSV to FILE\n"
		"  --help           print this and exit\n"
		"\n"
		"Exit status: 0 when every peer delivered every record in order (targets\n"
		"missed are figures, not failures), 1 on a correctness failure, 2 on a\n"
		"usage or setup error.\n",
		prog);
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_cores(const char *s, int cores[2])
{
	char *end;
	long a, b;

	errno = 0;
	a = strtol(s, &end, 10);
	if (errno || end == s || *end != ',' || a < 0 || a >= CPU_SETSIZE)
		return -EINVAL;
	s = end + 1;
	b = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || b < 0 || b >= CPU_SETSIZE || a == b)
		return -EINVAL;
	cores[0] = (int)a;
	cores[1] = (int)b;
	return 0;
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	enum { OPT_ROUNDS = 256, OPT_RECORDS, OPT_ROUND_TRIPS, OPT_CAPACITY, OPT_CORES,
	       OPT_QUICK, OPT_NO_RTE, OPT_CSV, OPT_HELP };
	static const struct option longopts[] = {
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "records", required_argument, NULL, OPT_RECORDS },
		{ "round-trips", required_argument, NULL, OPT_ROUND_TRIPS },
		{ "capacity", required_argument, NULL, OPT_CAPACITY },
		{ "cores", required_argument, NULL, OPT_CORES },
		{ "quick", no_argument, NULL, OPT_QUICK },
		{ "no-rte", no_argument, NULL, OPT_NO_RTE },
		{ "csv", required_argument, NULL, OPT_CSV },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool set_rounds = false, set_records = false, set_trips = false;
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->rounds = 5;
	o->records_b32 = 20000000;
	o->round_trips = 200000;
	o->capacity = 1024;
	o->cores[0] = 0;
	o->cores[1] = 1;
	o->with_rte = true;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_ROUNDS:
			if (parse_u64(optarg, 1, BENCH_MAX_ROUNDS, &v)) {
				fprintf(stderr, "--rounds: want 1..%u, got '%s'\n", BENCH_MAX_ROUNDS,
					optarg);
				return -EINVAL;
			}
			o->rounds = (unsigned)v;
			set_rounds = true;
			break;
		case OPT_RECORDS:
			if (parse_u64(optarg, 1000, UINT64_C(1) << 40, &o->records_b32)) {
				fprintf(stderr, "--records: want 1000..2^40, got '%s'\n", optarg);
				return -EINVAL;
			}
			set_records = true;
			break;
		case OPT_ROUND_TRIPS:
			if (parse_u64(optarg, 100, UINT64_C(100000000), &o->round_trips)) {
				fprintf(stderr, "--round-trips: want 100..1e8, got '%s'\n", optarg);
				return -EINVAL;
			}
			set_trips = true;
			break;
		case OPT_CAPACITY:
			if (parse_u64(optarg, 2 * BENCH_MAX_BATCH, ONERING_RING_MAX_CAPACITY, &v) ||
			    !onering_ring_capacity_valid((uint32_t)v)) {
				fprintf(stderr, "--capacity: want a power of two in %u..%u, got '%s'\n",
					2 * BENCH_MAX_BATCH, ONERING_RING_MAX_CAPACITY, optarg);
				return -EINVAL;
			}
			o->capacity = (uint32_t)v;
			break;
		case OPT_CORES:
			if (parse_cores(optarg, o->cores)) {
				fprintf(stderr, "--cores: want two different core ids A,B, got '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case OPT_QUICK:
			o->quick = true;
			break;
		case OPT_NO_RTE:
			o->with_rte = false;
			break;
		case OPT_CSV:
			o->csv_path = optarg;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout, argv[0]);
			exit(0);
		default:
			usage(stderr, argv[0]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "unexpected argument '%s' (see --help)\n", argv[optind]);
		return -EINVAL;
	}
	if (o->quick) {
		if (!set_rounds)
			o->rounds = 3;
		if (!set_records)
			o->records_b32 = 1000000;
		if (!set_trips)
			o->round_trips = 20000;
	}
	o->records_b1 = o->records_b32 / 2;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Clocks.                                                                 */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Cheap tick counter for per-round-trip samples; ticks_per_ns calibrates it. */
static BENCH_ALWAYS_INLINE uint64_t ticks(void)
{
#if BENCH_HAVE_TSC
	return __rdtsc();
#else
	return now_ns();
#endif
}

static double ticks_per_ns;

static void calibrate_ticks(void)
{
#if BENCH_HAVE_TSC
	/* Spin 50 ms against CLOCK_MONOTONIC; the TSC is invariant here. */
	uint64_t t0 = now_ns(), c0 = ticks(), t1, c1;
	do {
		t1 = now_ns();
	} while (t1 - t0 < 50000000u);
	c1 = ticks();
	ticks_per_ns = (double)(c1 - c0) / (double)(t1 - t0);
#else
	ticks_per_ns = 1.0;
#endif
}

/*
 * Noise: CPU time the rest of the machine took while a round ran (other
 * processes, and steal by the hypervisor), from /proc. Printed per round so a
 * reader can tell a quiet round from a disturbed one.
 */
struct cpu_sample {
	uint64_t busy;  /* all CPUs: user+nice+system+irq+softirq, jiffies */
	uint64_t steal; /* all CPUs, jiffies */
	uint64_t self;  /* this process: utime+stime, jiffies */
	uint64_t wall_ns;
	bool ok;
};

static void cpu_sample_take(struct cpu_sample *c)
{
	unsigned long long v[8] = { 0 };
	unsigned long ut = 0, st = 0;
	FILE *f;

	memset(c, 0, sizeof(*c));
	c->wall_ns = now_ns();
	f = fopen("/proc/stat", "r");
	if (!f)
		return;
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		       &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	f = fopen("/proc/self/stat", "r");
	if (!f)
		return;
	/* Fields 14 and 15; comm (field 2) is ours and has no spaces. */
	int m = fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
		       &st);
	fclose(f);
	if (n != 8 || m != 2)
		return;
	c->busy = v[0] + v[1] + v[2] + v[5] + v[6];
	c->steal = v[7];
	c->self = ut + st;
	c->ok = true;
}

/* Percent of all CPUs taken by others / stolen between two samples. */
static void cpu_noise(const struct cpu_sample *a, const struct cpu_sample *b, double *others,
		      double *steal)
{
	double hz = (double)sysconf(_SC_CLK_TCK);
	double cpus = (double)sysconf(_SC_NPROCESSORS_ONLN);
	double span = (double)(b->wall_ns - a->wall_ns) / 1e9 * hz * cpus;

	*others = *steal = -1;
	if (!a->ok || !b->ok || span <= 0)
		return;
	double busy = (double)(b->busy - a->busy) - (double)(b->self - a->self);
	*others = busy > 0 ? 100.0 * busy / span : 0;
	*steal = 100.0 * (double)(b->steal - a->steal) / span;
}

/* ---------------------------------------------------------------------- */
/* The bare ring: the floor. No validation, nothing but the hand-off.      */

struct bare_shared {
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) tail; /* producer: BR1 */
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) head; /* consumer: BR2 */
};
ONERING_STATIC_ASSERT(offsetof(struct bare_shared, head) == ONERING_CACHE_LINE,
		      "bare ring indices on separate lines");

struct bare_producer {
	ONERING_ATOMIC(uint64_t) *tail_word;
	ONERING_ATOMIC(uint64_t) *head_word;
	struct onering_event *slots;
	uint64_t mask;
	uint64_t tail;
	uint64_t head_cache;
};

struct bare_consumer {
	ONERING_ATOMIC(uint64_t) *tail_word;
	ONERING_ATOMIC(uint64_t) *head_word;
	const struct onering_event *slots;
	uint64_t mask;
	uint64_t head;
	uint64_t tail_cache;
};

static BENCH_ALWAYS_INLINE uint32_t bare_enqueue(struct bare_producer *p,
						  const struct onering_event *recs, uint32_t n)
{
	uint64_t cap = p->mask + 1;
	uint64_t space = cap - (p->tail - p->head_cache);

	if (space < n) {
		/* BA2: synchronises with BR2 (consumer's release of head). */
		p->head_cache = onering_atomic_load(p->head_word, onering_mo_acquire);
		space = cap - (p->tail - p->head_cache);
		if (space < n) {
			if (space == 0)
				return 0;
			n = (uint32_t)space;
		}
	}
	uint64_t idx = p->tail & p->mask;
	uint64_t first = cap - idx < n ? cap - idx : n;
	memcpy(&p->slots[idx], recs, first * BENCH_REC_SIZE);
	if (n > first)
		memcpy(&p->slots[0], recs + first, (n - first) * BENCH_REC_SIZE);
	p->tail += n;
	/* BR1: synchronises with BA1 (consumer's acquire of tail). */
	onering_atomic_store(p->tail_word, p->tail, onering_mo_release);
	return n;
}

static BENCH_ALWAYS_INLINE uint32_t bare_dequeue(struct bare_consumer *c,
						  struct onering_event *out, uint32_t n)
{
	uint64_t avail = c->tail_cache - c->head;

	if (avail < n) {
		/* BA1: synchronises with BR1 (producer's release of tail). */
		c->tail_cache = onering_atomic_load(c->tail_word, onering_mo_acquire);
		avail = c->tail_cache - c->head;
		if (avail < n) {
			if (avail == 0)
				return 0;
			n = (uint32_t)avail;
		}
	}
	uint64_t cap = c->mask + 1;
	uint64_t idx = c->head & c->mask;
	uint64_t first = cap - idx < n ? cap - idx : n;
	memcpy(out, &c->slots[idx], first * BENCH_REC_SIZE);
	if (n > first)
		memcpy(out + first, &c->slots[0], (n - first) * BENCH_REC_SIZE);
	c->head += n;
	/* BR2: synchronises with BA2 (producer's acquire of head). */
	onering_atomic_store(c->head_word, c->head, onering_mo_release);
	return n;
}

/* ---------------------------------------------------------------------- */
/* Shared state of one run, and the threads.                               */

enum peer {
	PEER_ONERING,
	PEER_BARE,
	PEER_RTE,
	PEER_PINGPONG,
	PEER_PINGPONG_LINES,
};

static const char *const peer_names[] = {
	[PEER_ONERING] = "onering",
	[PEER_BARE] = "bare",
	[PEER_RTE] = "rte_ring",
	[PEER_PINGPONG] = "pingpong",
	[PEER_PINGPONG_LINES] = "pp-lines",
};

/*
 * The latency floors. Message k (k = 1, 2, ...) is the value k stored in
 * ping line k & mask by the ping side (PR1 store-release, read by the echo
 * side's PA1 load-acquire) and answered with k in pong line k & mask by the
 * echo side (PR2, read by PA2). Each line is written by one side only.
 *   pingpong  mask 0: one line each way, always the same: the cost of
 *             moving one cache line, the floor the contract names;
 *   pp-lines  mask = capacity - 1: a fresh line per message, cycling over
 *             as many lines as the ring has slots: the floor of any ring
 *             whose slots rotate (information, no target).
 */
struct pp_line {
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) word;
};
ONERING_STATIC_ASSERT(sizeof(struct pp_line) == ONERING_CACHE_LINE, "one word per line");

/* One onering ring's memory: tail and head on their own lines, as in the ABI. */
struct onering_mem {
	struct onering_events_ctl *ev_ctl;  /* ev_tail_pos: producer's word */
	struct onering_consumer_ctl *c_ctl; /* ev_head_pos: consumer's word */
	struct onering_event *slots;
};

struct bench_mem {
	uint32_t capacity;
	struct onering_mem ring[2]; /* [1] is the return ring of the ping-pong */
	struct bare_shared *bare[2];
	struct onering_event *bare_slots[2];
	struct pp_line *pp_ping; /* capacity lines */
	struct pp_line *pp_pong; /* capacity lines */
	struct rte_ring *rte;
	uint64_t *samples; /* round-trip ticks, round_trips of them */
};

struct run {
	enum peer peer;
	uint32_t batch;
	uint64_t warm;    /* records (or round trips) before the timed part */
	uint64_t records; /* records (or round trips) timed */
	const struct bench_mem *mem;
	int cores[2];

	ONERING_ATOMIC(uint32_t) arrived; /* spin barrier between the two threads */
	ONERING_ATOMIC(uint32_t) abort;   /* a side failed: the other stops spinning */
	uint64_t t0_ns; /* written by side 0 */
	uint64_t t1_ns; /* written by side 1 */
	char err[2][200];
};

struct side {
	struct run *run;
	int idx; /* 0: producer / ping, 1: consumer / echo */
};

static void side_fail(struct side *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void side_fail(struct side *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->run->err[s->idx], sizeof(s->run->err[s->idx]), fmt, ap);
	va_end(ap);
	/* Relaxed is enough: the message is read after pthread_join. */
	onering_atomic_store(&s->run->abort, 1, onering_mo_relaxed);
}

static bool aborted(struct run *r)
{
	return onering_atomic_load(&r->abort, onering_mo_relaxed) != 0;
}

/* Both sides arrive at barrier number k (1, 2, ...); false if the run aborted. */
static bool barrier_wait(struct run *r, uint32_t k)
{
	onering_atomic_fetch_add(&r->arrived, 1, onering_mo_acq_rel);
	while (onering_atomic_load(&r->arrived, onering_mo_acquire) < 2 * k) {
		if (aborted(r))
			return false;
		onering_cpu_relax();
	}
	return true;
}

static int pin_self(int core)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(core, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* The per-peer send/receive, specialised by the constant peer argument. */
struct tx {
	struct onering_ring_producer op;
	struct bare_producer bp;
	struct rte_ring *rte;
};

struct rx {
	struct onering_ring_consumer oc;
	struct bare_consumer bc;
	struct rte_ring *rte;
};

static void tx_init(struct tx *t, const struct bench_mem *m, enum peer peer, int ring)
{
	memset(t, 0, sizeof(*t));
	switch (peer) {
	case PEER_ONERING:
		(void)onering_ring_producer_init(&t->op, &m->ring[ring].ev_ctl->ev_tail_pos,
						 &m->ring[ring].c_ctl->ev_head_pos,
						 m->ring[ring].slots, m->capacity, 0);
		break;
	case PEER_BARE:
		t->bp.tail_word = &m->bare[ring]->tail;
		t->bp.head_word = &m->bare[ring]->head;
		t->bp.slots = m->bare_slots[ring];
		t->bp.mask = m->capacity - 1;
		break;
	case PEER_RTE:
		t->rte = m->rte;
		break;
	case PEER_PINGPONG:
	case PEER_PINGPONG_LINES:
		break;
	}
}

static void rx_init(struct rx *x, const struct bench_mem *m, enum peer peer, int ring)
{
	memset(x, 0, sizeof(*x));
	switch (peer) {
	case PEER_ONERING:
		(void)onering_ring_consumer_init(&x->oc, &m->ring[ring].ev_ctl->ev_tail_pos,
						 &m->ring[ring].c_ctl->ev_head_pos,
						 m->ring[ring].slots, m->capacity, 0);
		break;
	case PEER_BARE:
		x->bc.tail_word = &m->bare[ring]->tail;
		x->bc.head_word = &m->bare[ring]->head;
		x->bc.slots = m->bare_slots[ring];
		x->bc.mask = m->capacity - 1;
		break;
	case PEER_RTE:
		x->rte = m->rte;
		break;
	case PEER_PINGPONG:
	case PEER_PINGPONG_LINES:
		break;
	}
}

static BENCH_ALWAYS_INLINE int tx_send(struct tx *t, enum peer peer,
				       const struct onering_event *recs, uint32_t n)
{
	switch (peer) {
	case PEER_ONERING:
		return onering_ring_enqueue_burst(&t->op, recs, n);
	case PEER_BARE:
		return (int)bare_enqueue(&t->bp, recs, n);
	case PEER_RTE:
		return (int)rte_ring_sp_enqueue_burst_elem(t->rte, recs, BENCH_REC_SIZE, n, NULL);
	case PEER_PINGPONG:
	case PEER_PINGPONG_LINES:
		break;
	}
	return -EINVAL;
}

static BENCH_ALWAYS_INLINE int rx_recv(struct rx *x, enum peer peer, struct onering_event *out,
				       uint32_t n)
{
	switch (peer) {
	case PEER_ONERING:
		return onering_ring_dequeue_burst(&x->oc, out, n);
	case PEER_BARE:
		return (int)bare_dequeue(&x->bc, out, n);
	case PEER_RTE:
		return (int)rte_ring_sc_dequeue_burst_elem(x->rte, out, BENCH_REC_SIZE, n, NULL);
	case PEER_PINGPONG:
	case PEER_PINGPONG_LINES:
		break;
	}
	return -EINVAL;
}

static void report_proto(struct side *s, struct tx *t, struct rx *x, int r)
{
	int fault = t ? t->op.fault : x->oc.fault;

	side_fail(s, "%s: ring call returned %d (%s)", peer_names[s->run->peer], r,
		  r == -EPROTO ? onering_ring_fault_str(fault) : "unexpected");
}

/* ---------------------------------------------------------------------- */
/* Throughput: side 0 produces, side 1 consumes and checks the sequence.   */

static BENCH_ALWAYS_INLINE bool produce(struct side *s, struct tx *t, enum peer peer,
					struct onering_event *buf, uint64_t seq, uint64_t n)
{
	const uint32_t batch = s->run->batch;
	const uint64_t end = seq + n;

	while (seq < end) {
		uint32_t want = end - seq < batch ? (uint32_t)(end - seq) : batch;
		uint32_t done = 0;

		for (uint32_t i = 0; i < want; i++)
			buf[i].cookie = seq + i;
		for (;;) {
			int r = tx_send(t, peer, buf + done, want - done);
			if (ONERING_UNLIKELY(r < 0)) {
				report_proto(s, t, NULL, r);
				return false;
			}
			done += (uint32_t)r;
			if (done == want)
				break;
			if (r == 0) {
				if (aborted(s->run))
					return false;
				onering_cpu_relax();
			}
		}
		seq += want;
	}
	return true;
}

static BENCH_ALWAYS_INLINE bool consume(struct side *s, struct rx *x, enum peer peer,
					struct onering_event *buf, uint64_t seq, uint64_t n)
{
	const uint32_t batch = s->run->batch;
	const uint64_t end = seq + n;

	while (seq < end) {
		uint32_t want = end - seq < batch ? (uint32_t)(end - seq) : batch;
		int r = rx_recv(x, peer, buf, want);

		if (r <= 0) {
			if (ONERING_UNLIKELY(r < 0)) {
				report_proto(s, NULL, x, r);
				return false;
			}
			if (aborted(s->run))
				return false;
			onering_cpu_relax();
			continue;
		}
		uint64_t bad = 0;
		for (int i = 0; i < r; i++)
			bad |= buf[i].cookie ^ (seq + (uint64_t)i);
		if (ONERING_UNLIKELY(bad)) {
			for (int i = 0; i < r; i++) {
				if (buf[i].cookie != seq + (uint64_t)i) {
					side_fail(s,
						  "%s batch %u: record %" PRIu64
						  " carries sequence %" PRIu64 " (lost or reordered)",
						  peer_names[peer], batch, seq + (uint64_t)i,
						  buf[i].cookie);
					break;
				}
			}
			return false;
		}
		seq += (uint64_t)r;
	}
	return true;
}

static BENCH_ALWAYS_INLINE void tput_side(struct side *s, enum peer peer)
{
	struct run *r = s->run;
	struct onering_event buf[BENCH_MAX_BATCH];
	struct tx t;
	struct rx x;

	/* Records are fully initialised once; the cookie changes per record. */
	memset(buf, 0, sizeof(buf));
	for (uint32_t i = 0; i < BENCH_MAX_BATCH; i++) {
		buf[i].kind = ONERING_EV_USER;
		buf[i].sub_id = 7;
		buf[i].sub_gen = 1;
	}
	if (s->idx == 0)
		tx_init(&t, r->mem, peer, 0);
	else
		rx_init(&x, r->mem, peer, 0);

	if (!barrier_wait(r, 1))
		return;
	/* Warm-up: caches, TLB, branch predictors; not timed. */
	if (s->idx == 0 ? !produce(s, &t, peer, buf, 0, r->warm)
			: !consume(s, &x, peer, buf, 0, r->warm))
		return;
	if (!barrier_wait(r, 2))
		return;
	if (s->idx == 0) {
		r->t0_ns = now_ns();
		(void)produce(s, &t, peer, buf, r->warm, r->records);
	} else {
		if (consume(s, &x, peer, buf, r->warm, r->records))
			r->t1_ns = now_ns();
	}
}

/* ---------------------------------------------------------------------- */
/* Latency: side 0 pings one record, side 1 echoes it on the return ring.  */

static BENCH_ALWAYS_INLINE bool ring_ping(struct side *s, enum peer peer, struct tx *t,
					  struct rx *x, uint64_t first, uint64_t n,
					  uint64_t *samples)
{
	struct onering_event rec, back;
	uint64_t prev = ticks();

	memset(&rec, 0, sizeof(rec));
	rec.kind = ONERING_EV_USER;
	for (uint64_t i = 0; i < n; i++) {
		int r;

		rec.cookie = first + i;
		while ((r = tx_send(t, peer, &rec, 1)) != 1) {
			if (r < 0 || aborted(s->run)) {
				if (r < 0)
					report_proto(s, t, NULL, r);
				return false;
			}
			onering_cpu_relax();
		}
		while ((r = rx_recv(x, peer, &back, 1)) != 1) {
			if (r < 0 || aborted(s->run)) {
				if (r < 0)
					report_proto(s, NULL, x, r);
				return false;
			}
			onering_cpu_relax();
		}
		uint64_t now = ticks();
		if (samples)
			samples[i] = now - prev;
		prev = now;
		if (ONERING_UNLIKELY(back.cookie != first + i)) {
			side_fail(s, "%s ping-pong: sent %" PRIu64 ", got back %" PRIu64,
				  peer_names[peer], first + i, back.cookie);
			return false;
		}
	}
	return true;
}

static BENCH_ALWAYS_INLINE bool ring_echo(struct side *s, enum peer peer, struct tx *t,
					  struct rx *x, uint64_t first, uint64_t n)
{
	struct onering_event rec;

	for (uint64_t i = 0; i < n; i++) {
		int r;

		while ((r = rx_recv(x, peer, &rec, 1)) != 1) {
			if (r < 0 || aborted(s->run)) {
				if (r < 0)
					report_proto(s, NULL, x, r);
				return false;
			}
			onering_cpu_relax();
		}
		if (ONERING_UNLIKELY(rec.cookie != first + i)) {
			side_fail(s, "%s ping-pong: expected %" PRIu64 ", received %" PRIu64,
				  peer_names[peer], first + i, rec.cookie);
			return false;
		}
		while ((r = tx_send(t, peer, &rec, 1)) != 1) {
			if (r < 0 || aborted(s->run)) {
				if (r < 0)
					report_proto(s, t, NULL, r);
				return false;
			}
			onering_cpu_relax();
		}
	}
	return true;
}

static bool word_ping(struct side *s, struct pp_line *ping, const struct pp_line *pong,
		      uint64_t mask, uint64_t first, uint64_t n, uint64_t *samples)
{
	uint64_t prev = ticks();

	for (uint64_t i = 0; i < n; i++) {
		uint64_t v = first + i + 1;
		/* PR1: synchronises with PA1 (echo side's acquire of the ping line). */
		onering_atomic_store(&ping[v & mask].word, v, onering_mo_release);
		/* PA2: synchronises with PR2 (echo side's release of the pong line). */
		while (onering_atomic_load(&pong[v & mask].word, onering_mo_acquire) != v) {
			if (aborted(s->run))
				return false;
			onering_cpu_relax();
		}
		uint64_t now = ticks();
		if (samples)
			samples[i] = now - prev;
		prev = now;
	}
	return true;
}

static bool word_echo(struct side *s, const struct pp_line *ping, struct pp_line *pong,
		      uint64_t mask, uint64_t first, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t v = first + i + 1, seen;
		/* PA1: synchronises with PR1 (ping side's release of the ping line). */
		while ((seen = onering_atomic_load(&ping[v & mask].word, onering_mo_acquire)) != v) {
			if (ONERING_UNLIKELY(seen > v)) {
				side_fail(s, "%s: expected %" PRIu64 ", saw %" PRIu64,
					  peer_names[s->run->peer], v, seen);
				return false;
			}
			if (aborted(s->run))
				return false;
			onering_cpu_relax();
		}
		/* PR2: synchronises with PA2 (ping side's acquire of the pong line). */
		onering_atomic_store(&pong[v & mask].word, v, onering_mo_release);
	}
	return true;
}

/* Ring pair: ring 0 carries pings (side 0 -> 1), ring 1 echoes (side 1 -> 0). */
static BENCH_ALWAYS_INLINE void lat_rings(struct side *s, enum peer peer)
{
	struct run *r = s->run;
	const struct bench_mem *m = r->mem;
	struct tx t;
	struct rx x;

	tx_init(&t, m, peer, s->idx);
	rx_init(&x, m, peer, 1 - s->idx);
	if (!barrier_wait(r, 1))
		return;
	if (s->idx == 0 ? !ring_ping(s, peer, &t, &x, 0, r->warm, NULL)
			: !ring_echo(s, peer, &t, &x, 0, r->warm))
		return;
	if (!barrier_wait(r, 2))
		return;
	if (s->idx == 0)
		(void)ring_ping(s, peer, &t, &x, r->warm, r->records, m->samples);
	else
		(void)ring_echo(s, peer, &t, &x, r->warm, r->records);
}

static void lat_words(struct side *s, uint64_t mask)
{
	struct run *r = s->run;
	const struct bench_mem *m = r->mem;

	if (!barrier_wait(r, 1))
		return;
	if (s->idx == 0 ? !word_ping(s, m->pp_ping, m->pp_pong, mask, 0, r->warm, NULL)
			: !word_echo(s, m->pp_ping, m->pp_pong, mask, 0, r->warm))
		return;
	if (!barrier_wait(r, 2))
		return;
	if (s->idx == 0)
		(void)word_ping(s, m->pp_ping, m->pp_pong, mask, r->warm, r->records, m->samples);
	else
		(void)word_echo(s, m->pp_ping, m->pp_pong, mask, r->warm, r->records);
}

static void lat_side(struct side *s)
{
	switch (s->run->peer) {
	case PEER_ONERING:
		lat_rings(s, PEER_ONERING);
		break;
	case PEER_BARE:
		lat_rings(s, PEER_BARE);
		break;
	case PEER_PINGPONG:
		lat_words(s, 0);
		break;
	case PEER_PINGPONG_LINES:
		lat_words(s, s->run->mem->capacity - 1);
		break;
	case PEER_RTE:
		side_fail(s, "rte_ring has no latency run");
		break;
	}
}

static void *side_main(void *arg)
{
	struct side *s = arg;
	struct run *r = s->run;
	int rc = pin_self(r->cores[s->idx]);

	if (rc) {
		side_fail(s, "cannot pin thread to core %d: %s", r->cores[s->idx], strerror(-rc));
		return NULL;
	}
	if (r->batch == 0) {
		lat_side(s);
		return NULL;
	}
	switch (r->peer) {
	case PEER_ONERING:
		tput_side(s, PEER_ONERING);
		break;
	case PEER_BARE:
		tput_side(s, PEER_BARE);
		break;
	case PEER_RTE:
		tput_side(s, PEER_RTE);
		break;
	case PEER_PINGPONG:
	case PEER_PINGPONG_LINES:
		side_fail(s, "ping-pong has no throughput run");
		break;
	}
	return NULL;
}

/* Run both sides on their cores; 0, 1 on a correctness failure, 2 on setup. */
static int run_pair(struct run *r)
{
	struct side sides[2] = { { r, 0 }, { r, 1 } };
	pthread_t th[2];
	int rc;

	for (int i = 0; i < 2; i++) {
		rc = pthread_create(&th[i], NULL, side_main, &sides[i]);
		if (rc) {
			fprintf(stderr, "pthread_create: %s\n", strerror(rc));
			if (i == 1) {
				onering_atomic_store(&r->abort, 1, onering_mo_relaxed);
				pthread_join(th[0], NULL);
			}
			return 2;
		}
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	if (!onering_atomic_load(&r->abort, onering_mo_relaxed))
		return 0;
	for (int i = 0; i < 2; i++)
		if (r->err[i][0])
			fprintf(stderr, "FAIL: %s\n", r->err[i]);
	return strstr(r->err[0], "cannot pin") || strstr(r->err[1], "cannot pin") ? 2 : 1;
}

static void run_reset(struct run *r, const struct bench_mem *m, const struct bench_opts *o,
		      enum peer peer, uint32_t batch)
{
	memset(r, 0, sizeof(*r));
	r->peer = peer;
	r->batch = batch;
	r->mem = m;
	r->cores[0] = o->cores[0];
	r->cores[1] = o->cores[1];
	onering_atomic_init(&r->arrived, 0);
	onering_atomic_init(&r->abort, 0);
}

static void shared_reset(const struct bench_mem *m)
{
	for (int i = 0; i < 2; i++)
		onering_ring_shared_init(&m->ring[i].ev_ctl->ev_tail_pos,
					 &m->ring[i].c_ctl->ev_head_pos, 0);
	for (int i = 0; i < 2; i++) {
		onering_atomic_store(&m->bare[i]->tail, 0, onering_mo_relaxed);
		onering_atomic_store(&m->bare[i]->head, 0, onering_mo_relaxed);
	}
	for (uint32_t i = 0; i < m->capacity; i++) {
		onering_atomic_store(&m->pp_ping[i].word, 0, onering_mo_relaxed);
		onering_atomic_store(&m->pp_pong[i].word, 0, onering_mo_relaxed);
	}
}

/* Mrecords/s of one throughput run, or a negative status. */
static int run_tput(const struct bench_mem *m, const struct bench_opts *o, enum peer peer,
		    uint32_t batch, uint64_t records, double *mrps)
{
	struct run r;
	int rc;

	run_reset(&r, m, o, peer, batch);
	r.records = records;
	r.warm = r.records / 20 < 100000 ? r.records / 20 : 100000;
	shared_reset(m);
	rc = run_pair(&r);
	if (rc)
		return rc;
	*mrps = (double)r.records * 1e3 / (double)(r.t1_ns - r.t0_ns);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One-way p50/p99 in ns of one latency run, or a non-zero status. */
static int run_lat(const struct bench_mem *m, const struct bench_opts *o, enum peer peer,
		   double *p50_ns, double *p99_ns)
{
	struct run r;
	int rc;

	run_reset(&r, m, o, peer, 0);
	r.records = o->round_trips;
	r.warm = o->round_trips / 10 < 20000 ? o->round_trips / 10 : 20000;
	shared_reset(m);
	rc = run_pair(&r);
	if (rc)
		return rc;
	qsort(m->samples, r.records, sizeof(uint64_t), cmp_u64);
	/* A round trip is two hand-offs: one-way = round trip / 2. */
	*p50_ns = (double)m->samples[r.records / 2] / ticks_per_ns / 2.0;
	*p99_ns = (double)m->samples[r.records * 99 / 100] / ticks_per_ns / 2.0;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Memory and DPDK.                                                        */

static void *alloc_lines(size_t size)
{
	size = (size + ONERING_CACHE_LINE - 1) & ~(size_t)(ONERING_CACHE_LINE - 1);
	void *p = aligned_alloc(ONERING_CACHE_LINE, size);
	if (p)
		memset(p, 0, size);
	return p;
}

static int mem_create(struct bench_mem *m, const struct bench_opts *o)
{
	size_t slots_size = (size_t)o->capacity * sizeof(struct onering_event);

	memset(m, 0, sizeof(*m));
	m->capacity = o->capacity;
	for (int i = 0; i < 2; i++) {
		m->ring[i].ev_ctl = alloc_lines(sizeof(struct onering_events_ctl));
		m->ring[i].c_ctl = alloc_lines(sizeof(struct onering_consumer_ctl));
		m->ring[i].slots = alloc_lines(slots_size);
		if (!m->ring[i].ev_ctl || !m->ring[i].c_ctl || !m->ring[i].slots)
			return -ENOMEM;
	}
	for (int i = 0; i < 2; i++) {
		m->bare[i] = alloc_lines(sizeof(struct bare_shared));
		m->bare_slots[i] = alloc_lines(slots_size);
		if (!m->bare[i] || !m->bare_slots[i])
			return -ENOMEM;
	}
	m->pp_ping = alloc_lines((size_t)o->capacity * sizeof(struct pp_line));
	m->pp_pong = alloc_lines((size_t)o->capacity * sizeof(struct pp_line));
	m->samples = calloc(o->round_trips, sizeof(uint64_t));
	if (!m->pp_ping || !m->pp_pong || !m->samples)
		return -ENOMEM;
	return 0;
}

static void mem_destroy(struct bench_mem *m)
{
	for (int i = 0; i < 2; i++) {
		free(m->ring[i].ev_ctl);
		free(m->ring[i].c_ctl);
		free(m->ring[i].slots);
		free(m->bare[i]);
		free(m->bare_slots[i]);
	}
	free(m->pp_ping);
	free(m->pp_pong);
	free(m->samples);
	if (m->rte)
		rte_ring_free(m->rte);
}

static int eal_start(const struct bench_opts *o)
{
	static char args[12][64];
	char *argv[12];
	const char *const fixed[] = {
		"bench", "--no-huge", "--no-pci", "--no-shconf", "-m", "64", "--file-prefix",
		NULL,    "--log-level", "error", "-l", NULL,
	};
	int argc = 0;

	for (int i = 0; i < 12; i++) {
		if (i == 7)
			snprintf(args[i], sizeof(args[i]), "onering-bench-%ld", (long)getpid());
		else if (i == 11)
			snprintf(args[i], sizeof(args[i]), "%d,%d", o->cores[0], o->cores[1]);
		else
			snprintf(args[i], sizeof(args[i]), "%s", fixed[i]);
		argv[argc++] = args[i];
	}
	int rc = rte_eal_init(argc, argv);
	if (rc < 0) {
		fprintf(stderr,
			"rte_eal_init failed: %s (need cores %d,%d online and writable "
			"/var/run/dpdk or $XDG_RUNTIME_DIR; --no-rte skips DPDK)\n",
			rte_strerror(rte_errno), o->cores[0], o->cores[1]);
		return -1;
	}
	return 0;
}

/*
 * rte_eal_cleanup() leaves the runtime dir of our unique --file-prefix
 * behind (with the multi-process socket still in it): remove both.
 */
static void eal_stop(void)
{
	char dir[PATH_MAX];
	char path[PATH_MAX + 256];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	if (!dir[0] || !strstr(dir, "onering-bench-"))
		return;
	d = opendir(dir);
	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (unlink(path) && errno != ENOENT)
				fprintf(stderr, "warning: cannot remove %s: %s\n", path,
					strerror(errno));
		}
		closedir(d);
	}
	if (rmdir(dir) && errno != ENOENT)
		fprintf(stderr, "warning: cannot remove DPDK runtime dir %s: %s\n", dir,
			strerror(errno));
}

/* ---------------------------------------------------------------------- */
/* Results.                                                                */

static const uint32_t tput_batches[2] = { 32, 1 };
static const enum peer tput_peers[3] = { PEER_ONERING, PEER_BARE, PEER_RTE };
static const enum peer lat_peers[4] = { PEER_ONERING, PEER_BARE, PEER_PINGPONG_LINES,
					PEER_PINGPONG };

enum fig {
	FIG_B32_ONERING, /* + index in tput_peers */
	FIG_B32_BARE,
	FIG_B32_RTE,
	FIG_B1_ONERING, /* + index in tput_peers */
	FIG_B1_BARE,
	FIG_B1_RTE,
	FIG_P50_ONERING, /* + index in lat_peers */
	FIG_P50_BARE,
	FIG_P50_PPL,
	FIG_P50_PP,
	FIG_P99_ONERING, /* + index in lat_peers */
	FIG_P99_BARE,
	FIG_P99_PPL,
	FIG_P99_PP,
	FIG_COUNT,
};

static bool fig_is_rte(int f)
{
	return f == FIG_B32_RTE || f == FIG_B1_RTE;
}

static double median(const double *v, unsigned n)
{
	double tmp[BENCH_MAX_ROUNDS];

	memcpy(tmp, v, n * sizeof(double));
	qsort(tmp, n, sizeof(double), cmp_double);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2.0;
}

struct ratio_def {
	const char *name;
	enum fig num, den;
	bool at_least; /* the target is a floor (>=) or a ceiling (<=) */
	double target; /* 0: no target, for information */
};

static const struct ratio_def ratio_defs[] = {
	{ "onering/bare batch 32", FIG_B32_ONERING, FIG_B32_BARE, true, 0.90 },
	{ "onering/bare batch 1", FIG_B1_ONERING, FIG_B1_BARE, true, 0.85 },
	{ "onering/rte_ring batch 32", FIG_B32_ONERING, FIG_B32_RTE, true, 1.70 },
	{ "onering/rte_ring batch 1", FIG_B1_ONERING, FIG_B1_RTE, true, 0 },
	{ "bare/rte_ring batch 32", FIG_B32_BARE, FIG_B32_RTE, true, 0 },
	{ "onering/pingpong p50", FIG_P50_ONERING, FIG_P50_PP, false, 1.50 },
	{ "onering/pingpong p99", FIG_P99_ONERING, FIG_P99_PP, false, 0 },
	{ "onering/bare pair p50", FIG_P50_ONERING, FIG_P50_BARE, false, 0 },
	{ "onering/pp-lines p50", FIG_P50_ONERING, FIG_P50_PPL, false, 0 },
};

static void print_summary(const struct bench_opts *o, double fig[][FIG_COUNT],
			  unsigned disturbed)
{
	unsigned n = o->rounds;
	double col[BENCH_MAX_ROUNDS];
	double med[FIG_COUNT];

	for (int f = 0; f < FIG_COUNT; f++) {
		for (unsigned i = 0; i < n; i++)
			col[i] = fig[i][f];
		med[f] = median(col, n);
	}

	printf("\nSummary: medians of %u rounds (%u disturbed by other load)\n\n", n, disturbed);
	printf("  Throughput, Mrecords/s      batch 32   batch 1\n");
	printf("  onering ring               %9.1f %9.1f\n", med[FIG_B32_ONERING],
	       med[FIG_B1_ONERING]);
	printf("  bare SPSC ring (floor)     %9.1f %9.1f\n", med[FIG_B32_BARE], med[FIG_B1_BARE]);
	if (o->with_rte)
		printf("  rte_ring SP/SC             %9.1f %9.1f\n", med[FIG_B32_RTE],
		       med[FIG_B1_RTE]);
	printf("\n  One-way latency, ns              p50       p99\n");
	printf("  onering ring pair          %9.1f %9.1f\n", med[FIG_P50_ONERING],
	       med[FIG_P99_ONERING]);
	printf("  bare ring pair             %9.1f %9.1f\n", med[FIG_P50_BARE], med[FIG_P99_BARE]);
	char label[32];
	snprintf(label, sizeof(label), "pp-lines (%u lines)", o->capacity);
	printf("  %-26s %9.1f %9.1f\n", label, med[FIG_P50_PPL], med[FIG_P99_PPL]);
	printf("  pingpong (floor)           %9.1f %9.1f\n", med[FIG_P50_PP], med[FIG_P99_PP]);

	printf("\n  Ratio                      median  target    min   max   per round\n");
	for (size_t d = 0; d < sizeof(ratio_defs) / sizeof(ratio_defs[0]); d++) {
		const struct ratio_def *rd = &ratio_defs[d];
		char target[16] = "-";
		const char *verdict = "";

		if (!o->with_rte && (fig_is_rte(rd->num) || fig_is_rte(rd->den)))
			continue;
		for (unsigned i = 0; i < n; i++)
			col[i] = fig[i][rd->num] / fig[i][rd->den];
		double mr = median(col, n);
		if (rd->target > 0) {
			snprintf(target, sizeof(target), "%s%.2f", rd->at_least ? ">=" : "<=",
				 rd->target);
			bool met = rd->at_least ? mr >= rd->target : mr <= rd->target;
			verdict = met ? "  met" : "  MISSED";
		}
		double lo = col[0], hi = col[0];
		for (unsigned i = 1; i < n; i++) {
			lo = col[i] < lo ? col[i] : lo;
			hi = col[i] > hi ? col[i] : hi;
		}
		printf("  %-26s %5.2f  %-7s %5.2f %5.2f  ", rd->name, mr, target, lo, hi);
		for (unsigned i = 0; i < n && i < 10; i++)
			printf(" %5.2f", col[i]);
		if (n > 10)
			printf(" ...");
		printf("%s\n", verdict);
	}
	printf("\n  Targets are figures, not pass/fail: a missed one does not change the exit"
	       " status.\n");
}

/* test, peer, batch, unit of each figure, for the CSV */
static const char *const fig_names[FIG_COUNT][4] = {
	[FIG_B32_ONERING] = { "throughput", "onering", "32", "Mrec/s" },
	[FIG_B32_BARE] = { "throughput", "bare", "32", "Mrec/s" },
	[FIG_B32_RTE] = { "throughput", "rte_ring", "32", "Mrec/s" },
	[FIG_B1_ONERING] = { "throughput", "onering", "1", "Mrec/s" },
	[FIG_B1_BARE] = { "throughput", "bare", "1", "Mrec/s" },
	[FIG_B1_RTE] = { "throughput", "rte_ring", "1", "Mrec/s" },
	[FIG_P50_ONERING] = { "latency_p50", "onering", "1", "ns" },
	[FIG_P50_BARE] = { "latency_p50", "bare", "1", "ns" },
	[FIG_P50_PPL] = { "latency_p50", "pp-lines", "1", "ns" },
	[FIG_P50_PP] = { "latency_p50", "pingpong", "1", "ns" },
	[FIG_P99_ONERING] = { "latency_p99", "onering", "1", "ns" },
	[FIG_P99_BARE] = { "latency_p99", "bare", "1", "ns" },
	[FIG_P99_PPL] = { "latency_p99", "pp-lines", "1", "ns" },
	[FIG_P99_PP] = { "latency_p99", "pingpong", "1", "ns" },
};

static int write_csv(const struct bench_opts *o, double fig[][FIG_COUNT])
{
	FILE *f = fopen(o->csv_path, "w");

	if (!f) {
		fprintf(stderr, "cannot write --csv %s: %s\n", o->csv_path, strerror(errno));
		return -1;
	}
	fprintf(f, "round,test,peer,batch,value,unit\n");
	for (unsigned i = 0; i < o->rounds; i++)
		for (int k = 0; k < FIG_COUNT; k++) {
			if (!o->with_rte && fig_is_rte(k))
				continue;
			fprintf(f, "%u,%s,%s,%s,%.3f,%s\n", i + 1, fig_names[k][0], fig_names[k][1],
				fig_names[k][2], fig[i][k], fig_names[k][3]);
		}
	if (fclose(f)) {
		fprintf(stderr, "cannot write --csv %s: %s\n", o->csv_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* One round: every peer once, in a fixed order. 0 or an exit status. */
static int run_round(const struct bench_mem *m, const struct bench_opts *o, double *fig)
{
	int status;

	for (int b = 0; b < 2; b++) {
		for (int p = 0; p < 3; p++) {
			enum peer peer = tput_peers[p];
			double v = 0;

			if (peer == PEER_RTE && !o->with_rte)
				continue;
			status = run_tput(m, o, peer, tput_batches[b],
					  b == 0 ? o->records_b32 : o->records_b1, &v);
			if (status)
				return status;
			fig[(b == 0 ? FIG_B32_ONERING : FIG_B1_ONERING) + p] = v;
			printf("  throughput  batch %-2u  %-9s %8.1f Mrec/s\n", tput_batches[b],
			       peer_names[peer], v);
			fflush(stdout);
		}
	}
	for (int p = 0; p < 4; p++) {
		double p50, p99;

		status = run_lat(m, o, lat_peers[p], &p50, &p99);
		if (status)
			return status;
		fig[FIG_P50_ONERING + p] = p50;
		fig[FIG_P99_ONERING + p] = p99;
		printf("  latency     one-way   %-9s p50 %6.1f ns  p99 %6.1f ns\n",
		       peer_names[lat_peers[p]], p50, p99);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_mem m;
	static double fig[BENCH_MAX_ROUNDS][FIG_COUNT];
	unsigned disturbed = 0;
	int status = 0;
	bool eal_up = false;

	if (parse_opts(argc, argv, &o))
		return 2;
	for (int i = 0; i < 2; i++) {
		if (o.cores[i] >= sysconf(_SC_NPROCESSORS_CONF)) {
			fprintf(stderr, "--cores: core %d does not exist (this machine has %ld)\n",
				o.cores[i], sysconf(_SC_NPROCESSORS_CONF));
			return 2;
		}
	}
	if (mem_create(&m, &o)) {
		fprintf(stderr, "out of memory for rings of %u records\n", o.capacity);
		mem_destroy(&m);
		return 2;
	}
	if (o.with_rte) {
		if (eal_start(&o)) {
			mem_destroy(&m);
			return 2;
		}
		eal_up = true;
		char name[RTE_RING_NAMESIZE];
		snprintf(name, sizeof(name), "bench%ld", (long)getpid());
		m.rte = rte_ring_create_elem(name, BENCH_REC_SIZE, o.capacity, SOCKET_ID_ANY,
					     RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (!m.rte) {
			fprintf(stderr, "rte_ring_create_elem(%u x 64 B): %s\n", o.capacity,
				rte_strerror(rte_errno));
			status = 2;
			goto out;
		}
	}
	calibrate_ticks();

	printf("onering-bench-ring: cores %d,%d; capacity %u; %u rounds; %" PRIu64
	       " records at batch 32, %" PRIu64 " at batch 1; %" PRIu64 " round trips%s\n",
	       o.cores[0], o.cores[1], o.capacity, o.rounds, o.records_b32, o.records_b1,
	       o.round_trips, o.with_rte ? "" : "; rte_ring skipped");
	if (o.with_rte)
		printf("rte_ring holds %u records (count - 1)\n", rte_ring_get_capacity(m.rte));
	fflush(stdout);

	/*
	 * Process warm-up, untimed: the first run after start is slower (idle
	 * vCPU waking, page faults, frequency); spin both cores on every
	 * throughput peer once before round 1.
	 */
	for (int p = 0; p < 3; p++) {
		double v;

		if (tput_peers[p] == PEER_RTE && !o.with_rte)
			continue;
		status = run_tput(&m, &o, tput_peers[p], 32, o.records_b32 / 8, &v);
		if (status)
			goto out;
	}

	for (unsigned round = 0; round < o.rounds; round++) {
		struct cpu_sample c0, c1;
		double others, steal;

		printf("round %u/%u\n", round + 1, o.rounds);
		cpu_sample_take(&c0);
		status = run_round(&m, &o, fig[round]);
		if (status)
			goto out;
		cpu_sample_take(&c1);
		cpu_noise(&c0, &c1, &others, &steal);
		if (others >= 0) {
			bool noisy = others + steal > 5.0;
			disturbed += noisy;
			printf("  noise: other tasks %.1f%%, steal %.1f%% of all CPUs%s\n", others,
			       steal, noisy ? " (disturbed round)" : "");
		}
	}
	print_summary(&o, fig, disturbed);
	if (o.csv_path && write_csv(&o, fig))
		status = 2;
out:
	mem_destroy(&m);
	if (eal_up)
		eal_stop();
	return status;
}
