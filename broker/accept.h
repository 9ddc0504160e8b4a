/* SPDX-License-Identifier: MIT */
/*
 * Completion-mode sockets on the control thread (accept.c): their
 * subscriptions, and the io_uring that accepts on listening sockets.
 * Context of every function: the control thread.
 */
#ifndef ONERING_BROKER_ACCEPT_H
#define ONERING_BROKER_ACCEPT_H

#include <stddef.h>
#include <stdint.h>

struct broker;
struct broker_client;
struct broker_queue;
struct broker_sub;

/* The accept ring, in the control epoll under key. 0, or -errno (logged:
 * the broker runs on, refusing completion-mode listeners). */
int broker_accept_init(struct broker *b, uint64_t key);
void broker_accept_fini(struct broker *b);

/* A completion-mode subscription of c's queue q for socket fd (the broker's
 * copy: kept on success, the caller's to close on failure): a connected
 * stream, seqpacket or datagram socket, watched by q's poller, or a
 * listening one, accepted on here. listener_id: the listener a connection
 * was accepted on (announced with ACCEPTED), 0 for one the client added.
 * Counts against c's subscription and fd use (the caller checked the
 * quotas). 0 and *out, or -errno with a readable reason in why; on failure
 * *out is NULL and the fd the caller's, or (rarely: a request deleted the
 * published subscription meanwhile) *out is set and the fd is closed with
 * the subscription by the reap path. */
int broker_stream_sub_add(struct broker *b, struct broker_client *c, struct broker_queue *q,
			  int fd, uint64_t cookie, uint32_t prio, uint32_t listener_id,
			  struct broker_sub **out, char *why, size_t why_size);

/* s (kind STREAM) is being finalized: out of the gauges; a listener's
 * accept is cancelled before its fd closes. */
void broker_stream_sub_end(struct broker *b, struct broker_sub *s);

/* The accept ring's fd is readable: take its completions. */
void broker_accept_event(struct broker *b);

/* Arm again the listeners whose accept ended, once their pause is over.
 * Returns ms until it wants to run again, or -1: not needed. */
int broker_accept_tick(struct broker *b);

#endif /* ONERING_BROKER_ACCEPT_H */
