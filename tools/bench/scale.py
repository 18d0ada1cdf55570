#!/usr/bin/env python3
# scale.py -- the evaluator at scale: RSS with P promotions and A articles,
# and its start-up time (a restart: catalog snapshot to serving). Not a test.
#
#   tools/bench/scale.py BIN_DIR [--promotions 100000] [--articles 1000000]
#                        [--threads 4] [--batch 4000]
#
# A fresh embedded stack (tests/integration/harness.py, one evaluator shard);
# the articles go in through the catalog's bulk import (POST
# /pos/articles/import, --batch a request), the promotions through POST
# /api/v1/Promotions on --threads keep-alive connections (the gateway does
# not hold each answer for the evaluator: catalog.propagation_wait_ms=0) in
# the mix of dre-bench-evaluate --setup. Then it waits until the evaluator's
# index holds them all (dre_engine_index_promotions and _entities on
# /metrics), reads its VmRSS / VmHWM, stops it (SIGTERM) and starts it again,
# timing spawn -> index complete and answering evaluate. Prints one line
# "scale promotions P articles A rss_mib R hwm_mib H restart_rss_mib R2
# startup_s S load_s L" last.
import argparse
import base64
import http.client
import json
import os
import re
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
AUTH = "Basic " + base64.b64encode(b"admin:admin").decode()
NGROUPS = 200


def conn(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=600)


def call(c, method, path, body=None):
    h = {"Authorization": AUTH}
    if body is not None:
        h["Content-Type"] = "application/json"
    c.request(method, path, body, h)
    r = c.getresponse()
    return r.status, r.read()


def promotion(i, narticles):
    a = lambda k: "A%07d" % ((i * k) % narticles)  # noqa: E731
    if i % 10 == 0:
        g = "G%03d" % ((i // 10) % NGROUPS)
        cond = {"type": "ARTICLE_GROUP", "values": [g]}
        act = {"type": "ARTICLE_GROUP", "discountType": "PERCENTAGE",
               "value": 1 + i % 30, "target": {"articleGroups": [g]}}
    elif i % 2 == 0:
        cond = {"type": "ARTICLE", "values": [a(7), a(13)]}
        act = {"type": "ARTICLE", "discountType": "ABSOLUTE",
               "value": float("0.%02d" % (10 + i % 80))}
    else:
        cond = {"type": "ARTICLE_LIST", "values": [a(3), a(11), a(17)]}
        act = {"type": "ARTICLE_LIST", "discountType": "UNIT_PRICE",
               "value": float("%d.99" % (1 + i % 9)), "maxQuantity": 2}
    return json.dumps({"name": "Scale %d" % i, "type": "ARTICLE",
                       "status": "ACTIVE", "priority": i % 200,
                       "conditions": [cond], "actions": [act]})


def parallel(threads, n, work):
    """Runs work(conn, i) for i in 0..n-1 on threads connections."""
    nxt = [0]
    lock = threading.Lock()
    errors = []

    def run():
        c = None
        while not errors:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                return
            for attempt in range(3):
                try:
                    if c is None:
                        c = conn(PORT[0])
                    work(c, i)
                    break
                except (OSError, http.client.HTTPException) as e:
                    c = None
                    if attempt == 2:
                        errors.append("%d: %r" % (i, e))
                except AssertionError as e:
                    errors.append(str(e))
                    break
    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        sys.exit("load failed: " + errors[0])


PORT = [0]


def gauges(c):
    st, body = call(c, "GET", "/metrics")
    out = {}
    for name, v in re.findall(
            r'^(dre_engine_index_(?:promotions|entities))\{[^}]*service="evaluator"[^}]*\} (\S+)',
            body.decode(), re.M):
        out[name] = float(v)
    if not out:  # unlabelled form
        for name, v in re.findall(
                r'^(dre_engine_index_(?:promotions|entities))(?:\{[^}]*\})? (\S+)',
                body.decode(), re.M):
            out[name] = max(out.get(name, 0), float(v))
    return out


def proc_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir")
    ap.add_argument("--promotions", type=int, default=100000)
    ap.add_argument("--articles", type=int, default=1000000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4000)
    args = ap.parse_args()
    os.environ["DRE_BIN_DIR"] = os.path.abspath(args.bin_dir)
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness

    stack = harness.Stack(opts={"gateway": ["catalog.propagation_wait_ms=0"]})
    PORT[0] = stack.http_port
    try:
        t0 = time.monotonic()
        c = conn(PORT[0])
        st, body = call(c, "POST", "/api/v1/PosGroups",
                        json.dumps({"code": "SCALE", "name": "Scale store"}))
        assert st in (201, 409), (st, body)
        nb = (args.articles + args.batch - 1) // args.batch

        def import_batch(c, b):
            lo, hi = b * args.batch, min(args.articles, (b + 1) * args.batch)
            arts = [{"articleNumber": "A%07d" % i, "name": "Article %d" % i,
                     "articleGroupId": "G%03d" % (i % NGROUPS),
                     "manufacturerId": "M%02d" % (i % 20)} for i in range(lo, hi)]
            st, body = call(c, "POST", "/pos/articles/import",
                            json.dumps({"articles": arts}))
            if st != 200 or json.loads(body).get("failed"):
                raise AssertionError("import %d: %d %s" % (b, st, body[:300]))
        parallel(min(args.threads, 2), nb, import_batch)
        t_art = time.monotonic() - t0
        print("articles imported: %d in %.1f s" % (args.articles, t_art), flush=True)

        def create(c, i):
            st, body = call(c, "POST", "/api/v1/Promotions",
                            promotion(i, args.articles))
            if st != 201:
                raise AssertionError("promotion %d: %d %s" % (i, st, body[:300]))
        parallel(args.threads, args.promotions, create)
        t_load = time.monotonic() - t0
        print("promotions created: %d in %.1f s" % (args.promotions, t_load - t_art),
              flush=True)

        want_p = args.promotions
        want_e = args.articles

        def complete():
            g = gauges(conn(PORT[0]))
            return (g.get("dre_engine_index_promotions", 0) >= want_p
                    and g.get("dre_engine_index_entities", 0) >= want_e) and g
        harness.wait_until(complete, 1800, interval=0.5,
                           what="the evaluator's index complete")
        t_load = time.monotonic() - t0
        pid = stack.procs["evaluator"].pid
        rss, hwm = proc_kib(pid, "VmRSS"), proc_kib(pid, "VmHWM")
        print("evaluator loaded (feed): VmRSS %d MiB, VmHWM %d MiB, after %.1f s"
              % (rss >> 10, hwm >> 10, t_load), flush=True)

        stack.stop_service("evaluator", timeout=120)
        t1 = time.monotonic()
        stack._spawn("evaluator")
        req = {"request": {"header": {}, "posGroupId": "SCALE", "items": [
            {"lineReference": "L1", "articleNumber": "A0000007",
             "quantity": 1, "unitPrice": 10.0}]}}

        def serving():
            stack._alive_or_fail("evaluator")
            g = gauges(conn(PORT[0]))
            if not (g.get("dre_engine_index_promotions", 0) >= want_p
                    and g.get("dre_engine_index_entities", 0) >= want_e):
                return False
            st, _ = call(conn(PORT[0]), "POST", "/pos/v2/simulate", json.dumps(req))
            return st == 200
        harness.wait_until(serving, 600, interval=0.05,
                           what="the restarted evaluator serving")
        startup = time.monotonic() - t1
        pid = stack.procs["evaluator"].pid
        rss2, hwm2 = proc_kib(pid, "VmRSS"), proc_kib(pid, "VmHWM")
        print("evaluator restarted (snapshot): VmRSS %d MiB, VmHWM %d MiB, serving after %.2f s"
              % (rss2 >> 10, hwm2 >> 10, startup), flush=True)
        print("scale promotions %d articles %d rss_mib %d hwm_mib %d restart_rss_mib %d "
              "restart_hwm_mib %d startup_s %.2f load_s %.0f"
              % (args.promotions, args.articles, rss >> 10, hwm >> 10, rss2 >> 10,
                 hwm2 >> 10, startup, t_load))
    finally:
        stack.stop()
        stack.cleanup()


if __name__ == "__main__":
    main()
