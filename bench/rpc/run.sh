#!/usr/bin/env bash
# run.sh - the RPC benchmark of issue 5 (item 7): builds the echo programs,
# runs every variant in interleaved rounds on loopback, prints the medians
# as a table, then Panthera's ratios to bare nng and to gRPC C++ and four
# machine-readable lines. README.md says what is measured and how to read it.
#
# Environment (defaults in brackets): ROUNDS [3], SEQ_N [10000] sequential
# calls, PAR_N [100000] calls with INFLIGHT [64] outstanding, PIN_N [5000]
# sequential calls pinned to CPU 0, BUDGET_S [165]: no round starts that the
# previous round's length says would end later than that many seconds.
# Every wait is bounded; servers are stopped with SIGTERM, then SIGKILL after
# 5 s.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$HERE/build
ROUNDS=${ROUNDS:-3}
SEQ_N=${SEQ_N:-10000}
PAR_N=${PAR_N:-100000}
PIN_N=${PIN_N:-5000}
INFLIGHT=${INFLIGHT:-64}
BUDGET_S=${BUDGET_S:-165}
CLIENT_TIMEOUT_S=60 # one client run, killed after this
WAIT_TICKS=250      # waits poll every 0.02 s: 250 ticks = 5 s

TMP=$(mktemp -d /tmp/panthera-bench-rpc.XXXXXX)
SRV_PID=""
FAILED=0

cleanup() {
	if [[ -n $SRV_PID ]]; then
		kill -KILL "$SRV_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# alive PID: the process exists and is not a zombie.
alive() {
	local state
	{ read -r _ _ state _ <"/proc/$1/stat"; } 2>/dev/null || return 1
	[[ $state != Z ]]
}

# A TCP port on 127.0.0.1 nothing listens on, below the ephemeral range.
free_port() {
	local port i
	for ((i = 0; i < 50; i++)); do
		port=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

fail() {
	echo "  FAILED: $*" >&2
	FAILED=1
}

# start_server PROG TRANSPORT PIN: starts build/PROG_server on a fresh
# address, on CPU 0 if PIN is 1, and waits until it accepts connections.
# Sets SRV_PID, SRV_URL, SRV_OUT. Tries three addresses.
SERIAL=0
start_server() {
	local prog=$1 transport=$2 attempt i port="" path=""
	local -a pin=()
	if (($3)); then pin=(taskset -c 0); fi
	for ((attempt = 0; attempt < 3; attempt++)); do
		SERIAL=$((SERIAL + 1))
		SRV_OUT=$TMP/server-$SERIAL.out
		if [[ $transport == tcp ]]; then
			port=$(free_port) || { fail "no free port"; return 1; }
			SRV_URL=tcp://127.0.0.1:$port
		else
			path=$TMP/$prog-$SERIAL.ipc
			SRV_URL=ipc://$path
		fi
		"${pin[@]}" "$BIN/${prog}_server" "$SRV_URL" >"$SRV_OUT" 2>"$SRV_OUT.err" &
		SRV_PID=$!
		for ((i = 0; i < WAIT_TICKS; i++)); do
			alive "$SRV_PID" || break
			if [[ $transport == tcp ]]; then
				(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
			else
				[[ -S $path ]] && return 0
			fi
			sleep 0.02
		done
		stop_server || true
		echo "  ${prog}_server on $SRV_URL did not start: $(head -c 300 "$SRV_OUT.err")" >&2
	done
	fail "${prog}_server would not start"
	return 1
}

# stop_server: SIGTERM, then SIGKILL after 5 s. Sets SRV_RSS from the
# server's "rss_kib=" line ("" if none); fails unless the server exited 0.
stop_server() {
	local pid=$SRV_PID i=0 rc=0
	SRV_RSS=""
	[[ -n $pid ]] || return 1
	kill -TERM "$pid" 2>/dev/null || true
	while alive "$pid" && ((i < WAIT_TICKS)); do
		sleep 0.02
		i=$((i + 1))
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		echo "  server $pid ignored SIGTERM for 5 s; killed" >&2
		rc=1
	fi
	wait "$pid" 2>/dev/null || rc=1
	SRV_PID=""
	SRV_RSS=$(sed -n 's/^rss_kib=\([0-9][0-9]*\)$/\1/p' "$SRV_OUT" | tail -n 1)
	return $rc
}

# client PIN PROG URL ARGS...: runs one client, on CPU 0 if PIN is 1; sets
# C_P50 C_P99 C_RPS C_RSS.
client() {
	local prog=$2 line
	local -a pin=()
	if (($1)); then pin=(taskset -c 0); fi
	shift 2
	if ! line=$(timeout -k 2 "$CLIENT_TIMEOUT_S" "${pin[@]}" "$BIN/${prog}_client" "$@" 2>"$TMP/client.err"); then
		fail "${prog}_client $*: $(head -c 300 "$TMP/client.err")"
		return 1
	fi
	if [[ ! $line =~ ^p50_us=([0-9.]+)\ p99_us=([0-9.]+)\ rps=([0-9]+)\ rss_kib=([0-9]+)$ ]]; then
		fail "${prog}_client $*: unexpected output '$line'"
		return 1
	fi
	C_P50=${BASH_REMATCH[1]} C_P99=${BASH_REMATCH[2]} C_RPS=${BASH_REMATCH[3]} C_RSS=${BASH_REMATCH[4]}
}

# Results: VALUES["label|metric"] holds one value per round, space-separated.
declare -A VALUES
add() { VALUES["$1|$2"]+="$3 "; }

# measure PROG TRANSPORT LABEL: one round of one variant.
measure() {
	local prog=$1 transport=$2 label=$3 url cli_rss=0 summary=""
	if [[ $transport == inproc ]]; then
		url=inproc://panthera-bench-$prog
		if client 0 "$prog" "$url" seq "$SEQ_N"; then
			add "$label" seq_p50 "$C_P50"; add "$label" seq_p99 "$C_P99"
			cli_rss=$C_RSS; summary+="seq p50 $C_P50 p99 $C_P99 us"
		fi
		if client 0 "$prog" "$url" par "$PAR_N" "$INFLIGHT"; then
			add "$label" par_rps "$C_RPS"
			if ((C_RSS > cli_rss)); then cli_rss=$C_RSS; fi
			summary+=" | $C_RPS req/s"
		fi
		if client 1 "$prog" "$url" seq "$PIN_N"; then
			add "$label" pin_p50 "$C_P50"; summary+=" | pinned p50 $C_P50 us"
		fi
	else
		if start_server "$prog" "$transport" 0; then
			if client 0 "$prog" "$SRV_URL" seq "$SEQ_N"; then
				add "$label" seq_p50 "$C_P50"; add "$label" seq_p99 "$C_P99"
				cli_rss=$C_RSS; summary+="seq p50 $C_P50 p99 $C_P99 us"
			fi
			if client 0 "$prog" "$SRV_URL" par "$PAR_N" "$INFLIGHT"; then
				add "$label" par_rps "$C_RPS"
				if ((C_RSS > cli_rss)); then cli_rss=$C_RSS; fi
				summary+=" | $C_RPS req/s"
			fi
			if stop_server && [[ -n $SRV_RSS ]]; then
				add "$label" srv_rss "$SRV_RSS"; summary+=" | server $SRV_RSS KiB"
			else
				fail "${prog}_server on $SRV_URL: no clean exit with rss_kib"
			fi
		fi
		if start_server "$prog" "$transport" 1; then
			if client 1 "$prog" "$SRV_URL" seq "$PIN_N"; then
				add "$label" pin_p50 "$C_P50"; summary+=" | pinned p50 $C_P50 us"
			fi
			stop_server || fail "pinned ${prog}_server on $SRV_URL: no clean exit"
		fi
	fi
	if ((cli_rss > 0)); then
		add "$label" cli_rss "$cli_rss"
		summary+=" | client $cli_rss KiB"
	fi
	printf '  %-16s %s\n' "$label" "$summary"
}

# median "v1 v2 ..." FORMAT: the median printed with FORMAT, or "-" when there is none.
median() {
	awk -v fmt="$2" '{ for (i = 1; i <= NF; i++) v[n++] = $i } END {
		if (n == 0) { print "-"; exit }
		# insertion sort: at most a handful of rounds
		for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
		m = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
		printf fmt "\n", m }' <<<"$1"
}

# ratio A B: A/B with three decimals, or n/a.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "n/a"
		else printf "%.3f\n", a / b }'
}

# ---- build ------------------------------------------------------------------------
echo "bench/rpc: $(date '+%Y-%m-%d %H:%M:%S %Z'), nproc=$(nproc), $(uname -sr)"
echo "payload 100 B each way; ${ROUNDS} interleaved rounds, medians; seq N=$SEQ_N;" \
	"par N=$PAR_N with $INFLIGHT in flight; pinned: client and server on CPU 0, N=$PIN_N"
build_start=$(now_ms)
if ! make -C "$HERE" -j"$(nproc)" >"$TMP/build.log" 2>&1; then
	cat "$TMP/build.log" >&2
	echo "bench/rpc: build failed" >&2
	exit 1
fi
build_ms=$(($(now_ms) - build_start))
printf 'build: %d.%01d s\n' $((build_ms / 1000)) $((build_ms % 1000 / 100))

# ---- variants ---------------------------------------------------------------------
# "program transport label"
VARIANTS=("nng_echo tcp nng tcp" "nng_echo ipc nng ipc" "nng_echo inproc nng inproc"
	"tcp_echo tcp raw tcp" "grpc_echo tcp grpc tcp")
PANTHERA=0
if [[ -x $BIN/panthera_echo_client ]]; then
	PANTHERA=1
	VARIANTS=("panthera_echo tcp panthera tcp" "panthera_echo ipc panthera ipc"
		"panthera_echo inproc panthera inproc" "${VARIANTS[@]}")
	# The same server with its handlers on worker threads (the default,
	# for handlers that block): what the hand-off costs.
	if [[ -x $BIN/panthera_workers_echo_client ]]; then
		VARIANTS=("panthera_workers_echo tcp panthera-workers tcp" "${VARIANTS[@]}")
	fi
fi

# ---- rounds -----------------------------------------------------------------------
# Round r starts at variant r-1, so that no variant always runs first or
# right after the same neighbour.
rounds_done=0
round_s=0
for ((r = 0; r < ROUNDS; r++)); do
	if ((r > 0 && SECONDS + round_s > BUDGET_S)); then
		echo "time budget (${BUDGET_S} s) reached: stopping after $r rounds"
		break
	fi
	round_start=$SECONDS
	echo "round $((r + 1))/$ROUNDS"
	count=${#VARIANTS[@]}
	for ((k = 0; k < count; k++)); do
		read -r prog transport label <<<"${VARIANTS[$(((k + r) % count))]}"
		measure "$prog" "$transport" "$label"
	done
	rounds_done=$((r + 1))
	round_s=$((SECONDS - round_start))
done

# ---- table ------------------------------------------------------------------------
echo
echo "medians of $rounds_done rounds (latency in us, RSS = peak KiB; inproc: one process, so client RSS covers both)"
printf '%-16s %10s %10s %12s %14s %11s %11s\n' variant "seq p50" "seq p99" "req/s @$INFLIGHT" \
	"pinned p50" "server RSS" "client RSS"
declare -A MED
for v in "${VARIANTS[@]}"; do
	read -r _ _ label <<<"$v"
	for m in seq_p50 seq_p99 pin_p50; do
		MED["$label|$m"]=$(median "${VALUES["$label|$m"]:-}" "%.1f")
	done
	for m in par_rps srv_rss cli_rss; do
		MED["$label|$m"]=$(median "${VALUES["$label|$m"]:-}" "%.0f")
	done
	printf '%-16s %10s %10s %12s %14s %11s %11s\n' "$label" "${MED["$label|seq_p50"]}" \
		"${MED["$label|seq_p99"]}" "${MED["$label|par_rps"]}" "${MED["$label|pin_p50"]}" \
		"${MED["$label|srv_rss"]}" "${MED["$label|cli_rss"]}"
done
if ((!PANTHERA)); then
	echo "panthera: not built yet"
fi

# ---- ratios -----------------------------------------------------------------------
r_p50_nng=n/a r_tp_nng=n/a r_p50_grpc=n/a r_tp_grpc=n/a
if ((PANTHERA)); then
	r_p50_nng=$(ratio "${MED["panthera tcp|seq_p50"]}" "${MED["nng tcp|seq_p50"]}")
	r_tp_nng=$(ratio "${MED["panthera tcp|par_rps"]}" "${MED["nng tcp|par_rps"]}")
	r_p50_grpc=$(ratio "${MED["panthera tcp|seq_p50"]}" "${MED["grpc tcp|seq_p50"]}")
	r_tp_grpc=$(ratio "${MED["panthera tcp|par_rps"]}" "${MED["grpc tcp|par_rps"]}")
	echo
	echo "panthera tcp against the same run (targets of issue 5, not asserted):"
	printf '  %-28s %8s   target <= 1.15\n' "p50 / nng tcp p50" "$r_p50_nng"
	printf '  %-28s %8s   target >= 0.90\n' "req/s / nng tcp req/s" "$r_tp_nng"
	printf '  %-28s %8s   target <= 1.00\n' "p50 / grpc tcp p50" "$r_p50_grpc"
	printf '  %-28s %8s   target >= 2.00\n' "req/s / grpc tcp req/s" "$r_tp_grpc"
fi
echo
echo "total: ${SECONDS} s"
echo "p50_ratio_vs_nng=$r_p50_nng"
echo "throughput_ratio_vs_nng=$r_tp_nng"
echo "p50_ratio_vs_grpc=$r_p50_grpc"
echo "throughput_ratio_vs_grpc=$r_tp_grpc"
if ((FAILED)); then
	echo "bench/rpc: some measurements failed (see FAILED above)" >&2
	exit 1
fi
