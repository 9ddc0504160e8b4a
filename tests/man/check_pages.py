#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks on the man pages (docs/man/), so that they cannot drift from the code.

  check_pages.py functions MAP HEADER SCD...
                                        every symbol the linker version script
                                        exports, and every function HEADER
                                        declares, is named in some page source
  check_pages.py names MAP HEADER NAME...
                                        every public function has a section 3
                                        page or link among NAMEs, and every
                                        NAME is a public function or a page
  check_pages.py options ONERINGD SCD   every option `oneringd --help` lists is
                                        in oneringd.8's source
  check_pages.py commands ONERING SCD   every command `onering --help` lists
                                        has its "## COMMAND" in onering.1
  check_pages.py render PAGE...         each generated page renders with
                                        `man --warnings` and an empty stderr

Exit 0 pass, 1 fail, 77 skip (meson's skip code) with the reason printed.
"""
import os
import re
import shutil
import subprocess
import sys

SKIP = 77


def exported_symbols(map_path):
    """The names in the global: blocks of a linker version script."""
    names = []
    in_global = False
    with open(map_path, encoding='utf-8') as f:
        text = re.sub(r'/\*.*?\*/', '', f.read(), flags=re.S)
    for line in text.splitlines():
        line = line.strip()
        if line == 'global:':
            in_global = True
        elif line == 'local:' or line.startswith('}'):
            in_global = False
        elif in_global and line.endswith(';'):
            names.append(line[:-1].strip())
    return names


def declared_functions(header):
    """onering_* names declared as functions at the start of a line."""
    with open(header, encoding='utf-8') as f:
        return re.findall(r'^[A-Za-z].*?\b(onering_\w+)\(', f.read(), flags=re.M)


def check_functions(map_path, header, sources):
    exported = exported_symbols(map_path)
    if not exported:
        print(f'{map_path}: no exported symbols found')
        return 1
    declared = declared_functions(header)
    for n in sorted(set(declared) - set(exported)):
        print(f'note: {n} is declared in {os.path.basename(header)} but not exported')
    names = sorted(set(exported) | set(declared))
    text = ''
    for s in sources:
        with open(s, encoding='utf-8') as f:
            text += f.read()
    missing = [n for n in names if not re.search(r'(?<![\w])' + re.escape(n) + r'(?![\w])', text)]
    for n in missing:
        print(f'{n}: exported by {os.path.basename(map_path)} but named in no man page '
              '(add it to the NAME and SYNOPSIS of its group page in docs/man/)')
    print(f'{len(names) - len(missing)}/{len(names)} public functions named in '
          f'{len(sources)} pages')
    return 1 if missing else 0


def check_names(map_path, header, installed):
    public = set(exported_symbols(map_path)) | set(declared_functions(header))
    have = set(installed)
    missing = sorted(public - have)
    for n in missing:
        print(f'{n}: no {n}(3) page or link is installed (add it to man_links in '
              'docs/man/meson.build, under the page that describes it)')
    stray = sorted(n for n in have - public if n.startswith('onering_'))
    for n in stray:
        print(f'{n}(3) is installed but no public function has that name')
    print(f'{len(public) - len(missing)}/{len(public)} public functions have a man page name')
    return 1 if missing or stray else 0


def check_options(oneringd, source):
    out = subprocess.run([oneringd, '--help'], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        print(f'{oneringd} --help exited {out.returncode}: {out.stderr.strip()}')
        return 1
    opts = set()
    for line in out.stdout.splitlines():
        # An option line starts with the option; "--help, --version" lists two.
        if re.match(r'^\s+--[a-z]', line):
            head = line.strip().split('  ')[0]
            opts.update(re.findall(r'--[a-z][a-z0-9-]*', head))
    if not opts:
        print(f'{oneringd} --help lists no options: cannot check')
        return 1
    with open(source, encoding='utf-8') as f:
        text = f.read()
    missing = sorted(o for o in opts if f'*{o}*' not in text)
    for o in missing:
        print(f'{o}: listed by oneringd --help but not in {os.path.basename(source)} '
              f'(add "*{o}*" to OPTIONS)')
    print(f'{len(opts) - len(missing)}/{len(opts)} oneringd options documented')
    return 1 if missing else 0


def check_commands(onering, source):
    out = subprocess.run([onering, '--help'], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        print(f'{onering} --help exited {out.returncode}: {out.stderr.strip()}')
        return 1
    cmds = re.findall(r'^  ([a-z][a-z-]*)  ', out.stdout, flags=re.M)
    if not cmds:
        print(f'{onering} --help lists no commands: cannot check')
        return 1
    with open(source, encoding='utf-8') as f:
        text = f.read()
    missing = [c for c in cmds if not re.search(r'^## ' + re.escape(c) + r'$', text, flags=re.M)]
    for c in missing:
        print(f'{c}: listed by onering --help but has no "## {c}" in '
              f'{os.path.basename(source)}')
    print(f'{len(cmds) - len(missing)}/{len(cmds)} onering commands documented')
    return 1 if missing else 0


def check_render(pages):
    man = shutil.which('man')
    if not man:
        print('SKIP: man is not installed (apt-get install man-db)')
        return SKIP
    if not pages:
        print('SKIP: no pages were built (scdoc is missing: apt-get install scdoc)')
        return SKIP
    env = dict(os.environ, MANWIDTH='80', MAN_KEEP_FORMATTING='0')
    bad = 0
    for page in pages:
        r = subprocess.run([man, '--warnings', '-E', 'UTF-8', '-l', page],
                           capture_output=True, text=True, env=env, timeout=60)
        if r.returncode != 0 or r.stderr.strip() or not r.stdout.strip():
            print(f'{os.path.basename(page)}: man exited {r.returncode}, stderr:\n{r.stderr}')
            bad += 1
    print(f'{len(pages) - bad}/{len(pages)} pages render without warnings')
    return 1 if bad else 0


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == 'functions' and len(args) >= 3:
        return check_functions(args[0], args[1], args[2:])
    if cmd == 'names' and len(args) >= 3:
        return check_names(args[0], args[1], args[2:])
    if cmd == 'options' and len(args) == 2:
        return check_options(args[0], args[1])
    if cmd == 'commands' and len(args) == 2:
        return check_commands(args[0], args[1])
    if cmd == 'render':
        return check_render(args)
    print(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
