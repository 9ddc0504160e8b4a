/* SPDX-License-Identifier: MIT */
/*
 * The broker's side of the counters segment (shm/counters_seg.h) and of the
 * --metrics-listen HTTP endpoint (private to broker/; control thread only).
 *
 * counters.c  creates the segment (a memfd sealed F_SEAL_FUTURE_WRITE: the
 *             broker's mapping stays writable, no reader can get a writable
 *             one), copies every object's counters into it every
 *             --counters-interval-ms and whenever a reader asks (a COUNTERS
 *             request, a GET /metrics), and hands its fd to a peer that
 *             passed the SO_PEERCRED check.
 * metrics.c   the HTTP/1.0 server in the control thread's epoll: non-blocking,
 *             a bounded request, a deadline per connection, a cap on them.
 * http.c      the request parser (pure; fuzzed: tests/fuzz/fuzz_http.c).
 *
 * Why a copy and not the counters themselves in the segment: the pollers'
 * counters stay in their own cache lines of their own structures (no hot
 * path changes), and the segment's directory can change (queues and groups
 * come and go) under one seqlock that only the control thread writes.
 */
#ifndef ONERING_BROKER_COUNTERS_H
#define ONERING_BROKER_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shm/counters_seg.h"
#include "shm/segment.h"

struct broker;

struct broker_counters {
	struct onering_seg seg; /* fd -1: none (not created, or it failed) */
	struct onering_counters_writer w;
	uint64_t next_ns;       /* next periodic update */
	uint64_t readers;       /* COUNTERS requests answered */
	/* The endpoint's (metrics.c): ONERING_EXC_HTTP_* */
	uint64_t http_requests, http_errors, http_timeouts, http_refused;
	struct broker_metrics *metrics; /* NULL: no --metrics-listen */
};

/* ---- counters.c ---------------------------------------------------------- */

/*
 * Create, lay out, fill and seal the segment (--counters-max-objects slots).
 * Returns 0 or a negative errno (logged, with what to change).
 * Context: control thread, at start.
 */
int broker_counters_init(struct broker *b);

/* Copy every object's counters into the segment now (state: the header's,
 * ONERING_COUNTERS_RUNNING or _STOPPED). Nothing without a segment. */
void broker_counters_update(struct broker *b, uint32_t state);

/* The periodic update when due. Returns the ms until the next one, or -1. */
int broker_counters_tick(struct broker *b);

/* Unmap and close (readers keep their mapping: mark it stopped first,
 * broker_counters_update(b, ONERING_COUNTERS_STOPPED)). */
void broker_counters_fini(struct broker *b);

/*
 * The Prometheus text of the counters (onering_metrics_prometheus()), freshly
 * updated, in a malloc'd buffer (*text, *len). Returns 0, -ENODEV without a
 * segment, or -ENOMEM / the reader's error (logged).
 */
int broker_counters_prometheus(struct broker *b, char **text, size_t *len);

/* ---- metrics.c ------------------------------------------------------------- */

/* Parse --metrics-listen: "PORT" (127.0.0.1), "ADDR:PORT" or "[ADDR6]:PORT".
 * Fills the address for bind(2). Returns 0 or -EINVAL with err. */
struct sockaddr_storage;
int broker_metrics_addr_parse(const char *spec, struct sockaddr_storage *sa, unsigned *sa_len,
			      char *err, size_t err_size);

/* Listen (when cfg.metrics_listen is set) and add to the control epoll.
 * Returns 0 or a negative errno (logged, naming the address). */
int broker_metrics_init(struct broker *b);
/* An epoll event of key (see broker_metrics_owns). */
void broker_metrics_event(struct broker *b, uint64_t key, uint32_t events);
/* True for the epoll keys of the endpoint. */
bool broker_metrics_owns(uint64_t key);
/* Connections past their deadline closed. Returns the ms until the next
 * deadline, or -1. */
int broker_metrics_tick(struct broker *b);
void broker_metrics_fini(struct broker *b);

/* ---- http.c ------------------------------------------------------------------ */

#define BROKER_HTTP_REQUEST_MAX 2048 /* bytes of a request, headers included */

enum broker_http_method {
	BROKER_HTTP_GET = 1,
	BROKER_HTTP_HEAD = 2,
	BROKER_HTTP_OTHER = 3, /* a valid token, not one we serve: 405 */
};

struct broker_http_request {
	int method;        /* enum broker_http_method */
	char path[256];    /* the target up to '?', NUL-terminated */
	unsigned minor;    /* HTTP/1.<minor>: 0 or 1 */
	size_t header_len; /* bytes up to and with the blank line */
};

/*
 * Parse the request in buf[0, len) (not NUL-terminated; untrusted).
 * @return 1 a whole request (req filled); 0 not yet (the blank line has
 *   not come); -EINVAL malformed (a request line that is not METHOD SP
 *   /TARGET SP HTTP/1.x, a header line without a colon, a control byte);
 *   -E2BIG the target is longer than req->path.
 * Context: any; pure.
 */
int broker_http_parse(const char *buf, size_t len, struct broker_http_request *req);

#endif /* ONERING_BROKER_COUNTERS_H */
