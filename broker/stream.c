/* SPDX-License-Identifier: MIT */
/*
 * Completion-mode sockets on the poller (stream.h): receiving into a
 * queue's receive buffers, sending from its stream area, the records that
 * say so, and the streams source that resumes what had to wait.
 *
 * Every stream subscription is homed on its queue's poller, so the queue's
 * buffers, send slots and connections have one writer. Receives and sends
 * are recv/recvmsg/send/sendto with MSG_DONTWAIT (never blocking, whatever
 * O_NONBLOCK the client left on its socket), driven by edge-triggered epoll
 * readiness (the fds source hands it here).
 *
 * What waits:
 *   - a receive, when the queue has no free receive buffer or records wait
 *     for ring space: the connection goes on its queue's retry list (the
 *     bytes stay in the kernel; nothing is lost);
 *   - a record, when the ring is full: on the queue's overflow list, in
 *     order, placed before any later record of the queue's streams (each
 *     stands for a buffer, a send slot or a connection: bounded by them);
 *   - a SEND, while the socket's buffer is full: on its connection's list
 *     until EPOLLOUT.
 * The streams source walks the poller's queues only while one of them has
 * something waiting (as deliver_flush does for pending records).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/queue.h"
#include "broker/request.h"
#include "broker/source.h"
#include "broker/stream.h"
#include "shm/log.h"

/* Receive buffers one readiness report may fill before the connection
 * yields to the others (it goes on the retry list for the rest). */
#define RECV_BUDGET 16u
/* While something waits for the consumer (ring space), poll again after
 * this long even if nothing wakes the poller (its progress does not). */
#define STREAM_RETRY_NS (1000ull * 1000)

#define NO_BUF UINT32_MAX

struct source_streams {
	struct broker_source src;
	/* Queues of this poller with something waiting, at least: set where a
	 * queue becomes busy, recounted by the walk. 0 skips the walk. */
	uint32_t nr_busy;
};

static struct source_streams *streams_src(struct poller *p)
{
	return (struct source_streams *)p->source[BROKER_SOURCE_STREAMS];
}

/* ---- records --------------------------------------------------------- */

static void mark_busy(struct poller *p, struct broker_streams *st)
{
	if (!st->busy) {
		st->busy = true;
		streams_src(p)->nr_busy++;
	}
}

/* Publish a record of connection c: into the ring, or after the records
 * that already wait (order per queue is kept). */
static void emit(struct poller *p, struct broker_conn *c, uint32_t op, int32_t status,
		 uint64_t off, uint32_t buf, uint32_t len, uint64_t tag, uint16_t flags)
{
	struct broker_sub *s = c->s;
	struct broker_queue *q = s->queue;
	struct broker_streams *st = q->streams;
	struct onering_event e;

	memset(&e, 0, sizeof(e));
	e.cookie = s->cookie;
	e.sub_id = s->id;
	e.sub_gen = s->gen;
	e.kind = ONERING_EV_STREAM;
	e.flags = (uint16_t)(flags | ((uint32_t)s->prio << ONERING_EVF_PRIO_SHIFT));
	e.timestamp_ns = broker_clock_now(&p->clock);
	e.payload.stream.op = op;
	e.payload.stream.status = status;
	e.payload.stream.offset = off;
	e.payload.stream.buf = buf;
	e.payload.stream.length = len;
	e.payload.stream.tag = tag;
	if (!st->ov_head) {
		int r = deliver_to_queue(p, q, &e);
		if (r == 0 || r == -EPROTO) /* placed, or the queue faulted (served no more) */
			return;
	}
	struct broker_stream_rec *rec = malloc(sizeof(*rec));
	if (!rec) {
		/* Lost: said, and the queue's buffers or send slots it stood for
		 * stay with the broker (counted as errors). */
		broker_count(&st->ctr[ONERING_SC_ERRORS], 1);
		onering_log(ONERING_LOG_ERR, "poller %u: queue %u: a stream record (op %u) lost: "
			    "out of memory", p->idx, q->id, op);
		return;
	}
	rec->e = e;
	rec->next = NULL;
	*st->ov_tail = rec;
	st->ov_tail = &rec->next;
	mark_busy(p, st);
}

/* Place what waits in q's overflow list. true when none is left. */
static bool overflow_drain(struct poller *p, struct broker_queue *q)
{
	struct broker_streams *st = q->streams;

	while (st->ov_head) {
		struct broker_stream_rec *rec = st->ov_head;
		int r = deliver_to_queue(p, q, &rec->e);
		if (r == -EAGAIN)
			return false;
		st->ov_head = rec->next;
		free(rec);
	}
	st->ov_tail = &st->ov_head;
	return true;
}

static void retry_add(struct poller *p, struct broker_conn *c)
{
	struct broker_streams *st = c->s->queue->streams;

	if (!c->on_retry) {
		c->on_retry = true;
		cds_list_add_tail(&c->retry_node, &st->retry);
	}
	mark_busy(p, st);
}

static void retry_del(struct broker_conn *c)
{
	if (c->on_retry) {
		c->on_retry = false;
		cds_list_del_init(&c->retry_node);
	}
}

/* ---- receiving ------------------------------------------------------- */

/* Receive what c's socket has, into free buffers, up to RECV_BUDGET. */
static void recv_some(struct poller *p, struct broker_conn *c)
{
	struct broker_sub *s = c->s;
	struct broker_streams *st = s->queue->streams;

	for (unsigned k = 0; c->rx_ready && !c->rx_done; k++) {
		if (k == RECV_BUDGET) {
			retry_add(p, c); /* the others' turn; the rest next loop */
			return;
		}
		if (st->ov_head || st->nr_free_rx == 0) {
			broker_count(&st->ctr[ONERING_SC_STALLS], 1);
			retry_add(p, c);
			return;
		}
		uint32_t idx = st->free_rx[st->nr_free_rx - 1];
		uint64_t off = st->area_off + (uint64_t)idx * st->buf_size;
		unsigned char *buf = st->seg + off;
		uint16_t flags = 0;
		ssize_t n;
		if (c->dgram) {
			/* The peer's address in the buffer's first bytes, the
			 * datagram after it. */
			struct onering_stream_addr *a = (struct onering_stream_addr *)buf;
			struct iovec iov = {buf + ONERING_STREAM_ADDR_BYTES,
					    st->buf_size - ONERING_STREAM_ADDR_BYTES};
			struct msghdr mh = {.msg_name = a->addr, .msg_namelen = sizeof(a->addr),
					    .msg_iov = &iov, .msg_iovlen = 1};
			n = recvmsg(s->fd, &mh, MSG_DONTWAIT);
			if (n >= 0) {
				a->len = mh.msg_namelen <= sizeof(a->addr) ? mh.msg_namelen : 0;
				a->reserved = 0;
				if (mh.msg_flags & MSG_TRUNC)
					flags |= ONERING_EVF_STREAM_TRUNC;
				off += ONERING_STREAM_ADDR_BYTES;
			}
		} else {
			n = recv(s->fd, buf, st->buf_size, MSG_DONTWAIT);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->rx_ready = false;
				return;
			}
			/* The connection failed: said once, receiving ends. */
			c->rx_done = true;
			broker_count(&st->ctr[ONERING_SC_ERRORS], 1);
			emit(p, c, ONERING_STREAM_RECV, -errno, 0, NO_BUF, 0, 0, 0);
			return;
		}
		if (n == 0 && !c->dgram) { /* end of stream */
			c->rx_done = true;
			emit(p, c, ONERING_STREAM_RECV, 0, 0, NO_BUF, 0, 0, 0);
			return;
		}
		st->nr_free_rx--;
		st->rx_out[idx] = 1;
		broker_count(&st->ctr[ONERING_SC_BUFFERS_OUT], 1);
		broker_count(&st->ctr[ONERING_SC_BYTES_IN], (uint64_t)n);
		broker_count(&st->ctr[ONERING_SC_RECVS], 1);
		emit(p, c, ONERING_STREAM_RECV, (int32_t)n, off, idx, 0, 0, flags);
		/* A stream receive shorter than the buffer took everything the
		 * socket had: what comes later is a new edge (epoll re-queues an
		 * edge-triggered fd on every wake-up after it was harvested), so
		 * the recv that would say EAGAIN is saved - one system call per
		 * request. TCP only, and not when the edge said more than
		 * EPOLLIN (urgent data, an end of stream or an error to read
		 * next): a Unix stream receive stops at a message that carries
		 * fds or another writer's credentials, a datagram or seqpacket
		 * receive takes one message of several. */
		if (c->tcp && c->rx_short_ok && (size_t)n < st->buf_size) {
			c->rx_ready = false;
			return;
		}
	}
}

/* ---- sending ----------------------------------------------------------- */

static void send_finish(struct poller *p, struct broker_conn *c, struct broker_send *snd,
			int32_t status)
{
	struct broker_streams *st = c->s->queue->streams;

	emit(p, c, ONERING_STREAM_SENT, status, snd->off, NO_BUF, snd->len, snd->tag, 0);
	broker_count(&st->ctr[ONERING_SC_SENDS], 1);
	if (status < 0)
		broker_count(&st->ctr[ONERING_SC_ERRORS], 1);
	snd->next = st->free_sends;
	st->free_sends = snd;
}

/* Fail every SEND c has waiting with status. */
static void sends_fail(struct poller *p, struct broker_conn *c, int32_t status)
{
	while (c->sq_head) {
		struct broker_send *snd = c->sq_head;
		c->sq_head = snd->next;
		c->nr_sends--;
		send_finish(p, c, snd, status);
	}
	c->sq_tail = &c->sq_head;
}

static void conn_close(struct poller *p, struct broker_conn *c, int32_t status);

/* A send on a Unix socket carries the credentials of the client that owns
 * the connection, not the broker's: a receiver that trusts SCM_CREDENTIALS
 * (systemd's notify socket trusts its service's pid) must not see the
 * broker in a client's bytes. Claiming another pid takes CAP_SYS_ADMIN, a
 * uid or gid not ours CAP_SETUID/CAP_SETGID: without them the send fails
 * (-EPERM in its SENT record) rather than go out as the broker. */
static ssize_t send_as_client(const struct broker_sub *s, const void *data, size_t len)
{
	const struct broker_cred *cr = s->queue->cred;
	struct ucred uc = {.pid = cr->pid, .uid = cr->uid, .gid = cr->gid};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct iovec iov = {(void *)(uintptr_t)data, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};

	memset(&ctl, 0, sizeof(ctl));
	ctl.h.cmsg_level = SOL_SOCKET;
	ctl.h.cmsg_type = SCM_CREDENTIALS;
	ctl.h.cmsg_len = CMSG_LEN(sizeof(uc));
	memcpy(CMSG_DATA(&ctl.h), &uc, sizeof(uc));
	return sendmsg(s->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Send what c has waiting, in order, until the socket is full. */
static void send_some(struct poller *p, struct broker_conn *c)
{
	struct broker_sub *s = c->s;
	struct broker_streams *st = s->queue->streams;

	while (c->sq_head && c->tx_ready) {
		struct broker_send *snd = c->sq_head;
		const unsigned char *data = st->seg + snd->off + snd->done;
		size_t left = snd->len - snd->done;
		ssize_t n;
		if (snd->flags & ONERING_SEND_TO) {
			/* The address the client wrote: copied, then checked. Only
			 * to the socket's own family, IPv4 or IPv6: a Unix path
			 * would be looked up with the broker's rights and mounts. */
			struct onering_stream_addr a;
			sa_family_t fam;
			memcpy(&a, st->seg + snd->off - ONERING_STREAM_ADDR_BYTES, sizeof(a));
			memcpy(&fam, a.addr, sizeof(fam));
			if (a.len < sizeof(sa_family_t) || a.len > sizeof(a.addr) || fam != c->family ||
			    (fam != AF_INET && fam != AF_INET6)) {
				c->sq_head = snd->next;
				if (!c->sq_head)
					c->sq_tail = &c->sq_head;
				c->nr_sends--;
				send_finish(p, c, snd, -EINVAL);
				continue;
			}
			n = sendto(s->fd, data, left, MSG_DONTWAIT | MSG_NOSIGNAL,
				   (const struct sockaddr *)a.addr, a.len);
		} else if (c->family == AF_UNIX) {
			n = send_as_client(s, data, left);
		} else {
			n = send(s->fd, data, left, MSG_DONTWAIT | MSG_NOSIGNAL);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->tx_ready = false; /* EPOLLOUT brings it back */
				break;
			}
			int32_t err = -errno;
			if (c->dgram) { /* one datagram failed; the socket lives on */
				c->sq_head = snd->next;
				if (!c->sq_head)
					c->sq_tail = &c->sq_head;
				c->nr_sends--;
				send_finish(p, c, snd, err);
				continue;
			}
			c->tx_failed = true;
			sends_fail(p, c, err);
			break;
		}
		broker_count(&st->ctr[ONERING_SC_BYTES_OUT], (uint64_t)n);
		snd->done += (uint32_t)n;
		if (snd->done < snd->len && !c->dgram) {
			broker_count(&st->ctr[ONERING_SC_SHORT_SENDS], 1);
			continue; /* the next call says EAGAIN, or takes more */
		}
		c->sq_head = snd->next;
		if (!c->sq_head)
			c->sq_tail = &c->sq_head;
		c->nr_sends--;
		send_finish(p, c, snd, (int32_t)snd->done);
	}
	if (!c->sq_head) {
		if (c->shut_asked) {
			c->shut_asked = false;
			(void)shutdown(s->fd, SHUT_WR); /* never blocks; ENOTCONN: gone anyway */
		}
		if (c->close_asked)
			conn_close(p, c, 0);
	}
}

/* ---- closing ----------------------------------------------------------- */

/* c ends: its last record, then the subscription goes (the control thread
 * closes the broker's fd after the grace period). */
static void conn_close(struct poller *p, struct broker_conn *c, int32_t status)
{
	struct broker_sub *s = c->s;

	if (broker_sub_dead(s))
		return;
	sends_fail(p, c, -ECANCELED);
	retry_del(c);
	if (s->fd >= 0 && epoll_ctl(p->epfd, EPOLL_CTL_DEL, s->fd, NULL) < 0 && errno != ENOENT)
		broker_count(&p->ctr[ONERING_PC_SYSCALL_ERRORS], 1);
	emit(p, c, ONERING_STREAM_CLOSED, status, 0, NO_BUF, 0, 0, 0);
	broker_sub_delete(p, s);
}

/* ---- what the fds source and requests hand here ------------------------ */

void broker_stream_event(struct poller *p, struct broker_sub *s, uint32_t events)
{
	struct broker_conn *c = s->conn;

	if (!c || c->listener || !s->queue->streams)
		return;
	if (!c->announced) {
		c->announced = true;
		emit(p, c, ONERING_STREAM_ACCEPTED, 0, 0, c->listener_id, 0, 0, 0);
	}
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
		c->tx_ready = true;
		send_some(p, c);
		if (broker_sub_dead(s))
			return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP | EPOLLPRI)) {
		c->rx_ready = true;
		c->rx_short_ok = !(events & (EPOLLRDHUP | EPOLLERR | EPOLLHUP | EPOLLPRI));
	}
	recv_some(p, c);
}

/* Buffers given back: each must be one the client holds. */
static int buffers_done(struct poller *p, struct broker_queue *q, const struct onering_request *req)
{
	struct broker_streams *st = q->streams;
	uint32_t idx[2 * 4];

	if (!st || req->arg[0] == 0 || req->arg[0] > ONERING_STREAM_DONE_MAX)
		return -EPROTO;
	ONERING_STATIC_ASSERT(sizeof(idx) == 4 * sizeof(req->arg[1]) &&
				      ONERING_STREAM_DONE_MAX == 8,
			      "STREAM_DONE packs 8 u32 indices in arg[1..4]");
	memcpy(idx, &req->arg[1], sizeof(idx));
	for (uint32_t i = 0; i < (uint32_t)req->arg[0]; i++) {
		if (idx[i] >= st->nr_rx || !st->rx_out[idx[i]]) {
			/* Not one it holds (twice given back, or made up): the
			 * buffer stays where it is; counted. */
			broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
			continue;
		}
		st->rx_out[idx[i]] = 0;
		st->free_rx[st->nr_free_rx++] = idx[i];
		broker_count(&st->ctr[ONERING_SC_BUFFERS_OUT], (uint64_t)-1);
	}
	if (!cds_list_empty(&st->retry))
		mark_busy(p, st); /* receives that waited for a buffer go on */
	return 0;
}

static int send_request(struct poller *p, struct broker_conn *c, const struct onering_request *req)
{
	struct broker_streams *st = c->s->queue->streams;
	uint64_t off = req->arg[0], len = req->arg[1];
	uint64_t lo = st->area_off + (req->flags & ONERING_SEND_TO ? ONERING_STREAM_ADDR_BYTES : 0);

	/* Inside the stream area, the address header too (no wrap-around:
	 * each bound checked on its own). */
	if (len == 0 || len > st->area_size || off < lo || off > st->area_off + st->area_size ||
	    len > st->area_off + st->area_size - off || ((req->flags & ONERING_SEND_TO) && !c->dgram))
		return -EPROTO;
	struct broker_send *snd = st->free_sends;
	if (c->listener || !snd || c->tx_failed || c->close_asked || c->shut_asked) {
		/* Refused, with a SENT record that says why. */
		struct broker_send tmp = {.off = off, .len = (uint32_t)len, .tag = req->user_data};
		int32_t why = c->listener ? -ENOTCONN : !snd ? -ENOBUFS : -EPIPE;
		emit(p, c, ONERING_STREAM_SENT, why, tmp.off, NO_BUF, tmp.len, tmp.tag, 0);
		broker_count(&st->ctr[ONERING_SC_SENDS], 1);
		broker_count(&st->ctr[ONERING_SC_ERRORS], 1);
		return 0;
	}
	st->free_sends = snd->next;
	snd->off = off;
	snd->len = (uint32_t)len;
	snd->done = 0;
	snd->tag = req->user_data;
	snd->flags = req->flags;
	snd->next = NULL;
	*c->sq_tail = snd;
	c->sq_tail = &snd->next;
	c->nr_sends++;
	if (c->sq_head == snd)
		send_some(p, c);
	return 0;
}

int broker_stream_request(struct poller *p, struct broker_queue *q, struct broker_sub *s,
			  const struct onering_request *req)
{
	if (req->op == ONERING_REQ_STREAM_DONE)
		return buffers_done(p, q, req);
	struct broker_conn *c = s->conn;
	if (!c || !s->queue->streams)
		return -EPROTO;
	/* Each SEND and CLOSE makes a record. While records already wait for
	 * ring space (the client does not consume), they stay in the
	 * submission ring: back-pressure, as a post to a full backlog. */
	if ((req->op == ONERING_REQ_SEND || req->op == ONERING_REQ_CLOSE) && s->queue->streams->ov_head)
		return -EAGAIN;
	switch (req->op) {
	case ONERING_REQ_SEND:
		return send_request(p, c, req);
	case ONERING_REQ_CLOSE:
		if (req->flags & ONERING_CLOSE_ABORT) {
			sends_fail(p, c, -ECANCELED);
			conn_close(p, c, 0);
		} else if (req->flags & ONERING_CLOSE_WRITE) {
			c->shut_asked = true;
			send_some(p, c);
		} else {
			c->close_asked = true;
			send_some(p, c);
		}
		return 0;
	case ONERING_REQ_DEL:
		/* onering_del(): at once, no CLOSED record (its SENDs end with
		 * -ECANCELED records). */
		sends_fail(p, c, -ECANCELED);
		retry_del(c);
		if (s->fd >= 0 && !c->listener && epoll_ctl(p->epfd, EPOLL_CTL_DEL, s->fd, NULL) < 0 &&
		    errno != ENOENT)
			broker_count(&p->ctr[ONERING_PC_SYSCALL_ERRORS], 1);
		return 0;
	default:
		return -EPROTO;
	}
}

/* ---- the streams source -------------------------------------------------- */

/* One queue's waiting work: records first, then the connections that
 * waited (each once: one that must wait again goes back on the list). */
static void queue_resume(struct poller *p, struct broker_queue *q)
{
	struct broker_streams *st = q->streams;
	struct cds_list_head resume;

	st->busy = false;
	if (!overflow_drain(p, q)) {
		st->busy = true;
		return;
	}
	CDS_INIT_LIST_HEAD(&resume);
	cds_list_splice(&st->retry, &resume);
	CDS_INIT_LIST_HEAD(&st->retry);
	while (!cds_list_empty(&resume)) {
		struct broker_conn *c = cds_list_first_entry(&resume, struct broker_conn, retry_node);
		cds_list_del_init(&c->retry_node);
		c->on_retry = false;
		if (broker_sub_dead(c->s))
			continue;
		recv_some(p, c);
		if (!cds_list_empty(&st->retry) && st->nr_free_rx == 0) {
			/* Out of buffers: the rest wait as they were. */
			cds_list_splice(&resume, st->retry.prev);
			break;
		}
	}
	st->busy = st->ov_head || !cds_list_empty(&st->retry);
}

static unsigned streams_poll(struct broker_source *src, const struct broker_poll_ctx *ctx)
{
	struct source_streams *ss = (struct source_streams *)src;
	struct poller *p = src->p;
	struct broker_queue *q;
	unsigned busy = 0, work = 0;

	(void)ctx;
	if (ss->nr_busy == 0)
		return 0;
	cds_list_for_each_entry_rcu(q, &p->queues, poller_node) {
		/* A5 (deliver.c): only a LIVE queue is served. */
		if (!q->streams || !q->streams->busy ||
		    onering_atomic_load(&q->state, onering_mo_acquire) != BROKER_QUEUE_LIVE)
			continue;
		uint64_t before = onering_atomic_load(&q->streams->ctr[ONERING_SC_RECVS],
						      onering_mo_relaxed);
		queue_resume(p, q);
		work += (unsigned)(onering_atomic_load(&q->streams->ctr[ONERING_SC_RECVS],
						       onering_mo_relaxed) - before);
		busy += q->streams->busy;
	}
	ss->nr_busy = busy;
	return work;
}

/* Waiting for ring space or buffers: look again soon (the consumer's
 * progress does not wake the poller; a buffer given back does, through
 * the submission ring). */
static uint64_t streams_next_deadline(struct broker_source *src, uint64_t now_ns)
{
	(void)now_ns;
	return ((struct source_streams *)src)->nr_busy ? STREAM_RETRY_NS : UINT64_MAX;
}

static const struct broker_source_ops streams_ops = {
	.name = "streams",
	.poll = streams_poll,
	.next_deadline = streams_next_deadline,
	.destroy = broker_source_free,
};

int broker_source_streams_create(struct poller *p, struct broker_source **out)
{
	*out = broker_source_alloc(p, &streams_ops, sizeof(struct source_streams));
	return *out ? 0 : -ENOMEM;
}
