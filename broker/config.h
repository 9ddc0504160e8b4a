/* SPDX-License-Identifier: MIT */
/*
 * The broker's configuration: the --config file and the command line parsed
 * (main.c; the command line wins) and resolved against the machine into a
 * placement plan. Read-only once the broker runs, but for what a SIGHUP
 * reload changes live (group settings, per-client limits, log level), on
 * the control thread.
 */
#ifndef ONERING_BROKER_CONFIG_H
#define ONERING_BROKER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "numa/plan.h"
#include "shm/abi.h"
#include "shm/proto.h"
#include "broker/nic.h"
#include "broker/settings.h"

#define BROKER_MAX_POLLERS 64
#define BROKER_MAX_IDS 32
#define BROKER_MAX_GROUPS 64
#define BROKER_MAX_GROUP_ARGS 16 /* --group options */
#define BROKER_CFG_KEYS 40       /* options (main.c's OPT_*), for their sources */
#define BROKER_CFG_WHERE 288     /* "default", "command line" or "FILE:LINE" */

/* Where an option's value came from, and the value as given (repeatable
 * options: each value, blank-separated). where[0] == '\0': the default. */
struct broker_config_src {
	char where[BROKER_CFG_WHERE];
	char given[BROKER_SPEC_MAX];
};

/* --idle: what a poller does after a loop without work (poller.c); the
 * numbers of onering_idle_name() (shm/proto.h). */
enum broker_idle {
	BROKER_IDLE_BACKOFF = 0,         /* spin idle_spin_ns, yield, then block */
	BROKER_IDLE_BUSY = 1,            /* never block */
	BROKER_IDLE_OVERPROVISIONED = 2, /* block at once: the core is shared */
};

/* --coalesce-us: the longest wait it takes (1 s). */
#define BROKER_COALESCE_US_MAX 1000000u

/* --stream-io: how a poller moves completion-mode sockets' bytes (stream.c). */
enum broker_stream_io {
	BROKER_STREAM_IO_URING = 0, /* io_uring: one io_uring_enter per batch (default) */
	BROKER_STREAM_IO_CALLS = 1, /* recv/send calls with MSG_DONTWAIT, one per operation */
};

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
	int idle_sleep_ms;               /* longest idle block (-1: never block) */
	unsigned idle;                   /* enum broker_idle (-1 ms resolves to busy) */
	uint64_t coalesce_ns;            /* wait after a loop of several events (0: off) */
	unsigned stream_io;              /* enum broker_stream_io */
	int ready_fd;                    /* --ready-fd, or -1 */
	uint32_t max_queues;             /* queues of all clients together */
	uint32_t counters_max_objects;   /* slots of the counters segment */
	uint32_t counters_interval_ms;   /* its periodic update */
	char metrics_listen[80];         /* --metrics-listen as given, "" off */
	/* --group NAME:setting,...: groups created at start (settings parsed
	 * into the same message a tune request carries) */
	struct onering_msg_group groups[BROKER_MAX_GROUP_ARGS];
	struct broker_acl group_acls[BROKER_MAX_GROUP_ARGS][BROKER_PERM_NR];
	unsigned nr_groups;
	/* EAL arguments (argv before "--", argv[0] first) and --port specs. */
	char *eal_argv[BROKER_MAX_EAL_ARGS];
	int eal_argc;
	const char *ports[BROKER_MAX_PORT_ARGS]; /* -> port_specs */
	unsigned nr_ports;
	char port_specs[BROKER_MAX_PORT_ARGS][BROKER_SPEC_MAX];
	char port_where[BROKER_MAX_PORT_ARGS][BROKER_CFG_WHERE];
	char group_where[BROKER_MAX_GROUP_ARGS][BROKER_CFG_WHERE]; /* last to set it */
	char config_path[256];           /* --config, or "" */
	int log_level;                   /* --log-level, or 0: $ONERING_LOG_LEVEL or 5 */
	struct broker_config_src src[BROKER_CFG_KEYS];
	bool allow_inject;                /* --allow-inject: PORT_TX messages */
	bool foreground;
	bool check_only;
	bool no_hugetlb;
};

/* Parse argv (and the --config file it names) into cfg (defaults first).
 * Returns 0, 1 for --help/--version (already printed), ONERING_CLI_USAGE
 * (2) for a usage error or -EINVAL, after printing the reason (shm/cli.h's
 * wording). argv is kept for broker_config_reload. */
int broker_config_parse(struct broker_config *cfg, int argc, char **argv);
struct broker;
/* SIGHUP (control thread): parse the file and the command line again;
 * apply what can change live, log the rest as needing a restart. A bad
 * file changes nothing. Returns 0 or -EINVAL. */
int broker_config_reload(struct broker *b);
/* Validate against the machine; fills chosen cores. Prints the reason. */
int broker_config_resolve(struct broker_config *cfg);
void broker_config_print(const struct broker_config *cfg, FILE *out);

#endif /* ONERING_BROKER_CONFIG_H */
