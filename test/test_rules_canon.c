/*
 * test/test_rules_canon.c - the canonical form of rules (rules/canon.h).
 *
 * The "saved" halves of the equal pairs are what iptables-save (1.8.9, nft and
 * legacy) printed for the rendered halves, copied from real runs; every
 * golden output is also round-tripped through the kernel by
 * hack/verify-restore.sh. The unequal pairs differ in one thing that changes
 * what the rule does, and must never compare equal.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rules/buf.h"
#include "rules/canon.h"

struct pair {
	const char *a;
	const char *b;
};

static const struct pair equal[] = {
	/* ClusterIP: base options moved to the front, /32 added */
	{ "-m comment --comment \"ns/svc:http cluster IP\" -m tcp -p tcp -d 10.96.0.38 --dport 80 "
	  "-j KUBE-SVC-3F5B3GYFR3WXT2CN",
	  "-d 10.96.0.38/32 -p tcp -m comment --comment \"ns/svc:http cluster IP\" -m tcp --dport "
	  "80 -j KUBE-SVC-3F5B3GYFR3WXT2CN" },
	/* the masquerade mark: Go's %#08x against the kernel's spelling */
	{ "-j MARK --or-mark 0x00004000", "-j MARK --set-xmark 0x4000/0x4000" },
	{ "-j MARK --xor-mark 0x00004000", "-j MARK --set-xmark 0x4000/0x0" },
	{ "-m mark ! --mark 0x00004000/0x00004000 -j RETURN",
	  "-m mark ! --mark 0x4000/0x4000 -j RETURN" },
	/* probabilities as xt_statistic stores them */
	{ "-m comment --comment \"a -> 10.0.0.1:80\" -m statistic --mode random --probability "
	  "0.3333333333 -j KUBE-SEP-X",
	  "-m comment --comment \"a -> 10.0.0.1:80\" -m statistic --mode random --probability "
	  "0.33333333349 -j KUBE-SEP-X" },
	{ "-m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-X",
	  "-m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-X" },
	/* recent: options reordered, defaults filled in */
	{ "-m comment --comment \"a -> 10.0.0.1:80\" -m recent --name KUBE-SEP-X --rcheck --seconds "
	  "10800 --reap -j KUBE-SEP-X",
	  "-m comment --comment \"a -> 10.0.0.1:80\" -m recent --rcheck --seconds 10800 --reap --name "
	  "KUBE-SEP-X --mask 255.255.255.255 --rsource -j KUBE-SEP-X" },
	{ "-m comment --comment a -m recent --name KUBE-SEP-X --set -m tcp -p tcp -j DNAT "
	  "--to-destination [fd00::1]:80",
	  "-p tcp -m comment --comment \"a\" -m recent --set --name KUBE-SEP-X --mask "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource -m tcp -j DNAT --to-destination "
	  "[fd00::1]:80" },
	/* the hairpin rule: bare comment quoted back, address completed */
	{ "-m comment --comment ns/svc:http -s 10.244.1.5 -j KUBE-MARK-MASQ",
	  "-s 10.244.1.5/32 -m comment --comment \"ns/svc:http\" -j KUBE-MARK-MASQ" },
	{ "-m comment --comment x -s fd00:0:0::5 -j KUBE-MARK-MASQ",
	  "-s fd00::5/128 -m comment --comment \"x\" -j KUBE-MARK-MASQ" },
	/* conntrack states in the kernel's order, REJECT's default */
	{ "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
	  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT" },
	{ "-m comment --comment \"ns/svc has no endpoints\" -m udp -p udp -d 10.0.0.1 --dport 53 -j "
	  "REJECT",
	  "-d 10.0.0.1/32 -p udp -m comment --comment \"ns/svc has no endpoints\" -m udp --dport 53 "
	  "-j REJECT --reject-with icmp-port-unreachable" },
	/* KUBE-FIREWALL, with negations */
	{ "-m comment --comment \"block incoming localnet connections\" -d 127.0.0.0/8 ! -s "
	  "127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
	  "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m comment --comment \"block incoming localnet "
	  "connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP" },
	/* a host address written with its host bits set comes back masked */
	{ "-s 10.1.2.3/8 -j ACCEPT", "-s 10.0.0.0/8 -j ACCEPT" },
	/* "anywhere" is not printed back */
	{ "-m comment --comment x -d 0.0.0.0/0 -j A", "-m comment --comment \"x\" -j A" },
	{ "-d ::/0 -j A", "-j A" },
	/* a rule without a target (KUBE-FW's last rule) */
	{ "-m comment --comment \"other traffic to a will be dropped by KUBE-PROXY-FIREWALL\"",
	  "-m comment --comment \"other traffic to a will be dropped by KUBE-PROXY-FIREWALL\"" },
	/* interface prefix detection */
	{ "-m comment --comment \"pod traffic for a external destinations\" -i veth+ -j KUBE-SVC-X",
	  "-i veth+ -m comment --comment \"pod traffic for a external destinations\" -j KUBE-SVC-X" },
};

static const struct pair unequal[] = {
	{ "-d 10.96.0.38 -j A", "-d 10.96.0.39 -j A" },
	{ "-d 10.96.0.0/16 -j A", "-d 10.96.0.0/24 -j A" },
	{ "-d 10.96.0.38 -j A", "! -d 10.96.0.38 -j A" },
	{ "-d 0.0.0.0/0 -j A", "! -d 0.0.0.0/0 -j A" },
	{ "-m tcp -p tcp --dport 80 -j A", "-m tcp -p tcp --dport 81 -j A" },
	{ "-m tcp -p tcp --dport 80 -j A", "-m udp -p udp --dport 80 -j A" },
	{ "-m comment --comment a -j A", "-m comment --comment b -j A" },
	{ "-j KUBE-SVC-A", "-j KUBE-SVC-B" },
	{ "-j KUBE-SVC-A", "-g KUBE-SVC-A" },
	{ "-j KUBE-SVC-A", "" },
	{ "-m statistic --mode random --probability 0.5000000000 -j A",
	  "-m statistic --mode random --probability 0.3333333333 -j A" },
	{ "-m recent --name X --rcheck --seconds 10800 --reap -j A",
	  "-m recent --name X --rcheck --seconds 10 --reap -j A" },
	{ "-m recent --name X --rcheck --seconds 10800 --reap -j A",
	  "-m recent --name X --rcheck --seconds 10800 --reap --mask 255.255.255.0 -j A" },
	{ "-j MARK --or-mark 0x00004000", "-j MARK --or-mark 0x00008000" },
	{ "-j MARK --or-mark 0x00004000", "-j MARK --xor-mark 0x00004000" },
	{ "-m mark --mark 0x4000/0x4000 -j A", "-m mark ! --mark 0x4000/0x4000 -j A" },
	{ "-j REJECT", "-j REJECT --reject-with icmp-host-prohibited" },
	{ "-j DNAT --to-destination 10.0.0.1:80", "-j DNAT --to-destination 10.0.0.1:81" },
	{ "-j MASQUERADE", "-j MASQUERADE --random-fully" },
	{ "-m conntrack --ctstate NEW -j A", "-m conntrack --ctstate NEW,INVALID -j A" },
	{ "-i eth0 -j A", "-o eth0 -j A" },
};

static void canon_of(const char *s, struct rules_buf *b)
{
	rules_buf_reset(b);
	assert_int_equal(rules_canon_spec(s, strlen(s), b), 0);
}

static uint64_t hash_of(const char *s)
{
	return rules_canon_hash(RULES_CANON_HASH_INIT, s, strlen(s));
}

static void canon_saved_spelling_equals_rendered(void **state)
{
	struct rules_buf a, b;
	size_t i;

	(void)state;
	rules_buf_init(&a, 0);
	rules_buf_init(&b, 0);
	for (i = 0; i < sizeof(equal) / sizeof(equal[0]); i++) {
		canon_of(equal[i].a, &a);
		canon_of(equal[i].b, &b);
		if (strcmp(a.data ? a.data : "", b.data ? b.data : "") != 0)
			fail_msg("case %zu: %s\n  vs %s\n  canon %s\n     vs %s", i, equal[i].a,
				 equal[i].b, a.data, b.data);
		assert_true(hash_of(equal[i].a) == hash_of(equal[i].b));
	}
	rules_buf_cleanup(&a);
	rules_buf_cleanup(&b);
}

static void canon_different_rules_stay_different(void **state)
{
	struct rules_buf a, b;
	size_t i;

	(void)state;
	rules_buf_init(&a, 0);
	rules_buf_init(&b, 0);
	for (i = 0; i < sizeof(unequal) / sizeof(unequal[0]); i++) {
		canon_of(unequal[i].a, &a);
		canon_of(unequal[i].b, &b);
		if (strcmp(a.data ? a.data : "", b.data ? b.data : "") == 0)
			fail_msg("case %zu: %s\n  and %s\n  both canonical as %s", i, unequal[i].a,
				 unequal[i].b, a.data);
		assert_true(hash_of(unequal[i].a) != hash_of(unequal[i].b));
	}
	rules_buf_cleanup(&a);
	rules_buf_cleanup(&b);
}

/* The chain hash is over the rule list in order: order and count matter. */
static void canon_chain_hash_follows_order(void **state)
{
	uint64_t ab = RULES_CANON_HASH_INIT, ba = RULES_CANON_HASH_INIT, a = RULES_CANON_HASH_INIT;

	(void)state;
	ab = rules_canon_hash(ab, "-j A", 4);
	ab = rules_canon_hash(ab, "-j B", 4);
	ba = rules_canon_hash(ba, "-j B", 4);
	ba = rules_canon_hash(ba, "-j A", 4);
	a = rules_canon_hash(a, "-j A", 4);
	assert_true(ab != ba);
	assert_true(ab != a);
	assert_true(a != RULES_CANON_HASH_INIT);
}

/* What it cannot parse it refuses (and the hash falls back to the raw text). */
static void canon_refuses_what_it_cannot_read(void **state)
{
	static const char *const bad[] = {
		"-m comment --comment \"unterminated -j A",
		"-d not-an-address -j A",
		"-d 10.0.0.1 -d 10.0.0.2 -j A",
		"-j A -j B",
		"-d",
		"! -j A",
		"-j MARK --or-mark zzz",
	};
	struct rules_buf b;
	char huge[RULES_CANON_MAX + 16];
	size_t i;

	(void)state;
	rules_buf_init(&b, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rules_buf_reset(&b);
		if (rules_canon_spec(bad[i], strlen(bad[i]), &b) == 0)
			fail_msg("accepted: %s -> %s", bad[i], b.data);
		assert_true(hash_of(bad[i]) != RULES_CANON_HASH_INIT);
	}
	memset(huge, 'x', sizeof(huge));
	rules_buf_reset(&b);
	assert_int_equal(rules_canon_spec(huge, sizeof(huge), &b), -E2BIG);
	assert_true(rules_canon_hash(RULES_CANON_HASH_INIT, huge, sizeof(huge)) !=
		    rules_canon_hash(RULES_CANON_HASH_INIT, huge, sizeof(huge) - 1));
	rules_buf_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(canon_saved_spelling_equals_rendered),
		cmocka_unit_test(canon_different_rules_stay_different),
		cmocka_unit_test(canon_chain_hash_follows_order),
		cmocka_unit_test(canon_refuses_what_it_cannot_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
