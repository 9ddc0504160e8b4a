/* SPDX-License-Identifier: MIT */
/*
 * Completion-mode sockets on the poller (stream.h): receiving into a
 * queue's receive buffers, sending from its stream area, the records that
 * say so, and the streams source that makes the receives and sends.
 *
 * Every stream subscription is homed on its queue's poller, so the queue's
 * buffers, send slots and connections have one writer. What the loop's
 * other sources find - a readiness report from the fds source (sockets
 * are in the poller's epoll, edge-triggered), a SEND or a CLOSE from the
 * submission source, a buffer given back - only marks the connection (its
 * queue's io list). The streams source, last in the loop, then makes every
 * marked connection's receive and send as one batch:
 *
 *   build    one receive (into a free buffer) and one send (the SENDs that
 *            wait, gathered) per connection;
 *   run      through the poller's io_uring, one io_uring_enter for the
 *            whole batch (--stream-io uring, the default), or as
 *            recv/recvmsg/sendmsg calls (--stream-io calls, and where
 *            io_uring is unavailable). Every operation carries
 *            MSG_DONTWAIT, so io_uring completes each inside the enter -
 *            with its bytes or -EAGAIN, never parked on the socket: the
 *            broker never blocks on a client's socket, and no operation
 *            outlives the batch that made it (nothing in flight points
 *            into a queue's memory when the queue or the connection goes);
 *   complete each result as the call's would be: records, a connection
 *            with more to do marked again (the next round), EAGAIN waits
 *            for the next readiness edge.
 * Every marked connection has its turn each loop (one receive, one send);
 * one that has more to do is marked again, for the next loop. A batch
 * holds STREAM_OPS operations: more make more batches.
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
 * something to do or waiting (as deliver_flush does for pending records).
 */
#include <assert.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "broker/bells.h"
#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/queue.h"
#include "broker/request.h"
#include "broker/source.h"
#include "broker/stream.h"
#include "shm/log.h"

/* Operations a batch holds (a receive and a send per connection): one
 * io_uring_enter each. */
#define STREAM_OPS 64u
/* SENDs of one connection gathered into one sendmsg. */
#define SEND_GATHER 8u
/* While something waits for the consumer (ring space), poll again after
 * this long even if nothing wakes the poller (its progress does not). */
#define STREAM_RETRY_NS (1000ull * 1000)

#define NO_BUF UINT32_MAX

/* struct broker_conn.waits */
enum { CONN_IDLE, CONN_IO, CONN_RETRY };

/* One receive or send of a batch. */
struct stream_op {
	struct broker_conn *c;
	bool send;
	uint32_t buf;   /* receive: its buffer */
	uint32_t nr;    /* send: the SENDs gathered, from the connection's first */
	int32_t res;    /* bytes, or -errno */
	struct msghdr mh;
	struct iovec iov[SEND_GATHER];
	struct onering_stream_addr to; /* SEND_TO: the address, copied and checked */
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
};

struct source_streams {
	struct broker_source src;
	/* Queues of this poller with something to do or waiting, at least:
	 * set where a queue becomes busy, recounted by the walk. 0 skips the
	 * walk. */
	uint32_t nr_busy;
	/* Of those, queues whose records wait for ring space (the consumer's
	 * progress wakes nothing: polled), at the last walk; and whether one
	 * has begun to wait since. Receives that wait for a buffer need no
	 * poll: a buffer comes back by request, which wakes the poller. */
	uint32_t nr_ring_waits;
	bool ring_wait_new;
	bool in_flush;            /* sends_flush runs: a drained CLOSE waits */
	bool uring;               /* the batches go through ring */
	bool ring_made;           /* ring is to be freed with the source */
	bool uring_disabled;      /* made R_DISABLED: its poller enables it */
	struct io_uring ring;
	uint32_t nr_ops;
	struct stream_op ops[STREAM_OPS];
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
	streams_src(p)->ring_wait_new = true;
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

/* c has a receive or a send to make: on its queue's io list (from the
 * retry list too: a connection whose receive waits may have sends). */
static void io_want(struct poller *p, struct broker_conn *c)
{
	struct broker_streams *st = c->s->queue->streams;

	if (c->waits == CONN_IO)
		return;
	if (c->waits == CONN_RETRY)
		cds_list_del(&c->wait_node);
	c->waits = CONN_IO;
	cds_list_add_tail(&c->wait_node, &st->io);
	mark_busy(p, st);
}

/* c's receive waits for a buffer or for ring space. */
static void retry_add(struct poller *p, struct broker_conn *c)
{
	struct broker_streams *st = c->s->queue->streams;

	if (c->waits == CONN_IO)
		cds_list_del(&c->wait_node);
	if (c->waits != CONN_RETRY)
		cds_list_add_tail(&c->wait_node, &st->retry);
	c->waits = CONN_RETRY;
	mark_busy(p, st);
}

/* Off whichever list c is on. */
static void wait_del(struct broker_conn *c)
{
	if (c->waits != CONN_IDLE) {
		c->waits = CONN_IDLE;
		cds_list_del_init(&c->wait_node);
	}
}

/* ---- sends: their end ---------------------------------------------------- */

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

/* c's first SEND is done (sent, or failed with status). */
static void send_pop(struct poller *p, struct broker_conn *c, int32_t status)
{
	struct broker_send *snd = c->sq_head;

	if (snd->refused) /* refused when posted: that says why, whatever ends it now */
		status = snd->refused;

	c->sq_head = snd->next;
	if (!c->sq_head)
		c->sq_tail = &c->sq_head;
	c->nr_sends--;
	send_finish(p, c, snd, status);
}

/* Fail every SEND c has waiting with status. */
static void sends_fail(struct poller *p, struct broker_conn *c, int32_t status)
{
	while (c->sq_head)
		send_pop(p, c, status);
}

static void conn_close(struct poller *p, struct broker_conn *c, int32_t status);

/* c has no SEND left: the CLOSE or the CLOSE_WRITE that came after them
 * takes effect. */
static void sends_drained(struct poller *p, struct broker_conn *c)
{
	if (c->sq_head)
		return;
	if (c->shut_asked) {
		c->shut_asked = false;
		(void)shutdown(c->s->fd, SHUT_WR); /* never blocks; ENOTCONN: gone anyway */
	}
	if (c->close_asked) {
		if (streams_src(p)->in_flush)
			io_want(p, c); /* closed by the loop's batch (sends_flush) */
		else
			conn_close(p, c, 0);
	}
}

/* ---- a batch: build ------------------------------------------------------ */

/* A receive into a free buffer of c's queue (the caller checked there is
 * one). */
static void op_recv(struct source_streams *ss, struct broker_conn *c)
{
	struct broker_streams *st = c->s->queue->streams;
	struct stream_op *op = &ss->ops[ss->nr_ops++];
	uint32_t idx = st->free_rx[--st->nr_free_rx];
	unsigned char *buf = st->seg + st->area_off + (uint64_t)idx * st->buf_size;

	op->c = c;
	op->send = false;
	op->buf = idx;
	memset(&op->mh, 0, sizeof(op->mh));
	op->mh.msg_iov = op->iov;
	op->mh.msg_iovlen = 1;
	if (c->dgram) {
		/* The peer's address in the buffer's first bytes, the datagram
		 * after it. */
		struct onering_stream_addr *a = (struct onering_stream_addr *)buf;
		op->mh.msg_name = a->addr;
		op->mh.msg_namelen = sizeof(a->addr);
		op->iov[0].iov_base = buf + ONERING_STREAM_ADDR_BYTES;
		op->iov[0].iov_len = st->buf_size - ONERING_STREAM_ADDR_BYTES;
	} else {
		op->iov[0].iov_base = buf;
		op->iov[0].iov_len = st->buf_size;
	}
}

/* A send of c's first SENDs: up to SEND_GATHER of a stream in one
 * sendmsg, one datagram otherwise. false: none to make (a SEND_TO with a
 * bad address failed on the way). */
static bool op_send(struct poller *p, struct source_streams *ss, struct broker_conn *c)
{
	struct broker_streams *st = c->s->queue->streams;
	struct stream_op *op = &ss->ops[ss->nr_ops];
	struct broker_send *snd;

	memset(&op->mh, 0, sizeof(op->mh));
	while ((snd = c->sq_head) && (snd->refused || (snd->flags & ONERING_SEND_TO))) {
		if (snd->refused) { /* its turn: its record, nothing sent */
			send_pop(p, c, snd->refused);
			continue;
		}
		/* The address the client wrote: copied, then checked. Only to
		 * the socket's own family, IPv4 or IPv6: a Unix path would be
		 * looked up with the broker's rights and mounts. */
		sa_family_t fam;
		memcpy(&op->to, st->seg + snd->off - ONERING_STREAM_ADDR_BYTES, sizeof(op->to));
		memcpy(&fam, op->to.addr, sizeof(fam));
		if (op->to.len >= sizeof(sa_family_t) && op->to.len <= sizeof(op->to.addr) &&
		    fam == c->family && (fam == AF_INET || fam == AF_INET6)) {
			op->mh.msg_name = op->to.addr;
			op->mh.msg_namelen = op->to.len;
			break;
		}
		send_pop(p, c, -EINVAL);
	}
	if (!snd) {
		sends_drained(p, c);
		return false;
	}
	uint32_t nr = 0;
	/* A datagram or seqpacket socket: one message per SEND, so one SEND
	 * per operation. */
	for (; snd && nr < (c->messages ? 1u : SEND_GATHER); snd = snd->next, nr++) {
		if (nr > 0 && (snd->refused || (snd->flags & ONERING_SEND_TO)))
			break;
		op->iov[nr].iov_base = st->seg + snd->off + snd->done;
		op->iov[nr].iov_len = snd->len - snd->done;
	}
	op->mh.msg_iov = op->iov;
	op->mh.msg_iovlen = nr;
	if (c->family == AF_UNIX) {
		/* A send on a Unix socket carries the credentials of the
		 * client that owns the connection, not the broker's: a
		 * receiver that trusts SCM_CREDENTIALS (systemd's notify
		 * socket trusts its service's pid) must not see the broker in
		 * a client's bytes. Claiming another pid takes CAP_SYS_ADMIN,
		 * a uid or gid not ours CAP_SETUID/CAP_SETGID: without them
		 * the send fails (-EPERM in its SENT record) rather than go
		 * out as the broker. */
		const struct broker_cred *cr = c->s->queue->cred;
		struct ucred uc = {.pid = cr->pid, .uid = cr->uid, .gid = cr->gid};
		memset(&op->ctl, 0, sizeof(op->ctl));
		op->ctl.h.cmsg_level = SOL_SOCKET;
		op->ctl.h.cmsg_type = SCM_CREDENTIALS;
		op->ctl.h.cmsg_len = CMSG_LEN(sizeof(uc));
		memcpy(CMSG_DATA(&op->ctl.h), &uc, sizeof(uc));
		op->mh.msg_control = op->ctl.buf;
		op->mh.msg_controllen = sizeof(op->ctl.buf);
	}
	op->c = c;
	op->send = true;
	op->buf = NO_BUF;
	op->nr = nr;
	ss->nr_ops++;
	return true;
}

/* c's receive and send, into the batch (room for two). */
static void batch_add(struct poller *p, struct source_streams *ss, struct broker_conn *c)
{
	struct broker_streams *st = c->s->queue->streams;

	if (broker_sub_dead(c->s))
		return;
	if (!c->sq_head && (c->close_asked || c->shut_asked)) {
		sends_drained(p, c); /* a CLOSE a flush left for the batch: no receive first */
		if (broker_sub_dead(c->s))
			return;
	}
	if (c->rx_ready && !c->rx_done) {
		if (st->ov_head || st->nr_free_rx == 0) {
			broker_count(&st->ctr[ONERING_SC_STALLS], 1);
			retry_add(p, c);
		} else {
			op_recv(ss, c);
		}
	}
	if (c->sq_head && c->tx_ready && !c->tx_failed)
		(void)op_send(p, ss, c);
}

/* ---- a batch: run ---------------------------------------------------------- */

/* A send of one buffer, no address, no credentials: send, not sendmsg
 * (which copies the message header and imports the vector first). */
static bool op_plain(const struct stream_op *op)
{
	return op->mh.msg_iovlen == 1 && !op->mh.msg_name && !op->mh.msg_control;
}

static int32_t op_call(const struct broker_conn *c, struct stream_op *op)
{
	ssize_t n;

	do {
		if (op->send && op_plain(op))
			n = send(c->s->fd, op->iov[0].iov_base, op->iov[0].iov_len,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		else if (op->send)
			n = sendmsg(c->s->fd, &op->mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		else if (c->dgram)
			n = recvmsg(c->s->fd, &op->mh, MSG_DONTWAIT);
		else
			n = recv(c->s->fd, op->iov[0].iov_base, op->iov[0].iov_len, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : (int32_t)n;
}

/* The poller's ring failed it: calls from here on (what the ring still
 * holds is never entered again; freed with the source). */
static void uring_off(struct poller *p, struct source_streams *ss, int err, const char *what)
{
	onering_log(ONERING_LOG_ERR, "poller %u: %s: %s; completion-mode sockets go on with "
		    "recv/send calls", p->idx, what, strerror(-err));
	broker_count(&p->ctr[ONERING_PC_SYSCALL_ERRORS], 1);
	ss->uring = false;
}

/* Every operation of the batch: one io_uring_enter, or a call each. */
static void batch_run(struct poller *p, struct source_streams *ss)
{
	uint32_t done = 0; /* operations io_uring took: the rest are calls */

	if (ss->uring) {
		uint32_t nr = 0;
		for (; nr < ss->nr_ops; nr++) {
			struct stream_op *op = &ss->ops[nr];
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ss->ring);
			if (!sqe)
				break; /* cannot be: the ring holds twice a batch, emptied each time */
			int fd = op->c->s->fd;
			if (op->send && op_plain(op))
				io_uring_prep_send(sqe, fd, op->iov[0].iov_base, op->iov[0].iov_len,
						   MSG_DONTWAIT | MSG_NOSIGNAL);
			else if (op->send)
				io_uring_prep_sendmsg(sqe, fd, &op->mh, MSG_DONTWAIT | MSG_NOSIGNAL);
			else if (op->c->dgram)
				io_uring_prep_recvmsg(sqe, fd, &op->mh, MSG_DONTWAIT);
			else
				io_uring_prep_recv(sqe, fd, op->iov[0].iov_base, op->iov[0].iov_len,
						   MSG_DONTWAIT);
			io_uring_sqe_set_data64(sqe, nr);
			op->res = -EINTR; /* until its completion: marked again */
		}
		/* MSG_DONTWAIT: each completes inside this enter (its bytes or
		 * -EAGAIN), so the wait for all of them returns at once. */
		int r;
		do
			r = io_uring_submit_and_wait(&ss->ring, nr);
		while (r == -EINTR);
		if (r < 0) {
			uring_off(p, ss, r, "io_uring_enter"); /* none of them was taken */
		} else {
			/* Fewer taken than given (the kernel out of memory): those
			 * complete; the rest stay in the ring, which is never
			 * entered again, and are made as calls below. */
			uint32_t taken = (uint32_t)r < nr ? (uint32_t)r : nr, got = 0;
			while (got < taken) {
				struct io_uring_cqe *cqe;
				unsigned head, n = 0;
				io_uring_for_each_cqe(&ss->ring, head, cqe) {
					uint64_t i = io_uring_cqe_get_data64(cqe);
					if (i < taken)
						ss->ops[i].res = cqe->res;
					n++;
				}
				io_uring_cq_advance(&ss->ring, n);
				got += n;
				/* Bounded, though none can be missing: an operation
				 * that did not complete inline would be one that waits
				 * on a socket. */
				struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
				if (got < taken && io_uring_wait_cqe_timeout(&ss->ring, &cqe, &ts) < 0) {
					uring_off(p, ss, -ETIME, "an operation did not complete inline");
					break; /* those without a completion say -EINTR */
				}
			}
			done = taken;
			if (taken < nr)
				uring_off(p, ss, -ENOMEM, "io_uring_enter took part of a batch");
		}
	}
	for (uint32_t i = done; i < ss->nr_ops; i++)
		ss->ops[i].res = op_call(ss->ops[i].c, &ss->ops[i]);
}

/* ---- a batch: complete ----------------------------------------------------- */

static void recv_done(struct poller *p, struct stream_op *op)
{
	struct broker_conn *c = op->c;
	struct broker_streams *st = c->s->queue->streams;
	int32_t n = op->res;
	uint64_t off = st->area_off + (uint64_t)op->buf * st->buf_size;
	uint16_t flags = 0;

	if (broker_sub_dead(c->s) || n < 0 || (n == 0 && !c->dgram))
		st->free_rx[st->nr_free_rx++] = op->buf; /* the buffer was not used */
	if (broker_sub_dead(c->s)) /* closed by an operation before this one */
		return;
	if (n == -EAGAIN || n == -EWOULDBLOCK) {
		c->rx_ready = false; /* the next edge brings it back */
		return;
	}
	if (n == -EINTR) {
		io_want(p, c);
		return;
	}
	if (n < 0) { /* the connection failed: said once, receiving ends */
		c->rx_done = true;
		broker_count(&st->ctr[ONERING_SC_ERRORS], 1);
		emit(p, c, ONERING_STREAM_RECV, n, 0, NO_BUF, 0, 0, 0);
		return;
	}
	if (n == 0 && !c->dgram) { /* end of stream */
		c->rx_done = true;
		emit(p, c, ONERING_STREAM_RECV, 0, 0, NO_BUF, 0, 0, 0);
		return;
	}
	if (c->dgram) {
		struct onering_stream_addr *a = (struct onering_stream_addr *)(st->seg + off);
		a->len = op->mh.msg_namelen <= sizeof(a->addr) ? op->mh.msg_namelen : 0;
		a->reserved = 0;
		if (op->mh.msg_flags & MSG_TRUNC)
			flags |= ONERING_EVF_STREAM_TRUNC;
		off += ONERING_STREAM_ADDR_BYTES;
	}
	st->rx_out[op->buf] = 1;
	broker_count(&st->ctr[ONERING_SC_BUFFERS_OUT], 1);
	broker_count(&st->ctr[ONERING_SC_BYTES_IN], (uint64_t)n);
	broker_count(&st->ctr[ONERING_SC_RECVS], 1);
	emit(p, c, ONERING_STREAM_RECV, n, off, op->buf, 0, 0, flags);
	/* A stream receive shorter than the buffer took everything the socket
	 * had: what comes later is a new edge (epoll re-queues an
	 * edge-triggered fd on every wake-up after it was harvested), so the
	 * receive that would say EAGAIN is saved - one system call (or
	 * operation) per request. TCP only, and not when the edge said more
	 * than EPOLLIN (urgent data, an end of stream or an error to read
	 * next): a Unix stream receive stops at a message that carries fds or
	 * another writer's credentials, a datagram or seqpacket receive takes
	 * one message of several. */
	if (c->tcp && c->rx_short_ok && (size_t)n < st->buf_size) {
		c->rx_ready = false;
		return;
	}
	io_want(p, c); /* the next round receives again */
}

static void send_done(struct poller *p, struct stream_op *op)
{
	struct broker_conn *c = op->c;
	struct broker_streams *st = c->s->queue->streams;
	int32_t n = op->res;

	if (broker_sub_dead(c->s)) /* closed by an operation before this one */
		return;
	if (n == -EAGAIN || n == -EWOULDBLOCK) {
		c->tx_ready = false; /* EPOLLOUT brings it back */
		return;
	}
	if (n == -EINTR) {
		io_want(p, c);
		return;
	}
	if (n < 0) {
		if (c->dgram) { /* one datagram failed; the socket lives on */
			send_pop(p, c, n);
		} else {
			c->tx_failed = true;
			sends_fail(p, c, n);
		}
	} else {
		uint32_t left = (uint32_t)n;
		broker_count(&st->ctr[ONERING_SC_BYTES_OUT], (uint64_t)n);
		for (uint32_t k = 0; k < op->nr; k++) {
			struct broker_send *snd = c->sq_head;
			uint32_t take = snd->len - snd->done < left ? snd->len - snd->done : left;
			snd->done += take;
			left -= take;
			if (snd->done < snd->len && !c->dgram) {
				/* The socket took part: the next send takes more, or
				 * says EAGAIN. */
				broker_count(&st->ctr[ONERING_SC_SHORT_SENDS], 1);
				break;
			}
			send_pop(p, c, (int32_t)snd->done);
		}
	}
	if (c->sq_head)
		io_want(p, c);
	else
		sends_drained(p, c);
}

/* Run the batch and complete its operations. Returns how many. */
static unsigned batch_flush(struct poller *p, struct source_streams *ss)
{
	uint32_t n = ss->nr_ops;

	if (n == 0)
		return 0;
	batch_run(p, ss);
	for (uint32_t i = 0; i < n; i++) {
		if (ss->ops[i].send)
			send_done(p, &ss->ops[i]);
		else
			recv_done(p, &ss->ops[i]);
	}
	ss->nr_ops = 0;
	return n;
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
	wait_del(c);
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
	/* epoll reported it, so the control thread's EPOLL_CTL_ADD has
	 * succeeded (its one failure after publication, accept.c), though its
	 * store of armed may not be made yet: the ADD of a ready socket wakes
	 * this poller, and the control thread can lose its CPU right after the
	 * call. The ACCEPTED below lets the client name the connection at
	 * once; its first SEND must not be refused as a made-up id's (it was,
	 * and the connection hung: HttpServer.ManyConnectionsAtOnce, once in a
	 * loaded run). The control thread stores the same 1. */
	if (!onering_atomic_load(&c->armed, onering_mo_relaxed))
		onering_atomic_store(&c->armed, 1u, onering_mo_relaxed);
	if (!c->announced) {
		c->announced = true;
		emit(p, c, ONERING_STREAM_ACCEPTED, 0, 0, c->listener_id, 0, 0, 0);
	}
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		c->tx_ready = true;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP | EPOLLPRI)) {
		c->rx_ready = true;
		c->rx_short_ok = !(events & (EPOLLRDHUP | EPOLLERR | EPOLLHUP | EPOLLPRI));
	}
	io_want(p, c);
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

/* The sends marked connections of st have to make, now, not at the loop's
 * end: a SEND needs the send slots they hold. A connection this drains
 * closes at the loop's end, not here (a SEND after its CLOSE, being
 * handled now, still gets its refusal before CLOSED). */
static void sends_flush(struct poller *p, struct broker_streams *st)
{
	struct source_streams *ss = streams_src(p);
	struct broker_conn *c, *next;

	/* From request handling only (the submission source), never inside
	 * the streams source's walk, whose batch this would reset. */
	assert(ss->nr_ops == 0 && !ss->in_flush);
	ss->in_flush = true;
	cds_list_for_each_entry_safe(c, next, &st->io, wait_node) {
		if (ss->nr_ops == STREAM_OPS)
			break;
		if (c->sq_head && c->tx_ready && !c->tx_failed && !broker_sub_dead(c->s))
			(void)op_send(p, ss, c);
	}
	(void)batch_flush(p, ss);
	ss->in_flush = false;
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
	/* The SENDs before it are made at the loop's end; when this one needs
	 * the slots they hold, now. */
	if (!st->free_sends)
		sends_flush(p, st);
	if (st->ov_head) /* their records wait for ring space: so does it */
		return -EAGAIN;
	struct broker_send *snd = st->free_sends;
	int32_t why = c->listener ? -ENOTCONN
		      : c->tx_failed || c->close_asked || c->shut_asked ? -EPIPE
		      : !snd ? -ENOBUFS : 0;
	/* A refusal waits in its turn if a slot can hold it; with the pool
	 * empty its record comes at once, ahead of the SENDs still waiting
	 * (semantics.md: the one exception to their order). */
	if (why && !(why == -EPIPE && c->sq_head && snd)) {
		/* Refused, with a SENT record that says why. */
		emit(p, c, ONERING_STREAM_SENT, why, off, NO_BUF, (uint32_t)len, req->user_data, 0);
		broker_count(&st->ctr[ONERING_SC_SENDS], 1);
		broker_count(&st->ctr[ONERING_SC_ERRORS], 1);
		return 0;
	}
	/* Taken; or refused behind SENDs the full socket still holds (its
	 * record then comes after theirs, in posting order). */
	st->free_sends = snd->next;
	snd->off = off;
	snd->len = (uint32_t)len;
	snd->done = 0;
	snd->tag = req->user_data;
	snd->flags = req->flags;
	snd->refused = why;
	snd->next = NULL;
	*c->sq_tail = snd;
	c->sq_tail = &snd->next;
	c->nr_sends++;
	if (c->tx_ready)
		io_want(p, c); /* this loop's batch sends it */
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
	/* Not armed yet (its add has not returned and epoll has not reported
	 * it: a made-up id): refused, and a DEL leaves it to the delete that
	 * follows (it is in no epoll and on no list). Pairs with the release
	 * in accept.c (or this poller's own store, broker_stream_event). */
	if (!onering_atomic_load(&c->armed, onering_mo_acquire)) {
		if (req->op != ONERING_REQ_DEL)
			broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
		return 0;
	}
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
		} else {
			/* After the SENDs before it: now if there are none. */
			if (req->flags & ONERING_CLOSE_WRITE)
				c->shut_asked = true;
			else
				c->close_asked = true;
			sends_drained(p, c);
		}
		return 0;
	case ONERING_REQ_DEL:
		/* onering_del(): at once, no CLOSED record (its SENDs end with
		 * -ECANCELED records). */
		sends_fail(p, c, -ECANCELED);
		wait_del(c);
		if (s->fd >= 0 && !c->listener && epoll_ctl(p->epfd, EPOLL_CTL_DEL, s->fd, NULL) < 0 &&
		    errno != ENOENT)
			broker_count(&p->ctr[ONERING_PC_SYSCALL_ERRORS], 1);
		return 0;
	default:
		return -EPROTO;
	}
}

/* ---- the streams source -------------------------------------------------- */

/* Before q's batch: the records that waited for ring space, then the
 * receives that waited for them or for a buffer (marked again; those that
 * must wait again go back to the retry list as the batch is built). */
static void queue_resume(struct poller *p, struct broker_queue *q)
{
	struct broker_streams *st = q->streams;
	bool waited = st->ov_head != NULL;

	if (!overflow_drain(p, q))
		return;
	if (waited) /* SENDs that waited in the submission ring go on: its bell */
		broker_bell_mark(q->bells, q->bell);
	if (st->nr_free_rx == 0)
		return;
	while (!cds_list_empty(&st->retry))
		io_want(p, cds_list_first_entry(&st->retry, struct broker_conn, wait_node));
}

static unsigned streams_poll(struct broker_source *src, const struct broker_poll_ctx *ctx)
{
	struct source_streams *ss = (struct source_streams *)src;
	struct poller *p = src->p;
	struct broker_queue *q;
	unsigned work = 0;

	(void)ctx;
	if (ss->nr_busy == 0)
		return 0;
	ss->nr_busy = 0; /* recounted below; mark_busy counts a queue made busy again */
	ss->nr_ring_waits = 0;
	ss->ring_wait_new = false;
	ss->nr_ops = 0;
	cds_list_for_each_entry_rcu(q, &p->queues, poller_node) {
		struct broker_streams *st = q->streams;
		struct cds_list_head turn;
		/* A5 (deliver.c): only a LIVE queue is served. */
		if (!st || !st->busy || onering_atomic_load(&q->state, onering_mo_acquire) !=
						 BROKER_QUEUE_LIVE)
			continue;
		st->busy = false;
		queue_resume(p, q);
		/* Each marked connection once this loop: one marked again by
		 * its results (more to receive or send) waits for the next. */
		CDS_INIT_LIST_HEAD(&turn);
		cds_list_splice(&st->io, &turn);
		CDS_INIT_LIST_HEAD(&st->io);
		while (!cds_list_empty(&turn)) {
			struct broker_conn *c =
				cds_list_first_entry(&turn, struct broker_conn, wait_node);
			if (ss->nr_ops + 2 > STREAM_OPS)
				work += batch_flush(p, ss);
			/* Still CONN_IO until here: a result meanwhile that marks
			 * it again finds it marked. */
			c->waits = CONN_IDLE;
			cds_list_del_init(&c->wait_node);
			batch_add(p, ss, c);
		}
		if (!st->busy && (st->ov_head || !cds_list_empty(&st->io) ||
				  !cds_list_empty(&st->retry)))
			mark_busy(p, st);
		ss->nr_ring_waits += st->ov_head != NULL;
	}
	work += batch_flush(p, ss);
	return work;
}

/* Records waiting for ring space: look again soon (the consumer's progress
 * does not wake the poller). Receives waiting only for a buffer: no
 * deadline (a buffer given back is a request, and a request wakes it) - a
 * client that holds its buffers costs an idle broker nothing. */
static uint64_t streams_next_deadline(struct broker_source *src, uint64_t now_ns)
{
	struct source_streams *ss = (struct source_streams *)src;

	(void)now_ns;
	return ss->nr_busy && (ss->nr_ring_waits || ss->ring_wait_new) ? STREAM_RETRY_NS
									: UINT64_MAX;
}

/* The poller's ring is made here, on the control thread, before the
 * broker says it serves (its fd is one of those it holds from the start),
 * disabled: its poller enables it (streams_thread_start), which makes the
 * poller its single issuer, so DEFER_TASKRUN can hold its task work until
 * the poller's own enter. A kernel without those (before 6.1) gets a plain
 * ring; none at all (io_uring disabled, or --stream-io calls): calls. */
static void streams_ring_make(struct source_streams *ss, struct poller *p)
{
	struct io_uring_params params;
	int r;

	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		       IORING_SETUP_SUBMIT_ALL | IORING_SETUP_R_DISABLED;
	r = io_uring_queue_init_params(2 * STREAM_OPS, &ss->ring, &params);
	if (r == -EINVAL) {
		memset(&params, 0, sizeof(params));
		r = io_uring_queue_init_params(2 * STREAM_OPS, &ss->ring, &params);
	}
	if (r < 0) {
		onering_log(ONERING_LOG_WARN, "poller %u: no io_uring for completion-mode sockets "
			    "(%s): recv/send calls instead", p->idx, strerror(-r));
		return;
	}
	ss->ring_made = true;
	ss->uring_disabled = params.flags & IORING_SETUP_R_DISABLED;
	ss->uring = !ss->uring_disabled;
}

static void streams_thread_start(struct broker_source *src)
{
	struct source_streams *ss = (struct source_streams *)src;
	struct poller *p = src->p;

	if (ss->uring_disabled) {
		/* liburing 2.3 (Debian 12) declares io_uring_enable_rings but
		 * does not export it: the register call itself. */
		int r = (int)syscall(__NR_io_uring_register, ss->ring.ring_fd,
				     IORING_REGISTER_ENABLE_RINGS, NULL, 0);
		if (r < 0)
			r = -errno;
		if (r < 0) {
			onering_log(ONERING_LOG_WARN, "poller %u: cannot enable its io_uring (%s): "
				    "completion-mode sockets through recv/send calls", p->idx,
				    strerror(-r));
			return;
		}
		ss->uring_disabled = false;
		ss->uring = true;
	}
	if (ss->uring)
		onering_log(ONERING_LOG_INFO, "poller %u: completion-mode sockets through io_uring",
			    p->idx);
}

static void streams_destroy(struct broker_source *src)
{
	struct source_streams *ss = (struct source_streams *)src;

	if (ss->ring_made)
		io_uring_queue_exit(&ss->ring);
	broker_source_free(src);
}

static const struct broker_source_ops streams_ops = {
	.name = "streams",
	.poll = streams_poll,
	.next_deadline = streams_next_deadline,
	.thread_start = streams_thread_start,
	.destroy = streams_destroy,
};

int broker_source_streams_create(struct poller *p, struct broker_source **out)
{
	*out = broker_source_alloc(p, &streams_ops, sizeof(struct source_streams));
	if (!*out)
		return -ENOMEM;
	if (p->b->cfg.stream_io == BROKER_STREAM_IO_URING)
		streams_ring_make((struct source_streams *)*out, p);
	return 0;
}
