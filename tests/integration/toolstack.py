# toolstack.py -- runs tools/stack (what `tools/dre run` execs) as the system
# under test, on its own HTTP port and nng port base, with its output in
# <data_dir>/stack.out; used by test_supervise and test_demo.
import base64
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile

import harness

AUTH = "Basic " + base64.b64encode(b"admin:admin").decode()


def pids_of(data_dir):
    """{service: pid} of the dre processes started for data_dir."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if ("data_dir=" + data_dir).encode() not in argv:
            continue
        name = os.path.basename(argv[0].decode())
        if name.startswith("dre-"):
            try:
                with open("/proc/%s/stat" % d) as f:
                    if f.read().split(")")[-1].split()[0] == "Z":
                        continue  # exited, not yet reaped
            except OSError:
                continue
            out[name[4:]] = int(d)
    return out


class ToolStack:
    """tools/stack started with DRE_DEMO=demo; rpc_bases is the range its nng
    port base is drawn from (tests running at once use different ranges), or
    None: internal calls over ipc:// sockets in the data dir (what `tools/dre
    run` does)."""

    def __init__(self, demo, rpc_bases=None):
        self.port = harness.free_port()
        self.data = tempfile.mkdtemp(prefix="dre-it-stack-")
        self.out_path = os.path.join(self.data, "stack.out")
        env = dict(os.environ, DRE_DATA_DIR=self.data, DRE_HTTP_PORT=str(self.port),
                   DRE_DEMO="1" if demo else "0")
        env.pop("DRE_RPC_PORT_BASE", None)
        if rpc_bases is not None:
            env["DRE_RPC_PORT_BASE"] = str(random.choice(rpc_bases))
        self._log = open(self.out_path, "wb")
        self.proc = subprocess.Popen(
            [os.path.join(harness.SOURCE_DIR, "tools", "stack"), harness.BIN_DIR],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.port

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def call(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = None if body is None else json.dumps(body).encode()
            hdrs = {"Authorization": AUTH}
            if data is not None:
                hdrs["Content-Type"] = "application/json"
            c.request(method, path, body=data, headers=hdrs)
            r = c.getresponse()
            raw = r.read()
            harness.record_answer(method, path, r.status,
                                  {k.lower(): v for k, v in r.getheaders()}, raw)
            return r.status, raw
        finally:
            c.close()

    def ok(self, method, path, body=None):
        try:
            return self.call(method, path, body)[0] == 200
        except OSError:
            return False

    def pids(self):
        return pids_of(self.data)

    def dump(self):
        sys.stderr.write(self.output()[-5000:])

    def kill(self):
        """SIGKILL the stack and every process it started."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in self.pids().values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()
