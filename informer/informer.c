/*
 * informer/informer.c - the informer object: wiring, shutdown, events, logging.
 */
#include "informer/informer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "informer/http.h"
#include "informer/internal.h"
#include "informer/watch.h"

#ifndef KIP_VERSION
#define KIP_VERSION "0.0.0" /* the Makefile defines it from VERSION */
#endif

#if defined(__x86_64__)
#define KIP_ARCH "amd64"
#elif defined(__aarch64__)
#define KIP_ARCH "arm64"
#elif defined(__arm__)
#define KIP_ARCH "arm"
#elif defined(__i386__)
#define KIP_ARCH "386"
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define KIP_ARCH "ppc64le"
#elif defined(__s390x__)
#define KIP_ARCH "s390x"
#elif defined(__riscv) && __riscv_xlen == 64
#define KIP_ARCH "riscv64"
#else
#define KIP_ARCH "unknown"
#endif

#define USER_AGENT     "kube-iptables-proxy/" KIP_VERSION " (linux/" KIP_ARCH ")"
#define COMPONENT      "kube-iptables-proxy"
#define POSTS_MAX      32 /* events in flight; more are dropped (best effort) */
#define POST_TIMEOUT_S 30L
#define SERVICES_PATH  "/api/v1/services"
#define SLICES_PATH    "/apis/discovery.k8s.io/v1/endpointslices"
#define NODES_PATH     "/api/v1/nodes"

/* ---- logging ---------------------------------------------------------------- */

void informer__log(const struct informer__logger *l, int level, const char *msg, const char *kv)
{
	if (l && l->fn)
		l->fn(l->arg, level, msg, kv ? kv : "");
}

void informer__logf(const struct informer__logger *l, int level, const char *msg, const char *kvfmt,
		    ...)
{
	char kv[1024];
	va_list ap;

	if (!l || !l->fn)
		return;
	va_start(ap, kvfmt);
	vsnprintf(kv, sizeof(kv), kvfmt, ap);
	va_end(ap);
	l->fn(l->arg, level, msg, kv);
}

const char *informer__quote(char *buf, size_t len, const char *s, size_t slen)
{
	size_t i, o = 0;

	if (!len)
		return "";
	for (i = 0; i < slen && o + 1 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			if (o + 2 >= len)
				break;
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else {
			buf[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
		}
	}
	buf[o] = '\0';
	return buf;
}

uint64_t informer__random(struct informer *inf)
{
	uint64_t x = inf->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	inf->rng = x;
	return x;
}

/* ---- lifecycle ---------------------------------------------------------------- */

static char *selector_query(const char *key, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t klen = strlen(key);
	char *out = malloc(klen + 1 + strlen(value) * 3 + 1), *o;

	if (!out)
		return NULL;
	memcpy(out, key, klen);
	o = out + klen;
	*o++ = '=';
	for (; *value; value++) {
		unsigned char c = (unsigned char)*value;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

static int add_watch(struct informer *inf, enum informer_kind kind, const char *path,
		     const char *key, const char *value)
{
	char *query = selector_query(key, value);
	int err;

	if (!query)
		return -ENOMEM;
	err = informer_watch_new(inf, kind, path, query, &inf->watches[inf->n_watches]);
	free(query);
	if (err)
		return err;
	inf->n_watches++;
	return 0;
}

static uint64_t seed(void)
{
	uint64_t s = 0;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
		s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	return s ? s : 0x9e3779b97f4a7c15ull;
}

int informer_new(struct uv_loop_s *loop, struct informer_conn *conn,
		 const struct informer_config *cfg, const struct informer_handlers *handlers,
		 struct informer **out)
{
	struct informer *inf;
	char *node_sel = NULL;
	int err = -ENOMEM;

	inf = calloc(1, sizeof(*inf));
	if (!inf) {
		informer_conn_free(conn);
		return -ENOMEM;
	}
	inf->loop = loop;
	inf->conn = conn;
	inf->h = *handlers;
	inf->log.fn = handlers->log;
	inf->log.arg = handlers->arg;
	inf->list_only = cfg->list_only;
	inf->watch_list = cfg->watch_list;
	inf->page_limit = cfg->page_limit;
	inf->rng = seed();
	inf->label_selector =
		strdup(cfg->label_selector ? cfg->label_selector : INFORMER_PROXY_SELECTOR);
	inf->user_agent = strdup(cfg->user_agent ? cfg->user_agent : USER_AGENT);
	if (!inf->label_selector || !inf->user_agent)
		goto out_free;
	if (cfg->node_name && *cfg->node_name) {
		inf->node_name = strdup(cfg->node_name);
		if (!inf->node_name || asprintf(&node_sel, "metadata.name=%s", cfg->node_name) < 0)
			goto out_free;
	}
	informer__conn_attach(conn, loop, &inf->log);

	err = add_watch(inf, INFORMER_KIND_SERVICE, SERVICES_PATH, "labelSelector",
			inf->label_selector);
	if (!err)
		err = add_watch(inf, INFORMER_KIND_ENDPOINTSLICE, SLICES_PATH, "labelSelector",
				inf->label_selector);
	if (!err && node_sel)
		err = add_watch(inf, INFORMER_KIND_NODE, NODES_PATH, "fieldSelector", node_sel);
	free(node_sel);
	if (err)
		goto out_free;
	*out = inf;
	return 0;

out_free:
	informer_free(inf);
	return err;
}

int informer_start(struct informer *inf)
{
	size_t i;
	int err;

	if (inf->started || inf->stopping)
		return -EALREADY;
	err = informer_http_new(inf->loop, inf->user_agent, &inf->log, &inf->http);
	if (err)
		return err;
	inf->started = true;
	if (uv_timer_init(inf->loop, &inf->post_timer))
		return -EIO;
	inf->post_timer.data = inf;
	inf->post_timer_open = true;
	for (i = 0; i < inf->n_watches; i++) {
		err = informer_watch_start(inf->watches[i]);
		if (err)
			return err; /* the owner stops the informer, which closes what opened */
	}
	return 0;
}

void informer__closed(void *arg)
{
	struct informer *inf = arg;

	if (--inf->n_closing == 0 && inf->stop_done)
		inf->stop_done(inf->stop_arg);
}

static void on_stop_timer_closed(uv_handle_t *handle)
{
	informer__closed(handle->data);
}

static void post_free(struct informer__post *p);

void informer_stop(struct informer *inf, void (*done)(void *arg), void *arg)
{
	size_t i;

	inf->stopping = true;
	inf->stop_done = done;
	inf->stop_arg = arg;
	/* the stop timer's close callback runs from the loop even when nothing else is open */
	inf->n_closing = 1;
	if (uv_timer_init(inf->loop, &inf->stop_timer) == 0) {
		inf->stop_timer.data = inf;
		uv_close((uv_handle_t *)&inf->stop_timer, on_stop_timer_closed);
	} else {
		inf->n_closing = 0; /* cannot happen (timer init does not fail on unix) */
	}
	/* 1. stop the watches and event posts (their requests are cancelled) */
	for (i = 0; i < inf->n_watches; i++)
		inf->n_closing += (unsigned int)informer_watch_stop(inf->watches[i]);
	while (inf->posts)
		post_free(inf->posts);
	if (inf->post_timer_open) {
		inf->post_timer_open = false;
		inf->n_closing++;
		uv_close((uv_handle_t *)&inf->post_timer, on_stop_timer_closed);
	}
	/* a credential plugin still running is killed */
	if (informer__conn_close(inf->conn, informer__closed, inf))
		inf->n_closing++;
	/* 2.-4. libcurl handles, the multi handle, then the HTTP timer and sockets */
	if (inf->http) {
		inf->n_closing++;
		informer_http_close(inf->http, informer__closed, inf);
	}
	if (!inf->n_closing && done)
		done(arg);
}

void informer_free(struct informer *inf)
{
	size_t i;

	if (!inf)
		return;
	for (i = 0; i < inf->n_watches; i++)
		informer_watch_free(inf->watches[i]);
	while (inf->posts)
		post_free(inf->posts);
	informer_http_free(inf->http);
	informer_conn_free(inf->conn);
	free(inf->node_name);
	free(inf->label_selector);
	free(inf->user_agent);
	free(inf);
}

/* ---- events --------------------------------------------------------------------- */

struct informer__post {
	struct informer__post *prev, *next;
	struct informer *inf;
	struct informer__auth_wait auth;
	bool auth_waiting;
	bool retried_401;
	unsigned long cred_gen;
	struct informer_http_xfer *xfer;
	bool queued; /* waits for the post timer */
	char *path;  /* /api/v1/namespaces/<ns>/events */
	char *body;
	char *what; /* reason and object, for the log */
};

static void post_free(struct informer__post *p)
{
	struct informer *inf = p->inf;

	if (p->xfer)
		informer_http_cancel(p->xfer);
	if (p->auth_waiting)
		informer__conn_auth_cancel(inf->conn, &p->auth);
	if (p->prev)
		p->prev->next = p->next;
	else
		inf->posts = p->next;
	if (p->next)
		p->next->prev = p->prev;
	inf->n_posts--;
	free(p->path);
	free(p->body);
	free(p->what);
	free(p);
}

static void post_send(struct informer__post *p);

static void post_failed(struct informer__post *p, const char *kv)
{
	informer__logf(&p->inf->log, INFORMER_LOG_WARNING, "Cannot create an event", "%s %s",
		       p->what, kv);
	post_free(p);
}

static void on_post_done(void *arg, const struct informer_http_result *res)
{
	struct informer__post *p = arg;
	char kv[700], q[512];

	p->xfer = NULL;
	if (res->err) {
		snprintf(kv, sizeof(kv), "error=\"%s\"",
			 informer__quote(q, sizeof(q), res->errmsg, strlen(res->errmsg)));
		post_failed(p, kv);
		return;
	}
	if (res->status == 401 && !p->retried_401) {
		p->retried_401 = true;
		informer__conn_unauthorized(p->inf->conn, p->cred_gen);
		post_send(p);
		return;
	}
	if (res->status < 200 || res->status >= 300) {
		snprintf(kv, sizeof(kv), "status=%ld body=\"%s\"", res->status,
			 informer__quote(q, 300, res->body ? res->body : "",
					 res->body ? res->body_len : 0));
		post_failed(p, kv);
		return;
	}
	informer__logf(&p->inf->log, 4, "Created an event", "%s", p->what);
	post_free(p);
}

static void post_request(struct informer__post *p)
{
	const struct informer__cred *cred = informer__conn_cred(p->inf->conn);
	struct informer_http_req req = { 0 };
	char *url;
	int err;

	if (asprintf(&url, "%s%s", informer__conn_base(p->inf->conn), p->path) < 0) {
		post_failed(p, "error=\"out of memory\"");
		return;
	}
	req.url = url;
	req.post_body = p->body;
	req.post_len = strlen(p->body);
	req.tls = informer__conn_tls(p->inf->conn);
	req.token = cred->token;
	req.cert_pem = cred->cert_pem;
	req.cert_len = cred->cert_len;
	req.key_pem = cred->key_pem;
	req.key_len = cred->key_len;
	req.total_timeout = POST_TIMEOUT_S;
	req.done = on_post_done;
	req.arg = p;
	p->cred_gen = cred->gen;
	err = informer_http_start(p->inf->http, &req, &p->xfer);
	free(url);
	if (err) {
		char kv[64];

		p->xfer = NULL;
		snprintf(kv, sizeof(kv), "error=\"%s\"", strerror(-err));
		post_failed(p, kv);
	}
}

static void on_post_auth(struct informer__auth_wait *a, int err)
{
	struct informer__post *p = container_of(a, struct informer__post, auth);

	p->auth_waiting = false;
	if (err) {
		post_failed(p, "error=\"no credentials\"");
		return;
	}
	post_request(p);
}

static void post_send(struct informer__post *p)
{
	int ret = informer__conn_auth(p->inf->conn, &p->auth);

	if (ret < 0) {
		post_failed(p, "error=\"no credentials\"");
		return;
	}
	if (ret == 1) {
		p->auth_waiting = true;
		return;
	}
	post_request(p);
}

static char *event_body(const struct informer *inf, const char *kind, const char *ns,
			const char *name, const char *uid, const char *type, const char *reason,
			const char *message)
{
	char ts[32], evname[300];
	struct timespec now;
	struct tm tm;
	json_t *ev, *io;
	char *body = NULL;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* client-go's recorder: <object name>.<nanoseconds in hex> */
	snprintf(evname, sizeof(evname), "%.200s.%llx", name,
		 (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec);

	io = json_pack("{s:s, s:s, s:s}", "apiVersion", "v1", "kind", kind, "name", name);
	if (!io)
		return NULL;
	if ((ns && json_object_set_new(io, "namespace", json_string(ns))) ||
	    (uid && json_object_set_new(io, "uid", json_string(uid)))) {
		json_decref(io);
		return NULL;
	}
	ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:s, s:s, s:s, s:{s:s}, s:s, s:s, s:i, "
		       "s:s, s:s}",
		       "apiVersion", "v1", "kind", "Event", "metadata", "name", evname, "namespace",
		       ns ? ns : "default", "involvedObject", io, "reason", reason, "message",
		       message, "type", type, "source", "component", COMPONENT, "firstTimestamp",
		       ts, "lastTimestamp", ts, "count", 1, "reportingComponent", COMPONENT,
		       "reportingInstance", inf->node_name ? inf->node_name : "");
	if (!ev)
		return NULL;
	if (inf->node_name &&
	    json_object_set_new(json_object_get(ev, "source"), "host", json_string(inf->node_name)))
		goto out;
	body = json_dumps(ev, JSON_COMPACT);
out:
	json_decref(ev);
	return body;
}

/* Start the queued posts, from the loop (informer_post_event() calls no handler). */
static void on_post_timer(uv_timer_t *t)
{
	struct informer *inf = t->data;
	struct informer__post *p, *next;

	if (inf->n_dropped) {
		informer__logf(&inf->log, INFORMER_LOG_WARNING,
			       "Dropped events: too many in flight or out of memory", "dropped=%zu",
			       inf->n_dropped);
		inf->n_dropped = 0;
	}
	for (p = inf->posts; p && !inf->stopping; p = next) {
		next = p->next;
		if (p->queued) {
			p->queued = false;
			post_send(p); /* may free p, never another post */
		}
	}
}

void informer_post_event(struct informer *inf, const char *kind, const char *ns, const char *name,
			 const char *uid, const char *type, const char *reason, const char *message)
{
	struct informer__post *p;
	char q1[300], q2[300];

	if (!inf->started || inf->stopping || !inf->post_timer_open)
		return;
	if (inf->n_posts >= POSTS_MAX)
		goto out_drop;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto out_drop;
	p->inf = inf;
	p->auth.cb = on_post_auth;
	p->queued = true;
	p->body = event_body(inf, kind, ns, name, uid, type, reason, message);
	if (asprintf(&p->path, "/api/v1/namespaces/%s/events", ns ? ns : "default") < 0)
		p->path = NULL;
	if (asprintf(&p->what, "kind=%s object=\"%s%s%s\" reason=\"%s\"", kind, ns ? ns : "",
		     ns ? "/" : "", informer__quote(q2, sizeof(q2), name, strlen(name)),
		     informer__quote(q1, sizeof(q1), reason, strlen(reason))) < 0)
		p->what = NULL;
	if (!p->body || !p->path || !p->what) {
		free(p->body);
		free(p->path);
		free(p->what);
		free(p);
		goto out_drop;
	}
	p->next = inf->posts;
	if (p->next)
		p->next->prev = p;
	inf->posts = p;
	inf->n_posts++;
	uv_timer_start(&inf->post_timer, on_post_timer, 0, 0);
	return;

out_drop:
	inf->n_dropped++;
	uv_timer_start(&inf->post_timer, on_post_timer, 0, 0);
}
