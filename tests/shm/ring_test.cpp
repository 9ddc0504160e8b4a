// SPDX-License-Identifier: MIT
// Unit tests for the SPSC ring (shm/ring.h, shm/ring.c).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "shm/abi.h"
#include "shm/ring.h"

namespace {

// Shared words on their own lines; slots in an exactly-sized heap block so
// ASan reports any access past the last slot.
struct alignas(64) Line {
	ONERING_ATOMIC(uint64_t) word;
	char pad[56];
};

class RingTest : public ::testing::Test {
protected:
	void Make(uint32_t capacity, uint64_t start)
	{
		capacity_ = capacity;
		slots_ = static_cast<onering_event *>(
			std::aligned_alloc(64, sizeof(onering_event) * capacity));
		ASSERT_NE(slots_, nullptr);
		onering_ring_shared_init(&tail_.word, &head_.word, start);
		ASSERT_EQ(onering_ring_producer_init(&prod_, &tail_.word, &head_.word, slots_,
						     capacity, start), 0);
		ASSERT_EQ(onering_ring_consumer_init(&cons_, &tail_.word, &head_.word, slots_,
						     capacity, start), 0);
	}
	void TearDown() override { std::free(slots_); }

	static onering_event Rec(uint64_t seq)
	{
		onering_event e{};
		e.cookie = seq;
		e.sub_id = static_cast<uint32_t>(seq * 7);
		e.kind = ONERING_EV_USER;
		e.payload.u64[3] = ~seq;
		return e;
	}
	static std::vector<onering_event> Recs(uint64_t first, uint32_t n)
	{
		std::vector<onering_event> v;
		for (uint32_t i = 0; i < n; i++)
			v.push_back(Rec(first + i));
		return v;
	}

	uint32_t capacity_ = 0;
	Line tail_{}, head_{};
	onering_event *slots_ = nullptr;
	onering_ring_producer prod_{};
	onering_ring_consumer cons_{};
};

TEST_F(RingTest, RejectsNonPowerOfTwoCapacity)
{
	onering_event slot[3];
	EXPECT_EQ(onering_ring_producer_init(&prod_, &tail_.word, &head_.word, slot, 3, 0), -EINVAL);
	EXPECT_EQ(onering_ring_consumer_init(&cons_, &tail_.word, &head_.word, slot, 0, 0), -EINVAL);
	EXPECT_EQ(onering_ring_producer_init(&prod_, &tail_.word, &head_.word, nullptr, 4, 0),
		  -EINVAL);
	EXPECT_EQ(onering_ring_consumer_init(&cons_, &tail_.word, &head_.word, slot, 1, 0), 0);
	EXPECT_EQ(onering_ring_producer_init(&prod_, &tail_.word, &head_.word, slot, 1u << 31, 0),
		  -EINVAL); // counts must stay positive ints
}

TEST_F(RingTest, EmptyRingYieldsNothing)
{
	Make(8, 0);
	onering_event out[4];
	const void *first = nullptr;
	EXPECT_EQ(onering_ring_dequeue_burst(&cons_, out, 4), 0);
	EXPECT_EQ(onering_ring_peek(&cons_, &first, 4), 0);
	EXPECT_EQ(onering_ring_consumer_count(&cons_), 0);
	EXPECT_EQ(onering_ring_producer_free(&prod_), 8);
}

TEST_F(RingTest, FullRingAcceptsNothingMoreUntilConsumed)
{
	Make(8, 0);
	auto in = Recs(0, 8);
	EXPECT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 8), 8);
	onering_event extra = Rec(8);
	EXPECT_EQ(onering_ring_enqueue_burst(&prod_, &extra, 1), 0);
	EXPECT_EQ(onering_ring_producer_count(&prod_), 8);
	EXPECT_EQ(onering_ring_consumer_count(&cons_), 8);

	onering_event out[1];
	ASSERT_EQ(onering_ring_dequeue_burst(&cons_, out, 1), 1);
	EXPECT_EQ(out[0].cookie, 0u);
	EXPECT_EQ(onering_ring_enqueue_burst(&prod_, &extra, 1), 1);
}

TEST_F(RingTest, PartialBurstsClampToSpaceAndToAvailable)
{
	Make(8, 0);
	auto in = Recs(0, 12);
	EXPECT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 5), 5);
	EXPECT_EQ(onering_ring_enqueue_burst(&prod_, in.data() + 5, 7), 3); // only 3 free
	onering_event out[16];
	EXPECT_EQ(onering_ring_dequeue_burst(&cons_, out, 6), 6);
	EXPECT_EQ(onering_ring_dequeue_burst(&cons_, out + 6, 16), 2); // only 2 left
	for (uint64_t i = 0; i < 8; i++)
		EXPECT_EQ(out[i].cookie, i);
}

TEST_F(RingTest, WrapsAroundTwoToTheSixtyFour)
{
	const uint64_t start = UINT64_MAX - 20; // positions cross 2^64 after 21 records
	Make(16, start);
	uint64_t next_in = 0, next_out = 0;
	onering_event out[16];
	for (int round = 0; round < 50; round++) {
		uint32_t n = 1 + static_cast<uint32_t>(round % 13);
		auto in = Recs(next_in, n);
		int put = onering_ring_enqueue_burst(&prod_, in.data(), n);
		ASSERT_GE(put, 0);
		next_in += static_cast<uint64_t>(put);
		int got = onering_ring_dequeue_burst(&cons_, out, 16);
		ASSERT_GE(got, 0);
		for (int i = 0; i < got; i++) {
			ASSERT_EQ(out[i].cookie, next_out);
			ASSERT_EQ(out[i].payload.u64[3], ~next_out);
			next_out++;
		}
	}
	EXPECT_EQ(next_in, next_out);
	EXPECT_GT(next_in, 21u); // really went through the wrap
	EXPECT_LT(prod_.tail_pos, start); // the free-running position wrapped
}

TEST_F(RingTest, PeekIsZeroCopyAndStopsAtTheEndOfTheSlots)
{
	Make(8, 5); // slots 5, 6, 7 then 0...
	auto in = Recs(100, 6);
	ASSERT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 6), 6);
	const void *first = nullptr;
	int n = onering_ring_peek(&cons_, &first, 32);
	ASSERT_EQ(n, 3); // contiguous run up to the end of the array
	EXPECT_EQ(first, static_cast<const void *>(&slots_[5]));
	const onering_event *ev = static_cast<const onering_event *>(first);
	EXPECT_EQ(ev[0].cookie, 100u);
	EXPECT_EQ(ev[2].cookie, 102u);
	// Nothing is given back until release: the producer still sees 6 used.
	EXPECT_EQ(onering_ring_producer_count(&prod_), 6);
	onering_ring_release(&cons_, 3);
	EXPECT_EQ(onering_ring_producer_count(&prod_), 3);
	n = onering_ring_peek(&cons_, &first, 2);
	ASSERT_EQ(n, 2);
	EXPECT_EQ(first, static_cast<const void *>(&slots_[0]));
	EXPECT_EQ(static_cast<const onering_event *>(first)[0].cookie, 103u);
	onering_ring_release(&cons_, 100); // clamped to the 2 that peek exposed
	EXPECT_EQ(onering_ring_consumer_count(&cons_), 1);
	EXPECT_EQ(onering_ring_producer_count(&prod_), 1);
	onering_ring_release(&cons_, 1); // nothing peeked since: nothing given back
	EXPECT_EQ(onering_ring_consumer_count(&cons_), 1);
}

TEST_F(RingTest, StagedRecordsStayInvisibleUntilPublished)
{
	Make(4, 0);
	void *slot = nullptr;
	ASSERT_EQ(onering_ring_claim(&prod_, &slot), 1);
	*static_cast<onering_event *>(slot) = Rec(42);
	auto in = Recs(43, 1);
	ASSERT_EQ(onering_ring_produce_burst(&prod_, in.data(), 1), 1);
	EXPECT_EQ(onering_ring_consumer_count(&cons_), 0);
	EXPECT_TRUE(onering_ring_publish(&prod_));
	EXPECT_FALSE(onering_ring_publish(&prod_)); // nothing new: no store
	onering_event out[4];
	ASSERT_EQ(onering_ring_dequeue_burst(&cons_, out, 4), 2);
	EXPECT_EQ(out[0].cookie, 42u);
	EXPECT_EQ(out[1].cookie, 43u);
}

TEST_F(RingTest, ClaimReportsFullRing)
{
	Make(2, 0);
	void *slot = nullptr;
	EXPECT_EQ(onering_ring_claim(&prod_, &slot), 1);
	EXPECT_EQ(onering_ring_claim(&prod_, &slot), 1);
	EXPECT_EQ(onering_ring_claim(&prod_, &slot), 0);
}

// --- the consumer's head is untrusted input to the producer -------------

TEST_F(RingTest, ConsumerHeadAheadOfProducerIsRejected)
{
	Make(8, 1000);
	auto in = Recs(0, 8);
	ASSERT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 8), 8);
	onering_atomic_store(&head_.word, 1000 + 9, onering_mo_relaxed); // past tail (1008)
	EXPECT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 1), -EPROTO);
	EXPECT_EQ(prod_.fault, ONERING_RING_PEER_AHEAD);
	EXPECT_EQ(prod_.seen_head, 1009u);
}

TEST_F(RingTest, ConsumerHeadBehindByMoreThanCapacityIsRejected)
{
	Make(8, 1000);
	auto in = Recs(0, 8);
	ASSERT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 8), 8);
	onering_atomic_store(&head_.word, 1000 - 1, onering_mo_relaxed); // tail - head = 9 > 8
	EXPECT_EQ(onering_ring_producer_count(&prod_), -EPROTO);
	EXPECT_EQ(prod_.fault, ONERING_RING_PEER_BEHIND);
}

TEST_F(RingTest, ConsumerHeadMovingBackwardsIsRejected)
{
	Make(8, 1000);
	auto in = Recs(0, 8);
	onering_event out[8];
	ASSERT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 8), 8);
	ASSERT_EQ(onering_ring_dequeue_burst(&cons_, out, 4), 4);
	ASSERT_EQ(onering_ring_producer_free(&prod_), 4); // producer caches head 1004
	onering_atomic_store(&head_.word, 1002, onering_mo_relaxed); // within capacity, but back
	EXPECT_EQ(onering_ring_producer_free(&prod_), -EPROTO);
	EXPECT_EQ(prod_.fault, ONERING_RING_PEER_REWOUND);
}

TEST_F(RingTest, ProducerFaultIsStickyAndNeverTouchesSlots)
{
	Make(4, 0);
	auto in = Recs(0, 4);
	void *slot = nullptr;
	// The head is read only when the cached view has no room: fill the ring.
	ASSERT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 4), 4);
	onering_atomic_store(&head_.word, UINT64_MAX / 2, onering_mo_relaxed);
	EXPECT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 1), -EPROTO);
	// Even a sane head afterwards does not clear the fault: the peer is dropped.
	onering_atomic_store(&head_.word, 4, onering_mo_relaxed);
	EXPECT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 1), -EPROTO);
	EXPECT_EQ(onering_ring_claim(&prod_, &slot), -EPROTO);
	EXPECT_EQ(onering_ring_producer_count(&prod_), -EPROTO);
	EXPECT_EQ(prod_.tail_pos, 4u);
	EXPECT_STRNE(onering_ring_fault_str(prod_.fault), onering_ring_fault_str(ONERING_RING_OK));
}

TEST_F(RingTest, GarbageHeadValuesAreAllRejectedWithoutOutOfBoundsAccess)
{
	// Every garbage value either is a legal position or is refused; ASan checks
	// that no slot outside the 8 allocated is ever touched.
	const uint64_t garbage[] = {UINT64_MAX, 1ull << 63, 9, 17, 0xdeadbeefcafef00dull, 3};
	for (uint64_t g : garbage) {
		Make(8, 0);
		auto in = Recs(0, 8);
		ASSERT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 8), 8);
		onering_event out[8];
		ASSERT_EQ(onering_ring_dequeue_burst(&cons_, out, 4), 4); // legal head: 4
		onering_atomic_store(&head_.word, g, onering_mo_relaxed);
		int r = onering_ring_enqueue_burst(&prod_, in.data(), 8);
		// The producer last validated head 0, so any head in [0, 8] is a
		// legal forward move from what it knows; anything else is not.
		if (g <= 8)
			EXPECT_GE(r, 0) << "legal head " << g;
		else
			EXPECT_EQ(r, -EPROTO) << "garbage head " << g;
		std::free(slots_);
		slots_ = nullptr;
	}
}

// --- the producer's tail is untrusted input to the consumer -------------

TEST_F(RingTest, ProducerTailBehindConsumerIsRejected)
{
	Make(8, 50);
	auto in = Recs(0, 4);
	onering_event out[4];
	ASSERT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 4), 4);
	ASSERT_EQ(onering_ring_dequeue_burst(&cons_, out, 4), 4);
	onering_atomic_store(&tail_.word, 40, onering_mo_relaxed);
	EXPECT_EQ(onering_ring_dequeue_burst(&cons_, out, 4), -EPROTO);
	EXPECT_EQ(cons_.fault, ONERING_RING_PEER_BEHIND);
}

TEST_F(RingTest, ProducerTailAheadByMoreThanCapacityIsRejected)
{
	Make(8, 50);
	onering_event out[4];
	onering_atomic_store(&tail_.word, 50 + 9, onering_mo_relaxed);
	const void *first = nullptr;
	EXPECT_EQ(onering_ring_peek(&cons_, &first, 4), -EPROTO);
	EXPECT_EQ(cons_.fault, ONERING_RING_PEER_AHEAD);
	EXPECT_EQ(onering_ring_dequeue_burst(&cons_, out, 4), -EPROTO); // sticky
}

TEST_F(RingTest, ProducerTailMovingBackwardsIsRejected)
{
	Make(8, 50);
	auto in = Recs(0, 6);
	onering_event out[2];
	ASSERT_EQ(onering_ring_enqueue_burst(&prod_, in.data(), 6), 6);
	ASSERT_EQ(onering_ring_dequeue_burst(&cons_, out, 2), 2); // head 52, caches tail 56
	onering_atomic_store(&tail_.word, 54, onering_mo_relaxed); // still >= head, but back
	ASSERT_EQ(onering_ring_dequeue_burst(&cons_, out, 2), 2); // served from the cache
	EXPECT_EQ(onering_ring_consumer_count(&cons_), -EPROTO);
	EXPECT_EQ(cons_.fault, ONERING_RING_PEER_REWOUND);
}

} // namespace
