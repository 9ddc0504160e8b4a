// SPDX-License-Identifier: MIT
// The topology (numa/topology.c): node distances and PCI-device locality on
// the real machine, on hwloc synthetic topologies, and on an XML topology
// with four nodes, a distance matrix and NICs (loaded through $HWLOC_XMLFILE).
#include <gtest/gtest.h>

#include <dirent.h>
#include <hwloc.h>
#include <numa.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "numa/placement.h"
#include "numa/topology.h"

namespace {

// Four packages (node OS indexes 0, 1, 4, 5: the gap checks OS vs logical
// indexes). Packages 0 and 1 share a group holding an NVMe drive; package 2
// (node 4) holds a NIC with interface ens4f1; a second NIC hangs off the
// machine (no locality). Three matrices: a bandwidth one and a latency one
// named "other" that must both lose to the latency one named "NUMALatency"
// (asymmetric: 0->4 is 20, 4->0 is 21).
const char kFourNodeXml[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE topology SYSTEM "hwloc2.dtd">
<topology version="2.0">
 <object type="Machine" os_index="0" cpuset="0xf" complete_cpuset="0xf" allowed_cpuset="0xf" nodeset="0x33" complete_nodeset="0x33" allowed_nodeset="0x33" gp_index="1">
  <object type="Group" cpuset="0x3" complete_cpuset="0x3" nodeset="0x3" complete_nodeset="0x3" gp_index="2">
   <object type="Package" os_index="0" cpuset="0x1" complete_cpuset="0x1" nodeset="0x1" complete_nodeset="0x1" gp_index="3">
    <object type="NUMANode" os_index="0" cpuset="0x1" complete_cpuset="0x1" nodeset="0x1" complete_nodeset="0x1" gp_index="4" local_memory="1073741824"/>
    <object type="Core" os_index="0" cpuset="0x1" complete_cpuset="0x1" nodeset="0x1" complete_nodeset="0x1" gp_index="5">
     <object type="PU" os_index="0" cpuset="0x1" complete_cpuset="0x1" nodeset="0x1" complete_nodeset="0x1" gp_index="6"/>
    </object>
   </object>
   <object type="Package" os_index="1" cpuset="0x2" complete_cpuset="0x2" nodeset="0x2" complete_nodeset="0x2" gp_index="7">
    <object type="NUMANode" os_index="1" cpuset="0x2" complete_cpuset="0x2" nodeset="0x2" complete_nodeset="0x2" gp_index="8" local_memory="1073741824"/>
    <object type="Core" os_index="1" cpuset="0x2" complete_cpuset="0x2" nodeset="0x2" complete_nodeset="0x2" gp_index="9">
     <object type="PU" os_index="1" cpuset="0x2" complete_cpuset="0x2" nodeset="0x2" complete_nodeset="0x2" gp_index="10"/>
    </object>
   </object>
   <object type="Bridge" gp_index="11" bridge_type="0-1" depth="0" bridge_pci="0000:[40-40]">
    <object type="PCIDev" gp_index="12" pci_busid="0000:40:00.0" pci_type="0108 [144d:a808] [144d:a801] 00" pci_link_speed="0.000000"/>
   </object>
  </object>
  <object type="Package" os_index="2" cpuset="0x4" complete_cpuset="0x4" nodeset="0x10" complete_nodeset="0x10" gp_index="13">
   <object type="NUMANode" os_index="4" cpuset="0x4" complete_cpuset="0x4" nodeset="0x10" complete_nodeset="0x10" gp_index="14" local_memory="1073741824"/>
   <object type="Core" os_index="2" cpuset="0x4" complete_cpuset="0x4" nodeset="0x10" complete_nodeset="0x10" gp_index="15">
    <object type="PU" os_index="2" cpuset="0x4" complete_cpuset="0x4" nodeset="0x10" complete_nodeset="0x10" gp_index="16"/>
   </object>
   <object type="Bridge" gp_index="17" bridge_type="0-1" depth="0" bridge_pci="0000:[81-81]">
    <object type="PCIDev" gp_index="18" pci_busid="0000:81:00.1" pci_type="0200 [8086:1572] [8086:0000] 01" pci_link_speed="0.000000">
     <object type="OSDev" gp_index="19" name="ens4f1" osdev_type="2"/>
    </object>
   </object>
  </object>
  <object type="Package" os_index="3" cpuset="0x8" complete_cpuset="0x8" nodeset="0x20" complete_nodeset="0x20" gp_index="20">
   <object type="NUMANode" os_index="5" cpuset="0x8" complete_cpuset="0x8" nodeset="0x20" complete_nodeset="0x20" gp_index="21" local_memory="1073741824"/>
   <object type="Core" os_index="3" cpuset="0x8" complete_cpuset="0x8" nodeset="0x20" complete_nodeset="0x20" gp_index="22">
    <object type="PU" os_index="3" cpuset="0x8" complete_cpuset="0x8" nodeset="0x20" complete_nodeset="0x20" gp_index="23"/>
   </object>
  </object>
  <object type="Bridge" gp_index="24" bridge_type="0-1" depth="0" bridge_pci="0000:[00-00]">
   <object type="PCIDev" gp_index="25" pci_busid="0000:00:03.0" pci_type="0200 [8086:1572] [8086:0000] 01" pci_link_speed="0.000000"/>
  </object>
 </object>
 <distances2 type="NUMANode" nbobjs="4" kind="10" name="bandwidth" indexing="os">
  <indexes length="8">0 1 4 5 </indexes>
  <u64values length="48">90 91 92 93 94 95 96 97 98 99 90 91 92 93 94 95 </u64values>
 </distances2>
 <distances2 type="NUMANode" nbobjs="4" kind="6" name="other" indexing="os">
  <indexes length="8">0 1 4 5 </indexes>
  <u64values length="48">70 71 72 73 74 75 76 77 78 79 70 71 72 73 74 75 </u64values>
 </distances2>
 <distances2 type="NUMANode" nbobjs="4" kind="6" name="NUMALatency" indexing="os">
  <indexes length="8">0 1 4 5 </indexes>
  <u64values length="48">10 12 20 22 12 10 22 20 21 22 10 12 22 20 12 10 </u64values>
 </distances2>
</topology>
)";

std::string ReadLine(const std::string &path)
{
	std::ifstream in(path);
	std::string line;
	std::getline(in, line);
	return line;
}

// /sys/bus/pci/devices/<busid>/<file> for every device, by bus id.
std::map<std::string, std::string> SysfsPci(const char *file)
{
	std::map<std::string, std::string> out;
	DIR *d = opendir("/sys/bus/pci/devices");
	if (!d)
		return out;
	while (struct dirent *e = readdir(d)) {
		if (e->d_name[0] == '.')
			continue;
		out[e->d_name] = ReadLine(std::string("/sys/bus/pci/devices/") + e->d_name + "/" + file);
	}
	closedir(d);
	return out;
}

// Kernel interfaces of a PCI device: those of /sys/class/net whose device
// path goes through it (directly, or through a virtio device below it).
std::vector<std::string> SysfsNetdevs(const std::string &busid)
{
	std::vector<std::string> out;
	DIR *d = opendir("/sys/class/net");
	if (!d)
		return out;
	while (struct dirent *e = readdir(d)) {
		if (e->d_name[0] == '.')
			continue;
		char *real = realpath((std::string("/sys/class/net/") + e->d_name).c_str(), nullptr);
		if (real && std::string(real).find("/" + busid + "/") != std::string::npos)
			out.push_back(e->d_name);
		free(real);
	}
	closedir(d);
	return out;
}

class TopologyTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		// The machine unless a test says otherwise: no inherited fake topology.
		for (const char *var : {"HWLOC_XMLFILE", "HWLOC_SYNTHETIC"}) {
			const char *v = getenv(var);
			if (v)
				saved_env_[var] = v;
			unsetenv(var);
		}
	}
	void TearDown() override
	{
		onering_topo_free(topo_);
		unsetenv("HWLOC_XMLFILE");
		for (const auto &kv : saved_env_)
			setenv(kv.first.c_str(), kv.second.c_str(), 1);
		if (!xml_path_.empty())
			unlink(xml_path_.c_str());
	}
	void Load(const char *synthetic)
	{
		char err[256];
		ASSERT_EQ(onering_topo_load(synthetic, &topo_, err, sizeof(err)), 0) << err;
	}
	// Writes the XML to a temporary file and loads it as onering_topo_load(NULL)
	// would see it on a machine with HWLOC_XMLFILE set.
	void LoadXml(const char *xml)
	{
		char path[] = "/tmp/onering_topo_test_XXXXXX";
		int fd = mkstemp(path);
		ASSERT_GE(fd, 0);
		xml_path_ = path;
		size_t len = strlen(xml);
		ASSERT_EQ(write(fd, xml, len), (ssize_t)len);
		close(fd);
		setenv("HWLOC_XMLFILE", path, 1);
		Load(nullptr);
		unsetenv("HWLOC_XMLFILE");
	}
	int PciNode(const char *busid)
	{
		err_[0] = '\0';
		return onering_topo_pci_node(topo_, busid, err_, sizeof(err_));
	}
	onering_topo *topo_ = nullptr;
	std::map<std::string, std::string> saved_env_;
	std::string xml_path_;
	char err_[512];
};

/* ---- distances --------------------------------------------------------------- */

TEST_F(TopologyTest, RealMachineDistancesAreLibnumasWithTenOnTheDiagonal)
{
	Load(nullptr);
	ASSERT_TRUE(onering_topo_is_this_system(topo_));
	int n = onering_topo_node_count(topo_);
	int first = onering_topo_node_at(topo_, 0);
	EXPECT_EQ(onering_topo_node_distance(topo_, first, first), 10);
	bool have_numa = numa_available() >= 0;
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < n; k++) {
			int a = onering_topo_node_at(topo_, i), b = onering_topo_node_at(topo_, k);
			int d = onering_topo_node_distance(topo_, a, b);
			if (have_numa && numa_distance(a, b) > 0) {
				EXPECT_EQ(d, numa_distance(a, b)) << a << "->" << b;
			}
			if (a == b) {
				EXPECT_EQ(d, 10) << a;
			} else {
				EXPECT_GT(d, 10) << a << "->" << b;
			}
		}
	}
}

/* ---- pinning ------------------------------------------------------------------ */

// The set a poller is created with: exactly its CPU on the real machine;
// nothing to pin on a synthetic one (its CPUs are not this machine's); an
// unknown CPU refused.
TEST_F(TopologyTest, TheCpuSetOfACpuHoldsThatCpuAlone)
{
	if (onering_numa_placement_off())
		GTEST_SKIP() << "ONERING_NO_PLACEMENT is set: nothing is pinned";
	Load(nullptr);
	ASSERT_TRUE(onering_topo_is_this_system(topo_));
	int last = onering_topo_cpu_at(topo_, onering_topo_cpu_count(topo_) - 1);
	cpu_set_t set;
	memset(&set, 0xff, sizeof(set));
	ASSERT_EQ(onering_topo_cpu_set(topo_, last, &set), 1);
	EXPECT_EQ(CPU_COUNT(&set), 1);
	EXPECT_TRUE(CPU_ISSET(last, &set));
	EXPECT_EQ(onering_topo_cpu_set(topo_, 4096, &set), -EINVAL);
	EXPECT_EQ(onering_topo_cpu_set(topo_, -1, &set), -EINVAL);

	onering_topo_free(topo_);
	topo_ = nullptr;
	Load("pack:2 numa:1 core:2 pu:1");
	EXPECT_EQ(onering_topo_cpu_set(topo_, 3, &set), 0);
	EXPECT_EQ(onering_topo_cpu_set(topo_, 4, &set), -EINVAL);
}

TEST_F(TopologyTest, UnknownNodesHaveNoDistance)
{
	Load(nullptr);
	int first = onering_topo_node_at(topo_, 0);
	EXPECT_EQ(onering_topo_node_distance(topo_, -1, first), -1);
	EXPECT_EQ(onering_topo_node_distance(topo_, first, -1), -1);
	EXPECT_EQ(onering_topo_node_distance(topo_, first, 4096), -1);
	EXPECT_EQ(onering_topo_node_distance(topo_, 4096, 4096), -1);
}

TEST_F(TopologyTest, SyntheticTopologyWithoutAMatrixGetsTenAndTwenty)
{
	Load("pack:2 numa:1 core:2 pu:1");
	ASSERT_FALSE(onering_topo_is_this_system(topo_));
	EXPECT_EQ(onering_topo_node_distance(topo_, 0, 0), 10);
	EXPECT_EQ(onering_topo_node_distance(topo_, 1, 1), 10);
	EXPECT_EQ(onering_topo_node_distance(topo_, 0, 1), 20);
	EXPECT_EQ(onering_topo_node_distance(topo_, 1, 0), 20);
	EXPECT_EQ(onering_topo_node_distance(topo_, 0, 2), -1);
	EXPECT_EQ(onering_topo_node_distance(topo_, 2, 2), -1);
}

TEST_F(TopologyTest, XmlLatencyMatrixIsReadByOsIndexRowIsFrom)
{
	LoadXml(kFourNodeXml);
	ASSERT_FALSE(onering_topo_is_this_system(topo_));
	ASSERT_EQ(onering_topo_node_count(topo_), 4);
	const int nodes[4] = {0, 1, 4, 5};
	const int want[4][4] = {{10, 12, 20, 22}, {12, 10, 22, 20}, {21, 22, 10, 12}, {22, 20, 12, 10}};
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(onering_topo_node_at(topo_, i), nodes[i]);
		for (int k = 0; k < 4; k++)
			EXPECT_EQ(onering_topo_node_distance(topo_, nodes[i], nodes[k]), want[i][k])
				<< nodes[i] << "->" << nodes[k]
				<< " (the NUMALatency matrix, not bandwidth or \"other\")";
	}
	EXPECT_EQ(onering_topo_node_distance(topo_, 2, 0), -1) << "no node 2: OS indexes skip it";
	EXPECT_EQ(onering_topo_node_distance(topo_, 0, 3), -1);
}

TEST_F(TopologyTest, IoDiscoveryLeavesCpusAndNodesAlone)
{
	Load(nullptr);
	hwloc_topology_t plain;
	ASSERT_EQ(hwloc_topology_init(&plain), 0);
	ASSERT_EQ(hwloc_topology_load(plain), 0);
	char want[1024], got[1024];
	EXPECT_EQ(hwloc_topology_export_synthetic(plain, want, sizeof(want), 0) < 0,
		  onering_topo_describe(topo_, got, sizeof(got)) < 0);
	EXPECT_STREQ(got, want);
	EXPECT_EQ(onering_topo_cpu_count(topo_), hwloc_get_nbobjs_by_type(plain, HWLOC_OBJ_PU));
	EXPECT_EQ(onering_topo_node_count(topo_),
		  hwloc_get_nbobjs_by_type(plain, HWLOC_OBJ_NUMANODE));
	for (int i = 0; i < onering_topo_cpu_count(topo_); i++)
		EXPECT_EQ(onering_topo_cpu_at(topo_, i),
			  (int)hwloc_get_obj_by_type(plain, HWLOC_OBJ_PU, (unsigned)i)->os_index);
	hwloc_topology_destroy(plain);
}

/* ---- PCI locality ------------------------------------------------------------ */

TEST_F(TopologyTest, EveryPciDeviceHasTheNodeSysfsGives)
{
	Load(nullptr);
	auto devices = SysfsPci("numa_node");
	if (devices.empty())
		GTEST_SKIP() << "no PCI devices in /sys/bus/pci/devices";
	bool single = onering_topo_node_count(topo_) == 1;
	for (const auto &kv : devices) {
		const std::string &busid = kv.first;
		int sysfs = kv.second.empty() ? -1 : atoi(kv.second.c_str());
		int node = PciNode(busid.c_str());
		if (sysfs >= 0) {
			EXPECT_EQ(node, sysfs) << busid << ": " << err_;
		} else if (single) {
			EXPECT_EQ(node, onering_topo_node_at(topo_, 0))
				<< busid << ": no locality, but the only node is the answer: " << err_;
		} else {
			EXPECT_EQ(node, -1) << busid;
			EXPECT_NE(std::string(err_).find("unknown"), std::string::npos) << err_;
		}
		// The short form names the same device in domain 0.
		if (busid.compare(0, 5, "0000:") == 0) {
			EXPECT_EQ(PciNode(busid.c_str() + 5), node) << busid << ": " << err_;
		}
	}
}

TEST_F(TopologyTest, AbsentPciDeviceIsENOENTAndNamed)
{
	Load(nullptr);
	ASSERT_EQ(SysfsPci("numa_node").count("fffe:fe:1f.7"), 0u);
	EXPECT_EQ(PciNode("fffe:fe:1f.7"), -ENOENT);
	EXPECT_NE(std::string(err_).find("no PCI device fffe:fe:1f.7"), std::string::npos) << err_;
	EXPECT_EQ(PciNode("fe:1f.7"), -ENOENT);
	EXPECT_NE(std::string(err_).find("0000:fe:1f.7"), std::string::npos) << err_;
}

TEST_F(TopologyTest, MalformedBusIdIsEINVAL)
{
	Load(nullptr);
	for (const char *bad : {"", "eth0", "00:03", "0000:00:03", "0000:00:20.0", "00:03.8",
				"100:00.0", "00:03.0x", "0000:00:03.0 ", "-1:00.0", "0x00:03.0"}) {
		EXPECT_EQ(PciNode(bad), -EINVAL) << '"' << bad << '"';
		EXPECT_NE(std::string(err_).find("bad PCI bus id"), std::string::npos) << err_;
	}
	EXPECT_EQ(onering_topo_pci_node(topo_, nullptr, nullptr, 0), -EINVAL);
}

TEST_F(TopologyTest, SyntheticTopologyHasNoPciDevicesOrNics)
{
	Load("pack:2 numa:1 core:2 pu:1");
	EXPECT_EQ(PciNode("0000:00:03.0"), -ENOENT);
	EXPECT_NE(std::string(err_).find("synthetic"), std::string::npos) << err_;
	onering_topo_nic nics[4];
	EXPECT_EQ(onering_topo_nics(topo_, nics, 4), 0);
}

TEST_F(TopologyTest, XmlPciDevicesTakeTheirAncestorsNode)
{
	LoadXml(kFourNodeXml);
	EXPECT_EQ(PciNode("0000:81:00.1"), 4) << err_ << " (under the package of node 4)";
	EXPECT_EQ(PciNode("81:00.1"), 4) << err_;
	EXPECT_EQ(PciNode("0000:40:00.0"), 0) << err_ << " (nodes 0 and 1: the lowest)";
	EXPECT_EQ(PciNode("0000:00:03.0"), -1) << "attached to the whole machine";
	EXPECT_NE(std::string(err_).find("unknown"), std::string::npos) << err_;
	EXPECT_EQ(PciNode("0000:00:04.0"), -ENOENT);
}

TEST_F(TopologyTest, XmlNicsAreListedWithInterfaceAndNode)
{
	LoadXml(kFourNodeXml);
	onering_topo_nic nics[4];
	ASSERT_EQ(onering_topo_nics(topo_, nics, 4), 2) << "the NVMe drive is not a NIC";
	std::map<std::string, const onering_topo_nic *> by_busid;
	for (const auto &nic : nics)
		by_busid[nic.busid] = &nic;
	ASSERT_EQ(by_busid.count("0000:81:00.1"), 1u);
	EXPECT_STREQ(by_busid["0000:81:00.1"]->ifname, "ens4f1");
	EXPECT_EQ(by_busid["0000:81:00.1"]->node, 4);
	ASSERT_EQ(by_busid.count("0000:00:03.0"), 1u);
	EXPECT_STREQ(by_busid["0000:00:03.0"]->ifname, "") << "no kernel interface (DPDK's)";
	EXPECT_EQ(by_busid["0000:00:03.0"]->node, -1) << "attached to the whole machine";
	// Counted past max, only max written.
	onering_topo_nic one[2] = {};
	EXPECT_EQ(onering_topo_nics(topo_, one, 1), 2);
	EXPECT_STREQ(one[0].busid, nics[0].busid);
	EXPECT_STREQ(one[1].busid, "") << "written past max";
	EXPECT_EQ(onering_topo_nics(topo_, nullptr, 0), 2);
}

TEST_F(TopologyTest, RealMachineNicsAreTheNetworkClassDevices)
{
	Load(nullptr);
	auto classes = SysfsPci("class");
	std::map<std::string, int> want; // busid -> 1 if class 02xxxx
	for (const auto &kv : classes)
		if (kv.second.compare(0, 4, "0x02") == 0 || !SysfsNetdevs(kv.first).empty())
			want[kv.first] = 1;
	if (want.empty())
		GTEST_SKIP() << "no network PCI device on this machine";
	std::vector<onering_topo_nic> nics(64);
	int n = onering_topo_nics(topo_, nics.data(), (int)nics.size());
	ASSERT_EQ(n, (int)want.size());
	for (int i = 0; i < n; i++) {
		const onering_topo_nic &nic = nics[i];
		EXPECT_EQ(want.count(nic.busid), 1u) << nic.busid;
		EXPECT_EQ(nic.node, PciNode(nic.busid)) << nic.busid;
		auto ifs = SysfsNetdevs(nic.busid);
		if (ifs.empty())
			EXPECT_STREQ(nic.ifname, "") << nic.busid;
		else
			EXPECT_NE(std::find(ifs.begin(), ifs.end(), nic.ifname), ifs.end())
				<< nic.busid << " " << nic.ifname;
	}
}

} // namespace
