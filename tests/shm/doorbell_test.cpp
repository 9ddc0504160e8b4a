// SPDX-License-Identifier: MIT
// The doorbell handshake, one step at a time (shm/doorbell.h). The racing
// version is in ring_stress_test.cpp.
#include <gtest/gtest.h>

#include <cerrno>

#include "shm/doorbell.h"

namespace {

class DoorbellTest : public ::testing::Test {
protected:
	void SetUp() override { onering_doorbell_init(&db_); }
	onering_doorbell db_{};
};

TEST_F(DoorbellTest, RingingAnAwakeConsumerCostsNoWake)
{
	EXPECT_FALSE(onering_doorbell_ring(&db_));
	onering_doorbell_set_state(&db_, ONERING_CONSUMER_SPINNING);
	EXPECT_FALSE(onering_doorbell_ring(&db_));
	EXPECT_EQ(onering_atomic_load(&db_.futex, onering_mo_relaxed), 0u);
}

TEST_F(DoorbellTest, RingingASleeperBumpsTheWordOnceAndMarksItRunning)
{
	uint32_t ticket = onering_doorbell_prepare(&db_);
	EXPECT_EQ(onering_atomic_load(&db_.state, onering_mo_relaxed),
		  (uint32_t)ONERING_CONSUMER_SLEEPING);
	EXPECT_TRUE(onering_doorbell_ring(&db_));
	EXPECT_FALSE(onering_doorbell_ring(&db_)); // one wake per announced sleep
	EXPECT_EQ(onering_atomic_load(&db_.futex, onering_mo_relaxed), ticket + 1);
	EXPECT_EQ(onering_atomic_load(&db_.state, onering_mo_relaxed),
		  (uint32_t)ONERING_CONSUMER_RUNNING);
	// The wake came between prepare and sleep: sleep must not block (the
	// futex compare fails), so this returns at once and not after 10 s.
	EXPECT_EQ(onering_doorbell_sleep(&db_, ticket, 10LL * 1000 * 1000 * 1000), 0);
}

TEST_F(DoorbellTest, CancelledSleepIsNotWoken)
{
	(void)onering_doorbell_prepare(&db_);
	onering_doorbell_cancel(&db_);
	EXPECT_FALSE(onering_doorbell_ring(&db_));
}

TEST_F(DoorbellTest, SleepWithoutRingTimesOut)
{
	uint32_t ticket = onering_doorbell_prepare(&db_);
	EXPECT_EQ(onering_doorbell_sleep(&db_, ticket, 1000 * 1000), -ETIMEDOUT);
	EXPECT_EQ(onering_atomic_load(&db_.state, onering_mo_relaxed),
		  (uint32_t)ONERING_CONSUMER_RUNNING);
}

TEST_F(DoorbellTest, GarbageStateIsNeverWoken)
{
	onering_doorbell_set_state(&db_, 0xdeadbeef);
	EXPECT_FALSE(onering_doorbell_ring(&db_));
	EXPECT_EQ(onering_atomic_load(&db_.futex, onering_mo_relaxed), 0u);
}

TEST(FutexTest, WakeWithNoWaiterWakesNobody)
{
	ONERING_ATOMIC(uint32_t) w{0};
	EXPECT_EQ(onering_futex_wake(&w, 1), 0);
	EXPECT_EQ(onering_futex_wait(&w, 1, 0), 0); // value differs: no sleep
}

} // namespace
