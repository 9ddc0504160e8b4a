/* SPDX-License-Identifier: MIT */
/* Command-line conventions shared by oneringd and onering (shm/cli.h). */
#include "shm/cli.h"

#include <stdarg.h>
#include <string.h>

static void vsay(const char *prog, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (%s --help)\n", prog);
}

int onering_cli_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(prog, fmt, ap);
	va_end(ap);
	return ONERING_CLI_USAGE;
}

int onering_cli_bad_value(const char *prog, const char *opt, const char *value, const char *want)
{
	return onering_cli_error(prog, "bad value \"%s\" for --%s: %s", value, opt, want);
}

int onering_cli_extra(const char *prog, const char *word)
{
	return onering_cli_error(prog, "unexpected argument \"%s\"", word);
}

int onering_cli_getopt(const char *prog, int argc, char *const argv[], const char *shortopts,
		       const struct option *longopts)
{
	char opts[64];
	int saved = opterr, opt;

	/* A leading ':' tells a missing value (':') from an unknown option ('?'). */
	snprintf(opts, sizeof(opts), ":%s", shortopts);
	opterr = 0;
	opt = getopt_long(argc, argv, opts, longopts, NULL);
	opterr = saved;
	if (opt != '?' && opt != ':')
		return opt;
	/* The word getopt stopped at: a short option by its letter, a long
	 * one (or a cluster) as the user wrote it, without "=value". */
	char word[64];
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	if (optopt && !(arg[0] == '-' && arg[1] == '-'))
		snprintf(word, sizeof(word), "-%c", optopt);
	else
		snprintf(word, sizeof(word), "%.*s", (int)strcspn(arg, "="), arg);
	if (opt == ':')
		onering_cli_error(prog, "option \"%s\" needs a value", word);
	else
		onering_cli_error(prog, "unknown option \"%s\"", word);
	return '?';
}
