// SPDX-License-Identifier: MIT
// Receiving control messages (shm/proto.h): what happens to the fds a
// message carries, kept or refused. Fuzzed in tests/fuzz/fuzz_proto.c.
// And onering_proto_call(): which message answers a request.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shm/proto.h"

namespace {

class ProtoRecvTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv_), 0);
		ASSERT_EQ(pipe2(pipe_, O_CLOEXEC), 0);
	}
	void TearDown() override
	{
		close(sv_[0]);
		close(sv_[1]);
		if (pipe_[0] >= 0)
			close(pipe_[0]);
		close(pipe_[1]);
	}
	// Sends len bytes with n copies of the pipe's read end, then closes
	// ours: the read end stays open only as long as a received copy does.
	void SendWithReadEnds(const void *buf, size_t len, unsigned n)
	{
		union {
			char buf[CMSG_SPACE(sizeof(int) * ONERING_MSG_MAX_FDS)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {const_cast<void *>(buf), len};
		struct msghdr mh = {};
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		for (unsigned i = 0; i < n; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &pipe_[0], sizeof(int));
		ASSERT_EQ(sendmsg(sv_[0], &mh, 0), (ssize_t)len);
		close(pipe_[0]);
		pipe_[0] = -1;
	}
	// True when no copy of the read end is open anywhere.
	bool ReadEndClosed()
	{
		struct pollfd p = {pipe_[1], POLLOUT, 0};
		return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
	}
	int sv_[2] = {-1, -1};
	int pipe_[2] = {-1, -1};
};

TEST_F(ProtoRecvTest, KeepsUpToMaxFdsAndClosesTheRest)
{
	struct onering_msg m, got;
	int fds[ONERING_MSG_MAX_FDS] = {-1, -1, -1};
	unsigned nfds = 99, extra = 99;

	onering_msg_init(&m, ONERING_MSG_SUB_ADD, 7);
	SendWithReadEnds(&m, sizeof(m), 3);
	ASSERT_EQ(onering_msg_recv(sv_[1], &got, fds, 1, &nfds, &extra, MSG_DONTWAIT), 0);
	EXPECT_EQ(nfds, 1u);
	EXPECT_EQ(extra, 2u);
	EXPECT_EQ(memcmp(&got, &m, sizeof(m)), 0);
	EXPECT_FALSE(ReadEndClosed());
	close(fds[0]);
	EXPECT_TRUE(ReadEndClosed());
}

TEST_F(ProtoRecvTest, WrongSizeMessageKeepsNoFd)
{
	char buf[100] = {};
	int fds[ONERING_MSG_MAX_FDS] = {-1, -1, -1};
	unsigned nfds = 99, extra = 99;
	struct onering_msg got;

	SendWithReadEnds(buf, sizeof(buf), 2);
	EXPECT_EQ(onering_msg_recv(sv_[1], &got, fds, 3, &nfds, &extra, MSG_DONTWAIT), -EMSGSIZE);
	EXPECT_EQ(nfds, 0u);
	EXPECT_EQ(extra, 2u);
	EXPECT_TRUE(ReadEndClosed());
}

// Found by fuzz_proto: recvmsg returns 0 for an empty datagram as for a
// hang-up, and the fds such a datagram carried were handed back with
// -ECONNRESET, which no caller closes (the broker leaked one per try).
TEST_F(ProtoRecvTest, ZeroLengthMessageWithFdsKeepsNoFd)
{
	int fds[ONERING_MSG_MAX_FDS] = {-1, -1, -1};
	unsigned nfds = 99, extra = 99;
	struct onering_msg got;

	SendWithReadEnds("", 0, 2);
	EXPECT_EQ(onering_msg_recv(sv_[1], &got, fds, 1, &nfds, &extra, MSG_DONTWAIT),
		  -ECONNRESET);
	EXPECT_EQ(nfds, 0u);
	EXPECT_EQ(extra, 2u);
	EXPECT_TRUE(ReadEndClosed());
}

TEST_F(ProtoRecvTest, NothingToReadReportsNoFds)
{
	int fds[ONERING_MSG_MAX_FDS] = {-1, -1, -1};
	unsigned nfds = 99, extra = 99;
	struct onering_msg got;

	EXPECT_EQ(onering_msg_recv(sv_[1], &got, fds, 1, &nfds, &extra, MSG_DONTWAIT), -EAGAIN);
	EXPECT_EQ(nfds, 0u);
	EXPECT_EQ(extra, 0u);
}

// onering_proto_call() on one end of a socketpair; the test plays the
// broker on the other, queueing its answers before the call reads them.
class ProtoCallTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv_), 0);
		onering_msg_init(&req_, ONERING_MSG_STATS, 5);
	}
	void TearDown() override
	{
		close(sv_[0]);
		if (sv_[1] >= 0)
			close(sv_[1]);
	}
	void Answer(uint16_t type, uint32_t seq, int32_t status = 0)
	{
		onering_msg m;
		onering_msg_init(&m, type, seq);
		m.status = status;
		ASSERT_EQ(onering_msg_send(sv_[1], &m, nullptr, 0, 0), 0);
	}
	static int CountItem(const onering_msg *m, void *arg)
	{
		EXPECT_EQ(m->type, ONERING_MSG_STATS_ITEM);
		++*static_cast<int *>(arg);
		return 0;
	}
	int sv_[2] = {-1, -1};
	onering_msg req_, rep_;
};

TEST_F(ProtoCallTest, HandsItemsToTheCallbackUntilStatsEnd)
{
	Answer(ONERING_MSG_STATS_ITEM, 5);
	Answer(ONERING_MSG_STATS_ITEM, 4); // another request's: dropped
	Answer(ONERING_MSG_STATS_ITEM, 5);
	Answer(ONERING_MSG_STATS_END, 5);
	int items = 0;
	EXPECT_EQ(onering_proto_call(sv_[0], &req_, &rep_, CountItem, &items, 1000), 0);
	EXPECT_EQ(items, 2);
	EXPECT_EQ(rep_.type, ONERING_MSG_STATS_END);
	onering_msg sent;
	ASSERT_EQ(onering_msg_recv(sv_[1], &sent, nullptr, 0, nullptr, nullptr, MSG_DONTWAIT), 0);
	EXPECT_EQ(sent.type, ONERING_MSG_STATS);
	EXPECT_EQ(sent.seq, 5u);
}

TEST_F(ProtoCallTest, ReturnsTheStatusOfTheReplyToItsSeqAndType)
{
	onering_msg_init(&req_, ONERING_MSG_GROUP, 7);
	Answer(ONERING_MSG_GROUP | ONERING_MSG_REPLY, 6, -EINVAL);  // another seq
	Answer(ONERING_MSG_QUEUE_OPEN | ONERING_MSG_REPLY, 7, -EIO); // another type
	Answer(ONERING_MSG_GROUP | ONERING_MSG_REPLY, 7, -ENOENT);
	EXPECT_EQ(onering_proto_call(sv_[0], &req_, &rep_, nullptr, nullptr, 1000), -ENOENT);
	EXPECT_EQ(rep_.seq, 7u);
}

TEST_F(ProtoCallTest, CallbackErrorStopsTheCall)
{
	Answer(ONERING_MSG_STATS_ITEM, 5);
	Answer(ONERING_MSG_STATS_END, 5);
	auto fail = [](const onering_msg *, void *) { return -ENOMEM; };
	EXPECT_EQ(onering_proto_call(sv_[0], &req_, &rep_, fail, nullptr, 1000), -ENOMEM);
}

TEST_F(ProtoCallTest, ShutdownOrHangUpIsConnReset)
{
	Answer(ONERING_MSG_SHUTDOWN, 0);
	EXPECT_EQ(onering_proto_call(sv_[0], &req_, &rep_, nullptr, nullptr, 1000), -ECONNRESET);
	close(sv_[1]);
	sv_[1] = -1;
	EXPECT_EQ(onering_proto_call(sv_[0], &req_, &rep_, nullptr, nullptr, 1000), -ECONNRESET);
}

TEST_F(ProtoCallTest, NoAnswerTimesOut)
{
	EXPECT_EQ(onering_proto_call(sv_[0], &req_, &rep_, nullptr, nullptr, 20), -ETIMEDOUT);
}

TEST_F(ProtoCallTest, AnAnswerThatIsNotOursOrNotAnErrnoIsEPROTO)
{
	Answer(ONERING_MSG_STATS_END, 5, 5); // a positive status
	EXPECT_EQ(onering_proto_call(sv_[0], &req_, &rep_, nullptr, nullptr, 1000), -EPROTO);
	Answer(ONERING_MSG_STATS_END, 5, -100000);
	EXPECT_EQ(onering_proto_call(sv_[0], &req_, &rep_, nullptr, nullptr, 1000), -EPROTO);
	onering_msg m;
	onering_msg_init(&m, ONERING_MSG_STATS_END, 5);
	m.version = ONERING_PROTO_VERSION + 1;
	ASSERT_EQ(onering_msg_send(sv_[1], &m, nullptr, 0, 0), 0);
	EXPECT_EQ(onering_proto_call(sv_[0], &req_, &rep_, nullptr, nullptr, 1000), -EPROTO);
}

} // namespace
