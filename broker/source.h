/* SPDX-License-Identifier: MIT */
/*
 * Sources: where a poller's records come from, one file per kind behind
 * one ops table (the loop in poller.c knows no kind).
 *
 *   source_nic.c      DPDK rx queues homed on this poller
 *   source_fds.c      kernel fds through the poller's epoll set (sockets,
 *                     pipes, signalfd, inotify, pidfd, eventfd ...)
 *   source_lanes.c    hand-offs from other pollers and redeliveries from
 *                     the control thread
 *   source_timers.c   broker-side timers (a heap per poller)
 *   source_submit.c   clients' submission rings: requests and user posts
 *   source_words.c    watched memory words of clients' queues
 *   stream.c          completion-mode sockets: receives and sends that
 *                     waited for a buffer, ring space or socket space
 *
 * A source only emits: it hands records to deliver.h, hand-offs to lane.h,
 * and requests to request.h. It never calls the loop or another source.
 * Context of every op: the poller's thread, inside its RCU read side,
 * except create (control thread, before the poller starts) and destroy
 * (after it stopped).
 */
#ifndef ONERING_BROKER_SOURCE_H
#define ONERING_BROKER_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker_queue;
struct broker_sub;
struct onering_request;
struct poller;

/* What the loop tells a source's poll. */
struct broker_poll_ctx {
	uint64_t now_ns;  /* CLOCK_MONOTONIC at the top of this loop */
	uint64_t loop_no; /* the poller's loop count */
	unsigned work;    /* work the sources polled before this one did this loop */
};

struct broker_source;

struct broker_source_ops {
	const char *name;
	/* Collect what is ready and emit it. Returns work done (0: nothing). */
	unsigned (*poll)(struct broker_source *src, const struct broker_poll_ctx *ctx);
	/* A request on subscription s (homed on this poller, owned by this
	 * source's kind) or, for s == NULL, on the source itself (a word watch).
	 * 0, or -EPROTO: the requester broke the protocol. NULL: none taken. */
	int (*apply_request)(struct broker_source *src, struct broker_queue *q, struct broker_sub *s,
			     const struct onering_request *req);
	/* ns until the source must be polled although nothing wakes the
	 * poller's wait set: 0 now (never sleep), UINT64_MAX never. NULL: never. */
	uint64_t (*next_deadline)(struct broker_source *src, uint64_t now_ns);
	/* After the poller announced an idle sleep (F2 in poller.c): true when
	 * work waits that would not wake it. NULL: never. */
	bool (*has_work)(struct broker_source *src);
	/* On the poller's thread, before its first loop and after its last. */
	void (*thread_start)(struct broker_source *src);
	void (*thread_stop)(struct broker_source *src);
	/* Free it (the poller has stopped). */
	void (*destroy)(struct broker_source *src);
};

struct broker_source {
	const struct broker_source_ops *ops;
	struct poller *p;
};

/* The kinds, for routing requests (request.c) and the order of polling. */
enum broker_source_kind {
	BROKER_SOURCE_NIC,
	BROKER_SOURCE_FDS,
	BROKER_SOURCE_LANES,
	BROKER_SOURCE_TIMERS,
	BROKER_SOURCE_SUBMIT,
	BROKER_SOURCE_WORDS,
	BROKER_SOURCE_STREAMS,
	BROKER_SOURCE_NR,
};

/* Each kind's constructor: 0 and *out (NULL: not needed on p), or -errno. */
int broker_source_nic_create(struct poller *p, struct broker_source **out);
int broker_source_fds_create(struct poller *p, struct broker_source **out);
int broker_source_lanes_create(struct poller *p, struct broker_source **out);
int broker_source_timers_create(struct poller *p, struct broker_source **out);
int broker_source_submit_create(struct poller *p, struct broker_source **out);
int broker_source_words_create(struct poller *p, struct broker_source **out);

/* For a kind's create: a zeroed object of size bytes (the kind's struct,
 * struct broker_source first) with ops and p set, or NULL (no memory). */
struct broker_source *broker_source_alloc(struct poller *p, const struct broker_source_ops *ops,
					  size_t size);
/* A kind's destroy when it has nothing else to free. */
void broker_source_free(struct broker_source *src);

/* Control thread: every source p needs, in polling order, into p->source[]
 * (by kind) and p->sources[] (in order). 0 or -errno (logged). */
int broker_sources_create(struct poller *p);
void broker_sources_destroy(struct poller *p);

/* epoll flags for a subscription mode: EDGE -> ET, ONESHOT -> ET|ONESHOT,
 * LEVEL -> level|ONESHOT (published once, re-armed after collection).
 * The control thread uses it when it adds an fd (source_fds.c). */
uint32_t broker_epoll_flags(uint8_t mode, uint32_t events);

#endif /* ONERING_BROKER_SOURCE_H */
