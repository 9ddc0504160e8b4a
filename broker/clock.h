/* SPDX-License-Identifier: MIT */
/*
 * The poller's clock: CLOCK_MONOTONIC nanoseconds, read once per loop.
 *
 * Where the CPU's time-stamp counter is invariant (it ticks at one rate in
 * every power state: cpuid 0x80000007 EDX bit 8) a read is rdtsc, a
 * multiply and a shift, scaled by a rate measured against CLOCK_MONOTONIC:
 * no vDSO call, which was about 30 % of an idle poller's loop. The rate is
 * measured over the first CLOCK_CALIBRATE_NS (reads are clock_gettime
 * meanwhile) and measured again over the whole time since at every
 * re-anchoring - after as long again as that span, at most CLOCK_SYNC_NS -
 * when the clock also takes CLOCK_MONOTONIC's value again: between anchors
 * it drifts from CLOCK_MONOTONIC by the rate's error over that time (about
 * a microsecond; NTP may slew CLOCK_MONOTONIC by up to 500 ppm, which the
 * TSC does not follow: then up to 50 us). Each anchor is a
 * TSC read bracketed by two CLOCK_MONOTONIC reads. It never goes back: a
 * read below the last one returns the last one. Good for the loop's
 * bookkeeping and posts' stamps; what must never be early (a timer's
 * expiry) or never older than what it reports (an fd's readiness stamp)
 * asks CLOCK_MONOTONIC itself (source_timers.c, source_fds.c).
 *
 * $ONERING_CLOCK=monotonic turns the TSC off (every read is clock_gettime).
 * One clock per thread; nothing here is shared.
 */
#ifndef ONERING_BROKER_CLOCK_H
#define ONERING_BROKER_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#define CLOCK_CALIBRATE_NS (10ull * 1000 * 1000) /* 10 ms before the first rate */
#define CLOCK_SYNC_NS (100ull * 1000 * 1000)     /* re-anchor every 100 ms */

struct broker_clock {
	bool tsc;          /* reads use the TSC (a rate is known) */
	bool can_tsc;      /* the TSC is invariant and not turned off */
	uint64_t cal_tsc;  /* the first anchor: the rate is measured from here */
	uint64_t cal_ns;
	uint64_t tsc0;     /* the current anchor */
	uint64_t ns0;
	uint64_t mult;     /* ns per tick, << 32 */
	uint64_t sync_ns;  /* re-anchor (or calibrate) once a read reaches this */
	uint64_t last_ns;  /* the last value returned */
};

static inline uint64_t broker_clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t broker_clock_ticks(void)
{
#if defined(__x86_64__)
	return __rdtsc();
#else
	return 0;
#endif
}

/* Start c: the TSC when it is invariant, unless $ONERING_CLOCK=monotonic
 * (or tsc is false). */
void broker_clock_init(struct broker_clock *c, bool tsc);

/* The slow path of broker_clock_now: calibrate or re-anchor. */
uint64_t broker_clock_sync(struct broker_clock *c);

/* CLOCK_MONOTONIC now, in ns (see above). */
static inline uint64_t broker_clock_now(struct broker_clock *c)
{
	uint64_t ns;

	if (c->tsc) {
		uint64_t d = broker_clock_ticks() - c->tsc0;
		ns = c->ns0 + (uint64_t)(((unsigned __int128)d * c->mult) >> 32);
	} else {
		ns = broker_clock_mono_ns();
	}
	if (ns >= c->sync_ns)
		ns = broker_clock_sync(c);
	if (ns < c->last_ns)
		return c->last_ns;
	c->last_ns = ns;
	return ns;
}

#endif /* ONERING_BROKER_CLOCK_H */
