// SPDX-License-Identifier: MIT
// `onering notify` and `onering listen` (tools/onering/notify.c, listen.c)
// against a real broker, and onering_group_find(), which they use so that
// neither leaves a group behind.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "harness.h"

#ifndef ONERING_TOOL_PATH
#error "ONERING_TOOL_PATH must name the onering binary under test"
#endif

using onering_test::Broker;

namespace {

const uid_t kOther = 65534; // nobody: the uid these tests act as when root

// The onering command, started in the background (as uid kOther when
// other is true) with its stdout and stderr on a pipe. Stop() ends it by
// its pid; the destructor makes sure nothing is left running.
class Tool {
public:
	bool Start(const std::vector<std::string> &args, bool other = false)
	{
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			return false;
		pid_ = fork();
		if (pid_ < 0)
			return false;
		if (pid_ == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			dup2(p[1], 1);
			dup2(p[1], 2);
			if (other && (setgroups(0, nullptr) < 0 || setresgid(kOther, kOther, kOther) < 0 ||
				      setresuid(kOther, kOther, kOther) < 0))
				_exit(126);
			std::vector<std::string> all = {ONERING_TOOL_PATH};
			all.insert(all.end(), args.begin(), args.end());
			onering_test::ExecArgs(all);
		}
		close(p[1]);
		fd_ = p[0];
		return true;
	}

	// Read until the output holds needle or the tool closed it (bounded).
	bool WaitFor(const std::string &needle, int ms = 10000)
	{
		for (int waited = 0; out_.find(needle) == std::string::npos; waited += 10) {
			if (waited >= ms || fd_ < 0)
				return false;
			struct pollfd pfd = {fd_, POLLIN, 0};
			if (poll(&pfd, 1, 10) == 1 && !ReadSome())
				return out_.find(needle) != std::string::npos;
		}
		return true;
	}

	// Wait (bounded) for the tool to end by itself: its exit status, or -1
	// (killed at the deadline). The rest of its output is read first.
	int Wait(int seconds = 20)
	{
		int status;
		while (fd_ >= 0 && WaitFor("\x01never\x01", seconds * 1000))
			;
		bool ended = onering_test::WaitChild(pid_, seconds, &status);
		pid_ = -1;
		return ended && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	}

	// SIGTERM by pid, then Wait().
	int Stop()
	{
		if (pid_ > 0)
			kill(pid_, SIGTERM);
		return Wait();
	}

	const std::string &Output() const { return out_; }

	~Tool()
	{
		if (pid_ > 0) {
			kill(pid_, SIGKILL);
			waitpid(pid_, nullptr, 0);
		}
		if (fd_ >= 0)
			close(fd_);
	}

private:
	bool ReadSome()
	{
		char buf[4096];
		ssize_t n = read(fd_, buf, sizeof(buf));
		if (n <= 0) {
			close(fd_);
			fd_ = -1;
			return false;
		}
		out_.append(buf, (size_t)n);
		return true;
	}

	pid_t pid_ = -1;
	int fd_ = -1;
	std::string out_;
};

class NotifyListenTest : public ::testing::Test {
protected:
	std::vector<std::string> Args(const char *cmd, std::vector<std::string> more)
	{
		std::vector<std::string> a = {cmd, "--name", broker_.Name(), "--socket-dir", broker_.Dir()};
		a.insert(a.end(), more.begin(), more.end());
		return a;
	}

	// Run a command to its end: its exit status (-1: killed), *out its output.
	int Run(const char *cmd, std::vector<std::string> more, std::string *out, bool other = false)
	{
		Tool t;
		if (!t.Start(Args(cmd, more), other))
			return -1;
		int st = t.Wait();
		*out = t.Output();
		return st;
	}

	bool SkipUnlessRoot()
	{
		return geteuid() != 0;
	}

	Broker broker_;
};

TEST_F(NotifyListenTest, NotifyAndListenRoundTripAPayload)
{
	ASSERT_TRUE(broker_.Start({"--group", "chat:policy=rr"}));
	Tool listen;
	ASSERT_TRUE(listen.Start(Args("listen", {"--group", "chat", "--count", "2"})));
	ASSERT_TRUE(listen.WaitFor("listening")) << listen.Output();
	std::string out;
	EXPECT_EQ(Run("notify", {"--group", "chat", "--payload", "hello, group", "--flow", "5",
				 "--cookie", "9"}, &out), 0) << out;
	EXPECT_EQ(Run("notify", {"--group", "chat", "--hex", "00ff7f"}, &out), 0) << out;
	EXPECT_EQ(listen.Wait(), 0) << "--count 2: it ends by itself\n" << listen.Output();
	const std::string &got = listen.Output();
	EXPECT_NE(got.find("flow 5  cookie 9  data \"hello, group\""), std::string::npos) << got;
	EXPECT_NE(got.find("data 00ff7f0000000000 0000000000000000 0000000000000000"),
		  std::string::npos) << "a payload that is not text is printed as hex\n" << got;
}

TEST_F(NotifyListenTest, ListenStopsCleanlyOnSigterm)
{
	ASSERT_TRUE(broker_.Start({"--group", "chat"}));
	Tool listen;
	ASSERT_TRUE(listen.Start(Args("listen", {"--group", "chat"})));
	ASSERT_TRUE(listen.WaitFor("listening")) << listen.Output();
	EXPECT_EQ(listen.Stop(), 0) << listen.Output();
}

TEST_F(NotifyListenTest, AMissingGroupIsAnErrorAndIsNotCreated)
{
	ASSERT_TRUE(broker_.Start());
	std::string out;
	EXPECT_EQ(Run("notify", {"--group", "ghost", "--payload", "boo"}, &out), 1) << out;
	EXPECT_NE(out.find("\"ghost\""), std::string::npos) << out;
	EXPECT_NE(out.find("no such group"), std::string::npos) << out;
	EXPECT_EQ(Run("listen", {"--group", "ghost", "--seconds", "1"}, &out), 1) << out;
	EXPECT_NE(out.find("no such group"), std::string::npos) << out;
	onering *att;
	uint32_t id = 0;
	ASSERT_EQ(broker_.Attach(&att), 0);
	EXPECT_EQ(onering_group_find(att, "ghost", &id), -ENOENT) << "neither command made it";
	onering_detach(att);
}

TEST_F(NotifyListenTest, APayloadLongerThan24BytesIsAUsageError)
{
	std::string out;
	// Checked before anything is attached: no broker needed.
	EXPECT_EQ(Run("notify", {"--group", "g", "--payload", std::string(25, 'x')}, &out), 2)
		<< out;
	EXPECT_NE(out.find("at most 24 bytes"), std::string::npos) << out;
	EXPECT_EQ(Run("notify", {"--group", "g", "--hex", std::string(50, 'a')}, &out), 2) << out;
	EXPECT_NE(out.find("at most 24 bytes"), std::string::npos) << out;
	EXPECT_EQ(Run("notify", {"--group", "g", "--hex", "0g"}, &out), 2) << out;
	EXPECT_EQ(Run("notify", {"--payload", "x"}, &out), 2) << "--group is required\n" << out;
}

// Refusal is exact: the fence (a timer armed behind the posts) comes after
// every POST_REFUSED record, so all 300 refusals are counted - more posts
// than the submission ring holds, so notify also waits for room.
TEST_F(NotifyListenTest, AUidThatMayNotPostIsRefusedAndToldWhy)
{
	if (SkipUnlessRoot())
		GTEST_SKIP() << "acts as another user (uid 65534): needs root";
	ASSERT_TRUE(broker_.Start({"--allow-uid", "65534", "--group", "locked:post=root"}));
	Tool listen; // root may join: it must be given nothing
	ASSERT_TRUE(listen.Start(Args("listen", {"--group", "locked"})));
	ASSERT_TRUE(listen.WaitFor("listening")) << listen.Output();
	std::string out;
	EXPECT_EQ(Run("notify", {"--group", "locked", "--payload", "intruder", "--count", "300"},
		      &out, true), 1) << out;
	EXPECT_NE(out.find("\"locked\""), std::string::npos) << out;
	EXPECT_NE(out.find("uid 65534 may not post"), std::string::npos) << out;
	EXPECT_NE(out.find("300 of 300 posts refused"), std::string::npos) << out;
	EXPECT_NE(out.find("post="), std::string::npos) << "the fix is named\n" << out;
	// Root's own post is the first (and only) record the member gets.
	EXPECT_EQ(Run("notify", {"--group", "locked", "--payload", "root"}, &out), 0) << out;
	EXPECT_TRUE(listen.WaitFor("data \"root\"")) << listen.Output();
	EXPECT_EQ(listen.Stop(), 0);
	EXPECT_EQ(listen.Output().find("intruder"), std::string::npos) << listen.Output();
}

TEST_F(NotifyListenTest, AUidThatMayNotJoinCannotListen)
{
	if (SkipUnlessRoot())
		GTEST_SKIP() << "acts as another user (uid 65534): needs root";
	ASSERT_TRUE(broker_.Start({"--allow-uid", "65534", "--group", "locked:join=root"}));
	std::string out;
	EXPECT_EQ(Run("listen", {"--group", "locked", "--seconds", "5"}, &out, true), 1) << out;
	EXPECT_NE(out.find("\"locked\""), std::string::npos) << out;
	EXPECT_NE(out.find("may be joined by"), std::string::npos) << "the broker's reason\n" << out;
	EXPECT_EQ(out.find("listening"), std::string::npos) << out;
}

// A group that cannot take the posts holds them (back-pressure): notify
// waits, and when the broker goes before answering it fails - it never says
// "taken" for posts whose fate it does not know.
TEST_F(NotifyListenTest, NotifyWaitsForAFullBacklogAndFailsIfTheBrokerGoes)
{
	ASSERT_TRUE(broker_.Start({"--group", "slow:backlog=1"}));
	Tool notify;
	ASSERT_TRUE(notify.Start(Args("notify", {"--group", "slow", "--count", "10"})));
	EXPECT_FALSE(notify.WaitFor("\n", 500)) << "still waiting\n" << notify.Output();
	broker_.Stop();
	EXPECT_EQ(notify.Wait(), 1) << notify.Output();
	EXPECT_NE(notify.Output().find("onering notify: "), std::string::npos) << notify.Output();
}

// ---- onering_group_find() ---------------------------------------------------

TEST(GroupFindTest, LooksUpWithoutCreatingAndLearnsTheId)
{
	Broker broker;
	ASSERT_TRUE(broker.Start({"--group", "known"}));
	onering *att;
	onering_queue *member, *poster;
	uint32_t found = 0, id = 0;
	ASSERT_EQ(broker.Attach(&att), 0);
	EXPECT_EQ(onering_group_find(att, "unknown", &found), -ENOENT);
	EXPECT_EQ(onering_group_find(att, "bad name", &found), -EINVAL);
	EXPECT_EQ(onering_group_find(nullptr, "known", &found), -EINVAL);
	EXPECT_EQ(onering_group_find(att, "unknown", &found), -ENOENT) << "still not made";
	ASSERT_EQ(onering_group_find(att, "known", &found), 0);
	ASSERT_EQ(onering_group_id(att, "known", &id), 0);
	EXPECT_EQ(found, id);
	// The id is learned: a private queue posts with it, and a member gets it.
	onering_queue_options o = {};
	o.group = "known";
	ASSERT_EQ(onering_queue_open(att, &o, &member), 0);
	ASSERT_EQ(onering_queue_open(att, nullptr, &poster), 0);
	ASSERT_EQ(onering_post(poster, found, 1, "hi", 2, 42), 0);
	onering_event ev[4];
	int n = 0;
	for (int i = 0; i < 100 && n == 0; i++)
		n = onering_wait(member, ev, 1, 4, 50ll * 1000 * 1000);
	ASSERT_EQ(n, 1);
	EXPECT_EQ(ev[0].kind, ONERING_EV_USER);
	EXPECT_EQ(ev[0].cookie, 42u);
	onering_detach(att);
}

} // namespace
