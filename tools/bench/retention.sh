#!/usr/bin/env bash
# tools/bench/retention.sh -- the evaluator's disk use under a steady evaluate
# load, with and without retention (docs/operating.md "Data retention"):
# broker, catalog, evaluator and gateway, 100 promotions, then
# dre-bench-evaluate at RATE evaluates/s (new transactions) for SECONDS,
# printing the size of <data_dir>/evaluator-0 every SAMPLE seconds. Not a test.
#   tools/bench/retention.sh                      # retention on (TTL 60 s)
#   TTL_MS=0 tools/bench/retention.sh             # iterations kept for ever
# Environment: SECONDS_ (600), RATE (150), SAMPLE (30), TTL_MS (60000),
# COMPACT_MS (10000), BIN_DIR (build/release/bin).
set -euo pipefail
# dre-broker holds an empty fetch for the whole wait (tools/stack does the same).
export DRE_EVENTS_FETCH_WAIT_MS=5
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${BIN_DIR:-$ROOT/build/release/bin}
D=$(mktemp -d /tmp/dre-bench-retention.XXXXXX)
PORT=${PORT:-18091}
DUR=${SECONDS_:-600}
RATE=${RATE:-150}
SAMPLE=${SAMPLE:-30}
TTL=${TTL_MS:-60000}
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
start() { "$@" >>"$D/log" 2>&1 & PIDS+=($!); }
# Every process finds the deployment's internal key at <data_dir>/internal.key.
(umask 077; openssl rand -hex 32 >"$D/internal.key")

start "$B/dre-broker" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:17901
for _ in $(seq 600); do [ -f "$D/broker/bootstrap" ] && break; sleep 0.1; done
BS=$(cat "$D/broker/bootstrap")
start "$B/dre-catalog" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:17911 -o kafka.bootstrap.servers="$BS"
start "$B/dre-evaluator" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:17921 \
	-o catalog.url=tcp://127.0.0.1:17911 -o kafka.bootstrap.servers="$BS" \
	-o retention.iterations_ms="$TTL" -o retention.confirmed_ms="$TTL" \
	-o retention.compact_every_ms="${COMPACT_MS:-10000}"
start "$B/dre-gateway" -o data_dir="$D" -o http.port="$PORT" -o evaluator.urls=tcp://127.0.0.1:17921 \
	-o catalog.url=tcp://127.0.0.1:17911
for _ in $(seq 100); do curl -s -u admin:admin "http://127.0.0.1:$PORT/pos/heartbeat" | grep -q UP && break; sleep 0.1; done
"$B/dre-bench-evaluate" --port "$PORT" --setup 100 --duration 1 -c 4 >/dev/null
"$B/dre-bench-evaluate" --port "$PORT" --rate "$RATE" --duration "$DUR" -c 8 >"$D/bench.out" &
BENCH=$!
echo "retention TTL ${TTL} ms, ${RATE} evaluates/s for ${DUR} s"
printf '%6s %10s\n' seconds evaluator_kB
t=0
while kill -0 "$BENCH" 2>/dev/null; do
	printf '%6d %10d\n' "$t" "$(du -sk "$D/evaluator-0" | cut -f1)"
	sleep "$SAMPLE"
	t=$((t + SAMPLE))
done
wait "$BENCH" || true
printf '%6d %10d\n' "$t" "$(du -sk "$D/evaluator-0" | cut -f1)"
cat "$D/bench.out"
