/* SPDX-License-Identifier: MIT */
/*
 * onering-thread-pool: a TCP echo server run by a pool of worker threads
 * that share one onering group - lifo wake-one, at most --threads running,
 * ack mode - the thread-pool pattern epoll makes hard.
 *
 *  - Each worker opens its own queue in group "pool" with ONERING_QUEUE_ACK
 *    and waits on it; the broker gives each record to the worker that went
 *    idle last (cache-warm) and wakes only that one.
 *  - The listening socket and every connection are DISPATCH subscriptions:
 *    after a record the source is disarmed until the worker calls
 *    onering_done(), which re-arms it through the submission ring (no system
 *    call). So one connection is never on two threads at once, and its
 *    requests stay in order.
 *  - Closing is safe: the worker that sees EOF deletes the subscription
 *    (no record of it is returned by any worker from then on), finishes its
 *    own record, waits for any other in flight (onering_teardown), and only
 *    then frees the connection.
 *
 * Build against an installed libonering:
 *   cc -O2 -pthread -o pool thread_pool.c $(pkg-config --cflags --libs onering)
 * Run, with a broker:
 *   oneringd --foreground --name ex --socket-dir /tmp/exdir \
 *            --group pool:policy=lifo,max_running=4 &
 *   ./pool --name ex --socket-dir /tmp/exdir --port 7000 --threads 4
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <onering.h>

#define PROG "onering-thread-pool"
#define MAX_THREADS 64
#define LISTENER_COOKIE 0

struct conn {
	int fd;
	struct onering_sub sub;
};

static struct onering *att;
static uint32_t pool_group;
static int listen_fd = -1;
static struct onering_sub listen_sub;
static atomic_int stop;
static atomic_ulong served;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop, 1);
}

/* Accept everything pending; each connection joins the pool's group. */
static void accept_all(struct onering_queue *q)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN: all taken (the others are the kernel's) */
		struct conn *c = calloc(1, sizeof(*c));
		struct onering_add_options o = {.fd = fd, .events = EPOLLIN | EPOLLRDHUP,
						.mode = ONERING_DISPATCH, .group = pool_group};
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		o.cookie = (uint64_t)(uintptr_t)c;
		if (onering_add_opts(q, &o, &c->sub) < 0) {
			close(fd);
			free(c);
		}
	}
}

/* Echo what the connection sent; false when it is finished. */
static bool serve(struct conn *c)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));
		if (n == 0)
			return false;
		if (n < 0)
			return errno == EAGAIN;
		/* A short write drops the rest: fine for an example. */
		if (write(c->fd, buf, (size_t)n) < 0 && errno != EAGAIN)
			return false;
		atomic_fetch_add(&served, 1);
	}
}

static void *worker(void *arg)
{
	struct onering_queue_options qo = {.flags = ONERING_QUEUE_ACK, .group = "pool"};
	struct onering_queue *q;
	struct onering_event ev[16];

	(void)arg;
	if (onering_queue_open(att, &qo, &q) < 0) {
		fprintf(stderr, PROG ": queue: %s\n", onering_last_error(att));
		return NULL;
	}
	while (!atomic_load(&stop)) {
		int n = onering_wait(q, ev, 1, 16, 200 * 1000 * 1000);
		if (n < 0)
			break;
		for (int i = 0; i < n; i++) {
			if (ev[i].cookie == LISTENER_COOKIE) {
				accept_all(q);
				onering_done(q, &ev[i]); /* re-arms the listener */
				continue;
			}
			struct conn *c = (struct conn *)(uintptr_t)ev[i].cookie;
			if (serve(c)) {
				onering_done(q, &ev[i]); /* re-arms this connection */
				continue;
			}
			/* Finished: cancel, finish our record, wait for any other,
			 * then free. */
			onering_del(q, c->sub);
			onering_done(q, &ev[i]);
			onering_teardown(q, c->sub, 1000ll * 1000 * 1000);
			close(c->fd);
			free(c);
		}
	}
	onering_queue_close(q);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
					     {"socket-dir", required_argument, NULL, 'd'},
					     {"port", required_argument, NULL, 'p'},
					     {"threads", required_argument, NULL, 't'},
					     {"seconds", required_argument, NULL, 's'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct onering_attach_options ao = {0};
	int port = 7000, threads = 4, seconds = 0, opt;
	pthread_t tid[MAX_THREADS];

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			ao.name = optarg;
			break;
		case 'd':
			ao.socket_dir = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 's':
			seconds = atoi(optarg);
			break;
		case 'h':
			printf("usage: " PROG " [--name N] [--socket-dir D] [--port P] [--threads T] "
			       "[--seconds S]\n"
			       "A TCP echo server on 127.0.0.1:P run by T threads sharing the onering\n"
			       "group \"pool\" (start oneringd with --group pool:policy=lifo,max_running=T).\n");
			return 0;
		default:
			return 2;
		}
	}
	if (threads < 1 || threads > MAX_THREADS || port <= 0 || port > 65535) {
		fprintf(stderr, PROG ": --threads 1..%d, --port 1..65535\n", MAX_THREADS);
		return 2;
	}
	if (onering_attach_opts(&ao, &att) < 0) {
		fprintf(stderr, PROG ": %s\n", onering_last_error(NULL));
		return 1;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(listen_fd, 512) < 0) {
		fprintf(stderr, PROG ": listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
		return 1;
	}
	/* The listener joins the group through a private queue of the main thread. */
	struct onering_queue *mq;
	if (onering_queue_open(att, NULL, &mq) < 0 || onering_group_id(att, "pool", &pool_group) < 0) {
		fprintf(stderr, PROG ": %s\n", onering_last_error(att));
		return 1;
	}
	struct onering_add_options lo = {.fd = listen_fd, .events = EPOLLIN,
					 .mode = ONERING_DISPATCH, .cookie = LISTENER_COOKIE,
					 .group = pool_group};
	if (onering_add_opts(mq, &lo, &listen_sub) < 0) {
		fprintf(stderr, PROG ": subscribing the listener failed\n");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	for (int i = 0; i < threads; i++)
		pthread_create(&tid[i], NULL, worker, NULL);
	printf(PROG ": 127.0.0.1:%d, %d threads\n", port, threads);
	fflush(stdout);
	for (int s = 0; !atomic_load(&stop) && (seconds == 0 || s < seconds * 10); s++) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	printf(PROG ": %lu reads served\n", atomic_load(&served));
	onering_detach(att);
	close(listen_fd);
	return 0;
}
