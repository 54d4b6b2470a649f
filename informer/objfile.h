/*
 * informer/objfile.h - read Kubernetes objects from a file or a buffer.
 *
 * Accepts what `kubectl get svc,endpointslices,nodes -A -o json|yaml` prints:
 * a List, typed lists (ServiceList, EndpointSliceList, NodeList: items
 * without kind/apiVersion), single objects, several JSON values or several
 * YAML documents in one stream. Other kinds are skipped (reported through
 * @diag); objects that fail to decode are skipped and reported.
 */
#ifndef INFORMER_OBJFILE_H
#define INFORMER_OBJFILE_H

#include <stddef.h>

#include "informer/compiler.h"
#include "informer/decode.h"

/* The objects found, in file order. Owned by the struct. */
struct informer_objects {
	struct informer_service **services;
	size_t n_services;
	struct informer_endpointslice **slices;
	size_t n_slices;
	struct informer_node **nodes;
	size_t n_nodes;
	size_t n_skipped; /* objects rejected or of another kind */
};

/*
 * informer_objects_parse - decode every object in @buf (JSON or YAML,
 * detected from the first non-blank character) and append them to @objs.
 * Returns 0, -EINVAL (the buffer is neither valid JSON nor valid YAML; the
 * parser's message with line/column goes to @diag) or -ENOMEM.
 */
int informer_objects_parse(const char *buf, size_t len, const struct informer_diag *diag,
			   struct informer_objects *objs) INFORMER_MUST_CHECK;

/*
 * informer_objects_load - read @path ("-" = standard input) and parse it as
 * informer_objects_parse() does. Blocking file I/O: not for loop callbacks.
 * Returns 0, -errno from opening/reading (reported through @diag), -EINVAL
 * or -ENOMEM.
 */
int informer_objects_load(const char *path, const struct informer_diag *diag,
			  struct informer_objects *objs) INFORMER_MUST_CHECK;

/* Free every object and reset @objs to empty. */
void informer_objects_cleanup(struct informer_objects *objs);

#endif /* INFORMER_OBJFILE_H */
