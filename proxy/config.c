/*
 * proxy/config.c - configuration defaults, validation and per-family setup.
 */
#include "proxy/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "informer/ip.h"

int proxy_config_set_str(char **dst, const char *s)
{
	char *p = NULL;

	if (s) {
		p = strdup(s);
		if (!p)
			return -ENOMEM;
	}
	free(*dst);
	*dst = p;
	return 0;
}

void proxy_strlist_clear(struct proxy_strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int proxy_strlist_add(struct proxy_strlist *l, const char *s)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	l->v = v;
	v[l->n] = strdup(s);
	if (!v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

int proxy_strlist_set_csv(struct proxy_strlist *l, const char *s)
{
	const char *p = s, *end;
	char item[512];
	size_t n;
	int err;

	proxy_strlist_clear(l);
	while (p && *p) {
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		while (p < end && isspace((unsigned char)*p))
			p++;
		n = (size_t)(end - p);
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		if (n >= sizeof(item))
			return -EINVAL;
		if (n) {
			memcpy(item, p, n);
			item[n] = '\0';
			err = proxy_strlist_add(l, item);
			if (err)
				return err;
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

int proxy_config_init(struct proxy_config *c)
{
	memset(c, 0, sizeof(*c));
	c->kube_api_qps = 5;
	c->kube_api_burst = 10;
	c->config_sync_period_ms = 15 * 60 * 1000;
	c->masquerade_bit = 14;
	c->localhost_nodeports = true;
	c->sync_period_ms = 30 * 1000;
	c->min_sync_period_ms = 1000;
	c->conntrack_max_per_core = 32768;
	c->conntrack_min = 131072;
	c->conntrack_tcp_established_ms = 24LL * 3600 * 1000;
	c->conntrack_tcp_close_wait_ms = 3600LL * 1000;
	c->gate_prefer_same_node = true;
	c->oom_score_adj = -999;
	c->service_dispatch = RULES_DISPATCH_AUTO;
	if (proxy_config_set_str(&c->bind_address, "0.0.0.0") ||
	    proxy_config_set_str(&c->healthz_bind_address, "0.0.0.0:10256") ||
	    proxy_config_set_str(&c->metrics_bind_address, "127.0.0.1:10249") ||
	    proxy_config_set_str(&c->proxy_mode, "iptables") ||
	    proxy_config_set_str(&c->iptables_backend, "auto")) {
		proxy_config_cleanup(c);
		return -ENOMEM;
	}
	return 0;
}

void proxy_config_cleanup(struct proxy_config *c)
{
	free(c->hostname_override);
	free(c->kubeconfig);
	free(c->master);
	free(c->bind_address);
	free(c->healthz_bind_address);
	free(c->metrics_bind_address);
	free(c->proxy_mode);
	free(c->iptables_backend);
	free(c->pod_bridge_interface);
	free(c->pod_interface_name_prefix);
	proxy_strlist_clear(&c->cluster_cidrs);
	proxy_strlist_clear(&c->nodeport_addresses);
	proxy_strlist_clear(&c->service_cidrs);
	memset(c, 0, sizeof(*c));
}

static int fail(char *err, size_t errlen, const char *fmt, ...) PROXY_PRINTF(3, 4);

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int proxy_config_validate(const struct proxy_config *c, char *err, size_t errlen)
{
	struct informer_prefix p;
	int fams = 0;
	size_t i;

	if (strcmp(c->proxy_mode, "iptables") != 0 && c->proxy_mode[0])
		return fail(
			err, errlen,
			"mode %s: not supported: kube-iptables-proxy only implements the iptables mode",
			c->proxy_mode);
	if (c->masquerade_bit > 31)
		return fail(err, errlen, "iptables.masqueradeBit %u: must be within [0, 31]",
			    c->masquerade_bit);
	if (c->sync_period_ms <= 0)
		return fail(err, errlen, "iptables.syncPeriod must be greater than 0");
	if (c->min_sync_period_ms < 0)
		return fail(err, errlen,
			    "iptables.minSyncPeriod must be greater than or equal to 0");
	if (c->min_sync_period_ms > c->sync_period_ms)
		return fail(err, errlen, "iptables.minSyncPeriod must be less than or equal to %s",
			    "iptables.syncPeriod");
	for (i = 0; i < c->cluster_cidrs.n; i++) {
		if (informer_prefix_parse(c->cluster_cidrs.v[i], &p))
			return fail(err, errlen, "clusterCIDR %s: not a valid CIDR",
				    c->cluster_cidrs.v[i]);
		if (fams & (1 << (p.addr.family == INFORMER_IPV6)))
			return fail(err, errlen,
				    "clusterCIDR %s: at most one CIDR per IP family is allowed",
				    c->cluster_cidrs.v[i]);
		fams |= 1 << (p.addr.family == INFORMER_IPV6);
	}
	fams = 0;
	for (i = 0; i < c->service_cidrs.n; i++) {
		if (informer_prefix_parse(c->service_cidrs.v[i], &p))
			return fail(err, errlen, "service-cluster-ip-range %s: not a valid CIDR",
				    c->service_cidrs.v[i]);
		if (fams & (1 << (p.addr.family == INFORMER_IPV6)))
			return fail(
				err, errlen,
				"service-cluster-ip-range %s: at most one CIDR per IP family is "
				"allowed",
				c->service_cidrs.v[i]);
		fams |= 1 << (p.addr.family == INFORMER_IPV6);
	}
	for (i = 0; i < c->nodeport_addresses.n; i++) {
		const char *s = c->nodeport_addresses.v[i];

		if (strcmp(s, "primary") == 0) {
			if (c->nodeport_addresses.n > 1)
				return fail(
					err, errlen,
					"nodePortAddresses: \"primary\" cannot be combined with CIDRs");
			continue;
		}
		if (informer_prefix_parse(s, &p))
			return fail(err, errlen, "nodePortAddresses %s: not a valid CIDR", s);
	}
	if (c->detect_local_mode == PROXY_LOCAL_BRIDGE_INTERFACE &&
	    (!c->pod_bridge_interface || !c->pod_bridge_interface[0]))
		return fail(err, errlen,
			    "detectLocalMode BridgeInterface needs detectLocal.bridgeInterface "
			    "(--pod-bridge-interface)");
	if (c->detect_local_mode == PROXY_LOCAL_INTERFACE_NAME_PREFIX &&
	    (!c->pod_interface_name_prefix || !c->pod_interface_name_prefix[0]))
		return fail(
			err, errlen,
			"detectLocalMode InterfaceNamePrefix needs detectLocal.interfaceNamePrefix "
			"(--pod-interface-name-prefix)");
	return 0;
}

static enum informer_family ifam(enum rules_family f)
{
	return f == RULES_IPV6 ? INFORMER_IPV6 : INFORMER_IPV4;
}

bool proxy_node_primary_ip(const struct informer_node *node, const char *bind_address,
			   enum rules_family family, char *buf, size_t len)
{
	struct informer_addr a;
	int pass;
	size_t i;

	if (bind_address && !informer_addr_parse(bind_address, &a) && a.family == ifam(family)) {
		static const uint8_t zero[16];

		if (memcmp(a.addr, zero, family == RULES_IPV6 ? 16 : 4) != 0) {
			informer_addr_format(&a, buf, len);
			return true;
		}
	}
	for (pass = 0; node && pass < 2; pass++) {
		enum informer_node_addr_type want =
			pass == 0 ? INFORMER_NODE_INTERNAL_IP : INFORMER_NODE_EXTERNAL_IP;

		for (i = 0; i < node->n_addresses; i++) {
			const struct informer_node_address *na = &node->addresses[i];

			if (na->type == want && na->ip.ip && na->ip.family == ifam(family)) {
				snprintf(buf, len, "%s", na->ip.ip);
				return true;
			}
		}
	}
	snprintf(buf, len, "%s", family == RULES_IPV6 ? "::1" : "127.0.0.1");
	return false;
}

/* The --detect-local-mode match of @family; NULL match means no detector. */
static int local_detector(struct proxy_family_setup *fs, const struct proxy_config *c,
			  const struct informer_node *node,
			  void (*warn)(void *arg, const char *msg), void *warn_arg)
{
	struct informer_prefix p;
	char msg[256];
	size_t i;

	switch (c->detect_local_mode) {
	case PROXY_LOCAL_BRIDGE_INTERFACE:
		fs->opts.local_mode = RULES_LOCAL_INTERFACE;
		return proxy_config_set_str(&fs->local_match, c->pod_bridge_interface);
	case PROXY_LOCAL_INTERFACE_NAME_PREFIX:
		fs->opts.local_mode = RULES_LOCAL_INTERFACE;
		fs->local_match = malloc(strlen(c->pod_interface_name_prefix) + 2);
		if (!fs->local_match)
			return -ENOMEM;
		sprintf(fs->local_match, "%s+", c->pod_interface_name_prefix);
		return 0;
	case PROXY_LOCAL_NODE_CIDR:
		for (i = 0; node && i < node->n_pod_cidrs; i++) {
			if (node->pod_cidrs[i].family == ifam(fs->family)) {
				fs->opts.local_mode = RULES_LOCAL_CIDR;
				return proxy_config_set_str(&fs->local_match,
							    node->pod_cidrs[i].cidr);
			}
		}
		snprintf(msg, sizeof(msg),
			 "detectLocalMode NodeCIDR: the Node has no IPv%d podCIDR; local traffic "
			 "will not be detected",
			 fs->family);
		break;
	case PROXY_LOCAL_CLUSTER_CIDR:
	default:
		for (i = 0; i < c->cluster_cidrs.n; i++) {
			if (!informer_prefix_parse(c->cluster_cidrs.v[i], &p) &&
			    p.addr.family == ifam(fs->family)) {
				char canon[INFORMER_IP_STRLEN];

				fs->opts.local_mode = RULES_LOCAL_CIDR;
				return proxy_config_set_str(
					&fs->local_match,
					informer_prefix_format(&p, canon, sizeof(canon)));
			}
		}
		snprintf(msg, sizeof(msg),
			 "detectLocalMode ClusterCIDR: no IPv%d clusterCIDR given; off-cluster "
			 "traffic to ClusterIPs will not be masqueraded",
			 fs->family);
		break;
	}
	if (warn)
		warn(warn_arg, msg);
	fs->opts.local_mode = RULES_LOCAL_NONE;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* upstream NewNodePortAddresses + GetNodeIPs */
static int nodeport_setup(struct proxy_family_setup *fs, const struct proxy_config *c,
			  const char *const *addrs, size_t n_addrs)
{
	struct informer_prefix cidrs[16];
	struct informer_addr a;
	bool loopback = false, match_all = false;
	size_t i, j, n = 0;
	int err;

	for (i = 0; i < c->nodeport_addresses.n; i++) {
		const char *s = c->nodeport_addresses.v[i];
		char cidr[80];

		if (strcmp(s, "primary") == 0) {
			/* the node's primary IP of this family as a host CIDR, unless
			 * it is unknown (loopback): then this family matches all */
			if (informer_addr_parse(fs->node_ip, &a) || informer_addr_is_loopback(&a))
				continue;
			snprintf(cidr, sizeof(cidr), "%s/%d", fs->node_ip,
				 fs->family == RULES_IPV6 ? 128 : 32);
			s = cidr;
		}
		if (informer_prefix_parse(s, &cidrs[n]) || cidrs[n].addr.family != ifam(fs->family))
			continue;
		/* upstream compares the text: only these two mean "all" */
		if (strcmp(s, "0.0.0.0/0") == 0 || strcmp(s, "::/0") == 0)
			match_all = true;
		if (n + 1 < sizeof(cidrs) / sizeof(cidrs[0]))
			n++;
	}
	if (!n)
		match_all = true;
	if (fs->family == RULES_IPV4) {
		struct informer_addr lo = { .family = INFORMER_IPV4, .addr = { 127, 0, 0, 1 } };

		for (i = 0; i < n; i++)
			if (informer_addr_is_loopback(&cidrs[i].addr) ||
			    informer_prefix_contains(&cidrs[i], &lo))
				loopback = true;
		if (!n)
			loopback = true; /* 0.0.0.0/0 contains it */
	}
	fs->localhost_nodeports_wanted =
		fs->family == RULES_IPV4 && c->localhost_nodeports && loopback;
	fs->opts.localhost_nodeports = fs->localhost_nodeports_wanted;
	fs->opts.nodeport_match_all = match_all;
	if (match_all)
		return 0;
	for (i = 0; i < n_addrs; i++) {
		char canon[INFORMER_IP_STRLEN];

		if (informer_addr_parse(addrs[i], &a) || a.family != ifam(fs->family))
			continue;
		for (j = 0; j < n; j++)
			if (informer_prefix_contains(&cidrs[j], &a))
				break;
		if (j == n)
			continue;
		informer_addr_format(&a, canon, sizeof(canon));
		for (j = 0; j < fs->nodeport_ips.n; j++)
			if (strcmp(fs->nodeport_ips.v[j], canon) == 0)
				break;
		if (j < fs->nodeport_ips.n)
			continue;
		err = proxy_strlist_add(&fs->nodeport_ips, canon);
		if (err)
			return err;
	}
	/* upstream collects them in a map; we sort for stable output */
	if (fs->nodeport_ips.n)
		qsort(fs->nodeport_ips.v, fs->nodeport_ips.n, sizeof(char *), cmp_str);
	fs->opts.nodeport_ips = (const char *const *)fs->nodeport_ips.v;
	fs->opts.n_nodeport_ips = fs->nodeport_ips.n;
	return 0;
}

int proxy_family_setup(struct proxy_family_setup *fs, const struct proxy_config *c,
		       enum rules_family family, const struct informer_node *node,
		       const char *const *addrs, size_t n_addrs, bool random_fully, bool nfacct,
		       bool tcp_be_liberal, void (*warn)(void *arg, const char *msg),
		       void *warn_arg, char *err, size_t errlen)
{
	char ip[64];
	int ret;

	memset(fs, 0, sizeof(*fs));
	fs->family = family;
	rules_opts_init(&fs->opts);
	fs->opts.masquerade_bit = c->masquerade_bit;
	fs->opts.masquerade_all = c->masquerade_all;
	fs->opts.random_fully = random_fully;
	fs->opts.nfacct = nfacct;
	fs->opts.tcp_be_liberal = tcp_be_liberal;
	fs->opts.dispatch = c->service_dispatch;
	fs->opts.service_cidrs = (const char *const *)c->service_cidrs.v;
	fs->opts.n_service_cidrs = c->service_cidrs.n;

	proxy_node_primary_ip(node, c->bind_address, family, ip, sizeof(ip));
	ret = proxy_config_set_str(&fs->node_ip, ip);
	if (ret)
		goto out_err;
	ret = local_detector(fs, c, node, warn, warn_arg);
	if (ret)
		goto out_err;
	fs->opts.local_match = fs->local_match;
	ret = nodeport_setup(fs, c, addrs, n_addrs);
	if (ret)
		goto out_err;
	return 0;

out_err:
	snprintf(err, errlen, "setting up IPv%d rules: %s", family, strerror(-ret));
	proxy_family_setup_cleanup(fs);
	return ret;
}

void proxy_family_setup_cleanup(struct proxy_family_setup *fs)
{
	free(fs->node_ip);
	free(fs->local_match);
	proxy_strlist_clear(&fs->nodeport_ips);
	memset(fs, 0, sizeof(*fs));
}
