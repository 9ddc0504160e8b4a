/* SPDX-License-Identifier: MIT */
/*
 * bench_common.h: what the benchmark programs that start oneringd share
 * (bench_readiness.c, bench_balance.c, bench_nic.c, bench_timers.c) —
 * clocks, pinning, interruption, sorting, a process's CPU time, and the
 * broker child's life: its command line, fork/exec with a ready byte on
 * fd 3, its log, its exit, SIGTERM then SIGKILL, its temporary directory.
 *
 * Private to tools/: every function is static inline, each program is one
 * translation unit, so each gets its own copy of the two globals below.
 * No DPDK here: onering-bench-readiness and onering-bench-timers do not
 * link it. Include after the system headers, with _GNU_SOURCE defined.
 *
 * Context: the main thread only, except the clocks, pinning and sorting,
 * which any thread may call.
 */
#ifndef ONERING_TOOLS_BENCH_COMMON_H
#define ONERING_TOOLS_BENCH_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm/atomic.h"

#define BENCH_ALWAYS_INLINE inline __attribute__((always_inline))

/* ---------------------------------------------------------------------- */
/* Interruption and the CPUs we started with.                              */

static volatile sig_atomic_t interrupted; /* SIGINT/SIGTERM seen: stop early */
static cpu_set_t start_affinity;         /* the CPUs this program was allowed at start */

static inline void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* ---------------------------------------------------------------------- */
/* Clocks, sleeping, pinning.                                              */

/* The clock id in ns; 0 if it cannot be read. */
static inline uint64_t bench_clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static BENCH_ALWAYS_INLINE uint64_t bench_now_ns(void)
{
	struct timespec ts;

	/* vDSO on this clocksource (tsc): no system call. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread, ns. */
static inline uint64_t bench_thread_cpu_ns(void)
{
	return bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static inline struct timespec bench_ns_to_ts(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull) };
	return ts;
}

/* One nanosleep: a signal ends the sleep early; callers check `interrupted`. */
static inline void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = bench_ns_to_ts(ns);

	nanosleep(&ts, NULL);
}

/* Pin the calling thread to set. @return 0; -errno. */
static inline int bench_pin_self_to(const cpu_set_t *set)
{
	return -pthread_setaffinity_np(pthread_self(), sizeof(*set), set);
}

/* Pin the calling thread to one CPU. @return 0; -errno. */
static inline int bench_pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return bench_pin_self_to(&set);
}

/* ---------------------------------------------------------------------- */
/* Parsing options.                                                        */

/* A decimal integer in [min, max]. @return 0; -EINVAL. */
static inline int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Seconds (a decimal fraction allowed) as ns in [min_ns, max_ns]. @return 0; -EINVAL. */
static inline int bench_parse_seconds(const char *s, uint64_t min_ns, uint64_t max_ns,
				      uint64_t *out)
{
	char *end;

	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v >= 0))
		return -EINVAL;
	double ns = v * 1e9;
	if (ns < (double)min_ns || ns > (double)max_ns)
		return -EINVAL;
	*out = (uint64_t)ns;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Sorting, percentiles, medians.                                          */

#define BENCH_MEDIAN_MAX 1024u /* values bench_median() looks at, at most */

/* A comma list of names ("a,b") into sel[], one flag per entry of names;
 * -EINVAL for an unknown name, an empty list or one too long. */
static inline int bench_parse_names(const char *s, const char *const *names, int n, bool *sel)
{
	char buf[256], *save = NULL;
	bool any = false;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	memset(sel, 0, (size_t)n * sizeof(*sel));
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int p = 0;
		while (p < n && strcmp(tok, names[p]) != 0)
			p++;
		if (p == n)
			return -EINVAL;
		sel[p] = any = true;
	}
	return any ? 0 : -EINVAL;
}

/* A run's first failure, from any of its threads: the first message wins. */
struct bench_failure {
	ONERING_ATOMIC(int) failed;
	char err[320];
};

static inline void bench_vfail(struct bench_failure *f, const char *fmt, va_list ap)
{
	int expect = 0;

	if (onering_atomic_cas(&f->failed, &expect, 1, onering_mo_acq_rel, onering_mo_relaxed))
		vsnprintf(f->err, sizeof(f->err), fmt, ap);
}

static inline bool bench_failed(struct bench_failure *f)
{
	return onering_atomic_load(&f->failed, onering_mo_relaxed) != 0;
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array; -1 when empty. */
static inline double bench_percentile(const uint64_t *sorted, size_t n, double q)
{
	if (n == 0)
		return -1;
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return (double)sorted[i < n ? i : n - 1];
}

/*
 * Median of the values >= 0 (negative = missing); -1 when none. Looks at
 * the first BENCH_MEDIAN_MAX values only.
 */
static inline double bench_median(const double *v, unsigned n)
{
	double t[BENCH_MEDIAN_MAX];
	unsigned m = 0;

	for (unsigned i = 0; i < n && i < BENCH_MEDIAN_MAX; i++)
		if (v[i] >= 0)
			t[m++] = v[i];
	if (m == 0)
		return -1;
	qsort(t, m, sizeof(*t), bench_cmp_double);
	return m % 2 ? t[m / 2] : (t[m / 2 - 1] + t[m / 2]) / 2;
}

/* ---------------------------------------------------------------------- */
/* Files and a process's CPU time.                                         */

/*
 * Remove dir and the files in it (one level). warn: say on stderr what
 * could not be removed (a missing file is not worth a word).
 */
static inline void bench_remove_dir(const char *dir, bool warn)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX + 512]; /* dir may itself be PATH_MAX plus a name */

	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (unlink(path) && errno != ENOENT && warn)
				fprintf(stderr, "warning: cannot remove %s: %s\n", path,
					strerror(errno));
		}
		closedir(d);
	}
	if (rmdir(dir) && errno != ENOENT && warn)
		fprintf(stderr, "warning: cannot remove %s: %s\n", dir, strerror(errno));
}

/* utime + stime of process pid, clock ticks (/proc/PID/stat); false if unreadable. */
static inline bool bench_proc_ticks(pid_t pid, uint64_t *out)
{
	char path[64], buf[1024];
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')'); /* comm may hold spaces */
	if (!rp || sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			  &st) != 2)
		return false;
	*out = (uint64_t)ut + st;
	return true;
}

/*
 * CPU time of every thread of process pid, ns, from
 * /proc/PID/task/ * /schedstat. stat_fallback: when no schedstat can be
 * read, utime + stime of the process in clock ticks instead. 0 if pid <= 0
 * or nothing can be read.
 */
static inline uint64_t bench_proc_cpu_ns(pid_t pid, bool stat_fallback)
{
	char path[128];
	struct dirent *e;
	uint64_t sum = 0, ticks;
	bool any = false;
	DIR *d;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (d) {
		while ((e = readdir(d))) {
			unsigned long long run = 0;
			char p2[400];
			FILE *f;
			if (e->d_name[0] == '.')
				continue;
			snprintf(p2, sizeof(p2), "%s/%s/schedstat", path, e->d_name);
			f = fopen(p2, "r");
			if (!f)
				continue;
			if (fscanf(f, "%llu", &run) == 1) {
				sum += run;
				any = true;
			}
			fclose(f);
		}
		closedir(d);
	}
	if (any || !stat_fallback)
		return sum;
	if (!bench_proc_ticks(pid, &ticks))
		return 0;
	return ticks * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* ---------------------------------------------------------------------- */
/* The broker child: oneringd started per measurement, stopped by pid.     */

#define BENCH_BROKER_MAX_ARGS 40
#define BENCH_BROKER_ARG_SIZE 128

/* oneringd's command line, built with bench_arg(). */
struct bench_argv {
	char args[BENCH_BROKER_MAX_ARGS][BENCH_BROKER_ARG_SIZE];
	char *argv[BENCH_BROKER_MAX_ARGS + 1];
	int argc;
	bool overflow; /* an argument did not fit: bench_broker_spawn() refuses */
};

static inline void bench_arg(struct bench_argv *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Append one argument, printf-formatted. */
static inline void bench_arg(struct bench_argv *a, const char *fmt, ...)
{
	va_list ap;

	if (a->argc == BENCH_BROKER_MAX_ARGS) {
		a->overflow = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(a->args[a->argc], sizeof(a->args[a->argc]), fmt, ap);
	va_end(ap);
	a->argv[a->argc] = a->args[a->argc];
	a->argc++;
	a->argv[a->argc] = NULL;
}

/* The arguments every benchmark gives oneringd: named name, run in dir. */
static inline void bench_broker_args(struct bench_argv *a, const char *name, const char *dir)
{
	bench_arg(a, "--foreground");
	bench_arg(a, "--name");
	bench_arg(a, "%s", name);
	bench_arg(a, "--socket-dir");
	bench_arg(a, "%s", dir);
	bench_arg(a, "--ready-fd");
	bench_arg(a, "3");
	bench_arg(a, "--no-hugepages");
}

static inline void bench_broker_dump_log(const char *log)
{
	char line[512];
	FILE *f = fopen(log, "r");

	if (!f)
		return;
	fprintf(stderr, "---- oneringd log ----\n");
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fprintf(stderr, "----------------------\n");
	fclose(f);
}

/*
 * fork/exec a->argv with a pipe's write end as fd 3 and stdout/stderr to
 * log, and wait (10 s at most, less if `interrupted`) for the ready byte.
 * The child gets start_affinity (the broker checks its cores against what
 * it may use) and dies with this program. Call it from the only thread
 * that forks; the child only sets up fds and execs.
 *
 * @return 0 ready, *pid the child;
 *         -EIO it did not become ready: *pid is still the child (stop it);
 *         another -errno: *call failed ("pipe2", "fork"; "argv" for
 *         -E2BIG, too many arguments), *pid is -1.
 */
static inline int bench_broker_spawn(pid_t *pid, const char *log, struct bench_argv *a,
				     const char **call)
{
	pid_t parent = getpid();
	int p[2];

	*pid = -1;
	if (a->overflow) {
		*call = "argv";
		return -E2BIG;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		*call = "pipe2";
		return -errno;
	}
	*pid = fork();
	if (*pid < 0) {
		int e = -errno;
		close(p[0]);
		close(p[1]);
		*call = "fork";
		return e;
	}
	if (*pid == 0) {
		/* If this program dies without stopping it, so does the broker. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		/* Our threads may be pinned; the broker checks its cores against
		 * what it may use, so give it back what we were started with. */
		sched_setaffinity(0, sizeof(start_affinity), &start_affinity);
		if (p[1] == 3)
			fcntl(3, F_SETFD, 0);
		else if (dup2(p[1], 3) < 0)
			_exit(127);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(a->argv[0], a->argv);
		_exit(127);
	}
	close(p[1]);
	struct pollfd pfd = { .fd = p[0], .events = POLLIN, .revents = 0 };
	int r;
	do
		r = poll(&pfd, 1, 10000);
	while (r < 0 && errno == EINTR && !interrupted);
	char c = 0;
	bool ok = r == 1 && read(p[0], &c, 1) == 1 && c == 'R';
	close(p[0]);
	return ok ? 0 : -EIO;
}

/*
 * If the broker *pid has exited, say how, show its log and set *pid to -1.
 * @return true if it exited now; false if it runs (or *pid <= 0).
 */
static inline bool bench_broker_reap(pid_t *pid, const char *log)
{
	int status;

	if (*pid <= 0 || waitpid(*pid, &status, WNOHANG) != *pid)
		return false;
	if (WIFSIGNALED(status))
		fprintf(stderr, "oneringd %d was killed by signal %d\n", (int)*pid,
			WTERMSIG(status));
	else
		fprintf(stderr, "oneringd %d exited with status %d\n", (int)*pid,
			WEXITSTATUS(status));
	bench_broker_dump_log(log);
	*pid = -1;
	return true;
}

/*
 * SIGTERM the broker *pid, wait (5 s at most), SIGKILL if it does not go;
 * *pid becomes -1. Then remove dir (its socket directory) if dir[0], and
 * empty it; warn_dir: say what could not be removed.
 */
static inline void bench_broker_stop(pid_t *pid, char *dir, bool warn_dir)
{
	if (*pid > 0) {
		int status;
		kill(*pid, SIGTERM);
		for (int i = 0;; i++) {
			pid_t r = waitpid(*pid, &status, WNOHANG);
			if (r == *pid || (r < 0 && errno != EINTR))
				break;
			if (i == 500) { /* 5 s */
				fprintf(stderr, "oneringd %d ignored SIGTERM for 5 s: SIGKILL\n",
					(int)*pid);
				kill(*pid, SIGKILL);
				waitpid(*pid, &status, 0);
				break;
			}
			bench_sleep_ns(10000000ull);
		}
		*pid = -1;
	}
	if (dir[0]) {
		bench_remove_dir(dir, warn_dir);
		dir[0] = '\0';
	}
}

#endif /* ONERING_TOOLS_BENCH_COMMON_H */
