/* SPDX-License-Identifier: MIT */
/* Children of the operator tools (child.h). */
#include "tools/common/child.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int tool_find_program(const char *self_dir, const char *env, const char *name,
		      const char *build_subdir, const char *installed, char *out, size_t out_size)
{
	char tried[5][PATH_MAX];
	const char *path = getenv("PATH");
	const char *e = env ? getenv(env) : NULL;

	snprintf(tried[0], sizeof(tried[0]), "$%s%s%s", env, e ? "=" : " (unset)", e ? e : "");
	if (e && *e) {
		snprintf(out, out_size, "%s", e);
		if (access(e, X_OK) == 0)
			return 0;
		fprintf(stderr, "$%s=%s is not an executable\n", env, e);
		return -ENOENT;
	}
	snprintf(tried[1], sizeof(tried[1]), "%s/%s", self_dir, name);
	snprintf(tried[2], sizeof(tried[2]), "%s/../%s/%s", self_dir, build_subdir, name);
	snprintf(tried[3], sizeof(tried[3]), "%s", installed ? installed : "");
	for (int i = 1; i < 4; i++)
		if (tried[i][0] && access(tried[i], X_OK) == 0) {
			snprintf(out, out_size, "%s", tried[i]);
			return 0;
		}
	snprintf(tried[4], sizeof(tried[4]), "%s in PATH", name);
	while (path && *path) {
		size_t len = strcspn(path, ":");
		snprintf(out, out_size, "%.*s/%s", (int)len, path, name);
		if (len && access(out, X_OK) == 0)
			return 0;
		path += len + (path[len] == ':');
	}
	fprintf(stderr, "%s not found; tried %s, %s, %s%s%s, %s\n", name, tried[0], tried[1],
		tried[2], installed ? ", " : "", tried[3], tried[4]);
	return -ENOENT;
}

int tool_child_start(char *const argv[], const char *out_path, const cpu_set_t *cpus,
		     int ready_fd, pid_t *pid)
{
	pid_t parent = getpid();

	*pid = fork();
	if (*pid < 0) {
		fprintf(stderr, "fork: %s\n", strerror(errno));
		return -errno;
	}
	if (*pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		if (cpus)
			sched_setaffinity(0, sizeof(*cpus), cpus);
		if (ready_fd == 3)
			fcntl(3, F_SETFD, 0); /* dup2(3, 3) would keep FD_CLOEXEC */
		else if (ready_fd >= 0 && dup2(ready_fd, 3) < 0)
			_exit(127);
		int fd = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
				  : -1;
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return 0;
}

int tool_child_wait_ready(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char c = 0;
	/* A signal (^C) ends the wait too: the caller's handler decides. */
	bool ready = poll(&pfd, 1, timeout_ms) == 1 && read(fd, &c, 1) == 1 && c == 'R';
	close(fd);
	return ready ? 0 : -EIO;
}

int tool_child_stop(pid_t pid)
{
	int status = 0;

	if (pid <= 0)
		return 0;
	kill(pid, SIGTERM);
	for (int i = 0;; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			break;
		if (i == 500) {
			fprintf(stderr, "pid %d ignored SIGTERM for 5 s: SIGKILL\n", (int)pid);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	return status;
}

void tool_remove_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
				snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
				unlink(path);
			}
		closedir(d);
	}
	if (rmdir(dir) && errno != ENOENT)
		fprintf(stderr, "warning: cannot remove %s: %s\n", dir, strerror(errno));
}
