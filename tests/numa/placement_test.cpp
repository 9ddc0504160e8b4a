// SPDX-License-Identifier: MIT
// Node-local segment memory (numa/placement.c) on the real machine.
#include <gtest/gtest.h>

#include <cstring>
#include <sys/mman.h>

#include "numa/placement.h"
#include "shm/abi.h"

namespace {

TEST(NumaPlacementTest, MemoryBoundToAnExistingNodeComesFromIt)
{
	ASSERT_GE(onering_numa_node_count(), 1);
	for (int node = 0; node < onering_numa_node_count(); node++) {
		if (!onering_numa_node_exists(static_cast<uint32_t>(node)))
			continue;
		size_t len = 1 << 20;
		void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(p, MAP_FAILED);
		ASSERT_EQ(onering_numa_bind_memory(p, len, static_cast<uint32_t>(node)), 0);
		std::memset(p, 1, len); // first touch after the bind
		EXPECT_EQ(onering_numa_node_of(p), node);
		EXPECT_EQ(onering_numa_node_of(static_cast<char *>(p) + len - 1), node);
		munmap(p, len);
	}
}

TEST(NumaPlacementTest, MissingNodeFallsBackAndSaysSo)
{
	uint32_t missing = static_cast<uint32_t>(onering_numa_node_count()) + 3;
	EXPECT_FALSE(onering_numa_node_exists(missing));
	size_t len = 1 << 16;
	void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(p, MAP_FAILED);
	EXPECT_EQ(onering_numa_bind_memory(p, len, missing), 1);
	std::memset(p, 1, len); // still usable memory
	EXPECT_GE(onering_numa_node_of(p), 0);
	munmap(p, len);
}

TEST(NumaPlacementTest, SegmentCreatedThroughTheHookLivesOnItsNode)
{
	onering_seg seg{};
	ASSERT_EQ(onering_seg_create(&seg, "numa-test", ONERING_SEG_EVENTS, 1 << 20, 0, 1,
				     onering_numa_placement(), ONERING_SEG_NO_HUGETLB), 0);
	std::memset(static_cast<char *>(seg.base) + 4096, 0, seg.size - 4096);
	EXPECT_EQ(onering_numa_node_of(seg.base), 0);
	EXPECT_EQ(onering_numa_node_of(static_cast<char *>(seg.base) + seg.size - 64), 0);
	EXPECT_EQ(static_cast<onering_seg_header *>(seg.base)->node, 0u);
	onering_seg_destroy(&seg);

	// A node this machine lacks still yields a working segment.
	uint32_t missing = static_cast<uint32_t>(onering_numa_node_count()) + 1;
	ASSERT_EQ(onering_seg_create(&seg, "numa-missing", ONERING_SEG_EVENTS, 4096, missing, 1,
				     onering_numa_placement(), ONERING_SEG_NO_HUGETLB), 0);
	EXPECT_EQ(static_cast<onering_seg_header *>(seg.base)->node, missing);
	onering_seg_destroy(&seg);
}

} // namespace
