/*
 * informer/yaml.h - YAML documents -> jansson values (libyaml).
 *
 * Used for kubectl -o yaml object files, kubeconfig files and
 * KubeProxyConfiguration files, so that all of them go through the same
 * JSON-shaped decoders. Pure (works on a memory buffer).
 *
 * Scalars: plain (unquoted) scalars are typed as YAML 1.1/1.2 core schema
 * does for the values Kubernetes emits: integers, floats, true/false (and
 * True/TRUE/False/FALSE), null/~/empty -> null; everything else, and every
 * quoted or block scalar, is a string. Anchors/aliases are resolved; merge
 * keys are not supported. Nesting deeper than 256 levels is rejected.
 */
#ifndef INFORMER_YAML_H
#define INFORMER_YAML_H

#include <stddef.h>

#include "informer/compiler.h"

struct json_t;

/*
 * informer_yaml_load - parse every document in @buf.
 * @out: on success a new JSON array with one element per document (empty
 *       documents are skipped); the caller json_decref()s it.
 * @err, @errlen: on failure, a message with line and column.
 * Returns 0, -EINVAL (syntax error) or -ENOMEM.
 */
int informer_yaml_load(const char *buf, size_t len, struct json_t **out, char *err,
		       size_t errlen) INFORMER_MUST_CHECK;

#endif /* INFORMER_YAML_H */
