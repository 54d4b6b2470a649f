/*
 * test/test_cmd_options.c - flags, KubeProxyConfiguration, validation.
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

#include "cmd/options.h"

/* Parse a NULL-terminated flag list (argv[0] added). */
static int parse(struct cmd_options *o, char *err, size_t errlen, ...)
{
	char *argv[32] = { "kube-iptables-proxy" };
	int argc = 1;
	va_list ap;

	va_start(ap, errlen);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	assert_int_equal(cmd_options_init(o), 0);
	return cmd_options_parse(o, argc, argv, err, errlen);
}

static void durations_parse_like_go(void **state)
{
	static const struct {
		const char *in;
		long long ms;
	} ok[] = { { "30s", 30000 },	    { "1m0s", 60000 }, { "1h30m", 5400000 },
		   { "500ms", 500 },	    { "1.5s", 1500 },  { "0", 0 },
		   { "24h0m0s", 86400000 }, { "100ms", 100 },  { "2m3.5s", 123500 } };
	static const char *const bad[] = { "30", "", "s", "1x", "1h-5m", "abc", "1.2.3s" };
	long long ms;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(cmd_parse_duration(ok[i].in, &ms), 0);
		assert_int_equal(ms, ok[i].ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cmd_parse_duration(bad[i], &ms), -EINVAL);
}

static void durations_format_like_go(void **state)
{
	static const struct {
		long long ms;
		const char *out;
	} cases[] = { { 0, "0s" },	   { 500, "500ms" },	    { 1000, "1s" },
		      { 30000, "30s" },	   { 60000, "1m0s" },	    { 90000, "1m30s" },
		      { 900000, "15m0s" }, { 86400000, "24h0m0s" }, { 1500, "1.5s" } };
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cmd_format_duration(cases[i].ms, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].out);
	}
}

static void flag_syntaxes(void **state)
{
	struct cmd_options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "--masquerade-all", "--cluster-cidr",
			       "10.0.0.0/8, fd00::/64", "--iptables-sync-period=1m", "-v", "4",
			       "--iptables-localhost-nodeports=false", "--nodeport-addresses",
			       "primary", NULL),
			 0);
	assert_true(o.cfg.masquerade_all);
	assert_int_equal(o.cfg.cluster_cidrs.n, 2);
	assert_string_equal(o.cfg.cluster_cidrs.v[1], "fd00::/64");
	assert_int_equal(o.cfg.sync_period_ms, 60000);
	assert_int_equal(o.verbosity, 4);
	assert_false(o.cfg.localhost_nodeports);
	assert_string_equal(o.cfg.nodeport_addresses.v[0], "primary");
	cmd_options_cleanup(&o);

	assert_int_equal(parse(&o, err, sizeof(err), "-v=2", NULL), 0);
	assert_int_equal(o.verbosity, 2);
	cmd_options_cleanup(&o);
	assert_int_equal(parse(&o, err, sizeof(err), "-v3", NULL), 0);
	assert_int_equal(o.verbosity, 3);
	cmd_options_cleanup(&o);
}

static void bad_flags_say_what_is_wrong(void **state)
{
	static const struct {
		const char *args[3];
		const char *msg;
	} cases[] = {
		{ { "--no-such-flag", NULL }, "unknown flag: --no-such-flag" },
		{ { "-x", NULL }, "unknown shorthand flag" },
		{ { "--kubeconfig", NULL }, "flag needs an argument: --kubeconfig" },
		{ { "--iptables-sync-period=30", NULL }, "want a duration" },
		{ { "--iptables-masquerade-bit=-1", NULL }, "non-negative" },
		{ { "--masquerade-all=yes", NULL }, "want true or false" },
		{ { "--detect-local-mode=Foo", NULL }, "invalid detect-local-mode Foo" },
		{ { "--feature-gates=PreferSameTrafficDistribution", NULL }, "Name=true|false" },
		{ { "stray", NULL }, "unexpected argument" },
	};
	struct cmd_options o;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(&o, err, sizeof(err), cases[i].args[0], NULL), -EINVAL);
		if (!strstr(err, cases[i].msg))
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].args[0], err,
				 cases[i].msg);
		cmd_options_cleanup(&o);
	}
}

static void ignored_flags_and_gates_warn(void **state)
{
	struct cmd_options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "--ipvs-scheduler=rr", "--profiling",
			       "--feature-gates=PreferSameTrafficDistribution=false,Foo=true",
			       NULL),
			 0);
	assert_false(o.cfg.gate_prefer_same_node);
	assert_int_equal(o.warnings.n, 3);
	assert_non_null(strstr(o.warnings.v[0], "--ipvs-scheduler has no effect"));
	assert_non_null(strstr(o.warnings.v[2], "feature gate Foo has no effect"));
	cmd_options_cleanup(&o);
}

static char *write_tmp(const char *text)
{
	char *path = strdup("/tmp/kip-test-config-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static const char kubeadm_config[] = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
				     "kind: KubeProxyConfiguration\n"
				     "bindAddress: 0.0.0.0\n"
				     "clientConnection:\n"
				     "  acceptContentTypes: \"\"\n"
				     "  burst: 0\n"
				     "  contentType: \"\"\n"
				     "  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n"
				     "  qps: 0\n"
				     "clusterCIDR: 10.244.0.0/16\n"
				     "configSyncPeriod: 0s\n"
				     "conntrack:\n"
				     "  maxPerCore: null\n"
				     "  min: null\n"
				     "  tcpCloseWaitTimeout: null\n"
				     "  tcpEstablishedTimeout: null\n"
				     "detectLocalMode: \"\"\n"
				     "enableProfiling: false\n"
				     "healthzBindAddress: \"\"\n"
				     "hostnameOverride: \"\"\n"
				     "iptables:\n"
				     "  localhostNodePorts: null\n"
				     "  masqueradeAll: false\n"
				     "  masqueradeBit: null\n"
				     "  minSyncPeriod: 0s\n"
				     "  syncPeriod: 0s\n"
				     "ipvs:\n"
				     "  excludeCIDRs: null\n"
				     "  scheduler: \"\"\n"
				     "mode: \"\"\n"
				     "nodePortAddresses: null\n"
				     "oomScoreAdj: null\n"
				     "portRange: \"\"\n"
				     "winkernel:\n"
				     "  enableDSR: false\n";

static void kubeadm_configmap_loads(void **state)
{
	struct cmd_options o;
	char err[256], *path = write_tmp(kubeadm_config);

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "--config", path, "--hostname-override=n1",
			       "--masquerade-all", NULL),
			 0);
	assert_string_equal(o.cfg.kubeconfig, "/var/lib/kube-proxy/kubeconfig.conf");
	assert_int_equal(o.cfg.cluster_cidrs.n, 1);
	assert_string_equal(o.cfg.cluster_cidrs.v[0], "10.244.0.0/16");
	/* nulls keep the defaults, zeros and "" get them (upstream's defaulting) */
	assert_int_equal(o.cfg.sync_period_ms, 30000);
	assert_int_equal(o.cfg.min_sync_period_ms, 1000);
	assert_int_equal(o.cfg.config_sync_period_ms, 15 * 60 * 1000);
	assert_string_equal(o.cfg.healthz_bind_address, "0.0.0.0:10256");
	assert_string_equal(o.cfg.metrics_bind_address, "127.0.0.1:10249");
	assert_true(o.cfg.kube_api_qps == 5.0);
	assert_int_equal(o.cfg.kube_api_burst, 10);
	assert_int_equal(proxy_config_validate(&o.cfg, err, sizeof(err)), 0);
	assert_int_equal(o.cfg.masquerade_bit, 14);
	assert_int_equal(o.cfg.conntrack_max_per_core, 32768);
	assert_true(o.cfg.localhost_nodeports);
	/* --hostname-override beats the file; other flags are ignored, with a warning */
	assert_string_equal(o.cfg.hostname_override, "n1");
	assert_false(o.cfg.masquerade_all);
	assert_non_null(strstr(o.warnings.v[o.warnings.n - 1], "--masquerade-all is ignored"));
	cmd_options_cleanup(&o);
	unlink(path);
	free(path);
}

static void config_errors_and_unknown_fields(void **state)
{
	static const struct {
		const char *text;
		const char *msg;
	} bad[] = {
		{ "apiVersion: v1\nkind: Pod\n",
		  "want apiVersion kubeproxy.config.k8s.io/v1alpha1" },
		{ "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
		  "mode: ipvs\n",
		  "mode ipvs: not supported" },
		{ "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
		  "iptables:\n  syncPeriod: 30\n",
		  "iptables.syncPeriod: want a duration" },
		{ "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
		  "iptables: [1]\n",
		  "iptables: unexpected a list" },
		{ "{\"apiVersion\": ", "invalid JSON" },
	};
	struct cmd_options o;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cmd_options_init(&o), 0);
		assert_int_equal(
			cmd_config_load(&o, bad[i].text, strlen(bad[i].text), err, sizeof(err)),
			-EINVAL);
		if (!strstr(err, bad[i].msg))
			fail_msg("got \"%s\", want \"%s\"", err, bad[i].msg);
		cmd_options_cleanup(&o);
	}
	assert_int_equal(cmd_options_init(&o), 0);
	{
		static const char t[] = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
					"kind: KubeProxyConfiguration\n"
					"frobnicate: 1\n"
					"iptables:\n  turbo: true\n  masqueradeBit: 12\n";

		assert_int_equal(cmd_config_load(&o, t, strlen(t), err, sizeof(err)), 0);
	}
	assert_int_equal(o.cfg.masquerade_bit, 12);
	assert_int_equal(o.warnings.n, 2);
	assert_non_null(strstr(o.warnings.v[1], "unknown field iptables.turbo"));
	cmd_options_cleanup(&o);
	assert_int_equal(cmd_options_init(&o), 0);
	{
		static const char t[] = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
					"kind: KubeProxyConfiguration\n"
					"healthzBindAddress: 10.0.0.1\n"
					"metricsBindAddress: \"::1\"\n";

		assert_int_equal(cmd_config_load(&o, t, strlen(t), err, sizeof(err)), 0);
	}
	/* upstream's AppendPortIfNeeded */
	assert_string_equal(o.cfg.healthz_bind_address, "10.0.0.1:10256");
	assert_string_equal(o.cfg.metrics_bind_address, "[::1]:10249");
	cmd_options_cleanup(&o);
}

static void config_json_round_trips(void **state)
{
	struct cmd_options a, b;
	char err[256], *json;

	(void)state;
	assert_int_equal(parse(&a, err, sizeof(err), "--cluster-cidr=10.0.0.0/8,fd00::/48",
			       "--detect-local-mode=BridgeInterface", "--pod-bridge-interface=cbr0",
			       "--iptables-min-sync-period=250ms",
			       "--nodeport-addresses=10.1.0.0/16", "--conntrack-tcp-be-liberal",
			       "--iptables-masquerade-bit=9", NULL),
			 0);
	assert_int_equal(cmd_config_json(&a.cfg, &json), 0);
	assert_int_equal(cmd_options_init(&b), 0);
	assert_int_equal(cmd_config_load(&b, json, strlen(json), err, sizeof(err)), 0);
	assert_int_equal(b.warnings.n, 0);
	assert_int_equal(b.cfg.cluster_cidrs.n, 2);
	assert_string_equal(b.cfg.cluster_cidrs.v[1], "fd00::/48");
	assert_int_equal(b.cfg.detect_local_mode, PROXY_LOCAL_BRIDGE_INTERFACE);
	assert_string_equal(b.cfg.pod_bridge_interface, "cbr0");
	assert_int_equal(b.cfg.min_sync_period_ms, 250);
	assert_string_equal(b.cfg.nodeport_addresses.v[0], "10.1.0.0/16");
	assert_true(b.cfg.conntrack_tcp_be_liberal);
	assert_int_equal(b.cfg.masquerade_bit, 9);
	free(json);
	cmd_options_cleanup(&a);
	cmd_options_cleanup(&b);
}

static void validation_names_the_setting(void **state)
{
	static const struct {
		const char *flag;
		const char *msg;
	} bad[] = {
		{ "--cluster-cidr=10.0.0.0/33", "clusterCIDR 10.0.0.0/33: not a valid CIDR" },
		{ "--cluster-cidr=10.0.0.0/8,10.1.0.0/16", "at most one CIDR per IP family" },
		{ "--iptables-masquerade-bit=32", "masqueradeBit 32" },
		{ "--iptables-min-sync-period=1m", "minSyncPeriod must be less than or equal" },
		{ "--detect-local-mode=BridgeInterface", "needs detectLocal.bridgeInterface" },
		{ "--nodeport-addresses=primary,10.0.0.0/8", "cannot be combined" },
		{ "--proxy-mode=ipvs", "only implements the iptables mode" },
	};
	struct cmd_options o;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&o, err, sizeof(err), bad[i].flag, NULL), 0);
		assert_int_equal(proxy_config_validate(&o.cfg, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].msg))
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i].flag, err, bad[i].msg);
		cmd_options_cleanup(&o);
	}
}

static void help_and_man_list_every_flag(void **state)
{
	const char *const *names = cmd_options_flag_names();
	char *help = NULL, *man = NULL, want[80];
	size_t hl = 0, ml = 0, i;
	FILE *f;

	(void)state;
	f = open_memstream(&help, &hl);
	cmd_options_usage(f, "kube-iptables-proxy");
	fclose(f);
	f = open_memstream(&man, &ml);
	cmd_options_man(f);
	fclose(f);
	for (i = 0; names[i]; i++) {
		char roff[160], *o = roff;
		const char *p;

		snprintf(want, sizeof(want), "--%s", names[i]);
		assert_non_null(strstr(help, want));
		/* the man page escapes every '-' */
		o += sprintf(o, "\\-\\-");
		for (p = names[i]; *p; p++) {
			if (*p == '-')
				*o++ = '\\';
			*o++ = *p;
		}
		*o = '\0';
		if (!strstr(man, roff))
			fail_msg("man page lacks %s", want);
	}
	free(help);
	free(man);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(durations_parse_like_go),
		cmocka_unit_test(durations_format_like_go),
		cmocka_unit_test(flag_syntaxes),
		cmocka_unit_test(bad_flags_say_what_is_wrong),
		cmocka_unit_test(ignored_flags_and_gates_warn),
		cmocka_unit_test(kubeadm_configmap_loads),
		cmocka_unit_test(config_errors_and_unknown_fields),
		cmocka_unit_test(config_json_round_trips),
		cmocka_unit_test(validation_names_the_setting),
		cmocka_unit_test(help_and_man_list_every_flag),
	};

	return cmocka_run_group_tests_name("cmd_options", tests, NULL, NULL);
}
