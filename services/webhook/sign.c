// webhook/sign.c -- subscription secrets: made from the CSPRNG, sealed at
// rest with AES-256-GCM under a key file kept outside the store, and the
// two signatures of every request (Standard Webhooks and X-DRE-Signature).
// All cryptography is OpenSSL's.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "dre/hmac.h"
#include "dre/log.h"
#include "webhook.h"

#define SECRET_BYTES 24
#define NONCE_LEN    12
#define TAG_LEN      16
#define KEY_MAX      64

// b64 encodes n bytes into out (cap >= 4 * ceil(n / 3) + 1).
static size_t
b64(char *out, size_t cap, const unsigned char *in, size_t n)
{
	if (cap < 4 * ((n + 2) / 3) + 1)
		return 0;
	return (size_t) EVP_EncodeBlock((unsigned char *) out, in, (int) n);
}

// unb64 decodes text (standard alphabet, padded); returns the byte count,
// or -1 when it is not base64 or does not fit.
static int
unb64(unsigned char *out, size_t cap, const char *text)
{
	size_t n = strlen(text);
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap)
		return -1;
	int len = EVP_DecodeBlock(out, (const unsigned char *) text, (int) n);
	if (len < 0)
		return -1;
	// EVP_DecodeBlock counts the padding as zero bytes.
	if (text[n - 1] == '=')
		len--;
	if (text[n - 2] == '=')
		len--;
	return len;
}

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
	b64(out + pl, cap - pl, raw, sizeof raw);
	OPENSSL_cleanse(raw, sizeof raw);
	return DRE_OK;
}

size_t
wh_secret_key(unsigned char *key, size_t cap, const char *secret)
{
	size_t pl = strlen(WH_SECRET_PREFIX);
	if (secret == NULL || strncmp(secret, WH_SECRET_PREFIX, pl) != 0)
		return 0;
	int n = unb64(key, cap, secret + pl);
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

dre_err
wh_seal(dre_buf *out, const unsigned char *key, const char *secret)
{
	size_t        sl = strlen(secret);
	unsigned char raw[NONCE_LEN + 256 + TAG_LEN];
	char          text[4 * (sizeof raw + 2) / 3 + 4];
	int           len = 0, fin = 0;
	if (sl > 256)
		return DRE_EINVAL;
	if (RAND_bytes(raw, NONCE_LEN) != 1)
		return DRE_EINVAL;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	dre_err         err = DRE_EINVAL;
	if (c != NULL
	    && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw) == 1
	    && EVP_EncryptUpdate(c, raw + NONCE_LEN, &len,
	           (const unsigned char *) secret, (int) sl)
	        == 1
	    && EVP_EncryptFinal_ex(c, raw + NONCE_LEN + len, &fin) == 1
	    && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
	           raw + NONCE_LEN + len + fin)
	        == 1) {
		size_t n = b64(text, sizeof text, raw,
		    NONCE_LEN + (size_t) (len + fin) + TAG_LEN);
		dre_buf_append(out, text, n);
		err = out->oom ? DRE_ENOMEM : DRE_OK;
	}
	EVP_CIPHER_CTX_free(c);
	return err;
}

dre_err
wh_unseal(char *out, size_t cap, const unsigned char *key, const char *sealed)
{
	unsigned char raw[NONCE_LEN + 256 + TAG_LEN + 4];
	int           n = unb64(raw, sizeof raw, sealed);
	int           len = 0, fin = 0;
	if (n < NONCE_LEN + TAG_LEN
	    || (size_t) (n - NONCE_LEN - TAG_LEN) >= cap)
		return DRE_ECODEC;
	int             cl = n - NONCE_LEN - TAG_LEN;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	dre_err         err = DRE_ECODEC;
	if (c != NULL
	    && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw) == 1
	    && EVP_DecryptUpdate(
	           c, (unsigned char *) out, &len, raw + NONCE_LEN, cl)
	        == 1
	    && EVP_CIPHER_CTX_ctrl(
	           c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + NONCE_LEN + cl)
	        == 1
	    && EVP_DecryptFinal_ex(c, (unsigned char *) out + len, &fin)
	        == 1) {
		out[len + fin] = '\0';
		err = DRE_OK;
	}
	EVP_CIPHER_CTX_free(c);
	return err;
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
	b64(out + 3, cap - 3, mac, sizeof mac);
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

dre_err
wh_key_file_load(unsigned char *key, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, key, WH_SECRET_KEY_LEN);
		close(fd);
		if (n != WH_SECRET_KEY_LEN) {
			dre_error(
			    "%s: not a %d-byte key", path, WH_SECRET_KEY_LEN);
			return DRE_EINVAL;
		}
		return DRE_OK;
	}
	if (errno != ENOENT) {
		dre_error("%s: %s", path, strerror(errno));
		return DRE_EINVAL;
	}
	if (RAND_bytes(key, WH_SECRET_KEY_LEN) != 1)
		return DRE_EINVAL;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, key, WH_SECRET_KEY_LEN) != WH_SECRET_KEY_LEN
	    || fsync(fd) != 0) {
		dre_error("cannot create the key file %s: %s", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return DRE_EINVAL;
	}
	close(fd);
	dre_info("created the secret sealing key %s", path);
	return DRE_OK;
}
