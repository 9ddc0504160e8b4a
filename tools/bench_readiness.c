/* SPDX-License-Identifier: MIT */
/*
 * onering-bench-readiness: fd readiness -> consumer thread, onering against
 * epoll and io_uring multishot poll on the same workload, every peer in the
 * same run, rounds interleaved.
 *
 * Workload
 *   N event sources (eventfds, or pipes with --source pipe). A producer
 *   thread pinned to one core writes to them round-robin, at full speed
 *   (throughput) or one event in flight with a random 30-70 us gap after
 *   each acknowledgement (latency). A consumer thread pinned to another
 *   core takes readiness events and, for each, reads the source once to
 *   reset it (a pipe: until a short read) -- the same work for every peer.
 *
 * Peers
 *   onering-busy      this program starts oneringd (--idle-sleep-ms -1: the
 *                     poller never sleeps), opens a queue and adds the N
 *                     sources (EDGE); the consumer busy-polls onering_poll();
 *   onering-adaptive  the same with the broker's default idle policy (spin
 *                     100 us, then epoll_wait for at most 1 ms);
 *   onering-wait      busy broker; the consumer calls onering_wait(min 1),
 *                     which spins 50 us, then sleeps on the queue's futex
 *                     doorbell (informational: no target);
 *   epoll-busy        epoll_wait(timeout 0) in a loop, EPOLLET;
 *   epoll-block       blocking epoll_wait, EPOLLET;
 *   uring-busy        multishot poll on each fd; the consumer peeks the CQ
 *                     and, when it is empty, io_uring_get_events() (with
 *                     SINGLE_ISSUER|DEFER_TASKRUN the task work only runs
 *                     there); without DEFER_TASKRUN it only peeks;
 *   uring-block       multishot poll; io_uring_submit_and_wait_timeout();
 *   uring-peek        multishot poll on a ring with the default setup; the
 *                     consumer only peeks (no syscall; completions are
 *                     posted by task work that an IPI makes the consumer
 *                     thread run).
 *
 * Metrics (per peer and N; medians across rounds, per-round ratios)
 *   events/s          readiness events the consumer took;
 *   writes/s          producer writes drained (sum of the eventfd counters
 *                     read); writes/event shows how much a peer coalesces;
 *   syscalls/event    consumer syscalls counted with perf_event_open on the
 *                     consumer's tid, tracepoint raw_syscalls:sys_enter; also
 *                     the same minus the consumer's own read()s ("beyond the
 *                     read"), and the broker's (all its threads). Counted in
 *                     a separate pass after the rounds: an enabled syscall
 *                     tracepoint puts every syscall on the machine through
 *                     the slow path (about 20 % fewer events/s for epoll
 *                     here), so rates, CPU and latency come from uncounted
 *                     runs;
 *   CPU/event         consumer thread CPU (CLOCK_THREAD_CPUTIME_ID); total =
 *                     consumer + producer + every oneringd thread (from
 *                     /proc/PID/task/TID/schedstat, ns);
 *   latency           producer stamps CLOCK_MONOTONIC into memory shared
 *                     with the consumer, then write()s; the consumer takes
 *                     now - stamp when the peer hands it the event (before
 *                     its read). For onering the record's publish timestamp
 *                     splits that into write->broker harvest and harvest->
 *                     consumer.
 *
 * Placement (--cores P,C,B; default 0,1,0 for a 2-CPU machine): producer on
 * P, consumer on C, the broker's poller and control thread on B. With B ==
 * P the busy broker time-shares the producer's core (it needs a core of its
 * own to show its own cost; --cores 1,1,0 gives it one for latency).
 *
 * Correctness: every unit written must be read back, per source, before a
 * measurement ends (a lost edge leaves a counter unread); otherwise the
 * program fails. A latency measurement with no sample at all (one event in
 * flight held up for the whole window) fails too, unless the threads that
 * carry the event (consumer, producer, broker) spent at least half of that
 * time runnable and waiting for a CPU (schedstat run_delay): then other
 * processes starved it, and it counts as disturbed (re-run under
 * --retry-noisy; left out of the figures if every run of it starved).
 *
 * Exit status: 0 when every peer delivered everything (targets missed are
 * figures, not failures); 1 on a correctness failure; 2 on a usage or setup
 * error; 130 when interrupted (the broker is stopped and its directory
 * removed on every path).
 *
 * Ordering contract of the words this program shares between its threads:
 *   phase     written by the main thread only (R0 store-release), read by
 *             producer and consumer (A0 load-acquire): what to do now.
 *   stamp_ns  written by the producer only, R1 store-release before the
 *             write() that raises the event; the consumer's A1 load-acquire
 *             after it took that event pairs with it (the write/readiness
 *             path through the kernel orders them too).
 *   acked     written by the consumer only, R2 store-release after its read;
 *             the producer's A2 load-acquire pairs with it before it raises
 *             the next event (one event in flight).
 *   ack_waiting / ack_futex
 *             the producer sleeps for the ack on a futex rather than waking
 *             every few microseconds (it may share its core with the
 *             broker's poller): it stores ack_waiting = 1, F3 seq_cst fence,
 *             re-checks acked, and FUTEX_WAITs on ack_futex; the consumer
 *             stores acked (R2), F4 seq_cst fence, and only when it then
 *             sees ack_waiting bumps ack_futex (R5, paired with the
 *             producer's A5 when it takes its ticket) and FUTEX_WAKEs. F3
 *             and F4 make at least one side see the other's store: no lost
 *             wake-up. The wake syscall comes after the consumer's latency
 *             sample, and only in the latency mode.
 *   cons_done / cons_release
 *             the consumer stores cons_done (R6, paired with main's A6)
 *             once its loop is over and its totals are final, then spins
 *             (no syscall) until main, having read its syscall counter,
 *             stores cons_release (R7, paired with the consumer's A7): the
 *             count then holds the consume loop only, not the thread's own
 *             teardown and exit.
 *   writes, events, units, ready
 *             single-writer counters read by the main thread for window
 *             snapshots: relaxed; the exact totals are compared after
 *             pthread_join (which orders everything).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "client/onering.h"
#include "shm/atomic.h"
#include "tools/bench_common.h"

#ifndef ONERINGD_PATH
#error "ONERINGD_PATH must name the oneringd binary to start"
#endif

#define BENCH_BATCH 64u            /* events taken per call, every peer */
#define BENCH_MAX_ROUNDS 100u
#define BENCH_MAX_NS 16u
#define BENCH_MAX_N 65536u
#define BENCH_BROKER_NAME "bench"
#define BENCH_LAT_GAP_MIN_NS 30000u /* latency: pause after each ack, 30..70 us */
#define BENCH_LAT_GAP_SPAN_NS 40000u
#define BENCH_LOST_NS (2000000000ull) /* an event not taken this long is lost */
#define BENCH_BLOCK_TIMEOUT_MS 50  /* blocking peers wake this often to see stop */

/* ---------------------------------------------------------------------- */
/* Peers and options.                                                      */

enum peer {
	PEER_ONERING_BUSY,
	PEER_ONERING_ADAPTIVE,
	PEER_ONERING_WAIT,
	PEER_EPOLL_BUSY,
	PEER_EPOLL_BLOCK,
	PEER_URING_BUSY,
	PEER_URING_BLOCK,
	PEER_URING_PEEK,
	PEER_NR,
};

static const char *const peer_names[PEER_NR] = {
	[PEER_ONERING_BUSY] = "onering-busy",
	[PEER_ONERING_ADAPTIVE] = "onering-adaptive",
	[PEER_ONERING_WAIT] = "onering-wait",
	[PEER_EPOLL_BUSY] = "epoll-busy",
	[PEER_EPOLL_BLOCK] = "epoll-block",
	[PEER_URING_BUSY] = "uring-busy",
	[PEER_URING_BLOCK] = "uring-block",
	[PEER_URING_PEEK] = "uring-peek",
};

static bool peer_is_onering(enum peer p)
{
	return p == PEER_ONERING_BUSY || p == PEER_ONERING_ADAPTIVE || p == PEER_ONERING_WAIT;
}

static bool peer_is_uring(enum peer p)
{
	return p == PEER_URING_BUSY || p == PEER_URING_BLOCK || p == PEER_URING_PEEK;
}

enum source_kind {
	SOURCE_EVENTFD,
	SOURCE_PIPE,
};

enum mode {
	MODE_THROUGHPUT,
	MODE_LATENCY,
	MODE_NR,
};

struct bench_opts {
	unsigned rounds;
	uint64_t measure_ns; /* per measurement */
	uint64_t warmup_ns;
	unsigned ns[BENCH_MAX_NS];
	unsigned nr_ns;
	bool peers[PEER_NR];
	bool modes[MODE_NR];
	enum source_kind source;
	uint32_t capacity;
	int core_producer;
	int core_consumer;
	int core_broker;
	bool count_syscalls;
	bool quick;
	const char *csv_path;
	const char *broker_args[8]; /* extra oneringd options, both onering peers */
	unsigned nr_broker_args;
	unsigned retry_noisy; /* re-run a measurement the machine disturbed */
	double noise_max_pct; /* ... when others took more than this */
};

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s [options]\n"
		"\n"
		"fd readiness -> consumer thread: onering (oneringd + libonering) against\n"
		"epoll and io_uring multishot poll on the same workload, in one run. N event\n"
		"sources; a pinned producer writes them round-robin (full speed for\n"
		"throughput, one event in flight for latency); a pinned consumer takes each\n"
		"readiness event and reads the source once. Every peer runs once per round\n"
		"and N, in the same order; the summary gives medians across rounds and\n"
		"per-round ratios next to the targets of the performance contract.\n"
		"Run as root: syscalls are counted with perf_event_open on the tracepoint\n"
		"raw_syscalls:sys_enter.\n"
		"\n"
		"Options:\n"
		"  --rounds N        interleaved rounds (default 3)\n"
		"  --seconds S       measured time per peer, N and mode (default 0.5)\n"
		"  --warmup S        unmeasured lead-in of each measurement (default 0.1)\n"
		"  --n LIST          numbers of sources, e.g. 1,64,1024 (the default)\n"
		"  --peers LIST      peers to run (default all): onering-busy,\n"
		"                    onering-adaptive, onering-wait, epoll-busy, epoll-block,\n"
		"                    uring-busy, uring-block, uring-peek\n"
		"  --mode M          throughput, latency or both (default both)\n"
		"  --source K        eventfd (default) or pipe\n"
		"  --capacity N      onering queue capacity, a power of two (default 4096)\n"
		"  --cores P,C,B     producer core P, consumer core C, oneringd poller and\n"
		"                    control core B (default 0,1,0: on two CPUs the broker\n"
		"                    shares the producer's core, the consumer has its own;\n"
		"                    1,1,0 gives the broker a core of its own for latency,\n"
		"                    at the price of a context switch per event for all)\n"
		"  --broker-arg ARG  pass ARG to oneringd too (repeatable, up to 8), e.g.\n"
		"                    --broker-arg=--idle-spin-us=0\n"
		"  --retry-noisy K   re-run a measurement up to K times (default 0) when other\n"
		"                    tasks took more than --noise-max percent of all CPUs\n"
		"                    during it (or steal did), or starved a latency\n"
		"                    measurement of every sample; the quietest run is kept\n"
		"  --noise-max PCT   threshold for --retry-noisy (default 10)\n"
		"  --no-count        do not count syscalls (no tracepoint enabled)\n"
		"  --quick           smoke run: 1 round, 0.05 s per measurement, N = 1,64\n"
		"  --csv FILE        also write every measurement as CSV to FILE (round 0:\n"
		"                    the syscall-counting pass)\n"
		"  --help            print this and exit\n"
		"\n"
		"Exit status: 0 when every peer delivered every write (targets missed are\n"
		"figures, not failures), 1 on a correctness failure (events lost), 2 on a\n"
		"usage or setup error, 130 when interrupted.\n",
		prog);
}

static int parse_n_list(const char *s, struct bench_opts *o)
{
	char buf[256], *save = NULL;
	uint64_t v;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	o->nr_ns = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (bench_parse_u64(tok, 1, BENCH_MAX_N, &v) || o->nr_ns == BENCH_MAX_NS)
			return -EINVAL;
		o->ns[o->nr_ns++] = (unsigned)v;
	}
	return o->nr_ns ? 0 : -EINVAL;
}

static int parse_peer_list(const char *s, struct bench_opts *o)
{
	return bench_parse_names(s, peer_names, PEER_NR, o->peers);
}

static int parse_cores(const char *s, struct bench_opts *o)
{
	long v[3];
	char *end;

	for (int i = 0; i < 3; i++) {
		errno = 0;
		v[i] = strtol(s, &end, 10);
		if (errno || end == s || v[i] < 0 || v[i] >= CPU_SETSIZE)
			return -EINVAL;
		if (i < 2 && *end != ',')
			return -EINVAL;
		if (i == 2 && *end != '\0')
			return -EINVAL;
		s = end + 1;
	}
	o->core_producer = (int)v[0];
	o->core_consumer = (int)v[1];
	o->core_broker = (int)v[2];
	return 0;
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	enum { OPT_ROUNDS = 256, OPT_SECONDS, OPT_WARMUP, OPT_N, OPT_PEERS, OPT_MODE,
	       OPT_SOURCE, OPT_CAPACITY, OPT_CORES, OPT_BROKER_ARG, OPT_RETRY_NOISY,
	       OPT_NOISE_MAX, OPT_NO_COUNT, OPT_QUICK, OPT_CSV, OPT_HELP };
	static const struct option longopts[] = {
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "seconds", required_argument, NULL, OPT_SECONDS },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "n", required_argument, NULL, OPT_N },
		{ "peers", required_argument, NULL, OPT_PEERS },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "source", required_argument, NULL, OPT_SOURCE },
		{ "capacity", required_argument, NULL, OPT_CAPACITY },
		{ "cores", required_argument, NULL, OPT_CORES },
		{ "broker-arg", required_argument, NULL, OPT_BROKER_ARG },
		{ "retry-noisy", required_argument, NULL, OPT_RETRY_NOISY },
		{ "noise-max", required_argument, NULL, OPT_NOISE_MAX },
		{ "no-count", no_argument, NULL, OPT_NO_COUNT },
		{ "quick", no_argument, NULL, OPT_QUICK },
		{ "csv", required_argument, NULL, OPT_CSV },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool set_rounds = false, set_seconds = false, set_warmup = false, set_n = false;
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->rounds = 3;
	o->measure_ns = 500000000ull;
	o->warmup_ns = 100000000ull;
	o->ns[0] = 1;
	o->ns[1] = 64;
	o->ns[2] = 1024;
	o->nr_ns = 3;
	for (int p = 0; p < PEER_NR; p++)
		o->peers[p] = true;
	o->modes[MODE_THROUGHPUT] = o->modes[MODE_LATENCY] = true;
	o->source = SOURCE_EVENTFD;
	o->capacity = 4096;
	o->core_producer = 0;
	o->core_consumer = 1;
	o->core_broker = 0;
	o->count_syscalls = true;
	o->noise_max_pct = 10;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_ROUNDS:
			if (bench_parse_u64(optarg, 1, BENCH_MAX_ROUNDS, &v)) {
				fprintf(stderr, "--rounds: want 1..%u, got '%s'\n", BENCH_MAX_ROUNDS,
					optarg);
				return -EINVAL;
			}
			o->rounds = (unsigned)v;
			set_rounds = true;
			break;
		case OPT_SECONDS:
			if (bench_parse_seconds(optarg, 10000000ull, 600000000000ull, &o->measure_ns)) {
				fprintf(stderr, "--seconds: want 0.01..600, got '%s'\n", optarg);
				return -EINVAL;
			}
			set_seconds = true;
			break;
		case OPT_WARMUP:
			if (bench_parse_seconds(optarg, 0, 60000000000ull, &o->warmup_ns)) {
				fprintf(stderr, "--warmup: want 0..60, got '%s'\n", optarg);
				return -EINVAL;
			}
			set_warmup = true;
			break;
		case OPT_N:
			if (parse_n_list(optarg, o)) {
				fprintf(stderr, "--n: want up to %u numbers in 1..%u, got '%s'\n",
					BENCH_MAX_NS, BENCH_MAX_N, optarg);
				return -EINVAL;
			}
			set_n = true;
			break;
		case OPT_PEERS:
			if (parse_peer_list(optarg, o)) {
				fprintf(stderr, "--peers: unknown peer in '%s' (see --help)\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_MODE:
			o->modes[MODE_THROUGHPUT] = strcmp(optarg, "latency") != 0;
			o->modes[MODE_LATENCY] = strcmp(optarg, "throughput") != 0;
			if (strcmp(optarg, "latency") && strcmp(optarg, "throughput") &&
			    strcmp(optarg, "both")) {
				fprintf(stderr, "--mode: want throughput, latency or both\n");
				return -EINVAL;
			}
			break;
		case OPT_SOURCE:
			if (strcmp(optarg, "eventfd") == 0) {
				o->source = SOURCE_EVENTFD;
			} else if (strcmp(optarg, "pipe") == 0) {
				o->source = SOURCE_PIPE;
			} else {
				fprintf(stderr, "--source: want eventfd or pipe\n");
				return -EINVAL;
			}
			break;
		case OPT_CAPACITY:
			if (bench_parse_u64(optarg, 64, 1u << 20, &v) || (v & (v - 1))) {
				fprintf(stderr, "--capacity: want a power of two in 64..2^20\n");
				return -EINVAL;
			}
			o->capacity = (uint32_t)v;
			break;
		case OPT_CORES:
			if (parse_cores(optarg, o)) {
				fprintf(stderr, "--cores: want three core ids P,C,B, got '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_BROKER_ARG:
			if (o->nr_broker_args == 8 || strlen(optarg) >= 120) {
				fprintf(stderr, "--broker-arg: at most 8, each under 120 bytes\n");
				return -EINVAL;
			}
			o->broker_args[o->nr_broker_args++] = optarg;
			break;
		case OPT_RETRY_NOISY:
			if (bench_parse_u64(optarg, 0, 10, &v)) {
				fprintf(stderr, "--retry-noisy: want 0..10, got '%s'\n", optarg);
				return -EINVAL;
			}
			o->retry_noisy = (unsigned)v;
			break;
		case OPT_NOISE_MAX:
			if (bench_parse_u64(optarg, 1, 100, &v)) {
				fprintf(stderr, "--noise-max: want 1..100, got '%s'\n", optarg);
				return -EINVAL;
			}
			o->noise_max_pct = (double)v;
			break;
		case OPT_NO_COUNT:
			o->count_syscalls = false;
			break;
		case OPT_QUICK:
			o->quick = true;
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
			o->rounds = 1;
		if (!set_seconds)
			o->measure_ns = 50000000ull;
		if (!set_warmup)
			o->warmup_ns = 20000000ull;
		if (!set_n) {
			o->nr_ns = 2;
			o->ns[0] = 1;
			o->ns[1] = 64;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Small helpers (clocks, pinning: bench_common.h).                       */

static pid_t self_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* ---------------------------------------------------------------------- */
/* Syscall counting: perf_event_open on raw_syscalls:sys_enter per thread. */

static long sys_enter_id = -1;  /* tracepoint id, or -1 when unavailable */
static char sys_enter_why[200]; /* why it is unavailable */

static long read_tracepoint_id(const char *root)
{
	char path[256];
	long id = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/events/raw_syscalls/sys_enter/id", root);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &id) != 1)
		id = -1;
	fclose(f);
	return id;
}

static void find_sys_enter(bool *mounted)
{
	*mounted = false;
	sys_enter_id = read_tracepoint_id("/sys/kernel/tracing");
	if (sys_enter_id < 0)
		sys_enter_id = read_tracepoint_id("/sys/kernel/debug/tracing");
	if (sys_enter_id < 0 &&
	    mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0) {
		*mounted = true;
		sys_enter_id = read_tracepoint_id("/sys/kernel/tracing");
	}
	if (sys_enter_id < 0)
		snprintf(sys_enter_why, sizeof(sys_enter_why),
			 "no raw_syscalls/sys_enter/id under /sys/kernel/tracing or "
			 "/sys/kernel/debug/tracing (mount tracefs, run as root)");
}

/* A counter of syscalls entered by thread tid; -errno when it cannot. */
static int syscall_counter_open(pid_t tid)
{
	struct perf_event_attr a;

	if (sys_enter_id < 0)
		return -ENOTSUP;
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof(a);
	a.config = (uint64_t)sys_enter_id;
	int fd = (int)syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static uint64_t syscall_counter_read(int fd)
{
	uint64_t v = 0;

	if (fd < 0 || read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

/* ---------------------------------------------------------------------- */
/* Machine noise: CPU time the rest of the machine took, and steal.        */

struct cpu_sample {
	uint64_t busy;  /* all CPUs: user+nice+system+irq+softirq, jiffies */
	uint64_t steal; /* all CPUs, jiffies */
	uint64_t wall_ns;
	bool ok;
};

static void cpu_sample_take(struct cpu_sample *c)
{
	unsigned long long v[8] = { 0 };
	FILE *f;

	memset(c, 0, sizeof(*c));
	c->wall_ns = bench_now_ns();
	f = fopen("/proc/stat", "r");
	if (!f)
		return;
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		       &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return;
	c->busy = v[0] + v[1] + v[2] + v[5] + v[6];
	c->steal = v[7];
	c->ok = true;
}

/* Busy time of the others: all CPUs' busy jiffies minus ours (this process
 * and the broker, given in ns), percent of all CPUs; -1 if unknown. */
static double cpu_others_pct(const struct cpu_sample *a, const struct cpu_sample *b,
			     uint64_t ours_ns)
{
	double hz = (double)sysconf(_SC_CLK_TCK);
	double cpus = (double)sysconf(_SC_NPROCESSORS_ONLN);
	double span = (double)(b->wall_ns - a->wall_ns) / 1e9 * hz * cpus;

	if (!a->ok || !b->ok || span <= 0)
		return -1;
	double busy = (double)(b->busy - a->busy) - (double)ours_ns / 1e9 * hz;
	return busy > 0 ? 100.0 * busy / span : 0;
}

/* Steal, percent of all CPUs, between two samples; -1 if unknown. */
static double cpu_steal_pct(const struct cpu_sample *a, const struct cpu_sample *b)
{
	double hz = (double)sysconf(_SC_CLK_TCK);
	double cpus = (double)sysconf(_SC_NPROCESSORS_ONLN);
	double span = (double)(b->wall_ns - a->wall_ns) / 1e9 * hz * cpus;

	if (!a->ok || !b->ok || span <= 0)
		return -1;
	return 100.0 * (double)(b->steal - a->steal) / span;
}

/* ---------------------------------------------------------------------- */
/* The broker child: started per measurement, stopped by pid.              */

struct broker_proc {
	pid_t pid;
	char dir[64];
	char log[128];
	int fds[64]; /* syscall counters of its threads */
	unsigned nr_fds;
};

/* SIGTERM, wait (bounded), SIGKILL if it does not go; remove its directory. */
static void broker_stop(struct broker_proc *b)
{
	for (unsigned i = 0; i < b->nr_fds; i++)
		close(b->fds[i]);
	b->nr_fds = 0;
	bench_broker_stop(&b->pid, b->dir, false);
}

/*
 * fork/exec oneringd --foreground, wait (10 s at most) for its ready byte on
 * fd 3. Only the main thread runs here (no other thread to fork under).
 */
static int broker_start(struct broker_proc *b, const struct bench_opts *o, bool busy)
{
	struct bench_argv a = { .argc = 0 };
	const char *call;
	int e;

	memset(b, 0, sizeof(*b));
	b->pid = -1;
	snprintf(b->dir, sizeof(b->dir), "/tmp/onering-bench-XXXXXX");
	if (!mkdtemp(b->dir)) {
		e = -errno;
		fprintf(stderr, "mkdtemp %s: %s\n", b->dir, strerror(-e));
		b->dir[0] = '\0';
		return e;
	}
	snprintf(b->log, sizeof(b->log), "%s/oneringd.log", b->dir);

	bench_arg(&a, "%s", ONERINGD_PATH);
	bench_broker_args(&a, BENCH_BROKER_NAME, b->dir);
	bench_arg(&a, "--cores");
	bench_arg(&a, "%d", o->core_broker);
	bench_arg(&a, "--control-core");
	bench_arg(&a, "%d", o->core_broker);
	if (busy) {
		bench_arg(&a, "--idle-sleep-ms");
		bench_arg(&a, "-1");
	}
	for (unsigned i = 0; i < o->nr_broker_args; i++)
		bench_arg(&a, "%s", o->broker_args[i]);

	e = bench_broker_spawn(&b->pid, b->log, &a, &call);
	if (e == -EIO) {
		fprintf(stderr, "oneringd (%s) did not become ready\n", ONERINGD_PATH);
		bench_broker_dump_log(b->log);
		broker_stop(b);
	}
	return e;
}

/* Open a syscall counter on every thread the broker has now. */
static void broker_count_open(struct broker_proc *b)
{
	char path[128];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)b->pid);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d)) && b->nr_fds < sizeof(b->fds) / sizeof(b->fds[0])) {
		if (e->d_name[0] == '.')
			continue;
		int fd = syscall_counter_open((pid_t)atoi(e->d_name));
		if (fd >= 0)
			b->fds[b->nr_fds++] = fd;
	}
	closedir(d);
}

static uint64_t broker_count_read(const struct broker_proc *b)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < b->nr_fds; i++)
		sum += syscall_counter_read(b->fds[i]);
	return sum;
}

/* ---------------------------------------------------------------------- */
/* One measurement: shared state, the producer, the consumers.             */

enum phase {
	PHASE_SETUP = 0,   /* threads get ready */
	PHASE_WARMUP = 1,  /* producing, not measured */
	PHASE_MEASURE = 2, /* producing, measured (latency samples recorded) */
	PHASE_DRAIN = 3,   /* producer stops; consumer takes what is left */
	PHASE_STOP = 4,    /* consumer stops */
};

struct result {
	bool ok;
	double seconds;
	uint64_t events, writes, units, empty_reads, reads, rearms, coalesced;
	uint64_t cons_sc, prod_sc, broker_sc;
	bool have_sc, have_broker;
	/* Whole run (counters opened before the warm-up, read after the
	 * consumer's join): exact, no snapshot skew. */
	uint64_t run_cons_sc, run_reads, run_events, run_broker_sc;
	uint64_t cons_cpu_ns, prod_cpu_ns, broker_cpu_ns;
	/* latency, ns */
	size_t samples;
	double p50, p99, p999, max;
	double harvest_p50, handoff_p50; /* onering: stamp->broker, broker->consumer */
	double harvest_p99, handoff_p99;
	double steal_pct;
	double others_pct; /* other tasks' CPU, percent of all CPUs */
	/* From the window's start until the last write was taken (wait_span_ns),
	 * how long the threads were runnable and waited for a CPU (schedstat
	 * run_delay), ns: what tells a starved measurement from a stalled peer. */
	uint64_t wait_span_ns, cons_wait_ns, prod_wait_ns, broker_wait_ns;
	bool starved; /* latency: no sample, and the threads mostly waited for a CPU */
};

struct run {
	const struct bench_opts *o;
	enum peer peer;
	bool latency;
	unsigned n;
	int *rfd; /* what the peer watches and the consumer reads */
	int *wfd; /* what the producer writes (== rfd for eventfds) */

	/* peers */
	struct broker_proc broker;
	struct onering *att;
	struct onering_queue *q;
	int epfd;
	const char *uring_setup; /* set by the consumer: which setup it got */

	/* threads */
	pthread_t thr_prod, thr_cons;
	bool started_prod, started_cons;
	pid_t tid_prod, tid_cons;

	/* per-source counts, private to one thread each; compared after join */
	uint64_t *wrote;
	uint64_t *drained;

	/* latency samples, written by the consumer only */
	uint64_t *lat;
	uint64_t *lat_harvest;
	size_t lat_cap;
	size_t lat_n;

	/* final totals, written by their thread before it exits */
	uint64_t empty_reads, rearms, coalesced, total_events, total_reads;
	/* each thread's own schedstat run_delay as its loop ended, read by the
	 * thread itself (so no wait still in progress is left out) */
	uint64_t cons_wait_end_ns, prod_wait_end_ns;

	ONERING_ATOMIC(int) phase;   /* main: R0 / threads: A0 */
	ONERING_ATOMIC(int) ready;   /* threads set up */
	struct bench_failure fail; /* a thread failed, and why */
	ONERING_ATOMIC(int) cons_done;    /* consumer: R6, loop over, totals final */
	ONERING_ATOMIC(int) cons_release; /* main: R7, counters read, it may exit */
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) writes; /* producer */
	ONERING_ATOMIC(uint64_t) stamp_ns;                            /* producer: R1 */
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) events;  /* consumer */
	ONERING_ATOMIC(uint64_t) units;                               /* consumer */
	ONERING_ATOMIC(uint64_t) reads;                               /* consumer */
	ONERING_ATOMIC(uint64_t) acked;                               /* consumer: R2 */
	ONERING_ATOMIC(uint32_t) ack_futex;                           /* consumer: R5 */
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint32_t) ack_waiting; /* producer */
};

static void run_fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void run_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	bench_vfail(&r->fail, fmt, ap);
	va_end(ap);
}

static bool run_failed(struct run *r)
{
	return bench_failed(&r->fail);
}

static int phase_get(struct run *r)
{
	/* A0: synchronises with R0 (main's store of the phase). */
	return onering_atomic_load(&r->phase, onering_mo_acquire);
}

static void phase_set(struct run *r, int phase)
{
	/* R0: synchronises with A0 in the threads. */
	onering_atomic_store(&r->phase, phase, onering_mo_release);
}

/*
 * How long thread tid of pid (every thread of pid when tid <= 0) has been
 * runnable without a CPU, ns: the second field of schedstat (run_delay).
 * 0 when it cannot be read.
 */
static uint64_t cpu_wait_ns(pid_t pid, pid_t tid)
{
	char path[128];
	struct dirent *e;
	uint64_t sum = 0;
	DIR *d;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		unsigned long long run = 0, wait = 0;
		char p2[400];
		FILE *f;
		if (e->d_name[0] == '.' || (tid > 0 && atoi(e->d_name) != tid))
			continue;
		snprintf(p2, sizeof(p2), "%s/%s/schedstat", path, e->d_name);
		f = fopen(p2, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu %llu", &run, &wait) == 2)
			sum += wait;
		fclose(f);
	}
	closedir(d);
	return sum;
}

/* ns waited between two cpu_wait_ns() readings (0 if one was not read). */
static uint64_t wait_since(uint64_t end, uint64_t start)
{
	return end > start ? end - start : 0;
}

/* --- producer ----------------------------------------------------------- */

static BENCH_ALWAYS_INLINE ssize_t source_write(const struct run *r, unsigned idx)
{
	static const uint64_t one = 1;
	static const char byte = 'x';

	if (r->o->source == SOURCE_EVENTFD)
		return write(r->wfd[idx], &one, sizeof(one));
	return write(r->wfd[idx], &byte, 1);
}

static void produce_full_speed(struct run *r)
{
	uint64_t w = 0;
	unsigned idx = 0;

	while (phase_get(r) <= PHASE_MEASURE && !run_failed(r)) {
		for (unsigned k = 0; k < 16; k++) {
			if (ONERING_LIKELY(source_write(r, idx) > 0)) {
				r->wrote[idx]++;
				w++;
			} else if (errno != EAGAIN) { /* a full pipe: try the next */
				run_fail(r, "producer: write to source %u: %s", idx, strerror(errno));
				return;
			}
			if (++idx == r->n)
				idx = 0;
		}
		onering_atomic_store(&r->writes, w, onering_mo_relaxed);
	}
	onering_atomic_store(&r->writes, w, onering_mo_relaxed);
}

static long futex_call(ONERING_ATOMIC(uint32_t) *word, int op, uint32_t val,
		       const struct timespec *timeout)
{
	return syscall(SYS_futex, (uint32_t *)(uintptr_t)word, op, val, timeout, NULL, 0);
}

/* Sleep until the consumer acknowledged w writes; false if lost or stopped. */
static bool wait_ack(struct run *r, uint64_t w)
{
	const struct timespec slice = { .tv_sec = 0, .tv_nsec = 100000000 }; /* 100 ms */
	uint64_t since = 0;

	/* A2: synchronises with R2 (the consumer's ack after its read). */
	while (onering_atomic_load(&r->acked, onering_mo_acquire) < w) {
		if (run_failed(r) || interrupted || phase_get(r) > PHASE_MEASURE)
			return false;
		if (!since) {
			since = bench_now_ns();
		} else if (bench_now_ns() - since > BENCH_LOST_NS) {
			run_fail(r, "latency: write %" PRIu64 " not taken within 2 s (lost)", w);
			return false;
		}
		/* A5: synchronises with R5 (the consumer's bump before its wake). */
		uint32_t ticket = onering_atomic_load(&r->ack_futex, onering_mo_acquire);
		onering_atomic_store(&r->ack_waiting, 1u, onering_mo_relaxed);
		/* F3: pairs with F4 in take_event(). */
		onering_fence(onering_mo_seq_cst);
		if (onering_atomic_load(&r->acked, onering_mo_acquire) < w)
			futex_call(&r->ack_futex, FUTEX_WAIT_PRIVATE, ticket, &slice);
		onering_atomic_store(&r->ack_waiting, 0u, onering_mo_relaxed);
	}
	return true;
}

/* One event in flight: wait for the ack, pause 30-70 us, stamp, write. */
static void produce_paced(struct run *r)
{
	uint64_t w = 0, rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)bench_now_ns();
	unsigned idx = 0;

	while (phase_get(r) <= PHASE_MEASURE && !run_failed(r)) {
		if (!wait_ack(r, w))
			return;
		/* xorshift64: a random pause so the producer never beats in step
		 * with a poller loop. */
		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		bench_sleep_ns(BENCH_LAT_GAP_MIN_NS + rnd % BENCH_LAT_GAP_SPAN_NS);
		if (phase_get(r) > PHASE_MEASURE)
			break;
		idx = (unsigned)(w % r->n);
		/* R1: synchronises with A1 (the consumer's read of the stamp). */
		onering_atomic_store(&r->stamp_ns, bench_now_ns(), onering_mo_release);
		if (source_write(r, idx) <= 0) {
			run_fail(r, "producer: write to source %u: %s", idx, strerror(errno));
			return;
		}
		r->wrote[idx]++;
		w++;
		onering_atomic_store(&r->writes, w, onering_mo_relaxed);
	}
}

static void *producer_main(void *arg)
{
	struct run *r = arg;
	int e = bench_pin_self(r->o->core_producer);

	if (e < 0) {
		run_fail(r, "producer: cannot pin to core %d: %s", r->o->core_producer,
			 strerror(-e));
		return NULL;
	}
	/* Sleeps in the latency mode end when asked, not 50 us later. */
	prctl(PR_SET_TIMERSLACK, 1ul);
	r->tid_prod = self_tid();
	onering_atomic_fetch_add(&r->ready, 1, onering_mo_release);
	while (phase_get(r) == PHASE_SETUP && !run_failed(r))
		bench_sleep_ns(100000);
	if (r->latency)
		produce_paced(r);
	else
		produce_full_speed(r);
	r->prod_wait_end_ns = cpu_wait_ns(getpid(), r->tid_prod); /* read after the join */
	return NULL;
}

/* --- consumer: the per-event work, the same for every peer -------------- */

struct consumer {
	struct run *r;
	uint64_t events, units, reads, empty, acked;
	bool latency;
	bool finished;
};

/*
 * The peer handed us an event of source idx: stamp the time (latency),
 * read the source once to reset it (a pipe: until a short read), count.
 * broker_ns: the onering record's publish timestamp, 0 for other peers.
 */
static BENCH_ALWAYS_INLINE void take_event(struct consumer *c, uint64_t idx, uint64_t broker_ns)
{
	struct run *r = c->r;
	uint64_t t = c->latency ? bench_now_ns() : 0;
	uint64_t got = 0;

	if (ONERING_UNLIKELY(idx >= r->n)) {
		run_fail(r, "consumer: event for source %" PRIu64 " of %u", idx, r->n);
		return;
	}
	if (r->o->source == SOURCE_EVENTFD) {
		uint64_t v;
		ssize_t k = read(r->rfd[idx], &v, sizeof(v));
		c->reads++;
		if (k == (ssize_t)sizeof(v))
			got = v;
		else if (k >= 0 || errno != EAGAIN)
			run_fail(r, "consumer: read source %" PRIu64 ": %s", idx,
				 k < 0 ? strerror(errno) : "short read");
	} else {
		char buf[4096];
		for (;;) {
			ssize_t k = read(r->rfd[idx], buf, sizeof(buf));
			c->reads++;
			if (k > 0)
				got += (uint64_t)k;
			if (k < (ssize_t)sizeof(buf)) {
				if (k < 0 && errno != EAGAIN)
					run_fail(r, "consumer: read source %" PRIu64 ": %s", idx,
						 strerror(errno));
				break;
			}
		}
	}
	c->events++;
	c->units += got;
	r->drained[idx] += got;
	if (!got) {
		c->empty++;
		return;
	}
	if (c->latency) {
		/* A1: synchronises with R1 (the producer's stamp before its write). */
		uint64_t stamp = onering_atomic_load(&r->stamp_ns, onering_mo_acquire);
		if (phase_get(r) == PHASE_MEASURE && r->lat_n < r->lat_cap) {
			r->lat[r->lat_n] = t - stamp;
			r->lat_harvest[r->lat_n] = broker_ns ? broker_ns - stamp : 0;
			r->lat_n++;
		}
		c->acked += got;
		/* R2: synchronises with A2 (the producer waits for this ack). */
		onering_atomic_store(&r->acked, c->acked, onering_mo_release);
		/* F4: pairs with F3 in wait_ack(). */
		onering_fence(onering_mo_seq_cst);
		if (onering_atomic_load(&r->ack_waiting, onering_mo_relaxed)) {
			/* R5: synchronises with A5 (the producer's ticket). */
			onering_atomic_fetch_add(&r->ack_futex, 1u, onering_mo_release);
			futex_call(&r->ack_futex, FUTEX_WAKE_PRIVATE, 1, NULL);
		}
	}
}

static void consumer_publish(struct consumer *c)
{
	onering_atomic_store(&c->r->events, c->events, onering_mo_relaxed);
	onering_atomic_store(&c->r->units, c->units, onering_mo_relaxed);
	onering_atomic_store(&c->r->reads, c->reads, onering_mo_relaxed);
}

/* Loop over: publish the totals, then wait (spinning, no syscall) until
 * main has read this thread's syscall counter. */
static void consumer_finish(struct consumer *c)
{
	struct run *r = c->r;

	if (c->finished)
		return;
	c->finished = true;
	consumer_publish(c);
	r->empty_reads = c->empty;
	r->total_events = c->events;
	r->total_reads = c->reads;
	r->cons_wait_end_ns = cpu_wait_ns(getpid(), r->tid_cons);
	/* R6: synchronises with A6 (main waits for the final totals). */
	onering_atomic_store(&r->cons_done, 1, onering_mo_release);
	/* A7: synchronises with R7 (main read the counter). */
	while (!onering_atomic_load(&r->cons_release, onering_mo_acquire))
		onering_cpu_relax();
}

static void consume_onering(struct consumer *c)
{
	struct run *r = c->r;
	struct onering_event evs[BENCH_BATCH];
	const bool wait = r->peer == PEER_ONERING_WAIT;

	onering_atomic_fetch_add(&r->ready, 1, onering_mo_release);
	while (phase_get(r) != PHASE_STOP && !run_failed(r)) {
		int k = wait ? onering_wait(r->q, evs, 1, BENCH_BATCH,
					    BENCH_BLOCK_TIMEOUT_MS * 1000000ll)
			     : onering_poll(r->q, evs, BENCH_BATCH);
		if (ONERING_UNLIKELY(k < 0)) {
			if (k == -EINTR)
				continue;
			run_fail(r, "%s: %s", wait ? "onering_wait" : "onering_poll",
				 onering_strerror(k));
			return;
		}
		if (k == 0) {
			onering_cpu_relax();
			continue;
		}
		for (int i = 0; i < k; i++) {
			if (evs[i].flags & ONERING_EVF_COALESCED)
				r->coalesced++;
			take_event(c, evs[i].cookie, evs[i].timestamp_ns);
		}
		consumer_publish(c);
	}
}

static void consume_epoll(struct consumer *c, bool block)
{
	struct run *r = c->r;
	struct epoll_event evs[BENCH_BATCH];
	const int timeout = block ? BENCH_BLOCK_TIMEOUT_MS : 0;

	onering_atomic_fetch_add(&r->ready, 1, onering_mo_release);
	while (phase_get(r) != PHASE_STOP && !run_failed(r)) {
		int k = epoll_wait(r->epfd, evs, (int)BENCH_BATCH, timeout);
		if (ONERING_UNLIKELY(k < 0)) {
			if (errno == EINTR)
				continue;
			run_fail(r, "epoll_wait: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < k; i++)
			take_event(c, evs[i].data.u32, 0);
		if (k)
			consumer_publish(c);
	}
}

static int uring_arm(struct run *r, struct io_uring *ring, unsigned idx)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe) {
		int e = io_uring_submit(ring);
		if (e < 0)
			return e;
		sqe = io_uring_get_sqe(ring);
		if (!sqe)
			return -EBUSY;
	}
	io_uring_prep_poll_multishot(sqe, r->rfd[idx], POLLIN);
	io_uring_sqe_set_data64(sqe, idx);
	return 0;
}

static const char *uring_setup_name(unsigned flags)
{
	if (flags & IORING_SETUP_DEFER_TASKRUN)
		return "SINGLE_ISSUER|DEFER_TASKRUN|CQSIZE";
	return "CQSIZE (default task-work notification)";
}

/* Created in the consumer thread: with SINGLE_ISSUER it is the submitter. */
static int uring_setup(struct run *r, struct io_uring *ring, bool defer)
{
	struct io_uring_params p;
	unsigned cq = r->n * 8 < 4096 ? 4096 : r->n * 8;
	int e;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = cq;
	if (defer)
		p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	e = io_uring_queue_init_params(256, ring, &p);
	if (e == -EINVAL && defer) {
		/* Older kernel: say so, and fall back to the default setup. */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = cq;
		e = io_uring_queue_init_params(256, ring, &p);
	}
	if (e < 0)
		return e;
	r->uring_setup = uring_setup_name(p.flags);
	for (unsigned i = 0; i < r->n; i++) {
		e = uring_arm(r, ring, i);
		if (e < 0)
			goto fail;
	}
	e = io_uring_submit(ring);
	if (e < 0)
		goto fail;
	return (int)p.flags;
fail:
	io_uring_queue_exit(ring);
	return e;
}

static void consume_uring(struct consumer *c)
{
	struct run *r = c->r;
	struct io_uring ring;
	struct io_uring_cqe *cqes[BENCH_BATCH];
	const bool block = r->peer == PEER_URING_BLOCK;
	int flags = uring_setup(r, &ring, r->peer != PEER_URING_PEEK);
	unsigned to_submit = 0;

	if (flags < 0) {
		run_fail(r, "io_uring setup (%u multishot polls): %s", r->n, strerror(-flags));
		return;
	}
	const bool defer = flags & IORING_SETUP_DEFER_TASKRUN;
	onering_atomic_fetch_add(&r->ready, 1, onering_mo_release);
	while (phase_get(r) != PHASE_STOP && !run_failed(r)) {
		unsigned k = io_uring_peek_batch_cqe(&ring, cqes, BENCH_BATCH);
		if (k == 0) {
			int e = 0;
			if (block) {
				struct __kernel_timespec ts = {
					.tv_sec = 0,
					.tv_nsec = BENCH_BLOCK_TIMEOUT_MS * 1000000ll,
				};
				struct io_uring_cqe *cqe;
				e = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
				if (e == -ETIME || e == -EINTR)
					e = 0;
				to_submit = 0;
			} else if (defer) {
				/* Deferred task work runs only in io_uring_enter(GETEVENTS). */
				e = to_submit ? io_uring_submit_and_get_events(&ring)
					      : io_uring_get_events(&ring);
				to_submit = 0;
			} else if (to_submit) {
				e = io_uring_submit(&ring);
				to_submit = 0;
			} else {
				onering_cpu_relax();
			}
			if (e < 0) {
				run_fail(r, "io_uring wait/get_events: %s", strerror(-e));
				break;
			}
			k = io_uring_peek_batch_cqe(&ring, cqes, BENCH_BATCH);
			if (k == 0)
				continue;
		}
		for (unsigned i = 0; i < k; i++) {
			uint64_t idx = io_uring_cqe_get_data64(cqes[i]);
			if (cqes[i]->res < 0) {
				run_fail(r, "multishot poll of source %" PRIu64 ": %s", idx,
					 strerror(-cqes[i]->res));
				break;
			}
			take_event(c, idx, 0);
			if (!(cqes[i]->flags & IORING_CQE_F_MORE) && idx < r->n) {
				/* The multishot ended (e.g. CQ overflow): arm it again. */
				r->rearms++;
				if (uring_arm(r, &ring, (unsigned)idx) < 0) {
					run_fail(r, "io_uring re-arm of source %" PRIu64, idx);
					break;
				}
				to_submit++;
			}
		}
		io_uring_cq_advance(&ring, k);
		consumer_publish(c);
		if (to_submit) {
			io_uring_submit(&ring);
			to_submit = 0;
		}
	}
	consumer_finish(c); /* before the ring's teardown syscalls */
	io_uring_queue_exit(&ring);
}

static void *consumer_main(void *arg)
{
	struct run *r = arg;
	struct consumer c;
	int e = bench_pin_self(r->o->core_consumer);

	if (e < 0) {
		run_fail(r, "consumer: cannot pin to core %d: %s", r->o->core_consumer,
			 strerror(-e));
		return NULL;
	}
	r->tid_cons = self_tid();
	memset(&c, 0, sizeof(c));
	c.r = r;
	c.latency = r->latency;
	switch (r->peer) {
	case PEER_ONERING_BUSY:
	case PEER_ONERING_ADAPTIVE:
	case PEER_ONERING_WAIT:
		consume_onering(&c);
		break;
	case PEER_EPOLL_BUSY:
	case PEER_EPOLL_BLOCK:
		consume_epoll(&c, r->peer == PEER_EPOLL_BLOCK);
		break;
	case PEER_URING_BUSY:
	case PEER_URING_BLOCK:
	case PEER_URING_PEEK:
		consume_uring(&c);
		break;
	case PEER_NR:
		break;
	}
	consumer_finish(&c);
	return NULL;
}

/* --- setup and teardown of one measurement ------------------------------ */

static void run_teardown(struct run *r)
{
	phase_set(r, PHASE_STOP);
	/* R7: synchronises with A7 (the consumer may exit). */
	onering_atomic_store(&r->cons_release, 1, onering_mo_release);
	if (r->started_prod)
		pthread_join(r->thr_prod, NULL);
	if (r->started_cons)
		pthread_join(r->thr_cons, NULL);
	r->started_prod = r->started_cons = false;
	if (r->att)
		onering_detach(r->att); /* closes the queue too */
	r->att = NULL;
	r->q = NULL;
	broker_stop(&r->broker);
	if (r->epfd >= 0)
		close(r->epfd);
	r->epfd = -1;
	for (unsigned i = 0; r->rfd && i < r->n; i++) {
		if (r->rfd[i] >= 0)
			close(r->rfd[i]);
		if (r->wfd && r->wfd[i] >= 0 && r->wfd[i] != r->rfd[i])
			close(r->wfd[i]);
	}
	free(r->rfd);
	free(r->wfd);
	free(r->wrote);
	free(r->drained);
	free(r->lat);
	free(r->lat_harvest);
	r->rfd = r->wfd = NULL;
	r->wrote = r->drained = r->lat = r->lat_harvest = NULL;
}

/* Sources, the peer's watch set, buffers. Returns 0 or -errno (printed). */
static int run_setup(struct run *r)
{
	const struct bench_opts *o = r->o;
	unsigned n = r->n;

	r->epfd = -1;
	r->broker.pid = -1;
	r->rfd = malloc(n * sizeof(int));
	r->wfd = malloc(n * sizeof(int));
	r->wrote = calloc(n, sizeof(uint64_t));
	r->drained = calloc(n, sizeof(uint64_t));
	if (r->latency) {
		r->lat_cap = (size_t)(o->measure_ns / 1000000000.0 * 50000) + 1024;
		r->lat = malloc(r->lat_cap * sizeof(uint64_t));
		r->lat_harvest = malloc(r->lat_cap * sizeof(uint64_t));
	}
	if (!r->rfd || !r->wfd || !r->wrote || !r->drained ||
	    (r->latency && (!r->lat || !r->lat_harvest))) {
		fprintf(stderr, "out of memory for %u sources\n", n);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++)
		r->rfd[i] = r->wfd[i] = -1;
	for (unsigned i = 0; i < n; i++) {
		if (o->source == SOURCE_EVENTFD) {
			r->rfd[i] = r->wfd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (r->rfd[i] < 0) {
				fprintf(stderr, "eventfd %u of %u: %s\n", i, n, strerror(errno));
				return -errno;
			}
		} else {
			int p[2];
			if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
				fprintf(stderr, "pipe %u of %u: %s\n", i, n, strerror(errno));
				return -errno;
			}
			r->rfd[i] = p[0];
			r->wfd[i] = p[1];
		}
	}

	if (peer_is_onering(r->peer)) {
		struct onering_attach_options ao;
		struct onering_queue_options qo;
		int e = broker_start(&r->broker, o, r->peer != PEER_ONERING_ADAPTIVE);
		if (e < 0)
			return e;
		memset(&ao, 0, sizeof(ao));
		ao.name = BENCH_BROKER_NAME;
		ao.socket_dir = r->broker.dir;
		e = onering_attach_opts(&ao, &r->att);
		if (e < 0) {
			fprintf(stderr, "onering_attach: %s\n", onering_strerror(e));
			return e;
		}
		memset(&qo, 0, sizeof(qo));
		qo.capacity = o->capacity;
		e = onering_queue_open(r->att, &qo, &r->q);
		if (e < 0) {
			fprintf(stderr, "onering_queue_open (capacity %u): %s (%s)\n", o->capacity,
				onering_strerror(e), onering_last_error(r->att));
			return e;
		}
		for (unsigned i = 0; i < n; i++) {
			struct onering_sub sub;
			e = onering_add(r->q, r->rfd[i], EPOLLIN, ONERING_EDGE, i, &sub);
			if (e < 0) {
				fprintf(stderr, "onering_add source %u of %u: %s (%s)\n", i, n,
					onering_strerror(e), onering_last_error(r->att));
				return e;
			}
		}
	} else if (!peer_is_uring(r->peer)) {
		r->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (r->epfd < 0) {
			fprintf(stderr, "epoll_create1: %s\n", strerror(errno));
			return -errno;
		}
		for (unsigned i = 0; i < n; i++) {
			struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = i };
			if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->rfd[i], &ev) < 0) {
				fprintf(stderr, "epoll_ctl ADD source %u: %s\n", i, strerror(errno));
				return -errno;
			}
		}
	}
	return 0;
}

struct snapshot {
	uint64_t wall_ns;
	uint64_t events, writes, units, reads;
	uint64_t cons_cpu_ns, prod_cpu_ns, broker_cpu_ns;
	uint64_t cons_sc, prod_sc, broker_sc;
	uint64_t self_cpu_ns; /* this whole process */
	uint64_t cons_wait_ns, prod_wait_ns, broker_wait_ns;
	struct cpu_sample cpu;
};

struct counters {
	clockid_t cons_clock, prod_clock;
	int cons_fd, prod_fd;
};

static void snapshot_take(struct run *r, const struct counters *k, struct snapshot *s)
{
	s->wall_ns = bench_now_ns();
	s->events = onering_atomic_load(&r->events, onering_mo_relaxed);
	s->units = onering_atomic_load(&r->units, onering_mo_relaxed);
	s->writes = onering_atomic_load(&r->writes, onering_mo_relaxed);
	s->reads = onering_atomic_load(&r->reads, onering_mo_relaxed);
	s->cons_sc = syscall_counter_read(k->cons_fd);
	s->prod_sc = syscall_counter_read(k->prod_fd);
	s->broker_sc = broker_count_read(&r->broker);
	s->cons_cpu_ns = bench_clock_ns(k->cons_clock);
	s->prod_cpu_ns = bench_clock_ns(k->prod_clock);
	s->broker_cpu_ns = bench_proc_cpu_ns(r->broker.pid, true);
	s->self_cpu_ns = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	s->cons_wait_ns = cpu_wait_ns(getpid(), r->tid_cons);
	s->prod_wait_ns = cpu_wait_ns(getpid(), r->tid_prod);
	s->broker_wait_ns = cpu_wait_ns(r->broker.pid, 0);
	cpu_sample_take(&s->cpu);
}

/*
 * One measurement of one peer. Returns 0 (res filled), 1 on a correctness
 * failure (printed), 2 on a setup failure, 130 when interrupted.
 */
static int run_one(const struct bench_opts *o, enum peer peer, bool latency, unsigned n,
		   bool count, struct result *res, const char **uring_setup)
{
	/* aligned: the counters of each thread sit on their own cache lines */
	const size_t line = ONERING_CACHE_LINE;
	size_t size = (sizeof(struct run) + line - 1) & ~(line - 1);
	struct run *r = aligned_alloc(ONERING_CACHE_LINE, size);
	struct counters k = { .cons_fd = -1, .prod_fd = -1 };
	struct snapshot a, b;
	int status = 0;

	memset(res, 0, sizeof(*res));
	if (!r)
		return 2;
	memset(r, 0, size);
	r->o = o;
	r->peer = peer;
	r->latency = latency;
	r->n = n;
	if (run_setup(r) < 0) {
		status = 2;
		goto out;
	}
	if (pthread_create(&r->thr_cons, NULL, consumer_main, r) != 0) {
		status = 2;
		goto out;
	}
	r->started_cons = true;
	if (pthread_create(&r->thr_prod, NULL, producer_main, r) != 0) {
		status = 2;
		goto out;
	}
	r->started_prod = true;
	while (onering_atomic_load(&r->ready, onering_mo_acquire) < 2 && !run_failed(r) &&
	       !interrupted)
		bench_sleep_ns(200000);
	if (run_failed(r) || interrupted) {
		if (!interrupted)
			fprintf(stderr, "%s N=%u: %s\n", peer_names[peer], n, r->fail.err);
		status = interrupted ? 130 : 2;
		goto out;
	}
	if (pthread_getcpuclockid(r->thr_cons, &k.cons_clock) != 0 ||
	    pthread_getcpuclockid(r->thr_prod, &k.prod_clock) != 0) {
		fprintf(stderr, "pthread_getcpuclockid failed\n");
		status = 2;
		goto out;
	}
	if (count) {
		k.cons_fd = syscall_counter_open(r->tid_cons);
		k.prod_fd = syscall_counter_open(r->tid_prod);
		if (r->broker.pid > 0)
			broker_count_open(&r->broker);
		if (k.cons_fd < 0 || k.prod_fd < 0) {
			fprintf(stderr, "perf_event_open(raw_syscalls:sys_enter): %s\n",
				strerror(-(k.cons_fd < 0 ? k.cons_fd : k.prod_fd)));
			status = 2;
			goto out;
		}
		res->have_sc = true;
		res->have_broker = r->broker.nr_fds > 0;
	}

	phase_set(r, PHASE_WARMUP);
	bench_sleep_ns(o->warmup_ns);
	snapshot_take(r, &k, &a);
	phase_set(r, PHASE_MEASURE);
	for (uint64_t left = o->measure_ns; left && !interrupted && !run_failed(r);) {
		uint64_t step = left < 50000000ull ? left : 50000000ull;
		bench_sleep_ns(step);
		left -= step;
	}
	snapshot_take(r, &k, &b);
	phase_set(r, PHASE_DRAIN);
	pthread_join(r->thr_prod, NULL);
	r->started_prod = false;
	if (interrupted) {
		status = 130;
		goto out;
	}

	/* Every unit written must come back: a lost edge leaves one unread. */
	uint64_t total = onering_atomic_load(&r->writes, onering_mo_relaxed);
	uint64_t t0 = bench_now_ns();
	while (onering_atomic_load(&r->units, onering_mo_relaxed) != total && !run_failed(r) &&
	       bench_now_ns() - t0 < BENCH_LOST_NS && !interrupted)
		bench_sleep_ns(1000000);
	/* From the window's start to here (the last write taken): how long the
	 * threads that carry an event waited for a CPU. run_delay grows only when
	 * a waiting thread gets its CPU, so the consumer and the producer read
	 * their own at the end of their loops, when no wait of theirs is open. */
	res->wait_span_ns = bench_now_ns() - a.wall_ns;
	res->broker_wait_ns = wait_since(cpu_wait_ns(r->broker.pid, 0), a.broker_wait_ns);
	phase_set(r, PHASE_STOP);
	/* A6: synchronises with R6 (the consumer's totals are final). */
	while (!onering_atomic_load(&r->cons_done, onering_mo_acquire) && !interrupted)
		bench_sleep_ns(100000);
	if (res->have_sc) {
		res->run_cons_sc = syscall_counter_read(k.cons_fd);
		res->run_broker_sc = broker_count_read(&r->broker);
		res->run_reads = r->total_reads;
		res->run_events = r->total_events;
	}
	/* R7: synchronises with A7 (the consumer may exit now). */
	onering_atomic_store(&r->cons_release, 1, onering_mo_release);
	pthread_join(r->thr_cons, NULL);
	r->started_cons = false;
	if (run_failed(r)) {
		fprintf(stderr, "%s N=%u %s: %s\n", peer_names[peer], n,
			latency ? "latency" : "throughput", r->fail.err);
		if (r->broker.pid > 0)
			bench_broker_dump_log(r->broker.log);
		bench_broker_reap(&r->broker.pid, r->broker.log);
		status = 1;
		goto out;
	}
	uint64_t units = onering_atomic_load(&r->units, onering_mo_relaxed);
	if (units != total) {
		unsigned bad = 0;
		for (unsigned i = 0; i < n; i++)
			bad += r->wrote[i] != r->drained[i];
		fprintf(stderr, "%s N=%u %s: LOST EVENTS: wrote %" PRIu64 ", read back %" PRIu64
			" within 2 s; %u of %u sources short\n",
			peer_names[peer], n, latency ? "latency" : "throughput", total, units, bad,
			n);
		bench_broker_reap(&r->broker.pid, r->broker.log);
		status = 1;
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		if (r->wrote[i] != r->drained[i]) {
			fprintf(stderr, "%s N=%u: source %u: wrote %" PRIu64 ", read %" PRIu64 "\n",
				peer_names[peer], n, i, r->wrote[i], r->drained[i]);
			status = 1;
			goto out;
		}
	}

	res->ok = true;
	res->seconds = (double)(b.wall_ns - a.wall_ns) / 1e9;
	res->events = b.events - a.events;
	res->writes = b.writes - a.writes;
	res->units = b.units - a.units;
	res->cons_sc = b.cons_sc - a.cons_sc;
	res->prod_sc = b.prod_sc - a.prod_sc;
	res->broker_sc = b.broker_sc - a.broker_sc;
	res->cons_cpu_ns = b.cons_cpu_ns - a.cons_cpu_ns;
	res->prod_cpu_ns = b.prod_cpu_ns - a.prod_cpu_ns;
	res->broker_cpu_ns = b.broker_cpu_ns - a.broker_cpu_ns;
	res->steal_pct = cpu_steal_pct(&a.cpu, &b.cpu);
	res->others_pct = cpu_others_pct(&a.cpu, &b.cpu,
					 (b.self_cpu_ns - a.self_cpu_ns) + res->broker_cpu_ns);
	res->cons_wait_ns = wait_since(r->cons_wait_end_ns, a.cons_wait_ns);
	res->prod_wait_ns = wait_since(r->prod_wait_end_ns, a.prod_wait_ns);
	res->reads = b.reads - a.reads;
	res->empty_reads = r->empty_reads;
	res->rearms = r->rearms;
	res->coalesced = r->coalesced;
	if (latency) {
		res->samples = r->lat_n;
		if (r->lat_n == 0) {
			/* Every write was read back (checked above), so nothing was
			 * lost; but one event in flight took the whole window. If
			 * the threads that carry it (consumer, producer, broker)
			 * were runnable and waiting for a CPU for most of it, other
			 * processes took the cores: a disturbed measurement, retried
			 * under --retry-noisy like any other. Otherwise the peer
			 * itself stalled, and that is a failure. */
			bool starved = res->cons_wait_ns + res->prod_wait_ns + res->broker_wait_ns >=
				       res->wait_span_ns / 2;
			fprintf(stderr,
				"%s N=%u latency: no sample in %.2f s; from its start until the "
				"last write was taken (%.0f ms) the threads waited for a CPU: "
				"consumer %.0f ms, producer %.0f ms, broker %.0f ms: %s\n",
				peer_names[peer], n, res->seconds, (double)res->wait_span_ns / 1e6,
				(double)res->cons_wait_ns / 1e6, (double)res->prod_wait_ns / 1e6,
				(double)res->broker_wait_ns / 1e6,
				starved ? "starved by other processes" : "the peer stalled");
			if (!starved) {
				status = 1;
				goto out;
			}
			res->starved = true;
			res->p50 = res->p99 = res->p999 = res->max = -1;
			res->harvest_p50 = res->handoff_p50 = -1;
			res->harvest_p99 = res->handoff_p99 = -1;
			goto out;
		}
		res->harvest_p50 = res->handoff_p50 = -1;
		if (peer_is_onering(peer)) {
			/* lat_harvest: the broker's publish stamp - the producer's
			 * stamp (write -> harvest); lat - that: the hand-off from the
			 * broker to the consumer. Each p50 from its own sort. */
			uint64_t *h = r->lat_harvest;
			uint64_t *x = malloc(r->lat_n * sizeof(*x));
			if (x) {
				for (size_t i = 0; i < r->lat_n; i++)
					x[i] = r->lat[i] - h[i];
				qsort(x, r->lat_n, sizeof(*x), bench_cmp_u64);
				res->handoff_p50 = bench_percentile(x, r->lat_n, 0.5);
				res->handoff_p99 = bench_percentile(x, r->lat_n, 0.99);
				free(x);
				/* The poller stamps its records once per loop, before it
				 * asks epoll: a write that lands between the two (the
				 * producer shares the poller's core and preempts it there)
				 * carries a stamp older than the write. That difference
				 * is negative (it wrapped); it counts as 0 here, not as
				 * 2^64 ns at the top of the sort. */
				for (size_t i = 0; i < r->lat_n; i++)
					if ((int64_t)h[i] < 0)
						h[i] = 0;
				qsort(h, r->lat_n, sizeof(*h), bench_cmp_u64);
				res->harvest_p50 = bench_percentile(h, r->lat_n, 0.5);
				res->harvest_p99 = bench_percentile(h, r->lat_n, 0.99);
			}
		}
		qsort(r->lat, r->lat_n, sizeof(*r->lat), bench_cmp_u64);
		res->p50 = bench_percentile(r->lat, r->lat_n, 0.5);
		res->p99 = bench_percentile(r->lat, r->lat_n, 0.99);
		res->p999 = bench_percentile(r->lat, r->lat_n, 0.999);
		res->max = (double)r->lat[r->lat_n - 1];
	}
	if ((peer == PEER_URING_BUSY || peer == PEER_URING_BLOCK) && uring_setup)
		*uring_setup = r->uring_setup;
out:
	if (k.cons_fd >= 0)
		close(k.cons_fd);
	if (k.prod_fd >= 0)
		close(k.prod_fd);
	if (status && interrupted)
		status = 130;
	run_teardown(r);
	free(r);
	return status;
}

/* ---------------------------------------------------------------------- */
/* Reporting.                                                              */

enum fig {
	FIG_EVENTS_PER_S,
	FIG_WRITES_PER_S,
	FIG_WRITES_PER_EVENT,
	FIG_CONS_SC_PER_EVENT,
	FIG_CONS_SC_BEYOND_READ,
	FIG_BROKER_SC_PER_EVENT,
	FIG_CONS_SC_BEYOND_COUNT, /* counting pass: syscalls beyond the reads */
	FIG_SC_EVENTS,            /* counting pass: events taken */
	FIG_CONS_CPU_US,
	FIG_TOTAL_CPU_US,
	FIG_BROKER_CPU_PCT, /* of one core */
	FIG_LAT_P50,
	FIG_LAT_P99,
	FIG_LAT_HARVEST_P50,
	FIG_LAT_HANDOFF_P50,
	FIG_NR,
};

/* figs[round][n index][peer][fig]; -1 = not measured */
static double (*figs)[BENCH_MAX_NS][PEER_NR][FIG_NR];

static void record_figs(double *f, const struct result *r, bool latency)
{
	double ev = r->events ? (double)r->events : -1;

	if (latency && r->starved)
		return; /* no sample: the figures stay "not measured" */
	if (latency) {
		f[FIG_LAT_P50] = r->p50 / 1000.0;
		f[FIG_LAT_P99] = r->p99 / 1000.0;
		f[FIG_LAT_HARVEST_P50] = r->harvest_p50 >= 0 ? r->harvest_p50 / 1000.0 : -1;
		f[FIG_LAT_HANDOFF_P50] = r->harvest_p50 >= 0 ? r->handoff_p50 / 1000.0 : -1;
		return;
	}
	if (ev <= 0)
		return;
	f[FIG_EVENTS_PER_S] = (double)r->events / r->seconds;
	f[FIG_WRITES_PER_S] = (double)r->units / r->seconds;
	f[FIG_WRITES_PER_EVENT] = (double)r->units / ev;
	if (r->have_sc && r->run_events) {
		/* Whole run, exact: every consumer syscall since before the
		 * warm-up over every event it took. */
		double rev = (double)r->run_events;
		uint64_t beyond = r->run_cons_sc >= r->run_reads ? r->run_cons_sc - r->run_reads : 0;
		f[FIG_CONS_SC_PER_EVENT] = (double)r->run_cons_sc / rev;
		f[FIG_CONS_SC_BEYOND_READ] = (double)beyond / rev;
		f[FIG_CONS_SC_BEYOND_COUNT] = (double)beyond;
		f[FIG_SC_EVENTS] = rev;
		if (r->have_broker)
			f[FIG_BROKER_SC_PER_EVENT] = (double)r->run_broker_sc / rev;
	}
	f[FIG_CONS_CPU_US] = (double)r->cons_cpu_ns / 1000.0 / ev;
	f[FIG_TOTAL_CPU_US] =
		(double)(r->cons_cpu_ns + r->prod_cpu_ns + r->broker_cpu_ns) / 1000.0 / ev;
	f[FIG_BROKER_CPU_PCT] = r->broker_cpu_ns ? 100.0 * (double)r->broker_cpu_ns / 1e9 /
							   r->seconds
						 : -1;
}

static FILE *csv;

static void csv_header(void)
{
	fprintf(csv, "round,n,source,mode,peer,seconds,events,writes_drained,producer_writes,"
		     "consumer_reads,empty_reads_run,uring_rearms_run,coalesced_records_run,"
		     "consumer_syscalls,"
		     "producer_syscalls,broker_syscalls,consumer_cpu_ns,producer_cpu_ns,"
		     "broker_cpu_ns,lat_samples,lat_p50_ns,lat_p99_ns,lat_p999_ns,lat_max_ns,"
		     "lat_harvest_p50_ns,lat_handoff_p50_ns,lat_harvest_p99_ns,lat_handoff_p99_ns,"
		     "steal_pct,others_pct,"
		     "run_consumer_syscalls,run_consumer_reads,run_events,run_broker_syscalls,"
		     "cpu_wait_span_ns,consumer_cpu_wait_ns,producer_cpu_wait_ns,"
		     "broker_cpu_wait_ns\n");
}

static void csv_row(unsigned round, unsigned n, const struct bench_opts *o, bool latency,
		    enum peer p, const struct result *r)
{
	fprintf(csv,
		"%u,%u,%s,%s,%s,%.6f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
		",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
		",%" PRIu64 ",%" PRIu64 ",%zu,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.2f,%.2f,"
		"%" PRIu64
		",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
		",%" PRIu64 "\n",
		round, n, o->source == SOURCE_EVENTFD ? "eventfd" : "pipe",
		latency ? "latency" : "throughput", peer_names[p], r->seconds, r->events,
		r->units, r->writes, r->reads, r->empty_reads, r->rearms, r->coalesced, r->cons_sc,
		r->prod_sc, r->broker_sc, r->cons_cpu_ns, r->prod_cpu_ns, r->broker_cpu_ns, r->samples,
		latency ? r->p50 : -1, latency ? r->p99 : -1, latency ? r->p999 : -1,
		latency ? r->max : -1, latency ? r->harvest_p50 : -1,
		latency && r->harvest_p50 >= 0 ? r->handoff_p50 : -1,
		latency && r->harvest_p50 >= 0 ? r->harvest_p99 : -1,
		latency && r->harvest_p50 >= 0 ? r->handoff_p99 : -1, r->steal_pct, r->others_pct,
		r->run_cons_sc, r->run_reads, r->run_events, r->run_broker_sc, r->wait_span_ns,
		r->cons_wait_ns, r->prod_wait_ns, r->broker_wait_ns);
	fflush(csv);
}

/* How much the rest of the machine took during a measurement, percent; a
 * latency measurement starved of every sample ranks below any other. */
static double noise_of(const struct result *r)
{
	double st = r->steal_pct > 0 ? r->steal_pct : 0;

	return (r->others_pct > 0 ? r->others_pct : 0) + st + (r->starved ? 1000 : 0);
}

static bool noisy(const struct bench_opts *o, const struct result *r)
{
	return r->starved || noise_of(r) > o->noise_max_pct;
}

static void print_noise(const struct result *r)
{
	/* At most 100: a wait open at the window's start counts whole. */
	double cons_wait_pct = r->wait_span_ns ? 100.0 * (double)r->cons_wait_ns /
							 (double)r->wait_span_ns
					       : 0;

	if (cons_wait_pct > 100)
		cons_wait_pct = 100;

	if (r->others_pct >= 5 || r->steal_pct >= 1)
		printf("  [noise: others %.0f%%, steal %.0f%% of all CPUs]", r->others_pct,
		       r->steal_pct);
	if (cons_wait_pct >= 5)
		printf("  [consumer runnable, waiting for a CPU: %.0f%% of the time]",
		       cons_wait_pct);
	printf("\n");
}

static void print_progress(enum peer p, bool latency, const struct result *r)
{
	if (latency && r->starved) {
		printf("    lat   %-17s no sample: starved of CPU by other processes (figure "
		       "left out)",
		       peer_names[p]);
		print_noise(r);
		return;
	}
	if (latency) {
		printf("    lat   %-17s p50 %7.2f us  p99 %7.2f us  max %8.1f us  n=%zu",
		       peer_names[p], r->p50 / 1000, r->p99 / 1000, r->max / 1000, r->samples);
		if (r->harvest_p50 >= 0)
			printf("  (p50/p99 write->broker %.2f/%.2f, broker->consumer %.2f/%.2f)",
			       r->harvest_p50 / 1000, r->harvest_p99 / 1000, r->handoff_p50 / 1000,
			       r->handoff_p99 / 1000);
		print_noise(r);
		return;
	}
	double ev = r->events ? (double)r->events : 1;
	printf("    tput  %-17s %6.3f Mev/s  %6.3f Mwr/s  wr/ev %6.2f", peer_names[p],
	       (double)r->events / r->seconds / 1e6, (double)r->units / r->seconds / 1e6,
	       (double)r->units / ev);
	if (r->have_sc && r->run_events)
		printf("  sc/ev %5.3f (%" PRIu64 " syscalls, %" PRIu64 " reads, %" PRIu64
		       " events)",
		       (double)r->run_cons_sc / (double)r->run_events, r->run_cons_sc, r->run_reads,
		       r->run_events);
	printf("  cpu/ev %5.2f us (total %5.2f)", (double)r->cons_cpu_ns / 1000 / ev,
	       (double)(r->cons_cpu_ns + r->prod_cpu_ns + r->broker_cpu_ns) / 1000 / ev);
	if (r->rearms)
		printf("  rearms %" PRIu64, r->rearms);
	if (r->coalesced)
		printf("  coalesced records %" PRIu64, r->coalesced);
	print_noise(r);
}

/* v with prec decimals (and a suffix), or "-" when not measured. */
static void fmt_fig(char *buf, size_t size, double v, int prec, const char *suffix)
{
	if (v < 0)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.*f%s", prec, v, suffix);
}

/* Median over rounds of one figure. */
static double fig_median(unsigned rounds, unsigned ni, enum peer p, enum fig f)
{
	double v[BENCH_MAX_ROUNDS];

	for (unsigned i = 0; i < rounds; i++)
		v[i] = figs[i][ni][p][f];
	return bench_median(v, rounds);
}

struct ratio_def {
	const char *name;
	enum peer num, den;
	enum fig fig;
	bool at_least;
	double target; /* 0: informational */
};

static void print_ratio(const struct bench_opts *o, unsigned ni, const struct ratio_def *d)
{
	double col[BENCH_MAX_ROUNDS];
	char target[32] = "-", verdict[16] = "";

	if (!o->peers[d->num] || !o->peers[d->den])
		return;
	for (unsigned i = 0; i < o->rounds; i++) {
		double a = figs[i][ni][d->num][d->fig], b = figs[i][ni][d->den][d->fig];
		col[i] = a >= 0 && b > 0 ? a / b : -1;
	}
	double m = bench_median(col, o->rounds);
	if (m < 0)
		return;
	if (d->target > 0) {
		snprintf(target, sizeof(target), "%s %.2fx", d->at_least ? ">=" : "<=", d->target);
		bool met = d->at_least ? m >= d->target : m <= d->target;
		snprintf(verdict, sizeof(verdict), "%s", met ? "met" : "MISSED");
	}
	printf("  %-44s %7.3fx  %-9s %-7s", d->name, m, target, verdict);
	for (unsigned i = 0; i < o->rounds && o->rounds > 1; i++)
		printf(" %6.3f", col[i]);
	printf("\n");
}

static void print_summary(const struct bench_opts *o)
{
	char a[16], b[16], c[16], d[16], e[16], f[16], g[16], h[16], i_[16];

	printf("\nSummary: medians of %u round%s (%s sources; %u events per call for every "
	       "peer)\n",
	       o->rounds, o->rounds == 1 ? "" : "s",
	       o->source == SOURCE_EVENTFD ? "eventfd" : "pipe", BENCH_BATCH);
	for (unsigned ni = 0; ni < o->nr_ns; ni++) {
		unsigned n = o->ns[ni];
		if (o->modes[MODE_THROUGHPUT]) {
			printf("\n  N = %u, throughput (producer at full speed)\n", n);
			printf("  %-17s %9s %9s %7s %8s %8s %8s %8s %8s %7s\n", "peer", "Mev/s",
			       "Mwr/s", "wr/ev", "sc/ev", "sc-read", "brk sc", "cons us",
			       "total us", "brk cpu");
			for (int p = 0; p < PEER_NR; p++) {
				if (!o->peers[p])
					continue;
				double ev = fig_median(o->rounds, ni, p, FIG_EVENTS_PER_S);
				double wr = fig_median(o->rounds, ni, p, FIG_WRITES_PER_S);
				double sc = figs[o->rounds][ni][p][FIG_CONS_SC_PER_EVENT];
				fmt_fig(a, sizeof(a), ev / 1e6, 3, "");
				fmt_fig(b, sizeof(b), wr / 1e6, 3, "");
				fmt_fig(c, sizeof(c),
					fig_median(o->rounds, ni, p, FIG_WRITES_PER_EVENT), 2, "");
				fmt_fig(d, sizeof(d), sc, 3, "");
				const double *cf = figs[o->rounds][ni][p];
				fmt_fig(e, sizeof(e), cf[FIG_CONS_SC_BEYOND_READ], 3, "");
				fmt_fig(f, sizeof(f), cf[FIG_BROKER_SC_PER_EVENT], 3, "");
				fmt_fig(g, sizeof(g), fig_median(o->rounds, ni, p, FIG_CONS_CPU_US),
					3, "");
				fmt_fig(h, sizeof(h),
					fig_median(o->rounds, ni, p, FIG_TOTAL_CPU_US), 3, "");
				fmt_fig(i_, sizeof(i_),
					fig_median(o->rounds, ni, p, FIG_BROKER_CPU_PCT), 0, "%");
				printf("  %-17s %9s %9s %7s %8s %8s %8s %8s %8s %7s\n", peer_names[p],
				       a, b, c, d, e, f, g, h, i_);
			}
		}
		if (o->modes[MODE_LATENCY]) {
			printf("\n  N = %u, readiness-to-consume latency, us (one event in "
			       "flight)\n",
			       n);
			printf("  %-17s %9s %9s %16s %18s\n", "peer", "p50", "p99",
			       "write->broker", "broker->consumer");
			for (int p = 0; p < PEER_NR; p++) {
				if (!o->peers[p])
					continue;
				fmt_fig(a, sizeof(a), fig_median(o->rounds, ni, p, FIG_LAT_P50),
					2, "");
				fmt_fig(b, sizeof(b), fig_median(o->rounds, ni, p, FIG_LAT_P99),
					2, "");
				fmt_fig(c, sizeof(c),
					fig_median(o->rounds, ni, p, FIG_LAT_HARVEST_P50), 2, "");
				fmt_fig(d, sizeof(d),
					fig_median(o->rounds, ni, p, FIG_LAT_HANDOFF_P50), 2, "");
				printf("  %-17s %9s %9s %16s %18s\n", peer_names[p], a, b, c, d);
			}
		}
	}
	printf("\n  Columns: Mev/s readiness events taken; Mwr/s producer writes drained;\n"
	       "  wr/ev writes per event (coalescing); sc/ev consumer syscalls per event;\n"
	       "  sc-read the same minus the consumer's own read()s (counted); brk sc the\n"
	       "  broker's syscalls per event (all its threads) -- the three syscall columns\n"
	       "  come from the counting pass; cons us / total us CPU per event of the\n"
	       "  consumer / of consumer + producer + broker; brk cpu the broker's CPU,\n"
	       "  percent of one core.\n");

	printf("\nRatios vs targets (median of per-round ratios; per-round values after)\n");
	if (o->core_producer == o->core_consumer)
		printf("  (producer and consumer share a core here: a blocking peer is woken on\n"
		       "  its own core, without the cross-core wake-up the 0.1x target is about)\n");
	for (unsigned ni = 0; ni < o->nr_ns; ni++) {
		printf("\n  N = %u\n", o->ns[ni]);
		if (o->modes[MODE_THROUGHPUT]) {
			const struct ratio_def defs[] = {
				{ "delivered events/s onering-busy/epoll-busy", PEER_ONERING_BUSY,
				  PEER_EPOLL_BUSY, FIG_EVENTS_PER_S, true, 0.95 },
				{ "delivered events/s onering-busy/epoll-block", PEER_ONERING_BUSY,
				  PEER_EPOLL_BLOCK, FIG_EVENTS_PER_S, true, 0.95 },
				{ "writes drained/s onering-busy/epoll-busy", PEER_ONERING_BUSY,
				  PEER_EPOLL_BUSY, FIG_WRITES_PER_S, true, 0 },
				{ "delivered events/s onering-busy/uring-busy", PEER_ONERING_BUSY,
				  PEER_URING_BUSY, FIG_EVENTS_PER_S, true, 0 },
				{ "total CPU/event onering-busy/epoll-busy", PEER_ONERING_BUSY,
				  PEER_EPOLL_BUSY, FIG_TOTAL_CPU_US, false, 0 },
			};
			for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
				print_ratio(o, ni, &defs[i]);
			if (o->peers[PEER_ONERING_BUSY]) {
				const double *cf = figs[o->rounds][ni][PEER_ONERING_BUSY];
				if (cf[FIG_CONS_SC_BEYOND_READ] >= 0) {
					printf("  %-44s %7.3f   %-9s %-7s (%.0f syscalls in %.0f "
					       "events)\n",
					       "onering-busy consumer syscalls/event - read",
					       cf[FIG_CONS_SC_BEYOND_READ], "= 0",
					       cf[FIG_CONS_SC_BEYOND_COUNT] == 0 ? "met" : "MISSED",
					       cf[FIG_CONS_SC_BEYOND_COUNT], cf[FIG_SC_EVENTS]);
				}
			}
		}
		if (o->modes[MODE_LATENCY]) {
			const struct ratio_def defs[] = {
				{ "latency p50 onering-busy/epoll-busy", PEER_ONERING_BUSY,
				  PEER_EPOLL_BUSY, FIG_LAT_P50, false, 1.1 },
				{ "latency p50 onering-busy/epoll-block", PEER_ONERING_BUSY,
				  PEER_EPOLL_BLOCK, FIG_LAT_P50, false, 0.1 },
				{ "latency p50 onering-busy/uring-busy", PEER_ONERING_BUSY,
				  PEER_URING_BUSY, FIG_LAT_P50, false, 0 },
				{ "latency p99 onering-busy/epoll-busy", PEER_ONERING_BUSY,
				  PEER_EPOLL_BUSY, FIG_LAT_P99, false, 0 },
			};
			for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
				print_ratio(o, ni, &defs[i]);
		}
	}
	printf("\n  Targets are figures, not pass/fail: a missed one does not change the exit "
	       "status.\n");
}

/* ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct sigaction sa;
	struct rlimit rl;
	const char *uring_setup = NULL;
	bool mounted = false;
	int status = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (parse_opts(argc, argv, &o) < 0)
		return 2;
	if (sched_getaffinity(0, sizeof(start_affinity), &start_affinity) < 0) {
		fprintf(stderr, "sched_getaffinity: %s\n", strerror(errno));
		return 2;
	}
	if (o.core_producer >= ncpu || o.core_consumer >= ncpu || o.core_broker >= ncpu) {
		fprintf(stderr, "--cores %d,%d,%d: this machine has CPUs 0..%ld\n", o.core_producer,
			o.core_consumer, o.core_broker, ncpu - 1);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* N sources (2N fds for pipes), in this process and in the broker. */
	unsigned max_n = 0;
	for (unsigned i = 0; i < o.nr_ns; i++)
		max_n = o.ns[i] > max_n ? o.ns[i] : max_n;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t need = 2 * (rlim_t)max_n + 256;
		if (rl.rlim_cur < need) {
			rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (rl.rlim_cur < need) {
			fprintf(stderr, "RLIMIT_NOFILE %llu is below the %llu fds N=%u needs\n",
				(unsigned long long)rl.rlim_cur, (unsigned long long)need, max_n);
			return 2;
		}
	}
	if (o.count_syscalls) {
		find_sys_enter(&mounted);
		if (sys_enter_id < 0)
			fprintf(stderr, "warning: syscalls not counted: %s\n", sys_enter_why);
	}
	/* rounds, then one slot for the syscall-counting pass */
	figs = malloc(sizeof(*figs) * (o.rounds + 1));
	if (!figs)
		return 2;
	for (unsigned i = 0; i <= o.rounds; i++)
		for (unsigned j = 0; j < BENCH_MAX_NS; j++)
			for (int p = 0; p < PEER_NR; p++)
				for (int f = 0; f < FIG_NR; f++)
					figs[i][j][p][f] = -1;
	if (o.csv_path) {
		csv = fopen(o.csv_path, "w");
		if (!csv) {
			fprintf(stderr, "--csv %s: %s\n", o.csv_path, strerror(errno));
			return 2;
		}
		csv_header();
	}
	/* The main thread sleeps through measurements; keep it off the
	 * consumer's core. */
	bench_pin_self(o.core_producer != o.core_consumer ? o.core_producer : o.core_broker);

	printf("onering-bench-readiness: %u round%s, %.2f s per measurement (+%.2f s warm-up), "
	       "N =",
	       o.rounds, o.rounds == 1 ? "" : "s", (double)o.measure_ns / 1e9,
	       (double)o.warmup_ns / 1e9);
	for (unsigned i = 0; i < o.nr_ns; i++)
		printf("%s%u", i ? "," : " ", o.ns[i]);
	printf(", %s sources\n", o.source == SOURCE_EVENTFD ? "eventfd" : "pipe");
	printf("placement: producer core %d; consumer core %d; oneringd poller and control "
	       "thread core %d (%ld CPUs online)%s\n",
	       o.core_producer, o.core_consumer, o.core_broker, ncpu,
	       o.core_broker == o.core_producer ? ": the broker shares the producer's core"
	       : o.core_broker == o.core_consumer ? ": the broker shares the consumer's core"
						  : "");
	if (o.core_producer == o.core_consumer)
		printf("note: producer and consumer share core %d: every peer pays a context "
		       "switch per event, blocking peers wake without an IPI, and full-speed "
		       "throughput time-slices the two\n",
		       o.core_consumer);
	printf("oneringd: %s --cores %d --control-core %d --no-hugepages [--idle-sleep-ms -1 "
	       "for onering-busy and onering-wait]; queue capacity %u\n",
	       ONERINGD_PATH, o.core_broker, o.core_broker, o.capacity);
	for (unsigned i = 0; i < o.nr_broker_args; i++)
		printf("%s%s%s", i ? " " : "oneringd extra options: ", o.broker_args[i],
		       i + 1 == o.nr_broker_args ? "\n" : "");
	if (o.count_syscalls && sys_enter_id >= 0)
		printf("syscalls: perf_event_open, tracepoint raw_syscalls:sys_enter (id %ld)%s, "
		       "per thread, in a separate pass after the rounds (an enabled syscall\n"
		       "  tracepoint slows every syscall on the machine: rates, CPU and latency "
		       "come from uncounted runs)\n",
		       sys_enter_id, mounted ? ", tracefs mounted on /sys/kernel/tracing" : "");
	else
		printf("syscalls: not counted\n");
	fflush(stdout);

	for (unsigned round = 0; round < o.rounds && status == 0; round++) {
		printf("round %u/%u\n", round + 1, o.rounds);
		for (unsigned ni = 0; ni < o.nr_ns && status == 0; ni++) {
			printf("  N = %u\n", o.ns[ni]);
			for (int m = 0; m < MODE_NR && status == 0; m++) {
				if (!o.modes[m])
					continue;
				for (int p = 0; p < PEER_NR && status == 0; p++) {
					struct result res, again;
					unsigned tries = 0;
					if (!o.peers[p])
						continue;
					status = run_one(&o, p, m == MODE_LATENCY, o.ns[ni], false,
							 &res, &uring_setup);
					while (status == 0 && tries < o.retry_noisy && noisy(&o, &res)) {
						tries++;
						status = run_one(&o, p, m == MODE_LATENCY, o.ns[ni],
								 false, &again, &uring_setup);
						if (status == 0 && noise_of(&again) < noise_of(&res))
							res = again;
					}
					if (status)
						break;
					if (tries)
						printf("    (disturbed: ran %u times, kept the quietest)\n",
						       tries + 1);
					record_figs(figs[round][ni][p], &res, m == MODE_LATENCY);
					print_progress(p, m == MODE_LATENCY, &res);
					if (csv)
						csv_row(round + 1, o.ns[ni], &o, m == MODE_LATENCY, p,
							&res);
					fflush(stdout);
				}
			}
		}
	}
	/* Syscalls per event: one counted throughput run per peer and N. */
	if (status == 0 && o.count_syscalls && sys_enter_id >= 0 && o.modes[MODE_THROUGHPUT]) {
		struct bench_opts oc = o;
		oc.measure_ns = o.measure_ns / 2 > 50000000ull ? o.measure_ns / 2 : 50000000ull;
		printf("syscall count (tracepoint on; %.2f s each)\n", (double)oc.measure_ns / 1e9);
		for (unsigned ni = 0; ni < o.nr_ns && status == 0; ni++) {
			printf("  N = %u\n", o.ns[ni]);
			for (int p = 0; p < PEER_NR && status == 0; p++) {
				struct result res;
				if (!o.peers[p])
					continue;
				status = run_one(&oc, p, false, o.ns[ni], true, &res, NULL);
				if (status)
					break;
				record_figs(figs[o.rounds][ni][p], &res, false);
				print_progress(p, false, &res);
				if (csv)
					csv_row(0, o.ns[ni], &oc, false, p, &res);
				fflush(stdout);
			}
		}
	}
	if (status == 0) {
		if (uring_setup)
			printf("\nio_uring setup used by uring-busy / uring-block: %s; uring-peek: "
			       "CQSIZE only\n",
			       uring_setup);
		print_summary(&o);
	} else if (status == 130) {
		fprintf(stderr, "interrupted: the broker was stopped and its directory removed\n");
	}
	if (csv)
		fclose(csv);
	free(figs);
	return status;
}
