// SPDX-License-Identifier: MIT
// Groups and load balancing, with consumer processes: rr, least, sticky,
// lifo (wake order, wake-one, max_running), NUMA spill and strict on a
// synthetic two-node topology, run-time tuning, and a consumer killed with
// records in its ring.
//
// Each consumer is a child process (fork) that attaches on its own and
// logs what it receives into a shared anonymous mapping; the test process
// posts user events (or owns fd sources) and checks the logs and the
// broker's counters. Every child is stopped by pid; every wait is bounded.
#include "harness.h"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <sstream>
#include <jansson.h>
#include <map>
#include <set>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>

#include "shm/abi.h"

using onering_test::NowNs;
using onering_test::Broker;
using onering_test::RunCommand;

namespace {

constexpr int kMaxConsumers = 8;
constexpr uint64_t kMaxLog = 1u << 16;

struct LogRec {
	uint64_t flow, seq, cookie, ts_broker, poll_start, t_recv, t_done;
	uint32_t flags, consumer, kind, acked; // acked: onering_done() returned 0 (ack mode)
	uint32_t batch_k, batch_n;             // its place in the wait's batch: k of n
	uint32_t written;                      // 1 once the fields above are (release)
};

// Shared between the test and its consumer children.
struct Shared {
	std::atomic<int> go[kMaxConsumers];
	std::atomic<int> opened[kMaxConsumers];
	std::atomic<int> hold[kMaxConsumers]; // 1: do not consume
	std::atomic<int> hold_after_next[kMaxConsumers]; // 1: hold once a record is taken
	std::atomic<int> stop;
	std::atomic<int> failed;
	std::atomic<uint64_t> count[kMaxConsumers];
	std::atomic<uint64_t> nlog;
	LogRec log[kMaxLog];
};

struct ConsumerOpts {
	const char *group = "g";
	uint32_t capacity = 4096;
	uint64_t spin_ns = 0;  // 0: library default
	uint64_t work_ns = 0;  // busy time per record
	unsigned batch = 64;
	int node = -1;
	bool hold = false;     // start held
	bool ack = false;      // ack mode: onering_done() after each record
	// onering_wait's timeout. Each timeout leaves the member RUNNING (not
	// idle, for lifo) until it waits again: tests of who is idle use long
	// ones, so that no post meets that window.
	int64_t wait_ns = 5 * 1000 * 1000;
};

class Balance : public ::testing::Test {
protected:
	void SetUp() override
	{
		sh_ = static_cast<Shared *>(mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
						 MAP_SHARED | MAP_ANONYMOUS, -1, 0));
		ASSERT_NE(sh_, MAP_FAILED);
	}

	void TearDown() override
	{
		StopConsumers();
		munmap(sh_, sizeof(Shared));
	}

	// Fork consumer i; it waits for go[i] (set now unless deferred).
	void StartConsumer(int i, const ConsumerOpts &o, bool go_now = true)
	{
		sh_->hold[i] = o.hold ? 1 : 0;
		pid_t pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0)
			_exit(ConsumerMain(i, o));
		pids_[i] = pid;
		if (go_now)
			Go(i);
	}

	void Go(int i)
	{
		sh_->go[i] = 1;
		ASSERT_TRUE(WaitFor([&] { return sh_->opened[i].load() != 0; }))
			<< "consumer " << i << " did not open its queue";
		ASSERT_GT(sh_->opened[i].load(), 0) << "consumer " << i << " failed to attach";
	}

	void StopConsumers()
	{
		sh_->stop = 1;
		for (auto &p : pids_) {
			if (p <= 0)
				continue;
			int status = 0;
			bool gone = false;
			for (int k = 0; k < 500 && !gone; k++) { // 5 s
				gone = waitpid(p, &status, WNOHANG) == p;
				if (!gone)
					usleep(10000);
			}
			if (!gone) {
				kill(p, SIGKILL);
				waitpid(p, &status, 0);
			}
			p = -1;
		}
	}

	// Poll a condition every ms for at most timeout_ms.
	template <class F> static bool WaitFor(F cond, int timeout_ms = 10000)
	{
		for (int i = 0; i < timeout_ms; i++) {
			if (cond())
				return true;
			usleep(1000);
		}
		return cond();
	}

	int ConsumerMain(int i, const ConsumerOpts &o)
	{
		uint64_t deadline = NowNs() + 60ull * 1000000000;
		while (!sh_->go[i] && !sh_->stop && NowNs() < deadline)
			usleep(200);
		struct onering *att = nullptr;
		if (broker_.Attach(&att) < 0) {
			sh_->opened[i] = -1;
			return 1;
		}
		struct onering_queue_options qo = {};
		qo.capacity = o.capacity;
		qo.spin_ns = o.spin_ns;
		qo.group = o.group;
		if (o.node >= 0) {
			qo.flags = ONERING_QUEUE_NODE;
			qo.node = (uint32_t)o.node;
		}
		if (o.ack)
			qo.flags |= ONERING_QUEUE_ACK;
		struct onering_queue *q = nullptr;
		if (onering_queue_open(att, &qo, &q) < 0) {
			sh_->opened[i] = -1;
			onering_detach(att);
			return 1;
		}
		sh_->opened[i] = 1;
		struct onering_event ev[256];
		while (!sh_->stop && NowNs() < deadline) {
			if (sh_->hold[i]) {
				usleep(200);
				continue;
			}
			uint64_t t0 = NowNs();
			int n = onering_wait(q, ev, 1, o.batch, o.wait_ns);
			if (n < 0) {
				sh_->failed = 1;
				break;
			}
			uint64_t t1 = NowNs();
			for (int k = 0; k < n; k++) {
				uint64_t at = sh_->nlog.fetch_add(1);
				if (at >= kMaxLog)
					continue;
				LogRec &r = sh_->log[at];
				r.flow = ev[k].kind == ONERING_EV_USER ? ev[k].payload.user.flow : ev[k].sub_id;
				memcpy(&r.seq, ev[k].payload.user.data, sizeof(r.seq));
				r.cookie = ev[k].cookie;
				r.ts_broker = ev[k].timestamp_ns;
				r.poll_start = t0;
				r.t_recv = t1;
				r.flags = ev[k].flags;
				r.kind = ev[k].kind;
				r.consumer = (uint32_t)i;
				r.batch_k = (uint32_t)k;
				r.batch_n = (uint32_t)n;
				__atomic_store_n(&r.written, 1u, __ATOMIC_RELEASE);
				if (o.work_ns) {
					uint64_t until = NowNs() + o.work_ns;
					while (NowNs() < until)
						;
				}
				if (o.ack) {
					if (onering_done(q, &ev[k]) == 0)
						r.acked = 1;
					else
						sh_->failed = 1;
				}
				r.t_done = NowNs();
			}
			// Before the count moves: the test sees it holding by then.
			if (n > 0 && sh_->hold_after_next[i].exchange(0))
				sh_->hold[i] = 1;
			sh_->count[i] += (uint64_t)n;
		}
		onering_queue_close(q);
		onering_detach(att);
		return 0;
	}

	// A producer: attachment, a private queue (on node, if >= 0: its posts
	// are decided by that node's poller), the group's id.
	void Producer(const char *group = "g", int node = -1)
	{
		struct onering_queue_options qo = {};
		if (node >= 0) {
			qo.flags = ONERING_QUEUE_NODE;
			qo.node = (uint32_t)node;
		}
		ASSERT_EQ(broker_.Attach(&patt_), 0);
		ASSERT_EQ(onering_queue_open(patt_, &qo, &pq_), 0);
		ASSERT_EQ(onering_group_id(patt_, group, &gid_), 0);
		ASSERT_NE(gid_, 0u);
	}

	void ProducerClose()
	{
		onering_queue_close(pq_);
		onering_detach(patt_);
		pq_ = nullptr;
		patt_ = nullptr;
	}

	// Post one user event (flow, seq), retrying (5 s at most) while the
	// ring is full. Returns 0 or the error.
	int Post(uint64_t flow, uint64_t seq)
	{
		uint64_t deadline = NowNs() + 5ull * 1000000000;
		int r;
		while ((r = onering_post(pq_, gid_, flow, &seq, sizeof(seq), seq)) == -EAGAIN &&
		       NowNs() < deadline)
			onering_cpu_relax();
		return r;
	}

	uint64_t Total(int n)
	{
		uint64_t t = 0;
		for (int i = 0; i < n; i++)
			t += sh_->count[i];
		return t;
	}

	// Every stats item the broker sends.
	std::vector<onering_msg> Stats() { return onering_test::StatsItems(broker_); }

	bool GroupStats(const char *name, onering_msg_group_stats *out)
	{
		for (auto &m : Stats())
			if (m.u.group_stats.what == ONERING_STATS_GROUP &&
			    strcmp(m.u.group_stats.name, name) == 0) {
				*out = m.u.group_stats;
				return true;
			}
		return false;
	}

	// Queue counters by owner pid.
	std::map<pid_t, std::vector<uint64_t>> QueueStats()
	{
		std::map<pid_t, std::vector<uint64_t>> q;
		for (auto &m : Stats())
			if (m.u.stats_item.what == ONERING_STATS_QUEUE)
				q[(pid_t)m.u.stats_item.owner_pid] = std::vector<uint64_t>(
					m.u.stats_item.counter, m.u.stats_item.counter + ONERING_QC_NR);
		return q;
	}

	void RunWakeOrder(const char *group_arg, int (*who)(int));
	bool KillMidBatch(const ConsumerOpts &victim, int n);

	std::vector<LogRec> Log()
	{
		uint64_t n = std::min<uint64_t>(sh_->nlog.load(), kMaxLog);
		return std::vector<LogRec>(sh_->log, sh_->log + n);
	}

	Broker broker_;
	Shared *sh_ = nullptr;
	pid_t pids_[kMaxConsumers] = {-1, -1, -1, -1, -1, -1, -1, -1};
	struct onering *patt_ = nullptr;
	struct onering_queue *pq_ = nullptr;
	uint32_t gid_ = 0;
};

// ---- rr ------------------------------------------------------------------

TEST_F(Balance, RoundRobinWithinOnePerConsumer)
{
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=rr"}));
	for (int i = 0; i < 4; i++)
		StartConsumer(i, ConsumerOpts{});
	Producer();
	const int n = 4003;
	for (int k = 0; k < n; k++)
		ASSERT_EQ(Post((uint64_t)k, (uint64_t)k), 0);
	ASSERT_TRUE(WaitFor([&] { return Total(4) == n; })) << Total(4) << " of " << n;
	for (int i = 0; i < 4; i++) {
		EXPECT_GE(sh_->count[i].load(), (uint64_t)(n / 4)) << "consumer " << i;
		EXPECT_LE(sh_->count[i].load(), (uint64_t)(n / 4 + 1)) << "consumer " << i;
	}
	// Exactly once.
	std::set<uint64_t> seen;
	for (auto &r : Log())
		EXPECT_TRUE(seen.insert(r.seq).second) << "record " << r.seq << " twice";
	EXPECT_EQ(seen.size(), (size_t)n);
	ProducerClose();
}

// Bursts of 32 posts are decided once per burst (balance_split): the
// counts per consumer stay those of one decision per record (within one of
// each other), each consumer gets its share in posting order, and nothing is
// lost or doubled.
TEST_F(Balance, RoundRobinBurstsKeepTheCountsAndEachConsumersOrder)
{
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=rr"}));
	for (int i = 0; i < 4; i++)
		StartConsumer(i, ConsumerOpts{});
	Producer();
	const unsigned n = 4003, burst = 32;
	struct onering_user_event ev[burst];
	for (unsigned sent = 0; sent < n;) {
		unsigned k = n - sent < burst ? n - sent : burst;
		for (unsigned i = 0; i < k; i++) {
			uint64_t seq = sent + i;
			ev[i] = onering_user_event{};
			ev[i].flow = seq;
			ev[i].cookie = seq;
			ev[i].len = sizeof(seq);
			memcpy(ev[i].data, &seq, sizeof(seq));
		}
		int r, tries = 0; // a full submission ring: 0 or -EAGAIN; bounded: 5 s
		while (((r = onering_post_burst(pq_, gid_, ev, k)) == 0 || r == -EAGAIN) &&
		       tries++ < 50000)
			usleep(100);
		ASSERT_GT(r, 0) << onering_strerror(r);
		sent += (unsigned)r;
	}
	ASSERT_TRUE(WaitFor([&] { return Total(4) == n; })) << Total(4) << " of " << n;
	for (int i = 0; i < 4; i++) {
		EXPECT_GE(sh_->count[i].load(), (uint64_t)(n / 4)) << "consumer " << i;
		EXPECT_LE(sh_->count[i].load(), (uint64_t)(n / 4 + 1)) << "consumer " << i;
	}
	std::set<uint64_t> seen;
	uint64_t last[4] = {0, 0, 0, 0};
	bool any[4] = {false, false, false, false};
	for (auto &r : Log()) {
		EXPECT_TRUE(seen.insert(r.seq).second) << "record " << r.seq << " twice";
		ASSERT_LT(r.consumer, 4u);
		if (any[r.consumer]) {
			EXPECT_GT(r.seq, last[r.consumer]) << "consumer " << r.consumer << " out of order";
		}
		any[r.consumer] = true;
		last[r.consumer] = r.seq;
	}
	EXPECT_EQ(seen.size(), (size_t)n);
	ProducerClose();
}

// Readiness of another client's fd sources, balanced over a group: flagged
// FOREIGN, and deleting the source stops it everywhere.
TEST_F(Balance, FdSourcesOfAnotherClientAreBalancedAndCancelled)
{
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=rr"}));
	for (int i = 0; i < 2; i++)
		StartConsumer(i, ConsumerOpts{});
	Producer();
	int efd[8];
	struct onering_sub sub[8];
	for (int k = 0; k < 8; k++) {
		efd[k] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		struct onering_add_options a = {};
		a.fd = efd[k];
		a.events = POLLIN;
		a.mode = ONERING_EDGE;
		a.cookie = 100 + (uint64_t)k;
		a.group = gid_;
		ASSERT_EQ(onering_add_opts(pq_, &a, &sub[k]), 0);
	}
	for (int k = 0; k < 8; k++)
		ASSERT_EQ(eventfd_write(efd[k], 1), 0);
	ASSERT_TRUE(WaitFor([&] { return Total(2) == 8; })) << Total(2);
	EXPECT_EQ(sh_->count[0].load(), 4u);
	EXPECT_EQ(sh_->count[1].load(), 4u);
	std::set<uint64_t> cookies;
	for (auto &r : Log()) {
		EXPECT_EQ(r.kind, (uint32_t)ONERING_EV_FD);
		EXPECT_TRUE(r.flags & ONERING_EVF_FOREIGN);
		cookies.insert(r.cookie);
	}
	EXPECT_EQ(cookies.size(), 8u);
	// The producer's own queue got none of them.
	struct onering_event ev[8];
	EXPECT_EQ(onering_poll(pq_, ev, 8), 0);

	ASSERT_EQ(onering_del(pq_, sub[0]), 0);
	// Wait until the broker has dropped it (its subscription count).
	ASSERT_TRUE(WaitFor([&] {
		for (auto &kv : QueueStats())
			if (kv.first == getpid())
				return kv.second[ONERING_QC_SUBS] == 7;
		return false;
	}));
	for (int k = 0; k < 8; k++)
		ASSERT_EQ(eventfd_write(efd[k], 1), 0);
	ASSERT_TRUE(WaitFor([&] { return Total(2) == 15; })) << Total(2);
	int after_del = 0;
	auto log = Log();
	for (size_t k = 8; k < log.size(); k++)
		after_del += log[k].cookie == 100;
	EXPECT_EQ(after_del, 0) << "a record of the deleted source was delivered";
	for (int k = 0; k < 8; k++)
		close(efd[k]);
	ProducerClose();
}

// ---- least ---------------------------------------------------------------

TEST_F(Balance, LeastNeverChoosesAFullerQueue)
{
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=least"}));
	ConsumerOpts held;
	held.hold = true;
	for (int i = 0; i < 3; i++)
		StartConsumer(i, held);
	Producer();
	// All three hold their records: least keeps them level.
	for (int k = 0; k < 30; k++)
		ASSERT_EQ(Post(1, (uint64_t)k), 0);
	ASSERT_TRUE(WaitFor([&] {
		uint64_t sum = 0;
		for (auto &kv : QueueStats())
			if (kv.first != getpid())
				sum += kv.second[ONERING_QC_PUBLISHED];
		return sum == 30;
	}));
	for (auto &kv : QueueStats()) {
		if (kv.first != getpid()) {
			EXPECT_EQ(kv.second[ONERING_QC_PUBLISHED], 10u) << "pid " << kv.first;
		}
	}
	// Consumer 1 drains its 10; then it is the emptiest, and stays so while
	// the others hold 10 each: every new record goes to it.
	sh_->hold[1] = 0;
	ASSERT_TRUE(WaitFor([&] { return sh_->count[1].load() == 10; }));
	// Asleep in its next wait, which gave the 10 back first (held.h): until
	// then its ring still shows them, and a post would meet a tie.
	onering_msg_group_stats gs;
	ASSERT_TRUE(WaitFor([&] { return GroupStats("g", &gs) && gs.sleeping == 1; }));
	for (int k = 30; k < 39; k++)
		ASSERT_EQ(Post(1, (uint64_t)k), 0);
	ASSERT_TRUE(WaitFor([&] { return sh_->count[1].load() == 19; })) << sh_->count[1].load();
	for (auto &kv : QueueStats()) {
		if (kv.first == pids_[0] || kv.first == pids_[2]) {
			EXPECT_EQ(kv.second[ONERING_QC_PUBLISHED], 10u) << "a fuller queue was chosen";
		}
	}
	ProducerClose();
}

// ---- sticky --------------------------------------------------------------

TEST_F(Balance, StickyKeepsAFlowOnOneQueueWhileItHoldsRecords)
{
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=sticky"}));
	ConsumerOpts slow;
	slow.batch = 1;         // records wait in the ring between polls
	slow.work_ns = 20000;   // 20 us each
	for (int i = 0; i < 3; i++)
		StartConsumer(i, slow);
	Producer();
	const int flows = 16, per_flow = 200, n = flows * per_flow;
	for (int k = 0; k < n; k++)
		ASSERT_EQ(Post((uint64_t)(k % flows), (uint64_t)(k / flows)), 0);
	ASSERT_TRUE(WaitFor([&] { return Total(3) == n; }, 30000)) << Total(3);

	auto log = Log();
	std::map<uint64_t, std::vector<const LogRec *>> by_flow;
	for (auto &r : log)
		by_flow[r.flow].push_back(&r);
	std::set<uint32_t> used;
	int moves = 0;
	for (auto &kv : by_flow) {
		auto v = kv.second;
		ASSERT_EQ(v.size(), (size_t)per_flow) << "flow " << kv.first;
		std::sort(v.begin(), v.end(), [](auto *a, auto *b) { return a->seq < b->seq; });
		for (size_t k = 0; k < v.size(); k++) {
			EXPECT_EQ(v[k]->seq, k) << "flow " << kv.first << " lost or duplicated a record";
			used.insert(v[k]->consumer);
			if (k == 0)
				continue;
			// Per-flow order: the broker placed them in sequence.
			EXPECT_LE(v[k - 1]->ts_broker, v[k]->ts_broker) << "flow " << kv.first;
			if (v[k]->consumer != v[k - 1]->consumer) {
				moves++;
				// Moved: only after the previous consumer finished the
				// last record of the flow (a member releases a batch at
				// its next poll, after t_done), so the new consumer cannot
				// have it before then: never two at once. (The record's
				// timestamp is its poller round's start, which may precede
				// the decision; the receiving side's clock does not.)
				EXPECT_GE(v[k]->t_recv, v[k - 1]->t_done)
					<< "flow " << kv.first << " record " << k << " went to consumer "
					<< v[k]->consumer << " while consumer " << v[k - 1]->consumer
					<< " still held record " << k - 1;
			}
		}
		// And within one consumer, in order.
		std::map<uint32_t, uint64_t> last;
		for (auto &r : log) {
			if (r.flow != kv.first)
				continue;
			if (last.count(r.consumer)) {
				EXPECT_GT(r.seq, last[r.consumer]) << "flow " << kv.first;
			}
			last[r.consumer] = r.seq;
		}
	}
	EXPECT_GE(used.size(), 2u) << "sticky never balanced";
	RecordProperty("moves", moves);
	ProducerClose();
}

// ---- lifo ----------------------------------------------------------------

// Every member asleep, in a known order (0, 1, 2), one event at a time:
// each goes to the one that went idle last (wake=lifo, the default: always
// 2, which is idle last again after each) or first (wake=fifo: 0, 1, 2, 0,
// ...), and wakes that one alone.
TEST_F(Balance, LifoGivesTheEventToTheMostRecentlyIdleAndWakesOne)
{
	RunWakeOrder("g:policy=lifo", [](int) { return 2; });
}

TEST_F(Balance, LifoWithFifoWakeGivesItToTheLongestIdle)
{
	RunWakeOrder("g:policy=lifo,wake=fifo", [](int k) { return k % 3; });
}

void Balance::RunWakeOrder(const char *group_arg, int (*who)(int))
{
	ASSERT_TRUE(broker_.Start({"--group", group_arg}));
	ConsumerOpts o;
	o.spin_ns = 1000; // sleep almost at once
	o.wait_ns = 1000 * 1000 * 1000;
	for (int i = 0; i < 3; i++) {
		StartConsumer(i, o, false);
		Go(i);
		// Asleep with an empty ring before the next one starts.
		onering_msg_group_stats gs;
		ASSERT_TRUE(WaitFor([&] {
			return GroupStats("g", &gs) && gs.members == i + 1 && gs.sleeping == i + 1;
		})) << "consumer " << i << " did not go to sleep";
	}
	Producer();
	for (int k = 0; k < 10; k++) {
		ASSERT_EQ(Post(0, (uint64_t)k), 0);
		ASSERT_TRUE(WaitFor([&] { return Total(3) == (uint64_t)k + 1; }));
		// Back asleep before the next event.
		onering_msg_group_stats gs;
		ASSERT_TRUE(WaitFor([&] { return GroupStats("g", &gs) && gs.sleeping == 3; }));
	}
	uint64_t wakes[3] = {}, expect[3] = {};
	for (auto &kv : QueueStats())
		for (int i = 0; i < 3; i++)
			if (kv.first == pids_[i])
				wakes[i] = kv.second[ONERING_QC_WAKES];
	for (auto &r : Log()) {
		EXPECT_EQ(r.consumer, (uint32_t)who((int)r.seq)) << "event " << r.seq;
		expect[who((int)r.seq)]++;
	}
	// Wake-one: a futex wake only for the consumer given the event. (A
	// consumer between two 20 ms liveness slices takes its event while
	// spinning, without one: at most, not exactly.)
	uint64_t total = 0;
	for (int i = 0; i < 3; i++) {
		EXPECT_LE(wakes[i], expect[i]) << "a sleeper woken for nothing, consumer " << i;
		total += wakes[i];
	}
	EXPECT_GE(total, 8u) << "events reached sleeping consumers without waking them";
	ProducerClose();
}

// Bursts with max_running=2 over 4 members: never more than 2 consumers
// handle records at once (consumer-side intervals), and all arrive.
TEST_F(Balance, LifoNeverRunsMoreThanMaxRunning)
{
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=lifo,max_running=2"}));
	ConsumerOpts o;
	o.spin_ns = 2000;
	o.work_ns = 300000; // 0.3 ms per record
	o.batch = 1;
	for (int i = 0; i < 4; i++)
		StartConsumer(i, o);
	onering_msg_group_stats gs;
	ASSERT_TRUE(WaitFor([&] { return GroupStats("g", &gs) && gs.members == 4 && gs.sleeping == 4; }));
	Producer();
	const int n = 60;
	for (int k = 0; k < n; k++)
		ASSERT_EQ(Post((uint64_t)k, (uint64_t)k), 0);
	ASSERT_TRUE(WaitFor([&] { return Total(4) == n; }, 30000)) << Total(4);
	// The members at work take the burst while they have room; the two that
	// went idle first are never woken (those at work go idle later).
	int reached = 0;
	for (int i = 0; i < 4; i++)
		reached += sh_->count[i] > 0;
	EXPECT_LE(reached, 2) << "the limit woke a third member";

	// Sweep the [t_recv, t_done] intervals: at most 2 open at any time.
	std::vector<std::pair<uint64_t, int>> edges;
	for (auto &r : Log()) {
		edges.push_back({r.t_recv, +1});
		edges.push_back({r.t_done, -1});
	}
	std::sort(edges.begin(), edges.end(),
		  [](auto &a, auto &b) { return a.first != b.first ? a.first < b.first : a.second < b.second; });
	int open = 0, most = 0;
	for (auto &e : edges) {
		open += e.second;
		most = std::max(most, open);
	}
	EXPECT_LE(most, 2) << "more consumers ran at once than max_running";
	ProducerClose();
}

// ---- tuning at run time -----------------------------------------------------

// Run `onering tune` on group g; its exit is the broker's reply.
static int Tune(const Broker &broker, const std::string &settings, std::string *out)
{
	int status;
	*out = RunCommand(std::string(ONERING_TOOL_PATH) + " tune --name " + broker.Name() +
				  " --socket-dir " + broker.Dir() + " --group g " + settings,
			  &status);
	return status;
}

// The rule (docs/operations.md): every decision the broker makes after a
// tune's reply uses the new settings - records that waited in a backlog are
// decided again under them before the reply - and records already placed
// stay where they are.
TEST_F(Balance, TuneAppliesToEveryDecisionAfterItsReply)
{
	// The poller sleeps 1 s at a time when idle: nothing but the tune can
	// make it look at its backlog again before the check below.
	ASSERT_TRUE(broker_.Start({"--idle-sleep-ms", "1000", "--group", "g:policy=lifo,max_running=1"}));
	ConsumerOpts busy, idle;
	busy.hold = true;    // has the queue open, takes nothing: counts as running
	busy.capacity = 8;   // and is full after 8 records
	idle.spin_ns = 1000; // waits with an empty ring: idle
	busy.wait_ns = idle.wait_ns = 1000 * 1000 * 1000;
	StartConsumer(0, busy);
	StartConsumer(1, idle);
	onering_msg_group_stats gs;
	ASSERT_TRUE(WaitFor([&] { return GroupStats("g", &gs) && gs.members == 2 && gs.sleeping == 1; }));
	Producer();
	// lifo with one member running and max_running=1: it takes 8 (its
	// room), then every post waits rather than wake the idle one.
	constexpr uint64_t kFill = 8;
	for (uint64_t k = 0; k < kFill + 5; k++)
		ASSERT_EQ(Post(0, k), 0);
	ASSERT_TRUE(WaitFor([&] { return GroupStats("g", &gs) && gs.counter[ONERING_GC_BACKLOG] == 5; }));
	EXPECT_EQ(gs.counter[ONERING_GC_DELIVERED], kFill);
	std::string out;
	ASSERT_EQ(Tune(broker_, "policy=rr", &out), 0) << out;
	// Right after the reply, no waiting: the backlog went out by rr (to the
	// member with room; lifo would have kept it waiting).
	ASSERT_TRUE(GroupStats("g", &gs));
	EXPECT_EQ(gs.counter[ONERING_GC_BACKLOG], 0u) << "records still waiting after the tune's reply";
	EXPECT_EQ(gs.counter[ONERING_GC_DELIVERED], kFill + 5);
	auto published = [&](pid_t pid) {
		for (auto &kv : QueueStats())
			if (kv.first == pid)
				return kv.second[ONERING_QC_PUBLISHED];
		return (uint64_t)-1;
	};
	EXPECT_EQ(published(pids_[0]), kFill);
	EXPECT_EQ(published(pids_[1]), 5u);

	// Back to lifo; the held member drains and waits too. Each post after
	// the reply, made while both members wait with empty rings, goes to the
	// one idle last (wake=lifo): the member that took the one before.
	sh_->hold[0] = 0;
	ASSERT_TRUE(WaitFor([&] { return Total(2) == kFill + 5; }));
	ASSERT_EQ(Tune(broker_, "policy=lifo max_running=0", &out), 0) << out;
	uint64_t before[2] = {sh_->count[0], sh_->count[1]};
	for (uint64_t k = kFill + 5; k < kFill + 35; k++) {
		ASSERT_TRUE(WaitFor([&] { return GroupStats("g", &gs) && gs.sleeping == 2; }))
			<< "both members waiting with empty rings before post " << k;
		ASSERT_EQ(Post(0, k), 0);
		ASSERT_TRUE(WaitFor([&] { return Total(2) == k + 1; }));
	}
	uint64_t got0 = sh_->count[0] - before[0], got1 = sh_->count[1] - before[1];
	EXPECT_TRUE((got0 == 30 && got1 == 0) || (got0 == 0 && got1 == 30))
		<< "lifo after the tune: " << got0 << " and " << got1;
	ProducerClose();
}

// What lifo does when the member idle last has not come back for more: it
// took its record (the batch is held until its next call) and is not in
// onering_wait() - busy, or descheduled on a loaded machine. It is not
// idle, so the next record goes to the other idle member. (This, not the
// tune, is why records spaced in time can reach a second member.)
TEST_F(Balance, LifoPassesOverAMemberThatHasNotComeBackForMore)
{
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=lifo"}));
	ConsumerOpts o;
	o.spin_ns = 1000;
	StartConsumer(0, o);
	StartConsumer(1, o);
	onering_msg_group_stats gs;
	ASSERT_TRUE(WaitFor([&] { return GroupStats("g", &gs) && gs.members == 2 && gs.sleeping == 2; }));
	Producer();
	ASSERT_EQ(Post(0, 0), 0);
	ASSERT_TRUE(WaitFor([&] { return Total(2) == 1; }));
	int first = sh_->count[0] == 1 ? 0 : 1;
	ASSERT_TRUE(WaitFor([&] { return GroupStats("g", &gs) && gs.sleeping == 2; }));
	// The same member again while it is idle last ...
	ASSERT_EQ(Post(0, 1), 0);
	ASSERT_TRUE(WaitFor([&] { return Total(2) == 2; }));
	EXPECT_EQ(sh_->count[first].load(), 2u);
	// ... but not once it has taken a record and not come back.
	sh_->hold_after_next[first] = 1;
	ASSERT_TRUE(WaitFor([&] { return GroupStats("g", &gs) && gs.sleeping == 2; }));
	ASSERT_EQ(Post(0, 2), 0);
	ASSERT_TRUE(WaitFor([&] { return sh_->count[first].load() == 3; }));
	// Now it holds record 2 outside onering_wait().
	ASSERT_EQ(Post(0, 3), 0);
	ASSERT_TRUE(WaitFor([&] { return Total(2) == 4; }));
	EXPECT_EQ(sh_->count[1 - first].load(), 1u) << "record 3 went to the member that was idle";
	sh_->hold[first] = 0;
	ProducerClose();
}

// ---- NUMA: spill and strict on a synthetic two-node machine ---------------

constexpr const char *kTwoNodes = "numa:2 core:2 pu:1";

TEST_F(Balance, SpillGoesRemoteOnlyWhenEveryLocalQueueIsAboveP)
{
	ASSERT_TRUE(broker_.Start({"--synthetic", kTwoNodes, "--group",
				   "g:policy=rr,numa=spill:50"}));
	ConsumerOpts local, remote;
	local.hold = remote.hold = true;
	local.capacity = remote.capacity = 64;
	local.node = 0;
	remote.node = 1;
	StartConsumer(0, local);
	StartConsumer(1, remote);
	Producer("g", 0);

	auto published = [&](pid_t pid) {
		for (auto &kv : QueueStats())
			if (kv.first == pid)
				return kv.second[ONERING_QC_PUBLISHED];
		return (uint64_t)-1;
	};
	// The local queue takes every record while it is at most 50 % full
	// (32 of 64): 33 of them, none remote.
	for (int k = 0; k < 33; k++)
		ASSERT_EQ(Post(0, (uint64_t)k), 0);
	ASSERT_TRUE(WaitFor([&] { return published(pids_[0]) == 33; })) << published(pids_[0]);
	EXPECT_EQ(published(pids_[1]), 0u) << "went remote while the local queue had room";
	onering_msg_group_stats gs;
	ASSERT_TRUE(GroupStats("g", &gs));
	EXPECT_EQ(gs.counter[ONERING_GC_SPILLED], 0u);
	// Now above 50 %: the group spills, rr over both nodes.
	for (int k = 33; k < 53; k++)
		ASSERT_EQ(Post(0, (uint64_t)k), 0);
	ASSERT_TRUE(WaitFor([&] { return published(pids_[0]) + published(pids_[1]) == 53; }));
	EXPECT_EQ(published(pids_[1]), 10u);
	ASSERT_TRUE(GroupStats("g", &gs));
	EXPECT_EQ(gs.counter[ONERING_GC_SPILLED], 10u);
	EXPECT_EQ(gs.counter[ONERING_GC_HANDOFFS], 10u) << "remote records go through the lane";
	ProducerClose();
}

TEST_F(Balance, StrictNeverSendsRemoteAndTuningChangesItLive)
{
	ASSERT_TRUE(broker_.Start({"--synthetic", kTwoNodes, "--group",
				   "g:policy=rr,numa=strict"}));
	ConsumerOpts local, remote;
	local.hold = true;
	local.capacity = 64;
	local.node = 0;
	remote.node = 1;
	StartConsumer(0, local);
	StartConsumer(1, remote);
	Producer("g", 0);

	// 100 records, the local queue holds 64: the rest wait, none leaves.
	for (int k = 0; k < 100; k++)
		ASSERT_EQ(Post(0, (uint64_t)k), 0);
	onering_msg_group_stats gs;
	ASSERT_TRUE(WaitFor([&] {
		return GroupStats("g", &gs) && gs.counter[ONERING_GC_BACKLOG] == 36;
	})) << "backlog " << gs.counter[ONERING_GC_BACKLOG];
	EXPECT_EQ(sh_->count[1].load(), 0u);
	EXPECT_EQ(gs.counter[ONERING_GC_SPILLED], 0u);
	sh_->hold[0] = 0;
	ASSERT_TRUE(WaitFor([&] { return sh_->count[0].load() == 100; })) << sh_->count[0].load();
	EXPECT_EQ(sh_->count[1].load(), 0u) << "strict sent a record off its node";

	// Tune to interleave while everyone stays attached: rr over both nodes.
	int status;
	std::string cmd = std::string(ONERING_TOOL_PATH) + " tune --name " + broker_.Name() +
			  " --socket-dir " + broker_.Dir() + " --group g numa=interleave";
	std::string out = RunCommand(cmd, &status);
	ASSERT_EQ(status, 0) << out;
	for (int k = 100; k < 200; k++)
		ASSERT_EQ(Post(0, (uint64_t)k), 0);
	ASSERT_TRUE(WaitFor([&] { return Total(2) == 200; })) << Total(2);
	EXPECT_EQ(sh_->count[1].load(), 50u) << "interleave did not reach the remote node";
	EXPECT_EQ(sh_->count[0].load(), 150u);
	ProducerClose();
}

// A source homed on node 1's poller (ONERING_ADD_HOME), owned by a queue
// node 0's poller serves: its records and the owner's re-arms cross the
// lanes between the two pollers.
TEST_F(Balance, HomeNodeOverrideAndForwardedRearm)
{
	ASSERT_TRUE(broker_.Start({"--synthetic", kTwoNodes, "--group", "g:policy=rr"}));
	ConsumerOpts c;
	c.node = 0;
	StartConsumer(0, c);
	Producer("g", 0);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct onering_add_options a = {};
	a.fd = efd;
	a.events = POLLIN;
	a.mode = ONERING_ONESHOT;
	a.cookie = 7;
	a.group = gid_;
	a.home_node = 1;
	a.flags = ONERING_ADD_HOME;
	struct onering_sub sub;
	ASSERT_EQ(onering_add_opts(pq_, &a, &sub), 0);
	a.home_node = 5; // no such node
	struct onering_sub bad;
	EXPECT_EQ(onering_add_opts(pq_, &a, &bad), -EINVAL);
	for (int round = 1; round <= 5; round++) {
		ASSERT_EQ(eventfd_write(efd, 1), 0);
		ASSERT_TRUE(WaitFor([&] { return sh_->count[0].load() == (uint64_t)round; }))
			<< "round " << round;
		// ONESHOT: nothing more until the owner re-arms (through node 0's
		// poller, forwarded to node 1's).
		ASSERT_EQ(eventfd_write(efd, 1), 0);
		ASSERT_EQ(onering_rearm(pq_, sub), 0);
	}
	ASSERT_TRUE(WaitFor([&] { return sh_->count[0].load() == 6; }));
	onering_msg_group_stats gs;
	ASSERT_TRUE(GroupStats("g", &gs));
	EXPECT_GE(gs.counter[ONERING_GC_HANDOFFS], 6u) << "records did not cross from node 1";
	EXPECT_EQ(gs.counter[ONERING_GC_SPILLED], 6u) << "node 1's records all went to node 0";
	for (auto &r : Log())
		EXPECT_EQ(r.cookie, 7u);
	close(efd);
	ProducerClose();
}

// ---- a consumer dies holding records --------------------------------------

// The fds and mappings of the broker that name queue qid's memfds.
static int MemfdRefs(pid_t broker, uint32_t qid)
{
	std::string tag = "-q" + std::to_string(qid) + "-";
	int n = 0;
	std::string dir = "/proc/" + std::to_string(broker) + "/fd";
	DIR *d = opendir(dir.c_str());
	if (!d)
		return -1;
	while (struct dirent *e = readdir(d)) {
		char target[256];
		ssize_t k = readlink((dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
		if (k > 0) {
			target[k] = '\0';
			n += strstr(target, "memfd:onering") && strstr(target, tag.c_str());
		}
	}
	closedir(d);
	FILE *f = fopen(("/proc/" + std::to_string(broker) + "/maps").c_str(), "r");
	char line[512];
	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, "memfd:onering") && strstr(line, tag.c_str());
	if (f)
		fclose(f);
	return n;
}

TEST_F(Balance, KilledConsumersRecordsGoToTheRestOfItsGroup)
{
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=rr"}));
	ConsumerOpts victim;
	victim.hold = true;
	victim.capacity = 16384;
	StartConsumer(0, victim);
	Producer();
	const int n = 10000;
	for (int k = 0; k < n; k++)
		ASSERT_EQ(Post((uint64_t)k, (uint64_t)k), 0);
	uint32_t victim_qid = 0;
	ASSERT_TRUE(WaitFor([&] {
		for (auto &m : Stats())
			if (m.u.stats_item.what == ONERING_STATS_QUEUE &&
			    (pid_t)m.u.stats_item.owner_pid == pids_[0] &&
			    m.u.stats_item.counter[ONERING_QC_PUBLISHED] == (uint64_t)n) {
				victim_qid = m.u.stats_item.id;
				return true;
			}
		return false;
	}));
	ASSERT_GT(MemfdRefs(broker_.Pid(), victim_qid), 0);
	for (int i = 1; i < 3; i++)
		StartConsumer(i, ConsumerOpts{});

	kill(pids_[0], SIGKILL);
	int status;
	waitpid(pids_[0], &status, 0);
	pids_[0] = -1;

	ASSERT_TRUE(WaitFor([&] { return Total(3) == n; }, 20000)) << Total(3) << " of " << n;
	std::vector<int> seen(n, 0);
	for (auto &r : Log()) {
		ASSERT_LT(r.seq, (uint64_t)n);
		seen[r.seq]++;
		EXPECT_TRUE(r.flags & ONERING_EVF_REDELIVERED);
		EXPECT_NE(r.consumer, 0u);
	}
	int lost = 0, twice = 0;
	for (int k = 0; k < n; k++) {
		lost += seen[k] == 0;
		twice += seen[k] > 1;
	}
	EXPECT_EQ(lost, 0);
	EXPECT_EQ(twice, 0);
	EXPECT_GT(sh_->count[1].load(), 0u);
	EXPECT_GT(sh_->count[2].load(), 0u);
	onering_msg_group_stats gs;
	ASSERT_TRUE(GroupStats("g", &gs));
	EXPECT_EQ(gs.counter[ONERING_GC_REDELIVERED], (uint64_t)n);
	EXPECT_EQ(gs.members, 2u);
	// Its memfds are closed and unmapped.
	EXPECT_TRUE(WaitFor([&] { return MemfdRefs(broker_.Pid(), victim_qid) == 0; }));
	ProducerClose();
}

// Kill consumer 0 (opts) in the middle of a batch, with n posts sent to
// it, then start two more members and wait until every post arrived.
// Returns false (with a failure) if some never did.
bool Balance::KillMidBatch(const ConsumerOpts &victim, int n)
{
	StartConsumer(0, victim);
	Producer();
	for (int k = 0; k < n; k++)
		if (Post((uint64_t)k, (uint64_t)k) != 0) {
			ADD_FAILURE() << "post " << k;
			return false;
		}
	// Mid-batch: some records of its current batch handled, not all - the
	// last record it logged is not the last of the batch its wait returned
	// (a wait may return fewer than victim.batch records, so the count of
	// records alone does not say where a batch ends). Seen again once it is
	// stopped (this thread may have lost its CPU after the first look, and
	// the batch ended meanwhile), else it goes on.
	auto mid_batch = [&] {
		uint64_t done = sh_->nlog.load();
		if (done < 20 || done > kMaxLog)
			return false;
		const LogRec &r = sh_->log[done - 1];
		return __atomic_load_n(&r.written, __ATOMIC_ACQUIRE) == 1 && r.batch_k + 1 < r.batch_n;
	};
	bool mid = false;
	for (int tries = 0; tries < 100 && !mid; tries++) {
		if (!WaitFor(mid_batch)) {
			ADD_FAILURE() << "the consumer did not get going";
			return false;
		}
		kill(pids_[0], SIGSTOP);
		siginfo_t si;
		waitid(P_PID, (id_t)pids_[0], &si, WSTOPPED | WNOWAIT);
		mid = mid_batch();
		if (!mid)
			kill(pids_[0], SIGCONT);
	}
	if (!mid) {
		ADD_FAILURE() << "never stopped mid-batch";
		return false;
	}
	kill(pids_[0], SIGKILL);
	int status;
	waitpid(pids_[0], &status, 0);
	pids_[0] = -1;
	for (int i = 1; i < 3; i++)
		StartConsumer(i, ConsumerOpts{});
	std::vector<int> seen(n, 0);
	bool all = WaitFor([&] {
		std::fill(seen.begin(), seen.end(), 0);
		for (auto &r : Log())
			if (r.seq < (uint64_t)n && (r.consumer != 0 || r.t_recv != 0))
				seen[r.seq]++;
		return std::count(seen.begin(), seen.end(), 0) == 0;
	}, 20000);
	EXPECT_TRUE(all) << std::count(seen.begin(), seen.end(), 0) << " records lost";
	return all;
}

// A consumer killed in the middle of a batch: the records of the batch it
// had handled and not given back (a member gives a batch back at its next
// poll/wait) come again - at-least-once across a crash - each flagged
// REDELIVERED on its second arrival; nothing is lost; the group's
// redelivered counter (onering stat, text and --json) counts exactly the
// records that came again.
TEST_F(Balance, KilledMidBatchConsumersRecordsComeAgainFlaggedAndCounted)
{
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=rr"}));
	ConsumerOpts victim;
	victim.batch = 8;
	victim.work_ns = 2 * 1000 * 1000; // 2 ms a record: a batch takes 16 ms
	const int n = 200;
	ASSERT_TRUE(KillMidBatch(victim, n));

	std::vector<int> arrivals(n, 0);
	uint64_t flagged = 0, twice = 0, victim_took = 0;
	for (auto &r : Log()) {
		if (r.consumer == 0 && r.t_recv == 0)
			continue; // killed while writing its log entry
		ASSERT_LT(r.seq, (uint64_t)n);
		arrivals[r.seq]++;
		if (r.consumer == 0) {
			victim_took++;
			EXPECT_FALSE(r.flags & ONERING_EVF_REDELIVERED) << "record " << r.seq;
			continue;
		}
		// Everything the others got was in the dead consumer's ring.
		EXPECT_TRUE(r.flags & ONERING_EVF_REDELIVERED) << "record " << r.seq;
		flagged += (r.flags & ONERING_EVF_REDELIVERED) != 0;
		twice += arrivals[r.seq] == 2;
	}
	for (int k = 0; k < n; k++)
		EXPECT_LE(arrivals[k], 2) << "record " << k;
	EXPECT_GE(twice, 1u) << "the batch it was handling comes again";
	EXPECT_LT(twice, 8u) << "only records of the batch it had not given back";
	EXPECT_EQ(flagged, (uint64_t)n - victim_took + twice);
	onering_msg_group_stats gs;
	ASSERT_TRUE(GroupStats("g", &gs));
	EXPECT_EQ(gs.counter[ONERING_GC_REDELIVERED], flagged);

	int st;
	const std::string stat = std::string(ONERING_TOOL_PATH) + " stat --name " + broker_.Name() +
				 " --socket-dir " + broker_.Dir();
	std::string out = RunCommand(stat + " --json", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	json_error_t jerr;
	json_t *root = json_loads(out.c_str(), 0, &jerr);
	ASSERT_NE(root, nullptr) << jerr.text << "\n" << out;
	json_t *groups = json_object_get(root, "groups"), *g = nullptr;
	for (size_t i = 0; i < json_array_size(groups); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(groups, i), "name")), "g") == 0)
			g = json_array_get(groups, i);
	ASSERT_NE(g, nullptr) << out;
	EXPECT_EQ(json_integer_value(json_object_get(g, "redelivered")), (json_int_t)flagged);
	json_decref(root);
	// Text: the group's row, column "redelivered".
	out = RunCommand(stat, &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	std::istringstream lines(out);
	std::string line, col = "?";
	std::vector<std::string> header;
	while (std::getline(lines, line)) {
		std::istringstream w(line);
		std::vector<std::string> f{std::istream_iterator<std::string>(w), {}};
		if (f.size() > 1 && f[0] == "group" && f[1] == "name")
			header = f;
		if (!header.empty() && f.size() == header.size() && f[1] == "g")
			for (size_t i = 0; i < f.size(); i++)
				if (header[i] == "redelivered")
					col = f[i];
	}
	EXPECT_EQ(col, std::to_string(flagged)) << out;
	ProducerClose();
}

// The same in ack mode, where the member gives each post back as it calls
// onering_done() for it: a crash delivers again exactly the records it had
// not done (those it was handling), never one it had done.
TEST_F(Balance, KilledAckModeConsumerGetsBackExactlyWhatItHadNotDone)
{
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=rr"}));
	ConsumerOpts victim;
	victim.batch = 8;
	victim.work_ns = 2 * 1000 * 1000;
	victim.ack = true;
	const int n = 200;
	ASSERT_TRUE(KillMidBatch(victim, n));
	EXPECT_EQ(sh_->failed.load(), 0) << "onering_done() refused a post in ack mode";

	std::vector<int> arrivals(n, 0), done_by_victim(n, 0);
	uint64_t flagged = 0, was_done = 0;
	auto log = Log();
	for (auto &r : log)
		if (r.consumer == 0 && r.acked)
			done_by_victim[r.seq] = 1, was_done++;
	for (auto &r : log) {
		if (r.consumer == 0)
			continue;
		EXPECT_TRUE(r.flags & ONERING_EVF_REDELIVERED) << "record " << r.seq;
		EXPECT_FALSE(done_by_victim[r.seq]) << "record " << r.seq << " was done, and came again";
		flagged += (r.flags & ONERING_EVF_REDELIVERED) != 0;
	}
	EXPECT_EQ(flagged, (uint64_t)n - was_done) << "exactly the records not done came again";
	onering_msg_group_stats gs;
	ASSERT_TRUE(GroupStats("g", &gs));
	EXPECT_EQ(gs.counter[ONERING_GC_REDELIVERED], flagged);
	ProducerClose();
}

} // namespace
