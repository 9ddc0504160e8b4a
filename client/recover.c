/* SPDX-License-Identifier: MIT */
/*
 * libonering: recovery after a broker restart.
 *
 * When the broker dies (or shuts down) the attachment is marked dead
 * (client.h's state word). The first queue thread that finds its ring
 * drained and the broker gone (poll_records, onering_wait, onering_queue_arm)
 * tries, at most once per back-off step (1 ms doubling to rec.step_max_ns),
 * to connect to a broker of the same name. When one answers, that thread -
 * holding rec.lock, so one at a time - moves the attachment to it:
 *
 *   1. the new socket replaces the dead one;
 *   2. every group the attachment knows by name is looked up (or created,
 *      as it was) again: group ids the application holds are translated to
 *      the new broker's from then on (client_group_current);
 *   3. every queue is opened again with the request that opened it (same
 *      options, same group); the reply and its fds wait in q->reopen;
 *   4. every live subscription is added again through its queue's new id,
 *      with the fd the library still holds; the new ids go into a new bmap
 *      (recover.h) and into the entries' bid/bgen;
 *   5. R13 (client.h): the attachment's next incarnation is published.
 *
 * Then each queue's own thread (the only one that may touch its ring) moves
 * its queue: maps the new segments (the word area at the same address, so
 * pointers from onering_queue_words() stay valid), takes the new kick and
 * bell, re-arms its timers and word watches through the new submission
 * ring, and returns one RESTARTED record first.
 *
 * Nothing here runs while the broker is alive; the consume path pays one
 * compare of the state word it already made for the dead check.
 *
 * Ordering contract
 * -----------------
 *   rec.*, q->reopen, q->bmap swaps: under rec.lock.
 *   R12  client_group_note: store-release(gnames[n].hid) after the name,
 *        then store-release(nr_gnames). Synchronises with A12 in
 *        client_group_current (load-acquire of both).
 *   gnames[].cur: relaxed; a post that reads the old id while a recovery
 *        writes the new one goes to a broker that is gone (the post fails
 *        with -EAGAIN first: submit_burst's stale check).
 *   R13/A13: client.h. R14/A14, R15/A15: recover.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "shm/log.h"

#define RECOVER_STEP_MIN_NS (1000ull * 1000)       /* the first pause: 1 ms */
#define RECOVER_STEP_MAX_NS (50ull * 1000 * 1000)  /* the default longest: 50 ms */
#define POLL_FD_RETRY 2u                           /* onering_queue_fd()'s data.u32 */

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts); /* vDSO */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void client_recover_init(struct onering *att, const struct onering_attach_options *o)
{
	const char *env = getenv("ONERING_RECOVER");
	struct client_recovery *rec = &att->rec;

	pthread_mutex_init(&rec->lock, NULL);
	rec->trust_uid = o && o->trust_uid ? (long)o->trust_uid : -1;
	rec->off = o && (o->flags & ONERING_ATTACH_NO_RECOVER);
	if (env && env[0]) {
		if (strcmp(env, "0") == 0)
			rec->off = true;
		else if (strcmp(env, "1") != 0)
			onering_log(ONERING_LOG_WARN, "ONERING_RECOVER=%s is not 0 or 1: recovery "
				    "stays %s", env, rec->off ? "off" : "on");
	}
	rec->give_up_ns = o ? o->recover_timeout_ns : 0;
	rec->step_max_ns = o && o->recover_step_ns ? o->recover_step_ns : RECOVER_STEP_MAX_NS;
	if (rec->step_max_ns < RECOVER_STEP_MIN_NS)
		rec->step_max_ns = RECOVER_STEP_MIN_NS;
}

void client_recover_fini(struct onering *att)
{
	client_bmap_free(att->rec.bmap);
	att->rec.bmap = NULL;
	pthread_mutex_destroy(&att->rec.lock);
}

bool client_recovering(const struct onering *att)
{
	/* Relaxed: a hint for the error code; rec.lock orders the real work. */
	return !att->rec.off && !onering_atomic_load(&att->rec.gave_up, onering_mo_relaxed);
}

uint32_t client_group_note(struct onering *att, const char *name, uint32_t flags, uint32_t cur)
{
	/* Relaxed: we are the writer (under att->lock). */
	uint32_t n = onering_atomic_load(&att->nr_gnames, onering_mo_relaxed);

	for (uint32_t i = 0; i < n; i++) {
		struct client_group_name *g = &att->gnames[i];
		if (strcmp(g->name, name) == 0) {
			onering_atomic_store(&g->cur, cur, onering_mo_relaxed);
			g->flags &= flags; /* created once: create it again after a restart */
			return onering_atomic_load(&g->hid, onering_mo_relaxed);
		}
	}
	/* A new name. Its handle is the broker's id, unless that id is the
	 * handle of another group already (possible after a restart). */
	uint32_t hid = cur;
	for (bool clash = true; clash;) {
		clash = false;
		for (uint32_t i = 0; i < n; i++)
			if (onering_atomic_load(&att->gnames[i].hid, onering_mo_relaxed) == hid) {
				hid = 0x80000000u | (hid + 1); /* above the broker's ids */
				clash = true;
			}
	}
	if (n == CLIENT_GROUPS)
		return cur; /* not remembered: not restored after a restart */
	struct client_group_name *g = &att->gnames[n];
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->flags = flags;
	onering_atomic_store(&g->cur, cur, onering_mo_relaxed);
	/* R12: the name before the handle, the handle before the count. */
	onering_atomic_store(&g->hid, hid, onering_mo_release);
	onering_atomic_store(&att->nr_gnames, n + 1, onering_mo_release);
	return hid;
}

uint32_t client_group_current(const struct onering *att, uint32_t hid)
{
	/* The first broker's ids are the handles. A13 (client.h). */
	if (hid == 0 || (client_att_state(att) >> 1) == 0)
		return hid;
	/* A12: synchronises with R12 in client_group_note. */
	uint32_t n = onering_atomic_load(&att->nr_gnames, onering_mo_acquire);
	for (uint32_t i = 0; i < n; i++)
		if (onering_atomic_load(&att->gnames[i].hid, onering_mo_acquire) == hid)
			return onering_atomic_load(&att->gnames[i].cur, onering_mo_relaxed);
	return hid;
}

bool client_sub_handle(struct onering *att, uint32_t bid, uint32_t bgen, uint32_t *hid,
		       uint32_t *hgen)
{
	if (!att->rec.bmap) { /* the first broker: its ids are the handles */
		*hid = bid;
		*hgen = bgen;
		return true;
	}
	/* After a restart: the slot of the broker's id if no handle lives
	 * there, else the next free one; a generation the slot never had. */
	uint32_t size = att->subs.nr_pages * CLIENT_SUB_PAGE;
	for (uint32_t k = 0, id = bid; k < size; k++, id = (id + 1) % size) {
		if (id == 0)
			continue;
		struct client_sub *s = client_sub_slot(&att->subs, id); /* R4 (sub.h) */
		/* Relaxed: we are the writer of gen (under att->lock). */
		if (!s || onering_atomic_load(&s->gen, onering_mo_relaxed) != 0)
			continue;
		uint32_t gen = s->last_gen + 1 ? s->last_gen + 1 : 1;
		if (!client_bmap_set(att->rec.bmap, bid, bgen, id, gen))
			return false;
		*hid = id;
		*hgen = gen;
		return true;
	}
	return false;
}

uint64_t client_recover_due(struct onering *att)
{
	pthread_mutex_lock(&att->rec.lock);
	uint64_t due = att->rec.died_ns ? att->rec.next_try_ns
					: clock_ns(CLOCK_MONOTONIC) + RECOVER_STEP_MIN_NS;
	pthread_mutex_unlock(&att->rec.lock);
	return due;
}

/* Step 2: the groups by name. A group the new broker lacks (one the
 * application only looked up, and nobody configured) gets id 0: posts to
 * it fail with -ENOENT. Returns 0 or -ECONNRESET (the new broker is gone). */
static int regroup(struct onering *att)
{
	uint32_t n = onering_atomic_load(&att->nr_gnames, onering_mo_acquire); /* A12 */

	for (uint32_t i = 0; i < n; i++) {
		struct client_group_name *g = &att->gnames[i];
		struct onering_msg req, rep;
		onering_msg_init(&req, ONERING_MSG_GROUP, 0);
		snprintf(req.u.group.name, sizeof(req.u.group.name), "%s", g->name);
		req.u.group.flags = g->flags;
		int r = client_request_recovering(att, &req, NULL, 0, &rep, NULL, 0, NULL);
		if (r == -ECONNRESET || r == -ETIMEDOUT)
			return -ECONNRESET;
		uint32_t cur = r == 0 ? rep.u.group.group_id : 0;
		onering_atomic_store(&g->cur, cur, onering_mo_relaxed);
		if (cur) {
			uint32_t hid = onering_atomic_load(&g->hid, onering_mo_relaxed);
			client_group_learn(att, hid); /* still the id posts name */
		}
	}
	return 0;
}

static void reopen_clear(struct client_reopen *ro)
{
	for (unsigned i = 0; i < CLIENT_QUEUE_OPEN_FDS; i++) {
		if (ro->fds[i] >= 0)
			close(ro->fds[i]);
		ro->fds[i] = -1;
	}
	ro->status = 0;
	ro->not_restored = 0;
	ro->first_error = 0;
}

/* Step 3: every queue, opened again. Returns 0 or -ECONNRESET. */
static int reopen_queues(struct onering *att)
{
	for (struct onering_queue *q = att->queues; q; q = q->next) {
		struct client_reopen *ro = &q->reopen;
		struct onering_msg req;
		unsigned nfds = 0;
		reopen_clear(ro);
		ro->died_ns = att->rec.died_ns;
		ro->died_wall_ns = att->rec.died_wall_ns;
		onering_msg_init(&req, ONERING_MSG_QUEUE_OPEN, 0);
		req.u.queue_open = q->open_req;
		int r = client_request_recovering(att, &req, NULL, 0, &ro->rep, ro->fds,
						  CLIENT_QUEUE_OPEN_FDS, &nfds);
		if (r == -ECONNRESET || r == -ETIMEDOUT)
			return -ECONNRESET;
		if (r == 0 && nfds != CLIENT_QUEUE_OPEN_FDS) {
			for (unsigned i = 0; i < nfds; i++)
				close(ro->fds[i]);
			r = -EPROTO;
		}
		if (r < 0) {
			for (unsigned i = 0; i < CLIENT_QUEUE_OPEN_FDS; i++)
				ro->fds[i] = -1;
			ro->status = r;
			onering_log(ONERING_LOG_WARN, "broker \"%s\" restarted and refused queue %u "
				    "again: %s", att->name, q->id, att->err);
		}
	}
	return 0;
}

/* One subscription could not be restored: count it on its queue, and
 * cancel it (S1, client/sub.h): its handle says -ENOENT from now on. */
static void sub_lost(struct client_sub *s, int why)
{
	struct client_reopen *ro = &s->owner->reopen;

	if (ro->not_restored++ == 0)
		ro->first_error = why;
	(void)client_sub_cancel(s);
}

/* Step 4: every live subscription, added again under a new broker id. */
static int resubscribe(struct onering *att, struct client_bmap *m)
{
	for (uint32_t pg = 0; pg < att->subs.nr_pages; pg++) {
		/* A4 (sub.h): the page, written under att->lock by the add. */
		struct client_sub *page = onering_atomic_load(&att->subs.pages[pg],
							      onering_mo_acquire);
		for (uint32_t i = 0; page && i < CLIENT_SUB_PAGE; i++) {
			struct client_sub *s = &page[i];
			/* Relaxed: adds and deletes made meanwhile fail (-EAGAIN)
			 * before they touch an entry; a delete's cancellation (S1)
			 * racing us leaves the broker's copy until the queue closes. */
			uint32_t hgen = onering_atomic_load(&s->gen, onering_mo_relaxed);
			if (hgen == 0 || !s->owner)
				continue;
			if (s->owner->reopen.status < 0) {
				sub_lost(s, s->owner->reopen.status);
				continue;
			}
			if (s->kind == ONERING_EV_STREAM) {
				/* A completion-mode connection ended with the broker
				 * that moved its bytes (where they stood is gone with
				 * it): the application adds its sockets again. */
				sub_lost(s, -ECONNRESET);
				continue;
			}
			if (s->fd >= 0 && fcntl(s->fd, F_GETFD) < 0) {
				sub_lost(s, -EBADF); /* the application closed it without onering_del */
				continue;
			}
			struct onering_msg req, rep;
			onering_msg_init(&req, ONERING_MSG_SUB_ADD, 0);
			req.u.sub_add.queue_id = s->owner->reopen.rep.u.queue_open.queue_id;
			req.u.sub_add.events = s->events;
			req.u.sub_add.mode = s->mode;
			req.u.sub_add.group_id = client_group_current(att, s->group_hid);
			req.u.sub_add.cookie = s->cookie;
			req.u.sub_add.home_node = s->home_node;
			req.u.sub_add.kind = s->kind;
			if (s->group_hid && !req.u.sub_add.group_id) {
				sub_lost(s, -ENOENT);
				continue;
			}
			int r = client_request_recovering(att, &req, s->fd >= 0 ? &s->fd : NULL,
							  s->fd >= 0 ? 1 : 0, &rep, NULL, 0, NULL);
			if (r == -ECONNRESET || r == -ETIMEDOUT)
				return -ECONNRESET;
			uint32_t bid = rep.u.sub_add.sub_id, bgen = rep.u.sub_add.sub_gen;
			pthread_mutex_lock(&att->lock);
			bool mapped = r == 0 && client_bmap_set(m, bid, bgen, pg * CLIENT_SUB_PAGE + i,
								hgen);
			if (mapped) {
				/* Relaxed: read by requests only (sub.h). */
				onering_atomic_store(&s->bid, bid, onering_mo_relaxed);
				onering_atomic_store(&s->bgen, bgen, onering_mo_relaxed);
			}
			pthread_mutex_unlock(&att->lock);
			if (!mapped)
				sub_lost(s, r < 0 ? r : -ENOMEM);
		}
	}
	return 0;
}

/*
 * The attachment's part (rec.lock held): if a connect attempt is due and a
 * broker answers, steps 1-5. Returns 0 (moved, or not yet: the state word
 * says which) or -ECONNRESET (recovery is off or gave up).
 */
static int recover_att(struct onering *att)
{
	struct client_recovery *rec = &att->rec;
	uint64_t now = clock_ns(CLOCK_MONOTONIC);

	if (!client_att_dead(att))
		return 0;
	if (rec->off || onering_atomic_load(&rec->gave_up, onering_mo_relaxed))
		return -ECONNRESET;
	if (!rec->died_ns) {
		rec->died_ns = now;
		rec->died_wall_ns = (int64_t)clock_ns(CLOCK_REALTIME);
		rec->step_ns = RECOVER_STEP_MIN_NS;
		rec->next_try_ns = now;
		onering_log(ONERING_LOG_WARN, "broker \"%s\" is gone: waiting for it to come back "
			    "(ONERING_RECOVER=0 turns this off)", att->name);
	}
	if (rec->give_up_ns && now - rec->died_ns > rec->give_up_ns) {
		onering_atomic_store(&rec->gave_up, 1u, onering_mo_relaxed);
		client_set_error(att, "broker \"%s\" did not come back within %llu ms", att->name,
				 (unsigned long long)(rec->give_up_ns / 1000000));
		return -ECONNRESET;
	}
	if (now < rec->next_try_ns)
		return 0;
	rec->next_try_ns = now + rec->step_ns;
	rec->step_ns = rec->step_ns * 2 < rec->step_max_ns ? rec->step_ns * 2 : rec->step_max_ns;

	/* Step 1: a broker of the same name, with the same checks as attach. */
	struct onering_msg hello;
	char err[CLIENT_ERR_MAX];
	int sock;
	if (onering_proto_connect(att->socket_path, att->name, rec->trust_uid, &sock, &hello, err,
				  sizeof(err)) < 0)
		return 0; /* not back yet (or refusing us: try again later) */
	pthread_mutex_lock(&att->lock);
	int old = att->sock;
	client_att_set_sock(att, sock);
	att->client_id = hello.u.hello.client_id;
	att->epoch = hello.u.hello.epoch;
	onering_atomic_store(&att->abi_minor, hello.u.hello.abi_minor, onering_mo_relaxed);
	att->seq = 1;
	pthread_mutex_unlock(&att->lock);
	close(old);

	struct client_bmap *m = client_bmap_new(hello.u.hello.max_subs ? hello.u.hello.max_subs
								     : 1u << 24);
	if (!m || regroup(att) < 0 || reopen_queues(att) < 0 || resubscribe(att, m) < 0) {
		/* The new broker went too (or no memory): the next attempt
		 * starts over; what it reopened dies with its socket. */
		client_bmap_free(m);
		for (struct onering_queue *q = att->queues; q; q = q->next)
			reopen_clear(&q->reopen);
		client_att_set_dead(att);
		return 0;
	}
	pthread_mutex_lock(&att->lock);
	m->older = rec->bmap;
	rec->bmap = m;
	pthread_mutex_unlock(&att->lock);
	rec->restarts++;
	rec->died_ns = 0;
	/* R13 (client.h): the next incarnation, alive; publishes steps 1-4. */
	uint32_t st = onering_atomic_load(&att->state, onering_mo_relaxed);
	onering_atomic_store(&att->state, ((st >> 1) + 1) << 1, onering_mo_release);
	onering_log(ONERING_LOG_NOTICE, "broker \"%s\" is back: queues and subscriptions "
		    "restored (restart %u)", att->name, rec->restarts);
	return 0;
}

/* A timer's next expiry after a restart: a periodic one's next period end
 * from now; a one-shot that expired before the broker's death was noticed
 * has fired (0), one due since then fires at once. */
static uint64_t timer_next(const struct client_sub *s, const struct client_recovery *rec)
{
	bool wall = s->t_flags & ONERING_TIMER_WALL;
	uint64_t now = clock_ns(wall ? CLOCK_REALTIME : CLOCK_MONOTONIC);
	uint64_t died = wall ? (uint64_t)rec->died_wall_ns : rec->died_ns;

	if (s->t_expiry == 0)
		return 0;
	if (s->t_period == 0)
		return s->t_expiry <= died ? 0 : s->t_expiry;
	if (s->t_expiry > now)
		return s->t_expiry;
	return s->t_expiry + ((now - s->t_expiry) / s->t_period + 1) * s->t_period;
}

/* After the move: q's timers and word watches, through its new ring. */
static void rearm_sources(struct onering_queue *q, uint64_t died_ns, int64_t died_wall_ns)
{
	struct client_recovery when = {.died_ns = died_ns, .died_wall_ns = died_wall_ns};
	struct onering *att = q->att;

	for (uint32_t pg = 0; pg < att->subs.nr_pages; pg++) {
		/* A4 (sub.h). */
		struct client_sub *page = onering_atomic_load(&att->subs.pages[pg],
							      onering_mo_acquire);
		for (uint32_t i = 0; page && i < CLIENT_SUB_PAGE; i++) {
			struct client_sub *s = &page[i];
			if (s->owner != q || s->kind != ONERING_EV_TIMER ||
			    onering_atomic_load(&s->gen, onering_mo_relaxed) == 0)
				continue;
			s->t_expiry = timer_next(s, &when);
			if (s->t_expiry)
				(void)client_timer_request(q, s, s->t_expiry, s->t_period,
							   ONERING_TIMER_ABS | s->t_flags);
		}
	}
	for (uint32_t i = 0; i < q->nr_words; i++)
		if (q->word_gen[i])
			(void)client_word_request(q, i, q->word_gen[i], q->word_cookie[i],
						  q->word_last[i]);
}

/* Requests this queue put on its ring that the dead broker never took. */
static uint64_t lost_requests(const struct onering_queue *q)
{
	/* Relaxed: the broker is gone; its last head is final. */
	uint64_t head = onering_atomic_load(q->sqp.head_word, onering_mo_relaxed);
	uint64_t lost = q->sqp.published_pos - head;

	return lost <= q->sqp.capacity ? lost : q->sqp.capacity; /* broker-written: bounded */
}

/* Where the words are in the consumer segment (both brokers': same options). */
static size_t ectl_words_offset(const struct onering_queue *q)
{
	return (size_t)((uintptr_t)q->words - (uintptr_t)q->cons_seg.base);
}

/*
 * Map the reopened queue's segments. The consumer segment goes where the
 * old one was (onering_seg_attach_at: mremap over it), so pointers into the
 * word area stay valid; the word values are carried over, and a store that
 * reached the old area while we moved is copied once more (the old memfd is
 * still open: its pages outlive the mapping).
 */
static int move_segments(struct onering_queue *q)
{
	struct client_reopen *ro = &q->reopen;
	struct onering_seg old_ev = q->ev_seg, old_cons = q->cons_seg, old_bells = q->bells_seg;
	uint32_t nw = q->nr_words;
	uint32_t *saved = nw ? calloc(nw, sizeof(*saved)) : NULL;

	if (nw && !saved)
		return -ENOMEM;
	for (uint32_t i = 0; i < nw; i++) /* relaxed: values only; A11 orders the watch */
		saved[i] = onering_atomic_load(&q->words[i], onering_mo_relaxed);
	int r = client_queue_map(q, &ro->rep, ro->fds[0], ro->fds[1], ro->fds[4],
				 nw ? old_cons.base : NULL, old_cons.size, q->att->err,
				 sizeof(q->att->err));
	ro->fds[0] = ro->fds[1] = ro->fds[4] = -1; /* taken over (closed on failure) */
	if (r < 0) {
		if (q->bells_seg.base != old_bells.base)
			onering_seg_destroy(&q->bells_seg);
		q->ev_seg = old_ev;
		q->cons_seg = old_cons;
		q->bells_seg = old_bells;
		free(saved);
		return r;
	}
	onering_seg_destroy(&old_ev);
	onering_seg_destroy(&old_bells);
	for (uint32_t i = 0; i < nw; i++)
		onering_atomic_store(&q->words[i], saved[i], onering_mo_relaxed);
	if (nw && q->cons_seg.base == old_cons.base) {
		/* The old mapping is gone (replaced); its pages are not. */
		void *old = mmap(NULL, old_cons.size, PROT_READ, MAP_SHARED, old_cons.fd, 0);
		if (old != MAP_FAILED) {
			size_t off = ectl_words_offset(q);
			const uint32_t *ow = (const uint32_t *)(const void *)((const char *)old + off);
			for (uint32_t i = 0; i < nw; i++)
				if (ow[i] != saved[i])
					onering_atomic_store(&q->words[i], ow[i], onering_mo_relaxed);
			munmap(old, old_cons.size);
		}
		close(old_cons.fd);
	} else if (nw) {
		/* Another size: the words moved. Leave the old mapping (a thread
		 * may still store through an old pointer); say so. */
		close(old_cons.fd);
		onering_log(ONERING_LOG_WARN, "queue %u: the restarted broker's segment has "
			    "another size: call onering_queue_words() again", q->id);
	} else {
		onering_seg_destroy(&old_cons);
	}
	free(saved);
	return 0;
}

/* Put the bell and the new socket (not the retry timer) in onering_queue_fd(). */
static void poll_fd_update(struct onering_queue *q)
{
	struct epoll_event bell = {.events = EPOLLIN, .data.u32 = 0};
	struct epoll_event sock = {.events = EPOLLRDHUP, .data.u32 = 1};

	if (q->poll_fd < 0)
		return;
	if (q->retry_fd >= 0)
		(void)epoll_ctl(q->poll_fd, EPOLL_CTL_DEL, q->retry_fd, NULL);
	pthread_mutex_lock(&q->att->lock);
	int s = q->att->sock;
	pthread_mutex_unlock(&q->att->lock);
	/* Failures leave the fd deaf to one source: said once, the queue works. */
	if (epoll_ctl(q->poll_fd, EPOLL_CTL_ADD, q->bell_fd, &bell) < 0 ||
	    epoll_ctl(q->poll_fd, EPOLL_CTL_ADD, s, &sock) < 0)
		onering_log(ONERING_LOG_ERR, "queue %u: onering_queue_fd() after the restart: "
			    "epoll_ctl: %s", q->id, strerror(errno));
}

/* Once every queue has moved, no thread reads the older incarnations'
 * maps: free them (rec.lock held). */
static void free_older_maps(struct onering *att)
{
	struct client_bmap *cur = att->rec.bmap;

	pthread_mutex_lock(&att->lock);
	bool all = true;
	for (struct onering_queue *q = att->queues; q; q = q->next)
		all = all && (q->bmap == cur || q->reopen.status < 0);
	pthread_mutex_unlock(&att->lock);
	if (all && cur) {
		client_bmap_free(cur->older);
		cur->older = NULL;
	}
}

/* The queue's part (its own thread, rec.lock held): move q to the broker of
 * incarnation state st. Returns 1 (a RESTARTED record waits) or -errno. */
static int move_queue(struct onering_queue *q, uint32_t st)
{
	struct client_reopen *ro = &q->reopen;
	struct onering *att = q->att;
	struct onering_event e;

	memset(&e, 0, sizeof(e));
	e.kind = ONERING_EV_CONTROL;
	e.payload.control.code = ONERING_CTL_RESTARTED;
	e.payload.control.flow = lost_requests(q);
	int r = ro->status < 0 ? ro->status : move_segments(q);
	if (r < 0) {
		onering_log(ONERING_LOG_ERR, "queue %u could not move to the restarted broker "
			    "\"%s\": %s", q->id, att->name, onering_strerror(r));
		reopen_clear(ro);
		ro->status = r;
		return r;
	}
	close(q->kick_fd);
	close(q->bell_fd);
	q->kick_fd = ro->fds[2];
	q->bell_fd = ro->fds[3];
	ro->fds[2] = ro->fds[3] = -1;
	q->id = ro->rep.u.queue_open.queue_id;
	q->node = ro->rep.u.queue_open.node;
	q->group_id = ro->rep.u.queue_open.group_id;
	q->bmap = att->rec.bmap;
	q->att_state = st;
	q->dead = false;
	q->armed = false;
	q->idle = false;
	q->kicked_flags = 0;
	/* LEVEL sources are reported again by the new broker when ready. */
	for (uint32_t i = 0; i < q->level_out.nr; i++) {
		struct client_sub *s = client_sub_at(&att->subs, q->level_out.ids[i]); /* A4 */
		if (s)
			s->level_out = false;
	}
	q->level_out.nr = 0;
	q->redeliver.nr = 0;
	poll_fd_update(q);
	rearm_sources(q, ro->died_ns, ro->died_wall_ns);
	e.payload.control.arg = ro->not_restored;
	e.payload.control.status = ro->first_error;
	e.timestamp_ns = clock_ns(CLOCK_MONOTONIC);
	reopen_clear(ro);
	free_older_maps(att);
	int pushed = client_redeliver_push(&q->redeliver, &e);
	client_queue_more_update(q); /* the RESTARTED record is re-delivered */
	if (pushed < 0)
		return -ENOMEM;
	return 1;
}

int client_queue_recover(struct onering_queue *q)
{
	struct onering *att = q->att;

	if (att->rec.off)
		return -ECONNRESET;
	pthread_mutex_lock(&att->rec.lock);
	if (q->dead && !client_att_dead(att))
		(void)client_broker_alive(att); /* it said SHUTDOWN: has it hung up yet? */
	int r = recover_att(att);
	uint32_t st = client_att_state(att); /* A13 (client.h) */
	if (r == 0 && !(st & CLIENT_DEAD) && st != q->att_state)
		r = move_queue(q, st);
	else if (r == 0 && st == q->att_state && q->reopen.status < 0)
		r = q->reopen.status; /* the new broker has no place for it */
	pthread_mutex_unlock(&att->rec.lock);
	return r == 1 ? 1 : r < 0 ? -ECONNRESET : 0;
}

int client_retry_arm(struct onering_queue *q)
{
	if (q->poll_fd < 0)
		return 0; /* no fd to make readable: the caller polls */
	if (q->retry_fd < 0) {
		q->retry_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (q->retry_fd < 0)
			return -errno;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = POLL_FD_RETRY};
	if (epoll_ctl(q->poll_fd, EPOLL_CTL_ADD, q->retry_fd, &ev) < 0 && errno != EEXIST)
		return -errno;
	/* The dead socket's hang-up would keep the fd readable: out with it. */
	pthread_mutex_lock(&q->att->lock);
	(void)epoll_ctl(q->poll_fd, EPOLL_CTL_DEL, q->att->sock, NULL);
	pthread_mutex_unlock(&q->att->lock);
	uint64_t due = client_recover_due(q->att);
	struct itimerspec its = {.it_value = {.tv_sec = (time_t)(due / 1000000000ull),
					      .tv_nsec = (long)(due % 1000000000ull)}};
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1;
	/* Setting it also empties it (a fire not read yet is forgotten). */
	if (timerfd_settime(q->retry_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return -errno;
	return 0;
}
