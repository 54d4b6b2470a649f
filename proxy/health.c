/*
 * proxy/health.c - /healthz and /livez, and the service health checks.
 *
 * Mirrors upstream pkg/proxy/healthcheck: proxy_health.go for the health rule
 * and the JSON bodies (json.Marshal of ProxyHealth: field order, RFC3339Nano
 * timestamps in local time, "status" keyed by family and left out while
 * empty), service_health.go for the per-service listeners and their
 * tab-indented body.
 *
 * Listeners are proxy/httpd servers. A closed server stops calling its
 * handler at once, so a service entry is freed as soon as its servers are
 * told to close; @n_closing counts servers (and the close barrier timer) whose
 * handles are still closing, and proxy_health_close() finishes when it is 0.
 */
#include "proxy/health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "proxy/httpd.h"
#include "proxy/log.h"
#include "rules/buf.h"

/* One healthCheckNodePort: a listener per address, or none while it fails. */
struct hc_svc {
	struct proxy_health *h;
	char *ns;   /* "ns\0name\0" in one allocation */
	char *name; /* points into ns */
	uint16_t port;
	unsigned int count;
	bool failed; /* the last attempt to listen failed (already reported) */
	struct proxy_httpd **servers;
	size_t n_servers;
};

struct proxy_health {
	uv_loop_t *loop;
	uv_timer_t closer; /* never started: its close is the last step of closing */
	struct proxy_httpd *server;
	uint64_t timeout_ms;
	struct proxy_metrics *metrics;
	char **np_addrs;
	size_t n_np_addrs;
	proxy_health_event_fn event_fn;
	void *event_arg;
	struct proxy_health_clock clock;

	bool updated[PROXY_N_FAMS]; /* upstream lastUpdatedMap */
	int64_t last_updated_ns[PROXY_N_FAMS];
	bool queued[PROXY_N_FAMS]; /* upstream oldestPendingQueuedMap */
	uint64_t oldest_queued_ms[PROXY_N_FAMS];
	bool node_exists, node_deleting, node_to_be_deleted;

	struct hc_svc **svcs; /* sorted by namespace, name */
	size_t n_svcs;

	unsigned int n_closing;
	bool closing;
	void (*done)(void *arg);
	void *done_arg;
};

static const char *const family_name[PROXY_N_FAMS] = { "IPv4", "IPv6" };

static uint64_t default_mono_ms(void *arg)
{
	return uv_now(arg);
}

static int64_t default_wall_ns(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void proxy_health_set_clock(struct proxy_health *h, const struct proxy_health_clock *clock)
{
	if (clock) {
		h->clock = *clock;
		return;
	}
	h->clock.mono_ms = default_mono_ms;
	h->clock.wall_ns = default_wall_ns;
	h->clock.arg = h->loop;
}

/* ---- the health rule ---------------------------------------------------- */

void proxy_health_queued_update(struct proxy_health *h, enum proxy_fam_idx fam)
{
	if (h->queued[fam])
		return; /* keep the oldest */
	h->queued[fam] = true;
	h->oldest_queued_ms[fam] = h->clock.mono_ms(h->clock.arg);
}

void proxy_health_updated(struct proxy_health *h, enum proxy_fam_idx fam)
{
	h->queued[fam] = false;
	h->updated[fam] = true;
	h->last_updated_ns[fam] = h->clock.wall_ns(h->clock.arg);
}

void proxy_health_set_node(struct proxy_health *h, bool exists, bool deleting, bool to_be_deleted)
{
	h->node_exists = exists;
	h->node_deleting = deleting;
	h->node_to_be_deleted = to_be_deleted;
}

/* As upstream: only a family that has been Updated once can be late. */
static bool family_healthy(const struct proxy_health *h, int fam, uint64_t now_ms)
{
	return !h->updated[fam] || !h->queued[fam] ||
	       now_ms - h->oldest_queued_ms[fam] < h->timeout_ms;
}

bool proxy_health_healthy(const struct proxy_health *h)
{
	uint64_t now = h->clock.mono_ms(h->clock.arg);
	int f;

	for (f = 0; f < PROXY_N_FAMS; f++)
		if (!family_healthy(h, f, now))
			return false;
	return true;
}

static bool node_eligible(const struct proxy_health *h)
{
	return h->node_exists && !h->node_deleting && !h->node_to_be_deleted;
}

/* ---- the JSON bodies ---------------------------------------------------- */

/* Go's time.Time JSON: RFC3339Nano in local time, trailing zeros trimmed. */
static void add_time(struct rules_buf *b, int64_t ns)
{
	time_t sec = (time_t)(ns / 1000000000);
	long frac = (long)(ns % 1000000000);
	char text[48], digits[16];
	struct tm tm;
	long off;
	int n;

	localtime_r(&sec, &tm);
	strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
	rules_buf_printf(b, "\"%s", text);
	if (frac) {
		n = snprintf(digits, sizeof(digits), "%09ld", frac);
		while (n > 0 && digits[n - 1] == '0')
			digits[--n] = '\0';
		rules_buf_printf(b, ".%s", digits);
	}
	off = tm.tm_gmtoff / 60;
	if (!off)
		rules_buf_adds(b, "Z\"");
	else
		rules_buf_printf(b, "%c%02ld:%02ld\"", off < 0 ? '-' : '+', labs(off) / 60,
				 labs(off) % 60);
}

/* Go's zero time.Time, the top-level lastUpdated before any update. */
#define ZERO_TIME "\"0001-01-01T00:00:00Z\""

/*
 * json.Marshal(ProxyHealth) for /healthz (@node: nodeEligible present) or
 * /livez. Returns the HTTP status.
 */
static int health_body(struct proxy_health *h, bool node, struct rules_buf *b)
{
	uint64_t now_ms = h->clock.mono_ms(h->clock.arg);
	int64_t now = h->clock.wall_ns(h->clock.arg), last = 0;
	bool healthy = proxy_health_healthy(h), any = false, ok;
	bool eligible = node_eligible(h);
	int f;

	ok = healthy && (!node || eligible);
	for (f = 0; f < PROXY_N_FAMS; f++) {
		if (h->updated[f] && (!any || h->last_updated_ns[f] > last))
			last = h->last_updated_ns[f];
		any = any || h->updated[f];
	}

	rules_buf_adds(b, "{\"lastUpdated\":");
	if (ok) /* as upstream: a healthy answer reports "now" */
		add_time(b, now);
	else if (any)
		add_time(b, last);
	else
		rules_buf_adds(b, ZERO_TIME);
	rules_buf_adds(b, ",\"currentTime\":");
	add_time(b, now);
	if (node)
		rules_buf_printf(b, ",\"nodeEligible\":%s", eligible ? "true" : "false");
	rules_buf_printf(b, ",\"healthy\":%s", healthy ? "true" : "false");
	if (any) {
		rules_buf_adds(b, ",\"status\":{");
		for (f = 0, any = false; f < PROXY_N_FAMS; f++) {
			if (!h->updated[f])
				continue;
			rules_buf_printf(b, "%s\"%s\":{\"lastUpdated\":", any ? "," : "",
					 family_name[f]);
			add_time(b, h->last_updated_ns[f]);
			rules_buf_printf(b, ",\"healthy\":%s}",
					 family_healthy(h, f, now_ms) ? "true" : "false");
			any = true;
		}
		rules_buf_adds(b, "}");
	}
	rules_buf_adds(b, "}");
	return ok ? 200 : 503;
}

static int health_handle(void *arg, const struct proxy_httpd_request *req,
			 struct proxy_httpd_response *resp)
{
	struct proxy_health *h = arg;
	bool healthz = !strcmp(req->path, "/healthz");
	int status;

	if (!healthz && strcmp(req->path, "/livez"))
		return proxy_httpd_not_found(resp);
	resp->content_type = "application/json";
	rules_buf_adds(&resp->headers, "X-Content-Type-Options: nosniff\r\n");
	status = health_body(h, healthz, &resp->body);
	if (h->metrics) {
		uint64_t *counts = healthz ? h->metrics->healthz_total : h->metrics->livez_total;

		counts[status == 200 ? PROXY_CODE_200 : PROXY_CODE_503]++;
	}
	return status;
}

/* Go's %q for the names (which the API server keeps to [a-z0-9.-]). */
static void add_quoted(struct rules_buf *b, const char *s)
{
	rules_buf_addc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			rules_buf_printf(b, "\\%c", c);
		else if (c == '\n')
			rules_buf_adds(b, "\\n");
		else if (c == '\t')
			rules_buf_adds(b, "\\t");
		else if (c < 0x20 || c == 0x7f)
			rules_buf_printf(b, "\\x%02x", c);
		else
			rules_buf_addc(b, (char)c);
	}
	rules_buf_addc(b, '"');
}

static int hc_handle(void *arg, const struct proxy_httpd_request *req,
		     struct proxy_httpd_response *resp)
{
	struct hc_svc *e = arg;
	bool healthy = proxy_health_healthy(e->h);

	(void)req; /* every path */
	resp->content_type = "application/json";
	rules_buf_printf(&resp->headers,
			 "X-Content-Type-Options: nosniff\r\n"
			 "X-Load-Balancing-Endpoint-Weight: %u\r\n",
			 e->count);
	rules_buf_adds(&resp->body, "{\n\t\"service\": {\n\t\t\"namespace\": ");
	add_quoted(&resp->body, e->ns);
	rules_buf_adds(&resp->body, ",\n\t\t\"name\": ");
	add_quoted(&resp->body, e->name);
	rules_buf_printf(&resp->body,
			 "\n\t},\n\t\"localEndpoints\": %u,\n\t\"serviceProxyHealthy\": %s\n}",
			 e->count, healthy ? "true" : "false");
	return e->count && healthy ? 200 : 503;
}

/* ---- closing ------------------------------------------------------------ */

static void health_free(struct proxy_health *h)
{
	size_t i;

	for (i = 0; i < h->n_np_addrs; i++)
		free(h->np_addrs[i]);
	free(h->np_addrs);
	free(h->svcs);
	free(h);
}

static void health_closed_one(struct proxy_health *h)
{
	if (--h->n_closing || !h->closing)
		return;
	if (h->done)
		h->done(h->done_arg);
	health_free(h);
}

static void on_server_closed(void *arg)
{
	health_closed_one(arg);
}

static void on_closer_closed(uv_handle_t *handle)
{
	health_closed_one(handle->data);
}

static void server_close(struct proxy_health *h, struct proxy_httpd *s)
{
	h->n_closing++;
	proxy_httpd_close(s, on_server_closed, h);
}

static void svc_close_servers(struct hc_svc *e)
{
	size_t i;

	for (i = 0; i < e->n_servers; i++)
		server_close(e->h, e->servers[i]);
	e->n_servers = 0;
}

static void svc_free(struct hc_svc *e)
{
	svc_close_servers(e);
	free(e->servers);
	free(e->ns);
	free(e);
}

void proxy_health_close(struct proxy_health *h, void (*done)(void *arg), void *arg)
{
	size_t i;

	h->closing = true;
	h->done = done;
	h->done_arg = arg;
	h->n_closing++;
	uv_close((uv_handle_t *)&h->closer, on_closer_closed);
	if (h->server)
		server_close(h, h->server);
	h->server = NULL;
	for (i = 0; i < h->n_svcs; i++)
		svc_free(h->svcs[i]);
	h->n_svcs = 0;
}

/* ---- service health checks ---------------------------------------------- */

static int svc_cmp(const char *ns_a, const char *name_a, const char *ns_b, const char *name_b)
{
	int c = strcmp(ns_a, ns_b);

	return c ? c : strcmp(name_a, name_b);
}

static int input_cmp(const void *a, const void *b)
{
	const struct proxy_hc_service *x = *(const struct proxy_hc_service *const *)a;
	const struct proxy_hc_service *y = *(const struct proxy_hc_service *const *)b;

	return svc_cmp(x->ns, x->name, y->ns, y->name);
}

static struct hc_svc *svc_new(struct proxy_health *h, const struct proxy_hc_service *in)
{
	size_t ns_len = strlen(in->ns), name_len = strlen(in->name);
	struct hc_svc *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->servers = calloc(h->n_np_addrs ? h->n_np_addrs : 1, sizeof(*e->servers));
	e->ns = malloc(ns_len + name_len + 2);
	if (!e->servers || !e->ns) {
		free(e->servers);
		free(e->ns);
		free(e);
		return NULL;
	}
	memcpy(e->ns, in->ns, ns_len + 1);
	e->name = e->ns + ns_len + 1;
	memcpy(e->name, in->name, name_len + 1);
	e->h = h;
	e->port = in->hc_node_port;
	PLOG_I(2, "Opening healthcheck", "service=\"%s/%s\" port=%u", e->ns, e->name, e->port);
	return e;
}

/* Listen on every address, or on none: a partial set is closed again. */
static void svc_open(struct hc_svc *e)
{
	struct proxy_health *h = e->h;
	size_t i, n = h->n_np_addrs ? h->n_np_addrs : 1;
	char addr[80], msg[256];
	int err = 0;

	for (i = 0; i < n && !err; i++) {
		if (!h->n_np_addrs)
			snprintf(addr, sizeof(addr), ":%u", e->port);
		else if (strchr(h->np_addrs[i], ':'))
			snprintf(addr, sizeof(addr), "[%s]:%u", h->np_addrs[i], e->port);
		else
			snprintf(addr, sizeof(addr), "%s:%u", h->np_addrs[i], e->port);
		err = proxy_httpd_new(h->loop, addr, NULL, hc_handle, e, &e->servers[e->n_servers]);
		if (!err)
			e->n_servers++;
	}
	if (!err) {
		if (e->failed)
			PLOG_I(2, "Started healthcheck after an earlier failure",
			       "service=\"%s/%s\" port=%u", e->ns, e->name, e->port);
		e->failed = false;
		return;
	}
	/* Free the port for whoever owns it, and try again on the next sync. */
	svc_close_servers(e);
	if (e->failed) {
		PLOG_I(4, "Healthcheck still failing", "service=\"%s/%s\" port=%u err=\"%s\"",
		       e->ns, e->name, e->port, uv_strerror(err));
		return;
	}
	e->failed = true;
	PLOG_E("Failed to start healthcheck", "err=\"listen tcp %s: %s\" service=\"%s/%s\" port=%u",
	       addr, uv_strerror(err), e->ns, e->name, e->port);
	if (h->event_fn) {
		snprintf(msg, sizeof(msg),
			 "failed to start healthcheck \"%s/%s\" on port %u: listen tcp %s: %s",
			 e->ns, e->name, e->port, addr, uv_strerror(err));
		h->event_fn(h->event_arg, e->ns, e->name, "FailedToStartServiceHealthcheck", msg);
	}
}

static void svc_remove(struct hc_svc *e)
{
	PLOG_I(2, "Closing healthcheck", "service=\"%s/%s\" port=%u", e->ns, e->name, e->port);
	svc_free(e);
}

int proxy_health_sync_services(struct proxy_health *h, const struct proxy_hc_service *svcs,
			       size_t n)
{
	const struct proxy_hc_service **in;
	struct hc_svc **next, *e;
	size_t i, j, o = 0, nn = 0;
	unsigned int count;
	int err = 0;

	in = malloc((n ? n : 1) * sizeof(*in));
	next = malloc((n ? n : 1) * sizeof(*next));
	if (!in || !next) {
		free(in);
		free(next);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		in[i] = &svcs[i];
	qsort(in, n, sizeof(*in), input_cmp);

	/* Merge the sorted input with the sorted current entries. */
	for (i = 0; i < n; i = j) {
		count = in[i]->local_ready;
		for (j = i + 1; j < n && !input_cmp(&in[i], &in[j]); j++)
			if (in[j]->local_ready > count)
				count = in[j]->local_ready;
		if (!in[i]->hc_node_port)
			continue;
		while (o < h->n_svcs &&
		       svc_cmp(h->svcs[o]->ns, h->svcs[o]->name, in[i]->ns, in[i]->name) < 0)
			svc_remove(h->svcs[o++]);
		e = NULL;
		if (o < h->n_svcs &&
		    !svc_cmp(h->svcs[o]->ns, h->svcs[o]->name, in[i]->ns, in[i]->name)) {
			e = h->svcs[o++];
			if (e->port != in[i]->hc_node_port) {
				svc_remove(e);
				e = NULL;
			}
		}
		if (!e)
			e = svc_new(h, in[i]);
		if (!e) {
			PLOG_E("Failed to open healthcheck", "err=\"%s\" service=\"%s/%s\" port=%u",
			       strerror(ENOMEM), in[i]->ns, in[i]->name, in[i]->hc_node_port);
			err = -ENOMEM;
			continue;
		}
		if (e->count != count)
			PLOG_I(3, "Reporting endpoints for healthcheck",
			       "endpointCount=%u service=\"%s/%s\"", count, e->ns, e->name);
		e->count = count;
		if (!e->n_servers)
			svc_open(e);
		next[nn++] = e;
	}
	while (o < h->n_svcs)
		svc_remove(h->svcs[o++]);

	free(in);
	free(h->svcs);
	h->svcs = next;
	h->n_svcs = nn;
	return err;
}

/* ---- creation ----------------------------------------------------------- */

int proxy_health_new(struct uv_loop_s *loop, const char *bind_addr, uint64_t timeout_ms,
		     struct proxy_metrics *metrics, const char *const *nodeport_addrs,
		     size_t n_nodeport_addrs, proxy_health_event_fn event_fn, void *event_arg,
		     struct proxy_health **out)
{
	struct proxy_health *h;
	size_t i;
	int err;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->loop = loop;
	h->timeout_ms = timeout_ms;
	h->metrics = metrics;
	h->event_fn = event_fn;
	h->event_arg = event_arg;
	proxy_health_set_clock(h, NULL);

	if (n_nodeport_addrs) {
		h->np_addrs = calloc(n_nodeport_addrs, sizeof(*h->np_addrs));
		if (!h->np_addrs) {
			err = -ENOMEM;
			goto out_free;
		}
		for (i = 0; i < n_nodeport_addrs; i++) {
			h->np_addrs[i] = strdup(nodeport_addrs[i]);
			if (!h->np_addrs[i]) {
				err = -ENOMEM;
				goto out_free;
			}
			h->n_np_addrs++;
		}
	}

	if (bind_addr && *bind_addr) {
		err = proxy_httpd_new(loop, bind_addr, NULL, health_handle, h, &h->server);
		if (err) {
			PLOG_E("Failed to start proxy healthz", "address=\"%s\" err=\"%s\"",
			       bind_addr, uv_strerror(err));
			goto out_free;
		}
		PLOG_I(3, "Starting healthz HTTP server", "address=\"%s\"", bind_addr);
	}

	/* Last: from here on, freeing @h waits for this handle's close. */
	uv_timer_init(loop, &h->closer);
	h->closer.data = h;
	*out = h;
	return 0;

out_free:
	health_free(h);
	return err;
}

int proxy_health_listen(struct proxy_health *h, const char *bind_addr)
{
	int err;

	if (h->server)
		return 0;
	if (h->closing)
		return -ECANCELED;
	err = proxy_httpd_new(h->loop, bind_addr, NULL, health_handle, h, &h->server);
	if (err) {
		h->server = NULL;
		return err;
	}
	PLOG_I(0, "Started proxy healthz after an earlier failure", "address=\"%s\"", bind_addr);
	return 0;
}

int proxy_health_port(const struct proxy_health *h)
{
	return h->server ? proxy_httpd_port(h->server) : -1;
}
