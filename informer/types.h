/*
 * informer/types.h - Kubernetes objects as the proxy sees them.
 *
 * Plain C structs holding exactly the fields a service proxy reads from
 * v1 Service, discovery.k8s.io/v1 EndpointSlice and v1 Node
 * (shared/spec/kubernetes-api.md section 3). They are produced by
 * informer/decode.c and consumed by proxy/tracker.c.
 *
 * Ownership: every string and array of an object lives in the object's own
 * arena, so one informer_<kind>_free() releases everything and no pointer into
 * an object outlives it. Objects are immutable once decoded; an update is a
 * new object. No jansson value survives decoding.
 *
 * Addresses are validated while decoding: IPs are parsed "sloppily" as
 * upstream does (IPv4 octets with leading zeros are decimal), IPv4-mapped IPv6
 * addresses count as IPv4, and they are stored in canonical text form
 * (inet_ntop). CIDRs are stored masked to their network address
 * ("10.0.0.1/8" -> "10.0.0.0/8"), as Go's IPNet.String() prints them.
 */
#ifndef INFORMER_TYPES_H
#define INFORMER_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct informer_arena;

/* Address family of a validated IP or CIDR. */
enum informer_family {
	INFORMER_FAMILY_NONE = 0,
	INFORMER_IPV4 = 4,
	INFORMER_IPV6 = 6,
};

/* Layer 4 protocol; absent in the API means TCP. */
enum informer_proto {
	INFORMER_PROTO_TCP = 0,
	INFORMER_PROTO_UDP,
	INFORMER_PROTO_SCTP,
};

/* A *bool condition of the API: absent is not the same as false. */
enum informer_cond {
	INFORMER_COND_UNSET = 0,
	INFORMER_COND_TRUE,
	INFORMER_COND_FALSE,
};

/* A validated IP (canonical text) with its family. */
struct informer_ip {
	const char *ip;
	enum informer_family family;
};

/* A validated CIDR (canonical, masked) with its family. */
struct informer_cidr {
	const char *cidr;
	enum informer_family family;
};

struct informer_label {
	const char *key;
	const char *value;
};

/* What every object carries. */
struct informer_meta {
	const char *namespace;	       /* NULL for cluster-scoped objects (Node) */
	const char *name;	       /* never NULL: objects without a name are rejected */
	const char *uid;	       /* NULL if absent */
	const char *resource_version;  /* opaque; NULL if absent */
	bool deleting;		       /* metadata.deletionTimestamp is set */
	struct informer_label *labels; /* sorted by key */
	size_t n_labels;
	/* annotation endpoints.kubernetes.io/last-change-trigger-time, parsed
	 * (RFC 3339, UTC) to nanoseconds since the epoch; 0 if absent/invalid */
	int64_t last_change_trigger_ns;
};

/* ---- v1 Service ---------------------------------------------------- */

enum informer_svc_type {
	INFORMER_SVC_CLUSTER_IP = 0, /* also the default when absent */
	INFORMER_SVC_NODE_PORT,
	INFORMER_SVC_LOAD_BALANCER,
	INFORMER_SVC_EXTERNAL_NAME,
};

enum informer_policy {
	INFORMER_POLICY_CLUSTER = 0, /* also "absent" */
	INFORMER_POLICY_LOCAL,
};

enum informer_lb_ip_mode {
	INFORMER_LB_IP_MODE_UNSET = 0, /* absent: treated as VIP */
	INFORMER_LB_IP_MODE_VIP,
	INFORMER_LB_IP_MODE_PROXY,
};

struct informer_service_port {
	const char *name; /* "" when absent */
	enum informer_proto protocol;
	uint16_t port;		      /* 1..65535 */
	uint16_t target_port;	      /* 0 when target_port_name is set or absent */
	const char *target_port_name; /* NULL unless targetPort is a string */
	uint16_t node_port;	      /* 0 when absent */
	const char *app_protocol;     /* NULL when absent */
};

struct informer_lb_ingress {
	struct informer_ip ip; /* ip.ip == NULL when the entry has no (valid) IP */
	const char *hostname;  /* NULL when absent */
	enum informer_lb_ip_mode ip_mode;
};

struct informer_service {
	struct informer_meta meta;
	enum informer_svc_type type;
	/* spec.clusterIP exactly as given: "" when absent, "None" for headless,
	 * otherwise the canonical form of a valid IP. */
	const char *cluster_ip;
	/* spec.clusterIPs, canonical, with spec.ipFamilies (same order). Invalid
	 * entries are kept as family NONE so the index pairing stays intact. */
	struct informer_ip *cluster_ips;
	size_t n_cluster_ips;
	enum informer_family *ip_families;
	size_t n_ip_families;
	struct informer_service_port *ports;
	size_t n_ports;
	bool affinity_client_ip;	  /* spec.sessionAffinity == ClientIP */
	int32_t affinity_timeout;	  /* timeoutSeconds; 10800 when absent */
	struct informer_ip *external_ips; /* valid ones only */
	size_t n_external_ips;
	struct informer_lb_ingress *lb_ingress;
	size_t n_lb_ingress;
	struct informer_cidr *source_ranges; /* trimmed, valid ones only */
	size_t n_source_ranges;
	enum informer_policy external_policy;
	enum informer_policy internal_policy;
	uint16_t health_check_node_port;  /* 0 when absent */
	const char *traffic_distribution; /* NULL when absent */
	const char *external_name;	  /* NULL when absent */
	bool publish_not_ready_addresses;

	struct informer_arena *arena; /* private */
};

/* ---- discovery.k8s.io/v1 EndpointSlice ----------------------------- */

enum informer_address_type {
	INFORMER_ADDR_IPV4 = 0,
	INFORMER_ADDR_IPV6,
	INFORMER_ADDR_FQDN,
	INFORMER_ADDR_OTHER, /* anything else: ignored by the proxy */
};

struct informer_endpoint {
	/* addresses[0], validated against the slice's addressType. Endpoints
	 * with no (valid) address are dropped while decoding. */
	struct informer_ip address;
	enum informer_cond ready;
	enum informer_cond serving;
	enum informer_cond terminating;
	const char *node_name;	 /* NULL when absent */
	const char *zone;	 /* NULL when absent */
	const char *hostname;	 /* NULL when absent */
	const char **hint_zones; /* hints.forZones[].name */
	size_t n_hint_zones;
	const char **hint_nodes; /* hints.forNodes[].name */
	size_t n_hint_nodes;
};

struct informer_slice_port {
	const char *name; /* NULL when absent (the proxy skips such ports), "" allowed */
	enum informer_proto protocol;
	uint16_t port; /* 0 when absent (the proxy skips such ports) */
	const char *app_protocol;
};

struct informer_endpointslice {
	struct informer_meta meta;
	/* label kubernetes.io/service-name; NULL when absent or empty */
	const char *service_name;
	enum informer_address_type address_type;
	struct informer_endpoint *endpoints;
	size_t n_endpoints;
	struct informer_slice_port *ports;
	size_t n_ports;

	struct informer_arena *arena; /* private */
};

/* ---- v1 Node --------------------------------------------------------- */

enum informer_node_addr_type {
	INFORMER_NODE_INTERNAL_IP = 0,
	INFORMER_NODE_EXTERNAL_IP,
	INFORMER_NODE_OTHER, /* Hostname, InternalDNS, ...: not an IP */
};

struct informer_node_address {
	enum informer_node_addr_type type;
	struct informer_ip ip; /* valid IPs only (Hostname entries are dropped) */
};

struct informer_taint {
	const char *key;
	const char *value;  /* NULL when absent */
	const char *effect; /* NULL when absent */
};

struct informer_node {
	struct informer_meta meta;
	struct informer_cidr *pod_cidrs; /* spec.podCIDRs, or [spec.podCIDR] */
	size_t n_pod_cidrs;
	struct informer_node_address *addresses; /* status.addresses, API order */
	size_t n_addresses;
	struct informer_taint *taints;
	size_t n_taints;

	struct informer_arena *arena; /* private */
};

/* Free an object and everything it points to. NULL is a no-op. */
void informer_service_free(struct informer_service *svc);
void informer_endpointslice_free(struct informer_endpointslice *eps);
void informer_node_free(struct informer_node *node);

/*
 * informer_meta_label - value of label @key, or NULL when absent.
 * Borrowed: valid as long as the object.
 */
const char *informer_meta_label(const struct informer_meta *meta, const char *key);

#endif /* INFORMER_TYPES_H */
