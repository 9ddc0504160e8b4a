/* SPDX-License-Identifier: MIT */
/*
 * peer_nic_onering.c: nic peer "onering": a per-measurement oneringd with
 * the same vdev delivering to group "bn"; the consumer polls a queue there
 * (docs/benchmarks.md, NIC receive).
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include <rte_eal.h>

#include "client/onering.h"
#include "shm/proto.h"
#include "tools/bench/peers.h"

#define GROUP "bn"

struct nic_onering {
	struct nic_common c;
	struct onering *att;
	struct onering_queue *q;
	char prefix[48];
};

static int nic_onering_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self BENCH_UNUSED,
			     void *state)
{
	struct nic_onering *s = state;
	char vdev[64], port[96], cpu[16];

	snprintf(s->prefix, sizeof(s->prefix), "onering-bn-%ld", (long)getpid());
	snprintf(vdev, sizeof(vdev), NIC_VDEV ",size=%u,copy=%d", NIC_PKT_SIZE, s->c.copy);
	snprintf(port, sizeof(port), NIC_VDEV ":group=" GROUP ",snaplen=%u", NIC_SNAPLEN);
	snprintf(cpu, sizeof(cpu), "%d", s->c.rx_cpu);
	const char *eal[] = { "--no-huge", "--no-pci", "--no-shconf", "-m", "512", "--file-prefix",
			      s->prefix, "--vdev", vdev, NULL };
	const char *extra[] = { "--port", port, "--cores", cpu, "--control-core", cpu, NULL };
	return bench_onering_open(ctx, &s->c.broker, eal, extra, NULL, &s->att, NULL);
}

static int nic_onering_consume(void *state, unsigned side BENCH_UNUSED, void *items BENCH_UNUSED,
			       unsigned count BENCH_UNUSED)
{
	struct nic_onering *s = state;
	const struct onering_event *ev;
	uint64_t sum = 0;
	/* Zero-copy: the records and their bytes where they are, given back
	 * after (as the floor frees its mbufs after touching them). */
	int n = onering_peek(s->q, &ev, NIC_TAKE);
	for (int i = 0; i < n; i++) {
		uint32_t len = 0;
		const void *p = onering_event_packet(s->q, &ev[i], &len);
		if (!p || len != NIC_SNAPLEN)
			return bench_fail(-EPROTO, "onering record of kind %u: %s (len %u, "
					  "expected %u)", ev[i].kind,
					  p ? "wrong length" : "no packet bytes", len, NIC_SNAPLEN);
		sum += nic_touch(p, len);
	}
	if (n > 0)
		onering_advance(s->q, (unsigned)n);
	s->c.sink += sum;
	return n;
}

/* One item of a STATS answer: rx queue 0's counters, poller 0's loops. */
static int stats_item(const struct onering_msg *m, void *arg)
{
	const struct onering_msg_stats_item *it = &m->u.stats_item;
	struct nic_counters *k = arg;

	if (it->id == 0 && it->what == ONERING_STATS_RXQ) {
		k->received = it->counter[ONERING_RXQC_RECEIVED];
		k->dropped = it->counter[ONERING_RXQC_DROPPED];
	} else if (it->id == 0 && it->what == ONERING_STATS_POLLER) {
		k->loops = it->counter[ONERING_PC_LOOPS];
	}
	return 0;
}

static int nic_onering_control(void *state, unsigned op, void *arg)
{
	struct nic_onering *s = state;
	struct nic_counters *k = arg;
	struct onering_queue_options qo = { .capacity = s->c.capacity, .group = GROUP,
					    .packet_snap = NIC_SNAPLEN };
	int rc;

	switch (op) {
	case BENCH_OP_THREAD_INIT:
		rc = onering_queue_open(s->att, &qo, &s->q);
		return rc < 0 ? bench_fail(rc, "onering_queue_open: %s (%s)", onering_strerror(rc),
					   onering_last_error(s->att)) : 0;
	case BENCH_OP_THREAD_FINI:
		return 0; /* closed by teardown: the close waits for the broker */
	case NIC_OP_COUNTERS: /* from a STATS request; -EIO: no rx queue 0 in the answer */
		*k = (struct nic_counters){ .received = UINT64_MAX };
		rc = bench_broker_stats(&s->c.broker, stats_item, k);
		return rc < 0 ? rc : k->received == UINT64_MAX ? -EIO : 0;
	default:
		return -EINVAL;
	}
}

static void nic_onering_teardown(struct bench_ctx *ctx, void *state)
{
	struct nic_onering *s = state;

	char dir[PATH_MAX], broker_dir[PATH_MAX + 64];

	bench_onering_close(ctx, &s->c.broker, &s->att, &s->q);
	/* The broker's EAL runtime directory, next to ours, outlives it. */
	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	snprintf(broker_dir, sizeof(broker_dir), "%s/%s", dirname(dir), s->prefix);
	if (access(broker_dir, F_OK) == 0)
		tool_remove_dir(broker_dir);
}

BENCH_PEER(bench_peer_nic_onering, "onering",
	   "oneringd's poller -> a queue with a packet area -> onering_poll()", NULL,
	   struct nic_onering, 0, nic_onering_setup, NULL, nic_onering_consume,
	   nic_onering_control, nic_onering_teardown);
