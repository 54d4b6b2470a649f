/*
 * proxy/metricsd.h - the metrics server on --metrics-bind-address.
 *
 *   /metrics    Prometheus text of struct proxy_metrics
 *   /proxyMode  "iptables"
 *   /healthz    "ok" (as upstream's metrics mux)
 *   /configz    the effective configuration as JSON
 *   /rules      the rules currently programmed, all or one service
 *               (?service=ns/name, optional &family=ipv4|ipv6): what operators
 *               asked kube-proxy for in kubernetes #74677
 */
#ifndef PROXY_METRICSD_H
#define PROXY_METRICSD_H

#include <stddef.h>

#include "proxy/compiler.h"
#include "proxy/metrics.h"

struct uv_loop_s;
struct rules_buf;
struct proxy_metricsd;

/*
 * Writes the programmed rules into @out: all of them when @ns/@name are NULL,
 * else those of that service. @family 0 = all, 4 or 6. Returns 0, -ENOENT
 * (no such service) or -ENOMEM.
 */
typedef int (*proxy_rules_fn)(void *arg, const char *ns, const char *name, int family,
			      struct rules_buf *out);

/* Writes the effective configuration as JSON into @out. */
typedef int (*proxy_configz_fn)(void *arg, struct rules_buf *out);

int proxy_metricsd_new(struct uv_loop_s *loop, const char *bind_addr,
		       const struct proxy_metrics *metrics, proxy_rules_fn rules_fn,
		       proxy_configz_fn configz_fn, void *arg,
		       struct proxy_metricsd **out) PROXY_MUST_CHECK;
void proxy_metricsd_close(struct proxy_metricsd *m, void (*done)(void *arg), void *arg);

/* The port the server listens on (useful after port 0). */
int proxy_metricsd_port(const struct proxy_metricsd *m);

#endif /* PROXY_METRICSD_H */
