/* SPDX-License-Identifier: MIT */
/*
 * The broker's option-spec parsers (broker/settings.c): pure functions of
 * a string, no DPDK, no liburcu, no broker state, so that unit tests and
 * the fuzz targets (tests/fuzz/fuzz_settings.c) can call them alone.
 *
 *   --group NAME[:SETTING,...]   settings as `onering tune` takes them
 *                                (onering_group_setting_parse, shm/proto.c),
 *                                and join=/post=/tune= lists of who may
 *   --port P[:rxq=N,group=G,snaplen=B,mode=rss|spread,node=N]
 *   --config FILE                an INI file (broker_ini_parse, inih): the
 *                                [oneringd] section holds the options as
 *                                keys, each [group NAME] one group's settings
 */
#ifndef ONERING_BROKER_SETTINGS_H
#define ONERING_BROKER_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BROKER_SPEC_MAX 256    /* the longest spec, incl. the NUL; longer ones are refused */
#define BROKER_PORT_DEV_MAX 64 /* a port's device name, incl. the NUL (RTE_ETH_NAME_MAX_LEN) */
#define BROKER_PORT_RXQ_MAX 64 /* rx queues per --port */
#define BROKER_PORT_SNAPLEN_DEFAULT 128u

/* Who may join, post to or tune a configured group: --group NAME:join=WHO+WHO...,
 * WHO a uid or user name, @gid or @group, or any. */
#define BROKER_ACL_MAX 8
struct broker_acl {
	bool set;       /* given in the configuration (else the default applies) */
	bool any;       /* every client the broker serves */
	uint8_t nr;
	struct {
		bool is_gid;
		uint32_t id;
	} e[BROKER_ACL_MAX];
};

enum broker_perm {
	BROKER_PERM_JOIN,
	BROKER_PERM_POST,
	BROKER_PERM_TUNE,
	BROKER_PERM_NR,
};

/* Turns a user (group false) or group name into its id: 0, or -ENOENT. */
typedef int (*broker_name_resolver)(const char *name, bool group, uint32_t *id);

/* One --port, parsed. */
struct broker_port_spec {
	char dev[BROKER_PORT_DEV_MAX]; /* a port number or an ethdev name */
	uint32_t rxq;                  /* 1..BROKER_PORT_RXQ_MAX (default 1) */
	char group[ONERING_NAME_MAX];  /* default: "default" */
	uint32_t snaplen;              /* 0..ONERING_PKT_STRIDE_MAX */
	bool spread;                   /* mode=spread: rx queues over every poller */
	int node;                      /* node=N: the port's NUMA node (its rx queues'
					  poller, its mbuf pool), for devices that do not
					  say (virtual ones); -1 (default): the device's */
};

/* The highest node=N a --port takes (libnuma's node ids are below 1024). */
#define BROKER_PORT_NODE_MAX 1023

/**
 * Parse one --group argument, NAME[:SETTING,...], into g (zeroed first:
 * name, and each setting with its ONERING_GSET_* bit) and acls (zeroed
 * first: the join=, post= and tune= lists given).
 * @param resolve  names of users and groups to ids; NULL: numbers only
 * @return 0; -EINVAL with the whole message ("--group ARG: reason") in err,
 *   also for a spec of BROKER_SPEC_MAX bytes or more.
 * Context: any thread; no system call but the resolver's.
 */
int broker_group_spec_parse(struct onering_msg_group *g, struct broker_acl acls[BROKER_PERM_NR],
			    const char *spec, broker_name_resolver resolve, char *err,
			    size_t err_size);

/**
 * Parse one --port argument into ps (defaults first).
 * @return 0; -EINVAL with the whole message ("--port ARG: reason") in err,
 *   also for a spec of BROKER_SPEC_MAX bytes or more.
 * Context: any thread; no system call.
 */
int broker_port_spec_parse(const char *arg, struct broker_port_spec *ps, char *err,
			   size_t err_size);

/* One key of a config file: key is a long option's name (no dashes);
 * "group" values are --group specs. Return 0, or -EINVAL with the reason
 * (and how to fix it) in err. */
typedef int (*broker_ini_fn)(void *arg, const char *key, const char *value, unsigned line,
			     char *err, size_t err_size);

/**
 * Parse a config file's text (NUL-terminated, inih syntax: [section],
 * key = value, ; or # comments). Keys of [oneringd] go to fn as they are;
 * a [group NAME] header goes as ("group", "NAME") and each of its keys as
 * ("group", "NAME:key=value"). Stops at the first error.
 * @param path  the file's name, for messages
 * @return 0; -EINVAL with "PATH:LINE: what is wrong; how to fix it" in err.
 * Context: any thread; no system call but fn's.
 */
int broker_ini_parse(const char *text, const char *path, broker_ini_fn fn, void *arg, char *err,
		     size_t err_size);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_BROKER_SETTINGS_H */
