/* SPDX-License-Identifier: MIT */
/*
 * libonering: the sources beyond plain fds. Timers live in the broker
 * (created once, armed through the submission ring); signals, file changes,
 * process exits and async-IO completions are fds this process creates and
 * the broker only watches; words are plain stores in the queue's page.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client/client.h"

int onering_timer_create(struct onering_queue *q, uint64_t cookie, struct onering_sub *sub)
{
	struct onering_msg_sub_add a;

	if (!q || !sub)
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	a.kind = ONERING_EV_TIMER;
	a.mode = ONERING_MODE_EDGE;
	a.cookie = cookie;
	a.home_node = -1;
	return client_sub_add(q, &a, -1, sub);
}

int onering_timer_arm(struct onering_queue *q, struct onering_sub sub, uint64_t value_ns,
		      uint64_t period_ns, unsigned flags)
{
	struct onering_request req;
	struct client_sub *s = client_sub_at(q->att, sub.id);

	if (flags & ~(unsigned)(ONERING_TIMER_ABS | ONERING_TIMER_WALL))
		return -EINVAL;
	if (!s || sub.gen == 0 || onering_atomic_load(&s->gen, onering_mo_acquire) != sub.gen ||
	    s->fd != -1)
		return -ENOENT;
	memset(&req, 0, sizeof(req));
	req.op = ONERING_REQ_TIMER_ARM;
	req.flags = (uint16_t)flags;
	req.sub_id = sub.id;
	req.sub_gen = sub.gen;
	req.arg[0] = value_ns;
	req.arg[1] = period_ns;
	return client_submit(q, &req);
}

/* Subscribe an fd this library made; on failure close it. */
static int add_own_fd(struct onering_queue *q, int fd, unsigned kind, uint64_t cookie,
		      struct onering_sub *sub, int *out_fd)
{
	struct onering_add_options o = {
		.fd = fd, .events = POLLIN, .mode = ONERING_EDGE, .cookie = cookie, .kind = kind};
	int r = onering_add_opts(q, &o, sub);

	if (r < 0) {
		close(fd);
		return r;
	}
	if (out_fd)
		*out_fd = fd;
	return 0;
}

/*
 * Signals. A signalfd cannot be watched by another process: its readiness
 * (and read) follows the signals pending for the process that polls it -
 * the broker's poller - not the one that made it. So the library installs
 * a handler instead: it records the siginfo in a small lock-free buffer and
 * writes an eventfd, which the broker watches (kind SIGNAL). One signal
 * watcher per process.
 */
#define SIG_SLOTS 128u

struct sig_slot {
	ONERING_ATOMIC(uint32_t) ready;
	uint32_t signo;
	int32_t code;
	int32_t value;
	uint32_t pid, uid;
};

static struct sig_slot sig_slots[SIG_SLOTS];
static ONERING_ATOMIC(uint64_t) sig_head; /* next slot the reader takes */
static ONERING_ATOMIC(uint64_t) sig_tail; /* next slot a handler claims */
static ONERING_ATOMIC(uint64_t) sig_lost; /* signals that found the buffer full */
static ONERING_ATOMIC(int) sig_efd = -1;

static void sig_handler(int signo, siginfo_t *si, void *uc)
{
	int saved = errno;
	uint64_t t = onering_atomic_load(&sig_tail, onering_mo_relaxed);

	(void)uc;
	/* Claim a slot only while the reader has freed it: no holes. Handlers
	 * of several threads may race here; the CAS orders them. */
	for (;;) {
		if (t - onering_atomic_load(&sig_head, onering_mo_acquire) >= SIG_SLOTS) {
			onering_atomic_fetch_add(&sig_lost, 1, onering_mo_relaxed);
			break;
		}
		if (onering_atomic_cas(&sig_tail, &t, t + 1, onering_mo_acq_rel, onering_mo_relaxed)) {
			struct sig_slot *s = &sig_slots[t % SIG_SLOTS];
			s->signo = (uint32_t)signo;
			s->code = si->si_code;
			s->value = si->si_value.sival_int;
			s->pid = (uint32_t)si->si_pid;
			s->uid = (uint32_t)si->si_uid;
			onering_atomic_store(&s->ready, 1, onering_mo_release);
			break;
		}
	}
	eventfd_write(onering_atomic_load(&sig_efd, onering_mo_relaxed), 1); /* async-signal-safe */
	errno = saved;
}

int onering_add_signal(struct onering_queue *q, const sigset_t *set, uint64_t cookie,
		       struct onering_sub *sub, int *fd)
{
	struct sigaction sa;
	int expect = -1;

	if (!q || !set || !sub || !fd)
		return -EINVAL;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0)
		return -errno;
	if (!onering_atomic_cas(&sig_efd, &expect, efd, onering_mo_acq_rel, onering_mo_relaxed)) {
		close(efd);
		return -EBUSY;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sig_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask); /* one handler at a time per thread */
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(set, sig) == 1 && sigaction(sig, &sa, NULL) < 0) {
			int e = -errno;
			onering_atomic_store(&sig_efd, -1, onering_mo_relaxed);
			close(efd);
			return e;
		}
	int r = pthread_sigmask(SIG_UNBLOCK, set, NULL);
	if (r)
		return -r;
	struct onering_add_options o = {
		.fd = efd, .events = POLLIN, .mode = ONERING_EDGE, .cookie = cookie,
		.kind = ONERING_EV_SIGNAL};
	r = onering_add_opts(q, &o, sub);
	if (r < 0)
		return r; /* the handler stays; its eventfd counts on */
	*fd = efd;
	return 0;
}

int onering_signal_read(int fd, struct signalfd_siginfo *si)
{
	if (fd < 0 || fd != onering_atomic_load(&sig_efd, onering_mo_relaxed))
		return -EBADF;
	uint64_t h = onering_atomic_load(&sig_head, onering_mo_relaxed);
	struct sig_slot *s = &sig_slots[h % SIG_SLOTS];
	/* Acquire: pairs with the handler's release of ready. */
	if (h == onering_atomic_load(&sig_tail, onering_mo_acquire) ||
	    !onering_atomic_load(&s->ready, onering_mo_acquire)) {
		eventfd_t v;
		eventfd_read(fd, &v); /* drained: the next signal raises a new edge */
		return 0;
	}
	memset(si, 0, sizeof(*si));
	si->ssi_signo = s->signo;
	si->ssi_code = s->code;
	si->ssi_int = s->value;
	si->ssi_pid = s->pid;
	si->ssi_uid = s->uid;
	onering_atomic_store(&s->ready, 0, onering_mo_relaxed);
	/* Release: the slot is free for a handler that sees the new head. */
	onering_atomic_store(&sig_head, h + 1, onering_mo_release);
	return 1;
}

int onering_add_inotify(struct onering_queue *q, const char *path, uint32_t mask,
			uint64_t cookie, struct onering_sub *sub, int *fd)
{
	if (!q || !path || !sub || !fd)
		return -EINVAL;
	int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd < 0)
		return -errno;
	if (inotify_add_watch(ifd, path, mask) < 0) {
		int e = -errno;
		close(ifd);
		return e;
	}
	return add_own_fd(q, ifd, ONERING_EV_FILE, cookie, sub, fd);
}

int onering_add_pidfd(struct onering_queue *q, pid_t pid, uint64_t cookie,
		      struct onering_sub *sub, int *fd)
{
	if (!q || !sub || !fd || pid <= 0)
		return -EINVAL;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0)
		return -errno;
	return add_own_fd(q, pfd, ONERING_EV_PROCESS, cookie, sub, fd);
}

int onering_add_aio(struct onering_queue *q, int eventfd, uint64_t cookie,
		    struct onering_sub *sub)
{
	struct onering_add_options o = {.fd = eventfd, .events = POLLIN, .mode = ONERING_EDGE,
					.cookie = cookie, .kind = ONERING_EV_AIO};

	return onering_add_opts(q, &o, sub);
}

ONERING_ATOMIC(uint32_t) *onering_queue_words(struct onering_queue *q, uint32_t *n)
{
	if (n)
		*n = q->nr_words;
	return q->words;
}

static int word_request(struct onering_queue *q, uint32_t idx, uint32_t gen, uint64_t cookie)
{
	struct onering_request req;

	memset(&req, 0, sizeof(req));
	req.op = ONERING_REQ_WORD_WATCH;
	req.sub_gen = gen;
	req.user_data = cookie;
	req.arg[0] = idx;
	/* The baseline is the value now: a store made after this call, even
	 * before the broker takes the request, makes a record. */
	req.arg[1] = onering_atomic_load(&q->words[idx], onering_mo_acquire);
	return client_submit(q, &req);
}

int onering_word_watch(struct onering_queue *q, uint32_t idx, uint64_t cookie)
{
	if (idx >= q->nr_words)
		return -EINVAL;
	/* A generation no earlier watch of this queue had. */
	uint32_t gen = ++q->word_seq;
	if (gen == 0)
		gen = ++q->word_seq;
	int r = word_request(q, idx, gen, cookie);
	if (r == 0)
		q->word_gen[idx] = gen;
	return r;
}

int onering_word_unwatch(struct onering_queue *q, uint32_t idx)
{
	if (idx >= q->nr_words)
		return -EINVAL;
	int r = word_request(q, idx, 0, 0);
	if (r == 0)
		q->word_gen[idx] = 0; /* records of the old watch are skipped from here */
	return r;
}
