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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "numa/topology.h"
#include "shm/doorbell.h"
#include "shm/log.h"

#define KEY_LISTEN 1
#define KEY_SIGNAL 2
#define KEY_REAP 3
/* Client keys: pointer values (always > 4096). */

#define MAX_BAD_MESSAGES 16
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
		onering_log(ONERING_LOG_NOTICE, "client %u (pid %d): %u queues, the most allowed "
			    "(--max-queues)", c->id, (int)c->pid, c->nr_queues);
		reply_status(b, c, m, -EMFILE);
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
		r = broker_group_get(b, o->group, true, &g);
		if (r < 0) {
			reply_status(b, c, m, r);
			return;
		}
		if (g->nr_members >= BROKER_GROUP_MAX_MEMBERS) {
			onering_log(ONERING_LOG_NOTICE, "group '%s' is full (%u members)", g->name,
				    g->nr_members);
			reply_status(b, c, m, -ENOSPC);
			return;
		}
	}
	if (b->nr_free_slots == 0) {
		onering_log(ONERING_LOG_NOTICE, "client %u: the broker serves %u queues, the most "
			    "it keeps", c->id, b->cfg.max_queues);
		reply_status(b, c, m, -EMFILE);
		return;
	}
	if (o->packet_snap > ONERING_PKT_STRIDE_MAX) {
		reply_status(b, c, m, -EINVAL);
		return;
	}
	uint32_t stride = (o->packet_snap + 63u) & ~63u;
	if (o->words > ONERING_WORDS_MAX) {
		reply_status(b, c, m, -EINVAL);
		return;
	}
	r = broker_queue_create(b, c, cap, sq, stride, o->words,
				node < 0 ? ONERING_NODE_ANY : (uint32_t)node, &q);
	if (r < 0) {
		onering_log(ONERING_LOG_ERR, "client %u: queue of %u slots: %s", c->id, cap,
			    strerror(-r));
		reply_status(b, c, m, r);
		return;
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
	c->nr_queues++;
	cds_list_add(&q->client_node, &c->queues);
	BROKER_TSAN_PUBLISH(q);
	cds_list_add_rcu(&q->poller_node, &p->queues);
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
		return;
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
		if (a->group_id > b->nr_groups) {
			r = -ENOENT;
			goto fail;
		}
		g = b->groups[a->group_id - 1];
	}
	if (a->mode == ONERING_MODE_LEVEL || timer)
		g = NULL; /* timers fire into the queue that arms them */
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
	r = broker_group_get(b, name, !(gm->flags & ONERING_GROUP_NO_CREATE), &g);
	if (r == 0 && gm->set) {
		r = broker_group_apply(g, gm);
		if (r == 0)
			onering_log(ONERING_LOG_NOTICE, "group '%s' tuned by pid %d: policy %s, numa "
				    "%s:%u, wake %s, max_running %u, backlog %u", g->name, (int)c->pid,
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
	onering_msg_init(&rep, ONERING_MSG_HELLO | ONERING_MSG_REPLY, m->seq);
	rep.status = status;
	rep.u.hello.abi_major = ONERING_ABI_MAJOR;
	rep.u.hello.abi_minor = ONERING_ABI_MINOR;
	rep.u.hello.pid = (uint32_t)getpid();
	rep.u.hello.epoch = b->epoch;
	rep.u.hello.client_id = c->id;
	rep.u.hello.max_subs = b->cfg.max_subs;
	snprintf(rep.u.hello.name, sizeof(rep.u.hello.name), "%s", b->cfg.name);
	if (send_reply(b, c, &rep, NULL, 0) < 0 || status < 0) {
		client_drop(b, c, status == -EPROTO ? "ABI major version mismatch"
			    : status == -ENXIO ? "asked for another instance name"
					       : "hello reply could not be sent");
		return;
	}
	c->hello_done = true;
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

/* Returns false when the client is gone (dropped or hung up). */
static bool client_readable(struct broker *b, struct broker_client *c)
{
	struct onering_msg m;
	int fds[1] = {-1};
	unsigned nfds = 0, extra = 0;
	int r = onering_msg_recv(c->sock, &m, fds, 1, &nfds, &extra, MSG_DONTWAIT);

	if (extra)
		broker_count(&b->ctr[ONERING_BC_EXTRA_FDS], extra);
	if (r == -EAGAIN || r == -EINTR)
		return true;
	if (r == -ECONNRESET) {
		client_drop(b, c, NULL);
		return false;
	}
	if (r == -EMSGSIZE) {
		/* Cannot trust any field: reply with a zero seq. */
		struct onering_msg fake;
		onering_msg_init(&fake, 0, 0);
		bad_message(b, c, &fake, -EMSGSIZE, "control message of the wrong size");
		return true;
	}
	if (r < 0) {
		client_drop(b, c, strerror(-r));
		return false;
	}
	if (onering_msg_check(&m) < 0) {
		struct onering_msg fake;
		onering_msg_init(&fake, m.type, m.seq);
		if (nfds)
			close(fds[0]);
		bad_message(b, c, &fake, -EPROTO, "control message with a wrong magic or version");
		return true;
	}
	/* SUB_ADD carries the source's fd; a timer (kind TIMER) has none. */
	bool wants_fd = m.type == ONERING_MSG_SUB_ADD && m.u.sub_add.kind != ONERING_EV_TIMER;
	if (nfds != (wants_fd ? 1u : 0u) || extra) {
		if (nfds)
			close(fds[0]);
		broker_count(&b->ctr[ONERING_BC_EXTRA_FDS], wants_fd ? 0 : nfds);
		bad_message(b, c, &m, -EINVAL, "control message with unexpected file descriptors");
		return true;
	}
	if (c->refuse) {
		if (nfds)
			close(fds[0]);
		struct onering_msg rep;
		onering_msg_init(&rep, ONERING_MSG_HELLO | ONERING_MSG_REPLY, m.seq);
		rep.status = c->refuse;
		send_reply(b, c, &rep, NULL, 0);
		client_drop(b, c, NULL);
		return false;
	}
	if (!c->hello_done && m.type != ONERING_MSG_HELLO) {
		if (nfds)
			close(fds[0]);
		bad_message(b, c, &m, -EPERM, "request before HELLO");
		return true;
	}
	switch (m.type) {
	case ONERING_MSG_HELLO:
		handle_hello(b, c, &m);
		break;
	case ONERING_MSG_QUEUE_OPEN:
		handle_queue_open(b, c, &m);
		break;
	case ONERING_MSG_QUEUE_CLOSE:
		handle_queue_close(b, c, &m);
		break;
	case ONERING_MSG_SUB_ADD:
		handle_sub_add(b, c, &m, nfds ? fds[0] : -1);
		break;
	case ONERING_MSG_STATS:
		handle_stats(b, c, &m);
		break;
	case ONERING_MSG_GROUP:
		handle_group(b, c, &m);
		break;
	case ONERING_MSG_PORT_TX:
		handle_port_tx(b, c, &m);
		break;
	default:
		bad_message(b, c, &m, -EOPNOTSUPP, "unknown control message type");
		break;
	}
	return true;
}

static bool peer_allowed(const struct broker *b, const struct ucred *cred)
{
	for (unsigned i = 0; i < b->cfg.nr_allow_uids; i++)
		if (b->cfg.allow_uids[i] == cred->uid)
			return true;
	for (unsigned i = 0; i < b->cfg.nr_allow_gids; i++)
		if (b->cfg.allow_gids[i] == cred->gid)
			return true;
	return false;
}

static void accept_client(struct broker *b)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int sock = accept4(b->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (sock < 0)
		return;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		close(sock);
		return;
	}
	int refuse = 0;
	if (!peer_allowed(b, &cred)) {
		broker_count(&b->ctr[ONERING_BC_DENIED], 1);
		onering_log(ONERING_LOG_NOTICE,
			    "refused pid %d uid %u gid %u (allow it with --allow-uid %u)",
			    (int)cred.pid, (unsigned)cred.uid, (unsigned)cred.gid,
			    (unsigned)cred.uid);
		refuse = -EACCES;
	} else {
		unsigned count = 0;
		struct broker_client *o;
		cds_list_for_each_entry(o, &b->clients, node)
			count++;
		if (count >= b->cfg.max_clients) {
			onering_log(ONERING_LOG_WARN,
				    "refused pid %d: %u clients attached (--max-clients)",
				    (int)cred.pid, count);
			refuse = -EUSERS;
		}
	}
	struct broker_client *c = calloc(1, sizeof(*c));
	if (!c) {
		close(sock);
		return;
	}
	int sndbuf = 1 << 20;
	setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	c->id = ++b->next_client_id;
	c->sock = sock;
	c->pid = cred.pid;
	c->uid = cred.uid;
	/* A refused peer is answered once its HELLO is read: closing with its
	 * message unread would reset the connection before it sees why. */
	c->refuse = refuse;
	CDS_INIT_LIST_HEAD(&c->queues);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, sock, &ev) < 0) {
		close(sock);
		free(c);
		return;
	}
	cds_list_add(&c->node, &b->clients);
	broker_count(&b->ctr[ONERING_BC_ATTACHES], 1);
	broker_count(&b->ctr[ONERING_BC_CLIENTS], 1);
}

static void client_drop(struct broker *b, struct broker_client *c, const char *why)
{
	struct broker_queue *qs[64], *q, *tmp;
	unsigned n = 0;

	if (why) {
		broker_count(&b->ctr[ONERING_BC_DROPPED], 1);
		onering_log(ONERING_LOG_NOTICE, "dropping client %u (pid %d): %s", c->id,
			    (int)c->pid, why);
	}
	/* Queues go in batches sharing one grace period. */
	while (!cds_list_empty(&c->queues)) {
		n = 0;
		cds_list_for_each_entry_safe(q, tmp, &c->queues, client_node) {
			if (n == 64)
				break;
			qs[n++] = q;
		}
		close_queues(b, qs, n);
	}
	epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->sock, NULL);
	close(c->sock);
	cds_list_del(&c->node);
	broker_count(&b->ctr[ONERING_BC_CLIENTS], (uint64_t)-1);
	free(c);
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

static int make_socket_dir(const char *dir)
{
	char tmp[256];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return access(dir, W_OK | X_OK) < 0 ? -errno : 0;
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
	int r = make_socket_dir(cfg->socket_dir);

	if (r < 0) {
		snprintf(err, err_size,
			 "socket directory %s is not usable: %s (use --socket-dir DIR, or run as "
			 "root for /run/onering)",
			 cfg->socket_dir, strerror(-r));
		return r;
	}
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
	mode_t old = umask(0);
	r = bind(b->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		r = -errno;
		onering_log(ONERING_LOG_ERR, "bind %s: %s", b->cfg.socket_path, strerror(errno));
		return r;
	}
	/* Anyone may connect; SO_PEERCRED decides who is served. */
	chmod(b->cfg.socket_path, 0666);
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

int broker_run(struct broker *b)
{
	sigset_t sigs;
	int r;

	CDS_INIT_LIST_HEAD(&b->clients);
	cds_wfcq_init(&b->reap_head, &b->reap_tail);
	cds_wfcq_init(&b->fault_head, &b->fault_tail);
	b->listen_fd = b->signal_fd = b->reap_fd = b->epfd = -1;
	for (unsigned i = 0; i < BROKER_MAX_POLLERS; i++) {
		b->pollers[i].epfd = b->pollers[i].kick_fd = -1;
		cds_wfcq_init(&b->pollers[i].redeliver_head, &b->pollers[i].redeliver_tail);
	}

	/* Signals are taken by this thread only, through a signalfd. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = broker_registry_init(&b->reg, b->cfg.max_subs);
	if (r < 0)
		return r;
	b->cpu_count = (uint32_t)onering_topo_cpu_count(b->topo);
	b->queues = calloc(b->cfg.max_queues, sizeof(*b->queues));
	b->free_slots = calloc(b->cfg.max_queues, sizeof(*b->free_slots));
	if (!b->queues || !b->free_slots || broker_lanes_init(b) < 0) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t i = b->cfg.max_queues; i-- > 0;)
		b->free_slots[b->nr_free_slots++] = i;
	/* The default group, and those --group configured, exist from the start. */
	{
		struct broker_group *g;
		if ((r = broker_group_get(b, "default", true, &g)) < 0)
			goto out;
		for (unsigned i = 0; i < b->cfg.nr_groups; i++)
			if ((r = broker_group_get(b, b->cfg.groups[i].name, true, &g)) < 0)
				goto out;
	}
	r = open_listen(b);
	if (r < 0)
		goto out;
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	b->signal_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	b->reap_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->epfd < 0 || b->signal_fd < 0 || b->reap_fd < 0) {
		r = -errno;
		goto out;
	}
	if ((r = add_fd(b, b->listen_fd, KEY_LISTEN)) < 0 ||
	    (r = add_fd(b, b->signal_fd, KEY_SIGNAL)) < 0 || (r = add_fd(b, b->reap_fd, KEY_REAP)) < 0)
		goto out;

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
		int n = epoll_wait(b->epfd, evs, 32, -1);
		if (n < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t key = evs[i].data.u64;
			if (key == KEY_LISTEN) {
				accept_client(b);
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
				struct broker_client *c = evs[i].data.ptr;
				/* One message per wake-up keeps clients fair; level-
				 * triggered epoll brings us back for the rest. */
				if ((evs[i].events & EPOLLIN) && !client_readable(b, c))
					continue;
				if (!(evs[i].events & EPOLLIN) &&
				    (evs[i].events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)))
					client_drop(b, c, NULL);
				/* A client dropped above may appear later in evs:
				 * stop this batch and re-poll. */
				break;
			}
		}
	}
	r = 0;
out:
	for (unsigned i = 0; i < b->cfg.plan.nr_pollers; i++)
		poller_stop(&b->pollers[i]);
	notify_shutdown(b);
	while (!cds_list_empty(&b->clients))
		client_drop(b, cds_list_first_entry(&b->clients, struct broker_client, node), NULL);
	drain_reaped(b);
	urcu_qsbr_barrier(); /* run every call_rcu callback: segments unmapped and closed */
	if (b->listen_fd >= 0) {
		close(b->listen_fd);
		unlink(b->cfg.socket_path);
	}
	if (b->epfd >= 0)
		close(b->epfd);
	if (b->signal_fd >= 0)
		close(b->signal_fd);
	if (b->reap_fd >= 0)
		close(b->reap_fd);
	broker_nic_fini(b);
	broker_groups_fini(b);
	broker_lanes_fini(b);
	free(b->queues);
	free(b->free_slots);
	broker_registry_fini(&b->reg);
	return r;
}
