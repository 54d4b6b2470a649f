/*
 * rules/chain.h - upstream-compatible chain names.
 *
 * kube-proxy names per-service chains KUBE-{SVC,SVL,EXT,FW}-<h> with
 * h = base32(sha256(servicePortName + protocol))[:16], and endpoint chains
 * KUBE-SEP-<base32(sha256(servicePortName + protocol + endpoint))[:16]>
 * (shared/spec/kube-proxy-iptables.md section 2). Using the very same names
 * is what lets a node be taken over from kube-proxy without a flush.
 *
 * Pure; callable from anywhere.
 */
#ifndef RULES_CHAIN_H
#define RULES_CHAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "rules/compiler.h"

/* iptables allows 28 characters; ours are at most 25 ("KUBE-SVC-" + 16). */
#define RULES_CHAIN_NAME_MAX 29
#define RULES_HASH_LEN	     16

/*
 * rules_chain_hash - the 16-character hash of @spn + @proto (+ @endpoint
 * when not NULL) into @out (RULES_HASH_LEN + 1 bytes, NUL-terminated).
 * @spn is ServicePortName.String() ("ns/name" or "ns/name:port"), @proto
 * the lower-case protocol ("tcp"), @endpoint "ip:port" or "[ip6]:port".
 * Returns 0, or -ENOMEM for absurdly long names (over 512 bytes in all).
 */
int rules_chain_hash(const char *spn, const char *proto, const char *endpoint,
		     char *out) RULES_MUST_CHECK;

/* "KUBE-SEP-" + rules_chain_hash(spn, proto, endpoint) into @out (RULES_CHAIN_NAME_MAX). */
int rules_chain_sep(const char *spn, const char *proto, const char *endpoint,
		    char *out) RULES_MUST_CHECK;

/*
 * rules_chain_is_service - whether @name is a per-service or per-endpoint
 * chain kube-proxy owns (KUBE-SVC-, KUBE-SVL-, KUBE-SEP-, KUBE-FW-, KUBE-EXT-):
 * the only chains ever deleted as stale.
 */
bool rules_chain_is_service(const char *name);

#endif /* RULES_CHAIN_H */
