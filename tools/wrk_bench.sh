#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wrk against examples/http_server.c: onering vs plain epoll, same server logic.
#
#   tools/wrk_bench.sh [BUILD_DIR]      (default: build)
#
# Starts a private oneringd (--foreground, a temporary --socket-dir, --name
# wrkbench), then runs the HTTP example on onering and on --epoll in
# alternation, ROUNDS times each, under the same wrk command on loopback,
# and prints requests/s and latency p50/p99 per run, the medians, and the
# ratio onering/epoll. Every process it starts is stopped by its pid.
#
# Environment (defaults in brackets):
#   ROUNDS [3]  DURATION [10s]  WARMUP [2s, 0 = none]  THREADS [1]
#   CONNECTIONS [50]  PORT [18080]  BROKER_ARGS [--no-hugepages]
#   QUIET_PCT [10]: a run is "undisturbed" when the rest of the machine used
#     less CPU than this during it; the medians are printed for all runs and
#     for the undisturbed ones
#   APP_CPUS [unset]: run the server and wrk under `taskset -c APP_CPUS`,
#     e.g. 0 on a 2-core machine to give both back ends the same CPU for
#     the application while the broker's poller keeps its own (the last CPU)
#
# Mind the machine: broker, server and wrk all want a CPU. The broker's
# poller is pinned to the last CPU and busy-polls while there is work; on a
# 2-core machine the scheduler then leaves the server and wrk mostly on the
# other core in onering mode, while the epoll server and wrk spread over
# both (APP_CPUS=0 gives both back ends the same single core). `nproc` is
# printed with the results, and each run's CPU use: server, broker, wrk, and
# "other" (the rest of the machine; more than a few percent there means the
# run was disturbed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_ARG=${1:-build}
if [ -d "$BUILD_ARG" ]; then
	BUILD_DIR=$(cd "$BUILD_ARG" && pwd)
else
	BUILD_DIR=$ROOT/$BUILD_ARG
fi
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-50}
PORT=${PORT:-18080}
BROKER_ARGS=${BROKER_ARGS:---no-hugepages}
APP_CPUS=${APP_CPUS:-}
NAME=wrkbench

ONERINGD=$BUILD_DIR/broker/oneringd
SERVER=$BUILD_DIR/examples/onering-http-server
URL=http://127.0.0.1:$PORT/
WRK_ARGS=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$URL")

say() { printf 'wrk_bench: %s\n' "$*" >&2; }
die() {
	printf 'wrk_bench: error: %s\n' "$*" >&2
	exit 1
}

# ---- prerequisites ------------------------------------------------------------
[ -x "$ONERINGD" ] || die "$ONERINGD not found: build first (ninja -C $BUILD_DIR)"
[ -x "$SERVER" ] || die "$SERVER not found: build first (ninja -C $BUILD_DIR)"
if ! command -v wrk >/dev/null; then
	[ "$(id -u)" -eq 0 ] || die "wrk is missing: sudo apt-get install -y wrk"
	say "installing wrk (apt-get install -y wrk)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } ||
		die "could not install wrk"
fi

PIN=()
if [ -n "$APP_CPUS" ]; then
	command -v taskset >/dev/null || die "APP_CPUS needs taskset (util-linux)"
	PIN=(taskset -c "$APP_CPUS")
fi

# Figures from a busy machine mean little: say so up front.
busy=$(ps -eo pcpu=,pid=,comm= --sort=-pcpu |
	awk '$1 >= 20 { printf "%s%s (pid %s, %s%% CPU)", sep, $3, $2, $1; sep = ", " }')
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -n "$busy" ]; then
	say "warning: other processes are busy, the figures will be noisy: $busy"
fi

# Someone else's server on PORT would be measured instead of ours.
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
	die "port $PORT is already in use on 127.0.0.1: choose another with PORT=N"
fi

# ---- process bookkeeping: everything started is stopped by pid -----------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/onering-wrk-XXXXXX")
BROKER_PID=
SERVER_PID=

# Stop pid: SIGTERM, wait up to 5 s, then SIGKILL. Returns its exit status.
stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "pid $pid did not stop on SIGTERM: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	local st=0
	wait "$pid" 2>/dev/null || st=$?
	return "$st"
}

cleanup() {
	local st=$?
	stop_pid "$SERVER_PID" || true
	stop_pid "$BROKER_PID" || true
	rm -rf "$WORK"
	exit "$st"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HZ=$(getconf CLK_TCK)

# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
	awk -v hz="$HZ" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# CPU seconds the whole machine has been busy (all CPUs, idle and iowait excluded).
machine_busy_seconds() {
	awk -v hz="$HZ" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

# 100 * (b - a) / seconds, rounded.
percent() {
	awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN { printf "%.0f", 100 * (b - a) / s }'
}

# ---- the broker ---------------------------------------------------------------
mkfifo "$WORK/ready"
say "starting oneringd --foreground --name $NAME --socket-dir $WORK $BROKER_ARGS"
# shellcheck disable=SC2086 # BROKER_ARGS is a list of options
"$ONERINGD" --foreground --name "$NAME" --socket-dir "$WORK" --ready-fd 3 $BROKER_ARGS \
	3>"$WORK/ready" 2>"$WORK/oneringd.log" &
BROKER_PID=$!
ready=
read -r -t 10 -n 1 ready <"$WORK/ready" || true
if [ "$ready" != R ]; then
	cat "$WORK/oneringd.log" >&2
	die "oneringd did not become ready within 10 s"
fi
say "oneringd ready (pid $BROKER_PID): $(head -n 1 "$WORK/oneringd.log")"

# ---- one run ----------------------------------------------------------------------
# Wait (bounded) until the server accepts connections on PORT.
wait_listening() {
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || return 1
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# Latency as wrk prints it (812.00us, 1.19ms, 2.00s) in microseconds.
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n = n
		else if (v ~ /ms$/) n = n * 1000
		else if (v ~ /s$/) n = n * 1000000
		printf "%.0f", n
	}'
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"

# run BACKEND ROUND: one server start, optional warm-up, one measured wrk.
run() {
	local backend=$1 round=$2 log=$WORK/$1-$2 args=()
	[ "$backend" = epoll ] && args=(--epoll)
	# --max-seconds bounds the server even if this script is killed hard.
	"${PIN[@]}" "$SERVER" --port "$PORT" --name "$NAME" --socket-dir "$WORK" "${args[@]}" \
		--max-seconds 600 >"$log.server" 2>&1 &
	SERVER_PID=$!
	if ! wait_listening; then
		cat "$log.server" >&2
		die "$backend server did not start listening on port $PORT"
	fi
	if [ "$WARMUP" != 0 ]; then
		"${PIN[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$URL" >/dev/null
	fi
	# CPU used during the measured run: server, broker, wrk (bash's time
	# keyword: its user and system seconds), and the rest of the machine.
	local cpu_srv0 cpu_brk0 cpu_all0 cpu_srv1 cpu_brk1 cpu_all1 cpu_wrk
	cpu_srv0=$(cpu_seconds "$SERVER_PID")
	cpu_brk0=$(cpu_seconds "$BROKER_PID")
	cpu_all0=$(machine_busy_seconds)
	local TIMEFORMAT='%U %S'
	{ time "${PIN[@]}" wrk "${WRK_ARGS[@]}" >"$log.wrk"; } 2>"$log.time"
	cpu_srv1=$(cpu_seconds "$SERVER_PID")
	cpu_brk1=$(cpu_seconds "$BROKER_PID")
	cpu_all1=$(machine_busy_seconds)
	cpu_wrk=$(awk '{ printf "%.2f", $1 + $2 }' "$log.time")
	local st=0
	stop_pid "$SERVER_PID" || st=$?
	SERVER_PID=
	[ "$st" -eq 0 ] || { cat "$log.server" >&2; die "$backend server exited with status $st"; }

	local rps p50 p99 errors secs
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$log.wrk")
	p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$log.wrk")")
	p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$log.wrk")")
	errors=$(grep -E 'Socket errors|Non-2xx' "$log.wrk" | tr -s ' ' | paste -sd ';' - || true)
	[ -n "$rps" ] || { cat "$log.wrk" >&2; die "no Requests/sec in wrk's output"; }
	secs=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; print n }')
	local srv brk wrkp other
	srv=$(percent "$cpu_srv0" "$cpu_srv1" "$secs")
	brk=$(percent "$cpu_brk0" "$cpu_brk1" "$secs")
	wrkp=$(percent 0 "$cpu_wrk" "$secs")
	other=$(awk -v a="$cpu_all0" -v b="$cpu_all1" -v s="$secs" -v x="$srv" -v y="$brk" -v z="$wrkp" \
		'BEGIN { o = 100 * (b - a) / s - x - y - z; printf "%.0f", o < 0 ? 0 : o }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$backend" "$round" "$rps" "$p50" "$p99" \
		"$srv" "$brk" "$wrkp" "$other" "${errors:--}" >>"$RESULTS"
	say "$backend round $round: $rps requests/s, p50 ${p50} us, p99 ${p99} us${errors:+ ($errors)}"
}

say "wrk ${WRK_ARGS[*]}; $ROUNDS round(s), onering and epoll alternating"
for ((r = 1; r <= ROUNDS; r++)); do
	run onering "$r"
	run epoll "$r"
done

# ---- the table ----------------------------------------------------------------------
echo
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), nproc $(nproc), kernel $(uname -r)"
echo "wrk:     wrk ${WRK_ARGS[*]} (warm-up ${WARMUP} before each run)"
echo "broker:  oneringd --foreground --name $NAME $BROKER_ARGS (one poller, on the last CPU)"
if [ -n "$APP_CPUS" ]; then
	echo "app:     server and wrk pinned to CPU(s) $APP_CPUS (taskset -c $APP_CPUS)"
else
	echo "app:     server and wrk not pinned"
fi
echo "load:    $LOAD_BEFORE before the runs${busy:+; busy then: $busy}"
echo
# Medians over all runs, and over the undisturbed ones (the rest of the
# machine used less than QUIET_PCT % CPU during the run).
awk -F'\t' -v quiet="${QUIET_PCT:-10}" '
function median(a, n,   i, j, t) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(set, k) {
	n[set, k]++
	rps[set, k, n[set, k]] = $3; p50[set, k, n[set, k]] = $4; p99[set, k, n[set, k]] = $5
}
# One medians table for set ("all" or "quiet"), or a line saying why not.
function medians(set, title,   x, k, i, a, b, c, mr, m50, m99) {
	if (!n[set, "onering"] || !n[set, "epoll"]) {
		printf "\n(no %s: every run of a back end was disturbed)\n", title
		return
	}
	for (x = 1; x <= 2; x++) {
		k = x == 1 ? "onering" : "epoll"
		for (i = 1; i <= n[set, k]; i++) {
			a[i] = rps[set, k, i]; b[i] = p50[set, k, i]; c[i] = p99[set, k, i]
		}
		mr[k] = median(a, n[set, k]); m50[k] = median(b, n[set, k]); m99[k] = median(c, n[set, k])
		delete a; delete b; delete c
	}
	printf "\n| %s (onering %d, epoll %d runs) | requests/s | p50 (us) | p99 (us) |\n", title, \
		n[set, "onering"], n[set, "epoll"]
	printf "|---|---:|---:|---:|\n"
	printf "| onering | %.0f | %.0f | %.0f |\n", mr["onering"], m50["onering"], m99["onering"]
	printf "| epoll | %.0f | %.0f | %.0f |\n", mr["epoll"], m50["epoll"], m99["epoll"]
	printf "| onering/epoll | %.2f | %.2f | %.2f |\n", mr["onering"] / mr["epoll"], \
		m50["onering"] / m50["epoll"], m99["onering"] / m99["epoll"]
}
{
	rows[NR] = $0
	add("all", $1)
	if ($9 + 0 < quiet)
		add("quiet", $1)
}
END {
	printf "| backend | round | requests/s | p50 (us) | p99 (us) | server CPU %% | broker CPU %% | wrk CPU %% | other CPU %% | errors |\n"
	printf "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
	for (i = 1; i <= NR; i++) {
		split(rows[i], f, "\t")
		printf "| %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", f[1], f[2], f[3], \
			f[4], f[5], f[6], f[7], f[8], f[9], f[10]
	}
	medians("all", "median, all runs")
	medians("quiet", "median, undisturbed runs (other CPU < " quiet " %)")
}' "$RESULTS"
