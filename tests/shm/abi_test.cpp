// SPDX-License-Identifier: MIT
// Segment header validation (shm/abi.c). The record layout itself is pinned
// by static assertions in shm/abi.h, compiled here as C++ and in shm/ as C.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "shm/abi.h"

namespace {

class SegHeaderTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		onering_seg_header_init(&hdr_, ONERING_SEG_EVENTS, 4096, 0, 0x1234);
	}
	int Check(size_t map_size, uint32_t kind = ONERING_SEG_EVENTS)
	{
		err_[0] = '\0';
		return onering_seg_header_check(&hdr_, map_size, kind, err_, sizeof(err_));
	}
	onering_seg_header hdr_{};
	char err_[256];
};

TEST_F(SegHeaderTest, AcceptsWhatTheBrokerWrites)
{
	EXPECT_EQ(Check(4096), 0);
	EXPECT_EQ(Check(8192, 0), 0); // any kind; mapping larger than the segment
	EXPECT_EQ(hdr_.abi_major, ONERING_ABI_MAJOR);
	EXPECT_EQ(hdr_.epoch, 0x1234u);
}

TEST_F(SegHeaderTest, RejectsWrongMagicWithEproto)
{
	hdr_.magic = 0x4f4e5247; // byte-swapped
	EXPECT_EQ(Check(4096), -EPROTO);
	EXPECT_NE(std::string(err_).find("magic"), std::string::npos) << err_;
}

TEST_F(SegHeaderTest, RejectsOtherMajorVersionAndNamesBothVersions)
{
	hdr_.abi_major = ONERING_ABI_MAJOR + 1;
	EXPECT_EQ(Check(4096), -EPROTO);
	std::string want = std::to_string(ONERING_ABI_MAJOR + 1) + "." +
			   std::to_string(ONERING_ABI_MINOR);
	EXPECT_NE(std::string(err_).find(want), std::string::npos) << err_;
	hdr_.abi_major = 0;
	EXPECT_EQ(Check(4096), -EPROTO);
}

TEST_F(SegHeaderTest, AcceptsNewerMinorVersion)
{
	hdr_.abi_minor = ONERING_ABI_MINOR + 7;
	EXPECT_EQ(Check(4096), 0);
}

TEST_F(SegHeaderTest, RejectsUnknownOrUnexpectedKind)
{
	EXPECT_EQ(Check(4096, ONERING_SEG_CONSUMER), -EPROTO);
	hdr_.kind = ONERING_SEG_KIND_MAX + 1;
	EXPECT_EQ(Check(4096, 0), -EPROTO);
	hdr_.kind = 0;
	EXPECT_EQ(Check(4096, 0), -EPROTO);
}

TEST_F(SegHeaderTest, RejectsUnknownFeatureBits)
{
	hdr_.features = 1;
	EXPECT_EQ(Check(4096), -EPROTO);
}

TEST_F(SegHeaderTest, RejectsSizesThatDoNotFitTheMapping)
{
	EXPECT_EQ(Check(4095), -ERANGE); // recorded 4096 > mapped 4095
	hdr_.size = UINT64_MAX;
	EXPECT_EQ(Check(4096), -ERANGE);
	hdr_.size = 10; // smaller than a header
	EXPECT_EQ(Check(4096), -ERANGE);
	EXPECT_EQ(Check(sizeof(hdr_) - 1), -EINVAL); // mapping cannot hold a header
}

TEST(AbiLayoutTest, QueueSegmentSizesFollowTheDocumentedLayout)
{
	EXPECT_EQ(onering_events_seg_size(1024), 128u + 1024u * 64u);
	EXPECT_EQ(onering_consumer_seg_size(256), 256u + 256u * 64u);
	EXPECT_EQ(ONERING_EVENTS_SLOTS_OFFSET % 64, 0u);
	EXPECT_EQ(ONERING_SQ_SLOTS_OFFSET % 64, 0u);
}

} // namespace
