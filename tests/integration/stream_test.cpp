// SPDX-License-Identifier: MIT
// Completion-mode sockets (issue 13): the broker receives into and sends
// from the queue's stream area; the application makes no system call.
#include <gtest/gtest.h>
#include <jansson.h>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "harness.h"

using onering_test::AllThreadsStopped;
using onering_test::Broker;
using onering_test::ExitGroup;
using onering_test::InstallSeccompKillAll;
using onering_test::ReadFile;

namespace {

using Clock = std::chrono::steady_clock;

// A listening TCP socket on 127.0.0.1, an ephemeral port (*port).
int TcpListener(uint16_t *port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a = {};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	if (s < 0 || bind(s, (sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4096) < 0 ||
	    getsockname(s, (sockaddr *)&a, &len) < 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return s;
}

int TcpConnect(uint16_t port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a = {};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	if (s >= 0 && connect(s, (sockaddr *)&a, sizeof(a)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

// n connections to 127.0.0.1:port, appended to *fds; false at the first that fails.
bool ConnectMany(uint16_t port, int n, std::vector<int> *fds)
{
	for (int i = 0; i < n; i++) {
		int c = TcpConnect(port);
		if (c < 0)
			return false;
		fds->push_back(c);
	}
	return true;
}

// A pattern that tells one byte from the next, and one payload from another.
std::vector<unsigned char> Payload(size_t n, unsigned seed)
{
	std::vector<unsigned char> v(n);
	for (size_t i = 0; i < n; i++)
		v[i] = (unsigned char)((i * 131 + seed * 7 + (i >> 8)) & 0xff);
	return v;
}

// Write all of data (a blocking socket).
bool WriteAll(int fd, const unsigned char *data, size_t n)
{
	while (n) {
		ssize_t w = write(fd, data, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		data += w;
		n -= (size_t)w;
	}
	return true;
}

// Read until EOF (or n bytes and EOF), bounded by a deadline (poll).
std::vector<unsigned char> ReadToEof(int fd, int timeout_ms, int *err = nullptr)
{
	std::vector<unsigned char> got;
	unsigned char buf[65536];
	auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
	for (;;) {
		pollfd p = {fd, POLLIN, 0};
		int left = (int)std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now())
				   .count();
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (err)
				*err = r < 0 ? errno : 0;
			break;
		}
		got.insert(got.end(), buf, buf + r);
	}
	return got;
}

// An echo server on a queue of its own, run by a thread: every received
// byte is sent back from the receive buffer it arrived in (zero copy); at
// the end of a stream the connection is closed once the echo is out.
struct EchoServer {
	onering *att = nullptr;
	onering_queue *q = nullptr;
	std::thread th;
	std::atomic<bool> stop{false};
	std::atomic<long> accepted{0}, closed{0}, resets{0}, recvs{0};
	std::atomic<long> bytes{0};
	// false: a client that keeps every receive buffer (held) until release
	std::atomic<bool> return_buffers{true}, release{false};
	std::vector<onering_event> held;
	bool echo = true; // false: received bytes are only counted (a sink)
	// RECV records whose bytes are being echoed, by receive buffer: given
	// back when their SENT comes (the SEND's tag is the buffer).
	std::vector<onering_event> echoing = std::vector<onering_event>(4096);

	bool Open(const Broker &b, uint32_t rx = 64, uint32_t buf = 16384, const char *group = nullptr)
	{
		onering_queue_options o = {};
		o.group = group;
		o.capacity = 4096;
		o.sq_capacity = 1024;
		o.stream_rx = rx;
		o.stream_buf = buf;
		return b.Attach(&att) == 0 && onering_queue_open(att, &o, &q) == 0;
	}
	// A TCP listener on 127.0.0.1 (*port) in completion mode on q (cookie 7);
	// the test's copy closed.
	bool Listen(uint16_t *port, onering_sub *ls)
	{
		int l = TcpListener(port);
		if (l < 0)
			return false;
		int r = onering_stream_add(q, l, 7, ls);
		close(l);
		return r == 0;
	}
	void Run()
	{
		th = std::thread([this] { Loop(); });
	}
	void Loop()
	{
		onering_event ev[64];
		while (!stop.load()) {
			if (release.load() && !held.empty()) {
				for (const onering_event &e : held)
					Submit([&] { return onering_stream_done(q, &e); });
				held.clear();
				return_buffers = true;
			}
			int n = onering_wait(q, ev, 1, 64, 20 * 1000 * 1000);
			for (int i = 0; i < n; i++)
				Handle(ev[i]);
		}
	}
	// Submission ring full: consume and retry, bounded.
	template <typename F> void Submit(F f)
	{
		for (int tries = 0; tries < 100000; tries++) {
			if (f() != -EAGAIN)
				return;
			usleep(50);
		}
		ADD_FAILURE() << "submission ring stayed full";
	}
	void Handle(const onering_event &e)
	{
		ASSERT_EQ(e.kind, ONERING_EV_STREAM);
		onering_sub conn = onering_event_sub(q, &e);
		const onering_event_stream &s = e.payload.stream;
		switch (s.op) {
		case ONERING_STREAM_ACCEPTED:
			accepted++;
			break;
		case ONERING_STREAM_RECV:
			if (s.status > 0) {
				recvs++;
				bytes += s.status;
				if (!return_buffers.load()) {
					held.push_back(e);
					break;
				}
				if (!echo) {
					Submit([&] { return onering_stream_done(q, &e); });
					break;
				}
				const void *data = onering_stream_data(q, &e);
				ASSERT_NE(data, nullptr);
				ASSERT_LT(s.buf, echoing.size());
				echoing[s.buf] = e;
				Submit([&] {
					return onering_stream_send(q, conn, data, (size_t)s.status, s.buf);
				});
			} else {
				if (s.status < 0)
					resets++;
				Submit([&] {
					return onering_stream_close(q, conn, s.status < 0 ? ONERING_CLOSE_ABORT : 0);
				});
			}
			break;
		case ONERING_STREAM_SENT:
			EXPECT_GT(s.status, 0) << "a send failed";
			ASSERT_LT(s.tag, echoing.size());
			Submit([&] { return onering_stream_done(q, &e); }); // nothing to give back
			// The echoed RECV: its receive buffer back.
			Submit([&] { return onering_stream_done(q, &echoing[s.tag]); });
			break;
		case ONERING_STREAM_CLOSED:
			closed++;
			break;
		default:
			ADD_FAILURE() << "unknown stream op " << s.op;
		}
	}
	~EchoServer()
	{
		stop = true;
		if (th.joinable())
			th.join();
		if (q)
			onering_queue_close(q);
		if (att)
			onering_detach(att);
	}
};

// Queue options with a stream area: rx receive and tx transmit buffers of
// buf bytes, a ring of cap records and a submission ring of sq requests.
onering_queue_options StreamOptions(uint32_t cap, uint32_t sq, uint32_t rx, uint32_t tx,
				    uint32_t buf)
{
	onering_queue_options o = {};
	o.capacity = cap;
	o.sq_capacity = sq;
	o.stream_rx = rx;
	o.stream_tx = tx;
	o.stream_buf = buf;
	return o;
}

// In a forked child: attach, open a queue with a stream area (rx, tx
// buffers of buf bytes; ring capacities cap, 0 = default) and put listener
// l on it. false: something failed (the child exits).
bool ChildServer(const Broker &broker, int l, uint32_t rx, uint32_t tx, uint32_t buf, uint32_t cap,
		 onering_queue **q)
{
	onering *att;
	onering_queue_options o = StreamOptions(cap, cap, rx, tx, buf);
	onering_sub ls;
	return broker.Attach(&att) == 0 && onering_queue_open(att, &o, q) == 0 &&
	       onering_stream_add(*q, l, 1, &ls) == 0;
}

// Wait (bounded: 10 s) until pred holds.
template <typename P> bool WaitFor(P pred, int ms = 10000)
{
	auto end = Clock::now() + std::chrono::milliseconds(ms);
	while (!pred()) {
		if (Clock::now() > end)
			return false;
		usleep(1000);
	}
	return true;
}

// Send payload on a connected socket from a thread while this one reads the
// echo; half-close after the last byte; true when the echo is byte-for-byte
// the payload followed by the end of stream.
::testing::AssertionResult EchoRoundTrip(int fd, const std::vector<unsigned char> &payload)
{
	bool wrote = false;
	std::thread w([&] {
		wrote = WriteAll(fd, payload.data(), payload.size()) && shutdown(fd, SHUT_WR) == 0;
	});
	int err = -1;
	std::vector<unsigned char> got = ReadToEof(fd, 20000, &err);
	w.join();
	if (!wrote)
		return ::testing::AssertionFailure() << "write failed: " << strerror(errno);
	if (err != 0)
		return ::testing::AssertionFailure() << "no end of stream (err " << err << "), "
						     << got.size() << " of " << payload.size() << " bytes";
	if (got != payload) {
		size_t i = 0;
		while (i < got.size() && i < payload.size() && got[i] == payload[i])
			i++;
		return ::testing::AssertionFailure() << got.size() << " bytes back for " << payload.size()
						     << ", first difference at " << i;
	}
	return ::testing::AssertionSuccess();
}

const size_t kSizes[] = {1, 2, 100, 4096, 16383, 16384, 16385, 65537, 300000, 1u << 20};

// A queue (options o) with one socketpair end of the given type added in
// completion mode (cookie 1); the test keeps the other end, peer. All of it
// closed at the end of the scope.
struct StreamPair {
	onering *att = nullptr;
	onering_queue *q = nullptr;
	onering_sub conn = {0, 0};
	int peer = -1;

	::testing::AssertionResult Open(const Broker &b, const onering_queue_options &o, int type)
	{
		int sp[2];
		if (b.Attach(&att) != 0 || onering_queue_open(att, &o, &q) != 0)
			return ::testing::AssertionFailure() << "attach or queue_open";
		if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sp) < 0)
			return ::testing::AssertionFailure() << "socketpair: " << strerror(errno);
		peer = sp[0];
		int r = onering_stream_add(q, sp[1], 1, &conn);
		close(sp[1]);
		if (r != 0)
			return ::testing::AssertionFailure() << "onering_stream_add: " << r;
		return ::testing::AssertionSuccess();
	}
	~StreamPair()
	{
		if (peer >= 0)
			close(peer);
		if (q)
			onering_queue_close(q);
		if (att)
			onering_detach(att);
	}
};

} // namespace

// A connection's requests come only from its own queue (its stream area and
// the back-pressure on its records are that queue's): a SEND posted on
// another queue of the same client is counted as a bad request there and
// sends nothing; from its own queue the connection works as before.
TEST(StreamTest, ASendFromAnotherQueueOfTheClientIsRefused)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	onering_queue_options o = StreamOptions(64, 64, 4, 4, 4096);
	StreamPair pair;
	ASSERT_TRUE(pair.Open(broker, o, SOCK_STREAM));
	onering_queue *other;
	ASSERT_EQ(onering_queue_open(pair.att, &o, &other), 0) << onering_last_error(pair.att);
	auto bad_requests = [&] {
		uint64_t n = 0;
		for (const onering_msg &m : onering_test::StatsItems(broker))
			if (m.u.stats_item.what == ONERING_STATS_QUEUE)
				n += m.u.stats_item.counter[ONERING_QC_BAD_REQUESTS];
		return n;
	};
	ASSERT_EQ(bad_requests(), 0u);
	char *b = static_cast<char *>(onering_stream_buffer(other));
	ASSERT_NE(b, nullptr);
	memcpy(b, "wrong", 5);
	ASSERT_EQ(onering_stream_send(other, pair.conn, b, 5, 1), 0);
	ASSERT_TRUE(WaitFor([&] { return bad_requests() == 1; })) << bad_requests();
	char got[16];
	EXPECT_EQ(recv(pair.peer, got, sizeof(got), MSG_DONTWAIT), -1) << "the bytes went out";
	EXPECT_EQ(errno, EAGAIN);
	// From its own queue: sent, with its SENT record.
	b = static_cast<char *>(onering_stream_buffer(pair.q));
	ASSERT_NE(b, nullptr);
	memcpy(b, "right", 5);
	ASSERT_EQ(onering_stream_send(pair.q, pair.conn, b, 5, 2), 0);
	onering_event e;
	ASSERT_EQ(onering_wait(pair.q, &e, 1, 1, 5000ll * 1000 * 1000), 1);
	EXPECT_EQ(e.payload.stream.op, (uint32_t)ONERING_STREAM_SENT);
	EXPECT_EQ(e.payload.stream.status, 5);
	ASSERT_EQ(recv(pair.peer, got, sizeof(got), 0), 5);
	EXPECT_EQ(std::string(got, 5), "right");
	EXPECT_EQ(bad_requests(), 1u);
	onering_queue_close(other);
}

// TCP: payloads from 1 byte to 1 MiB, each on a connection the broker
// accepted, come back byte for byte, then the end of stream.
TEST(StreamTest, EchoesOverTcpFromOneByteToOneMiB)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	EchoServer srv;
	ASSERT_TRUE(srv.Open(broker));
	uint16_t port;
	onering_sub ls;
	ASSERT_TRUE(srv.Listen(&port, &ls)) << onering_last_error(srv.att);
	srv.Run();
	unsigned seed = 0;
	for (size_t n : kSizes) {
		int c = TcpConnect(port);
		ASSERT_GE(c, 0);
		EXPECT_TRUE(EchoRoundTrip(c, Payload(n, ++seed))) << n << " bytes";
		close(c);
	}
	EXPECT_TRUE(WaitFor([&] { return srv.closed.load() == (long)std::size(kSizes); }))
		<< srv.closed.load() << " connections closed";
	EXPECT_EQ(srv.accepted.load(), (long)std::size(kSizes));
}

// The same over Unix stream sockets.
TEST(StreamTest, EchoesOverUnixStreamSockets)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	EchoServer srv;
	ASSERT_TRUE(srv.Open(broker));
	sockaddr_un a = {};
	a.sun_family = AF_UNIX;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/echo.sock", broker.Dir().c_str());
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_GE(l, 0);
	ASSERT_EQ(bind(l, (sockaddr *)&a, sizeof(a)), 0);
	ASSERT_EQ(listen(l, 128), 0);
	onering_sub ls;
	ASSERT_EQ(onering_stream_add(srv.q, l, 7, &ls), 0) << onering_last_error(srv.att);
	close(l);
	srv.Run();
	unsigned seed = 100;
	for (size_t n : kSizes) {
		int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_GE(c, 0);
		ASSERT_EQ(connect(c, (sockaddr *)&a, sizeof(a)), 0);
		EXPECT_TRUE(EchoRoundTrip(c, Payload(n, ++seed))) << n << " bytes";
		close(c);
	}
	// A connected socket added by the client (not accepted): a socketpair.
	int sp[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	onering_sub cs;
	ASSERT_EQ(onering_stream_add(srv.q, sp[1], 9, &cs), 0);
	close(sp[1]);
	EXPECT_TRUE(EchoRoundTrip(sp[0], Payload(70000, 3)));
	close(sp[0]);
	// Seqpacket keeps its messages: three waiting in the socket before it is
	// added (one readiness edge for all three, and no reply whose write
	// space could bring another) come in as three records, each whole.
	EchoServer sink;
	ASSERT_TRUE(sink.Open(broker));
	sink.echo = false;
	sink.Run();
	int qp[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, qp), 0);
	const size_t msgs[] = {5, 300, 7};
	for (size_t i = 0; i < std::size(msgs); i++) {
		std::vector<unsigned char> m = Payload(msgs[i], (unsigned)i + 50);
		ASSERT_EQ(send(qp[0], m.data(), m.size(), 0), (ssize_t)m.size());
	}
	ASSERT_EQ(onering_stream_add(sink.q, qp[1], 10, &cs), 0);
	close(qp[1]);
	EXPECT_TRUE(WaitFor([&] { return sink.recvs.load() == 3; }, 5000))
		<< sink.recvs.load() << " of 3 messages received";
	EXPECT_EQ(sink.bytes.load(), 312);
	close(qp[0]);
	unlink(a.sun_path);
}

// 1,000 connections open at once, each with its own message in flight.
TEST(StreamTest, ServesAThousandConnectionsAtOnce)
{
	rlimit rl;
	ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 4096 && rl.rlim_max >= 4096) {
		rl.rlim_cur = 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2200)
		GTEST_SKIP() << "RLIMIT_NOFILE " << rl.rlim_cur << " is below 2200";
	Broker broker;
	ASSERT_TRUE(broker.Start());
	EchoServer srv;
	ASSERT_TRUE(srv.Open(broker, 256, 4096));
	uint16_t port;
	onering_sub ls;
	ASSERT_TRUE(srv.Listen(&port, &ls)) << onering_last_error(srv.att);
	srv.Run();
	constexpr int kConns = 1000;
	std::vector<int> fds;
	ASSERT_TRUE(ConnectMany(port, kConns, &fds)) << "connection " << fds.size();
	ASSERT_TRUE(WaitFor([&] { return srv.accepted.load() == kConns; }))
		<< srv.accepted.load() << " accepted; refused " << srv.closed.load() << " closed";
	for (int i = 0; i < kConns; i++) {
		std::string m = "message " + std::to_string(i) + " of 1000";
		ASSERT_TRUE(WriteAll(fds[i], (const unsigned char *)m.data(), m.size()));
	}
	for (int i = 0; i < kConns; i++) {
		std::string m = "message " + std::to_string(i) + " of 1000";
		std::string got;
		char buf[64];
		auto end = Clock::now() + std::chrono::seconds(10);
		while (got.size() < m.size() && Clock::now() < end) {
			pollfd p = {fds[i], POLLIN, 0};
			if (poll(&p, 1, 1000) == 1) {
				ssize_t r = read(fds[i], buf, sizeof(buf));
				if (r <= 0)
					break;
				got.append(buf, (size_t)r);
			}
		}
		EXPECT_EQ(got, m);
	}
	for (int c : fds)
		close(c);
	EXPECT_TRUE(WaitFor([&] { return srv.closed.load() == kConns; }))
		<< srv.closed.load() << " closed";
}

// The stream counter `name` of this process's queue with a stream area (the
// test's only one), from `onering stat --json`; -1 if it is not there.
long StreamCounter(const Broker &b, const char *name)
{
	int st;
	std::string out = onering_test::RunCommand(std::string(ONERING_TOOL_PATH) +
						   " stat --json --name " + b.Name() +
						   " --socket-dir " + b.Dir(), &st);
	json_error_t jerr;
	json_t *root = json_loads(out.c_str(), 0, &jerr);
	long v = -1;
	json_t *item;
	size_t i;
	json_array_foreach(json_object_get(root, "streams"), i, item) {
		if (json_integer_value(json_object_get(item, "pid")) == (json_int_t)getpid())
			v = json_is_integer(json_object_get(item, name))
				    ? (long)json_integer_value(json_object_get(item, name)) : -1;
	}
	json_decref(root);
	if (v < 0)
		ADD_FAILURE() << name << " of pid " << getpid() << "'s queue not found in:\n" << out;
	return v;
}

// Raise RLIMIT_NOFILE to `want` if the hard limit lets us; false if it stays below.
bool NofileAtLeast(rlim_t want)
{
	rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return false;
	if (rl.rlim_cur < want && rl.rlim_max >= want) {
		rl.rlim_cur = want;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= want;
}

// A broker, an echo server's queue, and connections waiting in the backlog
// of a TCP listener not yet handed to the broker; TearDown closes them and
// waits for the server to see every close.
class AcceptTest : public ::testing::Test {
protected:
	Broker broker;
	EchoServer srv;
	int listener = -1;
	std::vector<int> fds;

	void Backlog(uint32_t rx, int n)
	{
		ASSERT_TRUE(broker.Start());
		ASSERT_TRUE(srv.Open(broker, rx, 4096));
		srv.Run();
		uint16_t port;
		ASSERT_GE(listener = TcpListener(&port), 0);
		ASSERT_TRUE(ConnectMany(port, n, &fds)) << "connection " << fds.size();
	}
	// Hand the listener to the broker (the test's copy closed): 0 or -errno.
	int HandOver()
	{
		onering_sub ls;
		int r = onering_stream_add(srv.q, listener, 7, &ls);
		close(listener);
		listener = -1;
		return r;
	}
	void TearDown() override
	{
		if (listener >= 0)
			close(listener);
		for (int c : fds)
			close(c);
		if (!HasFatalFailure()) { // else they may never have been accepted
			EXPECT_TRUE(WaitFor([&] { return srv.closed.load() == (long)fds.size(); }))
				<< srv.closed.load() << " of " << fds.size() << " closed";
		}
	}
};

// 1,200 connections already waiting in the listen backlog when the listener
// is handed over: the multishot accept fills the broker's completion ring
// (512 entries) and the kernel ends it with a connection, not an error. The
// broker arms it again at once (not after the 100 ms pause it keeps for
// errors, counted as accept_pauses): every connection is accepted, no pause.
TEST_F(AcceptTest, ABurstLargerThanTheCompletionRingIsAcceptedWithoutAPause)
{
	constexpr int kConns = 1200;
	if (!NofileAtLeast(4096))
		GTEST_SKIP() << "RLIMIT_NOFILE cannot reach 4096";
	// A smaller listen backlog would hold connect() in SYN retries.
	if (std::stol("0" + ReadFile("/proc/sys/net/core/somaxconn")) < kConns)
		GTEST_SKIP() << "net.core.somaxconn is below " << kConns;
	ASSERT_NO_FATAL_FAILURE(Backlog(256, kConns));
	ASSERT_EQ(HandOver(), 0) << onering_last_error(srv.att);
	EXPECT_TRUE(WaitFor([&] { return srv.accepted.load() == kConns; }))
		<< srv.accepted.load() << " of " << kConns << " accepted";
	EXPECT_EQ(StreamCounter(broker, "accepted"), kConns);
	EXPECT_EQ(StreamCounter(broker, "accept_pauses"), 0);
}

// A listener whose accept fails (the broker at its fd limit: EMFILE) waits
// 100 ms and is armed again, counted as accept_pauses; once the limit is
// raised, the connections that waited in the backlog are accepted. Root
// only: it sets the broker's RLIMIT_NOFILE with prlimit(2), to what it holds
// plus the one fd the listener comes in on (an accept takes the limit when it
// is armed, so the limit is lowered before the listener is handed over).
TEST_F(AcceptTest, AnAcceptThatFailsIsArmedAgainAfterAPause)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "prlimit on the broker needs root";
	constexpr int kConns = 8;
	ASSERT_NO_FATAL_FAILURE(Backlog(64, kConns));
	rlimit old;
	ASSERT_EQ(prlimit(broker.Pid(), RLIMIT_NOFILE, nullptr, &old), 0);
	int held = broker.FdCount();
	ASSERT_GT(held, 0);
	rlimit low = {(rlim_t)held + 1, old.rlim_max};
	ASSERT_EQ(prlimit(broker.Pid(), RLIMIT_NOFILE, &low, nullptr), 0);
	int r = HandOver();
	const std::string log = broker.Dir() + "/oneringd.log";
	bool failed = WaitFor([&] {
		return ReadFile(log).find("Too many open files; armed again within 100 ms") !=
		       std::string::npos;
	});
	// The limit back before anything else can fail on it.
	ASSERT_EQ(prlimit(broker.Pid(), RLIMIT_NOFILE, &old, nullptr), 0);
	ASSERT_EQ(r, 0) << onering_last_error(srv.att);
	ASSERT_TRUE(failed) << srv.accepted.load() << " accepted, no failed accept logged";
	EXPECT_TRUE(WaitFor([&] { return srv.accepted.load() == kConns; }))
		<< srv.accepted.load() << " of " << kConns << " accepted after the limit went up";
	EXPECT_GE(StreamCounter(broker, "accept_pauses"), 1);
	EXPECT_EQ(StreamCounter(broker, "accepted"), kConns);
}

// A listener whose queue is a group member hands its connections to the
// group: round robin over the members (each echoes on its own), and with
// policy least to the member holding the fewest.
TEST(StreamTest, AcceptedConnectionsGoToTheListenersGroup)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	EchoServer a, b;
	ASSERT_TRUE(a.Open(broker, 64, 16384, "web"));
	ASSERT_TRUE(b.Open(broker, 64, 16384, "web"));
	uint16_t port;
	onering_sub ls;
	ASSERT_TRUE(a.Listen(&port, &ls));
	a.Run();
	b.Run();
	constexpr int kConns = 10;
	unsigned seed = 7;
	for (int i = 0; i < kConns; i++) {
		int c = TcpConnect(port);
		ASSERT_GE(c, 0);
		EXPECT_TRUE(EchoRoundTrip(c, Payload(1000, ++seed))) << "connection " << i;
		close(c);
	}
	EXPECT_TRUE(WaitFor([&] { return a.accepted.load() + b.accepted.load() == kConns; }));
	EXPECT_EQ(a.accepted.load(), kConns / 2) << "in turn";
	EXPECT_EQ(b.accepted.load(), kConns / 2) << "in turn";

}

// With policy least, the member holding the fewest connections takes the
// next one: b holds three (sockets it added), a its listener; three
// connections all go to a (round robin would give b one).
TEST(StreamTest, AcceptedConnectionsGoToTheLeastLoadedMember)
{
	Broker broker;
	ASSERT_TRUE(broker.Start({"--group", "lst:policy=least"}));
	EchoServer a, b;
	ASSERT_TRUE(a.Open(broker, 64, 16384, "lst"));
	ASSERT_TRUE(b.Open(broker, 64, 16384, "lst"));
	int held[3][2];
	onering_sub s;
	for (auto &sp : held) {
		ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
		ASSERT_EQ(onering_stream_add(b.q, sp[1], 1, &s), 0);
		close(sp[1]);
	}
	uint16_t port;
	ASSERT_TRUE(a.Listen(&port, &s));
	a.Run();
	b.Run();
	std::vector<int> open;
	for (int i = 0; i < 3; i++) {
		int c = TcpConnect(port);
		ASSERT_GE(c, 0);
		open.push_back(c);
		ASSERT_TRUE(WaitFor([&] { return a.accepted.load() + b.accepted.load() == i + 1; }));
	}
	EXPECT_EQ(a.accepted.load(), 3);
	EXPECT_EQ(b.accepted.load(), 0);
	for (int c : open)
		close(c);
	for (auto &sp : held)
		close(sp[0]);
}

// Half-close both ways: the server shuts its sending side down and keeps
// receiving; the client's end of stream then reaches the server.
TEST(StreamTest, HalfCloseKeepsTheOtherDirection)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	EchoServer srv;
	ASSERT_TRUE(srv.Open(broker));
	uint16_t port;
	onering_sub ls;
	ASSERT_TRUE(srv.Listen(&port, &ls)) << onering_last_error(srv.att);
	int c = TcpConnect(port);
	ASSERT_GE(c, 0);
	onering_event ev[16];
	onering_sub conn = {0, 0};
	ASSERT_TRUE(WaitFor([&] {
		int n = onering_poll(srv.q, ev, 16);
		for (int i = 0; i < n; i++)
			if (ev[i].payload.stream.op == ONERING_STREAM_ACCEPTED)
				conn = onering_event_sub(srv.q, &ev[i]);
		return conn.id != 0;
	}));
	EXPECT_EQ(ev[0].cookie, 7u) << "an accepted connection carries the listener's cookie";
	EXPECT_EQ(ev[0].payload.stream.buf, ls.id) << "and names the listener";
	// The application may ask for the socket: its peer is our end.
	int afd = onering_stream_fd(srv.q, conn);
	ASSERT_GE(afd, 0) << onering_strerror(afd);
	sockaddr_in peer = {}, mine = {};
	socklen_t pl = sizeof(peer), ml = sizeof(mine);
	ASSERT_EQ(getpeername(afd, (sockaddr *)&peer, &pl), 0);
	ASSERT_EQ(getsockname(c, (sockaddr *)&mine, &ml), 0);
	EXPECT_EQ(peer.sin_port, mine.sin_port);
	close(afd);
	EXPECT_EQ(onering_stream_fd(srv.q, onering_sub{conn.id, conn.gen + 1}), -ENOENT)
		<< "not a connection of ours";
	// The server says "bye" and shuts its sending side down.
	unsigned char *b = (unsigned char *)onering_stream_buffer(srv.q);
	ASSERT_NE(b, nullptr);
	memcpy(b, "bye", 3);
	ASSERT_EQ(onering_stream_send(srv.q, conn, b, 3, 55), 0);
	ASSERT_EQ(onering_stream_close(srv.q, conn, ONERING_CLOSE_WRITE), 0);
	int err = -1;
	std::vector<unsigned char> got = ReadToEof(c, 5000, &err);
	EXPECT_EQ(std::string(got.begin(), got.end()), "bye");
	EXPECT_EQ(err, 0) << "the client sees the end of stream";
	// The other direction still works: the client writes, then ends.
	ASSERT_TRUE(WriteAll(c, (const unsigned char *)"still here", 10));
	ASSERT_EQ(shutdown(c, SHUT_WR), 0);
	std::string recv;
	bool sent = false, eof = false;
	ASSERT_TRUE(WaitFor([&] {
		int n = onering_poll(srv.q, ev, 16);
		for (int i = 0; i < n; i++) {
			const onering_event_stream &s = ev[i].payload.stream;
			if (s.op == ONERING_STREAM_SENT) {
				EXPECT_EQ(s.status, 3);
				EXPECT_EQ(s.tag, 55u);
				sent = true;
				EXPECT_EQ(onering_stream_done(srv.q, &ev[i]), 0);
			} else if (s.op == ONERING_STREAM_RECV && s.status > 0) {
				recv.append((const char *)onering_stream_data(srv.q, &ev[i]), (size_t)s.status);
				EXPECT_EQ(onering_stream_done(srv.q, &ev[i]), 0);
			} else if (s.op == ONERING_STREAM_RECV && s.status == 0) {
				eof = true;
			}
		}
		return sent && eof;
	}));
	EXPECT_EQ(recv, "still here");
	ASSERT_EQ(onering_stream_close(srv.q, conn, 0), 0);
	bool closed = false;
	EXPECT_TRUE(WaitFor([&] {
		int n = onering_poll(srv.q, ev, 16);
		for (int i = 0; i < n; i++)
			closed |= ev[i].payload.stream.op == ONERING_STREAM_CLOSED;
		return closed;
	}));
	close(c);
}

// A peer that resets: the server's receive says -ECONNRESET; it closes and
// the broker holds nothing of the connection afterwards.
TEST(StreamTest, APeerThatResetsEndsItsConnection)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	EchoServer srv;
	ASSERT_TRUE(srv.Open(broker));
	uint16_t port;
	onering_sub ls;
	ASSERT_TRUE(srv.Listen(&port, &ls)) << onering_last_error(srv.att);
	srv.Run();
	int base = broker.FdCount();
	int c = TcpConnect(port);
	ASSERT_GE(c, 0);
	ASSERT_TRUE(WriteAll(c, (const unsigned char *)"ping", 4));
	char buf[4];
	ASSERT_EQ(read(c, buf, 4), 4); // the echo: the server took everything
	linger lg = {1, 0};
	ASSERT_EQ(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(c); // RST
	EXPECT_TRUE(WaitFor([&] { return srv.resets.load() == 1; })) << "no -ECONNRESET seen";
	EXPECT_TRUE(WaitFor([&] { return srv.closed.load() == 1; }));
	EXPECT_TRUE(WaitFor([&] { return broker.FdCount() == base; }))
		<< broker.FdCount() << " fds, " << base << " before";
}

// A client that stops giving receive buffers back stalls its own
// connections (the bytes wait in the kernel: back-pressure to the sender),
// not another client's; once it gives them back, its bytes flow again.
TEST(StreamTest, AClientThatKeepsItsBuffersStallsOnlyItself)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	EchoServer hog, good;
	ASSERT_TRUE(hog.Open(broker, 4, 4096));
	ASSERT_TRUE(good.Open(broker));
	hog.return_buffers = false;
	hog.echo = false;
	uint16_t hport, gport;
	int hl = TcpListener(&hport), gl = TcpListener(&gport);
	ASSERT_GE(hl, 0);
	ASSERT_GE(gl, 0);
	onering_sub s;
	ASSERT_EQ(onering_stream_add(hog.q, hl, 1, &s), 0);
	ASSERT_EQ(onering_stream_add(good.q, gl, 2, &s), 0);
	close(hl);
	close(gl);
	hog.Run();
	good.Run();
	int hc = TcpConnect(hport);
	ASSERT_GE(hc, 0);
	int fl = fcntl(hc, F_GETFL);
	ASSERT_EQ(fcntl(hc, F_SETFL, fl | O_NONBLOCK), 0);
	// Write to the hog until the kernel's buffers are full: nothing lost,
	// the broker stopped taking after 4 buffers.
	std::vector<unsigned char> chunk = Payload(65536, 9);
	long written = 0;
	for (int i = 0; i < 10000; i++) {
		ssize_t w = write(hc, chunk.data(), chunk.size());
		if (w < 0 && errno == EAGAIN) {
			usleep(2000);
			if (write(hc, chunk.data(), 1) < 0 && errno == EAGAIN)
				break;
			written++;
			continue;
		}
		ASSERT_GT(w, 0);
		written += w;
	}
	EXPECT_TRUE(WaitFor([&] { return hog.recvs.load() == 4; }));
	usleep(50000);
	EXPECT_EQ(hog.recvs.load(), 4) << "the hog's connection stalls at its 4 buffers";
	EXPECT_LT(hog.bytes.load(), written);
	// Meanwhile the other client's echo is whole.
	int gc = TcpConnect(gport);
	ASSERT_GE(gc, 0);
	EXPECT_TRUE(EchoRoundTrip(gc, Payload(300000, 4)));
	close(gc);
	// The hog gives its buffers back: its bytes flow again.
	hog.release = true;
	EXPECT_TRUE(WaitFor([&] { return hog.bytes.load() >= written; }))
		<< hog.bytes.load() << " of " << written << " bytes received after the release";
	close(hc);
}

// UDP: each datagram is one record, its boundaries kept; a reply in place
// goes back to the address it came from; one longer than a buffer is cut
// and flagged.
TEST(StreamTest, DatagramsKeepTheirBoundaries)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	EchoServer srv;
	ASSERT_TRUE(srv.Open(broker, 16, 4096));
	int us = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_GE(us, 0);
	sockaddr_in a = {};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(a);
	ASSERT_EQ(bind(us, (sockaddr *)&a, sizeof(a)), 0);
	ASSERT_EQ(getsockname(us, (sockaddr *)&a, &alen), 0);
	onering_sub us_sub;
	ASSERT_EQ(onering_stream_add(srv.q, us, 5, &us_sub), 0);
	close(us);
	int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_GE(c, 0);
	ASSERT_EQ(connect(c, (sockaddr *)&a, sizeof(a)), 0);
	const size_t sizes[] = {1, 7, 100, 1000, 3968, 0};
	size_t max = onering_stream_buffer_size(srv.q);
	ASSERT_EQ(max, 4096u - ONERING_STREAM_ADDR_BYTES);
	for (size_t i = 0; i < std::size(sizes); i++) {
		std::vector<unsigned char> d = Payload(sizes[i], (unsigned)i);
		ASSERT_EQ(send(c, d.data(), d.size(), 0), (ssize_t)d.size());
	}
	std::vector<unsigned char> big = Payload(5000, 99);
	ASSERT_EQ(send(c, big.data(), big.size(), 0), (ssize_t)big.size());
	// The server replies to each in place, to where it came from.
	size_t seen = 0;
	onering_event ev[16], recvs[16];
	ASSERT_TRUE(WaitFor([&] {
		int n = onering_poll(srv.q, ev, 16);
		for (int i = 0; i < n; i++) {
			const onering_event_stream &s = ev[i].payload.stream;
			if (s.op == ONERING_STREAM_SENT) {
				EXPECT_GE(s.status, 0);
				EXPECT_EQ(onering_stream_done(srv.q, &ev[i]), 0);
				// The datagram it replied to: its buffer back.
				EXPECT_EQ(onering_stream_done(srv.q, &recvs[s.tag]), 0);
				continue;
			}
			EXPECT_EQ(s.op, (uint32_t)ONERING_STREAM_RECV);
			if (seen < std::size(sizes)) {
				EXPECT_EQ((size_t)s.status, sizes[seen]) << "datagram " << seen;
				EXPECT_EQ(ev[i].flags & ONERING_EVF_STREAM_TRUNC, 0);
			} else {
				EXPECT_EQ((size_t)s.status, max) << "cut at the buffer";
				EXPECT_NE(ev[i].flags & ONERING_EVF_STREAM_TRUNC, 0);
			}
			uint32_t plen = 0;
			const sockaddr *peer = onering_stream_peer(srv.q, &ev[i], &plen);
			EXPECT_NE(peer, nullptr);
			EXPECT_EQ(plen, sizeof(sockaddr_in));
			const void *data = onering_stream_data(srv.q, &ev[i]);
			EXPECT_NE(data, nullptr);
			recvs[seen] = ev[i];
			if (s.status > 0)
				EXPECT_EQ(onering_stream_sendto(srv.q, us_sub, data, (size_t)s.status, nullptr,
								0, seen),
					  0);
			else
				EXPECT_EQ(onering_stream_done(srv.q, &ev[i]), 0);
			seen++;
		}
		return seen == std::size(sizes) + 1;
	}));
	// The replies, one per datagram, each whole.
	for (size_t i = 0; i < std::size(sizes); i++) {
		if (sizes[i] == 0)
			continue;
		std::vector<unsigned char> want = Payload(sizes[i], (unsigned)i), got(8192);
		pollfd p = {c, POLLIN, 0};
		ASSERT_EQ(poll(&p, 1, 5000), 1);
		ssize_t r = recv(c, got.data(), got.size(), 0);
		ASSERT_EQ(r, (ssize_t)want.size());
		got.resize((size_t)r);
		EXPECT_EQ(got, want);
	}
	close(c);
}

// A client killed in the middle of sending: the broker closes its
// connections and its listener (the peers see the end), and holds no fd
// of it afterwards.
TEST(StreamTest, AClientKilledMidSendLeavesNothingBehind)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	int base = broker.FdCount();
	uint16_t port;
	int l = TcpListener(&port);
	ASSERT_GE(l, 0);
	int ready[2];
	ASSERT_EQ(pipe(ready), 0);
	pid_t child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		// Accepts, then sends 64 KiB replies as fast as its transmit
		// buffers allow, until killed; says so once the broker has sent
		// some (a SENT record) with more waiting.
		onering_queue *q;
		if (!ChildServer(broker, l, 8, 64, 65536, 0, &q))
			_exit(3);
		close(l);
		bool told = false;
		onering_sub conn = {0, 0};
		onering_event ev[64];
		for (long spins = 0; spins < 100000000; spins++) {
			int n = onering_wait(q, ev, 1, 64, 10 * 1000 * 1000);
			for (int i = 0; i < n; i++) {
				const onering_event_stream &s = ev[i].payload.stream;
				if (s.op == ONERING_STREAM_RECV && s.status > 0)
					conn = onering_event_sub(q, &ev[i]);
				if (s.op == ONERING_STREAM_SENT && s.status > 0 && !told &&
				    write(ready[1], "s", 1) == 1)
					told = true;
				onering_stream_done(q, &ev[i]);
			}
			void *b;
			while (conn.id && (b = onering_stream_buffer(q)) != nullptr)
				if (onering_stream_send(q, conn, b, onering_stream_buffer_size(q), 0) < 0)
					break;
		}
		_exit(4);
	}
	close(l);
	close(ready[1]);
	int c = TcpConnect(port);
	ASSERT_GE(c, 0);
	ASSERT_TRUE(WriteAll(c, (const unsigned char *)"go", 2));
	pollfd p = {ready[0], POLLIN, 0};
	ASSERT_EQ(poll(&p, 1, 10000), 1) << "the child never sent";
	char x;
	ASSERT_EQ(read(ready[0], &x, 1), 1);
	close(ready[0]);
	kill(child, SIGKILL);
	int status;
	ASSERT_EQ(waitpid(child, &status, 0), child);
	// The peer reads what was sent, then the end (or a reset).
	int err = -1;
	std::vector<unsigned char> got = ReadToEof(c, 10000, &err);
	EXPECT_TRUE(err == 0 || err == ECONNRESET) << "err " << err;
	EXPECT_GT(got.size(), 0u);
	close(c);
	EXPECT_TRUE(WaitFor([&] { return broker.FdCount() == base; }))
		<< broker.FdCount() << " fds, " << base << " before";
	EXPECT_LT(TcpConnect(port), 0) << "the listener is closed";
}

// On a Unix socket the broker's sends carry the credentials of the client
// that owns the connection: a receiver that trusts SCM_CREDENTIALS (as
// systemd's notify socket trusts its service's pid) never sees the broker
// in a client's bytes. And a datagram may not be sent to a Unix path (it
// would be looked up with the broker's rights).
TEST(StreamTest, UnixSendsCarryTheClientsCredentials)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	EchoServer srv;
	ASSERT_TRUE(srv.Open(broker, 4, 4096));
	int sp[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	int one = 1;
	ASSERT_EQ(setsockopt(sp[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	onering_sub conn;
	ASSERT_EQ(onering_stream_add(srv.q, sp[1], 1, &conn), 0);
	close(sp[1]);
	char *b = (char *)onering_stream_buffer(srv.q);
	ASSERT_NE(b, nullptr);
	memcpy(b, "WATCHDOG=trigger", 16);
	ASSERT_EQ(onering_stream_send(srv.q, conn, b, 16, 1), 0);
	char data[64];
	union {
		cmsghdr h;
		char buf[CMSG_SPACE(sizeof(ucred))];
	} ctl;
	iovec iov = {data, sizeof(data)};
	msghdr mh = {};
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	pollfd pfd = {sp[0], POLLIN, 0};
	ASSERT_EQ(poll(&pfd, 1, 5000), 1);
	ASSERT_EQ(recvmsg(sp[0], &mh, 0), 16);
	cmsghdr *c = CMSG_FIRSTHDR(&mh);
	ASSERT_NE(c, nullptr);
	ASSERT_EQ(c->cmsg_type, SCM_CREDENTIALS);
	ucred uc;
	memcpy(&uc, CMSG_DATA(c), sizeof(uc));
	EXPECT_EQ(uc.pid, getpid()) << "the client's pid, not the broker's (" << broker.Pid() << ")";
	EXPECT_EQ(uc.uid, getuid());
	close(sp[0]);

	// SEND_TO a Unix path on a Unix datagram socket: refused in its SENT.
	int ds[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, ds), 0);
	onering_sub dconn;
	ASSERT_EQ(onering_stream_add(srv.q, ds[1], 2, &dconn), 0);
	close(ds[1]);
	sockaddr_un to = {};
	to.sun_family = AF_UNIX;
	snprintf(to.sun_path, sizeof(to.sun_path), "/run/systemd/notify");
	char *d = (char *)onering_stream_buffer(srv.q);
	ASSERT_NE(d, nullptr);
	memcpy(d, "STOPPING=1", 10);
	ASSERT_EQ(onering_stream_sendto(srv.q, dconn, d, 10, (sockaddr *)&to, sizeof(to), 2), 0);
	onering_event ev[8];
	bool refused = false;
	ASSERT_TRUE(WaitFor([&] {
		int n = onering_poll(srv.q, ev, 8);
		for (int i = 0; i < n; i++)
			if (ev[i].payload.stream.op == ONERING_STREAM_SENT && ev[i].payload.stream.tag == 2) {
				EXPECT_EQ(ev[i].payload.stream.status, -EINVAL);
				refused = true;
			}
		return refused;
	}));
	close(ds[0]);
}

// A client that stops consuming its records cannot make the broker hold
// more and more of them: once its ring is full, its SENDs (each of which
// makes a record, refused or not) stay in its submission ring, and the
// library says -EAGAIN. Nor does it keep the poller busy meanwhile. Every
// SEND it did take gets its SENT record once it reads again.
TEST(StreamTest, SendsWaitInTheSubmissionRingWhileRecordsWait)
{
	Broker broker;
	// overprovisioned: a poller with nothing to do blocks at once, so its
	// loops and sleeps below say whether it spins.
	ASSERT_TRUE(broker.Start({"--idle", "overprovisioned"}));
	onering_queue_options o = StreamOptions(16, 64, 4, 0, 4096);
	StreamPair pair;
	ASSERT_TRUE(pair.Open(broker, o, SOCK_STREAM));
	onering_queue *q = pair.q;
	onering_sub conn = pair.conn;
	ASSERT_EQ(write(pair.peer, "x", 1), 1);
	onering_event e;
	ASSERT_EQ(onering_wait(q, &e, 1, 1, 5000ll * 1000 * 1000), 1);
	const void *data = onering_stream_data(q, &e);
	ASSERT_NE(data, nullptr);
	// Its sending side shut: every SEND from here is refused (-EPIPE), and
	// each refusal is a record.
	ASSERT_EQ(onering_stream_close(q, conn, ONERING_CLOSE_WRITE), 0);
	long taken = 0;
	bool stuck = false;
	for (int i = 0; i < 10000 && !stuck; i++) {
		int r = -EAGAIN;
		for (int k = 0; k < 1000 && r == -EAGAIN; k++) {
			r = onering_stream_send(q, conn, data, 1, (uint64_t)i);
			if (r == -EAGAIN)
				sched_yield();
		}
		if (r == -EAGAIN)
			stuck = true;
		else
			ASSERT_EQ(r, 0);
		taken += r == 0;
	}
	EXPECT_TRUE(stuck) << taken << " SENDs taken by a broker whose client reads no record";
	EXPECT_LE(taken, 16 + 64 + 2);
	// Meanwhile the poller does not spin on the SENDs that wait: it sleeps
	// between looks at the ring space (1 ms), where a ring marked again
	// after each look kept it from ever sleeping.
	std::vector<uint64_t> c0(ONERING_PC_NR), c1(ONERING_PC_NR);
	ASSERT_TRUE(onering_test::StatsCounters(broker, ONERING_STATS_POLLER, c0.data(),
						ONERING_PC_NR));
	usleep(200000);
	ASSERT_TRUE(onering_test::StatsCounters(broker, ONERING_STATS_POLLER, c1.data(),
						ONERING_PC_NR));
	uint64_t loops = c1[ONERING_PC_LOOPS] - c0[ONERING_PC_LOOPS];
	uint64_t sleeps = c1[ONERING_PC_SLEEPS] - c0[ONERING_PC_SLEEPS];
	EXPECT_GT(sleeps, 0u);
	EXPECT_LE(loops, 3 * sleeps + 20) << loops << " loops, " << sleeps << " sleeps";
	// Each one taken is answered, in order.
	long sent = 0;
	onering_event ev[32];
	ASSERT_TRUE(WaitFor([&] {
		int n = onering_poll(q, ev, 32);
		for (int i = 0; i < n; i++)
			if (ev[i].payload.stream.op == ONERING_STREAM_SENT) {
				EXPECT_EQ(ev[i].payload.stream.status, -EPIPE);
				EXPECT_EQ(ev[i].payload.stream.tag, (uint64_t)sent);
				sent++;
			}
		return sent == taken;
	})) << sent << " of " << taken;
}

// Bad requests from the client do not reach a socket: a SEND outside the
// stream area is refused by the library; a receive buffer given back twice
// is counted, not taken.
TEST(StreamTest, RefusesSendsOutsideTheStreamArea)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	EchoServer srv;
	ASSERT_TRUE(srv.Open(broker, 4, 4096));
	int sp[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	onering_sub cs;
	ASSERT_EQ(onering_stream_add(srv.q, sp[1], 9, &cs), 0);
	close(sp[1]);
	char outside[16] = "outside";
	EXPECT_EQ(onering_stream_send(srv.q, cs, outside, sizeof(outside), 0), -EINVAL);
	void *b = onering_stream_buffer(srv.q);
	ASSERT_NE(b, nullptr);
	EXPECT_EQ(onering_stream_send(srv.q, cs, b, 0, 0), -EINVAL) << "no empty send";
	EXPECT_EQ(onering_stream_send(srv.q, cs, b, 1 << 20, 0), -EINVAL) << "past the area";
	// A queue without a stream area refuses completion mode with a reason.
	onering_queue *plain;
	ASSERT_EQ(onering_queue_open(srv.att, nullptr, &plain), 0);
	int sp2[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp2), 0);
	EXPECT_EQ(onering_stream_add(plain, sp2[1], 1, &cs), -EINVAL);
	EXPECT_NE(std::string(onering_last_error(srv.att)).find("stream area"), std::string::npos);
	onering_queue_close(plain);
	close(sp2[0]);
	close(sp2[1]);
	close(sp[0]);
}

namespace {

static volatile bool exit_here = true;

// Under the filter: serve echo requests until total bytes were echoed,
// then exit; any system call kills the process. Not instrumented by ASan.
__attribute__((no_sanitize("address"), noinline)) void ServeWithoutSyscalls(onering_queue *q,
									     long total)
{
	long echoed = 0, unsent = 0; // SENDs posted whose SENT has not come
	static onering_event echoing[64]; // by receive buffer (64 of them)
	onering_event ev[64];
	// Until every byte is echoed and every SEND done: a process that exits
	// with SENDs the broker has not made yet loses them (its queue goes).
	for (uint64_t spins = 0; echoed < total || unsent > 0; spins++) {
		int n = onering_poll(q, ev, 64);
		if (n < 0)
			ExitGroup(5);
		for (int i = 0; i < n; i++) {
			const onering_event_stream &s = ev[i].payload.stream;
			if (s.op == ONERING_STREAM_RECV && s.status > 0) {
				onering_sub conn = onering_event_sub(q, &ev[i]);
				if (s.buf >= 64)
					ExitGroup(11);
				echoing[s.buf] = ev[i];
				if (onering_stream_send(q, conn, onering_stream_data(q, &ev[i]),
							(size_t)s.status, s.buf) < 0)
					ExitGroup(6);
				echoed += s.status;
				unsent++;
			} else if (s.op == ONERING_STREAM_SENT) {
				if (s.status <= 0 || s.tag >= 64 || onering_stream_done(q, &ev[i]) < 0 ||
				    onering_stream_done(q, &echoing[s.tag]) < 0)
					ExitGroup(7);
				unsent--;
			} else if (s.op == ONERING_STREAM_RECV) {
				ExitGroup(8); // the peer went early
			}
		}
		if (spins > 50000000000ull) // bounded
			ExitGroup(9);
	}
	if (exit_here)
		ExitGroup(0);
}

} // namespace

// The acceptance test of the zero-syscall server: a child accepts,
// receives and replies to 10,000 requests under a seccomp filter that
// kills it on any system call, and exits normally.
TEST(StreamTest, ServesTenThousandRequestsUnderASeccompFilterThatKillsOnAnySyscall)
{
	Broker broker;
	ASSERT_TRUE(broker.Start({"--idle-sleep-ms", "-1"})); // a poller that never sleeps
	uint16_t port;
	int l = TcpListener(&port);
	ASSERT_GE(l, 0);
	int ready[2];
	ASSERT_EQ(pipe(ready), 0);
	constexpr long kRequests = 10000;
	constexpr size_t kReq = 64;
	pid_t child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		onering_queue *q;
		if (!ChildServer(broker, l, 64, 0, 4096, 1024, &q))
			_exit(3);
		if (write(ready[1], "r", 1) != 1 || InstallSeccompKillAll() < 0)
			_exit(4);
		ServeWithoutSyscalls(q, kRequests * (long)kReq);
		_exit(10); // not reached
	}
	close(l);
	close(ready[1]);
	pollfd p = {ready[0], POLLIN, 0};
	ASSERT_EQ(poll(&p, 1, 10000), 1);
	char x;
	ASSERT_EQ(read(ready[0], &x, 1), 1);
	close(ready[0]);
	int c = TcpConnect(port); // accepted by the broker, announced to the child
	ASSERT_GE(c, 0);
	int one = 1;
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	unsigned char req[kReq], rep[kReq];
	long done = 0;
	for (; done < kRequests; done++) {
		memset(req, (int)(done & 0xff), sizeof(req));
		if (!WriteAll(c, req, sizeof(req)))
			break;
		size_t got = 0;
		while (got < sizeof(rep)) {
			pollfd cp = {c, POLLIN, 0};
			if (poll(&cp, 1, 10000) != 1)
				break;
			ssize_t r = read(c, rep + got, sizeof(rep) - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got != sizeof(rep) || memcmp(req, rep, sizeof(rep)) != 0)
			break;
	}
	EXPECT_EQ(done, kRequests) << "replies stopped";
	int status = 0;
	bool exited = false;
	for (int i = 0; i < 1000 && !exited; i++) { // 10 s
		exited = waitpid(child, &status, WNOHANG) == child;
		if (!exited)
			usleep(10000);
	}
	if (!exited) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
	}
	close(c);
	EXPECT_TRUE(exited && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		<< "child status 0x" << std::hex << status;
}

// A SEND refused because a CLOSE came before it (-EPIPE) gets its record in
// its turn: after the records of the SENDs before the CLOSE, which wait for
// a full socket here (about 512 KiB posted, the peer reading nothing yet), and
// before CLOSED.
TEST(StreamTest, ARefusedSendsRecordComesInPostingOrder)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	onering_queue_options o = StreamOptions(1024, 256, 4, 33, 16384);
	StreamPair pair;
	ASSERT_TRUE(pair.Open(broker, o, SOCK_STREAM));
	const int n = 32;
	const size_t len = onering_stream_buffer_size(pair.q);
	for (int i = 0; i < n; i++) {
		void *b = onering_stream_buffer(pair.q);
		ASSERT_NE(b, nullptr);
		memset(b, 'a' + i % 26, len);
		ASSERT_EQ(onering_stream_send(pair.q, pair.conn, b, len, (uint64_t)i), 0) << i;
	}
	ASSERT_EQ(onering_stream_close(pair.q, pair.conn, 0), 0);
	void *late = onering_stream_buffer(pair.q);
	ASSERT_NE(late, nullptr);
	ASSERT_EQ(onering_stream_send(pair.q, pair.conn, late, 1, 999), 0);
	// The peer reads it all, to the end.
	size_t got = 0;
	for (int i = 0; i < 100000; i++) {
		char buf[65536];
		pollfd pfd = {pair.peer, POLLIN, 0};
		ASSERT_EQ(poll(&pfd, 1, 5000), 1) << got << " bytes read";
		ssize_t r = read(pair.peer, buf, sizeof(buf));
		ASSERT_GE(r, 0);
		if (r == 0)
			break;
		got += (size_t)r;
	}
	EXPECT_EQ(got, (size_t)n * len);
	std::vector<onering_event> recs;
	ASSERT_TRUE(WaitFor([&] {
		onering_event ev[64];
		int k = onering_poll(pair.q, ev, 64);
		for (int i = 0; i < k; i++)
			if (ev[i].kind == ONERING_EV_STREAM)
				recs.push_back(ev[i]);
		return !recs.empty() && recs.back().payload.stream.op == ONERING_STREAM_CLOSED;
	})) << recs.size() << " records";
	std::string seen;
	for (const onering_event &r : recs)
		seen += " " + std::to_string(r.payload.stream.op) + ":" +
			std::to_string(r.payload.stream.tag) + ":" +
			std::to_string(r.payload.stream.status);
	ASSERT_EQ(recs.size(), (size_t)n + 2) << "op:tag:status" << seen;
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(recs[i].payload.stream.op, (uint32_t)ONERING_STREAM_SENT);
		EXPECT_EQ(recs[i].payload.stream.tag, (uint64_t)i);
		EXPECT_EQ(recs[i].payload.stream.status, (int32_t)len);
	}
	EXPECT_EQ(recs[n].payload.stream.tag, 999u);
	EXPECT_EQ(recs[n].payload.stream.status, -EPIPE);
}


// A SEND that finds every send slot taken makes the waiting SENDs at once
// to free theirs; a connection that this drains, and that was closing,
// still closes (at the loop's end) and says CLOSED. Rounds of: SENDs that
// take every slot and a CLOSE on a connection, then one more SEND on it.
TEST(StreamTest, AConnectionDrainedForSendSlotsStillCloses)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	onering_queue_options o = StreamOptions(1024, 256, 4, 0, 4096);
	for (int round = 0; round < 3; round++) {
		StreamPair a;
		ASSERT_TRUE(a.Open(broker, o, SOCK_STREAM));
		ASSERT_EQ(write(a.peer, "x", 1), 1);
		onering_event rx;
		ASSERT_EQ(onering_wait(a.q, &rx, 1, 1, 5000ll * 1000 * 1000), 1);
		const void *data = onering_stream_data(a.q, &rx);
		ASSERT_NE(data, nullptr);
		// Stopped, the broker finds all six requests in one loop.
		ASSERT_EQ(kill(broker.Pid(), SIGSTOP), 0);
		ASSERT_TRUE(AllThreadsStopped(broker.Pid()));
		// The pool: a slot per buffer (4 receive, and as many transmit).
		for (int i = 0; i < 8; i++)
			ASSERT_EQ(onering_stream_send(a.q, a.conn, data, 1, (uint64_t)i), 0);
		ASSERT_EQ(onering_stream_close(a.q, a.conn, 0), 0);
		ASSERT_EQ(onering_stream_send(a.q, a.conn, data, 1, 8), 0);
		ASSERT_EQ(kill(broker.Pid(), SIGCONT), 0);
		int sent = 0;
		bool closed = false;
		ASSERT_TRUE(WaitFor([&] {
			onering_event ev[16];
			int k = onering_poll(a.q, ev, 16);
			for (int i = 0; i < k; i++) {
				sent += ev[i].payload.stream.op == ONERING_STREAM_SENT;
				closed |= ev[i].payload.stream.op == ONERING_STREAM_CLOSED;
			}
			return closed;
		})) << "round " << round << ": " << sent << " SENT records, no CLOSED";
		EXPECT_EQ(sent, 9); /* the last refused (-EPIPE), before CLOSED */
	}
}

// Seqpacket sends keep their boundaries too: SENDs that wait together for
// write space (the peer reads nothing until 64 are posted; a Unix
// seqpacket socket takes 10 or so messages first) still go out as one
// message each, in order, never gathered into one.
TEST(StreamTest, SeqpacketSendsThatWaitedTogetherKeepTheirBoundaries)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	onering_queue_options o = StreamOptions(1024, 256, 4, 128, 256);
	StreamPair pair;
	ASSERT_TRUE(pair.Open(broker, o, SOCK_SEQPACKET));
	onering_queue *q = pair.q;
	const int n = 64;
	for (int i = 0; i < n; i++) {
		unsigned char *b = (unsigned char *)onering_stream_buffer(q);
		ASSERT_NE(b, nullptr);
		memset(b, 'a' + i % 26, 1 + i);
		ASSERT_EQ(onering_stream_send(q, pair.conn, b, 1 + i, (uint64_t)i), 0);
	}
	for (int i = 0; i < n; i++) {
		unsigned char m[256];
		pollfd pfd = {pair.peer, POLLIN, 0};
		ASSERT_EQ(poll(&pfd, 1, 5000), 1) << "message " << i;
		ASSERT_EQ(recv(pair.peer, m, sizeof(m), 0), 1 + i) << "message " << i;
		EXPECT_EQ(m[i], 'a' + i % 26);
	}
	int sent = 0;
	onering_event ev[64];
	ASSERT_TRUE(WaitFor([&] {
		int k = onering_poll(q, ev, 64);
		for (int i = 0; i < k; i++)
			if (ev[i].payload.stream.op == ONERING_STREAM_SENT) {
				EXPECT_EQ(ev[i].payload.stream.tag, (uint64_t)sent);
				EXPECT_EQ(ev[i].payload.stream.status, (int32_t)sent + 1);
				sent++;
			}
		return sent == n;
	})) << sent << " of " << n;
}

namespace {

// The operations submitted through the io_uring instances pid holds: the
// sum of their submission tails (/proc/PID/fdinfo), and how many there are.
uint64_t UringSubmissions(pid_t pid, int *rings)
{
	uint64_t total = 0;
	*rings = 0;
	std::string dir = "/proc/" + std::to_string(pid) + "/fd";
	DIR *d = opendir(dir.c_str());
	if (!d)
		return 0;
	while (dirent *e = readdir(d)) {
		char target[64] = {};
		if (readlink((dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1) < 0 ||
		    strcmp(target, "anon_inode:[io_uring]") != 0)
			continue;
		std::ifstream info("/proc/" + std::to_string(pid) + "/fdinfo/" + e->d_name);
		for (std::string line; std::getline(info, line);)
			if (line.rfind("SqTail:", 0) == 0) {
				total += std::stoull(line.substr(7));
				++*rings;
			}
	}
	closedir(d);
	return total;
}

// n one-byte round trips over a socketpair added in completion mode.
bool EchoRoundTrips(const Broker &broker, int n)
{
	EchoServer srv;
	int sp[2];
	onering_sub cs;
	if (!srv.Open(broker) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return false;
	srv.Run();
	bool ok = onering_stream_add(srv.q, sp[1], 9, &cs) == 0;
	close(sp[1]);
	for (int i = 0; ok && i < n; i++) {
		char out = (char)i, in = 0;
		pollfd pfd = {sp[0], POLLIN, 0};
		ok = write(sp[0], &out, 1) == 1 && poll(&pfd, 1, 5000) == 1 && read(sp[0], &in, 1) == 1 &&
		     in == out;
	}
	close(sp[0]);
	return ok;
}

} // namespace

// --stream-io uring (the default) moves the bytes through the poller's
// io_uring: a receive and a send per round trip at least are submitted
// there. --stream-io calls makes them as calls: no ring the broker holds
// (the control thread's accept ring is one) carries any of them.
TEST(StreamTest, TheBytesMoveThroughThePollersIoUringUnlessAskedForCalls)
{
	const int n = 200;
	for (const char *how : {"uring", "calls"}) {
		Broker broker;
		ASSERT_TRUE(broker.Start({"--stream-io", how}));
		int rings = 0;
		uint64_t before = UringSubmissions(broker.Pid(), &rings);
		ASSERT_TRUE(EchoRoundTrips(broker, n)) << how;
		uint64_t after = UringSubmissions(broker.Pid(), &rings);
		if (strcmp(how, "uring") == 0)
			EXPECT_GE(after - before, 2u * n) << "operations submitted through io_uring";
		else
			EXPECT_EQ(after - before, 0u) << "operations submitted through io_uring";
	}
}
