#!/bin/bash
# usage: runbench.sh "<evaluator opts>" "<gateway opts>" "<bench args>"
B=/work/main/build/release/bin
D=/tmp/bv; pkill -f "$D" ; sleep 0.5; rm -rf $D; mkdir -p $D
taskset -c 0 $B/dre-broker -o data_dir=$D -o rpc.listen=tcp://127.0.0.1:17001 > $D/broker.log 2>&1 &
for i in $(seq 50); do [ -f $D/broker/bootstrap ] && break; sleep 0.1; done
BS=$(cat $D/broker/bootstrap)
taskset -c 0 $B/dre-catalog -o data_dir=$D -o rpc.listen=tcp://127.0.0.1:17101 -o kafka.bootstrap.servers=$BS > $D/catalog.log 2>&1 &
EVURL=${EVURL:-tcp://127.0.0.1:17201}
taskset -c 0 $B/dre-evaluator -o data_dir=$D -o rpc.listen=$EVURL -o catalog.url=tcp://127.0.0.1:17101 -o kafka.bootstrap.servers=$BS $1 > $D/evaluator.log 2>&1 &
taskset -c 0 $B/dre-gateway -o data_dir=$D -o http.port=18081 -o evaluator.urls=$EVURL -o catalog.url=tcp://127.0.0.1:17101 $2 > $D/gateway.log 2>&1 &
for i in $(seq 50); do curl -s -u admin:admin http://127.0.0.1:18081/pos/heartbeat | grep -q UP && break; sleep 0.2; done
taskset -c 1 $B/dre-bench-evaluate --port 18081 --setup 1000 --duration 1 -c 4 >/dev/null
taskset -c 1 $B/dre-bench-evaluate --port 18081 $3
pkill -f "$D"
