/* SPDX-License-Identifier: MIT */
/*
 * The control thread's message handlers: one function per control message
 * (HELLO, QUEUE_OPEN, QUEUE_CLOSE, SUB_ADD, SUB_FD, GROUP, STATS, PORT_TX), the
 * checks they share (broker_client_message) and the replies. The socket
 * server that feeds them is server.c.
 *
 * A handler never blocks on a client: replies go out with MSG_DONTWAIT, and
 * a client whose socket is full is dropped. Every message is validated
 * (shm/proto.h); a bad one gets an error reply and a counter, and a client
 * that keeps sending them is dropped.
 *
 * Errors: handlers return 0 when the request was answered (whatever the
 * status in the reply) and c is still there, or a negative errno once c was
 * dropped and freed; the caller must not touch c then.
 *
 * Ordering contract
 * -----------------
 * What this file publishes to the pollers, and the edges it relies on. The
 * pollers' side is named by function and file; labels of other files are
 * qualified by theirs, as in the rest of broker/ (A5 (deliver.c)).
 *
 *   R1  handle_queue_open: rcu_assign_pointer(p->queues.next) links a new
 *       queue, its fields and its own list links written before, into
 *       poller p's RCU list. Synchronises with every walk of that list
 *       (cds_list_for_each_entry_rcu: rcu_dereference): set_need_wakeup
 *       (poller.c), deliver_flush (deliver.c), submit_poll and
 *       submit_has_work (source_submit.c), words_poll (source_words.c).
 *   R2  handle_queue_open: rcu_assign_pointer(b->queues[slot], q) publishes
 *       the queue in the table pollers' hand-offs look it up in.
 *       Synchronises with the rcu_dereference in broker_queue_lookup
 *       (queue.c).
 *   R3  broker_queues_close: rcu_assign_pointer(b->queues[slot], NULL)
 *       unpublishes it; same partner as R2. Before it the queue is marked
 *       CLOSING: R4 (queue.c, broker_queue_begin_close), paired with the
 *       pollers' A5 (deliver.c) before they use a queue.
 *   G1  broker_queues_close: urcu_qsbr_synchronize_rcu waits until every
 *       poller passed a quiescent state after R3 (urcu_qsbr_quiescent_state
 *       at the top of poller_main's loop, or urcu_qsbr_thread_offline
 *       around its idle sleep; poller.c): no poller iteration that saw the
 *       queue LIVE runs any more, and this thread owns it alone.
 *   A1  broker_reaped_drain: the wait-free queue's dequeue. Synchronises
 *       with the enqueue in sub_delete (request.c): the poller's last
 *       writes to the subscription are visible before it is finished here.
 *
 * (Labels are numbered across the control thread: A2 and A3 are server.c's.)
 * The subscription table's publication (SUB_ADD) is registry.c's
 * (broker_registry_publish); group settings are settled through
 * broker_pollers_settle (poller.c), which carries its own pair.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/accept.h"
#include "broker/bells.h"
#include "broker/broker.h"
#include "broker/control.h"
#include "broker/group.h"
#include "broker/queue.h"
#include "broker/source.h"
#include "numa/topology.h"
#include "shm/log.h"

#define MAX_BAD_MESSAGES 16
#define SUB_EVENTS_ALLOWED (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI)

/* Send m (and fds) to c without blocking. Returns 0 or the negative errno of
 * the send, logged here unless the peer is simply gone (EPIPE, ECONNRESET:
 * the control loop sees its hang-up). A client that stops reading causes
 * this at will: rate-limited. */
static int send_reply(struct broker *b, struct broker_client *c, const struct onering_msg *m,
		      const int *fds, unsigned nfds)
{
	static struct broker_log_limit limit;
	uint32_t suppressed;
	int r = onering_msg_send(c->sock, m, fds, nfds, MSG_DONTWAIT);

	(void)b;
	if (r < 0 && r != -EPIPE && r != -ECONNRESET && broker_log_allowed(&limit, &suppressed))
		onering_log(ONERING_LOG_WARN, "client %u (pid %d): reply not sent: %s (message type "
			    "0x%x; %u such failures not logged)", c->id, (int)c->pid, strerror(-r),
			    (unsigned)m->type, suppressed);
	return r;
}

/* The reply to req carrying only status. Returns send_reply's result; the
 * handlers ignore it where a lost reply costs only that reply (logged
 * there), and drop the client where its state would go out of step. */
static int reply_status(struct broker *b, struct broker_client *c, const struct onering_msg *req,
			int status)
{
	struct onering_msg m;

	onering_msg_init(&m, (uint16_t)(req->type | ONERING_MSG_REPLY), req->seq);
	m.status = status;
	return send_reply(b, c, &m, NULL, 0);
}

/* An error reply with its reason (the limit or check, and how to change
 * it), logged once here and shown by the client's onering_last_error().
 * Returns send_reply's result. */
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
unsigned broker_reaped_drain(struct broker *b)
{
	struct cds_wfcq_node *node;
	unsigned n = 0;

	/* A1: synchronises with the enqueue in sub_delete (request.c). */
	while ((node = __cds_wfcq_dequeue_blocking(&b->reap_head, &b->reap_tail))) {
		struct broker_sub *s = caa_container_of(node, struct broker_sub, reap_node);
		BROKER_TSAN_OBSERVE(s);
		broker_sub_finalize(b, s);
		n++;
	}
	return n;
}

/* Queues that faulted before they closed still sit on the fault queue
 * (their fault_node): take them off before they are freed, so that
 * drain_faults never dequeues freed memory; the others go back. Called
 * after the grace period, when no poller can fault these queues any more. */
static void faults_forget(struct broker *b, struct broker_queue **qs, unsigned n)
{
	struct cds_wfcq_head head;
	struct cds_wfcq_tail tail;
	struct cds_wfcq_node *node;

	cds_wfcq_init(&head, &tail);
	__cds_wfcq_splice_blocking(&head, &tail, &b->fault_head, &b->fault_tail);
	while ((node = __cds_wfcq_dequeue_blocking(&head, &tail))) {
		struct broker_queue *q = caa_container_of(node, struct broker_queue, fault_node);
		bool closing = false;
		for (unsigned i = 0; i < n && !closing; i++)
			closing = qs[i] == q;
		if (!closing)
			cds_wfcq_enqueue(&b->fault_head, &b->fault_tail, node);
	}
	cds_wfcq_destroy(&head, &tail);
}

void broker_queues_close(struct broker *b, struct broker_queue **qs, unsigned n)
{
	bool faulted = false;

	if (n == 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		/* A5's partner on this side: the CAS to FAULTED (deliver.c). */
		faulted |= onering_atomic_load(&qs[i]->state, onering_mo_acquire) ==
			   BROKER_QUEUE_FAULTED;
		broker_queue_begin_close(qs[i]);
		/* Out of its group and the queue table before the grace period:
		 * afterwards no poller can pick it or find it from a hand-off. */
		broker_group_leave(b, qs[i]);
		/* R3: synchronises with broker_queue_lookup's rcu_dereference
		 * (queue.c). */
		rcu_assign_pointer(b->queues[qs[i]->slot], NULL);
	}
	/* G1: waits for a quiescent state of every poller (poller_main) after
	 * R3. After this no poller iteration that saw the queues LIVE still
	 * runs, so nothing new for them reaches the reap queue either. */
	urcu_qsbr_synchronize_rcu();
	BROKER_TSAN_GRACE_DONE();
	broker_reaped_drain(b);
	if (faulted)
		faults_forget(b, qs, n);
	for (unsigned i = 0; i < n; i++) {
		/* What its consumer did not take goes to the rest of its group. */
		if (qs[i]->group && !b->stopping)
			broker_group_redeliver(b, qs[i]);
		b->free_slots[b->nr_free_slots++] = qs[i]->slot;
		broker_queue_teardown(b, qs[i]);
	}
}

/* QUEUE_OPEN: a queue (event and submission rings) on its consumer's node,
 * in a group if one is named; the reply carries the rings' memfds and the
 * poller's kick fd. */
static int handle_queue_open(struct broker *b, struct broker_client *c, struct onering_msg *m)
{
	struct onering_msg_queue_open *o = &m->u.queue_open;
	uint32_t cap = o->ev_capacity ? o->ev_capacity : b->cfg.default_capacity;
	uint32_t sq = o->sq_capacity ? o->sq_capacity : b->cfg.default_sq_capacity;
	uint32_t levels = o->levels ? o->levels : 1;
	struct broker_queue *q;
	int r;

	if (!onering_ring_capacity_valid(cap) || cap > b->cfg.max_capacity ||
	    !onering_ring_capacity_valid(sq) || sq > b->cfg.max_capacity) {
		reply_status(b, c, m, -EINVAL);
		return 0;
	}
	if (levels > ONERING_PRIO_LEVELS) {
		reply_error(b, c, m, -EINVAL, "%u priority levels asked for, a queue has at most %u",
			    o->levels, ONERING_PRIO_LEVELS);
		return 0;
	}
	if (c->nr_queues >= b->cfg.max_queues_per_client) {
		reply_error(b, c, m, -EDQUOT, "%u queues open, the most a client may have "
			    "(oneringd --max-queues)", c->nr_queues);
		return 0;
	}
	if (c->nr_fds + BROKER_QUEUE_FDS > b->cfg.max_client_fds) {
		reply_error(b, c, m, -EDQUOT, "%u fds held for this client, a queue needs %u more "
			    "(oneringd --max-client-fds %u)", c->nr_fds, BROKER_QUEUE_FDS,
			    b->cfg.max_client_fds);
		return 0;
	}
	/* (1.8) The stream area: counted in 64-byte slots against the same quota. */
	struct broker_stream_geom sg = {o->stream_rx, o->stream_tx, o->stream_buf};
	if (sg.rx || sg.tx) {
		if (!sg.rx || sg.rx > ONERING_STREAM_BUFS_MAX || sg.tx > ONERING_STREAM_BUFS_MAX ||
		    sg.buf < ONERING_STREAM_BUF_MIN || sg.buf > ONERING_STREAM_BUF_MAX ||
		    (sg.buf & (sg.buf - 1)) ||
		    (uint64_t)(sg.rx + sg.tx) * sg.buf > ONERING_STREAM_AREA_MAX) {
			reply_error(b, c, m, -EINVAL, "stream area of %u receive and %u transmit "
				    "buffers of %u bytes: 1..%u receive buffers, 0..%u transmit, a "
				    "power of two %u..%u bytes each, %llu MiB in all at most",
				    sg.rx, sg.tx, sg.buf, ONERING_STREAM_BUFS_MAX,
				    ONERING_STREAM_BUFS_MAX, ONERING_STREAM_BUF_MIN,
				    ONERING_STREAM_BUF_MAX,
				    (unsigned long long)(ONERING_STREAM_AREA_MAX >> 20));
			return 0;
		}
	}
	/* Every level is a ring of cap slots. */
	uint64_t slots = (uint64_t)cap * levels + sq +
			 ((uint64_t)(sg.rx + sg.tx) * sg.buf + 63) / 64;
	if (c->ring_slots + slots > b->cfg.max_client_slots) {
		reply_error(b, c, m, -EDQUOT, "%llu ring slots in use, %llu more would pass "
			    "oneringd --max-client-slots %llu", (unsigned long long)c->ring_slots,
			    (unsigned long long)slots, (unsigned long long)b->cfg.max_client_slots);
		return 0;
	}
	/* The queue lives on its consumer's node: the one asked for, else the
	 * node of the CPU the opener ran on. */
	int node = o->node >= 0 ? o->node : o->cpu >= 0 ? onering_topo_cpu_node(b->topo, o->cpu) : -1;
	bool node_known = false;
	for (int i = 0; i < onering_topo_node_count(b->topo); i++)
		node_known |= onering_topo_node_at(b->topo, i) == node;
	if (o->node >= 0 && !node_known) {
		reply_status(b, c, m, -EINVAL);
		return 0;
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
			return 0;
		}
		if (r == -ENOSPC) {
			reply_error(b, c, m, r, "group '%s': the broker has %u groups, the most it "
				    "keeps", o->group, BROKER_MAX_GROUPS);
			return 0;
		}
		if (r < 0) {
			reply_status(b, c, m, r);
			return 0;
		}
		if (!broker_group_permits(b, g, BROKER_PERM_JOIN, &c->cred)) {
			char who[96];
			broker_group_perm_text(b, g, BROKER_PERM_JOIN, who, sizeof(who));
			reply_error(b, c, m, -EPERM, "group '%s' may be joined by %s", g->name, who);
			return 0;
		}
		if (g->nr_members >= BROKER_GROUP_MAX_MEMBERS) {
			reply_error(b, c, m, -ENOSPC, "group '%s' is full (%u members)", g->name,
				    g->nr_members);
			return 0;
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
	r = broker_queue_create(b, c, cap, sq, stride, o->words, levels, &sg,
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
	q->nr_slots = slots;
	c->nr_queues++;
	c->nr_fds += BROKER_QUEUE_FDS;
	c->ring_slots += q->nr_slots;
	cds_list_add(&q->client_node, &c->queues);
	/* cds_list_add_rcu, with the TSan release between the new node's own
	 * links and its publication: the poller walking the list reads
	 * q->poller_node.next after it sees q, and TSan cannot see liburcu's
	 * rcu_assign_pointer (see BROKER_TSAN_PUBLISH). */
	q->poller_node.next = p->queues.next;
	q->poller_node.prev = &p->queues;
	BROKER_TSAN_PUBLISH(q);
	/* R1: synchronises with the walks of p->queues in set_need_wakeup
	 * (poller.c), deliver_flush (deliver.c), submit_poll and
	 * submit_has_work (source_submit.c), words_poll (source_words.c). */
	rcu_assign_pointer(p->queues.next, &q->poller_node);
	q->poller_node.next->prev = &q->poller_node;
	/* R12: pairs with A15 in deliver_flush: it counts its queues again. */
	onering_atomic_fetch_add(&p->queues_gen, 1u, onering_mo_release);
	/* A sleeping poller announced NEED_WAKEUP only in the queues it had:
	 * this one reads 0, so its client would not kick, and its first
	 * request would wait out the sleep (up to --idle-sleep-ms). Kick now:
	 * the sleep the poller announces next includes this queue. Its read
	 * of the kick orders the insertion above before that announcement. */
	poller_kick(p);
	/* R2: synchronises with broker_queue_lookup's rcu_dereference
	 * (queue.c). */
	rcu_assign_pointer(b->queues[q->slot], q);
	r = broker_bells_join(p, q, c->cred.uid, c->abi_minor >= ONERING_BELL_SUMMARY_MINOR);
	if (r < 0) {
		onering_log(ONERING_LOG_ERR, "client %u: no submission bell for queue %u on "
			    "poller %u: %s", c->id, q->id, p->idx, strerror(-r));
		broker_queues_close(b, &q, 1);
		reply_status(b, c, m, r == -ENOSPC ? -ENOMEM : r);
		goto unused_group;
	}
	if (g && broker_group_join(b, g, q) < 0) {
		broker_queues_close(b, &q, 1);
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
	rep.u.queue_open.levels = levels;
	rep.u.queue_open.bell = q->bell;
	if (q->streams) {
		rep.u.queue_open.stream_rx = sg.rx;
		rep.u.queue_open.stream_tx = sg.tx;
		rep.u.queue_open.stream_buf = sg.buf;
	}
	int fds[5] = {q->ev_seg.fd, q->cons_seg.fd, p->kick_fd, q->bell_fd, q->bells->seg.fd};
	if (send_reply(b, c, &rep, fds, 5) < 0) {
		/* The client never learns of the queue: it goes, the client stays. */
		broker_queues_close(b, &q, 1);
		return 0;
	}
	onering_log(ONERING_LOG_INFO, "client %u (pid %d): queue %u, %u slots, poller %u%s%s",
		    c->id, (int)c->pid, q->id, cap, p->idx, g ? ", group " : "", g ? g->name : "");
	return 0;
unused_group:
	if (g) /* created for this open and left unused: it ends at once */
		broker_group_maybe_end(b, g);
	return 0;
}

/* QUEUE_CLOSE: one of c's queues, after a grace period. */
static int handle_queue_close(struct broker *b, struct broker_client *c, struct onering_msg *m)
{
	struct broker_queue *q = client_queue(c, m->u.queue.queue_id);

	if (!q) {
		reply_status(b, c, m, -ENOENT);
		return 0;
	}
	broker_queues_close(b, &q, 1);
	reply_status(b, c, m, 0);
	return 0;
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

/* SUB_ADD of kind STREAM (ABI 1.8): a socket in completion mode, into q
 * itself (accept.c). fd is c's: closed here on any refusal. */
static int sub_add_stream(struct broker *b, struct broker_client *c, struct onering_msg *m,
			  struct broker_queue *q, int fd)
{
	struct onering_msg_sub_add *a = &m->u.sub_add;
	struct broker_sub *s;
	char why[160];
	int r;

	if (fd < 0 || a->group_id || a->priority >= ONERING_PRIO_LEVELS) {
		if (fd >= 0)
			broker_client_fd_close(c, fd, "source fd refused");
		reply_error(b, c, m, -EINVAL, "a completion-mode socket goes into its queue itself "
			    "(no group), with its fd and a priority 0..%u", ONERING_PRIO_LEVELS - 1);
		return 0;
	}
	if (c->nr_subs >= b->cfg.max_client_subs || c->nr_fds >= b->cfg.max_client_fds) {
		bool subs = c->nr_subs >= b->cfg.max_client_subs;
		broker_client_fd_close(c, fd, "source fd refused");
		reply_error(b, c, m, -EDQUOT, "%u %s held for this client, the most allowed "
			    "(oneringd %s)", subs ? c->nr_subs : c->nr_fds,
			    subs ? "subscriptions" : "fds", subs ? "--max-client-subs" : "--max-client-fds");
		return 0;
	}
	if (source_is_broker_socket(fd)) {
		broker_client_fd_close(c, fd, "source fd refused");
		reply_error(b, c, m, -EINVAL, "a socket connected to the broker cannot be a "
			    "source (it would hold a client's connection open)");
		return 0;
	}
	s = NULL;
	r = broker_stream_sub_add(b, c, q, fd, a->cookie, a->priority, 0, &s, why, sizeof(why));
	if (r < 0) {
		if (!s) /* else it was published and the reap path closes it */
			broker_client_fd_close(c, fd, "source fd refused");
		reply_error(b, c, m, r, "%s", why);
		return 0;
	}
	struct onering_msg rep;
	onering_msg_init(&rep, (uint16_t)(m->type | ONERING_MSG_REPLY), m->seq);
	rep.u.sub_add = *a;
	rep.u.sub_add.sub_id = s->id;
	rep.u.sub_add.sub_gen = s->gen;
	r = send_reply(b, c, &rep, NULL, 0);
	if (r < 0)
		broker_client_drop(b, c, "reply to SUB_ADD could not be sent");
	return r;
}

/* SUB_ADD: a source (fd, or a timer when fd is -1) for one of c's queues,
 * or for a group it may post to. fd is c's: closed here on any refusal. */
static int handle_sub_add(struct broker *b, struct broker_client *c, struct onering_msg *m,
			   int fd)
{
	static struct broker_log_limit add_log;
	uint32_t suppressed;
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
	if (kind == ONERING_EV_STREAM)
		return sub_add_stream(b, c, m, q, fd);
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
				broker_client_fd_close(c, fd, "source fd refused");
			reply_error(b, c, m, -EPERM, "group '%s' takes records from %s", g->name, who);
			return 0;
		}
	}
	if (a->priority >= ONERING_PRIO_LEVELS) {
		if (fd >= 0)
			broker_client_fd_close(c, fd, "source fd refused");
		reply_error(b, c, m, -EINVAL, "priority %u: priorities are 0..%u", a->priority,
			    ONERING_PRIO_LEVELS - 1);
		return 0;
	}
	if (a->mode == ONERING_MODE_LEVEL || timer)
		g = NULL; /* timers fire into the queue that arms them */
	if (c->nr_subs >= b->cfg.max_client_subs || (!timer && c->nr_fds >= b->cfg.max_client_fds)) {
		bool subs = c->nr_subs >= b->cfg.max_client_subs;
		if (fd >= 0)
			broker_client_fd_close(c, fd, "source fd refused");
		reply_error(b, c, m, -EDQUOT, "%u %s held for this client, the most allowed "
			    "(oneringd %s)", subs ? c->nr_subs : c->nr_fds,
			    subs ? "subscriptions" : "fds", subs ? "--max-client-subs" : "--max-client-fds");
		return 0;
	}
	if (!timer && source_is_broker_socket(fd)) {
		broker_client_fd_close(c, fd, "source fd refused");
		reply_error(b, c, m, -EINVAL, "a socket connected to the broker cannot be a "
			    "source (it would hold a client's connection open)");
		return 0;
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
	if (!s) {
		onering_log(ONERING_LOG_ERR, "client %u: subscription: out of memory", c->id);
		r = -ENOMEM;
		broker_registry_unalloc(&b->reg, id);
		goto fail;
	}
	if (!timer && epoll_ctl(home->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		/* Mostly the client's fd (EPERM: a regular file), which it may
		 * send again and again: rate-limited, and the reply says it too. */
		r = errno == EPERM ? -EINVAL : -errno;
		if (broker_log_allowed(&add_log, &suppressed))
			onering_log(ONERING_LOG_NOTICE, "client %u (pid %d): source fd of kind %u not "
				    "watchable (epoll_ctl ADD on poller %u: %s; %u such not logged)",
				    c->id, (int)c->pid, kind, home->idx, strerror(errno), suppressed);
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
	s->prio = (uint8_t)a->priority; /* checked above: < ONERING_PRIO_LEVELS */
	cds_list_add(&s->queue_node, &q->subs);
	broker_count(&q->ctr[ONERING_QC_SUBS], 1);
	c->nr_subs++;
	c->nr_fds += fd >= 0;
	if (fd >= 0) /* in home's epfd: its fd source asks epoll again */
		onering_atomic_fetch_add(&home->fd_subs, 1u, onering_mo_relaxed);
	if (g)
		broker_group_ref(g);
	/* From here the sub's delivery fields belong to the poller (a MOD from
	 * the submission ring may already change them): arm from locals. */
	broker_registry_publish(&b->reg, s);
	ev.events = broker_epoll_flags((uint8_t)a->mode, a->events);
	/* ENOENT: a DEL from the submission ring was first (the poller
	 * deleted it already). Anything else leaves the source unarmed. */
	if (!timer && epoll_ctl(home->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 && errno != ENOENT &&
	    broker_log_allowed(&add_log, &suppressed))
		onering_log(ONERING_LOG_WARN, "client %u (pid %d): subscription %u left unarmed "
			    "(epoll_ctl MOD on poller %u: %s; %u such not logged)", c->id,
			    (int)c->pid, id, home->idx, strerror(errno), suppressed);

	struct onering_msg rep;
	onering_msg_init(&rep, (uint16_t)(m->type | ONERING_MSG_REPLY), m->seq);
	rep.u.sub_add = *a;
	rep.u.sub_add.sub_id = id;
	rep.u.sub_add.sub_gen = gen;
	r = send_reply(b, c, &rep, NULL, 0);
	if (r < 0)
		broker_client_drop(b, c, "reply to SUB_ADD could not be sent");
	return r;
fail:
	if (fd >= 0)
		broker_client_fd_close(c, fd, "source fd refused");
	reply_status(b, c, m, r);
	return 0;
}

/* SUB_FD (ABI 1.8): the socket of one of c's completion-mode connections,
 * a duplicate for the application (a socket option, getpeername). */
static int handle_sub_fd(struct broker *b, struct broker_client *c, struct onering_msg *m)
{
	struct broker_sub *s = broker_registry_lookup(
		&b->reg, broker_sub_key(m->u.sub_fd.sub_id, m->u.sub_fd.sub_gen));

	/* Only the owner's, and only while it lives (the control thread is the
	 * one that finalizes it: s->fd stays open until then). */
	if (!s || broker_sub_dead(s) || s->queue->client != c || s->kind != ONERING_EV_STREAM ||
	    s->fd < 0) {
		reply_status(b, c, m, -ENOENT);
		return 0;
	}
	struct onering_msg rep;
	onering_msg_init(&rep, (uint16_t)(m->type | ONERING_MSG_REPLY), m->seq);
	rep.u.sub_fd = m->u.sub_fd;
	int r = send_reply(b, c, &rep, &s->fd, 1);
	if (r < 0)
		broker_client_drop(b, c, "reply to SUB_FD could not be sent");
	return r;
}

/* ---- NIC ------------------------------------------------------------------ */

/* PORT_TX: one frame out of a NIC port (--allow-inject). */
static int handle_port_tx(struct broker *b, struct broker_client *c, struct onering_msg *m)
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
	return 0;
}

/* ---- groups -------------------------------------------------------------- */

/* GROUP: look up or create a group, and tune it when asked (and allowed). */
static int handle_group(struct broker *b, struct broker_client *c, struct onering_msg *m)
{
	struct onering_msg_group *gm = &m->u.group;
	struct broker_group *g;
	char name[ONERING_NAME_MAX];
	int r;

	memcpy(name, gm->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	if (gm->flags & ~(uint32_t)ONERING_GROUP_NO_CREATE) {
		reply_status(b, c, m, -EINVAL);
		return 0;
	}
	bool existed = broker_group_get(b, name, false, NULL, &g) == 0;
	r = existed ? 0 : broker_group_get(b, name, !(gm->flags & ONERING_GROUP_NO_CREATE), c, &g);
	if (r == -EDQUOT) {
		reply_error(b, c, m, r, "group '%s': this client made %u live groups, its most "
			    "(oneringd --max-client-groups)", name, c->nr_groups_created);
		return 0;
	}
	if (r == 0 && !existed)
		g->pinned = true; /* lives while its creator is attached, or has members */
	if (r == 0 && gm->set && !broker_group_permits(b, g, BROKER_PERM_TUNE, &c->cred)) {
		char who[96];
		broker_group_perm_text(b, g, BROKER_PERM_TUNE, who, sizeof(who));
		reply_error(b, c, m, -EPERM, "group '%s' may be tuned by %s", g->name, who);
		return 0;
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
		return 0;
	}
	struct onering_msg rep;
	onering_msg_init(&rep, (uint16_t)(m->type | ONERING_MSG_REPLY), m->seq);
	broker_group_describe(g, &rep.u.group);
	r = send_reply(b, c, &rep, NULL, 0);
	if (r < 0)
		broker_client_drop(b, c, "reply to GROUP could not be sent");
	return r;
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

/* STATS: one item per broker, poller, queue, group and NIC port, then END. */
static int handle_stats(struct broker *b, struct broker_client *c, struct onering_msg *req)
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
					     broker_queue_consumed(q),
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
	r = send_reply(b, c, &end, NULL, 0);
	if (r < 0)
		broker_client_drop(b, c, "stats reply could not be sent");
	return r;
}

/*
 * COUNTERS: the counters segment's fd, to a peer that passed SO_PEERCRED
 * (a refused one got its refusal above), refreshed first. It costs no client
 * slot: a pending connection is answered and closed at once; an attached
 * client may ask too and stays.
 */
static int handle_counters(struct broker *b, struct broker_client *c, struct onering_msg *m)
{
	struct onering_msg rep;
	int fd = b->counters.seg.fd;

	m->u.counters.name[ONERING_NAME_MAX - 1] = '\0';
	onering_msg_init(&rep, ONERING_MSG_COUNTERS | ONERING_MSG_REPLY, m->seq);
	if (strcmp(m->u.counters.name, b->cfg.name) != 0) {
		rep.status = -ENXIO;
	} else if (fd < 0) {
		rep.status = -ENODEV;
		snprintf(rep.u.reason, sizeof(rep.u.reason), "this broker has no counters segment "
			 "(its creation failed at start: see its log)");
	} else {
		b->counters.readers++;
		broker_counters_update(b, ONERING_COUNTERS_RUNNING);
		rep.u.counters.version = ONERING_COUNTERS_VERSION;
		rep.u.counters.size = (uint32_t)b->counters.seg.size;
	}
	send_reply(b, c, &rep, rep.status ? NULL : &fd, rep.status ? 0 : 1); /* logged there */
	if (c->hello_done)
		return 0;
	broker_client_drop(b, c, NULL);
	return -ECONNRESET;
}

/* HELLO: pending -> attached, or refused (ABI, instance name, --max-clients). */
static int handle_hello(struct broker *b, struct broker_client *c, struct onering_msg *m)
{
	struct onering_msg rep;
	int status = 0;

	if (c->hello_done) {
		reply_status(b, c, m, -EALREADY);
		return 0;
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
		send_reply(b, c, &rep, NULL, 0); /* a failure is logged there; it goes anyway */
		broker_client_drop(b, c, status == -EPROTO ? "ABI major version mismatch"
				   : status == -ENXIO ? "asked for another instance name" : NULL);
		return status;
	}
	/* Pending -> attached: from now on it counts against --max-clients.
	 * Its process is watched before it hears back, so that everything the
	 * broker holds for it is in place once the client sees the reply. */
	c->hello_done = true;
	c->abi_minor = m->u.hello.abi_minor;
	cds_list_del(&c->node);
	b->nr_pending--;
	cds_list_add_tail(&c->node, &b->clients);
	b->nr_clients++;
	broker_count(&b->ctr[ONERING_BC_ATTACHES], 1);
	broker_count(&b->ctr[ONERING_BC_CLIENTS], 1);
	/* A failure is logged there: c is then watched through its socket only. */
	broker_client_watch_process(b, c);
	int r = send_reply(b, c, &rep, NULL, 0);
	if (r < 0) {
		broker_client_drop(b, c, "hello reply could not be sent");
		return r;
	}
	/* c->pid stays what SO_PEERCRED said; the message's pid is not trusted. */
	onering_log(ONERING_LOG_INFO, "client %u attached: pid %d uid %u", c->id, (int)c->pid,
		    (unsigned)c->uid);
	return 0;
}

int broker_client_bad_message(struct broker *b, struct broker_client *c,
			      const struct onering_msg *m, int status, const char *what)
{
	broker_count(&b->ctr[ONERING_BC_BAD_MESSAGES], 1);
	onering_log(ONERING_LOG_NOTICE, "client %u (pid %d): %s", c->id, (int)c->pid, what);
	if (m)
		reply_status(b, c, m, status);
	if (++c->bad_messages < MAX_BAD_MESSAGES)
		return 0;
	broker_client_drop(b, c, "too many malformed messages");
	return -EPROTO;
}

/* Close the fds that came with a message that will not use them. */
static void close_message_fds(const struct broker_client *c, const int *fds, unsigned nfds)
{
	for (unsigned i = 0; i < nfds; i++)
		broker_client_fd_close(c, fds[i], "fd sent with a refused message");
}

/*
 * One message of client c, as received: its fds (nfds kept, extra closed
 * already), checked and dispatched. The transport-free half of the control
 * loop's read (server.c), which the control fuzz target drives directly.
 */
int broker_client_message(struct broker *b, struct broker_client *c, struct onering_msg *m,
			  int *fds, unsigned nfds, unsigned extra)
{
	if (extra)
		broker_count(&b->ctr[ONERING_BC_EXTRA_FDS], extra);
	if (onering_msg_check(m) < 0) {
		struct onering_msg fake;
		onering_msg_init(&fake, m->type, m->seq);
		close_message_fds(c, fds, nfds);
		return broker_client_bad_message(b, c, &fake, -EPROTO,
				   "control message with a wrong magic or version");
	}
	/* SUB_ADD carries the source's fd; a timer (kind TIMER) has none. */
	bool wants_fd = m->type == ONERING_MSG_SUB_ADD && m->u.sub_add.kind != ONERING_EV_TIMER;
	if (nfds != (wants_fd ? 1u : 0u) || extra) {
		close_message_fds(c, fds, nfds);
		broker_count(&b->ctr[ONERING_BC_EXTRA_FDS], wants_fd ? 0 : nfds);
		return broker_client_bad_message(b, c, m, -EINVAL,
				   "control message with unexpected file descriptors");
	}
	if (c->refuse) {
		int refuse = c->refuse;
		close_message_fds(c, fds, nfds);
		struct onering_msg rep;
		onering_msg_init(&rep, ONERING_MSG_HELLO | ONERING_MSG_REPLY, m->seq);
		rep.status = refuse;
		send_reply(b, c, &rep, NULL, 0); /* a failure is logged there; it goes anyway */
		broker_client_drop(b, c, NULL);
		return refuse;
	}
	if (!c->hello_done && m->type != ONERING_MSG_HELLO && m->type != ONERING_MSG_COUNTERS) {
		close_message_fds(c, fds, nfds);
		return broker_client_bad_message(b, c, m, -EPERM, "request before HELLO");
	}
	switch (m->type) {
	case ONERING_MSG_HELLO:
		return handle_hello(b, c, m);
	case ONERING_MSG_QUEUE_OPEN:
		return handle_queue_open(b, c, m);
	case ONERING_MSG_QUEUE_CLOSE:
		return handle_queue_close(b, c, m);
	case ONERING_MSG_SUB_ADD:
		return handle_sub_add(b, c, m, nfds ? fds[0] : -1);
	case ONERING_MSG_STATS:
		return handle_stats(b, c, m);
	case ONERING_MSG_GROUP:
		return handle_group(b, c, m);
	case ONERING_MSG_PORT_TX:
		return handle_port_tx(b, c, m);
	case ONERING_MSG_COUNTERS:
		return handle_counters(b, c, m);
	case ONERING_MSG_SUB_FD:
		return handle_sub_fd(b, c, m);
	default:
		return broker_client_bad_message(b, c, m, -EOPNOTSUPP, "unknown control message type");
	}
}

