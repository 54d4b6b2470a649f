/*
 * proxy/metricsd.c - the metrics server: upstream's metrics mux (/metrics,
 * /proxyMode, /healthz, /configz) plus /rules, the programmed rules of one
 * service or all of them (kubernetes #74677).
 */
#include "proxy/metricsd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "proxy/httpd.h"
#include "proxy/log.h"
#include "rules/buf.h"

struct proxy_metricsd {
	struct proxy_httpd *server;
	const struct proxy_metrics *metrics;
	proxy_rules_fn rules_fn;
	proxy_configz_fn configz_fn;
	void *arg;
	void (*done)(void *arg);
	void *done_arg;
};

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define NOSNIFF	   "X-Content-Type-Options: nosniff\r\n"

/* A text answer in Go's http.Error style (one line, newline-terminated). */
static int text_error(struct proxy_httpd_response *resp, int status, const char *what,
		      const char *detail)
{
	resp->content_type = TEXT_PLAIN;
	rules_buf_adds(&resp->headers, NOSNIFF);
	rules_buf_printf(&resp->body, "%s%s\n", what, detail);
	return status;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode a query component in place ('+' is a space, as Go's ParseQuery). */
static int unescape(char *s)
{
	char *o = s;
	int hi, lo;

	for (; *s; s++) {
		if (*s == '+') {
			*o++ = ' ';
		} else if (*s == '%') {
			hi = hexval(s[1]);
			lo = hi < 0 ? -1 : hexval(s[2]);
			if (lo < 0 || (hi == 0 && lo == 0))
				return -EINVAL;
			*o++ = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return 0;
}

struct rules_query {
	char *ns; /* NULL: every service */
	char *name;
	int family; /* 0, 4 or 6 */
};

/*
 * Parse "service=ns/name&family=ipv4|ipv6" (both optional) from @q, which is
 * modified. Returns 0, or -EINVAL with *@why set to what is wrong.
 */
static int parse_rules_query(char *q, struct rules_query *rq, const char **why)
{
	char *part, *save = NULL, *val, *slash;
	bool seen_service = false, seen_family = false;

	memset(rq, 0, sizeof(*rq));
	for (part = strtok_r(q, "&", &save); part; part = strtok_r(NULL, "&", &save)) {
		val = strchr(part, '=');
		if (!val) {
			*why = "a parameter without a value";
			return -EINVAL;
		}
		*val++ = '\0';
		if (unescape(part) || unescape(val)) {
			*why = "a malformed escape";
			return -EINVAL;
		}
		if (!strcmp(part, "service") && !seen_service) {
			seen_service = true;
			slash = strchr(val, '/');
			if (!slash || slash == val || !slash[1] || strchr(slash + 1, '/')) {
				*why = "service must be namespace/name";
				return -EINVAL;
			}
			*slash = '\0';
			rq->ns = val;
			rq->name = slash + 1;
		} else if (!strcmp(part, "family") && !seen_family) {
			seen_family = true;
			if (!strcmp(val, "ipv4")) {
				rq->family = 4;
			} else if (!strcmp(val, "ipv6")) {
				rq->family = 6;
			} else {
				*why = "family must be ipv4 or ipv6";
				return -EINVAL;
			}
		} else {
			*why = "an unknown or repeated parameter (service, family)";
			return -EINVAL;
		}
	}
	return 0;
}

static int serve_rules(struct proxy_metricsd *m, const char *query,
		       struct proxy_httpd_response *resp)
{
	struct rules_query rq;
	const char *why = NULL;
	char *q;
	int err;

	if (!m->rules_fn)
		return proxy_httpd_not_found(resp);
	q = strdup(query);
	if (!q)
		return text_error(resp, 500, "out of memory", "");
	if (parse_rules_query(q, &rq, &why)) {
		err = text_error(resp, 400, "invalid query: ", why);
		goto out;
	}
	resp->content_type = TEXT_PLAIN;
	rules_buf_adds(&resp->headers, NOSNIFF);
	err = m->rules_fn(m->arg, rq.ns, rq.name, rq.family, &resp->body);
	if (err == -ENOENT) {
		rules_buf_reset(&resp->body);
		rules_buf_printf(&resp->body, "service %s/%s not found\n", rq.ns, rq.name);
		err = 404;
	} else if (err) {
		PLOG_E("Failed to write the rules", "err=\"%s\"", strerror(-err));
		rules_buf_reset(&resp->body);
		rules_buf_adds(&resp->body, "failed to write the rules\n");
		err = 500;
	} else {
		err = 200;
	}
out:
	free(q);
	return err;
}

static int metricsd_handle(void *arg, const struct proxy_httpd_request *req,
			   struct proxy_httpd_response *resp)
{
	struct proxy_metricsd *m = arg;
	int err;

	if (!strcmp(req->path, "/metrics")) {
		resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
		/* An error shows in resp->body.err, which the server answers with 500. */
		return proxy_metrics_render(m->metrics, &resp->body) ? 500 : 200;
	}
	if (!strcmp(req->path, "/proxyMode")) {
		resp->content_type = TEXT_PLAIN;
		rules_buf_adds(&resp->headers, NOSNIFF);
		rules_buf_adds(&resp->body, "iptables");
		return 200;
	}
	if (!strcmp(req->path, "/healthz")) {
		resp->content_type = TEXT_PLAIN;
		rules_buf_adds(&resp->headers, NOSNIFF);
		rules_buf_adds(&resp->body, "ok");
		return 200;
	}
	if (!strcmp(req->path, "/configz") && m->configz_fn) {
		resp->content_type = "application/json";
		rules_buf_adds(&resp->headers, NOSNIFF);
		err = m->configz_fn(m->arg, &resp->body);
		if (err) {
			PLOG_E("Failed to write the configuration", "err=\"%s\"", strerror(-err));
			rules_buf_reset(&resp->body);
			return text_error(resp, 500, "failed to write the configuration", "");
		}
		return 200;
	}
	if (!strcmp(req->path, "/rules"))
		return serve_rules(m, req->query, resp);
	return proxy_httpd_not_found(resp);
}

int proxy_metricsd_new(struct uv_loop_s *loop, const char *bind_addr,
		       const struct proxy_metrics *metrics, proxy_rules_fn rules_fn,
		       proxy_configz_fn configz_fn, void *arg, struct proxy_metricsd **out)
{
	struct proxy_metricsd *m = calloc(1, sizeof(*m));
	int err;

	if (!m)
		return -ENOMEM;
	m->metrics = metrics;
	m->rules_fn = rules_fn;
	m->configz_fn = configz_fn;
	m->arg = arg;
	err = proxy_httpd_new(loop, bind_addr, NULL, metricsd_handle, m, &m->server);
	if (err) {
		PLOG_E("Failed to start the metrics server", "address=\"%s\" err=\"%s\"",
		       bind_addr ? bind_addr : "", uv_strerror(err));
		free(m);
		return err;
	}
	PLOG_I(3, "Starting metrics server", "address=\"%s\"", bind_addr);
	*out = m;
	return 0;
}

static void on_server_closed(void *arg)
{
	struct proxy_metricsd *m = arg;

	if (m->done)
		m->done(m->done_arg);
	free(m);
}

void proxy_metricsd_close(struct proxy_metricsd *m, void (*done)(void *arg), void *arg)
{
	m->done = done;
	m->done_arg = arg;
	proxy_httpd_close(m->server, on_server_closed, m);
}

int proxy_metricsd_port(const struct proxy_metricsd *m)
{
	return proxy_httpd_port(m->server);
}
