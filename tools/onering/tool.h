/* SPDX-License-Identifier: MIT */
/*
 * The onering command's internals (private to tools/onering/): one file per
 * command, main.c's table of them, and what more than one command uses -
 * reaching a broker's control socket (control.c), printing its counters
 * (stat.c) and printing events (tail.c).
 *
 * Every command is `int tool_<name>(int argc, char **argv)`: argv[0] is the
 * command's name; it returns the process's exit status (0 done, 1 failed,
 * 2 a usage error).
 */
#ifndef ONERING_TOOL_H
#define ONERING_TOOL_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client/onering.h"
#include "shm/cli.h"
#include "shm/counters_seg.h"
#include "shm/proto.h"
#include "shm/segment.h"

int tool_bench(int argc, char **argv);
int tool_demo(int argc, char **argv);
int tool_doctor(int argc, char **argv);
int tool_listen(int argc, char **argv);
int tool_notify(int argc, char **argv);
int tool_stat(int argc, char **argv);
int tool_tail(int argc, char **argv);
int tool_top(int argc, char **argv);
int tool_topo(int argc, char **argv);
int tool_tune(int argc, char **argv);

/* main.c: the directory this program is in (of /proc/self/exe). @return 0 or -errno. */
int tool_self_dir(char *dir, size_t len);

/* ---- control.c: a broker's control socket ---------------------------------- */

/* Which broker: --name (else $ONERING_NAME, else "default") and --socket-dir. */
struct tool_instance {
	const char *name;
	const char *dir; /* NULL: onering_socket_dir()'s default */
};

/* A decimal number in [min, max] into *out: 0, or -EINVAL (no sign, no
 * trailing characters). */
int tool_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

/* A comma list of CPU numbers (0..4095) into cpus[max]: 0 and *n, or
 * -EINVAL (a word that is not one, or more than max). */
int tool_parse_cpu_list(const char *s, int *cpus, unsigned max, unsigned *n);

struct onering_topo;
struct onering_plan;
/* The topology (synthetic: an hwloc description, or NULL for this machine)
 * and the plan oneringd would make on it with these poller cpus (nr 0: it
 * chooses): 0 and *t (onering_topo_free it) and *plan, or -errno and err. */
int tool_plan_load(const char *synthetic, const int *cpus, unsigned nr, struct onering_topo **t,
		   struct onering_plan *plan, char *err, size_t err_size);

/* The instance named by the environment, before options change it. */
void tool_instance_init(struct tool_instance *inst);

/* The options that choose the instance, first in a command's getopt_long table. */
#define TOOL_INSTANCE_OPTIONS                                                                   \
	{"name", required_argument, NULL, 'n'}, {"socket-dir", required_argument, NULL, 'd'}

/* Apply getopt_long's opt if it is one of TOOL_INSTANCE_OPTIONS. @return true if it was. */
bool tool_instance_option(struct tool_instance *inst, int opt, const char *arg);

/*
 * Connect to inst and say HELLO (onering_proto_connect()), then make one
 * request (onering_proto_call(): item gets each STATS_ITEM), then close.
 * @return the call's status; err says what failed, naming the instance.
 *   rep->type is 0 unless the broker answered (then rep is its answer).
 */
int tool_call(const struct tool_instance *inst, struct onering_msg *req, struct onering_msg *rep,
	      int (*item)(const struct onering_msg *msg, void *arg), void *arg, char *err,
	      size_t err_size);

/*
 * The counters segment of inst's broker, mapped read-only (a COUNTERS
 * request: no HELLO, no client slot), its seals checked. @return 0 or
 * -errno, err naming the instance and the fix. onering_seg_destroy() it.
 */
int tool_counters_open(const struct tool_instance *inst, struct onering_seg *seg, char *err,
		       size_t err_size);
/* A snapshot of it (onering_metrics_read()); err names the instance. */
int tool_counters_read(const struct tool_instance *inst, const struct onering_seg *seg,
		       struct onering_metrics *m, char *err, size_t err_size);
/* Open, read once, unmap: one snapshot (onering_metrics_free() it). */
int tool_counters_fetch(const struct tool_instance *inst, struct onering_metrics *m, char *err,
			size_t err_size);
/* Predicate: the broker of m stopped (its last update said so) or died. */
bool tool_counters_gone(const struct onering_metrics *m);

/* ---- listen.c: what notify and listen share ----------------------------------- */

/* Attach to inst and look group up without creating it (onering_group_find()):
 * 0, *att and *gid; or 1 (the exit status) with the reason printed, for a
 * missing group how one is made. */
int tool_group_attach(const char *prog, const struct tool_instance *inst, const char *group,
		      struct onering **att, uint32_t *gid);

/* ---- stat.c ----------------------------------------------------------------- */

/*
 * The counters as `onering stat` prints them: one section per object kind.
 * prev not NULL: counters as per-second rates against it (matched by slot
 * and generation; objects new since then: 0), gauges as they are.
 */
void tool_stats_print(const struct onering_metrics *m, const struct onering_metrics *prev,
		      FILE *out);
/* Counter name of o, by name (-1 if o's list has none): its value, or its
 * per-second rate against prev (0 if o is new since prev or prev NULL). */
uint64_t tool_value(const struct onering_metrics_object *o, const char *name);
double tool_rate(const struct onering_metrics *m, const struct onering_metrics *prev,
		 const struct onering_metrics_object *o, const char *name);

/* ---- tail.c: events as tail and demo print them -------------------------------- */

extern volatile sig_atomic_t tool_stop_requested; /* set by tool_on_signal() */
void tool_on_signal(int sig);
uint64_t tool_now_ns(void); /* CLOCK_MONOTONIC */
/* One line: seconds since t0, label, subscription, events, flags, cookie. */
void tool_print_event(const struct onering_event *e, uint64_t t0, const char *label);
/* --count N or --seconds S (opt 'c' or 'S') of a command that prints events:
 * 0, or a usage error printed (its return: ONERING_CLI_USAGE). */
int tool_parse_bound(const char *prog, int opt, const char *arg, long *count, long *seconds);
/* Wait for up to max records of q, at most 200 ms (so that a signal is
 * seen soon) and not past end_ns (0: no end). @return records taken (0:
 * none yet, or a signal); -ETIMEDOUT end_ns has passed; another -errno. */
int tool_wait_until(struct onering_queue *q, struct onering_event *evs, unsigned max,
		    uint64_t end_ns);
/* One line for a group's record, a packet or a user event (tail, listen):
 * a user event's payload as "text" when it is printable (up to its first
 * NUL, then NULs only), else as hex. */
void tool_print_group_record(const struct onering_queue *q, const struct onering_event *e,
			     uint64_t t0);

#endif /* ONERING_TOOL_H */
