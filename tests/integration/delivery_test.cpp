// SPDX-License-Identifier: MIT
// End to end: oneringd as a child, libonering in the test. Sources, modes,
// cancellation, overflow.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <chrono>
#include <map>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include "client/client.h"
#include "harness.h"
#include "numa/placement.h"
#include "shm/proto.h"

using onering_test::Broker;

namespace {

constexpr int64_t kMs = 1000 * 1000;
constexpr int64_t kEventTimeout = 5000 * kMs; // an event that should come, comes by then
constexpr int64_t kQuiet = 50 * kMs;          // how long "nothing more" is watched

class DeliveryTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		ASSERT_TRUE(broker_.Start());
		ASSERT_EQ(broker_.Attach(&att_), 0) << onering_last_error(nullptr);
		ASSERT_EQ(onering_queue_open(att_, nullptr, &q_), 0);
	}
	void TearDown() override { onering_detach(att_); }

	// Wait for one record; fails the test if none comes in time.
	onering_event WaitOne()
	{
		onering_event e{};
		int n = onering_wait(q_, &e, 1, 1, kEventTimeout);
		EXPECT_EQ(n, 1) << onering_strerror(n);
		return e;
	}
	// Records arriving within kQuiet.
	int Drain(std::vector<onering_event> *out = nullptr)
	{
		onering_event evs[64];
		int total = 0, n;
		while ((n = onering_wait(q_, evs, 1, 64, kQuiet)) > 0) {
			total += n;
			if (out)
				out->insert(out->end(), evs, evs + n);
		}
		return total;
	}

	Broker broker_;
	struct onering *att_ = nullptr;
	struct onering_queue *q_ = nullptr;
};

TEST_F(DeliveryTest, SocketpairReadinessArrivesWithCookie)
{
	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	onering_sub sub;
	ASSERT_EQ(onering_add(q_, sv[0], EPOLLIN, ONERING_EDGE, 0xabc, &sub), 0);
	ASSERT_EQ(write(sv[1], "x", 1), 1);
	onering_event e = WaitOne();
	EXPECT_EQ(e.cookie, 0xabcu);
	EXPECT_EQ(e.kind, ONERING_EV_FD);
	EXPECT_TRUE(e.events & EPOLLIN);
	EXPECT_EQ(e.sub_id, sub.id);
	EXPECT_EQ(e.sub_gen, sub.gen);
	EXPECT_GT(e.timestamp_ns, 0u);
	close(sv[1]); // hang-up is an edge too
	e = WaitOne();
	EXPECT_TRUE(e.events & (EPOLLHUP | EPOLLRDHUP | EPOLLIN));
	close(sv[0]);
}

TEST_F(DeliveryTest, PipeEventfdAndTimerfdEachDeliver)
{
	int p[2];
	ASSERT_EQ(pipe2(p, O_NONBLOCK), 0);
	int efd = eventfd(0, EFD_NONBLOCK);
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	onering_sub s1, s2, s3;
	ASSERT_EQ(onering_add(q_, p[0], EPOLLIN, ONERING_EDGE, 1, &s1), 0);
	ASSERT_EQ(onering_add(q_, efd, EPOLLIN, ONERING_EDGE, 2, &s2), 0);
	ASSERT_EQ(onering_add(q_, tfd, EPOLLIN, ONERING_EDGE, 3, &s3), 0);
	ASSERT_EQ(write(p[1], "x", 1), 1);
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	struct itimerspec its = {};
	its.it_value.tv_nsec = 1000 * 1000;
	ASSERT_EQ(timerfd_settime(tfd, 0, &its, nullptr), 0);
	std::map<uint64_t, int> seen;
	for (int i = 0; i < 3; i++)
		seen[WaitOne().cookie]++;
	EXPECT_EQ(seen[1], 1);
	EXPECT_EQ(seen[2], 1);
	EXPECT_EQ(seen[3], 1);
	close(p[0]);
	close(p[1]);
	close(efd);
	close(tfd);
}

TEST_F(DeliveryTest, ListeningSocketReportsAcceptReadiness)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	sockaddr_in sa = {};
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(l, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)), 0);
	socklen_t len = sizeof(sa);
	ASSERT_EQ(getsockname(l, reinterpret_cast<sockaddr *>(&sa), &len), 0);
	ASSERT_EQ(listen(l, 8), 0);
	onering_sub sub;
	ASSERT_EQ(onering_add(q_, l, EPOLLIN, ONERING_EDGE, 77, &sub), 0);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_EQ(connect(c, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)), 0);
	onering_event e = WaitOne();
	EXPECT_EQ(e.cookie, 77u);
	int a = accept(l, nullptr, nullptr);
	EXPECT_GE(a, 0) << "the record promised a connection to accept";
	close(a);
	close(c);
	close(l);
}

TEST_F(DeliveryTest, EdgeDeliversOncePerEdge)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	onering_sub sub;
	ASSERT_EQ(onering_add(q_, efd, EPOLLIN, ONERING_EDGE, 5, &sub), 0);
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	WaitOne();
	EXPECT_EQ(Drain(), 0) << "no new edge, no new record (data still unread)";
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	WaitOne();
	EXPECT_EQ(Drain(), 0);
	close(efd);
}

TEST_F(DeliveryTest, OneshotDeliversOnceUntilRearmed)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	onering_sub sub;
	ASSERT_EQ(onering_add(q_, efd, EPOLLIN, ONERING_ONESHOT, 6, &sub), 0);
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	WaitOne();
	ASSERT_EQ(eventfd_write(efd, 1), 0); // a new edge, but disarmed
	EXPECT_EQ(Drain(), 0);
	ASSERT_EQ(onering_rearm(q_, sub), 0); // still readable: reported again
	onering_event e = WaitOne();
	EXPECT_EQ(e.cookie, 6u);
	EXPECT_EQ(Drain(), 0);
	EXPECT_EQ(onering_rearm(q_, onering_sub{sub.id, sub.gen + 1}), -ENOENT);
	close(efd);
}

// Records of q up to and including the first with cookie `until` (which
// the caller made ready after everything it wants to know about): every
// readiness epoll saw before it is in the ring by then. Appends them to out.
static bool TakeUntil(onering_queue *q, uint64_t until, std::vector<onering_event> *out)
{
	onering_event evs[16];
	for (int round = 0; round < 100; round++) {
		int n = onering_wait(q, evs, 1, 16, kEventTimeout / 100);
		if (n < 0)
			return false;
		out->insert(out->end(), evs, evs + n);
		for (int i = 0; i < n; i++)
			if (evs[i].cookie == until) {
				// Anything published with it (one harvest, one publish).
				while ((n = onering_poll(q, evs, 16)) > 0)
					out->insert(out->end(), evs, evs + n);
				return true;
			}
	}
	return false;
}

// Made ready again, does sub (cookie) report? A sentinel source made ready
// after it bounds the wait: no fixed quiet period.
static int ReportsAgain(onering_queue *q, int efd, int sentinel_efd, uint64_t cookie,
			uint64_t sentinel_cookie)
{
	std::vector<onering_event> got;
	if (eventfd_write(efd, 1) < 0 || eventfd_write(sentinel_efd, 1) < 0 ||
	    !TakeUntil(q, sentinel_cookie, &got))
		return -1;
	int n = 0;
	for (auto &e : got)
		n += e.cookie == cookie;
	return n;
}

// DISPATCH on a queue without ack mode: disarmed after its record until
// onering_done() of that record (or onering_rearm()) re-arms it.
TEST_F(DeliveryTest, DispatchWithoutAckModeIsReArmedByDoneOrRearm)
{
	int efd = eventfd(0, EFD_NONBLOCK), sentinel = eventfd(0, EFD_NONBLOCK);
	onering_sub sub, ssub;
	ASSERT_EQ(onering_add(q_, efd, EPOLLIN, ONERING_DISPATCH, 21, &sub), 0);
	ASSERT_EQ(onering_add(q_, sentinel, EPOLLIN, ONERING_EDGE, 22, &ssub), 0);
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	onering_event e = WaitOne();
	ASSERT_EQ(e.cookie, 21u);
	EXPECT_EQ(ReportsAgain(q_, efd, sentinel, 21, 22), 0) << "disarmed until done";
	ASSERT_EQ(onering_done(q_, &e), 0);
	e = WaitOne(); // re-armed, still readable: reported again
	EXPECT_EQ(e.cookie, 21u);
	EXPECT_EQ(ReportsAgain(q_, efd, sentinel, 21, 22), 0) << "disarmed again";
	ASSERT_EQ(onering_rearm(q_, sub), 0);
	e = WaitOne();
	EXPECT_EQ(e.cookie, 21u);
	// Done on a record that is not DISPATCH: nothing to do, said so.
	onering_event s = e;
	s.sub_id = ssub.id;
	s.sub_gen = ssub.gen;
	EXPECT_EQ(onering_done(q_, &s), -EINVAL);
	// A record of a subscription deleted since: done, nothing re-armed.
	ASSERT_EQ(onering_del(q_, sub), 0);
	EXPECT_EQ(onering_done(q_, &e), 0);
	close(efd);
	close(sentinel);
}

// DISPATCH in ack mode: onering_done() re-arms and ends the flight;
// onering_rearm() refuses while the record is in flight (it would hand a
// second record of the source to another thread).
TEST_F(DeliveryTest, DispatchInAckModeIsReArmedByDoneNotByRearmInFlight)
{
	onering_queue_options o = {};
	o.flags = ONERING_QUEUE_ACK;
	onering_queue *qa;
	ASSERT_EQ(onering_queue_open(att_, &o, &qa), 0);
	int efd = eventfd(0, EFD_NONBLOCK), sentinel = eventfd(0, EFD_NONBLOCK);
	onering_sub sub, ssub;
	ASSERT_EQ(onering_add(qa, efd, EPOLLIN, ONERING_DISPATCH, 31, &sub), 0);
	ASSERT_EQ(onering_add(qa, sentinel, EPOLLIN, ONERING_EDGE, 32, &ssub), 0);
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	onering_event e;
	ASSERT_EQ(onering_wait(qa, &e, 1, 1, kEventTimeout), 1);
	ASSERT_EQ(e.cookie, 31u);
	EXPECT_EQ(onering_rearm(qa, sub), -EBUSY) << "its record is in flight";
	EXPECT_EQ(ReportsAgain(qa, efd, sentinel, 31, 32), 0) << "disarmed while in flight";
	ASSERT_EQ(onering_done(qa, &e), 0);
	EXPECT_EQ(onering_done(qa, &e), -EINVAL) << "done twice";
	ASSERT_EQ(onering_wait(qa, &e, 1, 1, kEventTimeout), 1);
	ASSERT_EQ(e.cookie, 31u) << "re-armed by done";
	EXPECT_EQ(onering_rearm(qa, sub), -EBUSY) << "the new record is in flight";
	ASSERT_EQ(onering_del(qa, sub), 1) << "in flight";
	ASSERT_EQ(onering_done(qa, &e), 0);
	EXPECT_EQ(onering_teardown(qa, sub, kEventTimeout), 0);
	onering_queue_close(qa);
	close(efd);
	close(sentinel);
}

TEST_F(DeliveryTest, LevelRedeliversThroughCollectionUntilRead)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	onering_sub sub;
	ASSERT_EQ(onering_add(q_, efd, EPOLLIN, ONERING_LEVEL, 8, &sub), 0);
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	onering_event e = WaitOne();
	EXPECT_TRUE(e.flags & ONERING_EVF_LEVEL);
	// Not read yet: the broker does not republish it ...
	onering_event evs[4];
	EXPECT_EQ(onering_poll(q_, evs, 4), 0);
	// ... the collection call finds it still ready and returns it again.
	EXPECT_EQ(onering_collect(q_), 1);
	ASSERT_EQ(onering_poll(q_, evs, 4), 1);
	EXPECT_EQ(evs[0].cookie, 8u);
	EXPECT_EQ(onering_collect(q_), 1);
	ASSERT_EQ(onering_poll(q_, evs, 4), 1);
	// Read it: the next collection re-arms it in the broker and returns nothing.
	eventfd_t v;
	ASSERT_EQ(eventfd_read(efd, &v), 0);
	EXPECT_EQ(onering_collect(q_), 0);
	EXPECT_EQ(Drain(), 0);
	// Ready again: the re-armed broker side reports it once more.
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	e = WaitOne();
	EXPECT_EQ(e.cookie, 8u);
	close(efd);
}

TEST_F(DeliveryTest, WaitCollectsLevelSourcesBeforeSleeping)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	onering_sub sub;
	ASSERT_EQ(onering_add(q_, efd, EPOLLIN, ONERING_LEVEL, 9, &sub), 0);
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	WaitOne();
	// Unread: every wait re-delivers it instead of sleeping forever.
	for (int i = 0; i < 3; i++) {
		onering_event e = WaitOne();
		EXPECT_EQ(e.cookie, 9u);
	}
	close(efd);
}

TEST_F(DeliveryTest, DeletedSubscriptionIsNeverReturnedEvenFromTheRing)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	int other = eventfd(0, EFD_NONBLOCK);
	onering_sub sub, keep;
	ASSERT_EQ(onering_add(q_, efd, EPOLLIN, ONERING_EDGE, 10, &sub), 0);
	ASSERT_EQ(onering_add(q_, other, EPOLLIN, ONERING_EDGE, 11, &keep), 0);
	// Fill the ring with records of sub without consuming them.
	for (int i = 0; i < 50; i++) {
		ASSERT_EQ(eventfd_write(efd, 1), 0);
		for (int spin = 0; spin < 1000000 && onering_pending(q_) <= i; spin++)
			onering_cpu_relax();
	}
	ASSERT_GT(onering_pending(q_), 0) << "records of sub are sitting in the ring";
	ASSERT_EQ(eventfd_write(other, 1), 0);
	ASSERT_EQ(onering_del(q_, sub), 0);
	// Everything left in the ring: only the other subscription's record
	// (waited for as long as an event may take; then nothing more).
	std::vector<onering_event> got(1);
	ASSERT_EQ(onering_wait(q_, got.data(), 1, 1, kEventTimeout), 1);
	Drain(&got);
	ASSERT_EQ(got.size(), 1u);
	EXPECT_EQ(got[0].cookie, 11u);
	EXPECT_EQ(onering_del(q_, sub), -ENOENT);
	// The broker dropped the source: more writes produce nothing.
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	EXPECT_EQ(Drain(), 0);
	close(efd);
	close(other);
}

TEST_F(DeliveryTest, ModChangesTheEventsWithoutASyscall)
{
	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	onering_sub sub;
	ASSERT_EQ(onering_add(q_, sv[0], EPOLLIN, ONERING_EDGE, 12, &sub), 0);
	EXPECT_EQ(Drain(), 0) << "writable, but only EPOLLIN was asked for";
	ASSERT_EQ(onering_mod(q_, sub, EPOLLIN | EPOLLOUT), 0);
	onering_event e = WaitOne();
	EXPECT_TRUE(e.events & EPOLLOUT);
	EXPECT_EQ(onering_mod(q_, sub, EPOLLET), -EINVAL);
	ASSERT_EQ(onering_del(q_, sub), 0);
	EXPECT_EQ(onering_mod(q_, sub, EPOLLIN), -ENOENT);
	close(sv[0]);
	close(sv[1]);
}

TEST_F(DeliveryTest, QueueMemoryIsOnTheConsumersNode)
{
	int node = onering_queue_node(q_);
	ASSERT_GE(node, 0) << "bound to the opener's node";
	EXPECT_EQ(node, onering_numa_node_of(q_->ev_seg.base)) << "events segment pages";
	EXPECT_EQ(node, onering_numa_node_of(q_->cons_seg.base)) << "consumer segment pages";
	const onering_seg_header *h = static_cast<const onering_seg_header *>(q_->ev_seg.base);
	EXPECT_EQ(h->node, (uint32_t)node) << "and the header says so";

	onering_queue_options o = {};
	o.flags = ONERING_QUEUE_NODE;
	o.node = (uint32_t)onering_numa_node_count() + 7;
	struct onering_queue *other = nullptr;
	EXPECT_EQ(onering_queue_open(att_, &o, &other), -EINVAL) << "no such node here";
	o.node = (uint32_t)node;
	ASSERT_EQ(onering_queue_open(att_, &o, &other), 0);
	EXPECT_EQ(onering_queue_node(other), node);
	onering_queue_close(other);
}

TEST_F(DeliveryTest, AddRejectsBadArguments)
{
	onering_sub sub;
	int efd = eventfd(0, 0);
	EXPECT_EQ(onering_add(q_, 12345, EPOLLIN, ONERING_EDGE, 0, &sub), -EBADF);
	EXPECT_EQ(onering_add(q_, efd, EPOLLIN, 7, 0, &sub), -EINVAL);
	EXPECT_EQ(onering_add(q_, efd, EPOLLET, ONERING_EDGE, 0, &sub), -EINVAL);
	int file = open("/proc/self/status", O_RDONLY); // epoll cannot watch it
	EXPECT_EQ(onering_add(q_, file, EPOLLIN, ONERING_EDGE, 0, &sub), -EINVAL);
	close(file);
	close(efd);
}

bool PollerCounters(const Broker &broker, uint64_t *ctr)
{
	return onering_test::StatsCounters(broker, ONERING_STATS_POLLER, ctr, ONERING_PC_NR);
}

// A request put on the submission ring while the poller sleeps wakes it
// (the kick), instead of waiting for its idle sleep to end.
TEST(KickTest, RearmWakesASleepingPoller)
{
	Broker broker;
	ASSERT_TRUE(broker.Start({"--idle-sleep-ms", "1000", "--idle-spin-us", "0"}));
	struct onering *att;
	struct onering_queue *q;
	ASSERT_EQ(broker.Attach(&att), 0);
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);
	int efd = eventfd(0, EFD_NONBLOCK);
	onering_sub sub;
	ASSERT_EQ(onering_add(q, efd, EPOLLIN, ONERING_ONESHOT, 3, &sub), 0);
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	onering_event e;
	ASSERT_EQ(onering_wait(q, &e, 1, 1, kEventTimeout), 1);
	// Disarmed and still readable. Wait (bounded: 5 s) until the poller
	// sleeps; under --idle backoff it yields a few times first, and a
	// yield on a loaded machine can take milliseconds.
	bool asleep = false;
	for (int i = 0; i < 50000 && !asleep; i++) {
		asleep = onering_atomic_load(q->poller_flags, onering_mo_acquire) &
			 ONERING_POLLER_NEED_WAKEUP;
		if (!asleep)
			usleep(100);
	}
	ASSERT_TRUE(asleep);
	uint64_t before[ONERING_PC_NR] = {};
	ASSERT_TRUE(PollerCounters(broker, before));
	auto t0 = std::chrono::steady_clock::now();
	ASSERT_EQ(onering_rearm(q, sub), 0);
	ASSERT_EQ(onering_wait(q, &e, 1, 1, kEventTimeout), 1);
	double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
	uint64_t after[ONERING_PC_NR] = {};
	ASSERT_TRUE(PollerCounters(broker, after));
	EXPECT_GT(after[ONERING_PC_KICKS], before[ONERING_PC_KICKS]) << "the client kicked";
	// The kick counter above is the proof; the time only has to be short
	// of the 5 s wait, with room for a loaded, sanitized run.
	EXPECT_LT(ms, 4000.0);
	RecordProperty("rearm_while_asleep_ms", std::to_string(ms));
	close(efd);
	onering_detach(att);
}

// A queue opened while its poller sleeps: the poller announced that sleep
// (NEED_WAKEUP and its number) in the queues it had, not in this one, so
// the new queue's first request must still wake it rather than wait out
// the 1000 ms idle sleep.
TEST(KickTest, FirstRequestOfAQueueOpenedDuringASleepWakesThePoller)
{
	Broker broker;
	ASSERT_TRUE(broker.Start({"--idle-sleep-ms", "1000", "--idle-spin-us", "0"}));
	struct onering *att;
	struct onering_queue *q1, *q2;
	ASSERT_EQ(broker.Attach(&att), 0);
	ASSERT_EQ(onering_queue_open(att, nullptr, &q1), 0);
	// Wait (bounded) for a sleep, seen in q1's poller_flags: NEED_WAKEUP is
	// set only by a sleep announced after q1 joined the poller (a wake
	// clears it). Not "a sleep other than the first seen": with nothing to
	// retry the block has no timeout, and the sleep seen first may be the
	// last one before q2's open.
	uint32_t now = onering_atomic_load(q1->poller_flags, onering_mo_acquire);
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
	while (!(now & ONERING_POLLER_NEED_WAKEUP) && std::chrono::steady_clock::now() < deadline) {
		sched_yield();
		now = onering_atomic_load(q1->poller_flags, onering_mo_acquire);
	}
	ASSERT_TRUE(now & ONERING_POLLER_NEED_WAKEUP) << "the poller never slept";
	// Now, during that sleep: a new queue and a timer armed through its
	// submission ring to fire at once.
	ASSERT_EQ(onering_queue_open(att, nullptr, &q2), 0);
	onering_sub timer;
	ASSERT_EQ(onering_timer_create(q2, 9, &timer), 0);
	auto t0 = std::chrono::steady_clock::now();
	ASSERT_EQ(onering_timer_arm(q2, timer, 1000, 0, 0), 0);
	onering_event e;
	ASSERT_EQ(onering_wait(q2, &e, 1, 1, kEventTimeout), 1);
	double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
	EXPECT_EQ(e.kind, ONERING_EV_TIMER);
	// Without a kick the arm waits until something else ends the sleep,
	// which has no timeout here (the wait above would fail at 5 s); the
	// bound leaves a sanitized run's slow first request room.
	EXPECT_LT(ms, 4000.0);
	RecordProperty("first_request_while_asleep_ms", std::to_string(ms));
	onering_detach(att);
}

// Counters of the (only) queue.
bool QueueCounters(const Broker &broker, uint64_t *ctr)
{
	return onering_test::StatsCounters(broker, ONERING_STATS_QUEUE, ctr, ONERING_QC_NR);
}

// A one-slot ring and 1,000 ready sources: nothing is lost, and the
// coalescing counters account for every readiness report.
TEST(OverflowTest, OneSlotRingWithThousandSourcesLosesNone)
{
	Broker broker;
	ASSERT_TRUE(broker.Start({"--idle-sleep-ms", "-1"}));
	struct onering *att;
	struct onering_queue *q;
	ASSERT_EQ(broker.Attach(&att), 0);
	onering_queue_options o = {};
	o.capacity = 1;
	ASSERT_EQ(onering_queue_open(att, &o, &q), 0);
	constexpr int kSources = 1000;
	std::vector<int> fds;
	for (int i = 0; i < kSources; i++) {
		int efd = eventfd(0, EFD_NONBLOCK);
		ASSERT_GE(efd, 0);
		onering_sub sub;
		ASSERT_EQ(onering_add(q, efd, EPOLLIN, ONERING_EDGE, (uint64_t)i, &sub), 0);
		fds.push_back(efd);
	}
	// Two edges per source, the second once the broker has made the first
	// pending (watched through its counters, bounded), so it must merge.
	uint64_t ctr[ONERING_QC_NR] = {};
	auto wait_counter = [&](unsigned idx, uint64_t want) {
		for (int i = 0; i < 2000; i++) { // 20 s at most
			if (QueueCounters(broker, ctr) && ctr[idx] >= want)
				return true;
			usleep(10000);
		}
		return false;
	};
	for (int fd : fds)
		ASSERT_EQ(eventfd_write(fd, 1), 0);
	ASSERT_TRUE(wait_counter(ONERING_QC_PENDING, kSources - 1)) << ctr[ONERING_QC_PENDING];
	for (int fd : fds)
		ASSERT_EQ(eventfd_write(fd, 1), 0);
	ASSERT_TRUE(wait_counter(ONERING_QC_COALESCED, kSources - 1)) << ctr[ONERING_QC_COALESCED];

	std::vector<int> seen(kSources, 0);
	uint64_t records = 0, reports = 0, coalesced_records = 0;
	int distinct = 0;
	onering_event e;
	// Until every source came and then 500 ms passed with nothing more: a
	// stall of the broker (a one-slot ring is a round trip per record, and
	// this runs under TSan too) is not taken for the end. 60 s at most.
	for (int waits = 0; waits < 120;) {
		if (onering_wait(q, &e, 1, 1, 500 * kMs) != 1) {
			waits++;
			if (distinct == kSources)
				break;
			continue;
		}
		ASSERT_LT(e.cookie, (uint64_t)kSources);
		distinct += seen[e.cookie]++ == 0;
		records++;
		reports += e.payload.u64[0];
		if (e.flags & ONERING_EVF_COALESCED) {
			coalesced_records++;
			EXPECT_GE(e.payload.u64[0], 2u);
		}
	}
	for (int i = 0; i < kSources; i++)
		EXPECT_GE(seen[i], 1) << "source " << i << " lost";
	EXPECT_GT(coalesced_records, 0u) << "pending sources merged their second edge";
	// Each write is at most one readiness report, and every report the
	// broker harvested is counted in some record.
	EXPECT_GE(reports, (uint64_t)kSources);
	EXPECT_LE(reports, 2u * kSources);
	EXPECT_GT(reports, records) << "merged reports are counted, not dropped";
	// The broker's counters say the same: one merge per extra report.
	ASSERT_TRUE(QueueCounters(broker, ctr));
	EXPECT_EQ(ctr[ONERING_QC_PUBLISHED], records);
	EXPECT_EQ(ctr[ONERING_QC_COALESCED], reports - records);
	EXPECT_EQ(ctr[ONERING_QC_PENDING], 0u);
	EXPECT_GT(ctr[ONERING_QC_DEFERRED], 0u);
	for (int fd : fds)
		close(fd);
	onering_detach(att);
}

} // namespace
