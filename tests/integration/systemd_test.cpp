// SPDX-License-Identifier: MIT
// oneringd under systemd: the notification protocol (READY=1, STATUS=,
// WATCHDOG=1, STOPPING=1 to $NOTIFY_SOCKET) seen by a socket the test binds,
// and the installed unit checked by systemd-analyze verify.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <string>

#include "harness.h"

#ifndef ONERING_UNIT_PATH
#error "ONERING_UNIT_PATH must name the generated oneringd.service"
#endif

using onering_test::Broker;

namespace {

class NotifySocket {
public:
	explicit NotifySocket(const std::string &path) : path_(path)
	{
		fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = {};
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
		if (fd_ >= 0 && bind(fd_, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(fd_);
			fd_ = -1;
		}
	}
	~NotifySocket()
	{
		if (fd_ >= 0)
			close(fd_);
		unlink(path_.c_str());
	}
	bool ok() const { return fd_ >= 0; }

	// Messages until one contains want, or timeout_ms passes; all of them.
	std::string WaitFor(const std::string &want, int timeout_ms)
	{
		std::string all;
		auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
		while (std::chrono::steady_clock::now() < end) {
			struct pollfd p = {fd_, POLLIN, 0};
			if (poll(&p, 1, 50) != 1)
				continue;
			char buf[1024];
			ssize_t n = recv(fd_, buf, sizeof(buf) - 1, 0);
			if (n <= 0)
				continue;
			buf[n] = '\0';
			all += std::string(buf) + "\n--\n";
			if (std::string(buf).find(want) != std::string::npos)
				break;
		}
		return all;
	}

private:
	std::string path_;
	int fd_ = -1;
};

TEST(SystemdTest, NotifiesReadyStatusWatchdogAndStopping)
{
	std::string dir = onering_test::MakeTempDir();
	ASSERT_FALSE(dir.empty());
	NotifySocket sock(dir + "/notify");
	ASSERT_TRUE(sock.ok()) << strerror(errno);
	Broker broker;
	broker.SetEnv("NOTIFY_SOCKET", dir + "/notify");
	broker.SetEnv("WATCHDOG_USEC", "200000"); // WATCHDOG=1 every 100 ms
	ASSERT_TRUE(broker.Start());

	std::string got = sock.WaitFor("READY=1", 5000);
	EXPECT_NE(got.find("READY=1"), std::string::npos) << got;
	EXPECT_NE(got.find("MAINPID=" + std::to_string(broker.Pid())), std::string::npos) << got;
	EXPECT_NE(got.find("STATUS=" + broker.Name() + ": 0 clients"), std::string::npos) << got;

	// A client attaches: a later STATUS says so, with the watchdog's beat.
	struct onering *att;
	ASSERT_EQ(broker.Attach(&att), 0);
	got = sock.WaitFor(": 1 client,", 5000);
	EXPECT_NE(got.find(": 1 client,"), std::string::npos) << got;
	EXPECT_NE(got.find("WATCHDOG=1"), std::string::npos) << got;
	onering_detach(att);

	// `systemctl reload` (SIGHUP): RELOADING=1 with the monotonic time, then
	// READY=1 once the reload is over (started without --config: nothing
	// changes, and the broker keeps serving).
	ASSERT_EQ(kill(broker.Pid(), SIGHUP), 0);
	got = sock.WaitFor("RELOADING=1", 5000);
	EXPECT_NE(got.find("RELOADING=1\nMONOTONIC_USEC="), std::string::npos) << got;
	got = sock.WaitFor("READY=1", 5000);
	EXPECT_NE(got.find("READY=1"), std::string::npos) << "no READY=1 after the reload: " << got;
	ASSERT_EQ(broker.Attach(&att), 0) << "serving after the reload";
	onering_detach(att);

	int status = broker.Stop();
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
	got = sock.WaitFor("STOPPING=1", 5000);
	EXPECT_NE(got.find("STOPPING=1"), std::string::npos) << got;
	rmdir(dir.c_str());
}

// Under systemd (JOURNAL_STREAM set) every log line starts with its
// priority; --log-level takes names.
TEST(SystemdTest, JournalLinesCarryTheirPriorityAndLevelsHaveNames)
{
	Broker broker;
	broker.SetEnv("JOURNAL_STREAM", "8:12345");
	ASSERT_TRUE(broker.Start({"--log-level", "info"}));
	ASSERT_EQ(broker.Stop(), 0);
	FILE *f = fopen((broker.Dir() + "/oneringd.log").c_str(), "r");
	ASSERT_NE(f, nullptr);
	char line[1024];
	int lines = 0, info = 0;
	while (fgets(line, sizeof(line), f)) {
		lines++;
		EXPECT_TRUE(line[0] == '<' && line[1] >= '3' && line[1] <= '7' && line[2] == '>')
			<< line;
		info += line[1] == '6';
	}
	fclose(f);
	EXPECT_GT(lines, 0);
	EXPECT_GT(info, 0) << "--log-level info logged no info line";

	int st;
	std::string out = onering_test::RunCommand(std::string(ONERINGD_PATH) +
						   " --check --log-level loud", &st);
	EXPECT_NE(WEXITSTATUS(st), 0);
	EXPECT_EQ(WEXITSTATUS(st), 2) << "a usage error: " << out;
	EXPECT_NE(out.find("bad value \"loud\" for --log-level"), std::string::npos) << out;
}

// The unit meson installs passes systemd-analyze verify (pointed at this
// build's oneringd; man pages are not checked: they are not installed here).
TEST(SystemdTest, TheUnitVerifies)
{
	int st;
	std::string which = onering_test::RunCommand("command -v systemd-analyze", &st);
	if (WEXITSTATUS(st) != 0)
		GTEST_SKIP() << "no systemd-analyze on this machine";
	std::string dir = onering_test::MakeTempDir();
	std::string unit = dir + "/oneringd.service";
	std::string out = onering_test::RunCommand(
		"sed 's|^ExecStart=[^ ]*/oneringd|ExecStart=" ONERINGD_PATH "|' " ONERING_UNIT_PATH
		" > " + unit + " && systemd-analyze verify --man=no " + unit, &st);
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
	unlink(unit.c_str());
	rmdir(dir.c_str());
}

} // namespace
