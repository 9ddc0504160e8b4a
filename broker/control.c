/* SPDX-License-Identifier: MIT */
/*
 * The control thread: the Unix SOCK_SEQPACKET socket, client sessions,
 * queue creation and teardown, subscription adds, stats, shutdown.
 *
 * It never blocks on a client: client sockets are non-blocking, replies go
 * out with MSG_DONTWAIT, and a client whose socket is full is dropped.
 * Every message is validated (shm/proto.h); a bad one gets an error reply
 * and a counter, and a client that keeps sending them is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/queue.h"
#include "broker/group.h"
#include "broker/lane.h"
#include "broker/source.h"
#include "numa/topology.h"
#include "shm/doorbell.h"
#include "shm/log.h"

#define KEY_LISTEN 1
#define KEY_SIGNAL 2
#define KEY_REAP 3
/* Client keys: pointer values (always > 4096). */

#define MAX_BAD_MESSAGES 16
#define REFUSED_PER_UID 8 /* connections of a refused uid held to answer them */
#define SUB_EVENTS_ALLOWED (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI)

static void client_drop(struct broker *b, struct broker_client *c, const char *why);

static int send_reply(struct broker *b, struct broker_client *c, const struct onering_msg *m,
		      const int *fds, unsigned nfds)
{
	int r = onering_msg_send(c->sock, m, fds, nfds, MSG_DONTWAIT);

	(void)b;
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		onering_log(ONERING_LOG_WARN, "client %u (pid %d): reply not sent: %s", c->id,
			    (int)c->pid, strerror(-r));
	return r;
}

static int reply_status(struct broker *b, struct broker_client *c, const struct onering_msg *req,
			int status)
{
	struct onering_msg m;

	onering_msg_init(&m, (uint16_t)(req->type | ONERING_MSG_REPLY), req->seq);
	m.status = status;
	return send_reply(b, c, &m, NULL, 0);
}

/* An error reply with its reason (the limit or check, and how to change
 * it), logged once here and shown by the client's onering_last_error(). */
__attribute__((format(printf, 5, 6))) static int
reply_error(struct broker *b, struct broker_client *c, const struct onering_msg *req, int status,
	    const char *fmt, ...)
{
	struct onering_msg m;
	va_list ap;

	onering_msg_init(&m, (uint16_t)(req->type | ONERING_MSG_REPLY), req->seq);
	m.status = status;
	va_start(ap, fmt);
	vsnprintf(m.u.reason, sizeof(m.u.reason), fmt, ap);
	va_end(ap);
	onering_log(ONERING_LOG_NOTICE, "client %u (pid %d uid %u): %s", c->id, (int)c->pid,
		    (unsigned)c->uid, m.u.reason);
	if (status == -EDQUOT)
		broker_count(&b->ctr[ONERING_BC_QUOTA], 1);
	return send_reply(b, c, &m, NULL, 0);
}

/* ---- queues and subscriptions ------------------------------------------- */

static struct broker_queue *client_queue(struct broker_client *c, uint32_t id)
{
	struct broker_queue *q;

	cds_list_for_each_entry(q, &c->queues, client_node)
		if (q->id == id)
			return q;
	return NULL;
}

/* Subscriptions the pollers deleted (submission-ring DEL): finish them. */
static void drain_reaped(struct broker *b)
{
	struct cds_wfcq_node *node;

	while ((node = __cds_wfcq_dequeue_blocking(&b->reap_head, &b->reap_tail))) {
		struct broker_sub *s = caa_container_of(node, struct broker_sub, reap_node);
		BROKER_TSAN_OBSERVE(s);
		broker_sub_finalize(b, s);
	}
}

/* Close several queues with one grace period. */
static void close_queues(struct broker *b, struct broker_queue **qs, unsigned n)
{
	if (n == 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		broker_queue_begin_close(qs[i]);
		/* Out of its group and the queue table before the grace period:
		 * afterwards no poller can pick it or find it from a hand-off. */
		broker_group_leave(b, qs[i]);
		rcu_assign_pointer(b->queues[qs[i]->slot], NULL);
	}
	/* After this no poller iteration that saw the queues LIVE still runs,
	 * so nothing new for them reaches the reap queue either. */
	urcu_qsbr_synchronize_rcu();
	BROKER_TSAN_GRACE_DONE();
	drain_reaped(b);
	for (unsigned i = 0; i < n; i++) {
		/* What its consumer did not take goes to the rest of its group. */
		if (qs[i]->group && !b->stopping)
			broker_group_redeliver(b, qs[i]);
		b->free_slots[b->nr_free_slots++] = qs[i]->slot;
		broker_queue_teardown(b, qs[i]);
	}
}

static void handle_queue_open(struct broker *b, struct broker_client *c, struct onering_msg *m)
{
	struct onering_msg_queue_open *o = &m->u.queue_open;
	uint32_t cap = o->ev_capacity ? o->ev_capacity : b->cfg.default_capacity;
	uint32_t sq = o->sq_capacity ? o->sq_capacity : b->cfg.default_sq_capacity;
	struct broker_queue *q;
	int r;

	if (!onering_ring_capacity_valid(cap) || cap > b->cfg.max_capacity ||
	    !onering_ring_capacity_valid(sq) || sq > b->cfg.max_capacity) {
		reply_status(b, c, m, -EINVAL);
		return;
	}
	if (c->nr_queues >= b->cfg.max_queues_per_client) {
		reply_error(b, c, m, -EDQUOT, "%u queues open, the most a client may have "
			    "(oneringd --max-queues)", c->nr_queues);
		return;
	}
	if (c->nr_fds + 2 > b->cfg.max_client_fds) {
		reply_error(b, c, m, -EDQUOT, "%u fds held for this client, a queue needs 2 more "
			    "(oneringd --max-client-fds %u)", c->nr_fds, b->cfg.max_client_fds);
		return;
	}
	if (c->ring_slots + cap + sq > b->cfg.max_client_slots) {
		reply_error(b, c, m, -EDQUOT, "%llu ring slots in use, %u more would pass "
			    "oneringd --max-client-slots %llu", (unsigned long long)c->ring_slots,
			    cap + sq, (unsigned long long)b->cfg.max_client_slots);
		return;
	}
	/* The queue lives on its consumer's node: the one asked for, else the
	 * node of the CPU the opener ran on. */
	int node = o->node >= 0 ? o->node : o->cpu >= 0 ? onering_topo_cpu_node(b->topo, o->cpu) : -1;
	bool node_known = false;
	for (int i = 0; i < onering_topo_node_count(b->topo); i++)
		node_known |= onering_topo_node_at(b->topo, i) == node;
	if (o->node >= 0 && !node_known) {
		reply_status(b, c, m, -EINVAL);
		return;
	}
	if (!node_known)
		node = -1;
	struct broker_group *g = NULL;
	o->group[ONERING_NAME_MAX - 1] = '\0';
	if (o->group[0]) {
		r = broker_group_get(b, o->group, true, c, &g);
		if (r == -EDQUOT) {
			reply_error(b, c, m, r, "group '%s': this client made %u live groups, its "
				    "most (oneringd --max-client-groups)", o->group, c->nr_groups_created);
			return;
		}
		if (r == -ENOSPC) {
			reply_error(b, c, m, r, "group '%s': the broker has %u groups, the most it "
				    "keeps", o->group, BROKER_MAX_GROUPS);
			return;
		}
		if (r < 0) {
			reply_status(b, c, m, r);
			return;
		}
		if (!broker_group_permits(b, g, BROKER_PERM_JOIN, &c->cred)) {
			char who[96];
			broker_group_perm_text(b, g, BROKER_PERM_JOIN, who, sizeof(who));
			reply_error(b, c, m, -EPERM, "group '%s' may be joined by %s", g->name, who);
			return;
		}
		if (g->nr_members >= BROKER_GROUP_MAX_MEMBERS) {
			reply_error(b, c, m, -ENOSPC, "group '%s' is full (%u members)", g->name,
				    g->nr_members);
			return;
		}
	}
	if (b->nr_free_slots == 0) {
		reply_error(b, c, m, -EMFILE, "the broker serves %u queues, the most it keeps",
			    b->cfg.max_queues);
		goto unused_group;
	}
	if (o->packet_snap > ONERING_PKT_STRIDE_MAX || o->words > ONERING_WORDS_MAX) {
		reply_status(b, c, m, -EINVAL);
		goto unused_group;
	}
	uint32_t stride = (o->packet_snap + 63u) & ~63u;
	r = broker_queue_create(b, c, cap, sq, stride, o->words,
				node < 0 ? ONERING_NODE_ANY : (uint32_t)node, &q);
	if (r < 0) {
		onering_log(ONERING_LOG_ERR, "client %u: queue of %u slots: %s", c->id, cap,
			    strerror(-r));
		reply_status(b, c, m, r);
		goto unused_group;
	}
	/* Served by the poller of its node when there is one. */
	struct poller *p = NULL;
	for (unsigned i = 0; i < b->cfg.plan.nr_pollers && !p; i++)
		if (node >= 0 && b->pollers[(b->next_poller + i) % b->cfg.plan.nr_pollers].node == node)
			p = &b->pollers[(b->next_poller + i) % b->cfg.plan.nr_pollers];
	if (!p)
		p = &b->pollers[b->next_poller % b->cfg.plan.nr_pollers];
	b->next_poller++;
	q->poller = p;
	q->slot = b->free_slots[--b->nr_free_slots];
	q->nr_slots = (uint64_t)cap + sq;
	c->nr_queues++;
	c->nr_fds += 2;
	c->ring_slots += q->nr_slots;
	cds_list_add(&q->client_node, &c->queues);
	/* cds_list_add_rcu, with the TSan release between the new node's own
	 * links and its publication: the poller walking the list reads
	 * q->poller_node.next after it sees q, and TSan cannot see liburcu's
	 * rcu_assign_pointer (see BROKER_TSAN_PUBLISH). */
	q->poller_node.next = p->queues.next;
	q->poller_node.prev = &p->queues;
	BROKER_TSAN_PUBLISH(q);
	rcu_assign_pointer(p->queues.next, &q->poller_node);
	q->poller_node.next->prev = &q->poller_node;
	/* A sleeping poller announced NEED_WAKEUP only in the queues it had:
	 * this one reads 0, so its client would not kick, and its first
	 * request would wait out the sleep (up to --idle-sleep-ms). Kick now:
	 * the sleep the poller announces next includes this queue. Its read
	 * of the kick orders the insertion above before that announcement. */
	poller_kick(p);
	rcu_assign_pointer(b->queues[q->slot], q);
	if (g && broker_group_join(b, g, q) < 0) {
		close_queues(b, &q, 1);
		reply_status(b, c, m, -ENOMEM);
		goto unused_group;
	}
	onering_atomic_store(&q->ctr[ONERING_QC_GROUP], g ? g->id : 0, onering_mo_relaxed);

	struct onering_msg rep;
	onering_msg_init(&rep, (uint16_t)(m->type | ONERING_MSG_REPLY), m->seq);
	rep.u.queue_open.ev_capacity = cap;
	rep.u.queue_open.sq_capacity = sq;
	rep.u.queue_open.node = node;
	rep.u.queue_open.cpu = -1;
	rep.u.queue_open.queue_id = q->id;
	rep.u.queue_open.poller = p->idx;
	rep.u.queue_open.start_pos = 0;
	memcpy(rep.u.queue_open.group, o->group, sizeof(rep.u.queue_open.group));
	rep.u.queue_open.group_id = g ? g->id : 0;
	rep.u.queue_open.packet_snap = stride;
	rep.u.queue_open.words = o->words;
	int fds[3] = {q->ev_seg.fd, q->cons_seg.fd, p->kick_fd};
	if (send_reply(b, c, &rep, fds, 3) < 0) {
		close_queues(b, &q, 1);
		return;
	}
	onering_log(ONERING_LOG_INFO, "client %u (pid %d): queue %u, %u slots, poller %u%s%s",
		    c->id, (int)c->pid, q->id, cap, p->idx, g ? ", group " : "", g ? g->name : "");
	return;
unused_group:
	if (g) /* created for this open and left unused: it ends at once */
		broker_group_maybe_end(b, g);
}

static void handle_queue_close(struct broker *b, struct broker_client *c, struct onering_msg *m)
{
	struct broker_queue *q = client_queue(c, m->u.queue.queue_id);

	if (!q) {
		reply_status(b, c, m, -ENOENT);
		return;
	}
	close_queues(b, &q, 1);
	reply_status(b, c, m, 0);
}

/*
 * A Unix socket whose peer is this broker (a client's own control
 * connection, or another one to the broker): as a source it would keep
 * that connection open from inside, and its client would never be seen
 * to die through it. (The client's pidfd sees the death anyway; this
 * refuses the obvious case with a reason.)
 */
static bool source_is_broker_socket(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int domain;
	socklen_t dlen = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) < 0 || domain != AF_UNIX)
		return false;
	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid == getpid();
}

static void handle_sub_add(struct broker *b, struct broker_client *c, struct onering_msg *m,
			   int fd)
{
	struct onering_msg_sub_add *a = &m->u.sub_add;
	struct broker_queue *q = client_queue(c, a->queue_id);
	struct broker_sub *s;
	struct epoll_event ev;
	uint32_t id, gen;
	int r;

	if (!q) {
		r = -ENOENT;
		goto fail;
	}
	uint32_t kind = a->kind ? a->kind : ONERING_EV_FD;
	bool timer = kind == ONERING_EV_TIMER;
	if (a->mode > ONERING_MODE_MAX || (a->events & ~(uint32_t)SUB_EVENTS_ALLOWED) ||
	    !(kind == ONERING_EV_FD || kind == ONERING_EV_SIGNAL || kind == ONERING_EV_FILE ||
	      kind == ONERING_EV_AIO || kind == ONERING_EV_PROCESS || timer) ||
	    (timer && (a->group_id || a->home_node >= 0))) {
		r = -EINVAL;
		goto fail;
	}
	/* Target: the group named, else the queue's; LEVEL records always go to
	 * the owner (only it can run the collection on its fd). */
	struct broker_group *g = q->group;
	if (a->group_id) {
		g = broker_group_by_id(b, a->group_id);
		if (!g) {
			r = -ENOENT;
			goto fail;
		}
		/* Records of this source go into g: posting, in effect. */
		if (g != q->group && !broker_group_permits(b, g, BROKER_PERM_POST, &c->cred)) {
			char who[96];
			broker_group_perm_text(b, g, BROKER_PERM_POST, who, sizeof(who));
			if (fd >= 0)
				close(fd);
			reply_error(b, c, m, -EPERM, "group '%s' takes records from %s", g->name, who);
			return;
		}
	}
	if (a->mode == ONERING_MODE_LEVEL || timer)
		g = NULL; /* timers fire into the queue that arms them */
	if (c->nr_subs >= b->cfg.max_client_subs || (!timer && c->nr_fds >= b->cfg.max_client_fds)) {
		bool subs = c->nr_subs >= b->cfg.max_client_subs;
		if (fd >= 0)
			close(fd);
		reply_error(b, c, m, -EDQUOT, "%u %s held for this client, the most allowed "
			    "(oneringd %s)", subs ? c->nr_subs : c->nr_fds,
			    subs ? "subscriptions" : "fds", subs ? "--max-client-subs" : "--max-client-fds");
		return;
	}
	if (!timer && source_is_broker_socket(fd)) {
		close(fd);
		reply_error(b, c, m, -EINVAL, "a socket connected to the broker cannot be a "
			    "source (it would hold a client's connection open)");
		return;
	}
	/* Home: the poller of the node asked for (group targets only: a private
	 * queue's sources are watched by its own poller), else the queue's. */
	struct poller *home = q->poller;
	if (a->home_node >= 0 && g) {
		home = NULL;
		for (unsigned i = 0; i < b->cfg.plan.nr_pollers && !home; i++)
			if (b->pollers[i].node == a->home_node)
				home = &b->pollers[i];
		if (!home) {
			r = -EINVAL;
			goto fail;
		}
	}
	r = broker_registry_alloc(&b->reg, &id, &gen);
	if (r < 0) {
		onering_log(ONERING_LOG_WARN, "subscription table full (%u): raise --max-subs",
			    b->cfg.max_subs);
		goto fail;
	}
	/*
	 * Register with no events first: that validates the fd (EPERM for a
	 * regular file) while nobody else can see the subscription, and an
	 * error or hang-up reported meanwhile finds no published key and is
	 * simply re-reported by the MOD below. Publishing before the real
	 * events are armed means no edge can fire unseen.
	 */
	ev.events = 0;
	ev.data.u64 = broker_sub_key(id, gen);
	s = calloc(1, sizeof(*s));
	if (!s || (!timer && epoll_ctl(home->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)) {
		r = !s ? -ENOMEM : errno == EPERM ? -EINVAL : -errno;
		free(s);
		broker_registry_unalloc(&b->reg, id);
		goto fail;
	}
	s->id = id;
	s->gen = gen;
	s->fd = fd;
	s->events = a->events;
	s->mode = (uint8_t)a->mode;
	s->cookie = a->cookie;
	s->queue = q;
	s->group = g;
	s->home = home;
	s->kind = (uint16_t)kind;
	cds_list_add(&s->queue_node, &q->subs);
	broker_count(&q->ctr[ONERING_QC_SUBS], 1);
	c->nr_subs++;
	c->nr_fds += fd >= 0;
	if (g)
		broker_group_ref(g);
	/* From here the sub's delivery fields belong to the poller (a MOD from
	 * the submission ring may already change them): arm from locals. */
	broker_registry_publish(&b->reg, s);
	ev.events = broker_epoll_flags((uint8_t)a->mode, a->events);
	if (!timer)
		epoll_ctl(home->epfd, EPOLL_CTL_MOD, fd, &ev); /* ENOENT: already deleted */

	struct onering_msg rep;
	onering_msg_init(&rep, (uint16_t)(m->type | ONERING_MSG_REPLY), m->seq);
	rep.u.sub_add = *a;
	rep.u.sub_add.sub_id = id;
	rep.u.sub_add.sub_gen = gen;
	if (send_reply(b, c, &rep, NULL, 0) < 0)
		client_drop(b, c, "reply to SUB_ADD could not be sent");
	return;
fail:
	if (fd >= 0)
		close(fd);
	reply_status(b, c, m, r);
}

/* ---- NIC ------------------------------------------------------------------ */

static void handle_port_tx(struct broker *b, struct broker_client *c, struct onering_msg *m)
{
	const struct onering_msg_port_tx *t = &m->u.port_tx;
	int r;

	if (!b->cfg.allow_inject) {
		onering_log(ONERING_LOG_NOTICE, "client %u (pid %d) tried to transmit on port %u: "
			    "start oneringd with --allow-inject to allow it", c->id, (int)c->pid,
			    t->port);
		r = -EPERM;
	} else if (t->len < 14 || t->len > ONERING_PORT_TX_MAX || t->pad) {
		r = -EINVAL;
	} else {
		r = broker_nic_inject(b, t->port, t->frame, t->len);
	}
	reply_status(b, c, m, r);
}

/* ---- groups -------------------------------------------------------------- */

static void handle_group(struct broker *b, struct broker_client *c, struct onering_msg *m)
{
	struct onering_msg_group *gm = &m->u.group;
	struct broker_group *g;
	char name[ONERING_NAME_MAX];
	int r;

	memcpy(name, gm->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	if (gm->flags & ~(uint32_t)ONERING_GROUP_NO_CREATE) {
		reply_status(b, c, m, -EINVAL);
		return;
	}
	bool existed = broker_group_get(b, name, false, NULL, &g) == 0;
	r = existed ? 0 : broker_group_get(b, name, !(gm->flags & ONERING_GROUP_NO_CREATE), c, &g);
	if (r == -EDQUOT) {
		reply_error(b, c, m, r, "group '%s': this client made %u live groups, its most "
			    "(oneringd --max-client-groups)", name, c->nr_groups_created);
		return;
	}
	if (r == 0 && !existed)
		g->pinned = true; /* lives while its creator is attached, or has members */
	if (r == 0 && gm->set && !broker_group_permits(b, g, BROKER_PERM_TUNE, &c->cred)) {
		char who[96];
		broker_group_perm_text(b, g, BROKER_PERM_TUNE, who, sizeof(who));
		reply_error(b, c, m, -EPERM, "group '%s' may be tuned by %s", g->name, who);
		return;
	}
	if (r == 0 && gm->set) {
		r = broker_group_apply(g, gm);
		if (r == 0) /* reply once every decision from here on sees them */
			broker_pollers_settle(b);
		if (r == 0)
			onering_log(ONERING_LOG_NOTICE, "group '%s' tuned by pid %d uid %u: policy %s, "
				    "numa %s:%u, wake %s, max_running %u, backlog %u", g->name,
				    (int)c->pid, (unsigned)c->uid,
				    onering_policy_name(onering_atomic_load(&g->policy, onering_mo_relaxed)),
				    onering_numa_name(onering_atomic_load(&g->numa, onering_mo_relaxed)),
				    onering_atomic_load(&g->spill_pct, onering_mo_relaxed),
				    onering_wake_name(onering_atomic_load(&g->wake, onering_mo_relaxed)),
				    onering_atomic_load(&g->max_running, onering_mo_relaxed),
				    onering_atomic_load(&g->backlog_max, onering_mo_relaxed));
	}
	if (r < 0) {
		reply_status(b, c, m, r);
		return;
	}
	struct onering_msg rep;
	onering_msg_init(&rep, (uint16_t)(m->type | ONERING_MSG_REPLY), m->seq);
	broker_group_describe(g, &rep.u.group);
	if (send_reply(b, c, &rep, NULL, 0) < 0)
		client_drop(b, c, "reply to GROUP could not be sent");
}

/* ---- stats --------------------------------------------------------------- */

struct stats_ctx {
	struct broker *b;
	struct broker_client *c;
};

static int send_stats_msg(void *ctx, const struct onering_msg *m)
{
	struct stats_ctx *sc = ctx;

	return send_reply(sc->b, sc->c, m, NULL, 0);
}

static int send_group_item(struct broker *b, struct broker_client *c,
			   const struct onering_msg *req, const struct broker_group *g)
{
	struct onering_msg m;
	struct onering_msg_group d;

	onering_msg_init(&m, ONERING_MSG_STATS_ITEM, req->seq);
	broker_group_describe(g, &d);
	struct onering_msg_group_stats *gs = &m.u.group_stats;
	gs->what = ONERING_STATS_GROUP;
	gs->id = g->id;
	memcpy(gs->name, g->name, sizeof(gs->name));
	gs->policy = d.policy;
	gs->numa = d.numa;
	gs->spill_pct = d.spill_pct;
	gs->wake = d.wake;
	gs->max_running = d.max_running ? d.max_running : b->cpu_count;
	gs->backlog_max = d.backlog_max;
	gs->members = (uint16_t)d.members;
	uint32_t sleeping;
	broker_group_counters(b, g, gs->counter, &sleeping);
	gs->sleeping = (uint16_t)sleeping;
	return send_reply(b, c, &m, NULL, 0);
}

static int send_item(struct broker *b, struct broker_client *c, const struct onering_msg *req,
		     uint32_t what, uint32_t id, uint32_t pid, uint32_t node,
		     ONERING_ATOMIC(uint64_t) *ctr, unsigned n)
{
	struct onering_msg m;

	onering_msg_init(&m, ONERING_MSG_STATS_ITEM, req->seq);
	m.u.stats_item.what = what;
	m.u.stats_item.id = id;
	m.u.stats_item.owner_pid = pid;
	m.u.stats_item.node = node;
	for (unsigned i = 0; i < n && i < 12; i++)
		m.u.stats_item.counter[i] = onering_atomic_load(&ctr[i], onering_mo_relaxed);
	return send_reply(b, c, &m, NULL, 0);
}

static void handle_stats(struct broker *b, struct broker_client *c, struct onering_msg *req)
{
	struct broker_client *o;
	struct broker_queue *q;
	int r = send_item(b, c, req, ONERING_STATS_BROKER, 0, (uint32_t)getpid(), ONERING_NODE_ANY,
			  b->ctr, ONERING_BC_NR);

	for (unsigned i = 0; r == 0 && i < b->cfg.plan.nr_pollers; i++)
		r = send_item(b, c, req, ONERING_STATS_POLLER, i, 0, (uint32_t)b->pollers[i].node,
			      b->pollers[i].ctr, ONERING_PC_NR);
	cds_list_for_each_entry(o, &b->clients, node) {
		cds_list_for_each_entry(q, &o->queues, client_node) {
			if (r < 0)
				break;
			/* The consumer's head, as the client last wrote it (display only). */
			onering_atomic_store(&q->ctr[ONERING_QC_CONSUMED],
					     onering_atomic_load(&q->cctl->ev_head_pos,
								 onering_mo_relaxed),
					     onering_mo_relaxed);
			r = send_item(b, c, req, ONERING_STATS_QUEUE, q->id, (uint32_t)q->owner_pid,
				      q->node, q->ctr, ONERING_QC_NR);
		}
	}
	for (unsigned i = 0; r == 0 && i < b->nr_groups; i++)
		if (b->groups[i])
			r = send_group_item(b, c, req, b->groups[i]);
	if (r == 0) {
		struct stats_ctx sc = {b, c};
		r = broker_nic_stats(b, send_stats_msg, &sc, req->seq);
	}
	struct onering_msg end;
	onering_msg_init(&end, ONERING_MSG_STATS_END, req->seq);
	end.status = r;
	if (send_reply(b, c, &end, NULL, 0) < 0)
		client_drop(b, c, "stats reply could not be sent");
}

/* ---- sessions ------------------------------------------------------------ */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* epoll keys of a client: its socket is the pointer, its pidfd the pointer
 * with the low bit set (clients are malloc'ed: the bit is free). */
#define CLIENT_PIDFD_TAG 1u

/* Watch the attached client's process too: its death is then seen even if
 * something keeps its socket open (an fd of it in flight in a socket the
 * broker holds as a source, for one). */
static void client_watch_process(struct broker *b, struct broker_client *c)
{
	socklen_t len = sizeof(c->pidfd);
	int fd = -1;

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
	/* SO_PEERPIDFD (Linux 6.5) names the very process that connected.
	 * pidfd_open of its pid is the fallback: that process just sent HELLO,
	 * so the pid is still its own unless it died in between. */
	if (getsockopt(c->sock, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) < 0 || fd < 0)
		fd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	if (fd < 0) {
		onering_log(ONERING_LOG_WARN, "client %u (pid %d): no pidfd (%s): its death is seen "
			    "through its socket only", c->id, (int)c->pid, strerror(errno));
		return;
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) { /* SO_PEERPIDFD's fd lacks it */
		close(fd);
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN,
				 .data.u64 = (uint64_t)(uintptr_t)c | CLIENT_PIDFD_TAG};
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		return;
	}
	c->pidfd = fd;
	c->nr_fds++;
}

static void handle_hello(struct broker *b, struct broker_client *c, struct onering_msg *m)
{
	struct onering_msg rep;
	int status = 0;

	if (c->hello_done) {
		reply_status(b, c, m, -EALREADY);
		return;
	}
	m->u.hello.name[ONERING_NAME_MAX - 1] = '\0';
	if (m->u.hello.abi_major != ONERING_ABI_MAJOR)
		status = -EPROTO;
	else if (strcmp(m->u.hello.name, b->cfg.name) != 0)
		status = -ENXIO;
	else if (b->nr_clients >= b->cfg.max_clients)
		status = -EUSERS;
	onering_msg_init(&rep, ONERING_MSG_HELLO | ONERING_MSG_REPLY, m->seq);
	rep.status = status;
	if (status == -EUSERS) {
		snprintf(rep.u.reason, sizeof(rep.u.reason),
			 "the broker serves %u clients, the most it takes (oneringd --max-clients)",
			 b->nr_clients);
		onering_log(ONERING_LOG_WARN, "refused pid %d uid %u: %u clients attached "
			    "(--max-clients)", (int)c->pid, (unsigned)c->uid, b->nr_clients);
	} else {
		rep.u.hello.abi_major = ONERING_ABI_MAJOR;
		rep.u.hello.abi_minor = ONERING_ABI_MINOR;
		rep.u.hello.pid = (uint32_t)getpid();
		rep.u.hello.epoch = b->epoch;
		rep.u.hello.client_id = c->id;
		rep.u.hello.max_subs = b->cfg.max_subs;
		snprintf(rep.u.hello.name, sizeof(rep.u.hello.name), "%s", b->cfg.name);
	}
	if (status < 0) {
		send_reply(b, c, &rep, NULL, 0);
		client_drop(b, c, status == -EPROTO ? "ABI major version mismatch"
			    : status == -ENXIO ? "asked for another instance name" : NULL);
		return;
	}
	/* Pending -> attached: from now on it counts against --max-clients.
	 * Its process is watched before it hears back, so that everything the
	 * broker holds for it is in place once the client sees the reply. */
	c->hello_done = true;
	cds_list_del(&c->node);
	b->nr_pending--;
	cds_list_add_tail(&c->node, &b->clients);
	b->nr_clients++;
	broker_count(&b->ctr[ONERING_BC_ATTACHES], 1);
	broker_count(&b->ctr[ONERING_BC_CLIENTS], 1);
	client_watch_process(b, c);
	if (send_reply(b, c, &rep, NULL, 0) < 0) {
		client_drop(b, c, "hello reply could not be sent");
		return;
	}
	/* c->pid stays what SO_PEERCRED said; the message's pid is not trusted. */
	onering_log(ONERING_LOG_INFO, "client %u attached: pid %d uid %u", c->id, (int)c->pid,
		    (unsigned)c->uid);
}

/* A bad message: error reply, counters, and after too many, the door. */
static void bad_message(struct broker *b, struct broker_client *c, const struct onering_msg *m,
			int status, const char *what)
{
	broker_count(&b->ctr[ONERING_BC_BAD_MESSAGES], 1);
	onering_log(ONERING_LOG_NOTICE, "client %u (pid %d): %s", c->id, (int)c->pid, what);
	if (m)
		reply_status(b, c, m, status);
	if (++c->bad_messages >= MAX_BAD_MESSAGES)
		client_drop(b, c, "too many malformed messages");
}

/*
 * One message of client c, as received: its fds (nfds kept, extra closed
 * already), checked and dispatched. The transport-free half of
 * client_readable, which the control fuzz target drives directly.
 */
void broker_client_message(struct broker *b, struct broker_client *c, struct onering_msg *m,
			   int *fds, unsigned nfds, unsigned extra)
{
	if (extra)
		broker_count(&b->ctr[ONERING_BC_EXTRA_FDS], extra);
	if (onering_msg_check(m) < 0) {
		struct onering_msg fake;
		onering_msg_init(&fake, m->type, m->seq);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		bad_message(b, c, &fake, -EPROTO, "control message with a wrong magic or version");
		return;
	}
	/* SUB_ADD carries the source's fd; a timer (kind TIMER) has none. */
	bool wants_fd = m->type == ONERING_MSG_SUB_ADD && m->u.sub_add.kind != ONERING_EV_TIMER;
	if (nfds != (wants_fd ? 1u : 0u) || extra) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		broker_count(&b->ctr[ONERING_BC_EXTRA_FDS], wants_fd ? 0 : nfds);
		bad_message(b, c, m, -EINVAL, "control message with unexpected file descriptors");
		return;
	}
	if (c->refuse) {
		if (nfds)
			close(fds[0]);
		struct onering_msg rep;
		onering_msg_init(&rep, ONERING_MSG_HELLO | ONERING_MSG_REPLY, m->seq);
		rep.status = c->refuse;
		send_reply(b, c, &rep, NULL, 0);
		client_drop(b, c, NULL);
		return;
	}
	if (!c->hello_done && m->type != ONERING_MSG_HELLO) {
		if (nfds)
			close(fds[0]);
		bad_message(b, c, m, -EPERM, "request before HELLO");
		return;
	}
	switch (m->type) {
	case ONERING_MSG_HELLO:
		handle_hello(b, c, m);
		break;
	case ONERING_MSG_QUEUE_OPEN:
		handle_queue_open(b, c, m);
		break;
	case ONERING_MSG_QUEUE_CLOSE:
		handle_queue_close(b, c, m);
		break;
	case ONERING_MSG_SUB_ADD:
		handle_sub_add(b, c, m, nfds ? fds[0] : -1);
		break;
	case ONERING_MSG_STATS:
		handle_stats(b, c, m);
		break;
	case ONERING_MSG_GROUP:
		handle_group(b, c, m);
		break;
	case ONERING_MSG_PORT_TX:
		handle_port_tx(b, c, m);
		break;
	default:
		bad_message(b, c, m, -EOPNOTSUPP, "unknown control message type");
		break;
	}
}

/* One message from c's socket. */
static void client_readable(struct broker *b, struct broker_client *c)
{
	struct onering_msg m;
	int fds[1] = {-1};
	unsigned nfds = 0, extra = 0;
	int r = onering_msg_recv(c->sock, &m, fds, 1, &nfds, &extra, MSG_DONTWAIT);

	if (r == -EAGAIN || r == -EINTR)
		return;
	if (r == -ECONNRESET) {
		client_drop(b, c, NULL);
		return;
	}
	if (r == -EMSGSIZE) {
		/* Cannot trust any field: reply with a zero seq. */
		struct onering_msg fake;
		if (extra)
			broker_count(&b->ctr[ONERING_BC_EXTRA_FDS], extra);
		onering_msg_init(&fake, 0, 0);
		bad_message(b, c, &fake, -EMSGSIZE, "control message of the wrong size");
		return;
	}
	if (r < 0) {
		client_drop(b, c, strerror(-r));
		return;
	}
	broker_client_message(b, c, &m, fds, nfds, extra);
}

static bool peer_allowed(const struct broker *b, const struct broker_cred *cred)
{
	for (unsigned i = 0; i < b->cfg.nr_allow_uids; i++)
		if (b->cfg.allow_uids[i] == cred->uid)
			return true;
	for (unsigned i = 0; i < b->cfg.nr_allow_gids; i++) {
		if (b->cfg.allow_gids[i] == cred->gid)
			return true;
		for (uint32_t k = 0; k < cred->nr_groups; k++)
			if (b->cfg.allow_gids[i] == cred->groups[k])
				return true;
	}
	return false;
}

static int peer_cred(int sock, struct broker_cred *cred)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	memset(cred, 0, sizeof(*cred));
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	cred->pid = uc.pid;
	cred->uid = uc.uid;
	cred->gid = uc.gid;
	/* Supplementary groups at connect time (Linux 4.13); more than we keep
	 * (ERANGE) or none known: the primary gid only. */
	len = sizeof(cred->groups);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, cred->groups, &len) == 0)
		cred->nr_groups = len / sizeof(gid_t);
	return 0;
}

/* Rate-limited notices: at most one a second per kind, with what was
 * suppressed meanwhile. */
struct log_limit {
	uint64_t next_ns;
	uint32_t suppressed;
};

static bool log_allowed(struct log_limit *l, uint32_t *suppressed)
{
	uint64_t now = mono_ns();

	if (now < l->next_ns) {
		l->suppressed++;
		return false;
	}
	l->next_ns = now + 1000000000ull;
	*suppressed = l->suppressed;
	l->suppressed = 0;
	return true;
}

/*
 * At the fd limit: stop polling the listening socket (it would stay
 * readable and spin this thread), answer the peers already waiting with a
 * clear refusal through the one fd kept in reserve, and try again later.
 */
static void fd_limit_reached(struct broker *b, int err)
{
	if (!b->at_fd_limit) { /* once per episode, not once per retry */
		broker_count(&b->ctr[ONERING_BC_FD_LIMIT], 1);
		onering_log(ONERING_LOG_WARN, "at the fd limit (%s) with %u clients: refusing new "
			    "ones until fds are freed (raise LimitNOFILE= or ulimit -n, or lower "
			    "--max-client-fds)", strerror(err), b->nr_clients);
		b->at_fd_limit = true;
	}
	if (!b->listen_paused) {
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, b->listen_fd, NULL);
		b->listen_paused = true;
	}
	b->listen_retry_ns = mono_ns() + 100 * 1000000ull;
	for (unsigned i = 0; i < 64 && b->reserve_fd >= 0; i++) {
		close(b->reserve_fd);
		b->reserve_fd = -1;
		int s = accept4(b->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s >= 0) {
			struct onering_msg m;
			onering_msg_init(&m, ONERING_MSG_HELLO | ONERING_MSG_REPLY, 0);
			m.status = -EMFILE;
			snprintf(m.u.reason, sizeof(m.u.reason),
				 "the broker is at its fd limit (%s): try again later, or ask its "
				 "operator to raise LimitNOFILE=", strerror(err));
			onering_msg_send(s, &m, NULL, 0, MSG_DONTWAIT);
			/* Take what it sent, so the close is a hang-up after our reply,
			 * not a reset that would hide it. */
			for (int k = 0; k < 4 && recv(s, &m, sizeof(m), MSG_DONTWAIT) > 0; k++)
				;
			close(s);
		}
		b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (s < 0)
			break;
	}
}

static void listen_resume(struct broker *b)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KEY_LISTEN};

	if (b->reserve_fd < 0)
		b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->listen_fd, &ev) == 0)
		b->listen_paused = false;
}

/* A new connection on sock: pending until its HELLO (or its deadline).
 * refuse: -EACCES for a peer that will be told no. NULL: no memory (the
 * caller closes sock). */
struct broker_client *broker_client_add(struct broker *b, int sock, const struct broker_cred *cred,
					int refuse)
{
	struct broker_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	int sndbuf = 1 << 20;
	setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	c->id = ++b->next_client_id;
	c->sock = sock;
	c->pidfd = -1;
	c->cred = *cred;
	c->pid = cred->pid;
	c->uid = cred->uid;
	c->nr_fds = 1;
	c->deadline_ns = mono_ns() + (uint64_t)b->cfg.hello_timeout_ms * 1000000ull;
	/* A refused peer is answered once its HELLO is read: closing with its
	 * message unread would reset the connection before it sees why. */
	c->refuse = refuse;
	CDS_INIT_LIST_HEAD(&c->queues);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
	if (b->epfd >= 0 && epoll_ctl(b->epfd, EPOLL_CTL_ADD, sock, &ev) < 0) {
		free(c);
		return NULL;
	}
	cds_list_add_tail(&c->node, &b->pending);
	b->nr_pending++;
	return c;
}

static void accept_clients(struct broker *b)
{
	static struct log_limit denied_log, pending_log;
	uint32_t suppressed;

	/* A bounded batch per wake-up: other clients' messages wait otherwise. */
	for (unsigned n = 0; n < 16; n++) {
		int sock = accept4(b->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (sock < 0) {
			if (errno == EMFILE || errno == ENFILE)
				fd_limit_reached(b, errno);
			return;
		}
		if (b->at_fd_limit) {
			b->at_fd_limit = false;
			onering_log(ONERING_LOG_NOTICE, "accepting clients again");
		}
		struct broker_cred cred;
		if (peer_cred(sock, &cred) < 0) {
			close(sock);
			continue;
		}
		/* Connections without HELLO are bounded per uid (and in all): a
		 * silent or refused user cannot take the broker's fds or anyone's
		 * place. A refused uid is only waiting to be told why: a few will do. */
		bool allowed = peer_allowed(b, &cred);
		unsigned same_uid = 0, cap = allowed ? b->cfg.max_pending_per_uid : REFUSED_PER_UID;
		struct broker_client *o;
		cds_list_for_each_entry(o, &b->pending, node)
			same_uid += o->uid == cred.uid;
		if (same_uid >= cap || b->nr_pending >= b->cfg.max_pending) {
			broker_count(&b->ctr[ONERING_BC_PENDING_LIMITED], 1);
			if (log_allowed(&pending_log, &suppressed))
				onering_log(ONERING_LOG_NOTICE, "closed a connection of pid %d uid %u: "
					    "%u of its uid wait for HELLO, %u in all (%s %u, --max-pending "
					    "%u; %u such closes not logged)", (int)cred.pid,
					    (unsigned)cred.uid, same_uid, b->nr_pending,
					    allowed ? "--max-pending-per-uid" : "refused uids:", cap,
					    b->cfg.max_pending, suppressed);
			close(sock);
			continue;
		}
		int refuse = 0;
		if (!allowed) {
			broker_count(&b->ctr[ONERING_BC_DENIED], 1);
			if (log_allowed(&denied_log, &suppressed))
				onering_log(ONERING_LOG_NOTICE, "refused pid %d uid %u gid %u (allow it "
					    "with --allow-uid %u; %u refusals not logged)", (int)cred.pid,
					    (unsigned)cred.uid, (unsigned)cred.gid, (unsigned)cred.uid,
					    suppressed);
			refuse = -EACCES;
		}
		if (!broker_client_add(b, sock, &cred, refuse)) {
			close(sock);
			return;
		}
	}
}

/* Drop clients (dead, refused or misbehaving) together: their queues
 * share grace periods, so that a hundred clients dying at once cost the
 * same few grace periods as one. */
static void clients_drop(struct broker *b, struct broker_client **cs, unsigned n_clients,
			 const char *why)
{
	struct broker_queue *qs[64], *q;
	unsigned n = 0;

	for (unsigned i = 0; i < n_clients; i++) {
		struct broker_client *c = cs[i];
		if (why) {
			broker_count(&b->ctr[ONERING_BC_DROPPED], 1);
			onering_log(ONERING_LOG_NOTICE, "dropping client %u (pid %d): %s", c->id,
				    (int)c->pid, why);
		}
		/* Queues go in batches of 64 sharing one grace period. */
		cds_list_for_each_entry(q, &c->queues, client_node) {
			if (n == 64) {
				close_queues(b, qs, n);
				n = 0;
			}
			qs[n++] = q;
		}
	}
	close_queues(b, qs, n);
	for (unsigned i = 0; i < n_clients; i++) {
		struct broker_client *c = cs[i];
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->sock, NULL);
		close(c->sock);
		if (c->pidfd >= 0) {
			epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->pidfd, NULL);
			close(c->pidfd);
		}
		cds_list_del(&c->node);
		if (c->hello_done) {
			b->nr_clients--;
			broker_count(&b->ctr[ONERING_BC_CLIENTS], (uint64_t)-1);
			broker_groups_client_gone(b, c);
		} else {
			b->nr_pending--;
		}
		free(c);
	}
}

static void client_drop(struct broker *b, struct broker_client *c, const char *why)
{
	clients_drop(b, &c, 1, why);
}

void broker_clients_gone(struct broker *b, struct broker_client **cs, unsigned n)
{
	clients_drop(b, cs, n, NULL);
}

/* Connections that did not say HELLO in time (oldest first). Returns the
 * ms until the next deadline, or -1 when none is pending. */
static int expire_pending(struct broker *b)
{
	uint64_t now = mono_ns();

	while (!cds_list_empty(&b->pending)) {
		struct broker_client *c = cds_list_first_entry(&b->pending, struct broker_client,
								node);
		if (c->deadline_ns > now)
			return (int)((c->deadline_ns - now + 999999) / 1000000);
		broker_count(&b->ctr[ONERING_BC_HELLO_TIMEOUTS], 1);
		client_drop(b, c, NULL);
	}
	return -1;
}

/* Queues the pollers found broken: drop their clients. */
static void drain_faults(struct broker *b)
{
	struct cds_wfcq_node *node;

	while ((node = __cds_wfcq_dequeue_blocking(&b->fault_head, &b->fault_tail))) {
		struct broker_queue *q = caa_container_of(node, struct broker_queue, fault_node);
		BROKER_TSAN_OBSERVE(q);
		struct broker_client *c, *found = NULL;
		/* The client may already be gone; find it by its queue. */
		cds_list_for_each_entry(c, &b->clients, node) {
			struct broker_queue *x;
			cds_list_for_each_entry(x, &c->queues, client_node)
				if (x == q)
					found = c;
		}
		if (found)
			client_drop(b, found, "broke the shared-memory ring protocol");
	}
}

/* ---- start and stop ------------------------------------------------------ */

/* The mode of the socket directory: only the broker's uid may write in
 * it; group members may enter it when a group is served, anyone (without
 * listing it) when other uids are served. SO_PEERCRED decides who is
 * served; the directory only keeps others from replacing the socket. */
static mode_t socket_dir_mode(const struct broker_config *cfg)
{
	uid_t me = geteuid();

	for (unsigned i = 0; i < cfg->nr_allow_uids; i++)
		if (cfg->allow_uids[i] != me && cfg->allow_uids[i] != 0)
			return 0711;
	return cfg->nr_allow_gids ? 0750 : 0700;
}

/*
 * Create the socket directory (parents 0755 as mkdir -p would), or check an
 * existing one: a real directory (not a symlink), owned by this uid, not
 * writable by group or others - else another local user could replace the
 * socket under the clients. err names the fix.
 */
static int make_socket_dir(const struct broker_config *cfg, bool fix_mode, char *err,
			   size_t err_size)
{
	const char *dir = cfg->socket_dir;
	mode_t mode = socket_dir_mode(cfg);
	char tmp[256];
	struct stat st;

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			goto sys_fail;
		*p = '/';
	}
	if (mkdir(dir, mode) < 0 && errno != EEXIST)
		goto sys_fail;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR) {
			snprintf(err, err_size, "socket directory %s is a symlink or not a directory: "
				 "remove it (rm %s) or choose another --socket-dir", dir, dir);
			return -ENOTDIR;
		}
		goto sys_fail;
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		goto sys_fail;
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		snprintf(err, err_size, "socket directory %s belongs to uid %u, not to this broker's "
			 "uid %u: another user could replace the socket; remove it or choose "
			 "another --socket-dir", dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & 022) {
		close(fd);
		snprintf(err, err_size, "socket directory %s is writable by %s (mode %04o): another "
			 "user could replace the socket; chmod 0700 %s", dir,
			 (st.st_mode & 002) ? "everyone" : "its group", (unsigned)(st.st_mode & 07777),
			 dir);
		return -EPERM;
	}
	int r = 0;
	if (fix_mode) {
		/* By descriptor, never by path: the directory checked is the one set. */
		if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
			r = -errno;
		if (r == 0 && cfg->nr_allow_gids && mode == 0750 && st.st_gid != cfg->allow_gids[0] &&
		    fchown(fd, (uid_t)-1, cfg->allow_gids[0]) < 0)
			r = -errno;
	}
	close(fd);
	if (r < 0)
		snprintf(err, err_size, "socket directory %s: setting mode %04o: %s", dir,
			 (unsigned)mode, strerror(-r));
	return r;
sys_fail:
	r = -errno;
	snprintf(err, err_size, "socket directory %s is not usable: %s (use --socket-dir DIR, or "
		 "run as root for /run/onering)", dir, strerror(errno));
	return r;
}

static int set_sun_path(struct sockaddr_un *sa, const char *path)
{
	size_t n = strlen(path);

	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

/* 0 when nobody answers at path (a stale socket is removed), -EADDRINUSE
 * with the running broker's pid in *pid when one does. */
static int probe_running(const char *path, pid_t *pid)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int r = 0;

	if (s < 0)
		return -errno;
	if (set_sun_path(&sa, path) < 0) {
		close(s);
		return -ENAMETOOLONG;
	}
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		*pid = getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.pid : 0;
		r = -EADDRINUSE;
	} else if (errno == ECONNREFUSED) {
		unlink(path); /* left behind by a broker that died */
	}
	close(s);
	return r;
}

int broker_control_check(const struct broker_config *cfg, char *err, size_t err_size)
{
	pid_t pid = 0;
	int r = make_socket_dir(cfg, false, err, err_size);

	if (r < 0)
		return r;
	r = probe_running(cfg->socket_path, &pid);
	if (r == -EADDRINUSE) {
		snprintf(err, err_size,
			 "instance \"%s\" is already running (pid %d, socket %s): stop it or "
			 "choose another --name",
			 cfg->name, (int)pid, cfg->socket_path);
		return r;
	}
	return 0;
}

static int open_listen(struct broker *b)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char err[512];
	int r = broker_control_check(&b->cfg, err, sizeof(err));

	if (r == 0)
		r = make_socket_dir(&b->cfg, true, err, sizeof(err));
	if (r < 0) {
		onering_log(ONERING_LOG_ERR, "%s", err);
		return r;
	}
	b->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (b->listen_fd < 0)
		return -errno;
	r = set_sun_path(&sa, b->cfg.socket_path);
	if (r < 0)
		return r;
	/* The socket is made 0666 by bind itself (no chmod by path after it):
	 * anyone who may enter the directory may connect; SO_PEERCRED decides
	 * who is served. No other thread creates files yet. */
	mode_t old = umask(0111);
	r = bind(b->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		r = -errno;
		onering_log(ONERING_LOG_ERR, "bind %s: %s", b->cfg.socket_path, strerror(errno));
		return r;
	}
	if (listen(b->listen_fd, 64) < 0)
		return -errno;
	return 0;
}

/* Tell every client the broker is stopping: a CONTROL record in each of its
 * queues (the pollers are stopped, so this thread is the only producer
 * now), a doorbell, and a SHUTDOWN message on its socket. */
static void notify_shutdown(struct broker *b)
{
	struct broker_client *c;
	struct broker_queue *q;

	cds_list_for_each_entry(c, &b->clients, node) {
		cds_list_for_each_entry(q, &c->queues, client_node) {
			struct onering_event e = {0};
			e.kind = ONERING_EV_CONTROL;
			e.payload.control.code = ONERING_CTL_SHUTDOWN;
			if (onering_atomic_load(&q->state, onering_mo_acquire) == BROKER_QUEUE_LIVE &&
			    onering_ring_enqueue_burst(&q->evp, &e, 1) == 1)
				onering_doorbell_ring(q->db);
		}
		struct onering_msg m;
		onering_msg_init(&m, ONERING_MSG_SHUTDOWN, 0);
		onering_msg_send(c->sock, &m, NULL, 0, MSG_DONTWAIT);
	}
}

static int add_fd(struct broker *b, int fd, uint64_t key)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = key};

	return epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int broker_state_init(struct broker *b)
{
	int r;

	CDS_INIT_LIST_HEAD(&b->clients);
	CDS_INIT_LIST_HEAD(&b->pending);
	CDS_INIT_LIST_HEAD(&b->graveyard);
	cds_wfcq_init(&b->reap_head, &b->reap_tail);
	cds_wfcq_init(&b->fault_head, &b->fault_tail);
	b->listen_fd = b->signal_fd = b->reap_fd = b->epfd = -1;
	for (unsigned i = 0; i < BROKER_MAX_POLLERS; i++) {
		b->pollers[i].epfd = b->pollers[i].kick_fd = -1;
		cds_wfcq_init(&b->pollers[i].redeliver_head, &b->pollers[i].redeliver_tail);
	}
	b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	r = broker_registry_init(&b->reg, b->cfg.max_subs);
	if (r < 0)
		return r;
	b->cpu_count = (uint32_t)onering_topo_cpu_count(b->topo);
	b->queues = calloc(b->cfg.max_queues, sizeof(*b->queues));
	b->free_slots = calloc(b->cfg.max_queues, sizeof(*b->free_slots));
	if (!b->queues || !b->free_slots || broker_lanes_init(b) < 0)
		return -ENOMEM;
	for (uint32_t i = b->cfg.max_queues; i-- > 0;)
		b->free_slots[b->nr_free_slots++] = i;
	/* The default group, and those --group configured, exist from the start. */
	struct broker_group *g;
	if ((r = broker_group_get(b, "default", true, NULL, &g)) < 0)
		return r;
	for (unsigned i = 0; i < b->cfg.nr_groups; i++)
		if ((r = broker_group_get(b, b->cfg.groups[i].name, true, NULL, &g)) < 0)
			return r;
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	b->reap_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->epfd < 0 || b->reap_fd < 0)
		return -errno;
	if ((r = add_fd(b, b->reap_fd, KEY_REAP)) < 0)
		return r;
	for (unsigned i = 0; i < b->cfg.plan.nr_pollers; i++) {
		struct poller *p = &b->pollers[i];
		p->b = b;
		p->idx = i;
		p->cpu = b->cfg.plan.pollers[i].cpu;
		p->node = b->cfg.plan.pollers[i].node;
	}
	for (unsigned i = 0; i < b->cfg.plan.nr_pollers; i++)
		for (unsigned j = 0; j < b->cfg.plan.nr_pollers; j++) {
			int d = onering_topo_node_distance(b->topo, b->pollers[i].node,
							   b->pollers[j].node);
			b->pollers[i].dist[j] = (uint16_t)(d > 0 ? d : i == j ? 10 : 20);
		}
	return 0;
}

void broker_state_fini(struct broker *b)
{
	while (!cds_list_empty(&b->clients))
		client_drop(b, cds_list_first_entry(&b->clients, struct broker_client, node), NULL);
	while (!cds_list_empty(&b->pending))
		client_drop(b, cds_list_first_entry(&b->pending, struct broker_client, node), NULL);
	drain_reaped(b);
	urcu_qsbr_barrier(); /* run every call_rcu callback: segments unmapped and closed */
	if (b->reserve_fd >= 0)
		close(b->reserve_fd);
	if (b->epfd >= 0)
		close(b->epfd);
	if (b->reap_fd >= 0)
		close(b->reap_fd);
	b->reserve_fd = b->epfd = b->reap_fd = -1;
	broker_groups_fini(b);
	broker_lanes_fini(b);
	free(b->queues);
	free(b->free_slots);
	b->queues = NULL;
	b->free_slots = NULL;
	broker_registry_fini(&b->reg);
}

int broker_run(struct broker *b)
{
	sigset_t sigs;
	int r;

	/* Signals are taken by this thread only, through a signalfd. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = broker_state_init(b);
	if (r < 0)
		goto out;
	r = open_listen(b);
	if (r < 0)
		goto out;
	b->signal_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (b->signal_fd < 0) {
		r = -errno;
		goto out;
	}
	if ((r = add_fd(b, b->listen_fd, KEY_LISTEN)) < 0 ||
	    (r = add_fd(b, b->signal_fd, KEY_SIGNAL)) < 0)
		goto out;
	/* NIC ports (if any) before the pollers start: their rx queues are
	 * fixed per poller from then on. */
	if ((r = broker_nic_init(b)) < 0 || (r = broker_nic_setup(b)) < 0)
		goto out;
	for (unsigned i = 0; i < b->cfg.plan.nr_pollers; i++) {
		struct poller *p = &b->pollers[i];
		r = poller_start(p);
		if (r < 0) {
			onering_log(ONERING_LOG_ERR, "starting poller %u on cpu %d: %s", i, p->cpu,
				    strerror(-r));
			goto out;
		}
	}
	onering_log(ONERING_LOG_NOTICE, "instance \"%s\" ready on %s (%u poller%s, epoch %016llx)",
		    b->cfg.name, b->cfg.socket_path, b->cfg.plan.nr_pollers,
		    b->cfg.plan.nr_pollers == 1 ? "" : "s", (unsigned long long)b->epoch);
	if (b->ready_fd >= 0) { /* tell the waiting parent (daemon mode) */
		if (write(b->ready_fd, "R", 1) < 0)
			onering_log(ONERING_LOG_WARN, "readiness pipe: %s", strerror(errno));
		close(b->ready_fd);
		b->ready_fd = -1;
	}

	while (!b->stopping) {
		struct epoll_event evs[32];
		/* Sleep until something happens, or until the next HELLO deadline,
		 * the next accept retry at the fd limit, the next look at dead
		 * groups waiting for the lanes - whichever is first. */
		int timeout = expire_pending(b);
		if (b->listen_paused) {
			uint64_t now = mono_ns();
			if (now >= b->listen_retry_ns)
				listen_resume(b);
			int retry = b->listen_paused ? 100 : -1;
			timeout = timeout < 0 || (retry >= 0 && retry < timeout) ? retry : timeout;
		}
		if (broker_groups_reap(b))
			timeout = timeout < 0 || timeout > 10 ? 10 : timeout;
		int n = epoll_wait(b->epfd, evs, 32, timeout);
		if (n < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		/* Clients seen dead in this batch, dropped together after it. */
		struct broker_client *dead[32];
		unsigned nr_dead = 0;
		for (int i = 0; i < n; i++) {
			uint64_t key = evs[i].data.u64;
			if (key == KEY_LISTEN) {
				accept_clients(b);
			} else if (key == KEY_SIGNAL) {
				struct signalfd_siginfo si;
				while (read(b->signal_fd, &si, sizeof(si)) == sizeof(si)) {
					onering_log(ONERING_LOG_NOTICE, "signal %u: shutting down",
						    si.ssi_signo);
					b->stopping = true;
				}
			} else if (key == KEY_REAP) {
				eventfd_t v;
				eventfd_read(b->reap_fd, &v);
				drain_reaped(b);
				drain_faults(b);
				break; /* clients may have gone: re-poll */
			} else {
				bool pidfd = key & CLIENT_PIDFD_TAG;
				struct broker_client *c =
					(struct broker_client *)(uintptr_t)(key & ~(uint64_t)CLIENT_PIDFD_TAG);
				bool known = false;
				for (unsigned k = 0; k < nr_dead; k++)
					known |= dead[k] == c;
				if (known)
					continue;
				if (pidfd || !(evs[i].events & EPOLLIN)) {
					/* Its process ended (its socket may live on), or its
					 * socket hung up. */
					dead[nr_dead++] = c;
					continue;
				}
				/* One message per wake-up keeps clients fair; level-
				 * triggered epoll brings us back for the rest. A client
				 * this drops may appear later in evs: stop the batch. */
				client_readable(b, c);
				break;
			}
		}
		clients_drop(b, dead, nr_dead, NULL);
	}
	r = 0;
out:
	for (unsigned i = 0; i < b->cfg.plan.nr_pollers; i++)
		poller_stop(&b->pollers[i]);
	notify_shutdown(b);
	broker_state_fini(b);
	if (b->listen_fd >= 0) {
		close(b->listen_fd);
		unlink(b->cfg.socket_path);
	}
	if (b->signal_fd >= 0)
		close(b->signal_fd);
	broker_nic_fini(b);
	return r;
}
