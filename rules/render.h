/*
 * rules/render.h - desired state -> iptables-restore text.
 *
 * THE pure function of the project: equal inputs give byte-identical output;
 * no I/O, clock, randomness, environment or globals. The rules are those
 * upstream kube-proxy (iptables mode) writes for the same objects, chain for
 * chain and rule for rule (shared/spec/kube-proxy-iptables.md sections 1-2).
 *
 * Two levels:
 *  - rules_render_port() renders everything one service port contributes:
 *    its rules in the shared dispatch chains (KUBE-SERVICES, KUBE-NODEPORTS,
 *    filter chains) and its own nat chains (KUBE-SVC/SVL/EXT/FW/SEP). The
 *    reconciler diffs these per port and per chain.
 *  - rules_render() renders a complete document for a full sync: *filter then
 *    *nat (as upstream), each with all chain declarations first, then the
 *    rules grouped by chain, then COMMIT.
 */
#ifndef RULES_RENDER_H
#define RULES_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "rules/buf.h"
#include "rules/compiler.h"
#include "rules/dispatch.h"
#include "rules/model.h"

/* The shared chains a service port adds rules to. */
enum rules_slot {
	RULES_SLOT_NAT_SERVICES = 0, /* nat KUBE-SERVICES */
	RULES_SLOT_NAT_NODEPORTS,    /* nat KUBE-NODEPORTS */
	RULES_SLOT_FILTER_SERVICES,  /* filter KUBE-SERVICES */
	RULES_SLOT_FILTER_EXTERNAL,  /* filter KUBE-EXTERNAL-SERVICES */
	RULES_SLOT_FILTER_NODEPORTS, /* filter KUBE-NODEPORTS */
	RULES_SLOT_FILTER_FIREWALL,  /* filter KUBE-PROXY-FIREWALL */
	RULES_SLOT__COUNT,
};

/* Table and chain of a slot, e.g. ("nat", "KUBE-SERVICES"). */
const char *rules_slot_table(enum rules_slot s);
const char *rules_slot_chain(enum rules_slot s);

/* One of a port's own nat chains: its rules are own.data[off, off+len). */
struct rules_own_chain {
	char name[RULES_CHAIN_NAME_MAX];
	size_t off;
	size_t len;
	unsigned int n_rules;
};

/* Everything one service port renders to. Reusable: rules_port_out_reset(). */
struct rules_port_out {
	struct rules_buf slot[RULES_SLOT__COUNT]; /* complete "-A ..." lines */
	unsigned int n_slot[RULES_SLOT__COUNT];
	struct rules_buf own; /* own chains' rules, chain after chain */
	struct rules_own_chain *chains;
	size_t n_chains;
	size_t cap_chains;
	bool no_local_internal; /* iTP Local without local endpoints (metric) */
	bool no_local_external; /* eTP Local without local endpoints (metric) */
	int err;
};

void rules_port_out_init(struct rules_port_out *po);
void rules_port_out_reset(struct rules_port_out *po);
void rules_port_out_cleanup(struct rules_port_out *po);

/*
 * Per-render context derived from the options (the masquerade mark text,
 * large-cluster mode). Build it once per render with rules_ctx_init().
 */
struct rules_ctx {
	const struct rules_opts *opts;
	enum rules_family family;
	bool large_cluster; /* total endpoints above the threshold: no per-endpoint comments */
	char mark[16];	    /* "0x00004000": Go's %#08x of 1 << bit */
	/* the dispatch tree layout (rules/dispatch.h): the rules of the
	 * RULES_SLOT_NAT_SERVICES slot go to KUBE-CIP chains, not KUBE-SERVICES */
	bool tree;
};

void rules_ctx_init(struct rules_ctx *ctx, const struct rules_state *st,
		    const struct rules_opts *opts);

/*
 * rules_render_port - render service port @sp into @po (appending; reset it
 * first to reuse). Returns 0 or -ENOMEM (also left in po->err).
 */
int rules_render_port(const struct rules_ctx *ctx, const struct rules_svc_port *sp,
		      struct rules_port_out *po) RULES_MUST_CHECK;

/* Counts of one full render, for logs and metrics. */
struct rules_stats {
	bool tree;		/* the dispatch tree layout was used */
	size_t dispatch_chains; /* its KUBE-CIP chains */
	unsigned int max_walk;	/* the most KUBE-SERVICES + tree rules a packet walks */
	size_t filter_chains;
	size_t filter_rules;
	size_t nat_chains;
	size_t nat_rules;
	size_t no_local_internal;
	size_t no_local_external;
};

/*
 * rules_render - the complete iptables-restore input of a full sync of
 * @st into @out (appended). @stats may be NULL.
 * Returns 0, -ENOMEM or -E2BIG (the buffer's cap).
 */
int rules_render(const struct rules_state *st, const struct rules_opts *opts, struct rules_buf *out,
		 struct rules_stats *stats) RULES_MUST_CHECK;

/*
 * rules_render_probability - upstream's computeProbability(n):
 * Go's "%0.10f" of 1/n, e.g. 3 -> "0.3333333333". @buf needs 16 bytes.
 */
const char *rules_render_probability(unsigned int n, char *buf, size_t len);

#endif /* RULES_RENDER_H */
