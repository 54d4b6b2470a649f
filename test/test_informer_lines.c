/*
 * test/test_informer_lines.c - the watch stream line splitter (informer/lines.c).
 *
 * The recorded watch streams in test/data/informer/streams/ are fed whole,
 * one byte at a time and in random chunk sizes (fixed seeds); every way must
 * produce exactly the events an independent whole-buffer split produces.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "informer/lines.h"

#define STREAMS_DIR "test/data/informer/streams"

static const char *const streams[] = {
	"watch-services.ndjson",
	"watch-endpointslices-expired.ndjson",
	"watchlist-endpointslices.ndjson",
};

/* What the callback saw: every line, concatenated with a '\n' after each. */
struct seen {
	char *text;
	size_t len, cap;
	size_t n;
	size_t stop_after; /* return 7 from the callback for line number stop_after (1-based) */
};

static int record(void *arg, const char *line, size_t len)
{
	struct seen *s = arg;

	assert_non_null(line);
	assert_true(len > 0);
	if (s->len + len + 1 > s->cap) {
		s->cap = (s->len + len + 1) * 2;
		s->text = realloc(s->text, s->cap);
		assert_non_null(s->text);
	}
	memcpy(s->text + s->len, line, len);
	s->len += len;
	s->text[s->len++] = '\n';
	s->n++;
	return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

static void seen_free(struct seen *s)
{
	free(s->text);
	memset(s, 0, sizeof(*s));
}

static char *read_stream(const char *name, size_t *len)
{
	char path[256];
	long n;
	char *buf;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", STREAMS_DIR, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s (run the tests from the repository root)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* The reference: split on '\n', drop one '\r' before it, skip empty lines; the tail is pending. */
static void reference_split(const char *buf, size_t len, struct seen *out, size_t *pending)
{
	size_t start = 0, i;

	for (i = 0; i < len; i++) {
		size_t n;

		if (buf[i] != '\n')
			continue;
		n = i - start;
		if (n && buf[start + n - 1] == '\r')
			n--;
		if (n)
			assert_int_equal(record(out, buf + start, n), 0);
		start = i + 1;
	}
	*pending = len - start;
}

/* Feed @buf in chunks: size 0 = whole, 1 = byte by byte, else random sizes 1..@chunk. */
static int feed_chunked(struct informer_lines *l, const char *buf, size_t len, size_t chunk,
			unsigned int seed, struct seen *out)
{
	size_t off = 0;

	srand(seed);
	while (off < len) {
		size_t n = len - off;
		int err;

		if (chunk == 1)
			n = 1;
		else if (chunk > 1 && n > 1)
			n = 1 + (size_t)rand() % (chunk < n ? chunk : n);
		err = informer_lines_feed(l, buf + off, n, record, out);
		if (err)
			return err;
		off += n;
	}
	return 0;
}

static void check_stream_equal(const char *buf, size_t len)
{
	static const size_t chunks[] = { 0, 1, 2, 3, 7, 64, 4096 };
	struct seen want = { 0 };
	size_t want_pending, c;
	unsigned int seed;

	reference_split(buf, len, &want, &want_pending);
	for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		for (seed = 1; seed <= (chunks[c] > 1 ? 20u : 1u); seed++) {
			struct informer_lines l;
			struct seen got = { 0 };

			informer_lines_init(&l, 0);
			assert_int_equal(feed_chunked(&l, buf, len, chunks[c], seed, &got), 0);
			assert_int_equal(got.n, want.n);
			assert_int_equal(got.len, want.len);
			assert_memory_equal(got.text, want.text, want.len);
			assert_int_equal(informer_lines_pending(&l), want_pending);
			seen_free(&got);
			informer_lines_cleanup(&l);
		}
	}
	seen_free(&want);
}

static void lines_recorded_streams_split_alike_in_any_chunking(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
		size_t len;
		char *buf = read_stream(streams[i], &len);
		struct seen s = { 0 };
		size_t pending;

		/* the streams are whole: one event per line, nothing pending */
		reference_split(buf, len, &s, &pending);
		assert_true(s.n >= 1);
		assert_int_equal(pending, 0);
		seen_free(&s);

		check_stream_equal(buf, len);
		/* truncated anywhere: the same events before the cut, the rest pending */
		check_stream_equal(buf, len / 2);
		check_stream_equal(buf, len - 1);
		free(buf);
	}
}

static void lines_all_streams_concatenated(void **state)
{
	char *all = NULL;
	size_t len = 0, i;

	(void)state;
	for (i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
		size_t n;
		char *buf = read_stream(streams[i], &n);

		all = realloc(all, len + n);
		assert_non_null(all);
		memcpy(all + len, buf, n);
		len += n;
		free(buf);
	}
	check_stream_equal(all, len);
	free(all);
}

static void lines_empty_lines_and_crlf(void **state)
{
	static const char in[] = "\n\r\n{\"a\":1}\r\n\n\n{\"b\":2}\n\r\r\n{\"c\":3}";
	struct informer_lines l;
	struct seen s = { 0 };

	(void)state;
	informer_lines_init(&l, 0);
	assert_int_equal(informer_lines_feed(&l, in, sizeof(in) - 1, record, &s), 0);
	/* "\r\r" keeps one '\r': only the one before '\n' belongs to the terminator */
	assert_int_equal(s.n, 3);
	assert_int_equal(s.len, strlen("{\"a\":1}\n{\"b\":2}\n\r\n"));
	assert_memory_equal(s.text, "{\"a\":1}\n{\"b\":2}\n\r\n", s.len);
	assert_int_equal(informer_lines_pending(&l), strlen("{\"c\":3}"));
	assert_int_equal(informer_lines_feed(&l, "\n", 1, record, &s), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(informer_lines_pending(&l), 0);
	seen_free(&s);
	informer_lines_cleanup(&l);
}

static void lines_cap_enforced(void **state)
{
	struct informer_lines l;
	struct seen s = { 0 };
	char buf[40];

	(void)state;
	memset(buf, 'x', sizeof(buf));

	/* exactly the cap: accepted, in one chunk or in pieces */
	informer_lines_init(&l, 16);
	assert_int_equal(informer_lines_feed(&l, buf, 16, record, &s), 0);
	assert_int_equal(informer_lines_feed(&l, "\n", 1, record, &s), 0);
	assert_int_equal(s.n, 1);
	buf[16] = '\n';
	assert_int_equal(informer_lines_feed(&l, buf, 17, record, &s), 0);
	assert_int_equal(s.n, 2);
	buf[16] = 'x';

	/* one over: refused as soon as the 17th byte arrives, newline or not */
	assert_int_equal(informer_lines_feed(&l, buf, 17, record, &s), -E2BIG);
	informer_lines_reset(&l);
	assert_int_equal(informer_lines_feed(&l, buf, 10, record, &s), 0);
	assert_int_equal(informer_lines_feed(&l, buf, 7, record, &s), -E2BIG);
	informer_lines_reset(&l);
	buf[17] = '\n';
	assert_int_equal(informer_lines_feed(&l, buf, 18, record, &s), -E2BIG);
	assert_int_equal(s.n, 2);

	/* after a reset the splitter works again */
	informer_lines_reset(&l);
	assert_int_equal(informer_lines_feed(&l, "{}\n", 3, record, &s), 0);
	assert_int_equal(s.n, 3);
	seen_free(&s);
	informer_lines_cleanup(&l);
}

static void lines_default_cap_is_16mib(void **state)
{
	struct informer_lines l;

	(void)state;
	informer_lines_init(&l, 0);
	assert_int_equal(l.max, 16u * 1024 * 1024);
	informer_lines_cleanup(&l);
}

static void lines_callback_stops_the_feed(void **state)
{
	static const char in[] = "a\nb\nc\nd\n";
	struct informer_lines l;
	struct seen s = { .stop_after = 2 };

	(void)state;
	informer_lines_init(&l, 0);
	assert_int_equal(informer_lines_feed(&l, in, sizeof(in) - 1, record, &s), 7);
	assert_int_equal(s.n, 2);
	/* the same from a carried partial line */
	informer_lines_reset(&l);
	s.n = 0;
	s.len = 0;
	s.stop_after = 1;
	assert_int_equal(informer_lines_feed(&l, "par", 3, record, &s), 0);
	assert_int_equal(informer_lines_feed(&l, "tial\nnext\n", 10, record, &s), 7);
	assert_int_equal(s.n, 1);
	assert_memory_equal(s.text, "partial\n", 8);
	seen_free(&s);
	informer_lines_cleanup(&l);
}

/* A 4 MiB event fed byte by byte: linear time (a re-scanning splitter would not finish). */
static void lines_large_event_byte_by_byte_is_linear(void **state)
{
	size_t n = 4u * 1024 * 1024, i;
	struct informer_lines l;
	struct seen s = { 0 };
	char *buf = malloc(n + 1);

	(void)state;
	assert_non_null(buf);
	memset(buf, 'y', n);
	buf[n] = '\n';
	informer_lines_init(&l, 0);
	for (i = 0; i <= n; i++)
		assert_int_equal(informer_lines_feed(&l, buf + i, 1, record, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.len, n + 1);
	assert_memory_equal(s.text, buf, n + 1);
	seen_free(&s);
	informer_lines_cleanup(&l);
	free(buf);
}

static void lines_empty_feed_and_cleanup_twice(void **state)
{
	struct informer_lines l;
	struct seen s = { 0 };

	(void)state;
	informer_lines_init(&l, 0);
	assert_int_equal(informer_lines_feed(&l, "", 0, record, &s), 0);
	assert_int_equal(s.n, 0);
	informer_lines_cleanup(&l);
	informer_lines_cleanup(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lines_recorded_streams_split_alike_in_any_chunking),
		cmocka_unit_test(lines_all_streams_concatenated),
		cmocka_unit_test(lines_empty_lines_and_crlf),
		cmocka_unit_test(lines_cap_enforced),
		cmocka_unit_test(lines_default_cap_is_16mib),
		cmocka_unit_test(lines_callback_stops_the_feed),
		cmocka_unit_test(lines_large_event_byte_by_byte_is_linear),
		cmocka_unit_test(lines_empty_feed_and_cleanup_twice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
