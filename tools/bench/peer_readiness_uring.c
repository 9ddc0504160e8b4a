/* SPDX-License-Identifier: MIT */
/*
 * peer_readiness_uring.c: readiness peers "uring-busy", "uring-block" and
 * "uring-peek" over io_uring multishot poll, the ring made on the consumer
 * thread (docs/benchmarks.md, Readiness).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <liburing.h>

#include "tools/bench/peers.h"

enum uring_wait { URING_BUSY, URING_BLOCK, URING_PEEK };

struct uring_readiness {
	struct readiness_common c;
	enum uring_wait how;
	bool up, defer;
	unsigned to_submit;
	struct io_uring ring;
};

static int uring_arm(struct uring_readiness *s, unsigned idx)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);

	if (!sqe) {
		int rc = io_uring_submit(&s->ring);
		if (rc < 0 || !(sqe = io_uring_get_sqe(&s->ring)))
			return rc < 0 ? rc : -EBUSY;
	}
	io_uring_prep_poll_multishot(sqe, s->c.rfd[idx], POLLIN);
	io_uring_sqe_set_data64(sqe, idx);
	s->to_submit++;
	return 0;
}

static int uring_thread_init(struct uring_readiness *s)
{
	/* CLAMP: above N = 8192 the CQ is the kernel's most (IORING_MAX_CQ_ENTRIES). */
	const unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
	struct io_uring_params p = { .flags = base };
	static bool said;
	int rc;

	p.cq_entries = s->c.n * 8 < 4096 ? 4096 : s->c.n * 8;
	if (s->how != URING_PEEK)
		p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	rc = io_uring_queue_init_params(256, &s->ring, &p);
	if (rc == -EINVAL && s->how != URING_PEEK) {
		if (!said)
			fprintf(stderr, "warning: no IORING_SETUP_DEFER_TASKRUN here: uring-busy "
				"and uring-block use the default setup\n");
		said = true;
		p.flags = base;
		rc = io_uring_queue_init_params(256, &s->ring, &p);
	}
	if (rc < 0)
		return rc;
	s->up = true;
	s->defer = p.flags & IORING_SETUP_DEFER_TASKRUN;
	for (unsigned i = 0; i < s->c.n && rc == 0; i++)
		rc = uring_arm(s, i);
	return rc < 0 ? rc : io_uring_submit(&s->ring) < 0 ? -EIO : 0;
}

static int readiness_uring_consume(void *state, unsigned thread_idx BENCH_UNUSED, void *items,
				   unsigned max_count)
{
	struct uring_readiness *s = state;
	struct ready_event *out = items;
	struct io_uring_cqe *cqes[READINESS_BATCH];
	int rc = 0;
	unsigned k = io_uring_peek_batch_cqe(&s->ring, cqes, max_count);
	if (k == 0) {
		if (s->how == URING_BLOCK) {
			struct __kernel_timespec ts = { .tv_nsec = READINESS_BLOCK_MS * 1000000ll };
			struct io_uring_cqe *cqe;
			rc = io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, &ts, NULL);
			rc = rc == -ETIME || rc == -EINTR ? 0 : rc;
		} else if (s->defer) {
			rc = s->to_submit ? io_uring_submit_and_get_events(&s->ring)
					  : io_uring_get_events(&s->ring);
		} else if (s->to_submit) {
			rc = io_uring_submit(&s->ring);
		}
		s->to_submit = 0;
		if (rc < 0)
			return rc;
		k = io_uring_peek_batch_cqe(&s->ring, cqes, max_count);
	}
	for (unsigned i = 0; i < k; i++) {
		uint64_t idx = io_uring_cqe_get_data64(cqes[i]);
		if (cqes[i]->res < 0)
			return bench_fail(cqes[i]->res, "multishot poll of source %u: %s",
					  (unsigned)idx, strerror(-cqes[i]->res));
		out[i] = (struct ready_event){ .idx = (uint32_t)idx };
		/* The multishot ended (e.g. CQ overflow): arm it again. */
		if (!(cqes[i]->flags & IORING_CQE_F_MORE) && idx < s->c.n &&
		    (rc = uring_arm(s, (unsigned)idx)) < 0)
			return rc;
	}
	io_uring_cq_advance(&s->ring, k);
	if (s->to_submit && s->how != URING_BUSY) {
		io_uring_submit(&s->ring);
		s->to_submit = 0;
	}
	return (int)k;
}

static int readiness_uring_control(void *state, unsigned op, void *arg BENCH_UNUSED)
{
	struct uring_readiness *s = state;

	if (op == BENCH_OP_THREAD_INIT)
		return uring_thread_init(s);
	if (op != BENCH_OP_THREAD_FINI)
		return -EINVAL;
	if (s->up)
		io_uring_queue_exit(&s->ring);
	s->up = false;
	return 0;
}

/* The ring is made on the consumer thread (BENCH_OP_THREAD_INIT). */
static int readiness_uring_setup(struct bench_ctx *ctx BENCH_UNUSED,
				 const struct bench_peer_ops *self, void *state)
{
	((struct uring_readiness *)state)->how = (enum uring_wait)self->variant;
	return 0;
}

static void readiness_uring_teardown(struct bench_ctx *ctx BENCH_UNUSED, void *state)
{
	readiness_uring_control(state, BENCH_OP_THREAD_FINI, NULL);
}

#define URING_HOOKS readiness_uring_setup, NULL, readiness_uring_consume, \
	readiness_uring_control, readiness_uring_teardown
BENCH_PEER(bench_peer_readiness_uring_busy, "uring-busy", "multishot poll, DEFER_TASKRUN, peek "
	   "then io_uring_get_events()", "liburing", struct uring_readiness, URING_BUSY,
	   URING_HOOKS);
BENCH_PEER(bench_peer_readiness_uring_block, "uring-block", "multishot poll, "
	   "io_uring_submit_and_wait_timeout()", "liburing", struct uring_readiness,
	   URING_BLOCK, URING_HOOKS);
BENCH_PEER(bench_peer_readiness_uring_peek, "uring-peek", "multishot poll, default setup, the "
	   "consumer only peeks", "liburing", struct uring_readiness, URING_PEEK, URING_HOOKS);
