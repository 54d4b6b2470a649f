/*
 * test/tools/canon-cmp.c - does the kernel hold what we wrote, rule for rule?
 *
 *   canon-cmp WRITTEN SAVED
 *
 * WRITTEN is an iptables-restore document we rendered, SAVED what
 * iptables-save printed after loading it. Every chain of WRITTEN must be in
 * SAVED with the same rules in the same order once both are in the canonical
 * form of rules/canon.h (which the reconciler relies on to adopt chains it
 * finds already right). Prints each difference; exits 0 when there is none,
 * 1 when there is one, 2 on bad input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/buf.h"
#include "rules/canon.h"
#include "rules/save.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct rules_buf b;
	char chunk[65536];
	size_t n;

	if (!f)
		return NULL;
	rules_buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rules_buf_add(&b, chunk, n);
	fclose(f);
	if (b.err) {
		rules_buf_cleanup(&b);
		return NULL;
	}
	return rules_buf_take(&b, len);
}

static int load(const char *path, struct rules_saved *out)
{
	size_t len = 0, line = 0;
	char *text = slurp(path, &len);
	int err;

	if (!text) {
		fprintf(stderr, "canon-cmp: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	err = rules_save_parse(text, len, NULL, NULL, out, &line);
	free(text);
	if (err) {
		fprintf(stderr, "canon-cmp: %s: %s at line %zu\n", path, strerror(-err), line);
		return -1;
	}
	return 0;
}

/* The spec of "-A CHAIN spec". */
static const char *spec_of(const char *rule)
{
	const char *p = strchr(rule + 3, ' ');

	return p ? p + 1 : "";
}

static void canon(const char *rule, struct rules_buf *out)
{
	const char *s = spec_of(rule);

	rules_buf_reset(out);
	if (rules_canon_spec(s, strlen(s), out)) {
		rules_buf_reset(out);
		rules_buf_adds(out, "(not canonical) ");
		rules_buf_adds(out, s);
	}
}

int main(int argc, char **argv)
{
	struct rules_saved w = { 0 }, s = { 0 };
	struct rules_buf a, b;
	size_t t, c, k, chains = 0, rules = 0, bad = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: canon-cmp WRITTEN SAVED\n");
		return 2;
	}
	if (load(argv[1], &w) || load(argv[2], &s)) {
		rules_saved_cleanup(&w);
		rules_saved_cleanup(&s);
		return 2;
	}
	rules_buf_init(&a, 0);
	rules_buf_init(&b, 0);
	for (t = 0; t < w.n_tables; t++) {
		const struct rules_saved_table *wt = &w.tables[t];

		for (c = 0; c < wt->n_chains; c++) {
			const struct rules_saved_chain *wc = &wt->chains[c];
			const struct rules_saved_chain *sc =
				rules_saved_chain(&s, wt->name, wc->name);
			uint64_t hw = RULES_CANON_HASH_INIT, hs = RULES_CANON_HASH_INIT;
			size_t bad_before = bad;

			chains++;
			if (!sc) {
				printf("%s %s: missing from the kernel\n", wt->name, wc->name);
				bad++;
				continue;
			}
			for (k = 0; k < wc->n_rules || k < sc->n_rules; k++) {
				const char *rw = k < wc->n_rules ? wc->rules[k] : NULL;
				const char *rs = k < sc->n_rules ? sc->rules[k] : NULL;

				if (rw)
					hw = rules_canon_hash(hw, spec_of(rw), strlen(spec_of(rw)));
				if (rs)
					hs = rules_canon_hash(hs, spec_of(rs), strlen(spec_of(rs)));
				if (!rw || !rs) {
					printf("%s %s rule %zu: %s only: %s\n", wt->name, wc->name,
					       k + 1, rw ? "written" : "kernel", rw ? rw : rs);
					bad++;
					continue;
				}
				rules++;
				canon(rw, &a);
				canon(rs, &b);
				if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
					printf("%s %s rule %zu differs:\n  written: %s\n  kernel:  %s\n"
					       "  canon w: %s\n  canon k: %s\n",
					       wt->name, wc->name, k + 1, rw, rs, a.data, b.data);
					bad++;
				}
			}
			/* the chain hash must agree with the rule-by-rule verdict */
			if ((hw == hs) != (bad == bad_before)) {
				printf("%s %s: the chain hash says %s, the rules say %s\n",
				       wt->name, wc->name, hw == hs ? "equal" : "different",
				       bad == bad_before ? "equal" : "different");
				bad++;
			}
		}
	}
	printf("canon-cmp: %zu chains, %zu rules compared, %zu differences\n", chains, rules, bad);
	rules_buf_cleanup(&a);
	rules_buf_cleanup(&b);
	rules_saved_cleanup(&w);
	rules_saved_cleanup(&s);
	return bad ? 1 : 0;
}
