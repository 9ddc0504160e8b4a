/* SPDX-License-Identifier: MIT */
/*
 * onering doctor: what on this host would make a broker slower or fail, found
 * before it does. Each check reads the kernel's view (sysfs, procfs, rlimits,
 * one io_uring_setup) and says ok, info, warn or error, with the command that
 * fixes it. Exit status: 0 when nothing is at warn or worse, 1 otherwise,
 * 2 for a usage error. Nothing here changes the machine.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "numa/plan.h"
#include "numa/topology.h"
#include "shm/proto.h"
#include "tool.h"

enum severity { SEV_OK, SEV_INFO, SEV_WARN, SEV_ERROR };
static const char *const severity_names[] = {"ok", "info", "warn", "error"};

struct doctor {
	bool json;
	json_t *findings;    /* --json */
	enum severity worst;
};

/* One finding: check name, severity, what was seen, and (fix non-NULL) the
 * command that fixes it. */
static void report(struct doctor *d, const char *check, enum severity sev, const char *fix,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void report(struct doctor *d, const char *check, enum severity sev, const char *fix,
		   const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (sev > d->worst)
		d->worst = sev;
	if (d->json) {
		json_t *o = json_pack("{s:s, s:s, s:s}", "check", check, "severity",
				      severity_names[sev], "message", what);
		if (fix)
			json_object_set_new(o, "fix", json_string(fix));
		json_array_append_new(d->findings, o);
		return;
	}
	printf("%-5s %-10s %s\n", severity_names[sev], check, what);
	if (fix)
		printf("      %-10s fix: %s\n", "", fix);
}

/* The first line of a file, trimmed; false if unreadable. */
static bool read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	bool ok = f && fgets(buf, (int)len, f);

	if (f)
		fclose(f);
	if (!ok)
		return false;
	buf[strcspn(buf, "\n")] = '\0';
	return true;
}

static long read_long(const char *path, long fallback)
{
	char buf[64];

	return read_line(path, buf, sizeof(buf)) ? strtol(buf, NULL, 10) : fallback;
}

/* Is cpu in a kernel CPU list such as "2-3,6"? */
static bool cpu_in_list(const char *list, int cpu)
{
	const char *p = list;

	while (*p) {
		char *end;
		long a = strtol(p, &end, 10), b = a;
		if (end == p)
			return false;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		if (cpu >= a && cpu <= b)
			return true;
		p = *end == ',' ? end + 1 : end;
		if (*end != ',')
			break;
	}
	return false;
}

/* The value of a kernel command-line parameter (name=VALUE), or "". */
static void cmdline_param(const char *name, char *out, size_t len)
{
	char cmd[4096], *save = NULL;
	size_t n = strlen(name);

	out[0] = '\0';
	if (!read_line("/proc/cmdline", cmd, sizeof(cmd)))
		return;
	for (char *t = strtok_r(cmd, " ", &save); t; t = strtok_r(NULL, " ", &save))
		if (strncmp(t, name, n) == 0 && t[n] == '=')
			snprintf(out, len, "%s", t + n + 1);
}

static void check_hugepages(struct doctor *d, const struct onering_plan *plan)
{
	long total = 0;

	for (unsigned i = 0; i < plan->nr_pollers; i++) {
		char base[160], path[224];
		int node = plan->pollers[i].node < 0 ? 0 : plan->pollers[i].node;
		snprintf(base, sizeof(base),
			 "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB", node);
		snprintf(path, sizeof(path), "%s/nr_hugepages", base);
		long nr = read_long(path, -1);
		snprintf(path, sizeof(path), "%s/free_hugepages", base);
		long free_pages = read_long(path, -1);
		if (nr < 0) {
			report(d, "hugepages", SEV_INFO, NULL, "node %d: no 2 MiB hugepage pool in "
			       "sysfs (queues use normal pages)", node);
			continue;
		}
		total += nr;
		char fix[256];
		snprintf(fix, sizeof(fix), "echo 64 > %s/nr_hugepages (as root; or vm.nr_hugepages "
			 "in /etc/sysctl.d/)", base);
		if (nr == 0)
			report(d, "hugepages", SEV_WARN, fix, "node %d (poller cpu %d): no 2 MiB "
			       "hugepages reserved; queue segments fall back to normal pages (more "
			       "TLB misses)", node, plan->pollers[i].cpu);
		else if (free_pages == 0)
			report(d, "hugepages", SEV_WARN, fix, "node %d: all %ld hugepages in use",
			       node, nr);
		else
			report(d, "hugepages", SEV_OK, NULL, "node %d: %ld reserved, %ld free", node,
			       nr, free_pages);
	}
	(void)total;
}

static void check_isolation(struct doctor *d, const struct onering_plan *plan)
{
	char isolated[256] = "", nohz[256] = "", nocbs[256] = "";

	read_line("/sys/devices/system/cpu/isolated", isolated, sizeof(isolated));
	read_line("/sys/devices/system/cpu/nohz_full", nohz, sizeof(nohz));
	cmdline_param("rcu_nocbs", nocbs, sizeof(nocbs));
	for (unsigned i = 0; i < plan->nr_pollers; i++) {
		int cpu = plan->pollers[i].cpu;
		char fix[256];
		snprintf(fix, sizeof(fix), "add \"isolcpus=%d nohz_full=%d rcu_nocbs=%d\" to "
			 "GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot",
			 cpu, cpu, cpu);
		bool iso = cpu_in_list(isolated, cpu), tick = cpu_in_list(nohz, cpu),
		     rcu = cpu_in_list(nocbs, cpu);
		if (!iso)
			report(d, "isolcpus", SEV_WARN, fix, "poller cpu %d is not isolated: the "
			       "scheduler puts other work on it", cpu);
		else
			report(d, "isolcpus", SEV_OK, NULL, "poller cpu %d is isolated", cpu);
		if (!tick || !rcu)
			report(d, "nohz", SEV_INFO, iso ? fix : NULL, "poller cpu %d is not in %s%s%s "
			       "(timer ticks and RCU callbacks interrupt a busy poller)", cpu,
			       tick ? "" : "nohz_full", !tick && !rcu ? " nor " : "",
			       rcu ? "" : "rcu_nocbs");
	}
}

static void check_governor(struct doctor *d, const struct onering_plan *plan)
{
	for (unsigned i = 0; i < plan->nr_pollers; i++) {
		int cpu = plan->pollers[i].cpu;
		char path[128], gov[64], fix[256];
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/cpufreq/scaling_governor",
			 cpu);
		if (!read_line(path, gov, sizeof(gov))) {
			report(d, "governor", SEV_INFO, NULL, "cpu %d: no cpufreq governor (a VM, or "
			       "frequency fixed by the firmware)", cpu);
			continue;
		}
		snprintf(fix, sizeof(fix), "echo performance > %s (or cpupower frequency-set -g "
			 "performance)", path);
		if (strcmp(gov, "performance") == 0)
			report(d, "governor", SEV_OK, NULL, "cpu %d: performance", cpu);
		else
			report(d, "governor", SEV_WARN, fix, "cpu %d: governor %s scales the "
			       "poller's clock down between bursts", cpu, gov);
	}
}

static void check_nics(struct doctor *d, const struct onering_topo *t,
		       const struct onering_plan *plan)
{
	struct onering_topo_nic nics[16];
	int n = onering_topo_nics(t, nics, 16);

	if (n <= 0) {
		report(d, "nic", SEV_INFO, NULL, "no network PCI device found (virtual devices only)");
		return;
	}
	for (int i = 0; i < n; i++) {
		bool served = nics[i].node < 0;
		for (unsigned p = 0; p < plan->nr_pollers && !served; p++)
			served = plan->pollers[p].node == nics[i].node;
		if (nics[i].node < 0)
			report(d, "nic", SEV_INFO, NULL, "%s (%s): the firmware gives no NUMA node",
			       nics[i].busid, nics[i].ifname[0] ? nics[i].ifname : "-");
		else if (!served)
			report(d, "nic", SEV_WARN, "give oneringd a poller core on that node "
			       "(--poller NODE:CPU)", "%s on node %d has no poller on its node: "
			       "every packet crosses the interconnect", nics[i].busid, nics[i].node);
		else
			report(d, "nic", SEV_OK, NULL, "%s on node %d: a poller is local", nics[i].busid,
			       nics[i].node);
	}
}

static void check_limits(struct doctor *d)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_MEMLOCK, &r) == 0) {
		if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < 64ul << 20 && geteuid() != 0)
			report(d, "memlock", SEV_WARN, "ulimit -l unlimited (or LimitMEMLOCK=infinity "
			       "in the unit)", "memlock limit %lu KiB: hugepage segments and DPDK "
			       "may fail to lock memory", (unsigned long)(r.rlim_cur >> 10));
		else
			report(d, "memlock", SEV_OK, NULL, "memlock limit %s",
			       r.rlim_cur == RLIM_INFINITY ? "unlimited" : "enough (or root)");
	}
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		if (r.rlim_max < 65536)
			report(d, "nofile", SEV_WARN, "raise the hard limit: LimitNOFILE=1048576 in "
			       "the unit, or nofile in /etc/security/limits.conf", "fd limit %lu "
			       "(hard): the broker holds a duplicate of every subscribed fd",
			       (unsigned long)r.rlim_max);
		else
			report(d, "nofile", SEV_OK, NULL, "fd limit %lu soft, %lu hard (the broker "
			       "raises soft to hard)", (unsigned long)r.rlim_cur,
			       (unsigned long)r.rlim_max);
	}
}

static void check_socket_dir(struct doctor *d)
{
	char dir[256], fix[640];
	struct stat st;

	if (onering_socket_dir(NULL, dir, sizeof(dir)) < 0)
		return;
	if (stat(dir, &st) < 0) {
		report(d, "socketdir", SEV_INFO, NULL, "%s does not exist yet (the broker makes it "
		       "0700, or 0750/0711 when other ids are served)", dir);
		return;
	}
	snprintf(fix, sizeof(fix), "chown %u %s && chmod 0700 %s (or remove it and let the "
		 "broker make it)", (unsigned)geteuid(), dir, dir);
	if (!S_ISDIR(st.st_mode))
		report(d, "socketdir", SEV_ERROR, fix, "%s is not a directory", dir);
	else if (st.st_uid != geteuid() && st.st_uid != 0)
		report(d, "socketdir", SEV_ERROR, fix, "%s belongs to uid %u: another user could "
		       "replace the socket", dir, (unsigned)st.st_uid);
	else if (st.st_mode & 022)
		report(d, "socketdir", SEV_ERROR, fix, "%s is group- or world-writable (mode %03o)",
		       dir, (unsigned)(st.st_mode & 0777));
	else
		report(d, "socketdir", SEV_OK, NULL, "%s: owner uid %u, mode %03o", dir,
		       (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
}

static void check_kernel(struct doctor *d)
{
	struct io_uring_params p;
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2) {
		int v = major * 100 + minor;
		if (v < 511)
			report(d, "kernel", SEV_ERROR, "a kernel of 5.11 or later", "%s: no "
			       "epoll_pwait2, which the broker's poller needs", u.release);
		else
			report(d, "kernel", SEV_OK, NULL, "%s: epoll_pwait2, pidfd_open, memfd "
			       "seals%s", u.release, v >= 605 ? ", SO_PEERPIDFD" : " (SO_PEERPIDFD "
			       "from 6.5: pidfd_open is used instead)");
	}
	memset(&p, 0, sizeof(p));
	long fd = syscall(__NR_io_uring_setup, 1, &p);
	if (fd >= 0) {
		close((int)fd);
		report(d, "io_uring", SEV_OK, NULL, "available");
	} else {
		report(d, "io_uring", SEV_WARN, "sysctl kernel.io_uring_disabled=0 (if the kernel "
		       "has it), or a kernel with CONFIG_IO_URING", "io_uring_setup: %s: the "
		       "io_uring examples and benchmarks cannot run", strerror(errno));
	}
}

int tool_doctor(int argc, char **argv)
{
	static const struct option opts[] = {{"cores", required_argument, NULL, 'c'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int cores[ONERING_PLAN_MAX_POLLERS], opt;
	unsigned nr_cores = 0;
	struct doctor d = {0};

	while ((opt = onering_cli_getopt("onering doctor", argc, argv, "h", opts)) != -1) {
		switch (opt) {
		case 'c':
			if (tool_parse_cpu_list(optarg, cores, ONERING_PLAN_MAX_POLLERS, &nr_cores) < 0) {
				return onering_cli_bad_value("onering doctor", "cores", optarg,
							     "expected a comma list of CPU numbers");
			}
			break;
		case 'j':
			d.json = true;
			break;
		case 'h':
			printf("usage: onering doctor [--cores LIST] [--json]\n"
			       "Checks this host for what makes a broker slow or fail: hugepages per\n"
			       "node, isolcpus/nohz_full/rcu_nocbs and the cpufreq governor of the\n"
			       "poller cores (--cores, else the cores oneringd would choose), NICs'\n"
			       "nodes against the pollers', memlock and fd limits, the socket\n"
			       "directory, the kernel and io_uring. Each finding: ok, info, warn or\n"
			       "error, with the command that fixes it. Exit 1 if any is warn or error.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		return onering_cli_extra("onering doctor", argv[optind]);
	}
	struct onering_topo *t;
	struct onering_plan plan;
	char err[1024];
	if (tool_plan_load(NULL, cores, nr_cores, &t, &plan, err, sizeof(err)) < 0) {
		fprintf(stderr, "onering doctor: %s\n", err);
		return 1;
	}
	d.findings = json_array();
	check_hugepages(&d, &plan);
	check_isolation(&d, &plan);
	check_governor(&d, &plan);
	check_nics(&d, t, &plan);
	check_limits(&d);
	check_socket_dir(&d);
	check_kernel(&d);
	onering_topo_free(t);
	if (d.json) {
		json_t *root = json_pack("{s:o, s:s}", "findings", d.findings, "worst",
					 severity_names[d.worst]);
		json_dumpf(root, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(root);
	} else {
		json_decref(d.findings);
		printf("%s\n", d.worst >= SEV_WARN ? "something to fix: see warn/error above"
						   : "nothing to fix");
	}
	return d.worst >= SEV_WARN ? 1 : 0;
}
