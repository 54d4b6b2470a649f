/*
 * test/test_rules_render.c - the rule writer on hand-built models.
 *
 * Golden files (test_rules_golden.c) cover whole clusters; these pin the
 * small facts upstream's own unit tests pin (probabilities, the mark) and
 * the renderer's contract (errors, reuse, per-port output).
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

#include "rules/render.h"

static void probability_matches_upstream(void **state)
{
	/* upstream TestComputeProbability */
	static const struct {
		unsigned int n;
		const char *want;
	} cases[] = { { 1, "1.0000000000" },	 { 2, "0.5000000000" },
		      { 3, "0.3333333333" },	 { 10, "0.1000000000" },
		      { 1000, "0.0010000000" },	 { 100000, "0.0000100000" },
		      { 100001, "0.0000099999" } };
	char buf[32], prev[32] = "";
	unsigned int n;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(rules_render_probability(cases[i].n, buf, sizeof(buf)),
				    cases[i].want);
	/* strictly increasing as n decreases, as upstream requires */
	for (n = 100000; n >= 1; n--) {
		rules_render_probability(n, buf, sizeof(buf));
		if (prev[0])
			assert_true(strcmp(buf, prev) > 0);
		strcpy(prev, buf);
	}
}

static struct rules_endpoint ep1 = { "10.180.0.1", "10.180.0.1:80", "KUBE-SEP-SXIVWICOYRO3J4NJ" };
static struct rules_endpoint ep2 = { "10.180.0.2", "10.180.0.2:80", "KUBE-SEP-AAAAAAAAAAAAAAAA" };

static void init_port(struct rules_svc_port *sp, const struct rules_endpoint **eps, size_t n)
{
	memset(sp, 0, sizeof(*sp));
	sp->name = "ns1/svc1:p80";
	sp->proto = RULES_PROTO_TCP;
	strcpy(sp->hash, "XPGD46QRK7WJZT7O");
	sp->cluster_ip = "172.30.0.41";
	sp->port = 80;
	sp->cluster_eps = eps;
	sp->n_cluster_eps = n;
	sp->reachable_eps = eps;
	sp->n_reachable_eps = n;
	sp->has_endpoints = n > 0;
}

static char *render(const struct rules_svc_port *sp, const struct rules_opts *o, size_t total_eps)
{
	const struct rules_svc_port *ports[] = { sp };
	struct rules_state st = {
		.family = RULES_IPV4, .ports = ports, .n_ports = 1, .total_endpoints = total_eps
	};
	struct rules_buf b;

	rules_buf_init(&b, 0);
	assert_int_equal(rules_render(&st, o, &b, NULL), 0);
	return rules_buf_take(&b, NULL);
}

static void render_mark_is_go_hash_08x(void **state)
{
	struct rules_opts o;
	struct rules_svc_port sp;
	char *text;

	(void)state;
	rules_opts_init(&o);
	init_port(&sp, NULL, 0);
	text = render(&sp, &o, 0);
	/* kube-proxy logs mark="0x00004000": Go's %#08x pads the digits */
	assert_non_null(strstr(text, "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000\n"));
	assert_non_null(strstr(text, "-m mark ! --mark 0x00004000/0x00004000 -j RETURN\n"));
	free(text);

	o.masquerade_bit = 31;
	text = render(&sp, &o, 0);
	assert_non_null(strstr(text, "--or-mark 0x80000000\n"));
	free(text);
}

static void render_no_endpoints_rejects_in_filter(void **state)
{
	struct rules_opts o;
	struct rules_svc_port sp;
	char *text;

	(void)state;
	rules_opts_init(&o);
	init_port(&sp, NULL, 0);
	text = render(&sp, &o, 0);
	assert_non_null(strstr(text,
			       "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 has no "
			       "endpoints\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT\n"));
	assert_null(strstr(text, "KUBE-SVC-"));
	free(text);
}

static void render_large_cluster_drops_endpoint_comments(void **state)
{
	const struct rules_endpoint *eps[] = { &ep1, &ep2 };
	struct rules_opts o;
	struct rules_svc_port sp;
	char *text;

	(void)state;
	rules_opts_init(&o);
	init_port(&sp, eps, 2);
	text = render(&sp, &o, 1000);
	assert_non_null(strstr(text, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "
				     "\"ns1/svc1:p80 -> 10.180.0.1:80\" -m statistic"));
	free(text);
	text = render(&sp, &o, 1001);
	assert_non_null(strstr(text, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m statistic --mode random "
				     "--probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ\n"));
	assert_non_null(
		strstr(text, "-A KUBE-SEP-SXIVWICOYRO3J4NJ -s 10.180.0.1 -j KUBE-MARK-MASQ\n"));
	/* the ClusterIP rule keeps its comment */
	assert_non_null(strstr(text, "--comment \"ns1/svc1:p80 cluster IP\""));
	free(text);
}

static void render_port_splits_own_chains(void **state)
{
	const struct rules_endpoint *eps[] = { &ep1, &ep2 };
	struct rules_opts o;
	struct rules_svc_port sp;
	struct rules_state st = { .family = RULES_IPV4 };
	struct rules_port_out po;
	struct rules_ctx ctx;
	size_t i;

	(void)state;
	rules_opts_init(&o);
	init_port(&sp, eps, 2);
	sp.affinity = true;
	sp.affinity_timeout = 10800;
	rules_ctx_init(&ctx, &st, &o);
	rules_port_out_init(&po);
	for (i = 0; i < 2; i++) { /* reusable after a reset, same output */
		rules_port_out_reset(&po);
		assert_int_equal(rules_render_port(&ctx, &sp, &po), 0);
		assert_int_equal(po.n_chains, 3);
		assert_string_equal(po.chains[0].name, "KUBE-SVC-XPGD46QRK7WJZT7O");
		assert_int_equal(po.chains[0].n_rules, 4); /* 2 affinity + 2 balancing */
		/* SEP chains in endpoint order */
		assert_string_equal(po.chains[1].name, "KUBE-SEP-SXIVWICOYRO3J4NJ");
		assert_string_equal(po.chains[2].name, "KUBE-SEP-AAAAAAAAAAAAAAAA");
		assert_int_equal(po.n_slot[RULES_SLOT_NAT_SERVICES], 1);
		assert_memory_equal(
			po.own.data + po.chains[1].off,
			"-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 "
			"-s 10.180.0.1 -j KUBE-MARK-MASQ\n",
			91);
		assert_non_null(strstr(po.own.data, "-m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ "
						    "--rcheck --seconds 10800 --reap -j "
						    "KUBE-SEP-SXIVWICOYRO3J4NJ\n"));
		assert_non_null(strstr(po.own.data, "-m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ "
						    "--set -m tcp -p tcp -j DNAT --to-destination "
						    "10.180.0.1:80\n"));
	}
	rules_port_out_cleanup(&po);
}

static void render_respects_buffer_cap(void **state)
{
	const struct rules_svc_port *ports[1];
	struct rules_svc_port sp;
	struct rules_state st = { .family = RULES_IPV4, .ports = ports, .n_ports = 1 };
	struct rules_opts o;
	struct rules_buf b;

	(void)state;
	rules_opts_init(&o);
	init_port(&sp, NULL, 0);
	ports[0] = &sp;
	rules_buf_init(&b, 64);
	assert_int_equal(rules_render(&st, &o, &b, NULL), -E2BIG);
	rules_buf_cleanup(&b);
}

/* --service-dispatch=auto: upstream's linear layout up to the threshold of
 * service ports of the family, the tree one port above it. */
static int auto_layout_is_tree(size_t n, size_t threshold)
{
	const struct rules_svc_port **ports = calloc(n, sizeof(*ports));
	struct rules_svc_port *sp = calloc(n, sizeof(*sp));
	struct rules_endpoint *ep = calloc(n, sizeof(*ep));
	const struct rules_endpoint **epp = calloc(n, sizeof(*epp));
	char(*strs)[4][32] = calloc(n, sizeof(*strs));
	struct rules_state st = { .family = RULES_IPV4 };
	struct rules_opts o;
	struct rules_buf b;
	char *text;
	size_t i;
	int tree;

	assert_true(ports && sp && ep && epp && strs);
	for (i = 0; i < n; i++) {
		unsigned int u = (unsigned int)i;

		snprintf(strs[i][0], sizeof(strs[i][0]), "ns1/svc%u:p80", u);
		snprintf(strs[i][1], sizeof(strs[i][1]), "10.96.%u.%u", u / 250, 1 + u % 250);
		snprintf(strs[i][2], sizeof(strs[i][2]), "10.180.%u.%u", u / 250, 1 + u % 250);
		snprintf(strs[i][3], sizeof(strs[i][3]), "%s:80", strs[i][2]);
		ep[i].ip = strs[i][2];
		ep[i].str = strs[i][3];
		snprintf(ep[i].chain, sizeof(ep[i].chain), "KUBE-SEP-E%015u", u);
		epp[i] = &ep[i];
		/* even ports have an endpoint (nat rules), odd ones none (filter) */
		init_port(&sp[i], &epp[i], i % 2 ? 0 : 1);
		snprintf(sp[i].hash, sizeof(sp[i].hash), "H%015u", u);
		sp[i].name = strs[i][0];
		sp[i].cluster_ip = strs[i][1];
		ports[i] = &sp[i];
	}
	st.ports = ports;
	st.n_ports = n;
	st.total_endpoints = (n + 1) / 2;
	rules_opts_init(&o);
	o.dispatch = RULES_DISPATCH_AUTO;
	if (threshold)
		o.dispatch_auto_ports = threshold;
	rules_buf_init(&b, 0);
	assert_int_equal(rules_render(&st, &o, &b, NULL), 0);
	text = rules_buf_take(&b, NULL);
	tree = strstr(text, "-A KUBE-SERVICES -m comment --comment \"ns1/svc0:p80 cluster IP\"") ==
	       NULL;
	/* one layout for both tables: nat KUBE-CIP and filter KUBE-RIP chains
	 * exactly when the ClusterIP rules left KUBE-SERVICES */
	assert_int_equal(strstr(text, "-j KUBE-CIP-") != NULL, tree);
	if (n > 1) {
		assert_int_equal(strstr(text, "-A KUBE-SERVICES -m comment --comment "
					      "\"ns1/svc1:p80 has no endpoints\"") == NULL,
				 tree);
		assert_int_equal(strstr(text, "-j KUBE-RIP-") != NULL, tree);
	}
	free(text);
	free(strs);
	free(epp);
	free(ep);
	free(sp);
	free(ports);
	return tree;
}

static void render_auto_dispatch_threshold(void **state)
{
	struct rules_opts o;

	(void)state;
	rules_opts_init(&o);
	assert_int_equal(o.dispatch_auto_ports, RULES_DISPATCH_AUTO_PORTS);
	assert_false(auto_layout_is_tree(1, 0));
	assert_false(auto_layout_is_tree(RULES_DISPATCH_AUTO_PORTS, 0));
	assert_true(auto_layout_is_tree(RULES_DISPATCH_AUTO_PORTS + 1, 0));
	assert_false(auto_layout_is_tree(3, 3));
	assert_true(auto_layout_is_tree(4, 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(probability_matches_upstream),
		cmocka_unit_test(render_mark_is_go_hash_08x),
		cmocka_unit_test(render_no_endpoints_rejects_in_filter),
		cmocka_unit_test(render_large_cluster_drops_endpoint_comments),
		cmocka_unit_test(render_port_splits_own_chains),
		cmocka_unit_test(render_respects_buffer_cap),
		cmocka_unit_test(render_auto_dispatch_threshold),
	};

	return cmocka_run_group_tests_name("rules_render", tests, NULL, NULL);
}
