/*
 * informer/arena.c - a bump allocator in chunks (see arena.h).
 *
 * The first chunk is small because most objects are small (a Service with a
 * couple of ports needs well under 1 KiB); each further chunk is twice the
 * previous one up to CHUNK_MAX, so a large EndpointSlice costs a handful of
 * mallocs, not hundreds. A request bigger than half a chunk gets a chunk of
 * its own, so little is wasted at the end of the current one.
 */
#include "informer/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_FIRST 1024
#define CHUNK_MAX   (64 * 1024)
#define ALIGN	    alignof(max_align_t)

struct chunk {
	struct chunk *next;
	size_t size; /* bytes in data[] */
	size_t used;
	alignas(max_align_t) unsigned char data[];
};

struct informer_arena {
	struct chunk *head; /* the chunk being filled; older ones follow */
	size_t next_size;
};

struct informer_arena *informer__arena_new(void)
{
	struct informer_arena *a = calloc(1, sizeof(*a));

	if (a)
		a->next_size = CHUNK_FIRST;
	return a;
}

static struct chunk *chunk_new(size_t size)
{
	struct chunk *c;

	if (size > SIZE_MAX - sizeof(*c))
		return NULL;
	c = malloc(sizeof(*c) + size);
	if (!c)
		return NULL;
	c->size = size;
	c->used = 0;
	return c;
}

/* A chunk with @size free bytes at an aligned offset; NULL when out of memory. */
static struct chunk *chunk_for(struct informer_arena *a, size_t size)
{
	struct chunk *c = a->head;

	if (c && c->size - c->used >= size)
		return c;
	if (size > a->next_size / 2) {
		/* a dedicated chunk, kept behind the current one so it stays current */
		c = chunk_new(size);
		if (!c)
			return NULL;
		if (a->head) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = NULL;
			a->head = c;
		}
		return c;
	}
	c = chunk_new(a->next_size);
	if (!c)
		return NULL;
	if (a->next_size < CHUNK_MAX)
		a->next_size *= 2;
	c->next = a->head;
	a->head = c;
	return c;
}

void *informer__arena_alloc(struct informer_arena *a, size_t n, size_t size)
{
	struct chunk *c;
	size_t bytes;
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	bytes = n * size;
	if (bytes > SIZE_MAX - (ALIGN - 1))
		return NULL;
	/* round up so the next allocation starts aligned too */
	bytes = (bytes + ALIGN - 1) & ~(ALIGN - 1);
	c = chunk_for(a, bytes);
	if (!c)
		return NULL;
	p = c->data + c->used;
	c->used += bytes;
	memset(p, 0, bytes);
	return p;
}

char *informer__arena_strndup(struct informer_arena *a, const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *d = informer__arena_alloc(a, len + 1, 1);

	if (!d)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *informer__arena_strdup(struct informer_arena *a, const char *s)
{
	return informer__arena_strndup(a, s, SIZE_MAX);
}

void informer__arena_free(struct informer_arena *a)
{
	struct chunk *c, *next;

	if (!a)
		return;
	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}
