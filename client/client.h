/* SPDX-License-Identifier: MIT */
/* libonering internals (private to client/). */
#ifndef ONERING_CLIENT_INTERNAL_H
#define ONERING_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "client/groups.h"
#include "client/held.h"
#include "client/level.h"
#include "client/onering.h"
#include "client/prio.h"
#include "client/sub.h"
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

	/* Subscriptions by id, shared by every queue of the attachment (a
	 * record of a group may reach any of them); client/sub.h. */
	struct client_sub_table subs;

	/* Group ids the attachment has learned, the ids onering_post()
	 * accepts (client/groups.h): added under lock, read by any queue's
	 * thread without it. */
	struct client_group_set groups;
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
	int bell_fd; /* this queue's eventfd, the broker's wake (shm/doorbell.h) */
	int poll_fd; /* onering_queue_fd(): epoll of the bell and the socket, or -1 */
	bool armed;  /* onering_queue_arm() announced sleep; the next call takes it back */
	uint32_t kicked_flags; /* poller_flags when we last kicked (one kick per sleep) */
	bool dead; /* saw the broker's SHUTDOWN record */
	bool idle; /* ran dry since its last record (doorbell idle_ns is set) */
	bool ack;  /* ONERING_QUEUE_ACK */
	uint32_t nr_levels; /* priority levels: 1 = evc only; else lvc[] too (client/prio.h) */

	uint32_t group_id; /* the group it is a member of, 0: private */
	const unsigned char *pkt_area; /* NIC packet bytes, or NULL */
	uint64_t pkt_size;
	/* The last batch, not yet released (packets, or a group member's
	 * records): [held_ring->head_pos, + held.nr); client/held.h. */
	struct onering_ring_consumer *held_ring; /* the ring the held batch is in: evc, or
						  * a level's (beside held.nr: one line) */
	struct client_held held;
	/* The rings of priority levels 1..nr_levels-1 (lvc[k - 1] for level k). */
	struct onering_ring_consumer lvc[ONERING_PRIO_LEVELS - 1];
	ONERING_ATOMIC(uint32_t) *words; /* watched words (client-written), or NULL */
	uint32_t nr_words;
	uint32_t *word_gen; /* current watch generation per word, 0: not watched */
	uint32_t word_seq;  /* last generation handed out */

	/* LEVEL bookkeeping (client/level.h): ids delivered and not collected,
	 * and the still-ready sources a collection found, returned again. */
	struct client_level_set level_out;
	struct client_redeliver redeliver;

	uint32_t collect_every;
	uint32_t since_collect;
	uint64_t spin_ns;
	uint32_t idle_mode; /* enum onering_idle, resolved at open ($ONERING_IDLE) */
};

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
