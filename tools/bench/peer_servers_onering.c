/* SPDX-License-Identifier: MIT */
/*
 * peer_servers_onering.c: servers peer "onering": a private oneringd
 * (default options, one poller on the CPUs this program started with) and
 * the HTTP example attached to it (--name, --socket-dir); "epoll" and
 * "uring": the same example on plain epoll (--epoll) and on io_uring
 * (--uring).
 */
#include "tools/bench/peers.h"

static int servers_onering_setup(struct bench_ctx *ctx,
				 const struct bench_peer_ops *self BENCH_UNUSED, void *state)
{
	struct servers_common *c = state;
	int rc = bench_broker_start(ctx, &c->broker, NULL, NULL);

	if (rc < 0)
		return rc;
	const char *extra[] = { "--name", c->broker.name, "--socket-dir", c->broker.dir, NULL };
	return servers_start(ctx, c, extra);
}

BENCH_PEER(bench_peer_servers_onering, "onering", "examples/http_server.c on a private oneringd",
	   NULL, struct servers_common, 0, servers_onering_setup, NULL, NULL, NULL, servers_stop);

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
