#!/usr/bin/env python3
# confirm_stack.py -- runs dre-bench-confirm against a fresh embedded stack
# (broker, catalog, budget, reporting, evaluator, gateway on free ports in a
# temporary data dir, started by tests/integration/harness.py) and prints the
# CPU time each process used: over the whole run, and per confirm over the
# throughput phase (first confirm to consumers caught up: every process's
# share of a confirm's whole pipeline), with the load average around it.
#
#   tools/bench/confirm_stack.py BIN_DIR [dre-bench-confirm options...]
#   e.g. tools/bench/confirm_stack.py build/bin --count 20000 --rate 1000
#
# Extra process options: DRE_BENCH_EVALUATOR="-o rpc.workers=64 ..." (and
# DRE_BENCH_BUDGET, DRE_BENCH_REPORTING, DRE_BENCH_GATEWAY); DRE_IT_SHARDS=2 runs
# two evaluator shards (DRE_BENCH_EVALUATOR applies to both).
# DRE_BENCH_SUBSCRIPTIONS=N creates N webhook subscriptions first (to
# COUPON_EXPIRED, which no sale raises: every event is matched against them,
# none is delivered).
# DRE_BENCH_PERF=evaluator:/tmp/ev.data records a `perf record -g` profile of
# that process over the throughput phase (perf report -i /tmp/ev.data).
import os
import shlex
import signal
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def switches(pid):
    """Context switches of the process's live threads (voluntary and not)."""
    n = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                for line in f:
                    if "ctxt_switches:" in line:
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def by_thread(pid):
    """Context switches per thread name (comm) of the process."""
    out = {}
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                name = f.read().strip()
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                n = sum(int(l.split()[1]) for l in f if "ctxt_switches:" in l)
        except OSError:
            continue
        out[name] = out.get(name, 0) + n
    return out


def sample(stack):
    return {n: cpu_seconds(p.pid) for n, p in stack.procs.items()}


def sample_switches(stack):
    return {n: switches(p.pid) for n, p in stack.procs.items()}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: confirm_stack.py BIN_DIR [dre-bench-confirm options]")
    bin_dir = os.path.abspath(sys.argv[1])
    os.environ["DRE_BIN_DIR"] = bin_dir
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness
    extra = {n: shlex.split(os.environ.get("DRE_BENCH_" + n.upper(), ""))
             for n in harness.SERVICES}
    perf_of, _, perf_out = os.environ.get("DRE_BENCH_PERF", "").partition(":")
    # DRE_BENCH_THREADS=evaluator: that process's context switches per
    # confirm by thread name, too.
    threads_of = os.environ.get("DRE_BENCH_THREADS", "")
    stack = harness.Stack(extra=extra)
    perf = None
    try:
        for i in range(int(os.environ.get("DRE_BENCH_SUBSCRIPTIONS", "0"))):
            r = stack.post("/api/v1/WebhookSubscriptions",
                           {"url": "https://hooks.example.com/bench/%d" % i,
                            "eventTypes": ["COUPON_EXPIRED"]})
            if r.status != 201:
                sys.exit("cannot subscribe: %r" % (r,))
        print("load average before: %s" % loadavg())
        before = sample(stack)
        marks = {}
        bench = subprocess.Popen(
            [os.path.join(bin_dir, "dre-bench-confirm"), "--marks",
             "--port", str(stack.http_port)] + sys.argv[2:],
            stdout=subprocess.PIPE, text=True)
        for line in bench.stdout:
            if not line.startswith("@mark "):
                sys.stdout.write(line)
                sys.stdout.flush()
                continue
            _, name, n = line.split()
            marks[name] = (sample(stack), int(n), sample_switches(stack))
            if threads_of in stack.procs and name in ("confirm-start", "caught-up"):
                marks[name + "-threads"] = by_thread(stack.procs[threads_of].pid)
            if name == "confirm-start" and perf_of in stack.procs:
                perf = subprocess.Popen(
                    ["perf", "record", "-q", "-g", "-F", "499", "-o",
                     perf_out or "perf.data", "-p",
                     str(stack.procs[perf_of].pid)],
                    stdout=subprocess.DEVNULL)
            if name == "caught-up" and perf is not None:
                perf.send_signal(signal.SIGINT)
                perf.wait()
                perf = None
            if name == "caught-up" and "confirm-start" in marks:
                (t0, count, c0), (t1, _, c1) = marks["confirm-start"], marks[name]
                per = {s: (t1[s] - t0[s]) * 1000.0 / max(count, 1)
                       for s in stack.services}
                print("  CPU ms per confirm (first confirm to consumers "
                      "caught up, load average %s): %s; all %.3f" % (
                          loadavg(),
                          ", ".join("%s %.3f" % (s, per[s])
                                    for s in stack.services),
                          sum(per.values())))
                sw = {s: (c1[s] - c0[s]) / max(count, 1) for s in stack.services}
                print("  context switches per confirm (same span): %s; all %.1f" % (
                    ", ".join("%s %.1f" % (s, sw[s]) for s in stack.services),
                    sum(sw.values())))
                if threads_of in stack.procs:
                    a, b = marks["confirm-start-threads"], marks["caught-up-threads"]
                    d = sorted(((b[t] - a.get(t, 0)) / max(count, 1), t) for t in b)
                    print("  %s context switches per confirm by thread: %s" % (
                        threads_of, ", ".join("%s %.2f" % (t, v)
                                              for v, t in reversed(d) if v >= 0.05)))
                sys.stdout.flush()
        rc = bench.wait()
        after = sample(stack)
        print("CPU seconds used during the run:",
              ", ".join("%s %.2f" % (n, after[n] - before[n]) for n in stack.services))
        print("load average after: %s" % loadavg())
    finally:
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        stack.stop()
        stack.cleanup()
    sys.exit(rc)


if __name__ == "__main__":
    main()
