// SPDX-License-Identifier: MIT
// The onering command: demo, stat, tune, topo, its usage; the counters docs.
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <jansson.h>

#include <fstream>
#include <map>
#include <algorithm>
#include <set>
#include <thread>
#include <atomic>
#include <sstream>

#include "harness.h"

#ifndef ONERING_TOOL_PATH
#error "ONERING_TOOL_PATH must name the onering binary under test"
#endif
#ifndef ONERING_DOCS_DIR
#error "ONERING_DOCS_DIR must name the docs/ folder"
#endif

using onering_test::Broker;
using onering_test::RunCommand;

namespace {

std::string RunTool(const std::string &args, int *status)
{
	return onering_test::RunCommand(std::string(ONERING_TOOL_PATH) + " " + args, status);
}

TEST(ToolTest, DemoRunsBoundedAndCleansUp)
{
	int st;
	// 2 s: the writes come within 0.5 s of the start, leaving a slow
	// (sanitizer) build on a loaded machine room to deliver them.
	std::string out = RunTool("demo --seconds 2", &st);
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
	for (const char *kind : {"socketpair", "pipe", "eventfd", "timerfd"})
		EXPECT_NE(out.find(kind), std::string::npos) << kind << " missing:\n" << out;
	EXPECT_NE(out.find("stopped"), std::string::npos) << "it stops the broker it started";
}

TEST(ToolTest, StatJsonDescribesARunningBroker)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	struct onering *att;
	struct onering_queue *q;
	ASSERT_EQ(broker.Attach(&att), 0);
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);
	int st;
	std::string out = RunTool("stat --json --name " + broker.Name() + " --socket-dir " + broker.Dir(), &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	json_error_t jerr;
	json_t *root = json_loads(out.c_str(), 0, &jerr);
	ASSERT_NE(root, nullptr) << jerr.text << "\n" << out;
	EXPECT_EQ(json_integer_value(json_object_get(json_object_get(root, "broker"), "pid")),
		  broker.Pid());
	EXPECT_EQ(json_array_size(json_object_get(root, "pollers")), 1u);
	json_t *queues = json_object_get(root, "queues");
	ASSERT_EQ(json_array_size(queues), 1u);
	EXPECT_EQ(json_integer_value(json_object_get(json_array_get(queues, 0), "capacity")), 1024);
	json_decref(root);
	onering_detach(att);

	out = RunTool("stat --name nobody-here --socket-dir " + broker.Dir(), &st);
	EXPECT_EQ(WEXITSTATUS(st), 1);
	EXPECT_NE(out.find("not running"), std::string::npos) << out;
}

// --prometheus: every line is a HELP, a TYPE or a sample in the text
// exposition format; every counter of the table (labels excepted) has its
// HELP and TYPE, counters end in _total; samples carry the instance.
TEST(ToolTest, StatPrometheusDescribesEveryCounter)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	struct onering *att;
	struct onering_queue *q;
	ASSERT_EQ(broker.Attach(&att), 0);
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);
	const std::string inst = " --name " + broker.Name() + " --socket-dir " + broker.Dir();
	int st;
	std::string out = RunTool("stat --prometheus" + inst, &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;

	std::map<std::string, std::string> types;
	std::set<std::string> helped, sampled;
	std::istringstream lines(out);
	std::string line;
	auto metric_name = [](const std::string &t) {
		return t.rfind("onering_", 0) == 0 &&
		       t.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos;
	};
	while (std::getline(lines, line)) {
		std::istringstream w(line);
		std::string hash, word, name, rest;
		if (line.rfind("# HELP ", 0) == 0) {
			w >> hash >> word >> name >> rest;
			EXPECT_TRUE(metric_name(name) && !rest.empty()) << line;
			EXPECT_TRUE(helped.insert(name).second) << "HELP twice: " << line;
		} else if (line.rfind("# TYPE ", 0) == 0) {
			w >> hash >> word >> name >> rest;
			EXPECT_TRUE(rest == "counter" || rest == "gauge") << line;
			EXPECT_TRUE(helped.count(name)) << "TYPE before its HELP: " << line;
			types[name] = rest;
		} else {
			// NAME{instance="...",k="v",...} VALUE
			size_t brace = line.find('{'), close = line.rfind("} ");
			ASSERT_TRUE(brace != std::string::npos && close != std::string::npos &&
				    close > brace) << "not exposition format: " << line;
			name = line.substr(0, brace);
			std::string labels = line.substr(brace + 1, close - brace - 1);
			std::string value = line.substr(close + 2);
			EXPECT_TRUE(metric_name(name)) << line;
			EXPECT_EQ(labels.rfind("instance=\"" + broker.Name() + "\"", 0), 0u) << line;
			EXPECT_EQ(std::count(labels.begin(), labels.end(), '"') % 2, 0) << line;
			EXPECT_TRUE(!value.empty() && value.find_first_not_of("0123456789") ==
							      std::string::npos) << line;
			EXPECT_TRUE(types.count(name)) << "sample before its TYPE: " << line;
			sampled.insert(name);
		}
	}
	// The table, from --list-counters: family, name, kind, unit, help.
	const std::map<std::string, std::string> object = {
		{"broker", "broker"}, {"pollers", "poller"}, {"queues", "queue"},
		{"groups", "group"},  {"ports", "port"},     {"rx_queues", "rxq"},
		{"export", "export"}, {"levels", "queue_level"}, {"streams", "queue_stream"}};
	std::istringstream table(RunTool("stat --list-counters", &st));
	size_t described = 0;
	while (std::getline(table, line)) {
		std::istringstream w(line);
		std::string family, name, kind;
		w >> family >> name >> kind;
		if (kind == "label")
			continue;
		ASSERT_TRUE(object.count(family)) << line;
		std::string metric = "onering_" + object.at(family) + "_" + name +
				     (kind == "counter" ? "_total" : "");
		ASSERT_TRUE(types.count(metric)) << metric << " missing";
		EXPECT_EQ(types[metric], kind) << metric;
		described++;
	}
	EXPECT_EQ(described, types.size());
	for (const char *m2 : {"onering_queue_published_total", "onering_poller_loops_total",
			       "onering_broker_clients"})
		EXPECT_TRUE(sampled.count(m2)) << m2 << " has no sample";
	onering_detach(att);
}

// --interval prints rates; a bad value is a usage error naming it.
TEST(ToolTest, StatIntervalPrintsRatesAndRefusesZero)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	const std::string inst = " --name " + broker.Name() + " --socket-dir " + broker.Dir();
	int st;
	std::string out = RunTool("stat --interval 1 --count 1" + inst, &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("per second over the last 1 s"), std::string::npos) << out;
	EXPECT_NE(out.find("loops"), std::string::npos) << out;
	out = RunTool("stat --interval 0" + inst, &st);
	EXPECT_EQ(WEXITSTATUS(st), 2);
	EXPECT_NE(out.find("\"0\""), std::string::npos) << out;
	out = RunTool("stat --interval 1 --json" + inst, &st);
	EXPECT_EQ(WEXITSTATUS(st), 2) << out;
}

// doctor: one finding per check; the machine's missing hugepages and
// isolation come with their fix commands; the exit status says whether
// anything is at warn or worse; --json parses and agrees with it.
TEST(ToolTest, DoctorReportsWhatToFixAndSaysSoInItsStatus)
{
	int st;
	std::string out = RunTool("doctor --json", &st);
	json_error_t jerr;
	json_t *root = json_loads(out.c_str(), 0, &jerr);
	ASSERT_NE(root, nullptr) << jerr.text << "\n" << out;
	json_t *findings = json_object_get(root, "findings");
	ASSERT_TRUE(json_is_array(findings)) << out;
	std::map<std::string, std::string> sev, fix;
	bool bad = false;
	for (size_t i = 0; i < json_array_size(findings); i++) {
		json_t *f = json_array_get(findings, i);
		std::string check = json_string_value(json_object_get(f, "check"));
		std::string s2 = json_string_value(json_object_get(f, "severity"));
		json_t *fx = json_object_get(f, "fix");
		if (s2 == "warn" || s2 == "error") {
			bad = true;
			EXPECT_TRUE(json_is_string(fx)) << check << ": a warning without its fix";
		}
		if (!sev.count(check) || s2 == "warn") {
			sev[check] = s2;
			fix[check] = fx ? json_string_value(fx) : "";
		}
	}
	EXPECT_EQ(WEXITSTATUS(st), bad ? 1 : 0) << out;
	EXPECT_EQ(std::string(json_string_value(json_object_get(root, "worst"))) == "warn" ||
			  std::string(json_string_value(json_object_get(root, "worst"))) == "error",
		  bad);
	for (const char *c : {"hugepages", "isolcpus", "memlock", "nofile", "socketdir",
			      "kernel", "io_uring"})
		EXPECT_TRUE(sev.count(c)) << c << " not checked:\n" << out;

	// What this machine has decides what the doctor must say.
	std::ifstream meminfo("/proc/meminfo");
	std::string line;
	long huge = -1;
	while (std::getline(meminfo, line))
		if (sscanf(line.c_str(), "HugePages_Total: %ld", &huge) == 1)
			break;
	if (huge == 0) {
		EXPECT_EQ(sev["hugepages"], "warn");
		EXPECT_NE(fix["hugepages"].find("nr_hugepages"), std::string::npos) << fix["hugepages"];
	}
	std::ifstream iso("/sys/devices/system/cpu/isolated");
	std::string isolated;
	std::getline(iso, isolated);
	if (isolated.empty()) {
		EXPECT_EQ(sev["isolcpus"], "warn");
		EXPECT_NE(fix["isolcpus"].find("isolcpus="), std::string::npos) << fix["isolcpus"];
	}
	json_decref(root);

	out = RunTool("doctor", &st);
	EXPECT_EQ(WEXITSTATUS(st), bad ? 1 : 0) << out;
	EXPECT_NE(out.find("fix:"), std::string::npos) << out;
	out = RunTool("doctor --cores x", &st);
	EXPECT_EQ(WEXITSTATUS(st), 2);
	EXPECT_NE(out.find("\"x\""), std::string::npos) << out;
}

// top, driven in tmux: while a periodic timer fills a queue that a thread
// drains, the poller row (with its busy %) and the queue's records/s show;
// q quits it.
TEST(ToolTest, TopShowsPollersAndQueueRatesAndQuitsOnQ)
{
	int st;
	onering_test::RunCommand("command -v tmux", &st);
	if (WEXITSTATUS(st) != 0)
		GTEST_SKIP() << "no tmux on this machine";
	Broker broker;
	ASSERT_TRUE(broker.Start());
	struct onering *att;
	struct onering_queue *q;
	ASSERT_EQ(broker.Attach(&att), 0);
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);
	onering_sub timer;
	ASSERT_EQ(onering_timer_create(q, 7, &timer), 0);
	ASSERT_EQ(onering_timer_arm(q, timer, 1000000, 1000000, 0), 0); // 1 ms, periodic
	std::atomic<bool> stop{false};
	std::thread drain([&] {
		onering_event ev[64];
		while (!stop.load())
			onering_wait(q, ev, 1, 64, 20 * 1000000ll);
	});

	const std::string session = "onering-top-" + std::to_string(getpid());
	onering_test::RunCommand("tmux new-session -d -s " + session + " -x 160 -y 40 '" +
				 ONERING_TOOL_PATH + " top --name " + broker.Name() +
				 " --socket-dir " + broker.Dir() + "'", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0);
	std::string screen;
	bool poller_row = false, queue_rate = false;
	for (int i = 0; i < 100 && !(poller_row && queue_rate); i++) { // 10 s at most
		usleep(100000);
		screen = onering_test::RunCommand("tmux capture-pane -p -t " + session, &st);
		std::istringstream lines(screen);
		std::string line, section;
		while (std::getline(lines, line)) {
			std::istringstream w(line);
			std::string first;
			w >> first;
			if (first == "POLLER" || first == "QUEUE") {
				section = first;
				continue;
			}
			if (first.empty() || first.find_first_not_of("0123456789") != std::string::npos)
				continue;
			double a = -1, b = -1, c = -1;
			w >> a >> b >> c; // poller: cpu busy% loops/s; queue: pid node records/s
			if (section == "POLLER" && b >= 0 && b <= 100)
				poller_row = true;
			if (section == "QUEUE" && c > 0)
				queue_rate = true;
		}
	}
	EXPECT_TRUE(poller_row) << screen;
	EXPECT_TRUE(queue_rate) << "no queue with records/s > 0:\n" << screen;
	EXPECT_NE(screen.find("BUSY%"), std::string::npos) << screen;

	onering_test::RunCommand("tmux send-keys -t " + session + " q", &st);
	bool gone = false;
	for (int i = 0; i < 50 && !gone; i++) { // 5 s at most
		usleep(100000);
		onering_test::RunCommand("tmux has-session -t " + session, &st);
		gone = WEXITSTATUS(st) != 0;
	}
	if (!gone)
		onering_test::RunCommand("tmux kill-session -t " + session, &st);
	EXPECT_TRUE(gone) << "top did not quit on q";
	stop = true;
	drain.join();
	onering_detach(att);
}

// tune changes a group while its member stays attached; stat shows the
// group; bad settings and unknown groups get a readable error.
TEST(ToolTest, TuneAndStatGroups)
{
	Broker broker;
	ASSERT_TRUE(broker.Start({"--group", "web:policy=least,numa=strict"}));
	struct onering *att;
	struct onering_queue *q;
	ASSERT_EQ(broker.Attach(&att), 0);
	struct onering_queue_options qo = {};
	qo.group = "web";
	ASSERT_EQ(onering_queue_open(att, &qo, &q), 0);
	EXPECT_NE(onering_queue_group(q), 0u);
	const std::string at = " --name " + broker.Name() + " --socket-dir " + broker.Dir();
	int st;

	std::string out = RunTool("tune" + at + " --group web", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("policy=least numa=strict"), std::string::npos) << out;
	EXPECT_NE(out.find("members=1"), std::string::npos) << out;

	out = RunTool("tune" + at + " --group web policy=lifo max_running=3 wake=fifo "
				    "numa=spill:70 backlog=100", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("policy=lifo numa=spill:70 wake=fifo max_running=3 backlog=100"),
		  std::string::npos) << out;

	out = RunTool("stat --json" + at, &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	json_error_t jerr;
	json_t *root = json_loads(out.c_str(), 0, &jerr);
	ASSERT_NE(root, nullptr) << jerr.text << "\n" << out;
	json_t *groups = json_object_get(root, "groups"), *web = nullptr;
	for (size_t i = 0; i < json_array_size(groups); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(groups, i), "name")), "web") == 0)
			web = json_array_get(groups, i);
	ASSERT_NE(web, nullptr) << out;
	EXPECT_STREQ(json_string_value(json_object_get(web, "policy")), "lifo");
	EXPECT_EQ(json_integer_value(json_object_get(web, "members")), 1);
	EXPECT_EQ(json_integer_value(json_object_get(web, "max_running")), 3);
	json_decref(root);
	out = RunTool("stat" + at, &st);
	EXPECT_NE(out.find("web"), std::string::npos) << out;
	EXPECT_NE(out.find("spill:70"), std::string::npos) << out;

	out = RunTool("tune" + at + " --group web policy=fastest", &st);
	EXPECT_EQ(WEXITSTATUS(st), 2);
	EXPECT_NE(out.find("use rr, least, sticky, lifo or local"), std::string::npos) << out;
	out = RunTool("tune" + at + " --group web numa=spill:0", &st);
	EXPECT_EQ(WEXITSTATUS(st), 2) << out;
	out = RunTool("tune" + at + " --group nosuch policy=rr", &st);
	EXPECT_EQ(WEXITSTATUS(st), 1);
	EXPECT_NE(out.find("no such group"), std::string::npos) << out;
	out = RunTool("tune" + at + " --group nosuch --create policy=rr", &st);
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
	onering_detach(att);
}

// oneringd --check: a --port setting out of range is a usage error that
// names the limit; the resolved plan lists the groups (with their settings)
// and the ports the broker would create.
TEST(BrokerCheckTest, RefusesABadPortAndPrintsGroupsAndPorts)
{
	std::string dir = onering_test::MakeTempDir();
	const std::string check = std::string(ONERINGD_PATH) + " --check --name chk --socket-dir " + dir;
	int st;
	std::string out = onering_test::RunCommand(check + " --port net_null0:snaplen=9000", &st);
	EXPECT_EQ(WEXITSTATUS(st), 2) << out;
	EXPECT_NE(out.find("snaplen=9000"), std::string::npos) << out;
	EXPECT_NE(out.find("0..2048"), std::string::npos) << "names the limit: " << out;
	EXPECT_EQ(out.find("plan OK"), std::string::npos) << out;
	for (const char *bad : {"net_null0:snaplen=", "net_null0:rxq=0", "net_null0:rxq=65",
				"net_null0:group=no/slash", "net_null0:mode=fast", ":rxq=1"}) {
		out = onering_test::RunCommand(check + " --port '" + bad + "'", &st);
		EXPECT_EQ(WEXITSTATUS(st), 2) << bad << ": " << out;
	}

	out = onering_test::RunCommand(check + " --group web:policy=least,numa=strict"
					       " --group web:max_running=3,tune=1000+@27"
					       " --group web:join=1000 --group batch:numa=spill:70"
					       " --port net_null0:rxq=2,group=rx,snaplen=2048,mode=spread"
					       " --port net_null1:group=web",
				       &st);
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
	for (const char *line : {
		     "group 1       default: policy=rr numa=spill:90 wake=lifo max_running=cpus "
		     "backlog=65536\n",
		     "group 2       web: policy=least numa=strict wake=lifo max_running=3 backlog=65536\n"
		     "               join=root+broker+1000 post=any tune=root+broker+1000+@27\n",
		     "group 3       batch: policy=rr numa=spill:70 wake=lifo",
		     "group 4       rx: policy=rr numa=spill:90",
		     "port          net_null0: rxq=2 group=rx snaplen=2048 mode=spread\n",
		     "port          net_null1: rxq=1 group=web snaplen=128 mode=rss\n",
		     "plan OK"})
		EXPECT_NE(out.find(line), std::string::npos) << "missing \"" << line << "\" in:\n" << out;
	EXPECT_EQ(out.find("group 5"), std::string::npos) << "each group once: " << out;
	rmdir(dir.c_str());
}

TEST(ToolTest, TopoPlansASyntheticMachine)
{
	int st;
	std::string out = RunTool("topo --json --synthetic 'pack:2 numa:1 core:4 pu:1'", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	json_error_t jerr;
	json_t *root = json_loads(out.c_str(), 0, &jerr);
	ASSERT_NE(root, nullptr) << jerr.text;
	EXPECT_TRUE(json_is_true(json_object_get(root, "synthetic")));
	json_t *pollers = json_object_get(root, "pollers");
	ASSERT_EQ(json_array_size(pollers), 2u);
	for (size_t i = 0; i < 2; i++)
		EXPECT_EQ(json_integer_value(json_object_get(json_array_get(pollers, i), "node")),
			  (json_int_t)i);
	// No distance matrix in a synthetic machine: 10 local, 20 remote. No PCI.
	json_t *dist = json_object_get(root, "distances");
	ASSERT_EQ(json_array_size(dist), 2u);
	for (size_t i = 0; i < 2; i++)
		for (size_t k = 0; k < 2; k++)
			EXPECT_EQ(json_integer_value(json_array_get(json_array_get(dist, i), k)),
				  i == k ? 10 : 20);
	EXPECT_TRUE(json_is_array(json_object_get(root, "nics")));
	EXPECT_EQ(json_array_size(json_object_get(root, "nics")), 0u);
	json_decref(root);

	out = RunTool("topo --synthetic 'pack:2 numa:1 core:4 pu:1' --cores 42", &st);
	EXPECT_EQ(WEXITSTATUS(st), 1);
	EXPECT_NE(out.find("CPU 42"), std::string::npos) << out;
}

// docs/operations.md's counters section is what `onering stat --list-counters
// --markdown` prints from shm/counters.h: one row per enum constant.
TEST(ToolTest, CountersDocsMatchTheTable)
{
	int st;
	std::string gen = RunTool("stat --list-counters --markdown", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << gen;
	size_t rows = 0;
	for (size_t at = gen.find("\n| `"); at != std::string::npos; at = gen.find("\n| `", at + 1))
		rows++;
	EXPECT_EQ(rows, (size_t)(ONERING_BC_NR + ONERING_PC_NR + ONERING_QC_NR + ONERING_GC_NR +
				 ONERING_PORTC_NR + ONERING_RXQC_NR + ONERING_EXC_NR +
				 ONERING_LC_NR + ONERING_SC_NR));

	std::ifstream f(std::string(ONERING_DOCS_DIR) + "/operations.md");
	ASSERT_TRUE(f) << ONERING_DOCS_DIR "/operations.md";
	std::stringstream doc;
	doc << f.rdbuf();
	const std::string text = doc.str(), open = "<!-- Generated: onering stat --list-counters",
			  close = "<!-- End of generated counters. -->";
	size_t begin = text.find(open), end = text.find(close);
	ASSERT_NE(begin, std::string::npos) << "operations.md has no generated counters section";
	ASSERT_NE(end, std::string::npos);
	begin = text.find("-->\n", begin);
	ASSERT_LT(begin, end);
	EXPECT_EQ(text.substr(begin + 4, end - begin - 4), gen)
		<< "docs/operations.md is out of date: paste `onering stat --list-counters "
		   "--markdown` between its markers";
}

// No command, or a word that is not one: the usage on stderr, naming the
// word, exit 2. --help: the usage, exit 0.
TEST(ToolTest, UsageErrorsExitTwoAndNameTheWord)
{
	int st;
	std::string out = RunCommand("(" + std::string(ONERING_TOOL_PATH) + " 2>/dev/null)", &st);
	EXPECT_EQ(WEXITSTATUS(st), 2);
	EXPECT_EQ(out, "") << "the usage goes to stderr";
	out = RunTool("frobnicate", &st);
	EXPECT_EQ(WEXITSTATUS(st), 2);
	EXPECT_NE(out.find("unknown command \"frobnicate\""), std::string::npos) << out;
	EXPECT_NE(out.find("usage: onering COMMAND"), std::string::npos) << out;
	for (const char *help : {"-h", "--help"}) {
		out = RunTool(help, &st);
		EXPECT_EQ(WEXITSTATUS(st), 0) << help;
		for (const char *cmd : {"bench", "demo", "stat", "tail", "topo", "tune", "version"})
			EXPECT_NE(out.find(std::string("  ") + cmd + " "), std::string::npos) << cmd;
	}
	out = RunTool("stat --no-such-option", &st);
	EXPECT_EQ(WEXITSTATUS(st), 2) << out;
}

// bench runs onering-bench from beside the tool or from PATH, with the
// arguments it was given, and says so when there is none.
TEST(ToolTest, BenchRunsOneringBenchOrSaysItIsMissing)
{
	char dir[] = "/tmp/onering-bench-test-XXXXXX";
	ASSERT_NE(mkdtemp(dir), nullptr);
	const std::string tool = std::string(dir) + "/onering", bench = std::string(dir) + "/onering-bench";
	int st;
	// A copy of the tool alone in a folder, with an empty PATH: nothing to run.
	// (It finds libonering where this test found it.)
	Dl_info lib;
	ASSERT_NE(dladdr((void *)&onering_strerror, &lib), 0);
	std::string libdir = lib.dli_fname;
	libdir = libdir.substr(0, libdir.rfind('/') + 1);
	RunCommand("cp " + std::string(ONERING_TOOL_PATH) + " " + tool, &st);
	ASSERT_EQ(WEXITSTATUS(st), 0);
	const std::string env = "PATH=/nonexistent LD_LIBRARY_PATH=" + libdir + " ";
	std::string out = RunCommand(env + tool + " bench --peers all", &st);
	EXPECT_EQ(WEXITSTATUS(st), 1) << out;
	EXPECT_NE(out.find("onering-bench is not installed"), std::string::npos) << out;
	// A stand-in beside it gets the arguments and its exit status is bench's.
	{
		std::ofstream sh(bench);
		sh << "#!/bin/sh\necho \"ran $0 with $*\"\nexit 7\n";
	}
	ASSERT_EQ(chmod(bench.c_str(), 0755), 0);
	out = RunCommand(env + tool + " bench --peers all --json", &st);
	EXPECT_EQ(WEXITSTATUS(st), 7) << out;
	EXPECT_NE(out.find("with --peers all --json"), std::string::npos) << out;
	unlink(bench.c_str());
	unlink(tool.c_str());
	rmdir(dir);
}

} // namespace
