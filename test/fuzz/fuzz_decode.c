/*
 * test/fuzz/fuzz_decode.c - libFuzzer target for everything that reads objects.
 *
 * The input goes to informer_objects_parse(), which detects JSON or YAML and
 * runs every decoder. Beyond crashes, leaks and undefined behaviour, it checks
 * what the decoders promise: the only errors are -EINVAL (with a message),
 * every message is non-empty and bounded, objects have their name (and
 * namespace), ports are in range, labels are sorted, and every address and
 * CIDR stored is canonical: it parses back to the same text and family.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "informer/ip.h"
#include "informer/objfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void on_msg(void *arg, const char *msg)
{
	size_t *n = arg;
	size_t len = strlen(msg);

	check(len > 0 && len < 1024);
	(*n)++;
}

static void check_ip(const struct informer_ip *ip)
{
	char buf[INFORMER_IP_STRLEN];
	struct informer_addr a;

	if (!ip->ip) {
		check(ip->family == INFORMER_FAMILY_NONE);
		return;
	}
	check(informer_addr_parse(ip->ip, &a) == 0 && a.family == ip->family);
	check(strcmp(informer_addr_format(&a, buf, sizeof(buf)), ip->ip) == 0);
}

static void check_cidr(const struct informer_cidr *c)
{
	char buf[INFORMER_IP_STRLEN];
	struct informer_prefix p;

	check(informer_prefix_parse(c->cidr, &p) == 0 && p.addr.family == c->family);
	check(strcmp(informer_prefix_format(&p, buf, sizeof(buf)), c->cidr) == 0);
}

static void check_meta(const struct informer_meta *m, bool namespaced)
{
	size_t i;

	check(m->name && *m->name);
	check(!namespaced || (m->namespace && *m->namespace));
	for (i = 1; i < m->n_labels; i++)
		check(strcmp(m->labels[i - 1].key, m->labels[i].key) < 0);
	for (i = 0; i < m->n_labels; i++)
		check(informer_meta_label(m, m->labels[i].key) == m->labels[i].value);
}

static void check_service(const struct informer_service *svc)
{
	struct informer_ip cip = { svc->cluster_ip, INFORMER_FAMILY_NONE };
	struct informer_addr a;
	size_t i;

	check_meta(&svc->meta, true);
	if (*svc->cluster_ip && strcmp(svc->cluster_ip, "None") != 0) {
		check(informer_addr_parse(svc->cluster_ip, &a) == 0);
		cip.family = a.family;
		check_ip(&cip);
	}
	for (i = 0; i < svc->n_cluster_ips; i++)
		check_ip(&svc->cluster_ips[i]);
	for (i = 0; i < svc->n_ports; i++)
		check(svc->ports[i].port > 0 && svc->ports[i].name);
	for (i = 0; i < svc->n_external_ips; i++) {
		check(svc->external_ips[i].ip != NULL);
		check_ip(&svc->external_ips[i]);
	}
	for (i = 0; i < svc->n_lb_ingress; i++)
		check_ip(&svc->lb_ingress[i].ip);
	for (i = 0; i < svc->n_source_ranges; i++)
		check_cidr(&svc->source_ranges[i]);
	check(svc->affinity_timeout > 0 && svc->affinity_timeout <= 86400);
}

static void check_slice(const struct informer_endpointslice *eps)
{
	enum informer_family want = eps->address_type == INFORMER_ADDR_IPV4 ? INFORMER_IPV4
				    : eps->address_type == INFORMER_ADDR_IPV6
					    ? INFORMER_IPV6
					    : INFORMER_FAMILY_NONE;
	size_t i, j;

	check_meta(&eps->meta, true);
	check(!eps->service_name || *eps->service_name);
	for (i = 0; i < eps->n_endpoints; i++) {
		const struct informer_endpoint *ep = &eps->endpoints[i];

		check(ep->address.family == want &&
		      (want == INFORMER_FAMILY_NONE) == !ep->address.ip);
		check_ip(&ep->address);
		for (j = 0; j < ep->n_hint_zones; j++)
			check(ep->hint_zones[j] != NULL);
		for (j = 0; j < ep->n_hint_nodes; j++)
			check(ep->hint_nodes[j] != NULL);
	}
}

static void check_node(const struct informer_node *node)
{
	size_t i;

	check_meta(&node->meta, false);
	check(!node->meta.namespace);
	for (i = 0; i < node->n_pod_cidrs; i++)
		check_cidr(&node->pod_cidrs[i]);
	for (i = 0; i < node->n_addresses; i++) {
		check(node->addresses[i].ip.ip != NULL);
		check_ip(&node->addresses[i].ip);
	}
	for (i = 0; i < node->n_taints; i++)
		check(node->taints[i].key != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct informer_objects objs = { 0 };
	size_t n_msgs = 0, i;
	struct informer_diag diag = { on_msg, &n_msgs };
	int rc = informer_objects_parse((const char *)data, size, &diag, &objs);

	check(rc == 0 || (rc == -EINVAL && n_msgs > 0));
	check(rc == 0 || objs.n_services + objs.n_slices + objs.n_nodes + objs.n_skipped == 0);
	for (i = 0; i < objs.n_services; i++)
		check_service(objs.services[i]);
	for (i = 0; i < objs.n_slices; i++)
		check_slice(objs.slices[i]);
	for (i = 0; i < objs.n_nodes; i++)
		check_node(objs.nodes[i]);
	informer_objects_cleanup(&objs);
	return 0;
}
