/* SPDX-License-Identifier: MIT */
/* Process-shared futex helpers for the doorbell (shm/doorbell.h). */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shm/doorbell.h"

int onering_futex_wait(ONERING_ATOMIC(uint32_t) *word, uint32_t expected, int64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;

	if (timeout_ns >= 0) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000);
		ts.tv_nsec = (long)(timeout_ns % 1000000000);
		tsp = &ts;
	}
	/* FUTEX_WAIT without FUTEX_PRIVATE_FLAG: the word is in MAP_SHARED memory. */
	if (syscall(SYS_futex, (uint32_t *)(uintptr_t)word, FUTEX_WAIT, expected, tsp, NULL, 0) == 0)
		return 0;
	if (errno == EAGAIN)
		return 0; /* the word changed before we slept: a wake-up we did not miss */
	return -errno;
}

int onering_futex_wake(ONERING_ATOMIC(uint32_t) *word, int nr)
{
	long r = syscall(SYS_futex, (uint32_t *)(uintptr_t)word, FUTEX_WAKE, nr, NULL, NULL, 0);

	return r < 0 ? -errno : (int)r;
}
