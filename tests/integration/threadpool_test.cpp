// SPDX-License-Identifier: MIT
// Thread-pool semantics: 8 worker threads, each with its own queue in one
// group (lifo, ack mode), 10,000 "connections" (an eventfd and a heap object
// each, the object's address as the cookie, DISPATCH mode), a writer making
// them ready at random and a deleter tearing random ones down while their
// records are in flight. After onering_del() + onering_teardown() the object
// is freed (poisoned under ASan): a worker touching it afterwards is a
// use-after-free. Each record is processed by exactly one thread, and never
// two records of one connection at once.
#include "harness.h"

#include <atomic>
#include <chrono>
#include <random>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <thread>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

using onering_test::Broker;

namespace {

constexpr uint32_t kAlive = 0xa11fe;
constexpr int kWorkers = 8;
constexpr int kConns = 10000;

struct Conn {
	uint32_t magic = kAlive;
	int fd = -1;
	onering_sub sub{};
	std::atomic<int> busy{0};       // a worker is on it now
	std::atomic<uint64_t> handled{0};
	bool deleted = false;
	bool slow = false;              // its requests take 2 ms: deletes catch them in flight
};

TEST(ThreadPool, RandomDeletesWhileRecordsAreInFlight)
{
	struct rlimit rl;
	ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
	// Each process (this one, and the broker that inherits the limit) holds
	// one fd per connection.
	if (rl.rlim_cur < 2 * kConns) {
		rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 2 * kConns);
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < kConns + 500)
		GTEST_SKIP() << "needs " << kConns + 500 << " fds, the limit is " << rl.rlim_cur;

	Broker broker;
	ASSERT_TRUE(broker.Start({"--group", "pool:policy=lifo,max_running=8", "--max-subs",
				  "32768", "--max-clients", "64"}));
	struct onering *att;
	ASSERT_EQ(broker.Attach(&att), 0);
	onering_queue *ctl; // the main thread's own queue: adds and deletes
	onering_queue_options co = {};
	co.sq_capacity = 4096;
	ASSERT_EQ(onering_queue_open(att, &co, &ctl), 0);
	uint32_t pool;
	ASSERT_EQ(onering_group_id(att, "pool", &pool), 0);

	std::vector<Conn *> conns(kConns);
	for (int i = 0; i < kConns; i++) {
		Conn *c = new Conn;
		c->slow = i % 10 == 0;
		c->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		ASSERT_GE(c->fd, 0) << "conn " << i;
		onering_add_options a = {};
		a.fd = c->fd;
		a.events = POLLIN;
		a.mode = ONERING_DISPATCH;
		a.cookie = reinterpret_cast<uint64_t>(c);
		a.group = pool;
		ASSERT_EQ(onering_add_opts(ctl, &a, &c->sub), 0) << "conn " << i;
		conns[i] = c;
	}

	std::atomic<bool> stop{false};
	std::atomic<uint64_t> processed{0}, overlaps{0}, dead_seen{0}, errors{0};
	std::vector<std::thread> workers;
	for (int w = 0; w < kWorkers; w++)
		workers.emplace_back([&] {
			onering_queue *q;
			onering_queue_options o = {};
			o.flags = ONERING_QUEUE_ACK;
			o.group = "pool";
			o.capacity = 4096;
			// A re-arm slot for every record the ring can hold: lifo gives
			// a worker at work records while its ring has room, and each
			// done re-arms through this ring.
			o.sq_capacity = 4096;
			if (onering_queue_open(att, &o, &q) < 0) {
				errors++;
				return;
			}
			onering_event ev[16];
			while (!stop) {
				int n = onering_wait(q, ev, 1, 16, 5 * 1000 * 1000);
				if (n < 0) {
					errors++;
					break;
				}
				for (int i = 0; i < n; i++) {
					Conn *c = reinterpret_cast<Conn *>(ev[i].cookie);
					// A freed Conn is poisoned: ASan stops here.
					if (c->magic != kAlive)
						dead_seen++;
					if (c->busy.exchange(1))
						overlaps++;
					eventfd_t v;
					eventfd_read(c->fd, &v); // the "request"
					auto until = std::chrono::steady_clock::now() +
						     std::chrono::microseconds(c->slow ? 2000 : 20);
					while (std::chrono::steady_clock::now() < until)
						; // some work, with the record in flight
					c->handled++;
					c->busy = 0;
					processed++;
					if (onering_done(q, &ev[i]) < 0)
						errors++;
				}
			}
			onering_queue_close(q);
		});

	std::mt19937 rng(12345);
	std::vector<bool> gone(kConns, false); // outside the (poisoned) objects
	int live = kConns, busy_deletes = 0, slow_tried = 0;
	auto tear_down = [&](int i) {
		Conn *c = conns[i];
		int r = onering_del(ctl, c->sub);
		ASSERT_GE(r, 0) << onering_strerror(r);
		busy_deletes += r == 1;
		ASSERT_EQ(onering_teardown(ctl, c->sub, 5ll * 1000 * 1000 * 1000), 0);
		uint64_t before = c->handled;
		gone[i] = true;
		c->deleted = true;
		c->magic = 0;
		close(c->fd);
		c->fd = -1;
		EXPECT_EQ(c->handled.load(), before);
#ifdef __SANITIZE_ADDRESS__
		ASAN_POISON_MEMORY_REGION(c, sizeof(*c));
#endif
		live--;
	};
	auto drain = [&] { // until the pool has been quiet for 20 ms (bounded)
		uint64_t last = ~0ull;
		for (int k = 0; k < 500 && processed.load() != last; k++) {
			last = processed.load();
			usleep(20000);
		}
	};
	// Phase 1: random readiness and random deletes, as fast as they come.
	for (int round = 0; round < 400000 && live > kConns - 2000; round++) {
		int i = (int)(rng() % kConns);
		if (gone[i] || conns[i]->slow)
			continue;
		eventfd_write(conns[i]->fd, 1);
		if (round % 40 == 0)
			tear_down(i);
	}
	drain();
	// Phase 2: deletes that catch a worker holding the record (slow
	// connections take 2 ms): onering_del() says so, teardown waits.
	for (int i = 0; i < kConns && slow_tried < 50; i++) {
		if (gone[i] || !conns[i]->slow)
			continue;
		Conn *c = conns[i];
		slow_tried++;
		eventfd_write(c->fd, 1);
		auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
		while (!c->busy.load() && std::chrono::steady_clock::now() < until)
			;
		tear_down(i);
	}
	drain();
	stop = true;
	for (auto &t : workers)
		t.join();
	EXPECT_EQ(errors.load(), 0u);
	EXPECT_EQ(dead_seen.load(), 0u) << "a record of a torn-down connection was processed";
	EXPECT_EQ(overlaps.load(), 0u) << "two threads on one connection at once";
	EXPECT_GT(processed.load(), 1000u);
	EXPECT_GT(busy_deletes, 0) << "no delete caught a record in flight: the test proved little";
	RecordProperty("busy_deletes", busy_deletes);
	RecordProperty("slow_tried", slow_tried);
	RecordProperty("processed", (int)processed.load());
	for (int i = 0; i < kConns; i++) {
		Conn *c = conns[i];
#ifdef __SANITIZE_ADDRESS__
		if (gone[i])
			ASAN_UNPOISON_MEMORY_REGION(c, sizeof(*c));
#endif
		if (c->fd >= 0)
			close(c->fd);
		delete c;
	}
	onering_detach(att);
}

} // namespace
