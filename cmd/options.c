/*
 * cmd/options.c - the flag table, flag parsing, --help and the man page.
 */
#include "cmd/options.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum ftype {
	T_BOOL,
	T_STR,
	T_INT,	 /* int */
	T_I32,	 /* int32_t */
	T_UINT,	 /* unsigned int */
	T_FLOAT, /* double */
	T_DUR,	 /* int64_t milliseconds */
	T_CSV,	 /* struct proxy_strlist */
	T_FUNC,	 /* custom setter */
};

enum fscope {
	S_CONFIG,  /* a setting the config file replaces: ignored with --config */
	S_ALWAYS,  /* applies with or without --config */
	S_IGNORED, /* accepted for compatibility; has no effect here */
};

struct flag {
	const char *name;
	char shorthand;
	enum ftype type;
	enum fscope scope;
	const char *group;
	const char *def; /* default shown in --help, NULL: none */
	const char *help;
	size_t off; /* in struct cmd_options */
	int (*set)(struct cmd_options *o, const char *val, char *err, size_t errlen);
	bool bool_value; /* a T_FUNC flag that takes no value (like a bool) */
};

#define CFG(field) offsetof(struct cmd_options, cfg.field)
#define OPT(field) offsetof(struct cmd_options, field)

static int errf(char *err, size_t errlen, const char *fmt, ...) PROXY_PRINTF(3, 4);

static int errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int cmd_parse_duration(const char *s, long long *ms)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = { { "ns", 1e-6 }, { "us", 1e-3 }, { "\xc2\xb5s", 1e-3 }, { "ms", 1 },
		      { "s", 1e3 },   { "m", 60e3 },  { "h", 3600e3 } };
	double total = 0;
	bool neg = false;
	const char *p = s;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (strcmp(p, "0") == 0) {
		*ms = 0;
		return 0;
	}
	if (!*p)
		return -EINVAL;
	while (*p) {
		char *end;
		double v;
		size_t i, best = 0, best_len = 0;

		if (!isdigit((unsigned char)*p) && *p != '.')
			return -EINVAL;
		v = strtod(p, &end);
		if (end == p)
			return -EINVAL;
		p = end;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].unit);

			if (strncmp(p, units[i].unit, l) == 0 && l > best_len) {
				best = i;
				best_len = l;
			}
		}
		if (!best_len)
			return -EINVAL; /* Go requires a unit on every number */
		total += v * units[best].ms;
		p += best_len;
	}
	if (total > 9.2e15)
		return -EINVAL;
	*ms = (long long)(neg ? -total : total);
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	/* Go's strconv.ParseBool */
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
	size_t i;

	for (i = 0; i < 6; i++) {
		if (strcmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_long(const char *v, long long min, long long max, long long *out)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 0);
	if (errno || end == v || *end || x < min || x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

/* ---- custom setters ---------------------------------------------------- */

static int set_detect_local_mode(struct cmd_options *o, const char *v, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		enum proxy_local_mode mode;
	} modes[] = { { "", PROXY_LOCAL_CLUSTER_CIDR },
		      { "ClusterCIDR", PROXY_LOCAL_CLUSTER_CIDR },
		      { "NodeCIDR", PROXY_LOCAL_NODE_CIDR },
		      { "BridgeInterface", PROXY_LOCAL_BRIDGE_INTERFACE },
		      { "InterfaceNamePrefix", PROXY_LOCAL_INTERFACE_NAME_PREFIX } };
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(v, modes[i].name) == 0) {
			o->cfg.detect_local_mode = modes[i].mode;
			return 0;
		}
	}
	return errf(err, errlen,
		    "invalid detect-local-mode %s: must be ClusterCIDR, NodeCIDR, BridgeInterface "
		    "or InterfaceNamePrefix",
		    v);
}

static int set_ip_family(struct cmd_options *o, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "auto") == 0)
		o->cfg.families = PROXY_FAMILIES_AUTO;
	else if (strcmp(v, "ipv4") == 0 || strcmp(v, "IPv4") == 0)
		o->cfg.families = PROXY_FAMILIES_IPV4;
	else if (strcmp(v, "ipv6") == 0 || strcmp(v, "IPv6") == 0)
		o->cfg.families = PROXY_FAMILIES_IPV6;
	else if (strcmp(v, "dual") == 0)
		o->cfg.families = PROXY_FAMILIES_DUAL;
	else
		return errf(err, errlen, "invalid ip-family %s: must be auto, ipv4, ipv6 or dual",
			    v);
	return 0;
}

static int set_tristate(enum proxy_tristate *t, const char *name, const char *v, char *err,
			size_t errlen)
{
	bool b;

	if (strcmp(v, "auto") == 0) {
		*t = PROXY_AUTO;
		return 0;
	}
	if (parse_bool(v, &b))
		return errf(err, errlen, "invalid %s %s: must be auto, true or false", name, v);
	*t = b ? PROXY_ON : PROXY_OFF;
	return 0;
}

static int set_random_fully(struct cmd_options *o, const char *v, char *err, size_t errlen)
{
	return set_tristate(&o->cfg.random_fully, "iptables-random-fully", v, err, errlen);
}

static int set_nfacct(struct cmd_options *o, const char *v, char *err, size_t errlen)
{
	return set_tristate(&o->cfg.nfacct, "iptables-nfacct", v, err, errlen);
}

static int set_backend(struct cmd_options *o, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "auto") && strcmp(v, "nft") && strcmp(v, "legacy"))
		return errf(err, errlen, "invalid iptables-backend %s: must be auto, nft or legacy",
			    v);
	return proxy_config_set_str(&o->cfg.iptables_backend, v);
}

static int set_service_dispatch(struct cmd_options *o, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "linear") == 0)
		o->cfg.service_dispatch = RULES_DISPATCH_LINEAR;
	else if (strcmp(v, "tree") == 0)
		o->cfg.service_dispatch = RULES_DISPATCH_TREE;
	else if (strcmp(v, "auto") == 0)
		o->cfg.service_dispatch = RULES_DISPATCH_AUTO;
	else
		return errf(err, errlen,
			    "invalid service-dispatch %s: must be linear, tree or auto", v);
	return 0;
}

static int set_feature_gates(struct cmd_options *o, const char *v, char *err, size_t errlen)
{
	struct proxy_strlist items = { 0 };
	char msg[300];
	size_t i;
	int ret;

	ret = proxy_strlist_set_csv(&items, v);
	if (ret)
		goto out;
	for (i = 0; i < items.n; i++) {
		char *eq = strchr(items.v[i], '=');
		bool on;

		if (!eq || parse_bool(eq + 1, &on)) {
			ret = errf(err, errlen,
				   "invalid feature-gates item %s: want Name=true|false",
				   items.v[i]);
			goto out;
		}
		*eq = '\0';
		if (strcmp(items.v[i], "PreferSameTrafficDistribution") == 0) {
			o->cfg.gate_prefer_same_node = on;
		} else {
			snprintf(msg, sizeof(msg),
				 "feature gate %s has no effect on kube-iptables-proxy",
				 items.v[i]);
			ret = proxy_strlist_add(&o->warnings, msg);
			if (ret)
				goto out;
		}
	}
out:
	proxy_strlist_clear(&items);
	return ret;
}

/* Deprecated --healthz-port / --metrics-port: replace the port of the address. */
static int set_port_of(char **addr, const char *v, char *err, size_t errlen)
{
	long long port;
	const char *colon;
	char buf[128];

	if (parse_long(v, 0, 65535, &port))
		return errf(err, errlen, "invalid port %s", v);
	if (port == 0)
		return proxy_config_set_str(addr, "");
	colon = *addr ? strrchr(*addr, ':') : NULL;
	snprintf(buf, sizeof(buf), "%.*s:%lld", colon ? (int)(colon - *addr) : 7,
		 colon ? *addr : "0.0.0.0", port);
	return proxy_config_set_str(addr, buf);
}

static int set_healthz_port(struct cmd_options *o, const char *v, char *err, size_t errlen)
{
	return set_port_of(&o->cfg.healthz_bind_address, v, err, errlen);
}

static int set_metrics_port(struct cmd_options *o, const char *v, char *err, size_t errlen)
{
	return set_port_of(&o->cfg.metrics_bind_address, v, err, errlen);
}

static int set_help(struct cmd_options *o, const char *v, char *err, size_t errlen)
{
	(void)v;
	(void)err;
	(void)errlen;
	o->show_help = true;
	return 0;
}

static int set_version(struct cmd_options *o, const char *v, char *err, size_t errlen)
{
	bool b = true;

	/* upstream accepts --version, --version=true|false|raw */
	if (v && strcmp(v, "raw") != 0 && parse_bool(v, &b))
		return errf(err, errlen, "invalid version %s: must be true, false or raw", v);
	o->show_version = b;
	return 0;
}

/* ---- the table ----------------------------------------------------------- */

#define G_MAIN "Main"
#define G_API  "API server connection"
#define G_NET  "Networking"
#define G_IPT  "iptables"
#define G_CT   "conntrack"
#define G_HM   "Health and metrics"
#define G_LOG  "Logging"
#define G_EXT  "kube-iptables-proxy extensions"
#define G_IGN  "Accepted for compatibility, no effect"

static const struct flag flags[] = {
	/* Main */
	{ "config", 0, T_STR, S_ALWAYS, G_MAIN, NULL,
	  "The path to the KubeProxyConfiguration file (YAML or JSON). Flags other than "
	  "--hostname-override, logging and the run modes are then ignored.",
	  OPT(config_file), NULL, false },
	{ "hostname-override", 0, T_STR, S_ALWAYS, G_MAIN, NULL,
	  "The name of this node, as the Node object and EndpointSlices name it; default: the "
	  "host name.",
	  CFG(hostname_override), NULL, false },
	{ "cleanup", 0, T_BOOL, S_ALWAYS, G_MAIN, "false",
	  "Remove every iptables rule and chain kube-proxy (or this proxy) created, then exit.",
	  OPT(cleanup), NULL, false },
	{ "init-only", 0, T_BOOL, S_ALWAYS, G_MAIN, "false",
	  "Do the privileged node setup (sysctls, conntrack limits), then exit.", OPT(init_only),
	  NULL, false },
	{ "write-config-to", 0, T_STR, S_ALWAYS, G_MAIN, NULL,
	  "Write the effective configuration as a KubeProxyConfiguration to this file, then exit.",
	  OPT(write_config_to), NULL, false },
	{ "proxy-mode", 0, T_STR, S_CONFIG, G_MAIN, "iptables",
	  "Which proxy mode to use: only 'iptables' is implemented; others are rejected.",
	  CFG(proxy_mode), NULL, false },
	{ "feature-gates", 0, T_FUNC, S_CONFIG, G_MAIN, NULL,
	  "Comma-separated Name=true|false. Acted on: PreferSameTrafficDistribution (default "
	  "true); others are accepted with a warning.",
	  0, set_feature_gates, false },
	{ "version", 0, T_FUNC, S_ALWAYS, G_MAIN, NULL,
	  "Print the version and git revision, then exit.", 0, set_version, true },
	{ "help", 'h', T_FUNC, S_ALWAYS, G_MAIN, NULL, "Print this help, then exit.", 0, set_help,
	  true },

	/* API server */
	{ "kubeconfig", 0, T_STR, S_CONFIG, G_API, NULL,
	  "Path to a kubeconfig file with the API server and credentials; default: in-cluster.",
	  CFG(kubeconfig), NULL, false },
	{ "master", 0, T_STR, S_CONFIG, G_API, NULL,
	  "The API server address, overriding the kubeconfig's.", CFG(master), NULL, false },
	{ "kube-api-qps", 0, T_FLOAT, S_CONFIG, G_API, "5",
	  "No effect: the few requests made (a list and a watch per resource, Events) are not "
	  "rate-limited.",
	  CFG(kube_api_qps), NULL, false },
	{ "kube-api-burst", 0, T_INT, S_CONFIG, G_API, "10", "No effect (see --kube-api-qps).",
	  CFG(kube_api_burst), NULL, false },
	{ "config-sync-period", 0, T_DUR, S_CONFIG, G_API, "15m0s",
	  "No effect: there is no informer resync; every sync renders from the whole cache.",
	  CFG(config_sync_period_ms), NULL, false },

	/* Networking */
	{ "bind-address", 0, T_STR, S_CONFIG, G_NET, "0.0.0.0",
	  "This node's primary IP, overriding detection from the Node object (0.0.0.0: detect).",
	  CFG(bind_address), NULL, false },
	{ "bind-address-hard-fail", 0, T_BOOL, S_CONFIG, G_NET, "false",
	  "Exit if a server port (healthz, metrics) cannot be bound.", CFG(bind_address_hard_fail),
	  NULL, false },
	{ "cluster-cidr", 0, T_CSV, S_CONFIG, G_NET, NULL,
	  "The pod CIDR(s) of the cluster, one per family, for --detect-local-mode=ClusterCIDR: "
	  "traffic to a ClusterIP from outside them is masqueraded.",
	  CFG(cluster_cidrs), NULL, false },
	{ "detect-local-mode", 0, T_FUNC, S_CONFIG, G_NET, "ClusterCIDR",
	  "How pod traffic is told apart: ClusterCIDR, NodeCIDR, BridgeInterface or "
	  "InterfaceNamePrefix.",
	  0, set_detect_local_mode, false },
	{ "pod-bridge-interface", 0, T_STR, S_CONFIG, G_NET, NULL,
	  "The bridge pods are attached to, for --detect-local-mode=BridgeInterface.",
	  CFG(pod_bridge_interface), NULL, false },
	{ "pod-interface-name-prefix", 0, T_STR, S_CONFIG, G_NET, NULL,
	  "The interface name prefix of pods, for --detect-local-mode=InterfaceNamePrefix.",
	  CFG(pod_interface_name_prefix), NULL, false },
	{ "nodeport-addresses", 0, T_CSV, S_CONFIG, G_NET, NULL,
	  "CIDRs of the node addresses NodePorts answer on, or 'primary'; default: all local "
	  "addresses.",
	  CFG(nodeport_addresses), NULL, false },
	{ "masquerade-all", 0, T_BOOL, S_CONFIG, G_NET, "false",
	  "Masquerade all traffic sent to ClusterIPs.", CFG(masquerade_all), NULL, false },
	{ "oom-score-adj", 0, T_INT, S_CONFIG, G_NET, "-999",
	  "The oom_score_adj of the process, in [-1000, 1000].", CFG(oom_score_adj), NULL, false },

	/* iptables */
	{ "iptables-masquerade-bit", 0, T_UINT, S_CONFIG, G_IPT, "14",
	  "The bit of the fwmark that marks packets to masquerade, in [0, 31].",
	  CFG(masquerade_bit), NULL, false },
	{ "iptables-localhost-nodeports", 0, T_BOOL, S_CONFIG, G_IPT, "true",
	  "Allow NodePorts on 127.0.0.1 (IPv4; sets route_localnet and adds KUBE-FIREWALL).",
	  CFG(localhost_nodeports), NULL, false },
	{ "iptables-sync-period", 0, T_DUR, S_CONFIG, G_IPT, "30s",
	  "The period of the full resync and of the flush (canary) check.", CFG(sync_period_ms),
	  NULL, false },
	{ "iptables-min-sync-period", 0, T_DUR, S_CONFIG, G_IPT, "1s",
	  "The minimum time between two syncs: changes in that window are batched.",
	  CFG(min_sync_period_ms), NULL, false },

	/* conntrack */
	{ "conntrack-max-per-core", 0, T_I32, S_CONFIG, G_CT, "32768",
	  "Conntrack entries per CPU core (0: leave nf_conntrack_max alone).",
	  CFG(conntrack_max_per_core), NULL, false },
	{ "conntrack-min", 0, T_I32, S_CONFIG, G_CT, "131072",
	  "Minimum nf_conntrack_max, whatever --conntrack-max-per-core gives.", CFG(conntrack_min),
	  NULL, false },
	{ "conntrack-tcp-timeout-established", 0, T_DUR, S_CONFIG, G_CT, "24h0m0s",
	  "nf_conntrack_tcp_timeout_established (0: leave as is).",
	  CFG(conntrack_tcp_established_ms), NULL, false },
	{ "conntrack-tcp-timeout-close-wait", 0, T_DUR, S_CONFIG, G_CT, "1h0m0s",
	  "nf_conntrack_tcp_timeout_close_wait (0: leave as is).", CFG(conntrack_tcp_close_wait_ms),
	  NULL, false },
	{ "conntrack-tcp-be-liberal", 0, T_BOOL, S_CONFIG, G_CT, "false",
	  "Set nf_conntrack_tcp_be_liberal=1 (then no INVALID drop rule is needed).",
	  CFG(conntrack_tcp_be_liberal), NULL, false },
	{ "conntrack-udp-timeout", 0, T_DUR, S_CONFIG, G_CT, "0s",
	  "nf_conntrack_udp_timeout (0: leave as is).", CFG(conntrack_udp_timeout_ms), NULL,
	  false },
	{ "conntrack-udp-timeout-stream", 0, T_DUR, S_CONFIG, G_CT, "0s",
	  "nf_conntrack_udp_timeout_stream (0: leave as is).", CFG(conntrack_udp_stream_timeout_ms),
	  NULL, false },

	/* Health and metrics */
	{ "healthz-bind-address", 0, T_STR, S_CONFIG, G_HM, "0.0.0.0:10256",
	  "ip:port of the /healthz and /livez server (empty: off).", CFG(healthz_bind_address),
	  NULL, false },
	{ "metrics-bind-address", 0, T_STR, S_CONFIG, G_HM, "127.0.0.1:10249",
	  "ip:port of the /metrics, /proxyMode and /rules server (empty: off).",
	  CFG(metrics_bind_address), NULL, false },
	{ "healthz-port", 0, T_FUNC, S_CONFIG, G_HM, NULL,
	  "Deprecated: the port of --healthz-bind-address (0: off).", 0, set_healthz_port, false },
	{ "metrics-port", 0, T_FUNC, S_CONFIG, G_HM, NULL,
	  "Deprecated: the port of --metrics-bind-address (0: off).", 0, set_metrics_port, false },

	/* Logging */
	{ "v", 'v', T_INT, S_ALWAYS, G_LOG, "0", "Log verbosity (2 is kube-proxy's usual).",
	  OPT(verbosity), NULL, false },

	/* Extensions */
	{ "dump-rules", 0, T_BOOL, S_ALWAYS, G_EXT, "false",
	  "Print the iptables-restore input a full sync would write for the objects of "
	  "--from-file or of the API server, and exit without touching the kernel.",
	  OPT(dump_rules), NULL, false },
	{ "from-file", 0, T_STR, S_ALWAYS, G_EXT, NULL,
	  "With --dump-rules: read Services, EndpointSlices and Nodes from this JSON/YAML file "
	  "('-': stdin), as 'kubectl get svc,endpointslices,nodes -A -o json|yaml' prints them.",
	  OPT(from_file), NULL, false },
	{ "ip-family", 0, T_FUNC, S_ALWAYS, G_EXT, "auto",
	  "Families to program or dump: auto, ipv4, ipv6 or dual.", 0, set_ip_family, false },
	{ "iptables-random-fully", 0, T_FUNC, S_ALWAYS, G_EXT, "auto",
	  "MASQUERADE --random-fully: auto (when iptables supports it), true or false.", 0,
	  set_random_fully, false },
	{ "iptables-nfacct", 0, T_FUNC, S_ALWAYS, G_EXT, "auto",
	  "nfacct counter matches: auto (when the kernel has nfacct), true or false.", 0,
	  set_nfacct, false },
	{ "iptables-backend", 0, T_FUNC, S_ALWAYS, G_EXT, "auto",
	  "iptables backend: auto (as upstream's iptables-wrapper decides), nft or legacy.", 0,
	  set_backend, false },
	{ "service-dispatch", 0, T_FUNC, S_ALWAYS, G_EXT, "auto",
	  "How KUBE-SERVICES reaches the service IP rules: linear (upstream's layout, one rule "
	  "per service port and IP), tree (KUBE-CIP chains split by address prefix: a new "
	  "connection walks about 2*sqrt(N) rules instead of N), or auto (linear up to 250 "
	  "service ports of a family, tree above).",
	  0, set_service_dispatch, false },
	{ "service-cluster-ip-range", 0, T_CSV, S_ALWAYS, G_EXT, NULL,
	  "The service CIDR(s), one per family, as kube-apiserver's flag of that name: the roots "
	  "of the tree layout. Default: the prefix common to the ClusterIPs seen.",
	  CFG(service_cidrs), NULL, false },
	{ "man", 0, T_BOOL, S_ALWAYS, G_EXT, "false", "Print the man page (roff), then exit.",
	  OPT(show_man), NULL, false },

	/* Accepted, no effect */
	{ "kube-api-content-type", 0, T_STR, S_IGNORED, G_IGN, NULL,
	  "Ignored: the API is always read as JSON.", 0, NULL, false },
	{ "profiling", 0, T_BOOL, S_IGNORED, G_IGN, NULL, "Ignored: there is no pprof in C.", 0,
	  NULL, false },
	{ "show-hidden-metrics-for-version", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored.", 0, NULL,
	  false },
	{ "proxy-port-range", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored (a no-op upstream too).",
	  0, NULL, false },
	{ "ipvs-exclude-cidrs", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored (ipvs mode).", 0, NULL,
	  false },
	{ "ipvs-min-sync-period", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored (ipvs mode).", 0, NULL,
	  false },
	{ "ipvs-scheduler", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored (ipvs mode).", 0, NULL,
	  false },
	{ "ipvs-strict-arp", 0, T_BOOL, S_IGNORED, G_IGN, NULL, "Ignored (ipvs mode).", 0, NULL,
	  false },
	{ "ipvs-sync-period", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored (ipvs mode).", 0, NULL,
	  false },
	{ "ipvs-tcp-timeout", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored (ipvs mode).", 0, NULL,
	  false },
	{ "ipvs-tcpfin-timeout", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored (ipvs mode).", 0, NULL,
	  false },
	{ "ipvs-udp-timeout", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored (ipvs mode).", 0, NULL,
	  false },
	{ "vmodule", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored (klog per-file verbosity).", 0,
	  NULL, false },
	{ "logging-format", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored: logs are always klog text.",
	  0, NULL, false },
	{ "log-flush-frequency", 0, T_STR, S_IGNORED, G_IGN, NULL,
	  "Ignored: every line is written at once.", 0, NULL, false },
	{ "log-text-split-stream", 0, T_BOOL, S_IGNORED, G_IGN, NULL, "Ignored.", 0, NULL, false },
	{ "log-text-info-buffer-size", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored.", 0, NULL,
	  false },
	{ "log-json-split-stream", 0, T_BOOL, S_IGNORED, G_IGN, NULL, "Ignored.", 0, NULL, false },
	{ "log-json-info-buffer-size", 0, T_STR, S_IGNORED, G_IGN, NULL, "Ignored.", 0, NULL,
	  false },
};

#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

static const struct flag *find_flag(const char *name, size_t len, char shorthand)
{
	size_t i;

	for (i = 0; i < N_FLAGS; i++) {
		if (shorthand ? flags[i].shorthand == shorthand
			      : strlen(flags[i].name) == len &&
					strncmp(flags[i].name, name, len) == 0)
			return &flags[i];
	}
	return NULL;
}

static bool takes_no_value(const struct flag *f)
{
	return f->type == T_BOOL || f->bool_value;
}

int cmd_options_init(struct cmd_options *o)
{
	memset(o, 0, sizeof(*o));
	return proxy_config_init(&o->cfg);
}

void cmd_options_cleanup(struct cmd_options *o)
{
	proxy_config_cleanup(&o->cfg);
	free(o->config_file);
	free(o->write_config_to);
	free(o->from_file);
	proxy_strlist_clear(&o->warnings);
	memset(o, 0, sizeof(*o));
}

static int apply_flag(struct cmd_options *o, const struct flag *f, const char *v, char *err,
		      size_t errlen)
{
	char *base = (char *)o;
	long long n;
	bool b;
	int ret;

	switch (f->type) {
	case T_BOOL:
		if (parse_bool(v ? v : "true", &b))
			return errf(err, errlen,
				    "invalid argument \"%s\" for --%s: want true or false", v,
				    f->name);
		*(bool *)(base + f->off) = b;
		return 0;
	case T_STR:
		return proxy_config_set_str((char **)(base + f->off), v);
	case T_INT:
	case T_I32:
		if (parse_long(v, INT32_MIN, INT32_MAX, &n))
			return errf(err, errlen,
				    "invalid argument \"%s\" for --%s: want an integer", v,
				    f->name);
		if (f->type == T_INT)
			*(int *)(base + f->off) = (int)n;
		else
			*(int32_t *)(base + f->off) = (int32_t)n;
		return 0;
	case T_UINT:
		if (parse_long(v, 0, UINT32_MAX, &n))
			return errf(err, errlen,
				    "invalid argument \"%s\" for --%s: want a non-negative integer",
				    v, f->name);
		*(unsigned int *)(base + f->off) = (unsigned int)n;
		return 0;
	case T_FLOAT: {
		char *end;
		double d = strtod(v, &end);

		if (end == v || *end)
			return errf(err, errlen, "invalid argument \"%s\" for --%s: want a number",
				    v, f->name);
		*(double *)(base + f->off) = d;
		return 0;
	}
	case T_DUR:
		if (cmd_parse_duration(v, &n))
			return errf(
				err, errlen,
				"invalid argument \"%s\" for --%s: want a duration like 30s or 1m0s",
				v, f->name);
		*(int64_t *)(base + f->off) = n;
		return 0;
	case T_CSV:
		ret = proxy_strlist_set_csv((struct proxy_strlist *)(base + f->off), v);
		if (ret == -EINVAL)
			return errf(err, errlen, "invalid argument for --%s: item too long",
				    f->name);
		return ret;
	case T_FUNC:
		return f->set(o, v, err, errlen);
	}
	return -EINVAL;
}

struct parsed {
	const struct flag *flag;
	const char *value; /* NULL for a bare boolean */
	char *owned;	   /* value storage when split from "--x=v" */
};

static int split_args(int argc, char **argv, struct parsed *out, size_t *n_out, char *err,
		      size_t errlen)
{
	size_t n = 0;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *name, *eq;
		const struct flag *f;
		size_t len;

		if (a[0] != '-' || !a[1])
			return errf(err, errlen, "unexpected argument \"%s\" (flags only)", a);
		if (a[1] == '-') {
			name = a + 2;
			eq = strchr(name, '=');
			len = eq ? (size_t)(eq - name) : strlen(name);
			f = find_flag(name, len, 0);
			if (!f)
				return errf(err, errlen, "unknown flag: --%.*s", (int)len, name);
		} else {
			/* pflag shorthands: -v 2, -v=2, -v2, -h */
			f = find_flag(NULL, 0, a[1]);
			if (!f)
				return errf(err, errlen, "unknown shorthand flag: '%c' in %s", a[1],
					    a);
			eq = a[2] ? (a[2] == '=' ? a + 2 : a + 1) : NULL;
		}
		out[n].flag = f;
		out[n].owned = NULL;
		if (eq) {
			out[n].value = eq + 1;
		} else if (takes_no_value(f)) {
			out[n].value = NULL;
		} else {
			if (i + 1 >= argc)
				return errf(err, errlen, "flag needs an argument: --%s", f->name);
			out[n].value = argv[++i];
		}
		n++;
	}
	*n_out = n;
	return 0;
}

static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0, r;
	char *p, *q;

	if (!f)
		return errf(err, errlen, "reading config %s: %s", path, strerror(errno));
	p = malloc(cap);
	if (!p) {
		fclose(f);
		return -ENOMEM;
	}
	while ((r = fread(p + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n - 1 == 0) {
			if (cap > (64u << 20)) {
				free(p);
				fclose(f);
				return errf(err, errlen, "reading config %s: larger than 64 MiB",
					    path);
			}
			q = realloc(p, cap * 2);
			if (!q) {
				free(p);
				fclose(f);
				return -ENOMEM;
			}
			p = q;
			cap *= 2;
		}
	}
	if (ferror(f)) {
		free(p);
		fclose(f);
		return errf(err, errlen, "reading config %s: read error", path);
	}
	fclose(f);
	p[n] = '\0';
	*buf = p;
	*len = n;
	return 0;
}

int cmd_options_parse(struct cmd_options *o, int argc, char **argv, char *err, size_t errlen)
{
	struct parsed *args;
	size_t i, n = 0;
	bool with_config = false;
	char msg[200];
	int ret;

	args = calloc((size_t)argc + 1, sizeof(*args));
	if (!args)
		return -ENOMEM;
	ret = split_args(argc, argv, args, &n, err, errlen);
	if (ret)
		goto out;
	for (i = 0; i < n; i++)
		if (strcmp(args[i].flag->name, "config") == 0 && args[i].value && args[i].value[0])
			with_config = true;

	/* Run modes, logging and --config first. */
	for (i = 0; i < n; i++) {
		const struct flag *f = args[i].flag;

		if (f->scope == S_IGNORED) {
			snprintf(msg, sizeof(msg), "flag --%s has no effect on kube-iptables-proxy",
				 f->name);
			ret = proxy_strlist_add(&o->warnings, msg);
		} else if (f->scope == S_ALWAYS) {
			ret = apply_flag(o, f, args[i].value, err, errlen);
		}
		if (ret)
			goto out;
	}
	if (with_config) {
		char *buf = NULL;
		size_t len = 0;

		ret = read_file(o->config_file, &buf, &len, err, errlen);
		if (ret)
			goto out;
		ret = cmd_config_load(o, buf, len, err, errlen);
		free(buf);
		if (ret)
			goto out;
		/* --hostname-override beats the file, as upstream */
		for (i = 0; i < n; i++)
			if (strcmp(args[i].flag->name, "hostname-override") == 0)
				ret = apply_flag(o, args[i].flag, args[i].value, err, errlen);
		for (i = 0; !ret && i < n; i++) {
			if (args[i].flag->scope != S_CONFIG)
				continue;
			snprintf(msg, sizeof(msg), "flag --%s is ignored: --config is set",
				 args[i].flag->name);
			ret = proxy_strlist_add(&o->warnings, msg);
		}
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (args[i].flag->scope != S_CONFIG)
			continue;
		ret = apply_flag(o, args[i].flag, args[i].value, err, errlen);
		if (ret)
			goto out;
	}
out:
	free(args);
	return ret;
}

/* ---- --help and the man page --------------------------------------------- */

static const char *const groups[] = {
	G_MAIN, G_API, G_NET, G_IPT, G_CT, G_HM, G_LOG, G_EXT, G_IGN
};

static const char *type_word(const struct flag *f)
{
	switch (f->type) {
	case T_BOOL:
		return "";
	case T_DUR:
		return " duration";
	case T_INT:
	case T_I32:
	case T_UINT:
		return " int";
	case T_FLOAT:
		return " float";
	case T_CSV:
		return " strings";
	case T_FUNC:
		return f->bool_value ? "" : " string";
	case T_STR:
	default:
		return " string";
	}
}

/* "  -v, --v int" / "      --name type": the flag column of --help */
static void flag_head(const struct flag *f, char *head, size_t len)
{
	if (f->shorthand)
		snprintf(head, len, "  -%c, --%s%s", f->shorthand, f->name, type_word(f));
	else
		snprintf(head, len, "      --%s%s", f->name, type_word(f));
}

void cmd_options_usage(FILE *out, const char *prog)
{
	char head[96];
	size_t g, i;
	int width = 0;

	/* one column for every help text, as wide as the widest flag (as pflag) */
	for (i = 0; i < N_FLAGS; i++) {
		flag_head(&flags[i], head, sizeof(head));
		if ((int)strlen(head) > width)
			width = (int)strlen(head);
	}

	fprintf(out,
		"kube-iptables-proxy: a drop-in replacement for kube-proxy in iptables mode.\n"
		"It watches Services, EndpointSlices and its own Node and keeps this node's\n"
		"iptables rules equal to what kube-proxy would write.\n\n"
		"Usage:\n  %s [flags]\n",
		prog);
	for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		fprintf(out, "\n%s flags:\n", groups[g]);
		for (i = 0; i < N_FLAGS; i++) {
			const struct flag *f = &flags[i];

			if (strcmp(f->group, groups[g]) != 0)
				continue;
			flag_head(f, head, sizeof(head));
			fprintf(out, "%-*s   %s", width, head, f->help);
			if (f->def)
				fprintf(out, " (default %s)", f->def);
			fputc('\n', out);
		}
	}
}

static void roff_escape(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '-' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
}

void cmd_options_man(FILE *out)
{
	size_t g, i;

	fputs(".TH KUBE-IPTABLES-PROXY 8 \"\" \"kube-iptables-proxy " KIP_VERSION "\"\n"
	      ".SH NAME\nkube\\-iptables\\-proxy \\- a drop\\-in replacement for kube\\-proxy "
	      "(iptables mode)\n"
	      ".SH SYNOPSIS\n.B kube\\-iptables\\-proxy\n[\\fIflags\\fR]\n"
	      ".SH DESCRIPTION\nWatches Services, EndpointSlices and its own Node from the "
	      "Kubernetes API server and keeps the node's iptables rules equal to what kube\\-proxy "
	      "in iptables mode writes for the same objects: same chains, same rules.\n",
	      out);
	for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		fputs(".SH ", out);
		roff_escape(out, groups[g]);
		fputs(" FLAGS\n", out);
		for (i = 0; i < N_FLAGS; i++) {
			const struct flag *f = &flags[i];

			if (strcmp(f->group, groups[g]) != 0)
				continue;
			fputs(".TP\n.B ", out);
			if (f->shorthand)
				fprintf(out, "\\-%c, ", f->shorthand);
			fputs("\\-\\-", out);
			roff_escape(out, f->name);
			fputs(type_word(f), out);
			fputc('\n', out);
			roff_escape(out, f->help);
			if (f->def) {
				fputs(" (default ", out);
				roff_escape(out, f->def);
				fputc(')', out);
			}
			fputc('\n', out);
		}
	}
	fputs(".SH EXIT STATUS\n0: success; 1: a runtime failure (e.g. the rules could not be read "
	      "or written); 2: bad flags or configuration.\n"
	      ".SH SIGNALS\nSIGTERM and SIGINT stop the daemon, which exits 0 and leaves the "
	      "rules in place (only \\-\\-cleanup removes them all).\n"
	      ".SH ENVIRONMENT\n.TP\n.B KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT\n"
	      "The API server (https) when neither \\-\\-kubeconfig nor \\-\\-master is "
	      "given (in a pod).\n.TP\n.B PATH\nWhere iptables\\-nft\\-restore, "
	      "iptables\\-legacy\\-save, ip6tables\\-... are found.\n"
	      ".SH FILES\n.TP\n.B /var/run/secrets/kubernetes.io/serviceaccount/token, ca.crt\n"
	      "The in\\-cluster credentials; the token is re\\-read at most every 60 s and "
	      "after a 401, so rotated tokens work.\n.TP\n.B /run/xtables.lock\n"
	      "The lock iptables\\-legacy\\-restore \\-w takes, shared with kubelet and other "
	      "iptables users; in a container, mount the host's.\n"
	      ".SH SEE ALSO\nkube\\-proxy(8), iptables\\-restore(8), iptables\\-save(8)\n",
	      out);
}

const char *const *cmd_options_flag_names(void)
{
	static const char *names[N_FLAGS + 1];
	size_t i;

	for (i = 0; i < N_FLAGS; i++)
		names[i] = flags[i].name;
	names[N_FLAGS] = NULL;
	return names;
}
