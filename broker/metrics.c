/* SPDX-License-Identifier: MIT */
/*
 * oneringd --metrics-listen: GET /metrics over HTTP/1.0, served from the
 * control thread's epoll (broker/counters.h).
 *
 * It never blocks the broker: the listening socket and every connection are
 * non-blocking; a request is at most BROKER_HTTP_REQUEST_MAX bytes; each
 * connection has METRICS_DEADLINE_MS from accept to the last byte of its
 * answer, after which it is closed; at most METRICS_MAX_CONNS are open, and
 * one more is answered 503 (best effort, never waited for) and closed. One
 * request per connection (Connection: close). The answer is the Prometheus
 * text broker_counters_prometheus() makes - the same function `onering stat
 * --prometheus` prints with.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/control.h"
#include "broker/counters.h"
#include "shm/log.h"

#define METRICS_MAX_CONNS 16
#define METRICS_DEADLINE_MS 2000
/* Control epoll keys: the control loop's fixed keys are 1..3 and client
 * keys are pointers (> 4096). */
#define KEY_METRICS_LISTEN 16
#define KEY_METRICS_CONN 17 /* .. + METRICS_MAX_CONNS - 1 */

struct metrics_conn {
	int fd;                /* -1: a free entry */
	uint64_t deadline_ns;
	char in[BROKER_HTTP_REQUEST_MAX];
	size_t in_len;
	char *out;             /* the answer, once there is one */
	size_t out_len, out_sent;
};

struct broker_metrics {
	int listen_fd;
	struct metrics_conn conns[METRICS_MAX_CONNS];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int broker_metrics_addr_parse(const char *spec, struct sockaddr_storage *sa, unsigned *sa_len,
			      char *err, size_t err_size)
{
	char host[64];
	const char *port_s;
	char *end;

	memset(sa, 0, sizeof(*sa));
	if (spec[0] == '[') { /* [ADDR6]:PORT */
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
			goto bad;
		memcpy(host, spec + 1, (size_t)(close - spec - 1));
		host[close - spec - 1] = '\0';
		port_s = close + 2;
	} else if (strchr(spec, ':')) { /* ADDR:PORT */
		const char *colon = strrchr(spec, ':');
		if ((size_t)(colon - spec) >= sizeof(host) || colon == spec)
			goto bad;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		port_s = colon + 1;
	} else { /* PORT alone: loopback */
		snprintf(host, sizeof(host), "127.0.0.1");
		port_s = spec;
	}
	if (*port_s < '0' || *port_s > '9')
		goto bad;
	errno = 0;
	unsigned long port = strtoul(port_s, &end, 10);
	if (errno || *end || port == 0 || port > 65535)
		goto bad;
	struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*sa_len = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*sa_len = sizeof(*v6);
		return 0;
	}
bad:
	snprintf(err, err_size, "--metrics-listen %s: expected PORT (on 127.0.0.1), ADDR:PORT or "
		 "[ADDR6]:PORT with a numeric address and a port 1..65535", spec);
	return -EINVAL;
}

bool broker_metrics_owns(uint64_t key)
{
	return key >= KEY_METRICS_LISTEN && key < KEY_METRICS_CONN + METRICS_MAX_CONNS;
}

int broker_metrics_init(struct broker *b)
{
	struct sockaddr_storage sa;
	unsigned sa_len;
	char err[256];
	int r;

	if (!b->cfg.metrics_listen[0])
		return 0;
	if (broker_metrics_addr_parse(b->cfg.metrics_listen, &sa, &sa_len, err, sizeof(err)) < 0) {
		onering_log(ONERING_LOG_ERR, "%s", err); /* checked at parse: not reached */
		return -EINVAL;
	}
	struct broker_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (unsigned i = 0; i < METRICS_MAX_CONNS; i++)
		m->conns[i].fd = -1;
	m->listen_fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (m->listen_fd < 0 ||
	    setsockopt(m->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(m->listen_fd, (struct sockaddr *)&sa, sa_len) < 0 || listen(m->listen_fd, 16) < 0) {
		r = -errno;
		onering_log(ONERING_LOG_ERR, "--metrics-listen %s: %s (choose a free port, or an "
			    "address of this machine)", b->cfg.metrics_listen, strerror(-r));
		goto fail;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KEY_METRICS_LISTEN};
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, m->listen_fd, &ev) < 0) {
		r = -errno;
		onering_log(ONERING_LOG_ERR, "control epoll: adding the metrics socket: %s",
			    strerror(-r));
		goto fail;
	}
	b->counters.metrics = m;
	onering_log(ONERING_LOG_NOTICE, "metrics on http://%s%s/metrics",
		    strchr(b->cfg.metrics_listen, ':') ? "" : "127.0.0.1:", b->cfg.metrics_listen);
	return 0;
fail:
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	free(m);
	return r;
}

static void conn_close(struct broker *b, struct metrics_conn *c)
{
	/* close() takes it out of the epoll set: no other holder of the fd. */
	if (close(c->fd) < 0)
		onering_log(ONERING_LOG_WARN, "close of a metrics connection: %s", strerror(errno));
	(void)b;
	free(c->out);
	c->out = NULL;
	c->fd = -1;
}

/* Send what is left of the answer; closed once all is sent or on an error. */
static void conn_flush(struct broker *b, struct metrics_conn *c)
{
	while (c->out_sent < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct epoll_event ev = {.events = EPOLLOUT,
						 .data.u64 = KEY_METRICS_CONN +
							     (uint64_t)(c - b->counters.metrics->conns)};
			if (epoll_ctl(b->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
				return; /* the rest when it drains, or the deadline */
		} else if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0)
			break; /* the peer went, or epoll_ctl failed: give up on it */
		c->out_sent += (size_t)n;
	}
	conn_close(b, c);
}

/* The answer: status line, headers, body (NULL: the reason as text). */
static void conn_answer(struct broker *b, struct metrics_conn *c, int code, const char *reason,
			const char *body, size_t body_len, bool head)
{
	char hdr[256];
	int n;

	if (!body) {
		body = reason;
		body_len = strlen(reason);
	}
	n = snprintf(hdr, sizeof(hdr), "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: "
		     "%zu\r\n%sConnection: close\r\n\r\n", code, reason,
		     code == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain",
		     body_len, code == 405 ? "Allow: GET, HEAD\r\n" : "");
	size_t len = (size_t)n + (head ? 0 : body_len);
	c->out = malloc(len);
	if (!c->out) {
		conn_close(b, c);
		return;
	}
	memcpy(c->out, hdr, (size_t)n);
	if (!head)
		memcpy(c->out + n, body, body_len);
	c->out_len = len;
	c->out_sent = 0;
	if (code != 200)
		b->counters.http_errors++;
	conn_flush(b, c);
}

static void conn_readable(struct broker *b, struct metrics_conn *c)
{
	struct broker_http_request req;

	if (c->out) /* answering already: what more it sends is ignored */
		return;
	ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(b, c);
		return;
	}
	c->in_len += (size_t)n;
	int r = broker_http_parse(c->in, c->in_len, &req);
	if (r == 0 && c->in_len == sizeof(c->in))
		r = -E2BIG;
	if (r == 0)
		return; /* more to come, within the deadline */
	if (r == -E2BIG) {
		conn_answer(b, c, 431, "Request Header Fields Too Large\n", NULL, 0, false);
		return;
	}
	if (r < 0) {
		conn_answer(b, c, 400, "Bad Request\n", NULL, 0, false);
		return;
	}
	if (req.method == BROKER_HTTP_OTHER) {
		conn_answer(b, c, 405, "Method Not Allowed\n", NULL, 0, false);
		return;
	}
	bool head = req.method == BROKER_HTTP_HEAD;
	if (strcmp(req.path, "/metrics") != 0) {
		conn_answer(b, c, 404, "Not Found\n", NULL, 0, head);
		return;
	}
	char *text;
	size_t len;
	b->counters.http_requests++;
	if (broker_counters_prometheus(b, &text, &len) < 0) { /* logged there */
		conn_answer(b, c, 503, "Service Unavailable\n", NULL, 0, head);
		return;
	}
	conn_answer(b, c, 200, "OK", text, len, head);
	free(text);
}

static void accept_conns(struct broker *b)
{
	struct broker_metrics *m = b->counters.metrics;

	for (unsigned n = 0; n < 16; n++) {
		int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				onering_log(ONERING_LOG_WARN, "metrics accept: %s", strerror(errno));
			return;
		}
		struct metrics_conn *c = NULL;
		for (unsigned i = 0; i < METRICS_MAX_CONNS && !c; i++)
			if (m->conns[i].fd < 0)
				c = &m->conns[i];
		if (!c) {
			static const char busy[] = "HTTP/1.0 503 Service Unavailable\r\nContent-Length: "
						   "5\r\nConnection: close\r\n\r\nbusy\n";
			b->counters.http_refused++;
			if (send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
				/* it goes anyway: nothing more is owed to it */
			}
			close(fd);
			continue;
		}
		c->fd = fd;
		c->in_len = 0;
		c->out = NULL;
		c->deadline_ns = mono_ns() + METRICS_DEADLINE_MS * 1000000ull;
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
					 .data.u64 = KEY_METRICS_CONN + (uint64_t)(c - m->conns)};
		if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			onering_log(ONERING_LOG_WARN, "metrics connection: epoll_ctl ADD: %s",
				    strerror(errno));
			conn_close(b, c);
		}
	}
}

void broker_metrics_event(struct broker *b, uint64_t key, uint32_t events)
{
	struct broker_metrics *m = b->counters.metrics;

	if (!m)
		return;
	if (key == KEY_METRICS_LISTEN) {
		accept_conns(b);
		return;
	}
	struct metrics_conn *c = &m->conns[key - KEY_METRICS_CONN];
	if (c->fd < 0)
		return; /* closed earlier in this batch */
	if (c->out)
		conn_flush(b, c);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		conn_readable(b, c);
}

int broker_metrics_tick(struct broker *b)
{
	struct broker_metrics *m = b->counters.metrics;
	uint64_t now = mono_ns(), next = UINT64_MAX;

	if (!m)
		return -1;
	for (unsigned i = 0; i < METRICS_MAX_CONNS; i++) {
		struct metrics_conn *c = &m->conns[i];
		if (c->fd < 0)
			continue;
		if (now >= c->deadline_ns) {
			b->counters.http_timeouts++;
			conn_close(b, c);
			continue;
		}
		if (c->deadline_ns < next)
			next = c->deadline_ns;
	}
	return next == UINT64_MAX ? -1 : (int)((next - now + 999999) / 1000000);
}

void broker_metrics_fini(struct broker *b)
{
	struct broker_metrics *m = b->counters.metrics;

	if (!m)
		return;
	for (unsigned i = 0; i < METRICS_MAX_CONNS; i++)
		if (m->conns[i].fd >= 0)
			conn_close(b, &m->conns[i]);
	close(m->listen_fd);
	free(m);
	b->counters.metrics = NULL;
}
