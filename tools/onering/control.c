/* SPDX-License-Identifier: MIT */
/*
 * How the onering command reaches a broker: one connection per request,
 * through shm/proto.c's handshake and request/reply (the ones libonering's
 * attach goes through too). stat and tune need no queue, so they do not
 * attach; tail and demo do, through libonering.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

int tool_counters_open(const struct tool_instance *inst, struct onering_seg *seg, char *err,
		       size_t err_size)
{
	char path[256];
	int fd, r;

	memset(seg, 0, sizeof(*seg));
	seg->fd = -1;
	r = onering_socket_path(inst->name, inst->dir, path, sizeof(path));
	if (r < 0) {
		snprintf(err, err_size, "bad instance name \"%s\" or socket directory", inst->name);
		return r;
	}
	r = onering_proto_counters(path, inst->name, -1, &fd, err, err_size);
	if (r < 0)
		return r;
	/* A segment its sender could still shrink would kill us with SIGBUS
	 * mid-read; one it could be written through is not what it says. */
	int seals = fcntl(fd, F_GET_SEALS);
	int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE;
	if (seals < 0 || (seals & need) != need) {
		snprintf(err, err_size, "broker \"%s\": its counters segment is not sealed "
			 "(seals 0x%x, want 0x%x): not read", inst->name, seals, need);
		close(fd);
		return -EPROTO;
	}
	r = onering_seg_attach(seg, fd, ONERING_SEG_COUNTERS, false, err, err_size);
	if (r < 0)
		close(fd);
	return r;
}

int tool_counters_read(const struct tool_instance *inst, const struct onering_seg *seg,
		       struct onering_metrics *m, char *err, size_t err_size)
{
	char why[384];
	int r = onering_metrics_read(seg->base, seg->size, m, why, sizeof(why));

	if (r < 0)
		snprintf(err, err_size, "broker \"%s\": %s", inst->name, why);
	return r;
}

bool tool_counters_gone(const struct onering_metrics *m)
{
	return m->state == ONERING_COUNTERS_STOPPED ||
	       (m->pid && kill((pid_t)m->pid, 0) < 0 && errno == ESRCH);
}

int tool_counters_fetch(const struct tool_instance *inst, struct onering_metrics *m, char *err,
			size_t err_size)
{
	struct onering_seg seg;
	int r = tool_counters_open(inst, &seg, err, err_size);

	if (r < 0)
		return r;
	r = tool_counters_read(inst, &seg, m, err, err_size);
	onering_seg_destroy(&seg);
	return r;
}
