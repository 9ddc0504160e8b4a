// SPDX-License-Identifier: MIT
// The poller's loop pays only for what it has (issue 12): with no client fd
// subscribed it makes no epoll_wait while awake; with one it asks epoll
// again; after the fd is gone it stops again. Counted per CPU-millisecond
// of the poller thread (perf's raw_syscalls:sys_enter tracepoint on its
// tid), not per wall-clock time: a loaded machine slows the loop, it does
// not change what one loop does.
#include <gtest/gtest.h>

#include <dirent.h>
#include <linux/perf_event.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <sstream>
#include <string>

#include "client/client.h"
#include "harness.h"

using onering_test::Broker;

namespace {

// The tid of oneringd's thread called comm, or -1.
pid_t ThreadNamed(pid_t pid, const std::string &comm)
{
	std::string dir = "/proc/" + std::to_string(pid) + "/task";
	DIR *d = opendir(dir.c_str());
	pid_t found = -1;
	for (struct dirent *e; d && (e = readdir(d));) {
		std::ifstream f(dir + "/" + e->d_name + "/comm");
		std::string name;
		if (e->d_name[0] != '.' && std::getline(f, name) && name == comm)
			found = (pid_t)atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

// Open fds of pid.
int FdCount(pid_t pid)
{
	std::string dir = "/proc/" + std::to_string(pid) + "/fd";
	DIR *d = opendir(dir.c_str());
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

// A counter of the syscalls tid enters: an fd, or -errno.
int SyscallCounter(pid_t tid)
{
	long id = -1;
	for (const char *root : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
		std::ifstream f(std::string(root) + "/events/raw_syscalls/sys_enter/id");
		if (f >> id)
			break;
	}
	if (id < 0)
		return -ENOTSUP;
	struct perf_event_attr a = {};
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof(a);
	a.config = (uint64_t)id;
	int fd = (int)syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

// The CPU time tid has used, ms (utime + stime of /proc/PID/task/TID/stat).
double CpuMs(pid_t pid, pid_t tid)
{
	std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat");
	std::string line;
	std::getline(f, line);
	size_t at = line.rfind(')'); // the fields after "(comm)"
	if (at == std::string::npos)
		return 0;
	std::istringstream rest(line.substr(at + 2));
	std::string field;
	unsigned long long utime = 0, stime = 0;
	for (int i = 3; i <= 15 && rest >> field; i++)
		if (i == 14)
			utime = std::stoull(field);
		else if (i == 15)
			stime = std::stoull(field);
	return (double)(utime + stime) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

// Syscalls per CPU-ms of the poller while it spins for at least 100 ms of
// CPU (bounded: 20 s of wall time).
double SyscallsPerCpuMs(pid_t pid, pid_t tid, int counter)
{
	uint64_t c0 = 0, c1 = 0;
	EXPECT_EQ(read(counter, &c0, sizeof(c0)), (ssize_t)sizeof(c0));
	double t0 = CpuMs(pid, tid), t1 = t0;
	for (int i = 0; i < 2000 && t1 - t0 < 100; i++) {
		usleep(10000);
		t1 = CpuMs(pid, tid);
	}
	EXPECT_EQ(read(counter, &c1, sizeof(c1)), (ssize_t)sizeof(c1));
	EXPECT_GE(t1 - t0, 100) << "the poller did not get 100 ms of CPU in 20 s";
	return (double)(c1 - c0) / (t1 - t0 > 1 ? t1 - t0 : 1);
}

} // namespace

TEST(PollerLoopTest, AsksEpollOnlyWhileItHasClientFds)
{
	Broker broker;
	// Never block: the loop spins, so every system call it makes is a
	// loop's own, not a sleep's.
	ASSERT_TRUE(broker.Start({"--idle-sleep-ms", "-1"}));
	pid_t tid = ThreadNamed(broker.Pid(), "onering-poll0");
	ASSERT_GT(tid, 0) << "no thread named onering-poll0 in oneringd";
	int counter = SyscallCounter(tid);
	if (counter < 0)
		GTEST_SKIP() << "cannot count syscalls (perf_event_open on raw_syscalls:sys_enter: "
			     << strerror(-counter) << "; needs root and tracefs)";
	struct onering *att;
	ASSERT_EQ(broker.Attach(&att), 0);
	struct onering_queue *q;
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);

	// A queue, no fd: the spinning loop makes (next to) no system call.
	double idle = SyscallsPerCpuMs(broker.Pid(), tid, counter);
	EXPECT_LT(idle, 1.0) << "syscalls per CPU-ms with no client fd";

	// One eventfd subscribed: epoll is asked again (each loop, or one in 16
	// while other sources work), and its event is delivered.
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ASSERT_GE(efd, 0);
	struct onering_sub sub;
	ASSERT_EQ(onering_add(q, efd, EPOLLIN, ONERING_EDGE, 7, &sub), 0);
	int fds_with_sub = FdCount(broker.Pid());
	double with_fd = SyscallsPerCpuMs(broker.Pid(), tid, counter);
	EXPECT_GT(with_fd, 50.0) << "syscalls per CPU-ms with an fd subscribed";
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	struct onering_event ev;
	ASSERT_EQ(onering_wait(q, &ev, 1, 1, 5000000000ll), 1);
	EXPECT_EQ(ev.cookie, 7u);

	// Gone again: deleted, and finalized by the control thread (which closes
	// the broker's duplicate of the fd: wait for that, bounded, then count).
	ASSERT_GE(onering_del(q, sub), 0);
	for (int i = 0; i < 500 && FdCount(broker.Pid()) >= fds_with_sub; i++)
		usleep(10000);
	ASSERT_LT(FdCount(broker.Pid()), fds_with_sub) << "the broker kept the fd for 5 s";
	double after = SyscallsPerCpuMs(broker.Pid(), tid, counter);
	EXPECT_LT(after, 1.0) << "syscalls per CPU-ms after the fd was removed";

	close(efd);
	close(counter);
	onering_queue_close(q);
	onering_detach(att);
	EXPECT_EQ(broker.Stop(), 0);
}

// A client asleep in onering_wait makes no system call until something
// happens (issue 12: 0 wake-ups per second while idle): it sleeps in one
// ppoll on its queue's bell and its control socket, so neither a timer
// slice nor a liveness check wakes it; the broker's death still does, at
// once (DeadBrokerTest.SleepingClientLearnsWithin100ms).
TEST(ClientIdleTest, AsleepInWaitItMakesNoSystemCall)
{
	onering_test::OneQueue one;
	ASSERT_TRUE(one.Start());
	struct onering_queue *q = one.q;
	std::atomic<pid_t> tid{0};
	std::atomic<int> result{1};
	std::thread waiter([&] {
		tid = (pid_t)syscall(SYS_gettid);
		struct onering_event e;
		result = onering_wait(q, &e, 1, 1, 20000000000ll); // 20 s at most
	});
	for (int i = 0; i < 5000 && (tid.load() == 0 || onering_atomic_load(&q->db->state,
			onering_mo_acquire) != ONERING_CONSUMER_SLEEPING); i++)
		usleep(1000);
	ASSERT_EQ(onering_atomic_load(&q->db->state, onering_mo_acquire),
		  (uint32_t)ONERING_CONSUMER_SLEEPING);
	int counter = SyscallCounter(tid.load());
	if (counter >= 0) {
		uint64_t c0 = 0, c1 = 0;
		EXPECT_EQ(read(counter, &c0, sizeof(c0)), (ssize_t)sizeof(c0));
		usleep(500000); // asleep: whatever the machine's load, no call
		EXPECT_EQ(read(counter, &c1, sizeof(c1)), (ssize_t)sizeof(c1));
		EXPECT_EQ(c1 - c0, 0u) << "system calls while asleep in onering_wait";
		close(counter);
	}
	// Then one record wakes it: an eventfd it watches turns readable.
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ASSERT_GE(efd, 0);
	struct onering_sub sub;
	ASSERT_EQ(onering_add(q, efd, EPOLLIN, ONERING_EDGE, 9, &sub), 0);
	ASSERT_EQ(eventfd_write(efd, 1), 0);
	waiter.join();
	EXPECT_EQ(result.load(), 1) << "the bell did not wake it";
	close(efd);
	if (counter < 0)
		GTEST_SKIP() << "cannot count syscalls (perf_event_open on raw_syscalls:sys_enter: "
			     << strerror(-counter) << "; needs root and tracefs)";
}
