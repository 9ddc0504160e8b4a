/* SPDX-License-Identifier: MIT */
/*
 * onering-nest-libuv: a onering queue inside a libuv loop, beside a timerfd
 * and a socket (onering_queue_fd, onering_queue_arm): the same chain as
 * onering-nest-epoll (nest_epoll.c), here with uv_poll_t handles.
 *
 * A chain goes round the loop --count times: the timerfd ticks; the tick
 * writes a byte into a socketpair; the socket turns readable; its handler
 * writes an eventfd that the broker watches for us; the broker's record
 * turns the queue's fd readable; its handler takes the record, sets the
 * timer for the next round (one-shot: a round never overlaps the one before)
 * and arms the queue again.
 *
 * Build against an installed libonering and libuv (libuv1-dev):
 *   cc -O2 -o nest_libuv nest_libuv.c $(pkg-config --cflags --libs onering libuv)
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>

#include <onering.h>

#define PROG "onering-nest-libuv"

static struct {
	struct onering_queue *q;
	int efd, tfd, sp[2];
	long count, ticks, reads, records;
	int status;
	uv_poll_t queue, timer, sock;
} s = {.efd = -1, .tfd = -1, .sp = {-1, -1}, .count = 5};

static void stop(int status)
{
	s.status = status;
	uv_poll_stop(&s.queue);
	uv_poll_stop(&s.timer);
	uv_poll_stop(&s.sock);
}

/* One round's timer: 20 ms, one-shot (set again when the round's record is
 * taken, so a round never overlaps the one before). */
static const struct itimerspec round_timer = {.it_value = {0, 20000000}};

/* Take every record, then arm the queue; 1 from the arm: records came
 * meanwhile, take them too. */
static void take_records(void)
{
	struct onering_event rec[16];
	int n;

	do {
		long before = s.records;
		while ((n = onering_poll(s.q, rec, 16)) > 0)
			for (int i = 0; i < n; i++, s.records++)
				printf("record   cookie %llu\n", (unsigned long long)rec[i].cookie);
		if (s.records >= s.count)
			return stop(0);
		/* This round is over: the timer starts the next one. */
		if (n >= 0 && s.records > before && timerfd_settime(s.tfd, 0, &round_timer, NULL) < 0) {
			fprintf(stderr, PROG ": timerfd_settime: %s\n", strerror(errno));
			return stop(1);
		}
		if (n < 0 || (n = onering_queue_arm(s.q)) < 0) {
			fprintf(stderr, PROG ": the broker is gone\n");
			return stop(1);
		}
	} while (n == 1);
}

static void on_queue(uv_poll_t *h, int status, int events)
{
	(void)h;
	(void)events;
	if (status < 0) {
		fprintf(stderr, PROG ": queue fd: %s\n", uv_strerror(status));
		return stop(1);
	}
	printf("queue    fd readable\n");
	take_records();
}

static void on_timer(uv_poll_t *h, int status, int events)
{
	uint64_t v;

	(void)h;
	(void)status;
	(void)events;
	if (read(s.tfd, &v, sizeof(v)) != sizeof(v))
		return;
	printf("timerfd  tick\n");
	s.ticks++;
	if (write(s.sp[1], "x", 1) != 1)
		stop(1);
}

static void on_socket(uv_poll_t *h, int status, int events)
{
	char c;

	(void)h;
	(void)status;
	(void)events;
	if (read(s.sp[0], &c, 1) != 1)
		return;
	printf("socket   a byte\n");
	s.reads++;
	eventfd_write(s.efd, 1); /* the broker's turn */
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
					     {"socket-dir", required_argument, NULL, 'd'},
					     {"count", required_argument, NULL, 'c'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct onering_attach_options ao = {0};
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'n') {
			ao.name = optarg;
		} else if (opt == 'd') {
			ao.socket_dir = optarg;
		} else if (opt == 'c') {
			s.count = strtol(optarg, NULL, 10);
		} else if (opt == 'h') {
			printf("usage: " PROG " [--name N] [--socket-dir D] [--count N]\n"
			       "A onering queue, a timerfd and a socket in one libuv loop.\n");
			return 0;
		} else {
			return 2;
		}
	}
	if (s.count < 1 || s.count > 1000000) {
		fprintf(stderr, PROG ": --count is 1..1000000\n");
		return 2;
	}

	struct onering *att;
	struct onering_sub sub;
	if (onering_attach_opts(&ao, &att) < 0 || onering_queue_open(att, NULL, &s.q) < 0) {
		fprintf(stderr, PROG ": %s\n", onering_last_error(NULL));
		return 1;
	}
	s.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); /* the broker watches it */
	s.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	int qfd = onering_queue_fd(s.q);
	uv_loop_t *loop = uv_default_loop();
	if (s.efd < 0 || s.tfd < 0 || qfd < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s.sp) < 0 ||
	    onering_add(s.q, s.efd, EPOLLIN, ONERING_EDGE, 1, &sub) < 0 ||
	    timerfd_settime(s.tfd, 0, &round_timer, NULL) < 0 || uv_poll_init(loop, &s.queue, qfd) ||
	    uv_poll_init(loop, &s.timer, s.tfd) || uv_poll_init(loop, &s.sock, s.sp[0]) ||
	    uv_poll_start(&s.queue, UV_READABLE, on_queue) ||
	    uv_poll_start(&s.timer, UV_READABLE, on_timer) ||
	    uv_poll_start(&s.sock, UV_READABLE, on_socket)) {
		fprintf(stderr, PROG ": setup: %s\n", strerror(errno));
		return 1;
	}
	take_records(); /* arms the queue: from here the loop drives it */
	uv_run(loop, UV_RUN_DEFAULT);
	printf("ticks %ld, socket reads %ld, records %ld\n", s.ticks, s.reads, s.records);
	uv_close((uv_handle_t *)&s.queue, NULL);
	uv_close((uv_handle_t *)&s.timer, NULL);
	uv_close((uv_handle_t *)&s.sock, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	onering_queue_close(s.q);
	onering_detach(att);
	close(s.efd);
	close(s.tfd);
	close(s.sp[0]);
	close(s.sp[1]);
	return s.status;
}
