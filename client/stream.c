/* SPDX-License-Identifier: MIT */
/*
 * Completion-mode sockets, the client's side (onering.h, ABI 1.8): the
 * stream area's geometry, the transmit buffers the library hands out, and
 * the requests (SEND, STREAM_DONE, CLOSE) on the submission ring. No
 * system call here but the add (a control request) and the kick every
 * submission may make.
 *
 * The receive buffers are the broker's to fill and the application's to
 * read until it gives them back; the transmit buffers are the library's
 * (a stack of free ones), the application's from onering_stream_buffer()
 * to its send, the broker's until the SENT record is given back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "client/records.h"

enum { TX_FREE = 0, TX_HELD = 1, TX_SENDING = 2 };

int client_stream_map(struct onering_queue *q, const struct onering_msg_queue_open *o, char *err,
		      size_t err_size)
{
	if (!q->open_req.stream_rx)
		return 0;
	if (!o->stream_rx) {
		snprintf(err, err_size, "the broker gave the queue no stream area (a broker before "
			 "ABI 1.8 has no completion mode)");
		return -EOPNOTSUPP;
	}
	const struct onering_events_ctl *ectl =
		(const struct onering_events_ctl *)((const char *)q->ev_seg.base +
						    ONERING_EVENTS_CTL_OFFSET);
	uint64_t off = onering_stream_offset(ectl->sq_capacity, q->open_req.words);
	uint64_t size = (uint64_t)(o->stream_rx + o->stream_tx) * o->stream_buf;
	if (o->stream_rx > ONERING_STREAM_BUFS_MAX || o->stream_tx > ONERING_STREAM_BUFS_MAX ||
	    o->stream_buf < ONERING_STREAM_BUF_MIN || o->stream_buf > ONERING_STREAM_BUF_MAX ||
	    !client_span_valid(off, size, q->cons_seg.size)) {
		snprintf(err, err_size, "the queue's stream area is not valid");
		return -EPROTO;
	}
	if (q->tx_state && q->stream_tx != o->stream_tx) {
		snprintf(err, err_size, "the restarted broker gave another stream area");
		return -EPROTO;
	}
	q->stream_base = (unsigned char *)q->cons_seg.base + off;
	q->stream_off = off;
	q->stream_rx = o->stream_rx;
	q->stream_tx = o->stream_tx;
	q->stream_buf = o->stream_buf;
	if (q->tx_state) /* moved to a restarted broker: every send of the old one is gone */
		memset(q->tx_state, TX_FREE, q->stream_tx ? q->stream_tx : 1);
	else {
		q->tx_state = calloc(o->stream_tx ? o->stream_tx : 1, 1);
		q->tx_free = calloc(o->stream_tx ? o->stream_tx : 1, sizeof(*q->tx_free));
		if (!q->tx_state || !q->tx_free)
			return -ENOMEM;
	}
	q->nr_tx_free = 0;
	for (uint32_t i = o->stream_tx; i-- > 0;)
		q->tx_free[q->nr_tx_free++] = i;
	return 0;
}

int onering_stream_add(struct onering_queue *q, int fd, uint64_t cookie, struct onering_sub *sub)
{
	struct onering_msg_sub_add a;

	if (!q || !sub || fd < 0)
		return -EINVAL;
	if (!q->stream_base) {
		client_set_error(q->att, "queue %u has no stream area: open it with "
				 "onering_queue_options.stream_rx", q->id);
		return -EINVAL;
	}
	memset(&a, 0, sizeof(a));
	a.kind = ONERING_EV_STREAM;
	a.cookie = cookie;
	a.home_node = -1;
	return client_sub_add(q, &a, fd, sub);
}

const void *onering_stream_data(const struct onering_queue *q, const struct onering_event *e)
{
	if (!q || !e || e->kind != ONERING_EV_STREAM || e->payload.stream.op != ONERING_STREAM_RECV ||
	    e->payload.stream.status < 0 || e->payload.stream.buf >= q->stream_rx)
		return NULL;
	/* Broker-written: the bytes must lie in their buffer. */
	uint64_t off = e->payload.stream.offset, len = (uint32_t)e->payload.stream.status;
	uint64_t start = q->stream_off + (uint64_t)e->payload.stream.buf * q->stream_buf;
	if (off < start || off - start >= q->stream_buf || len > q->stream_buf - (off - start))
		return NULL;
	return (const unsigned char *)q->cons_seg.base + off;
}

const struct sockaddr *onering_stream_peer(const struct onering_queue *q,
					   const struct onering_event *e, uint32_t *len)
{
	const unsigned char *data = onering_stream_data(q, e);

	if (!data || e->payload.stream.offset - q->stream_off -
				     (uint64_t)e->payload.stream.buf * q->stream_buf !=
			     ONERING_STREAM_ADDR_BYTES)
		return NULL;
	const struct onering_stream_addr *a =
		(const struct onering_stream_addr *)(data - ONERING_STREAM_ADDR_BYTES);
	if (a->len == 0 || a->len > sizeof(a->addr))
		return NULL;
	if (len)
		*len = a->len;
	return (const struct sockaddr *)a->addr;
}

size_t onering_stream_buffer_size(const struct onering_queue *q)
{
	return q && q->stream_base ? q->stream_buf - ONERING_STREAM_ADDR_BYTES : 0;
}

/* Transmit buffer i's first byte (the address header before it). */
static unsigned char *tx_buffer(const struct onering_queue *q, uint32_t i)
{
	return q->stream_base + (uint64_t)(q->stream_rx + i) * q->stream_buf +
	       ONERING_STREAM_ADDR_BYTES;
}

void *onering_stream_buffer(struct onering_queue *q)
{
	if (!q || !q->stream_base) {
		errno = EINVAL;
		return NULL;
	}
	if (q->nr_tx_free == 0) {
		errno = EAGAIN;
		return NULL;
	}
	uint32_t i = q->tx_free[--q->nr_tx_free];
	q->tx_state[i] = TX_HELD;
	return tx_buffer(q, i);
}

/* The transmit buffer data lies in, or UINT32_MAX. */
static uint32_t tx_index(const struct onering_queue *q, uint64_t off)
{
	uint64_t tx0 = q->stream_off + (uint64_t)q->stream_rx * q->stream_buf;

	if (off < tx0)
		return UINT32_MAX;
	uint64_t i = (off - tx0) / q->stream_buf;
	return i < q->stream_tx ? (uint32_t)i : UINT32_MAX;
}

/* May len bytes at data be sent: inside one buffer of q's stream area, and,
 * for a transmit buffer, one handed out and not sent yet? Its offset in the
 * consumer segment into *off. */
static bool send_span_ok(const struct onering_queue *q, const void *data, size_t len,
			 uint64_t *off)
{
	const unsigned char *p = data;

	if (!q || !q->stream_base || !data || len == 0 || p < q->stream_base)
		return false;
	uint64_t rel = (uint64_t)(p - q->stream_base);
	uint64_t area = (uint64_t)(q->stream_rx + q->stream_tx) * q->stream_buf;
	if (rel >= area || len > q->stream_buf - rel % q->stream_buf)
		return false; /* outside the area, or running into the next buffer */
	*off = q->stream_off + rel;
	uint32_t t = tx_index(q, *off);
	return t == UINT32_MAX || q->tx_state[t] == TX_HELD;
}

static int send_req(struct onering_queue *q, struct onering_sub conn, const void *data,
		    size_t len, uint16_t flags, uint64_t tag)
{
	struct onering_request req;
	uint64_t off;

	if (!send_span_ok(q, data, len, &off))
		return -EINVAL;
	uint32_t t = tx_index(q, off);
	memset(&req, 0, sizeof(req));
	req.op = ONERING_REQ_SEND;
	req.flags = flags;
	req.sub_id = conn.id;
	req.sub_gen = conn.gen;
	req.user_data = tag;
	req.arg[0] = off;
	req.arg[1] = len;
	int r = client_submit(q, &req);
	if (r == 0 && t != UINT32_MAX)
		q->tx_state[t] = TX_SENDING;
	return r;
}

int onering_stream_send(struct onering_queue *q, struct onering_sub conn, const void *data,
			size_t len, uint64_t tag)
{
	return send_req(q, conn, data, len, 0, tag);
}

int onering_stream_sendto(struct onering_queue *q, struct onering_sub conn, const void *data,
			  size_t len, const struct sockaddr *addr, uint32_t addrlen, uint64_t tag)
{
	uint64_t off;

	/* Everything checked before the header is written: the bytes are the
	 * payload of one buffer, the header the 128 bytes before them. */
	if (!send_span_ok(q, data, len, &off) ||
	    (off - q->stream_off) % q->stream_buf != ONERING_STREAM_ADDR_BYTES)
		return -EINVAL;
	uint64_t rel = off - q->stream_off;
	struct onering_stream_addr *a =
		(struct onering_stream_addr *)(q->stream_base + rel - ONERING_STREAM_ADDR_BYTES);
	if (addr) {
		if (addrlen < sizeof(sa_family_t) || addrlen > sizeof(a->addr))
			return -EINVAL;
		memcpy(a->addr, addr, addrlen);
		a->len = addrlen;
		a->reserved = 0;
	}
	return send_req(q, conn, data, len, ONERING_SEND_TO, tag);
}

/* A receive buffer back to the broker. */
static int rx_done(struct onering_queue *q, uint32_t idx)
{
	struct onering_request req;

	memset(&req, 0, sizeof(req));
	req.op = ONERING_REQ_STREAM_DONE;
	req.arg[0] = 1;
	req.arg[1] = idx; /* indices packed as u32, little-endian: the first in arg[1]'s low half */
	return client_submit(q, &req);
}

int onering_stream_done(struct onering_queue *q, const struct onering_event *e)
{
	if (!q || !e || e->kind != ONERING_EV_STREAM || !q->stream_base)
		return -EINVAL;
	const struct onering_event_stream *st = &e->payload.stream;
	if (st->op == ONERING_STREAM_RECV) {
		if (st->buf >= q->stream_rx)
			return 0; /* end of stream or an error: no buffer */
		return rx_done(q, st->buf);
	}
	if (st->op != ONERING_STREAM_SENT)
		return 0;
	/* A send from a transmit buffer frees it; one from a receive buffer
	 * gives nothing back (its RECV record does, once given back itself). */
	uint32_t t = tx_index(q, st->offset);
	if (t != UINT32_MAX && q->tx_state[t] == TX_SENDING) {
		q->tx_state[t] = TX_FREE;
		q->tx_free[q->nr_tx_free++] = t;
	}
	return 0;
}

int onering_stream_close(struct onering_queue *q, struct onering_sub conn, unsigned flags)
{
	struct onering_request req;

	if (!q || (flags & ~(unsigned)(ONERING_CLOSE_WRITE | ONERING_CLOSE_ABORT)))
		return -EINVAL;
	memset(&req, 0, sizeof(req));
	req.op = ONERING_REQ_CLOSE;
	req.flags = (uint16_t)flags;
	req.sub_id = conn.id;
	req.sub_gen = conn.gen;
	return client_submit(q, &req);
}

int onering_stream_fd(struct onering_queue *q, struct onering_sub conn)
{
	struct onering_msg req, rep;
	int fd = -1;
	unsigned nfds = 0;

	if (!q)
		return -EINVAL;
	onering_msg_init(&req, ONERING_MSG_SUB_FD, 0);
	req.u.sub_fd.sub_id = conn.id;
	req.u.sub_fd.sub_gen = conn.gen;
	int r = client_request(q->att, &req, NULL, 0, &rep, &fd, 1, &nfds);
	if (r < 0)
		return r;
	return nfds == 1 ? fd : -EPROTO;
}
