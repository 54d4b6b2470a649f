/*
 * proxy/config.h - the resolved configuration of one run.
 *
 * cmd/ fills it from flags and the KubeProxyConfiguration file; everything
 * else reads it. Field names follow KubeProxyConfiguration
 * (kubeproxy.config.k8s.io/v1alpha1), defaults follow upstream.
 *
 * Ownership: the struct owns every string and list (proxy_config_cleanup()).
 */
#ifndef PROXY_CONFIG_H
#define PROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "informer/types.h"
#include "proxy/compiler.h"
#include "rules/model.h"

enum proxy_local_mode {
	PROXY_LOCAL_CLUSTER_CIDR = 0, /* upstream's default */
	PROXY_LOCAL_NODE_CIDR,
	PROXY_LOCAL_BRIDGE_INTERFACE,
	PROXY_LOCAL_INTERFACE_NAME_PREFIX,
};

/* Which families to program (or dump). */
enum proxy_families {
	PROXY_FAMILIES_AUTO = 0, /* daemon: those the node supports; dump: those in use */
	PROXY_FAMILIES_IPV4,
	PROXY_FAMILIES_IPV6,
	PROXY_FAMILIES_DUAL,
};

/* A setting that is detected unless forced. */
enum proxy_tristate {
	PROXY_AUTO = 0,
	PROXY_ON,
	PROXY_OFF,
};

struct proxy_strlist {
	char **v;
	size_t n;
};

struct proxy_config {
	/* identity and API access */
	char *hostname_override; /* the node name to use; NULL: the host name */
	char *kubeconfig;
	char *master;
	double kube_api_qps;
	int kube_api_burst;
	char *bind_address; /* primary node IP hint; "0.0.0.0" = detect from the Node */
	bool bind_address_hard_fail;
	char *healthz_bind_address;
	char *metrics_bind_address; /* "" disables */
	int64_t config_sync_period_ms;

	/* iptables */
	char *proxy_mode;
	unsigned int masquerade_bit;
	bool masquerade_all;
	bool localhost_nodeports;
	int64_t sync_period_ms;
	int64_t min_sync_period_ms;
	enum proxy_tristate random_fully;
	enum proxy_tristate nfacct;
	char *iptables_backend; /* "auto", "nft" or "legacy" */
	/* --service-dispatch and --service-cluster-ip-range (rules/dispatch.h) */
	enum rules_dispatch_mode service_dispatch;
	struct proxy_strlist service_cidrs;

	/* local traffic detection */
	enum proxy_local_mode detect_local_mode;
	struct proxy_strlist cluster_cidrs;
	char *pod_bridge_interface;
	char *pod_interface_name_prefix;

	struct proxy_strlist nodeport_addresses; /* CIDRs, or the word "primary" */

	/* conntrack */
	int32_t conntrack_max_per_core;
	int32_t conntrack_min;
	int64_t conntrack_tcp_established_ms;
	int64_t conntrack_tcp_close_wait_ms;
	bool conntrack_tcp_be_liberal;
	int64_t conntrack_udp_timeout_ms;
	int64_t conntrack_udp_stream_timeout_ms;

	/* feature gates we act on */
	bool gate_prefer_same_node;

	enum proxy_families families;
	int oom_score_adj;
};

/* Upstream's defaults. Returns 0 or -ENOMEM. */
int proxy_config_init(struct proxy_config *c) PROXY_MUST_CHECK;
void proxy_config_cleanup(struct proxy_config *c);

/* Replace *@dst by a copy of @s (NULL allowed). Returns 0 or -ENOMEM. */
int proxy_config_set_str(char **dst, const char *s) PROXY_MUST_CHECK;

/* Replace @l by the comma-separated items of @s (trimmed, empty ones dropped). */
int proxy_strlist_set_csv(struct proxy_strlist *l, const char *s) PROXY_MUST_CHECK;
int proxy_strlist_add(struct proxy_strlist *l, const char *s) PROXY_MUST_CHECK;
void proxy_strlist_clear(struct proxy_strlist *l);

/*
 * proxy_config_validate - check values that upstream validates (CIDRs,
 * masquerade bit, detect-local-mode requirements, sync periods). On error
 * writes a message naming the setting to @err and returns -EINVAL.
 */
int proxy_config_validate(const struct proxy_config *c, char *err, size_t errlen) PROXY_MUST_CHECK;

/*
 * The per-family values derived from the configuration and the node. Owns its
 * strings; build with proxy_family_setup(), release with
 * proxy_family_setup_cleanup().
 */
struct proxy_family_setup {
	enum rules_family family;
	struct rules_opts opts; /* points into the fields below */
	char *node_ip;		/* primary node IP of this family (loopback if unknown) */
	char *local_match;
	struct proxy_strlist nodeport_ips;
	bool localhost_nodeports_wanted; /* route_localnet needed (IPv4) */
};

/*
 * proxy_family_setup - rules options for @family from @c, the own @node (may
 * be NULL) and the node's local addresses @addrs (canonical IPs: the daemon
 * passes its interfaces, --dump-rules the Node's addresses and loopbacks).
 * Detected settings (random-fully, nfacct, tcp_be_liberal) are passed in.
 * Problems that upstream only logs (e.g. no cluster CIDR of this family) are
 * reported through @warn. Returns 0, -EINVAL (with @err) or -ENOMEM.
 */
int proxy_family_setup(struct proxy_family_setup *fs, const struct proxy_config *c,
		       enum rules_family family, const struct informer_node *node,
		       const char *const *addrs, size_t n_addrs, bool random_fully, bool nfacct,
		       bool tcp_be_liberal, void (*warn)(void *arg, const char *msg),
		       void *warn_arg, char *err, size_t errlen) PROXY_MUST_CHECK;
void proxy_family_setup_cleanup(struct proxy_family_setup *fs);

/*
 * proxy_node_primary_ip - upstream's node IP detection: a specified
 * @bind_address of @family wins; otherwise the first InternalIP of @family,
 * then the first ExternalIP; otherwise loopback. Writes canonical text to
 * @buf (>= 64 bytes). Returns whether a real address was found.
 */
bool proxy_node_primary_ip(const struct informer_node *node, const char *bind_address,
			   enum rules_family family, char *buf, size_t len);

#endif /* PROXY_CONFIG_H */
