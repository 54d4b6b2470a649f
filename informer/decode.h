/*
 * informer/decode.h - Kubernetes JSON -> informer/types.h structs.
 *
 * Pure: no I/O, no globals. Accepts every field of the upstream round-trip
 * fixtures (unknown fields are ignored). Input from the API server is never
 * trusted: a missing name, a wrong JSON type where the proxy needs a value,
 * or a port out of range rejects the object (-EPROTO); a bad value in an
 * optional list entry (an unparsable external IP, a bad source range, an
 * endpoint without a valid address) drops just that entry. Every rejection
 * and every dropped entry is reported through @diag with the object's
 * identity and the JSON path, e.g.
 *   Service shop/web: spec.externalIPs[1] "1.2.3": invalid IP, ignored
 *
 * All functions may be called from a libuv callback (they do not block).
 */
#ifndef INFORMER_DECODE_H
#define INFORMER_DECODE_H

#include <stddef.h>

#include "informer/compiler.h"
#include "informer/types.h"

struct json_t;

/* Where decoders report what they skipped. @fn may be NULL (silent). */
struct informer_diag {
	void (*fn)(void *arg, const char *msg);
	void *arg;
};

enum informer_kind {
	INFORMER_KIND_UNKNOWN = 0,
	INFORMER_KIND_SERVICE,
	INFORMER_KIND_ENDPOINTSLICE,
	INFORMER_KIND_NODE,
};

/*
 * informer_decode_service - decode one v1 Service object.
 * @obj: borrowed JSON object (the item itself, with or without kind/apiVersion).
 * @out: on success, a new object the caller frees with informer_service_free().
 * Returns 0, -EPROTO (object rejected, reported through @diag) or -ENOMEM.
 */
int informer_decode_service(const struct json_t *obj, const struct informer_diag *diag,
			    struct informer_service **out) INFORMER_MUST_CHECK;

/* Same for discovery.k8s.io/v1 EndpointSlice; free with informer_endpointslice_free(). */
int informer_decode_endpointslice(const struct json_t *obj, const struct informer_diag *diag,
				  struct informer_endpointslice **out) INFORMER_MUST_CHECK;

/* Same for v1 Node; free with informer_node_free(). */
int informer_decode_node(const struct json_t *obj, const struct informer_diag *diag,
			 struct informer_node **out) INFORMER_MUST_CHECK;

/*
 * informer_kind_of - which kind @obj is, from its "kind" (and "apiVersion"
 * when present: an EndpointSlice must be discovery.k8s.io/v1). Returns
 * INFORMER_KIND_UNKNOWN for anything else (including v1beta1 slices).
 */
enum informer_kind informer_kind_of(const struct json_t *obj);

#endif /* INFORMER_DECODE_H */
