/*
 * test/proxy_ct/ct_driver.c - runs proxy/conntrack.c and proxy/node.c for
 * real, for test/proxy_ct/run.sh, which calls it inside throwaway network
 * namespaces only.
 *
 *   ct_driver reconcile [--async] SPEC   plan from SPEC, reconcile, print the result
 *   ct_driver udp-send SPORT DST DPORT    one datagram from port SPORT
 *   ct_driver ct-create N SRC SPORT0 DST DPORT REPLY_SRC REPLY_SPORT
 *                                        N UDP entries (sports SPORT0..), DNAT-shaped
 *   ct_driver local-addrs                proxy_node_local_addrs(), one per line
 *   ct_driver nfacct-available           prints yes or no
 *   ct_driver nfacct-ensure NAME
 *   ct_driver node-setup SYS KEY=VALUE... proxy_node_setup() with /proc/sys and
 *                                        a fake /sys at SYS; prints ret=N
 *
 * SPEC, one item per line ('#' comments):
 *   family 4|6
 *   svc udp|tcp CLUSTER_IP PORT NODE_PORT [lb=IP]... [ext=IP]...
 *   ep IP PORT [notserving] [terminating]       (of the svc above it)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <uv.h>

#include "proxy/config.h"
#include "proxy/conntrack.h"
#include "proxy/node.h"

#define MAX_SVCS 16
#define MAX_EPS	 16
#define MAX_IPS	 4

struct spec_svc {
	struct proxy_port port;
	struct proxy_endpoint eps[MAX_EPS];
	char ep_ip[MAX_EPS][64], ep_str[MAX_EPS][80];
	char cluster_ip[64];
	char lb[MAX_IPS][64], ext[MAX_IPS][64];
	const char *lbp[MAX_IPS], *extp[MAX_IPS];
};

struct spec {
	enum rules_family family;
	struct spec_svc svcs[MAX_SVCS];
	const struct proxy_port *pp[MAX_SVCS];
	size_t n;
};

static int die(const char *what)
{
	fprintf(stderr, "ct_driver: %s\n", what);
	return 2;
}

static uint16_t port_arg(const char *s)
{
	long v = strtol(s, NULL, 10);

	return v > 0 && v <= 65535 ? (uint16_t)v : 0;
}

static int spec_svc_line(struct spec *sp, char *save)
{
	struct spec_svc *s;
	char *tok;

	if (sp->n == MAX_SVCS)
		return -1;
	s = &sp->svcs[sp->n];
	tok = strtok_r(NULL, " \t", &save);
	if (!tok)
		return -1;
	s->port.rp.proto = strcmp(tok, "udp") == 0 ? RULES_PROTO_UDP : RULES_PROTO_TCP;
	s->port.udp = s->port.rp.proto == RULES_PROTO_UDP;
	tok = strtok_r(NULL, " \t", &save);
	if (!tok)
		return -1;
	snprintf(s->cluster_ip, sizeof(s->cluster_ip), "%s", tok);
	s->port.rp.cluster_ip = s->cluster_ip;
	tok = strtok_r(NULL, " \t", &save);
	s->port.rp.port = tok ? port_arg(tok) : 0;
	tok = strtok_r(NULL, " \t", &save);
	if (!s->port.rp.port || !tok)
		return -1;
	s->port.rp.node_port = port_arg(tok);
	while ((tok = strtok_r(NULL, " \t", &save))) {
		if (strncmp(tok, "lb=", 3) == 0 && s->port.rp.n_lb_ips < MAX_IPS) {
			snprintf(s->lb[s->port.rp.n_lb_ips], 64, "%s", tok + 3);
			s->lbp[s->port.rp.n_lb_ips] = s->lb[s->port.rp.n_lb_ips];
			s->port.rp.n_lb_ips++;
		} else if (strncmp(tok, "ext=", 4) == 0 && s->port.rp.n_external_ips < MAX_IPS) {
			snprintf(s->ext[s->port.rp.n_external_ips], 64, "%s", tok + 4);
			s->extp[s->port.rp.n_external_ips] = s->ext[s->port.rp.n_external_ips];
			s->port.rp.n_external_ips++;
		} else {
			return -1;
		}
	}
	s->port.rp.lb_ips = s->lbp;
	s->port.rp.external_ips = s->extp;
	s->port.eps = s->eps;
	sp->pp[sp->n] = &s->port;
	sp->n++;
	return 0;
}

static int spec_ep_line(struct spec *sp, char *save)
{
	struct spec_svc *s;
	struct proxy_endpoint *e;
	char *ip, *port, *tok;
	size_t i;

	if (!sp->n)
		return -1;
	s = &sp->svcs[sp->n - 1];
	i = s->port.n_eps;
	ip = strtok_r(NULL, " \t", &save);
	port = strtok_r(NULL, " \t", &save);
	if (i == MAX_EPS || !ip || !port || !port_arg(port))
		return -1;
	e = &s->eps[i];
	snprintf(s->ep_ip[i], sizeof(s->ep_ip[i]), "%s", ip);
	snprintf(s->ep_str[i], sizeof(s->ep_str[i]), sp->family == RULES_IPV6 ? "[%s]:%s" : "%s:%s",
		 ip, port);
	e->re.ip = s->ep_ip[i];
	e->re.str = s->ep_str[i];
	e->serving = e->ready = true;
	while ((tok = strtok_r(NULL, " \t", &save))) {
		if (strcmp(tok, "notserving") == 0)
			e->serving = e->ready = false;
		else if (strcmp(tok, "terminating") == 0) {
			e->terminating = true;
			e->ready = false;
		} else
			return -1;
	}
	s->port.n_eps++;
	return 0;
}

static int spec_load(const char *path, struct spec *sp)
{
	char line[512], *save, *tok;
	int lineno = 0, err = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	sp->family = RULES_IPV4;
	while (!err && fgets(line, sizeof(line), f)) {
		lineno++;
		line[strcspn(line, "#\n")] = '\0';
		tok = strtok_r(line, " \t", &save);
		if (!tok)
			continue;
		if (strcmp(tok, "family") == 0) {
			tok = strtok_r(NULL, " \t", &save);
			sp->family = tok && strcmp(tok, "6") == 0 ? RULES_IPV6 : RULES_IPV4;
		} else if (strcmp(tok, "svc") == 0) {
			err = spec_svc_line(sp, save);
		} else if (strcmp(tok, "ep") == 0) {
			err = spec_ep_line(sp, save);
		} else {
			err = -1;
		}
	}
	fclose(f);
	if (err)
		fprintf(stderr, "ct_driver: %s:%d: bad line\n", path, lineno);
	return err;
}

static void print_result(const struct proxy_ct_result *res)
{
	printf("examined=%zu deleted=%zu err=%d\n", res->examined, res->deleted, res->err);
}

static void async_done(void *arg, const struct proxy_ct_result *res)
{
	*(struct proxy_ct_result *)arg = *res;
	print_result(res);
}

static int cmd_reconcile(int argc, char **argv)
{
	struct spec *sp = calloc(1, sizeof(*sp));
	struct proxy_snapshot snap = { 0 };
	struct proxy_ct_result res = { .err = -EINPROGRESS };
	struct proxy_ct_plan *plan;
	bool async = argc > 1 && strcmp(argv[0], "--async") == 0;
	int ret;

	if (!sp || argc < 1 || spec_load(argv[async ? 1 : 0], sp)) {
		free(sp);
		return die("reconcile: cannot load the spec");
	}
	snap.state.family = sp->family;
	snap.ports = sp->pp;
	snap.n_ports = sp->n;
	ret = proxy_ct_plan_build(&snap, &plan);
	free(sp); /* the plan owns what it needs */
	if (ret)
		return die("reconcile: cannot build the plan");
	if (async) {
		uv_loop_t loop;

		if (uv_loop_init(&loop))
			return die("reconcile: uv_loop_init");
		if (proxy_conntrack_reconcile_async(&loop, plan, async_done, &res))
			return die("reconcile: cannot queue the work");
		uv_run(&loop, UV_RUN_DEFAULT);
		if (uv_loop_close(&loop))
			return die("reconcile: uv_loop_close != 0");
	} else {
		proxy_conntrack_reconcile(plan, &res);
		print_result(&res);
	}
	return res.err ? 1 : 0;
}

static int sockaddr_of(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len = sizeof(*in);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return AF_INET6;
	}
	return -1;
}

static int cmd_udp_send(int argc, char **argv)
{
	struct sockaddr_storage dst, src;
	socklen_t dlen, slen;
	int fam, fd, ret = 0;

	if (argc != 3)
		return die("udp-send SPORT DST DPORT");
	fam = sockaddr_of(argv[1], port_arg(argv[2]), &dst, &dlen);
	if (fam < 0)
		return die("udp-send: bad address");
	if (sockaddr_of(fam == AF_INET ? "0.0.0.0" : "::", port_arg(argv[0]), &src, &slen) != fam)
		return die("udp-send: bad source");
	fd = socket(fam, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&src, slen) ||
	    sendto(fd, "x", 1, 0, (struct sockaddr *)&dst, dlen) != 1) {
		perror("ct_driver: udp-send");
		ret = 1;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

static void set_addr(struct nf_conntrack *ct, int fam, enum nf_conntrack_attr v4,
		     enum nf_conntrack_attr v6, const char *ip)
{
	unsigned char a[16];

	inet_pton(fam, ip, a);
	nfct_set_attr(ct, fam == AF_INET ? v4 : v6, a);
}

static int cmd_ct_create(int argc, char **argv)
{
	struct nfct_handle *h;
	long i, n;
	int fam, ret = 0;
	unsigned char probe[16];

	if (argc != 7)
		return die("ct-create N SRC SPORT0 DST DPORT REPLY_SRC REPLY_SPORT");
	n = strtol(argv[0], NULL, 10);
	fam = inet_pton(AF_INET, argv[1], probe) == 1 ? AF_INET : AF_INET6;
	h = nfct_open(CONNTRACK, 0);
	if (!h)
		return die("ct-create: nfct_open");
	for (i = 0; i < n && !ret; i++) {
		struct nf_conntrack *ct = nfct_new();
		uint16_t sport = (uint16_t)(port_arg(argv[2]) + i);

		if (!ct) {
			ret = die("ct-create: nfct_new");
			break;
		}
		nfct_set_attr_u8(ct, ATTR_L3PROTO, (uint8_t)fam);
		nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_UDP);
		set_addr(ct, fam, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC, argv[1]);
		set_addr(ct, fam, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST, argv[3]);
		nfct_set_attr_u16(ct, ATTR_ORIG_PORT_SRC, htons(sport));
		nfct_set_attr_u16(ct, ATTR_ORIG_PORT_DST, htons(port_arg(argv[4])));
		set_addr(ct, fam, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC, argv[5]);
		set_addr(ct, fam, ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST, argv[1]);
		nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(port_arg(argv[6])));
		nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(sport));
		nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, (uint8_t)fam);
		nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, IPPROTO_UDP);
		nfct_set_attr_u32(ct, ATTR_TIMEOUT, 3600);
		if (nfct_query(h, NFCT_Q_CREATE, ct) < 0) {
			perror("ct_driver: ct-create");
			ret = 1;
		}
		nfct_destroy(ct);
	}
	nfct_close(h);
	return ret;
}

static int cmd_local_addrs(void)
{
	struct proxy_strlist l = { 0 };
	size_t i;
	int n = proxy_node_local_addrs(&l);

	if (n < 0)
		return die("local-addrs failed");
	for (i = 0; i < l.n; i++)
		printf("%s\n", l.v[i]);
	proxy_strlist_clear(&l);
	return 0;
}

static int cmd_node_setup(int argc, char **argv)
{
	struct proxy_node_paths paths = { NULL, NULL };
	struct proxy_config c;
	bool route_localnet = false;
	int i, ret;

	if (argc < 1)
		return die("node-setup SYS KEY=VALUE...");
	memset(&c, 0, sizeof(c));
	paths.sys = argv[0];
	for (i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		long long v = eq ? strtoll(eq + 1, NULL, 10) : 0;

		if (!eq)
			return die("node-setup: KEY=VALUE");
		*eq = '\0';
		if (strcmp(argv[i], "max_per_core") == 0)
			c.conntrack_max_per_core = (int32_t)v;
		else if (strcmp(argv[i], "min") == 0)
			c.conntrack_min = (int32_t)v;
		else if (strcmp(argv[i], "established_ms") == 0)
			c.conntrack_tcp_established_ms = v;
		else if (strcmp(argv[i], "close_wait_ms") == 0)
			c.conntrack_tcp_close_wait_ms = v;
		else if (strcmp(argv[i], "be_liberal") == 0)
			c.conntrack_tcp_be_liberal = v != 0;
		else if (strcmp(argv[i], "udp_ms") == 0)
			c.conntrack_udp_timeout_ms = v;
		else if (strcmp(argv[i], "udp_stream_ms") == 0)
			c.conntrack_udp_stream_timeout_ms = v;
		else if (strcmp(argv[i], "route_localnet") == 0)
			route_localnet = v != 0;
		else
			return die("node-setup: unknown key");
	}
	ret = proxy_node_setup(&c, route_localnet, &paths);
	printf("ret=%d be_liberal=%d\n", ret, proxy_node_tcp_be_liberal(&paths));
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return die("usage: see the comment at the top of ct_driver.c");
	if (strcmp(argv[1], "reconcile") == 0)
		return cmd_reconcile(argc - 2, argv + 2);
	if (strcmp(argv[1], "udp-send") == 0)
		return cmd_udp_send(argc - 2, argv + 2);
	if (strcmp(argv[1], "ct-create") == 0)
		return cmd_ct_create(argc - 2, argv + 2);
	if (strcmp(argv[1], "local-addrs") == 0)
		return cmd_local_addrs();
	if (strcmp(argv[1], "nfacct-available") == 0) {
		printf("%s\n", proxy_node_nfacct_available() ? "yes" : "no");
		return 0;
	}
	if (strcmp(argv[1], "nfacct-ensure") == 0 && argc == 3)
		return proxy_node_nfacct_ensure(argv[2]) ? 1 : 0;
	if (strcmp(argv[1], "node-setup") == 0)
		return cmd_node_setup(argc - 2, argv + 2);
	return die("unknown command");
}
