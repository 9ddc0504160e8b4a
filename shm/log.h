/* SPDX-License-Identifier: MIT */
/*
 * One-line logging for slow paths. Hot paths return codes and never log.
 * The default sink writes "onering: <level>: <message>" to stderr; the
 * broker installs its own (timestamps, syslog) with onering_log_set_sink().
 */
#ifndef ONERING_SHM_LOG_H
#define ONERING_SHM_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum onering_log_level {
	ONERING_LOG_ERR = 3,
	ONERING_LOG_WARN = 4,
	ONERING_LOG_NOTICE = 5,
	ONERING_LOG_INFO = 6,
	ONERING_LOG_DEBUG = 7,
};

typedef void (*onering_log_sink_fn)(int level, const char *msg, void *arg);

/** Log one line at level (messages above the threshold are dropped). */
void onering_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Replace the sink (NULL restores stderr). Call before threads start. */
void onering_log_set_sink(onering_log_sink_fn sink, void *arg);

/**
 * A level by number (3..7) or name (error/err, warning/warn, notice, info,
 * debug), as --log-level and $ONERING_LOG_LEVEL take it.
 * @return the level, or -EINVAL.
 */
int onering_log_level_parse(const char *s);

/** Most verbose level that is emitted (default ONERING_LOG_NOTICE, or $ONERING_LOG_LEVEL). */
void onering_log_set_level(int level);

/* Abort on a bug in onering itself (never on peer data): prints where. */
#define ONERING_BUG(msg) onering_bug(__FILE__, __func__, __LINE__, (msg))
#define ONERING_BUG_ON(cond)                    \
	do {                                    \
		if (__builtin_expect(!!(cond), 0)) \
			ONERING_BUG(#cond);         \
	} while (0)
__attribute__((noreturn)) void onering_bug(const char *file, const char *func, int line, const char *msg);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_SHM_LOG_H */
