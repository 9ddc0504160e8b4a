// SPDX-License-Identifier: MIT
// The broker's balancing policy as pure functions (broker/balance.h): every
// policy, every NUMA filter and wake order, over hand-built candidate lists.
// No broker, no queue, no shared memory: a candidate is what deliver.c's
// snapshot would say about a member queue.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <utility>
#include <vector>

#include "broker/balance.h"
#include "shm/abi.h"
#include "shm/proto.h"

namespace {

// Candidate builders: a member with `used` of `cap` records unconsumed.
struct balance_cand Cand(uint64_t used, uint32_t cap = 8, bool local = true, uint16_t dist = 10)
{
	struct balance_cand c {};
	c.used = used;
	c.cap = cap;
	c.local = local;
	c.dist = local ? 10 : dist;
	c.state = ONERING_CONSUMER_RUNNING;
	return c;
}

// A consumer asleep on an empty ring since idle_ns.
struct balance_cand Idle(uint64_t idle_ns, bool local = true, uint16_t dist = 10)
{
	struct balance_cand c = Cand(0, 8, local, dist);
	c.state = ONERING_CONSUMER_SLEEPING;
	c.idle_ns = idle_ns;
	return c;
}

// One fixture per unit: the decision state and settings a poller keeps for a
// group, and Choose() as deliver.c calls it.
class BalanceTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		set_.policy = ONERING_POLICY_RR;
		set_.numa = ONERING_NUMA_INTERLEAVE;
		set_.spill_pct = 80;
		set_.wake = ONERING_WAKE_LIFO;
		set_.max_running = 64;
	}
	int Choose() { return balance_choose(&set_, &st_, c_.data(), (unsigned)c_.size()); }
	// The indices of n decisions in a row (nothing changes between them).
	std::vector<int> ChooseN(unsigned n)
	{
		std::vector<int> v;
		for (unsigned i = 0; i < n; i++)
			v.push_back(Choose());
		return v;
	}
	struct balance_settings set_ {};
	struct balance_state st_ {};
	std::vector<struct balance_cand> c_;
};

class BalanceRrTest : public BalanceTest {};
class BalanceLeastTest : public BalanceTest {
protected:
	void SetUp() override
	{
		BalanceTest::SetUp();
		set_.policy = ONERING_POLICY_LEAST;
	}
};
class BalanceStickyTest : public BalanceTest {
protected:
	void SetUp() override
	{
		BalanceTest::SetUp();
		set_.policy = ONERING_POLICY_STICKY;
	}
};
class BalanceLifoTest : public BalanceTest {
protected:
	void SetUp() override
	{
		BalanceTest::SetUp();
		set_.policy = ONERING_POLICY_LIFO;
	}
};
class BalanceLocalTest : public BalanceTest {
protected:
	void SetUp() override
	{
		BalanceTest::SetUp();
		set_.policy = ONERING_POLICY_LOCAL;
	}
};
class NumaFilterTest : public BalanceTest {
protected:
	void Filter() { balance_numa_filter(&set_, c_.data(), (unsigned)c_.size()); }
	std::vector<bool> Ok() const
	{
		std::vector<bool> v;
		for (const auto &c : c_)
			v.push_back(c.ok);
		return v;
	}
};
class BalanceEdgeTest : public BalanceTest {};
class FlowBucketTest : public ::testing::Test {};
class FlowHeldTest : public ::testing::Test {};
class CandidateTest : public ::testing::Test {};

using V = std::vector<int>;
using B = std::vector<bool>;

// ---- rr ---------------------------------------------------------------------

TEST_F(BalanceRrTest, TakesTurnsInMemberOrder)
{
	c_ = {Cand(0), Cand(0), Cand(0)};
	EXPECT_EQ(ChooseN(4), (V{0, 1, 2, 0}));
	EXPECT_EQ(st_.rr, 1u);
}

TEST_F(BalanceRrTest, GoesByTurnNotByOccupancy)
{
	c_ = {Cand(7), Cand(0), Cand(3)};
	EXPECT_EQ(ChooseN(3), (V{0, 1, 2}));
}

TEST_F(BalanceRrTest, SkipsAFullMember)
{
	c_ = {Cand(0), Cand(8), Cand(0)};
	EXPECT_EQ(ChooseN(4), (V{0, 2, 0, 2}));
}

TEST_F(BalanceRrTest, SkipsAMemberTheNumaFilterExcludes)
{
	set_.numa = ONERING_NUMA_STRICT;
	c_ = {Cand(0), Cand(0, 8, false, 20), Cand(0)};
	EXPECT_EQ(ChooseN(3), (V{0, 2, 0}));
	EXPECT_FALSE(c_[1].ok);
}

TEST_F(BalanceRrTest, CursorWrapsPastTheLastMember)
{
	c_ = {Cand(0), Cand(0), Cand(0)};
	st_.rr = 2;
	EXPECT_EQ(Choose(), 2);
	EXPECT_EQ(st_.rr, 3u);
	EXPECT_EQ(Choose(), 0);
	EXPECT_EQ(st_.rr, 1u);
}

// The group shrank since the cursor was set: it still lands on a member.
TEST_F(BalanceRrTest, CursorBeyondASmallerGroupStillChoosesAMember)
{
	c_ = {Cand(0), Cand(0)};
	st_.rr = 7; // 7 % 2 = 1
	EXPECT_EQ(Choose(), 1);
	EXPECT_EQ(Choose(), 0);
}

TEST_F(BalanceRrTest, NoneWhenEveryMemberIsFull)
{
	c_ = {Cand(8), Cand(8), Cand(9)};
	st_.rr = 1;
	EXPECT_EQ(Choose(), -1);
	EXPECT_EQ(st_.rr, 1u) << "a failed decision moves no cursor";
}

TEST_F(BalanceRrTest, AnUnknownPolicyIsRoundRobin)
{
	set_.policy = 99;
	c_ = {Cand(5), Cand(0)};
	EXPECT_EQ(ChooseN(3), (V{0, 1, 0}));
}

// ---- least --------------------------------------------------------------------

TEST_F(BalanceLeastTest, ChoosesTheFewestUnconsumed)
{
	c_ = {Cand(5), Cand(2), Cand(3)};
	EXPECT_EQ(Choose(), 1);
}

// Priority levels: `used` is the record's level's ring, `higher` what the
// consumer takes before it, `lower` after it - least goes by what the record
// would wait behind, and `lower` does not count.
TEST_F(BalanceLeastTest, ComparesTheRecordsLevelAndAboveNotLowerLevels)
{
	c_ = {Cand(1), Cand(0), Cand(2)};
	c_[1].higher = 3; // q1: 3 records of higher levels to take first
	c_[0].lower = 50; // q0: a backlog of lower ones does not delay it
	EXPECT_EQ(Choose(), 0);
}

TEST_F(BalanceLeastTest, SkipsFullMembersEvenWithSmallerRings)
{
	c_ = {Cand(4, 4), Cand(6, 8)};
	EXPECT_EQ(Choose(), 1);
}

TEST_F(BalanceLeastTest, TiesGoToTheLastIdleUnderLifoWake)
{
	set_.wake = ONERING_WAKE_LIFO;
	c_ = {Cand(1), Cand(1), Cand(1)};
	c_[0].idle_ns = 100;
	c_[1].idle_ns = 300;
	c_[2].idle_ns = 200;
	EXPECT_EQ(Choose(), 1);
}

TEST_F(BalanceLeastTest, TiesGoToTheLongestIdleUnderFifoWake)
{
	set_.wake = ONERING_WAKE_FIFO;
	c_ = {Cand(1), Cand(1), Cand(1), Cand(0)};
	c_[0].idle_ns = 100;
	c_[1].idle_ns = 300;
	c_[2].idle_ns = 200;
	c_[3].idle_ns = 400;
	EXPECT_EQ(Choose(), 3) << "fewest first, the wake order only among equals";
	c_[3].used = 1;
	EXPECT_EQ(Choose(), 0);
}

TEST_F(BalanceLeastTest, TiesTakeTurnsUnderRrWake)
{
	set_.wake = ONERING_WAKE_RR;
	c_ = {Cand(2), Cand(1), Cand(5), Cand(1)};
	EXPECT_EQ(ChooseN(3), (V{1, 3, 1}));
}

TEST_F(BalanceLeastTest, EqualIdleTimesGoToTheFirstMember)
{
	c_ = {Cand(3), Cand(1), Cand(1)};
	EXPECT_EQ(ChooseN(2), (V{1, 1}));
}

TEST_F(BalanceLeastTest, NoneWhenEveryAllowedMemberIsFull)
{
	set_.numa = ONERING_NUMA_STRICT;
	c_ = {Cand(8), Cand(0, 8, false, 20)};
	EXPECT_EQ(Choose(), -1);
}

// A full member with a smaller ring (4 of 4) ties with one that has room
// (4 of 8): the tie never goes to the full one (found writing this suite:
// it could, and the record waited while a member had room).
TEST_F(BalanceLeastTest, ATieNeverChoosesAFullMember)
{
	set_.wake = ONERING_WAKE_LIFO;
	c_ = {Cand(4, 4), Cand(4, 8)};
	c_[0].idle_ns = 200; // lifo would prefer it
	c_[1].idle_ns = 100;
	EXPECT_EQ(Choose(), 1);
}

// ---- sticky (as least; the flow's hold is balance_flow_held) -------------------

TEST_F(BalanceStickyTest, ChoosesAsLeastDoes)
{
	set_.wake = ONERING_WAKE_FIFO;
	c_ = {Cand(3), Cand(1), Cand(1)};
	c_[1].idle_ns = 50;
	c_[2].idle_ns = 20;
	EXPECT_EQ(Choose(), 2);
}

TEST_F(BalanceStickyTest, GoesByTheConsumersWords)
{
	EXPECT_TRUE(balance_reads_consumers(ONERING_POLICY_STICKY));
	EXPECT_TRUE(balance_reads_consumers(ONERING_POLICY_LEAST));
	EXPECT_TRUE(balance_reads_consumers(ONERING_POLICY_LIFO));
	EXPECT_FALSE(balance_reads_consumers(ONERING_POLICY_RR));
	EXPECT_FALSE(balance_reads_consumers(ONERING_POLICY_LOCAL));
}

TEST_F(FlowHeldTest, HeldWhileARecordIsOnItsWay)
{
	// Sent 3, placed 2: one is on a lane. Held whatever the head says.
	EXPECT_TRUE(balance_flow_held(3, 2, 100, 100, 8));
	EXPECT_TRUE(balance_flow_held(3, 2, 100, 5000, 8));
}

TEST_F(FlowHeldTest, HeldWhileThePlacedRecordIsUnconsumed)
{
	EXPECT_TRUE(balance_flow_held(2, 2, 100, 99, 8));
	EXPECT_TRUE(balance_flow_held(2, 2, 100, 92, 8)) << "a whole ring behind: still held";
}

TEST_F(FlowHeldTest, FreeOnceTheConsumerPassedIt)
{
	EXPECT_FALSE(balance_flow_held(2, 2, 100, 100, 8));
	EXPECT_FALSE(balance_flow_held(2, 2, 100, 105, 8));
}

TEST_F(FlowHeldTest, FreeWhenTheHeadIsGarbageFarBehind)
{
	// More than a ring behind end_pos cannot be: a client wrote garbage.
	EXPECT_FALSE(balance_flow_held(2, 2, 100, 91, 8));
	EXPECT_FALSE(balance_flow_held(2, 2, 100, 0, 8));
	EXPECT_FALSE(balance_flow_held(2, 2, 100, 100 + (1ull << 63), 8));
}

TEST_F(FlowHeldTest, PositionsWrapAroundTwoToTheSixtyFourth)
{
	const uint64_t end = 2; // placed just after the wrap
	EXPECT_TRUE(balance_flow_held(1, 1, end, UINT64_MAX - 1, 8)); // 4 behind
	EXPECT_TRUE(balance_flow_held(1, 1, end, UINT64_MAX - 5, 8)); // 8 behind
	EXPECT_FALSE(balance_flow_held(1, 1, end, UINT64_MAX - 6, 8)); // 9 behind
	EXPECT_FALSE(balance_flow_held(1, 1, end, end, 8));
	EXPECT_FALSE(balance_flow_held(1, 1, UINT64_MAX, 0, 8)); // head past it, across the wrap
}

// ---- lifo -----------------------------------------------------------------------

TEST_F(BalanceLifoTest, AnIdleMemberBeforeMembersAtWork)
{
	c_ = {Cand(0), Cand(2), Idle(10)};
	EXPECT_EQ(Choose(), 2);
	c_[2].state = ONERING_CONSUMER_RUNNING; // woke up: at work, not idle
	EXPECT_EQ(Choose(), 0) << "no idle member: the member at work with the fewest records";
}

TEST_F(BalanceLifoTest, RecordsAtAnyLevelPutAMemberAtWork)
{
	c_ = {Idle(10), Idle(20)};
	c_[1].lower = 1; // its level's ring is empty, a lower one is not
	EXPECT_EQ(Choose(), 0);
	c_[0].higher = 2;
	EXPECT_EQ(Choose(), 1) << "no member waits with every ring empty: the one with "
				  "fewer records at the record's level and above";
}

TEST_F(BalanceLifoTest, SpinningWithAnEmptyRingCountsAsIdle)
{
	c_ = {Cand(0), Idle(10)};
	c_[1].state = ONERING_CONSUMER_SPINNING;
	EXPECT_EQ(Choose(), 1);
}

TEST_F(BalanceLifoTest, LifoWakeTakesTheLastToGoIdle)
{
	set_.wake = ONERING_WAKE_LIFO;
	c_ = {Idle(100), Idle(300), Idle(200)};
	EXPECT_EQ(Choose(), 1);
}

TEST_F(BalanceLifoTest, FifoWakeTakesTheFirstToGoIdle)
{
	set_.wake = ONERING_WAKE_FIFO;
	c_ = {Idle(100), Idle(300), Idle(50)};
	EXPECT_EQ(Choose(), 2);
}

TEST_F(BalanceLifoTest, RrWakeTakesIdleMembersInTurn)
{
	set_.wake = ONERING_WAKE_RR;
	c_ = {Idle(100), Cand(1), Idle(300), Idle(200)};
	EXPECT_EQ(ChooseN(4), (V{0, 2, 3, 0}));
}

TEST_F(BalanceLifoTest, LocalFirstWakePrefersALocalIdleMember)
{
	set_.wake = ONERING_WAKE_LOCAL_FIRST;
	c_ = {Idle(500, false, 20), Idle(100), Idle(200), Idle(900, false, 20)};
	EXPECT_EQ(Choose(), 2) << "lifo among the local ones";
}

TEST_F(BalanceLifoTest, LocalFirstWakeFallsBackToLifoAmongAll)
{
	set_.wake = ONERING_WAKE_LOCAL_FIRST;
	c_ = {Idle(500, false, 20), Cand(3), Idle(900, false, 21)};
	EXPECT_EQ(Choose(), 2);
}

TEST_F(BalanceLifoTest, AtTheMaxRunningLimitAMemberAtWorkWithRoom)
{
	set_.max_running = 2;
	c_ = {Cand(3), Cand(0), Idle(10)}; // 0: has records, 1: RUNNING
	EXPECT_EQ(Choose(), 1) << "the idle one is not woken; the fewest records at work";
	set_.max_running = 3;
	EXPECT_EQ(Choose(), 2);
}

TEST_F(BalanceLifoTest, NoneWhenAtTheLimitEveryMemberAtWorkIsFull)
{
	set_.max_running = 2;
	c_ = {Cand(8), Cand(8), Idle(10)};
	EXPECT_EQ(Choose(), -1) << "the record waits rather than wake a third member";
}

TEST_F(BalanceLifoTest, MembersAtWorkTakeTurnsOnATie)
{
	c_ = {Cand(2), Cand(1), Cand(1), Cand(1)};
	EXPECT_EQ(ChooseN(4), (V{1, 2, 3, 1}));
}

TEST_F(BalanceLifoTest, RunningCountsRecordsAsWellAsTheRunningState)
{
	set_.max_running = 1;
	struct balance_cand asleep_with_records = Idle(10);
	asleep_with_records.used = 8; // consumer asleep, a full ring waits for it
	c_ = {asleep_with_records, Idle(20)};
	EXPECT_EQ(Choose(), -1);
	c_[0].used = 0;
	EXPECT_EQ(Choose(), 1);
}

// max_running is the group's: a member the NUMA filter excludes still counts.
TEST_F(BalanceLifoTest, MembersOffTheNodeCountAsRunning)
{
	set_.numa = ONERING_NUMA_STRICT;
	set_.max_running = 1;
	c_ = {Cand(2, 8, false, 20), Idle(10)};
	EXPECT_EQ(Choose(), -1);
}

// ---- lifo over a snapshot: the idle set deliver.c keeps for a loop ---------------

class BalanceLifoSetTest : public BalanceLifoTest {
protected:
	void Init() { balance_lifo_init(&set_, &st_, c_.data(), (unsigned)c_.size(), &l_); }
	// n decisions as deliver.c's pick makes them over one snapshot: each
	// chosen member's used grows by the record it was given.
	std::vector<int> PlaceN(unsigned n)
	{
		std::vector<int> v;
		for (unsigned i = 0; i < n; i++) {
			int idx = balance_lifo_choose(&set_, &st_, c_.data(), (unsigned)c_.size(),
						      &l_);
			if (idx >= 0)
				c_[(size_t)idx].used++;
			v.push_back(idx);
		}
		return v;
	}
	struct balance_lifo l_ {};
};

TEST_F(BalanceLifoSetTest, HoldsTheIdleMembersLastToGoIdleOnTop)
{
	c_ = {Idle(100), Cand(1), Idle(300), Idle(200)};
	Init();
	EXPECT_EQ(l_.running, 1u);
	ASSERT_EQ(l_.nr_idle, 3u);
	EXPECT_EQ(l_.idle[2], 2u);
	EXPECT_EQ(l_.idle[1], 3u);
	EXPECT_EQ(l_.idle[0], 0u);
}

TEST_F(BalanceLifoSetTest, ABurstWakesIdleMembersLastIdleFirstThenFillsThoseAtWork)
{
	c_ = {Idle(100), Cand(1), Idle(300), Idle(200)};
	Init();
	EXPECT_EQ(PlaceN(3), (V{2, 3, 0})) << "each idle member once, in lifo order";
	EXPECT_EQ(l_.nr_idle, 0u);
	EXPECT_EQ(l_.running, 4u);
	EXPECT_EQ(PlaceN(4), (V{0, 1, 2, 3})) << "then every member at work, in turn";
}

TEST_F(BalanceLifoSetTest, EveryRecordIsPlacedWhileAMemberAtWorkHasRoom)
{
	c_ = {Cand(5), Cand(6)}; // cap 8: 5 records of room between them
	Init();
	EXPECT_EQ(PlaceN(6), (V{0, 1, 0, 1, 0, -1}));
}

// A member at work takes a batch, not its whole ring: past
// BALANCE_LIFO_AT_WORK unconsumed records the rest wait in the backlog for
// the next member to go idle (at most a batch waits behind a slow one).
TEST_F(BalanceLifoSetTest, AMemberAtWorkTakesABatchNotItsWholeRing)
{
	c_ = {Cand(0, 1024), Cand(BALANCE_LIFO_AT_WORK - 2, 1024)};
	Init();
	std::vector<int> got = PlaceN(BALANCE_LIFO_AT_WORK + 4);
	unsigned to0 = 0, to1 = 0, waited = 0;
	for (int idx : got) {
		to0 += idx == 0;
		to1 += idx == 1;
		waited += idx < 0;
	}
	EXPECT_EQ(to0, BALANCE_LIFO_AT_WORK);
	EXPECT_EQ(to1, 2u) << "1 held 30: it takes 2 more";
	EXPECT_EQ(waited, 2u) << "both at a batch, 1,024-slot rings notwithstanding";
	EXPECT_EQ(c_[0].used, (uint64_t)BALANCE_LIFO_AT_WORK);
}

// In a group of one member nothing could take a held-back record sooner:
// the member at work takes records while its ring has room, as under rr.
TEST_F(BalanceLifoSetTest, TheOnlyMemberAtWorkTakesRecordsWhileItHasRoom)
{
	c_ = {Cand(BALANCE_LIFO_AT_WORK + 10, BALANCE_LIFO_AT_WORK + 13)};
	Init();
	EXPECT_EQ(PlaceN(4), (V{0, 0, 0, -1})) << "past a batch, up to a full ring";
	set_.max_running = 1;
	c_ = {Cand(BALANCE_LIFO_AT_WORK, 1024)};
	Init();
	EXPECT_EQ(PlaceN(2), (V{0, 0}));
}

TEST_F(BalanceLifoSetTest, TheLimitHoldsOverABurst)
{
	set_.max_running = 2;
	c_ = {Idle(100), Idle(300), Idle(200)};
	Init();
	std::vector<int> got = PlaceN(2 * 8 + 1);
	EXPECT_EQ((V{got[0], got[1]}), (V{1, 2}));
	for (int idx : got)
		EXPECT_NE(idx, 0) << "a third member is never woken";
	EXPECT_EQ(got.back(), -1) << "both members at work full: the record waits";
}

TEST_F(BalanceLifoSetTest, FifoAndRrWakeOrdersOverABurst)
{
	set_.wake = ONERING_WAKE_FIFO;
	c_ = {Idle(100), Idle(300), Idle(50)};
	Init();
	EXPECT_EQ(PlaceN(3), (V{2, 0, 1}));

	set_.wake = ONERING_WAKE_RR;
	st_.rr = 2;
	c_ = {Idle(100), Idle(300), Idle(50), Idle(70)};
	Init();
	EXPECT_EQ(PlaceN(4), (V{2, 3, 0, 1}));
}

TEST_F(BalanceLifoSetTest, LocalFirstOverABurst)
{
	set_.wake = ONERING_WAKE_LOCAL_FIRST;
	c_ = {Idle(500, false, 20), Idle(100), Idle(200), Idle(900, false, 20)};
	Init();
	EXPECT_EQ(PlaceN(4), (V{2, 1, 3, 0}));
}

TEST_F(BalanceLifoSetTest, IsRebuiltWhenTheWakeOrderChanges)
{
	c_ = {Idle(100), Idle(300), Idle(50)};
	Init();
	set_.wake = ONERING_WAKE_FIFO;
	EXPECT_EQ(PlaceN(1), (V{2}));
}

TEST_F(BalanceLifoSetTest, AnIdleMemberTheFilterExcludesStaysInTheSet)
{
	set_.numa = ONERING_NUMA_STRICT;
	c_ = {Idle(300, false, 20), Idle(100)};
	Init();
	EXPECT_EQ(PlaceN(1), (V{1}));
	EXPECT_EQ(l_.nr_idle, 1u);
	set_.numa = ONERING_NUMA_INTERLEAVE;
	EXPECT_EQ(PlaceN(1), (V{0}));
}

TEST_F(BalanceLifoSetTest, AMemberOfTheSetFoundAtWorkCountsAsRunning)
{
	set_.max_running = 2;
	c_ = {Idle(100), Idle(300), Idle(200)};
	Init();
	c_[1].used = 8; // filled up since the set was built (no room)
	EXPECT_EQ(PlaceN(1), (V{2}));
	EXPECT_EQ(l_.running, 2u) << "1 and 2 at work";
	EXPECT_EQ(PlaceN(1), (V{2})) << "at the limit: 0 stays asleep";
}

// ---- local ----------------------------------------------------------------------

TEST_F(BalanceLocalTest, TakesTurnsAmongLocalMembersFirst)
{
	c_ = {Cand(0, 8, false, 20), Cand(0), Cand(0, 8, false, 20), Cand(0)};
	EXPECT_EQ(ChooseN(3), (V{1, 3, 1}));
}

TEST_F(BalanceLocalTest, ThenRemoteWhenEveryLocalMemberIsFull)
{
	c_ = {Cand(0, 8, false, 20), Cand(8), Cand(0, 8, false, 20), Cand(8)};
	EXPECT_EQ(ChooseN(3), (V{0, 2, 0}));
	c_[3].used = 7; // room again on the node
	EXPECT_EQ(Choose(), 3);
}

TEST_F(BalanceLocalTest, NoneWhenAllAreFull)
{
	c_ = {Cand(8, 8, false, 20), Cand(8)};
	EXPECT_EQ(Choose(), -1);
}

// ---- one decision per burst (balance_split) -----------------------------------

class BalanceSplitTest : public BalanceTest {
protected:
	// The burst's runs as (member, count) pairs.
	std::vector<std::pair<int, int>> Split(unsigned count)
	{
		struct balance_run runs[BROKER_GROUP_MAX_MEMBERS];
		unsigned nr = balance_split(&set_, &st_, c_.data(), (unsigned)c_.size(), count, runs);
		std::vector<std::pair<int, int>> v;
		for (unsigned k = 0; k < nr; k++)
			v.emplace_back((int)runs[k].idx, (int)runs[k].count);
		return v;
	}
	// What per-record decisions over the same snapshot give each member
	// (used++ after each, as deliver.c does), and the cursor they leave.
	std::vector<int> PerRecord(unsigned count, struct balance_state *st,
				   std::vector<struct balance_cand> c)
	{
		std::vector<int> take(c.size());
		for (unsigned k = 0; k < count; k++) {
			int i = balance_choose(&set_, st, c.data(), (unsigned)c.size());
			if (i < 0)
				break;
			c[i].used++;
			take[i]++;
		}
		return take;
	}
	// Burst and per-record agree, member by member, on a random snapshot.
	void Agree(uint32_t policy, unsigned seed)
	{
		srand(seed);
		set_.policy = policy;
		unsigned n = 1 + rand() % 9;
		c_.clear();
		for (unsigned i = 0; i < n; i++) {
			bool local = rand() % 3 != 0;
			struct balance_cand c = Cand((uint64_t)(rand() % 9), 8, local, 20);
			c.idle_ns = (uint64_t)(rand() % 4);
			c_.push_back(c);
		}
		st_.rr = (uint32_t)(rand() % 12);
		unsigned count = (unsigned)(rand() % 40);
		struct balance_state st = st_;
		std::vector<int> want = PerRecord(count, &st, c_);
		std::vector<uint64_t> before;
		for (auto &c : c_)
			before.push_back(c.used);
		std::vector<int> got(n);
		std::set<int> seen;
		for (auto &r : Split(count)) {
			EXPECT_TRUE(seen.insert(r.first).second) << "one run per member";
			EXPECT_GT(r.second, 0);
			got[r.first] += r.second;
		}
		EXPECT_EQ(got, want) << "policy " << policy << " seed " << seed;
		for (unsigned i = 0; i < n; i++)
			EXPECT_EQ(c_[i].used, before[i] + (uint64_t)got[i]) << "the snapshot counts them";
		if (policy != ONERING_POLICY_LEAST && count > 0 && !seen.empty()) {
			EXPECT_EQ(st_.rr % n, st.rr % n) << "rr's cursor ends where per-record rr's does";
		}
	}
};

TEST_F(BalanceSplitTest, RrGivesEachMemberItsTurnsAsOneRun)
{
	c_ = {Cand(0), Cand(0), Cand(0), Cand(0)};
	st_.rr = 1;
	EXPECT_EQ(Split(10), (std::vector<std::pair<int, int>>{{1, 3}, {2, 3}, {3, 2}, {0, 2}}));
	EXPECT_EQ(st_.rr % 4, 3u) << "the next burst starts after member 2, as per record";
	EXPECT_EQ(c_[1].used, 3u);
}

TEST_F(BalanceSplitTest, RrStopsGivingToAFullMember)
{
	c_ = {Cand(7), Cand(0), Cand(8)};
	EXPECT_EQ(Split(6), (std::vector<std::pair<int, int>>{{0, 1}, {1, 5}}));
	EXPECT_EQ(Split(4), (std::vector<std::pair<int, int>>{{1, 3}}))
	    << "only member 1 had room left (3 slots)";
	EXPECT_TRUE(Split(1).empty()) << "all full now";
}

TEST_F(BalanceSplitTest, LocalFillsTheNodeBeforeGoingRemote)
{
	set_.policy = ONERING_POLICY_LOCAL;
	c_ = {Cand(0, 8, false, 20), Cand(6), Cand(0, 8, false, 20), Cand(5)};
	EXPECT_EQ(Split(9), (std::vector<std::pair<int, int>>{{1, 2}, {3, 3}, {0, 2}, {2, 2}}));
}

TEST_F(BalanceSplitTest, LeastFillsTheEmptiestFirst)
{
	set_.policy = ONERING_POLICY_LEAST;
	c_ = {Cand(4), Cand(0), Cand(2)};
	auto runs = Split(6);
	std::vector<int> got(3);
	for (auto &r : runs)
		got[r.first] += r.second;
	EXPECT_EQ(got, (std::vector<int>{0, 4, 2})) << "water-filling to 4 each";
	EXPECT_EQ(runs[0].first, 1) << "the emptiest is chosen first";
}

TEST_F(BalanceSplitTest, StrictNumaKeepsTheBurstOnTheNode)
{
	set_.numa = ONERING_NUMA_STRICT;
	c_ = {Cand(0, 8, false, 20), Cand(6)};
	EXPECT_EQ(Split(5), (std::vector<std::pair<int, int>>{{1, 2}})) << "the rest waits";
}

TEST_F(BalanceSplitTest, StickyAndLifoAreDecidedPerRecord)
{
	c_ = {Cand(0), Cand(0)};
	set_.policy = ONERING_POLICY_STICKY;
	EXPECT_TRUE(Split(4).empty());
	set_.policy = ONERING_POLICY_LIFO;
	EXPECT_TRUE(Split(4).empty());
	EXPECT_EQ(c_[0].used + c_[1].used, 0u);
}

TEST_F(BalanceSplitTest, NothingToSplit)
{
	EXPECT_TRUE(Split(4).empty()) << "no members";
	c_ = {Cand(8), Cand(8)};
	EXPECT_TRUE(Split(4).empty()) << "every member full";
	c_ = {Cand(0)};
	EXPECT_TRUE(Split(0).empty());
}

// The per-burst decision changes which records go together, never how many
// each member gets: the same counts as one decision per record, over 3,000
// random snapshots per policy (rooms, NUMA placement, cursor, burst sizes).
TEST_F(BalanceSplitTest, CountsEqualPerRecordDecisions)
{
	for (uint32_t policy : {ONERING_POLICY_RR, ONERING_POLICY_LOCAL, ONERING_POLICY_LEAST})
		for (uint32_t numa : {ONERING_NUMA_INTERLEAVE, ONERING_NUMA_STRICT})
			for (unsigned seed = 1; seed <= 1500; seed++) {
				set_.numa = numa;
				Agree(policy, seed);
				if (HasFailure())
					return;
			}
}

// ---- NUMA filters -------------------------------------------------------------

TEST_F(NumaFilterTest, InterleaveAllowsEveryMember)
{
	set_.numa = ONERING_NUMA_INTERLEAVE;
	c_ = {Cand(8), Cand(0, 8, false, 20), Cand(0, 8, false, 40)};
	Filter();
	EXPECT_EQ(Ok(), (B{true, true, true}));
}

TEST_F(NumaFilterTest, StrictAllowsOnlyLocalMembers)
{
	set_.numa = ONERING_NUMA_STRICT;
	c_ = {Cand(0, 8, false, 20), Cand(7), Cand(0, 8, false, 11)};
	Filter();
	EXPECT_EQ(Ok(), (B{false, true, false}));
}

TEST_F(NumaFilterTest, StrictStaysLocalEvenWhenEveryLocalMemberIsFull)
{
	set_.numa = ONERING_NUMA_STRICT;
	set_.policy = ONERING_POLICY_LEAST;
	c_ = {Cand(8), Cand(0, 8, false, 20), Cand(8)};
	EXPECT_EQ(Choose(), -1);
	EXPECT_EQ(Ok(), (B{true, false, true}));
}

TEST_F(NumaFilterTest, StrictWithNoLocalMemberAllowsNone)
{
	set_.numa = ONERING_NUMA_STRICT;
	c_ = {Cand(0, 8, false, 20), Cand(0, 8, false, 20)};
	EXPECT_EQ(Choose(), -1);
}

TEST_F(NumaFilterTest, SpillStaysLocalWhileOneLocalMemberIsAtMostThePercentFull)
{
	set_.numa = ONERING_NUMA_SPILL;
	set_.spill_pct = 50;
	// 4 of 8 is exactly 50%: still room by the setting.
	c_ = {Cand(8), Cand(4), Cand(0, 8, false, 20)};
	Filter();
	EXPECT_EQ(Ok(), (B{true, true, false}));
}

TEST_F(NumaFilterTest, SpillLeavesTheNodeOnceEveryLocalMemberIsPastThePercent)
{
	set_.numa = ONERING_NUMA_SPILL;
	set_.spill_pct = 50;
	c_ = {Cand(8), Cand(5), Cand(0, 8, false, 20)};
	Filter();
	EXPECT_EQ(Ok(), (B{true, true, true}));
}

TEST_F(NumaFilterTest, SpillGoesToTheNearestRemoteNodeNotFartherOnes)
{
	set_.numa = ONERING_NUMA_SPILL;
	set_.spill_pct = 50;
	c_ = {Cand(6), Cand(0, 8, false, 32), Cand(2, 8, false, 21), Cand(0, 8, false, 21),
	      Cand(0, 8, false, 40)};
	Filter();
	EXPECT_EQ(Ok(), (B{true, false, true, true, false}));
}

TEST_F(NumaFilterTest, SpillSkipsANearerNodeThatIsFull)
{
	set_.numa = ONERING_NUMA_SPILL;
	set_.spill_pct = 50;
	c_ = {Cand(8), Cand(8, 8, false, 20), Cand(8, 8, false, 20), Cand(0, 8, false, 30),
	      Cand(0, 8, false, 40)};
	Filter();
	EXPECT_EQ(Ok(), (B{true, false, false, true, false}));
	set_.policy = ONERING_POLICY_RR;
	EXPECT_EQ(Choose(), 3);
}

TEST_F(NumaFilterTest, SpillWithNoLocalMemberTakesTheNearestNode)
{
	set_.numa = ONERING_NUMA_SPILL;
	c_ = {Cand(0, 8, false, 30), Cand(0, 8, false, 20)};
	Filter();
	EXPECT_EQ(Ok(), (B{false, true}));
}

TEST_F(NumaFilterTest, SpillDecidesPerRecordAsTheLocalMembersFill)
{
	set_.numa = ONERING_NUMA_SPILL;
	set_.spill_pct = 25;
	set_.policy = ONERING_POLICY_LEAST;
	c_ = {Cand(1, 4), Cand(0, 4, false, 20)};
	EXPECT_EQ(Choose(), 0) << "1 of 4 is 25%: stays";
	c_[0].used = 2;
	EXPECT_EQ(Choose(), 1) << "2 of 4 is past 25%: the remote node has fewer";
}

// The client-written occupancy is scaled for the spill test only after it is
// clamped to the capacity: 2^62 must not wrap to 0 and count as room (found
// writing this suite).
TEST_F(NumaFilterTest, AnAbsurdOccupancyNeverCountsAsRoom)
{
	set_.numa = ONERING_NUMA_SPILL;
	set_.spill_pct = 50;
	c_ = {Cand(1ull << 62), Cand(0, 8, false, 20)};
	Filter();
	EXPECT_EQ(Ok(), (B{true, true}));
}

// ---- edge cases ------------------------------------------------------------------

TEST_F(BalanceEdgeTest, NoCandidateChoosesNone)
{
	for (uint32_t policy = 0; policy <= ONERING_POLICY_MAX; policy++) {
		set_.policy = policy;
		EXPECT_EQ(balance_choose(&set_, &st_, nullptr, 0), -1) << "policy " << policy;
	}
}

TEST_F(BalanceEdgeTest, EveryPolicyChoosesNoneWhenAllAreFull)
{
	c_ = {Cand(8), Cand(8), Cand(4, 4)};
	for (uint32_t policy = 0; policy <= ONERING_POLICY_MAX; policy++) {
		set_.policy = policy;
		EXPECT_EQ(Choose(), -1) << "policy " << policy;
	}
}

TEST_F(BalanceEdgeTest, MoreThanTheMaximumMembersAreClamped)
{
	// Only the first BROKER_GROUP_MAX_MEMBERS are looked at; the one with
	// room beyond them is never chosen (nor written: its ok stays false).
	c_.assign(BROKER_GROUP_MAX_MEMBERS + 10, Cand(8));
	c_[BROKER_GROUP_MAX_MEMBERS + 5].used = 0;
	for (uint32_t policy = 0; policy <= ONERING_POLICY_MAX; policy++) {
		set_.policy = policy;
		EXPECT_EQ(Choose(), -1) << "policy " << policy;
	}
	EXPECT_FALSE(c_[BROKER_GROUP_MAX_MEMBERS + 5].ok);
	c_[BROKER_GROUP_MAX_MEMBERS - 1].used = 0;
	set_.policy = ONERING_POLICY_RR;
	EXPECT_EQ(Choose(), BROKER_GROUP_MAX_MEMBERS - 1);
}

// A burst decides, then the chosen member fills up (or its consumer dies and
// deliver.c reports it full) before the next decision of the same burst.
TEST_F(BalanceEdgeTest, AMemberDyingMidBurstIsSkippedNextDecision)
{
	c_ = {Cand(0), Cand(0), Cand(0)};
	EXPECT_EQ(Choose(), 0);
	c_[1].used = c_[1].cap; // dies before its turn
	EXPECT_EQ(Choose(), 2);
	EXPECT_EQ(Choose(), 0);

	set_.policy = ONERING_POLICY_LEAST;
	c_ = {Cand(0), Cand(1), Cand(2)};
	EXPECT_EQ(Choose(), 0);
	c_[0].used = c_[0].cap;
	EXPECT_EQ(Choose(), 1);

	set_.policy = ONERING_POLICY_LIFO;
	c_ = {Idle(300), Idle(200)};
	EXPECT_EQ(Choose(), 0);
	c_[0].state = ONERING_CONSUMER_RUNNING; // chosen, now at work
	EXPECT_EQ(Choose(), 1);
}

TEST_F(CandidateTest, IdleMeansAnEmptyRingAndNotRunning)
{
	struct balance_cand c = Idle(1);
	EXPECT_TRUE(balance_cand_idle(&c));
	c.used = 1;
	EXPECT_FALSE(balance_cand_idle(&c));
	c = Idle(1);
	c.state = ONERING_CONSUMER_RUNNING;
	EXPECT_FALSE(balance_cand_idle(&c));
}

TEST_F(CandidateTest, FullAtCapacityAndBeyond)
{
	struct balance_cand c = Cand(7, 8);
	EXPECT_FALSE(balance_cand_full(&c));
	c.used = 8;
	EXPECT_TRUE(balance_cand_full(&c));
	c.used = UINT64_MAX; // an untrusted head far off
	EXPECT_TRUE(balance_cand_full(&c));
}

// ---- sticky buckets ------------------------------------------------------------

TEST_F(FlowBucketTest, EveryKeyMapsIntoTheTable)
{
	const uint64_t keys[] = {0, 1, 2, 4095, 4096, 0xffffffffull, 1ull << 32, UINT64_MAX,
				 0x8000000000000000ull};
	for (uint64_t k : keys)
		EXPECT_LT(balance_flow_bucket(k), (uint32_t)BROKER_FLOW_BUCKETS) << k;
	EXPECT_EQ(balance_flow_bucket(0), 0u);
	EXPECT_EQ(balance_flow_bucket(12345), balance_flow_bucket(12345));
}

TEST_F(FlowBucketTest, ConsecutiveKeysSpreadOverTheBuckets)
{
	// Subscription ids are small consecutive numbers: they must not pile
	// into a few buckets. A uniform hash fills ~63% of n buckets with n
	// keys; ask for at least half, and for no bucket holding more than 8.
	std::vector<unsigned> hits(BROKER_FLOW_BUCKETS);
	std::set<uint32_t> used;
	for (uint64_t k = 1; k <= BROKER_FLOW_BUCKETS; k++) {
		uint32_t b = balance_flow_bucket(k);
		hits[b]++;
		used.insert(b);
	}
	EXPECT_GE(used.size(), (size_t)BROKER_FLOW_BUCKETS / 2);
	for (unsigned h : hits)
		EXPECT_LE(h, 8u);
	// Keys that differ only in high bits (flow keys from packet hashes).
	std::set<uint32_t> high;
	for (uint64_t k = 0; k < 64; k++)
		high.insert(balance_flow_bucket(k << 40));
	EXPECT_GE(high.size(), 48u);
}

} // namespace
