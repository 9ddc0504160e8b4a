/* SPDX-License-Identifier: MIT */
/*
 * Requests from submission rings, routed (see request.h): posts to
 * deliver, word watches to the word source, subscription changes to the
 * source that owns the subscription (by its ops table) - here, or on its
 * home poller by lane. Everything read here was copied out of client memory
 * first and is checked before use.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>

#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/group.h"
#include "broker/lane.h"
#include "broker/queue.h"
#include "broker/request.h"
#include "broker/source.h"
#include "broker/stream.h"
#include "shm/log.h"

/*
 * The group a POST from q names, if q's client may post to it: 0 and *out,
 * or -ENOENT (no such group, or no longer), -EACCES (not allowed). The one
 * place that decides whether a post has somewhere to go.
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
 * (-EAGAIN), as a post to a full backlog does.
 */
static int post_refuse(struct poller *p, struct broker_queue *q, const struct onering_request *req,
		       uint64_t ts, int status)
{
	struct onering_event e;

	memset(&e, 0, sizeof(e));
	e.cookie = req->user_data;
	e.kind = ONERING_EV_CONTROL;
	e.timestamp_ns = ts;
	e.payload.control.code = ONERING_CTL_POST_REFUSED;
	e.payload.control.arg = req->sub_id;
	e.payload.control.status = status;
	e.payload.control.flow = req->arg[0];
	int r = deliver_to_queue(p, q, &e);
	if (r == -EAGAIN)
		return r;
	if (r == 0) /* several pollers count here: an atomic add (a rare path) */
		onering_atomic_fetch_add(&p->b->ctr[ONERING_BC_POSTS_REFUSED], 1,
					 onering_mo_relaxed);
	return 0; /* placed, or q faulted (then nothing more is served) */
}

/* The most posts handled as one burst (a submission burst's size). */
#define POST_BURST 32u

/* A request's first 8 bytes: op, flags and sub_id (the group of a POST). */
static uint64_t post_key(const struct onering_request *req)
{
	uint64_t key;

	ONERING_STATIC_ASSERT(offsetof(struct onering_request, sub_id) == 4 &&
				      sizeof(req->sub_id) == 4,
			      "op, flags and sub_id fill the first 8 bytes");
	memcpy(&key, req, sizeof(key));
	return key;
}

unsigned broker_request_post_run(const struct onering_request *reqs, unsigned n)
{
	const struct onering_request *first = &reqs[0];
	unsigned k = 1;

	if (n == 0 || first->op != ONERING_REQ_POST || (first->flags & ~ONERING_POST_PRIO_MASK))
		return 0;
	uint64_t key = post_key(first);
	if (n > POST_BURST)
		n = POST_BURST;
	while (k < n && post_key(&reqs[k]) == key)
		k++;
	return k;
}

/* User events for a group (ABI 1.2). */
unsigned broker_request_posts(struct poller *p, struct broker_queue *q,
			      const struct onering_request *reqs, unsigned n, uint64_t ts)
{
	struct onering_event recs[POST_BURST];
	struct broker_group *g;
	unsigned done = 0;

	if (n > POST_BURST)
		n = POST_BURST;
	int r = post_target(p, q, reqs[0].sub_id, &g);
	if (r < 0) {
		while (done < n && post_refuse(p, q, &reqs[done], ts, r) == 0)
			done++;
		return done;
	}
	/* The client's number, clamped: never more than the highest level. */
	uint32_t prio = reqs[0].flags & ONERING_POST_PRIO_MASK;
	if (prio >= ONERING_PRIO_LEVELS)
		prio = ONERING_PRIO_LEVELS - 1;
	/* The flow and the 24 bytes are arg[0..3] as they lie: one copy. */
	ONERING_STATIC_ASSERT(sizeof(struct onering_event_user) == 4 * sizeof(uint64_t) &&
				      offsetof(struct onering_event_user, data) == sizeof(uint64_t),
			      "payload.user is arg[0..3] of a POST");
	for (unsigned i = 0; i < n; i++) {
		struct onering_event *rec = &recs[i];
		rec->cookie = reqs[i].user_data;
		rec->sub_id = 0;
		rec->sub_gen = 0;
		rec->kind = ONERING_EV_USER;
		rec->flags = (uint16_t)(prio << ONERING_EVF_PRIO_SHIFT);
		rec->events = reqs[i].events;
		rec->timestamp_ns = ts;
		memcpy(&rec->payload.user, &reqs[i].arg[0], sizeof(rec->payload.user));
	}
	/* A full backlog leaves the rest in the poster's ring: back-pressure. */
	return deliver_post_burst(p, g, recs, n);
}

/* s is deleted, on its home poller: no event of it is delivered any more;
 * the control thread unpublishes it, closes its fd and frees it after a
 * grace period. */
void broker_sub_delete(struct poller *p, struct broker_sub *s)
{
	/* Once: a completion-mode subscription the control thread failed to
	 * arm may be ended there at the same time (accept.c). */
	if (onering_atomic_exchange(&s->dead, 1u, onering_mo_relaxed) != 0)
		return;
	deliver_sub_forget(s);
	cds_wfcq_node_init(&s->reap_node);
	BROKER_TSAN_PUBLISH(s);
	cds_wfcq_enqueue(&p->b->reap_head, &p->b->reap_tail, &s->reap_node);
	if (eventfd_write(p->b->reap_fd, 1) < 0) {
		broker_count(&p->ctr[ONERING_PC_SYSCALL_ERRORS], 1);
		onering_log(ONERING_LOG_ERR, "poller %u: cannot wake the control thread to free "
			    "sub %u: %s", p->idx, s->id, strerror(errno));
	}
}

/* A request on subscription s (live), homed on p, which came on q. */
static int apply_sub(struct poller *p, struct broker_queue *q, struct broker_sub *s,
		     const struct onering_request *req)
{
	bool timer = s->kind == ONERING_EV_TIMER;
	bool stream_op = req->op == ONERING_REQ_SEND || req->op == ONERING_REQ_CLOSE;
	if (s->kind == ONERING_EV_STREAM) {
		/* Completion mode (stream.c): SEND, CLOSE and DEL; no re-arm or
		 * MOD (the broker keeps its own readiness). */
		if (!stream_op && req->op != ONERING_REQ_DEL) {
			broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
			return 0;
		}
		int r = broker_stream_request(p, q, s, req);
		if (req->op == ONERING_REQ_DEL)
			broker_sub_delete(p, s);
		return r;
	}
	if (stream_op) { /* a stream op on another kind */
		broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
		return 0;
	}
	struct broker_source *src = p->source[timer ? BROKER_SOURCE_TIMERS : BROKER_SOURCE_FDS];
	if (!src || !src->ops->apply_request)
		return -EPROTO; /* not reached: both kinds exist on every poller */
	if (req->op == ONERING_REQ_DEL) {
		int r = src->ops->apply_request(src, q, s, req); /* its own resources */
		broker_sub_delete(p, s);
		return r;
	}
	if ((req->op == ONERING_REQ_TIMER_ARM) != timer) {
		/* A timer op on a source, or a source op on a timer. */
		broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
		return 0;
	}
	return src->ops->apply_request(src, q, s, req);
}

int broker_request_apply(struct poller *p, struct broker_queue *q,
			 const struct onering_request *req)
{
	struct broker_sub *s = broker_registry_lookup(&p->b->reg,
						      broker_sub_key(req->sub_id, req->sub_gen));

	if (!s || broker_sub_dead(s)) {
		/* Deleted meanwhile, or an id reused since: harmless, counted. */
		broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
		return 0;
	}
	return apply_sub(p, q, s, req);
}

int broker_request_handle(struct poller *p, struct broker_queue *q,
			  const struct onering_request *req, uint64_t ts)
{
	uint16_t flags_ok = req->op == ONERING_REQ_TIMER_ARM
				    ? (uint16_t)(ONERING_TIMER_ABSTIME | ONERING_TIMER_REALTIME)
			    : req->op == ONERING_REQ_POST ? (uint16_t)ONERING_POST_PRIO_MASK
			    : req->op == ONERING_REQ_SEND ? (uint16_t)ONERING_SEND_TO
			    : req->op == ONERING_REQ_CLOSE
				    ? (uint16_t)(ONERING_CLOSE_WRITE | ONERING_CLOSE_ABORT)
				    : 0;
	if (req->op > ONERING_REQ_OP_MAX || (req->flags & ~flags_ok))
		return -EPROTO;
	if (req->op == ONERING_REQ_NOP)
		return 0;
	if (req->op == ONERING_REQ_POST)
		return broker_request_posts(p, q, req, 1, ts) == 1 ? 0 : -EAGAIN;
	if (req->op == ONERING_REQ_STREAM_DONE) /* buffers of q itself */
		return broker_stream_request(p, q, NULL, req);
	if (req->op == ONERING_REQ_WORD_WATCH) {
		struct broker_source *w = p->source[BROKER_SOURCE_WORDS];
		return w ? w->ops->apply_request(w, q, NULL, req) : -EPROTO;
	}
	struct broker_sub *s = broker_registry_lookup(&p->b->reg,
						      broker_sub_key(req->sub_id, req->sub_gen));
	if (!s) {
		broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
		return 0;
	}
	/* Any queue of the owning client may ask (a thread pool re-arms from
	 * the worker that took the record); nobody else. The owner pointer is
	 * immutable while s is visible. */
	if (s->queue->client != q->client)
		return -EPROTO;
	/* A connection's requests come from its own queue: the stream area
	 * and the back-pressure on its records (a SEND waits in that queue's
	 * ring while they wait for space) are that queue's. From another
	 * queue a waiting SEND would hold a lane to its home poller, or keep
	 * the poller setting the other queue's bell: a spin. Counted. */
	if (s->kind == ONERING_EV_STREAM && s->queue != q) {
		broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
		return 0;
	}
	if (s->home != p) {
		struct broker_handoff h = {.kind = BROKER_HANDOFF_REQUEST, .qslot = q->slot,
					   .qid = q->id};
		return broker_lane_send(p, s->home, &h, req); /* 0, or -EAGAIN: full */
	}
	if (broker_sub_dead(s)) {
		broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
		return 0;
	}
	return apply_sub(p, q, s, req); /* s found once: no second lookup */
}
