/*
 * test/test_informer_watch.c - the informer's list/watch machine on a real loop.
 *
 * A canned HTTP/1.1 server in this process (libuv TCP on 127.0.0.1) answers
 * LISTs with fixed lists and WATCHes with the recorded streams of
 * test/data/informer/streams/, sent in 7-byte chunks; the informer runs
 * against it on the same loop. Every test ends with uv_loop_close() == 0.
 * (test/informer/ covers the protocol in depth against test/apiserver/.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "informer/informer.h"

#define STREAMS_DIR "test/data/informer/streams"
#define MAX_REQ	    64

static const char svc_list[] =
	"{\"kind\":\"ServiceList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"48210\"},"
	"\"items\":[{\"metadata\":{\"name\":\"kubernetes\",\"namespace\":\"default\",\"uid\":\"u1\","
	"\"resourceVersion\":\"196\"},\"spec\":{\"ports\":[{\"name\":\"https\",\"protocol\":\"TCP\","
	"\"port\":443,\"targetPort\":6443}],\"clusterIP\":\"10.96.0.1\",\"clusterIPs\":[\"10.96.0.1\"],"
	"\"type\":\"ClusterIP\"}},{\"metadata\":{\"name\":\"cart\",\"namespace\":\"shop\",\"uid\":"
	"\"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c04\",\"resourceVersion\":\"47960\"},\"spec\":{\"ports\":"
	"[{\"name\":\"grpc\",\"protocol\":\"TCP\",\"port\":9090,\"targetPort\":9090}],\"clusterIP\":"
	"\"10.96.201.7\",\"clusterIPs\":[\"10.96.201.7\"],\"type\":\"NodePort\"}}]}";

static const char eps_list[] =
	"{\"kind\":\"EndpointSliceList\",\"apiVersion\":\"discovery.k8s.io/v1\","
	"\"metadata\":{\"resourceVersion\":\"48213\"},\"items\":[]}";

struct conn {
	uv_tcp_t tcp;
	struct fake *fake;
	char req[8192];
	size_t len;
	bool answered;
};

/* The canned API server and what the informer did. */
struct fake {
	uv_loop_t loop;
	uv_tcp_t server;
	int port;
	char *svc_stream; /* the body of the first services watch */
	char *eps_stream; /* the body of the first endpointslices watch; NULL: hold */
	int n_svc_watches, n_eps_watches, n_svc_lists, n_eps_lists;
	char paths[MAX_REQ][1024];
	int n_paths;
	struct informer *inf;
	bool stopped;
	int stop_on_delete; /* call informer_stop() from the delete handler */
	int upserts, deletes, synced, after_stop_calls, logs_failed;
	char events[4096];
	uv_timer_t timer;
};

static char *read_file(const char *name)
{
	char path[256];
	long n;
	char *buf;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", STREAMS_DIR, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s (run the tests from the repository root)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* ---- the canned server --------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_written(uv_write_t *wr, int status)
{
	(void)status;
	free(wr->data);
	free(wr);
}

static void send_text(struct conn *c, const char *data, size_t len)
{
	uv_write_t *wr = calloc(1, sizeof(*wr));
	char *copy = malloc(len);
	uv_buf_t buf;

	assert_non_null(wr);
	assert_non_null(copy);
	memcpy(copy, data, len);
	wr->data = copy;
	buf = uv_buf_init(copy, (unsigned int)len);
	assert_int_equal(uv_write(wr, (uv_stream_t *)&c->tcp, &buf, 1, on_written), 0);
}

static void send_body(struct conn *c, const char *body)
{
	char head[256];

	snprintf(head, sizeof(head),
		 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n",
		 strlen(body));
	send_text(c, head, strlen(head));
	send_text(c, body, strlen(body));
}

/* A watch stream in 7-byte HTTP chunks (unrelated to event boundaries), then the end. */
static void send_stream(struct conn *c, const char *body)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				   "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
	size_t off, len = strlen(body);
	char chunk[64];

	send_text(c, head, sizeof(head) - 1);
	for (off = 0; off < len; off += 7) {
		size_t n = len - off < 7 ? len - off : 7;

		snprintf(chunk, sizeof(chunk), "%zx\r\n%.*s\r\n", n, (int)n, body + off);
		send_text(c, chunk, strlen(chunk));
	}
	send_text(c, "0\r\n\r\n", 5);
}

static void answer(struct conn *c)
{
	struct fake *f = c->fake;
	char *sp = strchr(c->req + 4, ' ');
	bool watch, svc;

	*sp = '\0';
	if (f->n_paths < MAX_REQ)
		snprintf(f->paths[f->n_paths++], sizeof(f->paths[0]), "%s", c->req + 4);
	watch = strstr(c->req, "watch=1") != NULL;
	svc = !strncmp(c->req + 4, "/api/v1/services", 16);
	c->answered = true;
	if (!watch) {
		if (svc)
			f->n_svc_lists++;
		else
			f->n_eps_lists++;
		send_body(c, svc ? svc_list : eps_list);
		return;
	}
	if (svc && f->n_svc_watches++ == 0 && f->svc_stream)
		send_stream(c, f->svc_stream);
	else if (!svc && f->n_eps_watches++ == 0 && f->eps_stream)
		send_stream(c, f->eps_stream);
	/* otherwise hold the watch open: it ends when the informer stops */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	buf->base = c->req + c->len;
	buf->len = sizeof(c->req) - 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	if (n < 0 || (size_t)n + c->len >= sizeof(c->req) - 1) {
		uv_close((uv_handle_t *)s, on_conn_closed);
		return;
	}
	c->len += (size_t)n;
	c->req[c->len] = '\0';
	if (!c->answered && strstr(c->req, "\r\n\r\n"))
		answer(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct fake *f = server->data;
	struct conn *c = calloc(1, sizeof(*c));

	assert_int_equal(status, 0);
	assert_non_null(c);
	c->fake = f;
	c->tcp.data = c;
	assert_int_equal(uv_tcp_init(&f->loop, &c->tcp), 0);
	assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
	assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read), 0);
}

static void fake_listen(struct fake *f)
{
	struct sockaddr_in addr;
	struct sockaddr_storage name;
	int len = sizeof(name);

	assert_int_equal(uv_tcp_init(&f->loop, &f->server), 0);
	f->server.data = f;
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
	assert_int_equal(uv_tcp_bind(&f->server, (const struct sockaddr *)&addr, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&f->server, 16, on_connection), 0);
	assert_int_equal(uv_tcp_getsockname(&f->server, (struct sockaddr *)&name, &len), 0);
	f->port = ntohs(((struct sockaddr_in *)&name)->sin_port);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, h->type == UV_TCP && h->data && h->data != arg ? on_conn_closed : NULL);
}

/* ---- the informer's handlers --------------------------------------------------- */

/* Append "<prefix><a>/<b><suffix>" (or "<prefix><a><suffix>" when @b is NULL) to the event text. */
static void note(struct fake *f, const char *prefix, const char *a, const char *b,
		 const char *suffix)
{
	size_t n = strlen(f->events);

	snprintf(f->events + n, sizeof(f->events) - n, "%s%s%s%s%s", prefix, a ? a : "",
		 b ? "/" : "", b ? b : "", suffix);
}

static void on_stopped(void *arg)
{
	struct fake *f = arg;

	/* the informer is closed: now the server's connections and the listener */
	uv_walk(&f->loop, close_walk, f);
}

static void stop(struct fake *f)
{
	if (f->stopped)
		return;
	f->stopped = true;
	informer_stop(f->inf, on_stopped, f);
}

static void on_service(void *arg, struct informer_service *svc)
{
	struct fake *f = arg;

	f->after_stop_calls += f->stopped;
	f->upserts++;
	note(f, "+", svc->meta.namespace, svc->meta.name, "@");
	note(f, "", svc->meta.resource_version, NULL, " ");
	informer_service_free(svc);
}

static void on_service_delete(void *arg, const char *ns, const char *name)
{
	struct fake *f = arg;

	f->after_stop_calls += f->stopped;
	f->deletes++;
	note(f, "-", ns, name, " ");
	if (f->stop_on_delete)
		stop(f);
}

static void on_slice(void *arg, struct informer_endpointslice *eps)
{
	struct fake *f = arg;

	f->after_stop_calls += f->stopped;
	note(f, "+eps:", eps->meta.namespace, eps->meta.name, " ");
	informer_endpointslice_free(eps);
}

static void on_synced(void *arg, enum informer_kind kind)
{
	struct fake *f = arg;

	(void)kind;
	f->after_stop_calls += f->stopped;
	f->synced++;
}

static void on_log(void *arg, int level, const char *msg, const char *kv)
{
	struct fake *f = arg;

	(void)level;
	(void)kv;
	f->after_stop_calls += f->stopped;
	if (strstr(msg, "List failed"))
		f->logs_failed++;
}

static void on_timer(uv_timer_t *t)
{
	struct fake *f = t->data;

	uv_close((uv_handle_t *)t, NULL);
	stop(f);
}

/* Run the informer against @f (or @master) until it stops; @stop_ms > 0 stops it then. */
static void run(struct fake *f, const char *master, uint64_t stop_ms, bool start)
{
	struct informer_handlers h = { .arg = f,
				       .service_upsert = on_service,
				       .service_delete = on_service_delete,
				       .slice_upsert = on_slice,
				       .synced = on_synced,
				       .log = on_log };
	struct informer_config cfg = { 0 };
	struct informer_conn *conn;
	char url[64], err[256];

	if (!master) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->port);
		master = url;
	}
	assert_int_equal(informer_conn_load(NULL, master, &conn, err, sizeof(err)), 0);
	assert_string_equal(informer_conn_server(conn), master);
	assert_int_equal(informer_new(&f->loop, conn, &cfg, &h, &f->inf), 0);
	if (start)
		assert_int_equal(informer_start(f->inf), 0);
	if (stop_ms) {
		assert_int_equal(uv_timer_init(&f->loop, &f->timer), 0);
		f->timer.data = f;
		assert_int_equal(uv_timer_start(&f->timer, on_timer, stop_ms, 0), 0);
	} else if (!start) {
		stop(f);
	}
	uv_run(&f->loop, UV_RUN_DEFAULT);
	informer_free(f->inf);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	assert_int_equal(f->after_stop_calls, 0);
}

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	return f;
}

static void fake_free(struct fake *f)
{
	free(f->svc_stream);
	free(f->eps_stream);
	free(f);
}

/* ---- tests ------------------------------------------------------------------------- */

static void watch_list_then_stream_then_rewatch_from_last_rv(void **state)
{
	struct fake *f = fake_new();
	int i, second = -1;

	(void)state;
	f->svc_stream = read_file("watch-services.ndjson");
	fake_listen(f);
	run(f, NULL, 1500, true);
	/* list items, then the stream: ADDED, MODIFIED, (BOOKMARK), DELETED, (BOOKMARK) */
	assert_string_equal(f->events, "+default/kubernetes@196 +shop/cart@47960 "
				       "+shop/search@48215 +shop/search@48230 -shop/cart ");
	assert_int_equal(f->synced, 2);
	assert_int_equal(f->n_svc_lists, 1);
	/* the clean end of the stream: watch again from the last bookmark, no relist */
	assert_int_equal(f->n_svc_watches, 2);
	for (i = 0; i < f->n_paths; i++)
		if (strstr(f->paths[i], "/api/v1/services?") && strstr(f->paths[i], "watch=1")) {
			if (strstr(f->paths[i], "resourceVersion=48377"))
				second = i;
			else
				assert_non_null(strstr(f->paths[i], "resourceVersion=48210"));
		}
	assert_true(second >= 0);
	assert_non_null(strstr(f->paths[second], "allowWatchBookmarks=true"));
	assert_non_null(strstr(f->paths[second], "timeoutSeconds="));
	fake_free(f);
}

static void watch_expired_relists(void **state)
{
	struct fake *f = fake_new();

	(void)state;
	f->eps_stream = read_file("watch-endpointslices-expired.ndjson");
	fake_listen(f);
	run(f, NULL, 1500, true);
	assert_int_equal(f->n_eps_lists, 2);
	assert_int_equal(f->n_svc_lists, 1);
	assert_int_equal(f->synced, 2); /* once per kind, not again after the relist */
	fake_free(f);
}

static void watch_stop_from_a_handler(void **state)
{
	struct fake *f = fake_new();

	(void)state;
	f->svc_stream = read_file("watch-services.ndjson");
	f->stop_on_delete = 1;
	fake_listen(f);
	run(f, NULL, 0, true);
	assert_int_equal(f->deletes, 1);
	fake_free(f);
}

static void watch_connection_refused_backs_off(void **state)
{
	struct fake *f = fake_new();

	(void)state;
	/* port 1 on loopback: nothing listens */
	run(f, "http://127.0.0.1:1", 1200, true);
	/* each list failed and was retried after a backoff (0.8 to 1.6 s), not in a loop */
	assert_true(f->logs_failed >= 2 && f->logs_failed <= 4);
	assert_int_equal(f->synced, 0);
	fake_free(f);
}

static void watch_stop_without_start(void **state)
{
	struct fake *f = fake_new();

	(void)state;
	run(f, "http://127.0.0.1:1", 0, false);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(watch_list_then_stream_then_rewatch_from_last_rv),
		cmocka_unit_test(watch_expired_relists),
		cmocka_unit_test(watch_stop_from_a_handler),
		cmocka_unit_test(watch_connection_refused_backs_off),
		cmocka_unit_test(watch_stop_without_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
