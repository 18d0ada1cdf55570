#!/usr/bin/env python3
# test_events_confluent.py -- events.format=confluent: every service
# registers the value schema of each topic with a schema registry at start
# (POST /subjects/<topic>-value/versions, the registry's REST protocol,
# spoken here by a small http.server) and writes the Confluent wire format
# (0x00 + 4-byte schema id + Avro body); the services read each other's
# events in it (a confirm's side effects complete); dre-events decodes
# them with the registry's schemas alone (GET /schemas/ids/<id>), with
# partition/offset selection, plain JSON (-j) and follow mode (-f).
import http.server
import json
import os
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BIN_DIR, D, SOURCE_DIR, uniq  # noqa: E402


class Registry(http.server.ThreadingHTTPServer):
    """The part of the schema registry's REST protocol DRE uses: one id per
    distinct schema text, versions per subject."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RegistryHandler)
        self.lock = threading.Lock()
        self.ids = {}  # schema text -> id
        self.subjects = {}  # subject -> [schema text]
        self.fetched = []  # ids asked for by GET /schemas/ids/<id>
        self.posts = []  # (path, content type)


class RegistryHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        r = self.server
        parts = self.path.split("/")
        n = int(self.headers.get("Content-Length", "0"))
        doc = json.loads(self.rfile.read(n))
        if len(parts) != 4 or parts[1] != "subjects" or parts[3] != "versions":
            return self.answer(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
        with r.lock:
            r.posts.append((self.path, self.headers.get("Content-Type")))
            text = doc["schema"]
            sid = r.ids.setdefault(text, len(r.ids) + 1)
            versions = r.subjects.setdefault(parts[2], [])
            if text not in versions:
                versions.append(text)
        self.answer(200, {"id": sid})

    def do_GET(self):
        r = self.server
        parts = self.path.split("/")
        if len(parts) == 4 and parts[1:3] == ["schemas", "ids"]:
            with r.lock:
                r.fetched.append(int(parts[3]))
                for text, sid in r.ids.items():
                    if sid == int(parts[3]):
                        return self.answer(200, {"schema": text})
        self.answer(404, {"error_code": 40403, "message": "Schema not found"})


REGISTRY = Registry()
threading.Thread(target=REGISTRY.serve_forever, daemon=True).start()
URL = "http://127.0.0.1:%d" % REGISTRY.server_address[1]
OPTS = {s: ["events.format=confluent", "events.registry_url=" + URL]
        for s in harness.KAFKA_SERVICES}


def topic_schemas():
    """{topic: schema file} from the topic table (common/src/topics.c)."""
    import re
    hdr = open(os.path.join(SOURCE_DIR, "common", "include", "dre", "topics.h")).read()
    names = dict(re.findall(r'#define (DRE_TOPIC_\w+)\s+"([^"]+)"', hdr))
    src = open(os.path.join(SOURCE_DIR, "common", "src", "topics.c")).read()
    return {names[m.group(1)]: m.group(2) for m in re.finditer(
        r'\{ (DRE_TOPIC_\w+),[^{}]*?"(\w+)" \}', src)}


class Confluent(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.shared_stack(opts=OPTS)

    def dre_events(self, *args, timeout=30):
        p = subprocess.run([os.path.join(BIN_DIR, "dre-events"), "-b", self.stack.bootstrap,
                            "-s", os.path.join(SOURCE_DIR, "proto"), "-r", URL,
                            "-w", "20000"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return [json.loads(l, parse_float=D) for l in p.stdout.decode().splitlines() if l]

    def sale(self):
        s = self.stack
        p, req = self.ten_off_basket()
        txn = uniq("TX")
        self.assertEval(s.evaluate(dict(req, header={"transactionId": txn})))
        self.assertOk(s.confirm(txn, 1, [{"promotionId": p["id"], "couponCode": None}]))
        return txn

    def test_schemas_registered_and_events_framed(self):
        want = topic_schemas()
        # Every topic with a schema: master data (promotions, articles, POS
        # groups, article groups, campaigns), sales (confirmed, returned),
        # side effects, budget status, budget / coupon / loyalty events,
        # import jobs.
        self.assertEqual(len(want), 13, sorted(want))
        with REGISTRY.lock:
            subjects = {k: [json.loads(t) for t in v] for k, v in REGISTRY.subjects.items()}
            types = {ct for _, ct in REGISTRY.posts}
        self.assertEqual(types, {"application/vnd.schemaregistry.v1+json"})
        self.assertEqual(set(subjects), {t + "-value" for t in want})
        for topic, name in want.items():
            avsc = json.load(open(os.path.join(SOURCE_DIR, "proto", name + ".avsc")))
            self.assertEqual(subjects[topic + "-value"], [avsc], topic)

        txn = self.sale()
        # The side effects complete: every consumer read the Confluent form.
        b = self.stack.wait_side_effects(txn, 1)
        self.assertEqual(b["status"], "COMPLETED")
        evs = [e for e in self.dre_events("-t", "dre.transactions.confirmed")
               if e["value"] and e["value"]["transactionId"] == txn]
        self.assertEqual(len(evs), 1)
        e = evs[0]
        with REGISTRY.lock:
            tc_id = [sid for text, sid in REGISTRY.ids.items()
                     if json.loads(text)["name"] == "TransactionConfirmed"]
            fetched = list(REGISTRY.fetched)
        self.assertEqual(e["schemaId"], tc_id[0])
        self.assertIn(tc_id[0], fetched)
        self.assertEqual(e["schema"], "dre.TransactionConfirmed")
        self.assertEqual(e["value"]["transactionCounter"], 1)
        # Partition and offset selection, plain JSON: the one value.
        one = self.dre_events("-t", "dre.transactions.confirmed", "-p", str(e["partition"]),
                              "-o", str(e["offset"]), "-j")
        self.assertEqual(one[0], e["value"])
        sfx = [x for x in self.dre_events("-t", "dre.sidefx.results")
               if x["value"] and x["value"]["transactionId"] == txn]
        self.assertEqual({x["value"]["service"] for x in sfx},
                         {"budget", "reporting", "coupon", "loyalty", "webhook"})
        self.assertTrue(all("schemaId" in x for x in sfx))

    def test_follow(self):
        f = subprocess.Popen([os.path.join(BIN_DIR, "dre-events"), "-b", self.stack.bootstrap,
                              "-r", URL, "-t", "dre.transactions.confirmed", "-o", "end",
                              "-f", "-j"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(iter(f.stdout.readline, b"")),
                                  daemon=True)
        reader.start()
        try:
            txn = None
            # -o end: only what is produced after it started; a sale made
            # before its assignment may be missed, so sell until one shows.
            def seen():
                nonlocal txn
                if txn is None or not any(json.loads(l)["transactionId"] == txn for l in lines):
                    txn = self.sale()
                    return False
                return True
            harness.wait_until(seen, 30, interval=0.5,
                               what="a followed event")
        finally:
            f.send_signal(signal.SIGTERM)
            rc = f.wait(timeout=30)
            reader.join(timeout=10)
            f.stdout.close()
            f.stderr.close()
        self.assertEqual(rc, 0)
        for l in lines:
            self.assertEqual(set(json.loads(l)) >= {"eventId", "transactionId"}, True)


if __name__ == "__main__":
    harness.main()
