/*
 * proxy/conntrack.h - stale UDP conntrack entries (upstream
 * pkg/proxy/conntrack/cleanup.go, shared/spec section 6).
 *
 * After a successful sync that changed the endpoints of a service with a UDP
 * port, UDP flows whose reply source is no longer a serving endpoint of their
 * ClusterIP/LB IP/externalIP:port or NodePort are deleted, so that a client
 * with a pinned 5-tuple (DNS!) moves to a live endpoint instead of
 * blackholing. Nothing else is ever flushed (a restart with unchanged
 * endpoints deletes nothing).
 *
 * The work (a netlink dump of the family's table and the deletes) runs in
 * libuv's thread pool on a plan that owns copies of everything it needs, so
 * the loop never blocks on it.
 */
#ifndef PROXY_CONNTRACK_H
#define PROXY_CONNTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/compiler.h"
#include "proxy/tracker.h"

struct uv_loop_s;
struct proxy_ct_plan;

/*
 * proxy_ct_plan_build - what is serving now, from @snap (one family): for each
 * UDP service port with at least one serving endpoint (traffic policy,
 * topology and terminating state ignored, as upstream), its ClusterIP,
 * LB IPs and externalIPs with the port, and its NodePort, mapped to the set
 * of serving "ip:port". Returns 0 or -ENOMEM.
 */
int proxy_ct_plan_build(const struct proxy_snapshot *snap,
			struct proxy_ct_plan **out) PROXY_MUST_CHECK;
void proxy_ct_plan_free(struct proxy_ct_plan *plan);

/*
 * proxy_ct_plan_selects - whether the reconciler deletes a conntrack entry of
 * protocol @l4proto (IPPROTO_*) whose original destination is
 * @orig_dst:@orig_dport and whose reply source is @reply_src:@reply_sport
 * (addresses of the plan's family, as text). The exact predicate the
 * reconciler applies to every dumped entry; pure, for tests and tools.
 * False for anything unparsable.
 */
bool proxy_ct_plan_selects(const struct proxy_ct_plan *plan, int l4proto, const char *orig_dst,
			   uint16_t orig_dport, const char *reply_src, uint16_t reply_sport);

struct proxy_ct_result {
	int err;	 /* 0, or the negative errno of the netlink dump/delete */
	size_t examined; /* entries dumped */
	size_t deleted;	 /* entries deleted */
	double seconds;	 /* wall time of the reconcile */
};

/*
 * proxy_conntrack_reconcile - run @plan synchronously (blocking netlink I/O:
 * tests, tools). Takes @plan. Fills @res.
 */
void proxy_conntrack_reconcile(struct proxy_ct_plan *plan, struct proxy_ct_result *res);

/*
 * proxy_conntrack_reconcile_async - run @plan in the loop's thread pool;
 * @done(arg, res) runs on the loop thread afterwards. Takes @plan (even on
 * error). Returns 0 or a negative errno (then @done is not called).
 */
int proxy_conntrack_reconcile_async(struct uv_loop_s *loop, struct proxy_ct_plan *plan,
				    void (*done)(void *arg, const struct proxy_ct_result *res),
				    void *arg) PROXY_MUST_CHECK;

#endif /* PROXY_CONNTRACK_H */
