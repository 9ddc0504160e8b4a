/* SPDX-License-Identifier: MIT */
/*
 * The counter descriptions, generated from the lists in shm/counters.h:
 * one array per object, indexed by its enum, and the table of the lists.
 * `onering stat` names and explains counters from here only.
 */
#include <stddef.h>

#include "shm/counters.h"
#include "shm/proto.h"

#define COUNTER_DESC(P, ID, name, KIND, unit, help)                                            \
	[ONERING_##P##_##ID] = {#name, #unit, help, ONERING_COUNTER_##KIND},
#define COUNTER_DESC_ARRAY(LIST, P, tag, what, family, object)                                 \
	static const struct onering_counter_desc family##_desc[ONERING_##P##_NR] = {           \
		LIST(COUNTER_DESC, P)};
ONERING_COUNTER_LISTS(COUNTER_DESC_ARRAY)

#define COUNTER_FAMILY(LIST, P, tag, what, family, object)                                     \
	{#family, #object, what, ONERING_##P##_NR, family##_desc},
static const struct onering_counter_list lists[] = {ONERING_COUNTER_LISTS(COUNTER_FAMILY)};

const struct onering_counter_list *onering_counter_lists(unsigned *nr_lists)
{
	*nr_lists = sizeof(lists) / sizeof(lists[0]);
	return lists;
}

const struct onering_counter_list *onering_counter_list_find(uint32_t what)
{
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (lists[i].what == what)
			return &lists[i];
	return NULL;
}

const char *onering_counter_kind_name(unsigned kind)
{
	static const char *const names[] = {
		[ONERING_COUNTER_COUNTER] = "counter",
		[ONERING_COUNTER_GAUGE] = "gauge",
		[ONERING_COUNTER_LABEL] = "label",
	};

	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}
