// SPDX-License-Identifier: MIT
// Mapping a queue's priority rings (client/prio.h): what the broker wrote
// into the events segment is checked against the levels granted and the
// mapping's size before any ring is used; each level's ring sits where
// docs/shm-abi.md says.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "client/prio.h"

namespace {

class PrioMapTest : public ::testing::Test {
protected:
	static constexpr uint32_t kCap = 8;
	// An events segment of kCap slots, pkt bytes of packet area and levels
	// levels, as the broker lays it out (zeroed).
	void Layout(uint32_t levels, uint64_t pkt = 0)
	{
		uint64_t size = onering_events_seg_size(kCap) + pkt +
				onering_events_levels_size(kCap, levels);
		seg_.assign(size, 0);
		ectl()->ev_capacity = kCap;
		ectl()->packet_area_size = pkt;
		ectl()->packet_area_offset = pkt ? onering_events_pkt_offset(kCap) : 0;
		ectl()->nr_levels = levels;
		memset(static_cast<void *>(&cctl_), 0, sizeof(cctl_));
	}
	onering_events_ctl *ectl()
	{
		return reinterpret_cast<onering_events_ctl *>(seg_.data() + ONERING_EVENTS_CTL_OFFSET);
	}
	int Map(uint32_t want, uint64_t size = 0)
	{
		return client_prio_map(lvc_, seg_.data(), size ? size : seg_.size(), ectl(), &cctl_,
				       want, 0, err_, sizeof(err_));
	}
	std::vector<unsigned char> seg_;
	onering_consumer_ctl cctl_ {};
	onering_ring_consumer lvc_[ONERING_PRIO_LEVELS - 1] {};
	char err_[128] = "";
};

TEST_F(PrioMapTest, OneLevelMapsNothing)
{
	Layout(1);
	EXPECT_EQ(Map(1), 0);
	Layout(0); // a 1.5 broker's segment: 0 means one
	EXPECT_EQ(Map(1), 0);
}

TEST_F(PrioMapTest, EachLevelsRingFollowsThePacketAreaInOrder)
{
	const uint64_t pkt = 128 * kCap;
	Layout(ONERING_PRIO_LEVELS, pkt);
	ASSERT_EQ(Map(ONERING_PRIO_LEVELS), 0) << err_;
	const unsigned char *area = seg_.data() + onering_events_seg_size(kCap) + pkt;
	const auto *lctl = reinterpret_cast<const onering_levels_ctl *>(area);
	for (uint32_t k = 1; k < ONERING_PRIO_LEVELS; k++) {
		const onering_ring_consumer &c = lvc_[k - 1];
		EXPECT_EQ(c.capacity, kCap);
		EXPECT_EQ(c.slots, area + 64 + (k - 1) * kCap * 64) << "level " << k;
		EXPECT_EQ(c.tail_word, &lctl->level_tail_pos[k - 1]);
		EXPECT_EQ(c.head_word, &cctl_.level_head_pos[k - 1]);
	}
	// The last ring ends at the end of the segment.
	EXPECT_EQ(lvc_[ONERING_PRIO_LEVELS - 2].slots + kCap * 64, seg_.data() + seg_.size());
}

TEST_F(PrioMapTest, RefusesALevelCountOtherThanTheGrantedOne)
{
	Layout(2);
	EXPECT_EQ(Map(3), -EPROTO);
	EXPECT_NE(strstr(err_, "priority levels"), nullptr) << err_;
	Layout(3);
	EXPECT_EQ(Map(2), -EPROTO);
}

TEST_F(PrioMapTest, RefusesMoreLevelsThanTheLimit)
{
	Layout(ONERING_PRIO_LEVELS);
	ectl()->nr_levels = ONERING_PRIO_LEVELS + 1;
	EXPECT_EQ(Map(ONERING_PRIO_LEVELS + 1), -EPROTO);
	EXPECT_EQ(Map(ONERING_PRIO_LEVELS), -EPROTO);
}

TEST_F(PrioMapTest, RefusesRingsThatDoNotFitTheMapping)
{
	Layout(3);
	EXPECT_EQ(Map(3, seg_.size() - 1), -EPROTO);
	EXPECT_NE(strstr(err_, "do not fit"), nullptr) << err_;
	// A packet area size that points past the mapping.
	Layout(3);
	ectl()->packet_area_size = UINT64_MAX - 64;
	EXPECT_EQ(Map(3), -EPROTO);
}

TEST_F(PrioMapTest, ARecordCarriesItsPriorityInThreeFlagBits)
{
	onering_event e {};
	e.flags = ONERING_EVF_COALESCED | (3u << ONERING_EVF_PRIO_SHIFT);
	EXPECT_EQ(onering_event_prio(&e), 3u);
	e.flags = 0xffff;
	EXPECT_EQ(onering_event_prio(&e), 7u) << "three bits: the layout's room";
}

} // namespace
