/* SPDX-License-Identifier: MIT */
/*
 * The memory of completion-mode sockets (stream.h): a queue's stream area
 * state and a connection's, made and freed by the control thread (the
 * poller's side is stream.c, the control thread's accept.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/stream.h"

int broker_streams_create(unsigned char *seg, uint64_t area_off, uint32_t nr_rx, uint32_t nr_tx,
			  uint32_t buf_size, struct broker_streams **out)
{
	struct broker_streams *st = calloc(1, sizeof(*st));
	/* A SEND names a transmit or a receive buffer (an echo sends what it
	 * received): one send slot per buffer is as many as can be useful. */
	uint32_t nr_sends = nr_rx + nr_tx;

	if (!st)
		return -ENOMEM;
	st->seg = seg;
	st->area_off = area_off;
	st->area_size = (uint64_t)(nr_rx + nr_tx) * buf_size;
	st->nr_rx = nr_rx;
	st->nr_tx = nr_tx;
	st->buf_size = buf_size;
	st->free_rx = calloc(nr_rx ? nr_rx : 1, sizeof(*st->free_rx));
	st->rx_out = calloc(nr_rx ? nr_rx : 1, 1);
	st->send_pool = calloc(nr_sends ? nr_sends : 1, sizeof(*st->send_pool));
	if (!st->free_rx || !st->rx_out || !st->send_pool) {
		broker_streams_free(st);
		return -ENOMEM;
	}
	/* Popped from the top: buffer 0 first. */
	for (uint32_t i = nr_rx; i-- > 0;)
		st->free_rx[st->nr_free_rx++] = i;
	for (uint32_t i = 0; i < nr_sends; i++) {
		st->send_pool[i].next = st->free_sends;
		st->free_sends = &st->send_pool[i];
	}
	CDS_INIT_LIST_HEAD(&st->io);
	CDS_INIT_LIST_HEAD(&st->retry);
	st->ov_tail = &st->ov_head;
	*out = st;
	return 0;
}

void broker_streams_free(struct broker_streams *st)
{
	if (!st)
		return;
	while (st->ov_head) {
		struct broker_stream_rec *r = st->ov_head;
		st->ov_head = r->next;
		free(r);
	}
	free(st->free_rx);
	free(st->rx_out);
	free(st->send_pool);
	free(st);
}

struct broker_conn *broker_conn_new(struct broker_sub *s, bool dgram, bool listener,
				    bool accepted, uint32_t listener_id)
{
	struct broker_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->s = s;
	c->dgram = dgram;
	c->listener = listener;
	c->announced = !accepted;
	c->listener_id = listener_id;
	c->tx_ready = true; /* until a send says EAGAIN */
	c->sq_tail = &c->sq_head;
	CDS_INIT_LIST_HEAD(&c->wait_node);
	CDS_INIT_LIST_HEAD(&c->listen_node);
	return c;
}

void broker_close_nolinger(int fd)
{
	struct linger off = {0, 0};

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof(off)); /* ENOTSOCK: fine */
	close(fd);
}
