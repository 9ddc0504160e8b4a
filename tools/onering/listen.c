/* SPDX-License-Identifier: MIT */
/*
 * onering listen: join a group as one more member and print the user
 * events it is given (onering notify's other end; `tail --group` also
 * prints packets). It never creates the group: it looks the group up first
 * (onering_group_find()) and joins it only if it exists.
 *
 * The race, documented: a group made at run time ends with its last
 * member. If that happens between the look-up and the join, the join makes
 * a new group of that name with the broker's defaults, of which this
 * command is the only member; it ends again when listen exits. Configured
 * groups (oneringd --group) never end, so for them there is no race.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "tool.h"

int tool_group_attach(const char *prog, const struct tool_instance *inst, const char *group,
		      struct onering **att, uint32_t *gid)
{
	/* A tool ends with its broker: no waiting for another. */
	struct onering_attach_options ao = {
		.name = inst->name, .socket_dir = inst->dir, .flags = ONERING_ATTACH_NO_RECOVER};
	int r = onering_attach_opts(&ao, att);

	if (r < 0) {
		fprintf(stderr, "%s: %s\n", prog, onering_last_error(NULL));
		return 1;
	}
	r = onering_group_find(*att, group, gid);
	if (r == 0)
		return 0;
	if (r == -ENOENT)
		fprintf(stderr, "%s: group \"%s\" on \"%s\": no such group (oneringd --group "
			"%s:..., or a member that joins it, makes it)\n", prog, group, inst->name,
			group);
	else
		fprintf(stderr, "%s: group \"%s\" on \"%s\": %s\n", prog, group, inst->name,
			onering_strerror(r));
	onering_detach(*att);
	return 1;
}

static void listen_usage(void)
{
	printf("usage: onering listen [--name NAME] [--socket-dir DIR] --group G [--count N]\n"
	       "                      [--seconds S]\n"
	       "Joins group G (which must exist) as one more member and prints each user\n"
	       "event it is given: time, flow, cookie, payload (text when printable, else\n"
	       "hex). Prints \"listening ...\" once it has joined; stops after N events, S\n"
	       "seconds, or on SIGINT/SIGTERM. The group's join= setting says who may.\n");
}

int tool_listen(int argc, char **argv)
{
	static const struct option opts[] = {TOOL_INSTANCE_OPTIONS,
					     {"group", required_argument, NULL, 'g'},
					     {"count", required_argument, NULL, 'c'},
					     {"seconds", required_argument, NULL, 'S'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *prog = "onering listen";
	struct tool_instance inst;
	struct onering_queue_options qo = {.group = NULL, .packet_snap = 0};
	long count = -1, seconds = -1;
	int opt, r;

	tool_instance_init(&inst);
	while ((opt = onering_cli_getopt(prog, argc, argv, "h", opts)) != -1) {
		if (tool_instance_option(&inst, opt, optarg))
			continue;
		switch (opt) {
		case 'g':
			qo.group = optarg;
			break;
		case 'c':
		case 'S':
			if (tool_parse_bound(prog, opt, optarg, &count, &seconds) < 0)
				return ONERING_CLI_USAGE;
			break;
		case 'h':
			listen_usage();
			return 0;
		default:
			return ONERING_CLI_USAGE;
		}
	}
	if (optind < argc)
		return onering_cli_extra(prog, argv[optind]);
	if (!qo.group || !onering_name_valid(qo.group))
		return onering_cli_error(prog, "--group NAME is required ([A-Za-z0-9_.-]{1,31})");

	struct onering *att;
	struct onering_queue *q;
	uint32_t gid;

	if (tool_group_attach(prog, &inst, qo.group, &att, &gid) != 0)
		return 1;
	r = onering_queue_open(att, &qo, &q);
	if (r < 0) {
		const char *why = onering_last_error(att);
		fprintf(stderr, "%s: group \"%s\" on \"%s\": %s%s\n", prog, qo.group, inst.name,
			*why ? why : onering_strerror(r),
			r == -EPERM ? " (the group's join= setting says who may join)" : "");
		onering_detach(att);
		return 1;
	}
	/* Before "listening": whoever waits for that line may signal at once. */
	signal(SIGINT, tool_on_signal);
	signal(SIGTERM, tool_on_signal);
	printf("listening on group \"%s\" (id %u) of \"%s\"\n", qo.group, onering_queue_group(q),
	       inst.name);
	fflush(stdout);
	uint64_t t0 = tool_now_ns(), end = seconds >= 0 ? t0 + (uint64_t)seconds * 1000000000ull : 0;
	long printed = 0;
	int status = 0;
	struct onering_event evs[32];
	while (!tool_stop_requested && (count < 0 || printed < count)) {
		int n = tool_wait_until(q, evs, 32, end);
		if (n == -ETIMEDOUT)
			break;
		if (n < 0) {
			fprintf(stderr, "%s: %s\n", prog, onering_strerror(n));
			status = 1;
			break;
		}
		for (int i = 0; i < n && (count < 0 || printed < count); i++)
			if (evs[i].kind == ONERING_EV_USER) {
				tool_print_group_record(q, &evs[i], t0);
				printed++;
			}
		fflush(stdout);
	}
	onering_detach(att);
	return status;
}
