/*
 * rules/buf.h - a growable byte buffer with a sticky error.
 *
 * Appends never fail loudly: the first allocation failure (or the cap being
 * exceeded) is remembered in @err and later appends are no-ops, so a writer can
 * emit a whole document and check once at the end (curl's dynbuf, inverted).
 * The content is always NUL-terminated when len > 0.
 *
 * Ownership: the buffer owns @data; rules_buf_take() hands it to the caller.
 */
#ifndef RULES_BUF_H
#define RULES_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "rules/compiler.h"

struct rules_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* 0: no cap */
	int err;    /* 0, -ENOMEM or -E2BIG once anything failed */
};

/* Initialise an empty buffer; @max bytes at most (0 = unlimited). */
void rules_buf_init(struct rules_buf *b, size_t max);

/* Free the content and reset to empty (keeps @max). */
void rules_buf_cleanup(struct rules_buf *b);

/* Forget the content but keep the memory (and clear the error). */
void rules_buf_reset(struct rules_buf *b);

/* Ensure room for @n more bytes. Returns 0 or the sticky error. */
int rules_buf_reserve(struct rules_buf *b, size_t n);

void rules_buf_add(struct rules_buf *b, const void *p, size_t n);
void rules_buf_adds(struct rules_buf *b, const char *s);
void rules_buf_addc(struct rules_buf *b, char c);
void rules_buf_addu(struct rules_buf *b, uint64_t v);
void rules_buf_printf(struct rules_buf *b, const char *fmt, ...) RULES_PRINTF(2, 3);

/* Hand the content to the caller (free() it); the buffer becomes empty. */
char *rules_buf_take(struct rules_buf *b, size_t *len);

#endif /* RULES_BUF_H */
