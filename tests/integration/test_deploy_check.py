#!/usr/bin/env python3
# test_deploy_check.py -- every deployment in deploy/ (systemd units with
# deploy/config, compose, Kubernetes) would start: each DRE process it
# declares, with the arguments and environment it declares, passes the real
# binary's --check-config; every nng address a process dials (gateway
# backends, evaluator shards, the catalog/budget/coupon a service calls) is
# one another process of the same deployment listens on, and every Kafka
# bootstrap address is a broker of the deployment (systemd: one external
# cluster, the same for every unit); every file or document the deploy files
# cite exists. Also --check-config itself: exit 2 with the error on an
# unknown key, a bad URL or a gateway without users; nothing created.
import concurrent.futures
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN_DIR, SOURCE_DIR  # noqa: E402

DEPLOY = os.path.join(SOURCE_DIR, "deploy")
# The secrets an operator creates (docs/operating.md): a well-formed stand-in.
SECRET_USERS = "ops:not-a-real-password:Admin:TENANT-001"
SECRET_KEY = "0123456789abcdef" * 4  # DRE_INTERNAL_KEY
# The install prefix of deploy/Dockerfile and the systemd units.
PREFIX_BIN = "/usr/local/bin/"


class Proc:
    """One process a deployment declares."""

    def __init__(self, origin, hosts, argv, env, shell=None):
        self.origin, self.hosts, self.argv, self.env = origin, hosts, argv, env
        self.shell = shell  # a /bin/sh -c script instead of argv
        self.cfg = None

    def __repr__(self):
        return self.origin


def read(path):
    with open(path) as f:
        return f.read()


def check_config(p):
    env = {"PATH": BIN_DIR + ":/usr/bin:/bin"}
    for k in ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "LD_LIBRARY_PATH"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(p.env)
    if p.shell is not None:
        argv = ["/bin/sh", "-c", p.shell + " --check-config"]
    else:
        argv = [os.path.join(BIN_DIR, os.path.basename(p.argv[0]))] + p.argv[1:] + [
            "--check-config"]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=30, cwd=tempfile.gettempdir())
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def parse_effective(out):
    cfg = {}
    for line in out.splitlines():
        m = re.match(r"^([a-z0-9_.]+) = (.*)$", line)
        if m:
            cfg[m.group(1)] = m.group(2)
    return cfg


def nng_hostport(url):
    m = re.match(r"^tcp://(.+):(\d+)$", url)
    return (m.group(1), int(m.group(2))) if m else None


def env_file(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                env[k] = v
    return env


def etc_path(p):
    """/etc/dre/X and /etc/systemd/system/X as files of deploy/."""
    if p.startswith("/etc/dre/"):
        return os.path.join(DEPLOY, "config", p[len("/etc/dre/"):])
    if p.startswith("/etc/systemd/system/"):
        return os.path.join(DEPLOY, "systemd", p[len("/etc/systemd/system/"):])
    return None


# ---- the deployments ---------------------------------------------------------

def systemd_procs():
    """Unit dre-X runs on host X, dre-evaluator@i on host eval-i
    (deploy/config/common.env)."""
    procs = []
    for unit in sorted(glob.glob(os.path.join(DEPLOY, "systemd", "*.service"))):
        text = read(unit)
        name = os.path.basename(unit)[:-len(".service")]
        instances = [None]
        if name.endswith("@"):
            # The header line names the instances: "dre-evaluator@0, @1, ...".
            instances = sorted(set(re.findall(r"@(\d+)", text.splitlines()[0])))
            assert instances, unit + ": the header names no instance"
        for inst in instances:
            env = {}
            for m in re.finditer(r"^EnvironmentFile=(-?)(\S+)$", text, re.M):
                optional, path = m.group(1) == "-", m.group(2)
                local = etc_path(path)
                if local and os.path.exists(local):
                    env.update(env_file(local))
                elif path == "/etc/dre/gateway.env":
                    env["DRE_AUTH_USERS"] = SECRET_USERS
                else:
                    assert optional, "%s: %s does not exist" % (unit, path)
            exec_start = re.search(r"^ExecStart=(.+)$", text, re.M).group(1)
            if inst is not None:
                exec_start = exec_start.replace("%i", inst)
            argv = shlex.split(exec_start)
            assert argv[0].startswith(PREFIX_BIN), unit + ": " + argv[0]
            argv = [etc_path(a) or a for a in argv]
            base = name.rstrip("@")[len("dre-"):]
            host = "eval-" + inst if base == "evaluator" else base
            procs.append(Proc("systemd " + name + (inst or ""), [host], argv, env))
    return procs


def compose_procs():
    doc = yaml.safe_load(read(os.path.join(DEPLOY, "compose", "compose.yaml")))
    image_env = dict(re.findall(r"^ENV (\w+)=(\S+)$",
                                read(os.path.join(DEPLOY, "Dockerfile")), re.M))
    procs, kafka = [], []
    for name, svc in doc["services"].items():
        env = dict(svc.get("environment") or {})
        if "KAFKA_ADVERTISED_LISTENERS" in env:
            kafka += re.findall(r"PLAINTEXT://([^,]+)", env["KAFKA_ADVERTISED_LISTENERS"])
            continue
        e = dict(image_env)
        e.update({k: str(v) for k, v in env.items()})
        procs.append(Proc("compose " + name, [name], svc["command"], e))
    return procs, kafka


def k8s_procs():
    docs = [d for d in yaml.safe_load_all(read(os.path.join(DEPLOY, "kubernetes", "dre.yaml"))) if d]
    maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    procs, kafka, secrets = [], [], set()
    for d in docs:
        if d["kind"] not in ("StatefulSet", "Deployment", "Job"):
            continue
        name, spec = d["metadata"]["name"], d["spec"]
        pod = spec["template"]["spec"]
        if d["kind"] == "StatefulSet":
            svc = services.get(spec["serviceName"])
            assert svc is not None, name + ": no Service " + spec["serviceName"]
            assert svc["spec"].get("clusterIP") == "None", name + ": Service not headless"
            ports = {p["port"] for p in svc["spec"]["ports"]}
            pods = ["%s-%d" % (name, k) for k in range(spec.get("replicas", 1))]
            hosts = [(p, "%s.%s" % (p, spec["serviceName"]), ports) for p in pods]
        else:
            hosts = [(name, name, set())]
        for c in pod["containers"]:
            env = {}
            for ef in c.get("envFrom", []):
                if "secretRef" in ef:
                    secrets.add(ef["secretRef"]["name"])
                    env["DRE_INTERNAL_KEY"] = SECRET_KEY
                else:
                    env.update(maps[ef["configMapRef"]["name"]])
            for ev in c.get("env", []):
                if "value" in ev:
                    env[ev["name"]] = str(ev["value"])
                else:
                    ref = ev["valueFrom"]["secretKeyRef"]
                    secrets.add(ref["name"])
                    env[ev["name"]] = SECRET_USERS
            if c["image"].startswith("apache/kafka"):
                for pod_name, fqdn, ports in hosts:
                    kafka += [a for a in re.findall(r"PLAINTEXT://([^,]+)",
                                                    env["KAFKA_ADVERTISED_LISTENERS"])]
                continue
            if d["kind"] != "Job":
                assert "readinessProbe" in c, name + ": no readinessProbe"
            assert "resources" in c and "requests" in c["resources"], name + ": no resources"
            sc = pod.get("securityContext", {})
            assert sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0, \
                name + ": not a non-root user"
            for pod_name, fqdn, ports in hosts:
                e = dict(env, HOSTNAME=pod_name)
                p = Proc("kubernetes " + pod_name, [fqdn], None, e)
                p.ports = ports
                if c.get("command") == ["/bin/sh", "-c"]:
                    p.shell = c["args"][0]
                else:
                    p.argv = (c.get("command") or []) + c["args"]
                procs.append(p)
    return procs, kafka, secrets


# ---- the checks ----------------------------------------------------------------

class DeployCheck(unittest.TestCase):
    def run_all(self, procs):
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(check_config, procs))
        for p, (rc, out, err) in zip(procs, results):
            self.assertEqual(rc, 0, "%s: --check-config exit %d\n%s" % (p, rc, err))
            self.assertRegex(out, r"(?m)^\w+: configuration OK$")
            p.cfg = parse_effective(out)

    def listeners(self, procs):
        ls = set()
        for p in procs:
            hp = nng_hostport(p.cfg.get("rpc.listen", ""))
            if hp is None:
                continue
            for h in p.hosts:
                if hp[0] in ("0.0.0.0", h):
                    ls.add((h, hp[1]))
        return ls

    def assert_dials(self, procs, kafka):
        ls = self.listeners(procs)
        for p in procs:
            for key, val in sorted(p.cfg.items()):
                if not (key.endswith(".url") or key.endswith(".urls")):
                    continue
                for url in val.split(","):
                    hp = nng_hostport(url)
                    self.assertIsNotNone(hp, "%s: %s = %s" % (p, key, url))
                    self.assertIn(hp, ls, "%s dials %s (%s); nothing listens there" %
                                  (p, url, key))
            if "http.port" in p.cfg:
                continue  # the gateway uses no Kafka
            boot = p.cfg.get("kafka.bootstrap.servers")
            self.assertIsNotNone(boot, "%s: no kafka.bootstrap.servers" % p)
            if kafka is not None:
                for a in boot.split(","):
                    self.assertIn(a, kafka, "%s: bootstrap %s is no broker" % (p, a))

    def assert_sharded(self, procs):
        """The gateway lists shard k at the address of the process that
        runs shard k."""
        shard_at = {}
        for p in procs:
            if "shard" in p.cfg and "rpc.listen" in p.cfg:
                port = nng_hostport(p.cfg["rpc.listen"])[1]
                for h in p.hosts:
                    shard_at[(h, port)] = int(p.cfg["shard"])
        gws = [p for p in procs if "evaluator.urls" in p.cfg]
        self.assertTrue(gws)
        for g in gws:
            urls = g.cfg["evaluator.urls"].split(",")
            self.assertEqual(len(urls), len(shard_at), g)
            for k, url in enumerate(urls):
                self.assertEqual(shard_at.get(nng_hostport(url)), k, "%s: %s" % (g, url))
            self.assertEqual(g.cfg["auth.users"] != "" or g.cfg["auth.dev_users"] == "true",
                             True, g)

    def test_systemd(self):
        procs = systemd_procs()
        self.assertEqual(len(procs), 10)  # 7 services, 2 shards, dre-topics
        self.run_all(procs)
        # Kafka is an existing cluster: every unit names the same one.
        boots = {p.cfg.get("kafka.bootstrap.servers") for p in procs if "http.port" not in p.cfg}
        self.assertEqual(len(boots), 1, boots)
        self.assert_dials(procs, boots.pop().split(","))
        self.assert_sharded(procs)
        # The units run what `cmake --install` lays out, as the image does.
        docker = read(os.path.join(DEPLOY, "Dockerfile"))
        self.assertIn("cmake --install /build --prefix /opt/dre", docker)
        self.assertIn("COPY --from=build /opt/dre/ /usr/local/", docker)
        self.assertRegex(docker, r"(?m)^USER dre$")
        gw = [p for p in procs if p.origin == "systemd dre-gateway"][0]
        self.assertEqual(gw.cfg["auth.dev_users"], "false")
        self.assertEqual(gw.cfg["auth.users"], "<set>")

    def test_compose(self):
        procs, kafka = compose_procs()
        self.assertEqual(kafka, ["kafka:9092"])
        self.run_all(procs)
        self.assert_dials(procs, kafka)
        self.assert_sharded(procs)
        self.assertIn("topics", [p.hosts[0] for p in procs])

    def test_kubernetes(self):
        procs, kafka, secrets = k8s_procs()
        self.assertEqual(kafka, ["kafka-0.kafka:9092"])
        self.run_all(procs)
        self.assert_dials(procs, kafka)
        self.assert_sharded(procs)
        # A dialled port is one the headless Service publishes.
        for p in procs:
            port = nng_hostport(p.cfg.get("rpc.listen", "")) if p.cfg.get("rpc.listen") else None
            if port and p.ports:
                self.assertIn(port[1], p.ports, p)
        # The operator creates the Secrets; the document says how.
        ops = read(os.path.join(SOURCE_DIR, "docs", "operating.md"))
        self.assertEqual(secrets, {"dre-gateway-users", "dre-internal"})
        for s in secrets:
            self.assertIn("kubectl create secret generic " + s, ops)
        gw = [p for p in procs if p.origin.startswith("kubernetes dre-gateway")][0]
        self.assertEqual(gw.cfg["auth.users"], "<set>")
        self.assertEqual(gw.cfg["auth.dev_users"], "false")

    def test_cited_files_exist(self):
        cited = 0
        names = {}  # file name -> a path of the source tree (no build dirs)
        for d, dirs, files in os.walk(SOURCE_DIR):
            dirs[:] = [x for x in dirs if not x.startswith((".", "build", "var"))]
            for f in files:
                names.setdefault(f, os.path.join(d, f))
        for path in sorted(glob.glob(os.path.join(DEPLOY, "**", "*"), recursive=True)):
            if os.path.isdir(path) or path.endswith(".json"):
                continue
            text = read(path)
            for m in re.finditer(r"(?<![\w./-])(-?)((?:/etc/dre/|/etc/systemd/system/)?"
                                 r"[\w./-]*\w\.(?:md|sh|ya?ml|avsc|conf|env|service|c))\b",
                                 text):
                optional, ref = m.group(1) == "-", m.group(2)
                if ref.startswith("/opt/kafka/") or optional or ref == "/etc/dre/gateway.env":
                    continue  # in the Kafka image; files the operator may add
                if ref.startswith("/etc/"):
                    local = etc_path(ref)
                elif "/" in ref:
                    local = os.path.join(SOURCE_DIR, ref)
                else:
                    local = names.get(ref, os.path.join(SOURCE_DIR, ref))
                cited += 1
                self.assertTrue(local and os.path.exists(local),
                                "%s cites %s, which does not exist" %
                                (os.path.relpath(path, SOURCE_DIR), ref))
        self.assertGreater(cited, 20)

    def test_topics_one_table(self):
        """dre-topics creates exactly the table of common/src/topics.c, which
        proto/EVENTS.md documents; against the dev broker (no Admin API in
        librdkafka's mock cluster) it fails with the reason, never hangs."""
        src = read(os.path.join(SOURCE_DIR, "common", "src", "topics.c"))
        hdr = read(os.path.join(SOURCE_DIR, "common", "include", "dre", "topics.h"))
        names = dict(re.findall(r'#define (DRE_TOPIC_\w+)\s+"([^"]+)"', hdr))
        want = []
        for m in re.finditer(r'\{ (DRE_TOPIC_\w+), (\d+), (\d+) \* DAY_MS,.*?"(delete|compact,delete)",'
                             r'\s*(?:NULL|"\w+") \}',
                             src, re.S):
            want.append("%s partitions=%s replication.factor=3 retention.ms=%d cleanup.policy=%s"
                        % (names[m.group(1)], m.group(2), int(m.group(3)) * 86400000, m.group(4)))
        self.assertEqual(len(want), len(names))
        r = subprocess.run([os.path.join(BIN_DIR, "dre-topics"), "-o", "topics.plan=true",
                            "-o", "topics.replication_factor=3"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual((r.returncode, r.stdout.decode().splitlines()), (0, want))
        events = read(os.path.join(SOURCE_DIR, "proto", "EVENTS.md"))
        for n in names.values():
            self.assertIn("`" + n + "`", events)
        # Without bootstrap servers: a configuration error.
        r = subprocess.run([os.path.join(BIN_DIR, "dre-topics")], env={"PATH": "/usr/bin:/bin"},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("kafka.bootstrap.servers", r.stderr.decode())
        tmp = tempfile.mkdtemp(prefix="dre-test-topics-")
        broker = subprocess.Popen(
            [os.path.join(BIN_DIR, "dre-broker"), "-o", "data_dir=" + tmp,
             "-o", "rpc.listen=ipc://" + tmp + "/ctl", "-o", "broker.topics=false"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=dict(os.environ, DRE_INTERNAL_KEY=SECRET_KEY))
        try:
            line = broker.stdout.readline().decode().strip()
            self.assertTrue(line.startswith("bootstrap="), line)
            r = subprocess.run([os.path.join(BIN_DIR, "dre-topics"),
                                "-o", "kafka.bootstrap.servers=" + line.split("=", 1)[1],
                                "-o", "topics.timeout_ms=1000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertIn("CreateTopics: ", r.stderr.decode())
            self.assertEqual(r.stdout.decode(), "topics: FAILED\n")
        finally:
            broker.terminate()
            broker.wait(timeout=30)
            broker.stdout.close()
            shutil.rmtree(tmp, ignore_errors=True)

    def test_check_config_errors(self):
        tmp = tempfile.mkdtemp(prefix="dre-test-check-")
        try:
            data = os.path.join(tmp, "never")
            base = {"DRE_DATA_DIR": data}
            cases = [
                (["dre-reporting", "-o", "reporting.url=tcp://x:1"], "unknown"),
                (["dre-budget", "-o", "rpc.listen=http://x:1"], "rpc.listen"),
                (["dre-evaluator", "-o", "catalog.url=tcp://catalog"], "catalog.url"),
                (["dre-gateway", "-o", "auth.dev_users=false"], "auth.users"),
                (["dre-gateway", "-o", "auth.users=alice:pw:NoSuchRole:T"], "auth.users"),
                (["dre-evaluator", "-o", "retention.iterations_ms=0"], "retention.iterations_ms"),
                (["dre-budget", "-o", "events.format=confluent"], "events.registry_url"),
                (["dre-budget", "-o", "events.format=avro"], "events.format"),
                (["dre-budget", "-o", "internal.key=abc"], "internal.key"),
            ]
            for argv, word in cases:
                rc, out, err = check_config(Proc("x", [], argv, base))
                self.assertEqual(rc, 2, "%s: %s" % (argv, err))
                self.assertIn(word, err, argv)
                self.assertNotIn("configuration OK", out)
            # Loopback by default; nothing is created.
            for svc in ("budget", "catalog", "coupon", "evaluator", "loyalty",
                        "reporting", "webhook", "broker"):
                rc, out, err = check_config(Proc(svc, [], ["dre-" + svc], base))
                self.assertEqual(rc, 0, err)
                self.assertRegex(parse_effective(out)["rpc.listen"], r"^tcp://127\.0\.0\.1:\d+$")
            rc, out, err = check_config(Proc("gw", [], ["dre-gateway"], base))
            self.assertEqual((rc, parse_effective(out)["http.bind"]), (0, "127.0.0.1"))
            self.assertFalse(os.path.exists(data))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
