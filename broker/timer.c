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
#include "broker/queue.h"
#include "shm/log.h"

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

static bool heap_push(struct poller *p, uint64_t expiry, uint64_t key, uint32_t seq)
{
	if (p->nr_timers == p->cap_timers) {
		uint32_t cap = p->cap_timers ? p->cap_timers * 2 : 256;
		struct timer_entry *h = realloc(p->theap, cap * sizeof(*h));
		if (!h)
			return false;
		p->theap = h;
		p->cap_timers = cap;
	}
	p->theap[p->nr_timers] = (struct timer_entry){.expiry = expiry, .key = key, .seq = seq};
	heap_up(p->theap, p->nr_timers++);
	return true;
}

static void heap_pop(struct poller *p)
{
	p->theap[0] = p->theap[--p->nr_timers];
	heap_down(p->theap, p->nr_timers, 0);
}

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void timer_arm(struct poller *p, struct broker_sub *s, const struct onering_request *req)
{
	uint64_t value = req->arg[0], now = clock_ns(CLOCK_MONOTONIC);

	s->t_seq++; /* every older entry of s is stale from here */
	s->t_period = req->arg[1];
	if (value == 0)
		return; /* disarmed */
	if (!(req->flags & ONERING_TIMER_ABSTIME)) {
		s->t_expiry = now + value;
	} else if (req->flags & ONERING_TIMER_REALTIME) {
		/* Absolute wall-clock time, placed on the monotonic clock now (a
		 * later clock step does not move it). */
		uint64_t real = clock_ns(CLOCK_REALTIME);
		s->t_expiry = value > real ? now + (value - real) : now;
	} else {
		s->t_expiry = value;
	}
	if (!heap_push(p, s->t_expiry, broker_sub_key(s->id, s->gen), s->t_seq))
		onering_log(ONERING_LOG_ERR, "poller %u: no memory for timer %u: not armed", p->idx,
			    s->id);
}

unsigned timers_fire(struct poller *p, uint64_t now)
{
	unsigned fired = 0;

	while (p->nr_timers && p->theap[0].expiry <= now) {
		struct timer_entry e = p->theap[0];
		heap_pop(p);
		struct broker_sub *s = broker_registry_lookup(&p->b->reg, e.key);
		if (!s || s->t_seq != e.seq || broker_sub_dead(s) ||
		    onering_atomic_load(&s->queue->state, onering_mo_acquire) != BROKER_QUEUE_LIVE)
			continue; /* cancelled, re-armed, deleted or its queue closing */
		uint64_t exp = 1;
		if (s->t_period) {
			exp += (now - e.expiry) / s->t_period;
			s->t_expiry = e.expiry + exp * s->t_period;
			heap_push(p, s->t_expiry, e.key, e.seq);
		}
		poller_deliver(p, s, 0, exp > UINT32_MAX ? UINT32_MAX : (uint32_t)exp, now);
		fired++;
	}
	return fired;
}

uint64_t timers_next(struct poller *p, uint64_t now)
{
	if (!p->nr_timers)
		return UINT64_MAX;
	return p->theap[0].expiry > now ? p->theap[0].expiry - now : 0;
}

void timers_fini(struct poller *p)
{
	free(p->theap);
	p->theap = NULL;
	p->nr_timers = p->cap_timers = 0;
}
