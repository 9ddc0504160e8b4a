// SPDX-License-Identifier: MIT
// The counter lists (shm/counters.h): what the enums and the descriptions
// generated from them promise. docs/operations.md is checked against them
// in tests/integration/tools_test.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

#include "shm/counters.h"
#include "shm/proto.h"

namespace {

TEST(CountersTest, EveryListIsFoundByWhatAndFitsAStatsItem)
{
	unsigned nr;
	const onering_counter_list *lists = onering_counter_lists(&nr);
	ASSERT_EQ(nr, 9u);
	std::set<uint32_t> whats;
	std::set<std::string> families;
	for (unsigned k = 0; k < nr; k++) {
		EXPECT_EQ(onering_counter_list_find(lists[k].what), &lists[k]);
		EXPECT_TRUE(whats.insert(lists[k].what).second);
		EXPECT_TRUE(families.insert(lists[k].family).second);
		EXPECT_GT(lists[k].nr, 0u);
		EXPECT_LE(lists[k].nr, (unsigned)ONERING_STATS_COUNTERS_MAX);
	}
	EXPECT_EQ(onering_counter_list_find(0), nullptr);
	EXPECT_EQ(onering_counter_list_find(ONERING_STATS_GROUP)->nr, (unsigned)ONERING_GC_NR);
	EXPECT_EQ(onering_counter_list_find(ONERING_STATS_RXQ)->nr, (unsigned)ONERING_RXQC_NR);
	EXPECT_EQ(onering_counter_list_find(ONERING_STATS_LEVEL)->nr, (unsigned)ONERING_LC_NR);
	EXPECT_EQ(onering_counter_list_find(ONERING_STATS_STREAM)->nr, (unsigned)ONERING_SC_NR);
}

TEST(CountersTest, EveryCounterHasAUniqueLowerCaseNameAKindAUnitAndHelp)
{
	unsigned nr;
	const onering_counter_list *lists = onering_counter_lists(&nr);
	for (unsigned k = 0; k < nr; k++) {
		std::set<std::string> names;
		for (unsigned c = 0; c < lists[k].nr; c++) {
			const onering_counter_desc &d = lists[k].desc[c];
			ASSERT_NE(d.name, nullptr) << lists[k].family << " " << c;
			EXPECT_TRUE(names.insert(d.name).second) << lists[k].family << " " << d.name;
			EXPECT_EQ(strspn(d.name, "abcdefghijklmnopqrstuvwxyz0123456789_"), strlen(d.name))
				<< d.name;
			EXPECT_STRNE(onering_counter_kind_name(d.kind), "?") << d.name;
			EXPECT_GT(strlen(d.unit), 0u) << d.name;
			EXPECT_GT(strlen(d.help), 10u) << d.name;
		}
	}
}

// The enums keep their values (they travel in STATS_ITEM replies) and each
// constant describes the counter of its own name.
TEST(CountersTest, EnumValuesAreTheirPlaceAndNameTheirCounter)
{
	EXPECT_EQ(ONERING_BC_CLIENTS, 0);
	EXPECT_EQ(ONERING_BC_QUOTA, 10);
	EXPECT_EQ(ONERING_BC_NR, 12);
	EXPECT_EQ(ONERING_PC_KICKS, 6);
	EXPECT_EQ(ONERING_QC_REDELIVERED, 11);
	EXPECT_EQ(ONERING_GC_HANDOFFS, 6);
	EXPECT_EQ(ONERING_PORTC_RXQS, 5);
	EXPECT_EQ(ONERING_RXQC_GROUP, 5);
	EXPECT_STREQ(onering_counter_list_find(ONERING_STATS_BROKER)->desc[ONERING_BC_QUOTA].name,
		     "quota_refusals");
	EXPECT_STREQ(onering_counter_list_find(ONERING_STATS_PORT)->desc[ONERING_PORTC_NOMBUF].name,
		     "rx_nombuf");
	EXPECT_STREQ(onering_counter_list_find(ONERING_STATS_QUEUE)->desc[ONERING_QC_CAPACITY].name,
		     "capacity");
	EXPECT_EQ(onering_counter_list_find(ONERING_STATS_POLLER)->desc[ONERING_PC_CPU].kind,
		  (unsigned)ONERING_COUNTER_LABEL);
	EXPECT_EQ(onering_counter_list_find(ONERING_STATS_GROUP)->desc[ONERING_GC_RUNNING].kind,
		  (unsigned)ONERING_COUNTER_GAUGE);
}

} // namespace
