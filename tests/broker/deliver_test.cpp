// SPDX-License-Identifier: MIT
// deliver.c, the one path of a record into a consumer's ring, with no broker
// running: a broker built in memory (deliver_support.h), the test playing
// both the poller's loop (report, flush, next loop) and each consumer.
#include <gtest/gtest.h>

#include <sys/epoll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

#include "broker/balance.h"
#include "shm/abi.h"
#include "shm/proto.h"
#include "tests/broker/deliver_support.h"

namespace {

// Values of enum broker_queue_state (broker/queue.h is C only).
constexpr int kQueueLive = 0;
constexpr int kQueueFaulted = 2;

class DeliverTestBase : public ::testing::Test {
protected:
	void TearDown() override { dt_free(t_); }
	struct QueueSpec {
		unsigned poller;
		uint32_t cap;
		uint32_t pkt_stride;
	};
	// A new broker of nr_pollers pollers whose queue i is qs[i].
	void Build(unsigned nr_pollers, std::initializer_list<QueueSpec> qs)
	{
		dt_free(t_);
		t_ = dt_new(nr_pollers);
		ASSERT_NE(t_, nullptr);
		int qi = 0;
		for (const QueueSpec &q : qs)
			ASSERT_EQ(dt_queue_add(t_, q.poller, q.cap, q.pkt_stride), qi++);
	}
	// Group 0 of these queues.
	void Group(uint32_t policy, std::vector<unsigned> members, uint32_t backlog_max = 0)
	{
		ASSERT_EQ(dt_group_add(t_, policy, backlog_max, members.data(),
				       (unsigned)members.size()),
			  0);
	}
	// Up to max records of queue qi, as a consumer takes them (a burst
	// can stop at its cached view of the tail: take until none comes).
	std::vector<struct onering_event> Consume(unsigned qi, unsigned max = 64)
	{
		std::vector<struct onering_event> v(max);
		unsigned got = 0;
		int n;
		while (got < max && (n = dt_consume(t_, qi, v.data() + got, max - got)) > 0)
			got += (unsigned)n;
		v.resize(got);
		return v;
	}
	struct dt_sub_view Sub(int si)
	{
		struct dt_sub_view v {};
		dt_sub_get(t_, si, &v);
		return v;
	}
	// A user record (cookie) posted to group 0 from poller 0, with flow key
	// flow (0: the cookie).
	int Post(uint64_t cookie, uint64_t flow = 0)
	{
		struct onering_event e = UserRec(cookie);
		return dt_post(t_, 0, 0, &e, flow ? flow : cookie);
	}
	static struct onering_event UserRec(uint64_t cookie)
	{
		struct onering_event e {};
		e.cookie = cookie;
		e.kind = ONERING_EV_USER;
		e.payload.user.flow = cookie;
		return e;
	}
	static std::vector<uint64_t> Cookies(const std::vector<struct onering_event> &v)
	{
		std::vector<uint64_t> c;
		for (const auto &e : v)
			c.push_back(e.cookie);
		return c;
	}
	struct dt *t_ = nullptr;
};

using U = std::vector<uint64_t>;

// ---- a subscription's own queue: pending and coalescing ---------------------------

// One queue of 4 slots on poller 0 and subscriptions 0..4 (cookies 100..104).
class DeliverQueueTest : public DeliverTestBase {
protected:
	void SetUp() override
	{
		ASSERT_NO_FATAL_FAILURE(Build(1, {{0, 4, 0}}));
		for (int i = 0; i < 5; i++)
			ASSERT_EQ(dt_sub_add(t_, 0, -1, 100 + i), i);
	}
	// Four records of sub 0, published: the ring is full.
	void Fill()
	{
		for (int i = 0; i < 4; i++)
			dt_report(t_, 0, 0, EPOLLIN, 1, 1);
		ASSERT_EQ(dt_flush(t_, 0, 1), 4u);
	}
	std::vector<int> PendingOrder()
	{
		std::vector<int> v;
		for (unsigned k = 0; k < dt_pending_len(t_, 0); k++)
			v.push_back(dt_pending_at(t_, 0, k));
		return v;
	}
};

TEST_F(DeliverQueueTest, ARecordIsInvisibleUntilFlushPublishesIt)
{
	dt_report(t_, 0, 2, EPOLLIN | EPOLLHUP, 1, 555);
	EXPECT_EQ(dt_visible(t_, 0), 0);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PUBLISHED), 0u);

	EXPECT_EQ(dt_flush(t_, 0, 999), 1u);
	EXPECT_EQ(dt_visible(t_, 0), 1);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PUBLISHED), 1u);
	EXPECT_EQ(dt_pctr(t_, 0, ONERING_PC_PUBLISHED), 1u);
	EXPECT_EQ(dt_pctr(t_, 0, ONERING_PC_QUEUES), 1u);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_DEFERRED), 0u);

	auto recs = Consume(0);
	ASSERT_EQ(recs.size(), 1u);
	const struct dt_sub_view s = Sub(2);
	EXPECT_EQ(recs[0].cookie, 102u);
	EXPECT_EQ(recs[0].sub_id, s.id);
	EXPECT_EQ(recs[0].sub_gen, s.gen);
	EXPECT_EQ(recs[0].kind, ONERING_EV_FD);
	EXPECT_EQ(recs[0].events, (uint32_t)(EPOLLIN | EPOLLHUP));
	EXPECT_EQ(recs[0].flags, 0u);
	EXPECT_EQ(recs[0].timestamp_ns, 555u) << "the report's time, not the flush's";
	EXPECT_EQ(recs[0].payload.u64[0], 1u);
	EXPECT_FALSE(s.pending);
}

TEST_F(DeliverQueueTest, AFlushWithNothingWrittenPublishesNothing)
{
	EXPECT_EQ(dt_flush(t_, 0, 1), 0u);
	EXPECT_EQ(dt_visible(t_, 0), 0);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PUBLISHED), 0u);
}

TEST_F(DeliverQueueTest, AFullRingMakesTheSubPending)
{
	Fill();
	dt_report(t_, 0, 1, EPOLLIN, 1, 2);
	const struct dt_sub_view s = Sub(1);
	EXPECT_TRUE(s.pending);
	EXPECT_EQ(s.events, (uint32_t)EPOLLIN);
	EXPECT_EQ(s.count, 1u);
	EXPECT_EQ(PendingOrder(), (std::vector<int>{1}));
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_DEFERRED), 1u);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PENDING), 1u);
	EXPECT_EQ(dt_flush(t_, 0, 3), 0u) << "no space given back: it keeps waiting";
	EXPECT_EQ(dt_visible(t_, 0), 4);
}

TEST_F(DeliverQueueTest, LaterReportsOfAPendingSubMergeIntoOneRecord)
{
	Fill();
	dt_report(t_, 0, 1, EPOLLIN, 1, 2);
	dt_report(t_, 0, 1, EPOLLOUT, 2, 3);
	dt_report(t_, 0, 1, EPOLLIN, 3, 4);
	const struct dt_sub_view s = Sub(1);
	EXPECT_EQ(s.count, 6u);
	EXPECT_EQ(s.events, (uint32_t)(EPOLLIN | EPOLLOUT));
	EXPECT_EQ(dt_pending_len(t_, 0), 1u);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_COALESCED), 2u);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_DEFERRED), 1u);

	ASSERT_EQ(Consume(0).size(), 4u);
	EXPECT_EQ(dt_flush(t_, 0, 77), 2u) << "one placed, one published";
	auto recs = Consume(0);
	ASSERT_EQ(recs.size(), 1u);
	EXPECT_EQ(recs[0].cookie, 101u);
	EXPECT_EQ(recs[0].events, (uint32_t)(EPOLLIN | EPOLLOUT));
	EXPECT_EQ(recs[0].flags, ONERING_EVF_COALESCED);
	EXPECT_EQ(recs[0].payload.u64[0], 6u);
	EXPECT_EQ(recs[0].timestamp_ns, 77u) << "a pending record carries the flush's time";
	EXPECT_FALSE(Sub(1).pending);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PENDING), 0u);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PUBLISHED), 5u);
}

TEST_F(DeliverQueueTest, PendingRecordsArePlacedOldestFirstAsSpaceComesBack)
{
	Fill();
	dt_report(t_, 0, 3, EPOLLIN, 1, 2);
	dt_report(t_, 0, 1, EPOLLIN, 1, 2);
	dt_report(t_, 0, 2, EPOLLIN, 1, 2);
	EXPECT_EQ(PendingOrder(), (std::vector<int>{3, 1, 2}));
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PENDING), 3u);

	ASSERT_EQ(Consume(0, 2).size(), 2u);
	EXPECT_EQ(dt_flush(t_, 0, 5), 4u); // 2 placed + 2 published
	EXPECT_EQ(PendingOrder(), (std::vector<int>{2}));
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PENDING), 1u);
	EXPECT_EQ(Cookies(Consume(0)), (U{100, 100, 103, 101}));

	EXPECT_EQ(dt_flush(t_, 0, 6), 2u);
	EXPECT_EQ(Cookies(Consume(0)), (U{102}));
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PENDING), 0u);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_DEFERRED), 3u);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PUBLISHED), 7u);
}

// A sub with nothing pending must not overtake those waiting, even when the
// consumer has made room since.
TEST_F(DeliverQueueTest, ANewRecordQueuesBehindPendingOnesEvenWithRoom)
{
	Fill();
	dt_report(t_, 0, 1, EPOLLIN, 1, 2);
	ASSERT_EQ(Consume(0).size(), 4u);
	dt_report(t_, 0, 2, EPOLLIN, 1, 3);
	EXPECT_EQ(PendingOrder(), (std::vector<int>{1, 2}));
	EXPECT_EQ(dt_visible(t_, 0), 0);
	dt_flush(t_, 0, 4);
	EXPECT_EQ(Cookies(Consume(0)), (U{101, 102}));
}

TEST_F(DeliverQueueTest, ForgetUnlinksAPendingSubFromAnywhereInTheList)
{
	Fill();
	for (int si : {1, 2, 3})
		dt_report(t_, 0, si, EPOLLIN, 1, 2);
	dt_forget(t_, 2); // the middle
	EXPECT_EQ(PendingOrder(), (std::vector<int>{1, 3}));
	EXPECT_FALSE(Sub(2).pending);
	dt_forget(t_, 3); // the tail: later appends must follow 1, not 3
	EXPECT_EQ(PendingOrder(), (std::vector<int>{1}));
	dt_report(t_, 0, 4, EPOLLIN, 1, 2);
	EXPECT_EQ(PendingOrder(), (std::vector<int>{1, 4}));
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PENDING), 2u);

	ASSERT_EQ(Consume(0).size(), 4u);
	dt_flush(t_, 0, 3);
	EXPECT_EQ(Cookies(Consume(0)), (U{101, 104}));
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PENDING), 0u);
}

TEST_F(DeliverQueueTest, ForgetOfTheOnlyPendingSubEmptiesTheList)
{
	Fill();
	dt_report(t_, 0, 1, EPOLLIN, 1, 2);
	dt_forget(t_, 1);
	EXPECT_EQ(dt_pending_len(t_, 0), 0u);
	dt_forget(t_, 1); // not pending any more: nothing to undo
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PENDING), 0u);
	ASSERT_EQ(Consume(0).size(), 4u);
	dt_report(t_, 0, 2, EPOLLIN, 1, 3);
	EXPECT_EQ(dt_visible(t_, 0), 0);
	dt_flush(t_, 0, 3);
	EXPECT_EQ(Cookies(Consume(0)), (U{102})) << "straight in: nobody waits ahead";
}

TEST_F(DeliverQueueTest, SeveralExpirationsInOneReportAreMarkedCoalesced)
{
	dt_report(t_, 0, 0, EPOLLIN, 3, 1);
	dt_flush(t_, 0, 1);
	auto recs = Consume(0);
	ASSERT_EQ(recs.size(), 1u);
	EXPECT_EQ(recs[0].flags, ONERING_EVF_COALESCED);
	EXPECT_EQ(recs[0].payload.u64[0], 3u);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_COALESCED), 0u) << "nothing was merged";
}

TEST_F(DeliverQueueTest, ToQueueReturnsEagainWhenTheRingIsFull)
{
	for (uint64_t i = 0; i < 4; i++) {
		struct onering_event e = UserRec(500 + i);
		EXPECT_EQ(dt_to_queue(t_, 0, 0, &e), 0);
	}
	struct onering_event e = UserRec(504);
	EXPECT_EQ(dt_to_queue(t_, 0, 0, &e), -EAGAIN);
	EXPECT_EQ(dt_visible(t_, 0), 0);
	EXPECT_EQ(dt_flush(t_, 0, 1), 4u);
	EXPECT_EQ(Cookies(Consume(0)), (U{500, 501, 502, 503}));
	EXPECT_EQ(dt_to_queue(t_, 0, 0, &e), 0) << "room again";
}

TEST_F(DeliverQueueTest, ASleepingConsumerIsWokenOncePerFlush)
{
	dt_set_consumer(t_, 0, ONERING_CONSUMER_SLEEPING, 1);
	dt_report(t_, 0, 0, EPOLLIN, 1, 1);
	dt_report(t_, 0, 1, EPOLLIN, 1, 1);
	EXPECT_EQ(dt_consumer_state(t_, 0), (uint32_t)ONERING_CONSUMER_SLEEPING)
		<< "no wake before the records are published";
	dt_flush(t_, 0, 2);
	EXPECT_EQ(dt_consumer_state(t_, 0), (uint32_t)ONERING_CONSUMER_RUNNING);
	EXPECT_EQ(dt_futex(t_, 0), 1u);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_WAKES), 1u);

	dt_report(t_, 0, 2, EPOLLIN, 1, 1); // awake now: no system call, no wake
	dt_flush(t_, 0, 3);
	EXPECT_EQ(dt_futex(t_, 0), 1u);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_WAKES), 1u);
}

// ---- a consumer that breaks the ring ABI ---------------------------------------

TEST_F(DeliverQueueTest, ACorruptConsumerHeadFaultsTheQueueOnce)
{
	Fill();
	dt_set_head(t_, 0, 1000); // past anything published
	dt_report(t_, 0, 1, EPOLLIN, 1, 2);
	EXPECT_EQ(dt_queue_state(t_, 0), kQueueFaulted);
	EXPECT_FALSE(Sub(1).pending) << "a faulted queue takes nothing, not even a pending sub";
	int first = -1;
	EXPECT_EQ(dt_take_faults(t_, &first), 1u);
	EXPECT_EQ(first, 0);
	EXPECT_EQ(dt_reap_count(t_), 1u) << "the control thread was woken";

	// Later attempts: -EPROTO, and no second fault notice.
	struct onering_event e = UserRec(1);
	EXPECT_EQ(dt_to_queue(t_, 0, 0, &e), -EPROTO);
	dt_report(t_, 0, 2, EPOLLIN, 1, 3);
	EXPECT_EQ(dt_take_faults(t_, &first), 0u);
	EXPECT_EQ(dt_reap_count(t_), 0u);
	EXPECT_EQ(dt_flush(t_, 0, 4), 0u);
	EXPECT_EQ(dt_pctr(t_, 0, ONERING_PC_QUEUES), 0u) << "the flush no longer serves it";
}

TEST_F(DeliverQueueTest, AHeadThatMovesBackwardsFaultsTheQueue)
{
	Fill();
	ASSERT_EQ(Consume(0, 2).size(), 2u);
	dt_report(t_, 0, 1, EPOLLIN, 1, 2); // sees head 2
	dt_set_head(t_, 0, 1);
	dt_report(t_, 0, 2, EPOLLIN, 1, 2);
	dt_report(t_, 0, 3, EPOLLIN, 1, 2); // the cache is full: rereads head
	EXPECT_EQ(dt_queue_state(t_, 0), kQueueFaulted);
	int first = -1;
	EXPECT_EQ(dt_take_faults(t_, &first), 1u);
}

TEST_F(DeliverQueueTest, ASaneQueueStaysLive)
{
	Fill();
	ASSERT_EQ(Consume(0).size(), 4u);
	Fill();
	EXPECT_EQ(dt_queue_state(t_, 0), kQueueLive);
	int first = -1;
	EXPECT_EQ(dt_take_faults(t_, &first), 0u);
	EXPECT_EQ(dt_reap_count(t_), 0u);
}

// ---- groups: placement, backlog ----------------------------------------------------

// Two members of 2 slots on poller 0; sub 0 targets the group (through q0).
class DeliverGroupTest : public DeliverTestBase {
protected:
	void Make(uint32_t policy, uint32_t backlog_max = 0)
	{
		ASSERT_NO_FATAL_FAILURE(Build(1, {{0, 2, 0}, {0, 2, 0}}));
		ASSERT_NO_FATAL_FAILURE(Group(policy, {0, 1}, backlog_max));
		ASSERT_EQ(dt_sub_add(t_, 0, 0, 900), 0);
	}
};

TEST_F(DeliverGroupTest, RoundRobinAlternatesBetweenTwoMembers)
{
	Make(ONERING_POLICY_RR);
	for (uint64_t c = 1; c <= 4; c++)
		ASSERT_EQ(Post(c), 0);
	EXPECT_EQ(dt_flush(t_, 0, 1), 4u);
	EXPECT_EQ(Cookies(Consume(0)), (U{1, 3}));
	EXPECT_EQ(Cookies(Consume(1)), (U{2, 4}));
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_DELIVERED), 4u);
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_BACKLOGGED), 0u);
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_SPILLED), 0u);
}

TEST_F(DeliverGroupTest, AFullGroupBacklogsAndFlushesLaterInOrder)
{
	Make(ONERING_POLICY_RR);
	for (uint64_t c = 1; c <= 7; c++)
		ASSERT_EQ(Post(c), 0) << c;
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 3u);
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_BACKLOG), 3u);
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_BACKLOGGED), 3u);
	dt_flush(t_, 0, 1);
	EXPECT_EQ(Cookies(Consume(0)), (U{1, 3}));
	EXPECT_EQ(Cookies(Consume(1, 1)), (U{2}));

	// deliver.c reads a consumer's head once per loop: the room shows next loop.
	EXPECT_EQ(dt_flush(t_, 0, 2), 0u);
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 3u);
	dt_next_loop(t_, 0);
	dt_flush(t_, 0, 3);
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 0u);
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_BACKLOG), 0u);
	// Placed as one burst (balance_split): each member's share a run, in
	// order - 0 had room for two, 1 for one.
	EXPECT_EQ(Cookies(Consume(0)), (U{5, 6}));
	EXPECT_EQ(Cookies(Consume(1)), (U{4, 7}));
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_DELIVERED), 7u);
}

// A backlog longer than one burst goes out burst after burst in one flush
// while the members have room, each record once, in order on each member.
TEST_F(DeliverGroupTest, ABacklogOfManyBurstsDrainsInOneFlush)
{
	ASSERT_NO_FATAL_FAILURE(Build(1, {{0, 64, 0}, {0, 64, 0}}));
	ASSERT_NO_FATAL_FAILURE(Group(ONERING_POLICY_RR, {0, 1}));
	for (uint64_t c = 1; c <= 128 + 100; c++)
		ASSERT_EQ(Post(c), 0) << c;
	ASSERT_EQ(dt_backlog_recs(t_, 0, 0), 100u);
	dt_flush(t_, 0, 1);
	ASSERT_EQ(Consume(0, 64).size(), 64u);
	ASSERT_EQ(Consume(1, 64).size(), 64u);
	dt_next_loop(t_, 0);
	dt_flush(t_, 0, 2);
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 0u);
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_BACKLOG), 0u) << "the gauge follows every burst";
	std::vector<uint64_t> all;
	for (unsigned qi : {0u, 1u}) {
		std::vector<struct onering_event> v = Consume(qi, 64);
		for (size_t i = 0; i < v.size(); i++) {
			all.push_back(v[i].cookie);
			if (i) {
				EXPECT_LT(v[i - 1].cookie, v[i].cookie) << "in order on each member";
			}
		}
	}
	std::sort(all.begin(), all.end());
	ASSERT_EQ(all.size(), 100u);
	for (size_t i = 0; i < all.size(); i++)
		EXPECT_EQ(all[i], 129 + i) << "each once";
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_DELIVERED), 228u);
}

// What waits in the backlog goes out a burst at a time while it is plain
// posts; a record that is not (re-delivered, or waiting under another flow
// key) is placed on its own, counted as such, and the order holds.
TEST_F(DeliverGroupTest, TheBacklogFlushesPostsInBurstsAndTheRestOneByOne)
{
	ASSERT_NO_FATAL_FAILURE(Build(1, {{0, 8, 0}, {0, 8, 0}}));
	ASSERT_NO_FATAL_FAILURE(Group(ONERING_POLICY_RR, {0, 1}));
	for (uint64_t c = 1; c <= 16; c++)
		ASSERT_EQ(Post(c), 0) << c;
	for (uint64_t c = 17; c <= 24; c++) {
		struct onering_event e = UserRec(c);
		if (c == 20)
			e.flags |= ONERING_EVF_REDELIVERED;
		ASSERT_EQ(dt_post(t_, 0, 0, &e, c == 22 ? 7777 : c), 0) << c;
	}
	ASSERT_EQ(dt_backlog_recs(t_, 0, 0), 8u);
	dt_flush(t_, 0, 1);
	ASSERT_EQ(Consume(0).size(), 8u);
	ASSERT_EQ(Consume(1).size(), 8u);
	dt_next_loop(t_, 0);
	dt_flush(t_, 0, 2);
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 0u);
	std::vector<struct onering_event> got[2] = {Consume(0), Consume(1)};
	std::vector<uint64_t> all;
	for (const auto &v : got) {
		for (size_t i = 0; i < v.size(); i++) {
			all.push_back(v[i].cookie);
			if (i) {
				EXPECT_LT(v[i - 1].cookie, v[i].cookie) << "in order on each member";
			}
			EXPECT_EQ((v[i].flags & ONERING_EVF_REDELIVERED) != 0, v[i].cookie == 20u);
		}
	}
	std::sort(all.begin(), all.end());
	EXPECT_EQ(all, (U{17, 18, 19, 20, 21, 22, 23, 24})) << "each once";
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_REDELIVERED) + dt_qctr(t_, 1, ONERING_QC_REDELIVERED),
		  1u);
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_DELIVERED), 24u);
}

TEST_F(DeliverGroupTest, APostWaitsBehindTheBacklogEvenWhenAMemberHasRoom)
{
	Make(ONERING_POLICY_RR);
	for (uint64_t c = 1; c <= 5; c++)
		ASSERT_EQ(Post(c), 0);
	dt_flush(t_, 0, 1);
	ASSERT_EQ(Consume(0).size(), 2u);
	dt_next_loop(t_, 0);
	ASSERT_EQ(Post(6), 0);
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 2u) << "6 must not overtake 5";
	dt_flush(t_, 0, 2);
	EXPECT_EQ(Cookies(Consume(0)), (U{5, 6}));
}

TEST_F(DeliverGroupTest, TheBacklogLimitRefusesPosts)
{
	Make(ONERING_POLICY_RR, 2);
	for (uint64_t c = 1; c <= 6; c++)
		ASSERT_EQ(Post(c), 0) << c;
	EXPECT_EQ(Post(7), -EAGAIN);
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 2u);
}

TEST_F(DeliverGroupTest, AWaitingGroupSubMergesLaterReports)
{
	Make(ONERING_POLICY_LEAST);
	for (uint64_t c = 1; c <= 4; c++)
		ASSERT_EQ(Post(c), 0);
	dt_report(t_, 0, 0, EPOLLIN, 1, 5);
	dt_report(t_, 0, 0, EPOLLOUT, 2, 6);
	EXPECT_EQ(dt_backlog_subs(t_, 0, 0), 1u);
	EXPECT_TRUE(Sub(0).pending);
	EXPECT_EQ(Sub(0).count, 3u);
	dt_flush(t_, 0, 7);
	ASSERT_EQ(Consume(1).size(), 2u);
	dt_next_loop(t_, 0);
	dt_flush(t_, 0, 8);
	EXPECT_EQ(dt_backlog_subs(t_, 0, 0), 0u);
	EXPECT_FALSE(Sub(0).pending);
	auto recs = Consume(1);
	ASSERT_EQ(recs.size(), 1u);
	EXPECT_EQ(recs[0].cookie, 900u);
	EXPECT_EQ(recs[0].events, (uint32_t)(EPOLLIN | EPOLLOUT));
	EXPECT_EQ(recs[0].payload.u64[0], 3u);
	EXPECT_EQ(recs[0].flags & ONERING_EVF_COALESCED, ONERING_EVF_COALESCED);
	EXPECT_EQ(recs[0].flags & ONERING_EVF_FOREIGN, 0u) << "same client";
}

TEST_F(DeliverGroupTest, ADeletedSubWaitingInTheBacklogIsDropped)
{
	Make(ONERING_POLICY_RR);
	for (uint64_t c = 1; c <= 4; c++)
		ASSERT_EQ(Post(c), 0);
	dt_report(t_, 0, 0, EPOLLIN, 1, 5);
	ASSERT_EQ(dt_backlog_subs(t_, 0, 0), 1u);
	dt_sub_kill(t_, 0);
	dt_flush(t_, 0, 6);
	ASSERT_EQ(Consume(0).size(), 2u);
	ASSERT_EQ(Consume(1).size(), 2u);
	dt_next_loop(t_, 0);
	EXPECT_EQ(dt_flush(t_, 0, 7), 0u);
	EXPECT_EQ(dt_backlog_subs(t_, 0, 0), 0u);
	EXPECT_EQ(dt_visible(t_, 0) + dt_visible(t_, 1), 0);
}

TEST_F(DeliverGroupTest, StickyKeepsAFlowOnItsQueueWhileItHoldsRecords)
{
	Make(ONERING_POLICY_STICKY);
	ASSERT_EQ(Post(1, 7), 0); // least: both empty, the first
	ASSERT_EQ(Post(2, 8), 0); // least: q1
	ASSERT_EQ(Post(3, 8), 0); // flow 8 holds q1, though q0 has fewer
	dt_flush(t_, 0, 1);
	EXPECT_EQ(Cookies(Consume(0)), (U{1}));
	EXPECT_EQ(Post(4, 8), 0); // q1 is full: flow 8 waits rather than move
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 1u);
	dt_next_loop(t_, 0);
	dt_flush(t_, 0, 2);
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 1u) << "flow 8 still holds q1 (full)";
	EXPECT_EQ(dt_visible(t_, 0), 0);

	EXPECT_EQ(Cookies(Consume(1)), (U{2, 3}));
	dt_next_loop(t_, 0);
	dt_flush(t_, 0, 3);
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 0u);
	// Consumed: the flow was free to move and least took the first of two empties.
	EXPECT_EQ(Cookies(Consume(0)), (U{4}));
}

TEST_F(DeliverGroupTest, LifoGivesARecordToTheLastConsumerToGoIdle)
{
	Make(ONERING_POLICY_LIFO);
	dt_set_consumer(t_, 0, ONERING_CONSUMER_SLEEPING, 5);
	dt_set_consumer(t_, 1, ONERING_CONSUMER_SLEEPING, 9);
	ASSERT_EQ(Post(1), 0);
	dt_flush(t_, 0, 1); // wakes q1's consumer
	EXPECT_EQ(dt_qctr(t_, 1, ONERING_QC_WAKES), 1u);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_WAKES), 0u) << "wake one";
	ASSERT_EQ(Post(2), 0); // q1 has work now: the next idle one
	dt_flush(t_, 0, 2);
	EXPECT_EQ(Cookies(Consume(1)), (U{1}));
	EXPECT_EQ(Cookies(Consume(0)), (U{2}));
}

// Nobody idle, but the members at work have room: every post goes to one of
// them at once (the fewest records first, in turn on a tie), none waits.
TEST_F(DeliverGroupTest, LifoPlacesARecordInTheLoopItArrivesWhileAMemberAtWorkHasRoom)
{
	Make(ONERING_POLICY_LIFO);
	dt_set_consumer(t_, 0, ONERING_CONSUMER_RUNNING, 0);
	dt_set_consumer(t_, 1, ONERING_CONSUMER_RUNNING, 0);
	for (uint64_t c = 1; c <= 4; c++)
		ASSERT_EQ(Post(c), 0) << c;
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 0u);
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_BACKLOGGED), 0u);
	ASSERT_EQ(Post(5), 0); // both full (2 slots each): it waits
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 1u);
	dt_flush(t_, 0, 1);
	EXPECT_EQ(Cookies(Consume(0)), (U{1, 3}));
	EXPECT_EQ(Cookies(Consume(1)), (U{2, 4}));
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_DELIVERED), 4u);
}

// The snapshot of a loop is kept up to date with what the poller places: a
// consumer given a record leaves the idle set, the next record goes to the
// next idle one, then to those at work.
TEST_F(DeliverGroupTest, LifoWakesEachIdleMemberOnceABurst)
{
	Build(1, {{0, 4, 0}, {0, 4, 0}, {0, 4, 0}});
	ASSERT_NO_FATAL_FAILURE(Group(ONERING_POLICY_LIFO, {0, 1, 2}));
	dt_set_consumer(t_, 0, ONERING_CONSUMER_SLEEPING, 30);
	dt_set_consumer(t_, 1, ONERING_CONSUMER_SLEEPING, 10);
	dt_set_consumer(t_, 2, ONERING_CONSUMER_SPINNING, 20);
	for (uint64_t c = 1; c <= 6; c++)
		ASSERT_EQ(Post(c), 0) << c;
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 0u);
	dt_flush(t_, 0, 1);
	EXPECT_EQ(Cookies(Consume(0)), (U{1, 4})) << "last idle first, then at work in turn";
	EXPECT_EQ(Cookies(Consume(2)), (U{2, 6}));
	EXPECT_EQ(Cookies(Consume(1)), (U{3, 5}));
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_WAKES), 1u);
	EXPECT_EQ(dt_qctr(t_, 1, ONERING_QC_WAKES), 1u);
}

TEST_F(DeliverGroupTest, LifoMaxRunningKeepsRecordsOnTheMembersAtWork)
{
	Make(ONERING_POLICY_LIFO);
	dt_group_set_wake(t_, 0, ONERING_WAKE_FIFO, 1);
	dt_set_consumer(t_, 0, ONERING_CONSUMER_SLEEPING, 5);
	dt_set_consumer(t_, 1, ONERING_CONSUMER_SLEEPING, 9);
	ASSERT_EQ(Post(1), 0); // fifo: q0, the longest idle
	ASSERT_EQ(Post(2), 0); // max_running 1: q0 again, it has room
	ASSERT_EQ(Post(3), 0); // q0 full: waits rather than wake q1
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 1u);
	dt_flush(t_, 0, 1);
	EXPECT_EQ(dt_qctr(t_, 1, ONERING_QC_WAKES), 0u);
	EXPECT_EQ(Cookies(Consume(0)), (U{1, 2}));
	dt_set_consumer(t_, 0, ONERING_CONSUMER_SLEEPING, 20); // done, asleep again
	dt_next_loop(t_, 0);
	dt_flush(t_, 0, 2);
	EXPECT_EQ(Cookies(Consume(1)), (U{3})) << "fifo: q1 has been idle longer";
}

// ---- NIC packets: one decision per burst ---------------------------------------------

class DeliverPacketsTest : public DeliverTestBase {
protected:
	// q1 has no packet area: never a packet member.
	void SetUp() override
	{
		ASSERT_NO_FATAL_FAILURE(Build(1, {{0, 4, 128}, {0, 4, 0}, {0, 4, 128}}));
		ASSERT_NO_FATAL_FAILURE(Group(ONERING_POLICY_RR, {0, 1, 2}));
	}
	// A sticky group instead: q0 without a packet area, q1 with one.
	void MakeSticky()
	{
		ASSERT_NO_FATAL_FAILURE(Build(1, {{0, 4, 0}, {0, 4, 128}}));
		ASSERT_NO_FATAL_FAILURE(Group(ONERING_POLICY_STICKY, {0, 1}));
	}
};

TEST_F(DeliverPacketsTest, ABurstStaysOnOneQueueUntilItFills)
{
	const uint32_t lens[6] = {60, 200, 64, 128, 129, 10};
	struct onering_event recs[6];
	unsigned truncated = 99;
	EXPECT_EQ(dt_packets(t_, 0, 0, lens, 6, &truncated, recs), 6u);
	EXPECT_EQ(truncated, 2u);
	dt_flush(t_, 0, 1);
	auto q0 = Consume(0), q2 = Consume(2);
	ASSERT_EQ(q0.size(), 4u);
	ASSERT_EQ(q2.size(), 2u);
	EXPECT_EQ(dt_visible(t_, 1), 0);
	for (unsigned i = 0; i < 4; i++) {
		EXPECT_EQ(q0[i].payload.nic.payload_offset, i * 128u);
		EXPECT_EQ(q0[i].payload.nic.length, lens[i]);
		EXPECT_EQ(q0[i].payload.nic.captured, lens[i] < 128 ? lens[i] : 128u);
		EXPECT_EQ(dt_packet(t_, 0, q0[i].payload.nic.payload_offset)[0], i + 1);
	}
	EXPECT_EQ(q0[1].flags, ONERING_EVF_TRUNCATED);
	EXPECT_EQ(q0[3].flags, 0u) << "exactly the snap length is not cut";
	EXPECT_EQ(q2[0].flags, ONERING_EVF_TRUNCATED);
	EXPECT_EQ(q2[0].payload.nic.captured, 128u);
	EXPECT_EQ(dt_packet(t_, 2, q2[1].payload.nic.payload_offset)[0], 6);
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_DELIVERED), 6u);
}

// The loop's snapshot learns what a burst put where (pick() counts one
// record): least then sends the loop's next burst to the emptier member.
TEST_F(DeliverPacketsTest, TheNextBurstOfTheLoopSeesWhatTheLastOnePlaced)
{
	ASSERT_NO_FATAL_FAILURE(Build(1, {{0, 8, 128}, {0, 8, 128}}));
	ASSERT_NO_FATAL_FAILURE(Group(ONERING_POLICY_LEAST, {0, 1}));
	const uint32_t lens[8] = {1, 1, 1, 1, 1, 1, 1, 1};
	struct onering_event recs[8];
	unsigned truncated = 0;
	EXPECT_EQ(dt_packets(t_, 0, 0, lens, 6, &truncated, recs), 6u);
	EXPECT_EQ(dt_packets(t_, 0, 0, lens, 4, &truncated, recs), 4u);
	EXPECT_EQ(dt_packets(t_, 0, 0, lens, 2, &truncated, recs), 2u);
	dt_flush(t_, 0, 1);
	EXPECT_EQ(Consume(0).size(), 6u) << "not 8: it held 6 when the last burst came";
	EXPECT_EQ(Consume(1).size(), 6u);
}

TEST_F(DeliverPacketsTest, PacketsNobodyHasRoomForAreLeftToTheCaller)
{
	const uint32_t lens[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	struct onering_event recs[10];
	unsigned truncated = 0;
	EXPECT_EQ(dt_packets(t_, 0, 0, lens, 10, &truncated, recs), 8u);
	EXPECT_EQ(truncated, 0u);
	EXPECT_EQ(dt_packets(t_, 0, 0, lens, 2, &truncated, recs), 0u);
}

// A packet whose rss hash shares a sticky bucket with a posted flow (or a
// subscription id) does not follow that flow to a member without a packet
// area, or to one another poller serves (whose ring this poller must never
// write). Found writing this suite: it did.
TEST_F(DeliverPacketsTest, AStickyPacketNeverFollowsAFlowToAQueueWithoutAPacketArea)
{
	ASSERT_NO_FATAL_FAILURE(MakeSticky());
	struct onering_event post = UserRec(1);
	ASSERT_EQ(dt_post(t_, 0, 0, &post, 1000), 0); // flow 1000 -> q0 (least, the first)
	const uint32_t lens[1] = {100};
	struct onering_event recs[1];
	unsigned truncated = 0;
	EXPECT_EQ(dt_packets(t_, 0, 0, lens, 1, &truncated, recs), 1u); // rss hash 1000
	dt_flush(t_, 0, 1);
	EXPECT_EQ(Cookies(Consume(0)), (U{1})) << "only the post";
	auto q1 = Consume(1);
	ASSERT_EQ(q1.size(), 1u);
	EXPECT_EQ(q1[0].payload.nic.captured, 100u);
	EXPECT_EQ(truncated, 0u);
}

// The same with the flow free (its record consumed): packets only ever go
// to members with a packet area, whatever bucket they hash to.
TEST_F(DeliverPacketsTest, AStickyPacketGoesOnlyToMembersWithAPacketArea)
{
	ASSERT_NO_FATAL_FAILURE(MakeSticky());
	const uint32_t lens[3] = {100, 100, 100};
	struct onering_event recs[3];
	unsigned truncated = 0;
	EXPECT_EQ(dt_packets(t_, 0, 0, lens, 3, &truncated, recs), 3u);
	dt_flush(t_, 0, 1);
	EXPECT_EQ(dt_visible(t_, 0), 0);
	EXPECT_EQ(Consume(1).size(), 3u);
}

// ---- two pollers: the lane ------------------------------------------------------------

// q0 on poller 0 (node 0), q1 on poller 1 (node 1); a group of both.
class DeliverLaneTest : public DeliverTestBase {
protected:
	void SetUp() override
	{
		ASSERT_NO_FATAL_FAILURE(Build(2, {{0, 2, 0}, {1, 2, 0}}));
		ASSERT_NO_FATAL_FAILURE(Group(ONERING_POLICY_RR, {0, 1}));
	}
};

TEST_F(DeliverLaneTest, ARecordForAnotherPollersQueueTravelsOnTheLane)
{
	ASSERT_EQ(Post(1), 0); // q0, here
	ASSERT_EQ(Post(2), 0); // q1, poller 1's
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_HANDOFFS), 1u);
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_SPILLED), 1u) << "q1 is on another node";
	EXPECT_EQ(dt_queue_inflight(t_, 1), 1u);
	dt_flush(t_, 0, 1);
	EXPECT_EQ(dt_visible(t_, 1), 0) << "poller 0 never writes q1's ring";

	EXPECT_EQ(dt_take_handoff(t_, 1, 0), 1);
	EXPECT_EQ(dt_queue_inflight(t_, 1), 0u);
	EXPECT_EQ(dt_take_handoff(t_, 1, 0), 0);
	dt_flush(t_, 1, 2);
	EXPECT_EQ(Cookies(Consume(1)), (U{2}));
	EXPECT_EQ(Cookies(Consume(0)), (U{1}));
}

TEST_F(DeliverLaneTest, RecordsOnTheirWayCountAgainstTheMember)
{
	for (uint64_t c = 1; c <= 4; c++)
		ASSERT_EQ(Post(c), 0);
	EXPECT_EQ(dt_queue_inflight(t_, 1), 2u);
	ASSERT_EQ(Post(5), 0);
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 1u) << "q1 is full with what is on its way";
	EXPECT_EQ(dt_gctr(t_, 0, 0, ONERING_GC_HANDOFFS), 2u);
}

// ---- priority levels ------------------------------------------------------------------

// Queues of 2 slots a level and ONERING_PRIO_LEVELS levels (the test's
// consumer takes the highest level first, as onering_poll does).
class DeliverPrioTest : public DeliverTestBase {
protected:
	static constexpr uint32_t kHigh = ONERING_PRIO_LEVELS - 1;
	void Make(unsigned nr_queues, uint32_t cap = 2, uint32_t levels = ONERING_PRIO_LEVELS)
	{
		dt_free(t_);
		t_ = dt_new(1);
		ASSERT_NE(t_, nullptr);
		for (unsigned i = 0; i < nr_queues; i++) {
			ASSERT_EQ(dt_queue_add(t_, 0, cap, 0), (int)i);
			if (levels > 1) {
				ASSERT_EQ(dt_queue_levels(t_, i, levels), 0);
			}
		}
	}
	int PostAt(uint64_t cookie, uint32_t prio, uint64_t flow = 0)
	{
		struct onering_event e = UserRec(cookie);
		e.flags = (uint16_t)(prio << ONERING_EVF_PRIO_SHIFT);
		return dt_post(t_, 0, 0, &e, flow ? flow : cookie);
	}
};

TEST_F(DeliverPrioTest, AHighSourceOvertakesAFullLowRingAndItsPendingRecords)
{
	ASSERT_NO_FATAL_FAILURE(Make(1));
	ASSERT_EQ(dt_sub_add(t_, 0, -1, 100), 0); // low
	ASSERT_EQ(dt_sub_add(t_, 0, -1, 101), 1);
	ASSERT_EQ(dt_sub_add(t_, 0, -1, 103), 2);
	dt_sub_set_prio(t_, 2, kHigh);
	dt_report(t_, 0, 0, EPOLLIN, 1, 1);
	dt_report(t_, 0, 0, EPOLLIN, 1, 1);
	dt_report(t_, 0, 1, EPOLLIN, 1, 1); // level 0 full: pending
	EXPECT_EQ(dt_pending_len(t_, 0), 1u);
	dt_report(t_, 0, 2, EPOLLIN, 1, 2); // its own ring: no wait
	EXPECT_EQ(dt_flush(t_, 0, 3), 3u);
	EXPECT_EQ(dt_level_visible(t_, 0, kHigh), 1);
	EXPECT_EQ(dt_lctr(t_, 0, kHigh, ONERING_LC_DELIVERED), 1u);
	EXPECT_EQ(dt_lctr(t_, 0, 0, ONERING_LC_DELIVERED), 2u);
	EXPECT_EQ(dt_lctr(t_, 0, 0, ONERING_LC_DEFERRED), 1u);
	auto recs = Consume(0, 2);
	ASSERT_EQ(Cookies(recs), (U{103, 100}));
	EXPECT_EQ(onering_event_prio(&recs[0]), kHigh) << "the record says its priority";
	EXPECT_EQ(onering_event_prio(&recs[1]), 0u);
	dt_next_loop(t_, 0);
	dt_flush(t_, 0, 4);
	EXPECT_EQ(Cookies(Consume(0)), (U{100, 101})) << "per-source order within the level";
}

TEST_F(DeliverPrioTest, APriorityAboveTheQueuesLevelsTakesItsTopLevel)
{
	ASSERT_NO_FATAL_FAILURE(Make(2, 4, 2)); // q0: 2 levels
	ASSERT_EQ(dt_sub_add(t_, 0, -1, 100), 0);
	dt_sub_set_prio(t_, 0, kHigh);
	dt_report(t_, 0, 0, EPOLLIN, 1, 1);
	dt_flush(t_, 0, 2);
	EXPECT_EQ(dt_level_visible(t_, 0, 1), 1);
	EXPECT_EQ(dt_level_visible(t_, 0, 0), 0);
	auto recs = Consume(0);
	ASSERT_EQ(recs.size(), 1u);
	EXPECT_EQ(onering_event_prio(&recs[0]), kHigh) << "the record keeps the asked priority";
}

TEST_F(DeliverPrioTest, AQueueWithOneLevelTakesEveryPriorityInItsOneRing)
{
	ASSERT_NO_FATAL_FAILURE(Make(1, 4, 1));
	ASSERT_EQ(dt_sub_add(t_, 0, -1, 100), 0);
	ASSERT_EQ(dt_sub_add(t_, 0, -1, 101), 1);
	dt_sub_set_prio(t_, 1, kHigh);
	dt_report(t_, 0, 0, EPOLLIN, 1, 1);
	dt_report(t_, 0, 1, EPOLLIN, 1, 1);
	dt_flush(t_, 0, 2);
	EXPECT_EQ(Cookies(Consume(0)), (U{100, 101})) << "one ring: arrival order";
}

TEST_F(DeliverPrioTest, LeastCountsOnlyWhatARecordWouldWaitBehind)
{
	ASSERT_NO_FATAL_FAILURE(Make(2, 4));
	ASSERT_NO_FATAL_FAILURE(Group(ONERING_POLICY_LEAST, {0, 1}));
	ASSERT_EQ(PostAt(1, 0), 0); // q0 (tie: the first)
	ASSERT_EQ(PostAt(2, 0), 0); // q1
	ASSERT_EQ(PostAt(3, 0), 0); // q0
	// By total load q1 (1 record) would take the next; but a high record
	// waits behind high ones only: both have none, the first of the tie.
	ASSERT_EQ(PostAt(4, kHigh), 0); // q0
	ASSERT_EQ(PostAt(5, kHigh), 0); // q1: nothing ahead of it there, 1 in q0
	dt_flush(t_, 0, 1);
	auto q0 = Cookies(Consume(0)), q1 = Cookies(Consume(1));
	EXPECT_EQ(q0.front(), 4u);
	EXPECT_EQ(q1.front(), 5u) << "a high record goes where no high one waits, "
				     "though that member has as many low ones";
}

// One test per policy: a backlog of low records, then a high one. The high
// record is placed before every low one still waiting in the broker (in a
// level whose ring has room, or - lifo - to the first consumer that goes
// idle), and comes first in that consumer's next batch; the low records keep
// their order.
class DeliverPrioPolicyTest : public DeliverPrioTest,
			      public ::testing::WithParamInterface<uint32_t> {};

TEST_P(DeliverPrioPolicyTest, AHighRecordOvertakesTheBacklogOfLowOnes)
{
	const uint32_t policy = GetParam();
	ASSERT_NO_FATAL_FAILURE(Make(2));
	ASSERT_NO_FATAL_FAILURE(Group(policy, {0, 1}));
	// Both wait, rings empty (lifo's first choice: idle members).
	dt_set_consumer(t_, 0, ONERING_CONSUMER_SLEEPING, 5);
	dt_set_consumer(t_, 1, ONERING_CONSUMER_SLEEPING, 9);
	constexpr uint64_t kLows = 40, kHighCookie = 1000;
	for (uint64_t c = 1; c <= kLows; c++)
		ASSERT_EQ(PostAt(c, 0, 7), 0) << c; // one flow: sticky keeps it on one queue
	dt_flush(t_, 0, 1);
	uint32_t waiting = dt_backlog_recs(t_, 0, 0);
	ASSERT_GE(waiting, kLows - 4) << "at most two slots a member took low records";
	ASSERT_EQ(PostAt(kHighCookie, kHigh, 8), 0);

	// Each member's consumer takes what it has, then waits (idle); the
	// poller's next loop places from the backlog, the highest level first.
	std::vector<uint64_t> seen[2];
	bool high_first = false, high_seen = false;
	for (unsigned round = 0; round < 4 * kLows && !high_seen; round++) {
		dt_next_loop(t_, 0);
		dt_flush(t_, 0, 2 + round);
		for (unsigned qi = 0; qi < 2 && !high_seen; qi++) {
			auto batch = Cookies(Consume(qi));
			for (size_t i = 0; i < batch.size(); i++) {
				if (batch[i] == kHighCookie) {
					high_seen = true;
					high_first = i == 0;
				}
			}
			seen[qi].insert(seen[qi].end(), batch.begin(), batch.end());
			dt_set_consumer(t_, qi, ONERING_CONSUMER_SLEEPING, 10 + round * 2 + qi);
		}
	}
	ASSERT_TRUE(high_seen);
	EXPECT_TRUE(high_first) << "the high record leads its consumer's batch";
	uint64_t lows_taken = 0;
	for (unsigned qi = 0; qi < 2; qi++) {
		uint64_t last = 0;
		for (uint64_t c : seen[qi]) {
			if (c == kHighCookie)
				continue;
			EXPECT_GT(c, last) << "low records of one flow keep their order";
			last = c;
			lows_taken++;
		}
	}
	EXPECT_LE(lows_taken, 4u + 4u) << "the high record came before the backlog drained";
	EXPECT_GT(dt_backlog_recs(t_, 0, 0), 0u) << "low records still wait behind it";
}

INSTANTIATE_TEST_SUITE_P(EveryPolicy, DeliverPrioPolicyTest,
			 ::testing::Values((uint32_t)ONERING_POLICY_RR,
					   (uint32_t)ONERING_POLICY_LEAST,
					   (uint32_t)ONERING_POLICY_STICKY,
					   (uint32_t)ONERING_POLICY_LIFO,
					   (uint32_t)ONERING_POLICY_LOCAL),
			 [](const ::testing::TestParamInfo<uint32_t> &param) {
				 return std::string(onering_policy_name(param.param));
			 });

// A high record that itself waits (every high ring full) is placed before
// the low ones as room comes back. Under lifo the low ones wait for it even
// where their own ring has room (what a level waits for may be the idle
// consumer every level shares).
TEST_F(DeliverPrioTest, ABackloggedHighRecordIsPlacedBeforeBackloggedLowOnes)
{
	ASSERT_NO_FATAL_FAILURE(Make(1));
	ASSERT_NO_FATAL_FAILURE(Group(ONERING_POLICY_LIFO, {0}));
	dt_set_consumer(t_, 0, ONERING_CONSUMER_RUNNING, 0); // lifo: at work
	ASSERT_EQ(PostAt(50, kHigh), 0);
	ASSERT_EQ(PostAt(51, kHigh), 0);
	ASSERT_EQ(PostAt(52, kHigh), 0); // its ring is full: waits
	for (uint64_t c = 1; c <= 2; c++)
		ASSERT_EQ(PostAt(c, 0), 0); // behind the waiting high one
	ASSERT_EQ(dt_backlog_recs(t_, 0, 0), 3u);
	dt_flush(t_, 0, 1);
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 3u) << "the low ones wait, their ring empty";
	EXPECT_EQ(Cookies(Consume(0, 1)), (U{50}));
	dt_set_consumer(t_, 0, ONERING_CONSUMER_SLEEPING, 7); // takes no more now
	dt_next_loop(t_, 0);
	dt_flush(t_, 0, 2);
	EXPECT_EQ(dt_backlog_recs(t_, 0, 0), 0u);
	U got = Cookies(Consume(0));
	std::sort(got.begin(), got.end());
	EXPECT_EQ(got, (U{1, 2, 51, 52}));
}

// A sticky flow that has records at two levels keeps its queue until both
// are consumed.
TEST_F(DeliverPrioTest, AStickyFlowIsHeldByItsRecordsAtEveryLevel)
{
	ASSERT_NO_FATAL_FAILURE(Make(2, 4));
	ASSERT_NO_FATAL_FAILURE(Group(ONERING_POLICY_STICKY, {0, 1}));
	ASSERT_EQ(PostAt(1, 0, 7), 0);     // flow 7: q0 (least, the first)
	ASSERT_EQ(PostAt(2, kHigh, 7), 0); // held: q0
	dt_flush(t_, 0, 1);
	struct onering_event e[1];
	ASSERT_EQ(dt_consume_level(t_, 0, kHigh, e, 1), 1); // the high one only
	// Flow 7's high record is consumed, its low one is not: it stays on q0,
	// though least alone would take the empty q1.
	ASSERT_EQ(PostAt(4, 0, 7), 0);
	dt_next_loop(t_, 0);
	dt_flush(t_, 0, 2);
	EXPECT_EQ(dt_level_visible(t_, 0, 0), 2) << "record 4 followed record 1 to q0";
}

// ---- a consumer draining at the same time (TSan: *TwoThread*) ------------------

// The poller's side (reports, flushes) on this thread, a consumer taking
// records on another: every notification reported reaches the consumer
// exactly once, merged or not, whatever the interleaving. No sleep, no
// timing: the consumer stops when it has counted them all.
TEST_F(DeliverQueueTest, TwoThreadEveryReportArrivesOnceWhileTheConsumerDrains)
{
	constexpr unsigned kReports = 30000;
	constexpr unsigned kSubs = 3;
	uint64_t got[kSubs] = {};
	uint64_t records = 0;
	std::atomic<bool> stop{false}, done{false};

	std::thread consumer([&] {
		struct Done {
			std::atomic<bool> &d;
			~Done() { d.store(true); }
		} guard{done}; // set however the consumer leaves (an ASSERT returns)
		struct onering_event e[8];
		uint64_t total = 0;
		while (total < kReports && !stop.load(std::memory_order_relaxed)) {
			int n = dt_consume(t_, 0, e, 8);
			ASSERT_GE(n, 0);
			for (int i = 0; i < n; i++) {
				ASSERT_GE(e[i].cookie, 100u);
				ASSERT_LT(e[i].cookie, 100u + kSubs);
				got[e[i].cookie - 100] += e[i].payload.u64[0];
				total += e[i].payload.u64[0];
				records++;
			}
		}
	});
	for (unsigned i = 0; i < kReports; i++) {
		dt_report(t_, 0, (int)(i % kSubs), EPOLLIN, 1, i);
		if (i % 5 == 4) {
			dt_next_loop(t_, 0);
			dt_flush(t_, 0, i);
		}
	}
	// What still waits for space goes in as the consumer makes room; then
	// the consumer takes what is published (if a record were lost it would
	// wait for it forever: stop it once the ring is drained).
	while (dt_pending_len(t_, 0) != 0 && !done.load()) {
		dt_next_loop(t_, 0);
		dt_flush(t_, 0, kReports);
	}
	dt_flush(t_, 0, kReports);
	while (!done.load() && !dt_ring_drained(t_, 0))
		std::this_thread::yield();
	stop.store(true);
	consumer.join();
	ASSERT_EQ(dt_pending_len(t_, 0), 0u);
	for (unsigned si = 0; si < kSubs; si++)
		EXPECT_EQ(got[si], kReports / kSubs) << "sub " << si;
	EXPECT_EQ(dt_queue_state(t_, 0), kQueueLive);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PUBLISHED), records);
	EXPECT_EQ(dt_qctr(t_, 0, ONERING_QC_PENDING), 0u);
	EXPECT_EQ(records + dt_qctr(t_, 0, ONERING_QC_COALESCED), (uint64_t)kReports)
		<< "each report is a record of its own or merged into one";
}

} // namespace
