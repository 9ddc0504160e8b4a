/* SPDX-License-Identifier: MIT */
/*
 * scenario_readiness.c: fd readiness -> consumer thread, onering against
 * epoll and io_uring multishot poll (method: docs/benchmarks.md, Readiness).
 *
 * Peer hooks (state starts with struct readiness_common):
 *   setup(ctx, self, state)   watch common.rfd[0..n) (main thread)
 *   control(state, BENCH_OP_THREAD_INIT / _FINI)  on the consumer thread
 *   consume(state, 0, ready_event[], max)  what is ready now (busy peers) or
 *                             within READINESS_BLOCK_MS; -errno
 *   teardown(ctx, state)
 *
 * Ordering contract: phase (main R0, threads A0); stamp_ns (producer R1
 * before its write, consumer A1 after taking the event); acked (consumer R2
 * after its read, producer A2 before the next write); the producer sleeps
 * on ack_futex: ack_waiting = 1, F3 seq_cst fence, re-check acked, WAIT;
 * the consumer: acked (R2), F4 seq_cst fence, if ack_waiting: bump (R5,
 * producer's A5 ticket) and WAKE; F3/F4 make one side see the other's
 * store. cons_done (consumer R6, main A6) and cons_release (main R7,
 * consumer A7) keep the counted syscalls to the loop. writes, events,
 * units: single-writer, relaxed; exact totals after the joins.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tools/bench/peers.h"

#define LOST_NS 2000000000ull /* a write not read back within this is lost */
#define GAP_MIN_NS 30000u      /* latency: pause after each ack, 30..70 us */
#define GAP_SPAN_NS 40000u

enum {
	FIG_EVENTS, FIG_WRITES, FIG_WRITES_PER_EVENT, FIG_CONS_CPU_US, FIG_TOTAL_CPU_US,
	FIG_SC_EVENT, FIG_SC_BEYOND_READ, FIG_BROKER_SC, FIG_P50_US, FIG_P99_US, FIG_P999_US,
	FIG_HARVEST_P50_US, FIG_HARVEST_P99_US, FIG_HARVEST_NEG, FIG_HANDOFF_P50_US, FIG_COUNT
};
enum { PHASE_SETUP, PHASE_WARMUP, PHASE_MEASURE, PHASE_DRAIN, PHASE_STOP };
enum { MODE_BOTH, MODE_THROUGHPUT, MODE_LATENCY };
enum { SOURCE_EVENTFD, SOURCE_PIPE };

struct run {
	const struct bench_peer_ops *peer;
	void *state;
	struct readiness_common *c;
	bool latency, pipe;
	unsigned n;
	int *rfd, *wfd;
	uint64_t *wrote, *drained; /* per source: producer's, consumer's */
	uint64_t *lat, *lat_harvest;
	size_t lat_cap, lat_n;
	pid_t tid_cons, tid_prod;
	int cpu_cons, cpu_prod;
	uint64_t cons_reads; /* consumer's read() calls, final after its join */
	struct bench_team team; /* consumer, producer */
	ONERING_ATOMIC(int) phase;  /* main: R0 */
	ONERING_ATOMIC(int) cons_done; /* consumer: loop over, totals final */
	ONERING_ATOMIC(int) cons_release; /* main: counters read, it may finish */
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) writes; /* producer */
	ONERING_ATOMIC(uint64_t) stamp_ns;                            /* producer: R1 */
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint64_t) events;  /* consumer */
	ONERING_ATOMIC(uint64_t) units;                               /* consumer */
	ONERING_ATOMIC(uint64_t) acked;                               /* consumer: R2 */
	ONERING_ATOMIC(uint32_t) ack_futex;                           /* consumer: R5 */
	alignas(ONERING_CACHE_LINE) ONERING_ATOMIC(uint32_t) ack_waiting; /* producer */
};

#define run_fail(r, ...) bench_team_fail(&(r)->team, __VA_ARGS__)
#define run_failed(r) bench_team_failed(&(r)->team)

/* A0 (the threads) synchronises with R0 (main's store of the phase). */
#define phase_get(r) onering_atomic_load(&(r)->phase, onering_mo_acquire)
#define phase_set(r, p) onering_atomic_store(&(r)->phase, p, onering_mo_release)

static long futex_call(ONERING_ATOMIC(uint32_t) *word, int op, uint32_t val,
		       const struct timespec *timeout)
{
	return syscall(SYS_futex, (uint32_t *)(uintptr_t)word, op, val, timeout, NULL, 0);
}

static BENCH_ALWAYS_INLINE ssize_t source_write(const struct run *r, unsigned idx)
{
	static const uint64_t one = 1;

	return r->pipe ? write(r->wfd[idx], "x", 1) : write(r->wfd[idx], &one, sizeof(one));
}

static void produce_full_speed(struct run *r)
{
	uint64_t w = 0;
	unsigned idx = 0;

	while (phase_get(r) <= PHASE_MEASURE && !run_failed(r)) {
		for (unsigned k = 0; k < 16; k++) {
			if (ONERING_LIKELY(source_write(r, idx) > 0)) {
				r->wrote[idx]++;
				w++;
			} else if (errno != EAGAIN) { /* a full pipe: try the next */
				run_fail(r, "producer: write to source %u: %s", idx, strerror(errno));
				return;
			}
			idx = idx + 1 == r->n ? 0 : idx + 1;
		}
		onering_atomic_store(&r->writes, w, onering_mo_relaxed);
	}
}

/* Sleep until the consumer acknowledged w writes; false if lost or stopped. */
static bool wait_ack(struct run *r, uint64_t w)
{
	const struct timespec slice = { .tv_sec = 0, .tv_nsec = 100000000 };
	uint64_t since = bench_now_ns();

	while (onering_atomic_load(&r->acked, onering_mo_acquire) < w) { /* A2 */
		if (run_failed(r) || bench_interrupted || phase_get(r) > PHASE_MEASURE)
			return false;
		if (bench_now_ns() - since > LOST_NS) {
			run_fail(r, "latency: write %" PRIu64 " not taken within 2 s (lost)", w);
			return false;
		}
		uint32_t ticket = onering_atomic_load(&r->ack_futex, onering_mo_acquire); /* A5 */
		onering_atomic_store(&r->ack_waiting, 1u, onering_mo_relaxed);
		onering_fence(onering_mo_seq_cst); /* F3, pairs with F4 in take_event() */
		if (onering_atomic_load(&r->acked, onering_mo_acquire) < w)
			futex_call(&r->ack_futex, FUTEX_WAIT_PRIVATE, ticket, &slice);
		onering_atomic_store(&r->ack_waiting, 0u, onering_mo_relaxed);
	}
	return true;
}

static void produce_paced(struct run *r)
{
	uint64_t w = 0, now = bench_now_ns();
	unsigned short rnd[3] = { (unsigned short)now, (unsigned short)(now >> 16), 0x330e };

	while (phase_get(r) <= PHASE_MEASURE && !run_failed(r)) {
		if (!wait_ack(r, w))
			return;
		/* A random pause, never in step with a poller loop. */
		bench_sleep_ns(GAP_MIN_NS + (uint64_t)nrand48(rnd) % GAP_SPAN_NS);
		if (phase_get(r) > PHASE_MEASURE)
			break;
		unsigned idx = (unsigned)(w % r->n);
		onering_atomic_store(&r->stamp_ns, bench_now_ns(), onering_mo_release); /* R1 */
		if (source_write(r, idx) <= 0) {
			run_fail(r, "producer: write to source %u: %s", idx, strerror(errno));
			return;
		}
		r->wrote[idx]++;
		onering_atomic_store(&r->writes, ++w, onering_mo_relaxed);
	}
}

static void *producer_main(void *arg)
{
	struct run *r = arg;

	prctl(PR_SET_TIMERSLACK, 1ul); /* latency-mode sleeps end when asked */
	r->tid_prod = (pid_t)syscall(SYS_gettid);
	bench_team_pin(&r->team, "producer", r->cpu_prod, NULL);
	bench_team_ready(&r->team, true); /* the gate opens at the warm-up */
	if (run_failed(r))
		return NULL;
	if (r->latency)
		produce_paced(r);
	else
		produce_full_speed(r);
	return NULL;
}

struct consumer {
	struct run *r;
	uint64_t events, units, reads, acked;
};

static BENCH_ALWAYS_INLINE void take_event(struct consumer *c, const struct ready_event *ev)
{
	struct run *r = c->r;
	uint64_t t = r->latency ? bench_now_ns() : 0, got = 0;
	char buf[4096];
	ssize_t k;

	if (ONERING_UNLIKELY(ev->idx >= r->n)) {
		run_fail(r, "consumer: event for source %u of %u", ev->idx, r->n);
		return;
	}
	do { /* an eventfd: once; a pipe: until a short read */
		k = read(r->rfd[ev->idx], buf, r->pipe ? sizeof(buf) : sizeof(uint64_t));
		c->reads++;
		if (k > 0)
			got += r->pipe ? (uint64_t)k : *(uint64_t *)(void *)buf;
		else if (k < 0 && errno != EAGAIN)
			run_fail(r, "consumer: read source %u: %s", ev->idx, strerror(errno));
	} while (r->pipe && k == (ssize_t)sizeof(buf));
	c->events++;
	c->units += got;
	r->drained[ev->idx] += got;
	if (!got || !r->latency)
		return;
	uint64_t stamp = onering_atomic_load(&r->stamp_ns, onering_mo_acquire); /* A1 */
	if (phase_get(r) == PHASE_MEASURE && r->lat_n < r->lat_cap) {
		r->lat[r->lat_n] = t - stamp;
		r->lat_harvest[r->lat_n++] = ev->broker_ns ? ev->broker_ns - stamp : 0;
	}
	c->acked += got;
	onering_atomic_store(&r->acked, c->acked, onering_mo_release); /* R2 */
	onering_fence(onering_mo_seq_cst); /* F4, pairs with F3 in wait_ack() */
	if (onering_atomic_load(&r->ack_waiting, onering_mo_relaxed)) {
		onering_atomic_fetch_add(&r->ack_futex, 1u, onering_mo_release); /* R5 */
		futex_call(&r->ack_futex, FUTEX_WAKE_PRIVATE, 1, NULL);
	}
}

static void *consumer_main(void *arg)
{
	struct run *r = arg;
	struct consumer c = { .r = r };
	struct ready_event evs[READINESS_BATCH];

	r->tid_cons = (pid_t)syscall(SYS_gettid);
	int rc = bench_team_pin(&r->team, "consumer", r->cpu_cons, NULL);
	if (rc == 0)
		rc = bench_control(r->peer, r->state, BENCH_OP_THREAD_INIT, NULL);
	if (rc < 0 && rc != -ENOTSUP)
		run_fail(r, "%s: consumer setup: %s", r->peer->name, strerror(-rc));
	bench_team_ready(&r->team, false); /* it takes events from the start */
	if (rc < 0 && rc != -ENOTSUP)
		return NULL;
	while (phase_get(r) != PHASE_STOP && !run_failed(r)) {
		int k = r->peer->consume(r->state, 0, evs, READINESS_BATCH);
		if (ONERING_UNLIKELY(k < 0)) {
			run_fail(r, "%s: %s", r->peer->name, strerror(-k));
			break;
		}
		for (int i = 0; i < k; i++)
			take_event(&c, &evs[i]);
		if (k > 0) {
			onering_atomic_store(&r->events, c.events, onering_mo_relaxed);
			onering_atomic_store(&r->units, c.units, onering_mo_relaxed);
		} else {
			onering_cpu_relax();
		}
	}
	r->cons_reads = c.reads;
	/* R6: main reads the counters only after the loop; then R7 lets us go,
	 * so the count holds the loop, not the peer's teardown. */
	onering_atomic_store(&r->cons_done, 1, onering_mo_release);
	while (!onering_atomic_load(&r->cons_release, onering_mo_acquire))
		onering_cpu_relax();
	bench_control(r->peer, r->state, BENCH_OP_THREAD_FINI, NULL);
	return NULL;
}

/* At either end of the window: CPU time (all: consumer, producer and broker)
 * and the time those waited for a CPU. */
struct snapshot {
	uint64_t wall_ns, events, units, cons_cpu_ns, all_cpu_ns, wait_ns;
};

static void snapshot_take(struct run *r, clockid_t cons, clockid_t prod, struct snapshot *s)
{
	pid_t broker = r->c->broker.pid;

	s->wall_ns = bench_now_ns();
	s->events = onering_atomic_load(&r->events, onering_mo_relaxed);
	s->units = onering_atomic_load(&r->units, onering_mo_relaxed);
	s->cons_cpu_ns = bench_clock_ns(cons);
	s->all_cpu_ns = s->cons_cpu_ns + bench_clock_ns(prod) + bench_proc_cpu_ns(broker);
	s->wait_ns = bench_cpu_wait_ns(getpid(), r->tid_cons) +
		     bench_cpu_wait_ns(getpid(), r->tid_prod) + bench_cpu_wait_ns(broker, 0);
}

static int sources_open(struct run *r)
{
	for (unsigned i = 0; i < r->n; i++) {
		int p[2];
		if (r->pipe ? pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0
			    : (p[0] = p[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
			return bench_fail(-errno, "source %u of %u: %s (ulimit -Hn?)", i, r->n,
					  strerror(errno));
		r->rfd[i] = p[0];
		r->wfd[i] = p[1];
	}
	return 0;
}

static void sources_close(struct run *r)
{
	for (unsigned i = 0; r->rfd && i < r->n; i++) {
		if (r->rfd[i] >= 0)
			close(r->rfd[i]);
		if (r->wfd[i] >= 0 && r->wfd[i] != r->rfd[i])
			close(r->wfd[i]);
	}
}

/* Every unit written read back, per source; BENCH_WRONG otherwise. */
static int check_drained(struct run *r)
{
	uint64_t total = onering_atomic_load(&r->writes, onering_mo_relaxed);

	for (uint64_t t0 = bench_now_ns();
	     onering_atomic_load(&r->units, onering_mo_relaxed) != total && !run_failed(r) &&
	     bench_now_ns() - t0 < LOST_NS && !bench_interrupted;)
		bench_sleep_ns(1000000);
	if (run_failed(r))
		return 0; /* said after the join */
	for (unsigned i = 0; i < r->n; i++)
		if (r->wrote[i] != r->drained[i] && !bench_interrupted)
			return bench_fail(BENCH_WRONG, "%s N=%u: LOST EVENTS: source %u: wrote %"
					  PRIu64 ", read back %" PRIu64 " within 2 s", r->peer->name,
					  r->n, i, r->wrote[i], r->drained[i]);
	return 0;
}

/* Latency percentiles (µs) into fig; onering also harvest and hand-off. */
static void latency_figs(struct run *r, double *fig)
{
	uint64_t *h = r->lat_harvest, *handoff = h + r->lat_cap;
	size_t n = r->lat_n;

	if (h[0] || h[n - 1]) {
		for (size_t i = 0; i < n; i++)
			handoff[i] = r->lat[i] - h[i];
		fig[FIG_HANDOFF_P50_US] = bench_percentile(handoff, n, 0.5) / 1e3;
		/* Signed: a broker stamp older than the write is counted, not wrapped. */
		fig[FIG_HARVEST_NEG] = 0;
		for (size_t i = 0; i < n; i++)
			fig[FIG_HARVEST_NEG] += (int64_t)h[i] < 0;
		fig[FIG_HARVEST_P50_US] = bench_percentile(h, n, 0.5) / 1e3;
		fig[FIG_HARVEST_P99_US] = bench_percentile(h, n, 0.99) / 1e3;
	}
	fig[FIG_P50_US] = bench_percentile(r->lat, n, 0.5) / 1e3;
	fig[FIG_P99_US] = bench_percentile(r->lat, n, 0.99) / 1e3;
	fig[FIG_P999_US] = bench_percentile(r->lat, n, 0.999) / 1e3;
}

static int run_one(struct bench_ctx *ctx, const struct bench_peer_ops *peer, void *state,
		   unsigned n, bool latency, bool count, double *fig)
{
	uint64_t measure_ns = bench_param(ctx, "ms") * 1000000ull;
	struct bench_syscalls cons_sc = { .fd_count = 0 }, broker_sc = { .fd_count = 0 };
	struct run *r = bench_alloc_lines(sizeof(struct run));
	bool measured = false;
	struct snapshot a, b;
	clockid_t cons_clock, prod_clock;
	uint64_t *block = NULL;
	int rc = -ENOMEM;

	if (!r)
		return -ENOMEM;
	*r = (struct run){ .peer = peer, .latency = latency, .n = n, .cpu_prod = ctx->cores[0],
			   .cpu_cons = ctx->cores[1], .pipe = bench_param(ctx, "source") == SOURCE_PIPE,
			   .lat_cap = latency ? (size_t)(measure_ns / 1e9 * 50000) + 1024 : 1 };
	/* One block: wrote, drained, lat, lat_harvest, handoff, then rfd and wfd. */
	block = calloc(2 * n + 3 * r->lat_cap + n, sizeof(uint64_t));
	if (!block)
		goto out;
	r->state = memset(state, 0, peer->state_size);
	r->wrote = block;
	r->drained = block + n;
	r->lat = block + 2 * n;
	r->lat_harvest = r->lat + r->lat_cap;
	r->rfd = (int *)(r->lat_harvest + 2 * r->lat_cap);
	r->wfd = r->rfd + n;
	memset(r->rfd, -1, 2 * n * sizeof(int));
	r->c = r->state;
	*r->c = (struct readiness_common){ .n = n, .rfd = r->rfd, .broker_cpu = ctx->cores[2],
					   .capacity = (uint32_t)bench_param(ctx, "capacity") };
	bench_team_init(&r->team);
	if ((rc = sources_open(r)) < 0 || (rc = peer->setup(ctx, peer, r->state)) < 0)
		goto out;
	if (bench_team_start(&r->team, consumer_main, r) < 0 ||
	    bench_team_start(&r->team, producer_main, r) < 0 || !bench_team_wait(&r->team) ||
	    pthread_getcpuclockid(r->team.thr[0], &cons_clock) ||
	    pthread_getcpuclockid(r->team.thr[1], &prod_clock))
		goto join;
	if (count && (bench_syscalls_open(&cons_sc, getpid(), r->tid_cons) < 0 ||
		      (r->c->broker.pid > 0 &&
		       bench_syscalls_open(&broker_sc, r->c->broker.pid, 0) < 0))) {
		rc = BENCH_NA;
		goto join;
	}
	phase_set(r, PHASE_WARMUP);
	bench_team_open(&r->team);
	bench_sleep_ns(bench_param(ctx, "warmup-ms") * 1000000ull);
	snapshot_take(r, cons_clock, prod_clock, &a);
	phase_set(r, PHASE_MEASURE);
	measured = true;
	for (uint64_t left = measure_ns; left && !bench_interrupted && !run_failed(r);) {
		uint64_t step = left < 50000000ull ? left : 50000000ull;
		bench_sleep_ns(step);
		left -= step;
	}
	snapshot_take(r, cons_clock, prod_clock, &b);
	phase_set(r, PHASE_DRAIN);
	bench_team_join(&r->team, 1); /* the producer */
	rc = check_drained(r);
	phase_set(r, PHASE_STOP);
	while (!onering_atomic_load(&r->cons_done, onering_mo_acquire)) /* A6: totals final */
		bench_sleep_ns(100000);
	if (count) {
		/* The whole run: the counters were opened before the warm-up. */
		double events = (double)onering_atomic_load(&r->events, onering_mo_relaxed);
		double sc = (double)bench_syscalls_read(&cons_sc);
		fig[FIG_SC_EVENT] = sc / events;
		fig[FIG_SC_BEYOND_READ] = (sc - (double)r->cons_reads) / events;
		if (broker_sc.fd_count)
			fig[FIG_BROKER_SC] = (double)bench_syscalls_read(&broker_sc) / events;
	}
join:
	phase_set(r, PHASE_STOP);
	onering_atomic_store(&r->cons_release, 1, onering_mo_release); /* R7: it may finish */
	bench_team_join(&r->team, 0);
	if (run_failed(r)) {
		fprintf(stderr, "%s N=%u: %s\n", peer->name, n, r->team.err);
		rc = measured ? BENCH_WRONG : -EIO; /* a setup failure exits 2 */
	}
	if (rc || count || bench_interrupted)
		goto out;
	double secs = (double)(b.wall_ns - a.wall_ns) / 1e9, events = (double)(b.events - a.events);
	if (latency) {
		if (r->lat_n == 0) {
			uint64_t waited = b.wait_ns - a.wait_ns;
			bool starved = waited >= (b.wall_ns - a.wall_ns) / 2;
			fprintf(stderr, "%s N=%u latency: no sample in %.2f s; the threads waited "
				"%.0f ms for a CPU: %s\n", peer->name, n, secs, (double)waited / 1e6,
				starved ? "starved by other processes" : "the peer stalled");
			rc = starved ? 0 : BENCH_WRONG;
			goto out;
		}
		latency_figs(r, fig);
		goto out;
	}
	fig[FIG_EVENTS] = events / secs;
	fig[FIG_WRITES] = (double)(b.units - a.units) / secs;
	fig[FIG_WRITES_PER_EVENT] = events > 0 ? (double)(b.units - a.units) / events : -1;
	fig[FIG_CONS_CPU_US] = (double)(b.cons_cpu_ns - a.cons_cpu_ns) / 1e3 / events;
	fig[FIG_TOTAL_CPU_US] = (double)(b.all_cpu_ns - a.all_cpu_ns) / 1e3 / events;
out:
	if (r->c)
		peer->teardown(ctx, r->state);
	bench_syscalls_close(&cons_sc);
	bench_syscalls_close(&broker_sc);
	sources_close(r);
	free(block);
	free(r);
	return rc;
}

static int readiness_measure(struct bench_ctx *ctx, const struct bench_peer_ops *peer,
			     void *state, uint64_t n, double *fig)
{
	uint64_t mode = bench_param(ctx, "mode");
	int rc = 0;

	if (n == 0 || n > 65536)
		return bench_fail(-EINVAL, "readiness: --n is 1..65536");
	if (mode != MODE_LATENCY)
		rc = run_one(ctx, peer, state, (unsigned)n, false, false, fig);
	if (rc == 0 && mode != MODE_THROUGHPUT)
		rc = run_one(ctx, peer, state, (unsigned)n, true, false, fig);
	/* Syscalls: one counted throughput pass per peer and N, in the first round. */
	if (rc == 0 && ctx->round == 0 && bench_param(ctx, "count"))
		rc = run_one(ctx, peer, state, (unsigned)n, false, true, fig);
	return rc == BENCH_NA ? 0 : rc;
}

static const struct bench_peer_ops *const readiness_peers[] = {
	&bench_peer_readiness_onering_busy, &bench_peer_readiness_onering_adaptive,
	&bench_peer_readiness_onering_overprov, &bench_peer_readiness_onering_overprov_co50,
	&bench_peer_readiness_onering_overprov_co100,
	&bench_peer_readiness_onering_wait,
	&bench_peer_readiness_epoll_busy, &bench_peer_readiness_epoll_block,
#if BENCH_HAVE_URING
	&bench_peer_readiness_uring_busy, &bench_peer_readiness_uring_block,
	&bench_peer_readiness_uring_peek,
#endif
};

static const char *const mode_names[] = { "both", "throughput", "latency", NULL };
static const char *const source_names[] = { "eventfd", "pipe", NULL };
static const char *const on_off[] = { "off", "on", NULL };

static struct bench_param readiness_params[] = {
	BENCH_INT("ms", "measured time per peer, N and mode, ms", 500, 50, 10, 600000),
	BENCH_INT("warmup-ms", "unmeasured lead-in of each measurement, ms", 100, 20, 0, 60000),
	BENCH_CHOICE("mode", "throughput, latency or both", MODE_BOTH, mode_names),
	BENCH_CHOICE("source", "eventfd or pipe", SOURCE_EVENTFD, source_names),
	BENCH_INT("capacity", "onering queue capacity, a power of two", 4096, 4096, 64, 1u << 20),
	BENCH_CHOICE("count", "count syscalls in one extra pass (root)", 1, on_off),
};

BENCH_SCENARIO(readiness, "n", "1,64,1024", "1,64", "0,1,0", 3, 1,
	.about = "fd readiness -> consumer: onering vs epoll vs io_uring multishot poll; "
		"events/s, writes/s, CPU and syscalls per event, latency",
	.cores_help = "producer P, consumer C, oneringd poller and control B",
	.fig_names = "events/s writes/s writes/event:2 cons_us/event:3 total_us/ev:3 "
		"sc/event:3 sc-read/event:3 broker_sc/ev:3 p50_us:2 p99_us:2 p99.9_us:2 "
		"harvest_p50:2 harvest_p99:2 stamp<write handoff_p50:2",
	/* Issue 12's targets, the poller on a CPU of its own (--cores 0,0,1):
	 * p50 and writes drained against the best epoll or io_uring peer, CPU
	 * per event against epoll's; sharing a core with the producer (the
	 * default placement): overprovisioned (with --coalesce-us or without)
	 * against epoll-block. The best onering peer of each figure counts (a
	 * name ending in '*'). */
	.ratio_text = "p50_us onering-* epoll-* <=1; p50_us onering-* uring-* <=1; "
		"writes/s onering-* epoll-* >=0.95; writes/s onering-* uring-* >=0.95; "
		"total_us/ev onering-* epoll-* <=1.2; events/s onering-overprov* epoll-block >=0.5; "
		"events/s onering-busy epoll-busy"
);
