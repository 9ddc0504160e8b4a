/* SPDX-License-Identifier: MIT */
/*
 * The poller's clock (clock.h): the invariant-TSC check, the calibration
 * and the re-anchoring.
 */
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "broker/clock.h"

#define ANCHOR_TRIES 4
#define ANCHOR_GOOD_NS 1000u /* a bracket this narrow is taken at once */

/* Does the TSC tick at one rate in every power state (invariant TSC)? */
static bool tsc_invariant(void)
{
#if defined(__x86_64__)
	unsigned a, b, c, d;

	if (__get_cpuid_max(0x80000000u, NULL) < 0x80000007u)
		return false;
	__cpuid(0x80000007u, a, b, c, d);
	return (d & (1u << 8)) != 0;
#else
	return false;
#endif
}

/* A (ticks, ns) pair taken together: the TSC read between two reads of
 * CLOCK_MONOTONIC, ns their midpoint; the closest of a few tries (a
 * preemption between the reads widens the bracket). */
static void anchor_read(uint64_t *ticks, uint64_t *ns)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < ANCHOR_TRIES && best > ANCHOR_GOOD_NS; i++) {
		uint64_t m1 = broker_clock_mono_ns(), t = broker_clock_ticks();
		uint64_t m2 = broker_clock_mono_ns();
		if (m2 - m1 < best) {
			best = m2 - m1;
			*ticks = t;
			*ns = m1 + (m2 - m1) / 2;
		}
	}
}

void broker_clock_init(struct broker_clock *c, bool tsc)
{
	const char *env = getenv("ONERING_CLOCK");

	memset(c, 0, sizeof(*c));
	c->can_tsc = tsc && tsc_invariant() && !(env && strcmp(env, "monotonic") == 0);
	anchor_read(&c->cal_tsc, &c->cal_ns);
	c->tsc0 = c->cal_tsc;
	c->ns0 = c->cal_ns;
	/* No rate yet: clock_gettime until CLOCK_CALIBRATE_NS have passed (or
	 * for ever without an invariant TSC). */
	c->sync_ns = c->can_tsc ? c->cal_ns + CLOCK_CALIBRATE_NS : UINT64_MAX;
}

uint64_t broker_clock_sync(struct broker_clock *c)
{
	uint64_t ticks, ns;

	anchor_read(&ticks, &ns);
	/* The rate over everything since the first anchor: the longer the
	 * span, the smaller the error of the two reads at its ends. */
	if (ticks > c->cal_tsc && ns > c->cal_ns) {
		c->mult = (uint64_t)(((unsigned __int128)(ns - c->cal_ns) << 32) /
				     (ticks - c->cal_tsc));
		c->tsc = c->mult != 0;
	} else {
		c->tsc = false; /* the counter went back (it cannot, invariant): stop */
		c->can_tsc = false;
	}
	c->tsc0 = ticks;
	c->ns0 = ns;
	/* The next anchor no later than the span the rate was measured over:
	 * the rate's error (the two brackets' widths over the span) then moves
	 * the clock by at most those widths (about a microsecond) before it. */
	uint64_t next = ns - c->cal_ns < CLOCK_SYNC_NS ? ns - c->cal_ns : CLOCK_SYNC_NS;
	c->sync_ns = c->tsc ? ns + next : UINT64_MAX;
	return ns;
}
