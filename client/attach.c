/* SPDX-License-Identifier: MIT */
/*
 * libonering control path: attach, detach, queue open/close, add, and the
 * request/reply plumbing on the control socket. Everything here is a slow
 * path and may make system calls; the consume path is in queue.c.
 *
 * Ordering contract
 * -----------------
 * The lock-free words written here are the subscription table's (see
 * client/sub.h for the whole contract); their readers are the queue threads:
 *   R4  client_sub_slot: store-release of a new page, under att->lock;
 *       pairs with A4 in client_sub_at (queue.c, sources.c).
 *   R5  client_sub_publish: store-release of a subscription's generation
 *       after its fields, under att->lock; pairs with A5 in client_sub_live
 *       (take_records, live_sub, onering_done, onering_timer_arm).
 * Everything else here is under att->lock or before the attachment or
 * queue is handed to the caller (no other thread can see it yet).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "client/records.h"
#include "shm/log.h"

static __thread char attach_err[CLIENT_ERR_MAX];

void client_set_error(struct onering *att, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(att ? att->err : attach_err, CLIENT_ERR_MAX, fmt, ap);
	va_end(ap);
	/* The caller gets it from onering_last_error(); stderr only when asked
	 * for ($ONERING_LOG_LEVEL=6 or more). */
	onering_log(ONERING_LOG_INFO, "%s", att ? att->err : attach_err);
}

const char *onering_last_error(const struct onering *att)
{
	return att ? att->err : attach_err;
}

int onering_attach(const char *name, struct onering **out)
{
	struct onering_attach_options opts = {.name = name};

	return onering_attach_opts(&opts, out);
}

int onering_attach_opts(const struct onering_attach_options *opts, struct onering **out)
{
	const char *name = opts && opts->name ? opts->name : getenv("ONERING_NAME");
	struct onering_msg rep;
	struct onering *att;
	char path[256];
	int r;

	if (!out)
		return -EINVAL;
	if (!name || !*name)
		name = "default";
	r = onering_socket_path(name, opts ? opts->socket_dir : NULL, path, sizeof(path));
	if (r < 0) {
		client_set_error(NULL, "instance name \"%s\" or its socket directory is not valid",
				 name);
		return r;
	}
	att = calloc(1, sizeof(*att));
	if (!att)
		return -ENOMEM;
	r = onering_proto_connect(path, name, opts && opts->trust_uid ? (long)opts->trust_uid : -1,
				  &att->sock, &rep, attach_err, sizeof(attach_err));
	if (r < 0) {
		onering_log(ONERING_LOG_INFO, "%s", attach_err);
		free(att);
		return r;
	}
	pthread_mutex_init(&att->lock, NULL);
	client_recover_init(att, opts);
	att->seq = 1;
	att->client_id = rep.u.hello.client_id;
	att->epoch = rep.u.hello.epoch;
	onering_atomic_store(&att->abi_minor, rep.u.hello.abi_minor, onering_mo_relaxed);
	uint32_t max_subs = rep.u.hello.max_subs ? rep.u.hello.max_subs : 1u << 24;
	att->subs.nr_pages = (max_subs + CLIENT_SUB_PAGE - 1) / CLIENT_SUB_PAGE;
	att->subs.pages = calloc(att->subs.nr_pages, sizeof(*att->subs.pages));
	if (!att->subs.pages) {
		close(att->sock);
		client_recover_fini(att);
		pthread_mutex_destroy(&att->lock);
		free(att);
		return -ENOMEM;
	}
	snprintf(att->name, sizeof(att->name), "%s", name);
	snprintf(att->socket_path, sizeof(att->socket_path), "%s", path);
	attach_err[0] = '\0';
	*out = att;
	return 0;
}

void onering_detach(struct onering *att)
{
	if (!att)
		return;
	while (att->queues)
		onering_queue_close(att->queues);
	close(att->sock);
	client_recover_fini(att);
	pthread_mutex_destroy(&att->lock);
	/* Relaxed: every queue is closed; no other thread reads the table. */
	for (uint32_t i = 0; i < att->subs.nr_pages; i++)
		free(onering_atomic_load(&att->subs.pages[i], onering_mo_relaxed));
	free(att->subs.pages);
	free(att);
}

bool client_broker_alive(struct onering *att)
{
	int sock = client_att_sock(att);
	struct pollfd pfd = {.fd = sock, .events = POLLIN};
	struct onering_msg m;

	if (client_att_dead(att))
		return false;
	if (poll(&pfd, 1, 0) <= 0)
		return true;
	if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) {
		client_att_set_dead(att);
		return false;
	}
	/* Something to read: a hang-up (0 bytes) or the broker's SHUTDOWN. */
	ssize_t n = recv(sock, &m, sizeof(m), MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n == (ssize_t)sizeof(m) && m.type == ONERING_MSG_SHUTDOWN)) {
		client_att_set_dead(att);
		return false;
	}
	return true;
}

/* One request and its reply on att->sock, under att->lock. */
static int request_locked(struct onering *att, struct onering_msg *req, const int *fds,
			  unsigned nfds, struct onering_msg *rep, int *rfds, unsigned max_rfds,
			  unsigned *nrfds, bool *replied)
{
	int r;

	req->seq = ++att->seq;
	r = onering_msg_send(att->sock, req, fds, nfds, 0);
	if (r < 0) {
		if (r == -EPIPE || r == -ECONNRESET) {
			client_att_set_dead(att);
			r = -ECONNRESET;
		}
		return r;
	}
	for (;;) {
		unsigned got = 0;
		r = onering_msg_recv_timeout(att->sock, rep, rfds, max_rfds, &got, 5000);
		if (r == -ECONNRESET)
			client_att_set_dead(att);
		if (r < 0)
			break;
		if (rep->type == ONERING_MSG_SHUTDOWN) {
			client_att_set_dead(att);
			r = -ECONNRESET;
			break;
		}
		if (rep->seq == req->seq && rep->type == (req->type | ONERING_MSG_REPLY)) {
			if (nrfds)
				*nrfds = got;
			else
				for (unsigned i = 0; i < got; i++)
					close(rfds[i]);
			r = rep->status;
			*replied = true;
			break;
		}
		/* A reply to nothing we asked: drop it (and any fds). */
		for (unsigned i = 0; i < got; i++)
			close(rfds[i]);
	}
	return r;
}

/* The broker's reason for a failed request, or why there was no reply. */
static void request_error(struct onering *att, int r, bool replied, const struct onering_msg *rep)
{
	if (r == -ETIMEDOUT)
		client_set_error(att, "broker \"%s\" did not answer within 5 s", att->name);
	else if (r < 0 && replied) {
		/* The broker's reason: the limit or check, and how to change it. */
		char why[ONERING_MSG_SIZE];
		if (onering_msg_reason(rep, why, sizeof(why)))
			client_set_error(att, "broker \"%s\": %s", att->name, why);
	}
}

int client_request(struct onering *att, struct onering_msg *req, const int *fds, unsigned nfds,
		   struct onering_msg *rep, int *rfds, unsigned max_rfds, unsigned *nrfds)
{
	bool replied = false;
	int r;

	pthread_mutex_lock(&att->lock);
	if (client_att_dead(att))
		r = client_recovering(att) ? -EAGAIN : -ECONNRESET;
	else
		r = request_locked(att, req, fds, nfds, rep, rfds, max_rfds, nrfds, &replied);
	pthread_mutex_unlock(&att->lock);
	request_error(att, r, replied, rep);
	return r;
}

int client_request_recovering(struct onering *att, struct onering_msg *req, const int *fds,
			      unsigned nfds, struct onering_msg *rep, int *rfds, unsigned max_rfds,
			      unsigned *nrfds)
{
	bool replied = false;

	pthread_mutex_lock(&att->lock);
	int r = request_locked(att, req, fds, nfds, rep, rfds, max_rfds, nrfds, &replied);
	pthread_mutex_unlock(&att->lock);
	request_error(att, r, replied, rep);
	return r;
}

int client_queue_map(struct onering_queue *q, const struct onering_msg *rep, int ev_fd,
		     int cons_fd, int bells_fd, void *cons_at, size_t cons_at_size, char *err,
		     size_t err_size)
{
	const struct onering_msg_queue_open *o = &rep->u.queue_open;
	int r;

	r = onering_seg_attach(&q->ev_seg, ev_fd, ONERING_SEG_EVENTS, false, err, err_size);
	if (r < 0) {
		close(ev_fd);
		close(cons_fd);
		close(bells_fd);
		return r;
	}
	r = onering_seg_attach_at(&q->cons_seg, cons_fd, ONERING_SEG_CONSUMER, true, cons_at,
				  cons_at_size, err, err_size);
	if (r < 0) {
		close(cons_fd);
		close(bells_fd);
		return r;
	}
	/* The submission bells (shm/abi.h, ABI 1.7): our bit in our user's page. */
	r = onering_seg_attach(&q->bells_seg, bells_fd, ONERING_SEG_BELLS, true, err, err_size);
	if (r < 0) {
		close(bells_fd);
		return r;
	}
	if (q->bells_seg.size < ONERING_BELLS_SEG_SIZE || o->bell >= ONERING_BELL_BITS) {
		snprintf(err, err_size, "the queue's submission bell is not valid");
		return -EPROTO;
	}
	q->bell_word = (ONERING_ATOMIC(uint64_t) *)((char *)q->bells_seg.base +
						    ONERING_BELLS_OFFSET) + o->bell / 64;
	q->bell_mask = 1ull << (o->bell % 64);
	/* (1.9) A broker that keeps the summary gives our bit a word above it. */
	q->bell_summary = NULL;
	q->bell_summary_mask = 0;
	uint32_t minor = onering_atomic_load(&q->att->abi_minor, onering_mo_relaxed);
	if (minor >= ONERING_BELL_SUMMARY_MINOR) {
		if (o->bell / 64 == ONERING_BELL_SUMMARY_WORD) {
			snprintf(err, err_size, "the broker (ABI 1.%u) gave the queue bell %u, in "
				 "its bells' summary word", (unsigned)minor, (unsigned)o->bell);
			return -EPROTO;
		}
		q->bell_summary = q->bell_word - o->bell / 64 + ONERING_BELL_SUMMARY_WORD;
		q->bell_summary_mask = 1ull << (o->bell / 64);
	}
	char *ev = q->ev_seg.base, *cons = q->cons_seg.base;
	const struct onering_events_ctl *ectl =
		(const struct onering_events_ctl *)(ev + ONERING_EVENTS_CTL_OFFSET);
	uint32_t cap = ectl->ev_capacity, sq = ectl->sq_capacity;
	if (cap != o->ev_capacity || sq != o->sq_capacity ||
	    q->ev_seg.size < onering_events_seg_size(cap) ||
	    q->cons_seg.size < onering_consumer_seg_size(sq)) {
		snprintf(err, err_size, "queue segments do not match the broker's reply");
		return -EPROTO;
	}
	struct onering_consumer_ctl *cctl =
		(struct onering_consumer_ctl *)(cons + ONERING_CONSUMER_CTL_OFFSET);
	struct onering_sq_ctl *sqctl = (struct onering_sq_ctl *)(cons + ONERING_SQ_CTL_OFFSET);
	q->db = (struct onering_doorbell *)(cons + ONERING_DOORBELL_OFFSET);
	q->poller_flags = &ectl->poller_flags;
	if (onering_ring_consumer_init(&q->evc, &ectl->ev_tail_pos, &cctl->ev_head_pos,
				       ev + ONERING_EVENTS_SLOTS_OFFSET, cap, o->start_pos) < 0 ||
	    onering_ring_producer_init(&q->sqp, &sqctl->sq_tail_pos, &ectl->sq_head_pos,
				       cons + ONERING_SQ_SLOTS_OFFSET, sq, o->start_pos) < 0) {
		snprintf(err, err_size, "queue geometry from the broker is not valid");
		return -EPROTO;
	}
	/* The rings of the priority levels above 0, if any (client/prio.h). */
	q->nr_levels = o->levels ? o->levels : 1;
	client_queue_more_update(q);
	q->held_ring = &q->evc;
	r = client_prio_map(q->lvc, (const unsigned char *)ev, q->ev_seg.size, ectl, cctl,
			    q->nr_levels, o->start_pos, err, err_size);
	if (r < 0)
		return r;
	/* The packet area, if any: within the mapping, one stride per slot. */
	uint64_t pkt_off = ectl->packet_area_offset, pkt_size = ectl->packet_area_size;
	if (pkt_size) {
		if (pkt_off < onering_events_seg_size(cap) ||
		    !client_span_valid(pkt_off, pkt_size, q->ev_seg.size) || pkt_size % cap ||
		    pkt_size / cap != o->packet_snap) {
			snprintf(err, err_size, "the queue's packet area is not valid");
			return -EPROTO;
		}
		q->pkt_area = (const unsigned char *)ev + pkt_off;
		q->pkt_size = pkt_size;
	}
	/* The watched words, if any: in the consumer segment, after the slots. */
	if (o->words) {
		if (ectl->nr_words != o->words || ectl->words_offset != onering_words_offset(sq) ||
		    q->cons_seg.size < ectl->words_offset + 4ull * o->words) {
			snprintf(err, err_size, "the queue's word area is not valid");
			return -EPROTO;
		}
		q->words = (ONERING_ATOMIC(uint32_t) *)(cons + ectl->words_offset);
		q->nr_words = o->words;
		if (!q->word_gen) { /* a queue moved to a restarted broker keeps its own */
			q->word_gen = calloc(o->words, sizeof(*q->word_gen));
			q->word_last = calloc(o->words, sizeof(*q->word_last));
			q->word_cookie = calloc(o->words, sizeof(*q->word_cookie));
			if (!q->word_gen || !q->word_last || !q->word_cookie)
				return -ENOMEM;
		}
	}
	/* (1.8) The stream area, if asked for and granted. */
	return client_stream_map(q, o, err, err_size);
}

ONERING_STATIC_ASSERT(ONERING_IDLE_BUSY == 1 && ONERING_IDLE_OVERPROVISIONED == ONERING_IDLE_MAX,
		      "enum onering_idle has the numbers of onering_idle_name()");

/* $ONERING_IDLE: an idle strategy's name; unset, empty or wrong: backoff. */
static uint32_t idle_from_env(void)
{
	const char *env = getenv("ONERING_IDLE");
	int idle;

	if (!env || !env[0])
		return ONERING_IDLE_BACKOFF;
	idle = onering_idle_parse(env);
	if (idle < 0) {
		onering_log(ONERING_LOG_WARN, "ONERING_IDLE=%s is not an idle strategy: using "
			    "backoff (set it to busy, backoff or overprovisioned)", env);
		return ONERING_IDLE_BACKOFF;
	}
	return (uint32_t)idle;
}

int onering_queue_open(struct onering *att, const struct onering_queue_options *opts,
		       struct onering_queue **out)
{
	struct onering_queue_options o = opts ? *opts : (struct onering_queue_options){0};
	struct onering_msg req, rep;
	struct onering_queue *q;
	int fds[CLIENT_QUEUE_OPEN_FDS];
	unsigned nfds = 0;
	int r;

	if (!att || !out)
		return -EINVAL;
	if ((o.capacity && !onering_ring_capacity_valid(o.capacity)) ||
	    (o.sq_capacity && !onering_ring_capacity_valid(o.sq_capacity)) ||
	    (o.flags & ~(ONERING_QUEUE_NODE | ONERING_QUEUE_ACK)) || o.node > INT32_MAX ||
	    (o.group && o.group[0] && !onering_name_valid(o.group)) ||
	    o.packet_snap > ONERING_PKT_STRIDE_MAX || o.words > ONERING_WORDS_MAX ||
	    o.idle > ONERING_IDLE_OVERPROVISIONED || o.levels > ONERING_PRIO_LEVELS ||
	    (o.stream_tx && !o.stream_rx))
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->att = att;
	q->ev_seg.fd = q->cons_seg.fd = q->bells_seg.fd = -1;
	q->poll_fd = -1;
	q->retry_fd = -1;
	for (unsigned i = 0; i < CLIENT_QUEUE_OPEN_FDS; i++)
		q->reopen.fds[i] = -1;
	q->collect_every = o.collect_every ? o.collect_every : 64;
	q->ack = (o.flags & ONERING_QUEUE_ACK) != 0;
	q->spin_ns = o.spin_ns ? o.spin_ns : 50 * 1000;
	q->idle_mode = o.idle ? o.idle : idle_from_env();

	onering_msg_init(&req, ONERING_MSG_QUEUE_OPEN, 0);
	req.u.queue_open.ev_capacity = o.capacity;
	req.u.queue_open.sq_capacity = o.sq_capacity;
	req.u.queue_open.node = (o.flags & ONERING_QUEUE_NODE) ? (int32_t)o.node : -1;
	req.u.queue_open.cpu = sched_getcpu();
	if (o.group)
		snprintf(req.u.queue_open.group, sizeof(req.u.queue_open.group), "%s", o.group);
	req.u.queue_open.packet_snap = o.packet_snap;
	req.u.queue_open.words = o.words;
	req.u.queue_open.levels = o.levels;
	req.u.queue_open.stream_rx = o.stream_rx;
	req.u.queue_open.stream_tx = o.stream_rx ? (o.stream_tx ? o.stream_tx : o.stream_rx) : 0;
	req.u.queue_open.stream_buf = o.stream_rx ? (o.stream_buf ? o.stream_buf : 16384) : 0;
	q->open_req = req.u.queue_open;
	q->att_state = client_att_state(att);
	rep.status = 0;
	/* The events and consumer segments, the poller's kick, the bell, the
	 * bells segment. */
	r = client_request(att, &req, NULL, 0, &rep, fds, CLIENT_QUEUE_OPEN_FDS, &nfds);
	if (r == 0 && nfds != CLIENT_QUEUE_OPEN_FDS) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		r = -EPROTO;
	}
	if (r < 0) {
		char why[ONERING_MSG_SIZE];
		if (r != -ETIMEDOUT)
			client_set_error(att, "opening a queue on \"%s\": %s", att->name,
					 r == rep.status && onering_msg_reason(&rep, why, sizeof(why))
						 ? why
						 : onering_strerror(r));
		free(q);
		return r;
	}
	q->id = rep.u.queue_open.queue_id;
	q->node = rep.u.queue_open.node;
	q->group_id = rep.u.queue_open.group_id;
	pthread_mutex_lock(&att->lock);
	q->group_hid = q->group_id ? client_group_note(att, q->open_req.group, 0, q->group_id) : 0;
	pthread_mutex_unlock(&att->lock);
	client_group_learn(att, q->group_hid);
	q->kick_fd = fds[2];
	q->bell_fd = fds[3];
	r = client_queue_map(q, &rep, fds[0], fds[1], fds[4], NULL, 0, att->err, sizeof(att->err));
	if (r < 0) {
		close(q->kick_fd);
		close(q->bell_fd);
		onering_log(ONERING_LOG_ERR, "%s", att->err);
		onering_seg_destroy(&q->ev_seg);
		onering_seg_destroy(&q->cons_seg);
		onering_seg_destroy(&q->bells_seg);
		free(q->word_gen);
		free(q->word_last);
		free(q->word_cookie);
		free(q->tx_free);
		free(q->tx_state);
		free(q);
		return r;
	}
	pthread_mutex_lock(&att->lock);
	q->next = att->queues;
	att->queues = q;
	pthread_mutex_unlock(&att->lock);
	*out = q;
	return 0;
}

int onering_queue_node(const struct onering_queue *q)
{
	return q->node;
}

uint32_t onering_queue_group(const struct onering_queue *q)
{
	return q->group_hid;
}

/* One GROUP request for name: created if missing unless flags say
 * ONERING_GROUP_NO_CREATE; the id is learned for onering_post(). */
static int group_request(struct onering *att, const char *name, uint32_t flags, uint32_t *id)
{
	struct onering_msg req, rep;

	if (!att || !name || !id || !onering_name_valid(name))
		return -EINVAL;
	onering_msg_init(&req, ONERING_MSG_GROUP, 0);
	snprintf(req.u.group.name, sizeof(req.u.group.name), "%s", name);
	req.u.group.flags = flags;
	int r = client_request(att, &req, NULL, 0, &rep, NULL, 0, NULL);
	if (r < 0)
		return r;
	pthread_mutex_lock(&att->lock);
	*id = client_group_note(att, name, flags, rep.u.group.group_id);
	pthread_mutex_unlock(&att->lock);
	client_group_learn(att, *id);
	return 0;
}

int onering_group_id(struct onering *att, const char *name, uint32_t *id)
{
	return group_request(att, name, 0, id);
}

int onering_group_find(struct onering *att, const char *name, uint32_t *id)
{
	return group_request(att, name, ONERING_GROUP_NO_CREATE, id);
}

void onering_queue_close(struct onering_queue *q)
{
	struct onering *att;
	struct onering_msg req, rep;

	if (!q)
		return;
	att = q->att;
	pthread_mutex_lock(&att->lock);
	for (struct onering_queue **pp = &att->queues; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	pthread_mutex_unlock(&att->lock);
	onering_msg_init(&req, ONERING_MSG_QUEUE_CLOSE, 0);
	req.u.queue.queue_id = q->id;
	/* A gone broker, or one that replaced it and has this queue under
	 * another id until the queue's thread moves it: nothing to do (the
	 * broker drops a client's queues when it detaches). */
	pthread_mutex_lock(&att->rec.lock); /* not while a recovery reopens it */
	if (!client_queue_stale(q))
		client_request(att, &req, NULL, 0, &rep, NULL, 0, NULL);
	else if (q->reopen.fds[0] >= 0) { /* reopened, not moved yet */
		req.u.queue.queue_id = q->reopen.rep.u.queue_open.queue_id;
		client_request(att, &req, NULL, 0, &rep, NULL, 0, NULL);
	}
	pthread_mutex_unlock(&att->rec.lock);
	onering_seg_destroy(&q->ev_seg);
	onering_seg_destroy(&q->cons_seg);
	onering_seg_destroy(&q->bells_seg);
	close(q->kick_fd);
	close(q->bell_fd);
	if (q->poll_fd >= 0)
		close(q->poll_fd);
	if (q->retry_fd >= 0)
		close(q->retry_fd);
	for (unsigned i = 0; i < CLIENT_QUEUE_OPEN_FDS; i++)
		if (q->reopen.fds[i] >= 0)
			close(q->reopen.fds[i]);
	free(q->level_out.ids);
	free(q->word_gen);
	free(q->word_last);
	free(q->word_cookie);
	free(q->tx_free);
	free(q->tx_state);
	free(q->redeliver.evs);
	free(q);
}

#define ADD_EVENTS_ALLOWED (POLLIN | POLLOUT | POLLRDHUP | POLLPRI)

int client_sub_add(struct onering_queue *q, const struct onering_msg_sub_add *a, int fd,
		   struct onering_sub *sub)
{
	struct onering_msg req, rep;
	int r;

	struct onering *att = q->att;
	uint32_t hid, hgen;

	/* A queue not yet moved to a restarted broker: its id there is not
	 * q->id yet. */
	if (client_queue_stale(q))
		return client_recovering(att) ? -EAGAIN : -ECONNRESET;
	onering_msg_init(&req, ONERING_MSG_SUB_ADD, 0);
	req.u.sub_add = *a;
	req.u.sub_add.queue_id = q->id;
	req.u.sub_add.group_id = client_group_current(att, a->group_id);
	r = client_request(att, &req, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0, &rep, NULL, 0, NULL);
	if (r < 0)
		return r;
	uint32_t id = rep.u.sub_add.sub_id, gen = rep.u.sub_add.sub_gen;
	struct client_sub *s = NULL;
	pthread_mutex_lock(&att->lock);
	if (client_sub_handle(att, id, gen, &hid, &hgen))
		s = client_sub_slot(&att->subs, hid); /* R4 (sub.h) */
	if (s) {
		s->mode = (uint8_t)a->mode;
		s->level_out = false;
		s->fd = fd;
		s->events = a->events;
		s->cookie = a->cookie;
		s->owner = q;
		s->group_hid = a->group_id;
		s->home_node = a->home_node;
		s->kind = (uint16_t)a->kind;
		s->t_expiry = 0;
		s->last_gen = hgen;
		/* Relaxed: read by requests only (sub.h). */
		onering_atomic_store(&s->bid, id, onering_mo_relaxed);
		onering_atomic_store(&s->bgen, gen, onering_mo_relaxed);
		/* R5 (sub.h): a queue thread that sees gen (A5) sees the fields. */
		client_sub_publish(s, hgen);
	}
	pthread_mutex_unlock(&att->lock);
	if (!s)
		return -ENOMEM; /* the broker's side goes when the queue closes */
	sub->id = hid;
	sub->gen = hgen;
	return 0;
}

int onering_add_opts(struct onering_queue *q, const struct onering_add_options *o,
		     struct onering_sub *sub)
{
	struct onering_msg_sub_add a;

	if (!q || !o || !sub || o->mode > ONERING_DISPATCH ||
	    (o->events & ~(uint32_t)ADD_EVENTS_ALLOWED) || (o->flags & ~ONERING_ADD_HOME) ||
	    ((o->flags & ONERING_ADD_HOME) && o->home_node < 0) ||
	    o->priority >= ONERING_PRIO_LEVELS ||
	    !(o->kind == 0 || o->kind == ONERING_EV_FD || o->kind == ONERING_EV_SIGNAL ||
	      o->kind == ONERING_EV_FILE || o->kind == ONERING_EV_AIO ||
	      o->kind == ONERING_EV_PROCESS))
		return -EINVAL;
	if (o->fd < 0 || fcntl(o->fd, F_GETFD) < 0)
		return -EBADF;
	memset(&a, 0, sizeof(a));
	a.events = o->events;
	a.mode = o->mode;
	a.cookie = o->cookie;
	a.group_id = o->group;
	a.home_node = (o->flags & ONERING_ADD_HOME) ? o->home_node : -1;
	a.kind = o->kind;
	a.priority = o->priority;
	return client_sub_add(q, &a, o->fd, sub);
}

int onering_add(struct onering_queue *q, int fd, uint32_t events, unsigned mode,
		uint64_t cookie, struct onering_sub *sub)
{
	struct onering_add_options o = {.fd = fd, .events = events, .mode = mode, .cookie = cookie};

	return onering_add_opts(q, &o, sub);
}

const char *onering_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -ENOENT:
		return "no such broker, queue or subscription";
	case -EACCES:
		return "the broker refused this user (start it with --allow-uid)";
	case -EPROTO:
		return "protocol or shared-memory ABI mismatch, or a corrupt ring";
	case -ENXIO:
		return "the socket belongs to another broker instance";
	case -ECONNRESET:
		return "the broker is gone (died or shut down)";
	case -EAGAIN:
		return "submission ring full; consume and retry";
	case -ETIMEDOUT:
		return "timed out";
	case -EINVAL:
		return "invalid argument";
	case -EBADF:
		return "not an open file descriptor";
	case -ENOSPC:
		return "the broker's subscription table is full";
	case -ENOMEM:
		return "out of memory";
	case -EINTR:
		return "interrupted by a signal";
	case -EUSERS:
		return "the broker has its maximum number of clients";
	case -EDQUOT:
		return "a per-client quota of the broker is used up (onering_last_error names it)";
	case -EPERM:
		return "not permitted: a group's owner or the broker's uid (see onering_last_error)";
	case -EMFILE:
		return "the broker is at a limit of queues or fds";
	default:
		return err < 0 ? strerror(-err) : "not an error code";
	}
}
