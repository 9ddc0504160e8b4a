/* SPDX-License-Identifier: MIT */
/*
 * Submission bells: the pages, and which queue each bit names (bells.h).
 * Everything here runs on the control thread; the poller's side is in
 * source_submit.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/bells.h"
#include "broker/broker.h"
#include "broker/queue.h"
#include "numa/placement.h"
#include "shm/log.h"

int broker_bells_init(struct poller *p, unsigned max)
{
	p->bells = calloc(max, sizeof(*p->bells));
	if (!p->bells)
		return -ENOMEM;
	p->max_bells = max;
	onering_atomic_init(&p->nr_bells, 0u);
	return 0;
}

static void bells_free(struct broker_bells *bl)
{
	onering_seg_destroy(&bl->seg);
	free(bl);
}

static void bells_free_rcu(struct rcu_head *head)
{
	struct broker_bells *bl = caa_container_of(head, struct broker_bells, rcu);

	BROKER_TSAN_GRACE_DONE();
	BROKER_TSAN_OBSERVE(bl);
	bells_free(bl);
}

void broker_bells_fini(struct poller *p)
{
	unsigned n = onering_atomic_load(&p->nr_bells, onering_mo_relaxed);

	for (unsigned i = 0; i < n; i++) {
		struct broker_bells *bl = p->bells[i];
		/* Queues that outlive the poller (a shutdown with clients
		 * attached) forget their page: their teardown leaves nothing. */
		for (uint32_t bit = 0; bit < ONERING_BELL_BITS; bit++)
			if (bl->queue[bit])
				bl->queue[bit]->bells = NULL;
		bells_free(bl);
	}
	free(p->bells);
	p->bells = NULL;
	onering_atomic_store(&p->nr_bells, 0u, onering_mo_relaxed);
}

/* A new page for uid on p, published in p->bells (R11). A summary page's
 * word 0 is held from the start: no queue gets a bit in it. */
static int bells_create(struct poller *p, uid_t uid, bool summary, struct broker_bells **out)
{
	struct broker *b = p->b;
	unsigned n = onering_atomic_load(&p->nr_bells, onering_mo_relaxed);
	char name[64];

	if (n == p->max_bells)
		return -ENOSPC;
	struct broker_bells *bl = calloc(1, sizeof(*bl));
	if (!bl)
		return -ENOMEM;
	snprintf(name, sizeof(name), "onering-%s-p%u-u%u-bells", b->cfg.name, p->idx,
		 (unsigned)uid);
	/* Normal pages: a hugepage for one page of bits would waste the rest. */
	int r = onering_seg_create(&bl->seg, name, ONERING_SEG_BELLS, ONERING_BELLS_SEG_SIZE,
				   p->node >= 0 ? (uint32_t)p->node : ONERING_NODE_ANY, b->epoch,
				   onering_numa_placement(), ONERING_SEG_NO_HUGETLB);
	if (r == 0)
		r = onering_seg_seal(&bl->seg, false); /* the clients write their bits */
	if (r < 0) {
		onering_seg_destroy(&bl->seg);
		free(bl);
		return r;
	}
	bl->words = (ONERING_ATOMIC(uint64_t) *)((char *)bl->seg.base + ONERING_BELLS_OFFSET);
	bl->uid = uid;
	bl->summary = summary;
	if (summary) {
		bl->used[ONERING_BELL_SUMMARY_WORD] = UINT64_MAX;
		bl->nr_used = 64;
	}
	onering_atomic_init(&bl->nr_words, 0u);
	BROKER_TSAN_PUBLISH(bl);
	/* R11: the slot, then the count; pairs with A14 in the poller. */
	rcu_assign_pointer(p->bells[n], bl);
	onering_atomic_store(&p->nr_bells, n + 1, onering_mo_release);
	*out = bl;
	return 0;
}

int broker_bells_join(struct poller *p, struct broker_queue *q, uid_t uid, bool summary)
{
	unsigned n = onering_atomic_load(&p->nr_bells, onering_mo_relaxed);
	struct broker_bells *bl = NULL;

	for (unsigned i = 0; i < n && !bl; i++)
		if (p->bells[i]->uid == uid && p->bells[i]->summary == summary &&
		    p->bells[i]->nr_used < ONERING_BELL_BITS)
			bl = p->bells[i];
	if (!bl) {
		int r = bells_create(p, uid, summary, &bl);
		if (r < 0)
			return r;
	}
	uint32_t w = 0;
	while (bl->used[w] == UINT64_MAX)
		w++; /* nr_used < ONERING_BELL_BITS: a word has a free bit */
	uint32_t bit = w * 64 + (uint32_t)__builtin_ctzll(~bl->used[w]);
	bl->used[w] |= 1ull << (bit % 64);
	bl->nr_used++;
	q->bells = bl;
	q->bell = bit;
	/* R9: pairs with the poller's rcu_dereference of queue[bit]. */
	BROKER_TSAN_PUBLISH(q);
	rcu_assign_pointer(bl->queue[bit], q);
	/* R10: after the pointer; pairs with A13 in the poller. */
	if (w + 1 > onering_atomic_load(&bl->nr_words, onering_mo_relaxed))
		onering_atomic_store(&bl->nr_words, w + 1, onering_mo_release);
	return 0;
}

void broker_bells_leave(struct poller *p, struct broker_queue *q)
{
	struct broker_bells *bl = q->bells;

	if (!bl)
		return;
	q->bells = NULL;
	rcu_assign_pointer(bl->queue[q->bell], NULL);
	bl->used[q->bell / 64] &= ~(1ull << (q->bell % 64));
	if (--bl->nr_used > (bl->summary ? 64u : 0u))
		return;
	/* Its last queue: out of p->bells (the last slot moves here), freed
	 * when no poller loop can still hold it. */
	unsigned n = onering_atomic_load(&p->nr_bells, onering_mo_relaxed), i = 0;
	while (i < n && p->bells[i] != bl)
		i++;
	if (i == n)
		return; /* not listed: cannot happen */
	rcu_assign_pointer(p->bells[i], p->bells[n - 1]);
	onering_atomic_store(&p->nr_bells, n - 1, onering_mo_release);
	BROKER_TSAN_PUBLISH(bl); /* to the call_rcu thread */
	urcu_qsbr_call_rcu(&bl->rcu, bells_free_rcu);
}
