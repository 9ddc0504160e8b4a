/* SPDX-License-Identifier: MIT */
/*
 * Submission rings: every live queue of this poller, drained in bursts.
 * Each request is copied out of client memory before it is looked at (the
 * client may change the slot meanwhile) and handed to request.c; the ring
 * handle validates the client's tail (shm/ring.h A1). A request that cannot
 * be done now (a full backlog, a full lane) stays in the ring and stops the
 * burst: back-pressure on the client.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/queue.h"
#include "broker/request.h"
#include "broker/source.h"

#define REQUEST_BATCH 32

static unsigned drain_requests(struct poller *p, struct broker_queue *q, uint64_t ts)
{
	const void *first = NULL;
	int n = onering_ring_peek(&q->sqc, &first, REQUEST_BATCH); /* A1 (shm/ring.h) */
	int done = 0;

	if (n < 0) {
		deliver_queue_fault(p, q, onering_ring_fault_str(q->sqc.fault));
		return 0;
	}
	for (; done < n; done++) {
		struct onering_request req;
		/* Copy out first: the client may change the slot under us. */
		memcpy(&req, (const struct onering_request *)first + done, sizeof(req));
		int r = broker_request_handle(p, q, &req, ts);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
			deliver_queue_fault(p, q, "malformed submission-ring request");
			break;
		}
	}
	if (done > 0) {
		onering_ring_release(&q->sqc, (uint32_t)done); /* R2 (shm/ring.h) */
		broker_count(&q->ctr[ONERING_QC_REQUESTS], (uint64_t)done);
	}
	return (unsigned)done;
}

static unsigned submit_poll(struct broker_source *src, const struct broker_poll_ctx *ctx)
{
	struct broker_queue *q;
	unsigned n = 0;

	cds_list_for_each_entry_rcu(q, &src->p->queues, poller_node) {
		BROKER_TSAN_OBSERVE(q);
		/* A5 (deliver.c): the queue's state word. */
		if (onering_atomic_load(&q->state, onering_mo_acquire) == BROKER_QUEUE_LIVE)
			n += drain_requests(src->p, q, ctx->now_ns);
	}
	return n;
}

/* After the poller announced sleep (its F2): a client that enqueued before
 * seeing NEED_WAKEUP is found here; one that enqueues after it sees the
 * flag and kicks (the fence in the client's submit after its R1). */
static bool submit_has_work(struct broker_source *src)
{
	struct broker_queue *q;

	cds_list_for_each_entry_rcu(q, &src->p->queues, poller_node) {
		BROKER_TSAN_OBSERVE(q);
		if (onering_atomic_load(&q->state, onering_mo_acquire) == BROKER_QUEUE_LIVE &&
		    onering_ring_consumer_count(&q->sqc) != 0)
			return true;
	}
	return false;
}

static const struct broker_source_ops submit_ops = {
	.name = "submit",
	.poll = submit_poll,
	.has_work = submit_has_work,
	.destroy = broker_source_free,
};

int broker_source_submit_create(struct poller *p, struct broker_source **out)
{
	*out = broker_source_alloc(p, &submit_ops, sizeof(struct broker_source));
	return *out ? 0 : -ENOMEM;
}
