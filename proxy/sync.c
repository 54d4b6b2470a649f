/*
 * proxy/sync.c - the sync loop.
 */
#include "proxy/sync.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/conntrack.h"
#include "proxy/log.h"
#include "proxy/node.h"
#include "rules/render.h"
#include "rules/save.h"

#define FULL_SYNC_PERIOD_MS (3600 * 1000) /* upstream proxyutil.FullSyncPeriod */
#define BURST		    2.0
#define RESTORE_CONTEXT	    3 /* lines shown around the one iptables blames */

static const enum rules_family fams[2] = { RULES_IPV4, RULES_IPV6 };

/* One family's state. */
struct fam {
	bool enabled;
	struct rules_rec *rec;
	bool need_full;
	uint64_t last_full_ms; /* loop time of the last successful full sync */
	uint64_t synced_gen;   /* tracker generation last programmed */
	unsigned int failures; /* consecutive */
	int canary_pending;
	bool canary_bad;
};

/* The sync in flight (one family at a time). */
struct run {
	int fi;
	bool full;
	uint64_t t0_ns;
	int saves_pending;
	struct rules_saved kernel;
	bool kernel_ok;
	char *save_text[2];
	size_t save_len[2];
	struct rules_plan *plan;
	size_t txn;
	struct proxy_ct_plan *ct;
	struct proxy_hc_service *hc;
	long n_hc;
	uint64_t gen;
	char error[1024];
};

struct proxy_sync {
	struct proxy_sync_config c;
	struct fam fam[2];
	uv_timer_t kick_timer;
	uv_timer_t period_timer;
	bool ready;
	bool pending;
	bool running;
	bool closing;
	int ct_inflight;
	int handles_open;
	double tokens;
	uint64_t tokens_ms;
	uint64_t retry_at_ms;
	struct run run;
	int64_t start_wall_ns;
	void (*done)(void *);
	void *done_arg;
};

static double now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void kick(struct proxy_sync *s);
static void family_begin(struct proxy_sync *s);

/* ---- scheduling ------------------------------------------------------------- */

static void refill(struct proxy_sync *s)
{
	uint64_t now = uv_now(s->c.loop);
	int64_t min = s->c.cfg->min_sync_period_ms;

	if (min <= 0) {
		s->tokens = BURST;
	} else {
		s->tokens += (double)(now - s->tokens_ms) / (double)min;
		if (s->tokens > BURST)
			s->tokens = BURST;
	}
	s->tokens_ms = now;
}

/* When closing: report done once nothing is in flight any more. */
static void maybe_done(struct proxy_sync *s)
{
	void (*done)(void *) = s->done;

	if (!s->closing || !done || s->running || s->ct_inflight || s->handles_open)
		return;
	s->done = NULL;
	done(s->done_arg);
}

static void on_kick(uv_timer_t *t)
{
	struct proxy_sync *s = t->data;

	if (s->closing || s->running || !s->pending || !s->ready)
		return;
	refill(s);
	if (s->tokens < 1.0) {
		kick(s); /* woke up early: wait for the token */
		return;
	}
	s->tokens -= 1.0;
	s->pending = false;
	s->running = true;
	memset(&s->run, 0, sizeof(s->run));
	s->run.fi = -1;
	family_begin(s);
}

/* Start a sync as soon as the rate limit and any retry backoff allow;
 * always through the timer, never from inside an informer callback. */
static void kick(struct proxy_sync *s)
{
	uint64_t now = uv_now(s->c.loop), wait = 0;
	int64_t min = s->c.cfg->min_sync_period_ms;

	if (s->closing || s->running || !s->pending || !s->ready)
		return;
	refill(s);
	if (s->tokens < 1.0)
		wait = (uint64_t)((1.0 - s->tokens) * (double)min) + 1;
	if (s->retry_at_ms > now && s->retry_at_ms - now > wait)
		wait = s->retry_at_ms - now;
	uv_timer_start(&s->kick_timer, on_kick, wait, 0);
}

void proxy_sync_request(struct proxy_sync *s)
{
	int i;

	s->pending = true;
	for (i = 0; i < 2; i++) {
		if (!s->fam[i].enabled)
			continue;
		if (s->c.health)
			proxy_health_queued_update(s->c.health, (enum proxy_fam_idx)i);
		if (s->c.metrics)
			s->c.metrics->last_queued_ts[i] = now_wall();
	}
	kick(s);
}

void proxy_sync_force_full(struct proxy_sync *s)
{
	s->fam[0].need_full = true;
	s->fam[1].need_full = true;
	proxy_sync_request(s);
}

void proxy_sync_set_ready(struct proxy_sync *s)
{
	if (s->ready)
		return;
	s->ready = true;
	PLOG_I(2, "Services and EndpointSlices are synced: starting to sync rules", "");
	proxy_sync_request(s);
}

/* ---- the canary: did someone flush our rules? ------------------------------ */

struct canary_req {
	struct proxy_sync *s;
	int fi;
	const char *table;
};

static void on_canary(void *arg, const struct proxy_exec_result *res)
{
	struct canary_req *req = arg;
	struct proxy_sync *s = req->s;
	int fi = req->fi;
	struct fam *f = &s->fam[fi];

	if (res->spawn_err || res->exit_status != 0 ||
	    !strstr(res->out, "-A " RULES_CANARY_CHAIN " ")) {
		if (!f->canary_bad)
			PLOG_W("iptables rules were flushed or deleted by something else; restoring "
			       "them with a full sync",
			       "ipFamily=\"IPv%d\" table=\"%s\" canary=\"%s\"", fams[fi],
			       req->table,
			       res->spawn_err || res->exit_status ? "chain missing"
								  : "rule missing");
		f->canary_bad = true;
	}
	free(req);
	if (--f->canary_pending || !f->canary_bad || s->closing)
		return;
	f->canary_bad = false;
	f->need_full = true;
	if (s->c.metrics)
		s->c.metrics->drift_repairs_total[fi]++;
	proxy_sync_request(s);
}

static void check_canaries(struct proxy_sync *s)
{
	static const char *const tables[] = { "mangle", "nat", "filter" };
	int i, k;

	for (i = 0; i < 2; i++) {
		struct fam *f = &s->fam[i];

		/* only what we wrote can be missing */
		if (!f->enabled || !rules_rec_valid(f->rec) || f->canary_pending)
			continue;
		for (k = 0; k < 3; k++) {
			struct canary_req *req = malloc(sizeof(*req));

			if (!req)
				return;
			req->s = s;
			req->fi = i;
			req->table = tables[k];
			if (proxy_ipt_canary(s->c.loop, s->c.backend, fams[i], tables[k], on_canary,
					     req)) {
				free(req);
				continue;
			}
			f->canary_pending++;
		}
	}
}

static void on_period(uv_timer_t *t)
{
	struct proxy_sync *s = t->data;

	if (s->closing || !s->ready)
		return;
	if (!s->running)
		check_canaries(s);
	/* the periodic sync: a no-op when nothing changed, full once an hour */
	s->pending = true;
	kick(s);
}

/* ---- one family's sync ----------------------------------------------------- */

static void family_end(struct proxy_sync *s, bool ok);

static const char *fam_name(int fi)
{
	return fi ? "IPv6" : "IPv4";
}

static void report(struct proxy_sync *s, bool ok)
{
	struct proxy_sync_report r;
	struct fam *f = &s->fam[s->run.fi];

	memset(&r, 0, sizeof(r));
	r.family = fams[s->run.fi];
	r.ok = ok;
	r.full = s->run.full;
	r.consecutive_failures = f->failures;
	r.error = ok ? NULL : s->run.error;
	r.stats = s->run.plan ? rules_plan_stats(s->run.plan) : NULL;
	r.seconds = (double)(uv_hrtime() - s->run.t0_ns) / 1e9;
	if (s->c.on_sync)
		s->c.on_sync(s->c.arg, &r);
}

static void run_reset(struct run *r)
{
	rules_saved_cleanup(&r->kernel);
	free(r->save_text[0]);
	free(r->save_text[1]);
	r->save_text[0] = r->save_text[1] = NULL;
	rules_plan_free(r->plan);
	r->plan = NULL;
	proxy_ct_plan_free(r->ct);
	r->ct = NULL;
	free(r->hc);
	r->hc = NULL;
	r->n_hc = 0;
}

static void warn_setup(void *arg, const char *msg)
{
	struct proxy_sync *s = arg;
	static char last[256];

	(void)s;
	/* say it once, not on every sync */
	if (strcmp(last, msg) != 0) {
		snprintf(last, sizeof(last), "%s", msg);
		PLOG_W("Rules setup", "note=\"%s\"", msg);
	}
}

/* Chains whose rules we need from iptables-save: the built-in ones (jumps). */
static bool keep_builtin(void *arg, const char *table, const char *chain)
{
	(void)arg;
	(void)table;
	return strncmp(chain, "KUBE-", 5) != 0;
}

static void apply_next(struct proxy_sync *s);

/*
 * The health-check services of every enabled family, not only the one being
 * synced: the health server holds one listener per port for both families,
 * and a list without the other family's services would close theirs.
 */
static int collect_hc(struct proxy_sync *s, struct run *r)
{
	struct proxy_hc_service *part, *all;
	long n;
	int i;

	for (i = 0; i < 2; i++) {
		if (!s->fam[i].enabled)
			continue;
		n = proxy_tracker_hc_services(s->c.tracker, fams[i], &part);
		if (n < 0)
			return (int)n;
		if (!n) {
			free(part);
			continue;
		}
		all = realloc(r->hc, (size_t)(r->n_hc + n) * sizeof(*all));
		if (!all) {
			free(part);
			return -ENOMEM;
		}
		memcpy(all + r->n_hc, part, (size_t)n * sizeof(*all));
		free(part);
		r->hc = all;
		r->n_hc += n;
	}
	return 0;
}

/* Plan the family's sync from the tracker (synchronously), then apply. */
static void plan_family(struct proxy_sync *s)
{
	struct run *r = &s->run;
	struct fam *f = &s->fam[r->fi];
	const struct proxy_config *cfg = s->c.cfg;
	struct rules_plan_opts po = { 0 };
	struct proxy_family_setup fs;
	struct proxy_strlist addrs = { 0 };
	struct proxy_snapshot snap;
	char err[256];
	size_t i;
	int ret;

	/* node addresses only matter when --nodeport-addresses selects some */
	if (cfg->nodeport_addresses.n && proxy_node_local_addrs(&addrs) < 0)
		PLOG_W("Cannot list the node's addresses for --nodeport-addresses", "");
	ret = proxy_family_setup(&fs, cfg, fams[r->fi], proxy_tracker_node(s->c.tracker),
				 (const char *const *)addrs.v, addrs.n, s->c.random_fully,
				 s->c.nfacct, s->c.tcp_be_liberal, warn_setup, s, err, sizeof(err));
	proxy_strlist_clear(&addrs);
	if (ret) {
		snprintf(r->error, sizeof(r->error), "sync: %s", err);
		family_end(s, false);
		return;
	}
	ret = proxy_tracker_set_node_ip(s->c.tracker, fams[r->fi], fs.node_ip);
	if (!ret)
		ret = proxy_tracker_snapshot(s->c.tracker, fams[r->fi], &snap);
	if (ret) {
		proxy_family_setup_cleanup(&fs);
		snprintf(r->error, sizeof(r->error), "sync: building the desired state: %s",
			 strerror(-ret));
		family_end(s, false);
		return;
	}
	r->gen = snap.gen;
	po.full = r->full;
	po.txn_max_ports = s->c.txn_max_ports;
	po.kernel = r->kernel_ok ? &r->kernel : NULL;
	po.canary = true;
	ret = rules_rec_plan(f->rec, &snap.state, &fs.opts, &po, &r->plan);
	/* conntrack: UDP ports whose endpoints may have changed since the last sync */
	for (i = 0; !ret && i < snap.n_ports; i++) {
		if (snap.ports[i]->udp && snap.ports[i]->gen > f->synced_gen) {
			ret = proxy_ct_plan_build(&snap, &r->ct);
			break;
		}
	}
	if (!ret)
		ret = collect_hc(s, r);
	proxy_snapshot_cleanup(&snap);
	proxy_family_setup_cleanup(&fs);
	if (ret) {
		snprintf(r->error, sizeof(r->error), "sync: planning the %s rules: %s",
			 fam_name(r->fi), strerror(-ret));
		family_end(s, false);
		return;
	}
	r->full = rules_plan_stats(r->plan)->full;
	r->txn = 0;
	apply_next(s);
}

static void on_restore(void *arg, const struct proxy_exec_result *res)
{
	struct proxy_sync *s = arg;
	struct run *r = &s->run;
	const struct rules_txn *t;
	size_t n, line;
	char ctx[1024] = "";

	t = rules_plan_txns(r->plan, &n);
	if (res->spawn_err || res->exit_status != 0) {
		line = proxy_ipt_error_line(res->err);
		if (line)
			proxy_ipt_error_context(t[r->txn].text, t[r->txn].len, line,
						RESTORE_CONTEXT, ctx, sizeof(ctx));
		if (res->spawn_err)
			snprintf(r->error, sizeof(r->error), "sync: cannot run %s: %s",
				 proxy_ipt_cmd(s->c.backend, fams[r->fi], "-restore"),
				 uv_strerror(res->spawn_err));
		else
			/* bounded pieces: the message always fits, the context last */
			snprintf(r->error, sizeof(r->error),
				 "sync: %s exited %lld (transaction %zu of %zu): %.*s%s%.600s",
				 proxy_ipt_cmd(s->c.backend, fams[r->fi], "-restore"),
				 (long long)res->exit_status, r->txn + 1, n,
				 (int)(strcspn(res->err, "\n") < 300 ? strcspn(res->err, "\n")
								     : 300),
				 res->err, ctx[0] ? " | rules: " : "", ctx);
		family_end(s, false);
		return;
	}
	if (s->c.metrics)
		s->c.metrics->restore_bytes_total[r->fi] += t[r->txn].len;
	r->txn++;
	apply_next(s);
}

static void apply_next(struct proxy_sync *s)
{
	struct run *r = &s->run;
	const struct rules_txn *t;
	size_t n;
	int ret;

	t = rules_plan_txns(r->plan, &n);
	if (r->txn == n) {
		family_end(s, true);
		return;
	}
	ret = proxy_ipt_restore(s->c.loop, s->c.backend, fams[r->fi], t[r->txn].text, t[r->txn].len,
				on_restore, s);
	if (ret) {
		snprintf(r->error, sizeof(r->error), "sync: starting iptables-restore: %s",
			 strerror(-ret));
		family_end(s, false);
	}
}

static void on_save(void *arg, const struct proxy_exec_result *res)
{
	struct proxy_sync *s = arg;
	struct run *r = &s->run;
	int k = r->save_text[0] ? 1 : 0;

	if (res->spawn_err || res->exit_status != 0) {
		if (!r->error[0])
			snprintf(r->error, sizeof(r->error), "sync: %s exited %lld: %.*s",
				 proxy_ipt_cmd(s->c.backend, fams[r->fi], "-save"),
				 (long long)res->exit_status, (int)strcspn(res->err, "\n"),
				 res->err);
	} else {
		r->save_text[k] = malloc(res->out_len + 1);
		if (r->save_text[k]) {
			memcpy(r->save_text[k], res->out, res->out_len + 1);
			r->save_len[k] = res->out_len;
		}
	}
	if (--r->saves_pending)
		return;
	if (r->error[0] || !r->save_text[0] || !r->save_text[1]) {
		if (!r->error[0])
			snprintf(r->error, sizeof(r->error), "sync: reading the kernel's rules: %s",
				 strerror(ENOMEM));
		family_end(s, false);
		return;
	}
	for (k = 0; k < 2; k++) {
		size_t line = 0;
		int ret = rules_save_parse(r->save_text[k], r->save_len[k], keep_builtin, NULL,
					   &r->kernel, &line);

		if (ret) {
			snprintf(r->error, sizeof(r->error),
				 "sync: parsing %s output: %s at line %zu",
				 proxy_ipt_cmd(s->c.backend, fams[r->fi], "-save"), strerror(-ret),
				 line);
			family_end(s, false);
			return;
		}
	}
	r->kernel_ok = true;
	plan_family(s);
}

/* Start the next enabled family, or finish the run. */
/* Hand the heap freed by a sync back to the kernel, once per sync (after the
 * last family). A sync's temporaries (the snapshot, the dispatch tree, the
 * plan; on a full sync the parsed tables and the whole payload) are freed
 * between long-lived objects that arrived meanwhile, so free() alone cannot
 * shrink the heap: under steady endpoint churn RSS grew ~1 MB/s at 10k
 * services (hack/bench churn), all of it returned by malloc_trim. It costs
 * 1.5 ms (median) at that size. */
static void trim_heap(void)
{
	uint64_t t0 = uv_hrtime();

	malloc_trim(0);
	PLOG_I(4, "Trimmed the heap", "elapsed=\"%.1fms\"", (double)(uv_hrtime() - t0) / 1e6);
}

static void family_begin(struct proxy_sync *s)
{
	struct run *r = &s->run;
	static const char *const tables[] = { "nat", "filter" };
	struct fam *f;
	int k, fi = r->fi + 1;

	while (fi < 2 && !s->fam[fi].enabled)
		fi++;
	if (fi >= 2 || s->closing) {
		if (!s->closing)
			trim_heap();
		s->running = false;
		maybe_done(s);
		kick(s);
		return;
	}
	run_reset(r);
	memset(r, 0, sizeof(*r));
	r->fi = fi;
	r->t0_ns = uv_hrtime();
	f = &s->fam[fi];
	r->full = f->need_full || !rules_rec_valid(f->rec) ||
		  uv_now(s->c.loop) - f->last_full_ms > FULL_SYNC_PERIOD_MS;
	PLOG_I(3, "Syncing iptables rules", "ipFamily=\"%s\" fullSync=%s", fam_name(fi),
	       r->full ? "true" : "false");
	if (!r->full) {
		plan_family(s);
		return;
	}
	/* a full sync reads the kernel: stale chains, jump rules */
	r->saves_pending = 2;
	for (k = 0; k < 2; k++) {
		if (proxy_ipt_save(s->c.loop, s->c.backend, fams[fi], tables[k], on_save, s)) {
			snprintf(r->error, sizeof(r->error), "sync: starting %s: %s",
				 proxy_ipt_cmd(s->c.backend, fams[fi], "-save"), strerror(ENOMEM));
			if (--r->saves_pending == 0)
				family_end(s, false);
		}
	}
}

static void on_conntrack(void *arg, const struct proxy_ct_result *res)
{
	struct proxy_sync *s = ((void **)arg)[0];
	int fi = (int)(intptr_t)((void **)arg)[1];

	free(arg);
	s->ct_inflight--;
	/* failures are logged by proxy/conntrack.c with the step that failed */
	if (!res->err)
		PLOG_I(2, "Cleaned up stale UDP conntrack entries",
		       "ipFamily=\"%s\" examined=%zu deleted=%zu elapsed=\"%.3fs\"", fam_name(fi),
		       res->examined, res->deleted, res->seconds);
	if (s->c.metrics && !res->err) {
		proxy_hist_observe(&s->c.metrics->conntrack_duration[fi], res->seconds);
		s->c.metrics->conntrack_deleted[fi] += res->deleted;
	}
	maybe_done(s);
}

static void after_success(struct proxy_sync *s)
{
	struct run *r = &s->run;
	struct proxy_metrics *m = s->c.metrics;
	const struct rules_plan_stats *st = rules_plan_stats(r->plan);
	double secs = (double)(uv_hrtime() - r->t0_ns) / 1e9;
	int64_t *trig = NULL;
	long n_trig, i;
	int fi = r->fi;

	if (m) {
		proxy_hist_observe(&m->sync_duration[fi], secs);
		proxy_hist_observe(
			r->full ? &m->sync_full_duration[fi] : &m->sync_partial_duration[fi], secs);
		m->last_sync_ts[fi] = now_wall();
		m->rules_total[fi][PROXY_TABLE_FILTER] = (int64_t)st->rules_total[0];
		m->rules_total[fi][PROXY_TABLE_NAT] = (int64_t)st->rules_total[1];
		m->rules_last[fi][PROXY_TABLE_FILTER] = (int64_t)st->rules_written[0];
		m->rules_last[fi][PROXY_TABLE_NAT] = (int64_t)st->rules_written[1];
		m->no_local_internal[fi] = (int64_t)st->no_local_internal;
		m->no_local_external[fi] = (int64_t)st->no_local_external;
		m->chains_skipped_total[fi] += st->chains_skipped;
		n_trig = proxy_tracker_take_triggers(s->c.tracker, s->start_wall_ns, &trig);
		for (i = 0; i < n_trig; i++)
			proxy_hist_observe(&m->network_programming[fi],
					   now_wall() - (double)trig[i] / 1e9);
		free(trig);
	}
	if (s->c.health) {
		proxy_health_updated(s->c.health, (enum proxy_fam_idx)fi);
		if (proxy_health_sync_services(s->c.health, r->hc, (size_t)r->n_hc))
			PLOG_E("Error syncing healthcheck services", "err=\"%s\"",
			       strerror(ENOMEM));
	}
	if (r->ct) {
		void **arg = malloc(2 * sizeof(void *));

		if (arg) {
			arg[0] = s;
			arg[1] = (void *)(intptr_t)fi;
			if (proxy_conntrack_reconcile_async(s->c.loop, r->ct, on_conntrack, arg) ==
			    0)
				s->ct_inflight++;
			else
				free(arg);
		}
		r->ct = NULL; /* taken, even on error */
	}
	PLOG_I(2, "SyncProxyRules complete",
	       "ipFamily=\"%s\" fullSync=%s elapsed=\"%.3fs\" servicePorts=%zu rendered=%zu "
	       "chainsWritten=%zu chainsUnchanged=%zu chainsAdopted=%zu chainsDeleted=%zu "
	       "dispatchEdits=%zu filterRules=%zu natRules=%zu bytes=%zu",
	       fam_name(fi), r->full ? "true" : "false", secs, st->ports, st->ports_rendered,
	       st->chains_written, st->chains_skipped, st->chains_adopted, st->chains_deleted,
	       st->dispatch_edits, st->rules_total[0], st->rules_total[1], st->bytes);
}

static void family_end(struct proxy_sync *s, bool ok)
{
	struct run *r = &s->run;
	struct fam *f = &s->fam[r->fi];

	if (ok) {
		rules_rec_commit(f->rec, r->plan);
		if (r->full) {
			f->need_full = false;
			f->last_full_ms = uv_now(s->c.loop);
		}
		f->synced_gen = r->gen;
		f->failures = 0;
		s->retry_at_ms = 0;
		after_success(s);
	} else {
		uint64_t backoff;
		int64_t cap = s->c.cfg->sync_period_ms;

		/* the kernel may hold part of the plan: forget the record */
		rules_rec_invalidate(f->rec);
		f->need_full = true;
		f->failures++;
		backoff = 1000ULL << (f->failures > 5 ? 5 : f->failures - 1);
		if ((int64_t)backoff > cap)
			backoff = (uint64_t)cap;
		s->retry_at_ms = uv_now(s->c.loop) + backoff;
		s->pending = true;
		PLOG_E("Sync failed", "ipFamily=\"%s\" fullSync=%s err=\"%s\" retryIn=\"%.1fs\"",
		       fam_name(r->fi), r->full ? "true" : "false", r->error,
		       (double)backoff / 1000.0);
		if (s->c.metrics) {
			s->c.metrics->restore_failures[r->fi]++;
			if (!r->full)
				s->c.metrics->partial_restore_failures[r->fi]++;
		}
	}
	report(s, ok);
	run_reset(r);
	family_begin(s);
}

/* ---- /rules ---------------------------------------------------------------- */

int proxy_sync_rules(struct proxy_sync *s, const char *ns, const char *name, int family,
		     struct rules_buf *out)
{
	struct rules_port_out po;
	bool found = false;
	size_t i;
	int fi, err = 0, sl;

	rules_port_out_init(&po);
	for (fi = 0; fi < 2 && !err; fi++) {
		struct proxy_family_setup fs;
		struct proxy_snapshot snap;
		struct rules_ctx ctx;
		char msg[256];

		if (!s->fam[fi].enabled || (family && family != (int)fams[fi]))
			continue;
		err = proxy_family_setup(&fs, s->c.cfg, fams[fi], proxy_tracker_node(s->c.tracker),
					 NULL, 0, s->c.random_fully, s->c.nfacct,
					 s->c.tcp_be_liberal, NULL, NULL, msg, sizeof(msg));
		if (err)
			break;
		err = proxy_tracker_snapshot(s->c.tracker, fams[fi], &snap);
		if (err) {
			proxy_family_setup_cleanup(&fs);
			break;
		}
		rules_ctx_init(&ctx, &snap.state, &fs.opts);
		rules_buf_printf(out, "# %s\n", fam_name(fi));
		for (i = 0; i < snap.n_ports && !err; i++) {
			const struct proxy_port *pp = snap.ports[i];

			if (ns && (strcmp(pp->ns, ns) != 0 || strcmp(pp->svc_name, name) != 0))
				continue;
			found = true;
			rules_port_out_reset(&po);
			err = rules_render_port(&ctx, &pp->rp, &po);
			for (sl = 0; !err && sl < RULES_SLOT__COUNT; sl++)
				if (po.slot[sl].len) {
					rules_buf_printf(out, "# %s table\n", rules_slot_table(sl));
					rules_buf_add(out, po.slot[sl].data, po.slot[sl].len);
				}
			if (!err && po.own.len) {
				rules_buf_adds(out, "# nat table\n");
				rules_buf_add(out, po.own.data, po.own.len);
			}
		}
		proxy_snapshot_cleanup(&snap);
		proxy_family_setup_cleanup(&fs);
	}
	rules_port_out_cleanup(&po);
	if (err)
		return err;
	if (ns && !found)
		return -ENOENT;
	return out->err;
}

/* ---- life cycle ------------------------------------------------------------ */

int proxy_sync_new(const struct proxy_sync_config *c, struct proxy_sync **out)
{
	struct proxy_sync *s;
	int i, err;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->c = *c;
	s->start_wall_ns = (int64_t)(now_wall() * 1e9);
	for (i = 0; i < 2; i++) {
		s->fam[i].enabled = c->family[i];
		s->fam[i].need_full = true;
		err = rules_rec_new(fams[i], &s->fam[i].rec);
		if (err)
			goto out_free;
		if (c->metrics)
			c->metrics->family_enabled[i] = c->family[i];
	}
	s->tokens = BURST;
	s->tokens_ms = uv_now(c->loop);
	uv_timer_init(c->loop, &s->kick_timer);
	uv_timer_init(c->loop, &s->period_timer);
	s->kick_timer.data = s->period_timer.data = s;
	s->handles_open = 2;
	uv_timer_start(&s->period_timer, on_period, (uint64_t)c->cfg->sync_period_ms,
		       (uint64_t)c->cfg->sync_period_ms);
	/* upstream SyncLoop: healthy until a queued update is overdue */
	if (c->health)
		for (i = 0; i < 2; i++)
			if (c->family[i])
				proxy_health_updated(c->health, (enum proxy_fam_idx)i);
	*out = s;
	return 0;

out_free:
	rules_rec_free(s->fam[0].rec);
	rules_rec_free(s->fam[1].rec);
	free(s);
	return err;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct proxy_sync *s = h->data;

	s->handles_open--;
	maybe_done(s);
}

void proxy_sync_close(struct proxy_sync *s, void (*done)(void *arg), void *arg)
{
	s->closing = true;
	s->done = done;
	s->done_arg = arg;
	uv_close((uv_handle_t *)&s->kick_timer, on_timer_closed);
	uv_close((uv_handle_t *)&s->period_timer, on_timer_closed);
}

void proxy_sync_free(struct proxy_sync *s)
{
	if (!s)
		return;
	run_reset(&s->run);
	rules_rec_free(s->fam[0].rec);
	rules_rec_free(s->fam[1].rec);
	free(s);
}
