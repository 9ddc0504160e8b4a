/* SPDX-License-Identifier: MIT */
/*
 * The poller: one thread per configured core, the broker's hot loop.
 *
 *   poll     every source of this poller, in order (source.h: packets,
 *            fds, hand-offs, timers, submission rings, watched words);
 *            each emits its records through deliver. What a loop costs
 *            does not grow with idle queues: the submission rings looked
 *            at are those whose bells are set (bells.h), all of them only
 *            after an idle sleep (or once a millisecond while more
 *            posters wait for a backlog than source_submit.c lists);
 *   deliver  deliver_flush: what waited is placed, every ring written is
 *            published (one release store per queue, only the queues
 *            written this loop) and the doorbells of consumers that
 *            announced sleep are rung;
 *   idle     after a loop without work, the strategy of --idle decides
 *            (idle_step): busy polls again at once; backoff polls again
 *            for idle_spin_ns, then offers its core IDLE_YIELDS times
 *            (sched_yield), then blocks; overprovisioned blocks at once.
 *            Blocking is: announce sleep and wait on the wait set (the
 *            epoll fd that holds every fd source and the kick eventfd)
 *            until an fd is ready, a client or another poller kicks, or
 *            the next source deadline comes (a timer; a watched word's
 *            scan); RCU-offline meanwhile. Only while a record waits for
 *            ring space (a queue's pending list, a group's backlog: retried
 *            each loop, and nothing wakes the poller when the consumer
 *            frees space) is the block cut to idle_sleep_ms. With nothing
 *            to retry and no timer it has no timeout at all: an idle
 *            broker makes no wake-ups (sleeps_untimed counts these).
 *            A source whose work wakes nothing (NIC rx) has deadline 0:
 *            the poller then never blocks (an overprovisioned one yields
 *            instead). The spin reads no clock of its own: it goes by the
 *            loop's (ctx.now_ns, which the sources need for timestamps
 *            and timers).
 *   coalesce with --coalesce-us N, a loop whose epoll harvest took more
 *            than one readiness event (and emptied the ready list) is
 *            followed by a sleep of up to N us, whatever the strategy
 *            (coalesce_wait says when it is shorter or skipped): what comes
 *            meanwhile is harvested in one go - fewer system calls and
 *            wake-ups per event, up to N us more latency (a NIC's interrupt
 *            moderation, ethtool rx-usecs). A loop that found one event does
 *            not wait, so a lone source (or a light load) keeps its
 *            latency; the wait only starts once events come faster than
 *            the loop takes them one by one.
 *
 * The loop knows no source kind: a new kind is a file behind the ops table
 * in source.h, not an edit here.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "broker/bells.h"
#include "broker/broker.h"
#include "broker/deliver.h"
#include "broker/group.h"
#include "broker/poller.h"
#include "broker/queue.h"
#include "broker/source.h"
#include "numa/placement.h"
#include "numa/topology.h"
#include "shm/log.h"

/* Backoff: idle loops, each followed by a sched_yield, between the spin
 * and the block - a thread that shares the core runs then, for a tick at
 * most, without the poller paying a sleep and a wake-up. */
#define IDLE_YIELDS 4

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Set or clear NEED_WAKEUP in every live queue this poller serves. */
static void set_need_wakeup(struct poller *p, uint32_t flags)
{
	struct broker_queue *q;

	cds_list_for_each_entry_rcu(q, &p->queues, poller_node) {
		BROKER_TSAN_OBSERVE(q);
		/* A5 (deliver.c): the queue's state word. */
		if (onering_atomic_load(&q->state, onering_mo_acquire) == BROKER_QUEUE_LIVE)
			onering_atomic_store(&q->ectl->poller_flags, flags, onering_mo_relaxed);
	}
}

/* Whether a source has work that nothing would wake the poller for (a
 * submission bell, a hand-off). */
static bool sources_have_work(struct poller *p)
{
	for (unsigned i = 0; i < p->nr_sources; i++) {
		struct broker_source *s = p->sources[i];
		if (s->ops->has_work && s->ops->has_work(s))
			return true;
	}
	return false;
}

/*
 * Before an idle sleep: announce it, then F2, then ask every source whether
 * work waits that would not wake the poller. A client that enqueued before
 * seeing the flag, or a poller that handed off before seeing `sleeping`, is
 * found here; one that comes after sees the flag and kicks.
 * Returns false when work is already waiting (do not sleep).
 */
static bool announce_sleep(struct poller *p)
{
	p->sleeps++;
	set_need_wakeup(p, ONERING_POLLER_NEED_WAKEUP | p->sleeps << ONERING_POLLER_SLEEP_SHIFT);
	onering_atomic_store(&p->sleeping, 1, onering_mo_relaxed);
	/* F2: pairs with the fence in the client's submit after its R1, and
	 * with F1 in lane.c after another poller's hand-off. */
	onering_fence(onering_mo_seq_cst);
	return !sources_have_work(p);
}

/* The earliest source deadline, ns from now (0: poll again at once). */
static uint64_t next_deadline(struct poller *p, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (unsigned i = 0; i < p->nr_sources; i++) {
		struct broker_source *s = p->sources[i];
		if (s->ops->next_deadline) {
			uint64_t d = s->ops->next_deadline(s, now);
			if (d < next)
				next = d;
		}
	}
	return next;
}

/* The longest a sleep may last: the next source deadline (UINT64_MAX:
 * none, no timeout), cut to idle_sleep_ms while a record or a POST waits
 * for space (the loop retries those; nothing wakes the poller for them). */
static uint64_t sleep_limit(struct poller *p, uint64_t now)
{
	const struct broker_config *cfg = &p->b->cfg;
	uint64_t sleep_ns = next_deadline(p, now);
	uint64_t retry_ns = (uint64_t)cfg->idle_sleep_ms * 1000000ull;

	if (cfg->idle_sleep_ms >= 0 && sleep_ns > retry_ns &&
	    (p->posts_blocked || deliver_waiting(p)))
		sleep_ns = retry_ns;
	return sleep_ns;
}

/* ppoll on fd for at most ns (UINT64_MAX: no timeout), RCU-offline. */
static int offline_poll(struct poller *p, int fd, uint64_t ns)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	struct timespec tmo = {.tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull)};

	BROKER_TSAN_QUIESCENT();
	urcu_qsbr_thread_offline();
	int r = ppoll(&pfd, 1, ns == UINT64_MAX ? NULL : &tmo, NULL);
	if (r < 0 && errno != EINTR) {
		broker_count(&p->ctr[ONERING_PC_SYSCALL_ERRORS], 1);
		onering_log(ONERING_LOG_ERR, "poller %u: ppoll: %s", p->idx, strerror(errno));
	}
	urcu_qsbr_thread_online();
	return r;
}

/* Block on the wait set for at most sleep_ns (UINT64_MAX: no timeout).
 * Events stay in epoll for the fd source to harvest: ppoll only asks
 * whether there are any. */
static void idle_sleep(struct poller *p, uint64_t sleep_ns)
{
	/* Counted as it begins: a block with no timeout may last until the
	 * broker stops, and stats should show it meanwhile. */
	broker_count(&p->ctr[ONERING_PC_SLEEPS], 1);
	if (sleep_ns == UINT64_MAX)
		broker_count(&p->ctr[ONERING_PC_SLEEPS_UNTIMED], 1);
	int r = offline_poll(p, p->epfd, sleep_ns);
	p->epoll_due = r != 0; /* readable (or unsure): the fd source asks epoll */
	p->full_look = true;   /* every submission ring once, bell or not */
	set_need_wakeup(p, 0);
	onering_atomic_store(&p->sleeping, 0, onering_mo_relaxed);
}

/* Since the last loop that worked. */
struct idle_state {
	uint64_t since_ns; /* the first idle loop's clock, 0: the last loop worked */
	unsigned yields;   /* backoff's yields so far */
};

/* After a loop that found no work (now: its clock): poll again at once,
 * offer the core, or block - as b->cfg.idle says. */
static void idle_step(struct poller *p, struct idle_state *idle, uint64_t now)
{
	const struct broker_config *cfg = &p->b->cfg;
	bool first = idle->since_ns == 0;

	if (first)
		idle->since_ns = now;
	if (cfg->idle == BROKER_IDLE_BUSY || cfg->idle_sleep_ms < 0) {
		onering_cpu_relax();
		return;
	}
	/* The longest block (the look at every ring after the sleep retries
	 * the POSTs that waited). */
	uint64_t sleep_ns = sleep_limit(p, now);
	if (sleep_ns == 0) { /* a source that wakes nothing (NIC rx), or --idle-sleep-ms 0 */
		if (cfg->idle == BROKER_IDLE_OVERPROVISIONED) {
			sched_yield();
			broker_count(&p->ctr[ONERING_PC_YIELDS], 1);
		} else {
			onering_cpu_relax();
		}
		return;
	}
	if (cfg->idle == BROKER_IDLE_BACKOFF) {
		/* Spin: one more loop, unless this was the first idle one. */
		if (first || now - idle->since_ns < cfg->idle_spin_ns) {
			onering_cpu_relax();
			return;
		}
		if (idle->yields < IDLE_YIELDS) {
			idle->yields++;
			sched_yield();
			broker_count(&p->ctr[ONERING_PC_YIELDS], 1);
			return;
		}
	}
	/* Block until a source fires, a client kicks (it has put a request on
	 * a submission ring) or the sleep ends (if it has an end). */
	if (!announce_sleep(p)) {
		onering_atomic_store(&p->sleeping, 0, onering_mo_relaxed);
		set_need_wakeup(p, 0);
		return;
	}
	idle_sleep(p, sleep_ns);
}

/* --coalesce-us, after a loop whose harvest was a batch of readiness
 * events (source_fds.c: harvest_batched): sleep before the next loop, so
 * what comes meanwhile is harvested together. Not when a source has work
 * that nothing would wake it for (a submission bell, a hand-off), and not
 * past the next source deadline: a timer due meanwhile fires on time, a
 * poller with NIC rx queues (deadline 0) never waits, and records or posts
 * waiting for room are retried within idle_sleep_ms, as when idle. The
 * sleep is a ppoll on the kick eventfd alone: the control thread's kick
 * (broker_pollers_settle, poller_stop) ends it; clients and other pollers
 * do not kick a poller that has not announced a sleep. RCU-offline
 * meanwhile, as in an idle sleep, so a grace period (a queue's close) does
 * not wait for it. Returns whether it slept. */
static bool coalesce_wait(struct poller *p, uint64_t now)
{
	uint64_t ns = sleep_limit(p, now);

	if (p->b->cfg.coalesce_ns < ns)
		ns = p->b->cfg.coalesce_ns;
	if (ns == 0 || sources_have_work(p))
		return false;
	if (offline_poll(p, p->kick_fd, ns) != 0)
		p->epoll_due = true; /* kicked (or a signal): epoll holds the kick */
	return true;
}

void poller_thread_init(struct poller *p)
{
	broker_clock_init(&p->clock, true);
	for (unsigned i = 0; i < p->nr_sources; i++)
		if (p->sources[i]->ops->thread_start)
			p->sources[i]->ops->thread_start(p->sources[i]);
}

unsigned poller_loop_work(struct poller *p, struct broker_poll_ctx *ctx)
{
	for (unsigned i = 0; i < p->nr_sources; i++)
		ctx->work += p->sources[i]->ops->poll(p->sources[i], ctx);
	unsigned work = ctx->work + deliver_flush(p, ctx->now_ns);
	broker_count(&p->ctr[ONERING_PC_LOOPS], 1);
	return work;
}

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	struct broker *b = p->b;
	struct idle_state idle = {0, 0};
	uint64_t busy_from = 0; /* a working loop's start */

	/* Timer expiries need sleeps cut to the microsecond, not the default
	 * 50 us of slack. */
	if (prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) < 0)
		onering_log(ONERING_LOG_WARN, "poller %u: cannot set its timer slack: %s "
			    "(timers may fire up to 50 us late)", p->idx, strerror(errno));
	/* Created pinned (poller_start); this pin is the fallback's, and the
	 * one that says why a CPU is refused. */
	int r = onering_topo_pin_thread(b->topo, p->cpu);
	if (r < 0)
		onering_log(ONERING_LOG_WARN, "poller %u: cannot pin to cpu %d: %s", p->idx,
			    p->cpu, strerror(-r));
	urcu_qsbr_register_thread();
	poller_thread_init(p);
	/* A8: pairs with R5 in poller_stop. */
	while (!onering_atomic_load(&p->stop, onering_mo_acquire)) {
		BROKER_TSAN_QUIESCENT();
		urcu_qsbr_quiescent_state();
		p->loop_no++;
		/* A10: pairs with R8 in broker_pollers_settle; this loop's
		 * decisions see the settings stored before that seq. */
		uint64_t settle = onering_atomic_load(&b->settle_seq, onering_mo_acquire);
		struct broker_poll_ctx ctx = {.now_ns = broker_clock_now(&p->clock),
					      .loop_no = p->loop_no};
		p->harvest_batched = false;
		if (busy_from) { /* the last loop worked: its time counts as busy */
			broker_count(&p->ctr[ONERING_PC_BUSY_NS], ctx.now_ns - busy_from);
			busy_from = 0;
		}
		unsigned work = poller_loop_work(p, &ctx);
		if (settle != p->settled_seen) {
			/* R6: pairs with A9 in broker_pollers_settle; a whole loop
			 * (backlogs, lanes, publish) ran under settle. */
			onering_atomic_store(&p->settled, settle, onering_mo_release);
			p->settled_seen = settle;
		}
		if (work) {
			idle.since_ns = 0;
			idle.yields = 0;
			busy_from = ctx.now_ns;
			if (p->harvest_batched && b->cfg.coalesce_ns) {
				uint64_t now = broker_clock_now(&p->clock);
				if (coalesce_wait(p, now)) { /* the wait is not busy time */
					broker_count(&p->ctr[ONERING_PC_BUSY_NS], now - busy_from);
					busy_from = 0;
				}
			}
			continue;
		}
		idle_step(p, &idle, ctx.now_ns);
	}
	for (unsigned i = 0; i < p->nr_sources; i++)
		if (p->sources[i]->ops->thread_stop)
			p->sources[i]->ops->thread_stop(p->sources[i]);
	BROKER_TSAN_QUIESCENT();
	urcu_qsbr_unregister_thread();
	return NULL;
}

/*
 * The poller's stack comes from its node: glibc would map it in the
 * control thread and write the thread's descriptor at its top there, so
 * its first pages would be the control thread's node's. Mapped here and
 * bound before anything touches it (where the node exists; said once
 * otherwise), with a guard page below, freed by poller_stop after the join.
 */
#define POLLER_STACK_SIZE (8u << 20)
#define POLLER_GUARD_SIZE 4096u

static int poller_stack_create(struct poller *p)
{
	size_t size = POLLER_STACK_SIZE + POLLER_GUARD_SIZE;
	void *s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
		       -1, 0);

	if (s == MAP_FAILED)
		return -errno;
	if (mprotect(s, POLLER_GUARD_SIZE, PROT_NONE) < 0) {
		int e = errno;
		munmap(s, size);
		return -e;
	}
	if (!onering_numa_placement_off()) {
		int r = onering_numa_bind_memory((char *)s + POLLER_GUARD_SIZE, POLLER_STACK_SIZE,
						 (uint32_t)p->node);
		if (r < 0)
			onering_log(ONERING_LOG_WARN, "poller %u: its stack stays off node %d: %s",
				    p->idx, p->node, strerror(-r));
	}
	p->stack = s;
	p->stack_size = size;
	return 0;
}

int poller_init(struct poller *p)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
	int r;

	CDS_INIT_LIST_HEAD(&p->queues);
	onering_atomic_init(&p->fd_subs, 0u);
	cds_wfcq_init(&p->redeliver_head, &p->redeliver_tail);
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->epfd < 0 || p->kick_fd < 0)
		return -errno;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->kick_fd, &ev) < 0)
		return -errno;
	/* A bells page per user and kind (bells.h: with a summary or not) with
	 * queues here: at most one per client, and one more per 4,032 queues
	 * (a summary page's bits) of a user, for each kind. */
	r = broker_bells_init(p, p->b->cfg.max_clients +
					 p->b->cfg.max_queues / (ONERING_BELL_BITS - 64) + 2);
	if (r < 0)
		return r;
	p->full_look = true;
	r = broker_sources_create(p);
	if (r < 0)
		return r;
	onering_atomic_store(&p->ctr[ONERING_PC_CPU], (uint64_t)p->cpu, onering_mo_relaxed);
	return 0;
}

/* p's thread on its own stack, pinned to p->cpu when pin: 0 or an errno. */
static int poller_thread_create(struct poller *p, bool pin)
{
	pthread_attr_t attr;
	cpu_set_t cpus;
	int r = pthread_attr_init(&attr);

	if (r)
		return r;
	r = pthread_attr_setstack(&attr, (char *)p->stack + POLLER_GUARD_SIZE,
				  p->stack_size - POLLER_GUARD_SIZE);
	if (r == 0 && pin && onering_topo_cpu_set(p->b->topo, p->cpu, &cpus) == 1)
		r = pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus);
	if (r == 0)
		r = pthread_create(&p->thread, &attr, poller_main, p);
	pthread_attr_destroy(&attr);
	return r;
}

int poller_start(struct poller *p)
{
	int r = poller_init(p);

	if (r < 0)
		return r;
	r = poller_stack_create(p);
	if (r < 0)
		return r;
	/* Born on its CPU: pinning itself in poller_main would leave it a
	 * moment on the control thread's CPU, which it inherits (and where
	 * `onering` or a test looking at it before its first loop sees it).
	 * A CPU the kernel refuses (a cpuset) fails the creation: then it is
	 * created unpinned, and poller_main's own pin says why. */
	r = poller_thread_create(p, true);
	if (r == EINVAL)
		r = poller_thread_create(p, false);
	if (r)
		return -r;
	/* "onering-poll0": what ps -L, top -H, perf and the tests name it by;
	 * set here, before the broker says it is ready. */
	char name[16];
	snprintf(name, sizeof(name), "onering-poll%u", p->idx);
	pthread_setname_np(p->thread, name);
	p->started = true;
	return 0;
}

void poller_kick(struct poller *p)
{
	if (eventfd_write(p->kick_fd, 1) < 0)
		onering_log(ONERING_LOG_ERR, "poller %u: cannot kick it: %s", p->idx,
			    strerror(errno));
}

void broker_pollers_settle(struct broker *b)
{
	uint64_t seq = onering_atomic_load(&b->settle_seq, onering_mo_relaxed) + 1;
	uint64_t deadline = now_ns() + 1000ull * 1000 * 1000;

	/* R8: pairs with A10 at the top of each poller's loop. */
	onering_atomic_store(&b->settle_seq, seq, onering_mo_release);
	for (unsigned i = 0; i < b->cfg.plan.nr_pollers; i++)
		if (b->pollers[i].started)
			poller_kick(&b->pollers[i]); /* a sleeping one runs a loop now */
	for (unsigned i = 0; i < b->cfg.plan.nr_pollers; i++) {
		struct poller *p = &b->pollers[i];
		/* A9: pairs with R6 after the poller's loop. */
		while (p->started && onering_atomic_load(&p->settled, onering_mo_acquire) < seq) {
			if (now_ns() > deadline) {
				onering_log(ONERING_LOG_WARN, "poller %u has not finished a loop in 1 s: "
					    "it may still decide with the old group settings", i);
				return;
			}
			struct timespec pause = {0, 20 * 1000};
			nanosleep(&pause, NULL);
		}
	}
}

void poller_stop(struct poller *p)
{
	if (p->started) {
		/* R5: pairs with A8 at the top of the poller's loop. */
		onering_atomic_store(&p->stop, 1, onering_mo_release);
		poller_kick(p);
		pthread_join(p->thread, NULL);
		p->started = false;
	}
	if (p->stack) {
		munmap(p->stack, p->stack_size);
		p->stack = NULL;
	}
	broker_sources_destroy(p);
	broker_bells_fini(p);
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->kick_fd >= 0)
		close(p->kick_fd);
	p->epfd = p->kick_fd = -1;
}
