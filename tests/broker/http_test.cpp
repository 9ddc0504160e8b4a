// SPDX-License-Identifier: MIT
// The /metrics endpoint's request parser (broker/http.c), without a broker.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

extern "C" {
#include "broker/counters.h"
}

namespace {

int Parse(const std::string &s, broker_http_request *req)
{
	return broker_http_parse(s.data(), s.size(), req);
}

TEST(HttpParseTest, TakesAGetWithHeadersAndDropsTheQuery)
{
	broker_http_request req;
	const std::string r = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
	ASSERT_EQ(Parse(r, &req), 1);
	EXPECT_EQ(req.method, BROKER_HTTP_GET);
	EXPECT_STREQ(req.path, "/metrics");
	EXPECT_EQ(req.minor, 1u);
	EXPECT_EQ(req.header_len, r.size());
	ASSERT_EQ(Parse("HEAD /metrics HTTP/1.0\n\n", &req), 1) << "bare LFs too";
	EXPECT_EQ(req.method, BROKER_HTTP_HEAD);
	EXPECT_EQ(req.minor, 0u);
	ASSERT_EQ(Parse("POST /metrics HTTP/1.0\r\n\r\n", &req), 1);
	EXPECT_EQ(req.method, BROKER_HTTP_OTHER);
}

TEST(HttpParseTest, WaitsForTheBlankLine)
{
	broker_http_request req;
	for (const char *part : {"", "G", "GET", "GET ", "GET /met", "GET /metrics HTTP/1.0\r\n",
				 "GET /metrics HTTP/1.0\r\nHost: x", "GET /metrics HTTP/1.0\r\nHost: x\r\n"})
		EXPECT_EQ(Parse(part, &req), 0) << part;
}

TEST(HttpParseTest, RefusesWhatIsNotARequest)
{
	broker_http_request req;
	for (const char *bad : {" GET / HTTP/1.0\r\n\r\n", "GET metrics HTTP/1.0\r\n\r\n",
				"GET / HTTP/2.0\r\n\r\n", "GET / HTTP/1.0 x\r\n\r\n", "GET /\r\n\r\n",
				"GET  / HTTP/1.0\r\n\r\n", "GET /a\x01 HTTP/1.0\r\n\r\n",
				"GET / HTTP/1.0\r\nno colon\r\n\r\n", "GET / HTTP/1.0\r\n: x\r\n\r\n",
				"GET / HTTP/1.0\r\nA: \x02\r\n\r\n", "\x16\x03\x01 TLS",
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ /"})
		EXPECT_EQ(Parse(bad, &req), -EINVAL) << bad;
	EXPECT_EQ(Parse("GET /" + std::string(300, 'a') + " HTTP/1.0\r\n\r\n", &req), -E2BIG);
}

} // namespace
