#!/usr/bin/env bash
# tools/bench/evaluate.sh -- reproduces the README's evaluate figures: broker,
# catalog, evaluator and gateway pinned to core 0, 1,000 promotions, the load
# generator on core 1. Not a test.
#   tools/bench/evaluate.sh [dre-bench-evaluate args]   (default: -d 10 -c 32)
#   tools/bench/evaluate.sh --compare 3 -d 5 -c 32   (cart validation next to
#   evaluate: the same baskets, alternating rounds, and their ratio)
# Build first: tools/dre build. Extra service options: EV_OPTS, GW_OPTS.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${BIN_DIR:-$ROOT/build/release/bin}
D=$(mktemp -d /tmp/dre-bench.XXXXXX)
PORT=${PORT:-18081}
EVURL=${EVURL:-tcp://127.0.0.1:17201}
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
# Every process of the stack finds the internal key in its data_dir.
(umask 077; openssl rand -hex 32 >"$D/internal.key")
start() { taskset -c 0 "$@" >>"$D/log" 2>&1 & PIDS+=($!); }

start "$B/dre-broker" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:17001
for _ in $(seq 100); do [ -f "$D/broker/bootstrap" ] && break; sleep 0.1; done
BS=$(cat "$D/broker/bootstrap")
start "$B/dre-catalog" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:17101 -o kafka.bootstrap.servers="$BS"
start "$B/dre-evaluator" -o data_dir="$D" -o rpc.listen="$EVURL" -o catalog.url=tcp://127.0.0.1:17101 \
	-o kafka.bootstrap.servers="$BS" ${EV_OPTS:-}
start "$B/dre-gateway" -o data_dir="$D" -o http.port="$PORT" -o evaluator.urls="$EVURL" \
	-o catalog.url=tcp://127.0.0.1:17101 ${GW_OPTS:-}
# DEGRADED: the services this bench does not start (budget, coupon, ...) are UNREACHABLE.
for _ in $(seq 100); do curl -s -u admin:admin "http://127.0.0.1:$PORT/pos/heartbeat" | grep -Eq '"status":"(UP|DEGRADED)"' && break; sleep 0.1; done
taskset -c 1 "$B/dre-bench-evaluate" --port "$PORT" --setup "${PROMOTIONS:-1000}" --duration 1 -c 4 >/dev/null
[ $# -gt 0 ] || set -- -d 10 -c 32
taskset -c 1 "$B/dre-bench-evaluate" --port "$PORT" "$@"
