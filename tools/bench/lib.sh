# tools/bench/lib.sh -- what the bench scripts that start their own processes
# share (sourced, not run). After `. lib.sh PREFIX`:
#   ROOT, B      the project and its binaries (BIN_DIR, else build/release/bin)
#   D            a fresh data dir (/tmp/PREFIX.XXXXXX) holding the deployment's
#                internal key, removed with every process at exit
#   bench_start CMD...      runs CMD in the background, output to $D/log,
#                           pinned by the array BENCH_PIN (e.g. taskset -c 0)
#   bench_broker RPC_URL    starts dre-broker; sets BS to its bootstrap servers
#   bench_wait_gateway URL [S]  waits (S s, 60) until the gateway at URL
#                           reports the catalog UP (services a script does not
#                           start are UNREACHABLE: the stack is DEGRADED)
# dre-broker holds an empty fetch for the whole wait (tools/stack does the
# same), so the consumers' fetch wait is short (DRE_EVENTS_FETCH_WAIT_MS, 5).
export DRE_EVENTS_FETCH_WAIT_MS=${DRE_EVENTS_FETCH_WAIT_MS:-5}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${BIN_DIR:-$ROOT/build/release/bin}
D=$(mktemp -d "/tmp/${1:-dre-bench}.XXXXXX")
PIDS=()
BENCH_PIN=()
bench_cleanup() {
	kill "${PIDS[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$D"
}
trap bench_cleanup EXIT
# Every process of the stack finds the internal key in its data_dir.
(umask 077; openssl rand -hex 32 >"$D/internal.key")

bench_start() {
	"${BENCH_PIN[@]}" "$@" >>"$D/log" 2>&1 &
	PIDS+=($!)
}

bench_broker() {
	bench_start "$B/dre-broker" -o data_dir="$D" -o rpc.listen="$1"
	for _ in $(seq 600); do [ -s "$D/broker/bootstrap" ] && break; sleep 0.1; done
	[ -s "$D/broker/bootstrap" ] || { echo "dre-broker did not start (log: $D/log)" >&2; cat "$D/log" >&2; exit 1; }
	BS=$(cat "$D/broker/bootstrap")
}

bench_wait_gateway() {
	for _ in $(seq $((${2:-60} * 10))); do
		curl -s -u admin:admin "$1/pos/heartbeat" | grep -E '"status":"(UP|DEGRADED)"' |
			grep -q '"catalog":"UP"' && return 0
		sleep 0.1
	done
	echo "the gateway at $1 did not come up (log: $D/log)" >&2
	tail -20 "$D/log" >&2
	exit 1
}
