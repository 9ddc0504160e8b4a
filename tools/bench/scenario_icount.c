/* SPDX-License-Identifier: MIT */
/*
 * scenario_icount.c: instructions per event under callgrind (valgrind),
 * single-threaded workloads with fixed work, so the figures do not depend
 * on the machine's load (docs/benchmarks.md, Instructions per event).
 * Each peer runs one program under valgrind --tool=callgrind with
 * --toggle-collect on the functions that do the counted work, and divides
 * the instructions collected by the events the program says it moved:
 *   onering-broker  oneringd's submit_poll + deliver_flush (drain, route,
 *                   decide, copy, publish) while onering-icount posts bursts
 *                   of 32 to a group of one member (the broker is run under
 *                   valgrind through a wrapper; the client runs natively)
 *   onering-post    onering_post_burst, bursts of 32
 *   onering-peek    onering_peek + onering_advance per record
 *   onering-empty   one onering_poll with nothing to take
 *   sw-sched        DPDK event_sw's scheduler (its service run) moving the
 *                   same bursts of 32 to C consumer ports (onering-icount-sw)
 *   sw-enqueue, sw-dequeue  its producer's and consumers' calls
 * Peer variant: struct icount_peer. The sweep: C, event_sw's consumer ports
 * (onering's figures do not depend on it: one member).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/bench/peers.h"

enum { FIG_INSTR, FIG_EVENTS, FIG_COUNT };

struct icount_peer {
	bool sw;              /* onering-icount-sw, else onering-icount */
	bool broker;          /* count oneringd (through the wrapper), not the client */
	const char *mode;     /* onering-icount's MODE, or event_sw's queue type */
	const char *toggles;  /* --toggle-collect=... options, space-separated */
	const char *per;      /* the program's output line that gives the events */
};

struct icount_state {
	char dir[64];
};

static char valgrind[PATH_MAX], icount[PATH_MAX], icount_sw[PATH_MAX], oneringd[PATH_MAX];

/* The collected instructions of a callgrind output file ("summary:" or
 * "totals:" line), or -1. */
static double callgrind_total(const char *path)
{
	char line[512];
	double total = -1;
	FILE *f = fopen(path, "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "summary: %lf", &total) == 1 ||
		    sscanf(line, "totals: %lf", &total) == 1)
			break;
	if (f)
		fclose(f);
	return total;
}

/* The number after "per" at the start of a line of the program's output. */
static double output_count(const char *path, const char *per)
{
	char line[512];
	double n = -1;
	size_t len = strlen(per);
	FILE *f = fopen(path, "r");

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, per, len) == 0 && line[len] == ' ')
			n = strtod(line + len + 1, NULL);
	if (f)
		fclose(f);
	return n;
}

/* Run argv, its output to out; its CPU is the child's (not a disturbance). */
static int run(struct bench_ctx *ctx, char *const argv[], const char *out)
{
	struct rusage ru;
	pid_t pid;
	int status, rc = tool_child_start(argv, out, NULL, -1, &pid);

	if (rc < 0)
		return rc;
	while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
		;
	ctx->child_cpu_ns += (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
			     (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return bench_fail(-EIO, "icount: %s failed (status %d); its output: %s", argv[0],
				  status, out);
	return 0;
}

static int icount_init(struct bench_ctx *ctx)
{
	int rc = tool_find_program(ctx->self_dir, "VALGRIND", "valgrind", "bin", NULL, valgrind,
				   sizeof(valgrind));
	if (rc < 0)
		return bench_fail(rc, "icount: needs valgrind (apt-get install valgrind)");
	if ((rc = tool_find_program(ctx->self_dir, "ONERING_ICOUNT", "onering-icount",
				    "tools/icount", NULL, icount, sizeof(icount))) < 0 ||
	    (rc = tool_find_program(ctx->self_dir, "ONERINGD", "oneringd", "broker", NULL,
				    oneringd, sizeof(oneringd))) < 0)
		return rc;
	if (BENCH_HAVE_DPDK)
		tool_find_program(ctx->self_dir, "ONERING_ICOUNT_SW", "onering-icount-sw",
				  "tools/icount", NULL, icount_sw, sizeof(icount_sw));
	return 0;
}

static int icount_measure(struct bench_ctx *ctx, const struct bench_peer_ops *peer, void *state,
			  uint64_t consumers, double *fig)
{
	const struct icount_peer *v = (const struct icount_peer *)peer->variant;
	struct icount_state *s = state;
	char cg[128], out[128], wrap[128], ports[16], work[16], opts[256], *argv[16];
	char *tog[4], *save = NULL;
	unsigned argc = 0, ntog = 0;
	int rc;

	if (v->sw && !icount_sw[0])
		return BENCH_NA; /* built without DPDK */
	if (!v->sw && consumers != 1)
		return BENCH_NA; /* onering's workloads have one member */
	snprintf(s->dir, sizeof(s->dir), "/tmp/onering-bench-icount-XXXXXX");
	if (!mkdtemp(s->dir))
		return -errno;
	snprintf(cg, sizeof(cg), "%s/cg.out", s->dir);
	snprintf(out, sizeof(out), "%s/output", s->dir);
	snprintf(opts, sizeof(opts), "%s", v->toggles);
	for (char *t = strtok_r(opts, " ", &save); t && ntog < 4; t = strtok_r(NULL, " ", &save))
		tog[ntog++] = t;
	static char tool[] = "--tool=callgrind";
	char cg_opt[160];
	snprintf(cg_opt, sizeof(cg_opt), "--callgrind-out-file=%s", cg);
	if (v->broker) {
		/* oneringd under callgrind, started by onering-icount as ONERINGD. */
		FILE *f;
		snprintf(wrap, sizeof(wrap), "%s/oneringd", s->dir);
		if (!(f = fopen(wrap, "w")))
			return -errno;
		fprintf(f, "#!/bin/sh\nexec '%s' %s %s", valgrind, tool, cg_opt);
		for (unsigned k = 0; k < ntog; k++)
			fprintf(f, " %s", tog[k]);
		fprintf(f, " '%s' \"$@\"\n", oneringd);
		fclose(f);
		chmod(wrap, 0700);
		argv[argc++] = icount;
		argv[argc++] = wrap;
		argv[argc++] = (char *)(uintptr_t)v->mode;
	} else {
		argv[argc++] = valgrind;
		argv[argc++] = tool;
		argv[argc++] = cg_opt;
		for (unsigned k = 0; k < ntog; k++)
			argv[argc++] = tog[k];
		argv[argc++] = v->sw ? icount_sw : icount;
		if (v->sw) {
			snprintf(ports, sizeof(ports), "%u", (unsigned)consumers);
			argv[argc++] = ports;
		} else {
			argv[argc++] = oneringd;
		}
		argv[argc++] = (char *)(uintptr_t)v->mode;
	}
	if (!v->sw) {
		snprintf(work, sizeof(work), "%u", (unsigned)bench_param(ctx, "work"));
		argv[argc++] = work;
	}
	argv[argc] = NULL;
	rc = run(ctx, argv, out);
	double instr = callgrind_total(cg), events = output_count(out, v->per);
	if (rc == 0 && (instr < 0 || events <= 0))
		rc = bench_fail(-EIO, "icount: %s: no count in %s or %s", peer->name, cg, out);
	if (rc == 0) {
		fig[FIG_INSTR] = instr / events;
		fig[FIG_EVENTS] = events;
	}
	tool_remove_dir(s->dir);
	return rc;
}

#define ICOUNT_PEER(var, pname, text, ...)                                                       \
	static const struct icount_peer var##_v = { __VA_ARGS__ };                              \
	static BENCH_PEER(var, pname, text, NULL, struct icount_state, &var##_v, NULL, NULL,     \
			  NULL, NULL, NULL)

ICOUNT_PEER(icount_broker, "onering-broker", "oneringd's submit_poll + deliver_flush per posted "
	    "event (rr, one member)", .broker = true, .mode = "post", .per = "posts",
	    .toggles = "--toggle-collect=submit_poll --toggle-collect=deliver_flush");
ICOUNT_PEER(icount_post, "onering-post", "onering_post_burst per posted event (bursts of 32)",
	    .mode = "post", .per = "posts", .toggles = "--toggle-collect=onering_post_burst");
ICOUNT_PEER(icount_peek, "onering-peek", "onering_peek + onering_advance per record",
	    .mode = "peek", .per = "records",
	    .toggles = "--toggle-collect=onering_peek --toggle-collect=onering_advance");
ICOUNT_PEER(icount_empty, "onering-empty", "onering_poll with nothing to take, per call",
	    .mode = "empty", .per = "empty polls", .toggles = "--toggle-collect=onering_poll");
ICOUNT_PEER(icount_sw_sched, "sw-sched", "event_sw's scheduler (service run) per event, "
	    "parallel queue", .sw = true, .mode = "parallel", .per = "events",
	    .toggles = "--toggle-collect=rte_service_run_iter_on_app_lcore");
ICOUNT_PEER(icount_sw_atomic, "sw-sched-atomic", "the same, atomic queue", .sw = true,
	    .mode = "atomic", .per = "events",
	    .toggles = "--toggle-collect=rte_service_run_iter_on_app_lcore");
ICOUNT_PEER(icount_sw_enq, "sw-enqueue", "event_sw's enqueue per event (bursts of 32)",
	    .sw = true, .mode = "parallel", .per = "events",
	    .toggles = "--toggle-collect=swcount_enqueue");
ICOUNT_PEER(icount_sw_deq, "sw-dequeue", "event_sw's dequeue per event (with its releases)",
	    .sw = true, .mode = "parallel", .per = "events",
	    .toggles = "--toggle-collect=swcount_dequeue");

static const struct bench_peer_ops *const icount_peers[] = {
	&icount_broker, &icount_post, &icount_peek, &icount_empty,
	&icount_sw_sched, &icount_sw_atomic, &icount_sw_enq, &icount_sw_deq,
};

static struct bench_param icount_params[] = {
	BENCH_INT("work", "onering-icount's rounds of 1,000 posts (and 256 fd records)", 4, 2, 1,
		  1000),
};

BENCH_SCENARIO(icount, "consumers", "1,4", "1", NULL, 1, 1,
	.about = "instructions per event under callgrind (needs valgrind): oneringd's posted-event "
		"path and libonering's post and consume vs DPDK event_sw's scheduler, enqueue and "
		"dequeue",
	.cores_help = "none (single-threaded, counted: the load does not change the figures)",
	.fig_names = "instr/event:1 events",
	.ratio_text = "instr/event onering-broker sw-sched <=1; instr/event onering-post sw-enqueue; "
		"instr/event onering-peek sw-dequeue",
	.init = icount_init
);
