/*
 * rules/save.h - iptables-save output -> tables, chains and rules.
 *
 * Pure. Reads the format iptables-save (legacy and nft) prints: "*table",
 * ":CHAIN POLICY [p:b]" declarations, "-A CHAIN ..." rules, "COMMIT", and
 * comment lines. Chain names are always kept; rule text only for the chains
 * the caller asks for (a nat table with 10k services is 300k lines: the
 * reconciler needs the chain names and the few base chains, not the rest).
 */
#ifndef RULES_SAVE_H
#define RULES_SAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules/compiler.h"

struct rules_saved_chain {
	char *name;
	bool builtin;	/* has a policy (PREROUTING, INPUT, ...) */
	char **rules;	/* "-A NAME ..." lines without the newline; NULL when not kept */
	size_t n_rules; /* counted even when the text is not kept */
	/* rules_canon_hash() over every rule's spec in order, kept or not: what
	 * the reconciler compares its desired chains with (rules/canon.h) */
	uint64_t canon_hash;
};

struct rules_saved_table {
	char *name;
	struct rules_saved_chain *chains; /* in file order */
	size_t n_chains;
	struct rules_saved_chain **by_name; /* sorted by name, for lookups */
};

struct rules_saved {
	struct rules_saved_table *tables;
	size_t n_tables;
};

/* Which chains' rule text to keep: return true to keep @chain of @table. */
typedef bool (*rules_save_keep_fn)(void *arg, const char *table, const char *chain);

/*
 * rules_save_parse - parse @text (@len bytes) into @out (appending tables).
 * @keep may be NULL (keep every rule). Returns 0, -EPROTO (a line that is not
 * iptables-save output; @line_out gets its 1-based number if not NULL) or
 * -ENOMEM.
 */
int rules_save_parse(const char *text, size_t len, rules_save_keep_fn keep, void *arg,
		     struct rules_saved *out, size_t *line_out) RULES_MUST_CHECK;

void rules_saved_cleanup(struct rules_saved *s);

/* Lookups (by name: O(log n)); NULL when absent. Borrowed from @s. */
const struct rules_saved_table *rules_saved_table(const struct rules_saved *s, const char *table);
const struct rules_saved_chain *rules_saved_chain(const struct rules_saved *s, const char *table,
						  const char *chain);

#endif /* RULES_SAVE_H */
