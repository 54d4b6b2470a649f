/*
 * proxy/conntrack.c - stale UDP conntrack entries (upstream
 * pkg/proxy/conntrack/cleanup.go).
 *
 * The plan is pure: every UDP service frontend (ClusterIP, LB IPs and
 * externalIPs with the port; NodePorts with a zero address) paired with each
 * of its serving endpoints, as binary keys in arrays sorted for bsearch().
 * The reconcile dumps the family's conntrack table over ctnetlink (libmnl for
 * the socket, libnetfilter_conntrack to parse and build the messages),
 * selects the entries as upstream does and deletes them in batches, every
 * delete acknowledged. An adapter: the only file here with <uv.h>.
 */
#include "proxy/conntrack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <uv.h>

#include "proxy/log.h"

/* An address and port as the conntrack tuple holds them. */
struct ct_key {
	uint8_t addr[16]; /* network order; IPv4 in the first 4 bytes; zero for a NodePort */
	uint16_t port;	  /* host order */
};

/* One frontend with one of its serving endpoints. */
struct ct_pair {
	struct ct_key fe;
	struct ct_key ep;
};

/* Frontend -> serving endpoints, as pairs sorted by (fe, ep). */
struct ct_map {
	struct ct_pair *v;
	size_t n, cap;
};

struct proxy_ct_plan {
	int family;		/* AF_INET or AF_INET6 */
	struct ct_map vip;	/* ClusterIP, LB IPs and externalIPs with the service port */
	struct ct_map nodeport; /* NodePorts (zero address) */
};

/* ---- plan (pure) ------------------------------------------------------ */

static int key_cmp(const struct ct_key *a, const struct ct_key *b)
{
	int c = memcmp(a->addr, b->addr, sizeof(a->addr));

	if (c)
		return c;
	return (a->port > b->port) - (a->port < b->port);
}

/* Pairs by frontend only: a bsearch() with it answers "is this a frontend". */
static int pair_cmp_fe(const void *a, const void *b)
{
	return key_cmp(&((const struct ct_pair *)a)->fe, &((const struct ct_pair *)b)->fe);
}

static int pair_cmp(const void *a, const void *b)
{
	int c = pair_cmp_fe(a, b);

	return c ? c : key_cmp(&((const struct ct_pair *)a)->ep, &((const struct ct_pair *)b)->ep);
}

static int key_parse(int family, const char *ip, uint16_t port, struct ct_key *out)
{
	memset(out, 0, sizeof(*out));
	if (!ip || inet_pton(family, ip, out->addr) != 1)
		return -EINVAL;
	out->port = port;
	return 0;
}

/* The port of upstream's Endpoint.String(): "ip:port" or "[ip]:port". */
static int endpoint_port(const char *str, uint16_t *port)
{
	const char *colon = str ? strrchr(str, ':') : NULL;
	char *end;
	unsigned long v;

	if (!colon || !colon[1])
		return -EINVAL;
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (errno || *end || v == 0 || v > UINT16_MAX)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

static int map_add(struct ct_map *m, const struct ct_key *fe, const struct ct_key *eps, size_t n)
{
	size_t i;

	if (m->cap - m->n < n) {
		size_t cap = m->cap ? m->cap : 64;
		struct ct_pair *v;

		while (cap - m->n < n)
			cap *= 2;
		v = realloc(m->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		m->v = v;
		m->cap = cap;
	}
	for (i = 0; i < n; i++) {
		m->v[m->n].fe = *fe;
		m->v[m->n].ep = eps[i];
		m->n++;
	}
	return 0;
}

/* Duplicate frontends (an externalIP shared by two services) keep the union
 * of their sets: an entry is stale only if no service serves it. */
static void map_sort(struct ct_map *m)
{
	if (m->n)
		qsort(m->v, m->n, sizeof(*m->v), pair_cmp);
}

/* One service IP frontend; addresses that are not of the family are ignored. */
static int add_ip_frontend(struct proxy_ct_plan *plan, const char *ip, uint16_t port,
			   const struct ct_key *eps, size_t n)
{
	struct ct_key fe;

	if (key_parse(plan->family, ip, port, &fe))
		return 0;
	return map_add(&plan->vip, &fe, eps, n);
}

static int add_port(struct proxy_ct_plan *plan, const struct rules_svc_port *rp,
		    const struct ct_key *eps, size_t n)
{
	size_t i;
	int err;

	err = add_ip_frontend(plan, rp->cluster_ip, rp->port, eps, n);
	for (i = 0; !err && i < rp->n_lb_ips; i++)
		err = add_ip_frontend(plan, rp->lb_ips[i], rp->port, eps, n);
	for (i = 0; !err && i < rp->n_external_ips; i++)
		err = add_ip_frontend(plan, rp->external_ips[i], rp->port, eps, n);
	if (!err && rp->node_port) {
		struct ct_key fe = { .port = rp->node_port };

		err = map_add(&plan->nodeport, &fe, eps, n);
	}
	return err;
}

/* The serving endpoints of @p into @eps (room for p->n_eps); returns the count. */
static size_t serving_set(int family, const struct proxy_port *p, struct ct_key *eps)
{
	size_t i, n = 0;

	for (i = 0; i < p->n_eps; i++) {
		const struct proxy_endpoint *e = &p->eps[i];
		uint16_t port;

		/* Serving only: readiness, terminating state, topology and
		 * traffic policy do not matter here (upstream). */
		if (!e->serving || endpoint_port(e->re.str, &port) ||
		    key_parse(family, e->re.ip, port, &eps[n]))
			continue;
		n++;
	}
	return n;
}

int proxy_ct_plan_build(const struct proxy_snapshot *snap, struct proxy_ct_plan **out)
{
	struct proxy_ct_plan *plan;
	struct ct_key *eps = NULL;
	size_t i, cap = 0;
	int err = 0;

	plan = calloc(1, sizeof(*plan));
	if (!plan)
		return -ENOMEM;
	plan->family = snap->state.family == RULES_IPV6 ? AF_INET6 : AF_INET;

	for (i = 0; i < snap->n_ports; i++) {
		const struct proxy_port *p = snap->ports[i];
		size_t n;

		if (p->rp.proto != RULES_PROTO_UDP || !p->n_eps)
			continue;
		if (p->n_eps > cap) {
			struct ct_key *v = realloc(eps, p->n_eps * sizeof(*v));

			if (!v) {
				err = -ENOMEM;
				goto out_free_plan;
			}
			eps = v;
			cap = p->n_eps;
		}
		n = serving_set(plan->family, p, eps);
		/* A service without serving endpoints needs no cleanup (upstream). */
		if (!n)
			continue;
		err = add_port(plan, &p->rp, eps, n);
		if (err)
			goto out_free_plan;
	}
	free(eps);
	map_sort(&plan->vip);
	map_sort(&plan->nodeport);
	*out = plan;
	return 0;

out_free_plan:
	free(eps);
	proxy_ct_plan_free(plan);
	return err;
}

void proxy_ct_plan_free(struct proxy_ct_plan *plan)
{
	if (!plan)
		return;
	free(plan->vip.v);
	free(plan->nodeport.v);
	free(plan);
}

/* The frontend is in @m and the endpoint is not one of its serving ones. */
static bool map_stale(const struct ct_map *m, const struct ct_pair *q)
{
	return m->n && bsearch(q, m->v, m->n, sizeof(*m->v), pair_cmp_fe) &&
	       !bsearch(q, m->v, m->n, sizeof(*m->v), pair_cmp);
}

/* upstream CleanStaleEntries' two filters, for one UDP entry */
static bool plan_selects(const struct proxy_ct_plan *plan, const struct ct_key *orig_dst,
			 const struct ct_key *reply_src)
{
	struct ct_pair q = { .fe = *orig_dst, .ep = *reply_src };

	if (map_stale(&plan->vip, &q))
		return true;
	memset(q.fe.addr, 0, sizeof(q.fe.addr));
	return map_stale(&plan->nodeport, &q);
}

bool proxy_ct_plan_selects(const struct proxy_ct_plan *plan, int l4proto, const char *orig_dst,
			   uint16_t orig_dport, const char *reply_src, uint16_t reply_sport)
{
	struct ct_key dst, src;

	if (l4proto != IPPROTO_UDP || key_parse(plan->family, orig_dst, orig_dport, &dst) ||
	    key_parse(plan->family, reply_src, reply_sport, &src))
		return false;
	return plan_selects(plan, &dst, &src);
}

/* ---- reconcile (netlink) ---------------------------------------------- */

/* Room for the largest dump message the kernel sends into a 32 KiB read. */
#define CT_BUF_SIZE 32768
/* Deletes per send: their acks (one skb each) must fit the socket's receive
 * buffer, since the kernel queues them all before sendmsg() returns. */
#define CT_BATCH_SIZE 8192
/* A delete (orig tuple, zones, id) is ~130 bytes; nfct_nlmsg_build() does not
 * check bounds, so every message gets this much room. */
#define CT_DEL_MSG_MAX 512
/* The kernel answers within milliseconds; a missing answer (an ack lost to a
 * full receive buffer) must not hold a thread-pool thread forever. */
#define CT_RECV_TIMEOUT_S 30

enum {
	VICTIM_ID = 1 << 0,
	VICTIM_ZONE = 1 << 1,
	VICTIM_ORIG_ZONE = 1 << 2,
};

/* What a delete needs of a selected entry (its original tuple). */
struct ct_victim {
	uint8_t src[16], dst[16];
	uint16_t sport, dport; /* network order */
	uint32_t id;
	uint16_t zone, orig_zone;
	unsigned int flags; /* VICTIM_* */
};

struct ct_run {
	const struct proxy_ct_plan *plan;
	struct mnl_socket *nl;
	unsigned int portid;
	uint32_t seq;
	char *buf; /* CT_BUF_SIZE */
	struct ct_victim *v;
	size_t n_v, cap_v;
	size_t examined;
	bool interrupted; /* NLM_F_DUMP_INTR seen: the dump may be incomplete */
};

static const char *family_name(int family)
{
	return family == AF_INET6 ? "IPv6" : "IPv4";
}

static double elapsed(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void put_request(struct ct_run *r, void *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfh;

	nlh->nlmsg_type = (uint16_t)((NFNL_SUBSYS_CTNETLINK << 8) | type);
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = ++r->seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = (uint8_t)r->plan->family;
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
}

/* One read; a signal during the wait is not an error, CT_RECV_TIMEOUT is. */
static ssize_t ct_recv(struct ct_run *r)
{
	ssize_t len;

	do {
		len = mnl_socket_recvfrom(r->nl, r->buf, CT_BUF_SIZE);
	} while (len < 0 && errno == EINTR);
	if (len < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
	return len;
}

/* The errno of an NLMSG_ERROR or NLMSG_DONE message (0: ack / clean end). */
static int msg_errno(const struct nlmsghdr *nlh)
{
	int e;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(e))
		return 0;
	memcpy(&e, mnl_nlmsg_get_payload(nlh), sizeof(e));
	return e > 0 ? -e : e;
}

static void addr_get(const struct nf_conntrack *ct, int family, enum nf_conntrack_attr v4,
		     enum nf_conntrack_attr v6, uint8_t *out)
{
	memset(out, 0, 16);
	if (family == AF_INET6) {
		memcpy(out, nfct_get_attr(ct, v6), 16);
	} else {
		uint32_t a = nfct_get_attr_u32(ct, v4);

		memcpy(out, &a, sizeof(a));
	}
}

static int victim_add(struct ct_run *r, const struct nf_conntrack *ct)
{
	struct ct_victim *v;

	if (r->n_v == r->cap_v) {
		size_t cap = r->cap_v ? r->cap_v * 2 : 256;

		v = realloc(r->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap_v = cap;
	}
	v = &r->v[r->n_v++];
	memset(v, 0, sizeof(*v));
	addr_get(ct, r->plan->family, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC, v->src);
	addr_get(ct, r->plan->family, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST, v->dst);
	v->sport = nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC);
	v->dport = nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST);
	/* The id makes the kernel refuse (ENOENT) to delete a newer entry
	 * that took over the same tuple in the meantime. */
	if (nfct_attr_is_set(ct, ATTR_ID) > 0) {
		v->id = nfct_get_attr_u32(ct, ATTR_ID);
		v->flags |= VICTIM_ID;
	}
	if (nfct_attr_is_set(ct, ATTR_ZONE) > 0) {
		v->zone = nfct_get_attr_u16(ct, ATTR_ZONE);
		v->flags |= VICTIM_ZONE;
	}
	if (nfct_attr_is_set(ct, ATTR_ORIG_ZONE) > 0) {
		v->orig_zone = nfct_get_attr_u16(ct, ATTR_ORIG_ZONE);
		v->flags |= VICTIM_ORIG_ZONE;
	}
	return 0;
}

static const enum nf_conntrack_attr needed_v4[] = {
	ATTR_ORIG_L3PROTO,  ATTR_ORIG_L4PROTO,	ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV4_DST,
	ATTR_ORIG_PORT_SRC, ATTR_ORIG_PORT_DST, ATTR_REPL_IPV4_SRC, ATTR_REPL_PORT_SRC,
};
static const enum nf_conntrack_attr needed_v6[] = {
	ATTR_ORIG_L3PROTO,  ATTR_ORIG_L4PROTO,	ATTR_ORIG_IPV6_SRC, ATTR_ORIG_IPV6_DST,
	ATTR_ORIG_PORT_SRC, ATTR_ORIG_PORT_DST, ATTR_REPL_IPV6_SRC, ATTR_REPL_PORT_SRC,
};

/* Whether @ct is a UDP entry of the family with every attribute we read. */
static bool entry_usable(const struct nf_conntrack *ct, int family)
{
	const enum nf_conntrack_attr *need = family == AF_INET6 ? needed_v6 : needed_v4;
	size_t i;

	for (i = 0; i < sizeof(needed_v4) / sizeof(needed_v4[0]); i++)
		if (nfct_attr_is_set(ct, need[i]) <= 0)
			return false;
	return nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO) == family &&
	       nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) == IPPROTO_UDP;
}

/* One dumped entry: select it or not. */
static int consider(struct ct_run *r, const struct nlmsghdr *nlh)
{
	int family = r->plan->family;
	struct ct_key dst, src;
	struct nf_conntrack *ct;
	int err = 0;

	r->examined++;
	ct = nfct_new();
	if (!ct)
		return -ENOMEM;
	if (nfct_nlmsg_parse(nlh, ct) < 0 || !entry_usable(ct, family))
		goto out_destroy;
	addr_get(ct, family, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST, dst.addr);
	dst.port = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
	addr_get(ct, family, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC, src.addr);
	src.port = ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC));
	if (plan_selects(r->plan, &dst, &src))
		err = victim_add(r, ct);
out_destroy:
	nfct_destroy(ct);
	return err;
}

/* Messages of one dump read. Returns 1 at the end of the dump, 0 for more,
 * or a negative errno. */
static int dump_chunk(struct ct_run *r, size_t len, uint32_t seq)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)r->buf;
	int left = (int)len, err;

	for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
		if (!mnl_nlmsg_portid_ok(nlh, r->portid) || !mnl_nlmsg_seq_ok(nlh, seq))
			continue;
		/* The table changed while being dumped: keep going with what
		 * arrives (upstream goes on with a partial result). */
		if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
			r->interrupted = true;
		switch (nlh->nlmsg_type) {
		case NLMSG_DONE:
			err = msg_errno(nlh);
			return err ? err : 1;
		case NLMSG_ERROR:
			err = msg_errno(nlh);
			if (err)
				return err;
			break;
		case NLMSG_NOOP:
			break;
		default:
			err = consider(r, nlh);
			if (err)
				return err;
		}
	}
	return 0;
}

static int ct_dump(struct ct_run *r)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)r->buf;
	uint32_t seq;
	ssize_t len;
	int err;

	put_request(r, r->buf, IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP);
	seq = nlh->nlmsg_seq;
	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		len = ct_recv(r);
		if (len < 0)
			return (int)len;
		err = dump_chunk(r, (size_t)len, seq);
	} while (err == 0);
	return err < 0 ? err : 0;
}

static int build_delete(struct ct_run *r, const struct ct_victim *v, void *buf)
{
	struct nlmsghdr *nlh = buf;
	struct nf_conntrack *ct;
	int family = r->plan->family, err = 0;

	put_request(r, buf, IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK);
	ct = nfct_new();
	if (!ct)
		return -ENOMEM;
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, (uint8_t)family);
	nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, IPPROTO_UDP);
	if (family == AF_INET6) {
		nfct_set_attr(ct, ATTR_ORIG_IPV6_SRC, v->src);
		nfct_set_attr(ct, ATTR_ORIG_IPV6_DST, v->dst);
	} else {
		uint32_t a;

		memcpy(&a, v->src, sizeof(a));
		nfct_set_attr_u32(ct, ATTR_ORIG_IPV4_SRC, a);
		memcpy(&a, v->dst, sizeof(a));
		nfct_set_attr_u32(ct, ATTR_ORIG_IPV4_DST, a);
	}
	nfct_set_attr_u16(ct, ATTR_ORIG_PORT_SRC, v->sport);
	nfct_set_attr_u16(ct, ATTR_ORIG_PORT_DST, v->dport);
	if (v->flags & VICTIM_ID)
		nfct_set_attr_u32(ct, ATTR_ID, v->id);
	if (v->flags & VICTIM_ZONE)
		nfct_set_attr_u16(ct, ATTR_ZONE, v->zone);
	if (v->flags & VICTIM_ORIG_ZONE)
		nfct_set_attr_u16(ct, ATTR_ORIG_ZONE, v->orig_zone);
	if (nfct_nlmsg_build(nlh, ct) < 0)
		err = -EINVAL;
	nfct_destroy(ct);
	return err;
}

struct ct_acks {
	size_t deleted; /* acked without error */
	size_t failed;	/* refused for another reason than "already gone" */
	int first_err;
};

/* Wait for the acks of the deletes with sequence numbers [seq0, seq0 + n). */
static int collect_acks(struct ct_run *r, uint32_t seq0, size_t n, struct ct_acks *a)
{
	size_t got = 0;

	while (got < n) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)r->buf;
		ssize_t len = ct_recv(r);
		int left, e;

		if (len < 0)
			return (int)len;
		left = (int)len;
		for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq - seq0 >= n ||
			    !mnl_nlmsg_portid_ok(nlh, r->portid))
				continue;
			got++;
			e = msg_errno(nlh);
			if (!e) {
				a->deleted++;
			} else if (e != -ENOENT) { /* ENOENT: expired or deleted meanwhile */
				a->failed++;
				if (!a->first_err)
					a->first_err = e;
			}
		}
	}
	return 0;
}

/* Delete every victim. Returns 0, the first refused delete's errno, or the
 * socket's errno when talking to the kernel failed. */
static int ct_delete(struct ct_run *r, struct ct_acks *a)
{
	size_t i = 0;
	int err;

	while (i < r->n_v) {
		size_t off = 0, start = i;
		uint32_t seq0 = r->seq + 1;

		/* nothing uninitialised (attribute padding) goes to the kernel */
		memset(r->buf, 0, CT_BATCH_SIZE);

		while (i < r->n_v && off + CT_DEL_MSG_MAX <= CT_BATCH_SIZE) {
			struct nlmsghdr *nlh = (struct nlmsghdr *)(r->buf + off);

			err = build_delete(r, &r->v[i], nlh);
			if (err)
				return err;
			off += MNL_ALIGN(nlh->nlmsg_len);
			i++;
		}
		if (mnl_socket_sendto(r->nl, r->buf, off) < 0)
			return -errno;
		err = collect_acks(r, seq0, i - start, a);
		if (err)
			return err;
	}
	return a->first_err;
}

static int ct_open(struct ct_run *r)
{
	const struct timeval tv = { .tv_sec = CT_RECV_TIMEOUT_S };
	int one = 1;

	r->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!r->nl)
		return -errno;
	if (mnl_socket_bind(r->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	r->portid = mnl_socket_get_portid(r->nl);
	if (setsockopt(mnl_socket_get_fd(r->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		return -errno;
	/* Acks without the request echoed back; a kernel without the option
	 * (< 4.3) sends the longer ones, which fit as well. */
	(void)mnl_socket_setsockopt(r->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	return 0;
}

/* Open, dump, delete; *@op names the step for the error log. */
static int reconcile_steps(struct ct_run *r, struct proxy_ct_result *res, struct ct_acks *acks,
			   const char **op)
{
	int err;

	*op = "open netlink socket";
	r->buf = malloc(CT_BUF_SIZE);
	if (!r->buf)
		return -ENOMEM;
	err = ct_open(r);
	if (err)
		return err;

	*op = "list conntrack entries";
	err = ct_dump(r);
	res->examined = r->examined;
	if (err == -EINTR || (!err && r->interrupted)) {
		PLOG_I(2, "Received a partial result, continuing to clean with partial result",
		       "ipFamily=\"%s\" entries=%zu", family_name(r->plan->family), r->examined);
		err = 0;
	}
	if (err)
		return err;

	*op = "clear conntrack entries";
	err = ct_delete(r, acks);
	res->deleted = acks->deleted;
	return err;
}

void proxy_conntrack_reconcile(struct proxy_ct_plan *plan, struct proxy_ct_result *res)
{
	struct ct_run r = { .plan = plan };
	struct ct_acks acks = { 0 };
	const char *fam = family_name(plan->family), *op;
	struct timespec t0;
	char eb[128];

	memset(res, 0, sizeof(*res));
	/* Nothing can be stale when no UDP service has a serving endpoint:
	 * skip the dump (upstream dumps, then matches nothing). */
	if (!plan->vip.n && !plan->nodeport.n) {
		proxy_ct_plan_free(plan);
		return;
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	PLOG_I(4, "Started to reconcile conntrack entries", "ipFamily=\"%s\"", fam);
	res->err = reconcile_steps(&r, res, &acks, &op);
	res->seconds = elapsed(&t0);
	if (res->err)
		PLOG_E("Failed to reconcile conntrack entries",
		       "op=\"%s\" ipFamily=\"%s\" entriesDeleted=%zu refused=%zu took=\"%.3fs\" "
		       "err=\"%s\"",
		       op, fam, res->deleted, acks.failed, res->seconds,
		       /* the GNU strerror_r: this may run in a worker thread */
		       strerror_r(-res->err, eb, sizeof(eb)));
	else
		PLOG_I(4, "Finished reconciling conntrack entries",
		       "ipFamily=\"%s\" entriesExamined=%zu entriesDeleted=%zu took=\"%.3fs\"", fam,
		       res->examined, res->deleted, res->seconds);

	if (r.nl)
		mnl_socket_close(r.nl);
	free(r.v);
	free(r.buf);
	proxy_ct_plan_free(plan);
}

/* ---- thread pool ------------------------------------------------------ */

struct ct_work {
	uv_work_t req;
	struct proxy_ct_plan *plan; /* NULL once the reconcile took it */
	struct proxy_ct_result res;
	void (*done)(void *arg, const struct proxy_ct_result *res);
	void *arg;
};

static void ct_work_run(uv_work_t *req)
{
	struct ct_work *w = req->data;

	proxy_conntrack_reconcile(w->plan, &w->res);
	w->plan = NULL;
}

static void ct_work_done(uv_work_t *req, int status)
{
	struct ct_work *w = req->data;

	/* UV_ECANCELED: uv_cancel() won before the work started. */
	if (status) {
		proxy_ct_plan_free(w->plan);
		memset(&w->res, 0, sizeof(w->res));
		w->res.err = status;
	}
	w->done(w->arg, &w->res);
	free(w);
}

int proxy_conntrack_reconcile_async(struct uv_loop_s *loop, struct proxy_ct_plan *plan,
				    void (*done)(void *arg, const struct proxy_ct_result *res),
				    void *arg)
{
	struct ct_work *w;
	int err;

	w = calloc(1, sizeof(*w));
	if (!w) {
		proxy_ct_plan_free(plan);
		return -ENOMEM;
	}
	w->req.data = w;
	w->plan = plan;
	w->done = done;
	w->arg = arg;
	err = uv_queue_work(loop, &w->req, ct_work_run, ct_work_done);
	if (err) {
		PLOG_E("Failed to queue conntrack reconcile", "err=\"%s\"", uv_strerror(err));
		proxy_ct_plan_free(plan);
		free(w);
	}
	return err;
}
