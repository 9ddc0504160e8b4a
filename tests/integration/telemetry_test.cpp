// SPDX-License-Identifier: MIT
// DPDK telemetry (broker/telemetry.c): a broker with a net_null port answers
// dpdk-telemetry.py (the tool from Debian's dpdk-dev) with its /onering/
// commands, counters under their table names (shm/counters.h); a raw client
// of the telemetry socket asks while queues come and go; telemetry stays off
// when told, and when its socket could not be made safely the broker runs
// without it.
#include "harness.h"

#include <algorithm>
#include <atomic>
#include <jansson.h>
#include <map>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>

#include "shm/counters.h"

using onering_test::Broker;

namespace {

const char *const kTool = "/usr/bin/dpdk-telemetry.py";

// The names of one counter table, as the broker's dicts must carry them.
#define COUNTER_NAME(P, ID, name, KIND, unit, help) #name,
const std::vector<std::string> kPollerCounters = {ONERING_POLLER_COUNTERS(COUNTER_NAME, PC)};
const std::vector<std::string> kQueueCounters = {ONERING_QUEUE_COUNTERS(COUNTER_NAME, QC)};
const std::vector<std::string> kGroupCounters = {ONERING_GROUP_COUNTERS(COUNTER_NAME, GC)};
const std::vector<std::string> kPortCounters = {ONERING_PORT_COUNTERS(COUNTER_NAME, PORTC)};
const std::vector<std::string> kRxqCounters = {ONERING_RXQ_COUNTERS(COUNTER_NAME, RXQC)};
#undef COUNTER_NAME

// Owns a parsed JSON value.
struct Json {
	json_t *v = nullptr;
	Json() = default;
	explicit Json(json_t *j) : v(j) {}
	Json(const Json &) = delete;
	Json &operator=(const Json &) = delete;
	Json(Json &&o) noexcept : v(o.v) { o.v = nullptr; }
	Json &operator=(Json &&o) noexcept
	{
		std::swap(v, o.v);
		return *this;
	}
	~Json() { json_decref(v); }
};

class Telemetry : public ::testing::Test {
protected:
	void SetUp() override
	{
		// DPDK's driver plugins leak at load (see nic_test.cpp).
		const char *asan = getenv("ASAN_OPTIONS");
		broker_.SetEnv("ASAN_OPTIONS", std::string(asan ? asan : "") + ":detect_leaks=0");
		prefix_ = "onering-tel-" + std::to_string(getpid()) + "-" +
			  ::testing::UnitTest::GetInstance()->current_test_info()->name();
	}

	void TearDown() override
	{
		if (att_)
			onering_detach(att_);
		bool running = broker_.Pid() > 0;
		int status = broker_.Stop();
		if (running) {
			EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
				<< "oneringd did not exit cleanly (status 0x" << std::hex << status << ")";
		}
		rmdir(RuntimeDir().c_str()); // the EAL leaves it, empty
	}

	std::vector<std::string> Eal(const std::vector<std::string> &also = {}) const
	{
		std::vector<std::string> e = {"--no-huge", "--no-pci", "--no-shconf", "-m", "256",
					      "--vdev", "net_null0", "--file-prefix", prefix_};
		e.insert(e.end(), also.begin(), also.end());
		return e;
	}

	bool StartWithPort(const std::vector<std::string> &also = {})
	{
		return broker_.Start({"--port", "net_null0:group=pk,snaplen=64"}, "tel", Eal(also));
	}

	// Where the EAL puts its runtime directory (and dpdk-telemetry.py
	// looks): the broker inherits this environment.
	std::string RuntimeDir() const
	{
		const char *base = getenv("RUNTIME_DIRECTORY");
		if (!base)
			base = geteuid() == 0 ? "/var/run" : getenv("XDG_RUNTIME_DIR");
		return std::string(base ? base : "/tmp") + "/dpdk/" + prefix_;
	}

	std::string SocketPath() const { return RuntimeDir() + "/dpdk_telemetry.v2"; }

	// Run dpdk-telemetry.py with these commands on stdin: its reply to
	// each, parsed, by command (one JSON object a line, in order).
	std::map<std::string, Json> Tool(const std::vector<std::string> &cmds)
	{
		std::map<std::string, Json> out;
		std::string input;
		for (auto &c : cmds)
			input += c + "\\n";
		int status;
		std::string text = onering_test::RunCommand(
			"printf '" + input + "' | " + kTool + " -f " + prefix_, &status);
		EXPECT_EQ(status, 0) << text;
		size_t at = 0, i = 0;
		while (at < text.size() && i < cmds.size()) {
			size_t nl = text.find('\n', at);
			std::string line = text.substr(at, nl == std::string::npos ? nl : nl - at);
			at = nl == std::string::npos ? text.size() : nl + 1;
			json_error_t err;
			json_t *j = json_loads(line.c_str(), 0, &err);
			EXPECT_NE(j, nullptr) << "not JSON: " << line << "\n(all: " << text << ")";
			if (!j) {
				i++;
				continue;
			}
			// The reply's one key is the command without its parameter.
			const char *key = json_object_iter_key(json_object_iter(j));
			EXPECT_NE(key, nullptr) << line;
			json_t *val = key ? json_incref(json_object_get(j, key)) : nullptr;
			json_decref(j);
			out[cmds[i++]] = Json(val);
		}
		EXPECT_EQ(i, cmds.size()) << "replies missing: " << text;
		return out;
	}

	static void ExpectKeys(json_t *dict, const std::vector<std::string> &keys, const char *what)
	{
		ASSERT_TRUE(json_is_object(dict)) << what;
		for (auto &k : keys)
			EXPECT_NE(json_object_get(dict, k.c_str()), nullptr) << what << " lacks " << k;
	}

	static std::vector<uint64_t> Ids(json_t *array)
	{
		std::vector<uint64_t> ids;
		size_t i;
		json_t *v;
		json_array_foreach(array, i, v) ids.push_back((uint64_t)json_integer_value(v));
		return ids;
	}

	Broker broker_;
	std::string prefix_;
	struct onering *att_ = nullptr;
};

// A client of the telemetry socket itself (SOCK_SEQPACKET, one message a
// reply), for what a script would do too slowly.
class RawClient {
public:
	bool Connect(const std::string &path)
	{
		struct sockaddr_un sa = {};
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
		fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd_ < 0 || connect(fd_, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return false;
		return !Read().empty(); // the hello: version, pid, max_output_len
	}

	// The reply to cmd, as text ("" when the socket failed).
	std::string Ask(const std::string &cmd)
	{
		if (send(fd_, cmd.data(), cmd.size(), 0) != (ssize_t)cmd.size())
			return "";
		return Read();
	}

	~RawClient()
	{
		if (fd_ >= 0)
			close(fd_);
	}

private:
	std::string Read()
	{
		std::vector<char> buf(65536);
		struct pollfd p = {fd_, POLLIN, 0};
		if (poll(&p, 1, 5000) != 1)
			return "";
		ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
		return n > 0 ? std::string(buf.data(), (size_t)n) : "";
	}

	int fd_ = -1;
};

TEST_F(Telemetry, DpdkTelemetryListsOneringCommands)
{
	ASSERT_EQ(access(kTool, X_OK), 0) << kTool << " missing: install dpdk-dev (tools/dev setup)";
	ASSERT_TRUE(StartWithPort());
	auto r = Tool({"/", "/help,/onering/queues"});
	ASSERT_TRUE(json_is_array(r["/"].v));
	std::vector<std::string> listed;
	size_t i;
	json_t *v;
	json_array_foreach(r["/"].v, i, v) listed.push_back(json_string_value(v));
	for (const char *c : {"/onering/info", "/onering/pollers", "/onering/queues",
			      "/onering/groups", "/onering/ports"})
		EXPECT_NE(std::find(listed.begin(), listed.end(), c), listed.end()) << c;
	const char *help = json_string_value(
		json_object_get(r["/help,/onering/queues"].v, "/onering/queues"));
	ASSERT_NE(help, nullptr);
	EXPECT_NE(strstr(help, "queue id"), nullptr) << help;
}

TEST_F(Telemetry, PollersAndInfoCarryCountersByTheirTableNames)
{
	ASSERT_TRUE(StartWithPort());
	auto r = Tool({"/onering/info", "/onering/pollers", "/onering/pollers,0"});
	ExpectKeys(r["/onering/info"].v, {"name", "version", "pid", "pollers", "clients"}, "info");
	EXPECT_STREQ(json_string_value(json_object_get(r["/onering/info"].v, "name")), "tel");
	EXPECT_EQ(json_integer_value(json_object_get(r["/onering/info"].v, "pid")), broker_.Pid());
	ASSERT_TRUE(json_is_array(r["/onering/pollers"].v));
	EXPECT_GE(json_array_size(r["/onering/pollers"].v), 1u);
	json_t *p = r["/onering/pollers,0"].v;
	ExpectKeys(p, kPollerCounters, "poller 0");
	ExpectKeys(p, {"id", "node", "rx_queues"}, "poller 0");
	EXPECT_GT(json_integer_value(json_object_get(p, "loops")), 0);
}

TEST_F(Telemetry, QueuesListTheQueueAClientOpened)
{
	ASSERT_TRUE(StartWithPort());
	auto before = Tool({"/onering/queues"});
	ASSERT_TRUE(json_is_array(before["/onering/queues"].v));
	std::vector<uint64_t> old = Ids(before["/onering/queues"].v);

	ASSERT_EQ(broker_.Attach(&att_), 0);
	struct onering_queue *q;
	ASSERT_EQ(onering_queue_open(att_, nullptr, &q), 0);
	auto after = Tool({"/onering/queues"});
	std::vector<uint64_t> now = Ids(after["/onering/queues"].v);
	ASSERT_EQ(now.size(), old.size() + 1);
	uint64_t id = 0;
	bool found = false;
	for (uint64_t x : now)
		if (std::find(old.begin(), old.end(), x) == old.end()) {
			id = x;
			found = true;
		}
	ASSERT_TRUE(found);

	std::string one = "/onering/queues," + std::to_string(id);
	auto r = Tool({one});
	ExpectKeys(r[one].v, kQueueCounters, "the queue");
	EXPECT_EQ(json_integer_value(json_object_get(r[one].v, "id")), (json_int_t)id);
	EXPECT_EQ(json_integer_value(json_object_get(r[one].v, "owner_pid")), getpid());
	EXPECT_EQ(json_integer_value(json_object_get(r[one].v, "owner_uid")), (json_int_t)getuid());
	EXPECT_STREQ(json_string_value(json_object_get(r[one].v, "state")), "live");
	EXPECT_EQ(json_integer_value(json_object_get(r[one].v, "capacity")), 1024);
}

TEST_F(Telemetry, GroupsAndPortsShowSettingsAndCounters)
{
	ASSERT_TRUE(StartWithPort());
	auto r = Tool({"/onering/groups", "/onering/groups,pk", "/onering/ports",
		       "/onering/ports,0"});
	ASSERT_TRUE(json_is_array(r["/onering/groups"].v));
	EXPECT_GE(json_array_size(r["/onering/groups"].v), 2u); // default, pk
	json_t *g = r["/onering/groups,pk"].v;
	ExpectKeys(g, kGroupCounters, "group pk");
	ExpectKeys(g, {"id", "name", "policy", "numa", "wake", "members"}, "group pk");
	EXPECT_STREQ(json_string_value(json_object_get(g, "policy")), "rr");
	// By id too.
	std::string by_id =
		"/onering/groups," + std::to_string(json_integer_value(json_object_get(g, "id")));
	EXPECT_STREQ(json_string_value(json_object_get(Tool({by_id})[by_id].v, "name")), "pk");

	EXPECT_EQ(Ids(r["/onering/ports"].v), std::vector<uint64_t>{0});
	json_t *p = r["/onering/ports,0"].v;
	ExpectKeys(p, kPortCounters, "port 0");
	EXPECT_STREQ(json_string_value(json_object_get(p, "driver")), "net_null");
	json_t *rxq = json_object_get(p, "rxq_0");
	ExpectKeys(rxq, kRxqCounters, "rx queue 0");
	EXPECT_STREQ(json_string_value(json_object_get(rxq, "group_name")), "pk");
}

TEST_F(Telemetry, BadParametersAnswerNull)
{
	ASSERT_TRUE(StartWithPort());
	const std::vector<std::string> bad = {
		"/onering/pollers,x",  "/onering/pollers,99",	     "/onering/pollers,-1",
		"/onering/queues,abc", "/onering/queues,4294967296", "/onering/queues,77777",
		"/onering/groups,no-such", "/onering/groups,../x",   "/onering/ports,65536",
		"/onering/ports,7",    "/onering/info,1",
	};
	auto r = Tool(bad);
	for (auto &c : bad)
		EXPECT_TRUE(json_is_null(r[c].v)) << c << " answered something";
}

// Commands from another thread while queues open and close: every reply is
// whole, the broker stays up (an ASan build checks what it reads).
TEST_F(Telemetry, AnswersWhileQueuesComeAndGo)
{
	ASSERT_TRUE(StartWithPort());
	RawClient tel;
	ASSERT_TRUE(tel.Connect(SocketPath())) << SocketPath();
	ASSERT_EQ(broker_.Attach(&att_), 0);
	std::atomic<bool> done{false};
	std::thread churn([&] {
		for (int i = 0; i < 200; i++) {
			struct onering_queue *q;
			if (onering_queue_open(att_, nullptr, &q) == 0)
				onering_queue_close(q);
		}
		done = true;
	});
	// The reply to cmd, parsed: {cmd without its parameter: value}.
	auto ask = [&tel](const std::string &cmd) {
		std::string text = tel.Ask(cmd);
		json_error_t err;
		Json j(json_loads(text.c_str(), 0, &err));
		EXPECT_NE(j.v, nullptr) << cmd << ": not JSON: " << text;
		json_t *v = j.v ? json_object_get(j.v, cmd.substr(0, cmd.find(',')).c_str()) : nullptr;
		EXPECT_NE(v, nullptr) << cmd << ": " << text;
		return Json(v ? json_incref(v) : nullptr);
	};
	int asked = 0;
	while (!done || asked < 20) {
		Json list = ask("/onering/queues");
		ASSERT_TRUE(json_is_array(list.v));
		for (uint64_t id : Ids(list.v)) {
			Json q = ask("/onering/queues," + std::to_string(id));
			// Gone already (null), or whole.
			ASSERT_TRUE(json_is_null(q.v) || json_object_get(q.v, "published")) << id;
		}
		Json g = ask("/onering/groups,pk");
		ASSERT_NE(json_object_get(g.v, "members"), nullptr);
		asked++;
	}
	churn.join();
	Json info = ask("/onering/info");
	EXPECT_STREQ(json_string_value(json_object_get(info.v, "name")), "tel");
}

TEST_F(Telemetry, NoTelemetryBeforeTheDashesKeepsItOff)
{
	ASSERT_TRUE(StartWithPort({"--no-telemetry"}));
	struct stat st;
	EXPECT_NE(stat(SocketPath().c_str(), &st), 0) << SocketPath() << " exists";
	RawClient tel;
	EXPECT_FALSE(tel.Connect(SocketPath()));
}

// A runtime directory the EAL could not bind a socket under (its path too
// long for a Unix address): DPDK would fail rte_eal_init, so the broker
// turns telemetry off, says why, and serves.
TEST_F(Telemetry, SocketPathTooLongStartsWithoutTelemetry)
{
	char tmpl[] = "/tmp/onering-tel-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	std::string deep = std::string(tmpl) + "/" + std::string(100, 'd');
	ASSERT_EQ(mkdir(deep.c_str(), 0700), 0);
	broker_.SetEnv("RUNTIME_DIRECTORY", deep);
	bool started = StartWithPort();
	std::string log;
	if (FILE *f = fopen((broker_.Dir() + "/oneringd.log").c_str(), "r")) {
		char line[1024];
		while (fgets(line, sizeof(line), f))
			log += line;
		fclose(f);
	}
	broker_.Stop();
	std::string rt = deep + "/dpdk/" + prefix_;
	rmdir(rt.c_str());
	rmdir((deep + "/dpdk").c_str());
	rmdir(deep.c_str());
	rmdir(tmpl);
	ASSERT_TRUE(started) << log;
	EXPECT_NE(log.find("DPDK telemetry off"), std::string::npos) << log;
	EXPECT_NE(log.find("longer than a Unix socket address"), std::string::npos) << log;
}

} // namespace

// oneringd --check says whether the broker will answer dpdk-telemetry.py.
TEST(TelemetryCheck, CheckSaysWhetherTelemetryIsOn)
{
	std::string dir = onering_test::MakeTempDir();
	const std::string d = std::string(ONERINGD_PATH);
	int st;
	std::string out = onering_test::RunCommand(d + " --no-huge --vdev net_null0 -- --check "
						   "--port net_null0:rxq=1 --socket-dir " + dir, &st);
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("telemetry     on: /onering/ commands"), std::string::npos) << out;
	out = onering_test::RunCommand(d + " --no-huge --no-telemetry --vdev net_null0 -- --check "
				       "--port net_null0:rxq=1 --socket-dir " + dir, &st);
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("telemetry     off (--no-telemetry)"), std::string::npos) << out;
	rmdir(dir.c_str());
}
