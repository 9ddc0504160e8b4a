// SPDX-License-Identifier: MIT
// `onering notify` and `onering listen` (tools/onering/notify.c, listen.c)
// against a real broker, and onering_group_find(), which they use so that
// neither leaves a group behind.
#include <gtest/gtest.h>

#include "harness.h"

using onering_test::Broker;

namespace {

// ---- onering_group_find() ---------------------------------------------------

TEST(GroupFindTest, LooksUpWithoutCreatingAndLearnsTheId)
{
	Broker broker;
	ASSERT_TRUE(broker.Start({"--group", "known"}));
	onering *att;
	onering_queue *member, *poster;
	uint32_t found = 0, id = 0;
	ASSERT_EQ(broker.Attach(&att), 0);
	EXPECT_EQ(onering_group_find(att, "unknown", &found), -ENOENT);
	EXPECT_EQ(onering_group_find(att, "bad name", &found), -EINVAL);
	EXPECT_EQ(onering_group_find(nullptr, "known", &found), -EINVAL);
	EXPECT_EQ(onering_group_find(att, "unknown", &found), -ENOENT) << "still not made";
	ASSERT_EQ(onering_group_find(att, "known", &found), 0);
	ASSERT_EQ(onering_group_id(att, "known", &id), 0);
	EXPECT_EQ(found, id);
	// The id is learned: a private queue posts with it, and a member gets it.
	onering_queue_options o = {};
	o.group = "known";
	ASSERT_EQ(onering_queue_open(att, &o, &member), 0);
	ASSERT_EQ(onering_queue_open(att, nullptr, &poster), 0);
	ASSERT_EQ(onering_post(poster, found, 1, "hi", 2, 42), 0);
	onering_event ev[4];
	int n = 0;
	for (int i = 0; i < 100 && n == 0; i++)
		n = onering_wait(member, ev, 1, 4, 50ll * 1000 * 1000);
	ASSERT_EQ(n, 1);
	EXPECT_EQ(ev[0].kind, ONERING_EV_USER);
	EXPECT_EQ(ev[0].cookie, 42u);
	onering_detach(att);
}

} // namespace
