/* SPDX-License-Identifier: MIT */
/* The broker's option-spec parsers (broker/settings.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

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
	ps->node = -1;
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
		snprintf(err, err_size,
			 "--port %s: expected PORT[:rxq=N,group=G,snaplen=B,mode=rss|spread,node=N]",
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
		} else if (strncmp(kv, "node=", 5) == 0) {
			uint32_t node;
			if (parse_count(kv + 5, 0, BROKER_PORT_NODE_MAX, &node) < 0)
				goto bad;
			ps->node = (int)node;
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
			 "snaplen=0..%u, mode=rss|spread, node=0..%u)", arg, kv, ONERING_PKT_STRIDE_MAX,
			 BROKER_PORT_NODE_MAX);
		return -EINVAL;
	}
	return 0;
}

/* --config: the file's structure (sections, syntax, line numbers); what a
 * key means is the caller's (fn: the same per-option parsing as argv). */
struct ini_ctx {
	const char *p;      /* the text not read yet */
	const char *path;
	unsigned line;      /* of the line inih has just read */
	broker_ini_fn fn;
	void *arg;
	char *err;
	size_t err_size;
	bool failed;
};

static void ini_fail(struct ini_ctx *x, const char *why)
{
	if (!x->failed)
		snprintf(x->err, x->err_size, "%s:%u: %s", x->path, x->line, why);
	x->failed = true;
}

/* "group NAME" (blanks trimmed by inih): NAME, else NULL. */
static const char *group_section(const char *section)
{
	if (strncmp(section, "group", 5) != 0 || (section[5] != ' ' && section[5] != '\t'))
		return NULL;
	section += 5;
	while (*section == ' ' || *section == '\t')
		section++;
	return *section ? section : NULL;
}

static void ini_call(struct ini_ctx *x, const char *key, const char *value)
{
	char why[512];

	if (x->failed)
		return;
	why[0] = '\0';
	if (x->fn(x->arg, key, value, x->line, why, sizeof(why)) < 0)
		ini_fail(x, why[0] ? why : "invalid value");
}

/* inih's reader: one line at a time, so that x->line is the line of each
 * handler call (a line longer than inih's buffer is refused, not cut); a
 * [group NAME] header is announced here (inih does not call the handler
 * for a section without keys). */
static char *ini_read(char *str, int num, void *stream)
{
	struct ini_ctx *x = stream;
	char why_long[64];
	int n = 0;

	if (!*x->p || x->failed)
		return NULL;
	while (n < num - 1 && x->p[n] && x->p[n] != '\n')
		n++;
	if (n < num - 1 && x->p[n] == '\n')
		n++;
	memcpy(str, x->p, (size_t)n);
	str[n] = '\0';
	x->line++;
	if (x->p[n - 1] != '\n' && x->p[n]) {
		/* inih would take the rest for another line */
		snprintf(why_long, sizeof(why_long), "a line longer than %d bytes: shorten it", num - 2);
		ini_fail(x, why_long);
		return NULL;
	}
	x->p += n;

	const char *s = str;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '[') {
		char sec[BROKER_SPEC_MAX];
		const char *end = strchr(s, ']');
		if (!end) {
			ini_fail(x, "a section header without its ']': check the brackets, e.g. "
				    "[oneringd] or [group NAME]");
			return str;
		}
		if ((size_t)(end - s) >= sizeof(sec)) {
			ini_fail(x, "the section name is too long");
			return str;
		}
		memcpy(sec, s + 1, (size_t)(end - s - 1));
		sec[end - s - 1] = '\0';
		char *t = sec + strlen(sec);
		while (t > sec && (t[-1] == ' ' || t[-1] == '\t'))
			*--t = '\0';
		const char *name = group_section(sec);
		if (name && strpbrk(name, ":,= \t"))
			ini_fail(x, "a group name is 1-31 of [A-Za-z0-9_.-]: write [group NAME] "
				    "and its settings as keys below it");
		else if (name)
			ini_call(x, "group", name);
		else if (strcmp(sec, "oneringd") != 0)
			ini_fail(x, "unknown section: use [oneringd] for the options and "
				    "[group NAME] for a group's settings");
	}
	return str;
}

static int ini_key(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *x = user;
	const char *group = group_section(section);

	if (x->failed)
		return 0;
	if (!section[0]) {
		ini_fail(x, "a key before any section: put the options under [oneringd]");
	} else if (group) {
		char spec[BROKER_SPEC_MAX];
		if (strpbrk(value, ",:") && strcmp(name, "numa") != 0) {
			ini_fail(x, "one setting per key in a [group NAME] section (no ',' or "
				    "':' in the value), e.g. policy = rr");
			return 0;
		}
		if ((size_t)snprintf(spec, sizeof(spec), "%s:%s=%s", group, name, value) >=
		    sizeof(spec)) {
			ini_fail(x, "the group name and setting are too long");
			return 0;
		}
		ini_call(x, "group", spec);
	} else if (strcmp(section, "oneringd") == 0) {
		ini_call(x, name, value);
	} else {
		ini_fail(x, "unknown section: use [oneringd] for the options and [group NAME] "
			    "for a group's settings");
	}
	return !x->failed;
}

int broker_ini_parse(const char *text, const char *path, broker_ini_fn fn, void *arg, char *err,
		     size_t err_size)
{
	struct ini_ctx x = {
		.p = text, .path = path, .fn = fn, .arg = arg, .err = err, .err_size = err_size,
	};
	int r = ini_parse_stream(ini_read, &x, ini_key, &x);

	if (x.failed)
		return -EINVAL;
	if (r > 0) {
		snprintf(err, err_size, "%s:%d: not a [section], a key = value line or a comment "
			 "(; or #): check the brackets and the '='", path, r);
		return -EINVAL;
	}
	if (r < 0) {
		snprintf(err, err_size, "%s: out of memory reading it", path);
		return -ENOMEM;
	}
	return 0;
}
