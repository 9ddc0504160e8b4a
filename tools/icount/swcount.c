/* SPDX-License-Identifier: MIT */
/*
 * onering-icount-sw [CONSUMERS [TYPE [ROUNDS [CQ_DEPTH]]]]: DPDK event_sw
 * doing the work that oneringd's submit_poll + deliver_flush do in
 * onering-icount post, in one thread, to be run under callgrind for
 * instructions per event of event_sw's scheduler, its enqueue and its
 * dequeue (docs/benchmarks.md, Instructions per event).
 *
 * One event_sw device (vdev event_sw0, EAL with --no-huge --no-pci
 * --no-shconf as tools/bench/peer_dispatch_eventdev.c), one load-balanced
 * queue of TYPE (parallel, default, or atomic), CONSUMERS ports linked to it
 * (1 to 8, default 1), each with CQ_DEPTH (default 64, two bursts; 32 to 128)
 * places, and one producer port. Each of ROUNDS rounds (default 10,000):
 *   1. swcount_enqueue(): one burst of 32 NEW events (8-byte payload; flow
 *      ids counting up over 1,024 flows) on the producer port;
 *   2. the scheduler: rte_service_run_iter_on_app_lcore() on event_sw's
 *      service, once;
 *   3. swcount_dequeue(): each consumer port dequeued in bursts of 32 until a
 *      call returns nothing. Ports are set up with implicit release, so that
 *      last, empty call hands the port's RELEASEs back to the scheduler
 *      (credits; the atomic flows' unpinning), as a worker's next dequeue
 *      would.
 * If a round's 32 events are not all out after that, 2 and 3 repeat (each
 * repeat is counted and printed: service runs per round > 1 means the
 * scheduler did not move a whole burst in one run). The RELEASEs of round k
 * are scheduled in round k+1's service run, so each run drains 32 NEWs and 32
 * RELEASEs in the steady state.
 *
 * Why CQ_DEPTH 64: event_sw keeps its own count of each consumer ring's room,
 * taken when it last pushed to that ring. With a ring of 32, one port and
 * bursts of 32 that count is 0 after every push, so every round needs a
 * second service run (the first moves nothing out, only refreshes the count):
 * onering-icount-sw 1 parallel 10000 32 shows it.
 *
 * Count with (from the build directory's parent; valgrind follows nothing,
 * all is in this one process):
 *   valgrind --tool=callgrind --callgrind-out-file=cg.sched \
 *     --toggle-collect=rte_service_run_iter_on_app_lcore \
 *     build/tools/icount/onering-icount-sw 1 parallel
 *   valgrind --tool=callgrind --callgrind-out-file=cg.enq \
 *     --toggle-collect=swcount_enqueue build/tools/icount/onering-icount-sw 1 parallel
 *   valgrind --tool=callgrind --callgrind-out-file=cg.deq \
 *     --toggle-collect=swcount_dequeue build/tools/icount/onering-icount-sw 1 parallel
 *   callgrind_annotate cg.sched | grep 'PROGRAM TOTALS'
 * and divide by the "events" line it prints (the same workload each run; all
 * three toggles in one run give their sum). rte_service_run_iter_on_app_lcore
 * is exported by librte_eal, so it is counted inclusively although Debian's
 * librte_event_sw is stripped; callgrind_annotate --inclusive=yes shows the
 * service framework's share (the nameless 0x... function of
 * librte_event_sw.so is the PMD's service function). The scheduler's fixed
 * cost per run is in the figure: with 32 events a run it is spread over 32.
 * What event_sw does that oneringd does not: its scheduler also takes one
 * RELEASE per event back in (the consumers' implicit releases), and the
 * dequeue count holds those releases, put on the port's ring one at a time.
 */
#define ALLOW_EXPERIMENTAL_API 1

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eventdev.h>
#include <rte_service.h>

#include "tools/common/child.h"

#define BURST 32u
#define FLOWS 1024u
#define MAX_CONSUMERS 8u
#define MAX_REPEATS 16u

struct swcount {
	uint8_t dev;
	uint8_t producer; /* port: the consumers are ports 0 .. consumers - 1 */
	unsigned consumers;
	unsigned cq_depth;
	uint8_t sched_type;
	uint32_t service_id;
	uint64_t enqueued, dequeued, per_port[MAX_CONSUMERS];
	uint64_t enqueue_calls, enqueue_short, service_runs, extra_runs;
	uint64_t dequeue_calls, dequeue_empty;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "onering-icount-sw: %s: %s\n", what, rte_strerror(err < 0 ? -err : err));
	exit(1);
}

/* What callgrind counts (--toggle-collect=swcount_enqueue / _dequeue): the
 * public inline call into the PMD and nothing of this program's. noipa keeps
 * the names (no clones, no inlining). */
__attribute__((noipa)) static uint16_t swcount_enqueue(uint8_t dev, uint8_t port,
							const struct rte_event *ev, uint16_t count)
{
	return rte_event_enqueue_new_burst(dev, port, ev, count);
}

__attribute__((noipa)) static uint16_t swcount_dequeue(uint8_t dev, uint8_t port,
							struct rte_event *ev, uint16_t count)
{
	return rte_event_dequeue_burst(dev, port, ev, count, 0);
}

/* One queue, consumers + 1 ports, the consumers linked, the service runnable
 * from this thread, started. */
static void swcount_configure(struct swcount *s)
{
	struct rte_event_dev_info info;
	struct rte_event_dev_config dc = { .nb_event_queues = 1 };
	struct rte_event_queue_conf qc;
	uint8_t queue = 0;
	int rc;

	if ((rc = rte_event_dev_info_get(s->dev, &info)) < 0)
		die("rte_event_dev_info_get", rc);
	dc.nb_event_ports = (uint8_t)(s->consumers + 1);
	dc.nb_events_limit = 4096;
	dc.nb_event_queue_flows = FLOWS;
	dc.nb_event_port_dequeue_depth = s->cq_depth;
	dc.nb_event_port_enqueue_depth = BURST;
	dc.dequeue_timeout_ns = info.min_dequeue_timeout_ns;
	if ((rc = rte_event_dev_configure(s->dev, &dc)) < 0)
		die("rte_event_dev_configure", rc);
	if ((rc = rte_event_queue_default_conf_get(s->dev, 0, &qc)) < 0)
		die("rte_event_queue_default_conf_get", rc);
	qc.event_queue_cfg = 0;
	qc.schedule_type = s->sched_type;
	qc.nb_atomic_flows = FLOWS;
	qc.nb_atomic_order_sequences = FLOWS;
	qc.priority = RTE_EVENT_DEV_PRIORITY_NORMAL;
	if ((rc = rte_event_queue_setup(s->dev, 0, &qc)) < 0)
		die("rte_event_queue_setup", rc);
	for (unsigned p = 0; p <= s->consumers; p++) {
		/* event_port_cfg 0: implicit release on the next dequeue. */
		struct rte_event_port_conf pc = { .new_event_threshold = dc.nb_events_limit,
			.dequeue_depth = (uint16_t)s->cq_depth, .enqueue_depth = BURST };
		if ((rc = rte_event_port_setup(s->dev, (uint8_t)p, &pc)) < 0)
			die("rte_event_port_setup", rc);
		if (p < s->consumers && rte_event_port_link(s->dev, (uint8_t)p, &queue, NULL, 1) != 1)
			die("rte_event_port_link", rte_errno);
	}
	s->producer = (uint8_t)s->consumers;
	if ((rc = rte_event_dev_service_id_get(s->dev, &s->service_id)) < 0)
		die("rte_event_dev_service_id_get", rc);
	if (rte_service_runstate_set(s->service_id, 1) < 0 ||
	    rte_service_set_runstate_mapped_check(s->service_id, 0) < 0)
		die("rte_service_runstate_set", EIO);
	if ((rc = rte_event_dev_start(s->dev)) < 0)
		die("rte_event_dev_start", rc);
}

/* Every consumer port dequeued until a call returns nothing; returns the
 * events taken. */
static unsigned swcount_drain(struct swcount *s)
{
	struct rte_event ev[BURST];
	unsigned taken = 0;

	for (unsigned p = 0; p < s->consumers; p++) {
		uint16_t n;
		do {
			n = swcount_dequeue(s->dev, (uint8_t)p, ev, BURST);
			s->dequeue_calls++;
			s->dequeue_empty += n == 0;
			s->per_port[p] += n;
			taken += n;
		} while (n > 0);
	}
	s->dequeued += taken;
	return taken;
}

static void swcount_run(struct swcount *s, unsigned rounds)
{
	struct rte_event ev[BURST];
	uint32_t flow = 0;
	uint64_t seq = 0;

	for (unsigned r = 0; r < rounds; r++) {
		unsigned sent = 0, out = 0, repeats = 0;

		for (unsigned k = 0; k < BURST; k++) {
			ev[k] = (struct rte_event){ .op = RTE_EVENT_OP_NEW,
				.sched_type = s->sched_type, .queue_id = 0,
				.event_type = RTE_EVENT_TYPE_CPU,
				.priority = RTE_EVENT_DEV_PRIORITY_NORMAL,
				.flow_id = flow++ % FLOWS, .u64 = seq++ };
		}
		while (out < BURST) {
			if (sent < BURST) {
				uint16_t n = swcount_enqueue(s->dev, s->producer, ev + sent,
							     (uint16_t)(BURST - sent));
				s->enqueue_calls++;
				s->enqueue_short += n < BURST - sent;
				sent += n;
				s->enqueued += n;
			}
			rte_service_run_iter_on_app_lcore(s->service_id, 0);
			s->service_runs++;
			out += swcount_drain(s);
			if (out < BURST && ++repeats > MAX_REPEATS)
				die("a round's events did not come out", EIO);
			s->extra_runs += out < BURST;
		}
	}
}

int main(int argc, char **argv)
{
	struct swcount s = { .consumers = 1, .cq_depth = 2 * BURST,
			     .sched_type = RTE_SCHED_TYPE_PARALLEL };
	unsigned rounds = 10000;
	char prefix[64], lcore[16], runtime_dir[4096];
	int rc;

	if (argc > 1)
		s.consumers = (unsigned)strtoul(argv[1], NULL, 10);
	if (argc > 2 && strcmp(argv[2], "atomic") == 0)
		s.sched_type = RTE_SCHED_TYPE_ATOMIC;
	else if (argc > 2 && strcmp(argv[2], "parallel") != 0)
		s.consumers = 0;
	if (argc > 3)
		rounds = (unsigned)strtoul(argv[3], NULL, 10);
	if (argc > 4)
		s.cq_depth = (unsigned)strtoul(argv[4], NULL, 10);
	if (s.consumers < 1 || s.consumers > MAX_CONSUMERS || rounds < 1 ||
	    s.cq_depth < BURST || s.cq_depth > 128 || argc > 5) {
		fprintf(stderr, "usage: onering-icount-sw [CONSUMERS (1-%u) [parallel|atomic "
			"[ROUNDS [CQ_DEPTH (%u-128)]]]]\n", MAX_CONSUMERS, BURST);
		return 2;
	}

	/* The EAL on the CPU we are on, nothing shared, no hugepages. */
	int cpu = sched_getcpu();
	snprintf(lcore, sizeof(lcore), "%d", cpu < 0 ? 0 : cpu);
	snprintf(prefix, sizeof(prefix), "onering-icount-sw-%ld", (long)getpid());
	const char *eal_args[] = { "onering-icount-sw", "--no-huge", "--no-pci", "--no-shconf",
				   "--no-telemetry", "-m", "128", "--file-prefix", prefix,
				   "--log-level", "error", "-l", lcore, "--vdev", "event_sw0" };
	char *eal_argv[sizeof(eal_args) / sizeof(eal_args[0]) + 1];
	int eal_argc = 0;
	for (; eal_argc < (int)(sizeof(eal_args) / sizeof(eal_args[0])); eal_argc++)
		eal_argv[eal_argc] = (char *)(uintptr_t)eal_args[eal_argc];
	eal_argv[eal_argc] = NULL;
	if (rte_eal_init(eal_argc, eal_argv) < 0)
		die("rte_eal_init", rte_errno);
	snprintf(runtime_dir, sizeof(runtime_dir), "%s", rte_eal_get_runtime_dir());
	if ((rc = rte_event_dev_get_dev_id("event_sw0")) < 0)
		die("rte_event_dev_get_dev_id(event_sw0) (is librte_event_sw in DPDK's driver "
		    "directory?)", rc);
	s.dev = (uint8_t)rc;
	swcount_configure(&s);

	swcount_run(&s, rounds);

	printf("event_sw, %s queue, %u consumer port%s of depth %u, %u rounds of %u NEW events\n",
	       s.sched_type == RTE_SCHED_TYPE_ATOMIC ? "atomic" : "parallel", s.consumers,
	       s.consumers == 1 ? "" : "s", s.cq_depth, rounds, BURST);
	printf("events %llu (enqueued %llu, dequeued %llu)\n", (unsigned long long)s.dequeued,
	       (unsigned long long)s.enqueued, (unsigned long long)s.dequeued);
	printf("enqueue calls %llu (short %llu)\n", (unsigned long long)s.enqueue_calls,
	       (unsigned long long)s.enqueue_short);
	printf("service runs %llu (%llu repeats in a round)\n", (unsigned long long)s.service_runs,
	       (unsigned long long)s.extra_runs);
	printf("dequeue calls %llu (empty %llu)\n", (unsigned long long)s.dequeue_calls,
	       (unsigned long long)s.dequeue_empty);
	printf("per port:");
	for (unsigned p = 0; p < s.consumers; p++)
		printf(" %llu", (unsigned long long)s.per_port[p]);
	printf("\n");

	rte_event_dev_stop(s.dev);
	rte_event_dev_close(s.dev);
	rte_eal_cleanup();
	if (strstr(runtime_dir, "onering-icount-sw-"))
		tool_remove_dir(runtime_dir);
	return s.dequeued == s.enqueued ? 0 : 1;
}
