/* SPDX-License-Identifier: MIT */
/*
 * onering's commands in DPDK telemetry (broker/telemetry.c), so that
 * dpdk-telemetry.py shows the broker beside DPDK's own /ethdev, /eal ...:
 *
 *   /onering/info     the broker: name, version, pid, pollers, its counters
 *   /onering/pollers  poller indices; ",N": poller N's counters, cpu, node
 *   /onering/queues   queue ids; ",ID": its counters, owner, group, poller
 *   /onering/groups   group ids; ",ID" or ",NAME": settings and counters
 *   /onering/ports    DPDK port ids; ",P": the port's counters and its rx
 *                     queues' (one dict each)
 *
 * Counters appear under the names of their tables (shm/counters.h), the
 * names `onering stat` prints. A bad parameter answers -EINVAL, which the
 * telemetry library sends as {"/onering/...": null}.
 *
 * Like nic.c, built with DPDK's flags in the broker_nic library; this
 * header carries no DPDK type. The fuzz target, which has no DPDK, stubs
 * broker_telemetry_fini (tests/fuzz/nic_stub.c).
 */
#ifndef ONERING_BROKER_TELEMETRY_H
#define ONERING_BROKER_TELEMETRY_H

#include <stddef.h>

struct broker;

/*
 * Register the /onering/ commands and let them read b. Call once the
 * EAL is up and the ports are set up (their rx queues are fixed from then
 * on). Returns 0, or a negative errno after logging which command could
 * not be registered (the broker runs on without them).
 * Context: control thread.
 */
int broker_telemetry_init(struct broker *b);

/*
 * Stop answering for b: from its return no command reads b (each answers
 * null), so b's queues, groups and ports may be torn down. Waits for a
 * command being answered now. Safe without broker_telemetry_init.
 * Context: control thread, before broker_state_fini.
 */
void broker_telemetry_fini(struct broker *b);

/*
 * May DPDK create its telemetry socket for this --file-prefix, safely?
 * DPDK 22.11 fails rte_eal_init when the socket's path is too long, and
 * puts the socket in a directory another user may control when its own
 * runtime directory cannot be made; so the broker asks first when it is
 * the one turning telemetry on. Checks, where the EAL will put it
 * ($RUNTIME_DIRECTORY, else /var/run as root, else $XDG_RUNTIME_DIR or
 * /tmp; then dpdk/PREFIX/dpdk_telemetry.v2): the path fits a Unix socket
 * address; dpdk/ and dpdk/PREFIX/, where they exist, are directories (not
 * symlinks) of this uid that no one else may write. Returns 0, or
 * -ENAMETOOLONG, -EPERM or -ENOTDIR with the reason and its fix in err.
 * Context: any thread; lstat system calls.
 */
int broker_telemetry_preflight(const char *file_prefix, char *err, size_t err_size);

#endif /* ONERING_BROKER_TELEMETRY_H */
