// hmac.c -- HMAC-SHA256 over two parts through OpenSSL's streaming EVP_MAC
// (HMAC() takes one buffer), and hex (webhook signatures, import job
// callbacks).
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/params.h>

#include "dre/hmac.h"

static EVP_MD        *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

bool
dre_sha256(unsigned char *out, const void *p, size_t n)
{
	unsigned int len = 0;
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md != NULL
	    && EVP_Digest(p, n, out, &len, sha256_md, NULL) == 1 && len == 32;
}

void
dre_hmac_sha256(unsigned char *mac, const void *key, size_t klen,
    const void *p1, size_t l1, const void *p2, size_t l2)
{
	EVP_MAC     *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM   ps[] = { OSSL_PARAM_construct_utf8_string(
		                  "digest", (char *) "SHA256", 0),
		  OSSL_PARAM_construct_end() };
	size_t       ml = 0;
	memset(mac, 0, 32);
	if (c != NULL && EVP_MAC_init(c, key, klen, ps) == 1
	    && EVP_MAC_update(c, p1, l1) == 1
	    && (l2 == 0 || EVP_MAC_update(c, p2, l2) == 1))
		EVP_MAC_final(c, mac, &ml, 32);
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
}

void
dre_hex(char *out, const unsigned char *in, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}
