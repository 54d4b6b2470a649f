/*
 * cmd/daemon.c - the daemon and the run modes that touch the kernel or the
 * API server: all wiring, no logic of its own.
 *
 *   informer --objects--> tracker --changes--> sync --restore--> kernel
 *                                   health, metrics and conntrack hang off sync
 */
#include "cmd/daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cmd/dump.h"
#include "informer/informer.h"
#include "proxy/health.h"
#include "proxy/iptables.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/metricsd.h"
#include "proxy/node.h"
#include "proxy/sync.h"
#include "proxy/tracker.h"
#include "rules/diff.h"
#include "rules/save.h"

#define TAINT_TO_BE_DELETED "ToBeDeletedByClusterAutoscaler"
#define NFACCT_INVALID	    "ct_state_invalid_dropped_pkts"
#define NFACCT_LOCALHOST    "localhost_nps_accepted_pkts"
#define NFT_TXN_PORTS	    100	 /* services per nft transaction (see the benchmarks) */
#define SERVER_RETRY_MS	    5000 /* upstream retries its healthz and metrics servers every 5 s */

struct daemon {
	uv_loop_t loop;
	const struct cmd_options *o;
	const char *node_name;
	struct proxy_metrics metrics;
	struct proxy_tracker *tracker;
	struct informer *informer;
	struct proxy_sync *sync;
	struct proxy_health *health;
	struct proxy_metricsd *metricsd;
	uv_signal_t sigterm;
	uv_signal_t sigint;
	uv_timer_t server_retry; /* healthz/metrics servers that could not listen yet */
	bool server_retry_open;
	unsigned int server_retries;
	bool services_synced;
	bool slices_synced;
	bool stopping;
	int closing; /* components still closing */
	int exit_code;
	bool dump_only;		  /* --dump-rules from the API server */
	uv_timer_t dump_deadline; /* ... gives up after DUMP_LIVE_TIMEOUT_MS */
	bool dump_deadline_open;
	bool waiting_pod_cidr;
	unsigned int node_events;
};

/* ---- informer -> tracker -> sync --------------------------------------------- */

static void maybe_ready(struct daemon *d);

static void changed(struct daemon *d, int ret, const char *what)
{
	if (ret < 0) {
		PLOG_E("Out of memory while tracking objects", "object=\"%s\"", what);
		return;
	}
	if (ret > 0 && d->sync)
		proxy_sync_request(d->sync);
}

static void on_service_upsert(void *arg, struct informer_service *svc)
{
	struct daemon *d = arg;

	d->metrics.service_changes_total++;
	changed(d, proxy_tracker_service_upsert(d->tracker, svc), "Service");
}

static void on_service_delete(void *arg, const char *ns, const char *name)
{
	struct daemon *d = arg;

	d->metrics.service_changes_total++;
	changed(d, proxy_tracker_service_remove(d->tracker, ns, name), "Service");
}

static void on_slice_upsert(void *arg, struct informer_endpointslice *eps)
{
	struct daemon *d = arg;

	d->metrics.endpoint_changes_total++;
	changed(d, proxy_tracker_slice_upsert(d->tracker, eps), "EndpointSlice");
}

static void on_slice_delete(void *arg, const char *ns, const char *name)
{
	struct daemon *d = arg;

	d->metrics.endpoint_changes_total++;
	changed(d, proxy_tracker_slice_remove(d->tracker, ns, name), "EndpointSlice");
}

static void update_node_health(struct daemon *d)
{
	const struct informer_node *n = proxy_tracker_node(d->tracker);
	bool tainted = false;
	size_t i;

	for (i = 0; n && i < n->n_taints; i++)
		if (strcmp(n->taints[i].key, TAINT_TO_BE_DELETED) == 0)
			tainted = true;
	if (d->health)
		proxy_health_set_node(d->health, n != NULL, n && n->meta.deleting, tainted);
}

static void on_node_upsert(void *arg, struct informer_node *node)
{
	struct daemon *d = arg;
	int ret;

	if (strcmp(node->meta.name, d->node_name) != 0) {
		PLOG_E("Received a watch event for a node that doesn't match the current node",
		       "eventNode=\"%s\" currentNode=\"%s\"", node->meta.name, d->node_name);
		informer_node_free(node);
		return;
	}
	ret = proxy_tracker_node_set(d->tracker, node);
	update_node_health(d);
	maybe_ready(d);
	if (ret > 0 && d->sync) {
		/* upstream: a label change (the zone!) forces a full sync */
		PLOG_I(4, "Updated proxier node labels", "node=\"%s\"", d->node_name);
		proxy_sync_force_full(d->sync);
	}
}

static void on_node_delete(void *arg, const char *name)
{
	struct daemon *d = arg;

	if (strcmp(name, d->node_name) != 0)
		return;
	if (proxy_tracker_node_set(d->tracker, NULL) > 0 && d->sync)
		proxy_sync_force_full(d->sync);
	update_node_health(d);
}

static void dump_and_stop(struct daemon *d);

/* Upstream's waitForPodCIDR: with --detect-local-mode=NodeCIDR nothing is
 * programmed before the own Node has a pod CIDR (rules without the local
 * detector would masquerade nothing). */
static bool pod_cidr_known(struct daemon *d)
{
	const struct informer_node *n = proxy_tracker_node(d->tracker);

	return d->o->cfg.detect_local_mode != PROXY_LOCAL_NODE_CIDR || (n && n->n_pod_cidrs);
}

static void maybe_ready(struct daemon *d)
{
	if (!d->services_synced || !d->slices_synced || !d->sync)
		return;
	if (!pod_cidr_known(d)) {
		if (!d->waiting_pod_cidr)
			PLOG_I(0, "Waiting for the Node's podCIDR before programming rules",
			       "node=\"%s\" detectLocalMode=\"NodeCIDR\"", d->node_name);
		d->waiting_pod_cidr = true;
		return;
	}
	proxy_sync_set_ready(d->sync);
}

static void on_synced(void *arg, enum informer_kind kind)
{
	struct daemon *d = arg;

	if (kind == INFORMER_KIND_SERVICE)
		d->services_synced = true;
	else if (kind == INFORMER_KIND_ENDPOINTSLICE)
		d->slices_synced = true;
	else if (kind == INFORMER_KIND_NODE)
		d->node_events++;
	if (d->dump_only) {
		if (d->services_synced && d->slices_synced && d->node_events)
			dump_and_stop(d);
		return;
	}
	maybe_ready(d);
}

static void on_informer_log(void *arg, int level, const char *msg, const char *kv)
{
	(void)arg;
	if (level == INFORMER_LOG_ERROR)
		PLOG_E(msg, "%s", kv ? kv : "");
	else if (level == INFORMER_LOG_WARNING)
		PLOG_W(msg, "%s", kv ? kv : "");
	else
		PLOG_I(level, msg, "%s", kv ? kv : "");
}

/* ---- events operators need to see ------------------------------------------- */

static void on_hc_event(void *arg, const char *ns, const char *name, const char *reason,
			const char *message)
{
	struct daemon *d = arg;

	if (d->informer)
		informer_post_event(d->informer, "Service", ns, name, NULL, "Warning", reason,
				    message);
}

static void on_sync_report(void *arg, const struct proxy_sync_report *r)
{
	struct daemon *d = arg;
	const struct informer_node *n = proxy_tracker_node(d->tracker);

	/* the third failure in a row is worth an Event on the Node */
	if (!r->ok && r->consecutive_failures == 3 && d->informer)
		informer_post_event(d->informer, "Node", NULL, d->node_name, n ? n->meta.uid : NULL,
				    "Warning", "FailedToSyncIptablesRules", r->error);
}

/* ---- metrics server callbacks -------------------------------------------------- */

static int rules_cb(void *arg, const char *ns, const char *name, int family, struct rules_buf *out)
{
	struct daemon *d = arg;

	return proxy_sync_rules(d->sync, ns, name, family, out);
}

static int configz_cb(void *arg, struct rules_buf *out)
{
	struct daemon *d = arg;
	char *json;
	int err = cmd_config_json(&d->o->cfg, &json);

	if (err)
		return err;
	rules_buf_adds(out, json);
	free(json);
	return out->err;
}

/* ---- shutdown ---------------------------------------------------------------- */

static void closed_one(void *arg)
{
	struct daemon *d = arg;

	if (--d->closing == 0) {
		uv_close((uv_handle_t *)&d->sigterm, NULL);
		uv_close((uv_handle_t *)&d->sigint, NULL);
	}
}

/* ---- servers that could not listen ------------------------------------------- */

/*
 * Without --bind-address-hard-fail, a healthz or metrics address that cannot
 * be bound (kube-proxy's pod still exiting during a hand-over, say) is
 * retried every 5 s, as upstream's wait.Until does; meanwhile the health
 * state (and so the service health-check node ports) works without its own
 * server. The first failure was logged where it happened; later ones at -v=2.
 */
static bool servers_missing(struct daemon *d)
{
	const struct proxy_config *c = &d->o->cfg;

	return (d->health && c->healthz_bind_address && c->healthz_bind_address[0] &&
		proxy_health_port(d->health) < 0) ||
	       (c->metrics_bind_address && c->metrics_bind_address[0] && !d->metricsd);
}

static void on_server_retry(uv_timer_t *t)
{
	struct daemon *d = t->data;
	const struct proxy_config *c = &d->o->cfg;
	int ret;

	if (d->stopping)
		return;
	d->server_retries++;
	if (d->health && c->healthz_bind_address && c->healthz_bind_address[0]) {
		ret = proxy_health_listen(d->health, c->healthz_bind_address);
		if (ret)
			PLOG_I(2, "Still cannot start proxy healthz",
			       "address=\"%s\" err=\"%s\" attempts=%u", c->healthz_bind_address,
			       uv_strerror(ret), d->server_retries);
	}
	if (c->metrics_bind_address && c->metrics_bind_address[0] && !d->metricsd) {
		ret = proxy_metricsd_new(&d->loop, c->metrics_bind_address, &d->metrics, rules_cb,
					 configz_cb, d, &d->metricsd);
		if (ret) {
			d->metricsd = NULL;
			PLOG_I(2, "Still cannot start the metrics server",
			       "address=\"%s\" err=\"%s\" attempts=%u", c->metrics_bind_address,
			       uv_strerror(ret), d->server_retries);
		} else {
			PLOG_I(0, "Started the metrics server after an earlier failure",
			       "address=\"%s\"", c->metrics_bind_address);
		}
	}
	if (!servers_missing(d))
		uv_timer_stop(t);
}

static void stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	if (d->server_retry_open) {
		d->server_retry_open = false;
		uv_close((uv_handle_t *)&d->server_retry, NULL);
	}
	if (d->dump_deadline_open) {
		d->dump_deadline_open = false;
		uv_close((uv_handle_t *)&d->dump_deadline, NULL);
	}
	/* one extra reference while starting the closes */
	d->closing = 1;
	if (d->informer) {
		d->closing++;
		informer_stop(d->informer, closed_one, d);
	}
	if (d->sync) {
		d->closing++;
		proxy_sync_close(d->sync, closed_one, d);
	}
	if (d->health) {
		d->closing++;
		proxy_health_close(d->health, closed_one, d);
	}
	if (d->metricsd) {
		d->closing++;
		proxy_metricsd_close(d->metricsd, closed_one, d);
	}
	closed_one(d);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;

	if (d->dump_only)
		PLOG_I(0, "Received signal, giving up the dump", "signal=\"%s\"",
		       signum == SIGTERM ? "SIGTERM" : "SIGINT");
	else
		PLOG_I(0, "Received signal, shutting down; the rules stay in place",
		       "signal=\"%s\"", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	stop(d);
}

/* --dump-rules from the API server: a one-shot command must not retry forever. */
#define DUMP_LIVE_TIMEOUT_MS 60000

static void on_dump_deadline(uv_timer_t *t)
{
	struct daemon *d = t->data;

	PLOG_E("Could not list Services and EndpointSlices from the API server in time, giving up "
	       "the dump (the errors above say why)",
	       "timeout=\"%ds\"", DUMP_LIVE_TIMEOUT_MS / 1000);
	d->exit_code = 1;
	stop(d);
}

static void dump_and_stop(struct daemon *d)
{
	struct proxy_strlist addrs = { 0 };
	const struct informer_node *n = proxy_tracker_node(d->tracker);
	size_t i;

	for (i = 0; n && i < n->n_addresses; i++)
		if (n->addresses[i].ip.ip && proxy_strlist_add(&addrs, n->addresses[i].ip.ip))
			break;
	if (proxy_strlist_add(&addrs, "127.0.0.1") || proxy_strlist_add(&addrs, "::1"))
		d->exit_code = 1;
	else
		d->exit_code = cmd_dump_tracker(d->o, d->tracker, (const char *const *)addrs.v,
						addrs.n, stdout)
				       ? 1
				       : 0;
	proxy_strlist_clear(&addrs);
	stop(d);
}

/* ---- setup ------------------------------------------------------------------ */

static int start_informer(struct daemon *d, bool list_only)
{
	struct informer_handlers h = {
		.arg = d,
		.service_upsert = on_service_upsert,
		.service_delete = on_service_delete,
		.slice_upsert = on_slice_upsert,
		.slice_delete = on_slice_delete,
		.node_upsert = on_node_upsert,
		.node_delete = on_node_delete,
		.synced = on_synced,
		.log = on_informer_log,
	};
	struct informer_config ic = {
		.node_name = d->node_name,
		.list_only = list_only,
	};
	struct informer_conn *conn;
	char err[512];
	int ret;

	ret = informer_conn_load(d->o->cfg.kubeconfig, d->o->cfg.master, &conn, err, sizeof(err));
	if (ret) {
		PLOG_E("Cannot configure the API server connection", "err=\"%s\"", err);
		return ret;
	}
	PLOG_I(1, "Connecting to the API server", "server=\"%s\"", informer_conn_server(conn));
	ret = informer_new(&d->loop, conn, &ic, &h, &d->informer);
	if (ret)
		return ret;
	return informer_start(d->informer);
}

static void family_choice(const struct proxy_config *c, enum proxy_ipt_backend be, bool fam[2])
{
	switch (c->families) {
	case PROXY_FAMILIES_IPV4:
		fam[0] = true;
		fam[1] = false;
		break;
	case PROXY_FAMILIES_IPV6:
		fam[0] = false;
		fam[1] = true;
		break;
	case PROXY_FAMILIES_DUAL:
		fam[0] = fam[1] = true;
		break;
	case PROXY_FAMILIES_AUTO:
	default:
		/* upstream: dual-stack when both iptables work */
		fam[0] = proxy_ipt_present(be, RULES_IPV4);
		fam[1] = proxy_ipt_present(be, RULES_IPV6);
		break;
	}
}

static enum proxy_ipt_backend choose_backend(const struct proxy_config *c)
{
	enum proxy_ipt_backend be;
	char why[160];

	if (strcmp(c->iptables_backend, "nft") == 0)
		return PROXY_IPT_NFT;
	if (strcmp(c->iptables_backend, "legacy") == 0)
		return PROXY_IPT_LEGACY;
	be = proxy_ipt_detect_backend(why, sizeof(why));
	PLOG_I(0, "Chose the iptables backend", "backend=\"%s\" reason=\"%s\"",
	       proxy_ipt_backend_name(be), why);
	return be;
}

static bool detect_random_fully(const struct proxy_config *c)
{
	/* iptables >= 1.6.2 has --random-fully; Debian 12 ships 1.8.9 */
	return c->random_fully != PROXY_OFF;
}

static int read_nfacct(void *arg, const char *name, uint64_t *packets)
{
	(void)arg;
	return proxy_node_nfacct_read(name, packets);
}

static bool detect_nfacct(const struct proxy_config *c)
{
	if (c->nfacct == PROXY_ON)
		return true;
	if (c->nfacct == PROXY_OFF || !proxy_node_nfacct_available())
		return false;
	return proxy_node_nfacct_ensure(NFACCT_INVALID) == 0 &&
	       proxy_node_nfacct_ensure(NFACCT_LOCALHOST) == 0;
}

/* route_localnet is wanted when IPv4 localhost NodePorts are on and the
 * --nodeport-addresses include 127.0.0.1 (all of them by default). */
static bool want_route_localnet(const struct proxy_config *c)
{
	struct proxy_family_setup fs;
	char err[128];
	bool want;

	if (proxy_family_setup(&fs, c, RULES_IPV4, NULL, NULL, 0, false, false, false, NULL, NULL,
			       err, sizeof(err)))
		return c->localhost_nodeports;
	want = fs.localhost_nodeports_wanted;
	proxy_family_setup_cleanup(&fs);
	return want;
}

int cmd_init_only(const struct cmd_options *o)
{
	if (proxy_node_setup(&o->cfg, want_route_localnet(&o->cfg), NULL)) {
		PLOG_E("Node setup failed", "");
		return 1;
	}
	PLOG_I(0, "System initialized and --init-only specified", "");
	return 0;
}

static void oom_score_adj(int v)
{
	FILE *f = fopen("/proc/self/oom_score_adj", "w");

	if (!f)
		return;
	if (fprintf(f, "%d\n", v) < 0)
		PLOG_W("Cannot set oom_score_adj", "value=%d", v);
	fclose(f);
}

int cmd_daemon_run(struct cmd_options *o, const char *node_name)
{
	const struct proxy_config *c = &o->cfg;
	struct proxy_sync_config sc;
	struct daemon d;
	int ret;

	memset(&d, 0, sizeof(d));
	d.o = o;
	d.node_name = node_name;
	d.exit_code = 1;
	proxy_metrics_init(&d.metrics);
	oom_score_adj(c->oom_score_adj);
	if (proxy_node_setup(c, want_route_localnet(c), NULL)) {
		PLOG_E("Node setup failed", "");
		return 1;
	}
	ret = uv_loop_init(&d.loop);
	if (ret) {
		PLOG_E("Cannot create the event loop", "err=\"%s\"", uv_strerror(ret));
		return 1;
	}
	/* The handles stop() closes exist from here on, so that every failure
	 * below can leave through stop() and an empty loop. */
	uv_signal_init(&d.loop, &d.sigterm);
	uv_signal_init(&d.loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	uv_timer_init(&d.loop, &d.server_retry);
	d.server_retry.data = &d;
	d.server_retry_open = true;
	ret = proxy_tracker_new(node_name, &d.tracker);
	if (ret)
		goto out_stop;
	proxy_tracker_set_prefer_same_node(d.tracker, c->gate_prefer_same_node);

	memset(&sc, 0, sizeof(sc));
	sc.loop = &d.loop;
	sc.tracker = d.tracker;
	sc.cfg = c;
	sc.backend = choose_backend(c);
	family_choice(c, sc.backend, sc.family);
	if (!sc.family[0] && !sc.family[1]) {
		PLOG_E("Neither iptables nor ip6tables works on this node", "backend=\"%s\"",
		       proxy_ipt_backend_name(sc.backend));
		goto out_stop;
	}
	sc.random_fully = detect_random_fully(c);
	sc.nfacct = detect_nfacct(c);
	if (sc.nfacct)
		d.metrics.nfacct_read = read_nfacct; /* the rules count into them */
	sc.tcp_be_liberal = c->conntrack_tcp_be_liberal || proxy_node_tcp_be_liberal(NULL);
	sc.txn_max_ports = sc.backend == PROXY_IPT_NFT ? NFT_TXN_PORTS : 0;
	sc.metrics = &d.metrics;
	sc.on_sync = on_sync_report;
	sc.arg = &d;
	PLOG_I(0, "Using iptables mode",
	       "backend=\"%s\" ipv4=%s ipv6=%s randomFully=%s nfacct=%s tcpBeLiberal=%s",
	       proxy_ipt_backend_name(sc.backend), sc.family[0] ? "true" : "false",
	       sc.family[1] ? "true" : "false", sc.random_fully ? "true" : "false",
	       sc.nfacct ? "true" : "false", sc.tcp_be_liberal ? "true" : "false");

	/* upstream: health timeout is twice the sync period */
	ret = proxy_health_new(&d.loop, c->healthz_bind_address, 2 * (uint64_t)c->sync_period_ms,
			       &d.metrics, NULL, 0, on_hc_event, &d, &d.health);
	if (ret && (ret == -ENOMEM || c->bind_address_hard_fail))
		goto out_hard_fail;
	if (ret) {
		/* the state without its server for now: retried below */
		ret = proxy_health_new(&d.loop, NULL, 2 * (uint64_t)c->sync_period_ms, &d.metrics,
				       NULL, 0, on_hc_event, &d, &d.health);
		if (ret)
			goto out_stop;
	}
	sc.health = d.health;
	ret = proxy_sync_new(&sc, &d.sync);
	if (ret)
		goto out_stop;
	if (c->metrics_bind_address && c->metrics_bind_address[0]) {
		ret = proxy_metricsd_new(&d.loop, c->metrics_bind_address, &d.metrics, rules_cb,
					 configz_cb, &d, &d.metricsd);
		if (ret) {
			d.metricsd = NULL;
			if (c->bind_address_hard_fail)
				goto out_hard_fail;
		}
	}
	if (servers_missing(&d))
		uv_timer_start(&d.server_retry, on_server_retry, SERVER_RETRY_MS, SERVER_RETRY_MS);
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	ret = start_informer(&d, false);
	if (ret)
		goto out_stop;
	d.exit_code = 0;
	uv_run(&d.loop, UV_RUN_DEFAULT);
	goto out_free;

out_hard_fail:
	if (ret != -ENOMEM)
		PLOG_E("A server could not listen and bindAddressHardFail is set: exiting", "");
out_stop:
	stop(&d);
	uv_run(&d.loop, UV_RUN_DEFAULT);
out_free:
	informer_free(d.informer);
	proxy_sync_free(d.sync);
	proxy_tracker_free(d.tracker);
	if (uv_loop_close(&d.loop))
		PLOG_E("Event loop still has open handles at exit", "");
	return d.exit_code;
}

int cmd_dump_live(const struct cmd_options *o, const char *node_name)
{
	struct daemon d;
	int ret;

	memset(&d, 0, sizeof(d));
	d.o = o;
	d.node_name = node_name;
	d.exit_code = 1;
	d.dump_only = true;
	proxy_metrics_init(&d.metrics);
	if (uv_loop_init(&d.loop))
		return 1;
	ret = proxy_tracker_new(node_name, &d.tracker);
	if (!ret) {
		proxy_tracker_set_prefer_same_node(d.tracker, o->cfg.gate_prefer_same_node);
		uv_signal_init(&d.loop, &d.sigterm);
		uv_signal_init(&d.loop, &d.sigint);
		d.sigterm.data = d.sigint.data = &d;
		uv_signal_start(&d.sigterm, on_signal, SIGTERM);
		uv_signal_start(&d.sigint, on_signal, SIGINT);
		uv_timer_init(&d.loop, &d.dump_deadline);
		d.dump_deadline.data = &d;
		d.dump_deadline_open = true;
		uv_timer_start(&d.dump_deadline, on_dump_deadline, DUMP_LIVE_TIMEOUT_MS, 0);
		if (start_informer(&d, true))
			stop(&d);
		uv_run(&d.loop, UV_RUN_DEFAULT);
	}
	informer_free(d.informer);
	proxy_tracker_free(d.tracker);
	if (uv_loop_close(&d.loop))
		PLOG_E("Event loop still has open handles at exit", "");
	return d.exit_code;
}

/* ---- --cleanup ------------------------------------------------------------- */

static int cleanup_one(enum proxy_ipt_backend be, enum rules_family f)
{
	static const char *const tables[] = { "nat", "filter", "mangle" };
	struct rules_saved saved = { 0 };
	struct proxy_exec_result res;
	struct rules_buf payload;
	size_t t, line;
	int ret = 0;

	for (t = 0; t < 3 && !ret; t++) {
		const char *argv[] = { proxy_ipt_cmd(be, f, "-save"), "-t", tables[t], NULL };

		if (proxy_ipt_run_sync(argv, NULL, 0, &res))
			return -ENOMEM;
		if (res.spawn_err || res.exit_status != 0) {
			/* a missing tool or table is nothing to clean */
			proxy_ipt_result_free(&res);
			continue;
		}
		ret = rules_save_parse(res.out, res.out_len, NULL, NULL, &saved, &line);
		proxy_ipt_result_free(&res);
	}
	rules_buf_init(&payload, 0);
	if (!ret)
		ret = rules_cleanup_payload(&saved, &payload);
	if (!ret && payload.len) {
		const char *argv[] = {
			proxy_ipt_cmd(be, f, "-restore"), "-w", "5", "--noflush", "--counters", NULL
		};

		ret = proxy_ipt_run_sync(argv, payload.data, payload.len, &res);
		if (!ret) {
			if (res.spawn_err || res.exit_status != 0) {
				size_t l = proxy_ipt_error_line(res.err);
				char ctx[1024] = "";

				if (l)
					proxy_ipt_error_context(payload.data, payload.len, l, 3,
								ctx, sizeof(ctx));
				PLOG_E("Failed to execute iptables-restore",
				       "cmd=\"%s\" exit=%lld err=\"%.*s\" rules=\"%s\"", argv[0],
				       (long long)res.exit_status, (int)strcspn(res.err, "\n"),
				       res.err, ctx);
				ret = -EIO;
			} else {
				PLOG_I(0, "Removed kube-proxy's rules", "cmd=\"%s\"", argv[0]);
			}
			proxy_ipt_result_free(&res);
		}
	}
	rules_buf_cleanup(&payload);
	rules_saved_cleanup(&saved);
	return ret;
}

int cmd_cleanup(const struct cmd_options *o)
{
	static const enum proxy_ipt_backend bes[] = { PROXY_IPT_NFT, PROXY_IPT_LEGACY };
	static const enum rules_family fs[] = { RULES_IPV4, RULES_IPV6 };
	const char *forced = o->cfg.iptables_backend;
	int code = 0;
	size_t b, f;

	/* both backends unless one is forced: rules may be left in either */
	for (b = 0; b < 2; b++) {
		if (strcmp(forced, "auto") != 0 && strcmp(forced, proxy_ipt_backend_name(bes[b])))
			continue;
		for (f = 0; f < 2; f++)
			if (cleanup_one(bes[b], fs[f]))
				code = 1;
	}
	return code;
}

int cmd_write_config(const struct cmd_options *o, const char *path)
{
	char *json;
	FILE *f;
	int ok;

	if (cmd_config_json(&o->cfg, &json))
		return 1;
	f = fopen(path, "w");
	if (!f) {
		PLOG_E("Cannot write the configuration", "path=\"%s\" err=\"%s\"", path,
		       strerror(errno));
		free(json);
		return 1;
	}
	ok = fprintf(f, "%s\n", json) >= 0;
	ok = fclose(f) == 0 && ok;
	free(json);
	if (!ok)
		PLOG_E("Cannot write the configuration", "path=\"%s\"", path);
	return ok ? 0 : 1;
}
