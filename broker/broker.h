/* SPDX-License-Identifier: MIT */
/*
 * oneringd internals (private to broker/).
 *
 * Threads
 *   control  owns the control socket, the clients, queue creation and
 *            teardown, and every write to the subscription table.
 *   pollers  one per configured core. Each owns the sources homed on it
 *            (one epoll set), produces into the event rings of its queues,
 *            drains their submission rings and rings their doorbells.
 *
 * Sharing between them (liburcu, QSBR flavour)
 *   - The subscription table (sub id -> struct broker_sub *) is written by
 *     the control thread only (rcu_assign_pointer) and read by pollers
 *     (rcu_dereference) between quiescent states; subscriptions are freed
 *     with call_rcu.
 *   - Each poller's queue list is an RCU list: the control thread adds and
 *     removes (cds_list_add_rcu / cds_list_del_rcu), the poller walks it.
 *   - A subscription's delivery state (pending, coalesced count) and a
 *     queue's ring handles and pending list are the poller's alone.
 *   - Poller -> control: subscriptions deleted through a submission ring
 *     and queues whose client broke the ring ABI go on a wait-free queue
 *     (cds_wfcq) and the control thread is kicked through an eventfd.
 *   - Teardown of a queue: the control thread marks it CLOSING, waits one
 *     grace period (after which no poller iteration that saw it LIVE is
 *     still running), then owns it alone.
 */
#ifndef ONERING_BROKER_H
#define ONERING_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/client.h"
#include "broker/config.h"
#include "broker/counters.h"
#include "broker/poller.h"
#include "broker/rcu.h"
#include "broker/registry.h"
#include "shm/proto.h"

struct onering_topo;
struct broker_accept;
struct broker_group;
struct broker_lane;
struct broker_nic;
struct broker_queue;

struct broker {
	struct broker_config cfg;
	struct onering_topo *topo;
	uint64_t epoch;
	int listen_fd;
	int epfd;      /* control thread's epoll: listen, clients, signals, reap */
	int signal_fd;
	int reap_fd;   /* eventfd: pollers have something in reap/fault queues */
	int ready_fd;  /* daemon mode: pipe to the parent, written once ready */
	struct broker_registry reg;
	struct poller pollers[BROKER_MAX_POLLERS];
	unsigned next_poller;
	/* lanes[src * nr_pollers + dst]: hand-offs from poller src to dst. */
	struct broker_lane **lanes;
	/* Every live queue by slot (RCU; the control thread writes). */
	struct broker_queue **queues;
	uint32_t *free_slots;
	uint32_t nr_free_slots;
	/* Groups by slot (id & 0xff) - 1, RCU-published; NULL: free slot. A
	 * group of a client dies with its last member and is freed once no
	 * poller can hold it (graveyard; group.c). */
	struct broker_group *groups[BROKER_MAX_GROUPS];
	unsigned nr_groups;              /* slots in use so far (control thread) */
	unsigned nr_live_groups;
	ONERING_ATOMIC(unsigned) nr_groups_pub; /* what pollers read (release/acquire) */
	uint16_t group_gen[BROKER_MAX_GROUPS]; /* bumped each time a slot is reused */
	uint32_t cpu_count;
	/* Bumped by the control thread after it changes a group's settings;
	 * pollers read it at the top of each loop (broker_pollers_settle). */
	ONERING_ATOMIC(uint64_t) settle_seq;
	struct broker_nic *nic;         /* NULL: no EAL */
	struct broker_accept *accept;   /* completion-mode listeners (accept.c); NULL: none */
	struct cds_list_head clients;   /* attached */
	uint32_t nr_clients;
	struct cds_list_head pending;   /* connected, no HELLO yet; oldest first */
	uint32_t nr_pending;
	int reserve_fd;                 /* kept to accept-and-refuse at the fd limit */
	bool listen_paused;             /* at the fd limit: listen fd out of epoll */
	bool at_fd_limit;               /* logged and counted; cleared by the next accept */
	uint64_t listen_retry_ns;       /* when to try accepting again */
	uint64_t notify_next_ns;        /* next STATUS (and WATCHDOG) to the service manager */
	struct cds_list_head graveyard; /* dead groups waiting to be freed */
	uint32_t next_client_id;
	uint32_t next_queue_id;
	bool stopping;
	/* SIGHUP: re-read the configuration (main.c; NULL: nothing to reload). */
	int (*reload)(struct broker *b);

	/* Poller -> control thread. */
	struct cds_wfcq_head reap_head;
	struct cds_wfcq_tail reap_tail;
	struct cds_wfcq_head fault_head;
	struct cds_wfcq_tail fault_tail;

	ONERING_ATOMIC(uint64_t) ctr[ONERING_BC_NR];
	/* The counters segment and the /metrics endpoint (counters.c, metrics.c). */
	struct broker_counters counters;
};

/* The control thread: server.c (socket server, loop, start and stop) and
 * handlers.c (control messages); control.h is what the two share. */
int broker_run(struct broker *b);
/* The control thread's state without its socket server or pollers running
 * (broker_run's first and last steps; the control fuzz target drives the
 * handlers over it): groups, tables, lanes, the control epoll. */
int broker_state_init(struct broker *b);
void broker_state_fini(struct broker *b);
/* A new connection on sock, pending until HELLO; refuse: -EACCES or 0. */
struct broker_client *broker_client_add(struct broker *b, int sock, const struct broker_cred *cred,
					int refuse);
/* One received message of c (its fds: nfds kept, extra already closed):
 * validated and handled. Returns 0 when c is still there (whatever the
 * reply said), or a negative errno once c was dropped (freed). */
int broker_client_message(struct broker *b, struct broker_client *c, struct onering_msg *m,
			  int *fds, unsigned nfds, unsigned extra);
/* Clients whose peers hung up, dropped together as the control loop drops
 * those one epoll batch found dead (their queues share grace periods); each
 * is freed. */
void broker_clients_gone(struct broker *b, struct broker_client **cs, unsigned n);
/* Socket dir usable and no live instance of this name; err says why not. */
int broker_control_check(const struct broker_config *cfg, char *err, size_t err_size);

#endif /* ONERING_BROKER_H */
