/*
 * informer/types.c - freeing decoded objects, label lookup (see types.h).
 *
 * Every object lives in its own arena, the object struct included, so
 * freeing the arena frees all of it.
 */
#include "informer/types.h"

#include <stdlib.h>
#include <string.h>

#include "informer/arena.h"

void informer_service_free(struct informer_service *svc)
{
	if (svc)
		informer__arena_free(svc->arena);
}

void informer_endpointslice_free(struct informer_endpointslice *eps)
{
	if (eps)
		informer__arena_free(eps->arena);
}

void informer_node_free(struct informer_node *node)
{
	if (node)
		informer__arena_free(node->arena);
}

static int label_cmp(const void *key, const void *elem)
{
	const struct informer_label *l = elem;

	return strcmp(key, l->key);
}

const char *informer_meta_label(const struct informer_meta *meta, const char *key)
{
	const struct informer_label *l;

	if (!meta->n_labels)
		return NULL;
	/* the decoder sorts labels by key (strcmp order) */
	l = bsearch(key, meta->labels, meta->n_labels, sizeof(*l), label_cmp);
	return l ? l->value : NULL;
}
