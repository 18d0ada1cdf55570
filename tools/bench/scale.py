#!/usr/bin/env python3
# scale.py -- the evaluator at scale: RSS with P promotions and A articles,
# and its start-up time (a restart: catalog snapshot to serving). Not a test.
#
#   tools/bench/scale.py BIN_DIR [--promotions 100000] [--articles 1000000]
#                        [--threads 4] [--batch 1000] [--keep] [--reuse DIR]
#                        [--opt SERVICE:KEY=VALUE]... [--perf DIR]
#                        [--first-only]
#
# --opt sets a service's config option (e.g. evaluator:snapshot.page_bytes=
# 16777216); --perf DIR records `perf record --call-graph dwarf` of the
# evaluator and the catalog during each start (DIR/first-evaluator.data,
# ...); --first-only measures the first start only. Each start prints the
# CPU seconds of the evaluator, of the catalog and of the dev broker, and
# the evaluator's threads' (a thread that ended before is in the total).
#
# Loading takes minutes (16 on a loaded machine): --keep leaves the data dir
# (its path printed) and --reuse DIR measures again on one kept by an earlier
# run of the same size (the stack restarted on it, nothing loaded; the dev
# broker is a new cluster, so the first start takes the catalog's snapshot as
# always and the restart follows the new cluster from its local copy).
#
# A fresh embedded stack (tests/integration/harness.py, one evaluator shard,
# data dir in /dev/shm); with the evaluator stopped (and the services that
# only follow master data for their own ends: reporting, coupon, loyalty,
# webhook), the articles go in
# through the catalog's bulk import (POST /pos/articles/import, --batch a
# request), the promotions through POST /api/v1/Promotions on --threads
# keep-alive connections, in the mix of dre-bench-evaluate --setup. Then the
# evaluator is started (a catalog snapshot) and restarted (its local copy),
# each timed from spawn until its index holds them all
# (dre_engine_index_promotions and _entities on /metrics) and it prices a
# basket, and its VmRSS / VmHWM read. Last line: "scale promotions P
# articles A startup_s S rss_mib R hwm_mib H restart_s S2 restart_rss_mib R2
# restart_hwm_mib H2 change_visible_s C", C the slowest of three new
# promotions from POST to the evaluator's index.
import argparse
import base64
import http.client
import json
import os
import re
import shutil
import signal
import sys
import tempfile
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


SETTLE_S = 20


def proc_cpu_s(pid):
    """CPU seconds (user + system) pid has used: on a loaded machine the
    figure wall-clock seconds are not."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def threads_cpu_s(pid):
    """{thread name: CPU seconds} of pid's threads (same names summed)."""
    out = {}
    tck = os.sysconf("SC_CLK_TCK")
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        f = st.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0) + (int(f[11]) + int(f[12])) / tck
    return out


def perf_start(out, pid):
    import subprocess
    return subprocess.Popen(["perf", "record", "-q", "--call-graph",
                             "dwarf,16384", "-F", "299", "-o", out,
                             "-p", str(pid)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def perf_stop(p):
    p.send_signal(signal.SIGINT)
    p.wait(60)


def load(args, c, t0):
    """Loads the articles and promotions; returns the POS group id."""
    st, body = call(c, "POST", "/api/v1/PosGroups",
                    json.dumps({"code": "SCALE", "name": "Scale store"}))
    assert st == 201, (st, body)
    gid = json.loads(body)["id"]
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
    return gid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir")
    ap.add_argument("--promotions", type=int, default=100000)
    ap.add_argument("--articles", type=int, default=1000000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--keep", action="store_true",
                    help="keep the data dir (for --reuse)")
    ap.add_argument("--reuse", metavar="DIR",
                    help="measure on the data dir of a --keep run: no load")
    ap.add_argument("--opt", action="append", default=[],
                    metavar="SERVICE:KEY=VALUE",
                    help="a config option of a service (repeatable), e.g. "
                    "evaluator:snapshot.page_bytes=2097152")
    ap.add_argument("--perf", metavar="DIR",
                    help="perf record -g the evaluator and the catalog "
                    "during each start into DIR/<start>-<service>.data")
    ap.add_argument("--first-only", action="store_true",
                    help="the first start only (no restart, no change)")
    args = ap.parse_args()
    os.environ["DRE_BIN_DIR"] = os.path.abspath(args.bin_dir)
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # runs finally
    # RAM-backed data dir when there is one: the loader is not the figure,
    # and the catalog syncs every imported article.
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    data_dir = args.reuse or tempfile.mkdtemp(prefix="dre-scale-", dir=base)
    followers = ("webhook", "loyalty", "coupon", "reporting")
    # (Long calls for the load's imports; a reused stack loads nothing,
    # and its /metrics would wait that long for the services not started.)
    opts = {"gateway": ["catalog.propagation_wait_ms=0"] +
            ([] if args.reuse else ["rpc.timeout_ms=120000"])}
    for o in args.opt:
        svc, kv = o.split(":", 1)
        opts.setdefault(svc, []).append(kv)
    if args.reuse:
        # No local copy (a first start) and no logs of earlier runs.
        for d in ("evaluator-0", "log"):
            shutil.rmtree(os.path.join(data_dir, d), ignore_errors=True)
        stack = harness.Stack(data_dir=data_dir, opts=opts, start=False)
        # Everything but the evaluator and the followers: the heartbeat is
        # not UP without them, so it is not waited for.
        stack.wait_healthy = lambda *a, **k: None
        for name in stack.services:
            if name not in followers + ("evaluator",):
                stack.start_service(name)
        # The dev broker is a new cluster: the catalog publishes its
        # events again (the outbox's rule); the evaluator starts once that
        # is done, as it would after a load.
        def republished():
            log = stack.log_text("catalog", 10 ** 6)
            if "queued again" not in log:
                return False
            st, body = call(conn(stack.http_port), "GET", "/metrics")
            m = re.search(r'^dre_outbox_pending_events\{[^}]*service="catalog"'
                          r'[^}]*\} (\S+)', body.decode(), re.M)
            return m is not None and float(m.group(1)) == 0
        t = time.monotonic()
        harness.wait_until(republished, 900, interval=1,
                           what="the catalog's events published again")
        print("catalog events published again to the new broker in %.1f s"
              % (time.monotonic() - t), flush=True)
    else:
        stack = harness.Stack(data_dir=data_dir, opts=opts)
    PORT[0] = stack.http_port
    try:
        if args.reuse:
            st, body = call(conn(PORT[0]), "GET", "/api/v1/PosGroups")
            assert st == 200, (st, body)
            doc = json.loads(body)
            rows = doc.get("value", doc) if isinstance(doc, dict) else doc
            gid = [g["id"] for g in rows if g.get("code") == "SCALE"][0]
        else:
            # The data goes into the catalog while the evaluator is
            # stopped: its start then loads everything from one snapshot.
            stack.stop_service("evaluator")
            # The services that only follow master data for their own
            # ends would spend the machine on a million article events
            # meanwhile.
            for name in followers:
                stack.stop_service(name)
            t0 = time.monotonic()
            c = conn(PORT[0])
            gid = load(args, c, t0)
        def create(c, i):
            st, body = call(c, "POST", "/api/v1/Promotions",
                            promotion(i, args.articles))
            if st != 201:
                raise AssertionError("promotion %d: %d %s" % (i, st, body[:300]))
        # The first start is from the catalog's snapshot: no local copy.
        shutil.rmtree(os.path.join(data_dir, "evaluator-0"), ignore_errors=True)
        req = {"request": harness.basket(
            gid, [harness.item("L1", "A0000007", 1, "10.00")])}

        def start_timed(what):
            """Starts the evaluator; seconds until its index holds every
            promotion and article and it prices a basket; its VmRSS/VmHWM."""
            t1 = time.monotonic()
            cat_pid = stack.procs["catalog"].pid
            cat0 = proc_cpu_s(cat_pid)
            brk_pid = stack.procs["broker"].pid if "broker" in stack.procs \
                else None
            brk0 = proc_cpu_s(brk_pid) if brk_pid else 0
            stack._spawn("evaluator")
            perfs = []
            if args.perf:
                tag = what.split()[0]
                os.makedirs(args.perf, exist_ok=True)
                # (once its threads are there: perf -p follows those)
                time.sleep(1)
                perfs = [perf_start(os.path.join(args.perf, "%s-%s.data"
                                                 % (tag, n)), p)
                         for n, p in (("evaluator", stack.procs["evaluator"].pid),
                                      ("catalog", cat_pid))]

            def serving():
                stack._alive_or_fail("evaluator")
                g = gauges(conn(PORT[0]))
                if not (g.get("dre_engine_index_promotions", 0) >= args.promotions
                        and g.get("dre_engine_index_entities", 0) >= args.articles):
                    return False
                st, body = call(conn(PORT[0]), "POST", "/pos/v2/simulate",
                                harness.dumps(req))
                if st == 400:
                    raise AssertionError("simulate: %s" % body)
                return st == 200
            harness.wait_until(serving, 900, interval=0.05,
                               what="the evaluator serving")
            secs = time.monotonic() - t1
            pid = stack.procs["evaluator"].pid
            cpu = proc_cpu_s(pid)
            cat_cpu = proc_cpu_s(cat_pid) - cat0
            brk_cpu = proc_cpu_s(brk_pid) - brk0 if brk_pid else 0
            thr = sorted(threads_cpu_s(pid).items(), key=lambda x: -x[1])
            for p in perfs:
                perf_stop(p)
            rss, hwm = proc_kib(pid, "VmRSS") >> 10, proc_kib(pid, "VmHWM") >> 10
            # RocksDB flushes the snapshot's write (its memtable) a little
            # later: the RSS once that has settled.
            time.sleep(SETTLE_S)
            settled = proc_kib(pid, "VmRSS") >> 10
            print("evaluator %s: serving after %.2f s (%.2f s of CPU, the "
                  "catalog %.2f s and the broker %.2f s meanwhile; load "
                  "average %.1f), VmRSS %d MiB (%d MiB %d s later), VmHWM %d MiB"
                  % (what, secs, cpu, cat_cpu, brk_cpu, os.getloadavg()[0], rss,
                     settled, SETTLE_S, hwm), flush=True)
            print("  evaluator threads (CPU s): %s" % ", ".join(
                "%s %.2f" % t for t in thr[:8] if t[1] >= 0.01), flush=True)
            return secs, rss, hwm
        s1, rss1, hwm1 = start_timed("first start (catalog snapshot)")
        if args.first_only:
            print("scale promotions %d articles %d startup_s %.2f rss_mib %d "
                  "hwm_mib %d" % (args.promotions, args.articles, s1, rss1,
                                  hwm1))
            return
        stack.stop_service("evaluator", timeout=120)
        s2, rss2, hwm2 = start_timed("restart (its local copy)")
        # One master-data change at this size: a new promotion, from the
        # POST until the evaluator's index counts it (a reused data dir
        # has those of its earlier runs: new numbers).
        vis = []
        base_n = args.promotions + (int(time.time()) % 100000) * 10 \
            if args.reuse else args.promotions
        for k in range(3):
            n0 = gauges(conn(PORT[0])).get("dre_engine_index_promotions", 0)
            t1 = time.monotonic()
            create(conn(PORT[0]), base_n + k)
            harness.wait_until(
                lambda: gauges(conn(PORT[0])).get("dre_engine_index_promotions", 0) > n0,
                300, interval=0.01, what="the new promotion in the index")
            vis.append(time.monotonic() - t1)
        print("one promotion created -> in the evaluator's index: %s s"
              % " ".join("%.2f" % v for v in vis), flush=True)
        print("scale promotions %d articles %d startup_s %.2f rss_mib %d hwm_mib %d "
              "restart_s %.2f restart_rss_mib %d restart_hwm_mib %d change_visible_s %.2f"
              % (args.promotions, args.articles, s1, rss1, hwm1, s2, rss2, hwm2,
                 max(vis)))
    finally:
        try:
            for name in followers:
                if not stack.alive(name):
                    stack.procs.pop(name, None)
            stack.stop()
        finally:
            stack.kill_all()
            if args.keep or args.reuse:
                print("data dir kept: %s (--reuse it)" % data_dir, flush=True)
            else:
                shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
