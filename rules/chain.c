/*
 * rules/chain.c - upstream-compatible chain names (sha256 + base32).
 */
#include "rules/chain.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

/* RFC 4648 base32 of the first 10 bytes of @in: exactly 16 characters. */
static void base32_16(const unsigned char *in, char *out)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	uint64_t acc;
	int i, j;

	/* 10 bytes = two groups of 5 bytes = two groups of 8 characters. */
	for (i = 0; i < 2; i++) {
		acc = 0;
		for (j = 0; j < 5; j++)
			acc = (acc << 8) | in[i * 5 + j];
		for (j = 7; j >= 0; j--) {
			out[i * 8 + j] = alphabet[acc & 31];
			acc >>= 5;
		}
	}
	out[RULES_HASH_LEN] = '\0';
}

int rules_chain_hash(const char *spn, const char *proto, const char *endpoint, char *out)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t a = strlen(spn), b = strlen(proto), c = endpoint ? strlen(endpoint) : 0;
	char stack[512];
	char *msg = stack;

	/* Names are bounded by the API (DNS labels), so the heap is only a
	 * fallback for objects that slipped past validation. */
	if (a + b + c > sizeof(stack)) {
		msg = malloc(a + b + c);
		if (!msg)
			return -ENOMEM;
	}
	memcpy(msg, spn, a);
	memcpy(msg + a, proto, b);
	if (c)
		memcpy(msg + a + b, endpoint, c);
	SHA256((const unsigned char *)msg, a + b + c, md);
	if (msg != stack)
		free(msg);
	base32_16(md, out);
	return 0;
}

int rules_chain_sep(const char *spn, const char *proto, const char *endpoint, char *out)
{
	memcpy(out, "KUBE-SEP-", 9);
	return rules_chain_hash(spn, proto, endpoint, out + 9);
}

bool rules_chain_is_service(const char *name)
{
	static const char *const prefixes[] = { "KUBE-SVC-", "KUBE-SVL-", "KUBE-SEP-", "KUBE-FW-",
						"KUBE-EXT-" };
	size_t i;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}
