/*
 * test/test_rules_chain.c - upstream-compatible chain names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rules/chain.h"

struct hash_case {
	const char *spn;
	const char *proto;
	const char *endpoint;
	const char *want;
};

/* Values from shared/spec/kube-proxy-iptables.md section 2, checked there
 * against sha256/base32 in Python and against upstream's test fixtures. */
static const struct hash_case hash_cases[] = {
	{ "ns1/svc1:p80", "tcp", NULL, "XPGD46QRK7WJZT7O" },
	{ "ns2/svc2:p80", "tcp", NULL, "GNZBNJ2PO5MGZ6GT" },
	{ "ns1/svc1:p80", "tcp", "10.180.0.1:80", "SXIVWICOYRO3J4NJ" },
	{ "ns5/svc5:p80", "tcp", "10.180.0.3:80", "I77PXRDZVX7PMWMN" },
};

static void chain_hash_matches_upstream(void **state)
{
	char out[RULES_HASH_LEN + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(hash_cases) / sizeof(hash_cases[0]); i++) {
		const struct hash_case *c = &hash_cases[i];

		assert_int_equal(rules_chain_hash(c->spn, c->proto, c->endpoint, out), 0);
		assert_string_equal(out, c->want);
	}
}

static void chain_sep_has_prefix_and_fits(void **state)
{
	char out[RULES_CHAIN_NAME_MAX];

	(void)state;
	assert_int_equal(rules_chain_sep("ns1/svc1:p80", "tcp", "10.180.0.1:80", out), 0);
	assert_string_equal(out, "KUBE-SEP-SXIVWICOYRO3J4NJ");
	assert_true(strlen(out) <= 28);
}

static void chain_hash_of_long_name_does_not_overflow(void **state)
{
	char spn[2000], a[RULES_HASH_LEN + 1], b[RULES_HASH_LEN + 1];

	(void)state;
	memset(spn, 'x', sizeof(spn) - 1);
	spn[sizeof(spn) - 1] = '\0';
	assert_int_equal(rules_chain_hash(spn, "udp", "[2001:db8::1]:53", a), 0);
	assert_int_equal(strlen(a), RULES_HASH_LEN);
	/* deterministic, and the endpoint is part of the hash */
	assert_int_equal(rules_chain_hash(spn, "udp", "[2001:db8::1]:53", b), 0);
	assert_string_equal(a, b);
	assert_int_equal(rules_chain_hash(spn, "udp", "[2001:db8::1]:54", b), 0);
	assert_string_not_equal(a, b);
}

static void chain_is_service_only_for_owned_prefixes(void **state)
{
	(void)state;
	assert_true(rules_chain_is_service("KUBE-SVC-XPGD46QRK7WJZT7O"));
	assert_true(rules_chain_is_service("KUBE-SVL-XPGD46QRK7WJZT7O"));
	assert_true(rules_chain_is_service("KUBE-EXT-XPGD46QRK7WJZT7O"));
	assert_true(rules_chain_is_service("KUBE-FW-XPGD46QRK7WJZT7O"));
	assert_true(rules_chain_is_service("KUBE-SEP-SXIVWICOYRO3J4NJ"));
	assert_false(rules_chain_is_service("KUBE-SERVICES"));
	assert_false(rules_chain_is_service("KUBE-NODEPORTS"));
	assert_false(rules_chain_is_service("KUBE-MARK-MASQ"));
	assert_false(rules_chain_is_service("KUBE-SV"));
	assert_false(rules_chain_is_service("CILIUM-SVC-1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(chain_hash_matches_upstream),
		cmocka_unit_test(chain_sep_has_prefix_and_fits),
		cmocka_unit_test(chain_hash_of_long_name_does_not_overflow),
		cmocka_unit_test(chain_is_service_only_for_owned_prefixes),
	};

	return cmocka_run_group_tests_name("rules_chain", tests, NULL, NULL);
}
