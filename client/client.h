/* SPDX-License-Identifier: MIT */
/* libonering internals (private to client/). */
#ifndef ONERING_CLIENT_INTERNAL_H
#define ONERING_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "client/onering.h"
#include "shm/doorbell.h"
#include "shm/proto.h"
#include "shm/ring.h"
#include "shm/segment.h"

#define CLIENT_ERR_MAX 320

struct onering {
	int sock;
	pthread_mutex_t lock; /* one request/reply on the socket at a time */
	uint32_t seq;
	uint32_t client_id;
	uint64_t epoch;
	bool dead; /* the broker hung up or said SHUTDOWN */
	char name[ONERING_NAME_MAX];
	char socket_path[256];
	char err[CLIENT_ERR_MAX];
	struct onering_queue *queues; /* list, under lock */
};

/* What the client remembers of one of its subscriptions. */
struct client_sub {
	uint32_t gen; /* 0: not live */
	uint8_t mode;
	bool level_out; /* LEVEL record delivered, not collected yet */
	int fd;         /* the caller's fd, for the collection poll() */
	uint32_t events;
	uint64_t cookie;
};

struct onering_queue {
	struct onering *att;
	struct onering_queue *next;
	uint32_t id;
	int node; /* NUMA node of the memory, or -1 */
	struct onering_seg ev_seg;
	struct onering_seg cons_seg;
	struct onering_ring_consumer evc; /* event ring: we consume */
	struct onering_ring_producer sqp; /* submission ring: we produce */
	struct onering_doorbell *db;
	const ONERING_ATOMIC(uint32_t) *poller_flags; /* the serving poller sleeps? */
	int kick_fd; /* the poller's eventfd: written only when it sleeps */
	bool dead; /* saw the broker's SHUTDOWN record */

	/* Subscriptions by id (the broker's ids are dense). */
	struct client_sub *subs;
	uint32_t nr_subs;

	/* LEVEL bookkeeping: ids delivered and not collected. */
	uint32_t *level_out;
	uint32_t nr_level_out;
	uint32_t cap_level_out;

	/* Still-ready LEVEL sources found by the collection, returned again. */
	struct onering_event *redeliver;
	uint32_t nr_redeliver;
	uint32_t cap_redeliver;

	uint32_t collect_every;
	uint32_t since_collect;
	uint64_t spin_ns;
};

/* attach.c: one request and its reply; fds of the reply in rfds. */
int client_request(struct onering *att, struct onering_msg *req, const int *fds, unsigned nfds,
		   struct onering_msg *rep, int *rfds, unsigned max_rfds, unsigned *nrfds);
/* Is the broker still there? Non-blocking; marks att->dead. */
bool client_broker_alive(struct onering *att);
void client_set_error(struct onering *att, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* ONERING_CLIENT_INTERNAL_H */
