// SPDX-License-Identifier: MIT
//
// Submission bells (broker/bells.c): which page and bit each queue gets.
// A page per (poller, user, whether its clients ring the summary); a user's
// queues beyond one page's bits get a second page; bits and pages are taken
// back with their queues; no queue gets a bit in a summary page's word 0.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "shm/abi.h"
#include "tests/broker/bells_support.h"

namespace {

struct BtDeleter {
	void operator()(bt *t) const { bt_free(t); }
};
using BtPtr = std::unique_ptr<bt, BtDeleter>;

TEST(BellsTest, EachUserHasItsOwnPageAndEachQueueItsOwnBit)
{
	BtPtr t(bt_new(8));
	ASSERT_TRUE(t);
	std::set<std::pair<unsigned, uint32_t>> seen;
	unsigned page_of[2] = {~0u, ~0u};
	for (int i = 0; i < 200; i++) {
		uint32_t uid = 1000 + (uint32_t)(i % 2), bit;
		unsigned page;
		int h = bt_join(t.get(), uid, true, &page, &bit);
		ASSERT_GE(h, 0);
		ASSERT_LT(bit, ONERING_BELL_BITS);
		ASSERT_GE(bit, 64u) << "a bit in the summary word";
		if (page_of[i % 2] == ~0u)
			page_of[i % 2] = page;
		EXPECT_EQ(page, page_of[i % 2]) << "one page per user";
		EXPECT_TRUE(seen.insert({page, bit}).second) << "bit " << bit << " given twice";
		EXPECT_EQ(bt_queue_at(t.get(), page, bit), h) << "the poller finds the queue by its bit";
	}
	EXPECT_NE(page_of[0], page_of[1]) << "two users share a page";
	EXPECT_EQ(bt_pages(t.get()), 2u);
	// 100 queues each: the poller looks at the summary and the two words
	// after it that hold them.
	EXPECT_EQ(bt_words(t.get(), page_of[0]), 3u);
	EXPECT_TRUE(bt_summary(t.get(), page_of[0]));
	struct stat a, b;
	ASSERT_EQ(fstat(bt_page_fd(t.get(), page_of[0]), &a), 0);
	ASSERT_EQ(fstat(bt_page_fd(t.get(), page_of[1]), &b), 0);
	EXPECT_NE(a.st_ino, b.st_ino) << "the users' pages are one memfd";
	EXPECT_GE((size_t)a.st_size, (size_t)ONERING_BELLS_SEG_SIZE);
}

// Both kinds of page: 4,096 queues in one without a summary, 4,032 (words
// 1..63) in one with it; the next queue gets the next page's first bit.
TEST(BellsTest, AUsersQueuesBeyondOnePageGetASecondPage)
{
	for (bool summary : {false, true}) {
		SCOPED_TRACE(summary ? "summary pages" : "pages without a summary");
		BtPtr t(bt_new(4));
		ASSERT_TRUE(t);
		unsigned first = ~0u, page;
		uint32_t bit, first_bit = summary ? 64u : 0u;
		for (uint32_t i = first_bit; i < ONERING_BELL_BITS; i++) {
			ASSERT_GE(bt_join(t.get(), 7, summary, &page, &bit), 0);
			if (i == first_bit)
				first = page;
			ASSERT_EQ(page, first);
			ASSERT_EQ(bit, i) << "bits are given in order";
		}
		EXPECT_EQ(bt_words(t.get(), first), ONERING_BELL_WORDS);
		int h = bt_join(t.get(), 7, summary, &page, &bit);
		ASSERT_GE(h, 0);
		EXPECT_NE(page, first) << "bit " << bit << " of a full page";
		EXPECT_EQ(bit, first_bit);
		EXPECT_EQ(bt_pages(t.get()), 2u);
	}
}

// A user's clients that ring the summary and those that do not (HELLO
// below ABI 1.9) never share a page: the poller reads the first kind's
// words through the summary only, which the others would not set.
TEST(BellsTest, ClientsThatDoNotRingTheSummaryGetPagesOfTheirOwn)
{
	BtPtr t(bt_new(4));
	ASSERT_TRUE(t);
	unsigned ps, pl, page;
	uint32_t bit;
	int s = bt_join(t.get(), 5, true, &ps, &bit);
	ASSERT_GE(s, 0);
	EXPECT_EQ(bit, 64u);
	int l = bt_join(t.get(), 5, false, &pl, &bit);
	ASSERT_GE(l, 0);
	EXPECT_EQ(bit, 0u) << "a page without a summary starts at bit 0";
	EXPECT_NE(ps, pl);
	EXPECT_TRUE(bt_summary(t.get(), ps));
	EXPECT_FALSE(bt_summary(t.get(), pl));
	ASSERT_GE(bt_join(t.get(), 5, true, &page, &bit), 0);
	EXPECT_EQ(page, ps);
	EXPECT_EQ(bit, 65u);
	ASSERT_GE(bt_join(t.get(), 5, false, &page, &bit), 0);
	EXPECT_EQ(page, pl);
	EXPECT_EQ(bit, 1u);
	// The summary page goes with its last queue although word 0 stays held.
	bt_leave(t.get(), s);
	bt_leave(t.get(), 2);
	EXPECT_EQ(bt_pages(t.get()), 1u);
	EXPECT_FALSE(bt_summary(t.get(), 0));
}

TEST(BellsTest, BitsAndPagesAreTakenBackWithTheirQueues)
{
	BtPtr t(bt_new(2));
	ASSERT_TRUE(t);
	unsigned page, pa, pb;
	uint32_t bit, b0, b1;
	int q0 = bt_join(t.get(), 1, true, &pa, &b0);
	int q1 = bt_join(t.get(), 1, true, &pa, &b1);
	ASSERT_GE(q0, 0);
	ASSERT_GE(q1, 0);
	bt_leave(t.get(), q0);
	EXPECT_EQ(bt_queue_at(t.get(), pa, b0), -1) << "a bit nobody holds names no queue";
	int q2 = bt_join(t.get(), 1, true, &page, &bit);
	ASSERT_GE(q2, 0);
	EXPECT_EQ(page, pa);
	EXPECT_EQ(bit, b0) << "the freed bit is given again";
	// Another user: a second page; the table is full then.
	int other = bt_join(t.get(), 2, true, &pb, &bit);
	ASSERT_GE(other, 0);
	EXPECT_EQ(bt_pages(t.get()), 2u);
	EXPECT_EQ(bt_join(t.get(), 3, true, &page, &bit), -ENOSPC) << "a third user, no room";
	// The first user's last queues leave: its page goes, the other stays
	// and is found in the table.
	bt_leave(t.get(), q1);
	bt_leave(t.get(), q2);
	ASSERT_EQ(bt_pages(t.get()), 1u);
	int again = bt_join(t.get(), 2, true, &page, &bit);
	ASSERT_GE(again, 0);
	EXPECT_EQ(page, 0u);
	EXPECT_EQ(bt_queue_at(t.get(), 0, bit), again);
	EXPECT_GE(bt_join(t.get(), 3, true, &page, &bit), 0) << "the freed slot takes a new user";
	EXPECT_EQ(bt_pages(t.get()), 2u);
}

} // namespace
