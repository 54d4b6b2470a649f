/*
 * cmd/dump.c - --dump-rules from a file of objects (or a tracker filled live).
 */
#include "cmd/dump.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "informer/objfile.h"
#include "proxy/log.h"
#include "proxy/tracker.h"
#include "rules/render.h"

static void diag_log(void *arg, const char *msg)
{
	(void)arg;
	PLOG_W("Skipped input", "reason=\"%s\"", msg);
}

static void warn_log(void *arg, const char *msg)
{
	(void)arg;
	PLOG_I(1, "Rules setup", "note=\"%s\"", msg);
}

static bool want_family(const struct proxy_config *c, const struct proxy_tracker *t,
			enum rules_family f)
{
	switch (c->families) {
	case PROXY_FAMILIES_IPV4:
		return f == RULES_IPV4;
	case PROXY_FAMILIES_IPV6:
		return f == RULES_IPV6;
	case PROXY_FAMILIES_DUAL:
		return true;
	case PROXY_FAMILIES_AUTO:
	default:
		/* the families the objects use; IPv4 when there is nothing at all */
		if (f == RULES_IPV6)
			return proxy_tracker_family_seen(t, RULES_IPV6);
		return proxy_tracker_family_seen(t, RULES_IPV4) ||
		       !proxy_tracker_family_seen(t, RULES_IPV6);
	}
}

static int dump_family(const struct cmd_options *o, struct proxy_tracker *t, enum rules_family f,
		       const char *const *addrs, size_t n_addrs, FILE *out)
{
	const struct proxy_config *c = &o->cfg;
	struct proxy_family_setup fs;
	struct proxy_snapshot snap;
	struct rules_stats stats;
	struct rules_buf buf;
	char err[256];
	int ret;

	ret = proxy_family_setup(&fs, c, f, proxy_tracker_node(t), addrs, n_addrs,
				 c->random_fully != PROXY_OFF, c->nfacct == PROXY_ON,
				 c->conntrack_tcp_be_liberal, warn_log, NULL, err, sizeof(err));
	if (ret) {
		PLOG_E("Failed to set up rules", "err=\"%s\"", err);
		return ret;
	}
	ret = proxy_tracker_set_node_ip(t, f, fs.node_ip);
	if (ret)
		goto out_setup;
	ret = proxy_tracker_snapshot(t, f, &snap);
	if (ret)
		goto out_setup;
	rules_buf_init(&buf, 0);
	ret = rules_render(&snap.state, &fs.opts, &buf, &stats);
	if (ret) {
		PLOG_E("Failed to render rules", "ipFamily=\"IPv%d\" err=\"%s\"", f,
		       strerror(-ret));
		goto out_buf;
	}
	if (fwrite(buf.data, 1, buf.len, out) != buf.len) {
		ret = -EIO;
		PLOG_E("Failed to write rules", "err=\"%s\"", strerror(errno));
		goto out_buf;
	}
	PLOG_I(2, "Rendered rules",
	       "ipFamily=\"IPv%d\" servicePorts=%zu endpoints=%zu filterRules=%zu natRules=%zu "
	       "natChains=%zu bytes=%zu",
	       f, snap.n_ports, snap.state.total_endpoints, stats.filter_rules, stats.nat_rules,
	       stats.nat_chains, buf.len);
out_buf:
	rules_buf_cleanup(&buf);
	proxy_snapshot_cleanup(&snap);
out_setup:
	proxy_family_setup_cleanup(&fs);
	return ret;
}

int cmd_dump_tracker(const struct cmd_options *o, struct proxy_tracker *t, const char *const *addrs,
		     size_t n_addrs, FILE *out)
{
	static const enum rules_family fams[] = { RULES_IPV4, RULES_IPV6 };
	size_t i;
	int ret;

	for (i = 0; i < 2; i++) {
		if (!want_family(&o->cfg, t, fams[i]))
			continue;
		/* a comment to iptables-restore; says which tool each section is for */
		fprintf(out, "# IPv%d: input for %s\n", fams[i],
			fams[i] == RULES_IPV4 ? "iptables-restore" : "ip6tables-restore");
		ret = dump_family(o, t, fams[i], addrs, n_addrs, out);
		if (ret)
			return ret;
	}
	if (fflush(out)) {
		PLOG_E("Failed to write rules", "err=\"%s\"", strerror(errno));
		return -EIO;
	}
	return 0;
}

/* The node's addresses plus loopbacks: what --nodeport-addresses can match
 * when the node's interfaces are not ours to list. */
static int node_addrs(const struct informer_node *node, struct proxy_strlist *l)
{
	size_t i;
	int ret;

	for (i = 0; node && i < node->n_addresses; i++) {
		if (!node->addresses[i].ip.ip)
			continue;
		ret = proxy_strlist_add(l, node->addresses[i].ip.ip);
		if (ret)
			return ret;
	}
	ret = proxy_strlist_add(l, "127.0.0.1");
	return ret ? ret : proxy_strlist_add(l, "::1");
}

int cmd_dump_from_file(const struct cmd_options *o, const char *node_name, FILE *out)
{
	struct informer_diag diag = { diag_log, NULL };
	struct informer_objects objs = { 0 };
	struct proxy_strlist addrs = { 0 };
	struct proxy_tracker *t = NULL;
	int ret, code = 1;
	size_t i;

	ret = informer_objects_load(o->from_file, &diag, &objs);
	if (ret) {
		PLOG_E("Failed to read objects", "file=\"%s\" err=\"%s\"", o->from_file,
		       strerror(-ret));
		goto out;
	}
	ret = proxy_tracker_new(node_name, &t);
	if (ret)
		goto out_nomem;
	proxy_tracker_set_prefer_same_node(t, o->cfg.gate_prefer_same_node);
	for (i = 0; i < objs.n_nodes; i++) {
		struct informer_node *n = objs.nodes[i];

		objs.nodes[i] = NULL;
		if (strcmp(n->meta.name, node_name) != 0) {
			PLOG_I(2, "Ignoring another node", "node=\"%s\" currentNode=\"%s\"",
			       n->meta.name, node_name);
			informer_node_free(n);
			continue;
		}
		ret = proxy_tracker_node_set(t, n);
		if (ret < 0)
			goto out_nomem;
	}
	for (i = 0; i < objs.n_services; i++) {
		ret = proxy_tracker_service_upsert(t, objs.services[i]);
		objs.services[i] = NULL;
		if (ret < 0)
			goto out_nomem;
	}
	for (i = 0; i < objs.n_slices; i++) {
		ret = proxy_tracker_slice_upsert(t, objs.slices[i]);
		objs.slices[i] = NULL;
		if (ret < 0)
			goto out_nomem;
	}
	if (!proxy_tracker_node(t))
		PLOG_I(1, "No Node object for this node in the input",
		       "node=\"%s\" note=\"node IP assumed loopback, no zone label\"", node_name);
	ret = node_addrs(proxy_tracker_node(t), &addrs);
	if (ret)
		goto out_nomem;
	ret = cmd_dump_tracker(o, t, (const char *const *)addrs.v, addrs.n, out);
	code = ret ? 1 : 0;
	goto out;

out_nomem:
	PLOG_E("Out of memory", "while=\"loading objects\"");
out:
	proxy_strlist_clear(&addrs);
	proxy_tracker_free(t);
	informer_objects_cleanup(&objs);
	return code;
}
