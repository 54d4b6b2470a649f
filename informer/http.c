/*
 * informer/http.c - libcurl multi-socket API on a libuv loop.
 *
 * The wiring of curl's docs/examples/multi-uv.c (shared/style.md b.9), minus
 * its bugs: the timer's data is the client (not a socket context) and its
 * callback drives the multi handle; every malloc, curl_* and uv_* result is
 * checked; CURLMSG_DONE's result is passed on; a poll error is handed to
 * libcurl as CURL_CSELECT_ERR. libcurl refuses re-entry from its callbacks,
 * so requests started or cancelled while it runs (a write callback that
 * delivers an event whose handler starts a request) are applied once
 * curl_multi_socket_action() has returned.
 */
#include "informer/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>

#include "informer/internal.h"

#define HTTP_DEFAULT_MAX_BODY (1024 * 1024)
#define HTTP_CONNECT_TIMEOUT  30L /* client-go's dialer timeout */
#define HTTP_KEEPALIVE_IDLE   30L /* client-go's dialer keep-alive */
#define HTTP_KEEPALIVE_INTVL  15L

/* One watched socket: libcurl's socketp for it (curl_multi_assign). */
struct http_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct informer_http *h;
	struct http_sock *prev, *next;
};

struct informer_http_xfer {
	struct informer_http *h;
	struct informer_http_xfer *prev, *next;
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *connect_to;
	bool added;	/* in the multi handle */
	bool cancelled; /* cancelled while libcurl was running: destroy once it returns */
	int abort_err;	/* what the data callback returned */
	long retry_after;
	char *body;
	size_t body_len, body_cap, max_body;
	int (*data)(void *arg, const char *buf, size_t len);
	void (*done)(void *arg, const struct informer_http_result *res);
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
};

struct informer_http {
	uv_loop_t *loop;
	uv_timer_t timer;
	CURLM *multi;
	char *user_agent;
	struct informer__logger log;
	struct informer_http_xfer *xfers;
	struct http_sock *socks;
	bool in_curl; /* inside curl_multi_socket_action() */
	bool closing;
	bool close_pending;	   /* close asked for while in_curl */
	unsigned int open_handles; /* the timer and every poll not yet closed */
	void (*close_done)(void *arg);
	void *close_arg;
};

/* ---- CURLcode -> -errno (the one translation point, b.5) -------------- */

static int curl_err(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -ECONNRESET;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EPROTO;
	default:
		return -EIO;
	}
}

/* ---- handles ----------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *handle)
{
	struct informer_http *h = handle->data;

	if (handle->type == UV_POLL)
		free(container_of(handle, struct http_sock, poll));
	if (--h->open_handles == 0 && h->close_done)
		h->close_done(h->close_arg);
}

static void sock_close(struct http_sock *s)
{
	struct informer_http *h = s->h;

	if (s->prev)
		s->prev->next = s->next;
	else
		h->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	/* uv_close() stops the poll at once, so the fd may be watched again right away */
	s->poll.data = h;
	uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static void xfer_unlink(struct informer_http_xfer *x)
{
	struct informer_http *h = x->h;

	if (x->prev)
		x->prev->next = x->next;
	else
		h->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
}

/* Take @x out of libcurl and free its libcurl parts; @x itself stays. */
static void xfer_detach(struct informer_http_xfer *x)
{
	if (x->added) {
		CURLMcode mc = curl_multi_remove_handle(x->h->multi, x->easy);

		if (mc != CURLM_OK)
			informer__logf(&x->h->log, INFORMER_LOG_ERROR,
				       "Cannot remove an HTTP request from libcurl", "error=\"%s\"",
				       curl_multi_strerror(mc));
		x->added = false;
	}
	curl_easy_cleanup(x->easy);
	x->easy = NULL;
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	curl_slist_free_all(x->connect_to);
	x->connect_to = NULL;
	xfer_unlink(x);
}

static void xfer_free(struct informer_http_xfer *x)
{
	free(x->body);
	free(x);
}

static void xfer_destroy(struct informer_http_xfer *x)
{
	xfer_detach(x);
	xfer_free(x);
}

/* The request ended with @rc: tell its owner (unless cancelled) and free it. */
static void xfer_finish(struct informer_http_xfer *x, CURLcode rc)
{
	struct informer_http_result res = { 0 };

	if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &res.status) != CURLE_OK)
		res.status = 0;
	res.retry_after = x->retry_after;
	if (rc != CURLE_OK) {
		res.err = x->abort_err ? x->abort_err : curl_err(rc);
		res.errmsg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
	} else {
		res.errmsg = "";
	}
	res.body = x->body;
	res.body_len = x->body_len;

	xfer_detach(x);
	if (!x->cancelled)
		x->done(x->arg, &res);
	xfer_free(x);
}

static void drain(struct informer_http *h)
{
	CURLMsg *msg;
	int left;

	while (h->multi && (msg = curl_multi_info_read(h->multi, &left))) {
		struct informer_http_xfer *x;
		char *priv = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv) != CURLE_OK ||
		    !priv)
			continue;
		x = (struct informer_http_xfer *)(void *)priv;
		xfer_finish(x, msg->data.result);
	}
}

static int xfer_add(struct informer_http_xfer *x)
{
	CURLMcode mc = curl_multi_add_handle(x->h->multi, x->easy);

	if (mc != CURLM_OK) {
		informer__logf(&x->h->log, INFORMER_LOG_ERROR,
			       "Cannot add an HTTP request to libcurl", "error=\"%s\"",
			       curl_multi_strerror(mc));
		return -EIO;
	}
	x->added = true;
	return 0;
}

/* Apply what was asked for while libcurl was running. */
static void flush_deferred(struct informer_http *h)
{
	struct informer_http_xfer *x, *next;

	for (x = h->xfers; x; x = next) {
		next = x->next;
		if (x->cancelled) {
			xfer_destroy(x);
		} else if (!x->added && xfer_add(x)) {
			struct informer_http_result res = { .err = -EIO,
							    .errmsg = "cannot add the request",
							    .retry_after = -1 };

			xfer_detach(x);
			x->done(x->arg, &res);
			xfer_free(x);
			/* the callback may have cancelled anything: start over */
			next = h->xfers;
		}
	}
}

static void do_close(struct informer_http *h);

static void action(struct informer_http *h, curl_socket_t fd, int flags)
{
	CURLMcode mc;
	int running;

	if (!h->multi)
		return;
	h->in_curl = true;
	mc = curl_multi_socket_action(h->multi, fd, flags, &running);
	h->in_curl = false;
	if (h->close_pending) {
		do_close(h);
		return;
	}
	if (mc != CURLM_OK)
		informer__logf(&h->log, INFORMER_LOG_ERROR, "libcurl failed to drive its sockets",
			       "error=\"%s\"", curl_multi_strerror(mc));
	drain(h);
	flush_deferred(h);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
	struct http_sock *s = container_of(poll, struct http_sock, poll);
	int flags = 0;

	if (status < 0) {
		flags = CURL_CSELECT_ERR;
	} else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	action(s->h, s->fd, flags);
}

static void on_timeout(uv_timer_t *timer)
{
	action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct informer_http *h = userp;
	struct http_sock *s = socketp;
	int events = 0, err;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			sock_close(s);
			curl_multi_assign(h->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			informer__log(&h->log, INFORMER_LOG_ERROR, "Cannot watch a socket",
				      "error=\"out of memory\"");
			return -1;
		}
		err = uv_poll_init_socket(h->loop, &s->poll, fd);
		if (err) {
			informer__logf(&h->log, INFORMER_LOG_ERROR, "Cannot watch a socket",
				       "fd=%d error=\"%s\"", (int)fd, uv_strerror(err));
			free(s);
			return -1;
		}
		s->fd = fd;
		s->h = h;
		s->next = h->socks;
		if (s->next)
			s->next->prev = s;
		h->socks = s;
		h->open_handles++;
		curl_multi_assign(h->multi, fd, s);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	err = uv_poll_start(&s->poll, events, on_poll);
	if (err) {
		informer__logf(&h->log, INFORMER_LOG_ERROR, "Cannot watch a socket",
			       "fd=%d error=\"%s\"", (int)fd, uv_strerror(err));
		return -1;
	}
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: only arms the timer; libcurl is never driven from here. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct informer_http *h = userp;
	int err;

	(void)multi;
	if (timeout_ms < 0) {
		uv_timer_stop(&h->timer);
		return 0;
	}
	/* 0 fires on the loop's next timer pass, after libcurl has returned */
	err = uv_timer_start(&h->timer, on_timeout, (uint64_t)timeout_ms, 0);
	if (err) {
		informer__logf(&h->log, INFORMER_LOG_ERROR, "Cannot arm the HTTP timer",
			       "error=\"%s\"", uv_strerror(err));
		return -1;
	}
	return 0;
}

/* ---- easy handle setup --------------------------------------------------- */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userp)
{
	struct informer_http_xfer *x = userp;
	size_t n = size * nmemb;
	long status = 0;

	if (x->cancelled || x->h->closing)
		return CURL_WRITEFUNC_ERROR;
	if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 0;
	if (x->data && status >= 200 && status < 300) {
		int err = x->data(x->arg, ptr, n);

		if (err) {
			x->abort_err = err;
			return CURL_WRITEFUNC_ERROR;
		}
		return n;
	}
	if (n > x->max_body - x->body_len) {
		x->abort_err = -E2BIG;
		return CURL_WRITEFUNC_ERROR;
	}
	if (x->body_len + n + 1 > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 4096;
		char *b;

		while (cap < x->body_len + n + 1)
			cap *= 2;
		b = realloc(x->body, cap);
		if (!b) {
			x->abort_err = -ENOMEM;
			return CURL_WRITEFUNC_ERROR;
		}
		x->body = b;
		x->body_cap = cap;
	}
	memcpy(x->body + x->body_len, ptr, n);
	x->body_len += n;
	x->body[x->body_len] = '\0';
	return n;
}

/* Retry-After in delta-seconds (the form the API server sends); dates are ignored. */
static size_t on_header(char *buf, size_t size, size_t nmemb, void *userp)
{
	struct informer_http_xfer *x = userp;
	size_t n = size * nmemb, i;
	long v = 0;

	if (n >= 5 && !memcmp(buf, "HTTP/", 5)) {
		x->retry_after = -1; /* a new response (e.g. after 100 Continue) */
		return n;
	}
	if (n < 12 || strncasecmp(buf, "retry-after:", 12))
		return n;
	for (i = 12; i < n && (buf[i] == ' ' || buf[i] == '\t'); i++)
		;
	if (i == n || !isdigit((unsigned char)buf[i]))
		return n;
	for (; i < n && isdigit((unsigned char)buf[i]); i++)
		if (v < 86400)
			v = v * 10 + (buf[i] - '0');
	x->retry_after = v > 86400 ? 86400 : v;
	return n;
}

static int add_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *l = curl_slist_append(*list, line);

	if (!l)
		return -ENOMEM;
	*list = l;
	return 0;
}

static int build_headers(struct informer_http_xfer *x, const struct informer_http_req *req)
{
	int err;

	err = add_header(&x->headers, "Accept: application/json");
	if (!err && req->post_body)
		err = add_header(&x->headers, "Content-Type: application/json");
	if (!err && req->token) {
		char *line;

		if (asprintf(&line, "Authorization: Bearer %s", req->token) < 0)
			return -ENOMEM;
		err = add_header(&x->headers, line);
		/* the header carries a credential: leave no copy behind */
		explicit_bzero(line, strlen(line));
		free(line);
	}
	if (!err && req->tls && req->tls->connect_to)
		err = add_header(&x->connect_to, req->tls->connect_to);
	return err;
}

#define SET(opt, val)                                          \
	do {                                                   \
		if (rc == CURLE_OK)                            \
			rc = curl_easy_setopt(easy, opt, val); \
	} while (0)

static CURLcode set_blob(CURL *easy, CURLoption opt, const char *pem, size_t len)
{
	struct curl_blob blob = { (void *)(uintptr_t)pem, len, CURL_BLOB_COPY };

	return curl_easy_setopt(easy, opt, &blob);
}

static CURLcode setup_tls(CURL *easy, const struct informer_http_req *req)
{
	const struct informer_http_tls *tls = req->tls;
	CURLcode rc = CURLE_OK;

	if (tls) {
		if (tls->insecure) {
			SET(CURLOPT_SSL_VERIFYPEER, 0L);
			SET(CURLOPT_SSL_VERIFYHOST, 0L);
		}
		if (tls->ca_file || tls->ca_pem) {
			/* only the given CA: not the system store as well */
			SET(CURLOPT_CAPATH, (char *)NULL);
			if (tls->ca_pem && rc == CURLE_OK) {
				SET(CURLOPT_CAINFO, (char *)NULL);
				if (rc == CURLE_OK)
					rc = set_blob(easy, CURLOPT_CAINFO_BLOB, tls->ca_pem,
						      tls->ca_len);
			} else {
				SET(CURLOPT_CAINFO, tls->ca_file);
			}
		}
		if (tls->proxy)
			SET(CURLOPT_PROXY, tls->proxy);
	}
	/* the client certificate: an exec plugin's, else the kubeconfig's */
	if (req->cert_pem && req->key_pem) {
		if (rc == CURLE_OK)
			rc = set_blob(easy, CURLOPT_SSLCERT_BLOB, req->cert_pem, req->cert_len);
		if (rc == CURLE_OK)
			rc = set_blob(easy, CURLOPT_SSLKEY_BLOB, req->key_pem, req->key_len);
	} else if (tls) {
		if (tls->cert_file)
			SET(CURLOPT_SSLCERT, tls->cert_file);
		else if (tls->cert_pem && rc == CURLE_OK)
			rc = set_blob(easy, CURLOPT_SSLCERT_BLOB, tls->cert_pem, tls->cert_len);
		if (tls->key_file)
			SET(CURLOPT_SSLKEY, tls->key_file);
		else if (tls->key_pem && rc == CURLE_OK)
			rc = set_blob(easy, CURLOPT_SSLKEY_BLOB, tls->key_pem, tls->key_len);
	}
	return rc;
}

static CURLcode setup_easy(struct informer_http_xfer *x, const struct informer_http_req *req)
{
	CURL *easy = x->easy;
	CURLcode rc = CURLE_OK;

	SET(CURLOPT_PRIVATE, (char *)x);
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_USERAGENT, x->h->user_agent);
	SET(CURLOPT_HTTPHEADER, x->headers);
	SET(CURLOPT_ACCEPT_ENCODING, "");
	/*
	 * HTTP/2 when TLS ALPN offers it; requests then share one connection
	 * (CURLMOPT_PIPELINING). No CURLOPT_PIPEWAIT: libcurl 7.88 parks such a
	 * request until another transfer ends, which with long watches over
	 * HTTP/1.1 may be never; without it only requests started before the
	 * first connection is up open connections of their own.
	 */
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, HTTP_KEEPALIVE_IDLE);
	SET(CURLOPT_TCP_KEEPINTVL, HTTP_KEEPALIVE_INTVL);
	SET(CURLOPT_CONNECTTIMEOUT, HTTP_CONNECT_TIMEOUT);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	if (req->idle_timeout > 0) {
		/* not a total timeout: a healthy watch may be silent for minutes */
		SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
		SET(CURLOPT_LOW_SPEED_TIME, req->idle_timeout);
	}
	if (req->total_timeout > 0)
		SET(CURLOPT_TIMEOUT, req->total_timeout);
	if (req->post_body) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->post_len);
		SET(CURLOPT_COPYPOSTFIELDS, req->post_body);
	}
	if (x->connect_to)
		SET(CURLOPT_CONNECT_TO, x->connect_to);
	if (rc == CURLE_OK)
		rc = setup_tls(easy, req);
	return rc;
}

#undef SET

int informer_http_start(struct informer_http *h, const struct informer_http_req *req,
			struct informer_http_xfer **out)
{
	struct informer_http_xfer *x;
	CURLcode rc;
	int err;

	if (h->closing)
		return -ESHUTDOWN;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->h = h;
	x->retry_after = -1;
	x->max_body = req->max_body ? req->max_body : HTTP_DEFAULT_MAX_BODY;
	x->data = req->data;
	x->done = req->done;
	x->arg = req->arg;

	x->easy = curl_easy_init();
	if (!x->easy) {
		err = -ENOMEM;
		goto out_free;
	}
	err = build_headers(x, req);
	if (err)
		goto out_cleanup;
	rc = setup_easy(x, req);
	if (rc != CURLE_OK) {
		informer__logf(&h->log, INFORMER_LOG_ERROR, "Cannot set up an HTTP request",
			       "url=\"%s\" error=\"%s\"", req->url, curl_easy_strerror(rc));
		err = rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
		goto out_cleanup;
	}

	x->next = h->xfers;
	if (x->next)
		x->next->prev = x;
	h->xfers = x;
	/* inside libcurl the handle is added by flush_deferred() once it returns */
	if (!h->in_curl) {
		err = xfer_add(x);
		if (err) {
			xfer_destroy(x);
			return err;
		}
	}
	if (out)
		*out = x;
	return 0;

out_cleanup:
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	curl_slist_free_all(x->connect_to);
out_free:
	free(x);
	return err;
}

void informer_http_cancel(struct informer_http_xfer *x)
{
	if (!x)
		return;
	if (x->h->in_curl && x->added)
		x->cancelled = true;
	else
		xfer_destroy(x);
}

int informer_http_new(struct uv_loop_s *loop, const char *user_agent,
		      const struct informer__logger *log, struct informer_http **out)
{
	struct informer_http *h;
	CURLMcode mc = CURLM_OK;
	int err;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	h = calloc(1, sizeof(*h));
	if (!h) {
		err = -ENOMEM;
		goto out_global;
	}
	h->loop = loop;
	if (log)
		h->log = *log;
	h->user_agent = strdup(user_agent);
	if (!h->user_agent) {
		err = -ENOMEM;
		goto out_free;
	}
	h->multi = curl_multi_init();
	if (!h->multi) {
		err = -ENOMEM;
		goto out_free_ua;
	}
	mc = curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	/* failures here are not logged: the caller runs inside informer_start() */
	if (mc != CURLM_OK || uv_timer_init(loop, &h->timer)) {
		err = -EIO;
		goto out_multi;
	}
	h->timer.data = h;
	h->open_handles = 1;
	*out = h;
	return 0;

out_multi:
	curl_multi_cleanup(h->multi);
out_free_ua:
	free(h->user_agent);
out_free:
	free(h);
out_global:
	curl_global_cleanup();
	return err;
}

static void do_close(struct informer_http *h)
{
	CURLMcode mc;

	h->close_pending = false;
	while (h->xfers)
		xfer_destroy(h->xfers);
	/* fires CURL_POLL_REMOVE for the sockets of cached connections */
	mc = curl_multi_cleanup(h->multi);
	if (mc != CURLM_OK)
		informer__logf(&h->log, INFORMER_LOG_ERROR, "Cannot clean up libcurl",
			       "error=\"%s\"", curl_multi_strerror(mc));
	h->multi = NULL;
	while (h->socks)
		sock_close(h->socks);
	uv_close((uv_handle_t *)&h->timer, on_handle_closed);
}

void informer_http_close(struct informer_http *h, void (*done)(void *arg), void *arg)
{
	h->closing = true;
	h->close_done = done;
	h->close_arg = arg;
	if (h->in_curl)
		h->close_pending = true; /* libcurl refuses re-entry: close once it returns */
	else
		do_close(h);
}

void informer_http_free(struct informer_http *h)
{
	if (!h)
		return;
	free(h->user_agent);
	free(h);
	curl_global_cleanup();
}
