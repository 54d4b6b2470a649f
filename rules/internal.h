/*
 * rules/internal.h - shared between render.c and diff.c (folder-internal).
 */
#ifndef RULES_INTERNAL_H
#define RULES_INTERNAL_H

#include <stddef.h>

#include "rules/buf.h"
#include "rules/render.h"

/* The filter table's fixed chains: KUBE-FIREWALL (IPv4 with localhost NodePorts:
 * declaration in @decls, rule in @rules) and KUBE-FORWARD's rules. Returns
 * the number of rules written. */
size_t rules__fixed_filter(const struct rules_ctx *ctx, struct rules_buf *decls,
			   struct rules_buf *rules);

/* KUBE-POSTROUTING's and KUBE-MARK-MASQ's rules. Returns the number of rules. */
size_t rules__fixed_nat(const struct rules_ctx *ctx, struct rules_buf *rules);

/* The last KUBE-SERVICES rule(s), jumping to KUBE-NODEPORTS. Returns the number. */
size_t rules__nodeports_jump(const struct rules_ctx *ctx, struct rules_buf *rules);

/* The tree layout's chain prefix of slot @s, or NULL: the slot stays as it is. */
const char *rules__dispatch_prefix(enum rules_slot s);

/* Place @text's "-A <slot chain> ..." lines (@len bytes) in the dispatch tree
 * @tree of slot @s (tree layout). Returns 0, -EINVAL (a line without -d, in a
 * slot other than KUBE-EXTERNAL-SERVICES) or -ENOMEM. */
int rules__dispatch_lines(const struct rules_ctx *ctx, enum rules_slot s, const char *text,
			  size_t len, struct rules_dispatch *tree);

/* ":NAME - [0:0]\n" */
void rules__chain_line(struct rules_buf *b, const char *chain);

#endif /* RULES_INTERNAL_H */
