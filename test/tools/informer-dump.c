/*
 * test/tools/informer-dump.c - run the informer and print what it delivers.
 *
 * A test driver for test/informer/ (pytest against test/apiserver/): every
 * handler call becomes one JSON line on stdout, and commands on stdin drive
 * it. Not installed; built by `make build/<dir>/test/tools/informer-dump`.
 *
 *   informer-dump [--kubeconfig FILE] [--master URL] [--node NAME]
 *                 [--list-only] [--watch-list] [--page-limit N] [--selector S]
 *
 * stdout lines:
 *   {"op":"upsert","kind":"Service","key":"ns/name","rv":"12"}
 *   {"op":"delete","kind":"Service","key":"ns/name"}
 *   {"op":"synced","kind":"Service"}
 *   {"op":"log","level":1,"msg":"...","kv":"..."}
 *   {"op":"state","Service":{"ns/name":"rv",...},"EndpointSlice":{...},"Node":{...}}
 *   {"op":"exit","loop_close":0}
 * stdin commands (one a line):
 *   state
 *   event KIND NS|- NAME UID|- TYPE REASON MESSAGE...
 *   stop                (also on EOF, SIGTERM and SIGINT)
 * Exit status: 0 when everything closed and uv_loop_close() returned 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "informer/informer.h"
#include "informer/lines.h"

struct dump {
	uv_loop_t loop;
	uv_signal_t sigterm, sigint;
	uv_pipe_t in;
	bool in_open;
	struct informer_lines in_lines;
	struct informer *inf;
	bool stopping;
	json_t *cache; /* kind -> { key -> rv } */
};

static void emit(json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);

	if (s) {
		printf("%s\n", s);
		fflush(stdout);
		free(s);
	}
	json_decref(obj);
}

static const char *kind_str(enum informer_kind k)
{
	switch (k) {
	case INFORMER_KIND_SERVICE:
		return "Service";
	case INFORMER_KIND_ENDPOINTSLICE:
		return "EndpointSlice";
	case INFORMER_KIND_NODE:
		return "Node";
	default:
		return "Unknown";
	}
}

static void key_of(char *buf, size_t len, const char *ns, const char *name)
{
	if (ns)
		snprintf(buf, len, "%s/%s", ns, name);
	else
		snprintf(buf, len, "%s", name);
}

static void upsert(struct dump *d, enum informer_kind k, const struct informer_meta *m)
{
	const char *rv = m->resource_version ? m->resource_version : "";
	char key[600];

	key_of(key, sizeof(key), m->namespace, m->name);
	json_object_set_new(json_object_get(d->cache, kind_str(k)), key, json_string(rv));
	emit(json_pack("{s:s, s:s, s:s, s:s}", "op", "upsert", "kind", kind_str(k), "key", key,
		       "rv", rv));
}

static void delete (struct dump *d, enum informer_kind k, const char *ns, const char *name)
{
	char key[600];

	key_of(key, sizeof(key), ns, name);
	json_object_del(json_object_get(d->cache, kind_str(k)), key);
	emit(json_pack("{s:s, s:s, s:s}", "op", "delete", "kind", kind_str(k), "key", key));
}

static void on_service(void *arg, struct informer_service *svc)
{
	upsert(arg, INFORMER_KIND_SERVICE, &svc->meta);
	informer_service_free(svc);
}

static void on_service_delete(void *arg, const char *ns, const char *name)
{
	delete (arg, INFORMER_KIND_SERVICE, ns, name);
}

static void on_slice(void *arg, struct informer_endpointslice *eps)
{
	upsert(arg, INFORMER_KIND_ENDPOINTSLICE, &eps->meta);
	informer_endpointslice_free(eps);
}

static void on_slice_delete(void *arg, const char *ns, const char *name)
{
	delete (arg, INFORMER_KIND_ENDPOINTSLICE, ns, name);
}

static void on_node(void *arg, struct informer_node *node)
{
	upsert(arg, INFORMER_KIND_NODE, &node->meta);
	informer_node_free(node);
}

static void on_node_delete(void *arg, const char *name)
{
	delete (arg, INFORMER_KIND_NODE, NULL, name);
}

static void on_synced(void *arg, enum informer_kind kind)
{
	(void)arg;
	emit(json_pack("{s:s, s:s}", "op", "synced", "kind", kind_str(kind)));
}

static void on_log(void *arg, int level, const char *msg, const char *kv)
{
	(void)arg;
	emit(json_pack("{s:s, s:i, s:s, s:s}", "op", "log", "level", level, "msg", msg, "kv", kv));
}

static void on_closed(uv_handle_t *h)
{
	(void)h;
}

static void on_informer_stopped(void *arg)
{
	struct dump *d = arg;

	informer_free(d->inf);
	d->inf = NULL;
}

static void stop(struct dump *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	uv_close((uv_handle_t *)&d->sigterm, on_closed);
	uv_close((uv_handle_t *)&d->sigint, on_closed);
	if (d->in_open) {
		d->in_open = false;
		uv_close((uv_handle_t *)&d->in, on_closed);
	}
	informer_stop(d->inf, on_informer_stopped, d);
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)signum;
	stop(s->data);
}

/* event KIND NS|- NAME UID|- TYPE REASON MESSAGE... */
static void cmd_event(struct dump *d, char *args)
{
	char *f[6], *save = NULL, *msg;
	int i;

	for (i = 0; i < 6; i++) {
		f[i] = strtok_r(i ? NULL : args, " ", &save);
		if (!f[i])
			return;
	}
	msg = strtok_r(NULL, "", &save);
	informer_post_event(d->inf, f[0], strcmp(f[1], "-") ? f[1] : NULL, f[2],
			    strcmp(f[3], "-") ? f[3] : NULL, f[4], f[5], msg ? msg : "");
}

static int on_command(void *arg, const char *line, size_t len)
{
	struct dump *d = arg;
	char cmd[4096];

	if (d->stopping || len >= sizeof(cmd))
		return 0;
	memcpy(cmd, line, len);
	cmd[len] = '\0';
	if (!strcmp(cmd, "state")) {
		json_t *st = json_deep_copy(d->cache);

		json_object_set_new(st, "op", json_string("state"));
		emit(st);
	} else if (!strncmp(cmd, "event ", 6)) {
		cmd_event(d, cmd + 6);
	} else if (!strcmp(cmd, "stop")) {
		stop(d);
		return 1;
	} else {
		emit(json_pack("{s:s, s:s}", "op", "error", "msg", "unknown command"));
	}
	return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char mem[65536];

	(void)h;
	(void)suggested;
	buf->base = mem;
	buf->len = sizeof(mem);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct dump *d = s->data;

	if (n > 0) {
		if (informer_lines_feed(&d->in_lines, buf->base, (size_t)n, on_command, d) < 0)
			stop(d);
	} else if (n < 0) {
		stop(d);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "master", required_argument, NULL, 'm' },
		{ "node", required_argument, NULL, 'n' },
		{ "list-only", no_argument, NULL, 'l' },
		{ "watch-list", no_argument, NULL, 'w' },
		{ "page-limit", required_argument, NULL, 'p' },
		{ "selector", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct informer_config cfg = { 0 };
	struct informer_handlers h = { 0 };
	const char *kubeconfig = NULL, *master = NULL;
	struct informer_conn *conn;
	struct dump d = { 0 };
	char err[512];
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			kubeconfig = optarg;
			break;
		case 'm':
			master = optarg;
			break;
		case 'n':
			cfg.node_name = optarg;
			break;
		case 'l':
			cfg.list_only = true;
			break;
		case 'w':
			cfg.watch_list = true;
			break;
		case 'p':
			cfg.page_limit = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 's':
			cfg.label_selector = optarg;
			break;
		default:
			fprintf(stderr,
				"usage: %s [--kubeconfig F] [--master URL] [--node N] "
				"[--list-only] [--watch-list] [--page-limit N] [--selector S]\n",
				argv[0]);
			return 2;
		}
	}
	if (informer_conn_load(kubeconfig, master, &conn, err, sizeof(err))) {
		emit(json_pack("{s:s, s:s}", "op", "conn-error", "msg", err));
		return 1;
	}
	d.cache = json_pack("{s:{}, s:{}, s:{}}", "Service", "EndpointSlice", "Node");
	informer_lines_init(&d.in_lines, 0);
	h.arg = &d;
	h.service_upsert = on_service;
	h.service_delete = on_service_delete;
	h.slice_upsert = on_slice;
	h.slice_delete = on_slice_delete;
	h.node_upsert = on_node;
	h.node_delete = on_node_delete;
	h.synced = on_synced;
	h.log = on_log;

	if (uv_loop_init(&d.loop) || !d.cache) {
		informer_conn_free(conn);
		return 1;
	}
	rc = informer_new(&d.loop, conn, &cfg, &h, &d.inf);
	if (rc) {
		fprintf(stderr, "informer_new: %s\n", strerror(-rc));
		return 1;
	}
	uv_signal_init(&d.loop, &d.sigterm);
	uv_signal_init(&d.loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	if (!uv_pipe_init(&d.loop, &d.in, 0)) {
		d.in.data = &d;
		if (!uv_pipe_open(&d.in, 0) &&
		    !uv_read_start((uv_stream_t *)&d.in, on_alloc, on_read))
			d.in_open = true;
		else
			uv_close((uv_handle_t *)&d.in, on_closed);
	}
	rc = informer_start(d.inf);
	if (rc) {
		fprintf(stderr, "informer_start: %s\n", strerror(-rc));
		stop(&d);
	}
	uv_run(&d.loop, UV_RUN_DEFAULT);
	rc = uv_loop_close(&d.loop);
	emit(json_pack("{s:s, s:i}", "op", "exit", "loop_close", rc));
	informer_lines_cleanup(&d.in_lines);
	json_decref(d.cache);
	return rc ? 1 : 0;
}
