/*
 * informer/objfile.c - Kubernetes objects from a file or a buffer (see objfile.h).
 *
 * The whole buffer is parsed first (every concatenated JSON value, or every
 * YAML document), so a syntax error anywhere leaves the caller's objects
 * untouched. Objects are then decoded into a private batch that is added to
 * the caller's only when nothing ran out of memory.
 */
#include "informer/objfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "informer/yaml.h"

/* Larger inputs are refused: no cluster's Services, slices and Nodes come near it. */
#define INPUT_MAX  (1024UL * 1024 * 1024)
#define READ_CHUNK (64 * 1024)

struct item {
	enum informer_kind kind;
	void *obj;
};

/* What one buffer holds, before it is added to the caller's objects. */
struct batch {
	struct item *items;
	size_t n, cap;
	size_t n_skipped;
	const struct informer_diag *diag;
};

static void say(const struct informer_diag *diag, const char *fmt, ...) INFORMER_PRINTF(2, 3);

static void say(const struct informer_diag *diag, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!diag || !diag->fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag->fn(diag->arg, msg);
}

static void free_object(enum informer_kind kind, void *obj)
{
	switch (kind) {
	case INFORMER_KIND_SERVICE:
		informer_service_free(obj);
		break;
	case INFORMER_KIND_ENDPOINTSLICE:
		informer_endpointslice_free(obj);
		break;
	case INFORMER_KIND_NODE:
		informer_node_free(obj);
		break;
	default:
		break;
	}
}

static int batch_push(struct batch *b, enum informer_kind kind, void *obj)
{
	struct item *items;
	size_t cap;

	if (b->n == b->cap) {
		cap = b->cap ? b->cap * 2 : 16;
		items = realloc(b->items, cap * sizeof(*items));
		if (!items) {
			free_object(kind, obj);
			return -ENOMEM;
		}
		b->items = items;
		b->cap = cap;
	}
	b->items[b->n].kind = kind;
	b->items[b->n++].obj = obj;
	return 0;
}

/* Free the objects still in @b (all of them, unless commit() took them) and the batch. */
static void batch_free(struct batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		free_object(b->items[i].kind, b->items[i].obj);
	free(b->items);
}

/* ---- one object --------------------------------------------------------------------- */

static int decode(const json_t *obj, enum informer_kind kind, const struct informer_diag *diag,
		  void **out)
{
	struct informer_service *svc;
	struct informer_endpointslice *eps;
	struct informer_node *node;
	int err;

	switch (kind) {
	case INFORMER_KIND_SERVICE:
		err = informer_decode_service(obj, diag, &svc);
		*out = svc;
		return err;
	case INFORMER_KIND_ENDPOINTSLICE:
		err = informer_decode_endpointslice(obj, diag, &eps);
		*out = eps;
		return err;
	default:
		err = informer_decode_node(obj, diag, &node);
		*out = node;
		return err;
	}
}

/* What is known of an object: its kind and apiVersion may come from its list. */
struct origin {
	enum informer_kind kind;
	char kind_name[64];	 /* "" when none */
	const char *api_version; /* NULL when none */
};

static void say_skipped(struct batch *b, const json_t *obj, const struct origin *o)
{
	const json_t *md = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));

	say(b->diag,
	    "%s %.253s%s%.253s (apiVersion %.64s): not a v1 Service, discovery.k8s.io/v1 EndpointSlice or v1 Node, skipped",
	    o->kind_name[0] ? o->kind_name : "(no kind)", ns ? ns : "", ns ? "/" : "",
	    name ? name : "(no name)", o->api_version ? o->api_version : "none");
}

/* Decode @obj into the batch; objects of other kinds and rejected ones are counted. */
static int add_object(struct batch *b, const json_t *obj, const struct origin *o)
{
	void *out;
	int err;

	if (o->kind == INFORMER_KIND_UNKNOWN) {
		say_skipped(b, obj, o);
		b->n_skipped++;
		return 0;
	}
	err = decode(obj, o->kind, b->diag, &out);
	if (err == -EPROTO) {
		/* the decoder said why */
		b->n_skipped++;
		return 0;
	}
	return err ? err : batch_push(b, o->kind, out);
}

/* An object that names its own kind (or none). */
static void own_origin(const json_t *obj, struct origin *o)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));

	o->kind = informer_kind_of(obj);
	snprintf(o->kind_name, sizeof(o->kind_name), "%s", kind ? kind : "");
	o->api_version = json_string_value(json_object_get(obj, "apiVersion"));
}

/* ---- lists --------------------------------------------------------------------------- */

static bool is_list(const json_t *v)
{
	const char *kind = json_string_value(json_object_get(v, "kind"));
	size_t n = kind ? strlen(kind) : 0;

	return n >= 4 && strcmp(kind + n - 4, "List") == 0;
}

/*
 * What the items of @list without a kind of their own are: for typed lists
 * (ServiceList...) the list's kind without "List", with its apiVersion.
 */
static int typed_origin(const json_t *list, struct origin *o)
{
	const char *kind = json_string_value(json_object_get(list, "kind"));
	int len = (int)strlen(kind) - 4;
	json_t *probe;

	memset(o, 0, sizeof(*o));
	if (!len)
		return 0; /* "List": every item must name its kind */
	snprintf(o->kind_name, sizeof(o->kind_name), "%.*s", len, kind);
	o->api_version = json_string_value(json_object_get(list, "apiVersion"));
	probe = json_pack("{s:s%, s:O*}", "kind", kind, (size_t)len, "apiVersion",
			  json_object_get(list, "apiVersion"));
	if (!probe)
		return -ENOMEM;
	o->kind = informer_kind_of(probe);
	json_decref(probe);
	return 0;
}

static int add_list(struct batch *b, const json_t *list)
{
	const char *kind = json_string_value(json_object_get(list, "kind"));
	const json_t *items = json_object_get(list, "items"), *item;
	struct origin typed, own;
	size_t i;
	int err;

	/* no items (or null) is an empty list */
	if (items && !json_is_array(items) && !json_is_null(items)) {
		say(b->diag, "%.64s: items is not an array, skipped", kind);
		b->n_skipped++;
		return 0;
	}
	err = typed_origin(list, &typed);
	if (err)
		return err;
	json_array_foreach (items, i, item) {
		if (!json_is_object(item)) {
			say(b->diag, "%.64s: items[%zu] is not an object, skipped", kind, i);
			b->n_skipped++;
			continue;
		}
		own_origin(item, &own);
		err = add_object(b, item, own.kind_name[0] ? &own : &typed);
		if (err)
			return err;
	}
	return 0;
}

/* A document or an element of a top-level array: an object or a list. */
static int add_value(struct batch *b, const json_t *v)
{
	struct origin o;

	if (!json_is_object(v)) {
		say(b->diag, "a JSON %s where an object was expected, skipped",
		    json_is_array(v) ? "array" : "scalar");
		b->n_skipped++;
		return 0;
	}
	if (is_list(v))
		return add_list(b, v);
	own_origin(v, &o);
	return add_object(b, v, &o);
}

/* A whole JSON value or YAML document: a value, or an array of values. */
static int add_top(struct batch *b, const json_t *v)
{
	const json_t *el;
	size_t i;
	int err;

	if (!json_is_array(v))
		return add_value(b, v);
	json_array_foreach (v, i, el) {
		err = add_value(b, el);
		if (err)
			return err;
	}
	return 0;
}

/* ---- parsing ------------------------------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_blank(const char *buf, size_t len, size_t off)
{
	while (off < len && is_blank(buf[off]))
		off++;
	return off;
}

/*
 * Report jansson's error @e about the value that starts at byte @off of @buf,
 * with line and column counted from the start of @buf.
 */
static int json_failed(const char *buf, size_t off, const json_error_t *e,
		       const struct informer_diag *diag)
{
	size_t i, line = 1, bol = 0;
	long col = e->column;

	/* jansson leaves the text empty when it could not even start; other
	 * allocation failures inside its lexer read as syntax errors */
	if (!e->text[0] || json_error_code(e) == json_error_out_of_memory)
		return -ENOMEM;
	for (i = 0; i < off; i++) {
		if (buf[i] == '\n') {
			line++;
			bol = i + 1;
		}
	}
	if (e->line == 1)
		col += (long)(off - bol);
	say(diag, "invalid JSON at line %zu column %ld: %s", line + (size_t)e->line - 1, col,
	    e->text);
	return -EINVAL;
}

/* Every JSON value in @buf (concatenated, as `kubectl get -o json` of several calls) into @out. */
static int parse_json(const char *buf, size_t len, const struct informer_diag *diag, json_t *out)
{
	size_t off = skip_blank(buf, len, 0);
	json_error_t e;
	json_t *v;

	/* jansson does not set json_error_code() on every failure: start from 0 */
	memset(&e, 0, sizeof(e));

	while (off < len) {
		v = json_loadb(buf + off, len - off, JSON_DISABLE_EOF_CHECK, &e);
		if (!v)
			return json_failed(buf, off, &e, diag);
		if (json_array_append_new(out, v))
			return -ENOMEM;
		/* the number of bytes the value took */
		off = skip_blank(buf, len, off + (size_t)e.position);
	}
	return 0;
}

static int parse_yaml(const char *buf, size_t len, const struct informer_diag *diag, json_t **out)
{
	char err[256];
	int ret = informer_yaml_load(buf, len, out, err, sizeof(err));

	if (ret == -EINVAL)
		say(diag, "invalid YAML at %s", err);
	return ret;
}

/* Every value (JSON) or document (YAML) of @buf. */
static int parse_values(const char *buf, size_t len, const struct informer_diag *diag, json_t **out)
{
	size_t off = skip_blank(buf, len, 0);
	int err;

	if (len > INPUT_MAX) {
		say(diag, "input of %zu bytes is larger than the limit of 1 GiB", len);
		return -EINVAL;
	}
	if (off < len && buf[off] != '{' && buf[off] != '[')
		return parse_yaml(buf, len, diag, out);
	/* JSON, or nothing but blanks (which YAML would refuse for a tab) */
	*out = json_array();
	if (!*out)
		return -ENOMEM;
	err = parse_json(buf, len, diag, *out);
	if (err) {
		json_decref(*out);
		*out = NULL;
	}
	return err;
}

/* ---- the caller's objects -------------------------------------------------------------- */

static size_t count_kind(const struct batch *b, enum informer_kind kind)
{
	size_t i, n = 0;

	for (i = 0; i < b->n; i++)
		n += b->items[i].kind == kind;
	return n;
}

/*
 * Move the batch's objects to @objs. Only the arrays can fail to grow; when
 * one does, @objs keeps its objects and counts (a grown array is harmless).
 */
static int commit(struct batch *b, struct informer_objects *objs)
{
	size_t n_svc = count_kind(b, INFORMER_KIND_SERVICE);
	size_t n_eps = count_kind(b, INFORMER_KIND_ENDPOINTSLICE);
	size_t n_node = count_kind(b, INFORMER_KIND_NODE), i;
	void *p;

	if (n_svc) {
		p = reallocarray(objs->services, objs->n_services + n_svc, sizeof(*objs->services));
		if (!p)
			return -ENOMEM;
		objs->services = p;
	}
	if (n_eps) {
		p = reallocarray(objs->slices, objs->n_slices + n_eps, sizeof(*objs->slices));
		if (!p)
			return -ENOMEM;
		objs->slices = p;
	}
	if (n_node) {
		p = reallocarray(objs->nodes, objs->n_nodes + n_node, sizeof(*objs->nodes));
		if (!p)
			return -ENOMEM;
		objs->nodes = p;
	}
	for (i = 0; i < b->n; i++) {
		if (b->items[i].kind == INFORMER_KIND_SERVICE)
			objs->services[objs->n_services++] = b->items[i].obj;
		else if (b->items[i].kind == INFORMER_KIND_ENDPOINTSLICE)
			objs->slices[objs->n_slices++] = b->items[i].obj;
		else
			objs->nodes[objs->n_nodes++] = b->items[i].obj;
	}
	objs->n_skipped += b->n_skipped;
	b->n = 0; /* the objects are the caller's now */
	return 0;
}

int informer_objects_parse(const char *buf, size_t len, const struct informer_diag *diag,
			   struct informer_objects *objs)
{
	struct batch b = { .diag = diag };
	json_t *values, *v;
	size_t i;
	int err;

	err = parse_values(buf, len, diag, &values);
	if (err)
		return err;
	json_array_foreach (values, i, v) {
		err = add_top(&b, v);
		if (err)
			break;
	}
	json_decref(values);
	if (!err)
		err = commit(&b, objs);
	batch_free(&b);
	return err;
}

/* All of @fd into a new buffer @out (not NUL-terminated). */
static int read_all(int fd, char **out, size_t *len)
{
	size_t cap = 0, n = 0;
	char *buf = NULL, *p;
	ssize_t r;

	for (;;) {
		if (n == cap) {
			if (cap > INPUT_MAX) {
				free(buf);
				return -EFBIG;
			}
			/* room for one byte past the limit tells "too big" from "just fits" */
			cap = cap ? cap * 2 : READ_CHUNK;
			if (cap > INPUT_MAX + 1)
				cap = INPUT_MAX + 1;
			p = realloc(buf, cap);
			if (!p) {
				free(buf);
				return -ENOMEM;
			}
			buf = p;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return -errno;
		}
		if (!r)
			break;
		n += (size_t)r;
	}
	*out = buf;
	*len = n;
	return 0;
}

int informer_objects_load(const char *path, const struct informer_diag *diag,
			  struct informer_objects *objs)
{
	bool std_in = strcmp(path, "-") == 0;
	const char *name = std_in ? "standard input" : path;
	char *buf = NULL;
	size_t len = 0;
	int fd, err;

	fd = std_in ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		say(diag, "cannot open %s: %s", name, strerror(-err));
		return err;
	}
	err = read_all(fd, &buf, &len);
	if (!std_in)
		close(fd);
	if (err == -EFBIG)
		say(diag, "cannot read %s: larger than the limit of 1 GiB", name);
	else if (err)
		say(diag, "cannot read %s: %s", name, strerror(-err));
	if (err)
		return err;
	err = informer_objects_parse(buf, len, diag, objs);
	free(buf);
	return err;
}

void informer_objects_cleanup(struct informer_objects *objs)
{
	size_t i;

	for (i = 0; i < objs->n_services; i++)
		informer_service_free(objs->services[i]);
	for (i = 0; i < objs->n_slices; i++)
		informer_endpointslice_free(objs->slices[i]);
	for (i = 0; i < objs->n_nodes; i++)
		informer_node_free(objs->nodes[i]);
	free(objs->services);
	free(objs->slices);
	free(objs->nodes);
	memset(objs, 0, sizeof(*objs));
}
