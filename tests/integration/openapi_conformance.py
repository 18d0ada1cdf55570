#!/usr/bin/env python3
# openapi_conformance.py -- validates every HTTP answer the integration tests
# received (harness.py records them in DRE_IT_RECORD_DIR) against
# proto/openapi.yaml: the operation (method + path template), the status, the
# media type, the body (python3-jsonschema, Draft 4 after converting the
# OpenAPI 3.0 schema dialect) and the documented headers. ctest runs it after
# every integration test (fixture cleanup of dre_it_answers); it fails on any
# mismatch and when nothing was recorded.
#
# Usage: openapi_conformance.py [record-dir]   (default $DRE_IT_RECORD_DIR)
import collections
import decimal
import glob
import json
import multiprocessing
import os
import re
import sys
import urllib.parse
import uuid

import jsonschema
import yaml

SOURCE_DIR = os.environ.get(
    "DRE_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
DOC = os.path.join(SOURCE_DIR, "proto", "openapi.yaml")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Recorded response headers that must be documented on the response when
# they are sent (harness.RECORD_HEADERS minus content-type, checked as the
# media type).
CHECKED_HEADERS = ("etag", "dre-propagation", "dre-ignored-fields",
                   "retry-after", "www-authenticate", "location")
# What the unit-less JSON keywords of OpenAPI 3.0 become in Draft 4.
DROPPED = ("nullable", "readOnly", "writeOnly", "example", "examples",
           "deprecated", "xml", "externalDocs", "discriminator")

DATE_TIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

FORMATS = jsonschema.FormatChecker(formats=())


class Loader(yaml.SafeLoader):
    """YAML without implicit timestamps, as proto/openapi_embed.py reads it
    for GET /openapi.json: an unquoted date stays a string."""


Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load_doc(path=DOC):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)


@FORMATS.checks("date-time")
def _date_time(v):
    return not isinstance(v, str) or DATE_TIME_RE.match(v) is not None


@FORMATS.checks("date")
def _date(v):
    return not isinstance(v, str) or DATE_RE.match(v) is not None


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(v):
    if isinstance(v, str):
        uuid.UUID(v)
    return True


def convert(s, closed=True):
    """Returns the Draft 4 form of an OpenAPI 3.0 schema object: nullable
    becomes a "null" type (or an anyOf), component $refs point into
    definitions, multipleOf is exact (Decimal), and an object schema with
    properties but no additionalProperties is closed (an undocumented field
    is a mismatch)."""
    if isinstance(s, list):
        return [convert(x, closed) for x in s]
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k in DROPPED or k.startswith("x-"):
            continue
        if k == "$ref":
            out[k] = v.replace("#/components/schemas/", "#/definitions/")
        elif k in ("properties", "patternProperties", "definitions"):
            out[k] = {n: convert(x, closed) for n, x in v.items()}
        elif k == "multipleOf":
            out[k] = decimal.Decimal(str(v))
        elif k in ("enum", "default", "required"):
            out[k] = v
        else:
            out[k] = convert(v, closed)
    if closed and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if s.get("nullable"):
        if "$ref" in out or "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
        else:
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = list(out["enum"]) + [None]
    return out


def segments(path):
    """The gateway's view of a path (routes.c split_path): no query, no
    empty segments, Entity(key) and Entity('key') as two segments."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    out = []
    for s in path.split("/"):
        if not s:
            continue
        s = urllib.parse.unquote(s)
        i = s.find("(")
        if i > 0 and s.endswith(")"):
            key = s[i + 1:-1]
            if len(key) >= 2 and key[0] == "'" and key[-1] == "'":
                key = key[1:-1]
            out += [s[:i], key]
        else:
            out.append(s)
    return out


class Doc:
    def __init__(self, path):
        self.doc = load_doc(path)
        comps = self.doc.get("components", {})
        self.defs = {n: convert(x) for n, x in comps.get("schemas", {}).items()}
        self.responses = comps.get("responses", {})
        self.headers = comps.get("headers", {})
        self.templates = []
        for p, item in self.doc["paths"].items():
            segs = [s for s in p.split("/") if s]
            literal = sum(1 for s in segs if not s.startswith("{"))
            self.templates.append((segs, literal, p, item))
        self.unrouted = self.doc.get("x-dre-unrouted", {})
        self._validators = {}

    def resolve(self, obj):
        while isinstance(obj, dict) and "$ref" in obj:
            ref = obj["$ref"]
            assert ref.startswith("#/"), ref
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part]
            obj = node
        return obj

    def match(self, method, path):
        """(template, operation) for method and path; operation is None when
        the path exists under other methods only, template None when no
        path matches."""
        segs = segments(path)
        best = None
        for tsegs, literal, p, item in self.templates:
            if len(tsegs) != len(segs):
                continue
            if all(t.startswith("{") or t == s for t, s in zip(tsegs, segs)):
                if best is None or literal > best[1]:
                    best = (tsegs, literal, p, item)
        if best is None:
            return None, None
        return best[2], best[3].get(method.lower())

    def validator(self, key, schema):
        v = self._validators.get(key)
        if v is None:
            full = dict(convert(schema))
            full["definitions"] = self.defs
            v = jsonschema.Draft4Validator(full, format_checker=FORMATS)
            self._validators[key] = v
        return v


def check(doc, a):
    """Returns (operation name, problems) for one recorded answer."""
    method, path, status = a["method"], a["path"], a["status"]
    template, op = doc.match(method, path)
    if op is not None:
        name = op.get("operationId", "%s %s" % (method, template))
        responses = op.get("responses", {})
    else:
        # No operation: the gateway answers 404 (no such path) or 405 (the
        # path exists under another method), or refused the request before
        # routing it; the document lists those answers in x-dre-unrouted.
        name = "(unrouted %s)" % ("405" if template else "404")
        responses = doc.unrouted
    resp = responses.get(str(status))
    if resp is None:
        return name, ["status %d not documented (documented: %s)" % (
            status, ", ".join(sorted(responses)) or "none")]
    resp = doc.resolve(resp)
    problems = []
    hdrs = a["headers"]
    documented = {k.lower(): doc.resolve(v)
                  for k, v in resp.get("headers", {}).items()}
    for h in CHECKED_HEADERS:
        if h in hdrs and h not in documented:
            problems.append("header %s not documented" % h)
    for h, spec in documented.items():
        if h not in hdrs:
            if spec.get("required"):
                problems.append("header %s missing" % h)
            continue
        if "schema" in spec:
            val = hdrs[h]
            if spec["schema"].get("type") == "integer":
                if not re.match(r"^\d+$", val):
                    problems.append("header %s: %r not an integer" % (h, val))
                    continue
                val = int(val)
            errs = list(doc.validator(("header", h, json.dumps(spec["schema"])),
                                      spec["schema"]).iter_errors(val))
            if errs:
                problems.append("header %s: %s" % (h, errs[0].message.replace(
                    repr(val), "value")))
    content = resp.get("content")
    body = a["body"]
    if not content:
        if body:
            problems.append("a body where none is documented")
        return name, problems
    ctype = hdrs.get("content-type", "").split(";")[0].strip().lower()
    media = content.get(ctype)
    if media is None:
        problems.append("content type %r not documented (%s)" % (
            ctype, ", ".join(content)))
        return name, problems
    schema = media.get("schema")
    if schema is None:
        problems.append("no schema for %s" % ctype)
        return name, problems
    if ctype == "application/json":
        try:
            inst = json.loads(body, parse_float=decimal.Decimal)
        except ValueError:
            problems.append("body is not JSON")
            return name, problems
    else:
        inst = body
    key = (name, str(status), ctype)
    v = doc.validator(key, schema)
    for e in sorted(v.iter_errors(inst), key=lambda e: list(e.absolute_path))[:5]:
        where = "".join("[%r]" % p if isinstance(p, int) else ".%s" % p
                        for p in e.absolute_path) or "$"
        problems.append("body %s: %s" % (where, e.message[:300]))
    return name, problems


_DOC = None


def _worker_init():
    global _DOC
    _DOC = Doc(DOC)


def _worker_check(a):
    return check(_DOC, a)


def main():
    rec_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "DRE_IT_RECORD_DIR")
    if not rec_dir:
        sys.exit("FAIL: DRE_IT_RECORD_DIR is not set")
    doc = Doc(DOC)
    answers = []
    for fn in sorted(glob.glob(os.path.join(rec_dir, "*.jsonl"))):
        with open(fn, encoding="utf-8") as f:
            for line in f:
                # A test killed mid-write leaves a partial last line.
                try:
                    answers.append(json.loads(line))
                except ValueError:
                    pass
    if not answers:
        sys.exit("FAIL: no answers recorded in %s: run it with the "
                 "integration tests (ctest -L integration)" % rec_dir)
    per_op = collections.OrderedDict()
    bad = collections.Counter()
    examples = {}
    # Identical answers are checked once; the rest on every core (the
    # validation is most of this test's time: ~30,000 answers, 60 MB).
    unique = {}
    for a in answers:
        k = (a["method"], a["path"], a["status"],
             json.dumps(a["headers"], sort_keys=True), a["body"])
        unique.setdefault(k, a)
    work = list(unique.values())
    procs = max(1, min(os.cpu_count() or 1, 4))
    if procs > 1 and len(work) > 1000:
        with multiprocessing.Pool(procs, _worker_init) as pool:
            verdicts = pool.map(_worker_check, work, chunksize=256)
    else:
        verdicts = [check(doc, a) for a in work]
    verdict_of = {id(a): v for a, v in zip(work, verdicts)}
    for a in answers:
        k = (a["method"], a["path"], a["status"],
             json.dumps(a["headers"], sort_keys=True), a["body"])
        name, problems = verdict_of[id(unique[k])]
        st = per_op.setdefault(name, collections.Counter())
        st[a["status"]] += 1
        for p in problems:
            k = (name, a["status"], p)
            bad[k] += 1
            examples.setdefault(k, a)
    ops = {}
    for p, item in doc.doc["paths"].items():
        for m in METHODS:
            if m in item:
                ops[item[m].get("operationId", "%s %s" % (m, p))] = (m, p)
    print("%d answers (%d distinct) from %d files checked against %s" % (
        len(answers), len(work), len(glob.glob(os.path.join(rec_dir, "*.jsonl"))),
        DOC))
    for name in sorted(per_op):
        st = per_op[name]
        print("  %-40s %5d  %s" % (name, sum(st.values()), " ".join(
            "%d:%d" % (s, n) for s, n in sorted(st.items()))))
    unseen = sorted(n for n in ops if n not in per_op)
    if unseen:
        print("operations no test called (%d): %s" % (len(unseen),
                                                       ", ".join(unseen)))
    if bad:
        print("\n%d mismatches (%d distinct):" % (sum(bad.values()), len(bad)))
        for (name, status, p), n in sorted(bad.items()):
            a = examples[(name, status, p)]
            print("  %s %d x%d: %s\n      e.g. %s %s (%s) %s %s" % (
                name, status, n, p, a["method"], a["path"][:120], a["test"],
                json.dumps(a["headers"]), a["body"][:300]))
        sys.exit(1)
    print("0 mismatches")


if __name__ == "__main__":
    main()
