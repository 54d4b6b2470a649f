/*
 * rules/save.c - parse iptables-save output.
 */
#include "rules/save.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rules/canon.h"

static struct rules_saved_table *add_table(struct rules_saved *s, const char *name, size_t len)
{
	struct rules_saved_table *t;

	t = realloc(s->tables, (s->n_tables + 1) * sizeof(*t));
	if (!t)
		return NULL;
	s->tables = t;
	t = &s->tables[s->n_tables];
	memset(t, 0, sizeof(*t));
	t->name = strndup(name, len);
	if (!t->name)
		return NULL;
	s->n_tables++;
	return t;
}

static struct rules_saved_chain *add_chain(struct rules_saved_table *t, const char *name,
					   size_t len, bool builtin)
{
	struct rules_saved_chain *c;

	if (t->n_chains % 64 == 0) {
		c = realloc(t->chains, (t->n_chains + 64) * sizeof(*c));
		if (!c)
			return NULL;
		t->chains = c;
		/* the index points into the old array: linear lookups until rebuilt */
		free(t->by_name);
		t->by_name = NULL;
	}
	c = &t->chains[t->n_chains];
	memset(c, 0, sizeof(*c));
	c->name = strndup(name, len);
	if (!c->name)
		return NULL;
	c->builtin = builtin;
	c->canon_hash = RULES_CANON_HASH_INIT;
	t->n_chains++;
	return c;
}

static struct rules_saved_chain *find_chain(struct rules_saved_table *t, const char *name,
					    size_t len, struct rules_saved_chain *hint)
{
	size_t i;

	/* rules come grouped by chain: the last one used is almost always it */
	if (hint && strlen(hint->name) == len && memcmp(hint->name, name, len) == 0)
		return hint;
	for (i = t->n_chains; i-- > 0;)
		if (strlen(t->chains[i].name) == len && memcmp(t->chains[i].name, name, len) == 0)
			return &t->chains[i];
	return NULL;
}

static int add_rule(struct rules_saved_chain *c, const char *line, size_t len)
{
	char **r;

	if (c->n_rules % 16 == 0) {
		r = realloc(c->rules, (c->n_rules + 16) * sizeof(*r));
		if (!r)
			return -ENOMEM;
		c->rules = r;
	}
	c->rules[c->n_rules] = strndup(line, len);
	if (!c->rules[c->n_rules])
		return -ENOMEM;
	c->n_rules++;
	return 0;
}

static int cmp_chain_ptr(const void *a, const void *b)
{
	return strcmp((*(struct rules_saved_chain *const *)a)->name,
		      (*(struct rules_saved_chain *const *)b)->name);
}

/* The by-name index of every table (rebuilt: parsing may have appended). */
static int index_tables(struct rules_saved *s)
{
	size_t i, j;

	for (i = 0; i < s->n_tables; i++) {
		struct rules_saved_table *t = &s->tables[i];
		struct rules_saved_chain **idx;

		idx = realloc(t->by_name, (t->n_chains ? t->n_chains : 1) * sizeof(*idx));
		if (!idx)
			return -ENOMEM;
		t->by_name = idx;
		for (j = 0; j < t->n_chains; j++)
			idx[j] = &t->chains[j];
		qsort(idx, t->n_chains, sizeof(*idx), cmp_chain_ptr);
	}
	return 0;
}

int rules_save_parse(const char *text, size_t len, rules_save_keep_fn keep, void *arg,
		     struct rules_saved *out, size_t *line_out)
{
	const char *p = text, *end = text + len, *nl;
	struct rules_saved_table *t = NULL;
	struct rules_saved_chain *c = NULL;
	size_t lineno = 0, n;

	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		lineno++;
		n = (size_t)(nl - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (n == 0 || p[0] == '#')
			continue;
		if (p[0] == '*') {
			t = add_table(out, p + 1, n - 1);
			if (!t)
				return -ENOMEM;
			c = NULL;
		} else if (!t) {
			goto out_proto;
		} else if (p[0] == ':') {
			size_t name_len = strcspn(p + 1, " \n");
			const char *policy = p + 1 + name_len;

			if (!name_len || name_len > n - 1)
				goto out_proto;
			/* ":NAME - [0:0]" for user chains, ":NAME ACCEPT [..]" for built-ins */
			c = add_chain(t, p + 1, name_len, policy + 1 < p + n && policy[1] != '-');
			if (!c)
				return -ENOMEM;
		} else if (n >= 3 && p[0] == '-' && p[1] == 'A' && p[2] == ' ') {
			size_t name_len = strcspn(p + 3, " \n");
			struct rules_saved_chain *rc = find_chain(t, p + 3, name_len, c);

			if (!rc)
				goto out_proto;
			c = rc;
			if (n > 4 + name_len)
				rc->canon_hash = rules_canon_hash(rc->canon_hash, p + 4 + name_len,
								  n - 4 - name_len);
			else
				rc->canon_hash = rules_canon_hash(rc->canon_hash, "", 0);
			if (!keep || keep(arg, t->name, rc->name)) {
				if (add_rule(rc, p, n))
					return -ENOMEM;
			} else {
				rc->n_rules++;
			}
		} else if (n == 6 && memcmp(p, "COMMIT", 6) == 0) {
			t = NULL;
			c = NULL;
		} else {
			goto out_proto;
		}
	}
	return index_tables(out);

out_proto:
	if (line_out)
		*line_out = lineno;
	return -EPROTO;
}

void rules_saved_cleanup(struct rules_saved *s)
{
	size_t i, j, k;

	for (i = 0; i < s->n_tables; i++) {
		struct rules_saved_table *t = &s->tables[i];

		for (j = 0; j < t->n_chains; j++) {
			if (t->chains[j].rules)
				for (k = 0; k < t->chains[j].n_rules; k++)
					free(t->chains[j].rules[k]);
			free(t->chains[j].rules);
			free(t->chains[j].name);
		}
		free(t->chains);
		free(t->by_name);
		free(t->name);
	}
	free(s->tables);
	s->tables = NULL;
	s->n_tables = 0;
}

const struct rules_saved_table *rules_saved_table(const struct rules_saved *s, const char *table)
{
	size_t i;

	for (i = 0; i < s->n_tables; i++)
		if (strcmp(s->tables[i].name, table) == 0)
			return &s->tables[i];
	return NULL;
}

const struct rules_saved_chain *rules_saved_chain(const struct rules_saved *s, const char *table,
						  const char *chain)
{
	const struct rules_saved_table *t = rules_saved_table(s, table);
	struct rules_saved_chain key, *kp = &key, **hit;
	size_t i;

	if (!t)
		return NULL;
	if (!t->by_name) {
		for (i = 0; i < t->n_chains; i++)
			if (strcmp(t->chains[i].name, chain) == 0)
				return &t->chains[i];
		return NULL;
	}
	key.name = (char *)chain;
	hit = bsearch(&kp, t->by_name, t->n_chains, sizeof(*t->by_name), cmp_chain_ptr);
	return hit ? *hit : NULL;
}
