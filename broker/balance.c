/* SPDX-License-Identifier: MIT */
/*
 * Balancing policy: pure functions over a candidate list (see balance.h).
 * The machinery that takes the snapshot and applies the choice is
 * deliver.c's; nothing here knows a queue, a ring or a poller.
 */
#include "broker/balance.h"

#include <string.h>

#include "shm/abi.h"
#include "shm/proto.h"

bool balance_cand_idle(const struct balance_cand *c)
{
	return c->used == 0 && c->higher == 0 && c->lower == 0 &&
	       c->state != ONERING_CONSUMER_RUNNING;
}

bool balance_reads_consumers(uint32_t policy)
{
	return policy == ONERING_POLICY_LIFO || policy == ONERING_POLICY_LEAST ||
	       policy == ONERING_POLICY_STICKY;
}

void balance_numa_filter(const struct balance_settings *s, struct balance_cand *c, unsigned n)
{
	if (s->numa == ONERING_NUMA_INTERLEAVE) {
		for (unsigned i = 0; i < n; i++)
			c[i].ok = true;
		return;
	}
	bool local_room = false, any_local = false;
	for (unsigned i = 0; i < n; i++) {
		/* used is the client's word: clamp before scaling, so no value
		 * wraps around into "room". */
		uint64_t used = c[i].used < c[i].cap ? c[i].used : c[i].cap;
		any_local |= c[i].local;
		local_room |= c[i].local && used * 100 <= (uint64_t)s->spill_pct * c[i].cap;
	}
	if (s->numa == ONERING_NUMA_STRICT || (any_local && local_room)) {
		for (unsigned i = 0; i < n; i++)
			c[i].ok = c[i].local;
		return;
	}
	/* Spilling: the local members and the nearest remote node with room,
	 * by the SLIT distance. */
	uint16_t near = UINT16_MAX;
	for (unsigned i = 0; i < n; i++)
		if (!c[i].local && !balance_cand_full(&c[i]) && c[i].dist < near)
			near = c[i].dist;
	for (unsigned i = 0; i < n; i++)
		c[i].ok = c[i].local || c[i].dist == near;
}

/* Among the candidates marked in elig[], the one the wake order puts first. */
static int wake_choose(struct balance_state *st, const struct balance_cand *c, unsigned n,
		       const bool *elig, uint32_t wake)
{
	int best = -1;

	if (wake == ONERING_WAKE_RR) {
		for (unsigned k = 0; k < n; k++) {
			unsigned i = (st->rr + k) % n;
			if (elig[i]) {
				st->rr = i + 1;
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

static int choose_least(struct balance_state *st, const struct balance_cand *c, unsigned n,
			uint32_t wake)
{
	bool elig[BROKER_GROUP_MAX_MEMBERS];
	uint64_t min = UINT64_MAX;

	/* What the record would wait behind there: its level and above. */
	for (unsigned i = 0; i < n; i++)
		if (c[i].ok && !balance_cand_full(&c[i]) && c[i].used + c[i].higher < min)
			min = c[i].used + c[i].higher;
	if (min == UINT64_MAX)
		return -1;
	for (unsigned i = 0; i < n; i++)
		elig[i] = c[i].ok && !balance_cand_full(&c[i]) && c[i].used + c[i].higher == min;
	return wake_choose(st, c, n, elig, wake);
}

static int choose_rr(struct balance_state *st, const struct balance_cand *c, unsigned n,
		     bool local_only)
{
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (st->rr + k) % n;
		if (c[i].ok && !balance_cand_full(&c[i]) && (!local_only || c[i].local)) {
			st->rr = i + 1;
			return (int)i;
		}
	}
	return -1;
}

/* Does idle member a go before idle member b in wake order wake? rr: the
 * turn from the cursor rr on; equal times: the lower index first. */
static bool wake_before(uint32_t wake, uint32_t rr, unsigned n, const struct balance_cand *c,
			unsigned a, unsigned b)
{
	switch (wake) {
	case ONERING_WAKE_RR:
		return (a + n - rr % n) % n < (b + n - rr % n) % n;
	case ONERING_WAKE_FIFO:
		if (c[a].idle_ns != c[b].idle_ns)
			return c[a].idle_ns < c[b].idle_ns;
		return a < b;
	case ONERING_WAKE_LOCAL_FIRST:
		if (c[a].local != c[b].local)
			return c[a].local;
		break; /* lifo among members of one kind */
	default:
		break;
	}
	if (c[a].idle_ns != c[b].idle_ns)
		return c[a].idle_ns > c[b].idle_ns;
	return a < b;
}

void balance_lifo_init(const struct balance_settings *s, const struct balance_state *st,
		       const struct balance_cand *c, unsigned n, struct balance_lifo *l)
{
	if (n > BROKER_GROUP_MAX_MEMBERS)
		n = BROKER_GROUP_MAX_MEMBERS;
	l->running = 0;
	l->nr_idle = 0;
	l->wake = s->wake;
	/* Insertion by wake order, the first to go on top (once per snapshot;
	 * few members are idle at a time when it matters). */
	for (unsigned i = 0; i < n; i++) {
		if (!balance_cand_idle(&c[i])) {
			l->running++;
			continue;
		}
		unsigned at = l->nr_idle++;
		while (at > 0 && wake_before(s->wake, st->rr, n, c, l->idle[at - 1], i)) {
			l->idle[at] = l->idle[at - 1];
			at--;
		}
		l->idle[at] = (uint16_t)i;
	}
}

/* lifo's second choice: a member at work holding fewer than
 * BALANCE_LIFO_AT_WORK unconsumed records at the record's level and above
 * (any number in a group of one: nobody else could take the record sooner),
 * with room (the NUMA filter's marks), the fewest first, ties in turn from
 * the rr cursor. */
static int choose_at_work(struct balance_state *st, const struct balance_cand *c, unsigned n)
{
	const uint64_t limit = n == 1 ? UINT64_MAX : BALANCE_LIFO_AT_WORK;
	uint64_t min = UINT64_MAX;
	int best = -1;

	for (unsigned k = 0; k < n; k++) {
		unsigned i = (st->rr + k) % n;
		if (!c[i].ok || balance_cand_full(&c[i]) || balance_cand_idle(&c[i]) ||
		    c[i].used + c[i].higher >= limit)
			continue;
		if (c[i].used + c[i].higher < min) {
			min = c[i].used + c[i].higher;
			best = (int)i;
		}
	}
	if (best >= 0)
		st->rr = (uint32_t)best + 1;
	return best;
}

/* lifo over candidates the NUMA filter has marked: the top idle member that
 * passes, while fewer than max_running are at work (the chosen one is about
 * to be); else a member at work with room. */
static int choose_lifo(const struct balance_settings *s, struct balance_state *st,
		       const struct balance_cand *c, unsigned n, struct balance_lifo *l)
{
	for (uint32_t k = l->nr_idle; k-- > 0 && l->running < s->max_running;) {
		unsigned i = l->idle[k];
		if (i < n && balance_cand_idle(&c[i]) && !c[i].ok)
			continue; /* idle, but not for this record: stays in the set */
		/* Taken off the set: chosen now, or no longer idle (at work). */
		for (uint32_t j = k; j + 1 < l->nr_idle; j++)
			l->idle[j] = l->idle[j + 1];
		l->nr_idle--;
		if (i >= n)
			continue; /* not a candidate of this snapshot */
		l->running++;
		if (!balance_cand_idle(&c[i]))
			continue;
		if (s->wake == ONERING_WAKE_RR)
			st->rr = i + 1;
		return (int)i;
	}
	return choose_at_work(st, c, n);
}

int balance_lifo_choose(const struct balance_settings *s, struct balance_state *st,
			struct balance_cand *c, unsigned n, struct balance_lifo *l)
{
	if (n == 0)
		return -1;
	if (n > BROKER_GROUP_MAX_MEMBERS)
		n = BROKER_GROUP_MAX_MEMBERS;
	if (l->wake != s->wake)
		balance_lifo_init(s, st, c, n, l);
	balance_numa_filter(s, c, n);
	return choose_lifo(s, st, c, n, l);
}

int balance_choose(const struct balance_settings *s, struct balance_state *st,
		   struct balance_cand *c, unsigned n)
{
	int idx;

	if (n == 0)
		return -1;
	if (n > BROKER_GROUP_MAX_MEMBERS)
		n = BROKER_GROUP_MAX_MEMBERS;
	balance_numa_filter(s, c, n);
	switch (s->policy) {
	case ONERING_POLICY_LEAST:
	case ONERING_POLICY_STICKY:
		return choose_least(st, c, n, s->wake);
	case ONERING_POLICY_LOCAL:
		idx = choose_rr(st, c, n, true);
		return idx >= 0 ? idx : choose_rr(st, c, n, false);
	case ONERING_POLICY_LIFO: {
		struct balance_lifo l;
		balance_lifo_init(s, st, c, n, &l);
		return choose_lifo(s, st, c, n, &l);
	}
	default:
		return choose_rr(st, c, n, false);
	}
}

/* A burst's tally: how many records each candidate takes, and the
 * candidates in the order they were first chosen. */
struct split {
	uint32_t take[BROKER_GROUP_MAX_MEMBERS];
	uint32_t order[BROKER_GROUP_MAX_MEMBERS];
	unsigned nr;
};

static void split_give(struct split *sp, unsigned i, uint32_t k)
{
	if (sp->take[i] == 0)
		sp->order[sp->nr++] = i;
	sp->take[i] += k;
}

/* rr's turns for up to count records over the candidates that pass (and,
 * with local_only, are local), round after round until each is full;
 * whole rounds at once. Returns the records left over. */
static unsigned split_rr(struct balance_state *st, const struct balance_cand *c, unsigned n,
			 unsigned count, bool local_only, struct split *sp)
{
	uint32_t turn[BROKER_GROUP_MAX_MEMBERS];
	unsigned nt = 0;

	for (unsigned k = 0; k < n; k++) {
		unsigned i = (st->rr + k) % n;
		if (c[i].ok && c[i].used + sp->take[i] < c[i].cap && (!local_only || c[i].local))
			turn[nt++] = i;
	}
	while (count > 0 && nt > 0) {
		/* Whole rounds: as many as every member in turn has room for. */
		uint64_t per = count / nt;
		for (unsigned j = 0; j < nt && per > 0; j++) {
			unsigned i = turn[j];
			uint64_t room = c[i].cap - (c[i].used + sp->take[i]);
			if (room < per)
				per = room;
		}
		unsigned keep = 0;
		for (unsigned j = 0; j < nt && count > 0; j++) {
			unsigned i = turn[j];
			uint32_t k = per > 0 ? (uint32_t)per : 1;
			split_give(sp, i, k);
			count -= k;
			st->rr = i + 1;
			if (c[i].used + sp->take[i] < c[i].cap)
				turn[keep++] = i; /* room for another round */
		}
		nt = keep;
	}
	return count;
}

unsigned balance_split(const struct balance_settings *s, struct balance_state *st,
		       struct balance_cand *c, unsigned n, unsigned count, struct balance_run *runs)
{
	struct split sp;
	bool counted = false; /* used already grew per record */

	if (n > BROKER_GROUP_MAX_MEMBERS)
		n = BROKER_GROUP_MAX_MEMBERS;
	if (n == 0 || count == 0)
		return 0;
	sp.nr = 0;
	memset(sp.take, 0, n * sizeof(sp.take[0]));
	switch (s->policy) {
	case ONERING_POLICY_RR:
		balance_numa_filter(s, c, n);
		split_rr(st, c, n, count, false, &sp);
		break;
	case ONERING_POLICY_LOCAL:
		balance_numa_filter(s, c, n);
		count = split_rr(st, c, n, count, true, &sp);
		split_rr(st, c, n, count, false, &sp);
		break;
	case ONERING_POLICY_LEAST:
		balance_numa_filter(s, c, n);
		/* Water-filling: each record sees the ones before it (used++). */
		for (; count > 0; count--) {
			int i = choose_least(st, c, n, s->wake);
			if (i < 0)
				break;
			c[i].used++;
			split_give(&sp, (unsigned)i, 1);
		}
		counted = true;
		break;
	default:
		return 0;
	}
	for (unsigned k = 0; k < sp.nr; k++) {
		runs[k].idx = sp.order[k];
		runs[k].count = sp.take[sp.order[k]];
		if (!counted)
			c[sp.order[k]].used += sp.take[sp.order[k]];
	}
	return sp.nr;
}

uint32_t balance_flow_bucket(uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return (uint32_t)key & (BROKER_FLOW_BUCKETS - 1);
}

bool balance_flow_held(uint64_t sent, uint64_t placed, uint64_t end_pos, uint64_t head_pos,
		       uint32_t cap)
{
	if (placed != sent)
		return true; /* on its way there */
	/* Not consumed yet: the head is before end_pos and within one ring of it
	 * (a head further off is garbage, or long past: idle). */
	return (int64_t)(head_pos - end_pos) < 0 && end_pos - head_pos <= cap;
}
