/* SPDX-License-Identifier: MIT */
/*
 * The control protocol between libonering and oneringd: fixed-size,
 * versioned messages on a Unix SOCK_SEQPACKET socket, file descriptors
 * travelling with SCM_RIGHTS. Every message is one struct onering_msg
 * (128 bytes); a message of any other length is malformed.
 *
 * The broker validates every message: magic, version, a known type, the
 * fds it carries (exactly what the type expects; every other fd is closed),
 * and each field before use. A bad message gets a reply with a negative
 * errno in status and is counted; a client that keeps sending garbage is
 * disconnected. Neither side ever blocks on the other: the broker sends
 * with MSG_DONTWAIT and drops a client whose socket is full.
 *
 * Replies carry the request's seq and type | ONERING_MSG_REPLY.
 */
#ifndef ONERING_SHM_PROTO_H
#define ONERING_SHM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/atomic.h"
#include "shm/counters.h" /* the counters in STATS_ITEM replies: one table */

#ifdef __cplusplus
extern "C" {
#endif

#define ONERING_MSG_MAGIC 0x4d524e4fu /* "ONRM" */
#define ONERING_PROTO_VERSION 4u /* 2: QUEUE_OPEN's reply carries the bell (4 fds);
				  * 3: priorities (queue_open.levels, sub_add.priority);
				  * 4: submission bells (ABI 1.7): QUEUE_OPEN's reply
				  * carries the bells segment (5 fds) and the queue's bit */
#define ONERING_MSG_SIZE 128u
#define ONERING_MSG_REPLY 0x8000u
#define ONERING_NAME_MAX 32u /* instance names, incl. the NUL */

enum onering_msg_type {
	ONERING_MSG_HELLO = 1,       /* first message: versions, pid, instance name */
	ONERING_MSG_QUEUE_OPEN = 2,  /* reply carries 5 fds: events and consumer segments,
				      * the poller's kick eventfd, the queue's bell
				      * eventfd, the bells segment */
	ONERING_MSG_QUEUE_CLOSE = 3,
	ONERING_MSG_SUB_ADD = 4,     /* carries 1 fd: the source */
	ONERING_MSG_STATS = 5,       /* reply: one STATS_ITEM per object, then STATS_END */
	ONERING_MSG_STATS_ITEM = 6,
	ONERING_MSG_STATS_END = 7,
	ONERING_MSG_SHUTDOWN = 8,    /* broker -> client, unsolicited: the broker is stopping */
	ONERING_MSG_GROUP = 9,       /* look up, create or tune a group (u.group) */
	ONERING_MSG_PORT_TX = 10,    /* transmit one frame on a NIC port (u.port_tx);
				      * only with oneringd --allow-inject */
	ONERING_MSG_COUNTERS = 11,   /* the counters segment: the first and only message of a
				      * connection (no HELLO, no client slot); the reply
				      * carries 1 fd, the read-only memfd (u.counters) */
	ONERING_MSG_SUB_FD = 12,     /* (ABI 1.8) the socket of one of the client's own
				      * completion-mode connections (u.sub_fd); the reply
				      * carries 1 fd, a duplicate of the broker's. A broker
				      * before 1.8 answers -EOPNOTSUPP */
	ONERING_MSG_TYPE_MAX = 12,
};

/*
 * MOD, REARM and DEL of a subscription travel on the queue's submission
 * ring (struct onering_request), not on the socket: no system call.
 */

/* Subscription modes (onering_msg.u.sub_add.mode). */
enum onering_sub_mode {
	ONERING_MODE_EDGE = 0,    /* one record per readiness edge */
	ONERING_MODE_ONESHOT = 1, /* one record, then disarmed until REARM */
	ONERING_MODE_LEVEL = 2,   /* one record; the client collects and re-arms */
	ONERING_MODE_DISPATCH = 3, /* as ONESHOT; the library re-arms when the record is done */
	ONERING_MODE_MAX = 3,
};

/* Counters a stats item has room for (a list in shm/counters.h may not be longer). */
#define ONERING_STATS_COUNTERS_MAX 12

/* Stats objects (onering_msg.u.stats_item.what). */
enum onering_stats_what {
	ONERING_STATS_BROKER = 1,
	ONERING_STATS_POLLER = 2,
	ONERING_STATS_QUEUE = 3,
	ONERING_STATS_GROUP = 4, /* the item is a struct onering_msg_group_stats */
	ONERING_STATS_PORT = 5,  /* id = port; counters: enum onering_port_counter */
	ONERING_STATS_RXQ = 6,   /* id = port << 16 | queue, node = its poller's;
				  * counters: enum onering_rxq_counter */
	ONERING_STATS_EXPORT = 7, /* the counters segment and /metrics: in the counters
				   * segment only, never in a STATS reply */
	ONERING_STATS_LEVEL = 8,  /* a priority level of a queue: id = queue id x
				   * ONERING_PRIO_LEVELS + level; in the counters segment
				   * only, never in a STATS reply */
	ONERING_STATS_STREAM = 9, /* (ABI 1.8) a queue's completion-mode sockets: id =
				   * queue id; in the counters segment only */
};



/* Group balancing policies (onering_msg_group.policy). */
enum onering_group_policy {
	ONERING_POLICY_RR = 0,     /* round robin */
	ONERING_POLICY_LEAST = 1,  /* fewest unconsumed records */
	ONERING_POLICY_STICKY = 2, /* a source stays on one queue while it has unconsumed records */
	ONERING_POLICY_LIFO = 3,   /* the most recently idle consumer; max_running; backlog */
	ONERING_POLICY_LOCAL = 4,  /* round robin over the poller's node first */
	ONERING_POLICY_MAX = 4,
};

/* Group NUMA policies (onering_msg_group.numa). */
enum onering_group_numa {
	ONERING_NUMA_SPILL = 0,      /* remote only when every local queue is above spill_pct */
	ONERING_NUMA_STRICT = 1,     /* never leave the source's node */
	ONERING_NUMA_INTERLEAVE = 2, /* every member alike */
	ONERING_NUMA_MAX = 2,
};

/* Which idle consumer goes first (onering_msg_group.wake). */
enum onering_group_wake {
	ONERING_WAKE_LIFO = 0,        /* the most recently idle (cache-warm) */
	ONERING_WAKE_FIFO = 1,        /* the longest idle */
	ONERING_WAKE_RR = 2,          /* in turn */
	ONERING_WAKE_LOCAL_FIRST = 3, /* idle ones on the poller's node, then lifo */
	ONERING_WAKE_MAX = 3,
};

/* onering_msg_group.set: the settings a GROUP request changes. */
#define ONERING_GSET_POLICY 0x01u
#define ONERING_GSET_NUMA 0x02u /* numa and spill_pct */
#define ONERING_GSET_WAKE 0x04u
#define ONERING_GSET_MAX_RUNNING 0x08u
#define ONERING_GSET_BACKLOG 0x10u
#define ONERING_GSET_ALL 0x1fu
/* onering_msg_group.flags */
#define ONERING_GROUP_NO_CREATE 0x1u /* -ENOENT instead of creating a missing group */

struct onering_msg_hello {
	uint16_t abi_major; /* shared-memory ABI the sender speaks */
	uint16_t abi_minor;
	uint32_t pid;
	uint64_t epoch;     /* reply: the broker's epoch */
	uint32_t client_id; /* reply */
	uint32_t max_subs;  /* reply: size of the broker's subscription table */
	char name[ONERING_NAME_MAX]; /* instance the client meant to reach */
};

struct onering_msg_queue_open {
	uint32_t ev_capacity; /* request: wanted (0 = default); reply: granted */
	uint32_t sq_capacity;
	int32_t node;         /* request: -1 = the caller's node; reply: chosen node */
	int32_t cpu;          /* request: sched_getcpu() of the opener, or -1 */
	uint32_t queue_id;    /* reply */
	uint32_t poller;      /* reply: index of the poller that serves it */
	uint64_t start_pos;   /* reply: initial position of both rings */
	char group[ONERING_NAME_MAX]; /* request: group to join, "" = none (a private
				       * queue); created with the defaults if missing */
	uint32_t group_id;    /* reply: the group's id, 0 = none */
	uint32_t packet_snap; /* request: bytes of packet to keep per record (0: no packet
			       * area); reply: the packet area's bytes per slot */
	uint32_t words;       /* request: watched words (0..ONERING_WORDS_MAX); reply: granted */
	uint32_t levels;      /* (3) request: priority levels, event rings (0 = 1,
			       * at most ONERING_PRIO_LEVELS); reply: granted */
	uint32_t bell;        /* (4) reply: the queue's bit in the bells segment
			       * (< ONERING_BELL_BITS) */
	/* (ABI 1.8) the stream area, for completion-mode sockets: request and
	 * reply (granted; 0 = none: a broker before 1.8 leaves them 0). */
	uint32_t stream_rx;   /* receive buffers (0: no stream area) */
	uint32_t stream_tx;   /* transmit buffers */
	uint32_t stream_buf;  /* bytes per buffer, a power of two */
};

struct onering_msg_queue {
	uint32_t queue_id;
};

struct onering_msg_sub_fd {
	uint32_t sub_id;  /* a completion-mode connection of this client */
	uint32_t sub_gen;
};

struct onering_msg_sub_add {
	uint32_t queue_id;
	uint32_t events; /* EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI */
	uint32_t mode;   /* enum onering_sub_mode */
	uint32_t group_id; /* target group; 0 = the queue's group, or the queue itself */
	uint64_t cookie;
	uint32_t sub_id;  /* reply */
	uint32_t sub_gen; /* reply */
	int32_t home_node; /* node whose poller watches the source; -1 = the queue's */
	uint32_t kind;     /* record kind: ONERING_EV_FD (0 means FD), SIGNAL, FILE, AIO,
			    * PROCESS - an fd comes with it - or TIMER (no fd: a
			    * broker-side timer, armed with ONERING_REQ_TIMER_ARM),
			    * or (ABI 1.8) STREAM: a socket in completion mode (a
			    * connected stream or datagram socket, or a listening
			    * one), into the queue itself (it needs a stream area) */
	uint32_t priority; /* (3) its records' priority, 0..ONERING_PRIO_LEVELS-1 */
};

/* Transmit one frame on a NIC port (tests, diagnostics). */
struct onering_msg_port_tx {
	uint16_t port;
	uint16_t len;       /* bytes of frame used, 14..ONERING_PORT_TX_MAX */
	uint32_t pad;
	uint8_t frame[96];
};
#define ONERING_PORT_TX_MAX 96u

/* Look up, create or tune a group. The reply carries its settings. */
struct onering_msg_group {
	char name[ONERING_NAME_MAX];
	uint32_t group_id; /* reply */
	uint32_t set;      /* ONERING_GSET_*: which fields below to apply */
	uint32_t flags;    /* ONERING_GROUP_* */
	uint8_t policy;    /* enum onering_group_policy */
	uint8_t numa;      /* enum onering_group_numa */
	uint8_t spill_pct; /* 1..100, with ONERING_NUMA_SPILL */
	uint8_t wake;      /* enum onering_group_wake */
	uint32_t max_running; /* 0 = the group's CPU count */
	uint32_t backlog_max; /* records the broker holds for the group, per poller */
	uint32_t members;     /* reply */
};

struct onering_msg_group_stats {
	uint32_t what; /* ONERING_STATS_GROUP: same place as stats_item.what */
	uint32_t id;
	char name[ONERING_NAME_MAX];
	uint8_t policy, numa, spill_pct, wake;
	uint32_t max_running;
	uint32_t backlog_max;
	uint16_t members;
	uint16_t sleeping; /* members asleep on an empty ring now */
	uint64_t counter[ONERING_GC_NR]; /* enum onering_group_counter (shm/counters.h) */
};

struct onering_msg_counters {
	char name[ONERING_NAME_MAX]; /* the instance the reader meant to reach */
	uint32_t version;            /* reply: ONERING_COUNTERS_VERSION of the segment */
	uint32_t size;               /* reply: its bytes */
};

struct onering_msg_stats_item {
	uint32_t what; /* enum onering_stats_what */
	uint32_t id;   /* poller index or queue id */
	uint32_t owner_pid;
	uint32_t node;
	uint64_t counter[ONERING_STATS_COUNTERS_MAX]; /* by what: the enum of that object's
						 * list in shm/counters.h */
};

struct onering_msg {
	uint32_t magic;   /* ONERING_MSG_MAGIC */
	uint16_t version; /* ONERING_PROTO_VERSION */
	uint16_t type;    /* enum onering_msg_type, | ONERING_MSG_REPLY in replies */
	uint32_t seq;     /* chosen by the requester, echoed in the reply */
	int32_t status;   /* replies: 0 or a negative errno */
	union {
		uint8_t raw[ONERING_MSG_SIZE - 16];
		/* An error reply (status < 0) may carry its reason here: text naming
		 * the limit or check that failed and how to change it, NUL-terminated
		 * (empty: none; HELLO replies with -EPROTO/-ENXIO carry u.hello). */
		char reason[ONERING_MSG_SIZE - 16];
		struct onering_msg_hello hello;
		struct onering_msg_queue_open queue_open;
		struct onering_msg_queue queue;
		struct onering_msg_sub_add sub_add;
		struct onering_msg_stats_item stats_item;
		struct onering_msg_group group;
		struct onering_msg_group_stats group_stats;
		struct onering_msg_port_tx port_tx;
		struct onering_msg_counters counters;
		struct onering_msg_sub_fd sub_fd;
	} u;
};

ONERING_STATIC_ASSERT(sizeof(struct onering_msg) == ONERING_MSG_SIZE, "control message size");
ONERING_STATIC_ASSERT(offsetof(struct onering_msg, u) == 16, "control message header");
ONERING_STATIC_ASSERT(sizeof(struct onering_msg_stats_item) <= ONERING_MSG_SIZE - 16,
		      "stats item fits");
ONERING_STATIC_ASSERT(sizeof(struct onering_msg_group_stats) <= ONERING_MSG_SIZE - 16,
		      "group stats item fits");
ONERING_STATIC_ASSERT(offsetof(struct onering_msg_group_stats, what) ==
			      offsetof(struct onering_msg_stats_item, what),
		      "stats items share their tag");
ONERING_STATIC_ASSERT(ONERING_BC_NR <= ONERING_STATS_COUNTERS_MAX &&
			      ONERING_PC_NR <= ONERING_STATS_COUNTERS_MAX &&
			      ONERING_QC_NR <= ONERING_STATS_COUNTERS_MAX &&
			      ONERING_PORTC_NR <= ONERING_STATS_COUNTERS_MAX &&
			      ONERING_RXQC_NR <= ONERING_STATS_COUNTERS_MAX &&
			      ONERING_EXC_NR <= ONERING_STATS_COUNTERS_MAX &&
			      ONERING_LC_NR <= ONERING_STATS_COUNTERS_MAX &&
			      ONERING_SC_NR <= ONERING_STATS_COUNTERS_MAX,
		      "every counter list fits a stats item (a longer one needs a new item)");




/* ---------------------------------------------------------------------- */
/* Helpers shared by both ends (shm/proto.c).                              */

#define ONERING_MSG_MAX_FDS 5 /* the most any message carries (QUEUE_OPEN's reply) */

/** Fill the fixed part of a message. */
void onering_msg_init(struct onering_msg *msg, uint16_t type, uint32_t seq);

/**
 * Send one message with up to ONERING_MSG_MAX_FDS fds (SCM_RIGHTS).
 * @param flags send(2) flags; the broker passes MSG_DONTWAIT
 * @return 0; -EAGAIN the peer's socket is full; other -errno (EPIPE: peer gone).
 */
int onering_msg_send(int sock, const struct onering_msg *msg, const int *fds, unsigned nfds,
		     int flags);

/**
 * Receive one message. Fds arrive close-on-exec; at most max_fds are kept
 * in fds[], every other fd the message carried is closed and counted in
 * *extra_fds. The message is not validated beyond its length.
 * @return 0; -ECONNRESET the peer hung up (or sent a zero-length message,
 *   which reads the same); -EMSGSIZE the message was not exactly
 *   ONERING_MSG_SIZE bytes (or MSG_TRUNC/MSG_CTRUNC); -EAGAIN nothing to
 *   read (non-blocking); other -errno.
 *   On any error no fd is kept: *nfds is 0, and the fds the message
 *   carried are closed and counted in *extra_fds.
 */
int onering_msg_recv(int sock, struct onering_msg *msg, int *fds, unsigned max_fds,
		     unsigned *nfds, unsigned *extra_fds, int flags);

/**
 * The reason an error reply carries (u.reason), made printable, into buf.
 * @return true if there is one.
 */
bool onering_msg_reason(const struct onering_msg *msg, char *buf, size_t len);

/** Check magic and version. @return 0 or -EPROTO. */
int onering_msg_check(const struct onering_msg *msg);

/** Names of group settings ("rr", "spill", "local-first", ...); "?" if unknown. */
const char *onering_policy_name(unsigned policy);
const char *onering_numa_name(unsigned numa);
const char *onering_wake_name(unsigned wake);

/* Idle strategies, what a poller (oneringd --idle) or a client's
 * onering_wait (onering_queue_options.idle, $ONERING_IDLE) does when it
 * finds nothing to do; enum onering_idle (client/onering.h) has these
 * numbers. */
#define ONERING_IDLE_MAX 2 /* 0 backoff, 1 busy, 2 overprovisioned */
/** "backoff", "busy", "overprovisioned"; "?" if unknown. */
const char *onering_idle_name(unsigned idle);
/** The number of an idle strategy's name; -EINVAL for any other word. */
int onering_idle_parse(const char *name);

/**
 * Parse one group setting, KEY=VALUE: policy=rr|least|sticky|lifo|local,
 * numa=strict|interleave|spill:P, wake=lifo|fifo|rr|local-first,
 * max_running=N (0 = the CPU count), backlog=N. Sets the field and its
 * ONERING_GSET_* bit in m->set.
 * @return 0; -EINVAL with a readable reason in err.
 */
int onering_group_setting_parse(struct onering_msg_group *m, const char *kv, char *err,
				size_t err_size);

/** True for [A-Za-z0-9_.-]{1,31}. */
int onering_name_valid(const char *name);

/**
 * The control socket path of an instance: dir/name.sock, where dir is the
 * given one, else $ONERING_SOCKET_DIR, else /run/onering as root, else
 * $XDG_RUNTIME_DIR/onering, else /tmp/onering-UID.
 * @return 0; -EINVAL bad name; -ENAMETOOLONG the path does not fit.
 */
int onering_socket_path(const char *name, const char *dir, char *buf, size_t len);

/** The directory part that onering_socket_path() would use. */
int onering_socket_dir(const char *dir, char *buf, size_t len);

/**
 * Connect to the instance at path and say HELLO: the one handshake every
 * client (libonering, the onering tool) goes through. Before it sends
 * anything it checks who listens (SO_PEERCRED): root, this process's
 * effective uid, trust_uid, or the uid in $ONERING_TRUST_UID - anyone else
 * could be an impostor that swapped the socket.
 * @param name   the instance the caller means to reach
 * @param trust_uid  one more uid to trust as the broker's, or -1
 * @param sock   receives the connected socket (close-on-exec) on success
 * @param reply  receives the broker's HELLO reply on success
 * @param err    a readable reason on failure: what failed, the path or
 *               uid involved, and how to fix it
 * @return 0; -ENOENT no broker at path; -EACCES refused (uid named);
 *   -EPROTO version mismatch (both named), or a reply that is not a HELLO
 *   reply or whose status is not 0 or an errno; -ENXIO another instance;
 *   -ETIMEDOUT no reply in 5 s; -ECONNRESET hung up; -EPERM the server runs
 *   as a uid not trusted (named, with the option that trusts it); other -errno.
 */
int onering_proto_connect(const char *path, const char *name, long trust_uid, int *sock,
			  struct onering_msg *reply, char *err, size_t err_size);

/**
 * One request and its answer on a socket onering_proto_connect() opened: the
 * client side of every request/reply, for callers without an attachment
 * (the onering tool, tests). Sends req (no fds), then receives until the
 * answer: the message with req's seq and type req->type | ONERING_MSG_REPLY,
 * or, for ONERING_MSG_STATS, STATS_END after any number of STATS_ITEMs, each
 * handed to item() on the way. A message that answers another seq is dropped.
 * @param rep     receives the answer (its status is the return value)
 * @param item    called with each STATS_ITEM of the answer, or NULL; a
 *                negative return stops the call and is returned (the rest of
 *                the answer is then still on the socket: close it)
 * @param timeout_ms  the longest wait for each message
 * @return the answer's status: 0 or a negative errno from the broker;
 *   -ECONNRESET the broker hung up or is shutting down; -ETIMEDOUT nothing
 *   within timeout_ms; -EPROTO an answer that fails onering_msg_check() or
 *   whose status is not 0 or an errno; item()'s negative return; other
 *   -errno from send/recv.
 * Context: any thread; blocks in poll(2) for at most timeout_ms per message.
 */
int onering_proto_call(int sock, const struct onering_msg *req, struct onering_msg *rep,
		       int (*item)(const struct onering_msg *msg, void *arg), void *arg,
		       int timeout_ms);

/**
 * The counters segment of the instance at path, without attaching: connect,
 * check who listens as onering_proto_connect() does, send COUNTERS, take
 * the memfd the reply carries. The broker refreshes the segment before it
 * answers. Map it read-only (it is sealed F_SEAL_FUTURE_WRITE) and read it
 * with onering_metrics_read() (shm/counters_seg.h).
 * @param fd   receives the segment's fd (close-on-exec) on success
 * @return 0; -ENOENT no broker; -EACCES refused (uid named); -EPERM the
 *   server's uid is not trusted; -ENXIO another instance; -EPROTO an answer
 *   that is not a COUNTERS reply with one fd (an older broker); -ETIMEDOUT;
 *   other -errno. err says which, with the fix.
 * Context: any thread; blocks up to 5 s for the answer.
 */
int onering_proto_counters(const char *path, const char *name, long trust_uid, int *fd,
			   char *err, size_t err_size);

/**
 * Wait up to timeout_ms for one message on a blocking-or-not socket and
 * receive it (fds as onering_msg_recv()).
 * @return as onering_msg_recv(), or -ETIMEDOUT.
 */
int onering_msg_recv_timeout(int sock, struct onering_msg *msg, int *fds, unsigned max_fds,
			     unsigned *nfds, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_SHM_PROTO_H */
