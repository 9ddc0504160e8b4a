// SPDX-License-Identifier: MIT
// Ack bookkeeping of a held batch (client/held.h): which record a done
// copy stands for, and how many records are released to the broker when.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "client/held.h"

namespace {

class HeldTest : public ::testing::Test {
protected:
	static constexpr uint64_t kMask = 7; // an 8-slot event ring
	void SetUp() override { memset(slots_, 0, sizeof(slots_)); }
	// Put a record with tag at free-running position pos.
	onering_event Put(uint64_t pos, uint64_t tag)
	{
		onering_event &e = slots_[pos & kMask];
		memset(&e, 0, sizeof(e));
		e.kind = ONERING_EV_USER;
		e.cookie = tag;
		return e;
	}
	void Hold(uint32_t nr)
	{
		held_.nr = nr;
		memset(held_.done, 0, sizeof(held_.done));
	}
	uint32_t Find(const onering_event &ev) const
	{
		return client_held_find(&held_, slots_, kMask, head_, &ev);
	}
	// Mark record i done; advance head by what is released, as the ring would.
	uint32_t Done(uint32_t i)
	{
		uint32_t released = client_held_mark(&held_, i);
		head_ += released;
		return released;
	}
	onering_event slots_[kMask + 1];
	uint64_t head_ = 0;
	client_held held_{};
};

TEST_F(HeldTest, OnlyATrackedBatchIsCappedAtItsDoneFlags)
{
	EXPECT_EQ(client_held_want(true, 1000), CLIENT_HELD_MAX);
	EXPECT_EQ(client_held_want(true, CLIENT_HELD_MAX), CLIENT_HELD_MAX);
	EXPECT_EQ(client_held_want(true, 3), 3u);
	EXPECT_EQ(client_held_want(false, 1000), 1000u);
	EXPECT_EQ(client_held_want(true, 0), 0u);
}

TEST_F(HeldTest, DoneWithTheFirstRecordReleasesExactlyIt)
{
	Hold(3);
	EXPECT_EQ(Done(0), 1u);
	EXPECT_EQ(held_.nr, 2u);
	EXPECT_EQ(held_.done[0], 0); // the old record 1 is now at the front
	EXPECT_EQ(held_.done[1], 0);
}

TEST_F(HeldTest, DoneOutOfOrderReleasesNothingUntilTheFrontIsDone)
{
	Hold(3);
	EXPECT_EQ(Done(2), 0u);
	EXPECT_EQ(Done(1), 0u);
	EXPECT_EQ(held_.nr, 3u);
	EXPECT_EQ(Done(0), 3u); // the whole prefix at once
	EXPECT_EQ(held_.nr, 0u);
	EXPECT_EQ(head_, 3u);
}

TEST_F(HeldTest, RecordsThatNeedNoDoneGoOutWithTheFront)
{
	// Records 1 and 2 were skipped (cancelled, a control notice): marked done
	// when the batch was taken.
	Hold(4);
	held_.done[1] = held_.done[2] = 1;
	EXPECT_EQ(Done(0), 3u);
	EXPECT_EQ(held_.nr, 1u);
	EXPECT_EQ(held_.done[0], 0); // record 3 still out with the caller
}

TEST_F(HeldTest, AFullBatchIsReleasedOnlyWhenItsFirstRecordIsDone)
{
	Hold(CLIENT_HELD_MAX);
	for (uint32_t i = CLIENT_HELD_MAX - 1; i > 0; i--)
		ASSERT_EQ(Done(i), 0u) << "record " << i;
	EXPECT_EQ(Done(0), CLIENT_HELD_MAX);
	EXPECT_EQ(held_.nr, 0u);
}

TEST_F(HeldTest, FindMatchesTheRecordsBytes)
{
	Put(0, 10);
	onering_event b = Put(1, 11);
	onering_event c = Put(2, 12);
	Hold(3);
	EXPECT_EQ(Find(c), 2u);
	EXPECT_EQ(Find(b), 1u);
}

TEST_F(HeldTest, FindOfARecordNotHeldReturnsTheBatchSize)
{
	Put(0, 10);
	Put(1, 11);
	onering_event outside = Put(2, 12); // in the ring, not in the batch
	Hold(2);
	EXPECT_EQ(Find(outside), 2u);
	Hold(0);
	EXPECT_EQ(Find(outside), 0u); // released already: nothing to mark
}

TEST_F(HeldTest, EqualRecordsAreMarkedOneAtATime)
{
	onering_event a = Put(0, 7);
	Put(1, 8);
	Put(2, 7); // the same bytes as record 0
	Hold(3);
	ASSERT_EQ(Find(a), 0u);
	EXPECT_EQ(Done(0), 1u);
	ASSERT_EQ(Find(a), 1u); // the second copy, at its new index
	EXPECT_EQ(Done(1), 0u); // record 8 is still out
	EXPECT_EQ(Find(a), 2u); // both copies done: no third
}

TEST_F(HeldTest, FindFollowsFreeRunningPositionsAcrossTheU64Wrap)
{
	head_ = UINT64_MAX - 1; // positions MAX-1, MAX, 0, 1: slots 6, 7, 0, 1
	Put(UINT64_MAX - 1, 1);
	Put(UINT64_MAX, 2);
	onering_event third = Put(0, 3);
	onering_event fourth = Put(1, 4);
	Hold(4);
	EXPECT_EQ(Find(third), 2u);
	EXPECT_EQ(Find(fourth), 3u);
	EXPECT_EQ(Done(0), 1u);
	EXPECT_EQ(head_, UINT64_MAX);
	EXPECT_EQ(Find(third), 1u);
	EXPECT_EQ(Done(0), 1u);
	EXPECT_EQ(head_, 0u); // wrapped
	EXPECT_EQ(Find(fourth), 1u);
}

TEST_F(HeldTest, PendingLeavesOutTheHeldRecordsAndPassesErrors)
{
	EXPECT_EQ(client_held_pending(10, 3), 7);
	EXPECT_EQ(client_held_pending(3, 3), 0);
	EXPECT_EQ(client_held_pending(0, 0), 0);
	EXPECT_EQ(client_held_pending(-EPROTO, 3), -EPROTO);
}

} // namespace
