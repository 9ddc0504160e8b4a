/* SPDX-License-Identifier: MIT */
/*
 * broker.c: the oneringd child a measurement runs against, found and run
 * through tools/common/child.h ($ONERINGD, beside onering-bench, the build
 * tree, PATH). It gets the CPUs this program started with (the broker
 * checks its cores against them) and dies with it; it says it is ready
 * with 'R' on fd 3.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/onering.h"
#include "shm/proto.h"
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

/* Start argv with a pipe's write end as fd 3; wait (10 s) for its 'R'. */
static int spawn(struct bench_ctx *ctx, struct bench_broker *b, char **argv)
{
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	rc = tool_child_start(argv, b->log, &ctx->start_affinity, p[1], &b->pid);
	close(p[1]);
	if (rc < 0) {
		close(p[0]);
		return rc;
	}
	return tool_child_wait_ready(p[0], 10000);
}

int bench_broker_start(struct bench_ctx *ctx, struct bench_broker *b, const char *const *eal,
		       const char *const *extra)
{
	static char path[PATH_MAX];
	char *argv[BROKER_MAX_ARGS + 1];
	int argc = 0, rc;

	memset(b, 0, sizeof(*b));
	b->pid = -1;
	if (!path[0] && (rc = tool_find_program(ctx->self_dir, "ONERINGD", "oneringd", "broker",
						   NULL, path, sizeof(path))) < 0)
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

void bench_broker_stop(struct bench_ctx *ctx, struct bench_broker *b)
{
	if (b->pid > 0) {
		ctx->child_cpu_ns += bench_proc_cpu_ns(b->pid);
		tool_child_stop(b->pid);
	}
	b->pid = -1;
	if (b->dir[0])
		tool_remove_dir(b->dir);
	b->dir[0] = '\0';
}

int bench_broker_stats(const struct bench_broker *b,
		       int (*item)(const struct onering_msg *m, void *arg), void *arg)
{
	char path[256], err[256] = "";
	struct onering_msg req, rep;
	int ctl = -1, rc;

	if ((rc = onering_socket_path(b->name, b->dir, path, sizeof(path))) < 0 ||
	    (rc = onering_proto_connect(path, b->name, -1, &ctl, NULL, err, sizeof(err))) < 0)
		return bench_fail(rc, "stats connection to oneringd: %s %s", strerror(-rc), err);
	onering_msg_init(&req, ONERING_MSG_STATS, 1);
	rc = onering_proto_call(ctl, &req, &rep, item, arg, 5000);
	close(ctl);
	return rc;
}

int bench_onering_open(struct bench_ctx *ctx, struct bench_broker *b, const char *const *eal,
		       const char *const *extra, const struct onering_queue_options *qo,
		       struct onering **att, struct onering_queue **q)
{
	struct onering_attach_options ao = { .name = b->name, .socket_dir = b->dir };
	int rc = bench_broker_start(ctx, b, eal, extra);

	if (rc < 0)
		return rc;
	if ((rc = onering_attach_opts(&ao, att)) < 0)
		fprintf(stderr, "onering_attach: %s\n", onering_strerror(rc));
	else if (q && (rc = onering_queue_open(*att, qo, q)) < 0)
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
