/* SPDX-License-Identifier: MIT */
/*
 * onering-echo-server: a TCP echo server whose readiness comes from onering.
 *
 * The listening socket and every connection are subscribed (ONERING_EDGE) to
 * one queue of a running oneringd; onering_wait() hands back one 64-byte
 * record per readiness edge, whose cookie is the connection's state. With
 * --epoll the same server logic runs on a plain edge-triggered epoll
 * instance instead, for comparison.
 *
 * Build against an installed libonering:
 *   cc -O2 -o echo echo_server.c $(pkg-config --cflags --libs onering)
 * Run, with a broker:
 *   oneringd --foreground --name ex --socket-dir /tmp/exdir &
 *   ./echo --name ex --socket-dir /tmp/exdir --port 7000
 *
 * Edge-triggered rules followed here (both back ends):
 *  - a record means "something changed": read (or accept) until EAGAIN, or
 *    remember to come back, because no new record comes for data that was
 *    already there;
 *  - what cannot be written now is kept, EPOLLOUT is added to the
 *    subscription (onering_mod: no system call), reading stops until the
 *    kept bytes are gone, then EPOLLOUT is dropped and reading resumes;
 *  - records of one batch may name a connection closed earlier in the same
 *    batch, so a closed connection's state is recycled only after the batch.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4; the onering build passes -D_GNU_SOURCE */
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
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* pkg-config --cflags onering puts the header's directory on the path (in
 * the source tree, meson's onering_dep does the same). */
#include <onering.h>

#define PROG "onering-echo-server"
#define BATCH_MAX 64                        /* records (or epoll events) per wait */
#define IO_BUF_SIZE (64 * 1024)             /* one read; the most a connection keeps */
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
	struct onering_queue_options qo = {.sq_capacity = 1024};
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
	int n = onering_wait(l->q, evs, 1, max < BATCH_MAX ? max : BATCH_MAX, timeout_ns);
	if (n < 0)
		return n == -EINTR ? 0 : n;
	int k = 0;
	for (int i = 0; i < n; i++)
		if (evs[i].kind == ONERING_EV_FD)
			out[k++] = (struct ready){.cookie = evs[i].cookie, .events = evs[i].events};
	return k;
}

/* ---- the echo server ---------------------------------------------------- */

struct conn {
	struct watch w;
	int fd;          /* -1 once closed (its state waits for the end of the batch) */
	bool want_out;   /* EPOLLOUT subscribed: bytes are kept in out */
	char *out;       /* kept bytes (allocated once, IO_BUF_SIZE, reused) */
	size_t out_off;  /* first unsent byte */
	size_t out_len;  /* end of the kept bytes */
	struct conn *next; /* free list / closed list */
	struct conn *live_prev, *live_next; /* open connections */
};

struct server {
	struct loop loop;
	int listen_fd;
	struct watch listen_watch;
	struct conn *free_conns;   /* recycled connection states */
	struct conn *closed_conns; /* closed in this batch, recycled after it */
	struct conn *live_conns;   /* open connections */
	unsigned long nr_conns;
	char buf[IO_BUF_SIZE];
};

#define LISTEN_COOKIE 0 /* connection cookies are conn pointers, never 0 */
#define CONN_EVENTS EPOLLIN

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void conn_close(struct server *s, struct conn *c)
{
	if (c->fd < 0)
		return;
	int r = loop_del(&s->loop, &c->w);
	if (r < 0 && r != -ENOENT)
		fprintf(stderr, PROG ": deleting the watch of fd %d: %s\n", c->fd,
			s->loop.use_epoll ? strerror(-r) : onering_strerror(r));
	/* onering: the broker holds a duplicate of the fd until it drains the
	 * delete; shutdown() sends our FIN now rather than then. */
	shutdown(c->fd, SHUT_WR);
	close(c->fd);
	c->fd = -1;
	if (c->live_prev)
		c->live_prev->live_next = c->live_next;
	else
		s->live_conns = c->live_next;
	if (c->live_next)
		c->live_next->live_prev = c->live_prev;
	c->next = s->closed_conns;
	s->closed_conns = c;
	s->nr_conns--;
}

/* Recycle the states closed during the batch just handled. */
static void recycle_closed(struct server *s)
{
	while (s->closed_conns) {
		struct conn *c = s->closed_conns;
		s->closed_conns = c->next;
		c->next = s->free_conns;
		s->free_conns = c;
	}
}

/* Keep len bytes for later: they fit, as reading stops while any are kept. */
static int conn_keep(struct server *s, struct conn *c, const char *p, size_t len)
{
	if (!c->out) {
		c->out = malloc(IO_BUF_SIZE);
		if (!c->out)
			return -ENOMEM;
	}
	memcpy(c->out, p, len);
	c->out_off = 0;
	c->out_len = len;
	if (!c->want_out) {
		int r = loop_mod(&s->loop, &c->w, CONN_EVENTS | EPOLLOUT, (uint64_t)(uintptr_t)c);
		if (r < 0)
			return r;
		c->want_out = true;
	}
	return 0;
}

/* Send p[0, len); keep what the socket does not take. 0 or -errno. */
static int conn_send(struct server *s, struct conn *c, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			return conn_keep(s, c, p, len);
		} else {
			return n < 0 ? -errno : -EIO;
		}
	}
	return 0;
}

/* Send the kept bytes. 1 when all are gone, 0 when some remain, -errno. */
static int conn_flush(struct server *s, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n > 0)
			c->out_off += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && errno == EAGAIN)
			return 0;
		else
			return n < 0 ? -errno : -EIO;
	}
	c->out_off = c->out_len = 0;
	if (c->want_out) {
		int r = loop_mod(&s->loop, &c->w, CONN_EVENTS, (uint64_t)(uintptr_t)c);
		if (r < 0)
			return r;
		c->want_out = false;
	}
	return 1;
}

/* Read until EAGAIN, echoing each chunk; stop early while bytes are kept
 * (EPOLLOUT brings us back). Closes the connection on EOF or error. */
static void conn_read(struct server *s, struct conn *c)
{
	while (c->fd >= 0 && c->out_len == 0) {
		ssize_t n = read(c->fd, s->buf, sizeof(s->buf));
		if (n > 0) {
			if (conn_send(s, c, s->buf, (size_t)n) < 0)
				conn_close(s, c);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			return;
		} else {
			conn_close(s, c); /* EOF, or ECONNRESET & co. */
		}
	}
}

static void conn_ready(struct server *s, struct conn *c, uint32_t events)
{
	if (c->fd < 0)
		return; /* closed earlier in this batch */
	if (c->out_len) {
		int r = conn_flush(s, c);
		if (r < 0) {
			conn_close(s, c);
			return;
		}
		if (r == 0)
			return; /* still blocked: wait for the next EPOLLOUT */
		/* Drained: read what arrived meanwhile; there may be no new edge. */
		conn_read(s, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		conn_read(s, c);
}

static struct conn *conn_get(struct server *s)
{
	struct conn *c = s->free_conns;

	if (c) {
		s->free_conns = c->next;
	} else {
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
	}
	c->fd = -1;
	c->want_out = false;
	c->out_off = c->out_len = 0;
	c->next = NULL;
	return c;
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
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = conn_get(s);
		if (!c) {
			fprintf(stderr, PROG ": out of memory for a connection\n");
			close(fd);
			continue;
		}
		c->fd = fd;
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
		c->live_prev = NULL;
		c->live_next = s->live_conns;
		if (s->live_conns)
			s->live_conns->live_prev = c;
		s->live_conns = c;
		s->nr_conns++;
	}
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
		"A TCP echo server whose readiness comes from a onering broker (oneringd).\n"
		"\n"
		"  --port N           TCP port (default 7000)\n"
		"  --bind ADDR        IPv4 address to listen on (default 127.0.0.1)\n"
		"  --name NAME        broker instance (default: $ONERING_NAME or \"default\")\n"
		"  --socket-dir DIR   broker socket directory (default: the library's:\n"
		"                     $ONERING_SOCKET_DIR, /run/onering as root, else\n"
		"                     $XDG_RUNTIME_DIR/onering)\n"
		"  --epoll            use plain edge-triggered epoll instead of onering\n"
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"bind", required_argument, NULL, 'b'},
		{"name", required_argument, NULL, 'n'},
		{"socket-dir", required_argument, NULL, 'd'},
		{"epoll", no_argument, NULL, 'e'},
		{"max-seconds", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *bind_addr = "127.0.0.1", *name = NULL, *socket_dir = NULL;
	long port = 7000, max_seconds = 0;
	bool use_epoll = false;
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

	static struct server s; /* static: the I/O buffer is big */
	s.listen_fd = listen_on(bind_addr, (int)port);
	if (s.listen_fd < 0)
		return 1;
	if (loop_open(&s.loop, use_epoll, name, socket_dir) < 0) {
		close(s.listen_fd);
		return 1;
	}
	int r = loop_add(&s.loop, s.listen_fd, EPOLLIN, LISTEN_COOKIE, &s.listen_watch);
	if (r < 0) {
		fprintf(stderr, PROG ": watching the listening socket: %s\n",
			use_epoll ? strerror(-r) : onering_strerror(r));
		loop_close(&s.loop);
		close(s.listen_fd);
		return 1;
	}
	printf(PROG ": echoing on %s:%ld with %s\n", bind_addr, port,
	       use_epoll ? "epoll" : "onering");
	fflush(stdout);

	int64_t deadline = max_seconds ? now_ns() + max_seconds * 1000000000ll : INT64_MAX;
	int status = 0;
	struct ready ready[BATCH_MAX];
	while (!stop_requested) {
		int64_t left = deadline - now_ns();
		if (left <= 0)
			break;
		int64_t slice = left < WAIT_SLICE_NS ? left : WAIT_SLICE_NS;
		int n = loop_wait(&s.loop, ready, BATCH_MAX, slice);
		if (n < 0) {
			fprintf(stderr, PROG ": waiting for events: %s\n",
				use_epoll ? strerror(-n) : onering_strerror(n));
			status = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t cookie = ready[i].cookie;
			if (cookie == LISTEN_COOKIE)
				accept_all(&s);
			else
				conn_ready(&s, (struct conn *)(uintptr_t)cookie, ready[i].events);
		}
		recycle_closed(&s);
	}

	printf(PROG ": %s, %lu connection(s) open; closing\n",
	       status ? "stopping on error" : "stopping", s.nr_conns);
	while (s.live_conns)
		conn_close(&s, s.live_conns);
	recycle_closed(&s);
	loop_del(&s.loop, &s.listen_watch);
	loop_close(&s.loop); /* onering: detach; the broker forgets our subscriptions */
	close(s.listen_fd);
	while (s.free_conns) {
		struct conn *c = s.free_conns;
		s.free_conns = c->next;
		free(c->out);
		free(c);
	}
	return status;
}
