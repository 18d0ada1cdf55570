// token.h -- credentials that are not configured passwords: RS256 JWTs (RFC
// 7519/7515, signed and verified by cjose, keys as JWK/JWKS), and random
// secrets (API client secrets, API keys) kept only as salted SHA-256 hashes
// (OpenSSL EVP). No signature or hash code of our own.
#ifndef DRE_TOKEN_H
#define DRE_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/auth.h"
#include "dre/err.h"

// ---------------------------------------------------------------- keys

// A set of RSA public keys by kid (a JWKS document).
typedef struct dre_jwks dre_jwks;

// dre_jwks_parse reads {"keys": [...]}; keys that are not RSA are skipped.
// DRE_EPARSE on a malformed document. Caller frees with dre_jwks_free().
dre_err dre_jwks_parse(dre_jwks **out, const char *json, size_t len);
void    dre_jwks_free(dre_jwks *k);
size_t  dre_jwks_count(const dre_jwks *k);

// dre_jwk_generate makes a new RSA-2048 key named kid; *priv is its private
// JWK JSON (caller frees with free()).
dre_err dre_jwk_generate(char **priv, const char *kid);
// dre_jwk_public writes the public half of the private JWK JSON priv into
// *pub (JSON, caller frees with free()), with "use":"sig","alg":"RS256".
dre_err dre_jwk_public(char **pub, const char *priv);

// ---------------------------------------------------------------- JWT

typedef struct {
	const char *issuer; // required value of iss
	const char *audience; // required among aud
	const char *tenant_claim; // NULL or "": zid, then tenant
	// Scopes "<prefix><Role>" give roles (PublicApi.Read / .Write too);
	// NULL or "": "dre.".
	const char *scope_prefix;
	int64_t     leeway_s; // exp / nbf / iat tolerance
} dre_jwt_rules;

// dre_jwt_verify checks a compact JWS: alg exactly RS256 (none, HS*, any
// other refused before a key is looked at), a key of keys by its kid (or
// the only key when the token names none), the signature, exp (required),
// nbf, iss, aud and a tenant; the principal is sub, the roles its scopes.
// *exp (when not NULL) is the token's exp. DRE_ENOTFOUND when keys has no
// key of that kid (try another set / refresh the keys), DRE_EAUTH on
// anything else wrong.
dre_err dre_jwt_verify(const dre_jwks *keys, const dre_jwt_rules *rules,
    const char *token, int64_t now_s, dre_principal *out, int64_t *exp);

// dre_jwt_sign signs the claims (a JSON object) with the private JWK JSON
// priv (its kid goes into the header); *compact is the token (caller frees
// with free()).
dre_err dre_jwt_sign(char **compact, const char *priv, const char *claims);

// ---------------------------------------------------------------- secrets

#define DRE_SECRET_LEN 43 // 32 random bytes, base64url without padding
#define DRE_SECRET_HASH_LEN                                                   \
	(7 + 32 + 1 + 64) // "sha256$" salt-hex "$" hash-hex
// dre_random_b64url fills out with n random bytes, base64url (no padding);
// out holds 4 * n / 3 + 2 bytes at least.
dre_err dre_random_b64url(char *out, size_t cap, size_t n);
// dre_random_hex fills out with n random bytes as hex (2n + 1 bytes).
dre_err dre_random_hex(char *out, size_t cap, size_t n);
// dre_secret_hash writes "sha256$<salt>$<SHA-256(salt || secret)>" (hex)
// into out (DRE_SECRET_HASH_LEN + 1 bytes).
dre_err dre_secret_hash(char *out, size_t cap, const char *secret);
// dre_secret_verify compares secret with a stored dre_secret_hash, in
// constant time.
bool dre_secret_verify(const char *secret, const char *stored);

#endif
