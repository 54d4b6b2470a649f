/*
 * rules/dispatch.h - the ClusterIP dispatch tree (--service-dispatch=tree).
 *
 * Upstream's KUBE-SERVICES holds one rule per service port (and per external
 * and load-balancer IP), and the first packet of every new connection through
 * the node walks it, service traffic or not: at 10k services that costs
 * iptables-nft ~230 us per connection (shared/spec/measurements.md). The tree
 * layout moves those rules - every KUBE-SERVICES rule that matches a
 * destination address, i.e. all but the final NodePort jump - into chains
 * that split the address space by prefix:
 *
 *   KUBE-SERVICES  -d 10.96.0.0/12      -j KUBE-CIP-<h(10.96.0.0/12)>
 *   KUBE-CIP-...   -d 10.96.0.0/17      -j KUBE-CIP-<h(10.96.0.0/17)>   (up to 32 children)
 *                  -d 10.96.128.0/17    -j ...
 *   KUBE-CIP-...   <the rules whose destination is in the prefix, verbatim>
 *
 * A node with more than RULES_DISPATCH_LEAF_MAX rules is split: first narrowed
 * to the longest prefix common to its addresses, then into 2^k children with
 * k = ceil(log2(n / 16)) bits, at most 5, so that no packet walks more than
 * about 2*sqrt(N) rules. Chains are named by their prefix only
 * ("KUBE-CIP-" + base32(sha256("cip:" + prefix))[:16]), so a chain whose
 * addresses did not change keeps its name and its text, and adding a service
 * changes one leaf (or, when it splits, that leaf's subtree).
 *
 * The roots are the service CIDRs given (--service-cluster-ip-range), then
 * one more for the addresses outside them (externalIPs, LB IPs, stray
 * ClusterIPs): the longest prefix common to those, rounded down to a multiple
 * of 4 bits; without the flag that one root holds everything. Each rule goes
 * to the first root containing its address.
 *
 * Semantics are exactly the linear layout's: a packet can only match rules
 * whose -d is its destination address; all of those sit in one leaf, in their
 * linear order (entries are sorted by address, ties kept in KUBE-SERVICES
 * order), and a packet that matches nothing there (or falls through a
 * KUBE-FW chain) returns to KUBE-SERVICES and goes on to the NodePort jump,
 * as it would after the last linear rule.
 *
 * Pure.
 */
#ifndef RULES_DISPATCH_H
#define RULES_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules/buf.h"
#include "rules/chain.h"
#include "rules/compiler.h"
#include "rules/model.h"

#define RULES_DISPATCH_LEAF_MAX 64 /* rules in a chain before it is split */

/*
 * The chains each tree's names start with. The filter table's chains that every
 * new connection walks get trees of their own, with the same rules:
 * KUBE-SERVICES (REJECT/DROP of ClusterIPs without endpoints),
 * KUBE-EXTERNAL-SERVICES (of externalIPs and LB IPs; its NodePort rules, which
 * match any local address, move behind one "-m addrtype --dst-type LOCAL" jump
 * to KUBE-XIP-NODEPORTS) and KUBE-PROXY-FIREWALL (LB source-range drops).
 */
#define RULES_DISPATCH_CHAIN_PFX    "KUBE-CIP-" /* nat KUBE-SERVICES */
#define RULES_DISPATCH_PFX_REJECT   "KUBE-RIP-" /* filter KUBE-SERVICES */
#define RULES_DISPATCH_PFX_EXTERNAL "KUBE-XIP-" /* filter KUBE-EXTERNAL-SERVICES */
#define RULES_DISPATCH_PFX_FIREWALL "KUBE-FIP-" /* filter KUBE-PROXY-FIREWALL */

/* An address prefix of either family. */
struct rules_prefix {
	unsigned char addr[16]; /* network byte order, host bits zero */
	unsigned int len;	/* prefix length */
	bool v6;
};

/*
 * rules_prefix_parse - "10.96.0.0/12", "fd00::/108" or a bare address (a
 * full-length prefix). Host bits are cleared. Returns 0 or -EINVAL.
 */
int rules_prefix_parse(const char *s, struct rules_prefix *out) RULES_MUST_CHECK;

/* Whether @p (of @p's family) contains address @a (16 bytes, of @v6's family). */
bool rules_prefix_contains(const struct rules_prefix *p, const unsigned char *a, bool v6);

/* "10.96.0.0/12" into @buf (64 bytes). */
const char *rules_prefix_str(const struct rules_prefix *p, char *buf, size_t len);

/* One ClusterIP rule to place. */
struct rules_dispatch_entry {
	unsigned char addr[16];
	bool v6;
	const char *spec; /* the rule without "-A CHAIN " and without the newline */
	size_t spec_len;
	size_t order; /* ties between equal addresses keep this order */
};

/* One chain of the tree. */
struct rules_dispatch_chain {
	char name[RULES_CHAIN_NAME_MAX];
	struct rules_prefix prefix;
	size_t off; /* its "-A NAME ...\n" lines are text.data[off, off+len) */
	size_t len;
	unsigned int n_rules;
	bool leaf;
};

/* The tree: chains children first (so each is written before its parent's
 * jump to it), and the root jumps for KUBE-SERVICES. */
struct rules_dispatch {
	struct rules_dispatch_chain *chains;
	size_t n_chains;
	size_t cap_chains;
	struct rules_buf text; /* the chains' rules */
	struct rules_buf head; /* "-A <from> ... -j <prefix>..." lines, one per used root */
	unsigned int n_head;
	unsigned int max_walk; /* the most rules a packet to a ClusterIP walks in the tree */
};

void rules_dispatch_init(struct rules_dispatch *d);
void rules_dispatch_cleanup(struct rules_dispatch *d);

/*
 * rules_dispatch_entry_parse - @e for one "-A @chain <spec>" line (@len bytes,
 * newline excluded) that matches "-d <address>" of @family. @e borrows the
 * spec from @line. Returns 0 or -EINVAL (no such -d).
 */
int rules_dispatch_entry_parse(const char *line, size_t len, const char *chain,
			       enum rules_family family, size_t order,
			       struct rules_dispatch_entry *e) RULES_MUST_CHECK;

/*
 * rules_dispatch_build - place @entries (@n, reordered in place) into @d
 * (reset first) as chains named @prefix + hash, jumped to from @from, under
 * the roots of @family among @cidrs (others ignored;
 * one inside another dropped; unparsable ones skipped: validate them
 * first) and a derived root for the rest. @leaf_max: rules in a chain before
 * it is split (0: RULES_DISPATCH_LEAF_MAX). Returns 0 or -ENOMEM.
 */
#define RULES_DISPATCH_MAX_ROOTS 8
int rules_dispatch_build(struct rules_dispatch_entry *entries, size_t n, enum rules_family family,
			 const char *const *cidrs, size_t n_cidrs, size_t leaf_max,
			 const char *prefix, const char *from,
			 struct rules_dispatch *d) RULES_MUST_CHECK;

/*
 * rules_dispatch_gate - append to @d a chain @prefix"NODEPORTS" holding @text's
 * "-A @from ..." lines (renamed), and to its head a jump to it for packets to a
 * local address. Nothing when @len is 0. Returns 0 or -ENOMEM.
 */
int rules_dispatch_gate(const char *text, size_t len, const char *prefix, const char *from,
			struct rules_dispatch *d) RULES_MUST_CHECK;

/* Whether @name is a dispatch chain (ours: stale ones are deleted). */
bool rules_chain_is_dispatch(const char *name);

#endif /* RULES_DISPATCH_H */
