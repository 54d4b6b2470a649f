/*
 * informer/yaml.c - YAML documents -> jansson values with libyaml's event API (see yaml.h).
 *
 * Containers being built sit on an explicit stack (no recursion, so the depth
 * limit is a plain counter). An alias shares the anchored value (a jansson
 * reference, not a copy), so a "billion laughs" document costs no memory here;
 * but whoever walks the result visits every expansion, so the number of
 * nodes aliases stand for is capped.
 */
#include "informer/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

#define MAX_DEPTH	256
#define MAX_ALIAS_NODES (1024 * 1024)

#define DIGITS		"0123456789"

/* A sequence or mapping being filled. */
struct frame {
	json_t *node;
	char *key;    /* mapping: the key whose value comes next (NULL: a key comes next) */
	char *anchor; /* to register when the node is complete; NULL if none */
	size_t nodes; /* nodes in this subtree so far, aliases expanded */
};

struct builder {
	yaml_parser_t parser;
	struct frame stack[MAX_DEPTH];
	size_t depth;
	json_t *anchors; /* name -> [value, nodes]; anchors are per document */
	size_t expanded; /* nodes that aliases stood for, whole stream */
	json_t *doc;	 /* root of the current document, once complete */
	json_t *docs;
	const char *buf; /* the input, to place reader errors */
	size_t len;
	char *err;
	size_t errlen;
};

static int fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
	INFORMER_PRINTF(3, 4);

/* Report a problem at @m. Returns -EINVAL. */
static int fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!b->err || !b->errlen)
		return -EINVAL;
	n = snprintf(b->err, b->errlen, "line %zu column %zu: ", m->line + 1, m->column + 1);
	if (n >= 0 && (size_t)n < b->errlen) {
		va_start(ap, fmt);
		vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Where byte @off of the input is (libyaml places reader errors by offset only). */
static yaml_mark_t mark_at(const struct builder *b, size_t off)
{
	yaml_mark_t m = { .index = off };
	size_t i;

	for (i = 0; i < off && i < b->len; i++) {
		if (b->buf[i] == '\n') {
			m.line++;
			m.column = 0;
		} else {
			m.column++;
		}
	}
	return m;
}

static int parser_error(struct builder *b)
{
	const yaml_parser_t *p = &b->parser;
	const char *problem = p->problem ? p->problem : "invalid YAML";
	yaml_mark_t m;

	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (p->error == YAML_READER_ERROR) {
		m = mark_at(b, p->problem_offset);
		return fail(b, &m, "%s", problem);
	}
	if (p->context)
		return fail(b, &p->problem_mark, "%s (%s at line %zu column %zu)", problem,
			    p->context, p->context_mark.line + 1, p->context_mark.column + 1);
	return fail(b, &p->problem_mark, "%s", problem);
}

/* ---- scalar typing ---------------------------------------------------------- */

static bool one_of(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (strcmp(s, *words) == 0)
			return true;
	return false;
}

/* YAML 1.2 core float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_float(const char *s)
{
	size_t n;

	s += *s == '-' || *s == '+';
	n = strspn(s, DIGITS);
	if (!n && *s != '.')
		return false;
	s += n;
	if (*s == '.') {
		s++;
		if (!n && !strspn(s, DIGITS))
			return false;
		s += strspn(s, DIGITS);
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		s += *s == '-' || *s == '+';
		n = strspn(s, DIGITS);
		if (!n)
			return false;
		s += n;
	}
	return *s == '\0';
}

/* YAML 1.2 core int: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+. False when it does not fit. */
static bool int_value(const char *s, json_int_t *out)
{
	const char *digits = s, *set = DIGITS;
	int base = 10;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
		base = s[1] == 'x' ? 16 : 8;
		set = base == 16 ? DIGITS "abcdefABCDEF" : "01234567";
		digits = s + 2;
	} else if (*s == '-' || *s == '+') {
		digits = s + 1;
	}
	if (!*digits || digits[strspn(digits, set)] != '\0')
		return false;
	errno = 0;
	*out = strtoll(base == 10 ? s : digits, NULL, base);
	return errno == 0;
}

/*
 * The JSON value of a plain (unquoted, untagged) scalar. Integers too big for
 * json_int_t become reals, as other YAML-to-JSON converters do; .inf and
 * .nan stay strings because JSON cannot hold them.
 */
static json_t *plain_value(const char *s, size_t len)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	json_int_t i;
	double d;

	if (one_of(s, nulls))
		return json_null();
	if (one_of(s, trues))
		return json_true();
	if (one_of(s, falses))
		return json_false();
	if (int_value(s, &i))
		return json_integer(i);
	if (is_float(s)) {
		d = strtod(s, NULL);
		if (isfinite(d))
			return json_real(d);
	}
	return json_stringn(s, len);
}

/* ---- building ------------------------------------------------------------------ */

static struct frame *top(struct builder *b)
{
	return b->depth ? &b->stack[b->depth - 1] : NULL;
}

/* Whether the next node is a mapping key. */
static bool want_key(struct builder *b)
{
	struct frame *f = top(b);

	return f && json_is_object(f->node) && !f->key;
}

/* Remember @v (not stolen) under @name for later aliases. */
static int add_anchor(struct builder *b, const char *name, json_t *v, size_t nodes)
{
	json_t *entry = json_pack("[O,I]", v, (json_int_t)nodes);

	if (!entry || json_object_set_new(b->anchors, name, entry))
		return -ENOMEM;
	return 0;
}

/* An anchored mapping key can be aliased later, as a string. */
static int anchor_key(struct builder *b, const char *anchor, const char *s, size_t len)
{
	json_t *v = json_stringn(s, len);
	int err;

	if (!v)
		return -ENOMEM;
	err = add_anchor(b, anchor, v, 1);
	json_decref(v);
	return err;
}

/*
 * Put the complete node @v (stolen) where it belongs: into the container on
 * top of the stack or as the document root. @nodes is its size for the alias
 * limit; @anchor names it for later aliases.
 */
static int add_node(struct builder *b, json_t *v, const char *anchor, size_t nodes)
{
	struct frame *f = top(b);
	int err;

	if (!v)
		return -ENOMEM;
	if (anchor && add_anchor(b, anchor, v, nodes)) {
		json_decref(v);
		return -ENOMEM;
	}
	if (!f) {
		b->doc = v;
		return 0;
	}
	f->nodes += nodes;
	if (json_is_array(f->node))
		return json_array_append_new(f->node, v) ? -ENOMEM : 0;
	err = json_object_set_new(f->node, f->key, v) ? -ENOMEM : 0;
	free(f->key);
	f->key = NULL;
	return err;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *anchor = (const char *)ev->data.scalar.anchor;
	const char *tag = (const char *)ev->data.scalar.tag;
	json_t *v;

	if (memchr(s, '\0', len))
		return fail(b, &ev->start_mark, "NUL characters are not supported");
	if (want_key(b)) {
		if (json_object_get(top(b)->node, s))
			return fail(b, &ev->start_mark, "duplicate mapping key \"%.64s\"", s);
		top(b)->key = strdup(s);
		if (!top(b)->key)
			return -ENOMEM;
		return anchor ? anchor_key(b, anchor, s, len) : 0;
	}
	/* explicit tags are not interpreted: a tagged scalar stays a string */
	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag)
		v = plain_value(s, len);
	else
		v = json_stringn(s, len);
	return add_node(b, v, anchor, 1);
}

static int on_start(struct builder *b, const yaml_event_t *ev, json_t *node, const char *anchor)
{
	struct frame *f;

	if (!node)
		return -ENOMEM;
	if (want_key(b)) {
		json_decref(node);
		return fail(b, &ev->start_mark, "mappings and sequences as keys are not supported");
	}
	if (b->depth == MAX_DEPTH) {
		json_decref(node);
		return fail(b, &ev->start_mark, "nested deeper than %d levels", MAX_DEPTH);
	}
	f = &b->stack[b->depth++];
	memset(f, 0, sizeof(*f));
	f->node = node;
	f->nodes = 1;
	if (anchor) {
		f->anchor = strdup(anchor);
		if (!f->anchor)
			return -ENOMEM;
	}
	return 0;
}

static int on_end(struct builder *b)
{
	struct frame f = b->stack[--b->depth];
	int err;

	free(f.key);
	err = add_node(b, f.node, f.anchor, f.nodes);
	free(f.anchor);
	return err;
}

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	json_t *entry = json_object_get(b->anchors, name);
	size_t nodes;

	if (want_key(b))
		return fail(b, &ev->start_mark, "aliases as keys are not supported");
	/* a container's anchor is registered only once it is complete, so
	 * an alias inside its own anchored node is undefined, not a cycle */
	if (!entry)
		return fail(b, &ev->start_mark, "unknown alias \"%.64s\"", name);
	nodes = (size_t)json_integer_value(json_array_get(entry, 1));
	if (nodes > MAX_ALIAS_NODES - b->expanded)
		return fail(b, &ev->start_mark, "aliases expand to more than %d nodes",
			    MAX_ALIAS_NODES);
	b->expanded += nodes;
	return add_node(b, json_incref(json_array_get(entry, 0)), NULL, nodes);
}

static int on_document_end(struct builder *b)
{
	json_t *doc = b->doc;

	b->doc = NULL;
	json_object_clear(b->anchors);
	if (!doc || json_is_null(doc)) {
		json_decref(doc);
		return 0;
	}
	return json_array_append_new(b->docs, doc) ? -ENOMEM : 0;
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(b, ev, json_array(), (const char *)ev->data.sequence_start.anchor);
	case YAML_MAPPING_START_EVENT:
		return on_start(b, ev, json_object(), (const char *)ev->data.mapping_start.anchor);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_end(b);
	case YAML_ALIAS_EVENT:
		return on_alias(b, ev);
	case YAML_DOCUMENT_END_EVENT:
		return on_document_end(b);
	default:
		return 0;
	}
}

static void builder_cleanup(struct builder *b)
{
	while (b->depth) {
		struct frame *f = &b->stack[--b->depth];

		json_decref(f->node);
		free(f->key);
		free(f->anchor);
	}
	json_decref(b->doc);
	json_decref(b->anchors);
	yaml_parser_delete(&b->parser);
}

static int run(struct builder *b)
{
	yaml_event_t ev;
	bool done;
	int err;

	do {
		if (!yaml_parser_parse(&b->parser, &ev))
			return parser_error(b);
		err = on_event(b, &ev);
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	} while (!err && !done);
	return err;
}

int informer_yaml_load(const char *buf, size_t len, json_t **out, char *err, size_t errlen)
{
	struct builder *b;
	int ret = -ENOMEM;

	if (err && errlen)
		err[0] = '\0';
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->buf = buf;
	b->len = len;
	b->err = err;
	b->errlen = errlen;
	if (!yaml_parser_initialize(&b->parser))
		goto out_free;
	yaml_parser_set_input_string(&b->parser, (const unsigned char *)buf, len);
	b->anchors = json_object();
	b->docs = json_array();
	if (!b->anchors || !b->docs)
		goto out_builder;
	ret = run(b);
	if (!ret) {
		*out = b->docs;
		b->docs = NULL;
	}
out_builder:
	json_decref(b->docs);
	builder_cleanup(b);
out_free:
	free(b);
	return ret;
}
