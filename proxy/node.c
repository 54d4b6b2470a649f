/*
 * proxy/node.c - node setup as upstream does it at start (cmd/kube-proxy/app
 * server_linux.go setupConntrack + conntrack.go, and the proxier's
 * route_localnet), the node's interface addresses (GetNodeIPs), and nfacct
 * counters over nfnetlink (pkg/proxy/util/nfacct).
 */
#include "proxy/node.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_acct.h>

#include "proxy/log.h"

#define SYSCTL_CT_MAX	  "net/netfilter/nf_conntrack_max"
#define SYSCTL_BE_LIBERAL "net/netfilter/nf_conntrack_tcp_be_liberal"
#define SYS_HASHSIZE	  "module/nf_conntrack/parameters/hashsize"
#define SYS_CPUS_ONLINE	  "devices/system/cpu/online"

/* Any name does for the probe: the answer is the counter or ENOENT. */
#define NFACCT_PROBE_NAME "kube-iptables-proxy-probe"
/* A counter's answer is under 100 bytes. */
#define NFACCT_BUF_SIZE 8192

/* ---- sysctl files ----------------------------------------------------- */

static const char *proc_sys_root(const struct proxy_node_paths *p)
{
	return p && p->proc_sys ? p->proc_sys : "/proc/sys";
}

static const char *sys_root(const struct proxy_node_paths *p)
{
	return p && p->sys ? p->sys : "/sys";
}

/* The first line of @path into @buf. Returns 0 or a negative errno. */
static int read_line(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		err = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return err;
}

/* One integer, surrounding whitespace allowed. Returns 0, -EINVAL or -errno. */
static int read_ll(const char *path, long long *out)
{
	char buf[64], *end;
	int err;

	err = read_line(path, buf, sizeof(buf));
	if (err)
		return err;
	errno = 0;
	*out = strtoll(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	while (isspace((unsigned char)*end))
		end++;
	return *end ? -EINVAL : 0;
}

static int write_ll(const char *path, long long v)
{
	char buf[32];
	ssize_t n;
	int fd, len, err = 0;

	len = snprintf(buf, sizeof(buf), "%lld", v);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, buf, (size_t)len);
	if (n < 0)
		err = -errno;
	else if (n != len)
		err = -EIO;
	if (close(fd) && !err)
		err = -errno;
	return err;
}

/* Refusals of a global knob from a non-initial network namespace (0444
 * sysctl: EACCES; hashsize: EOPNOTSUPP) or with a read-only /sys. */
static bool refused(int err)
{
	return err == -EACCES || err == -EPERM || err == -EROFS || err == -EOPNOTSUPP;
}

static void warn_global(const char *path, long long value, int err)
{
	/* upstream's errReadOnlySysFS node event, as a log line */
	PLOG_W("Cannot modify conntrack limits from here (read-only /sys or not the initial "
	       "network namespace), problems may arise later",
	       "path=\"%s\" value=%lld err=\"%s\"", path, value, strerror(-err));
}

/*
 * Write @value to @dir/@entry and log it. Returns 0, 1 when @global and the
 * kernel refused (warned, not an error), or a negative errno (logged).
 */
static int knob_write(const char *dir, const char *entry, long long value, bool global)
{
	char path[PATH_MAX];
	int err;

	snprintf(path, sizeof(path), "%s/%s", dir, entry);
	err = write_ll(path, value);
	if (!err) {
		PLOG_I(0, "Set sysctl", "entry=\"%s\" value=%lld", entry, value);
		return 0;
	}
	if (global && refused(err)) {
		warn_global(path, value, err);
		return 1;
	}
	PLOG_E("Failed to set sysctl", "entry=\"%s\" path=\"%s\" value=%lld err=\"%s\"", entry,
	       path, value, strerror(-err));
	return err;
}

/* knob_write() unless it already holds @value (an unreadable one is written). */
static int knob_ensure(const char *dir, const char *entry, long long value, bool global)
{
	char path[PATH_MAX];
	long long cur;

	snprintf(path, sizeof(path), "%s/%s", dir, entry);
	if (read_ll(path, &cur) == 0 && cur == value)
		return 0;
	return knob_write(dir, entry, value, global);
}

/* upstream SetMax: the hash table gets max/4 buckets when it has fewer. */
static int hashsize_ensure(const char *sys, long long max)
{
	char path[PATH_MAX];
	long long cur;
	int err;

	snprintf(path, sizeof(path), "%s/%s", sys, SYS_HASHSIZE);
	err = read_ll(path, &cur);
	if (err && refused(err)) {
		warn_global(path, max / 4, err);
		return 1;
	}
	if (err) {
		PLOG_E("Failed to read conntrack hashsize", "path=\"%s\" err=\"%s\"", path,
		       strerror(-err));
		return err;
	}
	if (cur >= max / 4)
		return 0;
	return knob_write(sys, SYS_HASHSIZE, max / 4, true);
}

/* Online CPUs as sysfs lists them ("0-3,8"), as upstream counts them first;
 * what libc says when that is unreadable. */
static long cpu_count(const char *sys)
{
	char path[PATH_MAX], buf[1024] = "", *p, *end;
	long n = 0, a, b;

	snprintf(path, sizeof(path), "%s/%s", sys, SYS_CPUS_ONLINE);
	if (read_line(path, buf, sizeof(buf)))
		goto fallback;
	for (p = buf; *p && !isspace((unsigned char)*p); p = *end ? end + 1 : end) {
		a = strtol(p, &end, 10);
		if (end == p || a < 0)
			goto fallback;
		b = a;
		if (*end == '-') {
			p = end + 1;
			b = strtol(p, &end, 10);
			if (end == p || b < a)
				goto fallback;
		}
		if (*end && *end != ',' && !isspace((unsigned char)*end))
			goto fallback;
		n += b - a + 1;
	}
	if (n > 0)
		return n;
fallback:
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

/* upstream getConntrackMax: max(min, maxPerCore * CPUs) when maxPerCore > 0. */
static long long conntrack_max(const struct proxy_config *c, long cpus)
{
	long long scaled;

	if (c->conntrack_max_per_core <= 0)
		return 0;
	scaled = (long long)c->conntrack_max_per_core * cpus;
	return scaled > c->conntrack_min ? scaled : c->conntrack_min;
}

int proxy_node_setup(const struct proxy_config *c, bool route_localnet,
		     const struct proxy_node_paths *paths)
{
	const char *proc_sys = proc_sys_root(paths), *sys = sys_root(paths);
	/* upstream's order: setupConntrack, then the proxier's route_localnet */
	const struct {
		const char *entry;
		long long value; /* seconds, as Duration / time.Second truncates */
		bool wanted;
	} knobs[] = {
		{ "net/netfilter/nf_conntrack_tcp_timeout_established",
		  c->conntrack_tcp_established_ms / 1000, c->conntrack_tcp_established_ms > 0 },
		{ "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
		  c->conntrack_tcp_close_wait_ms / 1000, c->conntrack_tcp_close_wait_ms > 0 },
		{ SYSCTL_BE_LIBERAL, 1, c->conntrack_tcp_be_liberal },
		{ "net/netfilter/nf_conntrack_udp_timeout", c->conntrack_udp_timeout_ms / 1000,
		  c->conntrack_udp_timeout_ms > 0 },
		{ "net/netfilter/nf_conntrack_udp_timeout_stream",
		  c->conntrack_udp_stream_timeout_ms / 1000,
		  c->conntrack_udp_stream_timeout_ms > 0 },
		{ "net/ipv4/conf/all/route_localnet", 1, route_localnet },
	};
	long long max = conntrack_max(c, cpu_count(sys));
	size_t i;
	int err;

	if (max > 0) {
		err = knob_ensure(proc_sys, SYSCTL_CT_MAX, max, true);
		/* upstream looks at hashsize only once the limit is set */
		if (!err)
			err = hashsize_ensure(sys, max);
		if (err < 0)
			return err;
	}
	for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		if (!knobs[i].wanted)
			continue;
		err = knob_ensure(proc_sys, knobs[i].entry, knobs[i].value, false);
		if (err)
			return err;
	}
	return 0;
}

bool proxy_node_tcp_be_liberal(const struct proxy_node_paths *paths)
{
	char path[PATH_MAX];
	long long v;

	snprintf(path, sizeof(path), "%s/%s", proc_sys_root(paths), SYSCTL_BE_LIBERAL);
	return read_ll(path, &v) == 0 && v != 0;
}

/* ---- interface addresses ---------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int proxy_node_local_addrs(struct proxy_strlist *out)
{
	struct proxy_strlist l = { 0 };
	struct ifaddrs *ifs, *ifa;
	char buf[INET6_ADDRSTRLEN];
	size_t i, n;
	int err = 0;

	if (getifaddrs(&ifs)) {
		err = -errno;
		PLOG_E("Failed to list interface addresses", "err=\"%s\"", strerror(-err));
		return err;
	}
	/* Every address, link-local ones included, as Go's net.InterfaceAddrs(). */
	for (ifa = ifs; ifa; ifa = ifa->ifa_next) {
		const void *a;

		if (!ifa->ifa_addr)
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET)
			a = &((const struct sockaddr_in *)(const void *)ifa->ifa_addr)->sin_addr;
		else if (ifa->ifa_addr->sa_family == AF_INET6)
			a = &((const struct sockaddr_in6 *)(const void *)ifa->ifa_addr)->sin6_addr;
		else
			continue;
		if (!inet_ntop(ifa->ifa_addr->sa_family, a, buf, sizeof(buf)))
			continue;
		err = proxy_strlist_add(&l, buf);
		if (err)
			goto out_free;
	}
	/* sorted and deduplicated (an address may sit on several interfaces) */
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), cmp_str);
	for (i = n = 0; i < l.n; i++) {
		if (n && strcmp(l.v[n - 1], l.v[i]) == 0)
			free(l.v[i]);
		else
			l.v[n++] = l.v[i];
	}
	l.n = n;
	proxy_strlist_clear(out);
	*out = l;
	freeifaddrs(ifs);
	return (int)n;

out_free:
	proxy_strlist_clear(&l);
	freeifaddrs(ifs);
	return err;
}

/* ---- nfacct ----------------------------------------------------------- */

/*
 * One acknowledged request to the nfacct subsystem about counter @name.
 * Returns 0 or the negative errno of the socket or the kernel's answer.
 */
struct nfacct_answer {
	uint64_t packets;
	bool seen;
};

static int nfacct_attr(const struct nlattr *a, void *arg)
{
	struct nfacct_answer *ans = arg;

	if (mnl_attr_get_type(a) == NFACCT_PKTS && mnl_attr_validate(a, MNL_TYPE_U64) >= 0) {
		ans->packets = be64toh(mnl_attr_get_u64(a));
		ans->seen = true;
	}
	return MNL_CB_OK;
}

static int nfacct_data(const struct nlmsghdr *nlh, void *arg)
{
	return mnl_attr_parse(nlh, sizeof(struct nfgenmsg), nfacct_attr, arg);
}

static int nfacct_request(uint16_t type, uint16_t flags, const char *name,
			  struct nfacct_answer *ans)
{
	char buf[NFACCT_BUF_SIZE] = { 0 }; /* libmnl leaves attribute padding as it finds it */
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfh;
	unsigned int portid;
	uint32_t seq = 1;
	ssize_t len;
	int ret = 0;

	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out_close;
	}
	portid = mnl_socket_get_portid(nl);

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (uint16_t)((NFNL_SUBSYS_ACCT << 8) | type);
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = AF_UNSPEC;
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	mnl_attr_put_strz(nlh, NFACCT_NAME, name);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out_close;
	}
	/* the counter (for a GET), then the ack or the error */
	for (;;) {
		len = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0) {
			ret = -errno;
			break;
		}
		ret = mnl_cb_run(buf, (size_t)len, seq, portid, ans ? nfacct_data : NULL, ans);
		if (ret < 0) {
			ret = -errno;
			break;
		}
		if (ret == MNL_CB_STOP)
			break;
	}
out_close:
	mnl_socket_close(nl);
	return ret;
}

bool proxy_node_nfacct_available(void)
{
	/* upstream nfacct.New(): a GET answers the counter or ENOENT where
	 * the subsystem exists (EINVAL without it, EPERM without privilege). */
	int err = nfacct_request(NFNL_MSG_ACCT_GET, 0, NFACCT_PROBE_NAME, NULL);

	if (err && err != -ENOENT) {
		PLOG_I(2, "nfacct is not available, nfacct based metrics won't be available",
		       "err=\"%s\"", strerror(-err));
		return false;
	}
	return true;
}

int proxy_node_nfacct_ensure(const char *name)
{
	int err;

	if (!name || !*name)
		return -EINVAL;
	if (strlen(name) >= NFACCT_NAME_MAX)
		return -ENAMETOOLONG;
	err = nfacct_request(NFNL_MSG_ACCT_GET, 0, name, NULL);
	if (err == -ENOENT) {
		err = nfacct_request(NFNL_MSG_ACCT_NEW, NLM_F_CREATE, name, NULL);
		/* EBUSY: someone created it in between */
		if (err == -EBUSY)
			err = 0;
	}
	if (err)
		PLOG_E("Failed to ensure nfacct counter", "name=\"%s\" err=\"%s\"", name,
		       strerror(-err));
	return err;
}

int proxy_node_nfacct_read(const char *name, uint64_t *packets)
{
	struct nfacct_answer ans = { 0 };
	int err;

	if (!name || strlen(name) >= NFACCT_NAME_MAX)
		return -EINVAL;
	err = nfacct_request(NFNL_MSG_ACCT_GET, 0, name, &ans);
	if (err)
		return err;
	if (!ans.seen)
		return -EPROTO;
	*packets = ans.packets;
	return 0;
}
