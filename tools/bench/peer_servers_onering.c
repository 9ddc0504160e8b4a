/* SPDX-License-Identifier: MIT */
/*
 * peer_servers_onering.c: servers peer "onering": a private oneringd
 * (default options; with --cores, pinned to the first other CPU) and
 * the HTTP example attached to it (--name, --socket-dir; its readiness
 * default sleeps at once in onering_wait, as the epoll server blocks in
 * epoll_wait, see its --idle); "completion":
 * the same with the example in completion mode (--completion: the broker
 * accepts, receives and sends); "completion-calls": completion mode on
 * oneringd --stream-io calls (its receives and sends as calls, not
 * batched through io_uring); "epoll" and
 * "uring": the same example on plain epoll (--epoll) and on io_uring
 * (--uring).
 */
#include <stdio.h>

#include "tools/bench/peers.h"

/* stream_io: oneringd's --stream-io, or NULL (its default). */
static int onering_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self, void *state,
			 const char *stream_io)
{
	struct servers_common *c = state;
	char cpu[16] = "";
	/* With --cores, oneringd on the first other CPU this program may use
	 * (the server and wrk share the given ones). */
	for (int k = 0; ctx->core_count && !cpu[0] && k < CPU_SETSIZE; k++)
		if (CPU_ISSET(k, &ctx->start_affinity) && !CPU_ISSET(k, &ctx->cores_set))
			snprintf(cpu, sizeof(cpu), "%d", k);
	const char *args[8];
	unsigned n = 0;
	if (cpu[0]) {
		args[n++] = "--cores";
		args[n++] = cpu;
		args[n++] = "--control-core";
		args[n++] = cpu;
	}
	if (stream_io) {
		args[n++] = "--stream-io";
		args[n++] = stream_io;
	}
	args[n] = NULL;
	int rc = bench_broker_start(ctx, &c->broker, NULL, n ? args : NULL);

	if (rc < 0)
		return rc;
	const char *extra[] = { "--name", c->broker.name, "--socket-dir", c->broker.dir,
				(const char *)self->variant, NULL };
	return servers_start(ctx, c, extra);
}

static int servers_onering_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self,
				 void *state)
{
	return onering_setup(ctx, self, state, NULL);
}

static int servers_calls_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self,
			       void *state)
{
	return onering_setup(ctx, self, state, "calls");
}

BENCH_PEER(bench_peer_servers_onering, "onering", "examples/http_server.c on a private oneringd "
	   "(readiness: the server reads and writes)", NULL, struct servers_common, 0,
	   servers_onering_setup, NULL, NULL, NULL, servers_stop);
BENCH_PEER(bench_peer_servers_completion, "completion", "examples/http_server.c --completion on "
	   "a private oneringd (the broker accepts, receives and sends, a loop's receives and "
	   "sends in one io_uring_enter; the server makes no system call)", NULL,
	   struct servers_common, "--completion", servers_onering_setup, NULL, NULL, NULL,
	   servers_stop);
BENCH_PEER(bench_peer_servers_completion_calls, "completion-calls", "the same on oneringd "
	   "--stream-io calls (the broker's receives and sends as recv/send calls, one each)",
	   NULL, struct servers_common, "--completion", servers_calls_setup, NULL, NULL, NULL,
	   servers_stop);

/* variant: the example's back-end option. */
static int servers_plain_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self,
			       void *state)
{
	const char *extra[] = { (const char *)self->variant, NULL };

	return servers_start(ctx, state, extra);
}

BENCH_PEER(bench_peer_servers_epoll, "epoll", "examples/http_server.c --epoll (plain "
	   "edge-triggered epoll)", NULL, struct servers_common, "--epoll", servers_plain_setup,
	   NULL, NULL, NULL, servers_stop);
BENCH_PEER(bench_peer_servers_uring, "uring", "examples/http_server.c --uring (io_uring: "
	   "multishot accept and receive, provided buffers, sendmsg)", "liburing",
	   struct servers_common, "--uring", servers_plain_setup, NULL, NULL, NULL, servers_stop);
