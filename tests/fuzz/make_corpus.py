#!/usr/bin/env python3
"""make_corpus.py -- (re)writes the checked-in seed corpus of the fuzz
targets from the golden scenarios and the integration test data. Run by hand
when the inputs change: python3 tests/fuzz/make_corpus.py build/fuzz/fuzz/avro_seeds

A few dozen small files per target; libFuzzer grows its own copy in a
scratch directory (tools/dre fuzz), never this one. Inputs that once
crashed a target are kept as crash_<what> and replayed by ctest."""
import glob
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
# Indexes into fuzz_avro.c's writers[] (framed inputs).
AVRO_WRITERS = {"master": 0, "tx_confirmed": 2, "sfx_result": 3,
                "budget_status": 4, "budget_event": 5, "coupon_event": 6,
                "return_event": 7}


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def dumps(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_corpus.py PATH/TO/avro_seeds")
    # Regression inputs (crash_*) are kept; everything else is rewritten.
    for path in glob.glob(os.path.join(CORPUS, "*", "*")):
        if not os.path.basename(path).startswith("crash_"):
            os.remove(path)
    scen = sorted(glob.glob(os.path.join(SRC, "tests/scenarios/*.json")))
    rnd = random.Random(9)
    picked = rnd.sample(scen, 24)
    for path in sorted(picked):
        s = json.load(open(path))
        n = os.path.basename(path)[:3]
        write("evalwire", "scenario_%s" % n, dumps({"request": s["request"]}))
        for i, p in enumerate(s["promotions"][:2]):
            write("promo", "scenario_%s_%d" % (n, i), dumps(p))
    for path in sorted(scen)[:12]:
        s = json.load(open(path))
        write("json", "scenario_%s" % os.path.basename(path)[:3],
              dumps({"request": s["request"], "promotions": s["promotions"]}))
    for path in sorted(glob.glob(os.path.join(SRC, "tests/integration/data/*.json"))):
        name = os.path.basename(path)[:-5]
        text = open(path, encoding="utf-8").read()
        write("json", name, text)
        if name.endswith("request"):
            write("evalwire", name, text)
        if name.endswith("promotion"):
            write("promo", name, text)
    # JSON edge cases: escapes, surrogate pairs, exponents, depth, empties.
    for i, t in enumerate([
            '{"a":"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/","b":[1e3,-0.5,1E-2,0]}',
            '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
            '{"":null,"x":true,"y":false,"z":{}}', ' [ ] ', '"\\u0000"',
            '123456789012345678901234567890.123456789', '{"k":"\xe2\x82\xac"}']):
        write("json", "edge_%02d" % i, t)
    # Confirm bodies (seed 002 ConfirmRequest).
    pid = "10000000-0000-4000-8000-000000000001"
    write("evalwire", "confirm_full", dumps({"request": {
        "header": {"transactionId": "TX-1", "transactionCounter": 2},
        "transactionId": "TX-1", "posGroupCode": "STORE-001",
        "customerId": "C-1", "timestamp": "2026-06-07T14:30:00Z",
        "appliedPromotions": [{"promotionId": pid, "couponCode": "CPN-1",
                               "discountAmount": {"value": 18.00, "currency": "EUR"},
                               "totalDiscount": 18.00}],
        "items": [{"lineReference": "L1", "articleNumber": "ART-1001",
                   "quantity": 2, "unitPrice": 89.99}]}}))
    write("evalwire", "confirm_minimal", dumps({"request": {
        "header": {"transactionId": "TX-2", "transactionCounter": 1},
        "transactionId": "TX-2", "appliedPromotions": []}}))
    # Avro: every event as written, and its body behind a schema byte.
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.argv[1], tmp], check=True)
        for name in sorted(os.listdir(tmp)):
            data = open(os.path.join(tmp, name), "rb").read()
            write("avro", name, data)
            w = AVRO_WRITERS[name.split("_")[0] if name.startswith("master") else name]
            write("avro", name + "_framed", bytes([w]) + data[10:])
            if name == "master_upsert":  # the same body as an old writer
                write("avro", name + "_v1_framed", bytes([1]) + data[10:])
    # Engine: bytes are choices; random ones of a few sizes.
    for i in range(24):
        write("engine", "random_%02d" % i,
              bytes(rnd.getrandbits(8) for _ in range(16 + 24 * i)))


if __name__ == "__main__":
    main()
