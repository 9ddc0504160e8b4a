/* SPDX-License-Identifier: MIT */
/*
 * Completion-mode sockets (ABI 1.8; stream.c, accept.c): the broker moves
 * the bytes of a client's sockets. It receives into the queue's receive
 * buffers (in the client's consumer segment) and publishes RECV records,
 * sends what the client put in its stream area when it posts SEND, and
 * accepts connections on listening sockets (accept.c, the control thread).
 *
 * Ownership: a queue's struct broker_streams and every connection of it
 * belong to the queue's poller (the home of every stream subscription);
 * the control thread creates them before the queue or the subscription is
 * published and frees them after the grace period that ends them.
 *
 * The broker never blocks on a client's socket: receives and sends with
 * MSG_DONTWAIT (batched through the poller's io_uring, or as calls),
 * shutdown (never blocks), and accept through io_uring.
 * Every number a client writes (offsets, lengths, buffer indices, peer
 * addresses) is copied once and checked before use.
 */
#ifndef ONERING_BROKER_STREAM_H
#define ONERING_BROKER_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/rcu.h"
#include "shm/abi.h"
#include "shm/counters.h"

struct broker;
struct broker_queue;
struct broker_source;
struct broker_sub;
struct onering_request;
struct poller;

/* A SEND waiting or under way (a node of its queue's pool). */
struct broker_send {
	uint64_t off;  /* in the consumer segment, checked */
	uint32_t len;
	uint32_t done; /* bytes sent so far */
	uint64_t tag;
	uint16_t flags; /* ONERING_SEND_* */
	int32_t refused; /* not 0: never sent; its SENT record says this, in its turn */
	struct broker_send *next;
};

/* A record that found its ring full: kept in order until it fits. */
struct broker_stream_rec {
	struct onering_event e;
	struct broker_stream_rec *next;
};

/* One connection or listener (struct broker_sub.conn), poller-owned after
 * the subscription is published. */
struct broker_conn {
	struct broker_sub *s;
	bool dgram;     /* datagrams: one per buffer, boundaries kept */
	bool messages;  /* datagram or seqpacket: one receive takes one message */
	bool tcp;       /* TCP (AF_INET/AF_INET6 stream): a short receive drained it */
	int family;     /* SO_DOMAIN */
	bool listener;  /* accepts (accept.c); never in a poller's epoll */
	bool announced; /* ACCEPTED published (true from the start for added sockets) */
	bool rx_ready;  /* the last readiness edge was not drained to EAGAIN */
	bool rx_short_ok; /* that edge said only EPOLLIN: a short receive drained it */
	bool rx_done;   /* end of stream or an error published: no more receives */
	bool tx_ready;  /* no EAGAIN since the last EPOLLOUT edge */
	bool tx_failed; /* a send failed: later SENDs fail at once */
	bool shut_asked; /* CLOSE_WRITE: shut down the sending side once drained */
	bool close_asked; /* CLOSE: close once the SENDs before it are done */
	uint8_t waits;  /* CONN_IDLE, CONN_IO or CONN_RETRY (stream.c): on which list */
	/* Set (release) by the control thread once the socket is in its
	 * poller's epoll, or accepting: until then a request naming it - ids
	 * are predictable - is refused, so the poller never puts on its lists
	 * a connection the control thread may still end and free at once
	 * (arming failed). The poller also sets it on the socket's first
	 * epoll report, which proves the arming succeeded (broker_stream_event). */
	ONERING_ATOMIC(uint32_t) armed;
	uint32_t listener_id; /* accepted: its listener's sub_id (for ACCEPTED) */
	uint32_t nr_sends;
	struct broker_send *sq_head, **sq_tail;
	struct cds_list_head wait_node; /* in its queue's io or retry list */
	/* accept.c (the control thread's): the listener's multishot accept, and
	 * its cursor over its queue's group (the member the next connection
	 * is offered to first). */
	struct cds_list_head listen_node;
	bool accept_armed;
	bool accept_again; /* its multishot ended with a connection: arm at once */
	uint32_t next_member;
};

/* A queue's stream area and what the poller keeps about it. */
struct broker_streams {
	unsigned char *seg;  /* the consumer segment's base */
	uint64_t area_off;   /* the area: [area_off, area_off + area_size) of it */
	uint64_t area_size;
	uint32_t nr_rx, nr_tx, buf_size;
	/* Poller-owned. */
	uint32_t *free_rx;   /* stack of free receive buffers */
	uint32_t nr_free_rx;
	uint8_t *rx_out;     /* per receive buffer: 1 while the client holds it */
	struct broker_send *send_pool;
	struct broker_send *free_sends;
	struct cds_list_head io;       /* connections with a receive or a send to make */
	struct cds_list_head retry;    /* connections whose receive waits for a buffer
					* or for ring space */
	struct broker_stream_rec *ov_head, **ov_tail;
	bool busy;           /* counted in the poller's streams source */
	/* The poller writes them, except CONNECTIONS, ACCEPTED and REFUSED: the
	 * control thread's (one writer each: broker_count); stats read. */
	ONERING_ATOMIC(uint64_t) ctr[ONERING_SC_NR];
};

/* Control thread: the stream area of a queue (rx + tx buffers of buf_size
 * bytes at area_off of its consumer segment, base seg). 0, -ENOMEM. */
int broker_streams_create(unsigned char *seg, uint64_t area_off, uint32_t nr_rx, uint32_t nr_tx,
			  uint32_t buf_size, struct broker_streams **out);
/* Close socket fd at once, whatever SO_LINGER says (it is set off first):
 * SO_LINGER - which a client can set on a socket it passed, or on the
 * listener its connections inherit it from - would make close() sleep up
 * to its linger time, on the control thread. */
void broker_close_nolinger(int fd);

/* After the queue's grace period. Safe on NULL. */
void broker_streams_free(struct broker_streams *st);

/* Control thread: a connection's state for s (listener: accepts; accepted:
 * announce it with an ACCEPTED record naming listener_id). NULL: no memory. */
struct broker_conn *broker_conn_new(struct broker_sub *s, bool dgram, bool listener,
				    bool accepted, uint32_t listener_id);

/* Poller (fds source): epoll reported events on stream subscription s. */
void broker_stream_event(struct poller *p, struct broker_sub *s, uint32_t events);

/* Poller (request.c): SEND, CLOSE or DEL on stream subscription s, or
 * STREAM_DONE (s NULL) from q. 0, or -EPROTO. */
int broker_stream_request(struct poller *p, struct broker_queue *q, struct broker_sub *s,
			  const struct onering_request *req);

/* The streams source (one per poller): resumes connections that waited
 * for a buffer or ring space and places records that waited. */
int broker_source_streams_create(struct poller *p, struct broker_source **out);

#endif /* ONERING_BROKER_STREAM_H */
