/*
 * proxy/httpd.c - a small HTTP/1.1 server on libuv and http_parser.
 *
 * One struct conn per accepted connection, holding its two handles (the TCP
 * stream and the deadline timer) and freed in the last close callback. The
 * parser is paused at the end of each request: reading stops, the response is
 * written with uv_write, and only when that write completes is the rest of the
 * input (kept in the read buffer) parsed or reading restarted. So a connection
 * never has more than one response queued, whatever a client pipelines.
 *
 * A response that ends the connection is followed by a write shutdown and a
 * short drain of what the client still sends (as Go's server does), so that
 * the kernel sends FIN rather than RST and the client can read the response.
 */
#include "proxy/httpd.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <http_parser.h>
#include <uv.h>

#include "proxy/log.h"

#define DEFAULT_MAX_URL	    4096
#define DEFAULT_MAX_HEADERS 16384
#define DEFAULT_MAX_BODY    65536
#define DEFAULT_DEADLINE_MS 30000
#define DEFAULT_MAX_CONNS   256
#define LISTEN_BACKLOG	    511
#define LINGER_MS	    500 /* drain after a closing response, as Go's server */
#define READ_BUF_SIZE	    8192

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer; /* the deadline of the current exchange, then the linger */
	uv_write_t write_req;
	uv_shutdown_t shutdown_req;
	http_parser parser;
	struct proxy_httpd *srv;
	struct conn *prev, *next;
	int open_handles;
	bool closing;
	bool writing;
	bool keep_alive; /* of the response being written */
	int reject;	 /* status for a request refused while it was parsed */
	size_t header_bytes;
	size_t body_bytes;
	struct rules_buf url;
	struct rules_buf out_head;
	struct rules_buf out_body;
	const char *pending; /* unparsed input in rbuf, waiting for the write */
	size_t pending_len;
	char rbuf[READ_BUF_SIZE];
};

struct proxy_httpd {
	uv_tcp_t listener;
	uv_loop_t *loop;
	struct proxy_httpd_limits limits;
	proxy_httpd_handler_fn fn;
	void *arg;
	struct conn *conns;
	unsigned int n_conns;
	bool listener_open;
	bool accept_waiting; /* a client is waiting for a free connection slot */
	bool closing;
	void (*done)(void *arg);
	void *done_arg;
};

static void conn_feed(struct conn *c, const char *data, size_t len);

/* ---- addresses ---------------------------------------------------------- */

static int parse_port(const char *s, int *port)
{
	int v = 0;
	size_t i;

	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

/*
 * "ip:port" -> a socket address. *@wildcard is set for the any-address forms,
 * which listen on both families.
 */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, bool *wildcard)
{
	char host[64];
	const char *colon, *hstart, *hend;
	int port;
	size_t n;

	*wildcard = false;
	if (!addr)
		return -EINVAL;
	if (addr[0] == '[') {
		hstart = addr + 1;
		hend = strchr(hstart, ']');
		if (!hend || hend[1] != ':')
			return -EINVAL;
		colon = hend + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
			return -EINVAL; /* no port, or an unbracketed IPv6 address */
		hstart = addr;
		hend = colon;
	}
	n = (size_t)(hend - hstart);
	if (n >= sizeof(host) || parse_port(colon + 1, &port))
		return -EINVAL;
	memcpy(host, hstart, n);
	host[n] = '\0';

	if (!n || !strcmp(host, "0.0.0.0") || !strcmp(host, "::")) {
		*wildcard = true;
		return uv_ip6_addr("::", port, (struct sockaddr_in6 *)ss) ? -EINVAL : 0;
	}
	if (addr[0] == '[')
		return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) ? -EINVAL : 0;
	return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) ? -EINVAL : 0;
}

/* ---- connections -------------------------------------------------------- */

static void server_maybe_finish(struct proxy_httpd *s)
{
	if (!s->closing || s->listener_open || s->conns)
		return;
	if (s->done)
		s->done(s->done_arg);
	free(s);
}

static void accept_one(struct proxy_httpd *s);

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct proxy_httpd *s = c->srv;

	if (--c->open_handles)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	rules_buf_cleanup(&c->url);
	rules_buf_cleanup(&c->out_head);
	rules_buf_cleanup(&c->out_body);
	free(c);

	if (s->closing) {
		server_maybe_finish(s);
	} else if (s->accept_waiting) {
		s->accept_waiting = false;
		accept_one(s);
	}
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_deadline(uv_timer_t *t)
{
	conn_close(t->data);
}

static void conn_arm(struct conn *c, uint64_t ms)
{
	uv_timer_start(&c->timer, on_deadline, ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	buf->base = c->rbuf;
	buf->len = sizeof(c->rbuf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;

	if (nread < 0) {
		/* EOF or a reset: nothing is being written (reading stops then). */
		conn_close(c);
		return;
	}
	if (nread == 0 || c->writing)
		return; /* EAGAIN, or the drain after a closing response */
	conn_feed(c, buf->base, (size_t)nread);
}

static void conn_read(struct conn *c)
{
	int err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);

	if (err)
		conn_close(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	if (status < 0 || c->closing) {
		conn_close(c);
		return;
	}
	/* Drain until the client closes too, or the linger runs out. */
	conn_arm(c,
		 c->srv->limits.deadline_ms < LINGER_MS ? c->srv->limits.deadline_ms : LINGER_MS);
	conn_read(c);
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;
	const char *data;
	size_t len;

	rules_buf_cleanup(&c->out_body); /* may be large: free it now */
	if (status < 0 || c->closing) {
		conn_close(c);
		return;
	}
	if (!c->keep_alive) {
		/* c->writing stays set: input read from now on is discarded. */
		if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown))
			conn_close(c);
		return;
	}
	c->writing = false;
	conn_arm(c, c->srv->limits.deadline_ms);
	http_parser_pause(&c->parser, 0);
	if (c->pending_len) {
		data = c->pending;
		len = c->pending_len;
		c->pending_len = 0;
		conn_feed(c, data, len);
	}
	if (!c->writing && !c->closing)
		conn_read(c);
}

static void add_date(struct rules_buf *b)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	rules_buf_printf(b, "Date: %s\r\n", date);
}

/*
 * Write the response: status line and headers into out_head, @body (taken:
 * the buffer is left empty) into out_body. Reading stops until the write is
 * done; @keep_alive false ends the connection afterwards.
 */
static void conn_respond(struct conn *c, int status, const char *content_type,
			 const struct rules_buf *headers, struct rules_buf *body, bool head_only,
			 bool keep_alive)
{
	struct rules_buf *h = &c->out_head;
	uv_buf_t bufs[2];
	unsigned int n = 1;

	uv_read_stop((uv_stream_t *)&c->tcp);
	c->writing = true;
	c->keep_alive = keep_alive && !c->srv->closing;

	rules_buf_reset(h);
	rules_buf_printf(h, "HTTP/1.1 %d %s\r\n", status,
			 http_status_str((enum http_status)status));
	if (content_type)
		rules_buf_printf(h, "Content-Type: %s\r\n", content_type);
	if (headers && headers->len)
		rules_buf_add(h, headers->data, headers->len);
	add_date(h);
	rules_buf_printf(h, "Content-Length: %zu\r\n", body->len);
	if (!c->keep_alive)
		rules_buf_adds(h, "Connection: close\r\n");
	else if (c->parser.http_major == 1 && c->parser.http_minor == 0)
		rules_buf_adds(h, "Connection: keep-alive\r\n"); /* HTTP/1.0 asked for it */
	rules_buf_adds(h, "\r\n");
	if (h->err) {
		PLOG_E("Failed to write an HTTP response", "err=\"%s\"", strerror(-h->err));
		rules_buf_cleanup(body);
		conn_close(c);
		return;
	}

	rules_buf_cleanup(&c->out_body);
	c->out_body = *body;
	rules_buf_init(body, body->max);
	bufs[0] = uv_buf_init(h->data, (unsigned int)h->len);
	if (!head_only && c->out_body.len)
		bufs[n++] = uv_buf_init(c->out_body.data, (unsigned int)c->out_body.len);
	if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, n, on_write))
		conn_close(c);
}

/* An answer the server makes itself (Go's style: "400 Bad Request"). */
static void conn_respond_plain(struct conn *c, int status, const char *extra_headers,
			       bool keep_alive)
{
	struct rules_buf headers, body;

	rules_buf_init(&headers, 0);
	rules_buf_init(&body, 0);
	rules_buf_adds(&headers, "X-Content-Type-Options: nosniff\r\n");
	if (extra_headers)
		rules_buf_adds(&headers, extra_headers);
	rules_buf_printf(&body, "%d %s", status, http_status_str((enum http_status)status));
	if (headers.err || body.err) {
		rules_buf_cleanup(&headers);
		rules_buf_cleanup(&body);
		conn_close(c);
		return;
	}
	conn_respond(c, status, "text/plain; charset=utf-8", &headers, &body, false, keep_alive);
	rules_buf_cleanup(&headers);
}

/* ---- requests ----------------------------------------------------------- */

static int on_message_begin(http_parser *p)
{
	struct conn *c = p->data;

	rules_buf_reset(&c->url);
	c->header_bytes = 0;
	c->body_bytes = 0;
	c->reject = 0;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	rules_buf_add(&c->url, at, len);
	if (c->url.err) {
		c->reject = c->url.err == -E2BIG ? 414 : 500;
		return -1;
	}
	return 0;
}

static int on_header_bytes(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	(void)at;
	c->header_bytes += len;
	if (c->header_bytes > c->srv->limits.max_headers) {
		c->reject = 431;
		return -1;
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	(void)at;
	c->body_bytes += len;
	if (c->body_bytes > c->srv->limits.max_body) {
		c->reject = 413;
		return -1;
	}
	return 0;
}

/* Call the handler for a complete GET or HEAD request and write its answer. */
static void conn_dispatch(struct conn *c, const char *path, const char *query, bool head,
			  bool keep_alive)
{
	struct proxy_httpd_request req = {
		.method = head ? "HEAD" : "GET",
		.path = path,
		.query = query,
	};
	struct proxy_httpd_response resp = { 0 };
	int status;

	rules_buf_init(&resp.headers, 0);
	rules_buf_init(&resp.body, 0);
	status = c->srv->fn(c->srv->arg, &req, &resp);
	if (resp.headers.err || resp.body.err) {
		PLOG_E("Failed to answer an HTTP request", "path=\"%s\" err=\"%s\"", path,
		       strerror(-(resp.headers.err ? resp.headers.err : resp.body.err)));
		rules_buf_cleanup(&resp.headers);
		rules_buf_cleanup(&resp.body);
		conn_respond_plain(c, 500, NULL, false);
		return;
	}
	conn_respond(c, status, resp.content_type, &resp.headers, &resp.body, head, keep_alive);
	rules_buf_cleanup(&resp.headers);
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct http_parser_url u;
	bool keep_alive = http_should_keep_alive(p) && !p->upgrade;
	char *url = c->url.data, *path;
	const char *query = "";

	/* Whatever happens below, stop here until the response is written. */
	http_parser_pause(p, 1);

	if (p->http_major != 1) { /* as Go: only HTTP/1.x here */
		conn_respond_plain(c, 505, NULL, false);
		return 0;
	}
	if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
		conn_respond_plain(c, 405, "Allow: GET, HEAD\r\n", keep_alive);
		return 0;
	}
	http_parser_url_init(&u);
	if (!url || http_parser_parse_url(url, c->url.len, 0, &u) ||
	    !(u.field_set & (1 << UF_PATH)) ||
	    url[u.field_data[UF_PATH].off] != '/') { /* e.g. "*" */
		conn_respond_plain(c, 400, NULL, false);
		return 0;
	}
	/* Cut path and query in place: the URL buffer is ours until the next request. */
	path = url + u.field_data[UF_PATH].off;
	if (u.field_set & (1 << UF_QUERY)) {
		url[u.field_data[UF_QUERY].off + u.field_data[UF_QUERY].len] = '\0';
		query = url + u.field_data[UF_QUERY].off;
	}
	path[u.field_data[UF_PATH].len] = '\0';
	conn_dispatch(c, path, query, p->method == HTTP_HEAD, keep_alive);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_bytes,
	.on_header_value = on_header_bytes,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* Parse @data; a complete request pauses the parser and keeps the rest pending. */
static void conn_feed(struct conn *c, const char *data, size_t len)
{
	size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

	if (c->closing)
		return;
	if (e == HPE_PAUSED) {
		c->pending = data + n;
		c->pending_len = len - n;
		return;
	}
	if (e != HPE_OK) {
		PLOG_I(4, "Rejected an HTTP request", "err=\"%s\"", http_errno_description(e));
		conn_respond_plain(c,
				   c->reject		      ? c->reject
				   : e == HPE_HEADER_OVERFLOW ? 431
							      : 400,
				   NULL, false);
	}
}

int proxy_httpd_not_found(struct proxy_httpd_response *resp)
{
	resp->content_type = "text/plain; charset=utf-8";
	rules_buf_adds(&resp->headers, "X-Content-Type-Options: nosniff\r\n");
	rules_buf_adds(&resp->body, "404 page not found\n");
	return 404;
}

/* ---- the listener ------------------------------------------------------- */

static void accept_one(struct proxy_httpd *s)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c) {
		/* Retried when a connection closes; until then clients wait in the backlog. */
		PLOG_E("Failed to accept a connection", "err=\"%s\"", strerror(ENOMEM));
		s->accept_waiting = true;
		return;
	}
	c->srv = s;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	rules_buf_init(&c->url, s->limits.max_url);
	rules_buf_init(&c->out_head, 0);
	rules_buf_init(&c->out_body, 0);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->tcp.data = c;
	c->timer.data = c;
	c->write_req.data = c;
	c->shutdown_req.data = c;

	/* Neither init can fail for these arguments (no socket is created). */
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->open_handles = 2;
	if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp)) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	conn_arm(c, s->limits.deadline_ms);
	conn_read(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct proxy_httpd *s = listener->data;

	if (status < 0) {
		PLOG_W("Failed to accept a connection", "err=\"%s\"", uv_strerror(status));
		return;
	}
	/* Leaving the connection unaccepted makes libuv stop accepting until we do. */
	if (s->n_conns >= s->limits.max_conns) {
		s->accept_waiting = true;
		return;
	}
	accept_one(s);
}

static void on_listener_closed(uv_handle_t *h)
{
	struct proxy_httpd *s = h->data;

	s->listener_open = false;
	server_maybe_finish(s);
}

static int server_listen(struct proxy_httpd *s, const struct sockaddr *sa, unsigned int flags)
{
	int err = uv_tcp_init_ex(s->loop, &s->listener, sa->sa_family);

	if (err)
		return err; /* nothing to close: libuv undoes a failed init */
	s->listener_open = true;
	err = uv_tcp_bind(&s->listener, sa, flags);
	if (!err)
		err = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
	return err;
}

int proxy_httpd_new(struct uv_loop_s *loop, const char *addr,
		    const struct proxy_httpd_limits *limits, proxy_httpd_handler_fn fn, void *arg,
		    struct proxy_httpd **out)
{
	struct sockaddr_storage ss;
	struct sockaddr_in any4;
	struct proxy_httpd *s;
	bool wildcard;
	int err;

	err = parse_addr(addr, &ss, &wildcard);
	if (err)
		return err;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->fn = fn;
	s->arg = arg;
	if (limits)
		s->limits = *limits;
	if (!s->limits.max_url)
		s->limits.max_url = DEFAULT_MAX_URL;
	if (!s->limits.max_headers)
		s->limits.max_headers = DEFAULT_MAX_HEADERS;
	if (!s->limits.max_body)
		s->limits.max_body = DEFAULT_MAX_BODY;
	if (!s->limits.deadline_ms)
		s->limits.deadline_ms = DEFAULT_DEADLINE_MS;
	if (!s->limits.max_conns)
		s->limits.max_conns = DEFAULT_MAX_CONNS;
	s->listener.data = s;

	/* The wildcard is one dual-stack [::] socket, or 0.0.0.0 without IPv6. */
	err = server_listen(s, (const struct sockaddr *)&ss, 0);
	if (err == UV_EAFNOSUPPORT && wildcard) {
		uv_ip4_addr("0.0.0.0", ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), &any4);
		err = server_listen(s, (const struct sockaddr *)&any4, 0);
	}
	if (err) {
		if (s->listener_open) {
			s->closing = true;
			uv_close((uv_handle_t *)&s->listener, on_listener_closed);
		} else {
			free(s);
		}
		return err;
	}
	*out = s;
	return 0;
}

int proxy_httpd_port(const struct proxy_httpd *s)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len))
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void proxy_httpd_close(struct proxy_httpd *s, void (*done)(void *arg), void *arg)
{
	struct conn *c;

	s->closing = true;
	s->done = done;
	s->done_arg = arg;
	uv_close((uv_handle_t *)&s->listener, on_listener_closed);
	for (c = s->conns; c; c = c->next)
		conn_close(c);
}
