/*
 * rules/canon.c - the canonical form of a rule (see canon.h).
 */
#include "rules/canon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS   96
#define MAX_SECTIONS 16
#define MAX_GROUPS   16

enum { BASE_S, BASE_D, BASE_I, BASE_O, BASE_P, BASE__COUNT };

struct tok {
	const char *s;
	bool quoted;
};

/* A match (-m NAME) or the target (-j NAME) with its option groups. */
struct section {
	const char *name;
	char *groups[MAX_GROUPS]; /* "[!]--opt v ..." in the arena */
	int n_groups;
	char *text; /* the whole section, canonical, in the arena */
};

struct canon {
	char in[RULES_CANON_MAX + 1]; /* tokens, NUL-terminated one after another */
	char arena[3 * RULES_CANON_MAX];
	size_t used;
	struct tok toks[MAX_TOKENS];
	int n_toks;
	char *base[BASE__COUNT];
	struct section matches[MAX_SECTIONS];
	int n_matches;
	struct section target;
	bool has_target;
};

uint64_t rules_fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* ---- tokens -------------------------------------------------------------- */

static int tokenize(struct canon *c, const char *spec, size_t len)
{
	size_t i = 0, o = 0;

	if (len > RULES_CANON_MAX)
		return -E2BIG;
	while (i < len) {
		bool quoted = false;

		while (i < len && (spec[i] == ' ' || spec[i] == '\t' || spec[i] == '\n'))
			i++;
		if (i == len)
			break;
		if (c->n_toks == MAX_TOKENS)
			return -E2BIG;
		c->toks[c->n_toks].s = &c->in[o];
		if (spec[i] == '"') {
			quoted = true;
			for (i++; i < len && spec[i] != '"'; i++) {
				if (spec[i] == '\\' && i + 1 < len &&
				    (spec[i + 1] == '"' || spec[i + 1] == '\\'))
					i++;
				c->in[o++] = spec[i];
			}
			if (i == len)
				return -EINVAL;
			i++;
		} else {
			while (i < len && spec[i] != ' ' && spec[i] != '\t' && spec[i] != '\n')
				c->in[o++] = spec[i++];
		}
		c->in[o++] = '\0';
		c->toks[c->n_toks++].quoted = quoted;
	}
	return 0;
}

/* ---- the arena ------------------------------------------------------------- */

static char *arena_printf(struct canon *c, const char *fmt, ...) RULES_PRINTF(2, 3);

static char *arena_printf(struct canon *c, const char *fmt, ...)
{
	size_t room = sizeof(c->arena) - c->used;
	char *p = c->arena + c->used;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		return NULL;
	c->used += (size_t)n + 1;
	return p;
}

/* ---- values ------------------------------------------------------------------ */

/* "10.0.0.1" -> "10.0.0.1/32", "fd00::/64" masked and canonical. */
static char *norm_addr(struct canon *c, const char *v)
{
	unsigned char a[16];
	char ip[64], out[INET6_ADDRSTRLEN];
	const char *slash = strchr(v, '/');
	size_t n = slash ? (size_t)(slash - v) : strlen(v);
	int af, bits, plen, i;
	char *end;

	if (n >= sizeof(ip))
		return NULL;
	memcpy(ip, v, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, a) == 1) {
		af = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, ip, a) == 1) {
		af = AF_INET6;
		bits = 128;
	} else {
		return NULL;
	}
	plen = bits;
	if (slash) {
		unsigned char m[4];

		if (af == AF_INET && strchr(slash + 1, '.') &&
		    inet_pton(AF_INET, slash + 1, m) == 1) {
			uint32_t mask = ((uint32_t)m[0] << 24) | ((uint32_t)m[1] << 16) |
					((uint32_t)m[2] << 8) | m[3];

			for (plen = 0; plen < 32 && (mask & (0x80000000u >> plen)); plen++)
				;
		} else {
			long l = strtol(slash + 1, &end, 10);

			if (*end || end == slash + 1 || l < 0 || l > bits)
				return NULL;
			plen = (int)l;
		}
	}
	for (i = 0; i < bits / 8; i++) {
		int keep = plen - i * 8;

		if (keep <= 0)
			a[i] = 0;
		else if (keep < 8)
			a[i] &= (unsigned char)(0xff << (8 - keep));
	}
	if (!inet_ntop(af, a, out, sizeof(out)))
		return NULL;
	return arena_printf(c, "%s/%d", out, plen);
}

/* "0x00004000/0x00004000" -> "0x4000/0x4000"; no mask: all ones. */
static char *norm_mark(struct canon *c, const char *v)
{
	unsigned long long val, mask = 0xffffffffULL;
	char *end;

	val = strtoull(v, &end, 0);
	if (end == v)
		return NULL;
	if (*end == '/') {
		const char *m = end + 1;

		mask = strtoull(m, &end, 0);
		if (end == m)
			return NULL;
	}
	if (*end)
		return NULL;
	return arena_printf(c, "0x%llx/0x%llx", val, mask);
}

/* What xt_statistic stores: the probability scaled to 2^31, rounded. */
static char *norm_probability(struct canon *c, const char *v)
{
	char *end;
	double p = strtod(v, &end);

	if (end == v || *end || p < 0 || p > 1)
		return NULL;
	return arena_printf(c, "%ld", lround(p * 2147483648.0));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "NEW,RELATED" in a fixed order. */
static char *norm_list(struct canon *c, const char *v)
{
	char buf[256], *items[16], *p, *save = NULL;
	char *out;
	int n = 0, i;
	size_t room, used = 0;

	if (strlen(v) >= sizeof(buf))
		return NULL;
	strcpy(buf, v);
	for (p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		if (n == 16)
			return NULL;
		items[n++] = p;
	}
	qsort(items, (size_t)n, sizeof(*items), cmp_str);
	out = c->arena + c->used;
	room = sizeof(c->arena) - c->used;
	for (i = 0; i < n; i++) {
		int w = snprintf(out + used, room - used, "%s%s", i ? "," : "", items[i]);

		if (w < 0 || (size_t)w >= room - used)
			return NULL;
		used += (size_t)w;
	}
	if (used >= room)
		return NULL;
	out[used] = '\0';
	c->used += used + 1;
	return out;
}

/* ---- option groups ----------------------------------------------------------- */

static bool is_value(const struct tok *t)
{
	return t->quoted || (t->s[0] != '-' && strcmp(t->s, "!") != 0) ||
	       (t->s[0] == '-' && t->s[1] >= '0' && t->s[1] <= '9');
}

static bool all_ones_mask(const char *v)
{
	return strcmp(v, "255.255.255.255") == 0 ||
	       strcmp(v, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == 0;
}

/*
 * One option of section @sec: @name with @vals. Returns the canonical group,
 * "" for a default that is dropped, or NULL on failure.
 */
static char *norm_group(struct canon *c, const struct section *sec, bool is_target, bool neg,
			const char *name, const char *const *vals, int n_vals)
{
	const char *bang = neg ? "! " : "";
	const char *v0 = n_vals ? vals[0] : NULL;
	char *v;

	if (!is_target) {
		if (strcmp(sec->name, "recent") == 0) {
			if (strcmp(name, "--rsource") == 0 && !n_vals)
				return "";
			if (strcmp(name, "--mask") == 0 && n_vals == 1 && all_ones_mask(v0))
				return "";
		} else if (strcmp(sec->name, "statistic") == 0 && n_vals == 1 &&
			   strcmp(name, "--probability") == 0) {
			v = norm_probability(c, v0);
			return v ? arena_printf(c, "%s--probability %s", bang, v) : NULL;
		} else if ((strcmp(sec->name, "mark") == 0 || strcmp(sec->name, "connmark") == 0) &&
			   n_vals == 1 && strcmp(name, "--mark") == 0) {
			v = norm_mark(c, v0);
			return v ? arena_printf(c, "%s--mark %s", bang, v) : NULL;
		} else if (strcmp(sec->name, "conntrack") == 0 && n_vals == 1 &&
			   (strcmp(name, "--ctstate") == 0 || strcmp(name, "--ctstatus") == 0)) {
			v = norm_list(c, v0);
			return v ? arena_printf(c, "%s%s %s", bang, name, v) : NULL;
		}
	} else if (strcmp(sec->name, "MARK") == 0 && n_vals == 1 && !neg) {
		unsigned long long val, mask;
		char *end;

		v = norm_mark(c, v0);
		if (!v)
			return NULL;
		val = strtoull(v, &end, 0);
		mask = strtoull(end + 1, NULL, 0);
		if (strcmp(name, "--set-xmark") == 0)
			return arena_printf(c, "--set-xmark 0x%llx/0x%llx", val, mask);
		if (strchr(v0, '/'))
			return NULL; /* --or-mark etc. take no mask */
		if (strcmp(name, "--or-mark") == 0)
			return arena_printf(c, "--set-xmark 0x%llx/0x%llx", val, val);
		if (strcmp(name, "--xor-mark") == 0)
			return arena_printf(c, "--set-xmark 0x%llx/0x0", val);
		if (strcmp(name, "--and-mark") == 0)
			return arena_printf(c, "--set-xmark 0x0/0x%llx", ~val & 0xffffffffULL);
	} else if (strcmp(sec->name, "MARK") == 0 && n_vals == 1 && neg) {
		return NULL;
	} else if (strcmp(sec->name, "REJECT") == 0 && n_vals == 1 &&
		   strcmp(name, "--reject-with") == 0 &&
		   (strcmp(v0, "icmp-port-unreachable") == 0 ||
		    strcmp(v0, "icmp6-port-unreachable") == 0)) {
		return "";
	}
	if (!n_vals)
		return arena_printf(c, "%s%s", bang, name);
	if (n_vals == 1)
		return arena_printf(c, "%s%s %s", bang, name, v0);
	if (n_vals == 2)
		return arena_printf(c, "%s%s %s %s", bang, name, v0, vals[1]);
	return NULL;
}

/* Join a section's sorted groups into its canonical text. */
static char *section_text(struct canon *c, struct section *s, const char *flag)
{
	char *out = c->arena + c->used;
	size_t room = sizeof(c->arena) - c->used, used;
	int i, w;

	qsort(s->groups, (size_t)s->n_groups, sizeof(*s->groups), cmp_str);
	w = snprintf(out, room, "%s %s", flag, s->name);
	if (w < 0 || (size_t)w >= room)
		return NULL;
	used = (size_t)w;
	for (i = 0; i < s->n_groups; i++) {
		w = snprintf(out + used, room - used, " %s", s->groups[i]);
		if (w < 0 || (size_t)w >= room - used)
			return NULL;
		used += (size_t)w;
	}
	c->used += used + 1;
	return out;
}

/* ---- the rule ---------------------------------------------------------------- */

static int base_index(const char *t)
{
	static const char *const names[][2] = {
		[BASE_S] = { "-s", "--source" },       [BASE_D] = { "-d", "--destination" },
		[BASE_I] = { "-i", "--in-interface" }, [BASE_O] = { "-o", "--out-interface" },
		[BASE_P] = { "-p", "--protocol" },
	};
	int i;

	for (i = 0; i < BASE__COUNT; i++)
		if (strcmp(t, names[i][0]) == 0 || strcmp(t, names[i][1]) == 0)
			return i;
	return -1;
}

static int parse(struct canon *c)
{
	static const char *const base_flag[] = { "-s", "-d", "-i", "-o", "-p" };
	struct section *cur = NULL;
	bool neg = false;
	int i = 0;

	while (i < c->n_toks) {
		const char *t = c->toks[i].s;
		int b;

		if (c->toks[i].quoted)
			return -EINVAL;
		if (strcmp(t, "!") == 0) {
			neg = true;
			i++;
			continue;
		}
		b = base_index(t);
		if (b >= 0) {
			const char *v;
			char *nv = NULL;
			char lower[32];

			if (i + 1 >= c->n_toks || c->base[b])
				return -EINVAL;
			v = c->toks[i + 1].s;
			if (b == BASE_S || b == BASE_D) {
				nv = norm_addr(c, v);
			} else if (b == BASE_P) {
				size_t k;

				for (k = 0; v[k] && k + 1 < sizeof(lower); k++)
					lower[k] = (char)(v[k] >= 'A' && v[k] <= 'Z' ? v[k] + 32
										     : v[k]);
				lower[k] = '\0';
				nv = lower;
			} else {
				nv = (char *)v;
			}
			if (!nv)
				return -EINVAL;
			/* "-d 0.0.0.0/0" matches everything: iptables-save leaves it out */
			if (!neg && (b == BASE_S || b == BASE_D) &&
			    (strcmp(nv, "0.0.0.0/0") == 0 || strcmp(nv, "::/0") == 0)) {
				i += 2;
				continue;
			}
			c->base[b] = arena_printf(c, "%s%s %s", neg ? "! " : "", base_flag[b], nv);
			if (!c->base[b])
				return -E2BIG;
			neg = false;
			i += 2;
			continue;
		}
		if (strcmp(t, "-m") == 0 || strcmp(t, "--match") == 0 || strcmp(t, "-j") == 0 ||
		    strcmp(t, "--jump") == 0 || strcmp(t, "-g") == 0 || strcmp(t, "--goto") == 0) {
			bool target = t[1] != 'm' && strcmp(t, "--match") != 0;

			if (neg || i + 1 >= c->n_toks)
				return -EINVAL;
			if (target) {
				if (c->has_target)
					return -EINVAL;
				c->has_target = true;
				cur = &c->target;
				/* -g and -j differ: keep the flag in the name */
				cur->name = (t[1] == 'g' || strcmp(t, "--goto") == 0)
						    ? arena_printf(c, "goto:%s", c->toks[i + 1].s)
						    : c->toks[i + 1].s;
				if (!cur->name)
					return -E2BIG;
			} else {
				if (c->n_matches == MAX_SECTIONS)
					return -E2BIG;
				cur = &c->matches[c->n_matches++];
				cur->name = c->toks[i + 1].s;
			}
			i += 2;
			continue;
		}
		if (t[0] == '-' && cur) {
			const char *vals[4];
			int n_vals = 0;
			char *g;

			for (i++; i < c->n_toks && is_value(&c->toks[i]); i++) {
				if (n_vals == 4)
					return -EINVAL;
				vals[n_vals++] = c->toks[i].s;
			}
			g = norm_group(c, cur, cur == &c->target, neg, t, vals, n_vals);
			neg = false;
			if (!g)
				return -EINVAL;
			if (!g[0])
				continue; /* a default */
			if (cur->n_groups == MAX_GROUPS)
				return -E2BIG;
			cur->groups[cur->n_groups++] = g;
			continue;
		}
		return -EINVAL;
	}
	return neg ? -EINVAL : 0;
}

/* Where the canonical text goes: a buffer, or a running hash. */
struct sink {
	struct rules_buf *buf;
	uint64_t h;
};

static void emit(struct sink *k, const char *s)
{
	if (k->buf)
		rules_buf_adds(k->buf, s);
	else
		k->h = rules_fnv1a(k->h, s, strlen(s));
}

static int canonicalise(struct canon *c, const char *spec, size_t len, struct sink *k)
{
	char *m[MAX_SECTIONS], *t = NULL;
	int i, err;

	c->used = 0;
	c->n_toks = 0;
	c->n_matches = 0;
	c->has_target = false;
	memset(c->base, 0, sizeof(c->base));
	memset(c->matches, 0, sizeof(c->matches));
	memset(&c->target, 0, sizeof(c->target));
	err = tokenize(c, spec, len);
	if (!err)
		err = parse(c);
	if (err)
		return err;
	for (i = 0; i < c->n_matches; i++) {
		m[i] = section_text(c, &c->matches[i], "-m");
		if (!m[i])
			return -E2BIG;
	}
	qsort(m, (size_t)c->n_matches, sizeof(*m), cmp_str);
	if (c->has_target) {
		t = section_text(c, &c->target, "-j");
		if (!t)
			return -E2BIG;
	}
	/* everything is known to fit: only now does anything leave */
	for (i = 0; i < BASE__COUNT; i++)
		if (c->base[i]) {
			emit(k, c->base[i]);
			emit(k, " ");
		}
	for (i = 0; i < c->n_matches; i++) {
		emit(k, m[i]);
		emit(k, " ");
	}
	if (t)
		emit(k, t);
	return 0;
}

int rules_canon_spec(const char *spec, size_t len, struct rules_buf *out)
{
	struct canon *c = malloc(sizeof(*c));
	struct sink k = { .buf = out };
	int err;

	if (!c)
		return -ENOMEM;
	err = canonicalise(c, spec, len, &k);
	free(c);
	return err ? err : out->err;
}

uint64_t rules_canon_hash(uint64_t h, const char *spec, size_t len)
{
	struct canon c;
	struct sink k = { .h = h };

	if (canonicalise(&c, spec, len, &k) == 0) {
		h = k.h;
	} else {
		h = rules_fnv1a(h, "raw:", 4);
		h = rules_fnv1a(h, spec, len);
	}
	/* a rule boundary, so that rule lists cannot run into each other */
	return rules_fnv1a(h, "\n", 1);
}
