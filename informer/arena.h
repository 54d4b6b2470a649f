/*
 * informer/arena.h - a bump allocator for decoded objects (internal to informer/).
 *
 * Every decoded object (informer/types.h) puts itself and all its strings and
 * arrays into one arena, so that freeing the object is one call and nothing
 * can be left behind. Memory comes from a chain of chunks that only grows;
 * nothing is freed before the whole arena is. Not thread-safe (nothing in the
 * informer needs it to be).
 */
#ifndef INFORMER_ARENA_H
#define INFORMER_ARENA_H

#include <stddef.h>

#include "informer/compiler.h"

struct informer_arena;

/* A new, empty arena; NULL when out of memory. Free with informer__arena_free(). */
struct informer_arena *informer__arena_new(void) INFORMER_MUST_CHECK;

/*
 * informer__arena_alloc - @n zeroed elements of @size bytes, aligned for any
 * type. Returns memory owned by @a (valid until informer__arena_free()), or
 * NULL when out of memory or when @n * @size overflows. A zero-byte request
 * returns a valid pointer that must not be dereferenced.
 */
void *informer__arena_alloc(struct informer_arena *a, size_t n, size_t size) INFORMER_MUST_CHECK;

/*
 * A NUL-terminated copy of @s (strndup: of at most its first @n bytes), owned by
 * @a; NULL when out of memory.
 */
char *informer__arena_strdup(struct informer_arena *a, const char *s) INFORMER_MUST_CHECK;
char *informer__arena_strndup(struct informer_arena *a, const char *s,
			      size_t n) INFORMER_MUST_CHECK;

/* Release @a and everything allocated from it. NULL is a no-op. */
void informer__arena_free(struct informer_arena *a);

#endif /* INFORMER_ARENA_H */
