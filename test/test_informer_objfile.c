/*
 * test/test_informer_objfile.c - objects from files and buffers (informer/objfile.c).
 *
 * The shared examples in every shape kubectl prints them (typed lists in JSON,
 * a List in YAML, single objects, several values or documents in one stream)
 * must give the same objects, value for value; other kinds are skipped and
 * counted; broken input is refused with a message and changes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "informer/objfile.h"

#define EXAMPLES "test/data/informer/examples/"

struct diags {
	char *msg[64];
	size_t n;
};

static void collect(void *arg, const char *msg)
{
	struct diags *d = arg;

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

static bool diags_have(const struct diags *d, const char *part)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (strstr(d->msg[i], part))
			return true;
	return false;
}

static void assert_diag(const struct diags *d, const char *part)
{
	size_t i;

	if (diags_have(d, part))
		return;
	for (i = 0; i < d->n; i++)
		print_error("  diag: %s\n", d->msg[i]);
	fail_msg("no message contains \"%s\"", part);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Parse @text; it must succeed with no message. */
static void parse_quiet(const char *text, size_t len, struct informer_objects *objs)
{
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	int rc = informer_objects_parse(text, len, &diag, objs);

	if (rc || d.n)
		fail_msg("rc %d, %zu messages, first: %s", rc, d.n, d.n ? d.msg[0] : "-");
}

static void parse_file(const char *path, struct informer_objects *objs)
{
	size_t len;
	char *buf = read_file(path, &len);

	parse_quiet(buf, len, objs);
	free(buf);
}

/* ---- the same objects whatever the shape ------------------------------------------------------
 */

static void assert_str_same(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_meta_same(const struct informer_meta *a, const struct informer_meta *b)
{
	size_t i;

	assert_str_same(a->namespace, b->namespace);
	assert_str_same(a->name, b->name);
	assert_str_same(a->uid, b->uid);
	assert_str_same(a->resource_version, b->resource_version);
	assert_int_equal(a->deleting, b->deleting);
	assert_int_equal(a->last_change_trigger_ns, b->last_change_trigger_ns);
	assert_int_equal(a->n_labels, b->n_labels);
	for (i = 0; i < a->n_labels; i++) {
		assert_string_equal(a->labels[i].key, b->labels[i].key);
		assert_string_equal(a->labels[i].value, b->labels[i].value);
	}
}

static void assert_ips_same(const struct informer_ip *a, const struct informer_ip *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		assert_str_same(a[i].ip, b[i].ip);
		assert_int_equal(a[i].family, b[i].family);
	}
}

static void assert_service_same(const struct informer_service *a, const struct informer_service *b)
{
	size_t i;

	assert_meta_same(&a->meta, &b->meta);
	assert_int_equal(a->type, b->type);
	assert_string_equal(a->cluster_ip, b->cluster_ip);
	assert_int_equal(a->n_cluster_ips, b->n_cluster_ips);
	assert_ips_same(a->cluster_ips, b->cluster_ips, a->n_cluster_ips);
	assert_int_equal(a->n_ip_families, b->n_ip_families);
	if (a->n_ip_families)
		assert_memory_equal(a->ip_families, b->ip_families,
				    a->n_ip_families * sizeof(*a->ip_families));
	assert_int_equal(a->n_ports, b->n_ports);
	for (i = 0; i < a->n_ports; i++) {
		assert_string_equal(a->ports[i].name, b->ports[i].name);
		assert_int_equal(a->ports[i].protocol, b->ports[i].protocol);
		assert_int_equal(a->ports[i].port, b->ports[i].port);
		assert_int_equal(a->ports[i].target_port, b->ports[i].target_port);
		assert_str_same(a->ports[i].target_port_name, b->ports[i].target_port_name);
		assert_int_equal(a->ports[i].node_port, b->ports[i].node_port);
		assert_str_same(a->ports[i].app_protocol, b->ports[i].app_protocol);
	}
	assert_int_equal(a->affinity_client_ip, b->affinity_client_ip);
	assert_int_equal(a->affinity_timeout, b->affinity_timeout);
	assert_int_equal(a->n_external_ips, b->n_external_ips);
	assert_ips_same(a->external_ips, b->external_ips, a->n_external_ips);
	assert_int_equal(a->n_lb_ingress, b->n_lb_ingress);
	for (i = 0; i < a->n_lb_ingress; i++) {
		assert_ips_same(&a->lb_ingress[i].ip, &b->lb_ingress[i].ip, 1);
		assert_str_same(a->lb_ingress[i].hostname, b->lb_ingress[i].hostname);
		assert_int_equal(a->lb_ingress[i].ip_mode, b->lb_ingress[i].ip_mode);
	}
	assert_int_equal(a->n_source_ranges, b->n_source_ranges);
	for (i = 0; i < a->n_source_ranges; i++)
		assert_string_equal(a->source_ranges[i].cidr, b->source_ranges[i].cidr);
	assert_int_equal(a->external_policy, b->external_policy);
	assert_int_equal(a->internal_policy, b->internal_policy);
	assert_int_equal(a->health_check_node_port, b->health_check_node_port);
	assert_str_same(a->traffic_distribution, b->traffic_distribution);
	assert_str_same(a->external_name, b->external_name);
	assert_int_equal(a->publish_not_ready_addresses, b->publish_not_ready_addresses);
}

static void assert_names_same(const char **a, const char **b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		assert_string_equal(a[i], b[i]);
}

static void assert_slice_same(const struct informer_endpointslice *a,
			      const struct informer_endpointslice *b)
{
	size_t i;

	assert_meta_same(&a->meta, &b->meta);
	assert_str_same(a->service_name, b->service_name);
	assert_int_equal(a->address_type, b->address_type);
	assert_int_equal(a->n_endpoints, b->n_endpoints);
	for (i = 0; i < a->n_endpoints; i++) {
		const struct informer_endpoint *x = &a->endpoints[i], *y = &b->endpoints[i];

		assert_ips_same(&x->address, &y->address, 1);
		assert_int_equal(x->ready, y->ready);
		assert_int_equal(x->serving, y->serving);
		assert_int_equal(x->terminating, y->terminating);
		assert_str_same(x->node_name, y->node_name);
		assert_str_same(x->zone, y->zone);
		assert_str_same(x->hostname, y->hostname);
		assert_int_equal(x->n_hint_zones, y->n_hint_zones);
		assert_names_same(x->hint_zones, y->hint_zones, x->n_hint_zones);
		assert_int_equal(x->n_hint_nodes, y->n_hint_nodes);
		assert_names_same(x->hint_nodes, y->hint_nodes, x->n_hint_nodes);
	}
	assert_int_equal(a->n_ports, b->n_ports);
	for (i = 0; i < a->n_ports; i++) {
		assert_str_same(a->ports[i].name, b->ports[i].name);
		assert_int_equal(a->ports[i].protocol, b->ports[i].protocol);
		assert_int_equal(a->ports[i].port, b->ports[i].port);
		assert_str_same(a->ports[i].app_protocol, b->ports[i].app_protocol);
	}
}

static void assert_objects_same(const struct informer_objects *a, const struct informer_objects *b)
{
	size_t i;

	assert_int_equal(a->n_services, b->n_services);
	assert_int_equal(a->n_slices, b->n_slices);
	assert_int_equal(a->n_nodes, b->n_nodes);
	assert_int_equal(a->n_skipped, b->n_skipped);
	for (i = 0; i < a->n_services; i++)
		assert_service_same(a->services[i], b->services[i]);
	for (i = 0; i < a->n_slices; i++)
		assert_slice_same(a->slices[i], b->slices[i]);
}

/* The JSON typed lists: the reference every other shape is compared with. */
static void json_reference(struct informer_objects *objs)
{
	parse_file(EXAMPLES "service-list.json", objs);
	parse_file(EXAMPLES "endpointslice-list.json", objs);
}

static void typed_json_lists_keep_file_order(void **state)
{
	struct informer_objects objs = { 0 };

	(void)state;
	json_reference(&objs);
	assert_int_equal(objs.n_services, 6);
	assert_int_equal(objs.n_slices, 5);
	assert_int_equal(objs.n_nodes, 0);
	assert_int_equal(objs.n_skipped, 0);
	/* file order is kept */
	assert_string_equal(objs.services[0]->meta.name, "kubernetes");
	assert_string_equal(objs.services[2]->meta.name, "frontend");
	assert_string_equal(objs.services[2]->source_ranges[1].cidr, "203.0.113.7/32");
	assert_string_equal(objs.services[5]->cluster_ip, "None");
	assert_string_equal(objs.slices[2]->meta.name, "frontend-k2m9d");
	assert_int_equal(objs.slices[2]->endpoints[1].terminating, INFORMER_COND_TRUE);
	assert_int_equal(objs.slices[4]->n_endpoints, 0);
	informer_objects_cleanup(&objs);
	assert_null(objs.services);
	assert_int_equal(objs.n_services, 0);
}

static void kubectl_yaml_gives_the_same_objects_as_json(void **state)
{
	struct informer_objects ref = { 0 }, yaml = { 0 };

	(void)state;
	json_reference(&ref);
	parse_file(EXAMPLES "service-list.yaml", &yaml);
	parse_file(EXAMPLES "endpointslice-list.yaml", &yaml);
	assert_objects_same(&ref, &yaml);
	informer_objects_cleanup(&ref);
	informer_objects_cleanup(&yaml);
}

/* Both lists in one buffer: concatenated JSON, or two YAML documents. */
static void concatenated_json_and_multi_doc_yaml_accepted(void **state)
{
	struct informer_objects ref = { 0 }, got = { 0 };
	size_t n1, n2;
	char *a, *b, *both;

	(void)state;
	json_reference(&ref);
	a = read_file(EXAMPLES "service-list.json", &n1);
	b = read_file(EXAMPLES "endpointslice-list.json", &n2);
	both = malloc(n1 + n2 + 16);
	assert_non_null(both);

	/* back to back, with nothing between the values */
	while (n1 && (a[n1 - 1] == '\n' || a[n1 - 1] == ' '))
		n1--;
	memcpy(both, a, n1);
	memcpy(both + n1, b, n2);
	parse_quiet(both, n1 + n2, &got);
	assert_objects_same(&ref, &got);
	informer_objects_cleanup(&got);
	free(a);
	free(b);

	a = read_file(EXAMPLES "service-list.yaml", &n1);
	b = read_file(EXAMPLES "endpointslice-list.yaml", &n2);
	both = realloc(both, n1 + n2 + 16);
	assert_non_null(both);
	memcpy(both, "---\n", 4);
	memcpy(both + 4, a, n1);
	memcpy(both + 4 + n1, "---\n", 4);
	memcpy(both + 8 + n1, b, n2);
	parse_quiet(both, n1 + n2 + 8, &got);
	assert_objects_same(&ref, &got);
	informer_objects_cleanup(&got);
	informer_objects_cleanup(&ref);
	free(a);
	free(b);
	free(both);
}

static const char node_json[] =
	"{\"kind\":\"Node\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"node-a\"},"
	"\"spec\":{\"podCIDR\":\"10.244.1.0/24\"},"
	"\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.11\"}]}}";

static const char node_yaml[] = "apiVersion: v1\n"
				"kind: Node\n"
				"metadata:\n"
				"  name: node-a\n"
				"spec:\n"
				"  podCIDR: 10.244.1.0/24\n"
				"status:\n"
				"  addresses:\n"
				"  - address: 10.0.0.11\n"
				"    type: InternalIP\n";

static const char svc_yaml[] = "apiVersion: v1\n"
			       "kind: Service\n"
			       "metadata:\n"
			       "  name: web\n"
			       "  namespace: default\n"
			       "spec:\n"
			       "  clusterIP: 10.96.0.20\n"
			       "  ports:\n"
			       "  - port: 80\n"
			       "    targetPort: http\n";

static void assert_node_a(const struct informer_objects *objs)
{
	assert_int_equal(objs->n_nodes, 1);
	assert_string_equal(objs->nodes[0]->meta.name, "node-a");
	assert_string_equal(objs->nodes[0]->pod_cidrs[0].cidr, "10.244.1.0/24");
	assert_string_equal(objs->nodes[0]->addresses[0].ip.ip, "10.0.0.11");
}

static void single_objects_and_top_level_arrays_accepted(void **state)
{
	struct informer_objects objs = { 0 };
	char buf[1024];

	(void)state;
	parse_quiet(node_json, strlen(node_json), &objs);
	assert_node_a(&objs);
	informer_objects_cleanup(&objs);

	parse_quiet(node_yaml, strlen(node_yaml), &objs);
	assert_node_a(&objs);
	informer_objects_cleanup(&objs);

	/* a multi-document stream, and a top-level JSON array */
	snprintf(buf, sizeof(buf), "---\n%s---\n%s", svc_yaml, node_yaml);
	parse_quiet(buf, strlen(buf), &objs);
	assert_node_a(&objs);
	assert_int_equal(objs.n_services, 1);
	assert_string_equal(objs.services[0]->ports[0].target_port_name, "http");
	assert_string_equal(objs.services[0]->ports[0].name, "");
	informer_objects_cleanup(&objs);

	snprintf(buf, sizeof(buf), "  \n\t[%s, %s]\n", node_json, node_json);
	parse_quiet(buf, strlen(buf), &objs);
	assert_int_equal(objs.n_nodes, 2);
	informer_objects_cleanup(&objs);
}

/* Other kinds, other versions and rejected objects are skipped, counted and reported. */
static void other_kinds_and_rejected_objects_skipped_and_counted(void **state)
{
	static const char list[] =
		"apiVersion: v1\n"
		"kind: List\n"
		"items:\n"
		"- {apiVersion: v1, kind: Endpoints, metadata: {name: web, namespace: default}}\n"
		"- {apiVersion: v1, kind: Pod, metadata: {name: web-0, namespace: default}}\n"
		"- {apiVersion: discovery.k8s.io/v1beta1, kind: EndpointSlice, metadata: {name: s, namespace: default}}\n"
		"- {apiVersion: v1, kind: Service, metadata: {namespace: default}}\n"
		"- {metadata: {name: no-kind}}\n"
		"- just a string\n"
		"- {apiVersion: v1, kind: Node, metadata: {name: node-a}}\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: PodList\n"
		"items:\n"
		"- metadata: {name: p1, namespace: default}\n"
		"- metadata: {name: p2, namespace: default}\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: ConfigMapList\n"
		"items: 5\n"
		"---\n"
		"hello\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: ServiceList\n"
		"items: null\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: NodeList\n";
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	struct informer_objects objs = { 0 };

	(void)state;
	assert_int_equal(informer_objects_parse(list, strlen(list), &diag, &objs), 0);
	assert_int_equal(objs.n_nodes, 1);
	assert_int_equal(objs.n_services, 0);
	assert_int_equal(objs.n_skipped, 10);
	assert_int_equal(d.n, 10);
	assert_diag(
		&d,
		"Endpoints default/web (apiVersion v1): not a v1 Service, discovery.k8s.io/v1 EndpointSlice or v1 Node, skipped");
	assert_diag(&d, "Pod default/web-0 (apiVersion v1)");
	assert_diag(&d, "EndpointSlice default/s (apiVersion discovery.k8s.io/v1beta1)");
	assert_diag(&d, "Service default/(no name): metadata.name: missing, object ignored");
	assert_diag(&d, "(no kind) no-kind (apiVersion none)");
	assert_diag(&d, "List: items[5] is not an object, skipped");
	assert_diag(&d, "Pod default/p1 (apiVersion v1)");
	assert_diag(&d, "Pod default/p2 (apiVersion v1)");
	assert_diag(&d, "ConfigMapList: items is not an array, skipped");
	assert_diag(&d, "a JSON scalar where an object was expected, skipped");
	informer_objects_cleanup(&objs);
	diags_clear(&d);
}

/* Syntax errors: -EINVAL with line and column, and the objects already there stay as they were. */
static void syntax_errors_refused_and_objects_unchanged(void **state)
{
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
		{ "{\"kind\":\"Node\",\"metadata\":{\"name\":\"n\"}",
		  "invalid JSON at line 1 column 38: " },
		{ "{\"kind\":\"Node\",\"metadata\":{\"name\":\"n\"}}\n{\"kind\":\"Node\",\n\"metadata\":{",
		  "invalid JSON at line 3 column 12: " },
		{ "[{}] garbage", "invalid JSON at line 1 column 12: " },
		{ "{\"a\":1}\n\n  {\"a\":01}", "invalid JSON at line 3 column " },
		{ "[\"\\u0000\"]", "invalid JSON at line 1 column " },
		{ "items:\n- name: a\n  port: [80\n", "invalid YAML at line 4 column 1: " },
		{ "kind: Node\nkind: Node\n",
		  "invalid YAML at line 2 column 1: duplicate mapping key \"kind\"" },
		{ "apiVersion: v1\nkind: Node\nmetadata:\n  name: x\n---\n: : :\n",
		  "invalid YAML at line 6 column " },
	};
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	struct informer_objects objs = { 0 };
	size_t i;

	(void)state;
	parse_quiet(node_json, strlen(node_json), &objs);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = informer_objects_parse(cases[i].text, strlen(cases[i].text), &diag, &objs);

		if (rc != -EINVAL)
			fail_msg("%s: rc %d, expected -EINVAL", cases[i].text, rc);
		assert_int_equal(d.n, 1);
		if (strncmp(d.msg[0], cases[i].msg, strlen(cases[i].msg)) != 0)
			fail_msg("%s: message \"%s\", expected \"%s...\"", cases[i].text, d.msg[0],
				 cases[i].msg);
		diags_clear(&d);
		assert_int_equal(objs.n_nodes, 1);
		assert_int_equal(objs.n_skipped, 0);
	}
	informer_objects_cleanup(&objs);
}

/* Every prefix of a real file either parses or is refused; none crashes or leaks. */
static void every_truncation_parses_or_is_refused(void **state)
{
	static const char *const files[] = { EXAMPLES "service-list.json",
					     EXAMPLES "endpointslice-list.yaml" };
	struct informer_diag silent = { NULL, NULL };
	size_t f, len, cut, n_ok = 0;

	(void)state;
	for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		char *buf = read_file(files[f], &len);

		for (cut = 0; cut < len; cut += 7) {
			struct informer_objects objs = { 0 };
			int rc = informer_objects_parse(buf, cut, &silent, &objs);

			assert_true(rc == 0 || rc == -EINVAL);
			n_ok += rc == 0;
			informer_objects_cleanup(&objs);
		}
		free(buf);
	}
	/* a cut JSON list is never valid; the YAML one often is (a shorter document) */
	assert_true(n_ok > 0);
}

static void blank_input_gives_no_objects(void **state)
{
	struct informer_objects objs = { 0 };

	(void)state;
	parse_quiet("", 0, &objs);
	parse_quiet(" \n\t\r\n", 5, &objs);
	parse_quiet("# nothing here\n---\n", 19, &objs);
	assert_int_equal(objs.n_services + objs.n_slices + objs.n_nodes + objs.n_skipped, 0);
	informer_objects_cleanup(&objs);
}

/* ---- files
 * ----------------------------------------------------------------------------------------- */

static void load_reads_files_and_stdin_and_reports_errors(void **state)
{
	struct diags d = { 0 };
	struct informer_diag diag = { collect, &d };
	struct informer_objects objs = { 0 }, ref = { 0 };
	int saved, fd;

	(void)state;
	json_reference(&ref);
	assert_int_equal(informer_objects_load(EXAMPLES "service-list.yaml", &diag, &objs), 0);
	assert_int_equal(informer_objects_load(EXAMPLES "endpointslice-list.json", &diag, &objs),
			 0);
	assert_int_equal(d.n, 0);
	assert_objects_same(&ref, &objs);
	informer_objects_cleanup(&objs);

	/* "-" is standard input */
	saved = dup(STDIN_FILENO);
	fd = open(EXAMPLES "service-list.json", O_RDONLY);
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDIN_FILENO), 0);
	close(fd);
	assert_int_equal(informer_objects_load("-", &diag, &objs), 0);
	assert_int_equal(dup2(saved, STDIN_FILENO), 0);
	close(saved);
	assert_int_equal(objs.n_services, 6);
	informer_objects_cleanup(&objs);

	assert_int_equal(informer_objects_load(EXAMPLES "no-such-file.yaml", &diag, &objs),
			 -ENOENT);
	assert_diag(&d, "cannot open " EXAMPLES "no-such-file.yaml: No such file or directory");
	diags_clear(&d);
	assert_int_equal(informer_objects_load(EXAMPLES, &diag, &objs), -EISDIR);
	assert_diag(&d, "cannot read " EXAMPLES ": Is a directory");
	diags_clear(&d);
	informer_objects_cleanup(&ref);
	informer_objects_cleanup(&objs);
}

/* Callers may take objects out (leaving NULL) before cleaning up. */
static void cleanup_skips_objects_taken_out(void **state)
{
	struct informer_objects objs = { 0 };
	struct informer_service *svc;

	(void)state;
	parse_file(EXAMPLES "service-list.json", &objs);
	svc = objs.services[1];
	objs.services[1] = NULL;
	informer_objects_cleanup(&objs);
	assert_string_equal(svc->meta.name, "kube-dns");
	informer_service_free(svc);
	informer_objects_cleanup(&objs);
}

/* ---- out of memory ------------------------------------------------------------------------ */

static long allocs_left; /* jansson allocations that still succeed; < 0: all of them */

static void *failing_malloc(size_t size)
{
	if (allocs_left == 0)
		return NULL;
	if (allocs_left > 0)
		allocs_left--;
	return malloc(size);
}

/*
 * Every jansson allocation that fails, one at a time, fails the parse without
 * a leak and without touching the objects already there; with all of them
 * succeeding the parse succeeds. While building YAML documents and handling
 * lists that failure is -ENOMEM; jansson's own JSON lexer reports most of
 * its allocation failures as syntax errors, so JSON input may say -EINVAL.
 */
static void jansson_allocation_failures_fail_cleanly(void **state)
{
	static const struct {
		const char *path;
		bool einval_allowed;
	} files[] = {
		{ EXAMPLES "service-list.json", true },
		{ EXAMPLES "endpointslice-list.yaml", false },
	};
	struct informer_diag silent = { NULL, NULL };
	struct informer_objects objs = { 0 };
	size_t f, len, before;
	long n;

	(void)state;
	parse_quiet(node_json, strlen(node_json), &objs);
	for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		char *buf = read_file(files[f].path, &len);
		int rc = -ENOMEM;

		json_set_alloc_funcs(failing_malloc, free);
		for (n = 0; rc; n++) {
			allocs_left = n;
			before = objs.n_services + objs.n_slices;
			rc = informer_objects_parse(buf, len, &silent, &objs);
			if (rc && (rc != -EINVAL || !files[f].einval_allowed))
				assert_int_equal(rc, -ENOMEM);
			if (rc)
				assert_int_equal(objs.n_services + objs.n_slices, before);
		}
		json_set_alloc_funcs(malloc, free);
		assert_true(n > 100);
		free(buf);
	}
	assert_int_equal(objs.n_nodes, 1);
	assert_int_equal(objs.n_services, 6);
	assert_int_equal(objs.n_slices, 5);
	informer_objects_cleanup(&objs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(typed_json_lists_keep_file_order),
		cmocka_unit_test(kubectl_yaml_gives_the_same_objects_as_json),
		cmocka_unit_test(concatenated_json_and_multi_doc_yaml_accepted),
		cmocka_unit_test(single_objects_and_top_level_arrays_accepted),
		cmocka_unit_test(other_kinds_and_rejected_objects_skipped_and_counted),
		cmocka_unit_test(syntax_errors_refused_and_objects_unchanged),
		cmocka_unit_test(every_truncation_parses_or_is_refused),
		cmocka_unit_test(blank_input_gives_no_objects),
		cmocka_unit_test(load_reads_files_and_stdin_and_reports_errors),
		cmocka_unit_test(cleanup_skips_objects_taken_out),
		cmocka_unit_test(jansson_allocation_failures_fail_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
