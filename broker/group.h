/* SPDX-License-Identifier: MIT */
/*
 * Groups: named sets of consumer queues over which the broker balances
 * records, by policy (rr, least, sticky, lifo, local), NUMA policy (spill,
 * strict, interleave) and wake order (lifo, fifo, rr, local-first).
 *
 * Who owns what
 *   - A group and its settings are the control thread's; settings are
 *     atomics that pollers read on every decision (`onering tune` changes
 *     them while clients stay attached).
 *   - Ownership: configured groups (default, --group, --port) belong to
 *     the broker and live as long as it; their join/post/tune lists come
 *     from the configuration. A group a client creates belongs to its uid
 *     and dies when nothing refers to it any more: no member, no
 *     subscription targeting it, and (for one made by a GROUP request
 *     before any member joined) its creator detached. A dead group leaves
 *     the table at once (its slot and name are free again; its id, which
 *     carries the slot's generation, never resolves again) and is freed
 *     once no poller can still hold it: a grace period, and every lane
 *     drained past what was in it then (broker_groups_reap). Work queued
 *     for a group names it by id and looks it up when it is done.
 *   - Membership is an RCU-published array of queue pointers, replaced by
 *     the control thread on join and leave; a leaving queue is out of the
 *     array before the grace period that precedes its teardown.
 *   - Each poller has its own slice of every group (struct broker_pgroup):
 *     its backlog, its sticky flow table, its rr cursor and its counters.
 *     A source's records are decided by its home poller only.
 *
 * This file is the control thread's part: lifecycle, settings, membership,
 * ownership. What a poller does with a group's records is deliver.c's
 * (balance.c chooses; lane.h carries records to queues of other pollers).
 */
#ifndef ONERING_BROKER_GROUP_H
#define ONERING_BROKER_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include <urcu/urcu-qsbr.h>
#include <urcu/wfcqueue.h>

#include "broker/balance.h"
#include "broker/broker.h"
#include "broker/rcu.h"
#include "broker/settings.h"
#include "shm/abi.h"
#include "shm/proto.h"

struct broker;
struct broker_queue;
struct broker_sub;
struct poller;

/* Sticky affinity of one flow bucket (a subscription id or a posted flow key,
 * hashed). The home poller owns qslot, qid and sent; the poller that places
 * the record writes placed and end_pos. */
struct broker_flow {
	uint32_t qslot, qid;              /* the queue it sticks to; qid 0: none */
	uint64_t sent;                    /* records sent to that queue */
	ONERING_ATOMIC(uint64_t) placed;  /* of which placed in its rings */
	ONERING_ATOMIC(uint32_t) levels;  /* bit k: a record placed in its level-k ring
					   * since the flow took the queue */
	ONERING_ATOMIC(uint64_t) end_pos[ONERING_PRIO_LEVELS]; /* ring position after the
								 * last placed, by level */
};

/* One priority level of a poller's backlog of a group: subscriptions
 * waiting (coalescing; keys, looked up again when flushed) and whole
 * records (posts, redeliveries) waiting, each oldest first. */
struct broker_backlog {
	uint64_t *sub_keys;
	uint32_t sub_head, sub_count, sub_cap;
	struct onering_event *recs;
	uint64_t *rec_flows;
	uint32_t rec_head, rec_count, rec_cap;
};

/*
 * The group's members as one poller last looked at them (deliver.c's pick):
 * built at a poller's first decision for the group in a loop, then kept up
 * to date with the records that poller itself places, so a burst of records
 * costs one read of each member's words (another core's cache lines), not
 * one per record. Valid for one loop, one member list, one priority level
 * and one kind of decision (flags). Under lifo it also keeps the idle set
 * (struct balance_lifo), built at the loop's first lifo decision over it and
 * kept up to date by each decision.
 */
struct broker_cands {
	uint64_t loop_no; /* the loop it was built in (loops count from 1) */
	const struct broker_members *m;
	uint32_t prio, flags;
	uint32_t n;
	bool lifo_ready; /* lifo is built over this snapshot */
	struct balance_lifo lifo;
	struct balance_cand c[BROKER_GROUP_MAX_MEMBERS];
	struct broker_queue *q[BROKER_GROUP_MAX_MEMBERS];
};

/* A poller's slice of a group. */
struct broker_pgroup {
	/* The backlog, by priority (a record's or a source's); flushed highest
	 * level first. waiting: entries in all of them. */
	struct broker_backlog bl[ONERING_PRIO_LEVELS];
	uint32_t waiting;
	struct broker_flow *flows; /* BROKER_FLOW_BUCKETS, allocated on first use */
	struct broker_cands *cands; /* allocated on first use */
	struct balance_state bal;  /* the rr cursor */
	ONERING_ATOMIC(uint64_t) ctr[ONERING_GC_NR];
};

struct broker_members {
	struct rcu_head rcu;
	uint32_t n;
	struct broker_queue *q[];
};

struct broker_group {
	uint32_t id;   /* (generation << 8) | (slot + 1) */
	uint32_t slot;
	char name[ONERING_NAME_MAX];
	/* Ownership and life (control thread). */
	bool configured;          /* the broker's: never dies */
	bool pinned;              /* made by a GROUP request: lives while creator_id is
				   * attached, until its first member joins */
	bool dead;
	uid_t owner_uid;
	uint32_t creator_id;      /* client id that created it, 0: the broker */
	uint32_t nr_refs;         /* members + subscriptions that target it */
	struct broker_acl acl[BROKER_PERM_NR]; /* configured groups */
	struct cds_list_head grave_node;
	uint64_t *lane_tails;     /* graveyard: lane tails once no poller holds it */
	ONERING_ATOMIC(uint32_t) policy;      /* enum onering_group_policy */
	ONERING_ATOMIC(uint32_t) numa;        /* enum onering_group_numa */
	ONERING_ATOMIC(uint32_t) spill_pct;
	ONERING_ATOMIC(uint32_t) wake;        /* enum onering_group_wake */
	ONERING_ATOMIC(uint32_t) max_running; /* 0: the machine's CPU count */
	ONERING_ATOMIC(uint32_t) backlog_max;
	struct broker_members *members; /* RCU */
	uint32_t nr_members;            /* control thread */
	struct broker_pgroup *pg;       /* [nr_pollers] */
};

/* Unconsumed records of a dead member, for its group again: built by the
 * control thread (broker_group_redeliver), queued to the member's poller
 * (poller->redeliver_head, a wait-free queue) and placed by it. */
struct broker_redeliver {
	struct cds_wfcq_node node;
	uint32_t group_id; /* looked up again by the poller: the group may end first */
	uint32_t n;
	struct onering_event recs[];
};

/* ---- control thread ---- */

/* Defaults of a new group's settings. */
void broker_group_defaults(struct onering_msg_group *m);
/* The group called name: found, or created (unless create is false) with
 * the defaults and then the settings of a --group option of that name.
 * creator: the client creating it (its uid owns it), or NULL for the
 * broker (a configured group). -ENOENT, -EINVAL (name), -ENOSPC
 * (BROKER_MAX_GROUPS), -EDQUOT (the creator's --max-client-groups), -ENOMEM. */
int broker_group_get(struct broker *b, const char *name, bool create,
		     struct broker_client *creator, struct broker_group **out);
/* The live group with this id, or NULL (RCU reader, or the control thread). */
static inline struct broker_group *broker_group_by_id(struct broker *b, uint32_t id);
/* May who join / post to / tune g? Root and the broker's uid always may. */
bool broker_group_permits(const struct broker *b, const struct broker_group *g,
			  enum broker_perm what, const struct broker_cred *who);
/* "uid 0, uid 1000, gid 27" - who may, for an -EPERM reason. */
void broker_group_perm_text(const struct broker *b, const struct broker_group *g,
			    enum broker_perm what, char *buf, size_t len);
/* References that keep a client's group alive (subscriptions targeting it;
 * membership counts itself). unref may end the group. */
void broker_group_ref(struct broker_group *g);
void broker_group_unref(struct broker *b, struct broker_group *g);
/* End g now if it is a client's and nothing refers to it (after a failed
 * open that created it, say). */
void broker_group_maybe_end(struct broker *b, struct broker_group *g);
/* A client detaches: groups it made and pinned are released. */
void broker_groups_client_gone(struct broker *b, struct broker_client *c);
/* Free dead groups no poller can hold any more. Returns how many still wait. */
unsigned broker_groups_reap(struct broker *b);
/* Apply the fields of m that m->set selects (validated). -EINVAL. */
int broker_group_apply(struct broker_group *g, const struct onering_msg_group *m);
/* Fill m with g's settings and membership. */
void broker_group_describe(const struct broker_group *g, struct onering_msg_group *m);
/* Membership (control thread). -ENOMEM. */
int broker_group_join(struct broker *b, struct broker_group *g, struct broker_queue *q);
void broker_group_leave(struct broker *b, struct broker_queue *q);
/* Summed counters of every poller's slice, with the members at work now;
 * *sleeping: members asleep with an empty ring. */
void broker_group_counters(const struct broker *b, const struct broker_group *g,
			   uint64_t ctr[ONERING_GC_NR], uint32_t *sleeping);
/* After the grace period that follows a member's close: hand its
 * unconsumed records to its group again (flagged REDELIVERED). Returns
 * the number of records redelivered. */
uint32_t broker_group_redeliver(struct broker *b, struct broker_queue *q);
void broker_groups_fini(struct broker *b);

static inline struct broker_group *broker_group_by_id(struct broker *b, uint32_t id)
{
	uint32_t slot = (id & 0xffu) - 1u; /* id 0: no slot */

	if (slot >= BROKER_MAX_GROUPS)
		return NULL;
	struct broker_group *g = rcu_dereference(b->groups[slot]);
	if (!g)
		return NULL;
	BROKER_TSAN_OBSERVE(g);
	return g->id == id ? g : NULL;
}

#endif /* ONERING_BROKER_GROUP_H */
