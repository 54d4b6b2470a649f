/*
 * informer/store.c - namespace/name -> (resourceVersion, uid, generation).
 *
 * A chained hash table (FNV-1a over "namespace\0name"), doubled when the load
 * passes 1. The key is stored inline after the entry.
 */
#include "informer/store.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct informer_store_entry {
	struct informer_store_entry *next;
	char *rv;
	char *uid;
	unsigned int gen;
	uint32_t hash;
	size_t ns_len; /* key = ns "\0" name "\0"; ns_len == 0 for cluster-scoped */
	char key[];
};

static uint32_t key_hash(const char *ns, const char *name)
{
	uint32_t h = 2166136261u;
	const char *p;

	for (p = ns; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h = (h ^ 0xffu) * 16777619u; /* separator: "a/bc" != "ab/c" */
	for (p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

static bool key_equal(const struct informer_store_entry *e, const char *ns, const char *name)
{
	return !strcmp(e->key, ns) && !strcmp(e->key + e->ns_len + 1, name);
}

static bool str_equal(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return !strcmp(a, b);
}

static void entry_free(struct informer_store_entry *e)
{
	free(e->rv);
	free(e->uid);
	free(e);
}

/* The link pointing at @ns/@name's entry, or at the NULL ending its chain. */
static struct informer_store_entry **find(const struct informer_store *s, const char *ns,
					  const char *name, uint32_t h)
{
	struct informer_store_entry **pe;

	for (pe = &s->buckets[h & (s->n_buckets - 1)]; *pe; pe = &(*pe)->next)
		if ((*pe)->hash == h && key_equal(*pe, ns, name))
			break;
	return pe;
}

static int grow(struct informer_store *s)
{
	size_t n = s->n_buckets ? s->n_buckets * 2 : 64, i;
	struct informer_store_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (i = 0; i < s->n_buckets; i++) {
		struct informer_store_entry *e = s->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->n_buckets = n;
	return 0;
}

/* Replace *@dst with a copy of @src (NULL allowed). */
static int set_str(char **dst, const char *src)
{
	char *c = NULL;

	if (src) {
		c = strdup(src);
		if (!c)
			return -ENOMEM;
	}
	free(*dst);
	*dst = c;
	return 0;
}

void informer_store_init(struct informer_store *s)
{
	memset(s, 0, sizeof(*s));
}

void informer_store_cleanup(struct informer_store *s)
{
	size_t i;

	for (i = 0; i < s->n_buckets; i++) {
		struct informer_store_entry *e = s->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			entry_free(e);
		}
	}
	free(s->buckets);
	informer_store_init(s);
}

void informer_store_begin(struct informer_store *s)
{
	s->gen++;
}

int informer_store_upsert(struct informer_store *s, const char *ns, const char *name,
			  const char *rv, const char *uid)
{
	struct informer_store_entry **pe, *e;
	size_t ns_len, name_len;
	uint32_t h;

	if (!ns)
		ns = "";
	h = key_hash(ns, name);
	if (s->n_buckets) {
		pe = find(s, ns, name, h);
		e = *pe;
		if (e) {
			char *old_rv = e->rv, *old_uid = e->uid;

			e->gen = s->gen;
			if (str_equal(e->rv, rv) && str_equal(e->uid, uid))
				return 0;
			e->rv = NULL;
			e->uid = NULL;
			if (set_str(&e->rv, rv) || set_str(&e->uid, uid)) {
				free(e->rv);
				free(e->uid);
				e->rv = old_rv;
				e->uid = old_uid;
				return -ENOMEM;
			}
			free(old_rv);
			free(old_uid);
			return 1;
		}
	}
	if (s->count >= s->n_buckets && grow(s))
		return -ENOMEM;

	ns_len = strlen(ns);
	name_len = strlen(name);
	e = calloc(1, sizeof(*e) + ns_len + name_len + 2);
	if (!e)
		return -ENOMEM;
	memcpy(e->key, ns, ns_len + 1);
	memcpy(e->key + ns_len + 1, name, name_len + 1);
	e->ns_len = ns_len;
	e->hash = h;
	e->gen = s->gen;
	if (set_str(&e->rv, rv) || set_str(&e->uid, uid)) {
		entry_free(e);
		return -ENOMEM;
	}
	pe = &s->buckets[h & (s->n_buckets - 1)];
	e->next = *pe;
	*pe = e;
	s->count++;
	return 1;
}

bool informer_store_keep(struct informer_store *s, const char *ns, const char *name)
{
	struct informer_store_entry *e;

	if (!s->n_buckets)
		return false;
	if (!ns)
		ns = "";
	e = *find(s, ns, name, key_hash(ns, name));
	if (!e)
		return false;
	e->gen = s->gen;
	return true;
}

bool informer_store_remove(struct informer_store *s, const char *ns, const char *name)
{
	struct informer_store_entry **pe, *e;

	if (!s->n_buckets)
		return false;
	if (!ns)
		ns = "";
	pe = find(s, ns, name, key_hash(ns, name));
	e = *pe;
	if (!e)
		return false;
	*pe = e->next;
	entry_free(e);
	s->count--;
	return true;
}

const char *informer_store_rv(const struct informer_store *s, const char *ns, const char *name)
{
	struct informer_store_entry *e;

	if (!s->n_buckets)
		return NULL;
	if (!ns)
		ns = "";
	e = *find(s, ns, name, key_hash(ns, name));
	return e ? e->rv : NULL;
}

size_t informer_store_sweep(struct informer_store *s,
			    void (*cb)(void *arg, const char *ns, const char *name), void *arg)
{
	size_t i, n = 0;

	for (i = 0; i < s->n_buckets; i++) {
		struct informer_store_entry **pe = &s->buckets[i], *e;

		while ((e = *pe)) {
			if (e->gen == s->gen) {
				pe = &e->next;
				continue;
			}
			*pe = e->next;
			s->count--;
			n++;
			if (cb)
				cb(arg, e->ns_len ? e->key : NULL, e->key + e->ns_len + 1);
			entry_free(e);
		}
	}
	return n;
}

size_t informer_store_count(const struct informer_store *s)
{
	return s->count;
}
