/* SPDX-License-Identifier: MIT */
/*
 * onering's commands in DPDK telemetry (see telemetry.h for what each
 * answers): registered beside the EAL that serves them, the way DPDK's
 * libraries register /ethdev/... next to their code.
 *
 * Who runs this, and what it may touch
 *   The telemetry library calls each command on a thread of its own (one
 *   per connected client, "dpdk-telemet..."), concurrently with the
 *   pollers and the control thread. A command reads only what a poller
 *   may read, the way a poller reads it:
 *   - as a liburcu QSBR reader (registered, hence online, for the length of
 *     one command, then unregistered): the queue table (b->queues), the
 *     group table (b->groups) and a group's member array are RCU pointers
 *     the control thread publishes and frees only after a grace period, so
 *     whatever a command finds there stays mapped until it returns. A
 *     command holds no lock a poller takes and never waits for one; a
 *     grace period the control thread waits for may last one command
 *     longer (microseconds: a few hundred counter loads).
 *   - counters with relaxed atomic loads, as STATS does (handlers.c);
 *     group settings are atomics (tune changes them live); what a poller,
 *     a queue or a port was set up with before publication is read-only
 *     since.
 *   - nothing of the control thread's own (client lists, nr_members): the
 *     queue's owner comes from its credentials, set before publication.
 *   Ports and their rx queues are fixed once broker_nic_setup returns,
 *   which is when broker_telemetry_init lets commands in.
 *
 * The end: the telemetry library cannot unregister a command, and its
 * threads outlive rte_eal_cleanup's caller. tel_broker (under tel_lock)
 * says whether there is a broker to read; broker_telemetry_fini clears it
 * under the lock, so once it returns no command is inside a broker that
 * broker_state_fini then tears down. The lock is only ever taken by
 * commands and by init/fini: never by a poller.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_telemetry.h>

#include "broker/broker.h"
#include "broker/group.h"
#include "broker/nic.h"
#include "broker/queue.h"
#include "broker/telemetry.h"
#include "shm/counters.h"
#include "shm/log.h"

static pthread_mutex_t tel_lock = PTHREAD_MUTEX_INITIALIZER;
static struct broker *tel_broker; /* under tel_lock; NULL: answer nothing */

/* Begin a command: the broker to read (an RCU reader now, tel_lock held),
 * or NULL when there is none (nothing held). */
static struct broker *tel_enter(void)
{
	pthread_mutex_lock(&tel_lock);
	if (!tel_broker) {
		pthread_mutex_unlock(&tel_lock);
		return NULL;
	}
	urcu_qsbr_register_thread(); /* online: grace periods wait for tel_exit */
	return tel_broker;
}

static void tel_exit(void)
{
	BROKER_TSAN_QUIESCENT();
	urcu_qsbr_unregister_thread();
	pthread_mutex_unlock(&tel_lock);
}

/* A command's parameter: 1 with *id set, 0 when there is none, -EINVAL
 * when it is not a decimal number up to max. */
static int param_id(const char *params, uint64_t max, uint64_t *id)
{
	uint64_t v = 0;

	if (!params || !*params)
		return 0;
	for (const char *s = params; *s; s++) {
		if (*s < '0' || *s > '9' || v > (max - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*id = v;
	return 1;
}

/* Each counter of a table under its name (shm/counters.h). */
static void add_counters(struct rte_tel_data *d, uint32_t what, const uint64_t *v)
{
	const struct onering_counter_list *l = onering_counter_list_find(what);

	for (unsigned i = 0; l && i < l->nr; i++)
		rte_tel_data_add_dict_u64(d, l->desc[i].name, v[i]);
}

static void load_counters(uint64_t *v, const ONERING_ATOMIC(uint64_t) *ctr, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		v[i] = onering_atomic_load(&ctr[i], onering_mo_relaxed);
}

/* ---- /onering/info ------------------------------------------------------- */

static int cmd_info(const char *cmd, const char *params, struct rte_tel_data *d)
{
	uint64_t v[ONERING_BC_NR];
	struct broker *b;
	char epoch[20];

	(void)cmd;
	if (params && *params)
		return -EINVAL;
	if (!(b = tel_enter()))
		return -ENODEV;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "name", b->cfg.name);
	rte_tel_data_add_dict_string(d, "version", ONERING_PKG_VERSION);
	rte_tel_data_add_dict_u64(d, "pid", (uint64_t)getpid());
	snprintf(epoch, sizeof(epoch), "%016llx", (unsigned long long)b->epoch); /* as logged */
	rte_tel_data_add_dict_string(d, "epoch", epoch);
	rte_tel_data_add_dict_string(d, "socket", b->cfg.socket_path);
	rte_tel_data_add_dict_u64(d, "pollers", b->cfg.plan.nr_pollers);
	load_counters(v, b->ctr, ONERING_BC_NR);
	add_counters(d, ONERING_STATS_BROKER, v);
	tel_exit();
	return 0;
}

/* ---- /onering/pollers ---------------------------------------------------- */

static int cmd_pollers(const char *cmd, const char *params, struct rte_tel_data *d)
{
	uint64_t v[ONERING_PC_NR], id = 0;
	struct broker *b;
	int r;

	(void)cmd;
	if (!(b = tel_enter()))
		return -ENODEV;
	unsigned n = b->cfg.plan.nr_pollers;
	if ((r = param_id(params, n ? n - 1 : 0, &id)) < 0 || (r == 1 && id >= n)) {
		tel_exit();
		return -EINVAL;
	}
	if (r == 0) {
		rte_tel_data_start_array(d, RTE_TEL_U64_VAL);
		for (unsigned i = 0; i < n; i++)
			rte_tel_data_add_array_u64(d, i);
		tel_exit();
		return 0;
	}
	const struct poller *p = &b->pollers[id];
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "id", id);
	load_counters(v, p->ctr, ONERING_PC_NR); /* cpu among them */
	add_counters(d, ONERING_STATS_POLLER, v);
	rte_tel_data_add_dict_int(d, "node", p->node);
	rte_tel_data_add_dict_u64(d, "rx_queues", p->nr_rxqs);
	tel_exit();
	return 0;
}

/* ---- /onering/queues ----------------------------------------------------- */

/* The queue in table slot `slot`, or NULL (RCU reader). */
static struct broker_queue *queue_at(struct broker *b, uint32_t slot)
{
	struct broker_queue *q = rcu_dereference(b->queues[slot]);

	if (q)
		BROKER_TSAN_OBSERVE(q);
	return q;
}

static const char *queue_state_name(int state)
{
	switch (state) {
	case BROKER_QUEUE_LIVE:
		return "live";
	case BROKER_QUEUE_CLOSING:
		return "closing";
	case BROKER_QUEUE_FAULTED:
		return "faulted";
	}
	return "?";
}

static void queue_describe(struct rte_tel_data *d, const struct broker_queue *q)
{
	uint64_t v[ONERING_QC_NR];

	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "id", q->id);
	/* A5-like: pairs with R4 (broker_queue_begin_close); display only. */
	rte_tel_data_add_dict_string(d, "state", queue_state_name(onering_atomic_load(
							 &q->state, onering_mo_acquire)));
	rte_tel_data_add_dict_u64(d, "owner_pid", (uint64_t)q->owner_pid);
	rte_tel_data_add_dict_u64(d, "owner_uid", (uint64_t)q->cred->uid);
	rte_tel_data_add_dict_u64(d, "node", q->node);
	rte_tel_data_add_dict_u64(d, "poller", q->poller->idx);
	if (q->group)
		rte_tel_data_add_dict_string(d, "group_name", q->group->name);
	load_counters(v, q->ctr, ONERING_QC_NR);
	/* consumed: the client's head as it last wrote it (STATS shows the
	 * same; the broker only displays it). */
	v[ONERING_QC_CONSUMED] = broker_queue_consumed(q);
	add_counters(d, ONERING_STATS_QUEUE, v);
}

static int cmd_queues(const char *cmd, const char *params, struct rte_tel_data *d)
{
	uint64_t id = 0;
	struct broker *b;
	int r = param_id(params, UINT32_MAX, &id);

	(void)cmd;
	if (r < 0)
		return -EINVAL;
	if (!(b = tel_enter()))
		return -ENODEV;
	if (r == 0) {
		rte_tel_data_start_array(d, RTE_TEL_U64_VAL);
		for (uint32_t s = 0; s < b->cfg.max_queues; s++) {
			struct broker_queue *q = queue_at(b, s);
			if (q && rte_tel_data_add_array_u64(d, q->id) < 0)
				break; /* RTE_TEL_MAX_ARRAY_ENTRIES: the first ones */
		}
		tel_exit();
		return 0;
	}
	r = -ENOENT;
	for (uint32_t s = 0; r < 0 && s < b->cfg.max_queues; s++) {
		struct broker_queue *q = queue_at(b, s);
		if (q && q->id == id) {
			queue_describe(d, q);
			r = 0;
		}
	}
	tel_exit();
	return r;
}

/* ---- /onering/groups ----------------------------------------------------- */

static void group_describe(struct rte_tel_data *d, const struct broker *b,
			   const struct broker_group *g)
{
	uint64_t v[ONERING_GC_NR];
	uint32_t sleeping, max_running = onering_atomic_load(&g->max_running, onering_mo_relaxed);
	const struct broker_members *m = rcu_dereference(g->members);

	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "id", g->id);
	rte_tel_data_add_dict_string(d, "name", g->name);
	rte_tel_data_add_dict_u64(d, "owner_uid", (uint64_t)g->owner_uid);
	rte_tel_data_add_dict_int(d, "configured", g->configured);
	rte_tel_data_add_dict_string(d, "policy", onering_policy_name(onering_atomic_load(
							  &g->policy, onering_mo_relaxed)));
	rte_tel_data_add_dict_string(d, "numa", onering_numa_name(onering_atomic_load(
							&g->numa, onering_mo_relaxed)));
	rte_tel_data_add_dict_u64(d, "spill_pct",
				  onering_atomic_load(&g->spill_pct, onering_mo_relaxed));
	rte_tel_data_add_dict_string(d, "wake", onering_wake_name(onering_atomic_load(
							&g->wake, onering_mo_relaxed)));
	rte_tel_data_add_dict_u64(d, "max_running", max_running ? max_running : b->cpu_count);
	rte_tel_data_add_dict_u64(d, "backlog_max",
				  onering_atomic_load(&g->backlog_max, onering_mo_relaxed));
	rte_tel_data_add_dict_u64(d, "members", m ? m->n : 0);
	broker_group_counters(b, g, v, &sleeping);
	rte_tel_data_add_dict_u64(d, "sleeping", sleeping);
	add_counters(d, ONERING_STATS_GROUP, v);
}

static int cmd_groups(const char *cmd, const char *params, struct rte_tel_data *d)
{
	uint64_t id = 0;
	struct broker *b;
	const struct broker_group *found = NULL;
	int r = param_id(params, UINT32_MAX, &id);

	(void)cmd;
	if (r < 0 && !onering_name_valid(params))
		return -EINVAL; /* neither an id nor a group name */
	if (!(b = tel_enter()))
		return -ENODEV;
	/* A11-like: pairs with R7 (broker_group_get): the slots below the
	 * count are published. */
	unsigned n = onering_atomic_load(&b->nr_groups_pub, onering_mo_acquire);
	if (r == 0)
		rte_tel_data_start_array(d, RTE_TEL_U64_VAL);
	for (unsigned i = 0; i < n && i < BROKER_MAX_GROUPS; i++) {
		struct broker_group *g = rcu_dereference(b->groups[i]);
		if (!g)
			continue;
		BROKER_TSAN_OBSERVE(g);
		if (r == 0)
			rte_tel_data_add_array_u64(d, g->id);
		else if (r == 1 ? g->id == id : strcmp(g->name, params) == 0)
			found = g;
	}
	if (r != 0) {
		if (found)
			group_describe(d, b, found);
		r = found ? 0 : -ENOENT;
	}
	tel_exit();
	return r;
}

/* ---- /onering/ports ------------------------------------------------------ */

/* One dict per rx queue of port `port`, in d (containers: one level). */
static void port_rxqs(struct rte_tel_data *d, const struct broker *b, uint16_t port)
{
	uint64_t v[ONERING_RXQC_NR];

	for (unsigned j = 0; j < b->cfg.plan.nr_pollers; j++) {
		const struct poller *p = &b->pollers[j];
		for (unsigned i = 0; i < p->nr_rxqs; i++) {
			const struct broker_rxq *rq = &p->rxqs[i];
			struct rte_tel_data *c;
			char key[32];
			if (rq->port != port || !(c = rte_tel_data_alloc()))
				continue;
			rte_tel_data_start_dict(c);
			rte_tel_data_add_dict_u64(c, "queue", rq->queue);
			rte_tel_data_add_dict_u64(c, "poller", j);
			load_counters(v, rq->ctr, BROKER_RXQ_NR);
			v[ONERING_RXQC_GROUP] = rq->group->id; /* configured: lives as long */
			add_counters(c, ONERING_STATS_RXQ, v);
			rte_tel_data_add_dict_string(c, "group_name", rq->group->name);
			snprintf(key, sizeof(key), "rxq_%u", (unsigned)rq->queue);
			if (rte_tel_data_add_dict_container(d, key, c, 0) < 0)
				rte_tel_data_free(c);
		}
	}
}

static int cmd_ports(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct broker_nic_port np;
	uint64_t id = 0;
	struct broker *b;
	int r = param_id(params, UINT16_MAX, &id);

	(void)cmd;
	if (r < 0)
		return -EINVAL;
	if (!(b = tel_enter()))
		return -ENODEV;
	if (r == 0)
		rte_tel_data_start_array(d, RTE_TEL_U64_VAL);
	bool found = false;
	for (unsigned i = 0; !found && broker_nic_port_get(b, i, &np) == 0; i++) {
		if (r == 0) {
			rte_tel_data_add_array_u64(d, np.port);
			continue;
		}
		if (np.port != id)
			continue;
		found = true;
		rte_tel_data_start_dict(d);
		rte_tel_data_add_dict_u64(d, "port", np.port);
		rte_tel_data_add_dict_string(d, "name", np.name);
		rte_tel_data_add_dict_string(d, "driver", np.driver);
		rte_tel_data_add_dict_int(d, "node", np.node);
		add_counters(d, ONERING_STATS_PORT, np.ctr);
		port_rxqs(d, b, np.port);
	}
	tel_exit();
	return r == 0 || found ? 0 : -ENOENT;
}

/* ---- registration -------------------------------------------------------- */

static const struct {
	const char *cmd;
	telemetry_cb fn;
	const char *help;
} commands[] = {
	{"/onering/info", cmd_info,
	 "The onering broker: name, version, pid, pollers and its counters. No parameters"},
	{"/onering/pollers", cmd_pollers,
	 "Poller indices. Parameter: a poller index, for its counters, cpu and node"},
	{"/onering/queues", cmd_queues,
	 "Consumer queue ids. Parameter: a queue id, for its counters, owner and group"},
	{"/onering/groups", cmd_groups,
	 "Group ids. Parameter: a group id or name, for its settings and counters"},
	{"/onering/ports", cmd_ports,
	 "Ports onering receives from. Parameter: a port id, for its counters and rx queues'"},
};

int broker_telemetry_init(struct broker *b)
{
	static bool registered; /* commands cannot be unregistered: once a process */
	int r = 0;

	for (size_t i = 0; !registered && i < sizeof(commands) / sizeof(commands[0]); i++) {
		r = rte_telemetry_register_cmd(commands[i].cmd, commands[i].fn, commands[i].help);
		if (r < 0) {
			onering_log(ONERING_LOG_WARN, "DPDK telemetry: cannot register %s: %s "
				    "(onering's telemetry commands are incomplete; DPDK's work)",
				    commands[i].cmd, strerror(-r));
			break;
		}
	}
	registered = true;
	pthread_mutex_lock(&tel_lock);
	tel_broker = b;
	pthread_mutex_unlock(&tel_lock);
	return r;
}

void broker_telemetry_fini(struct broker *b)
{
	pthread_mutex_lock(&tel_lock); /* waits for the command being answered */
	if (tel_broker == b)
		tel_broker = NULL;
	pthread_mutex_unlock(&tel_lock);
}

/* ---- before the EAL: can it create the socket? --------------------------- */

/* A directory DPDK will use (or create): fine if absent; else ours, a real
 * directory, writable by no one else. (When the EAL cannot create its
 * runtime directory, DPDK 22.11 puts the socket in the parent of dpdk/ -
 * /tmp/dpdk_telemetry.v2 for a user without $XDG_RUNTIME_DIR - where
 * anyone could have put one first.) */
static int dir_check(const char *path, char *err, size_t err_size)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return 0; /* absent: the EAL creates it 0700 */
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, err_size, "%s is not a directory%s: remove it, or give another "
			 "--file-prefix", path, S_ISLNK(st.st_mode) ? " (a symlink)" : "");
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, err_size, "%s belongs to uid %u with mode %03o: anyone who owns or "
			 "may write it could replace the socket; use a directory of uid %u only "
			 "(set $RUNTIME_DIRECTORY or $XDG_RUNTIME_DIR, or remove it)", path,
			 (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
		return -EPERM;
	}
	return 0;
}

int broker_telemetry_preflight(const char *file_prefix, char *err, size_t err_size)
{
	/* The EAL's runtime directory (eal_create_runtime_dir in DPDK 22.11;
	 * dpdk-telemetry.py looks in the same place). A socket there that a
	 * live process serves is no obstacle: the EAL then binds
	 * dpdk_telemetry.v2:1 (dpdk-telemetry.py -i 1). */
	const char *base = getenv("RUNTIME_DIRECTORY");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dpdk_dir[sizeof(sa.sun_path)], run_dir[sizeof(sa.sun_path)];
	int r;

	if (!base)
		base = geteuid() == 0 ? "/var/run" : getenv("XDG_RUNTIME_DIR");
	if (!base)
		base = "/tmp";
	if ((size_t)snprintf(dpdk_dir, sizeof(dpdk_dir), "%s/dpdk", base) >= sizeof(dpdk_dir) ||
	    (size_t)snprintf(run_dir, sizeof(run_dir), "%s/%s", dpdk_dir, file_prefix) >=
		    sizeof(run_dir) ||
	    (size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/dpdk_telemetry.v2", run_dir) >=
		    sizeof(sa.sun_path)) {
		snprintf(err, err_size, "%s/dpdk/%s/dpdk_telemetry.v2 is longer than a Unix socket "
			 "address (%zu bytes): give a shorter --file-prefix", base, file_prefix,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	if ((r = dir_check(dpdk_dir, err, err_size)) < 0 ||
	    (r = dir_check(run_dir, err, err_size)) < 0)
		return r;
	return 0;
}
