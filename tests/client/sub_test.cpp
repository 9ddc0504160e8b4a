// SPDX-License-Identifier: MIT
// The client's subscription table and the cancellation check
// (client/sub.h): which records of which generation a consumer returns,
// and the in-flight count that onering_del() and onering_teardown() see.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "client/sub.h"

namespace {

class SubTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		table_.pages = pages_;
		table_.nr_pages = kPages;
	}
	void TearDown() override
	{
		for (auto &p : pages_)
			free(onering_atomic_load(&p, onering_mo_relaxed));
	}
	client_sub *Fresh(uint32_t id)
	{
		client_sub *s = client_sub_slot(&table_, id);
		EXPECT_NE(s, nullptr);
		return s;
	}
	static constexpr uint32_t kPages = 3;
	ONERING_ATOMIC(client_sub *) pages_[kPages]{};
	client_sub_table table_{};
};

TEST_F(SubTest, LookupOfAnUnallocatedPageFindsNothing)
{
	EXPECT_EQ(client_sub_at(&table_, 0), nullptr);
	EXPECT_EQ(client_sub_at(&table_, CLIENT_SUB_PAGE + 5), nullptr);
}

TEST_F(SubTest, LookupBeyondTheTableFindsNothingEvenWhenAllocating)
{
	uint32_t past = kPages * CLIENT_SUB_PAGE;
	EXPECT_EQ(client_sub_slot(&table_, past), nullptr);
	EXPECT_EQ(client_sub_at(&table_, past), nullptr);
	EXPECT_EQ(client_sub_at(&table_, UINT32_MAX), nullptr);
	EXPECT_NE(client_sub_slot(&table_, past - 1), nullptr); // the last id fits
}

TEST_F(SubTest, SlotAllocatesOnePageAndLookupFindsTheSameEntry)
{
	client_sub *a = Fresh(CLIENT_SUB_PAGE + 7);
	EXPECT_EQ(client_sub_at(&table_, CLIENT_SUB_PAGE + 7), a);
	EXPECT_EQ(client_sub_at(&table_, CLIENT_SUB_PAGE + 8), a + 1);
	EXPECT_EQ(client_sub_at(&table_, 7), nullptr); // page 0 still not allocated
	EXPECT_EQ(client_sub_slot(&table_, CLIENT_SUB_PAGE + 7), a); // no second page
	EXPECT_EQ(onering_atomic_load(&a->gen, onering_mo_relaxed), 0u); // zeroed
}

TEST_F(SubTest, OnlyTheCurrentGenerationIsLive)
{
	client_sub *s = Fresh(3);
	client_sub_publish(s, 5);
	EXPECT_TRUE(client_sub_live(s, 5));
	EXPECT_FALSE(client_sub_live(s, 4));
	EXPECT_FALSE(client_sub_live(s, 6));
	EXPECT_FALSE(client_sub_live(nullptr, 5));
}

TEST_F(SubTest, GenerationZeroIsNeverLiveNotEvenOnAnEmptyEntry)
{
	client_sub *s = Fresh(3);
	EXPECT_FALSE(client_sub_live(s, 0)); // entry gen 0 == record gen 0, still dropped
	client_sub_publish(s, 1);
	EXPECT_FALSE(client_sub_live(s, 0));
}

TEST_F(SubTest, CancelDropsEveryRecordOfTheSubscription)
{
	client_sub *s = Fresh(9);
	client_sub_publish(s, 2);
	EXPECT_FALSE(client_sub_cancel(s)); // nothing in flight
	EXPECT_FALSE(client_sub_live(s, 2));
	EXPECT_EQ(onering_atomic_load(&s->gen, onering_mo_relaxed), 0u);
}

TEST_F(SubTest, AReusedIdDropsTheStaleGenerationsRecords)
{
	client_sub *s = Fresh(9);
	client_sub_publish(s, 2);
	client_sub_cancel(s);
	client_sub_publish(s, 3); // the broker gave id 9 to a new subscription
	EXPECT_FALSE(client_sub_live(s, 2));
	EXPECT_TRUE(client_sub_live(s, 3));
}

TEST_F(SubTest, GenerationsCompareExactlyAcrossTheU32Wrap)
{
	client_sub *s = Fresh(1);
	client_sub_publish(s, UINT32_MAX);
	EXPECT_TRUE(client_sub_live(s, UINT32_MAX));
	EXPECT_FALSE(client_sub_live(s, 1)); // the generation after the wrap
}

TEST_F(SubTest, TakeCountsRecordsInFlightAndPutGivesThemBack)
{
	client_sub *s = Fresh(4);
	client_sub_publish(s, 8);
	EXPECT_TRUE(client_sub_take(s, 8));
	EXPECT_TRUE(client_sub_take(s, 8));
	EXPECT_EQ(client_sub_inflight(s), 2u);
	client_sub_put(s);
	EXPECT_EQ(client_sub_inflight(s), 1u);
	client_sub_put(s);
	EXPECT_EQ(client_sub_inflight(s), 0u);
}

TEST_F(SubTest, TakeAfterCancelBacksOutAndLeavesTheCountAlone)
{
	client_sub *s = Fresh(4);
	client_sub_publish(s, 8);
	client_sub_cancel(s);
	EXPECT_FALSE(client_sub_take(s, 8));
	EXPECT_EQ(client_sub_inflight(s), 0u);
}

TEST_F(SubTest, TakeOfAStaleGenerationBacksOut)
{
	client_sub *s = Fresh(4);
	client_sub_publish(s, 9);
	EXPECT_FALSE(client_sub_take(s, 8));
	EXPECT_EQ(client_sub_inflight(s), 0u);
}

TEST_F(SubTest, CancelReportsRecordsStillInFlight)
{
	client_sub *s = Fresh(4);
	client_sub_publish(s, 8);
	ASSERT_TRUE(client_sub_take(s, 8));
	EXPECT_TRUE(client_sub_cancel(s)); // onering_del returns 1: busy
	EXPECT_EQ(client_sub_inflight(s), 1u); // the count is not the canceller's
	client_sub_put(s);
	EXPECT_EQ(client_sub_inflight(s), 0u); // what onering_teardown waits for
}

// The Dekker pair S1/S2: a delete and a take racing on two threads. Either
// the take backs out or the delete reports the record busy; never both miss.
TEST_F(SubTest, TwoThreadTakeAndCancelNeverBothMiss)
{
	constexpr int kRounds = 20000;
	client_sub *s = Fresh(11);
	std::atomic<int> go{-1}, done{0};
	bool took[kRounds], busy[kRounds];

	auto taker = [&] {
		for (int r = 0; r < kRounds; r++) {
			while (go.load(std::memory_order_acquire) < r)
				std::this_thread::yield();
			took[r] = client_sub_take(s, (uint32_t)r + 1);
			done.fetch_add(1, std::memory_order_acq_rel);
		}
	};
	auto canceller = [&] {
		for (int r = 0; r < kRounds; r++) {
			while (go.load(std::memory_order_acquire) < r)
				std::this_thread::yield();
			busy[r] = client_sub_cancel(s);
			done.fetch_add(1, std::memory_order_acq_rel);
		}
	};
	std::thread a(taker), b(canceller);
	for (int r = 0; r < kRounds; r++) {
		onering_atomic_store(&s->inflight, 0u, onering_mo_relaxed);
		client_sub_publish(s, (uint32_t)r + 1);
		go.store(r, std::memory_order_release);
		while (done.load(std::memory_order_acquire) < 2 * (r + 1))
			std::this_thread::yield();
	}
	a.join();
	b.join();
	int both_missed = 0, took_count = 0;
	for (int r = 0; r < kRounds; r++) {
		both_missed += took[r] && !busy[r];
		took_count += took[r];
	}
	EXPECT_EQ(both_missed, 0);
	RecordProperty("rounds_taken", took_count);
}

} // namespace
