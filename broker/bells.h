/* SPDX-License-Identifier: MIT */
/*
 * Submission bells (ABI 1.7, shm/abi.h ONERING_BELL_*): one page per
 * (poller, user) in which each of that user's queues on that poller has a
 * bit its client sets after submitting. The poller looks only at the
 * submission rings whose bits it takes, so its cost per loop does not grow
 * with idle clients.
 *
 * Who writes what:
 *   words        the clients (B1: seq_cst OR) and the poller (B2: exchange
 *                to 0, seq_cst; its own re-marks, relaxed OR). Untrusted:
 *                a bit only makes the poller look at a ring. In a summary
 *                page (ABI 1.9) word 0 is the summary: bit w for word w,
 *                set after the word's bit (onering_bell_ring), taken by the
 *                poller before the words it names.
 *   queue[bit]   the control thread (R9: rcu_assign_pointer); the poller
 *                reads it with rcu_dereference and serves only a LIVE queue.
 *   nr_words     the control thread (R10: store-release, after the queue
 *                pointer of the highest bit in use); the poller (A13).
 *   used, nr_used, uid: the control thread only.
 *   p->bells[], p->nr_bells: the control thread (R11: the slot, then the
 *                count, store-release); the poller (A14) reads the count,
 *                then the slots below it with rcu_dereference. A bells
 *                page with no queue left is taken out (the last slot moves
 *                into its place) and freed after a grace period.
 */
#ifndef ONERING_BROKER_BELLS_H
#define ONERING_BROKER_BELLS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/rcu.h"
#include "shm/abi.h"
#include "shm/segment.h"

struct broker;
struct broker_queue;
struct poller;

struct broker_bells {
	struct onering_seg seg;
	ONERING_ATOMIC(uint64_t) *words; /* in seg: [ONERING_BELL_WORDS] */
	ONERING_ATOMIC(uint32_t) nr_words; /* words the poller looks at */
	uid_t uid;
	bool summary;      /* (1.9) word 0 summarises words 1..63; bits from 64 */
	uint32_t nr_used;  /* with word 0 of a summary page, which no queue holds */
	uint64_t used[ONERING_BELL_WORDS];
	struct broker_queue *queue[ONERING_BELL_BITS]; /* RCU: bit -> queue */
	struct rcu_head rcu;
};

/* Control thread, at poller start: room for max bells pages (-ENOMEM). */
int broker_bells_init(struct poller *p, unsigned max);
/* Control thread, after the poller has stopped: free every page. */
void broker_bells_fini(struct poller *p);

/* Control thread: give q (served by p, of a client of uid) a bit in that
 * user's bells page on p, creating the page if needed; sets q->bells and
 * q->bell. summary: the client rings the summary (its HELLO said ABI 1.9
 * or later), so it gets a summary page and a bit above word 0; the others
 * share pages of their own, scanned word by word. Before q is published.
 * -ENOMEM, -ENOSPC (no page left), or -errno of the segment's creation
 * (logged). */
int broker_bells_join(struct poller *p, struct broker_queue *q, uid_t uid, bool summary);

/* Control thread, after q's grace period: take its bit back; the page goes
 * when its last queue does. */
void broker_bells_leave(struct poller *p, struct broker_queue *q);

/* Poller: set bit bell of bells again (B2's own re-mark, relaxed), and its
 * word's summary bit, so that its queue's submission ring is looked at next
 * loop. (Relaxed: the poller reads them itself.) */
static inline void broker_bell_mark(struct broker_bells *bells, uint32_t bell)
{
	onering_atomic_fetch_or(&bells->words[bell / 64], 1ull << (bell % 64),
				onering_mo_relaxed);
	if (bells->summary)
		onering_atomic_fetch_or(&bells->words[ONERING_BELL_SUMMARY_WORD],
					1ull << (bell / 64), onering_mo_relaxed);
}

#endif /* ONERING_BROKER_BELLS_H */
