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
 *
 * Errors: 0 or a negative errno; a failed system call is logged once where
 * it fails, with the errno and what it was for.
 */
#ifndef ONERING_BROKER_CONTROL_H
#define ONERING_BROKER_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

struct broker;
struct broker_client;
struct broker_queue;
struct onering_msg;

/* ---- server.c ------------------------------------------------------------ */

/*
 * Drop client c (dead, refused or misbehaving): its queues closed (one
 * grace period), its socket and pidfd out of the control epoll and closed,
 * c freed. why: logged and counted as a drop (ONERING_BC_DROPPED); NULL for
 * a peer that simply went away (no log, no count).
 * Context: control thread; waits for a grace period when c has queues.
 */
void broker_client_drop(struct broker *b, struct broker_client *c, const char *why);

/*
 * Watch attached client c's process through a pidfd in the control epoll,
 * so that its death is seen even if something keeps its socket open.
 * Returns 0, or a negative errno (logged here) when it could not: c is then
 * watched through its socket only, and stays attached.
 * Context: control thread; a few system calls.
 */
int broker_client_watch_process(struct broker *b, struct broker_client *c);

/*
 * Close fd, one of client c's or one it sent (what names it in the log).
 * Returns 0, or the negative errno of close(2), logged here; the fd is gone
 * either way (Linux frees it even when close reports an error).
 * Context: control thread.
 */
int broker_client_fd_close(const struct broker_client *c, int fd, const char *what);

/* Rate limit for a log line a peer can cause again and again: at most one
 * a second per limit, with the count of those suppressed meanwhile. */
struct broker_log_limit {
	uint64_t next_ns;
	uint32_t suppressed;
};

/*
 * Predicate: may the line limited by l be logged now? If so, *suppressed
 * is set to the number of lines not logged since the last one. errno is
 * left as it was, for the line to print.
 * Context: any thread that owns l; reads CLOCK_MONOTONIC.
 */
bool broker_log_allowed(struct broker_log_limit *l, uint32_t *suppressed);

/* ---- handlers.c ---------------------------------------------------------- */

/*
 * Close n queues with one grace period: out of their groups and the queue
 * table, grace period, reaped subscriptions finished, leftovers redelivered
 * to the rest of each group, then torn down. Returns nothing: teardown
 * cannot fail (what does is logged where it happens).
 * Context: control thread; blocks for a grace period (urcu_qsbr) when n > 0.
 */
void broker_queues_close(struct broker *b, struct broker_queue **qs, unsigned n);

/*
 * A bad message from c (what: which check it failed, for the log): counted
 * (ONERING_BC_BAD_MESSAGES), answered with status when m is not NULL, and
 * after MAX_BAD_MESSAGES of them c is dropped. Returns 0, or -EPROTO once c
 * was dropped (freed).
 * Context: control thread; sends one reply (MSG_DONTWAIT).
 */
int broker_client_bad_message(struct broker *b, struct broker_client *c,
			      const struct onering_msg *m, int status, const char *what);

/*
 * Finish the subscriptions pollers deleted (submission-ring DEL) and put
 * on the reap queue. Returns how many were finished.
 * Context: control thread; system calls: each source fd's epoll_ctl DEL and
 * close (queue.c, broker_sub_finalize).
 */
unsigned broker_reaped_drain(struct broker *b);

/*
 * Drop the clients of the queues the pollers found broken (a fault of the
 * shared-memory ring protocol, deliver_queue_fault) and put on the fault
 * queue. Returns how many clients were dropped.
 * Context: control thread; system calls: those of broker_client_drop.
 */
unsigned broker_faults_drain(struct broker *b);

#endif /* ONERING_BROKER_CONTROL_H */
