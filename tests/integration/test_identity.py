#!/usr/bin/env python3
# test_identity.py -- identity and access (issue 13 points 1-4, 9): API
# clients and OAuth2 client-credentials tokens (RS256, JWKS, rotation),
# forged tokens, an external issuer's tokens, API keys (revoked at once on
# every gateway, also while many requests authenticate and tokens are
# issued), crypt(3) Basic users, roles and their 403s, the limit on failed
# credentials, and no secret in answers or logs.
import base64
import ctypes
import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ISO_RE, basket, item, uniq  # noqa: E402

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

EXT_ISS = "https://xsuaa.example.test"
EXT_AUD = "dre-app"
EXT_KID = "ext-1"
TMP = tempfile.mkdtemp(prefix="dre-identity-")


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_encode(claims, key, algorithm="RS256", headers=None):
    """A compact JWS made here (python3-cryptography), to forge tokens."""
    h = {"alg": algorithm, "typ": "JWT"}
    h.update(headers or {})
    si = b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(claims).encode())
    if algorithm == "RS256":
        sig = key.sign(si.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        sig = hmac.new(key, si.encode(), hashlib.sha256).digest()
    return si + "." + b64u(sig)


def crypt_hash(prefix, password):
    """A crypt(3) hash by libcrypt itself (crypt_gensalt + crypt)."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(prefix.encode(), 0, None, 0)
    return lib.crypt(password.encode(), salt).decode()


EXT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk_of(key, kid):
    n = key.public_key().public_numbers()
    def enc(i):
        return b64u(i.to_bytes((i.bit_length() + 7) // 8, "big"))
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": enc(n.n), "e": enc(n.e)}


JWKS_FILE = os.path.join(TMP, "ext-jwks.json")
with open(JWKS_FILE, "w") as f:
    json.dump({"keys": [jwk_of(EXT_KEY, EXT_KID),
                        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}]}, f)

YES_HASH = crypt_hash("$y$", "yes-pw")
SHA_HASH = crypt_hash("$6$", "sha-pw")
USERS = harness.EXTRA_USERS + (",hashed-y:%s:Admin:default,hashed-6:%s:POSReader:default"
                               % (YES_HASH, SHA_HASH))
GW_OPTS = ["auth.users=" + USERS,
           "auth.jwt.issuer=" + EXT_ISS,
           "auth.jwt.audience=" + EXT_AUD,
           "auth.jwt.jwks_file=" + JWKS_FILE,
           "auth.jwt.scope_prefix=myapp.",
           "auth.fail_limit=3",
           "auth.lockout_ms=1500"]


def stack():
    # API keys are leased for 250 ms (default 1 s): every revocation waits
    # that long before it is answered
    return harness.shared_stack(opts={"gateway": GW_OPTS,
                                      "catalog": ["auth.api_key_lease_ms=250"]})


def form_post(port, path, fields, auth=None, ctype="application/x-www-form-urlencoded",
              source=None):
    body = urllib.parse.urlencode(fields).encode()
    hdrs = {"Content-Type": ctype} if ctype else {}
    if auth is not None:
        hdrs["Authorization"] = auth
    return call(port, "POST", path, body, hdrs, source)


def call(port, method, path, body=None, headers=None, source=None):
    kw = {"source_address": (source, 0)} if source else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=harness.deadline(30), **kw)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        h = {k.lower(): v for k, v in resp.getheaders()}
        harness.record_answer(method, path, resp.status, h, raw)
        return harness.Response(resp.status, h, raw)
    finally:
        conn.close()


def tcp_open(port):
    try:
        return harness.Stack._tcp_open(None, port)
    except OSError:
        return False


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


class Base(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = stack()

    def create_client(self, roles, name=None, user="admin", **extra):
        doc = {"name": name or uniq("client"), "roles": roles}
        doc.update(extra)
        r = self.stack.post("/api/v1/ApiClients", doc, user=user)
        self.assertStatus(r, 201)
        return r.body

    def token(self, client, **fields):
        f = {"grant_type": "client_credentials", "client_id": client["clientId"],
             "client_secret": client["clientSecret"]}
        f.update(fields)
        r = form_post(self.stack.http_port, "/oauth/token", f)
        self.assertStatus(r, 200)
        return r.body["access_token"]

    def create_key(self, roles, user="admin"):
        r = self.stack.post("/api/v1/ApiKeys", {"name": uniq("till"), "roles": roles}, user=user)
        self.assertStatus(r, 201)
        return r.body

    def bearer_get(self, tok, path="/api/v1/Promotions", port=None):
        return call(port or self.stack.http_port, "GET", path,
                    headers={"Authorization": "Bearer " + tok})


class ApiClients(Base):
    def test_create_shows_the_secret_once(self):
        s = self.stack
        c = self.create_client(["PublicApiReader", "POSReader"], name="till-fleet",
                               expiresAt="2099-01-01T00:00:00Z")
        self.assertEqual(set(c), {"minorVersion", "id", "clientId", "clientSecret", "name",
                                  "roles", "expiresAt", "createdAt", "createdBy"})
        self.assertEqual(c["id"], c["clientId"])
        self.assertRegex(c["clientId"], r"^dre-[0-9a-f]{16}$")
        self.assertRegex(c["clientSecret"], r"^[A-Za-z0-9_-]{43}$")
        self.assertEqual(c["roles"], ["POSReader", "PublicApiReader"])
        self.assertEqual(c["name"], "till-fleet")
        self.assertEqual(c["createdBy"], "admin")
        self.assertRegex(c["createdAt"], ISO_RE)
        self.assertEqual(c["expiresAt"], "2099-01-01T00:00:00.000Z")
        got = s.get("/api/v1/ApiClients/" + c["id"])
        self.assertStatus(got, 200)
        shown = dict(c)
        del shown["clientSecret"]
        self.assertEqual(got.body, shown)
        lst = s.get("/api/v1/ApiClients")
        self.assertStatus(lst, 200)
        ids = [x["id"] for x in lst.body["value"]]
        self.assertIn(c["id"], ids)
        self.assertNotIn(c["clientSecret"], lst.text)
        self.assertNotIn("Hash", lst.text)
        # another tenant sees nothing of it
        self.assertError(s.get("/api/v1/ApiClients/" + c["id"], user="tenant-b-admin"),
                         404, "NOT_FOUND")
        self.assertNotIn(c["id"], s.get("/api/v1/ApiClients", user="tenant-b-admin").text)

    def test_validation_and_roles(self):
        s = self.stack
        r = s.post("/api/v1/ApiClients", {"name": "x", "roles": ["Root"]})
        self.assertError(r, 400, "VALIDATION_FAILED", "roles")
        r = s.post("/api/v1/ApiClients", {"name": "x", "roles": ["Admin"], "secret": "mine"})
        self.assertError(r, 400, "VALIDATION_FAILED", "secret")
        r = s.post("/api/v1/ApiClients", {"name": "", "roles": ["Admin"]})
        self.assertError(r, 400, "VALIDATION_FAILED", "name")
        r = s.post("/api/v1/ApiClients", {"name": "x", "roles": ["Admin"],
                                          "expiresAt": "2001-01-01T00:00:00Z"})
        self.assertError(r, 400, "VALIDATION_FAILED", "expiresAt")
        r = s.post("/api/v1/ApiClients", {"name": "x", "roles": ["Admin"]}, user="promo-manager")
        self.assertError(r, 403, "FORBIDDEN")
        self.assertEqual(r.body["error"]["message"],
                         "role Admin required to POST /api/v1/ApiClients")


class Tokens(Base):
    def test_token_by_form_and_by_basic(self):
        s = self.stack
        c = self.create_client(["PublicApiWriter"])
        f = {"grant_type": "client_credentials", "client_id": c["clientId"],
             "client_secret": c["clientSecret"]}
        r = form_post(s.http_port, "/oauth/token", f)
        self.assertStatus(r, 200)
        self.assertEqual(set(r.body), {"access_token", "token_type", "expires_in", "scope"})
        self.assertEqual(r.body["token_type"], "Bearer")
        self.assertEqual(r.body["expires_in"], 3600)
        self.assertEqual(r.body["scope"], "dre.PublicApiWriter")
        self.assertEqual(r.headers.get("cache-control"), "no-store")
        tok = r.body["access_token"]
        hdr = json.loads(b64u_dec(tok.split(".")[0]))
        claims = json.loads(b64u_dec(tok.split(".")[1]))
        self.assertEqual(hdr["alg"], "RS256")
        self.assertEqual(set(claims), {"iss", "aud", "sub", "client_id", "tenant", "iat",
                                       "exp", "jti", "scope"})
        self.assertEqual((claims["iss"], claims["aud"], claims["sub"], claims["tenant"]),
                         ("dre", "dre", c["clientId"], "default"))
        self.assertEqual(claims["exp"] - claims["iat"], 3600)
        # the same by HTTP Basic (RFC 6749 §2.3.1)
        r = form_post(s.http_port, "/oauth/token", {"grant_type": "client_credentials"},
                      auth=basic(c["clientId"], c["clientSecret"]))
        self.assertStatus(r, 200)
        tok2 = r.body["access_token"]
        # tokens work where Basic does, with the client's roles only
        self.assertStatus(self.bearer_get(tok), 200)
        self.assertStatus(self.bearer_get(tok2), 200)
        r = call(s.http_port, "POST", "/pos/v2/evaluate", b"{}",
                 {"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        self.assertError(r, 403, "FORBIDDEN")
        self.assertEqual(r.body["error"]["message"],
                         "role Admin or POSReader required to POST /pos/v2/evaluate")
        # the signing keys are public
        k = call(s.http_port, "GET", "/.well-known/jwks.json")
        self.assertStatus(k, 200)
        kids = [x["kid"] for x in k.body["keys"]]
        self.assertIn(hdr["kid"], kids)
        for x in k.body["keys"]:
            self.assertEqual((x["kty"], x["alg"], x["use"]), ("RSA", "RS256", "sig"))
            self.assertNotIn("d", x)
            self.assertNotIn("p", x)

    def test_token_errors_rfc6749(self):
        s = self.stack
        c = self.create_client(["Admin"])
        p = s.http_port

        def err(r, status, code):
            self.assertStatus(r, status)
            self.assertEqual(set(r.body), {"error", "error_description"})
            self.assertEqual(r.body["error"], code)
        err(form_post(p, "/oauth/token", {"client_id": c["clientId"],
                                          "client_secret": c["clientSecret"]}),
            400, "invalid_request")
        err(form_post(p, "/oauth/token", {"grant_type": "password", "client_id": c["clientId"],
                                          "client_secret": c["clientSecret"]}),
            400, "unsupported_grant_type")
        r = form_post(p, "/oauth/token", {"grant_type": "client_credentials"},
                      auth=basic(c["clientId"], "wrong-secret"))
        err(r, 401, "invalid_client")
        self.assertRegex(r.headers.get("www-authenticate", ""), r"^Basic realm=")
        err(form_post(p, "/oauth/token", {"grant_type": "client_credentials",
                                          "client_id": "dre-0000000000000000",
                                          "client_secret": "x"}), 401, "invalid_client")
        err(form_post(p, "/oauth/token", {"grant_type": "client_credentials",
                                          "client_id": c["clientId"],
                                          "client_secret": c["clientSecret"],
                                          "scope": "dre.BudgetManager"}), 400, "invalid_scope")
        err(form_post(p, "/oauth/token", {"grant_type": "client_credentials",
                                          "client_secret": c["clientSecret"]},
                      auth=basic(c["clientId"], c["clientSecret"])), 400, "invalid_request")
        r = form_post(p, "/oauth/token", {"grant_type": "client_credentials"}, ctype="application/json")
        self.assertError(r, 415, "UNSUPPORTED_MEDIA_TYPE")
        # a narrower scope gives a narrower token
        c2 = self.create_client(["Admin", "PublicApiReader"])
        tok = self.token(c2, scope="dre.PublicApiReader")
        self.assertEqual(json.loads(b64u_dec(tok.split(".")[1]))["scope"], "dre.PublicApiReader")
        self.assertError(s.request("POST", "/api/v1/ApiClients", None, user=None,
                                   raw=b'{"name":"x","roles":["Admin"]}',
                                   headers={"Authorization": "Bearer " + tok}),
                         403, "FORBIDDEN")

    def test_deleted_client_gets_no_token(self):
        s = self.stack
        c = self.create_client(["PublicApiReader"])
        self.token(c)
        r = s.request("DELETE", "/api/v1/ApiClients/" + c["id"])
        self.assertStatus(r, 204)
        r = form_post(s.http_port, "/oauth/token", {
            "grant_type": "client_credentials", "client_id": c["clientId"],
            "client_secret": c["clientSecret"]})
        self.assertStatus(r, 401)
        self.assertEqual(r.body["error"], "invalid_client")
        self.assertError(s.get("/api/v1/ApiClients/" + c["id"]), 404, "NOT_FOUND")

    def test_rotation(self):
        s = self.stack
        c = self.create_client(["Admin"])
        old = self.token(c)
        r = s.post("/api/v1/SigningKeys/rotate", user="tenant-b-admin")
        self.assertError(r, 403, "FORBIDDEN")
        r = s.post("/api/v1/SigningKeys/rotate")
        self.assertStatus(r, 200)
        kid = r.body["kid"]
        new = self.token(c)
        self.assertEqual(json.loads(b64u_dec(new.split(".")[0]))["kid"], kid)
        self.assertNotEqual(json.loads(b64u_dec(old.split(".")[0]))["kid"], kid)
        # the new key signs, the old one still verifies
        self.assertStatus(self.bearer_get(new), 200)
        self.assertStatus(self.bearer_get(old), 200)
        kids = [x["kid"] for x in call(s.http_port, "GET", "/.well-known/jwks.json").body["keys"]]
        self.assertIn(kid, kids)
        self.assertIn(json.loads(b64u_dec(old.split(".")[0]))["kid"], kids)


class Forged(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.stack.post("/api/v1/ApiClients", {"name": "forge", "roles": ["PublicApiReader"]})
        c = r.body
        cls.good = form_post(cls.stack.http_port, "/oauth/token", {
            "grant_type": "client_credentials", "client_id": c["clientId"],
            "client_secret": c["clientSecret"]}).body["access_token"]
        cls.own_kid = json.loads(b64u_dec(cls.good.split(".")[0]))["kid"]
        keys = call(cls.stack.http_port, "GET", "/.well-known/jwks.json").body["keys"]
        k = [x for x in keys if x["kid"] == cls.own_kid][0]
        pub = rsa.RSAPublicNumbers(int.from_bytes(b64u_dec(k["e"]), "big"),
                                   int.from_bytes(b64u_dec(k["n"]), "big")).public_key()
        cls.own_pem = pub.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)

    def refused(self, tok, what):
        r = self.bearer_get(tok)
        self.assertEqual(r.status, 401, "%s: %r" % (what, r))
        self.assertEqual(r.body["error"]["code"], "UNAUTHORIZED", what)

    def claims(self, **over):
        now = int(time.time())
        c = {"iss": "dre", "aud": "dre", "sub": "forger", "tenant": "default",
             "scope": "dre.Admin", "iat": now, "exp": now + 600}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def test_good_token_accepted(self):
        self.assertStatus(self.bearer_get(self.good), 200)

    def test_alg_none(self):
        h = b64u(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        p = b64u(json.dumps(self.claims()).encode())
        self.refused(h + "." + p + ".", "alg none")
        h2 = b64u(json.dumps({"alg": "none", "kid": self.own_kid}).encode())
        self.refused(h2 + "." + p + "." + self.good.split(".")[2], "alg none, kid")

    def test_changed_claims(self):
        h, p, sig = self.good.split(".")
        c = json.loads(b64u_dec(p))
        for k, v in (("tenant", "tenant-b"), ("scope", "dre.Admin"), ("exp", c["exp"] + 9999)):
            c2 = dict(c)
            c2[k] = v
            self.refused(h + "." + b64u(json.dumps(c2).encode()) + "." + sig, "changed " + k)

    def test_bad_signature(self):
        h, p, sig = self.good.split(".")
        raw = bytearray(b64u_dec(sig))
        raw[10] ^= 1
        self.refused(h + "." + p + "." + b64u(bytes(raw)), "flipped bit")
        self.refused(h + "." + p + ".", "empty signature")
        # a key of our own making under the deployment's kid
        t = jwt_encode(self.claims(), OTHER_KEY, algorithm="RS256",
                       headers={"kid": self.own_kid})
        self.refused(t, "other key, own kid")
        t = jwt_encode(self.claims(), OTHER_KEY, algorithm="RS256")
        self.refused(t, "other key, no kid")

    def test_key_confusion_hs256_with_public_key(self):
        for pem, kid, iss in ((self.own_pem, self.own_kid, "dre"),
                              (EXT_KEY.public_key().public_bytes(
                                  serialization.Encoding.PEM,
                                  serialization.PublicFormat.SubjectPublicKeyInfo), EXT_KID, EXT_ISS)):
            h = b64u(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
            p = b64u(json.dumps(self.claims(iss=iss, aud=EXT_AUD if iss == EXT_ISS else "dre",
                                            zid="default")).encode())
            mac = hmac.new(pem, (h + "." + p).encode(), hashlib.sha256).digest()
            self.refused(h + "." + p + "." + b64u(mac), "HS256 with the public key " + kid)
        # HS256 with the oct key of the JWKS file
        t = jwt_encode(self.claims(iss=EXT_ISS, aud=EXT_AUD), b"secret", algorithm="HS256",
                       headers={"kid": "hmac"})
        self.refused(t, "HS256 with a JWKS oct key")

    def ext(self, **over):
        c = self.claims(iss=EXT_ISS, aud=EXT_AUD, zid="default", tenant=None,
                        scope=["myapp.Admin"])
        c.update(over)
        c = {k: v for k, v in c.items() if v is not None}
        return jwt_encode(c, EXT_KEY, algorithm="RS256", headers={"kid": EXT_KID})

    def test_external_issuer(self):
        s = self.stack
        r = self.bearer_get(self.ext())
        self.assertStatus(r, 200)
        # the tenant is the zid claim: tenant-b's token sees tenant-b's data
        pid = harness.new_id()
        self.assertStatus(s.post("/api/v1/PosGroups", {"id": pid, "code": uniq("B"), "name": "b"},
                                 user="tenant-b-admin"), 201)
        self.assertStatus(self.bearer_get(self.ext(zid="tenant-b"), "/api/v1/PosGroups/" + pid), 200)
        self.assertEqual(self.bearer_get(self.ext(), "/api/v1/PosGroups/" + pid).status, 404)
        # scopes without the prefix give nothing; PublicApi.Read reads
        self.assertEqual(self.bearer_get(self.ext(scope="dre.Admin")).status, 403)
        self.assertStatus(self.bearer_get(self.ext(scope="myapp.PublicApi.Read")), 200)

    def test_claims_checked(self):
        now = int(time.time())
        self.refused(self.ext(exp=now - 120), "expired")
        self.refused(self.ext(exp=None), "no exp")
        self.refused(self.ext(nbf=now + 600), "not yet valid")
        self.refused(self.ext(aud="someone-else"), "wrong audience")
        self.refused(self.ext(aud=None), "no audience")
        self.refused(self.ext(iss="https://evil.example"), "wrong issuer")
        self.refused(self.ext(zid=None), "no tenant")
        # within the 60 s leeway
        self.assertStatus(self.bearer_get(self.ext(exp=now - 10)), 200)
        # the external key cannot sign for the deployment's issuer
        t = jwt_encode(self.claims(), EXT_KEY, algorithm="RS256", headers={"kid": EXT_KID})
        self.refused(t, "external key, own issuer")
        t = jwt_encode(self.claims(), EXT_KEY, algorithm="RS256", headers={"kid": self.own_kid})
        self.refused(t, "external key, own kid")
        self.refused("not-a-token", "garbage")
        self.refused("a.b.c", "garbage parts")


class ApiKeys(Base):
    def test_key_shown_once_and_used(self):
        s = self.stack
        k = self.create_key(["POSReader", "PublicApiReader"])
        self.assertEqual(set(k), {"minorVersion", "id", "prefix", "key", "name", "roles",
                                  "expiresAt", "createdAt", "createdBy"})
        self.assertRegex(k["key"], r"^dre_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
        self.assertEqual(k["prefix"], "dre_%s_" % k["id"])
        self.assertTrue(k["key"].startswith(k["prefix"]))
        lst = s.get("/api/v1/ApiKeys")
        self.assertIn(k["id"], [x["id"] for x in lst.body["value"]])
        self.assertNotIn(k["key"], lst.text)
        self.assertNotIn(k["key"][len(k["prefix"]):], lst.text)
        got = s.get("/api/v1/ApiKeys/" + k["id"])
        self.assertNotIn("key", got.body)
        self.assertNotIn("keyHash", got.body)
        p = s.http_port
        self.assertStatus(call(p, "GET", "/api/v1/Promotions", headers={"X-Api-Key": k["key"]}), 200)
        r = call(p, "GET", "/pos/heartbeat", headers={"X-Api-Key": k["key"]})
        self.assertIn(r.status, (200, 503))
        # apikey only on the /api/v3 facade, ?api_key= only on bridge routes
        r = call(p, "GET", "/api/v1/Promotions", headers={"apikey": k["key"]})
        self.assertError(r, 401, "UNAUTHORIZED")
        r = call(p, "GET", "/api/v3/contacts/" + uniq("m"), headers={"apikey": k["key"]})
        self.assertNotIn(r.status, (401, 403))
        r = call(p, "GET", "/api/v1/Promotions?api_key=" + k["key"])
        self.assertError(r, 401, "UNAUTHORIZED")
        # the roles of the key
        r = call(p, "POST", "/api/v1/Promotions", b"{}",
                 {"X-Api-Key": k["key"], "Content-Type": "application/json"})
        self.assertError(r, 403, "FORBIDDEN")
        self.assertEqual(r.body["error"]["message"],
                         "role Admin or PromotionManager or PublicApiWriter required to "
                         "POST /api/v1/:entity")
        # a wrong key
        bad = k["key"][:-4] + ("AAAA" if not k["key"].endswith("AAAA") else "BBBB")
        self.assertError(call(p, "GET", "/api/v1/Promotions", headers={"X-Api-Key": bad}),
                         401, "UNAUTHORIZED")

    def test_revoked_key_refused_by_the_next_request_on_every_gateway(self):
        s = self.stack
        k = self.create_key(["PublicApiReader"])
        port2 = harness.free_port()
        argv = s.argv("gateway")
        argv[argv.index("http.port=%d" % s.http_port)] = "http.port=%d" % port2
        log = open(os.path.join(s.log_dir, "gateway2.log"), "ab")
        g2 = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=s.data_dir,
                              start_new_session=True)
        try:
            harness.wait_until(lambda: tcp_open(port2), 10, what="second gateway")
            h = {"X-Api-Key": k["key"]}
            for port in (s.http_port, port2):
                self.assertStatus(call(port, "GET", "/api/v1/Promotions", headers=h), 200)
            self.assertStatus(s.request("DELETE", "/api/v1/ApiKeys/" + k["id"]), 204)
            for port in (s.http_port, port2):
                self.assertError(call(port, "GET", "/api/v1/Promotions", headers=h),
                                 401, "UNAUTHORIZED")
            self.assertError(s.request("DELETE", "/api/v1/ApiKeys/" + k["id"]), 404, "NOT_FOUND")
        finally:
            g2.terminate()
            g2.wait(10)
            log.close()


class KeyLease(harness.TestCase):
    """A gateway does not ask the catalog about an API key it accepted
    again until the key's lease (auth.api_key_lease_ms) runs out."""

    @classmethod
    def setUpClass(cls):
        cls.stack = harness.Stack(opts={"catalog": ["auth.api_key_lease_ms=5000"],
                                        "gateway": ["rpc.timeout_ms=1000"]})

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_an_accepted_key_needs_no_catalog_for_its_lease(self):
        s = self.stack
        r = s.post("/api/v1/ApiKeys", {"name": uniq("till"), "roles": ["POSReader"]})
        self.assertStatus(r, 201)
        h = {"X-Api-Key": r.body["key"], "Content-Type": "application/json"}
        req = basket(s.create_pos_group()["id"], [item("L1", uniq("ART"), 1, "2.00")])
        body = harness.dumps({"request": req}).encode()

        def simulate():
            return call(s.http_port, "POST", "/pos/v2/simulate", body, h).status
        self.assertEqual(simulate(), 200)  # accepted: leased for 5 s
        pid = s.procs["catalog"].pid
        harness.stall(pid)
        try:
            # within the lease the catalog is not asked
            self.assertEqual(simulate(), 200)
            # past it, it is, and does not answer
            harness.wait_until(lambda: simulate() == 503, 20, what="the lease run out")
        finally:
            os.kill(pid, signal.SIGCONT)
        harness.wait_until(lambda: simulate() == 200, 10, what="the catalog back")


class UnderLoad(Base):
    def test_keys_and_tokens_change_while_requests_authenticate(self):
        # Eight clients authenticate without pause (API keys, Bearer
        # tokens) while keys are created and revoked and tokens issued: a
        # key works from its creation's answer, is refused by the very next
        # request once its revocation is answered and by every request begun
        # after that; tokens work as soon as issued; no 5xx, no crash.
        s = self.stack
        p = s.http_port
        client = self.create_client(["PublicApiReader"])
        lock = threading.Lock()
        live = [("key", self.create_key(["PublicApiReader"])["key"])]  # (kind, credential)
        revoked = {}  # key -> monotonic time its DELETE was answered
        seen = []  # (key, start, status) of every request with a key revoked meanwhile
        uses = {}  # key -> requests it passed
        bad = []
        done = threading.Event()

        def headers(kind, cred):
            return {"X-Api-Key": cred} if kind == "key" else {"Authorization": "Bearer " + cred}

        def client_loop(n):
            i = n
            while not done.is_set():
                with lock:
                    pool = live + [("key", k) for k in revoked]
                kind, cred = pool[i % len(pool)]
                i += 7
                t0 = time.monotonic()
                st = call(p, "GET", "/api/v1/Promotions?$top=1", headers=headers(kind, cred)).status
                with lock:
                    if st == 200:
                        uses[cred] = uses.get(cred, 0) + 1
                    if kind == "key" and cred in revoked:
                        seen.append((cred, t0, st))
                    elif st != 200 and (kind != "key" or st not in (401, 429)):
                        bad.append((kind, st))
                    elif st != 200:  # a key revoked while this request ran
                        seen.append((cred, t0, st))

        def churn():
            try:
                for _ in range(12):
                    k = self.create_key(["PublicApiReader"])
                    h = headers("key", k["key"])
                    self.assertStatus(call(p, "GET", "/api/v1/Promotions?$top=1", headers=h), 200)
                    with lock:
                        live.append(("key", k["key"]))
                    harness.wait_until(lambda: uses.get(k["key"], 0) >= 3, 10,
                                       what="the clients using the new key")
                    with lock:
                        live.remove(("key", k["key"]))
                    self.assertStatus(s.request("DELETE", "/api/v1/ApiKeys/" + k["id"]), 204)
                    with lock:
                        revoked[k["key"]] = time.monotonic()
                    r = call(p, "GET", "/api/v1/Promotions?$top=1", headers=h)
                    self.assertIn(r.status, (401, 429), "revoked key accepted")
                for _ in range(20):
                    tok = self.token(client)
                    self.assertStatus(self.bearer_get(tok, "/api/v1/Promotions?$top=1"), 200)
                    with lock:
                        live.append(("token", tok))
            except Exception as e:  # noqa: BLE001 -- reported below
                bad.append(("churn", repr(e)))
            finally:
                done.set()

        threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(8)]
        threads.append(threading.Thread(target=churn))
        for t in threads:
            t.start()
        done.wait(harness.deadline(15))
        done.set()
        for t in threads:
            t.join(harness.deadline(30))
        self.assertEqual(bad, [])
        # After its revocation was answered, never accepted again.
        late = [(k[:16], st) for k, t0, st in seen if t0 >= revoked.get(k, 1e18) and st == 200]
        self.assertEqual(late, [])
        self.assertEqual([k[:16] for k, _, _ in seen if k not in revoked], [])
        self.assertGreater(len(seen), 0)
        self.assertStatus(call(p, "GET", "/healthz"), 200)


class Users(Base):
    def test_crypt_hashes(self):
        s = self.stack
        for user, pw in (("hashed-y", "yes-pw"), ("hashed-6", "sha-pw")):
            path = "/api/v1/Promotions" if user == "hashed-y" else "/pos/heartbeat"
            r = s.get(path, user=user, password=pw)
            self.assertIn(r.status, (200, 503), r)
            r = s.get(path, user=user, password=pw)  # the cached digest
            self.assertIn(r.status, (200, 503), r)
            self.assertError(s.get(path, user=user, password=pw + "x"), 401, "UNAUTHORIZED")
            # the hash itself is not a password
            self.assertError(s.get(path, user=user,
                                   password=YES_HASH if user == "hashed-y" else SHA_HASH),
                             401, "UNAUTHORIZED")

    def test_dev_user_per_role(self):
        s = self.stack
        for user, path, status in (("api-reader", "/api/v1/Promotions", 200),
                                   ("approver", "/api/v1/Promotions", 200),
                                   ("sync-service", "/api/v1/Promotions", 403),
                                   ("local-store", "/api/v1/Promotions", 403),
                                   ("md-ingester", "/api/v1/Promotions", 403)):
            r = s.get(path, user=user)
            self.assertEqual(r.status, status, "%s: %r" % (user, r))
        r = s.post("/api/v1/Promotions", {}, user="api-reader")
        self.assertError(r, 403, "FORBIDDEN")
        self.assertEqual(r.body["error"]["message"],
                         "role Admin or PromotionManager or PublicApiWriter required to "
                         "POST /api/v1/:entity")


class BruteForce(Base):
    def test_slowed_per_source_and_principal(self):
        s = self.stack
        p = s.http_port
        good = basic("approver", "approve")
        bad = basic("approver", "guess")
        for i in range(3):
            self.assertError(call(p, "GET", "/api/v1/Promotions", headers={"Authorization": bad}),
                             401, "UNAUTHORIZED")
        r = call(p, "GET", "/api/v1/Promotions", headers={"Authorization": good})
        self.assertError(r, 429, "RATE_LIMITED")
        self.assertIn(r.headers.get("retry-after"), ("1", "2"))
        # the same user from another address, another user from this one
        self.assertStatus(call(p, "GET", "/api/v1/Promotions", headers={"Authorization": good},
                               source="127.0.0.2"), 200)
        self.assertStatus(s.get("/api/v1/Promotions", user="api-reader"), 200)
        # and the wait is over after Retry-After
        harness.wait_until(lambda: call(p, "GET", "/api/v1/Promotions",
                                        headers={"Authorization": good}).status == 200,
                           5, interval=0.2, what="lockout over")
        # the token endpoint counts per client id
        for i in range(3):
            r = form_post(p, "/oauth/token", {"grant_type": "client_credentials",
                                              "client_id": "dre-bruteforce00000",
                                              "client_secret": "guess%d" % i})
            self.assertStatus(r, 401)
        r = form_post(p, "/oauth/token", {"grant_type": "client_credentials",
                                          "client_id": "dre-bruteforce00000",
                                          "client_secret": "guess"})
        self.assertError(r, 429, "RATE_LIMITED")
        self.assertIn("retry-after", r.headers)
        self.assertIn("auth-event event=login.failure_burst", s.log_text("gateway", 200000))


class NoSecretsInLogs(Base):
    def test_logs(self):
        s = self.stack
        c = self.create_client(["Admin"])
        tok = self.token(c)
        r = s.post("/api/v1/ApiKeys", {"name": "logcheck", "roles": ["Admin"]})
        key = r.body["key"]
        call(s.http_port, "GET", "/api/v1/Promotions", headers={"X-Api-Key": key})
        text = s.log_text("catalog", 10 ** 7) + s.log_text("gateway", 10 ** 7)
        for secret in (c["clientSecret"], key, key[len(r.body["prefix"]):], tok,
                       tok.split(".")[2]):
            self.assertNotIn(secret, text)
        self.assertIn("auth-event event=token.issued", text)
        self.assertIn("auth-event event=apikey.created", text)


if __name__ == "__main__":
    harness.main()
