#!/usr/bin/env bash
# tools/bench/evaluate.sh -- reproduces the README's evaluate figures: broker,
# catalog, evaluator and gateway pinned to core 0, 1,000 promotions, the load
# generator on core 1. Not a test.
#   tools/bench/evaluate.sh [dre-bench-evaluate args]   (default: -d 10 -c 32)
#   tools/bench/evaluate.sh --compare 3 -d 5 -c 32   (cart validation next to
#   evaluate: the same baskets, alternating rounds, and their ratio)
# Build first: tools/dre build. Extra service options: EV_OPTS, GW_OPTS.
# SHARDS=N starts N evaluator shards behind the gateway (1); PIN=0 leaves the
# processes to the scheduler (both cores) instead of pinning the stack to
# core 0 and the load generator to core 1. RPC=ipc connects gateway and
# evaluators over ipc:// sockets in the data dir instead of tcp://127.0.0.1.
# FULL=1 also starts budget, coupon, loyalty, webhook and reporting on their
# default ports (a deployment's process set: without them the gateway and
# the evaluator redial them all the time, and nng 1.5.2's timer thread spins
# up to 1 ms at each redial; with them their idle Kafka consumers share the
# core instead; docs/performance.md, session 11).
# Last line: "cpu_us_per_request gateway G evaluator E" -- CPU time (user +
# system, all threads) the gateway and the evaluators used during the run
# over the requests answered: unlike req/s, hardly moved by other load.
# SEQ=LINES measures one client's sequential latency instead: wrk -t1 -c1
# --latency for 10 s (SEQ_DUR) POSTing the floor's basket of LINES lines
# (../shared/bench/floor gen_basket.py, coupons removed) to /pos/v2/evaluate;
# the wrk line "RESULT rps=... p50_us=..." is the figure.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" dre-bench
PORT=${PORT:-18081}
SHARDS=${SHARDS:-1}
EVURLS=""
evurl() { if [ "${RPC:-tcp}" = ipc ]; then echo "ipc://$D/evaluator-$1.sock"; else echo "tcp://127.0.0.1:$((17201 + $1))"; fi; }
if [ "${PIN:-1}" = 0 ]; then CORE0=(); CORE1=(); else CORE0=(taskset -c 0); CORE1=(taskset -c 1); fi
BENCH_PIN=("${CORE0[@]}")
EVPIDS=()
for ((k = 0; k < SHARDS; k++)); do EVURLS+=${EVURLS:+,}$(evurl $k); done

bench_broker tcp://127.0.0.1:17001
bench_start "$B/dre-catalog" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:17101 -o kafka.bootstrap.servers="$BS"
if [ -n "${FULL:-}" ]; then
	for svc in budget coupon loyalty webhook reporting; do
		CAT=(-o catalog.url=tcp://127.0.0.1:17101)
		[ $svc = budget ] && CAT=()
		bench_start "$B/dre-$svc" -o data_dir="$D" -o kafka.bootstrap.servers="$BS" "${CAT[@]}"
	done
fi
for ((k = 0; k < SHARDS; k++)); do
	bench_start "$B/dre-evaluator" -o data_dir="$D" -o rpc.listen="$(evurl $k)" -o shard=$k \
		-o catalog.url=tcp://127.0.0.1:17101 -o kafka.bootstrap.servers="$BS" ${EV_OPTS:-}
	EVPIDS+=("${PIDS[-1]}")
done
bench_start "$B/dre-gateway" -o data_dir="$D" -o http.port="$PORT" -o evaluator.urls="$EVURLS" \
	-o catalog.url=tcp://127.0.0.1:17101 -o rpc.timeout_ms=60000 ${GW_OPTS:-}
GWPID=${PIDS[-1]}
bench_wait_gateway "http://127.0.0.1:$PORT"
"${CORE1[@]}" "$B/dre-bench-evaluate" --port "$PORT" --setup "${PROMOTIONS:-1000}" --duration 1 -c 4 >/dev/null
[ $# -gt 0 ] || set -- -d 10 -c 32
if [ -n "${SEQ:-}" ]; then
	FLOOR=${FLOOR:-$ROOT/../shared/bench/floor}
	python3 "$FLOOR/gen_basket.py" -n "$SEQ" -o "$D/basket.json" >/dev/null
	python3 - "$D/basket.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1])); b["request"].pop("coupons", None); json.dump(b, open(sys.argv[1], "w"))
PY
	set -- -t1 -c1 -d"${SEQ_DUR:-10}s" --latency -s "$FLOOR/post.lua" "http://127.0.0.1:$PORT" -- "$D/basket.json"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $("$ROOT/tools/bench/cpuidle.sh")"
fi
# cpu PID...: clock ticks (user + system) the processes used so far.
cpu() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
g0=$(cpu "$GWPID")
e0=$(cpu "${EVPIDS[@]}")
if [ -n "${SEQ:-}" ]; then
	"${CORE1[@]}" wrk "$@" | tee "$D/run.out"
	sed -n 's/^RESULT rps=[0-9]* .* reqs=\([0-9]*\) .*/requests \1 x/p' "$D/run.out" >>"$D/run.out"
else
	"${CORE1[@]}" "$B/dre-bench-evaluate" --port "$PORT" "$@" | tee "$D/run.out"
fi
g1=$(cpu "$GWPID")
e1=$(cpu "${EVPIDS[@]}")
n=$(sed -n 's/^requests \([0-9]*\) .*/\1/p' "$D/run.out")
python3 -c "import os; t=1e6/os.sysconf('SC_CLK_TCK')/max($n,1); print('cpu_us_per_request gateway %.1f evaluator %.1f' % (($g1-$g0)*t, ($e1-$e0)*t))"
