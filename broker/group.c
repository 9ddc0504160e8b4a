/* SPDX-License-Identifier: MIT */
/*
 * Groups and explicit load balancing (see group.h for who owns what).
 *
 * The decision, per record, on the poller that saw the event:
 *   1. members = the group's RCU member array; for each, its unconsumed
 *      records (exact for queues this poller serves; published tail plus
 *      hand-offs in flight for the others), its capacity, whether it is on
 *      this poller's node, and its consumer's state and idle time;
 *   2. NUMA filter: strict keeps the local members; spill:P keeps them
 *      unless every one is above P % full (or there is none), and then adds
 *      the members of the nearest remote node with room (SLIT distance);
 *      interleave keeps all;
 *   3. policy: rr (next non-full after a cursor), least (fewest unconsumed;
 *      ties by wake order), sticky (the flow's queue while it holds an
 *      unconsumed record of the flow, else least), lifo (an idle member by
 *      wake order; a sleeping one only while fewer than max_running run),
 *      local (rr over local members, then over the rest);
 *   4. nobody can take it: it waits in this poller's backlog of the group
 *      (sources coalesce there; whole records up to backlog_max).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/queue.h"
#include "broker/group.h"
#include "shm/doorbell.h"
#include "shm/log.h"

#define GROUP_BACKLOG_DEFAULT 65536u
#define GROUP_SPILL_DEFAULT 90u

struct broker_redeliver {
	struct cds_wfcq_node node;
	uint32_t group_id; /* looked up again by the poller: the group may end first */
	uint32_t n;
	struct onering_event recs[];
};

/* ======================================================================= */
/* Control thread                                                          */

void broker_group_defaults(struct onering_msg_group *m)
{
	m->policy = ONERING_POLICY_RR;
	m->numa = ONERING_NUMA_SPILL;
	m->spill_pct = GROUP_SPILL_DEFAULT;
	m->wake = ONERING_WAKE_LIFO;
	m->max_running = 0;
	m->backlog_max = GROUP_BACKLOG_DEFAULT;
}

int broker_group_apply(struct broker_group *g, const struct onering_msg_group *m)
{
	if ((m->set & ~ONERING_GSET_ALL) ||
	    ((m->set & ONERING_GSET_POLICY) && m->policy > ONERING_POLICY_MAX) ||
	    ((m->set & ONERING_GSET_NUMA) &&
	     (m->numa > ONERING_NUMA_MAX ||
	      (m->numa == ONERING_NUMA_SPILL && (m->spill_pct < 1 || m->spill_pct > 100)))) ||
	    ((m->set & ONERING_GSET_WAKE) && m->wake > ONERING_WAKE_MAX) ||
	    ((m->set & ONERING_GSET_BACKLOG) && (m->backlog_max < 1 || m->backlog_max > 1u << 24)))
		return -EINVAL;
	/* Each setting is read on its own by the pollers, on every decision. A
	 * tune's reply waits for broker_pollers_settle(): every decision after
	 * it sees all of them (one during the tune may see some). */
	if (m->set & ONERING_GSET_POLICY)
		onering_atomic_store(&g->policy, m->policy, onering_mo_relaxed);
	if (m->set & ONERING_GSET_NUMA) {
		onering_atomic_store(&g->spill_pct, m->spill_pct ? m->spill_pct : GROUP_SPILL_DEFAULT,
				     onering_mo_relaxed);
		onering_atomic_store(&g->numa, m->numa, onering_mo_relaxed);
	}
	if (m->set & ONERING_GSET_WAKE)
		onering_atomic_store(&g->wake, m->wake, onering_mo_relaxed);
	if (m->set & ONERING_GSET_MAX_RUNNING)
		onering_atomic_store(&g->max_running, m->max_running, onering_mo_relaxed);
	if (m->set & ONERING_GSET_BACKLOG)
		onering_atomic_store(&g->backlog_max, m->backlog_max, onering_mo_relaxed);
	return 0;
}

void broker_group_describe(const struct broker_group *g, struct onering_msg_group *m)
{
	memset(m, 0, sizeof(*m));
	memcpy(m->name, g->name, sizeof(m->name));
	m->group_id = g->id;
	m->set = 0;
	m->policy = (uint8_t)onering_atomic_load(&g->policy, onering_mo_relaxed);
	m->numa = (uint8_t)onering_atomic_load(&g->numa, onering_mo_relaxed);
	m->spill_pct = (uint8_t)onering_atomic_load(&g->spill_pct, onering_mo_relaxed);
	m->wake = (uint8_t)onering_atomic_load(&g->wake, onering_mo_relaxed);
	m->max_running = onering_atomic_load(&g->max_running, onering_mo_relaxed);
	m->backlog_max = onering_atomic_load(&g->backlog_max, onering_mo_relaxed);
	m->members = g->nr_members;
}

/* The client with this id, or NULL (control thread). */
static struct broker_client *client_by_id(struct broker *b, uint32_t id)
{
	struct broker_client *c;

	cds_list_for_each_entry(c, &b->clients, node)
		if (c->id == id)
			return c;
	return NULL;
}

int broker_group_get(struct broker *b, const char *name, bool create,
		     struct broker_client *creator, struct broker_group **out)
{
	struct onering_msg_group m;
	unsigned slot = BROKER_MAX_GROUPS;

	if (!onering_name_valid(name))
		return -EINVAL;
	for (unsigned i = 0; i < b->nr_groups; i++) {
		if (!b->groups[i]) {
			slot = slot < i ? slot : i;
			continue;
		}
		if (strcmp(b->groups[i]->name, name) == 0) {
			*out = b->groups[i];
			return 0;
		}
	}
	if (!create)
		return -ENOENT;
	if (slot == BROKER_MAX_GROUPS && b->nr_groups < BROKER_MAX_GROUPS)
		slot = b->nr_groups;
	if (slot == BROKER_MAX_GROUPS) {
		onering_log(ONERING_LOG_WARN, "group '%s': the broker has %u groups, the most it "
			    "keeps", name, BROKER_MAX_GROUPS);
		return -ENOSPC;
	}
	if (creator && creator->nr_groups_created >= b->cfg.max_client_groups) {
		onering_log(ONERING_LOG_NOTICE, "client %u (pid %d uid %u): group '%s' not created: "
			    "it made %u live groups, the most allowed (--max-client-groups)",
			    creator->id, (int)creator->pid, (unsigned)creator->uid, name,
			    creator->nr_groups_created);
		return -EDQUOT;
	}
	struct broker_group *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->pg = calloc(b->cfg.plan.nr_pollers, sizeof(*g->pg));
	if (!g->pg) {
		free(g);
		return -ENOMEM;
	}
	g->slot = slot;
	g->id = ((uint32_t)b->group_gen[slot] << 8) | (slot + 1);
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->configured = !creator;
	g->owner_uid = creator ? creator->uid : geteuid();
	g->creator_id = creator ? creator->id : 0;
	if (creator)
		creator->nr_groups_created++;
	memset(&m, 0, sizeof(m));
	broker_group_defaults(&m);
	m.set = ONERING_GSET_ALL;
	broker_group_apply(g, &m);
	for (unsigned i = 0; i < b->cfg.nr_groups; i++)
		if (strcmp(b->cfg.groups[i].name, name) == 0) {
			broker_group_apply(g, &b->cfg.groups[i]); /* validated at parse */
			for (int k = 0; k < BROKER_PERM_NR; k++) /* a later --group adds to it */
				if (b->cfg.group_acls[i][k].set)
					g->acl[k] = b->cfg.group_acls[i][k];
			g->configured = true; /* --group: the broker's, whoever opens it first */
			g->owner_uid = geteuid();
		}
	BROKER_TSAN_PUBLISH(g);
	rcu_assign_pointer(b->groups[slot], g);
	if (slot == b->nr_groups)
		b->nr_groups++;
	b->nr_live_groups++;
	broker_count(&b->ctr[ONERING_BC_GROUPS], 1);
	/* Release: a poller that sees the count sees the pointer. */
	onering_atomic_store(&b->nr_groups_pub, b->nr_groups, onering_mo_release);
	onering_log(ONERING_LOG_INFO, "group %u '%s': policy %s, owner uid %u%s", g->id, g->name,
		    onering_policy_name(m.policy), (unsigned)g->owner_uid,
		    g->configured ? " (configured)" : "");
	*out = g;
	return 0;
}

static bool acl_match(const struct broker_acl *acl, const struct broker_cred *who)
{
	if (acl->any)
		return true;
	for (unsigned i = 0; i < acl->nr; i++) {
		if (!acl->e[i].is_gid) {
			if (acl->e[i].id == who->uid)
				return true;
			continue;
		}
		if (acl->e[i].id == who->gid)
			return true;
		for (uint32_t k = 0; k < who->nr_groups; k++)
			if (acl->e[i].id == who->groups[k])
				return true;
	}
	return false;
}

bool broker_group_permits(const struct broker *b, const struct broker_group *g,
			  enum broker_perm what, const struct broker_cred *who)
{
	(void)b;
	if (who->uid == 0 || who->uid == geteuid())
		return true;
	if (!g->configured)
		return who->uid == g->owner_uid;
	if (g->acl[what].set)
		return acl_match(&g->acl[what], who);
	/* Configured groups without a list: any client joins and posts; only
	 * root and the broker's uid tune. */
	return what != BROKER_PERM_TUNE;
}

void broker_group_perm_text(const struct broker *b, const struct broker_group *g,
			    enum broker_perm what, char *buf, size_t len)
{
	const struct broker_acl *acl = &g->acl[what];
	size_t n;

	(void)b;
	n = (size_t)snprintf(buf, len, "root, uid %u (the broker's)", (unsigned)geteuid());
	if (!g->configured) {
		if (n < len)
			n += (size_t)snprintf(buf + n, len - n, ", uid %u (its owner)",
					      (unsigned)g->owner_uid);
		return;
	}
	if (!acl->set) {
		if (what != BROKER_PERM_TUNE && n < len)
			snprintf(buf + n, len - n, ", any client");
		return;
	}
	if (acl->any && n < len)
		n += (size_t)snprintf(buf + n, len - n, ", any client");
	for (unsigned i = 0; i < acl->nr && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, ", %s %u", acl->e[i].is_gid ? "gid" : "uid",
				      (unsigned)acl->e[i].id);
}

/* A client's group with nothing left that refers to it: out of the table
 * now, freed by broker_groups_reap once no poller can hold it. */
void broker_group_maybe_end(struct broker *b, struct broker_group *g)
{
	if (g->configured || g->dead || g->nr_refs || g->pinned)
		return;
	g->dead = true;
	rcu_assign_pointer(b->groups[g->slot], NULL);
	b->group_gen[g->slot]++; /* its id never resolves again */
	b->nr_live_groups--;
	broker_count(&b->ctr[ONERING_BC_GROUPS], (uint64_t)-1);
	struct broker_client *c = g->creator_id ? client_by_id(b, g->creator_id) : NULL;
	if (c)
		c->nr_groups_created--;
	cds_list_add_tail(&g->grave_node, &b->graveyard);
	onering_log(ONERING_LOG_INFO, "group %u '%s' ended with its last member", g->id, g->name);
}

void broker_group_ref(struct broker_group *g)
{
	g->nr_refs++;
}

void broker_group_unref(struct broker *b, struct broker_group *g)
{
	g->nr_refs--;
	broker_group_maybe_end(b, g);
}

void broker_groups_client_gone(struct broker *b, struct broker_client *c)
{
	for (unsigned i = 0; i < b->nr_groups; i++) {
		struct broker_group *g = b->groups[i];
		if (g && g->pinned && g->creator_id == c->id) {
			g->pinned = false;
			broker_group_maybe_end(b, g);
		}
	}
}

static void group_free(struct broker *b, struct broker_group *g)
{
	uint64_t lost = 0;

	for (unsigned p = 0; p < b->cfg.plan.nr_pollers; p++) {
		lost += g->pg[p].rec_count;
		free(g->pg[p].sub_keys);
		free(g->pg[p].recs);
		free(g->pg[p].rec_flows);
		free(g->pg[p].flows);
	}
	if (lost)
		onering_log(ONERING_LOG_NOTICE, "group '%s' ended with %llu records waiting for a "
			    "member: dropped", g->name, (unsigned long long)lost);
	free(g->pg);
	free(g->members);
	free(g->lane_tails);
	free(g);
}

unsigned broker_groups_reap(struct broker *b)
{
	struct broker_group *g, *tmp;
	unsigned n = b->cfg.plan.nr_pollers, waiting = 0;
	bool fresh = false;

	cds_list_for_each_entry(g, &b->graveyard, grave_node)
		fresh |= !g->lane_tails;
	if (fresh) {
		/* After the grace period no poller holds these groups from a lookup
		 * (a poller asleep offline holds nothing). Work queued for a group
		 * names it by id and looks it up again (redelivery batches), or sits
		 * in a lane, which is checked below. */
		urcu_qsbr_synchronize_rcu();
		BROKER_TSAN_GRACE_DONE();
		cds_list_for_each_entry(g, &b->graveyard, grave_node) {
			if (g->lane_tails)
				continue;
			g->lane_tails = calloc((size_t)n * n + 1, sizeof(uint64_t));
			if (!g->lane_tails)
				return 1; /* try again on the next round */
			/* Hand-offs naming g (its flow buckets) are all in the lanes now
			 * and nothing adds more: g may go once each lane's head passed
			 * its tail of this moment. */
			for (unsigned i = 0; i < n * n; i++)
				if (b->lanes && b->lanes[i])
					g->lane_tails[i] = onering_atomic_load(&b->lanes[i]->tail,
									 onering_mo_relaxed);
		}
	}
	cds_list_for_each_entry_safe(g, tmp, &b->graveyard, grave_node) {
		bool drained = true;
		for (unsigned i = 0; i < n * n && drained; i++)
			/* Pairs with the receiver's release of head (drain_lane): the
			 * hand-offs before it are done with. */
			drained = !b->lanes || !b->lanes[i] ||
				  (int64_t)(onering_atomic_load(&b->lanes[i]->head,
								 onering_mo_acquire) -
					    g->lane_tails[i]) >= 0;
		if (!drained) {
			waiting++;
			continue;
		}
		cds_list_del(&g->grave_node);
		group_free(b, g);
	}
	return waiting;
}

static void members_free_rcu(struct rcu_head *head)
{
	struct broker_members *m = caa_container_of(head, struct broker_members, rcu);

	BROKER_TSAN_GRACE_DONE();
	BROKER_TSAN_OBSERVE(m);
	free(m);
}

/* Replace g's member array with old - drop + add (either may be NULL). */
static int members_replace(struct broker_group *g, struct broker_queue *drop,
			   struct broker_queue *add)
{
	struct broker_members *old = g->members, *m;
	uint32_t n = old ? old->n : 0, k = 0;

	m = malloc(sizeof(*m) + (n + 1) * sizeof(m->q[0]));
	if (!m)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		if (old->q[i] != drop)
			m->q[k++] = old->q[i];
	if (add)
		m->q[k++] = add;
	m->n = k;
	g->nr_members = k;
	BROKER_TSAN_PUBLISH(m);
	rcu_assign_pointer(g->members, m);
	if (old) {
		BROKER_TSAN_PUBLISH(old); /* to the call_rcu thread */
		urcu_qsbr_call_rcu(&old->rcu, members_free_rcu);
	}
	return 0;
}

int broker_group_join(struct broker *b, struct broker_group *g, struct broker_queue *q)
{
	(void)b;
	if (g->nr_members >= BROKER_GROUP_MAX_MEMBERS) {
		onering_log(ONERING_LOG_WARN, "group '%s' has %u members, the most allowed", g->name,
			    g->nr_members);
		return -ENOSPC;
	}
	int r = members_replace(g, NULL, q);
	if (r == 0) {
		q->group = g;
		g->nr_refs++;
		g->pinned = false; /* from now on it ends with its last member */
	}
	return r;
}

void broker_group_leave(struct broker *b, struct broker_queue *q)
{
	(void)b;
	if (!q->group)
		return;
	/* Out of the array before the grace period that precedes teardown. If
	 * the copy cannot be made, the queue stays listed but not LIVE, and
	 * every pick skips it. */
	if (members_replace(q->group, q, NULL) < 0)
		onering_log(ONERING_LOG_ERR, "group '%s': out of memory removing queue %u",
			    q->group->name, q->id);
	/* Its reference goes at teardown (broker_queue_teardown), after the
	 * redelivery that still needs the group. */
}

void broker_group_counters(const struct broker *b, const struct broker_group *g,
			   uint64_t ctr[ONERING_GC_NR], uint32_t *sleeping)
{
	memset(ctr, 0, ONERING_GC_NR * sizeof(ctr[0]));
	for (unsigned p = 0; p < b->cfg.plan.nr_pollers; p++)
		for (unsigned i = 0; i < ONERING_GC_NR; i++)
			ctr[i] += onering_atomic_load(&g->pg[p].ctr[i], onering_mo_relaxed);
	*sleeping = 0;
	if (!g->members)
		return;
	for (uint32_t i = 0; i < g->members->n; i++) {
		const struct broker_queue *q = g->members->q[i];
		uint32_t st = onering_atomic_load(&q->db->state, onering_mo_relaxed);
		bool empty = onering_atomic_load(&q->ectl->ev_tail_pos, onering_mo_relaxed) ==
			     onering_atomic_load(&q->cctl->ev_head_pos, onering_mo_relaxed);
		ctr[ONERING_GC_RUNNING] += st == ONERING_CONSUMER_RUNNING || !empty;
		*sleeping += st == ONERING_CONSUMER_SLEEPING && empty;
	}
}

uint32_t broker_group_redeliver(struct broker *b, struct broker_queue *q)
{
	struct onering_ring_producer *ev = &q->evp;
	const struct onering_event *slots =
		(const struct onering_event *)((char *)q->ev_seg.base + ONERING_EVENTS_SLOTS_OFFSET);
	uint64_t tail = ev->tail_pos; /* staged records too: complete once claimed */
	/* The consumer's head, if believable; else the last one the ring
	 * validated (which may give a few consumed records again: flagged). */
	uint64_t head = onering_atomic_load(&q->cctl->ev_head_pos, onering_mo_relaxed);
	if (head - ev->head_cache > tail - ev->head_cache)
		head = ev->head_cache;
	if (!q->group || tail == head)
		return 0;

	uint32_t n = (uint32_t)(tail - head);
	struct broker_redeliver *batch = malloc(sizeof(*batch) + n * sizeof(batch->recs[0]));
	if (!batch) {
		onering_log(ONERING_LOG_ERR, "queue %u: no memory to redeliver %u records: lost",
			    q->id, n);
		return 0;
	}
	uint32_t k = 0;
	for (uint64_t pos = head; pos != tail; pos++) {
		const struct onering_event *e = &slots[pos & ev->mask];
		if (e->kind == ONERING_EV_CONTROL)
			continue;
		if (e->kind != ONERING_EV_USER) {
			/* A source's record: only while the source lives on (not one of
			 * the dead client's own, which go with it). */
			struct broker_sub *s = e->sub_id < b->reg.size ? b->reg.table[e->sub_id] : NULL;
			if (!s || s->gen != e->sub_gen || broker_sub_dead(s) || s->queue->client == q->client)
				continue;
		}
		batch->recs[k] = *e;
		batch->recs[k].flags = (uint16_t)((e->flags & ~ONERING_EVF_FOREIGN) |
						  ONERING_EVF_REDELIVERED);
		k++;
	}
	if (k == 0) {
		free(batch);
		return 0;
	}
	batch->n = k;
	batch->group_id = q->group->id;
	cds_wfcq_node_init(&batch->node);
	BROKER_TSAN_PUBLISH(batch);
	cds_wfcq_enqueue(&q->poller->redeliver_head, &q->poller->redeliver_tail, &batch->node);
	poller_kick(q->poller);
	onering_log(ONERING_LOG_NOTICE, "queue %u of pid %d: %u unconsumed records handed to "
		    "group '%s' again", q->id, (int)q->owner_pid, k, q->group->name);
	return k;
}

int broker_lanes_init(struct broker *b)
{
	unsigned n = b->cfg.plan.nr_pollers;

	b->lanes = calloc((size_t)n * n, sizeof(*b->lanes));
	if (!b->lanes)
		return -ENOMEM;
	for (unsigned i = 0; i < n * n; i++) {
		if (i / n == i % n)
			continue; /* a poller never hands off to itself */
		b->lanes[i] = aligned_alloc(64, sizeof(struct broker_lane));
		if (!b->lanes[i])
			return -ENOMEM;
		memset(b->lanes[i], 0, sizeof(struct broker_lane));
	}
	return 0;
}

void broker_lanes_fini(struct broker *b)
{
	unsigned n = b->cfg.plan.nr_pollers;

	if (b->lanes)
		for (unsigned i = 0; i < n * n; i++)
			free(b->lanes[i]);
	free(b->lanes);
	b->lanes = NULL;
}

void broker_groups_fini(struct broker *b)
{
	/* Pollers have stopped; call_rcu callbacks may still hold old arrays. */
	for (unsigned i = 0; i < b->nr_groups; i++) {
		if (b->groups[i])
			group_free(b, b->groups[i]);
		b->groups[i] = NULL;
	}
	while (!cds_list_empty(&b->graveyard)) {
		struct broker_group *g = cds_list_first_entry(&b->graveyard, struct broker_group,
							      grave_node);
		cds_list_del(&g->grave_node);
		group_free(b, g);
	}
	b->nr_groups = 0;
	onering_atomic_store(&b->nr_groups_pub, 0, onering_mo_relaxed);
	for (unsigned p = 0; p < b->cfg.plan.nr_pollers; p++) {
		struct cds_wfcq_node *node;
		while ((node = __cds_wfcq_dequeue_blocking(&b->pollers[p].redeliver_head,
							   &b->pollers[p].redeliver_tail)))
			free(caa_container_of(node, struct broker_redeliver, node));
	}
}

/* ======================================================================= */
/* Pollers                                                                 */

/* The flow key of a record: the posted flow, else its source. */
static uint64_t record_flow(const struct onering_event *e)
{
	return e->kind == ONERING_EV_USER ? e->payload.user.flow : e->sub_id;
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

static inline struct broker_lane *lane_of(struct broker *b, unsigned src, unsigned dst)
{
	return b->lanes[src * b->cfg.plan.nr_pollers + dst];
}

static bool lane_push(struct broker_lane *l, const struct broker_handoff *h)
{
	uint64_t tail = onering_atomic_load(&l->tail, onering_mo_relaxed);

	if (tail - l->head_cache >= BROKER_LANE_SLOTS) {
		/* Pairs with the receiver's release of head (slots it is done with). */
		l->head_cache = onering_atomic_load(&l->head, onering_mo_acquire);
		if (tail - l->head_cache >= BROKER_LANE_SLOTS)
			return false;
	}
	l->slot[tail & (BROKER_LANE_SLOTS - 1)] = *h;
	/* Pairs with the receiver's acquire of tail: the slot is written. */
	onering_atomic_store(&l->tail, tail + 1, onering_mo_release);
	return true;
}

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
			poller_queue_fault(p, q, onering_ring_fault_str(q->evp.fault));
			return cap;
		}
		return (uint64_t)n;
	}
	/* Another poller's queue: its published tail plus what is on its way,
	 * against the consumer's head (untrusted: clamped). */
	uint64_t tail = onering_atomic_load(&q->ectl->ev_tail_pos, onering_mo_acquire) +
			onering_atomic_load(&q->inflight, onering_mo_relaxed);
	uint64_t head = onering_atomic_load(&q->cctl->ev_head_pos, onering_mo_relaxed);
	uint64_t used = tail - head;
	return used > cap ? cap : used;
}

struct cand {
	struct broker_queue *q;
	uint64_t used;
	uint64_t idle_ns;
	uint32_t cap;
	uint32_t state;
	uint16_t dist; /* from this poller's node to the queue's */
	bool local;
	bool ok; /* passes the NUMA filter */
};

static inline bool cand_full(const struct cand *c)
{
	return c->used >= c->cap;
}

static inline bool cand_idle(const struct cand *c)
{
	return c->used == 0 && c->state != ONERING_CONSUMER_RUNNING;
}

/* Among the candidates marked in elig[], the one the wake order puts first. */
static int wake_choose(struct broker_pgroup *pg, const struct cand *c, unsigned n,
		       const bool *elig, uint32_t wake)
{
	int best = -1;

	if (wake == ONERING_WAKE_RR) {
		for (unsigned k = 0; k < n; k++) {
			unsigned i = (pg->rr + k) % n;
			if (elig[i]) {
				pg->rr = i + 1;
				return (int)i;
			}
		}
		return -1;
	}
	if (wake == ONERING_WAKE_LOCAL_FIRST) {
		bool any_local = false;
		for (unsigned i = 0; i < n; i++)
			any_local |= elig[i] && c[i].local;
		for (unsigned i = 0; i < n; i++)
			if (elig[i] && (c[i].local || !any_local) &&
			    (best < 0 || c[i].idle_ns > c[best].idle_ns))
				best = (int)i;
		return best;
	}
	for (unsigned i = 0; i < n; i++) {
		if (!elig[i])
			continue;
		if (best < 0 || (wake == ONERING_WAKE_FIFO ? c[i].idle_ns < c[best].idle_ns
							   : c[i].idle_ns > c[best].idle_ns))
			best = (int)i;
	}
	return best;
}

static int pick_least(struct broker_pgroup *pg, const struct cand *c, unsigned n, uint32_t wake)
{
	bool elig[BROKER_GROUP_MAX_MEMBERS];
	uint64_t min = UINT64_MAX;

	for (unsigned i = 0; i < n; i++)
		if (c[i].ok && !cand_full(&c[i]) && c[i].used < min)
			min = c[i].used;
	if (min == UINT64_MAX)
		return -1;
	for (unsigned i = 0; i < n; i++)
		elig[i] = c[i].ok && c[i].used == min;
	return wake_choose(pg, c, n, elig, wake);
}

static int pick_rr(struct broker_pgroup *pg, const struct cand *c, unsigned n, bool local_only)
{
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (pg->rr + k) % n;
		if (c[i].ok && !cand_full(&c[i]) && (!local_only || c[i].local)) {
			pg->rr = i + 1;
			return (int)i;
		}
	}
	return -1;
}

static uint32_t flow_bucket(uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return (uint32_t)key & (BROKER_FLOW_BUCKETS - 1);
}

/* Does the flow still hold an unconsumed record in its queue? Then that
 * queue, which must be a member still; else NULL. */
static struct broker_queue *flow_holder(struct poller *p, struct broker_group *g,
					struct broker_flow *f)
{
	if (f->qid == 0)
		return NULL;
	struct broker_queue *q = broker_queue_lookup(p->b, f->qslot, f->qid);
	if (!q || q->group != g ||
	    onering_atomic_load(&q->state, onering_mo_acquire) != BROKER_QUEUE_LIVE) {
		f->qid = 0;
		return NULL;
	}
	/* Pairs with the placing poller's release of placed (end_pos first). */
	uint64_t placed = onering_atomic_load(&f->placed, onering_mo_acquire);
	if (placed != f->sent)
		return q; /* on its way there */
	uint64_t end = onering_atomic_load(&f->end_pos, onering_mo_relaxed);
	uint64_t head = onering_atomic_load(&q->cctl->ev_head_pos, onering_mo_relaxed);
	if ((int64_t)(head - end) < 0 && end - head <= q->evp.capacity)
		return q; /* not consumed yet */
	f->qid = 0;
	return NULL; /* idle: free to move */
}

/*
 * The decision. Returns the queue for one record of g (flow_key: the
 * source or posted flow), or NULL when none can take it now; *flowp is the
 * sticky bucket to account the record in (or NULL), *remote whether it
 * leaves this poller's node.
 */
/* pick() flags */
#define PICK_PACKETS 0x1u /* only queues this poller serves that have a packet area */

static struct broker_queue *pick(struct poller *p, struct broker_group *g,
				 struct broker_pgroup *pg, uint64_t flow_key, unsigned flags,
				 struct broker_flow **flowp, bool *remote)
{
	struct cand c[BROKER_GROUP_MAX_MEMBERS];
	const struct broker_members *m = rcu_dereference(g->members);
	unsigned n = 0;
	int idx = -1;

	*flowp = NULL;
	if (!m)
		return NULL;
	BROKER_TSAN_OBSERVE(m);
	uint32_t policy = onering_atomic_load(&g->policy, onering_mo_relaxed);
	uint32_t numa = onering_atomic_load(&g->numa, onering_mo_relaxed);
	uint32_t wake = onering_atomic_load(&g->wake, onering_mo_relaxed);

	if (policy == ONERING_POLICY_STICKY) {
		if (!pg->flows) {
			pg->flows = calloc(BROKER_FLOW_BUCKETS, sizeof(*pg->flows));
			if (!pg->flows)
				return NULL; /* retried from the backlog */
		}
		struct broker_flow *f = &pg->flows[flow_bucket(flow_key)];
		struct broker_queue *q = flow_holder(p, g, f);
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

	for (uint32_t i = 0; i < m->n && n < BROKER_GROUP_MAX_MEMBERS; i++) {
		struct broker_queue *q = m->q[i];
		if (onering_atomic_load(&q->state, onering_mo_acquire) != BROKER_QUEUE_LIVE)
			continue;
		if ((flags & PICK_PACKETS) && (q->poller != p || !q->pkt_area))
			continue;
		c[n].q = q;
		c[n].cap = q->evp.capacity;
		c[n].used = queue_used(p, q);
		c[n].local = q->poller->node == p->node;
		c[n].dist = p->dist[q->poller->idx];
		/* The consumer's words: untrusted, only ever compared; read only
		 * by the policies that go by them (another core's line each). */
		if (policy == ONERING_POLICY_LIFO || policy == ONERING_POLICY_LEAST ||
		    policy == ONERING_POLICY_STICKY) {
			c[n].state = onering_atomic_load(&q->db->state, onering_mo_relaxed);
			c[n].idle_ns = onering_atomic_load(&q->db->idle_ns, onering_mo_relaxed);
		} else {
			c[n].state = ONERING_CONSUMER_RUNNING;
			c[n].idle_ns = 0;
		}
		c[n].ok = true;
		n++;
	}
	if (n == 0)
		return NULL;

	/* NUMA filter. */
	if (numa != ONERING_NUMA_INTERLEAVE) {
		uint32_t pct = onering_atomic_load(&g->spill_pct, onering_mo_relaxed);
		bool local_room = false, any_local = false;
		for (unsigned i = 0; i < n; i++) {
			any_local |= c[i].local;
			local_room |= c[i].local && c[i].used * 100 <= (uint64_t)pct * c[i].cap;
		}
		bool keep_local = numa == ONERING_NUMA_STRICT || (any_local && local_room);
		if (keep_local) {
			for (unsigned i = 0; i < n; i++)
				c[i].ok = c[i].local;
		} else {
			/* Spilling: the local members and the nearest remote node
			 * with room, by the SLIT distance. */
			uint16_t near = UINT16_MAX;
			for (unsigned i = 0; i < n; i++)
				if (!c[i].local && !cand_full(&c[i]) && c[i].dist < near)
					near = c[i].dist;
			for (unsigned i = 0; i < n; i++)
				c[i].ok = c[i].local || c[i].dist == near;
		}
	}

	switch (policy) {
	case ONERING_POLICY_LEAST:
	case ONERING_POLICY_STICKY:
		idx = pick_least(pg, c, n, wake);
		break;
	case ONERING_POLICY_LOCAL:
		idx = pick_rr(pg, c, n, true);
		if (idx < 0)
			idx = pick_rr(pg, c, n, false);
		break;
	case ONERING_POLICY_LIFO: {
		/* Only to a consumer that waits with an empty ring, and only while
		 * fewer than max_running members are at work (records to take,
		 * or taking them): that one is about to be. */
		bool elig[BROKER_GROUP_MAX_MEMBERS];
		uint32_t running = 0, limit = onering_atomic_load(&g->max_running, onering_mo_relaxed);
		if (limit == 0)
			limit = p->b->cpu_count;
		for (unsigned i = 0; i < n; i++) {
			elig[i] = c[i].ok && cand_idle(&c[i]);
			running += !cand_idle(&c[i]);
		}
		idx = running < limit ? wake_choose(pg, c, n, elig, wake) : -1;
		break;
	}
	default:
		idx = pick_rr(pg, c, n, false);
		break;
	}
	if (idx < 0) {
		*flowp = NULL;
		return NULL;
	}
	*remote = !c[idx].local;
	return c[idx].q;
}

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

/* Copy rec into q, which p serves. false: full (or faulted). */
static bool place_local(struct poller *p, struct broker_queue *q, const struct onering_event *rec,
			struct broker_flow *f)
{
	void *slot = NULL;
	int r = onering_ring_claim(&q->evp, &slot);

	if (r <= 0) {
		if (r < 0)
			poller_queue_fault(p, q, onering_ring_fault_str(q->evp.fault));
		return false;
	}
	memcpy(slot, rec, sizeof(*rec));
	((struct onering_event *)slot)->flags |= foreign_flag(p, rec, q);
	q->dirty = true;
	if (rec->flags & ONERING_EVF_REDELIVERED)
		broker_count(&q->ctr[ONERING_QC_REDELIVERED], 1);
	if (f) {
		onering_atomic_store(&f->end_pos, q->evp.tail_pos, onering_mo_relaxed);
		/* Pairs with flow_holder's acquire: end_pos is set. */
		onering_atomic_store(&f->placed, onering_atomic_load(&f->placed, onering_mo_relaxed) + 1,
				     onering_mo_release);
	}
	return true;
}

/* Send rec to q: directly, or through the lane to q's poller. */
static bool place(struct poller *p, struct broker_group *g, struct broker_queue *q,
		  const struct onering_event *rec, struct broker_flow *f, uint64_t flow_key,
		  bool remote)
{
	struct broker_pgroup *pg = &g->pg[p->idx];
	bool ok;

	if (f)
		f->sent++;
	if (q->poller == p) {
		ok = place_local(p, q, rec, f);
	} else {
		struct broker_handoff h = {.rec = *rec, .kind = BROKER_HANDOFF_RECORD,
					   .qslot = q->slot, .qid = q->id, .group_id = g->id,
					   .flow = f, .flow_key = flow_key};
		onering_atomic_fetch_add(&q->inflight, 1, onering_mo_relaxed);
		ok = lane_push(lane_of(p->b, p->idx, q->poller->idx), &h);
		if (ok) {
			broker_count(&pg->ctr[ONERING_GC_HANDOFFS], 1);
			poller_kick_if_sleeping(q->poller);
		} else {
			onering_atomic_fetch_add(&q->inflight, (uint64_t)-1, onering_mo_relaxed);
		}
	}
	if (!ok) {
		if (f)
			f->sent--;
		return false;
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
	return true;
}

static void backlog_gauge(struct broker_pgroup *pg)
{
	onering_atomic_store(&pg->ctr[ONERING_GC_BACKLOG], (uint64_t)pg->sub_count + pg->rec_count,
			     onering_mo_relaxed);
}

static bool backlog_push_sub(struct broker_pgroup *pg, uint64_t key)
{
	if (pg->sub_count == pg->sub_cap) {
		uint32_t cap = pg->sub_cap ? pg->sub_cap * 2 : 64;
		uint64_t *k = malloc(cap * sizeof(*k));
		if (!k)
			return false;
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
	return true;
}

/* limit: 0 = none (redeliveries must not be refused). */
static bool backlog_push_rec(struct broker_pgroup *pg, const struct onering_event *rec,
			     uint64_t flow, uint32_t limit)
{
	if (limit && pg->rec_count >= limit)
		return false;
	if (pg->rec_count == pg->rec_cap) {
		uint32_t cap = pg->rec_cap ? pg->rec_cap * 2 : 64;
		struct onering_event *r = malloc(cap * sizeof(*r));
		uint64_t *fl = malloc(cap * sizeof(*fl));
		if (!r || !fl) {
			free(r);
			free(fl);
			return false;
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
	return true;
}

/* Try to place one record now. */
static bool try_place(struct poller *p, struct broker_group *g, const struct onering_event *rec,
		      uint64_t flow_key)
{
	struct broker_flow *f;
	bool remote = false;
	struct broker_queue *q = pick(p, g, &g->pg[p->idx], flow_key, 0, &f, &remote);

	return q && place(p, g, q, rec, f, flow_key, remote);
}

/* A packet into q's next slot and its packet area; -1 if q is full. */
static int put_packet(struct poller *p, struct broker_pgroup *pg, struct broker_queue *q,
		      struct broker_flow *f, struct onering_event *rec, const void *data,
		      uint32_t len)
{
	void *slot = NULL;

	(void)p;
	if (onering_ring_claim(&q->evp, &slot) != 1)
		return -1;
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
		onering_atomic_store(&f->end_pos, q->evp.tail_pos, onering_mo_relaxed);
		onering_atomic_store(&f->placed, onering_atomic_load(&f->placed, onering_mo_relaxed) + 1,
				     onering_mo_release);
	}
	broker_count(&pg->ctr[ONERING_GC_DELIVERED], 1);
	return captured < rec->payload.nic.length ? 1 : 0;
}

int group_place_packet(struct poller *p, struct broker_group *g, struct onering_event *rec,
		       uint64_t flow_key, const void *data, uint32_t len)
{
	struct broker_pgroup *pg = &g->pg[p->idx];
	struct broker_flow *f;
	bool remote = false;
	struct broker_queue *q = pick(p, g, pg, flow_key, PICK_PACKETS, &f, &remote);

	return q ? put_packet(p, pg, q, f, rec, data, len) : -1;
}

unsigned group_place_packets(struct poller *p, struct broker_group *g, struct onering_event *recs,
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
			int r = group_place_packet(p, g, &recs[i], recs[i].payload.nic.rss_hash, data[i],
						   lens[i]);
			placed += r >= 0;
			*truncated += r == 1;
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
			r = put_packet(p, pg, q, NULL, &recs[i], data[i], lens[i]);
			if (r < 0)
				q = NULL; /* full: decide again */
		}
		if (r < 0 && !q)
			break; /* nobody has room: the rest is dropped too */
		placed += r >= 0;
		*truncated += r == 1;
	}
	return placed;
}

void group_deliver_sub(struct poller *p, struct broker_sub *s, uint32_t events, uint64_t ts)
{
	struct broker_group *g = s->group;
	struct broker_pgroup *pg = &g->pg[p->idx];
	struct onering_event rec;

	if (s->pending) { /* waiting in the backlog already: merge */
		s->pending_events |= events;
		s->pending_count++;
		return;
	}
	if (pg->sub_count == 0 && pg->rec_count == 0) { /* nobody waiting ahead */
		poller_write_record(&rec, s, events, 1, ts);
		if (try_place(p, g, &rec, s->id))
			return;
	}
	if (!backlog_push_sub(pg, broker_sub_key(s->id, s->gen))) {
		onering_log(ONERING_LOG_ERR, "group '%s': no memory for the backlog; sub %u "
			    "waits for its next event", g->name, s->id);
		return;
	}
	s->pending = true;
	s->pending_events = events;
	s->pending_count = 1;
}

bool group_deliver_record(struct poller *p, struct broker_group *g,
			  const struct onering_event *rec, uint64_t flow_key)
{
	struct broker_pgroup *pg = &g->pg[p->idx];

	if (pg->sub_count == 0 && pg->rec_count == 0 && try_place(p, g, rec, flow_key))
		return true;
	return backlog_push_rec(pg, rec, flow_key,
				onering_atomic_load(&g->backlog_max, onering_mo_relaxed));
}

/* Place what waits in p's slice of g, oldest first, while someone takes it. */
static unsigned flush_backlog(struct poller *p, struct broker_group *g, uint64_t ts)
{
	struct broker_pgroup *pg = &g->pg[p->idx];
	unsigned placed = 0;

	while (pg->rec_count) {
		uint32_t at = pg->rec_head;
		if (!try_place(p, g, &pg->recs[at], pg->rec_flows[at]))
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
			poller_write_record(&rec, s, s->pending_events, s->pending_count, ts);
			if (!try_place(p, g, &rec, s->id))
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

bool group_forward_request(struct poller *p, struct poller *home, struct broker_queue *q,
			   const struct onering_request *req)
{
	struct broker_handoff h = {.req = *req, .kind = BROKER_HANDOFF_REQUEST, .qslot = q->slot,
				   .qid = q->id};

	if (!lane_push(lane_of(p->b, p->idx, home->idx), &h))
		return false;
	poller_kick_if_sleeping(home);
	return true;
}

/* Hand-offs from poller src. */
static unsigned drain_lane(struct poller *p, struct broker_lane *l)
{
	uint64_t head = onering_atomic_load(&l->head, onering_mo_relaxed);
	/* Pairs with the sender's release of tail. */
	uint64_t tail = onering_atomic_load(&l->tail, onering_mo_acquire);
	unsigned done = 0;

	while (head != tail) {
		struct broker_handoff *h = &l->slot[head & (BROKER_LANE_SLOTS - 1)];
		struct broker_queue *q = broker_queue_lookup(p->b, h->qslot, h->qid);
		bool live = q && onering_atomic_load(&q->state, onering_mo_acquire) == BROKER_QUEUE_LIVE;

		if (h->kind == BROKER_HANDOFF_REQUEST) {
			if (live && !poller_apply_request(p, q, &h->req))
				poller_queue_fault(p, q, "malformed submission-ring request");
		} else if (live && q->poller == p) {
			if (!place_local(p, q, &h->rec, h->flow))
				break; /* full: the lane waits for its consumer */
			onering_atomic_fetch_add(&q->inflight, (uint64_t)-1, onering_mo_relaxed);
		} else {
			/* The queue left its group: the group decides again. */
			struct broker_group *g = broker_group_by_id(p->b, h->group_id);
			if (h->flow) /* never reaches its queue: release the flow */
				onering_atomic_fetch_add(&h->flow->placed, 1, onering_mo_release);
			if (g && !backlog_push_rec(&g->pg[p->idx], &h->rec, h->flow_key, 0))
				onering_log(ONERING_LOG_ERR, "group '%s': no memory: a record is lost",
					    g->name);
			else if (!g) /* its group ended with its last member meanwhile */
				onering_log(ONERING_LOG_NOTICE, "group %u ended: a record handed to "
					    "it is dropped", h->group_id);
		}
		head++;
		done++;
		/* Give the slots back as we go: the sender may be waiting. */
		if ((done & 63) == 0)
			onering_atomic_store(&l->head, head, onering_mo_release);
	}
	/* Pairs with the sender's acquire of head: these slots are free. */
	onering_atomic_store(&l->head, head, onering_mo_release);
	return done;
}

bool group_lanes_empty(struct poller *p)
{
	unsigned np = p->b->cfg.plan.nr_pollers;

	for (unsigned src = 0; src < np; src++) {
		if (src == p->idx)
			continue;
		struct broker_lane *l = lane_of(p->b, src, p->idx);
		if (onering_atomic_load(&l->tail, onering_mo_relaxed) !=
		    onering_atomic_load(&l->head, onering_mo_relaxed))
			return false;
	}
	return true;
}

unsigned group_poll(struct poller *p, uint64_t ts)
{
	struct broker *b = p->b;
	unsigned work = 0, np = b->cfg.plan.nr_pollers;
	struct cds_wfcq_node *node;

	if (np > 1)
		for (unsigned src = 0; src < np; src++)
			if (src != p->idx)
				work += drain_lane(p, lane_of(b, src, p->idx));

	while ((node = __cds_wfcq_dequeue_blocking(&p->redeliver_head, &p->redeliver_tail))) {
		struct broker_redeliver *batch = caa_container_of(node, struct broker_redeliver, node);
		BROKER_TSAN_OBSERVE(batch);
		struct broker_group *g = broker_group_by_id(b, batch->group_id);
		if (!g) /* it ended with its last member: nobody is left to take them */
			onering_log(ONERING_LOG_NOTICE, "group %u ended: %u records of a dead member "
				    "are dropped", batch->group_id, batch->n);
		for (uint32_t i = 0; g && i < batch->n; i++)
			if (!backlog_push_rec(&g->pg[p->idx], &batch->recs[i],
					      record_flow(&batch->recs[i]), 0))
				onering_log(ONERING_LOG_ERR, "group '%s': no memory: a redelivered "
					    "record is lost", g->name);
		free(batch);
		work++;
	}

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
	return work;
}
