// arena.h -- bump allocator for per-request memory: one free for everything.
#ifndef DRE_ARENA_H
#define DRE_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct dre_arena dre_arena;

// dre_arena_alloc creates an arena whose first block holds block_size bytes
// (0 = 16 KiB). Caller frees with dre_arena_free(). NULL when out of memory.
dre_arena *dre_arena_alloc(size_t block_size);
// dre_arena_free releases the arena and all it handed out; NULL is a no-op.
void dre_arena_free(dre_arena *a);
// dre_arena_reset forgets every allocation but keeps the first block for
// reuse.
void dre_arena_reset(dre_arena *a);
// dre_arena_get returns n bytes aligned to 16, zeroed; NULL when out of
// memory. Borrowed; valid until the arena is reset or freed.
void *dre_arena_get(dre_arena *a, size_t n);
// dre_arena_get_raw is dre_arena_get without the zeroing, for memory the
// caller writes in full at once (string copies).
void *dre_arena_get_raw(dre_arena *a, size_t n);
// dre_arena_strndup copies n bytes of s and a NUL.
char *dre_arena_strndup(dre_arena *a, const char *s, size_t n);
char *dre_arena_strdup(dre_arena *a, const char *s);
// dre_arena_pb is a protobuf-c allocator drawing from a (free is a no-op:
// what it unpacks is released with the arena).
ProtobufCAllocator dre_arena_pb(dre_arena *a);
// dre_arena_used is the number of bytes handed out so far.
size_t dre_arena_used(const dre_arena *a);

#endif
