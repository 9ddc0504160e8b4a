/* SPDX-License-Identifier: MIT */
/*
 * onering notify: post user events to a group (onering_post()), the way a
 * shell script or an operator would, and say whether the broker took them.
 *
 * The group is looked up without being created (onering_group_find()): a
 * mistyped name is an error, not a new group. Posting is asynchronous - the
 * broker decides in its poller whether this client may post to the group,
 * and a post it refuses comes back on the posting queue as a CONTROL record
 * (ONERING_CTL_POST_REFUSED). So that "exit 0" means "taken", the command
 * waits for a fence that is exact, not a timeout:
 *
 *   after the posts it arms a one-shot timer of its own queue (1 ns)
 *   through the same submission ring. The queue's poller handles that ring
 *   in order, so it handles the arm only after every post; a post it
 *   refuses has by then claimed its CONTROL record's slot in this queue's
 *   ring (a refusal that finds the ring full leaves the post, and the arm
 *   behind it, in the submission ring: shm/ring.h back-pressure). A timer
 *   is always homed on its queue's poller, and it fires no earlier than its
 *   arm was handled, so its record takes a later slot of the same ring.
 *   The TIMER record therefore comes after every POST_REFUSED record: when
 *   it arrives, the refusals seen are all there are.
 *
 * No bounded guess is involved: a slow machine only makes the wait longer.
 * The wait ends early only on SIGINT/SIGTERM or the broker's death (exit 1).
 * A group whose backlog is full holds the posts (back-pressure): notify
 * waits for it as any poster would.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

#define NOTIFY_PAYLOAD_MAX 24 /* struct onering_event_user's data */
#define NOTIFY_FENCE_COOKIE 0xfe9ce0000000f00dull

static void notify_usage(void)
{
	printf("usage: onering notify [--name NAME] [--socket-dir DIR] --group G [--flow F]\n"
	       "                      [--cookie C] [--payload TEXT | --hex HEX] [--count N]\n"
	       "Posts a user event (N events, default 1) to group G, which must exist,\n"
	       "and waits until the broker has taken or refused them: exit 0 taken, 1 not\n"
	       "(no such group, or this uid may not post to it: the group's post= setting).\n"
	       "The payload is up to 24 bytes: TEXT as given, or HEX (48 hex digits at most).\n"
	       "F is the flow key (a sticky group keeps a flow on one member), C the\n"
	       "cookie the records carry; both default to 0.\n");
}

/* A decimal (or 0x hex) u64 into *out: 0, or -EINVAL. */
static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* HEX into buf[NOTIFY_PAYLOAD_MAX]: the byte count, or -EINVAL (odd length,
 * not a hex digit) or -E2BIG. */
static int parse_hex(const char *s, unsigned char *buf)
{
	size_t n = strlen(s);

	if (n == 0 || n % 2)
		return -EINVAL;
	if (n / 2 > NOTIFY_PAYLOAD_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n / 2; i++) {
		char byte[3] = {s[2 * i], s[2 * i + 1], '\0'};
		char *end;
		if (byte[0] == '+' || byte[0] == '-' || byte[0] == ' ')
			return -EINVAL;
		buf[i] = (unsigned char)strtoul(byte, &end, 16);
		if (*end)
			return -EINVAL;
	}
	return (int)(n / 2);
}

struct notify_tally {
	long refused_enoent, refused_eacces, refused_other;
	bool fenced;
};

/* Wait (up to wait_ns) for what comes back on q and tally it: 0, or -errno
 * (-ECONNRESET the broker stopped or died). The fence is the last record. */
static int notify_collect(struct onering_queue *q, struct notify_tally *t, int64_t wait_ns)
{
	struct onering_event evs[32];
	int n = onering_wait(q, evs, 1, 32, wait_ns);

	if (n == -EINTR || n == -ETIMEDOUT)
		return 0;
	for (int i = 0; i < n; i++) {
		const struct onering_event *e = &evs[i];
		if (e->kind == ONERING_EV_TIMER && e->cookie == NOTIFY_FENCE_COOKIE)
			t->fenced = true;
		else if (e->kind == ONERING_EV_CONTROL &&
			 e->payload.control.code == ONERING_CTL_SHUTDOWN)
			return -ECONNRESET; /* before the fence: the posts' fate is unknown */
		else if (e->kind == ONERING_EV_CONTROL &&
			 e->payload.control.code == ONERING_CTL_POST_REFUSED) {
			if (e->payload.control.status == -ENOENT)
				t->refused_enoent++;
			else if (e->payload.control.status == -EACCES)
				t->refused_eacces++;
			else
				t->refused_other++;
		}
	}
	return n < 0 ? n : 0;
}

int tool_notify(int argc, char **argv)
{
	static const struct option opts[] = {TOOL_INSTANCE_OPTIONS,
					     {"group", required_argument, NULL, 'g'},
					     {"flow", required_argument, NULL, 'f'},
					     {"cookie", required_argument, NULL, 'c'},
					     {"payload", required_argument, NULL, 'p'},
					     {"hex", required_argument, NULL, 'x'},
					     {"count", required_argument, NULL, 'N'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *prog = "onering notify";
	struct tool_instance inst;
	const char *group = NULL;
	unsigned char data[NOTIFY_PAYLOAD_MAX] = {0};
	size_t len = 0;
	bool have_payload = false;
	uint64_t flow = 0, cookie = 0;
	unsigned count = 1;
	int opt, r;

	tool_instance_init(&inst);
	while ((opt = onering_cli_getopt(prog, argc, argv, "h", opts)) != -1) {
		if (tool_instance_option(&inst, opt, optarg))
			continue;
		switch (opt) {
		case 'g':
			group = optarg;
			break;
		case 'f':
		case 'c':
			if (parse_u64(optarg, opt == 'f' ? &flow : &cookie) < 0)
				return onering_cli_bad_value(prog, opt == 'f' ? "flow" : "cookie", optarg,
							     "expected a number, 0..2^64-1");
			break;
		case 'p':
		case 'x':
			if (have_payload)
				return onering_cli_error(prog, "give one --payload or --hex");
			have_payload = true;
			if (opt == 'p') {
				len = strlen(optarg);
				if (len > NOTIFY_PAYLOAD_MAX)
					return onering_cli_bad_value(prog, "payload", optarg,
								     "at most 24 bytes (a user "
								     "event's payload)");
				memcpy(data, optarg, len);
			} else {
				r = parse_hex(optarg, data);
				if (r < 0)
					return onering_cli_bad_value(prog, "hex", optarg,
								     r == -E2BIG
									     ? "at most 24 bytes (48 hex "
									       "digits: a user event's "
									       "payload)"
									     : "expected hex digits, two "
									       "a byte");
				len = (size_t)r;
			}
			break;
		case 'N':
			if (tool_parse_uint(optarg, 1, 1000000, &count) < 0)
				return onering_cli_bad_value(prog, "count", optarg,
							     "expected a number, 1..1000000");
			break;
		case 'h':
			notify_usage();
			return 0;
		default:
			return ONERING_CLI_USAGE;
		}
	}
	if (optind < argc)
		return onering_cli_extra(prog, argv[optind]);
	if (!group || !onering_name_valid(group))
		return onering_cli_error(prog, "--group NAME is required ([A-Za-z0-9_.-]{1,31})");

	struct onering *att;
	struct onering_queue *q;
	struct onering_queue_options qo = {0};
	struct onering_sub fence;
	uint32_t gid;

	if (tool_group_attach(prog, &inst, group, &att, &gid) != 0)
		return 1;
	r = onering_queue_open(att, &qo, &q);
	if (r == 0)
		r = onering_timer_create(q, NOTIFY_FENCE_COOKIE, &fence);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", prog, onering_strerror(r));
		onering_detach(att);
		return 1;
	}
	signal(SIGINT, tool_on_signal);
	signal(SIGTERM, tool_on_signal);

	struct notify_tally t = {0};
	unsigned posted = 0;
	bool fence_armed = false;
	/* The posts, then the fence behind them. A full submission ring
	 * (-EAGAIN) is back-pressure: take what came back (the broker may be
	 * waiting for a slot for a refusal) and go on once it has room. */
	while (!tool_stop_requested && !t.fenced) {
		if (posted < count)
			r = onering_post(q, gid, flow, data, len, cookie);
		else if (!fence_armed)
			r = onering_timer_arm(q, fence, 1, 0, 0);
		else
			r = -EAGAIN; /* all submitted: wait for the fence */
		if (r == 0) {
			if (posted < count)
				posted++;
			else
				fence_armed = true;
			continue;
		}
		if (r != -EAGAIN)
			break;
		r = notify_collect(q, &t, 100 * 1000 * 1000);
		if (r < 0)
			break;
	}
	long refused = t.refused_enoent + t.refused_eacces + t.refused_other;
	int status = 0;
	if (!t.fenced) {
		if (tool_stop_requested)
			fprintf(stderr, "%s: interrupted after %u of %u posts; the broker's answer to "
				"them is not known\n", prog, posted, count);
		else
			fprintf(stderr, "%s: %s\n", prog, onering_strerror(r));
		status = 1;
	} else if (refused) {
		if (t.refused_eacces)
			fprintf(stderr, "%s: group \"%s\" on \"%s\": uid %u may not post to it "
				"(%ld of %u posts refused); the group's post= setting says who "
				"may (oneringd --group %s:post=...+%u)\n", prog, group, inst.name,
				(unsigned)geteuid(), t.refused_eacces, count, group, (unsigned)geteuid());
		if (t.refused_enoent)
			fprintf(stderr, "%s: group \"%s\" on \"%s\": no such group any more (%ld of "
				"%u posts refused): it ended with its last member\n", prog, group,
				inst.name, t.refused_enoent, count);
		if (t.refused_other)
			fprintf(stderr, "%s: group \"%s\": %ld posts refused\n", prog, group,
				t.refused_other);
		status = 1;
	}
	onering_detach(att);
	return status;
}
