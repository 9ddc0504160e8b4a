/* SPDX-License-Identifier: MIT */
/*
 * Groups and explicit load balancing (see group.h for who owns what).
 *
 * (The decisions a poller makes for a group are deliver.c's and balance.c's.)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/queue.h"
#include "broker/group.h"
#include "broker/lane.h"
#include "shm/doorbell.h"
#include "shm/log.h"

#define GROUP_BACKLOG_DEFAULT 65536u
#define GROUP_SPILL_DEFAULT 90u


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
	/* R7: pairs with A11 in deliver_flush: a poller that sees the count
	 * sees the slot's pointer (published just before). */
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
		for (unsigned k = 0; k < ONERING_PRIO_LEVELS; k++) {
			struct broker_backlog *bl = &g->pg[p].bl[k];
			lost += bl->rec_count;
			free(bl->sub_keys);
			free(bl->recs);
			free(bl->rec_flows);
		}
		free(g->pg[p].flows);
		free(g->pg[p].cands);
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
					g->lane_tails[i] = broker_lane_sent(b->lanes[i]);
		}
	}
	cds_list_for_each_entry_safe(g, tmp, &b->graveyard, grave_node) {
		bool drained = true;
		for (unsigned i = 0; i < n * n && drained; i++)
			drained = !b->lanes || !b->lanes[i] ||
				  broker_lane_done_past(b->lanes[i], g->lane_tails[i]);
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
	/* The control thread, or an RCU reader (telemetry.c). */
	const struct broker_members *m = rcu_dereference(g->members);
	if (!m)
		return;
	for (uint32_t i = 0; i < m->n; i++) {
		const struct broker_queue *q = m->q[i];
		uint32_t st = onering_atomic_load(&q->db->state, onering_mo_relaxed);
		bool empty = broker_queue_unconsumed(q) == 0;
		ctr[ONERING_GC_RUNNING] += st == ONERING_CONSUMER_RUNNING || !empty;
		*sleeping += st == ONERING_CONSUMER_SLEEPING && empty;
	}
}

/* The unconsumed part of q's ring of level: [*head, tail). The consumer's
 * head if believable; else the last one the ring validated (which may give
 * a few consumed records again: flagged). */
static uint64_t level_unconsumed(struct broker_queue *q, uint32_t level, uint64_t *head_out)
{
	struct onering_ring_producer *ev = broker_queue_ring(q, level);
	uint64_t tail = ev->tail_pos; /* staged records too: complete once claimed */
	uint64_t head = onering_atomic_load(ev->head_word, onering_mo_relaxed);

	if (head - ev->head_cache > tail - ev->head_cache)
		head = ev->head_cache;
	*head_out = head;
	return tail - head;
}

/* Copy the records of q's ring of level from head on that the group takes
 * again into recs (flagged REDELIVERED, keeping their priority). Returns how many. */
static uint32_t redeliver_level(struct broker *b, struct broker_queue *q, uint32_t level,
				uint64_t head, struct onering_event *recs)
{
	struct onering_ring_producer *ev = broker_queue_ring(q, level);
	const struct onering_event *slots = (const struct onering_event *)(const void *)ev->slots;
	uint32_t k = 0;

	for (uint64_t pos = head; pos != ev->tail_pos; pos++) {
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
		recs[k] = *e;
		recs[k].flags = (uint16_t)((e->flags & ~ONERING_EVF_FOREIGN) | ONERING_EVF_REDELIVERED);
		k++;
	}
	return k;
}

uint32_t broker_group_redeliver(struct broker *b, struct broker_queue *q)
{
	uint64_t head[ONERING_PRIO_LEVELS], n = 0;

	for (uint32_t lv = 0; lv <= q->top_level; lv++)
		n += level_unconsumed(q, lv, &head[lv]);
	if (!q->group || n == 0)
		return 0;
	struct broker_redeliver *batch = malloc(sizeof(*batch) + n * sizeof(batch->recs[0]));
	if (!batch) {
		onering_log(ONERING_LOG_ERR, "queue %u: no memory to redeliver %llu records: lost",
			    q->id, (unsigned long long)n);
		return 0;
	}
	uint32_t k = 0;
	for (uint32_t lv = q->top_level + 1; lv-- > 0;) /* highest level first */
		k += redeliver_level(b, q, lv, head[lv], batch->recs + k);
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
