/*
 * cmd/daemon.h - the run modes that talk to the kernel or the API server.
 */
#ifndef CMD_DAEMON_H
#define CMD_DAEMON_H

#include "cmd/options.h"

/* The daemon: list/watch, sync until SIGTERM/SIGINT. Returns an exit code. */
int cmd_daemon_run(struct cmd_options *o, const char *node_name);

/* --cleanup: remove every rule and chain kube-proxy or we own. Exit code. */
int cmd_cleanup(const struct cmd_options *o);

/* --init-only: the privileged node setup, then exit. Exit code. */
int cmd_init_only(const struct cmd_options *o);

/* --dump-rules against the API server: list once, render, print. Exit code. */
int cmd_dump_live(const struct cmd_options *o, const char *node_name);

/* --write-config-to: the effective configuration as a KubeProxyConfiguration. */
int cmd_write_config(const struct cmd_options *o, const char *path);

#endif /* CMD_DAEMON_H */
