/* SPDX-License-Identifier: MIT */
/*
 * oneringd: options, the resolved plan, daemon start-up.
 *
 *   oneringd [EAL options --] [options]
 *
 * With no options: instance "default", the control thread on the first
 * allowed CPU and one poller per NUMA node, not on the node's first core
 * (nor the control thread's), socket under /run/onering as root.
 *
 * --config FILE: the options as keys of an INI file (docs/oneringd.conf,
 * oneringd.conf(5)), parsed before the command line, which wins; each
 * option is checked in one place (option_apply) for both. SIGHUP parses
 * both again (broker_config_reload).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/group.h"
#include "broker/poller.h"
#include "shm/ring.h"
#include "broker/settings.h"
#include "numa/topology.h"
#include "shm/cli.h"
#include "shm/log.h"

enum {
	OPT_NAME = 256,
	OPT_CORES,
	OPT_POLLER,
	OPT_SYNTHETIC,
	OPT_CONTROL_CORE,
	OPT_SOCKET_DIR,
	OPT_ALLOW_UID,
	OPT_ALLOW_GID,
	OPT_FOREGROUND,
	OPT_CHECK,
	OPT_MAX_SUBS,
	OPT_MAX_CLIENTS,
	OPT_MAX_RING_SLOTS,
	OPT_MAX_QUEUES,
	OPT_IDLE,
	OPT_IDLE_SPIN_US,
	OPT_IDLE_SLEEP_MS,
	OPT_COALESCE_US,
	OPT_STREAM_IO,
	OPT_NO_HUGEPAGES,
	OPT_LOG_LEVEL,
	OPT_READY_FD,
	OPT_GROUP,
	OPT_PORT,
	OPT_ALLOW_INJECT,
	OPT_MAX_CLIENT_SUBS,
	OPT_MAX_CLIENT_FDS,
	OPT_MAX_CLIENT_GROUPS,
	OPT_MAX_CLIENT_SLOTS,
	OPT_HELLO_TIMEOUT_MS,
	OPT_MAX_PENDING_PER_UID,
	OPT_MAX_PENDING,
	OPT_COUNTERS_MAX_OBJECTS,
	OPT_COUNTERS_INTERVAL_MS,
	OPT_METRICS_LISTEN,
	OPT_CONFIG,
	OPT_HELP,
	OPT_VERSION,
	OPT_END,
};
_Static_assert(OPT_END - OPT_NAME <= BROKER_CFG_KEYS, "broker_config.src is too short");

static const struct option long_opts[] = {
	{"name", required_argument, NULL, OPT_NAME},
	{"cores", required_argument, NULL, OPT_CORES},
	{"poller", required_argument, NULL, OPT_POLLER},
	{"synthetic", required_argument, NULL, OPT_SYNTHETIC},
	{"control-core", required_argument, NULL, OPT_CONTROL_CORE},
	{"socket-dir", required_argument, NULL, OPT_SOCKET_DIR},
	{"allow-uid", required_argument, NULL, OPT_ALLOW_UID},
	{"allow-gid", required_argument, NULL, OPT_ALLOW_GID},
	{"foreground", no_argument, NULL, OPT_FOREGROUND},
	{"check", no_argument, NULL, OPT_CHECK},
	{"max-subs", required_argument, NULL, OPT_MAX_SUBS},
	{"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
	{"max-ring-slots", required_argument, NULL, OPT_MAX_RING_SLOTS},
	{"max-queues", required_argument, NULL, OPT_MAX_QUEUES},
	{"idle", required_argument, NULL, OPT_IDLE},
	{"idle-spin-us", required_argument, NULL, OPT_IDLE_SPIN_US},
	{"idle-sleep-ms", required_argument, NULL, OPT_IDLE_SLEEP_MS},
	{"coalesce-us", required_argument, NULL, OPT_COALESCE_US},
	{"stream-io", required_argument, NULL, OPT_STREAM_IO},
	{"no-hugepages", no_argument, NULL, OPT_NO_HUGEPAGES},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"ready-fd", required_argument, NULL, OPT_READY_FD},
	{"group", required_argument, NULL, OPT_GROUP},
	{"port", required_argument, NULL, OPT_PORT},
	{"allow-inject", no_argument, NULL, OPT_ALLOW_INJECT},
	{"max-client-subs", required_argument, NULL, OPT_MAX_CLIENT_SUBS},
	{"max-client-fds", required_argument, NULL, OPT_MAX_CLIENT_FDS},
	{"max-client-groups", required_argument, NULL, OPT_MAX_CLIENT_GROUPS},
	{"max-client-slots", required_argument, NULL, OPT_MAX_CLIENT_SLOTS},
	{"hello-timeout-ms", required_argument, NULL, OPT_HELLO_TIMEOUT_MS},
	{"max-pending-per-uid", required_argument, NULL, OPT_MAX_PENDING_PER_UID},
	{"max-pending", required_argument, NULL, OPT_MAX_PENDING},
	{"counters-max-objects", required_argument, NULL, OPT_COUNTERS_MAX_OBJECTS},
	{"counters-interval-ms", required_argument, NULL, OPT_COUNTERS_INTERVAL_MS},
	{"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

/* What --check prints for an option left at its default (usage() says
 * the same). */
static const struct {
	int opt;
	const char *value;
} option_defaults[] = {
	{OPT_NAME, "default"},
	{OPT_CORES, "auto"},
	{OPT_POLLER, "none"},
	{OPT_SYNTHETIC, "none"},
	{OPT_CONTROL_CORE, "auto"},
	{OPT_SOCKET_DIR, "auto"},
	{OPT_ALLOW_UID, "none"},
	{OPT_ALLOW_GID, "none"},
	{OPT_MAX_SUBS, "65536"},
	{OPT_MAX_CLIENTS, "1024"},
	{OPT_MAX_RING_SLOTS, "1048576"},
	{OPT_MAX_QUEUES, "256"},
	{OPT_IDLE, "backoff"},
	{OPT_IDLE_SPIN_US, "100"},
	{OPT_IDLE_SLEEP_MS, "1"},
	{OPT_COALESCE_US, "0"},
	{OPT_STREAM_IO, "uring"},
	{OPT_LOG_LEVEL, "5"},
	{OPT_READY_FD, "none"},
	{OPT_GROUP, "none"},
	{OPT_PORT, "none"},
	{OPT_MAX_CLIENT_SUBS, "16384"},
	{OPT_MAX_CLIENT_FDS, "16384"},
	{OPT_MAX_CLIENT_GROUPS, "16"},
	{OPT_COUNTERS_MAX_OBJECTS, "1024"},
	{OPT_COUNTERS_INTERVAL_MS, "250"},
	{OPT_METRICS_LISTEN, "off"},
	{OPT_MAX_CLIENT_SLOTS, "4194304"},
	{OPT_HELLO_TIMEOUT_MS, "1000"},
	{OPT_MAX_PENDING_PER_UID, "128"},
	{OPT_MAX_PENDING, "1024"},
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: oneringd [EAL options --] [options]\n"
		"\n"
		"The onering broker: watches event sources and publishes records into the\n"
		"shared-memory rings of attached clients.\n"
		"\n"
		"  --name NAME          instance name (default: default)\n"
		"  --cores LIST         poller cores, e.g. 1 or 2,3 or 2-5 (one poller per core;\n"
		"                       default: one per NUMA node, not on the node's first core)\n"
		"  --poller NODE:CPU    a poller on CPU, which must be on NUMA node NODE\n"
		"                       (repeatable; instead of --cores)\n"
		"  --control-core CPU   pin the control thread (default: the first allowed CPU)\n"
		"  --synthetic DESC     plan for an hwloc synthetic topology instead of this\n"
		"                       machine, e.g. \"pack:2 numa:1 core:4 pu:2\"; with --check\n"
		"                       print the plan, else run on it (testing NUMA policies:\n"
		"                       no pinning, memory bound only where the node exists)\n"
		"  --port P:rxq=N[,group=G][,snaplen=B][,mode=rss|spread][,node=N]\n"
		"                       deliver DPDK port P (number or device name) as NIC\n"
		"                       records into group G (default: default); EAL options\n"
		"                       go before --, e.g. oneringd --no-huge --vdev net_null0\n"
		"                       -- --port net_null0:rxq=1 (repeatable)\n"
		"  --allow-inject       accept PORT_TX requests (transmit test frames)\n"
		"  --group NAME:SETTINGS  create group NAME at start, SETTINGS a comma list of\n"
		"                       policy=rr|least|sticky|lifo|local, numa=strict|\n"
		"                       interleave|spill:P, wake=lifo|fifo|rr|local-first,\n"
		"                       max_running=N, backlog=N (repeatable; `onering tune`\n"
		"                       changes them later), and who may use it:\n"
		"                       join=|post=|tune=WHO+WHO..., WHO a uid or user name,\n"
		"                       @GID or @group, or any (default: any client joins and\n"
		"                       posts; root and the broker's uid tune)\n"
		"  --socket-dir DIR     control socket directory (default: /run/onering as root,\n"
		"                       else $XDG_RUNTIME_DIR/onering)\n"
		"  --allow-uid UID      also serve this user (number or name; repeatable)\n"
		"  --allow-gid GID      also serve this group (number or name; repeatable)\n"
		"  --foreground         do not detach; log to stderr\n"
		"  --check              validate the options, print the resolved plan (pollers,\n"
		"                       groups, ports, limits), exit 0/1\n"
		"  --max-subs N         subscription table size (default 65536)\n"
		"  --max-clients N      attached clients at most (default 1024)\n"
		"  --max-ring-slots N   largest event ring a client may ask for (default 1048576)\n"
		"  --max-queues N       queues per client at most (default 256)\n"
		"  --max-client-subs N  subscriptions (timers included) per client (default 16384)\n"
		"  --max-client-fds N   fds the broker holds for one client: its socket, 3 per\n"
		"                       queue, 1 per fd source (default 16384)\n"
		"  --max-client-groups N  live groups one client may create (default 16)\n"
		"  --max-client-slots N ring slots (event + submission) of one client's queues\n"
		"                       (default 4194304)\n"
		"  --hello-timeout-ms N close a connection that has not said HELLO by then\n"
		"                       (default 1000)\n"
		"  --max-pending-per-uid N  connections without HELLO per served uid (default\n"
		"                       128; a refused uid gets 8, to be told why)\n"
		"  --max-pending N      connections without HELLO in all (default 1024)\n"
		"  --idle STRATEGY      what a poller does with nothing to do: busy (poll on,\n"
		"                       never block), backoff (poll --idle-spin-us, yield,\n"
		"                       then block), overprovisioned (block at once: for a\n"
		"                       core shared with other work) (default backoff)\n"
		"  --idle-spin-us N     backoff: poll this long before blocking (default 100)\n"
		"  --idle-sleep-ms N    backoff, overprovisioned: while a record or a post\n"
		"                       waits for room or a word is watched, block at most this\n"
		"                       long (else until woken or a timer is due); -1 never\n"
		"                       blocks, as --idle busy (default 1)\n"
		"  --coalesce-us N      after a loop that found more than one event, wait N us\n"
		"                       before the next (0..1000000): the events that come\n"
		"                       meanwhile are taken together, for less CPU per event\n"
		"                       and up to N us more latency (default 0: off)\n"
		"  --stream-io HOW      completion-mode sockets: uring (their receives and\n"
		"                       sends batched through a poller's io_uring; calls\n"
		"                       where io_uring is unavailable) or calls (recv and\n"
		"                       send with MSG_DONTWAIT, one each) (default uring)\n"
		"  --no-hugepages       never back rings with hugepages\n"
		"  --counters-max-objects N  objects the counters segment holds (default 1024;\n"
		"                       more are left out and counted as unlisted)\n"
		"  --counters-interval-ms N  copy the counters into their segment this often\n"
		"                       (default 250; also whenever a reader asks)\n"
		"  --metrics-listen [ADDR:]PORT  serve GET /metrics (Prometheus text) over HTTP;\n"
		"                       PORT alone binds 127.0.0.1, any other address must be\n"
		"                       written out (default off)\n"
		"  --log-level LEVEL    error, warning, notice, info, debug, or 3..7 (default notice)\n"
		"  --ready-fd FD        with --foreground: write one byte to FD once serving\n"
		"                       (for supervisors and tests), then close it\n"
		"  --config FILE        read options from an INI file first (oneringd.conf(5)):\n"
		"                       [oneringd] holds the options as keys, [group NAME]\n"
		"                       a group's settings; the command line wins; SIGHUP\n"
		"                       reloads it\n"
		"  -h, --help, -V, --version\n"
		"\n"
		"By default the broker serves its own uid and root (SO_PEERCRED).\n");
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* "1", "1,3", "2-5", "0,2-3" */
static int parse_cpu_list(const char *s, int *cpus, unsigned max, unsigned *n)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", s);
	*n = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint32_t lo, hi;
		char *dash = strchr(tok, '-');
		if (dash) {
			*dash = '\0';
			if (parse_u32(tok, 0, 4095, &lo) < 0 || parse_u32(dash + 1, 0, 4095, &hi) < 0 ||
			    hi < lo)
				return -EINVAL;
		} else {
			if (parse_u32(tok, 0, 4095, &lo) < 0)
				return -EINVAL;
			hi = lo;
		}
		for (uint32_t c = lo; c <= hi; c++) {
			if (*n >= max)
				return -E2BIG;
			cpus[(*n)++] = (int)c;
		}
	}
	return *n ? 0 : -EINVAL;
}

static int parse_uid(const char *s, uid_t *out)
{
	uint32_t v;
	struct passwd *pw;

	if (parse_u32(s, 0, UINT32_MAX - 1, &v) == 0) {
		*out = v;
		return 0;
	}
	pw = getpwnam(s);
	if (!pw)
		return -ENOENT;
	*out = pw->pw_uid;
	return 0;
}

static int parse_gid(const char *s, gid_t *out)
{
	uint32_t v;
	struct group *gr;

	if (parse_u32(s, 0, UINT32_MAX - 1, &v) == 0) {
		*out = v;
		return 0;
	}
	gr = getgrnam(s);
	if (!gr)
		return -ENOENT;
	*out = gr->gr_gid;
	return 0;
}

static void add_uid(struct broker_config *cfg, uid_t uid)
{
	for (unsigned i = 0; i < cfg->nr_allow_uids; i++)
		if (cfg->allow_uids[i] == uid)
			return;
	if (cfg->nr_allow_uids < BROKER_MAX_IDS)
		cfg->allow_uids[cfg->nr_allow_uids++] = uid;
}

/* User and group names of --group lists (broker_group_spec_parse). */
static int resolve_name(const char *name, bool group, uint32_t *id)
{
	struct passwd *pw;
	struct group *gr;

	if (group) {
		gr = getgrnam(name);
		if (!gr)
			return -ENOENT;
		*id = gr->gr_gid;
		return 0;
	}
	pw = getpwnam(name);
	if (!pw)
		return -ENOENT;
	*id = pw->pw_uid;
	return 0;
}

#define BAD(...)                                         \
	do {                                             \
		fprintf(stderr, "oneringd: " __VA_ARGS__); \
		fputc('\n', stderr);                     \
		return -EINVAL;                          \
	} while (0)

/* An option's value refused: the reason (and what it expects) in err. */
#define REFUSE(...)                                      \
	do {                                             \
		snprintf(err, err_size, __VA_ARGS__);    \
		return -EINVAL;                          \
	} while (0)

#define SRC(cfg, opt) (&(cfg)->src[(opt) - OPT_NAME])
static const char CMDLINE[] = "command line";

/* "true" / "false" (and yes/no, on/off, 1/0) of a flag in the file. */
static int parse_flag(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};

	for (unsigned i = 0; i < 4; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* A --group: merged into the entry of the same name (a later one's settings
 * and lists over the earlier's: the command line over the file). */
static int add_group(struct broker_config *cfg, const char *spec, const char *where, char *err,
		     size_t err_size)
{
	struct onering_msg_group g;
	struct broker_acl acls[BROKER_PERM_NR];
	unsigned i;

	if (broker_group_spec_parse(&g, acls, spec, resolve_name, err, err_size) < 0)
		return -EINVAL;
	for (i = 0; i < cfg->nr_groups; i++)
		if (strcmp(cfg->groups[i].name, g.name) == 0)
			break;
	if (i == cfg->nr_groups) {
		if (cfg->nr_groups == BROKER_MAX_GROUP_ARGS)
			REFUSE("--group: at most %d groups", BROKER_MAX_GROUP_ARGS);
		memset(&cfg->groups[i], 0, sizeof(cfg->groups[i]));
		memcpy(cfg->groups[i].name, g.name, sizeof(g.name));
		memset(cfg->group_acls[i], 0, sizeof(cfg->group_acls[i]));
		cfg->nr_groups++;
	}
	struct onering_msg_group *m = &cfg->groups[i];
	m->set |= g.set;
	if (g.set & ONERING_GSET_POLICY)
		m->policy = g.policy;
	if (g.set & ONERING_GSET_NUMA) {
		m->numa = g.numa;
		m->spill_pct = g.spill_pct;
	}
	if (g.set & ONERING_GSET_WAKE)
		m->wake = g.wake;
	if (g.set & ONERING_GSET_MAX_RUNNING)
		m->max_running = g.max_running;
	if (g.set & ONERING_GSET_BACKLOG)
		m->backlog_max = g.backlog_max;
	for (int k = 0; k < BROKER_PERM_NR; k++)
		if (acls[k].set)
			cfg->group_acls[i][k] = acls[k];
	snprintf(cfg->group_where[i], sizeof(cfg->group_where[i]), "%s", where);
	return 0;
}

static const char *opt_name(int opt)
{
	for (const struct option *o = long_opts; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

static bool reloading; /* broker_config_reload is parsing */

/* The options that are one count in a range, stored as it is. */
static const struct {
	int opt;
	uint32_t min, max;
	size_t off;
} count_opts[] = {
	{OPT_MAX_SUBS, 2, 1u << 24, offsetof(struct broker_config, max_subs)},
	{OPT_MAX_CLIENTS, 1, 1u << 20, offsetof(struct broker_config, max_clients)},
	{OPT_MAX_QUEUES, 1, 65536, offsetof(struct broker_config, max_queues_per_client)},
	{OPT_MAX_CLIENT_SUBS, 1, 1u << 24, offsetof(struct broker_config, max_client_subs)},
	{OPT_MAX_CLIENT_FDS, 4, 1u << 24, offsetof(struct broker_config, max_client_fds)},
	{OPT_MAX_CLIENT_GROUPS, 0, BROKER_MAX_GROUPS, offsetof(struct broker_config, max_client_groups)},
	{OPT_HELLO_TIMEOUT_MS, 10, 60000, offsetof(struct broker_config, hello_timeout_ms)},
	{OPT_MAX_PENDING_PER_UID, 1, 65536, offsetof(struct broker_config, max_pending_per_uid)},
	{OPT_MAX_PENDING, 1, 65536, offsetof(struct broker_config, max_pending)},
	{OPT_COUNTERS_MAX_OBJECTS, 16, 65536, offsetof(struct broker_config, counters_max_objects)},
	{OPT_COUNTERS_INTERVAL_MS, 10, 10000, offsetof(struct broker_config, counters_interval_ms)},
};

/* One option's value, from argv or the file (arg NULL: a flag on the
 * command line): the one place each option is checked. */
static int option_apply(struct broker_config *cfg, int opt, const char *arg, const char *where,
			char *err, size_t err_size)
{
	char buf[BROKER_SPEC_MAX];
	uint32_t v;
	bool flag = true;

	if (arg && strlen(arg) >= sizeof(buf))
		REFUSE("the value is too long (at most %zu bytes)", sizeof(buf) - 1);
	snprintf(buf, sizeof(buf), "%s", arg ? arg : "true");
	for (unsigned i = 0; i < sizeof(count_opts) / sizeof(count_opts[0]); i++)
		if (count_opts[i].opt == opt &&
		    parse_u32(buf, count_opts[i].min, count_opts[i].max,
			      (uint32_t *)((char *)cfg + count_opts[i].off)) < 0)
			REFUSE("bad value \"%s\" for --%s: expected %u..%u", buf, opt_name(opt), count_opts[i].min,
			       count_opts[i].max);
	switch (opt) {
	case OPT_FOREGROUND:
	case OPT_NO_HUGEPAGES:
	case OPT_ALLOW_INJECT:
		if (parse_flag(buf, &flag) < 0)
			REFUSE("bad value \"%s\" for --%s: expected true or false", buf, opt_name(opt));
		if (opt == OPT_FOREGROUND)
			cfg->foreground = flag;
		else if (opt == OPT_NO_HUGEPAGES)
			cfg->no_hugetlb = flag;
		else
			cfg->allow_inject = flag;
		break;
	case OPT_CHECK:
		cfg->check_only = true;
		break;
	case OPT_NAME:
		if (!onering_name_valid(buf))
			REFUSE("bad value \"%s\" for --name: use 1-31 of [A-Za-z0-9_.-], not starting with '.'", buf);
		snprintf(cfg->name, sizeof(cfg->name), "%s", buf);
		break;
	case OPT_CORES:
		if (parse_cpu_list(buf, cfg->poller_cpus, BROKER_MAX_POLLERS, &cfg->nr_pollers) < 0)
			REFUSE("bad value \"%s\" for --cores: expected a CPU list like 1 or 2,3 or 2-5 (at most %d)", buf,
			       BROKER_MAX_POLLERS);
		for (unsigned i = 0; i < cfg->nr_pollers; i++)
			cfg->poller_nodes[i] = -1;
		break;
	case OPT_POLLER: {
		uint32_t node, cpu;
		char *colon = strchr(buf, ':');
		if (!colon || cfg->nr_pollers >= BROKER_MAX_POLLERS)
			REFUSE("bad value \"%s\" for --poller: expected NODE:CPU, e.g. 1:9", buf);
		*colon = '\0';
		if (parse_u32(buf, 0, 4095, &node) < 0 || parse_u32(colon + 1, 0, 4095, &cpu) < 0)
			REFUSE("bad value \"%s:%s\" for --poller: expected NODE:CPU numbers", buf, colon + 1);
		cfg->poller_nodes[cfg->nr_pollers] = (int)node;
		cfg->poller_cpus[cfg->nr_pollers++] = (int)cpu;
		break;
	}
	case OPT_SYNTHETIC:
		snprintf(cfg->synthetic, sizeof(cfg->synthetic), "%s", buf);
		break;
	case OPT_CONTROL_CORE:
		if (parse_u32(buf, 0, 4095, &v) < 0)
			REFUSE("bad value \"%s\" for --control-core: expected a CPU number", buf);
		cfg->control_cpu = (int)v;
		break;
	case OPT_SOCKET_DIR:
		if (strlen(buf) >= sizeof(cfg->socket_dir) - 40)
			REFUSE("bad value \"%s\" for --socket-dir: path too long", buf);
		snprintf(cfg->socket_dir, sizeof(cfg->socket_dir), "%s", buf);
		break;
	case OPT_ALLOW_UID: {
		uid_t uid;
		if (parse_uid(buf, &uid) < 0)
			REFUSE("bad value \"%s\" for --allow-uid: no such user", buf);
		add_uid(cfg, uid);
		break;
	}
	case OPT_ALLOW_GID: {
		gid_t gid;
		if (parse_gid(buf, &gid) < 0)
			REFUSE("bad value \"%s\" for --allow-gid: no such group", buf);
		if (cfg->nr_allow_gids < BROKER_MAX_IDS)
			cfg->allow_gids[cfg->nr_allow_gids++] = gid;
		break;
	}
	case OPT_MAX_RING_SLOTS:
		if (parse_u32(buf, 1, ONERING_RING_MAX_CAPACITY, &v) < 0 ||
		    !onering_ring_capacity_valid(v))
			REFUSE("bad value \"%s\" for --max-ring-slots: expected a power of two up to %u", buf,
			       ONERING_RING_MAX_CAPACITY);
		cfg->max_capacity = v;
		break;
	case OPT_MAX_CLIENT_SLOTS:
		if (parse_u32(buf, 2, UINT32_MAX - 1, &v) < 0)
			REFUSE("bad value \"%s\" for --max-client-slots: expected 2..4294967294", buf);
		cfg->max_client_slots = v;
		break;
	case OPT_IDLE: {
		int idle = onering_idle_parse(buf);
		if (idle < 0)
			REFUSE("bad value \"%s\" for --idle: expected busy, backoff or overprovisioned", buf);
		cfg->idle = (unsigned)idle;
		break;
	}
	case OPT_STREAM_IO:
		if (strcmp(buf, "uring") == 0)
			cfg->stream_io = BROKER_STREAM_IO_URING;
		else if (strcmp(buf, "calls") == 0)
			cfg->stream_io = BROKER_STREAM_IO_CALLS;
		else
			REFUSE("bad value \"%s\" for --stream-io: expected uring or calls", buf);
		break;
	case OPT_IDLE_SPIN_US:
		if (parse_u32(buf, 0, 10u * 1000 * 1000, &v) < 0)
			REFUSE("bad value \"%s\" for --idle-spin-us: expected 0..10000000", buf);
		cfg->idle_spin_ns = (uint64_t)v * 1000;
		break;
	case OPT_COALESCE_US:
		if (parse_u32(buf, 0, BROKER_COALESCE_US_MAX, &v) < 0)
			REFUSE("bad value \"%s\" for --coalesce-us: expected 0..%u", buf,
			       BROKER_COALESCE_US_MAX);
		cfg->coalesce_ns = (uint64_t)v * 1000;
		break;
	case OPT_IDLE_SLEEP_MS:
		if (strcmp(buf, "-1") == 0)
			cfg->idle_sleep_ms = -1;
		else if (parse_u32(buf, 0, 1000, &v) == 0)
			cfg->idle_sleep_ms = (int)v;
		else
			REFUSE("bad value \"%s\" for --idle-sleep-ms: expected -1 or 0..1000", buf);
		break;
	case OPT_LOG_LEVEL: {
		int level = onering_log_level_parse(buf);
		if (level < 0)
			REFUSE("bad value \"%s\" for --log-level: expected error, warning, notice, info, debug (or "
			       "3..7)", buf);
		cfg->log_level = level;
		break;
	}
	case OPT_READY_FD:
		/* Closed once serving: a reload checks the number only. */
		if (parse_u32(buf, 3, 65535, &v) < 0 || (!reloading && fcntl((int)v, F_GETFD) < 0))
			REFUSE("bad value \"%s\" for --ready-fd: not an open file descriptor", buf);
		cfg->ready_fd = (int)v;
		break;
	case OPT_MAX_SUBS:
	case OPT_MAX_CLIENTS:
	case OPT_MAX_QUEUES:
	case OPT_MAX_CLIENT_SUBS:
	case OPT_MAX_CLIENT_FDS:
	case OPT_MAX_CLIENT_GROUPS:
	case OPT_HELLO_TIMEOUT_MS:
	case OPT_MAX_PENDING_PER_UID:
	case OPT_MAX_PENDING:
	case OPT_COUNTERS_MAX_OBJECTS:
	case OPT_COUNTERS_INTERVAL_MS:
		break; /* count_opts */
	case OPT_METRICS_LISTEN: {
		struct sockaddr_storage sa;
		unsigned sa_len;
		if (strcmp(buf, "off") == 0) {
			cfg->metrics_listen[0] = '\0';
			break;
		}
		if (strlen(buf) >= sizeof(cfg->metrics_listen) ||
		    broker_metrics_addr_parse(buf, &sa, &sa_len, err, err_size) < 0)
			REFUSE("--metrics-listen %s: expected PORT (on 127.0.0.1), ADDR:PORT, "
			       "[ADDR6]:PORT or off", buf);
		snprintf(cfg->metrics_listen, sizeof(cfg->metrics_listen), "%s", buf);
		break;
	}
	case OPT_GROUP:
		if (add_group(cfg, buf, where, err, err_size) < 0)
			return -EINVAL;
		break;
	case OPT_PORT: {
		struct broker_port_spec ps;
		if (cfg->nr_ports == BROKER_MAX_PORT_ARGS)
			REFUSE("--port: at most %d", BROKER_MAX_PORT_ARGS);
		if (broker_port_spec_parse(buf, &ps, err, err_size) < 0)
			return -EINVAL;
		/* the device is looked up when the EAL is up */
		memcpy(cfg->port_specs[cfg->nr_ports], buf, sizeof(buf));
		snprintf(cfg->port_where[cfg->nr_ports], BROKER_CFG_WHERE, "%s", where);
		cfg->ports[cfg->nr_ports] = cfg->port_specs[cfg->nr_ports];
		cfg->nr_ports++;
		break;
	}
	default:
		REFUSE("not an option");
	}
	/* Where it came from. A list given on the command line replaces the
	 * file's (see option_set); other repeatable values add up. */
	struct broker_config_src *src = SRC(cfg, opt);
	bool repeat = opt == OPT_POLLER || opt == OPT_ALLOW_UID || opt == OPT_ALLOW_GID ||
		      opt == OPT_PORT || opt == OPT_GROUP;
	if (repeat && src->given[0]) {
		size_t n = strlen(src->given);
		snprintf(src->given + n, sizeof(src->given) - n, " %s", buf);
	} else {
		snprintf(src->given, sizeof(src->given), "%s", buf);
	}
	snprintf(src->where, sizeof(src->where), "%s", where);
	return 0;
}

static bool from_file(const struct broker_config *cfg, int opt)
{
	const char *w = SRC(cfg, opt)->where;
	return w[0] && strcmp(w, CMDLINE) != 0;
}

static bool given(const struct broker_config *cfg, int opt)
{
	return SRC(cfg, opt)->where[0] != '\0';
}

/* --idle against the knobs of the other strategies: a knob the strategy
 * given does not use is refused, not ignored. Without --idle,
 * --idle-sleep-ms -1 (its spelling before --idle) means busy.
 * Returns 0, ONERING_CLI_USAGE (one of them on the command line) or
 * -EINVAL (both from the file). */
static int idle_resolve(struct broker_config *cfg, char *err, size_t err_size)
{
	const char *why = NULL;
	int knob = OPT_IDLE_SLEEP_MS;
	bool sleep_given = given(cfg, OPT_IDLE_SLEEP_MS), spin_given = given(cfg, OPT_IDLE_SPIN_US);

	if (!given(cfg, OPT_IDLE)) {
		if (cfg->idle_sleep_ms < 0)
			cfg->idle = BROKER_IDLE_BUSY;
		return 0;
	}
	if (cfg->idle == BROKER_IDLE_BUSY && sleep_given && cfg->idle_sleep_ms >= 0) {
		why = "busy never blocks: drop --idle-sleep-ms";
	} else if (cfg->idle == BROKER_IDLE_BUSY && spin_given) {
		why = "busy polls all the time: drop --idle-spin-us (backoff's spin)";
		knob = OPT_IDLE_SPIN_US;
	} else if (cfg->idle != BROKER_IDLE_BUSY && cfg->idle_sleep_ms < 0) {
		why = "-1 never blocks: that is --idle busy";
	} else if (cfg->idle == BROKER_IDLE_OVERPROVISIONED && spin_given && cfg->idle_spin_ns) {
		why = "overprovisioned never spins: drop --idle-spin-us (or use backoff)";
		knob = OPT_IDLE_SPIN_US;
	}
	if (!why)
		return 0;
	snprintf(err, err_size, "--idle %s (%s) with --%s %s (%s): %s", onering_idle_name(cfg->idle),
		 SRC(cfg, OPT_IDLE)->where, opt_name(knob), SRC(cfg, knob)->given,
		 SRC(cfg, knob)->where, why);
	return from_file(cfg, OPT_IDLE) && from_file(cfg, knob) ? -EINVAL : ONERING_CLI_USAGE;
}

/* A command-line value: --cores/--poller and --port lists replace the
 * file's (the command line wins); the rest goes through option_apply. */
static int option_set(struct broker_config *cfg, int opt, const char *arg, char *err,
		      size_t err_size)
{
	if ((opt == OPT_CORES || opt == OPT_POLLER) &&
	    (from_file(cfg, OPT_CORES) || from_file(cfg, OPT_POLLER))) {
		cfg->nr_pollers = 0;
		memset(SRC(cfg, OPT_CORES), 0, sizeof(struct broker_config_src));
		memset(SRC(cfg, OPT_POLLER), 0, sizeof(struct broker_config_src));
	}
	if (opt == OPT_PORT && from_file(cfg, OPT_PORT)) {
		cfg->nr_ports = 0;
		memset(SRC(cfg, OPT_PORT), 0, sizeof(struct broker_config_src));
	}
	return option_apply(cfg, opt, arg, CMDLINE, err, err_size);
}

/* A key of the --config file (broker_ini_fn). */
static int file_key(void *arg, const char *key, const char *value, unsigned line, char *err,
		    size_t err_size)
{
	struct broker_config *cfg = arg;
	char where[BROKER_CFG_WHERE];
	const struct option *o;

	for (o = long_opts; o->name; o++)
		if (strcmp(o->name, key) == 0)
			break;
	if (!o->name)
		REFUSE("unknown key \"%s\": the keys are oneringd's long options without the "
		       "dashes (oneringd --help), e.g. max-clients = 64", key);
	if (o->val == OPT_CHECK || o->val == OPT_HELP || o->val == OPT_VERSION ||
	    o->val == OPT_CONFIG)
		REFUSE("\"%s\" is for the command line only: remove it from the file", key);
	if (!value[0] && o->has_arg == required_argument)
		REFUSE("\"%s\" has no value: write %s = VALUE (oneringd --help says which)", key, key);
	snprintf(where, sizeof(where), "%s:%u", cfg->config_path, line);
	return option_apply(cfg, o->val, value, where, err, err_size);
}

/* The --config file, read whole (at most 1 MiB). */
static int config_file_load(struct broker_config *cfg, char *err, size_t err_size)
{
	FILE *f = fopen(cfg->config_path, "re");
	char *text;
	size_t n;

	if (!f)
		REFUSE("--config %s: %s (give the path of an INI file; see oneringd.conf(5))",
		       cfg->config_path, strerror(errno));
	text = malloc((1u << 20) + 1);
	if (!text) {
		fclose(f);
		REFUSE("--config %s: out of memory", cfg->config_path);
	}
	n = fread(text, 1, 1u << 20, f);
	bool big = n == 1u << 20 && fgetc(f) != EOF;
	int rd = ferror(f);
	fclose(f);
	if (rd || big) {
		free(text);
		REFUSE("--config %s: %s", cfg->config_path, rd ? "read error" : "larger than 1 MiB");
	}
	text[n] = '\0';
	if (memchr(text, '\0', n)) {
		free(text);
		REFUSE("--config %s: a NUL byte in it: not a text file", cfg->config_path);
	}
	int r = broker_ini_parse(text, cfg->config_path, file_key, cfg, err, err_size);
	free(text);
	return r;
}

/* Defaults, then the file, then the command line: 0, 1 (--help or
 * --version printed), ONERING_CLI_USAGE (a usage error: an unknown option,
 * a missing value, a stray word, a bad value on the command line) or
 * -EINVAL (the file, or a limit); err says what is wrong (empty when
 * onering_cli_getopt already said it). */
static int config_parse(struct broker_config *cfg, int argc, char **argv, char *err,
			size_t err_size)
{
	struct {
		int opt;
		char *arg;
	} given[512];
	unsigned nr_given = 0;
	int opt, r;

	err[0] = '\0';
	memset(cfg, 0, sizeof(*cfg));
	/* oneringd [EAL options] -- [broker options]: DPDK's convention. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			if (i > BROKER_MAX_EAL_ARGS - 1)
				REFUSE("too many EAL options (at most %d)", BROKER_MAX_EAL_ARGS - 1);
			for (int k = 0; k < i; k++)
				cfg->eal_argv[cfg->eal_argc++] = argv[k];
			argv[i] = argv[0];
			argv += i;
			argc -= i;
			break;
		}
	snprintf(cfg->name, sizeof(cfg->name), "default");
	cfg->control_cpu = -1; /* choose */
	cfg->max_subs = 65536;
	cfg->max_clients = 1024;
	cfg->default_capacity = 1024;
	cfg->default_sq_capacity = 256;
	cfg->max_capacity = 1u << 20; /* 64 MiB of records per queue */
	cfg->max_queues_per_client = 256;
	cfg->max_client_subs = 16384;
	cfg->max_client_fds = 16384;
	cfg->max_client_groups = 16;
	cfg->max_client_slots = 4u << 20;
	cfg->hello_timeout_ms = 1000;
	cfg->max_pending_per_uid = 128;
	cfg->max_pending = 1024;
	cfg->idle_spin_ns = 100 * 1000;
	cfg->idle_sleep_ms = 1;
	cfg->ready_fd = -1;
	cfg->counters_max_objects = 1024;
	cfg->counters_interval_ms = 250;
	add_uid(cfg, geteuid());
	add_uid(cfg, 0);

	optind = 0; /* glibc: start over (a reload parses again) */
	while ((opt = onering_cli_getopt("oneringd", argc, argv, "hV", long_opts)) != -1) {
		switch (opt) {
		case 'h':
		case OPT_HELP:
			usage(stdout);
			return 1;
		case 'V':
		case OPT_VERSION:
			printf("oneringd %s (shared-memory ABI %u.%u, control protocol %u)\n",
			       ONERING_PKG_VERSION, ONERING_ABI_MAJOR, ONERING_ABI_MINOR,
			       ONERING_PROTO_VERSION);
			return 1;
		case OPT_CONFIG:
			if (strlen(optarg) >= sizeof(cfg->config_path))
				REFUSE("--config %s: path too long", optarg);
			snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", optarg);
			break;
		case '?':
			return ONERING_CLI_USAGE; /* said */
		default:
			if (nr_given == sizeof(given) / sizeof(given[0]))
				REFUSE("too many options (at most %zu)", sizeof(given) / sizeof(given[0]));
			given[nr_given].opt = opt;
			given[nr_given++].arg = optarg;
		}
	}
	if (optind < argc) {
		snprintf(err, err_size, "unexpected argument \"%s\"", argv[optind]);
		return ONERING_CLI_USAGE;
	}
	if (cfg->config_path[0] && config_file_load(cfg, err, err_size) < 0)
		return -EINVAL;
	for (unsigned i = 0; i < nr_given; i++)
		if (option_set(cfg, given[i].opt, given[i].arg, err, err_size) < 0)
			return ONERING_CLI_USAGE; /* a bad value on the command line */
	r = idle_resolve(cfg, err, err_size);
	if (r != 0)
		return r;
	uint64_t total = (uint64_t)cfg->max_clients * cfg->max_queues_per_client;
	cfg->max_queues = total > 65536 ? 65536 : (uint32_t)total;
	return 0;
}

static int saved_argc;
static char *saved_argv[1024];

int broker_config_parse(struct broker_config *cfg, int argc, char **argv)
{
	char err[1024];

	/* Kept for a reload (config_parse reorders argv, as getopt does). */
	if (argc < (int)(sizeof(saved_argv) / sizeof(saved_argv[0]))) {
		saved_argc = argc;
		memcpy(saved_argv, argv, sizeof(char *) * (size_t)argc);
	}
	int r = config_parse(cfg, argc, argv, err, sizeof(err));
	if (r == ONERING_CLI_USAGE && err[0])
		onering_cli_error("oneringd", "%s", err);
	else if (r < 0 && err[0])
		fprintf(stderr, "oneringd: %s\n", err);
	return r;
}

int broker_config_resolve(struct broker_config *cfg)
{
	struct onering_topo *topo;
	char err[256];
	cpu_set_t allowed;

	char given[sizeof(cfg->socket_dir)];

	snprintf(given, sizeof(given), "%s", cfg->socket_dir);
	if (onering_socket_dir(given[0] ? given : NULL, cfg->socket_dir, sizeof(cfg->socket_dir)) < 0 ||
	    onering_socket_path(cfg->name, cfg->socket_dir, cfg->socket_path,
				sizeof(cfg->socket_path)) < 0)
		BAD("socket path for instance %s does not fit (use a shorter --socket-dir)",
		    cfg->name);
	if (onering_topo_load(cfg->synthetic[0] ? cfg->synthetic : NULL, &topo, err, sizeof(err)) < 0)
		BAD("--synthetic: %s", err);
	CPU_ZERO(&allowed);
	sched_getaffinity(0, sizeof(allowed), &allowed);
	struct onering_plan_request req = {
		.cpus = cfg->poller_cpus,
		.cpu_nodes = cfg->poller_nodes,
		.nr_cpus = cfg->nr_pollers,
		.control_cpu = cfg->control_cpu,
		/* A synthetic machine is not this one: every CPU of it counts. */
		.allowed = onering_topo_is_this_system(topo) ? &allowed : NULL,
	};
	char why[1024];
	int r = onering_plan_make(topo, &req, &cfg->plan, why, sizeof(why));
	onering_topo_free(topo);
	if (r < 0)
		BAD("%s: %s", cfg->nr_pollers ? "--cores/--poller" : "placement", why);
	/* A port homed on a node (node=N) needs that node's poller. */
	for (unsigned i = 0; i < cfg->nr_ports; i++) {
		struct broker_port_spec ps;
		bool served = false;
		if (broker_port_spec_parse(cfg->ports[i], &ps, why, sizeof(why)) < 0 || ps.node < 0)
			continue; /* refused at parse */
		for (unsigned k = 0; k < cfg->plan.nr_pollers; k++)
			served |= cfg->plan.pollers[k].node == ps.node;
		if (!served)
			BAD("--port %s: node=%d has no poller (pollers run on the nodes the plan "
			    "prints with --check; give one with --poller %d:CPU)",
			    cfg->ports[i], ps.node, ps.node);
	}
	return 0;
}

/* Group name's settings as configured: the defaults, then its --group
 * settings and lists. Returns where they came from. */
static const char *group_resolved(const struct broker_config *cfg, const char *name,
				  struct onering_msg_group *m, struct broker_acl acls[BROKER_PERM_NR])
{
	const char *where = "default";

	memset(acls, 0, sizeof(struct broker_acl) * BROKER_PERM_NR);
	memset(m, 0, sizeof(*m));
	broker_group_defaults(m);
	snprintf(m->name, sizeof(m->name), "%s", name);
	for (unsigned k = 0; k < cfg->nr_groups; k++) {
		const struct onering_msg_group *g = &cfg->groups[k];
		if (strcmp(g->name, name) != 0)
			continue;
		where = cfg->group_where[k];
		for (int w = 0; w < BROKER_PERM_NR; w++)
			if (cfg->group_acls[k][w].set)
				acls[w] = cfg->group_acls[k][w];
		if (g->set & ONERING_GSET_POLICY)
			m->policy = g->policy;
		if (g->set & ONERING_GSET_NUMA) {
			m->numa = g->numa;
			if (g->spill_pct)
				m->spill_pct = g->spill_pct;
		}
		if (g->set & ONERING_GSET_WAKE)
			m->wake = g->wake;
		if (g->set & ONERING_GSET_MAX_RUNNING)
			m->max_running = g->max_running;
		if (g->set & ONERING_GSET_BACKLOG)
			m->backlog_max = g->backlog_max;
	}
	return where;
}

/* The groups the broker creates at start, in id order: "default", each
 * --group (its settings over the defaults, in the order given), then each
 * group a --port names. */
static void print_groups(const struct broker_config *cfg, FILE *out)
{
	const char *names[1 + BROKER_MAX_GROUP_ARGS + BROKER_MAX_PORT_ARGS];
	char port_groups[BROKER_MAX_PORT_ARGS][ONERING_NAME_MAX];
	unsigned n = 0;

	names[n++] = "default";
	for (unsigned i = 0; i < cfg->nr_groups; i++)
		names[n++] = cfg->groups[i].name;
	for (unsigned i = 0; i < cfg->nr_ports; i++) {
		struct broker_port_spec ps;
		char err[256];
		if (broker_port_spec_parse(cfg->ports[i], &ps, err, sizeof(err)) == 0) {
			memcpy(port_groups[i], ps.group, sizeof(port_groups[i]));
			names[n++] = port_groups[i];
		}
	}
	unsigned id = 0;
	for (unsigned i = 0; i < n; i++) {
		bool seen = false;
		for (unsigned k = 0; k < i; k++)
			seen |= strcmp(names[k], names[i]) == 0;
		if (seen)
			continue;
		struct onering_msg_group m;
		struct broker_acl acls[BROKER_PERM_NR];
		group_resolved(cfg, names[i], &m, acls);
		char numa[16], running[16];
		if (m.numa == ONERING_NUMA_SPILL)
			snprintf(numa, sizeof(numa), "spill:%u", m.spill_pct);
		else
			snprintf(numa, sizeof(numa), "%s", onering_numa_name(m.numa));
		if (m.max_running)
			snprintf(running, sizeof(running), "%u", m.max_running);
		else
			snprintf(running, sizeof(running), "cpus");
		fprintf(out, "group %-8u%s: policy=%s numa=%s wake=%s max_running=%s backlog=%u\n", ++id,
			names[i], onering_policy_name(m.policy), numa, onering_wake_name(m.wake), running,
			m.backlog_max);
		static const char *const what[BROKER_PERM_NR] = {"join", "post", "tune"};
		fprintf(out, "              ");
		for (int k = 0; k < BROKER_PERM_NR; k++) {
			const struct broker_acl *a = acls[k].set ? &acls[k] : NULL;
			fprintf(out, " %s=", what[k]);
			if (!a) { /* the defaults of a configured group */
				fprintf(out, "%s", k == BROKER_PERM_TUNE ? "root+broker" : "any");
				continue;
			}
			fprintf(out, "root+broker%s", a->any ? "+any" : "");
			for (unsigned e = 0; e < a->nr; e++)
				fprintf(out, "+%s%u", a->e[e].is_gid ? "@" : "", (unsigned)a->e[e].id);
		}
		fputc('\n', out);
	}
}

/* The NIC ports (devices are looked up once the EAL is up). */
static void print_ports(const struct broker_config *cfg, FILE *out)
{
	if (cfg->nr_ports == 0) {
		fprintf(out, "ports         none (the EAL is %s)\n",
			cfg->eal_argc > 1 ? "started for the EAL options given" : "not started");
		return;
	}
	for (unsigned i = 0; i < cfg->nr_ports; i++) {
		struct broker_port_spec ps;
		char err[256];
		if (broker_port_spec_parse(cfg->ports[i], &ps, err, sizeof(err)) < 0)
			continue; /* refused at parse */
		fprintf(out, "port          %s: rxq=%u group=%s snaplen=%u mode=%s", ps.dev, ps.rxq,
			ps.group, ps.snaplen, ps.spread ? "spread" : "rss");
		if (ps.node >= 0)
			fprintf(out, " node=%d", ps.node);
		fputc('\n', out);
	}
	fprintf(out, "eal          ");
	for (int i = 1; i < cfg->eal_argc; i++)
		fprintf(out, " %s", cfg->eal_argv[i]);
	fprintf(out, "%s (devices are looked up when it starts)\n", cfg->eal_argc > 1 ? "" : " defaults");
	bool no_telemetry = false;
	for (int i = 1; i < cfg->eal_argc; i++)
		no_telemetry |= strcmp(cfg->eal_argv[i], "--no-telemetry") == 0;
	fprintf(out, "telemetry     %s\n", no_telemetry ? "off (--no-telemetry)"
			: "on: /onering/ commands for dpdk-telemetry.py (its socket is checked when "
			  "the EAL starts)");
}

/* Every option (a key of the file) with its value and where it came from:
 * "default", "command line" or FILE:LINE. */
static void print_options(const struct broker_config *cfg, FILE *out)
{
	char dflt[64];

	fprintf(out, "config        %s\n", cfg->config_path[0] ? cfg->config_path : "none");
	for (const struct option *o = long_opts; o->name; o++) {
		const struct broker_config_src *src = SRC(cfg, o->val);
		const char *value = src->given;
		if (o->val == OPT_CHECK || o->val == OPT_HELP || o->val == OPT_VERSION ||
		    o->val == OPT_CONFIG)
			continue;
		if (!src->where[0]) {
			dflt[0] = '\0';
			if (o->has_arg == no_argument)
				snprintf(dflt, sizeof(dflt), "false");
			for (unsigned k = 0; k < sizeof(option_defaults) / sizeof(option_defaults[0]); k++)
				if (option_defaults[k].opt == o->val)
					snprintf(dflt, sizeof(dflt), "%s", option_defaults[k].value);
			value = dflt;
		}
		fprintf(out, "option        %s = %s  (%s)\n", o->name, value,
			src->where[0] ? src->where : "default");
	}
	/* Each configured group and port: where it was last set. */
	for (unsigned i = 0; i < cfg->nr_groups; i++)
		fprintf(out, "source        group %s  (%s)\n", cfg->groups[i].name, cfg->group_where[i]);
	for (unsigned i = 0; i < cfg->nr_ports; i++)
		fprintf(out, "source        port %s  (%s)\n", cfg->ports[i], cfg->port_where[i]);
}

/* The idle strategy, what it does with the knobs, and where it came from. */
static void print_idle(const struct broker_config *cfg, FILE *out)
{
	const char *where = given(cfg, OPT_IDLE) ? SRC(cfg, OPT_IDLE)->where
			    : cfg->idle == BROKER_IDLE_BUSY ? "--idle-sleep-ms -1"
							    : "default";

	fprintf(out, "idle          %s (%s): ", onering_idle_name(cfg->idle), where);
	if (cfg->idle == BROKER_IDLE_BUSY)
		fprintf(out, "poll on, never block\n");
	else if (cfg->idle == BROKER_IDLE_OVERPROVISIONED)
		fprintf(out, "block at once (at most %d ms while a record waits for space or a "
			"word is watched)\n", cfg->idle_sleep_ms);
	else
		fprintf(out, "poll %llu us, yield, then block (at most %d ms while a record waits "
			"for space or a word is watched)\n",
			(unsigned long long)(cfg->idle_spin_ns / 1000), cfg->idle_sleep_ms);
	if (cfg->coalesce_ns)
		fprintf(out, "coalesce      %llu us after a loop that found more than one event\n",
			(unsigned long long)(cfg->coalesce_ns / 1000));
	else
		fprintf(out, "coalesce      off\n");
}

void broker_config_print(const struct broker_config *cfg, FILE *out)
{
	fprintf(out, "instance      %s\n", cfg->name);
	fprintf(out, "socket        %s\n", cfg->socket_path);
	struct onering_topo *topo;
	if (onering_topo_load(cfg->synthetic[0] ? cfg->synthetic : NULL, &topo, NULL, 0) == 0) {
		onering_plan_print(topo, &cfg->plan, out);
		onering_distances_print(topo, out);
		onering_topo_free(topo);
	}
	fprintf(out, "allowed uids ");
	for (unsigned i = 0; i < cfg->nr_allow_uids; i++)
		fprintf(out, " %u", (unsigned)cfg->allow_uids[i]);
	fprintf(out, "\nallowed gids ");
	for (unsigned i = 0; i < cfg->nr_allow_gids; i++)
		fprintf(out, " %u", (unsigned)cfg->allow_gids[i]);
	fprintf(out, "\nmax subs      %u\nmax clients   %u\nring slots    %u (default)\n",
		cfg->max_subs, cfg->max_clients, cfg->default_capacity);
	fprintf(out, "per client    %u queues, %u subscriptions, %u fds, %u groups, %llu ring slots\n",
		cfg->max_queues_per_client, cfg->max_client_subs, cfg->max_client_fds,
		cfg->max_client_groups, (unsigned long long)cfg->max_client_slots);
	fprintf(out, "connections   HELLO within %u ms; without it at most %u per uid, %u in all\n",
		cfg->hello_timeout_ms, cfg->max_pending_per_uid, cfg->max_pending);
	print_idle(cfg, out);
	fprintf(out, "stream io     %s\n", cfg->stream_io == BROKER_STREAM_IO_CALLS
					    ? "recv/send calls with MSG_DONTWAIT (--stream-io calls)"
					    : "io_uring, one enter per batch (calls where unavailable)");
	fprintf(out, "hugepages     %s\n", cfg->no_hugetlb ? "off" : "when reserved");
	fprintf(out, "counters      segment of %u objects (%zu KiB), updated every %u ms and when "
		"read\n", cfg->counters_max_objects,
		onering_counters_seg_size(cfg->counters_max_objects) / 1024, cfg->counters_interval_ms);
	if (cfg->metrics_listen[0])
		fprintf(out, "metrics       http://%s%s/metrics\n",
			strchr(cfg->metrics_listen, ':') ? "" : "127.0.0.1:", cfg->metrics_listen);
	else
		fprintf(out, "metrics       off (--metrics-listen)\n");
	print_groups(cfg, out);
	print_ports(cfg, out);
	print_options(cfg, out);
}

/* The options a reload sets live (read on each use by the control thread). */
#define LIVE_LIMITS(X)                                         \
	X(OPT_MAX_RING_SLOTS, max_capacity)                    \
	X(OPT_MAX_CLIENT_SUBS, max_client_subs)                \
	X(OPT_MAX_CLIENT_FDS, max_client_fds)                  \
	X(OPT_MAX_CLIENT_GROUPS, max_client_groups)            \
	X(OPT_MAX_CLIENT_SLOTS, max_client_slots)              \
	X(OPT_HELLO_TIMEOUT_MS, hello_timeout_ms)              \
	X(OPT_MAX_PENDING_PER_UID, max_pending_per_uid)        \
	X(OPT_MAX_PENDING, max_pending)

static bool group_settings_equal(const struct onering_msg_group *a, const struct onering_msg_group *b)
{
	return a->policy == b->policy && a->numa == b->numa && a->spill_pct == b->spill_pct &&
	       a->wake == b->wake && a->max_running == b->max_running &&
	       a->backlog_max == b->backlog_max;
}

/* Each group either configuration names: its new settings applied to the
 * live group as `onering tune` applies them; changed lists are reported. */
static unsigned reload_groups(struct broker *b, const struct broker_config *next, unsigned *restart)
{
	const char *names[2 * BROKER_MAX_GROUP_ARGS + 1];
	unsigned n = 0, changed = 0;

	names[n++] = "default";
	for (unsigned i = 0; i < b->cfg.nr_groups; i++)
		names[n++] = b->cfg.groups[i].name;
	for (unsigned i = 0; i < next->nr_groups; i++)
		names[n++] = next->groups[i].name;
	for (unsigned i = 0; i < n; i++) {
		bool seen = false;
		for (unsigned k = 0; k < i; k++)
			seen |= strcmp(names[k], names[i]) == 0;
		if (seen)
			continue;
		struct onering_msg_group was, now;
		struct broker_acl was_acl[BROKER_PERM_NR], now_acl[BROKER_PERM_NR];
		struct broker_group *g;
		group_resolved(&b->cfg, names[i], &was, was_acl);
		const char *where = group_resolved(next, names[i], &now, now_acl);
		if (memcmp(was_acl, now_acl, sizeof(was_acl)) != 0) {
			onering_log(ONERING_LOG_WARN, "reload: group '%s': join/post/tune lists "
				    "changed (%s): needs a restart; the running lists stay", names[i],
				    where);
			(*restart)++;
		}
		if (group_settings_equal(&was, &now))
			continue;
		now.set = ONERING_GSET_ALL;
		if (broker_group_get(b, names[i], false, NULL, &g) == 0 &&
		    broker_group_apply(g, &now) < 0) {
			onering_log(ONERING_LOG_ERR, "reload: group '%s': settings refused", names[i]);
			continue;
		}
		onering_log(ONERING_LOG_NOTICE, "reload: group '%s' (%s): policy %s, numa %s:%u, "
			    "wake %s, max_running %u, backlog %u", names[i], where,
			    onering_policy_name(now.policy), onering_numa_name(now.numa), now.spill_pct,
			    onering_wake_name(now.wake), now.max_running, now.backlog_max);
		changed++;
	}
	/* Groups created from now on take the new settings (and lists). */
	b->cfg.nr_groups = next->nr_groups;
	memcpy(b->cfg.groups, next->groups, sizeof(b->cfg.groups));
	memcpy(b->cfg.group_acls, next->group_acls, sizeof(b->cfg.group_acls));
	memcpy(b->cfg.group_where, next->group_where, sizeof(b->cfg.group_where));
	if (changed)
		broker_pollers_settle(b); /* as a tune's reply waits for it */
	return changed;
}

int broker_config_reload(struct broker *b)
{
	static struct broker_config next; /* large; the control thread only */
	char *argv[sizeof(saved_argv) / sizeof(saved_argv[0])];
	char err[1024];
	unsigned changed = 0, restart = 0;

	if (!b->cfg.config_path[0]) {
		onering_log(ONERING_LOG_NOTICE, "SIGHUP: started without --config: nothing to "
			    "reload");
		return 0;
	}
	if (saved_argc == 0) {
		onering_log(ONERING_LOG_ERR, "reload: the command line was too long to keep: "
			    "restart to change the configuration");
		return -EINVAL;
	}
	memcpy(argv, saved_argv, sizeof(char *) * (size_t)saved_argc);
	opterr = 0; /* the same command line as at start: already checked */
	reloading = true;
	int r = config_parse(&next, saved_argc, argv, err, sizeof(err));
	reloading = false;
	opterr = 1;
	if (r != 0) {
		onering_log(ONERING_LOG_ERR, "reload: %s; nothing changed, the running "
			    "configuration stays", err[0] ? err : "the command line no longer parses");
		return -EINVAL;
	}
	changed += reload_groups(b, &next, &restart);
#define RELOAD_LIMIT(opt, field)                                                              \
	if (next.field != b->cfg.field) {                                                     \
		onering_log(ONERING_LOG_NOTICE, "reload: %s %llu -> %llu (%s)", opt_name(opt), \
			    (unsigned long long)b->cfg.field, (unsigned long long)next.field,       \
			    SRC(&next, opt)->where[0] ? SRC(&next, opt)->where : "default");        \
		b->cfg.field = next.field;                                                    \
		changed++;                                                                    \
	}
	LIVE_LIMITS(RELOAD_LIMIT)
#undef RELOAD_LIMIT
	if (next.log_level != b->cfg.log_level) {
		const char *env = getenv("ONERING_LOG_LEVEL"); /* what an unset level means */
		int level = next.log_level ? next.log_level : env ? atoi(env) : ONERING_LOG_NOTICE;
		onering_log(ONERING_LOG_NOTICE, "reload: log-level %d", level);
		onering_log_set_level(level);
		b->cfg.log_level = next.log_level;
		changed++;
	}
	/* The rest is fixed at start: report what differs. */
	for (const struct option *o = long_opts; o->name; o++) {
		int opt = o->val;
		bool live = opt == OPT_GROUP || opt == OPT_LOG_LEVEL || opt == OPT_CONFIG ||
			    opt == OPT_CHECK || opt == OPT_HELP || opt == OPT_VERSION;
#define IS_LIVE(o, field) live |= opt == (o);
		LIVE_LIMITS(IS_LIVE)
#undef IS_LIVE
		const struct broker_config_src *was = SRC(&b->cfg, opt), *now = SRC(&next, opt);
		if (live || strcmp(was->given, now->given) == 0)
			continue;
		onering_log(ONERING_LOG_WARN, "reload: %s changed (%s -> %s, %s): needs a restart; "
			    "running with %s", o->name, was->given[0] ? was->given : "default",
			    now->given[0] ? now->given : "default",
			    now->where[0] ? now->where : "default",
			    was->given[0] ? was->given : "the default");
		restart++;
	}
	onering_log(ONERING_LOG_NOTICE, "reloaded %s: %u change%s live, %u need%s a restart",
		    b->cfg.config_path, changed, changed == 1 ? "" : "s", restart,
		    restart == 1 ? "s" : "");
	return 0;
}

static void syslog_sink(int level, const char *msg, void *arg)
{
	(void)arg;
	syslog(level, "%s", msg);
}

/* In the foreground under systemd (stderr is the journal: $JOURNAL_STREAM)
 * each line starts with its sd-daemon(3) priority, <3> .. <7> (the same
 * numbers as our levels), so the journal files it at that level. */
static void stderr_sink(int level, const char *msg, void *arg)
{
	const char *js = getenv("JOURNAL_STREAM");
	char prio[8] = "";

	(void)arg;
	if (js && *js)
		snprintf(prio, sizeof(prio), "<%d>", level);
	/* One call, so one write to the unbuffered stream: threads logging at
	 * once do not split each other's lines (a priority alone on a line). */
	fprintf(stderr, "%soneringd[%d]: %s%s\n", prio, (int)getpid(),
		level <= ONERING_LOG_ERR ? "error: " : level == ONERING_LOG_WARN ? "warning: " : "",
		msg);
}

/* Fork into the background; the parent exits once the child is ready (0)
 * or has failed (1). Returns the write end of the readiness pipe in the child. */
static int daemonize(void)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		ssize_t n = read(p[0], &c, 1);
		_exit(n == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	if (chdir("/") < 0)
		return -errno;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
	return p[1];
}

int main(int argc, char **argv)
{
	static _Alignas(64) struct broker b; /* its pollers are laid out by cache line */
	int r = broker_config_parse(&b.cfg, argc, argv);

	if (r != 0)
		return r == 1 ? 0 : r == ONERING_CLI_USAGE ? ONERING_CLI_USAGE : 1;
	if (b.cfg.log_level)
		onering_log_set_level(b.cfg.log_level);
	b.reload = broker_config_reload;
	if (broker_config_resolve(&b.cfg) < 0)
		return 1;
	if (b.cfg.check_only) {
		char err[512];
		broker_config_print(&b.cfg, stdout);
		if (broker_control_check(&b.cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "oneringd: %s\n", err);
			return 1;
		}
		printf("plan OK\n");
		return 0;
	}
	if (onering_topo_load(b.cfg.synthetic[0] ? b.cfg.synthetic : NULL, &b.topo, NULL, 0) < 0) {
		fprintf(stderr, "oneringd: cannot load the machine topology (hwloc)\n");
		return 1;
	}
	/* Every source is an fd: take the whole hard limit the operator gave
	 * (the per-client --max-client-fds share it out; at the limit the
	 * broker refuses new clients and keeps serving the others). */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrandom(&b.epoch, sizeof(b.epoch), 0) != sizeof(b.epoch))
		b.epoch = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	b.ready_fd = b.cfg.ready_fd;
	if (b.cfg.foreground) {
		onering_log_set_sink(stderr_sink, NULL);
	} else {
		/* Errors before the detach still reach the terminal. */
		char err[512];
		if (broker_control_check(&b.cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "oneringd: %s\n", err);
			return 1;
		}
		b.ready_fd = daemonize();
		if (b.ready_fd < 0) {
			fprintf(stderr, "oneringd: cannot detach: %s\n", strerror(-b.ready_fd));
			return 1;
		}
		openlog("oneringd", LOG_PID, LOG_DAEMON);
		onering_log_set_sink(syslog_sink, NULL);
	}
	if (b.cfg.synthetic[0])
		onering_log(ONERING_LOG_WARN, "running on the synthetic topology \"%s\" (for testing "
			    "NUMA policies): threads are not pinned, and memory is bound only to "
			    "nodes this machine has", b.cfg.synthetic);
	r = onering_topo_pin_thread(b.topo, b.cfg.plan.control_cpu);
	if (r < 0)
		onering_log(ONERING_LOG_WARN, "cannot pin the control thread to cpu %d: %s",
			    b.cfg.plan.control_cpu, strerror(-r));
	r = broker_run(&b);
	onering_topo_free(b.topo);
	if (r < 0) {
		onering_log(ONERING_LOG_ERR, "stopped: %s", strerror(-r));
		return 1;
	}
	onering_log(ONERING_LOG_NOTICE, "instance \"%s\" stopped cleanly", b.cfg.name);
	return 0;
}
