/* SPDX-License-Identifier: MIT */
/*
 * onering-nest-epoll: a onering queue inside an application's own epoll
 * loop, beside a timerfd and a socket (onering_queue_fd, onering_queue_arm).
 *
 * A chain goes round the loop --count times: the timerfd ticks; the tick
 * writes a byte into a socketpair; the socket turns readable; its handler
 * writes an eventfd that the broker watches for us; the broker's record
 * turns the queue's fd readable; its handler takes the record and sets the
 * timer for the next round (one-shot: a round never overlaps the one before,
 * however late a loaded machine runs it). One line per wake-up, then the
 * three counts.
 *
 * Build against an installed libonering:
 *   cc -O2 -o nest_epoll nest_epoll.c $(pkg-config --cflags --libs onering)
 * Run, with a broker:
 *   oneringd --foreground --name ex --socket-dir /tmp/exdir &
 *   ./nest_epoll --name ex --socket-dir /tmp/exdir --count 5
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

#include <onering.h>

#define PROG "onering-nest-epoll"

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
					     {"socket-dir", required_argument, NULL, 'd'},
					     {"count", required_argument, NULL, 'c'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct onering_attach_options ao = {0};
	long count = 5;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'n') {
			ao.name = optarg;
		} else if (opt == 'd') {
			ao.socket_dir = optarg;
		} else if (opt == 'c') {
			count = strtol(optarg, NULL, 10);
		} else if (opt == 'h') {
			printf("usage: " PROG " [--name N] [--socket-dir D] [--count N]\n"
			       "A onering queue, a timerfd and a socket in one epoll loop.\n");
			return 0;
		} else {
			return 2;
		}
	}
	if (count < 1 || count > 1000000) {
		fprintf(stderr, PROG ": --count is 1..1000000\n");
		return 2;
	}

	struct onering *att;
	struct onering_queue *q;
	struct onering_sub sub;
	if (onering_attach_opts(&ao, &att) < 0 || onering_queue_open(att, NULL, &q) < 0) {
		fprintf(stderr, PROG ": %s\n", onering_last_error(NULL));
		return 1;
	}
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); /* the broker watches it */
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	int sp[2], ep = epoll_create1(EPOLL_CLOEXEC), qfd = onering_queue_fd(q);
	const struct itimerspec once = {.it_value = {0, 20000000}}; /* 20 ms, one-shot */
	if (efd < 0 || tfd < 0 || ep < 0 || qfd < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) < 0 ||
	    onering_add(q, efd, EPOLLIN, ONERING_EDGE, 1, &sub) < 0 ||
	    timerfd_settime(tfd, 0, &once, NULL) < 0) {
		fprintf(stderr, PROG ": setup: %s\n", strerror(errno));
		return 1;
	}
	int fds[3] = {qfd, tfd, sp[0]};
	for (int i = 0; i < 3; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
			fprintf(stderr, PROG ": epoll_ctl: %s\n", strerror(errno));
			return 1;
		}
	}

	long ticks = 0, reads = 0, records = 0;
	while (records < count) {
		/* Take what the queue has; arm it only when it is empty. */
		struct onering_event rec[16];
		long before = records;
		int n;
		while ((n = onering_poll(q, rec, 16)) > 0)
			for (int i = 0; i < n; i++)
				printf("record   cookie %llu\n", (unsigned long long)rec[i].cookie),
					records++;
		/* This round is over: the timer starts the next one. */
		if (n >= 0 && records > before && records < count &&
		    timerfd_settime(tfd, 0, &once, NULL) < 0) {
			fprintf(stderr, PROG ": timerfd_settime: %s\n", strerror(errno));
			return 1;
		}
		if (n < 0 || (n = onering_queue_arm(q)) < 0) {
			fprintf(stderr, PROG ": the broker is gone\n");
			return 1;
		}
		if (n == 1 || records >= count)
			continue; /* records came while arming: take them first */

		struct epoll_event ready[3];
		int k = epoll_wait(ep, ready, 3, 5000);
		if (k <= 0) {
			fprintf(stderr, PROG ": %s\n", k == 0 ? "nothing for 5 s" : strerror(errno));
			return 1;
		}
		for (int i = 0; i < k; i++) {
			uint64_t v;
			char c;
			if (ready[i].data.fd == tfd && read(tfd, &v, sizeof(v)) == sizeof(v)) {
				printf("timerfd  tick\n");
				ticks++;
				if (write(sp[1], "x", 1) != 1)
					return 1;
			} else if (ready[i].data.fd == sp[0] && read(sp[0], &c, 1) == 1) {
				printf("socket   a byte\n");
				reads++;
				eventfd_write(efd, 1); /* the broker's turn */
			} else if (ready[i].data.fd == qfd) {
				printf("queue    fd readable\n"); /* the poll above takes it */
			}
		}
	}
	timerfd_settime(tfd, 0, &(struct itimerspec){0}, NULL);
	printf("ticks %ld, socket reads %ld, records %ld\n", ticks, reads, records);
	onering_queue_close(q);
	onering_detach(att);
	close(ep);
	close(efd);
	close(tfd);
	close(sp[0]);
	close(sp[1]);
	return 0;
}
