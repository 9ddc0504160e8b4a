/* SPDX-License-Identifier: MIT */
/*
 * Consumer queues on the broker side: their two memfd segments, the ring
 * handles the poller uses, and their teardown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "broker/accept.h"
#include "broker/stream.h"
#include "broker/bells.h"
#include "broker/broker.h"
#include "broker/queue.h"
#include "broker/group.h"
#include "numa/placement.h"
#include "shm/doorbell.h"
#include "shm/log.h"

int broker_queue_levels_init(struct broker_queue *q, uint32_t nr_levels,
			     struct onering_levels_ctl *lctl, ONERING_ATOMIC(uint64_t) *head_words,
			     unsigned char *slots)
{
	uint32_t cap = q->evp.capacity;

	if (nr_levels == 0 || nr_levels > ONERING_PRIO_LEVELS)
		return -EINVAL;
	q->top_level = nr_levels - 1;
	q->lctl = nr_levels > 1 ? lctl : NULL;
	for (uint32_t k = 1; k < nr_levels; k++) {
		struct broker_level *lv = &q->hi[k - 1];
		onering_ring_shared_init(&lctl->level_tail_pos[k - 1], &head_words[k - 1], 0);
		if (onering_ring_producer_init(&lv->evp, &lctl->level_tail_pos[k - 1],
					       &head_words[k - 1],
					       slots + (uint64_t)(k - 1) * cap * ONERING_RING_SLOT_SIZE,
					       cap, 0) < 0)
			return -EINVAL;
		lv->pending_head = NULL;
		lv->pending_tail = &lv->pending_head;
	}
	return 0;
}

int broker_queue_create(struct broker *b, struct broker_client *c, uint32_t ev_capacity,
			uint32_t sq_capacity, uint32_t pkt_stride, uint32_t nr_words, uint32_t nr_levels,
			const struct broker_stream_geom *sg, uint32_t node, struct broker_queue **out)
{
	/* Cache-line aligned: its fields are grouped by writer (queue.h); the
	 * size rounded up to whole lines, as aligned_alloc requires. */
	const size_t size = (sizeof(struct broker_queue) + ONERING_CACHE_LINE - 1) &
			    ~(size_t)(ONERING_CACHE_LINE - 1);
	struct broker_queue *q = aligned_alloc(ONERING_CACHE_LINE, size);
	unsigned flags = b->cfg.no_hugetlb ? ONERING_SEG_NO_HUGETLB : 0;
	char name[64];
	int r;

	if (!q)
		return -ENOMEM;
	memset(q, 0, size);
	q->id = ++b->next_queue_id;
	q->client = c;
	q->cred = &c->cred;
	q->owner_pid = c->pid;
	q->node = node;
	q->ev_seg.fd = q->cons_seg.fd = -1;
	/* The consumer's bell (shm/doorbell.h): ours, never blocks. */
	q->bell_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->bell_fd < 0) {
		r = -errno;
		free(q);
		return r;
	}
	CDS_INIT_LIST_HEAD(&q->subs);
	cds_wfcq_node_init(&q->fault_node);

	snprintf(name, sizeof(name), "onering-%s-q%u-events", b->cfg.name, q->id);
	r = onering_seg_create(&q->ev_seg, name, ONERING_SEG_EVENTS,
			       onering_events_seg_size(ev_capacity) + (uint64_t)ev_capacity * pkt_stride +
				       onering_events_levels_size(ev_capacity, nr_levels),
			       node, b->epoch,
			       onering_numa_placement(), flags);
	if (r < 0)
		goto fail;
	snprintf(name, sizeof(name), "onering-%s-q%u-consumer", b->cfg.name, q->id);
	uint64_t stream_bytes = sg->rx ? (uint64_t)(sg->rx + sg->tx) * sg->buf : 0;
	r = onering_seg_create(&q->cons_seg, name, ONERING_SEG_CONSUMER,
			       stream_bytes ? onering_stream_offset(sq_capacity, nr_words) + stream_bytes
					    : onering_words_offset(sq_capacity) + 4ull * nr_words,
			       node, b->epoch, onering_numa_placement(), flags);
	if (r < 0)
		goto fail;

	char *ev = q->ev_seg.base, *cons = q->cons_seg.base;
	q->ectl = (struct onering_events_ctl *)(ev + ONERING_EVENTS_CTL_OFFSET);
	q->cctl = (struct onering_consumer_ctl *)(cons + ONERING_CONSUMER_CTL_OFFSET);
	q->db = (struct onering_doorbell *)(cons + ONERING_DOORBELL_OFFSET);
	struct onering_sq_ctl *sqctl = (struct onering_sq_ctl *)(cons + ONERING_SQ_CTL_OFFSET);

	/* Both rings start at 0; the broker's handles take geometry from here, not
	 * from what the client may later scribble into its segment. */
	q->ectl->ev_capacity = ev_capacity;
	q->ectl->sq_capacity = sq_capacity;
	if (nr_words) {
		q->ectl->nr_words = nr_words;
		q->ectl->words_offset = onering_words_offset(sq_capacity);
		q->words = (const ONERING_ATOMIC(uint32_t) *)(cons + q->ectl->words_offset);
		q->nr_words = nr_words;
		q->watch = calloc(nr_words, sizeof(*q->watch));
		q->watched = calloc(nr_words, sizeof(*q->watched));
		if (!q->watch || !q->watched) {
			r = -ENOMEM;
			goto fail;
		}
	}
	if (stream_bytes) {
		r = broker_streams_create((unsigned char *)cons,
					  onering_stream_offset(sq_capacity, nr_words), sg->rx, sg->tx,
					  sg->buf, &q->streams);
		if (r < 0)
			goto fail;
	}
	if (pkt_stride) {
		q->ectl->packet_area_offset = onering_events_pkt_offset(ev_capacity);
		q->ectl->packet_area_size = (uint64_t)ev_capacity * pkt_stride;
		q->pkt_area = (unsigned char *)ev + q->ectl->packet_area_offset;
		q->pkt_stride = pkt_stride;
	}
	onering_ring_shared_init(&q->ectl->ev_tail_pos, &q->cctl->ev_head_pos, 0);
	onering_ring_shared_init(&sqctl->sq_tail_pos, &q->ectl->sq_head_pos, 0);
	onering_doorbell_init(q->db);
	if (onering_ring_producer_init(&q->evp, &q->ectl->ev_tail_pos, &q->cctl->ev_head_pos,
				       ev + ONERING_EVENTS_SLOTS_OFFSET, ev_capacity, 0) < 0 ||
	    onering_ring_consumer_init(&q->sqc, &sqctl->sq_tail_pos, &q->ectl->sq_head_pos,
				       cons + ONERING_SQ_SLOTS_OFFSET, sq_capacity, 0) < 0) {
		r = -EINVAL;
		goto fail;
	}
	q->pending_tail = &q->pending_head;
	/* Priority levels (ABI 1.6): after the packet area. */
	uint64_t lv_off = onering_events_levels_offset(ev_capacity, q->ectl->packet_area_size);
	if (broker_queue_levels_init(q, nr_levels, (struct onering_levels_ctl *)(ev + lv_off),
				     q->cctl->level_head_pos,
				     (unsigned char *)ev + lv_off + sizeof(struct onering_levels_ctl)) < 0) {
		r = -EINVAL;
		goto fail;
	}
	q->ectl->nr_levels = nr_levels;
	onering_atomic_store(&q->ctr[ONERING_QC_CAPACITY], ev_capacity, onering_mo_relaxed);

	r = onering_seg_seal(&q->ev_seg, true); /* the client may only read events */
	if (r == 0)
		r = onering_seg_seal(&q->cons_seg, false);
	if (r < 0)
		goto fail;
	*out = q;
	return 0;
fail:
	onering_seg_destroy(&q->ev_seg);
	onering_seg_destroy(&q->cons_seg);
	close(q->bell_fd);
	free(q->watch);
	free(q->watched);
	broker_streams_free(q->streams);
	free(q);
	return r;
}

void broker_queue_begin_close(struct broker_queue *q)
{
	/* R4: pairs with every poller's A5 (see queue.h). */
	onering_atomic_store(&q->state, BROKER_QUEUE_CLOSING, onering_mo_release);
}

static void sub_free_rcu(struct rcu_head *head)
{
	struct broker_sub *s = caa_container_of(head, struct broker_sub, rcu);

	BROKER_TSAN_GRACE_DONE();
	BROKER_TSAN_OBSERVE(s);
	free(s->conn);
	free(s);
}

void broker_sub_finalize(struct broker *b, struct broker_sub *s)
{
	struct broker_queue *q = s->queue;

	if (s->kind == ONERING_EV_STREAM) /* a listener's accept stops before the close */
		broker_stream_sub_end(b, s);
	/* Delete from epoll before close: a closed fd with a live duplicate in
	 * the client would otherwise keep reporting. ENOENT: already deleted.
	 * A stopped poller (shutdown with clients attached) has no epoll set
	 * left to delete from (epfd -1). */
	if (s->fd >= 0) { /* timers have none */
		if (s->home->epfd >= 0 && epoll_ctl(s->home->epfd, EPOLL_CTL_DEL, s->fd, NULL) < 0 &&
		    errno != ENOENT) {
			/* The control thread: logged (the poller's counters have one
			 * writer, the poller). */
			onering_log(ONERING_LOG_ERR, "sub %u (fd %d): epoll_ctl(DEL): %s", s->id,
				    s->fd, strerror(errno));
		}
		if (s->kind == ONERING_EV_STREAM)
			broker_close_nolinger(s->fd); /* often the last holder: never wait out a linger */
		else
			close(s->fd); /* ours: a duplicate; close never fails in a way to act on */
		s->fd = -1;
		q->client->nr_fds--;
		onering_atomic_fetch_add(&s->home->fd_subs, UINT32_MAX, onering_mo_relaxed); /* -1 */
	}
	q->client->nr_subs--;
	broker_registry_remove(&b->reg, s);
	cds_list_del(&s->queue_node);
	broker_count(&q->ctr[ONERING_QC_SUBS], (uint64_t)-1);
	if (s->group)
		broker_group_unref(b, s->group);
	BROKER_TSAN_PUBLISH(s); /* to the call_rcu thread */
	urcu_qsbr_call_rcu(&s->rcu, sub_free_rcu);
}

static void queue_free_rcu(struct rcu_head *head)
{
	struct broker_queue *q = caa_container_of(head, struct broker_queue, rcu);

	BROKER_TSAN_GRACE_DONE();
	BROKER_TSAN_OBSERVE(q);
	onering_seg_destroy(&q->ev_seg);
	onering_seg_destroy(&q->cons_seg);
	close(q->bell_fd); /* after the grace period: no poller rings it now */
	free(q->watch);
	free(q->watched);
	broker_streams_free(q->streams);
	free(q);
}

bool broker_queue_wake(struct broker_queue *q)
{
	/* F2, R3 (shm/doorbell.h) in the claim. */
	if (!onering_doorbell_claim(q->db))
		return false;
	/* EAGAIN: the client filled its bell itself; it is readable anyway. */
	if (eventfd_write(q->bell_fd, 1) < 0 && errno != EAGAIN)
		return false;
	return true;
}

void broker_queue_teardown(struct broker *b, struct broker_queue *q)
{
	struct broker_sub *s, *tmp;

	/* A grace period has passed since CLOSING: no poller touches q now. */
	cds_list_for_each_entry_safe(s, tmp, &q->subs, queue_node)
		broker_sub_finalize(b, s);
	broker_bells_leave(q->poller, q);
	cds_list_del_rcu(&q->poller_node);
	/* R12: pairs with A15 in deliver_flush (the served-queues gauge). */
	onering_atomic_fetch_add(&q->poller->queues_gen, 1u, onering_mo_release);
	cds_list_del(&q->client_node);
	q->client->nr_queues--;
	q->client->nr_fds -= BROKER_QUEUE_FDS;
	q->client->ring_slots -= q->nr_slots;
	if (q->group) /* after its redelivery: the group may end here */
		broker_group_unref(b, q->group);
	BROKER_TSAN_PUBLISH(q); /* to the call_rcu thread */
	urcu_qsbr_call_rcu(&q->rcu, queue_free_rcu);
}

uint64_t broker_queue_consumed(const struct broker_queue *q)
{
	uint64_t n = onering_atomic_load(&q->cctl->ev_head_pos, onering_mo_relaxed);

	for (uint32_t k = 1; k <= q->top_level; k++)
		n += onering_atomic_load(&q->cctl->level_head_pos[k - 1], onering_mo_relaxed);
	return n;
}

/* Published, not released, in one ring: the words as they are now. */
static uint64_t ring_unconsumed(const ONERING_ATOMIC(uint64_t) *tail,
				const ONERING_ATOMIC(uint64_t) *head, uint32_t cap)
{
	uint64_t n = onering_atomic_load(tail, onering_mo_relaxed) -
		     onering_atomic_load(head, onering_mo_relaxed);

	return n > cap ? cap : n;
}

uint64_t broker_queue_unconsumed(const struct broker_queue *q)
{
	uint32_t cap = q->evp.capacity;
	uint64_t n = ring_unconsumed(&q->ectl->ev_tail_pos, &q->cctl->ev_head_pos, cap);

	for (uint32_t k = 1; k <= q->top_level; k++)
		n += ring_unconsumed(&q->lctl->level_tail_pos[k - 1], &q->cctl->level_head_pos[k - 1],
				     cap);
	return n;
}

struct broker_queue *broker_queue_lookup(struct broker *b, uint32_t slot, uint32_t id)
{
	if (slot >= b->cfg.max_queues)
		return NULL;
	struct broker_queue *q = rcu_dereference(b->queues[slot]);
	if (!q || q->id != id)
		return NULL;
	BROKER_TSAN_OBSERVE(q);
	return q;
}
