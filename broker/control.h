/* SPDX-License-Identifier: MIT */
/*
 * The control thread's two halves, and what one asks of the other
 * (private to broker/server.c and broker/handlers.c).
 *
 *   server.c    the socket server: socket directory, listen socket, accept
 *               and peer credentials, pending connections and their HELLO
 *               deadlines and caps, the fd limit, pidfds, the control epoll
 *               loop (broker_run), dropping clients, start and stop.
 *   handlers.c  one function per control message, the reply helpers, and
 *               queue teardown with its grace period.
 *
 * Everything here runs on the control thread only (or on the thread that
 * drives broker_state_init .. broker_state_fini in the fuzz target).
 */
#ifndef ONERING_BROKER_CONTROL_H
#define ONERING_BROKER_CONTROL_H

struct broker;
struct broker_client;
struct broker_queue;
struct onering_msg;

/* ---- server.c ------------------------------------------------------------ */

/* Drop client c: queues closed, fds closed, c freed; why logged and
 * counted, NULL for a peer that simply went away. */
void broker_client_drop(struct broker *b, struct broker_client *c, const char *why);
/* Watch attached client c's process through a pidfd. */
void broker_client_watch_process(struct broker *b, struct broker_client *c);

/* ---- handlers.c ---------------------------------------------------------- */

/* A bad message from c: counted, answered, and after too many, c dropped. */
void broker_client_bad_message(struct broker *b, struct broker_client *c,
			       const struct onering_msg *m, int status, const char *what);
/* Close n queues with one grace period. */
void broker_queues_close(struct broker *b, struct broker_queue **qs, unsigned n);
/* Finish the subscriptions pollers deleted (submission-ring DEL). */
void broker_reaped_drain(struct broker *b);

#endif /* ONERING_BROKER_CONTROL_H */
