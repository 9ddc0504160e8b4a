/* SPDX-License-Identifier: MIT */
/* The test brokers' allocations: zeroed and cache-line aligned, as the
 * broker's structures (grouped by writer, one line each) require. */
#ifndef ONERING_TESTS_BROKER_ZALLOC_H
#define ONERING_TESTS_BROKER_ZALLOC_H

#include <stdlib.h>
#include <string.h>

static inline void *zalloc(size_t size)
{
	size_t rounded = (size + 63) & ~(size_t)63;
	void *m = aligned_alloc(64, rounded);

	if (m)
		memset(m, 0, rounded);
	return m;
}

#endif
