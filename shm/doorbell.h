/* SPDX-License-Identifier: MIT */
/*
 * The doorbell: how a consumer sleeps on its event ring and how the
 * producer wakes it, across processes, without a lost wake-up and without
 * a system call on the producer side unless the consumer is asleep.
 *
 * Shared words (struct onering_doorbell, in the consumer segment):
 *   state  written by the consumer (RUNNING / SPINNING / SLEEPING) and moved
 *          SLEEPING -> RUNNING by the producer that takes on the wake-up;
 *   futex  the word the consumer futex-waits on; the producer adds 1 before
 *          FUTEX_WAKE. Futexes on MAP_SHARED memory are keyed by the file
 *          and offset, so the two processes meet on the same word.
 *
 * Ordering contract (a Dekker handshake closed by two full fences)
 *   consumer                              producer
 *   t = load-acquire(futex)        (A3)   publish records: store-release(tail) (R1)
 *   store(state, SLEEPING)                F2: seq_cst fence
 *   F1: seq_cst fence                     s = load(state)
 *   re-check the ring (A1)                if s == SLEEPING and
 *   if empty: futex_wait(futex, t)           CAS(state, SLEEPING -> RUNNING):
 *   store(state, RUNNING)                      fetch_add-release(futex, 1)  (R3)
 *                                              futex_wake(futex, 1)
 *
 *   F1 and F2 are both seq_cst, so at least one side sees the other's store:
 *   either the consumer's re-check sees the new tail (and does not sleep), or
 *   the producer sees SLEEPING and bumps futex. The ticket t was read before
 *   SLEEPING was announced, so a bump at any later moment makes the kernel's
 *   compare in futex_wait fail (EAGAIN) or wakes the waiter: no lost wake-up.
 *   R3 pairs with A3 of the consumer's next sleep (the ticket it reads is at
 *   least as new as the bump that woke it).
 *
 * Across processes (control protocol 2) the wake is not the futex but the queue's
 * bell: an eventfd the broker creates per queue and hands to the client
 * with the segments. The broker claims the wake (onering_doorbell_claim:
 * F2, the CAS, R3) and writes 1 to the bell; the consumer, after its
 * re-check, sleeps in ppoll on the bell and on its control socket, so a
 * dead broker (the socket hangs up) wakes it too, and a sleeping consumer
 * is never woken for nothing. A write between the re-check and the ppoll
 * leaves the bell readable: ppoll returns at once, no lost wake-up. The
 * consumer reads the bell after a wake to empty it; a stale count (a wake
 * claimed as it gave up waiting) costs it one extra pass, never a lost
 * record. The futex word keeps its tickets (R3/A3) for onering_doorbell_ring,
 * which threads of one process (and the tests) use.
 *
 * Trust: the producer (broker) reads state once; any value other than
 * SLEEPING means "do not wake". A client that scribbles here only delays or
 * spuriously wakes itself; one that writes its bell makes itself readable,
 * and one that fills it (the broker's write then fails with EAGAIN) is
 * readable already: the broker ignores both.
 */
#ifndef ONERING_SHM_DOORBELL_H
#define ONERING_SHM_DOORBELL_H

#include <stdbool.h>
#include <stdint.h>

#include "shm/abi.h"
#include "shm/atomic.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * FUTEX_WAIT (process-shared) on word while it holds expected.
 * @param timeout_ns relative timeout, or a negative value to wait forever
 * @return 0 when woken or the word no longer held expected; -ETIMEDOUT;
 *         -EINTR when a signal interrupted the wait; other -errno from futex(2).
 * Context: may sleep; one system call.
 */
int onering_futex_wait(ONERING_ATOMIC(uint32_t) *word, uint32_t expected, int64_t timeout_ns);

/**
 * FUTEX_WAKE (process-shared) up to nr waiters on word.
 * @return waiters woken (>= 0), or -errno from futex(2).
 * Context: never sleeps; one system call.
 */
int onering_futex_wake(ONERING_ATOMIC(uint32_t) *word, int nr);

/** Consumer: reset the doorbell of a new queue (creator, before sharing). */
static inline void onering_doorbell_init(struct onering_doorbell *db)
{
	onering_atomic_store(&db->state, (uint32_t)ONERING_CONSUMER_RUNNING, onering_mo_relaxed);
	onering_atomic_store(&db->futex, 0u, onering_mo_relaxed);
}

/** Consumer: say "spinning" (informational, for stats and wake policies). */
static inline void onering_doorbell_set_state(struct onering_doorbell *db, uint32_t state)
{
	onering_atomic_store(&db->state, state, onering_mo_relaxed);
}

/**
 * Consumer, step 1 of sleeping: take a ticket and announce SLEEPING, then
 * a full fence (F1). The caller must re-check its ring after this and call
 * either onering_doorbell_cancel() (data arrived) or onering_doorbell_sleep().
 * @return the ticket for onering_doorbell_sleep().
 * Context: consumer thread; no system call.
 */
static inline uint32_t onering_doorbell_prepare(struct onering_doorbell *db)
{
	/* A3: synchronises with R3 of the wake that ended the previous sleep. */
	uint32_t ticket = onering_atomic_load(&db->futex, onering_mo_acquire);

	onering_atomic_store(&db->state, (uint32_t)ONERING_CONSUMER_SLEEPING, onering_mo_relaxed);
	/* F1: pairs with F2 in onering_doorbell_ring(). */
	onering_fence(onering_mo_seq_cst);
	return ticket;
}

/** Consumer: the re-check found records; do not sleep after all. */
static inline void onering_doorbell_cancel(struct onering_doorbell *db)
{
	onering_atomic_store(&db->state, (uint32_t)ONERING_CONSUMER_RUNNING, onering_mo_relaxed);
}

/**
 * Consumer, step 2: the re-check found the ring empty; sleep until rung or
 * timeout_ns passes (negative: no timeout). Leaves the state RUNNING.
 * @return as onering_futex_wait().
 * Context: consumer thread; may sleep; one system call.
 */
static inline int onering_doorbell_sleep(struct onering_doorbell *db, uint32_t ticket,
					 int64_t timeout_ns)
{
	int r = onering_futex_wait(&db->futex, ticket, timeout_ns);

	onering_atomic_store(&db->state, (uint32_t)ONERING_CONSUMER_RUNNING, onering_mo_relaxed);
	return r;
}

/**
 * Producer: after publishing (R1), take on the wake-up if and only if the
 * consumer announced sleep; the caller then wakes it - with the queue's
 * bell eventfd across processes (the broker, control protocol 2), or with
 * onering_doorbell_ring()'s futex. Costs a fence and a load when it is awake.
 * @return true if this call took on the wake-up (the caller must wake).
 * Context: producer thread; no system call.
 */
static inline bool onering_doorbell_claim(struct onering_doorbell *db)
{
	/* F2: pairs with F1 in onering_doorbell_prepare(). */
	onering_fence(onering_mo_seq_cst);
	uint32_t state = onering_atomic_load(&db->state, onering_mo_relaxed);

	if (state != (uint32_t)ONERING_CONSUMER_SLEEPING)
		return false;
	uint32_t expect = (uint32_t)ONERING_CONSUMER_SLEEPING;
	if (!onering_atomic_cas(&db->state, &expect, (uint32_t)ONERING_CONSUMER_RUNNING,
				onering_mo_relaxed, onering_mo_relaxed))
		return false; /* the consumer woke by itself meanwhile */
	/* R3: synchronises with A3 of the consumer's next prepare. */
	onering_atomic_fetch_add(&db->futex, 1u, onering_mo_release);
	return true;
}

/**
 * Producer: onering_doorbell_claim(), then FUTEX_WAKE the consumer sleeping
 * in onering_doorbell_sleep() (threads of one process, tests).
 * @return true if this call took on the wake-up (and made the syscall).
 * Context: producer thread; at most one system call, never sleeps.
 */
static inline bool onering_doorbell_ring(struct onering_doorbell *db)
{
	if (!onering_doorbell_claim(db))
		return false;
	onering_futex_wake(&db->futex, 1);
	return true;
}

#ifdef __cplusplus
}
#endif

#endif /* ONERING_SHM_DOORBELL_H */
