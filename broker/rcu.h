/* SPDX-License-Identifier: MIT */
/*
 * liburcu (QSBR flavour) as the broker uses it, and the ThreadSanitizer
 * annotations that make its edges visible. Pollers are QSBR readers; the
 * control thread publishes with rcu_assign_pointer and frees after a grace
 * period (call_rcu / synchronize_rcu).
 */
#ifndef ONERING_BROKER_RCU_H
#define ONERING_BROKER_RCU_H

#include <stdint.h>

#include <urcu/urcu-qsbr.h>
#include <urcu/rculist.h>
#include <urcu/wfcqueue.h>

#include "shm/atomic.h"

/*
 * ThreadSanitizer cannot see liburcu's synchronisation (its publication
 * and grace periods use uninstrumented atomics, barriers and futexes).
 * These annotations tell TSan the same edges the code relies on:
 *   PUBLISH(p)   before rcu_assign_pointer / cds_list_add_rcu / wfcq enqueue of p
 *   OBSERVE(p)   after rcu_dereference / list walk / wfcq dequeue gives p
 *   QUIESCENT()  a poller's quiescent state (or going offline)
 *   GRACE_DONE() after synchronize_rcu, and in call_rcu callbacks
 * They compile to nothing outside TSan builds.
 */
#ifdef ONERING_TSAN
#include <sanitizer/tsan_interface.h>
extern char broker_tsan_grace;
#define BROKER_TSAN_PUBLISH(p) __tsan_release((void *)(p))
#define BROKER_TSAN_OBSERVE(p) __tsan_acquire((void *)(p))
#define BROKER_TSAN_QUIESCENT() __tsan_release(&broker_tsan_grace)
#define BROKER_TSAN_GRACE_DONE() __tsan_acquire(&broker_tsan_grace)
#else
#define BROKER_TSAN_PUBLISH(p) ((void)0)
#define BROKER_TSAN_OBSERVE(p) ((void)0)
#define BROKER_TSAN_QUIESCENT() ((void)0)
#define BROKER_TSAN_GRACE_DONE() ((void)0)
#endif

/* Add n to a counter that has a single writer: a relaxed load and store,
 * no read-modify-write. Readers (stats) may see it a little late. */
static inline void broker_count(ONERING_ATOMIC(uint64_t) *ctr, uint64_t n)
{
	onering_atomic_store(ctr, onering_atomic_load(ctr, onering_mo_relaxed) + n,
			     onering_mo_relaxed);
}

#endif /* ONERING_BROKER_RCU_H */
