/*
 * cmd/options.h - command-line flags and the KubeProxyConfiguration file.
 *
 * One table describes every flag (name, type, default, group, help); it
 * drives parsing, --help and the man page, so they cannot disagree. Flags
 * are kube-proxy's (accepting and ignoring those of other proxy modes with a
 * warning) plus a few extensions marked as such.
 *
 * As upstream: with --config, the file's values are used and flags are
 * ignored, except --hostname-override, logging and the run-mode flags
 * (--cleanup, --init-only, --dump-rules, ...).
 */
#ifndef CMD_OPTIONS_H
#define CMD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "proxy/config.h"

struct cmd_options {
	struct proxy_config cfg;

	/* run modes and files */
	char *config_file;
	char *write_config_to;
	char *from_file;
	bool cleanup;
	bool init_only;
	bool dump_rules;
	bool show_version;
	bool show_help;
	bool show_man;
	int verbosity;

	/* warnings gathered while parsing (ignored flags, unknown gates):
	 * printed once logging is set up */
	struct proxy_strlist warnings;
};

/* Defaults everywhere. Returns 0 or -ENOMEM. */
int cmd_options_init(struct cmd_options *o);
void cmd_options_cleanup(struct cmd_options *o);

/*
 * cmd_options_parse - parse argv (argv[0] skipped), then load --config if
 * given. On a bad flag or value writes a message to @err and returns
 * -EINVAL (the caller exits 2); -ENOMEM on allocation failure.
 */
int cmd_options_parse(struct cmd_options *o, int argc, char **argv, char *err, size_t errlen);

/*
 * cmd_config_load - apply a KubeProxyConfiguration (YAML or JSON) from
 * @buf to @o->cfg. Unknown fields are warned about (upstream falls back to
 * lenient decoding); wrong types, an unknown kind/apiVersion or an
 * unsupported mode are errors (-EINVAL with @err).
 */
int cmd_config_load(struct cmd_options *o, const char *buf, size_t len, char *err, size_t errlen);

/*
 * cmd_config_json - @c as a KubeProxyConfiguration JSON document (what
 * --write-config-to writes and /configz serves). New string in *@out
 * (free() it). Returns 0 or -ENOMEM.
 */
int cmd_config_json(const struct proxy_config *c, char **out);

/* Go's time.Duration.String() of @ms milliseconds ("30s", "1m0s", "500ms"). */
void cmd_format_duration(long long ms, char *buf, size_t len);

/* --help text, grouped. */
void cmd_options_usage(FILE *out, const char *prog);

/* A roff man page generated from the same table. */
void cmd_options_man(FILE *out);

/* Every flag name, for tests that compare README and --help: NULL-terminated. */
const char *const *cmd_options_flag_names(void);

/*
 * cmd_parse_duration - Go time.ParseDuration ("1h2m3.5s", "300ms", "0")
 * into milliseconds. Returns 0 or -EINVAL.
 */
int cmd_parse_duration(const char *s, long long *ms);

#endif /* CMD_OPTIONS_H */
