/* SPDX-License-Identifier: MIT */
/*
 * dpdk.c: this process's DPDK EAL, for the peers that use DPDK (rte_ring,
 * event_sw, event_dsw, the in-process NIC peers). Built only when libdpdk
 * is found. One EAL per process, started by the first peer that needs it
 * and cleaned up at exit, with its runtime directory (rte_eal_cleanup()
 * leaves the unique --file-prefix directory behind).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "tools/bench/bench.h"

static int eal_status = 1; /* 1: not started; 0 up; -errno failed */
static char eal_runtime_dir[PATH_MAX];

static void eal_stop(void)
{
	rte_eal_cleanup();
	if (strstr(eal_runtime_dir, "onering-bench-"))
		tool_remove_dir(eal_runtime_dir);
}

int bench_eal_start(struct bench_ctx *ctx, const char *lcores, const char *const *extra)
{
	static char prefix[64];
	char *argv[40];
	int argc = 0;

	if (eal_status <= 0)
		return eal_status;
	snprintf(prefix, sizeof(prefix), "onering-bench-%ld", (long)getpid());
	const char *fixed[] = { "onering-bench", "--no-huge", "--no-pci", "--no-shconf",
				"--no-telemetry", "-m", "512", "--file-prefix", prefix,
				"--log-level", "error", "-l", lcores, NULL };
	for (const char *const *a = fixed; *a; a++)
		argv[argc++] = (char *)(uintptr_t)*a;
	for (const char *const *a = extra; a && *a && argc < 39; a++)
		argv[argc++] = (char *)(uintptr_t)*a;
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0) {
		eal_status = rte_errno > 0 ? -rte_errno : -EINVAL;
		return bench_fail(eal_status, "rte_eal_init: %s (needs CPUs %s and a writable "
				  "/var/run/dpdk or $XDG_RUNTIME_DIR; --peers without DPDK peers "
				  "skips it)", rte_strerror(rte_errno), lcores);
	}
	snprintf(eal_runtime_dir, sizeof(eal_runtime_dir), "%s", rte_eal_get_runtime_dir());
	atexit(eal_stop);
	/* rte_eal_init pinned this thread to the main lcore: undo that. */
	pthread_setaffinity_np(pthread_self(), sizeof(ctx->start_affinity), &ctx->start_affinity);
	eal_status = 0;
	return 0;
}
