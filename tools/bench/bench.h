/* SPDX-License-Identifier: MIT */
/*
 * bench.h: the benchmark harness behind onering-bench and the two tables
 * that plug into it. struct bench_peer_ops is one peer (one file each,
 * peer_*.c; its hooks mean what its scenario says at the top of its file,
 * and every peer of a scenario gets the same work); struct bench_scenario
 * is one scenario (scenario_*.c): its peers, parameters, figures, ratios
 * and measure(), which runs one peer once. harness.c owns the rest:
 * options, interleaved rounds, the noise sampler, medians, ratios, CSV,
 * JSON, PNG; broker.c the oneringd child and other children.
 *
 * Returns: 0 or -errno; measure() may also return BENCH_NA (nothing to
 * measure here) or BENCH_WRONG (a correctness check failed: exit 1).
 * Context: the main thread, unless a scenario says otherwise.
 */
#ifndef ONERING_TOOLS_BENCH_BENCH_H
#define ONERING_TOOLS_BENCH_BENCH_H

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "shm/atomic.h"

#define BENCH_NA 1    /* measure(): nothing to measure for this peer here */
#define BENCH_WRONG 2 /* measure(): a correctness check failed */

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
 * One peer. name is what --peers and the output call it; needs names the
 * library it links ("dpdk", "liburing") for `onering-bench list`. The hooks
 * are the scenario's to define (see its file); unused ones stay NULL (a
 * missing control() answers -ENOTSUP). state is the peer's own memory for
 * one measurement (state_size bytes, zeroed by the scenario before setup);
 * variant is the peer's constant where several peers share their hooks
 * (a policy, a wait mode), read by setup() through self.
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

/* Define peer var: its hooks in order setup, produce, consume, control,
 * teardown (NULL where unused). */
#define BENCH_PEER(var, peer_name, text, lib, state_type, value, ...)                           \
	BENCH_PEER_(var, peer_name, text, lib, state_type, value, __VA_ARGS__)
#define BENCH_PEER_(var, peer_name, text, lib, state_type, value, setup_fn, produce_fn,           \
		    consume_fn, control_fn, teardown_fn)                                        \
	const struct bench_peer_ops var = {                                                     \
		.name = peer_name, .about = text, .needs = lib, .state_size = sizeof(state_type), \
		.variant = (intptr_t)(value), .setup = setup_fn, .produce = produce_fn,         \
		.consume = consume_fn, .control = control_fn, .teardown = teardown_fn,          \
	}

/* peer->control(), or -ENOTSUP when the peer has none. */
static inline int bench_control(const struct bench_peer_ops *peer, void *state, unsigned op,
				void *arg)
{
	return peer->control ? peer->control(state, op, arg) : -ENOTSUP;
}

/* A scenario option --NAME VALUE: an integer, or an index into choices. */
struct bench_param {
	const char *name;
	const char *help;
	uint64_t value;
	uint64_t quick; /* the value under --quick unless given */
	uint64_t min, max;
	const char *const *choices; /* NULL-terminated: the value is an index */
	bool given;
};

struct bench_scenario {
	const char *name;
	const char *about;
	const struct bench_peer_ops *const *peers;
	unsigned peer_count;
	const char *sweep_name; /* the swept parameter, NULL for none */
	const char *sweep_default, *sweep_quick;
	const char *cores_help; /* what --cores A,B,... places */
	const char *cores_default;
	/*
	 * The figures of measure()'s fig[], in order, space-separated, each
	 * "NAME[:DIGITS]" (DIGITS after the point, default 0): a name says
	 * its unit; the first is plotted. The ratios, ';'-separated, each
	 * "FIG PEER_A PEER_B [@SWEEP] [>=X | <=X]": the median over rounds of
	 * the per-round FIG(A) / FIG(B), at that sweep value only, against the
	 * contract's target; a peer name ending in '*' is the best of the peers
	 * with that prefix in each round.
	 */
	const char *fig_names, *ratio_text;
	struct bench_param *params;
	unsigned param_count;
	unsigned rounds_default;
	unsigned rounds_quick; /* 0: 3 */
	int (*init)(struct bench_ctx *ctx); /* once, before the rounds (EAL ...) */
	void (*fini)(struct bench_ctx *ctx);
	/* One measurement of peer at sweep value sweep: fills fig[] (-1 = none). */
	int (*measure)(struct bench_ctx *ctx, const struct bench_peer_ops *peer, uint64_t sweep,
		       double *fig);
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
	bool quick;
	int cores[BENCH_MAX_CORES];
	unsigned core_count;
	cpu_set_t start_affinity;
	uint64_t child_cpu_ns; /* CPU of the brokers stopped since the last sample */
	const char *self_dir;  /* directory of /proc/self/exe */
};

/* SIGINT/SIGTERM seen: measurements stop early, the program exits 130. */
extern volatile sig_atomic_t bench_interrupted;

/* The value of the scenario parameter name (aborts on a name not declared). */
uint64_t bench_param(const struct bench_ctx *ctx, const char *name);

/* The first failure of a measurement's threads: the first message wins. */
struct bench_failure {
	ONERING_ATOMIC(int) failed;
	char err[256];
};
/* Record a failure; @return true if it was the first. Any thread. */
bool bench_failure_set(struct bench_failure *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define bench_failed(f) (onering_atomic_load(&(f)->failed, onering_mo_relaxed) != 0)

/* Print one line to stderr and return rc. */
int bench_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clock id in ns (CLOCK_MONOTONIC: the vDSO, no system call); 0 if unreadable. */
static BENCH_ALWAYS_INLINE uint64_t bench_clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#define bench_now_ns() bench_clock_ns(CLOCK_MONOTONIC)
void bench_sleep_ns(uint64_t ns);
int bench_pin_self(int cpu); /* 0; -errno */
/* size bytes rounded up to whole cache lines, aligned and zeroed; NULL. */
void *bench_alloc_lines(size_t size);
double bench_median(const double *v, unsigned n); /* of values >= 0; -1 if none */
/* Nearest-rank percentile of n values, sorting them in place; -1 if n == 0. */
double bench_percentile(uint64_t *v, size_t n, double q);
/* From /proc/PID/task/TID/schedstat (every thread of pid if tid <= 0), ns:
 * field 0 the CPU time, 1 the time runnable but waiting for a CPU. */
uint64_t bench_schedstat_ns(pid_t pid, pid_t tid, int field);
#define bench_proc_cpu_ns(pid) bench_schedstat_ns(pid, 0, 0)

#define BENCH_SYSCALLS_MAX_THREADS 32

/* Syscalls entered by one thread, or by every thread a process has now. */
struct bench_syscalls {
	int fds[BENCH_SYSCALLS_MAX_THREADS];
	unsigned fd_count;
};

/* tid > 0: that thread; else every thread of pid. 0; -ENOTSUP (not root,
 * no tracefs: a warning is printed once); -errno. */
int bench_syscalls_open(struct bench_syscalls *c, pid_t pid, pid_t tid);
uint64_t bench_syscalls_read(const struct bench_syscalls *c);
void bench_syscalls_close(struct bench_syscalls *c);

/*
 * Start oneringd: `oneringd EAL... -- --foreground --name N --socket-dir D
 * --ready-fd 3 --no-hugepages EXTRA...` (eal and extra NULL-terminated,
 * either NULL), its stdout/stderr to D/oneringd.log, and wait (10 s) for
 * its ready byte. b->name and b->dir are what onering_attach_opts() wants.
 * @return 0; -ENOENT oneringd not found (every place tried is printed);
 *         -EIO it did not become ready (its log is printed); -errno.
 */
int bench_broker_start(struct bench_ctx *ctx, struct bench_broker *b, const char *const *eal,
		       const char *const *extra);
/* SIGTERM (SIGKILL after 5 s), reap, remove its directory; adds its CPU to
 * ctx->child_cpu_ns. Safe on a broker never started. */
void bench_broker_stop(struct bench_ctx *ctx, struct bench_broker *b);
/*
 * fork/exec argv[0] (a path) with stdout and stderr to out_path, on cpus
 * (NULL: the CPUs this program started with), ready_fd (>= 0) as its fd 3;
 * it dies with this program.
 * bench_child_stop(): SIGTERM, SIGKILL after 5 s, reaped; its wait status.
 */
int bench_child_start(const struct bench_ctx *ctx, char *const argv[], const char *out_path,
		      const cpu_set_t *cpus, int ready_fd, pid_t *pid);
int bench_child_stop(pid_t pid);

/* True (and its log printed) if the broker died. */
bool bench_broker_died(struct bench_broker *b);

struct onering;
struct onering_queue;
struct onering_queue_options;

/*
 * Start a broker (as bench_broker_start), attach to it, and open one queue
 * with qo (NULL: defaults; q NULL: no queue). On failure everything done is
 * undone. bench_onering_close() undoes it all; safe on a half-open one.
 * @return 0; -errno (one line printed naming what failed).
 */
int bench_onering_open(struct bench_ctx *ctx, struct bench_broker *b, const char *const *extra,
		       const struct onering_queue_options *qo, struct onering **att,
		       struct onering_queue **q);
void bench_onering_close(struct bench_ctx *ctx, struct bench_broker *b, struct onering **att,
			 struct onering_queue **q);

/* Remove dir and the files in it (one level); warns on what stays. */
void bench_remove_dir(const char *dir);

/*
 * Start this process's DPDK EAL once (dpdk.c, built with DPDK only):
 * --no-huge --no-pci --no-shconf --no-telemetry -m 512, a unique
 * --file-prefix, -l lcores, then extra (NULL-terminated, may be NULL). The
 * calling thread gets back the affinity it started with; the EAL and its
 * runtime directory are cleaned up at exit. Later calls return the first
 * one's result. @return 0; -errno (rte_errno).
 */
int bench_eal_start(struct bench_ctx *ctx, const char *lcores, const char *const *extra);

/* The path of a helper program (oneringd, ...); see broker.c. 0; -ENOENT. */
int bench_find_program(const struct bench_ctx *ctx, const char *env, const char *name,
		       const char *build_subdir, char *out, size_t out_size);

extern const struct bench_scenario bench_scenario_ring;
extern const struct bench_scenario bench_scenario_dispatch;
extern const struct bench_scenario bench_scenario_readiness;
extern const struct bench_scenario bench_scenario_nic;
extern const struct bench_scenario bench_scenario_timers;
extern const struct bench_scenario bench_scenario_servers;

#endif /* ONERING_TOOLS_BENCH_BENCH_H */
