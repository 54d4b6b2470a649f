/*
 * test/test_proxy_httpd.c - the HTTP server, with real clients over loopback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/httpd.h"
#include "test/proxy/harness.h"

#define BIG_BODY (16u << 20) /* more than any socket buffer holds */

struct fixture {
	struct harness h;
	struct proxy_httpd *srv;
	int port;
	bool closed;
	unsigned int calls;
	char method[8];
	char path[128];
	char query[128];
};

static int handler(void *arg, const struct proxy_httpd_request *req,
		   struct proxy_httpd_response *resp)
{
	struct fixture *fx = arg;

	fx->calls++;
	snprintf(fx->method, sizeof(fx->method), "%s", req->method);
	snprintf(fx->path, sizeof(fx->path), "%s", req->path);
	snprintf(fx->query, sizeof(fx->query), "%s", req->query);
	if (!strcmp(req->path, "/missing"))
		return proxy_httpd_not_found(resp);
	if (!strcmp(req->path, "/fail")) {
		resp->body.err = -ENOMEM; /* as after a failed allocation */
		return 200;
	}
	if (!strcmp(req->path, "/big")) {
		if (!rules_buf_reserve(&resp->body, BIG_BODY)) {
			memset(resp->body.data, 'x', BIG_BODY);
			resp->body.len = BIG_BODY;
		}
		return 200;
	}
	resp->content_type = "text/plain";
	rules_buf_adds(&resp->headers, "X-Test: yes\r\n");
	rules_buf_printf(&resp->body, "%s %s?%s", req->method, req->path, req->query);
	return 200;
}

static void on_closed(void *arg)
{
	struct fixture *fx = arg;

	fx->closed = true;
}

static int start(struct fixture *fx, const struct proxy_httpd_limits *limits)
{
	int err = proxy_httpd_new(&fx->h.loop, "127.0.0.1:0", limits, handler, fx, &fx->srv);

	if (err)
		return err;
	fx->port = proxy_httpd_port(fx->srv);
	return 0;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx || harness_init(&fx->h) || start(fx, NULL))
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx->srv) {
		proxy_httpd_close(fx->srv, on_closed, fx);
		harness_until(&fx->h, &fx->closed);
	}
	assert_int_equal(harness_finish(&fx->h), 0); /* every handle was closed */
	free(fx);
	return 0;
}

/* Restart the server with other limits. */
static void restart(struct fixture *fx, const struct proxy_httpd_limits *limits)
{
	fx->closed = false;
	proxy_httpd_close(fx->srv, on_closed, fx);
	harness_until(&fx->h, &fx->closed);
	fx->srv = NULL;
	assert_int_equal(start(fx, limits), 0);
}

static char *fetch(struct fixture *fx, const char *req, struct harness_resp *r)
{
	size_t len;
	char *raw = harness_fetch(&fx->h, fx->port, req, &len);

	assert_non_null(raw);
	assert_int_equal(harness_parse(raw, len, r), 0);
	return raw;
}

static void assert_header(const struct harness_resp *r, const char *name, const char *want)
{
	char v[256];

	assert_non_null(harness_header(r, name, v, sizeof(v)));
	assert_string_equal(v, want);
}

/* ---- tests -------------------------------------------------------------- */

static void httpd_rejects_malformed_addresses(void **state)
{
	static const char *const bad[] = {
		"",
		"8080",
		"127.0.0.1",
		"127.0.0.1:",
		"127.0.0.1:65536",
		"127.0.0.1:80a",
		"127.0.0.1:-1",
		"::1:80",
		"[::1]",
		"[::1]80",
		"[::1:80",
		"localhost:80",
		"1.2.3:80",
		"[1.2.3.4]:80",
		"[fe80::zz]:80",
		":123456",
	};
	struct fixture *fx = *state;
	struct proxy_httpd *s = NULL;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(proxy_httpd_new(&fx->h.loop, bad[i], NULL, handler, fx, &s),
				 -EINVAL);
	assert_null(s);
}

static void httpd_listens_on_every_address_form(void **state)
{
	static const char *const good[] = { "127.0.0.1:0", ":0", "0.0.0.0:0", "[::]:0" };
	struct fixture *fx = *state;
	struct proxy_httpd *s;
	struct harness_resp r;
	char *raw;
	size_t i;
	int port;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(proxy_httpd_new(&fx->h.loop, good[i], NULL, handler, fx, &s), 0);
		port = proxy_httpd_port(s);
		assert_true(port > 0);
		/* Every form, the wildcard ones included, takes IPv4 connections. */
		raw = harness_fetch(&fx->h, port, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n",
				    NULL);
		assert_non_null(raw);
		assert_int_equal(harness_parse(raw, strlen(raw), &r), 0);
		assert_int_equal(r.status, 200);
		free(raw);
		fx->closed = false;
		proxy_httpd_close(s, on_closed, fx);
		harness_until(&fx->h, &fx->closed);
	}
}

static void httpd_port_in_use_is_an_error(void **state)
{
	struct fixture *fx = *state;
	struct proxy_httpd *s = NULL;
	char addr[32];

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", fx->port);
	assert_int_equal(proxy_httpd_new(&fx->h.loop, addr, NULL, handler, fx, &s), -EADDRINUSE);
	assert_null(s);
	/* The failed listener's handle is released on the next turn of the loop
	 * (teardown checks that nothing is left). */
}

static void httpd_get_has_status_headers_and_body(void **state)
{
	struct fixture *fx = *state;
	struct harness_resp r;
	char v[64], *raw;

	raw = fetch(fx, "GET /echo?a=1&b=%2F HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_memory_equal(raw, "HTTP/1.1 200 OK\r\n", 17);
	assert_header(&r, "Content-Type", "text/plain");
	assert_header(&r, "X-Test", "yes");
	assert_header(&r, "Content-Length", "19");
	assert_header(&r, "Connection", "close");
	assert_non_null(harness_header(&r, "Date", v, sizeof(v)));
	assert_int_equal(r.body_len, 19);
	assert_memory_equal(r.body, "GET /echo?a=1&b=%2F", 19);
	assert_string_equal(fx->path, "/echo");
	assert_string_equal(fx->query, "a=1&b=%2F");
	free(raw);

	/* The absolute form of the request target names the same path. */
	raw = fetch(fx, "GET http://h:1/abs HTTP/1.1\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(fx->path, "/abs");
	assert_string_equal(fx->query, "");
	free(raw);
}

static void httpd_head_has_length_but_no_body(void **state)
{
	struct fixture *fx = *state;
	struct harness_resp r;
	char *raw;

	raw = fetch(fx, "HEAD /echo HTTP/1.1\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(fx->method, "HEAD");
	assert_header(&r, "Content-Length", "11"); /* "HEAD /echo?" */
	assert_int_equal(r.body_len, 0);
	free(raw);
}

static void httpd_not_found_and_handler_failure(void **state)
{
	struct fixture *fx = *state;
	struct harness_resp r;
	char *raw;

	raw = fetch(fx, "GET /missing HTTP/1.1\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 404);
	assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
	assert_header(&r, "X-Content-Type-Options", "nosniff");
	assert_int_equal(r.body_len, 19);
	assert_memory_equal(r.body, "404 page not found\n", 19);
	free(raw);

	raw = fetch(fx, "GET /fail HTTP/1.1\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 500);
	free(raw);
}

struct keepalive {
	int port;
	char *resp[4];
	bool eof;
};

static void client_keepalive(void *arg)
{
	struct keepalive *k = arg;
	struct harness_reader rd = { .fd = harness_connect(k->port) };
	char c;

	if (rd.fd < 0)
		return;
	if (harness_send(rd.fd, "GET /one HTTP/1.1\r\nHost: t\r\n\r\n", 30))
		goto out;
	k->resp[0] = harness_read_response(&rd);
	/* Then three pipelined in one write: 405 keeps the connection, the last closes it. */
	if (harness_send(rd.fd,
			 "GET /two HTTP/1.1\r\n\r\n"
			 "POST /post HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
			 "GET /three HTTP/1.1\r\nConnection: close\r\n\r\n",
			 21 + 48 + 42))
		goto out;
	k->resp[1] = harness_read_response(&rd);
	k->resp[2] = harness_read_response(&rd);
	k->resp[3] = harness_read_response(&rd);
	k->eof = recv(rd.fd, &c, 1, 0) == 0;
out:
	close(rd.fd);
}

static void httpd_keeps_alive_and_answers_pipelined_requests_in_order(void **state)
{
	static const char *const want[] = {
		"GET /one?",
		"GET /two?",
		NULL,
		"GET /three?",
	};
	struct fixture *fx = *state;
	struct keepalive k = { .port = fx->port };
	struct harness_resp r;
	int i;

	assert_int_equal(harness_run(&fx->h, client_keepalive, &k), 0);
	for (i = 0; i < 4; i++) {
		assert_non_null(k.resp[i]);
		assert_int_equal(harness_parse(k.resp[i], strlen(k.resp[i]), &r), 0);
		if (want[i]) {
			assert_int_equal(r.status, 200);
			assert_int_equal(r.body_len, strlen(want[i]));
			assert_memory_equal(r.body, want[i], r.body_len);
		} else {
			assert_int_equal(r.status, 405);
			assert_header(&r, "Allow", "GET, HEAD");
		}
		free(k.resp[i]);
	}
	assert_true(k.eof);
	assert_int_equal(fx->calls, 3); /* the POST never reached the handler */
}

static void httpd_http10_closes_unless_asked(void **state)
{
	struct fixture *fx = *state;
	struct harness_resp r;
	char *raw;

	raw = fetch(fx, "GET /old HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Connection", "close");
	free(raw);
}

static void httpd_garbage_gets_400_and_the_server_lives_on(void **state)
{
	static const struct {
		const char *req;
		int status;
	} garbage[] = {
		{ "GARBAGE\r\n\r\n", 400 },
		{ "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400 }, /* a TLS ClientHello */
		{ "GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400 },
		{ "GET\r\n\r\n", 400 },
		{ "GET * HTTP/1.1\r\n\r\n", 400 },
		{ "\r\n\r\n\r\n\x01", 400 },
		{ "GET / HTTP/9.9\r\n\r\n", 505 }, /* as Go's server */
	};
	struct fixture *fx = *state;
	struct harness_resp r;
	char *raw;
	size_t i;

	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		raw = fetch(fx, garbage[i].req, &r);
		assert_int_equal(r.status, garbage[i].status);
		assert_header(&r, "Connection", "close");
		free(raw);
	}
	assert_int_equal(fx->calls, 0);
	raw = fetch(fx, "GET /fine HTTP/1.1\r\nConnection: close\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	free(raw);
}

static void httpd_oversized_requests_are_refused(void **state)
{
	struct fixture *fx = *state;
	struct rules_buf req;
	struct harness_resp r;
	char *raw;

	rules_buf_init(&req, 0);

	/* A 5000-byte request target: 414. */
	rules_buf_adds(&req, "GET /");
	for (int i = 0; i < 5000; i++)
		rules_buf_addc(&req, 'u');
	rules_buf_adds(&req, " HTTP/1.1\r\n\r\n");
	raw = fetch(fx, req.data, &r);
	assert_int_equal(r.status, 414);
	free(raw);

	/* 20 KiB of headers: 431. */
	rules_buf_reset(&req);
	rules_buf_adds(&req, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 200; i++)
		rules_buf_printf(&req, "X-Filler-%d: %0100d\r\n", i, 0);
	rules_buf_adds(&req, "\r\n");
	raw = fetch(fx, req.data, &r);
	assert_int_equal(r.status, 431);
	assert_header(&r, "Connection", "close");
	free(raw);

	/* A 100 KiB body: 413. */
	rules_buf_reset(&req);
	rules_buf_adds(&req, "POST / HTTP/1.1\r\nContent-Length: 102400\r\n\r\n");
	for (int i = 0; i < 102400; i++)
		rules_buf_addc(&req, 'b');
	raw = fetch(fx, req.data, &r);
	assert_int_equal(r.status, 413);
	free(raw);

	assert_int_equal(req.err, 0);
	rules_buf_cleanup(&req);
	assert_int_equal(fx->calls, 0);
}

struct slow {
	int port;
	size_t got;
	bool eof;
	double seconds;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Half a request, then nothing: the deadline must close the connection. */
static void client_half_request(void *arg)
{
	struct slow *s = arg;
	int fd = harness_connect(s->port);
	double t0 = now_s();
	char *rest;

	if (fd < 0)
		return;
	if (!harness_send(fd, "GET /slow HTTP/1.1\r\nHost:", 25)) {
		rest = harness_recv_all(fd, &s->got);
		s->eof = rest != NULL;
		free(rest);
	}
	s->seconds = now_s() - t0;
	close(fd);
}

static void httpd_deadline_closes_stalled_connections(void **state)
{
	struct proxy_httpd_limits lim = { .deadline_ms = 200 };
	struct fixture *fx = *state;
	struct slow s;

	restart(fx, &lim);
	s = (struct slow){ .port = fx->port };
	assert_int_equal(harness_run(&fx->h, client_half_request, &s), 0);
	assert_true(s.eof);
	assert_int_equal(s.got, 0); /* closed without an answer */
	assert_true(s.seconds >= 0.15 && s.seconds < 5);
	assert_int_equal(fx->calls, 0);
}

struct slow_reader {
	int port;
	char *other;
	size_t other_len;
	size_t big_got;
};

/*
 * Ask for 16 MiB and do not read it; meanwhile another client must be served.
 * Then read: the stalled response is cut off by the deadline.
 */
static void client_slow_reader(void *arg)
{
	struct slow_reader *s = arg;
	int fd = harness_connect(s->port);
	char *big;

	if (fd < 0)
		return;
	if (!harness_send(fd, "GET /big HTTP/1.1\r\n\r\n", 21)) {
		usleep(100 * 1000);
		s->other = harness_exchange(
			s->port, "GET /other HTTP/1.1\r\nConnection: close\r\n\r\n", &s->other_len);
		usleep(600 * 1000); /* past the deadline */
		big = harness_recv_all(fd, &s->big_got);
		free(big);
	}
	close(fd);
}

static void httpd_slow_reader_does_not_block_the_loop(void **state)
{
	struct proxy_httpd_limits lim = { .deadline_ms = 400 };
	struct fixture *fx = *state;
	struct slow_reader s;
	struct harness_resp r;

	restart(fx, &lim);
	s = (struct slow_reader){ .port = fx->port };
	assert_int_equal(harness_run(&fx->h, client_slow_reader, &s), 0);
	assert_non_null(s.other);
	assert_int_equal(harness_parse(s.other, s.other_len, &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(s.big_got > 0);
	assert_true(s.big_got < BIG_BODY); /* the server gave up on it */
	free(s.other);
}

#define N_PARALLEL 100

struct parallel {
	int port;
	int ok;
};

static void client_parallel(void *arg)
{
	struct parallel *p = arg;
	static int fds[N_PARALLEL];
	char *raw;
	size_t len;
	int i;

	/* Everyone connects and asks first; only then are the answers read. */
	for (i = 0; i < N_PARALLEL; i++) {
		fds[i] = harness_connect(p->port);
		if (fds[i] >= 0 &&
		    harness_send(fds[i], "GET /p HTTP/1.1\r\nConnection: close\r\n\r\n", 39)) {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	for (i = 0; i < N_PARALLEL; i++) {
		if (fds[i] < 0)
			continue;
		raw = harness_recv_all(fds[i], &len);
		if (raw && len > 12 && !strncmp(raw, "HTTP/1.1 200 ", 13) &&
		    !strcmp(raw + len - 7, "GET /p?"))
			p->ok++;
		free(raw);
		close(fds[i]);
	}
}

static void httpd_serves_many_parallel_connections(void **state)
{
	struct proxy_httpd_limits lim = { .max_conns = 8 };
	struct fixture *fx = *state;
	struct parallel p;

	restart(fx, &lim); /* more clients than slots: the rest wait to be accepted */
	p = (struct parallel){ .port = fx->port };
	assert_int_equal(harness_run(&fx->h, client_parallel, &p), 0);
	assert_int_equal(p.ok, N_PARALLEL);
	assert_int_equal(fx->calls, N_PARALLEL);
}

struct limit {
	int port;
	int n_idle;
	bool waited;   /* the extra client got nothing while the slots were taken */
	bool answered; /* ... and its answer once one was freed */
};

static void client_over_limit(void *arg)
{
	struct limit *l = arg;
	struct pollfd pfd = { .events = POLLIN };
	int idle[4], fd, i;
	char *raw;

	for (i = 0; i < l->n_idle; i++)
		idle[i] = harness_connect(l->port);
	usleep(100 * 1000); /* let the server accept them */
	fd = harness_connect(l->port);
	if (fd >= 0 && !harness_send(fd, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n", 39)) {
		pfd.fd = fd;
		l->waited = poll(&pfd, 1, 300) == 0;
		close(idle[0]);
		idle[0] = -1;
		raw = harness_recv_all(fd, NULL);
		l->answered = raw && !strncmp(raw, "HTTP/1.1 200 ", 13);
		free(raw);
	}
	if (fd >= 0)
		close(fd);
	for (i = 0; i < l->n_idle; i++)
		if (idle[i] >= 0)
			close(idle[i]);
}

static void httpd_connection_limit_holds_clients_in_the_backlog(void **state)
{
	struct proxy_httpd_limits lim = { .max_conns = 4 };
	struct fixture *fx = *state;
	struct limit l;

	restart(fx, &lim);
	l = (struct limit){ .port = fx->port, .n_idle = 4 };
	assert_int_equal(harness_run(&fx->h, client_over_limit, &l), 0);
	assert_true(l.waited);
	assert_true(l.answered);
}

struct open_conns {
	int port;
	int fds[3];
};

static void client_leave_open(void *arg)
{
	struct open_conns *o = arg;
	struct harness_reader *rd = calloc(1, sizeof(*rd));
	char *raw;

	o->fds[0] = harness_connect(o->port); /* idle */
	o->fds[1] = harness_connect(o->port); /* half a request */
	o->fds[2] = harness_connect(o->port); /* keep-alive, after one answer */
	harness_send(o->fds[1], "GET /half HTTP/1.1\r\n", 20);
	if (rd && o->fds[2] >= 0 && !harness_send(o->fds[2], "GET /ka HTTP/1.1\r\n\r\n", 20)) {
		rd->fd = o->fds[2];
		raw = harness_read_response(rd);
		free(raw);
	}
	free(rd);
	usleep(50 * 1000);
}

static void httpd_close_with_open_connections_releases_everything(void **state)
{
	struct fixture *fx = *state;
	struct open_conns o = { .port = fx->port };
	char c;
	int i;

	assert_int_equal(harness_run(&fx->h, client_leave_open, &o), 0);
	fx->closed = false;
	proxy_httpd_close(fx->srv, on_closed, fx);
	harness_until(&fx->h, &fx->closed);
	fx->srv = NULL;
	for (i = 0; i < 3; i++) {
		assert_true(o.fds[i] >= 0);
		assert_true(recv(o.fds[i], &c, 1, 0) <= 0); /* closed by the server */
		close(o.fds[i]);
	}
	/* teardown: uv_loop_close() == 0 */
}

static void httpd_keep_alive_with_curl(void **state)
{
	struct fixture *fx = *state;
	char cmd[256], *out;

	if (access("/usr/bin/curl", X_OK))
		skip();
	/* Two URLs in one curl run: the second reuses the connection (0 new connects). */
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/curl -sS --max-time 10 -w ' %%{http_code} %%{num_connects}|' "
		 "'http://127.0.0.1:%d/a?x=1' 'http://127.0.0.1:%d/b'",
		 fx->port, fx->port);
	out = harness_run_command(&fx->h, cmd, NULL);
	assert_non_null(out);
	assert_string_equal(out, "GET /a?x=1 200 1|GET /b? 200 0|");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(httpd_rejects_malformed_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(httpd_listens_on_every_address_form, setup,
						teardown),
		cmocka_unit_test_setup_teardown(httpd_port_in_use_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(httpd_get_has_status_headers_and_body, setup,
						teardown),
		cmocka_unit_test_setup_teardown(httpd_head_has_length_but_no_body, setup, teardown),
		cmocka_unit_test_setup_teardown(httpd_not_found_and_handler_failure, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			httpd_keeps_alive_and_answers_pipelined_requests_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(httpd_http10_closes_unless_asked, setup, teardown),
		cmocka_unit_test_setup_teardown(httpd_garbage_gets_400_and_the_server_lives_on,
						setup, teardown),
		cmocka_unit_test_setup_teardown(httpd_oversized_requests_are_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(httpd_deadline_closes_stalled_connections, setup,
						teardown),
		cmocka_unit_test_setup_teardown(httpd_slow_reader_does_not_block_the_loop, setup,
						teardown),
		cmocka_unit_test_setup_teardown(httpd_serves_many_parallel_connections, setup,
						teardown),
		cmocka_unit_test_setup_teardown(httpd_connection_limit_holds_clients_in_the_backlog,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			httpd_close_with_open_connections_releases_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(httpd_keep_alive_with_curl, setup, teardown),
	};

	return cmocka_run_group_tests_name("proxy_httpd", tests, NULL, NULL);
}
