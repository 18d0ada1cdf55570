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
    odata_seeds()
    masterdata_seeds()
    rpc_seeds()


def rpc_seeds():
    """fuzz_rpc: packed RpcReply messages as a coalesced call's answer
    comes back -- status 200 and its answers (RpcReply.batch, field 9), a
    whole batch refused, answers with a body, headers and details, an
    unknown field -- hand-packed (the field numbers of proto/rpc.proto)."""
    def varint(v):
        v &= (1 << 64) - 1
        out = bytearray()
        while True:
            b = v & 0x7f
            v >>= 7
            out.append(b | (0x80 if v else 0))
            if not v:
                return bytes(out)

    def ld(field, data):
        if isinstance(data, str):
            data = data.encode()
        return varint(field << 3 | 2) + varint(len(data)) + data

    def reply(status, *fields):
        return varint(1 << 3) + varint(status) + b"".join(fields)
    ok = reply(200, ld(6, '{"totals":{}}'), ld(7, "application/json"))
    err = reply(400, ld(2, "VALIDATION_FAILED"), ld(3, "bad"),
                ld(4, "items[0]"), ld(5, ld(1, "X") + ld(3, "t")))
    hdr = reply(201, ld(8, ld(1, "Location") + ld(2, "/x/1")))
    write("rpc", "batch_two", reply(200, ld(9, ok), ld(9, err)))
    write("rpc", "batch_alone", reply(200, ld(9, reply(-1)), ld(9, hdr)))
    write("rpc", "refused_401", reply(401, ld(2, "UNAUTHORIZED")))
    write("rpc", "old_server_404", reply(404, ld(2, "NOT_FOUND")))
    write("rpc", "unknown_field", reply(200, ld(9, ok)) + varint(15 << 3) + varint(7)
          + varint(16 << 3 | 5) + b"abcd" + varint(17 << 3 | 1) + b"12345678")
    write("rpc", "single", ok)


def odata_seeds():
    """fuzz_odata: lines key=value, the query options of one list call as
    the integration tests send them (test_contract, test_approval_audit),
    over fuzz_odata.c's fields (id name price qty active validFrom note;
    tags and target only selectable)."""
    for i, q in enumerate([
            ["$filter=id eq 'a' and name eq 'O''Brien'", "$select=id,name"],
            ["$filter=(price ge 1.5 or contains(name,'caf')) and not active eq false",
             "$orderby=price desc,id", "$top=2", "$skip=1", "$count=true"],
            ["$filter=startswith(name,'Caf\u00e9') or qty lt -1", "$select=tags,target"],
            ["$filter=validFrom le '2026-01-01T00:00:00Z' and note eq null",
             "$orderby=validFrom asc,name desc"],
            ["$top=3", "$skip=0", "$count=false"],
            ["$filter=qty ne 3 and price gt 0.0001", "$orderby=qty", "$select=id,qty,price"],
            ["$filter=name eq '\u65e5\u672c\U0001f363' or id eq 'e'", "tenant=t1"],
            ["$filter=colour eq 'red'"],
            ["$filter=name eq"],
            ["$filter=(name eq 'x'"],
            ["$filter=name like 'x'"],
            ["$filter=" + "(" * 40 + "id eq 'a'"],
            ["$expand=tags"],
            ["$select=caf\u00e9\u00e9\u00e9,id"],
            ["$orderby=\u00fcber\u00fcber desc"],
            ["$top=-1"], ["$skip=99999999999999999999"], ["$count=yes"],
            ["$orderby=id,name,price,qty,active,validFrom,note,id,name"],
    ]):
        write("odata", "query_%02d" % i, "\n".join(q))


def masterdata_seeds():
    """fuzz_masterdata: DRFOUT messages as test_master_data.py sends them,
    SOAP 1.1 and 1.2 and the JSON form, and the refusals it checks."""
    def product(i, name="Cola &amp; Lemon"):
        return """
      <ProductMerchandiseView>
        <Product actionCode="04">
          <ProductID>ART-%d</ProductID>
          <Description>
            <Description languageCode="DE">%s (de)</Description>
            <Description languageCode="EN">%s</Description>
          </Description>
          <GlobalTradeItemNumber>40063813339%02d</GlobalTradeItemNumber>
          <MerchandiseCategoryID>FOOD01</MerchandiseCategoryID>
          <ManufacturerID>M-%d</ManufacturerID>
          <ManufacturerName>ACME &lt;Drinks&gt;</ManufacturerName>
          <BaseUnitOfMeasureCode>EA</BaseUnitOfMeasureCode>
        </Product>
      </ProductMerchandiseView>""" % (i, name, name, i, i)

    def soap(env, views, mid="MSG-1"):
        return """<?xml version="1.0" encoding="UTF-8"?>
<soap-env:Envelope xmlns:soap-env="%s">
  <soap-env:Header/>
  <soap-env:Body>
    <n0:ProductMerchandiseViewReplicationBulkRequest xmlns:n0="http://sap.com/xi/RTLDMF/Global2">
      <MessageHeader>
        <ID>%s</ID>
        <CreationDateTime>2026-12-06T07:30:00Z</CreationDateTime>
        <SenderBusinessSystemID>S4HCLNT100</SenderBusinessSystemID>
      </MessageHeader>%s
    </n0:ProductMerchandiseViewReplicationBulkRequest>
  </soap-env:Body>
</soap-env:Envelope>
""" % (env, mid, views)
    s11 = "http://schemas.xmlsoap.org/soap/envelope/"
    s12 = "http://www.w3.org/2003/05/soap-envelope"
    ok = soap(s11, product(0) + product(1))
    write("masterdata", "soap11", ok)
    write("masterdata", "soap12_utf8",
          soap(s12, product(7, "Caf\u00e9 \u65e5\u672c\U0001f363"), "MSG-\u00e9"))
    write("masterdata", "soap_plain_description", soap(s11, """
      <ProductMerchandiseView><Product><ProductID>1</ProductID>
        <Description>Plain</Description></Product></ProductMerchandiseView>
      <ProductMerchandiseView/>"""))
    head, rest = ok.split("\n", 1)
    write("masterdata", "soap_doctype",
          head + '\n<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n' + rest)
    write("masterdata", "soap_deep", ok.replace(
        "<BaseUnitOfMeasureCode>EA</BaseUnitOfMeasureCode>", "<X>" * 40 + "</X>" * 40))
    write("masterdata", "soap_mismatch", ok.replace("</ProductID>", "</ProductId>"))
    write("masterdata", "soap_not_envelope", "<Envelope><Body/></Envelope>")
    write("masterdata", "soap_other_request", ok.replace(
        "ProductMerchandiseViewReplicationBulkRequest", "SupplierReplicateBulkRequest"))
    write("masterdata", "soap_no_id", ok.replace("<ID>", "<Id>").replace("</ID>", "</Id>"))
    write("masterdata", "soap_latin1", soap(s11, product(2, "Caf\xe9")).replace(
        'encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("latin-1"))
    # Bytes the declared encoding cannot convert (libxml2 reports them
    # outside the parser's context).
    write("masterdata", "soap_bad_encoding",
          b'<?xml version="1.0" encoding="EUC-JP"?><a>\xff\xfe</a>')
    write("masterdata", "json_full", dumps({
        "MessageHeader": {"ID": "MSG-2", "SenderBusinessSystemID": "S4HCLNT100",
                          "CreationDateTime": "2026-12-06T07:30:00Z"},
        "ProductMerchandiseView": [
            {"Product": {"ProductID": "ART-1", "Description": [
                {"languageCode": "DE", "Description": "Cola (de)"},
                {"languageCode": "EN", "Description": "Cola \u00e9"}],
                "GlobalTradeItemNumber": "4006381333900", "MerchandiseCategoryID": "FOOD01",
                "ManufacturerID": "M-1", "ManufacturerName": "ACME <Drinks>"}},
            {"Product": {"ProductID": 42, "Description": "Plain"}}]}))
    write("masterdata", "json_one_view", dumps({
        "MessageHeader": {"ID": 7}, "ProductMerchandiseView": {"Product": {
            "ProductID": "A", "Description": {"Description": "D"}}}}))
    write("masterdata", "json_no_id", dumps({"ProductMerchandiseView": [{"Product": {}}]}))
    write("masterdata", "json_no_views", dumps({"MessageHeader": {"ID": "M"},
                                                "ProductMerchandiseView": []}))
    write("masterdata", "json_bad_product", dumps({"MessageHeader": {"ID": "M"},
                                                   "ProductMerchandiseView": [{"Product": 5}]}))
    write("masterdata", "json_array", "[1]")


if __name__ == "__main__":
    main()
