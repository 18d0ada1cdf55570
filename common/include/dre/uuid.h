// uuid.h -- UUID text helpers.
#ifndef DRE_UUID_H
#define DRE_UUID_H

#include <stdbool.h>
#include <stddef.h>

#define DRE_UUID_LEN 36

// dre_uuid_v4 writes a random lower-case UUID and a NUL into out[37].
void dre_uuid_v4(char *out);
// dre_uuid_derive writes the name-based UUID (version 5, SHA-1, libuuid's
// uuid_generate_sha1) of data[0..len) in DRE's namespace
// 4d52451e-7a0b-4c5e-9b1f-3c6d8e205147 into out[37]: an event derived from
// another gets the same id every time it is made again.
void dre_uuid_derive(char *out, const void *data, size_t len);
// dre_uuid_valid reports whether s[0..len) is a canonical 8-4-4-4-12 hex UUID.
bool dre_uuid_valid(const char *s, size_t len);

#endif
