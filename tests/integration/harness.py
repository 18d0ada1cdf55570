# harness.py -- starts the real DRE processes (broker, catalog, coupon,
# evaluator, gateway) on free loopback ports in a private data dir and talks HTTP to the
# gateway. Standard library only; imported by every tests/integration/test_*.py.
#
# Environment: DRE_BIN_DIR (the build's bin/ with dre-broker, dre-catalog,
# dre-budget, dre-reporting, dre-evaluator, dre-gateway), DRE_SOURCE_DIR (the
# source tree), optional
# DRE_IT_KEEP=1 (keep the data dirs), DRE_IT_SCALE (multiply every deadline;
# defaults to 3 when the bin dir looks like a sanitizer build),
# DRE_IT_RECORD_DIR (append every HTTP answer received to a JSONL file there,
# for the OpenAPI conformance test; ctest sets it), DRE_IT_SHARDS (evaluator
# shards of a Stack that does not name its own; 1).
import atexit
import base64
import copy
import decimal
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

Decimal = decimal.Decimal

SOURCE_DIR = os.environ.get(
    "DRE_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN_DIR = os.environ.get("DRE_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

_default_scale = 3.0 if re.search(r"asan|tsan|sanit", BIN_DIR, re.I) else 1.0
SCALE = float(os.environ.get("DRE_IT_SCALE", _default_scale))

USERS = {
    "admin": "admin",
    "pos-reader": "pos",
    "promo-manager": "promo",
    "budget-manager": "budget",
    "api-writer": "api",
    "api-reader": "reader",
    "approver": "approve",
    "sync-service": "sync",
    "local-store": "local",
    "md-ingester": "ingest",
    # Admins of two more tenants (gateway auth.users), for isolation tests.
    "tenant-b-admin": "tb",
    "tenant-c-admin": "tc",
}
EXTRA_USERS = ("tenant-b-admin:tb:Admin:tenant-b,"
               "tenant-c-admin:tc:Admin:tenant-c")

SERVICES = ("broker", "catalog", "budget", "reporting", "coupon",
            "loyalty",
            "evaluator", "webhook", "gateway")
# Services that consume Kafka and need the broker's address.
KAFKA_SERVICES = ("catalog", "budget", "reporting", "coupon", "evaluator",
                  "loyalty", "webhook")
UUID_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

# A fixed transaction time inside every "valid" window the tests create.
TS = "2026-06-07T12:00:00Z"
VALID_FROM = "2026-01-01T00:00:00Z"
VALID_TO = "2026-12-31T23:59:59Z"


def service_kind(name):
    """The program of a service name: "evaluator" for every shard
    ("evaluator", "evaluator-1", ...), else the name itself."""
    return "evaluator" if name.startswith("evaluator-") else name


def deadline(seconds):
    return seconds * SCALE


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value; returns that value.
    Raises AssertionError with `what` after timeout seconds (scaled)."""
    end = time.monotonic() + deadline(timeout)
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except (OSError, http.client.HTTPException) as e:  # not up yet
            last_exc = e
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (
                deadline(timeout), what,
                (" (last error: %r)" % last_exc) if last_exc else ""))
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


def thread_stats(pid):
    """The /proc/PID/task/*/stat fields of each live thread of pid, those
    after the command's closing parenthesis (so [0] is the state, field 3,
    and [38] the scheduling policy, field 41)."""
    out = []
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                out.append(f.read().rsplit(")", 1)[1].split())
        except OSError:
            pass  # the thread ended
    return out


def stall(pid, timeout=10):
    """SIGSTOPs pid and returns once every thread of it has stopped (state
    T): kill() only starts the stop, and until a thread of the process has
    run to take it, the others still answer what arrives -- for longer when
    the CPU is busy, as every DRE thread runs under SCHED_BATCH and a woken
    thread does not preempt the running one. SIGCONT resumes it."""
    os.kill(pid, signal.SIGSTOP)

    def stopped():
        return all(f[0] in "TtZX" for f in thread_stats(pid))
    try:
        wait_until(stopped, timeout, interval=0.001, what="pid %d stopped" % pid)
    except BaseException:
        os.kill(pid, signal.SIGCONT)
        raise


_PORTS_TAKEN = set()


def free_port():
    """A port for a server of the test stack, below the kernel's ephemeral
    range (ip_local_port_range): a port the kernel handed out with bind(0)
    and that was closed again is the next outgoing connection's source port
    as likely as any, and then the server cannot listen ("Address in use",
    seen in CI with parallel tests). Random in 20000..32767, checked free
    (listening and connecting), never twice in one test process."""
    lo, hi = 20000, 32767
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            first = int(f.read().split()[0])
        hi = min(hi, first - 1)
    except (OSError, ValueError, IndexError):
        pass
    rnd = random.SystemRandom()
    for _ in range(200):
        port = rnd.randint(lo, hi)
        if port in _PORTS_TAKEN:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _PORTS_TAKEN.add(port)
        return port
    raise RuntimeError("no free port in %d..%d" % (lo, hi))


def instant(s):
    """An ISO-8601 timestamp as a comparable UTC datetime."""
    import datetime
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def new_id():
    return str(uuid.uuid4())


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10].upper())


def load_data(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return json.loads(f.read().decode("utf-8"), parse_float=Decimal)


def D(s):
    return Decimal(str(s))


def money(v, currency="EUR"):
    return {"value": D(v), "currency": currency}


RECORD_DIR = os.environ.get("DRE_IT_RECORD_DIR")
# Response headers the OpenAPI document describes (and the conformance test
# checks where it documents them).
RECORD_HEADERS = ("content-type", "etag", "dre-propagation",
                  "dre-ignored-fields", "retry-after", "www-authenticate",
                  "location")
_record_lock = threading.Lock()


def record_answer(method, path, status, headers, raw):
    """Appends one answer to DRE_IT_RECORD_DIR/<test>-<pid>.jsonl when that
    is set: the conformance test (test_openapi_conformance.py) validates
    every recorded answer against proto/openapi.yaml."""
    if not RECORD_DIR:
        return
    test = os.path.splitext(os.path.basename(sys.argv[0] or "python"))[0]
    line = json.dumps({
        "test": test, "method": method, "path": path, "status": status,
        "headers": {k: v for k, v in headers.items() if k in RECORD_HEADERS},
        "body": raw.decode("utf-8", "replace"),
    }) + "\n"
    name = os.path.join(RECORD_DIR, "%s-%d.jsonl" % (test, os.getpid()))
    with _record_lock:
        os.makedirs(RECORD_DIR, exist_ok=True)
        with open(name, "a", encoding="utf-8") as f:
            f.write(line)


class Response:
    """status, headers (lower-case names), body (parsed JSON with Decimal
    floats, or raw bytes when not JSON), text (raw body as str)."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        self.text = raw.decode("utf-8", "replace")
        self.body = raw
        ctype = headers.get("content-type", "")
        if raw and "json" in ctype:
            try:
                self.body = json.loads(self.text, parse_float=Decimal)
            except ValueError:
                self.body = raw

    def __iter__(self):
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        return "<HTTP %d %s>" % (self.status, self.text[:2000])


_ALL_STACKS = []


class StackError(AssertionError):
    pass


class Stack:
    """The DRE processes on free loopback ports in one data dir. opts maps a
    service name to extra "-o key=value" settings (e.g. {"coupon":
    ["coupon.reservation_ttl_ms=2000"]})."""

    def __init__(self, data_dir=None, start=True, extra=None, opts=None,
                 shards=None):
        """extra: {service: [argv...]} appended to that service's command
        line (e.g. {"evaluator": ["-o", "confirm.ack_wait_ms=100"]}); opts:
        {service: ["key=value", ...]}, each passed as -o key=value.
        shards: evaluator shards (DRE_IT_SHARDS, else 1). Shard 0 is the
        service "evaluator", shard k > 0 "evaluator-k" (its own port and
        <data_dir>/evaluator-k); extra and opts of "evaluator" apply to
        every shard, those of "evaluator-k" to that one only."""
        self.extra = dict(extra or {})
        self.opts = dict(opts or {})
        if shards is None:
            shards = int(os.environ.get("DRE_IT_SHARDS", "1"))
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self.shards = shards
        self.shard_names = ["evaluator"] + [
            "evaluator-%d" % k for k in range(1, shards)]
        i = SERVICES.index("evaluator")
        self.services = SERVICES[:i + 1] + tuple(self.shard_names[1:]) + \
            SERVICES[i + 1:]
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="dre-it-")
        self.log_dir = os.path.join(self.data_dir, "log")
        os.makedirs(self.log_dir, exist_ok=True)
        # One internal key per stack, where every process finds it by
        # default (<data_dir>/internal.key), kept across restarts.
        self.internal_key = ensure_internal_key(
            os.path.join(self.data_dir, "internal.key"))
        self.bootstrap_file = os.path.join(self.data_dir, "broker", "bootstrap")
        self.ports = {
            "broker": free_port(),
            "catalog": free_port(),
            "coupon": free_port(),
            "evaluator": free_port(),
            "budget": free_port(),
            "reporting": free_port(),
            "loyalty": free_port(),
            "webhook": free_port(),
            "http": free_port(),
        }
        for name in self.shard_names[1:]:
            self.ports[name] = free_port()
        self.procs = {}
        self.logs = {}
        self.bootstrap = None
        self.problems = []
        _ALL_STACKS.append(self)
        if start:
            try:
                self.start()
            except BaseException:
                self.kill_all()
                raise

    # -- addresses -----------------------------------------------------------
    def rpc_url(self, name):
        return "tcp://127.0.0.1:%d" % self.ports[name]

    @property
    def http_port(self):
        return self.ports["http"]

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.http_port

    def argv(self, name):
        kind = service_kind(name)
        binary = os.path.join(BIN_DIR, "dre-" + kind)
        a = [binary, "-o", "data_dir=" + self.data_dir,
             "-o", "rpc.listen=" + self.rpc_url(name if name != "gateway" else "http")]
        if name == "broker":
            a += ["-o", "broker.bootstrap_file=" + self.bootstrap_file]
        elif name == "catalog":
            # Import job callbacks go to test receivers on 127.0.0.1.
            a += ["-o", "kafka.bootstrap.servers=" + self.bootstrap,
                  "-o", "imports.callback_insecure=true"]
        elif name == "coupon":
            a += ["-o", "catalog.url=" + self.rpc_url("catalog"),
                  "-o", "imports.callback_insecure=true",
                  "-o", "kafka.bootstrap.servers=" + self.bootstrap]
        elif kind == "evaluator":
            a += ["-o", "shard=%d" % self.shard_names.index(name),
                  "-o", "catalog.url=" + self.rpc_url("catalog"),
                  "-o", "budget.url=" + self.rpc_url("budget"),
                  "-o", "coupon.url=" + self.rpc_url("coupon"),
                  "-o", "loyalty.url=" + self.rpc_url("loyalty"),
                  "-o", "kafka.bootstrap.servers=" + self.bootstrap]
        elif name == "budget":
            a += ["-o", "kafka.bootstrap.servers=" + self.bootstrap,
                  "-o", "imports.callback_insecure=true"]
        elif name == "loyalty":
            a += ["-o", "kafka.bootstrap.servers=" + self.bootstrap,
                  "-o", "imports.callback_insecure=true",
                  "-o", "coupon.url=" + self.rpc_url("coupon"),
                  "-o", "catalog.url=" + self.rpc_url("catalog")]
        elif name == "webhook":
            # Test receivers are plain http on 127.0.0.1 (dev/test only).
            a += ["-o", "kafka.bootstrap.servers=" + self.bootstrap,
                  "-o", "catalog.url=" + self.rpc_url("catalog"),
                  "-o", "webhook.allow_insecure_urls=true"]
        elif name == "reporting":
            a += ["-o", "kafka.bootstrap.servers=" + self.bootstrap,
                  "-o", "budget.url=" + self.rpc_url("budget"),
                  "-o", "catalog.url=" + self.rpc_url("catalog")]
        elif name == "gateway":
            a = [binary, "-o", "data_dir=" + self.data_dir,
                 "-o", "http.bind=127.0.0.1",
                 "-o", "http.port=%d" % self.http_port,
                 "-o", "evaluator.urls=" + ",".join(
                     self.rpc_url(n) for n in self.shard_names),
                 "-o", "catalog.url=" + self.rpc_url("catalog"),
                 "-o", "budget.url=" + self.rpc_url("budget"),
                 "-o", "reporting.url=" + self.rpc_url("reporting"),
                 "-o", "coupon.url=" + self.rpc_url("coupon"),
                 "-o", "loyalty.url=" + self.rpc_url("loyalty"),
                 "-o", "webhook.url=" + self.rpc_url("webhook"),
                 "-o", "auth.users=" + EXTRA_USERS,
                 # Tests stop the gateway at once; test_ops drains it.
                 "-o", "shutdown.grace_ms=0"]
        names = [name] if kind == name else [kind, name]
        for n in names:
            for kv in self.opts.get(n, ()):
                a += ["-o", kv]
        for n in names:
            a += list(self.extra.get(n, []))
        return a

    # -- process control -----------------------------------------------------
    def _spawn(self, name):
        if name in self.procs and self.procs[name].poll() is None:
            raise StackError("%s already running" % name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRE_")}
        # The embedded broker holds an empty fetch for the whole wait.
        env["DRE_EVENTS_FETCH_WAIT_MS"] = "5"
        log_path = os.path.join(self.log_dir, name + ".log")
        logf = open(log_path, "ab")
        logf.write(("==== start %s: %s\n" % (name, " ".join(self.argv(name)))).encode())
        logf.flush()
        p = subprocess.Popen(self.argv(name), stdin=subprocess.DEVNULL,
                             stdout=logf, stderr=subprocess.STDOUT,
                             cwd=self.data_dir, env=env, start_new_session=True)
        logf.close()
        self.procs[name] = p
        self.logs[name] = log_path
        return p

    def _alive_or_fail(self, name):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            raise StackError("dre-%s exited early (status %s); log:\n%s" % (
                name, None if p is None else p.returncode, self.log_text(name)))

    def _tcp_open(self, port):
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    def start_service(self, name):
        if name == "broker":
            try:
                os.unlink(self.bootstrap_file)
            except FileNotFoundError:
                pass
            # the broker does not create the parent of an explicit
            # broker.bootstrap_file
            os.makedirs(os.path.dirname(self.bootstrap_file), exist_ok=True)
            self._spawn("broker")

            def ready():
                self._alive_or_fail("broker")
                try:
                    with open(self.bootstrap_file) as f:
                        s = f.read().strip()
                except FileNotFoundError:
                    return None
                return s or None
            self.bootstrap = wait_until(ready, 30, what="broker bootstrap file")
        else:
            if service_kind(name) in KAFKA_SERVICES and not self.bootstrap:
                raise StackError("start the broker first")
            self._spawn(name)
            port = self.ports["http" if name == "gateway" else name]

            def listening():
                self._alive_or_fail(name)
                try:
                    return self._tcp_open(port)
                except OSError:
                    return False
            wait_until(listening, 30, what="dre-%s listening on %d" % (name, port))
            if name == "gateway":
                self.wait_healthy()

    def start(self, attempts=4):
        """Starts every service. free_port() only finds a port that is free
        now: another process (a parallel test, the mock broker's own random
        listeners) may take it before our service binds. Such a start is
        retried from scratch on fresh ports; any other failure is raised."""
        for attempt in range(attempts):
            try:
                for name in self.services:
                    self.start_service(name)
                self.wait_healthy()
                return
            except StackError as e:
                if attempt == attempts - 1 or "in use" not in str(e):
                    raise
                self.kill_all()
                self.procs = {}
                for k in self.ports:
                    self.ports[k] = free_port()

    def wait_healthy(self, timeout=30):
        def up():
            for n, p in self.procs.items():
                if p.poll() is not None:
                    self._alive_or_fail(n)
            r = self.get("/pos/heartbeat")
            return r.status == 200 and isinstance(r.body, dict) and \
                r.body.get("status") == "UP"
        wait_until(up, timeout, what="GET /pos/heartbeat status UP")

    def _wait_exit(self, p, seconds):
        try:
            return p.wait(timeout=deadline(seconds))
        except subprocess.TimeoutExpired:
            return None

    def stop_service(self, name, timeout=15):
        """SIGTERM, wait; a process that does not exit cleanly is a failure."""
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        rc = self._wait_exit(p, timeout)
        if rc is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            msg = "dre-%s did not exit within %.0fs of SIGTERM (killed)" % (
                name, deadline(timeout))
            self.problems.append(msg)
            raise StackError(msg)
        if rc != 0:
            msg = "dre-%s exited with status %d after SIGTERM" % (name, rc)
            self.problems.append(msg)
            raise StackError(msg + "; log:\n" + self.log_text(name))

    def kill9(self, name):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()

    def alive(self, name):
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def assert_all_alive(self):
        for name in self.services:
            if not self.alive(name):
                raise StackError("dre-%s is not running (status %s); log:\n%s" % (
                    name, self.procs[name].returncode if name in self.procs else None,
                    self.log_text(name)))

    def stop(self):
        """Stops every process (gateway first); raises if one did not stop
        cleanly. Always leaves no process behind."""
        errors = []
        for name in reversed(self.services):
            try:
                self.stop_service(name)
            except StackError as e:
                errors.append(str(e))
        self.kill_all()
        if errors:
            raise StackError("; ".join(errors))

    def kill_all(self):
        for name, p in list(self.procs.items()):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass

    def cleanup(self):
        self.kill_all()
        if self.own_dir and not os.environ.get("DRE_IT_KEEP"):
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- logs ----------------------------------------------------------------
    def log_text(self, name, limit=20000):
        path = self.logs.get(name) or os.path.join(self.log_dir, name + ".log")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return "(no log)"
        if len(data) > limit:
            data = b"...\n" + data[-limit:]
        return data.decode("utf-8", "replace")

    def dump_logs(self, out=None):
        out = out or sys.stderr
        for name in self.services:
            out.write("\n===== dre-%s log (%s) =====\n" % (name, self.data_dir))
            out.write(self.log_text(name))
        out.write("\n")
        out.flush()

    # -- HTTP ----------------------------------------------------------------
    def request(self, method, path, body=None, user="admin", password=None,
                raw=None, content_type="application/json", headers=None,
                timeout=60):
        """One HTTP exchange on a fresh connection. body is JSON-encoded;
        raw (bytes) is sent as is. user=None sends no Authorization."""
        hdrs = {}
        if user is not None:
            pw = USERS.get(user, "") if password is None else password
            tok = base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
            hdrs["Authorization"] = "Basic " + tok
        data = None
        if body is not None:
            data = dumps(body).encode("utf-8")
        if raw is not None:
            data = raw
        if data is not None and content_type is not None:
            hdrs["Content-Type"] = content_type
        if headers:
            hdrs.update(headers)
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port,
                                          timeout=deadline(timeout))
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            h = {k.lower(): v for k, v in resp.getheaders()}
            record_answer(method, path, resp.status, h, payload)
            return Response(resp.status, h, payload)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def evaluate(self, req, **kw):
        return self.post("/pos/v2/evaluate", {"request": req}, **kw)

    def simulate(self, req, **kw):
        return self.post("/pos/v2/simulate", {"request": req}, **kw)

    # -- confirm, side effects, budgets, reports ------------------------------
    def confirm(self, txn, counter, promotions=(), **kw):
        """POST /pos/v2/confirm. promotions: [{"promotionId", ...}]; extra
        request fields as keywords (customerId, timestamp, ...)."""
        req = {"header": {"transactionId": txn, "transactionCounter": counter},
               "transactionId": txn, "appliedPromotions": list(promotions)}
        user = kw.pop("user", "admin")
        req.update(kw)
        return self.post("/pos/v2/confirm", {"request": req}, user=user)

    def side_effects(self, txn, counter, **kw):
        return self.get("/pos/v2/transactions/%s/%s/side-effects" % (txn, counter), **kw)

    def wait_side_effects(self, txn, counter, statuses=("COMPLETED",), timeout=10):
        """Polls the side-effects job until its status is one of statuses;
        returns the body. The poll is cached ~1 s server side, so a change is
        seen within about a second."""
        state = {}

        def pred():
            r = self.side_effects(txn, counter)
            state["last"] = r
            return r.status == 200 and r.body.get("status") in statuses and r.body
        try:
            return wait_until(pred, timeout, interval=0.05,
                              what="side effects of %s/%s in %s" % (txn, counter, statuses))
        except AssertionError as e:
            raise AssertionError("%s; last: %r" % (e, state.get("last")))

    def create_budget(self, total, name=None, currency="EUR", **kw):
        doc = {"name": name or uniq("Budget"), "totalAmount": D(total),
               "currency": currency}
        doc.update(kw)
        r = self.post("/api/v1/Budgets", doc)
        if r.status != 201:
            raise AssertionError("POST /api/v1/Budgets failed: %r" % r)
        return r.body

    def budget(self, budget_id):
        r = self.get("/api/v1/Budgets/" + budget_id)
        if r.status != 200:
            raise AssertionError("GET budget %s: %r" % (budget_id, r))
        return r.body

    def events(self, topic, wait_s=20):
        """Every event of topic, decoded by tools/events (dre-events) with the
        proto/*.avsc files alone: [{"topic", "partition", "offset", "key",
        "schema", "value"}]. Avro unions appear as {"<type>": value}."""
        binary = os.path.join(BIN_DIR, "dre-events")
        if not os.access(binary, os.X_OK):
            # The event checks are part of the contract: never skipped.
            raise AssertionError("dre-events is not built (configure with "
                                 "DRE_TOOLS=ON, the default)")
        p = subprocess.run([binary, "-b", self.bootstrap, "-t", topic,
                            "-s", os.path.join(SOURCE_DIR, "proto"),
                            "-w", str(int(deadline(wait_s) * 1000))],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=deadline(wait_s) + 10)
        if p.returncode != 0:
            raise AssertionError("dre-events %s failed: %s" % (topic, p.stderr.decode()))
        return [json.loads(l, parse_float=Decimal) for l in p.stdout.decode().splitlines() if l]

    def broker_call(self, method, **params):
        """Calls the dev broker's control socket (broker.Down, broker.Up,
        broker.Status) over nng REQ/REP; returns (status, body bytes)."""
        return nng_call(self.rpc_url("broker"), method, params,
                        key=self.internal_key)

    def rpc_call(self, name, method, params=None, **kw):
        """Calls service `name` over nng with the stack's internal key (the
        keyword arguments of nng_call override it: key=None sends no proof,
        key=b"..." a wrong one, sent_ms an old time)."""
        kw.setdefault("key", self.internal_key)
        return nng_call(self.rpc_url(name), method, params, **kw)

    def broker_down(self):
        st, body = self.broker_call("broker.Down")
        if st != 200:
            raise StackError("broker.Down: %d %r" % (st, body))

    def broker_up(self):
        st, body = self.broker_call("broker.Up")
        if st != 200:
            raise StackError("broker.Up: %d %r" % (st, body))

    # -- master data ---------------------------------------------------------
    def _create(self, collection, doc):
        r = self.post("/api/v1/" + collection, doc)
        if r.status not in (200, 201):
            raise AssertionError("POST /api/v1/%s failed: %r" % (collection, r))
        return r.body

    def create_promotion(self, doc):
        return self._create("Promotions", doc)

    def create_pos_group(self, code=None, gid=None, name=None):
        doc = {"id": gid or new_id(), "code": code or uniq("S")[:20],
               "name": name or "Store group"}
        return self._create("PosGroups", doc)

    def import_articles(self, articles):
        r = self.post("/pos/articles/import", {"articles": articles})
        if r.status != 200:
            raise AssertionError("article import failed: %r" % r)
        return r.body

    def applied(self, resp_body, promo_id):
        """Discount amounts per line of promo_id in an evaluate response."""
        out = []
        for li in resp_body.get("lineItems", []):
            for d in li.get("discounts", []):
                if d.get("promotionId") == promo_id:
                    out.append((li.get("lineReference"), d["discountAmount"]["value"]))
        return out

    def wait_for_promotion(self, promo_id, req, present=True, timeout=5,
                           check=None):
        """Polls /pos/v2/simulate with req (which writes nothing) until
        promo_id applies (present) or no longer applies; check(body) may add a
        condition (e.g. a new discount value). Returns the last body."""
        state = {}

        def pred():
            r = self.simulate(req)
            state["last"] = r
            if r.status != 200:  # e.g. a POS group code not synced yet
                return False
            state["body"] = r.body
            ok = bool(self.applied(r.body, promo_id)) == present
            if ok and check is not None:
                ok = check(r.body)
            return ok
        try:
            wait_until(pred, timeout, what="promotion %s %s" % (
                promo_id, "to apply" if present else "to stop applying"))
        except AssertionError as e:
            raise AssertionError("%s; last simulate: %r" % (e, state.get("last")))
        return state["body"]


_DEC_RE = re.compile(r'"\\u0000DEC([-+0-9.eE]+)"')


def raw_http(port, head, body=b"", timeout=60):
    """Sends head (str, without the blank line) and body over one raw socket,
    reading concurrently (a server may answer before the upload ends), and
    returns a Response. Raises AssertionError when the connection is dropped
    without an answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=deadline(timeout))
    buf = bytearray()
    done = threading.Event()

    def complete():
        i = buf.find(b"\r\n\r\n")
        if i < 0:
            return False
        m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", bytes(buf[:i]))
        return m is not None and len(buf) >= i + 4 + int(m.group(1))

    def reader():
        try:
            while not complete():
                c = sock.recv(65536)
                if not c:
                    break
                buf.extend(c)
        except OSError:
            pass
        done.set()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
    except OSError:
        pass  # the server may stop reading once it has answered
    done.wait(deadline(timeout))
    try:
        sock.close()
    except OSError:
        pass
    data = bytes(buf)
    i = data.find(b"\r\n\r\n")
    if i < 0:
        raise AssertionError("connection dropped without a response (got %r)" % data[:200])
    lines = data[:i].decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    payload = data[i + 4:]
    if "content-length" in hdrs:
        payload = payload[:int(hdrs["content-length"])]
    req = head.split("\r\n", 1)[0].split(" ")
    if len(req) == 3 and req[2].startswith("HTTP/"):
        record_answer(req[0], req[1], int(m.group(1)), hdrs, payload)
    return Response(int(m.group(1)), hdrs, payload)


# -- nng REQ/REP with the protobuf envelope (proto/rpc.proto), stdlib only ------
def _pb_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _pb_field(num, data):
    if isinstance(data, str):
        data = data.encode()
    return _pb_varint(num << 3 | 2) + _pb_varint(len(data)) + data


def _pb_read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def _pb_fields(buf):
    """(field number, wire type, value) of a protobuf message."""
    i, out = 0, []
    while i < len(buf):
        key, i = _pb_read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _pb_read_varint(buf, i)
        elif wt == 2:
            n, i = _pb_read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out.append((num, wt, v))
    return out


def ensure_internal_key(path):
    """The internal key in path (64 hex digits), created (mode 0600) when
    missing; returns it as bytes."""
    try:
        with open(path) as f:
            return bytes.fromhex(f.read().strip())
    except FileNotFoundError:
        pass
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


def rpc_proof(key, envelope, sent_ms=None, client_id=None, counter=1):
    """The proof common/src/rpc.c expects before a packed RpcRequest:
    "DRE\\1", sent_ms, client id, counter, HMAC-SHA256 of all that and the
    envelope."""
    if sent_ms is None:
        sent_ms = int(time.time() * 1000)
    if client_id is None:
        client_id = int.from_bytes(os.urandom(8), "big") | 1
    head = b"DRE\x01" + struct.pack(">qQQ", sent_ms, client_id, counter)
    return head + hmac.new(key, head + envelope, hashlib.sha256).digest()


def nng_call(url, method, params=None, tenant="", timeout=10, key=None,
             sent_ms=None, body=None, roles=(), principal="harness",
             raw=None):
    """One request over nng's SP protocol (REQ0 -> REP0 on TCP): returns
    (RpcReply.status, RpcReply.body). With key (bytes) the envelope carries
    the internal proof (sent at sent_ms, default now); without it none.
    raw: send these bytes instead of anything built here."""
    m = re.match(r"tcp://([^:]+):(\d+)$", url)
    host, port = m.group(1), int(m.group(2))
    req = _pb_field(1, method) + _pb_field(2, tenant) + _pb_field(3, principal)
    for r in roles:
        req += _pb_field(4, r)
    if body is not None:
        req += _pb_field(6, body)
    for k, v in (params or {}).items():
        req += _pb_field(7, _pb_field(1, k) + _pb_field(2, str(v)))
    if key is not None:
        req = rpc_proof(key, req, sent_ms) + req
    if raw is not None:
        req = raw
    with socket.create_connection((host, port), timeout=deadline(timeout)) as sk:
        sk.sendall(b"\x00SP\x00" + struct.pack(">H", 0x30) + b"\x00\x00")
        hello = _recv_exact(sk, 8)
        if hello[:4] != b"\x00SP\x00" or struct.unpack(">H", hello[4:6])[0] != 0x31:
            raise StackError("not an nng REP socket at %s: %r" % (url, hello))
        payload = struct.pack(">I", 0x80000001) + req
        sk.sendall(struct.pack(">Q", len(payload)) + payload)
        n = struct.unpack(">Q", _recv_exact(sk, 8))[0]
        rep = _recv_exact(sk, n)[4:]
    status, body = 0, b""
    for num, wt, v in _pb_fields(rep):
        if num == 1 and wt == 0:
            status = v
        elif num == 6 and wt == 2:
            body = bytes(v)
    return status, body


def _recv_exact(sk, n):
    buf = bytearray()
    while len(buf) < n:
        c = sk.recv(n - len(buf))
        if not c:
            raise StackError("connection closed after %d of %d bytes" % (len(buf), n))
        buf.extend(c)
    return bytes(buf)


def basic_auth(user):
    return "Basic " + base64.b64encode(("%s:%s" % (user, USERS[user])).encode()).decode()


def _json_default(o):
    if isinstance(o, Decimal):
        return "\u0000DEC" + str(o)
    raise TypeError(repr(o))


def dumps(obj):
    """JSON text keeping Decimal values exact (rendered from their text)."""
    return _DEC_RE.sub(lambda m: m.group(1), json.dumps(obj, default=_json_default))


# -- promotion document builders -----------------------------------------------
def promotion(name, conditions, actions, pos_groups=(), pid=None,
              status="ACTIVE", ptype="ARTICLE", valid_from=VALID_FROM,
              valid_to=VALID_TO, **extra):
    doc = {
        "id": pid or new_id(),
        "name": name,
        "type": ptype,
        "status": status,
        "validFrom": valid_from,
        "validTo": valid_to,
        "posGroups": list(pos_groups),
        "currency": "EUR",
        "conditions": conditions,
        "actions": actions,
    }
    doc.update(extra)
    return doc


def pct_action(value, **target):
    a = {"type": "ARTICLE", "discountType": "PERCENTAGE", "value": value}
    if target:
        a["target"] = target
    return a


def item(ref, article, qty, price, **kw):
    d = {"lineReference": ref, "articleNumber": article,
         "quantity": D(qty), "unitPrice": D(price)}
    d.update(kw)
    return d


def basket(pos_group_id, items, txn=None, **kw):
    req = {"posGroupId": pos_group_id, "items": items, "timestamp": TS}
    if txn is not None:
        req["header"] = {"transactionId": txn}
    req.update(kw)
    return req


# -- expected-response builders (the seed 002 shape) -------------------------
def q2(d):
    return D(d).quantize(Decimal("0.01"), rounding=decimal.ROUND_HALF_UP)


def exp_line(ref, article, qty, price, discounts=(), ean=None,
             group=None, manufacturer=None, unit="PCE"):
    """One LineItemV2 as the seed renders it. discounts: list of
    (promo_id, promo_name, promo_type, discount_type, discount_value, amount)."""
    qty, price = D(qty), D(price)
    total = q2(qty * price)
    ds = []
    for (pid, pname, ptype, dtype, dval, amount) in discounts:
        ds.append({"promotionId": pid, "promotionName": pname,
                   "promotionType": ptype, "discountType": dtype,
                   "discountValue": D(dval),
                   "discountAmount": money(amount), "totalDiscount": money(amount),
                   "couponCode": None, "triggeredByCoupon": False})
    disc = sum((D(d[5]) for d in discounts), Decimal("0"))
    net = total - disc
    if total >= 0 and net < 0:
        net = Decimal("0")
    return {"lineReference": ref, "articleNumber": article, "ean": ean,
            "articleGroupId": group, "manufacturerId": manufacturer,
            "quantity": {"value": qty, "unit": unit},
            "unitPrice": money(price), "lineTotal": money(total),
            "lineDiscount": money(disc), "lineNet": money(net),
            "discounts": ds, "isFreeItem": False, "freeItemPromotionId": None}


def exp_totals(lines):
    """TotalsV2 for lines built by exp_line (sale lines only: no returns)."""
    subtotal = sum((l["lineTotal"]["value"] for l in lines), Decimal("0"))
    disc = sum((l["lineDiscount"]["value"] for l in lines), Decimal("0"))
    grand = subtotal - disc
    pct = q2(disc * 100 / subtotal) if subtotal else Decimal("0")
    breakdown = {}
    order = []
    for l in lines:
        for d in l["discounts"]:
            pid = d["promotionId"]
            if pid not in breakdown:
                order.append(pid)
                breakdown[pid] = {"promotionId": pid,
                                  "promotionName": d["promotionName"],
                                  "totalDiscount": money(0),
                                  "affectedItems": []}
            b = breakdown[pid]
            b["totalDiscount"] = money(b["totalDiscount"]["value"] +
                                       d["discountAmount"]["value"])
            b["affectedItems"].append(l["lineReference"])
    item_savings = [{"articleNumber": l["articleNumber"],
                     "originalPrice": l["lineTotal"],
                     "finalPrice": l["lineNet"],
                     "savings": l["lineDiscount"]}
                    for l in lines if l["lineDiscount"]["value"] != 0]
    return {"subtotal": money(subtotal), "discount": money(disc),
            "grandTotal": money(grand),
            "savingsSummary": {
                "totalSavings": money(disc), "savingsPercent": pct,
                "originalTotal": money(subtotal), "finalTotal": money(grand),
                "promotionBreakdown": [breakdown[p] for p in order],
                "itemSavings": item_savings, "loyaltyPointsEarned": 0}}


# -- assertions ----------------------------------------------------------------
def diff(expected, actual, path="$", out=None, subset=False):
    """Lists the differences between two parsed JSON values: exact values,
    identical key sets; numbers compared numerically and by type class."""
    if out is None:
        out = []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            out.append("%s: expected object, got %r" % (path, actual))
            return out
        ek, ak = set(expected), set(actual)
        for k in sorted(ek - ak):
            out.append("%s.%s: missing (expected %r)" % (path, k, expected[k]))
        if not subset:
            for k in sorted(ak - ek):
                out.append("%s.%s: unexpected key (value %r)" % (path, k, actual[k]))
        for k in sorted(ek & ak):
            diff(expected[k], actual[k], "%s.%s" % (path, k), out, subset)
    elif isinstance(expected, list):
        if not isinstance(actual, list):
            out.append("%s: expected array, got %r" % (path, actual))
            return out
        if len(expected) != len(actual):
            out.append("%s: expected %d elements, got %d: %r" % (
                path, len(expected), len(actual), actual))
            return out
        for i, (e, a) in enumerate(zip(expected, actual)):
            diff(e, a, "%s[%d]" % (path, i), out, subset)
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if type(expected) is not type(actual) or expected != actual:
            out.append("%s: expected %r, got %r" % (path, expected, actual))
    elif isinstance(expected, (int, float, Decimal)):
        if isinstance(expected, float):
            expected = Decimal(repr(expected))
        if isinstance(actual, bool) or not isinstance(actual, (int, float, Decimal)) \
                or Decimal(expected) != Decimal(str(actual)):
            out.append("%s: expected %s, got %r" % (path, expected, actual))
    else:
        if expected != actual:
            out.append("%s: expected %r, got %r" % (path, expected, actual))
    return out


def number_texts(text):
    """Parses JSON text keeping every number as ('F'|'I', its raw text)."""
    return json.loads(text, parse_float=lambda s: ("F", s),
                      parse_int=lambda s: ("I", s))


def money_format_problems(text):
    """Every Money {value, currency} must carry exactly 2 decimals and every
    Quantity {value, unit} exactly 3 (as the seed renders 179.98 and 2.000)."""
    problems = []

    def walk(v, path):
        if isinstance(v, dict):
            val = v.get("value")
            if set(v) == {"value", "currency"}:
                if not (isinstance(val, tuple) and re.match(r"^-?\d+\.\d{2}$", val[1])):
                    problems.append("%s.value: %r is not a 2-decimal number" % (path, val))
            elif set(v) == {"value", "unit"}:
                if not (isinstance(val, tuple) and re.match(r"^-?\d+\.\d{3}$", val[1])):
                    problems.append("%s.value: %r is not a 3-decimal number" % (path, val))
            for k, c in v.items():
                walk(c, path + "." + k)
        elif isinstance(v, list):
            for i, c in enumerate(v):
                walk(c, "%s[%d]" % (path, i))
    walk(number_texts(text), "$")
    return problems


class TestCase(unittest.TestCase):
    maxDiff = None
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = shared_stack()

    def assertJson(self, expected, actual, msg="", subset=False):
        d = diff(expected, actual, subset=subset)
        if d:
            self.fail("%s\n  %s\nactual: %s" % (
                msg, "\n  ".join(d[:40]), dumps(actual)[:4000]))

    def assertStatus(self, r, status):
        if r.status != status:
            self.fail("expected HTTP %d, got %r" % (status, r))

    def assertOk(self, r):
        self.assertStatus(r, 200)
        self.assertIn("application/json", r.headers.get("content-type", ""))
        return r.body

    def assertEval(self, r, simulation=False):
        """A 200 EvaluateResponseV2: well-formed money, returns the body."""
        b = self.assertOk(r)
        self.assertEqual(b.get("minorVersion"), 8, "minorVersion: %r" % r)
        self.assertIs(b["meta"]["isSimulation"], simulation)
        p = money_format_problems(r.text)
        if p:
            self.fail("number format:\n  " + "\n  ".join(p[:20]))
        return b

    def assertLines(self, body, expected_lines, totals=True):
        self.assertJson(expected_lines, body["lineItems"], "lineItems")
        if totals:
            self.assertJson(exp_totals(expected_lines), body["totals"], "totals")

    def assertError(self, r, status, code, target=Ellipsis):
        """The PRODUCT-DECISIONS §1 error body; target=Ellipsis: not checked,
        None: must be absent."""
        self.assertTrue(200 <= status < 600)
        if r.status != status:
            self.fail("expected HTTP %d %s, got %r" % (status, code, r))
        self.assertIn("application/json", r.headers.get("content-type", ""),
                      "error content type: %r" % r)
        b = r.body
        self.assertIsInstance(b, dict, "error body not JSON: %r" % r)
        self.assertEqual(set(b), {"error"}, "error body keys: %r" % r)
        e = b["error"]
        self.assertIsInstance(e, dict)
        self.assertTrue({"code", "message"} <= set(e) <=
                        {"code", "message", "target", "details"},
                        "error keys: %r" % r)
        self.assertEqual(e["code"], code, "error code: %r" % r)
        self.assertIsInstance(e["message"], str)
        self.assertTrue(e["message"], "empty message: %r" % r)
        if target is None:
            self.assertNotIn("target", e, "unexpected target: %r" % r)
        elif target is not Ellipsis:
            self.assertEqual(e.get("target"), target, "error target: %r" % r)
        return e

    def pos_group(self):
        """A fresh POS group per test keeps its promotions to itself."""
        return self.stack.create_pos_group()

    def ten_percent_off(self, qty, price):
        """A fresh POS group with a new article 10 % off ("Ten off"), live in
        the evaluator: sets self.gid, self.art, self.p and self.req (a basket
        of one line L1 of qty x price)."""
        s = self.stack
        self.gid = self.pos_group()["id"]
        self.art = uniq("ART")
        self.p = promotion("Ten off", [{"type": "ARTICLE", "values": [self.art]}],
                           [pct_action(10, articles=[self.art])], pos_groups=[self.gid])
        s.create_promotion(self.p)
        self.req = basket(self.gid, [item("L1", self.art, qty, price)])
        s.wait_for_promotion(self.p["id"], self.req)

    def ten_off_basket(self):
        """A fresh POS group and article with a live 10 % promotion on it:
        (promotion, evaluate request of 2 x 89.99, discount 18.00)."""
        gid = self.pos_group()["id"]
        art = uniq("ART")
        p = promotion("Ten off", [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], pos_groups=[gid])
        self.stack.create_promotion(p)
        req = basket(gid, [item("L1", art, 2, "89.99")])
        self.stack.wait_for_promotion(p["id"], req)
        return p, req


_RESULT_OK = [True]
_SHARED = []


def shared_stack(**kw):
    """One stack per test file, shared by its TestCases; main() stops it.
    kw (e.g. opts) applies when the first caller creates it."""
    if not _SHARED:
        _SHARED.append(Stack(**kw))
    if _SHARED[0].problems:
        raise StackError("; ".join(_SHARED[0].problems))
    return _SHARED[0]


def main():
    """Runs the calling module's tests, prints unittest's summary, dumps the
    logs of every stack on failure and exits non-zero on failure."""
    def _killall():
        for s in _ALL_STACKS:
            s.kill_all()
    atexit.register(_killall)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: (_killall(), os._exit(1)))

    missing = [n for n in SERVICES
               if not os.access(os.path.join(BIN_DIR, "dre-" + n), os.X_OK)]
    if missing:
        sys.stderr.write("FAIL: missing binaries in %s: %s\n" % (
            BIN_DIR, ", ".join("dre-" + n for n in missing)))
        sys.exit(1)

    class _Result(unittest.TextTestResult):
        def addError(self, test, err):
            _RESULT_OK[0] = False
            super().addError(test, err)

        def addFailure(self, test, err):
            _RESULT_OK[0] = False
            super().addFailure(test, err)

    runner = unittest.TextTestRunner(verbosity=2, resultclass=_Result)
    prog = unittest.main(module="__main__", testRunner=runner, exit=False)
    ok = prog.result.wasSuccessful() and _RESULT_OK[0]
    for st in _SHARED:
        try:
            st.assert_all_alive()
            st.stop()
        except StackError as e:
            ok = False
            sys.stderr.write("FAIL: stopping the stack: %s\n" % e)
    if not ok:
        for s in _ALL_STACKS:
            s.dump_logs()
    for s in _ALL_STACKS:
        s.kill_all()
        if ok or not os.environ.get("DRE_IT_KEEP"):
            s.cleanup()
    if not ok:
        sys.stderr.write("integration data dirs: %s\n" % ", ".join(
            s.data_dir for s in _ALL_STACKS))
    sys.exit(0 if ok else 1)
