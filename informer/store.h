/*
 * informer/store.h - what the informer delivered, per namespace/name.
 *
 * The objects themselves belong to the owner (handlers steal them); the store
 * keeps only what a relist needs to compute the difference against the
 * previous state: resourceVersion and uid per namespace/name, and a mark of
 * the list generation that last saw the entry. A full list (or a streaming
 * list's initial events) runs as
 *
 *   informer_store_begin(); informer_store_upsert() per item;
 *   informer_store_sweep()  -> every entry not seen is reported as deleted.
 *
 * resourceVersions are opaque: only compared for equality.
 * Pure (no I/O); may be called from a libuv callback.
 */
#ifndef INFORMER_STORE_H
#define INFORMER_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "informer/compiler.h"

struct informer_store_entry;

struct informer_store {
	struct informer_store_entry **buckets;
	size_t n_buckets;
	size_t count;
	unsigned int gen; /* current list generation */
};

/* An empty store. */
void informer_store_init(struct informer_store *s);

/* Free every entry; @s may be initialised again. */
void informer_store_cleanup(struct informer_store *s);

/* Start a new full list: entries not upserted or kept before the next sweep are stale. */
void informer_store_begin(struct informer_store *s);

/*
 * informer_store_upsert - record that @ns/@name (@ns NULL for cluster-scoped
 * objects) exists at @rv with @uid (both may be NULL), and mark it seen by the
 * current list. Returns 1 when the entry is new or its rv or uid changed (the
 * object must be delivered), 0 when it is unchanged, or -ENOMEM (the store is
 * unchanged then).
 */
int informer_store_upsert(struct informer_store *s, const char *ns, const char *name,
			  const char *rv, const char *uid) INFORMER_MUST_CHECK;

/*
 * informer_store_keep - mark @ns/@name seen by the current list without
 * changing it (an item that exists but could not be decoded). Returns whether
 * the entry exists.
 */
bool informer_store_keep(struct informer_store *s, const char *ns, const char *name);

/* Forget @ns/@name. Returns whether it was there (a deletion to deliver). */
bool informer_store_remove(struct informer_store *s, const char *ns, const char *name);

/* The recorded resourceVersion of @ns/@name, or NULL. Borrowed until the next change. */
const char *informer_store_rv(const struct informer_store *s, const char *ns, const char *name);

/*
 * informer_store_sweep - remove every entry the current list did not see,
 * calling @cb (which must not use @s) for each before it is freed; @ns is
 * NULL for cluster-scoped objects. Returns how many were removed.
 */
size_t informer_store_sweep(struct informer_store *s,
			    void (*cb)(void *arg, const char *ns, const char *name), void *arg);

/* Number of entries. */
size_t informer_store_count(const struct informer_store *s);

#endif /* INFORMER_STORE_H */
