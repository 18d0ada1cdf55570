#!/usr/bin/env bash
# tools/bench/evaluate.sh -- reproduces the README's evaluate figures: broker,
# catalog, evaluator and gateway pinned to core 0, 1,000 promotions, the load
# generator on core 1. Not a test.
#   tools/bench/evaluate.sh [dre-bench-evaluate args]   (default: -d 10 -c 32)
# Build first: tools/dre build. Extra service options: EV_OPTS, GW_OPTS.
# SHARDS=N starts N evaluator shards behind the gateway (1); PIN=0 leaves the
# processes to the scheduler (both cores) instead of pinning the stack to
# core 0 and the load generator to core 1.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${BIN_DIR:-$ROOT/build/release/bin}
D=$(mktemp -d /tmp/dre-bench.XXXXXX)
PORT=${PORT:-18081}
SHARDS=${SHARDS:-1}
EVURLS=""
for ((k = 0; k < SHARDS; k++)); do EVURLS+=${EVURLS:+,}tcp://127.0.0.1:$((17201 + k)); done
if [ "${PIN:-1}" = 0 ]; then CORE0=(); CORE1=(); else CORE0=(taskset -c 0); CORE1=(taskset -c 1); fi
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
# Every process of the stack finds the internal key in its data_dir.
(umask 077; openssl rand -hex 32 >"$D/internal.key")
start() { "${CORE0[@]}" "$@" >>"$D/log" 2>&1 & PIDS+=($!); }

start "$B/dre-broker" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:17001
for _ in $(seq 100); do [ -f "$D/broker/bootstrap" ] && break; sleep 0.1; done
BS=$(cat "$D/broker/bootstrap")
start "$B/dre-catalog" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:17101 -o kafka.bootstrap.servers="$BS"
for ((k = 0; k < SHARDS; k++)); do
	start "$B/dre-evaluator" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:$((17201 + k)) -o shard=$k \
		-o catalog.url=tcp://127.0.0.1:17101 -o kafka.bootstrap.servers="$BS" ${EV_OPTS:-}
done
start "$B/dre-gateway" -o data_dir="$D" -o http.port="$PORT" -o evaluator.urls="$EVURLS" \
	-o catalog.url=tcp://127.0.0.1:17101 ${GW_OPTS:-}
# DEGRADED: the services this bench does not start (budget, coupon, ...) are UNREACHABLE.
for _ in $(seq 100); do curl -s -u admin:admin "http://127.0.0.1:$PORT/pos/heartbeat" | grep -Eq '"status":"(UP|DEGRADED)"' && break; sleep 0.1; done
"${CORE1[@]}" "$B/dre-bench-evaluate" --port "$PORT" --setup "${PROMOTIONS:-1000}" --duration 1 -c 4 >/dev/null
[ $# -gt 0 ] || set -- -d 10 -c 32
"${CORE1[@]}" "$B/dre-bench-evaluate" --port "$PORT" "$@"
