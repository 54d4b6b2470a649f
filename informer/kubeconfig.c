/*
 * informer/kubeconfig.c - how to reach the API server, and its credentials.
 *
 * informer_conn_load() follows kube-proxy's createClients(): --kubeconfig
 * (with --master overriding its server), else --master alone, else the
 * in-cluster service account. Loading reads files synchronously (it runs
 * before the loop); afterwards credentials are kept current per request:
 *
 *   - a token file (tokenFile, the service-account token) is re-read when
 *     the copy is older than 60 s or a request got 401 with it, as
 *     client-go's cachedFileTokenSource does. The file is a few hundred
 *     bytes on the kubelet's tmpfs, so it is read synchronously.
 *   - an exec credential plugin (client.authentication.k8s.io v1/v1beta1)
 *     runs through uv_spawn when no credential is cached, the cached one
 *     expired (status.expirationTimestamp) or the server rejected it (401).
 *     Requests wait for it; it is killed after 60 s.
 *
 * tls-server-name: libcurl 7.88 has no option to verify against (and send
 * SNI for) a name other than the URL's host, so the request URL carries the
 * tls-server-name and CURLOPT_CONNECT_TO ("name:port:host:port") sends the
 * connection to the configured server. libcurl's own host verification
 * stays on; the only visible difference is the Host header, which the API
 * server ignores.
 */
#include "informer/internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "informer/http.h"
#include "informer/yaml.h"

#define TOKEN_MAX_AGE_MS 60000u
#define FILE_MAX	 (4u * 1024 * 1024) /* kubeconfig, certificates, token */
#define EXEC_OUTPUT_MAX	 (1024u * 1024)
#define EXEC_TIMEOUT_MS	 60000u
#define SA_DIR_DEFAULT	 "/var/run/secrets/kubernetes.io/serviceaccount"
/* Test-only: where the in-cluster service-account files are (tests cannot write /var/run). */
#define SA_DIR_ENV   "KIP_TEST_SERVICEACCOUNT_DIR"
#define EXEC_V1	     "client.authentication.k8s.io/v1"
#define EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"

extern char **environ;

struct exec_cfg {
	char *api_version;
	char *command;
	char **argv; /* command, args..., NULL */
	char **env;  /* "NAME=value" from the kubeconfig */
	size_t n_env;
	char *exec_info; /* KUBERNETES_EXEC_INFO=... */
};

/* One run of the credential plugin; freed when its last handle is closed. */
struct exec_run {
	struct informer_conn *conn; /* NULL once the connection gave up on it */
	uv_process_t proc;
	uv_pipe_t out;
	uv_timer_t timer;
	unsigned int open; /* handles not yet closed */
	bool exited, eof, timed_out;
	bool closing; /* the connection is closing: close once the process exited */
	bool handles_closing;
	int64_t status;
	int term_signal;
	int read_err;
	char *buf;
	size_t len, cap;
};

struct informer_conn {
	char *server; /* as configured */
	char *base;   /* what requests use: server, or its tls-server-name form */
	char *connect_to;
	char *ca_file, *ca_pem;
	size_t ca_len;
	char *cert_file, *key_file, *cert_pem, *key_pem;
	size_t cert_len, key_len;
	char *tls_server_name;
	char *proxy;
	bool insecure;
	struct informer_http_tls tls;

	char *token;	  /* the static token, or the token file's last contents */
	char *token_file; /* NULL: the token is static */
	uint64_t token_read_ms;
	bool token_stale;

	struct exec_cfg *exec;
	char *exec_token, *exec_cert, *exec_key;
	size_t exec_cert_len, exec_key_len;
	time_t exec_expiry; /* 0: valid until rejected */
	bool exec_valid;

	struct informer__cred cred;
	struct uv_loop_s *loop;
	struct informer__logger log;
	struct exec_run *run;
	struct informer__auth_wait *waiters;
	struct informer__auth_wait *notifying; /* waiters being told the result */
	void (*close_done)(void *arg);
	void *close_arg;
};

/* ---- small helpers ------------------------------------------------------ */

static void errf(char *err, size_t errlen, const char *fmt, ...) INFORMER_PRINTF(3, 4);
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void free_secret(char *s, size_t len)
{
	if (s) {
		explicit_bzero(s, len);
		free(s);
	}
}

static void free_str_secret(char *s)
{
	if (s)
		free_secret(s, strlen(s));
}

/* Read all of @path (at most FILE_MAX bytes), NUL-terminated. */
static int read_file(const char *path, char **out, size_t *out_len)
{
	struct stat st;
	size_t len = 0, cap;
	char *buf;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out_close;
	}
	cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
	if (cap > FILE_MAX + 1)
		cap = FILE_MAX + 1;
	buf = malloc(cap);
	if (!buf) {
		err = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			char *b;

			if (cap > FILE_MAX) {
				err = -EFBIG;
				goto out_free;
			}
			b = realloc(buf, cap * 2 > FILE_MAX + 1 ? FILE_MAX + 1 : cap * 2);
			if (!b) {
				err = -ENOMEM;
				goto out_free;
			}
			buf = b;
			cap = cap * 2 > FILE_MAX + 1 ? FILE_MAX + 1 : cap * 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	if (out_len)
		*out_len = len;
	close(fd);
	return 0;

out_free:
	free_secret(buf, cap);
out_close:
	close(fd);
	return err;
}

/* A token as client-go takes it: surrounding white space trimmed; control characters refused. */
static int clean_token(char *s)
{
	size_t start = 0, len = strlen(s), i;

	while (start < len && isspace((unsigned char)s[start]))
		start++;
	while (len > start && isspace((unsigned char)s[len - 1]))
		len--;
	memmove(s, s + start, len - start);
	s[len - start] = '\0';
	for (i = 0; s[i]; i++)
		if (iscntrl((unsigned char)s[i]))
			return -EINVAL;
	return s[0] ? 0 : -ENODATA;
}

static int b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64 (as Go's []byte JSON fields); line breaks are ignored. */
static int b64_decode(const char *in, char **out, size_t *out_len)
{
	size_t n = strlen(in), len = 0, pad = 0, i;
	unsigned int acc = 0, bits = 0;
	char *buf = malloc(n / 4 * 3 + 4);

	if (!buf)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		int c = (unsigned char)in[i], v;

		if (c == '\n' || c == '\r')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = b64_value(c);
		if (v < 0 || pad)
			goto out_bad;
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[len++] = (char)((acc >> bits) & 0xff);
		}
	}
	if (pad > 2 || (pad && (bits + pad * 6) % 8))
		goto out_bad;
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;

out_bad:
	free_secret(buf, n / 4 * 3 + 4);
	return -EINVAL;
}

/* @p relative to @dir (the kubeconfig's directory) unless absolute. */
static char *resolve(const char *dir, const char *p)
{
	char *r;

	if (p[0] == '/' || !dir)
		return strdup(p);
	if (asprintf(&r, "%s/%s", dir, p) < 0)
		return NULL;
	return r;
}

static const char *jstr(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The @what entry named @name in the kubeconfig list @key (e.g. clusters[].cluster). */
static const json_t *named(const json_t *cfg, const char *key, const char *what, const char *name)
{
	const json_t *list = json_object_get(cfg, key), *item;
	size_t i;

	json_array_foreach (list, i, item) {
		const char *n = jstr(item, "name");

		if (n && !strcmp(n, name))
			return json_object_get(item, what);
	}
	return NULL;
}

/* ---- the connection's TLS and URL ------------------------------------- */

/* Split @url's authority into host and port text; @host keeps IPv6 brackets. */
static int split_url(const char *url, char **scheme, char **host, char **port, char **path)
{
	const char *p = strstr(url, "://"), *auth, *end, *colon = NULL;

	if (!p)
		return -EINVAL;
	*scheme = strndup(url, (size_t)(p - url));
	auth = p + 3;
	end = auth + strcspn(auth, "/?#");
	if (*auth == '[') {
		const char *rb = memchr(auth, ']', (size_t)(end - auth));

		if (!rb)
			goto out_bad;
		if (rb + 1 < end && rb[1] == ':')
			colon = rb + 1;
	} else {
		colon = memchr(auth, ':', (size_t)(end - auth));
	}
	*host = strndup(auth, (size_t)((colon ? colon : end) - auth));
	*port = colon ? strndup(colon + 1, (size_t)(end - colon - 1)) : NULL;
	*path = strdup(end);
	if (!*scheme || !*host || (colon && !*port) || !*path) {
		free(*host);
		free(*port);
		free(*path);
		free(*scheme);
		return -ENOMEM;
	}
	if (!**host) {
		free(*host);
		free(*port);
		free(*path);
		goto out_bad;
	}
	return 0;

out_bad:
	free(*scheme);
	return -EINVAL;
}

static int finish_conn(struct informer_conn *c, char *err, size_t errlen)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	size_t n;
	int ret;

	/* client-go: a server without a scheme is https when TLS is configured */
	if (!strstr(c->server, "://")) {
		bool tls = c->ca_file || c->ca_pem || c->cert_file || c->cert_pem || c->insecure;
		char *s;

		if (asprintf(&s, "%s://%s", tls ? "https" : "http", c->server) < 0)
			return -ENOMEM;
		free(c->server);
		c->server = s;
	}
	n = strlen(c->server);
	while (n > 0 && c->server[n - 1] == '/')
		c->server[--n] = '\0';

	ret = split_url(c->server, &scheme, &host, &port, &path);
	if (ret) {
		if (ret == -EINVAL)
			errf(err, errlen, "invalid API server URL \"%s\"", c->server);
		return ret;
	}
	if (strcmp(scheme, "https") && strcmp(scheme, "http")) {
		errf(err, errlen, "API server URL \"%s\": scheme must be http or https", c->server);
		ret = -EINVAL;
		goto out;
	}
	if (c->tls_server_name && !strcmp(scheme, "https")) {
		const char *p = port ? port : "443";

		if (asprintf(&c->base, "https://%s:%s%s", c->tls_server_name, p, path) < 0 ||
		    asprintf(&c->connect_to, "%s:%s:%s:%s", c->tls_server_name, p, host, p) < 0) {
			ret = -ENOMEM;
			goto out;
		}
	} else {
		c->base = strdup(c->server);
		if (!c->base) {
			ret = -ENOMEM;
			goto out;
		}
	}
	c->tls.ca_file = c->ca_file;
	c->tls.ca_pem = c->ca_pem;
	c->tls.ca_len = c->ca_len;
	c->tls.cert_file = c->cert_file;
	c->tls.cert_pem = c->cert_pem;
	c->tls.cert_len = c->cert_len;
	c->tls.key_file = c->key_file;
	c->tls.key_pem = c->key_pem;
	c->tls.key_len = c->key_len;
	c->tls.connect_to = c->connect_to;
	c->tls.proxy = c->proxy;
	c->tls.insecure = c->insecure;
	c->cred.token = c->token;
	c->cred.gen = 1;
out:
	free(scheme);
	free(host);
	free(port);
	free(path);
	return ret;
}

/* ---- loading -------------------------------------------------------------- */

static int load_token_file(struct informer_conn *c, char *err, size_t errlen)
{
	char *tok;
	int ret;

	ret = read_file(c->token_file, &tok, NULL);
	if (ret) {
		errf(err, errlen, "cannot read token file %s: %s", c->token_file, strerror(-ret));
		return ret == -ENOMEM ? ret : -ENOENT;
	}
	ret = clean_token(tok);
	if (ret) {
		errf(err, errlen, "token file %s: %s", c->token_file,
		     ret == -ENODATA ? "empty" : "contains control characters");
		free_str_secret(tok);
		return -EINVAL;
	}
	if (!c->token || strcmp(c->token, tok))
		c->cred.gen++;
	if (c->cred.token == c->token)
		c->cred.token = tok;
	free_str_secret(c->token);
	c->token = tok;
	return 0;
}

/* A PEM from @path_key (a path, relative to @dir; checked readable) or @data_key (base64). */
static int load_pem(const json_t *obj, const char *path_key, const char *data_key, const char *dir,
		    char **file, char **pem, size_t *len, char *err, size_t errlen)
{
	const char *data = jstr(obj, data_key), *path = jstr(obj, path_key);
	int ret;

	if (data && *data) {
		ret = b64_decode(data, pem, len);
		if (ret == -EINVAL)
			errf(err, errlen, "%s is not valid base64", data_key);
		return ret;
	}
	if (!path || !*path)
		return 0;
	*file = resolve(dir, path);
	if (!*file)
		return -ENOMEM;
	if (access(*file, R_OK) < 0) {
		errf(err, errlen, "cannot read %s %s: %s", path_key, *file, strerror(errno));
		return -ENOENT;
	}
	/* libcurl reads the file for every new connection: rotated files are picked up */
	return 0;
}

static void exec_cfg_free(struct exec_cfg *e)
{
	size_t i;

	if (!e)
		return;
	free(e->api_version);
	free(e->command);
	for (i = 0; e->argv && e->argv[i]; i++)
		free(e->argv[i]);
	free(e->argv);
	for (i = 0; i < e->n_env; i++)
		free(e->env[i]);
	free(e->env);
	free(e->exec_info);
	free(e);
}

/* KUBERNETES_EXEC_INFO, as client-go sets it for the plugin. */
static int exec_info(struct exec_cfg *e, const json_t *cluster, bool provide,
		     const struct informer_conn *c)
{
	json_t *info, *spec, *cl;
	char *s;
	int ret = -ENOMEM;

	info = json_pack("{s:s, s:s, s:{s:b}}", "apiVersion", e->api_version, "kind",
			 "ExecCredential", "spec", "interactive", 0);
	if (!info)
		return -ENOMEM;
	spec = json_object_get(info, "spec");
	if (provide) {
		const char *ca = jstr(cluster, "certificate-authority-data");

		cl = json_pack("{s:s}", "server", c->server);
		if (!cl || json_object_set_new(spec, "cluster", cl))
			goto out;
		if (c->tls_server_name &&
		    json_object_set_new(cl, "tls-server-name", json_string(c->tls_server_name)))
			goto out;
		if (c->insecure && json_object_set_new(cl, "insecure-skip-tls-verify", json_true()))
			goto out;
		if (ca && json_object_set_new(cl, "certificate-authority-data", json_string(ca)))
			goto out;
		if (c->proxy && json_object_set_new(cl, "proxy-url", json_string(c->proxy)))
			goto out;
	}
	s = json_dumps(info, JSON_COMPACT);
	if (!s)
		goto out;
	if (asprintf(&e->exec_info, "KUBERNETES_EXEC_INFO=%s", s) < 0)
		e->exec_info = NULL;
	else
		ret = 0;
	free(s);
out:
	json_decref(info);
	return ret;
}

static int load_exec(struct informer_conn *c, const json_t *ex, const json_t *cluster,
		     const char *dir, char *err, size_t errlen)
{
	const char *ver = jstr(ex, "apiVersion"), *cmd = jstr(ex, "command");
	const json_t *args = json_object_get(ex, "args"), *env = json_object_get(ex, "env");
	const json_t *v;
	struct exec_cfg *e;
	size_t i, n;
	int ret = -ENOMEM;

	if (!ver || (strcmp(ver, EXEC_V1) && strcmp(ver, EXEC_V1BETA1))) {
		errf(err, errlen, "exec plugin apiVersion \"%s\" is not supported (want %s or %s)",
		     ver ? ver : "", EXEC_V1, EXEC_V1BETA1);
		return -EINVAL;
	}
	if (!cmd || !*cmd) {
		errf(err, errlen, "exec plugin has no command");
		return -EINVAL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->api_version = strdup(ver);
	/* a relative path with a separator is relative to the kubeconfig, as in client-go */
	e->command = strchr(cmd, '/') ? resolve(dir, cmd) : strdup(cmd);
	n = json_is_array(args) ? json_array_size(args) : 0;
	e->argv = calloc(n + 2, sizeof(*e->argv));
	if (!e->api_version || !e->command || !e->argv)
		goto out_free;
	e->argv[0] = strdup(e->command);
	if (!e->argv[0])
		goto out_free;
	for (i = 0; i < n; i++) {
		const char *a = json_string_value(json_array_get(args, i));

		if (!a) {
			errf(err, errlen, "exec plugin args[%zu] is not a string", i);
			ret = -EINVAL;
			goto out_free;
		}
		e->argv[i + 1] = strdup(a);
		if (!e->argv[i + 1])
			goto out_free;
	}
	n = json_is_array(env) ? json_array_size(env) : 0;
	e->env = calloc(n + 1, sizeof(*e->env));
	if (!e->env)
		goto out_free;
	json_array_foreach (env, i, v) {
		const char *name = jstr(v, "name"), *value = jstr(v, "value");

		if (!name || !*name || strchr(name, '=')) {
			errf(err, errlen, "exec plugin env[%zu] has no valid name", i);
			ret = -EINVAL;
			goto out_free;
		}
		if (asprintf(&e->env[e->n_env], "%s=%s", name, value ? value : "") < 0) {
			e->env[e->n_env] = NULL;
			goto out_free;
		}
		e->n_env++;
	}
	ret = exec_info(e, cluster, json_is_true(json_object_get(ex, "provideClusterInfo")), c);
	if (ret)
		goto out_free;
	c->exec = e;
	return 0;

out_free:
	exec_cfg_free(e);
	return ret;
}

static int load_user(struct informer_conn *c, const json_t *user, const json_t *cluster,
		     const char *dir, char *err, size_t errlen)
{
	const char *tok = jstr(user, "token"), *tokfile = jstr(user, "tokenFile");
	const json_t *ex = json_object_get(user, "exec");
	int ret;

	ret = load_pem(user, "client-certificate", "client-certificate-data", dir, &c->cert_file,
		       &c->cert_pem, &c->cert_len, err, errlen);
	if (!ret)
		ret = load_pem(user, "client-key", "client-key-data", dir, &c->key_file,
			       &c->key_pem, &c->key_len, err, errlen);
	if (ret)
		return ret;
	if (!(c->cert_file || c->cert_pem) != !(c->key_file || c->key_pem)) {
		errf(err, errlen,
		     "user has a client certificate without a key or a key without a certificate");
		return -EINVAL;
	}
	if (tokfile && *tokfile) {
		/* tokenFile beats token, as in client-go */
		c->token_file = resolve(dir, tokfile);
		if (!c->token_file)
			return -ENOMEM;
		ret = load_token_file(c, err, errlen);
		if (ret)
			return ret;
	} else if (tok && *tok) {
		c->token = strdup(tok);
		if (!c->token)
			return -ENOMEM;
		if (clean_token(c->token)) {
			errf(err, errlen, "user token is empty or contains control characters");
			return -EINVAL;
		}
	}
	if (json_is_object(ex))
		return load_exec(c, ex, cluster, dir, err, errlen);
	return 0;
}

static int load_cluster(struct informer_conn *c, const json_t *cl, const char *dir, char *err,
			size_t errlen)
{
	const char *server = jstr(cl, "server"), *tsn = jstr(cl, "tls-server-name");
	const char *proxy = jstr(cl, "proxy-url");
	int ret;

	if (server && *server) {
		c->server = strdup(server);
		if (!c->server)
			return -ENOMEM;
	}
	c->insecure = json_is_true(json_object_get(cl, "insecure-skip-tls-verify"));
	ret = load_pem(cl, "certificate-authority", "certificate-authority-data", dir, &c->ca_file,
		       &c->ca_pem, &c->ca_len, err, errlen);
	if (ret)
		return ret;
	if (c->insecure && (c->ca_file || c->ca_pem)) {
		errf(err, errlen,
		     "specifying a root certificates file with the insecure flag is not allowed");
		return -EINVAL;
	}
	if (tsn && *tsn && !(c->tls_server_name = strdup(tsn)))
		return -ENOMEM;
	if (proxy && *proxy && !(c->proxy = strdup(proxy)))
		return -ENOMEM;
	return 0;
}

static int load_kubeconfig(struct informer_conn *c, const char *path, char *err, size_t errlen)
{
	const json_t *cfg, *ctx, *cluster, *user = NULL;
	const char *cur, *cname, *uname;
	char yerr[256], *buf, *dir, *slash;
	json_t *docs;
	size_t len;
	int ret;

	ret = read_file(path, &buf, &len);
	if (ret) {
		errf(err, errlen, "cannot read kubeconfig %s: %s", path, strerror(-ret));
		return ret == -ENOMEM ? ret : -ENOENT;
	}
	ret = informer_yaml_load(buf, len, &docs, yerr, sizeof(yerr));
	free_secret(buf, len);
	if (ret) {
		errf(err, errlen, "kubeconfig %s: %s", path,
		     ret == -ENOMEM ? "out of memory" : yerr);
		return ret;
	}
	dir = strdup(path);
	if (!dir) {
		ret = -ENOMEM;
		goto out_docs;
	}
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	if (slash == dir)
		strcpy(dir, "/");

	ret = -EINVAL;
	cfg = json_array_get(docs, 0);
	if (!json_is_object(cfg)) {
		errf(err, errlen, "kubeconfig %s: not a mapping", path);
		goto out_dir;
	}
	cur = jstr(cfg, "current-context");
	if (!cur || !*cur) {
		errf(err, errlen, "kubeconfig %s: no current-context", path);
		goto out_dir;
	}
	ctx = named(cfg, "contexts", "context", cur);
	if (!json_is_object(ctx)) {
		errf(err, errlen, "kubeconfig %s: context \"%s\" not found", path, cur);
		goto out_dir;
	}
	cname = jstr(ctx, "cluster");
	uname = jstr(ctx, "user");
	cluster = cname ? named(cfg, "clusters", "cluster", cname) : NULL;
	if (!json_is_object(cluster)) {
		errf(err, errlen, "kubeconfig %s: cluster \"%s\" of context \"%s\" not found", path,
		     cname ? cname : "", cur);
		goto out_dir;
	}
	if (uname && *uname) {
		user = named(cfg, "users", "user", uname);
		if (!json_is_object(user)) {
			errf(err, errlen, "kubeconfig %s: user \"%s\" of context \"%s\" not found",
			     path, uname, cur);
			goto out_dir;
		}
	}
	ret = load_cluster(c, cluster, dir, err, errlen);
	if (!ret && user)
		ret = load_user(c, user, cluster, dir, err, errlen);
out_dir:
	free(dir);
out_docs:
	json_decref(docs);
	return ret;
}

static int load_in_cluster(struct informer_conn *c, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"),
		   *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = getenv(SA_DIR_ENV);
	bool v6;

	if (!host || !*host || !port || !*port) {
		errf(err, errlen,
		     "no --kubeconfig or --master, and not in a cluster "
		     "(KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT unset)");
		return -ENOENT;
	}
	if (!dir || !*dir)
		dir = SA_DIR_DEFAULT;
	v6 = strchr(host, ':') != NULL;
	if (asprintf(&c->server, v6 ? "https://[%s]:%s" : "https://%s:%s", host, port) < 0) {
		c->server = NULL;
		return -ENOMEM;
	}
	if (asprintf(&c->token_file, "%s/token", dir) < 0) {
		c->token_file = NULL;
		return -ENOMEM;
	}
	if (asprintf(&c->ca_file, "%s/ca.crt", dir) < 0) {
		c->ca_file = NULL;
		return -ENOMEM;
	}
	if (access(c->ca_file, R_OK) < 0) {
		errf(err, errlen, "in-cluster: cannot read %s: %s", c->ca_file, strerror(errno));
		return -ENOENT;
	}
	return load_token_file(c, err, errlen);
}

int informer_conn_load(const char *kubeconfig, const char *master, struct informer_conn **out,
		       char *err, size_t errlen)
{
	struct informer_conn *c;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (kubeconfig && *kubeconfig)
		ret = load_kubeconfig(c, kubeconfig, err, errlen);
	else if (master && *master)
		ret = 0;
	else
		ret = load_in_cluster(c, err, errlen);
	if (ret)
		goto out_free;
	if (master && *master) {
		free(c->server);
		c->server = strdup(master);
		if (!c->server) {
			ret = -ENOMEM;
			goto out_free;
		}
	}
	if (!c->server) {
		errf(err, errlen, "kubeconfig %s: the cluster has no server", kubeconfig);
		ret = -EINVAL;
		goto out_free;
	}
	ret = finish_conn(c, err, errlen);
	if (ret)
		goto out_free;
	*out = c;
	return 0;

out_free:
	if (ret == -ENOMEM && err && errlen && !err[0])
		errf(err, errlen, "out of memory while loading the API server connection");
	informer_conn_free(c);
	return ret;
}

void informer_conn_free(struct informer_conn *c)
{
	if (!c)
		return;
	if (c->run)
		c->run->conn = NULL; /* still closing: its close callbacks free it */
	free(c->server);
	free(c->base);
	free(c->connect_to);
	free(c->ca_file);
	free_secret(c->ca_pem, c->ca_len);
	free(c->cert_file);
	free(c->key_file);
	free_secret(c->cert_pem, c->cert_len);
	free_secret(c->key_pem, c->key_len);
	free(c->tls_server_name);
	free(c->proxy);
	free_str_secret(c->token);
	free(c->token_file);
	exec_cfg_free(c->exec);
	free_str_secret(c->exec_token);
	free_secret(c->exec_cert, c->exec_cert_len);
	free_secret(c->exec_key, c->exec_key_len);
	free(c);
}

const char *informer_conn_server(const struct informer_conn *c)
{
	return c->server;
}

const char *informer__conn_base(const struct informer_conn *c)
{
	return c->base;
}

const struct informer_http_tls *informer__conn_tls(const struct informer_conn *c)
{
	return &c->tls;
}

const struct informer__cred *informer__conn_cred(const struct informer_conn *c)
{
	return &c->cred;
}

void informer__conn_attach(struct informer_conn *c, struct uv_loop_s *loop,
			   const struct informer__logger *log)
{
	c->loop = loop;
	c->log = *log;
}

/* ---- exec credential plugins --------------------------------------------- */

/* RFC 3339 ("2026-07-22T10:00:00Z", fractions and offsets allowed) -> epoch seconds. */
static int parse_time(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, n = 0, oh, om;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    !n)
		return -EINVAL;
	s += n;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s); s++)
			;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if ((*s == '+' || *s == '-') && sscanf(s + 1, "%2d:%2d", &oh, &om) == 2) {
		t -= (*s == '+' ? 1 : -1) * (time_t)(oh * 3600 + om * 60);
		s += 6;
	} else {
		return -EINVAL;
	}
	if (*s)
		return -EINVAL;
	*out = t;
	return 0;
}

static bool exec_expired(const struct informer_conn *c)
{
	return c->exec_expiry && time(NULL) >= c->exec_expiry;
}

static void set_exec_cred(struct informer_conn *c)
{
	c->cred.token = c->exec_token ? c->exec_token : c->token;
	c->cred.cert_pem = c->exec_cert;
	c->cred.cert_len = c->exec_cert_len;
	c->cred.key_pem = c->exec_key;
	c->cred.key_len = c->exec_key_len;
	c->cred.gen++;
}

/* Parse the plugin's ExecCredential; on success it becomes the credential. */
static int exec_parse(struct informer_conn *c, const char *buf, size_t len)
{
	const json_t *st;
	const char *kind, *ver, *tok, *cert, *key, *exp;
	char *ntok = NULL, *ncert = NULL, *nkey = NULL;
	time_t expiry = 0;
	json_error_t jerr;
	json_t *doc;
	int ret = -EPROTO;

	doc = json_loadb(buf, len, 0, &jerr);
	if (!doc) {
		informer__logf(&c->log, INFORMER_LOG_ERROR, "Exec plugin output is not JSON",
			       "command=\"%s\" error=\"%s\" line=%d column=%d", c->exec->command,
			       jerr.text, jerr.line, jerr.column);
		return -EPROTO;
	}
	kind = jstr(doc, "kind");
	ver = jstr(doc, "apiVersion");
	st = json_object_get(doc, "status");
	if (!kind || strcmp(kind, "ExecCredential") || !ver || strcmp(ver, c->exec->api_version) ||
	    !json_is_object(st)) {
		informer__logf(&c->log, INFORMER_LOG_ERROR,
			       "Exec plugin did not print an ExecCredential with a status",
			       "command=\"%s\" kind=\"%s\" apiVersion=\"%s\" want=\"%s\"",
			       c->exec->command, kind ? kind : "", ver ? ver : "",
			       c->exec->api_version);
		goto out;
	}
	tok = jstr(st, "token");
	cert = jstr(st, "clientCertificateData");
	key = jstr(st, "clientKeyData");
	exp = jstr(st, "expirationTimestamp");
	if ((!tok || !*tok) && !(cert && *cert && key && *key)) {
		informer__logf(
			&c->log, INFORMER_LOG_ERROR,
			"Exec plugin returned neither a token nor a client certificate and key",
			"command=\"%s\"", c->exec->command);
		goto out;
	}
	if (!!(cert && *cert) != !!(key && *key)) {
		informer__logf(
			&c->log, INFORMER_LOG_ERROR,
			"Exec plugin returned a client certificate without a key or a key without a certificate",
			"command=\"%s\"", c->exec->command);
		goto out;
	}
	if (exp && *exp && parse_time(exp, &expiry)) {
		informer__logf(&c->log, INFORMER_LOG_ERROR,
			       "Exec plugin returned an invalid expirationTimestamp",
			       "command=\"%s\" expirationTimestamp=\"%s\"", c->exec->command, exp);
		goto out;
	}
	ret = -ENOMEM;
	if ((tok && *tok && !(ntok = strdup(tok))) || (cert && *cert && !(ncert = strdup(cert))) ||
	    (key && *key && !(nkey = strdup(key))))
		goto out_free;
	if (ntok && clean_token(ntok)) {
		informer__logf(&c->log, INFORMER_LOG_ERROR,
			       "Exec plugin returned a token with control characters",
			       "command=\"%s\"", c->exec->command);
		ret = -EPROTO;
		goto out_free;
	}
	free_str_secret(c->exec_token);
	free_secret(c->exec_cert, c->exec_cert_len);
	free_secret(c->exec_key, c->exec_key_len);
	c->exec_token = ntok;
	c->exec_cert = ncert;
	c->exec_cert_len = ncert ? strlen(ncert) : 0;
	c->exec_key = nkey;
	c->exec_key_len = nkey ? strlen(nkey) : 0;
	c->exec_expiry = expiry;
	c->exec_valid = true;
	set_exec_cred(c);
	ret = 0;
	goto out;

out_free:
	free_str_secret(ntok);
	free_str_secret(ncert);
	free_str_secret(nkey);
out:
	json_decref(doc);
	return ret;
}

/* Tell every waiter @err; they may wait again or cancel each other meanwhile. */
static void notify(struct informer_conn *c, int err)
{
	struct informer__auth_wait *w;

	c->notifying = c->waiters;
	c->waiters = NULL;
	while ((w = c->notifying)) {
		c->notifying = w->next;
		w->next = NULL;
		w->cb(w, err);
	}
}

static void run_closed(uv_handle_t *handle)
{
	struct exec_run *r = handle->data;
	struct informer_conn *c = r->conn;
	int err = 0;

	if (--r->open)
		return;
	if (c) {
		c->run = NULL;
		if (c->close_done) {
			c->close_done(c->close_arg);
		} else {
			if (r->timed_out) {
				informer__logf(&c->log, INFORMER_LOG_ERROR,
					       "Exec plugin did not finish in time and was killed",
					       "command=\"%s\" timeout=\"%us\"", c->exec->command,
					       EXEC_TIMEOUT_MS / 1000);
				err = -ETIMEDOUT;
			} else if (r->read_err) {
				informer__logf(&c->log, INFORMER_LOG_ERROR,
					       "Cannot read the exec plugin's output",
					       "command=\"%s\" error=\"%s\"", c->exec->command,
					       r->read_err == -E2BIG ? "more than 1 MiB"
								     : uv_strerror(r->read_err));
				err = r->read_err == -E2BIG ? -E2BIG : -EIO;
			} else if (r->status || r->term_signal) {
				informer__logf(&c->log, INFORMER_LOG_ERROR, "Exec plugin failed",
					       "command=\"%s\" exitCode=%lld signal=%d",
					       c->exec->command, (long long)r->status,
					       r->term_signal);
				err = -EIO;
			} else {
				err = exec_parse(c, r->buf ? r->buf : "", r->len);
			}
			notify(c, err);
		}
	}
	free_secret(r->buf, r->cap);
	free(r);
}

static void run_close(struct exec_run *r)
{
	r->handles_closing = true;
	uv_close((uv_handle_t *)&r->timer, run_closed);
	uv_close((uv_handle_t *)&r->out, run_closed);
	uv_close((uv_handle_t *)&r->proc, run_closed);
}

static void run_maybe_done(struct exec_run *r)
{
	if (r->exited && r->eof && !r->handles_closing)
		run_close(r);
}

static void on_exec_exit(uv_process_t *proc, int64_t status, int term_signal)
{
	struct exec_run *r = proc->data;

	r->exited = true;
	/* killed: do not wait for an EOF that a leftover grandchild may hold back */
	if (r->closing || r->timed_out)
		r->eof = true;
	r->status = status;
	r->term_signal = term_signal;
	run_maybe_done(r);
}

static void on_exec_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct exec_run *r = handle->data;

	(void)suggested;
	if (r->cap - r->len < 4096 && r->cap < EXEC_OUTPUT_MAX + 1) {
		size_t cap = r->cap ? r->cap * 2 : 8192;
		char *b;

		if (cap > EXEC_OUTPUT_MAX + 1)
			cap = EXEC_OUTPUT_MAX + 1;
		b = realloc(r->buf, cap);
		if (b) {
			r->buf = b;
			r->cap = cap;
		}
	}
	buf->base = r->buf ? r->buf + r->len : NULL;
	buf->len = r->buf ? r->cap - r->len : 0;
}

static void on_exec_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct exec_run *r = stream->data;

	(void)buf;
	if (n > 0) {
		r->len += (size_t)n;
		if (r->len >= EXEC_OUTPUT_MAX)
			r->read_err = -E2BIG;
		else
			return;
	} else if (n == 0) {
		return;
	} else if (n == UV_ENOBUFS) {
		r->read_err = r->buf ? -E2BIG : UV_ENOMEM;
	} else if (n != UV_EOF) {
		r->read_err = (int)n;
	}
	uv_read_stop(stream);
	r->eof = true;
	if (r->read_err && !r->exited)
		uv_process_kill(&r->proc, SIGKILL);
	run_maybe_done(r);
}

static void on_exec_timeout(uv_timer_t *timer)
{
	struct exec_run *r = timer->data;

	r->timed_out = true;
	if (!r->exited)
		uv_process_kill(&r->proc, SIGKILL);
}

/* environ + KUBERNETES_EXEC_INFO + the kubeconfig's env (which wins). */
static char **exec_env(const struct exec_cfg *e)
{
	size_t n = 0, i, j, k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	env = calloc(n + e->n_env + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		bool overridden = !strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21);

		for (j = 0; j < e->n_env && !overridden; j++)
			overridden = !strncmp(environ[i], e->env[j], nl) && e->env[j][nl] == '=';
		if (!overridden)
			env[k++] = environ[i];
	}
	env[k++] = e->exec_info;
	for (j = 0; j < e->n_env; j++)
		env[k++] = e->env[j];
	return env;
}

static int exec_start(struct informer_conn *c)
{
	uv_stdio_container_t stdio[3];
	uv_process_options_t opts = { 0 };
	struct exec_run *r;
	char **env;
	int err;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	env = exec_env(c->exec);
	if (!env) {
		free(r);
		return -ENOMEM;
	}
	r->conn = c;
	err = uv_pipe_init(c->loop, &r->out, 0);
	if (err)
		goto out_free;
	r->out.data = r;
	r->open = 1;
	err = uv_timer_init(c->loop, &r->timer);
	if (err) {
		r->conn = NULL;
		uv_close((uv_handle_t *)&r->out, run_closed);
		goto out_log;
	}
	r->timer.data = r;
	r->open++;

	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&r->out;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	opts.file = c->exec->command;
	opts.args = c->exec->argv;
	opts.env = env;
	opts.stdio = stdio;
	opts.stdio_count = 3;
	opts.exit_cb = on_exec_exit;
	r->proc.data = r;
	err = uv_spawn(c->loop, &r->proc, &opts);
	if (err) {
		/* libuv requires closing the process handle even when spawn fails */
		r->open++;
		r->exited = true;
		informer__logf(&c->log, INFORMER_LOG_ERROR, "Cannot run the exec credential plugin",
			       "command=\"%s\" error=\"%s\"", c->exec->command, uv_strerror(err));
		r->conn = NULL;
		run_close(r);
		free(env);
		return -ENOENT;
	}
	r->open++;
	free(env);
	err = uv_read_start((uv_stream_t *)&r->out, on_exec_alloc, on_exec_read);
	if (!err)
		err = uv_timer_start(&r->timer, on_exec_timeout, EXEC_TIMEOUT_MS, 0);
	if (err) {
		r->read_err = err;
		r->eof = true;
		uv_process_kill(&r->proc, SIGKILL);
	}
	c->run = r;
	return 0;

out_free:
	free(r);
out_log:
	informer__logf(&c->log, INFORMER_LOG_ERROR,
		       "Cannot prepare to run the exec credential plugin",
		       "command=\"%s\" error=\"%s\"", c->exec->command, uv_strerror(err));
	free(env);
	return -EIO;
}

/* ---- per-request credentials -------------------------------------------- */

static void refresh_token_file(struct informer_conn *c)
{
	char err[512];
	uint64_t now = uv_now(c->loop);

	if (!c->token_stale && c->token_read_ms && now - c->token_read_ms < TOKEN_MAX_AGE_MS)
		return;
	c->token_read_ms = now ? now : 1;
	c->token_stale = false;
	if (load_token_file(c, err, sizeof(err)))
		/* as client-go: keep using the last good token */
		informer__log(&c->log, INFORMER_LOG_WARNING,
			      "Cannot re-read the token file, using the last token", err);
}

int informer__conn_auth(struct informer_conn *c, struct informer__auth_wait *w)
{
	int err;

	if (c->token_file)
		refresh_token_file(c);
	if (!c->exec || (c->exec_valid && !exec_expired(c)))
		return 0;
	if (!c->run) {
		err = exec_start(c);
		if (err)
			return err;
	}
	w->next = c->waiters;
	c->waiters = w;
	return 1;
}

void informer__conn_auth_cancel(struct informer_conn *c, struct informer__auth_wait *w)
{
	struct informer__auth_wait **pw;

	for (pw = &c->waiters; *pw; pw = &(*pw)->next)
		if (*pw == w) {
			*pw = w->next;
			w->next = NULL;
			return;
		}
	for (pw = &c->notifying; *pw; pw = &(*pw)->next)
		if (*pw == w) {
			*pw = w->next;
			w->next = NULL;
			return;
		}
}

void informer__conn_unauthorized(struct informer_conn *c, unsigned long gen)
{
	if (gen != c->cred.gen)
		return; /* already refreshed since that request */
	if (c->token_file)
		c->token_stale = true;
	if (c->exec)
		c->exec_valid = false;
}

int informer__conn_close(struct informer_conn *c, void (*done)(void *arg), void *arg)
{
	c->waiters = NULL;
	c->notifying = NULL;
	if (!c->run)
		return 0;
	c->close_done = done;
	c->close_arg = arg;
	c->run->closing = true;
	if (c->run->exited) {
		c->run->eof = true;
		run_maybe_done(c->run);
	} else {
		/* closed from on_exec_exit(), so the child is reaped */
		uv_process_kill(&c->run->proc, SIGKILL);
	}
	return 1;
}
