/* SPDX-License-Identifier: MIT */
/*
 * scenario_idle.c: nothing to do. A client with Q idle queues (epoll: Q idle
 * eventfds in one set) and one thread asleep waiting on the first; what the
 * broker and that thread cost per second: CPU, wake-ups (context switches),
 * and the poller's loops (docs/benchmarks.md, Idle). Peer hooks (state
 * starts with struct idle_common): setup (the Q queues or fds, the broker
 * if any in common.broker); consume(state, 0, &deadline_ns, 0): one wait,
 * until deadline_ns at the latest, returns the records it got (none
 * expected); teardown.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm/proto.h"
#include "tools/bench/peers.h"

enum { FIG_BROKER_PCT, FIG_BROKER_WAKE, FIG_APP_PCT, FIG_APP_WAKE, FIG_LOOPS, FIG_NS_LOOP,
       FIG_COUNT };

#define SETTLE_NS 300000000ull /* after the set-up, before the window */
#define MARGIN_NS 300000000ull /* the waiter's deadline after the window */

struct idle_run {
	const struct bench_peer_ops *peer;
	void *state;
	struct bench_team team;
	int cpu;
	uint64_t deadline_ns, records;
	pid_t tid;
};

/* Context switches (voluntary and not) of thread tid of pid, or of all its
 * threads (tid 0): each is a wake-up of a thread that slept or was
 * preempted. */
static uint64_t switches(pid_t pid, pid_t tid)
{
	char path[64], file[400], line[128];
	struct dirent *e;
	uint64_t sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (pid <= 0 || !(d = opendir(path)))
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || (tid > 0 && atoi(e->d_name) != tid))
			continue;
		snprintf(file, sizeof(file), "%s/%s/status", path, e->d_name);
		FILE *f = fopen(file, "r");
		unsigned long long v;
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
				sum += v;
		if (f)
			fclose(f);
	}
	closedir(d);
	return sum;
}

static int loops_item(const struct onering_msg *m, void *arg)
{
	const struct onering_msg_stats_item *it = &m->u.stats_item;

	if (it->what == ONERING_STATS_POLLER)
		*(uint64_t *)arg += it->counter[ONERING_PC_LOOPS];
	return 0;
}

static void *waiter_main(void *arg)
{
	struct idle_run *r = arg;

	r->tid = (pid_t)syscall(SYS_gettid);
	bench_team_pin(&r->team, "waiter", r->cpu, NULL);
	bench_team_ready(&r->team, true);
	while (bench_now_ns() < r->deadline_ns) {
		int n = r->peer->consume(r->state, 0, &r->deadline_ns, 0);
		if (n < 0) {
			bench_team_fail(&r->team, "%s: wait: %s", r->peer->name, strerror(-n));
			break;
		}
		r->records += (uint64_t)n;
	}
	return NULL;
}

struct idle_sample {
	uint64_t t, broker_cpu, broker_sw, app_cpu, app_sw, loops;
};

/* first: the window's start (the broker's loops before the rest, so the
 * STATS exchange itself stays out of the window), else its end. */
static int sample(struct idle_common *c, struct idle_run *r, struct idle_sample *s, bool first)
{
	int rc = 0;

	s->loops = 0;
	if (first && c->broker.pid > 0)
		rc = bench_broker_stats(&c->broker, loops_item, &s->loops);
	s->t = bench_now_ns();
	s->broker_cpu = bench_proc_cpu_ns(c->broker.pid);
	s->broker_sw = switches(c->broker.pid, 0);
	s->app_cpu = bench_schedstat_ns(getpid(), r->tid, 0);
	s->app_sw = switches(getpid(), r->tid);
	if (!first && c->broker.pid > 0)
		rc = bench_broker_stats(&c->broker, loops_item, &s->loops);
	return rc;
}

static int idle_measure(struct bench_ctx *ctx, const struct bench_peer_ops *peer, void *state,
			uint64_t queues, double *fig)
{
	struct idle_common *c = state;
	struct idle_run r = { .peer = peer, .state = state, .cpu = ctx->cores[0] };
	struct idle_sample a, b;
	uint64_t window = bench_param(ctx, "seconds") * 1000000000ull;
	int rc;

	c->queues = (unsigned)queues;
	c->broker_cpu = ctx->cores[1];
	if ((rc = peer->setup(ctx, peer, state)) < 0)
		goto out;
	r.deadline_ns = bench_now_ns() + SETTLE_NS + window + MARGIN_NS;
	bench_team_init(&r.team);
	if ((rc = bench_team_start(&r.team, waiter_main, &r)) < 0)
		goto out;
	if (bench_team_wait(&r.team)) {
		bench_team_open(&r.team);
		bench_sleep_ns(SETTLE_NS);
		rc = sample(c, &r, &a, true);
		bench_sleep_ns(window);
		rc = rc ? rc : sample(c, &r, &b, false);
	}
	bench_team_join(&r.team, 0);
	if (rc == 0 && bench_team_failed(&r.team))
		rc = bench_fail(BENCH_WRONG, "%s", r.team.err);
	if (rc == 0 && r.records)
		rc = bench_fail(BENCH_WRONG, "%s: %" PRIu64 " records with nothing to do",
				peer->name, r.records);
	if (rc == 0) {
		double s = (double)(b.t - a.t) / 1e9;
		bool broker = c->broker.pid > 0;
		fig[FIG_BROKER_PCT] = broker ? (double)(b.broker_cpu - a.broker_cpu) / 1e7 / s : -1;
		fig[FIG_BROKER_WAKE] = broker ? (double)(b.broker_sw - a.broker_sw) / s : -1;
		fig[FIG_APP_PCT] = (double)(b.app_cpu - a.app_cpu) / 1e7 / s;
		fig[FIG_APP_WAKE] = (double)(b.app_sw - a.app_sw) / s;
		fig[FIG_LOOPS] = broker ? (double)(b.loops - a.loops) / s : -1;
		fig[FIG_NS_LOOP] = broker && b.loops > a.loops
					   ? (double)(b.broker_cpu - a.broker_cpu) /
						     (double)(b.loops - a.loops)
					   : -1;
	}
out:
	peer->teardown(ctx, state);
	return rc;
}

static const struct bench_peer_ops *const idle_peers[] = {
	&bench_peer_idle_onering, &bench_peer_idle_onering_overprov, &bench_peer_idle_onering_busy,
	&bench_peer_idle_epoll,
};

static struct bench_param idle_params[] = {
	BENCH_INT("seconds", "the measured window, s", 4, 1, 1, 3600),
};

BENCH_SCENARIO(idle, "queues", "10,1000", "10,1000", "0,1", 3, 1,
	.about = "nothing to do: CPU and wake-ups per second of the broker and of a client "
		"asleep waiting, with Q idle queues (epoll: Q idle fds)",
	.cores_help = "the client's waiting thread W, oneringd B",
	.fig_names = "broker_cpu%:2 broker_wakes/s:1 app_cpu%:2 app_wakes/s:1 loops/s "
		"ns/loop:1",
	/* The targets: broker < 1 % and client 0 wake-ups/s are read off the
	 * table (docs/benchmarks.md, Idle); the busy loop's cost with 1,000
	 * idle queues <= 1.1x its cost with 10. */
	.ratio_text = "ns/loop onering-busy@1000 onering-busy@10 <=1.1"
);
