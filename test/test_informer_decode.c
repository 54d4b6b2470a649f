/*
 * test/test_informer_decode.c - Kubernetes JSON -> structs (informer/decode.c).
 *
 *   - the upstream round-trip fixtures (every field set, placeholder values):
 *     what each placeholder costs, field by field;
 *   - the realistic ServiceList and EndpointSliceList examples, value by value;
 *   - a table of broken objects: a valid object with one member replaced (or
 *     removed), the expected verdict, and the one message it must produce;
 *   - RFC 3339 trigger times, kinds, labels, messages that stay short.
 * Files are read from test/data/informer/ (run from the repository root).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "informer/decode.h"

#define DATA "test/data/informer/"

/* ---- helpers ----------------------------------------------------------------------------- */

struct diags {
	char *msg[32];
	size_t n;
};

static void collect(void *arg, const char *msg)
{
	struct diags *d = arg;

	assert_non_null(msg);
	assert_true(d->n < sizeof(d->msg) / sizeof(d->msg[0]));
	d->msg[d->n] = strdup(msg);
	assert_non_null(d->msg[d->n]);
	d->n++;
}

static void diags_clear(struct diags *d)
{
	while (d->n)
		free(d->msg[--d->n]);
}

static void print_diags(const struct diags *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		print_error("  diag: %s\n", d->msg[i]);
}

/* Exactly one message was produced, and it is @want. */
static void assert_one_diag(const struct diags *d, const char *want)
{
	if (d->n != 1 || strcmp(d->msg[0], want) != 0) {
		print_diags(d);
		fail_msg("expected the single message \"%s\"", want);
	}
}

/* The last message is @want (problems found before it were reported first). */
static void assert_last_diag(const struct diags *d, const char *want)
{
	if (!d->n || strcmp(d->msg[d->n - 1], want) != 0) {
		print_diags(d);
		fail_msg("expected the last message to be \"%s\"", want);
	}
}

static void assert_no_diag(const struct diags *d)
{
	if (d->n) {
		print_diags(d);
		fail_msg("expected no message");
	}
}

static void assert_str(const char *got, const char *want)
{
	if (!want)
		assert_null(got);
	else if (!got)
		fail_msg("expected \"%s\", got NULL", want);
	else
		assert_string_equal(got, want);
}

static json_t *load(const char *path)
{
	json_error_t e;
	json_t *v = json_load_file(path, 0, &e);

	if (!v)
		fail_msg("%s:%d: %s", path, e.line, e.text);
	return v;
}

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

	if (!v)
		fail_msg("bad test JSON at column %d: %s: %s", e.column, e.text, text);
	return v;
}

/* The next segment of JSON pointer @p into @seg (with ~1 and ~0 undone); NULL at the end. */
static const char *pointer_next(const char *p, char *seg, size_t len)
{
	size_t n = 0;

	if (*p != '/')
		return NULL;
	for (p++; *p && *p != '/' && n + 1 < len; p++) {
		if (p[0] == '~' && (p[1] == '0' || p[1] == '1'))
			seg[n++] = *++p == '1' ? '/' : '~';
		else
			seg[n++] = *p;
	}
	seg[n] = '\0';
	return p;
}

/* Set the member at JSON pointer @ptr of @root to the JSON text @value, or remove it (NULL). */
static void patch(json_t *root, const char *ptr, const char *value)
{
	json_t *parent = NULL, *cur = root;
	char seg[128], last[128] = "";
	const char *p = ptr;

	while ((p = pointer_next(p, seg, sizeof(seg)))) {
		parent = cur;
		strcpy(last, seg);
		cur = json_is_array(cur) ? json_array_get(cur, strtoul(seg, NULL, 10))
					 : json_object_get(cur, seg);
		if (!*p)
			break;
		assert_non_null(cur);
	}
	assert_non_null(parent);
	if (json_is_array(parent)) {
		size_t i = strtoul(last, NULL, 10);

		if (value)
			assert_int_equal(json_array_set_new(parent, i, parse(value)), 0);
		else
			assert_int_equal(json_array_remove(parent, i), 0);
	} else if (value) {
		assert_int_equal(json_object_set_new(parent, last, parse(value)), 0);
	} else {
		assert_int_equal(json_object_del(parent, last), 0);
	}
}

/* ---- the upstream full-field fixtures ------------------------------------------------------ */

/*
 * The Service fixture is rejected for three placeholders the proxy cannot
 * live with, one at a time in decoding order; with those three replaced,
 * every other placeholder is tolerated: dropped entries and unknown enum
 * values are reported, the rest is kept.
 */
static void fixture_service_rejected_for_three_placeholders_then_tolerated(void **state)
{
	static const struct {
		const char *ptr, *fix, *msg;
	} steps[] = {
		{ "/spec/type", "\"LoadBalancer\"",
		  "Service namespaceValue/nameValue: spec.type \"typeValue\": unknown Service type, object ignored" },
		{ "/spec/clusterIP", "\"10.96.0.10\"",
		  "Service namespaceValue/nameValue: spec.clusterIP \"clusterIPValue\": invalid IP, object ignored" },
		{ "/spec/ports/0/protocol", "\"UDP\"",
		  "Service namespaceValue/nameValue: spec.ports[0].protocol \"protocolValue\": unknown protocol, object ignored" },
	};
	static const char *const tolerated[] = {
		"Service namespaceValue/nameValue: spec.clusterIPs[0] \"clusterIPsValue\": invalid IP, kept without an address",
		"Service namespaceValue/nameValue: spec.ipFamilies[0] \"ipFamiliesValue\": unknown IP family, kept as none",
		"Service namespaceValue/nameValue: spec.sessionAffinity \"sessionAffinityValue\": unknown session affinity, treated as None",
		"Service namespaceValue/nameValue: spec.externalIPs[0] \"externalIPsValue\": invalid IP, ignored",
		"Service namespaceValue/nameValue: spec.loadBalancerSourceRanges[0] \"loadBalancerSourceRangesValue\": invalid CIDR, ignored",
		"Service namespaceValue/nameValue: spec.externalTrafficPolicy \"externalTrafficPolicyValue\": unknown traffic policy, treated as Cluster",
		"Service namespaceValue/nameValue: spec.internalTrafficPolicy \"internalTrafficPolicyValue\": unknown traffic policy, treated as Cluster",
		"Service namespaceValue/nameValue: status.loadBalancer.ingress[0].ip \"ipValue\": invalid IP, entry kept without IP",
		"Service namespaceValue/nameValue: status.loadBalancer.ingress[0].ipMode \"ipModeValue\": unknown ipMode, treated as Proxy",
	};
	json_t *obj = load(DATA "fixtures/core.v1.Service.json");
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	struct informer_service *svc;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		assert_int_equal(informer_decode_service(obj, &diag, &svc), -EPROTO);
		assert_null(svc);
		assert_last_diag(&d, steps[i].msg);
		diags_clear(&d);
		patch(obj, steps[i].ptr, steps[i].fix);
	}
	assert_int_equal(informer_decode_service(obj, &diag, &svc), 0);
	assert_int_equal(d.n, sizeof(tolerated) / sizeof(tolerated[0]));
	for (i = 0; i < d.n; i++)
		assert_string_equal(d.msg[i], tolerated[i]);

	assert_string_equal(svc->meta.name, "nameValue");
	assert_string_equal(svc->meta.namespace, "namespaceValue");
	assert_string_equal(svc->meta.uid, "uidValue");
	assert_string_equal(svc->meta.resource_version, "resourceVersionValue");
	assert_true(svc->meta.deleting);
	assert_int_equal(svc->meta.n_labels, 1);
	assert_string_equal(svc->meta.labels[0].key, "labelsKey");
	assert_string_equal(svc->meta.labels[0].value, "labelsValue");
	assert_int_equal(svc->meta.last_change_trigger_ns, 0);
	assert_int_equal(svc->type, INFORMER_SVC_LOAD_BALANCER);
	assert_string_equal(svc->cluster_ip, "10.96.0.10");
	assert_int_equal(svc->n_cluster_ips, 1);
	assert_null(svc->cluster_ips[0].ip);
	assert_int_equal(svc->cluster_ips[0].family, INFORMER_FAMILY_NONE);
	assert_int_equal(svc->n_ip_families, 1);
	assert_int_equal(svc->ip_families[0], INFORMER_FAMILY_NONE);
	assert_int_equal(svc->n_ports, 1);
	assert_string_equal(svc->ports[0].name, "nameValue");
	assert_int_equal(svc->ports[0].protocol, INFORMER_PROTO_UDP);
	assert_int_equal(svc->ports[0].port, 3);
	assert_int_equal(svc->ports[0].target_port, 0);
	assert_string_equal(svc->ports[0].target_port_name, "targetPortValue");
	assert_int_equal(svc->ports[0].node_port, 5);
	assert_string_equal(svc->ports[0].app_protocol, "appProtocolValue");
	assert_false(svc->affinity_client_ip);
	assert_int_equal(svc->affinity_timeout, 1);
	assert_int_equal(svc->n_external_ips, 0);
	assert_int_equal(svc->n_source_ranges, 0);
	assert_int_equal(svc->n_lb_ingress, 1);
	assert_null(svc->lb_ingress[0].ip.ip);
	assert_string_equal(svc->lb_ingress[0].hostname, "hostnameValue");
	assert_int_equal(svc->lb_ingress[0].ip_mode, INFORMER_LB_IP_MODE_PROXY);
	assert_int_equal(svc->external_policy, INFORMER_POLICY_CLUSTER);
	assert_int_equal(svc->internal_policy, INFORMER_POLICY_CLUSTER);
	assert_int_equal(svc->health_check_node_port, 12);
	assert_string_equal(svc->traffic_distribution, "trafficDistributionValue");
	assert_string_equal(svc->external_name, "externalNameValue");
	assert_true(svc->publish_not_ready_addresses);
	informer_service_free(svc);
	diags_clear(&d);
	json_decref(obj);
}

/* The EndpointSlice fixture decodes as it is; its placeholders cost its port. */
static void fixture_endpointslice_decodes_placeholders_cost_its_port(void **state)
{
	json_t *obj = load(DATA "fixtures/discovery.k8s.io.v1.EndpointSlice.json");
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	struct informer_endpointslice *eps;
	const struct informer_endpoint *ep;

	(void)state;
	assert_int_equal(informer_decode_endpointslice(obj, &diag, &eps), 0);
	assert_int_equal(d.n, 2);
	assert_string_equal(
		d.msg[0],
		"EndpointSlice namespaceValue/nameValue: addressType \"addressTypeValue\": unknown address type, slice not used by the proxy");
	assert_string_equal(
		d.msg[1],
		"EndpointSlice namespaceValue/nameValue: ports[0].protocol \"protocolValue\": unknown protocol, port ignored");
	diags_clear(&d);
	assert_string_equal(eps->meta.name, "nameValue");
	assert_true(eps->meta.deleting);
	assert_null(eps->service_name);
	assert_int_equal(eps->address_type, INFORMER_ADDR_OTHER);
	assert_int_equal(eps->n_endpoints, 1);
	ep = &eps->endpoints[0];
	/* not an IP slice: no address for the proxy, but the endpoint is kept */
	assert_null(ep->address.ip);
	assert_int_equal(ep->ready, INFORMER_COND_TRUE);
	assert_int_equal(ep->serving, INFORMER_COND_TRUE);
	assert_int_equal(ep->terminating, INFORMER_COND_TRUE);
	assert_string_equal(ep->hostname, "hostnameValue");
	assert_string_equal(ep->node_name, "nodeNameValue");
	assert_string_equal(ep->zone, "zoneValue");
	assert_int_equal(ep->n_hint_zones, 1);
	assert_string_equal(ep->hint_zones[0], "nameValue");
	assert_int_equal(ep->n_hint_nodes, 1);
	assert_string_equal(ep->hint_nodes[0], "nameValue");
	assert_int_equal(eps->n_ports, 0);
	informer_endpointslice_free(eps);

	/* as an IPv4 slice its only address is no IP; with a real protocol the port stays */
	patch(obj, "/addressType", "\"IPv4\"");
	patch(obj, "/ports/0/protocol", "\"SCTP\"");
	assert_int_equal(informer_decode_endpointslice(obj, &diag, &eps), 0);
	assert_one_diag(
		&d,
		"EndpointSlice namespaceValue/nameValue: endpoints[0].addresses[0] \"addressesValue\": invalid IP, endpoint ignored");
	diags_clear(&d);
	assert_int_equal(eps->n_endpoints, 0);
	assert_int_equal(eps->n_ports, 1);
	assert_string_equal(eps->ports[0].name, "nameValue");
	assert_int_equal(eps->ports[0].protocol, INFORMER_PROTO_SCTP);
	assert_int_equal(eps->ports[0].port, 3);
	assert_string_equal(eps->ports[0].app_protocol, "appProtocolValue");
	informer_endpointslice_free(eps);
	json_decref(obj);
}

/* ---- the realistic examples ------------------------------------------------------------------ */

static struct informer_service *service_item(const json_t *list, size_t i)
{
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	struct informer_service *svc;

	assert_int_equal(informer_decode_service(json_array_get(json_object_get(list, "items"), i),
						 &diag, &svc),
			 0);
	assert_no_diag(&d);
	return svc;
}

static void example_default_and_dns_services_decode_value_by_value(void **state)
{
	json_t *list = load(DATA "examples/service-list.json");
	struct informer_service *svc;

	(void)state;
	svc = service_item(list, 0);
	assert_string_equal(svc->meta.namespace, "default");
	assert_string_equal(svc->meta.name, "kubernetes");
	assert_string_equal(svc->meta.uid, "0b1f7d0a-5a7e-4c3e-9d57-1b1c2f3a4d01");
	assert_string_equal(svc->meta.resource_version, "196");
	assert_false(svc->meta.deleting);
	assert_int_equal(svc->meta.n_labels, 2);
	assert_string_equal(svc->meta.labels[0].key, "component");
	assert_string_equal(svc->meta.labels[1].key, "provider");
	assert_string_equal(informer_meta_label(&svc->meta, "provider"), "kubernetes");
	assert_null(informer_meta_label(&svc->meta, "kubernetes.io/service-name"));
	assert_int_equal(svc->type, INFORMER_SVC_CLUSTER_IP);
	assert_string_equal(svc->cluster_ip, "10.96.0.1");
	assert_int_equal(svc->n_ports, 1);
	assert_string_equal(svc->ports[0].name, "https");
	assert_int_equal(svc->ports[0].protocol, INFORMER_PROTO_TCP);
	assert_int_equal(svc->ports[0].port, 443);
	assert_int_equal(svc->ports[0].target_port, 6443);
	assert_null(svc->ports[0].target_port_name);
	assert_int_equal(svc->ports[0].node_port, 0);
	assert_false(svc->affinity_client_ip);
	assert_int_equal(svc->affinity_timeout, 10800);
	assert_int_equal(svc->health_check_node_port, 0);
	assert_null(svc->traffic_distribution);
	informer_service_free(svc);

	svc = service_item(list, 1);
	assert_string_equal(svc->meta.name, "kube-dns");
	assert_int_equal(svc->n_ports, 3);
	assert_string_equal(svc->ports[0].name, "dns");
	assert_int_equal(svc->ports[0].protocol, INFORMER_PROTO_UDP);
	assert_int_equal(svc->ports[0].port, 53);
	assert_string_equal(svc->ports[1].name, "dns-tcp");
	assert_int_equal(svc->ports[1].protocol, INFORMER_PROTO_TCP);
	assert_string_equal(svc->ports[2].name, "metrics");
	assert_int_equal(svc->ports[2].port, 9153);
	assert_int_equal(svc->meta.n_labels, 3);
	assert_string_equal(svc->meta.labels[2].key, "kubernetes.io/name");
	informer_service_free(svc);
	json_decref(list);
}

static void example_frontend_dual_stack_lb_decodes_value_by_value(void **state)
{
	json_t *list = load(DATA "examples/service-list.json");
	struct informer_service *svc = service_item(list, 2);

	(void)state;
	assert_string_equal(svc->meta.namespace, "shop");
	assert_string_equal(svc->meta.name, "frontend");
	assert_int_equal(svc->type, INFORMER_SVC_LOAD_BALANCER);
	assert_string_equal(svc->cluster_ip, "10.96.117.42");
	assert_int_equal(svc->n_cluster_ips, 2);
	assert_string_equal(svc->cluster_ips[0].ip, "10.96.117.42");
	assert_int_equal(svc->cluster_ips[0].family, INFORMER_IPV4);
	assert_string_equal(svc->cluster_ips[1].ip, "fd00:10:96::2a17");
	assert_int_equal(svc->cluster_ips[1].family, INFORMER_IPV6);
	assert_int_equal(svc->n_ip_families, 2);
	assert_int_equal(svc->ip_families[0], INFORMER_IPV4);
	assert_int_equal(svc->ip_families[1], INFORMER_IPV6);
	assert_int_equal(svc->n_ports, 2);
	assert_string_equal(svc->ports[0].name, "http");
	assert_int_equal(svc->ports[0].port, 80);
	assert_int_equal(svc->ports[0].target_port, 0);
	assert_string_equal(svc->ports[0].target_port_name, "http");
	assert_int_equal(svc->ports[0].node_port, 31080);
	assert_string_equal(svc->ports[0].app_protocol, "http");
	assert_string_equal(svc->ports[1].name, "https");
	assert_int_equal(svc->ports[1].target_port, 8443);
	assert_int_equal(svc->ports[1].node_port, 31443);
	assert_null(svc->ports[1].app_protocol);
	assert_int_equal(svc->n_external_ips, 1);
	assert_string_equal(svc->external_ips[0].ip, "192.0.2.50");
	assert_true(svc->affinity_client_ip);
	assert_int_equal(svc->affinity_timeout, 10800);
	assert_int_equal(svc->n_source_ranges, 2);
	assert_string_equal(svc->source_ranges[0].cidr, "198.51.100.0/24");
	assert_string_equal(svc->source_ranges[1].cidr, "203.0.113.7/32");
	assert_int_equal(svc->source_ranges[1].family, INFORMER_IPV4);
	assert_int_equal(svc->external_policy, INFORMER_POLICY_LOCAL);
	assert_int_equal(svc->internal_policy, INFORMER_POLICY_CLUSTER);
	assert_int_equal(svc->health_check_node_port, 32001);
	assert_string_equal(svc->traffic_distribution, "PreferClose");
	assert_int_equal(svc->n_lb_ingress, 2);
	assert_string_equal(svc->lb_ingress[0].ip.ip, "203.0.113.10");
	assert_int_equal(svc->lb_ingress[0].ip_mode, INFORMER_LB_IP_MODE_VIP);
	assert_null(svc->lb_ingress[0].hostname);
	assert_string_equal(svc->lb_ingress[1].ip.ip, "2001:db8::10");
	assert_int_equal(svc->lb_ingress[1].ip.family, INFORMER_IPV6);
	assert_null(svc->external_name);
	assert_false(svc->publish_not_ready_addresses);
	informer_service_free(svc);
	json_decref(list);
}

static void example_nodeport_externalname_headless_decode(void **state)
{
	json_t *list = load(DATA "examples/service-list.json");
	struct informer_service *svc;

	(void)state;
	svc = service_item(list, 3);
	assert_string_equal(svc->meta.name, "cart");
	assert_int_equal(svc->type, INFORMER_SVC_NODE_PORT);
	assert_int_equal(svc->internal_policy, INFORMER_POLICY_LOCAL);
	assert_int_equal(svc->external_policy, INFORMER_POLICY_CLUSTER);
	assert_string_equal(svc->ports[0].app_protocol, "kubernetes.io/h2c");
	assert_int_equal(svc->n_lb_ingress, 0);
	informer_service_free(svc);

	svc = service_item(list, 4);
	assert_string_equal(svc->meta.name, "payments-db");
	assert_int_equal(svc->type, INFORMER_SVC_EXTERNAL_NAME);
	assert_string_equal(svc->cluster_ip, "");
	assert_string_equal(svc->external_name, "db.payments.example.com");
	assert_int_equal(svc->n_ports, 0);
	assert_int_equal(svc->n_cluster_ips, 0);
	assert_int_equal(svc->meta.n_labels, 0);
	informer_service_free(svc);

	svc = service_item(list, 5);
	assert_string_equal(svc->meta.name, "orders-headless");
	assert_string_equal(svc->cluster_ip, "None");
	assert_int_equal(svc->n_cluster_ips, 1);
	assert_null(svc->cluster_ips[0].ip);
	assert_int_equal(svc->cluster_ips[0].family, INFORMER_FAMILY_NONE);
	informer_service_free(svc);
	json_decref(list);
}

static struct informer_endpointslice *slice_item(const json_t *list, size_t i)
{
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	struct informer_endpointslice *eps;

	assert_int_equal(informer_decode_endpointslice(
				 json_array_get(json_object_get(list, "items"), i), &diag, &eps),
			 0);
	assert_no_diag(&d);
	return eps;
}

static void assert_endpoint(const struct informer_endpoint *ep, const char *ip,
			    enum informer_cond ready, enum informer_cond serving,
			    enum informer_cond terminating, const char *node, const char *zone)
{
	assert_str(ep->address.ip, ip);
	assert_int_equal(ep->ready, ready);
	assert_int_equal(ep->serving, serving);
	assert_int_equal(ep->terminating, terminating);
	assert_str(ep->node_name, node);
	assert_str(ep->zone, zone);
}

static void example_slices_keep_tristate_conditions_hints_and_nulls(void **state)
{
	const enum informer_cond T = INFORMER_COND_TRUE, F = INFORMER_COND_FALSE,
				 U = INFORMER_COND_UNSET;
	json_t *list = load(DATA "examples/endpointslice-list.json");
	struct informer_endpointslice *eps;

	(void)state;
	eps = slice_item(list, 0);
	assert_string_equal(eps->service_name, "kubernetes");
	assert_int_equal(eps->address_type, INFORMER_ADDR_IPV4);
	assert_int_equal(eps->n_endpoints, 1);
	/* only ready is given: serving and terminating stay unset, not false */
	assert_endpoint(&eps->endpoints[0], "172.18.0.2", T, U, U, NULL, NULL);
	assert_int_equal(eps->endpoints[0].address.family, INFORMER_IPV4);
	assert_int_equal(eps->n_ports, 1);
	assert_string_equal(eps->ports[0].name, "https");
	assert_int_equal(eps->ports[0].port, 6443);
	assert_int_equal(eps->meta.last_change_trigger_ns, 0);
	informer_endpointslice_free(eps);

	eps = slice_item(list, 1);
	assert_string_equal(eps->service_name, "kube-dns");
	assert_int_equal(eps->meta.last_change_trigger_ns, 1782897220000000000LL);
	assert_int_equal(eps->n_endpoints, 2);
	assert_endpoint(&eps->endpoints[0], "10.244.0.3", T, T, F, "node-a", "zone-1");
	assert_endpoint(&eps->endpoints[1], "10.244.1.5", T, T, F, "node-b", "zone-2");
	assert_int_equal(eps->endpoints[0].n_hint_zones, 0);
	assert_int_equal(eps->n_ports, 3);
	assert_int_equal(eps->ports[1].protocol, INFORMER_PROTO_UDP);
	assert_null(eps->ports[2].app_protocol);
	informer_endpointslice_free(eps);

	eps = slice_item(list, 2);
	assert_string_equal(eps->service_name, "frontend");
	assert_int_equal(eps->meta.last_change_trigger_ns, 1784709669000000000LL);
	assert_int_equal(eps->n_endpoints, 3);
	assert_endpoint(&eps->endpoints[0], "10.244.0.17", T, T, F, "node-a", "zone-1");
	assert_endpoint(&eps->endpoints[1], "10.244.1.23", F, T, T, "node-b", "zone-2");
	assert_endpoint(&eps->endpoints[2], "10.244.2.9", F, F, F, "node-c", "zone-2");
	assert_int_equal(eps->endpoints[1].n_hint_zones, 1);
	assert_string_equal(eps->endpoints[1].hint_zones[0], "zone-2");
	assert_int_equal(eps->endpoints[1].n_hint_nodes, 0);
	assert_string_equal(eps->ports[0].app_protocol, "http");
	assert_int_equal(eps->ports[0].port, 8080);
	informer_endpointslice_free(eps);

	eps = slice_item(list, 3);
	assert_int_equal(eps->address_type, INFORMER_ADDR_IPV6);
	assert_endpoint(&eps->endpoints[0], "fd00:10:244::11", T, T, F, "node-a", "zone-1");
	assert_int_equal(eps->endpoints[0].address.family, INFORMER_IPV6);
	informer_endpointslice_free(eps);

	/* endpoints: null, ports: null */
	eps = slice_item(list, 4);
	assert_string_equal(eps->service_name, "cart");
	assert_int_equal(eps->n_endpoints, 0);
	assert_int_equal(eps->n_ports, 0);
	informer_endpointslice_free(eps);
	json_decref(list);
}

/* ---- one member broken at a time ---------------------------------------------------------------
 */

static const char base_service[] =
	"{\"kind\":\"Service\",\"apiVersion\":\"v1\","
	"\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\",\"uid\":\"u-1\",\"resourceVersion\":\"7\","
	" \"labels\":{\"app\":\"web\"},\"annotations\":{\"note\":\"x\"}},"
	"\"spec\":{\"type\":\"LoadBalancer\",\"clusterIP\":\"10.96.0.5\","
	" \"clusterIPs\":[\"10.96.0.5\",\"fd00::5\"],\"ipFamilies\":[\"IPv4\",\"IPv6\"],"
	" \"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,\"targetPort\":8080,\"nodePort\":30080},"
	"  {\"name\":\"https\",\"protocol\":\"TCP\",\"port\":443,\"targetPort\":8443,\"nodePort\":30443}],"
	" \"externalIPs\":[\"192.0.2.50\",\"192.0.2.51\"],"
	" \"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":300}},"
	" \"loadBalancerSourceRanges\":[\"198.51.100.0/24\",\"203.0.113.7/32\"],"
	" \"externalTrafficPolicy\":\"Local\",\"internalTrafficPolicy\":\"Cluster\","
	" \"healthCheckNodePort\":32001,\"trafficDistribution\":\"PreferClose\","
	" \"publishNotReadyAddresses\":true},"
	"\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"203.0.113.10\",\"ipMode\":\"VIP\"},"
	" {\"hostname\":\"lb.example.com\"}]}}}";

static const char base_slice[] =
	"{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\","
	"\"metadata\":{\"name\":\"web-abcde\",\"namespace\":\"shop\","
	" \"labels\":{\"kubernetes.io/service-name\":\"web\"}},"
	"\"addressType\":\"IPv4\","
	"\"endpoints\":[{\"addresses\":[\"10.244.0.5\"],"
	"  \"conditions\":{\"ready\":true,\"serving\":true,\"terminating\":false},"
	"  \"nodeName\":\"node-a\",\"zone\":\"zone-a\",\"hostname\":\"web-0\","
	"  \"hints\":{\"forZones\":[{\"name\":\"zone-a\"}],\"forNodes\":[{\"name\":\"node-a\"}]}},"
	" {\"addresses\":[\"10.244.1.6\"],\"conditions\":{\"ready\":false},\"nodeName\":\"node-b\"}],"
	"\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":8080},"
	" {\"name\":\"dns\",\"protocol\":\"UDP\",\"port\":53}]}";

static const char base_node[] =
	"{\"kind\":\"Node\",\"apiVersion\":\"v1\","
	"\"metadata\":{\"name\":\"node-a\",\"labels\":{\"topology.kubernetes.io/zone\":\"zone-a\"}},"
	"\"spec\":{\"podCIDR\":\"10.244.1.0/24\",\"podCIDRs\":[\"10.244.1.0/24\",\"fd00:10:244:1::/64\"],"
	" \"taints\":[{\"key\":\"node-role.kubernetes.io/control-plane\",\"effect\":\"NoSchedule\"}]},"
	"\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.11\"},"
	" {\"type\":\"ExternalIP\",\"address\":\"203.0.113.11\"},"
	" {\"type\":\"Hostname\",\"address\":\"node-a\"}]}}";

struct bad_case {
	enum informer_kind kind;
	const char *ptr;   /* JSON pointer into the base object */
	const char *value; /* JSON text; NULL: remove the member */
	int rc;
	const char *msg; /* the one expected message; NULL: none */
	void (*check)(const void *obj);
};

static void svc_cluster_ip_canonical(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_string_equal(svc->cluster_ip, "10.0.0.1");
}

static void svc_second_cluster_ip_none(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->n_cluster_ips, 2);
	assert_null(svc->cluster_ips[1].ip);
	assert_int_equal(svc->cluster_ips[1].family, INFORMER_FAMILY_NONE);
	assert_int_equal(svc->n_ip_families, 2);
}

static void svc_first_family_none(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->ip_families[0], INFORMER_FAMILY_NONE);
	assert_int_equal(svc->ip_families[1], INFORMER_IPV6);
}

static void svc_target_port_name(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_string_equal(svc->ports[1].target_port_name, "https");
	assert_int_equal(svc->ports[1].target_port, 0);
}

static void svc_port_default_tcp(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->ports[1].protocol, INFORMER_PROTO_TCP);
}

static void svc_port_name_empty(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_string_equal(svc->ports[0].name, "");
}

static void svc_one_external_ip(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->n_external_ips, 1);
	assert_string_equal(svc->external_ips[0].ip, "192.0.2.50");
}

static void svc_external_ip_canonical(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->n_external_ips, 2);
	assert_string_equal(svc->external_ips[1].ip, "192.0.2.51");
}

static void svc_range_trimmed(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->n_source_ranges, 2);
	assert_string_equal(svc->source_ranges[0].cidr, "10.0.0.0/8");
}

static void svc_one_range(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->n_source_ranges, 1);
	assert_string_equal(svc->source_ranges[0].cidr, "203.0.113.7/32");
}

static void svc_range_v6(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_string_equal(svc->source_ranges[0].cidr, "2001:db8::/32");
	assert_int_equal(svc->source_ranges[0].family, INFORMER_IPV6);
}

static void svc_no_affinity(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_false(svc->affinity_client_ip);
}

static void svc_default_timeout(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_true(svc->affinity_client_ip);
	assert_int_equal(svc->affinity_timeout, 10800);
}

static void svc_cluster_policy(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->external_policy, INFORMER_POLICY_CLUSTER);
}

static void svc_not_publish(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_false(svc->publish_not_ready_addresses);
}

static void svc_ingress_without_ip(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->n_lb_ingress, 2);
	assert_null(svc->lb_ingress[0].ip.ip);
	assert_int_equal(svc->lb_ingress[0].ip_mode, INFORMER_LB_IP_MODE_VIP);
}

static void svc_ingress_canonical(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_string_equal(svc->lb_ingress[0].ip.ip, "1.2.3.4");
}

static void svc_ingress_proxy(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->lb_ingress[0].ip_mode, INFORMER_LB_IP_MODE_PROXY);
	assert_int_equal(svc->lb_ingress[1].ip_mode, INFORMER_LB_IP_MODE_UNSET);
}

static void svc_one_ingress(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->n_lb_ingress, 1);
	assert_string_equal(svc->lb_ingress[0].hostname, "lb.example.com");
}

static void svc_no_uid(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_null(svc->meta.uid);
}

static void svc_no_labels(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->meta.n_labels, 0);
}

static void svc_deleting(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_true(svc->meta.deleting);
}

static void svc_empty_spec(const void *obj)
{
	const struct informer_service *svc = obj;

	assert_int_equal(svc->type, INFORMER_SVC_CLUSTER_IP);
	assert_string_equal(svc->cluster_ip, "");
	assert_int_equal(svc->n_ports, 0);
	assert_int_equal(svc->affinity_timeout, 10800);
}

static void eps_first_dropped(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_int_equal(eps->n_endpoints, 1);
	assert_string_equal(eps->endpoints[0].address.ip, "10.244.1.6");
	assert_string_equal(eps->endpoints[0].node_name, "node-b");
	assert_null(eps->endpoints[0].hint_zones);
}

static void eps_address_canonical(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_int_equal(eps->n_endpoints, 2);
	assert_string_equal(eps->endpoints[0].address.ip, "10.1.2.3");
}

static void eps_ready_unset(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_int_equal(eps->endpoints[0].ready, INFORMER_COND_UNSET);
	assert_int_equal(eps->endpoints[0].serving, INFORMER_COND_TRUE);
}

static void eps_no_conditions(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_int_equal(eps->endpoints[0].ready, INFORMER_COND_UNSET);
	assert_int_equal(eps->endpoints[0].serving, INFORMER_COND_UNSET);
	assert_int_equal(eps->endpoints[0].terminating, INFORMER_COND_UNSET);
}

static void eps_no_hostname(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_int_equal(eps->n_endpoints, 2);
	assert_null(eps->endpoints[0].hostname);
}

static void eps_other_type(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_int_equal(eps->address_type, INFORMER_ADDR_OTHER);
	assert_int_equal(eps->n_endpoints, 2);
	assert_null(eps->endpoints[0].address.ip);
}

static void eps_fqdn(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_int_equal(eps->address_type, INFORMER_ADDR_FQDN);
	assert_int_equal(eps->n_endpoints, 2);
	assert_null(eps->endpoints[0].address.ip);
}

static void eps_one_port(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_int_equal(eps->n_ports, 1);
	assert_string_equal(eps->ports[0].name, "dns");
}

static void eps_port_unnamed(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_int_equal(eps->n_ports, 2);
	assert_null(eps->ports[0].name);
}

static void eps_port_empty_name(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_string_equal(eps->ports[0].name, "");
}

static void eps_port_zero(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_int_equal(eps->n_ports, 2);
	assert_int_equal(eps->ports[0].port, 0);
	assert_int_equal(eps->ports[0].protocol, INFORMER_PROTO_TCP);
}

static void eps_no_ports(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_int_equal(eps->n_ports, 0);
}

static void eps_no_service(const void *obj)
{
	const struct informer_endpointslice *eps = obj;

	assert_null(eps->service_name);
}

static void node_one_cidr(const void *obj)
{
	const struct informer_node *node = obj;

	assert_int_equal(node->n_pod_cidrs, 1);
	assert_string_equal(node->pod_cidrs[0].cidr, "10.244.1.0/24");
}

static void node_cidr_16(const void *obj)
{
	const struct informer_node *node = obj;

	assert_int_equal(node->n_pod_cidrs, 1);
	assert_string_equal(node->pod_cidrs[0].cidr, "10.244.0.0/16");
	assert_int_equal(node->pod_cidrs[0].family, INFORMER_IPV4);
}

static void node_no_cidr(const void *obj)
{
	const struct informer_node *node = obj;

	assert_int_equal(node->n_pod_cidrs, 0);
}

static void node_external_only(const void *obj)
{
	const struct informer_node *node = obj;

	assert_int_equal(node->n_addresses, 1);
	assert_int_equal(node->addresses[0].type, INFORMER_NODE_EXTERNAL_IP);
}

static void node_other_ip_kept(const void *obj)
{
	const struct informer_node *node = obj;

	assert_int_equal(node->n_addresses, 3);
	assert_int_equal(node->addresses[2].type, INFORMER_NODE_OTHER);
	assert_string_equal(node->addresses[2].ip.ip, "192.168.0.11");
}

static void node_no_taints(const void *obj)
{
	const struct informer_node *node = obj;

	assert_int_equal(node->n_taints, 0);
}

static void node_no_namespace(const void *obj)
{
	const struct informer_node *node = obj;

	assert_null(node->meta.namespace);
}

#define SVC  INFORMER_KIND_SERVICE
#define EPS  INFORMER_KIND_ENDPOINTSLICE
#define NODE INFORMER_KIND_NODE
#define S    "Service shop/web: "
#define E    "EndpointSlice shop/web-abcde: "
#define N    "Node node-a: "

static const struct bad_case bad_cases[] = {
	/* metadata */
	{ SVC, "/metadata/name", NULL, -EPROTO,
	  "Service shop/(no name): metadata.name: missing, object ignored", NULL },
	{ SVC, "/metadata/name", "42", -EPROTO,
	  "Service shop/(no name): metadata.name 42: not a string, object ignored", NULL },
	{ SVC, "/metadata/name", "\"\"", -EPROTO,
	  "Service shop/: metadata.name \"\": empty, object ignored", NULL },
	{ SVC, "/metadata/namespace", NULL, -EPROTO,
	  "Service web: metadata.namespace: missing, object ignored", NULL },
	{ SVC, "/metadata/namespace", "[]", -EPROTO,
	  "Service web: metadata.namespace []: not a string, object ignored", NULL },
	{ SVC, "/metadata", "\"x\"", -EPROTO,
	  "Service (no name): metadata \"x\": not an object, object ignored", NULL },
	{ SVC, "/metadata", NULL, -EPROTO,
	  "Service (no name): metadata.name: missing, object ignored", NULL },
	{ SVC, "/metadata/labels", "[\"app\"]", -EPROTO,
	  S "metadata.labels [\"app\"]: not an object, object ignored", NULL },
	{ SVC, "/metadata/labels/app", "1", 0,
	  S "metadata.labels[\"app\"] 1: not a string, label ignored", svc_no_labels },
	{ SVC, "/metadata/uid", "5", 0, S "metadata.uid 5: not a string, ignored", svc_no_uid },
	{ SVC, "/metadata/deletionTimestamp", "\"2026-07-20T14:02:41Z\"", 0, NULL, svc_deleting },
	{ SVC, "/metadata/annotations", "7", 0, S "metadata.annotations 7: not an object, ignored",
	  NULL },
	/* spec, status */
	{ SVC, "/spec", "\"x\"", -EPROTO, S "spec \"x\": not an object, object ignored", NULL },
	{ SVC, "/spec", NULL, 0, NULL, svc_empty_spec },
	{ SVC, "/spec", "{}", 0, NULL, svc_empty_spec },
	{ SVC, "/status", "[]", -EPROTO, S "status []: not an object, object ignored", NULL },
	{ SVC, "/status/loadBalancer", "1", -EPROTO,
	  S "status.loadBalancer 1: not an object, object ignored", NULL },
	{ SVC, "/spec/type", "\"Foo\"", -EPROTO,
	  S "spec.type \"Foo\": unknown Service type, object ignored", NULL },
	{ SVC, "/spec/type", "1", -EPROTO, S "spec.type 1: not a string, object ignored", NULL },
	{ SVC, "/spec/type", "null", 0, NULL, NULL },
	{ SVC, "/spec/clusterIP", "\"10.0.0.256\"", -EPROTO,
	  S "spec.clusterIP \"10.0.0.256\": invalid IP, object ignored", NULL },
	{ SVC, "/spec/clusterIP", "\"10.0.0.1 \"", -EPROTO,
	  S "spec.clusterIP \"10.0.0.1 \": invalid IP, object ignored", NULL },
	{ SVC, "/spec/clusterIP", "\"010.000.000.001\"", 0, NULL, svc_cluster_ip_canonical },
	{ SVC, "/spec/clusterIP", "5", -EPROTO, S "spec.clusterIP 5: not a string, object ignored",
	  NULL },
	{ SVC, "/spec/clusterIPs", "\"10.0.0.1\"", -EPROTO,
	  S "spec.clusterIPs \"10.0.0.1\": not an array, object ignored", NULL },
	{ SVC, "/spec/clusterIPs/1", "\"zzz\"", 0,
	  S "spec.clusterIPs[1] \"zzz\": invalid IP, kept without an address",
	  svc_second_cluster_ip_none },
	{ SVC, "/spec/clusterIPs/1", "{}", 0,
	  S "spec.clusterIPs[1] {}: invalid IP, kept without an address",
	  svc_second_cluster_ip_none },
	{ SVC, "/spec/ipFamilies/0", "\"IPv5\"", 0,
	  S "spec.ipFamilies[0] \"IPv5\": unknown IP family, kept as none", svc_first_family_none },
	{ SVC, "/spec/ipFamilies", "{}", -EPROTO,
	  S "spec.ipFamilies {}: not an array, object ignored", NULL },
	/* ports: every problem rejects the Service */
	{ SVC, "/spec/ports", "\"80\"", -EPROTO,
	  S "spec.ports \"80\": not an array, object ignored", NULL },
	{ SVC, "/spec/ports/1", "\"x\"", -EPROTO,
	  S "spec.ports[1] \"x\": not an object, object ignored", NULL },
	{ SVC, "/spec/ports/1/port", "70000", -EPROTO,
	  S "spec.ports[1].port 70000: out of range, object ignored", NULL },
	{ SVC, "/spec/ports/1/port", "0", -EPROTO,
	  S "spec.ports[1].port 0: out of range, object ignored", NULL },
	{ SVC, "/spec/ports/1/port", "-443", -EPROTO,
	  S "spec.ports[1].port -443: out of range, object ignored", NULL },
	{ SVC, "/spec/ports/1/port", "\"443\"", -EPROTO,
	  S "spec.ports[1].port \"443\": not an integer, object ignored", NULL },
	{ SVC, "/spec/ports/1/port", "443.0", -EPROTO,
	  S "spec.ports[1].port 443.0: not an integer, object ignored", NULL },
	{ SVC, "/spec/ports/1/port", NULL, -EPROTO, S "spec.ports[1].port: missing, object ignored",
	  NULL },
	{ SVC, "/spec/ports/1/port", "null", -EPROTO,
	  S "spec.ports[1].port: missing, object ignored", NULL },
	{ SVC, "/spec/ports/1/nodePort", "65536", -EPROTO,
	  S "spec.ports[1].nodePort 65536: out of range, object ignored", NULL },
	{ SVC, "/spec/ports/1/nodePort", "-1", -EPROTO,
	  S "spec.ports[1].nodePort -1: out of range, object ignored", NULL },
	{ SVC, "/spec/ports/1/targetPort", "65536", -EPROTO,
	  S "spec.ports[1].targetPort 65536: out of range, object ignored", NULL },
	{ SVC, "/spec/ports/1/targetPort", "true", -EPROTO,
	  S "spec.ports[1].targetPort true: not an integer, object ignored", NULL },
	{ SVC, "/spec/ports/1/targetPort", "\"https\"", 0, NULL, svc_target_port_name },
	{ SVC, "/spec/ports/1/protocol", "\"ICMP\"", -EPROTO,
	  S "spec.ports[1].protocol \"ICMP\": unknown protocol, object ignored", NULL },
	{ SVC, "/spec/ports/1/protocol", "\"tcp\"", -EPROTO,
	  S "spec.ports[1].protocol \"tcp\": unknown protocol, object ignored", NULL },
	{ SVC, "/spec/ports/1/protocol", NULL, 0, NULL, svc_port_default_tcp },
	{ SVC, "/spec/ports/0/name", "7", -EPROTO,
	  S "spec.ports[0].name 7: not a string, object ignored", NULL },
	{ SVC, "/spec/ports/0/name", NULL, 0, NULL, svc_port_name_empty },
	{ SVC, "/spec/ports/0/appProtocol", "[]", 0,
	  S "spec.ports[0].appProtocol []: not a string, ignored", NULL },
	/* lists where a bad entry costs just the entry */
	{ SVC, "/spec/externalIPs/1", "\"1.2.3\"", 0,
	  S "spec.externalIPs[1] \"1.2.3\": invalid IP, ignored", svc_one_external_ip },
	{ SVC, "/spec/externalIPs/1", "false", 0,
	  S "spec.externalIPs[1] false: not a string, ignored", svc_one_external_ip },
	{ SVC, "/spec/externalIPs/1", "\"192.000.002.051\"", 0, NULL, svc_external_ip_canonical },
	{ SVC, "/spec/externalIPs", "5", -EPROTO,
	  S "spec.externalIPs 5: not an array, object ignored", NULL },
	{ SVC, "/spec/loadBalancerSourceRanges/0", "\" 10.0.0.0/8\\t\\n\"", 0, NULL,
	  svc_range_trimmed },
	{ SVC, "/spec/loadBalancerSourceRanges/0", "\"\\u00a0\\u200310.1.2.3/8\\u3000\\u0085\"", 0,
	  NULL, svc_range_trimmed },
	{ SVC, "/spec/loadBalancerSourceRanges/0", "\"2001:db8:0:1::/32\"", 0, NULL, svc_range_v6 },
	{ SVC, "/spec/loadBalancerSourceRanges/0", "\"10.0.0.0/33\"", 0,
	  S "spec.loadBalancerSourceRanges[0] \"10.0.0.0/33\": invalid CIDR, ignored",
	  svc_one_range },
	{ SVC, "/spec/loadBalancerSourceRanges/0", "\"10.0.0.0\"", 0,
	  S "spec.loadBalancerSourceRanges[0] \"10.0.0.0\": invalid CIDR, ignored", svc_one_range },
	{ SVC, "/spec/loadBalancerSourceRanges/0", "\" \"", 0,
	  S "spec.loadBalancerSourceRanges[0] \" \": invalid CIDR, ignored", svc_one_range },
	/* session affinity */
	{ SVC, "/spec/sessionAffinity", "\"Sticky\"", 0,
	  S "spec.sessionAffinity \"Sticky\": unknown session affinity, treated as None",
	  svc_no_affinity },
	{ SVC, "/spec/sessionAffinity", "\"None\"", 0, NULL, svc_no_affinity },
	{ SVC, "/spec/sessionAffinity", "1", -EPROTO,
	  S "spec.sessionAffinity 1: not a string, object ignored", NULL },
	{ SVC, "/spec/sessionAffinityConfig/clientIP/timeoutSeconds", "0", -EPROTO,
	  S "spec.sessionAffinityConfig.clientIP.timeoutSeconds 0: out of range, object ignored",
	  NULL },
	{ SVC, "/spec/sessionAffinityConfig/clientIP/timeoutSeconds", "86401", -EPROTO,
	  S
	  "spec.sessionAffinityConfig.clientIP.timeoutSeconds 86401: out of range, object ignored",
	  NULL },
	{ SVC, "/spec/sessionAffinityConfig/clientIP/timeoutSeconds", "\"10\"", -EPROTO,
	  S
	  "spec.sessionAffinityConfig.clientIP.timeoutSeconds \"10\": not an integer, object ignored",
	  NULL },
	{ SVC, "/spec/sessionAffinityConfig/clientIP", "[]", -EPROTO,
	  S "spec.sessionAffinityConfig.clientIP []: not an object, object ignored", NULL },
	{ SVC, "/spec/sessionAffinityConfig", NULL, 0, NULL, svc_default_timeout },
	{ SVC, "/spec/sessionAffinityConfig/clientIP/timeoutSeconds", NULL, 0, NULL,
	  svc_default_timeout },
	/* policies and the rest of spec */
	{ SVC, "/spec/externalTrafficPolicy", "\"Cluster\"", 0, NULL, svc_cluster_policy },
	{ SVC, "/spec/externalTrafficPolicy", "\"Global\"", 0,
	  S "spec.externalTrafficPolicy \"Global\": unknown traffic policy, treated as Cluster",
	  svc_cluster_policy },
	{ SVC, "/spec/externalTrafficPolicy", "\"local\"", 0,
	  S "spec.externalTrafficPolicy \"local\": unknown traffic policy, treated as Cluster",
	  svc_cluster_policy },
	{ SVC, "/spec/externalTrafficPolicy", "1", -EPROTO,
	  S "spec.externalTrafficPolicy 1: not a string, object ignored", NULL },
	{ SVC, "/spec/internalTrafficPolicy", "{}", -EPROTO,
	  S "spec.internalTrafficPolicy {}: not a string, object ignored", NULL },
	{ SVC, "/spec/healthCheckNodePort", "70000", -EPROTO,
	  S "spec.healthCheckNodePort 70000: out of range, object ignored", NULL },
	{ SVC, "/spec/trafficDistribution", "5", -EPROTO,
	  S "spec.trafficDistribution 5: not a string, object ignored", NULL },
	{ SVC, "/spec/externalName", "5", 0, S "spec.externalName 5: not a string, ignored", NULL },
	{ SVC, "/spec/publishNotReadyAddresses", "\"yes\"", 0,
	  S "spec.publishNotReadyAddresses \"yes\": not a boolean, ignored", svc_not_publish },
	/* load-balancer ingress */
	{ SVC, "/status/loadBalancer/ingress/0/ip", "\"1.2.3.999\"", 0,
	  S "status.loadBalancer.ingress[0].ip \"1.2.3.999\": invalid IP, entry kept without IP",
	  svc_ingress_without_ip },
	{ SVC, "/status/loadBalancer/ingress/0/ip", "12", 0,
	  S "status.loadBalancer.ingress[0].ip 12: not a string, entry kept without IP",
	  svc_ingress_without_ip },
	{ SVC, "/status/loadBalancer/ingress/0/ip", "\"001.002.003.004\"", 0, NULL,
	  svc_ingress_canonical },
	{ SVC, "/status/loadBalancer/ingress/0/ipMode", "\"Proxy\"", 0, NULL, svc_ingress_proxy },
	{ SVC, "/status/loadBalancer/ingress/0/ipMode", "\"Magic\"", 0,
	  S "status.loadBalancer.ingress[0].ipMode \"Magic\": unknown ipMode, treated as Proxy",
	  svc_ingress_proxy },
	{ SVC, "/status/loadBalancer/ingress/0", "\"x\"", 0,
	  S "status.loadBalancer.ingress[0] \"x\": not an object, ignored", svc_one_ingress },
	{ SVC, "/status/loadBalancer/ingress", "\"x\"", -EPROTO,
	  S "status.loadBalancer.ingress \"x\": not an array, object ignored", NULL },

	/* EndpointSlice */
	{ EPS, "/metadata/namespace", NULL, -EPROTO,
	  "EndpointSlice web-abcde: metadata.namespace: missing, object ignored", NULL },
	{ EPS, "/metadata/labels/kubernetes.io~1service-name", "\"\"", 0, NULL, eps_no_service },
	{ EPS, "/metadata/labels/kubernetes.io~1service-name", "3", 0,
	  E "metadata.labels[\"kubernetes.io/service-name\"] 3: not a string, label ignored",
	  eps_no_service },
	{ EPS, "/addressType", "\"IPv5\"", 0,
	  E "addressType \"IPv5\": unknown address type, slice not used by the proxy",
	  eps_other_type },
	{ EPS, "/addressType", NULL, 0, E "addressType: missing, slice not used by the proxy",
	  eps_other_type },
	{ EPS, "/addressType", "\"FQDN\"", 0, NULL, eps_fqdn },
	{ EPS, "/addressType", "4", -EPROTO, E "addressType 4: not a string, object ignored",
	  NULL },
	{ EPS, "/endpoints", "\"x\"", -EPROTO, E "endpoints \"x\": not an array, object ignored",
	  NULL },
	{ EPS, "/endpoints/0", "\"x\"", 0, E "endpoints[0] \"x\": not an object, endpoint ignored",
	  eps_first_dropped },
	{ EPS, "/endpoints/0/addresses/0", "\"fd00::1\"", 0,
	  E "endpoints[0].addresses[0] \"fd00::1\": not an IPv4 address, endpoint ignored",
	  eps_first_dropped },
	{ EPS, "/endpoints/0/addresses/0", "\"10.0.0.256\"", 0,
	  E "endpoints[0].addresses[0] \"10.0.0.256\": invalid IP, endpoint ignored",
	  eps_first_dropped },
	{ EPS, "/endpoints/0/addresses/0", "\"010.001.002.003\"", 0, NULL, eps_address_canonical },
	{ EPS, "/endpoints/0/addresses/0", "\"::ffff:10.1.2.3\"", 0, NULL, eps_address_canonical },
	{ EPS, "/endpoints/0/addresses/0", "5", 0,
	  E "endpoints[0].addresses[0] 5: not a string, endpoint ignored", eps_first_dropped },
	{ EPS, "/endpoints/0/addresses", "[]", 0,
	  E "endpoints[0].addresses []: no address, endpoint ignored", eps_first_dropped },
	{ EPS, "/endpoints/0/addresses", NULL, 0,
	  E "endpoints[0].addresses: no address, endpoint ignored", eps_first_dropped },
	{ EPS, "/endpoints/0/addresses", "\"10.0.0.1\"", 0,
	  E "endpoints[0].addresses \"10.0.0.1\": not an array, endpoint ignored",
	  eps_first_dropped },
	{ EPS, "/endpoints/0/conditions/ready", "\"true\"", 0,
	  E "endpoints[0].conditions.ready \"true\": not a boolean, endpoint ignored",
	  eps_first_dropped },
	{ EPS, "/endpoints/0/conditions/terminating", "1", 0,
	  E "endpoints[0].conditions.terminating 1: not a boolean, endpoint ignored",
	  eps_first_dropped },
	{ EPS, "/endpoints/0/conditions/ready", "null", 0, NULL, eps_ready_unset },
	{ EPS, "/endpoints/0/conditions", NULL, 0, NULL, eps_no_conditions },
	{ EPS, "/endpoints/0/conditions", "[]", 0,
	  E "endpoints[0].conditions []: not an object, endpoint ignored", eps_first_dropped },
	{ EPS, "/endpoints/0/nodeName", "5", 0,
	  E "endpoints[0].nodeName 5: not a string, endpoint ignored", eps_first_dropped },
	{ EPS, "/endpoints/0/zone", "{}", 0,
	  E "endpoints[0].zone {}: not a string, endpoint ignored", eps_first_dropped },
	{ EPS, "/endpoints/0/hostname", "5", 0, E "endpoints[0].hostname 5: not a string, ignored",
	  eps_no_hostname },
	{ EPS, "/endpoints/0/hints", "[]", 0,
	  E "endpoints[0].hints []: not an object, endpoint ignored", eps_first_dropped },
	{ EPS, "/endpoints/0/hints/forZones", "\"zone-a\"", 0,
	  E "endpoints[0].hints.forZones \"zone-a\": not an array, endpoint ignored",
	  eps_first_dropped },
	{ EPS, "/endpoints/0/hints/forZones/0", "\"zone-a\"", 0,
	  E "endpoints[0].hints.forZones[0] \"zone-a\": not an object, endpoint ignored",
	  eps_first_dropped },
	{ EPS, "/endpoints/0/hints/forNodes/0/name", NULL, 0,
	  E "endpoints[0].hints.forNodes[0].name: missing, endpoint ignored", eps_first_dropped },
	{ EPS, "/endpoints/0/hints/forNodes/0/name", "1", 0,
	  E "endpoints[0].hints.forNodes[0].name 1: not a string, endpoint ignored",
	  eps_first_dropped },
	{ EPS, "/ports", "{}", -EPROTO, E "ports {}: not an array, object ignored", NULL },
	{ EPS, "/ports", "null", 0, NULL, eps_no_ports },
	{ EPS, "/ports/0", "8080", 0, E "ports[0] 8080: not an object, port ignored",
	  eps_one_port },
	{ EPS, "/ports/0/port", "70000", 0, E "ports[0].port 70000: out of range, port ignored",
	  eps_one_port },
	{ EPS, "/ports/0/port", "\"8080\"", 0,
	  E "ports[0].port \"8080\": not an integer, port ignored", eps_one_port },
	{ EPS, "/ports/0/protocol", "\"ICMP\"", 0,
	  E "ports[0].protocol \"ICMP\": unknown protocol, port ignored", eps_one_port },
	{ EPS, "/ports/0/name", "false", 0, E "ports[0].name false: not a string, port ignored",
	  eps_one_port },
	{ EPS, "/ports/0/name", NULL, 0, NULL, eps_port_unnamed },
	{ EPS, "/ports/0/name", "\"\"", 0, NULL, eps_port_empty_name },
	{ EPS, "/ports/0/port", NULL, 0, NULL, eps_port_zero },

	/* Node */
	{ NODE, "/metadata/name", NULL, -EPROTO,
	  "Node (no name): metadata.name: missing, object ignored", NULL },
	{ NODE, "/metadata/namespace", "\"default\"", 0, NULL, node_no_namespace },
	{ NODE, "/spec/podCIDRs/1", "\"garbage\"", 0,
	  N "spec.podCIDRs[1] \"garbage\": invalid CIDR, ignored", node_one_cidr },
	{ NODE, "/spec/podCIDRs", "7", -EPROTO, N "spec.podCIDRs 7: not an array, object ignored",
	  NULL },
	{ NODE, "/spec/podCIDRs", "[]", 0, NULL, node_one_cidr },
	{ NODE, "/spec/podCIDRs", "[\"010.244.000.000/016\"]", 0, NULL, node_cidr_16 },
	{ NODE, "/spec/podCIDRs", NULL, 0, NULL, node_one_cidr },
	{ NODE, "/spec/podCIDR", "\"x\"", 0, NULL, NULL },
	{ NODE, "/spec", "{\"podCIDR\":\"x\"}", 0, N "spec.podCIDR \"x\": invalid CIDR, ignored",
	  node_no_cidr },
	{ NODE, "/spec", "{\"podCIDR\":\"10.244.7.7/16\"}", 0, NULL, node_cidr_16 },
	{ NODE, "/spec/taints/0/key", NULL, 0, N "spec.taints[0].key: missing, taint ignored",
	  node_no_taints },
	{ NODE, "/spec/taints/0/effect", "1", 0,
	  N "spec.taints[0].effect 1: not a string, taint ignored", node_no_taints },
	{ NODE, "/status/addresses/0/address", "\"10.0.0.300\"", 0,
	  N "status.addresses[0].address \"10.0.0.300\": invalid IP, address ignored",
	  node_external_only },
	{ NODE, "/status/addresses/0/address", NULL, 0,
	  N "status.addresses[0].address: missing, address ignored", node_external_only },
	{ NODE, "/status/addresses/2/address", "\"192.168.000.011\"", 0, NULL, node_other_ip_kept },
	{ NODE, "/status/addresses", "{}", -EPROTO,
	  N "status.addresses {}: not an array, object ignored", NULL },
};

static int decode_kind(enum informer_kind kind, const json_t *obj, const struct informer_diag *diag,
		       void **out)
{
	struct informer_service *svc;
	struct informer_endpointslice *eps;
	struct informer_node *node;
	int rc;

	if (kind == INFORMER_KIND_SERVICE) {
		rc = informer_decode_service(obj, diag, &svc);
		*out = svc;
	} else if (kind == INFORMER_KIND_ENDPOINTSLICE) {
		rc = informer_decode_endpointslice(obj, diag, &eps);
		*out = eps;
	} else {
		rc = informer_decode_node(obj, diag, &node);
		*out = node;
	}
	return rc;
}

static void free_kind(enum informer_kind kind, void *obj)
{
	if (kind == INFORMER_KIND_SERVICE)
		informer_service_free(obj);
	else if (kind == INFORMER_KIND_ENDPOINTSLICE)
		informer_endpointslice_free(obj);
	else
		informer_node_free(obj);
}

/*
 * The objects of the recorded watch streams (test/data/informer/streams/)
 * decode without a word; bookmarks carry no name and are not objects.
 */
static void watch_stream_objects_decode_silently(void **state)
{
	static const char *const streams[] = {
		"test/data/informer/streams/watch-services.ndjson",
		"test/data/informer/streams/watchlist-endpointslices.ndjson",
	};
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	size_t i, n_objects = 0;
	char line[16384];

	(void)state;
	for (i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
		FILE *f = fopen(streams[i], "r");

		assert_non_null(f);
		while (fgets(line, sizeof(line), f)) {
			json_t *ev = parse(line), *obj = json_object_get(ev, "object");
			const char *type = json_string_value(json_object_get(ev, "type"));
			enum informer_kind kind = informer_kind_of(obj);
			void *out;

			assert_true(kind == INFORMER_KIND_SERVICE ||
				    kind == INFORMER_KIND_ENDPOINTSLICE);
			if (strcmp(type, "BOOKMARK") == 0) {
				assert_int_equal(decode_kind(kind, obj, NULL, &out), -EPROTO);
			} else {
				assert_int_equal(decode_kind(kind, obj, &diag, &out), 0);
				assert_no_diag(&d);
				free_kind(kind, out);
				n_objects++;
			}
			json_decref(ev);
		}
		fclose(f);
	}
	assert_int_equal(n_objects, 6);
}

static void one_bad_member_costs_object_entry_or_value_with_one_message(void **state)
{
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		json_t *obj = parse(c->kind == SVC   ? base_service
				    : c->kind == EPS ? base_slice
						     : base_node);
		void *out = NULL;
		int rc;

		patch(obj, c->ptr, c->value);
		rc = decode_kind(c->kind, obj, &diag, &out);
		if (rc != c->rc) {
			print_diags(&d);
			fail_msg("%s = %s: rc %d, expected %d", c->ptr,
				 c->value ? c->value : "(removed)", rc, c->rc);
		}
		if (c->msg)
			assert_one_diag(&d, c->msg);
		else
			assert_no_diag(&d);
		if (rc)
			assert_null(out);
		else if (c->check)
			c->check(out);
		if (!rc)
			free_kind(c->kind, out);
		diags_clear(&d);
		json_decref(obj);
	}
}

/* The unbroken bases decode silently, with every value in place. */
static void base_objects_decode_silently(void **state)
{
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	json_t *obj = parse(base_node);
	struct informer_node *node;

	(void)state;
	assert_int_equal(informer_decode_node(obj, &diag, &node), 0);
	assert_no_diag(&d);
	assert_string_equal(node->meta.name, "node-a");
	assert_null(node->meta.namespace);
	assert_string_equal(informer_meta_label(&node->meta, "topology.kubernetes.io/zone"),
			    "zone-a");
	assert_int_equal(node->n_pod_cidrs, 2);
	assert_string_equal(node->pod_cidrs[1].cidr, "fd00:10:244:1::/64");
	assert_int_equal(node->pod_cidrs[1].family, INFORMER_IPV6);
	assert_int_equal(node->n_addresses, 2);
	assert_int_equal(node->addresses[0].type, INFORMER_NODE_INTERNAL_IP);
	assert_string_equal(node->addresses[0].ip.ip, "10.0.0.11");
	assert_string_equal(node->addresses[1].ip.ip, "203.0.113.11");
	assert_int_equal(node->n_taints, 1);
	assert_string_equal(node->taints[0].key, "node-role.kubernetes.io/control-plane");
	assert_null(node->taints[0].value);
	assert_string_equal(node->taints[0].effect, "NoSchedule");
	informer_node_free(node);
	json_decref(obj);

	obj = parse(base_slice);
	{
		struct informer_endpointslice *eps;

		assert_int_equal(informer_decode_endpointslice(obj, &diag, &eps), 0);
		assert_no_diag(&d);
		assert_string_equal(eps->service_name, "web");
		assert_int_equal(eps->n_endpoints, 2);
		assert_string_equal(eps->endpoints[0].hostname, "web-0");
		assert_string_equal(eps->endpoints[0].hint_nodes[0], "node-a");
		assert_int_equal(eps->endpoints[1].ready, INFORMER_COND_FALSE);
		assert_int_equal(eps->endpoints[1].serving, INFORMER_COND_UNSET);
		assert_int_equal(eps->n_ports, 2);
		informer_endpointslice_free(eps);
	}
	json_decref(obj);
}

/* A slice of many endpoints: arrays larger than an arena chunk, many small strings. */
static void large_slice_decodes_every_endpoint(void **state)
{
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	json_t *obj = parse(base_slice), *eps = json_array();
	struct informer_endpointslice *out;
	char ip[32], node[32];
	size_t i;

	(void)state;
	for (i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.%zu.%zu.%zu", i >> 16, (i >> 8) & 255, i & 255);
		snprintf(node, sizeof(node), "node-%zu", i);
		json_array_append_new(eps,
				      json_pack("{s:[s], s:{s:b}, s:s}", "addresses", ip,
						"conditions", "ready", i % 2, "nodeName", node));
	}
	json_object_set_new(obj, "endpoints", eps);
	assert_int_equal(informer_decode_endpointslice(obj, &diag, &out), 0);
	assert_no_diag(&d);
	assert_int_equal(out->n_endpoints, 5000);
	for (i = 0; i < 5000; i += 499) {
		snprintf(ip, sizeof(ip), "10.%zu.%zu.%zu", i >> 16, (i >> 8) & 255, i & 255);
		snprintf(node, sizeof(node), "node-%zu", i);
		assert_string_equal(out->endpoints[i].address.ip, ip);
		assert_string_equal(out->endpoints[i].node_name, node);
		assert_int_equal(out->endpoints[i].ready,
				 i % 2 ? INFORMER_COND_TRUE : INFORMER_COND_FALSE);
	}
	informer_endpointslice_free(out);
	json_decref(obj);
}

/* ---- trigger times ------------------------------------------------------------------------------
 */

static void trigger_time_parsed_as_rfc3339_nano(void **state)
{
	static const struct {
		const char *text;
		int64_t ns;
		bool valid;
	} cases[] = {
		{ "2026-07-20T14:02:41Z", 1784556161000000000LL, true },
		{ "2026-07-20T14:02:41.123456789Z", 1784556161123456789LL, true },
		{ "2026-07-20T14:02:41.1Z", 1784556161100000000LL, true },
		{ "2026-07-20T14:02:41.1234567891Z", 1784556161123456789LL, true },
		{ "2026-07-20T16:02:41+02:00", 1784556161000000000LL, true },
		{ "2026-07-20T09:32:41.5-04:30", 1784556161500000000LL, true },
		{ "2024-02-29T00:00:00Z", 1709164800000000000LL, true },
		{ "1677-09-21T00:12:44Z", -9223372036000000000LL, true },
		{ "1970-01-01T00:00:00Z", 0, true },
		{ "2023-02-29T00:00:00Z", 0, false },
		{ "2026-13-01T00:00:00Z", 0, false },
		{ "2026-04-31T00:00:00Z", 0, false },
		{ "2026-07-20 14:02:41Z", 0, false },
		{ "2026-07-20t14:02:41z", 0, false },
		{ "2026-07-20T14:02:41", 0, false },
		{ "2026-07-20T24:00:00Z", 0, false },
		{ "2026-07-20T14:60:00Z", 0, false },
		{ "2026-07-20T14:02:60Z", 0, false },
		{ "2026-07-20T14:02:41.Z", 0, false },
		{ "2026-07-20T14:02:41+0200", 0, false },
		{ "2026-07-20T14:02:41+24:00", 0, false },
		{ "2026-07-20T14:02:41ZZ", 0, false },
		{ "+2026-07-20T14:02:41Z", 0, false },
		{ "9999-12-31T23:59:59Z", 0, false },
		{ "0000-01-01T00:00:00Z", 0, false },
		{ "yesterday", 0, false },
		{ "", 0, false },
	};
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	struct informer_endpointslice *eps;
	char msg[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *obj = parse(base_slice), *ann = json_object();

		json_object_set_new(ann, "endpoints.kubernetes.io/last-change-trigger-time",
				    json_string(cases[i].text));
		json_object_set_new(json_object_get(obj, "metadata"), "annotations", ann);
		assert_int_equal(informer_decode_endpointslice(obj, &diag, &eps), 0);
		if (eps->meta.last_change_trigger_ns != cases[i].ns)
			fail_msg("%s: %lld, expected %lld", cases[i].text,
				 (long long)eps->meta.last_change_trigger_ns,
				 (long long)cases[i].ns);
		if (cases[i].valid) {
			assert_no_diag(&d);
		} else {
			snprintf(
				msg, sizeof(msg),
				E
				"metadata.annotations[\"endpoints.kubernetes.io/last-change-trigger-time\"] \"%s\": not an RFC 3339 time, ignored",
				cases[i].text);
			assert_one_diag(&d, msg);
		}
		diags_clear(&d);
		informer_endpointslice_free(eps);
		json_decref(obj);
	}
}

/* ---- kinds, labels, odd inputs
 * --------------------------------------------------------------------- */

static void kind_of_needs_known_kind_and_api_version(void **state)
{
	static const struct {
		const char *json;
		enum informer_kind kind;
	} cases[] = {
		{ "{\"kind\":\"Service\",\"apiVersion\":\"v1\"}", INFORMER_KIND_SERVICE },
		{ "{\"kind\":\"Service\"}", INFORMER_KIND_SERVICE },
		{ "{\"kind\":\"Service\",\"apiVersion\":null}", INFORMER_KIND_SERVICE },
		{ "{\"kind\":\"Service\",\"apiVersion\":\"v2\"}", INFORMER_KIND_UNKNOWN },
		{ "{\"kind\":\"Service\",\"apiVersion\":1}", INFORMER_KIND_UNKNOWN },
		{ "{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\"}",
		  INFORMER_KIND_ENDPOINTSLICE },
		{ "{\"kind\":\"EndpointSlice\"}", INFORMER_KIND_ENDPOINTSLICE },
		{ "{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1beta1\"}",
		  INFORMER_KIND_UNKNOWN },
		{ "{\"kind\":\"EndpointSlice\",\"apiVersion\":\"v1\"}", INFORMER_KIND_UNKNOWN },
		{ "{\"kind\":\"Node\",\"apiVersion\":\"v1\"}", INFORMER_KIND_NODE },
		{ "{\"kind\":\"Endpoints\",\"apiVersion\":\"v1\"}", INFORMER_KIND_UNKNOWN },
		{ "{\"kind\":\"service\"}", INFORMER_KIND_UNKNOWN },
		{ "{\"kind\":5}", INFORMER_KIND_UNKNOWN },
		{ "{\"apiVersion\":\"v1\"}", INFORMER_KIND_UNKNOWN },
		{ "[\"Service\"]", INFORMER_KIND_UNKNOWN },
		{ "\"Service\"", INFORMER_KIND_UNKNOWN },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *v = parse(cases[i].json);

		if (informer_kind_of(v) != cases[i].kind)
			fail_msg("%s: kind %d, expected %d", cases[i].json, informer_kind_of(v),
				 cases[i].kind);
		json_decref(v);
	}
	assert_int_equal(informer_kind_of(NULL), INFORMER_KIND_UNKNOWN);
}

static void labels_sorted_by_key_and_found_by_lookup(void **state)
{
	json_t *obj = parse(base_service);
	struct informer_service *svc;

	(void)state;
	patch(obj, "/metadata/labels",
	      "{\"zeta\":\"1\",\"app\":\"web\",\"a\":\"\",\"kubernetes.io/name\":\"x\",\"B\":\"b\"}");
	assert_int_equal(informer_decode_service(obj, NULL, &svc), 0);
	assert_int_equal(svc->meta.n_labels, 5);
	assert_string_equal(svc->meta.labels[0].key, "B");
	assert_string_equal(svc->meta.labels[1].key, "a");
	assert_string_equal(svc->meta.labels[2].key, "app");
	assert_string_equal(svc->meta.labels[3].key, "kubernetes.io/name");
	assert_string_equal(svc->meta.labels[4].key, "zeta");
	assert_string_equal(informer_meta_label(&svc->meta, "a"), "");
	assert_string_equal(informer_meta_label(&svc->meta, "zeta"), "1");
	assert_string_equal(informer_meta_label(&svc->meta, "B"), "b");
	assert_null(informer_meta_label(&svc->meta, "b"));
	assert_null(informer_meta_label(&svc->meta, "zz"));
	informer_service_free(svc);
	json_decref(obj);
}

/* Not an object at all; no diag callback; a NULL callback. */
static void non_objects_rejected_and_diag_callback_optional(void **state)
{
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d }, silent = { NULL, NULL };
	json_t *arr = parse("[1]"), *obj = parse(base_service);
	struct informer_service *svc = (void *)1;
	struct informer_endpointslice *eps = (void *)1;
	struct informer_node *node = (void *)1;

	(void)state;
	assert_int_equal(informer_decode_service(arr, &diag, &svc), -EPROTO);
	assert_null(svc);
	assert_int_equal(informer_decode_endpointslice(arr, &diag, &eps), -EPROTO);
	assert_null(eps);
	assert_int_equal(informer_decode_node(NULL, &diag, &node), -EPROTO);
	assert_null(node);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.msg[0], "Service (no name): [1]: not a JSON object, object ignored");
	assert_string_equal(d.msg[2], "Node (no name): not a JSON object, object ignored");
	diags_clear(&d);

	patch(obj, "/spec/ports/0/port", "0");
	assert_int_equal(informer_decode_service(obj, NULL, &svc), -EPROTO);
	assert_int_equal(informer_decode_service(obj, &silent, &svc), -EPROTO);
	patch(obj, "/spec/ports/0/port", "1");
	patch(obj, "/spec/externalIPs/0", "\"bad\"");
	assert_int_equal(informer_decode_service(obj, NULL, &svc), 0);
	informer_service_free(svc);
	informer_service_free(NULL);
	informer_endpointslice_free(NULL);
	informer_node_free(NULL);
	json_decref(arr);
	json_decref(obj);
}

/* Long values and names are cut in messages, at a UTF-8 boundary. */
static void long_values_cut_at_utf8_boundary_in_messages(void **state)
{
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	json_t *obj = parse(base_service);
	struct informer_service *svc;
	char big[2000];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(big) - 1; i++)
		big[i] = "x\xc3\xa9"[i % 3]; /* "xé" repeated: cuts can fall inside 'é' */
	big[sizeof(big) - 1] = '\0';
	json_object_set_new(json_object_get(obj, "metadata"), "name", json_string(big));
	json_object_set_new(json_object_get(obj, "spec"), "clusterIP", json_string(big));
	assert_int_equal(informer_decode_service(obj, &diag, &svc), -EPROTO);
	assert_int_equal(d.n, 1);
	assert_true(strlen(d.msg[0]) < 400);
	assert_non_null(strstr(d.msg[0], "...: invalid IP, object ignored"));
	/* the cut value is followed by "..." right after a whole character */
	assert_true(strstr(d.msg[0], "xé...") || strstr(d.msg[0], "éx..."));
	diags_clear(&d);
	json_decref(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fixture_service_rejected_for_three_placeholders_then_tolerated),
		cmocka_unit_test(fixture_endpointslice_decodes_placeholders_cost_its_port),
		cmocka_unit_test(example_default_and_dns_services_decode_value_by_value),
		cmocka_unit_test(example_frontend_dual_stack_lb_decodes_value_by_value),
		cmocka_unit_test(example_nodeport_externalname_headless_decode),
		cmocka_unit_test(example_slices_keep_tristate_conditions_hints_and_nulls),
		cmocka_unit_test(base_objects_decode_silently),
		cmocka_unit_test(watch_stream_objects_decode_silently),
		cmocka_unit_test(one_bad_member_costs_object_entry_or_value_with_one_message),
		cmocka_unit_test(large_slice_decodes_every_endpoint),
		cmocka_unit_test(trigger_time_parsed_as_rfc3339_nano),
		cmocka_unit_test(kind_of_needs_known_kind_and_api_version),
		cmocka_unit_test(labels_sorted_by_key_and_found_by_lookup),
		cmocka_unit_test(non_objects_rejected_and_diag_callback_optional),
		cmocka_unit_test(long_values_cut_at_utf8_boundary_in_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
