/*
 * test/test_proxy_metrics.c - the Prometheus text of struct proxy_metrics,
 * and the metrics server over real HTTP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/metrics.h"
#include "proxy/metricsd.h"
#include "rules/buf.h"
#include "test/proxy/harness.h"

#define N_ARRAY(a) (sizeof(a) / sizeof((a)[0]))

static char *render(const struct proxy_metrics *m)
{
	struct rules_buf b;

	rules_buf_init(&b, 0);
	assert_int_equal(proxy_metrics_render(m, &b), 0);
	assert_non_null(b.data);
	return rules_buf_take(&b, NULL);
}

/* Whether @text has @line as a whole line. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line))) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
		p += n;
	}
	return false;
}

static void assert_line(const char *text, const char *line)
{
	if (!has_line(text, line))
		fail_msg("missing line: %s", line);
}

/* ---- a validator for the text format (version 0.0.4) -------------------- */

struct series_check {
	char base[256]; /* histogram series being read: its non-le labels */
	double last_le;
	double last_count;
	bool inf_seen;
	double inf_count;
};

/* Parse "name{k="v",...} value"; returns 0 and fills the parts, or -1. */
static int parse_sample(const char *line, char *name, size_t name_size, char *labels,
			size_t labels_size, double *value)
{
	const char *p = line, *sp;
	size_t n;

	while (*p && *p != '{' && *p != ' ')
		p++;
	n = (size_t)(p - line);
	if (!n || n >= name_size)
		return -1;
	memcpy(name, line, n);
	name[n] = '\0';
	labels[0] = '\0';
	if (*p == '{') {
		const char *end = strstr(p, "} ");

		if (!end || (size_t)(end - p - 1) >= labels_size)
			return -1;
		memcpy(labels, p + 1, (size_t)(end - p - 1));
		labels[end - p - 1] = '\0';
		p = end + 1;
	}
	if (*p != ' ')
		return -1;
	sp = p + 1;
	if (!strcmp(sp, "+Inf"))
		*value = INFINITY;
	else if (!strcmp(sp, "-Inf"))
		*value = -INFINITY;
	else if (!strcmp(sp, "NaN"))
		*value = NAN;
	else {
		char *end;

		*value = strtod(sp, &end);
		if (end == sp || *end)
			return -1;
	}
	return 0;
}

/* Label pairs well-formed, names sorted (le last); the le value is returned. */
static int check_labels(char *labels, bool want_le, double *le)
{
	char prev[64] = "", *pair, *save = NULL, *eq;
	bool le_seen = false;

	for (pair = strtok_r(labels, ",", &save); pair; pair = strtok_r(NULL, ",", &save)) {
		eq = strchr(pair, '=');
		if (!eq || eq[1] != '"' || pair[strlen(pair) - 1] != '"' || eq == pair)
			return -1;
		*eq = '\0';
		if (le_seen || strcmp(prev, pair) >= 0)
			return -1;
		if (!strcmp(pair, "le")) {
			le_seen = true;
			eq[strlen(eq + 1)] = '\0';
			*le = !strcmp(eq + 2, "+Inf") ? INFINITY : strtod(eq + 2, NULL);
		}
		snprintf(prev, sizeof(prev), "%s", pair);
	}
	return le_seen == want_le ? 0 : -1;
}

/* NULL if @text is valid exposition text, else what is wrong with it. */
static const char *validate(const char *text)
{
	char family[512] = "", type[16] = "", name[160], labels[256], key[256], line[512];
	const char *p = text, *nl;
	struct series_check hs = { .base = "" };
	double value, le = 0;
	bool typed = false;
	size_t n, fl;

	if (!*text || text[strlen(text) - 1] != '\n')
		return "does not end with a newline";
	for (; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		n = (size_t)(nl - p);
		if (n >= sizeof(line))
			return "line too long";
		memcpy(line, p, n);
		line[n] = '\0';

		if (!strncmp(line, "# HELP ", 7)) {
			char *sp = strchr(line + 7, ' ');

			if (!sp)
				return "HELP without text";
			*sp = '\0';
			if (*family && strcmp(family, line + 7) >= 0)
				return "families not sorted, or repeated";
			snprintf(family, sizeof(family), "%s", line + 7);
			typed = false;
			hs.base[0] = '\0';
			continue;
		}
		fl = strlen(family);
		if (!strncmp(line, "# TYPE ", 7)) {
			if (strncmp(line + 7, family, fl) || line[7 + fl] != ' ')
				return "TYPE does not follow its HELP";
			snprintf(type, sizeof(type), "%s", line + 8 + fl);
			if (strcmp(type, "counter") && strcmp(type, "gauge") &&
			    strcmp(type, "histogram"))
				return "unknown TYPE";
			typed = true;
			continue;
		}
		if (!typed)
			return "sample before HELP and TYPE";
		if (parse_sample(line, name, sizeof(name), labels, sizeof(labels), &value))
			return "malformed sample";
		if (strncmp(name, family, fl))
			return "sample of another family";
		if (strcmp(type, "histogram")) {
			if (name[fl])
				return "suffix on a counter or gauge";
			if (check_labels(labels, false, &le))
				return "malformed or unsorted labels";
			continue;
		}
		/* Histograms: _bucket series with increasing le and counts, then _sum, _count. */
		if (!strcmp(name + fl, "_bucket")) {
			char *le_pos = strstr(labels, "le=");

			if (!le_pos)
				return "bucket without le";
			snprintf(key, sizeof(key), "%.*s", (int)(le_pos - labels), labels);
			if (check_labels(labels, true, &le))
				return "malformed or unsorted bucket labels";
			if (strcmp(key, hs.base)) {
				if (*hs.base && !hs.inf_seen)
					return "series without a +Inf bucket";
				snprintf(hs.base, sizeof(hs.base), "%s", key);
				hs.last_le = -INFINITY;
				hs.last_count = 0;
				hs.inf_seen = false;
			}
			if (hs.inf_seen || le <= hs.last_le)
				return "buckets not in increasing le order";
			if (value < hs.last_count)
				return "bucket counts not cumulative";
			hs.last_le = le;
			hs.last_count = value;
			if (isinf(le)) {
				hs.inf_seen = true;
				hs.inf_count = value;
			}
		} else if (!strcmp(name + fl, "_count")) {
			if (!hs.inf_seen || value != hs.inf_count)
				return "_count differs from the +Inf bucket";
		} else if (strcmp(name + fl, "_sum")) {
			return "unknown histogram suffix";
		}
	}
	return NULL;
}

static void assert_valid(const char *text)
{
	const char *why = validate(text);

	if (why)
		fail_msg("invalid exposition text: %s", why);
}

/* ---- tests -------------------------------------------------------------- */

static void metrics_init_uses_upstream_buckets(void **state)
{
	static const double sync[] = {
		0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064,  0.128,
		0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384,
	};
	struct proxy_metrics m;
	const struct proxy_hist *np;
	double want;
	size_t i;

	(void)state;
	proxy_metrics_init(&m);
	assert_int_equal(m.sync_duration[PROXY_FAM_V4].n_bounds, N_ARRAY(sync));
	for (i = 0; i < N_ARRAY(sync); i++) {
		/* ExponentialBuckets(0.001, 2, 15): start *= 2 */
		assert_true(m.sync_duration[PROXY_FAM_V4].bounds[i] == sync[i]);
		assert_true(m.sync_full_duration[PROXY_FAM_V6].bounds[i] == sync[i]);
		assert_true(m.sync_partial_duration[PROXY_FAM_V4].bounds[i] == sync[i]);
		assert_true(m.conntrack_duration[PROXY_FAM_V6].bounds[i] == sync[i]);
	}

	/* MergeBuckets(0, 0.25.., 1..59, 60..115 step 5, 120..300 step 30) */
	np = &m.network_programming[PROXY_FAM_V6];
	assert_int_equal(np->n_bounds, 81);
	for (i = 0; i < np->n_bounds; i++) {
		if (i == 0)
			want = 0;
		else if (i <= 2)
			want = 0.25 * (double)i;
		else if (i <= 61)
			want = (double)(i - 2);
		else if (i <= 73)
			want = 60 + 5 * (double)(i - 62);
		else
			want = 120 + 30 * (double)(i - 74);
		assert_true(np->bounds[i] == want);
	}
	assert_int_equal(m.sync_duration[PROXY_FAM_V4].count, 0);
	assert_false(m.family_enabled[PROXY_FAM_V4]);
}

static void hist_observe_is_cumulative_and_inclusive(void **state)
{
	static const struct {
		double v;
	} obs[] = { { 0.001 }, { 0.0015 }, { 0.5 }, { 16.384 }, { 99 }, { 0 } };
	static const struct {
		size_t bucket; /* index into the sync buckets */
		uint64_t want;
	} want[] = {
		{ 0, 2 },  /* 0.001 (inclusive) and 0 */
		{ 1, 3 },  /* + 0.0015 */
		{ 8, 3 },  /* 0.256 */
		{ 9, 4 },  /* 0.512: + 0.5 */
		{ 13, 4 }, /* 8.192 */
		{ 14, 5 }, /* 16.384 (inclusive) */
	};
	struct proxy_metrics m;
	struct proxy_hist *h = &m.sync_duration[PROXY_FAM_V4];
	size_t i;

	(void)state;
	proxy_metrics_init(&m);
	for (i = 0; i < N_ARRAY(obs); i++)
		proxy_hist_observe(h, obs[i].v);
	for (i = 0; i < N_ARRAY(want); i++)
		assert_int_equal(h->counts[want[i].bucket], want[i].want);
	assert_int_equal(h->count, 6); /* 99 only in +Inf */
	assert_true(fabs(h->sum - (0.001 + 0.0015 + 0.5 + 16.384 + 99)) < 1e-9);
	assert_int_equal(m.sync_duration[PROXY_FAM_V6].count, 0);
}

static void render_formats_numbers_as_go(void **state)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
		{ 0, "0" },
		{ 1, "1" },
		{ -1, "-1" },
		{ 0.001, "0.001" },
		{ 0.0001, "0.0001" },
		{ 0.00001, "1e-05" },
		{ 2.5e-05, "2.5e-05" },
		{ 1.5e-07, "1.5e-07" },
		{ 16.384, "16.384" },
		{ 123.456, "123.456" },
		{ -0.5, "-0.5" },
		{ 100000, "100000" },
		{ 999999, "999999" },
		{ 1e6, "1e+06" },
		{ 1234567, "1.234567e+06" },
		{ 1048576, "1.048576e+06" },
		{ 1700000000.123456, "1.700000000123456e+09" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 1e21, "1e+21" },
		{ 1e100, "1e+100" },
		{ 5e-324, "5e-324" },
		{ 1.7976931348623157e308, "1.7976931348623157e+308" },
		{ INFINITY, "+Inf" },
		{ -INFINITY, "-Inf" },
		{ NAN, "NaN" },
	};
	struct proxy_metrics m;
	char line[160], *text;
	size_t i;

	(void)state;
	proxy_metrics_init(&m);
	m.family_enabled[PROXY_FAM_V4] = true;
	for (i = 0; i < N_ARRAY(cases); i++) {
		m.last_sync_ts[PROXY_FAM_V4] = cases[i].v;
		text = render(&m);
		snprintf(line, sizeof(line),
			 "kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family=\"IPv4\"} %s",
			 cases[i].want);
		assert_line(text, line);
		free(text);
	}
}

/* Every family upstream's iptables mode registers, plus ours. */
static const struct {
	const char *name;
	const char *type;
	const char *help;
} families[] = {
	{ "kubeiptablesproxy_chains_skipped_total", "counter",
	  "Unchanged chains a sync did not rewrite" },
	{ "kubeiptablesproxy_drift_repairs_total", "counter",
	  "Chains flushed or changed by someone else that a sync restored" },
	{ "kubeiptablesproxy_restore_bytes_total", "counter",
	  "Bytes of input written to iptables-restore" },
	{ "kubeproxy_conntrack_reconciler_deleted_entries_total", "counter",
	  "[ALPHA] Cumulative conntrack flows deleted by conntrack reconciler" },
	{ "kubeproxy_conntrack_reconciler_sync_duration_seconds", "histogram",
	  "[ALPHA] ReconcileConntrackFlowsLatency latency in seconds" },
	{ "kubeproxy_network_programming_duration_seconds", "histogram",
	  "[ALPHA] In Cluster Network Programming Latency in seconds" },
	{ "kubeproxy_proxy_healthz_total", "counter",
	  "[ALPHA] Cumulative proxy healthz HTTP status" },
	{ "kubeproxy_proxy_livez_total", "counter", "[ALPHA] Cumulative proxy livez HTTP status" },
	{ "kubeproxy_sync_full_proxy_rules_duration_seconds", "histogram",
	  "[ALPHA] SyncProxyRules latency in seconds for full resyncs" },
	{ "kubeproxy_sync_partial_proxy_rules_duration_seconds", "histogram",
	  "[ALPHA] SyncProxyRules latency in seconds for partial resyncs" },
	{ "kubeproxy_sync_proxy_rules_duration_seconds", "histogram",
	  "[ALPHA] SyncProxyRules latency in seconds" },
	{ "kubeproxy_sync_proxy_rules_endpoint_changes_pending", "gauge",
	  "[ALPHA] Pending proxy rules Endpoint changes" },
	{ "kubeproxy_sync_proxy_rules_endpoint_changes_total", "counter",
	  "[ALPHA] Cumulative proxy rules Endpoint changes" },
	{ "kubeproxy_sync_proxy_rules_iptables_last", "gauge",
	  "[ALPHA] Number of iptables rules written by kube-proxy in last sync" },
	{ "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total", "counter",
	  "[ALPHA] Cumulative proxy iptables partial restore failures" },
	{ "kubeproxy_sync_proxy_rules_iptables_restore_failures_total", "counter",
	  "[ALPHA] Cumulative proxy iptables restore failures" },
	{ "kubeproxy_sync_proxy_rules_iptables_total", "gauge",
	  "[ALPHA] Total number of iptables rules owned by kube-proxy" },
	{ "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", "gauge",
	  "[ALPHA] The last time a sync of proxy rules was queued" },
	{ "kubeproxy_sync_proxy_rules_last_timestamp_seconds", "gauge",
	  "[ALPHA] The last time proxy rules were successfully synced" },
	{ "kubeproxy_sync_proxy_rules_no_local_endpoints_total", "gauge",
	  "[ALPHA] Number of services with a Local traffic policy and no endpoints" },
	{ "kubeproxy_sync_proxy_rules_service_changes_pending", "gauge",
	  "[ALPHA] Pending proxy rules Service changes" },
	{ "kubeproxy_sync_proxy_rules_service_changes_total", "counter",
	  "[ALPHA] Cumulative proxy rules Service changes" },
};

static void validator_rejects_what_prometheus_rejects(void **state)
{
	static const char *const bad[] = {
		"x 1",
		"x 1\n",
		"# HELP b h\n# TYPE b gauge\nb 1\n# HELP a h\n# TYPE a gauge\na 1\n",
		"# HELP a h\n# TYPE a gauge\na{z=\"1\",b=\"2\"} 1\n",
		"# HELP a h\n# TYPE a gauge\na{b=2} 1\n",
		"# HELP a h\n# TYPE a gauge\na one\n",
		"# HELP a h\n# TYPE a gauge\na_total 1\n",
		"# HELP a h\n# TYPE a summary\na 1\n",
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
		"h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
		"h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\",a=\"x\"} 1\nh_sum 1\nh_count 1\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < N_ARRAY(bad); i++)
		if (!validate(bad[i]))
			fail_msg("accepted invalid text %zu: %s", i, bad[i]);
	assert_null(validate("# HELP h h\n# TYPE h histogram\nh_bucket{a=\"x\",le=\"1\"} 1\n"
			     "h_bucket{a=\"x\",le=\"+Inf\"} 1\nh_sum{a=\"x\"} 0.5\n"
			     "h_count{a=\"x\"} 1\n"));
}

static void render_has_upstream_names_help_and_types(void **state)
{
	struct proxy_metrics m;
	char line[256], *text;
	size_t i, n_help = 0;
	const char *p;

	(void)state;
	proxy_metrics_init(&m);
	m.family_enabled[PROXY_FAM_V4] = true;
	m.family_enabled[PROXY_FAM_V6] = true;
	text = render(&m);
	for (i = 0; i < N_ARRAY(families); i++) {
		snprintf(line, sizeof(line), "# HELP %s %s", families[i].name, families[i].help);
		assert_line(text, line);
		snprintf(line, sizeof(line), "# TYPE %s %s", families[i].name, families[i].type);
		assert_line(text, line);
	}
	for (p = text; (p = strstr(p, "# HELP ")); p++)
		n_help++;
	assert_int_equal(n_help, N_ARRAY(families)); /* nothing else */
	assert_valid(text);
	free(text);
}

static void render_writes_values_labels_and_histograms(void **state)
{
	static const char *const want[] = {
		"kubeiptablesproxy_restore_bytes_total{ip_family=\"IPv4\"} 1.048576e+06",
		"kubeproxy_conntrack_reconciler_deleted_entries_total{ip_family=\"IPv4\"} 3",
		"kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0\"} 0",
		"kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.25\"} 0",
		"kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"1\"} 1",
		"kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"300\"} 1",
		"kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"+Inf\"} 2",
		"kubeproxy_network_programming_duration_seconds_sum{ip_family=\"IPv4\"} 1000.75",
		"kubeproxy_network_programming_duration_seconds_count{ip_family=\"IPv4\"} 2",
		"kubeproxy_proxy_healthz_total{code=\"200\"} 5",
		"kubeproxy_proxy_healthz_total{code=\"503\"} 1",
		"kubeproxy_proxy_livez_total{code=\"200\"} 0",
		"kubeproxy_proxy_livez_total{code=\"503\"} 0",
		"kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.001\"} 1",
		"kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.002\"} 1",
		"kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.256\"} 2",
		"kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"16.384\"} 2",
		"kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"+Inf\"} 3",
		"kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family=\"IPv4\"} 20.251",
		"kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 3",
		"kubeproxy_sync_proxy_rules_endpoint_changes_pending 4",
		"kubeproxy_sync_proxy_rules_endpoint_changes_total 1.2e+07",
		"kubeproxy_sync_proxy_rules_iptables_last{ip_family=\"IPv4\",table=\"filter\"} 0",
		"kubeproxy_sync_proxy_rules_iptables_last{ip_family=\"IPv4\",table=\"nat\"} 12",
		"kubeproxy_sync_proxy_rules_iptables_total{ip_family=\"IPv4\",table=\"filter\"} 7",
		"kubeproxy_sync_proxy_rules_iptables_total{ip_family=\"IPv4\",table=\"nat\"} 98012",
		"kubeproxy_sync_proxy_rules_iptables_restore_failures_total{ip_family=\"IPv4\"} 2",
		"kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family=\"IPv4\"} 0",
		"kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family=\"IPv4\",traffic_policy=\"external\"} 1",
		"kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family=\"IPv4\",traffic_policy=\"internal\"} 2",
		"kubeproxy_sync_proxy_rules_service_changes_pending -1",
	};
	struct proxy_metrics m;
	char *text;
	size_t i;

	(void)state;
	proxy_metrics_init(&m);
	m.family_enabled[PROXY_FAM_V4] = true; /* IPv4 only */
	m.restore_bytes_total[PROXY_FAM_V4] = 1048576;
	m.conntrack_deleted[PROXY_FAM_V4] = 3;
	proxy_hist_observe(&m.network_programming[PROXY_FAM_V4], 0.75);
	proxy_hist_observe(&m.network_programming[PROXY_FAM_V4], 1000);
	m.healthz_total[PROXY_CODE_200] = 5;
	m.healthz_total[PROXY_CODE_503] = 1;
	proxy_hist_observe(&m.sync_duration[PROXY_FAM_V4], 0.001);
	proxy_hist_observe(&m.sync_duration[PROXY_FAM_V4], 0.25);
	proxy_hist_observe(&m.sync_duration[PROXY_FAM_V4], 20);
	m.endpoint_changes_pending = 4;
	m.endpoint_changes_total = 12000000;
	m.rules_last[PROXY_FAM_V4][PROXY_TABLE_NAT] = 12;
	m.rules_total[PROXY_FAM_V4][PROXY_TABLE_FILTER] = 7;
	m.rules_total[PROXY_FAM_V4][PROXY_TABLE_NAT] = 98012;
	m.restore_failures[PROXY_FAM_V4] = 2;
	m.no_local_external[PROXY_FAM_V4] = 1;
	m.no_local_internal[PROXY_FAM_V4] = 2;
	m.service_changes_pending = -1;
	/* IPv6 is disabled: its values never show. */
	m.restore_failures[PROXY_FAM_V6] = 9;

	text = render(&m);
	for (i = 0; i < N_ARRAY(want); i++)
		assert_line(text, want[i]);
	assert_null(strstr(text, "IPv6"));
	assert_valid(text);
	free(text);
}

static void render_without_families_keeps_only_unlabelled_metrics(void **state)
{
	struct proxy_metrics m;
	char *text;

	(void)state;
	proxy_metrics_init(&m);
	text = render(&m);
	assert_null(strstr(text, "ip_family"));
	assert_null(strstr(text, "kubeproxy_sync_proxy_rules_duration_seconds"));
	assert_line(text, "kubeproxy_proxy_livez_total{code=\"200\"} 0");
	assert_line(text, "kubeproxy_sync_proxy_rules_service_changes_total 0");
	assert_valid(text);
	free(text);
}

static int fake_nfacct(void *arg, const char *name, uint64_t *packets)
{
	(void)arg;
	if (strcmp(name, "ct_state_invalid_dropped_pkts") == 0) {
		*packets = 7;
		return 0;
	}
	return -ENOENT; /* the localhost counter cannot be read */
}

/* Upstream's nfacct collector: read at each scrape, no labels, left out
 * when the rules use no counters or one cannot be read. */
static void render_nfacct_counters_as_upstream(void **state)
{
	struct proxy_metrics m;
	char *text;

	(void)state;
	proxy_metrics_init(&m);
	text = render(&m);
	assert_null(strstr(text, "kubeproxy_iptables_"));
	free(text);
	m.nfacct_read = fake_nfacct;
	text = render(&m);
	assert_line(text,
		    "# TYPE kubeproxy_iptables_ct_state_invalid_dropped_packets_total counter");
	assert_line(text, "kubeproxy_iptables_ct_state_invalid_dropped_packets_total 7");
	assert_null(strstr(text, "kubeproxy_iptables_localhost_nodeports_accepted_packets_total"));
	assert_valid(text);
	free(text);
}

static void render_both_families_sorts_series_by_label(void **state)
{
	struct proxy_metrics m;
	char *text;
	const char *a, *b, *c, *d;

	(void)state;
	proxy_metrics_init(&m);
	m.family_enabled[PROXY_FAM_V4] = true;
	m.family_enabled[PROXY_FAM_V6] = true;
	proxy_hist_observe(&m.sync_duration[PROXY_FAM_V6], 3);
	text = render(&m);
	a = strstr(
		text,
		"kubeproxy_sync_proxy_rules_iptables_total{ip_family=\"IPv4\",table=\"filter\"}");
	b = strstr(text,
		   "kubeproxy_sync_proxy_rules_iptables_total{ip_family=\"IPv4\",table=\"nat\"}");
	c = strstr(
		text,
		"kubeproxy_sync_proxy_rules_iptables_total{ip_family=\"IPv6\",table=\"filter\"}");
	d = strstr(text,
		   "kubeproxy_sync_proxy_rules_iptables_total{ip_family=\"IPv6\",table=\"nat\"}");
	assert_true(a && b && c && d && a < b && b < c && c < d);
	assert_line(
		text,
		"kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv6\",le=\"2.048\"} 0");
	assert_line(
		text,
		"kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv6\",le=\"4.096\"} 1");
	assert_line(text,
		    "kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 0");
	assert_valid(text);
	free(text);
}

static void render_reports_a_full_buffer(void **state)
{
	struct proxy_metrics m;
	struct rules_buf b;

	(void)state;
	proxy_metrics_init(&m);
	m.family_enabled[PROXY_FAM_V4] = true;
	rules_buf_init(&b, 100);
	assert_int_equal(proxy_metrics_render(&m, &b), -E2BIG);
	rules_buf_cleanup(&b);
}

/* ---- the metrics server ------------------------------------------------- */

struct mfx {
	struct harness h;
	struct proxy_metrics m;
	struct proxy_metricsd *md;
	int port;
	bool closed;
	/* what /rules asked for */
	unsigned int rules_calls;
	char ns[64], name[64];
	bool all;
	int family;
};

static int fake_rules(void *arg, const char *ns, const char *name, int family,
		      struct rules_buf *out)
{
	struct mfx *fx = arg;

	fx->rules_calls++;
	fx->all = !ns;
	snprintf(fx->ns, sizeof(fx->ns), "%s", ns ? ns : "");
	snprintf(fx->name, sizeof(fx->name), "%s", name ? name : "");
	fx->family = family;
	if (ns && !strcmp(name, "missing"))
		return -ENOENT;
	rules_buf_printf(out, "*nat\n-A KUBE-SERVICES -m comment --comment \"%s/%s\"\nCOMMIT\n",
			 ns ? ns : "*", name ? name : "*");
	return 0;
}

static int fake_configz(void *arg, struct rules_buf *out)
{
	(void)arg;
	rules_buf_adds(out, "{\"kubeproxy.config.k8s.io\":{\"mode\":\"iptables\"}}");
	return 0;
}

static int msetup(void **state)
{
	struct mfx *fx = calloc(1, sizeof(*fx));

	if (!fx || harness_init(&fx->h))
		return -1;
	proxy_metrics_init(&fx->m);
	fx->m.family_enabled[PROXY_FAM_V4] = true;
	if (proxy_metricsd_new(&fx->h.loop, "127.0.0.1:0", &fx->m, fake_rules, fake_configz, fx,
			       &fx->md))
		return -1;
	fx->port = proxy_metricsd_port(fx->md);
	*state = fx;
	return 0;
}

static void on_mclosed(void *arg)
{
	((struct mfx *)arg)->closed = true;
}

static int mteardown(void **state)
{
	struct mfx *fx = *state;

	proxy_metricsd_close(fx->md, on_mclosed, fx);
	harness_until(&fx->h, &fx->closed);
	assert_int_equal(harness_finish(&fx->h), 0);
	free(fx);
	return 0;
}

static char *mget(struct mfx *fx, const char *method, const char *target, struct harness_resp *r)
{
	char req[512], *raw;
	size_t len;

	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method,
		 target);
	raw = harness_fetch(&fx->h, fx->port, req, &len);
	assert_non_null(raw);
	assert_int_equal(harness_parse(raw, len, r), 0);
	return raw;
}

static void assert_header(const struct harness_resp *r, const char *name, const char *want)
{
	char v[256];

	assert_non_null(harness_header(r, name, v, sizeof(v)));
	assert_string_equal(v, want);
}

static void metricsd_serves_metrics_text(void **state)
{
	struct mfx *fx = *state;
	struct harness_resp r;
	char *raw, *text, len[32];

	fx->m.healthz_total[PROXY_CODE_200] = 3;
	text = render(&fx->m);
	raw = mget(fx, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	assert_int_equal(r.body_len, strlen(text));
	assert_memory_equal(r.body, text, r.body_len);
	free(raw);

	raw = mget(fx, "HEAD", "/metrics", &r);
	assert_int_equal(r.status, 200);
	snprintf(len, sizeof(len), "%zu", strlen(text));
	assert_header(&r, "Content-Length", len);
	assert_int_equal(r.body_len, 0);
	free(raw);
	free(text);
}

static void metricsd_serves_upstream_mux_paths(void **state)
{
	static const struct {
		const char *target;
		int status;
		const char *type;
		const char *body;
	} cases[] = {
		{ "/proxyMode", 200, "text/plain; charset=utf-8", "iptables" },
		{ "/healthz", 200, "text/plain; charset=utf-8", "ok" },
		{ "/configz", 200, "application/json",
		  "{\"kubeproxy.config.k8s.io\":{\"mode\":\"iptables\"}}" },
		{ "/", 404, "text/plain; charset=utf-8", "404 page not found\n" },
		{ "/metrics/", 404, "text/plain; charset=utf-8", "404 page not found\n" },
		{ "/debug/pprof/", 404, "text/plain; charset=utf-8", "404 page not found\n" },
	};
	struct mfx *fx = *state;
	struct harness_resp r;
	size_t i;
	char *raw;

	for (i = 0; i < N_ARRAY(cases); i++) {
		raw = mget(fx, "GET", cases[i].target, &r);
		assert_int_equal(r.status, cases[i].status);
		assert_header(&r, "Content-Type", cases[i].type);
		assert_header(&r, "X-Content-Type-Options", "nosniff");
		assert_int_equal(r.body_len, strlen(cases[i].body));
		assert_memory_equal(r.body, cases[i].body, r.body_len);
		free(raw);
	}
	raw = mget(fx, "POST", "/metrics", &r);
	assert_int_equal(r.status, 405);
	free(raw);
}

static void metricsd_rules_by_service_and_family(void **state)
{
	static const struct {
		const char *target;
		int status;
		bool all;
		const char *ns, *name;
		int family;
	} cases[] = {
		{ "/rules", 200, true, "", "", 0 },
		{ "/rules?family=ipv4", 200, true, "", "", 4 },
		{ "/rules?service=default/web", 200, false, "default", "web", 0 },
		{ "/rules?service=default%2Fweb&family=ipv6", 200, false, "default", "web", 6 },
		{ "/rules?family=ipv6&service=kube-system/kube-dns", 200, false, "kube-system",
		  "kube-dns", 6 },
		{ "/rules?service=default/missing", 404, false, "default", "missing", 0 },
	};
	struct mfx *fx = *state;
	struct harness_resp r;
	char *raw;
	size_t i;

	for (i = 0; i < N_ARRAY(cases); i++) {
		fx->rules_calls = 0;
		raw = mget(fx, "GET", cases[i].target, &r);
		assert_int_equal(r.status, cases[i].status);
		assert_int_equal(fx->rules_calls, 1);
		assert_int_equal(fx->all, cases[i].all);
		assert_string_equal(fx->ns, cases[i].ns);
		assert_string_equal(fx->name, cases[i].name);
		assert_int_equal(fx->family, cases[i].family);
		assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
		if (r.status == 404)
			assert_memory_equal(r.body, "service default/missing not found\n",
					    r.body_len);
		else
			assert_memory_equal(r.body, "*nat\n", 5);
		free(raw);
	}
}

static void metricsd_rules_rejects_malformed_queries(void **state)
{
	static const char *const bad[] = {
		"/rules?service=web",
		"/rules?service=/web",
		"/rules?service=default/",
		"/rules?service=a/b/c",
		"/rules?family=ipv5",
		"/rules?family=",
		"/rules?bogus=1",
		"/rules?service",
		"/rules?service=a/b&service=c/d",
		"/rules?family=ipv4&family=ipv6",
		"/rules?service=%zz/web",
		"/rules?service=a%00/b",
	};
	struct mfx *fx = *state;
	struct harness_resp r;
	char *raw;
	size_t i;

	for (i = 0; i < N_ARRAY(bad); i++) {
		raw = mget(fx, "GET", bad[i], &r);
		assert_int_equal(r.status, 400);
		assert_memory_equal(r.body, "invalid query: ", 15);
		free(raw);
	}
	assert_int_equal(fx->rules_calls, 0);
}

static void metricsd_port_in_use_is_an_error(void **state)
{
	struct mfx *fx = *state;
	struct proxy_metricsd *md = NULL;
	char addr[32];

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", fx->port);
	assert_int_equal(proxy_metricsd_new(&fx->h.loop, addr, &fx->m, NULL, NULL, NULL, &md),
			 -EADDRINUSE);
	assert_null(md);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(metrics_init_uses_upstream_buckets),
		cmocka_unit_test(hist_observe_is_cumulative_and_inclusive),
		cmocka_unit_test(render_formats_numbers_as_go),
		cmocka_unit_test(validator_rejects_what_prometheus_rejects),
		cmocka_unit_test(render_has_upstream_names_help_and_types),
		cmocka_unit_test(render_writes_values_labels_and_histograms),
		cmocka_unit_test(render_without_families_keeps_only_unlabelled_metrics),
		cmocka_unit_test(render_nfacct_counters_as_upstream),
		cmocka_unit_test(render_both_families_sorts_series_by_label),
		cmocka_unit_test(render_reports_a_full_buffer),
		cmocka_unit_test_setup_teardown(metricsd_serves_metrics_text, msetup, mteardown),
		cmocka_unit_test_setup_teardown(metricsd_serves_upstream_mux_paths, msetup,
						mteardown),
		cmocka_unit_test_setup_teardown(metricsd_rules_by_service_and_family, msetup,
						mteardown),
		cmocka_unit_test_setup_teardown(metricsd_rules_rejects_malformed_queries, msetup,
						mteardown),
		cmocka_unit_test_setup_teardown(metricsd_port_in_use_is_an_error, msetup,
						mteardown),
	};

	return cmocka_run_group_tests_name("proxy_metrics", tests, NULL, NULL);
}
