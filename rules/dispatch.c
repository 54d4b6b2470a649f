/*
 * rules/dispatch.c - the ClusterIP dispatch tree (see dispatch.h).
 */
#include "rules/dispatch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHILD_BITS 5 /* at most 32 children per chain */

/* ---- prefixes -------------------------------------------------------------- */

static unsigned int fam_bits(bool v6)
{
	return v6 ? 128 : 32;
}

static int bit(const unsigned char *a, unsigned int i)
{
	return (a[i / 8] >> (7 - i % 8)) & 1;
}

static void clear_host_bits(unsigned char *a, unsigned int len, unsigned int bits)
{
	unsigned int i;

	for (i = len; i < bits; i++)
		a[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
}

int rules_prefix_parse(const char *s, struct rules_prefix *out)
{
	char ip[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	unsigned int bits;
	char *end;

	memset(out, 0, sizeof(*out));
	if (n == 0 || n >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, out->addr) == 1) {
		out->v6 = false;
	} else if (inet_pton(AF_INET6, ip, out->addr) == 1) {
		out->v6 = true;
	} else {
		return -EINVAL;
	}
	bits = fam_bits(out->v6);
	out->len = bits;
	if (slash) {
		unsigned long l = strtoul(slash + 1, &end, 10);

		if (*end || end == slash + 1 || l > bits)
			return -EINVAL;
		out->len = (unsigned int)l;
	}
	clear_host_bits(out->addr, out->len, bits);
	return 0;
}

bool rules_prefix_contains(const struct rules_prefix *p, const unsigned char *a, bool v6)
{
	unsigned int i;

	if (p->v6 != v6)
		return false;
	for (i = 0; i < p->len; i++)
		if (bit(p->addr, i) != bit(a, i))
			return false;
	return true;
}

const char *rules_prefix_str(const struct rules_prefix *p, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (!inet_ntop(p->v6 ? AF_INET6 : AF_INET, p->addr, ip, sizeof(ip)))
		snprintf(ip, sizeof(ip), "?");
	snprintf(buf, len, "%s/%u", ip, p->len);
	return buf;
}

bool rules_chain_is_dispatch(const char *name)
{
	static const char *const pfx[] = { RULES_DISPATCH_CHAIN_PFX, RULES_DISPATCH_PFX_REJECT,
					   RULES_DISPATCH_PFX_EXTERNAL,
					   RULES_DISPATCH_PFX_FIREWALL };
	size_t i;

	for (i = 0; i < sizeof(pfx) / sizeof(pfx[0]); i++)
		if (strncmp(name, pfx[i], strlen(pfx[i])) == 0)
			return true;
	return false;
}

/* Longest common prefix of @n addresses (n >= 1), at least @from bits, capped at @bits. */
static unsigned int common_len(const struct rules_dispatch_entry *e, size_t n, unsigned int from,
			       unsigned int bits)
{
	unsigned int len = bits;
	size_t i;

	/* entries are sorted: the first and the last differ first */
	for (i = from; i < bits; i++)
		if (bit(e[0].addr, i) != bit(e[n - 1].addr, i)) {
			len = i;
			break;
		}
	return len < from ? from : len;
}

int rules_dispatch_entry_parse(const char *line, size_t len, const char *chain,
			       enum rules_family family, size_t order,
			       struct rules_dispatch_entry *e)
{
	const char *d = NULL, *p, *end = line + len;
	char ip[INET6_ADDRSTRLEN + 8];
	size_t n, cl = strlen(chain);

	memset(e, 0, sizeof(*e));
	if (len < cl + 4 || memcmp(line, "-A ", 3) != 0 || memcmp(line + 3, chain, cl) != 0 ||
	    line[3 + cl] != ' ')
		return -EINVAL;
	for (p = line; p + 4 <= end; p++)
		if (memcmp(p, " -d ", 4) == 0 && (p == line || p[-1] != '!')) {
			d = p + 4;
			break;
		}
	if (!d)
		return -EINVAL;
	for (n = 0; d + n < end && d[n] != ' ' && d[n] != '/'; n++)
		;
	if (n == 0 || n >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, d, n);
	ip[n] = '\0';
	e->v6 = family == RULES_IPV6;
	if (inet_pton(e->v6 ? AF_INET6 : AF_INET, ip, e->addr) != 1)
		return -EINVAL;
	e->spec = line + 4 + cl;
	e->spec_len = len - (4 + cl);
	e->order = order;
	return 0;
}

/* The given roots of @v6's family, minus those inside another. */
static size_t given_roots(bool v6, const char *const *cidrs, size_t n_cidrs,
			  struct rules_prefix *out, size_t max)
{
	size_t k, x, y, got = 0, kept = 0;

	for (k = 0; k < n_cidrs && got < max; k++) {
		struct rules_prefix p;

		if (rules_prefix_parse(cidrs[k], &p) == 0 && p.v6 == v6)
			out[got++] = p;
	}
	for (x = 0; x < got; x++) {
		for (y = 0; y < got; y++)
			if (y != x && rules_prefix_contains(&out[y], out[x].addr, v6) &&
			    (out[y].len < out[x].len || (out[y].len == out[x].len && y < x)))
				break;
		if (y == got)
			out[kept++] = out[x];
	}
	return kept;
}

/* ---- the tree -------------------------------------------------------------- */

void rules_dispatch_init(struct rules_dispatch *d)
{
	memset(d, 0, sizeof(*d));
	rules_buf_init(&d->text, 0);
	rules_buf_init(&d->head, 0);
}

void rules_dispatch_cleanup(struct rules_dispatch *d)
{
	free(d->chains);
	rules_buf_cleanup(&d->text);
	rules_buf_cleanup(&d->head);
	memset(d, 0, sizeof(*d));
}

static int cmp_entry(const void *a, const void *b)
{
	const struct rules_dispatch_entry *x = a, *y = b;
	int c = memcmp(x->addr, y->addr, 16);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* @pfx + the hash of the prefix (nat's key kept as "cip:" + prefix). */
static int chain_name(const char *pfx, const struct rules_prefix *p, char *out)
{
	char s[80], key[112];
	size_t pl = strlen(pfx);

	rules_prefix_str(p, s, sizeof(s));
	if (strcmp(pfx, RULES_DISPATCH_CHAIN_PFX) == 0)
		snprintf(key, sizeof(key), "cip:%s", s);
	else
		snprintf(key, sizeof(key), "%s%s", pfx, s);
	if (pl + RULES_HASH_LEN >= RULES_CHAIN_NAME_MAX)
		return -EINVAL;
	memcpy(out, pfx, pl);
	return rules_chain_hash(key, "", NULL, out + pl);
}

/* "-A <from> -m comment --comment \"cluster IPs in P\" -d P -j <to>\n" */
static void jump_line(struct rules_buf *b, const char *from, const struct rules_prefix *p,
		      const char *to)
{
	char s[80];

	rules_prefix_str(p, s, sizeof(s));
	if (!p->len) /* everything: no -d (iptables would drop "-d 0.0.0.0/0" anyway) */
		rules_buf_printf(b, "-A %s -m comment --comment \"service IPs in %s\" -j %s\n",
				 from, s, to);
	else
		rules_buf_printf(b,
				 "-A %s -m comment --comment \"service IPs in %s\" -d %s -j %s\n",
				 from, s, s, to);
}

struct child {
	struct rules_prefix prefix;
	char name[RULES_CHAIN_NAME_MAX];
	unsigned int walk;
};

/*
 * Build the chain for @p holding @e[0..n) (sorted, all inside @p); its
 * children first. Returns the most rules a packet walks from this chain on,
 * or 0 with d->text.err / -ENOMEM set in *err.
 */
static unsigned int build_node(struct rules_dispatch *d, const char *pfx,
			       const struct rules_prefix *p, struct rules_dispatch_entry *e,
			       size_t n, size_t leaf_max, int *err)
{
	struct rules_dispatch_chain *c;
	struct child *kids = NULL;
	unsigned int bits = fam_bits(p->v6), start, k, walk = 0, n_rules = 0;
	size_t i, j, n_kids = 0;
	char name[RULES_CHAIN_NAME_MAX];
	bool leaf;

	if (chain_name(pfx, p, name)) {
		*err = -ENOMEM;
		return 0;
	}
	start = common_len(e, n, p->len, bits);
	leaf = n <= leaf_max || start >= bits;
	if (!leaf) {
		/* k = ceil(log2(n / target)) in [1, MAX_CHILD_BITS], within the family,
		 * for children of about a quarter of the leaf size */
		size_t target = leaf_max / 4 ? leaf_max / 4 : 1;

		for (k = 1; k < MAX_CHILD_BITS && (target << k) < n; k++)
			;
		if (k > bits - start)
			k = bits - start;
		/* addresses all in a narrower prefix: one jump to it, so that a
		 * packet outside it leaves after one rule instead of one per child */
		if (start > p->len)
			k = start - p->len, start = p->len;
		kids = calloc(n, sizeof(*kids));
		if (!kids) {
			*err = -ENOMEM;
			return 0;
		}
		for (i = 0; i < n; i = j) {
			struct child *ch = &kids[n_kids++];

			ch->prefix.v6 = p->v6;
			ch->prefix.len = start + k;
			memcpy(ch->prefix.addr, e[i].addr, 16);
			clear_host_bits(ch->prefix.addr, ch->prefix.len, bits);
			for (j = i + 1;
			     j < n && rules_prefix_contains(&ch->prefix, e[j].addr, p->v6); j++)
				;
			ch->walk = build_node(d, pfx, &ch->prefix, e + i, j - i, leaf_max, err);
			if (*err) {
				free(kids);
				return 0;
			}
			if (chain_name(pfx, &ch->prefix, ch->name)) {
				free(kids);
				*err = -ENOMEM;
				return 0;
			}
		}
	}
	if (d->n_chains == d->cap_chains) {
		size_t cap = d->cap_chains ? d->cap_chains * 2 : 16;
		void *q = realloc(d->chains, cap * sizeof(*d->chains));

		if (!q) {
			free(kids);
			*err = -ENOMEM;
			return 0;
		}
		d->chains = q;
		d->cap_chains = cap;
	}
	c = &d->chains[d->n_chains++];
	memset(c, 0, sizeof(*c));
	memcpy(c->name, name, sizeof(name));
	c->prefix = *p;
	c->leaf = leaf;
	c->off = d->text.len;
	if (leaf) {
		for (i = 0; i < n; i++) {
			rules_buf_adds(&d->text, "-A ");
			rules_buf_adds(&d->text, name);
			rules_buf_addc(&d->text, ' ');
			rules_buf_add(&d->text, e[i].spec, e[i].spec_len);
			rules_buf_addc(&d->text, '\n');
		}
		n_rules = (unsigned int)n;
		walk = n_rules;
	} else {
		for (i = 0; i < n_kids; i++) {
			jump_line(&d->text, name, &kids[i].prefix, kids[i].name);
			/* the packet walks the jumps up to its child's, then the child */
			if (i + 1 + kids[i].walk > walk)
				walk = (unsigned int)(i + 1) + kids[i].walk;
		}
		n_rules = (unsigned int)n_kids;
	}
	free(kids);
	/* the pointer may have moved while the children were built */
	c = &d->chains[d->n_chains - 1];
	c->len = d->text.len - c->off;
	c->n_rules = n_rules;
	if (d->text.err)
		*err = d->text.err;
	return walk;
}

int rules_dispatch_build(struct rules_dispatch_entry *entries, size_t n, enum rules_family family,
			 const char *const *cidrs, size_t n_cidrs, size_t leaf_max,
			 const char *prefix, const char *from, struct rules_dispatch *d)
{
	bool v6 = family == RULES_IPV6, rest = false;
	struct rules_prefix roots[RULES_DISPATCH_MAX_ROOTS + 1];
	struct rules_dispatch_entry *part;
	unsigned char *root_of;
	size_t n_roots, r, i, m;
	int err = 0;

	free(d->chains);
	d->chains = NULL;
	d->n_chains = d->cap_chains = 0;
	rules_buf_reset(&d->text);
	rules_buf_reset(&d->head);
	d->n_head = 0;
	d->max_walk = 0;
	if (!n)
		return 0;
	qsort(entries, n, sizeof(*entries), cmp_entry);
	n_roots = given_roots(v6, cidrs, n_cidrs, roots, RULES_DISPATCH_MAX_ROOTS);
	root_of = malloc(n);
	part = malloc(n * sizeof(*part));
	if (!root_of || !part) {
		free(root_of);
		free(part);
		return -ENOMEM;
	}
	/* each entry to the first root containing it; the rest to a derived one */
	for (i = 0; i < n; i++) {
		for (r = 0; r < n_roots; r++)
			if (rules_prefix_contains(&roots[r], entries[i].addr, v6))
				break;
		root_of[i] = (unsigned char)r;
		if (r == n_roots) {
			struct rules_prefix *x = &roots[n_roots];
			unsigned int bits = fam_bits(v6), k;

			if (!rest) {
				memset(x, 0, sizeof(*x));
				memcpy(x->addr, entries[i].addr, 16);
				x->v6 = v6;
				x->len = bits;
				rest = true;
			}
			for (k = 0; k < x->len; k++)
				if (bit(x->addr, k) != bit(entries[i].addr, k))
					break;
			x->len = k;
		}
	}
	if (rest) {
		roots[n_roots].len -= roots[n_roots].len % 4;
		clear_host_bits(roots[n_roots].addr, roots[n_roots].len, fam_bits(v6));
		n_roots++;
	}
	for (r = 0; r < n_roots && !err; r++) {
		char name[RULES_CHAIN_NAME_MAX];
		unsigned int walk;

		for (i = 0, m = 0; i < n; i++)
			if (root_of[i] == r)
				part[m++] = entries[i];
		if (!m)
			continue;
		walk = build_node(d, prefix, &roots[r], part, m,
				  leaf_max ? leaf_max : RULES_DISPATCH_LEAF_MAX, &err);
		if (err)
			break;
		if (chain_name(prefix, &roots[r], name)) {
			err = -ENOMEM;
			break;
		}
		jump_line(&d->head, from, &roots[r], name);
		d->n_head++;
		if (d->n_head + walk > d->max_walk)
			d->max_walk = d->n_head + walk;
	}
	free(root_of);
	free(part);
	if (!err)
		err = d->text.err ? d->text.err : d->head.err;
	return err;
}

int rules_dispatch_gate(const char *text, size_t len, const char *prefix, const char *from,
			struct rules_dispatch *d)
{
	const char *line = text, *end = text + len, *nl;
	struct rules_dispatch_chain *c;
	size_t fl = strlen(from);
	unsigned int n = 0;

	if (!len)
		return 0;
	if (d->n_chains == d->cap_chains) {
		size_t cap = d->cap_chains ? d->cap_chains * 2 : 16;
		void *q = realloc(d->chains, cap * sizeof(*d->chains));

		if (!q)
			return -ENOMEM;
		d->chains = q;
		d->cap_chains = cap;
	}
	c = &d->chains[d->n_chains++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%sNODEPORTS", prefix);
	c->leaf = true;
	c->off = d->text.len;
	for (; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			nl = end;
		if ((size_t)(nl - line) <= 4 + fl)
			continue;
		rules_buf_printf(&d->text, "-A %s %.*s\n", c->name, (int)(nl - line - 4 - (long)fl),
				 line + 4 + fl);
		n++;
	}
	c->len = d->text.len - c->off;
	c->n_rules = n;
	rules_buf_printf(&d->head,
			 "-A %s -m comment --comment \"NodePorts of services without (local) "
			 "endpoints\" -m addrtype --dst-type LOCAL -j %s\n",
			 from, c->name);
	d->n_head++;
	if (d->n_head + n > d->max_walk)
		d->max_walk = d->n_head + n;
	return d->text.err ? d->text.err : d->head.err;
}
