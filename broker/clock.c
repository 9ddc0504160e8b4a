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

void broker_clock_init(struct broker_clock *c, bool tsc)
{
	const char *env = getenv("ONERING_CLOCK");

	memset(c, 0, sizeof(*c));
	c->can_tsc = tsc && tsc_invariant() && !(env && strcmp(env, "monotonic") == 0);
	c->cal_ns = c->ns0 = broker_clock_mono_ns();
	c->cal_tsc = c->tsc0 = broker_clock_ticks();
	/* No rate yet: clock_gettime until CLOCK_CALIBRATE_NS have passed (or
	 * for ever without an invariant TSC). */
	c->sync_ns = c->can_tsc ? c->cal_ns + CLOCK_CALIBRATE_NS : UINT64_MAX;
}

uint64_t broker_clock_sync(struct broker_clock *c)
{
	uint64_t ticks = broker_clock_ticks(), ns = broker_clock_mono_ns();

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
	c->sync_ns = c->tsc ? ns + CLOCK_SYNC_NS : UINT64_MAX;
	return ns;
}
