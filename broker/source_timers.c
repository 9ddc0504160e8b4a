/* SPDX-License-Identifier: MIT */
/*
 * Broker-side timers: one binary min-heap per poller, keyed by expiry on
 * CLOCK_MONOTONIC (ns). Arming is a submission-ring request (no system call
 * in the client); the poller fires what is due every loop and sleeps no
 * longer than the next expiry.
 *
 * Cancel and re-arm are lazy: each arm bumps the subscription's t_seq and
 * pushes a new entry; an entry whose seq (or subscription) no longer
 * matches is dropped when it reaches the top. Entries hold the (gen, id)
 * key, not a pointer, so a subscription freed meanwhile is simply not found.
 * Stale entries are bounded: when the heap holds more than twice the
 * entries that were live at the last count (plus TIMERS_COMPACT_SLACK), it
 * keeps only the live ones and is rebuilt (O(n), so O(1) per arm over
 * time). A client that re-arms one long timer in a loop (a keep-alive reset
 * on every message) thus costs the broker one entry, not one per re-arm.
 *
 * A heap rather than a hierarchical wheel: O(log n) arm and fire, O(1) next
 * expiry, exact ordering at any resolution, and no cascade; for the tens of
 * thousands of timers a poller holds the log factor is a few compares
 * (measured in docs/benchmarks.md, timers).
 *
 * Periodic timers coalesce what they missed: when the poller fires late by
 * k whole periods (or the ring was full), one record carries k + 1
 * expirations and the next expiry stays on the original grid.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/queue.h"
#include "broker/source.h"
#include "shm/log.h"

/* Heap entry: stale once the sub's t_seq moved on (lazy cancel). */
struct timer_entry {
	uint64_t expiry;
	uint64_t key; /* broker_sub_key(id, gen) */
	uint32_t seq;
};

struct source_timers {
	struct broker_source src;
	struct timer_entry *heap; /* min-heap by expiry */
	uint32_t nr, cap;
	uint32_t live; /* live entries at the last compaction */
	/* The base of relative arms: CLOCK_MONOTONIC read for base_q in loop
	 * base_loop. */
	uint64_t base_loop;
	const struct broker_queue *base_q;
	uint64_t base_ns;
};

#define TIMERS_COMPACT_SLACK 1024u

static void heap_swap(struct timer_entry *h, uint32_t a, uint32_t b)
{
	struct timer_entry t = h[a];

	h[a] = h[b];
	h[b] = t;
}

static void heap_up(struct timer_entry *h, uint32_t i)
{
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (h[parent].expiry <= h[i].expiry)
			break;
		heap_swap(h, parent, i);
		i = parent;
	}
}

static void heap_down(struct timer_entry *h, uint32_t n, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && h[l].expiry < h[m].expiry)
			m = l;
		if (r < n && h[r].expiry < h[m].expiry)
			m = r;
		if (m == i)
			return;
		heap_swap(h, m, i);
		i = m;
	}
}

/* Is entry e its subscription's current arm? */
static bool entry_live(struct broker_source *src, const struct timer_entry *e)
{
	struct broker_sub *s = broker_registry_lookup(&src->p->b->reg, e->key);

	return s && s->t_seq == e->seq && !broker_sub_dead(s);
}

/* Keep the live entries only, and make them a heap again (Floyd). */
static void heap_compact(struct source_timers *t)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < t->nr; i++)
		if (entry_live(&t->src, &t->heap[i]))
			t->heap[n++] = t->heap[i];
	t->nr = n;
	t->live = n;
	for (uint32_t i = n / 2; i-- > 0;)
		heap_down(t->heap, n, i);
}

static int heap_push(struct source_timers *t, uint64_t expiry, uint64_t key, uint32_t seq)
{
	if (t->nr >= 2 * t->live + TIMERS_COMPACT_SLACK)
		heap_compact(t);
	if (t->nr == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 256;
		struct timer_entry *h = realloc(t->heap, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		t->heap = h;
		t->cap = cap;
	}
	t->heap[t->nr] = (struct timer_entry){.expiry = expiry, .key = key, .seq = seq};
	heap_up(t->heap, t->nr++);
	onering_atomic_store(&t->src.p->ctr[ONERING_PC_TIMER_ENTRIES], t->nr, onering_mo_relaxed);
	return 0;
}

static void heap_pop(struct source_timers *t)
{
	t->heap[0] = t->heap[--t->nr];
	heap_down(t->heap, t->nr, 0);
	onering_atomic_store(&t->src.p->ctr[ONERING_PC_TIMER_ENTRIES], t->nr, onering_mo_relaxed);
}

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Arm (arg[0] != 0) or disarm (0) timer s; a delete makes its entries stale. */
static int timers_apply_request(struct broker_source *src, struct broker_queue *q,
				struct broker_sub *s, const struct onering_request *req)
{
	struct source_timers *t = (struct source_timers *)src;
	/* CLOCK_MONOTONIC itself (not the poller's TSC clock, which may be a
	 * few microseconds off), read after this queue's tail was: never
	 * before the client's arm, so a relative timer never fires early.
	 * Once per queue and loop (a drain reads one tail). */
	if (t->base_loop != src->p->loop_no || t->base_q != q) {
		t->base_loop = src->p->loop_no;
		t->base_q = q;
		t->base_ns = clock_ns(CLOCK_MONOTONIC);
	}
	uint64_t value = req->arg[0], now = t->base_ns;

	s->t_seq++; /* every older entry of s is stale from here */
	if (req->op == ONERING_REQ_DEL)
		return 0;
	s->t_period = req->arg[1];
	if (value == 0)
		return 0; /* disarmed */
	if (!(req->flags & ONERING_TIMER_ABSTIME)) {
		s->t_expiry = now + value;
	} else if (req->flags & ONERING_TIMER_REALTIME) {
		/* Absolute wall-clock time, placed on the monotonic clock now (a
		 * later clock step does not move it). Monotonic is read again,
		 * after the wall clock: the loop's base_ns may be microseconds
		 * older than `real` (another queue's drain, a preemption), and
		 * adding the wall distance to it would fire that much early. */
		uint64_t real = clock_ns(CLOCK_REALTIME);
		uint64_t mono = clock_ns(CLOCK_MONOTONIC);
		s->t_expiry = value > real ? mono + (value - real) : mono;
	} else {
		s->t_expiry = value;
	}
	if (heap_push(t, s->t_expiry, broker_sub_key(s->id, s->gen), s->t_seq) < 0)
		onering_log(ONERING_LOG_ERR, "poller %u: no memory for timer %u: not armed",
			    src->p->idx, s->id);
	return 0;
}

/* Fire what is due: one record per timer, carrying its expirations. */
static unsigned timers_poll(struct broker_source *src, const struct broker_poll_ctx *ctx)
{
	struct source_timers *t = (struct source_timers *)src;
	struct poller *p = src->p;
	uint64_t now = ctx->now_ns;
	unsigned fired = 0;

	/* Due by the loop's clock (the TSC, clock.h): ask CLOCK_MONOTONIC
	 * itself before firing, once per loop - the TSC clock may run a few
	 * microseconds ahead of it (NTP slews CLOCK_MONOTONIC, not the TSC),
	 * and a timer never fires before its expiry. */
	if (t->nr && t->heap[0].expiry <= now)
		now = clock_ns(CLOCK_MONOTONIC);
	while (t->nr && t->heap[0].expiry <= now) {
		struct timer_entry e = t->heap[0];
		heap_pop(t);
		struct broker_sub *s = broker_registry_lookup(&p->b->reg, e.key);
		/* A5 (deliver.c): the owner queue's state word. */
		if (!s || s->t_seq != e.seq || broker_sub_dead(s) ||
		    onering_atomic_load(&s->queue->state, onering_mo_acquire) != BROKER_QUEUE_LIVE)
			continue; /* cancelled, re-armed, deleted or its queue closing */
		uint64_t exp = 1;
		if (s->t_period) {
			exp += (now - e.expiry) / s->t_period;
			s->t_expiry = e.expiry + exp * s->t_period;
			if (heap_push(t, s->t_expiry, e.key, e.seq) < 0)
				onering_log(ONERING_LOG_ERR, "poller %u: no memory to re-arm periodic "
					    "timer %u: it stops after this expiry", p->idx, s->id);
		}
		deliver_sub(p, s, 0, exp > UINT32_MAX ? UINT32_MAX : (uint32_t)exp, now);
		fired++;
	}
	return fired;
}

static uint64_t timers_next_deadline(struct broker_source *src, uint64_t now)
{
	struct source_timers *t = (struct source_timers *)src;

	if (!t->nr)
		return UINT64_MAX;
	return t->heap[0].expiry > now ? t->heap[0].expiry - now : 0;
}

static void timers_destroy(struct broker_source *src)
{
	struct source_timers *t = (struct source_timers *)src;

	free(t->heap);
	free(t);
}

static const struct broker_source_ops timers_ops = {
	.name = "timers",
	.poll = timers_poll,
	.apply_request = timers_apply_request,
	.next_deadline = timers_next_deadline,
	.destroy = timers_destroy,
};

int broker_source_timers_create(struct poller *p, struct broker_source **out)
{
	*out = broker_source_alloc(p, &timers_ops, sizeof(struct source_timers));
	return *out ? 0 : -ENOMEM;
}
