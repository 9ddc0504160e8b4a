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
#include "client/recover.h"
#include "client/sub.h"
#include "shm/doorbell.h"
#include "shm/proto.h"
#include "shm/ring.h"
#include "shm/segment.h"

#define CLIENT_ERR_MAX 320

/* One group the attachment knows by name (client/recover.c): the id the
 * application holds (hid, the first broker's) and the current broker's. */
struct client_group_name {
	ONERING_ATOMIC(uint32_t) hid; /* 0: empty; published last (R12) */
	ONERING_ATOMIC(uint32_t) cur; /* 0: the current broker does not have it */
	uint32_t flags;               /* ONERING_GROUP_NO_CREATE: look it up only */
	char name[ONERING_NAME_MAX];
};

struct onering {
	int sock;
	pthread_mutex_t lock; /* one request/reply on the socket at a time */
	uint32_t seq;
	uint32_t client_id;
	uint64_t epoch;
	/* The broker's ABI minor (HELLO reply; recovery writes it under lock, a
	 * queue open reads it without): 1.9 keeps the bells' summary. */
	ONERING_ATOMIC(uint32_t) abi_minor;
	/* incarnation << 1 | dead: the broker this attachment talks to, and
	 * whether it hung up or said SHUTDOWN (client/recover.c, R13/A13). A
	 * queue whose q->att_state differs is stale or its broker is gone. */
	ONERING_ATOMIC(uint32_t) state;
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

	/* Recovery after a broker restart (client/recover.c). */
	struct client_recovery rec;
	struct client_group_name gnames[CLIENT_GROUPS]; /* by name; nr_gnames used */
	ONERING_ATOMIC(uint32_t) nr_gnames;
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
	struct onering_seg bells_seg;     /* the submission bells of our user on its poller */
	ONERING_ATOMIC(uint64_t) *bell_word; /* our bell's word there (shm/abi.h B1) */
	uint64_t bell_mask;                  /* our bell's bit in it */
	ONERING_ATOMIC(uint64_t) *bell_summary; /* (1.9) word 0 there, or NULL */
	uint64_t bell_summary_mask;             /* our word's bit in it */
	int bell_fd; /* this queue's eventfd, the broker's wake (shm/doorbell.h) */
	int poll_fd; /* onering_queue_fd(): epoll of the bell and the socket, or -1 */
	bool armed;  /* onering_queue_arm() announced sleep; the next call takes it back */
	uint32_t kicked_flags; /* poller_flags when we last kicked (one kick per sleep) */
	bool dead; /* saw the broker's SHUTDOWN record */
	/* onering_poll()'s one look besides the ring: set (true) wherever one of
	 * the things below begins - priority levels, records to re-deliver,
	 * LEVEL sources outstanding, armed, dead - and recomputed from them by
	 * the poll that found work (client_queue_more_update). True when
	 * unsure: it only sends a poll down the full path. */
	bool more;
	uint32_t att_state; /* att->state when this queue's segments were mapped */
	bool idle; /* ran dry since its last record (doorbell idle_ns is set) */
	bool ack;  /* ONERING_QUEUE_ACK */
	uint32_t nr_levels; /* priority levels: 1 = evc only; else lvc[] too (client/prio.h) */

	uint32_t group_id; /* the group it is a member of (the current broker's id), 0: private */
	uint32_t group_hid; /* the same group as the application knows it */
	const unsigned char *pkt_area; /* NIC packet bytes, or NULL */
	uint64_t pkt_size;
	/* The last batch, not yet released (packets, or a group member's
	 * records): [held_ring->head_pos, + held.nr); client/held.h. */
	/* onering_peek(): the run it showed, not yet advanced over: peek_n
	 * records at the head of peek_ring (NULL: of the re-delivery queue). */
	struct onering_ring_consumer *peek_ring;
	uint32_t peek_n;
	struct onering_ring_consumer *held_ring; /* the ring the held batch is in: evc, or
						  * a level's (beside held.nr: one line) */
	struct client_held held;
	/* The rings of priority levels 1..nr_levels-1 (lvc[k - 1] for level k). */
	struct onering_ring_consumer lvc[ONERING_PRIO_LEVELS - 1];
	ONERING_ATOMIC(uint32_t) *words; /* watched words (client-written), or NULL */
	uint32_t nr_words;
	uint32_t *word_gen; /* current watch generation per word, 0: not watched */
	uint32_t word_seq;  /* last generation handed out */
	uint32_t *word_last;   /* the last value reported per watched word (recovery) */
	uint64_t *word_cookie; /* the watch's cookie per word (recovery) */

	/* (1.8) The stream area (client/stream.c): receive buffers, then
	 * transmit buffers, stream_buf bytes each; NULL: none. The transmit
	 * buffers are the library's to hand out: a stack of free ones and a
	 * state per buffer (TX_*). */
	unsigned char *stream_base;
	uint64_t stream_off; /* its offset in the consumer segment */
	uint32_t stream_rx, stream_tx, stream_buf;
	uint32_t *tx_free;
	uint32_t nr_tx_free;
	uint8_t *tx_state;

	/* LEVEL bookkeeping (client/level.h): ids delivered and not collected,
	 * and the still-ready sources a collection found, returned again. */
	struct client_level_set level_out;
	struct client_redeliver redeliver;

	uint32_t collect_every;
	uint32_t since_collect;
	uint64_t spin_ns;
	uint32_t idle_mode; /* enum onering_idle, resolved at open ($ONERING_IDLE) */

	/* Recovery (client/recover.c): how to open it again, the broker-id map
	 * of the incarnation its ring belongs to (NULL: ids are handles), and
	 * what a recovering thread prepared for this queue's thread. */
	struct onering_msg_queue_open open_req;
	const struct client_bmap *bmap;
	struct client_reopen reopen;
	int retry_fd; /* onering_queue_fd() while the broker is gone: a timerfd, or -1 */
};

/*
 * The attachment's state word: incarnation << 1 | CLIENT_DEAD.
 *   R13  client_att_revive (recover.c): store-release of the next
 *        incarnation, after the recovering thread prepared every queue's
 *        reopen, the subscriptions' new ids and the bmap. Synchronises
 *        with A13.
 *   A13  client_att_state: load-acquire. A queue thread that sees a new
 *        incarnation sees what R13 published (then takes rec.lock anyway
 *        for the swap itself).
 *   The dead bit is set with a relaxed CAS (client_att_set_dead): it
 *   publishes nothing; readers only stop using the broker.
 */
#define CLIENT_DEAD 1u

static inline uint32_t client_att_state(const struct onering *att)
{
	return onering_atomic_load(&att->state, onering_mo_acquire); /* A13 */
}

static inline bool client_att_dead(const struct onering *att)
{
	return (client_att_state(att) & CLIENT_DEAD) != 0;
}

static inline void client_att_set_dead(struct onering *att)
{
	uint32_t s = onering_atomic_load(&att->state, onering_mo_relaxed);

	/* Relaxed: the bit publishes nothing (see above). */
	while (!(s & CLIENT_DEAD) && !onering_atomic_cas(&att->state, &s, s | CLIENT_DEAD,
							  onering_mo_relaxed, onering_mo_relaxed))
		;
}

/* The control socket, read by threads that do not hold att->lock (a sleep's
 * ppoll, the liveness check). Recovery replaces it under att->lock with a
 * relaxed store (client_att_set_sock): an fd number, used as a system call
 * argument only, nothing it points to needs ordering. */
static inline int client_att_sock(const struct onering *att)
{
	return __atomic_load_n(&att->sock, __ATOMIC_RELAXED);
}

static inline void client_att_set_sock(struct onering *att, int sock)
{
	__atomic_store_n(&att->sock, sock, __ATOMIC_RELAXED);
}

/* Is q's broker gone, or q not yet moved to the broker that replaced it? */
static inline bool client_queue_stale(const struct onering_queue *q)
{
	return q->dead || client_att_state(q->att) != q->att_state;
}

/* attach.c: add a subscription described by a (queue_id filled here) with
 * fd (or -1: a timer) and record it in the attachment's table. */
int client_sub_add(struct onering_queue *q, const struct onering_msg_sub_add *a, int fd,
		   struct onering_sub *sub);
/* queue.c: remember that group id exists (takes att->lock). */
void client_group_learn(struct onering *att, uint32_t id);
/* queue.c: one request on the submission ring (kicks a sleeping poller). */
int client_submit(struct onering_queue *q, const struct onering_request *req);

/* attach.c: one request and its reply; fds of the reply in rfds. While the
 * broker is gone: -EAGAIN if the attachment is recovering, else -ECONNRESET. */
int client_request(struct onering *att, struct onering_msg *req, const int *fds, unsigned nfds,
		   struct onering_msg *rep, int *rfds, unsigned max_rfds, unsigned *nrfds);
/* attach.c: the same, made by the recovering thread to a broker the
 * attachment does not count as alive yet. */
int client_request_recovering(struct onering *att, struct onering_msg *req, const int *fds,
			      unsigned nfds, struct onering_msg *rep, int *rfds, unsigned max_rfds,
			      unsigned *nrfds);
/* attach.c: map the segments of a QUEUE_OPEN reply into q (ev_fd, cons_fd,
 * bells_fd are taken over, closed on failure); the consumer segment at
 * cons_at if it is cons_at_size bytes (onering_seg_attach_at), else
 * anywhere. */
/* queue.c's q->more, recomputed from what it summarises. */
static inline void client_queue_more_update(struct onering_queue *q)
{
	q->more = q->nr_levels > 1 || q->redeliver.nr || q->level_out.nr || q->armed || q->dead;
}

int client_queue_map(struct onering_queue *q, const struct onering_msg *rep, int ev_fd,
		     int cons_fd, int bells_fd, void *cons_at, size_t cons_at_size, char *err,
		     size_t err_size);

/* stream.c: the stream area of a QUEUE_OPEN reply o (none if it has
 * none), checked against the mapped consumer segment. 0, -EPROTO, -ENOMEM. */
int client_stream_map(struct onering_queue *q, const struct onering_msg_queue_open *o, char *err,
		      size_t err_size);

/* sources.c: a TIMER_ARM request for s; a WORD_WATCH request for word idx
 * of q with generation gen (0: stop) from baseline. */
int client_timer_request(struct onering_queue *q, const struct client_sub *s, uint64_t value_ns,
			 uint64_t period_ns, unsigned flags);
int client_word_request(struct onering_queue *q, uint32_t idx, uint32_t gen, uint64_t cookie,
			uint32_t baseline);

/* recover.c */
void client_recover_init(struct onering *att, const struct onering_attach_options *o);
void client_recover_fini(struct onering *att);
/* Remember group name as the broker's id cur (its handle: the id the
 * application got first); returns the handle. Context: under att->lock. */
uint32_t client_group_note(struct onering *att, const char *name, uint32_t flags, uint32_t cur);
/* The current broker's id of group handle hid (hid itself before any
 * restart, or for a group known by id only). Any thread, no system call. */
uint32_t client_group_current(const struct onering *att, uint32_t hid);
/* A handle for a new subscription (bid, bgen): itself before any restart.
 * Context: under att->lock. Returns false: no free handle. */
bool client_sub_handle(struct onering *att, uint32_t bid, uint32_t bgen, uint32_t *hid,
		       uint32_t *hgen);
/* The queue's broker is gone: try to move it to a broker that replaced it.
 * @return 1 moved (a RESTARTED record waits in q's re-delivery queue); 0 not
 *   yet (call again: client_recover_due() says when); -ECONNRESET recovery
 *   is off, gave up, or the new broker refused the queue. */
int client_queue_recover(struct onering_queue *q);
/* CLOCK_MONOTONIC ns of the next connect attempt (0: now). */
uint64_t client_recover_due(struct onering *att);
/* onering_queue_fd() while the broker is gone: its timerfd fires when the
 * next connect attempt is due (the hang-up of the dead socket no longer
 * wakes it). @return 0 or -errno. */
int client_retry_arm(struct onering_queue *q);
/* Is a gone broker being waited for (requests say -EAGAIN, not -ECONNRESET)? */
bool client_recovering(const struct onering *att);
/* Is the broker still there? Non-blocking; marks the attachment dead. */
bool client_broker_alive(struct onering *att);
void client_set_error(struct onering *att, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* ONERING_CLIENT_INTERNAL_H */
