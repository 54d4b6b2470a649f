/*
 * informer/watch.h - the list/watch state machine of one resource.
 *
 * Per resource (Services, EndpointSlices, the own Node), as client-go's
 * Reflector does it:
 *
 *   LIST (paged: limit/continue; an expired continue restarts the list)
 *     -> diff against the store: new or changed objects are delivered,
 *        objects missing from the list are delivered as deletions
 *     -> WATCH from the list's resourceVersion, with bookmarks and a random
 *        timeoutSeconds in [300, 600); every event moves the resourceVersion
 *     -> clean end: WATCH again from the last resourceVersion
 *     -> 410 Gone/Expired (HTTP or in-stream ERROR): LIST again (and diff)
 *     -> failures: exponential backoff with jitter (0.8 s doubling to 30 s,
 *        reset after 2 min without failures), Retry-After on 429, one
 *        immediate retry with fresh credentials on 401.
 *
 * With cfg->watch_list the LIST is first tried as a streaming list
 * (sendInitialEvents); any refusal, or no initial-events-end bookmark within
 * 60 s or before the stream ends, falls back to LIST for good.
 *
 * Runs on the informer's loop; handlers are called from libuv callbacks.
 */
#ifndef INFORMER_WATCH_H
#define INFORMER_WATCH_H

#include "informer/compiler.h"
#include "informer/decode.h"

struct informer;
struct informer_watch;

/*
 * informer_watch_new - the state machine for @kind at collection @path
 * ("/api/v1/services") with selector query @query ("labelSelector=...",
 * already URL-encoded; copied). Does no I/O and opens no handle.
 * Returns 0 or -ENOMEM.
 */
int informer_watch_new(struct informer *inf, enum informer_kind kind, const char *path,
		       const char *query, struct informer_watch **out) INFORMER_MUST_CHECK;

/*
 * informer_watch_start - start listing (asynchronously: nothing is delivered
 * before the loop runs). Returns 0 or -EIO (libuv refused a timer).
 */
int informer_watch_start(struct informer_watch *w) INFORMER_MUST_CHECK;

/*
 * informer_watch_stop - cancel the request in flight and close the timer.
 * Returns 1 when informer__closed(inf) will be called from the loop once the
 * timer is closed, 0 when the watch was never started (nothing to close).
 */
int informer_watch_stop(struct informer_watch *w);

/* Free a stopped watch (after its close), or one never started. NULL is a no-op. */
void informer_watch_free(struct informer_watch *w);

#endif /* INFORMER_WATCH_H */
