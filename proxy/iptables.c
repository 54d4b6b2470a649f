/*
 * proxy/iptables.c - the iptables binaries and their flags.
 */
#include "proxy/iptables.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define SAVE_CAP ((size_t)1 << 30)

const char *proxy_ipt_backend_name(enum proxy_ipt_backend b)
{
	return b == PROXY_IPT_LEGACY ? "legacy" : "nft";
}

const char *proxy_ipt_cmd(enum proxy_ipt_backend b, enum rules_family f, const char *suffix)
{
	static char names[4][4][32];
	static const char *const sfx[] = { "", "-save", "-restore", NULL };
	int i, k = (b == PROXY_IPT_LEGACY) * 2 + (f == RULES_IPV6);

	for (i = 0; sfx[i]; i++)
		if (strcmp(sfx[i], suffix) == 0)
			break;
	if (!sfx[i])
		return NULL;
	if (!names[k][i][0])
		snprintf(names[k][i], sizeof(names[k][i]), "%s-%s%s",
			 f == RULES_IPV6 ? "ip6tables" : "iptables", proxy_ipt_backend_name(b),
			 suffix);
	return names[k][i];
}

int proxy_ipt_restore(struct uv_loop_s *loop, enum proxy_ipt_backend b, enum rules_family f,
		      const char *payload, size_t len, proxy_exec_cb cb, void *arg)
{
	const char *nft[] = { proxy_ipt_cmd(b, f, "-restore"),
			      "-w",
			      "5",
			      "-W",
			      "100000",
			      "--noflush",
			      "--counters",
			      NULL };
	const char *legacy[] = {
		proxy_ipt_cmd(b, f, "-restore"), "-w", "5", "--noflush", "--counters", NULL
	};

	return proxy_exec_run(loop, b == PROXY_IPT_NFT ? nft : legacy, payload, len, 64 * 1024, cb,
			      arg);
}

int proxy_ipt_save(struct uv_loop_s *loop, enum proxy_ipt_backend b, enum rules_family f,
		   const char *table, proxy_exec_cb cb, void *arg)
{
	const char *argv[] = { proxy_ipt_cmd(b, f, "-save"), "-t", table, NULL };

	return proxy_exec_run(loop, argv, NULL, 0, SAVE_CAP, cb, arg);
}

int proxy_ipt_canary(struct uv_loop_s *loop, enum proxy_ipt_backend b, enum rules_family f,
		     const char *table, proxy_exec_cb cb, void *arg)
{
	const char *argv[] = { proxy_ipt_cmd(b, f, ""), "-w", "5", "-t", table, "-S",
			       "KUBE-PROXY-CANARY",	NULL };

	return proxy_exec_run(loop, argv, NULL, 0, 64 * 1024, cb, arg);
}

struct sync_run {
	struct proxy_exec_result *res;
	bool done;
};

static char *dup_buf(const char *p, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, p, n);
		d[n] = '\0';
	}
	return d;
}

static void sync_done(void *arg, const struct proxy_exec_result *r)
{
	struct sync_run *s = arg;

	*s->res = *r;
	s->res->out = dup_buf(r->out, r->out_len);
	s->res->err = dup_buf(r->err, r->err_len);
	s->done = true;
}

int proxy_ipt_run_sync(const char *const *argv, const char *in, size_t in_len,
		       struct proxy_exec_result *res)
{
	struct sync_run s = { res, false };
	uv_loop_t loop;
	int err;

	memset(res, 0, sizeof(*res));
	err = uv_loop_init(&loop);
	if (err)
		return err;
	err = proxy_exec_run(&loop, argv, in, in_len, SAVE_CAP, sync_done, &s);
	if (!err)
		uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) && !err)
		err = -EBUSY;
	if (!err && (!s.done || !res->out || !res->err)) {
		proxy_ipt_result_free(res);
		err = -ENOMEM;
	}
	return err;
}

void proxy_ipt_result_free(struct proxy_exec_result *res)
{
	free(res->out);
	free(res->err);
	res->out = NULL;
	res->err = NULL;
}

/* Lines starting with '-' in the save output of both families. */
static long count_rules(enum proxy_ipt_backend b, bool *hint)
{
	static const enum rules_family fams[] = { RULES_IPV4, RULES_IPV6 };
	struct proxy_exec_result res;
	long n = 0;
	size_t i;

	*hint = false;
	for (i = 0; i < 2; i++) {
		const char *all[] = { proxy_ipt_cmd(b, fams[i], "-save"), NULL };
		const char *mangle[] = { proxy_ipt_cmd(b, fams[i], "-save"), "-t", "mangle", NULL };
		const char *p;

		if (proxy_ipt_run_sync(mangle, NULL, 0, &res) == 0) {
			if (res.exit_status == 0 && (strstr(res.out, "\n:KUBE-IPTABLES-HINT ") ||
						     strstr(res.out, "\n:KUBE-KUBELET-CANARY ")))
				*hint = true;
			proxy_ipt_result_free(&res);
		}
		if (proxy_ipt_run_sync(all, NULL, 0, &res) == 0) {
			for (p = res.out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
				n += *p == '-';
			proxy_ipt_result_free(&res);
		}
	}
	return n;
}

enum proxy_ipt_backend proxy_ipt_detect_backend(char *why, size_t whylen)
{
	bool nft_hint, legacy_hint;
	long nft = count_rules(PROXY_IPT_NFT, &nft_hint);
	long legacy = count_rules(PROXY_IPT_LEGACY, &legacy_hint);

	if (nft_hint) {
		snprintf(why, whylen, "kubelet's KUBE-IPTABLES-HINT/KUBE-KUBELET-CANARY is in nft");
		return PROXY_IPT_NFT;
	}
	if (legacy_hint) {
		snprintf(why, whylen,
			 "kubelet's KUBE-IPTABLES-HINT/KUBE-KUBELET-CANARY is in legacy");
		return PROXY_IPT_LEGACY;
	}
	snprintf(why, whylen, "no kubelet hint; rules: %ld legacy, %ld nft", legacy, nft);
	return legacy >= 10 || legacy >= nft ? PROXY_IPT_LEGACY : PROXY_IPT_NFT;
}

bool proxy_ipt_present(enum proxy_ipt_backend b, enum rules_family f)
{
	const char *argv[] = { proxy_ipt_cmd(b, f, ""), "-w", "5", "-t", "nat", "-L", "-n", NULL };
	struct proxy_exec_result res;
	bool ok;

	if (proxy_ipt_run_sync(argv, NULL, 0, &res))
		return false;
	ok = res.spawn_err == 0 && res.exit_status == 0;
	proxy_ipt_result_free(&res);
	return ok;
}

size_t proxy_ipt_error_line(const char *err)
{
	static const char *const pats[] = { "Error occurred at line: ", "line " };
	const char *p;
	size_t i;

	for (i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		for (p = err; (p = strstr(p, pats[i])) != NULL; p++) {
			const char *d = p + strlen(pats[i]);

			if (isdigit((unsigned char)*d))
				return (size_t)strtoul(d, NULL, 10);
		}
	}
	return 0;
}

void proxy_ipt_error_context(const char *payload, size_t len, size_t line, size_t radius, char *out,
			     size_t outlen)
{
	const char *p = payload, *end = payload + len, *nl;
	size_t n = 1, o = 0;

	if (!outlen)
		return;
	out[0] = '\0';
	for (; p < end && o + 1 < outlen; p = nl + 1, n++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (n + radius < line || n > line + radius)
			continue;
		o += (size_t)snprintf(out + o, outlen - o, "%s%zu%s %.*s", o ? " | " : "", n,
				      n == line ? ">" : ":", (int)(nl - p), p);
		if (o >= outlen)
			o = outlen - 1;
	}
}
