/* SPDX-License-Identifier: MIT */
/*
 * deliver: every record's way into a consumer's ring (see deliver.h).
 *
 * Group decisions, per record (per burst for rr/least/local packets), on
 * the poller that has the record:
 *   1. snapshot the members (struct balance_cand): unconsumed records (exact
 *      for queues this poller serves; published tail plus hand-offs in
 *      flight for the others), capacity, node, and - for the policies that
 *      go by them - the consumer's doorbell state and idle time;
 *   2. balance_choose() (balance.c, pure) picks one, or none;
 *   3. place: into the ring if this poller serves the queue, else onto the
 *      lane to the poller that does (lane.h);
 *   4. none: the record waits in this poller's slice of the group (the
 *      backlog; sources coalesce there, whole records up to backlog_max)
 *      and deliver_flush tries again every loop.
 *
 * Ordering (every other shared word here is a relaxed gauge or counter):
 *   (ring) every claim runs shm/ring.h's A2 on the consumer's head and
 *       every publish its R1; the doorbell its F2 and R3 (shm/doorbell.h).
 *   R3  place_in_ring: store-release of a sticky bucket's `placed` after
 *       its `end_pos`. Pairs with A4.
 *   A4  flow_queue: load-acquire of `placed` before reading `end_pos`
 *       (the bucket is the deciding poller's; the placing poller, another
 *       one for a lane hand-off, writes placed/end_pos).
 *   A5  the queue `state` word: load-acquire before using a queue found
 *       through a member array or a lane. Pairs with the control thread's
 *       release when it marks the queue CLOSING (broker_queue_begin_close)
 *       and with the poller's acq_rel CAS to FAULTED (deliver_queue_fault).
 *   A6  the consumer's head and doorbell words (another process): relaxed,
 *       untrusted, only compared (clamped to the capacity).
 *   A11 deliver_flush: load-acquire of b->nr_groups_pub. Pairs with R7 in
 *       broker_group_get (group.c): the group slots below it are published.
 *   Group and member pointers: rcu_dereference, paired with the control
 *   thread's rcu_assign_pointer (group.c); freed only after a grace period.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "broker/balance.h"
#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/group.h"
#include "broker/lane.h"
#include "broker/queue.h"
#include "shm/doorbell.h"
#include "shm/log.h"

/* ---- records and faults ------------------------------------------------- */

void deliver_write_record(struct onering_event *e, const struct broker_sub *s, uint32_t events,
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

void deliver_queue_fault(struct poller *p, struct broker_queue *q, const char *what)
{
	int expect = BROKER_QUEUE_LIVE;

	/* Pairs with every A5 (pollers stop serving it) and with the control
	 * thread's load in broker_queues_close (handlers.c); the enqueue below
	 * pairs with A2 in drain_faults (server.c). */
	if (!onering_atomic_cas(&q->state, &expect, BROKER_QUEUE_FAULTED, onering_mo_acq_rel,
				onering_mo_relaxed))
		return;
	onering_log(ONERING_LOG_WARN, "poller %u: queue %u of pid %d: %s; dropping the client",
		    p->idx, q->id, (int)q->owner_pid, what);
	BROKER_TSAN_PUBLISH(q);
	cds_wfcq_enqueue(&p->b->fault_head, &p->b->fault_tail, &q->fault_node);
	if (eventfd_write(p->b->reap_fd, 1) < 0)
		onering_log(ONERING_LOG_ERR, "poller %u: cannot wake the control thread: %s",
			    p->idx, strerror(errno));
}

static bool queue_live(const struct broker_queue *q)
{
	/* A5 */
	return onering_atomic_load(&q->state, onering_mo_acquire) == BROKER_QUEUE_LIVE;
}

/* A slot of q's ring (p serves q): 1 and *slot, 0 full, -EPROTO faulted. */
static int claim(struct poller *p, struct broker_queue *q, void **slot)
{
	int r = onering_ring_claim(&q->evp, slot);

	if (r < 0)
		deliver_queue_fault(p, q, onering_ring_fault_str(q->evp.fault));
	return r;
}

int deliver_to_queue(struct poller *p, struct broker_queue *q, const struct onering_event *rec)
{
	void *slot = NULL;
	int r = claim(p, q, &slot);

	if (r <= 0)
		return r < 0 ? r : -EAGAIN;
	memcpy(slot, rec, sizeof(*rec));
	q->dirty = true;
	return 0;
}

/* ---- a subscription's own queue: pending and coalescing ----------------- */

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

void deliver_sub_forget(struct broker_sub *s)
{
	struct broker_queue *q = s->queue;
	struct broker_sub **pp = &q->pending_head;

	if (s->group || !s->pending)
		return; /* a group backlog drops it when it comes up */
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

static void deliver_sub_queue(struct poller *p, struct broker_queue *q, struct broker_sub *s,
			      uint32_t events, uint32_t count, uint64_t ts)
{
	void *slot = NULL;

	if (s->pending) { /* already waiting for space: merge */
		s->pending_events |= events;
		s->pending_count += count;
		broker_count(&q->ctr[ONERING_QC_COALESCED], 1);
		return;
	}
	if (q->pending_head == NULL) { /* nobody waiting ahead of it */
		int r = claim(p, q, &slot);
		if (r == 1) {
			deliver_write_record(slot, s, events, count, ts);
			q->dirty = true;
			return;
		}
		if (r < 0)
			return;
	}
	pending_append(q, s, events, count);
}

/* Place pending records in the space the consumer gave back, oldest first. */
static unsigned flush_pending(struct poller *p, struct broker_queue *q, uint64_t ts)
{
	unsigned placed = 0;
	void *slot = NULL;

	while (q->pending_head && claim(p, q, &slot) == 1) {
		struct broker_sub *s = q->pending_head;
		q->pending_head = s->pending_next;
		if (!q->pending_head)
			q->pending_tail = &q->pending_head;
		s->pending = false;
		broker_count(&q->ctr[ONERING_QC_PENDING], (uint64_t)-1);
		deliver_write_record(slot, s, s->pending_events, s->pending_count, ts);
		q->dirty = true;
		placed++;
	}
	return placed;
}

/* ---- groups: the snapshot and the decision ------------------------------ */

/* Unconsumed records of q as poller p sees them; capacity if unusable. */
static uint64_t queue_used(struct poller *p, struct broker_queue *q)
{
	uint32_t cap = q->evp.capacity; /* immutable after creation */

	if (q->poller == p) {
		/* The consumer's head (a line its core writes) is read once per
		 * loop; later decisions in the loop use that reading and our own
		 * tail, which can only overstate what is unconsumed. */
		if (q->used_loop == p->loop_no)
			return q->evp.tail_pos - q->evp.head_cache;
		q->used_loop = p->loop_no;
		int64_t n = onering_ring_producer_count(&q->evp);
		if (n < 0) {
			deliver_queue_fault(p, q, onering_ring_fault_str(q->evp.fault));
			return cap;
		}
		return (uint64_t)n;
	}
	/* Another poller's queue: its published tail plus what is on its way,
	 * against the consumer's head (A6: untrusted, clamped). The acquire
	 * pairs with that poller's R1 on q's ring. A stale tail understates by
	 * records in flight; a head read after the consumer passed the tail we
	 * read wraps and clamps to "full" for this one decision (the safe side). */
	uint64_t tail = onering_atomic_load(&q->ectl->ev_tail_pos, onering_mo_acquire) +
			onering_atomic_load(&q->inflight, onering_mo_relaxed);
	uint64_t head = onering_atomic_load(&q->cctl->ev_head_pos, onering_mo_relaxed);
	uint64_t used = tail - head;
	return used > cap ? cap : used;
}

/* The queue a sticky flow still holds (a member, live, with a record of the
 * flow unconsumed or on its way), or NULL: free to move. */
static struct broker_queue *flow_queue(struct poller *p, struct broker_group *g,
				       struct broker_flow *f)
{
	if (f->qid == 0)
		return NULL;
	struct broker_queue *q = broker_queue_lookup(p->b, f->qslot, f->qid);
	if (!q || q->group != g || !queue_live(q)) {
		f->qid = 0;
		return NULL;
	}
	/* A4: pairs with R3 in place_in_ring: end_pos is the placed one's. */
	uint64_t placed = onering_atomic_load(&f->placed, onering_mo_acquire);
	uint64_t end = onering_atomic_load(&f->end_pos, onering_mo_relaxed);
	uint64_t head = onering_atomic_load(&q->cctl->ev_head_pos, onering_mo_relaxed); /* A6 */
	if (balance_flow_held(f->sent, placed, end, head, q->evp.capacity))
		return q;
	f->qid = 0;
	return NULL;
}

static void read_settings(struct poller *p, const struct broker_group *g,
			  struct balance_settings *s)
{
	s->policy = onering_atomic_load(&g->policy, onering_mo_relaxed);
	s->numa = onering_atomic_load(&g->numa, onering_mo_relaxed);
	s->spill_pct = onering_atomic_load(&g->spill_pct, onering_mo_relaxed);
	s->wake = onering_atomic_load(&g->wake, onering_mo_relaxed);
	s->max_running = onering_atomic_load(&g->max_running, onering_mo_relaxed);
	if (s->max_running == 0)
		s->max_running = p->b->cpu_count;
}

#define PICK_PACKETS 0x1u /* only queues this poller serves that have a packet area */

/*
 * The decision: the queue for one record of g (flow_key: the source or the
 * posted flow), or NULL when none can take it now; *flowp: the sticky
 * bucket to account the record in (or NULL); *remote: it leaves this
 * poller's node.
 */
static struct broker_queue *pick(struct poller *p, struct broker_group *g,
				 struct broker_pgroup *pg, uint64_t flow_key, unsigned flags,
				 struct broker_flow **flowp, bool *remote)
{
	struct balance_cand c[BROKER_GROUP_MAX_MEMBERS];
	struct broker_queue *cq[BROKER_GROUP_MAX_MEMBERS];
	const struct broker_members *m = rcu_dereference(g->members);
	struct balance_settings set;
	unsigned n = 0;

	*flowp = NULL;
	if (!m)
		return NULL;
	BROKER_TSAN_OBSERVE(m);
	read_settings(p, g, &set);

	if (set.policy == ONERING_POLICY_STICKY) {
		if (!pg->flows) {
			pg->flows = calloc(BROKER_FLOW_BUCKETS, sizeof(*pg->flows));
			if (!pg->flows)
				return NULL; /* retried from the backlog */
		}
		struct broker_flow *f = &pg->flows[balance_flow_bucket(flow_key)];
		struct broker_queue *q = flow_queue(p, g, f);
		if (q && (flags & PICK_PACKETS) && (q->poller != p || !q->pkt_area)) {
			/* The bucket is held by a flow of posts or sources (a hash
			 * collision) on a queue a packet may not go to - no packet
			 * area, or another poller's ring: choose among those it may,
			 * and leave that flow's account alone. */
			q = NULL;
			f = NULL;
		}
		if (q) {
			/* Stay, even when full (then wait): per-flow order and one
			 * consumer per flow at a time. */
			if (queue_used(p, q) >= q->evp.capacity)
				return NULL;
			*flowp = f;
			*remote = q->poller->node != p->node;
			return q;
		}
		*flowp = f;
	}

	bool consumers = balance_reads_consumers(set.policy);
	for (uint32_t i = 0; i < m->n && n < BROKER_GROUP_MAX_MEMBERS; i++) {
		struct broker_queue *q = m->q[i];
		if (!queue_live(q))
			continue;
		if ((flags & PICK_PACKETS) && (q->poller != p || !q->pkt_area))
			continue;
		cq[n] = q;
		c[n].cap = q->evp.capacity;
		c[n].used = queue_used(p, q);
		c[n].local = q->poller->node == p->node;
		c[n].dist = p->dist[q->poller->idx];
		/* The consumer's words (A6): read only by the policies that go
		 * by them (another core's line each). */
		c[n].state = consumers ? onering_atomic_load(&q->db->state, onering_mo_relaxed)
				       : ONERING_CONSUMER_RUNNING;
		c[n].idle_ns = consumers ? onering_atomic_load(&q->db->idle_ns, onering_mo_relaxed)
					 : 0;
		c[n].ok = true;
		n++;
	}
	int idx = balance_choose(&set, &pg->bal, c, n);
	if (idx < 0) {
		*flowp = NULL;
		return NULL;
	}
	*remote = !c[idx].local;
	return cq[idx];
}

/* ---- groups: placing ----------------------------------------------------- */

/* Is q's consumer someone other than the owner of the record's source? */
static uint16_t foreign_flag(struct poller *p, const struct onering_event *rec,
			     const struct broker_queue *q)
{
	if (rec->kind == ONERING_EV_USER)
		return 0;
	struct broker_sub *s =
		broker_registry_lookup(&p->b->reg, broker_sub_key(rec->sub_id, rec->sub_gen));
	return s && s->queue->client == q->client ? 0 : ONERING_EVF_FOREIGN;
}

/* The sticky bucket's account of a record placed at q's tail now. */
static void flow_placed(struct broker_flow *f, const struct broker_queue *q)
{
	onering_atomic_store(&f->end_pos, q->evp.tail_pos, onering_mo_relaxed);
	/* R3: pairs with A4 in flow_queue: end_pos is set. */
	onering_atomic_store(&f->placed, onering_atomic_load(&f->placed, onering_mo_relaxed) + 1,
			     onering_mo_release);
}

/* Copy rec into q, which p serves: 0, -EAGAIN full, -EPROTO faulted. */
static int place_in_ring(struct poller *p, struct broker_queue *q, const struct onering_event *rec,
			 struct broker_flow *f)
{
	void *slot = NULL;
	int r = claim(p, q, &slot);

	if (r <= 0)
		return r < 0 ? r : -EAGAIN;
	memcpy(slot, rec, sizeof(*rec));
	((struct onering_event *)slot)->flags |= foreign_flag(p, rec, q);
	q->dirty = true;
	if (rec->flags & ONERING_EVF_REDELIVERED)
		broker_count(&q->ctr[ONERING_QC_REDELIVERED], 1);
	if (f)
		flow_placed(f, q);
	return 0;
}

int deliver_handoff(struct poller *p, struct broker_queue *q, const struct onering_event *rec,
		    struct broker_flow *flow)
{
	int r = place_in_ring(p, q, rec, flow);

	if (r == 0)
		onering_atomic_fetch_add(&q->inflight, (uint64_t)-1, onering_mo_relaxed);
	return r;
}

/* Send rec to q: directly, or through the lane to q's poller. 0, or
 * -EAGAIN (full, or the lane is; -EPROTO faulted counts as that too). */
static int place(struct poller *p, struct broker_group *g, struct broker_queue *q,
		  const struct onering_event *rec, struct broker_flow *f, uint64_t flow_key,
		  bool remote)
{
	struct broker_pgroup *pg = &g->pg[p->idx];
	bool ok;

	if (f)
		f->sent++;
	if (q->poller == p) {
		ok = place_in_ring(p, q, rec, f) == 0;
	} else {
		struct broker_handoff h = {.kind = BROKER_HANDOFF_RECORD, .qslot = q->slot,
					   .qid = q->id, .group_id = g->id, .flow = f,
					   .flow_key = flow_key};
		onering_atomic_fetch_add(&q->inflight, 1, onering_mo_relaxed);
		ok = broker_lane_send(p, q->poller, &h, rec) == 0;
		if (ok)
			broker_count(&pg->ctr[ONERING_GC_HANDOFFS], 1);
		else
			onering_atomic_fetch_add(&q->inflight, (uint64_t)-1, onering_mo_relaxed);
	}
	if (!ok) {
		if (f)
			f->sent--;
		return -EAGAIN;
	}
	if (f) {
		f->qslot = q->slot;
		f->qid = q->id;
	}
	broker_count(&pg->ctr[ONERING_GC_DELIVERED], 1);
	if (remote)
		broker_count(&pg->ctr[ONERING_GC_SPILLED], 1);
	if (rec->flags & ONERING_EVF_REDELIVERED)
		broker_count(&pg->ctr[ONERING_GC_REDELIVERED], 1);
	return 0;
}

/* Try to place one record now: 0, or -EAGAIN (nobody can take it). */
static int try_place(struct poller *p, struct broker_group *g, const struct onering_event *rec,
		     uint64_t flow_key)
{
	struct broker_flow *f;
	bool remote = false;
	struct broker_queue *q = pick(p, g, &g->pg[p->idx], flow_key, 0, &f, &remote);

	return q ? place(p, g, q, rec, f, flow_key, remote) : -EAGAIN;
}

/* ---- groups: the backlog -------------------------------------------------- */

static void backlog_gauge(struct broker_pgroup *pg)
{
	onering_atomic_store(&pg->ctr[ONERING_GC_BACKLOG], (uint64_t)pg->sub_count + pg->rec_count,
			     onering_mo_relaxed);
}

static int backlog_push_sub(struct broker_pgroup *pg, uint64_t key)
{
	if (pg->sub_count == pg->sub_cap) {
		uint32_t cap = pg->sub_cap ? pg->sub_cap * 2 : 64;
		uint64_t *k = malloc(cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		for (uint32_t i = 0; i < pg->sub_count; i++)
			k[i] = pg->sub_keys[(pg->sub_head + i) % pg->sub_cap];
		free(pg->sub_keys);
		pg->sub_keys = k;
		pg->sub_cap = cap;
		pg->sub_head = 0;
	}
	pg->sub_keys[(pg->sub_head + pg->sub_count++) % pg->sub_cap] = key;
	broker_count(&pg->ctr[ONERING_GC_BACKLOGGED], 1);
	backlog_gauge(pg);
	return 0;
}

/* limit: 0 = none (redeliveries must not be refused). 0, -EAGAIN at the
 * limit, -ENOMEM. */
static int backlog_push_rec(struct broker_pgroup *pg, const struct onering_event *rec,
			    uint64_t flow, uint32_t limit)
{
	if (limit && pg->rec_count >= limit)
		return -EAGAIN;
	if (pg->rec_count == pg->rec_cap) {
		uint32_t cap = pg->rec_cap ? pg->rec_cap * 2 : 64;
		struct onering_event *r = malloc(cap * sizeof(*r));
		uint64_t *fl = malloc(cap * sizeof(*fl));
		if (!r || !fl) {
			free(r);
			free(fl);
			return -ENOMEM;
		}
		for (uint32_t i = 0; i < pg->rec_count; i++) {
			r[i] = pg->recs[(pg->rec_head + i) % pg->rec_cap];
			fl[i] = pg->rec_flows[(pg->rec_head + i) % pg->rec_cap];
		}
		free(pg->recs);
		free(pg->rec_flows);
		pg->recs = r;
		pg->rec_flows = fl;
		pg->rec_cap = cap;
		pg->rec_head = 0;
	}
	uint32_t at = (pg->rec_head + pg->rec_count++) % pg->rec_cap;
	pg->recs[at] = *rec;
	pg->rec_flows[at] = flow;
	broker_count(&pg->ctr[ONERING_GC_BACKLOGGED], 1);
	backlog_gauge(pg);
	return 0;
}

static void deliver_sub_group(struct poller *p, struct broker_sub *s, uint32_t events,
			      uint32_t count, uint64_t ts)
{
	struct broker_group *g = s->group;
	struct broker_pgroup *pg = &g->pg[p->idx];
	struct onering_event rec;

	if (s->pending) { /* waiting in the backlog already: merge */
		s->pending_events |= events;
		s->pending_count += count;
		return;
	}
	if (pg->sub_count == 0 && pg->rec_count == 0) { /* nobody waiting ahead */
		deliver_write_record(&rec, s, events, count, ts);
		if (try_place(p, g, &rec, s->id) == 0)
			return;
	}
	if (backlog_push_sub(pg, broker_sub_key(s->id, s->gen)) < 0) {
		onering_log(ONERING_LOG_ERR, "group '%s': no memory for the backlog; sub %u "
			    "waits for its next event", g->name, s->id);
		return;
	}
	s->pending = true;
	s->pending_events = events;
	s->pending_count = count;
}

void deliver_sub(struct poller *p, struct broker_sub *s, uint32_t events, uint32_t count,
		 uint64_t ts)
{
	if (s->group)
		deliver_sub_group(p, s, events, count, ts);
	else
		deliver_sub_queue(p, s->queue, s, events, count, ts);
}

int deliver_post(struct poller *p, struct broker_group *g, const struct onering_event *rec,
		 uint64_t flow_key)
{
	struct broker_pgroup *pg = &g->pg[p->idx];

	if (pg->sub_count == 0 && pg->rec_count == 0 && try_place(p, g, rec, flow_key) == 0)
		return 0;
	int r = backlog_push_rec(pg, rec, flow_key,
				 onering_atomic_load(&g->backlog_max, onering_mo_relaxed));
	return r == -ENOMEM ? -EAGAIN : r; /* the poster keeps it either way */
}

int deliver_requeue(struct poller *p, struct broker_group *g, const struct onering_event *rec,
		    uint64_t flow_key)
{
	int r = backlog_push_rec(&g->pg[p->idx], rec, flow_key, 0);

	if (r < 0)
		onering_log(ONERING_LOG_ERR, "group '%s': no memory: a record is lost", g->name);
	return r;
}

/* Place what waits in p's slice of g while someone takes it: whole records
 * (posts, redeliveries) oldest first, then waiting sources oldest first. A
 * waiting source's record keeps merging later reports, so it has no single
 * age to order it among posts by; order is kept per source and per flow. */
static unsigned flush_backlog(struct poller *p, struct broker_group *g, uint64_t ts)
{
	struct broker_pgroup *pg = &g->pg[p->idx];
	unsigned placed = 0;

	while (pg->rec_count) {
		uint32_t at = pg->rec_head;
		if (try_place(p, g, &pg->recs[at], pg->rec_flows[at]) < 0)
			break;
		pg->rec_head = (pg->rec_head + 1) % pg->rec_cap;
		pg->rec_count--;
		placed++;
	}
	while (pg->rec_count == 0 && pg->sub_count) {
		uint64_t key = pg->sub_keys[pg->sub_head];
		struct broker_sub *s = broker_registry_lookup(&p->b->reg, key);
		if (s && !broker_sub_dead(s) && s->pending) {
			struct onering_event rec;
			deliver_write_record(&rec, s, s->pending_events, s->pending_count, ts);
			if (try_place(p, g, &rec, s->id) < 0)
				break;
			s->pending = false;
			placed++;
		}
		/* else: deleted meanwhile, nothing to deliver */
		pg->sub_head = (pg->sub_head + 1) % pg->sub_cap;
		pg->sub_count--;
	}
	backlog_gauge(pg);
	return placed;
}

/* ---- NIC packets ------------------------------------------------------------ */

/* A packet into q's next slot and its packet area (flagged TRUNCATED when
 * cut to the packet stride): 0, or -EAGAIN if q is full. */
static int put_packet(struct broker_pgroup *pg, struct broker_queue *q, struct broker_flow *f,
		      struct onering_event *rec, const void *data, uint32_t len)
{
	void *slot = NULL;

	if (onering_ring_claim(&q->evp, &slot) != 1)
		return -EAGAIN;
	/* The packet slot of the ring slot just claimed: freed by its reuse. */
	uint64_t idx = (q->evp.tail_pos - 1) & q->evp.mask;
	uint32_t captured = len < q->pkt_stride ? len : q->pkt_stride;
	memcpy(q->pkt_area + idx * q->pkt_stride, data, captured);
	rec->payload.nic.captured = captured;
	rec->payload.nic.payload_offset = idx * q->pkt_stride;
	if (captured < rec->payload.nic.length)
		rec->flags |= ONERING_EVF_TRUNCATED;
	memcpy(slot, rec, sizeof(*rec));
	q->dirty = true;
	if (f) {
		f->sent++;
		f->qslot = q->slot;
		f->qid = q->id;
		flow_placed(f, q);
	}
	broker_count(&pg->ctr[ONERING_GC_DELIVERED], 1);
	return 0;
}

static int place_packet(struct poller *p, struct broker_group *g, struct onering_event *rec,
			const void *data, uint32_t len)
{
	struct broker_pgroup *pg = &g->pg[p->idx];
	struct broker_flow *f;
	bool remote = false;
	struct broker_queue *q =
		pick(p, g, pg, rec->payload.nic.rss_hash, PICK_PACKETS, &f, &remote);

	return q ? put_packet(pg, q, f, rec, data, len) : -EAGAIN;
}

unsigned deliver_packets(struct poller *p, struct broker_group *g, struct onering_event *recs,
			 const void *const *data, const uint32_t *lens, unsigned n,
			 unsigned *truncated)
{
	struct broker_pgroup *pg = &g->pg[p->idx];
	uint32_t policy = onering_atomic_load(&g->policy, onering_mo_relaxed);
	unsigned placed = 0;

	*truncated = 0;
	if (policy == ONERING_POLICY_STICKY || policy == ONERING_POLICY_LIFO) {
		/* Per packet: its flow, or who is idle now. */
		for (unsigned i = 0; i < n; i++) {
			if (place_packet(p, g, &recs[i], data[i], lens[i]) < 0)
				continue;
			placed++;
			*truncated += (recs[i].flags & ONERING_EVF_TRUNCATED) != 0;
		}
		return placed;
	}
	/* rr, least, local: one decision per burst, again only when that queue
	 * fills up. */
	struct broker_queue *q = NULL;
	for (unsigned i = 0; i < n; i++) {
		struct broker_flow *f;
		bool remote;
		int r = -1;
		for (int attempt = 0; attempt < 2 && r < 0; attempt++) {
			if (!q)
				q = pick(p, g, pg, recs[i].payload.nic.rss_hash, PICK_PACKETS, &f, &remote);
			if (!q)
				break;
			r = put_packet(pg, q, NULL, &recs[i], data[i], lens[i]);
			if (r < 0)
				q = NULL; /* full: decide again */
		}
		if (r < 0 && !q)
			break; /* nobody has room: the rest is dropped too */
		placed += r == 0;
		*truncated += r == 0 && (recs[i].flags & ONERING_EVF_TRUNCATED);
	}
	return placed;
}

/* ---- the end of a loop -------------------------------------------------------- */

unsigned deliver_flush(struct poller *p, uint64_t ts)
{
	struct broker *b = p->b;
	struct broker_queue *q;
	unsigned work = 0, published = 0, nr_queues = 0;

	/* A11: pairs with R7 in broker_group_get (group.c): the slots below
	 * the count are published. */
	unsigned ng = onering_atomic_load(&b->nr_groups_pub, onering_mo_acquire);
	for (unsigned i = 0; i < ng; i++) {
		struct broker_group *g = rcu_dereference(b->groups[i]);
		if (!g)
			continue; /* a free slot */
		BROKER_TSAN_OBSERVE(g);
		struct broker_pgroup *pg = &g->pg[p->idx];
		if (pg->rec_count || pg->sub_count)
			work += flush_backlog(p, g, ts);
	}

	cds_list_for_each_entry_rcu(q, &p->queues, poller_node) {
		BROKER_TSAN_OBSERVE(q);
		if (!queue_live(q))
			continue;
		nr_queues++;
		if (q->pending_head)
			work += flush_pending(p, q, ts);
		if (!q->dirty)
			continue;
		q->dirty = false;
		uint64_t before = q->evp.published_pos;
		onering_ring_publish(&q->evp); /* R1 (shm/ring.h) */
		uint64_t n = q->evp.published_pos - before;
		broker_count(&q->ctr[ONERING_QC_PUBLISHED], n);
		published += (unsigned)n;
		if (broker_queue_wake(q)) /* F2, R3 (shm/doorbell.h) */
			broker_count(&q->ctr[ONERING_QC_WAKES], 1);
	}
	broker_count(&p->ctr[ONERING_PC_PUBLISHED], published);
	onering_atomic_store(&p->ctr[ONERING_PC_QUEUES], nr_queues, onering_mo_relaxed);
	return work + published;
}
