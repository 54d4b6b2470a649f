/*
 * test/test_proxy_health.c - /healthz, /livez and the service health checks,
 * over real HTTP, with a test clock; bodies compared byte for byte with
 * upstream's (pkg/proxy/healthcheck).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy/health.h"
#include "test/proxy/harness.h"

#define N_ARRAY(a) (sizeof(a) / sizeof((a)[0]))
#define TIMEOUT_MS 1000

/* 2023-11-14T22:13:20.123456789Z and later instants */
#define T0 INT64_C(1700000000123456789)
#define T1 INT64_C(1700000001500000000)
#define T2 INT64_C(1700000002000000000)
#define S0 "\"2023-11-14T22:13:20.123456789Z\""
#define S1 "\"2023-11-14T22:13:21.5Z\""
#define S2 "\"2023-11-14T22:13:22Z\""

struct event {
	char ns[64], name[64], reason[64], message[256];
};

struct fixture {
	struct harness h;
	struct proxy_metrics m;
	struct proxy_health *health;
	int port;
	bool closed;
	uint64_t mono;
	int64_t wall;
	unsigned int n_events;
	struct event last;
};

static uint64_t test_mono(void *arg)
{
	return ((struct fixture *)arg)->mono;
}

static int64_t test_wall(void *arg)
{
	return ((struct fixture *)arg)->wall;
}

static void on_event(void *arg, const char *ns, const char *name, const char *reason,
		     const char *message)
{
	struct fixture *fx = arg;

	fx->n_events++;
	snprintf(fx->last.ns, sizeof(fx->last.ns), "%s", ns);
	snprintf(fx->last.name, sizeof(fx->last.name), "%s", name);
	snprintf(fx->last.reason, sizeof(fx->last.reason), "%s", reason);
	snprintf(fx->last.message, sizeof(fx->last.message), "%s", message);
}

static void on_closed(void *arg)
{
	((struct fixture *)arg)->closed = true;
}

static int create(struct fixture *fx, const char *bind, const char *const *np, size_t n_np)
{
	struct proxy_health_clock clock = { test_mono, test_wall, fx };
	int err;

	err = proxy_health_new(&fx->h.loop, bind, TIMEOUT_MS, &fx->m, np, n_np, on_event, fx,
			       &fx->health);
	if (err)
		return err;
	proxy_health_set_clock(fx->health, &clock);
	fx->port = proxy_health_port(fx->health);
	return 0;
}

static int setup(void **state)
{
	static const char *const loopback[] = { "127.0.0.1" };
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx || harness_init(&fx->h))
		return -1;
	proxy_metrics_init(&fx->m);
	fx->wall = T0;
	fx->mono = 5000;
	if (create(fx, "127.0.0.1:0", loopback, 1))
		return -1;
	*state = fx;
	return 0;
}

static void shut(struct fixture *fx)
{
	fx->closed = false;
	proxy_health_close(fx->health, on_closed, fx);
	harness_until(&fx->h, &fx->closed);
	fx->health = NULL;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx->health)
		shut(fx);
	assert_int_equal(harness_finish(&fx->h), 0); /* every handle was closed */
	free(fx);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	/* Go prints local time; pin it so the expected bodies are fixed. */
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

struct got {
	char *raw;
	struct harness_resp r;
};

static void get_port(struct fixture *fx, int port, const char *path, struct got *g)
{
	char req[256];
	size_t len;

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n",
		 path);
	g->raw = harness_fetch(&fx->h, port, req, &len);
	assert_non_null(g->raw);
	assert_int_equal(harness_parse(g->raw, len, &g->r), 0);
}

static void assert_header(const struct harness_resp *r, const char *name, const char *want)
{
	char v[256];

	assert_non_null(harness_header(r, name, v, sizeof(v)));
	assert_string_equal(v, want);
}

/* GET @path on the proxy health server: status, headers and exact body. */
static void expect(struct fixture *fx, const char *path, int status, const char *body)
{
	struct got g;

	get_port(fx, fx->port, path, &g);
	if (g.r.status != status || g.r.body_len != strlen(body) ||
	    memcmp(g.r.body, body, g.r.body_len))
		fail_msg("%s: got %d %.*s\nwant %d %s", path, g.r.status, (int)g.r.body_len,
			 g.r.body, status, body);
	assert_header(&g.r, "Content-Type", "application/json");
	assert_header(&g.r, "X-Content-Type-Options", "nosniff");
	free(g.raw);
}

/* ---- /healthz and /livez ------------------------------------------------ */

static void health_bodies_follow_upstream_json(void **state)
{
	struct fixture *fx = *state;

	/* No Node yet: /healthz refuses it, /livez does not care; no status map yet. */
	expect(fx, "/healthz", 503,
	       "{\"lastUpdated\":\"0001-01-01T00:00:00Z\",\"currentTime\":" S0
	       ",\"nodeEligible\":false,\"healthy\":true}");
	expect(fx, "/livez", 200,
	       "{\"lastUpdated\":" S0 ",\"currentTime\":" S0 ",\"healthy\":true}");

	proxy_health_set_node(fx->health, true, false, false);
	proxy_health_updated(fx->health, PROXY_FAM_V4); /* at T0 */
	fx->wall = T1;
	expect(fx, "/healthz", 200,
	       "{\"lastUpdated\":" S1 ",\"currentTime\":" S1 ",\"nodeEligible\":true,"
	       "\"healthy\":true,\"status\":{\"IPv4\":{\"lastUpdated\":" S0 ",\"healthy\":true}}}");

	proxy_health_updated(fx->health, PROXY_FAM_V6); /* at T1 */
	fx->wall = T2;
	expect(fx, "/livez", 200,
	       "{\"lastUpdated\":" S2 ",\"currentTime\":" S2 ",\"healthy\":true,\"status\":{"
	       "\"IPv4\":{\"lastUpdated\":" S0 ",\"healthy\":true},"
	       "\"IPv6\":{\"lastUpdated\":" S1 ",\"healthy\":true}}}");

	assert_int_equal(fx->m.healthz_total[PROXY_CODE_200], 1);
	assert_int_equal(fx->m.healthz_total[PROXY_CODE_503], 1);
	assert_int_equal(fx->m.livez_total[PROXY_CODE_200], 2);
	assert_int_equal(fx->m.livez_total[PROXY_CODE_503], 0);
}

static void health_turns_503_when_an_update_is_late_and_200_when_applied(void **state)
{
	struct fixture *fx = *state;

	proxy_health_set_node(fx->health, true, false, false);
	proxy_health_updated(fx->health, PROXY_FAM_V4); /* at T0 */
	fx->wall = T1;
	proxy_health_updated(fx->health, PROXY_FAM_V6); /* at T1 */

	proxy_health_queued_update(fx->health, PROXY_FAM_V4); /* mono 5000 */
	fx->mono = 5000 + TIMEOUT_MS - 1;
	assert_true(proxy_health_healthy(fx->health));
	fx->mono = 5000 + TIMEOUT_MS / 2;
	proxy_health_queued_update(fx->health, PROXY_FAM_V4); /* keeps the oldest */
	fx->mono = 5000 + TIMEOUT_MS;
	fx->wall = T2;
	assert_false(proxy_health_healthy(fx->health));

	/* 503 keeps the real lastUpdated (the newest family's). */
	expect(fx, "/healthz", 503,
	       "{\"lastUpdated\":" S1 ",\"currentTime\":" S2 ",\"nodeEligible\":true,"
	       "\"healthy\":false,\"status\":{\"IPv4\":{\"lastUpdated\":" S0 ",\"healthy\":false},"
	       "\"IPv6\":{\"lastUpdated\":" S1 ",\"healthy\":true}}}");
	expect(fx, "/livez", 503,
	       "{\"lastUpdated\":" S1 ",\"currentTime\":" S2 ",\"healthy\":false,\"status\":{"
	       "\"IPv4\":{\"lastUpdated\":" S0 ",\"healthy\":false},"
	       "\"IPv6\":{\"lastUpdated\":" S1 ",\"healthy\":true}}}");

	proxy_health_updated(fx->health, PROXY_FAM_V4); /* at T2 */
	expect(fx, "/healthz", 200,
	       "{\"lastUpdated\":" S2 ",\"currentTime\":" S2 ",\"nodeEligible\":true,"
	       "\"healthy\":true,\"status\":{\"IPv4\":{\"lastUpdated\":" S2 ",\"healthy\":true},"
	       "\"IPv6\":{\"lastUpdated\":" S1 ",\"healthy\":true}}}");
	assert_int_equal(fx->m.healthz_total[PROXY_CODE_503], 1);
	assert_int_equal(fx->m.livez_total[PROXY_CODE_503], 1);
}

static void health_ignores_queued_updates_of_a_family_never_synced(void **state)
{
	struct fixture *fx = *state;

	/* As upstream: only families with an Updated() can be late. */
	proxy_health_queued_update(fx->health, PROXY_FAM_V6);
	fx->mono += 100 * TIMEOUT_MS;
	assert_true(proxy_health_healthy(fx->health));
	expect(fx, "/livez", 200,
	       "{\"lastUpdated\":" S0 ",\"currentTime\":" S0 ",\"healthy\":true}");
}

static void health_node_not_eligible_fails_healthz_only(void **state)
{
	static const struct {
		bool exists, deleting, to_be_deleted;
		int healthz;
	} cases[] = {
		{ false, false, false, 503 }, /* missing */
		{ true, true, false, 503 },   /* deletionTimestamp */
		{ true, false, true, 503 },   /* ToBeDeletedByClusterAutoscaler */
		{ true, false, false, 200 },
	};
	struct fixture *fx = *state;
	char want[256];
	size_t i;

	proxy_health_updated(fx->health, PROXY_FAM_V4);
	for (i = 0; i < N_ARRAY(cases); i++) {
		proxy_health_set_node(fx->health, cases[i].exists, cases[i].deleting,
				      cases[i].to_be_deleted);
		snprintf(want, sizeof(want),
			 "{\"lastUpdated\":" S0 ",\"currentTime\":" S0 ",\"nodeEligible\":%s,"
			 "\"healthy\":true,\"status\":{\"IPv4\":{\"lastUpdated\":" S0
			 ",\"healthy\":true}}}",
			 cases[i].healthz == 200 ? "true" : "false");
		expect(fx, "/healthz", cases[i].healthz, want);
		expect(fx, "/livez", 200,
		       "{\"lastUpdated\":" S0 ",\"currentTime\":" S0
		       ",\"healthy\":true,\"status\":{"
		       "\"IPv4\":{\"lastUpdated\":" S0 ",\"healthy\":true}}}");
	}
}

static void health_timestamps_carry_the_local_offset(void **state)
{
	static const struct {
		const char *tz;
		const char *want;
	} cases[] = {
		{ "IST-5:30", "{\"lastUpdated\":\"2023-11-15T03:43:20.123456789+05:30\"," },
		{ "EST5", "{\"lastUpdated\":\"2023-11-14T17:13:20.123456789-05:00\"," },
	};
	struct fixture *fx = *state;
	struct got g;
	size_t i;

	for (i = 0; i < N_ARRAY(cases); i++) {
		setenv("TZ", cases[i].tz, 1);
		tzset();
		get_port(fx, fx->port, "/livez", &g);
		assert_int_equal(g.r.status, 200);
		assert_memory_equal(g.r.body, cases[i].want, strlen(cases[i].want));
		free(g.raw);
	}
	setenv("TZ", "UTC", 1);
	tzset();
}

static void health_other_paths_are_404(void **state)
{
	struct fixture *fx = *state;
	struct got g;

	get_port(fx, fx->port, "/healthz/", &g);
	assert_int_equal(g.r.status, 404);
	assert_memory_equal(g.r.body, "404 page not found\n", g.r.body_len);
	free(g.raw);
	assert_int_equal(fx->m.healthz_total[PROXY_CODE_200] + fx->m.healthz_total[PROXY_CODE_503],
			 0);
}

static void health_answer_read_by_curl(void **state)
{
	static const char body[] =
		"{\"lastUpdated\":" S0 ",\"currentTime\":" S0 ",\"nodeEligible\":true,"
		"\"healthy\":true,\"status\":{\"IPv4\":{\"lastUpdated\":" S0 ",\"healthy\":true}}}";
	struct fixture *fx = *state;
	char cmd[256], want[64], *out;
	struct harness_resp r;
	size_t len;

	if (access("/usr/bin/curl", X_OK))
		skip();
	proxy_health_set_node(fx->health, true, false, false);
	proxy_health_updated(fx->health, PROXY_FAM_V4);
	snprintf(cmd, sizeof(cmd), "/usr/bin/curl -sS -i --max-time 10 http://127.0.0.1:%d/healthz",
		 fx->port);
	out = harness_run_command(&fx->h, cmd, &len);
	assert_non_null(out);
	assert_int_equal(harness_parse(out, len, &r), 0);
	assert_memory_equal(out, "HTTP/1.1 200 OK\r\n", 17);
	assert_header(&r, "Content-Type", "application/json");
	assert_header(&r, "X-Content-Type-Options", "nosniff");
	snprintf(want, sizeof(want), "%zu", strlen(body));
	assert_header(&r, "Content-Length", want);
	assert_int_equal(r.body_len, strlen(body));
	assert_memory_equal(r.body, body, r.body_len);
	free(out);
}

/* ---- service health checks ---------------------------------------------- */

static void hc_body(char *out, size_t size, const char *ns, const char *name, unsigned int n,
		    bool healthy)
{
	snprintf(out, size,
		 "{\n\t\"service\": {\n\t\t\"namespace\": \"%s\",\n\t\t\"name\": \"%s\"\n\t},\n"
		 "\t\"localEndpoints\": %u,\n\t\"serviceProxyHealthy\": %s\n}",
		 ns, name, n, healthy ? "true" : "false");
}

/* GET on a health-check port: status, weight header and exact body. */
static void expect_hc(struct fixture *fx, int port, const char *path, int status, const char *ns,
		      const char *name, unsigned int n, bool healthy)
{
	char body[512], weight[16];
	struct got g;

	hc_body(body, sizeof(body), ns, name, n, healthy);
	get_port(fx, port, path, &g);
	if (g.r.status != status || g.r.body_len != strlen(body) ||
	    memcmp(g.r.body, body, g.r.body_len))
		fail_msg("port %d: got %d %.*s\nwant %d %s", port, g.r.status, (int)g.r.body_len,
			 g.r.body, status, body);
	snprintf(weight, sizeof(weight), "%u", n);
	assert_header(&g.r, "Content-Type", "application/json");
	assert_header(&g.r, "X-Content-Type-Options", "nosniff");
	assert_header(&g.r, "X-Load-Balancing-Endpoint-Weight", weight);
	free(g.raw);
}

struct refused {
	int port;
	bool refused;
};

static void client_connect(void *arg)
{
	struct refused *r = arg;
	int fd = harness_connect(r->port);

	r->refused = fd < 0;
	if (fd >= 0)
		close(fd);
}

static bool port_closed(struct fixture *fx, int port)
{
	struct refused r = { .port = port };

	assert_int_equal(harness_run(&fx->h, client_connect, &r), 0);
	return r.refused;
}

static void hc_answers_by_local_endpoints_and_proxy_health(void **state)
{
	struct fixture *fx = *state;
	int port = harness_free_port();
	struct proxy_hc_service svc = { "default", "web", (uint16_t)port, 2 };

	assert_true(port > 0);
	assert_int_equal(proxy_health_sync_services(fx->health, &svc, 1), 0);
	expect_hc(fx, port, "/", 200, "default", "web", 2, true);
	expect_hc(fx, port, "/any/path?x=1", 200, "default", "web", 2, true);

	svc.local_ready = 0;
	assert_int_equal(proxy_health_sync_services(fx->health, &svc, 1), 0);
	expect_hc(fx, port, "/", 503, "default", "web", 0, true);

	/* Local endpoints, but the proxy itself is late. */
	svc.local_ready = 3;
	assert_int_equal(proxy_health_sync_services(fx->health, &svc, 1), 0);
	proxy_health_updated(fx->health, PROXY_FAM_V4);
	proxy_health_queued_update(fx->health, PROXY_FAM_V4);
	fx->mono += TIMEOUT_MS;
	expect_hc(fx, port, "/healthz", 503, "default", "web", 3, false);
	proxy_health_updated(fx->health, PROXY_FAM_V4);
	expect_hc(fx, port, "/healthz", 200, "default", "web", 3, true);

	/* Gone: the port is closed. */
	assert_int_equal(proxy_health_sync_services(fx->health, NULL, 0), 0);
	assert_true(port_closed(fx, port));
	assert_int_equal(fx->n_events, 0);
}

static void hc_follows_service_and_port_changes(void **state)
{
	struct fixture *fx = *state;
	int p1 = harness_free_port(), p2, p3;
	struct proxy_hc_service svcs[3];

	/* One service per family (dual-stack): one listener, the larger count. */
	svcs[0] = (struct proxy_hc_service){ "ns-b", "lb", (uint16_t)p1, 1 };
	svcs[1] = (struct proxy_hc_service){ "ns-b", "lb", (uint16_t)p1, 4 };
	assert_int_equal(proxy_health_sync_services(fx->health, svcs, 2), 0);
	expect_hc(fx, p1, "/", 200, "ns-b", "lb", 4, true);

	/* A new port for the same service, and a second service. */
	p2 = harness_free_port();
	p3 = harness_free_port();
	assert_true(p2 != p1 && p3 != p1 && p3 != p2);
	svcs[0] = (struct proxy_hc_service){ "ns-b", "lb", (uint16_t)p2, 1 };
	svcs[1] = (struct proxy_hc_service){ "ns-a", "other", (uint16_t)p3, 5 };
	assert_int_equal(proxy_health_sync_services(fx->health, svcs, 2), 0);
	assert_true(port_closed(fx, p1));
	expect_hc(fx, p2, "/", 200, "ns-b", "lb", 1, true);
	expect_hc(fx, p3, "/", 200, "ns-a", "other", 5, true);

	/* Without a healthCheckNodePort a service has no listener. */
	svcs[0].hc_node_port = 0;
	assert_int_equal(proxy_health_sync_services(fx->health, svcs, 2), 0);
	assert_true(port_closed(fx, p2));
	expect_hc(fx, p3, "/", 200, "ns-a", "other", 5, true);
}

static void hc_port_in_use_is_reported_once_and_retried(void **state)
{
	struct fixture *fx = *state;
	int port = harness_free_port(), blocker = harness_occupy(port);
	struct proxy_hc_service svc = { "default", "busy", (uint16_t)port, 1 };
	char want[128];

	assert_true(blocker >= 0);
	assert_int_equal(proxy_health_sync_services(fx->health, &svc, 1), 0);
	assert_int_equal(fx->n_events, 1);
	assert_string_equal(fx->last.ns, "default");
	assert_string_equal(fx->last.name, "busy");
	assert_string_equal(fx->last.reason, "FailedToStartServiceHealthcheck");
	snprintf(
		want, sizeof(want),
		"failed to start healthcheck \"default/busy\" on port %d: listen tcp 127.0.0.1:%d: "
		"address already in use",
		port, port);
	assert_string_equal(fx->last.message, want);

	/* Still taken at the next sync: tried again, not reported again. */
	assert_int_equal(proxy_health_sync_services(fx->health, &svc, 1), 0);
	assert_int_equal(fx->n_events, 1);

	/* Freed: the next sync opens it. */
	close(blocker);
	assert_int_equal(proxy_health_sync_services(fx->health, &svc, 1), 0);
	expect_hc(fx, port, "/", 200, "default", "busy", 1, true);
	assert_int_equal(fx->n_events, 1);
}

static void hc_listens_on_all_addresses_by_default(void **state)
{
	struct fixture *fx = *state;
	int port = harness_free_port();
	struct proxy_hc_service svc = { "default", "all", (uint16_t)port, 1 };

	/* A health state without nodeport addresses (and without its own server). */
	shut(fx);
	assert_int_equal(create(fx, NULL, NULL, 0), 0);
	assert_int_equal(fx->port, -1);
	assert_int_equal(proxy_health_sync_services(fx->health, &svc, 1), 0);
	expect_hc(fx, port, "/", 200, "default", "all", 1, true);
}

static void health_bind_failure_is_returned_and_leaves_nothing(void **state)
{
	struct fixture *fx = *state;
	struct proxy_health *h = NULL;
	char addr[32];

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", fx->port);
	assert_int_equal(
		proxy_health_new(&fx->h.loop, addr, TIMEOUT_MS, NULL, NULL, 0, NULL, NULL, &h),
		-EADDRINUSE);
	assert_null(h);
	/* teardown: uv_loop_close() == 0 */
}

static void health_listen_retries_the_server_of_a_state_without_one(void **state)
{
	struct fixture *fx = *state;
	int port = harness_free_port(), blocker = harness_occupy(port);
	struct proxy_hc_service svc = { "default", "all", (uint16_t)harness_free_port(), 1 };
	struct got g;
	char addr[32];

	/* what the daemon does when --healthz-bind-address cannot be bound yet */
	assert_true(blocker >= 0);
	shut(fx);
	assert_int_equal(create(fx, NULL, NULL, 0), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	assert_int_equal(proxy_health_listen(fx->health, addr), -EADDRINUSE);
	assert_int_equal(proxy_health_port(fx->health), -1);
	/* meanwhile the service health checks work */
	assert_int_equal(proxy_health_sync_services(fx->health, &svc, 1), 0);
	expect_hc(fx, svc.hc_node_port, "/", 200, "default", "all", 1, true);
	close(blocker);
	assert_int_equal(proxy_health_listen(fx->health, addr), 0);
	assert_int_equal(proxy_health_port(fx->health), port);
	get_port(fx, port, "/livez", &g);
	assert_int_equal(g.r.status, 200);
	free(g.raw);
	/* once it runs, a no-op */
	assert_int_equal(proxy_health_listen(fx->health, "127.0.0.1:0"), 0);
	assert_int_equal(proxy_health_port(fx->health), port);
}

static void health_close_with_everything_open(void **state)
{
	struct fixture *fx = *state;
	struct proxy_hc_service svcs[2] = {
		{ "a", "one", (uint16_t)harness_free_port(), 1 },
		{ "b", "two", (uint16_t)harness_free_port(), 0 },
	};

	assert_int_equal(proxy_health_sync_services(fx->health, svcs, 2), 0);
	expect_hc(fx, svcs[1].hc_node_port, "/", 503, "b", "two", 0, true);
	shut(fx);
	assert_true(port_closed(fx, svcs[0].hc_node_port));
	assert_true(port_closed(fx, fx->port));
	/* teardown: uv_loop_close() == 0 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(health_bodies_follow_upstream_json, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			health_turns_503_when_an_update_is_late_and_200_when_applied, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			health_ignores_queued_updates_of_a_family_never_synced, setup, teardown),
		cmocka_unit_test_setup_teardown(health_node_not_eligible_fails_healthz_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(health_timestamps_carry_the_local_offset, setup,
						teardown),
		cmocka_unit_test_setup_teardown(health_other_paths_are_404, setup, teardown),
		cmocka_unit_test_setup_teardown(health_answer_read_by_curl, setup, teardown),
		cmocka_unit_test_setup_teardown(hc_answers_by_local_endpoints_and_proxy_health,
						setup, teardown),
		cmocka_unit_test_setup_teardown(hc_follows_service_and_port_changes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(hc_port_in_use_is_reported_once_and_retried, setup,
						teardown),
		cmocka_unit_test_setup_teardown(hc_listens_on_all_addresses_by_default, setup,
						teardown),
		cmocka_unit_test_setup_teardown(health_bind_failure_is_returned_and_leaves_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			health_listen_retries_the_server_of_a_state_without_one, setup, teardown),
		cmocka_unit_test_setup_teardown(health_close_with_everything_open, setup, teardown),
	};

	return cmocka_run_group_tests_name("proxy_health", tests, group_setup, NULL);
}
