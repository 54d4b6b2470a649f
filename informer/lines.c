/*
 * informer/lines.c - byte stream -> newline-delimited events (pure).
 */
#include "informer/lines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void informer_lines_init(struct informer_lines *l, size_t max)
{
	memset(l, 0, sizeof(*l));
	l->max = max ? max : INFORMER_LINES_MAX;
}

void informer_lines_cleanup(struct informer_lines *l)
{
	free(l->buf);
	l->buf = NULL;
	l->len = 0;
	l->cap = 0;
}

void informer_lines_reset(struct informer_lines *l)
{
	l->len = 0;
}

size_t informer_lines_pending(const struct informer_lines *l)
{
	return l->len;
}

/* Pass one line to @cb unless it is empty; drop one trailing '\r'. */
static int emit(const char *line, size_t len, informer_lines_cb cb, void *arg)
{
	if (len && line[len - 1] == '\r')
		len--;
	if (!len)
		return 0;
	return cb(arg, line, len);
}

/* Append @n bytes to the carried tail; the caller has checked the cap. */
static int carry(struct informer_lines *l, const char *p, size_t n)
{
	if (l->len + n > l->cap) {
		size_t cap = l->cap ? l->cap : 256;
		char *buf;

		while (cap < l->len + n)
			cap *= 2;
		if (cap > l->max)
			cap = l->max;
		buf = realloc(l->buf, cap);
		if (!buf)
			return -ENOMEM;
		l->buf = buf;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, p, n);
	l->len += n;
	return 0;
}

int informer_lines_feed(struct informer_lines *l, const char *data, size_t len,
			informer_lines_cb cb, void *arg)
{
	const char *p = data, *end = data + len;
	int err;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		if (l->len + n > l->max)
			return -E2BIG;
		if (!nl)
			return carry(l, p, n);
		if (l->len) {
			/* complete the carried line, then hand it over */
			size_t total;

			err = carry(l, p, n);
			if (err)
				return err;
			total = l->len;
			l->len = 0;
			err = emit(l->buf, total, cb, arg);
		} else {
			err = emit(p, n, cb, arg);
		}
		if (err)
			return err;
		p = nl + 1;
	}
	return 0;
}
