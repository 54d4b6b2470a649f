/*
 * test/fuzz/fuzz_lines.c - libFuzzer target for the watch line splitter.
 *
 * The input is split into chunks at sizes taken from its first bytes, fed to
 * informer_lines_feed() with a small cap, and the lines seen are checked
 * against a whole-buffer split: same lines, in order, whatever the chunking.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "informer/lines.h"

#define CAP 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct check {
	const char *text; /* the expected lines, each followed by '\n' */
	size_t len, off;
};

static int verify(void *arg, const char *line, size_t len)
{
	struct check *c = arg;

	if (!len || c->off + len + 1 > c->len || memcmp(c->text + c->off, line, len) ||
	    c->text[c->off + len] != '\n')
		abort();
	c->off += len + 1;
	return 0;
}

static int collect(void *arg, const char *line, size_t len)
{
	char **out = arg;
	size_t have = strlen(*out);
	char *n = realloc(*out, have + len + 2);

	if (!n)
		abort();
	memcpy(n + have, line, len);
	n[have + len] = '\n';
	n[have + len + 1] = '\0';
	*out = n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct informer_lines whole, parts;
	struct check c = { 0 };
	char *expect = calloc(1, 1);
	size_t off, step = 1, k = 0;
	int rw, rp = 0;

	if (!expect || size < 1)
		goto out;
	step = data[0];
	data++;
	size--;
	/* NUL bytes would end collect()'s strlen early: treat them as data for both */
	if (memchr(data, '\0', size))
		goto out;

	informer_lines_init(&whole, CAP);
	rw = informer_lines_feed(&whole, (const char *)data, size, collect, &expect);

	informer_lines_init(&parts, CAP);
	c.text = expect;
	c.len = strlen(expect);
	for (off = 0; off < size && !rp; k++) {
		size_t n = 1 + (step * (k + 1)) % 97;

		if (n > size - off)
			n = size - off;
		rp = informer_lines_feed(&parts, (const char *)data + off, n, verify, &c);
		off += n;
	}
	/* the same verdict; on success the same lines and the same tail */
	if ((rw == -E2BIG) != (rp == -E2BIG))
		abort();
	if (!rw &&
	    (c.off != c.len || informer_lines_pending(&whole) != informer_lines_pending(&parts)))
		abort();
	informer_lines_cleanup(&whole);
	informer_lines_cleanup(&parts);
out:
	free(expect);
	return 0;
}
