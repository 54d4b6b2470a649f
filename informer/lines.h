/*
 * informer/lines.h - byte stream -> newline-delimited events (pure).
 *
 * A watch body is one JSON object per '\n'-terminated line, and libcurl's
 * write callback hands over chunks whose boundaries have nothing to do with
 * line boundaries. The splitter scans each byte once: complete lines inside a
 * chunk are passed to the callback straight from the chunk, and only the
 * unterminated tail is copied into a buffer that is completed by the next
 * chunk (kubernetes-client/c re-scans its whole buffer on every chunk, which
 * is quadratic on bursts).
 *
 * Accepted framing: '\n' ends a line; one '\r' right before it is dropped
 * (CRLF is tolerated, as some proxies re-frame streams); empty lines (and
 * lines holding only "\r") are skipped. A line longer than the cap fails
 * with -E2BIG as soon as the cap is passed, without waiting for its end.
 *
 * Pure: no I/O; may be called from a libuv callback.
 */
#ifndef INFORMER_LINES_H
#define INFORMER_LINES_H

#include <stddef.h>

#include "informer/compiler.h"

/* Default cap on one event (a watch event carries one object). */
#define INFORMER_LINES_MAX (16u * 1024 * 1024)

/*
 * Called once per complete, non-empty line, without its terminator. @line is
 * borrowed (valid during the call only) and is not NUL-terminated. A non-zero
 * return stops the feed, which returns that value.
 */
typedef int (*informer_lines_cb)(void *arg, const char *line, size_t len);

struct informer_lines {
	char *buf;  /* the unterminated tail carried between chunks */
	size_t len; /* bytes in buf */
	size_t cap; /* allocated size of buf */
	size_t max; /* longest accepted line */
};

/* Initialise an empty splitter accepting lines of up to @max bytes (0: INFORMER_LINES_MAX). */
void informer_lines_init(struct informer_lines *l, size_t max);

/* Release the buffer; @l may be initialised again. */
void informer_lines_cleanup(struct informer_lines *l);

/* Forget any partial line (a new stream starts); keeps the buffer for reuse. */
void informer_lines_reset(struct informer_lines *l);

/*
 * informer_lines_feed - split @len bytes of @data, calling @cb for every line
 * completed by them. Returns 0, the callback's non-zero value (the feed stops
 * there; unprocessed bytes are dropped), -E2BIG (a line exceeds the cap) or
 * -ENOMEM. After an error the stream is unusable until informer_lines_reset().
 */
int informer_lines_feed(struct informer_lines *l, const char *data, size_t len,
			informer_lines_cb cb, void *arg) INFORMER_MUST_CHECK;

/* Bytes of an unterminated line held: non-zero at the end of a stream means it was truncated. */
size_t informer_lines_pending(const struct informer_lines *l);

#endif /* INFORMER_LINES_H */
