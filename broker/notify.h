/* SPDX-License-Identifier: MIT */
/*
 * The service manager's notification protocol (sd_notify(3)), spoken
 * directly: one datagram of "KEY=value" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace). Without
 * $NOTIFY_SOCKET every call is a no-op, so the broker speaks it always and
 * needs no libsystemd.
 *
 * Context: the control thread only.
 */
#ifndef ONERING_BROKER_NOTIFY_H
#define ONERING_BROKER_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Send one message (e.g. "READY=1\nSTATUS=serving"). 0 (sent, or nobody
 * listens), or -errno (the caller logs it). */
int broker_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether a service manager listens ($NOTIFY_SOCKET set). */
bool broker_notify_enabled(void);

/* The watchdog interval the manager asks for ($WATCHDOG_USEC, for this
 * process per $WATCHDOG_PID if set), in ns; 0: none. */
uint64_t broker_notify_watchdog_ns(void);

#endif /* ONERING_BROKER_NOTIFY_H */
