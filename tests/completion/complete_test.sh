#!/bin/bash
# SPDX-License-Identifier: MIT
# The bash completion (completion/onering.bash) against this build's
# programs: commands, each command's options, oneringd's options, the
# benchmark scenarios and their options.
# Usage: complete_test.sh SOURCE_ROOT BUILD_ROOT
set -u
export PATH="$2/tools:$2/broker:$PATH"
# shellcheck source=/dev/null
source "$1/completion/onering.bash"
failed=0

expect() { # FUNCTION WORD... -- EXPECTED
	local fn=$1 exp=${*: -1}
	shift
	local words=("${@:1:$#-2}")
	COMP_WORDS=("${words[@]}")
	COMP_CWORD=$((${#words[@]} - 1))
	COMPREPLY=()
	"$fn"
	if [[ " ${COMPREPLY[*]} " != *" $exp "* ]]; then
		echo "FAIL: ${words[*]} -> (${COMPREPLY[*]}), expected $exp"
		failed=1
	else
		echo "ok: ${words[*]} -> $exp"
	fi
}

expect _onering onering st -- stat
expect _onering onering do -- doctor
expect _onering onering stat --pro -- --prometheus
expect _onering onering tune --gr -- --group
expect _onering onering no -- notify
expect _onering onering notify --pay -- --payload
expect _onering onering listen --sec -- --seconds
expect _oneringd oneringd --cor -- --cores
expect _oneringd oneringd --max-client-s -- --max-client-subs
if command -v onering-bench >/dev/null; then # not in builds without benchmarks
	expect _onering_bench onering-bench dis -- dispatch
	expect _onering_bench onering-bench readiness --warm -- --warmup-ms
	expect _onering onering bench ti -- timers
fi
exit $failed
