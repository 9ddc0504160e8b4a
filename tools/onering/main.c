/* SPDX-License-Identifier: MIT */
/*
 * onering: the operator command. One file per command (tools/onering/),
 * this table of them, and the usage that the table prints.
 *
 *   onering bench ARGS...                  run onering-bench (the benchmarks)
 *   onering demo [--seconds N]             a bounded, self-cleaning tour
 *   onering doctor [--cores L] [--json]    what on this host to fix, and how
 *   onering listen [--name N] --group G    print the user events of a group
 *   onering notify [--name N] --group G [--payload TEXT]   post a user event
 *   onering stat [--name N] [--json]       broker, poller, queue, group counters
 *   onering tail [--name N] SOURCES        print events as they come
 *   onering top [--name N]                 a live view of pollers, queues, groups
 *   onering topo [--synthetic D] [--json]  the placement plan
 *   onering tune [--name N] --group G SETTING...   change a group at run time
 *   onering version
 *
 * No command or an unknown one: usage on stderr, exit 2; -h/--help: usage
 * on stdout, exit 0.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static int tool_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("onering %s (shared-memory ABI %u.%u, control protocol %u)\n", ONERING_PKG_VERSION,
	       ONERING_ABI_MAJOR, ONERING_ABI_MINOR, ONERING_PROTO_VERSION);
	return 0;
}

static const struct tool_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help; /* one line */
} commands[] = {
	{"bench", tool_bench, "run the benchmarks: onering-bench ARGS... (--help for its own)"},
	{"demo", tool_demo, "start a private broker, watch four kinds of fd, print events; bounded"},
	{"doctor", tool_doctor, "check this host: hugepages, isolcpus, governor, limits, ... (--json)"},
	{"listen", tool_listen, "join a group and print the user events it is given (notify's other end)"},
	{"notify", tool_notify, "post a user event to a group and say whether the broker took it"},
	{"stat", tool_stat, "counters of a running broker (--json; --list-counters explains them)"},
	{"tail", tool_tail, "print events of given fds, a listening port or a group as they come"},
	{"top", tool_top, "a live view: pollers' busy %, queues' and groups' rates (q, v, s)"},
	{"topo", tool_topo, "NUMA nodes and the placement plan (--synthetic DESC, --json)"},
	{"tune", tool_tune, "change a group's balancing at run time (policy=, numa=, wake=, ...)"},
	{"version", tool_version, "the versions of this tool, the ABI and the control protocol"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: onering COMMAND [options]\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "Each command takes --help.\n");
}

int tool_self_dir(char *dir, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0)
		return -errno;
	self[n] = '\0';
	return snprintf(dir, len, "%s", dirname(self)) < (int)len ? 0 : -ENAMETOOLONG;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		usage(stderr);
		return onering_cli_error("onering", "no command given");
	}
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0)
		cmd = "version";
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	usage(stderr);
	if (cmd[0] == '-')
		return onering_cli_error("onering", "unknown option \"%s\"", cmd);
	return onering_cli_error("onering", "unknown command \"%s\"", cmd);
}
