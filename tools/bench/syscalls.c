/* SPDX-License-Identifier: MIT */
/*
 * syscalls.c: counting the system calls a thread (or every thread of a
 * process) enters, with perf_event_open on the tracepoint
 * raw_syscalls:sys_enter. Needs root (or perf_event_paranoid <= -1) and
 * tracefs; mounts tracefs at /sys/kernel/tracing when it is missing. An
 * enabled syscall tracepoint slows every syscall on the machine: scenarios
 * count in a separate pass, never in the one that gives rates.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tools/bench/bench.h"

static long sys_enter_id = -2; /* -2: not looked up yet; -1: unavailable */

static long read_tracepoint_id(const char *root)
{
	char path[256];
	long id = -1;

	snprintf(path, sizeof(path), "%s/events/raw_syscalls/sys_enter/id", root);
	FILE *f = fopen(path, "r");
	if (f && fscanf(f, "%ld", &id) != 1)
		id = -1;
	if (f)
		fclose(f);
	return id;
}

static int counter_open(pid_t tid)
{
	struct perf_event_attr a = { .type = PERF_TYPE_TRACEPOINT, .size = sizeof(a),
				     .config = (uint64_t)sys_enter_id };
	int fd = (int)syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int bench_syscalls_open(struct bench_syscalls *c, pid_t pid, pid_t tid)
{
	char path[64];
	struct dirent *e;

	c->fd_count = 0;
	if (sys_enter_id == -2) {
		sys_enter_id = read_tracepoint_id("/sys/kernel/tracing");
		if (sys_enter_id < 0)
			sys_enter_id = read_tracepoint_id("/sys/kernel/debug/tracing");
		if (sys_enter_id < 0 &&
		    mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
			sys_enter_id = read_tracepoint_id("/sys/kernel/tracing");
		if (sys_enter_id < 0)
			fprintf(stderr, "warning: syscalls not counted: no tracepoint "
				"raw_syscalls/sys_enter (mount tracefs, run as root)\n");
	}
	if (sys_enter_id < 0)
		return -ENOTSUP;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)) && c->fd_count < BENCH_SYSCALLS_MAX_THREADS) {
		pid_t t = (pid_t)atoi(e->d_name); /* 0 for . and .. */
		int fd = t > 0 && (tid <= 0 || t == tid) ? counter_open(t) : -1;
		if (fd >= 0)
			c->fds[c->fd_count++] = fd;
	}
	closedir(d);
	return c->fd_count ? 0 : -ENOTSUP;
}

uint64_t bench_syscalls_read(const struct bench_syscalls *c)
{
	uint64_t sum = 0, v;

	for (unsigned i = 0; i < c->fd_count; i++)
		if (read(c->fds[i], &v, sizeof(v)) == (ssize_t)sizeof(v))
			sum += v;
	return sum;
}

void bench_syscalls_close(struct bench_syscalls *c)
{
	for (unsigned i = 0; i < c->fd_count; i++)
		close(c->fds[i]);
	c->fd_count = 0;
}
