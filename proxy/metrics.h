/*
 * proxy/metrics.h - kube-proxy's Prometheus metrics, as plain counters.
 *
 * The sync loop, the health servers and the conntrack reconciler update the
 * fields of one struct proxy_metrics directly (everything runs on the loop
 * thread, so no locking); proxy_metrics_render() writes the Prometheus text
 * exposition with upstream's metric names (kubeproxy_*,
 * shared/spec/kube-proxy-iptables.md section 5.3) and the ip_family label.
 */
#ifndef PROXY_METRICS_H
#define PROXY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/compiler.h"

struct rules_buf;

/* upstream's network programming histogram has 81 buckets (0, 0.25, 0.5, 1..59, ..., 300) */
#define PROXY_HIST_MAX_BUCKETS 96

/* A cumulative histogram: counts[i] = observations <= bounds[i]. */
struct proxy_hist {
	const double *bounds;
	size_t n_bounds;
	uint64_t counts[PROXY_HIST_MAX_BUCKETS];
	uint64_t count;
	double sum;
};

enum proxy_fam_idx {
	PROXY_FAM_V4 = 0,
	PROXY_FAM_V6 = 1,
	PROXY_N_FAMS = 2,
};

enum proxy_table_idx {
	PROXY_TABLE_FILTER = 0,
	PROXY_TABLE_NAT = 1,
	PROXY_N_TABLES = 2,
};

/* HTTP status codes counted by healthz/livez: 200 and 503. */
enum proxy_code_idx {
	PROXY_CODE_200 = 0,
	PROXY_CODE_503 = 1,
	PROXY_N_CODES = 2,
};

struct proxy_metrics {
	bool family_enabled[PROXY_N_FAMS];

	struct proxy_hist sync_duration[PROXY_N_FAMS]; /* sync_proxy_rules_duration_seconds */
	struct proxy_hist
		sync_full_duration[PROXY_N_FAMS]; /* sync_full_proxy_rules_duration_seconds */
	struct proxy_hist
		sync_partial_duration[PROXY_N_FAMS]; /* sync_partial_proxy_rules_duration_seconds */
	struct proxy_hist
		network_programming[PROXY_N_FAMS]; /* network_programming_duration_seconds */
	double last_sync_ts[PROXY_N_FAMS];	   /* sync_proxy_rules_last_timestamp_seconds */
	double last_queued_ts[PROXY_N_FAMS]; /* sync_proxy_rules_last_queued_timestamp_seconds */

	int64_t endpoint_changes_pending; /* sync_proxy_rules_endpoint_changes_pending */
	uint64_t endpoint_changes_total;  /* sync_proxy_rules_endpoint_changes_total */
	int64_t service_changes_pending;  /* sync_proxy_rules_service_changes_pending */
	uint64_t service_changes_total;	  /* sync_proxy_rules_service_changes_total */

	uint64_t restore_failures[PROXY_N_FAMS]; /* ..._iptables_restore_failures_total */
	uint64_t partial_restore_failures
		[PROXY_N_FAMS]; /* ..._iptables_partial_restore_failures_total
				 */
	int64_t rules_total[PROXY_N_FAMS]
			   [PROXY_N_TABLES]; /* sync_proxy_rules_iptables_total{table} */
	int64_t rules_last[PROXY_N_FAMS]
			  [PROXY_N_TABLES]; /* sync_proxy_rules_iptables_last{table} */
	int64_t no_local_internal
		[PROXY_N_FAMS]; /* ..._no_local_endpoints_total{traffic_policy=internal}
				 */
	int64_t no_local_external
		[PROXY_N_FAMS]; /* ..._no_local_endpoints_total{traffic_policy=external}
				 */

	uint64_t healthz_total[PROXY_N_CODES]; /* proxy_healthz_total{code} */
	uint64_t livez_total[PROXY_N_CODES];   /* proxy_livez_total{code} */

	struct proxy_hist
		conntrack_duration[PROXY_N_FAMS]; /* conntrack_reconciler_sync_duration_seconds */
	uint64_t conntrack_deleted[PROXY_N_FAMS]; /* conntrack_reconciler_deleted_entries_total */

	/* The nfacct counters behind kubeproxy_iptables_ct_state_invalid_dropped_
	 * packets_total and ..._localhost_nodeports_accepted_packets_total, read
	 * at every scrape as upstream's collector does; NULL when the rules use
	 * no nfacct counters (then the two metrics are not exported). Returns 0
	 * or a negative errno (the metric is then left out of that scrape). */
	int (*nfacct_read)(void *arg, const char *name, uint64_t *packets);
	void *nfacct_arg;

	/* ours (kubeiptablesproxy_*): what the reconciler saved */
	uint64_t restore_bytes_total[PROXY_N_FAMS];
	uint64_t chains_skipped_total[PROXY_N_FAMS]; /* unchanged chains not rewritten */
	uint64_t drift_repairs_total[PROXY_N_FAMS];  /* flushed chains restored */
};

/* Zero everything and set up the histogram buckets as upstream's. */
void proxy_metrics_init(struct proxy_metrics *m);

/* Record @value in @h. */
void proxy_hist_observe(struct proxy_hist *h, double value);

/*
 * proxy_metrics_render - the Prometheus text format (version 0.0.4) of @m,
 * appended to @out. Returns 0 or -ENOMEM.
 */
int proxy_metrics_render(const struct proxy_metrics *m, struct rules_buf *out) PROXY_MUST_CHECK;

#endif /* PROXY_METRICS_H */
