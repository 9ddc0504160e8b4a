/* SPDX-License-Identifier: MIT */
/*
 * libonering consume path: poll, wait, collect, and the zero-syscall
 * requests (mod, rearm, del) through the submission ring.
 *
 * Cancellation: every record carries (sub_id, sub_gen); a record is
 * returned only while q->subs[sub_id].gen equals its generation, and
 * onering_del() zeroes that generation before it returns, so no record of a
 * deleted subscription is ever returned, even one already in the ring.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

#include "client/client.h"

#define DEL_SPIN_NS (1000ull * 1000 * 1000) /* wait this long for ring space */
#define SLEEP_SLICE_NS (20ull * 1000 * 1000) /* check the broker this often */

static uint64_t now_ns(void)
{
	struct timespec ts;

	/* vDSO: no system call on the clocksources this runs on. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct client_sub *live_sub(struct onering_queue *q, struct onering_sub sub)
{
	struct client_sub *s = client_sub_at(q->att, sub.id);

	if (!s || sub.gen == 0 || onering_atomic_load(&s->gen, onering_mo_acquire) != sub.gen)
		return NULL;
	return s;
}

/* Put up to n requests on the submission ring, published together; returns
 * how many, or -EPROTO. */
static int submit_burst(struct onering_queue *q, const struct onering_request *req, uint32_t n)
{
	int r = onering_ring_enqueue_burst(&q->sqp, req, n);
	if (r <= 0)
		return r;
	/* Wake the poller only if it announced an idle sleep. The fence pairs
	 * with the one the poller makes between setting NEED_WAKEUP and
	 * re-checking the submission rings: one of us sees the other. */
	onering_fence(onering_mo_seq_cst);
	uint32_t flags = onering_atomic_load(q->poller_flags, onering_mo_relaxed);
	if ((flags & ONERING_POLLER_NEED_WAKEUP) && flags != q->kicked_flags) {
		/* Once per announced sleep: the flags carry its number. */
		eventfd_write(q->kick_fd, 1);
		q->kicked_flags = flags;
	}
	return r;
}

static inline uint32_t group_slot(uint32_t id)
{
	return (id * 2654435761u) & (CLIENT_GROUPS - 1);
}

void client_group_learn(struct onering *att, uint32_t id)
{
	if (id == 0)
		return;
	pthread_mutex_lock(&att->lock);
	for (uint32_t k = 0, i = group_slot(id); k < CLIENT_GROUPS; k++, i = (i + 1) & (CLIENT_GROUPS - 1)) {
		uint32_t v = onering_atomic_load(&att->groups[i], onering_mo_relaxed);
		if (v == id)
			goto out;
		if (v == 0) {
			/* Release: pairs with group_known's acquire. */
			onering_atomic_store(&att->groups[i], id, onering_mo_release);
			goto out;
		}
	}
	onering_atomic_store(&att->groups_full, 1, onering_mo_release);
out:
	pthread_mutex_unlock(&att->lock);
}

/* Has the attachment learned group id? Plain loads, no system call. */
static bool group_known(struct onering *att, uint32_t id)
{
	for (uint32_t k = 0, i = group_slot(id); k < CLIENT_GROUPS; k++, i = (i + 1) & (CLIENT_GROUPS - 1)) {
		/* Acquire: pairs with client_group_learn's release. */
		uint32_t v = onering_atomic_load(&att->groups[i], onering_mo_acquire);
		if (v == id)
			return true;
		if (v == 0)
			break;
	}
	return onering_atomic_load(&att->groups_full, onering_mo_acquire) != 0;
}

int client_submit(struct onering_queue *q, const struct onering_request *req)
{
	int r = submit_burst(q, req, 1);

	return r == 1 ? 0 : r == 0 ? -EAGAIN : r;
}

static int submit(struct onering_queue *q, uint16_t op, struct onering_sub sub, uint32_t events)
{
	struct onering_request req;

	memset(&req, 0, sizeof(req));
	req.op = op;
	req.sub_id = sub.id;
	req.sub_gen = sub.gen;
	req.events = events;
	return client_submit(q, &req);
}

int onering_post_burst(struct onering_queue *q, uint32_t group, const struct onering_user_event *posts,
		       unsigned n)
{
	struct onering_request req[32];
	unsigned done = 0;

	if (group == 0)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (posts[i].len > sizeof(posts[i].data))
			return -EINVAL;
	if (!group_known(q->att, group))
		return -ENOENT;
	while (done < n) {
		unsigned k = n - done < 32 ? n - done : 32;
		for (unsigned i = 0; i < k; i++) {
			const struct onering_user_event *p = &posts[done + i];
			memset(&req[i], 0, sizeof(req[i]));
			req[i].op = ONERING_REQ_POST;
			req[i].sub_id = group;
			req[i].user_data = p->cookie;
			req[i].arg[0] = p->flow;
			memcpy(&req[i].arg[1], p->data, p->len);
		}
		int r = submit_burst(q, req, k);
		if (r < 0)
			return done ? (int)done : r;
		done += (unsigned)r;
		if ((unsigned)r < k)
			break; /* ring full */
	}
	return (int)done;
}

int onering_post(struct onering_queue *q, uint32_t group, uint64_t flow, const void *data,
		 size_t len, uint64_t cookie)
{
	struct onering_request req;

	if (group == 0 || len > sizeof(((struct onering_event_user *)0)->data) || (len && !data))
		return -EINVAL;
	if (!group_known(q->att, group))
		return -ENOENT;
	memset(&req, 0, sizeof(req));
	req.op = ONERING_REQ_POST;
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
	int r = submit(q, ONERING_REQ_MOD, sub, events);
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
	if (s->mode == ONERING_DISPATCH && onering_atomic_load(&s->inflight, onering_mo_acquire) != 0)
		return -EBUSY;
	return submit(q, ONERING_REQ_REARM, sub, 0);
}

/* Drop id from the outstanding LEVEL list and the re-delivery queue. */
static void forget_level(struct onering_queue *q, uint32_t id)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < q->nr_level_out; i++)
		if (q->level_out[i] != id)
			q->level_out[n++] = q->level_out[i];
	q->nr_level_out = n;
	n = 0;
	for (uint32_t i = 0; i < q->nr_redeliver; i++)
		if (q->redeliver[i].sub_id != id)
			q->redeliver[n++] = q->redeliver[i];
	q->nr_redeliver = n;
}

int onering_del(struct onering_queue *q, struct onering_sub sub)
{
	struct client_sub *s = live_sub(q, sub);
	uint64_t deadline = 0;
	int r;

	if (!s)
		return -ENOENT;
	/* The cancellation itself: from here on no record of sub is returned
	 * by any queue of this attachment. seq_cst: pairs with take_records'
	 * increment of inflight and re-check of gen (one of us sees the other). */
	onering_atomic_store(&s->gen, 0, onering_mo_seq_cst);
	int busy = onering_atomic_load(&s->inflight, onering_mo_seq_cst) != 0;
	if (s->level_out)
		forget_level(q, sub.id);
	s->level_out = false;
	/* Tell the broker to drop the source. The ring is drained every poll
	 * loop, so a full ring frees up quickly; wait a bounded time for it. */
	while ((r = submit(q, ONERING_REQ_DEL, sub, 0)) == -EAGAIN) {
		uint64_t now = now_ns();
		if (!deadline)
			deadline = now + DEL_SPIN_NS;
		if (now > deadline || q->dead || q->att->dead)
			return q->dead || q->att->dead ? busy : -ETIMEDOUT;
		onering_cpu_relax();
	}
	return r < 0 ? r : busy;
}

static void held_done_mark(struct onering_queue *q, const struct onering_event *ev);

int onering_done(struct onering_queue *q, const struct onering_event *ev)
{
	if (ev->kind == ONERING_EV_NIC || ev->kind == ONERING_EV_WORD || ev->kind == ONERING_EV_CONTROL)
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
	struct client_sub *s = client_sub_at(q->att, ev->sub_id);
	if (!s)
		return -EINVAL;
	struct onering_sub sub = {ev->sub_id, ev->sub_gen};
	bool live = onering_atomic_load(&s->gen, onering_mo_acquire) == ev->sub_gen;
	if (!q->ack) {
		/* Nothing is in flight without ack mode: done only re-arms a
		 * DISPATCH subscription (one deleted since has nothing to re-arm). */
		if (!live)
			return 0;
		return s->mode == ONERING_DISPATCH ? submit(q, ONERING_REQ_REARM, sub, 0) : -EINVAL;
	}
	if (onering_atomic_load(&s->inflight, onering_mo_relaxed) == 0)
		return -EINVAL;
	/* Re-arm first, while the record still counts: a teardown waiting for
	 * it returns only after this request is in the ring (the broker takes
	 * a DEL after it, so the re-arm cannot outlive the delete). */
	int r = 0;
	if (s->mode == ONERING_DISPATCH && live)
		r = submit(q, ONERING_REQ_REARM, sub, 0);
	/* Release: what the thread did with the record happens before a
	 * teardown that sees the count drop. */
	onering_atomic_fetch_add(&s->inflight, (uint32_t)-1, onering_mo_release);
	held_done_mark(q, ev);
	return r;
}

int onering_teardown(struct onering_queue *q, struct onering_sub sub, int64_t timeout_ns)
{
	struct client_sub *s = client_sub_at(q->att, sub.id);
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : now_ns() + (uint64_t)timeout_ns;

	if (!s)
		return -ENOENT;
	/* Acquire: pairs with onering_done()'s release. */
	while (onering_atomic_load(&s->inflight, onering_mo_acquire) != 0) {
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		struct timespec ts = {0, 50 * 1000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int push_redeliver(struct onering_queue *q, const struct onering_event *e)
{
	if (q->nr_redeliver == q->cap_redeliver) {
		uint32_t n = q->cap_redeliver ? q->cap_redeliver * 2 : 16;
		struct onering_event *t = realloc(q->redeliver, n * sizeof(*t));
		if (!t)
			return -ENOMEM;
		q->redeliver = t;
		q->cap_redeliver = n;
	}
	q->redeliver[q->nr_redeliver++] = *e;
	return 0;
}

static int push_level_out(struct onering_queue *q, uint32_t id)
{
	if (q->nr_level_out == q->cap_level_out) {
		uint32_t n = q->cap_level_out ? q->cap_level_out * 2 : 16;
		uint32_t *t = realloc(q->level_out, n * sizeof(*t));
		if (!t)
			return -ENOMEM;
		q->level_out = t;
		q->cap_level_out = n;
	}
	q->level_out[q->nr_level_out++] = id;
	return 0;
}

int onering_collect(struct onering_queue *q)
{
	struct pollfd stack[64], *pfds = stack;
	uint32_t n = q->nr_level_out, kept = 0;
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
		const struct client_sub *s = client_sub_at(q->att, q->level_out[i]);
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
		uint32_t id = q->level_out[i];
		struct client_sub *s = client_sub_at(q->att, id);
		uint32_t ready = (uint32_t)pfds[i].revents & (s->events | POLLERR | POLLHUP);
		if (ready) {
			/* Still ready: return it again, keep it outstanding. */
			struct onering_event e;
			memset(&e, 0, sizeof(e));
			e.cookie = s->cookie;
			e.sub_id = id;
			e.sub_gen = onering_atomic_load(&s->gen, onering_mo_relaxed);
			e.kind = ONERING_EV_FD;
			e.flags = ONERING_EVF_LEVEL;
			e.events = ready;
			e.timestamp_ns = now_ns();
			if (push_redeliver(q, &e) == 0)
				redelivered++;
			q->level_out[kept++] = id;
		} else if (submit(q, ONERING_REQ_REARM,
				  (struct onering_sub){id, onering_atomic_load(&s->gen, onering_mo_relaxed)},
				  0) == 0) {
			s->level_out = false; /* the broker reports it again when ready */
		} else {
			q->level_out[kept++] = id; /* ring full: re-arm on the next collection */
		}
	}
	q->nr_level_out = kept;
	if (pfds != stack)
		free(pfds);
	return redelivered;
}

/* Copy ring records to out, skipping cancelled ones. Returns count or -errno.
 * A batch with NIC records stays unreleased (their packet bytes live in the
 * slots' packet area) until the next call. */
static int take_records(struct onering_queue *q, struct onering_event *out, unsigned max)
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

	while (n < max && !packets && !q->held) {
		const void *first = NULL;
		uint32_t want = max - n;
		if (track && want > CLIENT_HELD_MAX)
			want = CLIENT_HELD_MAX;
		int k = onering_ring_peek(&q->evc, &first, want);
		if (k < 0)
			return n ? (int)n : k;
		if (k == 0)
			break;
		const struct onering_event *rec = first;
		for (int i = 0; i < k; i++) {
			const struct onering_event *e = &rec[i];
			if (track) /* nothing to wait for, unless it goes out to be done */
				q->held_done[i] = 1;
			if (e->kind == ONERING_EV_CONTROL) {
				/* A refused post is the caller's to know; SHUTDOWN is
				 * the library's; a code this library does not know is
				 * skipped (newer brokers may add some). */
				if (e->payload.control.code == ONERING_CTL_POST_REFUSED)
					out[n++] = *e;
				else if (e->payload.control.code == ONERING_CTL_SHUTDOWN)
					q->dead = true;
				continue;
			}
			if (e->kind == ONERING_EV_NIC)
				packets = true;
			if (e->kind == ONERING_EV_WORD) {
				/* Only while that watch is the current one. */
				uint32_t w = e->payload.word.word_idx;
				if (w < q->nr_words && e->sub_gen && q->word_gen[w] == e->sub_gen)
					out[n++] = *e;
				continue;
			}
			if (e->kind == ONERING_EV_USER || e->kind == ONERING_EV_NIC ||
			    (e->flags & ONERING_EVF_FOREIGN)) {
				/* A post, or another client's source balanced to us:
				 * nothing of ours to check it against. (A packet is
				 * never done: its bytes stay until the next call.) */
				out[n++] = *e;
				if (track)
					q->held_done[i] = 0;
				continue;
			}
			struct client_sub *s = client_sub_at(q->att, e->sub_id);
			if (!s || e->sub_gen == 0 ||
			    onering_atomic_load(&s->gen, onering_mo_acquire) != e->sub_gen)
				continue; /* deleted (or never ours): the cancellation guarantee */
			if (q->ack) {
				/* In flight from here; then look again: a delete that
				 * ran meanwhile either sees this count or we see its
				 * zero generation (both seq_cst). */
				onering_atomic_fetch_add(&s->inflight, 1, onering_mo_seq_cst);
				if (onering_atomic_load(&s->gen, onering_mo_seq_cst) != e->sub_gen) {
					onering_atomic_fetch_add(&s->inflight, (uint32_t)-1,
								 onering_mo_release);
					continue;
				}
			}
			out[n++] = *e;
			if (track)
				q->held_done[i] = 0;
			if (s->mode == ONERING_LEVEL && !s->level_out) {
				s->level_out = true;
				if (push_level_out(q, e->sub_id) < 0)
					s->level_out = false;
			}
		}
		if (packets || hold) {
			q->held = (uint32_t)k; /* released by the next call */
			break;
		}
		else
			onering_ring_release(&q->evc, (uint32_t)k);
	}
	return (int)n;
}

/* Ack mode, group member: ev (a copy the caller got from q) is done. Mark
 * its record in the held batch - the first not yet done with the same bytes
 * (records with the same bytes are interchangeable) - and give back the
 * batch's done prefix. Nothing to do if the batch was released already. */
static void held_done_mark(struct onering_queue *q, const struct onering_event *ev)
{
	const struct onering_event *slots = (const struct onering_event *)(const void *)q->evc.slots;
	uint64_t head = q->evc.head_pos;
	uint32_t i, prefix = 0;

	if (!q->ack || q->group_id == 0)
		return;
	for (i = 0; i < q->held; i++)
		if (!q->held_done[i] && memcmp(&slots[(head + i) & q->evc.mask], ev, sizeof(*ev)) == 0)
			break;
	if (i == q->held)
		return;
	q->held_done[i] = 1;
	while (prefix < q->held && q->held_done[prefix])
		prefix++;
	if (prefix == 0)
		return;
	onering_ring_release(&q->evc, prefix);
	q->held -= prefix;
	memmove(q->held_done, q->held_done + prefix, q->held);
}

/* Give back a batch the caller has had since the last call (packets, or a
 * group member's records). */
static void release_held(struct onering_queue *q)
{
	if (q->held) {
		onering_ring_release(&q->evc, q->held);
		q->held = 0;
	}
}

static int poll_records(struct onering_queue *q, struct onering_event *events, unsigned max)
{
	unsigned n = 0;

	if (q->nr_level_out && q->since_collect >= q->collect_every)
		onering_collect(q);
	if (q->nr_redeliver) {
		unsigned k = q->nr_redeliver < max ? q->nr_redeliver : max;
		memcpy(events, q->redeliver, k * sizeof(*events));
		memmove(q->redeliver, q->redeliver + k, (q->nr_redeliver - k) * sizeof(*events));
		q->nr_redeliver -= k;
		n = k;
	}
	int r = take_records(q, events + n, max - n);
	if (r < 0)
		return n ? (int)n : r;
	n += (unsigned)r;
	q->since_collect += n;
	if (n)
		q->idle = false;
	if (n == 0 && (q->dead || q->att->dead))
		return -ECONNRESET;
	return (int)n;
}

const void *onering_event_packet(const struct onering_queue *q, const struct onering_event *e,
				 uint32_t *len)
{
	if (!q->pkt_area || e->kind != ONERING_EV_NIC)
		return NULL;
	uint64_t off = e->payload.nic.payload_offset, n = e->payload.nic.captured;
	/* Broker-written, but checked: never point outside the area. */
	if (off > q->pkt_size || n > q->pkt_size - off)
		return NULL;
	if (len)
		*len = (uint32_t)n;
	return q->pkt_area + off;
}

int onering_poll(struct onering_queue *q, struct onering_event *events, unsigned max)
{
	release_held(q);
	return poll_records(q, events, max);
}

int onering_pending(struct onering_queue *q)
{
	int64_t n = onering_ring_consumer_count(&q->evc);

	return n < 0 ? (int)n : (int)(n - q->held);
}

static int wait_records(struct onering_queue *q, struct onering_event *events, unsigned min,
			unsigned max, int64_t timeout_ns)
{
	unsigned got = 0;
	uint64_t start = 0, deadline = UINT64_MAX, spin_until = 0;

	if (min > max)
		return -EINVAL;
	for (;;) {
		int r = poll_records(q, events + got, max - got);
		if (r < 0)
			return got ? (int)got : r;
		got += (unsigned)r;
		if (q->held) /* held until the next call (packets, group records) */
			return (int)got;
		if (got >= min || got == max)
			return (int)got;

		uint64_t now = now_ns();
		if (!start) {
			/* Idle from now, if it was not already: tell the broker (its
			 * lifo/fifo wake order is by when consumers ran dry). */
			if (!q->idle) {
				onering_atomic_store(&q->db->idle_ns, now, onering_mo_relaxed);
				q->idle = true;
			}
			onering_doorbell_set_state(q->db, ONERING_CONSUMER_SPINNING);
			start = now;
			if (timeout_ns >= 0)
				deadline = now + (uint64_t)timeout_ns;
			spin_until = now + q->spin_ns;
		}
		if (now >= deadline)
			return (int)got;
		if (now < spin_until) {
			onering_cpu_relax();
			continue;
		}

		/* Sleep path: collect LEVEL sources first, then the doorbell. */
		if (q->nr_level_out && onering_collect(q) > 0)
			continue;
		uint32_t ticket = onering_doorbell_prepare(q->db);
		if (onering_ring_consumer_count(&q->evc) != 0 || q->nr_redeliver) {
			onering_doorbell_cancel(q->db);
			continue;
		}
		uint64_t slice = deadline - now < SLEEP_SLICE_NS ? deadline - now : SLEEP_SLICE_NS;
		r = onering_doorbell_sleep(q->db, ticket, (int64_t)slice);
		if (r == -EINTR)
			return got ? (int)got : -EINTR;
		if (r == -ETIMEDOUT && !client_broker_alive(q->att)) {
			r = poll_records(q, events + got, max - got); /* what is left */
			if (r > 0)
				got += (unsigned)r;
			return got ? (int)got : -ECONNRESET;
		}
		/* Still waiting (a liveness slice ended, or the doorbell rang):
		 * idle, not running, as far as the broker's lifo is concerned. */
		onering_doorbell_set_state(q->db, ONERING_CONSUMER_SPINNING);
		spin_until = now_ns() + q->spin_ns;
	}
}

int onering_wait(struct onering_queue *q, struct onering_event *events, unsigned min,
		 unsigned max, int64_t timeout_ns)
{
	release_held(q);
	int r = wait_records(q, events, min, max, timeout_ns);

	/* Back to work: the broker counts us as running (lifo's max_running). */
	onering_doorbell_set_state(q->db, ONERING_CONSUMER_RUNNING);
	return r;
}
