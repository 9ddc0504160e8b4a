// SPDX-License-Identifier: MIT
// Test harness: a oneringd child started for one test and stopped by pid.
#ifndef ONERING_TESTS_HARNESS_H
#define ONERING_TESTS_HARNESS_H

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sched.h>
#include <sstream>
#include <chrono>
#include <string>
#include <linux/filter.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <vector>

#include "client/onering.h"
#include "shm/proto.h"

#ifndef ONERINGD_PATH
#error "ONERINGD_PATH must name the oneringd binary under test"
#endif

namespace onering_test {

// A unique private socket directory per broker; removed at the end.
inline std::string MakeTempDir()
{
	char tmpl[] = "/tmp/onering-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	return d ? std::string(d) : std::string();
}

// In a forked child: execv args[0] with args; exit 127 if it cannot.
[[noreturn]] inline void ExecArgs(const std::vector<std::string> &args)
{
	std::vector<char *> argv;
	for (auto &a : args)
		argv.push_back(const_cast<char *>(a.c_str()));
	argv.push_back(nullptr);
	execv(argv[0], argv.data());
	_exit(127);
}

class Broker {
public:
	// Start oneringd --foreground with extra args (and DPDK EAL options
	// before "--" if eal is not empty) and wait (bounded) until it says it
	// serves, through --ready-fd. Returns false on failure.
	bool Start(const std::vector<std::string> &extra = {}, const std::string &name = "t",
		   const std::vector<std::string> &eal = {})
	{
		if (!keep_dir_)
			dir_ = MakeTempDir();
		keep_dir_ = false;
		name_ = name;
		if (dir_.empty())
			return false;
		log_ = dir_ + "/oneringd.log";
		int p[2];
		if (pipe2(p, 0) < 0)
			return false;
		std::vector<std::string> args = {ONERINGD_PATH};
		if (!eal.empty()) {
			args.insert(args.end(), eal.begin(), eal.end());
			args.push_back("--");
		}
		for (const char *a : {"--foreground", "--name"})
			args.push_back(a);
		args.push_back(name_);
		args.push_back("--socket-dir");
		args.push_back(dir_);
		for (const char *a : {"--ready-fd", "3"})
			args.push_back(a);
		if (!hugepages_)
			args.push_back("--no-hugepages");
		// A suite run again with other broker options (meson's
		// integration_stream_calls: --stream-io calls); the test's own
		// come after, so they win.
		if (const char *more = getenv("ONERING_TEST_ONERINGD_ARGS")) {
			std::istringstream words(more);
			for (std::string w; words >> w;)
				args.push_back(w);
		}
		args.insert(args.end(), extra.begin(), extra.end());
		pid_ = fork();
		if (pid_ < 0)
			return false;
		if (pid_ == 0) {
			// If the test process dies before it can stop us, go too.
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (netns_ && unshare(CLONE_NEWNET) < 0)
				_exit(126);
			for (auto &kv : env_)
				setenv(kv.first.c_str(), kv.second.c_str(), 1);
			// Only fd 3 stays of the pipe: the broker's close of it is the
			// end the parent waits for.
			if (p[0] != 3)
				close(p[0]);
			dup2(p[1], 3);
			if (p[1] != 3)
				close(p[1]);
			int log = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (log >= 0)
				dup2(log, 2);
			ExecArgs(args);
		}
		close(p[1]);
		struct pollfd pfd = {p[0], POLLIN, 0};
		int r = poll(&pfd, 1, 10000);
		char c = 0;
		bool ok = r == 1 && read(p[0], &c, 1) == 1 && c == 'R';
		// Then the end of the pipe: the broker has closed its end, so the fd
		// counts tests take from here on are its steady ones.
		if (ok && poll(&pfd, 1, 10000) == 1)
			ok = read(p[0], &c, 1) == 0;
		close(p[0]);
		if (!ok)
			Stop();
		return ok;
	}

	// SIGTERM, then wait (bounded) for exit; SIGKILL if it does not go.
	// Returns the exit status, or -1.
	int Stop(int sig = SIGTERM)
	{
		if (pid_ <= 0)
			return -1;
		kill(pid_, sig);
		int status = -1;
		for (int i = 0; i < 1000; i++) { // 10 s at most
			pid_t r = waitpid(pid_, &status, WNOHANG);
			if (r == pid_)
				break;
			if (i == 999) {
				kill(pid_, SIGKILL);
				waitpid(pid_, &status, 0);
			}
			usleep(10000);
		}
		pid_ = -1;
		return status;
	}

	~Broker()
	{
		// A broker the test left running must stop cleanly: this is where a
		// sanitizer report or a leak in the broker shows up.
		bool running = pid_ > 0;
		int status = Stop();
		if (running && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			ADD_FAILURE() << "oneringd did not exit cleanly on SIGTERM (status 0x" << std::hex
				      << status << std::dec << ")";
		if (!dir_.empty()) {
			if (::testing::Test::HasFailure())
				DumpLog();
			unlink(log_.c_str());
			unlink((dir_ + "/" + name_ + ".sock").c_str());
			rmdir(dir_.c_str());
		}
	}

	void DumpLog() const
	{
		FILE *f = fopen(log_.c_str(), "r");
		char line[512];
		if (!f)
			return;
		fprintf(stderr, "---- oneringd log ----\n");
		while (fgets(line, sizeof(line), f))
			fputs(line, stderr);
		fclose(f);
	}

	// Attach to it. Recovery after a broker restart is off unless asked for
	// (recover): the tests of a broker's death expect -ECONNRESET.
	int Attach(struct onering **out, bool recover = false) const
	{
		struct onering_attach_options o = {};
		o.name = name_.c_str();
		o.socket_dir = dir_.c_str();
		o.flags = recover ? 0 : ONERING_ATTACH_NO_RECOVER;
		return onering_attach_opts(&o, out);
	}

	// kill -9 the broker and start another in the same socket directory,
	// under the same name (the clients' socket path). Returns false if it
	// did not come up.
	bool Restart(const std::vector<std::string> &extra = {})
	{
		Stop(SIGKILL);
		keep_dir_ = true;
		return Start(extra, name_);
	}

	// Start the next broker in a network namespace of its own (root only):
	// interfaces it creates (net_tap) and their traffic stay in there.
	void NewNetns() { netns_ = true; }

	// Let the broker started next use hugepages where reserved (the default
	// is --no-hugepages: tests do not depend on the machine's reservation).
	void UseHugepages() { hugepages_ = true; }

	// An environment variable for the broker started next.
	void SetEnv(const std::string &k, const std::string &v) { env_.push_back({k, v}); }

	std::string SocketPath() const { return dir_ + "/" + name_ + ".sock"; }
	const std::string &Dir() const { return dir_; }
	const std::string &Name() const { return name_; }
	pid_t Pid() const { return pid_; }

	// Open fds of the broker process.
	int FdCount() const
	{
		std::string p = "/proc/" + std::to_string(pid_) + "/fd";
		DIR *d = opendir(p.c_str());
		int n = 0;
		if (!d)
			return -1;
		while (readdir(d))
			n++;
		closedir(d);
		return n - 2;
	}

	// Mappings of the broker process.
	int MapCount() const
	{
		std::string p = "/proc/" + std::to_string(pid_) + "/maps";
		FILE *f = fopen(p.c_str(), "r");
		int n = 0, ch;
		if (!f)
			return -1;
		while ((ch = fgetc(f)) != EOF)
			n += ch == '\n';
		fclose(f);
		return n;
	}

private:
	pid_t pid_ = -1;
	std::string dir_, name_, log_;
	std::vector<std::pair<std::string, std::string>> env_;
	bool netns_ = false;
	bool hugepages_ = false;
	bool keep_dir_ = false;
};

// What most tests start with: a broker, one attached client, one private
// queue; closed, detached and stopped (by pid) at the end of the scope.
struct OneQueue {
	Broker broker;
	struct onering *att = nullptr;
	struct onering_queue *q = nullptr;

	bool Start(const std::vector<std::string> &extra = {})
	{
		return broker.Start(extra) && broker.Attach(&att) == 0 &&
		       onering_queue_open(att, nullptr, &q) == 0;
	}
	~OneQueue()
	{
		if (q)
			onering_queue_close(q);
		if (att)
			onering_detach(att);
	}
};

// Counters of the first stats item of kind `what` (ONERING_STATS_*), read
// over the control socket; false when the broker did not answer.
inline bool StatsCounters(const Broker &broker, uint32_t what, uint64_t *ctr, unsigned n)
{
	struct Want {
		uint32_t what;
		uint64_t *ctr;
		unsigned n;
		bool found;
	} want = {what, ctr, n, false};
	auto keep = [](const onering_msg *m, void *arg) {
		Want *w = static_cast<Want *>(arg);
		if (m->u.stats_item.what == w->what && !w->found) {
			memcpy(w->ctr, m->u.stats_item.counter, sizeof(uint64_t) * w->n);
			w->found = true;
		}
		return 0;
	};
	int s;
	char err[512];
	onering_msg req, rep;
	if (onering_proto_connect(broker.SocketPath().c_str(), broker.Name().c_str(), -1, &s, nullptr,
				  err, sizeof(err)) < 0)
		return false;
	onering_msg_init(&req, ONERING_MSG_STATS, 3);
	int r = onering_proto_call(s, &req, &rep, keep, &want, 5000);
	close(s);
	return r == 0 && want.found;
}

// Every stats item the broker sends (ONERING_MSG_STATS_ITEM), in order; empty
// when it did not answer.
inline std::vector<onering_msg> StatsItems(const Broker &broker)
{
	std::vector<onering_msg> items;
	int s;
	char err[512];
	onering_msg m;
	if (onering_proto_connect(broker.SocketPath().c_str(), broker.Name().c_str(), -1, &s, nullptr,
				  err, sizeof(err)) < 0)
		return items;
	onering_msg_init(&m, ONERING_MSG_STATS, 9);
	onering_msg_send(s, &m, nullptr, 0, 0);
	while (onering_msg_recv_timeout(s, &m, nullptr, 0, nullptr, 5000) == 0 &&
	       m.type != ONERING_MSG_STATS_END)
		if (m.type == ONERING_MSG_STATS_ITEM)
			items.push_back(m);
	close(s);
	return items;
}

// A whole file as a string (empty when it cannot be read).
inline std::string ReadFile(const std::string &path)
{
	std::ifstream f(path);
	std::stringstream s;
	s << f.rdbuf();
	return s.str();
}

// ---- threads: CPU time and system calls -------------------------------

// CLOCK_MONOTONIC in ns (the clock of the broker's record stamps).
inline uint64_t NowNs()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// Every thread of pid stopped (SIGSTOP is delivered asynchronously):
// bounded wait, false if it does not happen within 5 s.
inline bool AllThreadsStopped(pid_t pid)
{
	std::string dir = "/proc/" + std::to_string(pid) + "/task";
	for (int tries = 0; tries < 5000; tries++) {
		bool all = true;
		DIR *d = opendir(dir.c_str());
		if (!d)
			return false;
		while (dirent *e = readdir(d)) {
			if (e->d_name[0] == '.')
				continue;
			std::ifstream st(dir + "/" + e->d_name + "/stat");
			std::string line;
			std::getline(st, line);
			size_t paren = line.rfind(')');
			if (paren == std::string::npos || paren + 2 >= line.size() ||
			    (line[paren + 2] != 't' && line[paren + 2] != 'T'))
				all = false;
		}
		closedir(d);
		if (all)
			return true;
		usleep(1000);
	}
	return false;
}

// The system call tid is blocked in (/proc/PID/task/TID/syscall gives its
// number while it is in one, "running" otherwise), or -1.
inline long BlockedInSyscall(pid_t pid, pid_t tid)
{
	std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) +
			"/syscall");
	std::string first;
	if (!(f >> first) || first.find_first_not_of("0123456789") != std::string::npos)
		return -1;
	return std::stol(first);
}

// Bounded wait (5 s) until tid is blocked in system call nr: true if it is.
inline bool WaitBlockedIn(pid_t pid, pid_t tid, long nr)
{
	for (int i = 0; i < 5000; i++) {
		if (BlockedInSyscall(pid, tid) == nr)
			return true;
		usleep(1000);
	}
	return false;
}

// The tid of oneringd's thread called comm, or -1.
inline pid_t ThreadNamed(pid_t pid, const std::string &comm)
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

// A counter of the system calls tid enters (event: a tracepoint under
// events/, e.g. "syscalls/sys_enter_ppoll" for one call): an fd, or -errno.
inline int SyscallCounter(pid_t tid, const char *event = "raw_syscalls/sys_enter")
{
	long id = -1;
	for (const char *root : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
		std::ifstream f(std::string(root) + "/events/" + event + "/id");
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
inline double CpuMs(pid_t pid, pid_t tid)
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

// ---- zero system calls --------------------------------------------------

// Kill the process on any system call but exit_group (the zero-syscall tests
// install it in a child just before it consumes).
inline int InstallSeccompKillAll()
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = {static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])),
				  filter};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	return 0;
}

// The exit_group system call itself, with no libc or sanitizer exit hooks
// (which would make other system calls first). Under ASan, call it from a
// function built with no_sanitize("address"): ASan checks the stack with a
// system call before every call of a noreturn function.
[[noreturn]] inline void ExitGroup(int code)
{
	syscall(SYS_exit_group, code);
	__builtin_unreachable();
}

// A child consuming an eventfd's records under InstallSeccompKillAll():
// wait for its byte on ready_fd, write efd until it exits (at most
// `seconds`, then SIGKILL), and say whether it exited with 0 by itself.
inline ::testing::AssertionResult FeedUntilCleanExit(int efd, pid_t child, int ready_fd,
						     int seconds)
{
	char c;
	if (read(ready_fd, &c, 1) != 1)
		return ::testing::AssertionFailure() << "the child did not get ready";
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
	int status = 0;
	for (uint64_t i = 0;; i++) {
		eventfd_write(efd, 1);
		if ((i & 1023) == 0) {
			if (waitpid(child, &status, WNOHANG) == child)
				break;
			if (std::chrono::steady_clock::now() > deadline) {
				kill(child, SIGKILL);
				waitpid(child, &status, 0);
				return ::testing::AssertionFailure() << "consumer did not finish";
			}
		}
	}
	if (!WIFEXITED(status))
		return ::testing::AssertionFailure()
		       << "killed by signal " << WTERMSIG(status)
		       << (WTERMSIG(status) == SIGSYS ? " (a system call!)" : "");
	if (WEXITSTATUS(status) != 0)
		return ::testing::AssertionFailure() << "exit status " << WEXITSTATUS(status);
	return ::testing::AssertionSuccess();
}

// Wait (bounded) for a child to end; past the deadline kill and reap it.
// Returns true if it ended by itself (*status set either way).
inline bool WaitChild(pid_t child, int seconds, int *status)
{
	for (long i = 0; i < seconds * 1000L; i++) {
		if (waitpid(child, status, WNOHANG) == child)
			return true;
		usleep(1000);
	}
	kill(child, SIGKILL);
	waitpid(child, status, 0);
	return false;
}

// Run a command line, returning what it printed (stdout and stderr).
inline std::string RunCommand(const std::string &cmd, int *status)
{
	FILE *p = popen((cmd + " 2>&1").c_str(), "r");
	std::string out;
	char buf[1024];
	while (p && fgets(buf, sizeof(buf), p))
		out += buf;
	*status = p ? pclose(p) : -1;
	return out;
}

} // namespace onering_test

#endif
