#!/usr/bin/env python3
# confirm_stages.py -- where a confirm's side effects spend their time: runs
# dre-bench-confirm's fixed-rate phase on a fresh embedded stack (as
# confirm_stack.py does), then reads dre.transactions.confirmed and
# dre.sidefx.results with dre-events and splits confirm -> COMPLETED into
# stages, each from the TransactionConfirmed event's occurredAt (the confirm's
# write):
#   event produced   the evaluator's outbox relay handed it to Kafka
#                    (the message's Kafka timestamp)
#   <service> made   the service applied it (its result's occurredAt)
#   <service> sent   its outbox relay produced the result (Kafka timestamp)
#   completed        the job's completedAt - the confirm's due time
# and prints p50/p99/max of each, then the slowest confirms stage by stage.
# Not a test.
#
#   tools/bench/confirm_stages.py BIN_DIR [RATE [SECONDS]]   (300/s, 5 s)
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: confirm_stages.py BIN_DIR [RATE [SECONDS]]")
    bin_dir = os.path.abspath(sys.argv[1])
    rate = sys.argv[2] if len(sys.argv) > 2 else "300"
    secs = sys.argv[3] if len(sys.argv) > 3 else "5"
    os.environ["DRE_BIN_DIR"] = bin_dir
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness
    tl_file = tempfile.NamedTemporaryFile(prefix="dre-stages-", delete=False).name
    stack = harness.Stack()
    try:
        subprocess.run([os.path.join(bin_dir, "dre-bench-confirm"), "--port",
                        str(stack.http_port), "--count", "500", "--rate", rate,
                        "--duration", secs],
                       env=dict(os.environ, DRE_BENCH_TIMELINE=tl_file), check=True)
        results = stack.events("dre.sidefx.results")
        confirmed = stack.events("dre.transactions.confirmed")
    finally:
        stack.stop()
        stack.cleanup()
    done = {}
    with open(tl_file) as f:
        for line in f:
            tx, _due, _answer, _enqueued, completed = line.split()
            done[tx] = float(completed)
    os.unlink(tl_file)
    event = {r["value"]["transactionId"]: r for r in confirmed}
    stages = {}  # name -> [ms]
    per_tx = {}
    for r in results:
        v = r["value"]
        e = event.get(v["transactionId"])
        if e is None or v["transactionId"] not in done:
            continue
        t0 = e["value"]["occurredAt"]
        row = per_tx.setdefault(v["transactionId"], {"event produced": e["timestamp"] - t0})
        row[v["service"] + " made"] = v["occurredAt"] - t0
        row[v["service"] + " sent"] = r["timestamp"] - t0
        row["completed"] = done[v["transactionId"]]
    for row in per_tx.values():
        for k, ms in row.items():
            stages.setdefault(k, []).append(ms)
    print("%d confirms at %s/s; ms after the confirm's write (COMPLETED: after it was due)"
          % (len(per_tx), rate))
    for k in sorted(stages, key=lambda k: (k != "event produced", k == "completed", k)):
        v = stages[k]
        print("  %-18s p50 %6.1f  p99 %6.1f  max %6.1f" % (k, pct(v, .5), pct(v, .99), max(v)))
    print("slowest:")
    for tx, row in sorted(per_tx.items(), key=lambda x: -x[1]["completed"])[:5]:
        print("  %s: %s" % (tx, ", ".join("%s %.0f" % (k, ms) for k, ms in sorted(row.items()))))


if __name__ == "__main__":
    main()
