/* SPDX-License-Identifier: MIT */
/*
 * DPDK NIC receive queues as event sources.
 *
 *   oneringd [EAL options] -- [broker options] --port P:rxq=N[,group=G][,snaplen=B][,mode=M]
 *
 * Setup (control thread, before the pollers start): the EAL with the given
 * options plus defaults (--file-prefix onering-NAME, -l CONTROL_CPU, a quiet
 * log level); one mbuf pool per NUMA node that has ports; each port
 * configured with N rx queues (RSS when N > 1) and one tx queue (for
 * PORT_TX), started promiscuous. Each rx queue is homed on the poller of
 * the port's node (node=N when given, which virtual devices need to be
 * homed anywhere but the first poller; else rte_eth_dev_socket_id, or
 * hwloc's locality of its PCI device when DPDK does not know it), or
 * spread over all pollers
 * (mode=spread), and delivers into a group.
 *
 * The hot path (the poller that owns the queue, every loop): one
 * rte_eth_rx_burst; per packet one NIC record placed into a member queue of
 * the group that this poller serves and that has a packet area, the first
 * snaplen bytes copied into that queue's packet slot (the area is indexed
 * like the ring: the slot's reuse frees it, no buffer bookkeeping); the
 * flow key is the RSS hash (the NIC's, or when the device gives none - as
 * virtual devices do - the same Toeplitz hash computed here over the IP
 * addresses and TCP/UDP ports), so a sticky group keeps a flow on one queue.
 * No member with room: the packet is dropped and counted, as the NIC would
 * drop it. The burst's mbufs are freed in bulk.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_thash.h>
#include <rte_version.h>

#include "broker/broker.h"
#include "broker/queue.h"
#include "broker/group.h"
#include "broker/settings.h"
#include "broker/telemetry.h"
#include "numa/topology.h"
#include "shm/log.h"

#define RX_DESC 1024
#define TX_DESC 256
#define POOL_MBUFS 8191
#define POOL_CACHE 256
#define MAX_NODES 64

ONERING_STATIC_ASSERT(BROKER_PORT_DEV_MAX == RTE_ETH_NAME_MAX_LEN, "a --port device name fits");

struct nic_port {
	uint16_t port;
	uint16_t nr_rxq;
	int node; /* NUMA node of the device, -1 unknown */
	char name[RTE_ETH_NAME_MAX_LEN];
	char driver[64];
	bool started;
};

struct broker_nic {
	struct nic_port ports[BROKER_MAX_PORT_ARGS];
	unsigned nr_ports;
	struct rte_mempool *pools[MAX_NODES + 1]; /* by node; [MAX_NODES]: SOCKET_ID_ANY */
	struct broker_rxq *rxqs;                  /* all of them; pollers point into it */
	unsigned nr_rxqs;
};

bool broker_nic_active(const struct broker *b)
{
	return b->nic != NULL;
}

static bool has_arg(int argc, char **argv, const char *a, const char *b)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], a) == 0 || (b && strcmp(argv[i], b) == 0) ||
		    strncmp(argv[i], a, strlen(a)) == 0)
			return true;
	return false;
}

/* The value of EAL option a ("--file-prefix=X" or "--file-prefix X"), or NULL. */
static const char *arg_value(int argc, char **argv, const char *a)
{
	size_t len = strlen(a);

	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], a, len) != 0)
			continue;
		if (argv[i][len] == '=')
			return argv[i] + len + 1;
		if (argv[i][len] == '\0' && i + 1 < argc)
			return argv[i + 1];
	}
	return NULL;
}

/*
 * Telemetry (DPDK's socket, with onering's /onering/ commands): on unless
 * the EAL options say --no-telemetry. The EAL makes the socket in its
 * runtime directory (0700, the broker's uid); rte_eal_init fails when the
 * socket's path is too long, and when that directory cannot be made the
 * socket lands in its parent. So unless the user asked for telemetry in
 * so many words (--telemetry), the broker checks first and, where the EAL
 * would fail or the socket would not be private, starts without it and
 * says why. Returns the option to add, or NULL.
 */
static char *telemetry_arg(struct broker_config *cfg, const char *prefix)
{
	static char off[] = "--no-telemetry";
	char err[512];

	if (has_arg(cfg->eal_argc, cfg->eal_argv, "--no-telemetry", NULL) ||
	    has_arg(cfg->eal_argc, cfg->eal_argv, "--telemetry", NULL))
		return NULL;
	if (broker_telemetry_preflight(prefix, err, sizeof(err)) < 0) {
		onering_log(ONERING_LOG_WARN, "DPDK telemetry off: %s (or pass --no-telemetry "
			    "before -- to say so)", err);
		return off;
	}
	return NULL;
}

int broker_nic_init(struct broker *b)
{
	struct broker_config *cfg = &b->cfg;
	char *argv[BROKER_MAX_EAL_ARGS + 8];
	char prefix[64], lcore[32];
	char loglevel[] = "--log-level=lib.eal:warning";
	const char *file_prefix = arg_value(cfg->eal_argc, cfg->eal_argv, "--file-prefix");
	int argc = 0;

	if (cfg->eal_argc <= 1 && cfg->nr_ports == 0)
		return 0; /* no NIC: DPDK stays out of it */
	for (int i = 0; i < cfg->eal_argc; i++)
		argv[argc++] = cfg->eal_argv[i];
	/* Defaults a user did not give: a private runtime directory named
	 * after the instance, the control thread's CPU as the EAL's only
	 * lcore (pollers register themselves), and no chatter. */
	if (!file_prefix) {
		snprintf(prefix, sizeof(prefix), "--file-prefix=onering-%s", cfg->name);
		argv[argc++] = prefix;
		file_prefix = prefix + strlen("--file-prefix=");
	}
	if (!has_arg(cfg->eal_argc, cfg->eal_argv, "-l", "--lcores") &&
	    !has_arg(cfg->eal_argc, cfg->eal_argv, "-c", NULL)) {
		snprintf(lcore, sizeof(lcore), "-l%d", cfg->plan.control_cpu);
		argv[argc++] = lcore;
	}
	if (!has_arg(cfg->eal_argc, cfg->eal_argv, "--log-level", NULL))
		argv[argc++] = loglevel;
	char *telemetry = telemetry_arg(cfg, file_prefix);
	if (telemetry)
		argv[argc++] = telemetry;
	bool telemetry_on = !telemetry && !has_arg(cfg->eal_argc, cfg->eal_argv, "--no-telemetry",
						   NULL);
	argv[argc] = NULL;

	int r = rte_eal_init(argc, argv);
	if (r < 0) {
		int e = rte_errno;
		onering_log(ONERING_LOG_ERR, "DPDK EAL init failed: %s%s", rte_strerror(e),
			    e == ENOMEM || e == EFAULT
				    ? " (no hugepages? reserve some: echo 64 > "
				      "/proc/sys/vm/nr_hugepages, or pass --no-huge before --)"
				    : telemetry_on ? " (if DPDK said telemetry failed: pass "
						     "--no-telemetry before --)" : "");
		return -(e ? e : EINVAL);
	}
	b->nic = calloc(1, sizeof(*b->nic));
	if (!b->nic) {
		rte_eal_cleanup();
		return -ENOMEM;
	}
	onering_log(ONERING_LOG_INFO, "DPDK %s: %u ports available", rte_version(),
		    rte_eth_dev_count_avail());
	return 0;
}

static struct rte_mempool *node_pool(struct broker_nic *n, int node)
{
	unsigned at = node >= 0 && node < MAX_NODES ? (unsigned)node : MAX_NODES;
	char name[RTE_MEMPOOL_NAMESIZE];

	if (n->pools[at])
		return n->pools[at];
	snprintf(name, sizeof(name), "onering_mb_%u", at);
	n->pools[at] = rte_pktmbuf_pool_create(name, POOL_MBUFS, POOL_CACHE, 0,
					       RTE_MBUF_DEFAULT_BUF_SIZE,
					       node >= 0 ? node : SOCKET_ID_ANY);
	if (!n->pools[at] && node >= 0) /* a node without memory: anywhere */
		n->pools[at] = rte_pktmbuf_pool_create(name, POOL_MBUFS, POOL_CACHE, 0,
						       RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	return n->pools[at];
}

/* Port id of a --port's device: a number, or an ethdev name (net_ring0). */
static int port_lookup(const char *dev, uint16_t *port)
{
	char *end;
	unsigned long v = strtoul(dev, &end, 10);

	if (!*end && end != dev) {
		if (v >= RTE_MAX_ETHPORTS || !rte_eth_dev_is_valid_port((uint16_t)v))
			return -ENODEV;
		*port = (uint16_t)v;
		return 0;
	}
	return rte_eth_dev_get_port_by_name(dev, port) == 0 ? 0 : -ENODEV;
}

static int port_start(struct broker *b, struct nic_port *np, const struct broker_port_spec *ps)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	int node = rte_eth_dev_socket_id(np->port);
	int r;

	r = rte_eth_dev_info_get(np->port, &info);
	if (r < 0)
		return r;
	if (ps->node >= 0) {
		node = ps->node; /* the operator's node=N wins */
	} else if (node < 0 && info.device) {
		/* DPDK does not know: ask hwloc where the PCI device hangs (a
		 * virtual device has no bus id and stays unknown). */
		char err[128];
		int n = onering_topo_pci_node(b->topo, rte_dev_name(info.device), err, sizeof(err));
		if (n >= 0)
			node = n;
	}
	np->node = node;
	snprintf(np->driver, sizeof(np->driver), "%s", info.driver_name);
	rte_eth_dev_get_name_by_port(np->port, np->name);
	if (ps->rxq > info.max_rx_queues) {
		onering_log(ONERING_LOG_ERR, "port %u (%s, driver %s): rxq=%u but the device has at "
			    "most %u rx queues: use rxq=%u, or several ports", np->port, np->name,
			    np->driver, ps->rxq, info.max_rx_queues, info.max_rx_queues);
		return -EINVAL;
	}
	memset(&conf, 0, sizeof(conf));
	if (ps->rxq > 1) {
		if (!info.flow_type_rss_offloads) {
			onering_log(ONERING_LOG_ERR, "port %u (%s, driver %s): rxq=%u needs RSS, which "
				    "the device does not offer: use rxq=1 (one port per queue "
				    "with virtual devices)", np->port, np->name, np->driver, ps->rxq);
			return -EINVAL;
		}
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads &
						   (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP);
	}
	r = rte_eth_dev_configure(np->port, (uint16_t)ps->rxq, 1, &conf);
	if (r < 0) {
		onering_log(ONERING_LOG_ERR, "port %u (%s, driver %s): configure: %s", np->port,
			    np->name, np->driver, rte_strerror(-r));
		return r;
	}
	struct rte_mempool *pool = node_pool(b->nic, node);
	if (!pool) {
		onering_log(ONERING_LOG_ERR, "port %u (%s): no memory for an mbuf pool of %u on node "
			    "%d: %s (with --no-huge, give the EAL more memory: -m 512)", np->port,
			    np->name, POOL_MBUFS, node, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (uint16_t q = 0; q < ps->rxq; q++) {
		r = rte_eth_rx_queue_setup(np->port, q, RX_DESC, (unsigned)(node >= 0 ? node : 0),
					   NULL, pool);
		if (r < 0) {
			onering_log(ONERING_LOG_ERR, "port %u (%s): rx queue %u: %s", np->port,
				    np->name, q, rte_strerror(-r));
			return r;
		}
	}
	r = rte_eth_tx_queue_setup(np->port, 0, TX_DESC, (unsigned)(node >= 0 ? node : 0), NULL);
	if (r < 0) {
		onering_log(ONERING_LOG_ERR, "port %u (%s): tx queue: %s", np->port, np->name,
			    rte_strerror(-r));
		return r;
	}
	r = rte_eth_dev_start(np->port);
	if (r < 0) {
		onering_log(ONERING_LOG_ERR, "port %u (%s, driver %s): start: %s", np->port,
			    np->name, np->driver, rte_strerror(-r));
		return r;
	}
	np->started = true;
	np->nr_rxq = (uint16_t)ps->rxq;
	rte_eth_promiscuous_enable(np->port); /* not every virtual device has it */
	return 0;
}

static int ports_setup(struct broker *b);

int broker_nic_setup(struct broker *b)
{
	if (!b->nic)
		return 0;
	int r = ports_setup(b);
	if (r == 0) /* rx queues fixed: the commands may read them */
		broker_telemetry_init(b);
	return r;
}

static int ports_setup(struct broker *b)
{
	struct broker_nic *n = b->nic;
	struct broker_port_spec specs[BROKER_MAX_PORT_ARGS];
	unsigned total = 0, np = b->cfg.plan.nr_pollers, spread_next = 0;
	char err[256];
	int r;

	if (!n || b->cfg.nr_ports == 0)
		return 0;
	for (unsigned i = 0; i < b->cfg.nr_ports; i++) {
		if (broker_port_spec_parse(b->cfg.ports[i], &specs[i], err, sizeof(err)) < 0) {
			onering_log(ONERING_LOG_ERR, "%s", err);
			return -EINVAL;
		}
		total += specs[i].rxq;
	}
	n->rxqs = calloc(total, sizeof(*n->rxqs));
	if (!n->rxqs)
		return -ENOMEM;
	/* Each poller's rx queues are contiguous in n->rxqs: count first. */
	unsigned per_poller[BROKER_MAX_POLLERS] = {0};
	unsigned owner[BROKER_MAX_PORT_ARGS * BROKER_PORT_RXQ_MAX];
	unsigned k = 0;
	for (unsigned i = 0; i < b->cfg.nr_ports; i++) {
		struct nic_port *p = &n->ports[n->nr_ports];
		if (port_lookup(specs[i].dev, &p->port) < 0) {
			onering_log(ONERING_LOG_ERR, "--port %s: no such DPDK port (%u available; name "
				    "a port number or a device such as net_ring0 given with "
				    "--vdev before --)", b->cfg.ports[i], rte_eth_dev_count_avail());
			return -ENODEV;
		}
		n->nr_ports++;
		r = port_start(b, p, &specs[i]);
		if (r < 0)
			return r;
		int node = p->node;
		unsigned home = 0;
		for (unsigned j = 0; j < np; j++)
			if (b->pollers[j].node == node)
				home = j;
		for (uint16_t q = 0; q < p->nr_rxq; q++, k++) {
			owner[k] = specs[i].spread ? spread_next++ % np : home;
			per_poller[owner[k]]++;
		}
		onering_log(ONERING_LOG_NOTICE, "port %u (%s, driver %s, node %d): %u rx queue%s "
			    "-> group '%s', snaplen %u%s", p->port, p->name, p->driver, node,
			    p->nr_rxq, p->nr_rxq == 1 ? "" : "s", specs[i].group, specs[i].snaplen,
			    specs[i].spread ? ", spread over the pollers" : "");
	}
	/* Lay them out poller by poller. */
	unsigned start[BROKER_MAX_POLLERS], at[BROKER_MAX_POLLERS];
	for (unsigned j = 0, s = 0; j < np; j++) {
		start[j] = at[j] = s;
		s += per_poller[j];
		b->pollers[j].rxqs = per_poller[j] ? &n->rxqs[start[j]] : NULL;
		b->pollers[j].nr_rxqs = per_poller[j];
	}
	k = 0;
	for (unsigned i = 0; i < n->nr_ports; i++) {
		struct broker_group *g;
		r = broker_group_get(b, specs[i].group, true, NULL, &g);
		if (r < 0)
			return r;
		for (uint16_t q = 0; q < n->ports[i].nr_rxq; q++, k++) {
			struct broker_rxq *rq = &n->rxqs[at[owner[k]]++];
			rq->port = n->ports[i].port;
			rq->queue = q;
			rq->snaplen = specs[i].snaplen;
			rq->group = g;
		}
	}
	n->nr_rxqs = total;
	return 0;
}

void broker_nic_fini(struct broker *b)
{
	struct broker_nic *n = b->nic;

	if (!n)
		return;
	for (unsigned i = 0; i < n->nr_ports; i++)
		if (n->ports[i].started) {
			rte_eth_dev_stop(n->ports[i].port);
			rte_eth_dev_close(n->ports[i].port);
		}
	for (unsigned i = 0; i <= MAX_NODES; i++)
		rte_mempool_free(n->pools[i]);
	free(n->rxqs);
	free(n);
	b->nic = NULL;
	rte_eal_cleanup();
}

int broker_nic_port_get(const struct broker *b, unsigned i, struct broker_nic_port *out)
{
	const struct broker_nic *n = b->nic;
	struct rte_eth_stats st;

	if (!n || i >= n->nr_ports)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->port = n->ports[i].port;
	out->node = n->ports[i].node;
	snprintf(out->name, sizeof(out->name), "%s", n->ports[i].name);
	snprintf(out->driver, sizeof(out->driver), "%s", n->ports[i].driver);
	if (rte_eth_stats_get(out->port, &st) == 0) {
		out->ctr[ONERING_PORTC_IPACKETS] = st.ipackets;
		out->ctr[ONERING_PORTC_IBYTES] = st.ibytes;
		out->ctr[ONERING_PORTC_IMISSED] = st.imissed;
		out->ctr[ONERING_PORTC_IERRORS] = st.ierrors;
		out->ctr[ONERING_PORTC_NOMBUF] = st.rx_nombuf;
	}
	out->ctr[ONERING_PORTC_RXQS] = n->ports[i].nr_rxq;
	return 0;
}

int broker_nic_stats(struct broker *b, int (*send)(void *ctx, const struct onering_msg *m),
		     void *ctx, uint32_t seq)
{
	struct broker_nic_port np;
	struct onering_msg m;
	int r = 0;

	for (unsigned i = 0; r == 0 && broker_nic_port_get(b, i, &np) == 0; i++) {
		onering_msg_init(&m, ONERING_MSG_STATS_ITEM, seq);
		m.u.stats_item.what = ONERING_STATS_PORT;
		m.u.stats_item.id = np.port;
		m.u.stats_item.node = (uint32_t)np.node;
		memcpy(m.u.stats_item.counter, np.ctr, sizeof(np.ctr));
		r = send(ctx, &m);
	}
	for (unsigned j = 0; r == 0 && j < b->cfg.plan.nr_pollers; j++) {
		struct poller *p = &b->pollers[j];
		for (unsigned i = 0; r == 0 && i < p->nr_rxqs; i++) {
			const struct broker_rxq *rq = &p->rxqs[i];
			onering_msg_init(&m, ONERING_MSG_STATS_ITEM, seq);
			m.u.stats_item.what = ONERING_STATS_RXQ;
			m.u.stats_item.id = (uint32_t)rq->port << 16 | rq->queue;
			m.u.stats_item.owner_pid = j; /* the poller */
			m.u.stats_item.node = (uint32_t)p->node;
			for (unsigned c = 0; c < BROKER_RXQ_NR; c++)
				m.u.stats_item.counter[c] =
					onering_atomic_load(&rq->ctr[c], onering_mo_relaxed);
			m.u.stats_item.counter[ONERING_RXQC_GROUP] = rq->group->id;
			r = send(ctx, &m);
		}
	}
	return r;
}

int broker_nic_inject(struct broker *b, uint16_t port, const void *frame, uint32_t len)
{
	struct broker_nic *n = b->nic;
	struct rte_mbuf *m;

	if (!n)
		return -ENODEV;
	bool ours = false;
	for (unsigned i = 0; i < n->nr_ports; i++)
		ours |= n->ports[i].port == port && n->ports[i].started;
	if (!ours)
		return -ENODEV;
	m = rte_pktmbuf_alloc(node_pool(n, rte_eth_dev_socket_id(port)));
	if (!m)
		return -ENOMEM;
	char *d = rte_pktmbuf_append(m, (uint16_t)len);
	if (!d) {
		rte_pktmbuf_free(m);
		return -EMSGSIZE;
	}
	memcpy(d, frame, len);
	uint16_t sent = rte_eth_tx_burst(port, 0, &m, 1); /* tx queue 0: this thread's */
	if (sent != 1) {
		rte_pktmbuf_free(m);
		return -EAGAIN;
	}
	return 0;
}
