// SPDX-License-Identifier: MIT
// The group ids an attachment has learned (client/groups.h): an open-
// addressing set that onering_post() checks without the lock.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "client/groups.h"

namespace {

class GroupSetTest : public ::testing::Test {
protected:
	uint32_t Used() const
	{
		uint32_t n = 0;
		for (const auto &slot : set_.slots)
			n += onering_atomic_load(&slot, onering_mo_relaxed) != 0;
		return n;
	}
	// The first n ids above after whose probe starts at slot.
	static std::vector<uint32_t> IdsAt(uint32_t slot, unsigned n, uint32_t after = 0)
	{
		std::vector<uint32_t> ids;
		for (uint32_t id = after + 1; ids.size() < n; id++)
			if (client_group_slot(id) == slot)
				ids.push_back(id);
		return ids;
	}
	client_group_set set_{};
};

TEST_F(GroupSetTest, LearnedIdsAreKnownOthersAreNot)
{
	client_group_set_add(&set_, 17);
	client_group_set_add(&set_, 900);
	EXPECT_TRUE(client_group_set_has(&set_, 17));
	EXPECT_TRUE(client_group_set_has(&set_, 900));
	EXPECT_FALSE(client_group_set_has(&set_, 18));
	EXPECT_FALSE(client_group_set_has(&set_, UINT32_MAX));
}

TEST_F(GroupSetTest, ZeroIsNotAGroupAndTakesNoSlot)
{
	client_group_set_add(&set_, 0);
	EXPECT_EQ(Used(), 0u);
	EXPECT_EQ(onering_atomic_load(&set_.full, onering_mo_relaxed), 0u);
}

TEST_F(GroupSetTest, LearningAnIdTwiceTakesOneSlot)
{
	client_group_set_add(&set_, 5);
	client_group_set_add(&set_, 5);
	EXPECT_EQ(Used(), 1u);
}

TEST_F(GroupSetTest, IdsThatCollideProbeToTheNextFreeSlot)
{
	std::vector<uint32_t> ids = IdsAt(40, 3);
	client_group_set_add(&set_, ids[0]);
	client_group_set_add(&set_, ids[1]);
	EXPECT_EQ(onering_atomic_load(&set_.slots[40], onering_mo_relaxed), ids[0]);
	EXPECT_EQ(onering_atomic_load(&set_.slots[41], onering_mo_relaxed), ids[1]);
	EXPECT_TRUE(client_group_set_has(&set_, ids[1]));
	EXPECT_FALSE(client_group_set_has(&set_, ids[2])); // same start, never learned
	client_group_set_add(&set_, ids[1]); // a duplicate found past the collision
	EXPECT_EQ(Used(), 2u);
}

TEST_F(GroupSetTest, AProbeWrapsFromTheLastSlotToTheFirst)
{
	std::vector<uint32_t> ids = IdsAt(CLIENT_GROUPS - 1, 2);
	client_group_set_add(&set_, ids[0]);
	client_group_set_add(&set_, ids[1]);
	EXPECT_EQ(onering_atomic_load(&set_.slots[0], onering_mo_relaxed), ids[1]);
	EXPECT_TRUE(client_group_set_has(&set_, ids[1]));
}

TEST_F(GroupSetTest, AFullSetLetsEveryIdPass)
{
	for (uint32_t id = 1; id <= CLIENT_GROUPS; id++)
		client_group_set_add(&set_, id);
	EXPECT_EQ(Used(), CLIENT_GROUPS);
	EXPECT_EQ(onering_atomic_load(&set_.full, onering_mo_relaxed), 0u); // exactly full
	EXPECT_FALSE(client_group_set_has(&set_, 100000)); // every probe runs the table
	for (uint32_t id = 1; id <= CLIENT_GROUPS; id++)
		ASSERT_TRUE(client_group_set_has(&set_, id)) << id;
	client_group_set_add(&set_, CLIENT_GROUPS); // a duplicate does not overflow it
	EXPECT_EQ(onering_atomic_load(&set_.full, onering_mo_relaxed), 0u);
	client_group_set_add(&set_, 100000); // one more than it holds
	EXPECT_EQ(onering_atomic_load(&set_.full, onering_mo_relaxed), 1u);
	EXPECT_TRUE(client_group_set_has(&set_, 100000));
	EXPECT_TRUE(client_group_set_has(&set_, 123456789)); // never learned, passes
}

// One writer learns ids in order while a reader checks them without the
// lock (R7/A7): once the reader sees an id, every earlier one is there too.
TEST_F(GroupSetTest, TwoThreadReaderSeesIdsInTheOrderTheyWereLearned)
{
	constexpr uint32_t kIds = 200; // fewer than the slots: the set never fills
	std::atomic<bool> start{false};
	std::thread writer([&] {
		while (!start.load(std::memory_order_acquire))
			std::this_thread::yield();
		for (uint32_t id = 1; id <= kIds; id++)
			client_group_set_add(&set_, id * 7919);
	});
	start.store(true, std::memory_order_release);
	uint32_t out_of_order = 0, seen = 0;
	while (seen < kIds) {
		while (seen < kIds && client_group_set_has(&set_, (seen + 1) * 7919))
			seen++;
		for (uint32_t id = 1; id <= seen; id++)
			out_of_order += !client_group_set_has(&set_, id * 7919);
		std::this_thread::yield();
	}
	writer.join();
	EXPECT_EQ(out_of_order, 0u);
	EXPECT_EQ(onering_atomic_load(&set_.full, onering_mo_relaxed), 0u);
}

} // namespace
