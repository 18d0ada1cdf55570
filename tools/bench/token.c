// token.c -- what checking a credential costs per request, in-process
// (dre-bench-token): verifying our RS256 JWT (dre_jwt_verify: cjose parse,
// RSA-2048 signature, claims), the gateway's cache hit for a token it
// verified before (SHA-256 of it), a Basic dev user (plaintext compare), a
// Basic user with a crypt(3) hash (the cached digest after the first
// request) and an API key hash (salted SHA-256, what the catalog does per
// request). Reports microseconds per check on one thread.
//   dre-bench-token [iterations]   (default 20000)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "dre/auth.h"
#include "dre/clock.h"
#include "dre/token.h"

static double
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
report(const char *what, int n, double us)
{
	printf("%-44s %9.2f us/check  (%d checks)\n", what, us / n, n);
}

int
main(int argc, char **argv)
{
	int   n = argc > 1 ? atoi(argv[1]) : 20000;
	char *priv = NULL, *pub = NULL, *tok = NULL, jwks[4096], claims[512];
	dre_jwks     *keys = NULL;
	dre_principal who;
	dre_jwt_rules rules = { .issuer = "dre",
		.audience = "dre",
		.tenant_claim = "tenant",
		.scope_prefix = "dre.",
		.leeway_s = 60 };
	int64_t       t = dre_now_ms() / 1000;

	if (n <= 0 || dre_jwk_generate(&priv, "bench") != DRE_OK
	    || dre_jwk_public(&pub, priv) != DRE_OK)
		return 1;
	snprintf(jwks, sizeof jwks, "{\"keys\":[%s]}", pub);
	snprintf(claims, sizeof claims,
	    "{\"iss\":\"dre\",\"aud\":\"dre\",\"sub\":\"dre-"
	    "0123456789abcdef\","
	    "\"client_id\":\"dre-0123456789abcdef\",\"tenant\":\"default\","
	    "\"iat\":%lld,\"exp\":%lld,\"jti\":\"6b3f0c7e-1b8e-4c39-9a43-"
	    "0f5c8f5d7e21\",\"scope\":\"dre.POSReader\"}",
	    (long long) t, (long long) t + 3600);
	if (dre_jwks_parse(&keys, jwks, strlen(jwks)) != DRE_OK
	    || dre_jwt_sign(&tok, priv, claims) != DRE_OK)
		return 1;
	printf("token: %zu bytes\n", strlen(tok));

	double t0 = now_us();
	for (int i = 0; i < n; i++)
		if (dre_jwt_verify(keys, &rules, tok, t, &who, NULL)
		    != DRE_OK) {
			fprintf(stderr, "verify failed\n");
			return 1;
		}
	report("Bearer RS256 JWT (dre_jwt_verify)", n, now_us() - t0);

	// What the gateway does for a token it verified before: SHA-256 of
	// it, looked up in its cache of verified tokens.
	unsigned char d[32];
	unsigned int  dl;
	size_t        tl = strlen(tok);
	t0 = now_us();
	for (int i = 0; i < n; i++)
		if (EVP_Digest(tok, tl, d, &dl, EVP_sha256(), NULL) != 1)
			return 1;
	report("Bearer, cached (SHA-256 of the token)", n, now_us() - t0);

	dre_auth *a = NULL;
	char      users[256], hash[DRE_SECRET_HASH_LEN + 1];
	snprintf(users, sizeof users,
	    "hashed:$6$rounds=5000$benchsalt$"
	    "9sB6p9xRkw0YHcoXrKJH9Mpv5P7qvX6Q1Z9X0qJ3tYjB7oQb7oB1xq8QYQe7L2u5W"
	    "Q"
	    "ZC4OJlXW3QkPz1sOO5C0:POSReader:default");
	if (dre_auth_open(&a, NULL, true) != DRE_OK)
		return 1;
	const char *basic = "Basic cG9zLXJlYWRlcjpwb3M="; // pos-reader:pos
	t0 = now_us();
	for (int i = 0; i < n; i++)
		if (dre_auth_check(a, basic, &who) != DRE_OK)
			return 1;
	report("Basic dev user (plaintext, 10 users)", n, now_us() - t0);
	dre_auth_close(a);

	const char *key
	    = "dre_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	if (dre_secret_hash(hash, sizeof hash, key) != DRE_OK)
		return 1;
	t0 = now_us();
	for (int i = 0; i < n; i++)
		if (!dre_secret_verify(key, hash))
			return 1;
	report(
	    "API key hash (salted SHA-256, in the catalog)", n, now_us() - t0);
	free(tok);
	free(priv);
	free(pub);
	dre_jwks_free(keys);
	return 0;
}
