/*
 * rules/canon.h - one spelling for every rule, whoever wrote it.
 *
 * iptables-save does not print a rule the way iptables-restore was given it:
 * it moves -s/-d/-i/-o/-p to the front, adds /32 to addresses, prints marks
 * as 0x4000 instead of 0x00004000, MARK --or-mark X as --set-xmark X/X,
 * --probability 0.5000000000 as 0.50000000000, fills in defaults (recent's
 * --mask and --rsource, REJECT's --reject-with) and reorders options. To tell
 * whether a chain in the kernel already holds the rules we would write (a
 * takeover from kube-proxy, a restart), both are brought to one canonical
 * form and compared.
 *
 * The canonical form is a text of its own (not valid iptables syntax): base
 * options in a fixed order with normalised values, then the matches, each
 * with its options sorted and defaults dropped, sorted among themselves
 * (every match of our rules is a pure condition, so their order does not
 * change what a rule does), then the target with its options normalised.
 * It covers the matches and targets kube-proxy's rules use; anything else is
 * kept as written, so a rule it does not know only ever compares unequal.
 *
 * Pure; no allocation (a rule longer than RULES_CANON_MAX is hashed as is).
 */
#ifndef RULES_CANON_H
#define RULES_CANON_H

#include <stddef.h>
#include <stdint.h>

#include "rules/buf.h"
#include "rules/compiler.h"

#define RULES_CANON_MAX 4096 /* bytes of one rule's spec */

/*
 * rules_canon_spec - append the canonical form of @spec (@len bytes: a rule
 * without its "-A CHAIN " prefix, as rendered or as iptables-save prints it)
 * to @out. Returns 0, -EINVAL (an unbalanced quote), -E2BIG (longer than
 * RULES_CANON_MAX) or the buffer's error.
 */
int rules_canon_spec(const char *spec, size_t len, struct rules_buf *out) RULES_MUST_CHECK;

/*
 * rules_canon_hash - fold rule @spec into the running chain hash @h (start
 * from RULES_CANON_HASH_INIT) and return the new hash: equal for rule lists
 * that are equal in canonical form, rule for rule, in order. A rule that
 * cannot be canonicalised is folded in as written.
 */
#define RULES_CANON_HASH_INIT 0xcbf29ce484222325ULL
uint64_t rules_canon_hash(uint64_t h, const char *spec, size_t len);

/* FNV-1a over @n bytes, continuing from @h. */
uint64_t rules_fnv1a(uint64_t h, const void *p, size_t n);

#endif /* RULES_CANON_H */
