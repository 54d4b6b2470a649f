/*
 * cmd/main.c - kube-iptables-proxy: flags, configuration, run modes.
 *
 * The only place that calls exit(). Exit codes: 0 success, 1 runtime
 * failure, 2 bad flags or configuration.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cmd/daemon.h"
#include "cmd/dump.h"
#include "cmd/options.h"
#include "proxy/log.h"

#define EXIT_USAGE 2

/* upstream nodeutil.GetHostname: the override, else the host name, lower-cased and trimmed */
static int node_name(const struct cmd_options *o, char *buf, size_t len)
{
	const char *src = o->cfg.hostname_override;
	char host[256];
	size_t i, n;

	if (!src || !src[0]) {
		if (gethostname(host, sizeof(host)) != 0)
			return -errno;
		host[sizeof(host) - 1] = '\0';
		src = host;
	}
	while (isspace((unsigned char)*src))
		src++;
	n = strlen(src);
	while (n && isspace((unsigned char)src[n - 1]))
		n--;
	if (!n || n >= len)
		return -EINVAL;
	for (i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)src[i]);
	buf[n] = '\0';
	return 0;
}

static void print_version(void)
{
	struct utsname u;

	uname(&u);
	printf("kube-iptables-proxy v%s (git %s, %s/%s)\n", KIP_VERSION, KIP_GIT_REV, u.sysname,
	       u.machine);
}

int main(int argc, char **argv)
{
	struct cmd_options o;
	char err[512], name[256];
	size_t i;
	int ret, code = 1;

	if (cmd_options_init(&o)) {
		fprintf(stderr, "kube-iptables-proxy: out of memory\n");
		return 1;
	}
	ret = cmd_options_parse(&o, argc, argv, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "kube-iptables-proxy: %s\n", ret == -EINVAL ? err : strerror(-ret));
		fprintf(stderr, "Run '%s --help' for usage.\n", argv[0]);
		code = EXIT_USAGE;
		goto out;
	}
	proxy_log_set_verbosity(o.verbosity);
	if (o.show_help) {
		cmd_options_usage(stdout, argv[0]);
		code = 0;
		goto out;
	}
	if (o.show_man) {
		cmd_options_man(stdout);
		code = 0;
		goto out;
	}
	if (o.show_version) {
		print_version();
		code = 0;
		goto out;
	}
	for (i = 0; i < o.warnings.n; i++)
		PLOG_W("Configuration", "warning=\"%s\"", o.warnings.v[i]);
	if (proxy_config_validate(&o.cfg, err, sizeof(err))) {
		fprintf(stderr, "kube-iptables-proxy: invalid configuration: %s\n", err);
		code = EXIT_USAGE;
		goto out;
	}
	ret = node_name(&o, name, sizeof(name));
	if (ret) {
		fprintf(stderr,
			"kube-iptables-proxy: cannot tell the node name: %s; use "
			"--hostname-override\n",
			strerror(-ret));
		code = EXIT_USAGE;
		goto out;
	}
	if (o.write_config_to) {
		code = cmd_write_config(&o, o.write_config_to);
		goto out;
	}
	if (o.cleanup) {
		code = cmd_cleanup(&o);
		goto out;
	}
	if (o.init_only) {
		code = cmd_init_only(&o);
		goto out;
	}
	if (o.dump_rules) {
		code = o.from_file ? cmd_dump_from_file(&o, name, stdout) : cmd_dump_live(&o, name);
		goto out;
	}
	if (o.from_file) {
		fprintf(stderr,
			"kube-iptables-proxy: --from-file only makes sense with --dump-rules\n");
		code = EXIT_USAGE;
		goto out;
	}
	PLOG_I(0, "Starting kube-iptables-proxy", "version=\"%s\" gitRevision=\"%s\" node=\"%s\"",
	       KIP_VERSION, KIP_GIT_REV, name);
	code = cmd_daemon_run(&o, name);
out:
	cmd_options_cleanup(&o);
	return code;
}
