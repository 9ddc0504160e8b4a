/* SPDX-License-Identifier: MIT */
/*
 * peer_servers_onering.c: servers peer "onering": a private oneringd
 * (default options, one poller on the CPUs this program started with) and
 * the HTTP example attached to it (--name, --socket-dir).
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

static int servers_epoll_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self BENCH_UNUSED,
			       void *state)
{
	const char *extra[] = { "--epoll", NULL };

	return servers_start(ctx, state, extra);
}

/* Peer "epoll": the same server logic on plain edge-triggered epoll (--epoll). */
BENCH_PEER(bench_peer_servers_epoll, "epoll", "examples/http_server.c --epoll (plain "
	   "edge-triggered epoll)", NULL, struct servers_common, 0, servers_epoll_setup, NULL, NULL,
	   NULL, servers_stop);
