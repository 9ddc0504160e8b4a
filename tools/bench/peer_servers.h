/* SPDX-License-Identifier: MIT */
/*
 * peer_servers.h: what the servers scenario and its peers share (the hooks'
 * meaning is at the top of scenario_servers.c): the example HTTP server
 * started as a child, behind one start/stop pair every peer uses.
 */
#ifndef ONERING_TOOLS_BENCH_PEER_SERVERS_H
#define ONERING_TOOLS_BENCH_PEER_SERVERS_H

#include "tools/bench/bench.h"

enum { SERVERS_OP_PIDS = 1 }; /* control(): arg pid_t[2] = { server, broker or 0 } */

struct servers_common {
	unsigned port;
	pid_t server;
	struct bench_broker broker;
};

/*
 * Start examples/http_server.c (onering-http-server, found like oneringd:
 * $ONERING_HTTP_SERVER, next to onering-bench, <dir>/../examples, PATH) on
 * c->port with the extra arguments (NULL-terminated), on the app CPUs of
 * --cores when given, and wait until it accepts connections (5 s).
 * @return 0; -errno (printed).
 */
int servers_start(struct bench_ctx *ctx, struct servers_common *c, const char *const *extra);
/* Stop the server (SIGTERM, SIGKILL after 5 s) and the broker. */
void servers_stop(struct bench_ctx *ctx, struct servers_common *c);

extern const struct bench_peer_ops bench_peer_servers_onering;
extern const struct bench_peer_ops bench_peer_servers_epoll;

#endif /* ONERING_TOOLS_BENCH_PEER_SERVERS_H */
