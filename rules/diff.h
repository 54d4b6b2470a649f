/*
 * rules/diff.h - the reconciler: what was written + what is wanted -> the
 * smallest ordered set of iptables-restore transactions.
 *
 * Pure (no I/O). One struct rules_rec per IP family records what the last
 * successful sync wrote: per service port its rules in the shared dispatch
 * chains and the name and content hash of each of its own chains. A plan
 * compares the desired state against that record:
 *  - a port whose generation did not move is not even re-rendered;
 *  - an own chain (KUBE-SVC/SVL/EXT/FW/SEP) whose content hash did not change
 *    is not rewritten;
 *  - chains no longer wanted are flushed and deleted (only kube-proxy's
 *    KUBE-SVC/SVL/EXT/FW/SEP names), after the rules that jump to them;
 *  - the dispatch chains (nat KUBE-SERVICES/KUBE-NODEPORTS, filter
 *    KUBE-SERVICES/KUBE-EXTERNAL-SERVICES/KUBE-NODEPORTS/KUBE-PROXY-FIREWALL)
 *    are edited rule by rule (-D, then -I at the final position, so the
 *    NodePort jump stays last) unless so much changed that a rewrite is
 *    smaller.
 * A full plan (at start, after a failure, on drift, hourly) rewrites
 * everything, like upstream's full sync, and also ensures the jump rules in
 * the built-in chains from the kernel's current state.
 *
 * For iptables-nft, whose cost per transaction grows faster than linearly,
 * the own chains are split into transactions of a bounded number of ports,
 * each self-consistent (a port's SEP and SVC chains travel together); the
 * dispatch chains and deletions come last, so a failure part-way leaves the
 * old, working paths in place.
 */
#ifndef RULES_DIFF_H
#define RULES_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "rules/buf.h"
#include "rules/compiler.h"
#include "rules/model.h"
#include "rules/save.h"

struct rules_rec;
struct rules_plan;

struct rules_plan_opts {
	bool full; /* rewrite everything */
	/* nft: own chains of at most this many ports per transaction; 0: one
	 * transaction for everything (legacy: the table is replaced anyway) */
	size_t txn_max_ports;
	/* The kernel's tables from iptables-save (nat and filter, and mangle for
	 * the canary), read for full plans: stale chains we never wrote
	 * (kube-proxy's, a previous run's) and the jump rules in the built-in
	 * chains are computed from it. NULL: not known (no jumps ensured). */
	const struct rules_saved *kernel;
	/* Add the KUBE-PROXY-CANARY chains (mangle, nat, filter) with our
	 * marker rule on full plans, for flush detection. */
	bool canary;
};

struct rules_plan_stats {
	bool full;
	size_t ports;	       /* service ports in the desired state */
	size_t ports_rendered; /* re-rendered because they changed */
	size_t chains_written; /* own chains (re)written */
	size_t chains_skipped; /* own chains unchanged, not rewritten */
	size_t chains_deleted; /* stale chains flushed and deleted */
	/* full plans: chains (own, dispatch, fixed) found in the kernel already
	 * right and left alone; own ones are also counted in chains_skipped */
	size_t chains_adopted;
	size_t dispatch_edits;	  /* -D/-I lines in dispatch chains */
	size_t dispatch_rewrites; /* dispatch chains rewritten whole */
	size_t rules_written[2];  /* [0] filter, [1] nat: rules in the payload */
	size_t rules_total[2];	  /* rules we own after the sync */
	size_t bytes;		  /* payload size */
	size_t no_local_internal;
	size_t no_local_external;
	/* the tree layout (0 chains: linear) */
	size_t dispatch_chains;
	unsigned int dispatch_max_walk;
};

/* One iptables-restore invocation's input. */
struct rules_txn {
	char *text;
	size_t len;
};

/* The marker rule in KUBE-PROXY-CANARY (without "-A KUBE-PROXY-CANARY "). */
#define RULES_CANARY_CHAIN "KUBE-PROXY-CANARY"
#define RULES_CANARY_RULE  "-m comment --comment \"kube-iptables-proxy canary\" -j RETURN"

int rules_rec_new(enum rules_family family, struct rules_rec **out) RULES_MUST_CHECK;
void rules_rec_free(struct rules_rec *r);

/* False until the first full plan is committed, and after rules_rec_invalidate(). */
bool rules_rec_valid(const struct rules_rec *r);

/* Forget what was written (after a failure): the next plan is full. */
void rules_rec_invalidate(struct rules_rec *r);

/*
 * rules_rec_plan - plan the sync of @st under @o against @r. The plan borrows
 * nothing from @st after it returns. Returns 0, -ENOMEM or -E2BIG.
 */
int rules_rec_plan(const struct rules_rec *r, const struct rules_state *st,
		   const struct rules_opts *o, const struct rules_plan_opts *po,
		   struct rules_plan **out) RULES_MUST_CHECK;

/* The transactions to apply, in order (may be none: nothing changed). */
const struct rules_txn *rules_plan_txns(const struct rules_plan *p, size_t *n);
const struct rules_plan_stats *rules_plan_stats(const struct rules_plan *p);

/*
 * rules_rec_commit - every transaction of @p was applied: it becomes the
 * record. @r must not have changed since the plan was made. @p must still
 * be freed.
 */
void rules_rec_commit(struct rules_rec *r, struct rules_plan *p);
void rules_plan_free(struct rules_plan *p);

/*
 * rules_cleanup_payload - what `--cleanup` restores: delete every jump to our
 * chains from the built-in chains, then flush and delete every chain kube-proxy
 * or we own (KUBE-SERVICES, KUBE-NODEPORTS, KUBE-POSTROUTING, KUBE-MARK-MASQ,
 * KUBE-EXTERNAL-SERVICES, KUBE-FORWARD, KUBE-PROXY-FIREWALL, KUBE-FIREWALL,
 * KUBE-PROXY-CANARY, KUBE-SVC/SVL/EXT/FW/SEP-*) found in @kernel, and nothing
 * else. Appends to @out (empty when there is nothing to remove). Returns 0 or
 * the buffer's error.
 */
int rules_cleanup_payload(const struct rules_saved *kernel, struct rules_buf *out) RULES_MUST_CHECK;

/* Whether @table/@chain is one rules_cleanup_payload() removes. */
bool rules_chain_owned(const char *table, const char *chain);

#endif /* RULES_DIFF_H */
