/*
 * proxy/health.h - the proxy health server and the service health checks.
 *
 * Proxy health (upstream ProxyHealthServer, shared/spec section 5.1): /healthz
 * and /livez on --healthz-bind-address, JSON body and headers as upstream,
 * 200 unless an update was queued and not applied for longer than the health
 * timeout (2 x sync period), and /healthz also 503 when the own Node is
 * missing, being deleted, or tainted ToBeDeletedByClusterAutoscaler.
 *
 * Service health checks (upstream ServiceHealthServer, section 5.2): one
 * listener per healthCheckNodePort of eTP=Local LoadBalancer services,
 * answering every path with upstream's body and headers, 200 only when the
 * node has local ready endpoints for it and the proxy is healthy.
 *
 * Everything runs on the libuv loop given at creation. Time comes from the
 * loop (uv_now) and the wall clock (for the JSON timestamps).
 */
#ifndef PROXY_HEALTH_H
#define PROXY_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/compiler.h"
#include "proxy/metrics.h"
#include "proxy/tracker.h"

struct uv_loop_s;
struct proxy_health;

/* Reports a failure that operators must see (e.g. an Event on the Service). */
typedef void (*proxy_health_event_fn)(void *arg, const char *ns, const char *name,
				      const char *reason, const char *message);

/*
 * proxy_health_new - create the health state. @bind_addr "ip:port" ("" or
 * NULL: no proxy health server, but the state is still tracked for the
 * service health checks). @timeout_ms: the health timeout. @metrics: counters
 * to update (borrowed, may be NULL). @nodeport_addrs: the addresses service
 * health checks listen on (NULL/0: all, 0.0.0.0 and ::).
 * Returns 0, -EADDRINUSE/-EACCES/... (listen failed: logged) or -ENOMEM.
 */
int proxy_health_new(struct uv_loop_s *loop, const char *bind_addr, uint64_t timeout_ms,
		     struct proxy_metrics *metrics, const char *const *nodeport_addrs,
		     size_t n_nodeport_addrs, proxy_health_event_fn event_fn, void *event_arg,
		     struct proxy_health **out) PROXY_MUST_CHECK;

/*
 * proxy_health_listen - start the proxy health server on @bind_addr for a
 * state created without one (or whose server could not listen): what a
 * caller retries, as upstream retries its healthz server every 5 s, after
 * proxy_health_new() failed to listen and --bind-address-hard-fail is off.
 * A no-op returning 0 once a server runs. Logs success after a failure;
 * the failure itself is left to the caller (it knows how often it retries).
 * Returns 0, -EINVAL (malformed address), -ENOMEM or the listen error.
 */
int proxy_health_listen(struct proxy_health *h, const char *bind_addr) PROXY_MUST_CHECK;

/* upstream QueuedUpdate(family): a change is waiting for a sync. */
void proxy_health_queued_update(struct proxy_health *h, enum proxy_fam_idx fam);

/* upstream Updated(family): a sync succeeded (clears the queued update). */
void proxy_health_updated(struct proxy_health *h, enum proxy_fam_idx fam);

/* The own Node's state for /healthz: exists, deletionTimestamp, autoscaler taint. */
void proxy_health_set_node(struct proxy_health *h, bool exists, bool deleting, bool to_be_deleted);

/* Whether the proxy is healthy right now (what /livez answers). */
bool proxy_health_healthy(const struct proxy_health *h);

/*
 * proxy_health_sync_services - the services that need a health-check node
 * port and their local ready endpoint counts (after each successful sync, as
 * upstream's SyncServices + SyncEndpoints). Opens listeners for new ports,
 * closes those no longer needed, updates the counts. A port that cannot be
 * bound is logged and reported through the event callback once, and retried
 * on every later call. A service listed twice (once per IP family) is one
 * health check with the larger count. Returns 0 or -ENOMEM (what could be
 * done is done; the rest is retried on the next call).
 */
int proxy_health_sync_services(struct proxy_health *h, const struct proxy_hc_service *svcs,
			       size_t n) PROXY_MUST_CHECK;

/*
 * The clocks the health state reads: @mono_ms for how long an update has been
 * queued (default: uv_now() of the loop), @wall_ns for the JSON timestamps, in
 * nanoseconds since the epoch (default: CLOCK_REALTIME). For tests; NULL
 * restores the defaults.
 */
struct proxy_health_clock {
	uint64_t (*mono_ms)(void *arg);
	int64_t (*wall_ns)(void *arg);
	void *arg;
};
void proxy_health_set_clock(struct proxy_health *h, const struct proxy_health_clock *clock);

/* The port the proxy health server listens on (after port 0), or -1 without one. */
int proxy_health_port(const struct proxy_health *h);

/* Close every listener and connection; @done runs on the loop afterwards. */
void proxy_health_close(struct proxy_health *h, void (*done)(void *arg), void *arg);

#endif /* PROXY_HEALTH_H */
