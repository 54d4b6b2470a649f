/*
 * proxy/sync.h - the sync loop: when to sync, and doing it.
 *
 * Like upstream's BoundedFrequencyRunner: a change requests a sync; syncs run
 * at most once per --iptables-min-sync-period after a burst of two, so bursts
 * of events cost one sync; every --iptables-sync-period the canary chains are
 * checked (someone flushed our rules: full sync) and a sync runs if anything
 * is pending; every hour a full sync rewrites everything. Nothing is written
 * before proxy_sync_set_ready() (Services and EndpointSlices both listed).
 *
 * A sync, per family: plan against the record of what was written
 * (rules/diff.h; a full plan first reads the kernel with iptables-save for
 * stale chains and base-chain jumps), apply the transactions in order with
 * iptables-restore, then commit the record, report health and metrics, sync
 * the health-check node ports and clean stale UDP conntrack entries. A
 * failure logs the exit status and the offending lines, keeps the old rules,
 * forgets the record (the next sync is full) and retries with backoff.
 *
 * Everything runs on the loop. The tracker is only read while planning
 * (synchronously), so objects may change while a restore runs.
 */
#ifndef PROXY_SYNC_H
#define PROXY_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "proxy/compiler.h"
#include "proxy/config.h"
#include "proxy/health.h"
#include "proxy/iptables.h"
#include "proxy/metrics.h"
#include "proxy/tracker.h"
#include "rules/diff.h"

struct proxy_sync;

/* What one family's sync attempt did (for logs, events and tests). */
struct proxy_sync_report {
	enum rules_family family;
	bool ok;
	bool full;
	unsigned int consecutive_failures;
	const char *error;		      /* NULL when ok */
	const struct rules_plan_stats *stats; /* NULL when planning failed */
	double seconds;
};

struct proxy_sync_config {
	uv_loop_t *loop;
	struct proxy_tracker *tracker;	/* borrowed */
	const struct proxy_config *cfg; /* borrowed */
	enum proxy_ipt_backend backend;
	bool family[2]; /* [0] IPv4, [1] IPv6: which to program */
	bool random_fully;
	bool nfacct;
	bool tcp_be_liberal;
	/* split own chains into transactions of this many ports (nft); 0: one
	 * transaction per sync */
	size_t txn_max_ports;
	struct proxy_metrics *metrics;				       /* may be NULL */
	struct proxy_health *health;				       /* may be NULL */
	void (*on_sync)(void *arg, const struct proxy_sync_report *r); /* may be NULL */
	void *arg;
};

int proxy_sync_new(const struct proxy_sync_config *c, struct proxy_sync **out) PROXY_MUST_CHECK;

/* Services and EndpointSlices are both listed: sync from now on (a full
 * sync first). */
void proxy_sync_set_ready(struct proxy_sync *s);

/* Something changed: sync soon (debounced). */
void proxy_sync_request(struct proxy_sync *s);

/* The next sync of every family rewrites everything (node labels changed). */
void proxy_sync_force_full(struct proxy_sync *s);

/*
 * The rules of service @ns/@name (NULL: all) as currently desired and
 * programmed, rendered for @family (0: all enabled): dispatch rules and the
 * service's own chains. Returns 0, -ENOENT or -ENOMEM.
 */
int proxy_sync_rules(struct proxy_sync *s, const char *ns, const char *name, int family,
		     struct rules_buf *out) PROXY_MUST_CHECK;

/* Stop timers, let a running restore finish (rules stay as they are), then
 * call @done from the loop. */
void proxy_sync_close(struct proxy_sync *s, void (*done)(void *arg), void *arg);
void proxy_sync_free(struct proxy_sync *s);

#endif /* PROXY_SYNC_H */
