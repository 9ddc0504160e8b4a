// SPDX-License-Identifier: MIT
// examples/nest_epoll.c and examples/nest_libuv.c against a broker: each
// loop wakes for the onering record, the timerfd and the socket of every
// round of its chain, and ends by itself (issue 15: a queue nested in
// another event loop).
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/harness.h"

#ifndef ONERING_NEST_EPOLL_PATH
#error "ONERING_NEST_EPOLL_PATH must name the onering-nest-epoll example under test"
#endif
#ifndef ONERING_NEST_LIBUV_PATH
#define ONERING_NEST_LIBUV_PATH "" /* libuv not found at build time */
#endif

using onering_test::Broker;

namespace {

unsigned Lines(const std::string &out, const std::string &start)
{
	unsigned n = 0;
	for (size_t at = 0; (at = out.find("\n" + start, at)) != std::string::npos; at++)
		n++;
	return n + (out.compare(0, start.size(), start) == 0);
}

void RunChain(const std::string &path)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());
	int status;
	// Bounded: timeout(1) stops it after 30 s (and the test then fails).
	std::string out = onering_test::RunCommand("timeout -s KILL 30 " + path + " --name " +
						   broker.Name() + " --socket-dir " + broker.Dir() +
						   " --count 20", &status);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status 0x" << std::hex
								    << status << "\n" << out;
	EXPECT_NE(out.find("ticks 20, socket reads 20, records 20"), std::string::npos) << out;
	// The timerfd and the socket woke the loop every round; the queue's fd
	// whenever its record came after the loop armed it (a record that comes
	// before is taken by the arm's look at the ring: no wake needed).
	EXPECT_EQ(Lines(out, "timerfd  tick"), 20u) << out;
	EXPECT_EQ(Lines(out, "socket   a byte"), 20u) << out;
	EXPECT_GE(Lines(out, "queue    fd readable"), 1u) << out;
	EXPECT_EQ(Lines(out, "record   cookie 1"), 20u) << out;
	EXPECT_EQ(broker.Stop(), 0);
}

} // namespace

TEST(NestExample, EpollLoopWakesForTheQueueATimerfdAndASocket)
{
	RunChain(ONERING_NEST_EPOLL_PATH);
}

TEST(NestExample, LibuvLoopWakesForTheQueueATimerfdAndASocket)
{
	if (std::string(ONERING_NEST_LIBUV_PATH).empty())
		GTEST_SKIP() << "libuv was not found at build time (apt-get install libuv1-dev)";
	RunChain(ONERING_NEST_LIBUV_PATH);
}
