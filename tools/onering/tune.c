/* SPDX-License-Identifier: MIT */
/*
 * onering tune: look up, create or change a group's balancing at run time
 * (one GROUP request). Members stay attached; the broker applies the new
 * settings to every decision it makes after the reply.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tool.h"

static void tune_usage(void)
{
	printf("usage: onering tune [--name NAME] [--socket-dir DIR] --group GROUP "
	       "[--create] SETTING...\n"
	       "  policy=rr|least|sticky|lifo|local\n"
	       "  numa=strict|interleave|spill:P     (P: percent full, 1..100)\n"
	       "  wake=lifo|fifo|rr|local-first\n"
	       "  max_running=N                       (lifo; 0 = the CPU count)\n"
	       "  backlog=N                           (records held per poller)\n"
	       "Without settings it prints the group's current ones. Clients stay\n"
	       "attached; every decision the broker makes after this command returns\n"
	       "uses the new settings (records waiting in the group's backlog too).\n"
	       "--create makes the group if it does not exist yet.\n");
}

int tool_tune(int argc, char **argv)
{
	static const struct option opts[] = {TOOL_INSTANCE_OPTIONS,
					     {"group", required_argument, NULL, 'g'},
					     {"create", no_argument, NULL, 'c'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct tool_instance inst;
	const char *group = NULL;
	bool create = false;
	struct onering_msg m, rep;
	char err[512];
	int opt, r;

	tool_instance_init(&inst);
	while ((opt = onering_cli_getopt("onering tune", argc, argv, "h", opts)) != -1) {
		if (tool_instance_option(&inst, opt, optarg))
			continue;
		switch (opt) {
		case 'g':
			group = optarg;
			break;
		case 'c':
			create = true;
			break;
		case 'h':
			tune_usage();
			return 0;
		default:
			return 2;
		}
	}
	if (!group || !onering_name_valid(group)) {
		fprintf(stderr, "onering tune: --group NAME is required ([A-Za-z0-9_.-]{1,31})\n");
		return 2;
	}
	onering_msg_init(&m, ONERING_MSG_GROUP, 1);
	memcpy(m.u.group.name, group, strlen(group) + 1);
	m.u.group.flags = create ? 0 : ONERING_GROUP_NO_CREATE;
	for (int i = optind; i < argc; i++)
		if (onering_group_setting_parse(&m.u.group, argv[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "onering tune: %s\n", err);
			return 2;
		}
	r = tool_call(&inst, &m, &rep, NULL, NULL, err, sizeof(err));
	if (r < 0) {
		char why[ONERING_MSG_SIZE];
		bool answered = rep.type == (ONERING_MSG_GROUP | ONERING_MSG_REPLY);
		if (answered && r == -ENOENT)
			fprintf(stderr, "onering tune: group \"%s\" on \"%s\": no such group (use "
				"--create to make it)\n", group, inst.name);
		else if (answered && r == -EINVAL)
			fprintf(stderr, "onering tune: group \"%s\" on \"%s\": the broker refused "
				"these settings%s%s\n", group, inst.name,
				onering_msg_reason(&rep, why, sizeof(why)) ? ": " : "", why);
		else
			fprintf(stderr, "onering tune: %s\n", err);
		return 1;
	}
	const struct onering_msg_group *g = &rep.u.group;
	printf("group %u \"%s\": policy=%s numa=%s", g->group_id, group,
	       onering_policy_name(g->policy), onering_numa_name(g->numa));
	if (g->numa == ONERING_NUMA_SPILL)
		printf(":%u", g->spill_pct);
	printf(" wake=%s max_running=%u backlog=%u members=%u\n", onering_wake_name(g->wake),
	       g->max_running, g->backlog_max, g->members);
	return 0;
}
