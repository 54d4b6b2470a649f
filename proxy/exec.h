/*
 * proxy/exec.h - run a program on the libuv loop: stdin from a buffer,
 * stdout and stderr captured (capped), no shell, exit status to a callback.
 *
 * The one place the daemon forks. Everything runs on the loop given: the
 * callback is called from the loop once the process has exited and both
 * output pipes are closed.
 */
#ifndef PROXY_EXEC_H
#define PROXY_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/compiler.h"

struct uv_loop_s;

struct proxy_exec_result {
	int64_t exit_status; /* -1 when killed by a signal */
	int term_signal;
	int spawn_err; /* negative errno when the program could not be started */
	char *out;     /* stdout (NUL-terminated, may be truncated at the cap) */
	size_t out_len;
	char *err; /* stderr, same */
	size_t err_len;
	double seconds; /* wall time */
};

typedef void (*proxy_exec_cb)(void *arg, const struct proxy_exec_result *res);

/*
 * proxy_exec_run - start argv[0] (searched in PATH) with @argv, writing
 * @in (@in_len bytes, copied) to its stdin. @out_cap bounds captured stdout
 * (stderr is capped at 64 KiB). @cb runs exactly once, on the loop, unless
 * this returns an error; a program that cannot be started is reported there
 * (spawn_err). The result's buffers are freed after @cb returns.
 * Returns 0, or -ENOMEM (nothing started, @cb not called).
 */
int proxy_exec_run(struct uv_loop_s *loop, const char *const *argv, const char *in, size_t in_len,
		   size_t out_cap, proxy_exec_cb cb, void *arg) PROXY_MUST_CHECK;

#endif /* PROXY_EXEC_H */
