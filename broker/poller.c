/* SPDX-License-Identifier: MIT */
/*
 * The poller: one thread per configured core, the broker's hot loop.
 *
 *   harvest  epoll_wait(0) over the sources homed here, in batches; one
 *            record per readiness into the subscription's queue, claimed
 *            in place (no copy) and not yet published;
 *   walk     every live queue of this poller: place pending records where
 *            space returned, drain the submission ring (rearm, mod, del),
 *            publish what this round wrote (one release store per queue)
 *            and ring the doorbell, which costs a syscall only for a
 *            consumer that announced sleep;
 *   idle     after idle_spin_ns without work, block in epoll_wait for at
 *            most idle_sleep_ms (RCU-offline meanwhile).
 *
 * The poller never reads or writes a client's fd: it only asks epoll.
 * Everything it reads from a client's segment goes through the ring
 * handles, which validate the client's indices (shm/ring.h), and every
 * request is copied out of the submission ring before it is checked.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/queue.h"
#include "broker/group.h"
#include "numa/topology.h"
#include "shm/doorbell.h"
#include "shm/log.h"

#define HARVEST_BATCH 256
#define REQUEST_BATCH 32

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t broker_epoll_flags(uint8_t mode, uint32_t events)
{
	switch (mode) {
	case ONERING_MODE_ONESHOT:
	case ONERING_MODE_DISPATCH:
		return events | EPOLLET | EPOLLONESHOT;
	case ONERING_MODE_LEVEL:
		return events | EPOLLONESHOT; /* level, disarmed after one report */
	default:
		return events | EPOLLET;
	}
}

/* The client broke the ring ABI: stop serving the queue, tell control. */
void poller_queue_fault(struct poller *p, struct broker_queue *q, const char *what)
{
	int expect = BROKER_QUEUE_LIVE;

	if (!onering_atomic_cas(&q->state, &expect, BROKER_QUEUE_FAULTED, onering_mo_acq_rel,
				onering_mo_relaxed))
		return;
	onering_log(ONERING_LOG_WARN, "poller %u: queue %u of pid %d: %s; dropping the client",
		    p->idx, q->id, (int)q->owner_pid, what);
	BROKER_TSAN_PUBLISH(q);
	cds_wfcq_enqueue(&p->b->fault_head, &p->b->fault_tail, &q->fault_node);
	eventfd_write(p->b->reap_fd, 1);
}

void poller_write_record(struct onering_event *e, const struct broker_sub *s, uint32_t events,
			 uint32_t count, uint64_t ts)
{
	e->cookie = s->cookie;
	e->sub_id = s->id;
	e->sub_gen = s->gen;
	e->kind = s->kind;
	e->flags = (uint16_t)((s->mode == ONERING_MODE_LEVEL ? ONERING_EVF_LEVEL : 0) |
			      (count > 1 ? ONERING_EVF_COALESCED : 0));
	e->events = events;
	e->timestamp_ns = ts;
	memset(&e->payload, 0, sizeof(e->payload));
	e->payload.u64[0] = count;
}

static void pending_append(struct broker_queue *q, struct broker_sub *s, uint32_t events,
			   uint32_t count)
{
	s->pending = true;
	s->pending_events = events;
	s->pending_count = count;
	s->pending_next = NULL;
	*q->pending_tail = s;
	q->pending_tail = &s->pending_next;
	broker_count(&q->ctr[ONERING_QC_DEFERRED], 1);
	broker_count(&q->ctr[ONERING_QC_PENDING], 1);
}

static void pending_unlink(struct broker_queue *q, struct broker_sub *s)
{
	struct broker_sub **pp = &q->pending_head;

	if (!s->pending)
		return;
	while (*pp && *pp != s)
		pp = &(*pp)->pending_next;
	if (*pp) {
		*pp = s->pending_next;
		if (q->pending_tail == &s->pending_next)
			q->pending_tail = pp;
	}
	s->pending = false;
	broker_count(&q->ctr[ONERING_QC_PENDING], (uint64_t)-1);
}

/* One readiness report of s (count notifications, or timer expirations).
 * Never loses it: a full ring makes it pending. */
static void deliver(struct poller *p, struct broker_queue *q, struct broker_sub *s,
		    uint32_t events, uint32_t count, uint64_t ts)
{
	void *slot = NULL;
	int r;

	if (s->pending) { /* already waiting for space: merge */
		s->pending_events |= events;
		s->pending_count += count;
		broker_count(&q->ctr[ONERING_QC_COALESCED], 1);
		return;
	}
	if (q->pending_head == NULL) { /* nobody waiting ahead of it */
		r = onering_ring_claim(&q->evp, &slot);
		if (r == 1) {
			poller_write_record(slot, s, events, count, ts);
			q->dirty = true;
			return;
		}
		if (r < 0) {
			poller_queue_fault(p, q, onering_ring_fault_str(q->evp.fault));
			return;
		}
	}
	pending_append(q, s, events, count);
}

void poller_deliver(struct poller *p, struct broker_sub *s, uint32_t events, uint32_t count,
		    uint64_t ts)
{
	deliver(p, s->queue, s, events, count, ts);
}

/* Place pending records in the space the consumer gave back, oldest first. */
static unsigned flush_pending(struct poller *p, struct broker_queue *q, uint64_t ts)
{
	unsigned placed = 0;
	void *slot = NULL;

	while (q->pending_head) {
		int r = onering_ring_claim(&q->evp, &slot);
		if (r < 0) {
			poller_queue_fault(p, q, onering_ring_fault_str(q->evp.fault));
			break;
		}
		if (r == 0)
			break;
		struct broker_sub *s = q->pending_head;
		q->pending_head = s->pending_next;
		if (!q->pending_head)
			q->pending_tail = &q->pending_head;
		s->pending = false;
		broker_count(&q->ctr[ONERING_QC_PENDING], (uint64_t)-1);
		poller_write_record(slot, s, s->pending_events, s->pending_count, ts);
		q->dirty = true;
		placed++;
	}
	return placed;
}

/* On s's home poller. */
static void sub_delete(struct poller *p, struct broker_sub *s)
{
	onering_atomic_store(&s->dead, 1, onering_mo_relaxed);
	if (s->fd >= 0)
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	s->t_seq++; /* a timer: its heap entries go stale */
	if (!s->group)
		pending_unlink(s->queue, s); /* a group backlog drops it when it comes up */
	/* The control thread unpublishes it, closes the fd and frees it after
	 * a grace period. */
	cds_wfcq_node_init(&s->reap_node);
	BROKER_TSAN_PUBLISH(s);
	cds_wfcq_enqueue(&p->b->reap_head, &p->b->reap_tail, &s->reap_node);
	eventfd_write(p->b->reap_fd, 1);
}

#define REQ_EVENTS_ALLOWED (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI)

/* A request on a subscription homed here (it came on q, a queue of the
 * subscription's owner). Returns false when the client must be dropped. */
bool poller_apply_request(struct poller *p, struct broker_queue *q,
			  const struct onering_request *req)
{
	struct broker_sub *s = broker_registry_lookup(&p->b->reg,
						      broker_sub_key(req->sub_id, req->sub_gen));
	struct epoll_event ev;

	if (!s || broker_sub_dead(s)) {
		/* Deleted meanwhile, or an id reused since: harmless, counted. */
		broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
		return true;
	}
	if (req->op == ONERING_REQ_TIMER_ARM || s->kind == ONERING_EV_TIMER) {
		if (req->op == ONERING_REQ_DEL) {
			sub_delete(p, s);
			return true;
		}
		if (req->op != ONERING_REQ_TIMER_ARM || s->kind != ONERING_EV_TIMER) {
			broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
			return true; /* a timer op on a source, or a source op on a timer */
		}
		timer_arm(p, s, req);
		return true;
	}
	switch (req->op) {
	case ONERING_REQ_REARM:
		if (s->mode == ONERING_MODE_EDGE) {
			broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
			return true;
		}
		/* re-arming is a MOD with the same events */
		__attribute__((fallthrough));
	case ONERING_REQ_MOD:
		if (req->op == ONERING_REQ_MOD) {
			if (req->events & ~(uint32_t)REQ_EVENTS_ALLOWED)
				return false;
			s->events = req->events;
		}
		ev.events = broker_epoll_flags(s->mode, s->events);
		ev.data.u64 = broker_sub_key(s->id, s->gen);
		epoll_ctl(p->epfd, EPOLL_CTL_MOD, s->fd, &ev);
		return true;
	case ONERING_REQ_DEL:
		sub_delete(p, s);
		return true;
	default:
		return false;
	}
}

/*
 * The group a POST from q names, if q's client may post to it: 0 and *out,
 * or -ENOENT (no such group, or no longer). The one place that decides
 * whether a post has somewhere to go: a check of who may post to g returns
 * -EACCES here, and every refusal takes the same path (post_refuse).
 */
static int post_target(struct poller *p, const struct broker_queue *q, uint32_t gid,
		       struct broker_group **out)
{
	struct broker *b = p->b;
	/* The id carries its slot's generation: an id of a group that ended
	 * never resolves to a later group in the same slot. */
	struct broker_group *g = broker_group_by_id(b, gid);

	if (!g)
		return -ENOENT;
	if (!broker_group_permits(b, g, BROKER_PERM_POST, q->cred))
		return -EACCES;
	*out = g;
	return 0;
}

/*
 * A post that goes nowhere (status: post_target's error) is never dropped
 * silently: it is counted once, for the broker, and the poster finds a
 * CONTROL record (POST_REFUSED: the group, the reason, the post's cookie
 * and flow) in the queue it posted through. That record needs a free slot:
 * while the poster's ring is full the post stays in its submission ring
 * (returns 0), as a post to a full backlog does.
 */
static int post_refuse(struct poller *p, struct broker_queue *q, const struct onering_request *req,
		       uint64_t ts, int status)
{
	void *slot = NULL;
	int r = onering_ring_claim(&q->evp, &slot);

	if (r < 0) {
		poller_queue_fault(p, q, onering_ring_fault_str(q->evp.fault));
		return 1;
	}
	if (r == 0)
		return 0;
	struct onering_event *e = slot;
	memset(e, 0, sizeof(*e));
	e->cookie = req->user_data;
	e->kind = ONERING_EV_CONTROL;
	e->timestamp_ns = ts;
	e->payload.control.code = ONERING_CTL_POST_REFUSED;
	e->payload.control.arg = req->sub_id;
	e->payload.control.status = status;
	e->payload.control.flow = req->arg[0];
	q->dirty = true;
	/* Several pollers count here: an atomic add (a rare path). */
	onering_atomic_fetch_add(&p->b->ctr[ONERING_BC_POSTS_REFUSED], 1, onering_mo_relaxed);
	return 1;
}

/* A user event for a group (ABI 1.2). */
static int handle_post(struct poller *p, struct broker_queue *q, const struct onering_request *req,
		       uint64_t ts)
{
	struct broker_group *g;
	int r = post_target(p, q, req->sub_id, &g);

	if (r < 0)
		return post_refuse(p, q, req, ts, r);
	struct onering_event rec;
	memset(&rec, 0, sizeof(rec));
	rec.cookie = req->user_data;
	rec.kind = ONERING_EV_USER;
	rec.events = req->events;
	rec.timestamp_ns = ts;
	rec.payload.user.flow = req->arg[0];
	memcpy(rec.payload.user.data, &req->arg[1], sizeof(rec.payload.user.data));
	/* A full backlog leaves the post in the poster's ring: backpressure. */
	return group_deliver_record(p, g, &rec, req->arg[0]) ? 1 : 0;
}

/* Start, restart (new generation) or stop (gen 0) watching a word of q. */
static bool word_watch(struct poller *p, struct broker_queue *q, const struct onering_request *req)
{
	(void)p;
	if (req->arg[0] >= q->nr_words)
		return false;
	uint32_t idx = (uint32_t)req->arg[0];
	struct broker_word *w = &q->watch[idx];
	bool was = w->gen != 0;
	w->gen = req->sub_gen;
	w->cookie = req->user_data;
	/* The baseline is what the client saw when it asked: a change made
	 * since then makes a record at once. */
	w->last = (uint32_t)req->arg[1];
	if (w->gen && !was) {
		q->watched[q->nr_watched++] = idx;
	} else if (!w->gen && was) {
		for (uint32_t i = 0; i < q->nr_watched; i++)
			if (q->watched[i] == idx) {
				q->watched[i] = q->watched[--q->nr_watched];
				break;
			}
	}
	return true;
}

/* A record per watched word whose value moved since its last record. A full
 * ring leaves it for the next loop (the record then spans every change). */
static unsigned scan_words(struct poller *p, struct broker_queue *q, uint64_t ts)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < q->nr_watched; i++) {
		uint32_t idx = q->watched[i];
		struct broker_word *w = &q->watch[idx];
		/* Acquire: what the storer wrote before the word is visible to
		 * the consumer that reads this record (through R1/A1). */
		uint32_t v = onering_atomic_load(&q->words[idx], onering_mo_acquire);
		if (v == w->last)
			continue;
		void *slot = NULL;
		int r = onering_ring_claim(&q->evp, &slot);
		if (r < 0)
			poller_queue_fault(p, q, onering_ring_fault_str(q->evp.fault));
		if (r != 1)
			break;
		struct onering_event *e = slot;
		memset(e, 0, sizeof(*e));
		e->cookie = w->cookie;
		e->sub_gen = w->gen;
		e->kind = ONERING_EV_WORD;
		e->timestamp_ns = ts;
		e->payload.word.old_value = w->last;
		e->payload.word.new_value = v;
		e->payload.word.word_idx = idx;
		w->last = v;
		q->dirty = true;
		n++;
	}
	return n;
}

/* One request, already copied out of client memory. Returns 1 done, 0 not
 * now (leave it in the ring), -1 the client must be dropped. */
static int handle_request(struct poller *p, struct broker_queue *q,
			  const struct onering_request *req, uint64_t ts)
{
	uint16_t flags_ok = req->op == ONERING_REQ_TIMER_ARM
				    ? (uint16_t)(ONERING_TIMER_ABSTIME | ONERING_TIMER_REALTIME)
				    : 0;
	if (req->op > ONERING_REQ_OP_MAX || (req->flags & ~flags_ok))
		return -1;
	if (req->op == ONERING_REQ_NOP)
		return 1;
	if (req->op == ONERING_REQ_POST)
		return handle_post(p, q, req, ts);
	if (req->op == ONERING_REQ_WORD_WATCH)
		return word_watch(p, q, req) ? 1 : -1;
	struct broker_sub *s = broker_registry_lookup(&p->b->reg,
						      broker_sub_key(req->sub_id, req->sub_gen));
	if (!s) {
		broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
		return 1;
	}
	/* Any queue of the owning client may ask (a thread pool re-arms from
	 * the worker that took the record); nobody else. The owner pointer is
	 * immutable while s is visible. */
	if (s->queue->client != q->client)
		return -1;
	if (s->home != p)
		return group_forward_request(p, s->home, q, req) ? 1 : 0;
	return poller_apply_request(p, q, req) ? 1 : -1;
}

static unsigned drain_requests(struct poller *p, struct broker_queue *q, uint64_t ts)
{
	const void *first = NULL;
	int n = onering_ring_peek(&q->sqc, &first, REQUEST_BATCH);
	int done = 0;

	if (n < 0) {
		poller_queue_fault(p, q, onering_ring_fault_str(q->sqc.fault));
		return 0;
	}
	for (; done < n; done++) {
		struct onering_request req;
		/* Copy out first: the client may change the slot under us. */
		memcpy(&req, (const struct onering_request *)first + done, sizeof(req));
		int r = handle_request(p, q, &req, ts);
		if (r == 0)
			break;
		if (r < 0) {
			broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
			poller_queue_fault(p, q, "malformed submission-ring request");
			break;
		}
	}
	if (done > 0) {
		onering_ring_release(&q->sqc, (uint32_t)done);
		broker_count(&q->ctr[ONERING_QC_REQUESTS], (uint64_t)done);
	}
	return (unsigned)done;
}

static void harvest(struct poller *p, const struct epoll_event *evs, int n, uint64_t ts)
{
	for (int i = 0; i < n; i++) {
		uint64_t key = evs[i].data.u64;
		if (key == 0) { /* kicked: by a client's request, or to stop */
			eventfd_t v;
			eventfd_read(p->kick_fd, &v);
			broker_count(&p->ctr[ONERING_PC_KICKS], 1);
			continue;
		}
		struct broker_sub *s = broker_registry_lookup(&p->b->reg, key);
		if (!s || broker_sub_dead(s))
			continue;
		struct broker_queue *q = s->queue; /* the owner */
		if (onering_atomic_load(&q->state, onering_mo_acquire) != BROKER_QUEUE_LIVE)
			continue;
		if (s->group)
			group_deliver_sub(p, s, evs[i].events, ts);
		else
			deliver(p, q, s, evs[i].events, 1, ts); /* its own queue, served here */
	}
}

/* Walk the queues: pending, requests, publish, wake. Returns work done. */
static unsigned walk_queues(struct poller *p, uint64_t ts)
{
	struct broker_queue *q;
	unsigned work = 0, published = 0, nr_queues = 0;

	cds_list_for_each_entry_rcu(q, &p->queues, poller_node) {
		BROKER_TSAN_OBSERVE(q);
		if (onering_atomic_load(&q->state, onering_mo_acquire) != BROKER_QUEUE_LIVE)
			continue;
		nr_queues++;
		if (q->pending_head)
			work += flush_pending(p, q, ts);
		work += drain_requests(p, q, ts);
		if (q->nr_watched)
			work += scan_words(p, q, ts);
		if (!q->dirty)
			continue;
		q->dirty = false;
		uint64_t before = q->evp.published_pos;
		onering_ring_publish(&q->evp);
		uint64_t n = q->evp.published_pos - before;
		broker_count(&q->ctr[ONERING_QC_PUBLISHED], n);
		published += (unsigned)n;
		if (onering_doorbell_ring(q->db))
			broker_count(&q->ctr[ONERING_QC_WAKES], 1);
	}
	broker_count(&p->ctr[ONERING_PC_PUBLISHED], published);
	onering_atomic_store(&p->ctr[ONERING_PC_QUEUES], nr_queues, onering_mo_relaxed);
	return work + published;
}

/* Set or clear NEED_WAKEUP in every live queue this poller serves. */
static void set_need_wakeup(struct poller *p, uint32_t flags)
{
	struct broker_queue *q;

	cds_list_for_each_entry_rcu(q, &p->queues, poller_node) {
		BROKER_TSAN_OBSERVE(q);
		if (onering_atomic_load(&q->state, onering_mo_acquire) == BROKER_QUEUE_LIVE)
			onering_atomic_store(&q->ectl->poller_flags, flags, onering_mo_relaxed);
	}
}

/*
 * Before an idle sleep: announce it, then a full fence, then look at every
 * submission ring once more. A client that enqueued before seeing the flag
 * is found here; one that enqueues after it sees the flag and kicks.
 * Returns false when a request is already waiting (do not sleep).
 */
static bool announce_sleep(struct poller *p)
{
	struct broker_queue *q;

	p->sleeps++;
	set_need_wakeup(p, ONERING_POLLER_NEED_WAKEUP | p->sleeps << ONERING_POLLER_SLEEP_SHIFT);
	onering_atomic_store(&p->sleeping, 1, onering_mo_relaxed);
	/* Pairs with the fence in the client's submit after its R1, and with
	 * the one in poller_kick_if_sleeping after another poller's hand-off. */
	onering_fence(onering_mo_seq_cst);
	if (!group_lanes_empty(p))
		return false;
	cds_list_for_each_entry_rcu(q, &p->queues, poller_node) {
		BROKER_TSAN_OBSERVE(q);
		if (onering_atomic_load(&q->state, onering_mo_acquire) == BROKER_QUEUE_LIVE &&
		    onering_ring_consumer_count(&q->sqc) != 0)
			return false;
	}
	return true;
}

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	struct broker *b = p->b;
	struct epoll_event evs[HARVEST_BATCH];
	uint64_t idle_since = 0;

	/* Timer expiries need sleeps cut to the microsecond, not the default
	 * 50 us of slack. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	int r = onering_topo_pin_thread(b->topo, p->cpu);
	if (r < 0)
		onering_log(ONERING_LOG_WARN, "poller %u: cannot pin to cpu %d: %s", p->idx,
			    p->cpu, strerror(-r));
	urcu_qsbr_register_thread();
	broker_nic_thread_start(p);
	while (!onering_atomic_load(&p->stop, onering_mo_acquire)) {
		BROKER_TSAN_QUIESCENT();
		urcu_qsbr_quiescent_state();
		p->loop_no++;
		/* Acquire: pairs with broker_pollers_settle's release; this loop's
		 * decisions see the settings stored before that seq. */
		uint64_t settle = onering_atomic_load(&b->settle_seq, onering_mo_acquire);
		uint64_t ts = now_ns();
		unsigned packets = p->nr_rxqs ? broker_nic_poll(p, ts) : 0;
		/* While packets keep coming, ask epoll one loop in 16: a loop is
		 * a burst of packets, and the system call costs as much as half
		 * a burst. */
		int n = packets && (p->loop_no & 15) ? 0
						     : epoll_wait(p->epfd, evs, HARVEST_BATCH, 0);
		if (n > 0) {
			harvest(p, evs, n, ts);
			broker_count(&p->ctr[ONERING_PC_EVENTS], (uint64_t)n);
		}
		unsigned work = group_poll(p, ts) + packets + timers_fire(p, ts);
		work += walk_queues(p, ts) + (n > 0 ? (unsigned)n : 0);
		broker_count(&p->ctr[ONERING_PC_LOOPS], 1);
		if (settle != p->settled_seen) {
			/* Release: pairs with broker_pollers_settle's acquire; a whole
			 * loop (backlogs, lanes, publish) ran under settle. */
			onering_atomic_store(&p->settled, settle, onering_mo_release);
			p->settled_seen = settle;
		}
		if (work) {
			idle_since = 0;
			continue;
		}
		if (idle_since == 0) {
			idle_since = ts;
			continue;
		}
		/* NIC queues do not wake epoll: a poller that has some never sleeps. */
		if (b->cfg.idle_sleep_ms < 0 || p->nr_rxqs || ts - idle_since < b->cfg.idle_spin_ns) {
			onering_cpu_relax();
			continue;
		}
		/* Idle: block until a source fires, a client kicks (it has put
		 * a request on a submission ring) or the sleep ends. */
		if (!announce_sleep(p)) {
			onering_atomic_store(&p->sleeping, 0, onering_mo_relaxed);
			set_need_wakeup(p, 0);
			continue;
		}
		BROKER_TSAN_QUIESCENT();
		urcu_qsbr_thread_offline();
		/* No longer than the next timer (ns precision: epoll_pwait2). */
		uint64_t sleep_ns = (uint64_t)b->cfg.idle_sleep_ms * 1000000ull;
		uint64_t next = timers_next(p, now_ns());
		if (next < sleep_ns)
			sleep_ns = next;
		struct timespec tmo = {.tv_sec = (time_t)(sleep_ns / 1000000000ull),
				       .tv_nsec = (long)(sleep_ns % 1000000000ull)};
		n = epoll_pwait2(p->epfd, evs, HARVEST_BATCH, &tmo, NULL);
		urcu_qsbr_thread_online();
		set_need_wakeup(p, 0);
		broker_count(&p->ctr[ONERING_PC_SLEEPS], 1);
		onering_atomic_store(&p->sleeping, 0, onering_mo_relaxed);
		ts = now_ns();
		if (n > 0) {
			harvest(p, evs, n, ts);
			broker_count(&p->ctr[ONERING_PC_EVENTS], (uint64_t)n);
		}
		if (n > 0 || timers_fire(p, ts)) {
			group_poll(p, ts);
			walk_queues(p, ts);
			idle_since = 0;
		}
	}
	broker_nic_thread_stop(p);
	BROKER_TSAN_QUIESCENT();
	urcu_qsbr_unregister_thread();
	return NULL;
}

int poller_start(struct poller *p)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
	int r;

	CDS_INIT_LIST_HEAD(&p->queues);
	cds_wfcq_init(&p->redeliver_head, &p->redeliver_tail);
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->epfd < 0 || p->kick_fd < 0)
		return -errno;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->kick_fd, &ev) < 0)
		return -errno;
	onering_atomic_store(&p->ctr[ONERING_PC_CPU], (uint64_t)p->cpu, onering_mo_relaxed);
	r = pthread_create(&p->thread, NULL, poller_main, p);
	if (r)
		return -r;
	p->started = true;
	return 0;
}

void poller_kick(struct poller *p)
{
	eventfd_write(p->kick_fd, 1);
}

void broker_pollers_settle(struct broker *b)
{
	uint64_t seq = onering_atomic_load(&b->settle_seq, onering_mo_relaxed) + 1;
	uint64_t deadline = now_ns() + 1000ull * 1000 * 1000;

	/* Release: pairs with the acquire at the top of each poller's loop. */
	onering_atomic_store(&b->settle_seq, seq, onering_mo_release);
	for (unsigned i = 0; i < b->cfg.plan.nr_pollers; i++)
		if (b->pollers[i].started)
			poller_kick(&b->pollers[i]); /* a sleeping one runs a loop now */
	for (unsigned i = 0; i < b->cfg.plan.nr_pollers; i++) {
		struct poller *p = &b->pollers[i];
		/* Acquire: pairs with the poller's release after its loop. */
		while (p->started && onering_atomic_load(&p->settled, onering_mo_acquire) < seq) {
			if (now_ns() > deadline) {
				onering_log(ONERING_LOG_WARN, "poller %u has not finished a loop in 1 s: "
					    "it may still decide with the old group settings", i);
				return;
			}
			struct timespec pause = {0, 20 * 1000};
			nanosleep(&pause, NULL);
		}
	}
}

void poller_kick_if_sleeping(struct poller *p)
{
	onering_fence(onering_mo_seq_cst);
	if (onering_atomic_load(&p->sleeping, onering_mo_relaxed))
		eventfd_write(p->kick_fd, 1);
}

void poller_stop(struct poller *p)
{
	if (p->started) {
		onering_atomic_store(&p->stop, 1, onering_mo_release);
		poller_kick(p);
		pthread_join(p->thread, NULL);
		p->started = false;
	}
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->kick_fd >= 0)
		close(p->kick_fd);
	p->epfd = p->kick_fd = -1;
	timers_fini(p);
}
