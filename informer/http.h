/*
 * informer/http.h - HTTP requests on libcurl's multi-socket API driven by libuv.
 *
 * One struct informer_http per informer: a CURLM whose sockets are watched by
 * one uv_poll_t each (kept with curl_multi_assign) and whose timeouts are one
 * uv_timer_t (shared/style.md b.9). Requests never block the loop; HTTP/2 is
 * negotiated over TLS when the server offers it and all requests are then
 * multiplexed over one connection, HTTP/1.1 otherwise.
 *
 * This header exposes neither libuv nor libcurl types; informer/http.c is the
 * only file that includes both.
 *
 * Every function must be called on the loop thread. informer_http_start() and
 * informer_http_cancel() may be called from anywhere on it, including from a
 * request's own @data or @done callback (work asked for while libcurl is
 * running is deferred until it returns, as libcurl forbids re-entry).
 */
#ifndef INFORMER_HTTP_H
#define INFORMER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "informer/compiler.h"

struct uv_loop_s;
struct informer__logger;
struct informer_http;
struct informer_http_xfer;

/*
 * How to reach the server over TLS (all borrowed; NULL/0 when unset). CA,
 * client certificate and key come from a file or from memory; in-memory
 * PEM is handed to libcurl as a blob and never written to disk.
 */
struct informer_http_tls {
	const char *ca_file;
	const char *ca_pem;
	size_t ca_len;
	const char *cert_file;
	const char *cert_pem;
	size_t cert_len;
	const char *key_file;
	const char *key_pem;
	size_t key_len;
	/*
	 * kubeconfig tls-server-name: the request URL carries this name (so SNI
	 * and certificate verification use it) and "name:port:host:port" in
	 * @connect_to sends the connection to the real server (CURLOPT_CONNECT_TO).
	 */
	const char *connect_to;
	const char *proxy; /* kubeconfig proxy-url; NULL: the environment's */
	bool insecure;	   /* insecure-skip-tls-verify: no peer or host check */
};

/* How a request ended (borrowed, valid during the done callback only). */
struct informer_http_result {
	/*
	 * 0: a response arrived (see @status). Otherwise the transfer failed:
	 * -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT, -ECONNRESET (cut mid-way),
	 * -EPROTO (TLS or HTTP protocol failure), -E2BIG (buffered body over
	 * the cap), -ENOMEM, -EIO, or the non-zero value the data callback
	 * returned.
	 */
	int err;
	const char *errmsg; /* libcurl's words for @err; "" when err == 0 */
	long status;	    /* HTTP status; 0 when no response arrived */
	long retry_after;   /* Retry-After in seconds; -1 when absent */
	/* the body when it was not streamed (non-2xx, or no @data callback) */
	const char *body;
	size_t body_len;
};

struct informer_http_req {
	const char *url;
	const char *post_body; /* non-NULL: POST this JSON; else GET */
	size_t post_len;
	const struct informer_http_tls *tls; /* NULL: defaults */
	const char *token;		     /* bearer token; NULL: none */
	/* client certificate from an exec plugin; overrides @tls's */
	const char *cert_pem;
	size_t cert_len;
	const char *key_pem;
	size_t key_len;
	long idle_timeout;  /* seconds without a received byte before failing; 0: none */
	long total_timeout; /* seconds for the whole request; 0: none */
	size_t max_body;    /* cap on a buffered body; 0: 1 MiB */
	/* a 2xx body, chunk by chunk as it arrives (NULL: buffer it). Non-zero aborts. */
	int (*data)(void *arg, const char *buf, size_t len);
	/* called once when the request ends, never after informer_http_cancel() */
	void (*done)(void *arg, const struct informer_http_result *res);
	void *arg;
};

/*
 * informer_http_new - a client on @loop sending @user_agent (copied). libcurl
 * and libuv failures are reported through @log (copied; may be NULL) with
 * the library's own words. Returns 0, -ENOMEM or -EIO (libcurl or libuv
 * refused to initialise).
 */
int informer_http_new(struct uv_loop_s *loop, const char *user_agent,
		      const struct informer__logger *log,
		      struct informer_http **out) INFORMER_MUST_CHECK;

/*
 * informer_http_start - send @req (copied: nothing in it needs to outlive the
 * call). @out (may be NULL) receives a handle for informer_http_cancel(),
 * valid until @done is called or the request is cancelled.
 * Returns 0, -ENOMEM, -EINVAL (bad option) or -ESHUTDOWN (closing).
 */
int informer_http_start(struct informer_http *h, const struct informer_http_req *req,
			struct informer_http_xfer **out) INFORMER_MUST_CHECK;

/* Abandon a request: neither callback is called again. */
void informer_http_cancel(struct informer_http_xfer *x);

/*
 * informer_http_close - cancel every request, clean up libcurl, and close
 * every libuv handle; @done(@arg) is called from the loop once all are
 * closed. Then (and not before) informer_http_free() may be called. Called
 * from a request's callback while libcurl runs, the close happens as soon as
 * libcurl has returned; no request callback is called after this call.
 */
void informer_http_close(struct informer_http *h, void (*done)(void *arg), void *arg);
void informer_http_free(struct informer_http *h);

#endif /* INFORMER_HTTP_H */
