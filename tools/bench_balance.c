/* SPDX-License-Identifier: MIT */
/*
 * onering-bench-balance: load balancing of one event stream over C consumer
 * threads, onering's group policies against DPDK eventdev (event_sw and
 * event_dsw, atomic and parallel scheduling), every peer in the same run,
 * rounds interleaved.
 *
 * The stream
 *   N events (--events), F flows (--flows). Event i belongs to flow i mod F
 *   and is that flow's event number seq = i div F, so (flow, seq) names the
 *   event. One producer thread hands the events over as fast as the peer
 *   takes them: when the peer refuses (eventdev: a short enqueue; onering:
 *   -EAGAIN) it retries at once (after a sched_yield(), see --idle); nothing
 *   paces it. C consumer threads (--consumers, default 1,2,4) take them.
 *
 * Peers
 *   onering-POLICY  this program starts oneringd with --group
 *                   bench:policy=POLICY (rr, least, sticky, lifo, local) for
 *                   each measurement; each consumer thread opens its own
 *                   queue in the group "bench" from its own thread; the
 *                   producer opens a private queue (--sq-capacity submission
 *                   slots, default 1024) and posts bursts of 32 with
 *                   onering_post_burst(): flow = the flow, 24
 *                   bytes of data = stamp, seq and i, cookie = i. Consumer
 *                   queues have --capacity slots (default 1024). Consumers
 *                   call onering_wait(min 1, max 32): it spins 50 us, then
 *                   sleeps on the queue's futex (--consume poll: an
 *                   onering_poll() loop instead);
 *   sw-atomic, sw-parallel
 *                   DPDK event_sw: one event queue (RTE_SCHED_TYPE_ATOMIC or
 *                   _PARALLEL, flow_id = the flow), C worker ports linked to
 *                   it and one producer port, enqueue depth and dequeue depth
 *                   32, in-flight limit --inflight (default 4096, clamped to
 *                   the device's maximum). Its scheduler is a service: a
 *                   thread of this program runs
 *                   rte_service_run_iter_on_app_lcore() in a loop (the
 *                   runstate-mapped check is switched off; no service lcore
 *                   is used). The producer uses rte_event_enqueue_new_burst()
 *                   (bursts of 32), workers rte_event_dequeue_burst() (32);
 *                   the previous burst is released implicitly by the next
 *                   dequeue (the default port configuration);
 *   dsw-atomic, dsw-parallel
 *                   DPDK event_dsw, configured the same way. It has no
 *                   scheduler thread: the ports schedule among themselves.
 *                   It is not maintenance-free: once the producer has enqueued
 *                   everything it flushes its port (rte_event_maintain with
 *                   RTE_EVENT_DEV_MAINT_OP_FLUSH) and keeps maintaining it
 *                   every 50 us until the run ends.
 *   Each eventdev measurement creates a fresh device (rte_eal_hotplug_add
 *   on the vdev bus: "event_swK" / "event_dswK"), configures it, closes and
 *   removes it afterwards, so no run inherits another's state. event_sw in
 *   22.11 does not unregister its service when removed; this program does.
 *   A device slot reused after a dsw device keeps dsw's maintain hook (the
 *   slot's function pointers are not cleared when a device is released, and
 *   event_sw sets no maintain hook of its own): rte_event_maintain() on an
 *   event_sw port then jumps into dsw and crashes, so it is only called on
 *   dsw ports.
 *
 * Threads and placement
 *   Every thread is a plain pthread. The threads that touch eventdev call
 *   rte_thread_register() first (rte_service_run_iter_on_app_lcore() must run
 *   on an EAL thread, and dsw's rte_rand() wants a per-lcore state) and
 *   rte_thread_unregister() at the end. The EAL is initialised once with
 *   --no-huge --no-pci --no-shconf --no-telemetry -m 512 --file-prefix
 *   onering-bb-<pid> -l <sched-cpu>; the main thread then takes back the
 *   affinity it started with. The central scheduler of each peer -- the
 *   oneringd poller and control thread (--cores/--control-core), the
 *   event_sw service thread -- is pinned to --sched-cpu (default: the last
 *   CPU this program may use), as a deployment gives the scheduler a core
 *   of its own. Producer and consumers may run on any CPU of --app-cpus
 *   (default: every CPU this program may use but the scheduler's; all of
 *   them on a 1-CPU machine) and the kernel places them. event_dsw has no
 *   scheduler thread, so it runs on --app-cpus only.
 *   With fewer CPUs than threads (2 vCPUs: producer and consumers share
 *   CPU 0) the kernel time-shares the threads. A thread that spins while
 *   the thread it waits for is not running wastes its whole time slice, so
 *   every busy loop of every peer -- eventdev workers on an empty dequeue,
 *   producers refused by a full peer, onering consumers with --consume
 *   poll -- calls sched_yield() before trying again (--idle yield, the
 *   default). With --idle spin they pause (the PAUSE instruction) instead;
 *   on 2 vCPUs that lets event_sw atomic run for minutes. onering_wait()
 *   sleeps on its own after its 50 us spin.
 *
 * Metrics (per peer and C; the summary takes medians over rounds)
 *   events/s        N / (time of the last event taken - time the producer
 *                   started), wall clock;
 *   events/CPU-s    N / CPU time used by everything that took part: the
 *                   producer, the consumers and the event_sw service thread
 *                   (each thread's CLOCK_THREAD_CPUTIME_ID from its start to
 *                   the end of the run), and for onering the whole oneringd
 *                   process (the sum of /proc/PID/task/TID/schedstat, ns,
 *                   over its threads; /proc/PID/stat utime+stime if schedstat
 *                   is missing), read before the start and by the consumer
 *                   that takes the last event. This is "per core used": on a
 *                   machine with fewer cores than threads, events/s alone
 *                   says more about the kernel's time slicing than about the
 *                   peer;
 *   latency         the producer reads CLOCK_MONOTONIC once per 32 events
 *                   (one eventdev burst; one onering_post_burst) and stamps
 *                   it into them just before handing them over, again after
 *                   each refusal (time spent refused by a full peer is not
 *                   counted); the consumer subtracts it from the time its
 *                   dequeue/poll returned. Taken under full load, it is
 *                   mostly the time an event waits behind the others in
 *                   flight (eventdev: --inflight; onering: the queues).
 *                   Histogram with 64 linear steps per power of two
 *                   (within 1.6 %); p50 and p99;
 *   others          CPU that other processes took during the measurement,
 *                   % of all CPUs (/proc/stat minus this process and the
 *                   broker; shown for runs of 50 ticks or more). The
 *                   benchmark shares the machine: --retry-noisy K re-runs a
 *                   measurement up to K times while others (plus steal) are
 *                   above --noise-max percent, and keeps the quietest.
 *   Ratios (per round, median over rounds): onering's best policy (by
 *   events per CPU-second) against the best dsw and the best sw mode, and
 *   onering-sticky against the atomic modes (the like-for-like ordered
 *   case). Targets from the issue: >= 1.5x event_dsw, >= 4x event_sw.
 *
 * Correctness, checked in every measurement
 *   - every event taken exactly once: each consumer keeps a bit per event
 *     (i = seq * F + flow); a bit already set is a duplicate, a bit set by
 *     two consumers is a duplicate, a bit set by none is a lost event;
 *     records left over after the run (onering: drained from the queues;
 *     eventdev: flushed at rte_event_dev_stop) are duplicates too;
 *   - for the ordered peers (sw-atomic, dsw-atomic, onering-sticky): per
 *     flow, events are processed in sequence order across all consumers
 *     (a shared per-flow "next seq" checked and advanced by the consumer
 *     right after the dequeue/poll that returned the event);
 *   - for every peer, the order of one flow within one consumer's queue is
 *     counted (reported; an error only for the ordered peers).
 *   A measurement that does not finish within --timeout (default 60 s) or
 *   sees no event for 5 s after the producer finished fails as lost, and
 *   ends the program. A wrong delivery is reported at once, marked WRONG in
 *   the summary and left out of the ratios; the other peers still run.
 *
 * Exit status: 0 when every peer delivered every event exactly once (and in
 * order where promised) -- a missed target is a figure, not a failure; 1 on
 * a correctness failure (lost, duplicated, malformed or reordered events);
 * 2 on a usage or setup error; 130 when interrupted (the broker is stopped
 * and its directory removed on every path).
 *
 * Ordering contract of the words this program shares between its threads:
 *   ready     each worker thread adds 1 (R0 release) once set up; main's A0
 *             acquire load sees them all before it opens the gate.
 *   go        written by main only (R1 release) after reading the broker's
 *             CPU time; the threads' A1 acquire loads pair with it.
 *   stop      0 running, 1 all events taken, 2 failed. Set once with a CAS
 *             (the consumer that takes the last event, or run_fail()):
 *             R2 release (end_ns and the broker's CPU end are written
 *             before it); the hot loops read it relaxed (they only need to
 *             see it eventually), main reads it acquire (A2). Everything a
 *             thread writes for main (counters, CPU time, histogram) is
 *             read after pthread_join, which orders it.
 *   received  total events taken, fetch_add relaxed by the consumers after
 *             each batch: only the crossing of N matters, and a RMW sees
 *             every earlier one.
 *   prod_done producer's store (relaxed); main's stall detector reads it.
 *   gnext[f]  the ordered check's per-flow next sequence: relaxed loads and
 *             stores. It synchronises nothing; under an atomic scheduler the
 *             hand-over of a flow from one consumer to the next goes through
 *             the peer's own release/acquire (ring indices), which orders
 *             these accesses too; if a peer let two consumers hold one flow,
 *             the check counts the disorder it then sees.
 */
/* rte_event_maintain() is still experimental in DPDK 22.11 (dsw needs it). */
#define ALLOW_EXPERIMENTAL_API 1

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
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

#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eventdev.h>
#include <rte_lcore.h>
#include <rte_pause.h>
#include <rte_service.h>
#include <rte_service_component.h>
#include <rte_version.h>

#include "client/onering.h"
#include "shm/atomic.h"
#include "tools/bench_common.h"

#ifndef ONERINGD_PATH
#error "ONERINGD_PATH must name the oneringd binary to start"
#endif

#define BENCH_BURST 32u              /* events per enqueue/dequeue/poll call */
#define BENCH_MAX_CONSUMERS 16u
#define BENCH_MAX_CSETS 8u           /* entries of --consumers */
#define BENCH_MAX_ROUNDS 20u
#define BENCH_MAX_EVENTS 200000000ull
#define BENCH_MAX_FLOWS 65536u
#define BENCH_STAMP_BITS 40          /* eventdev: ns since the run's base */
#define BENCH_STAMP_MASK ((1ull << BENCH_STAMP_BITS) - 1)
#define BENCH_SEQ_LIMIT (1ull << (64 - BENCH_STAMP_BITS)) /* seq per flow */
#define BENCH_GROUP "bench"
#define BENCH_WAIT_NS 1000000ll      /* onering_wait timeout: see stop that often */
#define BENCH_STALL_NS 5000000000ull /* nothing taken this long after the last post: lost */
#define BENCH_DRAIN_NS 2000000ll     /* leftover check after a run (onering) */
#define BENCH_MAINTAIN_NS 50000ull   /* dsw producer port, after its last enqueue */

/* ---------------------------------------------------------------------- */
/* Peers and options.                                                      */

enum peer_kind {
	KIND_ONERING,
	KIND_SW,
	KIND_DSW,
};

struct peer_def {
	const char *name;
	enum peer_kind kind;
	const char *policy;  /* onering: the group's policy */
	uint8_t sched_type;  /* eventdev: RTE_SCHED_TYPE_* */
	bool ordered;        /* per-flow order promised: checked, violations fail */
};

enum {
	PEER_ONERING_RR,
	PEER_ONERING_LEAST,
	PEER_ONERING_STICKY,
	PEER_ONERING_LIFO,
	PEER_ONERING_LOCAL,
	PEER_SW_ATOMIC,
	PEER_SW_PARALLEL,
	PEER_DSW_ATOMIC,
	PEER_DSW_PARALLEL,
	PEER_NR,
};

static const struct peer_def peer_defs[PEER_NR] = {
	[PEER_ONERING_RR] = { "onering-rr", KIND_ONERING, "rr", 0, false },
	[PEER_ONERING_LEAST] = { "onering-least", KIND_ONERING, "least", 0, false },
	[PEER_ONERING_STICKY] = { "onering-sticky", KIND_ONERING, "sticky", 0, true },
	[PEER_ONERING_LIFO] = { "onering-lifo", KIND_ONERING, "lifo", 0, false },
	[PEER_ONERING_LOCAL] = { "onering-local", KIND_ONERING, "local", 0, false },
	[PEER_SW_ATOMIC] = { "sw-atomic", KIND_SW, NULL, RTE_SCHED_TYPE_ATOMIC, true },
	[PEER_SW_PARALLEL] = { "sw-parallel", KIND_SW, NULL, RTE_SCHED_TYPE_PARALLEL, false },
	[PEER_DSW_ATOMIC] = { "dsw-atomic", KIND_DSW, NULL, RTE_SCHED_TYPE_ATOMIC, true },
	[PEER_DSW_PARALLEL] = { "dsw-parallel", KIND_DSW, NULL, RTE_SCHED_TYPE_PARALLEL,
				false },
};

static const char *const kind_names[] = {
	[KIND_ONERING] = "onering",
	[KIND_SW] = "sw",
	[KIND_DSW] = "dsw",
};

struct bench_opts {
	uint64_t events;
	uint32_t flows;
	unsigned consumers[BENCH_MAX_CSETS];
	unsigned nr_consumers;
	unsigned rounds;
	bool peers[PEER_NR];
	int sched_cpu;
	cpu_set_t app_cpus;
	char app_cpus_text[64];
	uint32_t capacity;    /* onering: slots per consumer queue */
	uint32_t sq_capacity; /* onering: the producer's submission ring slots */
	uint32_t inflight;  /* eventdev: nb_events_limit (clamped to the device's maximum) */
	bool consume_poll;  /* onering consumers busy-poll instead of onering_wait */
	bool idle_yield;    /* busy loops sched_yield() when idle or refused (else pause) */
	uint64_t timeout_ns;
	unsigned retry_noisy; /* re-run a measurement the machine disturbed */
	double noise_max_pct; /* ... when others took more than this */
	bool quick;
	const char *csv_path;
	const char *broker_args[8]; /* extra oneringd options */
	unsigned nr_broker_args;
};

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s [options]\n"
		"\n"
		"Load balancing of one event stream over C consumer threads: onering's group\n"
		"policies (oneringd + libonering, onering_post to a group) against DPDK\n"
		"eventdev event_sw and event_dsw, atomic and parallel scheduling, in one run.\n"
		"One producer posts N events over F flows as fast as each peer takes them;\n"
		"C consumers take them. Reports events/s, events per CPU-second of every\n"
		"thread and process that took part, p50/p99 latency, and the ratios of\n"
		"onering's best policy to the eventdev peers. Every event is checked to be\n"
		"taken exactly once, and in per-flow order by the ordered peers.\n"
		"\n"
		"Options:\n"
		"  --events N        events per measurement (default 2000000)\n"
		"  --flows F         flows (default 1024, at most %u)\n"
		"  --consumers LIST  consumer counts, e.g. 1,2,4 (the default; at most %u)\n"
		"  --rounds R        interleaved rounds (default 3, at most %u)\n"
		"  --peers LIST      peers to run (default all): onering, sw, dsw (families)\n"
		"                    or names: onering-rr, onering-least, onering-sticky,\n"
		"                    onering-lifo, onering-local, sw-atomic, sw-parallel,\n"
		"                    dsw-atomic, dsw-parallel\n"
		"  --sched-cpu CPU   the oneringd poller and control thread and the event_sw\n"
		"                    service thread are pinned here (default: the last CPU)\n"
		"  --app-cpus LIST   CPUs the producer and consumers may run on, e.g. 0 or\n"
		"                    0-3 (default: all but --sched-cpu); not pinned within\n"
		"  --idle MODE       what a busy loop does when idle or refused: yield\n"
		"                    (sched_yield, default) or spin (PAUSE); see the header\n"
		"  --capacity N      onering queue slots per consumer, a power of two\n"
		"                    (default 1024)\n"
		"  --sq-capacity N   onering producer submission slots (default 1024)\n"
		"  --inflight N      eventdev in-flight limit, nb_events_limit and the\n"
		"                    ports' new_event_threshold (default 4096)\n"
		"  --consume MODE    onering consumers: wait (onering_wait, default) or poll\n"
		"                    (onering_poll loop, as the eventdev workers do)\n"
		"  --timeout S       limit per measurement, seconds (default 60)\n"
		"  --retry-noisy K   re-run a measurement up to K times (default 0) while\n"
		"                    other processes took more than --noise-max percent of\n"
		"                    all CPUs during it; the quietest run is kept\n"
		"  --noise-max PCT   threshold for --retry-noisy (default 10)\n"
		"  --broker-arg ARG  pass ARG to oneringd too (repeatable, up to 8)\n"
		"  --quick           smoke run: 100000 events, 1 round\n"
		"  --csv FILE        also write every measurement as CSV to FILE\n"
		"  --help            print this and exit\n"
		"\n"
		"Exit status: 0 when every peer delivered every event exactly once (targets\n"
		"missed are figures, not failures), 1 on a correctness failure (lost,\n"
		"duplicated, malformed or reordered events; the other peers still run),\n"
		"2 on a usage or setup error, 130 when interrupted.\n",
		prog, BENCH_MAX_FLOWS, BENCH_MAX_CONSUMERS, BENCH_MAX_ROUNDS);
}

static int parse_consumers(const char *s, struct bench_opts *o)
{
	char buf[128];
	char *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	o->nr_consumers = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		uint64_t v;
		if (o->nr_consumers == BENCH_MAX_CSETS ||
		    bench_parse_u64(t, 1, BENCH_MAX_CONSUMERS, &v) < 0)
			return -EINVAL;
		o->consumers[o->nr_consumers++] = (unsigned)v;
	}
	return o->nr_consumers ? 0 : -EINVAL;
}

static int parse_peers(const char *s, struct bench_opts *o)
{
	char buf[256];
	char *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	memset(o->peers, 0, sizeof(o->peers));
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool found = false;
		for (int p = 0; p < PEER_NR; p++) {
			if (strcmp(t, peer_defs[p].name) == 0 ||
			    strcmp(t, kind_names[peer_defs[p].kind]) == 0 ||
			    (strcmp(t, "eventdev") == 0 && peer_defs[p].kind != KIND_ONERING)) {
				o->peers[p] = true;
				found = true;
			}
		}
		if (!found) {
			fprintf(stderr, "--peers: unknown peer '%s'\n", t);
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_cpu_list(const char *s, cpu_set_t *set)
{
	char buf[128];
	char *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	CPU_ZERO(set);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		uint64_t a, b;
		char *dash = strchr(t, '-');
		if (dash) {
			*dash = '\0';
			if (bench_parse_u64(t, 0, CPU_SETSIZE - 1, &a) < 0 ||
			    bench_parse_u64(dash + 1, a, CPU_SETSIZE - 1, &b) < 0)
				return -EINVAL;
		} else {
			if (bench_parse_u64(t, 0, CPU_SETSIZE - 1, &a) < 0)
				return -EINVAL;
			b = a;
		}
		for (uint64_t c = a; c <= b; c++)
			CPU_SET((int)c, set);
	}
	return CPU_COUNT(set) ? 0 : -EINVAL;
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	enum {
		OPT_EVENTS = 256,
		OPT_FLOWS,
		OPT_CONSUMERS,
		OPT_ROUNDS,
		OPT_PEERS,
		OPT_SCHED_CPU,
		OPT_APP_CPUS,
		OPT_CAPACITY,
		OPT_SQ_CAPACITY,
		OPT_INFLIGHT,
		OPT_CONSUME,
		OPT_IDLE,
		OPT_TIMEOUT,
		OPT_RETRY_NOISY,
		OPT_NOISE_MAX,
		OPT_BROKER_ARG,
		OPT_QUICK,
		OPT_CSV,
		OPT_HELP,
	};
	static const struct option longopts[] = {
		{ "events", required_argument, NULL, OPT_EVENTS },
		{ "flows", required_argument, NULL, OPT_FLOWS },
		{ "consumers", required_argument, NULL, OPT_CONSUMERS },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "peers", required_argument, NULL, OPT_PEERS },
		{ "sched-cpu", required_argument, NULL, OPT_SCHED_CPU },
		{ "app-cpus", required_argument, NULL, OPT_APP_CPUS },
		{ "capacity", required_argument, NULL, OPT_CAPACITY },
		{ "sq-capacity", required_argument, NULL, OPT_SQ_CAPACITY },
		{ "inflight", required_argument, NULL, OPT_INFLIGHT },
		{ "consume", required_argument, NULL, OPT_CONSUME },
		{ "idle", required_argument, NULL, OPT_IDLE },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "retry-noisy", required_argument, NULL, OPT_RETRY_NOISY },
		{ "noise-max", required_argument, NULL, OPT_NOISE_MAX },
		{ "broker-arg", required_argument, NULL, OPT_BROKER_ARG },
		{ "quick", no_argument, NULL, OPT_QUICK },
		{ "csv", required_argument, NULL, OPT_CSV },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool have_events = false, have_rounds = false, have_app_cpus = false;
	int last_cpu = -1;
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->events = 2000000;
	o->flows = 1024;
	o->consumers[0] = 1;
	o->consumers[1] = 2;
	o->consumers[2] = 4;
	o->nr_consumers = 3;
	o->rounds = 3;
	for (int p = 0; p < PEER_NR; p++)
		o->peers[p] = true;
	o->capacity = 1024;
	o->sq_capacity = 1024;
	o->inflight = 4096;
	o->timeout_ns = 60ull * 1000000000ull;
	o->noise_max_pct = 10;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &start_affinity))
			last_cpu = i;
	o->sched_cpu = last_cpu;
	o->idle_yield = true;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_EVENTS:
			if (bench_parse_u64(optarg, 1, BENCH_MAX_EVENTS, &o->events) < 0) {
				fprintf(stderr, "--events: 1..%llu\n", BENCH_MAX_EVENTS);
				return -EINVAL;
			}
			have_events = true;
			break;
		case OPT_FLOWS:
			if (bench_parse_u64(optarg, 1, BENCH_MAX_FLOWS, &v) < 0) {
				fprintf(stderr, "--flows: 1..%u\n", BENCH_MAX_FLOWS);
				return -EINVAL;
			}
			o->flows = (uint32_t)v;
			break;
		case OPT_CONSUMERS:
			if (parse_consumers(optarg, o) < 0) {
				fprintf(stderr,
					"--consumers: a list of 1..%u, at most %u entries\n",
					BENCH_MAX_CONSUMERS, BENCH_MAX_CSETS);
				return -EINVAL;
			}
			break;
		case OPT_ROUNDS:
			if (bench_parse_u64(optarg, 1, BENCH_MAX_ROUNDS, &v) < 0) {
				fprintf(stderr, "--rounds: 1..%u\n", BENCH_MAX_ROUNDS);
				return -EINVAL;
			}
			o->rounds = (unsigned)v;
			have_rounds = true;
			break;
		case OPT_PEERS:
			if (parse_peers(optarg, o) < 0)
				return -EINVAL;
			break;
		case OPT_SCHED_CPU:
			if (bench_parse_u64(optarg, 0, CPU_SETSIZE - 1, &v) < 0 ||
			    !CPU_ISSET((int)v, &start_affinity)) {
				fprintf(stderr, "--sched-cpu %s: not a CPU this program may use\n",
					optarg);
				return -EINVAL;
			}
			o->sched_cpu = (int)v;
			break;
		case OPT_APP_CPUS: {
			cpu_set_t and;
			if (parse_cpu_list(optarg, &o->app_cpus) < 0) {
				fprintf(stderr, "--app-cpus %s: expected a list like 0 or 0,2-3\n",
					optarg);
				return -EINVAL;
			}
			CPU_AND(&and, &o->app_cpus, &start_affinity);
			if (!CPU_EQUAL(&and, &o->app_cpus)) {
				fprintf(stderr, "--app-cpus %s: includes CPUs this program may not "
						"use\n", optarg);
				return -EINVAL;
			}
			snprintf(o->app_cpus_text, sizeof(o->app_cpus_text), "%s", optarg);
			have_app_cpus = true;
			break;
		}
		case OPT_CAPACITY:
			if (bench_parse_u64(optarg, 2, 1u << 20, &v) < 0 || (v & (v - 1))) {
				fprintf(stderr, "--capacity: a power of two, 2..1048576\n");
				return -EINVAL;
			}
			o->capacity = (uint32_t)v;
			break;
		case OPT_SQ_CAPACITY:
			if (bench_parse_u64(optarg, 2, 1u << 20, &v) < 0 || (v & (v - 1))) {
				fprintf(stderr, "--sq-capacity: a power of two, 2..1048576\n");
				return -EINVAL;
			}
			o->sq_capacity = (uint32_t)v;
			break;
		case OPT_INFLIGHT:
			if (bench_parse_u64(optarg, BENCH_BURST, 1u << 20, &v) < 0) {
				fprintf(stderr, "--inflight: %u..1048576\n", BENCH_BURST);
				return -EINVAL;
			}
			o->inflight = (uint32_t)v;
			break;
		case OPT_CONSUME:
			if (strcmp(optarg, "wait") == 0) {
				o->consume_poll = false;
			} else if (strcmp(optarg, "poll") == 0) {
				o->consume_poll = true;
			} else {
				fprintf(stderr, "--consume: wait or poll\n");
				return -EINVAL;
			}
			break;
		case OPT_IDLE:
			if (strcmp(optarg, "spin") == 0) {
				o->idle_yield = false;
			} else if (strcmp(optarg, "yield") == 0) {
				o->idle_yield = true;
			} else {
				fprintf(stderr, "--idle: spin or yield\n");
				return -EINVAL;
			}
			break;
		case OPT_TIMEOUT:
			if (bench_parse_u64(optarg, 1, 600, &v) < 0) {
				fprintf(stderr, "--timeout: 1..600 seconds\n");
				return -EINVAL;
			}
			o->timeout_ns = v * 1000000000ull;
			break;
		case OPT_RETRY_NOISY:
			if (bench_parse_u64(optarg, 0, 10, &v) < 0) {
				fprintf(stderr, "--retry-noisy: 0..10\n");
				return -EINVAL;
			}
			o->retry_noisy = (unsigned)v;
			break;
		case OPT_NOISE_MAX:
			if (bench_parse_u64(optarg, 1, 100, &v) < 0) {
				fprintf(stderr, "--noise-max: 1..100 (percent)\n");
				return -EINVAL;
			}
			o->noise_max_pct = (double)v;
			break;
		case OPT_BROKER_ARG:
			if (o->nr_broker_args ==
			    sizeof(o->broker_args) / sizeof(o->broker_args[0])) {
				fprintf(stderr, "--broker-arg: at most 8\n");
				return -EINVAL;
			}
			o->broker_args[o->nr_broker_args++] = optarg;
			break;
		case OPT_QUICK:
			o->quick = true;
			break;
		case OPT_CSV:
			o->csv_path = optarg;
			break;
		case OPT_HELP:
			usage(stdout, argv[0]);
			exit(0);
		default:
			usage(stderr, argv[0]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "unexpected argument: %s\n", argv[optind]);
		usage(stderr, argv[0]);
		return -EINVAL;
	}
	if (!have_app_cpus) {
		/* Default: every CPU we may use except the scheduler's. */
		o->app_cpus = start_affinity;
		if (CPU_COUNT(&o->app_cpus) > 1) {
			CPU_CLR(o->sched_cpu, &o->app_cpus);
			snprintf(o->app_cpus_text, sizeof(o->app_cpus_text),
				 "all allowed but %d", o->sched_cpu);
		} else {
			snprintf(o->app_cpus_text, sizeof(o->app_cpus_text), "all allowed");
		}
	}
	if (o->quick) {
		if (!have_events)
			o->events = 100000;
		if (!have_rounds)
			o->rounds = 1;
	}
	if ((o->events + o->flows - 1) / o->flows >= BENCH_SEQ_LIMIT) {
		fprintf(stderr, "--events %" PRIu64 " over --flows %u: at most %llu events per "
				"flow\n", o->events, o->flows, BENCH_SEQ_LIMIT - 1);
		return -EINVAL;
	}
	bool any = false;
	for (int p = 0; p < PEER_NR; p++)
		any |= o->peers[p];
	if (!any) {
		fprintf(stderr, "--peers: nothing to run\n");
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Small helpers: the latency histogram (clocks: bench_common.h).         */

/*
 * Latency histogram: values below 64 ns exactly, then 64 linear steps per
 * power of two (relative step 1/64), up to 2^40 ns; larger values land in
 * the last bucket.
 */
#define HIST_SUB_BITS 6u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40u
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

static BENCH_ALWAYS_INLINE unsigned hist_idx(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	if (v >= (1ull << HIST_MAX_BITS))
		return HIST_BUCKETS - 1;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
	unsigned sub = (unsigned)(v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
	return (e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

/* The middle of bucket idx, ns. */
static double hist_value(unsigned idx)
{
	if (idx < HIST_SUB)
		return idx;
	unsigned g = idx / HIST_SUB, sub = idx % HIST_SUB;
	double low = (double)((uint64_t)(HIST_SUB + sub) << (g - 1));
	double width = (double)(1ull << (g - 1));
	return low + width / 2;
}

/* Nearest-rank percentile of a histogram; -1 when empty. */
static double hist_percentile(const uint64_t *h, double q)
{
	uint64_t total = 0, rank, cum = 0;

	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		total += h[i];
	if (total == 0)
		return -1;
	rank = (uint64_t)(q * (double)total + 0.999999);
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		cum += h[i];
		if (cum >= rank)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* ---------------------------------------------------------------------- */
/* The EAL: initialised once, for the eventdev peers.                      */

static bool eal_up;

static int eal_start(const struct bench_opts *o)
{
	static char args[20][64];
	char *argv[21];
	int argc = 0;

#define EAL_ARG(...) snprintf(args[argc], sizeof(args[argc]), __VA_ARGS__), argc++
	EAL_ARG("onering-bench-balance");
	EAL_ARG("--no-huge");
	EAL_ARG("--no-pci");
	EAL_ARG("--no-shconf");
	EAL_ARG("--no-telemetry");
	EAL_ARG("-m");
	EAL_ARG("512");
	EAL_ARG("--file-prefix");
	EAL_ARG("onering-bb-%ld", (long)getpid());
	EAL_ARG("--log-level");
	EAL_ARG("error");
	EAL_ARG("-l");
	EAL_ARG("%d", o->sched_cpu);
#undef EAL_ARG
	for (int i = 0; i < argc; i++)
		argv[i] = args[i];
	argv[argc] = NULL;
	int rc = rte_eal_init(argc, argv);
	if (rc < 0) {
		fprintf(stderr,
			"rte_eal_init failed: %s (needs CPU %d and a writable /var/run/dpdk or "
			"$XDG_RUNTIME_DIR; --peers onering skips DPDK)\n",
			rte_strerror(rte_errno), o->sched_cpu);
		return -1;
	}
	eal_up = true;
	/* rte_eal_init pinned this thread to the main lcore: undo that. */
	bench_pin_self_to(&start_affinity);
	return 0;
}

/*
 * rte_eal_cleanup() leaves the runtime dir of our unique --file-prefix
 * behind: remove it.
 */
static void eal_stop(void)
{
	char dir[PATH_MAX];

	if (!eal_up)
		return;
	eal_up = false;
	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	if (!dir[0] || !strstr(dir, "onering-bb-"))
		return;
	bench_remove_dir(dir, true);
}

/* ---------------------------------------------------------------------- */
/* The broker child: started per measurement, stopped by pid.              */

struct broker_proc {
	pid_t pid;
	char name[32];
	char dir[64];
	char log[128];
};

/* SIGTERM, wait (bounded), SIGKILL if it does not go; remove its directory. */
static void broker_stop(struct broker_proc *b)
{
	bench_broker_stop(&b->pid, b->dir, false);
}

/*
 * fork/exec oneringd --foreground with the group "bench" on policy, wait
 * (10 s at most) for its ready byte on fd 3. Only the main thread runs
 * here (the measurement threads do not exist yet).
 */
static int broker_start(struct broker_proc *b, const struct bench_opts *o, const char *policy)
{
	static unsigned instance;
	struct bench_argv a = { .argc = 0 };
	const char *call;
	int e;

	memset(b, 0, sizeof(*b));
	b->pid = -1;
	snprintf(b->name, sizeof(b->name), "bb%ld-%u", (long)getpid(), instance++);
	snprintf(b->dir, sizeof(b->dir), "/tmp/onering-bb-XXXXXX");
	if (!mkdtemp(b->dir)) {
		e = -errno;
		fprintf(stderr, "mkdtemp %s: %s\n", b->dir, strerror(-e));
		b->dir[0] = '\0';
		return e;
	}
	snprintf(b->log, sizeof(b->log), "%s/oneringd.log", b->dir);

	bench_arg(&a, "%s", ONERINGD_PATH);
	bench_broker_args(&a, b->name, b->dir);
	bench_arg(&a, "--cores");
	bench_arg(&a, "%d", o->sched_cpu);
	bench_arg(&a, "--control-core");
	bench_arg(&a, "%d", o->sched_cpu);
	bench_arg(&a, "--group");
	bench_arg(&a, "%s:policy=%s", BENCH_GROUP, policy);
	for (unsigned i = 0; i < o->nr_broker_args; i++)
		bench_arg(&a, "%s", o->broker_args[i]);

	e = bench_broker_spawn(&b->pid, b->log, &a, &call);
	if (e == -EIO) {
		fprintf(stderr, "oneringd (%s --group %s:policy=%s) did not become ready\n",
			ONERINGD_PATH, BENCH_GROUP, policy);
		bench_broker_dump_log(b->log);
		broker_stop(b);
	}
	return e;
}

/* ---------------------------------------------------------------------- */
/* What else ran on the machine during a measurement.                      */

struct cpu_sample {
	bool ok;
	uint64_t wall_ns;
	uint64_t busy;   /* all CPUs: user+nice+system+irq+softirq, ticks */
	uint64_t steal;
	uint64_t ours;   /* this process and the broker: utime+stime, ticks */
};

static void cpu_sample_take(struct cpu_sample *c, pid_t broker)
{
	unsigned long long v[8] = { 0 };
	uint64_t self = 0, other = 0;
	FILE *f = fopen("/proc/stat", "r");

	memset(c, 0, sizeof(*c));
	c->wall_ns = bench_now_ns();
	if (!f)
		return;
	int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
			 &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (got != 8 || !bench_proc_ticks(getpid(), &self))
		return;
	if (broker > 0 && !bench_proc_ticks(broker, &other))
		return;
	c->busy = v[0] + v[1] + v[2] + v[5] + v[6];
	c->steal = v[7];
	c->ours = self + other;
	c->ok = true;
}

/* Percent of all CPUs that other processes (or, steal, the host) took. */
static double cpu_others_pct(const struct cpu_sample *a, const struct cpu_sample *b, bool steal)
{
	double hz = (double)sysconf(_SC_CLK_TCK);
	double cpus = (double)sysconf(_SC_NPROCESSORS_ONLN);
	double span = (double)(b->wall_ns - a->wall_ns) / 1e9 * hz * cpus;

	/* /proc/stat counts in ticks: below 50 of them the figure means little. */
	if (!a->ok || !b->ok || span < 50)
		return -1;
	double t = steal ? (double)(b->steal - a->steal)
			 : (double)(b->busy - a->busy) - (double)(b->ours - a->ours);
	return t < 0 ? 0 : 100.0 * t / span;
}

/* ---------------------------------------------------------------------- */
/* One measurement: shared state, the consumers' per-event check.          */

struct consumer {
	struct run *r;
	unsigned idx;
	pthread_t thr;
	bool started;
	uint8_t port;              /* eventdev worker port */
	struct onering_queue *q;   /* onering queue in the group */
	uint64_t *seen;            /* one bit per event index */
	uint32_t *qnext;           /* per flow: 1 + the last seq this queue took */
	/* results, read by main after pthread_join */
	uint64_t count;
	uint64_t dups;
	uint64_t bad;
	uint64_t qorder;
	uint64_t gorder;
	uint64_t extra;
	uint64_t last_ns;
	uint64_t cpu_ns;
	uint32_t hist[HIST_BUCKETS];
};

struct run {
	const struct bench_opts *o;
	const struct peer_def *peer;
	unsigned nc;
	uint64_t n;
	uint32_t flows;
	uint64_t seq_end; /* no flow has an event with seq >= this */
	uint64_t base_ns; /* eventdev stamps are ns since this */

	/* eventdev */
	char dev_name[32];
	bool have_vdev;
	int dev_id;
	bool dev_configured;
	bool dev_started;
	bool have_service;
	uint32_t service_id;
	uint8_t prod_port;
	uint64_t leftover;            /* events flushed at rte_event_dev_stop */

	/* onering */
	struct broker_proc broker;
	struct onering *att;
	uint32_t gid;
	uint64_t broker_cpu_start_ns;

	/* threads */
	pthread_t thr_prod, thr_sched;
	bool started_prod, started_sched;
	unsigned nr_threads;
	struct consumer *cons[BENCH_MAX_CONSUMERS];
	ONERING_ATOMIC(uint32_t) *gnext; /* ordered peers: per flow, the next seq */

	/* written by the producer, read after join */
	uint64_t start_ns;
	uint64_t prod_cpu_ns;
	uint64_t prod_retries;
	/* written by the service thread, read after join */
	uint64_t sched_cpu_ns;
	/* written by the consumer that takes the last event before R2 */
	uint64_t end_ns;
	uint64_t broker_cpu_end_ns;

	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) received;
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(int) stop;
	ONERING_ATOMIC(int) go;
	ONERING_ATOMIC(unsigned) ready;
	ONERING_ATOMIC(int) prod_done;
	ONERING_ATOMIC(int) failed;
	char err[256];
	bool incomplete; /* the failure: events not all taken in time (main only) */
};

/*
 * The first failure wins: its message is kept and every thread stops.
 * Returns whether this was the first.
 */
static bool run_fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool run_fail(struct run *r, const char *fmt, ...)
{
	int expected = 0;
	va_list ap;

	if (!onering_atomic_cas(&r->failed, &expected, 1, onering_mo_acq_rel,
				onering_mo_relaxed))
		return false;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	/* R2 (failure), unless the run already ended well. */
	expected = 0;
	onering_atomic_cas(&r->stop, &expected, 2, onering_mo_release, onering_mo_relaxed);
	return true;
}

static bool run_failed(struct run *r)
{
	return onering_atomic_load(&r->failed, onering_mo_acquire) != 0;
}

static BENCH_ALWAYS_INLINE bool stopped(struct run *r)
{
	return onering_atomic_load(&r->stop, onering_mo_relaxed) != 0;
}

/*
 * A busy loop found nothing to do (empty dequeue/poll) or was refused (full
 * peer): give the CPU away if other threads wait for it (--idle yield), or
 * just pause.
 */
static BENCH_ALWAYS_INLINE void idle_pause(const struct run *r)
{
	if (r->o->idle_yield)
		sched_yield();
	else
		onering_cpu_relax();
}

/* Each thread: announce it is set up (R0), wait for the gate (A1). */
static void gate_wait(struct run *r)
{
	onering_atomic_fetch_add(&r->ready, 1u, onering_mo_release);
	while (!onering_atomic_load(&r->go, onering_mo_acquire))
		bench_sleep_ns(20000);
}

/* Check and account one event taken by consumer c. */
static BENCH_ALWAYS_INLINE void take(struct consumer *c, const struct run *r, uint64_t flow,
				     uint64_t seq, uint64_t stamp_ns, uint64_t now)
{
	if (ONERING_UNLIKELY(flow >= r->flows || seq >= r->seq_end)) {
		c->bad++;
		return;
	}
	uint64_t idx = seq * r->flows + flow;
	if (ONERING_UNLIKELY(idx >= r->n)) {
		c->bad++;
		return;
	}
	uint64_t bit = 1ull << (idx & 63);
	uint64_t *w = &c->seen[idx >> 6];
	if (ONERING_UNLIKELY(*w & bit)) {
		c->dups++;
		return;
	}
	*w |= bit;
	if (ONERING_UNLIKELY(seq + 1 <= c->qnext[flow]))
		c->qorder++;
	c->qnext[flow] = (uint32_t)(seq + 1);
	if (r->gnext) {
		/* relaxed: a check, not a synchronisation (see the contract) */
		uint32_t g = onering_atomic_load(&r->gnext[flow], onering_mo_relaxed);
		if (ONERING_UNLIKELY(g != (uint32_t)seq))
			c->gorder++;
		onering_atomic_store(&r->gnext[flow], (uint32_t)(seq + 1), onering_mo_relaxed);
	}
	c->hist[hist_idx(now > stamp_ns ? now - stamp_ns : 0)]++;
}

/* After a batch of n: count it; the consumer that crosses N ends the run. */
static BENCH_ALWAYS_INLINE void account(struct consumer *c, struct run *r, unsigned n,
					uint64_t now)
{
	c->count += n;
	c->last_ns = now;
	uint64_t total =
		onering_atomic_fetch_add(&r->received, (uint64_t)n, onering_mo_relaxed) + n;
	if (ONERING_UNLIKELY(total >= r->n && total - n < r->n)) {
		int expected = 0;
		r->end_ns = now;
		if (r->broker.pid > 0)
			r->broker_cpu_end_ns = bench_proc_cpu_ns(r->broker.pid, true);
		/* R2: end_ns and the broker's CPU are written before it. */
		onering_atomic_cas(&r->stop, &expected, 1, onering_mo_release, onering_mo_relaxed);
	}
}

/* ---------------------------------------------------------------------- */
/* Eventdev peers: event_sw and event_dsw.                                  */

static void evdev_stop_flush(uint8_t dev_id, struct rte_event ev, void *arg)
{
	struct run *r = arg;

	(void)dev_id;
	(void)ev;
	r->leftover++;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static int evdev_setup(struct run *r)
{
	static unsigned seq;
	const bool sw = r->peer->kind == KIND_SW;
	struct rte_event_dev_info info;
	struct rte_event_dev_config dc;
	struct rte_event_queue_conf qc;
	int rc;

	snprintf(r->dev_name, sizeof(r->dev_name), "%s%u", sw ? "event_sw" : "event_dsw", seq++);
	rc = rte_eal_hotplug_add("vdev", r->dev_name, "");
	if (rc < 0) {
		fprintf(stderr,
			"rte_eal_hotplug_add(vdev, %s): %s (is DPDK's librte_event_%s in its "
			"driver directory?)\n",
			r->dev_name, strerror(-rc), sw ? "sw" : "dsw");
		return -1;
	}
	r->have_vdev = true;
	r->dev_id = rte_event_dev_get_dev_id(r->dev_name);
	if (r->dev_id < 0) {
		fprintf(stderr, "rte_event_dev_get_dev_id(%s): %s\n", r->dev_name,
			strerror(-r->dev_id));
		return -1;
	}
	const uint8_t dev = (uint8_t)r->dev_id;
	rc = rte_event_dev_info_get(dev, &info);
	if (rc < 0) {
		fprintf(stderr, "rte_event_dev_info_get(%s): %s\n", r->dev_name, strerror(-rc));
		return -1;
	}
	if (r->nc + 1 > info.max_event_ports) {
		fprintf(stderr, "%s has %u ports at most; %u consumers need %u\n", r->dev_name,
			info.max_event_ports, r->nc, r->nc + 1);
		return -1;
	}

	memset(&dc, 0, sizeof(dc));
	dc.nb_event_queues = 1;
	dc.nb_event_ports = (uint8_t)(r->nc + 1);
	uint32_t limit = r->o->inflight;
	if (info.max_num_events >= 0)
		limit = min_u32(limit, (uint32_t)info.max_num_events);
	dc.nb_events_limit = (int32_t)limit;
	dc.nb_event_queue_flows = min_u32(r->flows, info.max_event_queue_flows);
	dc.nb_event_port_dequeue_depth = min_u32(BENCH_BURST, info.max_event_port_dequeue_depth);
	dc.nb_event_port_enqueue_depth = min_u32(BENCH_BURST, info.max_event_port_enqueue_depth);
	dc.dequeue_timeout_ns = info.min_dequeue_timeout_ns;
	rc = rte_event_dev_configure(dev, &dc);
	if (rc < 0) {
		fprintf(stderr, "rte_event_dev_configure(%s: 1 queue, %u ports, %d events, %u "
				"flows): %s\n",
			r->dev_name, dc.nb_event_ports, dc.nb_events_limit, dc.nb_event_queue_flows,
			strerror(-rc));
		return -1;
	}
	r->dev_configured = true;

	rc = rte_event_queue_default_conf_get(dev, 0, &qc);
	if (rc < 0) {
		fprintf(stderr, "rte_event_queue_default_conf_get(%s): %s\n", r->dev_name,
			strerror(-rc));
		return -1;
	}
	qc.event_queue_cfg = 0;
	qc.schedule_type = r->peer->sched_type;
	qc.nb_atomic_flows = dc.nb_event_queue_flows;
	qc.nb_atomic_order_sequences = dc.nb_event_queue_flows;
	qc.priority = RTE_EVENT_DEV_PRIORITY_NORMAL;
	rc = rte_event_queue_setup(dev, 0, &qc);
	if (rc < 0) {
		fprintf(stderr, "rte_event_queue_setup(%s, %s): %s\n", r->dev_name,
			r->peer->name, strerror(-rc));
		return -1;
	}
	for (unsigned p = 0; p <= r->nc; p++) {
		struct rte_event_port_conf pc;
		rc = rte_event_port_default_conf_get(dev, (uint8_t)p, &pc);
		if (rc < 0) {
			fprintf(stderr, "rte_event_port_default_conf_get(%s, %u): %s\n",
				r->dev_name, p, strerror(-rc));
			return -1;
		}
		pc.new_event_threshold = dc.nb_events_limit;
		pc.dequeue_depth = (uint16_t)dc.nb_event_port_dequeue_depth;
		pc.enqueue_depth = (uint16_t)dc.nb_event_port_enqueue_depth;
		pc.event_port_cfg = 0; /* implicit release on the next dequeue */
		rc = rte_event_port_setup(dev, (uint8_t)p, &pc);
		if (rc < 0) {
			fprintf(stderr, "rte_event_port_setup(%s, port %u): %s\n", r->dev_name, p,
				strerror(-rc));
			return -1;
		}
	}
	for (unsigned p = 0; p < r->nc; p++) {
		uint8_t queue = 0;
		rc = rte_event_port_link(dev, (uint8_t)p, &queue, NULL, 1);
		if (rc != 1) {
			fprintf(stderr, "rte_event_port_link(%s, port %u -> queue 0): %s\n",
				r->dev_name, p, rte_strerror(rte_errno));
			return -1;
		}
		r->cons[p]->port = (uint8_t)p;
	}
	r->prod_port = (uint8_t)r->nc;
	if (sw) {
		rc = rte_event_dev_service_id_get(dev, &r->service_id);
		if (rc < 0) {
			fprintf(stderr, "rte_event_dev_service_id_get(%s): %s\n", r->dev_name,
				strerror(-rc));
			return -1;
		}
		r->have_service = true;
		/* This program runs the scheduler itself, on its service thread. */
		if (rte_service_runstate_set(r->service_id, 1) < 0 ||
		    rte_service_set_runstate_mapped_check(r->service_id, 0) < 0) {
			fprintf(stderr, "%s: cannot enable service %u\n", r->dev_name,
				r->service_id);
			return -1;
		}
	}
	rc = rte_event_dev_stop_flush_callback_register(dev, evdev_stop_flush, r);
	if (rc < 0) {
		fprintf(stderr, "rte_event_dev_stop_flush_callback_register(%s): %s\n",
			r->dev_name, strerror(-rc));
		return -1;
	}
	rc = rte_event_dev_start(dev);
	if (rc < 0) {
		fprintf(stderr, "rte_event_dev_start(%s): %s\n", r->dev_name, strerror(-rc));
		return -1;
	}
	r->dev_started = true;
	return 0;
}

/* Stop (counting events still inside), close and remove the device. */
static void evdev_teardown(struct run *r)
{
	const uint8_t dev = (uint8_t)r->dev_id;

	if (r->dev_started) {
		rte_event_dev_stop(dev);
		r->dev_started = false;
	}
	if (r->dev_configured) {
		rte_event_dev_close(dev);
		r->dev_configured = false;
	}
	if (r->have_vdev) {
		int rc = rte_eal_hotplug_remove("vdev", r->dev_name);
		if (rc < 0)
			fprintf(stderr, "warning: rte_eal_hotplug_remove(vdev, %s): %s\n",
				r->dev_name, strerror(-rc));
		r->have_vdev = false;
	}
	/* event_sw (22.11) leaves its service registered when it is removed;
	 * release the slot (there are 64) so that rounds do not run out. */
	if (r->have_service) {
		rte_service_component_unregister(r->service_id);
		r->have_service = false;
	}
}

static BENCH_ALWAYS_INLINE uint64_t evdev_pack(uint64_t seq, uint64_t rel_ns)
{
	return (seq << BENCH_STAMP_BITS) | (rel_ns & BENCH_STAMP_MASK);
}

static void produce_evdev(struct run *r)
{
	const uint8_t dev = (uint8_t)r->dev_id, port = r->prod_port;
	const uint32_t flows = r->flows;
	struct rte_event evs[BENCH_BURST];
	uint64_t seqs[BENCH_BURST];
	uint64_t i = 0, seq = 0, retries = 0;
	uint32_t flow = 0;

	memset(evs, 0, sizeof(evs));
	for (unsigned k = 0; k < BENCH_BURST; k++) {
		evs[k].op = RTE_EVENT_OP_NEW;
		evs[k].queue_id = 0;
		evs[k].sched_type = r->peer->sched_type;
		evs[k].event_type = RTE_EVENT_TYPE_CPU;
		evs[k].priority = RTE_EVENT_DEV_PRIORITY_NORMAL;
	}
	while (i < r->n && !stopped(r)) {
		unsigned m = r->n - i < BENCH_BURST ? (unsigned)(r->n - i) : BENCH_BURST;
		unsigned done = 0;
		uint64_t rel = bench_now_ns() - r->base_ns;
		for (unsigned k = 0; k < m; k++) {
			evs[k].flow_id = flow;
			seqs[k] = seq;
			evs[k].u64 = evdev_pack(seq, rel);
			if (++flow == flows) {
				flow = 0;
				seq++;
			}
		}
		for (;;) {
			rte_errno = 0;
			done += rte_event_enqueue_new_burst(dev, port, evs + done,
							    (uint16_t)(m - done));
			if (done == m)
				break;
			if (rte_errno == EINVAL || rte_errno == -EINVAL) {
				run_fail(r, "rte_event_enqueue_new_burst(%s): invalid argument",
					 r->dev_name);
				return;
			}
			/* Refused (in-flight limit): retry, re-stamped. */
			retries++;
			if (stopped(r))
				goto out;
			idle_pause(r);
			rel = bench_now_ns() - r->base_ns;
			for (unsigned k = done; k < m; k++)
				evs[k].u64 = evdev_pack(seqs[k], rel);
		}
		i += m;
	}
out:
	/*
	 * dsw may hold events in the port's output buffer: send them now, and
	 * keep the port attended (dsw is not maintenance-free). Only for dsw:
	 * a device id reused after a dsw device was removed keeps dsw's
	 * maintain hook in 22.11, and calling it on an event_sw port crashes.
	 */
	if (r->peer->kind == KIND_DSW)
		rte_event_maintain(dev, port, RTE_EVENT_DEV_MAINT_OP_FLUSH);
	r->prod_retries = retries;
	onering_atomic_store(&r->prod_done, 1, onering_mo_relaxed);
	while (!stopped(r)) {
		if (r->peer->kind == KIND_DSW)
			rte_event_maintain(dev, port, 0);
		bench_sleep_ns(BENCH_MAINTAIN_NS);
	}
}

static void consume_evdev(struct consumer *c)
{
	struct run *r = c->r;
	const uint8_t dev = (uint8_t)r->dev_id, port = c->port;
	const uint64_t base = r->base_ns;
	struct rte_event evs[BENCH_BURST];

	while (!stopped(r)) {
		uint16_t n = rte_event_dequeue_burst(dev, port, evs, BENCH_BURST, 0);
		if (n == 0) {
			idle_pause(r);
			continue;
		}
		uint64_t now = bench_now_ns();
		for (unsigned k = 0; k < n; k++)
			take(c, r, evs[k].flow_id, evs[k].u64 >> BENCH_STAMP_BITS,
			     base + (evs[k].u64 & BENCH_STAMP_MASK), now);
		account(c, r, n, now);
	}
}

static void *sched_main(void *arg)
{
	struct run *r = arg;
	bool registered = rte_thread_register() == 0;

	pthread_setname_np(pthread_self(), "bb-sched");
	if (!registered)
		run_fail(r, "rte_thread_register (service thread): %s",
			 rte_strerror(rte_errno));
	else if (bench_pin_self(r->o->sched_cpu) < 0)
		run_fail(r, "cannot pin the service thread to CPU %d", r->o->sched_cpu);
	gate_wait(r);
	uint64_t cpu0 = bench_thread_cpu_ns();
	while (!stopped(r))
		/* 0: only this thread ever runs the service (no serialisation) */
		rte_service_run_iter_on_app_lcore(r->service_id, 0);
	r->sched_cpu_ns = bench_thread_cpu_ns() - cpu0;
	if (registered)
		rte_thread_unregister();
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* onering peer.                                                           */

struct user_data {
	uint64_t stamp_ns;
	uint64_t seq;
	uint64_t idx;
};

ONERING_STATIC_ASSERT(sizeof(struct user_data) == 24, "fills payload.user.data");

static int bb_onering_setup(struct run *r)
{
	struct onering_attach_options ao;
	int rc;

	rc = broker_start(&r->broker, r->o, r->peer->policy);
	if (rc < 0)
		return rc;
	memset(&ao, 0, sizeof(ao));
	ao.name = r->broker.name;
	ao.socket_dir = r->broker.dir;
	rc = onering_attach_opts(&ao, &r->att);
	if (rc < 0) {
		fprintf(stderr, "onering_attach(%s in %s): %s\n", ao.name, ao.socket_dir,
			onering_strerror(rc));
		return rc;
	}
	rc = onering_group_id(r->att, BENCH_GROUP, &r->gid);
	if (rc < 0) {
		fprintf(stderr, "onering_group_id(%s): %s (%s)\n", BENCH_GROUP,
			onering_strerror(rc), onering_last_error(r->att));
		return rc;
	}
	return 0;
}

static void bb_onering_teardown(struct run *r)
{
	if (r->att) {
		onering_detach(r->att);
		r->att = NULL;
	}
	broker_stop(&r->broker);
}

static void produce_onering(struct run *r, struct onering_queue *pq)
{
	const uint32_t flows = r->flows, gid = r->gid;
	struct onering_user_event burst[BENCH_BURST];
	struct user_data d;
	uint64_t seq = 0, retries = 0, i = 0;
	uint32_t flow = 0;

	/* Bursts of BENCH_BURST posts (one clock read, one fence and one
	 * release per burst), as the eventdev producer enqueues bursts. */
	while (i < r->n && !stopped(r)) {
		unsigned k = 0;
		uint64_t stamp = bench_now_ns();
		for (; k < BENCH_BURST && i + k < r->n; k++) {
			d.seq = seq;
			d.idx = i + k;
			d.stamp_ns = stamp;
			burst[k].flow = flow;
			burst[k].cookie = i + k;
			burst[k].len = sizeof(d);
			memcpy(burst[k].data, &d, sizeof(d));
			if (++flow == flows) {
				flow = 0;
				seq++;
			}
		}
		unsigned sent = 0;
		while (sent < k) {
			int rc = onering_post_burst(pq, gid, burst + sent, k - sent);
			if (ONERING_UNLIKELY(rc < 0)) {
				run_fail(r, "onering_post_burst: %s", onering_strerror(rc));
				return;
			}
			sent += (unsigned)rc;
			if (sent == k)
				break;
			/* Submission ring (or group backlog) full: retry the rest,
			 * re-stamped. */
			retries++;
			if (stopped(r))
				goto out;
			idle_pause(r);
			stamp = bench_now_ns();
			for (unsigned j = sent; j < k; j++) {
				memcpy(&d, burst[j].data, sizeof(d));
				d.stamp_ns = stamp;
				memcpy(burst[j].data, &d, sizeof(d));
			}
		}
		i += k;
	}
out:
	r->prod_retries = retries;
	onering_atomic_store(&r->prod_done, 1, onering_mo_relaxed);
	/* Keep the queue open (its posts may still be in the submission ring). */
	while (!stopped(r))
		bench_sleep_ns(BENCH_MAINTAIN_NS);
}

static BENCH_ALWAYS_INLINE void take_onering(struct consumer *c, struct run *r,
					     const struct onering_event *ev, uint64_t now)
{
	struct user_data d;

	if (ONERING_UNLIKELY(ev->kind != ONERING_EV_USER)) {
		c->bad++;
		return;
	}
	memcpy(&d, ev->payload.user.data, sizeof(d));
	if (ONERING_UNLIKELY(d.idx != d.seq * r->flows + ev->payload.user.flow ||
			     ev->cookie != d.idx)) {
		c->bad++;
		return;
	}
	take(c, r, ev->payload.user.flow, d.seq, d.stamp_ns, now);
}

static void consume_onering(struct consumer *c)
{
	struct run *r = c->r;
	const bool poll_mode = r->o->consume_poll;
	struct onering_event evs[BENCH_BURST];

	while (!stopped(r)) {
		int n = poll_mode ? onering_poll(c->q, evs, BENCH_BURST)
				  : onering_wait(c->q, evs, 1, BENCH_BURST, BENCH_WAIT_NS);
		if (ONERING_UNLIKELY(n <= 0)) {
			if (n == 0 || n == -EINTR) {
				if (poll_mode)
					idle_pause(r);
				continue;
			}
			run_fail(r, "consumer %u: %s: %s", c->idx,
				 poll_mode ? "onering_poll" : "onering_wait", onering_strerror(n));
			return;
		}
		uint64_t now = bench_now_ns();
		for (int k = 0; k < n; k++)
			take_onering(c, r, &evs[k], now);
		account(c, r, (unsigned)n, now);
	}
}

/* After the run: anything still arriving was delivered once too often. */
static void drain_onering(struct consumer *c)
{
	struct onering_event evs[BENCH_BURST];
	int n;

	while ((n = onering_wait(c->q, evs, 1, BENCH_BURST, BENCH_DRAIN_NS)) > 0)
		c->extra += (uint64_t)n;
}

/* ---------------------------------------------------------------------- */
/* Thread bodies.                                                          */

static void *producer_main(void *arg)
{
	struct run *r = arg;
	struct onering_queue *pq = NULL;
	bool registered = false;

	pthread_setname_np(pthread_self(), "bb-prod");
	if (bench_pin_self_to(&r->o->app_cpus) < 0)
		run_fail(r, "cannot set the producer's CPUs (--app-cpus %s)", r->o->app_cpus_text);
	if (r->peer->kind == KIND_ONERING) {
		struct onering_queue_options qo;
		memset(&qo, 0, sizeof(qo));
		qo.sq_capacity = r->o->sq_capacity;
		int rc = onering_queue_open(r->att, &qo, &pq);
		if (rc < 0)
			run_fail(r, "producer: onering_queue_open (private, %u submission slots): "
				    "%s (%s)",
				 qo.sq_capacity, onering_strerror(rc), onering_last_error(r->att));
	} else {
		registered = rte_thread_register() == 0;
		if (!registered)
			run_fail(r, "rte_thread_register (producer): %s", rte_strerror(rte_errno));
	}
	gate_wait(r);
	uint64_t cpu0 = bench_thread_cpu_ns();
	r->start_ns = bench_now_ns();
	if (!stopped(r)) {
		if (r->peer->kind == KIND_ONERING)
			produce_onering(r, pq);
		else
			produce_evdev(r);
	}
	r->prod_cpu_ns = bench_thread_cpu_ns() - cpu0;
	if (pq)
		onering_queue_close(pq);
	if (registered)
		rte_thread_unregister();
	return NULL;
}

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;
	struct run *r = c->r;
	bool registered = false;
	char name[16];

	snprintf(name, sizeof(name), "bb-cons%u", c->idx);
	pthread_setname_np(pthread_self(), name);
	if (bench_pin_self_to(&r->o->app_cpus) < 0)
		run_fail(r, "cannot set consumer %u's CPUs (--app-cpus %s)", c->idx,
			 r->o->app_cpus_text);
	if (r->peer->kind == KIND_ONERING) {
		struct onering_queue_options qo;
		memset(&qo, 0, sizeof(qo));
		qo.capacity = r->o->capacity;
		qo.group = BENCH_GROUP;
		int rc = onering_queue_open(r->att, &qo, &c->q);
		if (rc < 0)
			run_fail(r, "consumer %u: onering_queue_open (group %s, %u slots): %s (%s)",
				 c->idx, BENCH_GROUP, qo.capacity, onering_strerror(rc),
				 onering_last_error(r->att));
	} else {
		registered = rte_thread_register() == 0;
		if (!registered)
			run_fail(r, "rte_thread_register (consumer %u): %s", c->idx,
				 rte_strerror(rte_errno));
	}
	gate_wait(r);
	uint64_t cpu0 = bench_thread_cpu_ns();
	if (!stopped(r)) {
		if (r->peer->kind == KIND_ONERING)
			consume_onering(c);
		else
			consume_evdev(c);
	}
	c->cpu_ns = bench_thread_cpu_ns() - cpu0;
	if (c->q) {
		if (onering_atomic_load(&r->stop, onering_mo_acquire) == 1)
			drain_onering(c);
		onering_queue_close(c->q);
		c->q = NULL;
	}
	if (registered)
		rte_thread_unregister();
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* run_one: set up, run, check, tear down one measurement.                 */

struct result {
	bool valid;
	bool wrong;            /* delivered wrong data: shown marked, not in ratios */
	double wall_s;
	double events_per_s;
	double cpu_s;          /* everything that took part */
	double cpu_prod_s;
	double cpu_cons_s;     /* all consumers */
	double cpu_sched_s;    /* event_sw service thread, or the whole oneringd */
	double events_per_cpu_s;
	double p50_ns;
	double p99_ns;
	double share_min;      /* smallest and largest consumer share of N */
	double share_max;
	uint64_t retries;
	uint64_t qorder;       /* per-queue reorderings (informational when unordered) */
	double others_pct;     /* CPU other processes took, % of all CPUs; -1 unknown */
	double steal_pct;
};

static void run_free(struct run *r)
{
	for (unsigned i = 0; i < BENCH_MAX_CONSUMERS; i++) {
		if (!r->cons[i])
			continue;
		free(r->cons[i]->seen);
		free(r->cons[i]->qnext);
		free(r->cons[i]);
	}
	free(r->gnext);
	free(r);
}

/* Exactly once, in order where promised. Returns 0, or 1 with a message. */
static int run_verify(struct run *r, struct result *res, bool incomplete)
{
	const size_t words = (size_t)((r->n + 63) / 64);
	uint64_t count = 0, dups = 0, bad = 0, gorder = 0, qorder = 0, extra = r->leftover;
	uint64_t overlap = 0, have = 0;

	for (unsigned i = 0; i < r->nc; i++) {
		const struct consumer *c = r->cons[i];
		count += c->count;
		dups += c->dups;
		bad += c->bad;
		gorder += c->gorder;
		qorder += c->qorder;
		extra += c->extra;
	}
	for (size_t w = 0; w < words; w++) {
		uint64_t u = 0;
		for (unsigned i = 0; i < r->nc; i++) {
			uint64_t x = r->cons[i]->seen[w];
			overlap += (uint64_t)__builtin_popcountll(u & x);
			u |= x;
		}
		have += (uint64_t)__builtin_popcountll(u);
	}
	res->qorder = qorder;
	uint64_t lost = r->n - have;
	if (incomplete) {
		fprintf(stderr,
			"%s C=%u: INCOMPLETE: %" PRIu64 " of %" PRIu64 " events taken (%" PRIu64
			" distinct), %" PRIu64 " still inside the peer when it was stopped\n",
			r->peer->name, r->nc, count, r->n, have, extra);
		return 1;
	}
	if (lost || dups || overlap || bad || extra || (r->peer->ordered && gorder)) {
		fprintf(stderr,
			"%s C=%u: %s: sent %" PRIu64 ", taken %" PRIu64 " (%" PRIu64 " distinct): "
			"lost %" PRIu64 ", duplicated %" PRIu64 " (same consumer) + %" PRIu64
			" (two consumers) + %" PRIu64 " (left over after the run), malformed "
			"%" PRIu64 "\n",
			r->peer->name, r->nc, "WRONG DELIVERY", r->n, count, have, lost, dups,
			overlap, extra, bad);
		fprintf(stderr,
			"  per-flow order: %" PRIu64 " events out of sequence across consumers, "
			"%" PRIu64 " within one queue%s\n",
			gorder, qorder,
			r->peer->ordered ? " (this peer promises per-flow order: an event of a "
					   "flow was processed while another consumer still "
					   "held an earlier one, or reordered)"
					 : " (not promised by this peer: not errors)");
		return 1;
	}
	return 0;
}

static void run_results(struct run *r, struct result *res)
{
	uint64_t *h = calloc(HIST_BUCKETS, sizeof(*h));
	uint64_t cons_cpu = 0, cmin = UINT64_MAX, cmax = 0;

	for (unsigned i = 0; i < r->nc; i++) {
		const struct consumer *c = r->cons[i];
		cons_cpu += c->cpu_ns;
		cmin = c->count < cmin ? c->count : cmin;
		cmax = c->count > cmax ? c->count : cmax;
		if (h)
			for (unsigned b = 0; b < HIST_BUCKETS; b++)
				h[b] += c->hist[b];
	}
	uint64_t sched = r->peer->kind == KIND_ONERING
				 ? r->broker_cpu_end_ns - r->broker_cpu_start_ns
				 : r->sched_cpu_ns;
	if (r->peer->kind == KIND_ONERING && r->broker_cpu_end_ns < r->broker_cpu_start_ns)
		sched = 0;
	res->valid = true;
	res->wall_s = (double)(r->end_ns - r->start_ns) / 1e9;
	res->events_per_s = res->wall_s > 0 ? (double)r->n / res->wall_s : -1;
	res->cpu_prod_s = (double)r->prod_cpu_ns / 1e9;
	res->cpu_cons_s = (double)cons_cpu / 1e9;
	res->cpu_sched_s = (double)sched / 1e9;
	res->cpu_s = res->cpu_prod_s + res->cpu_cons_s + res->cpu_sched_s;
	res->events_per_cpu_s = res->cpu_s > 0 ? (double)r->n / res->cpu_s : -1;
	res->p50_ns = h ? hist_percentile(h, 0.50) : -1;
	res->p99_ns = h ? hist_percentile(h, 0.99) : -1;
	res->share_min = (double)cmin / (double)r->n;
	res->share_max = (double)cmax / (double)r->n;
	res->retries = r->prod_retries;
	free(h);
}

/* Wait for the end of the run, the timeout, a stall, a dead broker or ^C. */
static void run_watch(struct run *r)
{
	uint64_t t0 = bench_now_ns(), last_change = t0, last_count = 0;

	while (onering_atomic_load(&r->stop, onering_mo_acquire) == 0) { /* A2 */
		bench_sleep_ns(5000000);
		uint64_t now = bench_now_ns();
		uint64_t got = onering_atomic_load(&r->received, onering_mo_relaxed);
		if (got != last_count) {
			last_count = got;
			last_change = now;
		}
		if (interrupted) {
			run_fail(r, "interrupted");
		} else if (now - t0 > r->o->timeout_ns) {
			r->incomplete = run_fail(r,
						 "timeout: %" PRIu64 " of %" PRIu64 " events taken "
						 "after %.0f s (--timeout)",
						 got, r->n, (double)r->o->timeout_ns / 1e9);
		} else if (onering_atomic_load(&r->prod_done, onering_mo_relaxed) &&
			   now - last_change > BENCH_STALL_NS) {
			r->incomplete = run_fail(r,
						 "lost: %" PRIu64 " of %" PRIu64 " events taken, "
						 "none for %.0f s after the producer finished",
						 got, r->n, (double)BENCH_STALL_NS / 1e9);
		} else if (r->peer->kind == KIND_ONERING &&
			   bench_broker_reap(&r->broker.pid, r->broker.log)) {
			run_fail(r, "oneringd exited during the run");
		}
	}
}

/* 0 ok; 1 correctness failure; 2 setup failure; 130 interrupted. */
static int run_one(const struct bench_opts *o, unsigned peer, unsigned nc, struct result *res)
{
	struct run *r = aligned_alloc(ONERING_CACHE_LINE,
				      (sizeof(struct run) + ONERING_CACHE_LINE - 1) &
					      ~(size_t)(ONERING_CACHE_LINE - 1));
	int status = 0;

	memset(res, 0, sizeof(*res));
	if (!r) {
		fprintf(stderr, "out of memory\n");
		return 2;
	}
	memset(r, 0, sizeof(*r));
	r->o = o;
	r->peer = &peer_defs[peer];
	r->nc = nc;
	r->n = o->events;
	r->flows = o->flows;
	r->seq_end = (r->n + r->flows - 1) / r->flows;
	r->dev_id = -1;
	r->broker.pid = -1;
	onering_atomic_init(&r->received, 0);
	onering_atomic_init(&r->stop, 0);
	onering_atomic_init(&r->go, 0);
	onering_atomic_init(&r->ready, 0u);
	onering_atomic_init(&r->prod_done, 0);
	onering_atomic_init(&r->failed, 0);
	for (unsigned i = 0; i < nc; i++) {
		struct consumer *c = aligned_alloc(ONERING_CACHE_LINE,
						   (sizeof(*c) + ONERING_CACHE_LINE - 1) &
							   ~(size_t)(ONERING_CACHE_LINE - 1));
		if (!c) {
			fprintf(stderr, "out of memory\n");
			run_free(r);
			return 2;
		}
		memset(c, 0, sizeof(*c));
		r->cons[i] = c;
		c->r = r;
		c->idx = i;
		c->seen = calloc((size_t)((r->n + 63) / 64), sizeof(uint64_t));
		c->qnext = calloc(r->flows, sizeof(uint32_t));
		if (!c->seen || !c->qnext) {
			fprintf(stderr, "out of memory (%" PRIu64 " events)\n", r->n);
			run_free(r);
			return 2;
		}
	}
	if (r->peer->ordered) {
		r->gnext = calloc(r->flows, sizeof(*r->gnext));
		if (!r->gnext) {
			fprintf(stderr, "out of memory\n");
			run_free(r);
			return 2;
		}
		for (uint32_t f = 0; f < r->flows; f++)
			onering_atomic_init(&r->gnext[f], 0u);
	}

	if ((r->peer->kind == KIND_ONERING ? bb_onering_setup(r) : evdev_setup(r)) < 0) {
		status = interrupted ? 130 : 2;
		goto out;
	}
	r->base_ns = bench_now_ns();

	/* Threads: consumers, the producer, the event_sw service thread. */
	for (unsigned i = 0; i < nc; i++) {
		if (pthread_create(&r->cons[i]->thr, NULL, consumer_main, r->cons[i]) != 0) {
			run_fail(r, "pthread_create failed");
			break;
		}
		r->cons[i]->started = true;
		r->nr_threads++;
	}
	if (!run_failed(r) && pthread_create(&r->thr_prod, NULL, producer_main, r) == 0) {
		r->started_prod = true;
		r->nr_threads++;
	} else {
		run_fail(r, "pthread_create failed");
	}
	if (!run_failed(r) && r->peer->kind == KIND_SW) {
		if (pthread_create(&r->thr_sched, NULL, sched_main, r) == 0) {
			r->started_sched = true;
			r->nr_threads++;
		} else {
			run_fail(r, "pthread_create failed");
		}
	}
	/* A0: every thread is set up (queues open, lcores registered). */
	uint64_t t0 = bench_now_ns();
	while (onering_atomic_load(&r->ready, onering_mo_acquire) < r->nr_threads &&
	       bench_now_ns() - t0 < 30000000000ull)
		bench_sleep_ns(1000000);
	if (onering_atomic_load(&r->ready, onering_mo_acquire) < r->nr_threads)
		run_fail(r, "threads did not get ready in 30 s");
	struct cpu_sample sa, sb;
	cpu_sample_take(&sa, r->broker.pid);
	if (r->broker.pid > 0)
		r->broker_cpu_start_ns = bench_proc_cpu_ns(r->broker.pid, true);
	onering_atomic_store(&r->go, 1, onering_mo_release); /* R1 */
	run_watch(r);
	cpu_sample_take(&sb, r->broker.pid);

	for (unsigned i = 0; i < nc; i++)
		if (r->cons[i]->started)
			pthread_join(r->cons[i]->thr, NULL);
	if (r->started_prod)
		pthread_join(r->thr_prod, NULL);
	if (r->started_sched)
		pthread_join(r->thr_sched, NULL);
	if (r->peer->kind != KIND_ONERING)
		evdev_teardown(r); /* counts what was left inside */

	if (onering_atomic_load(&r->stop, onering_mo_acquire) != 1) {
		fprintf(stderr, "%s C=%u: %s\n", r->peer->name, nc, r->err);
		if (interrupted) {
			status = 130;
		} else if (r->incomplete) {
			run_verify(r, res, true);
			status = 1;
		} else {
			status = 2;
		}
		goto out;
	}
	/* Figures also for a wrong delivery (marked, and left out of ratios). */
	status = run_verify(r, res, false);
	run_results(r, res);
	res->wrong = status != 0;
	res->others_pct = cpu_others_pct(&sa, &sb, false);
	res->steal_pct = cpu_others_pct(&sa, &sb, true);
out:
	if (r->peer->kind == KIND_ONERING)
		bb_onering_teardown(r);
	else
		evdev_teardown(r);
	run_free(r);
	return status;
}

/* ---------------------------------------------------------------------- */
/* Output: progress lines, CSV, the summary with medians and ratios.       */

static FILE *csv;

static void csv_header(void)
{
	fprintf(csv, "round,peer,consumers,events,flows,wall_s,events_per_s,cpu_s,cpu_producer_s,"
		     "cpu_consumers_s,cpu_scheduler_s,events_per_cpu_s,p50_ns,p99_ns,share_min,"
		     "share_max,producer_retries,queue_reorders,others_pct,steal_pct,wrong\n");
}

static void csv_row(unsigned round, unsigned peer, unsigned nc, const struct bench_opts *o,
		    const struct result *r)
{
	fprintf(csv,
		"%u,%s,%u,%" PRIu64 ",%u,%.6f,%.0f,%.6f,%.6f,%.6f,%.6f,%.0f,%.0f,%.0f,%.4f,%.4f,"
		"%" PRIu64 ",%" PRIu64 ",%.1f,%.1f,%d\n",
		round, peer_defs[peer].name, nc, o->events, o->flows, r->wall_s, r->events_per_s,
		r->cpu_s, r->cpu_prod_s, r->cpu_cons_s, r->cpu_sched_s, r->events_per_cpu_s,
		r->p50_ns, r->p99_ns, r->share_min, r->share_max, r->retries, r->qorder,
		r->others_pct, r->steal_pct, r->wrong ? 1 : 0);
	fflush(csv);
}

static void print_progress(unsigned peer, unsigned nc, const struct result *r)
{
	printf("    %-15s C=%-2u %7.3f Mev/s %7.3f Mev/CPU-s  p50 %8.1f us  p99 %8.1f us  "
	       "CPU %.3f s (prod %.3f cons %.3f %s %.3f)  split %.0f-%.0f %%",
	       peer_defs[peer].name, nc, r->events_per_s / 1e6, r->events_per_cpu_s / 1e6,
	       r->p50_ns / 1e3, r->p99_ns / 1e3, r->cpu_s, r->cpu_prod_s, r->cpu_cons_s,
	       peer_defs[peer].kind == KIND_ONERING ? "broker" : "sched", r->cpu_sched_s,
	       100.0 * r->share_min, 100.0 * r->share_max);
	if (r->others_pct >= 0)
		printf("  others %.0f %%", r->others_pct);
	if (r->wrong)
		printf("  WRONG");
	if (r->steal_pct > 0.5)
		printf(" steal %.0f %%", r->steal_pct);
	printf("\n");
	fflush(stdout);
}

static double noise_of(const struct result *r)
{
	return (r->others_pct > 0 ? r->others_pct : 0) + (r->steal_pct > 0 ? r->steal_pct : 0);
}

static bool noisy(const struct bench_opts *o, const struct result *r)
{
	return noise_of(r) > o->noise_max_pct;
}

static struct result (*results)[BENCH_MAX_CSETS][PEER_NR]; /* [round][consumer set][peer] */

enum fig {
	FIG_EPS,
	FIG_EPCS,
	FIG_P50,
	FIG_P99,
	FIG_CPU,
};

static double fig_of(const struct result *r, enum fig f)
{
	if (!r->valid)
		return -1;
	switch (f) {
	case FIG_EPS:
		return r->events_per_s;
	case FIG_EPCS:
		return r->events_per_cpu_s;
	case FIG_P50:
		return r->p50_ns;
	case FIG_P99:
		return r->p99_ns;
	case FIG_CPU:
		return r->cpu_s;
	}
	return -1;
}

static double fig_median(const struct bench_opts *o, unsigned ci, unsigned peer, enum fig f)
{
	double v[BENCH_MAX_ROUNDS];

	for (unsigned i = 0; i < o->rounds; i++)
		v[i] = fig_of(&results[i][ci][peer], f);
	return bench_median(v, o->rounds);
}

/* The best peer of a family in one round, by events per CPU-second; -1 if none. */
static int best_of(const struct bench_opts *o, unsigned round, unsigned ci, enum peer_kind kind,
		   enum fig f)
{
	int best = -1;
	double bv = -1;

	for (unsigned p = 0; p < PEER_NR; p++) {
		if (!o->peers[p] || peer_defs[p].kind != kind)
			continue;
		if (results[round][ci][p].wrong)
			continue;
		double v = fig_of(&results[round][ci][p], f);
		if (v > bv) {
			bv = v;
			best = (int)p;
		}
	}
	return best;
}

/* The peer of a family that was best in most rounds (ties: the first). */
static int best_most_often(const struct bench_opts *o, unsigned ci, enum peer_kind kind)
{
	unsigned wins[PEER_NR] = { 0 };
	int best = -1;

	for (unsigned i = 0; i < o->rounds; i++) {
		int b = best_of(o, i, ci, kind, FIG_EPCS);
		if (b >= 0)
			wins[b]++;
	}
	for (unsigned p = 0; p < PEER_NR; p++)
		if (wins[p] && (best < 0 || wins[p] > wins[best]))
			best = (int)p;
	return best;
}

/* Median over rounds of (best of family a) / (best of family b) in figure f. */
static double ratio_best(const struct bench_opts *o, unsigned ci, enum peer_kind a,
			 enum peer_kind b, enum fig f, double *lo, double *hi)
{
	double v[BENCH_MAX_ROUNDS];

	*lo = -1;
	*hi = -1;
	for (unsigned i = 0; i < o->rounds; i++) {
		int pa = best_of(o, i, ci, a, f), pb = best_of(o, i, ci, b, f);
		v[i] = -1;
		if (pa < 0 || pb < 0)
			continue;
		double x = fig_of(&results[i][ci][pa], f), y = fig_of(&results[i][ci][pb], f);
		if (x < 0 || y <= 0)
			continue;
		v[i] = x / y;
		if (*lo < 0 || v[i] < *lo)
			*lo = v[i];
		if (v[i] > *hi)
			*hi = v[i];
	}
	return bench_median(v, o->rounds);
}

/* Median over rounds of peer a / peer b in figure f. */
static double ratio_peers(const struct bench_opts *o, unsigned ci, unsigned a, unsigned b,
			  enum fig f)
{
	double v[BENCH_MAX_ROUNDS];

	for (unsigned i = 0; i < o->rounds; i++) {
		double x = fig_of(&results[i][ci][a], f), y = fig_of(&results[i][ci][b], f);
		bool wrong = results[i][ci][a].wrong || results[i][ci][b].wrong;
		v[i] = !wrong && x >= 0 && y > 0 ? x / y : -1;
	}
	return bench_median(v, o->rounds);
}

static bool family_on(const struct bench_opts *o, enum peer_kind kind)
{
	for (unsigned p = 0; p < PEER_NR; p++)
		if (o->peers[p] && peer_defs[p].kind == kind)
			return true;
	return false;
}

static void print_target(const struct bench_opts *o, unsigned ci, enum peer_kind against,
			 double target)
{
	double lo, hi, wlo, whi;
	double rw = ratio_best(o, ci, KIND_ONERING, against, FIG_EPS, &wlo, &whi);
	double r = ratio_best(o, ci, KIND_ONERING, against, FIG_EPCS, &lo, &hi);
	int bo = best_most_often(o, ci, KIND_ONERING), bx = best_most_often(o, ci, against);

	if (r < 0 || bo < 0 || bx < 0)
		return;
	printf("  C=%-2u onering best (%s) / %s best (%s): %.2fx per CPU-s", o->consumers[ci],
	       peer_defs[bo].name, kind_names[against], peer_defs[bx].name, r);
	if (o->rounds > 1)
		printf(" [%.2f-%.2f]", lo, hi);
	printf(", target >= %.1fx: %s; events/s %.2fx\n", target,
	       r >= target ? "met" : "MISSED", rw);
}

static bool any_valid(const struct bench_opts *o)
{
	for (unsigned i = 0; i < o->rounds; i++)
		for (unsigned ci = 0; ci < o->nr_consumers; ci++)
			for (unsigned p = 0; p < PEER_NR; p++)
				if (results[i][ci][p].valid)
					return true;
	return false;
}

static void print_summary(const struct bench_opts *o)
{
	printf("\nSummary (median over %u round%s; %" PRIu64 " events, %u flows; CPU = every "
	       "thread and process that took part)\n",
	       o->rounds, o->rounds == 1 ? "" : "s", o->events, o->flows);
	printf("  %-3s %-15s %10s %12s %10s %10s %8s\n", "C", "peer", "Mev/s", "Mev/CPU-s",
	       "p50 us", "p99 us", "CPU s");
	for (unsigned ci = 0; ci < o->nr_consumers; ci++) {
		for (unsigned p = 0; p < PEER_NR; p++) {
			if (!o->peers[p])
				continue;
			double eps = fig_median(o, ci, p, FIG_EPS);
			if (eps < 0)
				continue;
			unsigned nr_wrong = 0;
			for (unsigned i = 0; i < o->rounds; i++)
				nr_wrong += results[i][ci][p].wrong;
			printf("  %-3u %-15s %10.3f %12.3f %10.1f %10.1f %8.3f", o->consumers[ci],
			       peer_defs[p].name, eps / 1e6, fig_median(o, ci, p, FIG_EPCS) / 1e6,
			       fig_median(o, ci, p, FIG_P50) / 1e3,
			       fig_median(o, ci, p, FIG_P99) / 1e3, fig_median(o, ci, p, FIG_CPU));
			if (nr_wrong)
				printf("  WRONG in %u of %u rounds", nr_wrong, o->rounds);
			printf("\n");
		}
	}
	if (!family_on(o, KIND_ONERING) || (!family_on(o, KIND_DSW) && !family_on(o, KIND_SW)))
		return;
	printf("\nRatios (per round, median%s; best = most events per CPU-second in the "
	       "round)\n",
	       o->rounds > 1 ? " [min-max]" : "");
	for (unsigned ci = 0; ci < o->nr_consumers; ci++) {
		if (family_on(o, KIND_DSW))
			print_target(o, ci, KIND_DSW, 1.5);
		if (family_on(o, KIND_SW))
			print_target(o, ci, KIND_SW, 4.0);
		if (o->peers[PEER_ONERING_STICKY]) {
			const unsigned ordered[] = { PEER_DSW_ATOMIC, PEER_SW_ATOMIC };
			for (unsigned k = 0; k < 2; k++) {
				unsigned a = ordered[k];
				if (!o->peers[a])
					continue;
				double r = ratio_peers(o, ci, PEER_ONERING_STICKY, a, FIG_EPCS);
				if (r >= 0)
					printf("  C=%-2u onering-sticky / %s (ordered, like for "
					       "like): %.2fx per CPU-s, events/s %.2fx\n",
					       o->consumers[ci], peer_defs[a].name, r,
					       ratio_peers(o, ci, PEER_ONERING_STICKY, a, FIG_EPS));
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct sigaction sa;
	int status = 0;
	unsigned wrong = 0;
	bool need_eal = false;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sched_getaffinity(0, sizeof(start_affinity), &start_affinity) < 0) {
		fprintf(stderr, "sched_getaffinity: %s\n", strerror(errno));
		return 2;
	}
	if (parse_opts(argc, argv, &o) < 0)
		return 2;
	for (unsigned p = 0; p < PEER_NR; p++)
		need_eal |= o.peers[p] && peer_defs[p].kind != KIND_ONERING;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	results = calloc(o.rounds, sizeof(*results));
	if (!results) {
		fprintf(stderr, "out of memory\n");
		return 2;
	}
	if (o.csv_path) {
		csv = fopen(o.csv_path, "w");
		if (!csv) {
			fprintf(stderr, "--csv %s: %s\n", o.csv_path, strerror(errno));
			free(results);
			return 2;
		}
		csv_header();
	}
	if (need_eal && eal_start(&o) < 0) {
		status = 2;
		goto out;
	}

	printf("onering-bench-balance: %" PRIu64 " events over %u flows, consumers", o.events,
	       o.flows);
	for (unsigned i = 0; i < o.nr_consumers; i++)
		printf("%s%u", i ? "," : " ", o.consumers[i]);
	printf(", %u round%s, %ld CPUs online\n", o.rounds, o.rounds == 1 ? "" : "s",
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("placement: oneringd poller + control thread and the event_sw service thread "
	       "pinned to CPU %d; producer and consumers on CPUs %s; idle/refused busy loops "
	       "%s\n",
	       o.sched_cpu, o.app_cpus_text, o.idle_yield ? "sched_yield()" : "spin (PAUSE)");
	if (family_on(&o, KIND_ONERING))
		printf("onering: %s --group %s:policy=P --cores %d --control-core %d "
		       "--no-hugepages; queue %u slots, producer submission ring %u; consumers "
		       "%s\n",
		       ONERINGD_PATH, BENCH_GROUP, o.sched_cpu, o.sched_cpu, o.capacity,
		       o.sq_capacity,
		       o.consume_poll ? "onering_poll loop" : "onering_wait (spin 50 us, then sleep)");
	for (unsigned i = 0; i < o.nr_broker_args && family_on(&o, KIND_ONERING); i++)
		printf("%s%s%s", i ? " " : "oneringd extra options: ", o.broker_args[i],
		       i + 1 == o.nr_broker_args ? "\n" : "");
	if (need_eal)
		printf("eventdev: %s, fresh vdev per measurement, 1 queue, C worker ports + "
		       "1 producer port, bursts of %u, in-flight limit %u (clamped to the "
		       "device's max)\n",
		       rte_version(), BENCH_BURST, o.inflight);

	/* A wrong delivery (1) is remembered and the run goes on; a setup
	 * failure (2) or an interrupt (130) ends it. */
	for (unsigned round = 0; round < o.rounds && status == 0; round++) {
		printf("round %u/%u\n", round + 1, o.rounds);
		for (unsigned ci = 0; ci < o.nr_consumers && status == 0; ci++) {
			printf("  C = %u\n", o.consumers[ci]);
			for (unsigned p = 0; p < PEER_NR && status == 0; p++) {
				struct result *res = &results[round][ci][p];
				if (!o.peers[p])
					continue;
				struct result again;
				unsigned tries = 0;
				status = run_one(&o, p, o.consumers[ci], res);
				while (status == 0 && tries < o.retry_noisy && noisy(&o, res)) {
					tries++;
					status = run_one(&o, p, o.consumers[ci], &again);
					if ((status == 1 && again.valid) ||
					    (status == 0 && noise_of(&again) < noise_of(res)))
						*res = again; /* a wrong delivery is always kept */
				}
				if (status == 1 && res->valid) {
					wrong++;
					status = 0;
				}
				if (status)
					break;
				if (tries)
					printf("    (disturbed: ran %u times, kept the quietest)\n",
					       tries + 1);
				print_progress(p, o.consumers[ci], res);
				if (csv)
					csv_row(round + 1, p, o.consumers[ci], &o, res);
			}
		}
	}
	if ((status == 0 || status == 1) && any_valid(&o))
		print_summary(&o);
	if (status == 130)
		fprintf(stderr,
			"interrupted: every broker was stopped and its directory removed\n");
	if (status == 0 && wrong) {
		fprintf(stderr, "FAILED: %u measurement%s delivered wrong data (see above; marked "
				"WRONG in the table and left out of the ratios)\n",
			wrong, wrong == 1 ? "" : "s");
		status = 1;
	} else if (status == 1) {
		fprintf(stderr, "FAILED: a peer did not deliver every event (see above)\n");
	}
out:
	if (csv)
		fclose(csv);
	eal_stop();
	free(results);
	return status;
}
