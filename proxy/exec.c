/*
 * proxy/exec.c - run a program on the libuv loop.
 */
#include "proxy/exec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define ERR_CAP (64 * 1024)

struct job {
	uv_process_t proc;
	uv_pipe_t in;
	uv_pipe_t out;
	uv_pipe_t err;
	uv_write_t write_req;
	char *in_buf;
	size_t in_len;
	char *out_buf;
	size_t out_len;
	size_t out_cap;
	char *err_buf;
	size_t err_len;
	int handles_open;
	bool exited;
	struct proxy_exec_result res;
	uint64_t start_ns;
	proxy_exec_cb cb;
	void *arg;
};

static void job_maybe_done(struct job *j)
{
	if (j->handles_open || !j->exited)
		return;
	j->res.out = j->out_buf ? j->out_buf : (char *)"";
	j->res.out_len = j->out_len;
	j->res.err = j->err_buf ? j->err_buf : (char *)"";
	j->res.err_len = j->err_len;
	j->res.seconds = (double)(uv_hrtime() - j->start_ns) / 1e9;
	j->cb(j->arg, &j->res);
	free(j->in_buf);
	free(j->out_buf);
	free(j->err_buf);
	free(j);
}

static void on_close(uv_handle_t *h)
{
	struct job *j = h->data;

	j->handles_open--;
	job_maybe_done(j);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_close);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int signal)
{
	struct job *j = p->data;

	j->res.exit_status = signal ? -1 : status;
	j->res.term_signal = signal;
	j->exited = true;
	close_handle((uv_handle_t *)p);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char scratch[65536];
	struct job *j = h->data;
	bool is_out = h == (uv_handle_t *)&j->out;
	char **b = is_out ? &j->out_buf : &j->err_buf;
	size_t len = is_out ? j->out_len : j->err_len;
	size_t cap = is_out ? j->out_cap : ERR_CAP;
	size_t want = suggested < 65536 ? 65536 : suggested;
	char *p;

	(void)suggested;
	if (len >= cap) {
		/* over the cap: keep reading (so the child does not block) into
		 * a scratch buffer whose content is dropped */
		*buf = uv_buf_init(scratch, sizeof(scratch));
		return;
	}
	if (want > cap - len)
		want = cap - len;
	p = realloc(*b, len + want + 1);
	if (!p) {
		*buf = uv_buf_init(scratch, sizeof(scratch));
		return;
	}
	*b = p;
	*buf = uv_buf_init(p + len, (unsigned int)want);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct job *j = s->data;
	bool is_out = s == (uv_stream_t *)&j->out;
	char *b = is_out ? j->out_buf : j->err_buf;
	size_t *len = is_out ? &j->out_len : &j->err_len;

	if (n < 0) {
		close_handle((uv_handle_t *)s);
		return;
	}
	if (n > 0 && b && buf->base >= b && buf->base < b + *len + (size_t)n + 1) {
		*len += (size_t)n;
		b[*len] = '\0';
	}
}

static void on_write(uv_write_t *req, int status)
{
	struct job *j = req->data;

	(void)status; /* EPIPE: the child exited early; its status tells why */
	close_handle((uv_handle_t *)&j->in);
}

int proxy_exec_run(struct uv_loop_s *loop, const char *const *argv, const char *in, size_t in_len,
		   size_t out_cap, proxy_exec_cb cb, void *arg)
{
	uv_process_options_t opts;
	uv_stdio_container_t stdio[3];
	struct job *j;
	uv_buf_t buf;
	int err;

	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->cb = cb;
	j->arg = arg;
	j->out_cap = out_cap;
	j->start_ns = uv_hrtime();
	if (in_len) {
		j->in_buf = malloc(in_len);
		if (!j->in_buf) {
			free(j);
			return -ENOMEM;
		}
		memcpy(j->in_buf, in, in_len);
		j->in_len = in_len;
	}
	uv_pipe_init(loop, &j->in, 0);
	uv_pipe_init(loop, &j->out, 0);
	uv_pipe_init(loop, &j->err, 0);
	j->in.data = j->out.data = j->err.data = j->proc.data = j;
	j->write_req.data = j;

	memset(&opts, 0, sizeof(opts));
	stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	stdio[0].data.stream = (uv_stream_t *)&j->in;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&j->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&j->err;
	opts.file = argv[0];
	opts.args = (char **)argv;
	opts.stdio = stdio;
	opts.stdio_count = 3;
	opts.exit_cb = on_exit_cb;

	err = uv_spawn(loop, &j->proc, &opts);
	j->handles_open = 4;
	if (err) {
		/* reported through the callback, like any other failure; the
		 * handles (the process one too) still have to be closed */
		j->res.spawn_err = err;
		j->res.exit_status = -1;
		j->exited = true;
		close_handle((uv_handle_t *)&j->proc);
		close_handle((uv_handle_t *)&j->in);
		close_handle((uv_handle_t *)&j->out);
		close_handle((uv_handle_t *)&j->err);
		return 0;
	}
	uv_read_start((uv_stream_t *)&j->out, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&j->err, on_alloc, on_read);
	if (j->in_len) {
		buf = uv_buf_init(j->in_buf, (unsigned int)j->in_len);
		if (uv_write(&j->write_req, (uv_stream_t *)&j->in, &buf, 1, on_write))
			close_handle((uv_handle_t *)&j->in);
	} else {
		close_handle((uv_handle_t *)&j->in); /* EOF at once */
	}
	return 0;
}
