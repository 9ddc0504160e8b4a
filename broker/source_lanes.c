/* SPDX-License-Identifier: MIT */
/*
 * Work other threads hand to this poller:
 *   - hand-offs from other pollers (lane.h): records for queues this
 *     poller serves, requests on subscriptions homed here;
 *   - redelivery batches from the control thread: the unconsumed records
 *     of a dead group member, for its group again (a wait-free queue;
 *     the control thread kicks the poller after enqueueing).
 * A hand-off whose queue is gone or left its group is decided again by
 * the group; one whose group ended is dropped, and said so.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/group.h"
#include "broker/lane.h"
#include "broker/queue.h"
#include "broker/request.h"
#include "broker/source.h"
#include "shm/log.h"

/* The flow key of a record: the posted flow, else its source. */
static uint64_t record_flow(const struct onering_event *e)
{
	return e->kind == ONERING_EV_USER ? e->payload.user.flow : e->sub_id;
}

static void handoff_rerouted(struct poller *p, const struct broker_handoff *h,
			     const struct onering_event *rec)
{
	/* The queue left its group: the group decides again. */
	struct broker_group *g = broker_group_by_id(p->b, h->group_id);

	if (h->flow) /* never reaches its queue: release the flow (as R3 in deliver.c) */
		onering_atomic_fetch_add(&h->flow->placed, 1, onering_mo_release);
	if (g)
		deliver_requeue(p, g, rec, h->flow_key);
	else /* its group ended with its last member meanwhile */
		onering_log(ONERING_LOG_NOTICE, "group %u ended: a record handed to it is dropped",
			    h->group_id);
}

/* Hand-offs from one other poller. */
static unsigned drain_lane(struct poller *p, struct broker_lane *l)
{
	const struct broker_handoff *h;
	const void *body;
	unsigned done = 0;

	while (broker_lane_peek(l, &h, &body) == 1) {
		struct broker_queue *q = broker_queue_lookup(p->b, h->qslot, h->qid);
		/* A5 (deliver.c): the queue's state word. */
		bool live = q && onering_atomic_load(&q->state, onering_mo_acquire) ==
					 BROKER_QUEUE_LIVE;

		if (h->kind == BROKER_HANDOFF_REQUEST) {
			int r = live ? broker_request_apply(p, q, body) : 0;
			if (r == -EAGAIN)
				break; /* back-pressure (a stream SEND): the lane waits */
			if (r < 0)
				deliver_queue_fault(p, q, "malformed submission-ring request");
		} else if (live && q->poller == p) {
			if (deliver_handoff(p, q, body, h->flow) == -EAGAIN)
				break; /* full: the lane waits for its consumer */
		} else {
			handoff_rerouted(p, h, body);
		}
		broker_lane_done(l);
		done++;
	}
	broker_lane_flush(l);
	return done;
}

static unsigned drain_redeliveries(struct poller *p)
{
	struct cds_wfcq_node *node;
	unsigned work = 0;

	while ((node = __cds_wfcq_dequeue_blocking(&p->redeliver_head, &p->redeliver_tail))) {
		struct broker_redeliver *batch = caa_container_of(node, struct broker_redeliver, node);
		BROKER_TSAN_OBSERVE(batch);
		struct broker_group *g = broker_group_by_id(p->b, batch->group_id);
		if (!g) /* it ended with its last member: nobody is left to take them */
			onering_log(ONERING_LOG_NOTICE, "group %u ended: %u records of a dead member "
				    "are dropped", batch->group_id, batch->n);
		for (uint32_t i = 0; g && i < batch->n; i++)
			deliver_requeue(p, g, &batch->recs[i], record_flow(&batch->recs[i]));
		free(batch);
		work++;
	}
	return work;
}

static unsigned lanes_poll(struct broker_source *src, const struct broker_poll_ctx *ctx)
{
	struct poller *p = src->p;
	unsigned work = 0, np = p->b->cfg.plan.nr_pollers;

	(void)ctx;
	if (np > 1)
		for (unsigned from = 0; from < np; from++)
			if (from != p->idx)
				work += drain_lane(p, broker_lane(p->b, from, p->idx));
	return work + drain_redeliveries(p);
}

/* After the poller announced sleep (F2): F1 in lane.c pairs with it. */
static bool lanes_has_work(struct broker_source *src)
{
	struct poller *p = src->p;
	unsigned np = p->b->cfg.plan.nr_pollers;

	for (unsigned from = 0; from < np; from++)
		if (from != p->idx && !broker_lane_empty(broker_lane(p->b, from, p->idx)))
			return true;
	return false;
}

static const struct broker_source_ops lanes_ops = {
	.name = "lanes",
	.poll = lanes_poll,
	.has_work = lanes_has_work,
	.destroy = broker_source_free,
};

int broker_source_lanes_create(struct poller *p, struct broker_source **out)
{
	*out = broker_source_alloc(p, &lanes_ops, sizeof(struct broker_source));
	return *out ? 0 : -ENOMEM;
}
