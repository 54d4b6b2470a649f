/*
 * test/test_rules_golden.c - golden cases: objects in, rules out.
 *
 * Each directory under test/rules/cases/ (our cases) and test/rules/upstream/
 * (upstream kube-proxy's test cases, whose run.sh also compares them with
 * upstream's expectations after upstream's sort) holds
 *   input.json or input.yaml  Services, EndpointSlices, Nodes (kubectl shapes)
 *   args                      extra flags, one line (e.g. --hostname-override=n1)
 *   expected.rules            what --dump-rules must print, byte for byte
 * and runs through the same code as `--dump-rules --from-file`. On a mismatch
 * the actual output is written next to the build and a unified diff printed.
 * UPDATE_GOLDEN=1 rewrites expected.rules instead (review the git diff!).
 *
 * Properties checked on every case: rendering twice is identical; the input
 * with its items shuffled renders identically; every jump target is declared
 * in its table; no chain name is longer than 28 characters; every chain
 * declared in nat is either built-in, a top-level KUBE chain, or jumped to.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "cmd/dump.h"
#include "cmd/options.h"
#include "test/helpers/trace.h"

static const char *const roots[] = { "test/rules/cases", "test/rules/upstream" };

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		if (buf) {
			buf[n] = '\0';
			if (len)
				*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static int write_all(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Run --dump-rules on @input with the case's args (and @extra, may be
 * NULL); returns the output. */
static char *dump_with(const char *dir, const char *input, const char *extra)
{
	char path[512], *args, *argv[64], *tok, *save = NULL, *out = NULL, err[512];
	struct cmd_options o;
	size_t outlen = 0;
	int argc = 0, code;
	FILE *mem;

	snprintf(path, sizeof(path), "%s/args", dir);
	args = read_all(path, NULL);
	argv[argc++] = "kube-iptables-proxy";
	argv[argc++] = "--dump-rules";
	argv[argc++] = "--from-file";
	argv[argc++] = (char *)input;
	for (tok = args ? strtok_r(args, " \t\n", &save) : NULL; tok && argc < 62;
	     tok = strtok_r(NULL, " \t\n", &save))
		argv[argc++] = tok;
	if (extra)
		argv[argc++] = (char *)extra;
	argv[argc] = NULL;

	assert_int_equal(cmd_options_init(&o), 0);
	if (cmd_options_parse(&o, argc, argv, err, sizeof(err)) != 0)
		fail_msg("%s: bad args: %s", dir, err);
	if (proxy_config_validate(&o.cfg, err, sizeof(err)) != 0)
		fail_msg("%s: invalid config: %s", dir, err);
	if (!o.cfg.hostname_override)
		fail_msg("%s: args must set --hostname-override", dir);

	mem = open_memstream(&out, &outlen);
	assert_non_null(mem);
	code = cmd_dump_from_file(&o, o.cfg.hostname_override, mem);
	fclose(mem);
	cmd_options_cleanup(&o);
	free(args);
	if (code != 0)
		fail_msg("%s: --dump-rules exited %d", dir, code);
	return out;
}

static char *dump(const char *dir, const char *input)
{
	return dump_with(dir, input, NULL);
}

static const char *input_of(const char *dir, char *buf, size_t len)
{
	struct stat st;

	snprintf(buf, len, "%s/input.json", dir);
	if (stat(buf, &st) == 0)
		return buf;
	snprintf(buf, len, "%s/input.yaml", dir);
	return buf;
}

static void show_diff(const char *dir, const char *actual)
{
	char path[512], cmd[1200];

	snprintf(path, sizeof(path), "build/golden-%s.actual", strrchr(dir, '/') + 1);
	if (write_all(path, actual, strlen(actual)) == 0) {
		snprintf(cmd, sizeof(cmd), "diff -u %s/expected.rules %s | head -80 >&2", dir,
			 path);
		if (system(cmd) == -1)
			print_error("cannot run diff\n");
	}
}

/* ---- properties on the rendered text ------------------------------------ */

struct chainset {
	char **names;
	size_t n;
};

static bool has_chain(const struct chainset *s, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strlen(s->names[i]) == len && strncmp(s->names[i], name, len) == 0)
			return true;
	return false;
}

static bool builtin(const char *name, size_t len)
{
	static const char *const targets[] = { "ACCEPT",     "DROP",  "REJECT",	    "RETURN",
					       "DNAT",	     "SNAT",  "MASQUERADE", "MARK",
					       "PREROUTING", "INPUT", "OUTPUT",	    "POSTROUTING",
					       "FORWARD" };
	size_t i;

	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		if (strlen(targets[i]) == len && strncmp(targets[i], name, len) == 0)
			return true;
	return false;
}

/* Check one table (from "*table" to "COMMIT"): declared names, jump targets. */
static void check_table(const char *dir, const char *start, const char *end)
{
	struct chainset decl = { 0 };
	const char *line, *nl, *j;
	size_t i;

	for (line = start; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			break;
		if (*line == ':') {
			size_t len = strcspn(line + 1, " \n");

			if (len > 28)
				fail_msg("%s: chain name longer than 28: %.*s", dir, (int)len,
					 line + 1);
			decl.names = realloc(decl.names, (decl.n + 1) * sizeof(char *));
			decl.names[decl.n++] = strndup(line + 1, len);
		}
	}
	for (line = start; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			break;
		if (strncmp(line, "-A ", 3) == 0 &&
		    !has_chain(&decl, line + 3, strcspn(line + 3, " \n")))
			fail_msg("%s: rule in an undeclared chain: %.*s", dir, (int)(nl - line),
				 line);
		j = strstr(line, " -j ");
		if (j && j < nl) {
			size_t len = strcspn(j + 4, " \n");

			if (!builtin(j + 4, len) && !has_chain(&decl, j + 4, len))
				fail_msg("%s: jump to an undeclared chain: %.*s", dir,
					 (int)(nl - line), line);
		}
	}
	for (i = 0; i < decl.n; i++)
		free(decl.names[i]);
	free(decl.names);
}

static void check_properties(const char *dir, const char *text)
{
	const char *t = text, *commit;

	while ((t = strchr(t, '*')) != NULL) {
		if (t != text && t[-1] != '\n') {
			t++;
			continue;
		}
		commit = strstr(t, "\nCOMMIT\n");
		if (!commit)
			fail_msg("%s: table without COMMIT", dir);
		check_table(dir, t, commit + 1);
		t = commit + 8;
	}
}

/* The input with its items in another order (a fixed permutation). */
static char *shuffled_input(const char *dir, const char *input)
{
	json_error_t jerr;
	json_t *doc, *items, *rev;
	char path[512];
	size_t i, n;

	doc = json_load_file(input, 0, &jerr);
	if (!doc)
		return NULL; /* YAML inputs are not shuffled */
	items = json_object_get(doc, "items");
	if (!json_is_array(items)) {
		json_decref(doc);
		return NULL;
	}
	n = json_array_size(items);
	rev = json_array();
	/* odd positions reversed, then even ones: every pair changes order */
	for (i = n; i-- > 0;)
		if (i % 2)
			json_array_append(rev, json_array_get(items, i));
	for (i = 0; i < n; i++)
		if (!(i % 2))
			json_array_append(rev, json_array_get(items, i));
	json_object_set_new(doc, "items", rev);
	snprintf(path, sizeof(path), "build/golden-%s.shuffled.json", strrchr(dir, '/') + 1);
	if (json_dump_file(doc, path, 0) != 0) {
		json_decref(doc);
		return NULL;
	}
	json_decref(doc);
	return strdup(path);
}

/*
 * Every packet that could reach a service (each destination, port and
 * protocol a KUBE-SERVICES or KUBE-NODEPORTS rule matches on, its neighbours,
 * from pods, outside and the node) and some that cannot, traced through the
 * linear and the tree layout of the same objects: the outcomes (DNAT targets
 * in order, masquerade, REJECT/DROP) must be identical.
 */
static void compare_layouts(const char *dir, const char *linear, const char *tree)
{
	static const char *const local4[] = { "127.0.0.1", "192.168.0.2", "10.0.0.11", NULL };
	static const char *const local6[] = { "::1", "2001:db8::1", "fd00:10::11", NULL };
	static const char *const src4[] = { "10.0.0.5",	     "10.244.1.5",  "203.0.113.2",
					    "203.0.113.130", "192.168.0.2", "127.0.0.1" };
	static const char *const src6[] = { "fd00:10:244:1::5", "2001:db8:ff::2", "2001:db8::1",
					    "::1" };
	static const char *const ifaces[] = { NULL, "cbr0", "veth1234" };
	static const char *const protos[] = { "tcp", "udp", "sctp" };
	static const char *const plain4[] = { "10.244.9.9", "8.8.8.8", "172.30.255.254",
					      "10.96.255.254" };
	static const char *const plain6[] = { "fd00:10:244:9::9", "2001:4860::8888" };
	int v6;

	for (v6 = 0; v6 < 2; v6++) {
		struct trace_doc *dl = trace_doc_new(linear, v6), *dt = trace_doc_new(tree, v6);
		const char *const *local = v6 ? local6 : local4;
		const char *const *srcs = v6 ? src6 : src4;
		size_t n_srcs = v6 ? 4 : 6, n, i, a, b, c, k, traced = 0, dnat = 0;
		struct trace_packet *pk;

		if (!dl || !dt) {
			if (!dl != !dt)
				fail_msg("%s: IPv%d: one layout has a nat table, the other not",
					 dir, v6 ? 6 : 4);
			trace_doc_free(dl);
			trace_doc_free(dt);
			continue;
		}
		pk = calloc(4096, sizeof(*pk));
		n = trace_doc_targets(dl, pk, 4096 - 8);
		for (i = 0; i < (v6 ? 2u : 4u); i++) {
			pk[n].dst = v6 ? plain6[i] : plain4[i];
			pk[n].proto = "tcp";
			pk[n++].dport = 80;
		}
		for (i = 0; i < n; i++) {
			for (k = 0; k < 2; k++) /* the port, and its neighbour */
				for (a = 0; a < n_srcs; a++)
					for (b = 0; b < 3; b++)
						for (c = 0; c < 3; c++) {
							struct trace_packet p = pk[i];
							char ol[2048], ot[2048];

							p.src = srcs[a];
							p.in_iface = ifaces[b];
							p.dport += (unsigned int)k;
							if (c && strcmp(protos[c], p.proto) == 0)
								continue;
							if (c)
								p.proto = protos[c];
							if (!p.dst)
								p.dst = local[1]; /* a NodePort */
							trace_packet(dl, &p, local, ol, sizeof(ol),
								     NULL);
							trace_packet(dt, &p, local, ot, sizeof(ot),
								     NULL);
							if (strcmp(ol, ot) != 0)
								fail_msg(
									"%s: %s %s:%u from %s (in %s):\n"
									"  linear: %s\n  tree:   %s",
									dir, p.proto, p.dst,
									p.dport, p.src,
									p.in_iface ? p.in_iface
										   : "-",
									ol, ot);
							traced++;
							dnat += strstr(ol, "DNAT") != NULL;
						}
		}
		/* the tracer saw the services (a case with endpoints DNATs something) */
		if (strstr(linear, "-j DNAT") && strstr(linear, v6 ? "]:" : ":") && !dnat &&
		    strstr(linear, v6 ? "# IPv6" : "*nat"))
			fail_msg("%s: IPv%d: no traced packet was DNATed", dir, v6 ? 6 : 4);
		if (getenv("TRACE_STATS")) /* how much was traced, for a reviewer */
			fprintf(stderr, "%s IPv%d: %zu targets, %zu packets, %zu DNATed\n", dir,
				v6 ? 6 : 4, n, traced, dnat);
		free(pk);
		trace_doc_free(dl);
		trace_doc_free(dt);
	}
}

static void golden_case(void **state)
{
	const char *dir = *state;
	char path[512], inbuf[512], *expected, *actual, *again, *shuf_path, *shuf, *tree;
	const char *input = input_of(dir, inbuf, sizeof(inbuf));
	struct stat st;

	actual = dump(dir, input);
	snprintf(path, sizeof(path), "%s/expected.rules", dir);
	if (getenv("UPDATE_GOLDEN")) {
		assert_int_equal(write_all(path, actual, strlen(actual)), 0);
	}
	expected = read_all(path, NULL);
	if (!expected)
		fail_msg("%s: no expected.rules (run with UPDATE_GOLDEN=1 and review)", dir);
	if (strcmp(expected, actual) != 0) {
		show_diff(dir, actual);
		fail_msg("%s: output differs from expected.rules", dir);
	}
	check_properties(dir, actual);

	/* the tree layout of the same objects: same packet outcomes, and the
	 * cases marked "tree" pin its text too */
	tree = dump_with(dir, input, "--service-dispatch=tree");
	check_properties(dir, tree);
	compare_layouts(dir, actual, tree);
	snprintf(path, sizeof(path), "%s/tree", dir);
	if (stat(path, &st) == 0) {
		char *want;

		snprintf(path, sizeof(path), "%s/expected-tree.rules", dir);
		if (getenv("UPDATE_GOLDEN"))
			assert_int_equal(write_all(path, tree, strlen(tree)), 0);
		want = read_all(path, NULL);
		if (!want)
			fail_msg("%s: no expected-tree.rules (run with UPDATE_GOLDEN=1)", dir);
		if (strcmp(want, tree) != 0)
			fail_msg("%s: tree layout differs from expected-tree.rules:\n%s", dir,
				 tree);
		free(want);
	}
	free(tree);

	again = dump(dir, input);
	assert_string_equal(again, actual);

	shuf_path = shuffled_input(dir, input);
	if (shuf_path) {
		shuf = dump(dir, shuf_path);
		if (strcmp(shuf, actual) != 0)
			fail_msg("%s: shuffled input renders differently", dir);
		remove(shuf_path);
		free(shuf);
		free(shuf_path);
	}
	free(again);
	free(expected);
	free(actual);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Case directories: those with an args file. */
static size_t collect(const char *root, char ***dirs, size_t n)
{
	struct dirent *de;
	struct stat st;
	char path[512];
	DIR *d = opendir(root);

	if (!d) {
		fprintf(stderr, "test_rules_golden: %s: %s (run from the repo root)\n", root,
			strerror(errno));
		return n;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/args", root, de->d_name);
		if (stat(path, &st) != 0)
			continue;
		*dirs = realloc(*dirs, (n + 1) * sizeof(**dirs));
		snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
		(*dirs)[n++] = strdup(path);
	}
	closedir(d);
	return n;
}

int main(void)
{
	struct CMUnitTest *tests = NULL;
	char **dirs = NULL;
	size_t n = 0, i;
	int ret;

	mkdir("build", 0755);
	for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
		n = collect(roots[i], &dirs, n);
	if (!n) {
		fprintf(stderr, "test_rules_golden: no cases\n");
		return 1;
	}
	qsort(dirs, n, sizeof(*dirs), cmp_name);
	tests = calloc(n, sizeof(*tests));
	for (i = 0; i < n; i++) {
		tests[i].name = strchr(dirs[i] + 5, '/') + 1; /* "rules/..." */
		tests[i].test_func = golden_case;
		tests[i].initial_state = dirs[i];
	}
	ret = _cmocka_run_group_tests("rules_golden", tests, n, NULL, NULL);
	for (i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
	free(tests);
	return ret;
}
