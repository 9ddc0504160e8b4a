// SPDX-License-Identifier: MIT
// Abuse by local users (issue 10, docs/security.md): one test per way an
// allowed client, or any local user, could take the broker away from the
// others or hijack it. Each of these failed on the broker before the fix.
// The tests that act as another user (uid 65534) need root and skip
// without it.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <string>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

#include "client/client.h"
#include "harness.h"

using onering_test::Broker;

namespace {

constexpr uid_t kOther = 65534; // nobody: another local user

double NowMs()
{
	return std::chrono::duration<double, std::milli>(
		       std::chrono::steady_clock::now().time_since_epoch())
		.count();
}

// Become another user for good (in a forked child).
bool BecomeOther()
{
	return setgroups(0, nullptr) == 0 && setresgid(kOther, kOther, kOther) == 0 &&
	       setresuid(kOther, kOther, kOther) == 0;
}

int RawConnect(const std::string &path, bool nonblock = false)
{
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	sockaddr_un sa = {};
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
	if (s >= 0 && connect(s, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) < 0 &&
	    errno != EINPROGRESS) {
		close(s);
		return -1;
	}
	return s;
}

// A broker counter, or ~0 when the broker cannot be asked (then a failure
// too: no check may pass on a counter it could not read).
uint64_t BrokerCounter(const Broker &b, unsigned idx, bool must = true)
{
	uint64_t ctr[ONERING_BC_NR];
	if (!onering_test::StatsCounters(b, ONERING_STATS_BROKER, ctr, ONERING_BC_NR)) {
		if (must)
			ADD_FAILURE() << "the broker's counters could not be read";
		return ~0ull;
	}
	return ctr[idx];
}

// Mappings of queue segments (memfds) in process pid.
int MemfdMaps(pid_t pid)
{
	std::string p = "/proc/" + std::to_string(pid) + "/maps";
	FILE *f = fopen(p.c_str(), "r");
	char line[512];
	int n = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "/memfd:") != nullptr;
	fclose(f);
	return n;
}

// Send one fd over a socket (SCM_RIGHTS).
bool SendFd(int sock, int fd)
{
	char byte = 'x';
	iovec iov = {&byte, 1};
	char ctl[CMSG_SPACE(sizeof(int))] = {};
	msghdr mh = {};
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl;
	mh.msg_controllen = sizeof(ctl);
	cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == 1;
}

// This process's connection to the broker (the library's control socket).
int FindBrokerSocket(pid_t broker)
{
	for (int fd = 3; fd < 1024; fd++) {
		ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid == broker)
			return fd;
	}
	return -1;
}

class Abuse : public ::testing::Test {
protected:
	void SkipUnlessRoot()
	{
		if (geteuid() != 0)
			GTEST_SKIP() << "acts as another user (uid 65534): needs root";
	}
	Broker broker_;
};

// ---- 1. clients that never die -------------------------------------------

// A socket connected to the broker (here a second connection; the client's
// own control socket is the same case) is refused as a source, by name.
TEST_F(Abuse, SourceConnectedToTheBrokerIsRefused)
{
	ASSERT_TRUE(broker_.Start());
	onering *att;
	onering_queue *q;
	ASSERT_EQ(broker_.Attach(&att), 0);
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);
	int s = RawConnect(broker_.SocketPath());
	ASSERT_GE(s, 0);
	onering_sub sub;
	EXPECT_EQ(onering_add(q, s, EPOLLIN, ONERING_MODE_EDGE, 1, &sub), -EINVAL);
	EXPECT_NE(std::string(onering_last_error(att)).find("connected to the broker"),
		  std::string::npos)
		<< onering_last_error(att);
	int own = FindBrokerSocket(broker_.Pid());
	ASSERT_GE(own, 0);
	EXPECT_EQ(onering_add(q, own, EPOLLIN, ONERING_MODE_EDGE, 1, &sub), -EINVAL);
	close(s);
	onering_detach(att);
}

// 100 clients each hide their own connection inside a source the broker
// holds (their control socket in flight in a socketpair they subscribe) and
// exit: the broker sees every death (pidfd), and its fds, mappings and
// client count are back where they were.
TEST_F(Abuse, ClientsThatHideTheirConnectionAreStillSeenToDie)
{
	ASSERT_TRUE(broker_.Start());
	const int base_fds = broker_.FdCount(), base_maps = MemfdMaps(broker_.Pid());
	const int kClients = 100;
	std::vector<pid_t> kids;
	for (int i = 0; i < kClients; i++) {
		pid_t pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			onering *att;
			onering_queue *q;
			int sp[2];
			if (broker_.Attach(&att) < 0 || onering_queue_open(att, nullptr, &q) < 0)
				_exit(2);
			int own = FindBrokerSocket(broker_.Pid());
			if (own < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0 || !SendFd(sp[0], own))
				_exit(3);
			onering_sub sub;
			if (onering_add(q, sp[1], EPOLLIN, ONERING_MODE_EDGE, 1, &sub) < 0)
				_exit(4);
			_exit(0); // no detach: the process just ends
		}
		kids.push_back(pid);
	}
	for (pid_t pid : kids) {
		int status = 0;
		ASSERT_TRUE(onering_test::WaitChild(pid, 30, &status));
		ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
			<< "child exit " << WEXITSTATUS(status) << ", signal " << WTERMSIG(status);
	}
	double t0 = NowMs();
	bool back = false;
	uint64_t clients = ~0ull;
	for (int i = 0; i < 500 && !back; i++) { // bounded: 5 s
		clients = BrokerCounter(broker_, ONERING_BC_CLIENTS, false); // this look is one
		back = clients == 1 && broker_.FdCount() == base_fds &&
		       MemfdMaps(broker_.Pid()) == base_maps;
		if (!back)
			usleep(10000);
	}
	EXPECT_TRUE(back) << "clients " << clients - 1 << ", fds " << broker_.FdCount() << " (was "
			  << base_fds << "), memfd maps " << MemfdMaps(broker_.Pid()) << " (was "
			  << base_maps << ")";
	printf("figure: %d clients that hid their connection: broker back to baseline %.0f ms "
	       "after the last exit\n",
	       kClients, NowMs() - t0);
}

// ---- 2. silent and refused connections -------------------------------------

// 1,100 connections from a uid the broker refuses, never saying HELLO:
// an allowed client still attaches, and the broker holds few of them.
TEST_F(Abuse, RefusedSilentConnectionsLockNobodyOut)
{
	SkipUnlessRoot();
	if (IsSkipped())
		return;
	// Another uid is served, so the directory lets others in (0711); uid
	// 65534 is not among those served.
	ASSERT_TRUE(broker_.Start({"--allow-uid", "65533"}));
	int go[2], done[2];
	ASSERT_EQ(pipe(go), 0);
	ASSERT_EQ(pipe(done), 0);
	const int kConns = 1100;
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		close(go[1]);
		close(done[0]);
		struct rlimit rl = {4096, 4096};
		setrlimit(RLIMIT_NOFILE, &rl);
		if (!BecomeOther())
			_exit(2);
		int opened = 0;
		for (int i = 0; i < kConns; i++) // blocking: waits for the backlog
			opened += RawConnect(broker_.SocketPath()) >= 0;
		if (write(done[1], &opened, sizeof(opened)) != (ssize_t)sizeof(opened))
			_exit(3);
		char c;
		struct pollfd pfd = {go[0], POLLIN, 0};
		poll(&pfd, 1, 30000); // held until the parent is done (bounded)
		(void)!read(go[0], &c, 1);
		_exit(0);
	}
	close(go[0]);
	close(done[1]);
	int opened = 0;
	ASSERT_EQ(read(done[0], &opened, sizeof(opened)), (ssize_t)sizeof(opened));
	EXPECT_EQ(opened, kConns) << "the attacker could not even connect";
	double t0 = NowMs();
	onering *att = nullptr;
	int r = broker_.Attach(&att);
	double ms = NowMs() - t0;
	EXPECT_EQ(r, 0) << onering_last_error(nullptr);
	EXPECT_LT(broker_.FdCount(), 100) << "the broker holds the silent connections";
	EXPECT_GE(BrokerCounter(broker_, ONERING_BC_PENDING_LIMITED), 1000u);
	printf("figure: %d silent connections of a refused uid held: an allowed client "
	       "attached in %.1f ms\n",
	       kConns, ms);
	onering_detach(att);
	ASSERT_EQ(write(go[1], "x", 1), 1);
	int status;
	ASSERT_TRUE(onering_test::WaitChild(pid, 30, &status));
	close(go[1]);
	close(done[0]);
}

// A connection that never says HELLO is closed at the deadline.
TEST_F(Abuse, SilentConnectionsAreClosedAtTheHelloDeadline)
{
	ASSERT_TRUE(broker_.Start({"--hello-timeout-ms", "200"}));
	int s = RawConnect(broker_.SocketPath());
	ASSERT_GE(s, 0);
	struct pollfd pfd = {s, POLLIN | POLLRDHUP, 0};
	ASSERT_EQ(poll(&pfd, 1, 10000), 1) << "no hang-up within 10 s";
	char buf[ONERING_MSG_SIZE];
	EXPECT_EQ(recv(s, buf, sizeof(buf), MSG_DONTWAIT), 0);
	EXPECT_EQ(BrokerCounter(broker_, ONERING_BC_HELLO_TIMEOUTS), 1u);
	close(s);
}

// ---- 3. the fd limit -------------------------------------------------------

// At its fd limit the broker neither spins nor stops serving: the control
// thread sleeps while 100 connections wait, the attached client keeps
// receiving, and a new one is told why it is refused.
TEST_F(Abuse, AtTheFdLimitTheBrokerSleepsServesAndRefusesClearly)
{
	ASSERT_TRUE(broker_.Start());
	onering *att;
	onering_queue *q;
	ASSERT_EQ(broker_.Attach(&att), 0);
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);
	int efd = eventfd(0, EFD_NONBLOCK);
	onering_sub sub;
	ASSERT_EQ(onering_add(q, efd, EPOLLIN, ONERING_MODE_EDGE, 7, &sub), 0);
	// Lower the broker's limit to what it has open now, plus a few.
	struct rlimit rl;
	rl.rlim_cur = rl.rlim_max = (rlim_t)broker_.FdCount() + 6;
	ASSERT_EQ(prlimit(broker_.Pid(), RLIMIT_NOFILE, &rl, nullptr), 0);
	// Fill it with attached clients until one is refused.
	std::vector<onering *> others;
	int r = 0;
	for (int i = 0; i < 50 && r == 0; i++) {
		onering *o = nullptr;
		r = broker_.Attach(&o);
		if (r == 0)
			others.push_back(o);
	}
	EXPECT_EQ(r, -EMFILE);
	EXPECT_NE(std::string(onering_last_error(nullptr)).find("fd limit"), std::string::npos)
		<< onering_last_error(nullptr);
	// 100 more wait to be accepted.
	std::vector<int> held;
	for (int i = 0; i < 100; i++) {
		int s = RawConnect(broker_.SocketPath(), true);
		if (s >= 0)
			held.push_back(s);
	}
	double cpu0 = onering_test::CpuMs(broker_.Pid(), broker_.Pid()), t0 = NowMs();
	// Meanwhile the attached client is served. 2 s here; the figure in
	// docs/security.md is taken over 5 s (ONERING_ABUSE_WINDOW_S=5).
	const char *w = getenv("ONERING_ABUSE_WINDOW_S");
	double window_ms = (w && atoi(w) > 0 && atoi(w) <= 60 ? atoi(w) : 2) * 1000.0;
	int got = 0;
	while (NowMs() - t0 < window_ms) {
		eventfd_write(efd, 1);
		onering_event ev[4];
		int n = onering_wait(q, ev, 1, 4, 100 * 1000 * 1000);
		ASSERT_GE(n, 0);
		got += n;
	}
	double cpu_pct = (onering_test::CpuMs(broker_.Pid(), broker_.Pid()) - cpu0) * 100.0 / (NowMs() - t0);
	EXPECT_GT(got, 0) << "the attached client got nothing at the fd limit";
	EXPECT_LT(cpu_pct, 25.0) << "the control thread spins at the fd limit";
	printf("figure: at the fd limit with %zu connections waiting: control thread %.2f %% of "
	       "a core over %.1f s; the attached client took %d records\n",
	       held.size(), cpu_pct, (NowMs() - t0) / 1000, got);
	for (int s : held)
		close(s);
	for (onering *o : others)
		onering_detach(o);
	// With fds free again the counters can be read (a look is a client too).
	uint64_t episodes = ~0ull;
	for (int i = 0; i < 300 && episodes == ~0ull; i++) {
		episodes = BrokerCounter(broker_, ONERING_BC_FD_LIMIT, false);
		if (episodes == ~0ull)
			usleep(10000);
	}
	// One episode per stay at the limit, not one per refused connection (100
	// waited). The broker may reach it once more on its way out: the closed
	// connections still in its listen backlog are accepted (an fd each) while
	// the detaching clients' fds are being freed - seen under load.
	EXPECT_GE(episodes, 1u);
	EXPECT_LE(episodes, 2u) << "episodes counted per refused connection";
	close(efd);
	onering_detach(att);
}

// One client alone reaches its quota, not the broker's limit: -EDQUOT with
// the limit named, and another client is not affected.
TEST_F(Abuse, QuotasStopOneClientAndSpareTheOthers)
{
	ASSERT_TRUE(broker_.Start({"--max-client-fds", "18", "--max-client-groups", "2"}));
	onering *a, *b;
	onering_queue *qa, *qb;
	ASSERT_EQ(broker_.Attach(&a), 0);
	ASSERT_EQ(broker_.Attach(&b), 0);
	ASSERT_EQ(onering_queue_open(a, nullptr, &qa), 0);
	ASSERT_EQ(onering_queue_open(b, nullptr, &qb), 0);
	std::vector<int> fds;
	int r = 0;
	for (int i = 0; i < 64 && r == 0; i++) {
		fds.push_back(eventfd(0, 0));
		onering_sub s;
		r = onering_add(qa, fds.back(), EPOLLIN, ONERING_MODE_EDGE, 1, &s);
	}
	EXPECT_EQ(r, -EDQUOT);
	// socket + pidfd + 2 memfds + the queue's bell + 13 sources = 18; the
	// 14th is refused.
	EXPECT_EQ(fds.size(), 14u);
	EXPECT_NE(std::string(onering_last_error(a)).find("--max-client-fds"), std::string::npos)
		<< onering_last_error(a);
	onering_sub s;
	int efd = eventfd(0, 0);
	EXPECT_EQ(onering_add(qb, efd, EPOLLIN, ONERING_MODE_EDGE, 1, &s), 0) << "b was hurt";
	// Groups: two live ones per client.
	onering_queue *g[3];
	onering_queue_options o = {};
	const char *names[3] = {"ga", "gb", "gc"};
	for (int i = 0; i < 3; i++) {
		o.group = names[i];
		r = onering_queue_open(b, &o, &g[i]);
		if (i < 2) {
			EXPECT_EQ(r, 0);
		}
	}
	EXPECT_EQ(r, -EDQUOT);
	EXPECT_NE(std::string(onering_last_error(b)).find("--max-client-groups"), std::string::npos)
		<< onering_last_error(b);
	EXPECT_GE(BrokerCounter(broker_, ONERING_BC_QUOTA), 2u);
	for (int fd : fds)
		close(fd);
	close(efd);
	onering_detach(a);
	onering_detach(b);
}

// ---- 4. socket directories and impostors -----------------------------------

std::string CheckOutput(const std::string &dir, int *status)
{
	return onering_test::RunCommand(std::string(ONERINGD_PATH) + " --check --name t " +
						"--socket-dir " + dir + " 2>&1",
					status);
}

TEST_F(Abuse, BrokerRefusesADirectoryOthersCouldWriteOrOwn)
{
	SkipUnlessRoot();
	if (IsSkipped())
		return;
	std::string top = onering_test::MakeTempDir();
	ASSERT_FALSE(top.empty());
	int status;
	// World-writable.
	std::string open_dir = top + "/open";
	ASSERT_EQ(mkdir(open_dir.c_str(), 0777), 0);
	ASSERT_EQ(chmod(open_dir.c_str(), 0777), 0);
	std::string out = CheckOutput(open_dir, &status);
	EXPECT_NE(WEXITSTATUS(status), 0) << out;
	EXPECT_NE(out.find("chmod 0700"), std::string::npos) << out;
	// Owned by another user (mode 0755).
	std::string theirs = top + "/theirs";
	ASSERT_EQ(mkdir(theirs.c_str(), 0755), 0);
	ASSERT_EQ(chown(theirs.c_str(), kOther, kOther), 0);
	out = CheckOutput(theirs, &status);
	EXPECT_NE(WEXITSTATUS(status), 0) << out;
	EXPECT_NE(out.find("belongs to uid 65534"), std::string::npos) << out;
	// A symlink to a good directory.
	std::string good = top + "/good", link = top + "/link";
	ASSERT_EQ(mkdir(good.c_str(), 0700), 0);
	ASSERT_EQ(symlink(good.c_str(), link.c_str()), 0);
	out = CheckOutput(link, &status);
	EXPECT_NE(WEXITSTATUS(status), 0) << out;
	EXPECT_NE(out.find("symlink"), std::string::npos) << out;
	// The good one passes.
	out = CheckOutput(good, &status);
	EXPECT_EQ(WEXITSTATUS(status), 0) << out;
	for (const std::string &d : {open_dir, theirs, link, good})
		remove(d.c_str());
	rmdir(top.c_str());
}

// Another user swapped the socket for its own: the client refuses it
// before sending a byte, and says how to trust it if that is intended.
TEST_F(Abuse, ClientRefusesAnImpostorBeforeSendingAnything)
{
	SkipUnlessRoot();
	if (IsSkipped())
		return;
	std::string dir = onering_test::MakeTempDir();
	ASSERT_FALSE(dir.empty());
	ASSERT_EQ(chown(dir.c_str(), kOther, kOther), 0);
	std::string path = dir + "/t.sock";
	int ready[2], report[2];
	ASSERT_EQ(pipe(ready), 0);
	ASSERT_EQ(pipe(report), 0);
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) { // the impostor
		if (!BecomeOther())
			_exit(2);
		int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		sockaddr_un sa = {};
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
		if (l < 0 || bind(l, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) < 0 ||
		    chmod(path.c_str(), 0666) < 0 || listen(l, 4) < 0)
			_exit(3);
		if (write(ready[1], "r", 1) != 1)
			_exit(4);
		for (int round = 0; round < 2; round++) {
			int c = accept(l, nullptr, nullptr);
			if (c < 0)
				_exit(5);
			// What did the client send? Its first message, or its hang-up
			// (bounded wait), then we hang up.
			char buf[256];
			ssize_t got = 0;
			struct pollfd pfd = {c, POLLIN, 0};
			if (poll(&pfd, 1, 5000) == 1)
				got = recv(c, buf, sizeof(buf), 0);
			close(c);
			if (write(report[1], &got, sizeof(got)) != (ssize_t)sizeof(got))
				_exit(6);
		}
		_exit(0);
	}
	char ch;
	ASSERT_EQ(read(ready[0], &ch, 1), 1);
	onering_attach_options o = {};
	o.name = "t";
	o.socket_dir = dir.c_str();
	onering *att = nullptr;
	EXPECT_EQ(onering_attach_opts(&o, &att), -EPERM);
	std::string why = onering_last_error(nullptr);
	EXPECT_NE(why.find("uid 65534"), std::string::npos) << why;
	EXPECT_NE(why.find("trust_uid"), std::string::npos) << why;
	ssize_t got = -1;
	ASSERT_EQ(read(report[0], &got, sizeof(got)), (ssize_t)sizeof(got));
	EXPECT_EQ(got, 0) << "the client sent bytes to an untrusted server";
	// Trusted on purpose: the HELLO goes out (and the impostor hangs up).
	o.trust_uid = kOther;
	EXPECT_NE(onering_attach_opts(&o, &att), -EPERM);
	ASSERT_EQ(read(report[0], &got, sizeof(got)), (ssize_t)sizeof(got));
	EXPECT_EQ(got, (ssize_t)ONERING_MSG_SIZE);
	int status;
	ASSERT_TRUE(onering_test::WaitChild(pid, 10, &status));
	unlink(path.c_str());
	rmdir(dir.c_str());
	for (int fd : {ready[0], ready[1], report[0], report[1]})
		close(fd);
}

// ---- 5. groups have owners -------------------------------------------------

// Send one GROUP message on a raw control connection; returns its status.
int GroupRequest(const Broker &b, const char *name, bool tune, long trust = -1)
{
	int s;
	char err[512];
	if (onering_proto_connect(b.SocketPath().c_str(), b.Name().c_str(), trust, &s, nullptr, err,
				  sizeof(err)) < 0)
		return -EIO;
	onering_msg m;
	onering_msg_init(&m, ONERING_MSG_GROUP, 7);
	snprintf(m.u.group.name, sizeof(m.u.group.name), "%s", name);
	m.u.group.flags = ONERING_GROUP_NO_CREATE;
	if (tune) {
		m.u.group.set = ONERING_GSET_MAX_RUNNING;
		m.u.group.max_running = 4294967295u;
	}
	int r = onering_msg_send(s, &m, nullptr, 0, 0);
	if (r == 0)
		r = onering_msg_recv_timeout(s, &m, nullptr, 0, nullptr, 5000);
	close(s);
	return r < 0 ? r : m.status;
}

TEST_F(Abuse, AnotherUserCanNeitherJoinNorPostToNorTuneGroupsNotTheirs)
{
	SkipUnlessRoot();
	if (IsSkipped())
		return;
	ASSERT_TRUE(broker_.Start({"--allow-uid", "65534"}));
	onering *att;
	onering_queue *member;
	onering_queue_options o = {};
	o.group = "rootg";
	ASSERT_EQ(broker_.Attach(&att), 0);
	ASSERT_EQ(onering_queue_open(att, &o, &member), 0);
	uint32_t gid = onering_queue_group(member);
	const int kPosts = 100;
	int report[2], go[2];
	ASSERT_EQ(pipe(report), 0);
	ASSERT_EQ(pipe(go), 0);
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) { // the intruder: another uid the broker serves
		int res[4] = {1, 1, 1, 0};
		onering *a;
		onering_queue *q, *own;
		if (!BecomeOther() || broker_.Attach(&a) < 0)
			_exit(2);
		onering_queue_options io = {};
		io.group = "rootg";
		res[0] = onering_queue_open(a, &io, &q); // join: -EPERM
		res[1] = GroupRequest(broker_, "default", true); // tune default: -EPERM
		io.group = "mine";
		uint32_t target = 0;
		if (onering_queue_open(a, &io, &own) < 0 || onering_group_id(a, "rootg", &target) < 0 ||
		    target != gid)
			_exit(3);
		res[2] = 0;
		for (int i = 0; i < kPosts && res[2] == 0; i++)
			res[2] = onering_post(own, gid, (uint64_t)i, &i, sizeof(i), 0);
		// Every post comes back refused (-EACCES), none is lost silently.
		int refused = 0;
		onering_event ev[16];
		for (int i = 0; i < 200 && refused < kPosts; i++) {
			int n = onering_wait(own, ev, 1, 16, 50ll * 1000 * 1000);
			for (int k = 0; k < n; k++)
				refused += ev[k].kind == ONERING_EV_CONTROL &&
					   ev[k].payload.control.code == ONERING_CTL_POST_REFUSED &&
					   ev[k].payload.control.status == -EACCES;
		}
		res[3] = refused;
		if (write(report[1], res, sizeof(res)) != (ssize_t)sizeof(res))
			_exit(4);
		char c; // stay attached until the parent has looked
		struct pollfd pfd = {go[0], POLLIN, 0};
		poll(&pfd, 1, 30000);
		(void)!read(go[0], &c, 1);
		onering_detach(a);
		_exit(0);
	}
	int res[4];
	ASSERT_EQ(read(report[0], res, sizeof(res)), (ssize_t)sizeof(res));
	EXPECT_EQ(res[0], -EPERM) << "joined root's group";
	EXPECT_EQ(res[1], -EPERM) << "tuned default";
	EXPECT_EQ(res[2], 0) << "posting is asynchronous: the call itself succeeds";
	EXPECT_EQ(res[3], kPosts) << "posts refused and said so (POST_REFUSED, -EACCES)";
	EXPECT_EQ(BrokerCounter(broker_, ONERING_BC_POSTS_REFUSED), (uint64_t)kPosts);
	ASSERT_EQ(write(go[1], "x", 1), 1);
	int status;
	ASSERT_TRUE(onering_test::WaitChild(pid, 30, &status));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
	// None of the intruder's posts reached root's member: a post of root's
	// own, made after them, is the first record there.
	ASSERT_EQ(onering_post(member, gid, 0, "root", 4, 0), 0);
	onering_event ev[8];
	int n = onering_wait(member, ev, 1, 8, 5000ll * 1000 * 1000);
	ASSERT_GE(n, 1);
	EXPECT_EQ(memcmp(ev[0].payload.user.data, "root", 4), 0) << "an intruder's post arrived";
	// Root may still tune it.
	EXPECT_EQ(GroupRequest(broker_, "default", true), 0);
	onering_detach(att);
	for (int fd : {report[0], report[1], go[0], go[1]})
		close(fd);
}

// The submission bells page is per user: a client of another user maps a
// page of its own, and scribbling all over it (every bit set, then none,
// again and again) does not touch the bells of root's queues, whose posts
// all arrive.
TEST_F(Abuse, AnotherUsersBellsAreAPageOfItsOwn)
{
	SkipUnlessRoot();
	if (IsSkipped())
		return;
	ASSERT_TRUE(broker_.Start({"--allow-uid", "65534", "--cores", "1"}));
	onering *att;
	onering_queue *q;
	onering_queue_options o = {};
	o.group = "rootb";
	ASSERT_EQ(broker_.Attach(&att), 0);
	ASSERT_EQ(onering_queue_open(att, &o, &q), 0);
	struct stat mine;
	ASSERT_EQ(fstat(q->bells_seg.fd, &mine), 0);
	int report[2], go[2];
	ASSERT_EQ(pipe(report), 0);
	ASSERT_EQ(pipe(go), 0);
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) { // another user, on the same (only) poller
		onering *a;
		onering_queue *own;
		struct stat st = {};
		if (!BecomeOther() || broker_.Attach(&a) < 0 || onering_queue_open(a, nullptr, &own) < 0 ||
		    fstat(own->bells_seg.fd, &st) < 0)
			_exit(2);
		if (write(report[1], &st.st_ino, sizeof(st.st_ino)) != (ssize_t)sizeof(st.st_ino))
			_exit(3);
		auto *w = reinterpret_cast<ONERING_ATOMIC(uint64_t) *>(
			static_cast<char *>(own->bells_seg.base) + ONERING_BELLS_OFFSET);
		struct pollfd pfd = {go[0], POLLIN, 0};
		for (int i = 0; i < 100000 && poll(&pfd, 1, 0) == 0; i++)
			for (unsigned k = 0; k < ONERING_BELL_WORDS; k++)
				onering_atomic_store(&w[k], (i & 1) ? 0 : ~0ull, onering_mo_relaxed);
		onering_detach(a);
		_exit(0);
	}
	ino_t theirs = 0;
	ASSERT_EQ(read(report[0], &theirs, sizeof(theirs)), (ssize_t)sizeof(theirs));
	EXPECT_NE(theirs, mine.st_ino) << "two users share a bells page";
	const int kPosts = 200;
	int got = 0;
	for (int i = 0; i < kPosts; i++)
		ASSERT_EQ(onering_post(q, onering_queue_group(q), (uint64_t)i, &i, sizeof(i), 0), 0);
	onering_event ev[32];
	for (int i = 0; i < 400 && got < kPosts; i++) {
		int n = onering_wait(q, ev, 1, 32, 50ll * 1000 * 1000);
		ASSERT_GE(n, 0);
		got += n;
	}
	EXPECT_EQ(got, kPosts);
	ASSERT_EQ(write(go[1], "x", 1), 1);
	int status;
	ASSERT_TRUE(onering_test::WaitChild(pid, 30, &status));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
	onering_detach(att);
	for (int fd : {report[0], report[1], go[0], go[1]})
		close(fd);
}

// Groups of clients end with their last member: 1,000 short-lived groups in
// a row never fill the 64-group table.
TEST_F(Abuse, ShortLivedGroupsDoNotExhaustTheTable)
{
	ASSERT_TRUE(broker_.Start());
	onering *att;
	ASSERT_EQ(broker_.Attach(&att), 0);
	for (int i = 0; i < 1000; i++) {
		char name[32];
		snprintf(name, sizeof(name), "short%d", i);
		onering_queue_options o = {};
		o.group = name;
		onering_queue *q;
		ASSERT_EQ(onering_queue_open(att, &o, &q), 0) << "group " << i << ": "
							       << onering_last_error(att);
		onering_queue_close(q);
	}
	EXPECT_EQ(BrokerCounter(broker_, ONERING_BC_GROUPS), 1u) << "only 'default' is left";
	onering_detach(att);
}

// ---- 6. seals ---------------------------------------------------------------

// Every segment a client receives is sealed for good: it cannot add seals.
TEST_F(Abuse, SegmentsCannotBeSealedFurtherByTheClient)
{
	ASSERT_TRUE(broker_.Start());
	int s;
	char err[512];
	ASSERT_EQ(onering_proto_connect(broker_.SocketPath().c_str(), broker_.Name().c_str(), -1, &s,
					nullptr, err, sizeof(err)),
		  0)
		<< err;
	onering_msg m;
	onering_msg_init(&m, ONERING_MSG_QUEUE_OPEN, 2);
	m.u.queue_open.node = -1;
	m.u.queue_open.cpu = -1;
	ASSERT_EQ(onering_msg_send(s, &m, nullptr, 0, 0), 0);
	int fds[3];
	unsigned nfds = 0;
	ASSERT_EQ(onering_msg_recv_timeout(s, &m, fds, 3, &nfds, 5000), 0);
	ASSERT_EQ(m.status, 0);
	ASSERT_EQ(nfds, 3u);
	for (int i = 0; i < 2; i++) { // the events and consumer segments
		EXPECT_TRUE(fcntl(fds[i], F_GET_SEALS) & F_SEAL_SEAL) << "segment " << i;
		EXPECT_EQ(fcntl(fds[i], F_ADD_SEALS, F_SEAL_WRITE), -1) << "segment " << i;
		EXPECT_EQ(errno, EPERM);
	}
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	close(s);
}

} // namespace
