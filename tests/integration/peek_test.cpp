// SPDX-License-Identifier: MIT
// Zero-copy consumption: onering_peek() and onering_advance() (issue 12).
#include <gtest/gtest.h>

#include <chrono>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

using onering_test::Broker;
using onering_test::ExitGroup;
using onering_test::InstallSeccompKillAll;
using onering_test::OneQueue;

namespace {

// Wait (bounded: 5 s) until q holds n records.
bool WaitPending(onering_queue *q, int n)
{
	auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
	while (onering_pending(q) < n) {
		if (std::chrono::steady_clock::now() > end)
			return false;
		usleep(1000);
	}
	return true;
}

// Three eventfds subscribed with cookies 1, 2, 3 and each written once.
struct ThreeSources : OneQueue {
	int fd[3] = {-1, -1, -1};
	onering_sub sub[3];

	bool Fire()
	{
		for (int i = 0; i < 3; i++)
			if (eventfd_write(fd[i], 1) < 0)
				return false;
		return WaitPending(q, 3);
	}
	bool Setup()
	{
		if (!Start())
			return false;
		for (int i = 0; i < 3; i++) {
			fd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (fd[i] < 0 || onering_add(q, fd[i], POLLIN, ONERING_EDGE,
						     static_cast<uint64_t>(i + 1), &sub[i]) < 0)
				return false;
		}
		return Fire();
	}
	~ThreeSources()
	{
		for (int f : fd)
			if (f >= 0)
				close(f);
	}
};

// Read, so the compiler cannot see PeekWithoutSyscalls never returns: ASan
// makes a system call before calling a noreturn function.
static volatile bool exit_here = true;

// Under the filter: take n records of cookie 42 through peek and advance,
// then exit; any system call kills the process. Not instrumented by ASan
// (it checks the stack with a system call before noreturn calls).
__attribute__((no_sanitize("address"), noinline)) void PeekWithoutSyscalls(onering_queue *q,
									    long n)
{
	long got = 0;
	for (uint64_t spins = 0; got < n; spins++) {
		const onering_event *first;
		int k = onering_peek(q, &first, 256);
		if (k < 0)
			ExitGroup(5);
		for (int i = 0; i < k; i++)
			if (first[i].cookie != 42)
				ExitGroup(6);
		if (onering_advance(q, static_cast<unsigned>(k)) < 0)
			ExitGroup(7);
		got += k;
		if (spins > 50000000000ull) // bounded
			ExitGroup(8);
	}
	if (exit_here)
		ExitGroup(0);
}

} // namespace

// The run shows the records in place, in order; a peek without an advance
// shows the same run; the advance gives back exactly n.
TEST(PeekTest, ShowsTheRecordsInPlaceUntilAdvanced)
{
	ThreeSources t;
	ASSERT_TRUE(t.Setup());
	const onering_event *first = nullptr, *again = nullptr;
	ASSERT_EQ(onering_peek(t.q, &first, 8), 3);
	EXPECT_EQ(first[0].cookie, 1u);
	EXPECT_EQ(first[1].cookie, 2u);
	EXPECT_EQ(first[2].cookie, 3u);
	EXPECT_EQ(first[0].sub_id, t.sub[0].id);
	EXPECT_EQ(first[0].sub_gen, t.sub[0].gen);
	ASSERT_EQ(onering_peek(t.q, &again, 8), 3);
	EXPECT_EQ(again, first) << "not copied: the same slots";
	EXPECT_EQ(onering_pending(t.q), 3) << "peeked records are not consumed";
	EXPECT_EQ(onering_advance(t.q, 4), -EINVAL) << "beyond the run";
	ASSERT_EQ(onering_advance(t.q, 1), 0);
	ASSERT_EQ(onering_peek(t.q, &first, 1), 1) << "max is honoured";
	EXPECT_EQ(first[0].cookie, 2u);
	ASSERT_EQ(onering_advance(t.q, 1), 0);
	ASSERT_EQ(onering_peek(t.q, &first, 8), 1);
	EXPECT_EQ(first[0].cookie, 3u);
	ASSERT_EQ(onering_advance(t.q, 1), 0);
	EXPECT_EQ(onering_peek(t.q, &first, 8), 0);
	EXPECT_EQ(onering_pending(t.q), 0);
	EXPECT_EQ(onering_advance(t.q, 1), -EINVAL);
}

// Cancellation holds without a copy: a deleted subscription's records are
// never shown - stepped over at the head, and ending the run further on.
TEST(PeekTest, ADeletedSubscriptionsRecordsAreNeverShown)
{
	ThreeSources t;
	ASSERT_TRUE(t.Setup());
	ASSERT_EQ(onering_del(t.q, t.sub[1]), 0); // the middle one
	const onering_event *first = nullptr;
	ASSERT_EQ(onering_peek(t.q, &first, 8), 1) << "the run ends before the deleted record";
	EXPECT_EQ(first[0].cookie, 1u);
	ASSERT_EQ(onering_advance(t.q, 1), 0);
	ASSERT_EQ(onering_peek(t.q, &first, 8), 1) << "the deleted record is stepped over";
	EXPECT_EQ(first[0].cookie, 3u);
	ASSERT_EQ(onering_advance(t.q, 1), 0);
	// At the head: both remaining records of a deleted first source.
	eventfd_t v;
	for (int i : {0, 2})
		eventfd_read(t.fd[i], &v);
	ASSERT_EQ(eventfd_write(t.fd[0], 1), 0);
	ASSERT_EQ(eventfd_write(t.fd[2], 1), 0);
	ASSERT_TRUE(WaitPending(t.q, 2));
	ASSERT_EQ(onering_del(t.q, t.sub[0]), 0);
	ASSERT_EQ(onering_peek(t.q, &first, 8), 1);
	EXPECT_EQ(first[0].cookie, 3u);
	EXPECT_EQ(onering_event_sub(t.q, &first[0]).id, t.sub[2].id);
}

// poll and peek mix: what a peek showed and did not advance over is what
// the next poll takes; an ack-mode queue refuses peek.
TEST(PeekTest, MixesWithPollAndRefusesAckMode)
{
	ThreeSources t;
	ASSERT_TRUE(t.Setup());
	const onering_event *first = nullptr;
	ASSERT_EQ(onering_peek(t.q, &first, 8), 3);
	ASSERT_EQ(onering_advance(t.q, 2), 0);
	onering_event ev[4];
	ASSERT_EQ(onering_poll(t.q, ev, 4), 1);
	EXPECT_EQ(ev[0].cookie, 3u);
	EXPECT_EQ(onering_advance(t.q, 1), -EINVAL) << "the poll ended the peeked run";

	onering_queue_options o = {};
	o.flags = ONERING_QUEUE_ACK;
	onering_queue *aq = nullptr;
	ASSERT_EQ(onering_queue_open(t.att, &o, &aq), 0);
	EXPECT_EQ(onering_peek(aq, &first, 8), -EINVAL);
	onering_queue_close(aq);
}

// The consume path makes no system call: a child takes 100,000 records
// through peek/advance under a seccomp filter that kills it on any.
TEST(PeekTest, ConsumesUnderASeccompFilterThatKillsOnAnySyscall)
{
	Broker broker;
	ASSERT_TRUE(broker.Start({"--idle-sleep-ms", "-1"}));
	int efd = eventfd(0, EFD_NONBLOCK);
	int ready[2];
	ASSERT_EQ(pipe(ready), 0);
	constexpr long kRecords = 100000;
	pid_t child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		onering *att;
		onering_queue *q;
		onering_queue_options o = {};
		o.capacity = 4096;
		onering_sub sub;
		if (broker.Attach(&att) < 0 || onering_queue_open(att, &o, &q) < 0 ||
		    onering_add(q, efd, POLLIN, ONERING_EDGE, 42, &sub) < 0)
			_exit(3);
		if (write(ready[1], "r", 1) != 1 || InstallSeccompKillAll() < 0)
			_exit(4);
		PeekWithoutSyscalls(q, kRecords);
		_exit(9); // not reached
	}
	EXPECT_TRUE(onering_test::FeedUntilCleanExit(efd, child, ready[0], 120));
	close(efd);
	close(ready[0]);
	close(ready[1]);
}
