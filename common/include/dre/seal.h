// seal.h -- secrets at rest: AES-256-GCM (OpenSSL) under a 32-byte key
// kept in a file outside the store, and the base64 they are stored as.
// The webhook service seals subscription secrets with it, the import job
// owners callback secrets (dre/importjob.h).
#ifndef DRE_SEAL_H
#define DRE_SEAL_H

#include <stddef.h>

#include "dre/buf.h"
#include "dre/err.h"

#define DRE_SEAL_KEY_LEN 32

// dre_seal appends base64(nonce || ciphertext || tag) of secret (at most
// 256 bytes) to out; dre_unseal writes the secret back into out (NUL
// terminated), DRE_ECODEC when sealed is not one of key's.
dre_err dre_seal(dre_buf *out, const unsigned char *key, const char *secret);
dre_err dre_unseal(
    char *out, size_t cap, const unsigned char *key, const char *sealed);

// dre_seal_key_load reads the DRE_SEAL_KEY_LEN-byte key at path, or
// creates it (0600, from the CSPRNG) when the file does not exist.
dre_err dre_seal_key_load(unsigned char *key, const char *path);

// dre_b64 encodes n bytes (standard alphabet, padded) into out, which
// holds 4 * ceil(n / 3) + 1 bytes; returns the length (0: does not fit).
// dre_unb64 decodes text into out; the byte count, -1 when it is not
// base64 or does not fit.
size_t dre_b64(char *out, size_t cap, const unsigned char *in, size_t n);
int    dre_unb64(unsigned char *out, size_t cap, const char *text);

#endif
