/* SPDX-License-Identifier: MIT */
/*
 * --port specs: parsed without DPDK, so that `oneringd --check` rejects a
 * bad one and prints the ports it would start, and nic.c (the only file
 * built with DPDK's flags) reads the same fields when the EAL is up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/nic.h"

/* A decimal number in [min, max], the whole of s. */
static int parse_count(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int broker_port_spec_parse(const char *arg, struct broker_port_spec *ps, char *err,
			   size_t err_size)
{
	char buf[256];
	char *colon, *save = NULL;

	memset(ps, 0, sizeof(*ps));
	ps->rxq = 1;
	ps->snaplen = BROKER_SNAPLEN_DEFAULT;
	snprintf(ps->group, sizeof(ps->group), "default");
	if (strlen(arg) >= sizeof(buf)) {
		snprintf(err, err_size, "--port %.40s...: too long", arg);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", arg);
	colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
	if (!buf[0] || strlen(buf) >= sizeof(ps->dev)) {
		snprintf(err, err_size,
			 "--port %s: expected PORT[:rxq=N,group=G,snaplen=B,mode=rss|spread]", arg);
		return -EINVAL;
	}
	snprintf(ps->dev, sizeof(ps->dev), "%s", buf);
	for (char *kv = colon ? strtok_r(colon + 1, ",", &save) : NULL; kv;
	     kv = strtok_r(NULL, ",", &save)) {
		if (strncmp(kv, "rxq=", 4) == 0) {
			if (parse_count(kv + 4, 1, BROKER_PORT_RXQ_MAX, &ps->rxq) < 0) {
				snprintf(err, err_size, "--port %s: rxq '%s': use 1..%u rx queues", arg,
					 kv + 4, BROKER_PORT_RXQ_MAX);
				return -EINVAL;
			}
		} else if (strncmp(kv, "snaplen=", 8) == 0) {
			if (parse_count(kv + 8, 0, ONERING_PKT_STRIDE_MAX, &ps->snaplen) < 0) {
				snprintf(err, err_size,
					 "--port %s: snaplen '%s': use 0..%u bytes (the most a queue's "
					 "packet slot holds)", arg, kv + 8, ONERING_PKT_STRIDE_MAX);
				return -EINVAL;
			}
		} else if (strncmp(kv, "group=", 6) == 0) {
			if (!onering_name_valid(kv + 6)) {
				snprintf(err, err_size, "--port %s: group '%s': the name must be 1-31 of "
					 "[A-Za-z0-9_.-]", arg, kv + 6);
				return -EINVAL;
			}
			snprintf(ps->group, sizeof(ps->group), "%s", kv + 6);
		} else if (strcmp(kv, "mode=rss") == 0) {
			ps->spread = false;
		} else if (strcmp(kv, "mode=spread") == 0) {
			ps->spread = true;
		} else {
			snprintf(err, err_size, "--port %s: unknown setting '%s' (rxq=1..%u, group=NAME, "
				 "snaplen=0..%u, mode=rss|spread)", arg, kv, BROKER_PORT_RXQ_MAX,
				 ONERING_PKT_STRIDE_MAX);
			return -EINVAL;
		}
	}
	return 0;
}
