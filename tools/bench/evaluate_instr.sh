#!/usr/bin/env bash
# tools/bench/evaluate_instr.sh -- instructions per POST /pos/v2/evaluate in
# the gateway and in the evaluator, counted by callgrind: a figure that does
# not depend on how loaded the machine is (req/s does). Not a test.
#
# The stack of tools/bench/evaluate.sh (broker, catalog, evaluator, gateway)
# with the gateway and the evaluator under valgrind --tool=callgrind (the
# evaluator from after the setup); the
# setup of ../shared/bench/evaluate_vs_floor.sh (1,000 promotions from
# dre-bench-evaluate --setup plus one "10% on every group"); the floor's
# 20-line basket without its coupons, sent N times over one keep-alive
# connection after a warm-up. The counters are zeroed after the warm-up and
# dumped after the N requests, so start-up and setup are not counted.
#
#   tools/bench/evaluate_instr.sh            (N=200, PROMOTIONS=1000, LINES=20,
#                                             CONC=1 connection)
# Prints the request path's inclusive counts (gateway on_request, evaluator
# slot_cb: nng callback to reply) and then "instructions/request gateway G
# evaluator E total T" last: each
# process's count over the N requests less its count over as long a time
# without requests (background threads). The profiles stay in $OUT
# (default /tmp/dre-instr): tools/bench/cgtop.py $OUT/gateway.busy.out
# --per N shows the top functions. Build first:
# tools/dre build (BIN_DIR overrides build/release/bin).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" dre-instr
N=${N:-200}
LINES=${LINES:-20}
OUT=${OUT:-/tmp/dre-instr}
FLOOR=${FLOOR:-$ROOT/../shared/bench/floor}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
RB=$((PORT + 1000))
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }
mkdir -p "$OUT"
VG=(valgrind --tool=callgrind --trace-children=no --dump-line=no)

bench_broker tcp://127.0.0.1:$((RB + 1))
bench_start "$B/dre-catalog" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:$((RB + 101)) \
	-o kafka.bootstrap.servers="$BS"
# The evaluator runs without valgrind for the setup (1,000 promotions
# applied one by one), then is restarted under it on the same data.
EV_ARGS=(-o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:$((RB + 201))
	-o catalog.url=tcp://127.0.0.1:$((RB + 101)) -o kafka.bootstrap.servers="$BS" ${EV_OPTS:-})
bench_start "$B/dre-evaluator" "${EV_ARGS[@]}"
EV_PID=${PIDS[-1]}
bench_start "${VG[@]}" --callgrind-out-file="$D/gateway.cg" "$B/dre-gateway" -o data_dir="$D" \
	-o http.port="$PORT" -o evaluator.urls=tcp://127.0.0.1:$((RB + 201)) \
	-o catalog.url=tcp://127.0.0.1:$((RB + 101)) -o rpc.timeout_ms=60000 ${GW_OPTS:-}
GW_PID=${PIDS[-1]}
bench_wait_gateway "http://127.0.0.1:$PORT" 120
"$B/dre-bench-evaluate" --port "$PORT" --setup "${PROMOTIONS:-1000}" --duration 1 -c 1 >/dev/null
curl -s -o /dev/null -u admin:admin -H 'Content-Type: application/json' \
	"http://127.0.0.1:$PORT/api/v1/Promotions" -d '{
 "id":"f1000000-0000-4000-8000-000000000001","name":"10% on every group","type":"ARTICLE","status":"ACTIVE",
 "validFrom":"2020-01-01T00:00:00Z","validTo":"2099-12-31T23:59:59Z","posGroups":[],
 "conditions":[],"actions":[{"type":"ARTICLE_GROUP","discountType":"PERCENTAGE","value":10,"target":{"articleGroups":
 ["BEVERAGES","DAIRY","BAKERY","PRODUCE","MEAT","FROZEN","SNACKS","HOUSEHOLD","PERSONAL_CARE","ELECTRONICS"]}}]}'
# loaded N: until the evaluator prices with N promotions.
loaded() {
	local n
	for _ in $(seq 900); do
		n=$(curl -s -u admin:admin "http://127.0.0.1:$PORT/pos/heartbeat" |
			sed -n 's/.*"promotionsLoaded":\([0-9]*\).*/\1/p')
		[ "${n:-0}" -ge "$1" ] && return 0
		sleep 1
	done
	echo "the evaluator did not load $1 promotions" >&2
	exit 1
}
want=$((${PROMOTIONS:-1000} + 1))
loaded "$want"
kill "$EV_PID"
wait "$EV_PID" 2>/dev/null || true
bench_start "${VG[@]}" --callgrind-out-file="$D/evaluator.cg" "$B/dre-evaluator" "${EV_ARGS[@]}"
EV_PID=${PIDS[-1]}
loaded "$want"
python3 "$FLOOR/gen_basket.py" -n "$LINES" -o "$D/basket.json" >/dev/null
python3 - "$D/basket.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1])); b["request"].pop("coupons", None); json.dump(b, open(sys.argv[1], "w"))
PY

# post COUNT: COUNT evaluates over CONC keep-alive connections (1: one after
# the other; more: the gateway coalesces the calls that meet, see
# rpc.coalesce); each must be 200.
post() {
	python3 - "$PORT" "$D/basket.json" "$1" "${CONC:-1}" <<'PY'
import http.client, sys, threading
port, path, n, conc = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
body = open(path, "rb").read()
h = {"Content-Type": "application/json", "Authorization": "Basic cG9zLXJlYWRlcjpwb3M="}
out, bad = [], []
def run(k):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(k):
        c.request("POST", "/pos/v2/evaluate", body, h)
        r = c.getresponse(); data = r.read()
        if r.status != 200:
            bad.append("evaluate answered %d: %s" % (r.status, data[:300])); return
        out.append(len(data))
ts = [threading.Thread(target=run, args=(n // conc + (1 if i < n % conc else 0),)) for i in range(conc)]
for t in ts: t.start()
for t in ts: t.join()
if bad: sys.exit(bad[0])
print(len(body), out[-1])
PY
}
# dump NAME: writes each profile to $OUT/<process>.NAME.out
dump() {
	local p f
	callgrind_control -d "$EV_PID" >/dev/null
	callgrind_control -d "$GW_PID" >/dev/null
	for p in evaluator gateway; do
		f=$(ls -t "$D/$p.cg".* | head -1)
		mv "$f" "$OUT/$p.$1.out"
	done
}
zero() {
	callgrind_control -z "$EV_PID" >/dev/null
	callgrind_control -z "$GW_PID" >/dev/null
}
post 20 >/dev/null
zero
t0=$(date +%s.%N)
sizes=$(post "$N")
t1=$(date +%s.%N)
dump busy
# The same time without requests: what the background threads (Kafka
# client, sweepers) spend meanwhile, subtracted from the busy figures.
zero
sleep "$(python3 -c "print($t1 - $t0)")"
dump idle
ir() { sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$OUT/$1.out"; }
per() { echo $((($(ir "$1.busy") - $(ir "$1.idle")) / N)); }
g=$(per gateway)
e=$(per evaluator)
echo "request ${sizes% *} B, answer ${sizes#* } B, $N requests in $(python3 -c "print(round($t1 - $t0, 1))") s, profiles in $OUT"
echo "idle instructions over that time: gateway $(ir gateway.idle) evaluator $(ir evaluator.idle)"
# incl FILE FUNCTION: FUNCTION's inclusive count per request -- the request
# path alone, steadier than the busy-minus-idle figures (the evaluator's
# background threads make those noisy).
incl() {
	callgrind_annotate --inclusive=yes "$OUT/$1.busy.out" 2>/dev/null |
		awk -v f="$2" -v n="$N" '$0 ~ ":" f " " {gsub(",", "", $1); print int($1 / n); exit}'
}
echo "request path/request: gateway on_request $(incl gateway on_request)" \
	"(JSON parse $(incl gateway dre_json_parse_inplace), request to protobuf $(incl gateway dre_evalreq_parse)," \
	"pack and proof $(incl gateway gw_call_packed), answer passed on $(incl gateway render_evaluate))" \
	"evaluator slot_cb $(incl evaluator slot_cb) (engine $(incl evaluator eng_evaluate)," \
	"answer's JSON $(incl evaluator dre_evalresp_write))"
echo "instructions/request gateway $g evaluator $e total $((g + e))"
