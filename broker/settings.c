/* SPDX-License-Identifier: MIT */
/* The broker's option-spec parsers (broker/settings.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/settings.h"
#include "shm/abi.h"

/* A count in decimal digits, min..max: no sign, no blanks, no empty value, no wrap. */
static int parse_count(const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t x = 0;

	if (!*v)
		return -EINVAL;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return -EINVAL;
		x = x * 10 + (uint64_t)(*v - '0');
		if (x > max)
			return -EINVAL;
	}
	if (x < min)
		return -EINVAL;
	*out = (uint32_t)x;
	return 0;
}

/* join=, post=, tune=: which permission, or -1 for another setting. */
static int acl_key(const char *kv)
{
	static const char *const keys[BROKER_PERM_NR] = {"join=", "post=", "tune="};

	for (int i = 0; i < BROKER_PERM_NR; i++)
		if (strncmp(kv, keys[i], strlen(keys[i])) == 0)
			return i;
	return -1;
}

/* WHO+WHO...: a uid or user name, @gid or @group, or any. */
static int parse_acl(char *list, struct broker_acl *acl, broker_name_resolver resolve, char *why,
		     size_t why_size)
{
	char *save = NULL;

	memset(acl, 0, sizeof(*acl));
	acl->set = true;
	for (char *who = strtok_r(list, "+", &save); who; who = strtok_r(NULL, "+", &save)) {
		if (strcmp(who, "any") == 0) {
			acl->any = true;
			continue;
		}
		if (acl->nr == BROKER_ACL_MAX) {
			snprintf(why, why_size, "at most %d users and groups in a list", BROKER_ACL_MAX);
			return -EINVAL;
		}
		bool is_gid = who[0] == '@';
		const char *name = who + is_gid;
		uint32_t id;
		if (parse_count(name, 0, UINT32_MAX - 1, &id) < 0 &&
		    (!resolve || !*name || resolve(name, is_gid, &id) < 0)) {
			snprintf(why, why_size, "'%.64s': no such %s (use a number, a name, @group or "
				 "any)", who, is_gid ? "group" : "user");
			return -EINVAL;
		}
		acl->e[acl->nr].is_gid = is_gid;
		acl->e[acl->nr].id = id;
		acl->nr++;
	}
	if (!acl->any && acl->nr == 0) {
		snprintf(why, why_size, "an empty list (use any, or name users and @groups)");
		return -EINVAL;
	}
	return 0;
}

int broker_group_spec_parse(struct onering_msg_group *g, struct broker_acl acls[BROKER_PERM_NR],
			    const char *spec, broker_name_resolver resolve, char *err,
			    size_t err_size)
{
	char buf[BROKER_SPEC_MAX], why[160];

	if (strnlen(spec, sizeof(buf)) >= sizeof(buf)) {
		snprintf(err, err_size, "--group %.40s...: longer than %zu bytes", spec,
			 sizeof(buf) - 1);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", spec);
	char *colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
	if (!onering_name_valid(buf)) {
		snprintf(err, err_size, "--group %s: the name must be 1-31 of [A-Za-z0-9_.-]", spec);
		return -EINVAL;
	}
	memset(g, 0, sizeof(*g));
	memset(acls, 0, BROKER_PERM_NR * sizeof(acls[0]));
	memcpy(g->name, buf, strlen(buf) + 1); /* valid: at most 31 chars */
	for (char *save = NULL, *kv = colon ? strtok_r(colon + 1, ",", &save) : NULL; kv;
	     kv = strtok_r(NULL, ",", &save)) {
		int perm = acl_key(kv);
		int r = perm >= 0 ? parse_acl(strchr(kv, '=') + 1, &acls[perm], resolve, why,
					      sizeof(why))
				  : onering_group_setting_parse(g, kv, why, sizeof(why));
		if (r < 0) {
			snprintf(err, err_size, "--group %s: %s", spec, why);
			return -EINVAL;
		}
	}
	return 0;
}

int broker_port_spec_parse(const char *arg, struct broker_port_spec *ps, char *err,
			   size_t err_size)
{
	char buf[BROKER_SPEC_MAX];
	char *colon, *save = NULL;

	memset(ps, 0, sizeof(*ps));
	ps->rxq = 1;
	ps->snaplen = BROKER_PORT_SNAPLEN_DEFAULT;
	snprintf(ps->group, sizeof(ps->group), "default");
	if (strnlen(arg, sizeof(buf)) >= sizeof(buf)) {
		snprintf(err, err_size, "--port %.40s...: longer than %zu bytes", arg, sizeof(buf) - 1);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", arg);
	colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
	if (!buf[0] || strlen(buf) >= sizeof(ps->dev)) {
		snprintf(err, err_size, "--port %s: expected PORT[:rxq=N,group=G,snaplen=B,mode=rss|spread]",
			 arg);
		return -EINVAL;
	}
	snprintf(ps->dev, sizeof(ps->dev), "%s", buf);
	for (char *kv = colon ? strtok_r(colon + 1, ",", &save) : NULL; kv;
	     kv = strtok_r(NULL, ",", &save)) {
		if (strncmp(kv, "rxq=", 4) == 0) {
			if (parse_count(kv + 4, 1, BROKER_PORT_RXQ_MAX, &ps->rxq) < 0)
				goto bad;
		} else if (strncmp(kv, "snaplen=", 8) == 0) {
			if (parse_count(kv + 8, 0, ONERING_PKT_STRIDE_MAX, &ps->snaplen) < 0)
				goto bad;
		} else if (strncmp(kv, "group=", 6) == 0) {
			if (!onering_name_valid(kv + 6))
				goto bad;
			snprintf(ps->group, sizeof(ps->group), "%s", kv + 6);
		} else if (strcmp(kv, "mode=rss") == 0) {
			ps->spread = false;
		} else if (strcmp(kv, "mode=spread") == 0) {
			ps->spread = true;
		} else {
			goto bad;
		}
		continue;
bad:
		snprintf(err, err_size, "--port %s: bad setting '%s' (rxq=1..64, group=NAME, "
			 "snaplen=0..%u, mode=rss|spread)", arg, kv, ONERING_PKT_STRIDE_MAX);
		return -EINVAL;
	}
	return 0;
}
