/* SPDX-License-Identifier: MIT */
/*
 * onering-bench-nic: NIC receive -> consumer, onering against the same
 * rx_burst loop in-process (the floor) and against rx_burst -> DPDK rte_ring
 * -> consumer thread, every peer in the same run, rounds interleaved.
 *
 * Workload
 *   A DPDK net_null virtual device: every rte_eth_rx_burst() returns as
 *   many 64-byte packets as asked for (mbufs taken from the rx queue's
 *   mempool; with --copy the PMD also writes 64 bytes into each). The
 *   consumer of each peer does the same work per packet: it reads the first
 *   64 bytes (the snaplen) and sums them as 64-bit words. Rx bursts are of
 *   32 packets everywhere (the broker's own burst); consumers take up to
 *   64 records per call.
 *
 * Peers
 *   floor     in this process, one thread: rte_eth_rx_burst(32), touch the
 *             64 bytes of each packet, rte_pktmbuf_free_bulk(). What an
 *             application that owns the NIC queue does; one core.
 *   rte_ring  in this process, two threads: the rx thread does
 *             rte_eth_rx_burst(32) and enqueues the mbuf pointers into an
 *             SP/SC rte_ring (what does not fit is freed and counted as
 *             dropped); the consumer dequeues up to 64, touches 64 bytes of
 *             each and frees them in bulk. The classic DPDK hand-off to a
 *             worker core.
 *   onering   this program starts oneringd with the same vdev (its own EAL,
 *             another --file-prefix, --no-shconf), one poller pinned to the
 *             rx core, the port delivering to group "bn" with snaplen 64; a
 *             consumer thread on the other core attaches, opens a queue in
 *             that group with a 64-byte packet area and loops onering_poll(),
 *             touching the len bytes that onering_event_packet() gives for
 *             each record. When the queue's ring is full the broker drops
 *             (and counts) the packet, as a NIC would: the figure is what
 *             the consumer got (delivered), next to what the broker
 *             received and the drop share, from its rx queue counters
 *             (ONERING_MSG_STATS, ONERING_STATS_RXQ).
 *
 * Metrics (per peer and round; the summary gives medians over the rounds
 * and medians of the per-round ratios)
 *   records/s      records (packets) the consumer took in the window;
 *   received/s     packets taken from the device (the rx side); drop % =
 *                  dropped / received (rte_ring full, or no room in the
 *                  onering queue);
 *   CPU-s          CPU time spent by the peer in the window: its own threads
 *                  (pthread_getcpuclockid, i.e. CLOCK_THREAD_CPUTIME_ID of
 *                  each thread), plus for onering every thread of oneringd
 *                  (/proc/PID/task/TID/schedstat in ns; utime+stime from
 *                  /proc/PID/stat when schedstat is missing);
 *   records/CPU-s  records/s per CPU second: the floor uses one core, the
 *                  other two peers two, so the ratios are given on both
 *                  bases. The two-core consumers busy-poll: their CPU is a
 *                  whole core whether they are busy or waiting.
 *   pkts/poll loop onering: packets the broker's poller took per loop
 *                  (ONERING_STATS_POLLER loops), i.e. how full its rx
 *                  bursts were;
 *   line rtt       before each two-core peer (both cores idle): one cache
 *                  line to C and back, ns per round trip. On a VM it shows
 *                  how the host placed the two vCPUs at that moment; the
 *                  two-core peers depend on it, the floor does not;
 *   noise          CPU the rest of the machine took (/proc/stat busy minus
 *                  the peer's own CPU) and steal, % of all CPUs. A
 *                  measurement above --noise-max is redone (twice at most,
 *                  never with --quick); the last attempt counts, and the
 *                  summary says how many stayed disturbed.
 *   Target (performance contract): onering >= 0.7x the in-process floor for
 *   64-byte packets with snaplen 64; printed as met/missed on both bases.
 *
 * Placement (--cores R,C; default 0,1 on a 2-CPU machine): the floor on R;
 * rte_ring: rx thread on R, consumer on C; onering: the broker's poller and
 * control thread on R, consumer on C. The main thread (the EAL's main lcore,
 * on R) sleeps while a peer runs. Each peer gets a warm-up (0.2 s; 0.1 s
 * with --quick) before its measured window.
 *
 * Two EALs: this process keeps its own EAL (--no-huge --no-pci --no-shconf,
 * --file-prefix onering-bench-nic-PID) up for the whole run; oneringd is
 * started for each onering measurement with --file-prefix onering-bn-PID and
 * stopped after it (a broker left running would spin on the net_null queue
 * and steal the rx core from the other peers). With --no-shconf and distinct
 * prefixes they share nothing: no config file, no multi-process socket.
 *
 * Exit status: 0 when every peer ran and every record was readable (a missed
 * target is a figure, not a failure); 1 on a failure during a measurement
 * (a bad record, a thread that would not stop, the broker died); 2 on a
 * usage or setup error; 130 when interrupted (the broker is stopped and its
 * directories removed on every path).
 *
 * Ordering contract of the words this program shares between its threads:
 *   phase    written by the main thread only (R0 store-release), read by the
 *            peer threads (A0 load-acquire): set up, run, stop.
 *   ready    each peer thread adds 1 (R1 release) once set up; main's A1
 *            load-acquire pairs with it before it starts the run.
 *   failed   claimed once (CAS acq_rel) by the first thread that fails,
 *            which then writes the reason; main reads the reason after the
 *            joins (pthread_join orders it).
 *   counters records/received/dropped: one writer each (its thread), relaxed
 *            stores once per burst; main reads them relaxed for window
 *            snapshots (figures, not synchronisation). Each on its own line.
 *   probe    ping (main, P1 store-release) and pong (echo thread, P2
 *            store-release), each read by the other side with a
 *            load-acquire; see struct probe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_version.h>

#include "client/onering.h"
#include "shm/atomic.h"
#include "shm/proto.h"
#include "tools/bench_common.h"

#ifndef ONERINGD_PATH
#error "ONERINGD_PATH must name the oneringd binary to start"
#endif

#define BENCH_VDEV "net_null0"
#define BENCH_PKT_SIZE 64u      /* net_null's packet length */
#define BENCH_SNAPLEN 64u       /* bytes each consumer touches, and the broker keeps */
#define BENCH_RX_BURST 32u      /* rte_eth_rx_burst size, every peer (and the broker) */
#define BENCH_TAKE 64u          /* records a consumer takes per call */
#define BENCH_RX_DESC 1024u     /* as the broker */
#define BENCH_TX_DESC 256u
#define BENCH_POOL_SPARE 12287u /* mbufs beyond the rte_ring's capacity: caches, bursts */
#define BENCH_MAX_CAPACITY 65536u
#define BENCH_POOL_CACHE 256u   /* as the broker */
#define BENCH_MAX_ROUNDS 100u
#define BENCH_GROUP "bn"
#define BENCH_BROKER_NAME "bn"
#define BENCH_TARGET 0.7
#define BENCH_READY_NS (10000000000ull) /* threads must be set up within 10 s */
#define BENCH_JOIN_S 5                  /* and stop within 5 s of being told */

/* ---------------------------------------------------------------------- */
/* Peers and options.                                                      */

enum peer {
	PEER_FLOOR,
	PEER_RTE_RING,
	PEER_ONERING,
	PEER_NR,
};

static const char *const peer_names[PEER_NR] = {
	[PEER_FLOOR] = "floor",
	[PEER_RTE_RING] = "rte_ring",
	[PEER_ONERING] = "onering",
};

struct bench_opts {
	uint64_t window_ns; /* measured window per peer and round */
	uint64_t warmup_ns;
	unsigned rounds;
	uint32_t capacity; /* onering queue and rte_ring, records */
	int core_rx;       /* floor, rte_ring rx thread, broker poller + control */
	int core_cons;     /* rte_ring and onering consumers */
	bool copy;         /* net_null copy=1 */
	bool quick;
	double noise_max_pct; /* retry a measurement when the rest of the machine took more */
	unsigned retries;     /* at most this many times */
	bool run_peer[PEER_NR];
};

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s [options]\n"
		"\n"
		"NIC receive -> consumer on a DPDK net_null device, 64-byte packets, snaplen\n"
		"64: onering (oneringd's poller -> a queue with a packet area -> a consumer\n"
		"thread) against the same rx_burst loop in this process (the floor, one core)\n"
		"and against rx_burst -> rte_ring SP/SC -> a consumer thread. Every consumer\n"
		"reads and sums the 64 bytes of each packet. Rounds interleave the peers; the\n"
		"summary gives records/s, CPU seconds, records per CPU second and the ratios\n"
		"to the floor next to the target of the performance contract (>= %.1fx).\n"
		"\n"
		"Options:\n"
		"  --seconds S    measured window per peer and round (default 3; --quick 0.5)\n"
		"  --rounds N     interleaved rounds, median taken (default 3)\n"
		"  --quick        smoke run: 0.5 s windows, 0.1 s warm-up (CI; under 30 s)\n"
		"  --cores R,C    rx core R (floor, rte_ring rx thread, the broker's poller and\n"
		"                 control thread) and consumer core C (default 0,1)\n"
		"  --capacity N   onering queue and rte_ring size in records, a power of two\n"
		"                 (default 4096)\n"
		"  --copy         net_null copy=1: the device writes the 64 bytes of every\n"
		"                 packet (default: it only sets the length)\n"
		"  --peers LIST   run only these of floor,rte_ring,onering (ratios need floor)\n"
		"  --noise-max P  redo a measurement (at most twice; never with --quick) when\n"
		"                 other processes and steal took more than P %% of all CPUs\n"
		"                 during it (default 10; 0: never redo)\n"
		"  --help         this text\n"
		"\n"
		"oneringd: %s\n"
		"Needs no hugepages and no NIC (DPDK runs with --no-huge --no-pci --no-shconf).\n"
		"Exit status: 0 done (a missed target is a figure); 1 a measurement failed;\n"
		"2 usage or setup error; 130 interrupted.\n",
		prog, BENCH_TARGET, ONERINGD_PATH);
}

static int parse_cores(const char *s, struct bench_opts *o)
{
	char buf[64];
	char *comma;
	uint64_t r, c;

	snprintf(buf, sizeof(buf), "%s", s);
	comma = strchr(buf, ',');
	if (!comma)
		return -EINVAL;
	*comma = '\0';
	if (bench_parse_u64(buf, 0, CPU_SETSIZE - 1, &r) ||
	    bench_parse_u64(comma + 1, 0, CPU_SETSIZE - 1, &c))
		return -EINVAL;
	o->core_rx = (int)r;
	o->core_cons = (int)c;
	return 0;
}

static int parse_peer_list(const char *s, struct bench_opts *o)
{
	return bench_parse_names(s, peer_names, PEER_NR, o->run_peer);
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	enum {
		OPT_SECONDS = 256,
		OPT_ROUNDS,
		OPT_QUICK,
		OPT_CORES,
		OPT_CAPACITY,
		OPT_COPY,
		OPT_NOISE_MAX,
		OPT_PEERS,
		OPT_HELP,
	};
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, OPT_SECONDS },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "quick", no_argument, NULL, OPT_QUICK },
		{ "cores", required_argument, NULL, OPT_CORES },
		{ "capacity", required_argument, NULL, OPT_CAPACITY },
		{ "copy", no_argument, NULL, OPT_COPY },
		{ "noise-max", required_argument, NULL, OPT_NOISE_MAX },
		{ "peers", required_argument, NULL, OPT_PEERS },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool have_seconds = false;
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->window_ns = 3000000000ull;
	o->warmup_ns = 200000000ull;
	o->rounds = 3;
	o->capacity = 4096;
	o->core_rx = 0;
	o->core_cons = 1;
	o->noise_max_pct = 10;
	o->retries = 2;
	for (int p = 0; p < PEER_NR; p++)
		o->run_peer[p] = true;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_SECONDS:
			if (bench_parse_seconds(optarg, 10000000ull, 600000000000ull, &o->window_ns)) {
				fprintf(stderr, "--seconds %s: expected 0.01..600\n", optarg);
				return -EINVAL;
			}
			have_seconds = true;
			break;
		case OPT_ROUNDS:
			if (bench_parse_u64(optarg, 1, BENCH_MAX_ROUNDS, &v)) {
				fprintf(stderr, "--rounds %s: expected 1..%u\n", optarg, BENCH_MAX_ROUNDS);
				return -EINVAL;
			}
			o->rounds = (unsigned)v;
			break;
		case OPT_QUICK:
			o->quick = true;
			break;
		case OPT_CORES:
			if (parse_cores(optarg, o)) {
				fprintf(stderr, "--cores %s: expected R,C (two CPU numbers)\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_CAPACITY:
			if (bench_parse_u64(optarg, 64, BENCH_MAX_CAPACITY, &v) || (v & (v - 1))) {
				fprintf(stderr, "--capacity %s: expected a power of two, 64..%u\n",
					optarg, BENCH_MAX_CAPACITY);
				return -EINVAL;
			}
			o->capacity = (uint32_t)v;
			break;
		case OPT_COPY:
			o->copy = true;
			break;
		case OPT_NOISE_MAX: {
			char *end;
			errno = 0;
			o->noise_max_pct = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(o->noise_max_pct >= 0) ||
			    o->noise_max_pct > 100) {
				fprintf(stderr, "--noise-max %s: expected a percentage, 0..100\n",
					optarg);
				return -EINVAL;
			}
			break;
		}
		case OPT_PEERS:
			if (parse_peer_list(optarg, o)) {
				fprintf(stderr, "--peers %s: expected a list of floor, rte_ring, onering\n",
					optarg);
				return -EINVAL;
			}
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
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
		usage(stderr, argv[0]);
		return -EINVAL;
	}
	if (o->quick) {
		if (!have_seconds)
			o->window_ns = 500000000ull;
		o->warmup_ns = 100000000ull;
		o->retries = 0;
	}
	if (o->noise_max_pct == 0)
		o->retries = 0;
	if (o->core_rx == o->core_cons) {
		fprintf(stderr, "--cores %d,%d: the rx and consumer cores must differ\n", o->core_rx,
			o->core_cons);
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Small helpers (clocks, pinning: bench_common.h).                       */

/* Sleep ns, or less when a signal arrives (callers check `interrupted`). */
static void sleep_ns(uint64_t ns)
{
	uint64_t end = bench_now_ns() + ns;

	while (!interrupted) {
		uint64_t now = bench_now_ns();
		if (now >= end)
			return;
		uint64_t left = end - now;
		struct timespec ts = { .tv_sec = (time_t)(left / 1000000000ull),
				       .tv_nsec = (long)(left % 1000000000ull) };
		nanosleep(&ts, NULL);
	}
}

/* Machine noise: CPU time the rest of the machine took, and steal. */
struct cpu_sample {
	uint64_t busy;  /* all CPUs: user+nice+system+irq+softirq, jiffies */
	uint64_t steal; /* all CPUs, jiffies */
	bool ok;
};

static void cpu_sample_take(struct cpu_sample *c)
{
	unsigned long long v[8] = { 0 };
	FILE *f;

	memset(c, 0, sizeof(*c));
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

/*
 * Busy time of everything but the peer (ours_ns: its threads and the
 * broker's), and steal, as percent of all CPUs over wall_s; -1 if unknown.
 */
static void cpu_noise(const struct cpu_sample *a, const struct cpu_sample *b, double wall_s,
		      uint64_t ours_ns, double *others_pct, double *steal_pct)
{
	double hz = (double)sysconf(_SC_CLK_TCK);
	double cpus = (double)sysconf(_SC_NPROCESSORS_ONLN);
	double span = wall_s * hz * cpus;

	*others_pct = *steal_pct = -1;
	if (!a->ok || !b->ok || span <= 0)
		return;
	double busy = (double)(b->busy - a->busy) - (double)ours_ns / 1e9 * hz;
	*others_pct = busy > 0 ? 100.0 * busy / span : 0;
	*steal_pct = 100.0 * (double)(b->steal - a->steal) / span;
}

/*
 * The work every consumer does per packet: read len bytes and sum them as
 * 64-bit words (the tail byte by byte). With len = 64: eight loads of one
 * cache line.
 */
static BENCH_ALWAYS_INLINE uint64_t touch(const void *p, uint32_t len)
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

/* ---------------------------------------------------------------------- */
/* Cross-core probe: what moving one cache line between R and C costs now. */

#define BENCH_PROBE_TRIPS 20000u
#define BENCH_PROBE_WAIT_NS 1000000000ull /* a side silent this long: give up */

/*
 * ping is written by the main thread only (P1 store-release), pong by the
 * echo thread only (P2 store-release); each side's load-acquire of the other
 * word pairs with that store. One line each.
 */
struct probe {
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) ping;
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) pong;
	alignas(ONERING_CACHE_LINE) int core;
};

/*
 * Spin until *word == want or the other side has given up (UINT64_MAX),
 * checking the clock and `interrupted` every 4096 spins: bounded.
 */
static bool probe_wait(ONERING_ATOMIC(uint64_t) *word, uint64_t want)
{
	uint64_t deadline = 0;

	for (unsigned spins = 0;; spins++) {
		/* Pairs with P1 or P2 on the other side. */
		uint64_t v = onering_atomic_load(word, onering_mo_acquire);
		if (v == want)
			return true;
		if (v == UINT64_MAX)
			return false;
		if ((spins & 4095) == 4095) {
			uint64_t now = bench_now_ns();
			if (interrupted)
				return false;
			if (!deadline)
				deadline = now + BENCH_PROBE_WAIT_NS;
			else if (now > deadline)
				return false;
		}
	}
}

static void *probe_echo(void *arg)
{
	struct probe *pr = arg;

	if (bench_pin_self(pr->core) < 0) {
		onering_atomic_store(&pr->pong, UINT64_MAX, onering_mo_release);
		return NULL;
	}
	for (uint64_t i = 1; i <= BENCH_PROBE_TRIPS; i++) {
		if (!probe_wait(&pr->ping, i)) {
			/* Tell main not to wait for us any more. */
			onering_atomic_store(&pr->pong, UINT64_MAX, onering_mo_release);
			return NULL;
		}
		onering_atomic_store(&pr->pong, i, onering_mo_release); /* P2 */
	}
	return NULL;
}

/*
 * Round trips of one cache line each way between the calling thread (on
 * core_rx) and a thread on core_cons: ns per round trip, or -1. Run with
 * both cores otherwise idle, before a two-core peer's measurement; on a VM
 * it shows what the host's placement of the two vCPUs costs at that time.
 */
static double probe_rtt_ns(const struct bench_opts *o)
{
	static struct probe pr;
	pthread_t th;
	double rtt = -1;

	if (bench_pin_self(o->core_rx) < 0)
		return -1;
	onering_atomic_store(&pr.ping, 0, onering_mo_relaxed);
	onering_atomic_store(&pr.pong, 0, onering_mo_relaxed);
	pr.core = o->core_cons;
	if (pthread_create(&th, NULL, probe_echo, &pr))
		return -1;
	uint64_t t0 = bench_now_ns();
	uint64_t i = 1;
	for (; i <= BENCH_PROBE_TRIPS; i++) {
		onering_atomic_store(&pr.ping, i, onering_mo_release); /* P1 */
		if (!probe_wait(&pr.pong, i))
			break;
	}
	uint64_t t1 = bench_now_ns();
	if (i > BENCH_PROBE_TRIPS)
		rtt = (double)(t1 - t0) / BENCH_PROBE_TRIPS;
	else /* the echo thread is gone or stuck: let it run out */
		onering_atomic_store(&pr.ping, UINT64_MAX, onering_mo_release);
	pthread_join(th, NULL);
	return rtt;
}

/* ---------------------------------------------------------------------- */
/* The in-process EAL: net_null port, mempool, rte_ring.                  */

struct dpdk_env {
	bool eal_up;
	bool port_started;
	uint16_t port;
	struct rte_mempool *pool;
	struct rte_ring *ring;
	char runtime_base[PATH_MAX]; /* DPDK's runtime directory base, e.g. /var/run/dpdk */
	char eal_line[512];          /* the EAL options, for the header */
};

static struct dpdk_env env;

static int eal_start(const struct bench_opts *o)
{
	static char args[16][96];
	char *argv[17];
	int argc = 0;
	size_t at = 0;

#define EARG(...) snprintf(args[argc], sizeof(args[argc]), __VA_ARGS__), argv[argc] = args[argc], argc++
	EARG("onering-bench-nic");
	EARG("--no-huge");
	EARG("--no-pci");
	EARG("--no-shconf");
	EARG("-m");
	EARG("512");
	EARG("--file-prefix");
	EARG("onering-bench-nic-%ld", (long)getpid());
	EARG("--vdev");
	EARG("%s,size=%u,copy=%d", BENCH_VDEV, BENCH_PKT_SIZE, o->copy ? 1 : 0);
	EARG("-l");
	EARG("%d", o->core_rx);
	EARG("--log-level");
	EARG("error");
	EARG("--no-telemetry");
#undef EARG
	argv[argc] = NULL;
	for (int i = 1; i < argc && at < sizeof(env.eal_line); i++)
		at += (size_t)snprintf(env.eal_line + at, sizeof(env.eal_line) - at, "%s%s",
				       i > 1 ? " " : "", args[i]);

	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr,
			"rte_eal_init (%s) failed: %s (need CPU %d online and a writable DPDK "
			"runtime directory, /var/run/dpdk as root)\n",
			env.eal_line, rte_strerror(rte_errno), o->core_rx);
		return -1;
	}
	env.eal_up = true;
	/* Runtime dirs are BASE/PREFIX: the broker's goes next to ours. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	snprintf(env.runtime_base, sizeof(env.runtime_base), "%s", dirname(dir));
	return 0;
}

/* The net_null port: 1 rx queue (1 tx queue, unused), started. */
static int port_start(const struct bench_opts *o)
{
	struct rte_eth_conf conf;
	int r;

	if (rte_eth_dev_get_port_by_name(BENCH_VDEV, &env.port) != 0) {
		fprintf(stderr, "no port %s after EAL init (is the net_null PMD built into "
			"this DPDK?)\n", BENCH_VDEV);
		return -1;
	}
	int socket = rte_eth_dev_socket_id(env.port);
	if (socket < 0)
		socket = (int)rte_socket_id();
	unsigned mbufs = o->capacity + BENCH_POOL_SPARE;
	env.pool = rte_pktmbuf_pool_create("bench_nic_pool", mbufs, BENCH_POOL_CACHE, 0,
					   RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (!env.pool) {
		fprintf(stderr, "rte_pktmbuf_pool_create (%u mbufs): %s\n", mbufs,
			rte_strerror(rte_errno));
		return -1;
	}
	memset(&conf, 0, sizeof(conf));
	r = rte_eth_dev_configure(env.port, 1, 1, &conf);
	if (r == 0)
		r = rte_eth_rx_queue_setup(env.port, 0, BENCH_RX_DESC, (unsigned)socket, NULL,
					   env.pool);
	if (r == 0)
		r = rte_eth_tx_queue_setup(env.port, 0, BENCH_TX_DESC, (unsigned)socket, NULL);
	if (r == 0)
		r = rte_eth_dev_start(env.port);
	if (r != 0) {
		fprintf(stderr, "port %u (%s): configure/queue setup/start: %s\n", env.port,
			BENCH_VDEV, rte_strerror(-r));
		return -1;
	}
	env.port_started = true;
	env.ring = rte_ring_create("bench_nic_ring", o->capacity, socket,
				   RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (!env.ring) {
		fprintf(stderr, "rte_ring_create (%u): %s\n", o->capacity, rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

/* Free whatever mbufs a stopped rte_ring peer left in the ring. */
static void ring_drain(void)
{
	void *m[BENCH_TAKE];
	unsigned n;

	if (!env.ring)
		return;
	while ((n = rte_ring_sc_dequeue_burst(env.ring, m, BENCH_TAKE, NULL)) > 0)
		rte_pktmbuf_free_bulk((struct rte_mbuf **)m, n);
}

/* Exit path with a thread stuck in DPDK: only remove our runtime directory. */
static void eal_abandon(void)
{
	char dir[PATH_MAX];

	if (!env.eal_up)
		return;
	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	if (dir[0] && strstr(dir, "onering-bench-nic-"))
		bench_remove_dir(dir, true);
}

/*
 * Stop the port, free the pool and ring, clean up the EAL and remove the
 * runtime directory rte_eal_cleanup() leaves behind.
 */
static void eal_stop(void)
{
	char dir[PATH_MAX];

	if (!env.eal_up)
		return;
	if (env.port_started) {
		rte_eth_dev_stop(env.port);
		rte_eth_dev_close(env.port);
		env.port_started = false;
	}
	ring_drain();
	rte_ring_free(env.ring);
	env.ring = NULL;
	rte_mempool_free(env.pool);
	env.pool = NULL;
	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	env.eal_up = false;
	if (dir[0] && strstr(dir, "onering-bench-nic-"))
		bench_remove_dir(dir, true);
}

/* ---------------------------------------------------------------------- */
/* The broker child: started per onering measurement, stopped by pid.     */

struct broker_proc {
	pid_t pid;
	char dir[64];      /* its --socket-dir, holding its log too */
	char log[128];
	char prefix[64];   /* its EAL --file-prefix */
	char line[768];    /* the command line, for the header */
};

/*
 * SIGTERM, wait (5 s at most), SIGKILL if it does not go; remove its socket
 * directory and its EAL runtime directory.
 */
static void broker_stop(struct broker_proc *b)
{
	bench_broker_stop(&b->pid, b->dir, true);
	if (b->prefix[0] && env.runtime_base[0]) {
		char rt[PATH_MAX + sizeof(b->prefix) + 1];
		snprintf(rt, sizeof(rt), "%s/%s", env.runtime_base, b->prefix);
		struct stat st;
		if (stat(rt, &st) == 0)
			bench_remove_dir(rt, true);
		b->prefix[0] = '\0';
	}
}

/* If the broker exited, say how (once) and forget its pid. @return true if it did. */
static bool broker_check_exit(struct broker_proc *b)
{
	return b->pid <= 0 || bench_broker_reap(&b->pid, b->log);
}

/*
 * fork/exec oneringd [EAL] -- --foreground ..., wait (10 s at most) for its
 * ready byte on fd 3. Only the main thread of this program runs here (the
 * EAL's own threads sleep); the child only sets up fds and execs.
 */
static int broker_start(struct broker_proc *b, const struct bench_opts *o)
{
	struct bench_argv a = { .argc = 0 };
	const char *call;
	size_t at = 0;
	int e;

	memset(b, 0, sizeof(*b));
	b->pid = -1;
	snprintf(b->dir, sizeof(b->dir), "/tmp/onering-bench-nic-XXXXXX");
	if (!mkdtemp(b->dir)) {
		e = errno;
		fprintf(stderr, "mkdtemp %s: %s\n", b->dir, strerror(e));
		b->dir[0] = '\0';
		return -e;
	}
	snprintf(b->log, sizeof(b->log), "%s/oneringd.log", b->dir);
	snprintf(b->prefix, sizeof(b->prefix), "onering-bn-%ld", (long)getpid());

	bench_arg(&a, "%s", ONERINGD_PATH);
	bench_arg(&a, "--no-huge");
	bench_arg(&a, "--no-pci");
	bench_arg(&a, "--no-shconf");
	bench_arg(&a, "-m");
	bench_arg(&a, "512");
	bench_arg(&a, "--file-prefix");
	bench_arg(&a, "%s", b->prefix);
	bench_arg(&a, "--vdev");
	bench_arg(&a, "%s,size=%u,copy=%d", BENCH_VDEV, BENCH_PKT_SIZE, o->copy ? 1 : 0);
	bench_arg(&a, "--");
	bench_broker_args(&a, BENCH_BROKER_NAME, b->dir);
	bench_arg(&a, "--port");
	bench_arg(&a, "%s:group=%s,snaplen=%u", BENCH_VDEV, BENCH_GROUP, BENCH_SNAPLEN);
	bench_arg(&a, "--cores");
	bench_arg(&a, "%d", o->core_rx);
	bench_arg(&a, "--control-core");
	bench_arg(&a, "%d", o->core_rx);
	for (int i = 0; i < a.argc; i++)
		if (at < sizeof(b->line))
			at += (size_t)snprintf(b->line + at, sizeof(b->line) - at, "%s%s",
					       i ? " " : "", a.argv[i]);

	e = bench_broker_spawn(&b->pid, b->log, &a, &call);
	if (e == -EIO) {
		if (!interrupted) {
			fprintf(stderr, "oneringd did not become ready within 10 s: %s\n", b->line);
			broker_check_exit(b);
			bench_broker_dump_log(b->log);
		}
		broker_stop(b);
		return interrupted ? -EINTR : -EIO;
	}
	if (e < 0) {
		fprintf(stderr, "%s: %s\n", call, strerror(-e));
		broker_stop(b);
	}
	return e;
}

/*
 * The broker's counters of rx queue 0 of its only port (enum
 * onering_rxq_counter) and its poller's loop count. @return 0; -EIO no
 * reply or no such item.
 */
static int broker_rxq(int ctl, uint32_t *seq, uint64_t out[ONERING_RXQC_NR], uint64_t *loops)
{
	struct onering_msg m;
	bool found = false;

	onering_msg_init(&m, ONERING_MSG_STATS, ++*seq);
	if (onering_msg_send(ctl, &m, NULL, 0, 0) < 0)
		return -EIO;
	/* One item per object, then STATS_END: bounded by a message count. */
	for (unsigned i = 0; i < 100000; i++) {
		if (onering_msg_recv_timeout(ctl, &m, NULL, 0, NULL, 5000) != 0)
			return -EIO;
		if (m.type == ONERING_MSG_STATS_END)
			return found ? 0 : -EIO;
		if (m.type == ONERING_MSG_STATS_ITEM && m.u.stats_item.what == ONERING_STATS_RXQ &&
		    m.u.stats_item.id == 0) {
			memcpy(out, m.u.stats_item.counter, sizeof(uint64_t) * ONERING_RXQC_NR);
			found = true;
		}
		if (m.type == ONERING_MSG_STATS_ITEM &&
		    m.u.stats_item.what == ONERING_STATS_POLLER && m.u.stats_item.id == 0)
			*loops = m.u.stats_item.counter[ONERING_PC_LOOPS];
	}
	return -EIO;
}

/* ---------------------------------------------------------------------- */
/* One measurement: the peer's threads, their shared words.               */

enum {
	PHASE_SETUP = 0, /* threads get ready */
	PHASE_RUN = 1,   /* take packets */
	PHASE_STOP = 2,  /* leave the loop */
};

/* One thread's counters, alone on a cache line. */
struct side {
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) records; /* rx: received; consumer: taken */
	ONERING_ATOMIC(uint64_t) dropped;                          /* rx side of rte_ring: ring full */
};

struct run {
	enum peer peer;
	const struct bench_opts *o;
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(int) phase;
	ONERING_ATOMIC(int) ready;
	struct bench_failure fail; /* a thread failed, and why */
	struct side rx;   /* floor: its only thread; rte_ring: the rx thread */
	struct side cons; /* rte_ring and onering consumers */
	alignas(ONERING_CACHE_LINE) uint64_t sink; /* checksums, so the reads happen */
	/* onering */
	struct onering *att;
	struct onering_queue *q; /* the consumer's, closed by main after the join */
	struct broker_proc broker;
	int ctl;
	uint32_t seq;
	/* threads: [0] rx side (floor, rte_ring rx), [1] consumer */
	pthread_t th[2];
	bool started[2];
	clockid_t clk[2];
	bool have_clk[2];
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

static BENCH_ALWAYS_INLINE int phase_get(struct run *r)
{
	/* A0: synchronises with R0 (main's store of the phase). */
	return onering_atomic_load(&r->phase, onering_mo_acquire);
}

static void phase_set(struct run *r, int phase)
{
	/* R0: synchronises with A0 in the threads. */
	onering_atomic_store(&r->phase, phase, onering_mo_release);
}

static void thread_ready(struct run *r)
{
	/* R1: synchronises with main's A1 in run_one(). */
	onering_atomic_fetch_add(&r->ready, 1, onering_mo_release);
}

/* Wait (spinning) for main to start or stop the run. @return true to run. */
static bool wait_run(struct run *r)
{
	int ph;

	/* Bounded: main always moves on to RUN or STOP within BENCH_READY_NS. */
	while ((ph = phase_get(r)) == PHASE_SETUP)
		rte_pause();
	return ph == PHASE_RUN;
}

/* Pin and register with the EAL (an lcore id: mempool caches work). */
static int dpdk_thread_setup(struct run *r, int core, const char *what)
{
	int e = bench_pin_self(core);

	if (e < 0) {
		run_fail(r, "%s: cannot pin to CPU %d: %s", what, core, strerror(-e));
		return -1;
	}
	if (rte_thread_register() < 0) {
		run_fail(r, "%s: rte_thread_register: %s", what, rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

/* --- floor: rx_burst -> touch -> free, one thread ---------------------- */

static void *floor_main(void *arg)
{
	struct run *r = arg;
	struct rte_mbuf *m[BENCH_RX_BURST];
	uint64_t total = 0, sum = 0;
	uint16_t port = env.port;

	if (dpdk_thread_setup(r, r->o->core_rx, "floor thread") < 0) {
		thread_ready(r);
		return NULL;
	}
	thread_ready(r);
	if (wait_run(r)) {
		while (phase_get(r) == PHASE_RUN) {
			uint16_t n = rte_eth_rx_burst(port, 0, m, BENCH_RX_BURST);
			if (n == 0)
				continue;
			for (uint16_t i = 0; i < n; i++) {
				uint32_t len = m[i]->data_len < BENCH_SNAPLEN ? m[i]->data_len
									      : BENCH_SNAPLEN;
				sum += touch(rte_pktmbuf_mtod(m[i], const void *), len);
			}
			rte_pktmbuf_free_bulk(m, n);
			total += n;
			onering_atomic_store(&r->rx.records, total, onering_mo_relaxed);
		}
	}
	r->sink += sum;
	rte_thread_unregister();
	return NULL;
}

/* --- rte_ring: rx_burst -> SP enqueue | SC dequeue -> touch -> free ---- */

static void *ring_rx_main(void *arg)
{
	struct run *r = arg;
	struct rte_mbuf *m[BENCH_RX_BURST];
	uint64_t total = 0, dropped = 0;
	uint16_t port = env.port;
	struct rte_ring *ring = env.ring;

	if (dpdk_thread_setup(r, r->o->core_rx, "rte_ring rx thread") < 0) {
		thread_ready(r);
		return NULL;
	}
	thread_ready(r);
	if (wait_run(r)) {
		while (phase_get(r) == PHASE_RUN) {
			uint16_t n = rte_eth_rx_burst(port, 0, m, BENCH_RX_BURST);
			if (n == 0)
				continue;
			unsigned k = rte_ring_sp_enqueue_burst(ring, (void *const *)m, n, NULL);
			if (k < n) { /* ring full: drop, as the broker does */
				rte_pktmbuf_free_bulk(m + k, n - k);
				dropped += n - k;
				onering_atomic_store(&r->rx.dropped, dropped, onering_mo_relaxed);
			}
			total += n;
			onering_atomic_store(&r->rx.records, total, onering_mo_relaxed);
		}
	}
	rte_thread_unregister();
	return NULL;
}

static void *ring_cons_main(void *arg)
{
	struct run *r = arg;
	struct rte_mbuf *m[BENCH_TAKE];
	uint64_t total = 0, sum = 0;
	struct rte_ring *ring = env.ring;

	if (dpdk_thread_setup(r, r->o->core_cons, "rte_ring consumer thread") < 0) {
		thread_ready(r);
		return NULL;
	}
	thread_ready(r);
	if (wait_run(r)) {
		while (phase_get(r) == PHASE_RUN) {
			unsigned n = rte_ring_sc_dequeue_burst(ring, (void **)m, BENCH_TAKE, NULL);
			if (n == 0)
				continue;
			for (unsigned i = 0; i < n; i++) {
				uint32_t len = m[i]->data_len < BENCH_SNAPLEN ? m[i]->data_len
									      : BENCH_SNAPLEN;
				sum += touch(rte_pktmbuf_mtod(m[i], const void *), len);
			}
			rte_pktmbuf_free_bulk(m, n);
			total += n;
			onering_atomic_store(&r->cons.records, total, onering_mo_relaxed);
		}
	}
	r->sink += sum;
	rte_thread_unregister();
	return NULL;
}

/* --- onering: oneringd -> queue -> onering_poll -> touch --------------- */

static void *onering_cons_main(void *arg)
{
	struct run *r = arg;
	struct onering_event ev[BENCH_TAKE];
	struct onering_queue *q = NULL;
	uint64_t total = 0, sum = 0;
	int e = bench_pin_self(r->o->core_cons);

	if (e < 0) {
		run_fail(r, "onering consumer: cannot pin to CPU %d: %s", r->o->core_cons,
			 strerror(-e));
		thread_ready(r);
		return NULL;
	}
	/* Opened here: a queue's memory goes on the node of the thread that
	 * opens it, and it belongs to one thread. */
	struct onering_queue_options qo = {
		.capacity = r->o->capacity,
		.group = BENCH_GROUP,
		.packet_snap = BENCH_SNAPLEN,
	};
	e = onering_queue_open(r->att, &qo, &q);
	if (e < 0) {
		run_fail(r, "onering_queue_open(group %s, capacity %u, packet_snap %u): %s (%s)",
			 BENCH_GROUP, r->o->capacity, BENCH_SNAPLEN, onering_strerror(e),
			 onering_last_error(r->att));
		thread_ready(r);
		return NULL;
	}
	thread_ready(r);
	if (wait_run(r)) {
		while (phase_get(r) == PHASE_RUN) {
			int n = onering_poll(q, ev, BENCH_TAKE);
			if (n <= 0) {
				if (n < 0) {
					run_fail(r, "onering_poll: %s", onering_strerror(n));
					break;
				}
				continue;
			}
			for (int i = 0; i < n; i++) {
				uint32_t len = 0;
				const void *p = onering_event_packet(q, &ev[i], &len);
				if (!p || len != BENCH_SNAPLEN) {
					run_fail(r, "onering record %" PRIu64 ": kind %u, %s (len %u, "
						 "expected %u)", total + (uint64_t)i, ev[i].kind,
						 p ? "wrong length" : "no packet bytes", len,
						 BENCH_SNAPLEN);
					break;
				}
				sum += touch(p, len);
			}
			if (run_failed(r))
				break;
			total += (uint64_t)n;
			onering_atomic_store(&r->cons.records, total, onering_mo_relaxed);
		}
	}
	r->sink += sum;
	/* Closed by main once this thread is joined: the close waits for the
	 * broker's reply, which is no part of the consumer's loop. */
	r->q = q;
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* Running one peer.                                                       */

struct snapshot {
	uint64_t wall_ns;
	uint64_t rx, dropped, cons;
	uint64_t cpu_ns[2];
	uint64_t broker_cpu_ns;
	uint64_t rxq[ONERING_RXQC_NR];
	uint64_t loops; /* the broker's poll loops */
	uint64_t rxq_ns; /* when the broker's reply came */
	bool have_rxq;
	struct cpu_sample cpu;
};

struct result {
	double wall_s;
	double rx_wall_s; /* span of received/dropped (onering: between stats replies) */
	uint64_t records;  /* the consumer took */
	uint64_t received; /* the rx side took from the device */
	uint64_t dropped;
	uint64_t cpu_rx_ns;   /* floor / rte_ring rx thread / every oneringd thread */
	uint64_t cpu_cons_ns; /* the consumer thread (rte_ring, onering) */
	uint64_t loops;       /* onering: the broker's poll loops */
	double others_pct;    /* the rest of the machine, % of all CPUs; -1 unknown */
	double steal_pct;
	double probe_rtt_ns;  /* two-core peers: the probe just before; -1 none */
};

static void snapshot_take(struct run *r, struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->wall_ns = bench_now_ns();
	s->rx = onering_atomic_load(&r->rx.records, onering_mo_relaxed);
	s->dropped = onering_atomic_load(&r->rx.dropped, onering_mo_relaxed);
	s->cons = onering_atomic_load(&r->cons.records, onering_mo_relaxed);
	for (int i = 0; i < 2; i++)
		if (r->have_clk[i])
			s->cpu_ns[i] = bench_clock_ns(r->clk[i]);
	if (r->peer == PEER_ONERING) {
		s->broker_cpu_ns = bench_proc_cpu_ns(r->broker.pid, true);
		s->have_rxq = broker_rxq(r->ctl, &r->seq, s->rxq, &s->loops) == 0;
		s->rxq_ns = bench_now_ns();
	}
	cpu_sample_take(&s->cpu);
}

/* Join a peer thread; one that does not stop within BENCH_JOIN_S is fatal. */
static int join_bounded(struct run *r, int i)
{
	struct timespec ts;

	if (!r->started[i])
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += BENCH_JOIN_S;
	int e = pthread_timedjoin_np(r->th[i], NULL, &ts);
	if (e) {
		fprintf(stderr, "%s: a thread did not stop within %d s (%s): giving up\n",
			peer_names[r->peer], BENCH_JOIN_S, strerror(e));
		return -1;
	}
	r->started[i] = false;
	return 0;
}

static void run_teardown(struct run *r)
{
	if (r->ctl >= 0)
		close(r->ctl);
	r->ctl = -1;
	if (r->q) {
		uint64_t t0 = bench_now_ns();
		onering_queue_close(r->q);
		uint64_t took = bench_now_ns() - t0;
		if (took > 1000000000ull)
			fprintf(stderr, "warning: onering_queue_close took %.1f s (oneringd answers "
				"a close after an RCU grace period of its pollers)\n",
				(double)took / 1e9);
		r->q = NULL;
	}
	onering_detach(r->att);
	r->att = NULL;
	broker_stop(&r->broker);
}

/*
 * Run one peer: set up, warm up, measure a window, stop. @return 0; 1 a
 * failure in the measurement; 2 a setup failure; 130 interrupted; -1 a
 * thread that would not stop (the caller must exit at once).
 */
static int run_one(const struct bench_opts *o, enum peer peer, struct result *res,
		   struct broker_proc *last_broker)
{
	static struct run run; /* aligned, and big enough to keep off the stack */
	struct run *r = &run;
	void *(*fn[2])(void *) = { NULL, NULL };
	struct snapshot a, b;
	int status = 0, want = 0;

	memset(r, 0, sizeof(*r));
	r->peer = peer;
	r->o = o;
	r->ctl = -1;
	r->broker.pid = -1;
	memset(res, 0, sizeof(*res));
	/* Before anything of the peer runs (the broker's poller spins from its
	 * start): both cores idle. */
	res->probe_rtt_ns = peer == PEER_FLOOR ? -1 : probe_rtt_ns(o);
	switch (peer) {
	case PEER_FLOOR:
		fn[0] = floor_main;
		break;
	case PEER_RTE_RING:
		fn[0] = ring_rx_main;
		fn[1] = ring_cons_main;
		break;
	default:
		fn[1] = onering_cons_main;
		break;
	}

	if (interrupted)
		return 130;
	if (peer == PEER_ONERING) {
		char path[PATH_MAX], err[512];
		int e = broker_start(&r->broker, o);
		if (e < 0)
			return e == -EINTR ? 130 : 2;
		*last_broker = r->broker;
		struct onering_attach_options ao = { .name = BENCH_BROKER_NAME,
						     .socket_dir = r->broker.dir };
		e = onering_attach_opts(&ao, &r->att);
		if (e < 0) {
			fprintf(stderr, "onering_attach (%s in %s): %s\n", BENCH_BROKER_NAME,
				r->broker.dir, onering_strerror(e));
			run_teardown(r);
			return 2;
		}
		e = onering_socket_path(BENCH_BROKER_NAME, r->broker.dir, path, sizeof(path));
		if (e == 0)
			e = onering_proto_connect(path, BENCH_BROKER_NAME, -1, &r->ctl, NULL, err,
						  sizeof(err));
		else
			snprintf(err, sizeof(err), "socket path: %s", strerror(-e));
		if (e < 0) {
			fprintf(stderr, "stats connection to oneringd: %s\n", err);
			run_teardown(r);
			return 2;
		}
	}

	for (int i = 0; i < 2; i++) {
		if (!fn[i])
			continue;
		int e = pthread_create(&r->th[i], NULL, fn[i], r);
		if (e) {
			fprintf(stderr, "pthread_create: %s\n", strerror(e));
			phase_set(r, PHASE_STOP);
			status = 2;
			goto out;
		}
		r->started[i] = true;
		want++;
		r->have_clk[i] = pthread_getcpuclockid(r->th[i], &r->clk[i]) == 0;
	}
	/* A1: pairs with R1 in each thread; bounded. */
	uint64_t deadline = bench_now_ns() + BENCH_READY_NS;
	while (onering_atomic_load(&r->ready, onering_mo_acquire) < want && !interrupted &&
	       bench_now_ns() < deadline)
		sleep_ns(1000000);
	if (interrupted || run_failed(r) ||
	    onering_atomic_load(&r->ready, onering_mo_acquire) < want) {
		phase_set(r, PHASE_STOP);
		if (!interrupted && !run_failed(r))
			run_fail(r, "threads not set up within %llu s",
				 (unsigned long long)(BENCH_READY_NS / 1000000000ull));
		status = interrupted ? 130 : 2;
		goto out;
	}

	phase_set(r, PHASE_RUN);
	sleep_ns(o->warmup_ns);
	snapshot_take(r, &a);
	sleep_ns(o->window_ns);
	snapshot_take(r, &b);
	phase_set(r, PHASE_STOP);
	if (interrupted)
		status = 130;
	else if (peer == PEER_ONERING && (!a.have_rxq || !b.have_rxq))
		run_fail(r, "no rx queue counters from oneringd (ONERING_MSG_STATS)");

out:
	for (int i = 0; i < 2; i++)
		if (join_bounded(r, i) < 0) {
			/* Stuck threads: stop the broker (which also frees one stuck
			 * on it), free nothing else under them. */
			broker_stop(&r->broker);
			return -1;
		}
	if (peer == PEER_RTE_RING)
		ring_drain();
	if (peer == PEER_ONERING && broker_check_exit(&r->broker) && !interrupted)
		run_fail(r, "oneringd exited during the measurement");
	run_teardown(r);
	if (status)
		return status;
	if (run_failed(r)) {
		fprintf(stderr, "%s: %s\n", peer_names[peer], r->fail.err);
		return 1;
	}

	res->wall_s = (double)(b.wall_ns - a.wall_ns) / 1e9;
	res->rx_wall_s = peer == PEER_ONERING ? (double)(b.rxq_ns - a.rxq_ns) / 1e9 : res->wall_s;
	switch (peer) {
	case PEER_FLOOR:
		res->records = b.rx - a.rx;
		res->received = res->records;
		res->cpu_rx_ns = b.cpu_ns[0] - a.cpu_ns[0];
		break;
	case PEER_RTE_RING:
		res->records = b.cons - a.cons;
		res->received = b.rx - a.rx;
		res->dropped = b.dropped - a.dropped;
		res->cpu_rx_ns = b.cpu_ns[0] - a.cpu_ns[0];
		res->cpu_cons_ns = b.cpu_ns[1] - a.cpu_ns[1];
		break;
	default:
		res->records = b.cons - a.cons;
		res->received = b.rxq[ONERING_RXQC_RECEIVED] - a.rxq[ONERING_RXQC_RECEIVED];
		res->dropped = b.rxq[ONERING_RXQC_DROPPED] - a.rxq[ONERING_RXQC_DROPPED];
		res->cpu_rx_ns = b.broker_cpu_ns - a.broker_cpu_ns;
		res->cpu_cons_ns = b.cpu_ns[1] - a.cpu_ns[1];
		res->loops = b.loops - a.loops;
		break;
	}
	cpu_noise(&a.cpu, &b.cpu, res->wall_s, res->cpu_rx_ns + res->cpu_cons_ns,
		  &res->others_pct, &res->steal_pct);
	if (res->records == 0) {
		fprintf(stderr, "%s: the consumer took no record in %.2f s (the rx side took %" PRIu64
			" packets and dropped %" PRIu64 "; other processes took %.0f%% of all CPUs)\n",
			peer_names[peer], res->wall_s, res->received, res->dropped, res->others_pct);
		return 1;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Figures.                                                                */

enum fig {
	FIG_RATE,          /* records/s taken by the consumer */
	FIG_RECEIVED,      /* packets/s taken from the device */
	FIG_DROP_PCT,
	FIG_CPU_S,         /* CPU seconds in the window */
	FIG_CPU_RX_S,
	FIG_CPU_CONS_S,
	FIG_PER_CPU_S,     /* records per CPU second */
	FIG_RATIO_RATE,    /* / the floor of the same round */
	FIG_RATIO_PER_CPU,
	FIG_PER_LOOP,      /* onering: packets per broker poll loop */
	FIG_OTHERS_PCT,    /* the rest of the machine, % of all CPUs */
	FIG_STEAL_PCT,
	FIG_PROBE_RTT,     /* cross-core round trip just before, ns */
	FIG_NR,
};

static double figs[BENCH_MAX_ROUNDS][PEER_NR][FIG_NR];

static void record_figs(double *f, const struct result *r)
{
	double cpu_s = (double)(r->cpu_rx_ns + r->cpu_cons_ns) / 1e9;

	f[FIG_RATE] = (double)r->records / r->wall_s;
	f[FIG_RECEIVED] = (double)r->received / r->rx_wall_s;
	f[FIG_DROP_PCT] = r->received ? 100.0 * (double)r->dropped / (double)r->received : 0;
	f[FIG_CPU_S] = cpu_s;
	f[FIG_CPU_RX_S] = (double)r->cpu_rx_ns / 1e9;
	f[FIG_CPU_CONS_S] = (double)r->cpu_cons_ns / 1e9;
	f[FIG_PER_CPU_S] = cpu_s > 0 ? (double)r->records / cpu_s : -1;
	f[FIG_RATIO_RATE] = -1;
	f[FIG_RATIO_PER_CPU] = -1;
	f[FIG_PER_LOOP] = r->loops ? (double)r->received / (double)r->loops : -1;
	f[FIG_OTHERS_PCT] = r->others_pct;
	f[FIG_STEAL_PCT] = r->steal_pct;
	f[FIG_PROBE_RTT] = r->probe_rtt_ns;
}

/* How much the rest of the machine took during a measurement, percent. */
static double noise_of(const double *f)
{
	return (f[FIG_OTHERS_PCT] > 0 ? f[FIG_OTHERS_PCT] : 0) +
	       (f[FIG_STEAL_PCT] > 0 ? f[FIG_STEAL_PCT] : 0);
}

static double fig_median(unsigned rounds, enum peer p, enum fig f)
{
	double v[BENCH_MAX_ROUNDS];

	for (unsigned i = 0; i < rounds; i++)
		v[i] = figs[i][p][f];
	return bench_median(v, rounds);
}

static void print_progress(enum peer p, const double *f)
{
	printf("  %-9s %7.2f M rec/s", peer_names[p], f[FIG_RATE] / 1e6);
	if (p != PEER_FLOOR)
		printf("  received %6.2f M/s  drop %5.1f %%", f[FIG_RECEIVED] / 1e6, f[FIG_DROP_PCT]);
	printf("  CPU %.2f s", f[FIG_CPU_S]);
	if (p != PEER_FLOOR)
		printf(" (%s %.2f + consumer %.2f)", p == PEER_ONERING ? "oneringd" : "rx",
		       f[FIG_CPU_RX_S], f[FIG_CPU_CONS_S]);
	printf("  %6.2f M rec/CPU-s", f[FIG_PER_CPU_S] / 1e6);
	if (f[FIG_PER_LOOP] > 0)
		printf("  %.1f pkts/poll loop", f[FIG_PER_LOOP]);
	if (f[FIG_PROBE_RTT] > 0)
		printf("  [line rtt %.0f ns]", f[FIG_PROBE_RTT]);
	if (f[FIG_OTHERS_PCT] >= 5 || f[FIG_STEAL_PCT] >= 1)
		printf("  [noise: others %.0f%%, steal %.0f%% of all CPUs]", f[FIG_OTHERS_PCT],
		       f[FIG_STEAL_PCT]);
	printf("\n");
	fflush(stdout);
}

/* "%.3f" of v, or "-" when missing (v < 0). */
static const char *fmt_ratio(char *buf, size_t size, double v)
{
	if (v < 0)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.3f", v);
	return buf;
}

static void print_summary(const struct bench_opts *o)
{
	unsigned n = o->rounds;
	char b1[32], b2[32];

	printf("\nSummary: medians over %u round%s; ratios are medians of the per-round ratios "
	       "to the floor\n", n, n == 1 ? "" : "s");
	printf("%-9s %11s %11s %7s %7s %14s %9s %11s %9s\n", "peer", "records/s", "received/s",
	       "drop %", "CPU-s", "records/CPU-s", "x floor", "x floor", "line rtt");
	printf("%-9s %11s %11s %7s %7s %14s %9s %11s %9s\n", "", "", "", "", "", "", "(rate)",
	       "(per CPU-s)", "(ns)");
	for (int p = 0; p < PEER_NR; p++) {
		enum peer e = (enum peer)p;
		if (!o->run_peer[p])
			continue;
		double rtt = fig_median(n, e, FIG_PROBE_RTT);
		char rb[32];
		if (rtt > 0)
			snprintf(rb, sizeof(rb), "%.0f", rtt);
		else
			snprintf(rb, sizeof(rb), "-");
		printf("%-9s %9.2f M %9.2f M %7.1f %7.2f %12.2f M %9s %11s %9s\n", peer_names[p],
		       fig_median(n, e, FIG_RATE) / 1e6, fig_median(n, e, FIG_RECEIVED) / 1e6,
		       fig_median(n, e, FIG_DROP_PCT), fig_median(n, e, FIG_CPU_S),
		       fig_median(n, e, FIG_PER_CPU_S) / 1e6,
		       fmt_ratio(b1, sizeof(b1), fig_median(n, e, FIG_RATIO_RATE)),
		       fmt_ratio(b2, sizeof(b2), fig_median(n, e, FIG_RATIO_PER_CPU)), rb);
	}
	printf("  records/s: what the consumer took; received/s: taken from the device (onering:\n"
	       "  the broker's rx queue counters); drop %%: dropped / received (ring full);\n"
	       "  CPU-s: CPU seconds of the peer's threads in the %.2f s window (onering: the\n"
	       "  consumer + every oneringd thread); line rtt: one cache line to the consumer\n"
	       "  core and back, measured just before the peer ran.\n",
	       (double)o->window_ns / 1e9);
	if (o->run_peer[PEER_ONERING])
		printf("  oneringd's poller took %.1f packets per poll loop (one rx burst of <= %u "
		       "each).\n", fig_median(n, PEER_ONERING, FIG_PER_LOOP), BENCH_RX_BURST);
	if (!o->run_peer[PEER_FLOOR] || !o->run_peer[PEER_ONERING]) {
		printf("\nTarget: not judged (run floor and onering for the ratios)\n");
		return;
	}

	double xr = fig_median(n, PEER_ONERING, FIG_RATIO_RATE);
	double xc = fig_median(n, PEER_ONERING, FIG_RATIO_PER_CPU);
	printf("\nTarget (performance contract): onering >= %.1fx the in-process floor, %u-byte "
	       "packets, snaplen %u\n", BENCH_TARGET, BENCH_PKT_SIZE, BENCH_SNAPLEN);
	printf("  records/s      %sx  %s\n", fmt_ratio(b1, sizeof(b1), xr),
	       xr >= BENCH_TARGET ? "met" : "missed");
	printf("  records/CPU-s  %sx  %s\n", fmt_ratio(b2, sizeof(b2), xc),
	       xc >= BENCH_TARGET ? "met" : "missed");
	if (o->run_peer[PEER_RTE_RING])
		printf("  (for reference, the rte_ring hand-off: %sx rate, %sx per CPU-s)\n",
		       fmt_ratio(b1, sizeof(b1), fig_median(n, PEER_RTE_RING, FIG_RATIO_RATE)),
		       fmt_ratio(b2, sizeof(b2), fig_median(n, PEER_RTE_RING, FIG_RATIO_PER_CPU)));
}

/* ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct sigaction sa;
	struct broker_proc shown;
	int status = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (parse_opts(argc, argv, &o) < 0)
		return 2;
	if (sched_getaffinity(0, sizeof(start_affinity), &start_affinity) < 0) {
		fprintf(stderr, "sched_getaffinity: %s\n", strerror(errno));
		return 2;
	}
	if (o.core_rx >= ncpu || o.core_cons >= ncpu || !CPU_ISSET(o.core_rx, &start_affinity) ||
	    !CPU_ISSET(o.core_cons, &start_affinity)) {
		fprintf(stderr, "--cores %d,%d: this program may use CPUs 0..%ld as allowed by its "
			"affinity mask (taskset); pick two of those\n", o.core_rx, o.core_cons,
			ncpu - 1);
		return 2;
	}
	if (access(ONERINGD_PATH, X_OK) != 0) {
		fprintf(stderr, "oneringd not found at %s: build it first (ninja -C build)\n",
			ONERINGD_PATH);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (eal_start(&o) < 0)
		return 2;
	if (port_start(&o) < 0) {
		eal_stop();
		return 2;
	}

	int nr_peers = 0;
	for (int p = 0; p < PEER_NR; p++)
		nr_peers += o.run_peer[p];
	printf("onering-bench-nic: %s rx -> consumer, %u-byte packets (copy=%d), snaplen %u, "
	       "rx burst %u, consumer takes <= %u\n",
	       BENCH_VDEV, BENCH_PKT_SIZE, o.copy ? 1 : 0, BENCH_SNAPLEN, BENCH_RX_BURST,
	       BENCH_TAKE);
	printf("%s, %ld CPUs online; %u round%s x %d peers, %.2f s window each (+%.2f s warm-up), "
	       "interleaved\n", rte_version(), ncpu, o.rounds, o.rounds == 1 ? "" : "s", nr_peers,
	       (double)o.window_ns / 1e9, (double)o.warmup_ns / 1e9);
	printf("placement: floor on CPU %d; rte_ring rx on CPU %d, consumer on CPU %d; onering "
	       "poller + control thread on CPU %d, consumer on CPU %d\n",
	       o.core_rx, o.core_rx, o.core_cons, o.core_rx, o.core_cons);
	printf("rings: rte_ring SP/SC %u slots (%u usable); onering queue capacity %u, packet "
	       "slot %u bytes; mbuf pool %u (cache %u)\n",
	       o.capacity, o.capacity - 1, o.capacity, BENCH_SNAPLEN, o.capacity + BENCH_POOL_SPARE,
	       BENCH_POOL_CACHE);
	printf("in-process EAL: %s\n", env.eal_line);
	fflush(stdout);

	bool shown_line = false;
	unsigned redone = 0, noisy = 0;
	for (unsigned i = 0; i < BENCH_MAX_ROUNDS; i++)
		for (int p = 0; p < PEER_NR; p++)
			for (int f = 0; f < FIG_NR; f++)
				figs[i][p][f] = -1;
	for (unsigned round = 0; round < o.rounds && status == 0; round++) {
		printf("round %u/%u\n", round + 1, o.rounds);
		for (int p = 0; p < PEER_NR && status == 0; p++) {
			if (!o.run_peer[p])
				continue;
			/* A measurement the rest of the machine disturbed is redone
			 * (bounded); the last one counts either way. */
			for (unsigned attempt = 0;; attempt++) {
				struct result res;
				memset(&shown, 0, sizeof(shown));
				int rc = run_one(&o, (enum peer)p, &res, &shown);
				if (rc < 0) {
					/* A thread is stuck: nothing DPDK owns can be freed
					 * under it (the broker is stopped already). */
					eal_abandon();
					fprintf(stderr, "aborting: a peer thread would not stop\n");
					_exit(1);
				}
				if (rc) {
					status = rc;
					break;
				}
				if (p == PEER_ONERING && !shown_line) {
					printf("  oneringd: %s\n", shown.line);
					shown_line = true;
				}
				record_figs(figs[round][p], &res);
				print_progress((enum peer)p, figs[round][p]);
				if (attempt >= o.retries || noise_of(figs[round][p]) <= o.noise_max_pct)
					break;
				printf("  (disturbed: %.0f%% > --noise-max %.0f%%, again)\n",
				       noise_of(figs[round][p]), o.noise_max_pct);
				redone++;
			}
			if (noise_of(figs[round][p]) > o.noise_max_pct)
				noisy++;
		}
		if (status == 0 && o.run_peer[PEER_FLOOR])
			for (int p = 0; p < PEER_NR; p++) {
				const double *fl = figs[round][PEER_FLOOR];
				double *f = figs[round][p];
				if (!o.run_peer[p])
					continue;
				f[FIG_RATIO_RATE] = f[FIG_RATE] / fl[FIG_RATE];
				if (f[FIG_PER_CPU_S] > 0 && fl[FIG_PER_CPU_S] > 0)
					f[FIG_RATIO_PER_CPU] = f[FIG_PER_CPU_S] / fl[FIG_PER_CPU_S];
			}
	}
	if (status == 0) {
		print_summary(&o);
		if (redone || noisy)
			printf("\nNoise: %u measurement%s redone because other processes or steal "
			       "took > %.0f%% of all CPUs; %u kept although disturbed\n", redone,
			       redone == 1 ? "" : "s", o.noise_max_pct, noisy);
	}
	eal_stop();
	if (status == 130)
		fprintf(stderr, "interrupted: the broker was stopped and its directories removed\n");
	else if (status)
		fprintf(stderr, "onering-bench-nic: failed (exit %d)\n", status);
	return status;
}
