/*
 * test/test_proxy_node.c - node setup against a fake /proc/sys and /sys in a
 * temporary directory: which files get written with which values, nothing
 * written when the value is already there, and refusals of global knobs
 * being warnings. No root needed.
 *
 * An untouched file keeps its initial text, which always has a leading
 * space and a newline (" 65536\n"); a written one holds exactly the digits.
 * A read-only knob is a symlink to /proc/sys/kernel/ngroups_max, which
 * refuses writes with EACCES even to root and holds 65536.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/node.h"

#define RO_TARGET "/proc/sys/kernel/ngroups_max"

/* The files proxy_node_setup() may touch, relative to the fake root. */
enum knob {
	K_MAX,
	K_HASH,
	K_EST,
	K_CW,
	K_LIB,
	K_UDP,
	K_UDPS,
	K_RLN,
	K_N,
};

static const char *const knob_path[K_N] = {
	[K_MAX] = "proc/sys/net/netfilter/nf_conntrack_max",
	[K_HASH] = "sys/module/nf_conntrack/parameters/hashsize",
	[K_EST] = "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established",
	[K_CW] = "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait",
	[K_LIB] = "proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal",
	[K_UDP] = "proc/sys/net/netfilter/nf_conntrack_udp_timeout",
	[K_UDPS] = "proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream",
	[K_RLN] = "proc/sys/net/ipv4/conf/all/route_localnet",
};

#define CPUS_PATH "sys/devices/system/cpu/online"
#define RO	  "<read-only>"
#define ABSENT	  NULL

struct setup_case {
	const char *name;
	/* configuration */
	int32_t max_per_core, min;
	int64_t est_ms, cw_ms;
	bool liberal;
	int64_t udp_ms, udp_stream_ms;
	bool route_localnet;
	const char *cpus; /* devices/system/cpu/online */
	/* the tree before and after */
	const char *before[K_N];
	const char *after[K_N];
	int want_ret;
};

/* What a node looks like before: nothing set the way the config asks. */
#define STOCK                                                                                     \
	{                                                                                         \
		" 65536\n", " 16384\n", " 432000\n", " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" \
	}

static const struct setup_case cases[] = {
	{
		"upstream defaults on 8 CPUs",
		32768,
		131072,
		86400000,
		3600000,
		false,
		0,
		0,
		false,
		"0-7\n",
		STOCK,
		{ "262144", "65536", "86400", " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		0,
	},
	{
		"conntrack-min wins on 2 CPUs; hashsize already big enough",
		32768,
		131072,
		0,
		0,
		false,
		0,
		0,
		false,
		"0-1\n",
		{ " 65536\n", " 32768\n", " 432000\n", " 3600\n", " 0\n", " 30\n", " 120\n",
		  " 0\n" },
		{ "131072", " 32768\n", " 432000\n", " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		0,
	},
	{
		"a CPU list with holes counts 7 CPUs",
		32768,
		131072,
		0,
		0,
		false,
		0,
		0,
		false,
		"0,2-3,8-11\n",
		STOCK,
		{ "229376", "57344", " 432000\n", " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		0,
	},
	{
		"nothing is written when every value is already there",
		32768,
		131072,
		86400000,
		3600000,
		true,
		60000,
		180000,
		true,
		"0-7\n",
		{ " 262144\n", " 65536\n", " 86400\n", " 3600\n", " 1\n", " 60\n", " 180\n",
		  " 1\n" },
		{ " 262144\n", " 65536\n", " 86400\n", " 3600\n", " 1\n", " 60\n", " 180\n",
		  " 1\n" },
		0,
	},
	{
		"maxPerCore 0 leaves the limits alone",
		0,
		131072,
		0,
		0,
		false,
		0,
		0,
		false,
		"0-7\n",
		STOCK,
		STOCK,
		0,
	},
	{
		"be_liberal, UDP timeouts (truncated to seconds) and route_localnet",
		0,
		0,
		0,
		0,
		true,
		60000,
		180999,
		true,
		"0-7\n",
		STOCK,
		{ " 65536\n", " 16384\n", " 432000\n", " 3600\n", "1", "60", "180", "1" },
		0,
	},
	{
		"an unreadable current value is rewritten",
		0,
		0,
		0,
		7200000,
		false,
		0,
		0,
		false,
		"0-7\n",
		{ " 65536\n", " 16384\n", " 432000\n", "garbage\n", " 0\n", " 30\n", " 120\n",
		  " 0\n" },
		{ " 65536\n", " 16384\n", " 432000\n", "7200", " 0\n", " 30\n", " 120\n", " 0\n" },
		0,
	},
	{
		"read-only hashsize is a warning",
		131072,
		131072,
		86400000,
		0,
		false,
		0,
		0,
		false,
		"0-7\n",
		{ " 65536\n", RO, " 432000\n", " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		{ "1048576", RO, "86400", " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		0,
	},
	{
		"read-only nf_conntrack_max is a warning and hashsize is left alone",
		32768,
		131072,
		86400000,
		0,
		false,
		0,
		0,
		false,
		"0-7\n",
		{ RO, " 16384\n", " 432000\n", " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		{ RO, " 16384\n", "86400", " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		0,
	},
	{
		"a read-only namespaced knob is an error",
		0,
		0,
		0,
		0,
		false,
		0,
		0,
		true,
		"0-7\n",
		{ " 65536\n", " 16384\n", " 432000\n", " 3600\n", " 0\n", " 30\n", " 120\n", RO },
		{ " 65536\n", " 16384\n", " 432000\n", " 3600\n", " 0\n", " 30\n", " 120\n", RO },
		-EACCES,
	},
	{
		"a missing knob is an error and stops the setup",
		0,
		0,
		86400000,
		7200000,
		false,
		0,
		0,
		false,
		"0-7\n",
		{ " 65536\n", " 16384\n", ABSENT, " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		{ " 65536\n", " 16384\n", ABSENT, " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		-ENOENT,
	},
	{
		"a missing nf_conntrack_max is an error, not a refusal",
		32768,
		131072,
		86400000,
		0,
		false,
		0,
		0,
		false,
		"0-7\n",
		{ ABSENT, " 16384\n", " 432000\n", " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		{ ABSENT, " 16384\n", " 432000\n", " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		-ENOENT,
	},
	{
		"a missing hashsize is an error (upstream reads it)",
		32768,
		131072,
		86400000,
		0,
		false,
		0,
		0,
		false,
		"0-7\n",
		{ " 65536\n", ABSENT, " 432000\n", " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		{ "262144", ABSENT, " 432000\n", " 3600\n", " 0\n", " 30\n", " 120\n", " 0\n" },
		-ENOENT,
	},
};

/* ---- fake tree -------------------------------------------------------- */

static char root[256];

static void path_of(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", root, rel);
}

static void mkdirs(const char *path)
{
	char tmp[PATH_MAX], *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			fail_msg("mkdir %s: %s", tmp, strerror(errno));
		*p = '/';
	}
}

static void put(const char *rel, const char *content)
{
	char path[PATH_MAX];
	FILE *f;

	path_of(path, sizeof(path), rel);
	mkdirs(path);
	if (!content)
		return;
	if (strcmp(content, RO) == 0) {
		assert_int_equal(symlink(RO_TARGET, path), 0);
		return;
	}
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* The file's text, RO for the read-only symlink, NULL when absent. */
static const char *get(const char *rel, char *buf, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	struct stat st;
	size_t n;
	FILE *f;

	path_of(path, sizeof(path), rel);
	if (lstat(path, &st))
		return NULL;
	if (S_ISLNK(st.st_mode)) {
		ssize_t l = readlink(path, link, sizeof(link) - 1);

		assert_true(l > 0);
		link[l] = '\0';
		assert_string_equal(link, RO_TARGET);
		return RO;
	}
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Remove @dir and everything below it; symlinks are removed, not followed. */
static void rm_tree(const char *dir)
{
	if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) && errno != ENOENT)
		fail_msg("removing %s: %s", dir, strerror(errno));
}

static int tree_setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "%s/kip-node-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(root) ? 0 : -1;
}

static int tree_teardown(void **state)
{
	(void)state;
	rm_tree(root);
	return 0;
}

static void tree_paths(struct proxy_node_paths *p, char *proc_sys, char *sys)
{
	path_of(proc_sys, PATH_MAX, "proc/sys");
	path_of(sys, PATH_MAX, "sys");
	p->proc_sys = proc_sys;
	p->sys = sys;
}

static bool have_ro_target(void)
{
	return access(RO_TARGET, R_OK) == 0;
}

static void config_of(struct proxy_config *c, const struct setup_case *sc)
{
	memset(c, 0, sizeof(*c));
	c->conntrack_max_per_core = sc->max_per_core;
	c->conntrack_min = sc->min;
	c->conntrack_tcp_established_ms = sc->est_ms;
	c->conntrack_tcp_close_wait_ms = sc->cw_ms;
	c->conntrack_tcp_be_liberal = sc->liberal;
	c->conntrack_udp_timeout_ms = sc->udp_ms;
	c->conntrack_udp_stream_timeout_ms = sc->udp_stream_ms;
}

/* ---- tests ------------------------------------------------------------ */

static void setup_writes_exactly_what_differs(void **state)
{
	char proc_sys[PATH_MAX], sys[PATH_MAX], buf[128];
	struct proxy_node_paths paths;
	struct proxy_config c;
	size_t i, k;

	(void)state;
	if (!have_ro_target())
		skip();
	tree_paths(&paths, proc_sys, sys);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct setup_case *sc = &cases[i];
		int ret;

		rm_tree(root);
		assert_int_equal(mkdir(root, 0700), 0);
		for (k = 0; k < K_N; k++)
			put(knob_path[k], sc->before[k]);
		put(CPUS_PATH, sc->cpus);
		config_of(&c, sc);

		ret = proxy_node_setup(&c, sc->route_localnet, &paths);
		if (ret != sc->want_ret)
			fail_msg("%s: returned %d, want %d", sc->name, ret, sc->want_ret);
		for (k = 0; k < K_N; k++) {
			const char *got = get(knob_path[k], buf, sizeof(buf));
			const char *want = sc->after[k];

			if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0))
				fail_msg("%s: %s holds \"%s\", want \"%s\"", sc->name, knob_path[k],
					 got ? got : "(absent)", want ? want : "(absent)");
		}
	}
}

/* Without a CPU list in /sys, the count comes from libc. */
static void setup_counts_cpus_without_sysfs(void **state)
{
	char proc_sys[PATH_MAX], sys[PATH_MAX], buf[128], want[32];
	struct proxy_node_paths paths;
	struct proxy_config c;

	(void)state;
	tree_paths(&paths, proc_sys, sys);
	rm_tree(root);
	assert_int_equal(mkdir(root, 0700), 0);
	put(knob_path[K_MAX], " 0\n");
	put(knob_path[K_HASH], " 1000000000\n");
	memset(&c, 0, sizeof(c));
	c.conntrack_max_per_core = 1;
	assert_int_equal(proxy_node_setup(&c, false, &paths), 0);
	snprintf(want, sizeof(want), "%ld", sysconf(_SC_NPROCESSORS_ONLN));
	assert_string_equal(get(knob_path[K_MAX], buf, sizeof(buf)), want);
}

static void tcp_be_liberal_reads_the_sysctl(void **state)
{
	static const struct {
		const char *content;
		bool want;
	} reads[] = {
		{ " 1\n", true },   { "2", true },     { "0\n", false },
		{ "yes\n", false }, { ABSENT, false },
	};
	char proc_sys[PATH_MAX], sys[PATH_MAX];
	struct proxy_node_paths paths;
	size_t i;

	(void)state;
	tree_paths(&paths, proc_sys, sys);
	for (i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		rm_tree(root);
		assert_int_equal(mkdir(root, 0700), 0);
		put(knob_path[K_LIB], reads[i].content);
		if (proxy_node_tcp_be_liberal(&paths) != reads[i].want)
			fail_msg("be_liberal \"%s\": want %d",
				 reads[i].content ? reads[i].content : "(absent)", reads[i].want);
	}
}

static void local_addrs_are_canonical_sorted_and_unique(void **state)
{
	struct proxy_strlist l = { 0 };
	unsigned char bin[16];
	char canon[64];
	size_t i;
	int n, again;

	(void)state;
	n = proxy_node_local_addrs(&l);
	assert_true(n >= 0);
	assert_int_equal((size_t)n, l.n);
	for (i = 0; i < l.n; i++) {
		int fam = strchr(l.v[i], ':') ? AF_INET6 : AF_INET;

		assert_int_equal(inet_pton(fam, l.v[i], bin), 1);
		assert_non_null(inet_ntop(fam, bin, canon, sizeof(canon)));
		assert_string_equal(l.v[i], canon);
		if (i)
			assert_true(strcmp(l.v[i - 1], l.v[i]) < 0);
	}
	/* a second call replaces the list rather than appending to it */
	again = proxy_node_local_addrs(&l);
	assert_int_equal(again, n);
	assert_int_equal(l.n, (size_t)n);
	proxy_strlist_clear(&l);
}

static void nfacct_ensure_checks_the_name(void **state)
{
	(void)state;
	/* rejected before any netlink traffic */
	assert_int_equal(proxy_node_nfacct_ensure(""), -EINVAL);
	assert_int_equal(proxy_node_nfacct_ensure(NULL), -EINVAL);
	assert_int_equal(proxy_node_nfacct_ensure("a-name-of-thirty-two-characters!"),
			 -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(setup_writes_exactly_what_differs),
		cmocka_unit_test(setup_counts_cpus_without_sysfs),
		cmocka_unit_test(tcp_be_liberal_reads_the_sysctl),
		cmocka_unit_test(local_addrs_are_canonical_sorted_and_unique),
		cmocka_unit_test(nfacct_ensure_checks_the_name),
	};

	return cmocka_run_group_tests(tests, tree_setup, tree_teardown);
}
