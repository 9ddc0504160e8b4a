/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
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

int onering_log_level_parse(const char *s)
{
	static const struct {
		const char *name;
		int level;
	} names[] = {{"error", ONERING_LOG_ERR},     {"err", ONERING_LOG_ERR},
		     {"warning", ONERING_LOG_WARN},  {"warn", ONERING_LOG_WARN},
		     {"notice", ONERING_LOG_NOTICE}, {"info", ONERING_LOG_INFO},
		     {"debug", ONERING_LOG_DEBUG}};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].level;
	if (s[0] >= '3' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	return -EINVAL;
}

static int current_level(void)
{
	int level = onering_atomic_load(&log_level, onering_mo_relaxed);

	if (level < 0) {
		const char *env = getenv("ONERING_LOG_LEVEL");
		level = env ? onering_log_level_parse(env) : ONERING_LOG_NOTICE;
		if (level < 0)
			level = ONERING_LOG_NOTICE; /* a bad value: the default */
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
