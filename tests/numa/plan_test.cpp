// SPDX-License-Identifier: MIT
// The placement plan (numa/plan.c) on hwloc synthetic topologies and on
// the real machine.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "numa/plan.h"

namespace {

class PlanTest : public ::testing::Test {
protected:
	void Load(const char *synthetic)
	{
		char err[256];
		ASSERT_EQ(onering_topo_load(synthetic, &topo_, err, sizeof(err)), 0) << err;
	}
	void TearDown() override { onering_topo_free(topo_); }
	int Make(const std::vector<int> &cpus, const std::vector<int> &nodes = {})
	{
		onering_plan_request req = {};
		req.cpus = cpus.data();
		req.nr_cpus = static_cast<unsigned>(cpus.size());
		req.cpu_nodes = nodes.empty() ? nullptr : nodes.data();
		req.control_cpu = -1;
		err_[0] = '\0';
		return onering_plan_make(topo_, &req, &plan_, err_, sizeof(err_));
	}
	void ExpectNoSiblings()
	{
		std::set<int> cores;
		for (unsigned i = 0; i < plan_.nr_pollers; i++)
			EXPECT_TRUE(cores.insert(plan_.pollers[i].core).second)
				<< "two pollers on one core (CPU " << plan_.pollers[i].cpu << ")";
	}
	onering_topo *topo_ = nullptr;
	onering_plan plan_{};
	char err_[1024];
};

TEST_F(PlanTest, TwoPackagesGetOnePollerEachAwayFromTheFirstCore)
{
	Load("pack:2 numa:1 core:4 pu:1");
	ASSERT_EQ(Make({}), 0) << err_;
	ASSERT_EQ(plan_.nr_pollers, 2u);
	EXPECT_EQ(plan_.control_cpu, 0);
	for (unsigned i = 0; i < 2; i++) {
		const auto &p = plan_.pollers[i];
		EXPECT_EQ(p.node, (int)i);
		EXPECT_EQ(onering_topo_cpu_node(topo_, p.cpu), p.node) << "on a core of its node";
		EXPECT_NE(p.cpu, (int)i * 4) << "not the node's first core";
	}
	ExpectNoSiblings();
}

TEST_F(PlanTest, FourNodesWithHyperthreadsNeverShareACore)
{
	Load("numa:4 core:4 pu:2");
	ASSERT_EQ(Make({}), 0) << err_;
	ASSERT_EQ(plan_.nr_pollers, 4u);
	std::set<int> nodes;
	for (unsigned i = 0; i < 4; i++) {
		const auto &p = plan_.pollers[i];
		nodes.insert(p.node);
		EXPECT_EQ(onering_topo_cpu_node(topo_, p.cpu), p.node);
		EXPECT_NE(onering_topo_core_of(topo_, p.cpu),
			  onering_topo_core_of(topo_, (int)i * 8)) << "not the node's first core";
	}
	EXPECT_EQ(nodes.size(), 4u) << "one poller per node";
	ExpectNoSiblings();
}

TEST_F(PlanTest, OperatorCoresAreValidatedWithTheValidOnesNamed)
{
	Load("pack:2 numa:1 core:4 pu:1");
	EXPECT_EQ(Make({99}), -EINVAL);
	EXPECT_NE(std::string(err_).find("CPU 99"), std::string::npos) << err_;
	EXPECT_NE(std::string(err_).find("node 0: 0-3; node 1: 4-7"), std::string::npos) << err_;

	EXPECT_EQ(Make({2}, {1}), -EINVAL) << "CPU 2 is on node 0";
	EXPECT_NE(std::string(err_).find("node 1 has CPUs 4-7"), std::string::npos) << err_;
	EXPECT_EQ(Make({5}, {3}), -EINVAL);
	EXPECT_NE(std::string(err_).find("no node 3"), std::string::npos) << err_;

	EXPECT_EQ(Make({1, 1}), -EINVAL);
	ASSERT_EQ(Make({3, 6}, {0, 1}), 0) << err_;
	EXPECT_EQ(plan_.pollers[0].node, 0);
	EXPECT_EQ(plan_.pollers[1].node, 1);
}

TEST_F(PlanTest, OperatorCoresOnSiblingThreadsAreRefused)
{
	Load("numa:4 core:4 pu:2");
	EXPECT_EQ(Make({0, 1}), -EINVAL);
	EXPECT_NE(std::string(err_).find("hardware threads of one core"), std::string::npos) << err_;
	EXPECT_EQ(Make({0, 2}), 0) << err_;
}

TEST_F(PlanTest, TheRealMachinePlansOnAllowedCpus)
{
	Load(nullptr);
	cpu_set_t allowed;
	ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
	onering_plan_request req = {};
	req.control_cpu = -1;
	req.allowed = &allowed;
	ASSERT_EQ(onering_plan_make(topo_, &req, &plan_, err_, sizeof(err_)), 0) << err_;
	ASSERT_GE(plan_.nr_pollers, 1u);
	for (unsigned i = 0; i < plan_.nr_pollers; i++)
		EXPECT_TRUE(CPU_ISSET(plan_.pollers[i].cpu, &allowed));
	if (CPU_COUNT(&allowed) >= 2 && onering_topo_node_count(topo_) == 1) {
		EXPECT_NE(plan_.pollers[0].cpu, plan_.control_cpu)
			<< "with two CPUs the poller and the control thread do not share one";
	}
	ExpectNoSiblings();
}

TEST(CpuListTest, FormatsRanges)
{
	char buf[64];
	int cpus[] = {0, 1, 2, 3, 8, 10, 11};
	onering_cpus_format(cpus, 7, buf, sizeof(buf));
	EXPECT_STREQ(buf, "0-3,8,10-11");
	onering_cpus_format(cpus, 1, buf, sizeof(buf));
	EXPECT_STREQ(buf, "0");
}

} // namespace
