// SPDX-License-Identifier: MIT
// Placement on real NUMA nodes (issue 16). Everything multi-node elsewhere
// runs on hwloc synthetic topologies, where memory binding falls back; these
// tests need a kernel with two or more nodes and check what the kernel says:
//   - each poller is pinned to one CPU of its node and its stack is there
//     (/proc/PID/task/TID/status, /proc/PID/numa_maps);
//   - every queue segment's pages are on its consumer's node (numa_maps of
//     the broker, which wrote them), normal pages and hugepages;
//   - strict keeps records on the node, spill goes to the nearest node by
//     the kernel's distance table, interleave splits, onering tune changes
//     it live;
//   - a NIC virtual device homed on a node (--port ...,node=N) is polled by
//     that node's poller;
//   - onering topo and oneringd --check print the kernel's nodes and
//     distances.
// Run by tools/numa-vm in a qemu guest (meson test --suite numa-vm), or on a
// real multi-node host; elsewhere each test skips and says why. Lines
// starting "numa-vm count:" are the figures docs/benchmarks-history.md quotes.
#include "tests/integration/harness.h"

#include <fstream>
#include <jansson.h>
#include <map>
#include <set>
#include <sstream>
#include <sys/mman.h>

#include "shm/abi.h"

using onering_test::Broker;
using onering_test::ReadFile;
using onering_test::RunCommand;

namespace {

// "0-2,5" -> {0, 1, 2, 5}
std::vector<int> CpuList(const std::string &s)
{
	std::vector<int> out;
	std::stringstream ss(s);
	std::string part;
	while (std::getline(ss, part, ',')) {
		int a, b;
		if (sscanf(part.c_str(), "%d-%d", &a, &b) == 2)
			for (int i = a; i <= b; i++)
				out.push_back(i);
		else if (sscanf(part.c_str(), "%d", &a) == 1)
			out.push_back(a);
	}
	return out;
}

const std::string kNodeDir = "/sys/devices/system/node/";

std::vector<int> Nodes() { return CpuList(ReadFile(kNodeDir + "online")); }

std::vector<int> NodeCpus(int node)
{
	return CpuList(ReadFile(kNodeDir + "node" + std::to_string(node) + "/cpulist"));
}

// The kernel's distance row from node (SLIT), by the order of Nodes().
std::vector<int> Distances(int node)
{
	std::stringstream ss(ReadFile(kNodeDir + "node" + std::to_string(node) + "/distance"));
	std::vector<int> row;
	for (int d; ss >> d;)
		row.push_back(d);
	return row;
}

int NodeOfCpu(int cpu)
{
	for (int n : Nodes())
		for (int c : NodeCpus(n))
			if (c == cpu)
				return n;
	return -1;
}

// One line of /proc/PID/numa_maps: its start, its text, pages per node.
struct NumaMap {
	uint64_t start = 0;
	std::string line;
	std::map<int, long> pages;
	long Total() const
	{
		long t = 0;
		for (auto &kv : pages)
			t += kv.second;
		return t;
	}
	std::string Pages() const
	{
		std::string s;
		for (auto &kv : pages)
			s += (s.empty() ? "N" : " N") + std::to_string(kv.first) + "=" +
			     std::to_string(kv.second);
		return s.empty() ? "none" : s;
	}
};

std::vector<NumaMap> NumaMaps(pid_t pid)
{
	std::vector<NumaMap> maps;
	std::stringstream ss(ReadFile("/proc/" + std::to_string(pid) + "/numa_maps"));
	for (std::string line; std::getline(ss, line);) {
		NumaMap m;
		m.line = line;
		m.start = strtoull(line.c_str(), nullptr, 16);
		std::stringstream ws(line);
		for (std::string w; ws >> w;) {
			int node;
			long n;
			if (sscanf(w.c_str(), "N%d=%ld", &node, &n) == 2)
				m.pages[node] = n;
		}
		maps.push_back(m);
	}
	return maps;
}

// The numa_maps line of the mapping whose name contains tag.
NumaMap NumaMapNamed(pid_t pid, const std::string &tag)
{
	for (auto &m : NumaMaps(pid))
		if (m.line.find(tag) != std::string::npos)
			return m;
	return NumaMap();
}

// The numa_maps line of the mapping holding addr (/proc/PID/maps gives its range).
NumaMap NumaMapAt(pid_t pid, uint64_t addr)
{
	std::stringstream ss(ReadFile("/proc/" + std::to_string(pid) + "/maps"));
	uint64_t start = 0;
	for (std::string line; std::getline(ss, line);) {
		unsigned long long a, b;
		if (sscanf(line.c_str(), "%llx-%llx", &a, &b) == 2 && addr >= a && addr < b)
			start = a;
	}
	for (auto &m : NumaMaps(pid))
		if (start && m.start == start)
			return m;
	return NumaMap();
}

// The broker's poller threads (named onering-pollN): index -> tid.
std::map<int, pid_t> Pollers(pid_t pid)
{
	std::map<int, pid_t> out;
	std::string dir = "/proc/" + std::to_string(pid) + "/task";
	DIR *d = opendir(dir.c_str());
	if (!d)
		return out;
	while (struct dirent *e = readdir(d)) {
		int idx;
		std::string comm = ReadFile(dir + "/" + e->d_name + "/comm");
		if (sscanf(comm.c_str(), "onering-poll%d", &idx) == 1)
			out[idx] = atoi(e->d_name);
	}
	closedir(d);
	return out;
}

std::vector<int> AllowedCpus(pid_t pid, pid_t tid)
{
	std::stringstream ss(ReadFile("/proc/" + std::to_string(pid) + "/task/" +
				      std::to_string(tid) + "/status"));
	for (std::string line; std::getline(ss, line);)
		if (line.rfind("Cpus_allowed_list:", 0) == 0)
			return CpuList(line.substr(line.find(':') + 1));
	return {};
}

// A thread's stack pointer, from /proc/PID/task/TID/syscall while it
// blocks in a system call (a poller sleeps between loops); 0 if it never did.
uint64_t StackPointer(pid_t pid, pid_t tid)
{
	std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall";
	for (int i = 0; i < 2000; i++) {
		std::stringstream ss(ReadFile(path));
		std::vector<std::string> f;
		for (std::string w; ss >> w;)
			f.push_back(w);
		if (f.size() >= 9) // nr, six arguments, sp, pc
			return strtoull(f[7].c_str(), nullptr, 16);
		usleep(1000);
	}
	return 0;
}

uint64_t NowNs()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

template <class F> bool WaitFor(F cond, int timeout_ms = 20000)
{
	for (int i = 0; i < timeout_ms; i++) {
		if (cond())
			return true;
		usleep(1000);
	}
	return cond();
}

// Pin the calling thread to a node's CPUs.
bool PinToNode(int node)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	for (int c : NodeCpus(node))
		CPU_SET(c, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0;
}

constexpr int kMaxNodes = 8;

// Shared with the consumer children.
struct Shared {
	std::atomic<int> opened[kMaxNodes];
	std::atomic<int> queue_node[kMaxNodes]; // onering_queue_node() as the client sees it
	std::atomic<int> stop;
};

class NumaVm : public ::testing::Test {
protected:
	void SetUp() override
	{
		nodes_ = Nodes();
		if (nodes_.size() < 2)
			GTEST_SKIP() << "this kernel has " << nodes_.size()
				     << " NUMA node(s): these tests need real multi-node memory. "
					"Run them in a qemu guest: meson test -C build --suite numa-vm "
					"(tools/numa-vm), or on a multi-node host";
		ASSERT_LE(nodes_.size(), (size_t)kMaxNodes);
		sh_ = static_cast<Shared *>(mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
						 MAP_SHARED | MAP_ANONYMOUS, -1, 0));
		ASSERT_NE(sh_, MAP_FAILED);
	}

	void TearDown() override
	{
		if (pq_)
			onering_queue_close(pq_);
		if (patt_)
			onering_detach(patt_);
		if (!sh_)
			return;
		sh_->stop = 1;
		for (pid_t p : pids_) {
			int st;
			if (!onering_test::WaitChild(p, 5, &st))
				ADD_FAILURE() << "consumer " << p << " had to be killed";
		}
		munmap(sh_, sizeof(Shared));
	}

	// A consumer child pinned to node's CPUs: a queue in group (opened
	// without a node: the broker places it by the CPU the client runs on),
	// never consumed from until the test ends.
	pid_t StartConsumer(int node, const std::string &group, uint32_t capacity,
			    uint32_t snap = 0)
	{
		pid_t pid = fork();
		if (pid == 0) {
			int r = 1;
			struct onering *att = nullptr;
			struct onering_queue *q = nullptr;
			onering_queue_options o = {};
			o.capacity = capacity;
			o.group = group.c_str();
			o.packet_snap = snap;
			if (PinToNode(node) && broker_.Attach(&att) == 0 &&
			    onering_queue_open(att, &o, &q) == 0) {
				sh_->queue_node[node] = onering_queue_node(q);
				sh_->opened[node] = 1;
				uint64_t deadline = NowNs() + 300ull * 1000000000;
				while (!sh_->stop && NowNs() < deadline)
					usleep(1000);
				onering_queue_close(q);
				r = 0;
			} else {
				sh_->opened[node] = -1;
			}
			if (att)
				onering_detach(att);
			_exit(r);
		}
		if (pid > 0) {
			pids_.push_back(pid);
			EXPECT_TRUE(WaitFor([&] { return sh_->opened[node].load() != 0; }));
			EXPECT_EQ(sh_->opened[node].load(), 1) << "consumer on node " << node;
		}
		return pid;
	}

	// The test process posts from a private queue on node 0.
	void Producer()
	{
		onering_queue_options o = {};
		o.flags = ONERING_QUEUE_NODE;
		o.node = (uint32_t)nodes_[0];
		ASSERT_EQ(broker_.Attach(&patt_), 0);
		ASSERT_EQ(onering_queue_open(patt_, &o, &pq_), 0);
	}

	void Post(const std::string &group, int n)
	{
		uint32_t gid = 0;
		ASSERT_EQ(onering_group_id(patt_, group.c_str(), &gid), 0);
		for (int k = 0; k < n; k++) {
			uint64_t seq = (uint64_t)k, deadline = NowNs() + 10ull * 1000000000;
			int r;
			while ((r = onering_post(pq_, gid, 0, &seq, sizeof(seq), seq)) == -EAGAIN &&
			       NowNs() < deadline)
				usleep(100);
			ASSERT_EQ(r, 0) << "post " << k << " to " << group;
		}
	}

	std::vector<onering_msg> Stats() { return onering_test::StatsItems(broker_); }

	// Records published into the queue of consumer pid.
	uint64_t Published(pid_t pid)
	{
		for (auto &m : Stats())
			if (m.u.stats_item.what == ONERING_STATS_QUEUE &&
			    (pid_t)m.u.stats_item.owner_pid == pid)
				return m.u.stats_item.counter[ONERING_QC_PUBLISHED];
		return 0;
	}

	uint64_t Spilled(const char *group)
	{
		for (auto &m : Stats())
			if (m.u.group_stats.what == ONERING_STATS_GROUP &&
			    strcmp(m.u.group_stats.name, group) == 0)
				return m.u.group_stats.counter[ONERING_GC_SPILLED];
		return UINT64_MAX;
	}

	void CheckQueuePages(bool huge);

	std::vector<int> nodes_;
	Broker broker_;
	Shared *sh_ = nullptr;
	std::vector<pid_t> pids_;
	struct onering *patt_ = nullptr;
	struct onering_queue *pq_ = nullptr;
};

// ---- pollers ----------------------------------------------------------------

TEST_F(NumaVm, EachPollerRunsOnItsNodesCpuWithItsStackThere)
{
	ASSERT_TRUE(broker_.Start());
	std::map<int, pid_t> pollers;
	ASSERT_TRUE(WaitFor([&] { return (pollers = Pollers(broker_.Pid())).size() == nodes_.size(); }))
		<< pollers.size() << " pollers for " << nodes_.size() << " nodes";
	std::set<int> seen;
	for (auto &kv : pollers) {
		std::vector<int> cpus = AllowedCpus(broker_.Pid(), kv.second);
		ASSERT_EQ(cpus.size(), 1u) << "poller " << kv.first << " is not pinned to one CPU ("
					   << cpus.size() << " allowed)";
		int node = NodeOfCpu(cpus[0]);
		seen.insert(node);
		uint64_t sp = StackPointer(broker_.Pid(), kv.second);
		ASSERT_NE(sp, 0u) << "poller " << kv.first << " never slept";
		NumaMap stack = NumaMapAt(broker_.Pid(), sp);
		printf("numa-vm count: poller %d cpu %d node %d stack pages %s\n", kv.first, cpus[0],
		       node, stack.Pages().c_str());
		EXPECT_GT(stack.Total(), 0) << stack.line;
		EXPECT_EQ(stack.pages[node], stack.Total())
			<< "poller " << kv.first << " (node " << node
			<< "): its stack has pages off its node: " << stack.line;
	}
	EXPECT_EQ(seen.size(), nodes_.size()) << "not one poller per node";
}

// ---- queue memory -------------------------------------------------------------

// One consumer per node (group nK), each ring filled once by the broker so
// every page of it exists; the broker's mappings of both segments of each
// queue must have every page on that consumer's node.
void NumaVm::CheckQueuePages(bool huge)
{
	const uint32_t cap = 4096;
	std::map<int, pid_t> consumer;
	for (int n : nodes_)
		consumer[n] = StartConsumer(n, "n" + std::to_string(n), cap);
	Producer();
	for (int n : nodes_) {
		Post("n" + std::to_string(n), (int)cap);
		EXPECT_TRUE(WaitFor([&] { return Published(consumer[n]) == cap; }))
			<< "node " << n << ": " << Published(consumer[n]);
	}
	for (auto &m : Stats()) {
		if (m.u.stats_item.what != ONERING_STATS_QUEUE)
			continue;
		int node = -1;
		for (auto &kv : consumer)
			if (kv.second == (pid_t)m.u.stats_item.owner_pid)
				node = kv.first;
		if (node < 0)
			continue; // the producer's own queue
		EXPECT_EQ((int)m.u.stats_item.node, node) << "the broker put the queue elsewhere";
		EXPECT_EQ(sh_->queue_node[node].load(), node) << "the segment header says otherwise";
		std::string q = "-q" + std::to_string(m.u.stats_item.id) + "-";
		for (const char *seg : {"events", "consumer"}) {
			NumaMap map = NumaMapNamed(broker_.Pid(), q + seg);
			printf("numa-vm count: %s queue%s%s (consumer on node %d) pages %s\n",
			       huge ? "hugepage" : "normal-page", q.c_str(), seg, node,
			       map.Pages().c_str());
			ASSERT_FALSE(map.line.empty()) << "no mapping " << q << seg;
			EXPECT_EQ(map.line.find(" huge") != std::string::npos, huge) << map.line;
			EXPECT_GT(map.Total(), 0) << map.line;
			EXPECT_EQ(map.pages[node], map.Total())
				<< "queue" << q << seg << " of the consumer on node " << node
				<< " has pages off its node: " << map.line;
		}
	}
}

TEST_F(NumaVm, EveryQueueSegmentsPagesAreOnItsConsumersNode)
{
	ASSERT_TRUE(broker_.Start());
	CheckQueuePages(false);
}

TEST_F(NumaVm, EveryQueueSegmentsHugepagesAreOnItsConsumersNode)
{
	for (int n : nodes_) {
		std::string free = ReadFile(kNodeDir + "node" + std::to_string(n) +
					    "/hugepages/hugepages-2048kB/free_hugepages");
		if (atoi(free.c_str()) < 4)
			GTEST_SKIP() << "node " << n << " has " << atoi(free.c_str())
				     << " free 2 MiB hugepages, 4 needed (tools/numa-vm --hugepages 8)";
	}
	broker_.UseHugepages();
	ASSERT_TRUE(broker_.Start());
	CheckQueuePages(true);
}

// ---- balancing across nodes ------------------------------------------------------

// strict keeps node 0's records on node 0; onering tune numa=interleave
// (while everyone stays attached) spreads them over every node.
TEST_F(NumaVm, StrictKeepsRecordsOnTheNodeAndTuneToInterleaveSplitsThem)
{
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=rr,numa=strict"}));
	std::map<int, pid_t> c;
	for (int n : nodes_)
		c[n] = StartConsumer(n, "g", 4096);
	Producer();
	Post("g", 100);
	ASSERT_TRUE(WaitFor([&] { return Published(c[nodes_[0]]) == 100; }));
	for (int n : nodes_)
		printf("numa-vm count: strict, %zu nodes: node %d got %llu of 100\n", nodes_.size(), n,
		       (unsigned long long)Published(c[n]));
	printf("numa-vm count: strict, %zu nodes: spilled %llu\n", nodes_.size(),
	       (unsigned long long)Spilled("g"));
	for (size_t i = 1; i < nodes_.size(); i++)
		EXPECT_EQ(Published(c[nodes_[i]]), 0u) << "strict sent a record to node " << nodes_[i];
	EXPECT_EQ(Spilled("g"), 0u);

	int st;
	std::string out = RunCommand(std::string(ONERING_TOOL_PATH) + " tune --name " +
					     broker_.Name() + " --socket-dir " + broker_.Dir() +
					     " --group g numa=interleave",
				     &st);
	ASSERT_EQ(st, 0) << out;
	const int each = 100;
	Post("g", each * (int)nodes_.size());
	uint64_t want0 = 100 + each;
	ASSERT_TRUE(WaitFor([&] { return Published(c[nodes_[0]]) == want0; }))
		<< Published(c[nodes_[0]]);
	for (int n : nodes_) {
		uint64_t got = Published(c[n]) - (n == nodes_[0] ? 100 : 0);
		printf("numa-vm count: interleave, %zu nodes: node %d got %llu of %d\n", nodes_.size(),
		       n, (unsigned long long)got, each * (int)nodes_.size());
		EXPECT_EQ(got, (uint64_t)each) << "interleave: node " << n;
	}
}

// spill:50 leaves node 0 only once its queue is over half full, and then
// for the nearest node by the kernel's distance table (on the 4-node guest
// that is node 2 at 20, not node 1 at 40).
TEST_F(NumaVm, SpillGoesToTheNearestNodeByTheRealDistanceTable)
{
	std::vector<int> row = Distances(nodes_[0]);
	ASSERT_EQ(row.size(), nodes_.size());
	size_t nearest = 1;
	for (size_t i = 1; i < row.size(); i++)
		if (row[i] < row[nearest])
			nearest = i;
	ASSERT_TRUE(broker_.Start({"--group", "g:policy=rr,numa=spill:50"}));
	std::map<int, pid_t> c;
	for (int n : nodes_)
		c[n] = StartConsumer(n, "g", 64);
	Producer();
	// 33 records fit under 50 % of 64 (at most 32 used when each is decided).
	Post("g", 33);
	ASSERT_TRUE(WaitFor([&] { return Published(c[nodes_[0]]) == 33; }));
	Post("g", 20);
	ASSERT_TRUE(WaitFor([&] {
		uint64_t t = 0;
		for (int n : nodes_)
			t += Published(c[n]);
		return t == 53;
	}));
	for (size_t i = 0; i < nodes_.size(); i++)
		printf("numa-vm count: spill:50, %zu nodes: node %d (distance %d) got %llu of 53\n",
		       nodes_.size(), nodes_[i], row[i], (unsigned long long)Published(c[nodes_[i]]));
	printf("numa-vm count: spill:50, %zu nodes: spilled %llu\n", nodes_.size(),
	       (unsigned long long)Spilled("g"));
	EXPECT_EQ(Published(c[nodes_[0]]), 43u);
	EXPECT_EQ(Published(c[nodes_[nearest]]), 10u)
		<< "the spill did not go to node " << nodes_[nearest] << " (distance " << row[nearest]
		<< ")";
	for (size_t i = 1; i < nodes_.size(); i++) {
		if (i != nearest) {
			EXPECT_EQ(Published(c[nodes_[i]]), 0u)
				<< "spilled to node " << nodes_[i] << " (distance " << row[i]
				<< ") past the nearest";
		}
	}
	EXPECT_EQ(Spilled("g"), 10u);
}

// ---- a NIC homed on a node -----------------------------------------------------------

TEST_F(NumaVm, NicVdevHomedOnTheLastNodeIsPolledByThatNodesPoller)
{
	const int node = nodes_.back();
	ASSERT_TRUE(broker_.Start({"--port", "net_null0:group=pk,snaplen=64,node=" +
						     std::to_string(node)},
				  "t",
				  {"--no-huge", "--no-pci", "--no-shconf", "-m", "128", "--vdev",
				   "net_null0", "--file-prefix", "numavm-" + std::to_string(getpid())}));
	pid_t consumer = StartConsumer(node, "pk", 1024, 64);
	ASSERT_TRUE(WaitFor([&] { return Published(consumer) >= 1000; }))
		<< "no packets reached the consumer on node " << node;
	int rxq_poller = -1, rxq_node = -1;
	uint64_t delivered = 0;
	for (auto &m : Stats())
		if (m.u.stats_item.what == ONERING_STATS_RXQ) {
			rxq_poller = (int)m.u.stats_item.owner_pid;
			rxq_node = (int)m.u.stats_item.node;
			delivered = m.u.stats_item.counter[ONERING_RXQC_DELIVERED];
		}
	EXPECT_EQ(rxq_node, node);
	EXPECT_GT(delivered, 0u);
	std::map<int, pid_t> pollers = Pollers(broker_.Pid());
	ASSERT_TRUE(pollers.count(rxq_poller)) << "no poller " << rxq_poller;
	std::vector<int> cpus = AllowedCpus(broker_.Pid(), pollers[rxq_poller]);
	ASSERT_EQ(cpus.size(), 1u) << "the rx queue's poller is not pinned";
	EXPECT_EQ(NodeOfCpu(cpus[0]), node) << "the rx queue's poller runs on CPU " << cpus[0];
	printf("numa-vm count: net_null0 node=%d: rx queue on poller %d (CPU %d, node %d), %llu "
	       "records delivered\n",
	       node, rxq_poller, cpus[0], NodeOfCpu(cpus[0]), (unsigned long long)delivered);
}

// ---- what the tools print --------------------------------------------------------------

// The kernel's distance from node a to node b (sysfs rows list every
// online node in id order).
int SysDistance(int a, int b)
{
	std::vector<int> all = Nodes(), row = Distances(a);
	for (size_t i = 0; i < all.size() && i < row.size(); i++)
		if (all[i] == b)
			return row[i];
	return -1;
}

// The distance rows as onering topo and --check print them (numa/plan.c),
// nodes in the tools' order: hwloc's, which groups near nodes together (on
// the 4-node guest 0, 2, 1, 3), not sorted.
std::string DistanceText(const std::vector<int> &order)
{
	char buf[64];
	std::string s = "distances     node";
	for (int n : order) {
		snprintf(buf, sizeof(buf), " %4d", n);
		s += buf;
	}
	s += "\n";
	for (int a : order) {
		snprintf(buf, sizeof(buf), "              %-4d", a);
		s += buf;
		for (int b : order) {
			snprintf(buf, sizeof(buf), " %4d", SysDistance(a, b));
			s += buf;
		}
		s += "\n";
	}
	return s;
}

TEST_F(NumaVm, TopoAndCheckPrintTheKernelsNodesAndDistances)
{
	int st;
	std::string out = RunCommand(std::string(ONERING_TOOL_PATH) + " topo --json", &st);
	ASSERT_EQ(st, 0) << out;
	json_error_t jerr;
	json_t *root = json_loads(out.c_str(), 0, &jerr);
	ASSERT_NE(root, nullptr) << jerr.text << "\n" << out;
	EXPECT_TRUE(json_is_false(json_object_get(root, "synthetic")));
	json_t *nodes = json_object_get(root, "nodes"), *dist = json_object_get(root, "distances");
	ASSERT_EQ(json_array_size(nodes), nodes_.size()) << out;
	ASSERT_EQ(json_array_size(dist), nodes_.size()) << out;
	EXPECT_EQ(json_array_size(json_object_get(root, "pollers")), nodes_.size()) << out;
	std::vector<int> order; // the tools' node order
	for (size_t i = 0; i < json_array_size(nodes); i++)
		order.push_back((int)json_integer_value(json_object_get(json_array_get(nodes, i), "node")));
	EXPECT_EQ(std::set<int>(order.begin(), order.end()),
		  std::set<int>(nodes_.begin(), nodes_.end()));
	for (size_t i = 0; i < order.size(); i++) {
		json_t *n = json_array_get(nodes, i), *cpus = json_object_get(n, "cpus");
		EXPECT_TRUE(json_is_true(json_object_get(n, "memory_on_this_machine")));
		std::vector<int> want = NodeCpus(order[i]), got;
		for (size_t k = 0; k < json_array_size(cpus); k++)
			got.push_back((int)json_integer_value(json_array_get(cpus, k)));
		EXPECT_EQ(got, want) << "node " << order[i];
		std::vector<int> row, jrow;
		for (size_t k = 0; k < order.size(); k++) {
			row.push_back(SysDistance(order[i], order[k]));
			jrow.push_back((int)json_integer_value(json_array_get(json_array_get(dist, i), k)));
		}
		EXPECT_EQ(jrow, row) << "distances from node " << order[i] << " (columns in the order "
				     << "of \"nodes\")";
	}
	json_decref(root);

	std::string want = DistanceText(order);
	out = RunCommand(std::string(ONERING_TOOL_PATH) + " topo", &st);
	EXPECT_EQ(st, 0) << out;
	EXPECT_NE(out.find(want), std::string::npos) << "want:\n" << want << "got:\n" << out;
	std::string dir = onering_test::MakeTempDir();
	out = RunCommand(std::string(ONERINGD_PATH) + " --check --socket-dir " + dir, &st);
	rmdir(dir.c_str());
	EXPECT_EQ(st, 0) << out;
	EXPECT_NE(out.find(want), std::string::npos) << "want:\n" << want << "got:\n" << out;
	for (size_t i = 0; i < order.size(); i++)
		EXPECT_NE(out.find("poller " + std::to_string(i) + (i < 10 ? "      " : "     ") +
				   "node " + std::to_string(order[i]) + ", CPU "),
			  std::string::npos)
			<< out;
	printf("numa-vm count: onering topo and oneringd --check on %zu nodes:\n%s", nodes_.size(),
	       want.c_str());
}

} // namespace
