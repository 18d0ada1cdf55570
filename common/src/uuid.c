// uuid.c -- random (version 4) UUIDs from libuuid, and a strict validator.
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
