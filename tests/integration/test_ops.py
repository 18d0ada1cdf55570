#!/usr/bin/env python3
# test_ops.py -- what an operator relies on (issue 14): /metrics for the
# whole stack in the Prometheus text format (checked by a strict parser of
# the format and by prometheus_client's), /healthz and /readyz without
# credentials, readiness that follows a killed and restarted service,
# <svc>.Health and <svc>.Metrics on every rpc socket, the heartbeat naming
# every service, request ids from X-Request-Id / traceparent into the
# gateway's access log (JSON lines), the evaluator's log and the
# TransactionConfirmed event, an unknown log level refused at start-up, and
# the drain on SIGTERM under load: no request begun before the gateway was
# seen unready fails.
import collections
import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import uniq  # noqa: E402

try:
    import prometheus_client.parser as prom_parser
except ImportError:  # Debian's python3-prometheus-client under another python3
    sys.path.append("/usr/lib/python3/dist-packages")
    import prometheus_client.parser as prom_parser

SERVICES = ("evaluator", "catalog", "budget", "reporting", "coupon", "loyalty",
            "webhook")
GRACE_MS = int(2000 * harness.SCALE)

# ---------------------------------------------------------------- a strict
# reader of the text exposition format 0.0.4: every sample belongs to the
# family whose HELP and TYPE precede it, each family appears once, names and
# labels are well formed, no series twice, histograms cumulative with +Inf
# equal to _count.
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
SAMPLE_RE = re.compile(r"^(%s)(\{(%s(,%s)*)?\})? (?P<value>\S+)$" % (NAME, LABEL, LABEL))


def parse_strict(text):
    """{family: {"type", "help", "samples": [(name, labels dict, value)]}}"""
    fams = collections.OrderedDict()
    cur = None
    seen = set()
    if not text.endswith("\n"):
        raise ValueError("the text does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            name = line[7:].split(" ", 1)[0]
            if not re.fullmatch(NAME, name) or name in fams:
                raise ValueError("line %d: bad or repeated family %r" % (n, name))
            cur = fams[name] = {"help": line[8 + len(name):], "type": None, "samples": []}
            continue
        if line.startswith("# TYPE "):
            name, typ = line[7:].split(" ")
            if cur is None or name != list(fams)[-1] or cur["type"] is not None:
                raise ValueError("line %d: TYPE without its HELP" % n)
            if typ not in ("counter", "gauge", "histogram"):
                raise ValueError("line %d: type %r" % (n, typ))
            cur["type"] = typ
            continue
        if line.startswith("#") or not line:
            raise ValueError("line %d: unexpected %r" % (n, line))
        m = SAMPLE_RE.match(line)
        if not m or cur is None or cur["type"] is None:
            raise ValueError("line %d: not a sample of a declared family: %r" % (n, line))
        name = m.group(1)
        fam = list(fams)[-1]
        ok = name == fam if cur["type"] != "histogram" else \
            name in (fam + "_bucket", fam + "_sum", fam + "_count")
        if not ok:
            raise ValueError("line %d: %s is not in family %s" % (n, name, fam))
        labels = {}
        for k, v in re.findall(LABEL, m.group(3) or ""):
            if k in labels:
                raise ValueError("line %d: label %s twice" % (n, k))
            labels[k] = v.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        value = float(m.group("value"))
        if math.isnan(value) or (cur["type"] == "counter" and value < 0):
            raise ValueError("line %d: value %r" % (n, value))
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ValueError("line %d: series twice: %r" % (n, line))
        seen.add(key)
        cur["samples"].append((name, labels, value))
    for fam, f in fams.items():
        if f["type"] != "histogram":
            continue
        series = collections.defaultdict(dict)
        for name, labels, value in f["samples"]:
            base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            if name.endswith("_bucket"):
                series[base].setdefault("b", []).append((labels["le"], value))
            else:
                series[base][name[len(fam):]] = value
        for base, s in series.items():
            b = s["b"]
            if b[-1][0] != "+Inf" or b[-1][1] != s["_count"] or "_sum" not in s:
                raise ValueError("%s%r: +Inf/_count/_sum" % (fam, base))
            bounds = [float(le) for le, _ in b]
            counts = [v for _, v in b]
            if bounds != sorted(bounds) or counts != sorted(counts):
                raise ValueError("%s%r: buckets not cumulative" % (fam, base))
    return fams


def value_of(fams, fam, name=None, **labels):
    """Sum of the samples of fam (sample name, default fam) with labels."""
    total, found = 0.0, False
    for n, l, v in fams.get(fam, {"samples": []})["samples"]:
        if n == (name or fam) and all(l.get(k) == v2 for k, v2 in labels.items()):
            total += v
            found = True
    return total if found else None


def thread_names(pid):
    """The names (comm) of a process's live threads."""
    out = set()
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                out.add(f.read().strip())
        except OSError:
            pass  # the thread ended
    return out


def thread_policies(pid):
    """The scheduling policies of a process's threads."""
    return {int(f[38]) for f in harness.thread_stats(pid)}


class Ops(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.shared_stack(opts={
            "gateway": ["log.format=json", "shutdown.grace_ms=%d" % GRACE_MS],
            # Every rpc call is a debug line carrying its request id.
            "evaluator": ["log_level=debug"],
        })

    def setUp(self):
        self.ten_percent_off(1, "10.00")

    def metrics(self):
        r = self.stack.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        return r.text

    # -- metrics -------------------------------------------------------------
    def test_metrics_of_the_whole_stack_parse(self):
        s = self.stack
        txn = uniq("TX")
        self.assertEval(s.evaluate(dict(self.req, header={"transactionId": txn})))
        self.assertOk(s.confirm(txn, 1, [{"promotionId": self.p["id"], "couponCode": None}]))
        s.wait_side_effects(txn, 1)
        self.assertError(s.evaluate({"header": 5}), 400, "VALIDATION_FAILED")

        def counted():
            f = parse_strict(self.metrics())
            ok = (value_of(f, "dre_sidefx_results_total", service="budget") or 0) >= 1
            return f if ok else None
        fams = harness.wait_until(counted, 10, what="budget's side-effect result counted")
        text = self.metrics()
        # The reference parser reads the same document.
        ref = {f.name: f for f in prom_parser.text_string_to_metric_families(text)}
        self.assertEqual(ref["dre_http_request_duration_seconds"].type, "histogram")
        self.assertEqual(ref["dre_http_requests"].type, "counter")  # _total stripped

        # Every service is in it, labelled.
        self.assertIsNotNone(value_of(fams, "dre_rpc_client_duration_seconds",
                                      "dre_rpc_client_duration_seconds_count", service="gateway"))
        for svc in SERVICES:
            self.assertIsNotNone(value_of(fams, "dre_rpc_server_calls_total", service=svc), svc)
            # Receiving contexts: 2 x rpc.workers (+ rpc.pending_max) at
            # least; the calls on workers (this scrape among them).
            self.assertGreaterEqual(value_of(fams, "dre_rpc_server_receiving_contexts",
                                             service=svc), 4, svc)
            self.assertIsNotNone(value_of(fams, "dre_rpc_server_held_calls", service=svc), svc)
            self.assertIsNotNone(value_of(fams, "dre_rpc_server_pending_calls", service=svc),
                                 svc)
        for svc in SERVICES:
            self.assertEqual(value_of(fams, "dre_service_up", service="gateway", target=svc),
                             1.0, svc)
        # Requests by route, method and code; errors by code; latency.
        ev = dict(service="gateway", route="/pos/v2/evaluate", method="POST")
        self.assertGreaterEqual(value_of(fams, "dre_http_requests_total", code="200", **ev), 1)
        self.assertGreaterEqual(value_of(fams, "dre_http_requests_total", code="400", **ev), 1)
        self.assertGreaterEqual(value_of(fams, "dre_http_errors_total", service="gateway",
                                         code="VALIDATION_FAILED"), 1)
        self.assertGreaterEqual(value_of(fams, "dre_http_request_duration_seconds",
                                         "dre_http_request_duration_seconds_count", **ev), 2)
        self.assertGreaterEqual(value_of(fams, "dre_rpc_server_calls_total", service="evaluator",
                                         method="evaluator.Evaluate"), 1)
        # Consumer lag per topic/partition, outbox depth, RocksDB, engine.
        lag = [l for n, l, v in fams["dre_consumer_lag_messages"]["samples"]
               if l["service"] == "budget" and l["topic"] == "dre.transactions.confirmed"]
        self.assertTrue(lag and all("partition" in l for l in lag), fams.get("dre_consumer_lag_messages"))
        for svc in ("evaluator", "budget", "coupon", "loyalty", "webhook", "reporting"):
            self.assertIsNotNone(value_of(fams, "dre_outbox_pending_events", service=svc), svc)
        for svc in SERVICES:
            self.assertGreater(value_of(fams, "dre_rocksdb_sst_files_bytes", service=svc) +
                               value_of(fams, "dre_rocksdb_memtable_bytes", service=svc), 0, svc)
            self.assertIsNotNone(value_of(fams, "dre_rocksdb_write_stopped", service=svc), svc)
        self.assertGreaterEqual(value_of(fams, "dre_engine_index_promotions", service="evaluator"), 1)
        self.assertGreater(value_of(fams, "dre_engine_index_bytes", service="evaluator"), 0)
        # Prometheus naming: counters end in _total, units in the names.
        for name, f in fams.items():
            if f["type"] == "counter":
                self.assertTrue(name.endswith("_total"), name)
            self.assertTrue(name.startswith("dre_"), name)

    def test_metrics_need_admin(self):
        s = self.stack
        self.assertError(s.get("/metrics", user=None), 401, "UNAUTHORIZED")
        self.assertError(s.get("/metrics", user="pos-reader"), 403, "FORBIDDEN")
        # Another tenant's Admin: the figures are every tenant's together.
        self.assertError(s.get("/metrics", user="tenant-b-admin"), 403, "FORBIDDEN")

    def test_every_service_answers_metrics_and_health_over_nng(self):
        s = self.stack
        for svc in SERVICES:
            st, body = s.rpc_call(svc, svc + ".Health")
            self.assertEqual(st, 200, (svc, body))
            h = json.loads(body)
            self.assertEqual(h["status"], "UP", (svc, h))
            st, body = s.rpc_call(svc, svc + ".Metrics")
            self.assertEqual(st, 200, svc)
            fams = parse_strict(body.decode())
            self.assertIsNotNone(value_of(fams, "dre_rpc_server_calls_total", service=svc,
                                          method=svc + ".Health"), svc)
        # The applier's Kafka check is among the budget's.
        st, body = s.rpc_call("budget", "budget.Health")
        self.assertTrue(any(k.startswith("kafka:") for k in json.loads(body)["checks"]))

    # -- health ----------------------------------------------------------------
    def test_healthz_and_readyz_need_no_credentials(self):
        s = self.stack
        r = s.get("/healthz", user=None)
        self.assertEqual((r.status, r.body), (200, {"status": "UP"}))
        r = s.get("/readyz", user=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, {"status": "UP", "draining": False,
                                  "services": {k: "UP" for k in SERVICES}})
        hb = self.assertOk(s.get("/pos/heartbeat"))
        self.assertEqual(hb["status"], "UP")
        self.assertEqual(hb["services"], {k: "UP" for k in SERVICES})

    def test_readiness_follows_a_killed_service(self):
        s = self.stack
        s.kill9("coupon")
        try:
            r = harness.wait_until(
                lambda: (lambda r: r if r.status == 503 else None)(s.get("/readyz", user=None)),
                10, what="/readyz 503 with coupon down")
            self.assertEqual(r.body["status"], "DOWN")
            self.assertEqual(r.body["services"]["coupon"], "UNREACHABLE")
            self.assertEqual(r.body["services"]["catalog"], "UP")
            self.assertEqual(r.headers.get("retry-after"), "1")
            hb = s.get("/pos/heartbeat").body
            self.assertEqual((hb["status"], hb["services"]["coupon"]), ("DEGRADED", "UNREACHABLE"))
            # Alive all the same.
            self.assertEqual(s.get("/healthz", user=None).status, 200)
        finally:
            s.start_service("coupon")
        r = harness.wait_until(
            lambda: (lambda r: r if r.status == 200 else None)(s.get("/readyz", user=None)),
            15, what="/readyz 200 after coupon restarted")
        self.assertEqual(r.body["services"]["coupon"], "UP")

    # -- logs and request ids ------------------------------------------------
    def gateway_lines(self):
        out = []
        for line in self.stack.log_text("gateway", limit=10 ** 7).splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def test_request_id_in_logs_and_the_event(self):
        s, txn = self.stack, uniq("TX")
        rid = "rid-" + uniq("OPS").lower()
        r = s.evaluate(dict(self.req, header={"transactionId": txn}),
                       headers={"X-Request-Id": rid})
        self.assertEval(r)
        self.assertEqual(r.headers["x-request-id"], rid)
        confirm_rid = rid + "-confirm"
        req = {"header": {"transactionId": txn, "transactionCounter": 1},
               "transactionId": txn,
               "appliedPromotions": [{"promotionId": self.p["id"], "couponCode": None}]}
        r = s.post("/pos/v2/confirm", {"request": req}, headers={"X-Request-Id": confirm_rid},
                   user="pos-reader")
        self.assertOk(r)
        self.assertEqual(r.headers["x-request-id"], confirm_rid)

        # Gateway: one access line per request, as JSON, without credentials.
        def access(rid_):
            return [l for l in self.gateway_lines()
                    if l.get("request_id") == rid_ and l["msg"].startswith("access ")]
        a = harness.wait_until(lambda: access(confirm_rid), 5, what="the access line")
        self.assertEqual(len(a), 1, a)
        self.assertEqual(set(a[0]), {"ts", "level", "service", "msg", "request_id"})
        self.assertEqual((a[0]["level"], a[0]["service"]), ("INFO", "gateway"))
        self.assertRegex(a[0]["msg"], r"^access method=POST path=/pos/v2/confirm status=200 "
                                      r"duration_ms=\d+\.\d{3} tenant=default$")
        self.assertEqual(len(access(rid)), 1)
        log = s.log_text("gateway", limit=10 ** 7)
        self.assertNotIn("Basic ", log)
        self.assertNotIn("Authorization", log)
        # Evaluator: the calls it served carry the id.
        ev_log = s.log_text("evaluator", limit=10 ** 7)
        self.assertRegex(ev_log, r"DEBUG evaluator: rpc evaluator\.Evaluate 200 [0-9.]+ ms "
                                 r"request_id=%s" % re.escape(rid))
        self.assertRegex(ev_log, r"rpc evaluator\.Confirm 200 [0-9.]+ ms request_id=%s"
                         % re.escape(confirm_rid))
        # The event.
        evs = [e for e in s.events("dre.transactions.confirmed")
               if e["value"] and e["value"]["transactionId"] == txn]
        self.assertEqual(len(evs), 1)
        self.assertEqual(evs[0]["value"]["schemaVersion"], 3)
        self.assertEqual(evs[0]["value"]["requestId"], {"string": confirm_rid})

    def test_traceparent_and_generated_ids(self):
        s = self.stack
        trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        r = s.get("/healthz", user=None,
                  headers={"traceparent": "00-%s-00f067aa0ba902b7-01" % trace})
        self.assertEqual(r.headers["x-request-id"], trace)
        # Unusable ids are replaced by a new one, never echoed.
        for bad in ("has space", "x" * 65, "semi;colon"):
            r = s.get("/healthz", user=None, headers={"X-Request-Id": bad})
            self.assertRegex(r.headers["x-request-id"], harness.UUID_RE)
        r = s.get("/healthz", user=None, headers={"traceparent": "00-%s-00f067aa0ba902b7-01" % ("0" * 32)})
        self.assertRegex(r.headers["x-request-id"], harness.UUID_RE)
        # Every answer has one, errors too.
        r = s.get("/nowhere", user=None)
        self.assertEqual(r.status, 404)
        self.assertRegex(r.headers["x-request-id"], harness.UUID_RE)

    def test_every_gateway_line_is_json(self):
        # A request of its own: its access line is written within
        # log.access_flush_ms, after the lines logged before it.
        rid = "rid-json-" + uuid.uuid4().hex[:10]
        self.stack.get("/healthz", user=None, headers={"X-Request-Id": rid})

        def lines():
            text = self.stack.log_text("gateway", limit=10 ** 7)
            ls = [l for l in text.splitlines() if not l.startswith("==== start")]
            return ls if any(rid in l for l in ls) else None
        lines = harness.wait_until(lines, 5, what="the request's access line")
        self.assertGreater(len(lines), 3)
        for l in lines:
            d = json.loads(l)
            self.assertTrue({"ts", "level", "service", "msg"} <= set(d), l)
            self.assertRegex(d["ts"], harness.ISO_RE)

    def test_unknown_log_level_or_format_is_a_startup_error(self):
        binary = os.path.join(harness.BIN_DIR, "dre-budget")
        for opt, msg in (("log_level=verbose", "log_level must be one of debug|info|warn|error"),
                         ("log.format=xml", "log.format must be one of text|json")):
            p = subprocess.run([binary, "-o", opt, "-o", "data_dir=" + self.stack.data_dir],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            self.assertEqual(p.returncode, 2, p.stdout)
            self.assertIn(msg, p.stdout.decode())

    # -- scheduling ------------------------------------------------------------
    def test_every_thread_runs_under_sched_batch(self):
        """sched.batch (default true): every thread of every process --
        nng's, librdkafka's and RocksDB's as well as DRE's own -- runs under
        SCHED_BATCH; with sched.batch=false they keep the policy they were
        started with (here the test's own)."""
        for name in self.stack.services:
            pid = self.stack.procs[name].pid
            self.assertEqual(thread_policies(pid), {os.SCHED_BATCH}, name)
        # A broker of its own (the one service that needs no other).
        d = self.stack.data_dir + "/sched-%s" % uniq("b")
        os.makedirs(d)
        boot = d + "/bootstrap"
        p = subprocess.Popen(
            [os.path.join(harness.BIN_DIR, "dre-broker"), "-o", "data_dir=" + d,
             "-o", "rpc.listen=tcp://127.0.0.1:%d" % harness.free_port(),
             "-o", "broker.bootstrap_file=" + boot, "-o", "sched.batch=false",
             "-o", "internal.key_file=" + os.path.join(self.stack.data_dir, "internal.key")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            harness.wait_until(lambda: os.path.exists(boot) or p.poll() is not None,
                               30, what="dre-broker bootstrap file")
            self.assertIsNone(p.poll(), "dre-broker exited")
            self.assertEqual(thread_policies(p.pid), {os.sched_getscheduler(0)})
        finally:
            p.terminate()
            p.wait(timeout=30)

    def test_threads_are_named_for_what_they_do(self):
        """DRE's own threads carry names (top -H, perf, gdb): the appliers
        by their consumer, the group commit, the outbox relay and its probe,
        the Kafka producer's poll, the access-log flusher, the gateway's HTTP
        threads and connection watch. Left with the process's name: the
        main thread and, where there is a store, RocksDB's timer thread
        (RocksDB 7.8 does not name it)."""
        want = {
            "evaluator": {"ap:sidefx", "ap:feed", "ap:budget-statu", "commit",
                          "outbox", "outbox:probe", "kafka:producer",
                          "sidefx:sweep", "store:compact"},
            "gateway": {"MHD-worker", "conn:watch", "log:access"},
            "budget": {"ap:transactions", "outbox", "kafka:producer"},
            "webhook": {"ap:webhook even", "ap:promotion ev", "webhook:send"},
            "coupon": {"ap:transactions", "ap:links", "coupon:sweep", "coupon:batch"},
            "loyalty": {"ap:transactions", "loyalty:convert"},
        }
        for name, threads in want.items():
            proc = self.stack.procs[name]
            got = thread_names(proc.pid)
            self.assertEqual(threads - got, set(), name)
            own = [t for t in os.listdir("/proc/%d/task" % proc.pid)
                   if open("/proc/%d/task/%s/comm" % (proc.pid, t)).read().strip()
                   == "dre-" + name]
            self.assertIn(str(proc.pid), own, name)
            self.assertLessEqual(len(own), 1 if name == "gateway" else 2, name)

    # -- drain -----------------------------------------------------------------
    def test_zz_drain_closes_new_connections(self):
        """Past the grace period, while a request begun earlier is still
        open, a new connection is closed at once (a client goes elsewhere
        rather than wait in the listen queue); the open request keeps the
        gateway up, and it exits 0 once that request ends."""
        s = self.stack
        gw = s.procs["gateway"]
        auth = "Basic " + __import__("base64").b64encode(b"pos-reader:pos").decode()
        held = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
        try:
            # Headers and the first byte of a body that does not come yet.
            held.sendall(("POST /pos/v2/evaluate HTTP/1.1\r\nHost: dre\r\n"
                          "Authorization: %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: 100000\r\n\r\n{" % auth).encode())
            # In flight: the held request and the scrape itself.
            harness.wait_until(
                lambda: (value_of(parse_strict(self.metrics()), "dre_http_requests_in_flight",
                                  service="gateway") or 0) >= 2,
                5, what="the held request in flight")
            os.killpg(gw.pid, signal.SIGTERM)

            def closed_at_once():
                c = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
                c.settimeout(3)
                try:
                    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: dre\r\n\r\n")
                    return c.recv(4096) == b"" or None  # else answered: still in grace
                except ConnectionResetError:
                    return True
                except socket.timeout:
                    # Neither answered nor closed: left in the listen queue.
                    raise AssertionError("a new connection was left waiting during the drain")
                finally:
                    c.close()
            harness.wait_until(closed_at_once, GRACE_MS / 1000.0 + 5, interval=0.05,
                               what="a new connection closed at once after the grace period")
            self.assertIsNone(gw.poll(), "the held request keeps the gateway up")
        finally:
            held.close()
        rc = gw.wait(timeout=harness.deadline(15))
        self.assertEqual(rc, 0, s.log_text("gateway")[-3000:])
        s.start_service("gateway")

    def test_zz_drain_on_sigterm_under_load(self):
        """Clients evaluate in a loop on keep-alive connections (a new one
        when the gateway closes theirs), as behind a load balancer that stops
        sending once /readyz says 503. SIGTERM: every request begun before
        the client saw the 503 must succeed; the gateway still serves during
        the grace period, then exits 0."""
        s = self.stack
        port = s.http_port
        auth = {"Authorization": "Basic " + __import__("base64").b64encode(b"pos-reader:pos").decode(),
                "Content-Type": "application/json"}
        body = harness.dumps({"request": self.req}).encode()
        stop = threading.Event()
        results = []  # (started, finished, status or repr(exception))
        lock = threading.Lock()

        def client():
            conn = None
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    conn.request("POST", "/pos/v2/evaluate", body=body, headers=auth)
                    resp = conn.getresponse()
                    resp.read()
                    out = resp.status
                    if resp.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except Exception as e:  # noqa: BLE001 -- every failure is a result
                    out = repr(e)
                    if conn is not None:
                        conn.close()
                    conn = None
                with lock:
                    results.append((t0, time.monotonic(), out))
            if conn is not None:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        try:
            harness.wait_until(lambda: len(results) >= 100, 20, what="load running")
            gw = s.procs["gateway"]
            t_sig = time.monotonic()
            os.killpg(gw.pid, signal.SIGTERM)

            def unready():
                r = s.get("/readyz", user=None, timeout=5)
                return r if r.status == 503 else None
            r = harness.wait_until(unready, 5, interval=0.01, what="/readyz 503 after SIGTERM")
            t_seen = time.monotonic()
            stop.set()  # the load balancer sends nothing more
            self.assertEqual(r.body["draining"], True)
            # Still serving within the grace period, on a new connection.
            self.assertLess(t_seen - t_sig, GRACE_MS / 1000.0)
            self.assertEval(s.evaluate(self.req, user="pos-reader"))
            for t in threads:
                t.join(30)
            rc = gw.wait(timeout=harness.deadline(GRACE_MS / 1000.0 + 10))
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        t_exit = time.monotonic()
        self.assertEqual(rc, 0, s.log_text("gateway")[-3000:])
        begun = [x for x in results if x[0] < t_seen]
        failed = [x for x in begun if x[2] != 200]
        in_grace = [x for x in begun if x[0] >= t_sig]
        sys.stderr.write("drain: %d requests begun before /readyz was seen 503 (%d after SIGTERM), "
                         "%d failed; SIGTERM->503 seen %.0f ms, SIGTERM->exit %.0f ms\n" % (
                             len(begun), len(in_grace), len(failed),
                             (t_seen - t_sig) * 1000, (t_exit - t_sig) * 1000))
        self.assertGreaterEqual(len(begun), 100)
        self.assertEqual(failed, [])
        # It waited for the grace period before it went.
        self.assertGreaterEqual(t_exit - t_sig, GRACE_MS / 1000.0)
        lines = [l["msg"] for l in self.gateway_lines()]
        self.assertIn("draining: /readyz answers 503, serving for %d ms more" % GRACE_MS, lines)
        self.assertIn("drained: 0 request(s) unanswered", lines)
        # The harness expects every process running at the end.
        s.start_service("gateway")


if __name__ == "__main__":
    harness.main()
