// seal.c -- secrets at rest (dre/seal.h): AES-256-GCM with a random nonce
// per secret, the key in a file outside the store. All cryptography is
// OpenSSL's.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "dre/log.h"
#include "dre/seal.h"

#define NONCE_LEN  12
#define TAG_LEN    16
#define SECRET_MAX 256

size_t
dre_b64(char *out, size_t cap, const unsigned char *in, size_t n)
{
	if (cap < 4 * ((n + 2) / 3) + 1)
		return 0;
	return (size_t) EVP_EncodeBlock((unsigned char *) out, in, (int) n);
}

int
dre_unb64(unsigned char *out, size_t cap, const char *text)
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
dre_seal(dre_buf *out, const unsigned char *key, const char *secret)
{
	size_t        sl = strlen(secret);
	unsigned char raw[NONCE_LEN + SECRET_MAX + TAG_LEN];
	char          text[4 * (sizeof raw + 2) / 3 + 4];
	int           len = 0, fin = 0;
	if (sl > SECRET_MAX)
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
		size_t n = dre_b64(text, sizeof text, raw,
		    NONCE_LEN + (size_t) (len + fin) + TAG_LEN);
		dre_buf_append(out, text, n);
		err = out->oom ? DRE_ENOMEM : DRE_OK;
	}
	EVP_CIPHER_CTX_free(c);
	OPENSSL_cleanse(raw, sizeof raw);
	return err;
}

dre_err
dre_unseal(char *out, size_t cap, const unsigned char *key, const char *sealed)
{
	unsigned char raw[NONCE_LEN + SECRET_MAX + TAG_LEN + 4];
	int           n = sealed ? dre_unb64(raw, sizeof raw, sealed) : -1;
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

dre_err
dre_seal_key_load(unsigned char *key, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, key, DRE_SEAL_KEY_LEN);
		close(fd);
		if (n != DRE_SEAL_KEY_LEN) {
			dre_error(
			    "%s: not a %d-byte key", path, DRE_SEAL_KEY_LEN);
			return DRE_EINVAL;
		}
		return DRE_OK;
	}
	if (errno != ENOENT) {
		dre_error("%s: %s", path, strerror(errno));
		return DRE_EINVAL;
	}
	if (RAND_bytes(key, DRE_SEAL_KEY_LEN) != 1)
		return DRE_EINVAL;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, key, DRE_SEAL_KEY_LEN) != DRE_SEAL_KEY_LEN
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
