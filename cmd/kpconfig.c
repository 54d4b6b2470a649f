/*
 * cmd/kpconfig.c - KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1).
 *
 * Reads the file kubeadm ships in the kube-proxy ConfigMap (config.conf) and
 * writes the effective configuration back (--write-config-to).
 */
#include "cmd/options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "informer/yaml.h"

#define API_VERSION "kubeproxy.config.k8s.io/v1alpha1"
#define KIND	    "KubeProxyConfiguration"

enum ctype {
	C_STR,
	C_BOOL,
	C_INT,
	C_I32,
	C_UINT,
	C_FLOAT,
	C_DUR,
	C_CSV_STRING, /* clusterCIDR: one comma-separated string */
	C_LIST,	      /* a list of strings */
	C_OBJECT,     /* a nested object: handled by its own table */
	C_MODE,
	C_LOCAL_MODE,
	C_GATES,
	C_IGNORED,
};

struct field {
	const char *key;
	enum ctype type;
	size_t off; /* in struct proxy_config */
	const struct field *sub;
};

#define F(field) offsetof(struct proxy_config, field)

static const struct field client_fields[] = {
	{ "kubeconfig", C_STR, F(kubeconfig), NULL }, { "acceptContentTypes", C_IGNORED, 0, NULL },
	{ "contentType", C_IGNORED, 0, NULL },	      { "qps", C_FLOAT, F(kube_api_qps), NULL },
	{ "burst", C_INT, F(kube_api_burst), NULL },  { NULL, 0, 0, NULL },
};

static const struct field iptables_fields[] = {
	{ "masqueradeBit", C_UINT, F(masquerade_bit), NULL },
	{ "masqueradeAll", C_BOOL, F(masquerade_all), NULL },
	{ "localhostNodePorts", C_BOOL, F(localhost_nodeports), NULL },
	{ "syncPeriod", C_DUR, F(sync_period_ms), NULL },
	{ "minSyncPeriod", C_DUR, F(min_sync_period_ms), NULL },
	{ NULL, 0, 0, NULL },
};

static const struct field conntrack_fields[] = {
	{ "maxPerCore", C_I32, F(conntrack_max_per_core), NULL },
	{ "min", C_I32, F(conntrack_min), NULL },
	{ "tcpEstablishedTimeout", C_DUR, F(conntrack_tcp_established_ms), NULL },
	{ "tcpCloseWaitTimeout", C_DUR, F(conntrack_tcp_close_wait_ms), NULL },
	{ "tcpBeLiberal", C_BOOL, F(conntrack_tcp_be_liberal), NULL },
	{ "udpTimeout", C_DUR, F(conntrack_udp_timeout_ms), NULL },
	{ "udpStreamTimeout", C_DUR, F(conntrack_udp_stream_timeout_ms), NULL },
	{ NULL, 0, 0, NULL },
};

static const struct field detect_local_fields[] = {
	{ "clusterCIDRs", C_LIST, F(cluster_cidrs), NULL },
	{ "bridgeInterface", C_STR, F(pod_bridge_interface), NULL },
	{ "interfaceNamePrefix", C_STR, F(pod_interface_name_prefix), NULL },
	{ NULL, 0, 0, NULL },
};

static const struct field logging_fields[] = {
	{ "verbosity", C_IGNORED, 0, NULL }, /* handled in the caller: it is not in proxy_config */
	{ "format", C_IGNORED, 0, NULL },
	{ "flushFrequency", C_IGNORED, 0, NULL },
	{ "vmodule", C_IGNORED, 0, NULL },
	{ "options", C_IGNORED, 0, NULL },
	{ NULL, 0, 0, NULL },
};

static const struct field top_fields[] = {
	{ "apiVersion", C_IGNORED, 0, NULL },
	{ "kind", C_IGNORED, 0, NULL },
	{ "bindAddress", C_STR, F(bind_address), NULL },
	{ "healthzBindAddress", C_STR, F(healthz_bind_address), NULL },
	{ "metricsBindAddress", C_STR, F(metrics_bind_address), NULL },
	{ "bindAddressHardFail", C_BOOL, F(bind_address_hard_fail), NULL },
	{ "enableProfiling", C_IGNORED, 0, NULL },
	{ "showHiddenMetricsForVersion", C_IGNORED, 0, NULL },
	{ "clientConnection", C_OBJECT, 0, client_fields },
	{ "hostnameOverride", C_STR, F(hostname_override), NULL },
	{ "mode", C_MODE, F(proxy_mode), NULL },
	{ "featureGates", C_GATES, 0, NULL },
	{ "configSyncPeriod", C_DUR, F(config_sync_period_ms), NULL },
	{ "portRange", C_IGNORED, 0, NULL },
	{ "iptables", C_OBJECT, 0, iptables_fields },
	{ "ipvs", C_IGNORED, 0, NULL },
	{ "nftables", C_IGNORED, 0, NULL },
	{ "winkernel", C_IGNORED, 0, NULL },
	{ "windowsRunAsService", C_IGNORED, 0, NULL },
	{ "conntrack", C_OBJECT, 0, conntrack_fields },
	{ "detectLocalMode", C_LOCAL_MODE, 0, NULL },
	{ "detectLocal", C_OBJECT, 0, detect_local_fields },
	{ "clusterCIDR", C_CSV_STRING, F(cluster_cidrs), NULL },
	{ "nodePortAddresses", C_LIST, F(nodeport_addresses), NULL },
	{ "oomScoreAdj", C_INT, F(oom_score_adj), NULL },
	{ "logging", C_OBJECT, 0, logging_fields },
	{ NULL, 0, 0, NULL },
};

static int cerr(char *err, size_t errlen, const char *fmt, ...) PROXY_PRINTF(3, 4);

static int cerr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int warn(struct cmd_options *o, const char *path, const char *key)
{
	char msg[256];

	snprintf(msg, sizeof(msg),
		 "config: unknown field %s%s (ignored, as upstream's lenient "
		 "decoding does)",
		 path, key);
	return proxy_strlist_add(&o->warnings, msg);
}

static const char *type_name(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "a list";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
	default:
		return "null";
	}
}

static int set_gates(struct cmd_options *o, json_t *v, char *err, size_t errlen)
{
	const char *k;
	json_t *x;
	char msg[256];
	int ret;

	if (!json_is_object(v))
		return cerr(err, errlen, "config: featureGates: want an object, got %s",
			    type_name(v));
	json_object_foreach (v, k, x) {
		if (!json_is_boolean(x))
			return cerr(err, errlen, "config: featureGates.%s: want a boolean", k);
		if (strcmp(k, "PreferSameTrafficDistribution") == 0) {
			o->cfg.gate_prefer_same_node = json_is_true(x);
			continue;
		}
		snprintf(msg, sizeof(msg), "feature gate %s has no effect on kube-iptables-proxy",
			 k);
		ret = proxy_strlist_add(&o->warnings, msg);
		if (ret)
			return ret;
	}
	return 0;
}

static int set_local_mode(struct cmd_options *o, json_t *v, char *err, size_t errlen)
{
	const char *s = json_string_value(v);

	if (!s)
		return cerr(err, errlen, "config: detectLocalMode: want a string, got %s",
			    type_name(v));
	if (!*s || strcmp(s, "ClusterCIDR") == 0)
		o->cfg.detect_local_mode = PROXY_LOCAL_CLUSTER_CIDR;
	else if (strcmp(s, "NodeCIDR") == 0)
		o->cfg.detect_local_mode = PROXY_LOCAL_NODE_CIDR;
	else if (strcmp(s, "BridgeInterface") == 0)
		o->cfg.detect_local_mode = PROXY_LOCAL_BRIDGE_INTERFACE;
	else if (strcmp(s, "InterfaceNamePrefix") == 0)
		o->cfg.detect_local_mode = PROXY_LOCAL_INTERFACE_NAME_PREFIX;
	else
		return cerr(err, errlen, "config: detectLocalMode %s: unknown mode", s);
	return 0;
}

static int apply_fields(struct cmd_options *o, const struct field *table, json_t *obj,
			const char *path, char *err, size_t errlen);

static int apply_field(struct cmd_options *o, const struct field *f, json_t *v, const char *path,
		       char *err, size_t errlen)
{
	char *base = (char *)&o->cfg;
	long long ms;
	size_t i;
	int ret;

	if (f->type == C_IGNORED || json_is_null(v))
		return 0; /* null: keep the default, as a nil pointer field does */
	switch (f->type) {
	case C_STR:
	case C_MODE:
		if (!json_is_string(v))
			break;
		if (f->type == C_MODE && json_string_value(v)[0] &&
		    strcmp(json_string_value(v), "iptables") != 0)
			return cerr(err, errlen,
				    "config: mode %s: not supported: kube-iptables-proxy only "
				    "implements the iptables mode",
				    json_string_value(v));
		return proxy_config_set_str((char **)(base + f->off), json_string_value(v));
	case C_BOOL:
		if (!json_is_boolean(v))
			break;
		*(bool *)(base + f->off) = json_is_true(v);
		return 0;
	case C_INT:
	case C_I32:
		if (!json_is_integer(v))
			break;
		if (f->type == C_INT)
			*(int *)(base + f->off) = (int)json_integer_value(v);
		else
			*(int32_t *)(base + f->off) = (int32_t)json_integer_value(v);
		return 0;
	case C_UINT:
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			break;
		*(unsigned int *)(base + f->off) = (unsigned int)json_integer_value(v);
		return 0;
	case C_FLOAT:
		if (!json_is_number(v))
			break;
		*(double *)(base + f->off) = json_number_value(v);
		return 0;
	case C_DUR:
		if (!json_is_string(v) || cmd_parse_duration(json_string_value(v), &ms))
			return cerr(err, errlen, "config: %s%s: want a duration like \"30s\"", path,
				    f->key);
		*(int64_t *)(base + f->off) = ms;
		return 0;
	case C_CSV_STRING:
		if (!json_is_string(v))
			break;
		return proxy_strlist_set_csv((struct proxy_strlist *)(base + f->off),
					     json_string_value(v));
	case C_LIST: {
		struct proxy_strlist *l = (struct proxy_strlist *)(base + f->off);

		if (!json_is_array(v))
			break;
		proxy_strlist_clear(l);
		for (i = 0; i < json_array_size(v); i++) {
			const char *s = json_string_value(json_array_get(v, i));

			if (!s)
				return cerr(err, errlen, "config: %s%s[%zu]: want a string", path,
					    f->key, i);
			ret = proxy_strlist_add(l, s);
			if (ret)
				return ret;
		}
		return 0;
	}
	case C_OBJECT: {
		char sub[128];

		if (!json_is_object(v))
			break;
		snprintf(sub, sizeof(sub), "%s%s.", path, f->key);
		return apply_fields(o, f->sub, v, sub, err, errlen);
	}
	case C_LOCAL_MODE:
		return set_local_mode(o, v, err, errlen);
	case C_GATES:
		return set_gates(o, v, err, errlen);
	case C_IGNORED:
		return 0;
	}
	return cerr(err, errlen, "config: %s%s: unexpected %s", path, f->key, type_name(v));
}

static int apply_fields(struct cmd_options *o, const struct field *table, json_t *obj,
			const char *path, char *err, size_t errlen)
{
	const struct field *f;
	const char *key;
	json_t *v;
	int ret;

	json_object_foreach (obj, key, v) {
		for (f = table; f->key; f++)
			if (strcmp(f->key, key) == 0)
				break;
		ret = f->key ? apply_field(o, f, v, path, err, errlen) : warn(o, path, key);
		if (ret)
			return ret;
	}
	return 0;
}

static json_t *parse_doc(const char *buf, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *docs, *doc;
	size_t i = 0;
	char yerr[200];

	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
		i++;
	if (i < len && buf[i] == '{') {
		doc = json_loadb(buf, len, 0, &jerr);
		if (!doc)
			cerr(err, errlen, "config: invalid JSON at line %d column %d: %s",
			     jerr.line, jerr.column, jerr.text);
		return doc;
	}
	if (informer_yaml_load(buf, len, &docs, yerr, sizeof(yerr))) {
		cerr(err, errlen, "config: invalid YAML: %s", yerr);
		return NULL;
	}
	doc = json_incref(json_array_get(docs, 0));
	json_decref(docs);
	if (!doc)
		cerr(err, errlen, "config: the file is empty");
	return doc;
}

/* upstream proxyutil.AppendPortIfNeeded: "ip" -> "ip:port", "[v6]" kept bracketed */
static int append_port(char **addr, int port)
{
	const char *a = *addr;
	bool has_port;
	char buf[128];

	if (a[0] == '[')
		has_port = strstr(a, "]:") != NULL;
	else
		has_port = strchr(a, ':') && strchr(a, ':') == strrchr(a, ':');
	if (has_port)
		return 0;
	if (a[0] != '[' && strchr(a, ':'))
		snprintf(buf, sizeof(buf), "[%s]:%d", a, port); /* a bare IPv6 address */
	else
		snprintf(buf, sizeof(buf), "%s:%d", a, port);
	return proxy_config_set_str(addr, buf);
}

/* upstream SetDefaults_KubeProxyConfiguration: a zero value in the file means
 * "the default" (kubeadm writes syncPeriod: 0s, healthzBindAddress: "", ...) */
static int apply_defaults(struct proxy_config *c)
{
	bool v6 = c->bind_address && strchr(c->bind_address, ':');
	int ret = 0;

	if (!c->bind_address || !c->bind_address[0])
		ret = proxy_config_set_str(&c->bind_address, "0.0.0.0");
	if (!ret && (!c->healthz_bind_address || !c->healthz_bind_address[0]))
		ret = proxy_config_set_str(&c->healthz_bind_address,
					   v6 ? "[::]:10256" : "0.0.0.0:10256");
	else if (!ret)
		ret = append_port(&c->healthz_bind_address, 10256);
	if (!ret && (!c->metrics_bind_address || !c->metrics_bind_address[0]))
		ret = proxy_config_set_str(&c->metrics_bind_address,
					   v6 ? "[::1]:10249" : "127.0.0.1:10249");
	else if (!ret)
		ret = append_port(&c->metrics_bind_address, 10249);
	if (!c->sync_period_ms)
		c->sync_period_ms = 30 * 1000;
	if (!c->min_sync_period_ms)
		c->min_sync_period_ms = 1000;
	if (!c->config_sync_period_ms)
		c->config_sync_period_ms = 15 * 60 * 1000;
	if (c->kube_api_qps == 0.0)
		c->kube_api_qps = 5;
	if (!c->kube_api_burst)
		c->kube_api_burst = 10;
	return ret;
}

int cmd_config_load(struct cmd_options *o, const char *buf, size_t len, char *err, size_t errlen)
{
	json_t *doc, *v;
	const char *api, *kind;
	int ret;

	doc = parse_doc(buf, len, err, errlen);
	if (!doc)
		return -EINVAL;
	if (!json_is_object(doc)) {
		ret = cerr(err, errlen, "config: want a %s object", KIND);
		goto out;
	}
	api = json_string_value(json_object_get(doc, "apiVersion"));
	kind = json_string_value(json_object_get(doc, "kind"));
	if (!kind || strcmp(kind, KIND) != 0 || !api || strcmp(api, API_VERSION) != 0) {
		ret = cerr(err, errlen, "config: want apiVersion %s and kind %s, got %s %s",
			   API_VERSION, KIND, api ? api : "(none)", kind ? kind : "(none)");
		goto out;
	}
	ret = apply_fields(o, top_fields, doc, "", err, errlen);
	if (!ret)
		ret = apply_defaults(&o->cfg);
	if (ret)
		goto out;
	/* -v on the command line wins over logging.verbosity */
	v = json_object_get(json_object_get(doc, "logging"), "verbosity");
	if (json_is_integer(v) && !o->verbosity)
		o->verbosity = (int)json_integer_value(v);
out:
	json_decref(doc);
	return ret;
}

void cmd_format_duration(long long ms, char *buf, size_t len)
{
	long long h, m;
	double sec;

	if (ms == 0) {
		snprintf(buf, len, "0s");
		return;
	}
	if (ms > -1000 && ms < 1000) {
		snprintf(buf, len, "%lldms", ms);
		return;
	}
	h = ms / 3600000;
	m = (ms / 60000) % 60;
	sec = (double)(ms % 60000) / 1000.0;
	if (h)
		snprintf(buf, len, "%lldh%lldm%gs", h, m, sec);
	else if (m)
		snprintf(buf, len, "%lldm%gs", m, sec);
	else
		snprintf(buf, len, "%gs", sec);
}

static json_t *dur(long long ms)
{
	char buf[64];

	cmd_format_duration(ms, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *strlist(const struct proxy_strlist *l)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

static json_t *str_or_empty(const char *s)
{
	return json_string(s ? s : "");
}

int cmd_config_json(const struct proxy_config *c, char **out)
{
	static const char *const modes[] = { "ClusterCIDR", "NodeCIDR", "BridgeInterface",
					     "InterfaceNamePrefix" };
	json_t *doc;
	char *cidrs = NULL;
	size_t i, len = 0;

	for (i = 0; i < c->cluster_cidrs.n; i++)
		len += strlen(c->cluster_cidrs.v[i]) + 1;
	cidrs = calloc(1, len + 1);
	if (!cidrs)
		return -ENOMEM;
	for (i = 0; i < c->cluster_cidrs.n; i++) {
		if (i)
			strcat(cidrs, ",");
		strcat(cidrs, c->cluster_cidrs.v[i]);
	}
	doc = json_pack("{s:s, s:s, s:o, s:o, s:o, s:b, s:{s:o, s:f, s:i}, s:o, s:s, s:{s:b}, s:o, "
			"s:{s:i, s:b, s:b, s:o, s:o}, s:{s:i, s:i, s:o, s:o, s:b, s:o, s:o}, s:s, "
			"s:{s:o, s:o, s:o}, s:s, s:o, s:i, s:{s:i}}",
			"apiVersion", API_VERSION, "kind", KIND, "bindAddress",
			str_or_empty(c->bind_address), "healthzBindAddress",
			str_or_empty(c->healthz_bind_address), "metricsBindAddress",
			str_or_empty(c->metrics_bind_address), "bindAddressHardFail",
			c->bind_address_hard_fail, "clientConnection", "kubeconfig",
			str_or_empty(c->kubeconfig), "qps", c->kube_api_qps, "burst",
			c->kube_api_burst, "hostnameOverride", str_or_empty(c->hostname_override),
			"mode", c->proxy_mode ? c->proxy_mode : "iptables", "featureGates",
			"PreferSameTrafficDistribution", c->gate_prefer_same_node,
			"configSyncPeriod", dur(c->config_sync_period_ms), "iptables",
			"masqueradeBit", (int)c->masquerade_bit, "masqueradeAll", c->masquerade_all,
			"localhostNodePorts", c->localhost_nodeports, "syncPeriod",
			dur(c->sync_period_ms), "minSyncPeriod", dur(c->min_sync_period_ms),
			"conntrack", "maxPerCore", (int)c->conntrack_max_per_core, "min",
			(int)c->conntrack_min, "tcpEstablishedTimeout",
			dur(c->conntrack_tcp_established_ms), "tcpCloseWaitTimeout",
			dur(c->conntrack_tcp_close_wait_ms), "tcpBeLiberal",
			c->conntrack_tcp_be_liberal, "udpTimeout", dur(c->conntrack_udp_timeout_ms),
			"udpStreamTimeout", dur(c->conntrack_udp_stream_timeout_ms),
			"detectLocalMode", modes[c->detect_local_mode], "detectLocal",
			"clusterCIDRs", strlist(&c->cluster_cidrs), "bridgeInterface",
			str_or_empty(c->pod_bridge_interface), "interfaceNamePrefix",
			str_or_empty(c->pod_interface_name_prefix), "clusterCIDR", cidrs,
			"nodePortAddresses", strlist(&c->nodeport_addresses), "oomScoreAdj",
			c->oom_score_adj, "logging", "verbosity", 0);
	free(cidrs);
	if (!doc)
		return -ENOMEM;
	*out = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	return *out ? 0 : -ENOMEM;
}
