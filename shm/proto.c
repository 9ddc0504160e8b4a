/* SPDX-License-Identifier: MIT */
/* Control-protocol helpers shared by the broker and the client (shm/proto.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "shm/abi.h"
#include "shm/proto.h"

void onering_msg_init(struct onering_msg *msg, uint16_t type, uint32_t seq)
{
	memset(msg, 0, sizeof(*msg));
	msg->magic = ONERING_MSG_MAGIC;
	msg->version = ONERING_PROTO_VERSION;
	msg->type = type;
	msg->seq = seq;
}

int onering_msg_send(int sock, const struct onering_msg *msg, const int *fds, unsigned nfds,
		     int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * ONERING_MSG_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)(uintptr_t)msg, .iov_len = sizeof(*msg)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > ONERING_MSG_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	ssize_t n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(*msg) ? 0 : -EIO;
}

int onering_msg_recv(int sock, struct onering_msg *msg, int *fds, unsigned max_fds,
		     unsigned *nfds, unsigned *extra_fds, int flags)
{
	/*
	 * Room for far more fds than any message carries: one SCM_RIGHTS
	 * message can bring up to 253 fds even into a small buffer's worth of
	 * truncation; receive them all so they can be closed, not leaked.
	 */
	union {
		char buf[CMSG_SPACE(sizeof(int) * 256)];
		struct cmsghdr align;
	} ctl;
	struct onering_msg tmp;
	struct iovec iov = {.iov_base = &tmp, .iov_len = sizeof(tmp)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	unsigned kept = 0, extra = 0;

	if (nfds)
		*nfds = 0;
	if (extra_fds)
		*extra_fds = 0;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	ssize_t n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (kept < max_fds && fds) {
				fds[kept++] = fd;
			} else {
				close(fd);
				extra++;
			}
		}
	}
	/*
	 * No fd is handed over with an error. A zero-length datagram reads as
	 * a hang-up (recvmsg returns 0 for both) but can still carry fds:
	 * callers drop the peer on -ECONNRESET and close nothing.
	 */
	if (n != (ssize_t)sizeof(tmp) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		for (unsigned i = 0; i < kept; i++)
			close(fds[i]);
		if (nfds)
			*nfds = 0;
		if (extra_fds)
			*extra_fds = extra + kept;
		return n == 0 ? -ECONNRESET : -EMSGSIZE;
	}
	if (nfds)
		*nfds = kept;
	if (extra_fds)
		*extra_fds = extra;
	memcpy(msg, &tmp, sizeof(tmp));
	return 0;
}

bool onering_msg_reason(const struct onering_msg *msg, char *buf, size_t len)
{
	size_t n = 0;

	if (!len)
		return false;
	if (msg->status < 0)
		for (; n + 1 < len && n < sizeof(msg->u.reason) && msg->u.reason[n]; n++) {
			char ch = msg->u.reason[n];
			buf[n] = ch >= 0x20 && ch < 0x7f ? ch : '?';
		}
	buf[n] = '\0';
	return n > 0;
}

int onering_msg_check(const struct onering_msg *msg)
{
	if (msg->magic != ONERING_MSG_MAGIC || msg->version != ONERING_PROTO_VERSION)
		return -EPROTO;
	return 0;
}

int onering_name_valid(const char *name)
{
	size_t n = 0;

	if (!name)
		return 0;
	for (; name[n]; n++) {
		char ch = name[n];
		if (n >= ONERING_NAME_MAX - 1)
			return 0;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
			return 0;
	}
	return n > 0 && name[0] != '.';
}

int onering_socket_dir(const char *dir, char *buf, size_t len)
{
	const char *env = getenv("ONERING_SOCKET_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (dir && *dir)
		n = snprintf(buf, len, "%s", dir);
	else if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/run/onering");
	else if (xdg && *xdg)
		n = snprintf(buf, len, "%s/onering", xdg);
	else
		n = snprintf(buf, len, "/tmp/onering-%u", (unsigned)geteuid());
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int onering_socket_path(const char *name, const char *dir, char *buf, size_t len)
{
	char d[256];
	int r;

	if (!onering_name_valid(name))
		return -EINVAL;
	r = onering_socket_dir(dir, d, sizeof(d));
	if (r < 0)
		return r;
	r = snprintf(buf, len, "%s/%s.sock", d, name);
	return (r < 0 || (size_t)r >= len) ? -ENAMETOOLONG : 0;
}

int onering_msg_recv_timeout(int sock, struct onering_msg *msg, int *fds, unsigned max_fds,
			     unsigned *nfds, int timeout_ms)
{
	struct pollfd pfd = {.fd = sock, .events = POLLIN};
	int r;

	do {
		r = poll(&pfd, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	return onering_msg_recv(sock, msg, fds, max_fds, nfds, NULL, MSG_DONTWAIT);
}

#define ERRNO_MAX 4095 /* the kernel's MAX_ERRNO: -4095..-1 are error numbers */

int onering_proto_call(int sock, const struct onering_msg *req, struct onering_msg *rep,
		       int (*item)(const struct onering_msg *msg, void *arg), void *arg,
		       int timeout_ms)
{
	int r = onering_msg_send(sock, req, NULL, 0, 0);

	while (r == 0) {
		r = onering_msg_recv_timeout(sock, rep, NULL, 0, NULL, timeout_ms);
		if (r < 0)
			break;
		if (onering_msg_check(rep) < 0)
			return -EPROTO;
		if (rep->type == ONERING_MSG_SHUTDOWN)
			return -ECONNRESET;
		if (rep->seq != req->seq)
			continue; /* an answer to nothing asked here */
		if (rep->type == ONERING_MSG_STATS_ITEM && req->type == ONERING_MSG_STATS) {
			if (item && (r = item(rep, arg)) < 0)
				return r;
			r = 0;
			continue;
		}
		if (rep->type != (req->type | ONERING_MSG_REPLY) &&
		    !(rep->type == ONERING_MSG_STATS_END && req->type == ONERING_MSG_STATS))
			continue;
		if (rep->status > 0 || rep->status < -ERRNO_MAX)
			return -EPROTO;
		return rep->status;
	}
	return r == -EPIPE ? -ECONNRESET : r;
}

#define CONNECT_FAIL(code, ...)                               \
	do {                                                  \
		if (err && err_size)                          \
			snprintf(err, err_size, __VA_ARGS__); \
		if (s >= 0)                                   \
			close(s);                             \
		return (code);                                \
	} while (0)

/* Is uid one the caller trusts to run its broker? */
static bool trusted_uid(uid_t uid, long trust_uid)
{
	const char *env = getenv("ONERING_TRUST_UID");
	char *end;

	if (uid == 0 || uid == geteuid() || (trust_uid >= 0 && (uid_t)trust_uid == uid))
		return true;
	if (env && *env) {
		errno = 0;
		unsigned long v = strtoul(env, &end, 10);
		if (!errno && !*end && v == uid)
			return true;
	}
	return false;
}

/* Connect to path and check who listens (SO_PEERCRED) before anything is
 * sent: the first half of onering_proto_connect() and
 * onering_proto_counters(). Returns the socket, or a negative errno and err. */
static int proto_open(const char *path, const char *name, long trust_uid, char *err,
		      size_t err_size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	int s = -1;

	if (len >= sizeof(sa.sun_path))
		CONNECT_FAIL(-ENAMETOOLONG, "socket path %s is too long", path);
	memcpy(sa.sun_path, path, len + 1);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		CONNECT_FAIL(-errno, "socket: %s", strerror(errno));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (e == ENOENT || e == ECONNREFUSED)
			CONNECT_FAIL(-ENOENT,
				     "broker \"%s\" is not running: nothing listens on %s "
				     "(start it with: oneringd --name %s)",
				     name, path, name);
		if (e == EACCES || e == EPERM)
			CONNECT_FAIL(-EACCES, "cannot connect to %s: %s (check the directory's "
					      "permissions or the broker's --socket-dir)",
				     path, strerror(e));
		CONNECT_FAIL(-e, "connect %s: %s", path, strerror(e));
	}
	/* Who answers, before a byte goes out: the fds the application adds
	 * later would go to whoever this is. */
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		int e = errno;
		CONNECT_FAIL(-e, "SO_PEERCRED on %s: %s", path, strerror(e));
	}
	if (!trusted_uid(cred.uid, trust_uid))
		CONNECT_FAIL(-EPERM,
			     "the server at %s runs as uid %u (pid %d), not root nor this user: not "
			     "trusted, nothing sent (if it is your broker, trust it with "
			     "onering_attach_options.trust_uid = %u or ONERING_TRUST_UID=%u)",
			     path, (unsigned)cred.uid, (int)cred.pid, (unsigned)cred.uid,
			     (unsigned)cred.uid);
	return s;
}

int onering_proto_connect(const char *path, const char *name, long trust_uid, int *sock,
			  struct onering_msg *reply, char *err, size_t err_size)
{
	struct onering_msg m;
	int s = proto_open(path, name, trust_uid, err, err_size), r;

	if (s < 0)
		return s;
	onering_msg_init(&m, ONERING_MSG_HELLO, 1);
	m.u.hello.abi_major = ONERING_ABI_MAJOR;
	m.u.hello.abi_minor = ONERING_ABI_MINOR;
	m.u.hello.pid = (uint32_t)getpid();
	snprintf(m.u.hello.name, sizeof(m.u.hello.name), "%s", name);
	r = onering_msg_send(s, &m, NULL, 0, 0);
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		CONNECT_FAIL(r, "sending HELLO to %s: %s", path, strerror(-r));
	/* A refusal may already be waiting even if the send failed. */
	r = onering_msg_recv_timeout(s, &m, NULL, 0, NULL, 5000);
	/* A broker that refused us at once (at its fd limit) and closed with our
	 * HELLO unread leaves a reset pending before its reply: take the reply. */
	if (r == -ECONNRESET)
		r = onering_msg_recv(s, &m, NULL, 0, NULL, NULL, MSG_DONTWAIT);
	if (r == -ETIMEDOUT)
		CONNECT_FAIL(r, "broker at %s did not answer HELLO within 5 s", path);
	if (r < 0)
		CONNECT_FAIL(r == -EMSGSIZE ? -EPROTO : r, "broker at %s hung up during HELLO: %s",
			     path, strerror(-r));
	if (onering_msg_check(&m) < 0)
		CONNECT_FAIL(-EPROTO,
			     "broker at %s speaks control protocol %u (magic 0x%08x); this library "
			     "speaks %u",
			     path, m.version, m.magic, ONERING_PROTO_VERSION);
	if (m.type != (ONERING_MSG_HELLO | ONERING_MSG_REPLY))
		CONNECT_FAIL(-EPROTO, "broker at %s answered HELLO with message type %u", path,
			     m.type);
	switch (m.status) {
	case 0:
		break;
	case -EACCES:
		CONNECT_FAIL(-EACCES,
			     "broker \"%s\" refused uid %u: start it with --allow-uid %u "
			     "(or --allow-gid)",
			     name, (unsigned)geteuid(), (unsigned)geteuid());
	case -EPROTO:
		CONNECT_FAIL(-EPROTO,
			     "shared-memory ABI mismatch: broker \"%s\" speaks %u.%u, this library "
			     "speaks %u.%u",
			     name, m.u.hello.abi_major, m.u.hello.abi_minor, ONERING_ABI_MAJOR,
			     ONERING_ABI_MINOR);
	case -ENXIO:
		m.u.hello.name[ONERING_NAME_MAX - 1] = '\0';
		CONNECT_FAIL(-ENXIO, "socket %s belongs to instance \"%s\", not \"%s\"", path,
			     m.u.hello.name, name);
	default: {
		/* The broker's word only as far as it is an errno: never negate
		 * INT_MIN, never hand a caller a code it cannot interpret. */
		if (m.status > 0 || m.status < -ERRNO_MAX)
			CONNECT_FAIL(-EPROTO, "broker \"%s\" answered HELLO with status %d, which is "
					      "not an error number", name, (int)m.status);
		char why[ONERING_MSG_SIZE];
		bool has = onering_msg_reason(&m, why, sizeof(why));
		CONNECT_FAIL(m.status, "broker \"%s\" refused HELLO: %s", name,
			     has ? why : strerror(-m.status));
	}
	}
	*sock = s;
	if (reply)
		*reply = m;
	return 0;
}

/* ---- group settings ------------------------------------------------------ */

static const char *const policy_names[] = {"rr", "least", "sticky", "lifo", "local"};
static const char *const numa_names[] = {"spill", "strict", "interleave"};
static const char *const wake_names[] = {"lifo", "fifo", "rr", "local-first"};

const char *onering_policy_name(unsigned policy)
{
	return policy <= ONERING_POLICY_MAX ? policy_names[policy] : "?";
}

const char *onering_numa_name(unsigned numa)
{
	return numa <= ONERING_NUMA_MAX ? numa_names[numa] : "?";
}

const char *onering_wake_name(unsigned wake)
{
	return wake <= ONERING_WAKE_MAX ? wake_names[wake] : "?";
}

static int name_index(const char *const *names, unsigned n, const char *v)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(names[i], v) == 0)
			return (int)i;
	return -1;
}

/* ---- idle strategies ------------------------------------------------------ */

static const char *const idle_names[] = {"backoff", "busy", "overprovisioned"};

const char *onering_idle_name(unsigned idle)
{
	return idle <= ONERING_IDLE_MAX ? idle_names[idle] : "?";
}

int onering_idle_parse(const char *name)
{
	int i = name ? name_index(idle_names, ONERING_IDLE_MAX + 1, name) : -1;

	return i < 0 ? -EINVAL : i;
}

static int parse_uint(const char *v, unsigned long min, unsigned long max, uint32_t *out)
{
	char *end;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (errno || *end || x < min || x > max)
		return -EINVAL;
	*out = (uint32_t)x;
	return 0;
}

int onering_group_setting_parse(struct onering_msg_group *m, const char *kv, char *err,
				size_t err_size)
{
	const char *eq = strchr(kv, '=');
	char key[32];
	uint32_t x;
	int i;

	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
		snprintf(err, err_size, "'%s': expected KEY=VALUE (policy, numa, wake, "
			 "max_running, backlog)", kv);
		return -EINVAL;
	}
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	const char *v = eq + 1;
	if (strcmp(key, "policy") == 0) {
		if ((i = name_index(policy_names, ONERING_POLICY_MAX + 1, v)) < 0)
			goto bad_value;
		m->policy = (uint8_t)i;
		m->set |= ONERING_GSET_POLICY;
	} else if (strcmp(key, "numa") == 0) {
		if (strncmp(v, "spill:", 6) == 0) {
			if (parse_uint(v + 6, 1, 100, &x) < 0)
				goto bad_value;
			m->numa = ONERING_NUMA_SPILL;
			m->spill_pct = (uint8_t)x;
		} else if ((i = name_index(numa_names, ONERING_NUMA_MAX + 1, v)) > 0) {
			m->numa = (uint8_t)i; /* strict, interleave ("spill" needs :P) */
		} else {
			goto bad_value;
		}
		m->set |= ONERING_GSET_NUMA;
	} else if (strcmp(key, "wake") == 0) {
		if ((i = name_index(wake_names, ONERING_WAKE_MAX + 1, v)) < 0)
			goto bad_value;
		m->wake = (uint8_t)i;
		m->set |= ONERING_GSET_WAKE;
	} else if (strcmp(key, "max_running") == 0) {
		if (parse_uint(v, 0, 1u << 20, &x) < 0)
			goto bad_value;
		m->max_running = x;
		m->set |= ONERING_GSET_MAX_RUNNING;
	} else if (strcmp(key, "backlog") == 0) {
		if (parse_uint(v, 1, 1u << 24, &x) < 0)
			goto bad_value;
		m->backlog_max = x;
		m->set |= ONERING_GSET_BACKLOG;
	} else {
		snprintf(err, err_size, "unknown group setting '%s' (policy, numa, wake, "
			 "max_running, backlog)", key);
		return -EINVAL;
	}
	return 0;
bad_value:
	if (strcmp(key, "policy") == 0)
		snprintf(err, err_size, "policy '%s': use rr, least, sticky, lifo or local", v);
	else if (strcmp(key, "numa") == 0)
		snprintf(err, err_size, "numa '%s': use strict, interleave or spill:P (P in 1..100)",
			 v);
	else if (strcmp(key, "wake") == 0)
		snprintf(err, err_size, "wake '%s': use lifo, fifo, rr or local-first", v);
	else if (strcmp(key, "max_running") == 0)
		snprintf(err, err_size, "max_running '%s': a count, 0 = the CPU count", v);
	else
		snprintf(err, err_size, "backlog '%s': records, 1..16777216", v);
	return -EINVAL;
}

int onering_proto_counters(const char *path, const char *name, long trust_uid, int *fd,
			   char *err, size_t err_size)
{
	struct onering_msg m;
	unsigned nfds = 0;
	int fds[1] = {-1};
	int s = proto_open(path, name, trust_uid, err, err_size), r;

	if (s < 0)
		return s;
	onering_msg_init(&m, ONERING_MSG_COUNTERS, 1);
	snprintf(m.u.counters.name, sizeof(m.u.counters.name), "%s", name);
	r = onering_msg_send(s, &m, NULL, 0, 0);
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		CONNECT_FAIL(r, "sending COUNTERS to %s: %s", path, strerror(-r));
	r = onering_msg_recv_timeout(s, &m, fds, 1, &nfds, 5000);
	if (r == -ECONNRESET)
		r = onering_msg_recv(s, &m, fds, 1, &nfds, NULL, MSG_DONTWAIT);
	if (r == -ETIMEDOUT)
		CONNECT_FAIL(r, "broker at %s did not answer COUNTERS within 5 s", path);
	if (r < 0)
		CONNECT_FAIL(r == -EMSGSIZE ? -EPROTO : r, "broker at %s hung up instead of "
			     "answering COUNTERS: %s", path, strerror(-r));
	close(s);
	s = -1;
	if (onering_msg_check(&m) < 0) {
		if (nfds)
			close(fds[0]);
		CONNECT_FAIL(-EPROTO, "broker at %s speaks control protocol %u (magic 0x%08x); "
			     "this tool speaks %u", path, m.version, m.magic, ONERING_PROTO_VERSION);
	}
	/* A refused uid hears it as a HELLO reply (the broker's one refusal). */
	if (m.status < 0 || m.type != (ONERING_MSG_COUNTERS | ONERING_MSG_REPLY) || nfds != 1) {
		if (nfds)
			close(fds[0]);
		if (m.status == -EACCES)
			CONNECT_FAIL(-EACCES, "broker \"%s\" refused uid %u: start it with "
				     "--allow-uid %u (or --allow-gid)", name, (unsigned)geteuid(),
				     (unsigned)geteuid());
		if (m.status == -ENXIO)
			CONNECT_FAIL(-ENXIO, "socket %s belongs to another instance than \"%s\"",
				     path, name);
		if (m.status < 0 && m.status >= -ERRNO_MAX) {
			char why[ONERING_MSG_SIZE];
			bool has = onering_msg_reason(&m, why, sizeof(why));
			/* A broker before counters segments takes COUNTERS for a
			 * request before HELLO (-EPERM) or an unknown type. */
			bool old = !has && (m.status == -EPERM || m.status == -EOPNOTSUPP);
			CONNECT_FAIL(m.status, "broker \"%s\" refused COUNTERS: %s%s", name,
				     has ? why : strerror(-m.status),
				     old ? " (a broker older than counters segments: upgrade it, or "
					   "use the onering of its version)" : "");
		}
		CONNECT_FAIL(-EPROTO, "broker \"%s\" answered COUNTERS with message type %u, "
			     "status %d and %u fds (a broker older than counters segments?)", name,
			     m.type, (int)m.status, nfds);
	}
	*fd = fds[0];
	return 0;
}
