/* SPDX-License-Identifier: MIT */
/*
 * Submission rings: those of this poller's queues whose bells are set
 * (bells.h), every one after an idle sleep, drained in bursts.
 * Each request is copied out of client memory before it is looked at (the
 * client may change the slot meanwhile) and handed to request.c; the ring
 * handle validates the client's tail (shm/ring.h A1). A request that cannot
 * be done now (a full backlog, a full lane) stays in the ring and stops the
 * burst: back-pressure on the client.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/bells.h"
#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/queue.h"
#include "broker/request.h"
#include "broker/source.h"
#include "broker/stream.h"

#define REQUEST_BATCH 32

/* q's POSTs wait for a consumer (a full backlog, or room in q's own ring
 * for their refusals): its bell is not set again (bell_again); the poller
 * looks at it again after a sleep, every POSTS_RETRY_NS, or as soon as a
 * backlog moves (posts_retry). */
static void posts_block(struct poller *p, struct broker_queue *q)
{
	q->posts_blocked = true;
	p->posts_blocked = true;
	for (uint32_t i = 0; i < p->nr_posts_blocked; i++)
		if (p->posts_blocked_q[i].slot == q->slot && p->posts_blocked_q[i].id == q->id)
			return;
	if (p->nr_posts_blocked == POLLER_POSTS_BLOCKED_MAX) {
		p->posts_blocked_many = true;
		return;
	}
	p->posts_blocked_q[p->nr_posts_blocked].slot = q->slot;
	p->posts_blocked_q[p->nr_posts_blocked++].id = q->id;
}

static void posts_forget(struct poller *p)
{
	p->posts_blocked = false;
	p->posts_blocked_many = false;
	p->nr_posts_blocked = 0;
}

/* The listed queues' bells set again: the next walk of the bells takes
 * their POSTs again. When more waited than the list holds, the rest are
 * taken by a full look - at once when the retry is due (look_all), else
 * they stay blocked until it is: a backlog that moves every loop must not
 * turn every loop into a walk over all the queues. */
static void posts_retry(struct poller *p, uint64_t now_ns, bool look_all)
{
	bool many = p->posts_blocked_many;

	for (uint32_t i = 0; i < p->nr_posts_blocked; i++) {
		/* Gone since, or another queue in its slot: nothing to do. */
		struct broker_queue *q = broker_queue_lookup(p->b, p->posts_blocked_q[i].slot,
							      p->posts_blocked_q[i].id);
		if (!q || q->poller != p || !q->bells ||
		    onering_atomic_load(&q->state, onering_mo_acquire) != BROKER_QUEUE_LIVE)
			continue;
		q->posts_blocked = false;
		broker_bell_mark(q->bells, q->bell);
	}
	posts_forget(p);
	if (look_all)
		p->posts_look_ns = now_ns;
	if (many && look_all)
		p->full_look = true;
	else if (many)
		p->posts_blocked = p->posts_blocked_many = true;
}

static unsigned drain_requests(struct poller *p, struct broker_queue *q, uint64_t ts)
{
	q->posts_blocked = false; /* looked at now */
	const void *first = NULL;
	int n = onering_ring_peek(&q->sqc, &first, REQUEST_BATCH); /* A1 (shm/ring.h) */
	struct onering_request reqs[REQUEST_BATCH];
	unsigned done = 0;

	if (n <= 0) {
		if (n < 0)
			deliver_queue_fault(p, q, onering_ring_fault_str(q->sqc.fault));
		return 0;
	}
	/* Copy out first: the client may change the slots under us. */
	memcpy(reqs, first, (size_t)n * sizeof(reqs[0]));
	while (done < (unsigned)n) {
		/* Posts to one group at one priority go as one burst. */
		unsigned run = broker_request_post_run(&reqs[done], (unsigned)n - done);
		if (run > 0) {
			unsigned k = broker_request_posts(p, q, &reqs[done], run, ts);
			done += k;
			if (k < run) { /* the rest wait: back-pressure */
				posts_block(p, q);
				break;
			}
			continue;
		}
		int r = broker_request_handle(p, q, &reqs[done], ts);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
			deliver_queue_fault(p, q, "malformed submission-ring request");
			break;
		}
		done++;
	}
	if (done > 0) {
		onering_ring_release(&q->sqc, done); /* R2 (shm/ring.h) */
		broker_count(&q->ctr[ONERING_QC_REQUESTS], (uint64_t)done);
	}
	return done;
}

/* After a drain: q's bell set again if requests are left that the next
 * loop can take (a burst's limit, the ring's wrap, a full lane). Not when
 * what is left waits for a consumer, which wakes nothing - a bell set
 * again would keep the poller from ever sleeping: its completion-mode
 * records wait for ring space (stream.c; the streams source sets the bell
 * when they are placed, and polls for that meanwhile), or its POSTs wait
 * for room in a group's backlog or for their refusal's room in its own
 * ring (taken again after a sleep or a while: submit_poll; or when a
 * backlog moves: posts_retry). */
static void bell_again(struct broker_queue *q)
{
	/* The count first: a queue a full look finds before QUEUE_OPEN joined
	 * its bells (handlers.c) has an empty ring (its client has not got it
	 * yet), and q->bells is not read then. */
	if (onering_atomic_load(&q->state, onering_mo_relaxed) == BROKER_QUEUE_LIVE &&
	    onering_ring_consumer_count(&q->sqc) != 0 && q->bells &&
	    !(q->streams && q->streams->ov_head) && !q->posts_blocked)
		broker_bell_mark(q->bells, q->bell);
}

/* Every live queue's ring, bell or not: after an idle sleep (a bit a client
 * of the same user cleared is found here) and at the start. */
static unsigned submit_full_look(struct poller *p, uint64_t now_ns)
{
	struct broker_queue *q;
	unsigned n = 0;

	posts_forget(p); /* listed again by each queue still blocked */
	p->posts_look_ns = now_ns;

	cds_list_for_each_entry_rcu(q, &p->queues, poller_node) {
		BROKER_TSAN_OBSERVE(q);
		/* A5 (deliver.c): the queue's state word. */
		if (onering_atomic_load(&q->state, onering_mo_acquire) == BROKER_QUEUE_LIVE) {
			n += drain_requests(p, q, now_ns);
			bell_again(q);
		}
	}
	return n;
}

#define BELLS_PER_LINE (ONERING_CACHE_LINE / 8u)

/* Are the bells words of one cache line all 0? (Relaxed: a hint, B2 is the
 * exchange.) */
static bool bells_line_idle(ONERING_ATOMIC(uint64_t) *w)
{
	uint64_t any = 0;

	for (unsigned i = 0; i < BELLS_PER_LINE; i++)
		any |= onering_atomic_load(&w[i], onering_mo_relaxed);
	return any == 0;
}

/* The rings whose bits in word w of bl it takes (B2), drained. */
static unsigned submit_word(struct poller *p, struct broker_bells *bl, uint32_t w,
			    uint64_t now_ns)
{
	unsigned n = 0;

	/* B2: pairs with the client's B1 (shm/abi.h): the requests published
	 * before that OR are visible in the ring's tail. seq_cst: with a
	 * summary page, after our exchange of the summary (onering_bell_ring). */
	uint64_t bits = onering_atomic_exchange(&bl->words[w], 0, onering_mo_seq_cst);
	while (bits) {
		uint32_t bit = (uint32_t)__builtin_ctzll(bits);
		bits &= bits - 1;
		/* R9 in broker_bells_join: NULL for a bit nobody holds. */
		struct broker_queue *q = rcu_dereference(bl->queue[w * 64 + bit]);
		if (!q)
			continue;
		BROKER_TSAN_OBSERVE(q);
		if (onering_atomic_load(&q->state, onering_mo_acquire) != BROKER_QUEUE_LIVE)
			continue;
		n += drain_requests(p, q, now_ns);
		bell_again(q);
	}
	return n;
}

/* A summary page's words 1..nw-1 that have bits but no summary bit get one
 * (the poller's own mark, relaxed: it reads the summary itself): a bit a
 * client stranded (it died between its two ORs, or a client of the same
 * user cleared the summary) is then taken like any other. Returns whether
 * any word had bits. */
static bool summary_sweep(struct broker_bells *bl, uint32_t nw)
{
	ONERING_ATOMIC(uint64_t) *sw = &bl->words[ONERING_BELL_SUMMARY_WORD];
	uint64_t found = 0;

	for (uint32_t w = ONERING_BELL_SUMMARY_WORD + 1; w < nw && w < ONERING_BELL_WORDS; w++)
		if (onering_atomic_load(&bl->words[w], onering_mo_relaxed) != 0)
			found |= 1ull << w;
	if (found)
		onering_atomic_fetch_or(sw, found, onering_mo_relaxed);
	return found != 0;
}

/* The rings whose bells are set (bells.h), a summary page's through its
 * summary: one load when the user's queues are idle, however many. Every
 * summary bit but word 0's names a word: not bounded by nr_words, which may
 * have grown since it was read (a new queue's first post can already be
 * there), and words are in bounds whatever a client wrote. sweep: first
 * give stranded bits a summary bit (summary_sweep). */
static unsigned submit_summary(struct poller *p, struct broker_bells *bl, uint32_t nw,
			       bool sweep, uint64_t now_ns)
{
	ONERING_ATOMIC(uint64_t) *sw = &bl->words[ONERING_BELL_SUMMARY_WORD];
	unsigned n = 0;

	if (sweep)
		summary_sweep(bl, nw);
	if (onering_atomic_load(sw, onering_mo_relaxed) == 0) /* a hint */
		return 0;
	/* seq_cst, do not weaken: the client's OR of its word, then its load
	 * of the summary (onering_bell_ring, shm/abi.h), against this exchange
	 * and then the word's: either the client set the summary bit or this
	 * poller's exchange of its word comes after its OR. */
	uint64_t words = onering_atomic_exchange(sw, 0, onering_mo_seq_cst);
	words &= ~(1ull << ONERING_BELL_SUMMARY_WORD);
	while (words) {
		uint32_t w = (uint32_t)__builtin_ctzll(words);
		words &= words - 1;
		n += submit_word(p, bl, w, now_ns);
	}
	return n;
}

/* The rings whose bells are set (bells.h): a word at a time, taken with an
 * exchange; a ring left non-empty (a burst's limit, back-pressure) is
 * marked again for the next loop. */
static unsigned submit_bells(struct poller *p, struct broker_bells *bl, bool sweep,
			     uint64_t now_ns)
{
	/* A13: pairs with R10 in broker_bells_join: the queue pointers of the
	 * bits below are published. */
	uint32_t nw = onering_atomic_load(&bl->nr_words, onering_mo_acquire);
	unsigned n = 0;

	if (bl->summary)
		return submit_summary(p, bl, nw, sweep, now_ns);
	for (uint32_t w = 0; w < nw; w++) {
		/* A look before the exchange: an idle word stays a shared line.
		 * A line of idle words is passed over with one branch. */
		if (w % BELLS_PER_LINE == 0 && nw - w >= BELLS_PER_LINE &&
		    bells_line_idle(&bl->words[w])) {
			w += BELLS_PER_LINE - 1;
			continue;
		}
		if (onering_atomic_load(&bl->words[w], onering_mo_relaxed) != 0)
			n += submit_word(p, bl, w, now_ns);
	}
	return n;
}

/* Blocked POSTs are taken again at least this often (a poller that sleeps
 * also looks at every ring after each sleep, and sleeps no longer than
 * --idle-sleep-ms while they wait: idle_step in poller.c). */
#define POSTS_RETRY_NS 1000000ull
/* How often the summary pages' words are looked at one by one (summary_sweep). */
#define BELLS_SWEEP_NS 1000000ull

static unsigned submit_poll(struct broker_source *src, const struct broker_poll_ctx *ctx)
{
	struct poller *p = src->p;

	/* Blocked POSTs: again when a backlog moved, and every POSTS_RETRY_NS
	 * (their refusals may wait for room in their own ring, which frees
	 * nothing here). */
	bool due = p->posts_blocked && ctx->now_ns - p->posts_look_ns >= POSTS_RETRY_NS;
	if (due || p->backlog_moved) {
		p->backlog_moved = false;
		posts_retry(p, ctx->now_ns, due);
	}
	if (p->full_look) {
		p->full_look = false;
		return submit_full_look(p, ctx->now_ns);
	}
	/* Stranded bells (summary_sweep) wait at most this long, also for a
	 * poller that never sleeps and so never makes a full look. */
	bool sweep = ctx->now_ns - p->bells_sweep_ns >= BELLS_SWEEP_NS;
	if (sweep)
		p->bells_sweep_ns = ctx->now_ns;
	unsigned n = 0;
	/* A14: pairs with R11 in bells_create: the slots below are published. */
	unsigned nb = onering_atomic_load(&p->nr_bells, onering_mo_acquire);
	for (unsigned i = 0; i < nb; i++) {
		struct broker_bells *bl = rcu_dereference(p->bells[i]);
		BROKER_TSAN_OBSERVE(bl);
		n += submit_bells(p, bl, sweep, ctx->now_ns);
	}
	return n;
}

/* After the poller announced sleep (its F2): a client that submitted before
 * seeing NEED_WAKEUP has set its bell (B1) before it read the flag, and is
 * found here; one that submits after it sees the flag and kicks. (A seq_cst
 * RMW and load on the client's side, F2 and these loads on ours.) A summary
 * page's word with bits is given its summary bit (summary_sweep), so that the
 * next loop, which reads only the words the summary names, takes them: a
 * word the summary does not name would otherwise keep the poller awake and
 * never be taken. */
static bool submit_has_work(struct broker_source *src)
{
	struct poller *p = src->p;
	unsigned nb = onering_atomic_load(&p->nr_bells, onering_mo_acquire); /* A14 */

	for (unsigned i = 0; i < nb; i++) {
		struct broker_bells *bl = rcu_dereference(p->bells[i]);
		BROKER_TSAN_OBSERVE(bl);
		uint32_t nw = onering_atomic_load(&bl->nr_words, onering_mo_acquire); /* A13 */
		if (bl->summary) {
			if (onering_atomic_load(&bl->words[ONERING_BELL_SUMMARY_WORD],
						onering_mo_relaxed) != 0 ||
			    summary_sweep(bl, nw))
				return true;
			continue;
		}
		for (uint32_t w = 0; w < nw; w++)
			if (onering_atomic_load(&bl->words[w], onering_mo_relaxed) != 0)
				return true;
	}
	return false;
}

static const struct broker_source_ops submit_ops = {
	.name = "submit",
	.poll = submit_poll,
	.has_work = submit_has_work,
	.destroy = broker_source_free,
};

int broker_source_submit_create(struct poller *p, struct broker_source **out)
{
	*out = broker_source_alloc(p, &submit_ops, sizeof(struct broker_source));
	return *out ? 0 : -ENOMEM;
}
