/* SPDX-License-Identifier: MIT */
/*
 * Children of the operator tools (onering demo, onering-bench): finding a
 * program at run time, starting it with a readiness pipe, stopping it by
 * pid, and removing the scratch directory it used. Functions return 0 or
 * -errno and print one line saying what failed.
 */
#ifndef ONERING_TOOLS_COMMON_CHILD_H
#define ONERING_TOOLS_COMMON_CHILD_H

#include <sched.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * The path of program name, never compiled in: $env if set (it, or an
 * error: never a silent fallback), else self_dir/name (an installed
 * bindir), self_dir/../build_subdir/name (the build tree), installed (if
 * not NULL), then PATH. -ENOENT: printed with the places tried.
 */
int tool_find_program(const char *self_dir, const char *env, const char *name,
		      const char *build_subdir, const char *installed, char *out, size_t out_size);

/*
 * Run argv[0] (a path) with its output to out_path (NULL: ours), on cpus
 * (NULL: ours), ready_fd (>= 0) as its fd 3; it gets SIGTERM when this
 * process dies. *pid is the child's.
 */
int tool_child_start(char *const argv[], const char *out_path, const cpu_set_t *cpus,
		     int ready_fd, pid_t *pid);

/* Wait up to timeout_ms for the byte 'R' on fd (a child's --ready-fd), then
 * close fd. 0, or -EIO (not ready: it exited, the time passed, or a
 * signal came). */
int tool_child_wait_ready(int fd, int timeout_ms);

/* SIGTERM, reap; SIGKILL after 5 s. The wait status (0 for pid <= 0). */
int tool_child_stop(pid_t pid);

/* Remove dir and the files in it (one level); warns on what stays. */
void tool_remove_dir(const char *dir);

#endif /* ONERING_TOOLS_COMMON_CHILD_H */
