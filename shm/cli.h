/* SPDX-License-Identifier: MIT */
/*
 * Command-line conventions shared by oneringd and every onering command,
 * so that the same mistake reads the same in both (DESIGN.md, "Operator
 * interface"): usage errors exit 2 and name the word that was wrong.
 *
 *   PROG: unknown option "--bogus" (PROG --help)
 *   PROG: option "--name" needs a value (PROG --help)
 *   PROG: unexpected argument "word" (PROG --help)
 *   PROG: bad value "x" for --count: a number, 0..86400 (PROG --help)
 *
 * PROG is "oneringd" or "onering stat" and so on. libc only.
 */
#ifndef ONERING_SHM_CLI_H
#define ONERING_SHM_CLI_H

#include <getopt.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The exit status of a usage error. */
#define ONERING_CLI_USAGE 2

/**
 * getopt_long() with the messages above instead of getopt's: the next
 * option's value (its long or short name's), -1 after the last option, or
 * '?' once a usage error has been printed to stderr (the caller exits
 * ONERING_CLI_USAGE). shortopts must not begin with ':' or '+'.
 */
int onering_cli_getopt(const char *prog, int argc, char *const argv[], const char *shortopts,
		       const struct option *longopts);

/**
 * Print "PROG: " fmt " (PROG --help)" to stderr.
 * @return ONERING_CLI_USAGE, for `return onering_cli_error(...)`.
 */
int onering_cli_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** The wording for a bad option value: "bad value "VALUE" for --OPT: WANT". @return 2. */
int onering_cli_bad_value(const char *prog, const char *opt, const char *value, const char *want);

/** The wording for a word after the options: "unexpected argument "WORD"". @return 2. */
int onering_cli_extra(const char *prog, const char *word);

#ifdef __cplusplus
}
#endif

#endif /* ONERING_SHM_CLI_H */
