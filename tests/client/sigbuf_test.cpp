// SPDX-License-Identifier: MIT
// The buffer between the library's signal handler and onering_signal_read
// (client/sigbuf.h): FIFO, bounded, no holes, lost signals counted.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "client/sigbuf.h"

namespace {

class SigBufTest : public ::testing::Test {
protected:
	static client_sig_info Info(uint32_t signo, int32_t value)
	{
		client_sig_info i{};
		i.signo = signo;
		i.code = -1;
		i.value = value;
		i.pid = 100;
		i.uid = 1000;
		return i;
	}
	void StartAt(uint64_t pos)
	{
		onering_atomic_store(&buf_.head, pos, onering_mo_relaxed);
		onering_atomic_store(&buf_.tail, pos, onering_mo_relaxed);
	}
	client_sig_buf buf_{};
};

TEST_F(SigBufTest, AnEmptyBufferHasNothingToRead)
{
	client_sig_info out;
	EXPECT_FALSE(client_sig_buf_pop(&buf_, &out));
	EXPECT_EQ(client_sig_buf_lost(&buf_), 0u);
}

TEST_F(SigBufTest, SignalsComeOutInOrderWithAllTheirFields)
{
	client_sig_info a = Info(10, 1), b = Info(12, 2), out;
	ASSERT_TRUE(client_sig_buf_push(&buf_, &a));
	ASSERT_TRUE(client_sig_buf_push(&buf_, &b));
	ASSERT_TRUE(client_sig_buf_pop(&buf_, &out));
	EXPECT_EQ(out.signo, 10u);
	EXPECT_EQ(out.code, -1);
	EXPECT_EQ(out.value, 1);
	EXPECT_EQ(out.pid, 100u);
	EXPECT_EQ(out.uid, 1000u);
	ASSERT_TRUE(client_sig_buf_pop(&buf_, &out));
	EXPECT_EQ(out.signo, 12u);
	EXPECT_FALSE(client_sig_buf_pop(&buf_, &out));
}

TEST_F(SigBufTest, AFullBufferCountsTheSignalLostAndKeepsTheOldest)
{
	for (int32_t v = 0; v < (int32_t)CLIENT_SIG_SLOTS; v++) {
		client_sig_info i = Info(10, v);
		ASSERT_TRUE(client_sig_buf_push(&buf_, &i)) << v;
	}
	client_sig_info extra = Info(11, -5), out;
	EXPECT_FALSE(client_sig_buf_push(&buf_, &extra));
	EXPECT_FALSE(client_sig_buf_push(&buf_, &extra));
	EXPECT_EQ(client_sig_buf_lost(&buf_), 2u);
	ASSERT_TRUE(client_sig_buf_pop(&buf_, &out));
	EXPECT_EQ(out.value, 0); // the oldest, not overwritten
	EXPECT_TRUE(client_sig_buf_push(&buf_, &extra)); // one slot free again
	for (int32_t v = 1; v < (int32_t)CLIENT_SIG_SLOTS; v++) {
		ASSERT_TRUE(client_sig_buf_pop(&buf_, &out));
		ASSERT_EQ(out.value, v);
	}
	ASSERT_TRUE(client_sig_buf_pop(&buf_, &out));
	EXPECT_EQ(out.value, -5);
	EXPECT_FALSE(client_sig_buf_pop(&buf_, &out));
}

TEST_F(SigBufTest, AClaimedSlotNotYetWrittenReadsAsEmpty)
{
	// A handler on another thread has claimed the slot (tail moved) and not
	// yet set ready: the reader must not take half-written fields.
	onering_atomic_fetch_add(&buf_.tail, 1u, onering_mo_relaxed);
	client_sig_info out;
	EXPECT_FALSE(client_sig_buf_pop(&buf_, &out));
	EXPECT_EQ(onering_atomic_load(&buf_.head, onering_mo_relaxed), 0u);
	buf_.slots[0].info = Info(15, 3);
	onering_atomic_store(&buf_.slots[0].ready, 1u, onering_mo_release);
	ASSERT_TRUE(client_sig_buf_pop(&buf_, &out));
	EXPECT_EQ(out.signo, 15u);
	EXPECT_EQ(onering_atomic_load(&buf_.slots[0].ready, onering_mo_relaxed), 0u);
}

TEST_F(SigBufTest, SlotsAreReusedRoundAfterRound)
{
	client_sig_info out;
	for (int32_t v = 0; v < 10 * (int32_t)CLIENT_SIG_SLOTS + 3; v++) {
		client_sig_info i = Info(10, v);
		ASSERT_TRUE(client_sig_buf_push(&buf_, &i));
		ASSERT_TRUE(client_sig_buf_pop(&buf_, &out));
		ASSERT_EQ(out.value, v);
	}
	EXPECT_EQ(client_sig_buf_lost(&buf_), 0u);
}

TEST_F(SigBufTest, FreeRunningPositionsWorkAcrossTheU64Wrap)
{
	StartAt(UINT64_MAX - 2);
	client_sig_info out;
	for (int32_t v = 0; v < 6; v++) {
		client_sig_info i = Info(10, v);
		ASSERT_TRUE(client_sig_buf_push(&buf_, &i));
	}
	EXPECT_EQ(onering_atomic_load(&buf_.tail, onering_mo_relaxed), 3u); // wrapped
	for (int32_t v = 0; v < 6; v++) {
		ASSERT_TRUE(client_sig_buf_pop(&buf_, &out));
		ASSERT_EQ(out.value, v);
	}
	EXPECT_FALSE(client_sig_buf_pop(&buf_, &out));
}

TEST_F(SigBufTest, AFullBufferIsFullAcrossTheU64Wrap)
{
	StartAt(UINT64_MAX - 10);
	for (uint32_t n = 0; n < CLIENT_SIG_SLOTS; n++) {
		client_sig_info i = Info(10, (int32_t)n);
		ASSERT_TRUE(client_sig_buf_push(&buf_, &i));
	}
	client_sig_info i = Info(10, -1);
	EXPECT_FALSE(client_sig_buf_push(&buf_, &i));
	EXPECT_EQ(client_sig_buf_lost(&buf_), 1u);
}

// Two "handlers" on two threads and one reader: every signal is read once
// or counted lost, and each handler's signals come out in its order.
TEST_F(SigBufTest, TwoThreadHandlersRacingTheReaderLoseNothingUncounted)
{
	constexpr int32_t kPerWriter = 20000;
	std::atomic<int> writers_done{0};
	std::atomic<int64_t> pushed{0};
	auto writer = [&](uint32_t signo) {
		int64_t ok = 0;
		for (int32_t v = 0; v < kPerWriter; v++) {
			client_sig_info i = Info(signo, v);
			ok += client_sig_buf_push(&buf_, &i);
			if ((v & 63) == 0)
				std::this_thread::yield();
		}
		pushed.fetch_add(ok, std::memory_order_relaxed);
		writers_done.fetch_add(1, std::memory_order_release);
	};
	std::thread a(writer, 1u), b(writer, 2u);
	int64_t popped = 0;
	int32_t last[3] = {-1, -1, -1};
	uint32_t out_of_order = 0, bad = 0;
	client_sig_info out;
	for (;;) {
		bool finished = writers_done.load(std::memory_order_acquire) == 2;
		bool got = false;
		while (client_sig_buf_pop(&buf_, &out)) {
			got = true;
			popped++;
			if (out.signo != 1 && out.signo != 2) {
				bad++;
				continue;
			}
			out_of_order += out.value <= last[out.signo];
			last[out.signo] = out.value;
		}
		if (finished && !got)
			break;
		if (!got)
			std::this_thread::yield();
	}
	a.join();
	b.join();
	EXPECT_EQ(bad, 0u);
	EXPECT_EQ(out_of_order, 0u);
	EXPECT_EQ(popped, pushed.load());
	EXPECT_EQ(popped + (int64_t)client_sig_buf_lost(&buf_), 2 * (int64_t)kPerWriter);
}

} // namespace
