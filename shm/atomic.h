/* SPDX-License-Identifier: MIT */
/*
 * The one atomics vocabulary of onering.
 *
 * C11 <stdatomic.h> for the library and the daemon; a C++ branch on
 * std::atomic so GoogleTest (C++17) can include the inline ring code.
 * Nothing else in the tree uses volatile, __sync builtins or asm barriers
 * for synchronisation: every shared word is declared ONERING_ATOMIC(T) and
 * touched only through the macros below, each call site naming its
 * memory order.
 *
 * Shared-memory words are lock-free 32- and 64-bit integers only; the
 * static_asserts at the end of this file check that they are, and that an
 * atomic word has the size and alignment of the plain integer (so the C
 * and C++ views of a shared layout are the same bytes).
 */
#ifndef ONERING_SHM_ATOMIC_H
#define ONERING_SHM_ATOMIC_H

#include <stdint.h>

#ifdef __cplusplus
#include <atomic>

#define ONERING_ATOMIC(T) std::atomic<T>

#define onering_mo_relaxed std::memory_order_relaxed
#define onering_mo_acquire std::memory_order_acquire
#define onering_mo_release std::memory_order_release
#define onering_mo_acq_rel std::memory_order_acq_rel
#define onering_mo_seq_cst std::memory_order_seq_cst

#define onering_atomic_init(p, v) std::atomic_init((p), (v))
#define onering_atomic_load(p, mo) std::atomic_load_explicit((p), (mo))
#define onering_atomic_store(p, v, mo) std::atomic_store_explicit((p), (v), (mo))
#define onering_atomic_fetch_add(p, v, mo) std::atomic_fetch_add_explicit((p), (v), (mo))
#define onering_atomic_exchange(p, v, mo) std::atomic_exchange_explicit((p), (v), (mo))
#define onering_atomic_fetch_or(p, v, mo) std::atomic_fetch_or_explicit((p), (v), (mo))
#define onering_atomic_cas(p, expp, v, mo_ok, mo_fail) \
	std::atomic_compare_exchange_strong_explicit((p), (expp), (v), (mo_ok), (mo_fail))
#define onering_fence(mo) std::atomic_thread_fence(mo)

#define ONERING_STATIC_ASSERT(cond, msg) static_assert(cond, msg)

#else /* C11 */
#include <stdatomic.h>

#define ONERING_ATOMIC(T) _Atomic(T)

#define onering_mo_relaxed memory_order_relaxed
#define onering_mo_acquire memory_order_acquire
#define onering_mo_release memory_order_release
#define onering_mo_acq_rel memory_order_acq_rel
#define onering_mo_seq_cst memory_order_seq_cst

#define onering_atomic_init(p, v) atomic_init((p), (v))
#define onering_atomic_load(p, mo) atomic_load_explicit((p), (mo))
#define onering_atomic_store(p, v, mo) atomic_store_explicit((p), (v), (mo))
#define onering_atomic_fetch_add(p, v, mo) atomic_fetch_add_explicit((p), (v), (mo))
#define onering_atomic_exchange(p, v, mo) atomic_exchange_explicit((p), (v), (mo))
#define onering_atomic_fetch_or(p, v, mo) atomic_fetch_or_explicit((p), (v), (mo))
#define onering_atomic_cas(p, expp, v, mo_ok, mo_fail) \
	atomic_compare_exchange_strong_explicit((p), (expp), (v), (mo_ok), (mo_fail))
#define onering_fence(mo) atomic_thread_fence(mo)

#define ONERING_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)

#endif

/*
 * ThreadSanitizer does not model atomic_thread_fence (gcc warns -Wtsan and
 * TSan would miss the synchronisation it gives). Under TSan only, a fence
 * becomes a read-modify-write of one global word with the same order: all
 * such RMWs are totally ordered and each synchronises with the previous
 * one, which gives the Dekker handshake of shm/doorbell.h the same
 * guarantee TSan can see. Production builds use the real fence.
 */
#if defined(__SANITIZE_THREAD__)
#define ONERING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ONERING_TSAN 1
#endif
#endif
#ifdef ONERING_TSAN
/* One word per process (weak: every translation unit shares it). */
#ifdef __cplusplus
extern "C" {
#endif
__attribute__((weak)) ONERING_ATOMIC(uint64_t) onering_tsan_fence_word;
#ifdef __cplusplus
}
#endif
#undef onering_fence
#define onering_fence(mo) ((void)onering_atomic_fetch_add(&onering_tsan_fence_word, 0, (mo)))
#endif

/* Relax the core inside a spin loop (PAUSE on x86, YIELD on arm64). */
static inline void onering_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#define ONERING_CACHE_LINE 64

/*
 * A group of struct fields padded to n whole cache lines, under one name
 * for the padding: the group after it starts n lines later. Unlike
 * _Alignas(64) on a field, it gives the struct no 64-byte alignment
 * requirement (list walks compute a container pointer from a list head that
 * lives elsewhere); allocate the struct cache-line aligned and each group
 * sits on its own lines. Check the offsets with static_assert.
 */
#define ONERING_LINES(pad, n, ...)                                                          \
	union {                                                                             \
		struct {                                                                    \
			__VA_ARGS__                                                         \
		};                                                                          \
		unsigned char pad[(n) * ONERING_CACHE_LINE];                                \
	}
#define ONERING_LIKELY(x) __builtin_expect(!!(x), 1)
#define ONERING_UNLIKELY(x) __builtin_expect(!!(x), 0)

ONERING_STATIC_ASSERT(sizeof(ONERING_ATOMIC(uint64_t)) == sizeof(uint64_t),
		      "atomic u64 must be a plain u64 in shared memory");
ONERING_STATIC_ASSERT(sizeof(ONERING_ATOMIC(uint32_t)) == sizeof(uint32_t),
		      "atomic u32 must be a plain u32 in shared memory");
ONERING_STATIC_ASSERT(__alignof__(ONERING_ATOMIC(uint64_t)) == 8,
		      "atomic u64 must be 8-byte aligned");
#if defined(__GCC_ATOMIC_LLONG_LOCK_FREE) && defined(__GCC_ATOMIC_INT_LOCK_FREE)
ONERING_STATIC_ASSERT(__GCC_ATOMIC_LLONG_LOCK_FREE == 2 && __GCC_ATOMIC_INT_LOCK_FREE == 2,
		      "shared-memory words must be always lock-free");
#endif

#endif /* ONERING_SHM_ATOMIC_H */
