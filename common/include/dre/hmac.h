// hmac.h -- SHA-256, HMAC-SHA256 (OpenSSL's EVP_MAC) over up to two parts,
// and hex.
#ifndef DRE_HMAC_H
#define DRE_HMAC_H

#include <stdbool.h>
#include <stddef.h>

// dre_sha256 writes SHA-256(p[0..n)) into out[32]; false when OpenSSL
// fails. The digest is fetched from OpenSSL once (an implicit fetch per
// call costs three times the hash of a short string).
bool dre_sha256(unsigned char *out, const void *p, size_t n);

// dre_hmac_sha256 writes HMAC-SHA256(key, p1 || p2) into mac[32] (all
// zero when OpenSSL fails). p2 may be NULL with l2 0.
void dre_hmac_sha256(unsigned char *mac, const void *key, size_t klen,
    const void *p1, size_t l1, const void *p2, size_t l2);
// dre_hex writes n bytes as 2n lower-case hex digits and a NUL into out.
void dre_hex(char *out, const unsigned char *in, size_t n);

#endif
