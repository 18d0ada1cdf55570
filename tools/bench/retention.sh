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
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" dre-bench-retention
PORT=${PORT:-18091}
DUR=${SECONDS_:-600}
RATE=${RATE:-150}
SAMPLE=${SAMPLE:-30}
TTL=${TTL_MS:-60000}

bench_broker tcp://127.0.0.1:17901
bench_start "$B/dre-catalog" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:17911 -o kafka.bootstrap.servers="$BS"
bench_start "$B/dre-evaluator" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:17921 \
	-o catalog.url=tcp://127.0.0.1:17911 -o kafka.bootstrap.servers="$BS" \
	-o retention.iterations_ms="$TTL" -o retention.confirmed_ms="$TTL" \
	-o retention.compact_every_ms="${COMPACT_MS:-10000}"
bench_start "$B/dre-gateway" -o data_dir="$D" -o http.port="$PORT" -o evaluator.urls=tcp://127.0.0.1:17921 \
	-o catalog.url=tcp://127.0.0.1:17911
bench_wait_gateway "http://127.0.0.1:$PORT"
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
