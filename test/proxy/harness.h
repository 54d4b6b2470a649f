/*
 * test/proxy/harness.h - real HTTP against a libuv loop in the test process.
 *
 * The servers under test run on the test's own loop, on the main thread. A
 * client (plain blocking sockets, or a real program such as curl) runs in a
 * second thread while the main thread turns the loop; when the client is done
 * it wakes the loop through a uv_async_t, and the main thread joins it. So the
 * servers' state is only ever touched from the main thread: tests change it
 * between exchanges, with no locking. Client code must not call cmocka's
 * assertions (they are not thread-safe): it records, and the test asserts
 * after harness_run() returns.
 *
 * Header-only (static inline) so that each test program can include it; the
 * Makefile links test/test_*.c with the library objects only.
 */
#ifndef TEST_PROXY_HARNESS_H
#define TEST_PROXY_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <uv.h>

#define HARNESS_TIMEOUT_S 10 /* any blocking client call gives up after this */

struct harness {
	uv_loop_t loop;
	uv_async_t wake;
	atomic_bool done;
	void (*client)(void *arg);
	void *arg;
};

static inline void harness_on_wake(uv_async_t *a)
{
	(void)a;
}

static inline int harness_init(struct harness *h)
{
	int err;

	memset(h, 0, sizeof(*h));
	err = uv_loop_init(&h->loop);
	if (err)
		return err;
	return uv_async_init(&h->loop, &h->wake, harness_on_wake);
}

static inline void *harness_thread(void *p)
{
	struct harness *h = p;

	h->client(h->arg);
	atomic_store(&h->done, true);
	uv_async_send(&h->wake);
	return NULL;
}

/* Run @client(@arg) in a thread while the loop turns; returns when it is done. */
static inline int harness_run(struct harness *h, void (*client)(void *arg), void *arg)
{
	pthread_t t;
	int err;

	h->client = client;
	h->arg = arg;
	atomic_store(&h->done, false);
	err = pthread_create(&t, NULL, harness_thread, h);
	if (err)
		return -err;
	while (!atomic_load(&h->done))
		uv_run(&h->loop, UV_RUN_ONCE);
	return -pthread_join(t, NULL);
}

/* Turn the loop until *@flag is set (e.g. by a close callback). */
static inline void harness_until(struct harness *h, const bool *flag)
{
	while (!*flag)
		uv_run(&h->loop, UV_RUN_ONCE);
}

/* Close the harness's own handle; returns uv_loop_close() (0: nothing left open). */
static inline int harness_finish(struct harness *h)
{
	uv_close((uv_handle_t *)&h->wake, NULL);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	return uv_loop_close(&h->loop);
}

/* ---- client side (any thread) ------------------------------------------- */

/* A blocking TCP connection to 127.0.0.1:@port, or -1. */
static inline int harness_connect(int port)
{
	struct timeval tv = { .tv_sec = HARNESS_TIMEOUT_S };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		close(fd);
		return -1;
	}
	return fd;
}

static inline int harness_send(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n) {
		w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Everything until EOF (or an error/timeout), NUL-terminated; free() it. */
static inline char *harness_recv_all(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap), *p;
	ssize_t r;

	if (!buf)
		return NULL;
	for (;;) {
		if (cap - n < 2048) {
			p = realloc(buf, cap * 2);
			if (!p)
				break;
			buf = p;
			cap *= 2;
		}
		r = recv(fd, buf + n, cap - n - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* Send @req on a new connection and read until the server closes it. */
static inline char *harness_exchange(int port, const char *req, size_t *len)
{
	int fd = harness_connect(port);
	char *resp;

	if (fd < 0)
		return NULL;
	if (harness_send(fd, req, strlen(req))) {
		close(fd);
		return NULL;
	}
	resp = harness_recv_all(fd, len);
	close(fd);
	return resp;
}

struct harness_fetch_arg {
	int port;
	const char *req;
	char *resp;
	size_t len;
};

static inline void harness_fetch_client(void *p)
{
	struct harness_fetch_arg *a = p;

	a->resp = harness_exchange(a->port, a->req, &a->len);
}

/* harness_exchange() from a client thread while the loop serves (main thread). */
static inline char *harness_fetch(struct harness *h, int port, const char *req, size_t *len)
{
	struct harness_fetch_arg a = { .port = port, .req = req };

	if (len)
		*len = 0;
	if (harness_run(h, harness_fetch_client, &a)) {
		free(a.resp);
		return NULL;
	}
	if (len)
		*len = a.len;
	return a.resp;
}

/*
 * A buffered reader for keep-alive connections: harness_read_response()
 * returns one whole response (head and Content-Length body) at a time.
 */
struct harness_reader {
	int fd;
	char buf[1 << 16];
	size_t len;
};

static inline char *harness_read_response(struct harness_reader *r)
{
	char *end, *cl, *out;
	size_t head_len, body_len = 0, total;
	ssize_t n;

	for (;;) {
		r->buf[r->len] = '\0';
		end = strstr(r->buf, "\r\n\r\n");
		if (end) {
			head_len = (size_t)(end - r->buf) + 4;
			cl = strcasestr(r->buf, "\r\nContent-Length: ");
			if (cl && cl < end)
				body_len = strtoul(cl + 18, NULL, 10);
			total = head_len + body_len;
			if (total < sizeof(r->buf) && r->len >= total)
				break;
		}
		if (r->len + 1 >= sizeof(r->buf))
			return NULL;
		n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		r->len += (size_t)n;
	}
	out = malloc(total + 1);
	if (!out)
		return NULL;
	memcpy(out, r->buf, total);
	out[total] = '\0';
	memmove(r->buf, r->buf + total, r->len - total);
	r->len -= total;
	return out;
}

/* A local port that was free a moment ago (for servers that need a fixed port). */
static inline int harness_free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!bind(fd, (struct sockaddr *)&sin, sizeof(sin)) &&
	    !getsockname(fd, (struct sockaddr *)&sin, &len))
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* A socket listening on 127.0.0.1:@port (to make it "in use"), or -1. */
static inline int harness_occupy(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 1)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- reading responses (main thread) ------------------------------------ */

struct harness_resp {
	int status;
	const char *head; /* status line and headers, within the raw text */
	size_t head_len;
	const char *body;
	size_t body_len;
};

/* Split raw response text; returns 0, or -1 if it is not an HTTP response. */
static inline int harness_parse(const char *raw, size_t len, struct harness_resp *r)
{
	const char *end;

	memset(r, 0, sizeof(*r));
	if (!raw || len < 12 || strncmp(raw, "HTTP/1.1 ", 9))
		return -1;
	end = strstr(raw, "\r\n\r\n");
	if (!end)
		return -1;
	r->status = atoi(raw + 9);
	r->head = raw;
	r->head_len = (size_t)(end - raw) + 2;
	r->body = end + 4;
	r->body_len = len - (size_t)(r->body - raw);
	return 0;
}

/* The value of header @name (case-insensitive) copied into @out, or NULL. */
static inline const char *harness_header(const struct harness_resp *r, const char *name, char *out,
					 size_t size)
{
	const char *p = r->head, *end = r->head + r->head_len, *eol;
	size_t n = strlen(name), v;

	while (p < end && (eol = strstr(p, "\r\n")) && eol <= end) {
		if ((size_t)(eol - p) > n + 1 && !strncasecmp(p, name, n) && p[n] == ':') {
			p += n + 1;
			while (*p == ' ')
				p++;
			v = (size_t)(eol - p);
			if (v >= size)
				v = size - 1;
			memcpy(out, p, v);
			out[v] = '\0';
			return out;
		}
		p = eol + 2;
	}
	return NULL;
}

/* Run @cmd through the shell and return its standard output; free() it. */
static inline char *harness_command(const char *cmd, size_t *len)
{
	FILE *f = popen(cmd, "r");
	size_t cap = 4096, n = 0, r;
	char *buf, *p;

	if (!f)
		return NULL;
	buf = malloc(cap);
	while (buf) {
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (!r)
			break;
		if (cap - n < 1024) {
			p = realloc(buf, cap * 2);
			if (!p)
				break;
			buf = p;
			cap *= 2;
		}
	}
	if (pclose(f) != 0 || !buf) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

struct harness_command_arg {
	const char *cmd;
	char *out;
	size_t len;
};

static inline void harness_command_client(void *p)
{
	struct harness_command_arg *a = p;

	a->out = harness_command(a->cmd, &a->len);
}

/* harness_command() in a client thread while the loop serves; NULL if it failed. */
static inline char *harness_run_command(struct harness *h, const char *cmd, size_t *len)
{
	struct harness_command_arg a = { .cmd = cmd };

	if (len)
		*len = 0;
	if (harness_run(h, harness_command_client, &a)) {
		free(a.out);
		return NULL;
	}
	if (len)
		*len = a.len;
	return a.out;
}

#endif /* TEST_PROXY_HARNESS_H */
