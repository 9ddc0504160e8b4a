// SPDX-License-Identifier: MIT
// The LEVEL bookkeeping of a queue (client/level.h): which subscriptions
// are outstanding and must be collected, when a collection is due, what a
// collection counts as still ready, and the re-delivery queue.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "client/level.h"

namespace {

class LevelTest : public ::testing::Test {
protected:
	void TearDown() override
	{
		free(set_.ids);
		free(rd_.evs);
	}
	std::vector<uint32_t> Ids() const { return {set_.ids, set_.ids + set_.nr}; }
	static onering_event Event(uint32_t id, uint32_t events = POLLIN)
	{
		onering_event e;
		memset(&e, 0, sizeof(e));
		e.sub_id = id;
		e.sub_gen = 1;
		e.kind = ONERING_EV_FD;
		e.flags = ONERING_EVF_LEVEL;
		e.events = events;
		return e;
	}
	client_level_set set_{};
	client_redeliver rd_{};
};

TEST_F(LevelTest, ASourceIsOutstandingOnceHoweverManyRecordsCome)
{
	bool out = false;
	client_level_note(&set_, &out, 7);
	client_level_note(&set_, &out, 7);
	client_level_note(&set_, &out, 7);
	EXPECT_TRUE(out);
	EXPECT_EQ(Ids(), std::vector<uint32_t>({7}));
}

TEST_F(LevelTest, ARearmedSourceBecomesOutstandingAgainOnItsNextRecord)
{
	bool out = false;
	client_level_note(&set_, &out, 7);
	client_level_del(&set_, 7);
	out = false; // what onering_collect does after the re-arm
	client_level_note(&set_, &out, 7);
	EXPECT_EQ(Ids(), std::vector<uint32_t>({7}));
}

TEST_F(LevelTest, DeletingKeepsTheOthersInOrder)
{
	for (uint32_t id : {4u, 9u, 2u, 9u, 5u})
		ASSERT_EQ(client_level_add(&set_, id), 0);
	client_level_del(&set_, 9);
	EXPECT_EQ(Ids(), std::vector<uint32_t>({4, 2, 5}));
	client_level_del(&set_, 42); // not there: nothing changes
	EXPECT_EQ(Ids(), std::vector<uint32_t>({4, 2, 5}));
	client_level_del(&set_, 4);
	client_level_del(&set_, 2);
	client_level_del(&set_, 5);
	EXPECT_EQ(set_.nr, 0u);
}

TEST_F(LevelTest, TheSetGrowsPastItsFirstAllocation)
{
	for (uint32_t id = 0; id < 1000; id++)
		ASSERT_EQ(client_level_add(&set_, id * 3), 0);
	ASSERT_EQ(set_.nr, 1000u);
	EXPECT_GE(set_.cap, 1000u);
	for (uint32_t i = 0; i < 1000; i++)
		ASSERT_EQ(set_.ids[i], i * 3);
}

TEST_F(LevelTest, ACollectionIsDueEveryCollectEveryRecords)
{
	ASSERT_EQ(client_level_add(&set_, 1), 0);
	EXPECT_FALSE(client_level_collect_due(&set_, 0, 64));
	EXPECT_FALSE(client_level_collect_due(&set_, 63, 64));
	EXPECT_TRUE(client_level_collect_due(&set_, 64, 64));
	EXPECT_TRUE(client_level_collect_due(&set_, 65, 64)); // a batch overshot it
	EXPECT_TRUE(client_level_collect_due(&set_, 1, 1));
}

TEST_F(LevelTest, NoCollectionWithNothingOutstanding)
{
	EXPECT_FALSE(client_level_collect_due(&set_, 1000000, 64));
	EXPECT_FALSE(client_level_collect_due(&set_, UINT32_MAX, 1));
}

TEST_F(LevelTest, StillReadyMeansTheAskedEventsPlusErrorsAndHangUps)
{
	EXPECT_EQ(client_level_ready(POLLIN | POLLOUT, POLLIN), (uint32_t)POLLIN);
	EXPECT_EQ(client_level_ready(POLLOUT, POLLIN), 0u); // ready, not for what it asked
	EXPECT_EQ(client_level_ready(POLLHUP, POLLIN), (uint32_t)POLLHUP);
	EXPECT_EQ(client_level_ready(POLLERR, POLLOUT), (uint32_t)POLLERR);
	EXPECT_EQ(client_level_ready(POLLIN | POLLHUP, POLLIN), (uint32_t)(POLLIN | POLLHUP));
	EXPECT_EQ(client_level_ready(POLLNVAL, POLLIN), 0u); // a closed fd: re-armed, not ready
	EXPECT_EQ(client_level_ready(0, POLLIN | POLLOUT), 0u);
}

TEST_F(LevelTest, ReDeliveryHandsOutTheOldestFirst)
{
	for (uint32_t id = 1; id <= 5; id++) {
		onering_event e = Event(id);
		ASSERT_EQ(client_redeliver_push(&rd_, &e), 0);
	}
	onering_event out[8];
	ASSERT_EQ(client_redeliver_take(&rd_, out, 2), 2u);
	EXPECT_EQ(out[0].sub_id, 1u);
	EXPECT_EQ(out[1].sub_id, 2u);
	EXPECT_EQ(rd_.nr, 3u);
	ASSERT_EQ(client_redeliver_take(&rd_, out, 8), 3u);
	EXPECT_EQ(out[0].sub_id, 3u);
	EXPECT_EQ(out[2].sub_id, 5u);
	EXPECT_EQ(client_redeliver_take(&rd_, out, 8), 0u);
}

TEST_F(LevelTest, ReDeliveryIntoNoRoomTakesNothing)
{
	onering_event e = Event(3);
	ASSERT_EQ(client_redeliver_push(&rd_, &e), 0);
	onering_event out[1];
	EXPECT_EQ(client_redeliver_take(&rd_, out, 0), 0u);
	EXPECT_EQ(rd_.nr, 1u);
}

TEST_F(LevelTest, ReDeliveryKeepsTheWholeRecord)
{
	onering_event e = Event(3, POLLIN | POLLHUP);
	e.cookie = 0xfeedfacecafebeefull;
	e.timestamp_ns = 42;
	ASSERT_EQ(client_redeliver_push(&rd_, &e), 0);
	onering_event out;
	ASSERT_EQ(client_redeliver_take(&rd_, &out, 1), 1u);
	EXPECT_EQ(memcmp(&out, &e, sizeof(e)), 0);
}

TEST_F(LevelTest, DeletingASubscriptionDropsAllItsQueuedReDeliveries)
{
	for (uint32_t id : {1u, 2u, 1u, 3u, 1u}) {
		onering_event e = Event(id);
		ASSERT_EQ(client_redeliver_push(&rd_, &e), 0);
	}
	client_redeliver_del(&rd_, 1);
	ASSERT_EQ(rd_.nr, 2u);
	EXPECT_EQ(rd_.evs[0].sub_id, 2u);
	EXPECT_EQ(rd_.evs[1].sub_id, 3u);
}

} // namespace
