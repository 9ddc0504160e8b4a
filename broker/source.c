/* SPDX-License-Identifier: MIT */
/*
 * The sources of a poller, created in polling order: packets first (the
 * fd source asks epoll less often while they flow), then fds, hand-offs,
 * timers, submission rings, watched words and the streams that waited
 * (after the submissions, whose SENDs it may finish). deliver_flush runs after
 * all of them (poller.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/poller.h"
#include "broker/source.h"
#include "broker/stream.h"
#include "shm/log.h"

static int (*const create[BROKER_SOURCE_NR])(struct poller *, struct broker_source **) = {
	[BROKER_SOURCE_NIC] = broker_source_nic_create,
	[BROKER_SOURCE_FDS] = broker_source_fds_create,
	[BROKER_SOURCE_LANES] = broker_source_lanes_create,
	[BROKER_SOURCE_TIMERS] = broker_source_timers_create,
	[BROKER_SOURCE_SUBMIT] = broker_source_submit_create,
	[BROKER_SOURCE_WORDS] = broker_source_words_create,
	[BROKER_SOURCE_STREAMS] = broker_source_streams_create,
};

int broker_sources_create(struct poller *p)
{
	p->nr_sources = 0;
	for (unsigned k = 0; k < BROKER_SOURCE_NR; k++) {
		struct broker_source *s = NULL;
		int r = create[k](p, &s);
		if (r < 0) {
			onering_log(ONERING_LOG_ERR, "poller %u: cannot create its source %u: %s",
				    p->idx, k, strerror(-r));
			broker_sources_destroy(p);
			return r;
		}
		p->source[k] = s;
		if (s)
			p->sources[p->nr_sources++] = s;
	}
	return 0;
}

void broker_sources_destroy(struct poller *p)
{
	for (unsigned i = 0; i < p->nr_sources; i++)
		p->sources[i]->ops->destroy(p->sources[i]);
	memset(p->source, 0, sizeof(p->source));
	p->nr_sources = 0;
}

struct broker_source *broker_source_alloc(struct poller *p, const struct broker_source_ops *ops,
					  size_t size)
{
	struct broker_source *s = calloc(1, size);

	if (s) {
		s->ops = ops;
		s->p = p;
	}
	return s;
}

void broker_source_free(struct broker_source *src)
{
	free(src);
}
