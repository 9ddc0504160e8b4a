// SPDX-License-Identifier: MIT
// The counters segment from outside the broker: onering stat reads it with
// no client slot; oneringd --metrics-listen serves the same Prometheus text
// over HTTP, refuses bad requests and never waits for a slow client.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <set>
#include <sstream>

#include "harness.h"

#ifndef ONERING_TOOL_PATH
#error "ONERING_TOOL_PATH must name the onering binary under test"
#endif

using onering_test::Broker;
using onering_test::RunCommand;

namespace {

std::string Stat(const Broker &b, const std::string &args, int *st)
{
	return RunCommand(std::string(ONERING_TOOL_PATH) + " stat --name " + b.Name() +
			  " --socket-dir " + b.Dir() + " " + args, st);
}

// The broker's own counter of attached clients, and the readers, as stat sees them.
void Clients(const Broker &b, long long *clients, long long *attaches, long long *readers)
{
	int st;
	std::string out = Stat(b, "--json", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	json_error_t jerr;
	json_t *root = json_loads(out.c_str(), 0, &jerr);
	ASSERT_NE(root, nullptr) << jerr.text << "\n" << out;
	json_t *broker = json_object_get(root, "broker");
	*clients = json_integer_value(json_object_get(broker, "clients"));
	*attaches = json_integer_value(json_object_get(broker, "attaches"));
	*readers = json_integer_value(json_object_get(json_object_get(root, "export"), "readers"));
	json_decref(root);
}

// A TCP port nobody listens on now (bound to 0, closed: a small race).
int FreePort()
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in sa = {};
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	if (bind(s, (sockaddr *)&sa, sizeof(sa)) < 0 || getsockname(s, (sockaddr *)&sa, &len) < 0) {
		close(s);
		return -1;
	}
	close(s);
	return ntohs(sa.sin_port);
}

int Connect(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in sa = {};
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s, (sockaddr *)&sa, sizeof(sa)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

// Everything the peer sends until it closes, waiting at most ms in all.
std::string ReadAll(int s, int ms)
{
	std::string out;
	auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
	for (;;) {
		int left = (int)std::chrono::duration_cast<std::chrono::milliseconds>(
				   end - std::chrono::steady_clock::now()).count();
		pollfd p = {s, POLLIN, 0};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return out + "<timeout>";
		char buf[4096];
		ssize_t n = recv(s, buf, sizeof(buf), 0);
		if (n <= 0)
			return out;
		out.append(buf, (size_t)n);
	}
}

std::string Request(int port, const std::string &req)
{
	int s = Connect(port);
	if (s < 0)
		return "<no connection>";
	send(s, req.data(), req.size(), MSG_NOSIGNAL);
	std::string out = ReadAll(s, 5000);
	close(s);
	return out;
}

// The lines of a Prometheus text that say what is there: HELP, TYPE, and
// each sample's name and labels (values change between two reads); the
// export's own samples count the reads themselves, so they are left out.
std::set<std::string> Shape(const std::string &text)
{
	std::set<std::string> shape;
	std::istringstream lines(text);
	std::string line;
	while (std::getline(lines, line)) {
		if (line.rfind("onering_export_", 0) == 0)
			continue;
		shape.insert(line[0] == '#' ? line : line.substr(0, line.rfind(' ')));
	}
	return shape;
}

class MetricsTest : public ::testing::Test {
protected:
	void Start(std::vector<std::string> extra = {})
	{
		port_ = FreePort();
		ASSERT_GT(port_, 0);
		extra.push_back("--metrics-listen");
		extra.push_back(std::to_string(port_));
		ASSERT_TRUE(broker_.Start(extra));
	}
	Broker broker_;
	int port_ = -1;
};

// stat and top read the segment: the broker's clients gauge and attaches
// counter do not move, the export's readers does.
TEST_F(MetricsTest, StatReadsTheSegmentWithoutAClientSlot)
{
	Start();
	long long clients = -1, attaches = -1, readers = -1;
	Clients(broker_, &clients, &attaches, &readers);
	EXPECT_EQ(clients, 0);
	EXPECT_EQ(attaches, 0);
	EXPECT_EQ(readers, 1) << "this read is the first";
	struct onering *att;
	ASSERT_EQ(broker_.Attach(&att), 0);
	for (int i = 0; i < 3; i++)
		Clients(broker_, &clients, &attaches, &readers);
	EXPECT_EQ(clients, 1) << "the attached client only";
	EXPECT_EQ(attaches, 1);
	EXPECT_EQ(readers, 4);
	int st;
	std::string out = Stat(broker_, "--interval 1 --count 2", &st);
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
	Clients(broker_, &clients, &attaches, &readers);
	EXPECT_EQ(clients, 1);
	EXPECT_EQ(attaches, 1) << "--interval does not attach either";
	onering_detach(att);

	// A broker of the same name that is gone: a clear error, not a hang.
	out = RunCommand(std::string(ONERING_TOOL_PATH) + " stat --name nobody --socket-dir " +
			 broker_.Dir(), &st);
	EXPECT_EQ(WEXITSTATUS(st), 1);
	EXPECT_NE(out.find("not running"), std::string::npos) << out;
}

// top maps the segment once: while it runs the broker counts no client;
// when the broker stops, top ends by itself.
TEST_F(MetricsTest, TopHoldsNoClientSlot)
{
	int st;
	RunCommand("command -v tmux", &st);
	if (WEXITSTATUS(st) != 0)
		GTEST_SKIP() << "no tmux on this machine";
	Start();
	const std::string session = "onering-top-m-" + std::to_string(getpid());
	RunCommand("tmux new-session -d -s " + session + " -x 160 -y 40 '" + ONERING_TOOL_PATH +
		   " top --name " + broker_.Name() + " --socket-dir " + broker_.Dir() + "'", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0);
	std::string screen;
	for (int i = 0; i < 50 && screen.find("POLLER") == std::string::npos; i++) {
		usleep(100000);
		screen = RunCommand("tmux capture-pane -p -t " + session, &st);
	}
	EXPECT_NE(screen.find("0 clients"), std::string::npos) << screen;
	long long clients = -1, attaches = -1, readers = -1;
	Clients(broker_, &clients, &attaches, &readers);
	EXPECT_EQ(clients, 0);
	EXPECT_EQ(attaches, 0);
	EXPECT_EQ(readers, 2) << "top's and this one's";
	// The broker stops: top, still mapping the segment, sees it and ends.
	broker_.Stop();
	bool gone = false;
	for (int i = 0; i < 50 && !gone; i++) {
		usleep(100000);
		RunCommand("tmux has-session -t " + session, &st);
		gone = WEXITSTATUS(st) != 0;
	}
	if (!gone)
		RunCommand("tmux kill-session -t " + session, &st);
	EXPECT_TRUE(gone) << "top did not end when the broker stopped";
}

// GET /metrics: 200, the exposition content type, and the same HELP, TYPE
// and samples (names and labels) as onering stat --prometheus.
TEST_F(MetricsTest, EndpointServesWhatStatPrints)
{
	Start();
	struct onering *att;
	struct onering_queue *q;
	ASSERT_EQ(broker_.Attach(&att), 0);
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);
	std::string http = Request(port_, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
	ASSERT_EQ(http.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << http;
	EXPECT_NE(http.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << http;
	size_t body = http.find("\r\n\r\n");
	ASSERT_NE(body, std::string::npos);
	std::string text = http.substr(body + 4);
	size_t cl = http.find("Content-Length: ");
	ASSERT_NE(cl, std::string::npos);
	EXPECT_EQ(std::stoul(http.substr(cl + 16)), text.size());
	int st;
	std::string stat = Stat(broker_, "--prometheus", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << stat;
	std::set<std::string> a = Shape(text), b = Shape(stat);
	EXPECT_EQ(a, b) << "HTTP:\n" << text << "\nstat:\n" << stat;
	EXPECT_TRUE(a.count("onering_queue_published_total{instance=\"" + broker_.Name() +
			    "\",queue=\"1\",pid=\"" + std::to_string(getpid()) + "\",node=\"0\",group=\"0\"}"))
		<< text;
	EXPECT_NE(text.find("onering_export_http_requests_total{instance=\"" + broker_.Name() +
			    "\"} 1\n"), std::string::npos) << "this request counted\n" << text;
	std::string head = Request(port_, "HEAD /metrics HTTP/1.1\r\n\r\n");
	EXPECT_EQ(head.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << head;
	EXPECT_EQ(head.substr(head.find("\r\n\r\n") + 4), "") << "HEAD: no body";
	onering_detach(att);
}

// Other paths 404, other methods 405, garbage 400, a request past 2048
// bytes 431; a client that sends half a request holds nothing up and is
// closed at its deadline; past 16 connections the next is told 503.
TEST_F(MetricsTest, EndpointRefusesBadRequestsWithoutBlocking)
{
	Start();
	EXPECT_EQ(Request(port_, "GET /other HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 404 ", 0), 0u);
	std::string r = Request(port_, "POST /metrics HTTP/1.0\r\n\r\n");
	EXPECT_EQ(r.rfind("HTTP/1.0 405 ", 0), 0u) << r;
	EXPECT_NE(r.find("Allow: GET, HEAD\r\n"), std::string::npos) << r;
	EXPECT_EQ(Request(port_, "\x16\x03\x01\x02\x00 hello\r\n\r\n").rfind("HTTP/1.0 400 ", 0), 0u);
	EXPECT_EQ(Request(port_, "GET /metrics HTTP/1.0\r\nX: " + std::string(4000, 'a') + "\r\n\r\n")
			  .rfind("HTTP/1.0 431 ", 0), 0u);

	int slow = Connect(port_);
	ASSERT_GE(slow, 0);
	ASSERT_EQ(send(slow, "GET /met", 8, MSG_NOSIGNAL), 8);
	// Served before the slow one's 2 s deadline (the time of the request
	// alone: the stat below forks a tool, slow in a sanitized build).
	auto t0 = std::chrono::steady_clock::now();
	r = Request(port_, "GET /metrics HTTP/1.0\r\n\r\n");
	EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1800))
		<< "a slow client held the broker up";
	EXPECT_EQ(r.rfind("HTTP/1.0 200 OK", 0), 0u) << r.substr(0, 200);
	int st;
	std::string out = Stat(broker_, "", &st);
	EXPECT_EQ(WEXITSTATUS(st), 0) << "the control thread still serves: " << out;
	std::string rest = ReadAll(slow, 5000); // closed at its 2 s deadline
	EXPECT_EQ(rest.find("<timeout>"), std::string::npos) << rest;
	close(slow);

	std::vector<int> idle;
	for (int i = 0; i < 16; i++) {
		int s = Connect(port_);
		ASSERT_GE(s, 0);
		idle.push_back(s);
	}
	// Refused once the broker has accepted all 16 (asked every 100 ms, 5 s
	// at most: a request before that is served).
	int refused = 0;
	for (int i = 0; i < 50 && !refused; i++) {
		r = Request(port_, "GET /metrics HTTP/1.0\r\n\r\n");
		refused += r.rfind("HTTP/1.0 503 ", 0) == 0;
		if (!refused)
			usleep(100000);
	}
	EXPECT_EQ(refused, 1) << r.substr(0, 200);
	for (int s : idle)
		close(s);
	// Served again once the broker has seen them go (the same bound); a
	// request before that is refused, and counted.
	bool served = false;
	for (int i = 0; i < 50 && !served; i++) {
		r = Request(port_, "GET /metrics HTTP/1.0\r\n\r\n");
		served = r.rfind("HTTP/1.0 200 OK", 0) == 0;
		refused += r.rfind("HTTP/1.0 503 ", 0) == 0;
		if (!served)
			usleep(100000);
	}
	EXPECT_TRUE(served) << "free again: " << r.substr(0, 200);
	out = Stat(broker_, "--json", &st);
	EXPECT_NE(out.find("\"http_refused\": " + std::to_string(refused)), std::string::npos)
		<< out;
	EXPECT_NE(out.find("\"http_timeouts\": 1"), std::string::npos) << out;
	EXPECT_NE(out.find("\"http_errors\": 4"), std::string::npos) << out;
}

// --check names the endpoint (a port alone: loopback); a bad address is a
// usage error naming the forms.
TEST(MetricsCheckTest, CheckPrintsTheEndpointAndRefusesABadAddress)
{
	std::string dir = onering_test::MakeTempDir();
	const std::string check = std::string(ONERINGD_PATH) + " --check --name m --socket-dir " + dir;
	int st;
	std::string out = RunCommand(check + " --metrics-listen 9464", &st);
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("metrics       http://127.0.0.1:9464/metrics\n"), std::string::npos) << out;
	EXPECT_NE(out.find("option        metrics-listen = 9464  (command line)"), std::string::npos)
		<< out;
	out = RunCommand(check, &st);
	EXPECT_NE(out.find("metrics       off"), std::string::npos) << out;
	EXPECT_NE(out.find("counters      segment of 1024 objects"), std::string::npos) << out;
	out = RunCommand(check + " --metrics-listen [::1]:9464", &st);
	EXPECT_NE(out.find("metrics       http://[::1]:9464/metrics"), std::string::npos) << out;
	for (const char *bad : {"localhost:80", "70000", "1.2.3.4:", ":80", "[::1]80"}) {
		out = RunCommand(check + " --metrics-listen '" + bad + "'", &st);
		EXPECT_NE(WEXITSTATUS(st), 0) << bad << ": " << out;
		EXPECT_NE(out.find("ADDR:PORT"), std::string::npos) << bad << ": " << out;
	}
	rmdir(dir.c_str());
}

} // namespace
