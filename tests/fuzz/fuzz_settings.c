/* SPDX-License-Identifier: MIT */
/*
 * fuzz_settings: the option specs an operator types.
 *
 *   byte 0 % 3 == 0   oneringd --group NAME[:SETTING,...]   broker_group_spec_parse()
 *                 1   oneringd --port P[:rxq=N,...]         broker_port_spec_parse()
 *                 2   onering tune ... SETTING...           onering_group_setting_parse(),
 *                                                           once per argument, as cmd_tune
 *   the rest          the spec (up to its first NUL, as argv would carry it); for
 *                     tune, the arguments separated by NULs
 *
 * Each string is its own exact-size allocation, so ASan sees a read one
 * byte past its end. What must hold, else abort():
 *   - the result is 0 or -EINVAL, and a refusal comes with a message;
 *   - what is accepted is what the broker's use of it takes as valid
 *     (broker_group_apply()'s checks, the --port bounds nic.c relies on);
 *   - the parser agrees with a reference written here from the usage
 *     text, with no fixed buffers and strict decimal numbers: same verdict,
 *     same result (a silently cut or wrapped value shows up here);
 *   - printing the result as a spec and parsing that gives it back;
 *   - tune arguments without commas give what --group gives for
 *     NAME:ARG,ARG,... (one setting parser behind both).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/settings.h"
#include "shm/abi.h"
#include "shm/proto.h"

#define MAX_INPUT 1024
#define MAX_TUNE_ARGS 16

#define FAIL(...)                                                   \
	do {                                                        \
		fprintf(stderr, "fuzz_settings: " __VA_ARGS__);     \
		fputc('\n', stderr);                                \
		abort();                                            \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dup_n(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static void check_refusal(int r, const char *err, const char *prefix, const char *spec)
{
	if (r != -EINVAL)
		FAIL("'%s': returned %d, not 0 or -EINVAL", spec, r);
	if (!memchr(err, '\0', 512) || strncmp(err, prefix, strlen(prefix)) != 0 ||
	    strlen(err) <= strlen(prefix))
		FAIL("'%s' refused without a message starting '%s'", spec, prefix);
}

/* ---- group settings ------------------------------------------------------ */

/* The checks broker_group_apply() makes before it applies anything. */
static void check_group_valid(const struct onering_msg_group *g, const char *spec)
{
	if ((g->set & ~ONERING_GSET_ALL) ||
	    ((g->set & ONERING_GSET_POLICY) && g->policy > ONERING_POLICY_MAX) ||
	    ((g->set & ONERING_GSET_NUMA) &&
	     (g->numa > ONERING_NUMA_MAX ||
	      (g->numa == ONERING_NUMA_SPILL && (g->spill_pct < 1 || g->spill_pct > 100)))) ||
	    ((g->set & ONERING_GSET_WAKE) && g->wake > ONERING_WAKE_MAX) ||
	    ((g->set & ONERING_GSET_MAX_RUNNING) && g->max_running > 1u << 20) ||
	    ((g->set & ONERING_GSET_BACKLOG) && (g->backlog_max < 1 || g->backlog_max > 1u << 24)))
		FAIL("'%s' accepted with settings the broker refuses (set 0x%x policy %u numa %u "
		     "spill %u wake %u max_running %u backlog %u)",
		     spec, g->set, g->policy, g->numa, g->spill_pct, g->wake, g->max_running,
		     g->backlog_max);
}

/* The settings of g as a comma list, "" when none is set. */
static void format_settings(const struct onering_msg_group *g, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
#define ADD(...) n += (size_t)snprintf(buf + n, size - n, __VA_ARGS__)
	if (g->set & ONERING_GSET_POLICY)
		ADD("%spolicy=%s", n ? "," : "", onering_policy_name(g->policy));
	if ((g->set & ONERING_GSET_NUMA) && g->numa == ONERING_NUMA_SPILL)
		ADD("%snuma=spill:%u", n ? "," : "", g->spill_pct);
	else if (g->set & ONERING_GSET_NUMA)
		ADD("%snuma=%s", n ? "," : "", onering_numa_name(g->numa));
	if (g->set & ONERING_GSET_WAKE)
		ADD("%swake=%s", n ? "," : "", onering_wake_name(g->wake));
	if (g->set & ONERING_GSET_MAX_RUNNING)
		ADD("%smax_running=%u", n ? "," : "", g->max_running);
	if (g->set & ONERING_GSET_BACKLOG)
		ADD("%sbacklog=%u", n ? "," : "", g->backlog_max);
#undef ADD
	if (n >= size)
		abort();
}

/* Same settings: each field that is set, spill_pct only where it means something. */
static bool same_settings(const struct onering_msg_group *a, const struct onering_msg_group *b)
{
	if (a->set != b->set)
		return false;
	if ((a->set & ONERING_GSET_POLICY) && a->policy != b->policy)
		return false;
	if ((a->set & ONERING_GSET_NUMA) &&
	    (a->numa != b->numa || (a->numa == ONERING_NUMA_SPILL && a->spill_pct != b->spill_pct)))
		return false;
	if ((a->set & ONERING_GSET_WAKE) && a->wake != b->wake)
		return false;
	if ((a->set & ONERING_GSET_MAX_RUNNING) && a->max_running != b->max_running)
		return false;
	if ((a->set & ONERING_GSET_BACKLOG) && a->backlog_max != b->backlog_max)
		return false;
	return true;
}

/* Calls fn on each non-empty piece of s between commas (what strtok_r gives). */
static int each_item(const char *s, int (*fn)(void *ctx, const char *item), void *ctx)
{
	while (*s) {
		const char *e = strchrnul(s, ',');
		if (e > s) {
			char *item = dup_n(s, (size_t)(e - s));
			int r = fn(ctx, item);
			free(item);
			if (r < 0)
				return r;
		}
		s = *e ? e + 1 : e;
	}
	return 0;
}

/* join=, post=, tune= as the usage reads: WHO+WHO..., each any, digits or
 * @digits (numbers only: the fuzz target gives the parser no resolver),
 * at most BROKER_ACL_MAX users and groups, not empty. */
static bool is_acl_key(const char *kv)
{
	return strncmp(kv, "join=", 5) == 0 || strncmp(kv, "post=", 5) == 0 ||
	       strncmp(kv, "tune=", 5) == 0;
}

static int ref_acl_list(const char *list)
{
	unsigned ids = 0, items = 0;
	const char *p = list;

	for (;;) {
		const char *end = strchr(p, '+');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len) { /* empty items between '+' are skipped, as strtok does */
			items++;
			if (!(len == 3 && memcmp(p, "any", 3) == 0)) {
				const char *d = p + (p[0] == '@');
				size_t dl = len - (size_t)(d - p);
				uint64_t v = 0;
				if (dl == 0)
					return -EINVAL;
				for (size_t i = 0; i < dl; i++) {
					if (d[i] < '0' || d[i] > '9')
						return -EINVAL;
					v = v * 10 + (uint64_t)(d[i] - '0');
					if (v >= UINT32_MAX)
						return -EINVAL;
				}
				if (++ids > BROKER_ACL_MAX)
					return -EINVAL;
			}
		}
		if (!end)
			break;
		p = end + 1;
	}
	return items ? 0 : -EINVAL;
}

static int ref_group_item(void *ctx, const char *kv)
{
	char why[160];

	if (is_acl_key(kv))
		return ref_acl_list(kv + 5);
	return onering_group_setting_parse(ctx, kv, why, sizeof(why));
}

/* What the parser gave for join=/post=/tune= is well formed. */
static void check_acls(const struct broker_acl *acls, const char *spec)
{
	for (int i = 0; i < BROKER_PERM_NR; i++) {
		if (!acls[i].set)
			continue;
		if (acls[i].nr > BROKER_ACL_MAX || (!acls[i].any && acls[i].nr == 0))
			FAIL("--group '%s': list %d accepted malformed (%u entries)", spec, i,
			     (unsigned)acls[i].nr);
	}
}

/* --group as its usage reads: NAME, then settings between commas. */
static int ref_group_spec(struct onering_msg_group *g, const char *spec)
{
	const char *colon = strchr(spec, ':');
	size_t len = colon ? (size_t)(colon - spec) : strlen(spec);

	if (strlen(spec) >= BROKER_SPEC_MAX)
		return -EINVAL;
	char *name = dup_n(spec, len);
	bool ok = onering_name_valid(name);
	memset(g, 0, sizeof(*g));
	if (ok)
		memcpy(g->name, name, len + 1);
	free(name);
	if (!ok)
		return -EINVAL;
	return colon ? each_item(colon + 1, ref_group_item, g) : 0;
}

static void fuzz_group_spec(const char *spec)
{
	struct onering_msg_group g, ref, again;
	char err[512], text[BROKER_SPEC_MAX];

	struct broker_acl acls[BROKER_PERM_NR], acls2[BROKER_PERM_NR];

	memset(err, 'x', sizeof(err));
	int r = broker_group_spec_parse(&g, acls, spec, NULL, err, sizeof(err));
	int rr = ref_group_spec(&ref, spec);
	if (r != 0) {
		check_refusal(r, err, "--group ", spec);
		if (rr == 0)
			FAIL("--group '%s' refused (%s), the reference accepts it", spec, err);
		return;
	}
	if (rr != 0)
		FAIL("--group '%s' accepted, the reference refuses it", spec);
	if (!onering_name_valid(g.name))
		FAIL("--group '%s' accepted with the invalid name '%.32s'", spec, g.name);
	check_group_valid(&g, spec);
	check_acls(acls, spec);
	if (memcmp(g.name, ref.name, sizeof(g.name)) != 0 || !same_settings(&g, &ref))
		FAIL("--group '%s': the parser and the reference disagree", spec);

	size_t n = (size_t)snprintf(text, sizeof(text), "%s:", g.name);
	format_settings(&g, text + n, sizeof(text) - n);
	r = broker_group_spec_parse(&again, acls2, text, NULL, err, sizeof(err));
	if (r != 0)
		FAIL("--group '%s' printed as '%s', which is refused: %s", spec, text, err);
	if (strcmp(again.name, g.name) != 0 || !same_settings(&again, &g))
		FAIL("--group '%s' printed as '%s' parses to other settings", spec, text);
}

/* onering tune: each argument one setting, as cmd_tune() takes them. */
static void fuzz_tune(char **args, unsigned nargs)
{
	struct onering_msg_group g, again;
	char err[512], text[BROKER_SPEC_MAX + 16];
	bool commas = false;
	int r = 0;

	memset(&g, 0, sizeof(g));
	for (unsigned i = 0; i < nargs && r == 0; i++) {
		memset(err, 'x', sizeof(err));
		r = onering_group_setting_parse(&g, args[i], err, sizeof(err));
		if (r != 0)
			check_refusal(r, err, "", args[i]);
		/* --group also takes who-may lists, which tune does not. */
		commas |= strchr(args[i], ',') != NULL || !args[i][0] || is_acl_key(args[i]);
	}
	if (r == 0) {
		check_group_valid(&g, nargs ? args[0] : "");
		format_settings(&g, text, sizeof(text));
		memset(&again, 0, sizeof(again));
		if (each_item(text, ref_group_item, &again) < 0 || !same_settings(&again, &g))
			FAIL("tune settings printed as '%s' do not parse back", text);
	}

	/* The same settings through --group g:ARG,ARG,... */
	size_t n = (size_t)snprintf(text, sizeof(text), "g:");
	for (unsigned i = 0; i < nargs && n < sizeof(text); i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s", i ? "," : "", args[i]);
	if (commas || n >= BROKER_SPEC_MAX)
		return;
	struct onering_msg_group viag;
	struct broker_acl acls[BROKER_PERM_NR];
	int rg = broker_group_spec_parse(&viag, acls, text, NULL, err, sizeof(err));
	if ((rg == 0) != (r == 0) || (r == 0 && !same_settings(&viag, &g)))
		FAIL("tune '%s' (%d) and --group '%s' (%d) disagree", nargs ? args[0] : "", r, text,
		     rg);
}

/* ---- --port -------------------------------------------------------------- */

/* A decimal number, digits only, at most max. */
static bool ref_uint(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return false;
	}
	if (v < min)
		return false;
	*out = (uint32_t)v;
	return true;
}

static int ref_port_item(void *ctx, const char *kv)
{
	struct broker_port_spec *ps = ctx;

	if (strncmp(kv, "rxq=", 4) == 0)
		return ref_uint(kv + 4, 1, BROKER_PORT_RXQ_MAX, &ps->rxq) ? 0 : -EINVAL;
	if (strncmp(kv, "snaplen=", 8) == 0)
		return ref_uint(kv + 8, 0, ONERING_PKT_STRIDE_MAX, &ps->snaplen) ? 0 : -EINVAL;
	if (strncmp(kv, "group=", 6) == 0) {
		if (!onering_name_valid(kv + 6))
			return -EINVAL;
		snprintf(ps->group, sizeof(ps->group), "%s", kv + 6);
		return 0;
	}
	if (strcmp(kv, "mode=rss") == 0 || strcmp(kv, "mode=spread") == 0) {
		ps->spread = kv[5] == 's';
		return 0;
	}
	if (strncmp(kv, "node=", 5) == 0) {
		uint32_t node;
		if (!ref_uint(kv + 5, 0, BROKER_PORT_NODE_MAX, &node))
			return -EINVAL;
		ps->node = (int)node;
		return 0;
	}
	return -EINVAL;
}

/* --port as its usage reads: P[:rxq=N,group=G,snaplen=B,mode=rss|spread,node=N]. */
static int ref_port_spec(struct broker_port_spec *ps, const char *arg)
{
	const char *colon = strchr(arg, ':');
	size_t len = colon ? (size_t)(colon - arg) : strlen(arg);

	memset(ps, 0, sizeof(*ps));
	ps->rxq = 1;
	ps->snaplen = BROKER_PORT_SNAPLEN_DEFAULT;
	ps->node = -1;
	snprintf(ps->group, sizeof(ps->group), "default");
	if (strlen(arg) >= BROKER_SPEC_MAX || len == 0 || len >= sizeof(ps->dev))
		return -EINVAL;
	memcpy(ps->dev, arg, len);
	return colon ? each_item(colon + 1, ref_port_item, ps) : 0;
}

static bool same_port(const struct broker_port_spec *a, const struct broker_port_spec *b)
{
	return strcmp(a->dev, b->dev) == 0 && a->rxq == b->rxq && a->snaplen == b->snaplen &&
	       strcmp(a->group, b->group) == 0 && a->spread == b->spread && a->node == b->node;
}

static void fuzz_port_spec(const char *arg)
{
	struct broker_port_spec ps, ref, again;
	char err[512], text[BROKER_SPEC_MAX];

	memset(err, 'x', sizeof(err));
	int r = broker_port_spec_parse(arg, &ps, err, sizeof(err));
	int rr = ref_port_spec(&ref, arg);
	if (r != 0) {
		check_refusal(r, err, "--port ", arg);
		if (rr == 0)
			FAIL("--port '%s' refused (%s), the reference accepts it", arg, err);
		return;
	}
	if (rr != 0)
		FAIL("--port '%s' accepted (rxq %u snaplen %u), the reference refuses it", arg,
		     ps.rxq, ps.snaplen);
	if (!ps.dev[0] || strchr(ps.dev, ':') || strlen(ps.dev) >= sizeof(ps.dev) ||
	    ps.rxq < 1 || ps.rxq > BROKER_PORT_RXQ_MAX || ps.snaplen > ONERING_PKT_STRIDE_MAX ||
	    !onering_name_valid(ps.group))
		FAIL("--port '%s' accepted out of bounds: dev '%.64s' rxq %u snaplen %u group '%.32s'",
		     arg, ps.dev, ps.rxq, ps.snaplen, ps.group);
	if (!same_port(&ps, &ref))
		FAIL("--port '%s': the parser (rxq %u snaplen %u) and the reference (rxq %u "
		     "snaplen %u) disagree",
		     arg, ps.rxq, ps.snaplen, ref.rxq, ref.snaplen);

	int n = snprintf(text, sizeof(text), "%s:rxq=%u,group=%s,snaplen=%u,mode=%s,node=%d", ps.dev,
			 ps.rxq, ps.group, ps.snaplen, ps.spread ? "spread" : "rss", ps.node);
	if (ps.node < 0) /* not given: not printed */
		n = snprintf(text, sizeof(text), "%s:rxq=%u,group=%s,snaplen=%u,mode=%s", ps.dev,
			     ps.rxq, ps.group, ps.snaplen, ps.spread ? "spread" : "rss");
	if (n < 0 || (size_t)n >= sizeof(text))
		abort();
	r = broker_port_spec_parse(text, &again, err, sizeof(err));
	if (r != 0 || !same_port(&again, &ps))
		FAIL("--port '%s' printed as '%s' does not parse back", arg, text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size - 1 > MAX_INPUT)
		return -1;
	unsigned which = data[0] % 3;
	const char *rest = (const char *)data + 1;
	size_t len = size - 1;

	if (which == 2) {
		char *args[MAX_TUNE_ARGS];
		unsigned nargs = 0;
		for (size_t at = 0; at < len && nargs < MAX_TUNE_ARGS;) {
			const char *nul = memchr(rest + at, '\0', len - at);
			size_t n = nul ? (size_t)(nul - (rest + at)) : len - at;
			args[nargs++] = dup_n(rest + at, n);
			at += n + 1;
		}
		fuzz_tune(args, nargs);
		for (unsigned i = 0; i < nargs; i++)
			free(args[i]);
		return 0;
	}
	const char *nul = memchr(rest, '\0', len);
	char *spec = dup_n(rest, nul ? (size_t)(nul - rest) : len);
	if (which == 0)
		fuzz_group_spec(spec);
	else
		fuzz_port_spec(spec);
	free(spec);
	return 0;
}
