/* SPDX-License-Identifier: MIT */
/*
 * onering-bench-timers: arming and firing N one-shot timers, onering's
 * broker-side timers against one timerfd per timer and against a timer
 * wheel that the consumer keeps itself over one timerfd. Every peer in the
 * same run, rounds interleaved, ratios printed.
 *
 * Workload (per peer and round; the consumer is this program's main thread)
 *   Setup (not measured): the peer's N timers exist, disarmed; a warm-up
 *            armed each 10 s ahead and disarmed it again, so no pass pays
 *            first-touch page faults (the submission ring's pages) or
 *            allocations. Then 5 ms of quiet: the adaptive poller is
 *            asleep when the ARM pass starts (it pays the wake-up).
 *   ARM      arm all N, one-shot, at absolute CLOCK_MONOTONIC expiries
 *            spread evenly over [first, first + spread) after the pass
 *            starts (default 100..150 ms), in a random order (the same
 *            permutation for every peer of a round). Timed: the arming loop
 *            only. Then wait until all N fired: each exactly once, never
 *            before its expiry. The default first expiry lies after the
 *            slowest pass (timerfd: ~10 ms for 10000 here): with expiries
 *            inside a pass (--first-ms 10) the timerfd pass also pays the
 *            hard-interrupt work of its own timers firing (7x slower here),
 *            which is not the cost of arming.
 *   RE-ARM   arm all N again at E1 (not timed; onering: then wait until the
 *            broker applied it, so the timed pass finds the poller awake
 *            and idle), then re-arm every armed timer to a later E2
 *            (timed); every timer must fire once, at or after E2: a record
 *            or read before E2 is a re-arm that did not cancel the old
 *            expiry.
 *   CANCEL   arm all N (not timed, applied as above), disarm all N (timed),
 *            then watch until every old expiry + 20 ms has passed: nothing
 *            may fire.
 *   E1 and the cancel phase's expiries lie 20 ms + 4x the ARM pass ahead,
 *   so the timed pass ends (and onering's broker has applied it) well
 *   before any old expiry. When the machine stalls us longer than that (a
 *   timed pass ending after the first old expiry; for onering a timer
 *   firing at its old expiry before the sentinel shows the pass applied),
 *   the measurement is disturbed, not wrong: it is repeated (at most 3
 *   times). A stale expiry after that point is a correctness failure.
 *
 * Peers
 *   onering       this program starts oneringd (default idle policy: spin
 *                 100 us, then epoll_pwait2 until the next timer or 1 ms);
 *                 one queue (event ring >= 16384 slots, submission ring
 *                 --sq-capacity, default the smallest power of two >= N:
 *                 a pass never finds it full), N timers made with
 *                 onering_timer_create() (one control round trip each:
 *                 setup); arming is onering_timer_arm(ONERING_TIMER_ABS),
 *                 a 64-byte request on the submission ring. -EAGAIN (ring
 *                 full, with a smaller --sq-capacity) is counted (arms that
 *                 met it, and retries) and retried. The consumer takes records
 *                 with onering_wait() (spin 50 us, then futex);
 *   onering-busy  the same with oneringd --idle-sleep-ms -1 (the poller
 *                 never sleeps);
 *   timerfd       N timerfds (timerfd_create, one each, and EPOLL_CTL_ADD
 *                 to one epoll set: setup); arming is timerfd_settime(
 *                 TFD_TIMER_ABSTIME) per timer; firing: epoll_wait, one
 *                 read() per ready timerfd;
 *   wheel         the consumer's own hashed timer wheel (1024 slots of
 *                 1 ms, doubly linked slot lists: O(1) insert and cancel)
 *                 over one timerfd in an epoll set. Arming inserts and
 *                 calls timerfd_settime only when the earliest expiry moves
 *                 earlier; cancel is lazy (the timerfd may wake for
 *                 nothing). On a wake: read() the timerfd, pop what is due,
 *                 re-arm the timerfd to the next expiry (found by scanning
 *                 the slots ahead).
 *
 * Metrics (medians over rounds; ratios are medians of per-round ratios)
 *   arms/s        N / time of the arming loop, on the consumer thread. For
 *                 onering this is what the consumer pays; "applied/s" is
 *                 N / (time until the broker applied the last request):
 *                 after the pass a sentinel timer is armed at an absolute
 *                 time in the past; requests are applied in order, so its
 *                 record (stamped by the poller loop that fired it) comes
 *                 after every arm of the pass was applied;
 *   re-arms/s, cancels/s  the same for the timed pass of those phases;
 *   lateness      consumer's CLOCK_MONOTONIC when the peer handed it the
 *                 timer (after onering_wait/epoll_wait returned) minus the
 *                 intended expiry; p50/p99 are medians over rounds of each
 *                 round's value, max is the worst round's. For onering also
 *                 the record's timestamp_ns (the poller loop that fired it)
 *                 minus the expiry: "broker" lateness. Timers whose expiry
 *                 came before their arming was done (pass end; onering: the
 *                 sentinel's stamp) are left out of lateness and counted;
 *   CPU           consumer thread (CLOCK_THREAD_CPUTIME_ID) per arm during
 *                 the arming loop, and per timer over ARM + firing; the
 *                 broker's, all threads (/proc/PID/task/TID/schedstat), per
 *                 timer over the same span (a busy poller spins all along);
 *   syscalls/arm  in the timed runs, the calls each peer is known to make:
 *                 onering = write()s of the consumer thread during the
 *                 pass (/proc/thread-self/io syscw: the kick eventfd write
 *                 when the poller announced a sleep) + sched_yield()s while
 *                 the ring was full; timerfd = 1; wheel = timerfd_settime
 *                 calls / N. The broker's poller "kicks" counter (wake-ups
 *                 by a client request, STATS over the control socket) is
 *                 read around the pass. Then, as root, one extra counted
 *                 round counts every consumer syscall per timer, per phase,
 *                 with perf_event_open on raw_syscalls:sys_enter (the
 *                 tracepoint slows syscalls: rates come from the uncounted
 *                 rounds);
 *   noise         involuntary context switches (/proc/.../status) of the
 *                 consumer and of every broker thread while the ARM phase's
 *                 timers fire: a preempted poller or consumer shows up as a
 *                 burst of late timers. The kernel's hrtimer "hangs" over
 *                 all CPUs (/proc/timer_list nr_hangs: an hrtimer interrupt
 *                 that could not catch up with expired timers and pushed the
 *                 next interrupt out) over the same span. Other tasks' CPU
 *                 and steal (/proc/stat) per measurement.
 *
 * Placement (--cores C,B, default 0,1): the consumer on core C, oneringd's
 * poller on core B (--cores B) and its control thread on C (--control-core
 * C: it only serves setup). The timerfd and wheel peers run with core B
 * idle: the broker is started for each onering measurement and stopped
 * after it.
 *
 * Exit status: 0 when every timer of every peer fired exactly once, on
 * time or late, and no cancelled timer fired (targets missed are figures,
 * not failures); 1 on a correctness failure (a timer never fired, fired
 * twice, fired early, fired after it was cancelled); 2 on a usage or setup
 * error, or when the machine disturbed one measurement 3 times in a row;
 * 130 when interrupted. The broker is stopped (SIGTERM, then SIGKILL
 * after 5 s) and its directory removed on every path.
 *
 * Single-threaded: the broker is another process; nothing here is shared
 * between threads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/onering.h"
#include "shm/atomic.h"
#include "shm/proto.h"
#include "tools/bench_common.h"

#ifndef ONERINGD_PATH
#error "ONERINGD_PATH must name the oneringd binary to start"
#endif

#define BENCH_MAX_ROUNDS 100u
#define BENCH_MIN_TIMERS 1u
#define BENCH_MAX_TIMERS 200000u
#define BENCH_BATCH 256u                  /* records / epoll events per call */
#define BENCH_LOST_NS 2000000000ull        /* a timer this late never fired */
#define BENCH_CANCEL_GRACE_NS 20000000ull  /* watch this long past a cancelled expiry */
#define BENCH_WAIT_SLICE_NS 20000000ull    /* wake at least this often to check */
#define BENCH_RING_FULL_NS 1000000000ull   /* submission ring full this long: broker stuck */
#define BENCH_NEVER UINT64_MAX              /* expected expiry of a cancelled timer */
#define BENCH_QUIET_NS 5000000ull           /* quiet before the ARM pass */
#define BENCH_LEAD_NS 20000000ull           /* re-arm, cancel: old expiries' lead */
#define BENCH_MAX_RETRIES 3u                /* disturbed measurements repeated */

#define WHEEL_SLOTS 1024u                   /* a power of two */
#define WHEEL_TICK_NS 1000000ull            /* 1 ms per slot */
#define WHEEL_NIL UINT32_MAX

enum status {
	ST_OK = 0,
	ST_WRONG = 1,  /* a correctness failure */
	ST_SETUP = 2,  /* usage or setup error */
	ST_INTR = 130, /* interrupted */
	ST_RETRY = -1, /* the machine disturbed the measurement: run it again */
};

/* ---------------------------------------------------------------------- */
/* Peers and options.                                                      */

enum peer {
	PEER_ONERING,
	PEER_ONERING_BUSY,
	PEER_TIMERFD,
	PEER_WHEEL,
	PEER_NR,
};

static const char *const peer_names[PEER_NR] = {
	[PEER_ONERING] = "onering",
	[PEER_ONERING_BUSY] = "onering-busy",
	[PEER_TIMERFD] = "timerfd",
	[PEER_WHEEL] = "wheel",
};

static bool peer_is_onering(enum peer p)
{
	return p == PEER_ONERING || p == PEER_ONERING_BUSY;
}

struct bench_opts {
	unsigned rounds;
	unsigned timers;
	uint64_t first_ns;  /* earliest expiry after the pass starts */
	uint64_t spread_ns; /* expiries spread over [first, first + spread) */
	uint32_t sq_capacity; /* 0: the smallest power of two >= timers */
	int core_consumer;
	int core_broker;
	bool peers[PEER_NR];
	bool count_syscalls;
	bool quick;
};

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s [options]\n"
		"\n"
		"Arming and firing N one-shot timers: onering's broker-side timers\n"
		"(onering_timer_arm through the submission ring) against one timerfd per\n"
		"timer and against a consumer-side hashed wheel over one timerfd, in one run.\n"
		"Per peer and round: arm N (timed), wait until each fired exactly once\n"
		"(lateness vs the intended expiry), re-arm N armed timers (timed), cancel N\n"
		"armed timers (timed; none may fire). Prints medians over rounds and the\n"
		"ratio onering arms/s / timerfd arms/s against the 10x target.\n"
		"Run as root to count syscalls per timer (perf_event_open on the tracepoint\n"
		"raw_syscalls:sys_enter, in one extra round).\n"
		"\n"
		"Options:\n"
		"  --timers N        timers per peer (default 10000)\n"
		"  --rounds R        interleaved rounds (default 5)\n"
		"  --first-ms MS     earliest expiry, ms after the arming pass starts\n"
		"                    (default 100: after the slowest pass)\n"
		"  --spread-ms MS    expiries spread evenly over this many ms (default 50)\n"
		"  --sq-capacity N   onering submission ring slots, a power of two (default:\n"
		"                    the smallest >= N; with fewer a pass fills the ring and\n"
		"                    arming retries at the broker's pace)\n"
		"  --peers LIST      peers to run (default all): onering,onering-busy,\n"
		"                    timerfd,wheel\n"
		"  --cores C,B       consumer core C (also oneringd's control thread), oneringd\n"
		"                    poller core B (default 0,1)\n"
		"  --no-count        no syscall-counting round\n"
		"  --quick           smoke run for CI: N = 2000, 2 rounds (unless given)\n"
		"  --help            print this and exit\n"
		"\n"
		"Exit status: 0 when every timer fired exactly once, never early, and no\n"
		"cancelled timer fired (a missed target is a figure, not a failure); 1 on\n"
		"a correctness failure; 2 on a usage or setup error, or when the machine\n"
		"disturbed one measurement 3 times in a row; 130 when interrupted.\n",
		prog);
}

static int parse_peer_list(const char *s, struct bench_opts *o)
{
	return bench_parse_names(s, peer_names, PEER_NR, o->peers);
}

static int parse_cores(const char *s, struct bench_opts *o)
{
	long v[2];
	char *end;

	for (int i = 0; i < 2; i++) {
		errno = 0;
		v[i] = strtol(s, &end, 10);
		if (errno || end == s || v[i] < 0 || v[i] >= CPU_SETSIZE)
			return -EINVAL;
		if ((i == 0 && *end != ',') || (i == 1 && *end != '\0'))
			return -EINVAL;
		s = end + 1;
	}
	o->core_consumer = (int)v[0];
	o->core_broker = (int)v[1];
	return 0;
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	enum { OPT_TIMERS = 256, OPT_ROUNDS, OPT_FIRST, OPT_SPREAD, OPT_SQ, OPT_PEERS,
	       OPT_CORES, OPT_NO_COUNT, OPT_QUICK, OPT_HELP };
	static const struct option longopts[] = {
		{ "timers", required_argument, NULL, OPT_TIMERS },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "first-ms", required_argument, NULL, OPT_FIRST },
		{ "spread-ms", required_argument, NULL, OPT_SPREAD },
		{ "sq-capacity", required_argument, NULL, OPT_SQ },
		{ "peers", required_argument, NULL, OPT_PEERS },
		{ "cores", required_argument, NULL, OPT_CORES },
		{ "no-count", no_argument, NULL, OPT_NO_COUNT },
		{ "quick", no_argument, NULL, OPT_QUICK },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool set_rounds = false, set_timers = false;
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->rounds = 5;
	o->timers = 10000;
	o->first_ns = 100000000ull;
	o->spread_ns = 50000000ull;
	o->sq_capacity = 0;
	o->core_consumer = 0;
	o->core_broker = 1;
	o->count_syscalls = true;
	for (int p = 0; p < PEER_NR; p++)
		o->peers[p] = true;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_TIMERS:
			if (bench_parse_u64(optarg, BENCH_MIN_TIMERS, BENCH_MAX_TIMERS, &v)) {
				fprintf(stderr, "--timers: want %u..%u, got '%s'\n",
					BENCH_MIN_TIMERS, BENCH_MAX_TIMERS, optarg);
				return -EINVAL;
			}
			o->timers = (unsigned)v;
			set_timers = true;
			break;
		case OPT_ROUNDS:
			if (bench_parse_u64(optarg, 1, BENCH_MAX_ROUNDS, &v)) {
				fprintf(stderr, "--rounds: want 1..%u, got '%s'\n", BENCH_MAX_ROUNDS,
					optarg);
				return -EINVAL;
			}
			o->rounds = (unsigned)v;
			set_rounds = true;
			break;
		case OPT_FIRST:
			if (bench_parse_u64(optarg, 1, 10000, &v)) {
				fprintf(stderr, "--first-ms: want 1..10000, got '%s'\n", optarg);
				return -EINVAL;
			}
			o->first_ns = v * 1000000ull;
			break;
		case OPT_SPREAD:
			if (bench_parse_u64(optarg, 0, 10000, &v)) {
				fprintf(stderr, "--spread-ms: want 0..10000, got '%s'\n", optarg);
				return -EINVAL;
			}
			o->spread_ns = v * 1000000ull;
			break;
		case OPT_SQ:
			if (bench_parse_u64(optarg, 64, 1u << 20, &v) || (v & (v - 1))) {
				fprintf(stderr, "--sq-capacity: want a power of two in 64..2^20\n");
				return -EINVAL;
			}
			o->sq_capacity = (uint32_t)v;
			break;
		case OPT_PEERS:
			if (parse_peer_list(optarg, o)) {
				fprintf(stderr, "--peers: unknown peer in '%s' (see --help)\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_CORES:
			if (parse_cores(optarg, o)) {
				fprintf(stderr, "--cores: want two core ids C,B, got '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_NO_COUNT:
			o->count_syscalls = false;
			break;
		case OPT_QUICK:
			o->quick = true;
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
			o->rounds = 2;
		if (!set_timers)
			o->timers = 2000;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Small helpers (clocks, pinning: bench_common.h).                       */

static int fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line on stderr, prefixed with the program's name; returns status. */
static int fail(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "onering-bench-timers: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

static int disturbed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The machine stalled us past a phase's lead: say so, run it again. */
static int disturbed(const char *fmt, ...)
{
	va_list ap;

	printf("  (disturbed: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("; repeating the measurement)\n");
	return ST_RETRY;
}

/* Largest value >= 0; -1 when none. */
static double maximum(const double *v, unsigned n)
{
	double m = -1;

	for (unsigned i = 0; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

/* A random permutation of 0..n-1 (xorshift64*, seeded: the same for every
 * peer of a round). */
static void permute(uint32_t *v, unsigned n, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (unsigned i = 0; i < n; i++)
		v[i] = i;
	for (unsigned i = n; i > 1; i--) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		uint32_t j = (uint32_t)((x * 0x2545f4914f6cdd1dull) >> 32) % i;
		uint32_t t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* Write syscalls of the calling thread so far (/proc/thread-self/io syscw);
 * -1 when the kernel does not account them. */
static int64_t thread_write_calls(void)
{
	char line[128];
	long long v = -1;
	FILE *f = fopen("/proc/thread-self/io", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "syscw: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* ---------------------------------------------------------------------- */
/* Syscall counting: perf_event_open on raw_syscalls:sys_enter.            */

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

static void find_sys_enter(void)
{
	sys_enter_id = read_tracepoint_id("/sys/kernel/tracing");
	if (sys_enter_id < 0)
		sys_enter_id = read_tracepoint_id("/sys/kernel/debug/tracing");
	if (sys_enter_id < 0)
		snprintf(sys_enter_why, sizeof(sys_enter_why),
			 "no raw_syscalls/sys_enter/id under /sys/kernel/tracing or "
			 "/sys/kernel/debug/tracing (mount tracefs, run as root)");
}

/* A counter of the syscalls the calling thread enters; -errno if it cannot. */
static int syscall_counter_open(void)
{
	struct perf_event_attr a;

	if (sys_enter_id < 0)
		return -ENOTSUP;
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof(a);
	a.config = (uint64_t)sys_enter_id;
	int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* The count; the read() that takes it is itself counted (callers subtract
 * the calibrated cost of one read, syscall_read_cost). */
static uint64_t syscall_counter_read(int fd)
{
	uint64_t v = 0;

	if (fd < 0 || read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

static uint64_t syscall_read_cost;

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

/* Busy time of everything but us (ours_ns: this process and the broker),
 * and steal, percent of all CPUs; -1 if unknown. */
static void cpu_noise(const struct cpu_sample *a, const struct cpu_sample *b, uint64_t ours_ns,
		      double *others_pct, double *steal_pct)
{
	double hz = (double)sysconf(_SC_CLK_TCK);
	double cpus = (double)sysconf(_SC_NPROCESSORS_ONLN);
	double span = (double)(b->wall_ns - a->wall_ns) / 1e9 * hz * cpus;

	*others_pct = *steal_pct = -1;
	if (!a->ok || !b->ok || span <= 0)
		return;
	double busy = (double)(b->busy - a->busy) - (double)ours_ns / 1e9 * hz;
	*others_pct = busy > 0 ? 100.0 * busy / span : 0;
	*steal_pct = 100.0 * (double)(b->steal - a->steal) / span;
}

/* ---------------------------------------------------------------------- */
/* The broker child: started per onering measurement, stopped by pid.      */

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
 * fork/exec oneringd --foreground, wait (10 s at most) for its ready byte on
 * fd 3. busy: --idle-sleep-ms -1 (the poller never sleeps).
 */
static int broker_start(struct broker_proc *b, const struct bench_opts *o, bool busy,
			unsigned max_subs)
{
	struct bench_argv a = { .argc = 0 };
	const char *call;
	int e;

	memset(b, 0, sizeof(*b));
	b->pid = -1;
	snprintf(b->name, sizeof(b->name), "bench-timers-%d", (int)getpid());
	snprintf(b->dir, sizeof(b->dir), "/tmp/onering-bench-timers-XXXXXX");
	if (!mkdtemp(b->dir)) {
		e = errno;
		b->dir[0] = '\0';
		return fail(ST_SETUP, "mkdtemp: %s", strerror(e));
	}
	snprintf(b->log, sizeof(b->log), "%s/oneringd.log", b->dir);

	bench_arg(&a, "%s", ONERINGD_PATH);
	bench_broker_args(&a, b->name, b->dir);
	bench_arg(&a, "--cores");
	bench_arg(&a, "%d", o->core_broker);
	bench_arg(&a, "--control-core");
	bench_arg(&a, "%d", o->core_consumer);
	bench_arg(&a, "--max-subs");
	bench_arg(&a, "%u", max_subs);
	if (busy) {
		bench_arg(&a, "--idle-sleep-ms");
		bench_arg(&a, "-1");
	}

	e = bench_broker_spawn(&b->pid, b->log, &a, &call);
	if (e == -EIO) {
		bench_broker_dump_log(b->log);
		broker_stop(b);
		return interrupted ? ST_INTR
				   : fail(ST_SETUP, "oneringd (%s) did not become ready",
					  ONERINGD_PATH);
	}
	if (e < 0) {
		broker_stop(b);
		return fail(ST_SETUP, "%s: %s", call, strerror(-e));
	}
	return ST_OK;
}

/* If the broker exited, say how, show its log and forget its pid. */
static bool broker_exited(struct broker_proc *b)
{
	return b->pid <= 0 || bench_broker_reap(&b->pid, b->log);
}

/* The kernel's hrtimer hang count, all CPUs (/proc/timer_list); -1 if
 * unknown. Read it with few timers armed: the file lists every one. */
static int64_t hrtimer_hangs(void)
{
	char line[256];
	long long v, sum = 0;
	bool any = false;
	FILE *f = fopen("/proc/timer_list", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " .nr_hangs : %lld", &v) == 1) {
			sum += v;
			any = true;
		}
	fclose(f);
	return any ? sum : -1;
}

/* Involuntary context switches of a status file's task; 0 if unknown. */
static uint64_t status_nvcsw(const char *path)
{
	char line[128];
	unsigned long long v = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Involuntary context switches (preemptions) of every broker thread. */
static uint64_t broker_nvcsw(const struct broker_proc *b)
{
	char path[128], p2[400];
	struct dirent *e;
	uint64_t sum = 0;
	DIR *d;

	if (b->pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)b->pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p2, sizeof(p2), "%s/%s/status", path, e->d_name);
		sum += status_nvcsw(p2);
	}
	closedir(d);
	return sum;
}

/* The pollers' kicks and sleeps (summed), from a STATS request on the
 * control socket. Returns 0 or a negative errno (then both are 0). */
static int broker_poller_counters(const struct broker_proc *b, uint64_t *kicks,
				  uint64_t *sleeps)
{
	char path[256], err[256];
	struct onering_msg m;
	int sock, r;

	*kicks = *sleeps = 0;
	r = onering_socket_path(b->name, b->dir, path, sizeof(path));
	if (r < 0)
		return r;
	r = onering_proto_connect(path, b->name, -1, &sock, NULL, err, sizeof(err));
	if (r < 0)
		return r;
	onering_msg_init(&m, ONERING_MSG_STATS, 1);
	r = onering_msg_send(sock, &m, NULL, 0, 0);
	while (r == 0) {
		r = onering_msg_recv_timeout(sock, &m, NULL, 0, NULL, 2000);
		if (r < 0)
			break;
		if (m.type == (ONERING_MSG_STATS_END | ONERING_MSG_REPLY) ||
		    m.type == ONERING_MSG_STATS_END) {
			r = m.status;
			break;
		}
		if ((m.type & ~ONERING_MSG_REPLY) == ONERING_MSG_STATS_ITEM &&
		    m.u.stats_item.what == ONERING_STATS_POLLER) {
			*kicks += m.u.stats_item.counter[ONERING_PC_KICKS];
			*sleeps += m.u.stats_item.counter[ONERING_PC_SLEEPS];
		}
	}
	close(sock);
	return r;
}

/* ---------------------------------------------------------------------- */
/* The consumer's own timer wheel over one timerfd.                        */

struct wheel_entry {
	uint64_t expiry_ns;
	uint32_t next, prev;
	uint32_t slot; /* WHEEL_NIL when not in the wheel */
};

struct wheel {
	struct wheel_entry *e;      /* one per timer */
	uint32_t head[WHEEL_SLOTS]; /* slot lists */
	uint64_t tick;              /* ticks before this one are done */
	uint64_t armed_ns;          /* the timerfd's expiry; 0 = not armed */
	unsigned count;             /* timers in the wheel */
	int tfd, epfd;
	uint64_t settimes;          /* timerfd_settime calls */
	uint64_t wakes, idle_wakes; /* timerfd wakes; those that popped nothing */
};

static int wheel_arm_fd(struct wheel *w, uint64_t expiry_ns)
{
	struct itimerspec its = { .it_interval = { 0, 0 }, .it_value = bench_ns_to_ts(expiry_ns) };

	w->settimes++;
	if (timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return -errno;
	w->armed_ns = expiry_ns;
	return 0;
}

static inline void wheel_remove(struct wheel *w, uint32_t i)
{
	struct wheel_entry *e = &w->e[i];

	if (e->slot == WHEEL_NIL)
		return;
	if (e->prev != WHEEL_NIL)
		w->e[e->prev].next = e->next;
	else
		w->head[e->slot] = e->next;
	if (e->next != WHEEL_NIL)
		w->e[e->next].prev = e->prev;
	e->slot = WHEEL_NIL;
	w->count--;
}

/* Insert timer i at expiry_ns; re-arm the timerfd if it becomes the first. */
static inline int wheel_insert(struct wheel *w, uint32_t i, uint64_t expiry_ns)
{
	struct wheel_entry *e = &w->e[i];
	uint64_t t = expiry_ns / WHEEL_TICK_NS;

	if (t < w->tick)
		t = w->tick; /* already due: the slot being worked on */
	e->expiry_ns = expiry_ns;
	e->slot = (uint32_t)(t & (WHEEL_SLOTS - 1));
	e->prev = WHEEL_NIL;
	e->next = w->head[e->slot];
	if (e->next != WHEEL_NIL)
		w->e[e->next].prev = i;
	w->head[e->slot] = i;
	w->count++;
	if (w->armed_ns == 0 || expiry_ns < w->armed_ns)
		return wheel_arm_fd(w, expiry_ns);
	return 0;
}

/* Pop every timer due at now into due[]; returns how many. */
static unsigned wheel_expire(struct wheel *w, uint64_t now, uint32_t *due)
{
	uint64_t nt = now / WHEEL_TICK_NS, from = w->tick;
	unsigned k = 0;

	if (nt >= from + WHEEL_SLOTS)
		from = nt - WHEEL_SLOTS + 1; /* one revolution covers every slot */
	for (uint64_t t = from; t <= nt; t++) {
		uint32_t s = (uint32_t)(t & (WHEEL_SLOTS - 1));
		for (uint32_t i = w->head[s], next; i != WHEEL_NIL; i = next) {
			next = w->e[i].next;
			if (w->e[i].expiry_ns <= now) {
				wheel_remove(w, i);
				due[k++] = i;
			}
		}
	}
	if (nt > w->tick)
		w->tick = nt;
	return k;
}

/* The earliest expiry in the wheel, or 0 when it is empty. */
static uint64_t wheel_next(const struct wheel *w)
{
	uint64_t best = UINT64_MAX;

	if (w->count == 0)
		return 0;
	for (uint64_t t = w->tick; t < w->tick + WHEEL_SLOTS; t++) {
		uint64_t limit = (t + 1) * WHEEL_TICK_NS; /* this revolution's */
		for (uint32_t i = w->head[t & (WHEEL_SLOTS - 1)]; i != WHEEL_NIL; i = w->e[i].next)
			if (w->e[i].expiry_ns < limit && w->e[i].expiry_ns < best)
				best = w->e[i].expiry_ns;
		if (best != UINT64_MAX)
			return best;
	}
	/* Everything is more than a revolution away: look at all of it. */
	for (uint32_t s = 0; s < WHEEL_SLOTS; s++)
		for (uint32_t i = w->head[s]; i != WHEEL_NIL; i = w->e[i].next)
			if (w->e[i].expiry_ns < best)
				best = w->e[i].expiry_ns;
	return best;
}

/* ---------------------------------------------------------------------- */
/* One peer's timers, and the phases run on them.                          */

struct timer_peer {
	enum peer peer;
	unsigned n;
	const struct bench_opts *o;
	/* onering */
	struct broker_proc broker;
	struct onering *att;
	struct onering_queue *q;
	struct onering_sub *subs; /* n + 1: [n] is the sentinel */
	struct onering_event *evs;
	uint64_t eagain, ring_full, yields; /* retries; arms that met a full ring */
	/* timerfd */
	int *tfds;
	int epfd;
	struct epoll_event *eevs;
	/* wheel */
	struct wheel w;
	uint32_t *due;
	/* what fired in the current phase */
	uint64_t *seen_ns;  /* consumer's receipt time, 0 = not yet */
	uint64_t *stamp_ns; /* onering: the record's timestamp_ns */
	unsigned fired;
	bool sentinel_seen;
	uint64_t sentinel_stamp_ns;
};

/* What a phase expects of the timers while it collects. */
struct expect {
	const char *phase;
	const uint64_t *expiry; /* per timer: intended expiry, or BENCH_NEVER */
	uint64_t deadline_ns;   /* give up (or, until_deadline, stop) here */
	unsigned want;          /* timers that must fire */
	bool want_sentinel;     /* onering: also wait for the sentinel's record */
	bool until_deadline;    /* keep watching until the deadline */
	const uint64_t *old_expiry; /* re-arm, cancel: per timer, the expiry the
				     * timed pass replaced; NULL otherwise */
};

static void phase_reset(struct timer_peer *p)
{
	memset(p->seen_ns, 0, p->n * sizeof(*p->seen_ns));
	memset(p->stamp_ns, 0, p->n * sizeof(*p->stamp_ns));
	p->fired = 0;
	p->sentinel_seen = false;
	p->sentinel_stamp_ns = 0;
}

/* One timer handed to the consumer at now (stamp: the broker's, or 0). */
static int take_fire(struct timer_peer *p, const struct expect *x, uint32_t idx, uint64_t now,
		     uint64_t stamp, uint64_t expirations)
{
	if (idx >= p->n)
		return fail(ST_WRONG, "%s: %s phase: a timer with index %u, of %u", peer_names[p->peer],
			    x->phase, idx, p->n);
	if (expirations != 1)
		return fail(ST_WRONG, "%s: %s phase: timer %u reported %" PRIu64
			    " expirations at once (one-shot: 1)",
			    peer_names[p->peer], x->phase, idx, expirations);
	uint64_t exp = x->expiry[idx];
	bool stale = exp == BENCH_NEVER || now < exp || (stamp && stamp < exp);
	/* onering: a timer that fires at its old expiry before the sentinel
	 * says the pass was applied met a stalled broker, not a bug. */
	if (stale && x->old_expiry && peer_is_onering(p->peer) && !p->sentinel_seen &&
	    stamp >= x->old_expiry[idx])
		return disturbed("%s: %s phase: timer %u fired at its old expiry before the broker "
				 "applied the timed pass", peer_names[p->peer], x->phase, idx);
	if (exp == BENCH_NEVER)
		return fail(ST_WRONG, "%s: %s phase: timer %u fired after it was cancelled",
			    peer_names[p->peer], x->phase, idx);
	if (p->seen_ns[idx])
		return fail(ST_WRONG, "%s: %s phase: timer %u fired twice (%.3f ms apart)",
			    peer_names[p->peer], x->phase, idx,
			    (double)(now - p->seen_ns[idx]) / 1e6);
	if (stale) {
		uint64_t at = stamp && stamp < now ? stamp : now;
		return fail(ST_WRONG, "%s: %s phase: timer %u fired %.3f ms before its expiry%s",
			    peer_names[p->peer], x->phase, idx, (double)(exp - at) / 1e6,
			    x->old_expiry ? " (at an old expiry the re-arm should have replaced)"
					  : "");
	}
	p->seen_ns[idx] = now;
	p->stamp_ns[idx] = stamp;
	p->fired++;
	return ST_OK;
}

static bool collect_done(const struct timer_peer *p, const struct expect *x)
{
	return !x->until_deadline && p->fired >= x->want &&
	       (!x->want_sentinel || p->sentinel_seen);
}

static int collect_onering(struct timer_peer *p, const struct expect *x)
{
	while (!collect_done(p, x)) {
		uint64_t now = bench_now_ns();
		if (interrupted)
			return ST_INTR;
		if (now >= x->deadline_ns)
			break;
		uint64_t left = x->deadline_ns - now;
		int r = onering_wait(p->q, p->evs, 1, BENCH_BATCH,
				     (int64_t)(left < BENCH_WAIT_SLICE_NS ? left : BENCH_WAIT_SLICE_NS));
		if (r == -EINTR)
			continue;
		if (r < 0) {
			broker_exited(&p->broker);
			return fail(ST_SETUP, "%s: onering_wait: %s", peer_names[p->peer],
				    onering_strerror(r));
		}
		uint64_t t = bench_now_ns();
		for (int i = 0; i < r; i++) {
			const struct onering_event *e = &p->evs[i];
			if (e->kind != ONERING_EV_TIMER)
				return fail(ST_WRONG, "%s: a record of kind %u (cookie %" PRIu64
					    "), not a timer",
					    peer_names[p->peer], e->kind, e->cookie);
			if (e->cookie > p->n || e->sub_id != p->subs[e->cookie].id ||
			    e->sub_gen != p->subs[e->cookie].gen)
				return fail(ST_WRONG, "%s: a timer record with cookie %" PRIu64
					    " and subscription %u/%u: not one of ours",
					    peer_names[p->peer], e->cookie, e->sub_id, e->sub_gen);
			if (e->cookie == p->n) {
				if (p->sentinel_seen)
					return fail(ST_WRONG, "%s: the sentinel timer fired twice",
						    peer_names[p->peer]);
				p->sentinel_seen = true;
				p->sentinel_stamp_ns = e->timestamp_ns;
				continue;
			}
			int s = take_fire(p, x, (uint32_t)e->cookie, t, e->timestamp_ns,
					  e->payload.timer.expirations);
			if (s)
				return s;
		}
	}
	return ST_OK;
}

static int collect_timerfd(struct timer_peer *p, const struct expect *x)
{
	while (!collect_done(p, x)) {
		uint64_t now = bench_now_ns();
		if (interrupted)
			return ST_INTR;
		if (now >= x->deadline_ns)
			break;
		uint64_t left = x->deadline_ns - now;
		struct timespec tmo = bench_ns_to_ts(left < BENCH_WAIT_SLICE_NS ? left : BENCH_WAIT_SLICE_NS);
		int r = epoll_pwait2(p->epfd, p->eevs, (int)BENCH_BATCH, &tmo, NULL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail(ST_SETUP, "timerfd: epoll_pwait2: %s", strerror(errno));
		uint64_t t = bench_now_ns();
		for (int i = 0; i < r; i++) {
			uint32_t idx = p->eevs[i].data.u32;
			uint64_t v = 0;
			if (idx >= p->n)
				return fail(ST_WRONG, "timerfd: epoll returned index %u", idx);
			ssize_t got = read(p->tfds[idx], &v, sizeof(v));
			if (got < 0 && errno == EAGAIN)
				continue; /* re-armed or disarmed after epoll saw it */
			if (got != (ssize_t)sizeof(v))
				return fail(ST_SETUP, "timerfd: read timer %u: %s", idx,
					    got < 0 ? strerror(errno) : "short read");
			int s = take_fire(p, x, idx, t, 0, v);
			if (s)
				return s;
		}
	}
	return ST_OK;
}

static int collect_wheel(struct timer_peer *p, const struct expect *x)
{
	struct wheel *w = &p->w;

	while (!collect_done(p, x)) {
		uint64_t now = bench_now_ns();
		if (interrupted)
			return ST_INTR;
		if (now >= x->deadline_ns)
			break;
		uint64_t left = x->deadline_ns - now;
		struct timespec tmo = bench_ns_to_ts(left < BENCH_WAIT_SLICE_NS ? left : BENCH_WAIT_SLICE_NS);
		struct epoll_event ev;
		int r = epoll_pwait2(w->epfd, &ev, 1, &tmo, NULL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail(ST_SETUP, "wheel: epoll_pwait2: %s", strerror(errno));
		if (r == 0)
			continue;
		uint64_t v;
		ssize_t got = read(w->tfd, &v, sizeof(v));
		if (got < 0 && errno != EAGAIN)
			return fail(ST_SETUP, "wheel: read timerfd: %s", strerror(errno));
		w->wakes++;
		w->armed_ns = 0; /* it fired: one-shot */
		uint64_t t = bench_now_ns();
		unsigned k = wheel_expire(w, t, p->due);
		if (k == 0)
			w->idle_wakes++;
		for (unsigned i = 0; i < k; i++) {
			int s = take_fire(p, x, p->due[i], t, 0, 1);
			if (s)
				return s;
		}
		uint64_t next = wheel_next(w);
		if (next) {
			int e = wheel_arm_fd(w, next);
			if (e < 0)
				return fail(ST_SETUP, "wheel: timerfd_settime: %s", strerror(-e));
		}
	}
	return ST_OK;
}

/* Collect until the phase's expectations are met or its deadline passed;
 * then check that every timer that had to fire did. */
static int collect(struct timer_peer *p, const struct expect *x)
{
	int s;

	switch (p->peer) {
	case PEER_ONERING:
	case PEER_ONERING_BUSY:
		s = collect_onering(p, x);
		break;
	case PEER_TIMERFD:
		s = collect_timerfd(p, x);
		break;
	default:
		s = collect_wheel(p, x);
		break;
	}
	if (s)
		return s;
	if (x->want_sentinel && !p->sentinel_seen)
		return fail(ST_WRONG, "%s: %s phase: the sentinel timer (armed in the past) never "
			    "fired", peer_names[p->peer], x->phase);
	if (p->fired < x->want) {
		unsigned shown = 0;
		fprintf(stderr, "onering-bench-timers: %s: %s phase: %u of %u timers never fired "
			"(waited %.1f s past the last expiry); first missing:",
			peer_names[p->peer], x->phase, x->want - p->fired, x->want,
			(double)BENCH_LOST_NS / 1e9);
		for (unsigned i = 0; i < p->n && shown < 8; i++)
			if (!p->seen_ns[i] && x->expiry[i] != BENCH_NEVER) {
				fprintf(stderr, " %u", i);
				shown++;
			}
		fputc('\n', stderr);
		return ST_WRONG;
	}
	return ST_OK;
}

/* onering_timer_arm, retrying while the submission ring is full (bounded). */
static inline int onering_arm_one(struct timer_peer *p, uint32_t i, uint64_t value_ns,
				  unsigned flags)
{
	int r = onering_timer_arm(p->q, p->subs[i], value_ns, 0, flags);
	if (ONERING_LIKELY(r != -EAGAIN))
		return r;
	uint64_t start = bench_now_ns();
	p->ring_full++;
	for (unsigned tries = 1;; tries++) {
		p->eagain++;
		if ((tries & 1023) == 0) {
			if (interrupted)
				return -EINTR;
			if (bench_now_ns() - start > BENCH_RING_FULL_NS)
				return -ETIMEDOUT;
			/* The broker's poller may share this core. */
			if (p->o->core_broker == p->o->core_consumer) {
				p->yields++;
				sched_yield();
			}
		}
		onering_cpu_relax();
		r = onering_timer_arm(p->q, p->subs[i], value_ns, 0, flags);
		if (r != -EAGAIN)
			return r;
	}
}

/* The timed loop of every phase: arm timer i at expiry[i] (absolute,
 * CLOCK_MONOTONIC) for i in 0..n-1, or disarm them all when expiry is NULL. */
static int arm_pass(struct timer_peer *p, const uint64_t *expiry)
{
	unsigned n = p->n;

	switch (p->peer) {
	case PEER_ONERING:
	case PEER_ONERING_BUSY:
		for (uint32_t i = 0; i < n; i++) {
			int r = onering_arm_one(p, i, expiry ? expiry[i] : 0,
						expiry ? ONERING_TIMER_ABS : 0);
			if (ONERING_UNLIKELY(r < 0)) {
				if (r == -EINTR)
					return ST_INTR;
				return fail(ST_SETUP, "%s: onering_timer_arm(timer %u): %s%s",
					    peer_names[p->peer], i, onering_strerror(r),
					    r == -ETIMEDOUT ? " (the submission ring stayed full "
							      "for 1 s: broker stuck)"
							    : "");
			}
		}
		return ST_OK;
	case PEER_TIMERFD:
		for (uint32_t i = 0; i < n; i++) {
			struct itimerspec its = { .it_interval = { 0, 0 },
						  .it_value = { 0, 0 } };
			if (expiry)
				its.it_value = bench_ns_to_ts(expiry[i]);
			if (ONERING_UNLIKELY(timerfd_settime(p->tfds[i], TFD_TIMER_ABSTIME, &its,
							     NULL) < 0))
				return fail(ST_SETUP, "timerfd_settime(timer %u): %s", i,
					    strerror(errno));
		}
		return ST_OK;
	default:
		for (uint32_t i = 0; i < n; i++) {
			wheel_remove(&p->w, i);
			if (expiry) {
				int e = wheel_insert(&p->w, i, expiry[i]);
				if (ONERING_UNLIKELY(e < 0))
					return fail(ST_SETUP, "wheel: timerfd_settime: %s",
						    strerror(-e));
			}
		}
		return ST_OK;
	}
}

/* onering: arm the sentinel at an absolute time in the past. The poller
 * applies requests in order, so its record follows every request before it. */
static int arm_sentinel(struct timer_peer *p)
{
	if (!peer_is_onering(p->peer))
		return ST_OK;
	int r = onering_arm_one(p, p->n, 1, ONERING_TIMER_ABS);
	if (r == -EINTR)
		return ST_INTR;
	if (r < 0)
		return fail(ST_SETUP, "%s: arming the sentinel: %s", peer_names[p->peer],
			    onering_strerror(r));
	return ST_OK;
}

static void peer_teardown(struct timer_peer *p)
{
	if (p->q)
		onering_queue_close(p->q);
	p->q = NULL;
	if (p->att)
		onering_detach(p->att);
	p->att = NULL;
	broker_stop(&p->broker);
	if (p->tfds) {
		for (unsigned i = 0; i < p->n; i++)
			if (p->tfds[i] >= 0)
				close(p->tfds[i]);
	}
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->w.tfd >= 0)
		close(p->w.tfd);
	if (p->w.epfd >= 0)
		close(p->w.epfd);
	free(p->subs);
	free(p->evs);
	free(p->tfds);
	free(p->eevs);
	free(p->w.e);
	free(p->due);
	free(p->seen_ns);
	free(p->stamp_ns);
	memset(p, 0, sizeof(*p));
	p->epfd = p->w.tfd = p->w.epfd = -1;
	p->broker.pid = -1;
}

static uint32_t pow2_at_least(uint64_t v)
{
	uint32_t c = 1;

	while (c < v)
		c <<= 1;
	return c;
}

/* Make the peer's N timers, disarmed (not measured). */
static int peer_setup(struct timer_peer *p, const struct bench_opts *o, enum peer peer)
{
	unsigned n = o->timers;
	int s;

	memset(p, 0, sizeof(*p));
	p->epfd = p->w.tfd = p->w.epfd = -1;
	p->broker.pid = -1;
	p->peer = peer;
	p->n = n;
	p->o = o;
	p->seen_ns = calloc(n, sizeof(*p->seen_ns));
	p->stamp_ns = calloc(n, sizeof(*p->stamp_ns));
	if (!p->seen_ns || !p->stamp_ns)
		return fail(ST_SETUP, "out of memory");

	if (peer_is_onering(peer)) {
		struct onering_attach_options ao;
		struct onering_queue_options qo;
		s = broker_start(&p->broker, o, peer == PEER_ONERING_BUSY,
				 n + 64 > 65536 ? pow2_at_least(n + 64) : 65536);
		if (s)
			return s;
		memset(&ao, 0, sizeof(ao));
		ao.name = p->broker.name;
		ao.socket_dir = p->broker.dir;
		int r = onering_attach_opts(&ao, &p->att);
		if (r < 0)
			return fail(ST_SETUP, "onering_attach: %s", onering_strerror(r));
		memset(&qo, 0, sizeof(qo));
		qo.capacity = pow2_at_least(2ull * (n + 1));
		if (qo.capacity < 16384)
			qo.capacity = 16384;
		qo.sq_capacity = o->sq_capacity ? o->sq_capacity : pow2_at_least(n + 1);
		if (qo.sq_capacity < 64)
			qo.sq_capacity = 64;
		r = onering_queue_open(p->att, &qo, &p->q);
		if (r < 0)
			return fail(ST_SETUP, "onering_queue_open(capacity %u, sq %u): %s",
				    qo.capacity, qo.sq_capacity, onering_strerror(r));
		p->subs = calloc(n + 1, sizeof(*p->subs));
		p->evs = calloc(BENCH_BATCH, sizeof(*p->evs));
		if (!p->subs || !p->evs)
			return fail(ST_SETUP, "out of memory");
		for (unsigned i = 0; i <= n; i++) {
			r = onering_timer_create(p->q, i, &p->subs[i]);
			if (r < 0)
				return fail(ST_SETUP, "onering_timer_create(%u): %s", i,
					    onering_strerror(r));
			if (interrupted)
				return ST_INTR;
		}
		return ST_OK;
	}
	if (peer == PEER_TIMERFD) {
		p->tfds = malloc(n * sizeof(*p->tfds));
		p->eevs = calloc(BENCH_BATCH, sizeof(*p->eevs));
		if (!p->tfds || !p->eevs)
			return fail(ST_SETUP, "out of memory");
		for (unsigned i = 0; i < n; i++)
			p->tfds[i] = -1;
		p->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (p->epfd < 0)
			return fail(ST_SETUP, "epoll_create1: %s", strerror(errno));
		for (unsigned i = 0; i < n; i++) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
			p->tfds[i] = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
			if (p->tfds[i] < 0)
				return fail(ST_SETUP, "timerfd_create (%u of %u): %s", i, n,
					    strerror(errno));
			if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->tfds[i], &ev) < 0)
				return fail(ST_SETUP, "epoll_ctl: %s", strerror(errno));
		}
		return ST_OK;
	}
	/* wheel */
	struct wheel *w = &p->w;
	w->e = malloc(n * sizeof(*w->e));
	p->due = malloc(n * sizeof(*p->due));
	if (!w->e || !p->due)
		return fail(ST_SETUP, "out of memory");
	for (unsigned i = 0; i < n; i++)
		w->e[i].slot = WHEEL_NIL;
	for (unsigned i = 0; i < WHEEL_SLOTS; i++)
		w->head[i] = WHEEL_NIL;
	w->tick = bench_now_ns() / WHEEL_TICK_NS;
	w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->tfd < 0 || w->epfd < 0)
		return fail(ST_SETUP, "wheel: timerfd_create/epoll_create1: %s", strerror(errno));
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tfd, &ev) < 0)
		return fail(ST_SETUP, "wheel: epoll_ctl: %s", strerror(errno));
	return ST_OK;
}

/* After the phases: nothing may be left to fire or to read. */
static int peer_check_quiet(struct timer_peer *p)
{
	if (peer_is_onering(p->peer)) {
		int r = onering_poll(p->q, p->evs, BENCH_BATCH);
		if (r < 0)
			return fail(ST_SETUP, "%s: onering_poll: %s", peer_names[p->peer],
				    onering_strerror(r));
		if (r > 0)
			return fail(ST_WRONG, "%s: %d record(s) left after the last phase (cookie "
				    "%" PRIu64 ")", peer_names[p->peer], r, p->evs[0].cookie);
	} else if (p->peer == PEER_TIMERFD) {
		int r = epoll_wait(p->epfd, p->eevs, (int)BENCH_BATCH, 0);
		if (r > 0)
			return fail(ST_WRONG, "timerfd: timer %u ready after the last phase",
				    p->eevs[0].data.u32);
	} else if (p->w.count) {
		return fail(ST_WRONG, "wheel: %u timers left in the wheel", p->w.count);
	}
	return ST_OK;
}

/*
 * Warm-up (setup, not measured): arm every timer 10 s ahead, then disarm it,
 * so that the timed passes find the memory they write touched (the
 * submission ring's fresh pages would otherwise fault in the first pass)
 * and every kernel or broker structure allocated.
 */
static int peer_warm(struct timer_peer *p, uint64_t *expiry)
{
	struct expect x;
	uint64_t t = bench_now_ns();
	int s;

	for (unsigned i = 0; i < p->n; i++)
		expiry[i] = t + 10000000000ull + i;
	phase_reset(p);
	s = arm_pass(p, expiry);
	if (s == ST_OK)
		s = arm_pass(p, NULL);
	if (s == ST_OK)
		s = arm_sentinel(p);
	if (s)
		return s;
	for (unsigned i = 0; i < p->n; i++)
		expiry[i] = BENCH_NEVER;
	memset(&x, 0, sizeof(x));
	x.phase = "warm-up";
	x.expiry = expiry;
	x.want_sentinel = peer_is_onering(p->peer);
	x.deadline_ns = bench_now_ns() + BENCH_LOST_NS;
	return peer_is_onering(p->peer) ? collect(p, &x) : ST_OK;
}

/* ---------------------------------------------------------------------- */
/* One measurement: one peer, one round, three phases.                     */

struct result {
	double arm_per_s, applied_per_s, rearm_per_s, cancel_per_s;
	double arm_cpu_ns;      /* consumer CPU per arm, arming loop */
	double arm_sc;          /* known syscalls per arm (see the header) */
	double eagain;          /* -EAGAIN returns during the ARM pass */
	double ring_full;       /* arms of the ARM pass that met a full ring */
	double kicks;           /* poller kicks during the ARM pass (+ sentinel) */
	double sleeps;          /* poller sleeps while the ARM phase's timers fired */
	double lat_p50, lat_p99, lat_max;       /* consumer lateness, ns */
	double stamp_p50, stamp_p99, stamp_max; /* broker stamp lateness, ns */
	double excluded;        /* timers left out of lateness (armed after due) */
	double cons_cpu_us;     /* consumer CPU per timer, ARM pass + firing */
	double broker_cpu_us;   /* broker CPU per timer, same span */
	double setup_ms;
	double wheel_wakes, wheel_idle_wakes;
	double sc_arm, sc_fire, sc_rearm, sc_cancel; /* counted round: per timer */
	double others_pct, steal_pct;
	double arm_pass_ms;
	double cons_preempt, broker_preempt; /* involuntary switches while ARM's timers fired */
	double hangs;           /* kernel hrtimer hangs, ARM pass + firing */
};

/* Lateness percentiles over the timers armed in time (expiry >= ready). */
static void lateness(struct timer_peer *p, const uint64_t *expiry, uint64_t ready_ns,
		     struct result *res)
{
	uint64_t *lat = malloc(p->n * sizeof(*lat)), *st = malloc(p->n * sizeof(*st));
	size_t m = 0, ms = 0;

	res->lat_p50 = res->lat_p99 = res->lat_max = -1;
	res->stamp_p50 = res->stamp_p99 = res->stamp_max = -1;
	if (!lat || !st) {
		free(lat);
		free(st);
		return;
	}
	for (unsigned i = 0; i < p->n; i++) {
		if (expiry[i] < ready_ns)
			continue;
		lat[m++] = p->seen_ns[i] - expiry[i];
		if (p->stamp_ns[i])
			st[ms++] = p->stamp_ns[i] - expiry[i];
	}
	res->excluded = (double)(p->n - m);
	qsort(lat, m, sizeof(*lat), bench_cmp_u64);
	qsort(st, ms, sizeof(*st), bench_cmp_u64);
	res->lat_p50 = bench_percentile(lat, m, 0.5);
	res->lat_p99 = bench_percentile(lat, m, 0.99);
	res->lat_max = m ? (double)lat[m - 1] : -1;
	res->stamp_p50 = bench_percentile(st, ms, 0.5);
	res->stamp_p99 = bench_percentile(st, ms, 0.99);
	res->stamp_max = ms ? (double)st[ms - 1] : -1;
	free(lat);
	free(st);
}

/* Expiries: base + first + spread * rank[i] / n. */
static void plan_expiries(uint64_t *expiry, const uint32_t *rank, unsigned n, uint64_t base,
			  uint64_t spread)
{
	for (unsigned i = 0; i < n; i++)
		expiry[i] = base + (uint64_t)((double)spread * (double)rank[i] / (double)n);
}

static uint64_t counter_delta(int fd, uint64_t before)
{
	uint64_t v = syscall_counter_read(fd) - before;
	return v > syscall_read_cost ? v - syscall_read_cost : 0;
}

static uint64_t min_u64(const uint64_t *v, unsigned n)
{
	uint64_t m = UINT64_MAX;

	for (unsigned i = 0; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static uint64_t max_u64(const uint64_t *v, unsigned n)
{
	uint64_t m = 0;

	for (unsigned i = 0; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

/*
 * onering: wait until the broker applied everything submitted so far (the
 * sentinel's record), checking that no timer fires early meanwhile. Then
 * the timed pass finds the poller awake and idle, not still draining.
 */
static int wait_applied(struct timer_peer *p, const uint64_t *expiry, const char *phase)
{
	struct expect x;
	int s;

	if (!peer_is_onering(p->peer))
		return ST_OK;
	s = arm_sentinel(p);
	if (s)
		return s;
	memset(&x, 0, sizeof(x));
	x.phase = phase;
	x.expiry = expiry;
	x.want_sentinel = true;
	x.deadline_ns = bench_now_ns() + BENCH_LOST_NS;
	s = collect(p, &x);
	if (s == ST_OK && p->fired)
		return disturbed("%s: %s phase: %u timers reached their expiry before the broker "
				 "applied the untimed pass", peer_names[p->peer], phase, p->fired);
	phase_reset(p);
	return s;
}

/*
 * Run the three phases on peer p. rank, rank2: the round's permutations.
 * count: the syscall-counting round (counter on this thread).
 */
static int run_phases(struct timer_peer *p, const struct bench_opts *o, const uint32_t *rank,
		      const uint32_t *rank2, bool count, struct result *res)
{
	unsigned n = p->n;
	uint64_t *exp = malloc(n * sizeof(*exp)), *exp2 = malloc(n * sizeof(*exp2));
	uint64_t *never = malloc(n * sizeof(*never));
	int cfd = -1, s = ST_OK;
	uint64_t c0 = 0;
	struct expect x;

	if (!exp || !exp2 || !never) {
		s = fail(ST_SETUP, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < n; i++)
		never[i] = BENCH_NEVER;
	if (count) {
		cfd = syscall_counter_open();
		if (cfd < 0) {
			s = fail(ST_SETUP, "perf_event_open(raw_syscalls:sys_enter): %s",
				 strerror(-cfd));
			goto out;
		}
	}

	s = peer_warm(p, exp);
	if (s)
		goto out;

	/* ---- ARM ---- */
	uint64_t kicks0 = 0, kicks1 = 0, sleeps0 = 0, sleeps1 = 0, sleeps2 = 0;
	bool have_stats = false;
	if (peer_is_onering(p->peer))
		have_stats = broker_poller_counters(&p->broker, &kicks0, &sleeps0) == 0;
	uint64_t eagain0 = p->eagain, full0 = p->ring_full, yields0 = p->yields;
	uint64_t settimes0 = p->w.settimes;
	uint64_t wakes0 = p->w.wakes, idle0 = p->w.idle_wakes;
	int64_t writes0 = thread_write_calls();
	uint64_t bcpu0 = bench_proc_cpu_ns(p->broker.pid, false);
	int64_t hangs0 = hrtimer_hangs();
	phase_reset(p);
	/* The burst comes after a quiet spell: the adaptive poller (idle
	 * spin 100 us) is asleep, so the pass pays for waking it. */
	bench_sleep_ns(BENCH_QUIET_NS);
	uint64_t cpu0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	uint64_t t0 = bench_now_ns();
	plan_expiries(exp, rank, n, t0 + o->first_ns, o->spread_ns);
	if (count)
		c0 = syscall_counter_read(cfd);
	uint64_t ta = bench_now_ns();
	s = arm_pass(p, exp);
	uint64_t tb = bench_now_ns();
	if (count)
		res->sc_arm = (double)counter_delta(cfd, c0) / n;
	uint64_t cpu1 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	int64_t writes1 = thread_write_calls();
	if (s)
		goto out;
	s = arm_sentinel(p);
	if (s)
		goto out;
	res->arm_pass_ms = (double)(tb - ta) / 1e6;
	res->arm_per_s = (double)n / ((double)(tb - ta) / 1e9);
	res->arm_cpu_ns = (double)(cpu1 - cpu0) / n;
	res->eagain = (double)(p->eagain - eagain0);
	res->ring_full = (double)(p->ring_full - full0);
	if (peer_is_onering(p->peer))
		res->arm_sc = writes0 >= 0 && writes1 >= 0
				      ? (double)(writes1 - writes0 + (int64_t)(p->yields - yields0)) / n
				      : -1;
	else if (p->peer == PEER_TIMERFD)
		res->arm_sc = 1;
	else
		res->arm_sc = (double)(p->w.settimes - settimes0) / n;

	memset(&x, 0, sizeof(x));
	x.phase = "arm";
	x.expiry = exp;
	x.want = n;
	x.deadline_ns = max_u64(exp, n) + BENCH_LOST_NS;
	if (peer_is_onering(p->peer)) {
		/* First the sentinel: the time every arm was applied. Timers
		 * that fire meanwhile are taken as usual. */
		struct expect xs = x;
		xs.want = 0;
		xs.want_sentinel = true;
		xs.deadline_ns = tb + BENCH_LOST_NS;
		s = collect(p, &xs);
		if (s)
			goto out;
		if (have_stats)
			broker_poller_counters(&p->broker, &kicks1, &sleeps1);
		res->kicks = have_stats ? (double)(kicks1 - kicks0) : -1;
		uint64_t applied = p->sentinel_stamp_ns > ta ? p->sentinel_stamp_ns : tb;
		res->applied_per_s = (double)n / ((double)(applied - ta) / 1e9);
	} else {
		res->applied_per_s = res->arm_per_s;
		res->kicks = -1;
	}
	uint64_t cnv0 = status_nvcsw("/proc/thread-self/status"), bnv0 = broker_nvcsw(&p->broker);
	if (count)
		c0 = syscall_counter_read(cfd);
	s = collect(p, &x);
	if (count)
		res->sc_fire = (double)counter_delta(cfd, c0) / n;
	res->cons_preempt = (double)(status_nvcsw("/proc/thread-self/status") - cnv0);
	int64_t hangs1 = hrtimer_hangs();
	res->hangs = hangs0 >= 0 && hangs1 >= 0 ? (double)(hangs1 - hangs0) : -1;
	res->broker_preempt = peer_is_onering(p->peer) ? (double)(broker_nvcsw(&p->broker) - bnv0)
						       : -1;
	if (s)
		goto out;
	uint64_t cpu2 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	uint64_t bcpu1 = bench_proc_cpu_ns(p->broker.pid, false);
	if (have_stats && broker_poller_counters(&p->broker, &kicks1, &sleeps2) == 0)
		res->sleeps = (double)(sleeps2 - sleeps1);
	else
		res->sleeps = -1;
	res->cons_cpu_us = (double)(cpu2 - cpu0) / 1000.0 / n;
	res->broker_cpu_us = peer_is_onering(p->peer) ? (double)(bcpu1 - bcpu0) / 1000.0 / n : 0;
	res->wheel_wakes = (double)(p->w.wakes - wakes0);
	res->wheel_idle_wakes = (double)(p->w.idle_wakes - idle0);
	lateness(p, exp, peer_is_onering(p->peer) ? p->sentinel_stamp_ns : tb, res);

	/* Lead of the next phases' first (old) expiries: the timed pass must be
	 * over well before them. */
	uint64_t arm_span = (peer_is_onering(p->peer) && p->sentinel_stamp_ns > ta
				     ? p->sentinel_stamp_ns
				     : tb) - ta;
	uint64_t lead = BENCH_LEAD_NS + 4 * arm_span;

	/* ---- RE-ARM ---- */
	phase_reset(p);
	t0 = bench_now_ns();
	plan_expiries(exp, rank, n, t0 + lead, o->spread_ns);
	s = arm_pass(p, exp);
	if (s == ST_OK)
		s = wait_applied(p, exp, "re-arm");
	if (s)
		goto out;
	/* E2: after every E1, in another order. */
	plan_expiries(exp2, rank2, n, t0 + lead + o->spread_ns + BENCH_LEAD_NS, o->spread_ns);
	if (count)
		c0 = syscall_counter_read(cfd);
	ta = bench_now_ns();
	s = arm_pass(p, exp2);
	tb = bench_now_ns();
	if (count)
		res->sc_rearm = (double)counter_delta(cfd, c0) / n;
	if (s)
		goto out;
	s = arm_sentinel(p);
	if (s)
		goto out;
	res->rearm_per_s = (double)n / ((double)(tb - ta) / 1e9);
	if (tb >= min_u64(exp, n)) {
		s = disturbed("%s: the re-arm pass ended %.1f ms after the first old expiry",
			      peer_names[p->peer], (double)(tb - min_u64(exp, n)) / 1e6);
		goto out;
	}
	memset(&x, 0, sizeof(x));
	x.phase = "re-arm";
	x.expiry = exp2;
	x.want = n;
	x.want_sentinel = peer_is_onering(p->peer);
	x.deadline_ns = max_u64(exp2, n) + BENCH_LOST_NS;
	x.old_expiry = exp;
	s = collect(p, &x);
	if (s)
		goto out;

	/* ---- CANCEL ---- */
	phase_reset(p);
	t0 = bench_now_ns();
	plan_expiries(exp, rank, n, t0 + lead, o->spread_ns);
	s = arm_pass(p, exp);
	if (s == ST_OK)
		s = wait_applied(p, exp, "cancel");
	if (s)
		goto out;
	if (count)
		c0 = syscall_counter_read(cfd);
	ta = bench_now_ns();
	s = arm_pass(p, NULL);
	tb = bench_now_ns();
	if (count)
		res->sc_cancel = (double)counter_delta(cfd, c0) / n;
	if (s)
		goto out;
	s = arm_sentinel(p);
	if (s)
		goto out;
	res->cancel_per_s = (double)n / ((double)(tb - ta) / 1e9);
	if (tb >= min_u64(exp, n)) {
		s = disturbed("%s: the cancel pass ended %.1f ms after the first old expiry",
			      peer_names[p->peer], (double)(tb - min_u64(exp, n)) / 1e6);
		goto out;
	}
	memset(&x, 0, sizeof(x));
	x.phase = "cancel";
	x.expiry = never;
	x.want = 0;
	x.want_sentinel = peer_is_onering(p->peer);
	x.until_deadline = true;
	x.deadline_ns = max_u64(exp, n) + BENCH_CANCEL_GRACE_NS;
	x.old_expiry = exp;
	s = collect(p, &x);
	if (s)
		goto out;
	s = peer_check_quiet(p);
out:
	if (cfd >= 0)
		close(cfd);
	free(exp);
	free(exp2);
	free(never);
	return s;
}

/* Set up peer, run the phases, tear down. */
static int run_one(const struct bench_opts *o, enum peer peer, const uint32_t *rank,
		   const uint32_t *rank2, bool count, struct result *res)
{
	struct timer_peer p;
	struct cpu_sample a, b;

	for (double *f = (double *)res; f < (double *)(res + 1); f++)
		*f = -1;
	uint64_t t0 = bench_now_ns();
	int s = peer_setup(&p, o, peer);
	res->setup_ms = (double)(bench_now_ns() - t0) / 1e6;
	if (s == ST_OK) {
		uint64_t self0 = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
		uint64_t brk0 = bench_proc_cpu_ns(p.broker.pid, false);
		cpu_sample_take(&a);
		s = run_phases(&p, o, rank, rank2, count, res);
		cpu_sample_take(&b);
		uint64_t ours = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID) - self0 +
				(bench_proc_cpu_ns(p.broker.pid, false) - brk0);
		cpu_noise(&a, &b, ours, &res->others_pct, &res->steal_pct);
		if (s && peer_is_onering(peer))
			broker_exited(&p.broker);
	}
	peer_teardown(&p);
	return s;
}

/* ---------------------------------------------------------------------- */
/* Output.                                                                 */

static struct result results[BENCH_MAX_ROUNDS + 1][PEER_NR]; /* [rounds]: counted round */
static bool have[BENCH_MAX_ROUNDS + 1][PEER_NR];

/* A figure of struct result, by its offset. */
#define FIG(field) offsetof(struct result, field)

static double fig_of(const struct result *r, size_t off)
{
	return *(const double *)(const void *)((const char *)r + off);
}

static double fig_median(unsigned rounds, enum peer p, size_t off)
{
	double v[BENCH_MAX_ROUNDS];

	for (unsigned i = 0; i < rounds; i++)
		v[i] = have[i][p] ? fig_of(&results[i][p], off) : -1;
	return bench_median(v, rounds);
}

static double fig_max(unsigned rounds, enum peer p, size_t off)
{
	double v[BENCH_MAX_ROUNDS];

	for (unsigned i = 0; i < rounds; i++)
		v[i] = have[i][p] ? fig_of(&results[i][p], off) : -1;
	return maximum(v, rounds);
}

/* v with prec decimals after scaling, or "-" when missing. */
static const char *fmt(char *buf, size_t size, double v, double scale, int prec)
{
	if (v < 0)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.*f", prec, v / scale);
	return buf;
}

static void print_progress(enum peer p, const struct result *r)
{
	char a[24], b[24], c[24], d[24], e[24], f[24];

	printf("  %-13s arm %7s M/s (pass %.2f ms, applied %s M/s)  re-arm %s M/s  cancel %s "
	       "M/s  setup %.0f ms\n",
	       peer_names[p], fmt(a, sizeof(a), r->arm_per_s, 1e6, 3), r->arm_pass_ms,
	       fmt(b, sizeof(b), r->applied_per_s, 1e6, 3), fmt(c, sizeof(c), r->rearm_per_s, 1e6, 3),
	       fmt(d, sizeof(d), r->cancel_per_s, 1e6, 3), r->setup_ms);
	printf("  %-13s late p50/p99/max %s/%s/%s us", "", fmt(a, sizeof(a), r->lat_p50, 1e3, 1),
	       fmt(b, sizeof(b), r->lat_p99, 1e3, 1), fmt(c, sizeof(c), r->lat_max, 1e3, 1));
	if (peer_is_onering(p))
		printf(" (broker stamp %s/%s/%s)", fmt(d, sizeof(d), r->stamp_p50, 1e3, 1),
		       fmt(e, sizeof(e), r->stamp_p99, 1e3, 1), fmt(f, sizeof(f), r->stamp_max, 1e3, 1));
	if (r->excluded > 0)
		printf(" [%.0f armed after due, left out]", r->excluded);
	printf("; preempted while firing: consumer %.0f", r->cons_preempt);
	if (r->broker_preempt >= 0)
		printf(", broker %.0f", r->broker_preempt);
	if (r->hangs >= 0)
		printf("; kernel hrtimer hangs %.0f", r->hangs);
	printf("\n  %-13s cpu %.1f ns/arm, %.2f us/timer consumer, %.2f us/timer broker; "
	       "sc/arm %s",
	       "", r->arm_cpu_ns, r->cons_cpu_us, r->broker_cpu_us > 0 ? r->broker_cpu_us : 0,
	       fmt(a, sizeof(a), r->arm_sc, 1, 4));
	if (peer_is_onering(p))
		printf("; ring full %.0f arms (%.0f retries); kicks %s; poller sleeps while firing %s",
		       r->ring_full, r->eagain, fmt(b, sizeof(b), r->kicks, 1, 0),
		       fmt(c, sizeof(c), r->sleeps, 1, 0));
	if (p == PEER_WHEEL)
		printf("; timerfd wakes %.0f (%.0f idle)", r->wheel_wakes, r->wheel_idle_wakes);
	if (r->others_pct >= 0)
		printf("; others %.1f%% steal %.1f%%", r->others_pct, r->steal_pct);
	printf("\n");
	if (r->sc_arm >= 0)
		printf("  %-13s counted syscalls per timer: arm %.4f, fire %.4f, re-arm %.4f, "
		       "cancel %.4f\n",
		       "", r->sc_arm, r->sc_fire, r->sc_rearm, r->sc_cancel);
}

/* A ratio, readable at any size: 38.3, 0.15, 3.1e-05. */
static const char *fmt_ratio(char *buf, size_t size, double v)
{
	if (v >= 10)
		snprintf(buf, size, "%.1f", v);
	else if (v >= 0.01)
		snprintf(buf, size, "%.2f", v);
	else
		snprintf(buf, size, "%.1e", v);
	return buf;
}

struct ratio_def {
	const char *name;
	enum peer num, den;
	size_t fig;
	double target; /* 0: informational */
};

static void print_ratio(const struct bench_opts *o, const struct ratio_def *d)
{
	double col[BENCH_MAX_ROUNDS];
	char target[24] = "", verdict[16] = "";

	if (!o->peers[d->num] || !o->peers[d->den])
		return;
	for (unsigned i = 0; i < o->rounds; i++) {
		double a = have[i][d->num] ? fig_of(&results[i][d->num], d->fig) : -1;
		double b = have[i][d->den] ? fig_of(&results[i][d->den], d->fig) : -1;
		col[i] = a >= 0 && b > 0 ? a / b : -1;
	}
	double m = bench_median(col, o->rounds);
	if (m < 0)
		return;
	if (d->target > 0) {
		snprintf(target, sizeof(target), "target >= %.0fx:", d->target);
		snprintf(verdict, sizeof(verdict), "%s", m >= d->target ? "met" : "MISSED");
	}
	char num[32];
	printf("  %-36s %9sx  %-15s %-6s", d->name, fmt_ratio(num, sizeof(num), m), target,
	       verdict);
	if (o->rounds > 1) {
		printf(" rounds:");
		for (unsigned i = 0; i < o->rounds; i++)
			if (col[i] < 0)
				printf(" -");
			else
				printf(" %s", fmt_ratio(num, sizeof(num), col[i]));
	}
	printf("\n");
}

static void print_summary(const struct bench_opts *o)
{
	char a[24], b[24], c[24], d[24], e[24], f[24], g[24], h[24];
	unsigned R = o->rounds;

	printf("\nSummary: %u timers, medians of %u round%s (lateness max: worst round)\n",
	       o->timers, R, R == 1 ? "" : "s");
	printf("\n  Arming (consumer thread; M/s = million timers per second)\n");
	printf("  %-13s %9s %10s %9s %10s %9s %8s %8s %7s\n", "peer", "arm M/s", "applied M/s",
	       "re-arm", "cancel", "ns/arm", "sc/arm", "full", "kicks");
	for (int p = 0; p < PEER_NR; p++) {
		if (!o->peers[p])
			continue;
		printf("  %-13s %9s %10s %9s %10s %9s %8s %8s %7s\n", peer_names[p],
		       fmt(a, sizeof(a), fig_median(R, p, FIG(arm_per_s)), 1e6, 3),
		       fmt(b, sizeof(b), fig_median(R, p, FIG(applied_per_s)), 1e6, 3),
		       fmt(c, sizeof(c), fig_median(R, p, FIG(rearm_per_s)), 1e6, 3),
		       fmt(d, sizeof(d), fig_median(R, p, FIG(cancel_per_s)), 1e6, 3),
		       fmt(e, sizeof(e), fig_median(R, p, FIG(arm_cpu_ns)), 1, 1),
		       fmt(f, sizeof(f), fig_median(R, p, FIG(arm_sc)), 1, 4),
		       peer_is_onering(p) ? fmt(g, sizeof(g), fig_median(R, p, FIG(ring_full)), 1, 0)
					  : "-",
		       fmt(h, sizeof(h), fig_median(R, p, FIG(kicks)), 1, 0));
	}
	printf("\n  Firing (lateness = consumer receipt - intended expiry, us; broker = the "
	       "record's stamp)\n");
	printf("  %-13s %8s %8s %8s %9s %9s %9s %10s %9s %8s %6s\n", "peer", "p50", "p99", "max",
	       "brk p50", "brk p99", "brk max", "cons us/t", "brk us/t", "preempt", "hangs");
	for (int p = 0; p < PEER_NR; p++) {
		if (!o->peers[p])
			continue;
		char pre[32];
		double cp = fig_median(R, p, FIG(cons_preempt));
		double bp = fig_median(R, p, FIG(broker_preempt));
		if (bp >= 0)
			snprintf(pre, sizeof(pre), "%.0f/%.0f", cp, bp);
		else
			snprintf(pre, sizeof(pre), "%.0f", cp);
		char hg[24];
		printf("  %-13s %8s %8s %8s %9s %9s %9s %10s %9s %8s %6s\n", peer_names[p],
		       fmt(a, sizeof(a), fig_median(R, p, FIG(lat_p50)), 1e3, 1),
		       fmt(b, sizeof(b), fig_median(R, p, FIG(lat_p99)), 1e3, 1),
		       fmt(c, sizeof(c), fig_max(R, p, FIG(lat_max)), 1e3, 1),
		       fmt(d, sizeof(d), fig_median(R, p, FIG(stamp_p50)), 1e3, 1),
		       fmt(e, sizeof(e), fig_median(R, p, FIG(stamp_p99)), 1e3, 1),
		       fmt(f, sizeof(f), fig_max(R, p, FIG(stamp_max)), 1e3, 1),
		       fmt(g, sizeof(g), fig_median(R, p, FIG(cons_cpu_us)), 1, 2),
		       peer_is_onering(p)
			       ? fmt(h, sizeof(h), fig_median(R, p, FIG(broker_cpu_us)), 1, 2)
			       : "-",
		       pre, fmt(hg, sizeof(hg), fig_median(R, p, FIG(hangs)), 1, 0));
	}
	bool counted = false;
	for (int p = 0; p < PEER_NR; p++)
		counted |= o->peers[p] && have[R][p];
	if (counted) {
		printf("\n  Consumer syscalls per timer (counted round: perf raw_syscalls:sys_enter)\n");
		printf("  %-13s %9s %9s %9s %9s\n", "peer", "arm", "fire", "re-arm", "cancel");
		for (int p = 0; p < PEER_NR; p++) {
			if (!o->peers[p] || !have[R][p])
				continue;
			const struct result *r = &results[R][p];
			printf("  %-13s %9s %9s %9s %9s\n", peer_names[p],
			       fmt(a, sizeof(a), r->sc_arm, 1, 4), fmt(b, sizeof(b), r->sc_fire, 1, 4),
			       fmt(c, sizeof(c), r->sc_rearm, 1, 4),
			       fmt(d, sizeof(d), r->sc_cancel, 1, 4));
		}
	}
	printf("\n  Columns: applied = until the broker applied the last arm (onering; others:\n"
	       "  = arm); ns/arm consumer CPU in the arming loop; sc/arm syscalls per arm known\n"
	       "  from the timed rounds (onering: kick eventfd writes, /proc/thread-self/io);\n"
	       "  full = arms that found the submission ring full and retried;\n"
	       "  kicks = broker poller wake-ups by requests during ARM; cons/brk us/t CPU per\n"
	       "  timer over arming + firing (the busy poller spins all along); preempt =\n"
	       "  involuntary context switches while firing, consumer/broker (medians);\n"
	       "  hangs = kernel hrtimer interrupts that could not catch up (all CPUs).\n");
	double others[BENCH_MAX_ROUNDS * PEER_NR] = { 0 }, steal[BENCH_MAX_ROUNDS * PEER_NR] = { 0 };
	unsigned m = 0;
	for (unsigned i = 0; i < R; i++)
		for (int p = 0; p < PEER_NR; p++)
			if (have[i][p]) {
				others[m] = results[i][p].others_pct;
				steal[m++] = results[i][p].steal_pct;
			}
	if (m && bench_median(others, m) >= 0)
		printf("  Machine: other tasks took %.1f %% of all CPUs (median; max %.1f %%), steal "
		       "%.1f %% (max %.1f %%), over the measurements.\n",
		       bench_median(others, m), maximum(others, m), bench_median(steal, m), maximum(steal, m));

	printf("\nRatios (median of per-round ratios)\n");
	const struct ratio_def defs[] = {
		{ "arms/s onering / timerfd", PEER_ONERING, PEER_TIMERFD, FIG(arm_per_s), 10 },
		{ "arms/s onering-busy / timerfd", PEER_ONERING_BUSY, PEER_TIMERFD, FIG(arm_per_s),
		  10 },
		{ "arms/s onering / wheel", PEER_ONERING, PEER_WHEEL, FIG(arm_per_s), 0 },
		{ "arms/s onering-busy / wheel", PEER_ONERING_BUSY, PEER_WHEEL, FIG(arm_per_s), 0 },
		{ "applied/s onering / timerfd", PEER_ONERING, PEER_TIMERFD, FIG(applied_per_s), 0 },
		{ "re-arms/s onering / timerfd", PEER_ONERING, PEER_TIMERFD, FIG(rearm_per_s), 0 },
		{ "cancels/s onering / timerfd", PEER_ONERING, PEER_TIMERFD, FIG(cancel_per_s), 0 },
		{ "arms/s wheel / timerfd", PEER_WHEEL, PEER_TIMERFD, FIG(arm_per_s), 0 },
		{ "lateness p50 onering / timerfd", PEER_ONERING, PEER_TIMERFD, FIG(lat_p50), 0 },
		{ "lateness p50 onering-busy / timerfd", PEER_ONERING_BUSY, PEER_TIMERFD,
		  FIG(lat_p50), 0 },
	};
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		print_ratio(o, &defs[i]);
	printf("\n  Targets are figures, not pass/fail: a missed one does not change the exit "
	       "status.\n");
}

/* ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct sigaction sa;
	struct rlimit rl;
	int status = ST_OK;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (parse_opts(argc, argv, &o) < 0)
		return ST_SETUP;
	if (sched_getaffinity(0, sizeof(start_affinity), &start_affinity) < 0)
		return fail(ST_SETUP, "sched_getaffinity: %s", strerror(errno));
	if (o.core_consumer >= ncpu || o.core_broker >= ncpu)
		return fail(ST_SETUP, "--cores %d,%d: this machine has CPUs 0..%ld",
			    o.core_consumer, o.core_broker, ncpu - 1);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: waits return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* N timerfds in this process. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t need = (rlim_t)o.timers + 256;
		if (rl.rlim_cur < need) {
			rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (rl.rlim_cur < need && o.peers[PEER_TIMERFD])
			return fail(ST_SETUP, "RLIMIT_NOFILE %llu is below the %llu fds %u timerfds "
				    "need", (unsigned long long)rl.rlim_cur,
				    (unsigned long long)need, o.timers);
	}
	if (bench_pin_self(o.core_consumer) < 0)
		return fail(ST_SETUP, "cannot pin to core %d", o.core_consumer);
	/* The consumer's own sleeps (futex, epoll) end when the peer wakes them;
	 * no slack on its timeouts either. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	if (o.count_syscalls) {
		find_sys_enter();
		int fd = syscall_counter_open();
		if (fd >= 0) {
			uint64_t a = syscall_counter_read(fd), b = syscall_counter_read(fd);
			syscall_read_cost = b - a;
			close(fd);
		} else {
			if (sys_enter_id >= 0)
				snprintf(sys_enter_why, sizeof(sys_enter_why),
					 "perf_event_open: %s (run as root)", strerror(-fd));
			sys_enter_id = -1;
			fprintf(stderr, "warning: syscalls not counted: %s\n", sys_enter_why);
		}
	}

	uint32_t *rank = malloc(o.timers * sizeof(*rank));
	uint32_t *rank2 = malloc(o.timers * sizeof(*rank2));
	if (!rank || !rank2)
		return fail(ST_SETUP, "out of memory");

	printf("onering-bench-timers: %u timers, %u round%s; expiries %.0f..%.0f ms after the "
	       "arming pass starts, one-shot, absolute CLOCK_MONOTONIC, armed in random order\n",
	       o.timers, o.rounds, o.rounds == 1 ? "" : "s", (double)o.first_ns / 1e6,
	       (double)(o.first_ns + o.spread_ns) / 1e6);
	printf("placement: consumer (this thread) on core %d; oneringd --cores %d --control-core "
	       "%d --no-hugepages (%ld CPUs online)%s\n",
	       o.core_consumer, o.core_broker, o.core_consumer, ncpu,
	       o.core_broker == o.core_consumer ? ": the poller shares the consumer's core" : "");
	printf("onering: queue of >= 16384 event slots, %u submission slots; onering = default "
	       "idle policy (spin 100 us, then sleep until the next timer or 1 ms), onering-busy "
	       "= --idle-sleep-ms -1\n",
	       o.sq_capacity ? o.sq_capacity : pow2_at_least(o.timers + 1u));
	printf("syscalls: %s\n", o.count_syscalls && sys_enter_id >= 0
					  ? "counted in one extra round (perf_event_open, "
					    "raw_syscalls:sys_enter, consumer thread)"
					  : "not counted");
	fflush(stdout);

	for (unsigned round = 0; round < o.rounds && status == ST_OK; round++) {
		printf("round %u/%u\n", round + 1, o.rounds);
		permute(rank, o.timers, 0x9e3779b97f4a7c15ull * (round + 1));
		permute(rank2, o.timers, 0xc2b2ae3d27d4eb4full * (round + 1));
		for (int p = 0; p < PEER_NR && status == ST_OK; p++) {
			if (!o.peers[p])
				continue;
			for (unsigned t = 0;; t++) {
				status = run_one(&o, p, rank, rank2, false, &results[round][p]);
				if (status != ST_RETRY)
					break;
				if (t + 1 == BENCH_MAX_RETRIES) {
					status = fail(ST_SETUP, "%s: disturbed %u times in a row: the "
						      "machine is too busy", peer_names[p],
						      BENCH_MAX_RETRIES);
					break;
				}
			}
			if (status)
				break;
			have[round][p] = true;
			print_progress(p, &results[round][p]);
			fflush(stdout);
		}
	}
	if (status == ST_OK && o.count_syscalls && sys_enter_id >= 0) {
		printf("syscall-counting round (tracepoint on; its rates are not used)\n");
		permute(rank, o.timers, 0x9e3779b97f4a7c15ull);
		permute(rank2, o.timers, 0xc2b2ae3d27d4eb4full);
		for (int p = 0; p < PEER_NR && status == ST_OK; p++) {
			if (!o.peers[p])
				continue;
			for (unsigned t = 0;; t++) {
				status = run_one(&o, p, rank, rank2, true, &results[o.rounds][p]);
				if (status != ST_RETRY)
					break;
				if (t + 1 == BENCH_MAX_RETRIES) {
					status = fail(ST_SETUP, "%s: disturbed %u times in a row: the "
						      "machine is too busy", peer_names[p],
						      BENCH_MAX_RETRIES);
					break;
				}
			}
			if (status)
				break;
			have[o.rounds][p] = true;
			print_progress(p, &results[o.rounds][p]);
			fflush(stdout);
		}
	}
	if (status == ST_OK)
		print_summary(&o);
	else if (status == ST_INTR)
		fprintf(stderr, "interrupted: the broker was stopped and its directory removed\n");
	else
		fprintf(stderr, "onering-bench-timers: failed (exit %d)\n", status);
	free(rank);
	free(rank2);
	return status;
}
