/*
 * proxy/tracker.c - Services and EndpointSlices -> rules/model.h, per family.
 *
 * Maps are POSIX tsearch() trees (glibc's red-black trees): sorted iteration
 * for free and no container code of our own.
 */
#include "proxy/tracker.h"

#include <errno.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "informer/ip.h"
#include "rules/chain.h"

#define LABEL_SERVICE_PROXY_NAME "service.kubernetes.io/service-proxy-name"
#define LABEL_HEADLESS		 "service.kubernetes.io/headless"
#define LABEL_ZONE		 "topology.kubernetes.io/zone"

/* ---- a bump allocator for one compiled service ------------------------- */

struct block {
	struct block *next;
	size_t used;
	size_t size;
	max_align_t data[];
};

struct arena {
	struct block *head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	struct block *b = a->head;
	size_t align = sizeof(max_align_t), size;
	void *p;

	n = (n + align - 1) & ~(align - 1);
	if (!b || b->size - b->used < n) {
		size = n > 4096 ? n : 4096;
		b = malloc(sizeof(*b) + size);
		if (!b)
			return NULL;
		b->next = a->head;
		b->used = 0;
		b->size = size;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += n;
	return p;
}

static void *arena_zalloc(struct arena *a, size_t n)
{
	void *p = arena_alloc(a, n ? n : 1);

	if (p)
		memset(p, 0, n ? n : 1);
	return p;
}

static char *arena_printf(struct arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	p = arena_alloc(a, (size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

static void arena_free(struct arena *a)
{
	struct block *b, *next;

	for (b = a->head; b; b = next) {
		next = b->next;
		free(b);
	}
	a->head = NULL;
}

/* ---- the tracker ------------------------------------------------------- */

/* One family's compiled ports of one service. */
struct compiled {
	struct arena arena;
	struct proxy_port *ports;
	size_t n_ports;
	uint16_t hc_node_port;
	unsigned int local_ready;
};

/* Everything known about one service name: the Service and its slices. */
struct tsvc {
	char *key; /* "ns/name" */
	char *ns;
	char *name;
	struct informer_service *svc;		/* NULL: only slices so far */
	struct informer_endpointslice **slices; /* sorted by slice name */
	size_t n_slices;
	size_t cap_slices;
	struct compiled *comp[2]; /* [0] IPv4, [1] IPv6 */
	bool dirty;
};

/* Which service a slice ("ns/slicename") belongs to. */
struct tslice {
	char *key;
	struct tsvc *owner;
};

struct proxy_tracker {
	char *node_name;
	struct informer_node *node;
	const char *zone; /* from node labels, borrowed from @node */
	bool prefer_same_node;
	struct informer_addr node_ip[2];
	void *svcs;   /* tree of struct tsvc * by key */
	void *slices; /* tree of struct tslice * by key */
	size_t n_svcs;
	size_t n_slices;
	uint64_t gen;
	bool family_seen[2];
	int64_t *triggers; /* last-change-trigger-times not yet taken */
	size_t n_triggers;
	size_t cap_triggers;
};

static int fam_idx(enum rules_family f)
{
	return f == RULES_IPV6 ? 1 : 0;
}

static int cmp_tsvc(const void *a, const void *b)
{
	return strcmp(((const struct tsvc *)a)->key, ((const struct tsvc *)b)->key);
}

static int cmp_tslice(const void *a, const void *b)
{
	return strcmp(((const struct tslice *)a)->key, ((const struct tslice *)b)->key);
}

static void compiled_free(struct compiled *c)
{
	if (!c)
		return;
	arena_free(&c->arena);
	free(c);
}

static void tsvc_free(struct tsvc *s)
{
	size_t i;

	if (!s)
		return;
	informer_service_free(s->svc);
	for (i = 0; i < s->n_slices; i++)
		informer_endpointslice_free(s->slices[i]);
	free(s->slices);
	compiled_free(s->comp[0]);
	compiled_free(s->comp[1]);
	free(s->key);
	free(s->ns);
	free(s->name);
	free(s);
}

int proxy_tracker_new(const char *node_name, struct proxy_tracker **out)
{
	struct proxy_tracker *t;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->node_name = strdup(node_name ? node_name : "");
	if (!t->node_name) {
		free(t);
		return -ENOMEM;
	}
	t->prefer_same_node = true;
	/* Upstream assumes loopback when it cannot tell the node's IP. */
	t->node_ip[0].family = INFORMER_IPV4;
	t->node_ip[0].addr[0] = 127;
	t->node_ip[0].addr[3] = 1;
	t->node_ip[1].family = INFORMER_IPV6;
	t->node_ip[1].addr[15] = 1;
	*out = t;
	return 0;
}

static void free_tsvc_node(void *p)
{
	tsvc_free(p);
}

static void free_tslice_node(void *p)
{
	struct tslice *s = p;

	free(s->key);
	free(s);
}

void proxy_tracker_free(struct proxy_tracker *t)
{
	if (!t)
		return;
	tdestroy(t->svcs, free_tsvc_node);
	tdestroy(t->slices, free_tslice_node);
	informer_node_free(t->node);
	free(t->node_name);
	free(t->triggers);
	free(t);
}

static void mark_dirty(const void *nodep, VISIT which, void *arg)
{
	struct tsvc *s = *(struct tsvc *const *)nodep;

	(void)arg;
	if (which == postorder || which == leaf)
		s->dirty = true;
}

/* Something every port depends on changed: rebuild them all. */
static void invalidate_all(struct proxy_tracker *t)
{
	twalk_r(t->svcs, mark_dirty, NULL);
	t->gen++;
}

void proxy_tracker_set_prefer_same_node(struct proxy_tracker *t, bool on)
{
	if (t->prefer_same_node == on)
		return;
	t->prefer_same_node = on;
	invalidate_all(t);
}

int proxy_tracker_set_node_ip(struct proxy_tracker *t, enum rules_family family, const char *ip)
{
	struct informer_addr a;

	if (informer_addr_parse(ip, &a) ||
	    a.family != (family == RULES_IPV6 ? INFORMER_IPV6 : INFORMER_IPV4))
		return -EINVAL;
	if (memcmp(&a, &t->node_ip[fam_idx(family)], sizeof(a)) == 0)
		return 0;
	t->node_ip[fam_idx(family)] = a;
	invalidate_all(t);
	return 0;
}

/* Find or create the entry for service @ns/@name. */
static struct tsvc *tsvc_get(struct proxy_tracker *t, const char *ns, const char *name, bool create)
{
	struct tsvc key, *s, **found;
	size_t nl = strlen(ns), ml = strlen(name);
	char buf[512];
	char *k = buf;

	if (nl + ml + 2 > sizeof(buf)) {
		k = malloc(nl + ml + 2);
		if (!k)
			return NULL;
	}
	memcpy(k, ns, nl);
	k[nl] = '/';
	memcpy(k + nl + 1, name, ml + 1);
	key.key = k;
	found = tfind(&key, &t->svcs, cmp_tsvc);
	if (found || !create) {
		if (k != buf)
			free(k);
		return found ? *found : NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out_free_key;
	s->key = strdup(k);
	s->ns = strdup(ns);
	s->name = strdup(name);
	if (!s->key || !s->ns || !s->name)
		goto out_free_svc;
	if (!tsearch(s, &t->svcs, cmp_tsvc))
		goto out_free_svc;
	t->n_svcs++;
	if (k != buf)
		free(k);
	return s;

out_free_svc:
	tsvc_free(s);
out_free_key:
	if (k != buf)
		free(k);
	return NULL;
}

/* Drop @s when nothing refers to it any more. */
static void tsvc_gc(struct proxy_tracker *t, struct tsvc *s)
{
	if (s->svc || s->n_slices)
		return;
	tdelete(s, &t->svcs, cmp_tsvc);
	t->n_svcs--;
	tsvc_free(s);
}

static void touch(struct proxy_tracker *t, struct tsvc *s)
{
	s->dirty = true;
	t->gen++;
}

/* Objects the label selector of upstream's informers would not deliver. */
static bool service_ignored(const struct informer_service *svc)
{
	return informer_meta_label(&svc->meta, LABEL_SERVICE_PROXY_NAME) != NULL;
}

static bool slice_ignored(const struct informer_endpointslice *eps)
{
	return informer_meta_label(&eps->meta, LABEL_SERVICE_PROXY_NAME) ||
	       informer_meta_label(&eps->meta, LABEL_HEADLESS) || !eps->service_name ||
	       !eps->meta.namespace;
}

int proxy_tracker_service_upsert(struct proxy_tracker *t, struct informer_service *obj)
{
	struct tsvc *s;
	size_t i;

	if (!obj->meta.namespace) {
		informer_service_free(obj);
		return 0;
	}
	if (service_ignored(obj)) {
		/* The label may have just been added: forget what we had. */
		int err = proxy_tracker_service_remove(t, obj->meta.namespace, obj->meta.name);

		informer_service_free(obj);
		return err;
	}
	s = tsvc_get(t, obj->meta.namespace, obj->meta.name, true);
	if (!s) {
		informer_service_free(obj);
		return -ENOMEM;
	}
	informer_service_free(s->svc);
	s->svc = obj;
	for (i = 0; i < obj->n_cluster_ips; i++)
		if (obj->cluster_ips[i].family)
			t->family_seen[obj->cluster_ips[i].family == INFORMER_IPV6] = true;
	touch(t, s);
	return 1;
}

int proxy_tracker_service_remove(struct proxy_tracker *t, const char *ns, const char *name)
{
	struct tsvc *s = tsvc_get(t, ns, name, false);

	if (!s || !s->svc)
		return 0;
	informer_service_free(s->svc);
	s->svc = NULL;
	touch(t, s);
	tsvc_gc(t, s);
	return 1;
}

static char *slice_key(const char *ns, const char *name)
{
	size_t len = strlen(ns) + strlen(name) + 2;
	char *k = malloc(len);

	if (k)
		snprintf(k, len, "%s/%s", ns, name);
	return k;
}

/* Remove slice @name (no namespace) from @s; returns whether it was there. */
static bool tsvc_drop_slice(struct tsvc *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n_slices; i++) {
		if (strcmp(s->slices[i]->meta.name, name) == 0) {
			informer_endpointslice_free(s->slices[i]);
			memmove(&s->slices[i], &s->slices[i + 1],
				(s->n_slices - i - 1) * sizeof(s->slices[0]));
			s->n_slices--;
			return true;
		}
	}
	return false;
}

/* Insert @eps into @s keeping slices sorted by name (replacing a namesake). */
static int tsvc_put_slice(struct tsvc *s, struct informer_endpointslice *eps)
{
	size_t i;

	tsvc_drop_slice(s, eps->meta.name);
	if (s->n_slices == s->cap_slices) {
		size_t cap = s->cap_slices ? s->cap_slices * 2 : 2;
		void *p = realloc(s->slices, cap * sizeof(s->slices[0]));

		if (!p)
			return -ENOMEM;
		s->slices = p;
		s->cap_slices = cap;
	}
	for (i = s->n_slices; i > 0 && strcmp(s->slices[i - 1]->meta.name, eps->meta.name) > 0; i--)
		s->slices[i] = s->slices[i - 1];
	s->slices[i] = eps;
	s->n_slices++;
	return 0;
}

int proxy_tracker_slice_remove(struct proxy_tracker *t, const char *ns, const char *name)
{
	struct tslice key, *ref, **found;
	struct tsvc *owner;
	char *k = slice_key(ns, name);

	if (!k)
		return -ENOMEM;
	key.key = k;
	found = tfind(&key, &t->slices, cmp_tslice);
	free(k);
	if (!found)
		return 0;
	ref = *found;
	owner = ref->owner;
	tdelete(ref, &t->slices, cmp_tslice);
	t->n_slices--;
	free_tslice_node(ref);
	tsvc_drop_slice(owner, name);
	touch(t, owner);
	tsvc_gc(t, owner);
	return 1;
}

/* Remember a trigger time for the network programming latency metric; a
 * failed allocation only loses a sample. */
static void note_trigger(struct proxy_tracker *t, int64_t ns)
{
	if (t->n_triggers == t->cap_triggers) {
		size_t cap = t->cap_triggers ? t->cap_triggers * 2 : 64;
		int64_t *p;

		if (cap > 1 << 20)
			return; /* nobody takes them: do not grow forever */
		p = realloc(t->triggers, cap * sizeof(*p));
		if (!p)
			return;
		t->triggers = p;
		t->cap_triggers = cap;
	}
	t->triggers[t->n_triggers++] = ns;
}

long proxy_tracker_take_triggers(struct proxy_tracker *t, int64_t since_ns, int64_t **out)
{
	size_t i, n = 0;
	int64_t *v;

	*out = NULL;
	v = malloc((t->n_triggers ? t->n_triggers : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < t->n_triggers; i++)
		if (t->triggers[i] >= since_ns)
			v[n++] = t->triggers[i];
	t->n_triggers = 0;
	*out = v;
	return (long)n;
}

int proxy_tracker_slice_upsert(struct proxy_tracker *t, struct informer_endpointslice *obj)
{
	struct tslice key, *ref, **found;
	struct tsvc *s;
	int err;

	if (slice_ignored(obj)) {
		err = obj->meta.namespace
			      ? proxy_tracker_slice_remove(t, obj->meta.namespace, obj->meta.name)
			      : 0;
		informer_endpointslice_free(obj);
		return err;
	}
	key.key = slice_key(obj->meta.namespace, obj->meta.name);
	if (!key.key)
		goto out_nomem;
	found = tfind(&key, &t->slices, cmp_tslice);
	if (found && strcmp((*found)->owner->name, obj->service_name) != 0) {
		/* The slice moved to another service: forget the old owner's copy. */
		free(key.key);
		err = proxy_tracker_slice_remove(t, obj->meta.namespace, obj->meta.name);
		if (err < 0)
			goto out_free_obj;
		return proxy_tracker_slice_upsert(t, obj);
	}
	s = found ? (*found)->owner : tsvc_get(t, obj->meta.namespace, obj->service_name, true);
	if (!s)
		goto out_free_key;
	if (!found) {
		ref = calloc(1, sizeof(*ref));
		if (!ref)
			goto out_gc;
		ref->key = key.key;
		ref->owner = s;
		if (!tsearch(ref, &t->slices, cmp_tslice)) {
			free(ref);
			goto out_gc;
		}
		key.key = NULL; /* owned by the tree now */
		t->n_slices++;
	}
	free(key.key);
	if (obj->address_type == INFORMER_ADDR_IPV4 || obj->address_type == INFORMER_ADDR_IPV6)
		t->family_seen[obj->address_type == INFORMER_ADDR_IPV6] = true;
	if (obj->meta.last_change_trigger_ns)
		note_trigger(t, obj->meta.last_change_trigger_ns);
	err = tsvc_put_slice(s, obj);
	if (err) {
		/* keep the maps consistent: the slice is gone */
		int e2 = proxy_tracker_slice_remove(t, obj->meta.namespace, obj->meta.name);

		(void)e2; /* only -ENOMEM, and we already report that */
		informer_endpointslice_free(obj);
		return err;
	}
	touch(t, s);
	return 1;

out_gc:
	tsvc_gc(t, s);
out_free_key:
	free(key.key);
out_nomem:
	err = -ENOMEM;
out_free_obj:
	informer_endpointslice_free(obj);
	return err;
}

int proxy_tracker_node_set(struct proxy_tracker *t, struct informer_node *node)
{
	const struct informer_meta *old = t->node ? &t->node->meta : NULL;
	bool changed;
	size_t i;

	if (!old || !node) {
		changed = old != NULL || node != NULL;
	} else {
		changed = old->n_labels != node->meta.n_labels;
		for (i = 0; !changed && i < old->n_labels; i++)
			changed = strcmp(old->labels[i].key, node->meta.labels[i].key) != 0 ||
				  strcmp(old->labels[i].value, node->meta.labels[i].value) != 0;
	}
	if (node)
		for (i = 0; i < node->n_addresses; i++)
			t->family_seen[node->addresses[i].ip.family == INFORMER_IPV6] = true;
	informer_node_free(t->node);
	t->node = node;
	t->zone = node ? informer_meta_label(&node->meta, LABEL_ZONE) : NULL;
	if (changed)
		invalidate_all(t);
	return changed ? 1 : 0;
}

const struct informer_node *proxy_tracker_node(const struct proxy_tracker *t)
{
	return t->node;
}

size_t proxy_tracker_n_services(const struct proxy_tracker *t)
{
	return t->n_svcs;
}

size_t proxy_tracker_n_slices(const struct proxy_tracker *t)
{
	return t->n_slices;
}

uint64_t proxy_tracker_generation(const struct proxy_tracker *t)
{
	return t->gen;
}

bool proxy_tracker_family_seen(const struct proxy_tracker *t, enum rules_family family)
{
	return t->family_seen[fam_idx(family)];
}

/* ---- compiling a service ---------------------------------------------- */

/* An endpoint while merging slices, before dedupe. */
struct cand {
	const struct informer_endpoint *src;
	const char *str; /* "ip:port" */
	size_t seq;	 /* arrival order, for a stable sort */
};

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	int c = strcmp(x->str, y->str);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_rp(const void *a, const void *b)
{
	const struct rules_svc_port *x = *(const struct rules_svc_port *const *)a;
	const struct rules_svc_port *y = *(const struct rules_svc_port *const *)b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return (int)x->proto - (int)y->proto;
}

static bool has_str(const char *const *list, size_t n, const char *s)
{
	size_t i;

	if (!s)
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* Per-endpoint facts categorisation needs; parallel to pp->eps. */
struct ep_info {
	const struct informer_endpoint *src;
};

enum topo {
	TOPO_NONE = 0,
	TOPO_SAME_ZONE,
	TOPO_SAME_NODE,
};

/* upstream topologyModeFromHints */
static enum topo topology_mode(const struct proxy_tracker *t, const struct proxy_port *pp,
			       const struct ep_info *info)
{
	bool any_node = false, all_node = true, any_zone = false, all_zone = true;
	size_t i;

	for (i = 0; i < pp->n_eps; i++) {
		const struct informer_endpoint *e = info[i].src;

		if (!pp->eps[i].ready)
			continue;
		if (!t->prefer_same_node || !e->n_hint_nodes)
			all_node = false;
		else if (has_str(e->hint_nodes, e->n_hint_nodes, t->node_name))
			any_node = true;
		if (!e->n_hint_zones)
			all_zone = false;
		else if (has_str(e->hint_zones, e->n_hint_zones, t->zone))
			any_zone = true;
	}
	if (t->prefer_same_node && all_node && any_node)
		return TOPO_SAME_NODE;
	if (all_zone && any_zone)
		return TOPO_SAME_ZONE;
	return TOPO_NONE;
}

static bool topo_ok(const struct proxy_tracker *t, enum topo mode, const struct ep_info *info)
{
	switch (mode) {
	case TOPO_SAME_NODE:
		return has_str(info->src->hint_nodes, info->src->n_hint_nodes, t->node_name);
	case TOPO_SAME_ZONE:
		return has_str(info->src->hint_zones, info->src->n_hint_zones, t->zone);
	case TOPO_NONE:
	default:
		return true;
	}
}

/* upstream CategorizeEndpoints, on endpoints sorted by "ip:port" */
static int categorize(const struct proxy_tracker *t, struct arena *a, struct proxy_port *pp,
		      const struct ep_info *info)
{
	struct rules_svc_port *sp = &pp->rp;
	const struct rules_endpoint **cl, **lo, **all;
	size_t i, j, k, nc = 0, nl = 0, na = 0;
	enum topo mode = TOPO_NONE;
	bool use_st = false, local_ready = false, local_st = false;

	cl = arena_zalloc(a, pp->n_eps * sizeof(*cl));
	lo = arena_zalloc(a, pp->n_eps * sizeof(*lo));
	if (!cl || !lo)
		return -ENOMEM;

	if (rules_svc_port_uses_cluster(sp)) {
		mode = topology_mode(t, pp, info);
		for (i = 0; i < pp->n_eps; i++)
			if (pp->eps[i].ready && topo_ok(t, mode, &info[i]))
				cl[nc++] = &pp->eps[i].re;
		if (!nc)
			for (i = 0; i < pp->n_eps; i++)
				if (pp->eps[i].serving && pp->eps[i].terminating)
					cl[nc++] = &pp->eps[i].re;
		if (nc)
			sp->has_endpoints = true;
	}
	sp->cluster_eps = cl;
	sp->n_cluster_eps = nc;
	if (!rules_svc_port_uses_local(sp)) {
		sp->reachable_eps = cl;
		sp->n_reachable_eps = nc;
		return 0;
	}

	for (i = 0; i < pp->n_eps; i++) {
		const struct proxy_endpoint *e = &pp->eps[i];

		if (e->ready) {
			sp->has_endpoints = true;
			local_ready |= e->local;
		} else if (e->serving && e->terminating) {
			sp->has_endpoints = true;
			local_st |= e->local;
		}
	}
	if (local_ready) {
		for (i = 0; i < pp->n_eps; i++)
			if (pp->eps[i].local && pp->eps[i].ready)
				lo[nl++] = &pp->eps[i].re;
	} else if (local_st) {
		use_st = true;
		for (i = 0; i < pp->n_eps; i++)
			if (pp->eps[i].local && pp->eps[i].serving && pp->eps[i].terminating)
				lo[nl++] = &pp->eps[i].re;
	}
	sp->local_eps = lo;
	sp->n_local_eps = nl;
	if (!rules_svc_port_uses_cluster(sp)) {
		sp->reachable_eps = lo;
		sp->n_reachable_eps = nl;
		return 0;
	}
	if (mode == TOPO_NONE && !use_st) {
		sp->reachable_eps = cl;
		sp->n_reachable_eps = nc;
		return 0;
	}
	/* Union of both lists; both are sorted by "ip:port" already. */
	all = arena_zalloc(a, (nc + nl) * sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (j = 0, k = 0; j < nc || k < nl;) {
		int c = j == nc ? 1 : k == nl ? -1 : strcmp(cl[j]->str, lo[k]->str);

		if (c <= 0)
			all[na++] = cl[j++];
		else
			all[na++] = lo[k++];
		if (c == 0)
			k++;
	}
	sp->reachable_eps = all;
	sp->n_reachable_eps = na;
	return 0;
}

static enum informer_address_type slice_type(enum rules_family f)
{
	return f == RULES_IPV6 ? INFORMER_ADDR_IPV6 : INFORMER_ADDR_IPV4;
}

static enum informer_family ifam(enum rules_family f)
{
	return f == RULES_IPV6 ? INFORMER_IPV6 : INFORMER_IPV4;
}

/* Merge the slices' endpoints for one service port, dedupe, and fill pp->eps. */
static int merge_endpoints(const struct proxy_tracker *t, struct arena *a, const struct tsvc *s,
			   enum rules_family f, const struct informer_service_port *port,
			   struct proxy_port *pp, struct ep_info **info_out)
{
	const char *proto = rules_proto_name(pp->rp.proto);
	struct cand *cands = NULL;
	struct ep_info *info;
	size_t i, j, e, n = 0, cap = 0, out = 0;
	int err = -ENOMEM;

	for (i = 0; i < s->n_slices; i++) {
		const struct informer_endpointslice *eps = s->slices[i];

		if (eps->address_type != slice_type(f))
			continue;
		for (j = 0; j < eps->n_ports; j++) {
			const struct informer_slice_port *sport = &eps->ports[j];

			if (!sport->name || !sport->port || strcmp(sport->name, port->name) != 0 ||
			    (int)sport->protocol != (int)port->protocol)
				continue;
			for (e = 0; e < eps->n_endpoints; e++) {
				const struct informer_endpoint *ep = &eps->endpoints[e];

				if (!ep->address.ip || ep->address.family != ifam(f))
					continue;
				if (n == cap) {
					void *p;

					cap = cap ? cap * 2 : 16;
					p = realloc(cands, cap * sizeof(*cands));
					if (!p)
						goto out;
					cands = p;
				}
				cands[n].src = ep;
				cands[n].seq = n;
				cands[n].str = f == RULES_IPV6
						       ? arena_printf(a, "[%s]:%u", ep->address.ip,
								      sport->port)
						       : arena_printf(a, "%s:%u", ep->address.ip,
								      sport->port);
				if (!cands[n].str)
					goto out;
				n++;
			}
		}
	}
	if (n)
		qsort(cands, n, sizeof(*cands), cmp_cand);

	pp->eps = arena_zalloc(a, n * sizeof(*pp->eps));
	info = arena_zalloc(a, n * sizeof(*info));
	if (!pp->eps || !info)
		goto out;
	for (i = 0; i < n; i = j) {
		/* Upstream sets map[ip:port] in arrival order unless the newcomer is
		 * terminating: the last non-terminating one wins, else the first. */
		size_t pick = i;

		for (j = i; j < n && strcmp(cands[j].str, cands[i].str) == 0; j++)
			if (cands[j].src->terminating != INFORMER_COND_TRUE)
				pick = j;
		{
			const struct informer_endpoint *src = cands[pick].src;
			struct proxy_endpoint *pe = &pp->eps[out];

			pe->re.ip = src->address.ip;
			pe->re.str = cands[pick].str;
			if (rules_chain_sep(pp->rp.name, proto, pe->re.str, pe->re.chain))
				goto out;
			pe->node_name = src->node_name;
			pe->ready = src->ready != INFORMER_COND_FALSE;
			pe->serving = src->serving != INFORMER_COND_FALSE;
			pe->terminating = src->terminating == INFORMER_COND_TRUE;
			pe->local = src->node_name && t->node_name[0] &&
				    strcmp(src->node_name, t->node_name) == 0;
			info[out].src = src;
			out++;
		}
	}
	pp->n_eps = out;
	*info_out = info;
	err = 0;
out:
	free(cands);
	return err;
}

/* upstream GetClusterIPByFamily */
static const char *cluster_ip_of(const struct informer_service *svc, enum rules_family f)
{
	struct informer_addr a;
	size_t i;

	if (!svc->n_ip_families) {
		if (!svc->cluster_ip[0] || strcmp(svc->cluster_ip, "None") == 0)
			return NULL;
		if (informer_addr_parse(svc->cluster_ip, &a) || a.family != ifam(f))
			return NULL;
		return svc->cluster_ip;
	}
	for (i = 0; i < svc->n_ip_families; i++)
		if (svc->ip_families[i] == ifam(f) && i < svc->n_cluster_ips)
			return svc->cluster_ips[i].family == ifam(f) ? svc->cluster_ips[i].ip
								     : NULL;
	return NULL;
}

/* upstream ShouldSkipService */
static bool skip_service(const struct informer_service *svc)
{
	return !svc->cluster_ip[0] || strcmp(svc->cluster_ip, "None") == 0 ||
	       svc->type == INFORMER_SVC_EXTERNAL_NAME;
}

/* upstream apiservice.ExternallyAccessible (by type, not by port values) */
static bool externally_accessible(const struct informer_service *svc)
{
	return svc->type == INFORMER_SVC_LOAD_BALANCER || svc->type == INFORMER_SVC_NODE_PORT ||
	       (svc->type == INFORMER_SVC_CLUSTER_IP && svc->n_external_ips > 0);
}

/* Collect @svc's addresses of family @f into a new borrowed-pointer array. */
static const char *const *family_ips(struct arena *a, const struct informer_ip *ips, size_t n,
				     enum rules_family f, size_t *n_out)
{
	const char **out = arena_zalloc(a, n * sizeof(*out));
	size_t i;

	*n_out = 0;
	if (!out)
		return NULL;
	for (i = 0; i < n; i++)
		if (ips[i].ip && ips[i].family == ifam(f))
			out[(*n_out)++] = ips[i].ip;
	return out;
}

static int fill_port_addresses(const struct proxy_tracker *t, struct arena *a,
			       const struct informer_service *svc, enum rules_family f,
			       struct rules_svc_port *sp)
{
	const char **lb, **src;
	struct informer_prefix pfx;
	size_t i;

	sp->external_ips =
		family_ips(a, svc->external_ips, svc->n_external_ips, f, &sp->n_external_ips);
	lb = arena_zalloc(a, svc->n_lb_ingress * sizeof(*lb));
	src = arena_zalloc(a, svc->n_source_ranges * sizeof(*src));
	if (!sp->external_ips || !lb || !src)
		return -ENOMEM;
	for (i = 0; i < svc->n_lb_ingress; i++) {
		const struct informer_lb_ingress *ing = &svc->lb_ingress[i];

		/* only VIP-mode load balancers are programmed (ipMode Proxy is not) */
		if (ing->ip.ip && ing->ip.family == ifam(f) &&
		    ing->ip_mode != INFORMER_LB_IP_MODE_PROXY)
			lb[sp->n_lb_ips++] = ing->ip.ip;
	}
	sp->lb_ips = lb;
	for (i = 0; i < svc->n_source_ranges; i++) {
		const struct informer_cidr *c = &svc->source_ranges[i];

		if (c->family != ifam(f))
			continue;
		src[sp->n_source_ranges++] = c->cidr;
		if (!informer_prefix_parse(c->cidr, &pfx) &&
		    informer_prefix_contains(&pfx, &t->node_ip[fam_idx(f)]))
			sp->fw_allow_from_node = true;
	}
	sp->source_ranges = src;
	return 0;
}

static int compile_port(const struct proxy_tracker *t, struct compiled *c, const struct tsvc *s,
			enum rules_family f, const char *cip,
			const struct informer_service_port *port, struct proxy_port *pp)
{
	const struct informer_service *svc = s->svc;
	struct rules_svc_port *sp = &pp->rp;
	struct ep_info *info = NULL;
	int err;

	pp->ns = s->ns;
	pp->svc_name = s->name;
	pp->gen = t->gen;
	sp->gen = t->gen;
	sp->name = port->name[0] ? arena_printf(&c->arena, "%s:%s", s->key, port->name)
				 : arena_printf(&c->arena, "%s", s->key);
	if (!sp->name)
		return -ENOMEM;
	sp->proto = port->protocol == INFORMER_PROTO_UDP    ? RULES_PROTO_UDP
		    : port->protocol == INFORMER_PROTO_SCTP ? RULES_PROTO_SCTP
							    : RULES_PROTO_TCP;
	pp->udp = sp->proto == RULES_PROTO_UDP;
	err = rules_chain_hash(sp->name, rules_proto_name(sp->proto), NULL, sp->hash);
	if (err)
		return err;
	sp->cluster_ip = cip;
	sp->port = port->port;
	sp->node_port = port->node_port;
	sp->affinity = svc->affinity_client_ip;
	sp->affinity_timeout = svc->affinity_client_ip ? (uint32_t)svc->affinity_timeout : 0;
	sp->etp_local = externally_accessible(svc) && svc->external_policy == INFORMER_POLICY_LOCAL;
	sp->itp_local = svc->internal_policy == INFORMER_POLICY_LOCAL;
	/* upstream NeedsHealthCheck: LoadBalancer with eTP Local */
	if (svc->type == INFORMER_SVC_LOAD_BALANCER && sp->etp_local)
		sp->hc_node_port = svc->health_check_node_port;
	err = fill_port_addresses(t, &c->arena, svc, f, sp);
	if (err)
		return err;
	err = merge_endpoints(t, &c->arena, s, f, port, pp, &info);
	if (err)
		return err;
	return categorize(t, &c->arena, pp, info);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Distinct IPs of local ready endpoints over all ports (health checks). */
static int count_local_ready(struct compiled *c)
{
	const char **ips;
	size_t i, j, n = 0, total = 0;

	for (i = 0; i < c->n_ports; i++)
		total += c->ports[i].n_eps;
	ips = arena_zalloc(&c->arena, total * sizeof(*ips));
	if (!ips)
		return -ENOMEM;
	for (i = 0; i < c->n_ports; i++)
		for (j = 0; j < c->ports[i].n_eps; j++)
			if (c->ports[i].eps[j].local && c->ports[i].eps[j].ready)
				ips[n++] = c->ports[i].eps[j].re.ip;
	if (n)
		qsort(ips, n, sizeof(*ips), cmp_str);
	c->local_ready = 0;
	for (i = 0; i < n; i++)
		c->local_ready += i == 0 || strcmp(ips[i - 1], ips[i]) != 0;
	return 0;
}

static int compile(const struct proxy_tracker *t, const struct tsvc *s, enum rules_family f,
		   struct compiled **out)
{
	const struct informer_service *svc = s->svc;
	struct compiled *c;
	const char *cip;
	size_t i, j;
	int err;

	*out = NULL;
	if (!svc || skip_service(svc))
		return 0;
	cip = cluster_ip_of(svc, f);
	if (!cip)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ports = arena_zalloc(&c->arena, svc->n_ports * sizeof(*c->ports));
	if (!c->ports) {
		err = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < svc->n_ports; i++) {
		/* a repeated (name, protocol) replaces the earlier one, as upstream's map does */
		for (j = 0; j < c->n_ports; j++)
			if (strcmp(svc->ports[j].name, svc->ports[i].name) == 0 &&
			    svc->ports[j].protocol == svc->ports[i].protocol)
				break;
		memset(&c->ports[j], 0, sizeof(c->ports[j]));
		err = compile_port(t, c, s, f, cip, &svc->ports[i], &c->ports[j]);
		if (err)
			goto out_free;
		if (j == c->n_ports)
			c->n_ports++;
		if (c->ports[j].rp.hc_node_port)
			c->hc_node_port = c->ports[j].rp.hc_node_port;
	}
	err = count_local_ready(c);
	if (err)
		goto out_free;
	*out = c;
	return 0;

out_free:
	compiled_free(c);
	return err;
}

/* ---- snapshots --------------------------------------------------------- */

struct walk {
	struct proxy_tracker *t;
	enum rules_family family;
	const struct proxy_port **ports;
	size_t n;
	size_t cap;
	size_t total_eps;
	int err;
};

static int recompile(struct proxy_tracker *t, struct tsvc *s)
{
	struct compiled *c4, *c6;
	int err;

	err = compile(t, s, RULES_IPV4, &c4);
	if (err)
		return err;
	err = compile(t, s, RULES_IPV6, &c6);
	if (err) {
		compiled_free(c4);
		return err;
	}
	compiled_free(s->comp[0]);
	compiled_free(s->comp[1]);
	s->comp[0] = c4;
	s->comp[1] = c6;
	s->dirty = false;
	return 0;
}

static void collect(const void *nodep, VISIT which, void *arg)
{
	struct tsvc *s = *(struct tsvc *const *)nodep;
	struct walk *w = arg;
	struct compiled *c;
	size_t i;

	if ((which != postorder && which != leaf) || w->err)
		return;
	if (s->dirty) {
		w->err = recompile(w->t, s);
		if (w->err)
			return;
	}
	c = s->comp[fam_idx(w->family)];
	if (!c)
		return;
	if (w->n + c->n_ports > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		void *p;

		while (cap < w->n + c->n_ports)
			cap *= 2;
		p = realloc(w->ports, cap * sizeof(*w->ports));
		if (!p) {
			w->err = -ENOMEM;
			return;
		}
		w->ports = p;
		w->cap = cap;
	}
	for (i = 0; i < c->n_ports; i++) {
		w->ports[w->n++] = &c->ports[i];
		w->total_eps += c->ports[i].n_eps;
	}
}

static int cmp_pp(const void *a, const void *b)
{
	const struct proxy_port *x = *(const struct proxy_port *const *)a;
	const struct proxy_port *y = *(const struct proxy_port *const *)b;
	const struct rules_svc_port *px = &x->rp, *py = &y->rp;

	return cmp_rp(&px, &py);
}

int proxy_tracker_snapshot(struct proxy_tracker *t, enum rules_family family,
			   struct proxy_snapshot *snap)
{
	struct walk w = { .t = t, .family = family };
	size_t i;

	memset(snap, 0, sizeof(*snap));
	twalk_r(t->svcs, collect, &w);
	if (w.err) {
		free(w.ports);
		return w.err;
	}
	if (w.n)
		qsort(w.ports, w.n, sizeof(*w.ports), cmp_pp);
	snap->rps = malloc((w.n ? w.n : 1) * sizeof(*snap->rps));
	if (!snap->rps) {
		free(w.ports);
		return -ENOMEM;
	}
	for (i = 0; i < w.n; i++)
		snap->rps[i] = &w.ports[i]->rp;
	snap->ports = w.ports;
	snap->n_ports = w.n;
	snap->gen = t->gen;
	snap->state.family = family;
	snap->state.ports = snap->rps;
	snap->state.n_ports = w.n;
	snap->state.total_endpoints = w.total_eps;
	return 0;
}

void proxy_snapshot_cleanup(struct proxy_snapshot *snap)
{
	free(snap->ports);
	free(snap->rps);
	memset(snap, 0, sizeof(*snap));
}

struct hc_walk {
	struct proxy_tracker *t;
	enum rules_family family;
	struct proxy_hc_service *out;
	size_t n;
	size_t cap;
	int err;
};

static void collect_hc(const void *nodep, VISIT which, void *arg)
{
	struct tsvc *s = *(struct tsvc *const *)nodep;
	struct hc_walk *w = arg;
	struct compiled *c;

	if ((which != postorder && which != leaf) || w->err)
		return;
	if (s->dirty) {
		w->err = recompile(w->t, s);
		if (w->err)
			return;
	}
	c = s->comp[fam_idx(w->family)];
	if (!c || !c->hc_node_port)
		return;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		void *p = realloc(w->out, cap * sizeof(*w->out));

		if (!p) {
			w->err = -ENOMEM;
			return;
		}
		w->out = p;
		w->cap = cap;
	}
	w->out[w->n].ns = s->ns;
	w->out[w->n].name = s->name;
	w->out[w->n].hc_node_port = c->hc_node_port;
	w->out[w->n].local_ready = c->local_ready;
	w->n++;
}

long proxy_tracker_hc_services(struct proxy_tracker *t, enum rules_family family,
			       struct proxy_hc_service **out)
{
	struct hc_walk w = { .t = t, .family = family };

	twalk_r(t->svcs, collect_hc, &w);
	if (w.err) {
		free(w.out);
		return w.err;
	}
	*out = w.out;
	return (long)w.n;
}
