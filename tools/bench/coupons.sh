#!/usr/bin/env bash
# tools/bench/coupons.sh -- reproduces the README's coupon figures: broker,
# catalog, coupon and gateway pinned to core 0, the load generator on core 1;
# 20,000 batch-generated codes, then validate (random codes) and reserve
# (each code once, a synced ACTIVE -> RESERVED write) for 10 s each. Not a
# test.
#   tools/bench/coupons.sh [dre-bench-coupons args]   (default: -d 10 -c 16)
# Build first: tools/dre build. Extra service options: CP_OPTS, GW_OPTS.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" dre-bench
PORT=${PORT:-18082}
BENCH_PIN=(taskset -c 0)

bench_broker tcp://127.0.0.1:17002
bench_start "$B/dre-catalog" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:17102 -o kafka.bootstrap.servers="$BS"
bench_start "$B/dre-coupon" -o data_dir="$D" -o rpc.listen=tcp://127.0.0.1:17302 -o catalog.url=tcp://127.0.0.1:17102 \
	-o kafka.bootstrap.servers="$BS" ${CP_OPTS:-}
bench_start "$B/dre-gateway" -o data_dir="$D" -o http.port="$PORT" -o evaluator.urls=tcp://127.0.0.1:17202 \
	-o catalog.url=tcp://127.0.0.1:17102 -o coupon.url=tcp://127.0.0.1:17302 ${GW_OPTS:-}
for _ in $(seq 100); do
	curl -s -o /dev/null -w '%{http_code}' -u admin:admin "http://127.0.0.1:$PORT/api/v1/CouponTypes" | grep -q 200 && break
	sleep 0.1
done
[ $# -gt 0 ] || set -- -d 10 -c 16
taskset -c 1 "$B/dre-bench-coupons" --port "$PORT" "$@"
