// SPDX-License-Identifier: MIT
// NIC receive queues as event sources, on DPDK virtual devices (no
// hugepages, no PCI): net_ring (frames the test transmits through the
// broker come back on its rx queue), net_pcap (a real capture replayed),
// net_null (an endless stream), and the zero-syscall promise for NIC records
// and their packet bytes.
#include "harness.h"

#include <arpa/inet.h>
#include <chrono>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <map>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "shm/abi.h"

#ifndef ONERING_PCAP_DIR
#error "ONERING_PCAP_DIR must name ../shared/pcap"
#endif

using onering_test::Broker;
using onering_test::ExitGroup;
using onering_test::InstallSeccompKillAll;

namespace {

// EAL options for one virtual device; a runtime directory of this test
// process's own, so test binaries running side by side do not meet.
const std::vector<std::string> kEal(const std::string &vdev)
{
	return {"--no-huge", "--no-pci", "--no-shconf", "-m", "256", "--vdev", vdev,
		"--file-prefix", "onering-test-" + std::to_string(getpid())};
}

// An Ethernet/IPv4/UDP frame whose payload carries (flow, seq) and a
// pattern derived from both; len bytes in all (42 + payload).
std::vector<uint8_t> Frame(uint32_t flow, uint32_t seq, size_t len)
{
	std::vector<uint8_t> f(len, 0);
	const uint8_t hdr[] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00,
			       0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2};
	memcpy(f.data(), hdr, sizeof(hdr));
	f[34] = (uint8_t)((1000 + flow) >> 8); // UDP source port: the flow
	f[35] = (uint8_t)(1000 + flow);
	f[36] = 0x23;
	f[37] = 0x28;
	memcpy(&f[42], &flow, 4);
	memcpy(&f[46], &seq, 4);
	for (size_t i = 50; i < len; i++)
		f[i] = (uint8_t)(flow * 31 + seq * 7 + i);
	return f;
}

class Nic : public ::testing::Test {
protected:
	void SetUp() override
	{
		// DPDK's driver plugins allocate in their constructors and never
		// free it; LeakSanitizer cannot even name the module. Leak checks
		// stay on for brokers without the EAL (every other test).
		const char *asan = getenv("ASAN_OPTIONS");
		broker_.SetEnv("ASAN_OPTIONS", std::string(asan ? asan : "") + ":detect_leaks=0");
	}

	void TearDown() override
	{
		if (ctl_ >= 0)
			close(ctl_);
		if (att_)
			onering_detach(att_);
	}

	// A control connection for PORT_TX and stats.
	void Connect()
	{
		char err[512];
		ASSERT_EQ(onering_proto_connect(broker_.SocketPath().c_str(), broker_.Name().c_str(), -1,
						&ctl_, nullptr, err, sizeof(err)), 0) << err;
	}

	// -EAGAIN (the vdev's ring is full until the broker takes from it) is
	// backpressure: tried again, bounded.
	int Inject(const std::vector<uint8_t> &frame, uint16_t port = 0)
	{
		int r = -EAGAIN;
		for (int i = 0; i < 10000 && r == -EAGAIN; i++) {
			r = InjectOnce(frame, port);
			if (r == -EAGAIN)
				usleep(100);
		}
		return r;
	}

	int InjectOnce(const std::vector<uint8_t> &frame, uint16_t port)
	{
		onering_msg m;
		onering_msg_init(&m, ONERING_MSG_PORT_TX, ++seq_);
		m.u.port_tx.port = port;
		m.u.port_tx.len = (uint16_t)frame.size();
		memcpy(m.u.port_tx.frame, frame.data(), frame.size());
		if (onering_msg_send(ctl_, &m, nullptr, 0, 0) < 0 ||
		    onering_msg_recv_timeout(ctl_, &m, nullptr, 0, nullptr, 5000) < 0)
			return -EIO;
		return m.status;
	}

	// Counters of rx queue (port, queue), or empty.
	std::vector<uint64_t> Rxq(uint16_t port = 0, uint16_t queue = 0)
	{
		std::vector<uint64_t> out;
		onering_msg m;
		onering_msg_init(&m, ONERING_MSG_STATS, ++seq_);
		if (onering_msg_send(ctl_, &m, nullptr, 0, 0) < 0)
			return out;
		while (onering_msg_recv_timeout(ctl_, &m, nullptr, 0, nullptr, 5000) == 0 &&
		       m.type != ONERING_MSG_STATS_END)
			if (m.u.stats_item.what == ONERING_STATS_RXQ &&
			    m.u.stats_item.id == ((uint32_t)port << 16 | queue))
				out.assign(m.u.stats_item.counter, m.u.stats_item.counter + ONERING_RXQC_NR);
		return out;
	}

	void OpenQueue(uint32_t capacity, uint32_t snap, const char *group = "pk")
	{
		ASSERT_EQ(broker_.Attach(&att_), 0);
		onering_queue_options o = {};
		o.capacity = capacity;
		o.packet_snap = snap;
		o.group = group;
		ASSERT_EQ(onering_queue_open(att_, &o, &q_), 0);
	}

	void ExpectStream();

	Broker broker_;
	int ctl_ = -1;
	uint32_t seq_ = 0;
	struct onering *att_ = nullptr;
	struct onering_queue *q_ = nullptr;
};

// Frames sent out of a net_ring port come back on its rx queue: each is
// delivered once, byte for byte, in per-flow order, and counted.
TEST_F(Nic, NetRingDeliversEveryFrameByteForByteInFlowOrder)
{
	ASSERT_TRUE(broker_.Start({"--port", "net_ring0:group=pk,snaplen=256", "--allow-inject"},
				  "t", kEal("net_ring0")));
	OpenQueue(4096, 256);
	// A member without a packet area gets no NIC records.
	struct onering_queue *bare;
	onering_queue_options o = {};
	o.group = "pk";
	ASSERT_EQ(onering_queue_open(att_, &o, &bare), 0);
	Connect();

	const int flows = 4, per_flow = 250;
	std::map<uint32_t, std::vector<uint8_t>> sent;
	for (int k = 0; k < flows * per_flow; k++) {
		uint32_t flow = (uint32_t)(k % flows), seq = (uint32_t)(k / flows);
		auto f = Frame(flow, seq, 60 + (size_t)(k % 37));
		ASSERT_EQ(Inject(f), 0) << "frame " << k;
		sent[flow << 16 | seq] = f;
	}
	std::map<uint32_t, uint32_t> next_seq;
	size_t got = 0;
	onering_event ev[64];
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
	while (got < sent.size() && std::chrono::steady_clock::now() < deadline) {
		int n = onering_wait(q_, ev, 1, 64, 10 * 1000 * 1000);
		ASSERT_GE(n, 0);
		for (int i = 0; i < n; i++) {
			ASSERT_EQ(ev[i].kind, ONERING_EV_NIC);
			uint32_t len = 0;
			const uint8_t *p = static_cast<const uint8_t *>(onering_event_packet(q_, &ev[i], &len));
			ASSERT_NE(p, nullptr);
			ASSERT_EQ(len, ev[i].payload.nic.length);
			EXPECT_FALSE(ev[i].flags & ONERING_EVF_TRUNCATED);
			uint32_t flow, seq;
			memcpy(&flow, p + 42, 4);
			memcpy(&seq, p + 46, 4);
			auto it = sent.find(flow << 16 | seq);
			ASSERT_NE(it, sent.end()) << "unknown frame";
			ASSERT_EQ(std::vector<uint8_t>(p, p + len), it->second) << "flow " << flow << " seq " << seq;
			EXPECT_EQ(seq, next_seq[flow]) << "flow " << flow << " out of order";
			next_seq[flow] = seq + 1;
			got++;
		}
	}
	EXPECT_EQ(got, sent.size());
	EXPECT_EQ(onering_poll(bare, ev, 64), 0) << "a queue without a packet area got packets";
	auto c = Rxq();
	ASSERT_FALSE(c.empty());
	EXPECT_EQ(c[ONERING_RXQC_RECEIVED], sent.size());
	EXPECT_EQ(c[ONERING_RXQC_DELIVERED], sent.size());
	EXPECT_EQ(c[ONERING_RXQC_DROPPED], 0u);
	onering_queue_close(bare);
}

// Several rx queues (two net_ring ports standing in for the queues of one
// NIC: virtual devices have no RSS) and two consumers of a sticky group:
// each flow (its 5-tuple hash, computed by the broker when the device gives
// none) stays on one queue while it holds records there, in order.
TEST_F(Nic, FlowsStayOnOneConsumerAcrossRxQueues)
{
	std::vector<std::string> eal = kEal("net_ring0");
	eal.push_back("--vdev");
	eal.push_back("net_ring1");
	ASSERT_TRUE(broker_.Start({"--group", "pk:policy=sticky", "--port", "net_ring0:group=pk",
				   "--port", "net_ring1:group=pk", "--allow-inject"},
				  "t", eal));
	OpenQueue(1024, 128);
	struct onering_queue *q2;
	onering_queue_options o = {};
	o.capacity = 1024;
	o.packet_snap = 128;
	o.group = "pk";
	ASSERT_EQ(onering_queue_open(att_, &o, &q2), 0);
	Connect();
	const int flows = 8, per_flow = 40;
	for (int k = 0; k < flows * per_flow; k++) {
		uint32_t flow = (uint32_t)(k % flows);
		ASSERT_EQ(Inject(Frame(flow, (uint32_t)(k / flows), 64), (uint16_t)(flow % 2)), 0);
	}
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
	uint64_t received = 0;
	while (received < (uint64_t)(flows * per_flow) && std::chrono::steady_clock::now() < deadline) {
		auto a = Rxq(0), b = Rxq(1);
		received = (a.empty() ? 0 : a[ONERING_RXQC_DELIVERED]) +
			   (b.empty() ? 0 : b[ONERING_RXQC_DELIVERED]);
	}
	ASSERT_EQ(received, (uint64_t)(flows * per_flow));
	std::map<uint32_t, int> owner;
	std::map<uint32_t, uint32_t> next;
	int per_queue[2] = {0, 0};
	struct onering_queue *qs[2] = {q_, q2};
	for (int i = 0; i < 2; i++) {
		onering_event ev[64];
		int n;
		while ((n = onering_poll(qs[i], ev, 64)) > 0)
			for (int k = 0; k < n; k++) {
				uint32_t len = 0, flow, seq;
				const uint8_t *p = static_cast<const uint8_t *>(onering_event_packet(qs[i], &ev[k], &len));
				ASSERT_NE(p, nullptr);
				EXPECT_NE(ev[k].payload.nic.rss_hash, 0u) << "no flow hash";
				memcpy(&flow, p + 42, 4);
				memcpy(&seq, p + 46, 4);
				if (!owner.count(flow))
					owner[flow] = i;
				EXPECT_EQ(owner[flow], i) << "flow " << flow << " on two queues at once";
				EXPECT_EQ(seq, next[flow]) << "flow " << flow << " out of order";
				next[flow] = seq + 1;
				per_queue[i]++;
			}
	}
	EXPECT_EQ(per_queue[0] + per_queue[1], flows * per_flow);
	EXPECT_GT(per_queue[0], 0);
	EXPECT_GT(per_queue[1], 0);
	onering_queue_close(q2);
}

// A full ring drops, counted exactly; snaplen cuts long frames.
TEST_F(Nic, FullRingDropsWithExactCountersAndSnaplenTruncates)
{
	ASSERT_TRUE(broker_.Start({"--port", "net_ring0:group=pk,snaplen=48", "--allow-inject"},
				  "t", kEal("net_ring0")));
	OpenQueue(16, 64);
	Connect();
	for (int k = 0; k < 100; k++)
		ASSERT_EQ(Inject(Frame(0, (uint32_t)k, 90)), 0);
	std::vector<uint64_t> c;
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
	do {
		c = Rxq();
	} while ((c.empty() || c[ONERING_RXQC_RECEIVED] < 100) &&
		 std::chrono::steady_clock::now() < deadline);
	ASSERT_FALSE(c.empty());
	EXPECT_EQ(c[ONERING_RXQC_RECEIVED], 100u);
	EXPECT_EQ(c[ONERING_RXQC_DELIVERED], 16u);
	EXPECT_EQ(c[ONERING_RXQC_DROPPED], 84u);
	EXPECT_EQ(c[ONERING_RXQC_TRUNCATED], 16u);
	onering_event ev[64];
	int n = onering_poll(q_, ev, 64);
	ASSERT_EQ(n, 16);
	for (int i = 0; i < n; i++) {
		uint32_t len = 0, seq;
		const uint8_t *p = static_cast<const uint8_t *>(onering_event_packet(q_, &ev[i], &len));
		ASSERT_NE(p, nullptr);
		EXPECT_EQ(len, 48u);
		EXPECT_EQ(ev[i].payload.nic.length, 90u);
		EXPECT_TRUE(ev[i].flags & ONERING_EVF_TRUNCATED);
		memcpy(&seq, p + 46, 4);
		EXPECT_EQ(seq, (uint32_t)i) << "the first 16 are the ones kept";
	}
}

// Frames wait in the device while their group has no member; `onering tail
// --group` joins it and prints them; `onering stat` shows the port.
TEST_F(Nic, TailPrintsPacketsAndStatShowsThePort)
{
	ASSERT_TRUE(broker_.Start({"--port", "net_ring0:group=pk", "--allow-inject"}, "t",
				  kEal("net_ring0")));
	Connect();
	for (int k = 0; k < 5; k++)
		ASSERT_EQ(Inject(Frame(3, (uint32_t)k, 60 + (size_t)k)), 0);
	const std::string at = " --name " + broker_.Name() + " --socket-dir " + broker_.Dir();
	int st;
	std::string out = onering_test::RunCommand(std::string(ONERING_TOOL_PATH) + " tail" + at +
						   " --group pk --count 5 --seconds 20", &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	for (int k = 0; k < 5; k++)
		EXPECT_NE(out.find("port 0/0  len " + std::to_string(60 + k)), std::string::npos) << out;
	EXPECT_NE(out.find(" 02000000 00020200 00000001 08004500"), std::string::npos) << "first bytes\n" << out;
	out = onering_test::RunCommand(std::string(ONERING_TOOL_PATH) + " stat" + at, &st);
	ASSERT_EQ(WEXITSTATUS(st), 0) << out;
	// The rx queues' section: its labels (port, queue, poller), then counters.
	EXPECT_NE(out.find("port queue poller  received"), std::string::npos) << out;
}

// Without --allow-inject, and for bad frames, PORT_TX is refused.
TEST_F(Nic, InjectNeedsPermissionAndAValidFrame)
{
	ASSERT_TRUE(broker_.Start({"--port", "net_ring0"}, "t", kEal("net_ring0")));
	Connect();
	EXPECT_EQ(Inject(Frame(0, 0, 60)), -EPERM);
}

// The kernel sends UDP datagrams from an ordinary socket out of the tap
// interface the broker's net_tap device made (in a network namespace this
// test creates for the broker); the consumer gets each, payload intact.
TEST_F(Nic, NetTapReceivesWhatTheKernelSends)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "net_tap and network namespaces need root";
	broker_.NewNetns();
	ASSERT_TRUE(broker_.Start({"--port", "net_tap0:group=pk,snaplen=256"}, "t",
				  kEal("net_tap0,iface=dtap0")));
	OpenQueue(4096, 256);
	constexpr int kDatagrams = 100;
	pid_t sender = fork();
	ASSERT_GE(sender, 0);
	if (sender == 0) {
		std::string ns = "/proc/" + std::to_string(broker_.Pid()) + "/ns/net";
		int fd = open(ns.c_str(), O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			_exit(2);
		// A static neighbour: no ARP, the datagrams go straight out.
		if (system("ip link set dtap0 up && ip addr add 10.77.0.1/24 dev dtap0 && "
			   "ip neigh add 10.77.0.2 lladdr 02:00:00:00:77:02 dev dtap0") != 0)
			_exit(3);
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in to = {};
		to.sin_family = AF_INET;
		to.sin_port = htons(9000);
		inet_pton(AF_INET, "10.77.0.2", &to.sin_addr);
		for (int i = 0; i < kDatagrams; i++) {
			std::string msg = "onering-tap-" + std::to_string(i);
			if (sendto(s, msg.data(), msg.size(), 0, (struct sockaddr *)&to, sizeof(to)) !=
			    (ssize_t)msg.size())
				_exit(4);
		}
		_exit(0);
	}
	int status = 0;
	ASSERT_EQ(waitpid(sender, &status, 0), sender);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "sender status " << status;

	// Other traffic (IPv6 router solicitations, ...) may come too: take
	// the UDP datagrams to port 9000.
	int next = 0;
	onering_event ev[64];
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
	while (next < kDatagrams && std::chrono::steady_clock::now() < deadline) {
		int n = onering_wait(q_, ev, 1, 64, 10 * 1000 * 1000);
		ASSERT_GE(n, 0);
		for (int i = 0; i < n; i++) {
			uint32_t len = 0;
			const uint8_t *p = static_cast<const uint8_t *>(onering_event_packet(q_, &ev[i], &len));
			ASSERT_NE(p, nullptr);
			if (len < 42 || p[12] != 0x08 || p[13] != 0x00 || p[23] != 17)
				continue; /* not IPv4 UDP */
			size_t ihl = (size_t)(p[14] & 0x0f) * 4;
			const uint8_t *udp = p + 14 + ihl;
			if (((udp[2] << 8) | udp[3]) != 9000)
				continue;
			std::string got(reinterpret_cast<const char *>(udp + 8),
					((udp[4] << 8) | udp[5]) - 8u);
			EXPECT_EQ(got, "onering-tap-" + std::to_string(next));
			next++;
		}
	}
	EXPECT_EQ(next, kDatagrams);
}

// Count the records of a pcap file (classic format).
static long PcapCount(const std::string &path)
{
	FILE *f = fopen(path.c_str(), "rb");
	if (!f)
		return -1;
	uint8_t gh[24];
	long n = 0;
	if (fread(gh, 1, 24, f) != 24) {
		fclose(f);
		return -1;
	}
	bool swap = gh[0] == 0xa1;
	for (;;) {
		uint8_t rh[16];
		if (fread(rh, 1, 16, f) != 16)
			break;
		uint32_t incl;
		memcpy(&incl, rh + 8, 4);
		if (swap)
			incl = __builtin_bswap32(incl);
		if (fseek(f, incl, SEEK_CUR) != 0)
			break;
		n++;
	}
	fclose(f);
	return n;
}

// A real capture replayed: every packet is delivered or dropped, and the
// counters add up exactly to the capture.
TEST_F(Nic, PcapReplayIsFullyAccountedFor)
{
	std::string pcap = std::string(ONERING_PCAP_DIR) + "/afs.pcap";
	long packets = PcapCount(pcap);
	if (packets < 0)
		GTEST_SKIP() << pcap << " not found (../shared/pcap beside the checkout)";
	ASSERT_TRUE(broker_.Start({"--port", "net_pcap0:group=pk,snaplen=128"}, "t",
				  kEal("net_pcap0,rx_pcap=" + pcap)));
	OpenQueue(256, 128);
	Connect();
	long got = 0;
	std::vector<uint64_t> c;
	onering_event ev[64];
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
	while (std::chrono::steady_clock::now() < deadline) {
		int n = onering_wait(q_, ev, 1, 64, 20 * 1000 * 1000);
		ASSERT_GE(n, 0);
		for (int i = 0; i < n; i++) {
			uint32_t len = 0;
			ASSERT_NE(onering_event_packet(q_, &ev[i], &len), nullptr);
			EXPECT_EQ(len, std::min<uint32_t>(ev[i].payload.nic.length, 128));
		}
		got += n;
		if (n == 0) {
			c = Rxq();
			if (!c.empty() && (long)c[ONERING_RXQC_RECEIVED] == packets &&
			    (long)c[ONERING_RXQC_DELIVERED] == got)
				break;
		}
	}
	ASSERT_FALSE(c.empty());
	EXPECT_EQ((long)c[ONERING_RXQC_RECEIVED], packets);
	EXPECT_EQ(c[ONERING_RXQC_DELIVERED] + c[ONERING_RXQC_DROPPED], c[ONERING_RXQC_RECEIVED]);
	EXPECT_EQ((long)c[ONERING_RXQC_DELIVERED], got);
	EXPECT_GT(got, 0);
}

// net_null: an endless stream; records keep coming with their bytes.
TEST_F(Nic, NetNullStreams)
{
	ASSERT_TRUE(broker_.Start({"--port", "net_null0:group=pk,snaplen=64"}, "t",
				  kEal("net_null0")));
	ExpectStream();
}

// --coalesce-us never delays a poller that polls rx queues (their deadline
// is 0: nothing wakes it for packets): with a wait of 1 s after each loop
// of a burst, 100,000 packets would take over 25 minutes.
TEST_F(Nic, CoalescingLeavesAPollerWithAPortAlone)
{
	ASSERT_TRUE(broker_.Start({"--port", "net_null0:group=pk,snaplen=64", "--coalesce-us",
				   "1000000"}, "t", kEal("net_null0")));
	ExpectStream();
}

// 100,000 records of 64-byte packets with their bytes, within 10 s.
void Nic::ExpectStream()
{
	OpenQueue(1024, 64);
	long got = 0;
	onering_event ev[256];
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
	while (got < 100000 && std::chrono::steady_clock::now() < deadline) {
		int n = onering_wait(q_, ev, 1, 256, 10 * 1000 * 1000);
		ASSERT_GE(n, 0);
		for (int i = 0; i < n; i++) {
			uint32_t len = 0;
			ASSERT_NE(onering_event_packet(q_, &ev[i], &len), nullptr);
			ASSERT_EQ(len, 64u);
		}
		got += n;
	}
	EXPECT_GE(got, 100000);
}

// node=N homes a virtual device (which has no node of its own) on a node:
// its rx queue is served by that node's poller, and the port says so. On a
// synthetic two-node machine here; tests/numavm does it on real nodes.
TEST_F(Nic, PortHomedOnNodeOneIsPolledByNodeOnesPoller)
{
	ASSERT_TRUE(broker_.Start({"--synthetic", "numa:2 core:2 pu:1", "--port",
				   "net_null0:group=pk,snaplen=64,node=1"},
				  "t", kEal("net_null0")));
	Connect();
	onering_msg m;
	onering_msg_init(&m, ONERING_MSG_STATS, ++seq_);
	ASSERT_EQ(onering_msg_send(ctl_, &m, nullptr, 0, 0), 0);
	int port_node = -2, rxq_poller = -2, rxq_node = -2;
	while (onering_msg_recv_timeout(ctl_, &m, nullptr, 0, nullptr, 5000) == 0 &&
	       m.type != ONERING_MSG_STATS_END) {
		if (m.u.stats_item.what == ONERING_STATS_PORT)
			port_node = (int)m.u.stats_item.node;
		if (m.u.stats_item.what == ONERING_STATS_RXQ) {
			rxq_poller = (int)m.u.stats_item.owner_pid;
			rxq_node = (int)m.u.stats_item.node;
		}
	}
	EXPECT_EQ(port_node, 1);
	EXPECT_EQ(rxq_poller, 1) << "rx queue not on node 1's poller";
	EXPECT_EQ(rxq_node, 1);

	// A node without a poller is refused before anything starts.
	int st;
	std::string out = onering_test::RunCommand(
		std::string(ONERINGD_PATH) + " --check --name chk --socket-dir " + broker_.Dir() +
			" --synthetic 'numa:2 core:2 pu:1' --port net_null0:node=5",
		&st);
	EXPECT_EQ(WEXITSTATUS(st), 1) << out;
	EXPECT_NE(out.find("node=5 has no poller"), std::string::npos) << out;
}

// ---- zero system calls for NIC records and their bytes ---------------------



// The child's side, under the filter: take n packets and check their bytes,
// then exit_group. ASan puts a stack check (a system call) before every call
// of a noreturn function: this one is not instrumented, and must not look
// noreturn to its caller either (hence the volatile flag).
static volatile bool exit_here = true;

__attribute__((no_sanitize("address"), noinline)) void
ConsumeWithoutSyscalls(struct onering_queue *q, uint32_t n_packets)
{
	static onering_event evs[256];
	uint32_t got = 0;
	for (uint64_t spins = 0; got < n_packets; spins++) {
		int n = onering_poll(q, evs, 256);
		if (n < 0)
			ExitGroup(5);
		for (int i = 0; i < n; i++) {
			uint32_t len = 0, seq;
			const uint8_t *p = static_cast<const uint8_t *>(onering_event_packet(q, &evs[i], &len));
			if (!p || len != 80)
				ExitGroup(6);
			memcpy(&seq, p + 46, 4);
			if (seq != got + (uint32_t)i)
				ExitGroup(7);
			if (p[79] != (uint8_t)(seq * 7 + 79))
				ExitGroup(8);
		}
		got += (uint32_t)n;
		if (spins > 50000000000ull)
			ExitGroup(9);
	}
	if (exit_here)
		ExitGroup(0);
}

TEST_F(Nic, PacketsAreConsumedAndReadUnderASeccompFilterThatKillsOnAnySyscall)
{
	ASSERT_TRUE(broker_.Start({"--port", "net_ring0:group=pk,snaplen=128", "--allow-inject",
				   "--idle-sleep-ms", "-1"},
				  "t", kEal("net_ring0")));
	Connect();
	int ready[2];
	ASSERT_EQ(pipe(ready), 0);
	constexpr uint32_t kPackets = 2000;
	pid_t child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		struct onering *att;
		struct onering_queue *q;
		onering_queue_options o = {};
		o.capacity = 4096;
		o.packet_snap = 128;
		o.group = "pk";
		if (broker_.Attach(&att) < 0 || onering_queue_open(att, &o, &q) < 0)
			_exit(3);
		if (write(ready[1], "r", 1) != 1 || InstallSeccompKillAll() < 0)
			_exit(4);
		ConsumeWithoutSyscalls(q, kPackets);
	}
	char ch;
	ASSERT_EQ(read(ready[0], &ch, 1), 1);
	for (uint32_t k = 0; k < kPackets; k++)
		ASSERT_EQ(Inject(Frame(0, k, 80)), 0);
	int status = 0;
	ASSERT_TRUE(onering_test::WaitChild(child, 60, &status)) << "consumer did not finish";
	ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status)
				       << (WTERMSIG(status) == SIGSYS ? " (a system call!)" : "");
	EXPECT_EQ(WEXITSTATUS(status), 0);
	close(ready[0]);
	close(ready[1]);
}

} // namespace
