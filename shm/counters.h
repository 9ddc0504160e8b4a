/* SPDX-License-Identifier: MIT */
/*
 * The broker's counters, one table per object: each line names one counter
 * once - its enum constant, the name `onering stat` prints (text header and
 * JSON key), its kind, its unit and its help text. The enums below, the
 * descriptions in shm/counters.c (what `onering stat` and its --list-counters
 * print) and the counters section of docs/operations.md all come from these
 * lists (libuv's UV_ERRNO_MAP, DPDK's xstats name tables).
 *
 * Adding a counter is one line at the end of its list (a constant's value is
 * its place, and the value travels in STATS_ITEM replies: never insert or
 * remove one in the middle), plus the broker code that counts it. Then paste
 * `onering stat --list-counters --markdown` into docs/operations.md
 * (integration_tools, ToolTest.CountersDocsMatchTheTable, checks they agree).
 * A stats item carries ONERING_STATS_COUNTERS_MAX (12) counters and a static
 * assertion in shm/proto.h says when a list outgrows it: the broker, queue
 * and stream lists are full, so their next counter needs a larger item (a
 * protocol version) first.
 *
 * A line: X(P, ID, name, KIND, unit, help)
 *   P     the list's enum prefix, passed through (BC, PC, QC, GC, PORTC, RXQC, EXC, LC)
 *   ID    the enum constant is ONERING_<P>_<ID>
 *   name  lower_case; `onering stat` prints it; unique within the list
 *   KIND  COUNTER (only grows), GAUGE (a level now) or LABEL (an identity:
 *         a group id, a cpu; not a quantity)
 *   unit  what one step counts, plural
 *   help  one sentence for operators
 *
 * Included by shm/proto.h; libc only.
 */
#ifndef ONERING_SHM_COUNTERS_H
#define ONERING_SHM_COUNTERS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ONERING_STATS_BROKER: the broker as a whole. */
#define ONERING_BROKER_COUNTERS(X, P)                                                         \
	X(P, CLIENTS, clients, GAUGE, clients, "clients attached now")                         \
	X(P, ATTACHES, attaches, COUNTER, clients, "clients that attached, total")            \
	X(P, BAD_MESSAGES, bad_messages, COUNTER, messages, "malformed control messages")     \
	X(P, EXTRA_FDS, extra_fds, COUNTER, fds,                                               \
	  "fds closed because a message did not expect them")                                 \
	X(P, DENIED, denied, COUNTER, connections, "connections refused by SO_PEERCRED")      \
	X(P, DROPPED, dropped, COUNTER, clients, "clients disconnected for misbehaving")      \
	X(P, POSTS_REFUSED, posts_refused, COUNTER, posts,                                     \
	  "posts to a group that does not exist or that the poster may not post to: not "    \
	  "delivered, the poster told with a POST_REFUSED record")                             \
	X(P, HELLO_TIMEOUTS, hello_timeouts, COUNTER, connections,                             \
	  "connections closed for no HELLO within --hello-timeout-ms")                         \
	X(P, PENDING_LIMITED, pending_limited, COUNTER, connections,                           \
	  "connections closed at once: their uid had --max-pending-per-uid waiting (or "      \
	  "--max-pending)")                                                                    \
	X(P, FD_LIMIT, fd_limit, COUNTER, times, "times the broker reached its fd limit "     \
	  "(EMFILE/ENFILE)")                                                                   \
	X(P, QUOTA, quota_refusals, COUNTER, calls, "calls refused by a per-client quota "    \
	  "(-EDQUOT)")                                                                         \
	X(P, GROUPS, groups, GAUGE, groups, "live groups")

/* ONERING_STATS_POLLER: one poller thread. */
#define ONERING_POLLER_COUNTERS(X, P)                                                         \
	X(P, LOOPS, loops, COUNTER, loops, "poll loop iterations")                             \
	X(P, EVENTS, events, COUNTER, events, "readiness events harvested from epoll")         \
	X(P, PUBLISHED, published, COUNTER, records, "records published, all queues")         \
	X(P, SLEEPS, sleeps, COUNTER, sleeps, "times the poller blocked when idle")           \
	X(P, QUEUES, queues, GAUGE, queues, "queues served")                                   \
	X(P, CPU, cpu, LABEL, cpu, "core the poller is pinned to")                             \
	X(P, KICKS, kicks, COUNTER, kicks, "wake-ups from clients' requests while it slept")  \
	X(P, SYSCALL_ERRORS, syscall_errors, COUNTER, errors,                                  \
	  "failed system calls (epoll_ctl, eventfd, ppoll): each logged")                      \
	X(P, BUSY_NS, busy_ns, COUNTER, ns,                                                    \
	  "time in loops that did work (busy % = its rate / 1e7)")                              \
	X(P, YIELDS, yields, COUNTER, yields,                                                  \
	  "times the idle poller offered its core (sched_yield) before blocking")              \
	X(P, SLEEPS_UNTIMED, sleeps_untimed, COUNTER, sleeps,                                  \
	  "idle blocks without a timeout (nothing to retry, no timer): only a kick, an fd or " \
	  "a hand-off ends them")                                                               \
	X(P, TIMER_ENTRIES, timer_entries, GAUGE, entries,                                     \
	  "entries in the timer heap: armed timers, and old entries of re-armed or cancelled " \
	  "ones (compacted past twice the last live count plus 1024)")

/* ONERING_STATS_QUEUE: one consumer queue. */
#define ONERING_QUEUE_COUNTERS(X, P)                                                          \
	X(P, PUBLISHED, published, COUNTER, records, "records written into the ring")         \
	X(P, CONSUMED, consumed, COUNTER, records, "records the client has released (its head)") \
	X(P, COALESCED, coalesced, COUNTER, reports,                                           \
	  "readiness notifications merged into a pending record")                              \
	X(P, PENDING, pending, GAUGE, subscriptions, "subscriptions waiting for ring space now") \
	X(P, DEFERRED, deferred, COUNTER, records, "records that had to wait for ring space")  \
	X(P, WAKES, wakes, COUNTER, wakes,                                                     \
	  "wake-ups sent to the sleeping consumer (writes to its bell)")                       \
	X(P, REQUESTS, requests, COUNTER, requests, "submission-ring requests handled")         \
	X(P, BAD_REQUESTS, bad_requests, COUNTER, requests, "submission-ring requests refused") \
	X(P, SUBS, subs, GAUGE, subscriptions, "live subscriptions")                           \
	X(P, CAPACITY, capacity, GAUGE, slots, "event slots of the ring")                      \
	X(P, GROUP, group, LABEL, id, "id of the group it is a member of, 0 = none")           \
	X(P, REDELIVERED, redelivered, COUNTER, records, "records of a dead member delivered here")

/* ONERING_STATS_GROUP: a group, summed over pollers. */
#define ONERING_GROUP_COUNTERS(X, P)                                                          \
	X(P, DELIVERED, delivered, COUNTER, records, "records placed in member queues")        \
	X(P, BACKLOG, backlog, GAUGE, records, "records and sources waiting in the broker now") \
	X(P, BACKLOGGED, backlogged, COUNTER, records, "entries that had to wait in the backlog") \
	X(P, SPILLED, spilled, COUNTER, records, "records sent to a queue off the source's node") \
	X(P, REDELIVERED, redelivered, COUNTER, records, "records of dead consumers delivered again") \
	X(P, RUNNING, running, GAUGE, members,                                                 \
	  "members at work now (records to take, or taking them: not waiting with an empty "  \
	  "ring)")                                                                             \
	X(P, HANDOFFS, handoffs, COUNTER, records, "records handed to another node's poller")

/* ONERING_STATS_PORT: a NIC port, from rte_eth_stats_get(). */
#define ONERING_PORT_COUNTERS(X, P)                                                           \
	X(P, IPACKETS, ipackets, COUNTER, packets, "packets received by the NIC")              \
	X(P, IBYTES, ibytes, COUNTER, bytes, "bytes received by the NIC")                      \
	X(P, IMISSED, imissed, COUNTER, packets, "dropped by the NIC: no rx descriptor free")  \
	X(P, IERRORS, ierrors, COUNTER, packets, "erroneous packets received")                 \
	X(P, NOMBUF, rx_nombuf, COUNTER, mbufs, "mbuf allocation failures")                    \
	X(P, RXQS, rx_queues, GAUGE, queues, "rx queues configured")

/* ONERING_STATS_RXQ: an rx queue, the broker's side. */
#define ONERING_RXQ_COUNTERS(X, P)                                                            \
	X(P, RECEIVED, received, COUNTER, packets, "packets taken from the queue")             \
	X(P, DELIVERED, delivered, COUNTER, packets, "packets published as records")           \
	X(P, DROPPED, dropped, COUNTER, packets,                                               \
	  "no member of the group had room: dropped, counted")                                 \
	X(P, BYTES, bytes, COUNTER, bytes, "bytes received (wire length)")                     \
	X(P, TRUNCATED, truncated, COUNTER, packets,                                           \
	  "delivered cut at snaplen (or the queue's packet slot)")                             \
	X(P, GROUP, group, LABEL, id, "the group it delivers to")

/* ONERING_STATS_EXPORT: how the counters leave the broker - the counters
 * segment (shm/counters_seg.h) and the --metrics-listen HTTP endpoint. */
#define ONERING_EXPORT_COUNTERS(X, P)                                                          \
	X(P, OBJECTS, objects, GAUGE, objects, "objects in the counters segment now")          \
	X(P, OBJECTS_MAX, objects_max, GAUGE, objects,                                         \
	  "objects the counters segment holds (--counters-max-objects)")                       \
	X(P, UNLISTED, unlisted, GAUGE, objects,                                               \
	  "objects left out of the counters segment at its last update: it was full")          \
	X(P, UPDATES, updates, COUNTER, updates,                                               \
	  "times the control thread copied the counters into the segment")                     \
	X(P, READERS, readers, COUNTER, requests,                                              \
	  "counters segments handed to a reader (onering stat, top)")                          \
	X(P, HTTP_REQUESTS, http_requests, COUNTER, requests, "GET /metrics answered")         \
	X(P, HTTP_ERRORS, http_errors, COUNTER, requests,                                      \
	  "HTTP requests refused: malformed, too long, another method or path")                \
	X(P, HTTP_TIMEOUTS, http_timeouts, COUNTER, connections,                               \
	  "HTTP connections closed at their deadline")                                         \
	X(P, HTTP_REFUSED, http_refused, COUNTER, connections,                                 \
	  "HTTP connections closed at once: the most are open")

/* ONERING_STATS_LEVEL: one priority level of a queue that has more than one
 * (onering_queue_options.levels); in the counters segment only. */
#define ONERING_LEVEL_COUNTERS(X, P)                                                           \
	X(P, DELIVERED, delivered, COUNTER, records, "records written into the level's ring")  \
	X(P, DEFERRED, deferred, COUNTER, records,                                             \
	  "records of the level that had to wait for ring space in the queue")                \
	X(P, UNCONSUMED, unconsumed, GAUGE, records,                                           \
	  "records in the level's ring not yet taken by the consumer")

/* ONERING_STATS_STREAM (ABI 1.8): a queue's completion-mode sockets (a
 * queue with a stream area); in the counters segment only. */
#define ONERING_STREAM_COUNTERS(X, P)                                                          \
	X(P, BYTES_IN, bytes_in, COUNTER, bytes, "bytes received into the receive buffers")     \
	X(P, BYTES_OUT, bytes_out, COUNTER, bytes, "bytes sent from the stream area")          \
	X(P, RECVS, recvs, COUNTER, records, "RECV records with bytes")                        \
	X(P, SENDS, sends, COUNTER, requests, "SEND requests completed (sent or failed)")      \
	X(P, SHORT_SENDS, short_sends, COUNTER, calls,                                         \
	  "send calls that took part of what was asked (the rest went later)")                 \
	X(P, BUFFERS_OUT, buffers_out, GAUGE, buffers,                                         \
	  "receive buffers the client holds now (not yet given back)")                         \
	X(P, STALLS, stalls, COUNTER, times,                                                   \
	  "receives put off: no free receive buffer, or the ring was full")                    \
	X(P, CONNECTIONS, connections, GAUGE, connections, "connections and listeners open")   \
	X(P, ACCEPTED, accepted, COUNTER, connections, "connections accepted for the queue")   \
	X(P, REFUSED, refused, COUNTER, connections,                                           \
	  "accepted connections closed at once: the client's subscription or fd quota")        \
	X(P, ERRORS, errors, COUNTER, requests,                                                \
	  "SENDs failed (peer gone, no send slot) and connections failed")                    \
	X(P, ACCEPT_PAUSES, accept_pauses, COUNTER, times,                                     \
	  "times a listener was left unarmed for up to 100 ms: its accept failed (EMFILE, "    \
	  "ENFILE, ENOMEM, ...) or could not be armed again")

/*
 * Every list, once: X(list, P, enum tag, what, family, object). `family` is
 * how `onering stat --json` names the array of such objects (the broker's
 * and export's are one object, not an array); `object` is the word of its
 * Prometheus names, onering_<object>_<counter>.
 */
#define ONERING_COUNTER_LISTS(X)                                                               \
	X(ONERING_BROKER_COUNTERS, BC, onering_broker_counter, ONERING_STATS_BROKER, broker,   \
	  broker)                                                                              \
	X(ONERING_POLLER_COUNTERS, PC, onering_poller_counter, ONERING_STATS_POLLER, pollers,  \
	  poller)                                                                              \
	X(ONERING_QUEUE_COUNTERS, QC, onering_queue_counter, ONERING_STATS_QUEUE, queues,      \
	  queue)                                                                               \
	X(ONERING_GROUP_COUNTERS, GC, onering_group_counter, ONERING_STATS_GROUP, groups,      \
	  group)                                                                               \
	X(ONERING_PORT_COUNTERS, PORTC, onering_port_counter, ONERING_STATS_PORT, ports, port) \
	X(ONERING_RXQ_COUNTERS, RXQC, onering_rxq_counter, ONERING_STATS_RXQ, rx_queues, rxq)  \
	X(ONERING_EXPORT_COUNTERS, EXC, onering_export_counter, ONERING_STATS_EXPORT, export,  \
	  export)                                                                              \
	X(ONERING_LEVEL_COUNTERS, LC, onering_level_counter, ONERING_STATS_LEVEL, levels,      \
	  queue_level)                                                                         \
	X(ONERING_STREAM_COUNTERS, SC, onering_stream_counter, ONERING_STATS_STREAM, streams,  \
	  queue_stream)

/* The enums: ONERING_<P>_<ID> = its place in the list, then ONERING_<P>_NR. */
#define ONERING_COUNTER_ENUMERATOR(P, ID, name, KIND, unit, help) ONERING_##P##_##ID,
#define ONERING_COUNTER_ENUM(LIST, P, tag, what, family, object)                               \
	enum tag { LIST(ONERING_COUNTER_ENUMERATOR, P) ONERING_##P##_NR };
ONERING_COUNTER_LISTS(ONERING_COUNTER_ENUM)
#undef ONERING_COUNTER_ENUM

/* What a counter measures (ONERING_COUNTER_*). */
enum onering_counter_kind {
	ONERING_COUNTER_COUNTER = 0, /* only grows (rates make sense) */
	ONERING_COUNTER_GAUGE = 1,   /* a level now */
	ONERING_COUNTER_LABEL = 2,   /* an identity: an id, a cpu */
};

/* One counter, described (shm/counters.c). */
struct onering_counter_desc {
	const char *name; /* as `onering stat` prints it */
	const char *unit;
	const char *help;
	unsigned kind; /* enum onering_counter_kind */
};

/* One list: the objects of one STATS_ITEM kind. */
struct onering_counter_list {
	const char *family; /* "broker", "pollers", ...: the --json key */
	const char *object; /* "broker", "poller", ...: Prometheus names onering_<object>_<name> */
	uint32_t what;      /* enum onering_stats_what */
	unsigned nr;        /* counters in desc[] (ONERING_<P>_NR) */
	const struct onering_counter_desc *desc; /* by enum value */
};

/* Every list, in ONERING_COUNTER_LISTS order; nr_lists receives the count. */
const struct onering_counter_list *onering_counter_lists(unsigned *nr_lists);

/* The list of stats items with this what, or NULL. */
const struct onering_counter_list *onering_counter_list_find(uint32_t what);

/* "counter", "gauge", "label"; "?" if unknown. */
const char *onering_counter_kind_name(unsigned kind);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_SHM_COUNTERS_H */
