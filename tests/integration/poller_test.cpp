// SPDX-License-Identifier: MIT
// The poller's loop pays only for what it has (issue 12): with no client fd
// subscribed it makes no epoll_wait while awake; with one it asks epoll
// again; after the fd is gone it stops again. Counted per CPU-millisecond
// of the poller thread (perf's raw_syscalls:sys_enter tracepoint on its
// tid), not per wall-clock time: a loaded machine slows the loop, it does
// not change what one loop does.
#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <sstream>
#include <string>

#include "client/client.h"
#include "harness.h"

using onering_test::Broker;
using onering_test::BlockedInSyscall;
using onering_test::WaitBlockedIn;
using onering_test::CpuMs;
using onering_test::SyscallCounter;
using onering_test::ThreadNamed;

namespace {

// Open fds of pid.
int FdCount(pid_t pid)
{
	std::string dir = "/proc/" + std::to_string(pid) + "/fd";
	DIR *d = opendir(dir.c_str());
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

// Syscalls per CPU-ms of the poller while it spins for at least 100 ms of
// CPU (bounded: 20 s of wall time).
double SyscallsPerCpuMs(pid_t pid, pid_t tid, int counter)
{
	uint64_t c0 = 0, c1 = 0;
	EXPECT_EQ(read(counter, &c0, sizeof(c0)), (ssize_t)sizeof(c0));
	double t0 = CpuMs(pid, tid), t1 = t0;
	for (int i = 0; i < 2000 && t1 - t0 < 100; i++) {
		usleep(10000);
		t1 = CpuMs(pid, tid);
	}
	EXPECT_EQ(read(counter, &c1, sizeof(c1)), (ssize_t)sizeof(c1));
	EXPECT_GE(t1 - t0, 100) << "the poller did not get 100 ms of CPU in 20 s";
	return (double)(c1 - c0) / (t1 - t0 > 1 ? t1 - t0 : 1);
}

} // namespace

TEST(PollerLoopTest, AsksEpollOnlyWhileItHasClientFds)
{
	Broker broker;
	// Never block: the loop spins, so every system call it makes is a
	// loop's own, not a sleep's.
	ASSERT_TRUE(broker.Start({"--idle-sleep-ms", "-1"}));
	pid_t tid = ThreadNamed(broker.Pid(), "onering-poll0");
	ASSERT_GT(tid, 0) << "no thread named onering-poll0 in oneringd";
	int counter = SyscallCounter(tid);
	if (counter < 0)
		GTEST_SKIP() << "cannot count syscalls (perf_event_open on raw_syscalls:sys_enter: "
			     << strerror(-counter) << "; needs root and tracefs)";
	struct onering *att;
	ASSERT_EQ(broker.Attach(&att), 0);
	struct onering_queue *q;
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);

	// A queue, no fd: the spinning loop makes (next to) no system call.
	double idle = SyscallsPerCpuMs(broker.Pid(), tid, counter);
	EXPECT_LT(idle, 1.0) << "syscalls per CPU-ms with no client fd";

	// One eventfd subscribed: epoll is asked again (each loop, or one in 16
	// while other sources work), and its event is delivered.
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ASSERT_GE(efd, 0);
	struct onering_sub sub;
	ASSERT_EQ(onering_add(q, efd, EPOLLIN, ONERING_EDGE, 7, &sub), 0);
	int fds_with_sub = FdCount(broker.Pid());
	double with_fd = SyscallsPerCpuMs(broker.Pid(), tid, counter);
	EXPECT_GT(with_fd, 50.0) << "syscalls per CPU-ms with an fd subscribed";
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	struct onering_event ev;
	ASSERT_EQ(onering_wait(q, &ev, 1, 1, 5000000000ll), 1);
	EXPECT_EQ(ev.cookie, 7u);

	// Gone again: deleted, and finalized by the control thread (which closes
	// the broker's duplicate of the fd: wait for that, bounded, then count).
	ASSERT_GE(onering_del(q, sub), 0);
	for (int i = 0; i < 500 && FdCount(broker.Pid()) >= fds_with_sub; i++)
		usleep(10000);
	ASSERT_LT(FdCount(broker.Pid()), fds_with_sub) << "the broker kept the fd for 5 s";
	double after = SyscallsPerCpuMs(broker.Pid(), tid, counter);
	EXPECT_LT(after, 1.0) << "syscalls per CPU-ms after the fd was removed";

	close(efd);
	close(counter);
	onering_queue_close(q);
	onering_detach(att);
	EXPECT_EQ(broker.Stop(), 0);
}

// A client asleep in onering_wait makes no system call until something
// happens (issue 12: 0 wake-ups per second while idle): it sleeps in one
// ppoll on its queue's bell and its control socket, so neither a timer
// slice nor a liveness check wakes it; the broker's death still does, at
// once (DeadBrokerTest.SleepingClientLearnsWithin100ms).
TEST(ClientIdleTest, AsleepInWaitItMakesNoSystemCall)
{
	onering_test::OneQueue one;
	ASSERT_TRUE(one.Start());
	struct onering_queue *q = one.q;
	std::atomic<pid_t> tid{0};
	std::atomic<int> result{1};
	std::thread waiter([&] {
		tid = (pid_t)syscall(SYS_gettid);
		struct onering_event e;
		result = onering_wait(q, &e, 1, 1, 20000000000ll); // 20 s at most
	});
	for (int i = 0; i < 5000 && (tid.load() == 0 || onering_atomic_load(&q->db->state,
			onering_mo_acquire) != ONERING_CONSUMER_SLEEPING); i++)
		usleep(1000);
	ASSERT_EQ(onering_atomic_load(&q->db->state, onering_mo_acquire),
		  (uint32_t)ONERING_CONSUMER_SLEEPING);
	// SLEEPING is set before the re-check and the ppoll that follows it:
	// count from the moment the thread is inside that ppoll.
	ASSERT_TRUE(WaitBlockedIn(getpid(), tid.load(), SYS_ppoll))
		<< "the waiter never blocked in ppoll";
	int counter = SyscallCounter(tid.load());
	if (counter >= 0) {
		uint64_t c0 = 0, c1 = 0;
		EXPECT_EQ(read(counter, &c0, sizeof(c0)), (ssize_t)sizeof(c0));
		usleep(500000); // asleep: whatever the machine's load, no call
		EXPECT_EQ(read(counter, &c1, sizeof(c1)), (ssize_t)sizeof(c1));
		EXPECT_EQ(c1 - c0, 0u) << "system calls while asleep in onering_wait";
		close(counter);
	}
	// Then one record wakes it: an eventfd it watches turns readable.
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ASSERT_GE(efd, 0);
	struct onering_sub sub;
	ASSERT_EQ(onering_add(q, efd, EPOLLIN, ONERING_EDGE, 9, &sub), 0);
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	waiter.join();
	EXPECT_EQ(result.load(), 1) << "the bell did not wake it";
	close(efd);
	if (counter < 0)
		GTEST_SKIP() << "cannot count syscalls (perf_event_open on raw_syscalls:sys_enter: "
			     << strerror(-counter) << "; needs root and tracefs)";
}

// The poller's idle strategies (--idle, issue 12), told apart by what the
// poller thread does with nothing to do - its CPU time, its system calls,
// its sleeps and yields counters - never by wall-clock thresholds of work.
class PollerIdleTest : public ::testing::Test {
protected:
	// Start a broker with args and find its poller thread.
	void StartBroker(const std::vector<std::string> &args)
	{
		ASSERT_TRUE(broker_.Start(args));
		tid_ = ThreadNamed(broker_.Pid(), "onering-poll0");
		ASSERT_GT(tid_, 0) << "no thread named onering-poll0 in oneringd";
		usleep(50000); // past the start-up work and the first idle spin
	}
	// The poller's counters (ONERING_PC_*).
	std::vector<uint64_t> Counters()
	{
		std::vector<uint64_t> c(ONERING_PC_NR);
		EXPECT_TRUE(onering_test::StatsCounters(broker_, ONERING_STATS_POLLER, c.data(),
							ONERING_PC_NR));
		return c;
	}
	// The counters once the poller has settled: it is blocked in its ppoll
	// and its loops and sleeps counters stood still across 20 ms, with an
	// untimed sleep among them (bounded: 5 s at most). A poller descheduled
	// in its spin or yields stands still too, but is not in ppoll.
	std::vector<uint64_t> Settled()
	{
		std::vector<uint64_t> c0 = Counters();
		for (int i = 0; i < 250; i++) {
			usleep(20000);
			bool blocked = BlockedInSyscall(broker_.Pid(), tid_) == SYS_ppoll;
			std::vector<uint64_t> c = Counters();
			bool settled = blocked && c[ONERING_PC_LOOPS] == c0[ONERING_PC_LOOPS] &&
				       c[ONERING_PC_SLEEPS] == c0[ONERING_PC_SLEEPS];
			c0 = c;
			if (settled && c[ONERING_PC_SLEEPS_UNTIMED] > 0)
				break;
		}
		return c0;
	}
	// The poller's CPU time over `ms` of wall time, as a share of it.
	double CpuShare(int ms)
	{
		double c0 = CpuMs(broker_.Pid(), tid_);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		usleep((useconds_t)ms * 1000);
		double c1 = CpuMs(broker_.Pid(), tid_);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double wall = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		return (c1 - c0) / wall;
	}
	Broker broker_;
	pid_t tid_ = -1;
};

// overprovisioned: no spin, no yield - the first loop without work blocks,
// so the idle poller takes (next to) no CPU.
TEST_F(PollerIdleTest, OverprovisionedBlocksAtOnce)
{
	StartBroker({"--idle", "overprovisioned"});
	std::vector<uint64_t> c0 = Counters();
	double share = CpuShare(300);
	std::vector<uint64_t> c1 = Counters();
	EXPECT_LT(share, 0.2) << "CPU share of the idle overprovisioned poller";
	// A sleep is counted as it begins: an idle poller may be in the one
	// untimed block it began before c0.
	EXPECT_GT(c1[ONERING_PC_SLEEPS], 0u) << "it did not block";
	EXPECT_EQ(c1[ONERING_PC_YIELDS], 0u) << "overprovisioned yielded (it should block at once)";
	// One loop per wake-up: no spinning between the blocks.
	uint64_t loops = c1[ONERING_PC_LOOPS] - c0[ONERING_PC_LOOPS];
	uint64_t sleeps = c1[ONERING_PC_SLEEPS] - c0[ONERING_PC_SLEEPS];
	EXPECT_LE(loops, 2 * sleeps + 10) << loops << " loops for " << sleeps << " sleeps";
	EXPECT_EQ(broker_.Stop(), 0);
}

// busy: never blocks - its sleeps counter stays where it is and, with no
// client fd to ask epoll about, it makes no system call at all.
TEST_F(PollerIdleTest, BusyNeverBlocks)
{
	StartBroker({"--idle", "busy"});
	int counter = SyscallCounter(tid_);
	uint64_t s0 = 0, s1 = 0;
	if (counter >= 0) {
		EXPECT_EQ(read(counter, &s0, sizeof(s0)), (ssize_t)sizeof(s0));
	}
	std::vector<uint64_t> c0 = Counters();
	usleep(300000);
	std::vector<uint64_t> c1 = Counters();
	EXPECT_EQ(c1[ONERING_PC_SLEEPS], 0u) << "the busy poller blocked";
	EXPECT_EQ(c1[ONERING_PC_YIELDS], 0u);
	EXPECT_GT(c1[ONERING_PC_LOOPS], c0[ONERING_PC_LOOPS]);
	if (counter >= 0) {
		EXPECT_EQ(read(counter, &s1, sizeof(s1)), (ssize_t)sizeof(s1));
		EXPECT_EQ(s1 - s0, 0u) << "system calls of the idle busy poller";
		close(counter);
	}
	EXPECT_EQ(broker_.Stop(), 0);
}

// The bells' summary (ABI 1.9): a busy poller never sleeps, so it never
// makes the look at every ring that follows a sleep; requests (timer arms)
// from queues whose bells lie in several words of the page reach it through
// the summary alone.
TEST_F(PollerIdleTest, ABusyPollerFindsEveryWordThroughTheSummary)
{
	StartBroker({"--idle", "busy"});
	struct onering *att;
	ASSERT_EQ(broker_.Attach(&att), 0);
	const int kQueues = 130; // bits 64..193: words 1..3 of one page
	std::vector<struct onering_queue *> qs(kQueues, nullptr);
	std::vector<struct onering_sub> timers(kQueues);
	uint32_t words = 0;
	for (int i = 0; i < kQueues; i++) {
		struct onering_queue_options o = {};
		o.capacity = 64;
		o.sq_capacity = 64;
		ASSERT_EQ(onering_queue_open(att, &o, &qs[i]), 0) << onering_last_error(att);
		ASSERT_NE(qs[i]->bell_summary, nullptr) << "queue " << i << " rings no summary";
		words |= 1u << (qs[i]->bell_word - qs[i]->bell_summary);
		ASSERT_EQ(onering_timer_create(qs[i], (uint64_t)i, &timers[i]), 0);
	}
	EXPECT_EQ(words, 0xeu) << "the queues' bells are in words 1..3";
	uint64_t sleeps = Counters()[ONERING_PC_SLEEPS];
	// Every third queue arms its timer (1 ns: it fires at once), twice; the
	// arm is a request on its submission ring, found through its bell.
	for (int round = 0; round < 2; round++) {
		for (int i = round; i < kQueues; i += 3)
			ASSERT_EQ(onering_timer_arm(qs[i], timers[i], 1, 0, 0), 0);
		for (int i = round; i < kQueues; i += 3) {
			struct onering_event ev;
			int n = onering_wait(qs[i], &ev, 1, 1, 10ll * 1000 * 1000 * 1000);
			ASSERT_EQ(n, 1) << "queue " << i << "'s arm (bell word "
					<< (qs[i]->bell_word - qs[i]->bell_summary)
					<< ") was not taken in 10 s, round " << round;
			EXPECT_EQ(ev.kind, ONERING_EV_TIMER);
			EXPECT_EQ(ev.cookie, (uint64_t)i);
		}
	}
	EXPECT_EQ(Counters()[ONERING_PC_SLEEPS], sleeps) << "the busy poller slept: its look "
							    "at every ring may have found them";
	for (struct onering_queue *q : qs)
		onering_queue_close(q);
	onering_detach(att);
	EXPECT_EQ(broker_.Stop(), 0);
}

// A POST put on q's submission ring by hand, with q's bit set in its word
// and not in the summary: what a client leaves when it dies between the two
// ORs of onering_bell_ring(), or when another client of its user clears the
// summary (shm-abi.md, The bells).
static void PostWithoutSummary(struct onering_queue *q, uint64_t cookie)
{
	onering_request req = {};
	req.op = ONERING_REQ_POST;
	req.sub_id = onering_queue_group(q);
	req.user_data = cookie;
	ASSERT_EQ(onering_ring_enqueue_burst(&q->sqp, &req, 1), 1);
	onering_atomic_fetch_or(q->bell_word, q->bell_mask, onering_mo_seq_cst);
}

// A client of broker and a queue of its in a group of its own, whose bells
// page has a summary (the library rings it).
static void OpenSummaryQueue(Broker &broker, struct onering **att, struct onering_queue **q)
{
	struct onering_queue_options o = {};
	o.group = "stranded";
	ASSERT_EQ(broker.Attach(att), 0);
	ASSERT_EQ(onering_queue_open(*att, &o, q), 0);
	ASSERT_NE((*q)->bell_summary, nullptr);
}

// A busy poller never sleeps, so it never makes the look at every ring that
// follows a sleep; a bell whose word has no summary bit is still taken, by
// the poller's sweep of the summary pages' words (once a millisecond).
TEST_F(PollerIdleTest, ABusyPollerTakesABellItsSummaryDoesNotName)
{
	StartBroker({"--idle", "busy"});
	struct onering *att;
	struct onering_queue *q;
	ASSERT_NO_FATAL_FAILURE(OpenSummaryQueue(broker_, &att, &q));
	ASSERT_NO_FATAL_FAILURE(PostWithoutSummary(q, 4711));
	struct onering_event ev;
	ASSERT_EQ(onering_wait(q, &ev, 1, 1, 10ll * 1000 * 1000 * 1000), 1)
		<< "a post whose word the summary does not name was not taken in 10 s";
	EXPECT_EQ(ev.kind, ONERING_EV_USER);
	EXPECT_EQ(ev.cookie, 4711u);
	EXPECT_EQ(Counters()[ONERING_PC_SLEEPS], 0u);
	onering_queue_close(q);
	onering_detach(att);
	EXPECT_EQ(broker_.Stop(), 0);
}

// Such a bit must not keep a poller awake either: before it sleeps the
// poller looks at the words (its check after NEED_WAKEUP), finds the bit,
// gives it its summary bit and takes it on the next loop, then sleeps.
TEST_F(PollerIdleTest, AWordBitWithoutItsSummaryBitLetsThePollerSleep)
{
	StartBroker({});
	struct onering *att;
	struct onering_queue *q;
	ASSERT_NO_FATAL_FAILURE(OpenSummaryQueue(broker_, &att, &q));
	std::vector<uint64_t> c0 = Settled();
	ASSERT_EQ(BlockedInSyscall(broker_.Pid(), tid_), SYS_ppoll) << "the poller never settled";
	// The bit alone (no request), then a kick, so that the poller is awake
	// when it next looks at its bells.
	onering_atomic_fetch_or(q->bell_word, q->bell_mask, onering_mo_seq_cst);
	ASSERT_EQ(eventfd_write(q->kick_fd, 1), 0);
	std::vector<uint64_t> c1 = Settled();
	EXPECT_EQ(BlockedInSyscall(broker_.Pid(), tid_), SYS_ppoll)
		<< "the poller stayed awake: " << c1[ONERING_PC_LOOPS] - c0[ONERING_PC_LOOPS]
		<< " loops";
	EXPECT_GT(c1[ONERING_PC_SLEEPS], c0[ONERING_PC_SLEEPS]) << "it did not sleep again";
	EXPECT_EQ(onering_atomic_load(q->bell_word, onering_mo_relaxed) & q->bell_mask, 0u)
		<< "the bit was never taken";
	onering_queue_close(q);
	onering_detach(att);
	EXPECT_EQ(broker_.Stop(), 0);
}

// backoff (the default): spins, yields IDLE_YIELDS (4) times, then blocks;
// while it stays idle it blocks again after each wake-up without a new
// spin, so it takes little CPU.
TEST_F(PollerIdleTest, BackoffYieldsThenBlocks)
{
	StartBroker({});
	std::vector<uint64_t> c0 = Counters();
	double share = CpuShare(300);
	std::vector<uint64_t> c1 = Counters();
	EXPECT_GE(c1[ONERING_PC_YIELDS], 4u) << "backoff did not yield before its first block";
	EXPECT_GT(c1[ONERING_PC_SLEEPS], 0u) << "backoff did not block";
	EXPECT_LT(share, 0.2) << "CPU share of the idle backoff poller";
	// A burst of work starts the spin over: a request (a queue opens) and
	// the yields come again before the next block.
	struct onering *att;
	ASSERT_EQ(broker_.Attach(&att), 0);
	struct onering_queue *q;
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ASSERT_GE(efd, 0);
	struct onering_sub sub;
	ASSERT_EQ(onering_add(q, efd, EPOLLIN, ONERING_EDGE, 3, &sub), 0);
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	struct onering_event ev;
	ASSERT_EQ(onering_wait(q, &ev, 1, 1, 5000000000ll), 1);
	// Looked at until they come (5 s at most): on a loaded machine each
	// yield may cost the poller a scheduler slice.
	uint64_t yields = 0;
	for (int i = 0; i < 500 && yields < c1[ONERING_PC_YIELDS] + 4; i++) {
		usleep(10000);
		yields = Counters()[ONERING_PC_YIELDS];
	}
	EXPECT_GE(yields, c1[ONERING_PC_YIELDS] + 4) << "no yields after the work";
	close(efd);
	onering_queue_close(q);
	onering_detach(att);
	EXPECT_EQ(broker_.Stop(), 0);
}

// Idle with nothing to retry (issue 12): the poller blocks without a
// timeout - counted in sleeps_untimed - and nothing ends that block while
// nobody does anything: its loops counter stands still (a stats request
// is the control thread's, it does not wake the poller).
TEST_F(PollerIdleTest, IdleBlocksWithoutTimeout)
{
	StartBroker({});
	struct onering *att;
	ASSERT_EQ(broker_.Attach(&att), 0);
	struct onering_queue *q;
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0); // kicks: a new block begins
	// Past the open's kick and the spin after it: the last sleep began
	// untimed (bounded wait for that, no threshold on time).
	std::vector<uint64_t> c0 = Settled();
	ASSERT_GT(c0[ONERING_PC_SLEEPS_UNTIMED], 0u) << "the idle poller never blocked untimed";
	usleep(200000);
	std::vector<uint64_t> c1 = Counters();
	EXPECT_EQ(c1[ONERING_PC_LOOPS], c0[ONERING_PC_LOOPS]) << "something woke the idle poller";
	EXPECT_EQ(c1[ONERING_PC_SLEEPS], c0[ONERING_PC_SLEEPS]);
	// A client action still wakes it at once: a timer armed through the
	// submission ring (NEED_WAKEUP, the kick) fires.
	struct onering_sub t;
	ASSERT_EQ(onering_timer_create(q, 7, &t), 0);
	ASSERT_EQ(onering_timer_arm(q, t, 1000, 0, 0), 0);
	struct onering_event ev;
	ASSERT_EQ(onering_wait(q, &ev, 1, 1, 5000000000ll), 1);
	EXPECT_EQ(ev.kind, ONERING_EV_TIMER);
	EXPECT_EQ(ev.cookie, 7u);
	onering_queue_close(q);
	onering_detach(att);
	EXPECT_EQ(broker_.Stop(), 0);
}

// --coalesce-us (issue 12): a loop whose epoll harvest took more than one
// readiness event is followed by the wait, so an event that comes after it is harvested no
// sooner than the wait's end; a loop that found one event is not. Told by
// the broker's own stamps (timestamp_ns: CLOCK_MONOTONIC read after each
// harvest): the lower bound is the broker's sleep, which cannot end early,
// and the one check of "no wait" is made only when the test itself was
// quick enough to tell (a wait of 1 s against a reaction under 200 ms).
// A queue closed during the wait closes before it ends (1 s of margin).
TEST_F(PollerIdleTest, CoalescingWaitsAfterSeveralEventsNotAfterOne)
{
	const uint64_t kWaitNs = 1000000000ull; // --coalesce-us 1000000
	StartBroker({"--idle", "overprovisioned", "--coalesce-us", "1000000"});
	struct onering *att;
	ASSERT_EQ(broker_.Attach(&att), 0);
	struct onering_queue *q, *q2;
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);
	ASSERT_EQ(onering_queue_open(att, nullptr, &q2), 0); // closed during a wait
	const int kFds = 6;
	int efd[kFds];
	for (int i = 0; i < kFds; i++) {
		efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		ASSERT_GE(efd[i], 0);
		struct onering_sub sub;
		ASSERT_EQ(onering_add(q, efd[i], EPOLLIN, ONERING_EDGE, (uint64_t)i, &sub), 0);
	}
	auto one = [&](int i, uint64_t *stamp) {
		struct onering_event ev;
		ASSERT_EQ(eventfd_write(efd[i], 1), 0);
		ASSERT_EQ(onering_wait(q, &ev, 1, 1, 10000000000ll), 1) << "fd " << i;
		EXPECT_EQ(ev.cookie, (uint64_t)i);
		*stamp = ev.timestamp_ns;
	};

	// One event per loop: the next one is harvested without the wait.
	bool told = false;
	for (int attempt = 0; attempt < 10 && !told; attempt++) {
		uint64_t a, b;
		one(0, &a);
		uint64_t t = onering_test::NowNs();
		one(1, &b);
		if (t - a >= kWaitNs / 5)
			continue; // too slow to tell a wait from the test's own delay
		told = true;
		EXPECT_LT(b - a, kWaitNs) << "a loop that found one event was followed by the wait";
	}
	if (!told)
		std::fprintf(stderr, "note: the single-event case was not told (the test was slow)\n");

	// Several events in one loop: stopped, the broker finds them together.
	ASSERT_EQ(kill(broker_.Pid(), SIGSTOP), 0);
	ASSERT_TRUE(onering_test::AllThreadsStopped(broker_.Pid()));
	for (int i = 2; i < kFds; i++)
		ASSERT_EQ(eventfd_write(efd[i], 1), 0);
	ASSERT_EQ(kill(broker_.Pid(), SIGCONT), 0);
	struct onering_event evs[kFds];
	int got = 0;
	for (int tries = 0; tries < 100 && got < kFds - 2; tries++) {
		int k = onering_wait(q, evs + got, 1, (unsigned)(kFds - 2 - got), 100000000ll);
		ASSERT_GE(k, 0);
		got += k;
	}
	ASSERT_EQ(got, kFds - 2) << "records of the batch";
	for (int i = 1; i < got; i++)
		ASSERT_EQ(evs[i].timestamp_ns, evs[0].timestamp_ns) << "the batch took two loops";
	// The wait is RCU-offline: a queue's close (the control thread's grace
	// period) does not wait for it to end. Told when the close began well
	// inside the wait (as above: the test's own delay is not the broker's).
	uint64_t close_from = onering_test::NowNs();
	onering_queue_close(q2);
	if (close_from - evs[0].timestamp_ns < kWaitNs / 5)
		EXPECT_LT(onering_test::NowNs() - evs[0].timestamp_ns, kWaitNs)
			<< "a queue's close waited for the poller's wait";
	else
		std::fprintf(stderr, "note: the close during the wait was not told (the test was slow)\n");
	uint64_t after;
	one(0, &after);
	EXPECT_GE(after - evs[0].timestamp_ns, kWaitNs)
		<< "an event after a loop of " << got << " was harvested before the wait ended";

	for (int i = 0; i < kFds; i++)
		close(efd[i]);
	onering_queue_close(q);
	onering_detach(att);
	EXPECT_EQ(broker_.Stop(), 0);
}

// A completion-mode connection whose client holds every receive buffer
// waits without costing the idle broker anything: the poller blocks
// without a timeout (nothing to poll for: a buffer comes back by request,
// which wakes it), and the bytes left in the socket come in once buffers
// are given back.
TEST_F(PollerIdleTest, AConnectionWaitingForBuffersLeavesThePollerAsleep)
{
	StartBroker({});
	struct onering *att;
	ASSERT_EQ(broker_.Attach(&att), 0);
	struct onering_queue_options o = {};
	o.capacity = 64;
	o.stream_rx = 2;
	o.stream_buf = 4096;
	struct onering_queue *q;
	ASSERT_EQ(onering_queue_open(att, &o, &q), 0);
	int sp[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	struct onering_sub conn;
	ASSERT_EQ(onering_stream_add(q, sp[1], 1, &conn), 0);
	close(sp[1]);
	static char data[64 * 1024];
	memset(data, 'x', sizeof(data));
	ASSERT_EQ(write(sp[0], data, sizeof(data)), (ssize_t)sizeof(data));
	// Both buffers filled and held (the client reads no record yet), the
	// rest in the socket: settled when the loops stand still.
	std::vector<uint64_t> c0 = Settled();
	ASSERT_GT(c0[ONERING_PC_SLEEPS_UNTIMED], 0u) << "the poller never blocked untimed";
	usleep(200000);
	std::vector<uint64_t> c1 = Counters();
	EXPECT_EQ(c1[ONERING_PC_LOOPS], c0[ONERING_PC_LOOPS]) << "the poller polled a stalled "
								  "connection";
	// Give buffers back as their records come: every byte arrives.
	size_t got = 0;
	struct onering_event ev[8];
	for (int i = 0; i < 10000 && got < sizeof(data); i++) {
		int n = onering_wait(q, ev, 1, 8, 1000ll * 1000 * 1000);
		ASSERT_GT(n, 0) << got << " bytes came";
		for (int k = 0; k < n; k++) {
			if (ev[k].kind != ONERING_EV_STREAM ||
			    ev[k].payload.stream.op != ONERING_STREAM_RECV)
				continue;
			ASSERT_GT(ev[k].payload.stream.status, 0);
			got += (size_t)ev[k].payload.stream.status;
			ASSERT_EQ(onering_stream_done(q, &ev[k]), 0);
		}
	}
	EXPECT_EQ(got, sizeof(data));
	close(sp[0]);
	onering_queue_close(q);
	onering_detach(att);
	EXPECT_EQ(broker_.Stop(), 0);
}

// Posts i = 0, 1, ... to group until the submission ring stays full (-EAGAIN
// twice, 2 ms apart: the poller had time to take what it could); returns
// how many were posted (-1 if a post failed otherwise).
static int PostUntilFull(struct onering_queue *q, uint32_t group, int tag = 0)
{
	int i;
	for (i = 0; i < 1000; i++) {
		int data[2] = {tag, i};
		int r = onering_post(q, group, (uint64_t)i, data, sizeof(data), 0);
		if (r == -EAGAIN) {
			usleep(2000);
			r = onering_post(q, group, (uint64_t)i, data, sizeof(data), 0);
		}
		if (r == -EAGAIN)
			return i;
		if (r != 0) {
			ADD_FAILURE() << "post " << i << ": " << onering_strerror(r);
			return -1;
		}
	}
	ADD_FAILURE() << "1000 posts and never -EAGAIN";
	return -1;
}

// An overprovisioned poller with work waiting on a consumer sleeps between
// its retries: over 200 ms, a few loops per sleep at most - not a spin.
static void ExpectNoSpin(const std::function<std::vector<uint64_t>()> &counters)
{
	usleep(50000); // past the posting
	std::vector<uint64_t> c0 = counters();
	usleep(200000);
	std::vector<uint64_t> c1 = counters();
	uint64_t loops = c1[ONERING_PC_LOOPS] - c0[ONERING_PC_LOOPS];
	uint64_t sleeps = c1[ONERING_PC_SLEEPS] - c0[ONERING_PC_SLEEPS];
	EXPECT_GT(sleeps, 0u) << "the poller never slept";
	EXPECT_LE(loops, 3 * sleeps + 20) << loops << " loops, " << sleeps << " sleeps";
}

// Posts to a group whose backlog is full wait in the posters' submission
// rings (back-pressure). The poller must not spin on them meanwhile: it
// wakes at its retry interval for the records waiting for ring space, and
// takes the posts again once the backlog has moved - the posters it listed
// (up to 16), or every ring when more wait.
static void PostersWaitForAFullBacklog(Broker &broker, int nposters,
				       const std::function<std::vector<uint64_t>()> &counters)
{
	struct onering *att;
	ASSERT_EQ(broker.Attach(&att), 0);
	struct onering_queue_options mo = {};
	mo.capacity = 16;
	mo.group = "g";
	struct onering_queue *member;
	ASSERT_EQ(onering_queue_open(att, &mo, &member), 0) << onering_last_error(att);
	uint32_t gid = onering_queue_group(member);
	std::vector<struct onering_queue *> posters(nposters);
	std::vector<int> posted(nposters), got(nposters);
	int total = 0, seen = 0;
	for (int p = 0; p < nposters; p++) {
		struct onering_queue_options po = {};
		po.sq_capacity = 64;
		ASSERT_EQ(onering_queue_open(att, &po, &posters[p]), 0) << onering_last_error(att);
		// Until its ring is full too: the member's ring and the backlog
		// (16 each) fill first, then up to 64 wait in its submission ring.
		posted[p] = PostUntilFull(posters[p], gid, p);
		ASSERT_GE(posted[p], 64);
		total += posted[p];
	}
	ExpectNoSpin(counters);
	// The member reads: every post comes, in order per poster.
	struct onering_event ev[16];
	for (int i = 0; i < 100000 && seen < total; i++) {
		int n = onering_wait(member, ev, 1, 16, 1000ll * 1000 * 1000);
		ASSERT_GT(n, 0) << seen << " of " << total << " posts came";
		for (int k = 0; k < n; k++, seen++) {
			int data[2];
			memcpy(data, ev[k].payload.user.data, sizeof(data));
			ASSERT_TRUE(data[0] >= 0 && data[0] < nposters);
			ASSERT_EQ(data[1], got[data[0]]++) << "poster " << data[0] << " out of order";
		}
	}
	EXPECT_EQ(seen, total);
	for (struct onering_queue *q : posters)
		onering_queue_close(q);
	onering_queue_close(member);
	onering_detach(att);
}

TEST_F(PollerIdleTest, PostsWaitingForAFullGroupBacklogLeaveThePollerAsleep)
{
	StartBroker({"--idle", "overprovisioned", "--group", "g:policy=rr,backlog=16"});
	PostersWaitForAFullBacklog(broker_, 1, [this] { return Counters(); });
	EXPECT_EQ(broker_.Stop(), 0);
}

TEST_F(PollerIdleTest, MorePostersWaitingThanThePollerListsAreTakenToo)
{
	// One poller (one core), so that all 20 wait on it: more than it lists.
	StartBroker({"--idle", "overprovisioned", "--cores", "0", "--group",
		     "g:policy=rr,backlog=16"});
	PostersWaitForAFullBacklog(broker_, 20, [this] { return Counters(); });
	EXPECT_EQ(broker_.Stop(), 0);
}

// A post to a group that no longer exists comes back as a POST_REFUSED record
// in the poster's own ring; while that ring is full the posts wait in its
// submission ring. The poller sleeps meanwhile (overprovisioned) or keeps
// looping (busy), and either way takes them once the poster reads.
static void RefusedPostsWaitForTheirOwnRing(Broker &broker, bool busy,
					    const std::function<std::vector<uint64_t>()> &counters)
{
	struct onering *att;
	ASSERT_EQ(broker.Attach(&att), 0);
	struct onering_queue_options o = {};
	o.capacity = 16;
	o.sq_capacity = 64;
	struct onering_queue *q;
	ASSERT_EQ(onering_queue_open(att, &o, &q), 0) << onering_last_error(att);
	// A group the library knows but that is gone (it ended with its one
	// member): every post to it is refused by the broker.
	struct onering_queue_options go = {};
	go.group = "gone";
	struct onering_queue *member;
	ASSERT_EQ(onering_queue_open(att, &go, &member), 0) << onering_last_error(att);
	const uint32_t kNoGroup = onering_queue_group(member);
	onering_queue_close(member);
	int posted = PostUntilFull(q, kNoGroup);
	ASSERT_GT(posted, 16);
	if (!busy)
		ExpectNoSpin(counters);
	struct onering_event ev[16];
	int got = 0;
	for (int i = 0; i < 10000 && got < posted; i++) {
		int n = onering_wait(q, ev, 1, 16, 1000ll * 1000 * 1000);
		ASSERT_GT(n, 0) << got << " of " << posted << " refusals came";
		for (int k = 0; k < n; k++, got++) {
			ASSERT_EQ(ev[k].kind, ONERING_EV_CONTROL);
			ASSERT_EQ(ev[k].payload.control.code, (uint32_t)ONERING_CTL_POST_REFUSED);
			ASSERT_EQ(ev[k].payload.control.flow, (uint64_t)got) << "out of order";
		}
	}
	EXPECT_EQ(got, posted);
	onering_queue_close(q);
	onering_detach(att);
}

TEST_F(PollerIdleTest, RefusedPostsWaitingForTheirRingLeaveAnOverprovisionedPollerAsleep)
{
	StartBroker({"--idle", "overprovisioned"});
	RefusedPostsWaitForTheirOwnRing(broker_, false, [this] { return Counters(); });
	EXPECT_EQ(broker_.Stop(), 0);
}

TEST_F(PollerIdleTest, RefusedPostsWaitingForTheirRingAreTakenByABusyPoller)
{
	StartBroker({"--idle", "busy"});
	RefusedPostsWaitForTheirOwnRing(broker_, true, [this] { return Counters(); });
	EXPECT_EQ(broker_.Stop(), 0);
}

// A timer re-armed over and over (a keep-alive reset on every message) costs
// the broker a bounded number of heap entries, not one per re-arm: old
// entries are dropped when they outnumber the live ones (source_timers.c).
TEST_F(PollerIdleTest, ReArmingOneTimerOverAndOverKeepsItsHeapSmall)
{
	StartBroker({});
	struct onering *att;
	ASSERT_EQ(broker_.Attach(&att), 0);
	struct onering_queue *q;
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);
	struct onering_sub t, last;
	ASSERT_EQ(onering_timer_create(q, 1, &t), 0);
	ASSERT_EQ(onering_timer_create(q, 2, &last), 0);
	const uint64_t kHour = 3600ull * 1000 * 1000 * 1000;
	const int kArms = 100000;
	int armed = 0;
	for (long tries = 0; armed < kArms && tries < 100L * kArms; tries++) {
		int r = onering_timer_arm(q, t, kHour, 0, 0);
		if (r == -EAGAIN) { // the submission ring is full: the poller drains it
			sched_yield();
			continue;
		}
		ASSERT_EQ(r, 0);
		armed++;
	}
	ASSERT_EQ(armed, kArms);
	// Requests are applied in order: once `last` fires, every re-arm was.
	// (The ring may still be full of them: -EAGAIN until the poller drains.)
	int r = -EAGAIN;
	for (long tries = 0; r == -EAGAIN && tries < 100L * kArms; tries++)
		if ((r = onering_timer_arm(q, last, 1000, 0, 0)) == -EAGAIN)
			sched_yield();
	ASSERT_EQ(r, 0);
	struct onering_event ev;
	ASSERT_EQ(onering_wait(q, &ev, 1, 1, 5000000000ll), 1);
	EXPECT_EQ(ev.cookie, 2u);
	uint64_t entries = Counters()[ONERING_PC_TIMER_ENTRIES];
	EXPECT_GE(entries, 1u) << "the hour-long timer is armed";
	EXPECT_LE(entries, 2u * 2 + 1024) << "one entry per re-arm kept";
	onering_queue_close(q);
	onering_detach(att);
	EXPECT_EQ(broker_.Stop(), 0);
}

// A watched word wakes nobody when stored to, so while one is watched the
// idle poller keeps a timeout (--idle-sleep-ms) and still sees the store.
TEST_F(PollerIdleTest, WatchedWordKeepsTheIdleTimeout)
{
	StartBroker({});
	struct onering *att;
	ASSERT_EQ(broker_.Attach(&att), 0);
	onering_queue_options o = {};
	o.words = 1;
	struct onering_queue *q;
	ASSERT_EQ(onering_queue_open(att, &o, &q), 0);
	uint32_t n = 0;
	ONERING_ATOMIC(uint32_t) *w = onering_queue_words(q, &n);
	ASSERT_NE(w, nullptr);
	ASSERT_EQ(onering_word_watch(q, 0, 9), 0);
	// Let the poller apply the watch and go idle: blocks with a timeout.
	std::vector<uint64_t> c0 = Counters();
	for (int i = 0; i < 500; i++) {
		usleep(10000);
		std::vector<uint64_t> c = Counters();
		if (c[ONERING_PC_SLEEPS] > c0[ONERING_PC_SLEEPS] + 2)
			break;
	}
	std::vector<uint64_t> c1 = Counters();
	EXPECT_GT(c1[ONERING_PC_SLEEPS], c0[ONERING_PC_SLEEPS] + 2) << "the watching poller slept once";
	onering_atomic_store(&w[0], 5u, onering_mo_release);
	struct onering_event ev;
	ASSERT_EQ(onering_wait(q, &ev, 1, 1, 5000000000ll), 1);
	EXPECT_EQ(ev.kind, ONERING_EV_WORD);
	EXPECT_EQ(ev.payload.word.new_value, 5u);
	onering_queue_close(q);
	onering_detach(att);
	EXPECT_EQ(broker_.Stop(), 0);
}

// A request on one of 1,000 idle queues is taken at once (the record is
// waited for, bounded; no sleep decides it): its client kicks the poller
// out of its untimed block.
TEST_F(PollerIdleTest, RequestOnOneOfAThousandIdleQueuesIsTaken)
{
	const int nq = 1000;
	struct rlimit rl;
	ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	StartBroker({"--max-queues", "2000"});
	struct onering *att;
	ASSERT_EQ(broker_.Attach(&att), 0);
	std::vector<struct onering_queue *> qs;
	onering_queue_options o = {};
	o.capacity = 64;
	for (int i = 0; i < nq; i++) {
		struct onering_queue *q;
		int r = onering_queue_open(att, &o, &q);
		if (r == -EMFILE || r == -ENFILE)
			break;
		ASSERT_EQ(r, 0) << "queue " << i;
		qs.push_back(q);
	}
	if (qs.size() < (size_t)nq)
		GTEST_SKIP() << "only " << qs.size() << " queues (fd limit " << rl.rlim_cur << ")";
	struct onering_queue *q = qs[nq * 3 / 4];
	struct onering_sub t;
	ASSERT_EQ(onering_timer_create(q, 11, &t), 0);
	for (int i = 0; i < 500 && Counters()[ONERING_PC_QUEUES] != (uint64_t)nq; i++)
		usleep(10000);
	EXPECT_EQ(Counters()[ONERING_PC_QUEUES], (uint64_t)nq);
	usleep(50000); // past the spin: the request finds the poller blocked
	ASSERT_EQ(onering_timer_arm(q, t, 1000, 0, 0), 0);
	struct onering_event ev;
	ASSERT_EQ(onering_wait(q, &ev, 1, 1, 5000000000ll), 1);
	EXPECT_EQ(ev.cookie, 11u);
	for (struct onering_queue *x : qs)
		onering_queue_close(x);
	onering_detach(att);
	EXPECT_EQ(broker_.Stop(), 0);
}

// onering_wait's idle strategies (onering_queue_options.idle, $ONERING_IDLE):
// what one wait that times out did on its thread - its CPU time and how many
// ppoll (sleeps), sched_yield and poll (liveness checks) it made.
class ClientWaitIdleTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		ASSERT_TRUE(broker_.Start());
		ASSERT_EQ(broker_.Attach(&att_), 0);
	}
	void TearDown() override
	{
		onering_detach(att_);
	}
	struct onering_queue *Open(uint32_t idle, uint64_t spin_ns)
	{
		onering_queue_options o = {};
		o.idle = idle;
		o.spin_ns = spin_ns;
		struct onering_queue *q = nullptr;
		EXPECT_EQ(onering_queue_open(att_, &o, &q), 0);
		return q;
	}
	struct Wait {
		int result;
		double cpu_ms;
		long ppolls, yields, polls; // -1: cannot count
	};
	// One onering_wait(q, 1 record, timeout_ns) on a thread of its own,
	// counted from just before the call to its return.
	Wait RunWait(struct onering_queue *q, int64_t timeout_ns)
	{
		std::atomic<pid_t> tid{0};
		std::atomic<bool> go{false};
		Wait w = {1, 0, -1, -1, -1};
		std::thread t([&] {
			tid = (pid_t)syscall(SYS_gettid);
			while (!go.load())
				usleep(100);
			struct timespec c0, c1;
			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
			struct onering_event ev;
			w.result = onering_wait(q, &ev, 1, 1, timeout_ns);
			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
			w.cpu_ms = (double)(c1.tv_sec - c0.tv_sec) * 1e3 +
				   (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
		});
		while (tid.load() == 0)
			usleep(100);
		int fd[3] = {SyscallCounter(tid, "syscalls/sys_enter_ppoll"),
			     SyscallCounter(tid, "syscalls/sys_enter_sched_yield"),
			     SyscallCounter(tid, "syscalls/sys_enter_poll")};
		go = true;
		t.join();
		long *out[3] = {&w.ppolls, &w.yields, &w.polls};
		for (int i = 0; i < 3; i++) {
			uint64_t n = 0;
			if (fd[i] >= 0 && read(fd[i], &n, sizeof(n)) == (ssize_t)sizeof(n))
				*out[i] = (long)n;
			if (fd[i] >= 0)
				close(fd[i]);
		}
		return w;
	}
	// A queue with this strategy and spin budget, one wait on it that times
	// out, the queue closed.
	Wait TimedOutWait(uint32_t idle, uint64_t spin_ns, int64_t timeout_ns)
	{
		Wait w = {1, 0, -1, -1, -1};
		struct onering_queue *q = Open(idle, spin_ns);
		if (!q)
			return w;
		w = RunWait(q, timeout_ns);
		EXPECT_EQ(w.result, 0) << "not a timeout";
		onering_queue_close(q);
		return w;
	}
	Broker broker_;
	struct onering *att_ = nullptr;
};

#define SKIP_UNCOUNTED(w)                                                                    \
	if ((w).ppolls < 0)                                                                  \
	GTEST_SKIP() << "cannot count syscalls (tracefs, perf_event_open)"

// overprovisioned: no spin (a 1 s spin budget is not used) and no yield -
// the first empty look at the ring sleeps, in one ppoll until the timeout.
TEST_F(ClientWaitIdleTest, OverprovisionedSleepsWithoutSpinning)
{
	Wait w = TimedOutWait(ONERING_IDLE_OVERPROVISIONED, 1000000000ull, 300000000ll);
	EXPECT_LT(w.cpu_ms, 50.0) << "CPU ms of a 300 ms overprovisioned wait";
	SKIP_UNCOUNTED(w);
	EXPECT_EQ(w.ppolls, 1) << "one sleep until the timeout";
	EXPECT_EQ(w.yields, 0);
}

// backoff: the spin budget, then one ppoll that sleeps until the timeout (no
// sched_yield: see wait_records).
TEST_F(ClientWaitIdleTest, BackoffSpinsThenSleeps)
{
	Wait w = TimedOutWait(ONERING_IDLE_BACKOFF, 1000000ull, 200000000ll);
	SKIP_UNCOUNTED(w);
	EXPECT_EQ(w.yields, 0) << "a yield can hand a shared core away for a tick";
	EXPECT_EQ(w.ppolls, 1);
}

// busy: never sleeps (no ppoll, no yield) until the timeout; it looks at the
// broker's socket about once a millisecond (poll with no timeout).
TEST_F(ClientWaitIdleTest, BusyNeverSleeps)
{
	Wait w = TimedOutWait(ONERING_IDLE_BUSY, 0, 200000000ll);
	SKIP_UNCOUNTED(w);
	EXPECT_EQ(w.ppolls, 0) << "the busy wait slept";
	EXPECT_EQ(w.yields, 0);
	EXPECT_GE(w.polls, 1) << "it never looked at the broker's socket";
	EXPECT_LE(w.polls, 210) << "more than one look at the socket per ms";
}

// busy still notices the broker's death (its liveness look), bounded.
TEST_F(ClientWaitIdleTest, BusyNoticesTheBrokersDeath)
{
	struct onering_queue *q = Open(ONERING_IDLE_BUSY, 0);
	ASSERT_NE(q, nullptr);
	std::thread killer([&] {
		usleep(100000);
		kill(broker_.Pid(), SIGKILL);
	});
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct onering_event ev;
	int r = onering_wait(q, &ev, 1, 1, 10000000000ll); // 10 s at most
	clock_gettime(CLOCK_MONOTONIC, &t1);
	killer.join();
	EXPECT_EQ(r, -ECONNRESET);
	EXPECT_LT(t1.tv_sec - t0.tv_sec, 5) << "the busy wait did not notice the death";
	onering_queue_close(q);
	broker_.Stop(); // reaps the killed broker
}

// The option wins; without it $ONERING_IDLE chooses; a wrong name there is
// backoff (logged); a number outside the enum is refused.
TEST_F(ClientWaitIdleTest, EnvironmentChoosesWhenTheOptionDoesNot)
{
	struct Case {
		const char *env;
		uint32_t option, want;
	} cases[] = {
		{nullptr, 0, ONERING_IDLE_BACKOFF},
		{"busy", 0, ONERING_IDLE_BUSY},
		{"overprovisioned", 0, ONERING_IDLE_OVERPROVISIONED},
		{"busy", ONERING_IDLE_OVERPROVISIONED, ONERING_IDLE_OVERPROVISIONED},
		{"fastest", 0, ONERING_IDLE_BACKOFF},
		{"", 0, ONERING_IDLE_BACKOFF},
	};
	for (auto &c : cases) {
		if (c.env)
			setenv("ONERING_IDLE", c.env, 1);
		else
			unsetenv("ONERING_IDLE");
		struct onering_queue *q = Open(c.option, 0);
		ASSERT_NE(q, nullptr);
		EXPECT_EQ(q->idle_mode, c.want) << (c.env ? c.env : "(unset)") << " " << c.option;
		onering_queue_close(q);
	}
	unsetenv("ONERING_IDLE");
	onering_queue_options o = {};
	o.idle = ONERING_IDLE_OVERPROVISIONED + 1;
	struct onering_queue *q = nullptr;
	EXPECT_EQ(onering_queue_open(att_, &o, &q), -EINVAL);
	EXPECT_EQ(q, nullptr);
}
