/* SPDX-License-Identifier: MIT */
/*
 * peer_dispatch_onering.c: dispatch peers "onering-POLICY" (rr, least,
 * sticky, lifo, local) over a per-measurement oneringd with --group
 * bench:policy=POLICY; docs/benchmarks.md, Dispatch.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client/onering.h"
#include "tools/bench/peers.h"

#define GROUP "bench"
#define WAIT_NS 1000000ll  /* onering_wait timeout: see stop that often */
#define DRAIN_NS 2000000ll

struct user_data {
	uint64_t stamp_ns, seq, idx;
};
ONERING_STATIC_ASSERT(sizeof(struct user_data) == 24, "fills payload.user.data");

struct onering_dispatch {
	struct dispatch_common c;
	const char *policy;
	struct onering *att;
	uint32_t gid;
	struct onering_queue *q[DISPATCH_MAX_CONSUMERS + 1]; /* [consumers]: the producer's */
};

/* variant: the policy's name. */
static int dispatch_onering_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self,
				  void *state)
{
	struct onering_dispatch *s = state;
	const char *policy = (const char *)self->variant;
	char cpu[16], group[64];
	int rc;

	snprintf(cpu, sizeof(cpu), "%d", s->c.sched_cpu);
	snprintf(group, sizeof(group), GROUP ":policy=%s", policy);
	const char *extra[] = { "--cores", cpu, "--control-core", cpu, "--group", group, NULL };
	s->policy = policy;
	if ((rc = bench_onering_open(ctx, &s->c.broker, NULL, extra, NULL, &s->att, NULL)) < 0)
		return rc;
	rc = onering_group_id(s->att, GROUP, &s->gid);
	return rc < 0 ? bench_fail(rc, "onering_group_id(%s): %s", GROUP, onering_strerror(rc)) : 0;
}

static int dispatch_onering_produce(void *state, unsigned thread_idx, void *items,
				    unsigned count)
{
	struct onering_dispatch *s = state;
	const struct dispatch_event *ev = items;
	struct onering_user_event burst[DISPATCH_BURST];

	for (unsigned k = 0; k < count; k++) {
		struct user_data d = { .stamp_ns = ev[k].stamp_ns, .seq = ev[k].seq, .idx = ev[k].idx };
		burst[k] = (struct onering_user_event){ .flow = ev[k].flow, .cookie = ev[k].idx,
							.len = sizeof(d) };
		memcpy(burst[k].data, &d, sizeof(d));
	}
	return onering_post_burst(s->q[thread_idx], s->gid, burst, count);
}

static int dispatch_onering_consume(void *state, unsigned thread_idx, void *items,
				    unsigned max_count)
{
	struct onering_dispatch *s = state;
	struct dispatch_event *out = items;
	struct onering_event evs[DISPATCH_BURST];
	struct user_data d;

	int n = s->c.consume_poll ? onering_poll(s->q[thread_idx], evs, max_count)
				  : onering_wait(s->q[thread_idx], evs, 1, max_count, WAIT_NS);
	if (n == -EINTR)
		return 0;
	for (int k = 0; k < n; k++) {
		memcpy(&d, evs[k].payload.user.data, sizeof(d));
		bool ours = evs[k].kind == ONERING_EV_USER && evs[k].cookie == d.idx;
		out[k] = (struct dispatch_event){ .flow = evs[k].payload.user.flow, .seq = d.seq,
						  .idx = ours ? d.idx : UINT64_MAX,
						  .stamp_ns = d.stamp_ns };
	}
	return n;
}

static int dispatch_onering_control(void *state, unsigned op, void *arg)
{
	struct onering_dispatch *s = state;
	struct onering_queue_options qo = { 0 };
	struct onering_event evs[DISPATCH_BURST];
	unsigned idx = arg ? *(const unsigned *)arg : 0;
	int rc, n, extra = 0;

	switch (op) {
	case BENCH_OP_THREAD_INIT:
		if (idx < s->c.consumers) {
			qo.capacity = s->c.capacity;
			qo.group = GROUP;
		} else {
			qo.sq_capacity = s->c.sq_capacity;
		}
		rc = onering_queue_open(s->att, &qo, &s->q[idx]);
		return rc < 0 ? bench_fail(rc, "onering_queue_open: %s (%s)", onering_strerror(rc),
					   onering_last_error(s->att)) : 0;
	case BENCH_OP_THREAD_FINI:
		if (s->q[idx])
			onering_queue_close(s->q[idx]);
		return 0;
	case DISPATCH_OP_ORDERED:
		return strcmp(s->policy, "sticky") == 0;
	case DISPATCH_OP_BLOCKS:
		return !s->c.consume_poll;
	case DISPATCH_OP_DRAIN:
		while ((n = onering_wait(s->q[idx], evs, 1, DISPATCH_BURST, DRAIN_NS)) > 0)
			extra += n;
		return extra;
	default:
		return -ENOTSUP;
	}
}

static void dispatch_onering_teardown(struct bench_ctx *ctx, void *state)
{
	struct onering_dispatch *s = state;

	bench_onering_close(ctx, &s->c.broker, &s->att, NULL);
}

#define POLICY_PEER(policy, text)                                                               \
	BENCH_PEER(bench_peer_dispatch_onering_##policy, "onering-" #policy, text, NULL,        \
		   struct onering_dispatch, #policy, dispatch_onering_setup,                    \
		   dispatch_onering_produce, dispatch_onering_consume, dispatch_onering_control, \
		   dispatch_onering_teardown)
POLICY_PEER(rr, "group policy round-robin");
POLICY_PEER(least, "group policy least-loaded");
POLICY_PEER(sticky, "group policy sticky (per-flow order)");
POLICY_PEER(lifo, "group policy lifo (last idle consumer first)");
POLICY_PEER(local, "group policy local (same node)");
