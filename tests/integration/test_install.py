#!/usr/bin/env python3
# test_install.py -- `cmake --install` lays out a prefix that runs on its
# own: the programs in bin/, libdre_common in lib/ (found through the
# programs' RPATH, $ORIGIN/../lib, not the build tree), the published
# contracts (Avro schemas, EVENTS.md, openapi.yaml) and the browser console
# in share/dre/; every installed service answers --help and --version (the
# project() version).
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN_DIR, SOURCE_DIR  # noqa: E402

BUILD_DIR = os.environ.get("DRE_BUILD_DIR", os.path.dirname(BIN_DIR))
CMAKE = os.environ.get("DRE_CMAKE", "cmake")
SERVICES = ["budget", "catalog", "coupon", "evaluator", "gateway", "reporting"]
TOOLS = ["dre-broker", "dre-events", "dre-topics"]  # built unless DRE_TOOLS=OFF


def project_version():
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
        m = re.search(r"project\(dre VERSION ([0-9.]+)", f.read())
    return m.group(1)


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dre-test-install-")
        # Moved after installing: nothing may point into the first prefix.
        first = os.path.join(cls.tmp, "first")
        p = subprocess.run([CMAKE, "--install", BUILD_DIR, "--prefix", first],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=300)
        if p.returncode != 0:
            raise AssertionError("cmake --install failed:\n" + p.stdout.decode())
        cls.prefix = os.path.join(cls.tmp, "moved")
        os.rename(first, cls.prefix)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_installed(self, name, *args):
        env = dict(os.environ)
        env.pop("LD_LIBRARY_PATH", None)
        return subprocess.run([os.path.join(self.prefix, "bin", name)] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, timeout=60)

    def test_layout(self):
        bins = set(os.listdir(os.path.join(self.prefix, "bin")))
        for svc in SERVICES:
            self.assertIn("dre-" + svc, bins)
        for t in TOOLS:
            if os.path.exists(os.path.join(BIN_DIR, t)):
                self.assertIn(t, bins)
        self.assertTrue(os.path.exists(
            os.path.join(self.prefix, "lib", "libdre_common.so")))
        share = os.path.join(self.prefix, "share", "dre")
        want = {os.path.basename(f)
                for f in glob.glob(os.path.join(SOURCE_DIR, "proto", "*.avsc"))}
        want |= {"EVENTS.md", "openapi.yaml"}
        self.assertTrue(want)
        self.assertEqual(want - set(os.listdir(share)), set())
        with open(os.path.join(share, "openapi.yaml"), "rb") as a, \
                open(os.path.join(SOURCE_DIR, "proto", "openapi.yaml"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        # The browser console, where the gateway's console.dir default
        # (share/dre/console beside bin/) finds it.
        console = os.path.join(share, "console")
        for n in ("index.html", "console.css", "app.js", "chart.js"):
            with open(os.path.join(console, n), "rb") as a, open(os.path.join(
                    SOURCE_DIR, "services", "gateway", "console", n), "rb") as b:
                self.assertEqual(a.read(), b.read(), n)

    def test_services_run_from_the_prefix(self):
        version = project_version()
        for svc in SERVICES:
            name = "dre-" + svc
            p = self.run_installed(name, "--version")
            self.assertEqual(p.returncode, 0, name + ": " + p.stderr.decode())
            self.assertEqual(p.stdout.decode().strip(), name + " " + version)
            p = self.run_installed(name, "--help")
            self.assertEqual(p.returncode, 0, name + ": " + p.stderr.decode())
            self.assertIn("usage: ", p.stdout.decode())

    def test_libdre_common_from_the_prefix(self):
        self.assertIsNotNone(shutil.which("ldd"), "ldd (libc-bin) is needed")
        lib = os.path.join(self.prefix, "lib", "libdre_common.so")
        env = dict(os.environ)
        env.pop("LD_LIBRARY_PATH", None)
        for svc in SERVICES:
            p = subprocess.run(["ldd", os.path.join(self.prefix, "bin", "dre-" + svc)],
                               stdout=subprocess.PIPE, env=env, timeout=60)
            line = [x for x in p.stdout.decode().splitlines()
                    if "libdre_common" in x]
            self.assertEqual(len(line), 1, p.stdout.decode())
            resolved = line[0].split("=>")[1].split("(")[0].strip()
            self.assertEqual(os.path.realpath(resolved), os.path.realpath(lib))


if __name__ == "__main__":
    unittest.main(verbosity=2)
