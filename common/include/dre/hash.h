// hash.h -- FNV-1a, the one non-cryptographic hash of DRE: shard and stripe
// choice, hash sets, ETags of stored documents. Not for anything an attacker
// may choose to collide where that matters (json.c seeds it per parse).
#ifndef DRE_HASH_H
#define DRE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define DRE_FNV32_INIT 2166136261u
#define DRE_FNV64_INIT 0xcbf29ce484222325ULL

// dre_fnv1a32 continues hash h over data[0..n).
static inline uint32_t
dre_fnv1a32(uint32_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

// dre_fnv1a32_str continues hash h over the NUL-terminated s, and over its
// terminating NUL when sep is set, so that ("ab","c") and ("a","bc") differ
// when parts are hashed one after the other.
static inline uint32_t
dre_fnv1a32_str(uint32_t h, const char *s, int sep)
{
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return sep ? (h ^ 0u) * 16777619u : h;
}

// dre_fnv1a64 continues hash h over data[0..n).
static inline uint64_t
dre_fnv1a64(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

#endif
