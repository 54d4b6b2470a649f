/*
 * rules/model.h - the rule writer's input: one IP family's desired state.
 *
 * Built by proxy/tracker.c from the informer's objects; rendered by
 * rules/render.c. Everything here is already validated, normalised and
 * categorised (which endpoints serve cluster traffic, which local traffic,
 * which are reachable from this node): the renderer only decides rule text.
 *
 * Ownership: the structs borrow every pointer from their builder; they must
 * stay valid and unchanged while a render runs. Nothing here is freed by
 * rules/.
 */
#ifndef RULES_MODEL_H
#define RULES_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules/chain.h"

enum rules_family {
	RULES_IPV4 = 4,
	RULES_IPV6 = 6,
};

enum rules_proto {
	RULES_PROTO_TCP = 0,
	RULES_PROTO_UDP,
	RULES_PROTO_SCTP,
};

/* Lower-case protocol name as iptables and the chain hashes spell it. */
const char *rules_proto_name(enum rules_proto p);

/* One endpoint of one service port. */
struct rules_endpoint {
	const char *ip;	 /* canonical address */
	const char *str; /* "ip:port" or "[ip]:port": upstream's Endpoint.String() */
	char chain[RULES_CHAIN_NAME_MAX]; /* KUBE-SEP-..., from rules_chain_sep() */
};

/* One service port (a ServicePortName with its protocol). */
struct rules_svc_port {
	/* ServicePortName.String(): "ns/name" or "ns/name:portname" */
	const char *name;
	enum rules_proto proto;
	char hash[RULES_HASH_LEN + 1]; /* rules_chain_hash(name, proto, NULL) */

	const char *cluster_ip; /* canonical, of this family */
	uint16_t port;
	uint16_t node_port;    /* 0: none */
	uint16_t hc_node_port; /* healthCheckNodePort, 0: none */

	const char *const *external_ips; /* this family's externalIPs */
	size_t n_external_ips;
	const char *const *lb_ips; /* this family's VIP-mode LB ingress IPs */
	size_t n_lb_ips;
	const char *const *source_ranges; /* this family's loadBalancerSourceRanges */
	size_t n_source_ranges;
	/* a source range contains the node's IP: the LB IPs are allowed as sources */
	bool fw_allow_from_node;

	bool affinity; /* sessionAffinity: ClientIP */
	uint32_t affinity_timeout;

	bool etp_local; /* ExternalPolicyLocal (externally accessible and eTP Local) */
	bool itp_local; /* InternalPolicyLocal */

	/* CategorizeEndpoints() results (shared/spec section 4.3). */
	const struct rules_endpoint *const *cluster_eps;
	size_t n_cluster_eps;
	const struct rules_endpoint *const *local_eps;
	size_t n_local_eps;
	const struct rules_endpoint *const *reachable_eps; /* SEP chains to write */
	size_t n_reachable_eps;
	bool has_endpoints; /* any usable endpoint anywhere in the cluster */

	/* Changes whenever anything above changes (0: unknown). The reconciler
	 * re-renders a port only when its generation moved. */
	uint64_t gen;
};

/* Whether the port is reachable other than by its ClusterIP. */
static inline bool rules_svc_port_external(const struct rules_svc_port *sp)
{
	return sp->node_port || sp->n_lb_ips || sp->n_external_ips;
}

/* Whether the port ever sends traffic to endpoints by "Cluster" policy (even
 * with eTP Local, external traffic from local sources short-circuits to it). */
static inline bool rules_svc_port_uses_cluster(const struct rules_svc_port *sp)
{
	return !sp->itp_local || rules_svc_port_external(sp);
}

/* Whether the port ever sends traffic to endpoints by "Local" policy. */
static inline bool rules_svc_port_uses_local(const struct rules_svc_port *sp)
{
	return sp->itp_local || (sp->etp_local && rules_svc_port_external(sp));
}

/* How local (pod) traffic is told apart from the rest (--detect-local-mode). */
enum rules_local_mode {
	RULES_LOCAL_NONE = 0,  /* no detector: no masquerade/short-circuit rules */
	RULES_LOCAL_CIDR,      /* ClusterCIDR or NodeCIDR: -s <cidr> */
	RULES_LOCAL_INTERFACE, /* BridgeInterface (-i br) or InterfaceNamePrefix (-i pfx+) */
};

/* How KUBE-SERVICES dispatches to the ClusterIP rules (rules/dispatch.h). */
enum rules_dispatch_mode {
	RULES_DISPATCH_LINEAR = 0, /* upstream's layout: one KUBE-SERVICES rule per port */
	RULES_DISPATCH_TREE,	   /* the prefix tree of KUBE-CIP chains */
	RULES_DISPATCH_AUTO,	   /* linear up to dispatch_auto_ports service ports, then tree */
};

/* --service-dispatch=auto switches to the tree above this many service ports
 * of a family. Measured (hack/bench/RESULTS.md, iptables-nft): linear costs new
 * non-service connections 4 % at 125 ports and 12 % at 307, the tree costs
 * nothing measurable at any size; this is where linear's cost reaches ~10 %. */
#define RULES_DISPATCH_AUTO_PORTS 250

/* Node- and flag-derived settings of one render. */
struct rules_opts {
	unsigned int masquerade_bit; /* 0..31; the mark is 1 << bit */
	bool masquerade_all;
	enum rules_local_mode local_mode;
	/* RULES_LOCAL_CIDR: the CIDR; RULES_LOCAL_INTERFACE: the interface name,
	 * with a trailing '+' for a prefix */
	const char *local_match;

	/* Effective localhost NodePorts (IPv4 only; already false when
	 * --nodeport-addresses excludes 127.0.0.0/8). Adds KUBE-FIREWALL. */
	bool localhost_nodeports;
	/* NULL: NodePorts on every local address. Otherwise the node addresses
	 * selected by --nodeport-addresses (loopbacks are dropped here as
	 * upstream does when localhost NodePorts are off or on IPv6). */
	const char *const *nodeport_ips;
	size_t n_nodeport_ips;
	bool nodeport_match_all;

	bool random_fully;		/* MASQUERADE --random-fully (iptables >= 1.6.2) */
	bool nfacct;			/* the nfacct counters exist: add the nfacct matches */
	bool tcp_be_liberal;		/* nf_conntrack_tcp_be_liberal set: no INVALID drop */
	size_t large_cluster_threshold; /* endpoints above which comments are cut (1000) */
	enum rules_dispatch_mode dispatch;
	size_t dispatch_auto_ports;
	size_t dispatch_leaf_max; /* 0: RULES_DISPATCH_LEAF_MAX (tests split smaller trees) */
	/* --service-cluster-ip-range: the tree's roots (either family; the
	 * other family's are ignored). None: derived from the ClusterIPs. */
	const char *const *service_cidrs;
	size_t n_service_cidrs;
};

/* Defaults of upstream kube-proxy (bit 14, threshold 1000, match-all NodePorts). */
void rules_opts_init(struct rules_opts *o);

/* One family's complete desired state. */
struct rules_state {
	enum rules_family family;
	const struct rules_svc_port *const *ports; /* sorted by name, then protocol */
	size_t n_ports;
	/* every endpoint of every service port in @ports (ready or not), as
	 * upstream counts them for large-cluster mode */
	size_t total_endpoints;
	/* stale KUBE-SVC/SVL/EXT/FW/SEP chains to flush and delete */
	const char *const *stale_chains;
	size_t n_stale_chains;
};

#endif /* RULES_MODEL_H */
