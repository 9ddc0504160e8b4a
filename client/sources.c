/* SPDX-License-Identifier: MIT */
/*
 * libonering: the sources beyond plain fds. Timers live in the broker
 * (created once, armed through the submission ring); signals, file changes,
 * process exits and async-IO completions are fds this process creates and
 * the broker only watches; words are plain stores in the queue's page.
 *
 * Ordering contract
 * -----------------
 * Shared words this file touches, and their writers:
 *   sig_buf      the signal handler (many producers) and onering_signal_read
 *                (one consumer): the contract is client/sigbuf.h's, labels
 *                C8, A9, R9, A10, R10 (numbered on from client/sub.h and
 *                client/groups.h, so a label is one edge in client/);
 *   sig_efd      set once by onering_add_signal (C11), read relaxed by the
 *                handler and by onering_signal_read;
 *   client_sub.gen  A5 in onering_timer_arm (client_sub_live, client/sub.h),
 *                against R5 of the add;
 *   q->words[]   the application's stores; the broker's word scan
 *                (scan_queue) reads them with its own acquire; A11 here
 *                takes the baseline.
 *
 *   C11  onering_add_signal: CAS-acq_rel(sig_efd, -1 -> efd): one signal
 *        watcher per process; the loser closes its eventfd. The value is an
 *        fd number, used only as a system call argument: no memory it
 *        points to needs ordering, so the handler's load is relaxed.
 *   A11  word_request: load-acquire(words[idx]), the watch's baseline. The
 *        word is written by this process's application, not by the
 *        broker; acquire so that what the application wrote before the
 *        value we report is ordered before our request's R1 (shm/ring.h),
 *        as the broker's scan_queue (acquire) orders it for its records.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "client/records.h"
#include "client/sigbuf.h"

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

int client_timer_request(struct onering_queue *q, const struct client_sub *s, uint64_t value_ns,
			 uint64_t period_ns, unsigned flags)
{
	struct onering_request req;

	memset(&req, 0, sizeof(req));
	req.op = ONERING_REQ_TIMER_ARM;
	req.flags = (uint16_t)flags;
	/* Relaxed: the broker's name for it (sub.h). */
	req.sub_id = onering_atomic_load(&s->bid, onering_mo_relaxed);
	req.sub_gen = onering_atomic_load(&s->bgen, onering_mo_relaxed);
	req.arg[0] = value_ns;
	req.arg[1] = period_ns;
	return client_submit(q, &req);
}

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts); /* vDSO */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int onering_timer_arm(struct onering_queue *q, struct onering_sub sub, uint64_t value_ns,
		      uint64_t period_ns, unsigned flags)
{
	struct client_sub *s = client_sub_at(&q->att->subs, sub.id);

	if (flags & ~(unsigned)(ONERING_TIMER_ABS | ONERING_TIMER_WALL))
		return -EINVAL;
	/* A4, A5 (sub.h): synchronise with R4/R5 (the add); s->fd is the add's. */
	if (!client_sub_live(s, sub.gen) || s->fd != -1)
		return -ENOENT;
	int r = client_timer_request(q, s, value_ns, period_ns, flags);
	if (r == 0 && s->owner == q) {
		/* What a restarted broker is armed with (client/recover.c): the
		 * expiry on the timer's own clock. */
		clockid_t clk = (flags & ONERING_TIMER_WALL) ? CLOCK_REALTIME : CLOCK_MONOTONIC;
		s->t_expiry = value_ns == 0 ? 0
			      : (flags & ONERING_TIMER_ABS) ? value_ns : clock_ns(clk) + value_ns;
		s->t_period = period_ns;
		s->t_flags = flags & ONERING_TIMER_WALL;
	}
	return r;
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
static struct client_sig_buf sig_buf; /* client/sigbuf.h */
static ONERING_ATOMIC(int) sig_efd = -1; /* C11 */

static void sig_handler(int signo, siginfo_t *si, void *uc)
{
	int saved = errno;
	struct client_sig_info info = {
		.signo = (uint32_t)signo,
		.code = si->si_code,
		.value = si->si_value.sival_int,
		.pid = (uint32_t)si->si_pid,
		.uid = (uint32_t)si->si_uid,
	};

	(void)uc;
	/* Claim a slot only while the reader has freed it: no holes. Handlers
	 * of several threads may race here; the CAS (C8, sigbuf.h) orders
	 * them; R9 publishes the slot. A full buffer counts the signal lost. */
	client_sig_buf_push(&sig_buf, &info);
	/* Relaxed (C11): an fd number for the system call. */
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
	/* C11: one watcher per process. */
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
	struct client_sig_info info;

	/* Relaxed (C11): compared as a number only. */
	if (fd < 0 || fd != onering_atomic_load(&sig_efd, onering_mo_relaxed))
		return -EBADF;
	/* A9 (sigbuf.h) inside: synchronises with the handler's R9; R10 frees
	 * the slot for the handlers' A10. */
	if (!client_sig_buf_pop(&sig_buf, &info)) {
		eventfd_t v;
		eventfd_read(fd, &v); /* drained: the next signal raises a new edge */
		return 0;
	}
	memset(si, 0, sizeof(*si));
	si->ssi_signo = info.signo;
	si->ssi_code = info.code;
	si->ssi_int = info.value;
	si->ssi_pid = info.pid;
	si->ssi_uid = info.uid;
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

int client_word_request(struct onering_queue *q, uint32_t idx, uint32_t gen, uint64_t cookie,
			uint32_t baseline)
{
	struct onering_request req;

	memset(&req, 0, sizeof(req));
	req.op = ONERING_REQ_WORD_WATCH;
	req.sub_gen = gen;
	req.user_data = cookie;
	req.arg[0] = idx;
	req.arg[1] = baseline;
	return client_submit(q, &req);
}

int onering_word_watch(struct onering_queue *q, uint32_t idx, uint64_t cookie)
{
	if (idx >= q->nr_words)
		return -EINVAL;
	/* A generation no earlier watch of this queue had. */
	uint32_t gen = client_word_next_gen(&q->word_seq);
	/* The baseline is the value now: a store made after this call, even
	 * before the broker takes the request, makes a record. A11: see the
	 * contract above. */
	uint32_t now = onering_atomic_load(&q->words[idx], onering_mo_acquire);
	int r = client_word_request(q, idx, gen, cookie, now);
	if (r == 0) {
		q->word_gen[idx] = gen;
		q->word_last[idx] = now; /* a restarted broker starts from it */
		q->word_cookie[idx] = cookie;
	}
	return r;
}

int onering_word_unwatch(struct onering_queue *q, uint32_t idx)
{
	if (idx >= q->nr_words)
		return -EINVAL;
	int r = client_word_request(q, idx, 0, 0, 0);
	if (r == 0)
		q->word_gen[idx] = 0; /* records of the old watch are skipped from here */
	return r;
}
