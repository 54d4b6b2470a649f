/*
 * test/helpers/trace.c - a packet tracer over a nat table (see trace.h).
 */
#include "test/helpers/trace.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules/dispatch.h"

struct trule {
	bool has_s, neg_s, has_d, neg_d, has_i, neg_i;
	struct rules_prefix s, d;
	char proto[8];
	int dport; /* -1: any */
	char iface[32];
	int src_local, dst_local; /* 0: no check, 1: LOCAL, -1: ! LOCAL */
	bool never;		  /* rcheck / mark / conntrack: never matches */
	bool probabilistic;
	char target[64]; /* "" when none */
	char dnat[80];
	char dst_text[64]; /* -d as written, for trace_doc_targets */
};

struct tchain {
	char name[64];
	struct trule *rules;
	size_t n;
};

struct ttable {
	struct tchain *chains;
	size_t n;
};

struct trace_doc {
	struct tchain *chains; /* nat */
	size_t n;
	struct ttable filter;
	char (*strs)[80]; /* storage for targets' strings */
	size_t n_strs;
};

static int cmp_tchain(const void *a, const void *b)
{
	return strcmp(((const struct tchain *)a)->name, ((const struct tchain *)b)->name);
}

static struct tchain *find_in(struct tchain *chains, size_t n, const char *name)
{
	struct tchain key;

	snprintf(key.name, sizeof(key.name), "%s", name);
	return n ? bsearch(&key, chains, n, sizeof(key), cmp_tchain) : NULL;
}

static struct tchain *find(const struct trace_doc *d, const char *name)
{
	return find_in(d->chains, d->n, name);
}

/* Split @line into tokens (quotes honoured) in @buf; returns the count. */
static int tokens(const char *line, char *buf, size_t len, char **tok, int max)
{
	size_t o = 0;
	int n = 0;

	while (*line) {
		while (*line == ' ')
			line++;
		if (!*line)
			break;
		if (n == max || o + strlen(line) + 2 > len)
			fail_msg("trace: rule too long: %s", line);
		tok[n++] = &buf[o];
		if (*line == '"') {
			for (line++; *line && *line != '"'; line++)
				buf[o++] = *line;
			if (*line)
				line++;
		} else {
			while (*line && *line != ' ')
				buf[o++] = *line++;
		}
		buf[o++] = '\0';
	}
	return n;
}

static void compile(const char *spec, struct trule *r)
{
	char buf[4096], *t[128];
	int n = tokens(spec, buf, sizeof(buf), t, 128), i;
	bool neg = false;
	const char *match = "";

	memset(r, 0, sizeof(*r));
	r->dport = -1;
	for (i = 0; i < n; i++) {
		const char *a = t[i], *v = i + 1 < n ? t[i + 1] : "";

		if (strcmp(a, "!") == 0) {
			neg = true;
			continue;
		}
		if (strcmp(a, "-s") == 0 || strcmp(a, "-d") == 0) {
			struct rules_prefix *p = a[1] == 's' ? &r->s : &r->d;

			if (rules_prefix_parse(v, p))
				fail_msg("trace: bad address %s in %s", v, spec);
			if (a[1] == 's') {
				r->has_s = true;
				r->neg_s = neg;
			} else {
				r->has_d = true;
				r->neg_d = neg;
				snprintf(r->dst_text, sizeof(r->dst_text), "%s", neg ? "" : v);
			}
			i++;
		} else if (strcmp(a, "-p") == 0) {
			snprintf(r->proto, sizeof(r->proto), "%s", v);
			i++;
		} else if (strcmp(a, "-i") == 0) {
			r->has_i = true;
			r->neg_i = neg;
			snprintf(r->iface, sizeof(r->iface), "%s", v);
			i++;
		} else if (strcmp(a, "-m") == 0) {
			match = v;
			if (strcmp(v, "mark") == 0 || strcmp(v, "conntrack") == 0)
				r->never = true;
			i++;
		} else if (strcmp(a, "--dport") == 0) {
			r->dport = atoi(v);
			i++;
		} else if (strcmp(a, "--src-type") == 0 || strcmp(a, "--dst-type") == 0) {
			int *x = a[2] == 's' ? &r->src_local : &r->dst_local;

			if (strcmp(v, "LOCAL") != 0)
				fail_msg("trace: addrtype %s not modelled", v);
			*x = neg ? -1 : 1;
			i++;
		} else if (strcmp(a, "--rcheck") == 0 && strcmp(match, "recent") == 0) {
			r->never = true;
		} else if (strcmp(a, "--probability") == 0) {
			r->probabilistic = true;
			i++;
		} else if (strcmp(a, "-j") == 0) {
			snprintf(r->target, sizeof(r->target), "%s", v);
			i++;
		} else if (strcmp(a, "--to-destination") == 0) {
			snprintf(r->dnat, sizeof(r->dnat), "%s", v);
			i++;
		}
		neg = false;
	}
}

static void add_rule(struct tchain **chains, size_t *n_chains, const char *chain, size_t len,
		     const char *spec)
{
	struct tchain *c = NULL;
	size_t i;

	for (i = *n_chains; i-- > 0;)
		if (strlen((*chains)[i].name) == len &&
		    strncmp((*chains)[i].name, chain, len) == 0) {
			c = &(*chains)[i];
			break;
		}
	if (!c) {
		*chains = realloc(*chains, (*n_chains + 1) * sizeof(**chains));
		c = &(*chains)[(*n_chains)++];
		memset(c, 0, sizeof(*c));
		snprintf(c->name, sizeof(c->name), "%.*s", (int)len, chain);
	}
	if (!spec)
		return;
	c->rules = realloc(c->rules, (c->n + 1) * sizeof(*c->rules));
	compile(spec, &c->rules[c->n++]);
}

struct trace_doc *trace_doc_new(const char *text, bool v6)
{
	const char *line = text, *nl, *want = v6 ? "# IPv6:" : "# IPv4:";
	bool sections = strstr(text, "# IPv4:") || strstr(text, "# IPv6:");
	bool in_sec = !sections, in_nat = false, seen_nat = false, in_filter = false;
	struct trace_doc *d = calloc(1, sizeof(*d));
	char buf[8192];

	for (; *line; line = nl + 1) {
		size_t n;

		nl = strchr(line, '\n');
		if (!nl)
			nl = line + strlen(line);
		n = (size_t)(nl - line);
		if (n >= sizeof(buf))
			fail_msg("trace: line too long");
		memcpy(buf, line, n);
		buf[n] = '\0';
		if (sections && buf[0] == '#' &&
		    (strncmp(buf, "# IPv4:", 7) == 0 || strncmp(buf, "# IPv6:", 7) == 0))
			in_sec = strncmp(buf, want, 7) == 0;
		else if (in_sec && strcmp(buf, "*nat") == 0 && !seen_nat)
			in_nat = seen_nat = true;
		else if (in_sec && strcmp(buf, "*filter") == 0 && !d->filter.n)
			in_filter = true;
		else if ((in_nat || in_filter) && strcmp(buf, "COMMIT") == 0)
			in_nat = in_filter = false;
		else if ((in_nat || in_filter) && (buf[0] == ':' || strncmp(buf, "-A ", 3) == 0)) {
			struct tchain **cs = in_nat ? &d->chains : &d->filter.chains;
			size_t *ns = in_nat ? &d->n : &d->filter.n;

			if (buf[0] == ':') {
				add_rule(cs, ns, buf + 1, strcspn(buf + 1, " "), NULL);
			} else {
				size_t cl = strcspn(buf + 3, " ");

				add_rule(cs, ns, buf + 3, cl, buf[3 + cl] ? buf + 4 + cl : "");
			}
		}
		if (!*nl)
			break;
	}
	if (!seen_nat) {
		trace_doc_free(d);
		return NULL;
	}
	qsort(d->chains, d->n, sizeof(*d->chains), cmp_tchain);
	if (d->filter.n)
		qsort(d->filter.chains, d->filter.n, sizeof(*d->filter.chains), cmp_tchain);
	return d;
}

void trace_doc_free(struct trace_doc *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n; i++)
		free(d->chains[i].rules);
	free(d->chains);
	for (i = 0; i < d->filter.n; i++)
		free(d->filter.chains[i].rules);
	free(d->filter.chains);
	free(d->strs);
	free(d);
}

static const char *keep(struct trace_doc *d, const char *s)
{
	d->strs = realloc(d->strs, (d->n_strs + 1) * sizeof(*d->strs));
	snprintf(d->strs[d->n_strs], sizeof(d->strs[0]), "%s", s);
	return d->strs[d->n_strs++];
}

size_t trace_doc_targets(struct trace_doc *d, struct trace_packet *out, size_t max)
{
	size_t i, k, t, n = 0;

	/* the strings array moves while it grows: collect first, point after */
	for (t = 0; t < 2; t++) {
		struct tchain *chains = t ? d->filter.chains : d->chains;
		size_t n_chains = t ? d->filter.n : d->n;

		for (i = 0; i < n_chains; i++) {
			struct tchain *c = &chains[i];
			bool np = strcmp(c->name, "KUBE-NODEPORTS") == 0 ||
				  strcmp(c->name, "KUBE-EXTERNAL-SERVICES") == 0 ||
				  (t && rules_chain_is_dispatch(c->name));

			for (k = 0; k < c->n && n < max; k++) {
				const struct trule *r = &c->rules[k];
				char ip[64];

				if (np && r->dport >= 0 && !r->has_d) {
					out[n].dst = NULL; /* a node address, from the caller */
				} else if (r->dst_text[0] && r->dport >= 0 &&
					   (strncmp(c->name, "KUBE-SERVICES", 13) == 0 ||
					    strcmp(c->name, "KUBE-EXTERNAL-SERVICES") == 0 ||
					    strcmp(c->name, "KUBE-PROXY-FIREWALL") == 0 ||
					    rules_chain_is_dispatch(c->name))) {
					snprintf(ip, sizeof(ip), "%.*s",
						 (int)strcspn(r->dst_text, "/"), r->dst_text);
					out[n].dst = (const char *)(uintptr_t)(d->n_strs + 1);
					keep(d, ip);
				} else {
					continue;
				}
				out[n].src = NULL;
				out[n].proto = r->proto[0] ? r->proto : "tcp";
				out[n].dport = (unsigned int)r->dport;
				out[n].in_iface = NULL;
				n++;
			}
		}
	}
	for (i = 0; i < n; i++)
		if (out[i].dst)
			out[i].dst = d->strs[(uintptr_t)out[i].dst - 1];
	return n;
}

/* ---- walking ------------------------------------------------------------------ */

struct walk {
	const struct trace_doc *d;
	struct tchain *chains; /* the table being walked */
	size_t n_chains;
	const struct trace_packet *p;
	struct rules_prefix src, dst;
	bool src_local, dst_local;
	char out[1024];
	bool masq;
	size_t steps;
	int depth;
};

static bool matches(struct walk *w, const struct trule *r)
{
	if (r->never)
		return false;
	if (r->has_s && rules_prefix_contains(&r->s, w->src.addr, w->src.v6) == r->neg_s)
		return false;
	if (r->has_d && rules_prefix_contains(&r->d, w->dst.addr, w->dst.v6) == r->neg_d)
		return false;
	if (r->proto[0] && strcmp(r->proto, w->p->proto) != 0)
		return false;
	if (r->dport >= 0 && (unsigned int)r->dport != w->p->dport)
		return false;
	if (r->has_i && (w->p->in_iface &&
			 (r->iface[strlen(r->iface) - 1] == '+'
				  ? strncmp(w->p->in_iface, r->iface, strlen(r->iface) - 1) == 0
				  : strcmp(w->p->in_iface, r->iface) == 0)) == r->neg_i)
		return false;
	if (r->src_local && (r->src_local > 0) != w->src_local)
		return false;
	if (r->dst_local && (r->dst_local > 0) != w->dst_local)
		return false;
	return true;
}

static void emit(struct walk *w, const char *what, const char *arg)
{
	size_t l = strlen(w->out);

	snprintf(w->out + l, sizeof(w->out) - l, "%s%s%s%s", l ? ", " : "", what, arg ? " " : "",
		 arg ? arg : "");
}

/* Returns whether the walk ended (a terminal target). */
static bool walk_chain(struct walk *w, const char *name)
{
	const struct tchain *c = find_in(w->chains, w->n_chains, name);
	size_t i;

	if (!c)
		fail_msg("trace: jump to undeclared chain %s", name);
	if (++w->depth > 64)
		fail_msg("trace: chain loop at %s", name);
	for (i = 0; i < c->n; i++) {
		const struct trule *r = &c->rules[i];

		w->steps++;
		if (!r->target[0] || !matches(w, r))
			continue;
		if (strcmp(r->target, "KUBE-MARK-MASQ") == 0) {
			w->masq = true;
		} else if (strcmp(r->target, "DNAT") == 0) {
			emit(w, "DNAT", r->dnat);
			w->depth--;
			return true;
		} else if (strcmp(r->target, "ACCEPT") == 0 || strcmp(r->target, "DROP") == 0 ||
			   strcmp(r->target, "REJECT") == 0) {
			emit(w, r->target, NULL);
			w->depth--;
			return true;
		} else if (strcmp(r->target, "RETURN") == 0) {
			break;
		} else if (strcmp(r->target, "MARK") == 0 || strcmp(r->target, "MASQUERADE") == 0) {
			continue;
		} else if (walk_chain(w, r->target) && !r->probabilistic) {
			w->depth--;
			return true;
		}
	}
	w->depth--;
	return false;
}

static bool is_local(const char *const *local, const struct rules_prefix *a)
{
	for (; local && *local; local++) {
		struct rules_prefix l;

		if (rules_prefix_parse(*local, &l) == 0 && l.v6 == a->v6 &&
		    memcmp(l.addr, a->addr, 16) == 0)
			return true;
	}
	return false;
}

const char *trace_packet(const struct trace_doc *d, const struct trace_packet *p,
			 const char *const *local, char *buf, size_t len, size_t *steps_out)
{
	struct walk w;

	memset(&w, 0, sizeof(w));
	w.d = d;
	w.p = p;
	if (rules_prefix_parse(p->src, &w.src) || rules_prefix_parse(p->dst, &w.dst))
		fail_msg("trace: bad packet %s -> %s", p->src, p->dst);
	w.src_local = is_local(local, &w.src);
	w.dst_local = is_local(local, &w.dst);
	w.chains = d->chains;
	w.n_chains = d->n;
	if (find(d, "KUBE-SERVICES"))
		walk_chain(&w, "KUBE-SERVICES");
	/* then the filter chains, as upstream's tracer: the destination is the
	 * first DNAT's address (its port is left as it was) */
	if (d->filter.n) {
		static const char *const fchains[] = { "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES",
						       "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL" };
		const char *dn = strstr(w.out, "DNAT ");
		size_t k;

		if (dn) {
			char ip[64];
			const char *a = dn + 5;
			size_t l;

			if (*a == '[') {
				a++;
				l = strcspn(a, "]");
			} else {
				l = strcspn(a, ":");
			}
			snprintf(ip, sizeof(ip), "%.*s", (int)l, a);
			if (rules_prefix_parse(ip, &w.dst))
				fail_msg("trace: bad DNAT target %s", dn);
			w.dst_local = is_local(local, &w.dst);
		}
		w.chains = d->filter.chains;
		w.n_chains = d->filter.n;
		emit(&w, "filter:", NULL);
		for (k = 0; k < 4; k++)
			if (find_in(w.chains, w.n_chains, fchains[k]))
				walk_chain(&w, fchains[k]);
	}
	snprintf(buf, len, "%s%s", w.out, w.masq ? " | masq" : "");
	if (steps_out)
		*steps_out = w.steps;
	return buf;
}
