/*
 * proxy/node.h - node setup as upstream does it at start (sysctls, conntrack
 * limits and timeouts) and the facts about the node the rules depend on.
 *
 * Writes only what the configuration asks for, and only when the value
 * differs. Global (non-namespaced) knobs such as nf_conntrack hashsize are
 * left alone when they cannot be written from this network namespace, as
 * upstream does with a read-only /sys.
 */
#ifndef PROXY_NODE_H
#define PROXY_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/compiler.h"
#include "proxy/config.h"

/* Where the sysctls live; tests point it at a temporary tree. */
struct proxy_node_paths {
	const char *proc_sys; /* default "/proc/sys" */
	const char *sys;      /* default "/sys" */
};

/*
 * proxy_node_setup - route_localnet when @route_localnet (IPv4 localhost
 * NodePorts), nf_conntrack_max / hashsize from conntrack maxPerCore and min,
 * TCP established and close-wait timeouts, tcp_be_liberal, UDP timeouts.
 * Each change is logged. Returns 0 or the first hard error (negative errno,
 * logged with the sysctl's name).
 */
int proxy_node_setup(const struct proxy_config *c, bool route_localnet,
		     const struct proxy_node_paths *paths) PROXY_MUST_CHECK;

/* net/netfilter/nf_conntrack_tcp_be_liberal != 0 (false if unreadable). */
bool proxy_node_tcp_be_liberal(const struct proxy_node_paths *paths);

/*
 * proxy_node_local_addrs - every address of the node's interfaces
 * (getifaddrs), canonical, for --nodeport-addresses matching; link-local
 * ones included, as upstream's net.InterfaceAddrs(). Replaces @out's
 * contents with the list, sorted and without duplicates. Returns the count
 * (>= 0) or a negative errno.
 */
int proxy_node_local_addrs(struct proxy_strlist *out) PROXY_MUST_CHECK;

/* Whether the kernel lets us create nfacct counters (NFNL_SUBSYS_ACCT). */
bool proxy_node_nfacct_available(void);

/* Create the nfacct counter @name if missing. Returns 0 or a negative errno. */
int proxy_node_nfacct_ensure(const char *name) PROXY_MUST_CHECK;

/* The packet count of nfacct counter @name. Synchronous (one netlink round
 * trip, microseconds). Returns 0, -ENOENT or another negative errno. */
int proxy_node_nfacct_read(const char *name, uint64_t *packets) PROXY_MUST_CHECK;

#endif /* PROXY_NODE_H */
