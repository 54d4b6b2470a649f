/*
 * test/test_proxy_conntrack.c - the stale UDP conntrack plan and its
 * selection predicate (upstream pkg/proxy/conntrack/cleanup.go), on
 * hand-built snapshots. The netlink side runs in test/proxy_ct/run.sh.
 */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "proxy/conntrack.h"

#define MAX_PORTS 6
#define MAX_EPS	  5
#define MAX_IPS	  3

/* ---- snapshot fixtures ------------------------------------------------ */

struct tep {
	const char *ip;
	uint16_t port;
	bool serving;
	bool ready;
	bool terminating;
};

struct tport {
	enum rules_proto proto;
	const char *cluster_ip;
	uint16_t port;
	uint16_t node_port;
	const char *lb[MAX_IPS];
	const char *ext[MAX_IPS];
	struct tep eps[MAX_EPS];
};

/* Everything a snapshot points to, on the heap so that the test can free it
 * before using the plan (the plan must own what it needs). */
struct fixture {
	struct proxy_snapshot snap;
	struct proxy_port ports[MAX_PORTS];
	const struct proxy_port *pp[MAX_PORTS];
	struct proxy_endpoint eps[MAX_PORTS][MAX_EPS];
	char strs[MAX_PORTS][MAX_EPS][64];
	char ips[MAX_PORTS][MAX_EPS][64];
	char cluster_ip[MAX_PORTS][64];
	char lb[MAX_PORTS][MAX_IPS][64], ext[MAX_PORTS][MAX_IPS][64];
	const char *lbp[MAX_PORTS][MAX_IPS], *extp[MAX_PORTS][MAX_IPS];
};

static size_t copy_ips(const char *const *src, char (*dst)[64], const char **ptrs)
{
	size_t n = 0;

	while (n < MAX_IPS && src[n]) {
		snprintf(dst[n], sizeof(dst[n]), "%s", src[n]);
		ptrs[n] = dst[n];
		n++;
	}
	return n;
}

static struct fixture *fixture_new(enum rules_family family, const struct tport *tp, size_t n)
{
	struct fixture *f = calloc(1, sizeof(*f));
	size_t i, j;

	assert_non_null(f);
	assert_true(n <= MAX_PORTS);
	for (i = 0; i < n; i++) {
		struct proxy_port *p = &f->ports[i];

		p->rp.proto = tp[i].proto;
		p->udp = tp[i].proto == RULES_PROTO_UDP;
		snprintf(f->cluster_ip[i], sizeof(f->cluster_ip[i]), "%s", tp[i].cluster_ip);
		p->rp.cluster_ip = f->cluster_ip[i];
		p->rp.port = tp[i].port;
		p->rp.node_port = tp[i].node_port;
		p->rp.n_lb_ips = copy_ips(tp[i].lb, f->lb[i], f->lbp[i]);
		p->rp.lb_ips = f->lbp[i];
		p->rp.n_external_ips = copy_ips(tp[i].ext, f->ext[i], f->extp[i]);
		p->rp.external_ips = f->extp[i];
		for (j = 0; j < MAX_EPS && tp[i].eps[j].ip; j++) {
			const struct tep *te = &tp[i].eps[j];
			struct proxy_endpoint *e = &f->eps[i][j];

			snprintf(f->ips[i][j], sizeof(f->ips[i][j]), "%s", te->ip);
			snprintf(f->strs[i][j], sizeof(f->strs[i][j]),
				 family == RULES_IPV6 ? "[%s]:%u" : "%s:%u", te->ip, te->port);
			e->re.ip = f->ips[i][j];
			e->re.str = f->strs[i][j];
			e->serving = te->serving;
			e->ready = te->ready;
			e->terminating = te->terminating;
		}
		p->eps = f->eps[i];
		p->n_eps = j;
		f->pp[i] = p;
	}
	f->snap.state.family = family;
	f->snap.ports = f->pp;
	f->snap.n_ports = n;
	return f;
}

/* Build the plan, then wreck and free the snapshot it came from. */
static struct proxy_ct_plan *plan_from(enum rules_family family, const struct tport *tp, size_t n)
{
	struct fixture *f = fixture_new(family, tp, n);
	struct proxy_ct_plan *plan = NULL;

	assert_int_equal(proxy_ct_plan_build(&f->snap, &plan), 0);
	assert_non_null(plan);
	memset(f, 0xa5, sizeof(*f));
	free(f);
	return plan;
}

/* ---- table-driven selection ------------------------------------------- */

struct entry {
	int proto;
	const char *orig_dst;
	uint16_t orig_dport;
	const char *reply_src;
	uint16_t reply_sport;
	bool deleted;
	const char *why;
};

struct plan_case {
	const char *name;
	enum rules_family family;
	struct tport ports[MAX_PORTS];
	size_t n_ports;
	struct entry entries[16];
};

#define UDP IPPROTO_UDP
#define TCP IPPROTO_TCP
/* serving and ready; serving and terminating; neither */
#define READY(ip, port)                     \
	{                                   \
		ip, port, true, true, false \
	}
#define TERMINATING(ip, port)               \
	{                                   \
		ip, port, true, false, true \
	}
#define NOT_SERVING(ip, port)                 \
	{                                     \
		ip, port, false, false, false \
	}

static const struct plan_case cases[] = {
	{
		"clusterip: serving set ignores readiness and terminating state",
		RULES_IPV4,
		{ { RULES_PROTO_UDP,
		    "10.96.0.10",
		    53,
		    0,
		    { NULL },
		    { NULL },
		    { READY("10.244.1.2", 5353), TERMINATING("10.244.1.3", 5353),
		      NOT_SERVING("10.244.1.4", 5353) } } },
		1,
		{
			{ UDP, "10.96.0.10", 53, "10.244.1.2", 5353, false, "ready endpoint" },
			{ UDP, "10.96.0.10", 53, "10.244.1.3", 5353, false,
			  "serving terminating endpoint" },
			{ UDP, "10.96.0.10", 53, "10.244.1.4", 5353, true, "not serving" },
			{ UDP, "10.96.0.10", 53, "10.244.9.9", 5353, true, "removed endpoint" },
			{ UDP, "10.96.0.10", 53, "10.244.1.2", 5354, true, "right ip, wrong port" },
			{ UDP, "10.96.0.10", 54, "10.244.9.9", 5353, false, "not a service port" },
			{ UDP, "10.96.0.11", 53, "10.244.9.9", 5353, false, "not a service ip" },
			{ TCP, "10.96.0.10", 53, "10.244.9.9", 5353, false, "tcp entry" },
			{ UDP, "10.96.0.10", 53, "10.96.0.10", 53, true, "not DNATed at all" },
			{ UDP, "bogus", 53, "10.244.9.9", 5353, false, "unparsable" },
		},
	},
	{
		"tcp and sctp services are ignored",
		RULES_IPV4,
		{ { RULES_PROTO_TCP,
		    "10.96.0.20",
		    80,
		    30080,
		    { NULL },
		    { NULL },
		    { READY("10.244.1.2", 8080) } },
		  { RULES_PROTO_SCTP,
		    "10.96.0.21",
		    80,
		    0,
		    { NULL },
		    { NULL },
		    { READY("10.244.1.2", 8080) } } },
		2,
		{
			{ UDP, "10.96.0.20", 80, "10.244.9.9", 8080, false, "tcp service ip" },
			{ UDP, "192.168.0.1", 30080, "10.244.9.9", 8080, false, "tcp node port" },
			{ UDP, "10.96.0.21", 80, "10.244.9.9", 8080, false, "sctp service ip" },
		},
	},
	{
		"services without serving endpoints are skipped",
		RULES_IPV4,
		{ { RULES_PROTO_UDP,
		    "10.96.0.30",
		    53,
		    30053,
		    { "203.0.113.1" },
		    { NULL },
		    { NOT_SERVING("10.244.1.4", 5353) } },
		  { RULES_PROTO_UDP, "10.96.0.31", 53, 30054, { NULL }, { NULL }, { { NULL } } } },
		2,
		{
			{ UDP, "10.96.0.30", 53, "10.244.9.9", 5353, false, "only non-serving" },
			{ UDP, "203.0.113.1", 53, "10.244.9.9", 5353, false, "its lb ip" },
			{ UDP, "192.168.0.1", 30053, "10.244.9.9", 5353, false, "its node port" },
			{ UDP, "10.96.0.31", 53, "10.244.9.9", 5353, false, "no endpoints" },
			{ UDP, "192.168.0.1", 30054, "10.244.9.9", 5353, false, "no endpoints" },
		},
	},
	{
		"node ports match any destination address",
		RULES_IPV4,
		{ { RULES_PROTO_UDP,
		    "10.96.0.10",
		    53,
		    30053,
		    { NULL },
		    { NULL },
		    { READY("10.244.1.2", 5353) } } },
		1,
		{
			{ UDP, "192.168.0.1", 30053, "10.244.9.9", 5353, true, "node ip" },
			{ UDP, "127.0.0.1", 30053, "10.244.9.9", 5353, true, "localhost" },
			{ UDP, "10.1.2.3", 30053, "10.244.9.9", 5353, true, "any address" },
			{ UDP, "192.168.0.1", 30053, "10.244.1.2", 5353, false, "serving" },
			{ UDP, "192.168.0.1", 30054, "10.244.9.9", 5353, false, "other port" },
			{ TCP, "192.168.0.1", 30053, "10.244.9.9", 5353, false, "tcp" },
		},
	},
	{
		"load-balancer and external IPs",
		RULES_IPV4,
		{ { RULES_PROTO_UDP,
		    "10.96.0.10",
		    53,
		    0,
		    { "203.0.113.10", "203.0.113.11" },
		    { "198.51.100.7", "2001:db8::7" },
		    { READY("10.244.1.2", 5353) } } },
		1,
		{
			{ UDP, "203.0.113.10", 53, "10.244.9.9", 5353, true, "first lb ip" },
			{ UDP, "203.0.113.11", 53, "10.244.9.9", 5353, true, "second lb ip" },
			{ UDP, "198.51.100.7", 53, "10.244.9.9", 5353, true, "external ip" },
			{ UDP, "198.51.100.7", 53, "10.244.1.2", 5353, false, "serving" },
			{ UDP, "203.0.113.10", 54, "10.244.9.9", 5353, false, "other port" },
			{ UDP, "192.168.0.1", 53, "10.244.9.9", 5353, false, "no node port" },
		},
	},
	{
		"a frontend shared by two services keeps both serving sets",
		RULES_IPV4,
		{ { RULES_PROTO_UDP,
		    "10.96.0.10",
		    53,
		    0,
		    { NULL },
		    { "198.51.100.7" },
		    { READY("10.244.1.2", 5353) } },
		  { RULES_PROTO_UDP,
		    "10.96.0.11",
		    53,
		    0,
		    { NULL },
		    { "198.51.100.7" },
		    { READY("10.244.1.3", 5353) } } },
		2,
		{
			{ UDP, "198.51.100.7", 53, "10.244.1.2", 5353, false, "first service's" },
			{ UDP, "198.51.100.7", 53, "10.244.1.3", 5353, false, "second service's" },
			{ UDP, "198.51.100.7", 53, "10.244.9.9", 5353, true, "neither's" },
			{ UDP, "10.96.0.10", 53, "10.244.1.3", 5353, true, "other service's" },
		},
	},
	{
		"ipv6, compared as addresses rather than text",
		RULES_IPV6,
		{ { RULES_PROTO_UDP,
		    "fd00:96::10",
		    53,
		    30053,
		    { NULL },
		    { NULL },
		    { READY("fd00:244::2", 5353), NOT_SERVING("fd00:244::3", 5353) } } },
		1,
		{
			{ UDP, "fd00:96::10", 53, "fd00:244::2", 5353, false, "serving" },
			{ UDP, "fd00:96::10", 53, "fd00:244::3", 5353, true, "not serving" },
			{ UDP, "fd00:96:0:0::10", 53, "fd00:244::9", 5353, true, "long form" },
			{ UDP, "fd00:96::10", 53, "FD00:244:0::2", 5353, false, "upper case" },
			{ UDP, "2001:db8::1", 30053, "fd00:244::9", 5353, true, "node port" },
			{ UDP, "10.96.0.10", 53, "10.244.9.9", 5353, false, "ipv4 on ipv6 plan" },
		},
	},
};

static void plan_selects_as_upstream(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct plan_case *c = &cases[i];
		struct proxy_ct_plan *plan = plan_from(c->family, c->ports, c->n_ports);

		for (j = 0; j < 16 && c->entries[j].orig_dst; j++) {
			const struct entry *e = &c->entries[j];
			bool got = proxy_ct_plan_selects(plan, e->proto, e->orig_dst, e->orig_dport,
							 e->reply_src, e->reply_sport);

			if (got != e->deleted)
				fail_msg("%s: %s (%s:%u reply from %s:%u): selected=%d, want %d",
					 c->name, e->why, e->orig_dst, e->orig_dport, e->reply_src,
					 e->reply_sport, got, e->deleted);
		}
		proxy_ct_plan_free(plan);
	}
}

/* Many ports and endpoints: every lookup still finds the right set. */
static void plan_scales_to_many_frontends(void **state)
{
	enum { N = 300 };
	struct proxy_port *ports = calloc(N, sizeof(*ports));
	const struct proxy_port **pp = calloc(N, sizeof(*pp));
	struct proxy_endpoint *eps = calloc(N * 2, sizeof(*eps));
	char(*ips)[3][32] = calloc(N, sizeof(*ips));
	char(*strs)[2][40] = calloc(N, sizeof(*strs));
	struct proxy_snapshot snap = { .state.family = RULES_IPV4 };
	struct proxy_ct_plan *plan;
	char vip[32], ep[32];
	size_t i;

	(void)state;
	assert_true(ports && pp && eps && ips && strs);
	for (i = 0; i < N; i++) {
		size_t k;

		snprintf(ips[i][0], sizeof(ips[i][0]), "10.96.%zu.%zu", i / 250, i % 250 + 1);
		ports[i].rp.proto = RULES_PROTO_UDP;
		ports[i].rp.cluster_ip = ips[i][0];
		ports[i].rp.port = 53;
		ports[i].rp.node_port = (uint16_t)(30000 + i);
		for (k = 0; k < 2; k++) {
			struct proxy_endpoint *e = &eps[i * 2 + k];

			snprintf(ips[i][k + 1], sizeof(ips[i][k + 1]), "10.244.%zu.%zu", i / 250,
				 k + 1 + i % 100);
			snprintf(strs[i][k], sizeof(strs[i][k]), "%s:%zu", ips[i][k + 1], 5000 + i);
			e->re.ip = ips[i][k + 1];
			e->re.str = strs[i][k];
			e->serving = true;
		}
		ports[i].eps = &eps[i * 2];
		ports[i].n_eps = 2;
		pp[i] = &ports[i];
	}
	snap.ports = pp;
	snap.n_ports = N;
	assert_int_equal(proxy_ct_plan_build(&snap, &plan), 0);
	for (i = 0; i < N; i++) {
		snprintf(vip, sizeof(vip), "10.96.%zu.%zu", i / 250, i % 250 + 1);
		snprintf(ep, sizeof(ep), "10.244.%zu.%zu", i / 250, 1 + (i % 100));
		assert_false(proxy_ct_plan_selects(plan, UDP, vip, 53, ep, (uint16_t)(5000 + i)));
		assert_true(proxy_ct_plan_selects(plan, UDP, vip, 53, ep, (uint16_t)(5001 + i)));
		assert_false(proxy_ct_plan_selects(plan, UDP, "1.2.3.4", (uint16_t)(30000 + i), ep,
						   (uint16_t)(5000 + i)));
		assert_true(proxy_ct_plan_selects(plan, UDP, "1.2.3.4", (uint16_t)(30000 + i),
						  "10.244.200.200", (uint16_t)(5000 + i)));
	}
	proxy_ct_plan_free(plan);
	free(strs);
	free(ips);
	free(eps);
	free(pp);
	free(ports);
}

static void plan_of_empty_snapshot_selects_nothing(void **state)
{
	struct proxy_snapshot snap = { .state.family = RULES_IPV4 };
	struct proxy_ct_plan *plan;

	(void)state;
	assert_int_equal(proxy_ct_plan_build(&snap, &plan), 0);
	assert_false(proxy_ct_plan_selects(plan, UDP, "10.96.0.10", 53, "10.244.1.2", 53));
	proxy_ct_plan_free(plan);
	proxy_ct_plan_free(NULL);
}

/* A plan with nothing to clean never opens a netlink socket: the reconcile
 * (and its thread-pool variant) can run here without touching the kernel. */
static void reconcile_of_empty_plan_does_nothing(void **state)
{
	struct proxy_snapshot snap = { .state.family = RULES_IPV6 };
	const struct tport tcp_only = { RULES_PROTO_TCP,
					"10.96.0.20",
					80,
					0,
					{ NULL },
					{ NULL },
					{ READY("10.244.1.2", 8080) } };
	struct proxy_ct_result res;
	struct proxy_ct_plan *plan;

	(void)state;
	assert_int_equal(proxy_ct_plan_build(&snap, &plan), 0);
	memset(&res, 0xff, sizeof(res));
	proxy_conntrack_reconcile(plan, &res);
	assert_int_equal(res.err, 0);
	assert_int_equal(res.examined, 0);
	assert_int_equal(res.deleted, 0);

	plan = plan_from(RULES_IPV4, &tcp_only, 1);
	memset(&res, 0xff, sizeof(res));
	proxy_conntrack_reconcile(plan, &res);
	assert_int_equal(res.err, 0);
	assert_int_equal(res.examined, 0);
}

struct async_seen {
	int calls;
	struct proxy_ct_result res;
};

static void async_done(void *arg, const struct proxy_ct_result *res)
{
	struct async_seen *s = arg;

	s->calls++;
	s->res = *res;
}

static void reconcile_async_reports_on_loop(void **state)
{
	struct proxy_snapshot snap = { .state.family = RULES_IPV4 };
	struct async_seen seen = { 0 };
	struct proxy_ct_plan *plan;
	uv_loop_t loop;
	int i;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(proxy_ct_plan_build(&snap, &plan), 0);
		assert_int_equal(proxy_conntrack_reconcile_async(&loop, plan, async_done, &seen),
				 0);
	}
	assert_int_equal(seen.calls, 0); /* never from inside the call */
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(seen.calls, 3);
	assert_int_equal(seen.res.err, 0);
	assert_int_equal(seen.res.deleted, 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plan_selects_as_upstream),
		cmocka_unit_test(plan_scales_to_many_frontends),
		cmocka_unit_test(plan_of_empty_snapshot_selects_nothing),
		cmocka_unit_test(reconcile_of_empty_plan_does_nothing),
		cmocka_unit_test(reconcile_async_reports_on_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
