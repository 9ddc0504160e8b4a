/* SPDX-License-Identifier: MIT */
/*
 * The counters segment: the broker's counters in a memfd that any allowed
 * uid maps read-only, with the names, help, kinds and units of every counter
 * in it (Aeron's CnC and counters manager), so that `onering stat`, `onering
 * top` and the --metrics-listen endpoint read counters with no client slot
 * and no table of their own. docs/shm-abi.md describes it byte by byte.
 *
 * Layout (offsets in bytes; every region 64-byte aligned)
 *
 *   [0, 256)         struct onering_counters_header: the segment header
 *                    (kind ONERING_SEG_COUNTERS), the layout version, the
 *                    broker's pid, start time and instance name, where the
 *                    regions are, and the seqlock word with the update's time
 *   [lists_off, ..)  nr_lists x struct onering_counters_list: one per kind of
 *                    object (broker, poller, queue, ...): its family and
 *                    object words, and its counters' descriptions
 *   [descs_off, ..)  nr_descs x struct onering_counters_desc: a counter's
 *                    name, unit and help (offsets into the strings) and kind
 *   [strings_off, ..) strings_size bytes of NUL-terminated strings
 *   [objects_off, ..) max_objects x struct onering_counters_object: a slot
 *                    per object: its list, id, generation, labels and values
 *
 * The directory (lists, descriptions, strings) is written once, before the
 * fd is sealed; the objects change on every update.
 *
 * Ordering contract
 * -----------------
 * One writer, the broker's control thread (onering_counters_update_begin ..
 * _end), any number of readers in other processes (onering_metrics_read).
 * Everything the writer changes after the seal - the object slots,
 * updated_ns, updates, nr_objects, state - is guarded by the seqlock word
 * `seq`:
 *
 *   W1  update_begin: seq = odd (relaxed), then a release fence: no store of
 *       the update is seen before seq turns odd.
 *   W2  update_end: store-release of seq = even, after every store of the
 *       update. Pairs with R1.
 *   R1  read: load-acquire of seq (even, else retry); synchronises with W2:
 *       the copy that follows sees at least that update.
 *   R2  read: acquire fence after the copy, then seq again (relaxed): equal
 *       to R1's, and no update overlapped the copy (an update that began
 *       stored its odd seq, W1, before any store the copy could have seen).
 *
 * The copy is the reader's private memory, validated there (the broker may
 * be another version or hostile: every offset, count and string is checked
 * in the copy, read once).
 *
 * Slots and generations: an object (a queue, a group) takes a free slot at
 * the update that first sees it, and gives it back at the first update that
 * no longer does; each take bumps the slot's gen. A reader that compares two
 * snapshots (rates) matches objects by slot and gen, never by slot alone, so
 * a freed slot taken by another object is never read as the same one.
 */
#ifndef ONERING_SHM_COUNTERS_SEG_H
#define ONERING_SHM_COUNTERS_SEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shm/abi.h"
#include "shm/atomic.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ONERING_COUNTERS_VERSION 1u     /* the layout below; a reader refuses another */
#define ONERING_COUNTERS_LISTS_MAX 32u  /* lists a reader takes */
#define ONERING_COUNTERS_DESCS_MAX 512u /* counter descriptions a reader takes */
#define ONERING_COUNTERS_VALUES_MAX 16u /* counters per object */
#define ONERING_COUNTERS_LABELS_MAX 10u /* labels per object */
#define ONERING_COUNTERS_KEY_SIZE 15u   /* a label key, NUL included: [a-z_][a-z0-9_]* */
#define ONERING_COUNTERS_VALUE_SIZE 32u /* a label value, NUL included: printable ASCII */
#define ONERING_COUNTERS_OBJECTS_MAX (1u << 16) /* the most a segment may have */
#define ONERING_COUNTERS_STRINGS_MAX (1u << 16) /* bytes of strings a reader takes */

/* onering_counters_header.state */
#define ONERING_COUNTERS_RUNNING 1u
#define ONERING_COUNTERS_STOPPED 2u /* the broker stopped (cleanly): values are final */

struct onering_counters_header {
	struct onering_seg_header seg; /* kind ONERING_SEG_COUNTERS */
	/* Written once, before the seal. */
	uint32_t version;       /* ONERING_COUNTERS_VERSION */
	uint32_t pid;           /* the broker's */
	uint64_t start_time_ns; /* CLOCK_REALTIME when the broker started */
	char name[32];          /* its instance name, NUL-terminated */
	uint32_t nr_lists;
	uint32_t lists_off;
	uint32_t nr_descs;
	uint32_t descs_off;
	uint32_t strings_size;
	uint32_t strings_off;
	uint32_t max_objects;
	uint32_t objects_off;
	uint32_t object_size;   /* sizeof(struct onering_counters_object) */
	uint32_t interval_ms;   /* the broker copies its counters in this often */
	uint8_t reserved0[40];
	/* Changed by each update, under the seqlock (cache line 3). */
	ONERING_ATOMIC(uint64_t) seq; /* odd while the broker writes: W1, W2 */
	uint64_t updated_ns;    /* CLOCK_MONOTONIC of the last update's end */
	uint64_t updates;       /* updates so far */
	uint32_t nr_objects;    /* slots in use */
	uint32_t state;         /* ONERING_COUNTERS_RUNNING or _STOPPED */
	uint8_t reserved1[32];
};

/* One kind of object: which counters each object of it has. */
struct onering_counters_list {
	uint32_t what;       /* enum onering_stats_what */
	uint16_t first_desc; /* its counters: descs [first_desc, first_desc + nr_counters) */
	uint16_t nr_counters;
	uint32_t family_off; /* string: the --json key ("queues") */
	uint32_t object_off; /* string: the Prometheus word ("queue") */
};

/* One counter. Strings are offsets into the strings region. */
struct onering_counters_desc {
	uint32_t name_off; /* [a-z0-9_]+ */
	uint32_t unit_off;
	uint32_t help_off;
	uint8_t kind;      /* enum onering_counter_kind */
	uint8_t reserved[3];
};

/* onering_counters_label.flags */
#define ONERING_COUNTERS_LABEL_INFO 0x1u   /* a setting or a level, not an identity: stat
					    * and top show it, Prometheus labels leave it out */
#define ONERING_COUNTERS_LABEL_NUMBER 0x2u /* the value is a decimal integer */

struct onering_counters_label {
	char key[ONERING_COUNTERS_KEY_SIZE];
	uint8_t flags;
	char value[ONERING_COUNTERS_VALUE_SIZE];
};

struct onering_counters_object {
	uint32_t what;       /* its list's what; 0: a free slot */
	uint32_t id;         /* unique within its list (a queue id, a poller index) */
	uint32_t gen;        /* bumped each time the slot is taken */
	uint16_t nr_labels;  /* <= ONERING_COUNTERS_LABELS_MAX */
	uint16_t nr_values;  /* == its list's nr_counters */
	struct onering_counters_label label[ONERING_COUNTERS_LABELS_MAX];
	uint8_t reserved[16];
	uint64_t value[ONERING_COUNTERS_VALUES_MAX]; /* by its list's descriptions */
};

#define ONERING_COUNTERS_OFFSET(type, field, off) \
	ONERING_STATIC_ASSERT(offsetof(type, field) == (off), #type "." #field " moved")
ONERING_STATIC_ASSERT(sizeof(struct onering_counters_header) == 256, "counters header");
ONERING_COUNTERS_OFFSET(struct onering_counters_header, version, 64);
ONERING_COUNTERS_OFFSET(struct onering_counters_header, start_time_ns, 72);
ONERING_COUNTERS_OFFSET(struct onering_counters_header, name, 80);
ONERING_COUNTERS_OFFSET(struct onering_counters_header, nr_lists, 112);
ONERING_COUNTERS_OFFSET(struct onering_counters_header, interval_ms, 148);
ONERING_COUNTERS_OFFSET(struct onering_counters_header, seq, 192);
ONERING_COUNTERS_OFFSET(struct onering_counters_header, updated_ns, 200);
ONERING_COUNTERS_OFFSET(struct onering_counters_header, updates, 208);
ONERING_COUNTERS_OFFSET(struct onering_counters_header, nr_objects, 216);
ONERING_COUNTERS_OFFSET(struct onering_counters_header, state, 220);
ONERING_STATIC_ASSERT(sizeof(struct onering_counters_list) == 16, "counters list");
ONERING_STATIC_ASSERT(sizeof(struct onering_counters_desc) == 16, "counters description");
ONERING_STATIC_ASSERT(sizeof(struct onering_counters_label) == 48, "counters label");
ONERING_STATIC_ASSERT(sizeof(struct onering_counters_object) == 640, "counters object");
ONERING_COUNTERS_OFFSET(struct onering_counters_object, label, 16);
ONERING_COUNTERS_OFFSET(struct onering_counters_object, value, 512);

/* ---- the writer (the broker's control thread) ------------------------------ */

/** Bytes a segment of max_objects objects needs, header included. */
size_t onering_counters_seg_size(uint32_t max_objects);

/* The writer's own state: its segment and its index of slots by object. */
struct onering_counters_writer {
	struct onering_counters_header *h;
	struct onering_counters_object *objects;
	uint32_t max_objects;
	uint32_t *index;      /* open addressing: slot + 1, or 0 */
	uint32_t index_mask;
	uint8_t *seen;        /* by slot: met during this update */
	uint32_t *free_slots; /* a stack */
	uint32_t nr_free;
	uint32_t unlisted;    /* objects this update found no slot for */
};

/**
 * Lay out a created segment (its seg header written, the rest zero): the
 * directory from the counter lists of shm/counters.h, every slot free.
 * @param base, size  the segment, at least onering_counters_seg_size(max_objects)
 * @param name        the instance name
 * @param interval_ms how often the writer updates it (said in the header)
 * @return 0; -EINVAL max_objects 0 or above ONERING_COUNTERS_OBJECTS_MAX, or a
 *   size too small; -ENOMEM for the writer's index.
 * Context: the writer, before the segment is sealed and sent.
 */
int onering_counters_writer_init(struct onering_counters_writer *w, void *base, size_t size,
				 uint32_t max_objects, const char *name, uint32_t pid,
				 uint32_t interval_ms);
void onering_counters_writer_fini(struct onering_counters_writer *w);

/** Start an update: seq odd (W1); every object unmet so far. */
void onering_counters_update_begin(struct onering_counters_writer *w);

/**
 * The slot of object (what, id) in this update, taken if it had none (its
 * gen bumped, its labels cleared): fill its labels and values. NULL when
 * every slot is taken (counted in w->unlisted).
 */
struct onering_counters_object *onering_counters_object_get(struct onering_counters_writer *w,
							    uint32_t what, uint32_t id);

/** Add a label to o (flags ONERING_COUNTERS_LABEL_*); one past the last is ignored. */
void onering_counters_label_add(struct onering_counters_object *o, const char *key,
				unsigned flags, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/** End an update: objects not met are freed, the time stored, seq even (W2). */
void onering_counters_update_end(struct onering_counters_writer *w, uint64_t now_ns,
				 uint32_t state);

/* ---- the reader ---------------------------------------------------------- */

struct onering_metrics_desc {
	const char *name, *unit, *help;
	unsigned kind; /* enum onering_counter_kind */
};

struct onering_metrics_list {
	uint32_t what;
	const char *family, *object;
	unsigned nr;
	const struct onering_metrics_desc *desc;
};

struct onering_metrics_object {
	uint32_t slot, gen; /* with the snapshot's segment: who it is */
	uint32_t what, id;
	const struct onering_metrics_list *list;
	unsigned nr_labels;
	const struct onering_counters_label *label; /* checked: keys, values, NULs */
	uint64_t value[ONERING_COUNTERS_VALUES_MAX]; /* list->nr of them */
};

/* A consistent, validated copy of a counters segment. */
struct onering_metrics {
	uint32_t pid;
	uint64_t start_time_ns, updated_ns, updates, epoch;
	uint32_t interval_ms, state;
	char name[32];
	unsigned nr_lists;
	struct onering_metrics_list *lists;
	unsigned nr_objects;
	struct onering_metrics_object *objects; /* in slot order */
	struct onering_metrics_desc *descs;     /* every list's, one array */
	void *copy; /* the segment's bytes the rest points into */
};

/**
 * Copy a counters segment consistently (R1, R2) and validate the copy.
 * @param base, size  a mapping of the segment (read-only)
 * @param m     receives the snapshot; free it with onering_metrics_free()
 * @param err   a readable reason on failure
 * @return 0; -EPROTO not a counters segment, or another ABI or layout
 *   version; -ERANGE an offset, count or size outside the mapping or the
 *   limits above; -EINVAL a string, key or label that is not what the layout
 *   says; -EAGAIN the writer was mid-update every time for 1 s (it died in
 *   one, or is stuck); -ENOMEM.
 * Context: any thread; no system call but malloc, and while updates overlap
 *   clock_gettime and a 50 us nanosleep after every 64 tries.
 */
int onering_metrics_read(const void *base, size_t size, struct onering_metrics *m, char *err,
			 size_t err_size);
/**
 * onering_metrics_read(), giving up (-EAGAIN) once updates have overlapped
 * for patience_ns (counted from the 64th try) instead of 1 s: for a
 * fuzzer's hostile segments. 0 gives up after 128 tries and one 50 us
 * pause; UINT64_MAX never does.
 */
int onering_metrics_read_within(const void *base, size_t size, struct onering_metrics *m,
				char *err, size_t err_size, uint64_t patience_ns);
void onering_metrics_free(struct onering_metrics *m);

/** The list of this what, or NULL. */
const struct onering_metrics_list *onering_metrics_list_find(const struct onering_metrics *m,
							     uint32_t what);
/** The index of counter name in l, or -1. */
int onering_metrics_counter(const struct onering_metrics_list *l, const char *name);
/** The value of label key of o, or NULL. */
const char *onering_metrics_label(const struct onering_metrics_object *o, const char *key);
/** The object of m in the same slot with the same gen as o, or NULL. */
const struct onering_metrics_object *onering_metrics_same(const struct onering_metrics *m,
							  const struct onering_metrics_object *o);

/**
 * The Prometheus text exposition format (0.0.4) of m: every counter of every
 * list with its HELP and TYPE (also with no object now), then one sample per
 * object; counters end in _total, labels are instance (given), the object's
 * identity labels and its label-kind counters. `onering stat --prometheus`
 * and oneringd's /metrics both print with this one function.
 * @return 0, or -EIO when out failed.
 */
int onering_metrics_prometheus(const struct onering_metrics *m, const char *instance, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_SHM_COUNTERS_SEG_H */
