/* SPDX-License-Identifier: MIT */
/*
 * bench.h: the harness behind onering-bench and its two tables: struct
 * bench_peer_ops, one peer (peer_*.c; its hooks mean what its scenario's
 * file says, and every peer of a scenario gets the same work), and struct
 * bench_scenario (scenario_*.c), whose measure() runs one peer once.
 * harness.c owns options, rounds, noise, medians, ratios and output;
 * broker.c the oneringd child (other children: tools/common/child.h). Functions return 0 or
 * -errno and run on the main thread unless said otherwise.
 */
#ifndef ONERING_TOOLS_BENCH_BENCH_H
#define ONERING_TOOLS_BENCH_BENCH_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "shm/atomic.h"
#include "tools/common/child.h"

#define BENCH_NA 1    /* measure(): nothing to measure for this peer here */
#define BENCH_WRONG 2 /* measure(): a correctness check failed (exit 1) */

#define BENCH_MAX_PEERS 16
#define BENCH_MAX_FIGS 16
#define BENCH_MAX_SWEEP 8
#define BENCH_MAX_ROUNDS 64
#define BENCH_MAX_CORES 4
#define BENCH_ALWAYS_INLINE inline __attribute__((always_inline))
#define BENCH_UNUSED __attribute__((unused))
#define BENCH_COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* Define bench_scenario_PREFIX from PREFIX_peers, PREFIX_params, PREFIX_measure,
 * the sweep, the default cores and rounds, and designated fields. */
#define BENCH_SCENARIO(prefix, sweep, sweep_def, sweep_q, cores, rounds, rounds_q, ...)          \
	const struct bench_scenario bench_scenario_##prefix = {                                 \
		.peers = prefix##_peers, .peer_count = BENCH_COUNT(prefix##_peers),             \
		.params = prefix##_params, .param_count = BENCH_COUNT(prefix##_params),         \
		.name = #prefix, .sweep_name = sweep,                                           \
		.sweep_default = sweep_def, .sweep_quick = sweep_q, .cores_default = cores,     \
		.rounds_default = rounds, .rounds_quick = rounds_q, .measure = prefix##_measure, \
		__VA_ARGS__                                                                     \
	}

struct bench_ctx;

/*
 * One peer: name for --peers and the output, needs the library it links.
 * Unused hooks stay NULL (bench_control() then answers -ENOTSUP). state:
 * state_size bytes, zeroed before setup(); variant: the peer's constant,
 * read through self or the table (a policy, a wait mode, what it measures).
 */
struct bench_peer_ops {
	const char *name;
	const char *about; /* one line */
	const char *needs; /* NULL, "dpdk" or "liburing" */
	size_t state_size;
	intptr_t variant;
	int (*setup)(struct bench_ctx *ctx, const struct bench_peer_ops *self, void *state);
	int (*produce)(void *state, unsigned thread_idx, void *items, unsigned count);
	int (*consume)(void *state, unsigned thread_idx, void *items, unsigned max_count);
	int (*control)(void *state, unsigned op, void *arg);
	void (*teardown)(struct bench_ctx *ctx, void *state);
};

/* Hooks in order setup, produce, consume, control, teardown (NULL: unused). */
#define BENCH_PEER(var, peer_name, text, lib, state_type, value, ...)                           \
	BENCH_PEER_(var, peer_name, text, lib, state_type, value, __VA_ARGS__)
#define BENCH_PEER_(var, peer_name, text, lib, state_type, value, setup_fn, produce_fn,           \
		    consume_fn, control_fn, teardown_fn)                                        \
	const struct bench_peer_ops var = {                                                     \
		.name = peer_name, .about = text, .needs = lib, .state_size = sizeof(state_type), \
		.variant = (intptr_t)(value), .setup = setup_fn, .produce = produce_fn,         \
		.consume = consume_fn, .control = control_fn, .teardown = teardown_fn,          \
	}

/* control() ops of every scenario that has measurement threads: on such a
 * thread, first and last (arg: the scenario's). A scenario's own ops follow. */
enum { BENCH_OP_THREAD_INIT = 1, BENCH_OP_THREAD_FINI, BENCH_OP_SCENARIO };

static inline int bench_control(const struct bench_peer_ops *peer, void *state, unsigned op,
				void *arg)
{
	return peer->control ? peer->control(state, op, arg) : -ENOTSUP;
}

/* A scenario option --NAME VALUE: an integer, or an index into choices. */
struct bench_param {
	const char *name, *help;
	uint64_t value;
	uint64_t quick; /* the value under --quick unless given */
	uint64_t min, max;
	const char *const *choices; /* NULL-terminated: the value is an index */
	bool given;
};
#define BENCH_INT(n, text, def, q, lo, hi)                                                     \
	{ .name = n, .help = text, .value = def, .quick = q, .min = lo, .max = hi }
#define BENCH_CHOICE(n, text, def, names)                                                      \
	{ .name = n, .help = text, .value = def, .choices = names }

struct bench_scenario {
	const char *name;
	const char *about;
	const struct bench_peer_ops *const *peers;
	unsigned peer_count;
	const char *sweep_name; /* the swept parameter, NULL for none */
	const char *sweep_default, *sweep_quick;
	const char *cores_help; /* what --cores A,B,... places */
	const char *cores_default; /* --cores must name as many CPUs, or more if cores_more */
	bool cores_more;
	/*
	 * fig_names: measure()'s fig[], each "NAME[:DIGITS]" (the name says the
	 * unit; the first is plotted). ratio_text: ';'-separated "FIG A B
	 * [@SWEEP] [>=X | <=X]", the median of the per-round FIG(A) / FIG(B)
	 * against the contract's target; "name*": the best peer of that prefix;
	 * "A@S1 B@S2": A at sweep point S1 against B at S2 (one peer at two
	 * sizes, say), printed under S1.
	 */
	const char *fig_names, *ratio_text;
	struct bench_param *params;
	unsigned param_count;
	unsigned rounds_default;
	unsigned rounds_quick; /* 0: 3 */
	int (*init)(struct bench_ctx *ctx); /* once, before the rounds (EAL ...) */
	void (*fini)(struct bench_ctx *ctx);
	/* One measurement of peer at sweep value sweep: fills fig[] (-1 = none).
	 * state: the peer's, zeroed, on whole cache lines. */
	int (*measure)(struct bench_ctx *ctx, const struct bench_peer_ops *peer, void *state,
		       uint64_t sweep, double *fig);
};

/* The oneringd child of one measurement. */
struct bench_broker {
	pid_t pid;
	char dir[96]; /* its socket directory, removed when it stops */
	char log[128];
	char name[48];
};

struct bench_ctx {
	const struct bench_scenario *sc;
	int cores[BENCH_MAX_CORES];
	unsigned core_count;
	cpu_set_t start_affinity, cores_set; /* cores_set: the CPUs of --cores */
	unsigned round;        /* of the measurement, from 0 */
	uint64_t child_cpu_ns; /* CPU of the brokers stopped since the last sample */
	unsigned idle_cpus;    /* measure(): CPUs its peer leaves idle (others there: no noise) */
	const char *self_dir;  /* directory of /proc/self/exe */
};

/* SIGINT/SIGTERM seen: measurements stop early, the program exits 130. */
extern volatile sig_atomic_t bench_interrupted;

uint64_t bench_param(const struct bench_ctx *ctx, const char *name);

/*
 * A measurement's threads, started together. Main: bench_team_start() each
 * member, bench_team_wait() until all are ready (A0), bench_team_open()
 * the gate (R1), bench_team_join(). A member: bench_team_pin(), its own
 * set-up, then bench_team_ready() (R0) even if it failed, which can wait
 * for the gate (A1). err: the run's first failure (the first message wins).
 */
#define BENCH_TEAM_MAX 24
struct bench_team {
	ONERING_ATOMIC(int) failed;
	char err[256];
	pthread_t thr[BENCH_TEAM_MAX];
	unsigned count;
	ONERING_ATOMIC(unsigned) ready;
	ONERING_ATOMIC(int) open;
};
void bench_team_init(struct bench_team *t);
/* Record a failure; true if it was the first. Any thread. */
bool bench_team_fail(struct bench_team *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define bench_team_failed(t) (onering_atomic_load(&(t)->failed, onering_mo_relaxed) != 0)
int bench_team_start(struct bench_team *t, void *(*fn)(void *), void *arg); /* recorded */
/* In a member: pin to cpu (>= 0), else to *cpus; a failure is recorded as who's. */
int bench_team_pin(struct bench_team *t, const char *who, int cpu, const cpu_set_t *cpus);
void bench_team_ready(struct bench_team *t, bool gate);
bool bench_team_wait(struct bench_team *t); /* false: a failure, or ^C */
void bench_team_open(struct bench_team *t);
/* Open the gate, join members keep.. (the last started first). */
void bench_team_join(struct bench_team *t, unsigned keep);

/* One line to stderr; returns rc. */
int bench_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* In ns (CLOCK_MONOTONIC: the vDSO, no system call); 0 if unreadable. */
static BENCH_ALWAYS_INLINE uint64_t bench_clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#define bench_now_ns() bench_clock_ns(CLOCK_MONOTONIC)
static inline struct timespec bench_ts(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / 1000000000u),
				  .tv_nsec = (long)(ns % 1000000000u) };
}
void bench_sleep_ns(uint64_t ns);
int bench_pin_self(int cpu); /* 0; -errno */
/* size bytes rounded up to whole cache lines, aligned and zeroed; NULL. */
void *bench_alloc_lines(size_t size);
/* Nearest-rank percentile of n values read as signed (a delta below 0 is
 * returned below 0, never wrapped), sorting them in place; -1 if n == 0. */
double bench_percentile(uint64_t *v, size_t n, double q);
/* From /proc/PID/task/TID/schedstat (every thread of pid if tid <= 0), ns:
 * field 0 the CPU time, 1 the time runnable but waiting for a CPU. */
uint64_t bench_schedstat_ns(pid_t pid, pid_t tid, int field);
#define bench_proc_cpu_ns(pid) bench_schedstat_ns(pid, 0, 0)
#define bench_cpu_wait_ns(pid, tid) bench_schedstat_ns(pid, tid, 1)

#define BENCH_SYSCALLS_MAX_THREADS 32

struct bench_syscalls {
	int fds[BENCH_SYSCALLS_MAX_THREADS];
	unsigned fd_count;
};

/* Syscalls entered by thread tid, or (tid <= 0) every thread pid has now.
 * -ENOTSUP: not root, no tracefs (warned once). */
int bench_syscalls_open(struct bench_syscalls *c, pid_t pid, pid_t tid);
uint64_t bench_syscalls_read(const struct bench_syscalls *c);
void bench_syscalls_close(struct bench_syscalls *c);

/*
 * `oneringd EAL... -- --foreground --name N --socket-dir D --ready-fd 3
 * --no-hugepages EXTRA...` (NULL-terminated lists, or NULL), output to
 * D/oneringd.log; waits 10 s for its ready byte. -ENOENT: not found (the
 * places tried are printed); -EIO: not ready (its log is printed).
 */
int bench_broker_start(struct bench_ctx *ctx, struct bench_broker *b, const char *const *eal,
		       const char *const *extra);
/* Stop, reap, remove its directory, add its CPU to ctx->child_cpu_ns.
 * Safe on a broker never started. */
void bench_broker_stop(struct bench_ctx *ctx, struct bench_broker *b);
/* True (and its log printed) if the broker died. */
bool bench_broker_died(struct bench_broker *b);
struct onering_msg;
/* One STATS request (a connection of its own), item() per object; 0, -errno. */
int bench_broker_stats(const struct bench_broker *b,
		       int (*item)(const struct onering_msg *m, void *arg), void *arg);

struct onering;
struct onering_queue;
struct onering_queue_options;

/* Start a broker (eal, extra as above), attach, open one queue with qo (NULL:
 * defaults; q NULL: none), *att and *q NULL before (a peer's zeroed state);
 * undone on failure (printed). close: safe on a half-open one. */
int bench_onering_open(struct bench_ctx *ctx, struct bench_broker *b, const char *const *eal,
		       const char *const *extra, const struct onering_queue_options *qo,
		       struct onering **att, struct onering_queue **q);
void bench_onering_close(struct bench_ctx *ctx, struct bench_broker *b, struct onering **att,
			 struct onering_queue **q);

/* This process's DPDK EAL (dpdk.c), once: -l lcores, then extra (or NULL);
 * later calls return the first one's result. The caller keeps its CPUs. */
int bench_eal_start(struct bench_ctx *ctx, const char *lcores, const char *const *extra);

extern const struct bench_scenario bench_scenario_ring;
extern const struct bench_scenario bench_scenario_dispatch;
extern const struct bench_scenario bench_scenario_readiness;
extern const struct bench_scenario bench_scenario_nic;
extern const struct bench_scenario bench_scenario_timers;
extern const struct bench_scenario bench_scenario_servers;
extern const struct bench_scenario bench_scenario_idle;
extern const struct bench_scenario bench_scenario_icount;

#endif /* ONERING_TOOLS_BENCH_BENCH_H */
