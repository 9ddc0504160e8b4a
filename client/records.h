/* SPDX-License-Identifier: MIT */
/*
 * libonering internals (private to client/, not installed): what the
 * consume path does with each kind of ring record, as pure functions of
 * the record and the queue's plain (single-thread) state. No atomics here;
 * the subscription check is client_sub_live() in client/sub.h.
 */
#ifndef ONERING_CLIENT_RECORDS_H
#define ONERING_CLIENT_RECORDS_H

#include <stdbool.h>
#include <stdint.h>

#include "shm/abi.h"

/* How take_records() treats one record. */
enum client_record_class {
	CLIENT_REC_SKIP,     /* drop it: a control code this library does not know */
	CLIENT_REC_NOTICE,   /* a control record for the caller (a refused post) */
	CLIENT_REC_SHUTDOWN, /* the broker is stopping: the queue is dead */
	CLIENT_REC_WORD,     /* a watched word: check the watch generation */
	CLIENT_REC_PASS,     /* a post, a packet or another client's source: returned
			      * as is, nothing of ours to check it against */
	CLIENT_REC_OWN,      /* one of our subscriptions: the cancellation check */
};

/* The kinds the table below covers; a kind from here on is none a broker
 * sends today, taken for a source of ours (the cancellation check then
 * drops it unless its ids name a live subscription). */
#define CLIENT_REC_KINDS 16u

/* What a record's kind alone says: the class, except for CONTROL records
 * (their code decides) and the FOREIGN flag (a source of another client's). */
enum client_kind_class {
	CLIENT_KIND_OWN,     /* a source's: ours, unless FOREIGN */
	CLIENT_KIND_PASS,    /* a post or a packet */
	CLIENT_KIND_WORD,    /* a watched word */
	CLIENT_KIND_CONTROL, /* a broker notice: by its code */
};

ONERING_STATIC_ASSERT(ONERING_EV_WORD == 5 && ONERING_EV_USER == 8 && ONERING_EV_NIC == 9 &&
			      ONERING_EV_CONTROL == 10 && ONERING_EV_STREAM == 11,
		      "the kind table of client_kind_class_of() follows the ABI's kinds");

/* The class of kind: one load from a table, no chain of compares. */
static inline enum client_kind_class client_kind_class_of(uint16_t kind)
{
	static const uint8_t by_kind[CLIENT_REC_KINDS] = {
		CLIENT_KIND_OWN,     /* NONE */
		CLIENT_KIND_OWN,     /* FD */
		CLIENT_KIND_OWN,     /* TIMER */
		CLIENT_KIND_OWN,     /* SIGNAL */
		CLIENT_KIND_OWN,     /* FILE */
		CLIENT_KIND_WORD,    /* WORD */
		CLIENT_KIND_OWN,     /* AIO */
		CLIENT_KIND_OWN,     /* PROCESS */
		CLIENT_KIND_PASS,    /* USER */
		CLIENT_KIND_PASS,    /* NIC */
		CLIENT_KIND_CONTROL, /* CONTROL */
		CLIENT_KIND_PASS,    /* STREAM: never dropped, each holds a buffer or a send */
		CLIENT_KIND_OWN,     /* 12..15: none yet */
		CLIENT_KIND_OWN,
		CLIENT_KIND_OWN,
		CLIENT_KIND_OWN,
	};

	return kind < CLIENT_REC_KINDS ? (enum client_kind_class)by_kind[kind] : CLIENT_KIND_OWN;
}

/* A control record's class, by its code: a refused post is the caller's to
 * know; SHUTDOWN is the library's; a code this library does not know is
 * skipped (newer brokers may add some). */
static inline enum client_record_class client_control_class(const struct onering_event *e)
{
	if (e->payload.control.code == ONERING_CTL_POST_REFUSED)
		return CLIENT_REC_NOTICE;
	if (e->payload.control.code == ONERING_CTL_SHUTDOWN)
		return CLIENT_REC_SHUTDOWN;
	return CLIENT_REC_SKIP;
}

static inline enum client_record_class client_record_classify(const struct onering_event *e)
{
	switch (client_kind_class_of(e->kind)) {
	case CLIENT_KIND_OWN:
		return (e->flags & ONERING_EVF_FOREIGN) ? CLIENT_REC_PASS : CLIENT_REC_OWN;
	case CLIENT_KIND_PASS:
		return CLIENT_REC_PASS;
	case CLIENT_KIND_WORD:
		return CLIENT_REC_WORD;
	case CLIENT_KIND_CONTROL:
		break;
	}
	return client_control_class(e);
}

/*
 * A WORD record is returned only while its watch is the current one:
 * word_gen[idx] (0: not watched) equals the record's generation. The index
 * is broker-written: checked against nr_words before it indexes.
 */
static inline bool client_word_live(const uint32_t *word_gen, uint32_t nr_words, uint32_t idx,
				    uint32_t gen)
{
	return idx < nr_words && gen != 0 && word_gen[idx] == gen;
}

/* The next watch generation: one no earlier watch of this queue had
 * (until 2^32 watches), never 0. */
static inline uint32_t client_word_next_gen(uint32_t *seq)
{
	uint32_t gen = ++*seq;

	if (gen == 0)
		gen = ++*seq;
	return gen;
}

/*
 * After a submission, kick the poller's eventfd? Only if it announced an
 * idle sleep (NEED_WAKEUP) and that sleep is not the one we kicked already:
 * the flags carry the sleep's number, so one kick per announced sleep.
 */
static inline bool client_kick_needed(uint32_t poller_flags, uint32_t kicked_flags)
{
	return (poller_flags & ONERING_POLLER_NEED_WAKEUP) && poller_flags != kicked_flags;
}

/* Does [off, off + len) lie within an area of area_size bytes? Broker-written
 * offsets and lengths: no sum that can wrap. */
static inline bool client_span_valid(uint64_t off, uint64_t len, uint64_t area_size)
{
	return off <= area_size && len <= area_size - off;
}

/* Ack mode: is a record of this kind for onering_done()? Packets, words and
 * control notices never are. */
static inline bool client_record_doneable(const struct onering_event *e)
{
	return e->kind != ONERING_EV_NIC && e->kind != ONERING_EV_WORD &&
	       e->kind != ONERING_EV_CONTROL;
}

#endif /* ONERING_CLIENT_RECORDS_H */
