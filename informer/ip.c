/*
 * informer/ip.c - IP and CIDR parsing as k8s.io/utils/net does it (see ip.h).
 *
 * The parsers accept exactly what Go 1.16's net.ParseIP/ParseCIDR accept
 * (k8s.io/utils forked those as ParseIPSloppy/ParseCIDRSloppy), because a
 * proxy must take the addresses the API server stored as kube-proxy does:
 *   - an IPv4 octet is any number of decimal digits with a value <= 255
 *     ("010" is 10, "0000001" is 1); an IPv6 group is any number of hex
 *     digits with a value <= 0xffff;
 *   - IPv6 may end in a dotted IPv4 part (sloppy octets too), but zones
 *     ("%eth0"), brackets and surrounding blanks are not accepted.
 * Formatting follows Go's IP.String() (RFC 5952), which is what upstream puts
 * into rules and chain-name hashes. It matches inet_ntop() except for the
 * IPv4-compatible block ::/96, which inet_ntop prints with a dotted tail.
 */
#include "informer/ip.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Go's "big": values are capped here while digits are read. */
#define BIG 0xFFFFFF

/* Go's dtoi: leading decimal digits of @s; returns how many were read (0: none or too big). */
static size_t dtoi(const char *s, size_t len, unsigned int *out)
{
	unsigned int n = 0;
	size_t i;

	for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		n = n * 10 + (unsigned int)(s[i] - '0');
		if (n >= BIG)
			return 0;
	}
	*out = n;
	return i;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Go's xtoi: leading hex digits of @s; returns how many were read (0: none or too big). */
static size_t xtoi(const char *s, size_t len, unsigned int *out)
{
	unsigned int n = 0;
	size_t i;

	for (i = 0; i < len && hexval(s[i]) >= 0; i++) {
		n = n * 16 + (unsigned int)hexval(s[i]);
		if (n >= BIG)
			return 0;
	}
	*out = n;
	return i;
}

/* "d.d.d.d" with sloppy octets, the whole of @s. */
static bool parse_v4(const char *s, size_t len, uint8_t out[4])
{
	size_t i, off = 0, c;
	unsigned int n;

	for (i = 0; i < 4; i++) {
		if (i > 0) {
			if (off >= len || s[off] != '.')
				return false;
			off++;
		}
		c = dtoi(s + off, len - off, &n);
		if (!c || n > 0xFF)
			return false;
		out[i] = (uint8_t)n;
		off += c;
	}
	return off == len;
}

/* Move the groups parsed after the "::" at @ellipsis to the end of @ip. */
static bool expand_ellipsis(uint8_t ip[16], size_t i, long ellipsis)
{
	size_t n = 16 - i, j;

	if (i == 16)
		return ellipsis < 0; /* "::" must stand for at least one group */
	if (ellipsis < 0)
		return false;
	for (j = i; j-- > (size_t)ellipsis;)
		ip[j + n] = ip[j];
	memset(ip + ellipsis, 0, n);
	return true;
}

/* A trailing dotted IPv4 part at byte @i of the address. */
static bool parse_v6_tail(const char *s, size_t len, uint8_t ip[16], size_t i, long ellipsis)
{
	if (ellipsis < 0 && i != 12)
		return false;
	if (i + 4 > 16)
		return false;
	return parse_v4(s, len, ip + i);
}

/* Go's parseIPv6, the whole of @s. */
static bool parse_v6(const char *s, size_t len, uint8_t ip[16])
{
	long ellipsis = -1;
	size_t i = 0, c;
	unsigned int n;

	memset(ip, 0, 16);
	if (len >= 2 && s[0] == ':' && s[1] == ':') {
		ellipsis = 0;
		s += 2;
		len -= 2;
		if (!len)
			return true;
	}
	while (i < 16) {
		c = xtoi(s, len, &n);
		if (!c || n > 0xFFFF)
			return false;
		if (c < len && s[c] == '.') {
			if (!parse_v6_tail(s, len, ip, i, ellipsis))
				return false;
			i += 4;
			len = 0;
			break;
		}
		ip[i] = (uint8_t)(n >> 8);
		ip[i + 1] = (uint8_t)n;
		i += 2;
		s += c;
		len -= c;
		if (!len)
			break;
		if (s[0] != ':' || len == 1)
			return false;
		s++;
		len--;
		if (s[0] == ':') {
			if (ellipsis >= 0)
				return false;
			ellipsis = (long)i;
			s++;
			len--;
			if (!len)
				break;
		}
	}
	if (len)
		return false;
	return expand_ellipsis(ip, i, ellipsis);
}

static bool is_v4_mapped(const uint8_t ip[16])
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(ip, prefix, sizeof(prefix)) == 0;
}

/* Store the 16-byte address @ip, as IPv4 when it is v4-mapped (Go's To4()). */
static void set_v6(struct informer_addr *out, const uint8_t ip[16])
{
	memset(out, 0, sizeof(*out));
	if (is_v4_mapped(ip)) {
		out->family = INFORMER_IPV4;
		memcpy(out->addr, ip + 12, 4);
	} else {
		out->family = INFORMER_IPV6;
		memcpy(out->addr, ip, 16);
	}
}

int informer_addr_parse(const char *s, struct informer_addr *out)
{
	size_t len = strlen(s), i;
	uint8_t ip[16];

	/* like Go's ParseIP: the first '.' or ':' decides the family */
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (!parse_v4(s, len, ip))
				return -EINVAL;
			memset(out, 0, sizeof(*out));
			out->family = INFORMER_IPV4;
			memcpy(out->addr, ip, 4);
			return 0;
		}
		if (s[i] == ':') {
			if (!parse_v6(s, len, ip))
				return -EINVAL;
			set_v6(out, ip);
			return 0;
		}
	}
	return -EINVAL;
}

/* Clear every bit of @addr (@nbytes long) after the first @bits. */
static void mask_bits(uint8_t *addr, size_t nbytes, unsigned int bits)
{
	size_t i;

	for (i = 0; i < nbytes; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		addr[i] &= (uint8_t)(0xFF00 >> bits);
		bits = 0;
	}
}

int informer_prefix_parse(const char *s, struct informer_prefix *out)
{
	const char *slash = strchr(s, '/');
	size_t alen, mlen, c;
	unsigned int bits, max = 32;
	uint8_t ip[16];

	if (!slash)
		return -EINVAL;
	alen = (size_t)(slash - s);
	mlen = strlen(slash + 1);
	memset(out, 0, sizeof(*out));
	if (parse_v4(s, alen, ip)) {
		out->addr.family = INFORMER_IPV4;
		memcpy(out->addr.addr, ip, 4);
	} else if (parse_v6(s, alen, ip)) {
		max = 128;
	} else {
		return -EINVAL;
	}
	c = dtoi(slash + 1, mlen, &bits);
	if (!c || c != mlen || bits > max)
		return -EINVAL;
	if (max == 32) {
		mask_bits(out->addr.addr, 4, bits);
		out->bits = bits;
		return 0;
	}
	/*
	 * As Go's IPNet.String(): a masked network that is still v4-mapped
	 * (only possible with bits >= 96) prints as IPv4, with 96 bits fewer.
	 */
	mask_bits(ip, 16, bits);
	set_v6(&out->addr, ip);
	out->bits = out->addr.family == INFORMER_IPV4 ? bits - 96 : bits;
	return 0;
}

/* Go's IP.String() for IPv6: the first longest run of two or more zero groups becomes "::". */
static void format_v6(const uint8_t *p, char *buf, size_t len)
{
	int i, j, e0 = -1, e1 = -1;
	size_t off = 0;

	for (i = 0; i < 16; i += 2) {
		for (j = i; j < 16 && p[j] == 0 && p[j + 1] == 0; j += 2)
			;
		if (j > i && j - i > e1 - e0) {
			e0 = i;
			e1 = j;
			i = j;
		}
	}
	if (e1 - e0 <= 2)
		e0 = e1 = -1;
	buf[0] = '\0';
	for (i = 0; i < 16 && off < len; i += 2) {
		if (i == e0) {
			off += (size_t)snprintf(buf + off, len - off, "::");
			i = e1;
			if (i >= 16)
				break;
		} else if (i > 0) {
			off += (size_t)snprintf(buf + off, len - off, ":");
		}
		if (off < len)
			off += (size_t)snprintf(buf + off, len - off, "%x",
						(unsigned int)(p[i] << 8 | p[i + 1]));
	}
}

char *informer_addr_format(const struct informer_addr *a, char *buf, size_t len)
{
	if (!len)
		return buf;
	if (a->family == INFORMER_IPV4)
		snprintf(buf, len, "%u.%u.%u.%u", a->addr[0], a->addr[1], a->addr[2], a->addr[3]);
	else if (a->family == INFORMER_IPV6)
		format_v6(a->addr, buf, len);
	else
		buf[0] = '\0';
	return buf;
}

char *informer_prefix_format(const struct informer_prefix *p, char *buf, size_t len)
{
	size_t n;

	informer_addr_format(&p->addr, buf, len);
	n = strlen(buf);
	if (n < len)
		snprintf(buf + n, len - n, "/%u", p->bits);
	return buf;
}

bool informer_prefix_contains(const struct informer_prefix *p, const struct informer_addr *a)
{
	size_t nbytes = p->addr.family == INFORMER_IPV4 ? 4 : 16;
	uint8_t masked[16];

	if (p->addr.family != a->family || p->addr.family == INFORMER_FAMILY_NONE)
		return false;
	memcpy(masked, a->addr, nbytes);
	mask_bits(masked, nbytes, p->bits);
	return memcmp(masked, p->addr.addr, nbytes) == 0;
}

bool informer_addr_is_loopback(const struct informer_addr *a)
{
	static const uint8_t v6_loopback[16] = { [15] = 1 };

	if (a->family == INFORMER_IPV4)
		return a->addr[0] == 127;
	return a->family == INFORMER_IPV6 && memcmp(a->addr, v6_loopback, 16) == 0;
}
