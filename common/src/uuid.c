// uuid.c -- random (version 4) UUIDs, name-based (version 5) ones from
// libuuid, and a strict validator.
#include <stdint.h>

#include <openssl/rand.h>
#include <uuid/uuid.h>

#include "dre/uuid.h"

void
dre_uuid_v4(char *out)
{
	uuid_t u;
	// OpenSSL's DRBG (seeded from the kernel, reseeded after fork):
	// unguessable ids without a system call each. libuuid's
	// uuid_generate_random makes four (getrandom, getpid, getuid,
	// getppid): 13 % of an imported article row's CPU.
	if (RAND_bytes(u, (int) sizeof(u)) != 1) {
		uuid_generate_random(u);
	} else {
		u[6] = (uint8_t) ((u[6] & 0x0f) | 0x40); // version 4
		u[8] = (uint8_t) ((u[8] & 0x3f) | 0x80); // RFC 9562 variant
	}
	uuid_unparse_lower(u, out);
}

// The namespace of DRE's derived ids (RFC 9562 §5.5): fixed for ever, so a
// derived id is the same in every release and on every machine.
static const uuid_t derive_ns = { 0x4d, 0x52, 0x45, 0x1e, 0x7a, 0x0b, 0x4c,
	0x5e, 0x9b, 0x1f, 0x3c, 0x6d, 0x8e, 0x20, 0x51, 0x47 };

void
dre_uuid_derive(char *out, const void *data, size_t len)
{
	uuid_t u;
	uuid_generate_sha1(u, derive_ns, data, len);
	uuid_unparse_lower(u, out);
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
	    || (c >= 'A' && c <= 'F');
}

bool
dre_uuid_valid(const char *s, size_t len)
{
	if (s == NULL || len != DRE_UUID_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!is_hex(s[i])) {
			return false;
		}
	}
	return true;
}
