/* SPDX-License-Identifier: MIT */
/**
 * @file onering.h
 * libonering: take every event a server waits for from one shared-memory
 * ring, without a system call.
 *
 * A process attaches to a running broker (oneringd), opens one queue per
 * consumer thread, and adds subscriptions (a file descriptor, the events
 * wanted, a delivery mode and a 64-bit cookie) to a queue. The broker
 * watches the sources and writes one 64-byte record (struct onering_event,
 * shm/abi.h) per event into the queue's ring; onering_poll() reads them
 * with plain loads. onering_wait() spins for a budget, then sleeps until
 * the broker rings the queue's bell (an eventfd) or goes away.
 *
 * Conventions
 *  - Commands return 0 or a negative errno; batch calls return a count or a
 *    negative errno; onering_strerror() names any of them.
 *  - A queue (and everything done on it: poll, wait, collect, rearm, mod,
 *    del) belongs to one thread at a time. The attachment itself
 *    (onering_queue_open, onering_add) may be used from any thread: its
 *    control socket is serialised internally.
 *  - "No system call" below is a promise that a seccomp test checks.
 *  - -ECONNRESET means the broker is gone (died or shut down) and the
 *    library does not recover by itself (ONERING_ATTACH_NO_RECOVER, or it
 *    gave up): detach, and attach again to a restarted broker. -EAGAIN from
 *    a call while the broker is gone means the library is waiting for a
 *    broker of the same name and will move every queue to it.
 */
#ifndef ONERING_H
#define ONERING_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "shm/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ONERING_VERSION "0.1.0"

struct onering;       /* one attachment to a broker */
struct onering_queue; /* one consumer queue (one consumer thread) */

/** A subscription: the broker's id and the generation that makes it unique. */
struct onering_sub {
	uint32_t id;
	uint32_t gen;
};

/** Delivery modes for onering_add(). */
enum onering_mode {
	ONERING_EDGE = 0,    /**< one record per readiness edge (default) */
	ONERING_ONESHOT = 1, /**< one record, then disarmed until onering_rearm() */
	ONERING_LEVEL = 2,   /**< one record while ready; re-delivered by onering_collect() */
	ONERING_DISPATCH = 3, /**< one record, then disarmed until that record is done:
				   onering_done() re-arms it, through the ring (on any
				   queue; in ack mode it also ends the record's flight) */
};

/** Options for onering_attach_opts(); zero-initialise and set what you need. */
struct onering_attach_options {
	const char *name;       /**< instance name; NULL = $ONERING_NAME or "default" */
	const char *socket_dir; /**< NULL = $ONERING_SOCKET_DIR, else /run/onering as root,
				     else $XDG_RUNTIME_DIR/onering */
	uint32_t trust_uid;     /**< the broker may run as this uid too; 0 = only root or
				     this process's own uid (or $ONERING_TRUST_UID). The
				     library checks the server's uid before it sends
				     anything: attach fails with -EPERM otherwise */
	uint32_t flags;         /**< ONERING_ATTACH_* */
	uint64_t recover_timeout_ns; /**< give up waiting for a gone broker after this
				     long (then -ECONNRESET, as with recovery off);
				     0 = wait as long as the application does */
	uint64_t recover_step_ns; /**< longest pause between two connect attempts
				     while the broker is gone (the pauses double
				     from 1 ms up to it); 0 = 50 ms */
};

/**
 * onering_attach_options.flags.
 *
 * Recovery (on unless this flag or $ONERING_RECOVER=0 turns it off): when
 * the broker dies or shuts down, the library waits for a broker of the same
 * name, attaches to it, opens every queue again with its options (same
 * group), adds every subscription again (the library still holds the fds),
 * re-arms timers at their next expiry and watches words from the last
 * value reported, and the next onering_poll(), onering_wait() or
 * onering_queue_arm() of each queue returns one ONERING_EV_CONTROL record
 * with payload.control.code ONERING_CTL_RESTARTED first (.arg: the queue's
 * subscriptions that could not be restored, .status: why the first failed,
 * .flow: requests and posts the dead broker never took). Handles
 * (struct onering_sub), group ids and word pointers stay valid. Meanwhile
 * posts, requests and control calls fail with -EAGAIN. The broker's death
 * is noticed by onering_wait() (and onering_queue_fd()'s readiness); a
 * thread that only calls onering_poll() notices a shutdown, not a crash.
 * docs/semantics.md says what survives and what is lost.
 */
#define ONERING_ATTACH_NO_RECOVER 0x1u /**< return -ECONNRESET instead of recovering */

/** onering_queue_options.flags */
#define ONERING_QUEUE_NODE 0x1u /**< place the queue on .node, not on the caller's node */
#define ONERING_QUEUE_ACK 0x2u  /**< ack mode: a record of this process's subscription
				     taken from the queue is in flight until onering_done() */

/**
 * What onering_wait() does while no record has come (onering_queue_options.idle),
 * named as users of Aeron and Seastar know them.
 */
enum onering_idle {
	ONERING_IDLE_BACKOFF = 0, /**< spin for spin_ns (the clock read once every 64
				       turns), then sleep on the queue's bell (no
				       sched_yield: on a shared core a yield can cost
				       a scheduler tick of latency); the default. 0
				       also lets $ONERING_IDLE choose */
	ONERING_IDLE_BUSY = 1,    /**< spin until the records or the timeout come, never
				       sleep: the lowest latency, a core at 100 %; the
				       broker's death is still noticed within about 1 ms
				       (one poll() of the control socket per ms) */
	ONERING_IDLE_OVERPROVISIONED = 2, /**< no spin: sleep as soon as the ring is
				       found empty (spin_ns is not used), for threads that
				       share their core with other work */
};

/** Options for onering_queue_open(); zero-initialise and set what you need. */
struct onering_queue_options {
	uint32_t flags;         /**< ONERING_QUEUE_* */
	uint32_t node;          /**< NUMA node, with ONERING_QUEUE_NODE */
	uint32_t capacity;      /**< event slots, a power of two; 0 = 1024 */
	uint32_t sq_capacity;   /**< submission slots, a power of two; 0 = 256 */
	uint32_t collect_every; /**< run onering_collect() every N consumed records;
				     0 = 64 */
	uint64_t spin_ns;       /**< onering_wait() spin budget before sleeping
				     (ONERING_IDLE_BACKOFF); 0 = 50 us */
	const char *group;      /**< join this group (created with the broker's
				     defaults if missing): records of the group's
				     subscriptions and posts are balanced over its
				     members. NULL or "": a private queue, which gets
				     the records of its own subscriptions only */
	uint32_t packet_snap;   /**< bytes of each NIC packet to keep with its record
				     (rounded up to 64, at most 2048); 0 = none: the
				     queue then takes no NIC records */
	uint32_t words;         /**< watched words in the queue's shared page (at most
				     4096): see onering_queue_words() */
	uint32_t idle;          /**< enum onering_idle: what onering_wait() does
				     while nothing comes. 0 (ONERING_IDLE_BACKOFF) =
				     $ONERING_IDLE if set (busy, backoff or
				     overprovisioned; another value is logged once per
				     queue and backoff used), else backoff */
	uint32_t levels;        /**< priority levels, 1..ONERING_PRIO_LEVELS (4); 0 = 1.
				     Each level is a ring of .capacity slots (counted
				     against the client's ring-slot quota); a record of
				     priority p goes to level min(p, levels - 1), and
				     onering_poll()/onering_wait() take the highest
				     level that has records first
				     (docs/semantics.md, Priorities) */
	/* (ABI 1.8) A stream area, for completion-mode sockets
	 * (onering_stream_add): the broker receives into and sends from it.
	 * Counted against the client's ring-slot quota, 64 bytes a slot. */
	uint32_t stream_rx;     /**< receive buffers (1..4096); 0 = no stream area */
	uint32_t stream_tx;     /**< transmit buffers (0..4096); 0 = as many as stream_rx */
	uint32_t stream_buf;    /**< bytes per buffer, a power of two 256..1 MiB; 0 = 16 KiB */
};

/**
 * Attach to the broker instance name (NULL: the default instance).
 * @param out receives the attachment
 * @return 0;
 *   -ENOENT broker not running (the message names the socket path);
 *   -EACCES the broker refused this uid (start it with --allow-uid);
 *   -EPROTO the broker speaks another ABI or protocol version (both named);
 *   -ENXIO the socket answered for another instance name;
 *   -ENOMEM; other -errno from socket/connect.
 *   The reason is also logged (one line) on failure.
 * Context: any thread; system calls; blocks for at most the broker's reply.
 */
int onering_attach(const char *name, struct onering **out);

/** onering_attach() with options. Same returns. */
int onering_attach_opts(const struct onering_attach_options *opts, struct onering **out);

/**
 * Close every queue of this attachment, then the attachment. The broker
 * reclaims the queue memory and forgets the subscriptions.
 * Context: any thread, once no other thread uses the attachment or its
 * queues; system calls. Safe on NULL.
 */
void onering_detach(struct onering *att);

/**
 * The last readable reason an attach or control call failed, or "".
 * Context: any thread; the text is per attachment (or per thread for attach).
 */
const char *onering_last_error(const struct onering *att);

/**
 * Open a consumer queue: the broker creates its ring segments and sends
 * them; this maps them (the event ring read-only). The memory is placed on
 * the NUMA node of the CPU the caller runs on (sched_getcpu()), or on
 * opts->node with ONERING_QUEUE_NODE, and the queue is served by that node's
 * poller when there is one: open a queue from the thread that consumes it.
 * @param opts NULL for defaults
 * @return 0; -EINVAL for a capacity that is not a power of two or too big,
 *   a node the machine does not have, or an idle that is not an enum
 *   onering_idle;
 *   -ECONNRESET broker gone; -ENOMEM; -EPROTO bad segments from the broker;
 *   other -errno.
 * Context: any thread; system calls.
 */
int onering_queue_open(struct onering *att, const struct onering_queue_options *opts,
		       struct onering_queue **out);

/**
 * The NUMA node the queue's memory is on, or -1 when it is not bound.
 * Context: any thread; no system call.
 */
int onering_queue_node(const struct onering_queue *q);

/**
 * Close a queue: its subscriptions are deleted and its memory unmapped.
 * Context: the queue's thread; system calls. Safe on NULL.
 */
void onering_queue_close(struct onering_queue *q);

/**
 * Subscribe to readiness of fd on queue q. The broker keeps its own
 * duplicate of fd (sent with SCM_RIGHTS) until the subscription is deleted;
 * it only asks readiness and never reads or writes it.
 * @param events EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI (EPOLLERR and
 *   EPOLLHUP are always reported)
 * @param mode   enum onering_mode
 * @param cookie returned in every record of this subscription
 * @param sub    receives the subscription
 * @return 0; -EBADF fd is not open; -EINVAL bad events or mode, or fd cannot
 *   be polled (regular files); -ENOSPC the broker's subscription table is full;
 *   -ECONNRESET broker gone.
 * Context: any thread; system calls (one request/reply on the control socket).
 */
int onering_add(struct onering_queue *q, int fd, uint32_t events, unsigned mode,
		uint64_t cookie, struct onering_sub *sub);

/** Options for onering_add_opts(); zero-initialise, then set fd and the rest. */
struct onering_add_options {
	int fd;           /**< the source */
	uint32_t events;  /**< as onering_add() */
	unsigned mode;    /**< enum onering_mode */
	uint64_t cookie;  /**< returned in every record */
	uint32_t group;   /**< target group id (onering_group_id()); 0 = the queue's
			       group, or the queue itself when it is private */
	int home_node;    /**< NUMA node whose poller watches the source; set
			       ONERING_ADD_HOME to use it, else the queue's */
	unsigned flags;   /**< ONERING_ADD_* */
	unsigned kind;    /**< the kind its records carry: ONERING_EV_FD (0 means FD),
			       ONERING_EV_SIGNAL, ONERING_EV_FILE, ONERING_EV_AIO or
			       ONERING_EV_PROCESS (the helpers below set it) */
	unsigned priority; /**< its records' priority, 0 (the default, lowest) ..
				ONERING_PRIO_LEVELS - 1: they go to level
				min(priority, levels - 1) of the queue that gets
				them, and carry it in flags (onering_event_prio());
				a group's backlog hands higher priorities out first */
};

/** onering_add_options.flags */
#define ONERING_ADD_HOME 0x1u /**< use .home_node */

/**
 * onering_add() with a target group, a home node and a priority. A subscription
 * targeting a group has its records balanced over the group's members by
 * the group's policy (onering_group_id(), `onering tune`); it stays owned
 * by this queue's attachment: only this process can mod, rearm or delete
 * it (from any of its queues), and it is deleted when this queue closes.
 * LEVEL subscriptions are always delivered to this queue (only the owner
 * can run the collection call on its fd).
 * @return as onering_add(); -ENOENT no such group; -EINVAL a node the
 *   broker does not have, or a priority >= ONERING_PRIO_LEVELS (refused
 *   here; the broker refuses it too, with a reason in onering_last_error()).
 * Context: any thread; system calls (one request/reply).
 */
int onering_add_opts(struct onering_queue *q, const struct onering_add_options *opts,
		     struct onering_sub *sub);

/**
 * The id of the group called name, creating it with the broker's defaults
 * if it does not exist. Ids are stable for the broker's lifetime.
 * @return 0; -EINVAL bad name ([A-Za-z0-9_.-]{1,31}); -ENOSPC the broker
 *   has its maximum number of groups; -ECONNRESET broker gone.
 * Context: any thread; system calls (one request/reply).
 */
int onering_group_id(struct onering *att, const char *name, uint32_t *id);

/**
 * The id of the group called name, if it exists: onering_group_id()
 * without creating it (for a tool that must not leave a group behind, such
 * as `onering notify`). The id is learned for onering_post() as
 * onering_group_id()'s is.
 * @return 0; -ENOENT no such group; -EINVAL bad name; -ECONNRESET broker
 *   gone.
 * Context: any thread; system calls (one request/reply).
 */
int onering_group_find(struct onering *att, const char *name, uint32_t *id);

/**
 * The group q is a member of, or 0 for a private queue.
 * Context: any thread; no system call.
 */
uint32_t onering_queue_group(const struct onering_queue *q);

/**
 * Post a user event to a group through q's submission ring: the broker
 * delivers one ONERING_EV_USER record (payload.user: flow and data, cookie)
 * to a member chosen by the group's policy; a sticky group keeps one flow
 * on one queue while it has unconsumed records there.
 *
 * A post is never lost silently. The library takes only group ids this
 * attachment has learned (from onering_group_id(), onering_group_find() or
 * as the group of a queue it opened); any other id is refused here. A post the broker cannot
 * deliver - the group no longer exists, or this client may not post to it -
 * is counted (`onering stat`: posts refused) and comes back on q as an
 * ONERING_EV_CONTROL record returned by onering_poll()/onering_wait():
 * payload.control.code ONERING_CTL_POST_REFUSED, .arg the group id,
 * .status -ENOENT (no such group) or -EACCES (not allowed), .flow and the
 * record's cookie those of the post. Until q's ring has a free slot for
 * that record the broker leaves the post in the submission ring.
 * @param group  target group id
 * @param flow   flow key (sticky affinity), copied into the record
 * @param data   up to 24 bytes copied into the record; may be NULL if len 0
 * @return 0; -EINVAL len > 24 or group 0; -ENOENT group is not an id this
 *   attachment has learned; -EAGAIN submission ring full (also while the
 *   group's backlog is full: the broker stops taking posts until it drains)
 *   - retry.
 * Context: the queue's thread; no system call while the poller is awake
 *   (one eventfd write when it sleeps).
 */
int onering_post(struct onering_queue *q, uint32_t group, uint64_t flow, const void *data,
		 size_t len, uint64_t cookie);

/**
 * onering_post() at a priority: the record carries priority (flags,
 * onering_event_prio()), goes to level min(priority, levels - 1) of the
 * member that gets it, and waits in the group's backlog of its own
 * priority, which the broker hands out before the lower ones. Records of
 * one flow keep their order within one priority, not across priorities.
 * One submission ring is one line: a post the broker cannot take yet (its
 * priority's backlog is full) holds back every later post of q, higher
 * ones too - post urgent records from another queue if that matters.
 * @param priority 0 (lowest, what onering_post() uses) .. ONERING_PRIO_LEVELS - 1
 * @return as onering_post(); -EINVAL also for priority >= ONERING_PRIO_LEVELS.
 * Context: as onering_post().
 */
int onering_post_prio(struct onering_queue *q, uint32_t group, uint64_t flow, const void *data,
		      size_t len, uint64_t cookie, unsigned priority);

/**
 * Change the events of a subscription, through the submission ring. The
 * broker applies it on its next poll loop; if the serving poller announced
 * an idle sleep, this wakes it with one eventfd write.
 * @return 0; -ENOENT not a live subscription of this queue; -EINVAL bad
 *   events; -EAGAIN submission ring full (the broker drains it every poll
 *   loop: retry).
 * Context: the queue's thread; no system call while the poller is awake
 *   (one eventfd write when it sleeps).
 */
int onering_mod(struct onering_queue *q, struct onering_sub sub, uint32_t events);

/**
 * Delete a subscription. Once this returns, no record of sub is ever
 * returned by any queue of this attachment, even one already in a ring (the
 * generation in each record is checked). In ack mode (ONERING_QUEUE_ACK) a
 * record taken before may still be in another thread's hands: then this
 * returns 1, and onering_teardown() waits until it is done. The broker drops the source and closes its
 * duplicate of the fd when it drains the request (next poll loop). Until
 * then the file stays open in the broker: to end a connection at once,
 * shutdown(2) the socket before close(2).
 * @return 0 nothing of it in flight; 1 a record of it is still being
 *   processed (ack mode); -ENOENT not a live subscription of this queue;
 *   -ETIMEDOUT the submission ring stayed full for 1 s (the broker is
 *   stuck): the subscription is cancelled here, and its broker side is
 *   released when the queue closes.
 * Context: the queue's thread; no system call while the poller is awake (one
 *   eventfd write when it sleeps); if the submission ring is full it spins
 *   (bounded) for the broker to drain it.
 */
int onering_del(struct onering_queue *q, struct onering_sub sub);

/**
 * The record ev, taken from q, is processed. For a DISPATCH subscription
 * this re-enables it through the submission ring - the way to re-arm
 * DISPATCH, on any queue. On a queue in ack mode (ONERING_QUEUE_ACK) it
 * also ends the record's flight (onering_del()/onering_teardown() wait for
 * that), for every mode; and a group member in ack mode gives the record
 * back to the ring at once if every record before it in its batch is done
 * too, so that its death redelivers only what it had not done (posts and
 * other clients' records are accepted for this). Call it once per record.
 * @return 0 (also for a record of a subscription deleted since: nothing to
 *   re-arm); -EINVAL ev cannot be done: a packet, word or control record;
 *   without ack mode a post, another client's (FOREIGN) or any record that
 *   is not DISPATCH; in ack mode a record of this process's subscription
 *   that is not in flight; -EAGAIN submission ring full while re-arming
 *   (the record is done; call onering_rearm() later).
 * Context: the thread that took ev; no system call while the poller is awake.
 */
int onering_done(struct onering_queue *q, const struct onering_event *ev);

/**
 * Wait until no record of sub is in flight (ack mode) - after onering_del()
 * returned 1 - so the state the records point at can be freed. Bounded.
 * @return 0; -ETIMEDOUT still in flight after timeout_ns.
 * Context: any thread but one holding such a record; sleeps in 50 us steps.
 */
int onering_teardown(struct onering_queue *q, struct onering_sub sub, int64_t timeout_ns);

/**
 * Re-enable a ONESHOT or DISPATCH subscription after its record, through
 * the submission ring (applied on the broker's next poll loop, as
 * onering_mod). DISPATCH is normally re-armed by onering_done(); this is for
 * re-arming it after onering_done() returned -EAGAIN, or without a record.
 * @return 0; -ENOENT not live; -EINVAL neither ONESHOT nor DISPATCH;
 *   -EBUSY a DISPATCH record of sub is in flight (taken by an ack-mode
 *   queue, not done yet: its onering_done() re-arms it); -EAGAIN ring full
 *   (retry).
 * Context: the queue's thread; no system call while the poller is awake (one
 *   eventfd write when it sleeps).
 */
int onering_rearm(struct onering_queue *q, struct onering_sub sub);

/** One user event for onering_post_burst() (as posted; the record carries the same). */
struct onering_user_event {
	uint64_t flow;    /**< flow key */
	uint64_t cookie;  /**< the record's cookie */
	uint32_t len;     /**< bytes of data used, at most 24 */
	uint8_t data[24]; /**< copied into the record */
};

/**
 * Post up to n user events to group through q's submission ring, published
 * together: each is written in place in a free slot (the bytes of data past
 * len as 0), then one release store and one atomic OR (the queue's bell)
 * for the burst. Refusals as for onering_post().
 * @return how many were posted (fewer than n when the ring filled: retry
 *   the rest); -EINVAL group 0 or a len > 24 (nothing posted); -ENOENT
 *   group is not an id this attachment has learned; -EPROTO corrupt ring.
 * Context: the queue's thread; no system call while the poller is awake.
 */
int onering_post_burst(struct onering_queue *q, uint32_t group, const struct onering_user_event *posts,
		       unsigned n);

/**
 * onering_post_burst() at a priority, every post of the burst at the same
 * one (as onering_post_prio(): the records carry it and go to level
 * min(priority, levels - 1)). struct onering_user_event has no priority of
 * its own: its size and layout are those of 0.3, whose callers need not
 * zero its padding.
 * @return as onering_post_burst(); -EINVAL also for priority >=
 *   ONERING_PRIO_LEVELS (nothing posted).
 * Context: as onering_post_burst().
 */
int onering_post_burst_prio(struct onering_queue *q, uint32_t group,
			    const struct onering_user_event *posts, unsigned n, unsigned priority);

/* ---- timers, signals, files, processes, async IO, words ---------------- */

/** onering_timer_arm() flags */
#define ONERING_TIMER_ABS ONERING_TIMER_ABSTIME /**< value is an absolute time */
#define ONERING_TIMER_WALL ONERING_TIMER_REALTIME /**< ... on CLOCK_REALTIME */

/**
 * Create a broker-side timer owned by q, disarmed. Its records
 * (ONERING_EV_TIMER, payload.timer.expirations, priority 0) come to q; delete it with
 * onering_del() (no record of it is returned after that).
 * @return 0; -ENOSPC subscription table full; -ECONNRESET broker gone.
 * Context: any thread; system calls (one request/reply).
 */
int onering_timer_create(struct onering_queue *q, uint64_t cookie, struct onering_sub *sub);

/**
 * Arm, re-arm or disarm a timer through the submission ring. The first
 * expiry is value_ns from now (or at value_ns, with ONERING_TIMER_ABS, on
 * CLOCK_MONOTONIC or, with ONERING_TIMER_WALL, CLOCK_REALTIME - taken once:
 * a later clock step does not move it); then every period_ns (0: one-shot).
 * value_ns 0 disarms. A record says how many periods elapsed since the last
 * one (several when the poller or the ring lagged); re-arming cancels what
 * was armed. Expiries fire within the poller's loop time when it is busy,
 * and about 50-100 us late when it sleeps (docs/semantics.md).
 * @return 0; -ENOENT not a live timer of this process; -EAGAIN ring full.
 * Context: the queue's thread; no system call while the poller is awake (one
 *   eventfd write when it sleeps).
 */
int onering_timer_arm(struct onering_queue *q, struct onering_sub sub, uint64_t value_ns,
		      uint64_t period_ns, unsigned flags);

/**
 * Watch signals: installs a handler for the signals of set (SA_SIGINFO |
 * SA_RESTART, and unblocks them in the calling thread) that records each
 * signal's siginfo in the library and writes an eventfd the broker watches
 * (ONERING_EV_SIGNAL records). After a record, take the signals with
 * onering_signal_read() until it returns 0. One signal watcher per process.
 * (A signalfd cannot be used: its readiness follows the signals pending for
 * the process that polls it, which would be the broker.) Up to 128 signals
 * wait between reads; more are counted as lost.
 * @param fd receives the eventfd to pass to onering_signal_read()
 * @return as onering_add(); -EBUSY a watcher exists; -errno from sigaction.
 * Context: any thread; system calls.
 */
int onering_add_signal(struct onering_queue *q, const sigset_t *set, uint64_t cookie,
		       struct onering_sub *sub, int *fd);

/**
 * Take one signal recorded since the last call (fills ssi_signo, ssi_code,
 * ssi_int, ssi_pid, ssi_uid of *si).
 * @param fd the fd onering_add_signal() gave
 * @return 1 and *si filled; 0 none left (then one read(2) resets the
 *   eventfd); -EBADF not that fd.
 * Context: one thread at a time; no system call while signals are waiting.
 */
int onering_signal_read(int fd, struct signalfd_siginfo *si);

/**
 * Watch a path for changes: creates an inotify fd in this process (the
 * broker never opens a path for a client), adds a watch with mask
 * (IN_CREATE, IN_MODIFY, ...), subscribes it (ONERING_EV_FILE records).
 * After a record, read the struct inotify_event records from *fd.
 * @return as onering_add(); -errno from inotify.
 * Context: any thread; system calls.
 */
int onering_add_inotify(struct onering_queue *q, const char *path, uint32_t mask,
			uint64_t cookie, struct onering_sub *sub, int *fd);

/**
 * Watch a process for its exit: opens a pidfd (pidfd_open) and subscribes
 * it (one ONERING_EV_PROCESS record when the process exits).
 * @return as onering_add(); -ESRCH no such process; -errno.
 * Context: any thread; system calls.
 */
int onering_add_pidfd(struct onering_queue *q, pid_t pid, uint64_t cookie,
		      struct onering_sub *sub, int *fd);

/**
 * Take async-IO completions through the ring: subscribe the eventfd that is
 * registered to an io_uring (IORING_REGISTER_EVENTFD) or a libaio context
 * (ONERING_EV_AIO records; the broker never reads the eventfd, so
 * payload.aio.completions is 0: reap the completion queue after a record).
 * @return as onering_add().
 * Context: any thread; system calls (one request/reply).
 */
int onering_add_aio(struct onering_queue *q, int eventfd, uint64_t cookie,
		    struct onering_sub *sub);

/**
 * The queue's watched words (onering_queue_options.words of them) in its
 * shared page: a plain store changes one, from this process or any process
 * that shares the mapping (e.g. a child forked after the open); the poller
 * publishes a WORD record (old and new value) for each change of a watched
 * word, coalescing changes it did not see in between.
 * @param n receives the count (may be NULL)
 * @return the words, or NULL if the queue has none.
 * Context: any thread; no system call.
 */
ONERING_ATOMIC(uint32_t) *onering_queue_words(struct onering_queue *q, uint32_t *n);

/**
 * Watch word idx of q (records carry cookie and payload.word), or stop
 * (onering_word_unwatch): after unwatch returns no record of the old watch
 * is returned. Through the submission ring.
 * @return 0; -EINVAL no such word; -EAGAIN ring full.
 * Context: the queue's thread; no system call while the poller is awake.
 */
int onering_word_watch(struct onering_queue *q, uint32_t idx, uint64_t cookie);
int onering_word_unwatch(struct onering_queue *q, uint32_t idx);

/**
 * Take up to max records that are ready now.
 *
 * Release: records are given back to the ring (the broker sees them
 * consumed) when they are copied out - except on a group member and for a
 * batch with NIC records, where the batch is released at the next
 * onering_poll()/onering_wait() on the queue: until then the broker counts
 * it as unconsumed, so a sticky group keeps that flow on this queue while
 * the caller works on it, and lifo does not take this consumer for idle;
 * if the process dies first, the batch is redelivered to the group
 * (REDELIVERED). In ack mode a member takes at most 256 records per call,
 * and gives each back as soon as it and those before it are done
 * (onering_done()).
 * Such a batch also ends an onering_wait() early (below its min). A queue
 * with priority levels (onering_queue_options.levels) gives the records of
 * its highest level that has any first, then the next lower, up to max (a
 * group member's held batch comes from one level); a queue with one level
 * pays nothing for this. Records of deleted
 * subscriptions are skipped. Every collect_every consumed records the
 * level-triggered collection (onering_collect) runs first when LEVEL
 * sources are outstanding. Besides the records of sources and posts, the
 * caller gets ONERING_EV_CONTROL records with code ONERING_CTL_POST_REFUSED
 * (a post of this queue that went nowhere: see onering_post()).
 * @return records copied to events (0 if none); -ECONNRESET the broker
 *   shut down (its last record said so) and the ring is empty; -EPROTO the
 *   broker's ring is corrupt. A broker that was killed is not noticed here
 *   (that would take a system call): onering_wait() notices it.
 * Context: the queue's thread; no system call while no LEVEL records are
 *   outstanding; otherwise the periodic collection makes one poll().
 */
int onering_poll(struct onering_queue *q, struct onering_event *events, unsigned max);

/*
 * Completion-mode sockets (ABI 1.8; docs/semantics.md, Completion mode).
 * The broker moves the bytes: it receives into the queue's receive buffers
 * and publishes ONERING_EV_STREAM records (payload.stream: RECV, SENT,
 * ACCEPTED, CLOSED); the application reads the bytes in place, writes
 * replies into transmit buffers and posts SENDs through the submission
 * ring. On the hot path none of these functions makes a system call (the
 * submission kicks the broker's poller only when it announced a sleep, as
 * every request does). A connection is named by the subscription in its
 * records (onering_event_sub()); stream records are never dropped by the
 * library, not even after onering_del(): each carries a buffer or a send
 * to account for. Give each record back with onering_stream_done(). A
 * broker restart ends every connection (the new broker has none of them).
 */

/**
 * Put socket fd in completion mode on q (which needs a stream area:
 * onering_queue_options.stream_rx): a connected TCP, Unix stream or
 * seqpacket socket, a datagram socket, or a listening socket, whose
 * connections the broker accepts and adds to q (an ACCEPTED record each,
 * cookie the listener's) - or, when q is a group member, to the member the
 * group's policy picks among those with a stream area (least: the one
 * holding the fewest connections; any other policy: in turn). The broker keeps its own duplicate of fd; the
 * caller may close its copy. Accepted connections count against the
 * client's subscription and fd quotas; over them a connection is closed at
 * once (counted as refused in the queue's stream counters).
 * @param cookie returned in every record of this socket (and of the
 *   connections a listener accepts)
 * @param sub    receives the connection (or listener)
 * @return 0; -EINVAL q has no stream area, or fd is no socket of those
 *   kinds (onering_last_error() says which); -EOPNOTSUPP a listener, and
 *   the broker has no io_uring to accept with; -EDQUOT a quota;
 *   -ECONNRESET broker gone.
 * Context: any thread; system calls (one request/reply on the control socket).
 */
int onering_stream_add(struct onering_queue *q, int fd, uint64_t cookie, struct onering_sub *sub);

/**
 * The bytes of a RECV record with status > 0 (status bytes), where the
 * broker put them: in q's receive buffer payload.stream.buf. Valid until
 * the record is given back with onering_stream_done(). NULL for any other
 * record.
 * Context: the queue's thread; no system call.
 */
const void *onering_stream_data(const struct onering_queue *q, const struct onering_event *e);

/**
 * The peer of a datagram RECV record (the address it came from), and its
 * length in *len; NULL for other records or sockets.
 * Context: the queue's thread; no system call.
 */
const struct sockaddr *onering_stream_peer(const struct onering_queue *q,
					   const struct onering_event *e, uint32_t *len);

/**
 * A free transmit buffer of q, onering_stream_buffer_size() bytes, for one
 * onering_stream_send(); it is free again once the SENT record of that
 * send is given back (onering_stream_done()).
 * @return the buffer, or NULL: none free (errno EAGAIN: wait for SENT
 *   records), or q has no stream area (errno EINVAL).
 * Context: the queue's thread; no system call.
 */
void *onering_stream_buffer(struct onering_queue *q);

/** Bytes of one transmit buffer of q (0: no stream area). Any thread. */
size_t onering_stream_buffer_size(const struct onering_queue *q);

/**
 * Send len bytes at data on connection conn: data must lie in one buffer of
 * q's stream area - a transmit buffer from onering_stream_buffer(), or a
 * receive buffer the application still holds (an echo sends what it
 * received; give that RECV record back only after the SENT record). The broker
 * sends in order per connection and finishes partial sends itself; one
 * SENT record (status: len, or -errno; tag) says when the bytes are no
 * longer needed.
 * @return 0; -EINVAL data is not in the stream area, len is 0 or runs past
 *   the end of its buffer, or a transmit buffer not handed out (or sent);
 *   -EAGAIN the submission ring is full (try again after consuming);
 *   -ECONNRESET broker gone.
 * Context: the queue's thread; no system call (the kick aside, see above).
 */
int onering_stream_send(struct onering_queue *q, struct onering_sub conn, const void *data,
			size_t len, uint64_t tag);

/**
 * As onering_stream_send(), for a datagram socket: to addr (addrlen bytes,
 * at most 120), or with addr NULL to the address a received datagram came
 * from when data is that datagram's receive buffer (a reply in place).
 * data must be a buffer from onering_stream_buffer() or a datagram's
 * receive buffer (the address goes in the bytes before it).
 * @return as onering_stream_send(); -EINVAL also for an address too long.
 */
int onering_stream_sendto(struct onering_queue *q, struct onering_sub conn, const void *data,
			  size_t len, const struct sockaddr *addr, uint32_t addrlen, uint64_t tag);

/**
 * Give a stream record back: a RECV's receive buffer to the broker
 * (through the submission ring), a SENT record's transmit buffer to the
 * free ones (a send from a receive buffer gives nothing back: its RECV
 * record does). Other stream records need nothing; calling it for them is
 * fine. Once per record.
 * @return 0; -EAGAIN submission ring full (call again); -EINVAL not a
 *   stream record of q.
 * Context: the queue's thread; no system call (the kick aside).
 */
int onering_stream_done(struct onering_queue *q, const struct onering_event *e);

/**
 * The socket of connection conn (or of a listener), for what only a system
 * call can do with it (a socket option, getpeername): a duplicate of the
 * broker's, the caller's to close. Reading or writing it bypasses the
 * broker's order of bytes; don't.
 * @return the fd; -ENOENT not a live completion-mode connection of this
 *   client; -EOPNOTSUPP a broker before ABI 1.8; -ECONNRESET broker gone.
 * Context: any thread; system calls (one request/reply on the control socket).
 */
int onering_stream_fd(struct onering_queue *q, struct onering_sub conn);

/**
 * Close connection conn (or stop a listener) once the SENDs posted before
 * are done: a CLOSED record is its last. flags: ONERING_CLOSE_WRITE shuts
 * down the sending side only (half-close: receiving goes on);
 * ONERING_CLOSE_ABORT closes at once (SENDs not done fail with -ECANCELED).
 * @return 0; -EINVAL bad flags; -EAGAIN submission ring full; -ECONNRESET.
 * Context: the queue's thread; no system call (the kick aside).
 */
int onering_stream_close(struct onering_queue *q, struct onering_sub conn, unsigned flags);

/**
 * Zero-copy consumption (liburing's peek and advance): point *first at the
 * queue's next records where they are (its shared ring, read-only) and
 * return how many, at most max. They are the records onering_poll() would
 * return next, in the same order, with the same checks: a record of a
 * deleted subscription is never shown (one at the head is stepped over; one
 * further on ends the run, and a later peek steps over it), and priority
 * levels are taken highest first (a run comes from one level's ring). The
 * records stay valid, and count as unconsumed for the broker's balancing,
 * until onering_advance() gives them back; a peek without an advance shows
 * the same run again. A NIC record's bytes (onering_event_packet()) stay
 * until the advance too.
 * Differences from onering_poll(): no copy; not for ack-mode queues
 * (-EINVAL: use onering_poll() and onering_done()); after a broker restart
 * (ONERING_CTL_RESTARTED) the records' sub_id/sub_gen are the new broker's
 * ids: onering_event_sub() gives the handle the application holds.
 * @return records in the run (0: none); -EINVAL; -EPROTO a corrupt ring;
 *   -ECONNRESET the broker is gone and the library does not recover.
 * Context: the queue's thread; no system call (as onering_poll()).
 */
int onering_peek(struct onering_queue *q, const struct onering_event **first, unsigned max);

/**
 * Give back the first n records of the run onering_peek() showed (n at most
 * its length): the broker may reuse their slots, and a later peek starts
 * after them.
 * @return 0; -EINVAL n beyond the run.
 * Context: the queue's thread; no system call.
 */
int onering_advance(struct onering_queue *q, unsigned n);

/**
 * The handle (as onering_add() gave it) of a record that onering_peek()
 * showed: its own sub_id/sub_gen until a broker restart, then the
 * translation of the new broker's ids; {0, 0} for a subscription that is
 * gone. Records from onering_poll()/onering_wait() already carry the
 * handle: do not pass them here after a restart.
 * Context: any thread of the queue's; no system call.
 */
struct onering_sub onering_event_sub(const struct onering_queue *q, const struct onering_event *e);

/**
 * Wait for records: return when at least min are ready (up to max are
 * taken) or timeout_ns has passed. By the queue's idle strategy
 * (onering_queue_options.idle, $ONERING_IDLE): backoff spins for the
 * queue's spin budget, overprovisioned does not
 * spin, busy spins until the end and never sleeps. Before sleeping it runs
 * the collection (if LEVEL records are outstanding), announces sleep and
 * sleeps in one ppoll on the queue's bell and the control socket: a record
 * or the broker's death wakes it, nothing else (an idle client makes no
 * system call).
 * @param min        0 behaves like onering_poll()
 * @param timeout_ns negative: no timeout
 * @return records taken (may be < min on timeout, also 0); -ECONNRESET
 *   the broker died or shut down (as soon as its socket closes); -EPROTO;
 *   -EINTR a signal interrupted the sleep; -EINVAL min > max.
 * Context: the queue's thread; no system call while records keep arriving
 *   within the spin budget; a ppoll and an eventfd read per sleep; busy: a poll() of the control
 *   socket per millisecond of waiting.
 */
int onering_wait(struct onering_queue *q, struct onering_event *events, unsigned min,
		 unsigned max, int64_t timeout_ns);

/**
 * One fd for another event loop (epoll, libuv, GLib, Tokio, ...): an epoll
 * fd, owned by q, that turns readable when the broker rings q's bell - only
 * after onering_queue_arm() said the consumer is about to wait - or when
 * the broker goes away. A busy consumer that does not arm costs the broker
 * no write and itself no system call. The pattern:
 *
 *     for (;;) {
 *         n = onering_poll(q, evs, max);            // takes back the arm
 *         if (n > 0) { handle(evs, n); continue; }
 *         if (n < 0) break;                         // -ECONNRESET: gone
 *         if (onering_queue_arm(q) == 0) break;     // 1: records came: poll
 *     }
 *     // ... back to the loop; when the fd is readable, start over
 *
 * Watch it for readability (EPOLLIN / UV_READABLE / G_IO_IN), level-
 * triggered. After it fires, call onering_poll() or onering_wait(): they
 * empty the bell and, if the broker is gone, return -ECONNRESET once the
 * ring is drained.
 * @return the fd (created on the first call; closed by
 *   onering_queue_close(): do not close it), or -errno from epoll.
 * Context: the queue's thread; two or three system calls on the first
 *   call, none after.
 */
int onering_queue_fd(struct onering_queue *q);

/**
 * Announce that the consumer is about to wait on onering_queue_fd(): after
 * this the broker rings the bell when a record arrives. Gives back the
 * last batch (as the next onering_poll() would), runs the LEVEL collection
 * if LEVEL records are outstanding, then announces sleep and looks at the
 * ring once more (shm/doorbell.h), so no record that came meanwhile is
 * missed.
 * @return 0 armed: wait for the fd; 1 records (or LEVEL re-deliveries) are
 *   there already: poll instead of waiting; -ECONNRESET the broker is gone
 *   and the ring is empty.
 * Context: the queue's thread; no system call (one poll() when LEVEL
 *   records are outstanding).
 */
int onering_queue_arm(struct onering_queue *q);

/**
 * The level-triggered collection call: one poll() over the LEVEL
 * subscriptions delivered and not collected yet. Those still ready are
 * returned again by the next onering_poll()/onering_wait() (without a new
 * broker record); the rest are re-armed in the broker through the
 * submission ring. Runs automatically every collect_every records and
 * before sleeping.
 * @return LEVEL sources still ready (queued for re-delivery); -errno from
 *   poll(); -EAGAIN submission ring full (retried on the next call).
 * Context: the queue's thread; one system call, none if no LEVEL record is
 *   outstanding.
 */
int onering_collect(struct onering_queue *q);

/**
 * The packet bytes of a NIC record (ONERING_EV_NIC) taken from q: the first
 * e->payload.nic.captured bytes of the frame (e->payload.nic.length is its
 * length on the wire; ONERING_EVF_TRUNCATED when cut). They live in q's
 * packet area, in the slot of the record, and stay valid until the next
 * onering_poll()/onering_wait() on q (a batch with NIC records is released
 * then, not before; such a batch also ends an onering_wait() early, even
 * below its min).
 * @param len receives the byte count (may be NULL)
 * @return the bytes, or NULL: not a NIC record, the queue has no packet
 *   area, or the record does not describe bytes inside it.
 * Context: the queue's thread; no system call.
 */
const void *onering_event_packet(const struct onering_queue *q, const struct onering_event *e,
				 uint32_t *len);

/**
 * Records waiting in the ring (every priority level's; not counting LEVEL
 * re-deliveries).
 * Context: the queue's thread; no system call.
 */
int onering_pending(struct onering_queue *q);

/**
 * A static description of any return code of this library (negative errno).
 * Context: any thread.
 */
const char *onering_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_H */
