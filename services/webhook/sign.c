// webhook/sign.c -- subscription secrets: made from the CSPRNG (sealed at
// rest by dre/seal.h under a key file kept outside the store), and the two
// signatures of every request (Standard Webhooks and X-DRE-Signature). All
// cryptography is OpenSSL's.
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "dre/hmac.h"
#include "dre/seal.h"
#include "webhook.h"

#define SECRET_BYTES 24
#define KEY_MAX      64

dre_err
wh_secret_new(char *out, size_t cap)
{
	unsigned char raw[SECRET_BYTES];
	size_t        pl = strlen(WH_SECRET_PREFIX);
	if (cap < pl + 4 * SECRET_BYTES / 3 + 1)
		return DRE_EINVAL;
	if (RAND_bytes(raw, sizeof raw) != 1)
		return DRE_EINVAL;
	memcpy(out, WH_SECRET_PREFIX, pl);
	dre_b64(out + pl, cap - pl, raw, sizeof raw);
	OPENSSL_cleanse(raw, sizeof raw);
	return DRE_OK;
}

size_t
wh_secret_key(unsigned char *key, size_t cap, const char *secret)
{
	size_t pl = strlen(WH_SECRET_PREFIX);
	if (secret == NULL || strncmp(secret, WH_SECRET_PREFIX, pl) != 0)
		return 0;
	int n = dre_unb64(key, cap, secret + pl);
	return n < 0 ? 0 : (size_t) n;
}

bool
wh_secret_valid(const char *secret)
{
	unsigned char key[KEY_MAX];
	size_t        n = wh_secret_key(key, sizeof key, secret);
	OPENSSL_cleanse(key, sizeof key);
	return n >= 16 && n <= KEY_MAX;
}

void
wh_sign_std(char *out, size_t cap, const unsigned char *key, size_t klen,
    const char *id, int64_t ts, const char *body, size_t blen)
{
	char          head[128];
	unsigned char mac[32];
	int hl = snprintf(head, sizeof head, "%s.%lld.", id, (long long) ts);
	dre_hmac_sha256(mac, key, klen, head, (size_t) hl, body, blen);
	if (cap < 4)
		return;
	memcpy(out, "v1,", 3);
	dre_b64(out + 3, cap - 3, mac, sizeof mac);
}

void
wh_sign_dre(char *out, size_t cap, const unsigned char *key, size_t klen,
    const char *body, size_t blen)
{
	unsigned char mac[32];
	dre_hmac_sha256(mac, key, klen, body, blen, NULL, 0);
	if (cap < 7 + 64 + 1)
		return;
	memcpy(out, "sha256=", 7);
	dre_hex(out + 7, mac, sizeof mac);
}
