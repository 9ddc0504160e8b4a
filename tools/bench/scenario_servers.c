/* SPDX-License-Identifier: MIT */
/*
 * scenario_servers.c: the HTTP example (examples/http_server.c) under wrk
 * on loopback, on onering, on plain epoll and on io_uring (method: docs/benchmarks.md,
 * HTTP server). Peer hooks (state starts with struct servers_common): setup
 * (the server listening on common.port; common.server and common.broker:
 * whose CPU counts); teardown.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/bench/peers.h"

enum { FIG_RPS, FIG_P50_US, FIG_P99_US, FIG_ERRORS, FIG_SERVER_PCT, FIG_BROKER_PCT, FIG_WRK_PCT,
       FIG_SVC_US, FIG_CPU_US, FIG_COUNT };

/* wrk and the server run on --cores' CPUs if given, else on ours. */
#define app_cpus(ctx) ((ctx)->core_count ? &(ctx)->cores_set : &(ctx)->start_affinity)

/* wrk's latency (812.00us, 1.19ms, 2.00s) in µs; -1 if unreadable. */
static double wrk_us(const char *v)
{
	char *end;
	double n = strtod(v, &end);

	if (end == v)
		return -1;
	return strncmp(end, "us", 2) == 0 ? n : strncmp(end, "ms", 2) == 0 ? n * 1e3 : n * 1e6;
}

/* One wrk run of seconds; fig NULL: a warm-up. wrk's CPU in *wrk_ns. */
static int run_wrk(struct bench_ctx *ctx, unsigned port, uint64_t seconds, double *fig,
		   uint64_t *wrk_ns)
{
	static char wrk[PATH_MAX];
	char threads[16], conns[16], dur[16], url[64], out[] = "/tmp/onering-bench-wrk-XXXXXX";
	char line[256], v[64];
	unsigned a, b, c, d, errors = 0;
	struct rusage ru;
	pid_t pid;
	int status, rc, fd;

	if (!wrk[0] && (rc = tool_find_program(ctx->self_dir, "WRK", "wrk", "bin", NULL, wrk,
					       sizeof(wrk))) < 0)
		return bench_fail(rc, "servers: needs wrk (apt-get install wrk)");
	if ((fd = mkstemp(out)) < 0)
		return -errno;
	close(fd);
	snprintf(threads, sizeof(threads), "-t%u", (unsigned)bench_param(ctx, "threads"));
	snprintf(conns, sizeof(conns), "-c%u", (unsigned)bench_param(ctx, "connections"));
	snprintf(dur, sizeof(dur), "-d%us", (unsigned)seconds);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
	static char latency[] = "--latency";
	char *argv[] = { wrk, threads, conns, dur, latency, url, NULL };
	if ((rc = tool_child_start(argv, out, app_cpus(ctx), -1, &pid)) < 0)
		goto out;
	while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
		;
	*wrk_ns = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
		  (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
	FILE *f = fopen(out, "r");
	rc = !WIFEXITED(status) || WEXITSTATUS(status) || !f ? -EIO : 0;
	while (rc == 0 && fig && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Requests/sec: %63s", v) == 1)
			fig[FIG_RPS] = strtod(v, NULL);
		else if (sscanf(line, " 50%% %63s", v) == 1)
			fig[FIG_P50_US] = wrk_us(v);
		else if (sscanf(line, " 99%% %63s", v) == 1)
			fig[FIG_P99_US] = wrk_us(v);
		else if (sscanf(line, " Socket errors: connect %u, read %u, write %u, timeout %u",
				&a, &b, &c, &d) == 4)
			errors += a + b + c + d;
		else if (sscanf(line, " Non-2xx or 3xx responses: %u", &a) == 1)
			errors += a;
	}
	if (f)
		fclose(f);
	if (rc == 0 && fig && fig[FIG_RPS] < 0)
		rc = bench_fail(-EIO, "servers: no Requests/sec in wrk's output (%s)", out);
	else if (rc)
		fprintf(stderr, "servers: wrk failed (status %d)\n", status);
	else if (fig)
		fig[FIG_ERRORS] = errors;
out:
	unlink(out);
	return rc;
}

static int servers_measure(struct bench_ctx *ctx, const struct bench_peer_ops *peer, void *state,
			   uint64_t sweep BENCH_UNUSED, double *fig)
{
	struct servers_common *c = state;
	uint64_t secs = bench_param(ctx, "seconds"), warm = bench_param(ctx, "warmup-s"), wrk_ns;
	int rc;

	c->port = (unsigned)bench_param(ctx, "port");
	if ((rc = peer->setup(ctx, peer, state)) == 0 && warm)
		rc = run_wrk(ctx, c->port, warm, NULL, &wrk_ns);
	if (rc == 0) {
		uint64_t srv0 = bench_proc_cpu_ns(c->server), brk0 = bench_proc_cpu_ns(c->broker.pid);
		rc = run_wrk(ctx, c->port, secs, fig, &wrk_ns);
		fig[FIG_SERVER_PCT] = (double)(bench_proc_cpu_ns(c->server) - srv0) / 1e7 / secs;
		if (c->broker.pid > 0)
			fig[FIG_BROKER_PCT] =
				(double)(bench_proc_cpu_ns(c->broker.pid) - brk0) / 1e7 / secs;
		fig[FIG_WRK_PCT] = (double)wrk_ns / 1e7 / secs;
		/* CPU per request, µs: the service (server and broker), and every
		 * process of the run (wrk too). */
		double reqs = fig[FIG_RPS] * (double)secs;
		double svc = (fig[FIG_SERVER_PCT] + (c->broker.pid > 0 ? fig[FIG_BROKER_PCT] : 0)) *
			     1e4 * (double)secs;
		if (reqs > 0) {
			fig[FIG_SVC_US] = svc / reqs;
			fig[FIG_CPU_US] = (svc + fig[FIG_WRK_PCT] * 1e4 * (double)secs) / reqs;
		}
		ctx->child_cpu_ns += wrk_ns + bench_proc_cpu_ns(c->server) - srv0;
	}
	peer->teardown(ctx, state);
	return rc;
}

int servers_start(struct bench_ctx *ctx, struct servers_common *c, const char *const *extra)
{
	static char path[PATH_MAX];
	static char port_opt[] = "--port", max_opt[] = "--max-seconds", max_s[] = "600";
	char port[16], log[] = "/tmp/onering-bench-server-XXXXXX";
	char *argv[16] = { path, port_opt, port, max_opt, max_s };
	int argc = 5, rc, fd = mkstemp(log);

	if (fd < 0)
		return -errno;
	close(fd);
	if (!path[0] && (rc = tool_find_program(ctx->self_dir, "ONERING_HTTP_SERVER",
						   "onering-http-server", "examples", NULL, path,
						   sizeof(path))) < 0)
		return rc;
	snprintf(port, sizeof(port), "%u", c->port);
	for (; extra && *extra && argc < 15; extra++)
		argv[argc++] = (char *)(uintptr_t)*extra;
	argv[argc] = NULL;
	if ((rc = tool_child_start(argv, log, app_cpus(ctx), -1, &c->server)) < 0)
		return rc;
	/* Listening: a connect to the port succeeds (5 s at most). */
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	for (int i = 0; i < 100 && waitpid(c->server, NULL, WNOHANG) == 0; i++) {
		int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool up = sock >= 0 && connect(sock, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (sock >= 0)
			close(sock);
		if (up) {
			unlink(log);
			return 0;
		}
		bench_sleep_ns(50000000ull);
	}
	fprintf(stderr, "servers: %s did not listen on port %u; its output: %s\n", path, c->port,
		log);
	return -EIO;
}

void servers_stop(struct bench_ctx *ctx, void *state)
{
	struct servers_common *c = state;

	tool_child_stop(c->server);
	bench_broker_stop(ctx, &c->broker);
}

static const struct bench_peer_ops *const servers_peers[] = {
	&bench_peer_servers_onering, &bench_peer_servers_epoll, &bench_peer_servers_uring,
	&bench_peer_servers_completion, &bench_peer_servers_completion_calls,
};

static struct bench_param servers_params[] = {
	BENCH_INT("seconds", "measured wrk run, s", 10, 2, 1, 3600),
	BENCH_INT("warmup-s", "warm-up wrk run before it, s (0: none)", 2, 1, 0, 600),
	BENCH_INT("threads", "wrk threads", 1, 1, 1, 64),
	BENCH_INT("connections", "wrk connections", 50, 50, 1, 10000),
	BENCH_INT("port", "TCP port on 127.0.0.1", 18080, 18080, 1024, 65535),
};

BENCH_SCENARIO(servers, NULL, NULL, NULL, NULL, 3, 1,
	.about = "the HTTP example under wrk: onering (readiness and completion mode) vs plain "
		"epoll vs io_uring, the same server logic (needs wrk)",
	.cores_help = "the server's and wrk's CPUs, oneringd then on the first other one "
		"(default: unpinned)",
	.fig_names = "requests/s p50_us p99_us errors server_cpu% broker_cpu% wrk_cpu% "
		"svc_us/req:2 cpu_us/req:2",
	.ratio_text = "requests/s onering epoll >=1; p99_us onering epoll <=1.1; "
		"requests/s completion epoll >=1.3; requests/s completion uring >=1; "
		"p99_us completion epoll <=1; requests/s onering uring; p99_us onering uring; "
		"requests/s uring epoll; requests/s completion completion-calls; "
		"svc_us/req completion completion-calls"
);
