/* SPDX-License-Identifier: MIT */
/*
 * The counters segment (shm/counters_seg.h): its writer, its reader and the
 * Prometheus text both `onering stat --prometheus` and oneringd's /metrics
 * print. The ordering contract (W1, W2, R1, R2) is the header's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shm/counters.h"
#include "shm/counters_seg.h"
#include "shm/proto.h"

static size_t align64(size_t v)
{
	return (v + 63) & ~(size_t)63;
}

/* Bytes of the directory's strings: every list's words, every counter's. */
static size_t strings_need(void)
{
	unsigned nr_lists;
	const struct onering_counter_list *l = onering_counter_lists(&nr_lists);
	size_t n = 1; /* offset 0: the empty string */

	for (unsigned k = 0; k < nr_lists; k++) {
		n += strlen(l[k].family) + 1 + strlen(l[k].object) + 1;
		for (unsigned c = 0; c < l[k].nr; c++)
			n += strlen(l[k].desc[c].name) + 1 + strlen(l[k].desc[c].unit) + 1 +
			     strlen(l[k].desc[c].help) + 1;
	}
	return n;
}

/* Where each region starts (the layout of a segment this writer makes). */
struct layout {
	uint32_t nr_lists, nr_descs;
	size_t lists_off, descs_off, strings_off, strings_size, objects_off, end;
};

static void layout_of(uint32_t max_objects, struct layout *lo)
{
	unsigned nr_lists;
	const struct onering_counter_list *l = onering_counter_lists(&nr_lists);

	lo->nr_lists = nr_lists;
	lo->nr_descs = 0;
	for (unsigned k = 0; k < nr_lists; k++)
		lo->nr_descs += l[k].nr;
	lo->lists_off = sizeof(struct onering_counters_header);
	lo->descs_off = align64(lo->lists_off + nr_lists * sizeof(struct onering_counters_list));
	lo->strings_off =
		align64(lo->descs_off + lo->nr_descs * sizeof(struct onering_counters_desc));
	lo->strings_size = strings_need();
	lo->objects_off = align64(lo->strings_off + lo->strings_size);
	lo->end = lo->objects_off + (size_t)max_objects * sizeof(struct onering_counters_object);
}

size_t onering_counters_seg_size(uint32_t max_objects)
{
	struct layout lo;

	layout_of(max_objects, &lo);
	return lo.end;
}

/* ---- writer ---------------------------------------------------------------- */

static uint32_t put_string(char *strings, size_t *used, const char *s)
{
	uint32_t off = (uint32_t)*used;
	size_t n = strlen(s) + 1;

	memcpy(strings + off, s, n);
	*used += n;
	return off;
}

int onering_counters_writer_init(struct onering_counters_writer *w, void *base, size_t size,
				 uint32_t max_objects, const char *name, uint32_t pid,
				 uint32_t interval_ms)
{
	struct onering_counters_header *h = base;
	struct layout lo;
	unsigned nr_lists;
	const struct onering_counter_list *l = onering_counter_lists(&nr_lists);

	memset(w, 0, sizeof(*w));
	if (max_objects == 0 || max_objects > ONERING_COUNTERS_OBJECTS_MAX)
		return -EINVAL;
	layout_of(max_objects, &lo);
	if (size < lo.end)
		return -EINVAL;
	uint32_t index_size = 1;
	while (index_size < 2 * max_objects)
		index_size <<= 1;
	w->index = calloc(index_size, sizeof(*w->index));
	w->seen = calloc(max_objects, 1);
	w->free_slots = calloc(max_objects, sizeof(*w->free_slots));
	if (!w->index || !w->seen || !w->free_slots) {
		onering_counters_writer_fini(w);
		return -ENOMEM;
	}
	w->index_mask = index_size - 1;
	w->h = h;
	w->objects = (struct onering_counters_object *)((char *)base + lo.objects_off);
	w->max_objects = max_objects;
	for (uint32_t i = max_objects; i-- > 0;) /* slot 0 on top */
		w->free_slots[w->nr_free++] = i;

	h->version = ONERING_COUNTERS_VERSION;
	h->pid = pid;
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->nr_lists = lo.nr_lists;
	h->lists_off = (uint32_t)lo.lists_off;
	h->nr_descs = lo.nr_descs;
	h->descs_off = (uint32_t)lo.descs_off;
	h->strings_size = (uint32_t)lo.strings_size;
	h->strings_off = (uint32_t)lo.strings_off;
	h->max_objects = max_objects;
	h->objects_off = (uint32_t)lo.objects_off;
	h->object_size = sizeof(struct onering_counters_object);
	h->interval_ms = interval_ms;
	h->state = ONERING_COUNTERS_RUNNING;

	struct onering_counters_list *cl = (struct onering_counters_list *)((char *)base + lo.lists_off);
	struct onering_counters_desc *cd = (struct onering_counters_desc *)((char *)base + lo.descs_off);
	char *strings = (char *)base + lo.strings_off;
	size_t used = 1;
	uint16_t d = 0;
	for (unsigned k = 0; k < nr_lists; k++) {
		cl[k].what = l[k].what;
		cl[k].first_desc = d;
		cl[k].nr_counters = (uint16_t)l[k].nr;
		cl[k].family_off = put_string(strings, &used, l[k].family);
		cl[k].object_off = put_string(strings, &used, l[k].object);
		for (unsigned c = 0; c < l[k].nr; c++, d++) {
			cd[d].name_off = put_string(strings, &used, l[k].desc[c].name);
			cd[d].unit_off = put_string(strings, &used, l[k].desc[c].unit);
			cd[d].help_off = put_string(strings, &used, l[k].desc[c].help);
			cd[d].kind = (uint8_t)l[k].desc[c].kind;
		}
	}
	return 0;
}

void onering_counters_writer_fini(struct onering_counters_writer *w)
{
	free(w->index);
	free(w->seen);
	free(w->free_slots);
	w->index = NULL;
	w->seen = NULL;
	w->free_slots = NULL;
}

static uint32_t key_hash(uint32_t what, uint32_t id)
{
	return (what * 0x9e3779b1u) ^ (id * 0x85ebca6bu) ^ (id >> 15);
}

void onering_counters_update_begin(struct onering_counters_writer *w)
{
	uint64_t seq = onering_atomic_load(&w->h->seq, onering_mo_relaxed);

	/* W1: seq odd before any store of the update (release fence: the stores
	 * below are not seen before it). */
	onering_atomic_store(&w->h->seq, seq | 1, onering_mo_relaxed);
	onering_fence(onering_mo_release);
	memset(w->seen, 0, w->max_objects);
	w->unlisted = 0;
}

struct onering_counters_object *onering_counters_object_get(struct onering_counters_writer *w,
							    uint32_t what, uint32_t id)
{
	uint32_t i = key_hash(what, id) & w->index_mask;

	for (; w->index[i]; i = (i + 1) & w->index_mask) {
		struct onering_counters_object *o = &w->objects[w->index[i] - 1];
		if (o->what == what && o->id == id) {
			w->seen[w->index[i] - 1] = 1;
			return o;
		}
	}
	if (w->nr_free == 0) {
		w->unlisted++;
		return NULL;
	}
	uint32_t slot = w->free_slots[--w->nr_free];
	struct onering_counters_object *o = &w->objects[slot];
	uint32_t gen = o->gen + 1;
	memset(o, 0, sizeof(*o));
	o->what = what;
	o->id = id;
	o->gen = gen;
	const struct onering_counter_list *l = onering_counter_list_find(what);
	o->nr_values = (uint16_t)(l ? l->nr : 0);
	w->index[i] = slot + 1;
	w->seen[slot] = 1;
	return o;
}

void onering_counters_label_add(struct onering_counters_object *o, const char *key,
				unsigned flags, const char *fmt, ...)
{
	va_list ap;

	if (o->nr_labels >= ONERING_COUNTERS_LABELS_MAX)
		return;
	struct onering_counters_label *l = &o->label[o->nr_labels++];
	snprintf(l->key, sizeof(l->key), "%s", key);
	l->flags = (uint8_t)flags;
	va_start(ap, fmt);
	vsnprintf(l->value, sizeof(l->value), fmt, ap);
	va_end(ap);
}

void onering_counters_update_end(struct onering_counters_writer *w, uint64_t now_ns,
				 uint32_t state)
{
	struct onering_counters_header *h = w->h;
	uint32_t used = 0;
	bool freed = false;

	for (uint32_t s = 0; s < w->max_objects; s++) {
		if (!w->objects[s].what)
			continue;
		if (w->seen[s]) {
			used++;
			continue;
		}
		w->objects[s].what = 0; /* gone: its gen stays, the next take bumps it */
		w->free_slots[w->nr_free++] = s;
		freed = true;
	}
	if (freed) { /* the index again, without the freed (open addressing) */
		memset(w->index, 0, (w->index_mask + 1) * sizeof(*w->index));
		for (uint32_t s = 0; s < w->max_objects; s++) {
			const struct onering_counters_object *o = &w->objects[s];
			if (!o->what)
				continue;
			uint32_t i = key_hash(o->what, o->id) & w->index_mask;
			while (w->index[i])
				i = (i + 1) & w->index_mask;
			w->index[i] = s + 1;
		}
	}
	h->nr_objects = used;
	h->updated_ns = now_ns;
	h->updates++;
	h->state = state;
	/* W2: the update is complete; pairs with R1. */
	uint64_t seq = onering_atomic_load(&h->seq, onering_mo_relaxed);
	onering_atomic_store(&h->seq, (seq | 1) + 1, onering_mo_release);
}

/* ---- reader ---------------------------------------------------------------- */

#define FAIL(code, ...)                                          \
	do {                                                     \
		if (err)                                         \
			snprintf(err, err_size, __VA_ARGS__);    \
		r = (code);                                      \
		goto fail;                                       \
	} while (0)

/* A string of the copy's strings region at off: NUL-terminated inside it,
 * printable ASCII; names ([a-z0-9_]+) when name. NULL if not. */
static const char *string_at(const char *strings, uint32_t size, uint32_t off, bool name)
{
	if (off >= size)
		return NULL;
	const char *s = strings + off, *nul = memchr(s, '\0', size - off);
	if (!nul || (name && nul == s))
		return NULL;
	for (const char *p = s; p < nul; p++) {
		if (name ? !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
			 : (*p < 0x20 || *p > 0x7e))
			return NULL;
	}
	return s;
}

static bool label_valid(const struct onering_counters_label *l)
{
	const char *knul = memchr(l->key, '\0', sizeof(l->key));
	const char *vnul = memchr(l->value, '\0', sizeof(l->value));

	if (!knul || knul == l->key || !vnul || (l->key[0] >= '0' && l->key[0] <= '9'))
		return false;
	for (const char *p = l->key; p < knul; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	for (const char *p = l->value; p < vnul; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	if (l->flags & ONERING_COUNTERS_LABEL_NUMBER) {
		const char *p = l->value + (l->value[0] == '-');
		if (p == vnul || vnul - p > 20)
			return false;
		for (; p < vnul; p++)
			if (*p < '0' || *p > '9')
				return false;
	}
	return true;
}

/* The byte range [off, off + n * each) inside [sizeof header, size)? */
static bool region_ok(uint64_t off, uint64_t n, uint64_t each, uint64_t size)
{
	return off >= sizeof(struct onering_counters_header) && off % 8 == 0 && off <= size &&
	       n * each <= size - off;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* How long a reader waits for an update to end: the writer (the broker's
 * control thread) may be preempted in the middle of one for a few
 * scheduler ticks on a loaded machine; longer means it died or is stuck. */
#define COPY_PATIENCE_NS (1000ull * 1000 * 1000)

/* R1 .. R2: len bytes of base into copy, no update overlapping; -EAGAIN
 * when updates kept overlapping for patience_ns. */
static int copy_consistent(const void *base, size_t len, void *copy, uint64_t patience_ns)
{
	const struct onering_counters_header *h = base;
	const ONERING_ATOMIC(uint64_t) *seq = &h->seq;
	uint64_t deadline = 0;

	for (unsigned tries = 1;; tries++) {
		/* R1: pairs with W2. */
		uint64_t s1 = onering_atomic_load(seq, onering_mo_acquire);
		if (!(s1 & 1)) {
			memcpy(copy, base, len);
			/* R2: the copy before seq is read again. */
			onering_fence(onering_mo_acquire);
			if (onering_atomic_load(seq, onering_mo_relaxed) == s1)
				return 0;
		}
		/* An update overlapped. Bounded in time, not in tries: 50 us
		 * pauses after every 64. */
		if (tries % 64 == 0) {
			uint64_t now = mono_ns();
			if (!deadline) /* a patience past the clock's range: no end */
				deadline = patience_ns > UINT64_MAX - now ? UINT64_MAX : now + patience_ns;
			else if (now > deadline)
				return -EAGAIN;
			struct timespec pause = {0, 50 * 1000};
			nanosleep(&pause, NULL);
		}
	}
}

int onering_metrics_read(const void *base, size_t size, struct onering_metrics *m, char *err,
			 size_t err_size)
{
	return onering_metrics_read_within(base, size, m, err, err_size, COPY_PATIENCE_NS);
}

int onering_metrics_read_within(const void *base, size_t size, struct onering_metrics *m,
				char *err, size_t err_size, uint64_t patience_ns)
{
	struct onering_counters_header h;
	int r;

	memset(m, 0, sizeof(*m));
	if (!base || size < sizeof(h)) {
		r = -EPROTO;
		if (err)
			snprintf(err, err_size, "a counters segment of %zu bytes: too small for its "
				 "%zu-byte header", size, sizeof(h));
		return r;
	}
	memcpy(&h, base, sizeof(h)); /* the fixed part: geometry, read once */
	r = onering_seg_header_check(&h, size, ONERING_SEG_COUNTERS, err, err_size);
	if (r < 0)
		return r;
	if (h.version != ONERING_COUNTERS_VERSION) {
		if (err)
			snprintf(err, err_size, "counters segment layout version %u, this reader "
				 "speaks %u (use the onering of the broker's version)", h.version,
				 ONERING_COUNTERS_VERSION);
		return -EPROTO;
	}
	size = (size_t)h.seg.size; /* <= the mapping: checked */
	if (h.object_size != sizeof(struct onering_counters_object) ||
	    h.nr_lists > ONERING_COUNTERS_LISTS_MAX || h.nr_descs > ONERING_COUNTERS_DESCS_MAX ||
	    h.strings_size > ONERING_COUNTERS_STRINGS_MAX ||
	    h.max_objects > ONERING_COUNTERS_OBJECTS_MAX ||
	    !region_ok(h.lists_off, h.nr_lists, sizeof(struct onering_counters_list), size) ||
	    !region_ok(h.descs_off, h.nr_descs, sizeof(struct onering_counters_desc), size) ||
	    !region_ok(h.strings_off, h.strings_size, 1, size) ||
	    !region_ok(h.objects_off, h.max_objects, sizeof(struct onering_counters_object), size)) {
		if (err)
			snprintf(err, err_size, "counters segment directory out of bounds: %u lists "
				 "@%u, %u descriptions @%u, %u bytes of strings @%u, %u objects of %u "
				 "bytes @%u, in %zu bytes", h.nr_lists, h.lists_off, h.nr_descs,
				 h.descs_off, h.strings_size, h.strings_off, h.max_objects,
				 h.object_size, h.objects_off, size);
		return -ERANGE;
	}

	char *copy = malloc(size);
	m->copy = copy;
	m->lists = calloc(h.nr_lists ? h.nr_lists : 1, sizeof(*m->lists));
	m->objects = calloc(h.max_objects ? h.max_objects : 1, sizeof(*m->objects));
	struct onering_metrics_desc *descs = calloc(h.nr_descs ? h.nr_descs : 1, sizeof(*descs));
	m->descs = descs;
	if (!copy || !m->lists || !m->objects || !descs)
		FAIL(-ENOMEM, "out of memory for a copy of the counters segment (%zu bytes)", size);
	if (copy_consistent(base, size, copy, patience_ns) < 0)
		FAIL(-EAGAIN, "the broker (pid %u) was updating its counters segment every time it "
		     "was read for %llu us: it died in an update or is stuck", h.pid,
		     (unsigned long long)(patience_ns / 1000));
	const struct onering_counters_header *ch = (const void *)copy;
	/* What was checked above must still hold in the copy. */
	if (ch->nr_lists != h.nr_lists || ch->nr_descs != h.nr_descs ||
	    ch->strings_size != h.strings_size || ch->max_objects != h.max_objects ||
	    ch->lists_off != h.lists_off || ch->descs_off != h.descs_off ||
	    ch->strings_off != h.strings_off || ch->objects_off != h.objects_off)
		FAIL(-EPROTO, "the counters segment's directory changed under the reader");
	const char *strings = copy + h.strings_off;
	const struct onering_counters_desc *cd = (const void *)(copy + h.descs_off);
	for (uint32_t d = 0; d < h.nr_descs; d++) {
		descs[d].name = string_at(strings, h.strings_size, cd[d].name_off, true);
		descs[d].unit = string_at(strings, h.strings_size, cd[d].unit_off, false);
		descs[d].help = string_at(strings, h.strings_size, cd[d].help_off, false);
		descs[d].kind = cd[d].kind;
		if (!descs[d].name || !descs[d].unit || !descs[d].help ||
		    cd[d].kind > ONERING_COUNTER_LABEL)
			FAIL(-EINVAL, "counters segment: counter description %u is malformed (a "
			     "string out of bounds or not text, or kind %u)", d, cd[d].kind);
	}
	const struct onering_counters_list *cl = (const void *)(copy + h.lists_off);
	for (uint32_t k = 0; k < h.nr_lists; k++) {
		struct onering_metrics_list *l = &m->lists[k];
		l->what = cl[k].what;
		l->family = string_at(strings, h.strings_size, cl[k].family_off, true);
		l->object = string_at(strings, h.strings_size, cl[k].object_off, true);
		l->nr = cl[k].nr_counters;
		if (!l->family || !l->object || l->what == 0 || l->nr > ONERING_COUNTERS_VALUES_MAX ||
		    (uint32_t)cl[k].first_desc + l->nr > h.nr_descs)
			FAIL(-EINVAL, "counters segment: list %u is malformed (its words, its %u "
			     "counters from description %u of %u)", k, l->nr, cl[k].first_desc,
			     h.nr_descs);
		l->desc = descs + cl[k].first_desc;
		for (uint32_t j = 0; j < k; j++)
			if (m->lists[j].what == l->what)
				FAIL(-EINVAL, "counters segment: lists %u and %u are both of kind %u",
				     j, k, l->what);
	}
	m->nr_lists = h.nr_lists;
	const struct onering_counters_object *co = (const void *)(copy + h.objects_off);
	for (uint32_t s = 0; s < h.max_objects; s++) {
		if (!co[s].what)
			continue;
		const struct onering_metrics_list *l = onering_metrics_list_find(m, co[s].what);
		if (!l || co[s].nr_values != l->nr || co[s].nr_labels > ONERING_COUNTERS_LABELS_MAX)
			FAIL(-EINVAL, "counters segment: object in slot %u is malformed (kind %u, %u "
			     "values, %u labels)", s, co[s].what, co[s].nr_values, co[s].nr_labels);
		for (unsigned i = 0; i < co[s].nr_labels; i++)
			if (!label_valid(&co[s].label[i]))
				FAIL(-EINVAL, "counters segment: object in slot %u has a malformed "
				     "label %u", s, i);
		struct onering_metrics_object *o = &m->objects[m->nr_objects++];
		o->slot = s;
		o->gen = co[s].gen;
		o->what = co[s].what;
		o->id = co[s].id;
		o->list = l;
		o->nr_labels = co[s].nr_labels;
		o->label = co[s].label;
		memcpy(o->value, co[s].value, sizeof(o->value));
	}
	m->pid = h.pid;
	m->epoch = h.seg.epoch;
	m->start_time_ns = h.start_time_ns;
	m->updated_ns = ch->updated_ns;
	m->updates = ch->updates;
	m->interval_ms = h.interval_ms;
	m->state = ch->state;
	memcpy(m->name, h.name, sizeof(m->name));
	m->name[sizeof(m->name) - 1] = '\0';
	for (char *p = m->name; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	return 0;
fail:
	onering_metrics_free(m);
	return r;
}

void onering_metrics_free(struct onering_metrics *m)
{
	free(m->descs);
	free(m->lists);
	free(m->objects);
	free(m->copy);
	memset(m, 0, sizeof(*m));
}

const struct onering_metrics_list *onering_metrics_list_find(const struct onering_metrics *m,
							     uint32_t what)
{
	for (unsigned k = 0; k < m->nr_lists; k++)
		if (m->lists[k].what == what)
			return &m->lists[k];
	return NULL;
}

int onering_metrics_counter(const struct onering_metrics_list *l, const char *name)
{
	for (unsigned c = 0; l && c < l->nr; c++)
		if (strcmp(l->desc[c].name, name) == 0)
			return (int)c;
	return -1;
}

const char *onering_metrics_label(const struct onering_metrics_object *o, const char *key)
{
	for (unsigned i = 0; i < o->nr_labels; i++)
		if (strcmp(o->label[i].key, key) == 0)
			return o->label[i].value;
	return NULL;
}

const struct onering_metrics_object *onering_metrics_same(const struct onering_metrics *m,
							  const struct onering_metrics_object *o)
{
	for (unsigned i = 0; i < m->nr_objects; i++)
		if (m->objects[i].slot == o->slot)
			return m->objects[i].gen == o->gen && m->objects[i].what == o->what
				       ? &m->objects[i] : NULL;
	return NULL;
}

/* ---- Prometheus ---------------------------------------------------------------- */

/* A label value or help text as the exposition format wants it: \\, \" (in
 * label values) and \n escaped. */
static void prom_escape(const char *v, bool quote, FILE *out)
{
	for (; *v; v++) {
		if (*v == '\\' || (quote && *v == '"'))
			fputc('\\', out);
		if (*v == '\n')
			fputs("\\n", out);
		else
			fputc(*v, out);
	}
}

/* An object's labels: the instance, its identity labels, and its label-kind
 * counters (ids and cpus are not samples). */
static void prom_labels(const char *instance, const struct onering_metrics_object *o, FILE *out)
{
	fputs("{instance=\"", out);
	prom_escape(instance, true, out);
	fputc('"', out);
	for (unsigned i = 0; i < o->nr_labels; i++) {
		if (o->label[i].flags & ONERING_COUNTERS_LABEL_INFO)
			continue;
		fprintf(out, ",%s=\"", o->label[i].key);
		prom_escape(o->label[i].value, true, out);
		fputc('"', out);
	}
	for (unsigned c = 0; c < o->list->nr; c++)
		if (o->list->desc[c].kind == ONERING_COUNTER_LABEL)
			fprintf(out, ",%s=\"%llu\"", o->list->desc[c].name,
				(unsigned long long)o->value[c]);
	fputc('}', out);
}

int onering_metrics_prometheus(const struct onering_metrics *m, const char *instance, FILE *out)
{
	for (unsigned k = 0; k < m->nr_lists; k++) {
		const struct onering_metrics_list *l = &m->lists[k];
		for (unsigned c = 0; c < l->nr; c++) {
			const struct onering_metrics_desc *d = &l->desc[c];
			bool counter = d->kind == ONERING_COUNTER_COUNTER;
			char metric[160];
			if (d->kind == ONERING_COUNTER_LABEL)
				continue;
			snprintf(metric, sizeof(metric), "onering_%s_%s%s", l->object, d->name,
				 counter ? "_total" : "");
			fprintf(out, "# HELP %s ", metric);
			prom_escape(d->help, false, out);
			fputs(" (", out);
			prom_escape(d->unit, false, out);
			fprintf(out, ")\n# TYPE %s %s\n", metric, counter ? "counter" : "gauge");
			for (unsigned i = 0; i < m->nr_objects; i++) {
				if (m->objects[i].list != l)
					continue;
				fputs(metric, out);
				prom_labels(instance, &m->objects[i], out);
				fprintf(out, " %llu\n", (unsigned long long)m->objects[i].value[c]);
			}
		}
	}
	return ferror(out) ? -EIO : 0;
}
