/* SPDX-License-Identifier: MIT */
/*
 * broker.c: the oneringd child a measurement runs against, other children,
 * and where their programs are found: at run time, never compiled in:
 * $ONERINGD (or the like), next to onering-bench (an installed bindir), the
 * build tree (<dir>/../broker/oneringd), PATH. A child gets the CPUs this
 * program started with (the broker checks its cores against them) and dies
 * with it (PR_SET_PDEATHSIG); oneringd says it is ready with 'R' on fd 3.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/onering.h"
#include "tools/bench/bench.h"

#define BROKER_MAX_ARGS 48

uint64_t bench_schedstat_ns(pid_t pid, pid_t tid, int field)
{
	char path[64], task[400];
	unsigned long long v[2];
	struct dirent *e;
	uint64_t sum = 0;
	DIR *d;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && (tid <= 0 || atoi(e->d_name) == tid)) {
			snprintf(task, sizeof(task), "%s/%s/schedstat", path, e->d_name);
			FILE *f = fopen(task, "r");
			if (f && fscanf(f, "%llu %llu", &v[0], &v[1]) == 2)
				sum += v[field];
			if (f)
				fclose(f);
		}
	closedir(d);
	return sum;
}

int bench_find_program(const struct bench_ctx *ctx, const char *env, const char *name,
		       const char *build_subdir, char *out, size_t out_size)
{
	char tried[4][PATH_MAX];
	const char *path = getenv("PATH");
	const char *e = env ? getenv(env) : NULL;

	snprintf(tried[0], sizeof(tried[0]), "$%s%s%s", env, e ? "=" : " (unset)", e ? e : "");
	if (e && *e) { /* set: it, or an error, never a silent fallback */
		snprintf(out, out_size, "%s", e);
		return access(e, X_OK) == 0 ? 0 : bench_fail(-ENOENT, "onering-bench: $%s=%s is "
							      "not an executable", env, e);
	}
	snprintf(tried[1], sizeof(tried[1]), "%s/%s", ctx->self_dir, name);
	snprintf(tried[2], sizeof(tried[2]), "%s/../%s/%s", ctx->self_dir, build_subdir, name);
	for (int i = 1; i < 3; i++)
		if (access(tried[i], X_OK) == 0) {
			snprintf(out, out_size, "%s", tried[i]);
			return 0;
		}
	snprintf(tried[3], sizeof(tried[3]), "%s in PATH", name);
	while (path && *path) {
		size_t len = strcspn(path, ":");
		snprintf(out, out_size, "%.*s/%s", (int)len, path, name);
		if (len && access(out, X_OK) == 0)
			return 0;
		path += len + (path[len] == ':');
	}
	fprintf(stderr, "onering-bench: %s not found; tried %s, %s, %s, %s\n", name, tried[0],
		tried[1], tried[2], tried[3]);
	return -ENOENT;
}

static void dump_log(const char *log)
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

void bench_remove_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
				snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
				unlink(path);
			}
		closedir(d);
	}
	if (rmdir(dir) && errno != ENOENT)
		fprintf(stderr, "warning: cannot remove %s: %s\n", dir, strerror(errno));
}

/* Start argv with a pipe's write end as fd 3; wait (10 s) for its 'R'. */
static int spawn(struct bench_ctx *ctx, struct bench_broker *b, char **argv)
{
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	rc = bench_child_start(ctx, argv, b->log, NULL, p[1], &b->pid);
	close(p[1]);
	if (rc < 0) {
		close(p[0]);
		return rc;
	}
	struct pollfd pfd = { .fd = p[0], .events = POLLIN };
	int r;
	do
		r = poll(&pfd, 1, 10000);
	while (r < 0 && errno == EINTR && !bench_interrupted);
	char c = 0;
	bool ready = r == 1 && read(p[0], &c, 1) == 1 && c == 'R';
	close(p[0]);
	return ready ? 0 : -EIO;
}

int bench_broker_start(struct bench_ctx *ctx, struct bench_broker *b, const char *const *eal,
		       const char *const *extra)
{
	static char path[PATH_MAX];
	char *argv[BROKER_MAX_ARGS + 1];
	int argc = 0, rc;

	memset(b, 0, sizeof(*b));
	b->pid = -1;
	if (!path[0] && (rc = bench_find_program(ctx, "ONERINGD", "oneringd", "broker", path,
						    sizeof(path))) < 0)
		return rc;
	snprintf(b->dir, sizeof(b->dir), "/tmp/onering-bench-XXXXXX");
	if (!mkdtemp(b->dir)) {
		rc = -errno;
		b->dir[0] = '\0';
		return bench_fail(rc, "mkdtemp: %s", strerror(-rc));
	}
	snprintf(b->log, sizeof(b->log), "%s/oneringd.log", b->dir);
	snprintf(b->name, sizeof(b->name), "bench%d", (int)getpid());
	const char *own[] = { "--", "--foreground", "--name", b->name, "--socket-dir", b->dir,
			      "--ready-fd", "3", "--no-hugepages", NULL };
	argv[argc++] = path;
	for (const char *const *list[] = { eal, own, extra }, *const **l = list; l < list + 3; l++)
		for (const char *const *a = *l; a && *a && argc < BROKER_MAX_ARGS; a++)
			argv[argc++] = (char *)(uintptr_t)*a;
	argv[argc] = NULL;
	rc = spawn(ctx, b, argv);
	if (rc == -EIO && !bench_interrupted) {
		fprintf(stderr, "oneringd (%s) did not become ready\n", path);
		dump_log(b->log);
	}
	if (rc < 0)
		bench_broker_stop(ctx, b);
	return rc;
}

bool bench_broker_died(struct bench_broker *b)
{
	int status;

	if (b->pid <= 0 || waitpid(b->pid, &status, WNOHANG) != b->pid)
		return false;
	fprintf(stderr, "oneringd %d %s %d\n", (int)b->pid,
		WIFSIGNALED(status) ? "was killed by signal" : "exited with status",
		WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	dump_log(b->log);
	b->pid = -1;
	return true;
}

int bench_child_stop(pid_t pid)
{
	int status = 0;

	if (pid <= 0)
		return 0;
	kill(pid, SIGTERM);
	for (int i = 0;; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			break;
		if (i == 500) {
			fprintf(stderr, "pid %d ignored SIGTERM for 5 s: SIGKILL\n", (int)pid);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		bench_sleep_ns(10000000ull);
	}
	return status;
}

int bench_child_start(const struct bench_ctx *ctx, char *const argv[], const char *out_path,
		      const cpu_set_t *cpus, int ready_fd, pid_t *pid)
{
	pid_t parent = getpid();

	*pid = fork();
	if (*pid < 0)
		return bench_fail(-errno, "fork: %s", strerror(errno));
	if (*pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		sched_setaffinity(0, sizeof(*cpus), cpus ? cpus : &ctx->start_affinity);
		if (ready_fd == 3)
			fcntl(3, F_SETFD, 0); /* dup2(3, 3) would keep FD_CLOEXEC */
		else if (ready_fd >= 0 && dup2(ready_fd, 3) < 0)
			_exit(127);
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return 0;
}

void bench_broker_stop(struct bench_ctx *ctx, struct bench_broker *b)
{
	if (b->pid > 0) {
		ctx->child_cpu_ns += bench_proc_cpu_ns(b->pid);
		bench_child_stop(b->pid);
	}
	b->pid = -1;
	if (b->dir[0])
		bench_remove_dir(b->dir);
	b->dir[0] = '\0';
}

int bench_onering_open(struct bench_ctx *ctx, struct bench_broker *b, const char *const *eal,
		       const char *const *extra, const struct onering_queue_options *qo,
		       struct onering **att, struct onering_queue **q)
{
	struct onering_attach_options ao = { 0 };
	struct onering_queue_options dq = { 0 };
	int rc = bench_broker_start(ctx, b, eal, extra);

	*att = NULL;
	if (q)
		*q = NULL;
	if (rc < 0)
		return rc;
	ao.name = b->name;
	ao.socket_dir = b->dir;
	if ((rc = onering_attach_opts(&ao, att)) < 0)
		fprintf(stderr, "onering_attach: %s\n", onering_strerror(rc));
	else if (q && (rc = onering_queue_open(*att, qo ? qo : &dq, q)) < 0)
		fprintf(stderr, "onering_queue_open: %s\n", onering_strerror(rc));
	if (rc < 0)
		bench_onering_close(ctx, b, att, q);
	return rc;
}

void bench_onering_close(struct bench_ctx *ctx, struct bench_broker *b, struct onering **att,
			 struct onering_queue **q)
{
	if (q && *q)
		onering_queue_close(*q);
	if (*att)
		onering_detach(*att);
	if (q)
		*q = NULL;
	*att = NULL;
	bench_broker_stop(ctx, b);
}
