/*
 * test/test_informer_ip.c - sloppy IP and CIDR parsing (informer/ip.c).
 *
 * The expectations are what Go's pre-1.17 net.ParseIP/ParseCIDR (forked by
 * k8s.io/utils as ParseIPSloppy/ParseCIDRSloppy) and IP.String()/IPNet.String()
 * return for the same text, including upstream kube-proxy's TestBadIPs style
 * of leading zeros that must come out canonical.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "informer/ip.h"

struct ip_case {
	const char *in;
	const char *out; /* canonical text; NULL: must be rejected */
	enum informer_family family;
};

static const struct ip_case ip_cases[] = {
	/* IPv4, with Go's old decimal-with-leading-zeros octets */
	{ "1.2.3.4", "1.2.3.4", INFORMER_IPV4 },
	{ "0.0.0.0", "0.0.0.0", INFORMER_IPV4 },
	{ "255.255.255.255", "255.255.255.255", INFORMER_IPV4 },
	{ "010.001.002.003", "10.1.2.3", INFORMER_IPV4 },
	{ "172.30.0.041", "172.30.0.41", INFORMER_IPV4 },
	{ "192.168.099.022", "192.168.99.22", INFORMER_IPV4 },
	{ "0001.2.3.0255", "1.2.3.255", INFORMER_IPV4 },
	{ "00000000000000000001.2.3.4", "1.2.3.4", INFORMER_IPV4 },
	{ "256.1.1.1", NULL, 0 },
	{ "1.2.3.0256", NULL, 0 },
	{ "99999999999.1.1.1", NULL, 0 },
	{ "1.2.3", NULL, 0 },
	{ "1.2.3.4.5", NULL, 0 },
	{ "1..2.3", NULL, 0 },
	{ ".1.2.3", NULL, 0 },
	{ "1.2.3.", NULL, 0 },
	{ "-1.2.3.4", NULL, 0 },
	{ "+1.2.3.4", NULL, 0 },
	{ "0x1.2.3.4", NULL, 0 },
	{ "a.b.c.d", NULL, 0 },
	{ " 1.2.3.4", NULL, 0 },
	{ "1.2.3.4 ", NULL, 0 },
	{ "1.2.3.4/32", NULL, 0 },
	{ "1.2.3.4:80", NULL, 0 },
	/* not an address at all */
	{ "", NULL, 0 },
	{ "garbage", NULL, 0 },
	{ "12345", NULL, 0 },
	{ "clusterIPValue", NULL, 0 },
	{ "None", NULL, 0 },
	/* IPv6 */
	{ "::", "::", INFORMER_IPV6 },
	{ "::1", "::1", INFORMER_IPV6 },
	{ "2001:db8::1", "2001:db8::1", INFORMER_IPV6 },
	{ "2001:DB8::1", "2001:db8::1", INFORMER_IPV6 },
	{ "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", INFORMER_IPV6 },
	{ "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", INFORMER_IPV6 },
	{ "1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0", INFORMER_IPV6 },
	{ "::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8", INFORMER_IPV6 },
	{ "1::", "1::", INFORMER_IPV6 },
	{ "1:0:0:2::3", "1:0:0:2::3", INFORMER_IPV6 },
	{ "1:0:0:2:0:0:3:4", "1::2:0:0:3:4", INFORMER_IPV6 },
	{ "fe80:0:0:1::", "fe80:0:0:1::", INFORMER_IPV6 },
	{ "00001::", "1::", INFORMER_IPV6 },
	{ "fd00:10:96::2a17", "fd00:10:96::2a17", INFORMER_IPV6 },
	{ "::1.2.3.4", "::102:304", INFORMER_IPV6 },
	{ "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304", INFORMER_IPV6 },
	{ "1::ffff:1.2.3.4", "1::ffff:102:304", INFORMER_IPV6 },
	{ "::1:001.002.003.004", "::1:102:304", INFORMER_IPV6 },
	{ "12345::", NULL, 0 },
	{ "1:2:3:4:5:6:7:8:9", NULL, 0 },
	{ "1:2:3:4:5:6:7:8::", NULL, 0 },
	{ "::1:2:3:4:5:6:7:8", NULL, 0 },
	{ ":::", NULL, 0 },
	{ "1::2::3", NULL, 0 },
	{ "1:2:3:4:5:6:7", NULL, 0 },
	{ "1:", NULL, 0 },
	{ ":1", NULL, 0 },
	{ ":", NULL, 0 },
	{ "1:::2", NULL, 0 },
	{ "g::1", NULL, 0 },
	{ "fe80::1%eth0", NULL, 0 },
	{ "[::1]", NULL, 0 },
	{ "::1 ", NULL, 0 },
	{ "1:2:3:4:5:6:7:1.2.3.4", NULL, 0 },
	{ "1:2:3:4:5:1.2.3.4", NULL, 0 },
	{ "::1.2.3", NULL, 0 },
	{ "::1.2.3.4:5", NULL, 0 },
	{ "::256.1.1.1", NULL, 0 },
	/* IPv4-mapped IPv6 is IPv4 */
	{ "::ffff:10.0.0.1", "10.0.0.1", INFORMER_IPV4 },
	{ "::FFFF:010.000.000.001", "10.0.0.1", INFORMER_IPV4 },
	{ "0:0:0:0:0:ffff:a00:1", "10.0.0.1", INFORMER_IPV4 },
	{ "::ffff:0:0", "0.0.0.0", INFORMER_IPV4 },
};

static void ip_parse_accepts_what_go_116_accepts(void **state)
{
	char buf[INFORMER_IP_STRLEN];
	struct informer_addr a, again;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ip_cases) / sizeof(ip_cases[0]); i++) {
		const struct ip_case *c = &ip_cases[i];
		int err = informer_addr_parse(c->in, &a);

		if (!c->out) {
			if (err != -EINVAL)
				fail_msg("\"%s\" should be rejected", c->in);
			continue;
		}
		if (err)
			fail_msg("\"%s\" should parse", c->in);
		assert_int_equal(a.family, c->family);
		assert_string_equal(informer_addr_format(&a, buf, sizeof(buf)), c->out);
		/* the canonical text parses back to the same address */
		assert_int_equal(informer_addr_parse(buf, &again), 0);
		assert_memory_equal(&a, &again, sizeof(a));
	}
}

/* Whatever inet_pton() accepts, the sloppy parser accepts with the same bytes. */
static void ip_parse_accepts_all_that_inet_pton_accepts(void **state)
{
	unsigned char bin[16];
	struct informer_addr a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ip_cases) / sizeof(ip_cases[0]); i++) {
		const char *s = ip_cases[i].in;

		if (inet_pton(AF_INET, s, bin) == 1) {
			assert_int_equal(informer_addr_parse(s, &a), 0);
			assert_int_equal(a.family, INFORMER_IPV4);
			assert_memory_equal(a.addr, bin, 4);
		} else if (inet_pton(AF_INET6, s, bin) == 1) {
			static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
			bool v4 = memcmp(bin, mapped, sizeof(mapped)) == 0;

			assert_int_equal(informer_addr_parse(s, &a), 0);
			assert_int_equal(a.family, v4 ? INFORMER_IPV4 : INFORMER_IPV6);
			assert_memory_equal(a.addr, v4 ? bin + 12 : bin, v4 ? 4 : 16);
		}
	}
}

static const struct ip_case cidr_cases[] = {
	{ "10.0.0.0/8", "10.0.0.0/8", INFORMER_IPV4 },
	{ "10.1.2.3/8", "10.0.0.0/8", INFORMER_IPV4 },
	{ "203.0.113.000/025", "203.0.113.0/25", INFORMER_IPV4 },
	{ "010.000.000.000/08", "10.0.0.0/8", INFORMER_IPV4 },
	{ "1.2.3.4/00000000000000000032", "1.2.3.4/32", INFORMER_IPV4 },
	{ "1.2.3.255/31", "1.2.3.254/31", INFORMER_IPV4 },
	{ "0.0.0.0/0", "0.0.0.0/0", INFORMER_IPV4 },
	{ "255.255.255.255/0", "0.0.0.0/0", INFORMER_IPV4 },
	{ "198.51.100.7/17", "198.51.0.0/17", INFORMER_IPV4 },
	{ "2001:db8::1/64", "2001:db8::/64", INFORMER_IPV6 },
	{ "2001:db8:ffff::/33", "2001:db8:8000::/33", INFORMER_IPV6 },
	{ "::/0", "::/0", INFORMER_IPV6 },
	{ "::1/128", "::1/128", INFORMER_IPV6 },
	{ "fd00:10:244::/56", "fd00:10:244::/56", INFORMER_IPV6 },
	/* Go's IPNet.String() of a v4-mapped network that survives the mask */
	{ "::ffff:1.2.3.4/120", "1.2.3.0/24", INFORMER_IPV4 },
	{ "::ffff:1.2.3.4/128", "1.2.3.4/32", INFORMER_IPV4 },
	{ "::ffff:1.2.3.4/96", "0.0.0.0/0", INFORMER_IPV4 },
	{ "::ffff:1.2.3.4/95", "::fffe:0:0/95", INFORMER_IPV6 },
	{ "::ffff:1.2.3.4/64", "::/64", INFORMER_IPV6 },
	{ "10.0.0.0/33", NULL, 0 },
	{ "2001:db8::/129", NULL, 0 },
	{ "10.0.0.0/", NULL, 0 },
	{ "10.0.0.0", NULL, 0 },
	{ "/8", NULL, 0 },
	{ "10.0.0.0/-1", NULL, 0 },
	{ "10.0.0.0/+8", NULL, 0 },
	{ "10.0.0.0/8 ", NULL, 0 },
	{ " 10.0.0.0/8", NULL, 0 },
	{ "10.0.0.0/8/8", NULL, 0 },
	{ "10.0.0.0/0x8", NULL, 0 },
	{ "10.0.0.0/99999999999", NULL, 0 },
	{ "10.0.0/8", NULL, 0 },
	{ "fe80::1%eth0/64", NULL, 0 },
	{ "", NULL, 0 },
	{ "loadBalancerSourceRangesValue", NULL, 0 },
};

static void cidr_parse_masks_and_prints_like_go_ipnet(void **state)
{
	char buf[INFORMER_IP_STRLEN];
	struct informer_prefix p, again;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cidr_cases) / sizeof(cidr_cases[0]); i++) {
		const struct ip_case *c = &cidr_cases[i];
		int err = informer_prefix_parse(c->in, &p);

		if (!c->out) {
			if (err != -EINVAL)
				fail_msg("\"%s\" should be rejected", c->in);
			continue;
		}
		if (err)
			fail_msg("\"%s\" should parse", c->in);
		assert_int_equal(p.addr.family, c->family);
		assert_string_equal(informer_prefix_format(&p, buf, sizeof(buf)), c->out);
		assert_int_equal(informer_prefix_parse(buf, &again), 0);
		assert_memory_equal(&p, &again, sizeof(p));
	}
}

struct contains_case {
	const char *prefix, *addr;
	bool in;
};

static const struct contains_case contains_cases[] = {
	{ "10.0.0.0/8", "10.255.1.2", true },
	{ "10.0.0.0/8", "11.0.0.1", false },
	{ "10.1.2.3/32", "10.1.2.3", true },
	{ "10.1.2.3/32", "10.1.2.4", false },
	{ "0.0.0.0/0", "203.0.113.9", true },
	{ "0.0.0.0/0", "::1", false },
	{ "::/0", "::1", true },
	{ "::/0", "1.2.3.4", false },
	{ "::/0", "::ffff:1.2.3.4", false },
	{ "2001:db8::/32", "2001:db8:1::5", true },
	{ "2001:db8::/33", "2001:db8:8000::1", false },
	{ "198.51.100.0/23", "198.51.101.255", true },
	{ "198.51.100.0/23", "198.51.102.0", false },
};

static void cidr_contains_only_addresses_of_its_family(void **state)
{
	struct informer_prefix p;
	struct informer_addr a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(contains_cases) / sizeof(contains_cases[0]); i++) {
		const struct contains_case *c = &contains_cases[i];

		assert_int_equal(informer_prefix_parse(c->prefix, &p), 0);
		assert_int_equal(informer_addr_parse(c->addr, &a), 0);
		if (informer_prefix_contains(&p, &a) != c->in)
			fail_msg("%s contains %s: expected %d", c->prefix, c->addr, c->in);
	}
}

static void loopback_is_127_slash_8_and_ipv6_one(void **state)
{
	static const struct {
		const char *addr;
		bool loopback;
	} cases[] = {
		{ "127.0.0.1", true },
		{ "127.255.255.254", true },
		{ "0127.0.0.1", true },
		{ "128.0.0.1", false },
		{ "126.255.255.255", false },
		{ "::1", true },
		{ "::2", false },
		{ "::", false },
		{ "::ffff:127.0.0.1", true },
		{ "::127.0.0.1", false },
	};
	struct informer_addr a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(informer_addr_parse(cases[i].addr, &a), 0);
		if (informer_addr_is_loopback(&a) != cases[i].loopback)
			fail_msg("%s: loopback expected %d", cases[i].addr, cases[i].loopback);
	}
}

/* Short buffers are cut, never overrun; an unset family formats as "". */
static void format_never_overruns_short_buffers(void **state)
{
	struct informer_addr a, none = { 0 };
	struct informer_prefix p;
	char buf[INFORMER_IP_STRLEN + 8];
	size_t len;

	(void)state;
	assert_int_equal(informer_addr_parse("1111:2222:3333:4444:5555:6666:7777:8888", &a), 0);
	assert_int_equal(informer_prefix_parse("1111:2222:3333:4444:5555:6666:7777:8888/128", &p),
			 0);
	for (len = 1; len < sizeof(buf); len++) {
		memset(buf, 'x', sizeof(buf));
		informer_addr_format(&a, buf, len);
		assert_true(strlen(buf) < len);
		assert_int_equal(buf[len], 'x');
		memset(buf, 'x', sizeof(buf));
		informer_prefix_format(&p, buf, len);
		assert_true(strlen(buf) < len);
		assert_int_equal(buf[len], 'x');
	}
	assert_string_equal(informer_prefix_format(&p, buf, INFORMER_IP_STRLEN),
			    "1111:2222:3333:4444:5555:6666:7777:8888/128");
	assert_string_equal(informer_addr_format(&none, buf, sizeof(buf)), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ip_parse_accepts_what_go_116_accepts),
		cmocka_unit_test(ip_parse_accepts_all_that_inet_pton_accepts),
		cmocka_unit_test(cidr_parse_masks_and_prints_like_go_ipnet),
		cmocka_unit_test(cidr_contains_only_addresses_of_its_family),
		cmocka_unit_test(loopback_is_127_slash_8_and_ipv6_one),
		cmocka_unit_test(format_never_overruns_short_buffers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
