"""The daemon against real iptables, inside throwaway network namespaces.

Each test gets its own namespace holding the test API server (loaded with
hack/examples/cluster.yaml) and the daemon; the test reaches them from a
thread that entered the namespace. "Equal to --dump-rules" means: the
daemon's KUBE chains, read back with iptables-save, equal the output of
--dump-rules for the API server's current objects loaded into a scratch
namespace and read back the same way (so both went through the kernel's
normal form).

Run: /usr/bin/python3 -m pytest -q test/daemon   (root)
"""

import copy
import json
import os
import random
import re
import stat
import tempfile
import time

import pytest

from lib import (BIN, REPO, ApiServer, Daemon, Netns, expected_chains, jump_rules, kube_chains,
                 save, wait_until)

EXAMPLE = os.path.join(REPO, "hack", "examples", "cluster.yaml")
BACKENDS = ["nft", "legacy"]
SYNC_LINE = r'"SyncProxyRules complete" ipFamily="IPv4" fullSync=(true|false)'


@pytest.fixture
def ns():
    n = Netns()
    yield n
    n.delete()


@pytest.fixture
def api(ns):
    a = ApiServer(ns, fixture=EXAMPLE)
    yield a
    a.stop()


def synced(d, start=0, full=None, timeout=20):
    """Wait for a successful IPv4 sync logged after @start; return its log line."""
    pat = SYNC_LINE if full is None else SYNC_LINE.replace("(true|false)", "true" if full else "false")
    m = d.wait_log(pat + r'[^\n]*', start=start, timeout=timeout)
    return m.group(0)


def field(line, name):
    return int(re.search(r"\b%s=(\d+)" % name, line).group(1))


def assert_equal_to_dump(d, api):
    want = expected_chains(api, d.backend)
    got = kube_chains(save(d.ns, d.backend))
    assert got == want, "kernel differs from --dump-rules:\n%s" % _diff(want, got)


def _diff(want, got):
    out = []
    for t in sorted(set(want) | set(got)):
        for c in sorted(set(want.get(t, {})) | set(got.get(t, {}))):
            w, g = want.get(t, {}).get(c), got.get(t, {}).get(c)
            if w != g:
                out.append("%s %s\n  want %s\n  got  %s" % (t, c, w, g))
    return "\n".join(out[:20])


def converged(d, api, timeout=20):
    """Wait until the kernel equals --dump-rules of the server's state."""
    def ok():
        try:
            assert_equal_to_dump(d, api)
            return True
        except AssertionError:
            return False
    wait_until(ok, timeout=timeout, interval=0.3, what="kernel rules to equal --dump-rules")


def slice_obj(api, name):
    return copy.deepcopy(api.admin("objects", "EndpointSlice")[name])


@pytest.mark.parametrize("backend", BACKENDS)
def test_first_sync_from_empty_equals_dump(ns, api, backend):
    d = Daemon(ns, api, backend)
    line = synced(d, full=True)
    assert field(line, "chainsWritten") > 0
    assert_equal_to_dump(d, api)
    jumps = jump_rules(save(ns, backend))
    # upstream's 14 base-chain jumps (incl. kubelet's KUBE-FIREWALL ones), once each
    assert len(jumps) == 14, jumps
    assert len(set(jumps)) == len(jumps)
    assert d.stop() == 0


def test_service_change_rewrites_only_that_service(ns, api):
    d = Daemon(ns, api, "nft")
    synced(d, full=True)
    time.sleep(0.3)  # let the follow-up no-op syncs pass
    mark = d.mark()
    eps = slice_obj(api, "default/web-4fj2k")
    eps["endpoints"][0]["addresses"] = ["10.244.1.8"]
    api.admin("apply", eps)
    line = synced(d, start=mark, full=False)
    # one port re-rendered: its SVC chain and the new endpoint's SEP chain
    assert field(line, "rendered") == 1, line
    assert field(line, "chainsWritten") == 2, line
    assert field(line, "chainsDeleted") == 1, line
    assert field(line, "dispatchEdits") == 0, line
    converged(d, api)


@pytest.mark.parametrize("backend", BACKENDS)
def test_endpoint_removal_deletes_its_sep_chain(ns, api, backend):
    d = Daemon(ns, api, backend)
    synced(d, full=True)
    before = set(kube_chains(save(ns, backend))["nat"])
    eps = slice_obj(api, "kube-system/kube-dns-x7k2p")
    gone = eps["endpoints"].pop()  # 10.244.2.2
    api.admin("apply", eps)
    converged(d, api)
    after = set(kube_chains(save(ns, backend))["nat"])
    removed = before - after
    # dns, dns-tcp and metrics each lose the SEP chain of 10.244.2.2
    assert len(removed) == 3 and all(c.startswith("KUBE-SEP-") for c in removed), removed
    text = json.dumps(kube_chains(save(ns, backend)))
    ip = gone["addresses"][0]
    assert ip + "/32" not in text and ip + ":" not in text, "rules still mention " + ip


def test_new_and_deleted_services_edit_kube_services_in_place(ns, api):
    d = Daemon(ns, api, "nft")
    synced(d, full=True)
    time.sleep(0.3)
    mark = d.mark()
    api.admin("apply", {"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": "extra", "namespace": "default"},
                        "spec": {"clusterIP": "10.96.5.5", "ports": [{"name": "p", "port": 81}]}})
    api.admin("apply", {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"name": "extra-1", "namespace": "default",
                                     "labels": {"kubernetes.io/service-name": "extra"}},
                        "addressType": "IPv4",
                        "endpoints": [{"addresses": ["10.244.1.50"], "nodeName": "node-a"}],
                        "ports": [{"name": "p", "port": 8081, "protocol": "TCP"}]})
    api.admin("delete", "v1", "Service", "search", "shop")
    converged(d, api)
    line = d.wait_log(SYNC_LINE.replace("(true|false)", "false") + r"[^\n]*dispatchEdits=[1-9]",
                      start=mark).group(0)
    assert "fullSync=false" in line
    nat = kube_chains(save(ns, "nft"))["nat"]["KUBE-SERVICES"]
    assert "nodeports" in nat[-1], "the NodePort jump must stay last: %s" % nat[-1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_flushed_tables_are_restored_within_a_sync_period(ns, api, backend):
    d = Daemon(ns, api, backend)
    synced(d, full=True)
    mark = d.mark()
    tool = "iptables-%s" % backend
    for table in ("nat", "filter"):
        ns.run([tool, "-t", table, "-F"])
    ns.run([tool, "-t", "nat", "-X"])
    assert not kube_chains(save(ns, backend)).get("nat", {}).get("KUBE-SERVICES")
    d.wait_log(r"flushed or deleted by something else", start=mark, timeout=10)
    synced(d, start=mark, full=True, timeout=10)
    assert_equal_to_dump(d, api)
    assert len(jump_rules(save(ns, backend))) == 14


def _wrapper(tmp, backend, mode):
    """An iptables-<backend>-restore in front of the real one: while the flag
    file exists it fails (mode "fail") or hangs (mode "hang")."""
    flag = os.path.join(tmp, "flag")
    path = os.path.join(tmp, "iptables-%s-restore" % backend)
    real = "/usr/sbin/iptables-%s-restore" % backend
    action = ('cat >/dev/null; echo "iptables-restore: line 3 failed" >&2; exit 1'
              if mode == "fail" else "cat >/dev/null; sleep 30; exit 1")
    with open(path, "w") as f:
        f.write('#!/bin/sh\nif [ -e "%s" ]; then %s; fi\nexec %s "$@"\n' % (flag, action, real))
    os.chmod(path, stat.S_IRWXU)
    return flag


@pytest.mark.parametrize("backend", BACKENDS)
def test_restore_failure_keeps_old_rules_and_recovers_with_full_sync(ns, api, backend):
    tmp = tempfile.mkdtemp(prefix="kipd-wrap-")
    flag = _wrapper(tmp, backend, "fail")
    d = Daemon(ns, api, backend, env={"PATH": tmp + ":" + os.environ["PATH"]})
    synced(d, full=True)
    old = kube_chains(save(ns, backend))
    open(flag, "w").close()
    mark = d.mark()
    eps = slice_obj(api, "default/web-4fj2k")
    eps["endpoints"][0]["addresses"] = ["10.244.1.9"]
    api.admin("apply", eps)
    m = d.wait_log(r'"Sync failed" ipFamily="IPv4"[^\n]*', start=mark)
    assert "exited 1" in m.group(0) and "line 3 failed" in m.group(0), m.group(0)
    assert kube_chains(save(ns, backend)) == old, "a failed restore must leave the old rules"
    _, _, metrics = d.http(10249, "/metrics")
    assert re.search(r'kubeproxy_sync_proxy_rules_iptables_restore_failures_total\{ip_family="IPv4"\} [1-9]',
                     metrics)
    mark = d.mark()
    os.unlink(flag)
    synced(d, start=mark, full=True, timeout=15)
    assert_equal_to_dump(d, api)


def test_healthz_goes_503_when_syncs_are_stuck(ns, api):
    tmp = tempfile.mkdtemp(prefix="kipd-wrap-")
    flag = _wrapper(tmp, "nft", "hang")
    d = Daemon(ns, api, "nft", env={"PATH": tmp + ":" + os.environ["PATH"]})
    synced(d, full=True)
    code, headers, body = d.http(10256, "/healthz")
    assert code == 200 and headers["Content-Type"] == "application/json", (code, headers)
    assert json.loads(body)["healthy"] is True and json.loads(body)["nodeEligible"] is True
    open(flag, "w").close()
    eps = slice_obj(api, "default/web-4fj2k")
    eps["endpoints"][1]["addresses"] = ["10.244.2.99"]
    api.admin("apply", eps)
    # health timeout = 2 x sync period (2s)
    wait_until(lambda: d.http(10256, "/healthz")[0] == 503, timeout=15, what="/healthz 503")
    assert d.http(10256, "/livez")[0] == 503
    os.unlink(flag)
    wait_until(lambda: d.http(10256, "/healthz")[0] == 200, timeout=40, what="/healthz 200 again")


def test_health_and_metrics_answer_as_upstream(ns, api):
    d = Daemon(ns, api, "nft")
    synced(d, full=True)
    code, headers, body = d.http(10256, "/livez")
    assert code == 200 and headers["X-Content-Type-Options"] == "nosniff"
    assert "nodeEligible" not in json.loads(body)
    assert d.http(10249, "/proxyMode")[2] == "iptables"
    code, headers, metrics = d.http(10249, "/metrics")
    assert code == 200 and headers["Content-Type"].startswith("text/plain")
    for name in ("kubeproxy_sync_proxy_rules_duration_seconds_bucket",
                 "kubeproxy_sync_full_proxy_rules_duration_seconds_count",
                 "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                 "kubeproxy_sync_proxy_rules_iptables_total",
                 "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
                 "kubeproxy_proxy_healthz_total"):
        assert name in metrics, name
    assert re.search(r'kubeproxy_sync_proxy_rules_iptables_total\{ip_family="IPv4",table="nat"\} [1-9]',
                     metrics), metrics[:2000]
    # the health-check node port of the eTP=Local LoadBalancer, with a local endpoint
    code, headers, body = d.http(31942, "/")
    assert code == 200 and headers["X-Load-Balancing-Endpoint-Weight"] == "1", (code, headers)
    assert '"localEndpoints": 1' in body
    code, _, rules = d.http(10249, "/rules?service=shop/frontend")
    assert code == 200 and "KUBE-FW-" in rules and "shop/frontend:https" in rules
    assert d.http(10249, "/rules?service=shop/nope")[0] == 404


@pytest.mark.parametrize("backend", BACKENDS)
def test_cleanup_removes_every_kube_chain_and_nothing_else(ns, api, backend):
    d = Daemon(ns, api, backend)
    synced(d, full=True)
    assert d.stop() == 0
    tool = "iptables-%s" % backend
    ns.run([tool, "-t", "nat", "-N", "CNI-HOSTPORT-DNAT"])
    ns.run([tool, "-t", "nat", "-A", "PREROUTING", "-j", "CNI-HOSTPORT-DNAT"])
    ns.run([tool, "-t", "nat", "-A", "CNI-HOSTPORT-DNAT", "-p", "tcp", "--dport", "8080", "-j", "RETURN"])
    ns.run([tool, "-A", "FORWARD", "-s", "10.1.2.3", "-j", "ACCEPT"])
    before = save(ns, backend)
    assert any(c.startswith("KUBE-") for t in before.values() for c in t)
    ns.run([BIN, "--cleanup", "--iptables-backend", backend])
    after = save(ns, backend)
    left = [(t, c) for t, chains in after.items() for c in chains if c.startswith("KUBE-")]
    assert not left, left
    assert not any("KUBE-" in r for t in after.values() for rs in t.values() for r in rs)
    assert after["nat"]["CNI-HOSTPORT-DNAT"] == before["nat"]["CNI-HOSTPORT-DNAT"]
    assert "-A PREROUTING -j CNI-HOSTPORT-DNAT" in after["nat"]["PREROUTING"]
    assert "-A FORWARD -s 10.1.2.3/32 -j ACCEPT" in after["filter"]["FORWARD"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_jump_rules_never_duplicated_across_restarts_and_full_syncs(ns, api, backend):
    for _ in range(3):
        d = Daemon(ns, api, backend)
        synced(d, full=True)
        mark = d.mark()
        # what a firewall reload does to us: forces a full sync
        ns.run(["iptables-%s" % backend, "-t", "mangle", "-F", "KUBE-PROXY-CANARY"])
        ns.run(["iptables-%s" % backend, "-t", "mangle", "-X", "KUBE-PROXY-CANARY"])
        synced(d, start=mark, full=True, timeout=10)
        assert d.stop() == 0
    jumps = jump_rules(save(ns, backend))
    assert len(jumps) == 14 and len(set(jumps)) == 14, jumps


def test_sigterm_and_api_server_outage_leave_rules_in_place(ns, api):
    d = Daemon(ns, api, "nft")
    synced(d, full=True)
    programmed = kube_chains(save(ns, "nft"))
    api.stop()  # the API server goes away: the rules must stay
    time.sleep(5)  # two sync periods
    assert d.proc.poll() is None, "the daemon must keep running without the API server"
    assert kube_chains(save(ns, "nft")) == programmed
    assert d.stop() == 0
    assert kube_chains(save(ns, "nft")) == programmed, "SIGTERM must leave the rules"


def _churn(api, rng, seconds, rate=20, ns=None):
    """Random endpoint changes on the example's services for @seconds, about
    @rate per second, with the watches ended now and then (re-watches). With
    @ns, faults as well: a watch stream cut mid-event, a compacted history
    (410, relist), and our nat chains flushed by someone else."""
    names = ["default/web-4fj2k", "kube-system/kube-dns-x7k2p", "shop/frontend-v4", "shop/cart-abcde"]
    slices = {k: slice_obj(api, k) for k in names}
    t0 = time.time()
    end, i = t0 + seconds, 0
    faults = [(0.25, "drop"), (0.5, "compact"), (0.75, "flush")] if ns else []
    while time.time() < end:
        if faults and time.time() >= t0 + faults[0][0] * seconds:
            what = faults.pop(0)[1]
            if what == "drop":
                api.admin("fault", "drop", path="endpointslices", after=3, count=2)
                api.admin("end_watches")
            elif what == "compact":
                # off the stream, the daemon misses a change; then history is gone
                api.admin("fail", 503, verb="watch", count=2)
                api.admin("end_watches")
                eps = slices[names[0]]
                eps["endpoints"][0]["conditions"] = {"ready": not eps["endpoints"][0].get(
                    "conditions", {}).get("ready", True)}
                api.admin("apply", eps)
                api.admin("compact")
            else:
                ns.run(["iptables-nft", "-t", "nat", "-F"])
        eps = slices[rng.choice(names)]
        for e in eps["endpoints"]:
            if rng.random() < 0.3:
                e["addresses"] = ["10.244.%d.%d" % (rng.randint(1, 2), rng.randint(2, 250))]
            if rng.random() < 0.1:
                e["conditions"] = {"ready": False, "serving": True, "terminating": True}
            elif rng.random() < 0.2:
                e["conditions"] = {"ready": True}
        api.admin("apply", eps)
        i += 1
        if i % 100 == 0:
            api.admin("end_watches")
        time.sleep(1.0 / rate)
    return i


CHURN_SECONDS = int(os.environ.get("KIP_CHURN_SECONDS", "60"))


@pytest.mark.parametrize("tool", ["asan", "valgrind"])
def test_churn_without_leaks_ends_equal_to_dump(ns, api, tool):
    if tool == "asan":
        binary = os.path.join(REPO, "_output", "asan", "kube-iptables-proxy")
        if not os.path.exists(binary):
            pytest.skip("no ASan build: run make check first")
        d = Daemon(ns, api, "nft", binary=binary,
                   env={"ASAN_OPTIONS": "detect_leaks=1:exitcode=23",
                        "UBSAN_OPTIONS": "halt_on_error=1:exitcode=24"})
        seconds = CHURN_SECONDS
    else:
        d = Daemon(ns, api, "nft", wrap=["valgrind", "-q", "--leak-check=full",
                                         "--errors-for-leak-kinds=definite,indirect",
                                         "--error-exitcode=25"])
        seconds = CHURN_SECONDS // 2
    synced(d, full=True, timeout=60)
    changes = _churn(api, random.Random(7), seconds, ns=ns)
    converged(d, api, timeout=60)
    log = d.log()
    syncs = log.count('"SyncProxyRules complete"')
    # min-sync-period 100ms with a burst of 2: many syncs, far fewer than changes
    assert syncs >= seconds and syncs < changes, (syncs, changes)
    # the faults happened and were recovered from: the relist after the 410, the full
    # sync after the flush (the convergence above shows the result)
    assert "Watch expired, relisting" in log, log[-3000:]
    assert "flushed or deleted by something else" in log, log[-3000:]
    rc = d.stop(timeout=60)
    assert rc == 0, "exit %d (23: leak, 24: UBSan, 25: valgrind):\n%s" % (rc, d.log()[-4000:])


def _capture_wrapper(tmp, backend):
    """An iptables-<backend>-restore in front of the real one that keeps each payload it is
    given in tmp/payload.N before passing it on."""
    path = os.path.join(tmp, "iptables-%s-restore" % backend)
    real = "/usr/sbin/iptables-%s-restore" % backend
    with open(path, "w") as f:
        f.write('#!/bin/sh\nn=$(ls "%s" | grep -c "^payload\\.")\n'
                'cat > "%s/payload.$n"\nexec %s "$@" < "%s/payload.$n"\n' % (tmp, tmp, real, tmp))
    os.chmod(path, stat.S_IRWXU)


def _payloads(tmp, start=0):
    names = sorted((n for n in os.listdir(tmp) if n.startswith("payload.")),
                   key=lambda n: int(n.split(".")[1]))
    out = []
    for n in names[start:]:
        with open(os.path.join(tmp, n)) as f:
            out.append(f.read())
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_service_change_payload_holds_only_that_service(ns, api, backend):
    """Issue 4: "a service change rewrites only that service's chains (inspect the
    payload)": the restore input of the sync after one endpoint of default/web moved."""
    tmp = tempfile.mkdtemp(prefix="kipd-cap-")
    _capture_wrapper(tmp, backend)
    d = Daemon(ns, api, backend, env={"PATH": tmp + ":" + os.environ["PATH"]})
    synced(d, full=True)
    full = _payloads(tmp)
    assert full and any(":KUBE-SERVICES" in p for p in full), "the full sync was not captured"
    before = kube_chains(save(ns, backend))["nat"]
    time.sleep(0.3)  # let the follow-up no-op syncs pass
    mark, start = d.mark(), len(_payloads(tmp))
    eps = slice_obj(api, "default/web-4fj2k")
    old_ip = eps["endpoints"][0]["addresses"][0]
    eps["endpoints"][0]["addresses"] = ["10.244.1.8"]
    api.admin("apply", eps)
    synced(d, start=mark, full=False)
    converged(d, api)
    after = kube_chains(save(ns, backend))["nat"]
    new_sep, = set(after) - set(before)
    old_sep, = set(before) - set(after)
    svc = [c for c, rules in after.items() if c.startswith("KUBE-SVC-") and
           any("-j " + new_sep in r for r in rules)]
    assert len(svc) == 1, svc
    assert any(old_ip in r for r in before[old_sep]) and any("10.244.1.8" in r
                                                             for r in after[new_sep])
    payload = "".join(_payloads(tmp, start))
    lines = [x for x in payload.splitlines() if x and not x.startswith("#")]
    declared = {x.split()[0][1:] for x in lines if x.startswith(":")}
    written = {x.split()[1] for x in lines if x.startswith(("-A ", "-I ", "-R ", "-D "))}
    deleted = {x.split()[1] for x in lines if x.startswith("-X ")}
    # the web port's SVC chain is rewritten and the new endpoint's SEP chain written; the
    # old SEP chain is flushed and deleted; nothing else (no dispatch chain, no other
    # service, no EXT chain of web's NodePort) is in the payload
    assert written == {svc[0], new_sep}, "rules written to %s:\n%s" % (written, payload)
    assert deleted == {old_sep}, payload
    assert declared <= {svc[0], new_sep, old_sep}, "chains declared: %s\n%s" % (declared, payload)
    assert {svc[0], new_sep} <= declared, payload
    assert all(x.startswith(("*", ":", "-A ", "-X ", "COMMIT")) for x in lines), payload


def _ct_insert(ns, proto, sport, vip, vport, ep, epport):
    argv = ["conntrack", "-I", "-p", proto, "-s", "10.0.0.99", "-d", vip, "--sport", str(sport),
            "--dport", str(vport), "-r", ep, "-q", "10.0.0.99", "--reply-port-src", str(epport),
            "--reply-port-dst", str(sport), "-t", "3600"]
    if proto == "tcp":
        argv += ["--state", "ESTABLISHED", "-u", "SEEN_REPLY"]
    ns.run(argv)


def _ct_sports(ns):
    """{(proto, original source port)} of the namespace's IPv4 conntrack entries."""
    out = ns.run(["conntrack", "-L", "-f", "ipv4"], check=False).stdout
    return {(line.split()[0], int(re.search(r"sport=(\d+)", line).group(1)))
            for line in out.splitlines() if "sport=" in line}


CT_CLEANED = r'"Cleaned up stale UDP conntrack entries" ipFamily="IPv4" examined=(\d+) deleted=(\d+)'


def test_udp_conntrack_stale_entry_deleted_others_survive(ns, api):
    """Issue 4: after a sync that removed a UDP endpoint, its conntrack entries go; entries
    to the remaining endpoint, TCP entries and other ports stay, also across a restart."""
    d = Daemon(ns, api, "nft")
    synced(d, full=True)
    d.wait_log(CT_CLEANED)  # the first sync's reconcile (nothing to clean yet)
    dns = "10.96.0.10"
    _ct_insert(ns, "udp", 40001, dns, 53, "10.244.2.2", 53)  # to the endpoint that goes
    _ct_insert(ns, "udp", 40002, dns, 53, "10.244.1.2", 53)  # to the one that stays
    _ct_insert(ns, "tcp", 40003, dns, 53, "10.244.2.2", 53)  # TCP: never touched
    _ct_insert(ns, "udp", 40004, dns, 54, "10.244.2.2", 53)  # not a service port
    _ct_insert(ns, "udp", 40005, dns, 53, "10.244.2.2", 5353)  # to another port
    everything = {("udp", 40001), ("udp", 40002), ("tcp", 40003), ("udp", 40004),
                  ("udp", 40005)}
    assert _ct_sports(ns) >= everything
    mark = d.mark()
    eps = slice_obj(api, "kube-system/kube-dns-x7k2p")
    eps["endpoints"] = [e for e in eps["endpoints"] if e["addresses"] != ["10.244.2.2"]]
    api.admin("apply", eps)
    m = d.wait_log(CT_CLEANED, start=mark)
    assert int(m.group(2)) == 2, m.group(0)
    assert ("udp", 40001) not in _ct_sports(ns) and ("udp", 40005) not in _ct_sports(ns)
    kept = everything - {("udp", 40001), ("udp", 40005)}
    assert _ct_sports(ns) >= kept
    _, _, metrics = d.http(10249, "/metrics")
    assert re.search(r'kubeproxy_conntrack_reconciler_deleted_entries_total\{ip_family="IPv4"\} 2\b',
                     metrics), [x for x in metrics.splitlines() if "conntrack" in x]
    assert d.stop() == 0
    # a restart with unchanged endpoints deletes nothing
    d = Daemon(ns, api, "nft")
    synced(d, full=True)
    m = d.wait_log(CT_CLEANED)
    assert int(m.group(2)) == 0, m.group(0)
    assert _ct_sports(ns) >= kept
    assert d.stop() == 0


def test_health_check_node_port_follows_local_endpoints(ns, api):
    """The eTP=Local LoadBalancer's health-check port: 200 with the local endpoint, 503 with
    weight 0 once no endpoint is local, headers and body as upstream's."""
    d = Daemon(ns, api, "nft")
    synced(d, full=True)
    body = ('{\n\t"service": {\n\t\t"namespace": "shop",\n\t\t"name": "frontend"\n\t},\n'
            '\t"localEndpoints": %d,\n\t"serviceProxyHealthy": true\n}')
    code, headers, text = d.http(31942, "/any/path")
    assert (code, text) == (200, body % 1), (code, text)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Load-Balancing-Endpoint-Weight"] == "1"
    eps = slice_obj(api, "shop/frontend-v4")
    for e in eps["endpoints"]:
        e["nodeName"] = "node-b"
    api.admin("apply", eps)
    wait_until(lambda: d.http(31942, "/")[0] == 503, timeout=15, what="503 on the HC port")
    code, headers, text = d.http(31942, "/")
    assert text == body % 0 and headers["X-Load-Balancing-Endpoint-Weight"] == "0", text
    # the proxy's own /healthz is unaffected, and counted
    assert d.http(10256, "/healthz")[0] == 200
    _, _, metrics = d.http(10249, "/metrics")
    assert re.search(r'kubeproxy_proxy_healthz_total\{code="200"\} [1-9]', metrics), \
        [x for x in metrics.splitlines() if "healthz" in x]
    assert d.stop() == 0


def _many_services(api, rng, n, first=0):
    """@n ClusterIP services with one endpoint each, ClusterIPs spread over 10.96.0.0/12."""
    names = []
    for i in range(first, first + n):
        name = "many-%03d" % i
        ip = "10.%d.%d.%d" % (96 + rng.randrange(16), rng.randrange(256), rng.randrange(1, 255))
        api.admin("apply", {"apiVersion": "v1", "kind": "Service",
                            "metadata": {"name": name, "namespace": "many"},
                            "spec": {"clusterIP": ip, "clusterIPs": [ip],
                                     "ports": [{"name": "p", "port": 80}]}})
        api.admin("apply", {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                            "metadata": {"name": name + "-1", "namespace": "many",
                                         "labels": {"kubernetes.io/service-name": name}},
                            "addressType": "IPv4",
                            "endpoints": [{"addresses": ["10.244.2.%d" % (2 + i % 250)],
                                           "nodeName": "node-b"}],
                            "ports": [{"name": "p", "port": 8080, "protocol": "TCP"}]})
        names.append(name)
    return names


def _assert_converged_to(d, api, extra):
    want = {}

    def ok():
        want["v"] = expected_chains(api, d.backend, extra_dump=extra)
        return kube_chains(save(d.ns, d.backend)) == want["v"]
    try:
        wait_until(ok, timeout=30, interval=0.5, what="kernel rules to equal --dump-rules %s" % extra)
    except AssertionError:
        raise AssertionError("kernel differs from --dump-rules %s:\n%s" % (
            extra, _diff(want["v"], kube_chains(save(d.ns, d.backend))))) from None


@pytest.mark.parametrize("backend", BACKENDS)
def test_tree_layout_follows_changes_and_switches_back(ns, api, backend):
    """--service-dispatch=tree on a cluster big enough for the tree to split:
    the kernel equals --dump-rules in that layout through service additions
    and deletions, a new service rewrites only its leaf (not KUBE-SERVICES, not
    the other tree chains), and restarting in the linear layout converges to
    upstream's layout with no KUBE-CIP chain left behind."""
    tree = ["--service-dispatch=tree", "--service-cluster-ip-range=10.96.0.0/12"]
    rng = random.Random(11)
    names = _many_services(api, rng, 150)
    d = Daemon(ns, api, backend, extra=tree)
    synced(d, full=True, timeout=60)
    _assert_converged_to(d, api, tree)
    tables = kube_chains(save(ns, backend))
    nat = tables["nat"]
    cips = [c for c in nat if c.startswith("KUBE-CIP-")]
    assert len(cips) > 3, "the tree did not split: %s" % cips
    assert all("-j KUBE-SVC-" not in r for r in nat["KUBE-SERVICES"]), nat["KUBE-SERVICES"]
    # the filter table's trees: shop/search has no endpoints, shop/frontend source ranges
    assert any(c.startswith("KUBE-RIP-") for c in tables["filter"]), sorted(tables["filter"])
    assert any(c.startswith("KUBE-FIP-") for c in tables["filter"]), sorted(tables["filter"])

    # one more service: a partial sync that writes its own chains and one leaf
    mark = d.mark()
    _many_services(api, rng, 1, first=900)
    _assert_converged_to(d, api, tree)
    line = d.wait_log(SYNC_LINE.replace("(true|false)", "false") + r"[^\n]*", start=mark).group(0)
    written = field(line, "chainsWritten")
    assert written <= 4, "one new service rewrote %d chains: %s" % (written, line)

    # deletions (leaves shrink, may merge) and more additions
    for name in names[:60]:
        api.admin("delete", "v1", "Service", name, "many")
    _many_services(api, rng, 40, first=1000)
    _assert_converged_to(d, api, tree)
    assert d.stop() == 0

    # back to upstream's layout
    d = Daemon(ns, api, backend)
    synced(d, full=True, timeout=60)
    _assert_converged_to(d, api, [])
    tables = kube_chains(save(ns, backend))
    left = [c for t in tables.values() for c in t
            if c.startswith(("KUBE-CIP-", "KUBE-RIP-", "KUBE-XIP-", "KUBE-FIP-"))]
    assert not left, "tree chains left after the switch to linear: %s" % left
    assert d.stop() == 0


def test_nfacct_counters_are_exported_as_upstream(ns, api):
    """kubeproxy_iptables_ct_state_invalid_dropped_packets_total and
    ..._localhost_nodeports_accepted_packets_total come from the kernel's nfacct
    counters the rules count into: a connection to a NodePort on 127.0.0.1
    raises the second."""
    d = Daemon(ns, api, "nft")
    synced(d, full=True)
    names = ("kubeproxy_iptables_ct_state_invalid_dropped_packets_total",
             "kubeproxy_iptables_localhost_nodeports_accepted_packets_total")

    def values():
        metrics = d.http(10249, "/metrics")[2]
        out = {}
        for n in names:
            m = re.search(r"^%s (\d+)$" % n, metrics, re.M)
            assert m, "%s missing from /metrics:\n%s" % (n, metrics[:3000])
            out[n] = int(m.group(1))
        return out
    before = values()
    nat = kube_chains(save(ns, "nft"))["nat"]["KUBE-NODEPORTS"]
    assert any("localhost_nps_accepted_pkts" in r and "--dport 30080" in r for r in nat), nat
    # default/web's NodePort on loopback, from the node itself (no need to succeed)
    ns.run(["curl", "-s", "-m", "1", "-o", "/dev/null", "http://127.0.0.1:30080/"], check=False)
    after = values()
    assert after[names[1]] > before[names[1]], (before, after)
    assert after[names[0]] >= before[names[0]]
