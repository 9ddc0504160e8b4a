/* SPDX-License-Identifier: MIT */
/*
 * Balancing policy as pure functions (balance.c).
 *
 * The caller (deliver.c) takes a snapshot of a group's member queues as
 * candidates - how full each is, whether its consumer sleeps and since
 * when, its node distance from the deciding poller - and the group's
 * settings; these functions choose. They read nothing else, write only the
 * candidates' `ok` marks and the caller's decision state, make no system
 * call, touch no atomic and no shared memory: tests/broker exercises every
 * policy with no broker running.
 *
 * Candidates' `used`, `state` and `idle_ns` come from words a client
 * writes: untrusted, so they are only ever compared here, never used as
 * indices or sizes.
 */
#ifndef ONERING_BROKER_BALANCE_H
#define ONERING_BROKER_BALANCE_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest group the broker builds (members), and so the most candidates. */
#define BROKER_GROUP_MAX_MEMBERS 256
/* Sticky affinity buckets per group and poller (a power of two). */
#define BROKER_FLOW_BUCKETS 4096

/* One member queue, as the deciding poller sees it now. */
struct balance_cand {
	uint64_t used;    /* unconsumed records (published, staged or on their way) in
			   * the ring of the record's priority level: full at cap */
	uint64_t higher;  /* unconsumed at higher levels: taken before the record */
	uint64_t lower;   /* unconsumed at lower levels: taken after it */
	uint64_t idle_ns; /* when its consumer last went idle (wake order), 0: unknown */
	uint32_t cap;     /* ring capacity */
	uint32_t state;   /* enum onering_consumer_state of its doorbell */
	uint16_t dist;    /* node distance (SLIT) from the deciding poller's node */
	bool local;       /* on the deciding poller's node */
	bool ok;          /* set by balance_numa_filter: may be chosen */
};

/* A group's settings, read once for a decision (enum onering_group_*). */
struct balance_settings {
	uint32_t policy;      /* enum onering_group_policy */
	uint32_t numa;        /* enum onering_group_numa */
	uint32_t spill_pct;   /* spill: leave the node once local members are this full */
	uint32_t wake;        /* enum onering_group_wake */
	uint32_t max_running; /* lifo: members at work at most (already resolved: > 0) */
};

/* lifo: a member at work takes more records only while it holds fewer than
 * this many unconsumed (at the record's level and above): a batch to work
 * through without a hand-off per record, and no more - the rest wait in the
 * group's backlog for the next member to go idle, so at most this many
 * records wait behind a slow one. Not in a group of one member: no other
 * member could take what waits, so holding it back would only delay it
 * (that member takes records while it has room, as under rr). */
#define BALANCE_LIFO_AT_WORK 32u

/* A poller's decision state for one group (its own, never shared). */
struct balance_state {
	uint32_t rr; /* round-robin cursor: the candidate index to try first */
};

static inline bool balance_cand_full(const struct balance_cand *c)
{
	return c->used >= c->cap;
}

/* Its consumer waits with nothing to take: not running, every level's
 * ring empty. */
bool balance_cand_idle(const struct balance_cand *c);

/* Does policy go by the consumers' doorbell words (state, idle_ns)? Only
 * those policies pay for reading them (another core's cache line each). */
bool balance_reads_consumers(uint32_t policy);

/*
 * Mark which candidates the NUMA setting allows (c[i].ok):
 *   interleave  all of them;
 *   strict      the local ones only;
 *   spill       the local ones while one of them is at most spill_pct
 *               full; otherwise (or with no local member) the local ones
 *               and the nearest remote node with room: the remote members
 *               at the smallest distance among those not full.
 */
void balance_numa_filter(const struct balance_settings *s, struct balance_cand *c, unsigned n);

/*
 * The candidate for one record: NUMA filter, then the policy (a candidate
 * is full, and room counts for spill, in the ring of the record's level)
 *   rr      next in turn that passes and is not full;
 *   local   rr among local members first, then among all;
 *   least   fewest unconsumed at the record's level and above (what the
 *           record waits behind: used + higher), ties broken by the wake
 *           order;
 *   sticky  as least (the caller keeps a flow on its queue while it holds
 *           records there: balance_flow_held);
 *   lifo    an idle member (waiting with every ring empty) while fewer
 *           than max_running members are at work, by the wake order: lifo
 *           (last to go idle), fifo (first to go idle), rr, or local-first
 *           (lifo among local members, else among all); otherwise - no
 *           idle member, or max_running at work - a member at work that
 *           holds fewer than BALANCE_LIFO_AT_WORK unconsumed at the
 *           record's level and above and has room, the one with the fewest,
 *           ties taking turns (with one member: while it has room,
 *           whatever it holds). Never a member at work past that (nor a
 *           full one), nor an idle one past max_running: then none, and the
 *           record waits in the backlog.
 * Returns the index, or -1 when no candidate may take it now.
 * lifo here builds its idle set for this one decision (balance_lifo_init);
 * a caller that decides many records over one snapshot keeps the set and
 * calls balance_lifo_choose.
 */
int balance_choose(const struct balance_settings *s, struct balance_state *st,
		   struct balance_cand *c, unsigned n);

/*
 * lifo's view of the candidates, kept across the decisions of one snapshot:
 * how many members are at work and the idle ones in wake order, so that a
 * decision takes the next idle member off the top instead of scanning every
 * member's state. It stays true while the only change to the candidates
 * between decisions is the caller's used++ of the one chosen (the record
 * went there): balance_lifo_choose moves a chosen idle member to "at work"
 * itself.
 */
struct balance_lifo {
	uint32_t running; /* members at work (not balance_cand_idle), all of them,
			   * whatever the NUMA filter says */
	uint32_t nr_idle; /* entries in idle[] */
	uint32_t wake;    /* the wake order idle[] is sorted by */
	uint16_t idle[BROKER_GROUP_MAX_MEMBERS]; /* idle members' indices, the one
						  * the wake order takes first last */
};

/* Build l from n candidates (at most BROKER_GROUP_MAX_MEMBERS) under s's
 * wake order; wake order rr starts at st's cursor. */
void balance_lifo_init(const struct balance_settings *s, const struct balance_state *st,
		       const struct balance_cand *c, unsigned n, struct balance_lifo *l);

/* balance_choose for policy lifo, with l kept from balance_lifo_init over
 * the same candidates (rebuilt first if s's wake order is not l's). */
int balance_lifo_choose(const struct balance_settings *s, struct balance_state *st,
			struct balance_cand *c, unsigned n, struct balance_lifo *l);

/* One run of a burst's split: the next `count` records of the burst go to
 * candidate `idx`. */
struct balance_run {
	uint32_t idx;
	uint32_t count;
};

/*
 * One decision for a burst of count records of one level (the same
 * priority), for rr, local and least: the NUMA filter once for the burst,
 * then
 *   rr     one record to each member that passes and has room, in turn
 *          from the cursor, round after round: per member exactly the
 *          counts per-record rr gives over the same snapshot, and the
 *          cursor ends where it would;
 *   local  the same among local members first, then among all;
 *   least  each record to the member with the fewest (water-filling, ties
 *          by the wake order): per member the counts per-record least
 *          gives.
 * A member's records are one run of consecutive records of the burst; runs
 * come in the order their members were first chosen (runs[], at most n).
 * Each chosen candidate's used grows by its count, so later decisions over
 * the same snapshot see them. Returns the number of runs; their counts add
 * up to count, or less when every allowed member is full. Other policies
 * (sticky: per flow; lifo: per idle member) return 0: decide per record.
 */
unsigned balance_split(const struct balance_settings *s, struct balance_state *st,
		       struct balance_cand *c, unsigned n, unsigned count, struct balance_run *runs);

/* The sticky bucket of a flow key (a subscription id or a posted flow). */
uint32_t balance_flow_bucket(uint64_t key);

/*
 * Does a flow still hold its queue? sent: records decided for that queue;
 * placed: of which written into its ring; end_pos: the ring position after
 * the last placed one; head_pos: the consumer's head now (untrusted); cap:
 * ring capacity. Held while a record is on its way (placed != sent) or not
 * yet consumed (head before end_pos, within one ring of it).
 */
bool balance_flow_held(uint64_t sent, uint64_t placed, uint64_t end_pos, uint64_t head_pos,
		       uint32_t cap);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_BROKER_BALANCE_H */
