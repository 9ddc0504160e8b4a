// SPDX-License-Identifier: MIT
// The onering command: demo, stat, topo.
#include <gtest/gtest.h>

#include <jansson.h>

#include "harness.h"

#ifndef ONERING_TOOL_PATH
#error "ONERING_TOOL_PATH must name the onering binary under test"
#endif

using onering_test::Broker;

namespace {

std::string RunTool(const std::string &args, int *status)
{
	return onering_test::RunCommand(std::string(ONERING_TOOL_PATH) + " " + args, status);
}

TEST(ToolTest, DemoRunsBoundedAndCleansUp)
{
	int st;
	std::string out = RunTool("demo --seconds 1", &st);
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(WEXITSTATUS(st), 0) << out;
	for (const char *kind : {"socketpair", "pipe", "eventfd", "timerfd"})
		EXPECT_NE(out.find(kind), std::string::npos) << kind << " missing:\n" << out;
	EXPECT_NE(out.find("stopped"), std::string::npos) << "it stops the broker it started";
}

TEST(ToolTest, StatJsonDescribesARunningBroker)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	struct onering *att;
	struct onering_queue *q;
	ASSERT_EQ(broker.Attach(&att), 0);
	ASSERT_EQ(onering_queue_open(att, nullptr, &q), 0);
	int st;
	std::string out = RunTool("stat --json --name " + broker.Name() + " --socket-dir " + broker.Dir(), &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	json_error_t jerr;
	json_t *root = json_loads(out.c_str(), 0, &jerr);
	ASSERT_NE(root, nullptr) << jerr.text << "\n" << out;
	EXPECT_EQ(json_integer_value(json_object_get(json_object_get(root, "broker"), "pid")),
		  broker.Pid());
	EXPECT_EQ(json_array_size(json_object_get(root, "pollers")), 1u);
	json_t *queues = json_object_get(root, "queues");
	ASSERT_EQ(json_array_size(queues), 1u);
	EXPECT_EQ(json_integer_value(json_object_get(json_array_get(queues, 0), "capacity")), 1024);
	json_decref(root);
	onering_detach(att);

	out = RunTool("stat --name nobody-here --socket-dir " + broker.Dir(), &st);
	EXPECT_EQ(WEXITSTATUS(st), 1);
	EXPECT_NE(out.find("not running"), std::string::npos) << out;
}

TEST(ToolTest, TopoPlansASyntheticMachine)
{
	int st;
	std::string out = RunTool("topo --json --synthetic 'pack:2 numa:1 core:4 pu:1'", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	json_error_t jerr;
	json_t *root = json_loads(out.c_str(), 0, &jerr);
	ASSERT_NE(root, nullptr) << jerr.text;
	EXPECT_TRUE(json_is_true(json_object_get(root, "synthetic")));
	json_t *pollers = json_object_get(root, "pollers");
	ASSERT_EQ(json_array_size(pollers), 2u);
	for (size_t i = 0; i < 2; i++)
		EXPECT_EQ(json_integer_value(json_object_get(json_array_get(pollers, i), "node")),
			  (json_int_t)i);
	json_decref(root);

	out = RunTool("topo --synthetic 'pack:2 numa:1 core:4 pu:1' --cores 42", &st);
	EXPECT_EQ(WEXITSTATUS(st), 1);
	EXPECT_NE(out.find("CPU 42"), std::string::npos) << out;
}

} // namespace
