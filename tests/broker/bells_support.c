/* SPDX-License-Identifier: MIT */
#include "tests/broker/bells_support.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/bells.h"
#include "broker/broker.h"
#include "broker/queue.h"
#include "tests/broker/zalloc.h"

#define BT_MAX_QUEUES (2 * ONERING_BELL_BITS + 8)

#ifdef ONERING_TSAN
char broker_tsan_grace; /* registry.c's, which this test does not link */
#endif

struct bt {
	struct broker *b;
	struct broker_queue *q[BT_MAX_QUEUES];
	unsigned nr_q;
};

struct bt *bt_new(unsigned max_pages)
{
	struct bt *t = calloc(1, sizeof(*t));
	struct broker *b = zalloc(sizeof(*b));

	if (!t || !b || broker_bells_init(&b->pollers[0], max_pages) < 0) {
		free(t);
		free(b);
		return NULL;
	}
	t->b = b;
	snprintf(b->cfg.name, sizeof(b->cfg.name), "bells-test");
	b->cfg.no_hugetlb = true;
	b->epoch = 1;
	b->pollers[0].b = b;
	b->pollers[0].node = -1;
	return t;
}

void bt_free(struct bt *t)
{
	if (!t)
		return;
	broker_bells_fini(&t->b->pollers[0]);
	urcu_qsbr_barrier(); /* the pages bt_leave handed to call_rcu */
	for (unsigned i = 0; i < t->nr_q; i++)
		free(t->q[i]);
	free(t->b);
	free(t);
}

static unsigned page_index(struct bt *t, const struct broker_bells *bl)
{
	struct poller *p = &t->b->pollers[0];
	unsigned n = onering_atomic_load(&p->nr_bells, onering_mo_relaxed);

	for (unsigned i = 0; i < n; i++)
		if (p->bells[i] == bl)
			return i;
	return ~0u;
}

int bt_join(struct bt *t, uint32_t uid, bool summary, unsigned *page, uint32_t *bit)
{
	if (t->nr_q == BT_MAX_QUEUES)
		return -ENOSPC;
	struct broker_queue *q = zalloc(sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->poller = &t->b->pollers[0];
	int r = broker_bells_join(q->poller, q, (uid_t)uid, summary);
	if (r < 0) {
		free(q);
		return r;
	}
	t->q[t->nr_q] = q;
	*page = page_index(t, q->bells);
	*bit = q->bell;
	return (int)t->nr_q++;
}

void bt_leave(struct bt *t, int h)
{
	broker_bells_leave(t->q[h]->poller, t->q[h]);
}

unsigned bt_pages(struct bt *t)
{
	return onering_atomic_load(&t->b->pollers[0].nr_bells, onering_mo_acquire);
}

uint32_t bt_words(struct bt *t, unsigned i)
{
	return onering_atomic_load(&t->b->pollers[0].bells[i]->nr_words, onering_mo_acquire);
}

int bt_queue_at(struct bt *t, unsigned i, uint32_t bit)
{
	struct broker_queue *q = t->b->pollers[0].bells[i]->queue[bit];

	for (unsigned h = 0; q && h < t->nr_q; h++)
		if (t->q[h] == q)
			return (int)h;
	return -1;
}

bool bt_summary(struct bt *t, unsigned i)
{
	return t->b->pollers[0].bells[i]->summary;
}

int bt_page_fd(struct bt *t, unsigned i)
{
	return t->b->pollers[0].bells[i]->seg.fd;
}
