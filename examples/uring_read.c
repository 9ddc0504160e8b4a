/* SPDX-License-Identifier: MIT */
/*
 * onering-uring-read: read a file with io_uring and take its completions
 * through onering, on the same queue as every other event.
 *
 * The io_uring gets an eventfd (IORING_REGISTER_EVENTFD) that the kernel
 * signals on each completion; that eventfd is an ONERING_EV_AIO source. A
 * record means "completions are waiting": reap the completion queue (plain
 * loads), queue the next reads, and go back to onering_wait().
 *
 * Build against an installed libonering:
 *   cc -O2 -o uring_read uring_read.c $(pkg-config --cflags --libs onering liburing)
 * Run, with a broker:
 *   oneringd --foreground --name ex --socket-dir /tmp/exdir &
 *   ./uring_read --name ex --socket-dir /tmp/exdir /etc/services
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* liburing.h needs it; the onering build passes -D_GNU_SOURCE */
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <onering.h>

#define PROG "onering-uring-read"
#define BLOCK 16384
#define DEPTH 8

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
					     {"socket-dir", required_argument, NULL, 'd'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct onering_attach_options ao = {0};
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'n')
			ao.name = optarg;
		else if (opt == 'd')
			ao.socket_dir = optarg;
		else if (opt == 'h') {
			printf("usage: " PROG " [--name N] [--socket-dir D] FILE\n"
			       "Reads FILE with io_uring, completions through onering; prints the\n"
			       "byte count, the sum of its bytes and the sum of (offset + 1) x byte.\n");
			return 0;
		} else {
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, PROG ": give one FILE (see --help)\n");
		return 2;
	}
	int fd = open(argv[optind], O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, PROG ": %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}

	struct onering *att;
	struct onering_queue *q;
	struct onering_sub sub;
	if (onering_attach_opts(&ao, &att) < 0 || onering_queue_open(att, NULL, &q) < 0) {
		fprintf(stderr, PROG ": %s\n", onering_last_error(NULL));
		return 1;
	}
	struct io_uring ring;
	int r = io_uring_queue_init(DEPTH, &ring, 0);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r < 0 || efd < 0 || io_uring_register_eventfd(&ring, efd) < 0 ||
	    onering_add_aio(q, efd, 1, &sub) < 0) {
		fprintf(stderr, PROG ": io_uring setup: %s\n", strerror(r < 0 ? -r : errno));
		return 1;
	}

	static char bufs[DEPTH][BLOCK];
	uint64_t offs[DEPTH]; /* where each buffer's read starts in the file */
	off_t next = 0;
	uint64_t done = 0, sum = 0, position_sum = 0;
	int in_flight = 0;
	for (;;) {
		/* A batch of up to DEPTH reads, one buffer each, submitted
		 * together; the next batch once all of them completed
		 * (completions come in any order). */
		if (in_flight == 0 && next < st.st_size) {
			for (int slot = 0; slot < DEPTH && next < st.st_size; slot++) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
				io_uring_prep_read(sqe, fd, bufs[slot], BLOCK, (uint64_t)next);
				io_uring_sqe_set_data64(sqe, (uint64_t)slot);
				offs[slot] = (uint64_t)next;
				next += BLOCK;
				in_flight++;
			}
			r = io_uring_submit(&ring);
			if (r != in_flight) {
				fprintf(stderr, PROG ": submit: %s\n", r < 0 ? strerror(-r) : "short");
				return 1;
			}
		}
		if (in_flight == 0)
			break;
		/* Completions arrive as AIO records on the onering queue. */
		struct onering_event ev;
		int n = onering_wait(q, &ev, 1, 1, 5ll * 1000 * 1000 * 1000);
		if (n < 0) {
			fprintf(stderr, PROG ": wait: %s\n", onering_strerror(n));
			return 1;
		}
		eventfd_t v;
		eventfd_read(efd, &v); /* re-arms the edge for the next completion */
		struct io_uring_cqe *cqe;
		unsigned reaped = 0;
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			if (cqe->res < 0) {
				fprintf(stderr, PROG ": read: %s\n", strerror(-cqe->res));
				return 1;
			}
			uint64_t slot = io_uring_cqe_get_data64(cqe);
			const unsigned char *b = (const unsigned char *)bufs[slot];
			for (int i = 0; i < cqe->res; i++) {
				/* Order-free, as completions are: the plain sum, and one
				 * weighted by the byte's place in the file. */
				sum += b[i];
				position_sum += (offs[slot] + (uint64_t)i + 1) * b[i];
			}
			done += (uint64_t)cqe->res;
			in_flight--;
			reaped++;
			io_uring_cqe_seen(&ring, cqe);
		}
		if (n == 0 && reaped == 0) {
			fprintf(stderr, PROG ": no completion within 5 s\n");
			return 1;
		}
	}
	printf(PROG ": %llu bytes of %s, byte sum %llu, position sum %llu\n",
	       (unsigned long long)done, argv[optind], (unsigned long long)sum,
	       (unsigned long long)position_sum);
	onering_detach(att);
	io_uring_queue_exit(&ring);
	close(efd);
	close(fd);
	return done == (uint64_t)st.st_size ? 0 : 1;
}
