/*
 * rules/buf.c - growable byte buffer with a sticky error.
 */
#include "rules/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rules_buf_init(struct rules_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void rules_buf_cleanup(struct rules_buf *b)
{
	size_t max = b->max;

	free(b->data);
	rules_buf_init(b, max);
}

void rules_buf_reset(struct rules_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->data)
		b->data[0] = '\0';
}

int rules_buf_reserve(struct rules_buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (b->err)
		return b->err;
	if (n > SIZE_MAX - b->len - 1) {
		b->err = -E2BIG;
		return b->err;
	}
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	if (b->max && need > b->max + 1) {
		b->err = -E2BIG;
		return b->err;
	}
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

void rules_buf_add(struct rules_buf *b, const void *p, size_t n)
{
	if (!n)
		return;
	if (rules_buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void rules_buf_adds(struct rules_buf *b, const char *s)
{
	rules_buf_add(b, s, strlen(s));
}

void rules_buf_addc(struct rules_buf *b, char c)
{
	rules_buf_add(b, &c, 1);
}

void rules_buf_addu(struct rules_buf *b, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	rules_buf_add(b, tmp + i, sizeof(tmp) - i);
}

void rules_buf_printf(struct rules_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (!b->err)
			b->err = -EINVAL;
		return;
	}
	if (rules_buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *rules_buf_take(struct rules_buf *b, size_t *len)
{
	char *p = b->data;

	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
