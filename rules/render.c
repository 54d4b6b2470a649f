/*
 * rules/render.c - desired state -> iptables-restore text.
 *
 * Each function below mirrors one step of upstream's syncProxyRules (cited in
 * shared/spec/kube-proxy-iptables.md section 1.4), in the same order, so the
 * rules of every chain come out in upstream's order.
 */
#include "rules/render.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/internal.h"

#define NODEPORTS_COMMENT \
	"\"kubernetes service nodeports; NOTE: this must be the last rule in this chain\""
#define NFACCT_LOCALHOST "localhost_nps_accepted_pkts"
#define NFACCT_INVALID	 "ct_state_invalid_dropped_pkts"

const char *rules_proto_name(enum rules_proto p)
{
	switch (p) {
	case RULES_PROTO_UDP:
		return "udp";
	case RULES_PROTO_SCTP:
		return "sctp";
	case RULES_PROTO_TCP:
	default:
		return "tcp";
	}
}

void rules_opts_init(struct rules_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->masquerade_bit = 14;
	o->localhost_nodeports = true;
	o->nodeport_match_all = true;
	o->large_cluster_threshold = 1000;
	o->dispatch = RULES_DISPATCH_LINEAR;
	o->dispatch_auto_ports = RULES_DISPATCH_AUTO_PORTS;
}

static const struct {
	const char *table;
	const char *chain;
} slots[RULES_SLOT__COUNT] = {
	[RULES_SLOT_NAT_SERVICES] = { "nat", "KUBE-SERVICES" },
	[RULES_SLOT_NAT_NODEPORTS] = { "nat", "KUBE-NODEPORTS" },
	[RULES_SLOT_FILTER_SERVICES] = { "filter", "KUBE-SERVICES" },
	[RULES_SLOT_FILTER_EXTERNAL] = { "filter", "KUBE-EXTERNAL-SERVICES" },
	[RULES_SLOT_FILTER_NODEPORTS] = { "filter", "KUBE-NODEPORTS" },
	[RULES_SLOT_FILTER_FIREWALL] = { "filter", "KUBE-PROXY-FIREWALL" },
};

const char *rules_slot_table(enum rules_slot s)
{
	return slots[s].table;
}

const char *rules_slot_chain(enum rules_slot s)
{
	return slots[s].chain;
}

const char *rules_render_probability(unsigned int n, char *buf, size_t len)
{
	/* glibc and Go both round the exact binary value to nearest, so the
	 * digits match upstream's fmt.Sprintf("%0.10f", 1.0/float64(n)). */
	snprintf(buf, len, "%0.10f", 1.0 / (double)n);
	return buf;
}

void rules_ctx_init(struct rules_ctx *ctx, const struct rules_state *st,
		    const struct rules_opts *opts)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->opts = opts;
	ctx->family = st->family;
	ctx->large_cluster = st->total_endpoints > opts->large_cluster_threshold;
	/* Go's "%#08x" zero-pads the digits to 8 and then adds "0x". */
	snprintf(ctx->mark, sizeof(ctx->mark), "0x%08x", 1u << (opts->masquerade_bit & 31));
	ctx->tree =
		opts->dispatch == RULES_DISPATCH_TREE ||
		(opts->dispatch == RULES_DISPATCH_AUTO && st->n_ports > opts->dispatch_auto_ports);
}

/* ---- rules_port_out ---------------------------------------------------- */

void rules_port_out_init(struct rules_port_out *po)
{
	int i;

	memset(po, 0, sizeof(*po));
	for (i = 0; i < RULES_SLOT__COUNT; i++)
		rules_buf_init(&po->slot[i], 0);
	rules_buf_init(&po->own, 0);
}

void rules_port_out_reset(struct rules_port_out *po)
{
	int i;

	for (i = 0; i < RULES_SLOT__COUNT; i++) {
		rules_buf_reset(&po->slot[i]);
		po->n_slot[i] = 0;
	}
	rules_buf_reset(&po->own);
	po->n_chains = 0;
	po->no_local_internal = false;
	po->no_local_external = false;
	po->err = 0;
}

void rules_port_out_cleanup(struct rules_port_out *po)
{
	int i;

	for (i = 0; i < RULES_SLOT__COUNT; i++)
		rules_buf_cleanup(&po->slot[i]);
	rules_buf_cleanup(&po->own);
	free(po->chains);
	memset(po, 0, sizeof(*po));
}

/* Start a new own chain: later rules_buf writes to po->own belong to it. */
static void own_chain_open(struct rules_port_out *po, const char *name)
{
	struct rules_own_chain *c;

	if (po->n_chains == po->cap_chains) {
		size_t cap = po->cap_chains ? po->cap_chains * 2 : 8;

		c = realloc(po->chains, cap * sizeof(*c));
		if (!c) {
			po->err = -ENOMEM;
			return;
		}
		po->chains = c;
		po->cap_chains = cap;
	}
	c = &po->chains[po->n_chains++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->off = po->own.len;
	c->len = 0;
	c->n_rules = 0;
}

/* Close the current own chain after @n_rules rules were written to po->own. */
static void own_chain_close(struct rules_port_out *po, unsigned int n_rules)
{
	struct rules_own_chain *c;

	if (po->err || !po->n_chains)
		return;
	c = &po->chains[po->n_chains - 1];
	c->len = po->own.len - c->off;
	c->n_rules = n_rules;
}

/* ---- per service port ------------------------------------------------ */

/* What a service port's rules are made of (upstream's local variables). */
struct port_plan {
	const struct rules_svc_port *sp;
	const char *proto;
	char svc[RULES_CHAIN_NAME_MAX]; /* KUBE-SVC-h */
	char svl[RULES_CHAIN_NAME_MAX]; /* KUBE-SVL-h */
	char ext[RULES_CHAIN_NAME_MAX]; /* KUBE-EXT-h */
	char fw[RULES_CHAIN_NAME_MAX];	/* KUBE-FW-h */
	const char *internal_chain;
	const char *external_policy_chain;
	const char *lb_chain;
	bool has_internal;
	bool has_external;
	bool uses_ext_chain;
	bool uses_fw;
	bool uses_cluster_chain;
	bool uses_local_chain;
	const char *internal_target; /* REJECT/DROP when !has_internal */
	const char *external_target; /* REJECT/DROP when !has_external */
	const char *no_ep_comment;   /* "\"S has no (local) endpoints\"" kind */
};

static void plan_port(const struct rules_svc_port *sp, struct port_plan *p)
{
	bool external = rules_svc_port_external(sp);

	memset(p, 0, sizeof(*p));
	p->sp = sp;
	p->proto = rules_proto_name(sp->proto);
	snprintf(p->svc, sizeof(p->svc), "KUBE-SVC-%s", sp->hash);
	snprintf(p->svl, sizeof(p->svl), "KUBE-SVL-%s", sp->hash);
	snprintf(p->ext, sizeof(p->ext), "KUBE-EXT-%s", sp->hash);
	snprintf(p->fw, sizeof(p->fw), "KUBE-FW-%s", sp->hash);

	p->uses_cluster_chain = sp->n_cluster_eps > 0 && rules_svc_port_uses_cluster(sp);
	p->uses_local_chain = sp->n_local_eps > 0 && rules_svc_port_uses_local(sp);

	p->internal_chain = p->svc;
	p->has_internal = sp->has_endpoints;
	if (sp->itp_local) {
		p->internal_chain = p->svl;
		if (!sp->n_local_eps)
			p->has_internal = false;
	}
	p->external_policy_chain = p->svc;
	p->has_external = sp->has_endpoints;
	if (sp->etp_local) {
		p->external_policy_chain = p->svl;
		if (!sp->n_local_eps)
			p->has_external = false;
	}
	p->uses_ext_chain = sp->has_endpoints && external;
	p->uses_fw = sp->has_endpoints && sp->n_lb_ips && sp->n_source_ranges;
	p->lb_chain = p->uses_fw ? p->fw : p->ext;

	if (!sp->has_endpoints) {
		p->internal_target = "REJECT";
		p->external_target = "REJECT";
	} else {
		if (!p->has_internal)
			p->internal_target = "DROP";
		if (!p->has_external)
			p->external_target = "DROP";
	}
}

/* "-A <chain> -m comment --comment \"<S><what>\"" */
static void rule_start_quoted(struct rules_buf *b, const char *chain, const char *s,
			      const char *what)
{
	rules_buf_adds(b, "-A ");
	rules_buf_adds(b, chain);
	rules_buf_adds(b, " -m comment --comment \"");
	rules_buf_adds(b, s);
	rules_buf_adds(b, what);
	rules_buf_addc(b, '"');
}

/* " -m <p> -p <p>" */
static void add_proto(struct rules_buf *b, const char *proto)
{
	rules_buf_adds(b, " -m ");
	rules_buf_adds(b, proto);
	rules_buf_adds(b, " -p ");
	rules_buf_adds(b, proto);
}

/* " -d <ip> --dport <port>" */
static void add_dest(struct rules_buf *b, const char *ip, unsigned int port)
{
	rules_buf_adds(b, " -d ");
	rules_buf_adds(b, ip);
	rules_buf_adds(b, " --dport ");
	rules_buf_addu(b, port);
}

/* " -j <target>\n" */
static void rule_end(struct rules_buf *b, const char *target)
{
	rules_buf_adds(b, " -j ");
	rules_buf_adds(b, target);
	rules_buf_addc(b, '\n');
}

static void slot_rule_end(struct rules_port_out *po, enum rules_slot s, const char *target)
{
	rule_end(&po->slot[s], target);
	po->n_slot[s]++;
}

/* A filter REJECT/DROP rule for traffic to @ip:@port with no usable endpoints. */
static void filter_no_endpoints(struct rules_port_out *po, const struct port_plan *p,
				enum rules_slot s, const char *ip, const char *target)
{
	struct rules_buf *b = &po->slot[s];

	rule_start_quoted(b, rules_slot_chain(s), p->sp->name,
			  strcmp(target, "REJECT") == 0 ? " has no endpoints"
							: " has no local endpoints");
	add_proto(b, p->proto);
	add_dest(b, ip, p->sp->port);
	slot_rule_end(po, s, target);
}

/* Step 1: the ClusterIP. */
static void render_cluster_ip(struct rules_port_out *po, const struct port_plan *p)
{
	const struct rules_svc_port *sp = p->sp;
	struct rules_buf *b;

	if (!p->has_internal) {
		filter_no_endpoints(po, p, RULES_SLOT_FILTER_SERVICES, sp->cluster_ip,
				    p->internal_target);
		return;
	}
	b = &po->slot[RULES_SLOT_NAT_SERVICES];
	rule_start_quoted(b, "KUBE-SERVICES", sp->name, " cluster IP");
	add_proto(b, p->proto);
	add_dest(b, sp->cluster_ip, sp->port);
	slot_rule_end(po, RULES_SLOT_NAT_SERVICES, p->internal_chain);
}

/* Step 2: externalIPs. */
static void render_external_ips(struct rules_port_out *po, const struct port_plan *p)
{
	const struct rules_svc_port *sp = p->sp;
	struct rules_buf *b = &po->slot[RULES_SLOT_NAT_SERVICES];
	size_t i;

	for (i = 0; i < sp->n_external_ips; i++) {
		if (sp->has_endpoints) {
			rule_start_quoted(b, "KUBE-SERVICES", sp->name, " external IP");
			add_proto(b, p->proto);
			add_dest(b, sp->external_ips[i], sp->port);
			slot_rule_end(po, RULES_SLOT_NAT_SERVICES, p->ext);
		}
		if (!p->has_external)
			filter_no_endpoints(po, p, RULES_SLOT_FILTER_EXTERNAL, sp->external_ips[i],
					    p->external_target);
	}
}

/* Step 3: load-balancer ingress IPs (VIP mode only). */
static void render_lb_ips(struct rules_port_out *po, const struct port_plan *p)
{
	const struct rules_svc_port *sp = p->sp;
	struct rules_buf *nat = &po->slot[RULES_SLOT_NAT_SERVICES];
	struct rules_buf *fw = &po->slot[RULES_SLOT_FILTER_FIREWALL];
	size_t i;

	for (i = 0; i < sp->n_lb_ips; i++) {
		if (sp->has_endpoints) {
			rule_start_quoted(nat, "KUBE-SERVICES", sp->name, " loadbalancer IP");
			add_proto(nat, p->proto);
			add_dest(nat, sp->lb_ips[i], sp->port);
			slot_rule_end(po, RULES_SLOT_NAT_SERVICES, p->lb_chain);
		}
		if (p->uses_fw) {
			rules_buf_adds(fw, "-A KUBE-PROXY-FIREWALL -m comment --comment \"");
			rules_buf_adds(fw, sp->name);
			rules_buf_adds(fw, " traffic not accepted by ");
			rules_buf_adds(fw, p->fw);
			rules_buf_addc(fw, '"');
			add_proto(fw, p->proto);
			add_dest(fw, sp->lb_ips[i], sp->port);
			slot_rule_end(po, RULES_SLOT_FILTER_FIREWALL, "DROP");
		}
	}
	if (!p->has_external)
		for (i = 0; i < sp->n_lb_ips; i++)
			filter_no_endpoints(po, p, RULES_SLOT_FILTER_EXTERNAL, sp->lb_ips[i],
					    p->external_target);
}

/* Step 4: the NodePort. */
static void render_node_port(const struct rules_ctx *ctx, struct rules_port_out *po,
			     const struct port_plan *p)
{
	const struct rules_svc_port *sp = p->sp;
	struct rules_buf *b;

	if (!sp->node_port)
		return;
	if (sp->has_endpoints) {
		b = &po->slot[RULES_SLOT_NAT_NODEPORTS];
		if (ctx->opts->localhost_nodeports && ctx->family == RULES_IPV4 &&
		    ctx->opts->nfacct) {
			rules_buf_adds(b, "-A KUBE-NODEPORTS -m comment --comment ");
			rules_buf_adds(b, sp->name);
			add_proto(b, p->proto);
			add_dest(b, "127.0.0.0/8", sp->node_port);
			rules_buf_adds(b, " -m nfacct --nfacct-name " NFACCT_LOCALHOST);
			slot_rule_end(po, RULES_SLOT_NAT_NODEPORTS, p->ext);
		}
		rules_buf_adds(b, "-A KUBE-NODEPORTS -m comment --comment ");
		rules_buf_adds(b, sp->name);
		add_proto(b, p->proto);
		rules_buf_adds(b, " --dport ");
		rules_buf_addu(b, sp->node_port);
		slot_rule_end(po, RULES_SLOT_NAT_NODEPORTS, p->ext);
	}
	if (!p->has_external) {
		b = &po->slot[RULES_SLOT_FILTER_EXTERNAL];
		rule_start_quoted(b, "KUBE-EXTERNAL-SERVICES", sp->name,
				  strcmp(p->external_target, "REJECT") == 0
					  ? " has no endpoints"
					  : " has no local endpoints");
		rules_buf_adds(b, " -m addrtype --dst-type LOCAL");
		add_proto(b, p->proto);
		rules_buf_adds(b, " --dport ");
		rules_buf_addu(b, sp->node_port);
		slot_rule_end(po, RULES_SLOT_FILTER_EXTERNAL, p->external_target);
	}
}

/* Step 5: the health-check NodePort is always accepted. */
static void render_hc_node_port(struct rules_port_out *po, const struct port_plan *p)
{
	struct rules_buf *b = &po->slot[RULES_SLOT_FILTER_NODEPORTS];

	if (!p->sp->hc_node_port)
		return;
	rule_start_quoted(b, "KUBE-NODEPORTS", p->sp->name, " health check node port");
	rules_buf_adds(b, " -m tcp -p tcp --dport ");
	rules_buf_addu(b, p->sp->hc_node_port);
	slot_rule_end(po, RULES_SLOT_FILTER_NODEPORTS, "ACCEPT");
}

/* " -s <cidr>" / " -i <if>" (IfLocal) or with "!" (IfNotLocal). */
static void add_local_match(struct rules_buf *b, const struct rules_opts *o, bool negate)
{
	rules_buf_adds(b, negate ? " ! " : " ");
	rules_buf_adds(b, o->local_mode == RULES_LOCAL_CIDR ? "-s " : "-i ");
	rules_buf_adds(b, o->local_match);
}

/* Step 7: masquerade off-cluster traffic to the ClusterIP (first rule of the
 * internal chain). Returns the number of rules written (0 or 1). */
static unsigned int render_internal_masq(const struct rules_ctx *ctx, struct rules_port_out *po,
					 const struct port_plan *p)
{
	const struct rules_opts *o = ctx->opts;
	struct rules_buf *b = &po->own;

	if (!p->has_internal || (!o->masquerade_all && o->local_mode == RULES_LOCAL_NONE))
		return 0;
	rule_start_quoted(b, p->internal_chain, p->sp->name, " cluster IP");
	add_proto(b, p->proto);
	add_dest(b, p->sp->cluster_ip, p->sp->port);
	if (!o->masquerade_all)
		add_local_match(b, o, true);
	rule_end(b, "KUBE-MARK-MASQ");
	return 1;
}

/* Step 8: the EXT chain. */
static void render_ext_chain(const struct rules_ctx *ctx, struct rules_port_out *po,
			     const struct port_plan *p)
{
	const struct rules_svc_port *sp = p->sp;
	struct rules_buf *b = &po->own;
	unsigned int n = 0;

	if (!p->uses_ext_chain)
		return;
	own_chain_open(po, p->ext);
	if (!sp->etp_local) {
		rules_buf_adds(b, "-A ");
		rules_buf_adds(b, p->ext);
		rules_buf_adds(b, " -m comment --comment \"masquerade traffic for ");
		rules_buf_adds(b, sp->name);
		rules_buf_adds(b, " external destinations\"");
		rule_end(b, "KUBE-MARK-MASQ");
		n++;
	} else {
		if (ctx->opts->local_mode != RULES_LOCAL_NONE) {
			rules_buf_adds(b, "-A ");
			rules_buf_adds(b, p->ext);
			rules_buf_adds(b, " -m comment --comment \"pod traffic for ");
			rules_buf_adds(b, sp->name);
			rules_buf_adds(b, " external destinations\"");
			add_local_match(b, ctx->opts, false);
			rule_end(b, p->svc);
			n++;
		}
		rules_buf_adds(b, "-A ");
		rules_buf_adds(b, p->ext);
		rules_buf_adds(b, " -m comment --comment \"masquerade LOCAL traffic for ");
		rules_buf_adds(b, sp->name);
		rules_buf_adds(b, " external destinations\" -m addrtype --src-type LOCAL");
		rule_end(b, "KUBE-MARK-MASQ");
		rules_buf_adds(b, "-A ");
		rules_buf_adds(b, p->ext);
		rules_buf_adds(b, " -m comment --comment \"route LOCAL traffic for ");
		rules_buf_adds(b, sp->name);
		rules_buf_adds(b, " external destinations\" -m addrtype --src-type LOCAL");
		rule_end(b, p->svc);
		n += 2;
	}
	if (p->has_external) {
		rules_buf_adds(b, "-A ");
		rules_buf_adds(b, p->ext);
		rule_end(b, p->external_policy_chain);
		n++;
	}
	own_chain_close(po, n);
}

/* Step 9: the FW chain (loadBalancerSourceRanges). */
static void render_fw_chain(struct rules_port_out *po, const struct port_plan *p)
{
	const struct rules_svc_port *sp = p->sp;
	struct rules_buf *b = &po->own;
	unsigned int n = 0;
	size_t i;

	if (!p->uses_fw)
		return;
	own_chain_open(po, p->fw);
	for (i = 0; i < sp->n_source_ranges; i++, n++) {
		rule_start_quoted(b, p->fw, sp->name, " loadbalancer IP");
		rules_buf_adds(b, " -s ");
		rules_buf_adds(b, sp->source_ranges[i]);
		rule_end(b, p->ext);
	}
	if (sp->fw_allow_from_node) {
		for (i = 0; i < sp->n_lb_ips; i++, n++) {
			rule_start_quoted(b, p->fw, sp->name, " loadbalancer IP");
			rules_buf_adds(b, " -s ");
			rules_buf_adds(b, sp->lb_ips[i]);
			rule_end(b, p->ext);
		}
	}
	/* No target: what falls through is dropped by KUBE-PROXY-FIREWALL. */
	rules_buf_adds(b, "-A ");
	rules_buf_adds(b, p->fw);
	rules_buf_adds(b, " -m comment --comment \"other traffic to ");
	rules_buf_adds(b, sp->name);
	rules_buf_adds(b, " will be dropped by KUBE-PROXY-FIREWALL\"\n");
	own_chain_close(po, n + 1);
}

/* "-A <chain>[ -m comment --comment \"S -> E\"]" (comments cut in large clusters) */
static void ep_rule_start(const struct rules_ctx *ctx, struct rules_buf *b, const char *chain,
			  const char *s, const struct rules_endpoint *ep)
{
	rules_buf_adds(b, "-A ");
	rules_buf_adds(b, chain);
	if (ctx->large_cluster)
		return;
	rules_buf_adds(b, " -m comment --comment \"");
	rules_buf_adds(b, s);
	rules_buf_adds(b, " -> ");
	rules_buf_adds(b, ep->str);
	rules_buf_addc(b, '"');
}

/* Steps 10-12: a SVC or SVL chain, with the internal masquerade rule first
 * when it is the internal chain. */
static void render_policy_chain(const struct rules_ctx *ctx, struct rules_port_out *po,
				const struct port_plan *p, const char *chain,
				const struct rules_endpoint *const *eps, size_t n_eps)
{
	const struct rules_svc_port *sp = p->sp;
	struct rules_buf *b = &po->own;
	unsigned int n = 0;
	char prob[32];
	size_t i;

	own_chain_open(po, chain);
	if (strcmp(chain, p->internal_chain) == 0)
		n += render_internal_masq(ctx, po, p);
	if (sp->affinity) {
		for (i = 0; i < n_eps; i++, n++) {
			ep_rule_start(ctx, b, chain, sp->name, eps[i]);
			rules_buf_adds(b, " -m recent --name ");
			rules_buf_adds(b, eps[i]->chain);
			rules_buf_adds(b, " --rcheck --seconds ");
			rules_buf_addu(b, sp->affinity_timeout);
			rules_buf_adds(b, " --reap");
			rule_end(b, eps[i]->chain);
		}
	}
	for (i = 0; i < n_eps; i++, n++) {
		ep_rule_start(ctx, b, chain, sp->name, eps[i]);
		if (i + 1 < n_eps) {
			rules_buf_adds(b, " -m statistic --mode random --probability ");
			rules_buf_adds(b, rules_render_probability((unsigned int)(n_eps - i), prob,
								   sizeof(prob)));
		}
		rule_end(b, eps[i]->chain);
	}
	own_chain_close(po, n);
}

/* Step 13: one KUBE-SEP chain per reachable endpoint. */
static void render_sep_chains(const struct rules_ctx *ctx, struct rules_port_out *po,
			      const struct port_plan *p)
{
	const struct rules_svc_port *sp = p->sp;
	struct rules_buf *b = &po->own;
	size_t i;

	for (i = 0; i < sp->n_reachable_eps; i++) {
		const struct rules_endpoint *ep = sp->reachable_eps[i];

		own_chain_open(po, ep->chain);
		rules_buf_adds(b, "-A ");
		rules_buf_adds(b, ep->chain);
		if (!ctx->large_cluster) {
			rules_buf_adds(b, " -m comment --comment ");
			rules_buf_adds(b, sp->name);
		}
		rules_buf_adds(b, " -s ");
		rules_buf_adds(b, ep->ip);
		rule_end(b, "KUBE-MARK-MASQ");

		rules_buf_adds(b, "-A ");
		rules_buf_adds(b, ep->chain);
		if (!ctx->large_cluster) {
			rules_buf_adds(b, " -m comment --comment ");
			rules_buf_adds(b, sp->name);
		}
		if (sp->affinity) {
			rules_buf_adds(b, " -m recent --name ");
			rules_buf_adds(b, ep->chain);
			rules_buf_adds(b, " --set");
		}
		add_proto(b, p->proto);
		rules_buf_adds(b, " -j DNAT --to-destination ");
		rules_buf_adds(b, ep->str);
		rules_buf_addc(b, '\n');
		own_chain_close(po, 2);
	}
}

static int port_out_err(const struct rules_port_out *po)
{
	int i;

	if (po->err)
		return po->err;
	if (po->own.err)
		return po->own.err;
	for (i = 0; i < RULES_SLOT__COUNT; i++)
		if (po->slot[i].err)
			return po->slot[i].err;
	return 0;
}

int rules_render_port(const struct rules_ctx *ctx, const struct rules_svc_port *sp,
		      struct rules_port_out *po)
{
	struct port_plan p;

	plan_port(sp, &p);
	po->no_local_internal = sp->has_endpoints && !p.has_internal;
	po->no_local_external = sp->has_endpoints && !p.has_external;

	render_cluster_ip(po, &p);
	render_external_ips(po, &p);
	render_lb_ips(po, &p);
	render_node_port(ctx, po, &p);
	render_hc_node_port(po, &p);
	render_ext_chain(ctx, po, &p);
	render_fw_chain(po, &p);
	if (p.uses_cluster_chain)
		render_policy_chain(ctx, po, &p, p.svc, sp->cluster_eps, sp->n_cluster_eps);
	if (p.uses_local_chain)
		render_policy_chain(ctx, po, &p, p.svl, sp->local_eps, sp->n_local_eps);
	render_sep_chains(ctx, po, &p);

	po->err = port_out_err(po);
	return po->err;
}

/* ---- the full document ---------------------------------------------- */

/* Everything a full render collects before writing the document out. */
struct doc {
	struct rules_buf slot[RULES_SLOT__COUNT];
	size_t n_slot[RULES_SLOT__COUNT];
	struct rules_buf own_chains; /* ":KUBE-...\n" lines */
	struct rules_buf own_rules;
	size_t n_own_chains;
	size_t n_own_rules;
	/* tree layout: the dispatch slots' rules, placed in their trees at the end */
	bool tree_on;
	struct rules_buf tree_lines[RULES_SLOT__COUNT];
	struct rules_dispatch tree[RULES_SLOT__COUNT];
};

static void doc_init(struct doc *d)
{
	int i;

	memset(d, 0, sizeof(*d));
	for (i = 0; i < RULES_SLOT__COUNT; i++)
		rules_buf_init(&d->slot[i], 0);
	rules_buf_init(&d->own_chains, 0);
	rules_buf_init(&d->own_rules, 0);
	for (i = 0; i < RULES_SLOT__COUNT; i++) {
		rules_buf_init(&d->tree_lines[i], 0);
		rules_dispatch_init(&d->tree[i]);
	}
}

static void doc_cleanup(struct doc *d)
{
	int i;

	for (i = 0; i < RULES_SLOT__COUNT; i++)
		rules_buf_cleanup(&d->slot[i]);
	rules_buf_cleanup(&d->own_chains);
	rules_buf_cleanup(&d->own_rules);
	for (i = 0; i < RULES_SLOT__COUNT; i++) {
		rules_buf_cleanup(&d->tree_lines[i]);
		rules_dispatch_cleanup(&d->tree[i]);
	}
}

static int doc_err(const struct doc *d)
{
	int i;

	for (i = 0; i < RULES_SLOT__COUNT; i++)
		if (d->slot[i].err)
			return d->slot[i].err;
	for (i = 0; i < RULES_SLOT__COUNT; i++)
		if (d->tree_lines[i].err)
			return d->tree_lines[i].err;
	return d->own_chains.err ? d->own_chains.err : d->own_rules.err;
}

static void doc_add_port(struct doc *d, const struct rules_port_out *po, bool tree)
{
	size_t i;
	int s;

	for (s = 0; s < RULES_SLOT__COUNT; s++) {
		/* tree layout: the dispatch slots' rules wait for their trees */
		struct rules_buf *to =
			tree && rules__dispatch_prefix(s) ? &d->tree_lines[s] : &d->slot[s];

		rules_buf_add(to, po->slot[s].data, po->slot[s].len);
		d->n_slot[s] += po->n_slot[s];
	}
	for (i = 0; i < po->n_chains; i++) {
		rules_buf_addc(&d->own_chains, ':');
		rules_buf_adds(&d->own_chains, po->chains[i].name);
		rules_buf_adds(&d->own_chains, " - [0:0]\n");
		d->n_own_rules += po->chains[i].n_rules;
	}
	d->n_own_chains += po->n_chains;
	rules_buf_add(&d->own_rules, po->own.data, po->own.len);
}

const char *rules__dispatch_prefix(enum rules_slot s)
{
	switch (s) {
	case RULES_SLOT_NAT_SERVICES:
		return RULES_DISPATCH_CHAIN_PFX;
	case RULES_SLOT_FILTER_SERVICES:
		return RULES_DISPATCH_PFX_REJECT;
	case RULES_SLOT_FILTER_EXTERNAL:
		return RULES_DISPATCH_PFX_EXTERNAL;
	case RULES_SLOT_FILTER_FIREWALL:
		return RULES_DISPATCH_PFX_FIREWALL;
	default:
		return NULL;
	}
}

int rules__dispatch_lines(const struct rules_ctx *ctx, enum rules_slot slot, const char *text,
			  size_t len, struct rules_dispatch *tree)
{
	const char *line = text, *end = text + len, *nl, *chain = rules_slot_chain(slot);
	struct rules_dispatch_entry *e;
	struct rules_buf rest;
	size_t n = 0, cap = 0;
	int err = 0;

	e = NULL;
	rules_buf_init(&rest, 0);
	for (; line && line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			nl = end;
		if (n == cap) {
			void *q;

			cap = cap ? cap * 2 : 256;
			q = realloc(e, cap * sizeof(*e));
			if (!q) {
				err = -ENOMEM;
				break;
			}
			e = q;
		}
		/* a rule that matches one -d address goes to the tree; the only
		 * others are KUBE-EXTERNAL-SERVICES' NodePort rules (local addresses) */
		if (rules_dispatch_entry_parse(line, (size_t)(nl - line), chain, ctx->family, n,
					       &e[n]) == 0)
			n++;
		else if (slot == RULES_SLOT_FILTER_EXTERNAL)
			rules_buf_add(&rest, line, (size_t)(nl - line) + (nl < end));
		else
			err = -EINVAL;
		if (err)
			break;
	}
	if (!err)
		err = rules_dispatch_build(e, n, ctx->family, ctx->opts->service_cidrs,
					   ctx->opts->n_service_cidrs, ctx->opts->dispatch_leaf_max,
					   rules__dispatch_prefix(slot), chain, tree);
	if (!err)
		err = rest.err ? rest.err
			       : rules_dispatch_gate(rest.data, rest.len,
						     rules__dispatch_prefix(slot), chain, tree);
	rules_buf_cleanup(&rest);
	free(e);
	return err;
}

void rules__chain_line(struct rules_buf *b, const char *chain)
{
	rules_buf_addc(b, ':');
	rules_buf_adds(b, chain);
	rules_buf_adds(b, " - [0:0]\n");
}

static void add_slot(struct rules_buf *out, const struct doc *d, enum rules_slot s)
{
	rules_buf_add(out, d->slot[s].data, d->slot[s].len);
}

size_t rules__fixed_filter(const struct rules_ctx *ctx, struct rules_buf *decls,
			   struct rules_buf *rules)
{
	const struct rules_opts *o = ctx->opts;
	size_t n = 2;

	if (ctx->family == RULES_IPV4 && o->localhost_nodeports) {
		/* kube-proxy's copy of kubelet's anti-martian rule (CVE-2020-8558) */
		rules__chain_line(decls, "KUBE-FIREWALL");
		rules_buf_adds(rules, "-A KUBE-FIREWALL -m comment --comment \"block incoming "
				      "localnet connections\" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m "
				      "conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n");
		n++;
	}
	if (!o->tcp_be_liberal) {
		rules_buf_adds(rules, "-A KUBE-FORWARD -m conntrack --ctstate INVALID");
		if (o->nfacct)
			rules_buf_adds(rules, " -m nfacct --nfacct-name " NFACCT_INVALID);
		rules_buf_adds(rules, " -j DROP\n");
		n++;
	}
	rules_buf_printf(rules,
			 "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m "
			 "mark --mark %s/%s -j ACCEPT\n",
			 ctx->mark, ctx->mark);
	rules_buf_adds(rules, "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding "
			      "conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j "
			      "ACCEPT\n");
	return n;
}

size_t rules__fixed_nat(const struct rules_ctx *ctx, struct rules_buf *rules)
{
	rules_buf_printf(rules, "-A KUBE-POSTROUTING -m mark ! --mark %s/%s -j RETURN\n", ctx->mark,
			 ctx->mark);
	rules_buf_printf(rules, "-A KUBE-POSTROUTING -j MARK --xor-mark %s\n", ctx->mark);
	rules_buf_adds(rules, "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service "
			      "traffic requiring SNAT\" -j MASQUERADE");
	if (ctx->opts->random_fully)
		rules_buf_adds(rules, " --random-fully");
	rules_buf_addc(rules, '\n');
	rules_buf_printf(rules, "-A KUBE-MARK-MASQ -j MARK --or-mark %s\n", ctx->mark);
	return 4;
}

static bool is_loopback(enum rules_family f, const char *ip)
{
	if (f == RULES_IPV6)
		return strcmp(ip, "::1") == 0;
	return strncmp(ip, "127.", 4) == 0;
}

size_t rules__nodeports_jump(const struct rules_ctx *ctx, struct rules_buf *out)
{
	const struct rules_opts *o = ctx->opts;
	size_t i, n = 0;

	if (o->nodeport_match_all) {
		rules_buf_adds(out, "-A KUBE-SERVICES -m comment --comment " NODEPORTS_COMMENT
				    " -m addrtype --dst-type LOCAL");
		/* localhost NodePorts never work on IPv6, and on IPv4 only
		 * with route_localnet. */
		if (ctx->family == RULES_IPV6)
			rules_buf_adds(out, " ! -d ::1/128");
		else if (!o->localhost_nodeports)
			rules_buf_adds(out, " ! -d 127.0.0.0/8");
		rules_buf_adds(out, " -j KUBE-NODEPORTS\n");
		return 1;
	}
	for (i = 0; i < o->n_nodeport_ips; i++) {
		const char *ip = o->nodeport_ips[i];

		if (is_loopback(ctx->family, ip) &&
		    (ctx->family == RULES_IPV6 || !o->localhost_nodeports))
			continue;
		rules_buf_adds(out,
			       "-A KUBE-SERVICES -m comment --comment " NODEPORTS_COMMENT " -d ");
		rules_buf_adds(out, ip);
		rules_buf_adds(out, " -j KUBE-NODEPORTS\n");
		n++;
	}
	return n;
}

/* A slot's rules: as they are, or (tree layout) the jumps to its tree. */
static void add_slot_or_head(struct rules_buf *out, const struct doc *d, enum rules_slot s)
{
	if (d->tree_on && rules__dispatch_prefix(s))
		rules_buf_add(out, d->tree[s].head.data, d->tree[s].head.len);
	else
		add_slot(out, d, s);
}

static size_t slot_rules(const struct doc *d, enum rules_slot s)
{
	size_t n = 0, i;

	if (!d->tree_on || !rules__dispatch_prefix(s))
		return d->n_slot[s];
	for (i = 0; i < d->tree[s].n_chains; i++)
		n += d->tree[s].chains[i].n_rules;
	return n + d->tree[s].n_head;
}

static const enum rules_slot filter_tree_slots[] = { RULES_SLOT_FILTER_SERVICES,
						     RULES_SLOT_FILTER_EXTERNAL,
						     RULES_SLOT_FILTER_FIREWALL };

static void write_filter(const struct rules_ctx *ctx, const struct doc *d, struct rules_buf *out,
			 struct rules_stats *stats)
{
	struct rules_buf fw_decl, fixed;
	size_t n_fixed, i, k, n_tree_chains = 0;

	rules_buf_init(&fw_decl, 0);
	rules_buf_init(&fixed, 0);
	n_fixed = rules__fixed_filter(ctx, &fw_decl, &fixed);

	rules_buf_adds(out, "*filter\n");
	rules__chain_line(out, "KUBE-SERVICES");
	rules__chain_line(out, "KUBE-EXTERNAL-SERVICES");
	rules__chain_line(out, "KUBE-FORWARD");
	rules__chain_line(out, "KUBE-NODEPORTS");
	rules__chain_line(out, "KUBE-PROXY-FIREWALL");
	rules_buf_add(out, fw_decl.data, fw_decl.len);
	for (k = 0; d->tree_on && k < 3; k++)
		for (i = 0; i < d->tree[filter_tree_slots[k]].n_chains; i++, n_tree_chains++)
			rules__chain_line(out, d->tree[filter_tree_slots[k]].chains[i].name);
	add_slot_or_head(out, d, RULES_SLOT_FILTER_SERVICES);
	add_slot_or_head(out, d, RULES_SLOT_FILTER_EXTERNAL);
	add_slot(out, d, RULES_SLOT_FILTER_NODEPORTS);
	add_slot_or_head(out, d, RULES_SLOT_FILTER_FIREWALL);
	rules_buf_add(out, fixed.data, fixed.len);
	for (k = 0; d->tree_on && k < 3; k++)
		rules_buf_add(out, d->tree[filter_tree_slots[k]].text.data,
			      d->tree[filter_tree_slots[k]].text.len);
	rules_buf_adds(out, "COMMIT\n");
	if (fixed.err && !out->err)
		out->err = fixed.err;

	if (stats) {
		stats->filter_chains = 5 + (fw_decl.len > 0) + n_tree_chains;
		stats->filter_rules = n_fixed + slot_rules(d, RULES_SLOT_FILTER_SERVICES) +
				      slot_rules(d, RULES_SLOT_FILTER_EXTERNAL) +
				      d->n_slot[RULES_SLOT_FILTER_NODEPORTS] +
				      slot_rules(d, RULES_SLOT_FILTER_FIREWALL);
	}
	rules_buf_cleanup(&fw_decl);
	rules_buf_cleanup(&fixed);
}

static void write_nat(const struct rules_ctx *ctx, const struct rules_state *st,
		      const struct doc *d, struct rules_buf *out, struct rules_stats *stats)
{
	size_t i, n_rules;

	rules_buf_adds(out, "*nat\n");
	rules__chain_line(out, "KUBE-SERVICES");
	rules__chain_line(out, "KUBE-NODEPORTS");
	rules__chain_line(out, "KUBE-POSTROUTING");
	rules__chain_line(out, "KUBE-MARK-MASQ");
	rules_buf_add(out, d->own_chains.data, d->own_chains.len);
	for (i = 0; i < d->tree[RULES_SLOT_NAT_SERVICES].n_chains; i++)
		rules__chain_line(out, d->tree[RULES_SLOT_NAT_SERVICES].chains[i].name);
	for (i = 0; i < st->n_stale_chains; i++)
		rules__chain_line(out, st->stale_chains[i]);

	n_rules = rules__fixed_nat(ctx, out);
	add_slot_or_head(out, d, RULES_SLOT_NAT_SERVICES);
	n_rules += rules__nodeports_jump(ctx, out);
	add_slot(out, d, RULES_SLOT_NAT_NODEPORTS);
	rules_buf_add(out, d->own_rules.data, d->own_rules.len);
	rules_buf_add(out, d->tree[RULES_SLOT_NAT_SERVICES].text.data,
		      d->tree[RULES_SLOT_NAT_SERVICES].text.len);
	for (i = 0; i < st->n_stale_chains; i++) {
		rules_buf_adds(out, "-X ");
		rules_buf_adds(out, st->stale_chains[i]);
		rules_buf_addc(out, '\n');
	}
	rules_buf_adds(out, "COMMIT\n");

	if (stats) {
		stats->nat_chains = 4 + d->n_own_chains +
				    d->tree[RULES_SLOT_NAT_SERVICES].n_chains + st->n_stale_chains;
		stats->nat_rules = n_rules + slot_rules(d, RULES_SLOT_NAT_SERVICES) +
				   d->n_slot[RULES_SLOT_NAT_NODEPORTS] + d->n_own_rules;
	}
}

int rules_render(const struct rules_state *st, const struct rules_opts *opts, struct rules_buf *out,
		 struct rules_stats *stats)
{
	struct rules_port_out po;
	struct rules_ctx ctx;
	struct doc d;
	size_t i;
	int err = 0;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	rules_ctx_init(&ctx, st, opts);
	rules_port_out_init(&po);
	doc_init(&d);

	for (i = 0; i < st->n_ports; i++) {
		rules_port_out_reset(&po);
		err = rules_render_port(&ctx, st->ports[i], &po);
		if (err)
			goto out;
		doc_add_port(&d, &po, ctx.tree);
		if (stats) {
			stats->no_local_internal += po.no_local_internal;
			stats->no_local_external += po.no_local_external;
		}
	}
	err = doc_err(&d);
	if (err)
		goto out;
	if (ctx.tree) {
		int sl;

		d.tree_on = true;
		for (sl = 0; sl < RULES_SLOT__COUNT && !err; sl++)
			if (rules__dispatch_prefix((enum rules_slot)sl))
				err = rules__dispatch_lines(&ctx, (enum rules_slot)sl,
							    d.tree_lines[sl].data,
							    d.tree_lines[sl].len, &d.tree[sl]);
		if (err)
			goto out;
		if (stats) {
			stats->tree = true;
			stats->dispatch_chains = d.tree[RULES_SLOT_NAT_SERVICES].n_chains;
			stats->max_walk = d.tree[RULES_SLOT_NAT_SERVICES].max_walk;
		}
	}

	write_filter(&ctx, &d, out, stats);
	write_nat(&ctx, st, &d, out, stats);
	err = out->err;
out:
	doc_cleanup(&d);
	rules_port_out_cleanup(&po);
	return err;
}
