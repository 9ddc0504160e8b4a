// SPDX-License-Identifier: MIT
// The counters segment (shm/counters_seg.c): the writer's layout and slots,
// and the reader's refusal of every segment that is not what it says -
// truncated, of another version, with a directory or a string out of bounds,
// a label that is not one, or a writer that never finishes an update.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "shm/counters.h"
#include "shm/counters_seg.h"
#include "shm/proto.h"

namespace {

class CountersSegTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		size_ = onering_counters_seg_size(kObjects);
		base_ = aligned_alloc(64, (size_ + 63) / 64 * 64);
		ASSERT_NE(base_, nullptr);
		memset(base_, 0, size_);
		onering_seg_header_init(static_cast<onering_seg_header *>(base_), ONERING_SEG_COUNTERS,
					size_, ONERING_NODE_ANY, 42);
		ASSERT_EQ(onering_counters_writer_init(&w_, base_, size_, kObjects, "unit", 1234, 250), 0);
	}
	void TearDown() override
	{
		onering_counters_writer_fini(&w_);
		free(base_);
	}
	onering_counters_header *Header() { return static_cast<onering_counters_header *>(base_); }
	// One update with these queue ids (and the broker object).
	void Update(std::initializer_list<uint32_t> queues)
	{
		onering_counters_update_begin(&w_);
		onering_counters_object *o = onering_counters_object_get(&w_, ONERING_STATS_BROKER, 0);
		ASSERT_NE(o, nullptr);
		if (o->nr_labels == 0)
			onering_counters_label_add(o, "pid", ONERING_COUNTERS_LABEL_NUMBER, "%d", 1234);
		o->value[ONERING_BC_CLIENTS] = 3;
		for (uint32_t id : queues) {
			o = onering_counters_object_get(&w_, ONERING_STATS_QUEUE, id);
			if (!o)
				continue;
			if (o->nr_labels == 0)
				onering_counters_label_add(o, "queue", ONERING_COUNTERS_LABEL_NUMBER, "%u", id);
			o->value[ONERING_QC_PUBLISHED] = id * 10;
		}
		onering_counters_update_end(&w_, ++now_, ONERING_COUNTERS_RUNNING);
	}
	int Read(onering_metrics *m, size_t size = 0)
	{
		err_[0] = '\0';
		return onering_metrics_read(base_, size ? size : size_, m, err_, sizeof(err_));
	}
	static constexpr uint32_t kObjects = 4;
	onering_counters_writer w_;
	void *base_ = nullptr;
	size_t size_ = 0;
	uint64_t now_ = 1000;
	char err_[512];
};

TEST_F(CountersSegTest, ReaderFindsEveryListOfTheTableWithItsNamesAndHelp)
{
	Update({7});
	onering_metrics m;
	ASSERT_EQ(Read(&m), 0) << err_;
	unsigned nr;
	const onering_counter_list *lists = onering_counter_lists(&nr);
	ASSERT_EQ(m.nr_lists, nr);
	for (unsigned k = 0; k < nr; k++) {
		EXPECT_EQ(m.lists[k].what, lists[k].what);
		EXPECT_STREQ(m.lists[k].family, lists[k].family);
		EXPECT_STREQ(m.lists[k].object, lists[k].object);
		ASSERT_EQ(m.lists[k].nr, lists[k].nr);
		for (unsigned c = 0; c < lists[k].nr; c++) {
			EXPECT_STREQ(m.lists[k].desc[c].name, lists[k].desc[c].name);
			EXPECT_STREQ(m.lists[k].desc[c].help, lists[k].desc[c].help);
			EXPECT_STREQ(m.lists[k].desc[c].unit, lists[k].desc[c].unit);
			EXPECT_EQ(m.lists[k].desc[c].kind, lists[k].desc[c].kind);
		}
	}
	EXPECT_EQ(m.pid, 1234u);
	EXPECT_STREQ(m.name, "unit");
	EXPECT_EQ(m.epoch, 42u);
	EXPECT_EQ(m.updated_ns, now_);
	ASSERT_EQ(m.nr_objects, 2u);
	const onering_metrics_object *q = &m.objects[1];
	EXPECT_EQ(q->what, (uint32_t)ONERING_STATS_QUEUE);
	EXPECT_EQ(q->id, 7u);
	EXPECT_EQ(q->value[ONERING_QC_PUBLISHED], 70u);
	EXPECT_STREQ(onering_metrics_label(q, "queue"), "7");
	EXPECT_EQ(onering_metrics_counter(q->list, "published"), (int)ONERING_QC_PUBLISHED);
	onering_metrics_free(&m);
}

// A freed slot taken by another object has another generation: a reader
// comparing snapshots never takes one for the other.
TEST_F(CountersSegTest, AFreedSlotTakenAgainIsNotTheSameObject)
{
	Update({1, 2});
	onering_metrics before;
	ASSERT_EQ(Read(&before), 0) << err_;
	Update({1});    // queue 2 gone: its slot free
	Update({1, 3}); // queue 3 takes it
	onering_metrics after;
	ASSERT_EQ(Read(&after), 0) << err_;
	ASSERT_EQ(after.nr_objects, 3u);
	const onering_metrics_object *q2 = nullptr, *q3 = nullptr, *q1 = nullptr;
	for (unsigned i = 0; i < before.nr_objects; i++)
		if (before.objects[i].id == 2)
			q2 = &before.objects[i];
	for (unsigned i = 0; i < after.nr_objects; i++) {
		if (after.objects[i].id == 3)
			q3 = &after.objects[i];
		if (after.objects[i].id == 1 && after.objects[i].what == ONERING_STATS_QUEUE)
			q1 = &after.objects[i];
	}
	ASSERT_TRUE(q2 && q3 && q1);
	EXPECT_EQ(q2->slot, q3->slot) << "the freed slot is taken again";
	EXPECT_NE(q2->gen, q3->gen);
	EXPECT_EQ(onering_metrics_same(&after, q2), nullptr);
	EXPECT_NE(onering_metrics_same(&before, q1), nullptr) << "queue 1 kept its slot";
	onering_metrics_free(&before);
	onering_metrics_free(&after);
}

TEST_F(CountersSegTest, ObjectsPastTheLastSlotAreCountedAsUnlisted)
{
	Update({1, 2, 3, 4, 5}); // 4 slots: the broker and 3 queues
	EXPECT_EQ(w_.unlisted, 2u);
	onering_metrics m;
	ASSERT_EQ(Read(&m), 0) << err_;
	EXPECT_EQ(m.nr_objects, kObjects);
	onering_metrics_free(&m);
}

TEST_F(CountersSegTest, RefusesATruncatedSegment)
{
	Update({1});
	onering_metrics m;
	EXPECT_EQ(Read(&m, 100), -EPROTO) << "smaller than its header";
	EXPECT_NE(std::string(err_).find("too small"), std::string::npos) << err_;
	EXPECT_EQ(Read(&m, size_ - 64), -ERANGE) << "shorter than its header says";
	EXPECT_NE(std::string(err_).find("does not fit"), std::string::npos) << err_;
	Header()->seg.size = size_ - 640; // the header agrees, the objects do not fit
	EXPECT_EQ(Read(&m, size_ - 640), -ERANGE);
	EXPECT_NE(std::string(err_).find("out of bounds"), std::string::npos) << err_;
}

TEST_F(CountersSegTest, RefusesAnotherVersionOrKind)
{
	Update({1});
	onering_metrics m;
	Header()->version = ONERING_COUNTERS_VERSION + 1;
	EXPECT_EQ(Read(&m), -EPROTO);
	EXPECT_NE(std::string(err_).find("layout version"), std::string::npos) << err_;
	Header()->version = ONERING_COUNTERS_VERSION;
	Header()->seg.kind = ONERING_SEG_EVENTS;
	EXPECT_EQ(Read(&m), -EPROTO);
	Header()->seg.kind = ONERING_SEG_COUNTERS;
	Header()->seg.abi_major++;
	EXPECT_EQ(Read(&m), -EPROTO);
	EXPECT_NE(std::string(err_).find("ABI"), std::string::npos) << err_;
}

TEST_F(CountersSegTest, RefusesADirectoryOutOfBounds)
{
	Update({1});
	onering_metrics m;
	Header()->lists_off = (uint32_t)size_ - 8;
	EXPECT_EQ(Read(&m), -ERANGE);
	Header()->lists_off = sizeof(onering_counters_header);
	Header()->nr_descs = 100000;
	EXPECT_EQ(Read(&m), -ERANGE);
}

TEST_F(CountersSegTest, RefusesStringsAndListsThatAreNotWhatTheySay)
{
	Update({1});
	onering_metrics m;
	auto *h = Header();
	auto *descs = reinterpret_cast<onering_counters_desc *>(static_cast<char *>(base_) + h->descs_off);
	auto *lists = reinterpret_cast<onering_counters_list *>(static_cast<char *>(base_) + h->lists_off);
	char *strings = static_cast<char *>(base_) + h->strings_off;
	uint32_t off = descs[0].name_off;
	descs[0].name_off = h->strings_size; // past the end
	EXPECT_EQ(Read(&m), -EINVAL);
	descs[0].name_off = off;
	strings[h->strings_size - 1] = 'x'; // the last string runs off the end
	EXPECT_EQ(Read(&m), -EINVAL);
	strings[h->strings_size - 1] = '\0';
	char was = strings[off];
	strings[off] = 'A'; // a metric name with a capital: not a name
	EXPECT_EQ(Read(&m), -EINVAL);
	strings[off] = was;
	lists[1].nr_counters = 40;
	EXPECT_EQ(Read(&m), -EINVAL);
	lists[1].nr_counters = (uint16_t)ONERING_PC_NR;
	lists[1].first_desc = (uint16_t)h->nr_descs;
	EXPECT_EQ(Read(&m), -EINVAL);
	EXPECT_NE(std::string(err_).find("list 1"), std::string::npos) << err_;
}

TEST_F(CountersSegTest, RefusesObjectsWithBadLabelsOrCounts)
{
	Update({1});
	onering_metrics m;
	auto *objs = reinterpret_cast<onering_counters_object *>(static_cast<char *>(base_) +
								  Header()->objects_off);
	ASSERT_EQ(objs[1].what, (uint32_t)ONERING_STATS_QUEUE);
	memset(objs[1].label[0].value, 'x', sizeof(objs[1].label[0].value)); // no NUL
	EXPECT_EQ(Read(&m), -EINVAL);
	EXPECT_NE(std::string(err_).find("label"), std::string::npos) << err_;
	strcpy(objs[1].label[0].value, "1x"); // flagged a number
	EXPECT_EQ(Read(&m), -EINVAL);
	strcpy(objs[1].label[0].value, "1");
	strcpy(objs[1].label[0].key, "a\"b"); // a key that would break the exposition
	EXPECT_EQ(Read(&m), -EINVAL);
	strcpy(objs[1].label[0].key, "queue");
	objs[1].nr_labels = 200;
	EXPECT_EQ(Read(&m), -EINVAL);
	objs[1].nr_labels = 1;
	objs[1].nr_values = 3;
	EXPECT_EQ(Read(&m), -EINVAL);
	objs[1].nr_values = (uint16_t)ONERING_QC_NR;
	objs[1].what = 99; // no such list
	EXPECT_EQ(Read(&m), -EINVAL);
	objs[1].what = ONERING_STATS_QUEUE;
	ASSERT_EQ(Read(&m), 0) << err_;
	onering_metrics_free(&m);
}

TEST_F(CountersSegTest, AWriterStuckMidUpdateIsReportedNotWaitedFor)
{
	Update({1});
	onering_counters_update_begin(&w_); // and never ends
	onering_metrics m;
	EXPECT_EQ(Read(&m), -EAGAIN); // after 1 s
	EXPECT_NE(std::string(err_).find("updating"), std::string::npos) << err_;
	// With no patience (the fuzzer's): after two rounds of tries, and says so.
	EXPECT_EQ(onering_metrics_read_within(base_, size_, &m, err_, sizeof(err_), 0), -EAGAIN);
	EXPECT_NE(std::string(err_).find("for 0 us"), std::string::npos) << err_;
	onering_counters_update_end(&w_, ++now_, ONERING_COUNTERS_STOPPED);
	ASSERT_EQ(Read(&m), 0) << err_;
	EXPECT_EQ(m.state, ONERING_COUNTERS_STOPPED);
	onering_metrics_free(&m);
}

// Every counter of the table, labels aside, has its HELP then its TYPE, and
// every sample line follows its TYPE.
TEST_F(CountersSegTest, PrometheusTextDescribesEveryCounterOfTheTable)
{
	Update({5});
	onering_metrics m;
	ASSERT_EQ(Read(&m), 0) << err_;
	char *text = nullptr;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ASSERT_EQ(onering_metrics_prometheus(&m, "in\"st", f), 0);
	fclose(f);
	std::string out(text, len);
	free(text);
	std::set<std::string> typed;
	std::istringstream lines(out);
	std::string line;
	while (std::getline(lines, line)) {
		if (line.rfind("# TYPE ", 0) == 0) {
			typed.insert(line.substr(7, line.find(' ', 7) - 7));
		} else if (line[0] != '#') {
			EXPECT_TRUE(typed.count(line.substr(0, line.find('{')))) << line;
		}
	}
	unsigned nr;
	const onering_counter_list *lists = onering_counter_lists(&nr);
	for (unsigned k = 0; k < nr; k++)
		for (unsigned c = 0; c < lists[k].nr; c++) {
			const onering_counter_desc *d = &lists[k].desc[c];
			if (d->kind == ONERING_COUNTER_LABEL)
				continue;
			std::string metric = std::string("onering_") + lists[k].object + "_" + d->name +
					     (d->kind == ONERING_COUNTER_COUNTER ? "_total" : "");
			EXPECT_TRUE(typed.count(metric)) << metric;
			EXPECT_NE(out.find("# HELP " + metric + " "), std::string::npos) << metric;
		}
	EXPECT_NE(out.find("onering_queue_published_total{instance=\"in\\\"st\",queue=\"5\",group=\"0\"} 50\n"),
		  std::string::npos) << out;
	onering_metrics_free(&m);
}

} // namespace
