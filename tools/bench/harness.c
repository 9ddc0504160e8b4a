/* SPDX-License-Identifier: MIT */
/*
 * harness.c: onering-bench's main(): `onering-bench SCENARIO [options]`
 * and `onering-bench list`. Options common to every scenario, rounds that
 * interleave the peers in a fixed order (machine noise hits all of them
 * alike), the machine-noise sampler, medians and ratios, the summary, CSV,
 * JSON and the gnuplot PNG. What one measurement does is the scenario's.
 *
 * Noise: around every measurement the harness reads /proc/stat. "others %"
 * is the CPU the rest of the machine took (busy minus this process minus
 * the brokers it ran), "steal %" what the hypervisor took, both in % of
 * all CPUs over the wall time. A measurement with others + steal above
 * --noise-max is done again (--retry-noisy times at most, never with
 * --quick); the last attempt counts and the summary says how many stayed
 * disturbed.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/bench/bench.h"

volatile sig_atomic_t bench_interrupted;

static const struct bench_scenario *const scenarios[] = {
	&bench_scenario_ring,
	&bench_scenario_dispatch,
	&bench_scenario_readiness,
#if BENCH_HAVE_DPDK
	&bench_scenario_nic,
#endif
	&bench_scenario_timers,
	&bench_scenario_servers,
};
#define SCENARIO_COUNT (sizeof(scenarios) / sizeof(scenarios[0]))

/* The figures the harness adds after the scenario's own. */
enum { EXTRA_OTHERS, EXTRA_STEAL, EXTRA_COUNT };
static const char *const extra_names[EXTRA_COUNT] = { "others_pct", "steal_pct" };

struct opts {
	unsigned rounds;
	unsigned retry_noisy;
	double noise_max_pct;
	bool peer_on[BENCH_MAX_PEERS];
	uint64_t sweep[BENCH_MAX_SWEEP];
	unsigned sweep_count;
	const char *csv_path, *json_path, *plot_dir;
};

/* fig[round][sweep][peer][scenario figs + extras]; -1 = none. */
static double results[BENCH_MAX_ROUNDS][BENCH_MAX_SWEEP][BENCH_MAX_PEERS]
		     [BENCH_MAX_FIGS + EXTRA_COUNT];
static unsigned disturbed_count;

static void on_signal(int sig)
{
	(void)sig;
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

uint64_t bench_param(const struct bench_ctx *ctx, const char *name)
{
	for (unsigned i = 0; i < ctx->sc->param_count; i++)
		if (strcmp(ctx->sc->params[i].name, name) == 0)
			return ctx->sc->params[i].value;
	fprintf(stderr, "%s: bench_param(%s): no such parameter\n", ctx->sc->name, name);
	abort();
}

uint64_t bench_clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull) };

	nanosleep(&ts, NULL);
}

int bench_pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
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

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

double bench_median(const double *v, unsigned n)
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
	qsort(v, n, sizeof(*v), cmp_u64);
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return (double)v[i < n ? i : n - 1];
}

/* ---------------------------------------------------------------------- */
/* The machine-noise sampler.                                              */

struct noise_sample {
	uint64_t busy_ticks, steal_ticks, wall_ns, self_ns;
};

static void noise_take(struct noise_sample *s)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");

	if (f) {
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
			   &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
			memset(v, 0, sizeof(v));
		fclose(f);
	}
	/* user nice system [idle iowait] irq softirq | steal */
	s->busy_ticks = v[0] + v[1] + v[2] + v[5] + v[6];
	s->steal_ticks = v[7];
	s->wall_ns = bench_now_ns();
	s->self_ns = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

static void noise_figs(const struct noise_sample *a, const struct noise_sample *b,
		       uint64_t children_ns, double *others, double *steal)
{
	double tick_ns = 1e9 / (double)sysconf(_SC_CLK_TCK);
	double all_ns = (double)(b->wall_ns - a->wall_ns) * (double)sysconf(_SC_NPROCESSORS_ONLN);
	double busy = (double)(b->busy_ticks - a->busy_ticks) * tick_ns;
	double ours = (double)(b->self_ns - a->self_ns + children_ns);

	if (all_ns <= 0) {
		*others = *steal = -1;
		return;
	}
	*others = busy > ours ? 100.0 * (busy - ours) / all_ns : 0;
	*steal = 100.0 * (double)(b->steal_ticks - a->steal_ticks) * tick_ns / all_ns;
}

/* ---------------------------------------------------------------------- */
/* Options.                                                                */

static void usage(FILE *out, const struct bench_scenario *sc)
{
	if (!sc) {
		fprintf(out, "Usage: onering-bench SCENARIO [options]   (onering-bench list)\n"
			     "Scenarios:");
		for (unsigned i = 0; i < SCENARIO_COUNT; i++)
			fprintf(out, " %s", scenarios[i]->name);
		fprintf(out, "\n'onering-bench SCENARIO --help' for its options.\n");
		return;
	}
	fprintf(out, "Usage: onering-bench %s [options]\n\n%s\n\nOptions:\n", sc->name,
		sc->about);
	if (!sc->run_whole) {
		fprintf(out, "  --rounds N        interleaved rounds (default %u; --quick %u)\n"
			     "  --quick           smoke run: short measurements, 3 rounds, no retries\n"
			     "  --retry-noisy N   redo a measurement disturbed by others (default 2)\n"
			     "  --noise-max PCT   others + steal above this is disturbed (default 10)\n"
			     "  --peers LIST      a comma list of peers (default all; see 'list')\n"
			     "  --cores LIST      %s (default %s)\n"
			     "  --csv FILE, --json FILE   every measurement, and the summary (JSON)\n"
			     "  --plot DIR        DIR/%s.png with gnuplot (median of %s)\n",
			sc->rounds_default, sc->rounds_quick ? sc->rounds_quick : 3, sc->cores_help ? sc->cores_help : "unused",
			sc->cores_default ? sc->cores_default : "-", sc->name, sc->figs[0].name);
		if (sc->sweep_name)
			fprintf(out, "  --%-16s a comma list (default %s; --quick %s)\n",
				sc->sweep_name, sc->sweep_default, sc->sweep_quick);
	}
	for (unsigned i = 0; i < sc->param_count; i++) {
		const struct bench_param *p = &sc->params[i];
		fprintf(out, "  --%-16s %s (default ", p->name, p->help);
		if (p->choices)
			fprintf(out, "%s)\n", p->choices[p->value]);
		else
			fprintf(out, "%" PRIu64 "; --quick %" PRIu64 ")\n", p->value, p->quick);
	}
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

static int parse_list(const char *s, uint64_t *out, unsigned max_count, unsigned *count)
{
	char buf[256], *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	*count = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (*count == max_count || parse_u64(t, 0, UINT32_MAX, &out[(*count)++]))
			return -EINVAL;
	return *count ? 0 : -EINVAL;
}

static int parse_peers(const struct bench_scenario *sc, const char *s, struct opts *o)
{
	char buf[256], *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	memset(o->peer_on, 0, sizeof(o->peer_on));
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned p = 0;
		while (p < sc->peer_count && strcmp(sc->peers[p]->name, t))
			p++;
		if (p == sc->peer_count)
			return bench_fail(-EINVAL, "%s: no peer '%s' (onering-bench list)",
					  sc->name, t);
		o->peer_on[p] = true;
	}
	return 0;
}

static int parse_param(struct bench_param *p, const char *v)
{
	if (p->choices) {
		for (uint64_t i = 0; p->choices[i]; i++)
			if (strcmp(p->choices[i], v) == 0) {
				p->value = i;
				return 0;
			}
		return -EINVAL;
	}
	return parse_u64(v, p->min, p->max, &p->value);
}

static int parse_opts(struct bench_ctx *ctx, struct opts *o, int argc, char **argv)
{
	const struct bench_scenario *sc = ctx->sc;
	uint64_t v[BENCH_MAX_CORES];
	bool rounds_given = false, retry_given = false;
	const char *sweep = sc->sweep_default, *cores = sc->cores_default;

	o->rounds = sc->rounds_default;
	o->retry_noisy = 2;
	o->noise_max_pct = 10;
	for (unsigned p = 0; p < sc->peer_count; p++)
		o->peer_on[p] = true;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;
		int rc = 0;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout, sc);
			exit(0);
		} else if (strcmp(a, "--quick") == 0) {
			ctx->quick = true;
			takes = false;
		} else if (!val) {
			return bench_fail(-EINVAL, "%s: unknown option or missing value: %s",
					  sc->name, a);
		} else if (strcmp(a, "--rounds") == 0) {
			rc = parse_u64(val, 1, BENCH_MAX_ROUNDS, &v[0]);
			o->rounds = (unsigned)v[0];
			rounds_given = true;
		} else if (strcmp(a, "--retry-noisy") == 0) {
			rc = parse_u64(val, 0, 10, &v[0]);
			o->retry_noisy = (unsigned)v[0];
			retry_given = true;
		} else if (strcmp(a, "--noise-max") == 0) {
			rc = parse_u64(val, 1, 100, &v[0]);
			o->noise_max_pct = (double)v[0];
		} else if (strcmp(a, "--peers") == 0) {
			rc = parse_peers(sc, val, o);
		} else if (strcmp(a, "--cores") == 0) {
			cores = val;
		} else if (strcmp(a, "--csv") == 0) {
			o->csv_path = val;
		} else if (strcmp(a, "--json") == 0) {
			o->json_path = val;
		} else if (strcmp(a, "--plot") == 0) {
			o->plot_dir = val;
		} else if (sc->sweep_name && strncmp(a, "--", 2) == 0 &&
			   strcmp(a + 2, sc->sweep_name) == 0) {
			sweep = val;
		} else {
			unsigned k = 0;
			while (k < sc->param_count &&
			       (strncmp(a, "--", 2) || strcmp(a + 2, sc->params[k].name)))
				k++;
			if (k == sc->param_count)
				return bench_fail(-EINVAL, "%s: unknown option %s", sc->name, a);
			rc = parse_param(&sc->params[k], val);
			sc->params[k].given = true;
		}
		if (rc)
			return bench_fail(-EINVAL, "%s: bad value for %s: %s", sc->name, a, val);
		i += takes;
	}
	if (ctx->quick) {
		if (!rounds_given)
			o->rounds = sc->rounds_quick ? sc->rounds_quick : 3;
		if (!retry_given)
			o->retry_noisy = 0;
		if (sc->sweep_name && sweep == sc->sweep_default)
			sweep = sc->sweep_quick;
		for (unsigned k = 0; k < sc->param_count; k++)
			if (!sc->params[k].given && !sc->params[k].choices)
				sc->params[k].value = sc->params[k].quick;
	}
	if (sc->sweep_name) {
		if (parse_list(sweep, o->sweep, BENCH_MAX_SWEEP, &o->sweep_count))
			return bench_fail(-EINVAL, "%s: bad --%s list: %s", sc->name,
					  sc->sweep_name, sweep);
	} else {
		o->sweep_count = 1;
	}
	if (cores) {
		if (parse_list(cores, v, BENCH_MAX_CORES, &ctx->core_count))
			return bench_fail(-EINVAL, "%s: bad --cores list: %s", sc->name, cores);
		for (unsigned k = 0; k < ctx->core_count; k++) {
			if (!CPU_ISSET(v[k], &ctx->start_affinity))
				return bench_fail(-EINVAL, "%s: CPU %" PRIu64 " is not one this "
					"program may use", sc->name, v[k]);
			ctx->cores[k] = (int)v[k];
		}
	}
	ctx->rounds = o->rounds;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Output.                                                                 */

static unsigned fig_total(const struct bench_scenario *sc)
{
	return sc->fig_count + EXTRA_COUNT;
}

static const char *fig_name(const struct bench_scenario *sc, unsigned f)
{
	return f < sc->fig_count ? sc->figs[f].name : extra_names[f - sc->fig_count];
}

static double fig_median(const struct opts *o, unsigned si, unsigned p, unsigned f)
{
	double v[BENCH_MAX_ROUNDS];

	for (unsigned r = 0; r < o->rounds; r++)
		v[r] = results[r][si][p][f];
	return bench_median(v, o->rounds);
}

/*
 * A peer's figure in round r; a name ending in '*' is the best (largest)
 * figure of the peers that ran with that prefix. -1 when none.
 */
static double peer_fig(const struct bench_scenario *sc, const struct opts *o, unsigned r,
		       unsigned si, const char *name, unsigned f)
{
	size_t len = strlen(name);
	bool any = len && name[len - 1] == '*';
	double best = -1;

	for (unsigned p = 0; p < sc->peer_count; p++)
		if (o->peer_on[p] && (any ? strncmp(sc->peers[p]->name, name, len - 1) == 0
					  : strcmp(sc->peers[p]->name, name) == 0) &&
		    results[r][si][p][f] > best)
			best = results[r][si][p][f];
	return best;
}

/* Median over rounds of the per-round ratio; -1 when no round has both. */
static double ratio_median(const struct opts *o, unsigned si, const struct bench_ratio *d,
			   const struct bench_scenario *sc)
{
	double v[BENCH_MAX_ROUNDS];

	for (unsigned r = 0; r < o->rounds; r++) {
		double x = peer_fig(sc, o, r, si, d->peer_a, d->fig);
		double y = peer_fig(sc, o, r, si, d->peer_b, d->fig);
		v[r] = x >= 0 && y > 0 ? x / y : -1;
	}
	return bench_median(v, o->rounds);
}

static void print_row(const struct bench_scenario *sc, const char *peer, const double *f)
{
	printf("  %-16s", peer);
	for (unsigned k = 0; k < fig_total(sc); k++) {
		int prec = k < sc->fig_count ? sc->figs[k].precision : 1;
		if (f[k] < 0)
			printf(" %12s", "-");
		else
			printf(" %12.*f", prec, f[k]);
	}
	printf("\n");
}

static void print_header(const struct bench_scenario *sc)
{
	printf("  %-16s", "peer");
	for (unsigned k = 0; k < fig_total(sc); k++)
		printf(" %12s", fig_name(sc, k));
	printf("\n");
}

static void sweep_label(const struct bench_scenario *sc, const struct opts *o, unsigned si,
			char *buf, size_t size)
{
	if (sc->sweep_name)
		snprintf(buf, size, "%s=%" PRIu64, sc->sweep_name, o->sweep[si]);
	else
		snprintf(buf, size, "all");
}

static void print_summary(const struct bench_scenario *sc, const struct opts *o)
{
	char label[64];

	printf("\n== %s: medians over %u rounds ==\n", sc->name, o->rounds);
	for (unsigned si = 0; si < o->sweep_count; si++) {
		sweep_label(sc, o, si, label, sizeof(label));
		printf("\n%s\n", label);
		print_header(sc);
		for (unsigned p = 0; p < sc->peer_count; p++) {
			double f[BENCH_MAX_FIGS + EXTRA_COUNT];
			bool any = false;
			if (!o->peer_on[p])
				continue;
			for (unsigned k = 0; k < fig_total(sc); k++) {
				f[k] = fig_median(o, si, p, k);
				any |= f[k] >= 0 && k < sc->fig_count;
			}
			if (any)
				print_row(sc, sc->peers[p]->name, f);
		}
		for (unsigned k = 0; k < sc->ratio_count; k++) {
			const struct bench_ratio *d = &sc->ratios[k];
			double r = ratio_median(o, si, d, sc);
			if (r < 0 || (d->at >= 0 && (uint64_t)d->at != o->sweep[si]))
				continue;
			printf("  ratio %s %s/%s: %.3fx", sc->figs[d->fig].name, d->peer_a,
			       d->peer_b, r);
			if (d->min > 0)
				printf("   target >= %.2f: %s", d->min, r >= d->min ? "met" : "missed");
			if (d->max > 0)
				printf("   target <= %.2f: %s", d->max, r <= d->max ? "met" : "missed");
			printf("\n");
		}
	}
	if (disturbed_count)
		printf("\n%u measurement(s) stayed disturbed (others + steal > %.0f %%)\n",
		       disturbed_count, o->noise_max_pct);
}

static int write_csv(const struct bench_scenario *sc, const struct opts *o)
{
	FILE *f = fopen(o->csv_path, "w");

	if (!f)
		return bench_fail(-errno, "%s: %s", o->csv_path, strerror(errno));
	fprintf(f, "scenario,round,%s,peer", sc->sweep_name ? sc->sweep_name : "sweep");
	for (unsigned k = 0; k < fig_total(sc); k++)
		fprintf(f, ",%s", fig_name(sc, k));
	fprintf(f, "\n");
	for (unsigned r = 0; r < o->rounds; r++)
		for (unsigned si = 0; si < o->sweep_count; si++)
			for (unsigned p = 0; p < sc->peer_count; p++) {
				if (!o->peer_on[p] || results[r][si][p][0] < 0)
					continue;
				fprintf(f, "%s,%u,%" PRIu64 ",%s", sc->name, r + 1, o->sweep[si],
					sc->peers[p]->name);
				for (unsigned k = 0; k < fig_total(sc); k++)
					fprintf(f, ",%.6g", results[r][si][p][k]);
				fprintf(f, "\n");
			}
	return fclose(f) ? -errno : 0;
}

static int write_json(const struct bench_scenario *sc, const struct opts *o)
{
	FILE *f = fopen(o->json_path, "w");
	const char *sep = "";

	if (!f)
		return bench_fail(-errno, "%s: %s", o->json_path, strerror(errno));
	fprintf(f, "{\"scenario\":\"%s\",\"rounds\":%u,\"sweep\":\"%s\",\"medians\":[", sc->name,
		o->rounds, sc->sweep_name ? sc->sweep_name : "");
	for (unsigned si = 0; si < o->sweep_count; si++)
		for (unsigned p = 0; p < sc->peer_count; p++) {
			if (!o->peer_on[p] || fig_median(o, si, p, 0) < 0)
				continue;
			fprintf(f, "%s\n{\"sweep\":%" PRIu64 ",\"peer\":\"%s\"", sep, o->sweep[si],
				sc->peers[p]->name);
			for (unsigned k = 0; k < fig_total(sc); k++) {
				double m = fig_median(o, si, p, k);
				if (m >= 0)
					fprintf(f, ",\"%s\":%.6g", fig_name(sc, k), m);
			}
			fprintf(f, "}");
			sep = ",";
		}
	fprintf(f, "],\"ratios\":[");
	sep = "";
	for (unsigned si = 0; si < o->sweep_count; si++)
		for (unsigned k = 0; k < sc->ratio_count; k++) {
			double r = ratio_median(o, si, &sc->ratios[k], sc);
			if (r < 0 || (sc->ratios[k].at >= 0 &&
				      (uint64_t)sc->ratios[k].at != o->sweep[si]))
				continue;
			fprintf(f, "%s\n{\"sweep\":%" PRIu64 ",\"fig\":\"%s\",\"a\":\"%s\",\"b\":\"%s\","
				"\"ratio\":%.4g}", sep, o->sweep[si], sc->figs[sc->ratios[k].fig].name,
				sc->ratios[k].peer_a, sc->ratios[k].peer_b, r);
			sep = ",";
		}
	fprintf(f, "]}\n");
	return fclose(f) ? -errno : 0;
}

/* DIR/SCENARIO.png: median of figs[0], one bar per peer per sweep point. */
static int write_plot(const struct bench_scenario *sc, const struct opts *o)
{
	char data[PATH_MAX], png[PATH_MAX], cmd[PATH_MAX * 3];
	FILE *f;

	if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
		fprintf(stderr, "warning: gnuplot not found: no plot (tools/dev installs it)\n");
		return 0;
	}
	snprintf(data, sizeof(data), "%s/%s.dat", o->plot_dir, sc->name);
	snprintf(png, sizeof(png), "%s/%s.png", o->plot_dir, sc->name);
	f = fopen(data, "w");
	if (!f)
		return bench_fail(-errno, "%s: %s", data, strerror(errno));
	fprintf(f, "point");
	for (unsigned p = 0; p < sc->peer_count; p++)
		if (o->peer_on[p])
			fprintf(f, " %s", sc->peers[p]->name);
	fprintf(f, "\n");
	for (unsigned si = 0; si < o->sweep_count; si++) {
		char label[64];
		sweep_label(sc, o, si, label, sizeof(label));
		fprintf(f, "%s", label);
		for (unsigned p = 0; p < sc->peer_count; p++)
			if (o->peer_on[p]) {
				double m = fig_median(o, si, p, 0);
				fprintf(f, m < 0 ? " ?" : " %g", m);
			}
		fprintf(f, "\n");
	}
	fclose(f);
	/* columns: the label, then one per peer that ran */
	unsigned cols = 1;
	for (unsigned p = 0; p < sc->peer_count; p++)
		cols += o->peer_on[p];
	snprintf(cmd, sizeof(cmd),
		 "gnuplot -e \"set terminal png size 800,420; set output '%s';"
		 " set title 'onering-bench %s: %s (median of %u rounds)'; set style data histograms;"
		 " set style fill solid border -1; set key outside; set datafile missing '?';"
		 " set grid y; set yrange [0:*]; plot for [i=2:%u] '%s' using i:xtic(1) title columnhead\"",
		 png, sc->name, sc->figs[0].name, o->rounds, cols, data);
	if (system(cmd) != 0)
		return bench_fail(-EIO, "gnuplot failed: %s", cmd);
	unlink(data);
	printf("plot: %s\n", png);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Rounds.                                                                 */

static int measure_once(struct bench_ctx *ctx, const struct opts *o, unsigned p, uint64_t sweep,
			double *f)
{
	const struct bench_scenario *sc = ctx->sc;

	for (unsigned attempt = 0;; attempt++) {
		struct noise_sample a, b;

		for (unsigned k = 0; k < fig_total(sc); k++)
			f[k] = -1;
		ctx->child_cpu_ns = 0;
		noise_take(&a);
		int rc = sc->measure(ctx, sc->peers[p], sweep, f);
		noise_take(&b);
		if (rc)
			return rc;
		noise_figs(&a, &b, ctx->child_cpu_ns, &f[sc->fig_count + EXTRA_OTHERS],
			   &f[sc->fig_count + EXTRA_STEAL]);
		double noise = f[sc->fig_count + EXTRA_OTHERS] + f[sc->fig_count + EXTRA_STEAL];
		if (noise <= o->noise_max_pct)
			return 0;
		if (attempt >= o->retry_noisy || bench_interrupted) {
			disturbed_count++;
			return 0;
		}
		printf("  (disturbed: others + steal %.0f %%, again)\n", noise);
	}
}

static int run_rounds(struct bench_ctx *ctx, const struct opts *o)
{
	const struct bench_scenario *sc = ctx->sc;
	char label[64];
	int status = 0;

	for (unsigned r = 0; r < o->rounds && !bench_interrupted; r++)
		for (unsigned si = 0; si < o->sweep_count && !bench_interrupted; si++) {
			sweep_label(sc, o, si, label, sizeof(label));
			printf("\nround %u/%u, %s\n", r + 1, o->rounds, label);
			print_header(sc);
			for (unsigned p = 0; p < sc->peer_count && !bench_interrupted; p++) {
				double *f = results[r][si][p];
				if (!o->peer_on[p])
					continue;
				int rc = measure_once(ctx, o, p, o->sweep[si], f);
				fflush(stdout);
				if (rc == BENCH_NA)
					continue;
				if (rc == BENCH_WRONG) {
					fprintf(stderr, "%s: %s: correctness check failed\n",
						sc->name, sc->peers[p]->name);
					status = 1;
					continue;
				}
				if (rc < 0)
					return bench_fail(2, "%s: %s: %s", sc->name,
							  sc->peers[p]->name, strerror(-rc));
				print_row(sc, sc->peers[p]->name, f);
			}
		}
	return status;
}

static void list_scenarios(void)
{
	for (unsigned i = 0; i < SCENARIO_COUNT; i++) {
		const struct bench_scenario *sc = scenarios[i];
		printf("%-10s %s\n", sc->name, sc->about);
		for (unsigned p = 0; p < sc->peer_count; p++)
			printf("    %-16s %s%s%s%s\n", sc->peers[p]->name, sc->peers[p]->about,
			       sc->peers[p]->needs ? " [" : "",
			       sc->peers[p]->needs ? sc->peers[p]->needs : "",
			       sc->peers[p]->needs ? "]" : "");
	}
}

int main(int argc, char **argv)
{
	static char self_dir[PATH_MAX];
	struct bench_ctx ctx = { 0 };
	struct opts o = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	int status;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout, NULL);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "list") == 0) {
		list_scenarios();
		return 0;
	}
	for (unsigned i = 0; i < SCENARIO_COUNT && !ctx.sc; i++)
		if (strcmp(scenarios[i]->name, argv[1]) == 0)
			ctx.sc = scenarios[i];
	if (!ctx.sc) {
		fprintf(stderr, "onering-bench: unknown scenario '%s'\n", argv[1]);
		usage(stderr, NULL);
		return 2;
	}
	ssize_t n = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1);
	if (n > 0) {
		self_dir[n] = '\0';
		char *slash = strrchr(self_dir, '/');
		if (slash)
			*slash = '\0';
	}
	ctx.self_dir = self_dir;
	sched_getaffinity(0, sizeof(ctx.start_affinity), &ctx.start_affinity);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (ctx.sc->run_whole)
		return ctx.sc->run_whole(&ctx, argc, argv);
	if (parse_opts(&ctx, &o, argc, argv))
		return 2;
	if (ctx.sc->init && (status = ctx.sc->init(&ctx)) != 0)
		return bench_fail(2, "%s: setup failed: %s", ctx.sc->name, strerror(-status));
	status = run_rounds(&ctx, &o);
	if (ctx.sc->fini)
		ctx.sc->fini(&ctx);
	if (bench_interrupted)
		return 130;
	if (status == 2)
		return 2;
	print_summary(ctx.sc, &o);
	if ((o.csv_path && write_csv(ctx.sc, &o)) || (o.json_path && write_json(ctx.sc, &o)) ||
	    (o.plot_dir && write_plot(ctx.sc, &o)))
		return 2;
	return status;
}
