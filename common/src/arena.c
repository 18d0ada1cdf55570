// arena.c -- bump allocator: per-request memory released with one free.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dre/arena.h"

#define ARENA_ALIGN   16
#define ARENA_DEFAULT (16 * 1024)

typedef struct block block;
struct block {
	block *next;
	size_t cap;
	size_t used;
	// Keeps data[] 16-aligned whatever the header size.
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct dre_arena {
	block *head; // block currently bumped; the first block is last in list
	block *first; // kept across resets
	size_t block_size;
	size_t total; // bytes handed out since the last reset
};

static block *
block_new(size_t cap)
{
	if (cap > SIZE_MAX - sizeof(block))
		return NULL;
	block *b = malloc(sizeof(block) + cap);
	if (b == NULL)
		return NULL;
	b->next = NULL;
	b->cap = cap;
	b->used = 0;
	return b;
}

dre_arena *
dre_arena_alloc(size_t block_size)
{
	dre_arena *a = malloc(sizeof(*a));
	if (a == NULL)
		return NULL;
	a->block_size = block_size ? block_size : ARENA_DEFAULT;
	a->first = block_new(a->block_size);
	if (a->first == NULL) {
		free(a);
		return NULL;
	}
	a->head = a->first;
	a->total = 0;
	return a;
}

static void
blocks_free_until(block *b, block *stop)
{
	while (b != NULL && b != stop) {
		block *next = b->next;
		free(b);
		b = next;
	}
}

void
dre_arena_free(dre_arena *a)
{
	if (a == NULL)
		return;
	blocks_free_until(a->head, NULL);
	free(a);
}

void
dre_arena_reset(dre_arena *a)
{
	if (a == NULL)
		return;
	blocks_free_until(a->head, a->first);
	a->head = a->first;
	a->first->used = 0;
	a->total = 0;
}

void *
dre_arena_get_raw(dre_arena *a, size_t n)
{
	if (n == 0)
		n = 1;
	if (n > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	size_t need = (n + ARENA_ALIGN - 1) & ~(size_t) (ARENA_ALIGN - 1);
	block *b = a->head;
	if (b->cap - b->used < need) {
		// Big requests get a block of their own so the regular block
		// size keeps the waste per block bounded.
		size_t cap = need > a->block_size ? need : a->block_size;
		block *nb = block_new(cap);
		if (nb == NULL)
			return NULL;
		nb->next = b;
		a->head = nb;
		b = nb;
	}
	void *p = b->data + b->used;
	b->used += need;
	a->total += need;
	return p;
}

void *
dre_arena_get(dre_arena *a, size_t n)
{
	void *p = dre_arena_get_raw(a, n);
	if (p != NULL)
		memset(p, 0, n ? n : 1);
	return p;
}

char *
dre_arena_strndup(dre_arena *a, const char *s, size_t n)
{
	if (n == SIZE_MAX)
		return NULL;
	char *p = dre_arena_get_raw(a, n + 1);
	if (p == NULL)
		return NULL;
	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
dre_arena_strdup(dre_arena *a, const char *s)
{
	return dre_arena_strndup(a, s, strlen(s));
}

size_t
dre_arena_used(const dre_arena *a)
{
	return a->total;
}

// pb_alloc need not zero: protobuf-c initialises every message it
// allocates and fills every array and string before it is read.
static void *
pb_alloc(void *a, size_t n)
{
	return dre_arena_get_raw(a, n);
}

static void
pb_free(void *a, void *p)
{
	(void) a;
	(void) p; // freed with the arena
}

ProtobufCAllocator
dre_arena_pb(dre_arena *a)
{
	return (ProtobufCAllocator) { pb_alloc, pb_free, a };
}
