// SPDX-License-Identifier: MIT
// What the consume path does with each kind of record (client/records.h):
// which records go to the caller, which are the library's, which are
// dropped; word-watch generations; the poller kick; packet bounds.
#include <gtest/gtest.h>

#include <cstring>

#include "client/records.h"

namespace {

class RecordsTest : public ::testing::Test {
protected:
	static onering_event Event(uint16_t kind, uint16_t flags = 0)
	{
		onering_event e;
		memset(&e, 0, sizeof(e));
		e.kind = kind;
		e.flags = flags;
		return e;
	}
	static onering_event Control(uint32_t code)
	{
		onering_event e = Event(ONERING_EV_CONTROL);
		e.payload.control.code = code;
		return e;
	}
};

TEST_F(RecordsTest, ControlRecordsSplitIntoNoticeShutdownAndUnknown)
{
	onering_event refused = Control(ONERING_CTL_POST_REFUSED);
	EXPECT_EQ(client_record_classify(&refused), CLIENT_REC_NOTICE);
	onering_event shutdown = Control(ONERING_CTL_SHUTDOWN);
	EXPECT_EQ(client_record_classify(&shutdown), CLIENT_REC_SHUTDOWN);
	onering_event unknown = Control(99);
	EXPECT_EQ(client_record_classify(&unknown), CLIENT_REC_SKIP);
	onering_event zero = Control(0);
	EXPECT_EQ(client_record_classify(&zero), CLIENT_REC_SKIP);
}

TEST_F(RecordsTest, PostsPacketsAndForeignRecordsPassWithoutACheck)
{
	onering_event user = Event(ONERING_EV_USER), nic = Event(ONERING_EV_NIC);
	onering_event foreign = Event(ONERING_EV_FD, ONERING_EVF_FOREIGN);
	EXPECT_EQ(client_record_classify(&user), CLIENT_REC_PASS);
	EXPECT_EQ(client_record_classify(&nic), CLIENT_REC_PASS);
	EXPECT_EQ(client_record_classify(&foreign), CLIENT_REC_PASS);
}

TEST_F(RecordsTest, OwnSourcesGetTheCancellationCheck)
{
	for (uint16_t kind : {ONERING_EV_FD, ONERING_EV_TIMER, ONERING_EV_SIGNAL, ONERING_EV_FILE,
			      ONERING_EV_AIO, ONERING_EV_PROCESS}) {
		onering_event e = Event(kind, ONERING_EVF_LEVEL | ONERING_EVF_COALESCED);
		EXPECT_EQ(client_record_classify(&e), CLIENT_REC_OWN) << "kind " << kind;
	}
}

TEST_F(RecordsTest, KindsWithoutAClassOfTheirOwnGetTheCancellationCheck)
{
	// NONE, the kinds no broker sends yet (within the table and beyond it):
	// taken for a source of ours, unless another client's.
	for (unsigned kind : {0u, 12u, 15u, 16u, 255u, 0xffffu}) {
		onering_event e = Event(static_cast<uint16_t>(kind));
		EXPECT_EQ(client_record_classify(&e), CLIENT_REC_OWN) << "kind " << kind;
		e.flags = ONERING_EVF_FOREIGN;
		EXPECT_EQ(client_record_classify(&e), CLIENT_REC_PASS) << "kind " << kind;
	}
}

TEST_F(RecordsTest, TheKindTableNamesEachKnownKind)
{
	EXPECT_EQ(client_kind_class_of(ONERING_EV_USER), CLIENT_KIND_PASS);
	// Completion-mode records are never dropped: each holds a buffer or a send.
	EXPECT_EQ(client_kind_class_of(ONERING_EV_STREAM), CLIENT_KIND_PASS);
	EXPECT_EQ(client_kind_class_of(ONERING_EV_NIC), CLIENT_KIND_PASS);
	EXPECT_EQ(client_kind_class_of(ONERING_EV_WORD), CLIENT_KIND_WORD);
	EXPECT_EQ(client_kind_class_of(ONERING_EV_CONTROL), CLIENT_KIND_CONTROL);
	for (uint16_t kind : {ONERING_EV_NONE, ONERING_EV_FD, ONERING_EV_TIMER, ONERING_EV_SIGNAL,
			      ONERING_EV_FILE, ONERING_EV_AIO, ONERING_EV_PROCESS})
		EXPECT_EQ(client_kind_class_of(kind), CLIENT_KIND_OWN) << "kind " << kind;
}

TEST_F(RecordsTest, KindDecidesBeforeTheForeignFlag)
{
	// A control or word record stays one even with FOREIGN set.
	onering_event ctl = Control(ONERING_CTL_SHUTDOWN);
	ctl.flags = ONERING_EVF_FOREIGN;
	onering_event word = Event(ONERING_EV_WORD, ONERING_EVF_FOREIGN);
	EXPECT_EQ(client_record_classify(&ctl), CLIENT_REC_SHUTDOWN);
	EXPECT_EQ(client_record_classify(&word), CLIENT_REC_WORD);
}

TEST_F(RecordsTest, AWordRecordCountsOnlyForTheCurrentWatch)
{
	const uint32_t word_gen[3] = {0, 5, 7};
	EXPECT_TRUE(client_word_live(word_gen, 3, 1, 5));
	EXPECT_TRUE(client_word_live(word_gen, 3, 2, 7));
	EXPECT_FALSE(client_word_live(word_gen, 3, 1, 4)); // an earlier watch
	EXPECT_FALSE(client_word_live(word_gen, 3, 1, 7)); // another word's watch
	EXPECT_FALSE(client_word_live(word_gen, 3, 0, 0)); // unwatched: gen 0 is no watch
}

TEST_F(RecordsTest, AWordIndexBeyondTheTableIsDroppedNotRead)
{
	const uint32_t word_gen[2] = {5, 5};
	EXPECT_FALSE(client_word_live(word_gen, 2, 2, 5));
	EXPECT_FALSE(client_word_live(word_gen, 2, UINT32_MAX, 5));
	EXPECT_FALSE(client_word_live(nullptr, 0, 0, 5));
}

TEST_F(RecordsTest, WatchGenerationsCountUpAndSkipZeroAtTheWrap)
{
	uint32_t seq = 0;
	EXPECT_EQ(client_word_next_gen(&seq), 1u);
	EXPECT_EQ(client_word_next_gen(&seq), 2u);
	seq = UINT32_MAX - 1;
	EXPECT_EQ(client_word_next_gen(&seq), UINT32_MAX);
	EXPECT_EQ(client_word_next_gen(&seq), 1u); // not 0: that means "not watched"
	EXPECT_EQ(seq, 1u);
}

TEST_F(RecordsTest, KickOnlyOncePerAnnouncedSleep)
{
	const uint32_t sleep1 = ONERING_POLLER_NEED_WAKEUP | 1u << ONERING_POLLER_SLEEP_SHIFT;
	const uint32_t sleep2 = ONERING_POLLER_NEED_WAKEUP | 2u << ONERING_POLLER_SLEEP_SHIFT;
	EXPECT_FALSE(client_kick_needed(0, 0));                                // awake
	EXPECT_FALSE(client_kick_needed(1u << ONERING_POLLER_SLEEP_SHIFT, 0)); // woke up again
	EXPECT_TRUE(client_kick_needed(sleep1, 0));
	EXPECT_FALSE(client_kick_needed(sleep1, sleep1)); // kicked this sleep already
	EXPECT_TRUE(client_kick_needed(sleep2, sleep1));  // the next sleep
}

TEST_F(RecordsTest, SpansMustLieInsideTheAreaWithoutWrapping)
{
	EXPECT_TRUE(client_span_valid(0, 4096, 4096));
	EXPECT_TRUE(client_span_valid(4096, 0, 4096)); // empty, at the end
	EXPECT_TRUE(client_span_valid(0, 0, 0));
	EXPECT_TRUE(client_span_valid(100, 3996, 4096));
	EXPECT_FALSE(client_span_valid(100, 3997, 4096)); // one byte past
	EXPECT_FALSE(client_span_valid(4097, 0, 4096));
	EXPECT_FALSE(client_span_valid(UINT64_MAX, 2, 4096)); // off + len wraps to 1
	EXPECT_FALSE(client_span_valid(2, UINT64_MAX, 4096));
}

TEST_F(RecordsTest, OnlySourceAndPostRecordsAreForDone)
{
	for (uint16_t kind : {ONERING_EV_NIC, ONERING_EV_WORD, ONERING_EV_CONTROL}) {
		onering_event e = Event(kind);
		EXPECT_FALSE(client_record_doneable(&e)) << "kind " << kind;
	}
	for (uint16_t kind : {ONERING_EV_FD, ONERING_EV_TIMER, ONERING_EV_USER}) {
		onering_event e = Event(kind);
		EXPECT_TRUE(client_record_doneable(&e)) << "kind " << kind;
	}
}

} // namespace
