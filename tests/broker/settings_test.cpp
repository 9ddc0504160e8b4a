// SPDX-License-Identifier: MIT
// The broker's option-spec parsers (broker/settings.h): --group and --port
// as an operator types them. Fuzzed in tests/fuzz/fuzz_settings.c.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "broker/settings.h"
#include "shm/abi.h"

namespace {

class PortSpecTest : public ::testing::Test {
protected:
	int Parse(const std::string &spec)
	{
		return broker_port_spec_parse(spec.c_str(), &ps_, err_, sizeof(err_));
	}
	struct broker_port_spec ps_ {};
	char err_[512] = "";
};

TEST_F(PortSpecTest, DefaultsWithADeviceAlone)
{
	ASSERT_EQ(Parse("net_null0"), 0) << err_;
	EXPECT_STREQ(ps_.dev, "net_null0");
	EXPECT_EQ(ps_.rxq, 1u);
	EXPECT_EQ(ps_.snaplen, BROKER_PORT_SNAPLEN_DEFAULT);
	EXPECT_STREQ(ps_.group, "default");
	EXPECT_FALSE(ps_.spread);
	EXPECT_EQ(ps_.node, -1) << "the device's node unless node= says";
}

TEST_F(PortSpecTest, TakesEverySetting)
{
	ASSERT_EQ(Parse("0:rxq=64,group=rx,snaplen=2048,mode=spread"), 0) << err_;
	EXPECT_STREQ(ps_.dev, "0");
	EXPECT_EQ(ps_.rxq, 64u);
	EXPECT_STREQ(ps_.group, "rx");
	EXPECT_EQ(ps_.snaplen, ONERING_PKT_STRIDE_MAX);
	EXPECT_TRUE(ps_.spread);
}

// node=N homes a port (a virtual device has no node of its own) on a node.
TEST_F(PortSpecTest, NodeHomesThePort)
{
	ASSERT_EQ(Parse("net_null0:group=rx,node=1"), 0) << err_;
	EXPECT_EQ(ps_.node, 1);
	ASSERT_EQ(Parse("net_null0:node=1023"), 0) << err_;
	EXPECT_EQ(ps_.node, 1023);
	EXPECT_EQ(Parse("net_null0:node=1024"), -EINVAL);
	EXPECT_EQ(Parse("net_null0:node=-1"), -EINVAL);
	EXPECT_EQ(Parse("net_null0:node="), -EINVAL);
	EXPECT_NE(std::string(err_).find("node=0..1023"), std::string::npos) << err_;
}

TEST_F(PortSpecTest, RefusesOutOfRangeCounts)
{
	EXPECT_EQ(Parse("0:rxq=0"), -EINVAL);
	EXPECT_EQ(Parse("0:rxq=65"), -EINVAL);
	EXPECT_EQ(Parse("0:snaplen=2049"), -EINVAL);
	EXPECT_NE(std::string(err_).find("--port 0:snaplen=2049: bad setting 'snaplen=2049'"),
		  std::string::npos)
		<< err_;
}

// Found by fuzz_settings: strtoul took an empty value as 0, and values
// past 2^32 wrapped into range (4294967297 rx queues were 1).
TEST_F(PortSpecTest, CountsAreDecimalDigitsOnly)
{
	EXPECT_EQ(Parse("0:snaplen="), -EINVAL);
	EXPECT_EQ(Parse("0:rxq="), -EINVAL);
	EXPECT_EQ(Parse("0:rxq=4294967297"), -EINVAL);
	EXPECT_EQ(Parse("0:snaplen=4294967296"), -EINVAL);
	EXPECT_EQ(Parse("0:rxq=-4294967295"), -EINVAL);
	EXPECT_EQ(Parse("0:rxq=+2"), -EINVAL);
	EXPECT_EQ(Parse("0:rxq= 2"), -EINVAL);
	EXPECT_EQ(Parse("0:rxq=0x10"), -EINVAL);
	ASSERT_EQ(Parse("0:rxq=007,snaplen=0"), 0) << err_;
	EXPECT_EQ(ps_.rxq, 7u);
	EXPECT_EQ(ps_.snaplen, 0u);
}

// Found by fuzz_settings: a spec was cut to 255 bytes without a word, and
// the cut one parsed (it dropped the last setting, or cut its value).
TEST_F(PortSpecTest, LongSpecIsRefusedNotCut)
{
	std::string spec = "net_null0:";
	for (int i = 0; i < 39; i++)
		spec += "rxq=1,";
	spec += "snaplen=2048"; // 256 bytes: cut at 255, it read snaplen=204
	ASSERT_EQ(spec.size(), (size_t)BROKER_SPEC_MAX);
	EXPECT_EQ(Parse(spec), -EINVAL);
	EXPECT_NE(std::string(err_).find("longer than 255 bytes"), std::string::npos) << err_;
	spec.erase(10, 6);
	ASSERT_EQ(Parse(spec), 0) << err_;
	EXPECT_EQ(ps_.snaplen, 2048u);
}

class GroupSpecTest : public ::testing::Test {
protected:
	int Parse(const std::string &spec)
	{
		return broker_group_spec_parse(&g_, acls_, spec.c_str(), nullptr, err_, sizeof(err_));
	}
	struct onering_msg_group g_ {};
	struct broker_acl acls_[BROKER_PERM_NR] = {};
	char err_[512] = "";
};

TEST_F(GroupSpecTest, WhoMayListsTakeIdsGroupsAndAny)
{
	ASSERT_EQ(Parse("web:policy=lifo,join=1000+@27,post=any,tune=0"), 0) << err_;
	EXPECT_TRUE(acls_[BROKER_PERM_JOIN].set);
	ASSERT_EQ(acls_[BROKER_PERM_JOIN].nr, 2u);
	EXPECT_FALSE(acls_[BROKER_PERM_JOIN].e[0].is_gid);
	EXPECT_EQ(acls_[BROKER_PERM_JOIN].e[0].id, 1000u);
	EXPECT_TRUE(acls_[BROKER_PERM_JOIN].e[1].is_gid);
	EXPECT_EQ(acls_[BROKER_PERM_JOIN].e[1].id, 27u);
	EXPECT_TRUE(acls_[BROKER_PERM_POST].any);
	EXPECT_EQ(acls_[BROKER_PERM_TUNE].nr, 1u);
	EXPECT_EQ(g_.policy, ONERING_POLICY_LIFO);
	// Names need a resolver; without one they are refused with the reason.
	EXPECT_EQ(Parse("web:join=alice"), -EINVAL);
	EXPECT_NE(std::string(err_).find("no such user"), std::string::npos) << err_;
	EXPECT_EQ(Parse("web:join="), -EINVAL);
	EXPECT_EQ(Parse("web:tune=1+2+3+4+5+6+7+8+9"), -EINVAL);
	EXPECT_NE(std::string(err_).find("at most 8"), std::string::npos) << err_;
}

TEST_F(GroupSpecTest, NameAloneSetsNothing)
{
	ASSERT_EQ(Parse("workers"), 0) << err_;
	EXPECT_STREQ(g_.name, "workers");
	EXPECT_EQ(g_.set, 0u);
}

TEST_F(GroupSpecTest, SettingsAsTuneTakesThem)
{
	ASSERT_EQ(Parse("w:policy=lifo,numa=spill:75,wake=fifo,max_running=4,backlog=1024"), 0)
		<< err_;
	EXPECT_EQ(g_.set, ONERING_GSET_ALL);
	EXPECT_EQ(g_.policy, ONERING_POLICY_LIFO);
	EXPECT_EQ(g_.numa, ONERING_NUMA_SPILL);
	EXPECT_EQ(g_.spill_pct, 75u);
	EXPECT_EQ(g_.wake, ONERING_WAKE_FIFO);
	EXPECT_EQ(g_.max_running, 4u);
	EXPECT_EQ(g_.backlog_max, 1024u);
}

TEST_F(GroupSpecTest, RefusalsNameTheSpec)
{
	EXPECT_EQ(Parse(".hidden"), -EINVAL);
	EXPECT_STREQ(err_, "--group .hidden: the name must be 1-31 of [A-Za-z0-9_.-]");
	EXPECT_EQ(Parse("w:policy=bogus"), -EINVAL);
	EXPECT_STREQ(err_, "--group w:policy=bogus: policy 'bogus': use rr, least, sticky, lifo "
			   "or local");
}

// Found with the --port case: the same silent cut, here of a value.
TEST_F(GroupSpecTest, LongSpecIsRefusedNotCut)
{
	std::string spec = "g:";
	for (int i = 0; i < 24; i++)
		spec += "policy=rr,";
	spec += "backlog=123456"; // 256 bytes: cut at 255, it read backlog=12345
	ASSERT_EQ(spec.size(), (size_t)BROKER_SPEC_MAX);
	EXPECT_EQ(Parse(spec), -EINVAL);
	EXPECT_NE(std::string(err_).find("longer than 255 bytes"), std::string::npos) << err_;
	spec.erase(2, 10);
	ASSERT_EQ(Parse(spec), 0) << err_;
	EXPECT_EQ(g_.backlog_max, 123456u);
}

} // namespace
