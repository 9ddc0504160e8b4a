/* SPDX-License-Identifier: MIT */
/*
 * The control thread's socket server: the Unix SOCK_SEQPACKET socket and
 * its directory, accept and peer credentials, connections pending their
 * HELLO (deadlines, per-uid caps), the fd limit, pidfd watching, the
 * control epoll loop (broker_run), dropping clients, and the broker's
 * start and stop. What each message does is handlers.c.
 *
 * It never blocks on a client: client sockets are non-blocking, and one
 * message is taken per client per wake-up.
 *
 * Errors: 0 or a negative errno; each failed system call is logged once
 * where it fails, rate-limited where a peer can cause it again and again
 * (broker_log_allowed).
 *
 * Ordering contract
 * -----------------
 * This thread and the pollers meet here in two places (the pollers' side
 * is named by function and file, other files' labels qualified by theirs):
 *
 *   A2  broker_faults_drain: the wait-free fault queue's dequeue. Synchronises with
 *       the enqueue in deliver_queue_fault (deliver.c), which comes after
 *       its CAS of the queue's state to FAULTED: the queue is seen faulted
 *       here. The reap eventfd read in broker_run only says "look": A2 and
 *       A1 (handlers.c, broker_reaped_drain) carry the ordering.
 *   A3  notify_shutdown: load-acquire of a queue's state. Synchronises with
 *       the acq_rel CAS to FAULTED in deliver_queue_fault (deliver.c) and
 *       with R4 (queue.c), the store-release of broker_queue_begin_close.
 *       The pollers are joined by then (poller_stop), which orders
 *       everything already; A3 keeps the read correct on its own.
 * (Labels are numbered across the control thread: R1-R3, G1 and A1 are
 * handlers.c's.)
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
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "broker/accept.h"
#include "broker/broker.h"
#include "broker/control.h"
#include "broker/group.h"
#include "broker/lane.h"
#include "broker/notify.h"
#include "broker/queue.h"
#include "broker/telemetry.h"
#include "numa/topology.h"
#include "shm/doorbell.h"
#include "shm/log.h"

#define KEY_LISTEN 1
#define KEY_SIGNAL 2
#define KEY_REAP 3
#define KEY_ACCEPT 4 /* the completion-mode accept ring (accept.c) */
/* Client keys: pointer values (always > 4096). */

#define REFUSED_PER_UID 8 /* connections of a refused uid held to answer them */

/* ---- sessions ------------------------------------------------------------ */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for this clock */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool broker_log_allowed(struct broker_log_limit *l, uint32_t *suppressed)
{
	int saved_errno = errno; /* callers log the errno of what just failed */
	uint64_t now = mono_ns();

	errno = saved_errno;
	if (now < l->next_ns) {
		l->suppressed++;
		return false;
	}
	l->next_ns = now + 1000000000ull;
	*suppressed = l->suppressed;
	l->suppressed = 0;
	return true;
}

/* Close one of the broker's own fds (what names it in the log). Returns 0
 * or the negative errno of close(2), logged here. */
static int fd_close(int fd, const char *what)
{
	if (close(fd) == 0)
		return 0;
	int r = -errno;
	onering_log(ONERING_LOG_WARN, "close of %s (fd %d): %s", what, fd, strerror(-r));
	return r;
}

int broker_client_fd_close(const struct broker_client *c, int fd, const char *what)
{
	static struct broker_log_limit limit;
	uint32_t suppressed;

	if (close(fd) == 0)
		return 0;
	/* Some files report a deferred write error here (EIO on NFS, say), and
	 * a client may send such fds at will: rate-limited. */
	int r = -errno;
	if (broker_log_allowed(&limit, &suppressed))
		onering_log(ONERING_LOG_WARN, "client %u (pid %d): close of %s (fd %d): %s (%u such "
			    "failures not logged)", c->id, (int)c->pid, what, fd, strerror(-r),
			    suppressed);
	return r;
}

/* epoll keys of a client: its socket is the pointer, its pidfd the pointer
 * with the low bit set (clients are malloc'ed: the bit is free). */
#define CLIENT_PIDFD_TAG 1u

/* Watch the attached client's process too: its death is then seen even if
 * something keeps its socket open (an fd of it in flight in a socket the
 * broker holds as a source, for one). */
int broker_client_watch_process(struct broker *b, struct broker_client *c)
{
	/* A peer can die right after its HELLO, again and again. */
	static struct broker_log_limit limit;
	uint32_t suppressed;
	struct epoll_event ev = {.events = EPOLLIN,
				 .data.u64 = (uint64_t)(uintptr_t)c | CLIENT_PIDFD_TAG};
	socklen_t len = sizeof(c->pidfd);
	const char *step = NULL;
	int fd = -1, r = 0;

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
	/* SO_PEERPIDFD (Linux 6.5) names the very process that connected.
	 * pidfd_open of its pid is the fallback: that process just sent HELLO,
	 * so the pid is still its own unless it died in between. (ENOPROTOOPT
	 * from an older kernel is no failure: it only chooses the fallback.) */
	if (getsockopt(c->sock, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) < 0 || fd < 0)
		fd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	if (fd < 0) {
		r = -errno;
		step = "pidfd_open";
	} else if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) { /* SO_PEERPIDFD's fd lacks it */
		r = -errno;
		step = "FD_CLOEXEC on the pidfd";
	} else if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = -errno;
		step = "epoll_ctl ADD of the pidfd";
	}
	if (r == 0) {
		c->pidfd = fd;
		c->nr_fds++;
		return 0;
	}
	if (fd >= 0)
		broker_client_fd_close(c, fd, "its pidfd");
	if (broker_log_allowed(&limit, &suppressed))
		onering_log(ONERING_LOG_WARN, "client %u (pid %d): no pidfd (%s: %s): its death is "
			    "seen through its socket only (%u such failures not logged)", c->id,
			    (int)c->pid, step, strerror(-r), suppressed);
	return r;
}

/* One message from c's socket. Returns 0 when c is still there (nothing to
 * read, or the message was handled), or a negative errno once c was
 * dropped (freed). */
static int client_readable(struct broker *b, struct broker_client *c)
{
	struct onering_msg m;
	int fds[1] = {-1};
	unsigned nfds = 0, extra = 0;
	int r = onering_msg_recv(c->sock, &m, fds, 1, &nfds, &extra, MSG_DONTWAIT);

	if (r == -EAGAIN || r == -EINTR)
		return 0;
	if (r == -ECONNRESET) {
		broker_client_drop(b, c, NULL);
		return r;
	}
	if (r == -EMSGSIZE) {
		/* Cannot trust any field: reply with a zero seq. */
		struct onering_msg fake;
		if (extra)
			broker_count(&b->ctr[ONERING_BC_EXTRA_FDS], extra);
		onering_msg_init(&fake, 0, 0);
		return broker_client_bad_message(b, c, &fake, -EMSGSIZE,
						 "control message of the wrong size");
	}
	if (r < 0) {
		/* The failure is logged by the drop, with its errno as the reason. */
		broker_client_drop(b, c, strerror(-r));
		return r;
	}
	return broker_client_message(b, c, &m, fds, nfds, extra);
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

/*
 * At the fd limit: stop polling the listening socket (it would stay
 * readable and spin this thread), answer the peers already waiting with a
 * clear refusal through the one fd kept in reserve, and try again later.
 */
static void fd_limit_reached(struct broker *b, int err)
{
	/* Peers cause every step below at will (connect, connect, ...). */
	static struct broker_log_limit limit;
	uint32_t suppressed;

	if (!b->at_fd_limit) { /* once per episode, not once per retry */
		broker_count(&b->ctr[ONERING_BC_FD_LIMIT], 1);
		onering_log(ONERING_LOG_WARN, "at the fd limit (%s) with %u clients: refusing new "
			    "ones until fds are freed (raise LimitNOFILE= or ulimit -n, or lower "
			    "--max-client-fds)", strerror(err), b->nr_clients);
		b->at_fd_limit = true;
	}
	if (!b->listen_paused) {
		/* A failure leaves it polled: the loop spins until fds are freed. */
		if (epoll_ctl(b->epfd, EPOLL_CTL_DEL, b->listen_fd, NULL) < 0 &&
		    broker_log_allowed(&limit, &suppressed))
			onering_log(ONERING_LOG_ERR, "pausing the listening socket (epoll_ctl DEL): %s "
				    "(%u such failures not logged)", strerror(errno), suppressed);
		b->listen_paused = true;
	}
	b->listen_retry_ns = mono_ns() + 100 * 1000000ull;
	for (unsigned i = 0; i < 64 && b->reserve_fd >= 0; i++) {
		if (close(b->reserve_fd) < 0 && broker_log_allowed(&limit, &suppressed))
			onering_log(ONERING_LOG_ERR, "close of the reserve fd: %s (%u such failures "
				    "not logged)", strerror(errno), suppressed);
		b->reserve_fd = -1;
		int s = accept4(b->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int accept_errno = errno;
		if (s >= 0) {
			struct onering_msg m;
			onering_msg_init(&m, ONERING_MSG_HELLO | ONERING_MSG_REPLY, 0);
			m.status = -EMFILE;
			snprintf(m.u.reason, sizeof(m.u.reason),
				 "the broker is at its fd limit (%s): try again later, or ask its "
				 "operator to raise LimitNOFILE=", strerror(err));
			int r = onering_msg_send(s, &m, NULL, 0, MSG_DONTWAIT);
			if (r < 0 && r != -EPIPE && r != -ECONNRESET &&
			    broker_log_allowed(&limit, &suppressed))
				onering_log(ONERING_LOG_NOTICE, "refusal at the fd limit not sent: %s "
					    "(%u such failures not logged)", strerror(-r), suppressed);
			/* Take what it sent, so the close is a hang-up after our reply,
			 * not a reset that would hide it. Stops at the first error
			 * (EAGAIN: nothing more sent). */
			for (int k = 0; k < 4 && recv(s, &m, sizeof(m), MSG_DONTWAIT) > 0; k++)
				;
			if (close(s) < 0 && broker_log_allowed(&limit, &suppressed))
				onering_log(ONERING_LOG_ERR, "close of a refused connection: %s (%u such "
					    "failures not logged)", strerror(errno), suppressed);
		} else if (accept_errno != EAGAIN && accept_errno != EWOULDBLOCK &&
			   broker_log_allowed(&limit, &suppressed)) {
			onering_log(ONERING_LOG_WARN, "accept at the fd limit: %s (%u such failures not "
				    "logged)", strerror(accept_errno), suppressed);
		}
		b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (b->reserve_fd < 0 && broker_log_allowed(&limit, &suppressed))
			onering_log(ONERING_LOG_WARN, "no fd for the reserve (%s): peers at the fd "
				    "limit are closed unanswered (%u such failures not logged)",
				    strerror(errno), suppressed);
		if (s < 0)
			break;
	}
}

/* Back from the fd limit: the reserve fd again, and the listening socket
 * back in the control epoll. Returns 0, or the negative errno of epoll_ctl
 * (logged, rate-limited: it is retried every 100 ms); the listen stays
 * paused then. */
static int listen_resume(struct broker *b)
{
	static struct broker_log_limit limit;
	uint32_t suppressed;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KEY_LISTEN};

	if (b->reserve_fd < 0) /* a failure: fd_limit_reached logs it if it matters */
		b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->listen_fd, &ev) < 0) {
		int r = -errno;
		if (broker_log_allowed(&limit, &suppressed))
			onering_log(ONERING_LOG_ERR, "resuming the listening socket (epoll_ctl ADD): %s "
				    "(%u such failures not logged)", strerror(-r), suppressed);
		return r;
	}
	b->listen_paused = false;
	return 0;
}

/* A new connection on sock: pending until its HELLO (or its deadline).
 * refuse: -EACCES for a peer that will be told no. NULL: no memory (the
 * caller closes sock). */
struct broker_client *broker_client_add(struct broker *b, int sock, const struct broker_cred *cred,
					int refuse)
{
	static struct broker_log_limit limit; /* each connection may fail here */
	uint32_t suppressed;
	struct broker_client *c = calloc(1, sizeof(*c));

	if (!c) {
		if (broker_log_allowed(&limit, &suppressed))
			onering_log(ONERING_LOG_ERR, "connection of pid %d: out of memory (%u such "
				    "failures not logged)", (int)cred->pid, suppressed);
		return NULL;
	}
	/* Room for a STATS reply's items: a smaller buffer only makes a big
	 * reply fail (and drops the client that asked), so go on without. */
	int sndbuf = 1 << 20;
	if (setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0 &&
	    broker_log_allowed(&limit, &suppressed))
		onering_log(ONERING_LOG_WARN, "connection of pid %d: SO_SNDBUF: %s (%u such "
			    "failures not logged)", (int)cred->pid, strerror(errno), suppressed);
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
		if (broker_log_allowed(&limit, &suppressed))
			onering_log(ONERING_LOG_ERR, "connection of pid %d: epoll_ctl ADD: %s (%u such "
				    "failures not logged)", (int)cred->pid, strerror(errno), suppressed);
		free(c);
		return NULL;
	}
	cds_list_add_tail(&c->node, &b->pending);
	b->nr_pending++;
	return c;
}

/* Close a connection that never became a client. Peers cause it at will:
 * a failure is logged rate-limited. */
static void connection_close(int sock)
{
	static struct broker_log_limit limit;
	uint32_t suppressed;

	if (close(sock) < 0 && broker_log_allowed(&limit, &suppressed))
		onering_log(ONERING_LOG_WARN, "close of a connection not taken: %s (%u such failures "
			    "not logged)", strerror(errno), suppressed);
}

/* Accept what waits on the listening socket, a bounded batch of it. Returns
 * how many connections became pending clients. */
static unsigned accept_clients(struct broker *b)
{
	static struct broker_log_limit denied_log, pending_log, error_log;
	uint32_t suppressed;
	unsigned added = 0;

	/* A bounded batch per wake-up: other clients' messages wait otherwise. */
	for (unsigned n = 0; n < 16; n++) {
		int sock = accept4(b->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (sock < 0) {
			if (errno == EMFILE || errno == ENFILE)
				fd_limit_reached(b, errno);
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				 broker_log_allowed(&error_log, &suppressed))
				/* ECONNABORTED and the like: a peer gave up; retried at
				 * the next wake-up. */
				onering_log(ONERING_LOG_NOTICE, "accept: %s (%u such failures not "
					    "logged)", strerror(errno), suppressed);
			return added;
		}
		if (b->at_fd_limit) {
			b->at_fd_limit = false;
			onering_log(ONERING_LOG_NOTICE, "accepting clients again");
		}
		struct broker_cred cred;
		int r = peer_cred(sock, &cred);
		if (r < 0) {
			if (broker_log_allowed(&error_log, &suppressed))
				onering_log(ONERING_LOG_NOTICE, "a connection without credentials "
					    "(SO_PEERCRED: %s) closed (%u such failures not logged)",
					    strerror(-r), suppressed);
			connection_close(sock);
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
			if (broker_log_allowed(&pending_log, &suppressed))
				onering_log(ONERING_LOG_NOTICE, "closed a connection of pid %d uid %u: "
					    "%u of its uid wait for HELLO, %u in all (%s %u, --max-pending "
					    "%u; %u such closes not logged)", (int)cred.pid,
					    (unsigned)cred.uid, same_uid, b->nr_pending,
					    allowed ? "--max-pending-per-uid" : "refused uids:", cap,
					    b->cfg.max_pending, suppressed);
			connection_close(sock);
			continue;
		}
		int refuse = 0;
		if (!allowed) {
			broker_count(&b->ctr[ONERING_BC_DENIED], 1);
			if (broker_log_allowed(&denied_log, &suppressed))
				onering_log(ONERING_LOG_NOTICE, "refused pid %d uid %u gid %u (allow it "
					    "with --allow-uid %u; %u refusals not logged)", (int)cred.pid,
					    (unsigned)cred.uid, (unsigned)cred.gid, (unsigned)cred.uid,
					    suppressed);
			refuse = -EACCES;
		}
		if (!broker_client_add(b, sock, &cred, refuse)) { /* logged there */
			connection_close(sock);
			return added;
		}
		added++;
	}
	return added;
}

/* Take client c's fd out of the control epoll and close it (what names it
 * in the log). Clients come and go at will: failures are rate-limited. */
static void client_fd_release(struct broker *b, const struct broker_client *c, int fd,
			      const char *what)
{
	static struct broker_log_limit limit;
	uint32_t suppressed;

	/* Without a control epoll (b->epfd < 0) it was never added. */
	if (b->epfd >= 0 && epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 &&
	    broker_log_allowed(&limit, &suppressed))
		onering_log(ONERING_LOG_WARN, "client %u (pid %d): epoll_ctl DEL of %s (fd %d): %s "
			    "(%u such failures not logged)", c->id, (int)c->pid, what, fd,
			    strerror(errno), suppressed);
	broker_client_fd_close(c, fd, what);
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
				broker_queues_close(b, qs, n);
				n = 0;
			}
			qs[n++] = q;
		}
	}
	broker_queues_close(b, qs, n);
	for (unsigned i = 0; i < n_clients; i++) {
		struct broker_client *c = cs[i];
		client_fd_release(b, c, c->sock, "its socket");
		if (c->pidfd >= 0)
			client_fd_release(b, c, c->pidfd, "its pidfd");
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

void broker_client_drop(struct broker *b, struct broker_client *c, const char *why)
{
	clients_drop(b, &c, 1, why);
}

void broker_clients_gone(struct broker *b, struct broker_client **cs, unsigned n)
{
	clients_drop(b, cs, n, NULL);
}

/* Connections that did not say HELLO in time (oldest first). Returns the
 * epoll_wait timeout until the next deadline: its ms, or -1 (wait without
 * one) when none is pending. A timeout, not a status: it cannot fail. */
static int expire_pending(struct broker *b)
{
	uint64_t now = mono_ns();

	while (!cds_list_empty(&b->pending)) {
		struct broker_client *c = cds_list_first_entry(&b->pending, struct broker_client,
								node);
		if (c->deadline_ns > now)
			return (int)((c->deadline_ns - now + 999999) / 1000000);
		broker_count(&b->ctr[ONERING_BC_HELLO_TIMEOUTS], 1);
		broker_client_drop(b, c, NULL);
	}
	return -1;
}

unsigned broker_faults_drain(struct broker *b)
{
	struct cds_wfcq_node *node;
	unsigned dropped = 0;

	/* A2: synchronises with the enqueue in deliver_queue_fault (deliver.c). */
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
		if (found) {
			broker_client_drop(b, found, "broke the shared-memory ring protocol");
			dropped++;
		}
	}
	return dropped;
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
		int fstat_errno = errno;
		fd_close(fd, "the socket directory");
		errno = fstat_errno;
		goto sys_fail;
	}
	if (st.st_uid != geteuid()) {
		fd_close(fd, "the socket directory");
		snprintf(err, err_size, "socket directory %s belongs to uid %u, not to this broker's "
			 "uid %u: another user could replace the socket; remove it or choose "
			 "another --socket-dir", dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & 022) {
		fd_close(fd, "the socket directory");
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
	fd_close(fd, "the socket directory");
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

	if (s < 0) {
		r = -errno;
		onering_log(ONERING_LOG_ERR, "probing %s: socket: %s", path, strerror(-r));
		return r;
	}
	if (set_sun_path(&sa, path) < 0) {
		fd_close(s, "the probe socket");
		return -ENAMETOOLONG;
	}
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		/* Without it the message says pid 0: only a detail is lost. */
		*pid = getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.pid : 0;
		r = -EADDRINUSE;
	} else if (errno == ECONNREFUSED) {
		/* Left behind by a broker that died. If it stays, bind says so. */
		if (unlink(path) < 0 && errno != ENOENT)
			onering_log(ONERING_LOG_WARN, "removing the stale socket %s: %s", path,
				    strerror(errno));
	}
	fd_close(s, "the probe socket");
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
	if (b->listen_fd < 0) {
		r = -errno;
		onering_log(ONERING_LOG_ERR, "listening socket: %s", strerror(-r));
		return r;
	}
	r = set_sun_path(&sa, b->cfg.socket_path);
	if (r < 0) {
		onering_log(ONERING_LOG_ERR, "socket path %s: %s", b->cfg.socket_path, strerror(-r));
		return r;
	}
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
	if (listen(b->listen_fd, 64) < 0) {
		r = -errno;
		onering_log(ONERING_LOG_ERR, "listen %s: %s", b->cfg.socket_path, strerror(-r));
		return r;
	}
	return 0;
}

/* Tell every client the broker is stopping: a CONTROL record in each of its
 * queues (the pollers are stopped, so this thread is the only producer
 * now), a doorbell, and a SHUTDOWN message on its socket. */
static void notify_shutdown(struct broker *b)
{
	struct broker_log_limit limit = {0}; /* one stop: one line a second at most */
	uint32_t suppressed;
	struct broker_client *c;
	struct broker_queue *q;

	cds_list_for_each_entry(c, &b->clients, node) {
		cds_list_for_each_entry(q, &c->queues, client_node) {
			struct onering_event e = {0};
			e.kind = ONERING_EV_CONTROL;
			e.payload.control.code = ONERING_CTL_SHUTDOWN;
			/* A3: synchronises with deliver_queue_fault's CAS (deliver.c)
			 * and R4 (queue.c, broker_queue_begin_close). */
			if (onering_atomic_load(&q->state, onering_mo_acquire) == BROKER_QUEUE_LIVE &&
			    onering_ring_enqueue_burst(&q->evp, &e, 1) == 1)
				broker_queue_wake(q);
		}
		struct onering_msg m;
		onering_msg_init(&m, ONERING_MSG_SHUTDOWN, 0);
		/* A client that does not read its socket still has the record. */
		int r = onering_msg_send(c->sock, &m, NULL, 0, MSG_DONTWAIT);
		if (r < 0 && r != -EPIPE && r != -ECONNRESET &&
		    broker_log_allowed(&limit, &suppressed))
			onering_log(ONERING_LOG_NOTICE, "client %u (pid %d): SHUTDOWN not sent: %s "
				    "(%u such failures not logged)", c->id, (int)c->pid, strerror(-r),
				    suppressed);
	}
}

/* fd into the control epoll under key (what names it in the log). Returns 0
 * or the negative errno of epoll_ctl, logged here. */
static int add_fd(struct broker *b, int fd, uint64_t key, const char *what)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = key};

	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	int r = -errno;
	onering_log(ONERING_LOG_ERR, "control epoll: adding %s: %s", what, strerror(-r));
	return r;
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
	b->counters.seg.fd = -1;
	for (unsigned i = 0; i < BROKER_MAX_POLLERS; i++) {
		b->pollers[i].epfd = b->pollers[i].kick_fd = -1;
		cds_wfcq_init(&b->pollers[i].redeliver_head, &b->pollers[i].redeliver_tail);
	}
	b->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (b->reserve_fd < 0) /* at the fd limit, peers are then closed unanswered */
		onering_log(ONERING_LOG_WARN, "no reserve fd (/dev/null: %s)", strerror(errno));
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
	if (b->epfd < 0) {
		r = -errno;
		onering_log(ONERING_LOG_ERR, "control epoll: %s", strerror(-r));
		return r;
	}
	b->reap_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->reap_fd < 0) {
		r = -errno;
		onering_log(ONERING_LOG_ERR, "reap eventfd: %s", strerror(-r));
		return r;
	}
	if ((r = add_fd(b, b->reap_fd, KEY_REAP, "the reap eventfd")) < 0)
		return r;
	(void)broker_accept_init(b, KEY_ACCEPT); /* without it: no completion-mode listeners */
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
		broker_client_drop(b, cds_list_first_entry(&b->clients, struct broker_client, node),
				   NULL);
	while (!cds_list_empty(&b->pending))
		broker_client_drop(b, cds_list_first_entry(&b->pending, struct broker_client, node),
				   NULL);
	broker_reaped_drain(b);
	urcu_qsbr_barrier(); /* run every call_rcu callback: segments unmapped and closed */
	broker_accept_fini(b);
	if (b->reserve_fd >= 0)
		fd_close(b->reserve_fd, "the reserve fd");
	if (b->epfd >= 0)
		fd_close(b->epfd, "the control epoll");
	if (b->reap_fd >= 0)
		fd_close(b->reap_fd, "the reap eventfd");
	b->reserve_fd = b->epfd = b->reap_fd = -1;
	broker_groups_fini(b);
	broker_lanes_fini(b);
	free(b->queues);
	free(b->free_slots);
	b->queues = NULL;
	b->free_slots = NULL;
	broker_registry_fini(&b->reg);
}

/* What the service manager shows (systemctl status): clients and records
 * published so far. */
static void notify_status(struct broker *b, const char *also)
{
	static struct broker_log_limit limit;
	uint64_t published = 0;
	uint32_t suppressed;

	for (unsigned i = 0; i < b->cfg.plan.nr_pollers; i++)
		published += onering_atomic_load(&b->pollers[i].ctr[ONERING_PC_PUBLISHED],
						 onering_mo_relaxed);
	int r = broker_notify("%sSTATUS=%s: %u client%s, %llu records published", also,
			      b->cfg.name, b->nr_clients, b->nr_clients == 1 ? "" : "s",
			      (unsigned long long)published);
	if (r < 0 && broker_log_allowed(&limit, &suppressed))
		onering_log(ONERING_LOG_WARN, "notifying the service manager ($NOTIFY_SOCKET): %s "
			    "(%u such failures not logged)", strerror(-r), suppressed);
}

/* Every second a status line, and WATCHDOG=1 at half the manager's interval;
 * returns the ms until the next one is due (-1: none). */
static int notify_tick(struct broker *b)
{
	uint64_t now = mono_ns(), watchdog = broker_notify_watchdog_ns();
	uint64_t every = watchdog && watchdog / 2 < 1000000000ull ? watchdog / 2 : 1000000000ull;

	if (!broker_notify_enabled())
		return -1;
	if (now >= b->notify_next_ns) {
		notify_status(b, watchdog ? "WATCHDOG=1\n" : "");
		b->notify_next_ns = now + every;
	}
	return (int)((b->notify_next_ns - now + 999999) / 1000000);
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
		onering_log(ONERING_LOG_ERR, "signalfd: %s", strerror(-r));
		goto out;
	}
	if ((r = add_fd(b, b->listen_fd, KEY_LISTEN, "the listening socket")) < 0 ||
	    (r = add_fd(b, b->signal_fd, KEY_SIGNAL, "the signalfd")) < 0)
		goto out;
	/* Counters readers and the /metrics endpoint, before anyone can ask. */
	if ((r = broker_counters_init(b)) < 0 || (r = broker_metrics_init(b)) < 0)
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
	/* Type=notify: ready, with the socket path and our pid. */
	char ready[320];
	snprintf(ready, sizeof(ready), "READY=1\nMAINPID=%d\n", (int)getpid());
	notify_status(b, ready);
	b->notify_next_ns = mono_ns();
	if (b->ready_fd >= 0) { /* tell the waiting parent (daemon mode) */
		if (write(b->ready_fd, "R", 1) < 0)
			onering_log(ONERING_LOG_WARN, "readiness pipe: %s", strerror(errno));
		fd_close(b->ready_fd, "the readiness pipe");
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
				listen_resume(b); /* a failure is logged there; retried */
			int retry = b->listen_paused ? 100 : -1;
			timeout = timeout < 0 || (retry >= 0 && retry < timeout) ? retry : timeout;
		}
		if (broker_groups_reap(b))
			timeout = timeout < 0 || timeout > 10 ? 10 : timeout;
		int tick = notify_tick(b);
		if (tick >= 0 && (timeout < 0 || tick < timeout))
			timeout = tick;
		/* The counters segment's periodic copy; /metrics deadlines. */
		tick = broker_counters_tick(b);
		if (tick >= 0 && (timeout < 0 || tick < timeout))
			timeout = tick;
		tick = broker_metrics_tick(b);
		if (tick >= 0 && (timeout < 0 || tick < timeout))
			timeout = tick;
		tick = broker_accept_tick(b); /* listeners whose accept ended */
		if (tick >= 0 && (timeout < 0 || tick < timeout))
			timeout = tick;
		int n = epoll_wait(b->epfd, evs, 32, timeout);
		if (n < 0 && errno != EINTR) {
			r = -errno;
			onering_log(ONERING_LOG_ERR, "control epoll_wait: %s", strerror(-r));
			goto out;
		}
		/* Clients seen dead in this batch, dropped together after it. */
		struct broker_client *dead[32];
		unsigned nr_dead = 0;
		for (int i = 0; i < n; i++) {
			uint64_t key = evs[i].data.u64;
			if (key == KEY_LISTEN) {
				accept_clients(b);
			} else if (broker_metrics_owns(key)) {
				broker_metrics_event(b, key, evs[i].events);
			} else if (key == KEY_SIGNAL) {
				struct signalfd_siginfo si;
				ssize_t got;
				while ((got = read(b->signal_fd, &si, sizeof(si))) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP) { /* reload, never stop */
						/* systemctl reload waits for READY=1 after
						 * RELOADING=1 (sd_notify(3)). */
						broker_notify("RELOADING=1\nMONOTONIC_USEC=%llu",
							      (unsigned long long)(mono_ns() / 1000));
						if (b->reload)
							b->reload(b);
						else
							onering_log(ONERING_LOG_NOTICE, "SIGHUP: "
								    "nothing to reload");
						broker_notify("READY=1");
						continue;
					}
					onering_log(ONERING_LOG_NOTICE, "signal %u: shutting down",
						    si.ssi_signo);
					b->stopping = true;
				}
				/* EAGAIN: all taken. Anything else would spin: stop. */
				if (got < 0 && errno != EAGAIN && errno != EINTR) {
					onering_log(ONERING_LOG_ERR, "signalfd read: %s: shutting "
						    "down", strerror(errno));
					b->stopping = true;
				}
			} else if (key == KEY_ACCEPT) {
				broker_accept_event(b);
			} else if (key == KEY_REAP) {
				eventfd_t v;
				/* Only a "look": A1 (broker_reaped_drain) and A2
				 * (broker_faults_drain) carry the ordering. EAGAIN: read
				 * already. */
				if (eventfd_read(b->reap_fd, &v) < 0 && errno != EAGAIN)
					onering_log(ONERING_LOG_WARN, "reap eventfd read: %s",
						    strerror(errno));
				broker_reaped_drain(b);
				broker_faults_drain(b);
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
				 * this drops may appear later in evs: stop the batch
				 * (whether it was dropped or not). */
				client_readable(b, c);
				break;
			}
		}
		clients_drop(b, dead, nr_dead, NULL);
	}
	r = 0;
out:
	notify_status(b, "STOPPING=1\n");
	for (unsigned i = 0; i < b->cfg.plan.nr_pollers; i++)
		poller_stop(&b->pollers[i]);
	notify_shutdown(b);
	broker_telemetry_fini(b); /* no telemetry command reads what goes now */
	broker_metrics_fini(b);
	/* The final values, groups and queues included, marked stopped: a reader
	 * still mapping the segment sees the end. */
	broker_counters_update(b, ONERING_COUNTERS_STOPPED);
	broker_state_fini(b);
	broker_counters_fini(b);
	if (b->listen_fd >= 0) {
		fd_close(b->listen_fd, "the listening socket");
		if (unlink(b->cfg.socket_path) < 0 && errno != ENOENT)
			onering_log(ONERING_LOG_WARN, "removing %s: %s", b->cfg.socket_path,
				    strerror(errno));
	}
	if (b->signal_fd >= 0)
		fd_close(b->signal_fd, "the signalfd");
	broker_nic_fini(b);
	return r;
}
