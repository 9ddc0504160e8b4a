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

#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <urcu/urcu-qsbr.h>
#include <urcu/rculist.h>
#include <urcu/wfcqueue.h>

#include "shm/abi.h"
#include "shm/proto.h"
#include "shm/ring.h"
#include "shm/segment.h"
#include "numa/plan.h"
#include "broker/nic.h"
#include "broker/settings.h"

/*
 * ThreadSanitizer cannot see liburcu's synchronisation (its publication
 * and grace periods use uninstrumented atomics, barriers and futexes).
 * These annotations tell TSan the same edges the code relies on:
 *   PUBLISH(p)   before rcu_assign_pointer / cds_list_add_rcu / wfcq enqueue of p
 *   OBSERVE(p)   after rcu_dereference / list walk / wfcq dequeue gives p
 *   QUIESCENT()  a poller's quiescent state (or going offline)
 *   GRACE_DONE() after synchronize_rcu, and in call_rcu callbacks
 * They compile to nothing outside TSan builds.
 */
#include "shm/atomic.h"
#ifdef ONERING_TSAN
#include <sanitizer/tsan_interface.h>
extern char broker_tsan_grace;
#define BROKER_TSAN_PUBLISH(p) __tsan_release((void *)(p))
#define BROKER_TSAN_OBSERVE(p) __tsan_acquire((void *)(p))
#define BROKER_TSAN_QUIESCENT() __tsan_release(&broker_tsan_grace)
#define BROKER_TSAN_GRACE_DONE() __tsan_acquire(&broker_tsan_grace)
#else
#define BROKER_TSAN_PUBLISH(p) ((void)0)
#define BROKER_TSAN_OBSERVE(p) ((void)0)
#define BROKER_TSAN_QUIESCENT() ((void)0)
#define BROKER_TSAN_GRACE_DONE() ((void)0)
#endif

#define BROKER_MAX_POLLERS 64
#define BROKER_MAX_IDS 32
#define BROKER_MAX_GROUPS 64
#define BROKER_MAX_GROUP_ARGS 16 /* --group options */
#define BROKER_FLOW_BUCKETS 4096 /* sticky affinity table, per group and poller */
#define BROKER_LANE_SLOTS 1024   /* hand-offs between two pollers in flight */

struct broker;

/* ---- configuration: the resolved plan ---------------------------------- */

struct broker_config {
	char name[ONERING_NAME_MAX];
	char socket_dir[200];
	char socket_path[256];
	int control_cpu;                 /* --control-core, or -1: choose */
	int poller_cpus[BROKER_MAX_POLLERS];  /* --cores / --poller, as asked */
	int poller_nodes[BROKER_MAX_POLLERS]; /* -1, or the node --poller named */
	unsigned nr_pollers;                  /* pollers asked for (0: choose) */
	char synthetic[256];             /* --synthetic: plan for this topology */
	struct onering_plan plan;        /* the resolved placement */
	uid_t allow_uids[BROKER_MAX_IDS];
	unsigned nr_allow_uids;
	gid_t allow_gids[BROKER_MAX_IDS];
	unsigned nr_allow_gids;
	uint32_t max_subs;               /* subscription table size */
	uint32_t max_clients;
	uint32_t default_capacity;       /* event ring slots when the client says 0 */
	uint32_t default_sq_capacity;
	uint32_t max_capacity;           /* largest ring a client may ask for */
	uint32_t max_queues_per_client;
	/* Per-client quotas (-EDQUOT past them) and connection limits. */
	uint32_t max_client_subs;        /* subscriptions, timers included */
	uint32_t max_client_fds;         /* fds the broker holds for one client */
	uint32_t max_client_groups;      /* live groups it created */
	uint64_t max_client_slots;       /* event + submission ring slots of its queues */
	uint32_t hello_timeout_ms;       /* a connection must say HELLO within this */
	uint32_t max_pending_per_uid;    /* connections without HELLO, per uid */
	uint32_t max_pending;            /* connections without HELLO, all uids */
	uint64_t idle_spin_ns;           /* busy-poll this long before blocking */
	int idle_sleep_ms;               /* epoll_wait timeout when idle (-1: spin forever) */
	int ready_fd;                    /* --ready-fd, or -1 */
	uint32_t max_queues;             /* queues of all clients together */
	/* --group NAME:setting,...: groups created at start (settings parsed
	 * into the same message a tune request carries) */
	struct onering_msg_group groups[BROKER_MAX_GROUP_ARGS];
	struct broker_acl group_acls[BROKER_MAX_GROUP_ARGS][BROKER_PERM_NR];
	unsigned nr_groups;
	/* EAL arguments (argv before "--", argv[0] first) and --port specs. */
	char *eal_argv[BROKER_MAX_EAL_ARGS];
	int eal_argc;
	const char *ports[BROKER_MAX_PORT_ARGS];
	unsigned nr_ports;
	bool allow_inject;                /* --allow-inject: PORT_TX messages */
	bool foreground;
	bool check_only;
	bool no_hugetlb;
};

/* Parse argv into cfg (defaults first). Returns 0, 1 for --help/--version
 * (already printed), or -EINVAL after printing the reason. */
int broker_config_parse(struct broker_config *cfg, int argc, char **argv);
/* Validate against the machine; fills chosen cores. Prints the reason. */
int broker_config_resolve(struct broker_config *cfg);
void broker_config_print(const struct broker_config *cfg, FILE *out);

/* ---- subscriptions ----------------------------------------------------- */

struct broker_queue;
struct broker_group;

struct broker_sub {
	uint32_t id;
	uint32_t gen;
	int fd;          /* the broker's duplicate of the client's fd */
	uint32_t events; /* epoll events asked for (home-poller-owned after creation) */
	uint8_t mode;    /* enum onering_sub_mode */
	uint16_t kind;   /* enum onering_event_kind of its records (FD, SIGNAL, TIMER, ...) */
	uint64_t cookie;
	struct broker_queue *queue;  /* the owner: the queue it was added through */
	struct broker_group *group;  /* target group, or NULL: records go to queue */
	struct poller *home;         /* the poller whose epoll watches fd */
	struct cds_list_head queue_node; /* in queue->subs, control thread only */
	struct rcu_head rcu;
	struct cds_wfcq_node reap_node;

	/* Home-poller-owned delivery state. */
	bool pending;            /* waiting for ring space (queue) or in the group backlog */
	ONERING_ATOMIC(uint32_t) dead; /* deleted: ignore every later event (home poller
					* writes; broker_sub_dead() reads anywhere) */
	uint32_t pending_events;
	uint32_t pending_count;  /* readiness notifications (timer: expirations) merged */
	struct broker_sub *pending_next;

	/* Timers (kind TIMER), home-poller-owned. */
	uint64_t t_expiry;  /* CLOCK_MONOTONIC ns of the next expiry */
	uint64_t t_period;  /* 0: one-shot */
	uint32_t t_seq;     /* bumped on every arm/disarm: older heap entries are stale */
};

static inline bool broker_sub_dead(const struct broker_sub *s)
{
	return onering_atomic_load(&s->dead, onering_mo_relaxed) != 0;
}

/* Pack (gen, id) into epoll_event.data.u64; 0 is the poller's kick fd. */
static inline uint64_t broker_sub_key(uint32_t id, uint32_t gen)
{
	return ((uint64_t)gen << 32) | id;
}

struct broker_registry {
	struct broker_sub **table; /* RCU pointers, index = id, 0 unused */
	uint32_t *gens;            /* control thread only */
	uint32_t *free_ids;        /* stack of free ids, control thread only */
	uint32_t nr_free;
	uint32_t size;
	uint32_t live;
};

int broker_registry_init(struct broker_registry *r, uint32_t size);
void broker_registry_fini(struct broker_registry *r);
/* Control thread: reserve an id and its next generation. -ENOSPC when full. */
int broker_registry_alloc(struct broker_registry *r, uint32_t *id, uint32_t *gen);
/* Control thread: give back an id that was never published. */
void broker_registry_unalloc(struct broker_registry *r, uint32_t id);
/* Control thread: make sub visible to pollers (release). */
void broker_registry_publish(struct broker_registry *r, struct broker_sub *sub);
/* Control thread: hide sub; its id is reusable after the caller's call_rcu. */
void broker_registry_remove(struct broker_registry *r, struct broker_sub *sub);
/* Poller, in a read-side section: the live sub with this key, or NULL. */
static inline struct broker_sub *broker_registry_lookup(struct broker_registry *r, uint64_t key)
{
	uint32_t id = (uint32_t)key, gen = (uint32_t)(key >> 32);

	if (id == 0 || id >= r->size)
		return NULL;
	struct broker_sub *s = rcu_dereference(r->table[id]);
	if (!s)
		return NULL;
	BROKER_TSAN_OBSERVE(s);
	return s->gen == gen ? s : NULL;
}

/* ---- queues ------------------------------------------------------------ */

enum broker_queue_state {
	BROKER_QUEUE_LIVE = 0,
	BROKER_QUEUE_CLOSING = 1, /* control thread took it back */
	BROKER_QUEUE_FAULTED = 2, /* the client broke the ring ABI */
};

struct broker_client;
struct poller;

struct broker_queue {
	uint32_t id;
	uint32_t slot;                  /* index in broker->queues */
	pid_t owner_pid;
	struct broker_group *group;     /* member of, or NULL (set before it is published) */
	uint32_t node;                  /* NUMA node of its memory (its consumer's) */
	uint64_t nr_slots;              /* event + submission slots (its client's quota) */
	struct broker_client *client;   /* control thread only */
	const struct broker_cred *cred; /* its client's (lives as long as the queue) */
	struct poller *poller;
	struct cds_list_head poller_node; /* RCU list of the poller */
	struct cds_list_head client_node; /* control thread only */
	struct cds_list_head subs;        /* control thread only */
	struct rcu_head rcu;
	struct cds_wfcq_node fault_node;

	struct onering_seg ev_seg;
	struct onering_seg cons_seg;
	struct onering_events_ctl *ectl;
	struct onering_consumer_ctl *cctl;
	struct onering_doorbell *db;
	unsigned char *pkt_area;        /* packet bytes, pkt_stride per event slot, or NULL */
	uint32_t pkt_stride;
	const ONERING_ATOMIC(uint32_t) *words; /* the client's watched words, or NULL */
	uint32_t nr_words;
	struct broker_word *watch;      /* [nr_words], poller-owned */
	uint32_t *watched;              /* indices being watched, poller-owned */
	uint32_t nr_watched;

	/* Poller-owned. */
	struct onering_ring_producer evp;  /* event ring: we produce */
	struct onering_ring_consumer sqc;  /* submission ring: we consume */
	struct broker_sub *pending_head;
	struct broker_sub **pending_tail;
	bool dirty; /* published records this round */

	uint64_t used_loop; /* poller loop whose head refresh evp.head_cache holds */

	/* Hand-offs other pollers pushed for this queue, not yet placed. */
	ONERING_ATOMIC(uint64_t) inflight;

	ONERING_ATOMIC(int) state;
	ONERING_ATOMIC(uint64_t) ctr[ONERING_QC_NR];
};

/* A watched word of a queue (poller-owned). */
struct broker_word {
	uint32_t gen;   /* the watch's generation, 0: not watched */
	uint32_t last;  /* value last delivered */
	uint64_t cookie;
};

/* ---- pollers ----------------------------------------------------------- */

/* Timer heap entry: stale once the sub's t_seq moved on (lazy cancel). */
struct timer_entry {
	uint64_t expiry;
	uint64_t key; /* broker_sub_key(id, gen) */
	uint32_t seq;
};

struct poller {
	struct broker *b;
	unsigned idx;
	int cpu;
	int node;
	int epfd;
	int kick_fd; /* eventfd in epfd, key 0: new work or stop */
	pthread_t thread;
	bool started;
	struct cds_list_head queues; /* RCU list of struct broker_queue */
	ONERING_ATOMIC(int) sleeping; /* announced an idle sleep: kick to hand off */
	uint64_t loop_no;             /* poll loops so far */
	uint32_t sleeps;              /* idle sleeps announced (poller_flags' upper bits) */
	uint16_t dist[BROKER_MAX_POLLERS]; /* node distance to each poller's node (SLIT) */
	struct broker_rxq *rxqs;      /* NIC rx queues homed here (fixed at start) */
	unsigned nr_rxqs;
	struct timer_entry *theap;    /* min-heap by expiry */
	uint32_t nr_timers, cap_timers;
	uint32_t nr_word_queues;      /* queues with watched words (a hint to scan) */
	/* Redelivery batches from the control thread (dead consumers). */
	struct cds_wfcq_head redeliver_head;
	struct cds_wfcq_tail redeliver_tail;
	ONERING_ATOMIC(int) stop;
	/* The last broker->settle_seq this poller has run a whole loop under
	 * (it writes, the control thread waits for it: broker_pollers_settle). */
	ONERING_ATOMIC(uint64_t) settled;
	uint64_t settled_seen; /* poller only: what it last stored there */
	ONERING_ATOMIC(uint64_t) ctr[ONERING_PC_NR];
};

/* epoll flags for a subscription mode: EDGE -> ET, ONESHOT -> ET|ONESHOT,
 * LEVEL -> level|ONESHOT (published once, re-armed after collection). */
uint32_t broker_epoll_flags(uint8_t mode, uint32_t events);

int poller_start(struct poller *p);
void poller_stop(struct poller *p);
void poller_kick(struct poller *p);
/* Control thread, after changing settings pollers read (a tune): returns
 * once every poller has run a whole loop that began after the change - so
 * every decision made from then on uses the new settings, and what waited
 * in a backlog was decided again under them. Kicks sleeping pollers; waits
 * at most 1 s for a stalled one (logged). */
void broker_pollers_settle(struct broker *b);
/* Kick p only if it announced an idle sleep (after a release of new work:
 * the fence here pairs with the one in the poller's announce_sleep). */
void poller_kick_if_sleeping(struct poller *p);

/* ---- clients and the broker --------------------------------------------- */

#define BROKER_MAX_PEER_GROUPS 32 /* supplementary gids kept per client */

/* Who a peer is, from the kernel (SO_PEERCRED, SO_PEERGROUPS) at connect. */
struct broker_cred {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint32_t nr_groups;
	gid_t groups[BROKER_MAX_PEER_GROUPS];
};

/*
 * A connection. It starts pending (in broker->pending, counted per uid
 * against --max-pending-per-uid, never against --max-clients) and must say
 * HELLO before its deadline; then it is attached (in broker->clients) and
 * watched through a pidfd as well as its socket, so that no reference the
 * broker holds (a source fd connected back to the broker, say) can hide
 * its death.
 */
struct broker_client {
	uint32_t id;
	int sock;
	int pidfd;           /* attached clients: the process, for its death; or -1 */
	struct broker_cred cred;
	pid_t pid;           /* == cred.pid */
	uid_t uid;           /* == cred.uid */
	bool hello_done;
	int refuse;          /* -EACCES: answer the HELLO with it, then drop */
	uint64_t deadline_ns; /* pending: CLOCK_MONOTONIC by which HELLO must arrive */
	uint32_t bad_messages;
	/* Quota use (control thread). */
	uint32_t nr_queues;
	uint32_t nr_subs;
	uint32_t nr_fds;     /* socket, pidfd, 2 memfds per queue, 1 per fd source */
	uint32_t nr_groups_created;
	uint64_t ring_slots;
	struct cds_list_head node;   /* broker->pending or broker->clients */
	struct cds_list_head queues; /* its struct broker_queue */
};

struct onering_topo;
struct broker_lane;

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
	struct cds_list_head clients;   /* attached */
	uint32_t nr_clients;
	struct cds_list_head pending;   /* connected, no HELLO yet; oldest first */
	uint32_t nr_pending;
	int reserve_fd;                 /* kept to accept-and-refuse at the fd limit */
	bool listen_paused;             /* at the fd limit: listen fd out of epoll */
	bool at_fd_limit;               /* logged and counted; cleared by the next accept */
	uint64_t listen_retry_ns;       /* when to try accepting again */
	struct cds_list_head graveyard; /* dead groups waiting to be freed */
	uint32_t next_client_id;
	uint32_t next_queue_id;
	bool stopping;

	/* Poller -> control thread. */
	struct cds_wfcq_head reap_head;
	struct cds_wfcq_tail reap_tail;
	struct cds_wfcq_head fault_head;
	struct cds_wfcq_tail fault_tail;

	ONERING_ATOMIC(uint64_t) ctr[ONERING_BC_NR];
};

#include "broker/group.h"

/* control.c */
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
 * validated and handled; c may be dropped (freed) by it. */
void broker_client_message(struct broker *b, struct broker_client *c, struct onering_msg *m,
			   int *fds, unsigned nfds, unsigned extra);
/* Clients whose peers hung up, dropped together as the control loop drops
 * those one epoll batch found dead (their queues share grace periods); each
 * is freed. */
void broker_clients_gone(struct broker *b, struct broker_client **cs, unsigned n);
/* Socket dir usable and no live instance of this name; err says why not. */
int broker_control_check(const struct broker_config *cfg, char *err, size_t err_size);

/* queue.c */
/* node: where the segments' pages go (bound before first touch), or
 * ONERING_NODE_ANY. */
int broker_queue_create(struct broker *b, struct broker_client *c, uint32_t ev_capacity,
			uint32_t sq_capacity, uint32_t pkt_stride, uint32_t nr_words, uint32_t node,
			struct broker_queue **out);

/* timer.c (poller side) */
/* Arm (value != 0) or disarm a timer subscription homed on p. */
void timer_arm(struct poller *p, struct broker_sub *s, const struct onering_request *req);
/* Fire what is due; returns timers fired. */
unsigned timers_fire(struct poller *p, uint64_t now);
/* ns until the next expiry (0 if due), or UINT64_MAX. */
uint64_t timers_next(struct poller *p, uint64_t now);
void timers_fini(struct poller *p);
/* Deliver count (expirations, or merged notifications) of s into its queue. */
void poller_deliver(struct poller *p, struct broker_sub *s, uint32_t events, uint32_t count,
		    uint64_t ts);
/* Mark CLOSING; the caller waits a grace period before broker_queue_teardown(). */
void broker_queue_begin_close(struct broker_queue *q);
/* After the grace period: drop every sub, unlink, free after RCU. */
void broker_queue_teardown(struct broker *b, struct broker_queue *q);
/* Finish a subscription the poller already detached (or that never was). */
void broker_sub_finalize(struct broker *b, struct broker_sub *s);

static inline void broker_count(ONERING_ATOMIC(uint64_t) *ctr, uint64_t n)
{
	/* Single writer per counter: a relaxed load+store, no RMW. */
	onering_atomic_store(ctr, onering_atomic_load(ctr, onering_mo_relaxed) + n,
			     onering_mo_relaxed);
}

#endif /* ONERING_BROKER_H */
