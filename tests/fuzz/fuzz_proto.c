/* SPDX-License-Identifier: MIT */
/*
 * fuzz_proto: the control protocol's receive path and decoder (shm/proto.c),
 * fed through a real SOCK_SEQPACKET socket pair so that SCM_RIGHTS fds
 * travel as they do between a client and the broker.
 *
 * Input: byte 0 says how, the rest is one datagram of any length (a
 * well-formed message is exactly ONERING_MSG_SIZE bytes).
 *   bits 0-1  fds attached to the datagram (0..3, copies of /dev/null)
 *   bits 2-3  max_fds the receiver keeps (0..3)
 *   bit 4     receive with fds == NULL
 *   bit 5     receive with nfds and extra_fds == NULL (implies fds == NULL)
 *   bit 6     instead, the datagram is a broker's answer to HELLO, read by
 *             onering_proto_connect() (a thread plays the broker)
 *
 * What must hold, else abort():
 *   - no fd leaks: /proc/self/fd has as many entries after an input as
 *     before it (every fd handed to the caller is closed by it);
 *   - onering_msg_recv(): 0 exactly for a 128-byte datagram, then the
 *     message is the datagram's bytes; kept + extra = fds sent, kept =
 *     min(sent, max_fds) on success and 0 on any error; kept fds are open
 *     and close-on-exec;
 *   - a message that passes onering_msg_check() survives a round trip
 *     through onering_msg_send() and onering_msg_recv() byte for byte,
 *     with its fds;
 *   - onering_proto_connect(): success only for a well-formed, version-
 *     matching HELLO reply with status 0; otherwise a negative errno in
 *     1..4095 and a message in err.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "shm/proto.h"
#include "tests/fuzz/fuzz_fds.h"

#define MAX_DATAGRAM 4096 /* well below the socket's buffer: one send, never a partial one */

#define FAIL(...)                                                   \
	do {                                                        \
		fprintf(stderr, "fuzz_proto: " __VA_ARGS__);        \
		fputc('\n', stderr);                                \
		abort();                                            \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int devnull_fd = -1;
static int proc_fd_dir = -1;

/* Entries in /proc/self/fd now. */
static int fd_count(void)
{
	int n = fuzz_fd_count(proc_fd_dir);

	if (n < 0)
		FAIL("reading /proc/self/fd: %s", strerror(errno));
	return n;
}

/* One datagram of len bytes with nfds copies of /dev/null attached. */
static int send_raw(int sock, const void *buf, size_t len, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * ONERING_MSG_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		for (unsigned i = 0; i < nfds; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &devnull_fd, sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

static void check_kept_fds(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int fl = fcntl(fds[i], F_GETFD);
		if (fl < 0)
			FAIL("kept fd %d is not open", fds[i]);
		if (!(fl & FD_CLOEXEC))
			FAIL("kept fd %d is not close-on-exec", fds[i]);
	}
}

/* What a receiver does with a message that passed the check. */
static void decode(const struct onering_msg *m)
{
	/* Names are fixed arrays that the sender need not terminate:
	 * onering_name_valid() must stay inside 32 bytes whatever they hold. */
	(void)onering_name_valid(m->u.hello.name);
	(void)onering_name_valid(m->u.queue_open.group);
	(void)onering_name_valid(m->u.group.name);
	(void)onering_policy_name(m->u.group.policy);
	(void)onering_numa_name(m->u.group.numa);
	(void)onering_wake_name(m->u.group.wake);
}

/* Send m with nfds fds back through the pair; it must arrive unchanged. */
static void round_trip(int tx, int rx, const struct onering_msg *m, const int *fds,
		       unsigned nfds)
{
	struct onering_msg back;
	int bfds[ONERING_MSG_MAX_FDS] = {-1, -1, -1};
	unsigned bn = 99, bextra = 99;
	int r = onering_msg_send(tx, m, fds, nfds, MSG_DONTWAIT);

	if (r < 0)
		FAIL("resending a checked message: %s", strerror(-r));
	r = onering_msg_recv(rx, &back, bfds, ONERING_MSG_MAX_FDS, &bn, &bextra, MSG_DONTWAIT);
	if (r < 0)
		FAIL("receiving a resent message: %s", strerror(-r));
	if (memcmp(&back, m, sizeof(back)) != 0)
		FAIL("a resent message changed on the way");
	if (bn != nfds || bextra != 0)
		FAIL("resent with %u fds, received %u (+%u extra)", nfds, bn, bextra);
	check_kept_fds(bfds, bn);
	for (unsigned i = 0; i < bn; i++)
		close(bfds[i]);
}

static void fuzz_recv(unsigned mode, const uint8_t *dgram, size_t len)
{
	unsigned nsend = mode & 3, max_fds = (mode >> 2) & 3;
	bool no_counts = mode & 0x20, no_fds = no_counts || (mode & 0x10);
	int sv[2], fds[ONERING_MSG_MAX_FDS] = {-1, -1, -1};
	unsigned nfds = 99, extra = 99;
	struct onering_msg m;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		FAIL("socketpair: %s", strerror(errno));
	int r = send_raw(sv[0], dgram, len, nsend);
	if (r < 0)
		FAIL("sending %zu bytes with %u fds: %s", len, nsend, strerror(-r));
	r = onering_msg_recv(sv[1], &m, no_fds ? NULL : fds, max_fds, no_counts ? NULL : &nfds,
			     no_counts ? NULL : &extra, MSG_DONTWAIT);

	int want = len == 0 ? -ECONNRESET : len != ONERING_MSG_SIZE ? -EMSGSIZE : 0;
	if (r != want)
		FAIL("%zu-byte datagram: onering_msg_recv returned %d, expected %d", len, r, want);
	if (!no_counts) {
		unsigned keep = r == 0 && !no_fds ? (nsend < max_fds ? nsend : max_fds) : 0;
		if (nfds != keep || extra != nsend - keep)
			FAIL("%zu bytes, %u fds sent, max_fds %u%s: %d, kept %u and %u extra, "
			     "expected %u and %u",
			     len, nsend, max_fds, no_fds ? ", fds NULL" : "", r, nfds, extra, keep,
			     nsend - keep);
		check_kept_fds(fds, nfds);
	} else {
		nfds = 0;
	}
	if (r == 0) {
		if (memcmp(&m, dgram, sizeof(m)) != 0)
			FAIL("the message received is not the datagram sent");
		if (onering_msg_check(&m) == 0) {
			decode(&m);
			round_trip(sv[0], sv[1], &m, fds, nfds);
		}
	}
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	close(sv[0]);
	close(sv[1]);
}

/* ---- the client's side of HELLO, against a thread playing the broker ---- */

static struct {
	int listen_fd;
	char dir[96];
	char path[108]; /* sun_path */
	sem_t go, done;
	const uint8_t *reply;
	size_t len;
	unsigned nfds;
} broker;

static void *broker_thread(void *arg)
{
	(void)arg;
	for (;;) {
		struct onering_msg hello;
		while (sem_wait(&broker.go) < 0)
			;
		int c = accept4(broker.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			FAIL("accept: %s", strerror(errno));
		if (recv(c, &hello, sizeof(hello), 0) != (ssize_t)sizeof(hello) ||
		    onering_msg_check(&hello) < 0 || hello.type != ONERING_MSG_HELLO)
			FAIL("the client's HELLO is not a well-formed HELLO");
		int r = send_raw(c, broker.reply, broker.len, broker.nfds);
		if (r < 0)
			FAIL("sending the HELLO reply: %s", strerror(-r));
		close(c); /* the reply stays readable after the hang-up */
		sem_post(&broker.done);
	}
	return NULL;
}

static void remove_broker_dir(void)
{
	unlink(broker.path);
	rmdir(broker.dir);
}

static void broker_start(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	pthread_t t;

	/* Under $TMPDIR: tools/fuzz-run points it into the run's directory,
	 * which a crash (no atexit) does not leave behind. */
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(broker.dir, sizeof(broker.dir), "%s/fuzz_proto.XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
	if (n < 0 || (size_t)n >= sizeof(broker.dir) || !mkdtemp(broker.dir))
		FAIL("a directory under %s: %s", tmp ? tmp : "/tmp", strerror(errno));
	n = snprintf(broker.path, sizeof(broker.path), "%s/fuzz.sock", broker.dir);
	if (n < 0 || (size_t)n >= sizeof(broker.path))
		FAIL("socket path %s/fuzz.sock is too long", broker.dir);
	memcpy(sa.sun_path, broker.path, strlen(broker.path) + 1);
	broker.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (broker.listen_fd < 0 || bind(broker.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(broker.listen_fd, 4) < 0)
		FAIL("listening on %s: %s", broker.path, strerror(errno));
	atexit(remove_broker_dir);
	sem_init(&broker.go, 0, 0);
	sem_init(&broker.done, 0, 0);
	if (pthread_create(&t, NULL, broker_thread, NULL) != 0)
		FAIL("pthread_create");
	pthread_detach(t);
}

static void fuzz_hello(unsigned mode, const uint8_t *dgram, size_t len)
{
	struct onering_msg rep;
	char err[512] = "";
	int sock = -1;

	broker.reply = dgram;
	broker.len = len;
	broker.nfds = mode & 3;
	sem_post(&broker.go);
	int r = onering_proto_connect(broker.path, "fuzz", -1, &sock, &rep, err, sizeof(err));
	while (sem_wait(&broker.done) < 0)
		;
	if (r == 0) {
		struct onering_msg sent;
		memcpy(&sent, dgram, len < sizeof(sent) ? len : sizeof(sent));
		if (len != ONERING_MSG_SIZE || onering_msg_check(&sent) < 0 ||
		    sent.type != (ONERING_MSG_HELLO | ONERING_MSG_REPLY) || sent.status != 0)
			FAIL("onering_proto_connect accepted a reply that is not a good HELLO reply");
		if (memcmp(&rep, &sent, sizeof(rep)) != 0)
			FAIL("onering_proto_connect handed back another reply than the one sent");
		close(sock);
		return;
	}
	if (r >= 0 || r < -4095)
		FAIL("onering_proto_connect returned %d, not a negative errno", r);
	if (!err[0] || !memchr(err, '\0', sizeof(err)))
		FAIL("onering_proto_connect failed (%d) without a message", r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size - 1 > MAX_DATAGRAM)
		return -1; /* not added to the corpus */
	if (devnull_fd < 0) {
		devnull_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		proc_fd_dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (devnull_fd < 0 || proc_fd_dir < 0)
			FAIL("opening /dev/null and /proc/self/fd: %s", strerror(errno));
		broker_start();
	}
	unsigned mode = data[0];
	int before = fd_count();
	if (mode & 0x40)
		fuzz_hello(mode, data + 1, size - 1);
	else
		fuzz_recv(mode, data + 1, size - 1);
	int after = fd_count();
	if (after != before)
		FAIL("%d fds open before this input, %d after: a leak", before, after);
	return 0;
}
