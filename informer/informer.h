/*
 * informer/informer.h - list/watch Services, EndpointSlices and the own Node.
 *
 * One struct informer per process: it talks to one API server through libcurl's
 * multi-socket interface driven by the caller's libuv loop (informer/http.c),
 * runs a list-then-watch state machine per resource (informer/watch.c) and
 * keeps a store of what it delivered (informer/store.c) so that a relist after
 * an expired watch reports objects deleted meanwhile as deletions.
 *
 * Objects reach the owner through @handlers, decoded (informer/decode.h); the
 * upsert callbacks receive ownership of the object. Everything happens on the
 * loop thread; no callback is ever called from inside another informer call.
 *
 * The informer never logs by itself: it reports through handlers->log.
 */
#ifndef INFORMER_INFORMER_H
#define INFORMER_INFORMER_H

#include <stdbool.h>
#include <stddef.h>

#include "informer/compiler.h"
#include "informer/decode.h"
#include "informer/types.h"

struct uv_loop_s;
struct informer;
struct informer_conn;

/* kube-proxy's selector: objects of other proxies and headless slices are not ours */
#define INFORMER_PROXY_SELECTOR \
	"!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name"

enum informer_log_level {
	INFORMER_LOG_ERROR = 0,
	INFORMER_LOG_WARNING = 1,
	INFORMER_LOG_INFO = 2, /* levels >= 2 are klog -v levels */
};

struct informer_handlers {
	void *arg;
	/* upserts steal the object */
	void (*service_upsert)(void *arg, struct informer_service *svc);
	void (*service_delete)(void *arg, const char *ns, const char *name);
	void (*slice_upsert)(void *arg, struct informer_endpointslice *eps);
	void (*slice_delete)(void *arg, const char *ns, const char *name);
	void (*node_upsert)(void *arg, struct informer_node *node);
	void (*node_delete)(void *arg, const char *name);
	/* the initial list of @kind is complete (called once per kind) */
	void (*synced)(void *arg, enum informer_kind kind);
	/* a line for the owner's log: @msg a short sentence, @kv key=value text */
	void (*log)(void *arg, int level, const char *msg, const char *kv);
};

struct informer_config {
	const char *node_name;	    /* the own Node to watch; NULL: no Node watch */
	const char *label_selector; /* NULL: INFORMER_PROXY_SELECTOR */
	bool list_only;		    /* list once, report synced, never watch */
	bool watch_list;	    /* try streaming lists (sendInitialEvents) first */
	unsigned int page_limit;    /* 0: 500, as client-go's pager */
	const char *user_agent;	    /* NULL: "kube-iptables-proxy/<version> (linux/<arch>)" */
};

/*
 * informer_conn_load - how to reach the API server, in kube-proxy's
 * precedence: @kubeconfig (a file path; NULL: $KUBECONFIG is NOT consulted,
 * as kube-proxy does not), @master overriding its server, else in-cluster
 * (KUBERNETES_SERVICE_HOST/PORT and the service-account files). Blocking
 * file reads: call before the loop runs. On error writes a message to @err.
 * Returns 0, -EINVAL, -ENOENT or -ENOMEM.
 */
int informer_conn_load(const char *kubeconfig, const char *master, struct informer_conn **out,
		       char *err, size_t errlen) INFORMER_MUST_CHECK;
void informer_conn_free(struct informer_conn *conn);

/* The API server URL the connection uses (borrowed). */
const char *informer_conn_server(const struct informer_conn *conn);

/*
 * informer_new - an informer on @loop using @conn (the informer takes @conn,
 * even on error). Does no I/O until informer_start(). Returns 0 or -ENOMEM.
 */
int informer_new(struct uv_loop_s *loop, struct informer_conn *conn,
		 const struct informer_config *cfg, const struct informer_handlers *handlers,
		 struct informer **out) INFORMER_MUST_CHECK;

/* Begin listing and watching. Returns 0 or a negative errno. */
int informer_start(struct informer *inf) INFORMER_MUST_CHECK;

/*
 * informer_stop - stop every request and close every handle; @done is called
 * (from the loop) once everything is closed, after which informer_free() may
 * be called. No handler is called after informer_stop() returns.
 */
void informer_stop(struct informer *inf, void (*done)(void *arg), void *arg);
void informer_free(struct informer *inf);

/*
 * informer_post_event - create a core/v1 Event (best effort, asynchronous;
 * failures are reported through handlers->log). @kind is "Node" or "Service";
 * @ns is NULL for cluster-scoped objects; @type "Normal" or "Warning".
 */
void informer_post_event(struct informer *inf, const char *kind, const char *ns, const char *name,
			 const char *uid, const char *type, const char *reason,
			 const char *message);

#endif /* INFORMER_INFORMER_H */
