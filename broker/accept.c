/* SPDX-License-Identifier: MIT */
/*
 * Completion-mode sockets on the control thread (stream.h): making their
 * subscriptions, and accepting connections on listening sockets.
 *
 * accept(2) on a listening socket the client left blocking would block
 * the control thread whenever another process takes the connection
 * between readiness and the call; there is no MSG_DONTWAIT for it. So the
 * broker accepts through io_uring: one ring on the control thread (its fd
 * in the control epoll), one multishot accept per listener, whose
 * completions each carry a new connection (SOCK_NONBLOCK | SOCK_CLOEXEC),
 * made a subscription of the listener's queue here (or, when that queue is
 * a group member, of the member the group's policy picks) - counted against
 * that queue's client's subscription and fd quotas, closed at once if none
 * can take it.
 * The queue's poller announces it (ACCEPTED) on its first readiness report
 * (a connected socket is writable at once). Without io_uring (a kernel or
 * policy that refuses it) listeners are refused with a reason; connected
 * sockets work either way.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker/accept.h"
#include "broker/broker.h"
#include "broker/client.h"
#include "broker/control.h"
#include "broker/group.h"
#include "broker/queue.h"
#include "broker/stream.h"
#include "shm/log.h"

#define ACCEPT_RING_ENTRIES 256u

struct broker_accept {
	struct io_uring ring;
	struct cds_list_head listeners; /* struct broker_conn.listen_node */
	/* CLOCK_MONOTONIC ns when listeners whose accept ended (EMFILE, ...)
	 * are armed again, 0: none waits. */
	uint64_t rearm_ns;
};

#define REARM_PAUSE_NS (100ull * 1000 * 1000)

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int broker_accept_init(struct broker *b, uint64_t key)
{
	struct broker_accept *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	/* Single issuer (this thread); fall back to plain flags on an older
	 * kernel. */
	int r = io_uring_queue_init(ACCEPT_RING_ENTRIES, &a->ring, IORING_SETUP_SINGLE_ISSUER);
	if (r == -EINVAL)
		r = io_uring_queue_init(ACCEPT_RING_ENTRIES, &a->ring, 0);
	if (r < 0) {
		onering_log(ONERING_LOG_NOTICE, "io_uring unavailable (%s): completion-mode "
			    "listening sockets are refused; connected sockets work", strerror(-r));
		free(a);
		return r;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = key};
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, a->ring.ring_fd, &ev) < 0) {
		r = -errno;
		onering_log(ONERING_LOG_ERR, "control epoll: adding the accept ring: %s",
			    strerror(-r));
		io_uring_queue_exit(&a->ring);
		free(a);
		return r;
	}
	CDS_INIT_LIST_HEAD(&a->listeners);
	b->accept = a;
	return 0;
}

void broker_accept_fini(struct broker *b)
{
	if (!b->accept)
		return;
	io_uring_queue_exit(&b->accept->ring); /* cancels what is in flight */
	free(b->accept);
	b->accept = NULL;
}

/* Arm s's multishot accept. 0 or -errno (-EBUSY: no submission slot). */
static int accept_arm(struct broker_accept *a, struct broker_sub *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_multishot_accept(sqe, s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, broker_sub_key(s->id, s->gen));
	int r = io_uring_submit(&a->ring);
	if (r < 0) {
		/* Not issued: it must not be by the next submit either (the fd
		 * number may be another file's by then). */
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, 0);
		return r;
	}
	s->conn->accept_armed = true;
	return 0;
}

int broker_stream_sub_add(struct broker *b, struct broker_client *c, struct broker_queue *q,
			  int fd, uint64_t cookie, uint32_t prio, uint32_t listener_id,
			  struct broker_sub **out, char *why, size_t why_size)
{
	int type = 0, listening = 0, family = 0, proto = 0, r;
	socklen_t len = sizeof(type);
	uint32_t id, gen;

	why[0] = '\0';
	if (!q->streams) {
		snprintf(why, why_size, "queue %u has no stream area (open it with "
			 "onering_queue_options.stream_rx)", q->id);
		return -EINVAL;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
		snprintf(why, why_size, "a completion-mode source must be a socket");
		return -ENOTSOCK;
	}
	if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
		snprintf(why, why_size, "socket type %d: completion mode takes stream, "
			 "seqpacket and datagram sockets", type);
		return -EINVAL;
	}
	len = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
		listening = 0;
	len = sizeof(family);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0)
		family = 0;
	len = sizeof(proto);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0)
		proto = 0;
	if (listening && !b->accept) {
		snprintf(why, why_size, "this broker cannot accept without io_uring (see its log); "
			 "pass connected sockets");
		return -EOPNOTSUPP;
	}
	r = broker_registry_alloc(&b->reg, &id, &gen);
	if (r < 0) {
		snprintf(why, why_size, "the subscription table is full (oneringd --max-subs %u)",
			 b->cfg.max_subs);
		return r;
	}
	struct broker_sub *s = calloc(1, sizeof(*s));
	struct broker_conn *conn = s ? broker_conn_new(s, type == SOCK_DGRAM, listening,
						       listener_id != 0, listener_id)
				     : NULL;
	if (conn) {
		conn->messages = type != SOCK_STREAM;
		conn->family = family;
		conn->tcp = type == SOCK_STREAM && proto == IPPROTO_TCP &&
			    (family == AF_INET || family == AF_INET6);
	}
	if (!conn) {
		free(s);
		broker_registry_unalloc(&b->reg, id);
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	s->id = id;
	s->gen = gen;
	s->fd = fd;
	s->events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI;
	s->mode = ONERING_MODE_EDGE;
	s->cookie = cookie;
	s->queue = q;
	s->home = q->poller; /* the queue's buffers have one writer: its poller */
	s->kind = ONERING_EV_STREAM;
	s->prio = (uint8_t)prio;
	s->conn = conn;
	cds_list_add(&s->queue_node, &q->subs);
	broker_count(&q->ctr[ONERING_QC_SUBS], 1);
	broker_count(&q->streams->ctr[ONERING_SC_CONNECTIONS], 1);
	c->nr_subs++;
	c->nr_fds++;
	onering_atomic_fetch_add(&s->home->fd_subs, 1u, onering_mo_relaxed);
	broker_registry_publish(&b->reg, s);
	if (listening) {
		r = accept_arm(b->accept, s);
		if (r == 0)
			cds_list_add(&conn->listen_node, &b->accept->listeners);
		else
			snprintf(why, why_size, "io_uring accept: %s", strerror(-r));
	} else {
		/* Edge-triggered, both ways: the poller drains to EAGAIN. */
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
					 .data.u64 = broker_sub_key(id, gen)};
		r = epoll_ctl(s->home->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
		if (r < 0)
			snprintf(why, why_size, "epoll_ctl ADD on poller %u: %s", s->home->idx,
				 strerror(-r));
	}
	if (r == 0)
		onering_atomic_store(&conn->armed, 1u, onering_mo_release); /* A: stream.c */
	if (r < 0) {
		/* Never armed, but published: a request may have named it (ids
		 * are predictable) and its poller deleted it meanwhile - then the
		 * reap path finishes it (fd and all: the caller must not close
		 * it; *out says so). Else it ends here; the fd is the caller's. */
		if (onering_atomic_exchange(&s->dead, 1u, onering_mo_relaxed) != 0) {
			*out = s;
			return r;
		}
		s->fd = -1;
		onering_atomic_fetch_add(&s->home->fd_subs, UINT32_MAX, onering_mo_relaxed);
		c->nr_fds--;
		broker_sub_finalize(b, s);
		*out = NULL;
		return r;
	}
	*out = s;
	return 0;
}

void broker_stream_sub_end(struct broker *b, struct broker_sub *s)
{
	struct broker_conn *conn = s->conn;

	if (!conn)
		return;
	broker_count(&s->queue->streams->ctr[ONERING_SC_CONNECTIONS], (uint64_t)-1);
	if (!conn->listener)
		return;
	cds_list_del_init(&conn->listen_node);
	if (!b->accept || !conn->accept_armed)
		return;
	/* Stop its accept before the fd closes (the ring holds the file). A
	 * connection it still hands over finds no listener and is closed. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->accept->ring);
	if (!sqe) {
		io_uring_submit(&b->accept->ring);
		sqe = io_uring_get_sqe(&b->accept->ring);
	}
	if (sqe) {
		io_uring_prep_cancel64(sqe, broker_sub_key(s->id, s->gen), 0);
		io_uring_sqe_set_data64(sqe, 0);
		io_uring_submit(&b->accept->ring);
	}
	conn->accept_armed = false;
}

/* The connections queue q holds (its own and accepted ones). */
static uint64_t queue_conns(const struct broker_queue *q)
{
	return onering_atomic_load(&q->streams->ctr[ONERING_SC_CONNECTIONS], onering_mo_relaxed);
}

/* May q (LIVE, with a stream area, its client under its quotas) take a
 * connection accepted on l? */
static bool can_take(const struct broker *b, const struct broker_sub *l,
		     const struct broker_queue *q)
{
	const struct broker_client *c = q->client;

	if (!q->streams || onering_atomic_load(&q->state, onering_mo_acquire) != BROKER_QUEUE_LIVE ||
	    c->nr_subs >= b->cfg.max_client_subs || c->nr_fds >= b->cfg.max_client_fds)
		return false;
	/* Another client's queue: l's owner puts records there, as a post
	 * would; the group must let it post. */
	return c == l->queue->client ||
	       broker_group_permits(b, q->group, BROKER_PERM_POST, &l->queue->client->cred);
}

/* Where a connection accepted on l goes: l's queue, or, when that queue is
 * a group member, a member chosen by the group's policy - least: the one
 * with the fewest connections; every other policy: in turn (a connection
 * lives long: the spread is what counts) - among those that can take it.
 * NULL: none can. */
static struct broker_queue *accept_target(struct broker *b, struct broker_sub *l)
{
	struct broker_queue *q = l->queue, *best = NULL;
	struct broker_group *g = q->group;
	const struct broker_members *m = g ? g->members : NULL; /* the control thread's */

	if (!m || m->n == 0)
		return can_take(b, l, q) ? q : NULL;
	bool least = onering_atomic_load(&g->policy, onering_mo_relaxed) == ONERING_POLICY_LEAST;
	for (uint32_t i = 0; i < m->n; i++) {
		uint32_t at = (l->conn->next_member + i) % m->n;
		struct broker_queue *c = m->q[at];
		if (!can_take(b, l, c))
			continue;
		if (!least) {
			l->conn->next_member = at + 1;
			return c;
		}
		if (!best || queue_conns(c) < queue_conns(best))
			best = c;
	}
	return best;
}

/* A connection accepted on listener key: a subscription of its queue (or
 * of a member of that queue's group), or closed. */
static void accepted(struct broker *b, uint64_t key, int fd)
{
	static struct broker_log_limit limit;
	uint32_t suppressed;
	struct broker_sub *l = broker_registry_lookup(&b->reg, key);
	char why[160];

	if (!l || broker_sub_dead(l) || !l->conn || !l->conn->listener ||
	    onering_atomic_load(&l->queue->state, onering_mo_acquire) != BROKER_QUEUE_LIVE) {
		broker_close_nolinger(fd); /* its listener is gone */
		return;
	}
	struct broker_queue *q = accept_target(b, l);
	if (!q) {
		struct broker_client *c = l->queue->client;
		broker_count(&l->queue->streams->ctr[ONERING_SC_REFUSED], 1);
		if (broker_log_allowed(&limit, &suppressed))
			onering_log(ONERING_LOG_NOTICE, "client %u (pid %d): connection on listener %u "
				    "closed: no queue can take it (%u subscriptions, %u fds held: "
				    "oneringd --max-client-subs, --max-client-fds; %u such not logged)",
				    c->id, (int)c->pid, l->id, c->nr_subs, c->nr_fds, suppressed);
		broker_close_nolinger(fd);
		return;
	}
	struct broker_client *c = q->client;
	struct broker_sub *s = NULL;
	int r = broker_stream_sub_add(b, c, q, fd, l->cookie, l->prio, l->id, &s, why, sizeof(why));
	if (r < 0) {
		broker_count(&q->streams->ctr[ONERING_SC_REFUSED], 1);
		if (broker_log_allowed(&limit, &suppressed))
			onering_log(ONERING_LOG_WARN, "client %u (pid %d): accepted connection closed: "
				    "%s (%u such not logged)", c->id, (int)c->pid, why, suppressed);
		if (!s) /* else the reap path closes it */
			broker_close_nolinger(fd);
		return;
	}
	broker_count(&q->streams->ctr[ONERING_SC_ACCEPTED], 1);
}

/* Leave listener conn unarmed until the control loop's tick (at most
 * REARM_PAUSE_NS from now): counted per queue as accept_pauses. */
static void pause_listener(struct broker_accept *a, struct broker_conn *conn, uint64_t now)
{
	struct broker_queue *q = conn->s->queue;

	if (q->streams) /* always, for a listener; checked all the same */
		broker_count(&q->streams->ctr[ONERING_SC_ACCEPT_PAUSES], 1);
	if (!a->rearm_ns)
		a->rearm_ns = now + REARM_PAUSE_NS;
}

/* Arm listener conn again unless it is armed or going; one that cannot be
 * armed now (no submission entry, a failed submit) waits for the tick. */
static void rearm_or_pause(struct broker_accept *a, struct broker_conn *conn, uint64_t now)
{
	if (!conn->accept_armed && !broker_sub_dead(conn->s) && accept_arm(a, conn->s) < 0)
		pause_listener(a, conn, now);
}

/* Arm again the listeners whose multishot ended with a connection (a full
 * completion ring); those waiting out an error's pause stay for the tick. */
static void rearm_ended(struct broker_accept *a)
{
	struct broker_conn *conn;

	cds_list_for_each_entry(conn, &a->listeners, listen_node) {
		if (!conn->accept_again)
			continue;
		conn->accept_again = false;
		rearm_or_pause(a, conn, mono_ns());
	}
}

void broker_accept_event(struct broker *b)
{
	static struct broker_log_limit limit;
	uint32_t suppressed;
	struct broker_accept *a = b->accept;
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	bool rearm_now = false;

	if (!a)
		return;
again:
	n = 0;
	io_uring_for_each_cqe(&a->ring, head, cqe) {
		uint64_t key = io_uring_cqe_get_data64(cqe);
		n++;
		if (key == 0) /* a cancel's own completion */
			continue;
		if (cqe->res >= 0) {
			accepted(b, key, cqe->res);
		} else if (cqe->res != -ECANCELED && broker_log_allowed(&limit, &suppressed)) {
			onering_log(ONERING_LOG_WARN, "accept on listener %u: %s; armed again within "
				    "%llu ms (%u such not logged)", (uint32_t)key, strerror(-cqe->res),
				    REARM_PAUSE_NS / 1000000ull, suppressed);
		}
		if (!(cqe->flags & IORING_CQE_F_MORE)) {
			/* Its multishot ended. With a connection (the completion
			 * ring was full: the kernel ends a multishot whose next CQE
			 * has no room) it is armed again once this call has taken
			 * what the ring and its overflow hold: the rest of the burst
			 * waits in the listen backlog for that, not for a timer, and
			 * comes back through the control epoll, one ring's worth per
			 * call (the control loop's other work goes on between).
			 * After an error (EMFILE, ENFILE, ENOMEM, ...) a pause
			 * first, the control loop's tick (broker_accept_tick), so a
			 * listener that keeps failing costs nothing. */
			struct broker_sub *l = broker_registry_lookup(&b->reg, key);
			if (l && l->conn && l->conn->listener) {
				l->conn->accept_armed = false;
				if (cqe->res >= 0)
					l->conn->accept_again = rearm_now = true;
				else
					pause_listener(a, l->conn, mono_ns());
			}
		}
	}
	io_uring_cq_advance(&a->ring, n);
	/* A burst of connections larger than the completion ring waits in the
	 * kernel's overflow list, which only a system call moves into the ring
	 * (and the ring's fd says nothing more until then): take it now. */
	if (io_uring_cq_has_overflow(&a->ring) && io_uring_get_events(&a->ring) == 0)
		goto again;
	if (rearm_now)
		rearm_ended(a);
}

int broker_accept_tick(struct broker *b)
{
	struct broker_accept *a = b->accept;
	struct broker_conn *conn;

	if (!a || !a->rearm_ns)
		return -1;
	uint64_t now = mono_ns();
	if (now < a->rearm_ns)
		return (int)((a->rearm_ns - now) / 1000000u) + 1;
	a->rearm_ns = 0;
	cds_list_for_each_entry(conn, &a->listeners, listen_node)
		rearm_or_pause(a, conn, now);
	return a->rearm_ns ? (int)(REARM_PAUSE_NS / 1000000u) : -1;
}
