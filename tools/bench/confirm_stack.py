#!/usr/bin/env python3
# confirm_stack.py -- runs dre-bench-confirm against a fresh embedded stack
# (broker, catalog, budget, reporting, evaluator, gateway on free ports in a
# temporary data dir, started by tests/integration/harness.py) and prints the
# CPU time each process used during the run.
#
#   tools/bench/confirm_stack.py BIN_DIR [dre-bench-confirm options...]
#   e.g. tools/bench/confirm_stack.py build/bin --count 20000 --rate 1000
#
# Extra process options: DRE_BENCH_EVALUATOR="-o rpc.workers=64 ..." (and
# DRE_BENCH_BUDGET, DRE_BENCH_REPORTING, DRE_BENCH_GATEWAY); DRE_IT_SHARDS=2 runs
# two evaluator shards (DRE_BENCH_EVALUATOR applies to both).
import os
import shlex
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: confirm_stack.py BIN_DIR [dre-bench-confirm options]")
    bin_dir = os.path.abspath(sys.argv[1])
    os.environ["DRE_BIN_DIR"] = bin_dir
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness
    extra = {n: shlex.split(os.environ.get("DRE_BENCH_" + n.upper(), ""))
             for n in harness.SERVICES}
    stack = harness.Stack(extra=extra)
    try:
        before = {n: cpu_seconds(p.pid) for n, p in stack.procs.items()}
        rc = subprocess.call([os.path.join(bin_dir, "dre-bench-confirm"),
                              "--port", str(stack.http_port)] + sys.argv[2:])
        after = {n: cpu_seconds(p.pid) for n, p in stack.procs.items()}
        print("CPU seconds used during the run:",
              ", ".join("%s %.2f" % (n, after[n] - before[n]) for n in stack.services))
    finally:
        stack.stop()
        stack.cleanup()
    sys.exit(rc)


if __name__ == "__main__":
    main()
