// SPDX-License-Identifier: MIT
// oneringd --config FILE (issue 14): every key round-trips through --check
// with its source, the command line wins over the file, a malformed file is
// refused with FILE:LINE and the fix, and SIGHUP reloads what can change
// live (a group's policy, seen through `onering tune`) and reports the rest.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "harness.h"

#ifndef ONERING_DOCS_DIR
#error "ONERING_DOCS_DIR must name the docs/ folder"
#endif
#ifndef ONERING_TOOL_PATH
#error "ONERING_TOOL_PATH must name the onering binary under test"
#endif

using onering_test::Broker;
using onering_test::ReadFile;
using onering_test::RunCommand;

namespace {

class ConfigTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		dir_ = onering_test::MakeTempDir();
		ASSERT_FALSE(dir_.empty());
		path_ = dir_ + "/oneringd.conf";
	}
	void TearDown() override
	{
		unlink(path_.c_str());
		rmdir(dir_.c_str());
	}
	void Write(const std::string &text) const
	{
		std::ofstream f(path_);
		f << text;
	}
	// oneringd --check --config FILE ARGS (fd 3 open for ready-fd).
	std::string Check(const std::string &args, int *st) const
	{
		return RunCommand(std::string(ONERINGD_PATH) + " --check --config " + path_ + " " + args +
					  " 3</dev/null",
				  st);
	}
	std::string dir_, path_;
};

// Every key of the file (each on its own line) comes back from --check with
// its value and FILE:LINE; the keys not in the file say "default".
TEST_F(ConfigTest, EveryKeyRoundTripsThroughCheck)
{
	const std::vector<std::pair<std::string, std::string>> keys = {
		{"name", "cfgall"},
		{"cores", "1"},
		{"synthetic", "pack:1 numa:1 core:2 pu:1"},
		{"control-core", "0"},
		{"socket-dir", dir_},
		{"allow-uid", "0"},
		{"allow-gid", "0"},
		{"foreground", "true"},
		{"max-subs", "4096"},
		{"max-clients", "64"},
		{"max-ring-slots", "65536"},
		{"max-queues", "8"},
		{"idle", "backoff"},
		{"idle-spin-us", "50"},
		{"idle-sleep-ms", "2"},
		{"coalesce-us", "50"},
		{"no-hugepages", "true"},
		{"log-level", "6"},
		{"ready-fd", "3"},
		{"port", "net_null0:rxq=1,group=rx"},
		{"allow-inject", "true"},
		{"max-client-subs", "1000"},
		{"max-client-fds", "500"},
		{"max-client-groups", "4"},
		{"max-client-slots", "65536"},
		{"hello-timeout-ms", "2000"},
		{"max-pending-per-uid", "16"},
		{"max-pending", "64"},
		{"group", "web:policy=least"},
	};
	std::string text = "; every key\n[oneringd]\n";
	for (auto &kv : keys)
		text += kv.first + " = " + kv.second + "\n";
	unsigned group_line = 3 + (unsigned)keys.size() + 1;
	text += "\n[group batch]\npolicy = lifo\nnuma = spill:70\nwake = fifo\nmax_running = 3\n"
		"backlog = 100\njoin = any\n";
	Write(text);
	int st;
	std::string out = Check("", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	unsigned line = 3;
	for (auto &kv : keys) {
		std::string want = "option        " + kv.first + " = " + kv.second;
		if (kv.first == "group")
			want += " batch batch:policy=lifo"; // the section's keys add to the list
		else
			want += "  (" + path_ + ":" + std::to_string(line) + ")\n";
		EXPECT_NE(out.find(want), std::string::npos) << "missing \"" << want << "\" in:\n" << out;
		line++;
	}
	for (const char *want : {"instance      cfgall\n", "max subs      4096\n",
				 "max clients   64\n",
				 "hugepages     off\n",
				 "group 2       web: policy=least numa=spill:90",
				 "group 3       batch: policy=lifo numa=spill:70 wake=fifo max_running=3 "
				 "backlog=100\n",
				 "port          net_null0: rxq=1 group=rx",
				 "coalesce      50 us after a loop that found more than one event\n",
				 "plan OK\n"})
		EXPECT_NE(out.find(want), std::string::npos) << "missing \"" << want << "\" in:\n" << out;
	const std::string idle = "idle          backoff (" + path_ + ":15): poll 50 us, yield, then "
				 "block (at most 2 ms while a record waits for space or a word is "
				 "watched)\n";
	EXPECT_NE(out.find(idle), std::string::npos) << idle << " in:\n" << out;
	const std::string batch = "source        group batch  (" + path_ + ":" +
				  std::to_string(group_line + 6) + ")\n";
	EXPECT_NE(out.find(batch), std::string::npos) << batch << " in:\n" << out;

	// With no file at all every option says where it came from: the default.
	out = RunCommand(std::string(ONERINGD_PATH) + " --check --socket-dir " + dir_, &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("config        none\n"), std::string::npos) << out;
	EXPECT_NE(out.find("option        max-subs = 65536  (default)\n"), std::string::npos) << out;
	EXPECT_NE(out.find("option        foreground = false  (default)\n"), std::string::npos)
		<< out;
}

// The command line wins over the file, value by value; a --cores given on
// the command line replaces the file's poller list.
TEST_F(ConfigTest, CommandLineOverridesTheFile)
{
	Write("[oneringd]\nmax-clients = 64\nmax-subs = 4096\ncores = 0\nsocket-dir = " + dir_ +
	      "\n[group web]\npolicy = least\nwake = fifo\n");
	int st;
	std::string out = Check("--max-clients 32 --cores 1 --group web:policy=lifo", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	for (const std::string &want :
	     {std::string("option        max-clients = 32  (command line)\n"), std::string("max clients   32\n"),
	      "option        max-subs = 4096  (" + path_ + ":3)\n",
	      std::string("option        cores = 1  (command line)\n"),
	      std::string("group 2       web: policy=lifo numa=spill:90 wake=fifo"),
	      std::string("source        group web  (command line)\n")})
		EXPECT_NE(out.find(want), std::string::npos) << "missing \"" << want << "\" in:\n" << out;
}

// Each mistake names FILE:LINE, what is wrong and what to write instead;
// --check exits 1 and prints no plan (nothing is half-applied).
TEST_F(ConfigTest, MalformedFileGivesFileLineAndTheFix)
{
	struct Case {
		const char *text;
		unsigned line;
		const char *says;
	} cases[] = {
		{"[oneringd]\nmax-subs = 1\n", 2, "expected 2..16777216"},
		{"[oneringd]\n\nmax-clients 64\n", 3, "key = value"},
		{"[oneringd]\nmax-client = 64\n", 2, "unknown key \"max-client\""},
		{"max-subs = 64\n", 1, "put the options under [oneringd]"},
		{"[oneringd]\nmax-subs = 64\n[daemon]\n", 3, "unknown section"},
		{"[group web]\npolicy = fastest\n", 2, "use rr, least"},
		{"[group web]\npolicy = rr,numa=strict\n", 2, "one setting per key"},
		{"[oneringd]\ncheck = true\n", 2, "command line only"},
		{"[oneringd]\nforeground = maybe\n", 2, "expected true or false"},
		{"[oneringd]\nname =\n", 2, "has no value"},
		{"[oneringd\nname = x\n", 1, "check the brackets"},
	};
	for (auto &c : cases) {
		Write(c.text);
		int st;
		std::string out = Check("", &st);
		EXPECT_EQ(WEXITSTATUS(st), 1) << c.text << out;
		std::string at = path_ + ":" + std::to_string(c.line) + ": ";
		EXPECT_NE(out.find(at), std::string::npos) << c.text << "\nwant " << at << " in " << out;
		EXPECT_NE(out.find(c.says), std::string::npos) << c.text << "\nwant " << c.says << " in "
							       << out;
		EXPECT_EQ(out.find("plan OK"), std::string::npos) << out;
	}
	int st;
	std::string out = RunCommand(std::string(ONERINGD_PATH) + " --check --config " + dir_ +
					     "/nosuch.conf",
				     &st);
	EXPECT_EQ(WEXITSTATUS(st), 1) << out;
	EXPECT_NE(out.find("nosuch.conf: No such file"), std::string::npos) << out;
}

// --idle and its knobs: --check says the strategy in effect and where it
// came from; a knob the strategy does not use is refused, on the command
// line (usage error, 2) and in the file (1), naming both and the fix.
TEST_F(ConfigTest, IdleStrategyAndContradictoryKnobs)
{
	Write("[oneringd]\nsocket-dir = " + dir_ + "\nidle = overprovisioned\n");
	int st;
	std::string out = Check("", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("idle          overprovisioned (" + path_ + ":3): block at once (at most 1 ms "
			   "while a record waits for space or a word is watched)\n"),
		  std::string::npos) << out;
	out = Check("--idle busy", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("idle          busy (command line): poll on, never block\n"), std::string::npos)
		<< out;
	EXPECT_NE(out.find("option        idle = busy  (command line)\n"), std::string::npos) << out;
	Write("[oneringd]\nsocket-dir = " + dir_ + "\n");
	out = Check("--idle-sleep-ms -1", &st); // the spelling before --idle
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("idle          busy (--idle-sleep-ms -1): poll on, never block\n"),
		  std::string::npos) << out;
	out = Check("", &st);
	EXPECT_NE(out.find("idle          backoff (default): poll 100 us, yield, then block (at most 1 ms "
			   "while a record waits for space or a word is watched)\n"),
		  std::string::npos) << out;

	struct Case {
		const char *file, *args;
		int status;
		const char *says;
	} cases[] = {
		{"", "--idle busy --idle-sleep-ms 3", 2, "busy never blocks: drop --idle-sleep-ms"},
		{"", "--idle busy --idle-spin-us 10", 2, "drop --idle-spin-us"},
		{"", "--idle backoff --idle-sleep-ms -1", 2, "that is --idle busy"},
		{"idle = overprovisioned\nidle-spin-us = 20\n", "", 1,
		 "overprovisioned never spins: drop --idle-spin-us"},
		{"idle = overprovisioned\n", "--idle-spin-us 20", 2, "never spins"},
		{"", "--coalesce-us 1000001", 2, "bad value \"1000001\" for --coalesce-us: expected "
		 "0..1000000"},
		{"coalesce-us = soon\n", "", 1, "bad value \"soon\" for --coalesce-us"},
		{"idle = fastest\n", "", 1, "expected busy, backoff or overprovisioned"},
		{"", "--idle fastest", 2, "expected busy, backoff or overprovisioned"},
	};
	for (auto &c : cases) {
		Write("[oneringd]\nsocket-dir = " + dir_ + "\n" + c.file);
		out = Check(c.args, &st);
		EXPECT_EQ(WEXITSTATUS(st), c.status) << c.file << c.args << "\n" << out;
		EXPECT_NE(out.find(c.says), std::string::npos) << c.file << c.args << "\n" << out;
		EXPECT_EQ(out.find("plan OK"), std::string::npos) << out;
	}
	// Without spin, overprovisioned takes --idle-spin-us 0 (it spins 0 us).
	out = Check("--idle overprovisioned --idle-spin-us 0", &st);
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
}

// Polls the log (bounded) for text.
bool LogSays(const Broker &b, const std::string &text)
{
	for (int i = 0; i < 500; i++) {
		if (ReadFile(b.Dir() + "/oneringd.log").find(text) != std::string::npos)
			return true;
		usleep(10000);
	}
	return false;
}

// SIGHUP: the group's policy changes in the running broker (tune shows it),
// a per-client limit changes, and max-subs (fixed at start) is reported as
// needing a restart. A broken file afterwards changes nothing; the broker
// keeps serving throughout.
TEST_F(ConfigTest, SighupReloadsLiveAndReportsTheRest)
{
	Write("[oneringd]\nmax-subs = 4096\n\n[group web]\npolicy = least\n");
	Broker broker;
	ASSERT_TRUE(broker.Start({"--config", path_, "--log-level", "5"})); // notices: the test env says 4
	const std::string tune = std::string(ONERING_TOOL_PATH) + " tune --name " + broker.Name() +
				 " --socket-dir " + broker.Dir() + " --group web";
	int st;
	std::string out = RunCommand(tune, &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("policy=least"), std::string::npos) << out;

	Write("[oneringd]\nmax-subs = 2048\nmax-client-fds = 99\n\n[group web]\npolicy = lifo\n");
	ASSERT_EQ(kill(broker.Pid(), SIGHUP), 0);
	ASSERT_TRUE(LogSays(broker, "reloaded " + path_));
	out = RunCommand(tune, &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("policy=lifo"), std::string::npos) << out;
	std::string log = ReadFile(broker.Dir() + "/oneringd.log");
	EXPECT_NE(log.find("max-subs changed (4096 -> 2048, " + path_ + ":2): needs a restart"),
		  std::string::npos) << log;
	EXPECT_NE(log.find("max-client-fds 16384 -> 99"), std::string::npos) << log;
	EXPECT_NE(log.find("2 changes live, 1 needs a restart"), std::string::npos) << log;

	Write("[oneringd]\nmax-subs = 2048\n\n[group web]\npolicy = least\nbacklog = 0\n");
	ASSERT_EQ(kill(broker.Pid(), SIGHUP), 0);
	ASSERT_TRUE(LogSays(broker, path_ + ":6: --group web:backlog=0"));
	EXPECT_TRUE(LogSays(broker, "nothing changed, the running configuration stays"));
	out = RunCommand(tune, &st);
	EXPECT_NE(out.find("policy=lifo"), std::string::npos) << "not half-applied: " << out;
}

// The example file names every key (commented, with its default) and the
// man page describes each; the example with its [oneringd] keys and one
// group uncommented is a valid configuration.
TEST_F(ConfigTest, ExampleAndManPageNameEveryKey)
{
	int st;
	std::string out = RunCommand(std::string(ONERINGD_PATH) + " --check --socket-dir " + dir_, &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	std::string example = ReadFile(std::string(ONERING_DOCS_DIR) + "/oneringd.conf");
	std::string man = ReadFile(std::string(ONERING_DOCS_DIR) + "/man/oneringd.conf.5.scd");
	ASSERT_FALSE(example.empty());
	ASSERT_FALSE(man.empty());
	std::istringstream lines(out);
	std::string line;
	unsigned keys = 0;
	while (std::getline(lines, line)) {
		if (line.rfind("option        ", 0) != 0)
			continue;
		std::string key = line.substr(14, line.find(" = ") - 14);
		keys++;
		EXPECT_NE(example.find("\n;" + key + " = "), std::string::npos) << key;
		EXPECT_NE(man.find("*" + key + "* = "), std::string::npos) << key;
	}
	EXPECT_GE(keys, 28u);

	// Uncommented (but the keys that need this machine's users, CPUs or fds).
	std::istringstream in(example);
	std::string text;
	while (std::getline(in, line)) {
		if (line.size() > 1 && line[0] == ';' && (line[1] == '[' || isalpha((unsigned char)line[1]))) {
			std::string k = line.substr(1, line.find(' ') - 1);
			if (k != "poller" && k != "synthetic" && k != "ready-fd" && k != "allow-uid" &&
			    k != "allow-gid" && k != "tune" && k != "socket-dir" && k != "cores" &&
			    k != "control-core")
				line = line.substr(1);
		}
		text += line + "\n";
	}
	Write(text);
	out = Check("--socket-dir " + dir_, &st);
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
	EXPECT_NE(out.find("option        max-client-fds = 16384  (" + path_), std::string::npos) << out;
	EXPECT_NE(out.find("source        group web  (" + path_), std::string::npos) << out;
}

// Without --config a SIGHUP says so and the broker stays up.
TEST(ConfigSighupTest, WithoutConfigNothingToReload)
{
	Broker broker;
	ASSERT_TRUE(broker.Start({"--log-level", "5"}));
	ASSERT_EQ(kill(broker.Pid(), SIGHUP), 0);
	EXPECT_TRUE(LogSays(broker, "nothing to reload"));
	struct onering *att;
	ASSERT_EQ(broker.Attach(&att), 0) << "still serving";
	onering_detach(att);
}

} // namespace
