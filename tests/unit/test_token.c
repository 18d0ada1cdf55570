// test_token.c -- JWT signing and verification (dre/token.h), JWKS,
// secret hashes, crypt(3) Basic users, role texts.
#include <crypt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <cmocka.h>

#include "dre/auth.h"
#include "dre/hmac.h"
#include "dre/token.h"

#define NOW 1800000000

static char     *priv;
static dre_jwks *keys;

static const dre_jwt_rules rules = { .issuer = "dre",
	.audience = "dre",
	.tenant_claim = "tenant",
	.scope_prefix = "dre.",
	.leeway_s = 60 };

static int
setup(void **state)
{
	char *pub = NULL, doc[4096];
	(void) state;
	if (dre_jwk_generate(&priv, "k1") != DRE_OK
	    || dre_jwk_public(&pub, priv) != DRE_OK)
		return -1;
	// An oct key and an encryption key next to it are not used.
	snprintf(doc, sizeof doc,
	    "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"},%s]"
	    "}",
	    pub);
	free(pub);
	return dre_jwks_parse(&keys, doc, strlen(doc)) == DRE_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	(void) state;
	free(priv);
	dre_jwks_free(keys);
	return 0;
}

static char *
sign(const char *claims)
{
	char **slot = calloc(1, sizeof(*slot));
	assert_non_null(slot);
	assert_int_equal(dre_jwt_sign(slot, priv, claims), DRE_OK);
	char *tok = *slot;
	free(slot);
	return tok;
}

static char *
claims(const char *extra)
{
	static char buf[1024];
	snprintf(buf, sizeof buf,
	    "{\"iss\":\"dre\",\"aud\":\"dre\",\"sub\":\"client-1\","
	    "\"tenant\":\"t1\",\"scope\":\"dre.POSReader dre.PublicApi.Read "
	    "other.Admin\",\"iat\":%d,\"exp\":%d%s}",
	    NOW, NOW + 3600, extra);
	return buf;
}

static dre_err
verify(const char *tok, dre_principal *p)
{
	int64_t exp = 0;
	return dre_jwt_verify(keys, &rules, tok, NOW, p, &exp);
}

static void
test_roundtrip(void **state)
{
	dre_principal p;
	int64_t       exp = 0;
	(void) state;
	assert_int_equal(dre_jwks_count(keys), 1);
	char *tok = sign(claims(""));
	assert_int_equal(
	    dre_jwt_verify(keys, &rules, tok, NOW, &p, &exp), DRE_OK);
	assert_string_equal(p.principal, "client-1");
	assert_string_equal(p.tenant, "t1");
	assert_int_equal(
	    p.roles, DRE_ROLE(POS_READER) | DRE_ROLE(PUBLIC_API_READER));
	assert_int_equal(exp, NOW + 3600);
	// exp within the leeway, then past it
	assert_int_equal(
	    dre_jwt_verify(keys, &rules, tok, NOW + 3650, &p, NULL), DRE_OK);
	assert_int_equal(
	    dre_jwt_verify(keys, &rules, tok, NOW + 3661, &p, NULL),
	    DRE_EAUTH);
	free(tok);
}

static void
test_claims_refused(void **state)
{
	dre_principal p;
	(void) state;
	const char *docs[] = {
		"{\"iss\":\"dre\",\"aud\":\"x\",\"sub\":\"c\",\"tenant\":"
		"\"t\","
		"\"exp\":1900000000}",
		"{\"iss\":\"evil\",\"aud\":\"dre\",\"sub\":\"c\",\"tenant\":"
		"\"t\","
		"\"exp\":1900000000}",
		"{\"iss\":\"dre\",\"aud\":[\"a\",\"b\"],\"sub\":\"c\","
		"\"tenant\":\"t\",\"exp\":1900000000}",
		"{\"iss\":\"dre\",\"aud\":\"dre\",\"sub\":\"c\",\"tenant\":"
		"\"t\"}",
		"{\"iss\":\"dre\",\"aud\":\"dre\",\"sub\":\"c\",\"tenant\":"
		"\"t\","
		"\"exp\":1900000000,\"nbf\":1800000100}",
		"{\"iss\":\"dre\",\"aud\":\"dre\",\"sub\":\"c\","
		"\"exp\":1900000000}",
		"{\"iss\":\"dre\",\"aud\":\"dre\",\"tenant\":\"t\","
		"\"exp\":1900000000}",
		"[1,2]",
	};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		char *tok = sign(docs[i]);
		if (verify(tok, &p) != DRE_EAUTH)
			fail_msg("accepted: %s", docs[i]);
		free(tok);
	}
	char *tok
	    = sign("{\"iss\":\"dre\",\"aud\":[\"a\",\"dre\"],\"sub\":\"c\","
	           "\"tenant\":\"t\",\"exp\":1900000000}");
	assert_int_equal(verify(tok, &p), DRE_OK);
	free(tok);
}

static char *
b64u(const char *s)
{
	char     *out = NULL;
	size_t    n = 0;
	cjose_err err;
	assert_true(cjose_base64url_encode(
	    (const uint8_t *) s, strlen(s), &out, &n, &err));
	return out;
}

static void
test_forged(void **state)
{
	dre_principal p;
	char          buf[4096];
	(void) state;
	char *tok = sign(claims(""));
	char *dot = strchr(tok, '.'), *dot2 = strchr(dot + 1, '.');
	// alg none, with and without the real signature
	char *h = b64u("{\"alg\":\"none\",\"kid\":\"k1\"}");
	snprintf(buf, sizeof buf, "%s%.*s.", h, (int) (dot2 - dot), dot);
	assert_int_equal(verify(buf, &p), DRE_EAUTH);
	snprintf(buf, sizeof buf, "%s%s", h, dot);
	assert_int_equal(verify(buf, &p), DRE_EAUTH);
	free(h);
	// HS256 (whatever the MAC)
	h = b64u("{\"alg\":\"HS256\",\"kid\":\"k1\"}");
	snprintf(buf, sizeof buf, "%s%s", h, dot);
	assert_int_equal(verify(buf, &p), DRE_EAUTH);
	free(h);
	// another payload under the signature
	char *pl = b64u(claims(",\"x\":1"));
	snprintf(
	    buf, sizeof buf, "%.*s.%s%s", (int) (dot - tok), tok, pl, dot2);
	assert_int_equal(verify(buf, &p), DRE_EAUTH);
	free(pl);
	// a key id we do not have
	h = b64u("{\"alg\":\"RS256\",\"kid\":\"k9\"}");
	snprintf(buf, sizeof buf, "%s%s", h, dot);
	assert_int_equal(verify(buf, &p), DRE_ENOTFOUND);
	free(h);
	// garbage
	assert_int_equal(verify("", &p), DRE_EAUTH);
	assert_int_equal(verify("a.b.c", &p), DRE_EAUTH);
	assert_int_equal(verify("....", &p), DRE_EAUTH);
	free(tok);
}

static void
test_jwks_parse(void **state)
{
	dre_jwks *k = NULL;
	(void) state;
	assert_int_equal(dre_jwks_parse(&k, "{}", 2), DRE_EPARSE);
	assert_int_equal(dre_jwks_parse(&k, "nope", 4), DRE_EPARSE);
	const char *d = "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\"}]}";
	assert_int_equal(dre_jwks_parse(&k, d, strlen(d)), DRE_OK);
	assert_int_equal(dre_jwks_count(k), 0);
	dre_jwks_free(k);
}

static void
test_secrets(void **state)
{
	char a[DRE_SECRET_LEN + 1], h[DRE_SECRET_HASH_LEN + 1],
	    h2[DRE_SECRET_HASH_LEN + 1];
	(void) state;
	assert_int_equal(dre_random_b64url(a, sizeof a, 32), DRE_OK);
	assert_int_equal(strlen(a), DRE_SECRET_LEN);
	assert_int_equal(dre_secret_hash(h, sizeof h, a), DRE_OK);
	assert_int_equal(dre_secret_hash(h2, sizeof h2, a), DRE_OK);
	assert_string_not_equal(h, h2); // salted
	assert_true(dre_secret_verify(a, h));
	assert_true(dre_secret_verify(a, h2));
	a[0] ^= 1;
	assert_false(dre_secret_verify(a, h));
	assert_false(dre_secret_verify(a, "sha256$short"));
	assert_null(strstr(h, a));
}

static void
test_crypt_users(void **state)
{
	char  setting[CRYPT_GENSALT_OUTPUT_SIZE], users[512];
	char *h6, *hy;
	(void) state;
	assert_non_null(
	    crypt_gensalt_rn("$6$", 0, NULL, 0, setting, sizeof setting));
	h6 = strdup(crypt("pw6", setting));
	assert_non_null(
	    crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof setting));
	hy = strdup(crypt("pw:y", setting));
	snprintf(
	    users, sizeof users, "u6:%s:Admin:t1,uy:%s:POSReader:t2", h6, hy);
	dre_auth     *a = NULL;
	dre_principal p;
	assert_int_equal(dre_auth_open(&a, users, false), DRE_OK);
	// u6:pw6, uy:pw:y
	assert_int_equal(dre_auth_check(a, "Basic dTY6cHc2", &p), DRE_OK);
	assert_string_equal(p.tenant, "t1");
	assert_int_equal(dre_auth_check(a, "Basic dTY6cHc2", &p), DRE_OK);
	assert_int_equal(dre_auth_check(a, "Basic dXk6cHc6eQ==", &p), DRE_OK);
	assert_int_equal(p.roles, DRE_ROLE(POS_READER));
	// u6:pw7, uy:pw6
	assert_int_equal(dre_auth_check(a, "Basic dTY6cHc3", &p), DRE_EAUTH);
	assert_int_equal(dre_auth_check(a, "Basic dXk6cHc2", &p), DRE_EAUTH);
	dre_auth_close(a);
	free(h6);
	free(hy);

	char u[16], pw[16];
	assert_true(dre_auth_basic_split(
	    "Basic dXk6cHc6eQ==", u, sizeof u, pw, sizeof pw));
	assert_string_equal(u, "uy");
	assert_string_equal(pw, "pw:y");
	assert_false(dre_auth_basic_split("Bearer x", u, sizeof u, NULL, 0));
	char roles[128];
	assert_string_equal(
	    dre_roles_text(DRE_ROLE(ADMIN) | DRE_ROLE(POS_READER), " or ",
	        roles, sizeof roles),
	    "Admin or POSReader");
}

static void
test_sha256(void **state)
{
	unsigned char d[32];
	char          hex[65];
	(void) state;
	// FIPS 180-2 examples
	assert_true(dre_sha256(d, "abc", 3));
	dre_hex(hex, d, 32);
	assert_string_equal(hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"
	    "d");
	assert_true(dre_sha256(d, "", 0));
	dre_hex(hex, d, 32);
	assert_string_equal(hex,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"
	    "5");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_claims_refused),
		cmocka_unit_test(test_forged),
		cmocka_unit_test(test_jwks_parse),
		cmocka_unit_test(test_secrets),
		cmocka_unit_test(test_crypt_users),
		cmocka_unit_test(test_sha256),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
