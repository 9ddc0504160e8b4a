/* SPDX-License-Identifier: MIT */
/*
 * A broker in memory for deliver_test.cpp (see deliver_support.h for why it
 * is C behind a small interface).
 *
 * Linked with the real broker/deliver.c, balance.c, lane.c, registry.c and
 * queue.c (for broker_queue_lookup). Defined here instead: the one
 * control-thread function queue.c calls that would drag group.c and the
 * control thread in (broker_group_unref; only queue teardown calls it, and
 * no test tears a queue down through queue.c: it aborts if reached).
 *
 * Memory: each queue's events control block, consumer control block,
 * doorbell and slots are separate aligned allocations of the ABI types
 * (shm/abi.h), zeroed, instead of two memfd segments; the rings start at
 * position 0 like broker_queue_create's.
 */
#include "tests/broker/deliver_support.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "broker/accept.h"
#include "broker/balance.h"
#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/group.h"
#include "broker/lane.h"
#include "broker/queue.h"
#include "tests/broker/zalloc.h"
#include "shm/doorbell.h"
#include "shm/ring.h"

struct dt_queue {
	struct broker_queue *q;
	struct onering_events_ctl *ectl;
	struct onering_consumer_ctl *cctl;
	struct onering_doorbell *db;
	unsigned char *slots;
	struct onering_ring_consumer cons; /* the test's consumer */
	/* Priority levels above 0 (dt_queue_levels): their tails and slots,
	 * and the test's consumer of each. */
	struct onering_levels_ctl *lctl;
	unsigned char *level_slots;
	struct onering_ring_consumer level_cons[ONERING_PRIO_LEVELS - 1];
	uint32_t nr_levels;
};

struct dt {
	struct broker *b;
	unsigned nr_pollers;
	struct broker_queue *queues[DT_MAX_QUEUES]; /* b->queues */
	struct dt_queue q[DT_MAX_QUEUES];
	unsigned nr_queues;
	struct broker_sub *subs[DT_MAX_SUBS];
	unsigned nr_subs;
	struct broker_group *groups[DT_MAX_GROUPS];
	unsigned nr_groups;
};

/* queue.c's finalize calls it for completion-mode subscriptions (accept.c),
 * which this test never makes. */
void broker_stream_sub_end(struct broker *b, struct broker_sub *s)
{
	(void)b;
	(void)s;
}

/* queue.c's one call into group.c (broker_queue_teardown), never made here. */
void broker_group_unref(struct broker *b, struct broker_group *g)
{
	(void)b;
	(void)g;
	abort();
}

struct dt *dt_new(unsigned nr_pollers)
{
	if (nr_pollers == 0 || nr_pollers > DT_MAX_POLLERS)
		return NULL;
	struct dt *t = calloc(1, sizeof(*t));
	struct broker *b = zalloc(sizeof(*b));

	if (!t || !b) {
		free(t);
		free(b);
		return NULL;
	}
	t->b = b;
	t->nr_pollers = nr_pollers;
	b->cfg.plan.nr_pollers = nr_pollers;
	b->cfg.max_queues = DT_MAX_QUEUES;
	b->queues = t->queues;
	b->cpu_count = 4;
	b->reap_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	cds_wfcq_init(&b->fault_head, &b->fault_tail);
	cds_wfcq_init(&b->reap_head, &b->reap_tail);
	if (b->reap_fd < 0 || broker_registry_init(&b->reg, DT_MAX_SUBS + 1) < 0)
		goto fail;
	for (unsigned i = 0; i < nr_pollers; i++) {
		struct poller *p = &b->pollers[i];
		p->b = b;
		p->idx = i;
		p->node = (int)i;
		p->kick_fd = -1;
		CDS_INIT_LIST_HEAD(&p->queues);
		for (unsigned j = 0; j < nr_pollers; j++)
			p->dist[j] = i == j ? 10 : 20;
	}
	if (nr_pollers > 1 && broker_lanes_init(b) < 0)
		goto fail;
	return t;
fail:
	dt_free(t);
	return NULL;
}

void dt_free(struct dt *t)
{
	if (!t)
		return;
	struct broker *b = t->b;
	for (unsigned i = 0; i < t->nr_groups; i++) {
		struct broker_group *g = t->groups[i];
		for (unsigned pi = 0; pi < t->nr_pollers; pi++) {
			struct broker_pgroup *pg = &g->pg[pi];
			for (unsigned k = 0; k < ONERING_PRIO_LEVELS; k++) {
				free(pg->bl[k].sub_keys);
				free(pg->bl[k].recs);
				free(pg->bl[k].rec_flows);
			}
			free(pg->flows);
			free(pg->cands);
		}
		free(g->pg);
		free(g->members);
		free(g);
	}
	for (unsigned i = 0; i < t->nr_subs; i++)
		free(t->subs[i]);
	for (unsigned i = 0; i < t->nr_queues; i++) {
		struct dt_queue *dq = &t->q[i];
		if (dq->q)
			free(dq->q->pkt_area);
		if (dq->q && dq->q->bell_fd > 0)
			close(dq->q->bell_fd);
		free(dq->q);
		free(dq->ectl);
		free(dq->cctl);
		free(dq->db);
		free(dq->slots);
		free(dq->lctl);
		free(dq->level_slots);
	}
	broker_lanes_fini(b);
	broker_registry_fini(&b->reg);
	if (b->reap_fd >= 0)
		close(b->reap_fd);
	free(b);
	free(t);
}

int dt_queue_add(struct dt *t, unsigned pi, uint32_t cap, uint32_t pkt_stride)
{
	if (t->nr_queues == DT_MAX_QUEUES || pi >= t->nr_pollers)
		return -1;
	unsigned qi = t->nr_queues;
	struct dt_queue *dq = &t->q[qi];
	struct broker_queue *q = zalloc(sizeof(*q));

	dq->ectl = zalloc(sizeof(*dq->ectl));
	dq->cctl = zalloc(sizeof(*dq->cctl));
	dq->db = zalloc(sizeof(*dq->db));
	dq->slots = zalloc((size_t)cap * ONERING_RING_SLOT_SIZE);
	dq->q = q;
	t->nr_queues++; /* freed by dt_free from here on */
	if (!q || !dq->ectl || !dq->cctl || !dq->db || !dq->slots)
		return -1;
	q->bell_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); /* rung as the broker does */
	if (q->bell_fd < 0)
		return -1;
	q->id = qi + 100; /* not the slot: lookups must check both */
	q->slot = qi;
	q->owner_pid = 1;
	q->poller = &t->b->pollers[pi];
	q->node = pi;
	q->ectl = dq->ectl;
	q->cctl = dq->cctl;
	q->db = dq->db;
	q->ectl->ev_capacity = cap;
	CDS_INIT_LIST_HEAD(&q->subs);
	cds_wfcq_node_init(&q->fault_node);
	if (pkt_stride) {
		q->pkt_area = calloc(cap, pkt_stride);
		if (!q->pkt_area)
			return -1;
		q->pkt_stride = pkt_stride;
	}
	onering_ring_shared_init(&q->ectl->ev_tail_pos, &q->cctl->ev_head_pos, 0);
	onering_doorbell_init(q->db);
	if (onering_ring_producer_init(&q->evp, &q->ectl->ev_tail_pos, &q->cctl->ev_head_pos,
				       dq->slots, cap, 0) < 0 ||
	    onering_ring_consumer_init(&dq->cons, &q->ectl->ev_tail_pos, &q->cctl->ev_head_pos,
				       dq->slots, cap, 0) < 0)
		return -1;
	q->pending_tail = &q->pending_head;
	onering_atomic_store(&q->state, BROKER_QUEUE_LIVE, onering_mo_relaxed);
	onering_atomic_store(&q->ctr[ONERING_QC_CAPACITY], cap, onering_mo_relaxed);
	dq->nr_levels = 1;
	t->queues[qi] = q;
	cds_list_add_rcu(&q->poller_node, &q->poller->queues);
	/* R12, as the control thread does after changing the list. */
	onering_atomic_fetch_add(&q->poller->queues_gen, 1u, onering_mo_release);
	return (int)qi;
}

int dt_queue_levels(struct dt *t, unsigned qi, uint32_t nr_levels)
{
	struct dt_queue *dq = &t->q[qi];
	struct broker_queue *q = dq->q;
	uint32_t cap = q->evp.capacity;

	if (nr_levels < 2 || nr_levels > ONERING_PRIO_LEVELS || dq->lctl)
		return -1;
	dq->lctl = zalloc(sizeof(*dq->lctl));
	dq->level_slots = zalloc((size_t)(nr_levels - 1) * cap * ONERING_RING_SLOT_SIZE);
	if (!dq->lctl || !dq->level_slots ||
	    broker_queue_levels_init(q, nr_levels, dq->lctl, dq->cctl->level_head_pos,
				     dq->level_slots) < 0)
		return -1;
	for (uint32_t k = 1; k < nr_levels; k++)
		if (onering_ring_consumer_init(&dq->level_cons[k - 1], &dq->lctl->level_tail_pos[k - 1],
					       &dq->cctl->level_head_pos[k - 1],
					       dq->level_slots + (size_t)(k - 1) * cap *
								       ONERING_RING_SLOT_SIZE,
					       cap, 0) < 0)
			return -1;
	dq->ectl->nr_levels = nr_levels;
	dq->nr_levels = nr_levels;
	return 0;
}

static struct onering_ring_consumer *level_cons(struct dt *t, unsigned qi, uint32_t level)
{
	return level == 0 ? &t->q[qi].cons : &t->q[qi].level_cons[level - 1];
}

int64_t dt_level_visible(struct dt *t, unsigned qi, uint32_t level)
{
	return onering_ring_consumer_count(level_cons(t, qi, level));
}

int dt_consume_level(struct dt *t, unsigned qi, uint32_t level, struct onering_event *out,
		     unsigned max)
{
	return onering_ring_dequeue_burst(level_cons(t, qi, level), out, max);
}

void dt_sub_set_prio(struct dt *t, int si, uint32_t prio)
{
	t->subs[si]->prio = (uint8_t)prio;
}

uint64_t dt_lctr(struct dt *t, unsigned qi, uint32_t level, unsigned ctr)
{
	return onering_atomic_load(&t->q[qi].q->level_ctr[level][ctr], onering_mo_relaxed);
}

int dt_group_add(struct dt *t, uint32_t policy, uint32_t backlog_max, const unsigned *members,
		 unsigned n)
{
	if (t->nr_groups == DT_MAX_GROUPS)
		return -1;
	struct broker_group *g = calloc(1, sizeof(*g));
	if (!g)
		return -1;
	unsigned gi = t->nr_groups++;
	t->groups[gi] = g;
	g->pg = calloc(t->nr_pollers, sizeof(*g->pg));
	g->members = malloc(sizeof(*g->members) + n * sizeof(g->members->q[0]));
	if (!g->pg || !g->members)
		return -1;
	g->slot = gi;
	g->id = gi + 1;
	strcpy(g->name, gi ? "g1" : "g0");
	onering_atomic_store(&g->policy, policy, onering_mo_relaxed);
	onering_atomic_store(&g->numa, (uint32_t)ONERING_NUMA_INTERLEAVE, onering_mo_relaxed);
	onering_atomic_store(&g->spill_pct, 100u, onering_mo_relaxed);
	onering_atomic_store(&g->wake, (uint32_t)ONERING_WAKE_LIFO, onering_mo_relaxed);
	onering_atomic_store(&g->max_running, 0u, onering_mo_relaxed);
	onering_atomic_store(&g->backlog_max, backlog_max, onering_mo_relaxed);
	g->members->n = n;
	for (unsigned i = 0; i < n; i++) {
		g->members->q[i] = t->q[members[i]].q;
		t->q[members[i]].q->group = g;
	}
	g->nr_members = n;
	t->b->groups[gi] = g;
	onering_atomic_store(&t->b->nr_groups_pub, gi + 1, onering_mo_release);
	return (int)gi;
}

void dt_group_set_numa(struct dt *t, int gi, uint32_t numa, uint32_t spill_pct)
{
	onering_atomic_store(&t->groups[gi]->numa, numa, onering_mo_relaxed);
	onering_atomic_store(&t->groups[gi]->spill_pct, spill_pct, onering_mo_relaxed);
}

void dt_group_set_wake(struct dt *t, int gi, uint32_t wake, uint32_t max_running)
{
	onering_atomic_store(&t->groups[gi]->wake, wake, onering_mo_relaxed);
	onering_atomic_store(&t->groups[gi]->max_running, max_running, onering_mo_relaxed);
}

int dt_sub_add(struct dt *t, unsigned qi, int gi, uint64_t cookie)
{
	if (t->nr_subs == DT_MAX_SUBS || qi >= t->nr_queues)
		return -1;
	struct broker_sub *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	if (broker_registry_alloc(&t->b->reg, &s->id, &s->gen) < 0) {
		free(s);
		return -1;
	}
	s->fd = -1;
	s->kind = ONERING_EV_FD;
	s->mode = ONERING_MODE_EDGE;
	s->cookie = cookie;
	s->queue = t->q[qi].q;
	s->group = gi >= 0 ? t->groups[gi] : NULL;
	s->home = &t->b->pollers[0];
	CDS_INIT_LIST_HEAD(&s->queue_node);
	cds_wfcq_node_init(&s->reap_node);
	broker_registry_publish(&t->b->reg, s);
	t->subs[t->nr_subs] = s;
	return (int)t->nr_subs++;
}

void dt_sub_kill(struct dt *t, int si)
{
	struct broker_sub *s = t->subs[si];

	onering_atomic_store(&s->dead, 1u, onering_mo_relaxed);
	deliver_sub_forget(s);
	broker_registry_remove(&t->b->reg, s);
}

void dt_next_loop(struct dt *t, unsigned pi)
{
	t->b->pollers[pi].loop_no++;
}

void dt_report(struct dt *t, unsigned pi, int si, uint32_t events, uint32_t count, uint64_t ts)
{
	deliver_sub(&t->b->pollers[pi], t->subs[si], events, count, ts);
}

unsigned dt_flush(struct dt *t, unsigned pi, uint64_t ts)
{
	return deliver_flush(&t->b->pollers[pi], ts);
}

int dt_to_queue(struct dt *t, unsigned pi, unsigned qi, const struct onering_event *rec)
{
	return deliver_to_queue(&t->b->pollers[pi], t->q[qi].q, rec);
}

int dt_post(struct dt *t, unsigned pi, int gi, const struct onering_event *rec, uint64_t flow)
{
	return deliver_post(&t->b->pollers[pi], t->groups[gi], rec, flow);
}

void dt_forget(struct dt *t, int si)
{
	deliver_sub_forget(t->subs[si]);
}

unsigned dt_packets(struct dt *t, unsigned pi, int gi, const uint32_t *lens, unsigned n,
		    unsigned *truncated, struct onering_event *recs)
{
	const void *data[64];
	unsigned char *bytes = calloc(n ? n : 1, 2048);

	assert(n <= 64);
	for (unsigned i = 0; i < n; i++) {
		assert(lens[i] <= 2048);
		memset(bytes + (size_t)i * 2048, (int)(i + 1), lens[i]);
		data[i] = bytes + (size_t)i * 2048;
		memset(&recs[i], 0, sizeof(recs[i]));
		recs[i].kind = ONERING_EV_NIC;
		recs[i].payload.nic.length = lens[i];
		recs[i].payload.nic.rss_hash = 1000 + i;
	}
	unsigned placed = deliver_packets(&t->b->pollers[pi], t->groups[gi], recs, data, lens, n,
					  truncated);
	free(bytes);
	return placed;
}

int dt_take_handoff(struct dt *t, unsigned pi, unsigned src)
{
	struct broker_lane *l = broker_lane(t->b, src, pi);
	const struct broker_handoff *h;
	const void *body;

	if (broker_lane_peek(l, &h, &body) != 1)
		return 0;
	struct broker_queue *q = broker_queue_lookup(t->b, h->qslot, h->qid);
	if (!q)
		return -ENOENT;
	int r = deliver_handoff(&t->b->pollers[pi], q, body, h->flow);
	if (r < 0)
		return r;
	broker_lane_done(l);
	broker_lane_flush(l);
	return 1;
}

int64_t dt_visible(struct dt *t, unsigned qi)
{
	int64_t n = 0;
	for (uint32_t level = 0; level < t->q[qi].nr_levels; level++) {
		int64_t r = onering_ring_consumer_count(level_cons(t, qi, level));
		if (r < 0)
			return r;
		n += r;
	}
	return n;
}

bool dt_ring_drained(struct dt *t, unsigned qi)
{
	/* Acquire both: pairs with the consumer's R2 and the poller's R1. */
	return onering_atomic_load(&t->q[qi].cctl->ev_head_pos, onering_mo_acquire) ==
	       onering_atomic_load(&t->q[qi].ectl->ev_tail_pos, onering_mo_acquire);
}

int dt_consume(struct dt *t, unsigned qi, struct onering_event *out, unsigned max)
{
	/* As the library does: the highest level with records first. */
	int n = 0;
	for (uint32_t level = t->q[qi].nr_levels; level-- > 0 && (unsigned)n < max;) {
		int r = onering_ring_dequeue_burst(level_cons(t, qi, level), out + n,
						   max - (unsigned)n);
		if (r < 0)
			return n ? n : r;
		n += r;
	}
	return n;
}

void dt_set_head(struct dt *t, unsigned qi, uint64_t pos)
{
	onering_atomic_store(&t->q[qi].cctl->ev_head_pos, pos, onering_mo_release);
}

void dt_set_consumer(struct dt *t, unsigned qi, uint32_t state, uint64_t idle_ns)
{
	onering_atomic_store(&t->q[qi].db->state, state, onering_mo_relaxed);
	onering_atomic_store(&t->q[qi].db->idle_ns, idle_ns, onering_mo_relaxed);
}

uint32_t dt_consumer_state(struct dt *t, unsigned qi)
{
	return onering_atomic_load(&t->q[qi].db->state, onering_mo_relaxed);
}

uint32_t dt_futex(struct dt *t, unsigned qi)
{
	return onering_atomic_load(&t->q[qi].db->futex, onering_mo_relaxed);
}

const unsigned char *dt_packet(struct dt *t, unsigned qi, uint64_t offset)
{
	return t->q[qi].q->pkt_area + offset;
}

uint64_t dt_qctr(struct dt *t, unsigned qi, unsigned ctr)
{
	return onering_atomic_load(&t->q[qi].q->ctr[ctr], onering_mo_relaxed);
}

uint64_t dt_gctr(struct dt *t, int gi, unsigned pi, unsigned ctr)
{
	return onering_atomic_load(&t->groups[gi]->pg[pi].ctr[ctr], onering_mo_relaxed);
}

uint64_t dt_pctr(struct dt *t, unsigned pi, unsigned ctr)
{
	return onering_atomic_load(&t->b->pollers[pi].ctr[ctr], onering_mo_relaxed);
}

int dt_queue_state(struct dt *t, unsigned qi)
{
	return onering_atomic_load(&t->q[qi].q->state, onering_mo_acquire);
}

uint64_t dt_queue_inflight(struct dt *t, unsigned qi)
{
	uint64_t n = 0;
	for (unsigned k = 0; k < ONERING_PRIO_LEVELS; k++)
		n += onering_atomic_load(&t->q[qi].q->inflight[k], onering_mo_relaxed);
	return n;
}

static int sub_index(struct dt *t, const struct broker_sub *s)
{
	for (unsigned i = 0; i < t->nr_subs; i++)
		if (t->subs[i] == s)
			return (int)i;
	return -1;
}

unsigned dt_pending_len(struct dt *t, unsigned qi)
{
	unsigned n = 0;
	struct broker_queue *q = t->q[qi].q;

	for (struct broker_sub *s = q->pending_head; s; s = s->pending_next)
		n++;
	/* The tail pointer must end the list it heads. */
	struct broker_sub **tail = &q->pending_head;
	while (*tail)
		tail = &(*tail)->pending_next;
	assert(q->pending_tail == tail);
	return n;
}

int dt_pending_at(struct dt *t, unsigned qi, unsigned k)
{
	struct broker_sub *s = t->q[qi].q->pending_head;

	while (s && k--)
		s = s->pending_next;
	return s ? sub_index(t, s) : -1;
}

void dt_sub_get(struct dt *t, int si, struct dt_sub_view *out)
{
	const struct broker_sub *s = t->subs[si];

	out->pending = s->pending;
	out->events = s->pending_events;
	out->count = s->pending_count;
	out->id = s->id;
	out->gen = s->gen;
}

uint32_t dt_backlog_subs(struct dt *t, int gi, unsigned pi)
{
	uint32_t n = 0;
	for (unsigned k = 0; k < ONERING_PRIO_LEVELS; k++)
		n += t->groups[gi]->pg[pi].bl[k].sub_count;
	return n;
}

uint32_t dt_backlog_recs(struct dt *t, int gi, unsigned pi)
{
	uint32_t n = 0;
	for (unsigned k = 0; k < ONERING_PRIO_LEVELS; k++)
		n += t->groups[gi]->pg[pi].bl[k].rec_count;
	return n;
}

unsigned dt_take_faults(struct dt *t, int *first)
{
	struct cds_wfcq_node *node;
	unsigned n = 0;

	*first = -1;
	while ((node = cds_wfcq_dequeue_blocking(&t->b->fault_head, &t->b->fault_tail))) {
		struct broker_queue *q = caa_container_of(node, struct broker_queue, fault_node);
		if (n++ == 0)
			*first = (int)q->slot;
	}
	return n;
}

uint64_t dt_reap_count(struct dt *t)
{
	eventfd_t v = 0;

	if (eventfd_read(t->b->reap_fd, &v) < 0)
		return 0;
	return v;
}
