#!/usr/bin/env python3
# test_demo.py -- a newcomer's first requests answer what the page that sent
# them promised: tools/stack (what `tools/dre run` execs) loads the demo data
# and prints example curls, each with the figures its answer shows; the test
# runs every printed curl (through bash and the real curl) and every evaluate
# curl of README.md against that stack and checks each promised figure.
import json
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import toolstack  # noqa: E402

# "-> subtotal 179.98, 33.00 off, 28 loyalty points, MUG granted free"
PROMISE = re.compile(r"-> subtotal (\d+\.\d\d), (\d+\.\d\d) off((?:, [^,\n]+)*)")


def promise_of(text):
    m = PROMISE.search(text)
    if not m:
        return None
    p = {"subtotal": m.group(1), "discount": m.group(2), "loyaltyPointsEarned": 0,
         "grantedItems": []}
    for part in filter(None, (x.strip() for x in m.group(3).split(","))):
        if part.endswith(" loyalty points"):
            p["loyaltyPointsEarned"] = int(part.split()[0])
        elif part.endswith(" granted free"):
            p["grantedItems"].append(part.split()[0])
        else:
            raise AssertionError("unknown promise %r" % part)
    return p


def printed_examples(out):
    """[(promise, curl command)] from the stack's banner."""
    found = []
    for block in out.split("  try it: ")[1:]:
        lines = block.splitlines()
        promise = promise_of("\n".join(lines[:3]))
        start = next(i for i, l in enumerate(lines) if l.strip().startswith("curl "))
        cmd = []
        for line in lines[start:]:
            cmd.append(line)
            if not line.endswith("\\"):
                break
        found.append((promise, "\n".join(cmd)))
    return found


def readme_examples(base_url):
    """[(promise, curl command)] of the evaluate curls in README.md."""
    with open(os.path.join(harness.SOURCE_DIR, "README.md")) as f:
        text = f.read()
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        if "/pos/v2/evaluate" not in block:
            continue
        cmd = block[block.index("curl "):block.index("\n#")] if "\n#" in block else block
        found.append((promise_of(block), cmd.replace("http://127.0.0.1:8080", base_url)))
    return found


class Demo(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        pass  # no harness stack: tools/stack is the system under test

    def check(self, promise, cmd, where):
        self.assertIsNotNone(promise, "%s: no '-> subtotal …, … off' line for %s" % (where, cmd))
        r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True,
                           timeout=harness.deadline(30))
        self.assertEqual(r.returncode, 0, r.stderr)
        body = json.loads(r.stdout)
        t = body["totals"]
        got = {"subtotal": "%.2f" % t["subtotal"]["value"],
               "discount": "%.2f" % t["discount"]["value"],
               "loyaltyPointsEarned": t["savingsSummary"]["loyaltyPointsEarned"],
               "grantedItems": [g["articleNumber"] for g in body["grantedItems"]]}
        self.assertEqual(got, promise, "%s: %s" % (where, cmd))

    def test_printed_curls_answer_what_they_promise(self):
        st = toolstack.ToolStack(demo=True)  # ipc://, as `tools/dre run`
        try:
            harness.wait_until(lambda: "Ctrl-C stops everything" in st.output(), 120,
                               what="the stack to start and print its banner")
            out = st.output()
            # Internal calls went over unix sockets in the data dir, not
            # ports: every service listens on its own.
            socks = sorted(os.listdir(os.path.join(st.data, "rpc")))
            self.assertEqual(socks, sorted("%s.sock" % n for n in (
                "broker", "budget", "catalog", "coupon", "evaluator-0",
                "loyalty", "reporting", "webhook")))
            self.assertNotIn("note: the demo promotions are not applied yet", out)
            printed = printed_examples(out)
            self.assertEqual(len(printed), 2, out)
            for promise, cmd in printed:
                self.check(promise, cmd, "tools/stack banner")
            from_readme = readme_examples(st.base_url)
            self.assertGreaterEqual(len(from_readme), 1, "README.md has no evaluate curl")
            for promise, cmd in from_readme:
                self.check(promise, cmd, "README.md")
            st.proc.send_signal(signal.SIGTERM)
            self.assertEqual(st.proc.wait(timeout=harness.deadline(60)), 143)
        except BaseException:
            st.dump()
            raise
        finally:
            st.kill()


if __name__ == "__main__":
    harness.main()
