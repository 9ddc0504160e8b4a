/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http: the --metrics-listen request parser (broker/http.c), which
 * reads what any peer that reaches the port sends.
 *
 * Input: the bytes a peer sent, at most BROKER_HTTP_REQUEST_MAX (what the
 * broker ever hands the parser), each input its own exact-size allocation so
 * that ASan sees a read one byte past its end.
 *
 * What must hold, else abort():
 *   - the result is 1, 0, -EINVAL or -E2BIG;
 *   - a whole request (1): its header ends within the input, its path is
 *     NUL-terminated, starts with '/', holds no byte <= ' ' and no '?', its
 *     method and minor version are ones the header names;
 *   - more bytes never change a verdict: a prefix that was a whole request
 *     is the same request in the whole input, and a prefix refused as
 *     malformed stays refused.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/counters.h"

#define FAIL(...)                                                   \
	do {                                                        \
		fprintf(stderr, "fuzz_http: " __VA_ARGS__);         \
		fputc('\n', stderr);                                \
		abort();                                            \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse(const uint8_t *data, size_t size, struct broker_http_request *req)
{
	char *copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	int r = broker_http_parse(copy, size, req);
	free(copy);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct broker_http_request req, part;

	if (size > BROKER_HTTP_REQUEST_MAX)
		return 0;
	int r = parse(data, size, &req);
	if (r != 1 && r != 0 && r != -EINVAL && r != -E2BIG)
		FAIL("result %d", r);
	if (r == 1) {
		size_t n = strnlen(req.path, sizeof(req.path));
		if (req.header_len == 0 || req.header_len > size || n == sizeof(req.path) ||
		    req.path[0] != '/' || strchr(req.path, '?'))
			FAIL("a request with header_len %zu of %zu, path \"%.*s\"", req.header_len,
			     size, (int)n, req.path);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)req.path[i] <= ' ' || (unsigned char)req.path[i] >= 0x7f)
				FAIL("path byte 0x%02x", (unsigned char)req.path[i]);
		if (req.method < BROKER_HTTP_GET || req.method > BROKER_HTTP_OTHER || req.minor > 1)
			FAIL("method %d minor %u", req.method, req.minor);
	}
	for (size_t cut = size / 2; cut < size; cut += (size - cut + 1) / 2) {
		int p = parse(data, cut, &part);
		if (p == 1 && (r != 1 || part.header_len != req.header_len ||
			       strcmp(part.path, req.path) != 0 || part.method != req.method))
			FAIL("a request in the first %zu bytes is not one in all %zu (%d)", cut, size, r);
		if (p == -EINVAL && r >= 0)
			FAIL("the first %zu bytes are malformed, all %zu are not (%d)", cut, size, r);
		if (cut == size - 1)
			break;
	}
	return 0;
}
