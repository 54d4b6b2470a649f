/*
 * proxy/metrics.c - kube-proxy's metrics as Prometheus text.
 *
 * Names, help texts, label names and buckets are upstream's
 * (pkg/proxy/metrics/metrics.go, v1.33+, where the per-family metrics carry
 * ip_family="IPv4"/"IPv6"); component-base prefixes ALPHA help texts with
 * "[ALPHA] ". The output is what client_golang's text encoder writes: families
 * sorted by name, series sorted by label values, every number formatted as
 * strconv.FormatFloat(v, 'g', -1, 64) (so 1e+06, 0.001, +Inf), histograms as
 * cumulative _bucket{le} series, then _sum and _count.
 *
 * One difference: client_golang only shows a labelled series once it has been
 * touched; here every series of an enabled family (and both healthz codes) is
 * always present, starting at 0, which rate() and alerts handle better.
 */
#include "proxy/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/buf.h"

#define N_ARRAY(a) (sizeof(a) / sizeof((a)[0]))

/* metrics.ExponentialBuckets(0.001, 2, 15) */
static const double sync_buckets[] = {
	0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064,  0.128,
	0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384,
};

/*
 * metrics.MergeBuckets(LinearBuckets(0.25, 0.25, 2), LinearBuckets(1, 1, 59),
 * LinearBuckets(60, 5, 12), LinearBuckets(120, 30, 7)); MergeBuckets starts
 * from a zero-length-1 slice, hence the leading 0 bucket.
 */
static const double network_programming_buckets[] = {
	0,  0.25, 0.5, 1,   2,	 3,   4,   5,	6,   7,	  8,   9,   10,	 11, 12, 13, 14,
	15, 16,	  17,  18,  19,	 20,  21,  22,	23,  24,  25,  26,  27,	 28, 29, 30, 31,
	32, 33,	  34,  35,  36,	 37,  38,  39,	40,  41,  42,  43,  44,	 45, 46, 47, 48,
	49, 50,	  51,  52,  53,	 54,  55,  56,	57,  58,  59,  60,  65,	 70, 75, 80, 85,
	90, 95,	  100, 105, 110, 115, 120, 150, 180, 210, 240, 270, 300,
};

_Static_assert(N_ARRAY(network_programming_buckets) <= PROXY_HIST_MAX_BUCKETS,
	       "PROXY_HIST_MAX_BUCKETS too small for upstream's buckets");

static const char *const family_label[PROXY_N_FAMS] = { "IPv4", "IPv6" };
static const char *const table_label[PROXY_N_TABLES] = { "filter", "nat" };
static const char *const code_label[PROXY_N_CODES] = { "200", "503" };

static void hist_init(struct proxy_hist *h, const double *bounds, size_t n)
{
	h->bounds = bounds;
	h->n_bounds = n;
}

void proxy_metrics_init(struct proxy_metrics *m)
{
	int f;

	memset(m, 0, sizeof(*m));
	for (f = 0; f < PROXY_N_FAMS; f++) {
		hist_init(&m->sync_duration[f], sync_buckets, N_ARRAY(sync_buckets));
		hist_init(&m->sync_full_duration[f], sync_buckets, N_ARRAY(sync_buckets));
		hist_init(&m->sync_partial_duration[f], sync_buckets, N_ARRAY(sync_buckets));
		hist_init(&m->conntrack_duration[f], sync_buckets, N_ARRAY(sync_buckets));
		hist_init(&m->network_programming[f], network_programming_buckets,
			  N_ARRAY(network_programming_buckets));
	}
}

void proxy_hist_observe(struct proxy_hist *h, double value)
{
	size_t i;

	/* Prometheus puts v in the first bucket whose upper bound is >= v. */
	for (i = 0; i < h->n_bounds; i++)
		if (value <= h->bounds[i])
			h->counts[i]++;
	h->count++;
	h->sum += value;
}

/*
 * Go's strconv.FormatFloat(v, 'g', -1, 64): the shortest digits that read
 * back as @v, in %e form when the decimal exponent is < -4 or >= 6 (with at
 * least two exponent digits), else in %f form.
 */
static void format_float(double v, char *out, size_t size)
{
	char e[40], digits[24];
	int prec, exp, nd = 0, dp, i;
	const char *p;
	size_t o = 0;

	if (isnan(v) || isinf(v) || v == 0) {
		snprintf(out, size, "%s",
			 isnan(v)   ? "NaN"
			 : isinf(v) ? (v > 0 ? "+Inf" : "-Inf")
				    : "0");
		return;
	}
	for (prec = 0; prec < 17; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec, v);
		if (strtod(e, NULL) == v)
			break;
	}
	p = e;
	if (*p == '-')
		out[o++] = *p++;
	for (; *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	exp = atoi(p + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	dp = exp + 1; /* digits[0..dp) is the integer part */

	if (exp < -4 || exp >= 6) {
		out[o++] = digits[0];
		if (nd > 1) {
			out[o++] = '.';
			for (i = 1; i < nd; i++)
				out[o++] = digits[i];
		}
		snprintf(out + o, size - o, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
		return;
	}
	if (dp <= 0) {
		out[o++] = '0';
		out[o++] = '.';
		for (i = dp; i < 0; i++)
			out[o++] = '0';
		for (i = 0; i < nd; i++)
			out[o++] = digits[i];
	} else {
		for (i = 0; i < dp; i++)
			out[o++] = i < nd ? digits[i] : '0';
		if (nd > dp) {
			out[o++] = '.';
			for (i = dp; i < nd; i++)
				out[o++] = digits[i];
		}
	}
	out[o] = '\0';
}

static void head(struct rules_buf *b, const char *name, const char *help, const char *type)
{
	rules_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample line: name+suffix, the label pairs (already formatted) and the value. */
static void sample(struct rules_buf *b, const char *name, const char *suffix, const char *labels,
		   double v)
{
	char num[40];

	format_float(v, num, sizeof(num));
	rules_buf_printf(b, "%s%s%s%s%s %s\n", name, suffix, *labels ? "{" : "", labels,
			 *labels ? "}" : "", num);
}

static bool any_family(const struct proxy_metrics *m)
{
	return m->family_enabled[PROXY_FAM_V4] || m->family_enabled[PROXY_FAM_V6];
}

static void scalar(struct rules_buf *b, const char *name, const char *help, const char *type,
		   double v)
{
	head(b, name, help, type);
	sample(b, name, "", "", v);
}

/* A counter or gauge with one series per enabled IP family. */
static void per_family(struct rules_buf *b, const struct proxy_metrics *m, const char *name,
		       const char *help, const char *type, const double v[PROXY_N_FAMS])
{
	char labels[64];
	int f;

	if (!any_family(m))
		return;
	head(b, name, help, type);
	for (f = 0; f < PROXY_N_FAMS; f++) {
		if (!m->family_enabled[f])
			continue;
		snprintf(labels, sizeof(labels), "ip_family=\"%s\"", family_label[f]);
		sample(b, name, "", labels, v[f]);
	}
}

static void per_family_table(struct rules_buf *b, const struct proxy_metrics *m, const char *name,
			     const char *help, const int64_t v[PROXY_N_FAMS][PROXY_N_TABLES])
{
	char labels[64];
	int f, t;

	if (!any_family(m))
		return;
	head(b, name, help, "gauge");
	for (f = 0; f < PROXY_N_FAMS; f++) {
		if (!m->family_enabled[f])
			continue;
		for (t = 0; t < PROXY_N_TABLES; t++) {
			snprintf(labels, sizeof(labels), "ip_family=\"%s\",table=\"%s\"",
				 family_label[f], table_label[t]);
			sample(b, name, "", labels, (double)v[f][t]);
		}
	}
}

static void per_code(struct rules_buf *b, const char *name, const char *help,
		     const uint64_t v[PROXY_N_CODES])
{
	char labels[32];
	int c;

	head(b, name, help, "counter");
	for (c = 0; c < PROXY_N_CODES; c++) {
		snprintf(labels, sizeof(labels), "code=\"%s\"", code_label[c]);
		sample(b, name, "", labels, (double)v[c]);
	}
}

static void histogram(struct rules_buf *b, const struct proxy_metrics *m, const char *name,
		      const char *help, const struct proxy_hist h[PROXY_N_FAMS])
{
	char labels[64], le[40];
	size_t i;
	int f;

	if (!any_family(m))
		return;
	head(b, name, help, "histogram");
	for (f = 0; f < PROXY_N_FAMS; f++) {
		if (!m->family_enabled[f])
			continue;
		for (i = 0; i < h[f].n_bounds; i++) {
			format_float(h[f].bounds[i], le, sizeof(le));
			snprintf(labels, sizeof(labels), "ip_family=\"%s\",le=\"%s\"",
				 family_label[f], le);
			sample(b, name, "_bucket", labels, (double)h[f].counts[i]);
		}
		snprintf(labels, sizeof(labels), "ip_family=\"%s\",le=\"+Inf\"", family_label[f]);
		sample(b, name, "_bucket", labels, (double)h[f].count);
		snprintf(labels, sizeof(labels), "ip_family=\"%s\"", family_label[f]);
		sample(b, name, "_sum", labels, h[f].sum);
		sample(b, name, "_count", labels, (double)h[f].count);
	}
}

/* A counter read from the kernel's nfacct object @counter, as upstream's
 * nfacctMetricCollector: no labels, left out when it cannot be read. */
static void nfacct_counter(struct rules_buf *out, const struct proxy_metrics *m, const char *name,
			   const char *help, const char *counter)
{
	uint64_t v;

	if (!m->nfacct_read || m->nfacct_read(m->nfacct_arg, counter, &v))
		return;
	rules_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
			 (unsigned long long)v);
}

#define FAM_U64(a) ((const double[PROXY_N_FAMS]){ (double)(a)[0], (double)(a)[1] })

int proxy_metrics_render(const struct proxy_metrics *m, struct rules_buf *out)
{
	char labels[64];
	int f;

	/* Sorted by name, as client_golang's registry gathers them. */
	per_family(out, m, "kubeiptablesproxy_chains_skipped_total",
		   "Unchanged chains a sync did not rewrite", "counter",
		   FAM_U64(m->chains_skipped_total));
	per_family(out, m, "kubeiptablesproxy_drift_repairs_total",
		   "Chains flushed or changed by someone else that a sync restored", "counter",
		   FAM_U64(m->drift_repairs_total));
	per_family(out, m, "kubeiptablesproxy_restore_bytes_total",
		   "Bytes of input written to iptables-restore", "counter",
		   FAM_U64(m->restore_bytes_total));

	per_family(out, m, "kubeproxy_conntrack_reconciler_deleted_entries_total",
		   "[ALPHA] Cumulative conntrack flows deleted by conntrack reconciler", "counter",
		   FAM_U64(m->conntrack_deleted));
	histogram(out, m, "kubeproxy_conntrack_reconciler_sync_duration_seconds",
		  "[ALPHA] ReconcileConntrackFlowsLatency latency in seconds",
		  m->conntrack_duration);
	nfacct_counter(out, m, "kubeproxy_iptables_ct_state_invalid_dropped_packets_total",
		       "[ALPHA] packets dropped by iptables to work around conntrack problems",
		       "ct_state_invalid_dropped_pkts");
	nfacct_counter(out, m, "kubeproxy_iptables_localhost_nodeports_accepted_packets_total",
		       "[ALPHA] Number of packets accepted on nodeports of loopback interface",
		       "localhost_nps_accepted_pkts");
	histogram(out, m, "kubeproxy_network_programming_duration_seconds",
		  "[ALPHA] In Cluster Network Programming Latency in seconds",
		  m->network_programming);
	per_code(out, "kubeproxy_proxy_healthz_total",
		 "[ALPHA] Cumulative proxy healthz HTTP status", m->healthz_total);
	per_code(out, "kubeproxy_proxy_livez_total", "[ALPHA] Cumulative proxy livez HTTP status",
		 m->livez_total);
	histogram(out, m, "kubeproxy_sync_full_proxy_rules_duration_seconds",
		  "[ALPHA] SyncProxyRules latency in seconds for full resyncs",
		  m->sync_full_duration);
	histogram(out, m, "kubeproxy_sync_partial_proxy_rules_duration_seconds",
		  "[ALPHA] SyncProxyRules latency in seconds for partial resyncs",
		  m->sync_partial_duration);
	histogram(out, m, "kubeproxy_sync_proxy_rules_duration_seconds",
		  "[ALPHA] SyncProxyRules latency in seconds", m->sync_duration);
	scalar(out, "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
	       "[ALPHA] Pending proxy rules Endpoint changes", "gauge",
	       (double)m->endpoint_changes_pending);
	scalar(out, "kubeproxy_sync_proxy_rules_endpoint_changes_total",
	       "[ALPHA] Cumulative proxy rules Endpoint changes", "counter",
	       (double)m->endpoint_changes_total);
	per_family_table(out, m, "kubeproxy_sync_proxy_rules_iptables_last",
			 "[ALPHA] Number of iptables rules written by kube-proxy in last sync",
			 m->rules_last);
	per_family(out, m, "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total",
		   "[ALPHA] Cumulative proxy iptables partial restore failures", "counter",
		   FAM_U64(m->partial_restore_failures));
	per_family(out, m, "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
		   "[ALPHA] Cumulative proxy iptables restore failures", "counter",
		   FAM_U64(m->restore_failures));
	per_family_table(out, m, "kubeproxy_sync_proxy_rules_iptables_total",
			 "[ALPHA] Total number of iptables rules owned by kube-proxy",
			 m->rules_total);
	per_family(out, m, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
		   "[ALPHA] The last time a sync of proxy rules was queued", "gauge",
		   m->last_queued_ts);
	per_family(out, m, "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
		   "[ALPHA] The last time proxy rules were successfully synced", "gauge",
		   m->last_sync_ts);

	if (any_family(m)) {
		const char *name = "kubeproxy_sync_proxy_rules_no_local_endpoints_total";

		head(out, name,
		     "[ALPHA] Number of services with a Local traffic policy and no endpoints",
		     "gauge");
		for (f = 0; f < PROXY_N_FAMS; f++) {
			if (!m->family_enabled[f])
				continue;
			snprintf(labels, sizeof(labels),
				 "ip_family=\"%s\",traffic_policy=\"external\"", family_label[f]);
			sample(out, name, "", labels, (double)m->no_local_external[f]);
			snprintf(labels, sizeof(labels),
				 "ip_family=\"%s\",traffic_policy=\"internal\"", family_label[f]);
			sample(out, name, "", labels, (double)m->no_local_internal[f]);
		}
	}

	scalar(out, "kubeproxy_sync_proxy_rules_service_changes_pending",
	       "[ALPHA] Pending proxy rules Service changes", "gauge",
	       (double)m->service_changes_pending);
	scalar(out, "kubeproxy_sync_proxy_rules_service_changes_total",
	       "[ALPHA] Cumulative proxy rules Service changes", "counter",
	       (double)m->service_changes_total);
	return out->err;
}
