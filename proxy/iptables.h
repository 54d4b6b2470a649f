/*
 * proxy/iptables.h - the iptables binaries: which ones, with which flags.
 *
 * Restores run as `iptables-{nft,legacy}-restore -w 5 [-W 100000] --noflush
 * --counters` with the payload on stdin (upstream's flags; -W only for nft,
 * since iptables-legacy 1.8.9 only warns that it is deprecated), through
 * proxy/exec.c: no shell, on the loop.
 */
#ifndef PROXY_IPTABLES_H
#define PROXY_IPTABLES_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/compiler.h"
#include "proxy/exec.h"
#include "rules/model.h"

struct uv_loop_s;

enum proxy_ipt_backend {
	PROXY_IPT_NFT = 0,
	PROXY_IPT_LEGACY,
};

const char *proxy_ipt_backend_name(enum proxy_ipt_backend b);

/*
 * proxy_ipt_detect_backend - upstream's iptables-wrapper decision, made
 * once at start (blocking, before the loop runs): a kubelet-created
 * KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY chain in the mangle table of
 * nft, else of legacy, decides; otherwise the backend with more rules
 * (legacy when it has 10 or more, or at least as many as nft). @why gets a
 * one-line reason for the log.
 */
enum proxy_ipt_backend proxy_ipt_detect_backend(char *why, size_t whylen);

/* Whether `ip6tables-<backend> -t nat -L -n` works here (upstream's Present()). */
bool proxy_ipt_present(enum proxy_ipt_backend b, enum rules_family f);

/* Program names, e.g. "ip6tables-nft-restore". Static storage. */
const char *proxy_ipt_cmd(enum proxy_ipt_backend b, enum rules_family f, const char *suffix);

/*
 * Asynchronous runs on @loop (see proxy_exec_run for the callback contract).
 *  restore: the payload on stdin;
 *  save:    `iptables-save -t <table>`, stdout captured (up to 1 GiB);
 *  canary:  `iptables -w 5 -t <table> -S KUBE-PROXY-CANARY`.
 */
int proxy_ipt_restore(struct uv_loop_s *loop, enum proxy_ipt_backend b, enum rules_family f,
		      const char *payload, size_t len, proxy_exec_cb cb,
		      void *arg) PROXY_MUST_CHECK;
int proxy_ipt_save(struct uv_loop_s *loop, enum proxy_ipt_backend b, enum rules_family f,
		   const char *table, proxy_exec_cb cb, void *arg) PROXY_MUST_CHECK;
int proxy_ipt_canary(struct uv_loop_s *loop, enum proxy_ipt_backend b, enum rules_family f,
		     const char *table, proxy_exec_cb cb, void *arg) PROXY_MUST_CHECK;

/*
 * proxy_ipt_run_sync - run a program to completion on a private loop
 * (startup, --cleanup, tools). @res's buffers are valid until
 * proxy_ipt_result_free(). Returns 0 or a negative errno.
 */
int proxy_ipt_run_sync(const char *const *argv, const char *in, size_t in_len,
		       struct proxy_exec_result *res) PROXY_MUST_CHECK;
void proxy_ipt_result_free(struct proxy_exec_result *res);

/*
 * proxy_ipt_error_line - the 1-based payload line iptables-restore blamed in
 * @err ("Error occurred at line: N", "line N failed", "line N: ..."), or 0.
 */
size_t proxy_ipt_error_line(const char *err);

/*
 * proxy_ipt_error_context - lines @line-@radius .. @line+@radius of @payload,
 * each prefixed with its number ("14> " marks the blamed one), into @out.
 */
void proxy_ipt_error_context(const char *payload, size_t len, size_t line, size_t radius, char *out,
			     size_t outlen);

#endif /* PROXY_IPTABLES_H */
