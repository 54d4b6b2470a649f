/*
 * test/test_informer_kubeconfig.c - informer_conn_load(): kubeconfig, --master, in-cluster.
 *
 * Each test writes its files into a fresh directory under $TMPDIR (or /tmp).
 * Credential refresh at request time (token file rotation, exec plugins) is
 * exercised against the test API server in test/informer/.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "informer/http.h"
#include "informer/informer.h"
#include "informer/internal.h"

/* "-----BEGIN CERTIFICATE-----\nMIIC...\n-----END CERTIFICATE-----\n" */
#define PEM_B64 \
	"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUMuLi4KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
#define PEM "-----BEGIN CERTIFICATE-----\nMIIC...\n-----END CERTIFICATE-----\n"

struct dir {
	char path[256];
};

static int dir_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct dir *d = calloc(1, sizeof(*d));

	if (!d)
		return -1;
	snprintf(d->path, sizeof(d->path), "%s/kip-kubeconfig-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(d->path)) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int dir_teardown(void **state)
{
	struct dir *d = *state;
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", d->path);
	free(d);
	return 0;
}

/* Write @text to @dir/@name; returns the path (static buffer per call site use). */
static const char *put(const struct dir *d, const char *name, const char *text)
{
	static char path[4][512];
	static int next;
	char *p = path[next++ % 4];
	FILE *f;

	snprintf(p, 512, "%s/%s", d->path, name);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	fclose(f);
	return p;
}

static struct informer_conn *load_ok(const char *kc, const char *master)
{
	struct informer_conn *c = NULL;
	char err[512] = "";
	int ret = informer_conn_load(kc, master, &c, err, sizeof(err));

	if (ret)
		fail_msg("informer_conn_load: %d: %s", ret, err);
	return c;
}

static int load_err(const char *kc, const char *master, char *err, size_t len)
{
	struct informer_conn *c = NULL;
	int ret = informer_conn_load(kc, master, &c, err, len);

	assert_null(c);
	assert_true(ret < 0);
	assert_true(err[0] != '\0');
	return ret;
}

static void kubeconfig_kubeadm_kube_proxy_shape(void **state)
{
	struct dir *d = *state;
	const struct informer_http_tls *tls;
	struct informer_conn *c;
	char want[512];

	put(d, "ca.crt", PEM);
	put(d, "token", "  eyJhbGciOi.token.sig \n");
	c = load_ok(put(d, "kubeconfig.conf",
			"apiVersion: v1\n"
			"kind: Config\n"
			"clusters:\n"
			"- cluster:\n"
			"    certificate-authority: ca.crt\n"
			"    server: https://192.168.10.5:6443/\n"
			"  name: default\n"
			"contexts:\n"
			"- context:\n"
			"    cluster: default\n"
			"    namespace: default\n"
			"    user: default\n"
			"  name: default\n"
			"current-context: default\n"
			"users:\n"
			"- name: default\n"
			"  user:\n"
			"    token: static-loses\n"
			"    tokenFile: token\n"),
		    NULL);
	assert_string_equal(informer_conn_server(c), "https://192.168.10.5:6443");
	assert_string_equal(informer__conn_base(c), "https://192.168.10.5:6443");
	tls = informer__conn_tls(c);
	snprintf(want, sizeof(want), "%s/ca.crt", d->path);
	assert_string_equal(tls->ca_file, want);
	assert_null(tls->ca_pem);
	assert_null(tls->connect_to);
	assert_false(tls->insecure);
	/* tokenFile beats token; white space trimmed */
	assert_string_equal(informer__conn_cred(c)->token, "eyJhbGciOi.token.sig");
	informer_conn_free(c);
}

static void kubeconfig_inline_data_and_tls_server_name(void **state)
{
	struct dir *d = *state;
	const struct informer_http_tls *tls;
	struct informer_conn *c;

	c = load_ok(put(d, "admin.conf",
			"apiVersion: v1\n"
			"kind: Config\n"
			"clusters:\n"
			"- name: kind-dev\n"
			"  cluster:\n"
			"    server: https://[fd00::5]:39201\n"
			"    tls-server-name: kubernetes\n"
			"    certificate-authority-data: " PEM_B64 "\n"
			"contexts:\n"
			"- name: kind-dev\n"
			"  context: {cluster: kind-dev, user: kind-dev}\n"
			"current-context: kind-dev\n"
			"users:\n"
			"- name: kind-dev\n"
			"  user:\n"
			"    client-certificate-data: " PEM_B64 "\n"
			"    client-key-data: " PEM_B64 "\n"),
		    NULL);
	tls = informer__conn_tls(c);
	assert_int_equal(tls->ca_len, strlen(PEM));
	assert_memory_equal(tls->ca_pem, PEM, strlen(PEM));
	assert_int_equal(tls->cert_len, strlen(PEM));
	assert_memory_equal(tls->cert_pem, PEM, strlen(PEM));
	assert_memory_equal(tls->key_pem, PEM, strlen(PEM));
	assert_null(tls->ca_file);
	/* the URL names tls-server-name; the connection goes to the configured host */
	assert_string_equal(informer__conn_base(c), "https://kubernetes:39201");
	assert_string_equal(tls->connect_to, "kubernetes:39201:[fd00::5]:39201");
	assert_string_equal(informer_conn_server(c), "https://[fd00::5]:39201");
	assert_null(informer__conn_cred(c)->token);
	informer_conn_free(c);
}

static void kubeconfig_master_overrides_server(void **state)
{
	struct dir *d = *state;
	struct informer_conn *c;

	c = load_ok(put(d, "kc",
			"current-context: x\n"
			"contexts: [{name: x, context: {cluster: c, user: u}}]\n"
			"clusters: [{name: c, cluster: {server: 'https://10.0.0.1', "
			"certificate-authority-data: " PEM_B64 "}}]\n"
			"users: [{name: u, user: {token: abc}}]\n"),
		    "https://10.0.0.2:6443");
	assert_string_equal(informer_conn_server(c), "https://10.0.0.2:6443");
	assert_non_null(informer__conn_tls(c)->ca_pem); /* the cluster's CA is kept */
	assert_string_equal(informer__conn_cred(c)->token, "abc");
	informer_conn_free(c);

	/* --master alone: no credentials; without a scheme (and no TLS) it is http */
	c = load_ok(NULL, "127.0.0.1:8080");
	assert_string_equal(informer_conn_server(c), "http://127.0.0.1:8080");
	assert_null(informer__conn_cred(c)->token);
	informer_conn_free(c);
}

static void kubeconfig_exec_plugin_config(void **state)
{
	struct dir *d = *state;
	struct informer_conn *c;
	char err[512];

	c = load_ok(put(d, "kc",
			"current-context: gke\n"
			"contexts: [{name: gke, context: {cluster: gke, user: gke}}]\n"
			"clusters: [{name: gke, cluster: {server: 'https://34.0.0.1'}}]\n"
			"users:\n"
			"- name: gke\n"
			"  user:\n"
			"    exec:\n"
			"      apiVersion: client.authentication.k8s.io/v1beta1\n"
			"      command: gke-gcloud-auth-plugin\n"
			"      args: []\n"
			"      env: null\n"
			"      provideClusterInfo: true\n"
			"      interactiveMode: IfAvailable\n"),
		    NULL);
	informer_conn_free(c);

	assert_int_equal(load_err(put(d, "kc2",
				      "current-context: x\n"
				      "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
				      "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
				      "users: [{name: u, user: {exec: {apiVersion: "
				      "client.authentication.k8s.io/v1alpha1, command: x}}}]\n"),
				  NULL, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "v1alpha1"));
}

static void kubeconfig_errors_name_what_failed(void **state)
{
	static const char head[] = "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
				   "users: [{name: u, user: {}}]\n";
	struct dir *d = *state;
	char err[512], text[1024];

	assert_int_equal(load_err("/nonexistent/kubeconfig", NULL, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/kubeconfig"));

	assert_int_equal(load_err(put(d, "a", "current-context: x\n"), NULL, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "context \"x\" not found"));

	snprintf(text, sizeof(text),
		 "%scurrent-context: x\nclusters: [{name: c, cluster: "
		 "{server: 'https://h', insecure-skip-tls-verify: true, "
		 "certificate-authority-data: " PEM_B64 "}}]\n",
		 head);
	assert_int_equal(load_err(put(d, "b", text), NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "insecure"));

	snprintf(text, sizeof(text),
		 "%scurrent-context: x\nclusters: [{name: c, cluster: "
		 "{server: 'https://h', certificate-authority-data: '!!!'}}]\n",
		 head);
	assert_int_equal(load_err(put(d, "c", text), NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "base64"));

	snprintf(text, sizeof(text),
		 "%scurrent-context: x\nclusters: [{name: c, cluster: "
		 "{server: 'https://h', certificate-authority: missing.crt}}]\n",
		 head);
	assert_int_equal(load_err(put(d, "e", text), NULL, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "missing.crt"));

	snprintf(text, sizeof(text), "%scurrent-context: x\nclusters: [{name: c, cluster: {}}]\n",
		 head);
	assert_int_equal(load_err(put(d, "f", text), NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no server"));

	snprintf(text, sizeof(text),
		 "%scurrent-context: x\nclusters: [{name: c, cluster: "
		 "{server: 'ftp://h'}}]\n",
		 head);
	assert_int_equal(load_err(put(d, "g", text), NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "scheme"));

	assert_int_equal(
		load_err(put(d, "h", "current-context: x\n  bad: [yaml\n"), NULL, err, sizeof(err)),
		-EINVAL);
}

static void in_cluster_config(void **state)
{
	struct dir *d = *state;
	struct informer_conn *c;
	char err[512], want[512];

	put(d, "token", "sa-token\n");
	put(d, "ca.crt", PEM);
	assert_int_equal(setenv("KIP_TEST_SERVICEACCOUNT_DIR", d->path, 1), 0);
	assert_int_equal(setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1), 0);
	assert_int_equal(setenv("KUBERNETES_SERVICE_PORT", "443", 1), 0);
	c = load_ok(NULL, NULL);
	/* IPv6 hosts are bracketed */
	assert_string_equal(informer_conn_server(c), "https://[fd00:10:96::1]:443");
	assert_string_equal(informer__conn_cred(c)->token, "sa-token");
	snprintf(want, sizeof(want), "%s/ca.crt", d->path);
	assert_string_equal(informer__conn_tls(c)->ca_file, want);
	informer_conn_free(c);

	assert_int_equal(unsetenv("KUBERNETES_SERVICE_HOST"), 0);
	assert_int_equal(load_err(NULL, NULL, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
	assert_int_equal(unsetenv("KUBERNETES_SERVICE_PORT"), 0);
	assert_int_equal(unsetenv("KIP_TEST_SERVICEACCOUNT_DIR"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(kubeconfig_kubeadm_kube_proxy_shape, dir_setup,
						dir_teardown),
		cmocka_unit_test_setup_teardown(kubeconfig_inline_data_and_tls_server_name,
						dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(kubeconfig_master_overrides_server, dir_setup,
						dir_teardown),
		cmocka_unit_test_setup_teardown(kubeconfig_exec_plugin_config, dir_setup,
						dir_teardown),
		cmocka_unit_test_setup_teardown(kubeconfig_errors_name_what_failed, dir_setup,
						dir_teardown),
		cmocka_unit_test_setup_teardown(in_cluster_config, dir_setup, dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
