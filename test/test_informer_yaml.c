/*
 * test/test_informer_yaml.c - YAML documents -> JSON values (informer/yaml.c).
 *
 * Each case is YAML text and the JSON it must turn into (an array with one
 * element per non-empty document), or the start of the error it must give.
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
#include <jansson.h>

#include "informer/yaml.h"

struct yaml_case {
	const char *yaml;
	const char *want; /* the documents as JSON, or the start of the error message */
};

static const struct yaml_case typing_cases[] = {
	/* integers: YAML 1.2 core schema */
	{ "a: 1", "[{\"a\":1}]" },
	{ "a: -5", "[{\"a\":-5}]" },
	{ "a: +5", "[{\"a\":5}]" },
	{ "a: 0", "[{\"a\":0}]" },
	{ "a: 010", "[{\"a\":10}]" },
	{ "a: 0x1F", "[{\"a\":31}]" },
	{ "a: 0o17", "[{\"a\":15}]" },
	{ "a: 9223372036854775807", "[{\"a\":9223372036854775807}]" },
	{ "a: -9223372036854775808", "[{\"a\":-9223372036854775808}]" },
	{ "a: 9223372036854775808", "[{\"a\":9.2233720368547758e18}]" },
	{ "a: 0x10000000000000000", "[{\"a\":\"0x10000000000000000\"}]" },
	{ "a: 1_000", "[{\"a\":\"1_000\"}]" },
	{ "a: 0b101", "[{\"a\":\"0b101\"}]" },
	{ "a: 0x", "[{\"a\":\"0x\"}]" },
	{ "a: -0x1", "[{\"a\":\"-0x1\"}]" },
	{ "a: 1:20", "[{\"a\":\"1:20\"}]" },
	/* floats */
	{ "a: 1.5", "[{\"a\":1.5}]" },
	{ "a: -1.5e3", "[{\"a\":-1500.0}]" },
	{ "a: 1e3", "[{\"a\":1000.0}]" },
	{ "a: .5", "[{\"a\":0.5}]" },
	{ "a: 1.", "[{\"a\":1.0}]" },
	{ "a: 1e999", "[{\"a\":\"1e999\"}]" },
	{ "a: .", "[{\"a\":\".\"}]" },
	{ "a: 1e", "[{\"a\":\"1e\"}]" },
	{ "a: .inf", "[{\"a\":\".inf\"}]" },
	{ "a: -.Inf", "[{\"a\":\"-.Inf\"}]" },
	{ "a: .nan", "[{\"a\":\".nan\"}]" },
	/* booleans: only the 1.2 spellings; yes/no/on/off stay strings */
	{ "a: true", "[{\"a\":true}]" },
	{ "a: True", "[{\"a\":true}]" },
	{ "a: TRUE", "[{\"a\":true}]" },
	{ "a: false", "[{\"a\":false}]" },
	{ "a: False", "[{\"a\":false}]" },
	{ "a: FALSE", "[{\"a\":false}]" },
	{ "a: tRUE", "[{\"a\":\"tRUE\"}]" },
	{ "a: yes", "[{\"a\":\"yes\"}]" },
	{ "a: no", "[{\"a\":\"no\"}]" },
	{ "a: on", "[{\"a\":\"on\"}]" },
	{ "a: off", "[{\"a\":\"off\"}]" },
	{ "a: y", "[{\"a\":\"y\"}]" },
	/* null */
	{ "a: null", "[{\"a\":null}]" },
	{ "a: Null", "[{\"a\":null}]" },
	{ "a: NULL", "[{\"a\":null}]" },
	{ "a: ~", "[{\"a\":null}]" },
	{ "a:", "[{\"a\":null}]" },
	{ "a: nULL", "[{\"a\":\"nULL\"}]" },
	/* quoted, tagged and block scalars are strings */
	{ "a: \"1\"", "[{\"a\":\"1\"}]" },
	{ "a: '1'", "[{\"a\":\"1\"}]" },
	{ "a: 'true'", "[{\"a\":\"true\"}]" },
	{ "a: \"\"", "[{\"a\":\"\"}]" },
	{ "a: ''", "[{\"a\":\"\"}]" },
	{ "a: \"null\"", "[{\"a\":\"null\"}]" },
	{ "a: !!str 5", "[{\"a\":\"5\"}]" },
	{ "a: !!int 5", "[{\"a\":\"5\"}]" },
	{ "a: |\n  line 1\n  line 2\n", "[{\"a\":\"line 1\\nline 2\\n\"}]" },
	{ "a: >-\n  folded\n  text\n", "[{\"a\":\"folded text\"}]" },
	{ "a: \"tab\\tand \\u00e9\"", "[{\"a\":\"tab\\tand \\u00e9\"}]" },
	/* what Kubernetes objects contain */
	{ "a: 10.96.0.1", "[{\"a\":\"10.96.0.1\"}]" },
	{ "a: fd00:10:96::2a17", "[{\"a\":\"fd00:10:96::2a17\"}]" },
	{ "a: 198.51.100.0/24", "[{\"a\":\"198.51.100.0/24\"}]" },
	{ "a: 2026-07-01T09:12:03Z", "[{\"a\":\"2026-07-01T09:12:03Z\"}]" },
	{ "a: \"2026-07-01T09:12:03Z\"", "[{\"a\":\"2026-07-01T09:12:03Z\"}]" },
	{ "a: 15m0s", "[{\"a\":\"15m0s\"}]" },
	{ "a: 0.0.0.0:10249", "[{\"a\":\"0.0.0.0:10249\"}]" },
	{ "a: kubernetes.io/h2c", "[{\"a\":\"kubernetes.io/h2c\"}]" },
	{ "a: \"48210\"", "[{\"a\":\"48210\"}]" },
	/* keys are always strings, whatever they look like */
	{ "80: x", "[{\"80\":\"x\"}]" },
	{ "true: x", "[{\"true\":\"x\"}]" },
	{ "null: x", "[{\"null\":\"x\"}]" },
	{ "\"\": x", "[{\"\":\"x\"}]" },
	{ ".: {}", "[{\".\":{}}]" },
	{ "k:{\"port\":443,\"protocol\":\"TCP\"}: {}",
	  "[{\"k:{\\\"port\\\":443,\\\"protocol\\\":\\\"TCP\\\"}\":{}}]" },
	{ "kubernetes.io/service-name: web", "[{\"kubernetes.io/service-name\":\"web\"}]" },
	/* structure */
	{ "a: {}\nb: []", "[{\"a\":{},\"b\":[]}]" },
	{ "- 1\n- a\n- [x, {y: 2}]", "[[1,\"a\",[\"x\",{\"y\":2}]]]" },
	{ "items:\n- name: a\n  port: 80\n- name: b\n",
	  "[{\"items\":[{\"name\":\"a\",\"port\":80},{\"name\":\"b\"}]}]" },
	{ "a:\n  b:\n    c: [1, 2]\n", "[{\"a\":{\"b\":{\"c\":[1,2]}}}]" },
	{ "plain scalar document", "[\"plain scalar document\"]" },
	{ "42", "[42]" },
	/* documents: empty ones are skipped */
	{ "", "[]" },
	{ "# only a comment\n", "[]" },
	{ "---\n", "[]" },
	{ "--- ~\n", "[]" },
	{ "--- null\n---\n...\n", "[]" },
	{ "a: 1\n---\nb: 2\n", "[{\"a\":1},{\"b\":2}]" },
	{ "---\na: 1\n...\n---\n---\nb: 2\n...\n", "[{\"a\":1},{\"b\":2}]" },
	{ "--- [1]\n--- {a: b}\n", "[[1],{\"a\":\"b\"}]" },
	/* anchors and aliases share values; anchors are per document */
	{ "a: &x [1, 2]\nb: *x\n", "[{\"a\":[1,2],\"b\":[1,2]}]" },
	{ "a: &s text\nb: *s\n", "[{\"a\":\"text\",\"b\":\"text\"}]" },
	{ "a: &x 1\nb: &x 2\nc: *x\n", "[{\"a\":1,\"b\":2,\"c\":2}]" },
	{ "&k key: v\nother: *k\n", "[{\"key\":\"v\",\"other\":\"key\"}]" },
	{ "a: &m {x: 1}\nb: [*m, *m]\n", "[{\"a\":{\"x\":1},\"b\":[{\"x\":1},{\"x\":1}]}]" },
	{ "<<: {a: 1}\n", "[{\"<<\":{\"a\":1}}]" },
};

static const struct yaml_case error_cases[] = {
	{ "a: &x 1\n---\nb: *x\n", "line 3 column 4: unknown alias \"x\"" },
	{ "a: &x [1, *x]\n", "line 1 column 11: unknown alias \"x\"" },
	{ "a: *nope\n", "line 1 column 4: unknown alias \"nope\"" },
	{ "a: 1\na: 2\n", "line 2 column 1: duplicate mapping key \"a\"" },
	{ "? [a]\n: b\n", "line 1 column 3: mappings and sequences as keys are not supported" },
	{ "&a x: 1\n*a : 2\n", "line 2 column 1: aliases as keys are not supported" },
	{ "a: \"x\\0y\"\n", "line 1 column 4: NUL characters are not supported" },
	{ "a: [1, 2\n", "line 2 column 1: did not find expected ',' or ']'" },
	{ "a: b: c\n", "line 1 column 5: mapping values are not allowed in this context" },
	{ "a:\n  b: 1\n c: 2\n", "line 3 column 2: did not find expected key" },
	{ "\tx: 1\n", "line 1 column 1:" },
	{ "a: \xff\n", "line 1 column 4: invalid leading UTF-8 octet" },
	{ "a: 1\nb: \xc3\x28\n", "line 2 column 5: invalid trailing UTF-8 octet" },
	{ "a: 'unterminated\n", "line 2 column 1: found unexpected end of stream" },
};

static void run_case(const struct yaml_case *c)
{
	char err[256];
	json_t *got = NULL, *want;
	char *text;
	int rc = informer_yaml_load(c->yaml, strlen(c->yaml), &got, err, sizeof(err));

	if (rc)
		fail_msg("%s: rc %d: %s", c->yaml, rc, err);
	want = json_loads(c->want, 0, NULL);
	assert_non_null(want);
	/* json_equal() tells 1 from 1.0, so integers and reals are checked too */
	if (!json_equal(got, want)) {
		text = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
		fail_msg("%s: got %s, expected %s", c->yaml, text, c->want);
	}
	json_decref(want);
	json_decref(got);
}

static void plain_scalars_typed_as_yaml_core_schema(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(typing_cases) / sizeof(typing_cases[0]); i++)
		run_case(&typing_cases[i]);
}

static void errors_name_line_and_column(void **state)
{
	char err[256];
	json_t *docs;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct yaml_case *c = &error_cases[i];
		int rc = informer_yaml_load(c->yaml, strlen(c->yaml), &docs, err, sizeof(err));

		if (rc != -EINVAL)
			fail_msg("%s: rc %d, expected an error", c->yaml, rc);
		if (strncmp(err, c->want, strlen(c->want)) != 0)
			fail_msg("%s: error \"%s\", expected \"%s...\"", c->yaml, err, c->want);
	}
}

/* A document of @depth nested flow sequences. */
static char *nested(size_t depth)
{
	char *s = malloc(2 * depth + 1);
	size_t i;

	assert_non_null(s);
	for (i = 0; i < depth; i++) {
		s[i] = '[';
		s[depth + i] = ']';
	}
	s[2 * depth] = '\0';
	return s;
}

static void nesting_deeper_than_256_rejected(void **state)
{
	char err[128];
	json_t *docs;
	char *s;

	(void)state;
	s = nested(256);
	assert_int_equal(informer_yaml_load(s, strlen(s), &docs, err, sizeof(err)), 0);
	json_decref(docs);
	free(s);

	s = nested(257);
	assert_int_equal(informer_yaml_load(s, strlen(s), &docs, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 1 column 257: nested deeper than 256 levels");
	free(s);

	s = nested(100000);
	assert_int_equal(informer_yaml_load(s, strlen(s), &docs, err, sizeof(err)), -EINVAL);
	free(s);
}

/* "Billion laughs": nine levels of ten aliases each would stand for 10^9 nodes. */
static void alias_expansion_capped_against_billion_laughs(void **state)
{
	static const char laughs[] = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
				     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
				     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
				     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
				     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
				     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
				     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
				     "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
				     "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	char err[128];
	json_t *docs;

	(void)state;
	assert_int_equal(informer_yaml_load(laughs, sizeof(laughs) - 1, &docs, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "aliases expand to more than 1048576 nodes"));
	/* four levels (about 11,000 nodes) are fine */
	assert_int_equal(
		informer_yaml_load(laughs, strstr(laughs, "e:") - laughs, &docs, err, sizeof(err)),
		0);
	assert_int_equal(
		json_array_size(json_array_get(json_object_get(json_array_get(docs, 0), "d"), 9)),
		10);
	json_decref(docs);
}

/* The error buffer may be missing or tiny; buffers need no NUL. */
static void error_buffer_may_be_missing_or_tiny(void **state)
{
	static const char bad[] = "a: [1, 2\n";
	char tiny[8];
	json_t *docs;

	(void)state;
	assert_int_equal(informer_yaml_load(bad, sizeof(bad) - 1, &docs, NULL, 0), -EINVAL);
	assert_int_equal(informer_yaml_load(bad, sizeof(bad) - 1, &docs, tiny, sizeof(tiny)),
			 -EINVAL);
	assert_string_equal(tiny, "line 2 ");
	/* only the first 4 bytes: "a: [" is cut short, "a: 1" is whole */
	assert_int_equal(informer_yaml_load("a: 1xyz", 4, &docs, NULL, 0), 0);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(docs, 0), "a")), 1);
	json_decref(docs);
}

/* The bundled kubectl-style example parses into the List it shows. */
static void kubectl_yaml_list_parses(void **state)
{
	FILE *f = fopen("test/data/informer/examples/service-list.yaml", "rb");
	char *buf = malloc(1 << 16), err[256];
	json_t *docs, *list;
	size_t len;

	(void)state;
	assert_non_null(f);
	assert_non_null(buf);
	len = fread(buf, 1, 1 << 16, f);
	fclose(f);
	assert_int_equal(informer_yaml_load(buf, len, &docs, err, sizeof(err)), 0);
	assert_int_equal(json_array_size(docs), 1);
	list = json_array_get(docs, 0);
	assert_string_equal(json_string_value(json_object_get(list, "kind")), "List");
	assert_string_equal(json_string_value(json_object_get(json_object_get(list, "metadata"),
							      "resourceVersion")),
			    "");
	assert_int_equal(json_array_size(json_object_get(list, "items")), 6);
	json_decref(docs);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_scalars_typed_as_yaml_core_schema),
		cmocka_unit_test(errors_name_line_and_column),
		cmocka_unit_test(nesting_deeper_than_256_rejected),
		cmocka_unit_test(alias_expansion_capped_against_billion_laughs),
		cmocka_unit_test(error_buffer_may_be_missing_or_tiny),
		cmocka_unit_test(kubectl_yaml_list_parses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
