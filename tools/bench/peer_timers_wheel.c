/* SPDX-License-Identifier: MIT */
/*
 * peer_timers_wheel.c: timers peer "wheel": a hashed timer wheel over one
 * timerfd in the consumer (docs/benchmarks.md, Timers).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "tools/bench/peers.h"

#define WHEEL_SLOTS 1024u /* a power of two */
#define WHEEL_TICK_NS 1000000ull
#define WHEEL_NIL UINT32_MAX

struct wheel_entry {
	uint64_t expiry_ns;
	uint32_t next, prev;
	uint32_t slot; /* WHEEL_NIL when not in the wheel */
};

struct wheel_timers {
	struct timers_common c;
	struct wheel_entry *e;      /* one per timer */
	uint32_t head[WHEEL_SLOTS]; /* slot lists */
	uint64_t tick;              /* ticks before this one are done */
	uint64_t armed_ns;          /* the timerfd's expiry; 0 = not armed */
	unsigned count;             /* timers in the wheel */
	int tfd;
};

static int wheel_arm_fd(struct wheel_timers *w, uint64_t expiry_ns)
{
	struct itimerspec its = { .it_value = bench_ts(expiry_ns) };

	w->c.known_syscalls++;
	if (timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return -errno;
	w->armed_ns = expiry_ns;
	return 0;
}

static void wheel_remove(struct wheel_timers *w, uint32_t i)
{
	struct wheel_entry *e = &w->e[i];

	if (e->slot == WHEEL_NIL)
		return;
	if (e->prev != WHEEL_NIL)
		w->e[e->prev].next = e->next;
	else
		w->head[e->slot] = e->next;
	if (e->next != WHEEL_NIL)
		w->e[e->next].prev = e->prev;
	e->slot = WHEEL_NIL;
	w->count--;
}

static int wheel_insert(struct wheel_timers *w, uint32_t i, uint64_t expiry_ns)
{
	struct wheel_entry *e = &w->e[i];
	uint64_t t = expiry_ns / WHEEL_TICK_NS;

	if (t < w->tick)
		t = w->tick; /* already due: the slot being worked on */
	e->expiry_ns = expiry_ns;
	e->slot = (uint32_t)(t & (WHEEL_SLOTS - 1));
	e->prev = WHEEL_NIL;
	e->next = w->head[e->slot];
	if (e->next != WHEEL_NIL)
		w->e[e->next].prev = i;
	w->head[e->slot] = i;
	w->count++;
	return w->armed_ns == 0 || expiry_ns < w->armed_ns ? wheel_arm_fd(w, expiry_ns) : 0;
}

/* The earliest expiry in the wheel, or 0 when it is empty. */
static uint64_t wheel_next(const struct wheel_timers *w)
{
	uint64_t best = UINT64_MAX;

	if (w->count == 0)
		return 0;
	for (uint64_t t = w->tick; t < w->tick + WHEEL_SLOTS; t++) {
		uint64_t limit = (t + 1) * WHEEL_TICK_NS; /* this revolution's */
		for (uint32_t i = w->head[t & (WHEEL_SLOTS - 1)]; i != WHEEL_NIL; i = w->e[i].next)
			if (w->e[i].expiry_ns < limit && w->e[i].expiry_ns < best)
				best = w->e[i].expiry_ns;
		if (best != UINT64_MAX)
			return best;
	}
	/* Everything is more than a revolution away: look at all of it. */
	for (uint32_t s = 0; s < WHEEL_SLOTS; s++)
		for (uint32_t i = w->head[s]; i != WHEEL_NIL; i = w->e[i].next)
			best = w->e[i].expiry_ns < best ? w->e[i].expiry_ns : best;
	return best;
}

static int timers_wheel_setup(struct bench_ctx *ctx BENCH_UNUSED,
			      const struct bench_peer_ops *self BENCH_UNUSED, void *state)
{
	struct wheel_timers *w = state;

	if ((w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0)
		return -errno;
	if (!(w->e = malloc(w->c.n * sizeof(*w->e))))
		return -ENOMEM;
	for (unsigned i = 0; i < w->c.n; i++)
		w->e[i].slot = WHEEL_NIL;
	for (unsigned i = 0; i < WHEEL_SLOTS; i++)
		w->head[i] = WHEEL_NIL;
	w->tick = bench_now_ns() / WHEEL_TICK_NS;
	return 0;
}

/* Arm timer i at items[i] (absolute), or disarm all when items is NULL. */
static int timers_wheel_produce(void *state, unsigned thread_idx BENCH_UNUSED, void *items,
				unsigned count)
{
	struct wheel_timers *w = state;
	int rc = 0;

	for (uint32_t i = 0; i < count && rc == 0; i++) {
		wheel_remove(w, i);
		if (items)
			rc = wheel_insert(w, i, ((const uint64_t *)items)[i]);
	}
	return rc;
}

static int timers_wheel_consume(void *state, unsigned thread_idx BENCH_UNUSED, void *items,
				unsigned max_count)
{
	struct wheel_timers *w = state;
	struct timer_fire *f = items;
	struct timespec tmo = bench_ts(w->c.wait_ns);
	struct pollfd pfd = { .fd = w->tfd, .events = POLLIN };
	uint64_t v;
	unsigned k = 0;
	int r = ppoll(&pfd, 1, &tmo, NULL);
	if (r <= 0)
		return r < 0 && errno != EINTR ? -errno : 0;
	if (read(w->tfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	w->armed_ns = 0; /* it fired: one-shot */
	uint64_t now = bench_now_ns(), nt = now / WHEEL_TICK_NS, from = w->tick;
	if (nt >= from + WHEEL_SLOTS)
		from = nt - WHEEL_SLOTS + 1; /* one revolution covers every slot */
	for (uint64_t t = from; t <= nt; t++)
		for (uint32_t i = w->head[t & (WHEEL_SLOTS - 1)], next; i != WHEEL_NIL; i = next) {
			next = w->e[i].next;
			if (w->e[i].expiry_ns <= now && k < max_count) {
				wheel_remove(w, i);
				f[k++] = (struct timer_fire){ .idx = i, .expirations = 1 };
			}
		}
	if (nt > w->tick && k < max_count)
		w->tick = nt;
	uint64_t next = wheel_next(w);
	int rc = next ? wheel_arm_fd(w, next) : 0;
	return rc < 0 ? rc : (int)k;
}

static int timers_wheel_control(void *state, unsigned op, void *arg BENCH_UNUSED)
{
	if (op == TIMERS_OP_LEFT)
		return (int)((struct wheel_timers *)state)->count;
	return op == TIMERS_OP_SENTINEL ? -ENOTSUP : -EINVAL;
}

static void timers_wheel_teardown(struct bench_ctx *ctx BENCH_UNUSED, void *state)
{
	struct wheel_timers *w = state;

	if (w->tfd > 0)
		close(w->tfd);
	free(w->e);
}

BENCH_PEER(bench_peer_timers_wheel, "wheel", "the consumer's own hashed wheel (1024 x 1 ms) over "
	   "one timerfd", NULL, struct wheel_timers, 0, timers_wheel_setup, timers_wheel_produce,
	   timers_wheel_consume, timers_wheel_control, timers_wheel_teardown);
