// SPDX-License-Identifier: MIT
// examples/http_server.c on each of its back ends - onering (a broker of
// the test's own), --epoll, --uring and --completion (onering's completion
// mode) - as a client sees it: keep-alive and
// pipelined requests, many connections at once, the answers that close
// (HTTP/1.0, HEAD, malformed, too large), a peer that leaves mid-request,
// and a clean stop that counts every request.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/integration/harness.h"

#ifndef ONERING_HTTP_SERVER_PATH
#error "ONERING_HTTP_SERVER_PATH must name the onering-http-server example under test"
#endif

using onering_test::Broker;

namespace {

const std::string kOk = "HTTP/1.1 200 OK\r\n";

// A port nobody listens on now (bound to 0, then released).
int FreePort()
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {};
	socklen_t len = sizeof(sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &len) < 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	close(s);
	return ntohs(sa.sin_port);
}

int Connect(int port)
{
	struct sockaddr_in sa = {};
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

bool SendAll(int s, const std::string &data)
{
	for (size_t off = 0; off < data.size();) {
		ssize_t n = send(s, data.data() + off, data.size() - off, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	return true;
}

// Read until want bytes came, the peer closed, or 5 s passed.
std::string Read(int s, size_t want, bool *closed)
{
	std::string out;
	char buf[4096];
	*closed = false;
	for (int i = 0; i < 500 && out.size() < want; i++) {
		struct pollfd p = {s, POLLIN, 0};
		if (poll(&p, 1, 10) <= 0)
			continue;
		ssize_t n = recv(s, buf, sizeof(buf), 0);
		if (n <= 0) {
			*closed = true;
			break;
		}
		out.append(buf, (size_t)n);
	}
	return out;
}

unsigned Count(const std::string &s, const std::string &what)
{
	unsigned n = 0;
	for (size_t at = 0; (at = s.find(what, at)) != std::string::npos; at += what.size())
		n++;
	return n;
}

class HttpServer : public ::testing::TestWithParam<std::string> {
protected:
	void SetUp() override
	{
		port_ = FreePort();
		ASSERT_GT(port_, 0);
		std::vector<std::string> args = {ONERING_HTTP_SERVER_PATH, "--port",
						  std::to_string(port_), "--max-seconds", "60"};
		if (OnBroker()) {
			ASSERT_TRUE(broker_.Start());
			args.insert(args.end(), {"--name", broker_.Name(), "--socket-dir",
						 broker_.Dir()});
			if (GetParam() == "completion")
				args.push_back("--completion");
			if (GetParam() == "onering_busy") // the default is overprovisioned
				args.insert(args.end(), {"--idle", "busy"});
		} else {
			args.push_back("--" + GetParam());
		}
		log_ = onering_test::MakeTempDir() + "/server.log";
		pid_ = fork();
		ASSERT_GE(pid_, 0);
		if (pid_ == 0) {
			FILE *f = freopen(log_.c_str(), "w", stdout);
			(void)f;
			dup2(STDOUT_FILENO, STDERR_FILENO);
			onering_test::ExecArgs(args);
		}
		// Listening: a connection succeeds (bounded: 5 s).
		for (int i = 0; i < 500; i++) {
			int s = Connect(port_);
			if (s >= 0) {
				close(s);
				return;
			}
			usleep(10000);
		}
		FAIL() << "the server did not listen: " << onering_test::ReadFile(log_);
	}

	void TearDown() override
	{
		if (pid_ > 0) {
			kill(pid_, SIGTERM);
			int status;
			EXPECT_TRUE(onering_test::WaitChild(pid_, 10, &status));
			EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
			    << "status 0x" << std::hex << status << "\n" << onering_test::ReadFile(log_);
		}
		std::string dir = log_.substr(0, log_.rfind('/'));
		unlink(log_.c_str());
		rmdir(dir.c_str());
		if (OnBroker()) {
			EXPECT_EQ(broker_.Stop(), 0);
		}
	}

	bool OnBroker() const
	{
		return GetParam() == "onering" || GetParam() == "onering_busy" ||
		       GetParam() == "completion";
	}
	Broker broker_;
	int port_ = -1;
	pid_t pid_ = -1;
	std::string log_;
};

const std::string kGet = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";

TEST_P(HttpServer, KeepAliveAndPipelinedRequestsAreAllAnswered)
{
	int s = Connect(port_);
	ASSERT_GE(s, 0);
	bool closed;
	for (int i = 0; i < 50; i++) { // one at a time
		ASSERT_TRUE(SendAll(s, kGet));
		std::string r = Read(s, 78, &closed);
		ASSERT_EQ(Count(r, kOk), 1u) << "request " << i << ": " << r;
	}
	std::string burst; // 300 pipelined, in one write
	for (int i = 0; i < 300; i++)
		burst += kGet;
	ASSERT_TRUE(SendAll(s, burst));
	std::string r = Read(s, 300 * 78, &closed);
	EXPECT_EQ(Count(r, kOk), 300u);
	EXPECT_FALSE(closed);
	// A head split across writes, byte by byte at the end.
	ASSERT_TRUE(SendAll(s, "GET / HTTP/1.1\r\nHost: t\r"));
	usleep(20000);
	ASSERT_TRUE(SendAll(s, "\n\r"));
	usleep(20000);
	ASSERT_TRUE(SendAll(s, "\n"));
	EXPECT_EQ(Count(Read(s, 78, &closed), kOk), 1u);
	close(s);
}

TEST_P(HttpServer, ManyConnectionsAtOnce)
{
	const int n = 200;
	std::vector<int> socks;
	for (int i = 0; i < n; i++) {
		int s = Connect(port_);
		ASSERT_GE(s, 0) << "connection " << i;
		socks.push_back(s);
	}
	for (int s : socks)
		ASSERT_TRUE(SendAll(s, kGet + kGet + kGet));
	bool closed;
	for (int i = 0; i < n; i++)
		EXPECT_EQ(Count(Read(socks[i], 3 * 78, &closed), kOk), 3u) << "connection " << i;
	for (int s : socks)
		close(s);
}

TEST_P(HttpServer, AnswersThatCloseTheConnection)
{
	struct Case {
		std::string request, status;
	} cases[] = {
	    {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", kOk},
	    {"GET / HTTP/1.0\r\n\r\n", kOk},
	    {"HEAD / HTTP/1.1\r\n\r\n", kOk},
	    {"garbage\r\n\r\n", "HTTP/1.1 400 "},
	    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 501 "},
	    {"GET / HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", "HTTP/1.1 431 "},
	};
	for (auto &c : cases) {
		int s = Connect(port_);
		ASSERT_GE(s, 0);
		ASSERT_TRUE(SendAll(s, c.request));
		bool closed;
		std::string r = Read(s, 1u << 20, &closed);
		EXPECT_EQ(r.compare(0, c.status.size(), c.status), 0) << c.request.substr(0, 40) << ": " << r;
		EXPECT_TRUE(closed) << "the server closes after " << c.status;
		close(s);
	}
}

TEST_P(HttpServer, APeerThatLeavesMidRequestHarmsNobody)
{
	for (int i = 0; i < 20; i++) {
		int s = Connect(port_);
		ASSERT_GE(s, 0);
		ASSERT_TRUE(SendAll(s, "GET / HTTP/1.1\r\nHo"));
		if (i % 2) { // a reset, not a FIN
			struct linger l = {1, 0};
			setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		close(s);
	}
	int s = Connect(port_);
	ASSERT_GE(s, 0);
	ASSERT_TRUE(SendAll(s, kGet));
	bool closed;
	EXPECT_EQ(Count(Read(s, 78, &closed), kOk), 1u);
	close(s);
}

// The server stops reading at a short read (conn_read): a FIN must still be
// seen, whether it came right behind the request (both queued while the
// server is stopped, so one event says both) or long after the answer.
TEST_P(HttpServer, AHalfCloseIsSeenWithTheRequestOrAfterTheAnswer)
{
	int s = Connect(port_);
	ASSERT_GE(s, 0);
	ASSERT_EQ(kill(pid_, SIGSTOP), 0);
	bool sent = SendAll(s, kGet) && shutdown(s, SHUT_WR) == 0;
	ASSERT_EQ(kill(pid_, SIGCONT), 0);
	ASSERT_TRUE(sent);
	bool closed;
	std::string r = Read(s, 1u << 20, &closed);
	EXPECT_EQ(Count(r, kOk), 1u) << r;
	EXPECT_TRUE(closed) << "the FIN behind the request went unseen";
	close(s);

	s = Connect(port_);
	ASSERT_GE(s, 0);
	ASSERT_TRUE(SendAll(s, kGet));
	EXPECT_EQ(Count(Read(s, 78, &closed), kOk), 1u);
	ASSERT_EQ(shutdown(s, SHUT_WR), 0);
	r = Read(s, 1u << 20, &closed);
	EXPECT_EQ(r, "");
	EXPECT_TRUE(closed) << "the FIN after the answer went unseen";
	close(s);
}

// onering_busy: readiness with --idle busy (a server that never sleeps in
// onering_wait) beside the default, which sleeps at once.
INSTANTIATE_TEST_SUITE_P(Backends, HttpServer,
			 ::testing::Values("onering", "onering_busy", "epoll", "uring", "completion"),
			 [](const ::testing::TestParamInfo<std::string> &i) { return i.param; });

TEST(HttpServerOptions, AnUnknownIdleStrategyIsRefusedWithTheChoices)
{
	int status;
	std::string out = onering_test::RunCommand(
	    std::string(ONERING_HTTP_SERVER_PATH) + " --idle spin --max-seconds 1", &status);

	ASSERT_TRUE(WIFEXITED(status)) << out;
	EXPECT_EQ(WEXITSTATUS(status), 2) << out;
	EXPECT_NE(out.find("--idle spin: expected busy, backoff or overprovisioned"),
		  std::string::npos)
	    << out;
}

// The state letter of process pid's main thread (/proc/PID/stat): 'R'
// running or runnable, 'S' asleep; '?' if it cannot be read.
char MainThreadState(pid_t pid)
{
	std::string stat = onering_test::ReadFile("/proc/" + std::to_string(pid) + "/stat");
	size_t paren = stat.rfind(')');
	return paren != std::string::npos && paren + 2 < stat.size() ? stat[paren + 2] : '?';
}

// Which strategy the server's queue gets, seen from its main thread while
// no request comes: busy never sleeps (running at every look), backoff and
// overprovisioned sleep in onering_wait (asleep at a look). Without --idle,
// $ONERING_IDLE decides; a given --idle wins over it, backoff too (the
// library's default, which the variable would otherwise replace).
TEST(HttpServerOptions, EachIdleStrategyGetsTheQueueItNames)
{
	struct Case {
		const char *idle, *env;
		bool sleeps;
	} cases[] = {
		{"busy", nullptr, false},          {nullptr, nullptr, true},
		{"overprovisioned", nullptr, true}, {"backoff", nullptr, true},
		{nullptr, "busy", false},          {"overprovisioned", "busy", true},
		{"backoff", "busy", true},         {nullptr, "overprovisioned", true},
	};
	for (const Case &c : cases) {
		SCOPED_TRACE(std::string("--idle ") + (c.idle ? c.idle : "(none)") + ", ONERING_IDLE=" +
			     (c.env ? c.env : "(unset)"));
		Broker broker;
		ASSERT_TRUE(broker.Start());
		int port = FreePort();
		ASSERT_GT(port, 0);
		std::vector<std::string> args = {ONERING_HTTP_SERVER_PATH, "--port", std::to_string(port),
						  "--max-seconds", "60", "--name", broker.Name(),
						  "--socket-dir", broker.Dir()};
		if (c.idle)
			args.insert(args.end(), {"--idle", c.idle});
		// The server's environment, set here (not between fork and exec)
		// and put back after the fork.
		const char *had = getenv("ONERING_IDLE");
		std::string saved = had ? had : "";
		if (c.env)
			setenv("ONERING_IDLE", c.env, 1);
		else
			unsetenv("ONERING_IDLE");
		pid_t pid = fork();
		if (pid != 0) {
			if (had)
				setenv("ONERING_IDLE", saved.c_str(), 1);
			else
				unsetenv("ONERING_IDLE");
		}
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
			onering_test::ExecArgs(args);
		}
		// Listening is not ready: the server listens before it attaches
		// (blocking round trips on the control socket). One request
		// answered is; the connection stays open, so no close is handled
		// during the looks.
		int s = -1;
		for (int i = 0; i < 500 && s < 0; i++) { // 5 s at most
			s = Connect(port);
			if (s < 0)
				usleep(10000);
		}
		bool listening = s >= 0, closed = false;
		bool answered = listening && SendAll(s, kGet) && Count(Read(s, 78, &closed), kOk) == 1;
		// Asleep at some look within 5 s, or running at every one of 50 over
		// 0.5 s: a busy thread is never asleep, a sleeping one stays so
		// with no request coming.
		bool asleep = false;
		for (int i = 0; i < (c.sleeps ? 500 : 50) && answered && !asleep; i++) {
			asleep = MainThreadState(pid) == 'S';
			usleep(10000);
		}
		if (s >= 0)
			close(s);
		kill(pid, SIGTERM);
		int status;
		EXPECT_TRUE(onering_test::WaitChild(pid, 10, &status));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status 0x" << std::hex
									    << status;
		ASSERT_TRUE(listening) << "the server did not listen";
		ASSERT_TRUE(answered) << "the server did not answer a request";
		EXPECT_EQ(asleep, c.sleeps);
		EXPECT_EQ(broker.Stop(), 0);
	}
}

} // namespace
