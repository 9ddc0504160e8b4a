/* SPDX-License-Identifier: MIT */
/*
 * Watched words: futex-like 32-bit words in a queue's word area, which the
 * client (or any process sharing that memory) stores to. The poller scans
 * the watched ones every loop and emits a record when a value moved since
 * its last record; a full ring leaves it for the next loop (the record then
 * spans every change). A watch starts, restarts or stops by request.
 *
 * Ordering: A7, the load-acquire of a word, pairs with the storer's
 * store-release of it (client/onering.h, onering_queue_words): what it
 * wrote before the word is visible to the consumer that reads this record
 * (through the ring's R1/A1).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/queue.h"
#include "broker/source.h"

/* nr_watching: queues of this poller with a watched word at the last walk,
 * plus watches started since - never below the truth (a watch starts only
 * here, on the poller's thread), above it after an unwatch or a close
 * until the next walk recounts. 0 skips the walk: a loop with nothing
 * watched costs nothing however many queues are idle. */
struct source_words {
	struct broker_source src;
	uint32_t nr_watching;
};

/* Start, restart (new generation) or stop (gen 0) watching a word of q. */
static int words_apply_request(struct broker_source *src, struct broker_queue *q,
			       struct broker_sub *s, const struct onering_request *req)
{
	(void)s;
	if (req->arg[0] >= q->nr_words)
		return -EPROTO;
	uint32_t idx = (uint32_t)req->arg[0];
	struct broker_word *w = &q->watch[idx];
	bool was = w->gen != 0;
	w->gen = req->sub_gen;
	w->cookie = req->user_data;
	/* The baseline is what the client saw when it asked: a change made
	 * since then makes a record at once. */
	w->last = (uint32_t)req->arg[1];
	if (w->gen && !was) {
		q->watched[q->nr_watched++] = idx;
		((struct source_words *)src)->nr_watching++;
	} else if (!w->gen && was) {
		for (uint32_t i = 0; i < q->nr_watched; i++)
			if (q->watched[i] == idx) {
				q->watched[i] = q->watched[--q->nr_watched];
				break;
			}
	}
	return 0;
}

static unsigned scan_queue(struct poller *p, struct broker_queue *q, uint64_t ts)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < q->nr_watched; i++) {
		uint32_t idx = q->watched[i];
		struct broker_word *w = &q->watch[idx];
		/* A7 */
		uint32_t v = onering_atomic_load(&q->words[idx], onering_mo_acquire);
		if (v == w->last)
			continue;
		struct onering_event e;
		memset(&e, 0, sizeof(e));
		e.cookie = w->cookie;
		e.sub_gen = w->gen;
		e.kind = ONERING_EV_WORD;
		e.timestamp_ns = ts;
		e.payload.word.old_value = w->last;
		e.payload.word.new_value = v;
		e.payload.word.word_idx = idx;
		if (deliver_to_queue(p, q, &e) < 0)
			break; /* full (next loop), or faulted */
		w->last = v;
		n++;
	}
	return n;
}

static unsigned words_poll(struct broker_source *src, const struct broker_poll_ctx *ctx)
{
	struct source_words *sw = (struct source_words *)src;
	struct broker_queue *q;
	unsigned n = 0;
	uint32_t watching = 0;

	if (sw->nr_watching == 0)
		return 0;
	cds_list_for_each_entry_rcu(q, &src->p->queues, poller_node) {
		BROKER_TSAN_OBSERVE(q);
		/* A5 (deliver.c): the queue's state word. */
		if (q->nr_watched &&
		    onering_atomic_load(&q->state, onering_mo_acquire) == BROKER_QUEUE_LIVE) {
			watching++;
			n += scan_queue(src->p, q, ctx->now_ns);
		}
	}
	sw->nr_watching = watching;
	return n;
}

/* A store to a watched word wakes nobody ("waking = a plain store"): while
 * any word is watched the idle poller scans again after idle_sleep_ms at
 * most; with none watched the words need no deadline. nr_watched is this
 * poller's own (words_apply_request). */
static uint64_t words_next_deadline(struct broker_source *src, uint64_t now_ns)
{
	struct broker_queue *q;

	(void)now_ns;
	if (((struct source_words *)src)->nr_watching == 0)
		return UINT64_MAX;
	cds_list_for_each_entry_rcu(q, &src->p->queues, poller_node) {
		BROKER_TSAN_OBSERVE(q);
		/* A5 (deliver.c): the queue's state word. */
		if (q->nr_watched &&
		    onering_atomic_load(&q->state, onering_mo_acquire) == BROKER_QUEUE_LIVE) {
			int ms = src->p->b->cfg.idle_sleep_ms;
			return ms > 0 ? (uint64_t)ms * 1000000ull : 0;
		}
	}
	return UINT64_MAX;
}

static const struct broker_source_ops words_ops = {
	.name = "words",
	.poll = words_poll,
	.next_deadline = words_next_deadline,
	.apply_request = words_apply_request,
	.destroy = broker_source_free,
};

int broker_source_words_create(struct poller *p, struct broker_source **out)
{
	*out = broker_source_alloc(p, &words_ops, sizeof(struct source_words));
	return *out ? 0 : -ENOMEM;
}
