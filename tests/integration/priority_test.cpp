// SPDX-License-Identifier: MIT
// Priority levels end to end (docs/semantics.md, Priorities): a queue with
// levels, subscriptions and posts with priorities, through a real broker.
// The acceptance case: with a backlog of 10,000 low-priority posts, a
// high-priority one comes out of the consumer's very next batch, under every
// balancing policy; records of one flow keep their order within a level.
// One process plays poster and consumer (the consumer does not consume
// until the test says so); every wait is a bounded loop on a condition.
#include "harness.h"

#include <cstring>
#include <jansson.h>
#include <sched.h>
#include <sys/epoll.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <string>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "shm/abi.h"

using onering_test::NowNs;
using onering_test::Broker;

namespace {

constexpr uint32_t kHigh = ONERING_PRIO_LEVELS - 1;

// Until cond() or 20 s; yields between looks (never a sleep standing in for
// a condition).
template <typename F> bool WaitFor(F cond)
{
	uint64_t end = NowNs() + 20ull * 1000 * 1000 * 1000;
	while (!cond()) {
		if (NowNs() > end)
			return false;
		sched_yield();
	}
	return true;
}

class PriorityTest : public ::testing::Test {
protected:
	void TearDown() override
	{
		for (auto *q : {consumer_, poster_, marker_})
			if (q)
				onering_queue_close(q);
		if (att_)
			onering_detach(att_);
	}
	// A broker whose group g has policy; the consumer queue (levels, cap)
	// joins g; a private poster queue; marker: a queue in group m, to learn
	// that the broker has handled every earlier post of the poster.
	void Start(const char *policy, uint32_t levels = ONERING_PRIO_LEVELS, uint32_t cap = 1024)
	{
		std::string g = std::string("g:policy=") + policy + ",backlog=20000";
		ASSERT_TRUE(broker_.Start({"--group", g, "--group", "m:policy=rr"}));
		ASSERT_EQ(broker_.Attach(&att_), 0);
		struct onering_queue_options o = {};
		o.group = "g";
		o.levels = levels;
		o.capacity = cap;
		ASSERT_EQ(onering_queue_open(att_, &o, &consumer_), 0) << onering_last_error(att_);
		ASSERT_EQ(onering_queue_open(att_, nullptr, &poster_), 0);
		struct onering_queue_options m = {};
		m.group = "m";
		ASSERT_EQ(onering_queue_open(att_, &m, &marker_), 0);
		ASSERT_EQ(onering_group_id(att_, "g", &group_), 0);
		ASSERT_EQ(onering_group_id(att_, "m", &mgroup_), 0);
	}
	// Post (bounded retry while the submission ring is full).
	void Post(uint32_t group, uint64_t flow, uint64_t cookie, unsigned prio)
	{
		int r;
		uint64_t end = NowNs() + 20ull * 1000 * 1000 * 1000;
		while ((r = onering_post_prio(poster_, group, flow, nullptr, 0, cookie, prio)) ==
		       -EAGAIN) {
			ASSERT_LT(NowNs(), end) << "the poster's submission ring stayed full";
			sched_yield();
		}
		ASSERT_EQ(r, 0);
	}
	// Post a marker to m and wait for it: every post before it is handled.
	void Fence()
	{
		ASSERT_NO_FATAL_FAILURE(Post(mgroup_, 0, 424242, 0));
		struct onering_event e;
		int n = 0;
		ASSERT_TRUE(WaitFor([&] { return (n = onering_poll(marker_, &e, 1)) != 0; }));
		ASSERT_EQ(n, 1);
		ASSERT_EQ(e.cookie, 424242u);
	}
	// A control connection of the test's own (a client the library does
	// not check), and a QUEUE_OPEN on it: 0 and the reply (fds: its five
	// fds, the caller's), or the reply's status.
	int RawConnect()
	{
		int s = -1;
		char err[512];
		EXPECT_EQ(onering_proto_connect(broker_.SocketPath().c_str(), broker_.Name().c_str(),
						-1, &s, nullptr, err, sizeof(err)),
			  0)
			<< err;
		return s;
	}
	int RawQueueOpen(int s, uint32_t levels, const char *group, struct onering_msg *rep,
			 int fds[5])
	{
		struct onering_msg req;
		unsigned nfds = 0;
		onering_msg_init(&req, ONERING_MSG_QUEUE_OPEN, 1);
		req.u.queue_open.node = -1;
		req.u.queue_open.cpu = -1;
		req.u.queue_open.levels = levels;
		snprintf(req.u.queue_open.group, sizeof(req.u.queue_open.group), "%s", group);
		int r = onering_msg_send(s, &req, nullptr, 0, 0);
		if (r == 0)
			r = onering_msg_recv_timeout(s, rep, fds, 5, &nfds, 5000);
		if (r == 0 && rep->status == 0 && nfds != 5)
			r = -EPROTO;
		if (r < 0 || rep->status < 0)
			for (unsigned i = 0; i < nfds; i++)
				close(fds[i]);
		return r < 0 ? r : rep->status;
	}
	// fd of a raw queue open mapped shared (writable or not) at *at.
	static void MapRaw(int fd, size_t size, bool writable, unsigned char **at)
	{
		void *m = mmap(nullptr, size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
			       MAP_SHARED, fd, 0);
		ASSERT_NE(m, MAP_FAILED) << strerror(errno);
		*at = static_cast<unsigned char *>(m);
	}
	Broker broker_;
	struct onering *att_ = nullptr;
	struct onering_queue *consumer_ = nullptr, *poster_ = nullptr, *marker_ = nullptr;
	uint32_t group_ = 0, mgroup_ = 0;
};

class PriorityPolicyTest : public PriorityTest,
			   public ::testing::WithParamInterface<const char *> {};

// The acceptance case, per policy.
TEST_P(PriorityPolicyTest, AHighPostComesOutOfTheNextBatchAheadOfTenThousandLowOnes)
{
	constexpr uint64_t kLows = 10000, kCap = 1024, kHighCookie = 1u << 30;
	const bool lifo = std::string(GetParam()) == "lifo";
	ASSERT_NO_FATAL_FAILURE(Start(GetParam(), ONERING_PRIO_LEVELS, kCap));
	for (uint64_t c = 0; c < kLows; c++)
		ASSERT_NO_FATAL_FAILURE(Post(group_, 7, c, 0)) << c;
	ASSERT_NO_FATAL_FAILURE(Post(group_, 8, kHighCookie, kHigh));
	ASSERT_NO_FATAL_FAILURE(Fence());
	// The lows filled level 0 (the rest wait in the broker), the high one
	// went to its own level at once. lifo too: its consumer, the group's
	// only member, is at work and takes records while it has room.
	EXPECT_EQ(onering_pending(consumer_), (int)kCap + 1);

	struct onering_event ev[64];
	int n = lifo ? onering_wait(consumer_, ev, 1, 64, 20ll * 1000 * 1000 * 1000)
		     : onering_poll(consumer_, ev, 64);
	ASSERT_GT(n, 0);
	EXPECT_EQ(ev[0].cookie, kHighCookie) << "the high record leads the next batch";
	EXPECT_EQ(onering_event_prio(&ev[0]), kHigh);
	EXPECT_EQ(ev[0].payload.user.flow, 8u);

	// Then every low one, in order (one flow, one level).
	uint64_t next = 0;
	for (int i = 1; i < n; i++) {
		ASSERT_EQ(ev[i].cookie, next) << i;
		EXPECT_EQ(onering_event_prio(&ev[i]), 0u);
		next++;
	}
	uint64_t end = NowNs() + 60ull * 1000 * 1000 * 1000;
	while (next < kLows) {
		ASSERT_LT(NowNs(), end) << next << " of " << kLows << " low records";
		n = onering_wait(consumer_, ev, 1, 64, 1000ll * 1000 * 1000);
		ASSERT_GE(n, 0);
		for (int i = 0; i < n; i++) {
			ASSERT_EQ(ev[i].cookie, next) << "per-flow order within the level";
			next++;
		}
	}
	EXPECT_EQ(onering_poll(consumer_, ev, 64), 0);
}

INSTANTIATE_TEST_SUITE_P(EveryPolicy, PriorityPolicyTest,
			 ::testing::Values("rr", "least", "sticky", "lifo", "local"),
			 [](const ::testing::TestParamInfo<const char *> &p) {
				 return std::string(p.param);
			 });

// fd sources on a private queue: the high one's record comes first, though
// it became ready last; a queue with one level keeps arrival order.
TEST_F(PriorityTest, AHighSubscriptionIsTakenBeforeLowOnesThatCameFirst)
{
	ASSERT_TRUE(broker_.Start());
	ASSERT_EQ(broker_.Attach(&att_), 0);
	for (uint32_t levels : {ONERING_PRIO_LEVELS, 1u}) {
		struct onering_queue_options o = {};
		o.levels = levels;
		struct onering_queue *q;
		ASSERT_EQ(onering_queue_open(att_, &o, &q), 0);
		int p[3][2];
		struct onering_sub sub[3];
		for (unsigned i = 0; i < 3; i++) {
			ASSERT_EQ(pipe(p[i]), 0);
			struct onering_add_options a = {};
			a.fd = p[i][0];
			a.events = EPOLLIN;
			a.cookie = i;
			a.priority = i == 2 ? kHigh : 0;
			ASSERT_EQ(onering_add_opts(q, &a, &sub[i]), 0);
		}
		for (unsigned i = 0; i < 3; i++) {
			ASSERT_EQ(write(p[i][1], "x", 1), 1);
			// Each its own record, in this order (one at a time).
			ASSERT_TRUE(WaitFor([&] { return onering_pending(q) == (int)i + 1; }));
		}
		struct onering_event ev[4];
		ASSERT_EQ(onering_poll(q, ev, 4), 3);
		if (levels > 1) {
			EXPECT_EQ(ev[0].cookie, 2u) << "the high source first";
			EXPECT_EQ(onering_event_prio(&ev[0]), kHigh);
			EXPECT_EQ(ev[1].cookie, 0u);
			EXPECT_EQ(ev[2].cookie, 1u);
		} else {
			EXPECT_EQ(ev[0].cookie, 0u) << "one level: arrival order";
			EXPECT_EQ(ev[2].cookie, 2u);
			EXPECT_EQ(onering_event_prio(&ev[2]), kHigh) << "the record still says it";
		}
		onering_queue_close(q);
		for (auto &pp : p) {
			close(pp[0]);
			close(pp[1]);
		}
	}
}

TEST_F(PriorityTest, BadLevelsAndPrioritiesAreRefused)
{
	ASSERT_TRUE(broker_.Start());
	ASSERT_EQ(broker_.Attach(&att_), 0);
	struct onering_queue_options o = {};
	o.levels = ONERING_PRIO_LEVELS + 1;
	struct onering_queue *q = nullptr;
	EXPECT_EQ(onering_queue_open(att_, &o, &q), -EINVAL);
	o.levels = ONERING_PRIO_LEVELS;
	ASSERT_EQ(onering_queue_open(att_, &o, &consumer_), 0);

	int p[2];
	ASSERT_EQ(pipe(p), 0);
	struct onering_add_options a = {};
	a.fd = p[0];
	a.events = EPOLLIN;
	a.priority = ONERING_PRIO_LEVELS;
	struct onering_sub sub;
	EXPECT_EQ(onering_add_opts(consumer_, &a, &sub), -EINVAL);
	uint32_t gid;
	ASSERT_EQ(onering_group_id(att_, "g", &gid), 0);
	EXPECT_EQ(onering_post_prio(consumer_, gid, 1, nullptr, 0, 1, ONERING_PRIO_LEVELS), -EINVAL);
	struct onering_user_event ue = {};
	EXPECT_EQ(onering_post_burst_prio(consumer_, gid, &ue, 1, 9), -EINVAL);
	close(p[0]);
	close(p[1]);
}

// The broker refuses what the library would not send: a QUEUE_OPEN with too
// many levels and a SUB_ADD with a priority past the limit, each with
// -EINVAL and a reason naming the limit (a hostile client's value is never
// used as an index).
TEST_F(PriorityTest, TheBrokerRefusesBadValuesWithAReason)
{
	ASSERT_TRUE(broker_.Start());
	char why[ONERING_MSG_SIZE];
	int s = RawConnect(), fds[5];
	ASSERT_GE(s, 0);
	struct onering_msg req, rep;
	EXPECT_EQ(RawQueueOpen(s, 1000, "", &rep, fds), -EINVAL);
	ASSERT_TRUE(onering_msg_reason(&rep, why, sizeof(why)));
	EXPECT_NE(std::string(why).find("at most 4"), std::string::npos) << why;

	// A queue of its own, then a source for it at priority 9.
	ASSERT_EQ(RawQueueOpen(s, 2, "", &rep, fds), 0);
	for (int fd : fds)
		close(fd);
	EXPECT_EQ(rep.u.queue_open.levels, 2u);
	onering_msg_init(&req, ONERING_MSG_SUB_ADD, 2);
	req.u.sub_add.queue_id = rep.u.queue_open.queue_id;
	req.u.sub_add.events = EPOLLIN;
	req.u.sub_add.home_node = -1;
	req.u.sub_add.priority = 9;
	int efd = eventfd(0, EFD_NONBLOCK);
	ASSERT_GE(efd, 0);
	ASSERT_EQ(onering_msg_send(s, &req, &efd, 1, 0), 0);
	ASSERT_EQ(onering_msg_recv_timeout(s, &rep, nullptr, 0, nullptr, 5000), 0);
	EXPECT_EQ(rep.status, -EINVAL);
	ASSERT_TRUE(onering_msg_reason(&rep, why, sizeof(why)));
	EXPECT_NE(std::string(why).find("priorities are 0..3"), std::string::npos) << why;
	close(efd);
	close(s);
}

// A client whose HELLO says ABI 1.8 (written by hand here: the library says
// 1.9) knows no bells' summary: it ORs its queue's bit into its word and
// nothing else (shm-abi.md, The bells). The broker gives its queues a page
// without a summary (bit 0 is given, which a summary page never does), and a
// busy poller, which never makes the look at every ring that follows a sleep,
// still finds its post, with no kick.
TEST_F(PriorityTest, AClientOfAbi18RingsOnlyItsWordAndABusyPollerFindsItsPost)
{
	ASSERT_TRUE(broker_.Start({"--idle", "busy", "--group", "g:policy=rr"}));
	ASSERT_EQ(broker_.Attach(&att_), 0);
	struct onering_queue_options co = {};
	co.group = "g";
	ASSERT_EQ(onering_queue_open(att_, &co, &consumer_), 0) << onering_last_error(att_);
	ASSERT_EQ(onering_group_id(att_, "g", &group_), 0);
	ASSERT_NE(consumer_->bell_summary, nullptr) << "the library's queue rings no summary";

	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ASSERT_GE(s, 0);
	sockaddr_un sa = {};
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", broker_.SocketPath().c_str());
	ASSERT_EQ(connect(s, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)), 0);
	struct onering_msg hello, rep;
	onering_msg_init(&hello, ONERING_MSG_HELLO, 1);
	hello.u.hello.abi_major = ONERING_ABI_MAJOR;
	hello.u.hello.abi_minor = ONERING_BELL_SUMMARY_MINOR - 1;
	hello.u.hello.pid = (uint32_t)getpid();
	snprintf(hello.u.hello.name, sizeof(hello.u.hello.name), "%s", broker_.Name().c_str());
	ASSERT_EQ(onering_msg_send(s, &hello, nullptr, 0, 0), 0);
	ASSERT_EQ(onering_msg_recv_timeout(s, &rep, nullptr, 0, nullptr, 5000), 0);
	ASSERT_EQ(rep.status, 0);
	int fds[5];
	ASSERT_EQ(RawQueueOpen(s, 1, "", &rep, fds), 0);
	const auto &o = rep.u.queue_open;
	EXPECT_EQ(o.bell, 0u) << "a 1.8 client's first queue gets bit 0 of a page of its own";
	off_t cons_size = lseek(fds[1], 0, SEEK_END);
	unsigned char *cons = nullptr, *bells = nullptr;
	ASSERT_NO_FATAL_FAILURE(MapRaw(fds[1], (size_t)cons_size, true, &cons));
	ASSERT_NO_FATAL_FAILURE(MapRaw(fds[4], ONERING_BELLS_SEG_SIZE, true, &bells));
	ASSERT_LT(o.bell, ONERING_BELL_BITS);
	auto *words = reinterpret_cast<ONERING_ATOMIC(uint64_t) *>(bells + ONERING_BELLS_OFFSET);
	auto *sqctl = reinterpret_cast<onering_sq_ctl *>(cons + ONERING_SQ_CTL_OFFSET);
	auto *sq = reinterpret_cast<onering_request *>(cons + ONERING_SQ_SLOTS_OFFSET);

	onering_request &r = sq[0];
	memset(&r, 0, sizeof(r));
	r.op = ONERING_REQ_POST;
	r.sub_id = group_;
	r.user_data = 1818;
	onering_atomic_store(&sqctl->sq_tail_pos, 1, onering_mo_release);
	// B1 as 1.7 and 1.8 ring it: the bit, no summary, and no kick (a busy
	// poller announces no sleep).
	onering_atomic_fetch_or(words + o.bell / 64, 1ull << (o.bell % 64), onering_mo_seq_cst);
	struct onering_event ev;
	ASSERT_EQ(onering_wait(consumer_, &ev, 1, 1, 10ll * 1000 * 1000 * 1000), 1)
		<< "the 1.8 client's post was not taken in 10 s";
	EXPECT_EQ(ev.kind, ONERING_EV_USER);
	EXPECT_EQ(ev.cookie, 1818u);
	munmap(cons, (size_t)cons_size);
	munmap(bells, ONERING_BELLS_SEG_SIZE);
	for (int fd : fds)
		close(fd);
	close(s);
}

// A hostile client writes its submission ring by hand: a POST whose 3
// priority bits say 7 is taken as the top priority (clamped, never an
// index), and a flag bit outside them drops that client, as any bad request.
TEST_F(PriorityTest, APostPriorityAboveTheLimitIsClampedAndOtherFlagBitsDropTheClient)
{
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=rr"}));
	int s = RawConnect(), fds[5];
	ASSERT_GE(s, 0);
	struct onering_msg rep;
	ASSERT_EQ(RawQueueOpen(s, ONERING_PRIO_LEVELS, "g", &rep, fds), 0);
	const auto &o = rep.u.queue_open;
	off_t ev_size = lseek(fds[0], 0, SEEK_END), cons_size = lseek(fds[1], 0, SEEK_END);
	unsigned char *ev = nullptr, *cons = nullptr, *bells = nullptr;
	ASSERT_NO_FATAL_FAILURE(MapRaw(fds[0], (size_t)ev_size, false, &ev));
	ASSERT_NO_FATAL_FAILURE(MapRaw(fds[1], (size_t)cons_size, true, &cons));
	ASSERT_NO_FATAL_FAILURE(MapRaw(fds[4], ONERING_BELLS_SEG_SIZE, true, &bells));
	ASSERT_LT(o.bell, ONERING_BELL_BITS);
	ASSERT_GE(o.bell, 64u) << "word 0 is the summary (ABI 1.9)";
	auto *words = reinterpret_cast<ONERING_ATOMIC(uint64_t) *>(bells + ONERING_BELLS_OFFSET);
	auto *bell = words + o.bell / 64;
	auto *ectl = reinterpret_cast<onering_events_ctl *>(ev + ONERING_EVENTS_CTL_OFFSET);
	auto *sqctl = reinterpret_cast<onering_sq_ctl *>(cons + ONERING_SQ_CTL_OFFSET);
	auto *sq = reinterpret_cast<onering_request *>(cons + ONERING_SQ_SLOTS_OFFSET);
	ASSERT_EQ(ectl->nr_levels, ONERING_PRIO_LEVELS);
	const auto *lctl = reinterpret_cast<const onering_levels_ctl *>(
		ev + onering_events_levels_offset(o.ev_capacity, ectl->packet_area_size));
	const auto *top = reinterpret_cast<const onering_event *>(
		ev + onering_events_level_slots(o.ev_capacity, ectl->packet_area_size, kHigh));

	auto submit = [&](uint64_t pos, uint16_t flags, uint64_t cookie) {
		onering_request &r = sq[pos & (o.sq_capacity - 1)];
		memset(&r, 0, sizeof(r));
		r.op = ONERING_REQ_POST;
		r.flags = flags;
		r.sub_id = o.group_id;
		r.user_data = cookie;
		onering_atomic_store(&sqctl->sq_tail_pos, pos + 1, onering_mo_release);
		// Its bell (B1, shm/abi.h), as the library rings it.
		onering_bell_ring(bell, 1ull << (o.bell % 64), words + ONERING_BELL_SUMMARY_WORD,
				  1ull << (o.bell / 64));
		eventfd_write(fds[2], 1); // the poller may sleep: kick it
	};
	submit(0, 7, 77);
	ASSERT_TRUE(WaitFor([&] {
		return onering_atomic_load(&lctl->level_tail_pos[kHigh - 1], onering_mo_acquire) == 1;
	})) << "the post lands in the top level";
	EXPECT_EQ(top[0].cookie, 77u);
	EXPECT_EQ(onering_event_prio(&top[0]), kHigh) << "7 is taken as " << kHigh;

	submit(1, 0x8, 78); // a bit outside the priority's three
	struct pollfd pfd = {s, POLLRDHUP, 0};
	ASSERT_EQ(poll(&pfd, 1, 10000), 1) << "the broker hangs up on that client";
	EXPECT_TRUE(pfd.revents & (POLLRDHUP | POLLHUP));
	munmap(ev, (size_t)ev_size);
	munmap(cons, (size_t)cons_size);
	munmap(bells, ONERING_BELLS_SEG_SIZE);
	for (int fd : fds)
		close(fd);
	close(s);
}

// Per-level counters: `onering stat --json` lists one object per level of a
// queue with levels (family "levels"), none for a queue with one.
TEST_F(PriorityTest, StatShowsDeliveredRecordsPerLevel)
{
	ASSERT_NO_FATAL_FAILURE(Start("rr", 2, 64));
	struct onering_user_event burst[3];
	memset(burst, 0x5a, sizeof(burst)); // padding a 0.3 caller never cleared
	for (uint64_t c = 0; c < 3; c++) {
		burst[c].flow = burst[c].cookie = c;
		burst[c].len = 0;
	}
	ASSERT_EQ(onering_post_burst(poster_, group_, burst, 3), 3);
	burst[0].cookie = 9;
	ASSERT_EQ(onering_post_burst_prio(poster_, group_, burst, 1, kHigh), 1);
	ASSERT_NO_FATAL_FAILURE(Fence());
	ASSERT_TRUE(WaitFor([&] { return onering_pending(consumer_) == 4; }));
	int st;
	std::string out = onering_test::RunCommand(std::string(ONERING_TOOL_PATH) +
							   " stat --json --name " + broker_.Name() +
							   " --socket-dir " + broker_.Dir(),
						   &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	json_error_t jerr;
	json_t *root = json_loads(out.c_str(), 0, &jerr);
	ASSERT_NE(root, nullptr) << jerr.text << "\n" << out;
	json_t *levels = json_object_get(root, "levels");
	ASSERT_EQ(json_array_size(levels), 2u) << out << "\n(two levels of one queue)";
	uint64_t delivered[2] = {9, 9};
	for (size_t i = 0; i < 2; i++) {
		json_t *o = json_array_get(levels, i);
		json_t *lv = json_object_get(o, "level");
		uint64_t level = json_is_integer(lv) ? (uint64_t)json_integer_value(lv)
						     : std::stoull(json_string_value(lv));
		ASSERT_LT(level, 2u) << out;
		delivered[level] = (uint64_t)json_integer_value(json_object_get(o, "delivered"));
		EXPECT_EQ(json_integer_value(json_object_get(o, "unconsumed")), level ? 1 : 3) << out;
	}
	EXPECT_EQ(delivered[0], 3u) << out;
	EXPECT_EQ(delivered[1], 1u) << out;
	json_decref(root);
}

} // namespace
