# SPDX-License-Identifier: MIT
# bash completion for onering, oneringd and onering-bench (installed by
# meson). The words come from the programs' own --help, so they never drift:
# commands from `onering --help`, options from `onering COMMAND --help`,
# `oneringd --help` and `onering-bench SCENARIO --help`.

# The --options a program's help text names.
_onering_options()
{
	"$@" --help 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*' | sort -u
}

_onering()
{
	local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[0]} words
	if [ "$COMP_CWORD" -eq 1 ]; then
		words=$("$cmd" --help 2>&1 | awk '/^  [a-z]/ { print $1 }')
	elif [ "${COMP_WORDS[1]}" = bench ] && [ "$COMP_CWORD" -eq 2 ]; then
		words=$("$cmd" bench list 2>/dev/null | awk '/^[a-z]/ { print $1 }')
	elif [ "${COMP_WORDS[1]}" = bench ]; then
		words=$(_onering_options "$cmd" bench "${COMP_WORDS[2]}")
	else
		words=$(_onering_options "$cmd" "${COMP_WORDS[1]}")
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

_oneringd()
{
	local cur=${COMP_WORDS[COMP_CWORD]}
	COMPREPLY=($(compgen -W "$(_onering_options "${COMP_WORDS[0]}")" -- "$cur"))
}

_onering_bench()
{
	local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[0]} words
	if [ "$COMP_CWORD" -eq 1 ]; then
		words="list $("$cmd" list 2>/dev/null | awk '/^[a-z]/ { print $1 }')"
	else
		words=$(_onering_options "$cmd" "${COMP_WORDS[1]}")
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

complete -F _onering onering
complete -F _oneringd oneringd
complete -F _onering_bench onering-bench
