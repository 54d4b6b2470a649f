/*
 * test/test_rules_diff.c - the reconciler.
 *
 * A tiny iptables-restore simulator (tables of chains of rule specs, with
 * -A/-I/-D/-X and chain declarations that create or flush, references
 * checked like the kernel does) lets the tests apply plans and compare the
 * resulting "kernel" with what a fresh full render would program. A seeded
 * random walk of cluster changes then checks, after every step, that partial
 * plans keep the simulated kernel equal to the full render.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules/chain.h"
#include "rules/diff.h"
#include "rules/render.h"
#include "rules/save.h"

/* ---- the simulator ------------------------------------------------------ */

struct sim_chain {
	char name[32];
	char **rules; /* specs (after "-A NAME ") */
	size_t n;
};

struct sim_table {
	char name[16];
	struct sim_chain *chains;
	size_t n;
};

struct sim {
	struct sim_table tables[4];
	size_t n;
};

static struct sim_table *sim_table(struct sim *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->tables[i].name, name) == 0)
			return &s->tables[i];
	assert_true(s->n < 4);
	memset(&s->tables[s->n], 0, sizeof(s->tables[0]));
	snprintf(s->tables[s->n].name, sizeof(s->tables[0].name), "%.15s", name);
	return &s->tables[s->n++];
}

static struct sim_chain *sim_chain(struct sim_table *t, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strlen(t->chains[i].name) == len && strncmp(t->chains[i].name, name, len) == 0)
			return &t->chains[i];
	return NULL;
}

static bool is_target_builtin(const char *t, size_t len)
{
	static const char *const b[] = { "ACCEPT", "DROP", "REJECT",	"RETURN",
					 "DNAT",   "MARK", "MASQUERADE" };
	size_t i;

	for (i = 0; i < sizeof(b) / sizeof(b[0]); i++)
		if (strlen(b[i]) == len && strncmp(b[i], t, len) == 0)
			return true;
	return false;
}

static void sim_free_chain(struct sim_chain *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->rules[i]);
	free(c->rules);
	c->rules = NULL;
	c->n = 0;
}

static void sim_cleanup(struct sim *s)
{
	size_t i, j;

	for (i = 0; i < s->n; i++) {
		for (j = 0; j < s->tables[i].n; j++)
			sim_free_chain(&s->tables[i].chains[j]);
		free(s->tables[i].chains);
	}
	s->n = 0;
}

/* The jump target of @spec must exist in @t. */
static int check_target(struct sim_table *t, const char *spec)
{
	const char *j = strstr(spec, "-j ");
	size_t len;

	if (!j)
		return 0;
	len = strcspn(j + 3, " ");
	if (is_target_builtin(j + 3, len) || sim_chain(t, j + 3, len))
		return 0;
	return -ENOENT;
}

static void sim_insert(struct sim_chain *c, size_t at, const char *spec, size_t len)
{
	c->rules = realloc(c->rules, (c->n + 1) * sizeof(char *));
	memmove(&c->rules[at + 1], &c->rules[at], (c->n - at) * sizeof(char *));
	c->rules[at] = strndup(spec, len);
	c->n++;
}

/* Apply one restore document; returns 0 or -EINVAL/-ENOENT like a failed restore. */
static int sim_apply(struct sim *s, const char *text)
{
	const char *line = text, *nl;
	struct sim_table *t = NULL;

	for (; *line; line = nl + 1) {
		size_t n;
		char buf[1024];
		struct sim_chain *c;

		nl = strchr(line, '\n');
		assert_non_null(nl);
		n = (size_t)(nl - line);
		assert_true(n < sizeof(buf));
		memcpy(buf, line, n);
		buf[n] = '\0';
		if (buf[0] == '*') {
			t = sim_table(s, buf + 1);
		} else if (strcmp(buf, "COMMIT") == 0) {
			t = NULL;
		} else if (buf[0] == ':') {
			size_t len = strcspn(buf + 1, " ");

			c = sim_chain(t, buf + 1, len);
			if (c) {
				sim_free_chain(c);
			} else {
				t->chains = realloc(t->chains, (t->n + 1) * sizeof(*c));
				c = &t->chains[t->n++];
				memset(c, 0, sizeof(*c));
				memcpy(c->name, buf + 1, len);
			}
		} else if (strncmp(buf, "-A ", 3) == 0 || strncmp(buf, "-I ", 3) == 0 ||
			   strncmp(buf, "-D ", 3) == 0) {
			size_t len = strcspn(buf + 3, " "), pos = 0, i;
			const char *spec = buf + 3 + len + 1;

			c = sim_chain(t, buf + 3, len);
			if (!c)
				return -ENOENT;
			if (buf[1] == 'D') {
				for (i = 0; i < c->n; i++)
					if (strcmp(c->rules[i], spec) == 0)
						break;
				if (i == c->n)
					return -ENOENT; /* "Bad rule (does a matching rule exist?)"
							 */
				free(c->rules[i]);
				memmove(&c->rules[i], &c->rules[i + 1],
					(c->n - i - 1) * sizeof(char *));
				c->n--;
				continue;
			}
			if (check_target(t, spec))
				return -ENOENT;
			if (buf[1] == 'I') {
				if (*spec >= '0' && *spec <= '9') {
					pos = strtoul(spec, (char **)&spec, 10);
					spec++;
				} else {
					pos = 1; /* no position: at the top */
				}
				if (pos < 1 || pos > c->n + 1)
					return -EINVAL; /* "Index of insertion too big" */
				sim_insert(c, pos - 1, spec, strlen(spec));
			} else {
				sim_insert(c, c->n, spec, strlen(spec));
			}
		} else if (strncmp(buf, "-X ", 3) == 0) {
			size_t i, j, len = strlen(buf + 3);
			char needle[64];

			c = sim_chain(t, buf + 3, len);
			if (!c || c->n)
				return -EINVAL; /* missing, or not empty */
			snprintf(needle, sizeof(needle), "-j %.60s", buf + 3);
			for (i = 0; i < t->n; i++)
				for (j = 0; j < t->chains[i].n; j++) {
					const char *m = strstr(t->chains[i].rules[j], needle);

					if (m &&
					    (m[strlen(needle)] == '\0' || m[strlen(needle)] == ' '))
						return -EBUSY; /* "Too many links" */
				}
			sim_free_chain(c);
			*c = t->chains[--t->n];
		} else {
			fail_msg("simulator: unexpected line: %s", buf);
		}
	}
	return 0;
}

/* Canonical text of the simulated kernel: tables, chains sorted, rules in order. */
static int cmp_chainp(const void *a, const void *b)
{
	return strcmp((*(const struct sim_chain *const *)a)->name,
		      (*(const struct sim_chain *const *)b)->name);
}

static int cmp_table(const void *a, const void *b)
{
	return strcmp(((const struct sim_table *)a)->name, ((const struct sim_table *)b)->name);
}

static char *sim_dump(struct sim *s)
{
	struct rules_buf b;
	size_t i, j, k;

	rules_buf_init(&b, 0);
	qsort(s->tables, s->n, sizeof(s->tables[0]), cmp_table);
	for (i = 0; i < s->n; i++) {
		struct sim_table *t = &s->tables[i];
		struct sim_chain **sorted = calloc(t->n + 1, sizeof(*sorted));

		for (j = 0; j < t->n; j++)
			sorted[j] = &t->chains[j];
		qsort(sorted, t->n, sizeof(*sorted), cmp_chainp);
		rules_buf_printf(&b, "*%s\n", t->name);
		for (j = 0; j < t->n; j++) {
			rules_buf_printf(&b, ":%s\n", sorted[j]->name);
			for (k = 0; k < sorted[j]->n; k++)
				rules_buf_printf(&b, "-A %s %s\n", sorted[j]->name,
						 sorted[j]->rules[k]);
		}
		free(sorted);
	}
	return rules_buf_take(&b, NULL);
}

/* ---- building states ------------------------------------------------------ */

#define MAX_SVCS 40
#define MAX_EPS	 8

struct tsvc {
	bool present;
	char name[64];
	char cip[32];
	uint16_t node_port;
	bool affinity;
	bool lb;
	int n_eps;
	int ep_ids[MAX_EPS];
	uint64_t gen;
};

struct model {
	struct tsvc svcs[MAX_SVCS];
	uint64_t gen;
	/* built */
	struct rules_svc_port ports[MAX_SVCS];
	const struct rules_svc_port *pp[MAX_SVCS];
	struct rules_endpoint eps[MAX_SVCS][MAX_EPS];
	const struct rules_endpoint *epp[MAX_SVCS][MAX_EPS];
	char ip[MAX_SVCS][MAX_EPS][24];
	char str[MAX_SVCS][MAX_EPS][32];
	struct rules_state st;
};

static const char *lb_ips[] = { "1.2.3.4" };
static const char *ranges[] = { "203.0.113.0/25" };

static int cmp_pp(const void *a, const void *b)
{
	return strcmp((*(const struct rules_svc_port *const *)a)->name,
		      (*(const struct rules_svc_port *const *)b)->name);
}

/* The rules_state of @m, ports sorted by name as the contract wants. */
static void build(struct model *m)
{
	size_t n = 0;
	int i, e;

	for (i = 0; i < MAX_SVCS; i++) {
		struct tsvc *t = &m->svcs[i];
		struct rules_svc_port *sp = &m->ports[n];

		if (!t->present)
			continue;
		memset(sp, 0, sizeof(*sp));
		sp->name = t->name;
		sp->proto = RULES_PROTO_TCP;
		assert_int_equal(rules_chain_hash(sp->name, "tcp", NULL, sp->hash), 0);
		sp->cluster_ip = t->cip;
		sp->port = 80;
		sp->node_port = t->node_port;
		sp->affinity = t->affinity;
		sp->affinity_timeout = 10800;
		if (t->lb) {
			sp->lb_ips = lb_ips;
			sp->n_lb_ips = 1;
			sp->source_ranges = ranges;
			sp->n_source_ranges = 1;
		}
		for (e = 0; e < t->n_eps; e++) {
			struct rules_endpoint *ep = &m->eps[n][e];

			snprintf(m->ip[n][e], sizeof(m->ip[n][e]), "10.180.%d.%d", i, t->ep_ids[e]);
			memcpy(m->str[n][e], m->ip[n][e], sizeof(m->ip[n][e]));
			strcat(m->str[n][e], ":8080");
			ep->ip = m->ip[n][e];
			ep->str = m->str[n][e];
			assert_int_equal(rules_chain_sep(sp->name, "tcp", ep->str, ep->chain), 0);
			m->epp[n][e] = ep;
		}
		sp->cluster_eps = m->epp[n];
		sp->n_cluster_eps = (size_t)t->n_eps;
		sp->reachable_eps = m->epp[n];
		sp->n_reachable_eps = (size_t)t->n_eps;
		sp->has_endpoints = t->n_eps > 0;
		sp->gen = t->gen;
		m->pp[n] = sp;
		n++;
	}
	qsort(m->pp, n, sizeof(m->pp[0]), cmp_pp);
	m->st.family = RULES_IPV4;
	m->st.ports = m->pp;
	m->st.n_ports = n;
	m->st.total_endpoints = 0;
	for (i = 0; i < (int)n; i++)
		m->st.total_endpoints += m->ports[i].n_cluster_eps;
}

static void add_svc(struct model *m, int i, int n_eps)
{
	struct tsvc *t = &m->svcs[i];
	int e;

	memset(t, 0, sizeof(*t));
	t->present = true;
	snprintf(t->name, sizeof(t->name), "ns%d/svc%d:p80", i % 3, i);
	snprintf(t->cip, sizeof(t->cip), "172.30.%d.%d", i / 200, i % 200 + 1);
	t->n_eps = n_eps;
	for (e = 0; e < n_eps; e++)
		t->ep_ids[e] = e + 1;
	t->gen = ++m->gen;
}

/* Apply a full render of @m to a fresh simulator: what the kernel should hold. */
static char *expected_kernel(struct model *m, const struct rules_opts *o)
{
	struct rules_buf b;
	struct sim s = { .n = 0 };
	char *text, *dump;

	rules_buf_init(&b, 0);
	assert_int_equal(rules_render(&m->st, o, &b, NULL), 0);
	text = rules_buf_take(&b, NULL);
	assert_int_equal(sim_apply(&s, text), 0);
	dump = sim_dump(&s);
	sim_cleanup(&s);
	free(text);
	return dump;
}

static int apply_plan(struct sim *s, struct rules_plan *p)
{
	const struct rules_txn *t;
	size_t n, i;
	int err;

	t = rules_plan_txns(p, &n);
	for (i = 0; i < n; i++) {
		err = sim_apply(s, t[i].text);
		if (err)
			return err;
	}
	return 0;
}

/* Plan, apply to @s, commit; returns the plan's stats copy. */
static struct rules_plan_stats sync_once(struct rules_rec *r, struct sim *s, struct model *m,
					 const struct rules_opts *o, bool full, size_t txn_ports)
{
	struct rules_plan_opts po = { .full = full, .txn_max_ports = txn_ports };
	struct rules_plan_stats st;
	struct rules_plan *p;

	build(m);
	assert_int_equal(rules_rec_plan(r, &m->st, o, &po, &p), 0);
	if (apply_plan(s, p) != 0) {
		size_t n, i;
		const struct rules_txn *t = rules_plan_txns(p, &n);

		for (i = 0; i < n; i++)
			fprintf(stderr, "--- txn %zu\n%s", i, t[i].text);
		fail_msg("plan did not apply");
	}
	st = *rules_plan_stats(p);
	rules_rec_commit(r, p);
	rules_plan_free(p);
	return st;
}

static void assert_kernel(struct sim *s, struct model *m, const struct rules_opts *o)
{
	char *want = expected_kernel(m, o), *got = sim_dump(s);

	if (strcmp(want, got) != 0) {
		fprintf(stderr, "=== want\n%s\n=== got\n%s\n", want, got);
		fail_msg("simulated kernel differs from a full render");
	}
	free(want);
	free(got);
}

/* ---- tests ---------------------------------------------------------------- */

static void full_plan_in_one_txn_equals_render(void **state)
{
	struct rules_plan_opts po = { .full = true };
	struct model *m = calloc(1, sizeof(*m));
	struct rules_rec *r;
	struct rules_plan *p;
	struct rules_opts o;
	struct rules_buf b;
	const struct rules_txn *t;
	size_t n;
	int i;

	(void)state;
	rules_opts_init(&o);
	o.local_mode = RULES_LOCAL_CIDR;
	o.local_match = "10.0.0.0/8";
	for (i = 0; i < 6; i++)
		add_svc(m, i, i % 4);
	m->svcs[2].node_port = 30002;
	m->svcs[3].affinity = true;
	m->svcs[5].lb = true;
	build(m);
	/* both layouts: what the daemon writes is what --dump-rules shows */
	for (i = 0; i < 2; i++) {
		o.dispatch = i ? RULES_DISPATCH_TREE : RULES_DISPATCH_LINEAR;
		o.dispatch_leaf_max = 2;
		assert_int_equal(rules_rec_new(RULES_IPV4, &r), 0);
		assert_int_equal(rules_rec_plan(r, &m->st, &o, &po, &p), 0);
		t = rules_plan_txns(p, &n);
		assert_int_equal(n, 1);
		rules_buf_init(&b, 0);
		assert_int_equal(rules_render(&m->st, &o, &b, NULL), 0);
		assert_string_equal(t[0].text, b.data);
		assert_true(rules_plan_stats(p)->full);
		assert_true(i ? strstr(b.data, ":KUBE-CIP-") != NULL
			      : strstr(b.data, "KUBE-CIP-") == NULL);
		rules_buf_cleanup(&b);
		rules_plan_free(p);
		rules_rec_free(r);
	}
	free(m);
}

static void unchanged_state_plans_nothing(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct rules_plan_stats st;
	struct sim s = { .n = 0 };
	struct rules_rec *r;
	struct rules_opts o;
	int i;

	(void)state;
	rules_opts_init(&o);
	for (i = 0; i < 5; i++)
		add_svc(m, i, 3);
	assert_int_equal(rules_rec_new(RULES_IPV4, &r), 0);
	st = sync_once(r, &s, m, &o, false, 0);
	assert_true(st.full); /* first plan is always full */
	st = sync_once(r, &s, m, &o, false, 0);
	assert_false(st.full);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.ports_rendered, 0);
	assert_int_equal(st.chains_skipped, 5 * 4);
	assert_kernel(&s, m, &o);
	sim_cleanup(&s);
	rules_rec_free(r);
	free(m);
}

static void endpoint_change_rewrites_only_that_service(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct rules_plan_stats st;
	struct sim s = { .n = 0 };
	struct rules_rec *r;
	struct rules_opts o;
	int i;

	(void)state;
	rules_opts_init(&o);
	for (i = 0; i < 10; i++)
		add_svc(m, i, 3);
	assert_int_equal(rules_rec_new(RULES_IPV4, &r), 0);
	sync_once(r, &s, m, &o, false, 0);

	/* endpoint 3 of svc4 replaced by endpoint 7 */
	m->svcs[4].ep_ids[2] = 7;
	m->svcs[4].gen = ++m->gen;
	st = sync_once(r, &s, m, &o, false, 0);
	assert_false(st.full);
	assert_int_equal(st.ports_rendered, 1);
	/* the SVC chain (new endpoint list) and the new SEP chain */
	assert_int_equal(st.chains_written, 2);
	assert_int_equal(st.chains_deleted, 1);
	assert_int_equal(st.dispatch_edits, 0);
	assert_kernel(&s, m, &o);
	sim_cleanup(&s);
	rules_rec_free(r);
	free(m);
}

static void new_and_removed_services_edit_dispatch_in_place(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct rules_plan_stats st;
	struct sim s = { .n = 0 };
	struct rules_rec *r;
	struct rules_opts o;
	int i;

	(void)state;
	rules_opts_init(&o);
	for (i = 0; i < 30; i += 2)
		add_svc(m, i, 2);
	m->svcs[4].node_port = 30004;
	assert_int_equal(rules_rec_new(RULES_IPV4, &r), 0);
	sync_once(r, &s, m, &o, false, 0);

	add_svc(m, 7, 2);	     /* lands in the middle of KUBE-SERVICES */
	m->svcs[10].present = false; /* removed */
	st = sync_once(r, &s, m, &o, false, 0);
	assert_false(st.full);
	assert_int_equal(st.dispatch_rewrites, 0);
	assert_int_equal(st.dispatch_edits, 2); /* one -I, one -D */
	assert_int_equal(st.chains_deleted, 3); /* svc10's SVC and two SEPs */
	assert_kernel(&s, m, &o);

	/* a NodePort appears: KUBE-NODEPORTS gets a rule, the jump stays last */
	m->svcs[7].node_port = 30007;
	m->svcs[7].gen = ++m->gen;
	st = sync_once(r, &s, m, &o, false, 0);
	assert_int_equal(st.dispatch_rewrites, 0);
	assert_kernel(&s, m, &o);
	sim_cleanup(&s);
	rules_rec_free(r);
	free(m);
}

static void split_transactions_are_self_consistent(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct rules_plan_opts po = { .full = true, .txn_max_ports = 4 };
	struct sim s = { .n = 0 };
	struct rules_rec *r;
	struct rules_plan *p;
	struct rules_opts o;
	const struct rules_txn *t;
	size_t n, i;
	int k;

	(void)state;
	rules_opts_init(&o);
	for (k = 0; k < 10; k++)
		add_svc(m, k, 3);
	build(m);
	assert_int_equal(rules_rec_new(RULES_IPV4, &r), 0);
	assert_int_equal(rules_rec_plan(r, &m->st, &o, &po, &p), 0);
	t = rules_plan_txns(p, &n);
	/* KUBE-MARK-MASQ first, 4 + 4 + 2 ports of own chains, then the rest */
	assert_int_equal(n, 5);
	/* each transaction applies on its own, in order: none refers to a
	 * chain a later one creates */
	for (i = 0; i < n; i++)
		assert_int_equal(sim_apply(&s, t[i].text), 0);
	rules_rec_commit(r, p);
	rules_plan_free(p);
	assert_kernel(&s, m, &o);
	sim_cleanup(&s);
	rules_rec_free(r);
	free(m);
}

static const char kernel_save[] =
	"# Generated by iptables-save v1.8.9\n"
	"*nat\n"
	":PREROUTING ACCEPT [0:0]\n"
	":INPUT ACCEPT [0:0]\n"
	":OUTPUT ACCEPT [0:0]\n"
	":POSTROUTING ACCEPT [0:0]\n"
	":KUBE-SERVICES - [0:0]\n"
	":KUBE-SVC-OLDOLDOLDOLDOLD1 - [0:0]\n"
	":KUBE-SEP-OLDOLDOLDOLDOLD2 - [0:0]\n"
	":CNI-HOSTPORT - [0:0]\n"
	"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
	"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
	"-A PREROUTING -j CNI-HOSTPORT\n"
	"-A KUBE-SVC-OLDOLDOLDOLDOLD1 -j KUBE-SEP-OLDOLDOLDOLDOLD2\n"
	"COMMIT\n"
	"*filter\n"
	":INPUT ACCEPT [0:0]\n"
	":FORWARD DROP [0:0]\n"
	":OUTPUT ACCEPT [0:0]\n"
	":KUBE-FIREWALL - [0:0]\n"
	"-A INPUT -j KUBE-FIREWALL\n"
	"COMMIT\n";

static bool keep_builtin(void *arg, const char *table, const char *chain)
{
	(void)arg;
	(void)table;
	return strncmp(chain, "KUBE-", 5) != 0;
}

static void full_plan_uses_kernel_state(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct rules_plan_opts po = { .full = true, .canary = true };
	struct rules_saved saved = { 0 };
	struct rules_rec *r;
	struct rules_plan *p;
	struct rules_opts o;
	const struct rules_txn *t;
	size_t n;

	(void)state;
	rules_opts_init(&o);
	add_svc(m, 1, 1);
	build(m);
	assert_int_equal(rules_save_parse(kernel_save, sizeof(kernel_save) - 1, keep_builtin, NULL,
					  &saved, NULL),
			 0);
	po.kernel = &saved;
	assert_int_equal(rules_rec_new(RULES_IPV4, &r), 0);
	assert_int_equal(rules_rec_plan(r, &m->st, &o, &po, &p), 0);
	t = rules_plan_txns(p, &n);
	assert_int_equal(n, 1);
	/* stale kube-proxy chains flushed and deleted, foreign ones untouched */
	assert_non_null(strstr(t[0].text, ":KUBE-SVC-OLDOLDOLDOLDOLD1 - [0:0]\n"));
	assert_non_null(strstr(t[0].text, "-X KUBE-SVC-OLDOLDOLDOLDOLD1\n"));
	assert_non_null(strstr(t[0].text, "-X KUBE-SEP-OLDOLDOLDOLDOLD2\n"));
	assert_null(strstr(t[0].text, "CNI-HOSTPORT"));
	/* the duplicated PREROUTING jump loses one copy; OUTPUT gets one */
	assert_non_null(strstr(t[0].text, "-D PREROUTING -m comment --comment \"kubernetes service "
					  "portals\" -j KUBE-SERVICES\n"));
	assert_non_null(strstr(t[0].text, "-I OUTPUT -m comment --comment \"kubernetes service "
					  "portals\" -j KUBE-SERVICES\n"));
	assert_null(strstr(t[0].text, "-I PREROUTING"));
	/* the existing INPUT -> KUBE-FIREWALL jump is kept, OUTPUT's added */
	assert_null(strstr(t[0].text, "-I INPUT -j KUBE-FIREWALL\n"));
	assert_non_null(strstr(t[0].text, "-I OUTPUT -j KUBE-FIREWALL\n"));
	/* the canary, in all three tables */
	assert_non_null(strstr(t[0].text, "*mangle\n:KUBE-PROXY-CANARY - [0:0]\n-A "
					  "KUBE-PROXY-CANARY " RULES_CANARY_RULE "\nCOMMIT\n"));
	assert_int_equal(rules_plan_stats(p)->chains_deleted, 2);
	rules_plan_free(p);
	rules_rec_free(r);
	rules_saved_cleanup(&saved);
	free(m);
}

/* Forget the built-in chains (and the jumps in them) of the simulator. */
static void sim_drop_builtins(struct sim *s)
{
	static const char *const builtin[] = { "PREROUTING", "INPUT", "FORWARD", "OUTPUT",
					       "POSTROUTING" };
	size_t i, j, k;

	for (i = 0; i < s->n; i++) {
		struct sim_table *t = &s->tables[i];

		for (j = 0; j < t->n;) {
			for (k = 0; k < 5; k++)
				if (strcmp(t->chains[j].name, builtin[k]) == 0)
					break;
			if (k == 5) {
				j++;
				continue;
			}
			sim_free_chain(&t->chains[j]);
			t->chains[j] = t->chains[--t->n];
		}
	}
}

/* Replace the first @from in @s (heap) by @to; returns the new string. */
static char *replace1(char *s, const char *from, const char *to)
{
	char *at = strstr(s, from), *out;
	size_t a, fl = strlen(from), tl = strlen(to);

	assert_non_null(at);
	a = (size_t)(at - s);
	out = malloc(strlen(s) - fl + tl + 1);
	memcpy(out, s, a);
	memcpy(out + a, to, tl);
	strcpy(out + a + tl, at + fl);
	free(s);
	return out;
}

/*
 * A takeover: the kernel already holds what upstream (and we) would write,
 * spelt as iptables-save spells it, except for two chains that drifted. The
 * full plan writes those two and adopts everything else untouched (so their
 * counters keep counting), and the result equals a full render.
 */
static void full_plan_adopts_chains_already_right(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct rules_plan_opts po = { .full = true, .txn_max_ports = 0 };
	struct rules_saved saved = { 0 };
	struct sim s = { .n = 0 };
	struct rules_rec *r;
	struct rules_plan *p;
	struct rules_opts o;
	struct rules_buf b;
	const struct rules_txn *t;
	char *doc, *kern, *svc_drift, *sep_drift, name[64];
	size_t n, total = 0;
	int i;

	(void)state;
	rules_opts_init(&o);
	o.local_mode = RULES_LOCAL_CIDR;
	o.local_match = "10.0.0.0/8";
	for (i = 0; i < 6; i++)
		add_svc(m, i, 3);
	m->svcs[2].node_port = 30002;
	m->svcs[3].affinity = true;
	m->svcs[5].lb = true;
	build(m);
	rules_buf_init(&b, 0);
	assert_int_equal(rules_render(&m->st, &o, &b, NULL), 0);
	doc = rules_buf_take(&b, NULL);
	for (i = 0; doc[i]; i++)
		total += doc[i] == ':' && (i == 0 || doc[i - 1] == '\n');

	/* drift: svc1's SVC chain lost its last rule, svc4's first SEP chain
	 * points at another port */
	kern = strdup(doc);
	snprintf(name, sizeof(name), "-A KUBE-SVC-%s", m->pp[1]->hash);
	svc_drift = strdup(m->pp[1]->hash);
	{
		char *last = NULL, *at = kern;

		while ((at = strstr(at, name)) != NULL)
			last = at++;
		assert_non_null(last);
		memmove(last, strchr(last, '\n') + 1, strlen(strchr(last, '\n') + 1) + 1);
	}
	sep_drift = strdup(m->pp[4]->cluster_eps[0]->chain);
	snprintf(name, sizeof(name), "--to-destination %s", m->pp[4]->cluster_eps[0]->str);
	kern = replace1(kern, name, "--to-destination 10.9.9.9:1");
	/* the built-in chains the jump rules go to */
	kern = replace1(kern, "*nat\n",
			"*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
			":POSTROUTING ACCEPT [0:0]\n");
	kern = replace1(kern, "*filter\n",
			"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
			":OUTPUT ACCEPT [0:0]\n");
	/* the kernel's spelling of the rest */
	assert_int_equal(sim_apply(&s, kern), 0);
	kern = replace1(kern, "-j MARK --or-mark 0x00004000", "-j MARK --set-xmark 0x4000/0x4000");
	kern = replace1(kern, "-j MARK --xor-mark 0x00004000", "-j MARK --set-xmark 0x4000/0x0");
	kern = replace1(kern, "--probability 0.3333333333", "--probability 0.33333333349");
	assert_int_equal(rules_save_parse(kern, strlen(kern), NULL, NULL, &saved, NULL), 0);

	po.kernel = &saved;
	assert_int_equal(rules_rec_new(RULES_IPV4, &r), 0);
	assert_int_equal(rules_rec_plan(r, &m->st, &o, &po, &p), 0);
	t = rules_plan_txns(p, &n);
	assert_int_equal(n, 1);
	/* exactly the two drifted chains are declared (flushed and refilled) */
	snprintf(name, sizeof(name), ":KUBE-SVC-%s - [0:0]\n", svc_drift);
	assert_non_null(strstr(t[0].text, name));
	snprintf(name, sizeof(name), ":%s - [0:0]\n", sep_drift);
	assert_non_null(strstr(t[0].text, name));
	for (i = 0, n = 0; t[0].text[i]; i++)
		n += t[0].text[i] == ':' && (i == 0 || t[0].text[i - 1] == '\n');
	if (n != 2)
		fail_msg("want 2 chains written, got %zu:\n%s", n, t[0].text);
	assert_int_equal(rules_plan_stats(p)->chains_adopted, total - 2);
	assert_int_equal(rules_plan_stats(p)->chains_written, 2);
	assert_int_equal(apply_plan(&s, p), 0);
	sim_drop_builtins(&s);
	assert_kernel(&s, m, &o);

	/* a kernel without any of it: everything is written */
	rules_plan_free(p);
	rules_saved_cleanup(&saved);
	assert_int_equal(
		rules_save_parse("*nat\nCOMMIT\n*filter\nCOMMIT\n", 26, NULL, NULL, &saved, NULL),
		0);
	assert_int_equal(rules_rec_plan(r, &m->st, &o, &po, &p), 0);
	assert_int_equal(rules_plan_stats(p)->chains_adopted, 0);
	t = rules_plan_txns(p, &n);
	{
		const char *line, *nl;
		char decl[64];

		for (line = doc; *line; line = nl + 1) {
			nl = strchr(line, '\n');
			if (*line != ':')
				continue;
			snprintf(decl, sizeof(decl), "%.*s", (int)(nl - line + 1), line);
			if (!strstr(t[0].text, decl))
				fail_msg("not declared on an empty kernel: %s", decl);
		}
	}

	rules_plan_free(p);
	rules_rec_free(r);
	rules_saved_cleanup(&saved);
	sim_cleanup(&s);
	free(svc_drift);
	free(sep_drift);
	free(kern);
	free(doc);
	free(m);
}

static void cleanup_removes_only_ours(void **state)
{
	struct rules_saved saved = { 0 };
	struct rules_buf b;

	(void)state;
	assert_int_equal(
		rules_save_parse(kernel_save, sizeof(kernel_save) - 1, NULL, NULL, &saved, NULL),
		0);
	rules_buf_init(&b, 0);
	assert_int_equal(rules_cleanup_payload(&saved, &b), 0);
	assert_non_null(strstr(b.data, "-D PREROUTING -m comment --comment \"kubernetes service "
				       "portals\" -j KUBE-SERVICES\n"));
	assert_non_null(strstr(b.data, "-D INPUT -j KUBE-FIREWALL\n"));
	assert_non_null(strstr(b.data, "-X KUBE-SEP-OLDOLDOLDOLDOLD2\n"));
	assert_non_null(strstr(b.data, "-X KUBE-FIREWALL\n"));
	assert_null(strstr(b.data, "CNI-HOSTPORT"));
	assert_null(strstr(b.data, "-X PREROUTING"));
	rules_buf_cleanup(&b);
	rules_saved_cleanup(&saved);
}

static void save_parse_rejects_garbage_with_line(void **state)
{
	static const char bad[] = "*nat\n:PREROUTING ACCEPT [0:0]\nhello\nCOMMIT\n";
	struct rules_saved saved = { 0 };
	size_t line = 0;

	(void)state;
	assert_int_equal(rules_save_parse(bad, sizeof(bad) - 1, NULL, NULL, &saved, &line),
			 -EPROTO);
	assert_int_equal(line, 3);
	rules_saved_cleanup(&saved);
}

/* xorshift: reproducible pseudo-random steps */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/*
 * @layout: 0 linear, 1 tree (leaves of 4 rules, so that leaves split and
 * merge all the time), 2 switching between the two every 23 steps.
 */
static void random_walk(int layout)
{
	struct model *m = calloc(1, sizeof(*m));
	struct sim s = { .n = 0 };
	struct rules_rec *r;
	struct rules_opts o;
	uint32_t seed = 12345;
	struct rules_plan_stats st;
	size_t max_chains = 0;
	int step, i, partial_tree = 0;

	rules_opts_init(&o);
	o.local_mode = RULES_LOCAL_CIDR;
	o.local_match = "10.0.0.0/8";
	o.dispatch = layout == 0 ? RULES_DISPATCH_LINEAR : RULES_DISPATCH_TREE;
	o.dispatch_leaf_max = 4;
	for (i = 0; i < MAX_SVCS; i += 3)
		add_svc(m, i, (int)(rnd(&seed) % 4));
	assert_int_equal(rules_rec_new(RULES_IPV4, &r), 0);
	sync_once(r, &s, m, &o, false, 0);
	for (step = 0; step < 300; step++) {
		int changes = 1 + (int)(rnd(&seed) % 6), c;

		for (c = 0; c < changes; c++) {
			struct tsvc *t = &m->svcs[rnd(&seed) % MAX_SVCS];
			int kind = (int)(rnd(&seed) % 7);

			if (!t->present) {
				add_svc(m, (int)(t - m->svcs), (int)(rnd(&seed) % 4));
				/* a new service gets a new address, anywhere in 172.30/16 */
				snprintf(t->cip, sizeof(t->cip), "172.30.%u.%u", rnd(&seed) % 256,
					 1 + rnd(&seed) % 254);
				continue;
			}
			switch (kind) {
			case 0:
				t->present = false;
				break;
			case 1: /* scale */
				t->n_eps = (int)(rnd(&seed) % (MAX_EPS + 1));
				for (i = 0; i < t->n_eps; i++)
					t->ep_ids[i] = i + 1 + (int)(rnd(&seed) % 2) * 20;
				break;
			case 2:
				t->node_port = t->node_port ? 0 : (uint16_t)(30000 + (t - m->svcs));
				break;
			case 3:
				t->affinity = !t->affinity;
				break;
			case 4:
				t->lb = !t->lb;
				break;
			default: /* replace one endpoint by one it does not have yet */
				if (t->n_eps) {
					int id = 40 + (int)(rnd(&seed) % 50), e;

					for (e = 0; e < t->n_eps && t->ep_ids[e] != id; e++)
						;
					if (e == t->n_eps)
						t->ep_ids[rnd(&seed) % (uint32_t)t->n_eps] = id;
				}
				break;
			}
			t->gen = ++m->gen;
		}
		if (layout == 2 && step % 23 == 22)
			o.dispatch = o.dispatch == RULES_DISPATCH_TREE ? RULES_DISPATCH_LINEAR
								       : RULES_DISPATCH_TREE;
		st = sync_once(r, &s, m, &o, step % 37 == 0, step % 2 ? 3 : 0);
		assert_kernel(&s, m, &o);
		if (st.dispatch_chains > max_chains)
			max_chains = st.dispatch_chains;
		/* a partial plan in the tree layout rewrites a few tree chains */
		if (layout == 1 && !st.full && st.dispatch_chains > 3 &&
		    st.chains_written < st.dispatch_chains)
			partial_tree++;
	}
	if (layout == 0)
		assert_int_equal(max_chains, 0);
	else
		assert_true(max_chains > 8); /* leaves did split */
	if (layout == 1)
		assert_true(partial_tree > 100);
	sim_cleanup(&s);
	rules_rec_free(r);
	free(m);
}

static void random_changes_keep_kernel_equal_to_full_render(void **state)
{
	(void)state;
	random_walk(0);
}

static void random_changes_in_tree_layout_keep_kernel_equal(void **state)
{
	(void)state;
	random_walk(1);
}

static void switching_layouts_keeps_kernel_equal(void **state)
{
	(void)state;
	random_walk(2);
}

static void invalidated_record_plans_full(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct rules_plan_stats st;
	struct sim s = { .n = 0 };
	struct rules_rec *r;
	struct rules_opts o;

	(void)state;
	rules_opts_init(&o);
	add_svc(m, 0, 2);
	assert_int_equal(rules_rec_new(RULES_IPV4, &r), 0);
	sync_once(r, &s, m, &o, false, 0);
	assert_true(rules_rec_valid(r));
	rules_rec_invalidate(r);
	st = sync_once(r, &s, m, &o, false, 0);
	assert_true(st.full);
	/* options that change every port's text force a full plan too */
	o.masquerade_bit = 13;
	st = sync_once(r, &s, m, &o, false, 0);
	assert_true(st.full);
	assert_kernel(&s, m, &o);
	sim_cleanup(&s);
	rules_rec_free(r);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_plan_in_one_txn_equals_render),
		cmocka_unit_test(unchanged_state_plans_nothing),
		cmocka_unit_test(endpoint_change_rewrites_only_that_service),
		cmocka_unit_test(new_and_removed_services_edit_dispatch_in_place),
		cmocka_unit_test(split_transactions_are_self_consistent),
		cmocka_unit_test(full_plan_uses_kernel_state),
		cmocka_unit_test(full_plan_adopts_chains_already_right),
		cmocka_unit_test(cleanup_removes_only_ours),
		cmocka_unit_test(save_parse_rejects_garbage_with_line),
		cmocka_unit_test(random_changes_keep_kernel_equal_to_full_render),
		cmocka_unit_test(random_changes_in_tree_layout_keep_kernel_equal),
		cmocka_unit_test(switching_layouts_keeps_kernel_equal),
		cmocka_unit_test(invalidated_record_plans_full),
	};

	return cmocka_run_group_tests_name("rules_diff", tests, NULL, NULL);
}
