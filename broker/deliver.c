/* SPDX-License-Identifier: MIT */
/*
 * deliver: every record's way into a consumer's ring (see deliver.h).
 *
 * Group decisions on the poller that has the record: per burst of posts
 * and of NIC packets under rr, least and local (deliver_post_burst,
 * balance_split; deliver_packets), else per record:
 *   1. snapshot the members (struct balance_cand): unconsumed records (exact
 *      for queues this poller serves; published tail plus hand-offs in
 *      flight for the others), capacity, node, and - for the policies that
 *      go by them - the consumer's doorbell state and idle time (lifo:
 *      only of members with every ring empty);
 *   2. balance_choose() (balance.c, pure) picks one, or none; lifo keeps
 *      its idle set over the loop's decisions (balance_lifo_choose);
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
 *   F4  put_packets: store fence after the non-temporal stores of packet
 *       bytes and records (copy_nt), before the tail moves: the later R1
 *       of deliver_flush then publishes them (a release store does not
 *       order non-temporal stores on x86).
 *   A11 deliver_flush: load-acquire of b->nr_groups_pub. Pairs with R7 in
 *       broker_group_get (group.c): the group slots below it are published.
 *   A15 deliver_flush: load-acquire of p->queues_gen. Pairs with R12 where
 *       the control thread changes p->queues (handlers.c, queue.c): a walk
 *       that sees the new count sees the list as changed.
 *   Group and member pointers: rcu_dereference, paired with the control
 *   thread's rcu_assign_pointer (group.c); freed only after a grace period.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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
			      (count > 1 ? ONERING_EVF_COALESCED : 0) |
			      ((uint32_t)s->prio << ONERING_EVF_PRIO_SHIFT));
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
	 * pairs with A2 in broker_faults_drain (server.c). */
	if (!onering_atomic_cas(&q->state, &expect, BROKER_QUEUE_FAULTED, onering_mo_acq_rel,
				onering_mo_relaxed))
		return;
	onering_log(ONERING_LOG_WARN, "poller %u: queue %u of pid %d: %s; dropping the client",
		    p->idx, q->id, (int)q->owner_pid, what);
	p->recount = true; /* it is no longer served */
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

/* Records were written to q's ring (p serves q): publish it at the end of
 * this loop. The list lives one loop: deliver_flush empties it before the
 * poller's next quiescent state, so no queue on it can be freed meanwhile. */
static void mark_dirty(struct poller *p, struct broker_queue *q)
{
	if (q->dirty)
		return;
	q->dirty = true;
	q->dirty_next = p->dirty;
	p->dirty = q;
}

/* A slot of q's ring of level (p serves q): 1 and *slot, 0 full, -EPROTO
 * faulted. */
static int claim(struct poller *p, struct broker_queue *q, uint32_t level, void **slot)
{
	struct onering_ring_producer *ring = broker_queue_ring(q, level);
	int r = onering_ring_claim(ring, slot);

	if (r < 0)
		deliver_queue_fault(p, q, onering_ring_fault_str(ring->fault));
	return r;
}

/* The level of q a record goes to: its priority, clamped to q's levels. */
static uint32_t rec_level(const struct broker_queue *q, const struct onering_event *rec)
{
	return broker_queue_level(q, onering_event_prio(rec));
}

int deliver_to_queue(struct poller *p, struct broker_queue *q, const struct onering_event *rec)
{
	void *slot = NULL;
	int r = claim(p, q, rec_level(q, rec), &slot);

	if (r <= 0)
		return r < 0 ? r : -EAGAIN;
	memcpy(slot, rec, sizeof(*rec));
	mark_dirty(p, q);
	return 0;
}

/* ---- a subscription's own queue: pending and coalescing ----------------- */

/* The pending list of q's level: subscriptions of that level waiting for
 * space in its ring, oldest first (level 0's are q's own fields). */
static struct broker_sub **pending_headp(struct broker_queue *q, uint32_t level)
{
	return level == 0 ? &q->pending_head : &q->hi[level - 1].pending_head;
}

static struct broker_sub ***pending_tailp(struct broker_queue *q, uint32_t level)
{
	return level == 0 ? &q->pending_tail : &q->hi[level - 1].pending_tail;
}

static void pending_append(struct poller *p, struct broker_queue *q, uint32_t level,
			   struct broker_sub *s, uint32_t events, uint32_t count)
{
	struct broker_sub ***tail = pending_tailp(q, level);

	s->pending = true;
	s->pending_events = events;
	s->pending_count = count;
	s->pending_next = NULL;
	**tail = s;
	*tail = &s->pending_next;
	p->nr_waiting++; /* deliver_flush walks the queues until it counts none */
	broker_count(&q->ctr[ONERING_QC_DEFERRED], 1);
	broker_count(&q->ctr[ONERING_QC_PENDING], 1);
	if (q->top_level)
		broker_count(&q->level_ctr[level][ONERING_LC_DEFERRED], 1);
}

void deliver_sub_forget(struct broker_sub *s)
{
	struct broker_queue *q = s->queue;
	uint32_t level = broker_queue_level(q, s->prio);
	struct broker_sub **pp = pending_headp(q, level);
	struct broker_sub ***tail = pending_tailp(q, level);

	if (s->group || !s->pending)
		return; /* a group backlog drops it when it comes up */
	while (*pp && *pp != s)
		pp = &(*pp)->pending_next;
	if (*pp) {
		*pp = s->pending_next;
		if (*tail == &s->pending_next)
			*tail = pp;
	}
	s->pending = false;
	broker_count(&q->ctr[ONERING_QC_PENDING], (uint64_t)-1);
}

static void deliver_sub_queue(struct poller *p, struct broker_queue *q, struct broker_sub *s,
			      uint32_t events, uint32_t count, uint64_t ts)
{
	uint32_t level = broker_queue_level(q, s->prio);
	void *slot = NULL;

	if (s->pending) { /* already waiting for space: merge */
		s->pending_events |= events;
		s->pending_count += count;
		broker_count(&q->ctr[ONERING_QC_COALESCED], 1);
		return;
	}
	if (*pending_headp(q, level) == NULL) { /* nobody of its level waiting ahead */
		int r = claim(p, q, level, &slot);
		if (r == 1) {
			deliver_write_record(slot, s, events, count, ts);
			mark_dirty(p, q);
			return;
		}
		if (r < 0)
			return;
	}
	pending_append(p, q, level, s, events, count);
}

/* Place pending records of one level in the space the consumer gave back,
 * oldest first. */
static unsigned flush_pending_level(struct poller *p, struct broker_queue *q, uint32_t level,
				    uint64_t ts)
{
	struct broker_sub **head = pending_headp(q, level);
	unsigned placed = 0;
	void *slot = NULL;

	while (*head && claim(p, q, level, &slot) == 1) {
		struct broker_sub *s = *head;
		*head = s->pending_next;
		if (!*head)
			*pending_tailp(q, level) = head;
		s->pending = false;
		broker_count(&q->ctr[ONERING_QC_PENDING], (uint64_t)-1);
		deliver_write_record(slot, s, s->pending_events, s->pending_count, ts);
		mark_dirty(p, q);
		placed++;
	}
	return placed;
}

/* Every level's pending records, highest level first. */
static unsigned flush_pending(struct poller *p, struct broker_queue *q, uint64_t ts)
{
	unsigned placed = 0;

	for (uint32_t level = q->top_level; level > 0; level--)
		if (q->hi[level - 1].pending_head)
			placed += flush_pending_level(p, q, level, ts);
	if (q->pending_head)
		placed += flush_pending_level(p, q, 0, ts);
	return placed;
}

bool deliver_queue_waiting(const struct broker_queue *q)
{
	if (q->pending_head)
		return true;
	for (uint32_t level = 1; level <= q->top_level; level++)
		if (q->hi[level - 1].pending_head)
			return true;
	return false;
}

/* ---- groups: the snapshot and the decision ------------------------------ */

/* Unconsumed records of q's ring of level as poller p sees it; capacity if
 * unusable. */
static uint64_t ring_used(struct poller *p, struct broker_queue *q, uint32_t level)
{
	uint32_t cap = q->evp.capacity; /* immutable after creation */

	if (q->poller == p) {
		/* The consumer's heads (a line its core writes) are read once per
		 * loop; later decisions in the loop use that reading and our own
		 * tail, which can only overstate what is unconsumed. */
		if (q->used_loop != p->loop_no) {
			q->used_loop = p->loop_no;
			for (uint32_t k = 0; k <= q->top_level; k++) {
				struct onering_ring_producer *r = broker_queue_ring(q, k);
				if (onering_ring_producer_count(r) < 0) {
					deliver_queue_fault(p, q, onering_ring_fault_str(r->fault));
					return cap;
				}
			}
		}
		struct onering_ring_producer *r = broker_queue_ring(q, level);
		return r->tail_pos - r->head_cache;
	}
	/* Another poller's queue: its published tail plus what is on its way,
	 * against the consumer's head (A6: untrusted, clamped). The acquire
	 * pairs with that poller's R1 on q's ring. A stale tail understates by
	 * records in flight; a head read after the consumer passed the tail we
	 * read wraps and clamps to "full" for this one decision (the safe side). */
	const ONERING_ATOMIC(uint64_t) *tail_word =
		level ? &q->lctl->level_tail_pos[level - 1] : &q->ectl->ev_tail_pos;
	const ONERING_ATOMIC(uint64_t) *head_word =
		level ? &q->cctl->level_head_pos[level - 1] : &q->cctl->ev_head_pos;
	uint64_t tail = onering_atomic_load(tail_word, onering_mo_acquire) +
			onering_atomic_load(&q->inflight[level], onering_mo_relaxed);
	uint64_t head = onering_atomic_load(head_word, onering_mo_relaxed);
	uint64_t used = tail - head;
	return used > cap ? cap : used;
}

/* How q looks to a record of level (as ring_used): c->used in that level's
 * ring, c->higher and c->lower at the levels above and below it. */
static void queue_used(struct poller *p, struct broker_queue *q, uint32_t level,
		       struct balance_cand *c)
{
	c->used = ring_used(p, q, level);
	c->higher = c->lower = 0;
	for (uint32_t k = 0; k <= q->top_level && q->top_level; k++) {
		if (k == level)
			continue;
		uint64_t n = ring_used(p, q, k);
		if (k > level)
			c->higher += n;
		else
			c->lower += n;
	}
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
	/* A4: pairs with R3 in place_in_ring: levels and end_pos are the placed
	 * ones'. */
	uint64_t placed = onering_atomic_load(&f->placed, onering_mo_acquire);
	uint32_t levels = onering_atomic_load(&f->levels, onering_mo_relaxed);
	bool held = placed != f->sent; /* on its way there */
	for (uint32_t k = 0; k <= q->top_level && !held; k++) {
		if (!(levels & (1u << k)))
			continue;
		uint64_t end = onering_atomic_load(&f->end_pos[k], onering_mo_relaxed);
		const ONERING_ATOMIC(uint64_t) *hw =
			k ? &q->cctl->level_head_pos[k - 1] : &q->cctl->ev_head_pos;
		uint64_t head = onering_atomic_load(hw, onering_mo_relaxed); /* A6 */
		held = balance_flow_held(f->sent, placed, end, head, q->evp.capacity);
	}
	if (held)
		return q;
	/* Free: nothing of it is on its way (placed == sent), so no placing
	 * poller writes levels now; the next placement's lane hand-off (or our
	 * own) orders this reset before its update. */
	f->qid = 0;
	onering_atomic_store(&f->levels, 0, onering_mo_relaxed);
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
#define CANDS_CONSUMERS 0x2u /* (cands' key) with every consumer's doorbell words */
#define CANDS_IDLE_ONLY 0x4u /* (cands' key) with the doorbell words of members whose
			      * rings are all empty only */

/* The members of m as candidates for records of level prio, as this loop
 * sees them (struct broker_cands): built once per loop, or NULL without
 * memory. policy: the group's; it says which consumers' doorbell words are
 * read. */
static struct broker_cands *cands(struct poller *p, struct broker_pgroup *pg,
				  const struct broker_members *m, uint32_t prio, unsigned flags,
				  uint32_t policy)
{
	struct broker_cands *cc = pg->cands;

	if (!cc) {
		cc = pg->cands = calloc(1, sizeof(*cc));
		if (!cc)
			return NULL;
	}
	/* Part of the key: a tune may change the policy. lifo reads a
	 * consumer's words only when every ring of its queue is empty: with a
	 * record in one it is at work whatever they say (balance_cand_idle),
	 * and lifo orders only idle members by them. */
	if (policy == ONERING_POLICY_LIFO)
		flags |= CANDS_IDLE_ONLY;
	else if (balance_reads_consumers(policy))
		flags |= CANDS_CONSUMERS;
	if (cc->loop_no == p->loop_no && cc->m == m && cc->prio == prio && cc->flags == flags)
		return cc;
	cc->loop_no = p->loop_no;
	cc->m = m;
	cc->prio = prio;
	cc->flags = flags;
	cc->lifo_ready = false;
	cc->n = 0;
	for (uint32_t i = 0; i < m->n && cc->n < BROKER_GROUP_MAX_MEMBERS; i++) {
		struct broker_queue *q = m->q[i];
		struct balance_cand *c = &cc->c[cc->n];
		if (!queue_live(q))
			continue;
		if ((flags & PICK_PACKETS) && (q->poller != p || !q->pkt_area))
			continue;
		cc->q[cc->n++] = q;
		c->cap = q->evp.capacity;
		queue_used(p, q, broker_queue_level(q, prio), c);
		c->local = q->poller->node == p->node;
		c->dist = p->dist[q->poller->idx];
		/* The consumer's words (A6): read only where the policy goes by
		 * them (another core's line each). */
		bool empty = c->used == 0 && c->higher == 0 && c->lower == 0;
		bool words = (flags & CANDS_CONSUMERS) || ((flags & CANDS_IDLE_ONLY) && empty);
		c->state = words ? onering_atomic_load(&q->db->state, onering_mo_relaxed)
				 : ONERING_CONSUMER_RUNNING;
		c->idle_ns = words ? onering_atomic_load(&q->db->idle_ns, onering_mo_relaxed) : 0;
	}
	return cc;
}

/*
 * The decision: the queue for one record of g (flow_key: the source or the
 * posted flow), or NULL when none can take it now; *flowp: the sticky
 * bucket to account the record in (or NULL); *remote: it leaves this
 * poller's node.
 */
static struct broker_queue *pick(struct poller *p, struct broker_group *g,
				 struct broker_pgroup *pg, uint64_t flow_key, uint32_t prio,
				 unsigned flags, struct broker_flow **flowp, bool *remote)
{
	const struct broker_members *m = rcu_dereference(g->members);
	struct balance_settings set;

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
			if (ring_used(p, q, broker_queue_level(q, prio)) >= q->evp.capacity)
				return NULL;
			*flowp = f;
			*remote = q->poller->node != p->node;
			return q;
		}
		*flowp = f;
	}

	struct broker_cands *cc = cands(p, pg, m, prio, flags, set.policy);
	if (!cc) {
		*flowp = NULL;
		return NULL; /* no memory: retried from the backlog */
	}
	for (uint32_t i = 0; i < cc->n; i++)
		cc->c[i].ok = true; /* balance_numa_filter marks them again */
	int idx;
	if (set.policy == ONERING_POLICY_LIFO) {
		/* The idle set, once per snapshot; each decision keeps it true
		 * (the used++ below is the only other change to the snapshot). */
		if (!cc->lifo_ready) {
			balance_lifo_init(&set, &pg->bal, cc->c, cc->n, &cc->lifo);
			cc->lifo_ready = true;
		}
		idx = balance_lifo_choose(&set, &pg->bal, cc->c, cc->n, &cc->lifo);
	} else {
		idx = balance_choose(&set, &pg->bal, cc->c, cc->n);
	}
	if (idx < 0) {
		*flowp = NULL;
		return NULL;
	}
	/* The record goes there (or, if placing fails, the count overstates
	 * until the next loop: the safe side). */
	cc->c[idx].used++;
	*remote = !cc->c[idx].local;
	return cc->q[idx];
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

/* The sticky bucket's account of a record placed at the tail of q's ring
 * of level now. */
static void flow_placed(struct broker_flow *f, struct broker_queue *q, uint32_t level)
{
	onering_atomic_store(&f->end_pos[level], broker_queue_ring(q, level)->tail_pos,
			     onering_mo_relaxed);
	/* One writer at a time (the placing poller; the home poller only while
	 * nothing is on its way): load and store, as placed below. */
	onering_atomic_store(&f->levels,
			     onering_atomic_load(&f->levels, onering_mo_relaxed) | (1u << level),
			     onering_mo_relaxed);
	/* R3: pairs with A4 in flow_queue: end_pos is set. */
	onering_atomic_store(&f->placed, onering_atomic_load(&f->placed, onering_mo_relaxed) + 1,
			     onering_mo_release);
}

/* Copy rec into q, which p serves: 0, -EAGAIN full, -EPROTO faulted. */
static int place_in_ring(struct poller *p, struct broker_queue *q, const struct onering_event *rec,
			 struct broker_flow *f)
{
	uint32_t level = rec_level(q, rec);
	void *slot = NULL;
	int r = claim(p, q, level, &slot);

	if (r <= 0)
		return r < 0 ? r : -EAGAIN;
	/* The flags computed here and stored, not or-ed into the slot: a
	 * read of the slot would wait for its line to come back from the
	 * consumer's core, which last read it. */
	const uint16_t flags = rec->flags | foreign_flag(p, rec, q);
	memcpy(slot, rec, sizeof(*rec));
	((struct onering_event *)slot)->flags = flags;
	mark_dirty(p, q);
	if (rec->flags & ONERING_EVF_REDELIVERED)
		broker_count(&q->ctr[ONERING_QC_REDELIVERED], 1);
	if (f)
		flow_placed(f, q, level);
	return 0;
}

int deliver_handoff(struct poller *p, struct broker_queue *q, const struct onering_event *rec,
		    struct broker_flow *flow)
{
	int r = place_in_ring(p, q, rec, flow);

	if (r == 0)
		onering_atomic_fetch_add(&q->inflight[rec_level(q, rec)], (uint64_t)-1,
					 onering_mo_relaxed);
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
		ONERING_ATOMIC(uint64_t) *inflight = &q->inflight[rec_level(q, rec)];
		onering_atomic_fetch_add(inflight, 1, onering_mo_relaxed);
		ok = broker_lane_send(p, q->poller, &h, rec) == 0;
		if (ok)
			broker_count(&pg->ctr[ONERING_GC_HANDOFFS], 1);
		else
			onering_atomic_fetch_add(inflight, (uint64_t)-1, onering_mo_relaxed);
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
	struct broker_queue *q =
		pick(p, g, &g->pg[p->idx], flow_key, onering_event_prio(rec), 0, &f, &remote);

	return q ? place(p, g, q, rec, f, flow_key, remote) : -EAGAIN;
}

/* ---- groups: the backlog -------------------------------------------------- */

static void backlog_gauge(struct broker_pgroup *pg)
{
	onering_atomic_store(&pg->ctr[ONERING_GC_BACKLOG], pg->waiting, onering_mo_relaxed);
}

static int backlog_push_sub(struct broker_pgroup *pg, struct broker_backlog *bl, uint64_t key)
{
	if (bl->sub_count == bl->sub_cap) {
		uint32_t cap = bl->sub_cap ? bl->sub_cap * 2 : 64;
		uint64_t *k = malloc(cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		for (uint32_t i = 0; i < bl->sub_count; i++)
			k[i] = bl->sub_keys[(bl->sub_head + i) % bl->sub_cap];
		free(bl->sub_keys);
		bl->sub_keys = k;
		bl->sub_cap = cap;
		bl->sub_head = 0;
	}
	bl->sub_keys[(bl->sub_head + bl->sub_count++) % bl->sub_cap] = key;
	pg->waiting++;
	broker_count(&pg->ctr[ONERING_GC_BACKLOGGED], 1);
	backlog_gauge(pg);
	return 0;
}

/* limit: 0 = none (redeliveries must not be refused); per level, so a full
 * backlog of one priority never holds back another's. 0, -EAGAIN at the
 * limit, -ENOMEM. */
static int backlog_push_rec(struct broker_pgroup *pg, const struct onering_event *rec,
			    uint64_t flow, uint32_t limit)
{
	struct broker_backlog *bl = &pg->bl[onering_event_prio(rec)];

	if (limit && bl->rec_count >= limit)
		return -EAGAIN;
	if (bl->rec_count == bl->rec_cap) {
		uint32_t cap = bl->rec_cap ? bl->rec_cap * 2 : 64;
		struct onering_event *r = malloc(cap * sizeof(*r));
		uint64_t *fl = malloc(cap * sizeof(*fl));
		if (!r || !fl) {
			free(r);
			free(fl);
			return -ENOMEM;
		}
		for (uint32_t i = 0; i < bl->rec_count; i++) {
			r[i] = bl->recs[(bl->rec_head + i) % bl->rec_cap];
			fl[i] = bl->rec_flows[(bl->rec_head + i) % bl->rec_cap];
		}
		free(bl->recs);
		free(bl->rec_flows);
		bl->recs = r;
		bl->rec_flows = fl;
		bl->rec_cap = cap;
		bl->rec_head = 0;
	}
	uint32_t at = (bl->rec_head + bl->rec_count++) % bl->rec_cap;
	bl->recs[at] = *rec;
	bl->rec_flows[at] = flow;
	pg->waiting++;
	broker_count(&pg->ctr[ONERING_GC_BACKLOGGED], 1);
	backlog_gauge(pg);
	return 0;
}

static bool backlog_empty(const struct broker_backlog *bl)
{
	return bl->sub_count == 0 && bl->rec_count == 0;
}

/* Nothing of priority prio or above waits in p's backlog: a new entry of
 * prio may go straight to a member (it overtakes no one it must not: a
 * record of a higher level that waits may be waiting for the very consumer
 * that would take this one, under lifo). */
static bool backlog_clear_from(const struct broker_pgroup *pg, uint32_t prio)
{
	if (pg->waiting == 0)
		return true;
	for (uint32_t level = prio; level < ONERING_PRIO_LEVELS; level++)
		if (!backlog_empty(&pg->bl[level]))
			return false;
	return true;
}

static void deliver_sub_group(struct poller *p, struct broker_sub *s, uint32_t events,
			      uint32_t count, uint64_t ts)
{
	struct broker_group *g = s->group;
	struct broker_pgroup *pg = &g->pg[p->idx];
	struct broker_backlog *bl = &pg->bl[s->prio];
	struct onering_event rec;

	if (s->pending) { /* waiting in the backlog already: merge */
		s->pending_events |= events;
		s->pending_count += count;
		return;
	}
	if (backlog_clear_from(pg, s->prio)) { /* nobody of its level or above waiting */
		deliver_write_record(&rec, s, events, count, ts);
		if (try_place(p, g, &rec, s->id) == 0)
			return;
	}
	if (backlog_push_sub(pg, bl, broker_sub_key(s->id, s->gen)) < 0) {
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

	if (backlog_clear_from(pg, onering_event_prio(rec)) && try_place(p, g, rec, flow_key) == 0)
		return 0;
	int r = backlog_push_rec(pg, rec, flow_key,
				 onering_atomic_load(&g->backlog_max, onering_mo_relaxed));
	return r == -ENOMEM ? -EAGAIN : r; /* the poster keeps it either way */
}

/* n records of one level into q's ring, or through the lane to its poller:
 * how many went (the first ones). remote: q is off this poller's node. */
static unsigned place_run(struct poller *p, struct broker_group *g, struct broker_pgroup *pg,
			  struct broker_queue *q, const struct onering_event *recs, unsigned n,
			  bool remote)
{
	unsigned placed = 0;

	if (q->poller != p) { /* one hand-off per record (place counts them) */
		while (placed < n && place(p, g, q, &recs[placed], NULL,
					   recs[placed].payload.user.flow, remote) == 0)
			placed++;
		return placed;
	}
	struct onering_ring_producer *ring = broker_queue_ring(q, rec_level(q, &recs[0]));
	int r = onering_ring_produce_burst(ring, recs, n);
	if (r < 0) {
		deliver_queue_fault(p, q, onering_ring_fault_str(ring->fault));
		return 0;
	}
	placed = (unsigned)r;
	if (placed == 0)
		return 0;
	mark_dirty(p, q);
	broker_count(&pg->ctr[ONERING_GC_DELIVERED], placed);
	if (remote)
		broker_count(&pg->ctr[ONERING_GC_SPILLED], placed);
	return placed;
}

/* Under rr, local and least: place a burst of posts of level prio by one
 * decision (balance_split), each member's share as one run. Returns how
 * many of the first records were placed (0 under sticky and lifo, or with
 * no member). */
static unsigned place_burst(struct poller *p, struct broker_group *g, struct broker_pgroup *pg,
			    const struct onering_event *recs, unsigned n, uint32_t prio)
{
	const struct broker_members *m = rcu_dereference(g->members);
	struct balance_settings set;
	struct balance_run runs[BROKER_GROUP_MAX_MEMBERS];
	unsigned done = 0;

	if (!m)
		return 0;
	BROKER_TSAN_OBSERVE(m);
	read_settings(p, g, &set);
	if (set.policy == ONERING_POLICY_STICKY || set.policy == ONERING_POLICY_LIFO)
		return 0;
	struct broker_cands *cc = cands(p, pg, m, prio, 0, set.policy);
	if (!cc)
		return 0;
	unsigned nr = balance_split(&set, &pg->bal, cc->c, cc->n, n, runs);
	for (unsigned k = 0; k < nr; k++) {
		unsigned i = runs[k].idx;
		unsigned placed = place_run(p, g, pg, cc->q[i], recs + done, runs[k].count,
					    !cc->c[i].local);
		done += placed;
		/* Short (a fault, a full lane): the snapshot overstates that
		 * member until the next loop (the safe side); the rest is decided
		 * again record by record. */
		if (placed < runs[k].count)
			break;
	}
	return done;
}

unsigned deliver_post_burst(struct poller *p, struct broker_group *g,
			    const struct onering_event *recs, unsigned n)
{
	struct broker_pgroup *pg = &g->pg[p->idx];
	unsigned done = 0;

	if (n == 0)
		return 0;
	uint32_t prio = onering_event_prio(&recs[0]);
	if (n > 1 && backlog_clear_from(pg, prio))
		done = place_burst(p, g, pg, recs, n, prio);
	/* The rest (sticky, lifo, or what found no room): one at a time, in
	 * order; once one waits in the backlog, so do the ones after it. */
	for (; done < n; done++)
		if (deliver_post(p, g, &recs[done], recs[done].payload.user.flow) < 0)
			break;
	return done;
}

int deliver_requeue(struct poller *p, struct broker_group *g, const struct onering_event *rec,
		    uint64_t flow_key)
{
	int r = backlog_push_rec(&g->pg[p->idx], rec, flow_key, 0);

	if (r < 0)
		onering_log(ONERING_LOG_ERR, "group '%s': no memory: a record is lost", g->name);
	return r;
}

/* May backlog record i go out in a burst (place_burst, which copies records
 * as they are)? A post, not re-delivered (counted per record), under its
 * own flow key (what a hand-off to another poller's member carries). */
static bool backlog_plain_post(const struct broker_backlog *bl, uint32_t i)
{
	const struct onering_event *rec = &bl->recs[i];

	return rec->kind == ONERING_EV_USER && !(rec->flags & ONERING_EVF_REDELIVERED) &&
	       bl->rec_flows[i] == rec->payload.user.flow;
}

/* The posts at the head of bl, placed a burst of up to BACKLOG_BURST at a
 * time (rr, least, local: one decision per burst, as for posts that find no
 * backlog), up to the first record that is not a plain post, the ring
 * array's end, or a burst not placed whole. A consumer that falls behind no
 * longer costs a pick per record once its posts have had to wait; a loop
 * that can place nothing looks at one burst's records, not the backlog. */
#define BACKLOG_BURST 32u

static unsigned flush_backlog_posts(struct poller *p, struct broker_group *g,
				    struct broker_pgroup *pg, struct broker_backlog *bl,
				    uint32_t level)
{
	unsigned placed = 0;
	uint32_t policy = onering_atomic_load(&g->policy, onering_mo_relaxed);

	if (policy == ONERING_POLICY_STICKY || policy == ONERING_POLICY_LIFO)
		return 0; /* decided per record (place_burst would return 0) */
	while (bl->rec_count > 1) {
		uint32_t at = bl->rec_head, run = bl->rec_cap - at;
		if (run > bl->rec_count)
			run = bl->rec_count;
		if (run > BACKLOG_BURST)
			run = BACKLOG_BURST;
		uint32_t k = 0;
		while (k < run && backlog_plain_post(bl, at + k))
			k++;
		if (k < 2)
			break;
		unsigned done = place_burst(p, g, pg, &bl->recs[at], k, level);
		bl->rec_head = (at + done) % bl->rec_cap;
		bl->rec_count -= done;
		pg->waiting -= done;
		placed += done;
		if (done < k)
			break;
	}
	return placed;
}

/* Place what waits in one level of p's slice of g while someone takes it:
 * whole records (posts, redeliveries) oldest first - the plain posts at
 * the head a burst at a time (flush_backlog_posts) - then waiting sources
 * oldest first. A waiting source's record keeps merging later reports, so
 * it has no single age to order it among posts by; order is kept per
 * source and per flow. */
static unsigned flush_backlog_level(struct poller *p, struct broker_group *g,
				    struct broker_pgroup *pg, struct broker_backlog *bl, uint64_t ts)
{
	unsigned placed = flush_backlog_posts(p, g, pg, bl, (uint32_t)(bl - pg->bl));

	while (bl->rec_count) {
		uint32_t at = bl->rec_head;
		if (try_place(p, g, &bl->recs[at], bl->rec_flows[at]) < 0)
			break;
		bl->rec_head = (bl->rec_head + 1) % bl->rec_cap;
		bl->rec_count--;
		pg->waiting--;
		placed++;
	}
	while (bl->rec_count == 0 && bl->sub_count) {
		uint64_t key = bl->sub_keys[bl->sub_head];
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
		bl->sub_head = (bl->sub_head + 1) % bl->sub_cap;
		bl->sub_count--;
		pg->waiting--;
	}
	return placed;
}

/* Every level of p's slice of g, the highest first: a record of a higher
 * level takes the room (or the idle consumer) that comes free before any
 * of a lower one. A level that cannot place all it has stops there. Lower
 * levels still try under the policies that go by ring room (each level's
 * ring is its own), but not under lifo, where what a level waits for may be
 * an idle consumer, the one thing every level shares: a consumer that goes
 * idle between two decisions of one flush must not go to a lower level
 * first. */
static unsigned flush_backlog(struct poller *p, struct broker_group *g, uint64_t ts)
{
	struct broker_pgroup *pg = &g->pg[p->idx];
	bool lifo = onering_atomic_load(&g->policy, onering_mo_relaxed) == ONERING_POLICY_LIFO;
	unsigned placed = 0;

	for (unsigned level = ONERING_PRIO_LEVELS; level-- > 0;) {
		struct broker_backlog *bl = &pg->bl[level];
		if (backlog_empty(bl))
			continue;
		placed += flush_backlog_level(p, g, pg, bl, ts);
		if (lifo && !backlog_empty(bl))
			break;
	}
	backlog_gauge(pg);
	return placed;
}

/* ---- NIC packets ------------------------------------------------------------ */

/* A packet into q's next slot and its packet area (flagged TRUNCATED when
 * cut to the packet stride): 0, or -EAGAIN if q is full. */
static int put_packet(struct poller *p, struct broker_pgroup *pg, struct broker_queue *q,
		      struct broker_flow *f, struct onering_event *rec, const void *data,
		      uint32_t len)
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
	mark_dirty(p, q);
	if (f) {
		f->sent++;
		f->qslot = q->slot;
		f->qid = q->id;
		flow_placed(f, q, 0); /* packets take level 0: their bytes are its slots' */
	}
	broker_count(&pg->ctr[ONERING_GC_DELIVERED], 1);
	return 0;
}

/*
 * Copy len bytes to dst (16-byte aligned) with non-temporal stores for the
 * whole 16-byte blocks: the slot and packet lines the consumer's core read
 * last lap are written without first being fetched back (a read for
 * ownership per line was 90 % of the packet path's time in perf: NIC
 * 0.35x -> 0.42x of the floor). Not ordered by the release store that
 * publishes them: copy_nt_fence() first (F4).
 */
static inline void copy_nt(void *dst, const void *src, size_t len)
{
#ifdef __SSE2__
	size_t whole = len & ~(size_t)15;
	for (size_t b = 0; b < whole; b += 16)
		_mm_stream_si128((__m128i *)((unsigned char *)dst + b),
				 _mm_loadu_si128((const __m128i *)((const unsigned char *)src + b)));
	memcpy((unsigned char *)dst + whole, (const unsigned char *)src + whole, len - whole);
#else
	memcpy(dst, src, len);
#endif
}

static inline void copy_nt_fence(void)
{
#ifdef __SSE2__
	_mm_sfence();
#endif
}

/* The loop's snapshot of pg's members learns that k records went to q
 * (pick() counted one) and, with full, that q takes no more this loop: the
 * next pick looks elsewhere. */
static void cands_placed(struct broker_pgroup *pg, const struct broker_queue *q, unsigned k,
			 bool full)
{
	struct broker_cands *cc = pg->cands;

	for (uint32_t i = 0; cc && i < cc->n; i++) {
		if (cc->q[i] != q)
			continue;
		cc->c[i].used += k ? k - 1 : 0;
		if (full)
			cc->c[i].used = cc->c[i].cap;
		return;
	}
}

/* Up to n packets into q's next slots and its packet area at once (as
 * put_packet, no sticky account): how many went (0: q is full or faulted). */
static unsigned put_packets(struct poller *p, struct broker_pgroup *pg, struct broker_queue *q,
			    struct onering_event *recs, const void *const *data,
			    const uint32_t *lens, unsigned n, unsigned *truncated)
{
	struct onering_ring_producer *r = &q->evp;
	int64_t room = onering_ring_producer_room(r, n);

	if (room <= 0) {
		if (room < 0)
			deliver_queue_fault(p, q, onering_ring_fault_str(r->fault));
		return 0;
	}
	if ((uint64_t)room < n)
		n = (unsigned)room;
	uint64_t tail = r->tail_pos;
	for (unsigned i = 0; i < n; i++) {
		/* The packet slot of the ring slot: freed by its reuse. */
		uint64_t idx = (tail + i) & r->mask;
		struct onering_event *rec = &recs[i];
		uint32_t captured = lens[i] < q->pkt_stride ? lens[i] : q->pkt_stride;
		copy_nt(q->pkt_area + idx * q->pkt_stride, data[i], captured);
		rec->payload.nic.captured = captured;
		rec->payload.nic.payload_offset = idx * q->pkt_stride;
		if (captured < rec->payload.nic.length) {
			rec->flags |= ONERING_EVF_TRUNCATED;
			(*truncated)++;
		}
		copy_nt(onering_ring_slot(r, tail + i), rec, sizeof(*rec));
	}
	copy_nt_fence(); /* F4 */
	r->tail_pos = tail + n;
	mark_dirty(p, q);
	broker_count(&pg->ctr[ONERING_GC_DELIVERED], n);
	return n;
}

static int place_packet(struct poller *p, struct broker_group *g, struct onering_event *rec,
			const void *data, uint32_t len)
{
	struct broker_pgroup *pg = &g->pg[p->idx];
	struct broker_flow *f;
	bool remote = false;
	struct broker_queue *q =
		pick(p, g, pg, rec->payload.nic.rss_hash, 0, PICK_PACKETS, &f, &remote);

	return q ? put_packet(p, pg, q, f, rec, data, len) : -EAGAIN;
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
	while (placed < n) {
		struct broker_flow *f;
		bool remote;
		struct broker_queue *q = pick(p, g, pg, recs[placed].payload.nic.rss_hash, 0,
					      PICK_PACKETS, &f, &remote);
		if (!q)
			break; /* nobody has room: the rest is dropped */
		unsigned want = n - placed;
		unsigned k = put_packets(p, pg, q, recs + placed, data + placed, lens + placed,
					 want, truncated);
		cands_placed(pg, q, k, k < want);
		placed += k;
	}
	return placed;
}

/* ---- the end of a loop -------------------------------------------------------- */

/* Publish every level's ring of q (one R1 each, shm/ring.h), counting per
 * level; the highest first, though the consumer sees them all by the time
 * the doorbell rings. Returns the records published. */
static uint64_t publish_levels(struct broker_queue *q)
{
	uint64_t total = 0;

	for (uint32_t level = q->top_level + 1; level-- > 0;) {
		struct onering_ring_producer *r = broker_queue_ring(q, level);
		uint64_t before = r->published_pos;
		onering_ring_publish(r); /* R1 (shm/ring.h) */
		uint64_t n = r->published_pos - before;
		broker_count(&q->level_ctr[level][ONERING_LC_DELIVERED], n);
		total += n;
	}
	return total;
}

/* Every queue of p: place what waits in pending lists, count the queues
 * served (the gauge) and those still waiting. Run while any waited at the
 * last count, after the control thread changed p's list, after a fault. */
static unsigned flush_walk(struct poller *p, uint64_t ts)
{
	struct broker_queue *q;
	unsigned work = 0, nr_queues = 0, waiting = 0;

	cds_list_for_each_entry_rcu(q, &p->queues, poller_node) {
		BROKER_TSAN_OBSERVE(q);
		if (!queue_live(q))
			continue;
		nr_queues++;
		if (q->top_level == 0 ? q->pending_head == NULL : !deliver_queue_waiting(q))
			continue;
		work += flush_pending(p, q, ts);
		waiting += deliver_queue_waiting(q);
	}
	p->nr_waiting = waiting;
	onering_atomic_store(&p->ctr[ONERING_PC_QUEUES], nr_queues, onering_mo_relaxed);
	return work;
}

/* The groups' backlogs waiting on p: A11 pairs with R7 in broker_group_get
 * (group.c): the group slots below the count are published. flush: place
 * what fits (else only say whether any waits). */
static unsigned groups_waiting(struct poller *p, uint64_t ts, bool flush)
{
	struct broker *b = p->b;
	unsigned ng = onering_atomic_load(&b->nr_groups_pub, onering_mo_acquire);
	unsigned work = 0;

	for (unsigned i = 0; i < ng; i++) {
		struct broker_group *g = rcu_dereference(b->groups[i]);
		if (!g)
			continue; /* a free slot */
		BROKER_TSAN_OBSERVE(g);
		if (!g->pg[p->idx].waiting)
			continue;
		if (!flush)
			return 1;
		work += flush_backlog(p, g, ts);
	}
	return work;
}

bool deliver_waiting(struct poller *p)
{
	return p->nr_waiting != 0 || groups_waiting(p, 0, false) != 0;
}

unsigned deliver_flush(struct poller *p, uint64_t ts)
{
	unsigned work = groups_waiting(p, ts, true), published = 0;

	/* A backlog moved: POSTs that waited for room are taken again in the
	 * next loop (source_submit.c reads the flag). */
	if (work && p->posts_blocked)
		p->backlog_moved = true;

	/* A15: pairs with R12 (the control thread's release of queues_gen
	 * after it changed p->queues). */
	uint32_t gen = onering_atomic_load(&p->queues_gen, onering_mo_acquire);
	if (p->nr_waiting || p->recount || gen != p->queues_gen_seen) {
		p->recount = false;
		p->queues_gen_seen = gen;
		work += flush_walk(p, ts);
	}
	/* The rings written this loop, and only those. */
	struct broker_queue *q = p->dirty;
	p->dirty = NULL;
	while (q) {
		struct broker_queue *next = q->dirty_next;
		q->dirty_next = NULL;
		q->dirty = false;
		if (queue_live(q)) {
			uint64_t n;
			if (q->top_level == 0) {
				uint64_t before = q->evp.published_pos;
				onering_ring_publish(&q->evp); /* R1 (shm/ring.h) */
				n = q->evp.published_pos - before;
			} else {
				n = publish_levels(q);
			}
			broker_count(&q->ctr[ONERING_QC_PUBLISHED], n);
			published += (unsigned)n;
			if (broker_queue_wake(q)) /* F2, R3 (shm/doorbell.h) */
				broker_count(&q->ctr[ONERING_QC_WAKES], 1);
		}
		q = next;
	}
	broker_count(&p->ctr[ONERING_PC_PUBLISHED], published);
	return work + published;
}
