/* SPDX-License-Identifier: MIT */
/*
 * harness.c: onering-bench's main() (`onering-bench SCENARIO [options]`,
 * `onering-bench list`): common options, rounds that interleave the peers
 * in a fixed order (machine noise hits all of them alike), the noise
 * sampler, medians of figures and of per-round ratios, summary, CSV, JSON
 * and the gnuplot PNG. What one measurement does is the scenario's.
 *
 * Noise: /proc/stat around every measurement. others_pct is the CPU the
 * rest of the machine took (busy minus this process, its brokers and
 * children, less what fits on the CPUs the peer leaves idle), steal_pct
 * the hypervisor's, both in % of all CPUs. A
 * measurement with others + steal above --noise-max is done again
 * (--retry-noisy times at most, none with --quick); the last one counts
 * and the summary says how many stayed disturbed.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <jansson.h>
#include <unistd.h>

#include "tools/bench/bench.h"

volatile sig_atomic_t bench_interrupted;

static const struct bench_scenario *const scenarios[] = {
	&bench_scenario_ring,  &bench_scenario_dispatch, &bench_scenario_readiness,
#if BENCH_HAVE_DPDK
	&bench_scenario_nic,
#endif
	&bench_scenario_timers, &bench_scenario_servers, &bench_scenario_idle,
	&bench_scenario_icount,
};

/* The figures the harness adds after the scenario's own. */
enum { EXTRA_OTHERS, EXTRA_STEAL, EXTRA_COUNT };
static const char *const extra_names[EXTRA_COUNT] = { "others_pct", "steal_pct" };

/* The chosen scenario's fig_names and ratio_text, parsed. */
static struct fig {
	char name[24];
	int precision;
} figs[BENCH_MAX_FIGS];
static unsigned fig_count;
static struct ratio {
	unsigned fig;
	char peer_a[24], peer_b[24];
	long at;           /* >= 0: only at this sweep value */
	bool cross;        /* "PEER@SWEEP" sides: a peer's figures at two sweep points */
	double min, max;   /* > 0: the target */
} ratios[16];
static unsigned ratio_count;

/* The chosen scenario and the options of this run (one per process). */
static const struct bench_scenario *sc;
static struct opts {
	uint64_t rounds, retry_noisy, noise_max_pct;
	bool peer_on[BENCH_MAX_PEERS];
	uint64_t sweep[BENCH_MAX_SWEEP];
	unsigned sweep_count;
	const char *csv_path, *json_path, *plot_dir;
} opt;

/* [round][sweep point][peer][scenario figs, then extras]; -1 = none. */
static double results[BENCH_MAX_ROUNDS][BENCH_MAX_SWEEP][BENCH_MAX_PEERS]
		     [BENCH_MAX_FIGS + EXTRA_COUNT];
static unsigned disturbed_count;

static void on_signal(int sig BENCH_UNUSED)
{
	bench_interrupted = 1;
}

int bench_fail(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return rc;
}

bool bench_team_fail(struct bench_team *t, const char *fmt, ...)
{
	int expected = 0;
	va_list ap;

	if (!onering_atomic_cas(&t->failed, &expected, 1, onering_mo_acq_rel, onering_mo_relaxed))
		return false;
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	return true;
}

uint64_t bench_param(const struct bench_ctx *ctx, const char *name)
{
	for (unsigned i = 0; i < ctx->sc->param_count; i++)
		if (strcmp(ctx->sc->params[i].name, name) == 0)
			return ctx->sc->params[i].value;
	fprintf(stderr, "%s: bench_param(%s): no such parameter\n", ctx->sc->name, name);
	abort();
}

void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = bench_ts(ns);

	nanosleep(&ts, NULL);
}

int bench_pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void bench_team_init(struct bench_team *t)
{
	t->count = 0;
	onering_atomic_init(&t->ready, 0u);
	onering_atomic_init(&t->open, 0);
	onering_atomic_init(&t->failed, 0);
}

int bench_team_start(struct bench_team *t, void *(*fn)(void *), void *arg)
{
	int rc = t->count < BENCH_TEAM_MAX ? -pthread_create(&t->thr[t->count], NULL, fn, arg)
					   : -E2BIG;

	if (rc < 0)
		bench_team_fail(t, "pthread_create: %s", strerror(-rc));
	else
		t->count++;
	return rc;
}

int bench_team_pin(struct bench_team *t, const char *who, int cpu, const cpu_set_t *cpus)
{
	int rc = cpu >= 0 ? bench_pin_self(cpu)
			  : -pthread_setaffinity_np(pthread_self(), sizeof(*cpus), cpus);

	if (rc < 0)
		bench_team_fail(t, "%s: cannot pin to CPU %d: %s", who, cpu, strerror(-rc));
	return rc;
}

void bench_team_ready(struct bench_team *t, bool gate)
{
	onering_atomic_fetch_add(&t->ready, 1u, onering_mo_release); /* R0 */
	while (gate && !onering_atomic_load(&t->open, onering_mo_acquire)) /* A1 */
		bench_sleep_ns(20000);
}

bool bench_team_wait(struct bench_team *t)
{
	while (onering_atomic_load(&t->ready, onering_mo_acquire) < t->count && /* A0 */
	       !bench_team_failed(t) && !bench_interrupted)
		bench_sleep_ns(100000);
	return !bench_team_failed(t) && !bench_interrupted;
}

void bench_team_open(struct bench_team *t)
{
	onering_atomic_store(&t->open, 1, onering_mo_release); /* R1 */
}

void bench_team_join(struct bench_team *t, unsigned keep)
{
	bench_team_open(t);
	while (t->count > keep)
		pthread_join(t->thr[--t->count], NULL);
}

void *bench_alloc_lines(size_t size)
{
	size = (size + ONERING_CACHE_LINE - 1) & ~(size_t)(ONERING_CACHE_LINE - 1);
	void *p = aligned_alloc(ONERING_CACHE_LINE, size);
	if (p)
		memset(p, 0, size);
	return p;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The median of the values >= 0 of v[0..n); -1 if none. */
static double median(const double *v, unsigned n)
{
	double t[BENCH_MAX_ROUNDS];
	unsigned m = 0;

	for (unsigned i = 0; i < n && m < BENCH_MAX_ROUNDS; i++)
		if (v[i] >= 0)
			t[m++] = v[i];
	if (m == 0)
		return -1;
	qsort(t, m, sizeof(*t), cmp_double);
	return m % 2 ? t[m / 2] : (t[m / 2 - 1] + t[m / 2]) / 2;
}

double bench_percentile(uint64_t *v, size_t n, double q)
{
	if (n == 0)
		return -1;
	qsort(v, n, sizeof(*v), cmp_i64);
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return (double)(int64_t)v[i < n ? i : n - 1];
}

struct noise_sample {
	uint64_t busy_ticks, steal_ticks, wall_ns, self_ns;
};

static void noise_take(struct noise_sample *s)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");

	if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
			&v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
		memset(v, 0, sizeof(v));
	if (f)
		fclose(f);
	/* user nice system [idle iowait] irq softirq | steal */
	s->busy_ticks = v[0] + v[1] + v[2] + v[5] + v[6];
	s->steal_ticks = v[7];
	s->wall_ns = bench_now_ns();
	s->self_ns = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

/* What others take of the CPUs the peer leaves idle (ctx->idle_cpus) is not noise. */
static void noise_figs(const struct bench_ctx *ctx, const struct noise_sample *a,
		       const struct noise_sample *b, double *others, double *steal)
{
	double tick_ns = 1e9 / (double)sysconf(_SC_CLK_TCK);
	double wall = (double)(b->wall_ns - a->wall_ns);
	double all_ns = wall * (double)sysconf(_SC_NPROCESSORS_ONLN);
	double busy = (double)(b->busy_ticks - a->busy_ticks) * tick_ns;
	double ours = (double)(b->self_ns - a->self_ns + ctx->child_cpu_ns) + wall * ctx->idle_cpus;

	*others = busy > ours ? 100.0 * (busy - ours) / all_ns : 0;
	*steal = 100.0 * (double)(b->steal_ticks - a->steal_ticks) * tick_ns / all_ns;
}

static void usage(FILE *out, const struct bench_scenario *s)
{
	if (!s) {
		fprintf(out, "Usage: onering-bench SCENARIO [options]   (onering-bench list)\n"
			     "Scenarios:");
		for (unsigned i = 0; i < BENCH_COUNT(scenarios); i++)
			fprintf(out, " %s", scenarios[i]->name);
		fprintf(out, "\n'onering-bench SCENARIO --help' for its options.\n");
		return;
	}
	fprintf(out, "Usage: onering-bench %s [options]\n\n%s\n\nOptions:\n"
		"  --rounds N        interleaved rounds (default %u; --quick %u)\n"
		"  --quick           smoke run: short measurements, fewer rounds, no retries\n"
		"  --retry-noisy N   redo a measurement disturbed by others (default 2)\n"
		"  --noise-max PCT   others + steal above this is disturbed (default 10)\n"
		"  --peers LIST      a comma list of peers (default all; see 'list')\n"
		"  --cores LIST      %s (default %s)\n"
		"  --csv FILE, --json FILE   every measurement (CSV), the medians and ratios (JSON)\n"
		"  --plot DIR        DIR/%s.png with gnuplot: the median of %.*s per peer\n",
		s->name, s->about, s->rounds_default, s->rounds_quick ? s->rounds_quick : 3,
		s->cores_help, s->cores_default ? s->cores_default : "none", s->name,
		(int)strcspn(s->fig_names, ": "), s->fig_names);
	if (s->sweep_name)
		fprintf(out, "  --%-16s a comma list (default %s; --quick %s)\n", s->sweep_name,
			s->sweep_default, s->sweep_quick);
	for (unsigned i = 0; i < s->param_count; i++) {
		const struct bench_param *p = &s->params[i];
		if (p->choices)
			fprintf(out, "  --%-16s %s (default %s)\n", p->name, p->help,
				p->choices[p->value]);
		else
			fprintf(out, "  --%-16s %s (default %" PRIu64 "; --quick %" PRIu64 ")\n",
				p->name, p->help, p->value, p->quick);
	}
	fprintf(out, "\nExit status: 0 every peer passed its checks (a missed target is a "
		     "figure); 1 a correctness check failed; 2 usage or setup; 130 interrupted.\n");
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A comma list of numbers, or (on != NULL) of peer names marked in on[]. */
static int parse_list(const char *s, uint64_t *out, unsigned max_count, unsigned *count, bool *on)
{
	char buf[256], *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	*count = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned p = 0;
		if (!on) {
			if (*count == max_count || parse_u64(t, 0, UINT32_MAX, &out[*count]))
				return -EINVAL;
		} else {
			while (p < sc->peer_count && strcmp(sc->peers[p]->name, t))
				p++;
			if (p == sc->peer_count)
				return bench_fail(-EINVAL, "%s: no peer '%s' (onering-bench list)",
						  sc->name, t);
			on[p] = true;
		}
		++*count;
	}
	return *count ? 0 : -EINVAL;
}

static int parse_param(struct bench_param *p, const char *v)
{
	for (uint64_t i = 0; p->choices && p->choices[i]; i++)
		if (strcmp(p->choices[i], v) == 0) {
			p->value = i;
			return 0;
		}
	return p->choices ? -EINVAL : parse_u64(v, p->min, p->max, &p->value);
}

static int parse_tables(void)
{
	char buf[1024], fig[24], op[3], *save = NULL;
	const char *p = sc->fig_names;
	int len;

	while (fig_count < BENCH_MAX_FIGS &&
	       sscanf(p, " %23[^: ]%n", figs[fig_count].name, &len) == 1) {
		p += len;
		if (sscanf(p, ":%d%n", &figs[fig_count].precision, &len) == 1)
			p += len;
		fig_count++;
	}
	snprintf(buf, sizeof(buf), "%s", sc->ratio_text);
	for (char *t = strtok_r(buf, ";", &save); t && ratio_count < 16; t = strtok_r(NULL, ";", &save)) {
		struct ratio *r = &ratios[ratio_count++];
		double x;

		r->at = -1;
		if (sscanf(t, " %23s %23s %23s%n", fig, r->peer_a, r->peer_b, &len) != 3)
			return bench_fail(-EINVAL, "%s: bad ratio '%s'", sc->name, t);
		if (sscanf(t += len, " @%ld%n", &r->at, &len) == 1)
			t += len;
		/* "A@S1 B@S2": printed under S1 (sweep points that did not run:
		 * not printed). */
		const char *at_a = strchr(r->peer_a, '@'), *at_b = strchr(r->peer_b, '@');
		r->cross = at_a || at_b;
		if (r->cross && (!at_a || !at_b || r->at >= 0))
			return bench_fail(-EINVAL, "%s: ratio %s %s: give both peers a sweep "
					  "point (PEER@N) and no @N after them, or neither",
					  sc->name, r->peer_a, r->peer_b);
		if (r->cross)
			r->at = atol(at_a + 1);
		if (sscanf(t, " %2[<>=]%lf", op, &x) == 2)
			*(op[0] == '>' ? &r->min : &r->max) = x;
		for (r->fig = 0; r->fig < fig_count && strcmp(figs[r->fig].name, fig); r->fig++)
			;
		if (r->fig == fig_count)
			return bench_fail(-EINVAL, "%s: ratio of an unknown figure %s", sc->name, fig);
	}
	return 0;
}

static int parse_opts(struct bench_ctx *ctx, int argc, char **argv)
{
	const char *sweep = sc->sweep_default, *cores = sc->cores_default, *peers = NULL;
	bool quick = false, rounds_given = false, retry_given = false;
	uint64_t v[BENCH_MAX_CORES];
	unsigned count, want = 1;

	opt = (struct opts){ .rounds = sc->rounds_default, .retry_noisy = 2, .noise_max_pct = 10 };
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *val = argv[i + 1];
		int rc = 0;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout, sc);
			exit(0);
		} else if (strcmp(a, "--quick") == 0) {
			quick = true;
			continue;
		} else if (!val || strncmp(a, "--", 2) != 0) {
			return bench_fail(-EINVAL, "%s: unknown option or missing value: %s",
					  sc->name, a);
		} else if (strcmp(a, "--rounds") == 0) {
			rc = parse_u64(val, 1, BENCH_MAX_ROUNDS, &opt.rounds);
			rounds_given = true;
		} else if (strcmp(a, "--retry-noisy") == 0) {
			rc = parse_u64(val, 0, 10, &opt.retry_noisy);
			retry_given = true;
		} else if (strcmp(a, "--noise-max") == 0) {
			rc = parse_u64(val, 1, 100, &opt.noise_max_pct);
		} else if (strcmp(a, "--peers") == 0) {
			peers = val;
		} else if (strcmp(a, "--cores") == 0) {
			cores = val;
		} else if (strcmp(a, "--csv") == 0) {
			opt.csv_path = val;
		} else if (strcmp(a, "--json") == 0) {
			opt.json_path = val;
		} else if (strcmp(a, "--plot") == 0) {
			opt.plot_dir = val;
		} else if (sc->sweep_name && strcmp(a + 2, sc->sweep_name) == 0) {
			sweep = val;
		} else {
			unsigned k = 0;
			while (k < sc->param_count && strcmp(a + 2, sc->params[k].name))
				k++;
			if (k == sc->param_count)
				return bench_fail(-EINVAL, "%s: unknown option %s", sc->name, a);
			rc = parse_param(&sc->params[k], val);
			sc->params[k].given = true;
		}
		if (rc)
			return bench_fail(-EINVAL, "%s: bad value for %s: %s", sc->name, a, val);
		i++;
	}
	if (quick) {
		opt.rounds = rounds_given ? opt.rounds : sc->rounds_quick ? sc->rounds_quick : 3;
		opt.retry_noisy = retry_given ? opt.retry_noisy : 0;
		sweep = sweep == sc->sweep_default ? sc->sweep_quick : sweep;
		for (unsigned k = 0; k < sc->param_count; k++)
			if (!sc->params[k].given && !sc->params[k].choices)
				sc->params[k].value = sc->params[k].quick;
	}
	for (unsigned p = 0; p < sc->peer_count; p++)
		opt.peer_on[p] = !peers;
	if (peers && parse_list(peers, NULL, 0, &count, opt.peer_on))
		return -EINVAL;
	opt.sweep_count = 1;
	if (sc->sweep_name && parse_list(sweep, opt.sweep, BENCH_MAX_SWEEP, &opt.sweep_count, NULL))
		return bench_fail(-EINVAL, "%s: bad --%s list: %s", sc->name, sc->sweep_name, sweep);
	if (cores && parse_list(cores, v, BENCH_MAX_CORES, &ctx->core_count, NULL))
		return bench_fail(-EINVAL, "%s: bad --cores list: %s", sc->name, cores);
	for (unsigned k = 0; k < ctx->core_count; k++) {
		if (!CPU_ISSET(v[k], &ctx->start_affinity))
			return bench_fail(-EINVAL, "%s: CPU %" PRIu64 " is not one this program may "
					  "use", sc->name, v[k]);
		ctx->cores[k] = (int)v[k];
		CPU_SET(v[k], &ctx->cores_set);
	}
	for (const char *c = sc->cores_default; c && *c; c++)
		want += *c == ',';
	if (sc->cores_default &&
	    (ctx->core_count < want || (ctx->core_count > want && !sc->cores_more)))
		return bench_fail(-EINVAL, "%s: --cores takes %s", sc->name, sc->cores_help);
	return parse_tables();
}

#define FIG_TOTAL (fig_count + EXTRA_COUNT)

static const char *fig_name(unsigned f)
{
	return f < fig_count ? figs[f].name : extra_names[f - fig_count];
}

static double fig_median(unsigned si, unsigned p, unsigned f)
{
	double v[BENCH_MAX_ROUNDS];

	for (unsigned r = 0; r < opt.rounds; r++)
		v[r] = results[r][si][p][f];
	return median(v, (unsigned)opt.rounds);
}

/* Whether peer p has any figure of its own at sweep point si (round r, or
 * with r < 0 any round). */
static bool has_figs(int r, unsigned si, unsigned p)
{
	for (unsigned k = 0; opt.peer_on[p] && k < fig_count; k++)
		if (r >= 0 ? results[r][si][p][k] >= 0 : fig_median(si, p, k) >= 0)
			return true;
	return false;
}

/*
 * A peer's figure in round r; a name ending in '*' is the best figure of the
 * peers that ran with that prefix: the largest, or the smallest (lowest:
 * the ratio's target is an upper bound, as for latencies). -1 when none.
 */
static double peer_fig(unsigned r, unsigned si, const char *name, unsigned f, bool lowest)
{
	size_t len = strlen(name);
	bool any = len && name[len - 1] == '*';
	double best = -1;

	for (unsigned p = 0; p < sc->peer_count; p++) {
		double x = results[r][si][p][f];
		if (opt.peer_on[p] && x >= 0 &&
		    (any ? strncmp(sc->peers[p]->name, name, len - 1) == 0
			 : strcmp(sc->peers[p]->name, name) == 0) &&
		    (best < 0 || (lowest ? x < best : x > best)))
			best = x;
	}
	return best;
}

/* One side of a ratio in round r: peer_fig of NAME at si, or of NAME@SWEEP
 * at that sweep point (-1 when it did not run). */
static double ratio_side(unsigned r, unsigned si, const char *side, unsigned f, bool lowest)
{
	const char *at = strchr(side, '@');
	char name[24];

	if (!at)
		return peer_fig(r, si, side, f, lowest);
	for (si = 0; si < opt.sweep_count && opt.sweep[si] != strtoull(at + 1, NULL, 10); si++)
		;
	if (si == opt.sweep_count)
		return -1;
	snprintf(name, sizeof(name), "%.*s", (int)(at - side), side);
	return peer_fig(r, si, name, f, lowest);
}

/* Median over rounds of the per-round ratio; -1 when none, or not at si.
 * With lo and hi, also the smallest and largest per-round ratio (how far
 * the rounds agree: a target near the median may be met in some rounds and
 * missed in others). */
static double ratio_median_range(unsigned si, const struct ratio *d, double *lo, double *hi)
{
	double v[BENCH_MAX_ROUNDS];

	if (d->at >= 0 && (uint64_t)d->at != opt.sweep[si])
		return -1;
	*lo = -1;
	*hi = -1;
	for (unsigned r = 0; r < opt.rounds; r++) {
		double x = ratio_side(r, si, d->peer_a, d->fig, d->max > 0);
		double y = ratio_side(r, si, d->peer_b, d->fig, d->max > 0);
		v[r] = x >= 0 && y > 0 ? x / y : -1;
		if (v[r] >= 0 && (*lo < 0 || v[r] < *lo))
			*lo = v[r];
		if (v[r] > *hi)
			*hi = v[r];
	}
	return median(v, (unsigned)opt.rounds);
}

static void print_row(const char *peer, const double *f)
{
	printf("  %-22s", peer);
	for (unsigned k = 0; k < FIG_TOTAL; k++)
		if (f[k] < 0)
			printf(" %12s", "-");
		else
			printf(" %12.*f", k < fig_count ? figs[k].precision : 1, f[k]);
	printf("\n");
}

static void print_header(const char *title)
{
	printf("\n%s\n  %-22s", title, "peer");
	for (unsigned k = 0; k < FIG_TOTAL; k++)
		printf(" %12s", fig_name(k));
	printf("\n");
}

static const char *sweep_label(unsigned si)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "%s=%" PRIu64, sc->sweep_name ? sc->sweep_name : "all",
		 opt.sweep[si]);
	return buf;
}

static void print_summary(void)
{
	double f[BENCH_MAX_FIGS + EXTRA_COUNT];

	printf("\n== %s: medians over %u rounds ==\n", sc->name, (unsigned)opt.rounds);
	for (unsigned si = 0; si < opt.sweep_count; si++) {
		print_header(sweep_label(si));
		for (unsigned p = 0; p < sc->peer_count; p++) {
			for (unsigned k = 0; k < FIG_TOTAL; k++)
				f[k] = fig_median(si, p, k);
			if (has_figs(-1, si, p))
				print_row(sc->peers[p]->name, f);
		}
		for (unsigned k = 0; k < ratio_count; k++) {
			const struct ratio *d = &ratios[k];
			double lo, hi, r = ratio_median_range(si, d, &lo, &hi);
			if (r < 0)
				continue;
			printf("  ratio %s %s/%s: %.3fx", figs[d->fig].name, d->peer_a,
			       d->peer_b, r);
			if (d->min > 0 || d->max > 0)
				printf("   target %s %.2f: %s", d->min > 0 ? ">=" : "<=",
				       d->min > 0 ? d->min : d->max,
				       (d->min > 0 ? r >= d->min : r <= d->max) ? "met" : "MISSED");
			if (opt.rounds > 1 && lo >= 0)
				printf("   (rounds %.3f..%.3f)", lo, hi);
			printf("\n");
		}
	}
	if (disturbed_count)
		printf("\n%u measurement(s) stayed disturbed (others + steal > %u %%)\n",
		       disturbed_count, (unsigned)opt.noise_max_pct);
}

/* What the figures were measured on, from the first CPU of /proc/cpuinfo and
 * uname: "2 CPUs, AMD EPYC (family 25, model 17, stepping 1), a VM guest;
 * kernel 6.18.44". The model name alone does not tell two hosts apart
 * (docs/benchmarks.md: two AMD guests of one day both said "AMD EPYC"). */
static char machine[256];

static void machine_describe(void)
{
	char model[128] = "unknown CPU", line[8192];
	int family = -1, mdl = -1, stepping = -1;
	bool guest = false;
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f) && line[0] != '\n') { /* the first CPU */
		char *v = strchr(line, ':');
		if (!v)
			continue;
		for (v++; *v == ' '; v++)
			;
		v[strcspn(v, "\n")] = '\0';
		if (strncmp(line, "model name", 10) == 0)
			snprintf(model, sizeof(model), "%s", v);
		else if (strncmp(line, "cpu family", 10) == 0)
			family = atoi(v);
		else if (strncmp(line, "model\t", 6) == 0)
			mdl = atoi(v);
		else if (strncmp(line, "stepping", 8) == 0)
			stepping = atoi(v);
		else if (strncmp(line, "flags", 5) == 0)
			guest = strstr(v, " hypervisor") != NULL;
	}
	if (f)
		fclose(f);
	int n = snprintf(machine, sizeof(machine), "%ld CPUs, %s", sysconf(_SC_NPROCESSORS_ONLN),
			 model);
	if (family >= 0 && n > 0 && (size_t)n < sizeof(machine))
		n += snprintf(machine + n, sizeof(machine) - (size_t)n,
			      " (family %d, model %d, stepping %d)", family, mdl, stepping);
	if (n > 0 && (size_t)n < sizeof(machine))
		snprintf(machine + n, sizeof(machine) - (size_t)n, "%s; kernel %s",
			 guest ? ", a VM guest" : "", uname(&u) == 0 ? u.release : "unknown");
}

/* CSV: every measurement. JSON: the machine, the medians and the ratios. */
static int write_files(void)
{
	FILE *csv = opt.csv_path ? fopen(opt.csv_path, "w") : NULL;
	FILE *js = opt.json_path ? fopen(opt.json_path, "w") : NULL;

	if ((opt.csv_path && !csv) || (opt.json_path && !js))
		return bench_fail(-errno, "%s: %s", csv ? opt.json_path : opt.csv_path,
				  strerror(errno));
	for (unsigned k = 0; csv && k < FIG_TOTAL; k++)
		fprintf(csv, "%s%s", k ? "," : "scenario,round,sweep,peer,", fig_name(k));
	for (unsigned r = 0; csv && r < opt.rounds; r++)
		for (unsigned si = 0; si < opt.sweep_count; si++)
			for (unsigned p = 0; p < sc->peer_count; p++) {
				if (!has_figs((int)r, si, p))
					continue;
				fprintf(csv, "\n%s,%u,%" PRIu64 ",%s", sc->name, r + 1,
					opt.sweep[si], sc->peers[p]->name);
				for (unsigned k = 0; k < FIG_TOTAL; k++)
					fprintf(csv, ",%.6g", results[r][si][p][k]);
			}
	json_t *root = json_pack("{s:s, s:s, s:i, s:s, s:[], s:[]}", "scenario", sc->name,
				 "machine", machine, "rounds", (int)opt.rounds, "sweep",
				 sc->sweep_name ? sc->sweep_name : "", "medians", "ratios");
	for (unsigned si = 0; js && root && si < opt.sweep_count; si++) {
		for (unsigned p = 0; p < sc->peer_count; p++) {
			if (!has_figs(-1, si, p))
				continue;
			json_t *m = json_pack("{s:I, s:s}", "sweep", (json_int_t)opt.sweep[si],
					      "peer", sc->peers[p]->name);
			for (unsigned k = 0; k < FIG_TOTAL; k++)
				if (fig_median(si, p, k) >= 0)
					json_object_set_new(m, fig_name(k),
							    json_real(fig_median(si, p, k)));
			json_array_append_new(json_object_get(root, "medians"), m);
		}
		for (unsigned k = 0; k < ratio_count; k++) {
			const struct ratio *d = &ratios[k];
			double lo, hi, r = ratio_median_range(si, d, &lo, &hi);
			if (r >= 0)
				json_array_append_new(json_object_get(root, "ratios"), json_pack(
					"{s:I, s:s, s:s, s:s, s:f, s:f, s:f}", "sweep",
					(json_int_t)opt.sweep[si], "fig", figs[d->fig].name, "a",
					d->peer_a, "b", d->peer_b, "ratio", r, "round_min", lo,
					"round_max", hi));
		}
	}
	int rc = js && (!root || json_dumpf(root, js, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) ||
			fputc('\n', js) == EOF) ? -EIO : 0;
	json_decref(root);
	if (csv)
		fprintf(csv, "\n");
	return (csv && fclose(csv)) | (js && fclose(js)) ? -EIO : rc;
}

/* Whether peer p (or, p < 0, any peer) has a median of figs[0] at sweep point si
 * (or, si < 0, at any). */
static bool plotted(int si, int p)
{
	for (unsigned i = 0; i < opt.sweep_count; i++)
		for (unsigned q = 0; q < sc->peer_count; q++)
			if ((si < 0 || i == (unsigned)si) && (p < 0 || q == (unsigned)p) &&
			    opt.peer_on[q] && fig_median(i, q, 0) >= 0)
				return true;
	return false;
}

/* DIR/SCENARIO.png: the median of figs[0], one bar per peer per sweep point. */
static int write_plot(void)
{
	char data[PATH_MAX], cmd[PATH_MAX * 3];
	unsigned cols = 1;
	FILE *f;

	if (system("command -v gnuplot >/dev/null 2>&1") != 0)
		return bench_fail(0, "warning: gnuplot not found: no plot (tools/dev installs it)");
	if (mkdir(opt.plot_dir, 0755) < 0 && errno != EEXIST)
		return bench_fail(-errno, "%s: %s", opt.plot_dir, strerror(errno));
	snprintf(data, sizeof(data), "%s/%s.dat", opt.plot_dir, sc->name);
	if (!(f = fopen(data, "w")))
		return bench_fail(-errno, "%s: %s", data, strerror(errno));
	fprintf(f, "point");
	for (unsigned p = 0; p < sc->peer_count; p++)
		if (plotted(-1, (int)p) && ++cols)
			fprintf(f, " %s", sc->peers[p]->name);
	for (unsigned si = 0; si < opt.sweep_count; si++) {
		if (!plotted((int)si, -1))
			continue;
		fprintf(f, "\n%s", sweep_label(si));
		for (unsigned p = 0; p < sc->peer_count; p++)
			if (plotted(-1, (int)p))
				fprintf(f, fig_median(si, p, 0) < 0 ? " ?" : " %g",
					fig_median(si, p, 0));
	}
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "gnuplot -e \"set terminal png size 800,420 noenhanced; set output '%s/%s.png'; "
		 "set title 'onering-bench %s: %s (median of %u rounds)'; set style data histograms;"
		 " set style fill solid border -1; set key outside; set datafile missing '?'; set "
		 "grid y; set yrange [0:*]; plot for [i=2:%u] '%s' using i:xtic(1) title columnhead\"",
		 opt.plot_dir, sc->name, sc->name, figs[0].name, (unsigned)opt.rounds, cols, data);
	int rc = system(cmd);
	unlink(data);
	if (rc != 0)
		return bench_fail(-EIO, "gnuplot failed: %s", cmd);
	printf("plot: %s/%s.png\n", opt.plot_dir, sc->name);
	return 0;
}

/* Peer p at sweep point si in round r, into results (again while disturbed). */
static int measure_once(struct bench_ctx *ctx, unsigned r, unsigned si, unsigned p)
{
	const struct bench_peer_ops *peer = sc->peers[p];
	double *f = results[r][si][p];
	double *others = &f[fig_count + EXTRA_OTHERS], *steal = &f[fig_count + EXTRA_STEAL];
	void *state = bench_alloc_lines(peer->state_size);
	int rc = state ? 0 : -ENOMEM;

	for (unsigned attempt = 0; rc == 0; attempt++) {
		struct noise_sample a, b;

		for (unsigned k = 0; k < FIG_TOTAL; k++)
			f[k] = -1;
		ctx->child_cpu_ns = 0;
		ctx->idle_cpus = 0;
		memset(state, 0, peer->state_size);
		noise_take(&a);
		rc = sc->measure(ctx, peer, state, opt.sweep[si], f);
		noise_take(&b);
		if (rc)
			break;
		noise_figs(ctx, &a, &b, others, steal);
		if (*others + *steal <= (double)opt.noise_max_pct)
			break;
		if (attempt >= opt.retry_noisy || bench_interrupted) {
			disturbed_count++;
			break;
		}
		printf("  (disturbed: others + steal %.0f %%, again)\n", *others + *steal);
	}
	free(state);
	return rc;
}

static int run_rounds(struct bench_ctx *ctx)
{
	char title[96];
	int status = 0;

	machine_describe();
	printf("machine: %s\n", machine);
	printf("placement: --cores ");
	for (unsigned k = 0; k < ctx->core_count; k++)
		printf("%s%d", k ? "," : "", ctx->cores[k]);
	printf("%s (%s)\n", ctx->core_count ? "" : "none", sc->cores_help);
	for (unsigned r = 0; r < opt.rounds && !bench_interrupted; r++)
		for (unsigned si = 0; si < opt.sweep_count && !bench_interrupted; si++) {
			ctx->round = r;
			snprintf(title, sizeof(title), "round %u/%u, %s", r + 1, (unsigned)opt.rounds,
				 sweep_label(si));
			print_header(title);
			for (unsigned p = 0; p < sc->peer_count && !bench_interrupted; p++) {
				int rc = opt.peer_on[p] ? measure_once(ctx, r, si, p) : BENCH_NA;
				if (rc == BENCH_WRONG)
					status = bench_fail(1, "%s: %s: correctness check failed",
							    sc->name, sc->peers[p]->name);
				else if (rc < 0)
					return bench_fail(2, "%s: %s: %s", sc->name,
							  sc->peers[p]->name, strerror(-rc));
				else if (rc == 0)
					print_row(sc->peers[p]->name, results[r][si][p]);
			}
		}
	return status;
}

int main(int argc, char **argv)
{
	static char self_dir[PATH_MAX];
	struct bench_ctx ctx = { .self_dir = self_dir };
	struct sigaction sa = { .sa_handler = on_signal };
	struct rlimit rl;
	int status;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout, NULL);
		return argc < 2 ? 2 : 0;
	}
	bool list = strcmp(argv[1], "list") == 0;
	for (unsigned i = 0; i < BENCH_COUNT(scenarios); i++) {
		const struct bench_scenario *s = scenarios[i];
		if (strcmp(s->name, argv[1]) == 0)
			sc = ctx.sc = s;
		if (list)
			printf("%-10s %s\n", s->name, s->about);
		for (unsigned p = 0; list && p < s->peer_count; p++) {
			const struct bench_peer_ops *peer = s->peers[p];
			printf("    %-22s %s%s%s%s\n", peer->name, peer->about,
			       peer->needs ? " [" : "", peer->needs ? peer->needs : "",
			       peer->needs ? "]" : "");
		}
	}
	if (list)
		return 0;
	if (!sc) {
		fprintf(stderr, "onering-bench: unknown scenario '%s'\n", argv[1]);
		usage(stderr, NULL);
		return 2;
	}
	ssize_t n = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1);
	if (n > 0 && (self_dir[n] = '\0', strrchr(self_dir, '/')))
		*strrchr(self_dir, '/') = '\0';
	sched_getaffinity(0, sizeof(ctx.start_affinity), &ctx.start_affinity);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rl.rlim_cur = rl.rlim_max)) /* 10,000 fds */
		setrlimit(RLIMIT_NOFILE, &rl);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (parse_opts(&ctx, argc, argv))
		return 2;
	if (sc->init && (status = sc->init(&ctx)) != 0)
		return bench_fail(2, "%s: setup failed: %s", sc->name, strerror(-status));
	status = run_rounds(&ctx);
	if (sc->fini)
		sc->fini(&ctx);
	if (bench_interrupted || status == 2)
		return bench_interrupted ? 130 : 2;
	print_summary();
	if ((opt.csv_path || opt.json_path) && write_files())
		return 2;
	if (opt.plot_dir && write_plot())
		return 2;
	return status;
}
