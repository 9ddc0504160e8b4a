/* SPDX-License-Identifier: MIT */
/*
 * Kernel fds as sources: sockets, pipes, signalfd, inotify, pidfd, eventfd
 * ... each a subscription registered in the poller's epoll set (the control
 * thread adds it with broker_epoll_flags; this source harvests it and
 * applies re-arm, mod and delete requests).
 *
 * The poller never reads or writes a client's fd: it only asks epoll.
 * Harvesting is epoll_wait with a zero timeout; the loop's own sleep waits
 * on the same epoll set (poller.c), so a ready fd wakes it. A poller with
 * no client fds asks epoll only after that sleep saw the set readable (a
 * kick, or an fd added meanwhile): a loop serving posts, timers, words and
 * packets makes no system call for the fds it does not have.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/queue.h"
#include "broker/source.h"
#include "broker/stream.h"
#include "shm/log.h"

#define HARVEST_BATCH 256
#define REQ_EVENTS_ALLOWED (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI)

struct source_fds {
	struct broker_source src;
	bool mod_failed_logged; /* one log line per poller for failed re-arms */
	struct epoll_event evs[HARVEST_BATCH];
};

uint32_t broker_epoll_flags(uint8_t mode, uint32_t events)
{
	switch (mode) {
	case ONERING_MODE_ONESHOT:
	case ONERING_MODE_DISPATCH:
		return events | EPOLLET | EPOLLONESHOT;
	case ONERING_MODE_LEVEL:
		return events | EPOLLONESHOT; /* level, disarmed after one report */
	default:
		return events | EPOLLET;
	}
}

static unsigned fds_poll(struct broker_source *src, const struct broker_poll_ctx *ctx)
{
	struct source_fds *f = (struct source_fds *)src;
	struct poller *p = src->p;

	/* While earlier sources (packets) keep the loop busy, ask epoll one
	 * loop in 16: a loop is a burst of packets, and the system call costs
	 * as much as half a burst. */
	if (ctx->work && (ctx->loop_no & 15))
		return 0;
	if (!p->epoll_due && !onering_atomic_load(&p->fd_subs, onering_mo_relaxed))
		return 0;
	p->epoll_due = false;
	int n = epoll_wait(p->epfd, f->evs, HARVEST_BATCH, 0);
	if (n <= 0)
		return 0;
	unsigned kicks = 0;
	/* The records' stamp: read after epoll_wait returned, so it is never
	 * older than the writes it reports (ctx->now_ns, taken at the top of
	 * the loop, can be). CLOCK_MONOTONIC itself, not the loop's TSC clock,
	 * which may be a few microseconds behind it (clock.h): one more read
	 * per loop that harvested, beside a system call. */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t ts = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	for (int i = 0; i < n; i++) {
		uint64_t key = f->evs[i].data.u64;
		if (key == 0) { /* the poller's kick fd: a client's request, or stop */
			eventfd_t v;
			(void)eventfd_read(p->kick_fd, &v); /* EAGAIN: another read took it */
			broker_count(&p->ctr[ONERING_PC_KICKS], 1);
			kicks++;
			continue;
		}
		struct broker_sub *s = broker_registry_lookup(&p->b->reg, key);
		if (!s || broker_sub_dead(s))
			continue;
		/* A5 (deliver.c): the owner queue's state word. */
		if (onering_atomic_load(&s->queue->state, onering_mo_acquire) != BROKER_QUEUE_LIVE)
			continue;
		if (s->kind == ONERING_EV_STREAM) { /* completion mode: the bytes move here */
			broker_stream_event(p, s, f->evs[i].events);
			continue;
		}
		deliver_sub(p, s, f->evs[i].events, 1, ts);
	}
	broker_count(&p->ctr[ONERING_PC_EVENTS], (uint64_t)n);
	/* --coalesce-us waits after this loop only for a batch of readiness
	 * (a kick is not one) that left nothing in epoll's ready list. */
	p->harvest_batched = (unsigned)n - kicks > 1 && n < HARVEST_BATCH;
	return (unsigned)n;
}

static int fds_apply_request(struct broker_source *src, struct broker_queue *q,
			     struct broker_sub *s, const struct onering_request *req)
{
	struct source_fds *f = (struct source_fds *)src;
	struct poller *p = src->p;
	struct epoll_event ev;

	switch (req->op) {
	case ONERING_REQ_DEL:
		/* The fd may be closed already by a dying client's teardown
		 * path; ENOENT/EBADF are not failures here. */
		if (s->fd >= 0 && epoll_ctl(p->epfd, EPOLL_CTL_DEL, s->fd, NULL) < 0 &&
		    errno != ENOENT && errno != EBADF) {
			broker_count(&p->ctr[ONERING_PC_SYSCALL_ERRORS], 1);
			onering_log(ONERING_LOG_ERR, "poller %u: epoll_ctl(DEL) of sub %u: %s",
				    p->idx, s->id, strerror(errno));
		}
		return 0;
	case ONERING_REQ_REARM:
		if (s->mode == ONERING_MODE_EDGE) {
			broker_count(&q->ctr[ONERING_QC_BAD_REQUESTS], 1);
			return 0;
		}
		break; /* re-arming is a MOD with the same events */
	case ONERING_REQ_MOD:
		if (req->events & ~(uint32_t)REQ_EVENTS_ALLOWED)
			return -EPROTO;
		s->events = req->events;
		break;
	default:
		return -EPROTO;
	}
	ev.events = broker_epoll_flags(s->mode, s->events);
	ev.data.u64 = broker_sub_key(s->id, s->gen);
	if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0) {
		/* The source stays disarmed: counted, and said once per poller. */
		broker_count(&p->ctr[ONERING_PC_SYSCALL_ERRORS], 1);
		if (!f->mod_failed_logged)
			onering_log(ONERING_LOG_ERR, "poller %u: epoll_ctl(MOD) of sub %u (fd %d): %s; "
				    "it stays disarmed (logged once per poller, counted as "
				    "syscall_errors)", p->idx, s->id, s->fd, strerror(errno));
		f->mod_failed_logged = true;
	}
	return 0;
}

static const struct broker_source_ops fds_ops = {
	.name = "fds",
	.poll = fds_poll,
	.apply_request = fds_apply_request,
	.destroy = broker_source_free,
};

int broker_source_fds_create(struct poller *p, struct broker_source **out)
{
	*out = broker_source_alloc(p, &fds_ops, sizeof(struct source_fds));
	return *out ? 0 : -ENOMEM;
}
