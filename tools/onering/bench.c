/* SPDX-License-Identifier: MIT */
/*
 * onering bench: the benchmarks are their own program, onering-bench
 * (tools/bench/); this command runs it with the arguments given, found
 * beside this program (the build tree, or the install's bindir), else on
 * PATH. It replaces this process: its exit status is onering-bench's.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

#define BENCH_PROGRAM "onering-bench"

int tool_bench(int argc, char **argv)
{
	static char program[] = BENCH_PROGRAM;
	char dir[PATH_MAX] = ".", path[PATH_MAX + sizeof("/" BENCH_PROGRAM)];

	(void)argc;
	argv[0] = program; /* argv ends with its NULL: onering-bench ARGS... */
	if (tool_self_dir(dir, sizeof(dir)) == 0) {
		snprintf(path, sizeof(path), "%s/%s", dir, BENCH_PROGRAM);
		if (access(path, X_OK) == 0) {
			execv(path, argv);
			fprintf(stderr, "onering bench: cannot run %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	execvp(BENCH_PROGRAM, argv);
	if (errno == ENOENT)
		fprintf(stderr, "onering bench: %s is not installed: it was not found beside %s/onering "
			"nor on PATH (build it with meson -Dbenchmarks=true)\n", BENCH_PROGRAM, dir);
	else
		fprintf(stderr, "onering bench: cannot run %s: %s\n", BENCH_PROGRAM, strerror(errno));
	return 1;
}
