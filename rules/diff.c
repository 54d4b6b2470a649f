/*
 * rules/diff.c - the reconciler: record + desired state -> transactions.
 */
#include "rules/diff.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/canon.h"
#include "rules/chain.h"
#include "rules/dispatch.h"
#include "rules/internal.h"
#include "rules/render.h"

/* Rewrite a dispatch chain whole when edits would exceed this share of it. */
#define EDITS_REWRITE_MIN      32
#define EDITS_REWRITE_FRACTION 4 /* rewrite when edits > len / 4 */

/* ---- the record ----------------------------------------------------------- */

struct rec_chain {
	char name[RULES_CHAIN_NAME_MAX];
	uint64_t hash;
};

/* What one service port wrote (or will write). */
struct rec_port {
	char *name;
	enum rules_proto proto;
	uint64_t gen;
	char *slot[RULES_SLOT__COUNT]; /* its lines in each dispatch chain, NULL: none */
	size_t slot_len[RULES_SLOT__COUNT];
	unsigned int n_slot[RULES_SLOT__COUNT];
	struct rec_chain *chains; /* sorted by name */
	size_t n_chains;
	size_t own_rules;
	bool no_local_internal;
	bool no_local_external;
};

/* The dispatch tree as written (tree layout). */
struct rec_tree {
	struct rec_chain *chains; /* sorted by name */
	size_t n_chains;
	uint64_t head_hash; /* of the top-level chain's jumps into the tree */
	size_t n_head;
	size_t rules; /* rules in the tree chains and the head */
};

struct rules_rec {
	enum rules_family family;
	bool valid;
	uint64_t opts_hash;
	bool large_cluster;
	struct rec_port *ports; /* sorted like rules_state.ports */
	size_t n_ports;
	size_t fixed_rules[2];			 /* filter, nat rules outside the ports */
	bool tree_on;				 /* the tree layout */
	struct rec_tree tree[RULES_SLOT__COUNT]; /* per dispatch slot (rules__dispatch_prefix) */
};

/* A port of the plan: either kept from the record or newly rendered. */
struct plan_port {
	const struct rec_port *old; /* kept as is (r->ports[old_idx]) */
	size_t old_idx;
	struct rec_port own; /* rendered (when !old) */
};

struct rules_plan {
	struct rules_txn *txns;
	size_t n_txns;
	struct rules_plan_stats stats;

	/* the record to commit */
	enum rules_family family;
	uint64_t opts_hash;
	bool large_cluster;
	struct plan_port *ports;
	size_t n_ports;
	size_t fixed_rules[2];
	bool tree_on;
	struct rec_tree tree[RULES_SLOT__COUNT];
};

#define fnv1a	 rules_fnv1a
#define FNV_INIT RULES_CANON_HASH_INIT

static void rec_port_cleanup(struct rec_port *p)
{
	int s;

	free(p->name);
	for (s = 0; s < RULES_SLOT__COUNT; s++)
		free(p->slot[s]);
	free(p->chains);
	memset(p, 0, sizeof(*p));
}

int rules_rec_new(enum rules_family family, struct rules_rec **out)
{
	struct rules_rec *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->family = family;
	*out = r;
	return 0;
}

static void rec_clear_ports(struct rules_rec *r)
{
	size_t i;

	for (i = 0; i < r->n_ports; i++)
		rec_port_cleanup(&r->ports[i]);
	free(r->ports);
	r->ports = NULL;
	r->n_ports = 0;
}

void rules_rec_free(struct rules_rec *r)
{
	int i;

	if (!r)
		return;
	rec_clear_ports(r);
	for (i = 0; i < RULES_SLOT__COUNT; i++)
		free(r->tree[i].chains);
	free(r);
}

bool rules_rec_valid(const struct rules_rec *r)
{
	return r->valid;
}

void rules_rec_invalidate(struct rules_rec *r)
{
	r->valid = false;
}

static int port_cmp(const struct rules_svc_port *sp, const struct rec_port *rp)
{
	int c = strcmp(sp->name, rp->name);

	if (c)
		return c;
	return (int)sp->proto - (int)rp->proto;
}

static int cmp_chain(const void *a, const void *b)
{
	return strcmp(((const struct rec_chain *)a)->name, ((const struct rec_chain *)b)->name);
}

/* @name in @v (@n entries sorted by name), or NULL. */
static const struct rec_chain *find_rec_chain(const struct rec_chain *v, size_t n, const char *name)
{
	struct rec_chain key;

	if (!n)
		return NULL;
	snprintf(key.name, sizeof(key.name), "%s", name);
	return bsearch(&key, v, n, sizeof(key), cmp_chain);
}

static const struct rec_chain *find_chain(const struct rec_port *p, const char *name)
{
	return p ? find_rec_chain(p->chains, p->n_chains, name) : NULL;
}

/* Everything in the options that changes rule text of every port. */
static uint64_t opts_hash(const struct rules_ctx *ctx)
{
	const struct rules_opts *o = ctx->opts;
	char buf[256];
	uint64_t h;
	size_t i;
	int n;

	n = snprintf(buf, sizeof(buf), "%d|%u|%d|%d|%s|%d|%d|%d|%d|%d|%zu|%d", ctx->family,
		     o->masquerade_bit, o->masquerade_all, o->local_mode,
		     o->local_match ? o->local_match : "", o->localhost_nodeports,
		     o->nodeport_match_all, o->random_fully, o->nfacct, o->tcp_be_liberal,
		     o->large_cluster_threshold, o->dispatch);
	h = fnv1a(FNV_INIT, buf, n > 0 ? (size_t)n : 0);
	h = fnv1a(h, &o->dispatch_leaf_max, sizeof(o->dispatch_leaf_max));
	for (i = 0; i < o->n_nodeport_ips; i++)
		h = fnv1a(h, o->nodeport_ips[i], strlen(o->nodeport_ips[i]) + 1);
	/* the tree's roots (the layout itself is recorded apart) */
	for (i = 0; i < o->n_service_cidrs; i++)
		h = fnv1a(h, o->service_cidrs[i], strlen(o->service_cidrs[i]) + 1);
	return h;
}

/* ---- building the plan ---------------------------------------------------- */

/* What a plan accumulates while walking the ports. */
struct builder {
	const struct rules_plan_opts *po;
	struct rules_plan *plan;
	struct rules_ctx ctx;
	bool full;
	struct rules_port_out po_out;

	/* own chains of the transaction being filled */
	struct rules_buf own_decls;
	struct rules_buf own_rules;
	size_t own_ports; /* ports with chains in the current block */
	size_t cap_txns;

	/* stale chains to flush and delete, per table ([0] filter, [1] nat) */
	char **stale[2];
	size_t n_stale[2];
	size_t cap_stale[2];

	/* every own chain wanted (full plans: to find stale kernel chains) */
	const char **wanted;
	size_t n_wanted;
	size_t cap_wanted;

	/* tree layout: the trees, and their chains to write: [0] filter, [1] nat */
	struct rules_dispatch tree[RULES_SLOT__COUNT];
	struct rules_buf tree_decls[2];
	struct rules_buf tree_rules[2];
	int err;
};

static void set_err(struct builder *b, int err)
{
	if (!b->err)
		b->err = err;
}

/* The canonical hash of @len bytes of "-A @chain spec\n" lines, and their count. */
static uint64_t lines_hash(const char *chain, const char *text, size_t len, size_t *n)
{
	const char *line = text, *end = text + len, *nl;
	size_t skip = 4 + strlen(chain);
	uint64_t h = RULES_CANON_HASH_INIT;

	*n = 0;
	for (; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			nl = end;
		if ((size_t)(nl - line) > skip)
			h = rules_canon_hash(h, line + skip, (size_t)(nl - line) - skip);
		else
			h = rules_canon_hash(h, "", 0);
		(*n)++;
	}
	return h;
}

/*
 * Full plans against a known kernel: whether @table/@chain already holds
 * exactly @text (its complete "-A @chain ..." lines), rule for rule in
 * canonical form. Such a chain is adopted as it is, not rewritten: a takeover
 * from kube-proxy, a restart or a periodic full sync rewrites only what
 * differs, and the counters of everything else keep counting.
 */
static bool adopt(struct builder *b, const char *table, const char *chain, const char *text,
		  size_t len)
{
	const struct rules_saved_chain *c;
	size_t n;

	if (!b->full || !b->po->kernel)
		return false;
	c = rules_saved_chain(b->po->kernel, table, chain);
	if (!c || c->builtin || lines_hash(chain, text, len, &n) != c->canon_hash ||
	    n != c->n_rules)
		return false;
	b->plan->stats.chains_adopted++;
	return true;
}

/* Declare @chain of @table and write @text as its rules, unless adopted.
 * Returns whether it was written. */
static bool write_chain(struct builder *b, const char *table, const char *chain, const char *text,
			size_t len, struct rules_buf *decls, struct rules_buf *rules)
{
	if (adopt(b, table, chain, text, len))
		return false;
	rules__chain_line(decls, chain);
	rules_buf_add(rules, text, len);
	return true;
}

static void add_stale_in(struct builder *b, int tbl, const char *name)
{
	if (b->n_stale[tbl] == b->cap_stale[tbl]) {
		size_t cap = b->cap_stale[tbl] ? b->cap_stale[tbl] * 2 : 32;
		char **p = realloc(b->stale[tbl], cap * sizeof(*p));

		if (!p) {
			set_err(b, -ENOMEM);
			return;
		}
		b->stale[tbl] = p;
		b->cap_stale[tbl] = cap;
	}
	b->stale[tbl][b->n_stale[tbl]] = strdup(name);
	if (!b->stale[tbl][b->n_stale[tbl]]) {
		set_err(b, -ENOMEM);
		return;
	}
	b->n_stale[tbl]++;
}

/* A stale nat chain (service chains are all nat). */
static void add_stale(struct builder *b, const char *name)
{
	add_stale_in(b, 1, name);
}

static void add_wanted(struct builder *b, const char *name)
{
	if (b->n_wanted == b->cap_wanted) {
		size_t cap = b->cap_wanted ? b->cap_wanted * 2 : 256;
		const char **p = realloc(b->wanted, cap * sizeof(*p));

		if (!p) {
			set_err(b, -ENOMEM);
			return;
		}
		b->wanted = p;
		b->cap_wanted = cap;
	}
	b->wanted[b->n_wanted++] = name;
}

static void add_txn(struct builder *b, struct rules_buf *text)
{
	struct rules_plan *p = b->plan;
	struct rules_txn *t;

	if (text->err) {
		set_err(b, text->err);
		return;
	}
	if (!text->len)
		return;
	if (p->n_txns == b->cap_txns) {
		size_t cap = b->cap_txns ? b->cap_txns * 2 : 8;

		t = realloc(p->txns, cap * sizeof(*t));
		if (!t) {
			set_err(b, -ENOMEM);
			return;
		}
		p->txns = t;
		b->cap_txns = cap;
	}
	t = &p->txns[p->n_txns++];
	p->stats.bytes += text->len;
	t->text = rules_buf_take(text, &t->len);
}

/* Close a block of chains (@decls, @rules) as a nat transaction of its own. */
static void flush_block(struct builder *b, struct rules_buf *decls, struct rules_buf *rules)
{
	struct rules_buf txn;

	if (!decls->len)
		return;
	rules_buf_init(&txn, 0);
	rules_buf_adds(&txn, "*nat\n");
	rules_buf_add(&txn, decls->data, decls->len);
	rules_buf_add(&txn, rules->data, rules->len);
	rules_buf_adds(&txn, "COMMIT\n");
	add_txn(b, &txn);
	rules_buf_cleanup(&txn);
	rules_buf_reset(decls);
	rules_buf_reset(rules);
}

/* Close the current block of own chains as a nat transaction of its own. */
static void flush_own_block(struct builder *b)
{
	flush_block(b, &b->own_decls, &b->own_rules);
	b->own_ports = 0;
}

/* Render @sp into a new record entry and queue the chains that changed. */
static void render_port(struct builder *b, const struct rules_svc_port *sp,
			const struct rec_port *old, struct rec_port *np)
{
	struct rules_port_out *po = &b->po_out;
	struct rules_plan_stats *st = &b->plan->stats;
	bool wrote = false;
	size_t i;
	int s, err;

	rules_port_out_reset(po);
	err = rules_render_port(&b->ctx, sp, po);
	if (err) {
		set_err(b, err);
		return;
	}
	st->ports_rendered++;
	np->name = strdup(sp->name);
	np->chains = calloc(po->n_chains ? po->n_chains : 1, sizeof(*np->chains));
	if (!np->name || !np->chains) {
		set_err(b, -ENOMEM);
		return;
	}
	np->proto = sp->proto;
	np->gen = sp->gen;
	np->no_local_internal = po->no_local_internal;
	np->no_local_external = po->no_local_external;
	for (s = 0; s < RULES_SLOT__COUNT; s++) {
		np->n_slot[s] = po->n_slot[s];
		if (!po->slot[s].len)
			continue;
		np->slot[s] = strndup(po->slot[s].data, po->slot[s].len);
		if (!np->slot[s]) {
			set_err(b, -ENOMEM);
			return;
		}
		np->slot_len[s] = po->slot[s].len;
	}
	for (i = 0; i < po->n_chains; i++) {
		const struct rules_own_chain *c = &po->chains[i];
		const struct rec_chain *oc = find_chain(old, c->name);
		uint64_t h = fnv1a(FNV_INIT, po->own.data + c->off, c->len);

		memcpy(np->chains[i].name, c->name, sizeof(c->name));
		np->chains[i].hash = h;
		np->own_rules += c->n_rules;
		if (!b->full && oc && oc->hash == h) {
			st->chains_skipped++;
			continue;
		}
		if (adopt(b, "nat", c->name, po->own.data + c->off, c->len)) {
			st->chains_skipped++;
			continue;
		}
		rules__chain_line(&b->own_decls, c->name);
		rules_buf_add(&b->own_rules, po->own.data + c->off, c->len);
		st->chains_written++;
		st->rules_written[1] += c->n_rules;
		wrote = true;
	}
	np->n_chains = po->n_chains;
	qsort(np->chains, np->n_chains, sizeof(*np->chains), cmp_chain);
	/* chains the old version had and the new one does not */
	if (old && !b->full)
		for (i = 0; i < old->n_chains; i++)
			if (!find_chain(np, old->chains[i].name))
				add_stale(b, old->chains[i].name);
	if (wrote && ++b->own_ports >= b->po->txn_max_ports && b->po->txn_max_ports)
		flush_own_block(b);
}

static const struct rec_port *plan_rec(const struct rules_plan *p, size_t i)
{
	return p->ports[i].old ? p->ports[i].old : &p->ports[i].own;
}

/* Walk desired ports against recorded ones. */
static void walk_ports(struct builder *b, const struct rules_rec *r, const struct rules_state *st)
{
	struct rules_plan *p = b->plan;
	size_t i = 0, j = 0, k;

	p->ports = calloc(st->n_ports ? st->n_ports : 1, sizeof(*p->ports));
	if (!p->ports) {
		set_err(b, -ENOMEM);
		return;
	}
	while ((i < st->n_ports || j < r->n_ports) && !b->err) {
		const struct rules_svc_port *sp = i < st->n_ports ? st->ports[i] : NULL;
		const struct rec_port *old = j < r->n_ports ? &r->ports[j] : NULL;
		int c = !sp ? 1 : !old ? -1 : port_cmp(sp, old);
		struct plan_port *pp;

		if (c > 0) {
			/* gone: every chain it had is stale (full plans find them
			 * through the wanted set instead) */
			if (!b->full)
				for (k = 0; k < old->n_chains; k++)
					add_stale(b, old->chains[k].name);
			j++;
			continue;
		}
		pp = &p->ports[p->n_ports++];
		if (c == 0 && !b->full && sp->gen && old->gen == sp->gen) {
			pp->old = old;
			pp->old_idx = j;
			b->plan->stats.chains_skipped += old->n_chains;
		} else {
			render_port(b, sp, c == 0 ? old : NULL, &pp->own);
		}
		if (b->full)
			for (k = 0; k < plan_rec(p, p->n_ports - 1)->n_chains; k++)
				add_wanted(b, plan_rec(p, p->n_ports - 1)->chains[k].name);
		i++;
		if (c == 0)
			j++;
	}
	if (b->po->txn_max_ports)
		flush_own_block(b);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool wanted(const struct builder *b, const char *name)
{
	return b->n_wanted && bsearch(&name, b->wanted, b->n_wanted, sizeof(char *), cmp_str);
}

/* Full plans: service and dispatch chains in the kernel or the record that are not wanted. */
static void find_stale_full(struct builder *b, const struct rules_rec *r)
{
	static const char *const tables[2] = { "filter", "nat" };
	const struct rules_saved_table *t;
	size_t i, k;
	int tbl, sl;

	if (b->n_wanted)
		qsort(b->wanted, b->n_wanted, sizeof(*b->wanted), cmp_str);
	if (b->po->kernel) {
		/* the kernel's lists include whatever the record has */
		for (tbl = 0; tbl < 2; tbl++) {
			t = rules_saved_table(b->po->kernel, tables[tbl]);
			for (i = 0; t && i < t->n_chains; i++) {
				const char *name = t->chains[i].name;

				if (((tbl == 1 && rules_chain_is_service(name)) ||
				     rules_chain_is_dispatch(name)) &&
				    !wanted(b, name))
					add_stale_in(b, tbl, name);
			}
		}
		return;
	}
	for (i = 0; i < r->n_ports; i++)
		for (k = 0; k < r->ports[i].n_chains; k++)
			if (!wanted(b, r->ports[i].chains[k].name))
				add_stale(b, r->ports[i].chains[k].name);
	for (sl = 0; sl < RULES_SLOT__COUNT; sl++)
		for (i = 0; i < r->tree[sl].n_chains; i++)
			if (!wanted(b, r->tree[sl].chains[i].name))
				add_stale_in(b,
					     strcmp(rules_slot_table((enum rules_slot)sl), "nat") ==
						     0,
					     r->tree[sl].chains[i].name);
}

/* ---- dispatch chains -------------------------------------------------- */

/* Append the spec of "-A CHAIN spec\n" @line (up to @end) to @out. */
static const char *line_spec(const char *line, const char *chain)
{
	return line + 3 + strlen(chain) + 1;
}

/* Every line of a slot text, called back one by one. */
#define FOR_EACH_LINE(text, len, line, nl)                                \
	for (line = (text); line && line < (text) + (len); line = nl + 1) \
		if ((nl = memchr(line, '\n', (size_t)((text) + (len)-line))) != NULL)

static void add_delete(struct rules_buf *out, const char *chain, const char *line, const char *nl)
{
	const char *spec = line_spec(line, chain);

	rules_buf_adds(out, "-D ");
	rules_buf_adds(out, chain);
	rules_buf_addc(out, ' ');
	rules_buf_add(out, spec, (size_t)(nl - spec) + 1);
}

static void add_insert(struct rules_buf *out, const char *chain, size_t pos, const char *line,
		       const char *nl)
{
	const char *spec = line_spec(line, chain);

	rules_buf_adds(out, "-I ");
	rules_buf_adds(out, chain);
	rules_buf_addc(out, ' ');
	rules_buf_addu(out, pos);
	rules_buf_addc(out, ' ');
	rules_buf_add(out, spec, (size_t)(nl - spec) + 1);
}

static bool slot_same(const struct rec_port *a, const struct rec_port *b, int s)
{
	return a->slot_len[s] == b->slot_len[s] &&
	       (!a->slot_len[s] || memcmp(a->slot[s], b->slot[s], a->slot_len[s]) == 0);
}

/*
 * Rules of slot @s: a rewrite (full plans, or too many edits) into @decls and
 * @rules, or -D/-I edits into @rules. @trailer: the fixed last rules of the
 * chain (nat KUBE-SERVICES), unchanged between partial plans.
 */
static void plan_slot(struct builder *b, const struct rules_rec *r, int s, const char *trailer,
		      size_t trailer_len, size_t n_trailer, struct rules_buf *decls,
		      struct rules_buf *rules)
{
	const struct rules_plan *p = b->plan;
	const char *chain = rules_slot_chain(s), *line, *nl;
	struct rules_buf dels, ins;
	size_t i = 0, j = 0, pos = 0, n_dels = 0, n_ins = 0, total = n_trailer;
	int tbl = s == RULES_SLOT_NAT_SERVICES || s == RULES_SLOT_NAT_NODEPORTS;

	for (i = 0; i < p->n_ports; i++)
		total += plan_rec(p, i)->n_slot[s];
	b->plan->stats.rules_total[tbl] += total;

	rules_buf_init(&dels, 0);
	rules_buf_init(&ins, 0);
	if (!b->full) {
		/* merge-walk old and new ports: both sorted the same way */
		for (i = 0; i < p->n_ports || j < r->n_ports;) {
			const struct rec_port *np = i < p->n_ports ? plan_rec(p, i) : NULL;
			const struct rec_port *op = j < r->n_ports ? &r->ports[j] : NULL;
			int c = !np ? 1 : !op ? -1 : strcmp(np->name, op->name);

			if (!c)
				c = (int)np->proto - (int)op->proto;
			if (c >= 0 && op && !(c == 0 && slot_same(np, op, s))) {
				FOR_EACH_LINE(op->slot[s], op->slot_len[s], line, nl)
				{
					add_delete(&dels, chain, line, nl);
					n_dels++;
				}
			}
			if (c <= 0) {
				if (!(c == 0 && slot_same(np, op, s))) {
					size_t at = pos;

					FOR_EACH_LINE(np->slot[s], np->slot_len[s], line, nl)
					{
						add_insert(&ins, chain, ++at, line, nl);
						n_ins++;
					}
				}
				pos += np->n_slot[s];
				i++;
			}
			if (c >= 0)
				j++;
		}
		if (n_dels + n_ins <= EDITS_REWRITE_MIN ||
		    n_dels + n_ins <= total / EDITS_REWRITE_FRACTION) {
			rules_buf_add(rules, dels.data, dels.len);
			rules_buf_add(rules, ins.data, ins.len);
			b->plan->stats.dispatch_edits += n_dels + n_ins;
			b->plan->stats.rules_written[tbl] += n_ins;
			goto out;
		}
	}
	/* rewrite: the declaration flushes the chain; a full plan leaves a chain
	 * that is already right alone */
	rules_buf_reset(&dels);
	for (i = 0; i < p->n_ports; i++)
		rules_buf_add(&dels, plan_rec(p, i)->slot[s], plan_rec(p, i)->slot_len[s]);
	rules_buf_add(&dels, trailer, trailer_len);
	if (!dels.err && adopt(b, rules_slot_table(s), chain, dels.data, dels.len))
		goto out;
	rules__chain_line(decls, chain);
	rules_buf_add(rules, dels.data, dels.len);
	b->plan->stats.rules_written[tbl] += total;
	b->plan->stats.dispatch_rewrites++;
out:
	if (dels.err || ins.err)
		set_err(b, dels.err ? dels.err : ins.err);
	rules_buf_cleanup(&dels);
	rules_buf_cleanup(&ins);
}

/* ---- the dispatch tree (tree layout) ------------------------------------------ */

/* Tree chains of at most this many rules go in one transaction (split plans). */
#define TREE_TXN_RULES 4000

static const struct rec_chain *find_tchain(const struct rec_tree *t, const char *name)
{
	return find_rec_chain(t->chains, t->n_chains, name);
}

/*
 * Build slot @sl's tree from every port's rules in that slot and queue the
 * chains that changed, children before parents: nat's in split plans in
 * transactions of their own after the ports' chains (each only jumps to
 * chains that exist by then), otherwise (and filter's always) in the final
 * transaction. Chains no longer in the tree are stale (deleted in the final
 * transaction, after the top-level chain and their parents stopped jumping to
 * them).
 */
static void plan_tree(struct builder *b, const struct rules_rec *r, enum rules_slot sl)
{
	struct rules_plan *p = b->plan;
	struct rules_plan_stats *st = &p->stats;
	struct rules_dispatch *t = &b->tree[sl];
	struct rec_tree *pt = &p->tree[sl];
	const struct rec_tree *rt = &r->tree[sl];
	int tbl = strcmp(rules_slot_table(sl), "nat") == 0;
	struct rules_buf lines;
	size_t i, block = 0;
	int err;

	rules_buf_init(&lines, 0);
	for (i = 0; i < p->n_ports; i++)
		rules_buf_add(&lines, plan_rec(p, i)->slot[sl], plan_rec(p, i)->slot_len[sl]);
	err = lines.err ? lines.err : rules__dispatch_lines(&b->ctx, sl, lines.data, lines.len, t);
	rules_buf_cleanup(&lines);
	if (err) {
		set_err(b, err);
		return;
	}
	pt->chains = calloc(t->n_chains ? t->n_chains : 1, sizeof(*pt->chains));
	if (!pt->chains) {
		set_err(b, -ENOMEM);
		return;
	}
	pt->n_chains = t->n_chains;
	pt->head_hash = fnv1a(FNV_INIT, t->head.data, t->head.len);
	pt->n_head = t->n_head;
	pt->rules = t->n_head;
	st->dispatch_chains += t->n_chains;
	if (sl == RULES_SLOT_NAT_SERVICES)
		st->dispatch_max_walk = t->max_walk;
	for (i = 0; i < t->n_chains; i++) {
		const struct rules_dispatch_chain *c = &t->chains[i];
		const char *text = t->text.data + c->off;
		uint64_t h = fnv1a(FNV_INIT, text, c->len);
		const struct rec_chain *oc = b->full ? NULL : find_tchain(rt, c->name);

		memcpy(pt->chains[i].name, c->name, sizeof(c->name));
		pt->chains[i].hash = h;
		pt->rules += c->n_rules;
		if (b->full)
			add_wanted(b, pt->chains[i].name);
		if (oc && oc->hash == h) {
			st->chains_skipped++;
			continue;
		}
		if (!write_chain(b, rules_slot_table(sl), c->name, text, c->len,
				 &b->tree_decls[tbl], &b->tree_rules[tbl])) {
			st->chains_skipped++;
			continue;
		}
		st->chains_written++;
		st->rules_written[tbl] += c->n_rules;
		block += c->n_rules;
		if (tbl == 1 && b->po->txn_max_ports && block >= TREE_TXN_RULES) {
			flush_block(b, &b->tree_decls[1], &b->tree_rules[1]);
			block = 0;
		}
	}
	if (tbl == 1 && b->po->txn_max_ports)
		flush_block(b, &b->tree_decls[1], &b->tree_rules[1]);
	qsort(pt->chains, pt->n_chains, sizeof(*pt->chains), cmp_chain);
	/* chains of the old tree that the new one does not have */
	if (!b->full)
		for (i = 0; i < rt->n_chains; i++)
			if (!find_tchain(pt, rt->chains[i].name))
				add_stale_in(b, tbl, rt->chains[i].name);
}

/* The top-level chain of a tree slot: the root jumps (then, for nat
 * KUBE-SERVICES, @trailer: the NodePort jump). */
static void plan_tree_top(struct builder *b, const struct rules_rec *r, enum rules_slot sl,
			  const char *trailer, size_t trailer_len, size_t n_trailer,
			  struct rules_buf *decls, struct rules_buf *rules)
{
	struct rules_plan *p = b->plan;
	const struct rules_dispatch *t = &b->tree[sl];
	int tbl = strcmp(rules_slot_table(sl), "nat") == 0;
	struct rules_buf all;

	p->stats.rules_total[tbl] += t->n_head + n_trailer;
	/* the ports' rules are in the tree: only the roots can change it */
	if (!b->full && r->tree_on && r->tree[sl].head_hash == p->tree[sl].head_hash)
		return;
	rules_buf_init(&all, 0);
	rules_buf_add(&all, t->head.data, t->head.len);
	rules_buf_add(&all, trailer, trailer_len);
	if (all.err) {
		set_err(b, all.err);
	} else if (write_chain(b, rules_slot_table(sl), rules_slot_chain(sl), all.data, all.len,
			       decls, rules)) {
		p->stats.rules_written[tbl] += t->n_head + n_trailer;
		p->stats.dispatch_rewrites++;
	}
	rules_buf_cleanup(&all);
}

/* ---- jump rules in the built-in chains ------------------------------------- */

struct jump {
	const char *table;
	const char *chain;
	const char *spec;
};

/* upstream iptablesJumpChains then iptablesKubeletJumpChains, in order: each is
 * inserted at the top when missing, so later ones end up above earlier ones */
static const struct jump jumps[] = {
	{ "filter", "INPUT",
	  "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service "
	  "portals\" -j KUBE-EXTERNAL-SERVICES" },
	{ "filter", "FORWARD",
	  "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service "
	  "portals\" -j KUBE-EXTERNAL-SERVICES" },
	{ "filter", "INPUT",
	  "-m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS" },
	{ "filter", "FORWARD",
	  "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j "
	  "KUBE-SERVICES" },
	{ "filter", "OUTPUT",
	  "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j "
	  "KUBE-SERVICES" },
	{ "filter", "FORWARD",
	  "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD" },
	{ "filter", "INPUT",
	  "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j "
	  "KUBE-PROXY-FIREWALL" },
	{ "filter", "OUTPUT",
	  "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j "
	  "KUBE-PROXY-FIREWALL" },
	{ "filter", "FORWARD",
	  "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j "
	  "KUBE-PROXY-FIREWALL" },
	{ "nat", "OUTPUT", "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES" },
	{ "nat", "PREROUTING",
	  "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES" },
	{ "nat", "POSTROUTING",
	  "-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING" },
	{ "filter", "INPUT", "-j KUBE-FIREWALL" },
	{ "filter", "OUTPUT", "-j KUBE-FIREWALL" },
};

static size_t count_rule(const struct rules_saved_chain *c, const char *chain, const char *spec)
{
	size_t i, n = 0, cl = strlen(chain);

	for (i = 0; c && c->rules && i < c->n_rules; i++) {
		const char *r = c->rules[i];

		if (strncmp(r, "-A ", 3) == 0 && strncmp(r + 3, chain, cl) == 0 &&
		    r[3 + cl] == ' ' && strcmp(r + 4 + cl, spec) == 0)
			n++;
	}
	return n;
}

/* Exactly one copy of every jump rule of @table: -D extras, -I missing ones. */
static void ensure_jumps(const struct rules_saved *kernel, const char *table,
			 struct rules_buf *rules)
{
	size_t i, n;

	for (i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++) {
		const struct jump *j = &jumps[i];

		if (strcmp(j->table, table) != 0)
			continue;
		n = count_rule(rules_saved_chain(kernel, table, j->chain), j->chain, j->spec);
		for (; n > 1; n--)
			rules_buf_printf(rules, "-D %s %s\n", j->chain, j->spec);
		if (n == 0)
			rules_buf_printf(rules, "-I %s %s\n", j->chain, j->spec);
	}
}

/* ---- the final transaction ------------------------------------------------ */

static void canary(struct builder *b, const char *table, struct rules_buf *decls,
		   struct rules_buf *rules)
{
	static const char line[] = "-A " RULES_CANARY_CHAIN " " RULES_CANARY_RULE "\n";

	(void)write_chain(b, table, RULES_CANARY_CHAIN, line, sizeof(line) - 1, decls, rules);
}

/* One top-level chain's part of the final transaction. */
struct piece {
	struct rules_buf decl;
	struct rules_buf rules;
};

static void pieces_init(struct piece *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		rules_buf_init(&p[i].decl, 0);
		rules_buf_init(&p[i].rules, 0);
	}
}

/* Append the pieces' declarations (in @decl_order) or rules (in @rule_order). */
static void pieces_out(struct builder *b, const struct piece *p, const int *order, size_t n,
		       bool decls, struct rules_buf *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct rules_buf *x = decls ? &p[order[i]].decl : &p[order[i]].rules;

		if (x->err)
			set_err(b, x->err);
		rules_buf_add(out, x->data, x->len);
	}
}

static void pieces_cleanup(struct piece *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		rules_buf_cleanup(&p[i].decl);
		rules_buf_cleanup(&p[i].rules);
	}
}

/* Split @fixed (rules of several fixed chains, one run each) into pieces by
 * chain name (@names[i] goes to @p[@idx[i]]), adopting what is right. */
static void fixed_pieces(struct builder *b, const char *table, const struct rules_buf *fixed,
			 const char *const *names, const int *idx, size_t n, struct piece *p,
			 size_t *written)
{
	const char *line, *nl, *end = fixed->data + fixed->len, *run = NULL;
	size_t i, k, lines = 0;

	for (i = 0; i < n; i++) {
		size_t cl = strlen(names[i]);

		run = NULL;
		lines = 0;
		for (line = fixed->data; line && line < end; line = nl + 1) {
			nl = memchr(line, '\n', (size_t)(end - line));
			if (!nl)
				nl = end;
			k = (size_t)(nl - line);
			if (k > 3 + cl && strncmp(line + 3, names[i], cl) == 0 &&
			    line[3 + cl] == ' ') {
				if (!run)
					run = line;
				lines++;
			} else if (run) {
				break;
			}
		}
		if (line > end)
			line = end;
		if (run && write_chain(b, table, names[i], run, (size_t)(line - run),
				       &p[idx[i]].decl, &p[idx[i]].rules))
			*written += lines;
	}
}

static void final_filter(struct builder *b, const struct rules_rec *r, struct rules_buf *out)
{
	enum { F_SVC, F_EXT, F_FWD, F_NP, F_PFW, F_FW, F_CANARY, F__N };
	static const int fslots[] = { RULES_SLOT_FILTER_SERVICES, RULES_SLOT_FILTER_EXTERNAL,
				      RULES_SLOT_FILTER_NODEPORTS, RULES_SLOT_FILTER_FIREWALL };
	static const int fpiece[] = { F_SVC, F_EXT, F_NP, F_PFW };
	/* upstream's order: declarations, then rules by chain */
	static const int decl_order[] = { F_SVC, F_EXT, F_FWD, F_NP, F_PFW, F_FW, F_CANARY };
	static const int rule_order[] = { F_CANARY, F_SVC, F_EXT, F_NP, F_PFW, F_FW, F_FWD };
	static const char *const fixed_names[] = { "KUBE-FIREWALL", "KUBE-FORWARD" };
	static const int fixed_idx[] = { F_FW, F_FWD };
	struct piece p[F__N];
	struct rules_buf decls, rules, fixed_decls, fixed;
	size_t i, n_fixed, written = 0;

	pieces_init(p, F__N);
	rules_buf_init(&decls, 0);
	rules_buf_init(&rules, 0);
	rules_buf_init(&fixed_decls, 0);
	rules_buf_init(&fixed, 0);
	n_fixed = rules__fixed_filter(&b->ctx, &fixed_decls, &fixed);
	b->plan->fixed_rules[0] = n_fixed;
	b->plan->stats.rules_total[0] += n_fixed;
	if (b->full) {
		const struct rules_saved *k = b->po->kernel;

		fixed_pieces(b, "filter", &fixed, fixed_names, fixed_idx, 2, p, &written);
		b->plan->stats.rules_written[0] += written;
		/* KUBE-FIREWALL without rules of ours: the jumps need it; never
		 * flush kubelet's copy */
		if (k && !fixed_decls.len && !rules_saved_chain(k, "filter", "KUBE-FIREWALL"))
			rules__chain_line(&p[F_FW].decl, "KUBE-FIREWALL");
		if (b->po->canary)
			canary(b, "filter", &p[F_CANARY].decl, &p[F_CANARY].rules);
	}
	for (i = 0; i < sizeof(fslots) / sizeof(fslots[0]); i++) {
		enum rules_slot sl = (enum rules_slot)fslots[i];

		if (b->ctx.tree && rules__dispatch_prefix(sl))
			plan_tree_top(b, r, sl, NULL, 0, 0, &p[fpiece[i]].decl,
				      &p[fpiece[i]].rules);
		else
			plan_slot(b, r, sl, NULL, 0, 0, &p[fpiece[i]].decl, &p[fpiece[i]].rules);
	}
	pieces_out(b, p, decl_order, F__N, true, &decls);
	pieces_out(b, p, rule_order, F__N, false, &rules);
	rules_buf_add(&decls, b->tree_decls[0].data, b->tree_decls[0].len);
	rules_buf_add(&rules, b->tree_rules[0].data, b->tree_rules[0].len);
	/* after the rules that jumped to them are gone: flush, then delete */
	for (i = 0; i < b->n_stale[0]; i++) {
		rules__chain_line(&decls, b->stale[0][i]);
		rules_buf_printf(&rules, "-X %s\n", b->stale[0][i]);
	}
	if (b->full && b->po->kernel)
		ensure_jumps(b->po->kernel, "filter", &rules);
	if (decls.len || rules.len) {
		rules_buf_adds(out, "*filter\n");
		rules_buf_add(out, decls.data, decls.len);
		rules_buf_add(out, rules.data, rules.len);
		rules_buf_adds(out, "COMMIT\n");
	}
	if (decls.err || rules.err || fixed.err || fixed_decls.err)
		set_err(b, -ENOMEM);
	pieces_cleanup(p, F__N);
	rules_buf_cleanup(&decls);
	rules_buf_cleanup(&rules);
	rules_buf_cleanup(&fixed_decls);
	rules_buf_cleanup(&fixed);
}

/* The nat section; @own_decls/@own_rules: own chains going in the same
 * transaction (single-transaction plans), or NULL. */
static void final_nat(struct builder *b, const struct rules_rec *r, struct rules_buf *out,
		      const struct rules_buf *own_decls, const struct rules_buf *own_rules)
{
	enum { N_SVC, N_NP, N_POST, N_MASQ, N_CANARY, N__N };
	static const int decl_order[] = { N_SVC, N_NP, N_POST, N_MASQ, N_CANARY };
	static const int rule_order[] = { N_CANARY, N_POST, N_MASQ, N_SVC, N_NP };
	static const char *const fixed_names[] = { "KUBE-POSTROUTING", "KUBE-MARK-MASQ" };
	static const int fixed_idx[] = { N_POST, N_MASQ };
	struct piece p[N__N];
	struct rules_buf decls, rules, trailer, fixed;
	size_t i, n_trailer, n_fixed, written = 0;

	pieces_init(p, N__N);
	rules_buf_init(&decls, 0);
	rules_buf_init(&rules, 0);
	rules_buf_init(&trailer, 0);
	rules_buf_init(&fixed, 0);
	n_trailer = rules__nodeports_jump(&b->ctx, &trailer);
	n_fixed = rules__fixed_nat(&b->ctx, &fixed);
	b->plan->fixed_rules[1] = n_fixed;
	b->plan->stats.rules_total[1] += n_fixed;
	if (b->full) {
		if (b->po->canary)
			canary(b, "nat", &p[N_CANARY].decl, &p[N_CANARY].rules);
		fixed_pieces(b, "nat", &fixed, fixed_names, fixed_idx, 2, p, &written);
		b->plan->stats.rules_written[1] += written;
	}
	if (b->ctx.tree)
		plan_tree_top(b, r, RULES_SLOT_NAT_SERVICES, trailer.data, trailer.len, n_trailer,
			      &p[N_SVC].decl, &p[N_SVC].rules);
	else
		plan_slot(b, r, RULES_SLOT_NAT_SERVICES, trailer.data, trailer.len, n_trailer,
			  &p[N_SVC].decl, &p[N_SVC].rules);
	plan_slot(b, r, RULES_SLOT_NAT_NODEPORTS, NULL, 0, 0, &p[N_NP].decl, &p[N_NP].rules);
	pieces_out(b, p, decl_order, N__N, true, &decls);
	pieces_out(b, p, rule_order, N__N, false, &rules);
	if (own_decls)
		rules_buf_add(&decls, own_decls->data, own_decls->len);
	rules_buf_add(&decls, b->tree_decls[1].data, b->tree_decls[1].len);
	if (own_rules)
		rules_buf_add(&rules, own_rules->data, own_rules->len);
	rules_buf_add(&rules, b->tree_rules[1].data, b->tree_rules[1].len);
	/* after the rules that jumped to them are gone: flush, then delete */
	for (i = 0; i < b->n_stale[1]; i++) {
		rules__chain_line(&decls, b->stale[1][i]);
		rules_buf_printf(&rules, "-X %s\n", b->stale[1][i]);
	}
	b->plan->stats.chains_deleted = b->n_stale[0] + b->n_stale[1];
	if (b->full && b->po->kernel)
		ensure_jumps(b->po->kernel, "nat", &rules);
	if (decls.len || rules.len) {
		rules_buf_adds(out, "*nat\n");
		rules_buf_add(out, decls.data, decls.len);
		rules_buf_add(out, rules.data, rules.len);
		rules_buf_adds(out, "COMMIT\n");
	}
	if (decls.err || rules.err || trailer.err || fixed.err)
		set_err(b, -ENOMEM);
	pieces_cleanup(p, N__N);
	rules_buf_cleanup(&decls);
	rules_buf_cleanup(&rules);
	rules_buf_cleanup(&trailer);
	rules_buf_cleanup(&fixed);
}

static void final_txn(struct builder *b, const struct rules_rec *r, bool with_own)
{
	struct rules_buf txn;
	size_t i;
	int k;

	rules_buf_init(&txn, 0);
	final_filter(b, r, &txn);
	if (with_own)
		final_nat(b, r, &txn, &b->own_decls, &b->own_rules);
	else
		final_nat(b, r, &txn, NULL, NULL);
	if (b->full && b->po->canary)
		rules_buf_adds(&txn,
			       "*mangle\n:" RULES_CANARY_CHAIN " - [0:0]\n-A " RULES_CANARY_CHAIN
			       " " RULES_CANARY_RULE "\nCOMMIT\n");
	add_txn(b, &txn);
	rules_buf_cleanup(&txn);

	for (k = 0; k < RULES_SLOT__COUNT; k++)
		if (b->plan->tree[k].rules)
			b->plan->stats.rules_total[strcmp(rules_slot_table((enum rules_slot)k),
							  "nat") == 0] +=
				b->plan->tree[k].rules - b->plan->tree[k].n_head;
	for (i = 0; i < b->plan->n_ports; i++) {
		const struct rec_port *p = plan_rec(b->plan, i);

		b->plan->stats.rules_total[1] += p->own_rules;
		b->plan->stats.no_local_internal += p->no_local_internal;
		b->plan->stats.no_local_external += p->no_local_external;
	}
}

int rules_rec_plan(const struct rules_rec *r, const struct rules_state *st,
		   const struct rules_opts *o, const struct rules_plan_opts *po,
		   struct rules_plan **out)
{
	struct builder b;
	struct rules_plan *p;
	size_t i, k;
	int err;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(&b, 0, sizeof(b));
	b.po = po;
	b.plan = p;
	rules_ctx_init(&b.ctx, st, o);
	p->family = st->family;
	p->opts_hash = opts_hash(&b.ctx);
	p->large_cluster = b.ctx.large_cluster;
	p->tree_on = b.ctx.tree;
	/* a change of layout is a full plan: KUBE-SERVICES is rewritten whole in
	 * the last transaction, after the chains of the new layout exist */
	b.full = po->full || !r->valid || r->opts_hash != p->opts_hash ||
		 r->large_cluster != p->large_cluster || r->family != st->family ||
		 r->tree_on != p->tree_on;
	p->stats.full = b.full;
	p->stats.ports = st->n_ports;
	rules_port_out_init(&b.po_out);
	rules_buf_init(&b.own_decls, 0);
	rules_buf_init(&b.own_rules, 0);

	/* Own chains go in transactions of their own only when splitting;
	 * otherwise they join the dispatch rules in one transaction. When
	 * splitting a full plan, KUBE-MARK-MASQ (which SEP and EXT chains jump
	 * to) must exist before the first of them: an empty kernel has none. */
	if (b.full && po->txn_max_ports) {
		struct rules_buf first;

		struct rules_buf line;

		rules_buf_init(&first, 0);
		rules_buf_init(&line, 0);
		rules_buf_printf(&line, "-A KUBE-MARK-MASQ -j MARK --or-mark %s\n", b.ctx.mark);
		if (!line.err && !adopt(&b, "nat", "KUBE-MARK-MASQ", line.data, line.len)) {
			rules_buf_adds(&first, "*nat\n");
			rules__chain_line(&first, "KUBE-MARK-MASQ");
			rules_buf_add(&first, line.data, line.len);
			rules_buf_adds(&first, "COMMIT\n");
			add_txn(&b, &first);
		} else if (line.err) {
			set_err(&b, line.err);
		} else {
			/* counted again when final_nat() adopts it */
			p->stats.chains_adopted--;
		}
		rules_buf_cleanup(&line);
		rules_buf_cleanup(&first);
	}
	for (i = 0; i < RULES_SLOT__COUNT; i++)
		rules_dispatch_init(&b.tree[i]);
	for (i = 0; i < 2; i++) {
		rules_buf_init(&b.tree_decls[i], 0);
		rules_buf_init(&b.tree_rules[i], 0);
	}
	walk_ports(&b, r, st);
	for (i = 0; b.ctx.tree && !b.err && i < RULES_SLOT__COUNT; i++)
		if (rules__dispatch_prefix((enum rules_slot)i))
			plan_tree(&b, r, (enum rules_slot)i);
	if (b.full && !b.err)
		find_stale_full(&b, r);
	if (!b.err)
		final_txn(&b, r, po->txn_max_ports == 0);
	err = b.err;

	for (k = 0; k < 2; k++) {
		for (i = 0; i < b.n_stale[k]; i++)
			free(b.stale[k][i]);
		free(b.stale[k]);
	}
	free(b.wanted);
	rules_buf_cleanup(&b.own_decls);
	rules_buf_cleanup(&b.own_rules);
	for (i = 0; i < 2; i++) {
		rules_buf_cleanup(&b.tree_decls[i]);
		rules_buf_cleanup(&b.tree_rules[i]);
	}
	for (i = 0; i < RULES_SLOT__COUNT; i++)
		rules_dispatch_cleanup(&b.tree[i]);
	rules_port_out_cleanup(&b.po_out);
	if (err) {
		rules_plan_free(p);
		return err;
	}
	*out = p;
	return 0;
}

const struct rules_txn *rules_plan_txns(const struct rules_plan *p, size_t *n)
{
	*n = p->n_txns;
	return p->txns;
}

const struct rules_plan_stats *rules_plan_stats(const struct rules_plan *p)
{
	return &p->stats;
}

void rules_rec_commit(struct rules_rec *r, struct rules_plan *p)
{
	struct rec_port *ports;
	size_t i;

	ports = calloc(p->n_ports ? p->n_ports : 1, sizeof(*ports));
	if (!ports) {
		/* cannot record: the next plan must be full */
		rules_rec_invalidate(r);
		return;
	}
	for (i = 0; i < p->n_ports; i++) {
		if (p->ports[i].old) {
			/* move it out of the old record */
			ports[i] = r->ports[p->ports[i].old_idx];
			memset(&r->ports[p->ports[i].old_idx], 0, sizeof(struct rec_port));
			p->ports[i].old = NULL;
		} else {
			ports[i] = p->ports[i].own;
			memset(&p->ports[i].own, 0, sizeof(struct rec_port));
		}
	}
	rec_clear_ports(r);
	r->ports = ports;
	r->n_ports = p->n_ports;
	r->family = p->family;
	r->opts_hash = p->opts_hash;
	r->large_cluster = p->large_cluster;
	r->fixed_rules[0] = p->fixed_rules[0];
	r->fixed_rules[1] = p->fixed_rules[1];
	for (i = 0; i < RULES_SLOT__COUNT; i++) {
		free(r->tree[i].chains);
		r->tree[i] = p->tree[i];
	}
	r->tree_on = p->tree_on;
	memset(p->tree, 0, sizeof(p->tree));
	r->valid = true;
	p->n_ports = 0;
}

void rules_plan_free(struct rules_plan *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->n_txns; i++)
		free(p->txns[i].text);
	free(p->txns);
	for (i = 0; i < p->n_ports; i++)
		if (!p->ports[i].old)
			rec_port_cleanup(&p->ports[i].own);
	free(p->ports);
	for (i = 0; i < RULES_SLOT__COUNT; i++)
		free(p->tree[i].chains);
	free(p);
}

/* ---- --cleanup -------------------------------------------------------------- */

bool rules_chain_owned(const char *table, const char *chain)
{
	static const char *const nat[] = { "KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING",
					   "KUBE-MARK-MASQ", RULES_CANARY_CHAIN };
	static const char *const filter[] = { "KUBE-SERVICES",	     "KUBE-EXTERNAL-SERVICES",
					      "KUBE-FORWARD",	     "KUBE-NODEPORTS",
					      "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL",
					      RULES_CANARY_CHAIN };
	const char *const *list = NULL;
	size_t i, n = 0;

	if (strcmp(table, "nat") == 0) {
		if (rules_chain_is_service(chain) || rules_chain_is_dispatch(chain))
			return true;
		list = nat;
		n = sizeof(nat) / sizeof(nat[0]);
	} else if (strcmp(table, "filter") == 0) {
		if (rules_chain_is_dispatch(chain))
			return true;
		list = filter;
		n = sizeof(filter) / sizeof(filter[0]);
	} else if (strcmp(table, "mangle") == 0) {
		return strcmp(chain, RULES_CANARY_CHAIN) == 0;
	}
	for (i = 0; i < n; i++)
		if (strcmp(list[i], chain) == 0)
			return true;
	return false;
}

/* The target of a saved rule ("... -j TARGET ..."), as a length into @rule. */
static const char *rule_target(const char *rule, size_t *len)
{
	const char *j = strstr(rule, " -j ");

	if (!j)
		return NULL;
	*len = strcspn(j + 4, " ");
	return j + 4;
}

int rules_cleanup_payload(const struct rules_saved *kernel, struct rules_buf *out)
{
	size_t t, c, k;

	for (t = 0; t < kernel->n_tables; t++) {
		const struct rules_saved_table *tab = &kernel->tables[t];
		struct rules_buf decls, rules;

		rules_buf_init(&decls, 0);
		rules_buf_init(&rules, 0);
		/* jumps into our chains, from any chain that stays */
		for (c = 0; c < tab->n_chains; c++) {
			const struct rules_saved_chain *ch = &tab->chains[c];

			if (rules_chain_owned(tab->name, ch->name) || !ch->rules)
				continue;
			for (k = 0; k < ch->n_rules; k++) {
				size_t len;
				const char *tgt = rule_target(ch->rules[k], &len);
				char name[64];

				if (!tgt || len >= sizeof(name))
					continue;
				memcpy(name, tgt, len);
				name[len] = '\0';
				if (rules_chain_owned(tab->name, name))
					rules_buf_printf(&rules, "-D %s\n", ch->rules[k] + 3);
			}
		}
		for (c = 0; c < tab->n_chains; c++) {
			if (!rules_chain_owned(tab->name, tab->chains[c].name))
				continue;
			rules__chain_line(&decls, tab->chains[c].name);
			rules_buf_printf(&rules, "-X %s\n", tab->chains[c].name);
		}
		if (decls.len || rules.len) {
			rules_buf_printf(out, "*%s\n", tab->name);
			rules_buf_add(out, decls.data, decls.len);
			rules_buf_add(out, rules.data, rules.len);
			rules_buf_adds(out, "COMMIT\n");
		}
		if ((decls.err || rules.err) && !out->err)
			out->err = -ENOMEM;
		rules_buf_cleanup(&decls);
		rules_buf_cleanup(&rules);
	}
	return out->err;
}
