/* SPDX-License-Identifier: MIT */
/*
 * fuzz_counters: the counters segment reader (shm/counters_seg.c), which
 * `onering stat`, `top` and the broker's /metrics run over a segment another
 * process wrote - a broker of another version, or one that lies.
 *
 * Input: byte 0 says how the segment is made, the rest is what goes in it.
 *   byte 0 even  the segment is the rest of the input, as it is
 *   byte 0 odd   a segment a writer laid out (4 objects, two of them in use)
 *                with the rest laid over it: pairs of (u16 offset, u8 value)
 *                bytes XORed in at offset % its size - deep in the directory,
 *                where raw bytes seldom get.
 * The segment is its own exact-size allocation: ASan sees any read past it.
 *
 * What must hold, else abort():
 *   - onering_metrics_read() returns 0 or -EPROTO, -ERANGE, -EINVAL, -EAGAIN
 *     (never -ENOMEM here), and a refusal comes with a message;
 *   - on success every list, description and object it hands back is within
 *     its counts, every string is NUL-terminated text, and the Prometheus
 *     text of it can be printed (to /dev/null) without a fault;
 *   - the writer's own segment, untouched, is read back whole.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/counters.h"
#include "shm/counters_seg.h"
#include "shm/proto.h"

#define FAIL(...)                                                   \
	do {                                                        \
		fprintf(stderr, "fuzz_counters: " __VA_ARGS__);     \
		fputc('\n', stderr);                                \
		abort();                                            \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

/* A segment as the broker makes it: the broker, a queue, a group. */
static void *made(size_t *size)
{
	struct onering_counters_writer w;
	size_t n = onering_counters_seg_size(4);
	void *base = calloc(1, n);

	if (!base)
		abort();
	onering_seg_header_init(base, ONERING_SEG_COUNTERS, n, ONERING_NODE_ANY, 1);
	if (onering_counters_writer_init(&w, base, n, 4, "fuzz", 1, 250) < 0)
		FAIL("writer_init");
	onering_counters_update_begin(&w);
	struct onering_counters_object *o = onering_counters_object_get(&w, ONERING_STATS_QUEUE, 3);
	onering_counters_label_add(o, "queue", ONERING_COUNTERS_LABEL_NUMBER, "3");
	o->value[0] = 7;
	o = onering_counters_object_get(&w, ONERING_STATS_GROUP, 1);
	onering_counters_label_add(o, "name", 0, "default");
	onering_counters_label_add(o, "policy", ONERING_COUNTERS_LABEL_INFO, "rr");
	onering_counters_update_end(&w, 5, ONERING_COUNTERS_RUNNING);
	onering_counters_writer_fini(&w);
	*size = n;
	return base;
}

static void check(const struct onering_metrics *m)
{
	for (unsigned k = 0; k < m->nr_lists; k++) {
		const struct onering_metrics_list *l = &m->lists[k];
		if (l->nr > ONERING_COUNTERS_VALUES_MAX || strlen(l->family) > 65536 ||
		    strlen(l->object) > 65536)
			FAIL("list %u", k);
		for (unsigned c = 0; c < l->nr; c++)
			if (strlen(l->desc[c].name) + strlen(l->desc[c].help) +
				    strlen(l->desc[c].unit) > 3 * 65536 ||
			    l->desc[c].kind > ONERING_COUNTER_LABEL)
				FAIL("list %u counter %u", k, c);
	}
	for (unsigned i = 0; i < m->nr_objects; i++) {
		const struct onering_metrics_object *o = &m->objects[i];
		if (!o->list || o->list < m->lists || o->list >= m->lists + m->nr_lists ||
		    o->nr_labels > ONERING_COUNTERS_LABELS_MAX)
			FAIL("object %u", i);
		for (unsigned j = 0; j < o->nr_labels; j++)
			if (!memchr(o->label[j].key, '\0', sizeof(o->label[j].key)) ||
			    !memchr(o->label[j].value, '\0', sizeof(o->label[j].value)))
				FAIL("object %u label %u", i, j);
	}
	if (onering_metrics_prometheus(m, "fuzz", devnull) < 0)
		FAIL("prometheus text");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct onering_metrics m;
	char err[512];
	size_t n;
	void *seg;

	if (!devnull && !(devnull = fopen("/dev/null", "we")))
		abort();
	if (size == 0 || size > (1u << 20))
		return 0;
	if (data[0] & 1) {
		seg = made(&n);
		for (size_t i = 1; i + 3 <= size; i += 3) {
			size_t off = ((size_t)data[i] | (size_t)data[i + 1] << 8) % n;
			((uint8_t *)seg)[off] ^= data[i + 2];
		}
		if (size == 1) { /* the writer's own segment reads back whole */
			if (onering_metrics_read(seg, n, &m, err, sizeof(err)) != 0)
				FAIL("a writer's segment refused: %s", err);
			if (m.nr_objects != 2)
				FAIL("%u objects, not 2", m.nr_objects);
			check(&m);
			onering_metrics_free(&m);
			free(seg);
			return 0;
		}
	} else {
		n = size - 1;
		seg = malloc(n ? n : 1);
		if (!seg)
			abort();
		memcpy(seg, data + 1, n);
	}
	err[0] = '\0';
	/* A segment whose seq stays odd (half the inputs) would be retried for
	 * the reader's 1 s: 50 exec/s. Its -EAGAIN comes after one round here. */
	int r = onering_metrics_read_within(seg, n, &m, err, sizeof(err), 0);
	if (r == 0) {
		check(&m);
		onering_metrics_free(&m);
	} else if ((r != -EPROTO && r != -ERANGE && r != -EINVAL && r != -EAGAIN) || !err[0]) {
		FAIL("result %d (%s)", r, err);
	}
	free(seg);
	return 0;
}
