/* SPDX-License-Identifier: MIT */
/*
 * fuzz_control: the broker's control-message handlers (broker/handlers.c:
 * HELLO, QUEUE_OPEN, QUEUE_CLOSE, SUB_ADD, STATS, GROUP, PORT_TX, and what
 * they reach in group.c, queue.c, registry.c) and what a client writes in
 * its shared memory (submission-ring requests: request.c, the sources,
 * stream.c; ring words), driven without the socket server: one broker
 * state for the whole run (broker_state_init), with pollers set up as
 * poller_start would (sources, bells) whose loops this thread runs - one
 * of each after every operation and in every grace period - and
 * up to four clients per input, each on a socket pair whose broker end
 * goes to broker_client_add() and whose other end (the "test end") takes
 * the replies. Messages go to broker_client_message() as the control loop
 * would pass them after onering_msg_recv(): at most one fd kept, the rest
 * closed and counted as extra. The broker owns every fd it is given.
 *
 * Input (every field wraps; a message shorter than 128 bytes is padded
 * with zeros):
 *   byte 0    limits for this input (live settings a fresh broker would
 *             have taken from its options): bit 0 --max-clients 2 (else
 *             64), bit 1 --max-queues 2 per client (else 8), bit 2
 *             --max-client-subs 3 (else 64), bit 3 --max-client-fds 8
 *             (else 64), bit 4 --max-client-groups 1 (else 4), bit 5
 *             --max-client-slots 4096 (else 65536), bit 6 --allow-inject,
 *             bit 7 the clients left at the end are dropped one by one
 *             (else in one batch)
 *   byte 1    bits 0-1: clients connected first, minus one
 *   1 byte    per client: who it is (see client_connect)
 *   then operations, each a 3-byte header h0 h1 h2 (+ 128 bytes):
 *     h0 bits 0-1  the client (slot)
 *        bits 2-3  fds sent with the message (0..3)
 *        bits 4-7  0..10 a message (128 bytes follow); 11 requests in the
 *                  submission ring of one of its queues (client_requests:
 *                  h1, h2 and what follows are described there); 12 the client hangs
 *                  up (its test end closed: replies fail with EPIPE, it
 *                  may still "send" what it queued before); 13 the broker
 *                  sees it gone (broker_clients_gone); 14 every hung-up
 *                  client is seen gone in one batch; 15 a new client in
 *                  the slot (who: h1) if it is free
 *     h1 | h2 << 8  bits 0-8: the kind of each fd (3 bits each, see
 *                  make_fd); bits 9-10: how much of the message the
 *                  harness makes valid (see patch_message)
 *
 * Queue and group ids in replies are remembered and substituted for small
 * ids in requests, so that QUEUE_CLOSE, SUB_ADD and group targets reach
 * live objects. Ids, slots and poller choice are reset at the start of
 * each input (nothing is live then), so an input replays the same way.
 *
 * What must hold, else abort() (a finding):
 *   - after every message: every reply is a 128-byte, well-formed message
 *     with the request's seq, a type that answers the request, a status in
 *     -4095..0, and fds only on a successful QUEUE_OPEN reply (exactly 5);
 *     a message of one client never drops another; every client's quota
 *     counters (queues, subscriptions, fds, ring slots, groups created)
 *     match the queues and subscriptions it holds; the queue table, the
 *     subscription table, the pollers' queue lists and each group's
 *     members and references agree; no group lives that nothing keeps;
 *   - after each input, once every client is dropped, urcu_qsbr_barrier()
 *     has run the deferred frees and dead groups are reaped: no client, no
 *     queue, no subscription, only the configured groups, no epoll
 *     registration but the broker's own, and exactly the fds open after
 *     the one-time setup.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "broker/bells.h"
#include "broker/broker.h"
#include "broker/control.h"
#include "broker/counters.h"
#include "broker/group.h"
#include "broker/poller.h"
#include "broker/queue.h"
#include "broker/stream.h"
#include "numa/topology.h"
#include "shm/log.h"
#include "tests/fuzz/fuzz_fds.h"

#define FAIL(...)                                                   \
	do {                                                        \
		fprintf(stderr, "fuzz_control: " __VA_ARGS__);      \
		fputc('\n', stderr);                                \
		abort();                                            \
	} while (0)

#define INSTANCE "fuzz"
#define NR_PEERS 4
#define NR_POLLERS 2
#define MAX_QUEUES 12 /* the broker's queue table: -EMFILE within one input */
#define MAX_SUBS 16   /* the subscription table: -ENOSPC within one input */
#define MAX_IDS 16
#define UID_OTHER 1000 /* may join and post to "cfg" (see setup) */
#define UID_STRANGER 1001
#define GID_OTHER 100

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct broker b;
static int proc_fd_dir = -1;
static int control_epoll_info = -1, poller_epoll_info[NR_POLLERS]; /* their fdinfo */
static int base_fds;              /* open after the one-time setup */
static unsigned configured_groups; /* "default" and the --group ones */
static bool trace;                 /* $FUZZ_CONTROL_TRACE: print every reply */

/* A client as its process sees it. */
struct peer {
	struct broker_client *c; /* NULL: no client in this slot */
	int sock;                /* the test end, -1 once hung up */
	bool refused;
};
static struct peer peers[NR_PEERS];

/* Ids seen in replies during this input. */
static uint32_t queue_ids[MAX_IDS], group_ids[MAX_IDS];
static unsigned nr_queue_ids, nr_group_ids;
/* Subscriptions SUB_ADD replies named (id, and its generation at the same
 * index), for SUB_FD to aim at. */
static uint32_t sub_ids[MAX_IDS], sub_gens[MAX_IDS];
static unsigned nr_sub_ids;
/* Over the whole run, for reach_check: queues opened, request writes that
 * the broker took something of. */
static unsigned nr_opened, nr_taken;

struct input {
	const uint8_t *p;
	size_t left;
};

static bool take(struct input *in, void *out, size_t n, bool pad)
{
	size_t k = n < in->left ? n : in->left;

	if (k < n && !pad)
		return false;
	memcpy(out, in->p, k);
	memset((char *)out + k, 0, n - k);
	in->p += k;
	in->left -= k;
	return true;
}

static void remember(uint32_t *ids, unsigned *nr, uint32_t id)
{
	for (unsigned i = 0; i < *nr; i++)
		if (ids[i] == id)
			return;
	if (*nr < MAX_IDS)
		ids[(*nr)++] = id;
}

/* ---- deferred frees -------------------------------------------------------- */

/*
 * liburcu's call_rcu thread sleeps 10 ms after each wake-up to batch
 * callbacks, so urcu_qsbr_barrier() costs 10 ms and more, and would be
 * most of every input's time. The target defines urcu_qsbr_call_rcu()
 * itself (the executable's definition takes precedence over the shared
 * library's for the broker's calls): callbacks wait here and run on this
 * thread in deferred_run(), after a grace period, as the call_rcu thread
 * would run them. With no poller thread there is no reader to wait for.
 */
static struct cds_wfcq_head deferred_head;
static struct cds_wfcq_tail deferred_tail;

void urcu_qsbr_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head))
{
	cds_wfcq_node_init(&head->next);
	head->func = func;
	cds_wfcq_enqueue(&deferred_head, &deferred_tail, &head->next);
}

/* Every callback queued so far (and those they queue) has run. */
static void deferred_run(void)
{
	while (!cds_wfcq_empty(&deferred_head, &deferred_tail)) {
		struct cds_wfcq_head h;
		struct cds_wfcq_tail t;
		struct cds_wfcq_node *node;

		cds_wfcq_init(&h, &t);
		__cds_wfcq_splice_blocking(&h, &t, &deferred_head, &deferred_tail);
		urcu_qsbr_synchronize_rcu();
		while ((node = __cds_wfcq_dequeue_blocking(&h, &t))) {
			struct rcu_head *rh = caa_container_of(node, struct rcu_head, next);
			rh->func(rh);
		}
	}
}

/* ---- file descriptors ------------------------------------------------------ */

/* Entries in /proc/self/fd now. */
static int fd_count(void)
{
	int n = fuzz_fd_count(proc_fd_dir);

	if (n < 0)
		FAIL("reading /proc/self/fd: %s", strerror(errno));
	return n;
}

/* Files registered in an epoll set: "tfd:" lines of its fdinfo, opened
 * once (fdinfo_open) and read again from the start each time. */
static unsigned epoll_watched(int info_fd)
{
	char buf[8192];
	unsigned n = 0;

	ssize_t len = pread(info_fd, buf, sizeof(buf) - 1, 0);
	if (len < 0)
		FAIL("reading an epoll's fdinfo: %s", strerror(errno));
	buf[len] = '\0';
	for (const char *p = buf; (p = strstr(p, "tfd:")); p += 4)
		n++;
	return n;
}

static int fdinfo_open(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int info = open(path, O_RDONLY | O_CLOEXEC);
	if (info < 0)
		FAIL("open %s: %s", path, strerror(errno));
	return info;
}

/*
 * One fd a client sends, by kind. *other: the pipe's or socket pair's other
 * end, which the harness keeps until the message is handled.
 *   0 eventfd               4 memfd (epoll refuses it: -EINVAL)
 *   1 pipe, read end        5 Unix socket pair end (its peer is this
 *   2 pipe, write end         process: refused as a broker socket)
 *   3 the client's own      6 UDP socket (a valid source)
 *     control connection    7 timerfd
 *     (a dup of its test end; /dev/null once hung up)
 */
static int make_fd(unsigned kind, const struct peer *pe, int *other)
{
	int two[2] = {-1, -1}, fd = -1;

	*other = -1;
	switch (kind) {
	case 0:
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		break;
	case 1:
	case 2:
		if (pipe2(two, O_CLOEXEC | O_NONBLOCK) == 0) {
			fd = two[kind - 1];
			*other = two[2 - kind];
		}
		break;
	case 3:
		fd = pe->sock >= 0 ? fcntl(pe->sock, F_DUPFD_CLOEXEC, 0)
				   : open("/dev/null", O_RDONLY | O_CLOEXEC);
		break;
	case 4:
		fd = memfd_create("fuzz_control", MFD_CLOEXEC);
		break;
	case 5:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, two) == 0) {
			fd = two[0];
			*other = two[1];
		}
		break;
	case 6:
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		break;
	default:
		fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		break;
	}
	if (fd < 0)
		FAIL("making an fd of kind %u: %s", kind, strerror(errno));
	return fd;
}

/* ---- the broker, once ------------------------------------------------------ */

static void log_discard(int level, const char *msg, void *arg)
{
	(void)level;
	(void)msg;
	(void)arg;
}

/* What broker_config_parse() sets with no option (broker/main.c), with
 * small tables so that their limits are reached within one input. */
static void config_defaults(struct broker_config *cfg)
{
	snprintf(cfg->name, sizeof(cfg->name), INSTANCE);
	cfg->control_cpu = -1;
	cfg->max_subs = MAX_SUBS;
	cfg->max_clients = 64;
	cfg->default_capacity = 1024;
	cfg->default_sq_capacity = 256;
	cfg->max_capacity = 4096; /* small memfds */
	cfg->max_queues_per_client = 8;
	cfg->max_client_subs = 64;
	cfg->max_client_fds = 64;
	cfg->max_client_groups = 4;
	cfg->max_client_slots = 65536;
	cfg->hello_timeout_ms = 1000;
	cfg->max_pending_per_uid = 128;
	cfg->max_pending = 1024;
	cfg->idle_spin_ns = 100 * 1000;
	cfg->idle_sleep_ms = 1;
	cfg->ready_fd = -1;
	cfg->max_queues = MAX_QUEUES;
	cfg->no_hugetlb = true;
	cfg->counters_max_objects = 64; /* the counters segment COUNTERS hands out */
	cfg->counters_interval_ms = 250;
	/* The broker serves its own uid and root by default. */
	cfg->allow_uids[cfg->nr_allow_uids++] = geteuid();
	cfg->allow_uids[cfg->nr_allow_uids++] = 0;
}

/* Configured groups with lists of who may join, post and tune (--group). */
static void config_groups(struct broker_config *cfg)
{
	static const char *const specs[] = {
		"cfg:policy=least,numa=interleave,join=1000+@100,post=any,tune=1001+@27",
		/* backlog=2: root's posts to it (a member-less group) wait
		 * after two, and their poster's ring blocks (source_submit.c) */
		"locked:policy=sticky,join=0,post=0,tune=0,backlog=2",
	};
	char err[512];

	for (unsigned i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		if (broker_group_spec_parse(&cfg->groups[i], cfg->group_acls[i], specs[i], NULL, err,
					    sizeof(err)) < 0)
			FAIL("%s", err);
		cfg->nr_groups++;
	}
}

/* NR_POLLERS pollers, one per node first, on the machine's CPUs. */
static void config_plan(struct broker_config *cfg, const struct onering_topo *t)
{
	int nodes = onering_topo_node_count(t), cpus[256];

	cfg->plan.control_cpu = onering_topo_cpu_at(t, 0);
	cfg->plan.nr_pollers = NR_POLLERS;
	for (unsigned i = 0; i < NR_POLLERS; i++) {
		int node = onering_topo_node_at(t, (int)i % nodes);
		int n = onering_topo_node_cpus(t, node, cpus, 256);
		int cpu = n > 0 ? cpus[(i / (unsigned)nodes) % (unsigned)(n < 256 ? n : 256)]
				: onering_topo_cpu_at(t, 0);
		cfg->plan.pollers[i].cpu = cpu;
		cfg->plan.pollers[i].node = onering_topo_cpu_node(t, cpu);
		cfg->plan.pollers[i].core = onering_topo_core_of(t, cpu);
	}
}

/* What poller_start() sets up (its wait set, kick fd, bells and sources),
 * without its thread: this thread runs the pollers' loops (pollers_run). */
static void pollers_open(void)
{
	for (unsigned i = 0; i < b.cfg.plan.nr_pollers; i++) {
		struct poller *p = &b.pollers[i];
		int r = poller_init(p);
		if (r < 0)
			FAIL("poller %u: poller_init: %s", i, strerror(-r));
		poller_thread_init(p);
	}
}

/* One loop of every poller, as if each ran one while the control thread
 * waited: what a client wrote is taken, records are delivered, fd sources
 * report. A loop ends with a quiescent state in poller_main. */
static void pollers_run(void)
{
	for (unsigned i = 0; i < b.cfg.plan.nr_pollers; i++) {
		struct poller *p = &b.pollers[i];
		p->loop_no++;
		struct broker_poll_ctx ctx = {.now_ns = broker_clock_now(&p->clock),
					      .loop_no = p->loop_no};
		poller_loop_work(p, &ctx);
	}
}

/*
 * A grace period (broker_queues_close waits for one after a queue left the
 * tables): with no poller thread there is no reader to wait for, but the
 * pollers would each have ended a loop, seeing the queue closing, before
 * it returns - so they run one here. Defined by the target, like
 * urcu_qsbr_call_rcu below.
 */
void urcu_qsbr_synchronize_rcu(void)
{
	pollers_run();
}

static void setup(void)
{
	char err[256];

	signal(SIGPIPE, SIG_IGN); /* as broker_run: a hung-up client is EPIPE */
	/* Every log line is formatted (its arguments read), none printed. */
	onering_log_set_sink(log_discard, NULL);
	onering_log_set_level(ONERING_LOG_DEBUG);
	proc_fd_dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (proc_fd_dir < 0)
		FAIL("opening /proc/self/fd: %s", strerror(errno));
	if (onering_topo_load(NULL, &b.topo, err, sizeof(err)) < 0)
		FAIL("loading the topology: %s", err);
	config_defaults(&b.cfg);
	config_groups(&b.cfg);
	config_plan(&b.cfg, b.topo);
	b.epoch = 0x6675a2c0a7e5eedull;
	b.ready_fd = -1;
	int r = broker_state_init(&b);
	if (r < 0)
		FAIL("broker_state_init: %s", strerror(-r));
	/* No counters segment (broker_counters_init is not run): COUNTERS takes
	 * its no-segment path. */
	b.counters.seg.fd = -1;
	pollers_open();
	cds_wfcq_init(&deferred_head, &deferred_tail);
	control_epoll_info = fdinfo_open(b.epfd);
	for (unsigned i = 0; i < NR_POLLERS; i++)
		poller_epoll_info[i] = fdinfo_open(b.pollers[i].epfd);
	for (unsigned i = 0; i < NR_PEERS; i++)
		peers[i].sock = -1;
	configured_groups = b.nr_live_groups;
	trace = getenv("FUZZ_CONTROL_TRACE") != NULL;
	base_fds = fd_count();
}

/* ---- consistency ------------------------------------------------------------ */

static bool client_listed(const struct broker_client *c)
{
	struct broker_client *o;

	cds_list_for_each_entry(o, &b.pending, node)
		if (o == c)
			return true;
	cds_list_for_each_entry(o, &b.clients, node)
		if (o == c)
			return true;
	return false;
}

struct tally {
	unsigned queues, subs, fd_subs, pidfds, sockets;
	unsigned members[BROKER_MAX_GROUPS]; /* queues with q->group in that slot */
	unsigned refs[BROKER_MAX_GROUPS];    /* subscriptions that target it */
	unsigned on_poller[NR_POLLERS];
};

static bool group_live(const struct broker_group *g)
{
	return g->slot < BROKER_MAX_GROUPS && b.groups[g->slot] == g && !g->dead;
}

static void check_client(const struct broker_client *c, struct tally *t)
{
	unsigned nq = 0, ns = 0, nfs = 0, listeners = 0, groups = 0;
	uint64_t slots = 0;
	struct broker_queue *q;
	struct broker_sub *s;

	cds_list_for_each_entry(q, &c->queues, client_node) {
		nq++;
		if (q->client != c)
			FAIL("queue %u is on client %u's list but belongs to another", q->id, c->id);
		if (q->slot >= b.cfg.max_queues || b.queues[q->slot] != q)
			FAIL("queue %u of client %u is not in the queue table at its slot %u", q->id,
			     c->id, q->slot);
		if (onering_atomic_load(&q->state, onering_mo_relaxed) != BROKER_QUEUE_LIVE)
			FAIL("queue %u of client %u is not live", q->id, c->id);
		if (!q->poller || q->poller < b.pollers || q->poller >= b.pollers + NR_POLLERS)
			FAIL("queue %u has no poller", q->id);
		t->on_poller[q->poller - b.pollers]++;
		slots += q->nr_slots;
		if (q->group) {
			if (!group_live(q->group))
				FAIL("queue %u is a member of a dead group", q->id);
			t->members[q->group->slot]++;
		}
		cds_list_for_each_entry(s, &q->subs, queue_node) {
			ns++;
			nfs += s->fd >= 0;
			listeners += s->conn && s->conn->listener;
			if (s->queue != q)
				FAIL("subscription %u is on queue %u's list but names another", s->id,
				     q->id);
			if (s->id == 0 || s->id >= b.reg.size || b.reg.table[s->id] != s)
				FAIL("subscription %u of queue %u is not in the table", s->id, q->id);
			if (s->fd < 0 && s->kind != ONERING_EV_TIMER)
				FAIL("subscription %u (kind %u) has no fd", s->id, s->kind);
			if (s->group) {
				if (!group_live(s->group))
					FAIL("subscription %u targets a dead group", s->id);
				t->refs[s->group->slot]++;
			}
		}
	}
	for (unsigned i = 0; i < b.nr_groups; i++)
		groups += b.groups[i] && b.groups[i]->creator_id == c->id;
	if (!c->hello_done && nq)
		FAIL("client %u has queues before HELLO", c->id);
	if (c->nr_queues != nq || c->nr_subs != ns || c->ring_slots != slots ||
	    c->nr_fds != 1 + (c->pidfd >= 0) + BROKER_QUEUE_FDS * nq + nfs || c->nr_groups_created != groups)
		FAIL("client %u counts %u queues, %u subs, %u fds, %llu slots, %u groups; it holds "
		     "%u, %u, %u, %llu, %u",
		     c->id, c->nr_queues, c->nr_subs, c->nr_fds, (unsigned long long)c->ring_slots,
		     c->nr_groups_created, nq, ns, 1 + (c->pidfd >= 0) + BROKER_QUEUE_FDS * nq + nfs,
		     (unsigned long long)slots, groups);
	t->queues += nq;
	t->subs += ns;
	t->fd_subs += nfs - listeners;
	t->pidfds += c->pidfd >= 0;
	t->sockets++;
}

static void check_state(void)
{
	struct tally t;
	struct broker_client *c;
	unsigned pending = 0, attached = 0, live = 0, table = 0;

	memset(&t, 0, sizeof(t));
	cds_list_for_each_entry(c, &b.pending, node) {
		pending++;
		if (c->hello_done)
			FAIL("client %u is pending after its HELLO", c->id);
		check_client(c, &t);
	}
	cds_list_for_each_entry(c, &b.clients, node) {
		attached++;
		if (!c->hello_done)
			FAIL("client %u is attached without HELLO", c->id);
		check_client(c, &t);
	}
	if (pending != b.nr_pending || attached != b.nr_clients ||
	    onering_atomic_load(&b.ctr[ONERING_BC_CLIENTS], onering_mo_relaxed) != attached)
		FAIL("%u pending and %u attached clients listed; the broker counts %u and %u "
		     "(counter %llu)", pending, attached, b.nr_pending, b.nr_clients,
		     (unsigned long long)onering_atomic_load(&b.ctr[ONERING_BC_CLIENTS],
							     onering_mo_relaxed));
	for (uint32_t i = 0; i < b.cfg.max_queues; i++)
		table += b.queues[i] != NULL;
	if (table != t.queues || t.queues + b.nr_free_slots != b.cfg.max_queues)
		FAIL("%u queues held by clients, %u in the table, %u free slots of %u", t.queues,
		     table, b.nr_free_slots, b.cfg.max_queues);
	if (b.reg.live != t.subs || b.reg.nr_free + b.reg.live != b.reg.size - 1)
		FAIL("%u subscriptions held, the table says %u live and %u free of %u", t.subs,
		     b.reg.live, b.reg.nr_free, b.reg.size - 1);
	for (unsigned i = 0; i < NR_POLLERS; i++) {
		unsigned n = 0;
		struct broker_queue *q;
		cds_list_for_each_entry(q, &b.pollers[i].queues, poller_node)
			n++;
		if (n != t.on_poller[i])
			FAIL("poller %u lists %u queues, %u name it", i, n, t.on_poller[i]);
	}
	for (unsigned i = 0; i < BROKER_MAX_GROUPS; i++) {
		const struct broker_group *g = i < b.nr_groups ? b.groups[i] : NULL;
		if (!g) {
			if (t.members[i] || t.refs[i])
				FAIL("group slot %u is free but referred to", i);
			continue;
		}
		live++;
		uint32_t n = g->members ? g->members->n : 0;
		if (g->slot != i || g->dead || g->nr_members != n || n != t.members[i] ||
		    g->nr_refs != n + t.refs[i])
			FAIL("group '%s' (slot %u): %u members (array %u, queues naming it %u), %u refs "
			     "(%u subscriptions target it)%s", g->name, i, g->nr_members, n,
			     t.members[i], g->nr_refs, t.refs[i], g->dead ? ", dead" : "");
		for (uint32_t k = 0; k < n; k++)
			if (g->members->q[k]->group != g)
				FAIL("group '%s' lists a queue of another group", g->name);
		if (!g->configured && !g->pinned && g->nr_refs == 0)
			FAIL("group '%s' lives on with nothing that keeps it", g->name);
		if (g->pinned) {
			bool creator = false;
			cds_list_for_each_entry(c, &b.clients, node)
				creator |= c->id == g->creator_id;
			if (!creator)
				FAIL("group '%s' is pinned by client %u, which is gone", g->name,
				     g->creator_id);
		}
	}
	if (live != b.nr_live_groups ||
	    onering_atomic_load(&b.ctr[ONERING_BC_GROUPS], onering_mo_relaxed) != live)
		FAIL("%u groups in the table, the broker counts %u (counter %llu)", live,
		     b.nr_live_groups,
		     (unsigned long long)onering_atomic_load(&b.ctr[ONERING_BC_GROUPS],
							     onering_mo_relaxed));
	/* The control epoll: the reap eventfd, the accept ring (completion-mode
	 * listeners, when io_uring is there), each client's socket and pidfd;
	 * each poller's: its kick fd and the fd sources homed on it (a listener
	 * is accepted on by the control thread: in no poller's). */
	unsigned want = 1 + (b.accept != NULL) + t.sockets + t.pidfds,
		 got = epoll_watched(control_epoll_info);
	if (got != want)
		FAIL("the control epoll watches %u files, %u expected", got, want);
	got = 0;
	for (unsigned i = 0; i < NR_POLLERS; i++)
		got += epoll_watched(poller_epoll_info[i]);
	if (got != NR_POLLERS + t.fd_subs)
		FAIL("the pollers' epolls watch %u files, %u expected", got, NR_POLLERS + t.fd_subs);
}

/* Dead groups are freed by the control loop on every round; with no
 * poller running, the lanes are empty and one round frees them all. */
static void reap_groups(void)
{
	for (unsigned i = 0; broker_groups_reap(&b); i++)
		if (i == 100)
			FAIL("dead groups still wait after 100 rounds (no poller runs)");
}

/* ---- clients ------------------------------------------------------------------ */

/*
 * who: bits 0-1 uid: root, the broker's, UID_OTHER, UID_STRANGER;
 * bits 2-3 gid and groups: its uid's, GID_OTHER, GID_OTHER and 27 as
 * supplementary groups, 0; bit 4 refused (-EACCES, as a peer no
 * --allow-uid/--allow-gid names).
 */
static void client_connect(unsigned slot, unsigned who)
{
	static const uid_t uids[4] = {0, 0, UID_OTHER, UID_STRANGER};
	struct peer *pe = &peers[slot];
	struct broker_cred cred;
	int sv[2];

	if (pe->c || pe->sock >= 0)
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		FAIL("socketpair: %s", strerror(errno));
	memset(&cred, 0, sizeof(cred));
	cred.pid = getpid();
	cred.uid = (who & 3) == 1 ? geteuid() : uids[who & 3];
	switch ((who >> 2) & 3) {
	case 0:
		cred.gid = cred.uid;
		break;
	case 1:
		cred.gid = GID_OTHER;
		break;
	case 2:
		cred.gid = cred.uid;
		cred.groups[0] = GID_OTHER;
		cred.groups[1] = 27;
		cred.nr_groups = 2;
		break;
	default:
		cred.gid = 0;
		break;
	}
	pe->refused = who & 0x10;
	pe->c = broker_client_add(&b, sv[0], &cred, pe->refused ? -EACCES : 0);
	if (!pe->c)
		FAIL("broker_client_add failed");
	pe->sock = sv[1];
}

static void client_hang_up(struct peer *pe)
{
	if (pe->sock >= 0)
		close(pe->sock);
	pe->sock = -1;
}

/* The control loop saw these clients' sockets hang up. */
static void clients_gone(struct peer **ps, unsigned n)
{
	struct broker_client *cs[NR_PEERS];

	for (unsigned i = 0; i < n; i++) {
		client_hang_up(ps[i]);
		cs[i] = ps[i]->c;
		ps[i]->c = NULL;
	}
	if (n)
		broker_clients_gone(&b, cs, n);
}

/* Read every reply waiting on pe's test end (closing the fds they carry)
 * and check each against the request. */
static void drain(struct peer *pe, const struct onering_msg *req)
{
	while (pe->sock >= 0) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * 8)];
			struct cmsghdr align;
		} ctl;
		struct onering_msg m;
		struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		unsigned nfds = 0;

		ssize_t n = recvmsg(pe->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == ECONNRESET))
			return;
		if (n < 0)
			FAIL("reading a reply: %s", strerror(errno));
		if (n == 0)
			return; /* the broker closed its end */
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (unsigned i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
				close(fd);
			}
			nfds += k;
		}
		if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
			FAIL("a reply was cut (%zd bytes, %u fds)", n, nfds);
		if (n != (ssize_t)sizeof(m) || onering_msg_check(&m) < 0)
			FAIL("a reply of %zd bytes that is not a well-formed message", n);
		uint16_t answer = (uint16_t)(req->type | ONERING_MSG_REPLY);
		bool stats = req->type == ONERING_MSG_STATS &&
			     (m.type == ONERING_MSG_STATS_ITEM || m.type == ONERING_MSG_STATS_END);
		bool refusal = pe->refused && m.type == (ONERING_MSG_HELLO | ONERING_MSG_REPLY);
		if (m.seq != req->seq || (m.type != answer && !stats && !refusal))
			FAIL("request type %u seq %u got a reply of type %#x seq %u", req->type,
			     req->seq, m.type, m.seq);
		if (m.status > 0 || m.status < -4095)
			FAIL("reply of type %#x with status %d, not 0 or a negative errno", m.type,
			     m.status);
		if (trace) {
			char why[sizeof(m.u.reason)] = "";
			if (m.status < 0)
				onering_msg_reason(&m, why, sizeof(why));
			fprintf(stderr, "    reply type %#x: status %d, %u fds%s%s\n", m.type, m.status,
				nfds, why[0] ? ": " : "", why);
		}
		bool opened = m.type == (ONERING_MSG_QUEUE_OPEN | ONERING_MSG_REPLY) && m.status == 0;
		bool counters = m.type == (ONERING_MSG_COUNTERS | ONERING_MSG_REPLY) && m.status == 0;
		bool sub_fd = m.type == (ONERING_MSG_SUB_FD | ONERING_MSG_REPLY) && m.status == 0;
		/* QUEUE_OPEN: two segments, the poller's kick, the queue's bell
		 * eventfd and its user's bells page; COUNTERS: the counters
		 * segment; SUB_FD: the connection's socket. */
		if (nfds != (opened ? 5u : counters || sub_fd ? 1u : 0u))
			FAIL("reply of type %#x status %d carries %u fds", m.type, m.status, nfds);
		if (opened) {
			nr_opened++;
			remember(queue_ids, &nr_queue_ids, m.u.queue_open.queue_id);
			if (m.u.queue_open.group_id)
				remember(group_ids, &nr_group_ids, m.u.queue_open.group_id);
		} else if (m.type == (ONERING_MSG_GROUP | ONERING_MSG_REPLY) && m.status == 0) {
			remember(group_ids, &nr_group_ids, m.u.group.group_id);
		} else if (m.type == (ONERING_MSG_SUB_ADD | ONERING_MSG_REPLY) && m.status == 0 &&
			   nr_sub_ids < MAX_IDS) {
			sub_ids[nr_sub_ids] = m.u.sub_add.sub_id;
			sub_gens[nr_sub_ids++] = m.u.sub_add.sub_gen;
		}
	}
}

/* ---- messages ------------------------------------------------------------------ */

static const char *const group_names[8] = {"", "default", "cfg", "locked", "g1", "g2", "g3", "."};

/* A capacity byte below 256: 0 (the default) or a power of two (valid up
 * to 4096); larger values as they are. */
static uint32_t capacity(uint32_t v)
{
	return v >= 256 ? v : (v & 0x40) ? 0 : 1u << (v & 15);
}

static uint32_t pick(const uint32_t *ids, unsigned nr, uint32_t v)
{
	return v == 0 || v >= 256 || nr == 0 ? v : ids[v % nr];
}

static void pick_name(char name[ONERING_NAME_MAX])
{
	if ((unsigned char)name[0] < 8) {
		memset(name, 0, ONERING_NAME_MAX);
		snprintf(name, ONERING_NAME_MAX, "%s", group_names[(unsigned char)name[0]]);
	}
}

/*
 * level 0: the bytes as they are; 1: a valid magic and version; 2: also a
 * type (the low 4 bits of the type field: HELLO, QUEUE_OPEN, QUEUE_CLOSE,
 * SUB_ADD, STATS, GROUP, PORT_TX, SUB_FD, twice, or the field as it is); 3:
 * also fields
 * aimed at live objects: a HELLO that matches the broker, a group name
 * from a table (name[0] < 8 picks it), small queue and group ids taken
 * from the ids replies gave, small capacities decoded, small node and cpu
 * bytes sign-extended.
 */
static void patch_message(struct onering_msg *m, unsigned level)
{
	static const uint16_t types[16] = {
		ONERING_MSG_HELLO, ONERING_MSG_QUEUE_OPEN, ONERING_MSG_QUEUE_CLOSE, ONERING_MSG_SUB_ADD,
		ONERING_MSG_STATS, ONERING_MSG_GROUP,      ONERING_MSG_PORT_TX,     ONERING_MSG_SUB_FD,
		ONERING_MSG_HELLO, ONERING_MSG_QUEUE_OPEN, ONERING_MSG_QUEUE_CLOSE, ONERING_MSG_SUB_ADD,
		ONERING_MSG_STATS, ONERING_MSG_GROUP,      ONERING_MSG_PORT_TX,     0,
	};

	if (level == 0)
		return;
	m->magic = ONERING_MSG_MAGIC;
	m->version = ONERING_PROTO_VERSION;
	if (level == 1)
		return;
	if (types[m->type & 15])
		m->type = types[m->type & 15];
	if (level == 2)
		return;
	switch (m->type) {
	case ONERING_MSG_HELLO:
		m->u.hello.abi_major = ONERING_ABI_MAJOR;
		memset(m->u.hello.name, 0, sizeof(m->u.hello.name));
		snprintf(m->u.hello.name, sizeof(m->u.hello.name), INSTANCE);
		break;
	case ONERING_MSG_QUEUE_OPEN: {
		struct onering_msg_queue_open *o = &m->u.queue_open;
		o->ev_capacity = capacity(o->ev_capacity);
		o->sq_capacity = capacity(o->sq_capacity);
		if ((uint32_t)o->node < 256)
			o->node = (int8_t)o->node;
		if ((uint32_t)o->cpu < 256)
			o->cpu = (int8_t)o->cpu;
		pick_name(o->group);
		break;
	}
	case ONERING_MSG_QUEUE_CLOSE:
		m->u.queue.queue_id = pick(queue_ids, nr_queue_ids, m->u.queue.queue_id);
		break;
	case ONERING_MSG_SUB_ADD: {
		struct onering_msg_sub_add *a = &m->u.sub_add;
		a->queue_id = pick(queue_ids, nr_queue_ids, a->queue_id);
		a->group_id = pick(group_ids, nr_group_ids, a->group_id);
		if ((uint32_t)a->home_node < 256)
			a->home_node = (int8_t)a->home_node;
		break;
	}
	case ONERING_MSG_GROUP:
		pick_name(m->u.group.name);
		break;
	case ONERING_MSG_SUB_FD:
		/* A subscription a reply named (small ids pick one), its
		 * generation as it was: another client's, or one deleted since,
		 * must get -ENOENT. */
		if (m->u.sub_fd.sub_id && m->u.sub_fd.sub_id < 256 && nr_sub_ids) {
			unsigned k = m->u.sub_fd.sub_id % nr_sub_ids;
			m->u.sub_fd.sub_id = sub_ids[k];
			if (m->u.sub_fd.sub_gen < 256)
				m->u.sub_fd.sub_gen = sub_gens[k];
		}
		break;
	default:
		break;
	}
}

/* What the control loop does when a poller wrote the reap eventfd: finish
 * the subscriptions deleted by request, drop the clients whose queues
 * broke the ring protocol. */
static void control_reap(void)
{
	eventfd_t v;

	eventfd_read(b.reap_fd, &v); /* EAGAIN: nothing written */
	broker_reaped_drain(&b);
	broker_faults_drain(&b);
	for (unsigned i = 0; i < NR_PEERS; i++) {
		if (!peers[i].c || client_listed(peers[i].c))
			continue;
		peers[i].c = NULL; /* dropped for a broken ring */
		client_hang_up(&peers[i]);
	}
}

/* The pollers run a loop, and the control thread does what they asked. */
static void pollers_turn(void)
{
	pollers_run();
	control_reap();
	reap_groups();
}

static void client_message(struct input *in, unsigned slot, unsigned nfds, unsigned kinds,
			   unsigned level)
{
	struct peer *pe = &peers[slot];
	struct onering_msg m, req;
	int fds[3], others[3];

	take(in, &m, sizeof(m), true);
	if (!pe->c)
		return;
	patch_message(&m, level);
	req = m; /* the handlers may change m (names are terminated in place) */
	for (unsigned i = 0; i < nfds; i++)
		fds[i] = make_fd((kinds >> (3 * i)) & 7, pe, &others[i]);
	/* As onering_msg_recv() with room for one fd: the rest closed, counted. */
	for (unsigned i = 1; i < nfds; i++)
		close(fds[i]);
	if (trace)
		fprintf(stderr, "client %u: type %u seq %u, %u fds\n", slot, m.type, m.seq, nfds);
	broker_client_message(&b, pe->c, &m, fds, nfds ? 1 : 0, nfds ? nfds - 1 : 0);
	for (unsigned i = 0; i < nfds; i++)
		if (others[i] >= 0)
			close(others[i]);
	for (unsigned i = 0; i < NR_PEERS; i++) {
		if (!peers[i].c || client_listed(peers[i].c))
			continue;
		if (i != slot)
			FAIL("a message of client slot %u dropped the client in slot %u", slot, i);
		pe->c = NULL; /* dropped: what it was told before is still readable */
	}
	drain(pe, &req);
	if (!pe->c)
		client_hang_up(pe);
	reap_groups(); /* as the control loop does before it waits again */
	pollers_turn(); /* the pollers run meanwhile */
	check_state();
}

/*
 * Level 1: a valid op and the flags it takes; 2: also aimed at live
 * objects - a subscription or group a reply named (small ids pick one),
 * sends inside q's stream area, small timer values.
 */
static void patch_request(struct onering_request *r, unsigned level,
			  const struct broker_queue *q)
{
	static const uint16_t flags_ok[ONERING_REQ_OP_MAX + 1] = {
		[ONERING_REQ_POST] = ONERING_POST_PRIO_MASK,
		[ONERING_REQ_TIMER_ARM] = ONERING_TIMER_ABSTIME | ONERING_TIMER_REALTIME,
		[ONERING_REQ_SEND] = ONERING_SEND_TO,
		[ONERING_REQ_CLOSE] = ONERING_CLOSE_WRITE | ONERING_CLOSE_ABORT,
	};

	if (level == 0)
		return;
	r->op %= ONERING_REQ_OP_MAX + 1;
	r->flags &= flags_ok[r->op];
	if (level == 1)
		return;
	if (r->op == ONERING_REQ_POST) {
		r->sub_id = pick(group_ids, nr_group_ids, r->sub_id);
	} else if (r->sub_id && r->sub_id < 256 && nr_sub_ids) {
		unsigned k = (r->sub_id - 1) % nr_sub_ids; /* 1: the first named */
		r->sub_id = sub_ids[k];
		if (r->sub_gen < 256)
			r->sub_gen = sub_gens[k];
	}
	if (r->op == ONERING_REQ_SEND && q->streams) {
		/* Offsets are the consumer segment's: into the stream area. */
		r->arg[0] = q->streams->area_off + r->arg[0] % q->streams->area_size;
		r->arg[1] %= q->streams->area_size;
	} else if (r->op == ONERING_REQ_STREAM_DONE) {
		r->arg[0] %= ONERING_STREAM_DONE_MAX + 1;
	} else if (r->op == ONERING_REQ_TIMER_ARM || r->op == ONERING_REQ_WORD_WATCH) {
		r->arg[0] %= 1u << 20; /* an absolute time in the past: due now */
		r->arg[1] %= 1u << 20;
	}
}

/*
 * Requests from the client in slot, written into the submission ring of
 * one of its queues as libonering would (slots, then the tail, then its
 * bell), or with a word of its shared memory overwritten; then the pollers
 * run a loop. h1: bits 0-2 the queue (the client's k-th), bits 3-4 the
 * patch level (patch_request), bit 5 the event rings read first (their
 * heads moved to their tails), bit 6 a scribble: the next 8 bytes say
 * where (the sq tail, the event head, level 1's head, or any 8-byte word
 * of the consumer segment) and the 8 after them what, bit 7 no bell (only
 * the full look after an idle sleep finds them). h2: bits 0-5 how many
 * requests (64 bytes each) follow.
 */
static void client_requests(struct input *in, unsigned slot, unsigned h1, unsigned h2)
{
	struct peer *pe = &peers[slot];
	struct broker_queue *q = NULL, *x;
	unsigned n = h2 & 63, nq = 0, level = (h1 >> 3) & 3;
	uint64_t where = 0, what = 0;
	struct onering_request reqs[63];

	if (h1 & 0x40) {
		take(in, &where, sizeof(where), true);
		take(in, &what, sizeof(what), true);
	}
	for (unsigned i = 0; i < n; i++)
		take(in, &reqs[i], sizeof(reqs[i]), true);
	if (!pe->c)
		return;
	cds_list_for_each_entry(x, &pe->c->queues, client_node)
		nq++;
	if (nq == 0)
		return;
	unsigned k = 0, want = (h1 & 7) % nq;
	cds_list_for_each_entry(x, &pe->c->queues, client_node)
		if (k++ == want)
			q = x;
	if (h1 & 0x20) {
		onering_atomic_store(&q->cctl->ev_head_pos,
				     onering_atomic_load(&q->ectl->ev_tail_pos, onering_mo_acquire),
				     onering_mo_release);
		for (uint32_t lv = 1; lv <= q->top_level; lv++)
			onering_atomic_store(&q->cctl->level_head_pos[lv - 1],
					     onering_atomic_load(&q->lctl->level_tail_pos[lv - 1],
								 onering_mo_acquire),
					     onering_mo_release);
	}
	/* The client's producer side of the submission ring (shm/ring.h). */
	ONERING_ATOMIC(uint64_t) *tail_word = (ONERING_ATOMIC(uint64_t) *)q->sqc.tail_word;
	unsigned char *slots = (unsigned char *)q->sqc.slots;
	uint64_t head = onering_atomic_load(&q->ectl->sq_head_pos, onering_mo_acquire);
	uint64_t tail = onering_atomic_load(tail_word, onering_mo_relaxed);
	for (unsigned i = 0; i < n && tail - head < q->sqc.capacity; i++, tail++) {
		patch_request(&reqs[i], level, q);
		memcpy(slots + (tail & q->sqc.mask) * sizeof(reqs[i]), &reqs[i], sizeof(reqs[i]));
	}
	onering_atomic_store(tail_word, tail, onering_mo_release);
	if (h1 & 0x40) {
		ONERING_ATOMIC(uint64_t) *w;
		switch (where & 3) {
		case 0:
			w = tail_word;
			break;
		case 1:
			w = &q->cctl->ev_head_pos;
			break;
		case 2:
			w = &q->cctl->level_head_pos[0];
			break;
		default:
			w = (ONERING_ATOMIC(uint64_t) *)((char *)q->cons_seg.base +
							 ((where >> 2) % (q->cons_seg.size / 8)) * 8);
			break;
		}
		onering_atomic_store(w, what, onering_mo_relaxed);
	}
	if (h1 & 0x80) {
		q->poller->full_look = true;
	} else if (q->bells) {
		/* B1 (shm/abi.h), with the summary on a page that has one (ABI 1.9) */
		ONERING_ATOMIC(uint64_t) *words = q->bells->words;
		onering_bell_ring(&words[q->bell / 64], 1ull << (q->bell % 64),
				  q->bells->summary ? &words[ONERING_BELL_SUMMARY_WORD] : NULL,
				  1ull << (q->bell / 64));
	}
	if (trace)
		fprintf(stderr, "client %u: %u requests (level %u) on queue %u%s\n", slot, n, level,
			q->id, h1 & 0x40 ? ", a word overwritten" : "");
	pollers_turn();
	/* q is freed only after a grace period (deferred_run, at the end). */
	if (onering_atomic_load(&q->ectl->sq_head_pos, onering_mo_relaxed) != head)
		nr_taken++;
}

static void input_begin(unsigned limits)
{
	struct broker_config *cfg = &b.cfg;

	/* Live settings the handlers read, as a broker started with them. */
	cfg->max_clients = limits & 0x01 ? 2 : 64;
	cfg->max_queues_per_client = limits & 0x02 ? 2 : 8;
	cfg->max_client_subs = limits & 0x04 ? 3 : 64;
	cfg->max_client_fds = limits & 0x08 ? 8 : 64;
	cfg->max_client_groups = limits & 0x10 ? 1 : 4;
	cfg->max_client_slots = limits & 0x20 ? 4096 : 65536;
	cfg->allow_inject = limits & 0x40;
	/* Nothing is live between inputs: start the ids, the round robin and
	 * the group slots' generations afresh, so that the input replays the
	 * same way whatever ran before it. */
	b.next_client_id = 0;
	b.next_queue_id = 0;
	b.next_poller = 0;
	b.nr_groups = configured_groups;
	onering_atomic_store(&b.nr_groups_pub, b.nr_groups, onering_mo_relaxed);
	for (unsigned i = configured_groups; i < BROKER_MAX_GROUPS; i++)
		b.group_gen[i] = 0;
	nr_queue_ids = 0;
	nr_group_ids = 0;
	nr_sub_ids = 0;
	for (unsigned i = 0; i < configured_groups; i++)
		remember(group_ids, &nr_group_ids, b.groups[i]->id);
}

static void input_end(bool one_by_one)
{
	struct peer *ps[NR_PEERS];
	unsigned n = 0;

	for (unsigned i = 0; i < NR_PEERS; i++) {
		if (peers[i].c)
			ps[n++] = &peers[i];
		else
			client_hang_up(&peers[i]);
	}
	if (one_by_one)
		for (unsigned i = 0; i < n; i++)
			clients_gone(&ps[i], 1);
	else
		clients_gone(ps, n);
	pollers_turn();
	urcu_qsbr_barrier(); /* liburcu's own callbacks, if any */
	deferred_run();      /* every broker callback ran: segments unmapped, closed */
	reap_groups();
	check_state();
	if (b.nr_clients || b.nr_pending || b.nr_free_slots != b.cfg.max_queues || b.reg.live ||
	    b.nr_live_groups != configured_groups || !cds_list_empty(&b.graveyard))
		FAIL("after every client left: %u clients, %u pending, %u of %u queue slots free, "
		     "%u subscriptions, %u groups (%u configured)%s", b.nr_clients, b.nr_pending,
		     b.nr_free_slots, b.cfg.max_queues, b.reg.live, b.nr_live_groups,
		     configured_groups, cds_list_empty(&b.graveyard) ? "" : ", dead groups unfreed");
	for (unsigned i = 0; i < NR_POLLERS; i++) {
		struct poller *p = &b.pollers[i];
		eventfd_t v;
		if (!cds_wfcq_empty(&p->redeliver_head, &p->redeliver_tail))
			FAIL("poller %u still has redelivery batches after its loops", i);
		eventfd_read(p->kick_fd, &v); /* the kicks of this input */
	}
	int fds = fd_count();
	if (fds != base_fds) {
		/* Say what they are: the leak's kind names its owner. */
		fprintf(stderr, "fuzz_control: the fds now (pid %d):\n", (int)getpid());
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2", (int)getpid());
		if (system(cmd) != 0)
			fprintf(stderr, "(cannot list them)\n");
	}
	if (fds != base_fds)
		FAIL("%d fds open after the setup, %d after this input: %s", base_fds, fds,
		     fds > base_fds ? "a leak" : "closed one it did not own");
}

/*
 * $FUZZ_CONTROL_REACH set (tools/fuzz-run's replay of the seed corpus):
 * at exit, fail unless some queue was opened and some submission-ring
 * write was taken - a harness that no longer reaches the hot half of the
 * broker would otherwise pass in silence.
 */
__attribute__((destructor)) static void reach_check(void)
{
	if (!getenv("FUZZ_CONTROL_REACH") || !b.queues)
		return;
	fprintf(stderr, "fuzz_control: %u queues opened, %u request writes taken\n", nr_opened,
		nr_taken);
	if (nr_opened == 0 || nr_taken == 0)
		FAIL("the inputs opened no queue or had no request taken: the harness no longer "
		     "reaches the pollers");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	uint8_t limits, count, who, h[3];

	if (!b.queues)
		setup();
	if (!take(&in, &limits, 1, false) || !take(&in, &count, 1, false))
		return -1; /* not added to the corpus */
	input_begin(limits);
	for (unsigned i = 0; i <= (count & 3u); i++) {
		take(&in, &who, 1, true);
		client_connect(i, who);
	}
	while (take(&in, h, sizeof(h), false)) {
		unsigned slot = h[0] & 3, nfds = (h[0] >> 2) & 3, op = h[0] >> 4;
		unsigned extra = h[1] | (unsigned)h[2] << 8;
		struct peer *ps[NR_PEERS];
		unsigned n = 0;

		if (trace && op >= 12)
			fprintf(stderr, "client %u: %s\n", slot, op == 12 ? "hangs up" : op == 13 ? "gone"
				: op == 14 ? "hung-up clients gone" : "connects");
		switch (op) {
		case 12:
			client_hang_up(&peers[slot]);
			break;
		case 13:
			if (peers[slot].c) {
				ps[0] = &peers[slot];
				clients_gone(ps, 1);
			}
			break;
		case 14:
			for (unsigned i = 0; i < NR_PEERS; i++)
				if (peers[i].c && peers[i].sock < 0)
					ps[n++] = &peers[i];
			clients_gone(ps, n);
			break;
		case 15:
			client_connect(slot, h[1]);
			break;
		case 11:
			client_requests(&in, slot, h[1], h[2]);
			break;
		default:
			client_message(&in, slot, nfds, extra & 0x1ff, (extra >> 9) & 3);
			continue; /* checked already */
		}
		reap_groups();
		check_state();
	}
	input_end(limits & 0x80);
	return 0;
}
