/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "shm/atomic.h"
#include "shm/log.h"

static onering_log_sink_fn log_sink;
static void *log_sink_arg;
static ONERING_ATOMIC(int) log_level = -1;

static const char *level_name(int level)
{
	switch (level) {
	case ONERING_LOG_ERR:
		return "error";
	case ONERING_LOG_WARN:
		return "warning";
	case ONERING_LOG_NOTICE:
		return "notice";
	case ONERING_LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

static int current_level(void)
{
	int level = onering_atomic_load(&log_level, onering_mo_relaxed);

	if (level < 0) {
		const char *env = getenv("ONERING_LOG_LEVEL");
		level = env ? atoi(env) : ONERING_LOG_NOTICE;
		onering_atomic_store(&log_level, level, onering_mo_relaxed);
	}
	return level;
}

void onering_log_set_level(int level)
{
	onering_atomic_store(&log_level, level, onering_mo_relaxed);
}

void onering_log_set_sink(onering_log_sink_fn sink, void *arg)
{
	log_sink = sink;
	log_sink_arg = arg;
}

void onering_log(int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (level > current_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_sink)
		log_sink(level, msg, log_sink_arg);
	else
		fprintf(stderr, "onering: %s: %s\n", level_name(level), msg);
}

void onering_bug(const char *file, const char *func, int line, const char *msg)
{
	fprintf(stderr, "onering: BUG at %s:%s:%d: %s\n", file, func, line, msg);
	abort();
}
