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
#define CLIENT_GROUPS 256u /* group ids an attachment remembers (a power of two) */
#define CLIENT_HELD_MAX 256u /* ack mode, group member: records per batch */

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

	/* Subscriptions by id, shared by every queue of the attachment (a
	 * record of a group may reach any of them): pages of CLIENT_SUB_PAGE
	 * entries, allocated under lock, never freed before detach, so other
	 * queues' threads read them without a lock. */
	ONERING_ATOMIC(struct client_sub *) *sub_pages;
	uint32_t nr_sub_pages;

	/* Group ids the attachment has learned (onering_group_id(), the group
	 * of a queue it opened), the ids onering_post() accepts: a set with
	 * open addressing, 0 an empty slot. Added under lock (release), read
	 * by any queue's thread without it (acquire). */
	ONERING_ATOMIC(uint32_t) groups[CLIENT_GROUPS];
	ONERING_ATOMIC(uint32_t) groups_full; /* learned more than CLIENT_GROUPS: any id passes */
};

#define CLIENT_SUB_PAGE 1024u

/* What the client remembers of one of its subscriptions. */
struct client_sub {
	ONERING_ATOMIC(uint32_t) gen; /* 0: not live; written by add and del */
	ONERING_ATOMIC(uint32_t) inflight; /* ack mode: records taken, not done */
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
	uint32_t kicked_flags; /* poller_flags when we last kicked (one kick per sleep) */
	bool dead; /* saw the broker's SHUTDOWN record */
	bool idle; /* ran dry since its last record (doorbell idle_ns is set) */
	bool ack;  /* ONERING_QUEUE_ACK */

	uint32_t group_id; /* the group it is a member of, 0: private */
	const unsigned char *pkt_area; /* NIC packet bytes, or NULL */
	uint64_t pkt_size;
	uint32_t held; /* records of the last batch not yet released (packets, or a
			* group member's batch): [evc.head_pos, + held) */
	/* Ack mode, group member: held_done[i] says record head + i needs no
	 * more onering_done(); the done prefix is released at once. */
	uint8_t held_done[CLIENT_HELD_MAX];
	ONERING_ATOMIC(uint32_t) *words; /* watched words (client-written), or NULL */
	uint32_t nr_words;
	uint32_t *word_gen; /* current watch generation per word, 0: not watched */
	uint32_t word_seq;  /* last generation handed out */

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

/* The subscription entry for id, or NULL if no page holds it. */
static inline struct client_sub *client_sub_at(struct onering *att, uint32_t id)
{
	if (id / CLIENT_SUB_PAGE >= att->nr_sub_pages)
		return NULL;
	struct client_sub *page = onering_atomic_load(&att->sub_pages[id / CLIENT_SUB_PAGE],
						       onering_mo_acquire);
	return page ? &page[id % CLIENT_SUB_PAGE] : NULL;
}

/* attach.c: add a subscription described by a (queue_id filled here) with
 * fd (or -1: a timer) and record it in the attachment's table. */
int client_sub_add(struct onering_queue *q, const struct onering_msg_sub_add *a, int fd,
		   struct onering_sub *sub);
/* queue.c: remember that group id exists (takes att->lock). */
void client_group_learn(struct onering *att, uint32_t id);
/* queue.c: one request on the submission ring (kicks a sleeping poller). */
int client_submit(struct onering_queue *q, const struct onering_request *req);

/* attach.c: one request and its reply; fds of the reply in rfds. */
int client_request(struct onering *att, struct onering_msg *req, const int *fds, unsigned nfds,
		   struct onering_msg *rep, int *rfds, unsigned max_rfds, unsigned *nrfds);
/* Is the broker still there? Non-blocking; marks att->dead. */
bool client_broker_alive(struct onering *att);
void client_set_error(struct onering *att, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* ONERING_CLIENT_INTERNAL_H */
