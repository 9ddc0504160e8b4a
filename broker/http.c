/* SPDX-License-Identifier: MIT */
/*
 * The HTTP request parser of the --metrics-listen endpoint (broker/counters.h).
 * What a peer sends is untrusted: every byte is looked at once, within len,
 * and nothing is copied but a bounded target. Only what answering GET
 * /metrics needs is understood; headers are checked for shape and skipped.
 */
#include <errno.h>
#include <string.h>

#include "broker/counters.h"

/* A token character of RFC 9110 (methods, header names). */
static int tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The end of the line that starts at buf[i]: the index of its '\n' or -1. */
static long line_end(const char *buf, size_t len, size_t i)
{
	const char *nl = memchr(buf + i, '\n', len - i);

	return nl ? nl - buf : -1;
}

int broker_http_parse(const char *buf, size_t len, struct broker_http_request *req)
{
	long end = line_end(buf, len, 0);
	size_t i = 0, m;

	memset(req, 0, sizeof(*req));
	/* Request line: METHOD SP TARGET SP HTTP/1.x [CR] LF */
	for (m = 0; m < len && tchar(buf[m]); m++)
		;
	if (m < len && (m == 0 || m > 16 || buf[m] != ' '))
		return -EINVAL;
	if (end < 0) /* a partial line: refuse early what cannot become valid */
		return m < len || len <= 16 ? 0 : -EINVAL;
	size_t eol = (size_t)end;
	size_t content_end = eol > 0 && buf[eol - 1] == '\r' ? eol - 1 : eol;
	if (m >= content_end)
		return -EINVAL;
	if (m == 3 && memcmp(buf, "GET", 3) == 0)
		req->method = BROKER_HTTP_GET;
	else if (m == 4 && memcmp(buf, "HEAD", 4) == 0)
		req->method = BROKER_HTTP_HEAD;
	else
		req->method = BROKER_HTTP_OTHER;
	i = m + 1;
	if (i >= content_end || buf[i] != '/')
		return -EINVAL;
	size_t t = i;
	while (t < content_end && buf[t] != ' ') {
		if ((unsigned char)buf[t] <= 0x20 || (unsigned char)buf[t] >= 0x7f)
			return -EINVAL;
		t++;
	}
	if (t >= content_end || content_end - (t + 1) != 8 ||
	    memcmp(buf + t + 1, "HTTP/1.", 7) != 0 ||
	    (buf[t + 8] != '0' && buf[t + 8] != '1'))
		return -EINVAL;
	req->minor = (unsigned)(buf[t + 8] - '0');
	size_t plen = t - i;
	const char *q = memchr(buf + i, '?', plen);
	if (q)
		plen = (size_t)(q - (buf + i));
	if (plen >= sizeof(req->path))
		return -E2BIG;
	memcpy(req->path, buf + i, plen);
	req->path[plen] = '\0';

	/* Header lines up to an empty one: NAME ":" printable text. */
	i = eol + 1;
	for (;;) {
		if (i >= len)
			return 0;
		end = line_end(buf, len, i);
		if (end < 0) {
			/* Not complete; what there is must still be able to become valid. */
			for (size_t k = i; k < len; k++)
				if (((unsigned char)buf[k] < 0x20 && buf[k] != '\t' && buf[k] != '\r') ||
				    buf[k] == 0x7f)
					return -EINVAL;
			return 0;
		}
		eol = (size_t)end;
		content_end = eol > i && buf[eol - 1] == '\r' ? eol - 1 : eol;
		if (content_end == i) { /* the blank line */
			req->header_len = eol + 1;
			return 1;
		}
		size_t k = i;
		while (k < content_end && tchar(buf[k]))
			k++;
		if (k == i || k >= content_end || buf[k] != ':')
			return -EINVAL;
		for (k++; k < content_end; k++)
			if (((unsigned char)buf[k] < 0x20 && buf[k] != '\t') || buf[k] == 0x7f)
				return -EINVAL;
		i = eol + 1;
	}
}
