// token.c -- JWT signing and verification with cjose (RS256 only), JWKS
// parsing, random secrets and their salted hashes with OpenSSL.
//
// A token is hostile until every check passed: its header's alg must be
// exactly RS256 before any key is chosen (no "none", no HS256 verified with
// an RSA public key as an HMAC secret), the key comes from our set by kid,
// and the claims are read only from a verified payload.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "dre/log.h"
#include "dre/token.h"

#define TOKEN_MAX 8192
#define JWKS_MAX  64

struct dre_jwks {
	cjose_jwk_t *keys[JWKS_MAX];
	size_t       n;
};

void
dre_jwks_free(dre_jwks *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; i < k->n; i++)
		cjose_jwk_release(k->keys[i]);
	free(k);
}

size_t
dre_jwks_count(const dre_jwks *k)
{
	return k != NULL ? k->n : 0;
}

dre_err
dre_jwks_parse(dre_jwks **out, const char *json, size_t len)
{
	json_error_t jerr;
	json_t      *root = json_loadb(json, len, 0, &jerr);
	json_t   *keys = root != NULL ? json_object_get(root, "keys") : NULL;
	dre_jwks *k;
	size_t    i;
	json_t   *v;

	if (!json_is_array(keys)) {
		json_decref(root);
		return DRE_EPARSE;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		json_decref(root);
		return DRE_ENOMEM;
	}
	json_array_foreach(keys, i, v)
	{
		const char *kty = json_string_value(json_object_get(v, "kty"));
		const char *alg = json_string_value(json_object_get(v, "alg"));
		const char *use = json_string_value(json_object_get(v, "use"));
		cjose_err   cerr;
		// Only signature keys for RS256: an "enc" key or one meant
		// for another algorithm verifies nothing here.
		if (kty == NULL || strcmp(kty, "RSA") != 0
		    || (alg != NULL && strcmp(alg, "RS256") != 0)
		    || (use != NULL && strcmp(use, "sig") != 0)
		    || k->n >= JWKS_MAX)
			continue;
		char *one = json_dumps(v, JSON_COMPACT);
		if (one == NULL)
			continue;
		cjose_jwk_t *jwk = cjose_jwk_import(one, strlen(one), &cerr);
		free(one);
		if (jwk == NULL) {
			dre_warn(
			    "jwks: key %zu not usable: %s", i, cerr.message);
			continue;
		}
		k->keys[k->n++] = jwk;
	}
	json_decref(root);
	*out = k;
	return DRE_OK;
}

dre_err
dre_jwk_generate(char **priv, const char *kid)
{
	static const uint8_t e[] = { 0x01, 0x00, 0x01 };
	cjose_err            cerr;
	cjose_jwk_t *jwk = cjose_jwk_create_RSA_random(2048, e, 3, &cerr);
	char        *json;

	if (jwk == NULL)
		return DRE_ENOMEM;
	if (!cjose_jwk_set_kid(jwk, kid, strlen(kid), &cerr)
	    || (json = cjose_jwk_to_json(jwk, true, &cerr)) == NULL) {
		cjose_jwk_release(jwk);
		return DRE_ENOMEM;
	}
	cjose_jwk_release(jwk);
	*priv = json;
	return DRE_OK;
}

dre_err
dre_jwk_public(char **pub, const char *priv)
{
	cjose_err    cerr;
	cjose_jwk_t *jwk = cjose_jwk_import(priv, strlen(priv), &cerr);
	char        *json;
	json_t      *o;

	if (jwk == NULL)
		return DRE_EPARSE;
	json = cjose_jwk_to_json(jwk, false, &cerr);
	cjose_jwk_release(jwk);
	if (json == NULL)
		return DRE_ENOMEM;
	o = json_loads(json, 0, NULL);
	free(json);
	if (o == NULL)
		return DRE_ENOMEM;
	json_object_set_new(o, "use", json_string("sig"));
	json_object_set_new(o, "alg", json_string("RS256"));
	*pub = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return *pub != NULL ? DRE_OK : DRE_ENOMEM;
}

dre_err
dre_jwt_sign(char **compact, const char *priv, const char *claims)
{
	cjose_err       cerr;
	cjose_jwk_t    *jwk = cjose_jwk_import(priv, strlen(priv), &cerr);
	cjose_header_t *hdr = NULL;
	cjose_jws_t    *jws = NULL;
	const char     *ser = NULL;
	dre_err         err = DRE_ENOMEM;

	if (jwk == NULL)
		return DRE_EPARSE;
	const char *kid = cjose_jwk_get_kid(jwk, &cerr);
	if ((hdr = cjose_header_new(&cerr)) == NULL
	    || !cjose_header_set(
	        hdr, CJOSE_HDR_ALG, CJOSE_HDR_ALG_RS256, &cerr)
	    || !cjose_header_set(hdr, "typ", "JWT", &cerr)
	    || (kid != NULL
	        && !cjose_header_set(hdr, CJOSE_HDR_KID, kid, &cerr)))
		goto out;
	jws = cjose_jws_sign(
	    jwk, hdr, (const uint8_t *) claims, strlen(claims), &cerr);
	if (jws == NULL || !cjose_jws_export(jws, &ser, &cerr))
		goto out;
	if ((*compact = strdup(ser)) != NULL)
		err = DRE_OK;
out:
	if (err != DRE_OK)
		dre_error("jwt: cannot sign: %s", cerr.message);
	cjose_jws_release(jws);
	cjose_header_release(hdr);
	cjose_jwk_release(jwk);
	return err;
}

// ---------------------------------------------------------------- verify

static bool
num_claim(json_t *claims, const char *name, int64_t *out)
{
	json_t *v = json_object_get(claims, name);
	if (json_is_integer(v)) {
		*out = (int64_t) json_integer_value(v);
		return true;
	}
	if (json_is_real(v)) {
		*out = (int64_t) json_real_value(v);
		return true;
	}
	return false;
}

static bool
aud_ok(json_t *claims, const char *audience)
{
	json_t *aud = json_object_get(claims, "aud");
	size_t  i;
	json_t *v;

	if (audience == NULL || audience[0] == '\0')
		return true;
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), audience) == 0;
	json_array_foreach(aud, i, v) if (json_is_string(v)
	    && strcmp(json_string_value(v), audience) == 0) return true;
	return false;
}

static uint32_t
scope_role(const char *s, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix);
	char   name[64];

	if (n <= pl || strncmp(s, prefix, pl) != 0 || n - pl >= sizeof(name))
		return 0;
	memcpy(name, s + pl, n - pl);
	name[n - pl] = '\0';
	// DRE-SPEC §7.3: the Public API's scopes by their own names.
	if (strcmp(name, "PublicApi.Read") == 0)
		return DRE_ROLE(PUBLIC_API_READER);
	if (strcmp(name, "PublicApi.Write") == 0)
		return DRE_ROLE(PUBLIC_API_WRITER);
	return dre_role_parse(name);
}

static uint32_t
scope_roles(json_t *claims, const char *prefix)
{
	json_t  *sc = json_object_get(claims, "scope");
	uint32_t roles = 0;
	size_t   i;
	json_t  *v;

	if (json_is_string(sc)) {
		const char *p = json_string_value(sc);
		while (*p != '\0') {
			size_t n = strcspn(p, " ");
			roles |= scope_role(p, n, prefix);
			p += n;
			while (*p == ' ')
				p++;
		}
	}
	json_array_foreach(sc, i, v) if (json_is_string(v)) roles
	    |= scope_role(
	        json_string_value(v), strlen(json_string_value(v)), prefix);
	return roles;
}

static bool
copy_claim(char *dst, size_t cap, json_t *v)
{
	const char *s = json_string_value(v);
	size_t      n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n >= cap)
		return false;
	memcpy(dst, s, n + 1);
	return true;
}

static dre_err
claims_check(json_t *c, const dre_jwt_rules *r, int64_t now,
    dre_principal *out, int64_t *expp)
{
	int64_t     exp, nbf, iat;
	const char *iss = json_string_value(json_object_get(c, "iss"));
	const char *tc = r->tenant_claim != NULL && r->tenant_claim[0] != '\0'
	    ? r->tenant_claim
	    : NULL;
	json_t     *tenant
	    = tc != NULL ? json_object_get(c, tc) : json_object_get(c, "zid");

	if (!json_is_object(c) || !num_claim(c, "exp", &exp)
	    || exp + r->leeway_s <= now)
		return DRE_EAUTH;
	if (expp != NULL)
		*expp = exp;
	if (num_claim(c, "nbf", &nbf) && nbf > now + r->leeway_s)
		return DRE_EAUTH;
	if (num_claim(c, "iat", &iat) && iat > now + r->leeway_s)
		return DRE_EAUTH;
	if (iss == NULL || r->issuer == NULL || strcmp(iss, r->issuer) != 0
	    || !aud_ok(c, r->audience))
		return DRE_EAUTH;
	if (tc == NULL && !json_is_string(tenant))
		tenant = json_object_get(c, "tenant");
	memset(out, 0, sizeof(*out));
	json_t *sub = json_object_get(c, "sub");
	if (!json_is_string(sub))
		sub = json_object_get(c, "client_id");
	if (!copy_claim(out->tenant, sizeof(out->tenant), tenant)
	    || !copy_claim(out->principal, sizeof(out->principal), sub))
		return DRE_EAUTH;
	out->roles = scope_roles(c,
	    r->scope_prefix != NULL && r->scope_prefix[0] != '\0'
	        ? r->scope_prefix
	        : "dre.");
	return DRE_OK;
}

dre_err
dre_jwt_verify(const dre_jwks *keys, const dre_jwt_rules *rules,
    const char *token, int64_t now_s, dre_principal *out, int64_t *exp)
{
	cjose_err          cerr;
	cjose_jws_t       *jws;
	const cjose_jwk_t *key = NULL;
	size_t             len;
	dre_err            err = DRE_EAUTH;

	if (keys == NULL || token == NULL
	    || (len = strnlen(token, TOKEN_MAX + 1)) > TOKEN_MAX)
		return DRE_EAUTH;
	if ((jws = cjose_jws_import(token, len, &cerr)) == NULL)
		return DRE_EAUTH;
	cjose_header_t *hdr = cjose_jws_get_protected(jws);
	const char     *alg = cjose_header_get(hdr, CJOSE_HDR_ALG, &cerr);
	const char     *kid = cjose_header_get(hdr, CJOSE_HDR_KID, &cerr);
	if (alg == NULL || strcmp(alg, CJOSE_HDR_ALG_RS256) != 0)
		goto out;
	for (size_t i = 0; i < keys->n && key == NULL; i++) {
		const char *k = cjose_jwk_get_kid(keys->keys[i], &cerr);
		if (kid == NULL ? keys->n == 1
		                : k != NULL && strcmp(k, kid) == 0)
			key = keys->keys[i];
	}
	if (key == NULL) {
		err = DRE_ENOTFOUND;
		goto out;
	}
	uint8_t *pt = NULL;
	size_t   ptlen = 0;
	if (!cjose_jws_verify(jws, key, &cerr)
	    || !cjose_jws_get_plaintext(jws, &pt, &ptlen, &cerr))
		goto out;
	json_t *claims = json_loadb((const char *) pt, ptlen, 0, NULL);
	err = claims != NULL ? claims_check(claims, rules, now_s, out, exp)
	                     : DRE_EAUTH;
	json_decref(claims);
out:
	cjose_jws_release(jws);
	return err;
}

// ---------------------------------------------------------------- secrets

dre_err
dre_random_b64url(char *out, size_t cap, size_t n)
{
	static const char abc[]
	    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
	      "wxyz0123456789-_";
	unsigned char raw[64];
	size_t        o = 0;
	uint32_t      acc = 0;
	int           bits = 0;

	if (n > sizeof(raw) || cap < (4 * n + 2) / 3 + 1)
		return DRE_EINVAL;
	if (RAND_bytes(raw, (int) n) != 1)
		return DRE_EIO;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = abc[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = abc[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return DRE_OK;
}

static void
hex(char *out, const unsigned char *b, size_t n)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

dre_err
dre_random_hex(char *out, size_t cap, size_t n)
{
	unsigned char raw[64];
	if (n > sizeof(raw) || cap < 2 * n + 1)
		return DRE_EINVAL;
	if (RAND_bytes(raw, (int) n) != 1)
		return DRE_EIO;
	hex(out, raw, n);
	return DRE_OK;
}

// salted_sha256 writes SHA-256(salt || secret) as hex into out[65].
static bool
salted_sha256(char *out, const char *salt, const char *secret)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int  mdlen = 0;
	EVP_MD_CTX   *ctx = EVP_MD_CTX_new();
	bool          ok = ctx != NULL
	    && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
	    && EVP_DigestUpdate(ctx, salt, strlen(salt)) == 1
	    && EVP_DigestUpdate(ctx, secret, strlen(secret)) == 1
	    && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
	EVP_MD_CTX_free(ctx);
	if (ok)
		hex(out, md, 32);
	return ok;
}

dre_err
dre_secret_hash(char *out, size_t cap, const char *secret)
{
	char    salt[33], h[65];
	dre_err err;

	if (cap < DRE_SECRET_HASH_LEN + 1)
		return DRE_EINVAL;
	if ((err = dre_random_hex(salt, sizeof(salt), 16)) != DRE_OK)
		return err;
	if (!salted_sha256(h, salt, secret))
		return DRE_ENOMEM;
	snprintf(out, cap, "sha256$%s$%s", salt, h);
	return DRE_OK;
}

bool
dre_secret_verify(const char *secret, const char *stored)
{
	char salt[33], h[65];

	if (secret == NULL || stored == NULL
	    || strlen(stored) != DRE_SECRET_HASH_LEN
	    || strncmp(stored, "sha256$", 7) != 0 || stored[7 + 32] != '$')
		return false;
	memcpy(salt, stored + 7, 32);
	salt[32] = '\0';
	if (!salted_sha256(h, salt, secret))
		return false;
	return CRYPTO_memcmp(h, stored + 7 + 33, 64) == 0;
}
