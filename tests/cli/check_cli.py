#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The command-line conventions of oneringd and onering (DESIGN.md, "Operator
interface"; docs/operations.md, "Command-line conventions"):

  check_cli.py ONERINGD ONERING OPERATIONS_MD

- docs/operations.md and --help list the same options: oneringd's option
  table against `oneringd --help`, and the "onering commands" table against
  each `onering COMMAND --help`;
- -h and --help print the usage on stdout and exit 0; -V and --version print
  the version;
- usage errors exit 2, name the word that was wrong, and read the same in
  both programs: 'PROG: unknown option "W" (PROG --help)', 'PROG: option "W"
  needs a value (PROG --help)', 'PROG: unexpected argument "W" (PROG --help)',
  'PROG: bad value "V" for --OPT: ... (PROG --help)'.

Exit 0 pass, 1 fail.
"""
import re
import subprocess
import sys

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def run(argv):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


OPTION = re.compile(r"--[a-z][a-z0-9-]*")


def help_options(text):
    """Options on the lines of a --help that list them: oneringd's are
    indented by two spaces; onering's are in the usage lines (before the
    first line that does not start with "usage:" or a space) and in the
    prose that follows."""
    return set(OPTION.findall(text))


def oneringd_help_options(text):
    opts = set()
    for line in text.splitlines():
        if re.match(r"^  -", line):  # an option line, not a continuation
            opts |= set(OPTION.findall(line))
    return opts


def table_after(md, heading):
    """The first column of the first table under heading, one string per row."""
    at = md.find(heading)
    if at < 0:
        fail(f"docs/operations.md has no heading {heading!r}")
        return []
    rows, seen = [], False
    for line in md[at:].splitlines()[1:]:
        if line.startswith("|"):
            seen = True
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not set(cells[0]) <= set("-: ") and cells[0] not in ("option", "command"):
                rows.append(cells)
        elif seen:
            break
    return rows


def compare(what, in_help, in_docs):
    for o in sorted(in_help - in_docs):
        fail(f"{what}: --help lists {o}, docs/operations.md does not")
    for o in sorted(in_docs - in_help):
        fail(f"{what}: docs/operations.md lists {o}, --help does not")


def expect_usage_error(prog, argv, message):
    rc, out, err = run(argv)
    want = f"{prog}: {message} ({prog} --help)"
    if rc != 2:
        fail(f"{' '.join(argv[1:])}: exit {rc}, not 2 (usage error)")
    if want not in err.splitlines():
        fail(f"{' '.join(argv[1:])}: stderr does not say {want!r}:\n{err}")


def main():
    oneringd, onering, ops_md = sys.argv[1:4]
    md = open(ops_md, encoding="utf-8").read()

    # oneringd: --help against the option table.
    rc, out, _ = run([oneringd, "--help"])
    if rc != 0 or not out.startswith("usage: oneringd"):
        fail(f"oneringd --help: exit {rc}, stdout {out[:60]!r}")
    docs = set()
    for row in table_after(md, "## Starting the broker"):
        docs |= set(OPTION.findall(row[0]))
    compare("oneringd", oneringd_help_options(out), docs)
    if run([oneringd, "-h"])[1] != out:
        fail("oneringd -h prints something else than --help")
    for v in ("-V", "--version"):
        rc, vout, _ = run([oneringd, v])
        if rc != 0 or not vout.startswith("oneringd "):
            fail(f"oneringd {v}: exit {rc}, {vout!r}")

    # onering: each command's --help against the commands table.
    rc, out, _ = run([onering, "--help"])
    commands = re.findall(r"^  ([a-z]+) ", out, re.M)
    if rc != 0 or not commands:
        fail(f"onering --help: exit {rc}, no commands in {out!r}")
    table = {row[0].strip("`").split()[-1]: set(OPTION.findall(row[1]))
             for row in table_after(md, "## The onering command") if len(row) > 1}
    for cmd in commands:
        if cmd not in table:
            fail(f"onering {cmd}: not in the table of docs/operations.md")
            continue
        if cmd in ("version", "bench"):  # no options of its own / onering-bench's
            continue
        rc, cout, _ = run([onering, cmd, "--help"])
        if rc != 0 or not cout.startswith("usage: onering " + cmd):
            fail(f"onering {cmd} --help: exit {rc}, stdout {cout[:60]!r}")
        compare(f"onering {cmd}", help_options(cout) | {"--help"}, table[cmd])
        if run([onering, cmd, "-h"])[1] != cout:
            fail(f"onering {cmd} -h prints something else than --help")
        expect_usage_error(f"onering {cmd}", [onering, cmd, "--no-such-option"],
                           'unknown option "--no-such-option"')
        expect_usage_error(f"onering {cmd}", [onering, cmd, "-x"], 'unknown option "-x"')
    for cmd in table:
        if cmd not in commands:
            fail(f"docs/operations.md lists onering {cmd}, onering --help does not")
    for v in ("-V", "--version", "version"):
        rc, vout, _ = run([onering, v])
        if rc != 0 or not vout.startswith("onering "):
            fail(f"onering {v}: exit {rc}, {vout!r}")

    # The same mistake, the same words, in both programs.
    for prog, argv in (("oneringd", [oneringd]), ("onering stat", [onering, "stat"])):
        expect_usage_error(prog, argv + ["--no-such-option"], 'unknown option "--no-such-option"')
        expect_usage_error(prog, argv + ["--name"], 'option "--name" needs a value')
        expect_usage_error(prog, argv + ["stray"], 'unexpected argument "stray"')
    expect_usage_error("onering", [onering, "no-such-command"], 'unknown command "no-such-command"')
    expect_usage_error("onering", [onering, "--no-such-option"], 'unknown option "--no-such-option"')
    expect_usage_error("onering", [onering], "no command given")
    for prog, argv, opt, val in (("oneringd", [oneringd], "max-subs", "lots"),
                                 ("onering stat", [onering, "stat"], "interval", "lots"),
                                 ("onering tail", [onering, "tail"], "count", "lots"),
                                 ("onering topo", [onering, "topo"], "cores", "lots")):
        rc, _, err = run(argv + [f"--{opt}", val])
        if rc != 2 or not re.search(rf'^{prog}: bad value "{val}" for --{opt}: expected .* '
                                    rf'\({prog} --help\)$', err, re.M):
            fail(f"{prog} --{opt} {val}: exit {rc}, stderr {err!r}")

    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
