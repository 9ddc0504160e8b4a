// SPDX-License-Identifier: MIT
// Producer and consumer running at once over one queue's memfd segments:
// in two processes (the real setting) and in two threads of one process
// (the variant ThreadSanitizer can see). Every record carries a sequence
// number; the consumer checks there is no loss, no duplicate, no reorder.
// The doorbell variants put the consumer to sleep at random points and
// fail on any wake-up that does not come (every wait is bounded).
#include <gtest/gtest.h>

#include <sched.h>

#include <cerrno>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <random>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "shm/abi.h"
#include "shm/doorbell.h"
#include "shm/ring.h"
#include "shm/segment.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kCapacity = 1024;
constexpr int64_t kSleepTimeoutNs = 5LL * 1000 * 1000 * 1000; // a lost wake-up, if reached
constexpr auto kDeadline = std::chrono::seconds(120);         // whole-test bound

uint64_t RecordsFromEnv(uint64_t fallback)
{
	const char *s = std::getenv("ONERING_STRESS_RECORDS");
	return s ? std::strtoull(s, nullptr, 10) : fallback;
}

// Consumer verdicts (also the child's exit status).
enum Verdict { kOk = 0, kGap = 1, kRingFault = 2, kLostWakeup = 3, kTimeout = 4, kSetup = 5 };

struct Queue {
	onering_seg ev{};
	onering_seg cons{};
	onering_events_ctl *ectl = nullptr;
	onering_consumer_ctl *cctl = nullptr;
	onering_doorbell *db = nullptr;
	onering_event *slots = nullptr;

	void Create(uint64_t start)
	{
		ASSERT_EQ(onering_seg_create(&ev, "stress-ev", ONERING_SEG_EVENTS,
					     onering_events_seg_size(kCapacity), ONERING_NODE_ANY,
					     1, nullptr, ONERING_SEG_NO_HUGETLB), 0);
		ASSERT_EQ(onering_seg_create(&cons, "stress-cons", ONERING_SEG_CONSUMER,
					     onering_consumer_seg_size(16), ONERING_NODE_ANY, 1,
					     nullptr, ONERING_SEG_NO_HUGETLB), 0);
		Bind(static_cast<char *>(ev.base), static_cast<char *>(cons.base));
		ectl->ev_capacity = kCapacity;
		onering_ring_shared_init(&ectl->ev_tail_pos, &cctl->ev_head_pos, start);
		onering_doorbell_init(db);
		ASSERT_EQ(onering_seg_seal(&ev, true), 0); // the consumer may only read it
		ASSERT_EQ(onering_seg_seal(&cons, false), 0);
	}
	void Bind(char *ev_base, char *cons_base)
	{
		ectl = reinterpret_cast<onering_events_ctl *>(ev_base + ONERING_EVENTS_CTL_OFFSET);
		slots = reinterpret_cast<onering_event *>(ev_base + ONERING_EVENTS_SLOTS_OFFSET);
		cctl = reinterpret_cast<onering_consumer_ctl *>(cons_base +
								 ONERING_CONSUMER_CTL_OFFSET);
		db = reinterpret_cast<onering_doorbell *>(cons_base + ONERING_DOORBELL_OFFSET);
	}
	void Destroy()
	{
		onering_seg_destroy(&ev);
		onering_seg_destroy(&cons);
	}
};

struct Consumer {
	onering_ring_consumer ring{};
	onering_doorbell *db = nullptr;
	uint64_t sleeps = 0;
};

// The consumer loop: checks every sequence number; with sleepy, goes through
// the doorbell handshake at random points. Runs in a child or a thread.
int Consume(Consumer *c, uint64_t records, bool sleepy, uint32_t seed)
{
	std::mt19937 rng(seed);
	onering_event buf[32];
	uint64_t expect = 0;
	auto deadline = Clock::now() + kDeadline;
	uint32_t idle = 0;

	while (expect < records) {
		int n = onering_ring_dequeue_burst(&c->ring, buf, 1 + rng() % 32);
		if (n < 0)
			return kRingFault;
		for (int i = 0; i < n; i++) {
			if (buf[i].cookie != expect || buf[i].payload.u64[0] != ~expect)
				return kGap;
			expect++;
		}
		if (sleepy && n == 0) {
			for (uint32_t k = rng() % 64; k; k--) // vary the phase
				onering_cpu_relax();
			uint32_t ticket = onering_doorbell_prepare(c->db);
			if (onering_ring_consumer_count(&c->ring) != 0) { // the re-check
				onering_doorbell_cancel(c->db);
				continue;
			}
			c->sleeps++;
			int r = onering_doorbell_sleep(c->db, ticket, kSleepTimeoutNs);
			if (r == -ETIMEDOUT && expect < records)
				return kLostWakeup; // records were due and no one woke us
			continue;
		}
		if (n == 0 && (++idle & 0xfff) == 0) {
			if (Clock::now() > deadline)
				return kTimeout;
			sched_yield(); /* a shared machine: let a descheduled peer run */
		}
	}
	return kOk;
}

// The producer loop: bursts of random size with a sequence in each record,
// published once per burst, doorbell rung after each publish when sleepy.
// Returns false on a ring fault, when the consumer is gone (peer_gone) or
// when the deadline passes.
bool Produce(onering_ring_producer *p, onering_doorbell *db, uint64_t records, bool sleepy,
	     uint32_t seed, uint64_t *wakes, const std::function<bool()> &peer_gone)
{
	std::mt19937 rng(seed);
	onering_event buf[32] = {};
	uint64_t next = 0;
	auto deadline = Clock::now() + kDeadline;
	uint32_t spins = 0;

	while (next < records) {
		uint32_t n = 1 + rng() % 32;
		if (n > records - next)
			n = static_cast<uint32_t>(records - next);
		for (uint32_t i = 0; i < n; i++) {
			buf[i].cookie = next + i;
			buf[i].payload.u64[0] = ~(next + i);
		}
		int put = onering_ring_enqueue_burst(p, buf, n);
		if (put < 0)
			return false;
		next += static_cast<uint64_t>(put);
		if (sleepy && put > 0) {
			if (onering_doorbell_ring(db))
				(*wakes)++;
			// Wait until the consumer has drained the ring, so the next
			// burst can only reach it through the doorbell: every burst is
			// a chance to lose a wake-up. The pause before the next publish
			// varies where in the handshake the consumer is.
			while (onering_ring_producer_count(p) > 0)
				if ((++spins & 0xfff) == 0 &&
				    (peer_gone() || Clock::now() > deadline))
					return false;
			for (uint32_t k = rng() % (rng() % 4 ? 64 : 4096); k; k--)
				onering_cpu_relax();
		}
		if (put == 0 && (++spins & 0xfff) == 0) {
			if (peer_gone() || Clock::now() > deadline)
				return false;
			sched_yield(); /* a shared machine: let a descheduled peer run */
		}
	}
	return true;
}

class RingStressTest : public ::testing::TestWithParam<bool> {};

// Two processes: the parent produces, a forked child attaches the memfds
// (read-only events segment, writable consumer segment) and consumes.
void RunCrossProcess(uint64_t records, bool sleepy)
{
	const uint64_t start = UINT64_MAX - 5000; // cross the 2^64 wrap early
	Queue q;
	ASSERT_NO_FATAL_FAILURE(q.Create(start));

	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		onering_seg ev{}, cons{};
		int ev_fd = dup(q.ev.fd), cons_fd = dup(q.cons.fd);
		munmap(q.ev.base, q.ev.size); // drop the inherited mappings:
		munmap(q.cons.base, q.cons.size); // use only what attach gives
		if (onering_seg_attach(&ev, ev_fd, ONERING_SEG_EVENTS, false, nullptr, 0) < 0 ||
		    onering_seg_attach(&cons, cons_fd, ONERING_SEG_CONSUMER, true, nullptr, 0) < 0)
			_exit(kSetup);
		Queue view;
		view.Bind(static_cast<char *>(ev.base), static_cast<char *>(cons.base));
		Consumer c;
		c.db = view.db;
		if (onering_ring_consumer_init(&c.ring, &view.ectl->ev_tail_pos,
					       &view.cctl->ev_head_pos, view.slots,
					       view.ectl->ev_capacity, start) < 0)
			_exit(kSetup);
		int verdict = Consume(&c, records, sleepy, 7);
		if (verdict == kOk && sleepy && c.sleeps == 0)
			verdict = kSetup; // the sleep path was never exercised
		_exit(verdict);
	}

	onering_ring_producer p;
	ASSERT_EQ(onering_ring_producer_init(&p, &q.ectl->ev_tail_pos, &q.cctl->ev_head_pos,
					     q.slots, kCapacity, start), 0);
	uint64_t wakes = 0;
	int status = 0;
	bool reaped = false;
	bool produced = Produce(&p, q.db, records, sleepy, 11, &wakes, [&] {
		reaped = waitpid(pid, &status, WNOHANG) == pid;
		return reaped;
	});
	if (!produced && !reaped)
		kill(pid, SIGKILL); // the child cannot finish; stop it by pid
	if (!reaped) {
		ASSERT_EQ(waitpid(pid, &status, 0), pid);
	}
	q.Destroy();
	EXPECT_TRUE(produced) << "producer: ring fault or deadline (fault "
			      << onering_ring_fault_str(p.fault) << ")";
	ASSERT_TRUE(WIFEXITED(status)) << "consumer died, status " << status;
	EXPECT_EQ(WEXITSTATUS(status), kOk)
		<< "consumer verdict " << WEXITSTATUS(status)
		<< " (1 gap/reorder, 2 ring fault, 3 lost wake-up, 4 timeout, 5 setup)";
	if (sleepy) {
		EXPECT_GT(wakes, 0u);
	}
}

// Two threads of one process over the same segments: what TSan checks.
void RunTwoThreads(uint64_t records, bool sleepy)
{
	const uint64_t start = UINT64_MAX - 5000;
	Queue q;
	ASSERT_NO_FATAL_FAILURE(q.Create(start));
	Consumer c;
	c.db = q.db;
	ASSERT_EQ(onering_ring_consumer_init(&c.ring, &q.ectl->ev_tail_pos, &q.cctl->ev_head_pos,
					     q.slots, kCapacity, start), 0);
	onering_ring_producer p;
	ASSERT_EQ(onering_ring_producer_init(&p, &q.ectl->ev_tail_pos, &q.cctl->ev_head_pos,
					     q.slots, kCapacity, start), 0);
	int verdict = -1;
	std::atomic<bool> consumer_done{false};
	std::thread consumer([&] {
		verdict = Consume(&c, records, sleepy, 7);
		consumer_done.store(true);
	});
	uint64_t wakes = 0;
	bool produced = Produce(&p, q.db, records, sleepy, 11, &wakes,
				[&] { return consumer_done.load(); });
	consumer.join(); // bounded: Consume has its own deadline and sleep timeout
	q.Destroy();
	EXPECT_EQ(verdict, kOk)
		<< "(1 gap/reorder, 2 ring fault, 3 lost wake-up, 4 timeout, 5 setup)";
	EXPECT_TRUE(produced);
	if (sleepy) {
		EXPECT_GT(c.sleeps, 0u);
		EXPECT_GT(wakes, 0u);
	}
}

TEST(RingCrossProcessTest, MovesAllRecordsWithoutLossDuplicateOrReorder)
{
	RunCrossProcess(RecordsFromEnv(100000000), false);
}

TEST(RingCrossProcessTest, SleepingConsumerIsAlwaysWoken)
{
	RunCrossProcess(RecordsFromEnv(100000000) / 500, true);
}

TEST(RingTwoThreadTest, MovesAllRecordsWithoutLossDuplicateOrReorder)
{
	RunTwoThreads(RecordsFromEnv(100000000) / 10, false);
}

TEST(RingTwoThreadTest, SleepingConsumerIsAlwaysWoken)
{
	RunTwoThreads(RecordsFromEnv(100000000) / 500, true);
}

} // namespace
