// SPDX-License-Identifier: MIT
// A queue nested in another event loop (issue 15): onering_queue_fd() in an
// epoll set beside a timerfd and a socket; every one of them wakes the loop;
// a consumer that never arms costs the broker no bell write; the broker's
// death makes the fd readable and the next poll says so.
#include <gtest/gtest.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include "client/client.h"
#include "harness.h"

using onering_test::Broker;

namespace {

constexpr int kTimeoutMs = 5000;

// The wakes counter of the queue with id `id` (STATS over the socket).
uint64_t QueueWakes(const Broker &broker, uint32_t id)
{
	for (const onering_msg &m : onering_test::StatsItems(broker))
		if (m.u.stats_item.what == ONERING_STATS_QUEUE && m.u.stats_item.id == id)
			return m.u.stats_item.counter[ONERING_QC_WAKES];
	ADD_FAILURE() << "no stats for queue " << id;
	return UINT64_MAX;
}

} // namespace

TEST(NestTest, AnEpollLoopWakesForARecordATimerfdAndASocket)
{
	onering_test::OneQueue one;
	ASSERT_TRUE(one.Start());
	struct onering_queue *q = one.q;
	int qfd = onering_queue_fd(q);
	ASSERT_GE(qfd, 0);
	EXPECT_EQ(onering_queue_fd(q), qfd) << "one fd per queue";

	int src = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); // the queue's source
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	int sp[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
	ASSERT_GE(src, 0);
	ASSERT_GE(tfd, 0);
	struct onering_sub sub;
	ASSERT_EQ(onering_add(q, src, EPOLLIN, ONERING_EDGE, 42, &sub), 0);

	int ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_GE(ep, 0);
	for (int fd : {qfd, tfd, sp[0]}) {
		struct epoll_event ev = {};
		ev.events = EPOLLIN;
		ev.data.fd = fd;
		ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	}

	// One thing at a time: the loop must wake for each, and for it alone.
	struct onering_event recs[8];
	for (int step = 0; step < 3; step++) {
		ASSERT_EQ(onering_poll(q, recs, 8), 0) << "nothing yet at step " << step;
		ASSERT_EQ(onering_queue_arm(q), 0) << "armed at step " << step;
		if (step == 0) {
			ASSERT_EQ(eventfd_write(src, 1), 0);
		} else if (step == 1) {
			struct itimerspec its = {};
			its.it_value.tv_nsec = 1000000;
			ASSERT_EQ(timerfd_settime(tfd, 0, &its, nullptr), 0);
		} else {
			ASSERT_EQ(write(sp[1], "x", 1), 1);
		}
		struct epoll_event out[4];
		int n = epoll_wait(ep, out, 4, kTimeoutMs);
		ASSERT_EQ(n, 1) << "step " << step << ": one source, one wake";
		int want = step == 0 ? qfd : step == 1 ? tfd : sp[0];
		EXPECT_EQ(out[0].data.fd, want) << "step " << step;
		if (step == 0) {
			ASSERT_EQ(onering_poll(q, recs, 8), 1);
			EXPECT_EQ(recs[0].cookie, 42u);
			struct epoll_event again;
			EXPECT_EQ(epoll_wait(ep, &again, 1, 0), 0) << "the poll emptied the bell";
		} else if (step == 1) {
			uint64_t v;
			ASSERT_EQ(read(tfd, &v, sizeof(v)), (ssize_t)sizeof(v));
		} else {
			char c;
			ASSERT_EQ(read(sp[0], &c, 1), 1);
		}
	}
	EXPECT_EQ(QueueWakes(one.broker, q->id), 1u) << "one ring, for the one record while armed";

	// A record already in the ring when the consumer arms: arm says 1 (poll
	// it), never 0 (which would leave the loop waiting on a quiet fd).
	ASSERT_EQ(eventfd_write(src, 2), 0);
	for (int i = 0; i < 5000 && onering_pending(q) == 0; i++)
		usleep(1000);
	ASSERT_GT(onering_pending(q), 0) << "the record did not come";
	EXPECT_EQ(onering_queue_arm(q), 1);
	EXPECT_EQ(onering_poll(q, recs, 8), 1);

	close(ep);
	close(src);
	close(tfd);
	close(sp[0]);
	close(sp[1]);
}

TEST(NestTest, AConsumerThatNeverArmsCostsNoBellWrite)
{
	onering_test::OneQueue one;
	ASSERT_TRUE(one.Start());
	struct onering_queue *q = one.q;
	ASSERT_GE(onering_queue_fd(q), 0);
	int src = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct onering_sub sub;
	ASSERT_EQ(onering_add(q, src, EPOLLIN, ONERING_EDGE, 7, &sub), 0);
	// Busy: 200 records, each taken by polling, never by arming.
	int got = 0;
	struct onering_event rec;
	for (int i = 0; i < 200; i++) {
		ASSERT_EQ(eventfd_write(src, 1), 0);
		int n = 0;
		for (long spin = 0; spin < 100000000 && (n = onering_poll(q, &rec, 1)) == 0; spin++)
			onering_cpu_relax();
		ASSERT_EQ(n, 1) << "record " << i;
		got++;
		uint64_t v;
		(void)!read(src, &v, sizeof(v));
	}
	EXPECT_EQ(got, 200);
	EXPECT_EQ(QueueWakes(one.broker, q->id), 0u) << "bell writes for a consumer that never armed";
	close(src);
}

TEST(NestTest, TheBrokersDeathMakesTheFdReadableAndThePollSaysSo)
{
	onering_test::OneQueue one;
	ASSERT_TRUE(one.Start());
	struct onering_queue *q = one.q;
	int qfd = onering_queue_fd(q);
	ASSERT_GE(qfd, 0);
	ASSERT_EQ(onering_queue_arm(q), 0);
	one.broker.Stop(SIGKILL);
	struct pollfd p = {qfd, POLLIN, 0};
	ASSERT_EQ(poll(&p, 1, kTimeoutMs), 1) << "the fd did not turn readable";
	struct onering_event rec;
	EXPECT_EQ(onering_poll(q, &rec, 1), -ECONNRESET);
	EXPECT_EQ(onering_queue_arm(q), -ECONNRESET);
}
