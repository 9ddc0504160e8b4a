/* SPDX-License-Identifier: MIT */
/*
 * onering-http-server: a minimal HTTP/1.1 server whose readiness comes from
 * onering. Every request gets the same response ("hello, world\n"); the
 * point is the event loop, not HTTP.
 *
 * The listening socket and every connection are subscribed (ONERING_EDGE) to
 * one queue of a running oneringd; onering_wait() hands back one 64-byte
 * record per readiness edge, whose cookie is the connection's state. With
 * --epoll the same server logic runs on a plain edge-triggered epoll
 * instance instead, and with --uring on io_uring (multishot accept, multishot
 * receive into provided buffers, sendmsg), for comparison (`onering-bench
 * servers` runs them all). With --completion the broker moves the bytes
 * (completion mode, ABI 1.8): it accepts, receives into the queue's receive
 * buffers and sends from its transmit buffers, and the server makes no
 * system call at all while it serves.
 *
 * Build against an installed libonering:
 *   cc -O2 -o http http_server.c $(pkg-config --cflags --libs onering liburing)
 * Run, with a broker:
 *   oneringd --foreground --name ex --socket-dir /tmp/exdir &
 *   ./http --name ex --socket-dir /tmp/exdir --port 8080
 *   curl http://127.0.0.1:8080/
 *
 * HTTP handled: keep-alive (the HTTP/1.1 default), pipelined requests (all
 * requests of one read are answered with one write), "Connection: close",
 * request bodies with Content-Length (skipped). Answered and then closed:
 * HTTP/1.0 (always "Connection: close"), HEAD (no body), chunked request
 * bodies (501), malformed requests (400), heads over 8 KiB (431).
 *
 * The hot path does no allocation: a connection's state (with its request
 * buffer) comes from a free list, and the responses owed are a counter that
 * is written out of a static block of repeated responses.
 *
 * Edge-triggered rules followed here (both back ends):
 *  - a record means "something changed": read (or accept) until EAGAIN, or
 *    remember to come back, because no new record comes for data that was
 *    already there;
 *  - when responses cannot be written now, EPOLLOUT is added to the
 *    subscription (onering_mod: no system call), reading stops until they
 *    are sent, then EPOLLOUT is dropped and reading resumes;
 *  - records of one batch may name a connection closed earlier in the same
 *    batch, so a closed connection's state is recycled only after the batch.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, memmem; the onering build passes -D_GNU_SOURCE */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* pkg-config --cflags onering puts the header's directory on the path (in
 * the source tree, meson's onering_dep does the same). */
#include <onering.h>

#include <liburing.h>

#define PROG "onering-http-server"
#define BATCH_MAX 64                        /* records (or epoll events) per wait */
#define IN_BUF_SIZE 8192                    /* a request head must fit */
#define OK_BLOCK_COUNT 64                   /* responses in the static send block */
#define WAIT_SLICE_NS (250ll * 1000 * 1000) /* re-check the stop flag this often */
#define SQ_RETRY_NS (1000ll * 1000 * 1000)  /* wait this long for submission-ring space */

/* ---- the two back ends behind one small interface ----------------------- */

/* One readiness report, whichever back end produced it. */
struct ready {
	uint64_t cookie;
	uint32_t events;
};

struct loop {
	bool use_epoll;
	int epfd;                /* --epoll */
	struct onering *att;     /* onering: the attachment ... */
	struct onering_queue *q; /* ... and its one queue (this thread's) */
};

/* A registration: the onering subscription, or the fd for epoll. */
struct watch {
	struct onering_sub sub;
	int fd;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* --idle: the queue's idle strategy (onering_queue_options.idle), what
 * onering_wait() does before it sleeps. Unset (-1): $ONERING_IDLE when set,
 * else overprovisioned (sleep at once, as --yields 0 says) for readiness and
 * the library's default (backoff: spin 50 us, then sleep) in completion
 * mode. Readiness shares its CPU with its clients in onering-bench servers,
 * where a spin only takes wrk's time, as an epoll server's epoll_wait()
 * does not (docs/benchmarks.md, HTTP servers). Given, --idle wins over
 * $ONERING_IDLE: backoff is the library's 0, which reads the variable, so
 * main() unsets it. */
static int queue_idle = -1;

static int loop_open(struct loop *l, bool use_epoll, const char *name, const char *socket_dir)
{
	memset(l, 0, sizeof(*l));
	l->use_epoll = use_epoll;
	l->epfd = -1;
	if (use_epoll) {
		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (l->epfd < 0) {
			fprintf(stderr, PROG ": epoll_create1: %s\n", strerror(errno));
			return -errno;
		}
		return 0;
	}

	struct onering_attach_options ao = {.name = name, .socket_dir = socket_dir};
	int r = onering_attach_opts(&ao, &l->att);
	if (r < 0) {
		fprintf(stderr,
			PROG ": cannot attach to the onering broker: %s (%s)\n"
			"  start one, e.g.: oneringd --foreground --name %s%s%s &\n"
			"  or run this server on plain epoll with --epoll\n",
			onering_last_error(NULL), onering_strerror(r), name ? name : "default",
			socket_dir ? " --socket-dir " : "", socket_dir ? socket_dir : "");
		return r;
	}
	/* A bigger submission ring than the default: every connection that
	 * blocks on output costs two onering_mod() requests. */
	struct onering_queue_options qo = {.sq_capacity = 1024, .idle = (uint32_t)queue_idle};
	r = onering_queue_open(l->att, &qo, &l->q);
	if (r < 0) {
		fprintf(stderr, PROG ": cannot open a queue: %s (%s)\n", onering_last_error(l->att),
			onering_strerror(r));
		onering_detach(l->att);
		l->att = NULL;
		return r;
	}
	return 0;
}

static void loop_close(struct loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	onering_detach(l->att); /* closes the queue too; safe on NULL */
	l->epfd = -1;
	l->att = NULL;
	l->q = NULL;
}

/* Watch fd for events (edge-triggered); records carry cookie. */
static int loop_add(struct loop *l, int fd, uint32_t events, uint64_t cookie, struct watch *w)
{
	w->fd = fd;
	if (l->use_epoll) {
		struct epoll_event ev = {.events = events | EPOLLET, .data.u64 = cookie};
		return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
	}
	return onering_add(l->q, fd, events, ONERING_EDGE, cookie, &w->sub);
}

/* Change the events of a watch. onering: no system call; the broker
 * applies it when it drains the submission ring and reports the fd again
 * if it is ready then, so no edge is lost in between. */
static int loop_mod(struct loop *l, const struct watch *w, uint32_t events, uint64_t cookie)
{
	if (l->use_epoll) {
		struct epoll_event ev = {.events = events | EPOLLET, .data.u64 = cookie};
		return epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0 ? -errno : 0;
	}
	/* -EAGAIN: the submission ring is full. The broker drains it on its
	 * own (not when we consume), so wait for it, bounded. */
	int64_t deadline = 0;
	int r;
	while ((r = onering_mod(l->q, w->sub, events)) == -EAGAIN) {
		int64_t now = now_ns();
		if (!deadline)
			deadline = now + SQ_RETRY_NS;
		if (now > deadline)
			break;
		sched_yield();
	}
	return r;
}

/* Stop watching (before the fd is closed). onering: from here on no record
 * of this watch is returned, even one already in the ring. */
static int loop_del(struct loop *l, const struct watch *w)
{
	if (l->use_epoll)
		return epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL) < 0 ? -errno : 0;
	return onering_del(l->q, w->sub);
}

/* --yields: how many times an onering back end, finding no record, yields
 * its CPU (sched_yield) and looks again before it sleeps in onering_wait(). A
 * server that shares its core with its clients (wrk here) then lets them run
 * without going to sleep: the broker's next record finds it runnable, and no
 * wake-up has to cross cores (an inter-processor interrupt; in a VM an exit).
 * 0: sleep at once (onering_wait's own idle strategy, $ONERING_IDLE). The
 * default is 64 in completion mode and 0 for readiness (onering-bench
 * servers, docs/benchmarks-history.md: completion 1.6x the requests/s with them,
 * readiness the same requests/s and a longer tail). */
static unsigned long spin_yields = ULONG_MAX; /* ULONG_MAX: the back end's default */

static volatile sig_atomic_t stop_requested;

/* onering_poll, then up to spin_yields yields, then onering_wait. */
static int onering_take(struct onering_queue *q, struct onering_event *evs, unsigned max,
			int64_t timeout_ns)
{
	int n = onering_poll(q, evs, max);

	for (unsigned long k = 0; n == 0 && k < spin_yields && !stop_requested; k++) {
		sched_yield();
		n = onering_poll(q, evs, max);
	}
	return n != 0 ? n : onering_wait(q, evs, 1, max, timeout_ns);
}

/* Wait up to timeout_ns for readiness. Returns reports, 0 on timeout or
 * signal, or a negative errno (onering: -ECONNRESET when the broker died). */
static int loop_wait(struct loop *l, struct ready *out, unsigned max, int64_t timeout_ns)
{
	if (l->use_epoll) {
		struct epoll_event evs[BATCH_MAX];
		int ms = (int)((timeout_ns + 999999) / 1000000);
		int n = epoll_wait(l->epfd, evs, max < BATCH_MAX ? (int)max : BATCH_MAX, ms);
		if (n < 0)
			return errno == EINTR ? 0 : -errno;
		for (int i = 0; i < n; i++)
			out[i] = (struct ready){.cookie = evs[i].data.u64, .events = evs[i].events};
		return n;
	}
	struct onering_event evs[BATCH_MAX];
	int n = onering_take(l->q, evs, max < BATCH_MAX ? max : BATCH_MAX, timeout_ns);
	if (n < 0)
		return n == -EINTR ? 0 : n;
	int k = 0;
	for (int i = 0; i < n; i++)
		if (evs[i].kind == ONERING_EV_FD)
			out[k++] = (struct ready){.cookie = evs[i].cookie, .events = evs[i].events};
	return k;
}

/* ---- HTTP ---------------------------------------------------------------- */

#define BODY "hello, world\n"
#define OK_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"

static const char resp_ok[] = OK_HEAD "\r\n" BODY;
static const char resp_ok_close[] = OK_HEAD "Connection: close\r\n\r\n" BODY;
static const char resp_head_close[] = OK_HEAD "Connection: close\r\n\r\n";
static const char resp_bad[] =
	"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char resp_too_large[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
				     "Content-Length: 0\r\nConnection: close\r\n\r\n";
static const char resp_chunked[] =
	"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

#define OK_LEN (sizeof(resp_ok) - 1)

/* OK_BLOCK_COUNT copies of resp_ok back to back: n responses, starting
 * anywhere inside the first, are one contiguous write. */
static char ok_block[OK_BLOCK_COUNT * OK_LEN];

struct conn {
	struct watch w;
	int fd;            /* -1 once closed (its state waits for the end of the batch) */
	bool want_out;     /* EPOLLOUT subscribed: responses are waiting */
	bool eof;          /* the peer sent FIN: answer what we have, then close */
	uint64_t owed;     /* keep-alive responses (resp_ok) not fully sent */
	const char *final; /* the last response (then close), or NULL */
	size_t final_len;
	size_t out_off;    /* bytes sent of the first owed response, or of final */
	uint64_t body_left; /* body bytes of the current request still to skip */
	size_t in_len;     /* bytes in in[] */
	size_t scan_from;  /* where to resume looking for the end of a head */
	/* --uring: operations in flight (the state is recycled only at 0), a
	 * send in flight and what it offered, the multishot receive armed. */
	unsigned ops;
	bool sending, recv_armed;
	uint64_t send_ok_bytes;
	struct iovec send_iov[2];
	struct msghdr send_msg;
	struct conn *next; /* free list / closed list */
	struct conn *live_prev, *live_next; /* open connections */
	char in[IN_BUF_SIZE];
};

struct uring_srv;
struct comp_srv;

struct server {
	struct loop loop;
	struct uring_srv *uring; /* --uring (then loop is unused) */
	struct comp_srv *comp;   /* --completion (then loop is unused) */
	int listen_fd;
	struct watch listen_watch;
	struct conn *free_conns;   /* recycled connection states */
	struct conn *closed_conns; /* closed in this batch, recycled after it */
	struct conn *live_conns;   /* open connections */
	unsigned long nr_conns;
	uint64_t nr_requests;
};

#define LISTEN_COOKIE 0 /* connection cookies are conn pointers, never 0 */
/* EPOLLRDHUP: a FIN that came before the event is in it (conn_read's
 * short-read rule). */
#define CONN_EVENTS (EPOLLIN | EPOLLRDHUP)

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* Is the header name [p, p + len) equal to name (case-insensitive)? */
static bool name_is(const char *p, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(p, name, len) == 0;
}

/* Does the comma-separated list [p, end) hold token (case-insensitive)? */
static bool has_token(const char *p, const char *end, const char *token)
{
	size_t tlen = strlen(token);

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		const char *e = p;
		while (e < end && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == tlen && strncasecmp(p, token, tlen) == 0)
			return true;
		p = e;
	}
	return false;
}

/* What one request head asks of us. */
enum head_verdict {
	HEAD_NONE,      /* blank lines only: nothing to answer */
	HEAD_KEEP,      /* answer with resp_ok, keep the connection */
	HEAD_LAST,      /* answer with c->final, then close */
};

/* Parse the head [p, p + len), which ends with "\r\n\r\n". Sets c->final
 * for a last answer and c->body_left for a body to skip. */
static enum head_verdict parse_head(struct conn *c, const char *p, size_t len)
{
	const char *end = p + len - 2; /* the empty line that ends the head */
	bool keep_alive, head_method, chunked = false;
	uint64_t content_length = 0;
	bool have_length = false;

	while (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
		p += 2; /* empty lines before a request are ignored (RFC 9112 2.2) */
	if (p >= end)
		return HEAD_NONE;

	/* Request line: METHOD SP TARGET SP HTTP/1.x CRLF */
	const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
	const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1 || eol - sp2 - 1 != 8 ||
	    memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
		goto bad;
	keep_alive = sp2[8] == '1'; /* HTTP/1.0: we always close */
	head_method = sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0;

	/* Header fields: NAME ":" OWS VALUE OWS CRLF */
	for (const char *line = eol + 2; line < end; line = eol + 2) {
		eol = memmem(line, (size_t)(end - line), "\r\n", 2);
		const char *colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon || colon == line || line[0] == ' ' || line[0] == '\t')
			goto bad; /* no name, or obsolete line folding */
		const char *v = colon + 1, *ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		size_t nlen = (size_t)(colon - line);
		if (name_is(line, nlen, "connection")) {
			if (has_token(v, ve, "close"))
				keep_alive = false;
		} else if (name_is(line, nlen, "content-length")) {
			uint64_t n = 0;
			if (v == ve)
				goto bad;
			for (const char *d = v; d < ve; d++) {
				if (*d < '0' || *d > '9' || n > (UINT64_MAX - 9) / 10)
					goto bad;
				n = n * 10 + (uint64_t)(*d - '0');
			}
			if (have_length && n != content_length)
				goto bad;
			content_length = n;
			have_length = true;
		} else if (name_is(line, nlen, "transfer-encoding")) {
			chunked = true; /* any transfer coding: we do not decode them */
		}
	}
	if (chunked) {
		c->final = resp_chunked;
		c->final_len = sizeof(resp_chunked) - 1;
		return HEAD_LAST;
	}
	c->body_left = content_length;
	if (head_method) {
		c->final = resp_head_close;
		c->final_len = sizeof(resp_head_close) - 1;
		return HEAD_LAST;
	}
	if (keep_alive)
		return HEAD_KEEP;
	c->final = resp_ok_close;
	c->final_len = sizeof(resp_ok_close) - 1;
	return HEAD_LAST;
bad:
	c->final = resp_bad;
	c->final_len = sizeof(resp_bad) - 1;
	return HEAD_LAST;
}

/* Answer every complete request in c->in; keep the partial one. */
static void conn_parse(struct server *s, struct conn *c)
{
	size_t pos = 0;

	while (pos < c->in_len && !c->final) {
		if (c->body_left) {
			size_t k = c->in_len - pos;
			if (k > c->body_left)
				k = (size_t)c->body_left;
			pos += k;
			c->body_left -= k;
			continue;
		}
		size_t from = c->scan_from > pos ? c->scan_from : pos;
		const char *e = memmem(c->in + from, c->in_len - from, "\r\n\r\n", 4);
		if (!e) {
			/* Resume where a split "\r\n\r\n" could start. */
			c->scan_from = c->in_len > pos + 3 ? c->in_len - 3 : pos;
			break;
		}
		size_t head_end = (size_t)(e - c->in) + 4;
		enum head_verdict v = parse_head(c, c->in + pos, head_end - pos);
		if (v != HEAD_NONE)
			s->nr_requests++;
		if (v == HEAD_KEEP)
			c->owed++;
		pos = head_end;
		c->scan_from = pos;
	}
	if (c->final) {
		c->in_len = 0; /* the last answer is decided: the rest is ignored */
		c->scan_from = 0;
		return;
	}
	memmove(c->in, c->in + pos, c->in_len - pos);
	c->in_len -= pos;
	c->scan_from -= c->scan_from > pos ? pos : c->scan_from;
	if (c->in_len == sizeof(c->in)) {
		c->final = resp_too_large;
		c->final_len = sizeof(resp_too_large) - 1;
		c->in_len = 0;
		c->scan_from = 0;
	}
}

/* ---- connections ---------------------------------------------------------- */

/* c leaves the open connections. */
static void conn_unlink(struct server *s, struct conn *c)
{
	if (c->live_prev)
		c->live_prev->live_next = c->live_next;
	else
		s->live_conns = c->live_next;
	if (c->live_next)
		c->live_next->live_prev = c->live_prev;
	s->nr_conns--;
}

static void conn_close(struct server *s, struct conn *c)
{
	if (c->fd < 0)
		return;
	if (s->uring) {
		/* The kernel holds the socket while an operation is in flight:
		 * shutting down reading ends the armed receive (its last
		 * completion), and sends our FIN now. */
		shutdown(c->fd, SHUT_RDWR);
	} else {
		int r = loop_del(&s->loop, &c->w);
		if (r < 0 && r != -ENOENT)
			fprintf(stderr, PROG ": deleting the watch of fd %d: %s\n", c->fd,
				s->loop.use_epoll ? strerror(-r) : onering_strerror(r));
		/* onering: the broker holds a duplicate of the fd until it drains
		 * the delete; shutdown() sends our FIN now rather than then. */
		shutdown(c->fd, SHUT_WR);
	}
	close(c->fd);
	c->fd = -1;
	conn_unlink(s, c);
	c->next = s->closed_conns;
	s->closed_conns = c;
}

/* Recycle the states closed during the batch just handled (--uring: those
 * with no operation in flight; the others wait for their completions). */
static void recycle_closed(struct server *s)
{
	struct conn **pp = &s->closed_conns;

	while (*pp) {
		struct conn *c = *pp;
		if (c->ops) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		c->next = s->free_conns;
		s->free_conns = c;
	}
}

/* The responses owed as up to two iovecs (the keep-alive ones from the
 * static block, then the final one); *ok_bytes: the keep-alive bytes among
 * them. 0: nothing owed. */
static int conn_out_iov(const struct conn *c, struct iovec *iov, uint64_t *ok_bytes)
{
	int niov = 0;

	*ok_bytes = 0;
	if (c->owed) {
		*ok_bytes = c->owed * OK_LEN - c->out_off;
		size_t room = sizeof(ok_block) - c->out_off;
		iov[niov].iov_base = ok_block + c->out_off;
		iov[niov++].iov_len = *ok_bytes < room ? (size_t)*ok_bytes : room;
		if (*ok_bytes <= room && c->final) {
			iov[niov].iov_base = (void *)(uintptr_t)c->final;
			iov[niov++].iov_len = c->final_len;
		}
	} else if (c->final) {
		iov[niov].iov_base = (void *)(uintptr_t)(c->final + c->out_off);
		iov[niov++].iov_len = c->final_len - c->out_off;
	}
	return niov;
}

/* sent bytes of what conn_out_iov offered went out: true when that was the
 * end of the final response (the caller closes). */
static bool conn_sent(struct conn *c, uint64_t sent, uint64_t ok_bytes)
{
	if (c->owed) {
		uint64_t k = sent < ok_bytes ? sent : ok_bytes;
		c->out_off += (size_t)k;
		c->owed -= c->out_off / OK_LEN;
		c->out_off %= OK_LEN;
		sent -= k;
	}
	if (sent) { /* into final: owed is 0 and out_off restarted at 0 */
		c->out_off += (size_t)sent;
		if (c->out_off == c->final_len)
			return true;
	}
	return false;
}

/* Send the responses owed. 1 when all are sent, 0 when the socket is full
 * (EPOLLOUT is then subscribed), -errno. */
static int conn_flush(struct server *s, struct conn *c)
{
	while (c->owed || c->final) {
		struct iovec iov[2];
		uint64_t ok_bytes;
		int niov = conn_out_iov(c, iov, &ok_bytes);
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
		ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!c->want_out) {
				int r = loop_mod(&s->loop, &c->w, CONN_EVENTS | EPOLLOUT,
						 (uint64_t)(uintptr_t)c);
				if (r < 0)
					return r;
				c->want_out = true;
			}
			return 0;
		}
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		if (conn_sent(c, (uint64_t)n, ok_bytes))
			return 1; /* the last answer is out: the caller closes */
	}
	if (c->want_out) {
		int r = loop_mod(&s->loop, &c->w, CONN_EVENTS, (uint64_t)(uintptr_t)c);
		if (r < 0)
			return r;
		c->want_out = false;
	}
	return 1;
}

/* Read and answer as we go; stop early while the socket is full (EPOLLOUT
 * brings us back). Closes when the conversation is over.
 *
 * Without drain, a short read ends it: it emptied the socket, and bytes
 * that come later wake the (edge-triggered) watch again - the read that
 * would only say EAGAIN is skipped, as nginx skips it. drain: read until
 * EAGAIN or the end, when no new edge is sure to come: the event said
 * the peer hung up (its FIN may sit behind the bytes read), or there was
 * no event (after a flush). */
static void conn_read(struct server *s, struct conn *c, bool drain)
{
	int r;

	while (!c->final && !c->eof) {
		size_t room = sizeof(c->in) - c->in_len;
		ssize_t n = read(c->fd, c->in + c->in_len, room);
		if (n > 0) {
			c->in_len += (size_t)n;
			conn_parse(s, c);
			if (c->owed || c->final) {
				r = conn_flush(s, c);
				if (r < 0)
					goto close;
				if (r == 0)
					return; /* socket full: EPOLLOUT resumes us */
				if (c->final)
					goto close;
			}
			if (!drain && (size_t)n < room)
				return;
		} else if (n == 0) {
			c->eof = true;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN) {
			return;
		} else {
			goto close; /* ECONNRESET & co. */
		}
	}
	/* No more input wanted: finish the answers, then close. */
	r = conn_flush(s, c);
	if (r == 0)
		return;
close:
	conn_close(s, c);
}

static void conn_ready(struct server *s, struct conn *c, uint32_t events)
{
	if (c->fd < 0)
		return; /* closed earlier in this batch */
	if (c->want_out) {
		int r = conn_flush(s, c);
		if (r < 0 || (r == 1 && (c->final || c->eof))) {
			conn_close(s, c);
			return;
		}
		if (r == 0)
			return; /* still full: wait for the next EPOLLOUT */
		/* Sent: read what arrived meanwhile; there may be no new edge. */
		conn_read(s, c, true);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		conn_read(s, c, (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0);
}

static struct conn *conn_get(struct server *s)
{
	struct conn *c = s->free_conns;

	if (c) {
		s->free_conns = c->next;
	} else {
		c = malloc(sizeof(*c)); /* once per concurrent connection, then reused */
		if (!c)
			return NULL;
	}
	c->fd = -1;
	c->want_out = false;
	c->eof = false;
	c->owed = 0;
	c->final = NULL;
	c->final_len = 0;
	c->out_off = 0;
	c->body_left = 0;
	c->in_len = 0;
	c->scan_from = 0;
	c->ops = 0;
	c->sending = false;
	c->recv_armed = false;
	c->next = NULL;
	return c;
}

/* The state of an accepted connection fd (TCP_NODELAY: the responses are
 * small and must not wait), or NULL (fd closed: no memory). */
static struct conn *conn_new(struct server *s, int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct conn *c = conn_get(s);
	if (!c) {
		fprintf(stderr, PROG ": out of memory for a connection\n");
		close(fd);
		return NULL;
	}
	c->fd = fd;
	return c;
}

/* c, just accepted, joins the open connections. */
static void conn_link(struct server *s, struct conn *c)
{
	c->live_prev = NULL;
	c->live_next = s->live_conns;
	if (s->live_conns)
		s->live_conns->live_prev = c;
	s->live_conns = c;
	s->nr_conns++;
}

/* Accept every pending connection (edge-triggered: until EAGAIN). */
static void accept_all(struct server *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				/* EMFILE & co.: the rest wait for the next connection's edge. */
				fprintf(stderr, PROG ": accept: %s\n", strerror(errno));
			return;
		}
		struct conn *c = conn_new(s, fd);
		if (!c)
			continue;
		int r = loop_add(&s->loop, fd, CONN_EVENTS, (uint64_t)(uintptr_t)c, &c->w);
		if (r < 0) {
			fprintf(stderr, PROG ": watching a connection: %s\n",
				s->loop.use_epoll ? strerror(-r) : onering_strerror(r));
			close(fd);
			c->fd = -1;
			c->next = s->free_conns;
			s->free_conns = c;
			if (r == -ECONNRESET)
				return; /* the broker is gone: the wait loop reports it */
			continue;
		}
		conn_link(s, c);
	}
}

/* ---- the io_uring back end (--uring) --------------------------------------
 *
 * The same connections and HTTP logic on io_uring, as an io_uring server is
 * written: a multishot accept on the listening socket; per connection a
 * multishot receive into provided buffers (a buffer ring shared with the
 * kernel, each buffer given back as soon as its bytes are copied into the
 * connection's request buffer); a sendmsg per batch of responses, one in
 * flight per connection. One io_uring_enter per loop submits everything
 * and waits (single issuer, deferred task work where the kernel has it).
 */

#define URING_ENTRIES 1024   /* submission queue; the completion queue is 8x */
#define URING_BUFS 4096      /* provided receive buffers (a power of two) */
#define URING_BUF_SIZE 2048
#define URING_BGID 1
enum { OP_ACCEPT = 1, OP_RECV, OP_SEND }; /* user_data's low bits; the rest: the conn */

struct uring_srv {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	char *bufs;
	int mask;
	int listen_fd;
};

/* A submission slot; when the queue is full, what it holds is submitted. */
static struct io_uring_sqe *uring_sqe(struct uring_srv *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe && io_uring_submit(&u->ring) >= 0)
		sqe = io_uring_get_sqe(&u->ring);
	if (!sqe)
		fprintf(stderr, PROG ": io_uring: no submission slot\n");
	return sqe;
}

static int uring_open(struct uring_srv *u, int listen_fd)
{
	struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
					     IORING_SETUP_DEFER_TASKRUN,
				    .cq_entries = URING_ENTRIES * 8};
	int r = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &p);

	if (r == -EINVAL) { /* a kernel before 6.1: without deferred task work */
		p = (struct io_uring_params){.flags = IORING_SETUP_CQSIZE,
					     .cq_entries = URING_ENTRIES * 8};
		r = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &p);
	}
	if (r < 0) {
		fprintf(stderr, PROG ": io_uring_queue_init: %s\n", strerror(-r));
		return r;
	}
	size_t ring_size = URING_BUFS * sizeof(struct io_uring_buf);
	u->br = mmap(NULL, ring_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	u->bufs = malloc((size_t)URING_BUFS * URING_BUF_SIZE);
	if (u->br == MAP_FAILED || !u->bufs) {
		fprintf(stderr, PROG ": no memory for the receive buffers\n");
		return -ENOMEM;
	}
	struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)u->br,
				       .ring_entries = URING_BUFS, .bgid = URING_BGID};
	if ((r = io_uring_register_buf_ring(&u->ring, &reg, 0)) < 0) {
		fprintf(stderr, PROG ": io_uring_register_buf_ring: %s\n", strerror(-r));
		return r;
	}
	io_uring_buf_ring_init(u->br);
	u->mask = io_uring_buf_ring_mask(URING_BUFS);
	for (int i = 0; i < URING_BUFS; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * URING_BUF_SIZE, URING_BUF_SIZE,
				      (unsigned short)i, u->mask, i);
	io_uring_buf_ring_advance(u->br, URING_BUFS);
	u->listen_fd = listen_fd;
	return 0;
}

static void uring_close(struct uring_srv *u)
{
	if (u->ring.ring_fd > 0)
		io_uring_queue_exit(&u->ring);
	if (u->br && u->br != MAP_FAILED)
		munmap(u->br, URING_BUFS * sizeof(struct io_uring_buf));
	free(u->bufs);
}

static void uring_arm_accept(struct uring_srv *u)
{
	struct io_uring_sqe *sqe = uring_sqe(u);

	if (!sqe)
		return;
	io_uring_prep_multishot_accept(sqe, u->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, OP_ACCEPT);
}

static void uring_arm_recv(struct uring_srv *u, struct conn *c)
{
	struct io_uring_sqe *sqe = uring_sqe(u);

	if (!sqe)
		return;
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = URING_BGID;
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_RECV);
	c->ops++;
	c->recv_armed = true;
}

/* The responses owed, as one sendmsg (one in flight per connection). */
static void uring_send(struct uring_srv *u, struct conn *c)
{
	if (c->sending || c->fd < 0)
		return;
	int niov = conn_out_iov(c, c->send_iov, &c->send_ok_bytes);
	if (niov == 0)
		return;
	struct io_uring_sqe *sqe = uring_sqe(u);
	if (!sqe)
		return;
	c->send_msg = (struct msghdr){.msg_iov = c->send_iov, .msg_iovlen = (size_t)niov};
	io_uring_prep_sendmsg(sqe, c->fd, &c->send_msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SEND);
	c->ops++;
	c->sending = true;
}

static void uring_accepted(struct server *s, struct uring_srv *u, int fd)
{
	struct conn *c = conn_new(s, fd);

	if (!c)
		return;
	conn_link(s, c);
	uring_arm_recv(u, c);
}

/* bytes received into buffer bid: into c's request buffer, answered. */
/* len received bytes at p (a back end's buffer): into c's request buffer,
 * answered (--uring, --completion). */
static void conn_take(struct server *s, struct conn *c, const char *p, size_t len)
{
	while (len && !c->final && c->fd >= 0) {
		size_t room = sizeof(c->in) - c->in_len;
		size_t k = len < room ? len : room;
		memcpy(c->in + c->in_len, p, k);
		c->in_len += k;
		p += k;
		len -= k;
		conn_parse(s, c); /* a full buffer with no head end: 431 */
	}
}

static void uring_received(struct server *s, struct uring_srv *u, struct conn *c, unsigned bid,
			   size_t len)
{
	conn_take(s, c, u->bufs + (size_t)bid * URING_BUF_SIZE, len);
	io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * URING_BUF_SIZE, URING_BUF_SIZE,
			      (unsigned short)bid, u->mask, 0);
	io_uring_buf_ring_advance(u->br, 1);
}

static void uring_complete(struct server *s, struct uring_srv *u, const struct io_uring_cqe *cqe)
{
	unsigned op = (unsigned)(cqe->user_data & 7);
	struct conn *c = (struct conn *)(uintptr_t)(cqe->user_data & ~(uint64_t)7);
	bool more = cqe->flags & IORING_CQE_F_MORE;

	if (op == OP_ACCEPT) {
		if (cqe->res >= 0)
			uring_accepted(s, u, cqe->res);
		else if (cqe->res != -EINTR && cqe->res != -ECONNABORTED)
			fprintf(stderr, PROG ": accept: %s\n", strerror(-cqe->res));
		if (!more && !stop_requested)
			uring_arm_accept(u);
		return;
	}
	if (op == OP_RECV) {
		if (!more) {
			c->ops--;
			c->recv_armed = false;
		}
		if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER))
			uring_received(s, u, c, cqe->flags >> IORING_CQE_BUFFER_SHIFT,
				       (size_t)cqe->res);
		else if (cqe->res == 0)
			c->eof = true;
		else if (cqe->res != -ENOBUFS) /* out of buffers: armed again below */
			conn_close(s, c);
	} else { /* OP_SEND */
		c->ops--;
		c->sending = false;
		if (c->fd >= 0 && cqe->res < 0) {
			conn_close(s, c);
		} else if (c->fd >= 0 && conn_sent(c, (uint64_t)cqe->res, c->send_ok_bytes)) {
			conn_close(s, c); /* the last answer is out */
			return;
		}
	}
	if (c->fd < 0)
		return; /* closed: recycled once nothing is in flight */
	uring_send(u, c);
	if (!c->sending && (c->eof || c->final))
		conn_close(s, c); /* nothing more to say, nor to hear */
	else if (!c->recv_armed && !c->eof && !c->final)
		uring_arm_recv(u, c);
}

/* The loop: one io_uring_enter submits what the last batch queued and
 * waits for completions (up to slice_ns). 0, or -errno. */
static int uring_loop(struct server *s, struct uring_srv *u, int64_t slice_ns)
{
	struct __kernel_timespec ts = {.tv_sec = slice_ns / 1000000000ll,
				       .tv_nsec = slice_ns % 1000000000ll};
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	int r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
	if (r < 0 && r != -ETIME && r != -EINTR)
		return r;
	io_uring_for_each_cqe(&u->ring, head, cqe) {
		uring_complete(s, u, cqe);
		n++;
	}
	io_uring_cq_advance(&u->ring, n);
	return 0;
}

/* ---- completion mode (--completion) ---------------------------------------
 *
 * The broker accepts on the listening socket, receives into this queue's
 * receive buffers and sends from its transmit buffers; the server reads
 * records and posts SENDs, both through shared memory. A connection is its
 * subscription (the ids in its records), its state found by sub_id. The
 * request bytes are copied into the connection's request buffer, as the
 * other back ends do; the responses owed are copied into a transmit buffer
 * (one send in flight per connection).
 */

#define COMP_RX 2048  /* receive buffers */
#define COMP_TX 2048  /* transmit buffers: one per connection sending */
#define COMP_BUF 4096 /* bytes each */

struct comp_srv {
	struct onering *att;
	struct onering_queue *q;
	struct conn **by_id; /* connection state by sub_id */
	uint32_t nr_ids;
	struct conn *tx_wait; /* connections waiting for a transmit buffer */
};

/* A submission that found the ring full: the broker drains it on its own,
 * so try again for a while (SQ_RETRY_NS). */
#define COMP_RETRY(call)                                                                    \
	({                                                                                  \
		int r_;                                                                     \
		int64_t until_ = now_ns() + SQ_RETRY_NS;                                    \
		while ((r_ = (call)) == -EAGAIN && now_ns() < until_)                       \
			sched_yield();                                                      \
		if (r_ < 0)                                                                 \
			fprintf(stderr, PROG ": %s: %s\n", #call, onering_strerror(r_));     \
		r_;                                                                         \
	})

static int comp_open(struct comp_srv *m, int listen_fd, const char *name, const char *socket_dir)
{
	struct onering_attach_options ao = {.name = name, .socket_dir = socket_dir};
	int r = onering_attach_opts(&ao, &m->att);

	if (r < 0) {
		fprintf(stderr, PROG ": cannot attach to the onering broker: %s (%s)\n",
			onering_last_error(NULL), onering_strerror(r));
		return r;
	}
	struct onering_queue_options qo = {.capacity = 8192, .sq_capacity = 4096,
					   .stream_rx = COMP_RX, .stream_tx = COMP_TX,
					   .stream_buf = COMP_BUF, .idle = (uint32_t)queue_idle};
	struct onering_sub ls;
	if ((r = onering_queue_open(m->att, &qo, &m->q)) < 0 ||
	    (r = onering_stream_add(m->q, listen_fd, 0, &ls)) < 0) {
		fprintf(stderr, PROG ": completion mode: %s (%s)\n", onering_last_error(m->att),
			onering_strerror(r));
		return r;
	}
	return 0;
}

static void comp_close(struct comp_srv *m)
{
	onering_detach(m->att); /* the broker closes every connection of the queue */
	for (uint32_t i = 0; i < m->nr_ids; i++)
		free(m->by_id[i]); /* open or closing: not on the free list */
	free(m->by_id);
}

static void comp_conn_close(struct server *s, struct comp_srv *m, struct conn *c, unsigned flags);

/* The responses c owes, copied into one transmit buffer and sent. */
static void comp_send(struct server *s, struct comp_srv *m, struct conn *c)
{
	if (c->sending || c->fd < 0)
		return;
	struct iovec iov[2];
	uint64_t ok_bytes;
	int niov = conn_out_iov(c, iov, &ok_bytes);
	if (niov == 0)
		return;
	char *buf = onering_stream_buffer(m->q);
	if (!buf) { /* every one in flight: after the next SENT */
		c->next = m->tx_wait;
		m->tx_wait = c;
		c->sending = true;
		c->want_out = true; /* on tx_wait */
		return;
	}
	size_t cap = onering_stream_buffer_size(m->q), n = 0;
	for (int i = 0; i < niov && n < cap; i++) {
		size_t k = iov[i].iov_len < cap - n ? iov[i].iov_len : cap - n;
		memcpy(buf + n, iov[i].iov_base, k);
		n += k;
	}
	c->send_ok_bytes = ok_bytes < n ? ok_bytes : n;
	c->sending = true;
	if (COMP_RETRY(onering_stream_send(m->q, c->w.sub, buf, n, 0)) < 0)
		comp_conn_close(s, m, c, ONERING_CLOSE_ABORT); /* said above */
}

/* Close c once what it sent is out (its CLOSED record recycles it). */
static void comp_conn_close(struct server *s, struct comp_srv *m, struct conn *c, unsigned flags)
{
	if (c->fd < 0)
		return;
	COMP_RETRY(onering_stream_close(m->q, c->w.sub, flags));
	c->fd = -1;
	conn_unlink(s, c);
}

static void comp_record(struct server *s, struct comp_srv *m, const struct onering_event *e)
{
	const struct onering_event_stream *st = &e->payload.stream;
	struct conn *c = e->sub_id < m->nr_ids ? m->by_id[e->sub_id] : NULL;

	switch (st->op) {
	case ONERING_STREAM_ACCEPTED:
		if (e->sub_id >= m->nr_ids) {
			uint32_t n = m->nr_ids ? m->nr_ids : 1024;
			while (n <= e->sub_id)
				n *= 2;
			struct conn **t = realloc(m->by_id, n * sizeof(*t));
			if (!t)
				break;
			memset(t + m->nr_ids, 0, (n - m->nr_ids) * sizeof(*t));
			m->by_id = t;
			m->nr_ids = n;
		}
		c = conn_get(s);
		if (!c)
			break;
		c->fd = 0; /* open (the socket is the broker's; no fd here) */
		c->w.sub = onering_event_sub(m->q, e);
		m->by_id[e->sub_id] = c;
		conn_link(s, c);
		return;
	case ONERING_STREAM_RECV:
		if (c && c->fd >= 0 && st->status > 0 && onering_stream_data(m->q, e))
			conn_take(s, c, onering_stream_data(m->q, e), (size_t)st->status);
		COMP_RETRY(onering_stream_done(m->q, e));
		if (!c || c->fd < 0)
			return;
		if (st->status < 0) {
			comp_conn_close(s, m, c, ONERING_CLOSE_ABORT);
			return;
		}
		if (st->status == 0)
			c->eof = true;
		comp_send(s, m, c);
		break;
	case ONERING_STREAM_SENT:
		COMP_RETRY(onering_stream_done(m->q, e));
		if (!c)
			return;
		c->sending = false;
		if (c->fd >= 0 && (st->status < 0 ||
				   conn_sent(c, (uint64_t)st->status, c->send_ok_bytes))) {
			comp_conn_close(s, m, c, 0); /* the last answer is out, or a failure */
			return;
		}
		/* A transmit buffer is free: a connection that waited for one. */
		if (m->tx_wait) {
			struct conn *w = m->tx_wait;
			m->tx_wait = w->next;
			w->sending = false;
			w->want_out = false;
			comp_send(s, m, w);
		}
		comp_send(s, m, c);
		break;
	case ONERING_STREAM_CLOSED:
		if (!c)
			return;
		m->by_id[e->sub_id] = NULL;
		for (struct conn **pp = &m->tx_wait; c->want_out && *pp; pp = &(*pp)->next)
			if (*pp == c) {
				*pp = c->next;
				c->want_out = false;
				break;
			}
		if (c->fd >= 0) { /* closed by the broker (the peer failed) */
			c->fd = 0;
			comp_conn_close(s, m, c, 0);
		}
		c->next = s->free_conns;
		s->free_conns = c;
		return;
	default:
		return;
	}
	if (c && c->fd >= 0 && !c->sending && (c->eof || c->final))
		comp_conn_close(s, m, c, 0); /* nothing more to say, nor to hear */
}

static int comp_loop(struct server *s, struct comp_srv *m, int64_t slice_ns)
{
	struct onering_event ev[BATCH_MAX];
	int n = onering_take(m->q, ev, BATCH_MAX, slice_ns);

	for (int i = 0; i < n; i++)
		if (ev[i].kind == ONERING_EV_STREAM)
			comp_record(s, m, &ev[i]);
	return n < 0 && n != -EINTR ? n : 0; /* EINTR: a signal, the loop checks the flag */
}

static int listen_on(const char *bind_addr, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1;

	if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
		fprintf(stderr, PROG ": --bind %s: not an IPv4 address\n", bind_addr);
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, PROG ": socket: %s\n", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0) {
		fprintf(stderr, PROG ": listening on %s:%d: %s\n", bind_addr, port,
			strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Many connections need many fds: raise the soft limit to the hard one. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [options]\n"
		"\n"
		"A minimal HTTP/1.1 server (every request: 200, \"hello, world\") whose\n"
		"readiness comes from a onering broker (oneringd).\n"
		"\n"
		"  --port N           TCP port (default 8080)\n"
		"  --bind ADDR        IPv4 address to listen on (default 127.0.0.1)\n"
		"  --name NAME        broker instance (default: $ONERING_NAME or \"default\")\n"
		"  --socket-dir DIR   broker socket directory (default: the library's:\n"
		"                     $ONERING_SOCKET_DIR, /run/onering as root, else\n"
		"                     $XDG_RUNTIME_DIR/onering)\n"
		"  --epoll            use plain edge-triggered epoll instead of onering\n"
		"  --uring            use io_uring instead of onering (multishot accept and\n"
		"                     receive into provided buffers, sendmsg)\n"
		"  --completion       onering in completion mode: the broker accepts, receives\n"
		"                     and sends; the server makes no system call\n"
		"  --yields N         onering: with no record, yield the CPU and look again up\n"
		"                     to N times before sleeping (default: 64 with --completion,\n"
		"                     else 0: sleep at once)\n"
		"  --idle STRATEGY    onering: what onering_wait() does before it sleeps: busy,\n"
		"                     backoff (spin 50 us) or overprovisioned (sleep at once);\n"
		"                     it wins over $ONERING_IDLE; default: $ONERING_IDLE if set,\n"
		"                     else overprovisioned for readiness, backoff with\n"
		"                     --completion\n"
		"  --max-seconds N    exit after N seconds (default 0: run until SIGINT/SIGTERM)\n"
		"  --help\n");
}

static int parse_int(const char *opt, const char *arg, long min, long max, long *out)
{
	char *end;

	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max) {
		fprintf(stderr, PROG ": %s %s: expected an integer in [%ld, %ld]\n", opt, arg, min,
			max);
		return -1;
	}
	*out = v;
	return 0;
}

/* --idle's argument: an enum onering_idle, or -1 after saying why not. The
 * names are shm/proto.c's onering_idle_parse(), which libonering does not
 * export: an example uses the public API only. */
static int parse_idle(const char *arg)
{
	static const char *const names[] = {
		[ONERING_IDLE_BACKOFF] = "backoff",
		[ONERING_IDLE_BUSY] = "busy",
		[ONERING_IDLE_OVERPROVISIONED] = "overprovisioned",
	};

	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (names[i] && strcmp(arg, names[i]) == 0)
			return i;
	fprintf(stderr, PROG ": --idle %s: expected busy, backoff or overprovisioned\n", arg);
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"bind", required_argument, NULL, 'b'},
		{"name", required_argument, NULL, 'n'},
		{"socket-dir", required_argument, NULL, 'd'},
		{"epoll", no_argument, NULL, 'e'},
		{"uring", no_argument, NULL, 'u'},
		{"completion", no_argument, NULL, 'c'},
		{"yields", required_argument, NULL, 'y'},
		{"idle", required_argument, NULL, 'i'},
		{"max-seconds", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *bind_addr = "127.0.0.1", *name = NULL, *socket_dir = NULL;
	long port = 8080, max_seconds = 0;
	bool use_epoll = false, use_uring = false, use_comp = false;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			if (parse_int("--port", optarg, 1, 65535, &port) < 0)
				return 2;
			break;
		case 'b':
			bind_addr = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'd':
			socket_dir = optarg;
			break;
		case 'e':
			use_epoll = true;
			break;
		case 'u':
			use_uring = true;
			break;
		case 'c':
			use_comp = true;
			break;
		case 'y': {
			long v;
			if (parse_int("--yields", optarg, 0, 1000000, &v) < 0)
				return 2;
			spin_yields = (unsigned long)v;
			break;
		}
		case 'i':
			if ((queue_idle = parse_idle(optarg)) < 0)
				return 2;
			break;
		case 't':
			if (parse_int("--max-seconds", optarg, 0, INT_MAX, &max_seconds) < 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (spin_yields == ULONG_MAX)
		spin_yields = use_comp ? 64 : 0;
	if (queue_idle < 0) {
		const char *env = getenv("ONERING_IDLE");
		queue_idle = env && *env ? ONERING_IDLE_BACKOFF /* the library reads it */
			     : use_comp ? ONERING_IDLE_BACKOFF : ONERING_IDLE_OVERPROVISIONED;
	} else {
		unsetenv("ONERING_IDLE"); /* --idle backoff means backoff */
	}
	if (use_epoll + use_uring + use_comp > 1) {
		fprintf(stderr, PROG ": one of --epoll, --uring and --completion\n");
		return 2;
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	/* No SA_RESTART: a signal interrupts the wait, which returns early. */
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	for (unsigned i = 0; i < OK_BLOCK_COUNT; i++)
		memcpy(ok_block + i * OK_LEN, resp_ok, OK_LEN);

	static struct server s;
	static struct uring_srv u;
	static struct comp_srv m;
	const char *backend = use_uring ? "io_uring" : use_epoll ? "epoll"
				     : use_comp ? "onering (completion mode)" : "onering";
	s.loop.epfd = -1;
	s.listen_fd = listen_on(bind_addr, (int)port);
	if (s.listen_fd < 0)
		return 1;
	int r;
	if (use_uring) {
		s.uring = &u;
		r = uring_open(&u, s.listen_fd);
		if (r == 0)
			uring_arm_accept(&u);
	} else if (use_comp) {
		/* Accepted connections inherit TCP_NODELAY from the listener (the
		 * server has no fd of theirs to set it on). */
		int one = 1;
		setsockopt(s.listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		s.comp = &m;
		r = comp_open(&m, s.listen_fd, name, socket_dir);
	} else if ((r = loop_open(&s.loop, use_epoll, name, socket_dir)) == 0) {
		r = loop_add(&s.loop, s.listen_fd, EPOLLIN, LISTEN_COOKIE, &s.listen_watch);
		if (r < 0)
			fprintf(stderr, PROG ": watching the listening socket: %s\n",
				use_epoll ? strerror(-r) : onering_strerror(r));
	}
	if (r < 0) {
		uring_close(&u);
		if (use_comp)
			comp_close(&m);
		loop_close(&s.loop);
		close(s.listen_fd);
		return 1;
	}
	printf(PROG ": serving http://%s:%ld/ with %s\n", bind_addr, port, backend);
	fflush(stdout);

	int64_t deadline = max_seconds ? now_ns() + max_seconds * 1000000000ll : INT64_MAX;
	int status = 0;
	struct ready ready[BATCH_MAX];
	while (!stop_requested) {
		int64_t left = deadline - now_ns();
		if (left <= 0)
			break;
		int64_t slice = left < WAIT_SLICE_NS ? left : WAIT_SLICE_NS;
		int n = use_uring ? uring_loop(&s, &u, slice)
			: use_comp ? comp_loop(&s, &m, slice)
				   : loop_wait(&s.loop, ready, BATCH_MAX, slice);
		if (n < 0) {
			fprintf(stderr, PROG ": waiting for events: %s\n",
				use_epoll || use_uring ? strerror(-n) : onering_strerror(n));
			status = 1;
			break;
		}
		for (int i = 0; i < n && !use_uring && !use_comp; i++) {
			uint64_t cookie = ready[i].cookie;
			if (cookie == LISTEN_COOKIE)
				accept_all(&s);
			else
				conn_ready(&s, (struct conn *)(uintptr_t)cookie, ready[i].events);
		}
		recycle_closed(&s);
	}

	printf(PROG ": %s after %llu request(s), %lu connection(s) open; closing\n",
	       status ? "stopping on error" : "stopping", (unsigned long long)s.nr_requests,
	       s.nr_conns);
	if (use_comp) {
		comp_close(&m); /* the broker closes the connections and the listener */
		s.live_conns = NULL;
	}
	while (s.live_conns)
		conn_close(&s, s.live_conns);
	if (!use_uring && !use_comp)
		loop_del(&s.loop, &s.listen_watch);
	loop_close(&s.loop); /* onering: detach; the broker forgets our subscriptions */
	uring_close(&u);     /* ends what was in flight */
	while (s.closed_conns) {
		struct conn *c = s.closed_conns;
		s.closed_conns = c->next;
		c->ops = 0;
		c->next = s.free_conns;
		s.free_conns = c;
	}
	close(s.listen_fd);
	while (s.free_conns) {
		struct conn *c = s.free_conns;
		s.free_conns = c->next;
		free(c);
	}
	return status;
}
