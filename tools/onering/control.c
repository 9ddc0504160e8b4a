/* SPDX-License-Identifier: MIT */
/*
 * How the onering command reaches a broker: one connection per request,
 * through shm/proto.c's handshake and request/reply (the ones libonering's
 * attach goes through too). stat and tune need no queue, so they do not
 * attach; tail and demo do, through libonering.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

int tool_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;

	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *s == '+' || v < min || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

void tool_instance_init(struct tool_instance *inst)
{
	inst->name = getenv("ONERING_NAME");
	if (!inst->name || !*inst->name)
		inst->name = "default";
	inst->dir = NULL;
}

bool tool_instance_option(struct tool_instance *inst, int opt, const char *arg)
{
	if (opt == 'n')
		inst->name = arg;
	else if (opt == 'd')
		inst->dir = arg;
	else
		return false;
	return true;
}

int tool_call(const struct tool_instance *inst, struct onering_msg *req, struct onering_msg *rep,
	      int (*item)(const struct onering_msg *msg, void *arg), void *arg, char *err,
	      size_t err_size)
{
	char path[256];
	int sock, r;

	memset(rep, 0, sizeof(*rep)); /* type 0: no answer (tune tells them apart) */
	r = onering_socket_path(inst->name, inst->dir, path, sizeof(path));
	if (r < 0) {
		snprintf(err, err_size, "bad instance name \"%s\" or socket directory", inst->name);
		return r;
	}
	r = onering_proto_connect(path, inst->name, -1, &sock, NULL, err, err_size);
	if (r < 0)
		return r;
	r = onering_proto_call(sock, req, rep, item, arg, 5000);
	close(sock);
	if (r < 0) {
		char why[ONERING_MSG_SIZE];
		snprintf(err, err_size, "broker \"%s\": %s", inst->name,
			 r == -ETIMEDOUT ? "no answer within 5 s"
			 : onering_msg_reason(rep, why, sizeof(why)) ? why
								      : strerror(-r));
	}
	return r;
}

static int stats_keep(const struct onering_msg *msg, void *arg)
{
	struct tool_stats *s = arg;
	void *t = realloc(s->items, (s->n + 1) * sizeof(*s->items));

	if (!t)
		return -ENOMEM;
	s->items = t;
	memcpy(&s->items[s->n++], msg->u.raw, sizeof(union tool_stats_item));
	return 0;
}

int tool_stats_fetch(const struct tool_instance *inst, struct tool_stats *out, char *err,
		     size_t err_size)
{
	struct onering_msg req, rep;
	int r;

	out->items = NULL;
	out->n = 0;
	onering_msg_init(&req, ONERING_MSG_STATS, 2);
	r = tool_call(inst, &req, &rep, stats_keep, out, err, err_size);
	if (r < 0) {
		free(out->items);
		out->items = NULL;
		out->n = 0;
	}
	return r;
}
