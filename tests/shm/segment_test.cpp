// SPDX-License-Identifier: MIT
// memfd segments (shm/segment.c): creation, header, seals, attach.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include "shm/abi.h"
#include "shm/segment.h"

namespace {

class SegmentTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		ASSERT_EQ(onering_seg_create(&seg_, "onering-test", ONERING_SEG_EVENTS, 10000,
					     ONERING_NODE_ANY, 77, nullptr, ONERING_SEG_NO_HUGETLB),
			  0);
	}
	void TearDown() override { onering_seg_destroy(&seg_); }
	onering_seg seg_{};
};

TEST_F(SegmentTest, CreateRoundsUpAndWritesTheHeader)
{
	EXPECT_GE(seg_.size, 10000u);
	EXPECT_EQ(seg_.size % static_cast<size_t>(sysconf(_SC_PAGESIZE)), 0u);
	EXPECT_FALSE(seg_.hugetlb);
	EXPECT_EQ(onering_seg_header_check(seg_.base, seg_.size, ONERING_SEG_EVENTS, nullptr, 0), 0);
	auto *h = static_cast<onering_seg_header *>(seg_.base);
	EXPECT_EQ(h->epoch, 77u);
	EXPECT_EQ(h->size, seg_.size);
	EXPECT_EQ(h->node, ONERING_NODE_ANY);
	int seals = fcntl(seg_.fd, F_GET_SEALS);
	EXPECT_EQ(seals, 0);
	EXPECT_TRUE(fcntl(seg_.fd, F_GETFD) & FD_CLOEXEC);
}

TEST_F(SegmentTest, ShrinkAndGrowAreSealedForEveryone)
{
	ASSERT_EQ(onering_seg_seal(&seg_, false), 0);
	EXPECT_EQ(ftruncate(seg_.fd, 4096), -1);
	EXPECT_EQ(errno, EPERM);
	EXPECT_EQ(ftruncate(seg_.fd, static_cast<off_t>(seg_.size) * 2), -1);
	EXPECT_EQ(errno, EPERM);
	// Not FUTURE_WRITE: a peer may still map it writable.
	onering_seg peer{};
	int dup_fd = dup(seg_.fd);
	ASSERT_EQ(onering_seg_attach(&peer, dup_fd, ONERING_SEG_EVENTS, true, nullptr, 0), 0);
	static_cast<char *>(peer.base)[200] = 'x';
	EXPECT_EQ(static_cast<char *>(seg_.base)[200], 'x');
	onering_seg_destroy(&peer);
}

TEST_F(SegmentTest, SealsAreFinal)
{
	// Issue 10, finding 6: a holder of the fd (the client) must not add
	// seals of its own after the broker's, e.g. WRITE on a segment the
	// broker still stores into.
	ASSERT_EQ(onering_seg_seal(&seg_, false), 0);
	int seals = fcntl(seg_.fd, F_GET_SEALS);
	EXPECT_TRUE(seals & F_SEAL_SEAL);
	int dup_fd = dup(seg_.fd);
	ASSERT_GE(dup_fd, 0);
	EXPECT_EQ(fcntl(dup_fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	EXPECT_EQ(errno, EPERM);
	EXPECT_EQ(fcntl(dup_fd, F_GET_SEALS), seals);
	close(dup_fd);
}

TEST_F(SegmentTest, FutureWriteSealStopsEveryWayToWrite)
{
	static_cast<char *>(seg_.base)[100] = 'a';
	ASSERT_EQ(onering_seg_seal(&seg_, true), 0);

	// The creator's own mapping, made before the seal, stays writable.
	static_cast<char *>(seg_.base)[100] = 'b';

	// A new writable shared mapping fails.
	void *w = mmap(nullptr, seg_.size, PROT_READ | PROT_WRITE, MAP_SHARED, seg_.fd, 0);
	EXPECT_EQ(w, MAP_FAILED);
	EXPECT_EQ(errno, EPERM);

	// write(2) and ftruncate(2) fail.
	EXPECT_EQ(pwrite(seg_.fd, "z", 1, 100), -1);
	EXPECT_EQ(errno, EPERM);
	EXPECT_EQ(ftruncate(seg_.fd, 0), -1);

	// A read-only mapping cannot be upgraded.
	void *r = mmap(nullptr, seg_.size, PROT_READ, MAP_SHARED, seg_.fd, 0);
	ASSERT_NE(r, MAP_FAILED);
	EXPECT_EQ(static_cast<char *>(r)[100], 'b');
	EXPECT_EQ(mprotect(r, seg_.size, PROT_READ | PROT_WRITE), -1);
	munmap(r, seg_.size);

	// Reopening through /proc does not get around it.
	char path[64];
	std::snprintf(path, sizeof(path), "/proc/self/fd/%d", seg_.fd);
	int rw = open(path, O_RDWR);
	ASSERT_GE(rw, 0);
	w = mmap(nullptr, seg_.size, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
	EXPECT_EQ(w, MAP_FAILED);
	close(rw);

	// The attach helper reports it as an error, and maps read-only fine.
	onering_seg peer{};
	int dup_fd = dup(seg_.fd);
	char err[200];
	EXPECT_EQ(onering_seg_attach(&peer, dup_fd, ONERING_SEG_EVENTS, true, err, sizeof(err)),
		  -EPERM);
	EXPECT_NE(std::string(err).find("read-write"), std::string::npos) << err;
	ASSERT_EQ(onering_seg_attach(&peer, dup_fd, ONERING_SEG_EVENTS, false, err, sizeof(err)), 0)
		<< err;
	EXPECT_EQ(static_cast<const char *>(peer.base)[100], 'b');
	onering_seg_destroy(&peer);
}

TEST(SegmentAttachTest, RejectsForeignMemfdWithEproto)
{
	int fd = memfd_create("not-onering", MFD_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(ftruncate(fd, 4096), 0);
	ASSERT_EQ(pwrite(fd, "GARBAGE-GARBAGE-GARBAGE", 23, 0), 23);
	onering_seg seg{};
	char err[200];
	EXPECT_EQ(onering_seg_attach(&seg, fd, ONERING_SEG_EVENTS, false, err, sizeof(err)),
		  -EPROTO);
	EXPECT_NE(std::string(err).find("magic"), std::string::npos) << err;
	close(fd);
}

TEST(SegmentAttachTest, RejectsTinyFileAndWrongKind)
{
	int fd = memfd_create("tiny", MFD_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(ftruncate(fd, 16), 0);
	onering_seg seg{};
	EXPECT_EQ(onering_seg_attach(&seg, fd, ONERING_SEG_EVENTS, false, nullptr, 0), -EINVAL);
	close(fd);

	onering_seg made{};
	ASSERT_EQ(onering_seg_create(&made, "kind", ONERING_SEG_CONSUMER, 4096, ONERING_NODE_ANY, 1,
				     nullptr, ONERING_SEG_NO_HUGETLB), 0);
	int dup_fd = dup(made.fd);
	EXPECT_EQ(onering_seg_attach(&seg, dup_fd, ONERING_SEG_EVENTS, false, nullptr, 0), -EPROTO);
	close(dup_fd);
	onering_seg_destroy(&made);
}

TEST(SegmentCreateTest, RejectsSizeBelowAHeader)
{
	onering_seg seg{};
	EXPECT_EQ(onering_seg_create(&seg, "x", ONERING_SEG_EVENTS, 8, ONERING_NODE_ANY, 1, nullptr,
				     0), -EINVAL);
	onering_seg_destroy(&seg); // safe after a failed create
}

TEST(SegmentCreateTest, UsesHugepagesWhenReserved)
{
	size_t hp = onering_hugepage_size();
	if (hp == 0)
		GTEST_SKIP() << "kernel has no hugepage size";
	onering_seg seg{};
	ASSERT_EQ(onering_seg_create(&seg, "huge", ONERING_SEG_EVENTS, 4096, ONERING_NODE_ANY, 1,
				     nullptr, 0), 0);
	if (!seg.hugetlb) {
		onering_seg_destroy(&seg);
		GTEST_SKIP() << "no free hugepages (echo 64 > /proc/sys/vm/nr_hugepages); "
				"normal-page fallback used, as the test above checks";
	}
	EXPECT_EQ(seg.size % hp, 0u);
	ASSERT_EQ(onering_seg_seal(&seg, true), 0);
	void *w = mmap(nullptr, seg.size, PROT_READ | PROT_WRITE, MAP_SHARED, seg.fd, 0);
	EXPECT_EQ(w, MAP_FAILED);
	onering_seg_destroy(&seg);
}

} // namespace
