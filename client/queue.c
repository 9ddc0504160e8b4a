/* SPDX-License-Identifier: MIT */
/*
 * libonering consume path: poll, wait, collect, and the zero-syscall
 * requests (mod, rearm, del) through the submission ring.
 *
 * Cancellation: every record carries (sub_id, sub_gen); a record is
 * returned only while the attachment's entry for sub_id has that
 * generation, and onering_del() zeroes it before it returns, so no record
 * of a deleted subscription is ever returned, even one already in the
 * ring (client/sub.h).
 *
 * Ordering contract
 * -----------------
 * Labels are those of the file that defines the edge, named with it
 * ("A5 (sub.h)"); client/ numbers its labels after shm/ring.h's and
 * shm/doorbell.h's (R1-R3, A1-A3, F1-F2), so a client label is one edge in
 * shm/ and client/. Broker partners are named by function: broker files
 * have labels of their own.
 *
 * Shared words this file touches, and their writers:
 *   event ring tail   the broker (R1, onering_ring_publish in deliver_flush);
 *                     read here by A1 in onering_ring_peek/_consumer_count;
 *   event ring head   this queue's thread only (R2, onering_ring_release);
 *                     read by the broker's A2 before it reuses slots;
 *   submission tail   this queue's thread only (R1 in
 *                     onering_ring_enqueue_burst); the broker's A1 in
 *                     drain_requests reads it, after taking our bell (B2);
 *   bells word        ours and the other queues' of our user on this poller
 *                     (B1 here, seq_cst OR); the broker exchanges it (B2)
 *                     and looks at it before sleeping (submit_has_work);
 *   poller_flags      the broker (set_need_wakeup, relaxed, then the fence
 *                     of announce_sleep); read here seq_cst (F3);
 *   doorbell          state/futex as in shm/doorbell.h (F1, A3 here, the
 *                     broker's F2/R3: onering_doorbell_claim in
 *                     broker_queue_wake, then its bell); idle_ns
 *                     written here relaxed: a hint the broker's group wake
 *                     order reads relaxed, it orders nothing;
 *   client_sub.gen    R5 (add, attach.c), S1 (onering_del); A5 here
 *                     (client_sub_live); client/sub.h;
 *   client_sub.inflight  S2 (client_sub_take, take_records), R6
 *                     (client_sub_put, onering_done); A6 in onering_rearm and
 *                     onering_teardown; S1 in onering_del; client/sub.h;
 *   sub table pages   R4 (attach.c), A4 (client_sub_at); client/sub.h;
 *   group set         R7 (client_group_learn), A7 (group_known);
 *                     client/groups.h.
 *
 *   B1  submit_burst: after R1, a seq_cst OR of the queue's bit into its
 *       bells word (shm/abi.h, ABI 1.7). Synchronises with the poller's
 *       exchange of that word (B2 in broker/source_submit.c), after which
 *       it reads our tail.
 *   F3  submit_burst: a seq_cst load of poller_flags after B1. With B1,
 *       pairs with the seq_cst fence the broker's announce_sleep() makes
 *       between storing NEED_WAKEUP (set_need_wakeup) and looking at the
 *       bells (submit_has_work): either the poller sees our bell or we see
 *       its flag and kick its eventfd. The Dekker shape of F1/F2 of
 *       shm/doorbell.h, with seq_cst operations on our side.
 *
 * Everything else in struct onering_queue belongs to the thread that polls
 * the queue (held batch, LEVEL set, re-delivery queue, word generations).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "client/client.h"
#include "client/records.h"

#define DEL_SPIN_NS (1000ull * 1000 * 1000) /* wait this long for ring space */
/* onering_wait's spin: the clock is read once every WAIT_CLOCK_TURNS turns
 * (a turn is a look at the ring and a cpu_relax, well under 1 us), so a
 * budget or a timeout ends at most that many turns late. */
#define WAIT_CLOCK_TURNS 64
#define WAIT_BUSY_CHECK_NS (1000 * 1000) /* busy: look at the broker's socket this often */

static uint64_t now_ns(void)
{
	struct timespec ts;

	/* vDSO: no system call on the clocksources this runs on. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct client_sub *live_sub(struct onering_queue *q, struct onering_sub sub)
{
	struct client_sub *s = client_sub_at(&q->att->subs, sub.id);

	/* A4, A5 (sub.h): synchronise with R4/R5 of the add. */
	return client_sub_live(s, sub.gen) ? s : NULL;
}

/* May requests go on q's submission ring? 0, or why not. */
static int submit_check(struct onering_queue *q)
{
	/* The broker is gone (as far as we know): not into a ring nobody reads.
	 * A13 (client.h) in the check. */
	if (client_queue_stale(q))
		return client_recovering(q->att) ? -EAGAIN : -ECONNRESET;
	return 0;
}

/* Publish the requests staged on q's submission ring, ring q's bell and
 * kick the poller if it sleeps. */
static void submit_publish(struct onering_queue *q)
{
	/* R1 (shm/ring.h): pairs with the broker's A1 in drain_requests. */
	onering_ring_publish(&q->sqp);
	/* B1 (shm/abi.h): ring our bell (and its word's summary bit), so that
	 * the poller looks at this ring; its exchange (B2) then sees our R1. */
	onering_bell_ring(q->bell_word, q->bell_mask, q->bell_summary, q->bell_summary_mask);
	/* Wake the poller only if it announced an idle sleep. F3: this seq_cst
	 * load after the seq_cst B1 pairs with the seq_cst fence of the
	 * broker's announce_sleep(), made between its NEED_WAKEUP store and
	 * its look at the bells (submit_has_work): either it sees our bell or
	 * we see its flag. */
	uint32_t flags = onering_atomic_load(q->poller_flags, onering_mo_seq_cst);
	if (client_kick_needed(flags, q->kicked_flags)) {
		/* Once per announced sleep: the flags carry its number. */
		eventfd_write(q->kick_fd, 1);
		q->kicked_flags = flags;
	}
}

/* Put up to n requests on the submission ring, published together; returns
 * how many, or -EPROTO. */
static int submit_burst(struct onering_queue *q, const struct onering_request *req, uint32_t n)
{
	int r = submit_check(q);

	if (r == 0)
		r = onering_ring_produce_burst(&q->sqp, req, n);
	if (r > 0)
		submit_publish(q);
	return r;
}

void client_group_learn(struct onering *att, uint32_t id)
{
	if (id == 0)
		return;
	pthread_mutex_lock(&att->lock);
	client_group_set_add(&att->groups, id); /* R7 (groups.h) */
	pthread_mutex_unlock(&att->lock);
}

/* Has the attachment learned group id? Plain loads (A7, groups.h), no system
 * call. */
static bool group_known(struct onering *att, uint32_t id)
{
	return client_group_set_has(&att->groups, id);
}

int client_submit(struct onering_queue *q, const struct onering_request *req)
{
	int r = submit_burst(q, req, 1);

	return r == 1 ? 0 : r == 0 ? -EAGAIN : r;
}

/* A request about subscription s, under the broker's name for it. */
static int submit(struct onering_queue *q, uint16_t op, const struct client_sub *s, uint32_t events)
{
	struct onering_request req;

	memset(&req, 0, sizeof(req));
	req.op = op;
	/* Relaxed: copied into the request only (client/sub.h). */
	req.sub_id = onering_atomic_load(&s->bid, onering_mo_relaxed);
	req.sub_gen = onering_atomic_load(&s->bgen, onering_mo_relaxed);
	req.events = events;
	return client_submit(q, &req);
}

int onering_post_burst(struct onering_queue *q, uint32_t group, const struct onering_user_event *posts,
		       unsigned n)
{
	return onering_post_burst_prio(q, group, posts, n, 0);
}

/* The bytes of a user event's data that a POST carries: its first len
 * (<= 24), the rest 0 - three little-endian words (the ABI's byte order)
 * masked, no library call. */
static const uint64_t user_data_mask[25][4] __attribute__((aligned(32))) = {
#define M(n) ((n) >= 8 ? ~0ull : (n) <= 0 ? 0ull : (1ull << (8 * (n))) - 1)
#define ROW(l) {M(l), M((l) - 8), M((l) - 16), 0}
	ROW(0), ROW(1), ROW(2), ROW(3), ROW(4), ROW(5), ROW(6), ROW(7), ROW(8),
	ROW(9), ROW(10), ROW(11), ROW(12), ROW(13), ROW(14), ROW(15), ROW(16),
	ROW(17), ROW(18), ROW(19), ROW(20), ROW(21), ROW(22), ROW(23), ROW(24),
#undef ROW
#undef M
};

/* Write posts[0..n) as POST requests into n consecutive ring slots from
 * slot, field by field (no request built on the stack first). False if a
 * len is past the data: what was written is not published. */
static inline __attribute__((always_inline)) bool
post_write(unsigned char *slot, const struct onering_request *head,
	   const struct onering_user_event *posts, unsigned n)
{
#pragma GCC unroll 4
	for (unsigned i = 0; i < n; i++, slot += ONERING_RING_SLOT_SIZE) {
		const struct onering_user_event *p = &posts[i];
		if (p->len > sizeof(p->data))
			return false;
		const uint64_t *m = user_data_mask[p->len];
		struct onering_request *req = (struct onering_request *)(void *)slot;
		memcpy(req, head, offsetof(struct onering_request, user_data));
		req->user_data = p->cookie;
		req->arg[0] = p->flow;
		/* arg[1..3]: the data, masked; arg[4]: 0 (the mask's fourth word). */
#if defined(__SSE2__)
		__m128i d01 = _mm_loadu_si128((const __m128i *)(const void *)p->data);
		__m128i d2 = _mm_loadl_epi64((const __m128i *)(const void *)(p->data + 16));
		_mm_storeu_si128((__m128i *)(void *)&req->arg[1],
				 _mm_and_si128(d01, _mm_load_si128((const __m128i *)(const void *)m)));
		_mm_storeu_si128((__m128i *)(void *)&req->arg[3],
				 _mm_and_si128(d2, _mm_load_si128((const __m128i *)(const void *)(m + 2))));
#else
		uint64_t d[3];
		memcpy(d, p->data, sizeof(d));
		req->arg[1] = d[0] & m[0];
		req->arg[2] = d[1] & m[1];
		req->arg[3] = d[2] & m[2];
		req->arg[4] = 0;
#endif
	}
	return true;
}

int onering_post_burst_prio(struct onering_queue *q, uint32_t group,
			    const struct onering_user_event *posts, unsigned n, unsigned priority)
{
	if (group == 0 || priority >= ONERING_PRIO_LEVELS)
		return -EINVAL;
	if (!group_known(q->att, group))
		return -ENOENT;
	group = client_group_current(q->att, group); /* itself until a restart */
	if (group == 0)
		return -ENOENT; /* the restarted broker does not have it */
	int r = submit_check(q);
	if (r < 0)
		return r;
	/* Written in place in the ring's free slots (no copy through the
	 * stack), published together. */
	struct onering_ring_producer *sq = &q->sqp;
	int64_t room = onering_ring_producer_room(sq, n);
	if (room < 0)
		return (int)room;
	unsigned k = (uint64_t)room < n ? (unsigned)room : n;
	for (unsigned i = k; i < n; i++) /* those that do not fit are refused alike */
		if (posts[i].len > sizeof(posts[i].data))
			return -EINVAL;
	/* op, flags (the priority: within ONERING_POST_PRIO_MASK), sub_id */
	const struct onering_request head = {
		.op = ONERING_REQ_POST, .flags = (uint16_t)priority, .sub_id = group};
	/* The free slots are one run, or two when they wrap past the ring's
	 * end: each written with a pointer that steps one slot, no index
	 * masked per record. */
	const uint64_t at = sq->tail_pos & sq->mask;
	const unsigned run = sq->mask + 1 - at < k ? (unsigned)(sq->mask + 1 - at) : k;
	if (!post_write(sq->slots + at * ONERING_RING_SLOT_SIZE, &head, posts, run) ||
	    !post_write(sq->slots, &head, posts + run, k - run))
		return -EINVAL; /* nothing published: the tail has not moved */
	if (k == 0)
		return 0;
	sq->tail_pos += k;
	submit_publish(q);
	return (int)k;
}

int onering_post(struct onering_queue *q, uint32_t group, uint64_t flow, const void *data,
		 size_t len, uint64_t cookie)
{
	return onering_post_prio(q, group, flow, data, len, cookie, 0);
}

int onering_post_prio(struct onering_queue *q, uint32_t group, uint64_t flow, const void *data,
		      size_t len, uint64_t cookie, unsigned priority)
{
	struct onering_request req;

	if (group == 0 || len > sizeof(((struct onering_event_user *)0)->data) || (len && !data) ||
	    priority >= ONERING_PRIO_LEVELS)
		return -EINVAL;
	if (!group_known(q->att, group))
		return -ENOENT;
	group = client_group_current(q->att, group); /* itself until a restart */
	if (group == 0)
		return -ENOENT; /* the restarted broker does not have it */
	memset(&req, 0, sizeof(req));
	req.op = ONERING_REQ_POST;
	req.flags = (uint16_t)priority; /* < ONERING_PRIO_LEVELS: within ONERING_POST_PRIO_MASK */
	req.sub_id = group;
	req.user_data = cookie;
	req.arg[0] = flow;
	if (len)
		memcpy(&req.arg[1], data, len);
	return client_submit(q, &req);
}

int onering_mod(struct onering_queue *q, struct onering_sub sub, uint32_t events)
{
	struct client_sub *s = live_sub(q, sub);

	if (!s)
		return -ENOENT;
	if (events & ~(uint32_t)(POLLIN | POLLOUT | POLLRDHUP | POLLPRI))
		return -EINVAL;
	int r = submit(q, ONERING_REQ_MOD, s, events);
	if (r == 0)
		s->events = events;
	return r;
}

int onering_rearm(struct onering_queue *q, struct onering_sub sub)
{
	struct client_sub *s = live_sub(q, sub);

	if (!s)
		return -ENOENT;
	if (s->mode != ONERING_ONESHOT && s->mode != ONERING_DISPATCH)
		return -EINVAL;
	/* A DISPATCH record still in flight (ack mode) is re-armed by its
	 * onering_done(): re-arming now would put a second record of the
	 * source in another thread's hands. */
	if (s->mode == ONERING_DISPATCH && client_sub_inflight(s) != 0) /* A6 (sub.h) */
		return -EBUSY;
	return submit(q, ONERING_REQ_REARM, s, 0);
}

int onering_del(struct onering_queue *q, struct onering_sub sub)
{
	struct client_sub *s = live_sub(q, sub);
	uint64_t deadline = 0;
	int r;

	if (!s)
		return -ENOENT;
	/* The cancellation itself: from here on no record of sub is returned
	 * by any queue of this attachment. S1 (sub.h): pairs with S2 in
	 * take_records' client_sub_take (one of us sees the other). */
	int busy = client_sub_cancel(s);
	if (s->level_out) {
		/* Drop it from the outstanding LEVEL set and the re-delivery queue. */
		client_level_del(&q->level_out, sub.id);
		client_redeliver_del(&q->redeliver, sub.id);
	}
	s->level_out = false;
	/* Tell the broker to drop the source. The ring is drained every poll
	 * loop, so a full ring frees up quickly; wait a bounded time for it. */
	while ((r = submit(q, ONERING_REQ_DEL, s, 0)) == -EAGAIN) {
		uint64_t now = now_ns();
		if (!deadline)
			deadline = now + DEL_SPIN_NS;
		/* A gone broker has nothing to drop (and a restarted one does not
		 * get it back: recovery adds live subscriptions only). */
		if (client_queue_stale(q))
			return busy;
		if (now > deadline)
			return -ETIMEDOUT;
		onering_cpu_relax();
	}
	if (r == -ECONNRESET)
		return busy;
	return r < 0 ? r : busy;
}

static void held_done_mark(struct onering_queue *q, const struct onering_event *ev);

int onering_done(struct onering_queue *q, const struct onering_event *ev)
{
	if (!client_record_doneable(ev))
		return -EINVAL;
	if (ev->kind == ONERING_EV_USER || (ev->flags & ONERING_EVF_FOREIGN)) {
		/* Nothing of ours to re-arm or count; in ack mode its slot goes
		 * back now, so a crash does not deliver it again. */
		if (!q->ack)
			return -EINVAL;
		held_done_mark(q, ev);
		return 0;
	}
	if (ev->sub_gen == 0)
		return -EINVAL;
	struct client_sub *s = client_sub_at(&q->att->subs, ev->sub_id); /* A4 (sub.h) */
	if (!s)
		return -EINVAL;
	bool live = client_sub_live(s, ev->sub_gen); /* A5 (sub.h) */
	if (!q->ack) {
		/* Nothing is in flight without ack mode: done only re-arms a
		 * DISPATCH subscription (one deleted since has nothing to re-arm). */
		if (!live)
			return 0;
		return s->mode == ONERING_DISPATCH ? submit(q, ONERING_REQ_REARM, s, 0) : -EINVAL;
	}
	/* Relaxed: a sanity check of our own count (a done with nothing taken),
	 * it orders nothing. */
	if (onering_atomic_load(&s->inflight, onering_mo_relaxed) == 0)
		return -EINVAL;
	/* Re-arm first, while the record still counts: a teardown waiting for
	 * it returns only after this request is in the ring (the broker takes
	 * a DEL after it, so the re-arm cannot outlive the delete). */
	int r = 0;
	if (s->mode == ONERING_DISPATCH && live)
		r = submit(q, ONERING_REQ_REARM, s, 0);
	/* R6 (sub.h): what the thread did with the record happens before a
	 * teardown that sees the count drop (A6 in onering_teardown). */
	client_sub_put(s);
	if (q->bmap) {
		/* The slot holds the broker's ids; the caller's copy the handle. */
		struct onering_event slot = *ev;
		slot.sub_id = onering_atomic_load(&s->bid, onering_mo_relaxed);
		slot.sub_gen = onering_atomic_load(&s->bgen, onering_mo_relaxed);
		held_done_mark(q, &slot);
	} else {
		held_done_mark(q, ev);
	}
	return r;
}

int onering_teardown(struct onering_queue *q, struct onering_sub sub, int64_t timeout_ns)
{
	struct client_sub *s = client_sub_at(&q->att->subs, sub.id); /* A4 (sub.h) */
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : now_ns() + (uint64_t)timeout_ns;

	if (!s)
		return -ENOENT;
	/* A6 (sub.h): synchronises with R6 (onering_done()'s client_sub_put). */
	while (client_sub_inflight(s) != 0) {
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		struct timespec ts = {0, 50 * 1000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

int onering_collect(struct onering_queue *q)
{
	struct pollfd stack[64], *pfds = stack;
	uint32_t n = q->level_out.nr, kept = 0;
	int redelivered = 0;

	q->since_collect = 0;
	if (n == 0)
		return 0;
	if (n > 64) {
		pfds = malloc(n * sizeof(*pfds));
		if (!pfds)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		/* A4 (sub.h), here and below: the entry's page. */
		const struct client_sub *s = client_sub_at(&q->att->subs, q->level_out.ids[i]);
		pfds[i] = (struct pollfd){.fd = s->fd, .events = (short)s->events};
	}
	/* The one system call of the consume path. */
	if (poll(pfds, n, 0) < 0) {
		int e = -errno;
		if (pfds != stack)
			free(pfds);
		return e;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = q->level_out.ids[i];
		struct client_sub *s = client_sub_at(&q->att->subs, id);
		uint32_t ready = client_level_ready(pfds[i].revents, s->events);
		if (ready) {
			/* Still ready: return it again, keep it outstanding. */
			struct onering_event e;
			memset(&e, 0, sizeof(e));
			e.cookie = s->cookie;
			e.sub_id = id;
			/* Relaxed (also below): the generation is only copied into a
			 * record or request; the fields were ordered by A5 when the
			 * record that made it outstanding was taken. */
			e.sub_gen = onering_atomic_load(&s->gen, onering_mo_relaxed);
			e.kind = ONERING_EV_FD;
			e.flags = ONERING_EVF_LEVEL;
			e.events = ready;
			e.timestamp_ns = now_ns();
			if (client_redeliver_push(&q->redeliver, &e) == 0) {
				redelivered++;
				q->more = true;
			}
			q->level_out.ids[kept++] = id;
		} else if (submit(q, ONERING_REQ_REARM, s, 0) == 0) {
			s->level_out = false; /* the broker reports it again when ready */
		} else {
			q->level_out.ids[kept++] = id; /* ring full: re-arm on the next collection */
		}
	}
	q->level_out.nr = kept;
	if (pfds != stack)
		free(pfds);
	return redelivered;
}

/*
 * The check poll and peek share: is e a record to return? CLIENT_REC_SKIP
 * for one to drop (a cancelled subscription's, a stale word watch's, a
 * control code that is the library's: SHUTDOWN marks the queue dead);
 * otherwise its class, and for our own sources (CLIENT_REC_OWN) the entry
 * *sp and the handle *hid, *hgen: the record's ids, or after a broker
 * restart what bmap (q->bmap, read once per batch by the caller) says they
 * stand for (A14, A15: recover.h). subs is the caller's copy of the
 * attachment's table, also read once per batch.
 */
static inline __attribute__((always_inline)) enum client_record_class
check_record(struct onering_queue *q, const struct client_sub_table *subs,
	     const struct client_bmap *bmap, const struct onering_event *e, struct client_sub **sp,
	     uint32_t *hid, uint32_t *hgen)
{
	/* Posts first, the most frequent by far where rates are high: one
	 * compare. Then the kind by a table: packets need nothing more either. */
	if (ONERING_LIKELY(e->kind == ONERING_EV_USER))
		return CLIENT_REC_PASS;
	enum client_kind_class kc = client_kind_class_of(e->kind);

	if (ONERING_LIKELY(kc == CLIENT_KIND_OWN)) {
		/* Another client's source balanced to us: nothing of ours to
		 * check it against. */
		if (e->flags & ONERING_EVF_FOREIGN)
			return CLIENT_REC_PASS;
		*hid = e->sub_id;
		*hgen = e->sub_gen;
		if (bmap && !client_bmap_get(bmap, e->sub_id, e->sub_gen, hid, hgen))
			return CLIENT_REC_SKIP;
		/* A4, A5 (sub.h): synchronise with R4/R5 (the add); the fields
		 * the caller reads are the add's. */
		struct client_sub *s = client_sub_find_live(subs, *hid, *hgen);
		if (!s)
			return CLIENT_REC_SKIP; /* deleted (or never ours): the cancellation guarantee */
		*sp = s;
		return CLIENT_REC_OWN;
	}
	if (kc == CLIENT_KIND_PASS)
		return CLIENT_REC_PASS;
	if (kc == CLIENT_KIND_WORD) {
		/* Only while that watch is the current one. */
		if (!client_word_live(q->word_gen, q->nr_words, e->payload.word.word_idx,
				      e->sub_gen))
			return CLIENT_REC_SKIP;
		/* A restarted broker starts from it. */
		q->word_last[e->payload.word.word_idx] = e->payload.word.new_value;
		return CLIENT_REC_WORD;
	}
	enum client_record_class k = client_control_class(e);
	if (k == CLIENT_REC_SHUTDOWN) {
		q->dead = true;
		q->more = true;
		return CLIENT_REC_SKIP;
	}
	return k; /* NOTICE, or SKIP: a code this library does not know */
}

/*
 * The records from e on (up to end) that need no more than a look, in a
 * loop with no call in it (everything in registers): posts, other clients'
 * sources, with packets (nic_plain) packets, and records of our live
 * subscriptions (A4, A5 in client_sub_find_live) that are not LEVEL
 * records to note. Returns the first record that needs check_record (one
 * to drop, a word, a control record, a LEVEL record not yet outstanding,
 * a packet when !nic_plain), or end. The ids are the broker's: only while
 * they are the handles (no bmap).
 */
static inline __attribute__((always_inline)) const struct onering_event *
skip_plain(const struct client_sub_table *subs, const struct onering_event *e,
	   const struct onering_event *end, bool nic_plain)
{
#pragma GCC unroll 4
	for (; e < end; e++) {
		if (ONERING_LIKELY(e->kind == ONERING_EV_USER))
			continue;
		enum client_kind_class kc = client_kind_class_of(e->kind);
		if (kc == CLIENT_KIND_OWN) {
			if (e->flags & ONERING_EVF_FOREIGN)
				continue;
			const struct client_sub *s = client_sub_find_live(subs, e->sub_id, e->sub_gen);
			if (!s || (s->mode == ONERING_LEVEL && !s->level_out))
				break;
			continue;
		}
		if (!nic_plain || kc != CLIENT_KIND_PASS)
			break;
	}
	return e;
}

/* Copy records of ring c (evc, or a priority level's) to out, skipping
 * cancelled ones. Returns count or -errno. A batch with NIC records stays
 * unreleased (their packet bytes live in the slots' packet area) until the
 * next call, as does a group member's batch (q->held: of ring c). */
static inline __attribute__((always_inline)) int take_from(struct onering_queue *q,
							   struct onering_ring_consumer *c,
							   struct onering_event *out, unsigned max)
{
	unsigned n = 0;
	/* A group member holds its batch until its next call: the broker sees
	 * the records as unconsumed while the caller works on them, which is
	 * what sticky (one consumer per flow at a time) and lifo (who is idle)
	 * go by. */
	bool packets = false, hold = q->group_id != 0;
	/* In ack mode a member gives each record back once it and every one
	 * before it is done (onering_done), so a crash redelivers only what
	 * was not done: track the batch, CLIENT_HELD_MAX records at most. */
	bool track = hold && q->ack;
	/* Read once per call, not per record (see check_record). */
	const struct client_sub_table subs = q->att->subs;
	const struct client_bmap *bmap = q->bmap;
	/* Without ack mode and with the broker's ids the handles (no bmap), a
	 * record that needs no more than a look goes out as it is: a run of
	 * them is copied at once. */
	const bool runs = !q->ack && !bmap;

	while (n < max && !packets && !q->held.nr) {
		const void *first = NULL;
		uint32_t want = client_held_want(track, max - n);
		/* A1 (shm/ring.h) in the peek: synchronises with the broker's R1
		 * (onering_ring_publish in deliver_flush, after the records). */
		int k = onering_ring_peek(c, &first, want);
		if (k < 0)
			return n ? (int)n : k;
		if (k == 0)
			break;
		const struct onering_event *rec = first, *next = rec, *end = rec + k;
		while (next < end) {
			if (runs) {
				const struct onering_event *stop = skip_plain(&subs, next, end, false);
				memcpy(out + n, next, (size_t)(stop - next) * sizeof(*out));
				n += (unsigned)(stop - next);
				if (stop == end)
					break;
				next = stop; /* one that needs check_record */
			}
			const struct onering_event *e = next++;
			uint32_t i = (uint32_t)(e - rec);
			struct client_sub *s = NULL;
			uint32_t hid = 0, hgen = 0;
			if (track) /* nothing to wait for, unless it goes out to be done */
				q->held.done[i] = 1;
			switch (check_record(q, &subs, bmap, e, &s, &hid, &hgen)) {
			case CLIENT_REC_SKIP:
			case CLIENT_REC_SHUTDOWN:
				continue;
			case CLIENT_REC_NOTICE:
			case CLIENT_REC_WORD:
				out[n++] = *e;
				continue;
			case CLIENT_REC_PASS:
				/* A packet is never done: its bytes stay until the
				 * next call. */
				if (e->kind == ONERING_EV_NIC)
					packets = true;
				out[n++] = *e;
				if (track)
					q->held.done[i] = 0;
				continue;
			case CLIENT_REC_OWN:
				break;
			}
			/* In ack mode in flight from here; then look again: a delete
			 * that ran meanwhile either sees this count or we see its zero
			 * generation. S2 (sub.h): pairs with S1 in onering_del. */
			if (q->ack && !client_sub_take(s, hgen))
				continue;
			out[n] = *e;
			out[n].sub_id = hid;
			out[n++].sub_gen = hgen;
			if (track)
				q->held.done[i] = 0;
			if (s->mode == ONERING_LEVEL) {
				client_level_note(&q->level_out, &s->level_out, hid);
				q->more = true;
			}
		}
		if (packets || hold) {
			q->held.nr = (uint32_t)k; /* released by the next call */
			break;
		}
		/* R2 (shm/ring.h) in the release: synchronises with the broker's
		 * A2 (it may overwrite these slots once it sees the new head). */
		onering_ring_release(c, (uint32_t)k);
	}
	return (int)n;
}

/* A queue with priority levels: the highest level with records first, then
 * down, up to max; a held batch (group member, packets) ends the call, so
 * at most one ring has one (q->held_ring). Out of line: the one-level path
 * keeps its registers. */
__attribute__((noinline)) static int take_levels(struct onering_queue *q,
						  struct onering_event *out, unsigned max)
{
	unsigned n = 0;

	for (uint32_t level = q->nr_levels; level-- > 0 && n < max;) {
		struct onering_ring_consumer *c = level ? &q->lvc[level - 1] : &q->evc;
		int r = take_from(q, c, out + n, max - n);
		if (r < 0)
			return n ? (int)n : r;
		n += (unsigned)r;
		if (q->held.nr) {
			q->held_ring = c;
			break;
		}
	}
	return (int)n;
}

/* Copy records to out: one ring, or (priority levels) the highest first. */
static int take_records(struct onering_queue *q, struct onering_event *out, unsigned max)
{
	/* One branch on a word of the line take_from reads anyway (group_id,
	 * ack): a queue with one level takes the path it always took. */
	if (ONERING_LIKELY(q->nr_levels == 1))
		return take_from(q, &q->evc, out, max);
	return take_levels(q, out, max);
}

/* Does any level's ring have records? A1 (shm/ring.h) in each count:
 * synchronises with the broker's R1. A fault counts as records (the next
 * take returns -EPROTO). */
static bool rings_have_records(struct onering_queue *q)
{
	if (onering_ring_consumer_count(&q->evc) != 0)
		return true;
	for (uint32_t level = 1; level < q->nr_levels; level++)
		if (onering_ring_consumer_count(&q->lvc[level - 1]) != 0)
			return true;
	return false;
}

/* Ack mode, group member: ev (a copy the caller got from q) is done. Mark
 * its record in the held batch - the first not yet done with the same bytes
 * (records with the same bytes are interchangeable) - and give back the
 * batch's done prefix. Nothing to do if the batch was released already. */
static void held_done_mark(struct onering_queue *q, const struct onering_event *ev)
{
	struct onering_ring_consumer *c = q->held_ring;
	const struct onering_event *slots = (const struct onering_event *)(const void *)c->slots;

	if (!q->ack || q->group_id == 0)
		return;
	uint32_t i = client_held_find(&q->held, slots, c->mask, c->head_pos, ev);
	if (i == q->held.nr)
		return;
	uint32_t prefix = client_held_mark(&q->held, i);
	/* R2 (shm/ring.h) in the release: synchronises with the broker's A2. */
	onering_ring_release(c, prefix);
}

/*
 * Take back what onering_queue_arm() announced: the doorbell RUNNING again
 * and the bell empty. If our CAS moves SLEEPING -> RUNNING the broker did
 * not claim the wake and will not ring; if it fails, the broker claimed it
 * (F2/R3, shm/doorbell.h) and rings or has rung: empty the bell (a ring
 * that lands after this read leaves the fd readable once more: one extra
 * pass for the caller's loop, never a lost record).
 */
static void disarm(struct onering_queue *q)
{
	uint32_t expect = (uint32_t)ONERING_CONSUMER_SLEEPING;

	if (!q->armed)
		return;
	q->armed = false;
	/* The fd may have turned readable for the socket's hang-up: look once
	 * (a woken caller's one extra call; att->dead then ends its reads). */
	(void)client_broker_alive(q->att);
	if (!onering_atomic_cas(&q->db->state, &expect, (uint32_t)ONERING_CONSUMER_RUNNING,
				onering_mo_relaxed, onering_mo_relaxed)) {
		eventfd_t v;
		(void)eventfd_read(q->bell_fd, &v); /* EAGAIN: not rung yet */
		onering_doorbell_set_state(q->db, ONERING_CONSUMER_RUNNING);
	}
}

/* Give back a batch the caller has had since the last call (packets, or a
 * group member's records); forget a peeked run not advanced over (its
 * records stay in the ring for the next call). */
static void release_held(struct onering_queue *q)
{
	q->peek_n = 0; /* and a peeked run: the caller moved on */
	if (q->held.nr) {
		/* R2 (shm/ring.h) in the release: synchronises with the broker's A2. */
		onering_ring_release(q->held_ring, q->held.nr);
		q->held.nr = 0;
	}
}

static int poll_records(struct onering_queue *q, struct onering_event *events, unsigned max)
{
	unsigned n = 0;

	if (client_level_collect_due(&q->level_out, q->since_collect, q->collect_every))
		onering_collect(q);
	n = client_redeliver_take(&q->redeliver, events, max);
	int r = take_records(q, events + n, max - n);
	if (r < 0)
		return n ? (int)n : r;
	n += (unsigned)r;
	q->since_collect += n;
	if (n)
		q->idle = false;
	if (n == 0 && client_queue_stale(q)) {
		/* Everything the gone broker published is taken: move to the one
		 * that replaced it, if it is there (client/recover.c). */
		r = client_queue_recover(q);
		if (r < 0)
			return r;
		if (r > 0)
			return (int)client_redeliver_take(&q->redeliver, events, max);
	}
	return (int)n;
}

const void *onering_event_packet(const struct onering_queue *q, const struct onering_event *e,
				 uint32_t *len)
{
	if (!q->pkt_area || e->kind != ONERING_EV_NIC)
		return NULL;
	uint64_t off = e->payload.nic.payload_offset, n = e->payload.nic.captured;
	/* Broker-written, but checked: never point outside the area. */
	if (!client_span_valid(off, n, q->pkt_size))
		return NULL;
	if (len)
		*len = (uint32_t)n;
	return q->pkt_area + off;
}

/*
 * Does an onering_poll() of q have nothing to do but return 0? Its one
 * ring is empty (A1 in onering_ring_consumer_idle: synchronises with the
 * broker's R1), so no batch is held either (a held batch lies between the
 * released position and the tail); no arming to take back, nothing
 * re-delivered, no LEVEL source outstanding (a collection may be due), and
 * the broker is the one the queue was mapped from (A13 in
 * client_queue_stale). The ring first: when records flow, one compare
 * sends the call on.
 */
static inline bool poll_nothing(const struct onering_queue *q)
{
	/* q->more: anything besides the ring to look at (client.h). */
	return onering_ring_consumer_idle(&q->evc) && !q->more &&
	       client_att_state(q->att) == q->att_state; /* !client_queue_stale(q) */
}

/* onering_poll() with something to do. Out of line (a tail call): the
 * empty poll saves no registers. */
static __attribute__((noinline)) int poll_some(struct onering_queue *q,
					       struct onering_event *events, unsigned max)
{
	disarm(q);
	release_held(q);
	int r = poll_records(q, events, max);
	client_queue_more_update(q);
	return r;
}

int onering_poll(struct onering_queue *q, struct onering_event *events, unsigned max)
{
	/* Nothing: no peeked run to forget either (as release_held would) - a
	 * run peeked from the ring keeps it from looking empty (its head has
	 * not moved), one from the re-delivery queue or a level sets more. */
	if (ONERING_LIKELY(poll_nothing(q)))
		return 0;
	return poll_some(q, events, max);
}

/* The run of ring c's records, from its head, that poll would return:
 * records to drop at the head are given back (R2) and stepped over, and
 * the run ends before the next one. Returns its length, or -EPROTO. */
static inline __attribute__((always_inline)) int peek_ring(struct onering_queue *q,
							   struct onering_ring_consumer *c,
							   const struct onering_event **first, unsigned max)
{
	/* Read once per call, not per record (see check_record). */
	const struct client_sub_table subs = q->att->subs;
	const struct client_bmap *bmap = q->bmap;

	for (;;) {
		const void *p = NULL;
		/* A1 (shm/ring.h) in the peek: synchronises with the broker's R1. */
		int k = onering_ring_peek(c, &p, max);
		if (k <= 0)
			return k;
		const struct onering_event *rec = p, *e = rec, *end = rec + k;
		for (;;) {
			if (ONERING_LIKELY(!bmap))
				e = skip_plain(&subs, e, end, true);
			if (e == end)
				break;
			/* One that needs more than a look (after a restart: each). */
			struct client_sub *s = NULL;
			uint32_t hid, hgen;
			enum client_record_class cls = check_record(q, &subs, bmap, e, &s, &hid, &hgen);
			if (cls == CLIENT_REC_SKIP)
				break;
			if (cls == CLIENT_REC_OWN && s->mode == ONERING_LEVEL) {
				client_level_note(&q->level_out, &s->level_out, hid);
				q->more = true;
			}
			e++;
		}
		if (e > rec) {
			*first = rec;
			return (int)(e - rec);
		}
		/* R2 (shm/ring.h): the dropped head record goes back to the broker. */
		onering_ring_release(c, 1);
	}
}

/* The peek of a queue with priority levels or re-delivered records, or of
 * one that came up empty: the re-delivery queue first, then the levels'
 * rings, highest first; recovery when all are empty. Out of line: the
 * one-ring path of onering_peek keeps its registers. */
static __attribute__((noinline)) int peek_any(struct onering_queue *q,
					      const struct onering_event **first, unsigned max)
{
	for (int pass = 0; pass < 2; pass++) {
		if (q->redeliver.nr) {
			q->peek_ring = NULL;
			q->peek_n = q->redeliver.nr < max ? q->redeliver.nr : max;
			*first = q->redeliver.evs;
			return (int)q->peek_n;
		}
		for (uint32_t level = q->nr_levels; level-- > 0;) {
			struct onering_ring_consumer *c = level ? &q->lvc[level - 1] : &q->evc;
			int r = peek_ring(q, c, first, max);
			if (r != 0) {
				q->peek_ring = c;
				q->peek_n = r > 0 ? (uint32_t)r : 0;
				return r;
			}
		}
		/* Empty: if the broker is gone, move to the one that replaced it
		 * (a RESTARTED record then waits in the re-delivery queue). */
		if (!client_queue_stale(q))
			return 0;
		int r = client_queue_recover(q);
		if (r <= 0)
			return r;
	}
	return 0;
}

int onering_peek(struct onering_queue *q, const struct onering_event **first, unsigned max)
{
	if (!q || !first || q->ack)
		return -EINVAL;
	disarm(q);
	release_held(q); /* and q->peek_n = 0 */
	if (max == 0)
		return 0;
	if (client_level_collect_due(&q->level_out, q->since_collect, q->collect_every))
		onering_collect(q);
	/* One ring and nothing re-delivered: its run, if it has one. */
	if (ONERING_LIKELY(q->nr_levels == 1 && !q->redeliver.nr)) {
		int r = peek_ring(q, &q->evc, first, max);
		if (r != 0) {
			q->peek_ring = &q->evc;
			q->peek_n = r > 0 ? (uint32_t)r : 0;
			return r;
		}
	}
	return peek_any(q, first, max);
}

/* What an advance over n records counts (they are consumed). */
static inline int advanced(struct onering_queue *q, unsigned n)
{
	q->peek_n -= n;
	q->since_collect += n;
	q->idle = false;
	return 0;
}

/* onering_advance over n records of the re-delivery queue. Out of line (a
 * tail call): the ring's advance saves no registers. */
static __attribute__((noinline)) int redeliver_advance(struct onering_queue *q, unsigned n)
{
	client_redeliver_drop(&q->redeliver, n);
	return advanced(q, n);
}

int onering_advance(struct onering_queue *q, unsigned n)
{
	if (!q || n > q->peek_n)
		return -EINVAL;
	if (n == 0)
		return 0;
	if (ONERING_UNLIKELY(q->peek_ring == NULL))
		return redeliver_advance(q, n);
	/* R2 (shm/ring.h): synchronises with the broker's A2. */
	onering_ring_release(q->peek_ring, n);
	return advanced(q, n);
}

struct onering_sub onering_event_sub(const struct onering_queue *q, const struct onering_event *e)
{
	struct onering_sub sub = {e->sub_id, e->sub_gen};

	/* Only our own sources' records carry a broker id to translate. */
	if (q->bmap && client_record_classify(e) == CLIENT_REC_OWN &&
	    !client_bmap_get(q->bmap, e->sub_id, e->sub_gen, &sub.id, &sub.gen))
		sub = (struct onering_sub){0, 0};
	return sub;
}

int onering_pending(struct onering_queue *q)
{
	/* A1 (shm/ring.h) in the count: synchronises with the broker's R1. */
	int64_t n = onering_ring_consumer_count(&q->evc);
	for (uint32_t level = 1; level < q->nr_levels && n >= 0; level++) {
		int64_t k = onering_ring_consumer_count(&q->lvc[level - 1]);
		n = k < 0 ? k : n + k;
	}
	return (int)client_held_pending(n, q->held.nr);
}

/*
 * Sleep until the bell rings, the broker's end of the control socket goes
 * (its death: no timer slices to notice it), or deadline (UINT64_MAX:
 * none). Leaves the doorbell RUNNING. @return 0 (rung, or the time is up:
 * the caller looks again), -EINTR, or -ECONNRESET (the broker is gone).
 */
static int bell_sleep(struct onering_queue *q, uint64_t deadline)
{
	/* POLLRDHUP, not POLLIN: a reply another thread waits for is not ours. */
	struct pollfd pfd[2] = {{.fd = q->bell_fd, .events = POLLIN},
				{.fd = client_att_sock(q->att), .events = POLLRDHUP}};
	struct timespec tmo, *t = NULL;
	uint64_t now = now_ns();

	if (deadline != UINT64_MAX) {
		uint64_t left = deadline > now ? deadline - now : 0;
		tmo = (struct timespec){.tv_sec = (time_t)(left / 1000000000ull),
					.tv_nsec = (long)(left % 1000000000ull)};
		t = &tmo;
	}
	int r = ppoll(pfd, 2, t, NULL);
	int err = errno;
	onering_doorbell_set_state(q->db, ONERING_CONSUMER_RUNNING);
	if (r < 0)
		return err == EINTR ? -EINTR : 0;
	if (pfd[0].revents & POLLIN) {
		eventfd_t v;
		(void)eventfd_read(q->bell_fd, &v); /* empty it; EAGAIN: nothing */
	}
	if (pfd[1].revents && !client_broker_alive(q->att))
		return -ECONNRESET;
	return 0;
}

/* The broker is gone and its successor not there yet: pause until the next
 * connect attempt is due (or deadline). @return 0 or -EINTR. */
static int recover_pause(struct onering_queue *q, uint64_t deadline)
{
	uint64_t due = client_recover_due(q->att), now = now_ns();

	if (deadline < due)
		due = deadline;
	if (due <= now)
		return 0;
	struct timespec ts = {.tv_sec = (time_t)((due - now) / 1000000000ull),
			      .tv_nsec = (long)((due - now) % 1000000000ull)};
	return nanosleep(&ts, NULL) < 0 && errno == EINTR ? -EINTR : 0;
}

static int wait_records(struct onering_queue *q, struct onering_event *events, unsigned min,
			unsigned max, int64_t timeout_ns)
{
	unsigned got = 0, turns = 0;
	uint64_t now = 0, deadline = UINT64_MAX, spin_until = 0, alive_check = 0;
	bool started = false;

	if (min > max)
		return -EINVAL;
	for (;;) {
		/* Records to take while the doorbell says we wait: running before
		 * the head moves. Else the broker's lifo could see an empty ring
		 * and a member not running in between, count it idle and start
		 * one more member than max_running (seen once under TSan:
		 * Balance.LifoNeverRunsMoreThanMaxRunning). */
		if (started && rings_have_records(q))
			onering_doorbell_set_state(q->db, ONERING_CONSUMER_RUNNING);
		int r = poll_records(q, events + got, max - got);
		if (r < 0)
			return got ? (int)got : r;
		got += (unsigned)r;
		if (q->held.nr) /* held until the next call (packets, group records) */
			return (int)got;
		if (got >= min || got == max)
			return (int)got;

		if (!started) {
			now = now_ns();
			/* Idle from now, if it was not already: tell the broker (its
			 * lifo/fifo wake order is by when consumers ran dry). */
			if (!q->idle) {
				onering_atomic_store(&q->db->idle_ns, now, onering_mo_relaxed);
				q->idle = true;
			}
			onering_doorbell_set_state(q->db, ONERING_CONSUMER_SPINNING);
			started = true;
			if (timeout_ns >= 0)
				deadline = now + (uint64_t)timeout_ns;
			spin_until = q->idle_mode == ONERING_IDLE_OVERPROVISIONED ? now : now + q->spin_ns;
			alive_check = now + WAIT_BUSY_CHECK_NS;
		} else if (++turns % WAIT_CLOCK_TURNS == 0) {
			now = now_ns(); /* the spin reads the clock once every so many turns */
		}
		if (now >= deadline)
			return (int)got;
		if (q->idle_mode == ONERING_IDLE_BUSY) {
			/* Never sleeps, so no hang-up wakes it: ask, once a ms. */
			if (now >= alive_check) {
				alive_check = now + WAIT_BUSY_CHECK_NS;
				if (!client_broker_alive(q->att))
					continue; /* poll_records says -ECONNRESET once empty */
			}
			onering_cpu_relax();
			continue;
		}
		if (now < spin_until) {
			onering_cpu_relax();
			continue;
		}
		/* No sched_yield between the spin and the sleep (the poller's
		 * backoff has them): on a core where another task is runnable a
		 * yield hands it the CPU for its slice, and the record that comes
		 * meanwhile waits a scheduler tick (readiness, latency mode,
		 * onering-wait: p50 3.8 ms with 4 yields, 30 us without, on a
		 * loaded 2-vCPU machine). The sleep on the bell is woken at once. */

		/* The broker is gone: poll_records above tried to move to its
		 * successor; pause until the next try. */
		if (client_queue_stale(q)) {
			if (recover_pause(q, deadline) < 0)
				return got ? (int)got : -EINTR;
			now = now_ns();
			continue;
		}
		/* Sleep path: collect LEVEL sources first, then the doorbell. */
		if (q->level_out.nr && onering_collect(q) > 0)
			continue;
		/* A3 and F1 (shm/doorbell.h) inside: pair with R3 and F2 of the
		 * broker's onering_doorbell_ring (deliver_flush). */
		uint32_t ticket = onering_doorbell_prepare(q->db);
		/* A1 (shm/ring.h), the re-check after F1 (shm/doorbell.h):
		 * synchronises with the broker's R1; F1 pairs with its F2. */
		if (rings_have_records(q) || q->redeliver.nr) {
			onering_doorbell_cancel(q->db);
			continue;
		}
		(void)ticket; /* the bell wakes us, not the futex (shm/doorbell.h) */
		r = bell_sleep(q, deadline);
		if (r == -EINTR)
			return got ? (int)got : -EINTR;
		if (r == -ECONNRESET)
			continue; /* poll_records takes what is left, then recovers or says so */
		/* Still waiting (the bell rang, or the sleep ended): idle, not
		 * running, as far as the broker's lifo is concerned. */
		onering_doorbell_set_state(q->db, ONERING_CONSUMER_SPINNING);
		now = now_ns();
		turns = 0;
		spin_until = q->idle_mode == ONERING_IDLE_OVERPROVISIONED ? now : now + q->spin_ns;
	}
}

int onering_wait(struct onering_queue *q, struct onering_event *events, unsigned min,
		 unsigned max, int64_t timeout_ns)
{
	disarm(q);
	release_held(q);
	int r = wait_records(q, events, min, max, timeout_ns);

	/* Back to work: the broker counts us as running (lifo's max_running). */
	onering_doorbell_set_state(q->db, ONERING_CONSUMER_RUNNING);
	return r;
}

int onering_queue_fd(struct onering_queue *q)
{
	if (q->poll_fd >= 0)
		return q->poll_fd;
	/* The bell, and the control socket's hang-up (the broker's death; not
	 * POLLIN: replies are another call's): one fd for any event loop. */
	struct epoll_event bell = {.events = EPOLLIN, .data.u32 = 0};
	struct epoll_event sock = {.events = EPOLLRDHUP, .data.u32 = 1};
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (epoll_ctl(fd, EPOLL_CTL_ADD, q->bell_fd, &bell) < 0 ||
	    epoll_ctl(fd, EPOLL_CTL_ADD, client_att_sock(q->att), &sock) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	q->poll_fd = fd;
	return fd;
}

int onering_queue_arm(struct onering_queue *q)
{
	disarm(q);
	release_held(q); /* about to wait: the caller is done with the last batch */
	if (client_queue_stale(q)) {
		if (rings_have_records(q) || q->redeliver.nr)
			return 1; /* what the gone broker published comes first */
		int r = client_queue_recover(q);
		if (r != 0)
			return r < 0 ? r : 1; /* 1: RESTARTED waits */
		return client_retry_arm(q); /* the fd turns readable when it is time to try */
	}
	if (q->redeliver.nr || (q->level_out.nr && onering_collect(q) > 0))
		return 1;
	if (!q->idle) { /* the broker's lifo/fifo wake order, as onering_wait */
		onering_atomic_store(&q->db->idle_ns, now_ns(), onering_mo_relaxed);
		q->idle = true;
	}
	/* A3 and F1 (shm/doorbell.h) inside: pair with R3 and F2 of the
	 * broker's claim (broker_queue_wake). */
	(void)onering_doorbell_prepare(q->db);
	/* A1 (shm/ring.h), the re-check after F1: pairs with the broker's R1. */
	if (rings_have_records(q) || q->redeliver.nr) {
		onering_doorbell_cancel(q->db);
		return 1;
	}
	q->armed = true;
	q->more = true;
	return 0;
}
