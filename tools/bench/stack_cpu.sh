#!/usr/bin/env bash
# tools/bench/stack_cpu.sh -- where the whole stack's CPU goes per evaluate:
# the stack and setup of ../shared/bench/evaluate_vs_floor.sh (tools/dre run
# pinned to core 0, DRE_DEMO=0, 1,000 promotions plus one "10% on every
# group", the floor's 20-line basket without coupons, wrk on core 1), then
# for each process and each thread of the stack the CPU time (user + system,
# from /proc) and the context switches during the wrk run, divided by the
# requests answered. Not a test. Build first: tools/dre build.
#
#   tools/bench/stack_cpu.sh            (CONNS=32 connections, DUR=10s)
#   CONNS=1 tools/bench/stack_cpu.sh    (one client, sequential)
#   IDLE=10 tools/bench/stack_cpu.sh    (no load: CPU per second of an idle
#                                        stack over 10 s, after 15 s of rest)
# Extra env: PROMOTIONS (1000), FLOOR (../shared/bench/floor).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FLOOR=${FLOOR:-$ROOT/../shared/bench/floor}
cd "$ROOT"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 2; }
port=$((20000 + RANDOM % 20000))
data=$(mktemp -d /tmp/dre-stack-cpu.XXXXXX)
DRE_HTTP_PORT=$port DRE_DATA_DIR=$data/var DRE_DEMO=0 setsid taskset -c 0 tools/dre run >"$data/stack.log" 2>&1 &
spid=$!
stop_stack() {
	local pg
	pg=$(ps -o pgid= -p "$spid" 2>/dev/null | tr -d ' ')
	[ -n "$pg" ] && kill -TERM -- "-$pg" 2>/dev/null
	wait "$spid" 2>/dev/null
}
trap 'stop_stack; rm -rf "$data"' EXIT
for _ in $(seq 300); do
	curl -fsS -m 2 -u admin:admin "http://127.0.0.1:$port/pos/heartbeat" 2>/dev/null | grep -q UP && break
	sleep 1
done
pg=$(ps -o pgid= -p "$spid" | tr -d ' ')
# snap FILE: every thread of the stack: process/thread name, CPU ticks,
# context switches.
snap() {
	python3 - "$pg" "$1" <<'PY'
import json, os, sys
pg, out = int(sys.argv[1]), {}
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        if os.getpgid(int(p)) != pg:
            continue
        comm = open("/proc/%s/comm" % p).read().strip()
        for t in os.listdir("/proc/%s/task" % p):
            st = open("/proc/%s/task/%s/stat" % (p, t)).read()
            f = st[st.rindex(")") + 2:].split()
            status = open("/proc/%s/task/%s/status" % (p, t)).read().splitlines()
            cs = sum(int(l.split()[1]) for l in status if l.endswith("ctxt_switches") or "ctxt_switches:" in l)
            out["%s/%s" % (p, t)] = (comm, st[st.index("(") + 1:st.rindex(")")], int(f[11]) + int(f[12]), cs)
    except (OSError, ValueError):
        pass
json.dump(out, open(sys.argv[2], "w"))
PY
}
# report A B N UNIT: the difference between two snaps per N.
report() {
	python3 - "$@" <<'PY'
import collections, json, os, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
n, unit = float(sys.argv[3]), sys.argv[4]
tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
cpu = "us" if unit == "req" else "ms"  # per request: us; per second: ms
if unit == "s":
    tick_us /= 1000.0
proc, thr, pcs, tcs = (collections.Counter() for _ in range(4))
for k, (comm, tn, ticks, cs) in b.items():
    _, _, t0, c0 = a.get(k, (comm, tn, 0, 0))
    proc[comm] += (ticks - t0) * tick_us; thr[(comm, tn)] += (ticks - t0) * tick_us
    pcs[comm] += cs - c0; tcs[(comm, tn)] += cs - c0
print("total %.1f %s of CPU per %s" % (sum(proc.values()) / n, cpu, unit))
for p, us in proc.most_common():
    if us > 0:
        print("  %-16s %8.1f %s/%s  %7.2f context switches/%s" % (p, us / n, cpu, unit, pcs[p] / n, unit))
print("threads (by name):")
for (p, t), us in thr.most_common(16):
    if us > 0:
        print("  %-16s %-16s %8.1f %s/%s  %7.2f cs/%s" % (p, t, us / n, cpu, unit, tcs[(p, t)] / n, unit))
PY
}
if [ -n "${IDLE:-}" ]; then
	sleep 15
	snap "$data/a.json"
	sleep "$IDLE"
	snap "$data/b.json"
	echo "idle stack, $IDLE s:"
	report "$data/a.json" "$data/b.json" "$IDLE" s
	exit 0
fi
python3 "$FLOOR/gen_basket.py" -n 20 -o "$data/basket.json" >/dev/null
python3 - "$data/basket.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1])); b["request"].pop("coupons", None); json.dump(b, open(sys.argv[1], "w"))
PY
taskset -c 1 build/release/bin/dre-bench-evaluate --port "$port" --setup "${PROMOTIONS:-1000}" --duration 1 -c 4 >/dev/null 2>&1
curl -s -o /dev/null -u admin:admin -H 'Content-Type: application/json' "http://127.0.0.1:$port/api/v1/Promotions" -d '{
 "id":"f1000000-0000-4000-8000-000000000001","name":"10% on every group","type":"ARTICLE","status":"ACTIVE",
 "validFrom":"2020-01-01T00:00:00Z","validTo":"2099-12-31T23:59:59Z","posGroups":[],
 "conditions":[],"actions":[{"type":"ARTICLE_GROUP","discountType":"PERCENTAGE","value":10,"target":{"articleGroups":
 ["BEVERAGES","DAIRY","BAKERY","PRODUCE","MEAT","FROZEN","SNACKS","HOUSEHOLD","PERSONAL_CARE","ELECTRONICS"]}}]}'
url=http://127.0.0.1:$port/pos/v2/evaluate
FLOOR_BODY=$data/basket.json taskset -c 1 wrk -t1 -c"${CONNS:-32}" -d2s -s "$FLOOR/post.lua" "$url" >/dev/null
snap "$data/a.json"
FLOOR_BODY=$data/basket.json taskset -c 1 wrk -t1 -c"${CONNS:-32}" -d"${DUR:-10s}" --latency -s "$FLOOR/post.lua" "$url" | grep '^RESULT' | tee "$data/wrk"
snap "$data/b.json"
n=$(sed -n 's/.*reqs=\([0-9]*\).*/\1/p' "$data/wrk")
[ -n "$n" ] && [ "$n" -gt 0 ] || { echo "no requests answered"; exit 1; }
report "$data/a.json" "$data/b.json" "$n" req
