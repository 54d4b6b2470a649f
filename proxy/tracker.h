/*
 * proxy/tracker.h - Services and EndpointSlices -> the rule writer's input.
 *
 * Keeps the current Services, EndpointSlices and the own Node, and turns them
 * into rules/model.h structs per IP family the way upstream kube-proxy does
 * (shared/spec/kube-proxy-iptables.md section 4): skip headless, ExternalName
 * and foreign-proxy services; merge a service's slices per port (by port name
 * and protocol), dedupe endpoints by ip:port with non-terminating ones winning;
 * categorise endpoints (ready, then serving+terminating fallback; local ones by
 * node name; topology hints PreferSameNode/PreferSameZone).
 *
 * Change tracking: each service's compiled ports are rebuilt only when the
 * service, one of its slices, or something every port depends on (node labels,
 * node IPs) changes; every rebuild stamps the port with a new generation, so a
 * sync can tell which ports changed since the generation it last wrote.
 *
 * Pure (no I/O, clock or globals); single-threaded: call it from the loop.
 */
#ifndef PROXY_TRACKER_H
#define PROXY_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "informer/types.h"
#include "proxy/compiler.h"
#include "rules/model.h"

struct proxy_tracker;

/* One endpoint of a service port, with what categorisation looked at. */
struct proxy_endpoint {
	struct rules_endpoint re; /* ip, "ip:port", KUBE-SEP chain */
	const char *node_name;	  /* NULL when absent */
	bool ready;
	bool serving;
	bool terminating;
	bool local;
};

/* One compiled service port of one family. */
struct proxy_port {
	struct rules_svc_port rp; /* the render input */
	const char *ns;		  /* the service's namespace and name */
	const char *svc_name;
	bool udp;
	/* every merged endpoint (any condition), sorted by "ip:port" */
	struct proxy_endpoint *eps;
	size_t n_eps;
	uint64_t gen; /* tracker generation when this port was (re)built */
};

/* What one family's render needs; borrowed from the tracker. */
struct proxy_snapshot {
	struct rules_state state;	 /* state.ports points into @ports' rp */
	const struct proxy_port **ports; /* sorted like state.ports */
	size_t n_ports;
	uint64_t gen; /* the tracker's generation when taken */
	/* private */
	const struct rules_svc_port **rps;
};

/* A per-service count of local ready endpoint IPs (health-check node ports). */
struct proxy_hc_service {
	const char *ns;
	const char *name;
	uint16_t hc_node_port;
	unsigned int local_ready; /* distinct local, ready (not terminating) endpoint IPs */
};

/*
 * proxy_tracker_new - an empty tracker for node @node_name ("" = none known:
 * no endpoint is local). Returns 0 or -ENOMEM.
 */
int proxy_tracker_new(const char *node_name, struct proxy_tracker **out) PROXY_MUST_CHECK;
void proxy_tracker_free(struct proxy_tracker *t);

/* The PreferSameTrafficDistribution feature gate (default on). */
void proxy_tracker_set_prefer_same_node(struct proxy_tracker *t, bool on);

/*
 * proxy_tracker_set_node_ip - this node's primary IP of @family (canonical),
 * used for loadBalancerSourceRanges that contain the node. Default: the
 * loopback address, as upstream assumes when it cannot tell. Returns 0,
 * -EINVAL (not an IP of @family) or -ENOMEM.
 */
int proxy_tracker_set_node_ip(struct proxy_tracker *t, enum rules_family family,
			      const char *ip) PROXY_MUST_CHECK;

/*
 * Object updates. The *_upsert functions steal @obj (freed even on error).
 * They return 1 when the proxy's view changed (a sync is needed), 0 when not
 * (e.g. an object the proxy ignores), or -ENOMEM.
 */
int proxy_tracker_service_upsert(struct proxy_tracker *t,
				 struct informer_service *obj) PROXY_MUST_CHECK;
int proxy_tracker_service_remove(struct proxy_tracker *t, const char *ns,
				 const char *name) PROXY_MUST_CHECK;
int proxy_tracker_slice_upsert(struct proxy_tracker *t,
			       struct informer_endpointslice *obj) PROXY_MUST_CHECK;
int proxy_tracker_slice_remove(struct proxy_tracker *t, const char *ns,
			       const char *name) PROXY_MUST_CHECK;

/*
 * proxy_tracker_node_set - the own Node (steals @node; NULL: deleted).
 * Returns 1 when its labels changed (upstream then forces a full sync),
 * 0 when not, or -ENOMEM.
 */
int proxy_tracker_node_set(struct proxy_tracker *t, struct informer_node *node) PROXY_MUST_CHECK;

/* The own Node, or NULL. Borrowed until the next proxy_tracker_node_set(). */
const struct informer_node *proxy_tracker_node(const struct proxy_tracker *t);

/* Counts for logs and metrics. */
size_t proxy_tracker_n_services(const struct proxy_tracker *t);
size_t proxy_tracker_n_slices(const struct proxy_tracker *t);

/* Generation counter: bumped by every change that rebuilt a port. */
uint64_t proxy_tracker_generation(const struct proxy_tracker *t);

/*
 * proxy_tracker_snapshot - compile what changed and fill @snap with every
 * service port of @family, sorted by service port name then protocol. The
 * snapshot borrows from the tracker: it is valid until the next update call.
 * Release it with proxy_snapshot_cleanup(). Returns 0 or -ENOMEM.
 */
int proxy_tracker_snapshot(struct proxy_tracker *t, enum rules_family family,
			   struct proxy_snapshot *snap) PROXY_MUST_CHECK;
void proxy_snapshot_cleanup(struct proxy_snapshot *snap);

/*
 * proxy_tracker_hc_services - services of @family with a healthCheckNodePort
 * and their local ready endpoint counts, sorted by namespace/name. New array
 * in *@out (free() it; strings borrowed like a snapshot). Returns the count
 * or -ENOMEM.
 */
long proxy_tracker_hc_services(struct proxy_tracker *t, enum rules_family family,
			       struct proxy_hc_service **out) PROXY_MUST_CHECK;

/*
 * proxy_tracker_take_triggers - the endpoints.kubernetes.io/last-change-
 * trigger-time values (ns since the epoch) of slices updated since the last
 * call and not older than @since_ns (upstream ignores changes from before
 * the tracker started). New array in *@out (free() it). Returns the count or
 * -ENOMEM.
 */
long proxy_tracker_take_triggers(struct proxy_tracker *t, int64_t since_ns,
				 int64_t **out) PROXY_MUST_CHECK;

/* Whether @family has any object at all (service IP, slice or node IP). */
bool proxy_tracker_family_seen(const struct proxy_tracker *t, enum rules_family family);

#endif /* PROXY_TRACKER_H */
