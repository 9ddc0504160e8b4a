// SPDX-License-Identifier: MIT
// examples/uring_read.c against a broker: a file larger than one batch of
// reads (8 x 16 KiB) is read whole and right, not just to a zero exit.
#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <fcntl.h>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "tests/integration/harness.h"

#ifndef ONERING_URING_READ_PATH
#error "ONERING_URING_READ_PATH must name the onering-uring-read example under test"
#endif

using onering_test::Broker;

namespace {

// What the example prints for a file: its size, the sum of its bytes and
// the sum of (offset + 1) x byte, which a block read into the wrong place
// or twice changes.
struct Sums {
	uint64_t bytes = 0, sum = 0, position_sum = 0;
};

Sums SumsOf(const std::vector<unsigned char> &data)
{
	Sums s;
	s.bytes = data.size();
	for (size_t i = 0; i < data.size(); i++) {
		s.sum += data[i];
		s.position_sum += (uint64_t)(i + 1) * data[i];
	}
	return s;
}

// Run the example on path (bounded: killed after 20 s), stdout and stderr
// into out. Returns true if it ended by itself.
bool RunExample(const Broker &broker, const std::string &path, int *status, std::string *out)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return false;
	pid_t child = fork();
	if (child < 0)
		return false;
	if (child == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execl(ONERING_URING_READ_PATH, ONERING_URING_READ_PATH, "--name",
		      broker.Name().c_str(), "--socket-dir", broker.Dir().c_str(), path.c_str(),
		      (char *)nullptr);
		_exit(127);
	}
	close(p[1]);
	bool ended = onering_test::WaitChild(child, 20, status);
	// It printed one line at most a few hundred bytes long: in the pipe.
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	char buf[4096];
	ssize_t n;
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		out->append(buf, (size_t)n);
	close(p[0]);
	return ended;
}

TEST(UringReadExample, ReadsAOneMebibyteFileWholeAndRight)
{
	Broker broker;
	ASSERT_TRUE(broker.Start());

	std::random_device rd;
	uint64_t seed = ((uint64_t)rd() << 32) | rd();
	std::mt19937_64 gen(seed);
	std::vector<unsigned char> data(1u << 20);
	for (auto &b : data)
		b = (unsigned char)gen();
	char path[] = "/tmp/onering-uring-read-XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, data.data(), data.size()), (ssize_t)data.size());
	close(fd);

	int status = 0;
	std::string out;
	bool ended = RunExample(broker, path, &status, &out);
	unlink(path);
	ASSERT_TRUE(ended) << "still running after 20 s (killed); it printed:\n" << out;
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status 0x" << std::hex
								    << status << "\n" << out;
	Sums want = SumsOf(data), got;
	ASSERT_EQ(sscanf(out.c_str(),
			 "onering-uring-read: %" SCNu64 " bytes of %*s byte sum %" SCNu64
			 ", position sum %" SCNu64,
			 &got.bytes, &got.sum, &got.position_sum),
		  3)
		<< out;
	EXPECT_EQ(got.bytes, want.bytes) << out;
	EXPECT_EQ(got.sum, want.sum) << "content seed " << seed << "\n" << out;
	EXPECT_EQ(got.position_sum, want.position_sum) << "content seed " << seed << "\n" << out;
}

} // namespace
