/*
 * informer/internal.h - declarations shared inside informer/ (prefix informer__).
 *
 * Not part of the informer's contract (informer/informer.h): the informer
 * object itself, the logging helper every adapter reports through, and how
 * the connection (informer/kubeconfig.c) hands out credentials to requests.
 * Everything here runs on the loop thread.
 */
#ifndef INFORMER_INTERNAL_H
#define INFORMER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "informer/compiler.h"
#include "informer/informer.h"

struct informer_http;
struct informer_http_tls;
struct informer_watch;
struct informer__post;

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- logging through handlers->log ------------------------------------ */

struct informer__logger {
	void (*fn)(void *arg, int level, const char *msg, const char *kv);
	void *arg;
};

/* Report @msg with key=value text @kv (may be NULL). A NULL @l->fn is silent. */
void informer__log(const struct informer__logger *l, int level, const char *msg, const char *kv);

/* Same with printf-formatted key=value text (truncated at 1 KiB). */
void informer__logf(const struct informer__logger *l, int level, const char *msg, const char *kvfmt,
		    ...) INFORMER_PRINTF(4, 5);

/*
 * informer__quote - @s made safe inside a "quoted" log value: '"' and '\\'
 * escaped, control characters as '?', cut to @len - 1 bytes. Returns @buf.
 */
const char *informer__quote(char *buf, size_t len, const char *s, size_t slen);

/* ---- the informer ----------------------------------------------------- */

struct informer {
	uv_loop_t *loop;
	uv_timer_t
		stop_timer; /* closed by informer_stop(): @stop_done always comes from the loop */
	struct informer_conn *conn;
	struct informer_http *http;
	struct informer_handlers h;
	struct informer__logger log;
	char *node_name;
	char *label_selector;
	char *user_agent;
	bool list_only;
	bool watch_list;
	unsigned int page_limit;
	struct informer_watch *watches[3];
	size_t n_watches;
	struct informer__post *posts; /* events being created */
	size_t n_posts;
	size_t n_dropped;      /* events not created (too many, or no memory), not yet logged */
	uv_timer_t post_timer; /* starts queued event posts from the loop */
	bool post_timer_open;
	uint64_t rng; /* xorshift64 state for jitter and watch timeouts */
	bool started;
	bool stopping;		/* no handler is called once set */
	unsigned int n_closing; /* parts still closing after informer_stop() */
	void (*stop_done)(void *arg);
	void *stop_arg;
};

/* One part of the informer finished closing (informer_stop's accounting). */
void informer__closed(void *inf);

/* A pseudo-random number (jitter; not for secrets). */
uint64_t informer__random(struct informer *inf);

/* ---- credentials (informer/kubeconfig.c) ------------------------------ */

/* What a request sends; borrowed from the connection until its next refresh. */
struct informer__cred {
	const char *token; /* NULL: none */
	const char *cert_pem;
	size_t cert_len;
	const char *key_pem;
	size_t key_len;
	unsigned long gen; /* changes whenever the credential does */
};

/* A request waiting for credentials (embedded in its owner). */
struct informer__auth_wait {
	struct informer__auth_wait *next;
	void (*cb)(struct informer__auth_wait *w, int err);
};

/*
 * informer__conn_attach - give @c the loop (for exec credential plugins) and
 * where to log. Called by informer_new().
 */
void informer__conn_attach(struct informer_conn *c, struct uv_loop_s *loop,
			   const struct informer__logger *log);

/*
 * informer__conn_auth - make the credentials current before a request: a
 * token file older than 60 s (or after a 401) is read again; an expired or
 * rejected exec credential is fetched again by running the plugin. Returns 0
 * when informer__conn_cred() is ready now, 1 when @w->cb will be called later
 * (with 0 or a negative errno), or a negative errno (reported through the log).
 */
int informer__conn_auth(struct informer_conn *c, struct informer__auth_wait *w) INFORMER_MUST_CHECK;

/* Stop waiting: @w->cb is not called. No-op when @w is not waiting. */
void informer__conn_auth_cancel(struct informer_conn *c, struct informer__auth_wait *w);

/* The current credentials (borrowed). */
const struct informer__cred *informer__conn_cred(const struct informer_conn *c);

/*
 * informer__conn_unauthorized - the server answered 401 to credentials of
 * generation @gen: read the token file or run the plugin again before the
 * next request (once per generation).
 */
void informer__conn_unauthorized(struct informer_conn *c, unsigned long gen);

/* TLS settings for informer/http.c (borrowed). */
const struct informer_http_tls *informer__conn_tls(const struct informer_conn *c);

/* The URL prefix requests are sent to ("https://host:port", no trailing '/'). */
const char *informer__conn_base(const struct informer_conn *c);

/*
 * informer__conn_close - kill a running credential plugin and close its
 * handles; @done(@arg) is called from the loop when nothing is left open
 * Returns 1 when @done will be called, 0 when nothing was open (and @done
 * will not be called). Waiting requests are forgotten without a callback.
 */
int informer__conn_close(struct informer_conn *c, void (*done)(void *arg), void *arg);

#endif /* INFORMER_INTERNAL_H */
