/* SPDX-License-Identifier: MIT */
/*
 * The counters segment, the broker's side (broker/counters.h): created once,
 * updated by the control thread only - every --counters-interval-ms, and at
 * once when a reader asks - from the counters the pollers and the control
 * thread keep where they always did. Readers: shm/counters_seg.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/counters.h"
#include "broker/group.h"
#include "broker/nic.h"
#include "broker/queue.h"
#include "broker/stream.h"
#include "shm/log.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int broker_counters_init(struct broker *b)
{
	struct broker_counters *bc = &b->counters;
	size_t size = onering_counters_seg_size(b->cfg.counters_max_objects);
	char name[64];
	int r;

	bc->seg.fd = -1;
	snprintf(name, sizeof(name), "onering-counters-%s", b->cfg.name);
	/* Small and read now and then: normal pages, no node. */
	r = onering_seg_create(&bc->seg, name, ONERING_SEG_COUNTERS, size, ONERING_NODE_ANY,
			       b->epoch, NULL, ONERING_SEG_NO_HUGETLB);
	if (r < 0) /* logged there */
		return r;
	r = onering_counters_writer_init(&bc->w, bc->seg.base, bc->seg.size,
					 b->cfg.counters_max_objects, b->cfg.name,
					 (uint32_t)getpid(), b->cfg.counters_interval_ms);
	if (r < 0) {
		onering_log(ONERING_LOG_ERR, "counters segment (%u objects, %zu bytes): %s "
			    "(lower --counters-max-objects)", b->cfg.counters_max_objects, size,
			    strerror(-r));
		onering_seg_destroy(&bc->seg);
		return r;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	bc->w.h->start_time_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	broker_counters_update(b, ONERING_COUNTERS_RUNNING);
	/* The broker's mapping stays writable; nobody else's can be. */
	r = onering_seg_seal(&bc->seg, true);
	if (r < 0) {
		onering_counters_writer_fini(&bc->w);
		onering_seg_destroy(&bc->seg);
		return r;
	}
	return 0;
}

static void values_atomic(struct onering_counters_object *o, ONERING_ATOMIC(uint64_t) *ctr,
			  unsigned n)
{
	for (unsigned i = 0; i < n && i < o->nr_values; i++)
		o->value[i] = onering_atomic_load(&ctr[i], onering_mo_relaxed);
}

/* A NIC item (port or rx queue) as broker_nic_stats() hands it. */
static int nic_item(void *ctx, const struct onering_msg *m)
{
	struct broker_counters *bc = ctx;
	const struct onering_msg_stats_item *it = &m->u.stats_item;
	struct onering_counters_object *o = onering_counters_object_get(&bc->w, it->what, it->id);

	if (!o)
		return 0;
	if (o->nr_labels == 0) {
		if (it->what == ONERING_STATS_PORT) {
			onering_counters_label_add(o, "port", ONERING_COUNTERS_LABEL_NUMBER, "%u",
						   it->id);
			onering_counters_label_add(o, "node", ONERING_COUNTERS_LABEL_NUMBER, "%d",
						   (int32_t)it->node);
		} else {
			onering_counters_label_add(o, "port", ONERING_COUNTERS_LABEL_NUMBER, "%u",
						   it->id >> 16);
			onering_counters_label_add(o, "queue", ONERING_COUNTERS_LABEL_NUMBER, "%u",
						   it->id & 0xffff);
			onering_counters_label_add(o, "poller", ONERING_COUNTERS_LABEL_NUMBER, "%u",
						   it->owner_pid);
		}
	}
	for (unsigned i = 0; i < o->nr_values && i < ONERING_STATS_COUNTERS_MAX; i++)
		o->value[i] = it->counter[i];
	return 0;
}

/* A queue with priority levels: one object per level (queue id x
 * ONERING_PRIO_LEVELS + level: unique while queue ids fit 30 bits). */
static void update_levels(struct broker_counters *bc, struct broker_queue *q)
{
	for (uint32_t level = 0; level <= q->top_level && q->top_level; level++) {
		struct onering_counters_object *o = onering_counters_object_get(
			&bc->w, ONERING_STATS_LEVEL, q->id * ONERING_PRIO_LEVELS + level);
		if (!o)
			continue;
		if (o->nr_labels == 0) {
			onering_counters_label_add(o, "queue", ONERING_COUNTERS_LABEL_NUMBER, "%u",
						   q->id);
			onering_counters_label_add(o, "level", ONERING_COUNTERS_LABEL_NUMBER, "%u",
						   level);
			onering_counters_label_add(o, "pid", ONERING_COUNTERS_LABEL_NUMBER, "%d",
						   (int)q->owner_pid);
		}
		values_atomic(o, q->level_ctr[level], ONERING_LC_NR);
		/* The consumer's head as it last wrote it (display only, clamped). */
		const ONERING_ATOMIC(uint64_t) *tail =
			level ? &q->lctl->level_tail_pos[level - 1] : &q->ectl->ev_tail_pos;
		const ONERING_ATOMIC(uint64_t) *head =
			level ? &q->cctl->level_head_pos[level - 1] : &q->cctl->ev_head_pos;
		uint64_t n = onering_atomic_load(tail, onering_mo_relaxed) -
			     onering_atomic_load(head, onering_mo_relaxed);
		if (ONERING_LC_UNCONSUMED < o->nr_values)
			o->value[ONERING_LC_UNCONSUMED] = n > q->evp.capacity ? q->evp.capacity : n;
	}
}

/* (1.8) A queue with a stream area: its completion-mode counters. */
static void update_streams(struct broker_counters *bc, struct broker_queue *q)
{
	if (!q->streams)
		return;
	struct onering_counters_object *o =
		onering_counters_object_get(&bc->w, ONERING_STATS_STREAM, q->id);
	if (!o)
		return;
	if (o->nr_labels == 0) {
		onering_counters_label_add(o, "queue", ONERING_COUNTERS_LABEL_NUMBER, "%u", q->id);
		onering_counters_label_add(o, "pid", ONERING_COUNTERS_LABEL_NUMBER, "%d",
					   (int)q->owner_pid);
	}
	values_atomic(o, q->streams->ctr, ONERING_SC_NR);
}

static void update_groups(struct broker *b)
{
	struct broker_counters *bc = &b->counters;

	for (unsigned i = 0; i < b->nr_groups; i++) {
		const struct broker_group *g = b->groups[i];
		if (!g)
			continue;
		struct onering_counters_object *o =
			onering_counters_object_get(&bc->w, ONERING_STATS_GROUP, g->id);
		if (!o)
			continue;
		struct onering_msg_group d;
		uint64_t ctr[ONERING_GC_NR];
		uint32_t sleeping;
		char name[ONERING_NAME_MAX + 1];
		broker_group_describe(g, &d);
		broker_group_counters(b, g, ctr, &sleeping);
		memcpy(name, g->name, ONERING_NAME_MAX);
		name[ONERING_NAME_MAX] = '\0';
		/* Its settings change (tune): labels again on each update. */
		o->nr_labels = 0;
		onering_counters_label_add(o, "group", ONERING_COUNTERS_LABEL_NUMBER, "%u", g->id);
		onering_counters_label_add(o, "name", 0, "%s", name);
		onering_counters_label_add(o, "policy", ONERING_COUNTERS_LABEL_INFO, "%s",
					   onering_policy_name(d.policy));
		if (d.numa == ONERING_NUMA_SPILL)
			onering_counters_label_add(o, "numa", ONERING_COUNTERS_LABEL_INFO, "spill:%u",
						   d.spill_pct);
		else
			onering_counters_label_add(o, "numa", ONERING_COUNTERS_LABEL_INFO, "%s",
						   onering_numa_name(d.numa));
		onering_counters_label_add(o, "wake", ONERING_COUNTERS_LABEL_INFO, "%s",
					   onering_wake_name(d.wake));
		onering_counters_label_add(o, "members",
					   ONERING_COUNTERS_LABEL_INFO | ONERING_COUNTERS_LABEL_NUMBER,
					   "%u", d.members);
		onering_counters_label_add(o, "max_running",
					   ONERING_COUNTERS_LABEL_INFO | ONERING_COUNTERS_LABEL_NUMBER,
					   "%u", d.max_running ? d.max_running : b->cpu_count);
		onering_counters_label_add(o, "sleeping",
					   ONERING_COUNTERS_LABEL_INFO | ONERING_COUNTERS_LABEL_NUMBER,
					   "%u", sleeping);
		onering_counters_label_add(o, "backlog_max",
					   ONERING_COUNTERS_LABEL_INFO | ONERING_COUNTERS_LABEL_NUMBER,
					   "%u", d.backlog_max);
		for (unsigned c = 0; c < o->nr_values && c < ONERING_GC_NR; c++)
			o->value[c] = ctr[c];
	}
}

void broker_counters_update(struct broker *b, uint32_t state)
{
	struct broker_counters *bc = &b->counters;
	struct onering_counters_object *o;
	struct broker_client *c;
	struct broker_queue *q;

	if (bc->seg.fd < 0)
		return;
	onering_counters_update_begin(&bc->w);
	if ((o = onering_counters_object_get(&bc->w, ONERING_STATS_BROKER, 0))) {
		if (o->nr_labels == 0)
			onering_counters_label_add(o, "pid", ONERING_COUNTERS_LABEL_NUMBER, "%d",
						   (int)getpid());
		values_atomic(o, b->ctr, ONERING_BC_NR);
	}
	for (unsigned i = 0; i < b->cfg.plan.nr_pollers; i++) {
		if (!(o = onering_counters_object_get(&bc->w, ONERING_STATS_POLLER, i)))
			continue;
		if (o->nr_labels == 0) {
			onering_counters_label_add(o, "poller", ONERING_COUNTERS_LABEL_NUMBER, "%u", i);
			onering_counters_label_add(o, "node", ONERING_COUNTERS_LABEL_NUMBER, "%d",
						   b->pollers[i].node);
		}
		values_atomic(o, b->pollers[i].ctr, ONERING_PC_NR);
	}
	cds_list_for_each_entry(c, &b->clients, node) {
		cds_list_for_each_entry(q, &c->queues, client_node) {
			/* The consumer's head, as the client last wrote it (display only). */
			onering_atomic_store(&q->ctr[ONERING_QC_CONSUMED],
					     broker_queue_consumed(q),
					     onering_mo_relaxed);
			if (!(o = onering_counters_object_get(&bc->w, ONERING_STATS_QUEUE, q->id)))
				continue;
			if (o->nr_labels == 0) {
				onering_counters_label_add(o, "queue", ONERING_COUNTERS_LABEL_NUMBER,
							   "%u", q->id);
				onering_counters_label_add(o, "pid", ONERING_COUNTERS_LABEL_NUMBER,
							   "%d", (int)q->owner_pid);
				onering_counters_label_add(o, "node", ONERING_COUNTERS_LABEL_NUMBER,
							   "%d", (int32_t)q->node);
			}
			values_atomic(o, q->ctr, ONERING_QC_NR);
			update_levels(bc, q);
			update_streams(bc, q);
		}
	}
	update_groups(b);
	broker_nic_stats(b, nic_item, bc, 0); /* a failure leaves the ports out */
	if ((o = onering_counters_object_get(&bc->w, ONERING_STATS_EXPORT, 0))) {
		uint64_t v[ONERING_EXC_NR] = {
			[ONERING_EXC_OBJECTS] = bc->w.max_objects - bc->w.nr_free,
			[ONERING_EXC_OBJECTS_MAX] = bc->w.max_objects,
			[ONERING_EXC_UNLISTED] = bc->w.unlisted,
			[ONERING_EXC_UPDATES] = bc->w.h->updates + 1,
			[ONERING_EXC_READERS] = bc->readers,
			[ONERING_EXC_HTTP_REQUESTS] = bc->http_requests,
			[ONERING_EXC_HTTP_ERRORS] = bc->http_errors,
			[ONERING_EXC_HTTP_TIMEOUTS] = bc->http_timeouts,
			[ONERING_EXC_HTTP_REFUSED] = bc->http_refused,
		};
		for (unsigned i = 0; i < o->nr_values && i < ONERING_EXC_NR; i++)
			o->value[i] = v[i];
	}
	uint64_t now = mono_ns();
	onering_counters_update_end(&bc->w, now, state);
	bc->next_ns = now + (uint64_t)b->cfg.counters_interval_ms * 1000000ull;
}

int broker_counters_tick(struct broker *b)
{
	struct broker_counters *bc = &b->counters;
	uint64_t now = mono_ns();

	if (bc->seg.fd < 0)
		return -1;
	if (now >= bc->next_ns) {
		broker_counters_update(b, ONERING_COUNTERS_RUNNING);
		now = mono_ns();
	}
	return bc->next_ns > now ? (int)((bc->next_ns - now + 999999) / 1000000) : 0;
}

void broker_counters_fini(struct broker *b)
{
	struct broker_counters *bc = &b->counters;

	if (bc->seg.fd < 0)
		return;
	onering_counters_writer_fini(&bc->w);
	onering_seg_destroy(&bc->seg);
}

int broker_counters_prometheus(struct broker *b, char **text, size_t *len)
{
	struct broker_counters *bc = &b->counters;
	struct onering_metrics m;
	char err[256];
	int r;

	*text = NULL;
	*len = 0;
	if (bc->seg.fd < 0)
		return -ENODEV;
	broker_counters_update(b, ONERING_COUNTERS_RUNNING);
	/* Through the reader, as `onering stat --prometheus` does: one text. */
	r = onering_metrics_read(bc->seg.base, bc->seg.size, &m, err, sizeof(err));
	if (r < 0) {
		onering_log(ONERING_LOG_ERR, "reading the counters segment for /metrics: %s", err);
		return r;
	}
	FILE *f = open_memstream(text, len);
	if (!f) {
		onering_metrics_free(&m);
		return -ENOMEM;
	}
	r = onering_metrics_prometheus(&m, b->cfg.name, f);
	if (fclose(f) != 0 && r == 0)
		r = -ENOMEM;
	onering_metrics_free(&m);
	if (r < 0) {
		free(*text);
		*text = NULL;
		*len = 0;
	}
	return r;
}
