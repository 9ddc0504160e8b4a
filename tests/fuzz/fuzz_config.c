/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config: the --config file parser (broker_ini_parse, over inih) on
 * arbitrary text, with the same spec parsers behind it that oneringd uses
 * for [group NAME] keys and port = lines.
 *
 *   the input         the file's text, up to its first NUL (oneringd
 *                     refuses a file with a NUL in it)
 *
 * What must hold, else abort():
 *   - the result is 0, or -EINVAL with "PATH:LINE: reason" in err, LINE
 *     one of the text's lines;
 *   - each key is handed over with a line of the text, lines never going
 *     back, and a key with no '=' or section never reaches the callback;
 *   - group specs (a [group NAME] header, each of its keys, a group = key)
 *     are refused by the spec parser with a message or accepted;
 *   - after the callback refuses a key, no other key arrives.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/settings.h"

#define MAX_INPUT 4096
#define PATH "fuzz.conf"

#define FAIL(...)                                               \
	do {                                                    \
		fprintf(stderr, "fuzz_config: " __VA_ARGS__);   \
		fputc('\n', stderr);                            \
		abort();                                        \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	unsigned lines;    /* in the text */
	unsigned last;     /* line of the last key */
	bool refused;
};

static int key(void *arg, const char *k, const char *value, unsigned line, char *err,
	       size_t err_size)
{
	struct seen *s = arg;

	if (s->refused)
		FAIL("a key after a refusal: %s", k);
	if (line < 1 || line > s->lines || line < s->last)
		FAIL("key %s on line %u (text has %u, last key %u)", k, line, s->lines, s->last);
	s->last = line;
	if (strcmp(k, "group") == 0) {
		struct onering_msg_group g;
		struct broker_acl acls[BROKER_PERM_NR];
		int r = broker_group_spec_parse(&g, acls, value, NULL, err, err_size);
		if (r != 0 && (r != -EINVAL || !err[0]))
			FAIL("group %s: %d without a message", value, r);
		s->refused = r != 0;
		return r;
	}
	if (strcmp(k, "port") == 0) {
		struct broker_port_spec ps;
		int r = broker_port_spec_parse(value, &ps, err, err_size);
		if (r != 0 && (r != -EINVAL || !err[0]))
			FAIL("port %s: %d without a message", value, r);
		s->refused = r != 0;
		return r;
	}
	/* Other keys: refuse one, as main.c refuses an unknown key. */
	if (strcmp(k, "refuse") == 0) {
		snprintf(err, err_size, "refused");
		s->refused = true;
		return -EINVAL;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct seen s = {0};

	if (size > MAX_INPUT)
		return 0;
	char *text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	s.lines = 1;
	for (const char *p = text; *p; p++)
		s.lines += *p == '\n';
	err[0] = '\0';
	int r = broker_ini_parse(text, PATH, key, &s, err, sizeof(err));
	if (r == 0 && s.refused)
		FAIL("0 after a refusal");
	if (r != 0) {
		unsigned line;
		if (r != -EINVAL)
			FAIL("result %d", r);
		if (sscanf(err, PATH ":%u: ", &line) != 1 || line < 1 || line > s.lines)
			FAIL("message without a line of the text: %s", err);
	}
	free(text);
	return 0;
}
