// SPDX-License-Identifier: MIT
//
// The poller's clock (broker/clock.h): CLOCK_MONOTONIC from the TSC. It
// never goes back, and stays within the reads of CLOCK_MONOTONIC taken
// around it, through its calibration and its re-anchorings.
#include <gtest/gtest.h>

#include <cstdlib>

extern "C" {
#include "broker/clock.h"
}

namespace {

constexpr uint64_t kSlackNs = 1000 * 1000; // the rate's error is far below this

// Reads of c bracketed by CLOCK_MONOTONIC reads, until it has used the TSC
// through `anchors` re-anchorings (or a bound on reads and time).
void ReadAround(struct broker_clock *c, unsigned anchors)
{
	uint64_t prev = 0, start = broker_clock_mono_ns(), seen = 0, last_anchor = c->ns0;
	for (long i = 0; i < 50'000'000 && seen < anchors; i++) {
		uint64_t m1 = broker_clock_mono_ns();
		uint64_t n = broker_clock_now(c);
		uint64_t m2 = broker_clock_mono_ns();
		ASSERT_GE(n, prev) << "the clock went back at read " << i;
		ASSERT_LE(n, m2 + kSlackNs) << "ahead of CLOCK_MONOTONIC at read " << i;
		ASSERT_GE(n + kSlackNs, m1) << "behind CLOCK_MONOTONIC at read " << i;
		prev = n;
		if (c->tsc && c->ns0 != last_anchor) {
			seen++;
			last_anchor = c->ns0;
		}
		if (m2 - start > 5ull * 1000 * 1000 * 1000)
			break; // a very slow machine: what was read was checked
	}
}

TEST(ClockTest, TheTscClockFollowsClockMonotonicAndNeverGoesBack)
{
	struct broker_clock c;
	unsetenv("ONERING_CLOCK");
	broker_clock_init(&c, true);
	if (!c.can_tsc)
		GTEST_SKIP() << "no invariant TSC here: every read is clock_gettime";
	EXPECT_FALSE(c.tsc) << "a rate before any calibration";
	// Calibration (10 ms), then re-anchorings every 100 ms; force a few
	// more so that the test does not take seconds.
	ASSERT_NO_FATAL_FAILURE(ReadAround(&c, 1));
	EXPECT_TRUE(c.tsc) << "still calibrating";
	EXPECT_GT(c.mult, 0u);
	for (int k = 0; k < 5; k++) {
		c.sync_ns = 0; // re-anchor at the next read
		ASSERT_NO_FATAL_FAILURE(ReadAround(&c, 1));
	}
	EXPECT_TRUE(c.tsc);
}

TEST(ClockTest, OneringClockMonotonicTurnsTheTscOff)
{
	struct broker_clock c;
	setenv("ONERING_CLOCK", "monotonic", 1);
	broker_clock_init(&c, true);
	unsetenv("ONERING_CLOCK");
	EXPECT_FALSE(c.can_tsc);
	uint64_t m1 = broker_clock_mono_ns();
	uint64_t n = broker_clock_now(&c);
	uint64_t m2 = broker_clock_mono_ns();
	EXPECT_FALSE(c.tsc);
	EXPECT_GE(n, m1);
	EXPECT_LE(n, m2) << "a clock_gettime read, nothing added";
	broker_clock_init(&c, false);
	EXPECT_FALSE(c.can_tsc) << "the caller said no";
}

} // namespace
