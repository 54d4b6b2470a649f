/*
 * informer/decode.c - Kubernetes JSON -> informer/types.h structs (see decode.h).
 *
 * What a bad value costs, field by field:
 *   - the object: a missing name (or namespace), a wrong JSON type for a field
 *     the proxy reads, an unknown Service type or port protocol, a port number
 *     out of range, a clusterIP that is not "", "None" or an IP. Upstream
 *     would never program such a Service (the API server cannot store it), so
 *     neither do we;
 *   - the entry: an unparsable external IP, source range, pod CIDR or node
 *     address, an endpoint without a valid address (or with malformed
 *     conditions, node name, zone or hints), a slice port with a bad protocol
 *     or number, a malformed taint;
 *   - nothing but the value: an unknown traffic policy (Cluster), session
 *     affinity (None) or ipMode (Proxy, as upstream's IsVIPMode), an invalid
 *     trigger time (0), a load-balancer ingress IP (the entry stays, without
 *     IP), fields the proxy only shows (uid, resourceVersion, appProtocol,
 *     hostnames, externalName, publishNotReadyAddresses).
 * JSON null counts as absent everywhere: the API writes null for unset lists.
 * Every problem is reported once through the diag callback, with the object,
 * the JSON path and the value (cut to VALUE_MAX bytes).
 */
#include "informer/decode.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "informer/arena.h"
#include "informer/ip.h"

#define VALUE_MAX		 64  /* bytes of a bad value quoted in a message */
#define NAME_MAX_SHOWN		 253 /* bytes of a namespace or name in a message */
#define MSG_MAX			 1024

#define ANN_TRIGGER		 "endpoints.kubernetes.io/last-change-trigger-time"
#define LABEL_SERVICE_NAME	 "kubernetes.io/service-name"

#define AFFINITY_TIMEOUT_DEFAULT 10800
#define AFFINITY_TIMEOUT_MAX	 86400

/* What a problem costs, appended to its message. */
static const char REJECT[] = "object ignored";
static const char IGNORED[] = "ignored";

/* Decoding state of one object. */
struct dec {
	const struct informer_diag *diag;
	const char *kind;
	const char *ns, *name; /* identity for messages, borrowed from the JSON; may be NULL */
	struct informer_arena *a;
	char path[256]; /* JSON path of the value being decoded */
	size_t plen;
};

/* ---- messages and paths -------------------------------------------------------- */

/* Append one path segment; "[i]" segments attach without a dot. Returns the old length. */
static size_t enter(struct dec *d, const char *fmt, ...) INFORMER_PRINTF(2, 3);

static size_t enter(struct dec *d, const char *fmt, ...)
{
	size_t mark = d->plen, room;
	va_list ap;
	int n;

	if (d->plen && fmt[0] != '[' && d->plen < sizeof(d->path) - 1)
		d->path[d->plen++] = '.';
	room = sizeof(d->path) - d->plen;
	va_start(ap, fmt);
	n = vsnprintf(d->path + d->plen, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		d->plen += (size_t)n < room ? (size_t)n : room - 1;
	return mark;
}

static void leave(struct dec *d, size_t mark)
{
	d->plen = mark;
	d->path[mark] = '\0';
}

/* How many bytes of @s to show so that at most @max are, without splitting a UTF-8 character. */
static int utf8_cut(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n <= max)
		return (int)n;
	n = max;
	while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return (int)n;
}

/* Where value_text() collects the JSON text: the first VALUE_MAX + 1 bytes. */
struct text {
	char buf[VALUE_MAX + 2];
	size_t len;
};

static int text_add(const char *s, size_t n, void *arg)
{
	struct text *t = arg;
	size_t room = sizeof(t->buf) - 1 - t->len;

	memcpy(t->buf + t->len, s, n < room ? n : room);
	t->len += n < room ? n : room;
	/* stop jansson once there is more than will be shown */
	return n < room ? 0 : -1;
}

/* @v as compact JSON, cut to VALUE_MAX bytes (then followed by "..."). */
static void value_text(const json_t *v, char *buf, size_t len)
{
	struct text t = { .len = 0 };
	int n;

	/* a stop from text_add() is the only failure that leaves text behind */
	if (json_dump_callback(v, text_add, &t, JSON_ENCODE_ANY | JSON_COMPACT) && !t.len) {
		snprintf(buf, len, "(?)");
		return;
	}
	t.buf[t.len] = '\0';
	n = utf8_cut(t.buf, VALUE_MAX);
	snprintf(buf, len, "%.*s%s", n, t.buf, t.buf[n] ? "..." : "");
}

static void report(const struct dec *d, const char *key, const json_t *v, const char *fmt, ...)
	INFORMER_PRINTF(4, 5);

/*
 * Report a problem with @key (NULL: the value at the path itself) whose
 * value is @v (NULL: absent): "Kind ns/name: path.key value: what".
 */
static void report(const struct dec *d, const char *key, const json_t *v, const char *fmt, ...)
{
	const char *ns = d->ns ? d->ns : "", *name = d->name ? d->name : "(no name)";
	char msg[MSG_MAX], where[sizeof(d->path) + VALUE_MAX + 80], val[VALUE_MAX + 8] = "";
	va_list ap;
	int n;

	if (!d->diag || !d->diag->fn)
		return;
	if (v)
		value_text(v, val, sizeof(val));
	n = snprintf(where, sizeof(where), "%s%s%.64s", d->path,
		     d->plen && key && key[0] != '[' ? "." : "", key ? key : "");
	if (v && n >= 0 && (size_t)n < sizeof(where))
		snprintf(where + n, sizeof(where) - (size_t)n, "%s%s", n ? " " : "", val);
	n = snprintf(msg, sizeof(msg), "%s %.*s%s%.*s: %s%s", d->kind, utf8_cut(ns, NAME_MAX_SHOWN),
		     ns, d->ns ? "/" : "", utf8_cut(name, NAME_MAX_SHOWN), name, where,
		     *where ? ": " : "");
	if (n > 0 && (size_t)n < sizeof(msg)) {
		va_start(ap, fmt);
		vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	d->diag->fn(d->diag->arg, msg);
}

/* ---- typed access ---------------------------------------------------------------- */

/* @key of @obj; NULL when absent or null. */
static const json_t *get(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

/*
 * String @key of @obj into @out, borrowed from the JSON (NULL when absent).
 * Returns -EPROTO, reported with @verdict, for another type.
 */
static int get_str(struct dec *d, const json_t *obj, const char *key, const char *verdict,
		   const char **out)
{
	const json_t *v = get(obj, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v)) {
		report(d, key, v, "not a string, %s", verdict);
		return -EPROTO;
	}
	*out = json_string_value(v);
	return 0;
}

/* Like get_str(), but the string is copied into the object. */
static int dup_str(struct dec *d, const json_t *obj, const char *key, const char *verdict,
		   const char **out)
{
	const char *s;
	int err = get_str(d, obj, key, verdict, &s);

	if (err || !s)
		return err;
	*out = informer__arena_strdup(d->a, s);
	return *out ? 0 : -ENOMEM;
}

/* An optional string the proxy only shows: a wrong type drops just the value. */
static int opt_str(struct dec *d, const json_t *obj, const char *key, const char **out)
{
	int err = dup_str(d, obj, key, IGNORED, out);

	return err == -EPROTO ? 0 : err;
}

/* Integer @key of @obj in @min..@max into @out; left alone when absent. */
static int get_int(struct dec *d, const json_t *obj, const char *key, json_int_t min,
		   json_int_t max, const char *verdict, json_int_t *out)
{
	const json_t *v = get(obj, key);

	if (!v)
		return 0;
	if (!json_is_integer(v)) {
		report(d, key, v, "not an integer, %s", verdict);
		return -EPROTO;
	}
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		report(d, key, v, "out of range, %s", verdict);
		return -EPROTO;
	}
	*out = json_integer_value(v);
	return 0;
}

static int get_port(struct dec *d, const json_t *obj, const char *key, json_int_t min,
		    const char *verdict, uint16_t *out)
{
	json_int_t v = 0;
	int err = get_int(d, obj, key, min, 65535, verdict, &v);

	if (!err)
		*out = (uint16_t)v;
	return err;
}

/* A *bool: UNSET when absent. */
static int get_cond(struct dec *d, const json_t *obj, const char *key, const char *verdict,
		    enum informer_cond *out)
{
	const json_t *v = get(obj, key);

	*out = INFORMER_COND_UNSET;
	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		report(d, key, v, "not a boolean, %s", verdict);
		return -EPROTO;
	}
	*out = json_is_true(v) ? INFORMER_COND_TRUE : INFORMER_COND_FALSE;
	return 0;
}

/* An optional boolean the proxy does not act on: a wrong type counts as false. */
static void opt_bool(struct dec *d, const json_t *obj, const char *key, bool *out)
{
	enum informer_cond c;

	/* a wrong type is reported and leaves c UNSET */
	(void)get_cond(d, obj, key, IGNORED, &c);
	*out = c == INFORMER_COND_TRUE;
}

/* Object or array @key of @obj (NULL when absent); -EPROTO (reported) for another type. */
static int get_typed(struct dec *d, const json_t *obj, const char *key, json_type type,
		     const char *verdict, const json_t **out)
{
	const json_t *v = get(obj, key);

	*out = NULL;
	if (!v)
		return 0;
	if (json_typeof(v) != type) {
		report(d, key, v, "not an %s, %s", type == JSON_OBJECT ? "object" : "array",
		       verdict);
		return -EPROTO;
	}
	*out = v;
	return 0;
}

static int get_object(struct dec *d, const json_t *obj, const char *key, const char *verdict,
		      const json_t **out)
{
	return get_typed(d, obj, key, JSON_OBJECT, verdict, out);
}

static int get_array(struct dec *d, const json_t *obj, const char *key, const char *verdict,
		     const json_t **out)
{
	return get_typed(d, obj, key, JSON_ARRAY, verdict, out);
}

static int get_proto(struct dec *d, const json_t *obj, const char *verdict,
		     enum informer_proto *out)
{
	const char *s;
	int err = get_str(d, obj, "protocol", verdict, &s);

	*out = INFORMER_PROTO_TCP;
	if (err || !s || strcmp(s, "TCP") == 0)
		return err;
	if (strcmp(s, "UDP") == 0) {
		*out = INFORMER_PROTO_UDP;
	} else if (strcmp(s, "SCTP") == 0) {
		*out = INFORMER_PROTO_SCTP;
	} else {
		report(d, "protocol", get(obj, "protocol"), "unknown protocol, %s", verdict);
		return -EPROTO;
	}
	return 0;
}

/* ---- addresses ------------------------------------------------------------------- */

static int store_ip(struct dec *d, const struct informer_addr *a, struct informer_ip *out)
{
	char buf[INFORMER_IP_STRLEN];

	out->ip = informer__arena_strdup(d->a, informer_addr_format(a, buf, sizeof(buf)));
	out->family = a->family;
	return out->ip ? 0 : -ENOMEM;
}

static int store_cidr(struct dec *d, const struct informer_prefix *p, struct informer_cidr *out)
{
	char buf[INFORMER_IP_STRLEN];

	out->cidr = informer__arena_strdup(d->a, informer_prefix_format(p, buf, sizeof(buf)));
	out->family = p->addr.family;
	return out->cidr ? 0 : -ENOMEM;
}

/* Go's unicode.IsSpace (which strings.TrimSpace uses). */
static bool is_space(unsigned int c)
{
	static const unsigned int spaces[] = {
		'\t', '\n',   '\v',   '\f',   '\r',   ' ',    0x85,
		0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000
	};
	size_t i;

	for (i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++)
		if (c == spaces[i])
			return true;
	return c >= 0x2000 && c <= 0x200A;
}

/* The code point that starts at @s (valid UTF-8, as every jansson string is) and its length. */
static unsigned int utf8_decode(const unsigned char *s, size_t *len)
{
	if (s[0] < 0x80) {
		*len = 1;
		return s[0];
	}
	if (s[0] < 0xE0) {
		*len = 2;
		return (s[0] & 0x1Fu) << 6 | (s[1] & 0x3Fu);
	}
	if (s[0] < 0xF0) {
		*len = 3;
		return (s[0] & 0x0Fu) << 12 | (s[1] & 0x3Fu) << 6 | (s[2] & 0x3Fu);
	}
	*len = 4;
	return (s[0] & 0x07u) << 18 | (s[1] & 0x3Fu) << 12 | (s[2] & 0x3Fu) << 6 | (s[3] & 0x3Fu);
}

/* strings.TrimSpace: the bounds of @s without leading and trailing white space. */
static void trim_space(const char *s, size_t *off, size_t *len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t start = 0, end = strlen(s), n, last;

	while (start < end && is_space(utf8_decode(u + start, &n)))
		start += n;
	while (end > start) {
		for (last = end - 1; last > start && (u[last] & 0xC0) == 0x80; last--)
			;
		if (!is_space(utf8_decode(u + last, &n)))
			break;
		end = last;
	}
	*off = start;
	*len = end - start;
}

/* ---- metadata --------------------------------------------------------------------- */

static bool is_leap(long y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long long days_from_civil(long y, unsigned int m, unsigned int day)
{
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (long)(m > 2 ? m - 3 : m + 9) + 2) / 5 + (long)day - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (long long)era * 146097 + doe - 719468;
}

/* @n decimal digits at @s as a number, or -1. */
static long num(const char *s, int n)
{
	long v = 0;
	int i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Fractional seconds ".d+" at @s as nanoseconds (digits past the ninth are ignored). */
static const char *frac_ns(const char *s, long long *ns)
{
	long long scale = 100000000;

	*ns = 0;
	if (*s != '.')
		return s;
	if (s[1] < '0' || s[1] > '9')
		return NULL;
	for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
		*ns += (*s - '0') * scale;
	return s;
}

/* The zone "Z" or "+hh:mm"/"-hh:mm" at @s (the whole rest) as seconds east of UTC. */
static bool zone_offset(const char *s, long *off)
{
	long h, m;

	*off = 0;
	if (strcmp(s, "Z") == 0)
		return true;
	if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6 || s[3] != ':')
		return false;
	h = num(s + 1, 2);
	m = num(s + 4, 2);
	if (h < 0 || h > 23 || m < 0 || m > 59)
		return false;
	*off = (s[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
	return true;
}

/*
 * RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm)", as Go's time.RFC3339Nano
 * parses it, to nanoseconds since the epoch. False when invalid or out of range.
 */
static bool parse_rfc3339(const char *s, int64_t *out)
{
	static const unsigned char mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	long y, mo, dd, h, mi, sec, off;
	long long frac, secs, ns;

	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':')
		return false;
	y = num(s, 4);
	mo = num(s + 5, 2);
	dd = num(s + 8, 2);
	h = num(s + 11, 2);
	mi = num(s + 14, 2);
	sec = num(s + 17, 2);
	if (y < 0 || mo < 1 || mo > 12 || dd < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    sec < 0 || sec > 59)
		return false;
	if (dd > mdays[mo - 1] + (mo == 2 && is_leap(y)))
		return false;
	s = frac_ns(s + 19, &frac);
	if (!s || !zone_offset(s, &off))
		return false;
	secs = days_from_civil(y, (unsigned int)mo, (unsigned int)dd) * 86400 + h * 3600 + mi * 60 +
	       sec - off;
	if (__builtin_mul_overflow(secs, 1000000000LL, &ns) ||
	    __builtin_add_overflow(ns, frac, &ns))
		return false;
	*out = ns;
	return true;
}

static int label_cmp(const void *a, const void *b)
{
	const struct informer_label *x = a, *y = b;

	return strcmp(x->key, y->key);
}

/* metadata.labels, every string-valued one, sorted by key. */
static int decode_labels(struct dec *d, const json_t *md, struct informer_meta *m)
{
	const json_t *labels, *v;
	const char *key;
	size_t mark;
	int err;

	err = get_object(d, md, "labels", REJECT, &labels);
	if (err || !labels)
		return err;
	m->labels = informer__arena_alloc(d->a, json_object_size(labels), sizeof(*m->labels));
	if (!m->labels)
		return -ENOMEM;
	/* jansson iterates through non-const pointers; nothing is modified */
	json_object_foreach ((json_t *)labels, key, v) {
		struct informer_label *l = &m->labels[m->n_labels];

		if (!json_is_string(v)) {
			mark = enter(d, "labels[\"%.64s\"]", key);
			report(d, NULL, v, "not a string, label ignored");
			leave(d, mark);
			continue;
		}
		l->key = informer__arena_strdup(d->a, key);
		l->value = informer__arena_strdup(d->a, json_string_value(v));
		if (!l->key || !l->value)
			return -ENOMEM;
		m->n_labels++;
	}
	qsort(m->labels, m->n_labels, sizeof(*m->labels), label_cmp);
	return 0;
}

/* The annotation endpoints.kubernetes.io/last-change-trigger-time; 0 unless valid. */
static void decode_trigger(struct dec *d, const json_t *md, struct informer_meta *m)
{
	const json_t *ann, *v;
	size_t mark;

	if (get_object(d, md, "annotations", IGNORED, &ann))
		return;
	v = get(ann, ANN_TRIGGER);
	if (!v)
		return;
	mark = enter(d, "annotations[\"" ANN_TRIGGER "\"]");
	if (!json_is_string(v))
		report(d, NULL, v, "not a string, ignored");
	else if (!parse_rfc3339(json_string_value(v), &m->last_change_trigger_ns))
		report(d, NULL, v, "not an RFC 3339 time, ignored");
	leave(d, mark);
}

/* A string every object must have: metadata.name, and metadata.namespace when namespaced. */
static int required_str(struct dec *d, const json_t *md, const char *key, const char **out)
{
	const json_t *v = get(md, key);

	if (!v) {
		report(d, key, NULL, "missing, %s", REJECT);
		return -EPROTO;
	}
	if (!json_is_string(v) || !json_string_length(v)) {
		report(d, key, v, "%s, %s", json_is_string(v) ? "empty" : "not a string", REJECT);
		return -EPROTO;
	}
	*out = informer__arena_strdup(d->a, json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

static int decode_meta(struct dec *d, const json_t *obj, bool namespaced, struct informer_meta *m)
{
	const json_t *md;
	size_t mark;
	int err;

	err = get_object(d, obj, "metadata", REJECT, &md);
	if (err)
		return err;
	mark = enter(d, "metadata");
	err = required_str(d, md, "name", &m->name);
	if (!err && namespaced)
		err = required_str(d, md, "namespace", &m->namespace);
	if (!err)
		err = opt_str(d, md, "uid", &m->uid);
	if (!err)
		err = opt_str(d, md, "resourceVersion", &m->resource_version);
	if (!err)
		err = decode_labels(d, md, m);
	if (!err) {
		m->deleting = get(md, "deletionTimestamp") != NULL;
		decode_trigger(d, md, m);
	}
	leave(d, mark);
	return err;
}

/* Start decoding @obj; on success the caller owns d->a. */
static int dec_begin(struct dec *d, const struct informer_diag *diag, const char *kind,
		     bool namespaced, const json_t *obj)
{
	const json_t *md = json_object_get(obj, "metadata");

	memset(d, 0, sizeof(*d));
	d->diag = diag;
	d->kind = kind;
	d->ns = namespaced ? json_string_value(json_object_get(md, "namespace")) : NULL;
	d->name = json_string_value(json_object_get(md, "name"));
	if (!json_is_object(obj)) {
		report(d, NULL, obj, "not a JSON object, %s", REJECT);
		return -EPROTO;
	}
	d->a = informer__arena_new();
	return d->a ? 0 : -ENOMEM;
}

/* ---- lists ------------------------------------------------------------------------- */

/*
 * Decode one list entry @v into @slot. Returns 0 (keep it), -EPROTO (drop
 * it; the function reported why) or -ENOMEM.
 */
typedef int (*entry_fn)(struct dec *d, const json_t *v, void *slot, const void *arg);

/*
 * Decode every entry of the array @arr (at path segment @key) with @fn into
 * consecutive @size-byte slots of @base, counting kept ones in @n.
 */
static int each_entry(struct dec *d, const json_t *arr, const char *key, void *base, size_t size,
		      entry_fn fn, const void *arg, size_t *n)
{
	size_t i, mark = enter(d, "%s", key), m;
	int err = 0;

	for (i = 0; i < json_array_size(arr) && err != -ENOMEM; i++) {
		void *slot = (char *)base + *n * size;

		m = enter(d, "[%zu]", i);
		err = fn(d, json_array_get(arr, i), slot, arg);
		if (!err)
			(*n)++;
		else
			memset(slot, 0, size); /* reused by the next entry */
		leave(d, m);
	}
	leave(d, mark);
	return err == -ENOMEM ? err : 0;
}

static int not_object(struct dec *d, const json_t *v, const char *verdict)
{
	if (json_is_object(v))
		return 0;
	report(d, NULL, v, "not an object, %s", verdict);
	return -EPROTO;
}

/* An entry that must be a valid IP (spec.externalIPs[i]). */
static int ip_entry(struct dec *d, const json_t *v, void *slot, const void *arg)
{
	struct informer_addr a;

	(void)arg;
	if (!json_is_string(v)) {
		report(d, NULL, v, "not a string, ignored");
		return -EPROTO;
	}
	if (informer_addr_parse(json_string_value(v), &a)) {
		report(d, NULL, v, "invalid IP, ignored");
		return -EPROTO;
	}
	return store_ip(d, &a, slot);
}

/*
 * An entry that must be a valid CIDR. With @arg non-NULL it is trimmed first,
 * as upstream does for loadBalancerSourceRanges.
 */
static int cidr_entry(struct dec *d, const json_t *v, void *slot, const void *arg)
{
	struct informer_prefix p;
	size_t off = 0, len;
	char *s;
	int bad;

	if (!json_is_string(v)) {
		report(d, NULL, v, "not a string, ignored");
		return -EPROTO;
	}
	len = json_string_length(v);
	if (arg)
		trim_space(json_string_value(v), &off, &len);
	s = strndup(json_string_value(v) + off, len);
	if (!s)
		return -ENOMEM;
	bad = informer_prefix_parse(s, &p);
	free(s);
	if (bad) {
		report(d, NULL, v, "invalid CIDR, ignored");
		return -EPROTO;
	}
	return store_cidr(d, &p, slot);
}

/* Array @key of @obj, every valid CIDR of it (others are reported and dropped). */
static int cidr_list(struct dec *d, const json_t *obj, const char *key, bool trim,
		     struct informer_cidr **out, size_t *n)
{
	const json_t *arr;
	int err = get_array(d, obj, key, REJECT, &arr);

	if (err || !arr)
		return err;
	*out = informer__arena_alloc(d->a, json_array_size(arr), sizeof(**out));
	if (!*out)
		return -ENOMEM;
	return each_entry(d, arr, key, *out, sizeof(**out), cidr_entry, trim ? "" : NULL, n);
}

/* ---- v1 Service ---------------------------------------------------------------------- */

static int service_type(struct dec *d, const json_t *spec, enum informer_svc_type *out)
{
	static const struct {
		const char *name;
		enum informer_svc_type type;
	} types[] = {
		{ "ClusterIP", INFORMER_SVC_CLUSTER_IP },
		{ "NodePort", INFORMER_SVC_NODE_PORT },
		{ "LoadBalancer", INFORMER_SVC_LOAD_BALANCER },
		{ "ExternalName", INFORMER_SVC_EXTERNAL_NAME },
	};
	const char *s;
	size_t i;
	int err = get_str(d, spec, "type", REJECT, &s);

	*out = INFORMER_SVC_CLUSTER_IP;
	if (err || !s)
		return err;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(s, types[i].name) == 0) {
			*out = types[i].type;
			return 0;
		}
	}
	report(d, "type", get(spec, "type"), "unknown Service type, %s", REJECT);
	return -EPROTO;
}

/* spec.clusterIP: "", "None" or an IP; anything else can never be programmed. */
static int cluster_ip(struct dec *d, const json_t *spec, struct informer_service *svc)
{
	struct informer_addr a;
	struct informer_ip ip;
	const char *s;
	int err = get_str(d, spec, "clusterIP", REJECT, &s);

	svc->cluster_ip = "";
	if (err || !s || !*s)
		return err;
	if (strcmp(s, "None") == 0) {
		svc->cluster_ip = "None";
		return 0;
	}
	if (informer_addr_parse(s, &a)) {
		report(d, "clusterIP", get(spec, "clusterIP"), "invalid IP, %s", REJECT);
		return -EPROTO;
	}
	err = store_ip(d, &a, &ip);
	svc->cluster_ip = ip.ip;
	return err;
}

/* spec.clusterIPs[i]: always kept (family NONE when invalid) to stay paired with ipFamilies. */
static int cluster_ip_entry(struct dec *d, const json_t *v, void *slot, const void *arg)
{
	struct informer_addr a;

	(void)arg;
	if (json_is_string(v) && strcmp(json_string_value(v), "None") == 0)
		return 0;
	if (!json_is_string(v) || informer_addr_parse(json_string_value(v), &a)) {
		report(d, NULL, v, "invalid IP, kept without an address");
		return 0;
	}
	return store_ip(d, &a, slot);
}

/* spec.ipFamilies[i]: always kept (NONE when unknown) to stay paired with clusterIPs. */
static int ip_family_entry(struct dec *d, const json_t *v, void *slot, const void *arg)
{
	enum informer_family *f = slot;
	const char *s = json_string_value(v);

	(void)arg;
	if (s && strcmp(s, "IPv4") == 0)
		*f = INFORMER_IPV4;
	else if (s && strcmp(s, "IPv6") == 0)
		*f = INFORMER_IPV6;
	else
		report(d, NULL, v, "unknown IP family, kept as none");
	return 0;
}

static int cluster_ips(struct dec *d, const json_t *spec, struct informer_service *svc)
{
	const json_t *ips, *fams;
	int err;

	err = get_array(d, spec, "clusterIPs", REJECT, &ips);
	if (!err)
		err = get_array(d, spec, "ipFamilies", REJECT, &fams);
	if (err)
		return err;
	svc->cluster_ips =
		informer__arena_alloc(d->a, json_array_size(ips), sizeof(*svc->cluster_ips));
	svc->ip_families =
		informer__arena_alloc(d->a, json_array_size(fams), sizeof(*svc->ip_families));
	if (!svc->cluster_ips || !svc->ip_families)
		return -ENOMEM;
	err = each_entry(d, ips, "clusterIPs", svc->cluster_ips, sizeof(*svc->cluster_ips),
			 cluster_ip_entry, NULL, &svc->n_cluster_ips);
	if (!err)
		err = each_entry(d, fams, "ipFamilies", svc->ip_families, sizeof(*svc->ip_families),
				 ip_family_entry, NULL, &svc->n_ip_families);
	return err;
}

static int target_port(struct dec *d, const json_t *p, struct informer_service_port *sp)
{
	/* IntOrString: a number, or the name of a container port */
	if (json_is_string(get(p, "targetPort")))
		return dup_str(d, p, "targetPort", REJECT, &sp->target_port_name);
	return get_port(d, p, "targetPort", 0, REJECT, &sp->target_port);
}

/* spec.ports[i]: every problem rejects the Service, as the API server would have. */
static int service_port(struct dec *d, const json_t *p, struct informer_service_port *sp)
{
	int err;

	if (not_object(d, p, REJECT))
		return -EPROTO;
	if (!get(p, "port")) {
		report(d, "port", NULL, "missing, %s", REJECT);
		return -EPROTO;
	}
	sp->name = "";
	err = dup_str(d, p, "name", REJECT, &sp->name);
	if (!err)
		err = get_proto(d, p, REJECT, &sp->protocol);
	if (!err)
		err = get_port(d, p, "port", 1, REJECT, &sp->port);
	if (!err)
		err = target_port(d, p, sp);
	if (!err)
		err = get_port(d, p, "nodePort", 0, REJECT, &sp->node_port);
	if (!err)
		err = opt_str(d, p, "appProtocol", &sp->app_protocol);
	return err;
}

static int service_ports(struct dec *d, const json_t *spec, struct informer_service *svc)
{
	const json_t *arr;
	size_t mark;
	int err = get_array(d, spec, "ports", REJECT, &arr);

	if (err || !arr)
		return err;
	svc->ports = informer__arena_alloc(d->a, json_array_size(arr), sizeof(*svc->ports));
	if (!svc->ports)
		return -ENOMEM;
	for (; svc->n_ports < json_array_size(arr); svc->n_ports++) {
		mark = enter(d, "ports[%zu]", svc->n_ports);
		err = service_port(d, json_array_get(arr, svc->n_ports), &svc->ports[svc->n_ports]);
		leave(d, mark);
		if (err)
			return err;
	}
	return 0;
}

static int affinity_timeout(struct dec *d, const json_t *spec, json_int_t *out)
{
	const json_t *cfg, *cip;
	size_t mark;
	int err = get_object(d, spec, "sessionAffinityConfig", REJECT, &cfg);

	if (err || !cfg)
		return err;
	mark = enter(d, "sessionAffinityConfig");
	err = get_object(d, cfg, "clientIP", REJECT, &cip);
	if (!err && cip) {
		enter(d, "clientIP"); /* unwound with the rest by leave(d, mark) */
		err = get_int(d, cip, "timeoutSeconds", 1, AFFINITY_TIMEOUT_MAX, REJECT, out);
	}
	leave(d, mark);
	return err;
}

static int service_affinity(struct dec *d, const json_t *spec, struct informer_service *svc)
{
	json_int_t timeout = AFFINITY_TIMEOUT_DEFAULT;
	const char *s;
	int err = get_str(d, spec, "sessionAffinity", REJECT, &s);

	if (err)
		return err;
	svc->affinity_client_ip = s && strcmp(s, "ClientIP") == 0;
	if (s && !svc->affinity_client_ip && strcmp(s, "None") != 0)
		report(d, "sessionAffinity", get(spec, "sessionAffinity"),
		       "unknown session affinity, treated as None");
	err = affinity_timeout(d, spec, &timeout);
	svc->affinity_timeout = (int32_t)timeout;
	return err;
}

static int external_ips(struct dec *d, const json_t *spec, struct informer_service *svc)
{
	const json_t *arr;
	int err = get_array(d, spec, "externalIPs", REJECT, &arr);

	if (err || !arr)
		return err;
	svc->external_ips =
		informer__arena_alloc(d->a, json_array_size(arr), sizeof(*svc->external_ips));
	if (!svc->external_ips)
		return -ENOMEM;
	return each_entry(d, arr, "externalIPs", svc->external_ips, sizeof(*svc->external_ips),
			  ip_entry, NULL, &svc->n_external_ips);
}

/* externalTrafficPolicy / internalTrafficPolicy: only "Local" changes anything. */
static int get_policy(struct dec *d, const json_t *spec, const char *key, enum informer_policy *out)
{
	const char *s;
	int err = get_str(d, spec, key, REJECT, &s);

	*out = INFORMER_POLICY_CLUSTER;
	if (err || !s)
		return err;
	if (strcmp(s, "Local") == 0)
		*out = INFORMER_POLICY_LOCAL;
	else if (strcmp(s, "Cluster") != 0)
		report(d, key, get(spec, key), "unknown traffic policy, treated as Cluster");
	return 0;
}

static int service_spec(struct dec *d, const json_t *spec, struct informer_service *svc)
{
	int err;

	err = service_type(d, spec, &svc->type);
	if (!err)
		err = cluster_ip(d, spec, svc);
	if (!err)
		err = cluster_ips(d, spec, svc);
	if (!err)
		err = service_ports(d, spec, svc);
	if (!err)
		err = service_affinity(d, spec, svc);
	if (!err)
		err = external_ips(d, spec, svc);
	if (!err)
		err = cidr_list(d, spec, "loadBalancerSourceRanges", true, &svc->source_ranges,
				&svc->n_source_ranges);
	if (!err)
		err = get_policy(d, spec, "externalTrafficPolicy", &svc->external_policy);
	if (!err)
		err = get_policy(d, spec, "internalTrafficPolicy", &svc->internal_policy);
	if (!err)
		err = get_port(d, spec, "healthCheckNodePort", 0, REJECT,
			       &svc->health_check_node_port);
	if (!err)
		err = dup_str(d, spec, "trafficDistribution", REJECT, &svc->traffic_distribution);
	if (!err)
		err = opt_str(d, spec, "externalName", &svc->external_name);
	if (!err)
		opt_bool(d, spec, "publishNotReadyAddresses", &svc->publish_not_ready_addresses);
	return err;
}

/* status.loadBalancer.ingress[i]: only a non-object is dropped. */
static int lb_ingress_entry(struct dec *d, const json_t *e, void *slot, const void *arg)
{
	struct informer_lb_ingress *ing = slot;
	const json_t *mode = get(e, "ipMode");
	struct informer_addr a;
	const char *ip;
	int err;

	(void)arg;
	if (not_object(d, e, IGNORED))
		return -EPROTO;
	if (!get_str(d, e, "ip", "entry kept without IP", &ip) && ip) {
		if (informer_addr_parse(ip, &a))
			report(d, "ip", get(e, "ip"), "invalid IP, entry kept without IP");
		else if (store_ip(d, &a, &ing->ip))
			return -ENOMEM;
	}
	err = opt_str(d, e, "hostname", &ing->hostname);
	if (err || !mode)
		return err;
	/* as upstream's IsVIPMode: only an absent ipMode or "VIP" is a VIP */
	ing->ip_mode = INFORMER_LB_IP_MODE_PROXY;
	if (json_is_string(mode) && strcmp(json_string_value(mode), "VIP") == 0)
		ing->ip_mode = INFORMER_LB_IP_MODE_VIP;
	else if (!json_is_string(mode) || strcmp(json_string_value(mode), "Proxy") != 0)
		report(d, "ipMode", mode, "unknown ipMode, treated as Proxy");
	return 0;
}

static int service_status(struct dec *d, const json_t *status, struct informer_service *svc)
{
	const json_t *lb, *arr = NULL;
	size_t mark = enter(d, "status");
	int err;

	err = get_object(d, status, "loadBalancer", REJECT, &lb);
	if (!err) {
		enter(d, "loadBalancer"); /* unwound by leave(d, mark) */
		err = get_array(d, lb, "ingress", REJECT, &arr);
	}
	if (!err && arr) {
		svc->lb_ingress =
			informer__arena_alloc(d->a, json_array_size(arr), sizeof(*svc->lb_ingress));
		err = svc->lb_ingress ? each_entry(d, arr, "ingress", svc->lb_ingress,
						   sizeof(*svc->lb_ingress), lb_ingress_entry, NULL,
						   &svc->n_lb_ingress)
				      : -ENOMEM;
	}
	leave(d, mark);
	return err;
}

int informer_decode_service(const json_t *obj, const struct informer_diag *diag,
			    struct informer_service **out)
{
	const json_t *spec = NULL, *status = NULL;
	struct informer_service *svc;
	struct dec d;
	size_t mark;
	int err;

	*out = NULL;
	err = dec_begin(&d, diag, "Service", true, obj);
	if (err)
		return err;
	svc = informer__arena_alloc(d.a, 1, sizeof(*svc));
	if (!svc) {
		err = -ENOMEM;
		goto out_free_arena;
	}
	svc->arena = d.a;
	err = decode_meta(&d, obj, true, &svc->meta);
	if (!err)
		err = get_object(&d, obj, "spec", REJECT, &spec);
	if (!err)
		err = get_object(&d, obj, "status", REJECT, &status);
	if (err)
		goto out_free_arena;
	mark = enter(&d, "spec");
	err = service_spec(&d, spec, svc);
	leave(&d, mark);
	if (!err)
		err = service_status(&d, status, svc);
	if (err)
		goto out_free_arena;
	*out = svc;
	return 0;

out_free_arena:
	informer__arena_free(d.a);
	return err;
}

/* ---- discovery.k8s.io/v1 EndpointSlice ------------------------------------------------ */

static const char DROP_ENDPOINT[] = "endpoint ignored";
static const char DROP_PORT[] = "port ignored";

static int slice_address_type(struct dec *d, const json_t *obj, enum informer_address_type *out)
{
	static const struct {
		const char *name;
		enum informer_address_type type;
	} types[] = {
		{ "IPv4", INFORMER_ADDR_IPV4 },
		{ "IPv6", INFORMER_ADDR_IPV6 },
		{ "FQDN", INFORMER_ADDR_FQDN },
	};
	const char *s;
	size_t i;
	int err = get_str(d, obj, "addressType", REJECT, &s);

	*out = INFORMER_ADDR_OTHER;
	if (err)
		return err;
	for (i = 0; s && i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(s, types[i].name) == 0) {
			*out = types[i].type;
			return 0;
		}
	}
	report(d, "addressType", get(obj, "addressType"), "%s, slice not used by the proxy",
	       s ? "unknown address type" : "missing");
	return 0;
}

/* addresses[0], which must be an IP of the slice's family (FQDN slices carry no IP). */
static int endpoint_address(struct dec *d, const json_t *e, enum informer_address_type type,
			    struct informer_ip *out)
{
	enum informer_family want = type == INFORMER_ADDR_IPV4 ? INFORMER_IPV4 : INFORMER_IPV6;
	const json_t *addrs, *v;
	struct informer_addr a;
	size_t mark;
	int err = get_array(d, e, "addresses", DROP_ENDPOINT, &addrs);

	if (err)
		return err;
	v = json_array_get(addrs, 0);
	if (!json_is_string(v)) {
		report(d, v ? "addresses[0]" : "addresses", v ? v : addrs, "%s, %s",
		       v ? "not a string" : "no address", DROP_ENDPOINT);
		return -EPROTO;
	}
	if (type != INFORMER_ADDR_IPV4 && type != INFORMER_ADDR_IPV6)
		return 0;
	mark = enter(d, "addresses[0]");
	err = -EPROTO;
	if (informer_addr_parse(json_string_value(v), &a))
		report(d, NULL, v, "invalid IP, %s", DROP_ENDPOINT);
	else if (a.family != want)
		report(d, NULL, v, "not an %s address, %s", want == INFORMER_IPV4 ? "IPv4" : "IPv6",
		       DROP_ENDPOINT);
	else
		err = store_ip(d, &a, out);
	leave(d, mark);
	return err;
}

static int endpoint_conditions(struct dec *d, const json_t *e, struct informer_endpoint *ep)
{
	const json_t *cond;
	size_t mark;
	int err = get_object(d, e, "conditions", DROP_ENDPOINT, &cond);

	if (err || !cond)
		return err;
	mark = enter(d, "conditions");
	err = get_cond(d, cond, "ready", DROP_ENDPOINT, &ep->ready);
	if (!err)
		err = get_cond(d, cond, "serving", DROP_ENDPOINT, &ep->serving);
	if (!err)
		err = get_cond(d, cond, "terminating", DROP_ENDPOINT, &ep->terminating);
	leave(d, mark);
	return err;
}

/* hints.forZones / hints.forNodes: the names. */
static int hint_names(struct dec *d, const json_t *hints, const char *key, const char ***out,
		      size_t *n)
{
	const json_t *arr, *h;
	size_t mark;
	int err = get_array(d, hints, key, DROP_ENDPOINT, &arr);

	if (err || !arr)
		return err;
	*out = informer__arena_alloc(d->a, json_array_size(arr), sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (; *n < json_array_size(arr) && !err; (*n)++) {
		h = json_array_get(arr, *n);
		mark = enter(d, "%s[%zu]", key, *n);
		err = not_object(d, h, DROP_ENDPOINT);
		if (!err)
			err = dup_str(d, h, "name", DROP_ENDPOINT, &(*out)[*n]);
		if (!err && !(*out)[*n]) {
			report(d, "name", NULL, "missing, %s", DROP_ENDPOINT);
			err = -EPROTO;
		}
		leave(d, mark);
	}
	return err;
}

static int endpoint_hints(struct dec *d, const json_t *e, struct informer_endpoint *ep)
{
	const json_t *hints;
	size_t mark;
	int err = get_object(d, e, "hints", DROP_ENDPOINT, &hints);

	if (err || !hints)
		return err;
	mark = enter(d, "hints");
	err = hint_names(d, hints, "forZones", &ep->hint_zones, &ep->n_hint_zones);
	if (!err)
		err = hint_names(d, hints, "forNodes", &ep->hint_nodes, &ep->n_hint_nodes);
	leave(d, mark);
	return err;
}

/* endpoints[i]: @arg points to the slice's address type. */
static int endpoint_entry(struct dec *d, const json_t *e, void *slot, const void *arg)
{
	const enum informer_address_type *type = arg;
	struct informer_endpoint *ep = slot;
	int err;

	if (not_object(d, e, DROP_ENDPOINT))
		return -EPROTO;
	err = endpoint_address(d, e, *type, &ep->address);
	if (!err)
		err = endpoint_conditions(d, e, ep);
	if (!err)
		err = dup_str(d, e, "nodeName", DROP_ENDPOINT, &ep->node_name);
	if (!err)
		err = dup_str(d, e, "zone", DROP_ENDPOINT, &ep->zone);
	if (!err)
		err = opt_str(d, e, "hostname", &ep->hostname);
	if (!err)
		err = endpoint_hints(d, e, ep);
	return err;
}

/* ports[i]: a bad protocol or number drops the port (upstream could never match it). */
static int slice_port_entry(struct dec *d, const json_t *p, void *slot, const void *arg)
{
	struct informer_slice_port *sp = slot;
	int err;

	(void)arg;
	if (not_object(d, p, DROP_PORT))
		return -EPROTO;
	err = dup_str(d, p, "name", DROP_PORT, &sp->name);
	if (!err)
		err = get_proto(d, p, DROP_PORT, &sp->protocol);
	if (!err)
		err = get_port(d, p, "port", 0, DROP_PORT, &sp->port);
	if (!err)
		err = opt_str(d, p, "appProtocol", &sp->app_protocol);
	return err;
}

static int slice_lists(struct dec *d, const json_t *obj, struct informer_endpointslice *eps)
{
	const json_t *eparr, *parr;
	int err;

	err = get_array(d, obj, "endpoints", REJECT, &eparr);
	if (!err)
		err = get_array(d, obj, "ports", REJECT, &parr);
	if (err)
		return err;
	eps->endpoints =
		informer__arena_alloc(d->a, json_array_size(eparr), sizeof(*eps->endpoints));
	eps->ports = informer__arena_alloc(d->a, json_array_size(parr), sizeof(*eps->ports));
	if (!eps->endpoints || !eps->ports)
		return -ENOMEM;
	err = each_entry(d, eparr, "endpoints", eps->endpoints, sizeof(*eps->endpoints),
			 endpoint_entry, &eps->address_type, &eps->n_endpoints);
	if (!err)
		err = each_entry(d, parr, "ports", eps->ports, sizeof(*eps->ports),
				 slice_port_entry, NULL, &eps->n_ports);
	return err;
}

int informer_decode_endpointslice(const json_t *obj, const struct informer_diag *diag,
				  struct informer_endpointslice **out)
{
	struct informer_endpointslice *eps;
	struct dec d;
	int err;

	*out = NULL;
	err = dec_begin(&d, diag, "EndpointSlice", true, obj);
	if (err)
		return err;
	eps = informer__arena_alloc(d.a, 1, sizeof(*eps));
	if (!eps) {
		err = -ENOMEM;
		goto out_free_arena;
	}
	eps->arena = d.a;
	err = decode_meta(&d, obj, true, &eps->meta);
	if (!err)
		err = slice_address_type(&d, obj, &eps->address_type);
	if (!err)
		err = slice_lists(&d, obj, eps);
	if (err)
		goto out_free_arena;
	eps->service_name = informer_meta_label(&eps->meta, LABEL_SERVICE_NAME);
	if (eps->service_name && !*eps->service_name)
		eps->service_name = NULL;
	*out = eps;
	return 0;

out_free_arena:
	informer__arena_free(d.a);
	return err;
}

/* ---- v1 Node ------------------------------------------------------------------------------ */

static const char DROP_TAINT[] = "taint ignored";

/* spec.podCIDRs, or the older single spec.podCIDR when that list is empty. */
static int node_pod_cidrs(struct dec *d, const json_t *spec, struct informer_node *node)
{
	const json_t *v;
	size_t mark;
	int err;

	err = cidr_list(d, spec, "podCIDRs", false, &node->pod_cidrs, &node->n_pod_cidrs);
	if (err || node->n_pod_cidrs)
		return err;
	v = get(spec, "podCIDR");
	if (!v)
		return 0;
	node->pod_cidrs = informer__arena_alloc(d->a, 1, sizeof(*node->pod_cidrs));
	if (!node->pod_cidrs)
		return -ENOMEM;
	mark = enter(d, "podCIDR");
	err = cidr_entry(d, v, node->pod_cidrs, NULL);
	leave(d, mark);
	if (!err)
		node->n_pod_cidrs = 1;
	return err == -ENOMEM ? err : 0;
}

static int taint_entry(struct dec *d, const json_t *t, void *slot, const void *arg)
{
	struct informer_taint *taint = slot;
	int err;

	(void)arg;
	if (not_object(d, t, DROP_TAINT))
		return -EPROTO;
	err = dup_str(d, t, "key", DROP_TAINT, &taint->key);
	if (!err && !taint->key) {
		report(d, "key", NULL, "missing, %s", DROP_TAINT);
		err = -EPROTO;
	}
	if (!err)
		err = dup_str(d, t, "value", DROP_TAINT, &taint->value);
	if (!err)
		err = dup_str(d, t, "effect", DROP_TAINT, &taint->effect);
	return err;
}

/*
 * status.addresses[i]: kept when the address is an IP. Hostname and DNS
 * entries are dropped without a word; an InternalIP or ExternalIP that does
 * not parse is reported.
 */
static int node_address_entry(struct dec *d, const json_t *v, void *slot, const void *arg)
{
	struct informer_node_address *na = slot;
	const char *type, *addr;
	struct informer_addr a;

	(void)arg;
	if (not_object(d, v, "address ignored") ||
	    get_str(d, v, "type", "address ignored", &type) ||
	    get_str(d, v, "address", "address ignored", &addr))
		return -EPROTO;
	na->type = INFORMER_NODE_OTHER;
	if (type && strcmp(type, "InternalIP") == 0)
		na->type = INFORMER_NODE_INTERNAL_IP;
	else if (type && strcmp(type, "ExternalIP") == 0)
		na->type = INFORMER_NODE_EXTERNAL_IP;
	if (!addr || informer_addr_parse(addr, &a)) {
		if (na->type != INFORMER_NODE_OTHER)
			report(d, "address", get(v, "address"), "%s, address ignored",
			       addr ? "invalid IP" : "missing");
		return -EPROTO;
	}
	return store_ip(d, &a, &na->ip);
}

static int node_spec(struct dec *d, const json_t *spec, struct informer_node *node)
{
	const json_t *arr;
	int err;

	err = node_pod_cidrs(d, spec, node);
	if (!err)
		err = get_array(d, spec, "taints", REJECT, &arr);
	if (err || !arr)
		return err;
	node->taints = informer__arena_alloc(d->a, json_array_size(arr), sizeof(*node->taints));
	if (!node->taints)
		return -ENOMEM;
	return each_entry(d, arr, "taints", node->taints, sizeof(*node->taints), taint_entry, NULL,
			  &node->n_taints);
}

static int node_status(struct dec *d, const json_t *status, struct informer_node *node)
{
	const json_t *arr;
	int err = get_array(d, status, "addresses", REJECT, &arr);

	if (err || !arr)
		return err;
	node->addresses =
		informer__arena_alloc(d->a, json_array_size(arr), sizeof(*node->addresses));
	if (!node->addresses)
		return -ENOMEM;
	return each_entry(d, arr, "addresses", node->addresses, sizeof(*node->addresses),
			  node_address_entry, NULL, &node->n_addresses);
}

int informer_decode_node(const json_t *obj, const struct informer_diag *diag,
			 struct informer_node **out)
{
	const json_t *spec = NULL, *status = NULL;
	struct informer_node *node;
	struct dec d;
	size_t mark;
	int err;

	*out = NULL;
	err = dec_begin(&d, diag, "Node", false, obj);
	if (err)
		return err;
	node = informer__arena_alloc(d.a, 1, sizeof(*node));
	if (!node) {
		err = -ENOMEM;
		goto out_free_arena;
	}
	node->arena = d.a;
	err = decode_meta(&d, obj, false, &node->meta);
	if (!err)
		err = get_object(&d, obj, "spec", REJECT, &spec);
	if (!err)
		err = get_object(&d, obj, "status", REJECT, &status);
	if (err)
		goto out_free_arena;
	mark = enter(&d, "spec");
	err = node_spec(&d, spec, node);
	leave(&d, mark);
	if (!err) {
		mark = enter(&d, "status");
		err = node_status(&d, status, node);
		leave(&d, mark);
	}
	if (err)
		goto out_free_arena;
	*out = node;
	return 0;

out_free_arena:
	informer__arena_free(d.a);
	return err;
}

/* ---- kinds -------------------------------------------------------------------------------- */

enum informer_kind informer_kind_of(const json_t *obj)
{
	const char *kind = json_string_value(get(obj, "kind"));
	const json_t *api = get(obj, "apiVersion");
	const char *version = json_string_value(api);

	if (!kind || (api && !version))
		return INFORMER_KIND_UNKNOWN;
	if (strcmp(kind, "Service") == 0 && (!version || strcmp(version, "v1") == 0))
		return INFORMER_KIND_SERVICE;
	if (strcmp(kind, "Node") == 0 && (!version || strcmp(version, "v1") == 0))
		return INFORMER_KIND_NODE;
	if (strcmp(kind, "EndpointSlice") == 0 &&
	    (!version || strcmp(version, "discovery.k8s.io/v1") == 0))
		return INFORMER_KIND_ENDPOINTSLICE;
	return INFORMER_KIND_UNKNOWN;
}
