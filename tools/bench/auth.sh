#!/usr/bin/env bash
# tools/bench/auth.sh -- evaluate req/s with each kind of credential: Basic
# (dev user), Bearer (a token of POST /oauth/token) and X-Api-Key, on the
# stack of evaluate.sh (broker, catalog, evaluator, gateway; 1,000
# promotions). Runs the three loads one after the other on one stack and
# prints each summary; compare them as ratios (the machine may be shared).
#   tools/bench/auth.sh [dre-bench-evaluate args]   (default: -d 10 -c 32)
# Build first: tools/dre build. BIN_DIR as in evaluate.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" dre-bench
PORT=${PORT:-18082}
BASE=${BASE_PORT:-17800}
BENCH_PIN=(taskset -c 0)

bench_broker tcp://127.0.0.1:$((BASE + 1))
CAT=tcp://127.0.0.1:$((BASE + 2))
EV=tcp://127.0.0.1:$((BASE + 3))
bench_start "$B/dre-catalog" -o data_dir="$D" -o rpc.listen="$CAT" -o kafka.bootstrap.servers="$BS"
bench_start "$B/dre-evaluator" -o data_dir="$D" -o rpc.listen="$EV" -o catalog.url="$CAT" \
	-o kafka.bootstrap.servers="$BS"
bench_start "$B/dre-gateway" -o data_dir="$D" -o http.port="$PORT" -o evaluator.urls="$EV" -o catalog.url="$CAT" \
	-o rpc.timeout_ms=30000
U=http://127.0.0.1:$PORT
bench_wait_gateway "$U"
taskset -c 1 "$B/dre-bench-evaluate" --port "$PORT" --setup "${PROMOTIONS:-1000}" --duration 1 -c 4 >/dev/null

json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
C=$(curl -s -u admin:admin -H 'Content-Type: application/json' "$U/api/v1/ApiClients" \
	-d '{"name":"bench","roles":["POSReader"]}')
TOKEN=$(curl -s -u "$(echo "$C" | json clientId):$(echo "$C" | json clientSecret)" \
	-d grant_type=client_credentials "$U/oauth/token" | json access_token)
KEY=$(curl -s -u admin:admin -H 'Content-Type: application/json' "$U/api/v1/ApiKeys" \
	-d '{"name":"bench","roles":["POSReader"]}' | json key)

echo "token ${#TOKEN} bytes, key ${#KEY} bytes"
curl -s -o /dev/null -w "bearer check: %{http_code}\n" -H "Authorization: Bearer $TOKEN" "$U/pos/heartbeat"
[ $# -gt 0 ] || set -- -d 10 -c 32
for h in "Authorization: Basic cG9zLXJlYWRlcjpwb3M=" "Authorization: Bearer $TOKEN" "X-Api-Key: $KEY"; do
	echo "== ${h%% *} ${h#* }" | cut -c1-60
	DRE_BENCH_AUTH_HEADER="$h" taskset -c 1 "$B/dre-bench-evaluate" --port "$PORT" "$@"
done
