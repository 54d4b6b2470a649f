/*
 * informer/ip.h - IP and CIDR parsing as upstream Kubernetes does it.
 *
 * Pure. "Sloppy" parsing follows k8s.io/utils/net ParseIPSloppy /
 * ParseCIDRSloppy (Go's pre-1.17 rules): IPv4 octets may carry leading zeros
 * and are read as decimal ("010.001.2.3" is 10.1.2.3); IPv4-mapped IPv6
 * addresses ("::ffff:1.2.3.4") are IPv4. Output is canonical (inet_ntop);
 * CIDRs are masked to their network address, as Go's IPNet.String() does.
 */
#ifndef INFORMER_IP_H
#define INFORMER_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "informer/compiler.h"
#include "informer/types.h"

/* Room for the longest canonical IPv6 CIDR text plus NUL. */
#define INFORMER_IP_STRLEN 50

/* A parsed address: IPv4 uses addr[0..3]. */
struct informer_addr {
	enum informer_family family;
	uint8_t addr[16];
};

struct informer_prefix {
	struct informer_addr addr; /* masked network address */
	unsigned int bits;
};

/* Parse @s (sloppy). Returns 0 or -EINVAL. */
int informer_addr_parse(const char *s, struct informer_addr *out) INFORMER_MUST_CHECK;

/* Parse "ip/bits" (sloppy); the address is masked. Returns 0 or -EINVAL. */
int informer_prefix_parse(const char *s, struct informer_prefix *out) INFORMER_MUST_CHECK;

/* Canonical text of @a into @buf (>= INFORMER_IP_STRLEN bytes); returns @buf. */
char *informer_addr_format(const struct informer_addr *a, char *buf, size_t len);

/* Canonical "network/bits" text of @p into @buf; returns @buf. */
char *informer_prefix_format(const struct informer_prefix *p, char *buf, size_t len);

/* Whether @p contains @a (false when the families differ). */
bool informer_prefix_contains(const struct informer_prefix *p, const struct informer_addr *a);

/* Whether @a is a loopback address (127.0.0.0/8 or ::1). */
bool informer_addr_is_loopback(const struct informer_addr *a);

#endif /* INFORMER_IP_H */
