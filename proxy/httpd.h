/*
 * proxy/httpd.h - a small HTTP/1.1 server on the libuv loop.
 *
 * Serves the health, service health-check and metrics endpoints: GET and HEAD
 * only (anything else gets 405), keep-alive and pipelining (one response in
 * flight per connection; the rest of the input waits), requests parsed by
 * http_parser. Every connection is bounded: a request-target and header byte
 * cap (414/431), a request body cap (413), one deadline per exchange (from the
 * moment the connection is idle until the response is written, so neither a
 * slow sender nor a slow reader can hold it), and a maximum number of open
 * connections (further clients wait in the kernel's accept backlog).
 *
 * Single-threaded: every function is called on the loop's thread, and may be
 * called from a libuv callback.
 */
#ifndef PROXY_HTTPD_H
#define PROXY_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/compiler.h"
#include "rules/buf.h"

struct uv_loop_s;
struct proxy_httpd;

/* One parsed request; every string is borrowed for the handler call only. */
struct proxy_httpd_request {
	const char *method; /* "GET" or "HEAD" */
	const char *path;   /* as sent, not percent-decoded, e.g. "/healthz" */
	const char *query;  /* after '?', not decoded; "" when none */
};

/*
 * What the handler fills in. Both buffers start empty and are owned by the
 * server; a buffer in error (rules_buf.err) turns the answer into a 500.
 */
struct proxy_httpd_response {
	const char *content_type; /* static string, or NULL for no Content-Type */
	struct rules_buf headers; /* extra header lines, each "Name: value\r\n" */
	struct rules_buf body;	  /* not sent for HEAD (Content-Length still is) */
};

/* Answers one request; returns the HTTP status code (e.g. 200). */
typedef int (*proxy_httpd_handler_fn)(void *arg, const struct proxy_httpd_request *req,
				      struct proxy_httpd_response *resp);

/* Fill @resp with Go's ServeMux answer for an unknown path; returns 404. */
int proxy_httpd_not_found(struct proxy_httpd_response *resp);

/* Bounds on what a client can make the server hold; 0 fields take the default. */
struct proxy_httpd_limits {
	size_t max_url;		/* request-target bytes (414); default 4 KiB */
	size_t max_headers;	/* header bytes (431); default 16 KiB */
	size_t max_body;	/* request body bytes (413); default 64 KiB */
	uint64_t deadline_ms;	/* per request/response exchange; default 30 s */
	unsigned int max_conns; /* open connections; default 256 */
};

/*
 * proxy_httpd_new - listen on @addr and serve requests with @fn(@arg, ...).
 *
 * @addr is "ip:port": an IPv4 address, a bracketed IPv6 address ("[::1]:80"),
 * or the wildcard (":80", "0.0.0.0:80", "[::]:80"), which, as Go's listener
 * does, accepts both families (one dual-stack socket; IPv4 only on hosts
 * without IPv6). Port 0 picks a free port (see proxy_httpd_port()).
 * @limits may be NULL (all defaults). Nothing is logged: the caller logs the
 * error with its context.
 *
 * Returns 0, -EINVAL (malformed @addr), -ENOMEM, or the listen error
 * (-EADDRINUSE, -EACCES, -EADDRNOTAVAIL, ...). On error nothing is left for
 * the caller, but a handle that was already set up is released by the loop
 * on its next turn (as every uv_close()).
 */
int proxy_httpd_new(struct uv_loop_s *loop, const char *addr,
		    const struct proxy_httpd_limits *limits, proxy_httpd_handler_fn fn, void *arg,
		    struct proxy_httpd **out) PROXY_MUST_CHECK;

/* The local port the server listens on (useful after port 0). */
int proxy_httpd_port(const struct proxy_httpd *s);

/*
 * proxy_httpd_close - stop listening and close every connection, including
 * one in the middle of a response. The handler is never called again after
 * this returns. @done(@arg) runs on the loop once every handle is closed, and
 * @s is freed then. @done may be NULL.
 */
void proxy_httpd_close(struct proxy_httpd *s, void (*done)(void *arg), void *arg);

#endif /* PROXY_HTTPD_H */
