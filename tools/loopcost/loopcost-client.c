/* SPDX-License-Identifier: MIT */
/*
 * onering-loopcost-client SOCKET_DIR NAME N SECONDS: attach to broker NAME,
 * open N idle queues (64 slots each), say "ready", hold them SECONDS, detach.
 * The client side of tools/loopcost/run, which measures what a poller's
 * loop costs with N idle queues (issue 12: it must not grow with them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "client/onering.h"

int main(int argc, char **argv)
{
	struct rlimit rl;
	struct onering *att;
	long n, secs;
	int r;

	if (argc != 5 || (n = strtol(argv[3], NULL, 10)) <= 0 || (secs = strtol(argv[4], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: %s SOCKET_DIR NAME N SECONDS\n", argv[0]);
		return 2;
	}
	/* Each queue holds its fds (segments, bells): raise the soft limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct onering_attach_options ao = {
		.name = argv[2], .socket_dir = argv[1], .flags = ONERING_ATTACH_NO_RECOVER};
	r = onering_attach_opts(&ao, &att);
	if (r < 0) {
		fprintf(stderr, "attach to %s in %s: %s\n", argv[2], argv[1], onering_last_error(NULL));
		return 1;
	}
	for (long i = 0; i < n; i++) {
		struct onering_queue_options o = {.capacity = 64, .sq_capacity = 64};
		struct onering_queue *q;
		r = onering_queue_open(att, &o, &q);
		if (r < 0) {
			fprintf(stderr, "queue %ld of %ld: %s\n", i + 1, n, onering_last_error(att));
			onering_detach(att);
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	sleep((unsigned)secs);
	onering_detach(att);
	return 0;
}
