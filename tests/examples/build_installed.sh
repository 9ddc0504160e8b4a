#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the examples against an installed libonering, as a user would.
#
#   tests/examples/build_installed.sh [BUILD_DIR]    (default: build)
#
# 1. meson install BUILD_DIR into a staging directory (DESTDIR), without
#    rebuilding (build first: ninja -C BUILD_DIR);
# 2. pkg-config on the staged onering.pc (PKG_CONFIG_SYSROOT_DIR maps its
#    paths into the staging directory) must name no DPDK flags;
# 3. the staged onering.h compiles alone as C11 and as C++17;
# 4. each examples/*.c compiles with `cc ... $(pkg-config --cflags --libs
#    onering)` and warnings as errors, and the program runs --help against
#    the staged library.
# Exits 0 when all hold; otherwise non-zero with a line saying what failed.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_ARG=${1:-build}
if [ -d "$BUILD_ARG" ]; then
	BUILD_DIR=$(cd "$BUILD_ARG" && pwd)
elif [ -d "$SRC_DIR/$BUILD_ARG" ]; then
	BUILD_DIR=$(cd "$SRC_DIR/$BUILD_ARG" && pwd)
else
	BUILD_DIR=$BUILD_ARG
fi
CC=${CC:-cc}
CXX=${CXX:-c++}
# What a careful user builds with: the project's own warning set.
WARN=(-Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes -Wshadow -Wcast-qual
	-Wundef -Wwrite-strings -Werror)

say() { printf 'build_installed: %s\n' "$*"; }
fail() {
	printf 'build_installed: FAIL: %s\n' "$*" >&2
	exit 1
}

[ -f "$BUILD_DIR/build.ninja" ] ||
	fail "$BUILD_DIR is not a configured meson build directory (meson setup $BUILD_ARG)"
command -v pkg-config >/dev/null || fail "pkg-config is not installed"
command -v "$CC" >/dev/null || fail "no C compiler ($CC)"
command -v "$CXX" >/dev/null || fail "no C++ compiler ($CXX)"

STAGE_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/onering-install-XXXXXX")
trap 'rm -rf "$STAGE_ROOT"' EXIT
STAGE=$STAGE_ROOT/destdir
OUT=$STAGE_ROOT/out
mkdir -p "$OUT"

# ---- 1. install into the staging directory ---------------------------------
say "meson install -C $BUILD_DIR --destdir $STAGE"
if ! meson install -C "$BUILD_DIR" --destdir "$STAGE" --no-rebuild --quiet \
	>"$OUT/install.log" 2>&1; then
	cat "$OUT/install.log" >&2
	fail "meson install failed (is $BUILD_DIR built? ninja -C $BUILD_DIR)"
fi

PC_FILE=$(find "$STAGE" -name onering.pc -print -quit)
[ -n "$PC_FILE" ] || fail "no onering.pc under $STAGE: the pkg-config file is not installed"
PC_DIR=$(dirname "$PC_FILE")
say "found ${PC_FILE#"$STAGE"}"

# The .pc names the final prefix (/usr/local/...): the sysroot maps it into
# the staging directory. (pkg-config --define-prefix would guess the prefix
# from the .pc's location, which is wrong for a multiarch libdir such as
# lib/x86_64-linux-gnu.)
export PKG_CONFIG_PATH=$PC_DIR
export PKG_CONFIG_SYSROOT_DIR=$STAGE
export PKG_CONFIG_LIBDIR=$PC_DIR # only the staged .pc, never a system one

pkg-config --exists onering || fail "pkg-config cannot read $PC_FILE"
CFLAGS_PC=$(pkg-config --cflags onering)
LIBS_PC=$(pkg-config --libs onering)
STATIC_PC=$(pkg-config --static --cflags --libs onering)
say "pkg-config --cflags --libs onering: $CFLAGS_PC $LIBS_PC"

# ---- 2. no DPDK in what a client links --------------------------------------
for flags in "$CFLAGS_PC $LIBS_PC" "$STATIC_PC"; do
	if grep -Eiq -- '-march|rte_|dpdk' <<<"$flags"; then
		fail "pkg-config flags carry DPDK (or -march) flags: $flags"
	fi
done
grep -q -- '-lonering' <<<"$LIBS_PC" || fail "pkg-config --libs does not name -lonering"

# ---- 3. the installed header compiles alone ---------------------------------
# shellcheck disable=SC2086 # pkg-config output is a list of flags
echo '#include <onering.h>' | "$CC" -std=c11 -Wall -Wextra -pedantic -Werror \
	-fsyntax-only -x c - $CFLAGS_PC || fail "onering.h does not compile alone as C11"
say "onering.h compiles alone as C11"
# shellcheck disable=SC2086
echo '#include <onering.h>' | "$CXX" -std=c++17 -Wall -Wextra -pedantic -Werror \
	-fsyntax-only -x c++ - $CFLAGS_PC || fail "onering.h does not compile alone as C++17"
say "onering.h compiles alone as C++17"

# ---- 4. each example, built and run as a user would ---------------------------
LIB_DIR=$(dirname "$(find "$STAGE" -name 'libonering.so*' -print -quit)")
[ -d "$LIB_DIR" ] || fail "no libonering.so under $STAGE"
shopt -s nullglob
examples=("$SRC_DIR"/examples/*.c)
[ ${#examples[@]} -gt 0 ] || fail "no examples in $SRC_DIR/examples"
for src in "${examples[@]}"; do
	name=$(basename "$src" .c)
	exe=$OUT/$name
	# The source tree is not on the include path: only the installed header
	# can be found, as for a user.
	# What the example itself needs besides onering (its header says so).
	extra="-pthread"
	if grep -q "<liburing.h>" "$src"; then extra="$extra -luring"; fi
	if grep -q "<uv.h>" "$src"; then
		pkg-config --exists libuv || { say "skipping $name.c: no libuv (libuv1-dev)"; continue; }
		extra="$extra $(pkg-config --cflags --libs libuv)"
	fi
	# shellcheck disable=SC2086
	"$CC" -std=c11 -O2 "${WARN[@]}" -o "$exe" "$src" $CFLAGS_PC $LIBS_PC $extra ||
		fail "$name.c does not build against the installed libonering"
	if ! LD_LIBRARY_PATH=$LIB_DIR "$exe" --help >"$OUT/$name.help" 2>&1; then
		cat "$OUT/$name.help" >&2
		fail "$name --help failed against the installed libonering"
	fi
	grep -q '^usage:' "$OUT/$name.help" || fail "$name --help printed no usage line"
	# (ldd's output is captured first: grep -q stopping early would make
	# ldd die of SIGPIPE, which pipefail reports as a failure.)
	deps=$(LD_LIBRARY_PATH=$LIB_DIR ldd "$exe")
	grep -q "libonering.so.0 => $LIB_DIR/" <<<"$deps" ||
		fail "$name does not load the staged libonering.so.0: $deps"
	say "$name: built with pkg-config, --help runs"
done

say "ok: ${#examples[@]} example(s) build and run against the installed libonering"
