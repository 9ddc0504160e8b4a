/* SPDX-License-Identifier: MIT */
/*
 * onering shared-memory ABI: the bytes that the broker and its clients
 * share. This header is the ABI document; docs/shm-abi.md explains it.
 *
 * Rules
 *  - Fixed-width types only, explicit padding and reserved fields, every
 *    size and offset pinned by a static assertion at the end of this file.
 *  - Any change to a layout bumps ONERING_ABI_MAJOR (incompatible) or
 *    ONERING_ABI_MINOR (a reserved field given a meaning that old readers
 *    may ignore) in the same commit as docs/shm-abi.md.
 *  - Everything a client can write is untrusted input to the broker: the
 *    broker copies each such field into a local once and checks it.
 *
 * A consumer queue is two memfd segments:
 *
 *   events segment   (broker writes; sealed F_SEAL_FUTURE_WRITE, the client
 *                     maps it read-only)
 *     [0, 64)        struct onering_seg_header
 *     [64, 128)      struct onering_events_ctl: event-ring producer index,
 *                    submission-ring consumer index, geometry
 *     [128, ...)     event slots, capacity x struct onering_event
 *     then           (1.2) the packet area, if the queue has one
 *     then           (1.6) with priority levels: struct onering_levels_ctl
 *                    (the upper levels' producer indices), then one ring of
 *                    capacity slots per level above 0
 *
 *   consumer segment (the client writes; the broker validates)
 *     [0, 64)        struct onering_seg_header
 *     [64, 128)      struct onering_consumer_ctl: event-ring consumer index
 *                    (1.6: and the upper levels' consumer indices)
 *     [128, 192)     struct onering_doorbell: consumer state + futex word
 *     [192, 256)     struct onering_sq_ctl: submission-ring producer index
 *     [256, ...)     submission slots, sq_capacity x struct onering_request
 *     then           (1.3) the watched words, if the queue has any
 *     then           (1.8) the stream area, if the queue has one, at a 4 KiB
 *                    boundary (onering_stream_offset): receive buffers the
 *                    broker fills, then transmit buffers the client fills
 *
 * (1.7) and one bells segment per poller and user, shared by every queue of
 * that user's clients that the poller serves (the client writes; the broker
 * reads and clears):
 *     [0, 64)        struct onering_seg_header
 *     [64, 576)      ONERING_BELL_WORDS words of one bit per queue: set by
 *                    the client after each submission (ONERING_BELL_*);
 *                    (1.9) word 0 is the summary of words 1..63
 */
#ifndef ONERING_SHM_ABI_H
#define ONERING_SHM_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "atomic.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "ONRG" read as a little-endian u32 */
#define ONERING_SEG_MAGIC 0x47524e4fu
#define ONERING_ABI_MAJOR 1u
#define ONERING_ABI_MINOR 9u

/* A segment's node when it is not bound to one. */
#define ONERING_NODE_ANY 0xffffffffu

enum onering_seg_kind {
	ONERING_SEG_EVENTS = 1,   /* event ring (broker -> client), client read-only */
	ONERING_SEG_CONSUMER = 2, /* consumer words + submission ring, client writable */
	ONERING_SEG_COUNTERS = 3, /* (1.5) the broker's counters, read-only to every reader
				   * (shm/counters_seg.h) */
	ONERING_SEG_BELLS = 4,    /* (1.7) submission bells of one user's queues on one
				   * poller, client writable (ONERING_BELL_*) */
	ONERING_SEG_KIND_MAX = 4,
};

/*
 * Segment header, at offset 0 of every segment. Written once by the broker
 * before the segment's fd is sent, never changed afterwards.
 */
struct onering_seg_header {
	uint32_t magic;     /* ONERING_SEG_MAGIC */
	uint16_t abi_major; /* ONERING_ABI_MAJOR: a reader refuses any other */
	uint16_t abi_minor; /* ONERING_ABI_MINOR: a reader accepts any */
	uint32_t kind;      /* enum onering_seg_kind */
	uint32_t node;      /* NUMA node the pages are bound to, or ONERING_NODE_ANY */
	uint64_t size;      /* bytes of the whole segment, header included */
	uint64_t epoch;     /* random per broker start; names one broker lifetime */
	uint64_t features;  /* feature bits, none defined in 1.0: must be 0 */
	uint8_t reserved[24];
};

/* ---------------------------------------------------------------------- */
/* The event record: 64 bytes, one cache line, written by the broker.      */

enum onering_event_kind {
	ONERING_EV_NONE = 0,
	ONERING_EV_FD = 1,      /* fd readiness; events = epoll mask */
	ONERING_EV_TIMER = 2,   /* timer expiry; payload.timer */
	ONERING_EV_SIGNAL = 3,  /* signalfd readiness */
	ONERING_EV_FILE = 4,    /* inotify/fanotify readiness */
	ONERING_EV_WORD = 5,    /* watched word changed; payload.word */
	ONERING_EV_AIO = 6,     /* completion eventfd; payload.aio */
	ONERING_EV_PROCESS = 7, /* pidfd readiness: the process exited */
	ONERING_EV_USER = 8,    /* posted by a client; payload.user */
	ONERING_EV_NIC = 9,     /* packet on a NIC rx queue; payload.nic */
	ONERING_EV_CONTROL = 10, /* broker -> client notice (shutdown, ...) */
	ONERING_EV_STREAM = 11,  /* (1.8) completion-mode socket; payload.stream */
};

/* onering_event.flags */
#define ONERING_EVF_COALESCED 0x0001u   /* stands for several readiness edges */
#define ONERING_EVF_REDELIVERED 0x0002u /* a dead consumer's record, delivered again */
#define ONERING_EVF_LEVEL 0x0004u       /* from a LEVEL source: needs collection */
#define ONERING_EVF_TRUNCATED 0x0008u   /* NIC payload cut at snaplen */
#define ONERING_EVF_FOREIGN 0x0010u     /* (ABI 1.2) group delivery: the subscription belongs
					 * to another client, so this client cannot check
					 * its generation */
/* (ABI 1.6) bits 8..10: the record's priority (its subscription's or its
 * post's, 0..ONERING_PRIO_LEVELS-1); the queue's ring it came through is
 * level min(priority, levels - 1). */
#define ONERING_EVF_PRIO_SHIFT 8u
#define ONERING_EVF_PRIO_MASK 0x0700u

/*
 * Priority levels (ABI 1.6). A queue has 1 to ONERING_PRIO_LEVELS event
 * rings of equal capacity, level 0 the lowest; its consumer takes the
 * highest non-empty level first. The layout has room for
 * ONERING_PRIO_LEVELS_ROOM (one cache line of consumer indices, one of
 * producer indices, 3 priority bits in a record); the limit is lower
 * because every level is a whole ring of memory on the consumer's node and
 * one more index an empty poll looks at (docs/semantics.md, Priorities).
 */
#define ONERING_PRIO_LEVELS 4u
#define ONERING_PRIO_LEVELS_ROOM 8u

struct onering_event_timer {
	uint64_t expirations; /* periods elapsed since the last record (>= 1) */
	uint8_t reserved[24];
};

struct onering_event_word {
	uint32_t old_value;
	uint32_t new_value;
	uint32_t word_idx; /* index of the word in the client's word table */
	uint8_t reserved[20];
};

struct onering_event_aio {
	uint64_t completions; /* eventfd count observed, when known */
	uint8_t reserved[24];
};

struct onering_event_nic {
	uint16_t port;
	uint16_t queue;
	uint32_t length;         /* packet length on the wire */
	uint32_t rss_hash;
	uint32_t captured;       /* bytes copied into the packet area (<= snaplen) */
	uint64_t payload_offset; /* offset of the bytes in the queue's packet area */
	uint64_t rx_timestamp_ns;
};

/* ONERING_EV_USER (ABI 1.2): posted with ONERING_REQ_POST. */
struct onering_event_user {
	uint64_t flow;    /* the poster's flow key (sticky groups keep a flow on one queue) */
	uint8_t data[24]; /* the poster's bytes */
};

struct onering_event_control {
	uint32_t code;  /* enum onering_control_code */
	uint32_t arg;   /* POST_REFUSED: the group id the post named */
	int32_t status; /* (1.4) POST_REFUSED: why, a negative errno (below) */
	uint32_t reserved0;
	uint64_t flow;  /* (1.4) POST_REFUSED: the post's flow key */
	uint8_t reserved[8];
};

enum onering_control_code {
	ONERING_CTL_SHUTDOWN = 1,     /* the broker is stopping: detach */
	ONERING_CTL_POST_REFUSED = 2, /* (1.4) a POST this queue made was not delivered:
				       * status -ENOENT (no such group, or it is gone) or
				       * -EACCES (this client may not post to it); cookie
				       * and payload.control.flow are the post's */
	ONERING_CTL_RESTARTED = 3,    /* made by the client library, never by a broker:
				       * the queue moved to a broker that replaced a
				       * dead one. arg: this queue's subscriptions that
				       * could not be restored; status: why the first
				       * of them failed (negative errno) or 0; flow:
				       * requests and posts this queue had put on its
				       * submission ring that the dead broker never took
				       * (lost) */
};

/*
 * (1.8) Completion-mode sockets (ONERING_EV_STREAM). The broker moves the
 * bytes: it receives into the queue's receive buffers and sends from the
 * queue's stream area, and tells the consumer with these records. The
 * record's sub_id/sub_gen name the connection (a subscription the broker
 * made for an accepted connection, or the one the client added).
 */
enum onering_stream_op {
	ONERING_STREAM_RECV = 1,     /* status > 0: that many bytes at offset, in receive
				      * buffer `buf` (give it back: ONERING_REQ_STREAM_DONE);
				      * status 0: end of stream (the peer shut its side
				      * down); status < 0: the connection failed (-errno) */
	ONERING_STREAM_SENT = 2,     /* a SEND is done: status = bytes sent (its length),
				      * or -errno; offset and length are the SEND's, tag
				      * its tag */
	ONERING_STREAM_ACCEPTED = 3, /* a new connection on a listening socket: this
				      * record's sub_id/sub_gen name it, cookie is the
				      * listener's, buf the listener's sub_id */
	ONERING_STREAM_CLOSED = 4,   /* the connection is closed (the client's CLOSE):
				      * status 0; its last record */
};

/* onering_event.flags of ONERING_EV_STREAM records */
#define ONERING_EVF_STREAM_TRUNC 0x0020u /* a datagram longer than the buffer was cut */

struct onering_event_stream {
	uint32_t op;      /* enum onering_stream_op */
	int32_t status;   /* bytes, 0 (end of stream) or -errno */
	uint64_t offset;  /* RECV, SENT: offset of the bytes in the consumer segment */
	uint32_t buf;     /* RECV: receive buffer index; ACCEPTED: the listener's sub_id */
	uint32_t length;  /* SENT: bytes the SEND asked for */
	uint64_t tag;     /* SENT: the SEND's tag (its user_data) */
};

union onering_event_payload {
	uint8_t raw[32];
	uint64_t u64[4];
	struct onering_event_timer timer;
	struct onering_event_word word;
	struct onering_event_aio aio;
	struct onering_event_nic nic;
	struct onering_event_user user;
	struct onering_event_control control;
	struct onering_event_stream stream; /* (1.8) */
};

struct onering_event {
	uint64_t cookie;       /* user data given when the subscription was added */
	uint32_t sub_id;       /* subscription id (slot in the broker's table) */
	uint32_t sub_gen;      /* generation of that slot; cancellation check */
	uint16_t kind;         /* enum onering_event_kind */
	uint16_t flags;        /* ONERING_EVF_* */
	uint32_t events;       /* epoll-style event mask (EPOLLIN, ...) */
	uint64_t timestamp_ns; /* CLOCK_MONOTONIC when the broker published it */
	union onering_event_payload payload;
};

/* ---------------------------------------------------------------------- */
/* The submission record: client -> broker requests, 64 bytes.             */

enum onering_request_op {
	ONERING_REQ_NOP = 0,
	ONERING_REQ_REARM = 1, /* re-enable a ONESHOT or collected LEVEL subscription */
	ONERING_REQ_MOD = 2,   /* change the event mask of a subscription */
	ONERING_REQ_DEL = 3,   /* delete a subscription */
	ONERING_REQ_POST = 4,  /* (ABI 1.2) a user event to a group: sub_id = group id,
				* user_data = cookie, arg[0] = flow, arg[1..3] = 24 bytes */
	ONERING_REQ_TIMER_ARM = 5, /* (ABI 1.3) arm a timer subscription: arg[0] = first
				    * expiry (ns; relative unless ABSTIME), arg[1] = period
				    * (ns, 0 = one-shot); arg[0] == 0 disarms */
	ONERING_REQ_WORD_WATCH = 6, /* (ABI 1.3) watch word arg[0] of the queue's word
				     * area: a WORD record whenever it differs from the
				     * last value reported, starting from arg[1] (the
				     * value the client read when it asked);
				     * sub_gen = the watch's generation (0 stops it),
				     * user_data = cookie */
	/* (1.8) completion-mode sockets: sub_id/sub_gen name the connection,
	 * user_data is the tag echoed in its SENT record. */
	ONERING_REQ_SEND = 7,   /* send arg[1] bytes at offset arg[0] of the queue's
				 * consumer segment (inside its stream area); flags
				 * ONERING_SEND_*; in order per connection, partial sends
				 * finished by the broker; one SENT record when done */
	ONERING_REQ_STREAM_DONE = 8, /* give receive buffers back: arg[0] = how many
				      * (1..ONERING_STREAM_DONE_MAX), the indices packed
				      * as u32 in arg[1..4]; sub_id, sub_gen 0 */
	ONERING_REQ_CLOSE = 9,  /* close the connection (or stop a listener) once its
				 * SENDs before this are done; flags ONERING_CLOSE_* */
	ONERING_REQ_OP_MAX = 9,
};

/* onering_request.flags of ONERING_REQ_SEND */
#define ONERING_SEND_TO 0x1u /* datagram to the address in the ONERING_STREAM_ADDR_BYTES
			      * before the bytes (struct onering_stream_addr) */
/* onering_request.flags of ONERING_REQ_CLOSE */
#define ONERING_CLOSE_WRITE 0x1u /* shut down the sending side only (half-close) */
#define ONERING_CLOSE_ABORT 0x2u /* at once: SENDs not done fail with -ECANCELED */
#define ONERING_STREAM_DONE_MAX 8u

/*
 * (1.8) A datagram's peer address, in the ONERING_STREAM_ADDR_BYTES before
 * its bytes: the broker writes it before a received datagram; a SEND with
 * ONERING_SEND_TO reads it (untrusted: len is checked).
 */
#define ONERING_STREAM_ADDR_BYTES 128u
struct onering_stream_addr {
	uint32_t len;         /* bytes of addr used */
	uint32_t reserved;
	uint8_t addr[120];    /* a struct sockaddr (sockaddr_in, _in6 or _un) */
};

/* onering_request.flags of ONERING_REQ_TIMER_ARM */
#define ONERING_TIMER_ABSTIME 0x1u  /* arg[0] is an absolute time */
#define ONERING_TIMER_REALTIME 0x2u /* ... on CLOCK_REALTIME (else CLOCK_MONOTONIC) */
/* onering_request.flags of ONERING_REQ_POST (ABI 1.6): the post's priority
 * in bits 0..2; the broker takes values above ONERING_PRIO_LEVELS - 1 as
 * ONERING_PRIO_LEVELS - 1. */
#define ONERING_POST_PRIO_MASK 0x7u

struct onering_request {
	uint16_t op;    /* enum onering_request_op */
	uint16_t flags; /* op-specific, 0 unless the op defines one */
	uint32_t sub_id;
	uint32_t sub_gen;
	uint32_t events;
	uint64_t user_data; /* echoed in a reply record, if the op makes one */
	uint64_t arg[5];    /* op-specific arguments */
};

/* ---------------------------------------------------------------------- */
/* Control blocks. Each index lives alone on its cache line.               */

/*
 * Ring positions are free-running 64-bit counters (_pos): slot index
 * (_idx) = pos & (capacity - 1). They wrap at 2^64 only after centuries
 * of traffic, but all arithmetic is modular (tail - head is the
 * occupancy even across the wrap) and the tests start them near 2^64.
 */

/* In the events segment: written by the broker only. */
struct onering_events_ctl {
	ONERING_ATOMIC(uint64_t) ev_tail_pos; /* event ring: next slot the broker fills */
	ONERING_ATOMIC(uint64_t) sq_head_pos; /* submission ring: next request the broker reads */
	uint32_t ev_capacity;                 /* event slots, a power of two */
	uint32_t sq_capacity;                 /* submission slots, a power of two */
	uint64_t packet_area_offset;          /* 0 when the queue carries no packets */
	uint64_t packet_area_size;
	ONERING_ATOMIC(uint32_t) poller_flags; /* ONERING_POLLER_* (ABI 1.1) */
	uint32_t nr_words;                     /* (1.3) watched-word area: u32 words */
	uint64_t words_offset;                 /* (1.3) its offset in the consumer segment,
						* 0 when the queue has none */
	uint32_t nr_levels;                    /* (1.6) priority levels: event rings; 0 = 1 */
	uint8_t reserved[4];
};

/*
 * onering_events_ctl.poller_flags (ABI 1.1): the poller that serves the
 * queue sets NEED_WAKEUP before it blocks in its idle sleep. A client that
 * has just put a request on the submission ring (R1), then a full fence,
 * finds it set and writes the queue's kick eventfd; otherwise it makes no
 * system call. The poller, after setting it, fences and re-checks every
 * submission ring before it sleeps (the doorbell's Dekker handshake, run the
 * other way). A 1.0 reader ignores it: its requests wait for the poller's
 * sleep to end, as before.
 */
#define ONERING_POLLER_NEED_WAKEUP 0x1u
/* (1.3) The bits above NEED_WAKEUP count the poller's sleeps: a client that
 * kicked for sleep n does not kick again until it sees n + 1 (one eventfd
 * write per sleep, not one per request). A 1.2 reader ignores them. */
#define ONERING_POLLER_SLEEP_SHIFT 1u
/*
 * (1.7) Submission bells. The poller does not look at every submission ring
 * on every loop (its cost would grow with idle clients): it looks at the
 * rings whose bell bit is set. A client, after publishing requests (R1 of
 * the submission ring), sets its queue's bit - bit (b % 64) of word (b / 64)
 * of the bells segment, b being QUEUE_OPEN's reply `bell` - with a seq_cst
 * atomic OR (B1), then reads poller_flags (seq_cst, for the kick). The
 * poller takes a word with an atomic exchange to 0 (seq_cst, B2), then
 * reads the tails of the rings whose bits it took; a ring it leaves
 * non-empty it marks again itself. Before an idle sleep it looks at the
 * words after its fence F2 instead of at every ring. The bells segment is
 * shared by the queues of one user on one poller: a client can set or clear
 * only bits of its own user's queues (a stray bit costs the poller one look
 * at a ring; a cleared one delays that user's request until the queue's next
 * submission or the poller's next full look, made after each idle sleep).
 *
 * (1.9) The summary. A broker of 1.9 or later gives the queues of clients
 * that said 1.9 or later in HELLO bits in words 1..63 only: word 0 is the
 * summary, bit w set meaning "word w may have bits". Such a client, after
 * its OR into word w (B1), loads word 0 (seq_cst) and, if bit w is clear,
 * ORs it in (seq_cst): onering_bell_ring(). The poller takes word 0 with an
 * exchange (seq_cst) and then only the words whose summary bits it took,
 * so its loop costs one load per page however many queues are idle. The
 * client sets the summary after its own bit, never only when the word was
 * 0 before, so each live submitter leaves a summary that names its word:
 * a client that dies between the two ORs strands only its own bit, and the
 * poller gives every word with bits a summary bit at least once a
 * millisecond and before it sleeps, so a stranded bit is taken then. The
 * queues of an older client get pages of their own, which the poller scans
 * word by word as in 1.7.
 */
#define ONERING_BELL_WORDS 64u
#define ONERING_BELL_BITS (ONERING_BELL_WORDS * 64u) /* queues per bells segment */
#define ONERING_BELLS_OFFSET 64u
#define ONERING_BELLS_SEG_SIZE (ONERING_BELLS_OFFSET + ONERING_BELL_WORDS * 8u)
#define ONERING_BELL_SUMMARY_WORD 0u /* (1.9) */
#define ONERING_BELL_SUMMARY_MINOR 9u /* the ABI minor from which it is kept */

/*
 * (1.9) B1 as a client makes it: the queue's bit into its word, then, if
 * summary is not NULL (a 1.9 broker, a bit above word 0), the word's bit
 * into the summary unless it is there already. All seq_cst: the poller's
 * exchanges of the summary and then of the word see this bit or leave the
 * summary naming the word (shm-abi.md, The bells).
 */
static inline void onering_bell_ring(ONERING_ATOMIC(uint64_t) *word, uint64_t mask,
				     ONERING_ATOMIC(uint64_t) *summary, uint64_t summary_mask)
{
	onering_atomic_fetch_or(word, mask, onering_mo_seq_cst);
	if (summary && !(onering_atomic_load(summary, onering_mo_seq_cst) & summary_mask))
		onering_atomic_fetch_or(summary, summary_mask, onering_mo_seq_cst);
}

/* In the consumer segment: written by the client only. */
struct onering_consumer_ctl {
	ONERING_ATOMIC(uint64_t) ev_head_pos; /* event ring: next slot the client reads */
	/* (1.6) the rings of levels 1..7: next slot the client reads, level k at
	 * [k - 1]; only the first nr_levels - 1 are used (the rest stay 0). */
	ONERING_ATOMIC(uint64_t) level_head_pos[ONERING_PRIO_LEVELS_ROOM - 1];
};

/*
 * (1.6) In the events segment of a queue with nr_levels > 1, at
 * onering_events_levels_offset(): the producer indices of the rings of
 * levels 1..7 (level k at [k - 1]), written by the broker only; the rings'
 * slots follow it (onering_events_level_slots()).
 */
struct onering_levels_ctl {
	ONERING_ATOMIC(uint64_t) level_tail_pos[ONERING_PRIO_LEVELS_ROOM - 1];
	uint8_t reserved[8];
};

/* Consumer run states in onering_doorbell.state. */
enum onering_consumer_state {
	ONERING_CONSUMER_RUNNING = 0,
	ONERING_CONSUMER_SPINNING = 1,
	ONERING_CONSUMER_SLEEPING = 2,
};

/*
 * The doorbell, in the consumer segment. state is written by the client
 * (and moved SLEEPING -> RUNNING by a broker that wakes it); futex is the
 * word the client sleeps on and the broker bumps before FUTEX_WAKE.
 */
struct onering_doorbell {
	ONERING_ATOMIC(uint32_t) state;
	ONERING_ATOMIC(uint32_t) futex;
	ONERING_ATOMIC(uint64_t) idle_ns; /* (ABI 1.2) CLOCK_MONOTONIC when the consumer last
					   * found its ring empty and began to wait; the
					   * broker's lifo/fifo wake order. Untrusted: used
					   * only to order members of one group. */
	uint8_t reserved[48];
};

/* In the consumer segment: written by the client only. */
struct onering_sq_ctl {
	ONERING_ATOMIC(uint64_t) sq_tail_pos; /* submission ring: next slot the client fills */
	uint8_t reserved[56];
};

/* ---------------------------------------------------------------------- */
/* Segment layouts.                                                        */

#define ONERING_EVENTS_CTL_OFFSET 64u
#define ONERING_EVENTS_SLOTS_OFFSET 128u

#define ONERING_CONSUMER_CTL_OFFSET 64u
#define ONERING_DOORBELL_OFFSET 128u
#define ONERING_SQ_CTL_OFFSET 192u
#define ONERING_SQ_SLOTS_OFFSET 256u

/* Smallest and largest ring capacities the broker creates. */
#define ONERING_RING_MIN_CAPACITY 1u
#define ONERING_RING_MAX_CAPACITY (1u << 24)

/* ---------------------------------------------------------------------- */
/* Pinned layout.                                                          */

#define ONERING_ABI_OFFSET(type, field, off) \
	ONERING_STATIC_ASSERT(offsetof(type, field) == (off), #type "." #field " moved")

ONERING_STATIC_ASSERT(sizeof(struct onering_seg_header) == 64, "segment header is 64 bytes");
ONERING_ABI_OFFSET(struct onering_seg_header, magic, 0);
ONERING_ABI_OFFSET(struct onering_seg_header, abi_major, 4);
ONERING_ABI_OFFSET(struct onering_seg_header, abi_minor, 6);
ONERING_ABI_OFFSET(struct onering_seg_header, kind, 8);
ONERING_ABI_OFFSET(struct onering_seg_header, node, 12);
ONERING_ABI_OFFSET(struct onering_seg_header, size, 16);
ONERING_ABI_OFFSET(struct onering_seg_header, epoch, 24);
ONERING_ABI_OFFSET(struct onering_seg_header, features, 32);
ONERING_ABI_OFFSET(struct onering_seg_header, reserved, 40);

ONERING_STATIC_ASSERT(sizeof(struct onering_event) == 64, "event record is one cache line");
ONERING_ABI_OFFSET(struct onering_event, cookie, 0);
ONERING_ABI_OFFSET(struct onering_event, sub_id, 8);
ONERING_ABI_OFFSET(struct onering_event, sub_gen, 12);
ONERING_ABI_OFFSET(struct onering_event, kind, 16);
ONERING_ABI_OFFSET(struct onering_event, flags, 18);
ONERING_ABI_OFFSET(struct onering_event, events, 20);
ONERING_ABI_OFFSET(struct onering_event, timestamp_ns, 24);
ONERING_ABI_OFFSET(struct onering_event, payload, 32);
ONERING_STATIC_ASSERT(sizeof(union onering_event_payload) == 32, "payload is 32 bytes");
ONERING_STATIC_ASSERT(sizeof(struct onering_event_timer) == 32, "timer payload");
ONERING_STATIC_ASSERT(sizeof(struct onering_event_word) == 32, "word payload");
ONERING_STATIC_ASSERT(sizeof(struct onering_event_aio) == 32, "aio payload");
ONERING_STATIC_ASSERT(sizeof(struct onering_event_nic) == 32, "nic payload");
ONERING_STATIC_ASSERT(sizeof(struct onering_event_control) == 32, "control payload");
ONERING_ABI_OFFSET(struct onering_event_nic, port, 0);
ONERING_ABI_OFFSET(struct onering_event_nic, queue, 2);
ONERING_ABI_OFFSET(struct onering_event_nic, length, 4);
ONERING_ABI_OFFSET(struct onering_event_nic, rss_hash, 8);
ONERING_ABI_OFFSET(struct onering_event_nic, captured, 12);
ONERING_ABI_OFFSET(struct onering_event_nic, payload_offset, 16);
ONERING_ABI_OFFSET(struct onering_event_nic, rx_timestamp_ns, 24);
ONERING_ABI_OFFSET(struct onering_event_control, code, 0);
ONERING_ABI_OFFSET(struct onering_event_control, arg, 4);
ONERING_ABI_OFFSET(struct onering_event_control, status, 8);
ONERING_ABI_OFFSET(struct onering_event_control, flow, 16);
ONERING_ABI_OFFSET(struct onering_event_word, old_value, 0);
ONERING_ABI_OFFSET(struct onering_event_word, new_value, 4);
ONERING_ABI_OFFSET(struct onering_event_word, word_idx, 8);

ONERING_STATIC_ASSERT(sizeof(struct onering_request) == 64, "request record is 64 bytes");
ONERING_ABI_OFFSET(struct onering_request, op, 0);
ONERING_ABI_OFFSET(struct onering_request, flags, 2);
ONERING_ABI_OFFSET(struct onering_request, sub_id, 4);
ONERING_ABI_OFFSET(struct onering_request, sub_gen, 8);
ONERING_ABI_OFFSET(struct onering_request, events, 12);
ONERING_ABI_OFFSET(struct onering_request, user_data, 16);
ONERING_ABI_OFFSET(struct onering_request, arg, 24);

ONERING_STATIC_ASSERT(sizeof(struct onering_events_ctl) == 64, "events ctl is one line");
ONERING_ABI_OFFSET(struct onering_events_ctl, ev_tail_pos, 0);
ONERING_ABI_OFFSET(struct onering_events_ctl, sq_head_pos, 8);
ONERING_ABI_OFFSET(struct onering_events_ctl, ev_capacity, 16);
ONERING_ABI_OFFSET(struct onering_events_ctl, sq_capacity, 20);
ONERING_ABI_OFFSET(struct onering_events_ctl, packet_area_offset, 24);
ONERING_ABI_OFFSET(struct onering_events_ctl, packet_area_size, 32);
ONERING_ABI_OFFSET(struct onering_events_ctl, poller_flags, 40);
ONERING_ABI_OFFSET(struct onering_events_ctl, nr_words, 44);
ONERING_ABI_OFFSET(struct onering_events_ctl, words_offset, 48);
ONERING_ABI_OFFSET(struct onering_events_ctl, nr_levels, 56);
ONERING_STATIC_ASSERT(sizeof(struct onering_consumer_ctl) == 64, "consumer ctl is one line");
ONERING_ABI_OFFSET(struct onering_consumer_ctl, ev_head_pos, 0);
ONERING_ABI_OFFSET(struct onering_consumer_ctl, level_head_pos, 8);
ONERING_STATIC_ASSERT(sizeof(struct onering_levels_ctl) == 64, "levels ctl is one line");
ONERING_ABI_OFFSET(struct onering_levels_ctl, level_tail_pos, 0);
ONERING_STATIC_ASSERT(ONERING_PRIO_LEVELS <= ONERING_PRIO_LEVELS_ROOM &&
			      (ONERING_PRIO_LEVELS_ROOM - 1) << ONERING_EVF_PRIO_SHIFT ==
				      ONERING_EVF_PRIO_MASK,
		      "the priority levels fit the index lines and the record's bits");
ONERING_STATIC_ASSERT(sizeof(struct onering_doorbell) == 64, "doorbell is one line");
ONERING_ABI_OFFSET(struct onering_doorbell, state, 0);
ONERING_ABI_OFFSET(struct onering_doorbell, futex, 4);
ONERING_ABI_OFFSET(struct onering_doorbell, idle_ns, 8);
ONERING_STATIC_ASSERT(sizeof(struct onering_event_user) == 32, "user payload");
ONERING_STATIC_ASSERT(sizeof(struct onering_event_stream) == 32, "stream payload");
ONERING_ABI_OFFSET(struct onering_event_stream, op, 0);
ONERING_ABI_OFFSET(struct onering_event_stream, status, 4);
ONERING_ABI_OFFSET(struct onering_event_stream, offset, 8);
ONERING_ABI_OFFSET(struct onering_event_stream, buf, 16);
ONERING_ABI_OFFSET(struct onering_event_stream, length, 20);
ONERING_ABI_OFFSET(struct onering_event_stream, tag, 24);
ONERING_STATIC_ASSERT(sizeof(struct onering_stream_addr) == ONERING_STREAM_ADDR_BYTES,
		      "datagram address header");
ONERING_STATIC_ASSERT(sizeof(struct onering_sq_ctl) == 64, "sq ctl is one line");
ONERING_ABI_OFFSET(struct onering_sq_ctl, sq_tail_pos, 0);

/* ---------------------------------------------------------------------- */
/* Segment header validation (shm/abi.c).                                  */

/**
 * Check a segment header that another process wrote.
 *
 * The header is copied into a local once; every check runs on the copy.
 *
 * @param hdr       start of the mapping
 * @param map_size  bytes actually mapped at hdr
 * @param kind      expected enum onering_seg_kind, or 0 for any known kind
 * @param err       if not NULL, receives a readable reason on failure
 * @param err_size  size of err
 * @return 0 when valid;
 *         -EPROTO for a wrong magic, a different ABI major, an unknown or
 *                 unexpected kind, or unknown feature bits;
 *         -ERANGE when the recorded size is smaller than a header or larger
 *                 than the mapping;
 *         -EINVAL when map_size cannot even hold a header.
 * Context: any thread; no system call.
 */
int onering_seg_header_check(const void *hdr, size_t map_size, uint32_t kind, char *err,
			     size_t err_size);

/**
 * Fill a segment header (broker side, before the fd is sent).
 * Context: any thread; no system call.
 */
void onering_seg_header_init(struct onering_seg_header *hdr, uint32_t kind, uint64_t size,
			     uint32_t node, uint64_t epoch);

/** Bytes of an events segment for ev_capacity slots. */
static inline uint64_t onering_events_seg_size(uint32_t ev_capacity)
{
	return ONERING_EVENTS_SLOTS_OFFSET + (uint64_t)ev_capacity * sizeof(struct onering_event);
}

/** Offset of the packet area in an events segment: right after the slots.
 * It holds pkt_stride bytes per slot, the bytes of the NIC record in slot i
 * at offset i * pkt_stride (payload.nic.payload_offset), valid while slot i
 * is unreleased (events_ctl.packet_area_offset/size say where and how big). */
static inline uint64_t onering_events_pkt_offset(uint32_t ev_capacity)
{
	return onering_events_seg_size(ev_capacity);
}

/** Largest packet area bytes per slot. */
#define ONERING_PKT_STRIDE_MAX 2048u

/** (1.6) Offset of the levels area (struct onering_levels_ctl, then the
 * slots of levels 1..nr_levels-1) in an events segment: after the slots and
 * the packet area (packet_area_size bytes, 0 without one). */
static inline uint64_t onering_events_levels_offset(uint32_t ev_capacity, uint64_t pkt_area_size)
{
	return onering_events_seg_size(ev_capacity) + pkt_area_size;
}

/** (1.6) Offset of the slots of level (1..nr_levels-1) in an events segment. */
static inline uint64_t onering_events_level_slots(uint32_t ev_capacity, uint64_t pkt_area_size,
						  uint32_t level)
{
	return onering_events_levels_offset(ev_capacity, pkt_area_size) +
	       sizeof(struct onering_levels_ctl) +
	       (uint64_t)(level - 1) * ev_capacity * sizeof(struct onering_event);
}

/** (1.6) Bytes of the levels area for nr_levels levels (0 for one level). */
static inline uint64_t onering_events_levels_size(uint32_t ev_capacity, uint32_t nr_levels)
{
	return nr_levels > 1 ? sizeof(struct onering_levels_ctl) + (uint64_t)(nr_levels - 1) *
								       ev_capacity *
								       sizeof(struct onering_event)
			     : 0;
}

/** (1.6) The priority a record carries (ONERING_EVF_PRIO_*). */
static inline uint32_t onering_event_prio(const struct onering_event *e)
{
	return ((uint32_t)e->flags & ONERING_EVF_PRIO_MASK) >> ONERING_EVF_PRIO_SHIFT;
}

/** Bytes of a consumer segment for sq_capacity submission slots. */
static inline uint64_t onering_consumer_seg_size(uint32_t sq_capacity)
{
	return ONERING_SQ_SLOTS_OFFSET + (uint64_t)sq_capacity * sizeof(struct onering_request);
}

/** (1.3) Offset of the watched-word area in a consumer segment: right after
 * the submission slots. nr_words u32 words, written by the client (a plain
 * store), read by the broker. */
static inline uint64_t onering_words_offset(uint32_t sq_capacity)
{
	return onering_consumer_seg_size(sq_capacity);
}

/** Most watched words a queue may have. */
#define ONERING_WORDS_MAX 4096u

/** (1.8) Offset of the stream area in a consumer segment: after the watched
 * words, at a 4 KiB boundary. The area is rx_buffers receive buffers then
 * tx_buffers transmit buffers, each buffer_size bytes (QUEUE_OPEN's reply
 * says how many and how big). */
static inline uint64_t onering_stream_offset(uint32_t sq_capacity, uint32_t nr_words)
{
	return (onering_words_offset(sq_capacity) + 4ull * nr_words + 4095u) & ~4095ull;
}

/** (1.8) Limits of a stream area: buffers per kind, bytes per buffer (a
 * power of two), and bytes of the whole area. */
#define ONERING_STREAM_BUFS_MAX 4096u
#define ONERING_STREAM_BUF_MIN 256u
#define ONERING_STREAM_BUF_MAX (1u << 20)
#define ONERING_STREAM_AREA_MAX (256ull << 20)

#ifdef __cplusplus
}
#endif

#endif /* ONERING_SHM_ABI_H */
