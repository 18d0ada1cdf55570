#!/usr/bin/env bash
# tools/bench/cpuidle.sh -- prints how this machine's idle CPUs wait for work,
# which decides what a wake-up costs: on a virtual machine a halted vCPU
# returns to the hypervisor, and waking it again costs tens of microseconds
# per thread hand-off. Latency figures are comparable only between runs with
# the same line (docs/performance.md, "Idle CPUs that halt"). Not a test.
#   tools/bench/cpuidle.sh   ->  "cpuidle: haltpoll, guest_halt_poll_ns 0"
d=/sys/devices/system/cpu/cpuidle
drv=$(cat "$d/current_driver" 2>/dev/null || echo none)
p=/sys/module/haltpoll/parameters/guest_halt_poll_ns
if [ -r "$p" ]; then
	echo "cpuidle: $drv, guest_halt_poll_ns $(cat "$p")"
else
	echo "cpuidle: $drv"
fi
