/*
 * test/helpers/trace.h - where does a packet go? A packet tracer over the nat
 * table of an iptables-restore document, after upstream's tracePacket
 * (shared/spec/kube-proxy-iptables.md section 7.3).
 *
 * From nat KUBE-SERVICES: a rule matches when all of -s, -d (CIDR, "!"), -p,
 * --dport, -i and addrtype --src-type/--dst-type LOCAL match; a rule with
 * an affinity check (recent --rcheck), a mark or a conntrack state match never
 * matches; comment, statistic, nfacct and recent --set always do. KUBE-MARK-MASQ
 * sets "masq" and goes on; DNAT, ACCEPT, DROP and REJECT end the walk;
 * RETURN returns; any other target walks that chain, and a walk that ended
 * stops the caller too unless the jump was probabilistic - so every
 * endpoint of a service is collected, in order.
 *
 * Test code: exits the test (cmocka fail) on malformed input.
 */
#ifndef TEST_HELPERS_TRACE_H
#define TEST_HELPERS_TRACE_H

#include <stdbool.h>
#include <stddef.h>

struct trace_doc;

struct trace_packet {
	const char *src;
	const char *dst;
	const char *proto; /* "tcp", "udp", "sctp" */
	unsigned int dport;
	const char *in_iface; /* NULL: none */
};

/* Parse @text's nat table (@v6: of the ip6tables section when the text holds
 * "# IPv6:" sections, else the first); NULL when it has no nat table. */
struct trace_doc *trace_doc_new(const char *text, bool v6);
void trace_doc_free(struct trace_doc *d);

/* Every destination (address, port, protocol) a nat KUBE-SERVICES-reachable
 * rule matches on, and every KUBE-NODEPORTS port: the packets worth tracing.
 * Fills up to @max packets (strings owned by @d) and returns their number. */
size_t trace_doc_targets(struct trace_doc *d, struct trace_packet *out, size_t max);

/*
 * trace_packet - the outcome of @p, as "DNAT 10.0.0.1:80, DNAT ... | masq" or
 * "REJECT" or "" (nothing matched), into @buf. @local: the node's addresses
 * (for addrtype LOCAL), NULL-terminated. @steps_out, if not NULL, gets the
 * number of rules evaluated. Returns @buf.
 */
const char *trace_packet(const struct trace_doc *d, const struct trace_packet *p,
			 const char *const *local, char *buf, size_t len, size_t *steps_out);

#endif /* TEST_HELPERS_TRACE_H */
