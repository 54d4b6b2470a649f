/*
 * informer/watch.c - list/watch state machine (see informer/watch.h).
 *
 * States: a request in flight (LIST page, WATCH, or streaming list), waiting
 * for credentials (an exec plugin runs), or waiting on the timer (backoff).
 * w->next says which request the next attempt sends. Everything that ends a
 * request funnels into on_list_done()/on_watch_done(), which pick the next
 * step: again(), relist(), or backoff().
 */
#include "informer/watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "informer/http.h"
#include "informer/internal.h"
#include "informer/lines.h"
#include "informer/store.h"

#define BACKOFF_INITIAL_MS    800u
#define BACKOFF_CAP_MS	      30000u
#define BACKOFF_RESET_MS      120000u /* no failure for this long: start over */
#define SHORT_WATCH_MS	      1000u   /* a watch this short with no event is a failure */
#define WATCH_TIMEOUT_MIN_S   300u    /* timeoutSeconds in [300, 600), as client-go */
#define WATCH_IDLE_SLACK_S    30u     /* idle guard beyond timeoutSeconds */
#define LIST_IDLE_S	      60L
#define LIST_MAX_BODY	      (256u * 1024 * 1024)
#define WATCH_LIST_WAIT_MS    60000u /* for the initial-events-end bookmark */
#define DEFAULT_PAGE_LIMIT    500u
#define INITIAL_EVENTS_END    "k8s.io/initial-events-end"
#define LOG_EVERY_NTH_FAILURE 10u

enum next_req {
	NEXT_LIST,  /* a LIST page (or the streaming list) */
	NEXT_WATCH, /* a WATCH from w->rv */
};

/* What the stream's line handler decided (on_line -> on_watch_done). */
enum stream_end {
	END_NONE = 0,
	END_RELIST,  /* ERROR 410 */
	END_FAILED,  /* garbage, an ERROR other than 410: back off, watch again */
	END_STOPPED, /* the informer is stopping */
};

struct informer_watch {
	struct informer *inf;
	enum informer_kind kind;
	const char *what; /* "services", for logs */
	char *path;
	char *query;
	struct informer_store store;
	struct informer_lines lines;
	uv_timer_t timer;
	bool timer_open;
	bool stopped;
	struct informer__auth_wait auth;
	bool auth_waiting;
	struct informer_http_xfer *xfer;
	enum next_req next;
	char *rv;   /* resourceVersion to watch from */
	char *cont; /* continue token of the list in progress */
	bool synced;
	bool streaming_list; /* a streaming list's initial events are arriving */
	bool watch_list_off; /* streaming lists are not (or no longer) tried */
	bool retried_401;    /* the request was already retried after a 401 */
	unsigned long cred_gen;
	uint64_t backoff_ms;
	uint64_t last_failure_ms;
	unsigned long n_failures; /* consecutive */
	uint64_t started_ms;
	unsigned long n_events; /* in the current watch */
	enum stream_end end;
};

static void begin(struct informer_watch *w, enum next_req next);

static const char *kind_what(enum informer_kind kind)
{
	switch (kind) {
	case INFORMER_KIND_SERVICE:
		return "services";
	case INFORMER_KIND_ENDPOINTSLICE:
		return "endpointslices";
	case INFORMER_KIND_NODE:
		return "nodes";
	default:
		return "unknown";
	}
}

static const char *kind_name(enum informer_kind kind)
{
	switch (kind) {
	case INFORMER_KIND_SERVICE:
		return "Service";
	case INFORMER_KIND_ENDPOINTSLICE:
		return "EndpointSlice";
	case INFORMER_KIND_NODE:
		return "Node";
	default:
		return "unknown";
	}
}

static bool live(const struct informer_watch *w)
{
	return !w->stopped && !w->inf->stopping;
}

/* ---- JSON helpers ---------------------------------------------------------- */

static const char *jstr(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int set_str(char **dst, const char *src)
{
	char *c = NULL;

	if (src && !(c = strdup(src)))
		return -ENOMEM;
	free(*dst);
	*dst = c;
	return 0;
}

/* The Status in an error body, for the log: reason and message. */
static void status_text(const char *body, size_t len, char *buf, size_t buflen)
{
	char q[512];
	json_t *st = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	const char *msg = jstr(st, "message"), *reason = jstr(st, "reason");

	if (msg || reason)
		snprintf(buf, buflen, "reason=\"%s\" message=\"%s\"", reason ? reason : "",
			 informer__quote(q, sizeof(q), msg ? msg : "", msg ? strlen(msg) : 0));
	else
		snprintf(buf, buflen, "body=\"%s\"",
			 informer__quote(q, 200, body ? body : "", body ? len : 0));
	json_decref(st);
}

/* ---- delivering objects ------------------------------------------------------ */

static void on_diag(void *arg, const char *msg)
{
	struct informer_watch *w = arg;
	char q[1024];

	informer__logf(&w->inf->log, INFORMER_LOG_WARNING, "Ignored part of an object",
		       "detail=\"%s\"", informer__quote(q, sizeof(q), msg, strlen(msg)));
}

/* Decode @obj and hand it to the owner (who steals it). Returns 0 or the decoder's error. */
static int deliver_upsert(struct informer_watch *w, const json_t *obj)
{
	const struct informer_handlers *h = &w->inf->h;
	struct informer_diag diag = { on_diag, w };
	int err;

	switch (w->kind) {
	case INFORMER_KIND_SERVICE: {
		struct informer_service *svc;

		err = informer_decode_service(obj, &diag, &svc);
		if (err)
			return err;
		if (h->service_upsert)
			h->service_upsert(h->arg, svc);
		else
			informer_service_free(svc);
		return 0;
	}
	case INFORMER_KIND_ENDPOINTSLICE: {
		struct informer_endpointslice *eps;

		err = informer_decode_endpointslice(obj, &diag, &eps);
		if (err)
			return err;
		if (h->slice_upsert)
			h->slice_upsert(h->arg, eps);
		else
			informer_endpointslice_free(eps);
		return 0;
	}
	case INFORMER_KIND_NODE: {
		struct informer_node *node;

		err = informer_decode_node(obj, &diag, &node);
		if (err)
			return err;
		if (h->node_upsert)
			h->node_upsert(h->arg, node);
		else
			informer_node_free(node);
		return 0;
	}
	default:
		return -EPROTO;
	}
}

static void deliver_delete(void *arg, const char *ns, const char *name)
{
	struct informer_watch *w = arg;
	const struct informer_handlers *h = &w->inf->h;

	if (!live(w))
		return;
	switch (w->kind) {
	case INFORMER_KIND_SERVICE:
		if (h->service_delete)
			h->service_delete(h->arg, ns, name);
		break;
	case INFORMER_KIND_ENDPOINTSLICE:
		if (h->slice_delete)
			h->slice_delete(h->arg, ns, name);
		break;
	case INFORMER_KIND_NODE:
		if (h->node_delete)
			h->node_delete(h->arg, name);
		break;
	default:
		break;
	}
}

/*
 * An object exists at its resourceVersion (a list item or ADDED/MODIFIED):
 * deliver it unless the store already has that version.
 */
static void apply_upsert(struct informer_watch *w, const json_t *obj)
{
	const json_t *meta = json_object_get(obj, "metadata");
	const char *ns = jstr(meta, "namespace"), *name = jstr(meta, "name");
	const char *rv = jstr(meta, "resourceVersion"), *uid = jstr(meta, "uid");
	const char *stored;
	int err;

	if (!name || !*name) {
		informer__logf(&w->inf->log, INFORMER_LOG_WARNING,
			       "Skipped an object without a name",
			       "resource=%s resourceVersion=\"%s\"", w->what, rv ? rv : "");
		return;
	}
	if (ns && !*ns)
		ns = NULL;
	stored = informer_store_rv(&w->store, ns, name);
	if (stored && rv && !strcmp(stored, rv)) {
		/* the same version as delivered before (a relist): nothing changed */
		informer_store_keep(&w->store, ns, name);
		return;
	}
	err = deliver_upsert(w, obj);
	if (err) {
		informer__logf(&w->inf->log, INFORMER_LOG_WARNING,
			       "Skipped an object that failed to decode",
			       "kind=%s object=\"%s%s%s\" resourceVersion=\"%s\" error=\"%s\"",
			       kind_name(w->kind), ns ? ns : "", ns ? "/" : "", name, rv ? rv : "",
			       err == -ENOMEM ? "out of memory" : "invalid object");
		/* it exists: a relist must not report it deleted */
		informer_store_keep(&w->store, ns, name);
		return;
	}
	if (informer_store_upsert(&w->store, ns, name, rv, uid) < 0)
		informer__logf(&w->inf->log, INFORMER_LOG_ERROR,
			       "Cannot record a delivered object; a relist may miss its deletion",
			       "kind=%s object=\"%s%s%s\" error=\"out of memory\"",
			       kind_name(w->kind), ns ? ns : "", ns ? "/" : "", name);
}

static void apply_delete(struct informer_watch *w, const json_t *obj)
{
	const json_t *meta = json_object_get(obj, "metadata");
	const char *ns = jstr(meta, "namespace"), *name = jstr(meta, "name");

	if (!name || !*name)
		return;
	if (ns && !*ns)
		ns = NULL;
	/* never delivered (it failed to decode, say): nothing to delete */
	if (informer_store_remove(&w->store, ns, name))
		deliver_delete(w, ns, name);
}

/* A full list (or a streaming list's initial events) is complete. */
static void list_complete(struct informer_watch *w)
{
	size_t gone = informer_store_sweep(&w->store, deliver_delete, w);

	if (gone)
		informer__logf(&w->inf->log, 2, "Relist found deleted objects",
			       "resource=%s deleted=%zu", w->what, gone);
	informer__logf(&w->inf->log, 4, "Listed", "resource=%s objects=%zu resourceVersion=\"%s\"",
		       w->what, informer_store_count(&w->store), w->rv ? w->rv : "");
	w->n_failures = 0;
	if (!w->synced && live(w)) {
		w->synced = true;
		if (w->inf->h.synced)
			w->inf->h.synced(w->inf->h.arg, w->kind);
	}
}

/* ---- scheduling ------------------------------------------------------------ */

static void on_timer(uv_timer_t *t)
{
	struct informer_watch *w = t->data;

	if (w->xfer) {
		/* the streaming list's initial events did not end in time */
		informer_http_cancel(w->xfer);
		w->xfer = NULL;
		informer__logf(
			&w->inf->log, INFORMER_LOG_WARNING,
			"Streaming list did not finish in time, falling back to list and watch",
			"resource=%s timeout=\"%us\"", w->what, WATCH_LIST_WAIT_MS / 1000);
		w->watch_list_off = true;
		w->streaming_list = false;
	}
	begin(w, w->next);
}

static void arm(struct informer_watch *w, uint64_t ms)
{
	int err = uv_timer_start(&w->timer, on_timer, ms, 0);

	if (err)
		/* cannot happen for an initialised timer; the watch would stall, so say so */
		informer__logf(&w->inf->log, INFORMER_LOG_ERROR, "Cannot arm a watch timer",
			       "resource=%s error=\"%s\"", w->what, uv_strerror(err));
}

/*
 * A failure: try @next again after a backoff (or @retry_after seconds when
 * the server said so). @why and @kv say what failed, for the log.
 */
static void backoff(struct informer_watch *w, enum next_req next, long retry_after, const char *why,
		    const char *kv)
{
	uint64_t now = uv_now(w->inf->loop), delay;
	char line[1400];

	if (!live(w))
		return;
	if (w->last_failure_ms && now - w->last_failure_ms >= BACKOFF_RESET_MS)
		w->backoff_ms = 0;
	w->last_failure_ms = now;
	if (retry_after >= 0) {
		/* at least a second, so that "Retry-After: 0" cannot spin */
		delay = (uint64_t)(retry_after ? retry_after : 1) * 1000;
	} else {
		/* client-go's ExponentialBackoffManager(800ms, 30s, 2m, 2.0, jitter 1.0) */
		w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : BACKOFF_INITIAL_MS;
		if (w->backoff_ms > BACKOFF_CAP_MS)
			w->backoff_ms = BACKOFF_CAP_MS;
		delay = w->backoff_ms + informer__random(w->inf) % (w->backoff_ms + 1);
	}
	w->n_failures++;
	snprintf(line, sizeof(line), "resource=%s %s%sretryIn=\"%llums\" failures=%lu", w->what,
		 kv ? kv : "", kv ? " " : "", (unsigned long long)delay, w->n_failures);
	/* repeated failures: the first and every 10th at warning level */
	informer__log(&w->inf->log,
		      w->n_failures == 1 || w->n_failures % LOG_EVERY_NTH_FAILURE == 0
			      ? INFORMER_LOG_WARNING
			      : 4,
		      why, line);
	w->next = next;
	arm(w, delay);
}

static void relist(struct informer_watch *w)
{
	free(w->cont);
	w->cont = NULL;
	begin(w, NEXT_LIST);
}

/* 401: fresh credentials and one immediate retry; then back off. */
static void unauthorized(struct informer_watch *w, enum next_req next, const char *kv)
{
	if (!w->retried_401) {
		w->retried_401 = true;
		informer__conn_unauthorized(w->inf->conn, w->cred_gen);
		informer__logf(&w->inf->log, 2, "Unauthorized, retrying with fresh credentials",
			       "resource=%s", w->what);
		begin(w, next);
		return;
	}
	backoff(w, next, -1, "Unauthorized by the API server", kv);
}

/* ---- the stream -------------------------------------------------------------- */

static bool initial_events_end(const json_t *obj)
{
	const json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
	const char *v = jstr(ann, INITIAL_EVENTS_END);

	return v && !strcmp(v, "true");
}

static int on_line(void *arg, const char *line, size_t len)
{
	struct informer_watch *w = arg;
	const json_t *obj, *meta;
	const char *type, *rv;
	json_error_t jerr;
	json_t *ev;
	char q[256];

	if (!live(w)) {
		w->end = END_STOPPED;
		return 1;
	}
	ev = json_loadb(line, len, 0, &jerr);
	if (!ev) {
		informer__logf(&w->inf->log, INFORMER_LOG_WARNING,
			       "Watch sent a line that is not JSON, restarting the watch",
			       "resource=%s error=\"%s\" column=%d line=\"%s\"", w->what,
			       informer__quote(q, 128, jerr.text, strlen(jerr.text)), jerr.column,
			       informer__quote(q + 128, 128, line, len));
		w->end = END_FAILED;
		return 1;
	}
	type = jstr(ev, "type");
	obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj)) {
		informer__logf(&w->inf->log, INFORMER_LOG_WARNING,
			       "Watch sent an event without type or object, restarting the watch",
			       "resource=%s", w->what);
		w->end = END_FAILED;
		goto out;
	}
	if (!strcmp(type, "ERROR")) {
		const json_t *code = json_object_get(obj, "code");
		const char *msg = jstr(obj, "message"), *reason = jstr(obj, "reason");

		if (json_integer_value(code) == 410) {
			w->end = END_RELIST;
			informer__logf(&w->inf->log, 2, "Watch expired, relisting",
				       "resource=%s reason=\"%s\" message=\"%s\"", w->what,
				       reason ? reason : "",
				       informer__quote(q, sizeof(q), msg ? msg : "",
						       msg ? strlen(msg) : 0));
		} else {
			w->end = END_FAILED;
			informer__logf(&w->inf->log, INFORMER_LOG_WARNING, "Watch failed",
				       "resource=%s code=%lld reason=\"%s\" message=\"%s\"",
				       w->what, (long long)json_integer_value(code),
				       reason ? reason : "",
				       informer__quote(q, sizeof(q), msg ? msg : "",
						       msg ? strlen(msg) : 0));
		}
		goto out;
	}
	meta = json_object_get(obj, "metadata");
	rv = jstr(meta, "resourceVersion");
	w->n_events++;
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
		enum informer_kind k = informer_kind_of(obj);

		if (k == w->kind)
			apply_upsert(w, obj);
		else
			informer__logf(&w->inf->log, INFORMER_LOG_WARNING,
				       "Watch sent an object of another kind, skipped",
				       "resource=%s kind=\"%s\" apiVersion=\"%s\"", w->what,
				       jstr(obj, "kind") ? jstr(obj, "kind") : "",
				       jstr(obj, "apiVersion") ? jstr(obj, "apiVersion") : "");
	} else if (!strcmp(type, "DELETED")) {
		apply_delete(w, obj);
	} else if (!strcmp(type, "BOOKMARK")) {
		if (w->streaming_list && initial_events_end(obj)) {
			w->streaming_list = false;
			uv_timer_stop(&w->timer);
			if (rv && set_str(&w->rv, rv))
				goto out_nomem;
			list_complete(w);
		}
	} else {
		informer__logf(&w->inf->log, INFORMER_LOG_WARNING,
			       "Watch sent an unknown event type, restarting the watch",
			       "resource=%s type=\"%s\"", w->what,
			       informer__quote(q, sizeof(q), type, strlen(type)));
		w->end = END_FAILED;
		goto out;
	}
	/* the position to watch from is the last event's (not during a streaming list) */
	if (rv && *rv && !w->streaming_list && set_str(&w->rv, rv))
		goto out_nomem;
out:
	json_decref(ev);
	if (!live(w))
		w->end = END_STOPPED;
	return w->end != END_NONE;

out_nomem:
	informer__logf(&w->inf->log, INFORMER_LOG_ERROR, "Cannot record a resourceVersion",
		       "resource=%s error=\"out of memory\"", w->what);
	w->end = END_FAILED;
	goto out;
}

static int on_watch_data(void *arg, const char *buf, size_t len)
{
	struct informer_watch *w = arg;
	int err = informer_lines_feed(&w->lines, buf, len, on_line, w);

	/* a positive value is on_line()'s decision, kept in w->end */
	return err;
}

static void on_watch_done(void *arg, const struct informer_http_result *res)
{
	struct informer_watch *w = arg;
	uint64_t now = uv_now(w->inf->loop);
	bool was_streaming = w->streaming_list;
	enum stream_end end = w->end;
	/* a streaming list that failed before its end starts over: it is the list */
	enum next_req again = was_streaming ? NEXT_LIST : NEXT_WATCH;
	char kv[1024], st[900];

	w->xfer = NULL;
	w->end = END_NONE;
	w->streaming_list = false;
	if (was_streaming)
		uv_timer_stop(&w->timer);
	if (!live(w) || end == END_STOPPED)
		return;
	if (end == END_RELIST) {
		relist(w);
		return;
	}
	if (end == END_FAILED) {
		backoff(w, again, -1, "Watch stream was bad, watching again", NULL);
		return;
	}
	if (res->err == -E2BIG) {
		backoff(w, again, -1, "Watch event over the size cap, watching again", "cap=16MiB");
		return;
	}
	if (res->err) {
		char q[512];

		snprintf(kv, sizeof(kv), "error=\"%s\"",
			 res->err == -ENOMEM
				 ? "out of memory"
				 : informer__quote(q, sizeof(q), res->errmsg, strlen(res->errmsg)));
		backoff(w, again, -1, "Watch connection failed", kv);
		return;
	}
	if (res->status >= 200 && res->status < 300) {
		w->retried_401 = false;
		if (informer_lines_pending(&w->lines)) {
			snprintf(kv, sizeof(kv), "pendingBytes=%zu",
				 informer_lines_pending(&w->lines));
			backoff(w, again, -1, "Watch stream ended in the middle of an event", kv);
			return;
		}
		if (was_streaming) {
			informer__logf(
				&w->inf->log, INFORMER_LOG_WARNING,
				"Streaming list ended without its initial-events-end bookmark, "
				"falling back to list and watch",
				"resource=%s", w->what);
			w->watch_list_off = true;
			relist(w);
			return;
		}
		if (now - w->started_ms < SHORT_WATCH_MS && !w->n_events) {
			backoff(w, again, -1, "Watch ended at once without events", NULL);
			return;
		}
		begin(w, NEXT_WATCH);
		return;
	}

	status_text(res->body, res->body_len, st, sizeof(st));
	snprintf(kv, sizeof(kv), "status=%ld %s", res->status, st);
	if (res->status == 401) {
		unauthorized(w, again, kv);
	} else if (res->status == 429) {
		backoff(w, again, res->retry_after, "Watch throttled by the API server", kv);
	} else if (res->status == 410) {
		informer__logf(&w->inf->log, 2, "Watch resourceVersion too old, relisting", "%s",
			       kv);
		relist(w);
	} else if (was_streaming) {
		informer__log(&w->inf->log, INFORMER_LOG_WARNING,
			      "Streaming list refused, falling back to list and watch", kv);
		w->watch_list_off = true;
		relist(w);
	} else {
		backoff(w, again, -1, "Watch refused by the API server", kv);
	}
}

/* ---- LIST ---------------------------------------------------------------------- */

static void on_list_done(void *arg, const struct informer_http_result *res)
{
	struct informer_watch *w = arg;
	const json_t *items, *meta, *item;
	const char *cont, *rv;
	json_error_t jerr;
	json_t *doc;
	char kv[1024], q[512];
	size_t i;

	w->xfer = NULL;
	if (!live(w))
		return;
	if (res->err) {
		snprintf(kv, sizeof(kv), "error=\"%s\"",
			 informer__quote(q, sizeof(q), res->errmsg, strlen(res->errmsg)));
		backoff(w, NEXT_LIST, -1,
			res->err == -E2BIG ? "List response over the size cap" : "List failed", kv);
		return;
	}
	if (res->status < 200 || res->status >= 300) {
		char st[900];

		status_text(res->body, res->body_len, st, sizeof(st));
		snprintf(kv, sizeof(kv), "status=%ld %s", res->status, st);
		if (res->status == 410 && w->cont) {
			/* the continue token expired: start the list over, without it */
			informer__logf(&w->inf->log, 2,
				       "List continue token expired, listing again", "resource=%s",
				       w->what);
			relist(w);
		} else if (res->status == 401) {
			unauthorized(w, NEXT_LIST, kv);
		} else if (res->status == 429) {
			backoff(w, NEXT_LIST, res->retry_after, "List throttled by the API server",
				kv);
		} else {
			backoff(w, NEXT_LIST, -1, "List refused by the API server", kv);
		}
		return;
	}
	w->retried_401 = false;

	doc = json_loadb(res->body ? res->body : "", res->body_len, 0, &jerr);
	items = json_object_get(doc, "items");
	meta = json_object_get(doc, "metadata");
	if (!doc || (!json_is_array(items) && !json_is_null(items) && items) ||
	    !json_is_object(meta)) {
		snprintf(kv, sizeof(kv), "error=\"%s\" line=%d column=%d",
			 doc ? "not a list"
			     : informer__quote(q, sizeof(q), jerr.text, strlen(jerr.text)),
			 doc ? 0 : jerr.line, doc ? 0 : jerr.column);
		json_decref(doc);
		backoff(w, NEXT_LIST, -1, "List response is not a valid list", kv);
		return;
	}
	json_array_foreach (items, i, item) {
		if (!live(w))
			break;
		apply_upsert(w, item);
	}
	cont = jstr(meta, "continue");
	rv = jstr(meta, "resourceVersion");
	if (set_str(&w->cont, cont && *cont ? cont : NULL) || (!w->cont && set_str(&w->rv, rv))) {
		json_decref(doc);
		backoff(w, NEXT_LIST, -1, "Cannot record the list position",
			"error=\"out of memory\"");
		return;
	}
	json_decref(doc);
	if (!live(w))
		return;
	if (w->cont) {
		begin(w, NEXT_LIST); /* the next page */
		return;
	}
	list_complete(w);
	if (!live(w))
		return;
	if (w->inf->list_only)
		return;
	begin(w, NEXT_WATCH);
}

/* ---- sending ------------------------------------------------------------------ */

/* @s percent-encoded (RFC 3986 unreserved characters kept). */
static char *url_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(s) * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

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

static char *build_url(struct informer_watch *w, bool streaming, unsigned int timeout_s)
{
	const char *base = informer__conn_base(w->inf->conn);
	const char *sep = w->query && *w->query ? "&" : "";
	const char *query = w->query ? w->query : "";
	char *url = NULL, *enc = NULL;
	int n;

	if (w->next == NEXT_LIST && !streaming) {
		unsigned int limit = w->inf->page_limit ? w->inf->page_limit : DEFAULT_PAGE_LIMIT;

		if (w->cont && !(enc = url_encode(w->cont)))
			return NULL;
		n = asprintf(&url, "%s%s?%s%slimit=%u%s%s", base, w->path, query, sep, limit,
			     enc ? "&continue=" : "", enc ? enc : "");
	} else if (streaming) {
		n = asprintf(
			&url,
			"%s%s?%s%swatch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
			"&allowWatchBookmarks=true&timeoutSeconds=%u",
			base, w->path, query, sep, timeout_s);
	} else {
		if (w->rv && !(enc = url_encode(w->rv)))
			return NULL;
		n = asprintf(&url,
			     "%s%s?%s%swatch=1&allowWatchBookmarks=true&timeoutSeconds=%u%s%s",
			     base, w->path, query, sep, timeout_s, enc ? "&resourceVersion=" : "",
			     enc ? enc : "");
	}
	free(enc);
	return n < 0 ? NULL : url;
}

static void send_request(struct informer_watch *w)
{
	const struct informer__cred *cred = informer__conn_cred(w->inf->conn);
	bool streaming = w->next == NEXT_LIST && !w->cont && w->inf->watch_list &&
			 !w->watch_list_off && !w->inf->list_only;
	unsigned int timeout_s = WATCH_TIMEOUT_MIN_S +
				 (unsigned int)(informer__random(w->inf) % WATCH_TIMEOUT_MIN_S);
	struct informer_http_req req = { 0 };
	char *url;
	int err;

	url = build_url(w, streaming, timeout_s);
	if (!url) {
		backoff(w, w->next, -1, "Cannot build a request URL", "error=\"out of memory\"");
		return;
	}
	req.url = url;
	req.tls = informer__conn_tls(w->inf->conn);
	req.token = cred->token;
	req.cert_pem = cred->cert_pem;
	req.cert_len = cred->cert_len;
	req.key_pem = cred->key_pem;
	req.key_len = cred->key_len;
	req.arg = w;
	w->cred_gen = cred->gen;
	if (w->next == NEXT_LIST && !streaming) {
		if (!w->cont)
			informer_store_begin(&w->store);
		req.idle_timeout = LIST_IDLE_S;
		req.max_body = LIST_MAX_BODY;
		req.done = on_list_done;
	} else {
		if (streaming)
			informer_store_begin(&w->store);
		req.idle_timeout = (long)(timeout_s + WATCH_IDLE_SLACK_S);
		req.data = on_watch_data;
		req.done = on_watch_done;
		informer_lines_reset(&w->lines);
		w->end = END_NONE;
		w->n_events = 0;
		w->started_ms = uv_now(w->inf->loop);
		w->streaming_list = streaming;
	}
	err = informer_http_start(w->inf->http, &req, &w->xfer);
	if (err) {
		char kv[600], q[512];

		w->xfer = NULL;
		w->streaming_list = false;
		snprintf(kv, sizeof(kv), "url=\"%s\" error=\"%s\"",
			 informer__quote(q, sizeof(q), url, strlen(url)), strerror(-err));
		free(url);
		backoff(w, w->next, -1, "Cannot start a request", kv);
		return;
	}
	informer__logf(&w->inf->log, 5, "Request", "resource=%s url=\"%s\"", w->what, url);
	free(url);
	if (streaming)
		arm(w, WATCH_LIST_WAIT_MS);
}

static void on_auth(struct informer__auth_wait *a, int err)
{
	struct informer_watch *w = container_of(a, struct informer_watch, auth);

	w->auth_waiting = false;
	if (!live(w))
		return;
	if (err) {
		backoff(w, w->next, -1, "Cannot get credentials", "source=\"exec plugin\"");
		return;
	}
	send_request(w);
}

/* Send the @next request once the credentials are current. */
static void begin(struct informer_watch *w, enum next_req next)
{
	int ret;

	if (!live(w))
		return;
	if (next == NEXT_WATCH && !w->rv)
		next = NEXT_LIST; /* nothing listed yet: no position to watch from */
	w->next = next;
	ret = informer__conn_auth(w->inf->conn, &w->auth);
	if (ret < 0) {
		backoff(w, next, -1, "Cannot get credentials", NULL);
		return;
	}
	if (ret == 1) {
		w->auth_waiting = true;
		return;
	}
	send_request(w);
}

/* ---- lifecycle ---------------------------------------------------------------- */

int informer_watch_new(struct informer *inf, enum informer_kind kind, const char *path,
		       const char *query, struct informer_watch **out)
{
	struct informer_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->inf = inf;
	w->kind = kind;
	w->what = kind_what(kind);
	w->path = strdup(path);
	w->query = strdup(query ? query : "");
	if (!w->path || !w->query) {
		informer_watch_free(w);
		return -ENOMEM;
	}
	w->auth.cb = on_auth;
	informer_store_init(&w->store);
	informer_lines_init(&w->lines, INFORMER_LINES_MAX);
	*out = w;
	return 0;
}

int informer_watch_start(struct informer_watch *w)
{
	/* not logged: this runs inside informer_start(), which returns the error */
	if (uv_timer_init(w->inf->loop, &w->timer))
		return -EIO;
	w->timer.data = w;
	w->timer_open = true;
	w->next = NEXT_LIST;
	/* from the loop, so that no handler runs inside informer_start() */
	arm(w, 0);
	return 0;
}

static void on_timer_closed(uv_handle_t *handle)
{
	struct informer_watch *w = handle->data;

	informer__closed(w->inf);
}

int informer_watch_stop(struct informer_watch *w)
{
	w->stopped = true;
	if (w->xfer) {
		informer_http_cancel(w->xfer);
		w->xfer = NULL;
	}
	if (w->auth_waiting) {
		informer__conn_auth_cancel(w->inf->conn, &w->auth);
		w->auth_waiting = false;
	}
	if (!w->timer_open)
		return 0;
	w->timer_open = false;
	uv_close((uv_handle_t *)&w->timer, on_timer_closed);
	return 1;
}

void informer_watch_free(struct informer_watch *w)
{
	if (!w)
		return;
	informer_store_cleanup(&w->store);
	informer_lines_cleanup(&w->lines);
	free(w->path);
	free(w->query);
	free(w->rv);
	free(w->cont);
	free(w);
}
