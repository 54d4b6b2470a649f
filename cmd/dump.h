/*
 * cmd/dump.h - --dump-rules: print what a full sync would write, then exit.
 */
#ifndef CMD_DUMP_H
#define CMD_DUMP_H

#include <stdio.h>

#include "cmd/options.h"

struct proxy_tracker;

/*
 * cmd_dump_tracker - render every requested family of @t for @o to @out.
 * @addrs: the node's local addresses for --nodeport-addresses matching.
 * Returns 0, or a negative errno after logging what failed.
 */
int cmd_dump_tracker(const struct cmd_options *o, struct proxy_tracker *t, const char *const *addrs,
		     size_t n_addrs, FILE *out);

/* --dump-rules --from-file: load the objects and dump. Returns an exit code. */
int cmd_dump_from_file(const struct cmd_options *o, const char *node_name, FILE *out);

#endif /* CMD_DUMP_H */
