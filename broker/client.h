/* SPDX-License-Identifier: MIT */
/*
 * A connection to the control socket, from accept to close (control
 * thread only).
 */
#ifndef ONERING_BROKER_CLIENT_H
#define ONERING_BROKER_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/rcu.h"

#define BROKER_MAX_PEER_GROUPS 32 /* supplementary gids kept per client */

/* Who a peer is, from the kernel (SO_PEERCRED, SO_PEERGROUPS) at connect. */
struct broker_cred {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint32_t nr_groups;
	gid_t groups[BROKER_MAX_PEER_GROUPS];
};

/*
 * A connection. It starts pending (in broker->pending, counted per uid
 * against --max-pending-per-uid, never against --max-clients) and must say
 * HELLO before its deadline; then it is attached (in broker->clients) and
 * watched through a pidfd as well as its socket, so that no reference the
 * broker holds (a source fd connected back to the broker, say) can hide
 * its death.
 */
struct broker_client {
	uint32_t id;
	int sock;
	int pidfd;           /* attached clients: the process, for its death; or -1 */
	struct broker_cred cred;
	pid_t pid;           /* == cred.pid */
	uid_t uid;           /* == cred.uid */
	bool hello_done;
	uint16_t abi_minor;  /* what its HELLO said (bells: ONERING_BELL_SUMMARY_MINOR) */
	int refuse;          /* -EACCES: answer the HELLO with it, then drop */
	uint64_t deadline_ns; /* pending: CLOCK_MONOTONIC by which HELLO must arrive */
	uint32_t bad_messages;
	/* Quota use (control thread). */
	uint32_t nr_queues;
	uint32_t nr_subs;
	uint32_t nr_fds;     /* socket, pidfd, 2 memfds per queue, 1 per fd source */
	uint32_t nr_groups_created;
	uint64_t ring_slots;
	struct cds_list_head node;   /* broker->pending or broker->clients */
	struct cds_list_head queues; /* its struct broker_queue */
};

#endif /* ONERING_BROKER_CLIENT_H */
