/* SPDX-License-Identifier: MIT */
/*
 * peer_dispatch_eventdev.c: dispatch peers sw-atomic, sw-parallel (event_sw,
 * its service run on the scheduler thread) and dsw-atomic, dsw-parallel
 * (event_dsw, no scheduler thread); docs/benchmarks.md, Dispatch.
 */
#define ALLOW_EXPERIMENTAL_API 1 /* rte_event_maintain() in DPDK 22.11 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_eventdev.h>
#include <rte_lcore.h>
#include <rte_service.h>
#include <rte_service_component.h>

#include "tools/bench/peers.h"

#define STAMP_BITS 40
#define STAMP_MASK ((1ull << STAMP_BITS) - 1)

struct evdev_dispatch {
	struct dispatch_common c;
	bool dsw;
	uint8_t sched_type;
	char name[32];
	bool have_vdev, configured, started, have_service;
	uint8_t dev;
	uint32_t service_id;
};

static void evdev_stop_flush(uint8_t dev_id BENCH_UNUSED, struct rte_event ev BENCH_UNUSED,
			     void *arg)
{
	((struct evdev_dispatch *)arg)->c.leftover++;
}

/* Configure one queue, C + 1 ports (the last the producer's), link, start. */
static int evdev_configure(struct evdev_dispatch *s)
{
	struct rte_event_dev_info info;
	struct rte_event_dev_config dc = { .nb_event_queues = 1 };
	struct rte_event_queue_conf qc;
	uint8_t queue = 0;
	int rc;

	if ((rc = rte_event_dev_info_get(s->dev, &info)) < 0)
		return rc;
	if (s->c.consumers + 1 > info.max_event_ports)
		return bench_fail(-EINVAL, "%s has %u ports at most", s->name, info.max_event_ports);
	dc.nb_event_ports = (uint8_t)(s->c.consumers + 1);
	dc.nb_events_limit = (int32_t)(info.max_num_events >= 0
					       ? RTE_MIN(s->c.inflight, (uint32_t)info.max_num_events)
					       : s->c.inflight);
	dc.nb_event_queue_flows = RTE_MIN(s->c.flows, info.max_event_queue_flows);
	dc.nb_event_port_dequeue_depth = RTE_MIN(DISPATCH_BURST, info.max_event_port_dequeue_depth);
	dc.nb_event_port_enqueue_depth = RTE_MIN(DISPATCH_BURST, info.max_event_port_enqueue_depth);
	dc.dequeue_timeout_ns = info.min_dequeue_timeout_ns;
	if ((rc = rte_event_dev_configure(s->dev, &dc)) < 0)
		return rc;
	s->configured = true;
	if ((rc = rte_event_queue_default_conf_get(s->dev, 0, &qc)) < 0)
		return rc;
	qc.event_queue_cfg = 0;
	qc.schedule_type = s->sched_type;
	qc.nb_atomic_flows = dc.nb_event_queue_flows;
	qc.nb_atomic_order_sequences = dc.nb_event_queue_flows;
	qc.priority = RTE_EVENT_DEV_PRIORITY_NORMAL;
	if ((rc = rte_event_queue_setup(s->dev, 0, &qc)) < 0)
		return rc;
	for (unsigned p = 0; p <= s->c.consumers; p++) {
		/* Every field set; event_port_cfg 0: implicit release on the next dequeue. */
		struct rte_event_port_conf pc = { .new_event_threshold = dc.nb_events_limit,
			.dequeue_depth = (uint16_t)dc.nb_event_port_dequeue_depth,
			.enqueue_depth = (uint16_t)dc.nb_event_port_enqueue_depth };
		if ((rc = rte_event_port_setup(s->dev, (uint8_t)p, &pc)) < 0)
			return rc;
		if (p < s->c.consumers && rte_event_port_link(s->dev, (uint8_t)p, &queue, NULL, 1) != 1)
			return -rte_errno;
	}
	if (!s->dsw) {
		if ((rc = rte_event_dev_service_id_get(s->dev, &s->service_id)) < 0)
			return rc;
		s->have_service = true;
		if (rte_service_runstate_set(s->service_id, 1) < 0 ||
		    rte_service_set_runstate_mapped_check(s->service_id, 0) < 0)
			return -EIO;
	}
	if ((rc = rte_event_dev_stop_flush_callback_register(s->dev, evdev_stop_flush, s)) < 0 ||
	    (rc = rte_event_dev_start(s->dev)) < 0)
		return rc;
	s->started = true;
	return 0;
}

enum { DSW = 1 << 8 }; /* variant: RTE_SCHED_TYPE_* | DSW */

static int dispatch_evdev_setup(struct bench_ctx *ctx, const struct bench_peer_ops *self,
				void *state)
{
	struct evdev_dispatch *s = state;
	static unsigned serial;
	char lcore[16];
	int rc;

	snprintf(lcore, sizeof(lcore), "%d", s->c.sched_cpu);
	if ((rc = bench_eal_start(ctx, lcore, NULL)) < 0)
		return rc;
	s->dsw = self->variant & DSW;
	s->sched_type = (uint8_t)self->variant;
	snprintf(s->name, sizeof(s->name), "%s%u", s->dsw ? "event_dsw" : "event_sw", serial++);
	if ((rc = rte_eal_hotplug_add("vdev", s->name, "")) < 0)
		return bench_fail(rc, "rte_eal_hotplug_add(vdev, %s): %s (is DPDK's "
				  "librte_event_%s in its driver directory?)", s->name,
				  strerror(-rc), s->dsw ? "dsw" : "sw");
	s->have_vdev = true;
	if ((rc = rte_event_dev_get_dev_id(s->name)) < 0)
		return rc;
	s->dev = (uint8_t)rc;
	rc = evdev_configure(s);
	return rc < 0 ? bench_fail(rc, "%s: configuring: %s", s->name, strerror(-rc)) : 0;
}

static int dispatch_evdev_produce(void *state, unsigned thread_idx, void *items, unsigned count)
{
	struct evdev_dispatch *s = state;
	const struct dispatch_event *ev = items;
	struct rte_event evs[DISPATCH_BURST];

	for (unsigned k = 0; k < count; k++)
		evs[k] = (struct rte_event){ .op = RTE_EVENT_OP_NEW, .sched_type = s->sched_type,
			.event_type = RTE_EVENT_TYPE_CPU, .priority = RTE_EVENT_DEV_PRIORITY_NORMAL,
			.flow_id = ev[k].flow, .u64 = ev[k].seq << STAMP_BITS |
						       ((ev[k].stamp_ns - s->c.base_ns) & STAMP_MASK) };
	rte_errno = 0;
	uint16_t done = rte_event_enqueue_new_burst(s->dev, (uint8_t)thread_idx, evs,
						    (uint16_t)count);
	return done == 0 && (rte_errno == EINVAL || rte_errno == -EINVAL) ? -EINVAL : done;
}

static int dispatch_evdev_consume(void *state, unsigned thread_idx, void *items,
				  unsigned max_count)
{
	struct evdev_dispatch *s = state;
	struct dispatch_event *out = items;
	struct rte_event evs[DISPATCH_BURST];

	uint16_t n = rte_event_dequeue_burst(s->dev, (uint8_t)thread_idx, evs, (uint16_t)max_count, 0);
	for (unsigned k = 0; k < n; k++) {
		uint64_t seq = evs[k].u64 >> STAMP_BITS;
		out[k] = (struct dispatch_event){ .flow = evs[k].flow_id, .seq = seq,
						  .idx = seq * s->c.flows + evs[k].flow_id,
						  .stamp_ns = s->c.base_ns + (evs[k].u64 & STAMP_MASK) };
	}
	return n;
}

static int dispatch_evdev_control(void *state, unsigned op, void *arg BENCH_UNUSED)
{
	struct evdev_dispatch *s = state;

	switch (op) {
	case BENCH_OP_THREAD_INIT:
		return rte_thread_register() == 0 ? 0 : -rte_errno;
	case BENCH_OP_THREAD_FINI:
		rte_thread_unregister();
		return 0;
	case DISPATCH_OP_ORDERED:
		return s->sched_type == RTE_SCHED_TYPE_ATOMIC;
	case DISPATCH_OP_SCHEDULE:
		if (s->dsw)
			return -ENOTSUP;
		/* 0: only this thread ever runs the service (no serialisation). */
		return rte_service_run_iter_on_app_lcore(s->service_id, 0);
	case DISPATCH_OP_FLUSH:
	case DISPATCH_OP_MAINTAIN:
		/* Only dsw: a slot reused after dsw keeps dsw's maintain hook. */
		if (s->dsw)
			rte_event_maintain(s->dev, (uint8_t)s->c.consumers,
					   op == DISPATCH_OP_FLUSH ? RTE_EVENT_DEV_MAINT_OP_FLUSH : 0);
		return 0;
	default: /* DRAIN among them: leftovers are counted at rte_event_dev_stop */
		return -ENOTSUP;
	}
}

/* Stop (counting events still inside), close and remove the device. */
static void dispatch_evdev_teardown(struct bench_ctx *ctx BENCH_UNUSED, void *state)
{
	struct evdev_dispatch *s = state;

	if (s->started)
		rte_event_dev_stop(s->dev);
	if (s->configured)
		rte_event_dev_close(s->dev);
	if (s->have_vdev && rte_eal_hotplug_remove("vdev", s->name) < 0)
		fprintf(stderr, "warning: rte_eal_hotplug_remove(vdev, %s) failed\n", s->name);
	if (s->have_service) /* event_sw (22.11) leaves it registered */
		rte_service_component_unregister(s->service_id);
}

#define EVDEV_HOOKS dispatch_evdev_setup, dispatch_evdev_produce, dispatch_evdev_consume, \
	dispatch_evdev_control, dispatch_evdev_teardown
BENCH_PEER(bench_peer_dispatch_sw_atomic, "sw-atomic", "DPDK event_sw, atomic queue (per-flow "
	   "order), service thread", "dpdk", struct evdev_dispatch, RTE_SCHED_TYPE_ATOMIC,
	   EVDEV_HOOKS);
BENCH_PEER(bench_peer_dispatch_sw_parallel, "sw-parallel", "DPDK event_sw, parallel queue, "
	   "service thread", "dpdk", struct evdev_dispatch, RTE_SCHED_TYPE_PARALLEL, EVDEV_HOOKS);
BENCH_PEER(bench_peer_dispatch_dsw_atomic, "dsw-atomic", "DPDK event_dsw, atomic queue "
	   "(per-flow order), no scheduler thread", "dpdk", struct evdev_dispatch,
	   RTE_SCHED_TYPE_ATOMIC | DSW, EVDEV_HOOKS);
BENCH_PEER(bench_peer_dispatch_dsw_parallel, "dsw-parallel", "DPDK event_dsw, parallel queue",
	   "dpdk", struct evdev_dispatch, RTE_SCHED_TYPE_PARALLEL | DSW, EVDEV_HOOKS);
