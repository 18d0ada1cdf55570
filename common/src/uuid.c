// uuid.c -- random (version 4) UUIDs from libuuid, and a strict validator.
#include <stdint.h>

#include <uuid/uuid.h>

#include "dre/uuid.h"

void
dre_uuid_v4(char *out)
{
	uuid_t u;
	// uuid_generate_random reads getrandom()/urandom: unguessable ids.
	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

// fnv1a64 hashes data from seed h.
static uint64_t
fnv1a64(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	// Final avalanche (splitmix64) so similar inputs differ everywhere.
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

void
dre_uuid_derive(char *out, const void *data, size_t len)
{
	uuid_t   u;
	uint64_t hi = fnv1a64(0xcbf29ce484222325ULL, data, len);
	uint64_t lo = fnv1a64(hi ^ 0x9e3779b97f4a7c15ULL, data, len);
	for (int i = 0; i < 8; i++) {
		u[i] = (unsigned char) (hi >> (56 - 8 * i));
		u[8 + i] = (unsigned char) (lo >> (56 - 8 * i));
	}
	u[6] = (unsigned char) ((u[6] & 0x0f) | 0x80); // version 8: custom
	u[8] = (unsigned char) ((u[8] & 0x3f) | 0x80); // RFC 4122 variant
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
