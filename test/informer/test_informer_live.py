"""The informer (list/watch on libuv + libcurl) against the test API server.

Each test starts apiserver.py and test/tools/informer-dump on loopback, drives the server
through its admin API (state changes, fault injection) and compares what the informer
delivered with the server's state. informer-dump must always exit 0 (uv_loop_close() == 0;
under ASan also no leak, under valgrind no error).
"""

import base64
import json
import os
import stat
import time
from collections import Counter

import pytest

from conftest import (SLOW, TESTDATA, VALGRIND, endpointslice, kubeconfig, node, server_state,
                      service)

SVC = "Service"
EPS = "EndpointSlice"
EPS_API = "discovery.k8s.io/v1"


def fixtures():
    return ["--fixture", TESTDATA / "service-list.json",
            "--fixture", TESTDATA / "endpointslice-list.json"]


def assert_in_sync(inf, adm, kinds=((SVC, None), (EPS, EPS_API)), timeout=20.0):
    """The informer's cache equals the server's objects (waits for it to converge)."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        st = inf.state()
        want = {k: server_state(adm, k, api) for k, api in kinds}
        got = {k: st[k] for k, _ in kinds}
        if got == want:
            return st
        if time.monotonic() > deadline:
            raise AssertionError(f"informer state differs from the server:\n got={got}\n"
                                 f"want={want}\n" + inf.dump_tail())
        time.sleep(0.2)


def assert_no_duplicate_upserts(inf):
    """No version of an object was delivered twice (a re-watch must not replay)."""
    seen = Counter((x["kind"], x["key"], x["rv"]) for x in inf.ops("upsert"))
    dup = [k for k, n in seen.items() if n > 1]
    assert not dup, f"delivered twice: {dup[:10]}"


def assert_clean_exit(inf):
    assert inf.stop() == 0, "informer-dump failed at exit:\n" + inf.dump_tail()
    assert inf.ops("exit")[-1]["loop_close"] == 0


def test_initial_sync(procs):
    srv = procs.server(*fixtures())
    inf = procs.informer("--master", srv.url)
    inf.synced(SVC, EPS)
    assert_in_sync(inf, srv.admin)
    # synced once per kind, no Node informer without --node
    assert len(inf.ops("synced", SVC)) == 1 and len(inf.ops("synced", EPS)) == 1
    assert not inf.ops("synced", "Node")
    # the requests: paged LIST with kube-proxy's selector, then WATCH from the list's RV
    lists = srv.requests("list", "/api/v1/services")
    assert lists and "labelSelector=%21service.kubernetes.io%2Fheadless%2C%21service." \
        "kubernetes.io%2Fservice-proxy-name" in lists[0]["path"]
    assert "limit=500" in lists[0]["path"]
    watches = srv.requests("watch", "/api/v1/services")
    assert watches and "allowWatchBookmarks=true" in watches[0]["path"]
    assert "resourceVersion=" in watches[0]["path"]
    hdr = {k.lower(): v for k, v in lists[0]["headers"].items()}
    assert hdr["accept"] == "application/json"
    assert hdr["user-agent"].startswith("kube-iptables-proxy/")
    assert "(linux/" in hdr["user-agent"]
    assert_clean_exit(inf)


def test_add_update_delete_reach_the_handlers(procs):
    srv = procs.server(*fixtures())
    inf = procs.informer("--master", srv.url)
    inf.synced(SVC, EPS)
    adm = srv.admin
    adm.apply(service("web", ip="10.96.5.5"))
    adm.apply(endpointslice("web-abc", "web"))
    inf.wait_for(lambda ls: any(x.get("op") == "upsert" and x["key"] == "default/web"
                                for x in ls), what="web added")
    adm.apply(service("web", port=8080, ip="10.96.5.5"))
    rv = adm.objects(SVC)["default/web"]["metadata"]["resourceVersion"]
    inf.wait_for(lambda ls: any(x.get("op") == "upsert" and x["key"] == "default/web" and
                                x["rv"] == rv for x in ls), what="web modified")
    adm.delete("v1", SVC, "web", "default")
    adm.delete(EPS_API, EPS, "web-abc", "default")
    inf.wait_for(lambda ls: any(x.get("op") == "delete" and x["key"] == "default/web-abc"
                                for x in ls), what="slice deleted")
    assert [x for x in inf.ops("delete", SVC) if x["key"] == "default/web"]
    # objects another proxy owns are not ours (kube-proxy's label selector)
    adm.apply(service("other", labels={"service.kubernetes.io/service-proxy-name": "x"}))
    adm.apply(service("after"))
    inf.wait_for(lambda ls: any(x.get("key") == "default/after" for x in ls), what="after")
    assert not [x for x in inf.ops("upsert") if x["key"] == "default/other"]
    assert_no_duplicate_upserts(inf)
    assert_clean_exit(inf)


def test_dropped_connection_rewatches_without_loss_or_duplicates(procs):
    srv = procs.server(*fixtures(), "--bookmark-interval", "1")
    inf = procs.informer("--master", srv.url)
    inf.synced(SVC, EPS)
    adm = srv.admin
    adm.wait_for_watch("services")
    # cut the next service watches mid-event, several times, while objects change
    # (each cut is a failure, so the backoff grows: keep the count small)
    adm.fault("drop", path="/api/v1/services", after=3, count=2)
    adm.fault("drop", path="/api/v1/services", after=1, count=1, reset=True)
    time.sleep(1.2)  # a watch ended within 1 s without events would count as a failure too
    adm.end_watches()  # faults attach to the next watches
    for i in range(60):
        adm.apply(service(f"s{i}", ns="churn"))
        if i % 3 == 0:
            adm.apply(service(f"s{i}", ns="churn", port=81))
        if i % 5 == 0:
            adm.delete("v1", SVC, f"s{i}", "churn")
    assert_in_sync(inf, adm, timeout=40)
    assert_no_duplicate_upserts(inf)
    # a cut stream resumes from the last resourceVersion: no relist
    assert len(srv.requests("list", "/api/v1/services")) == 1
    assert len(srv.requests("watch", "/api/v1/services")) >= 3
    assert_clean_exit(inf)


def test_expired_watch_relists_and_reports_deletion(procs):
    srv = procs.server(*fixtures())
    inf = procs.informer("--master", srv.url)
    inf.synced(SVC, EPS)
    adm = srv.admin
    adm.wait_for_watch("services")
    # keep the informer off the stream while an object goes and history is compacted
    adm.fail(503, verb="watch", path="/api/v1/services", count=3)
    adm.end_watches()
    adm.delete("v1", SVC, "cart", "shop")
    adm.apply(service("fresh"))
    adm.compact()
    inf.wait_for(lambda ls: any(x.get("op") == "delete" and x["key"] == "shop/cart"
                                for x in ls), timeout=30, what="cart deleted by the relist")
    assert inf.logs("Watch expired, relisting")
    assert_in_sync(inf, adm)
    # unchanged objects were not delivered again by the relist
    assert_no_duplicate_upserts(inf)
    assert len(srv.requests("list", "/api/v1/services")) == 2
    assert_clean_exit(inf)


def test_server_down_backs_off_then_recovers(procs):
    srv = procs.server(*fixtures())
    inf = procs.informer("--master", srv.url)
    inf.synced(SVC, EPS)
    adm = srv.admin
    adm.wait_for_watch("services")
    adm.requests(clear=True)
    adm.refuse(4, drop_existing=True)
    time.sleep(5)
    adm.apply(service("back"))
    inf.wait_for(lambda ls: any(x.get("key") == "default/back" for x in ls), timeout=40,
                 what="recovery")
    failures = inf.logs("failed") + inf.logs("refused")
    assert failures, "no failure was reported while the server was down"
    assert all("retryIn=" in x["kv"] for x in failures)
    # backoff, not a storm: few attempts during the outage
    assert len(adm.requests()) < 30
    assert_in_sync(inf, adm)
    assert_clean_exit(inf)


def test_token_file_rotation(procs, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("token-one\n")
    srv = procs.server(*fixtures(), "--token-file", tokens)
    tok = tmp_path / "token"
    tok.write_text("token-one\n")
    kc = kubeconfig(tmp_path / "kc", srv.url, token_file="token", token="ignored-static")
    inf = procs.informer("--kubeconfig", kc)
    inf.synced(SVC, EPS)
    adm = srv.admin
    adm.wait_for_watch("services")
    # rotate: the server now accepts only the new token; the file has it
    tok.write_text("token-two\n")
    tokens.write_text("token-two\n")
    adm.requests(clear=True)
    adm.end_watches()
    adm.apply(service("rotated"))
    inf.wait_for(lambda ls: any(x.get("key") == "default/rotated" for x in ls), timeout=30,
                 what="watch with the new token")
    reqs = adm.requests()
    auth = [{k.lower(): v for k, v in r["headers"].items()}.get("authorization")
            for r in reqs]
    # the first re-watch used the cached token, got 401, re-read the file and retried
    assert "Bearer token-two" in auth
    assert any(r["status"] == 401 for r in reqs) or auth[0] == "Bearer token-two"
    assert auth[-1] == "Bearer token-two"
    assert "Bearer ignored-static" not in auth
    assert_clean_exit(inf)


def test_tls_ca_from_kubeconfig_and_wrong_ca_refused(procs, tmp_path, certs):
    srv = procs.server(*fixtures(), "--tls-cert", certs / "server.crt", "--tls-key",
                       certs / "server.key", scheme="https", cacert=certs / "ca.crt")
    good = kubeconfig(tmp_path / "good", srv.url, ca=certs / "ca.crt")
    inf = procs.informer("--kubeconfig", good)
    inf.synced(SVC, EPS)
    assert_in_sync(inf, srv.admin)
    assert_clean_exit(inf)

    # the CA as base64 data, and tls-server-name (the cert is for localhost, not "wrong")
    ca_data = base64.b64encode((certs / "ca.crt").read_bytes()).decode()
    named = kubeconfig(tmp_path / "named", srv.url, ca_data=ca_data,
                       tls_server_name="localhost")
    inf = procs.informer("--kubeconfig", named)
    inf.synced(SVC, EPS)
    assert_clean_exit(inf)

    for name, kc in (("other-ca", kubeconfig(tmp_path / "bad", srv.url,
                                             ca=certs / "other-ca.crt")),
                     ("bad-name", kubeconfig(tmp_path / "bad-name", srv.url,
                                             ca=certs / "ca.crt", tls_server_name="wrong"))):
        inf = procs.informer("--kubeconfig", kc)
        inf.wait_for(lambda ls: any(x.get("op") == "log" and "List failed" in x["msg"]
                                    for x in ls), timeout=15, what=f"{name} refused")
        time.sleep(0.5)
        assert not inf.ops("synced"), name
        assert not inf.ops("upsert"), name
        assert_clean_exit(inf)


def test_client_certificate_from_data_or_files(procs, tmp_path, certs):
    srv = procs.server(*fixtures(), "--tls-cert", certs / "server.crt", "--tls-key",
                       certs / "server.key", "--client-ca", certs / "ca.crt",
                       scheme="https", cacert=certs / "ca.crt")
    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    kc = kubeconfig(tmp_path / "kc", srv.url, ca=certs / "ca.crt",
                    cert_data=b64(certs / "client.crt"), key_data=b64(certs / "client.key"))
    inf = procs.informer("--kubeconfig", kc)
    inf.synced(SVC, EPS)
    assert_clean_exit(inf)
    # the same from files (paths relative to the kubeconfig)
    (tmp_path / "c.crt").write_bytes((certs / "client.crt").read_bytes())
    (tmp_path / "c.key").write_bytes((certs / "client.key").read_bytes())
    kc = kubeconfig(tmp_path / "files", srv.url, ca=certs / "ca.crt", cert="c.crt", key="c.key")
    inf = procs.informer("--kubeconfig", kc)
    inf.synced(SVC, EPS)
    assert_clean_exit(inf)
    # no client certificate: 401 on every request, never synced, still a clean stop
    kc = kubeconfig(tmp_path / "nocert", srv.url, ca=certs / "ca.crt")
    inf = procs.informer("--kubeconfig", kc)
    inf.wait_for(lambda ls: any("status=401" in x.get("kv", "") for x in ls), timeout=15,
                 what="401 reported")
    assert not inf.ops("synced")
    assert_clean_exit(inf)


def test_in_cluster_config(procs, tmp_path, certs):
    tokens = tmp_path / "tokens"
    tokens.write_text("sa-token\n")
    srv = procs.server(*fixtures(), "--tls-cert", certs / "server.crt", "--tls-key",
                       certs / "server.key", "--token-file", tokens, scheme="https",
                       cacert=certs / "ca.crt")
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("sa-token")
    (sa / "ca.crt").write_bytes((certs / "ca.crt").read_bytes())
    inf = procs.informer(env={"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                              "KUBERNETES_SERVICE_PORT": str(srv.port),
                              "KIP_TEST_SERVICEACCOUNT_DIR": str(sa)})
    inf.synced(SVC, EPS)
    assert_clean_exit(inf)


def test_exec_credential_plugin(procs, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("exec-token-1\n")
    srv = procs.server(*fixtures(), "--token-file", tokens)
    runs = tmp_path / "runs"
    plugin = tmp_path / "plugin.sh"
    plugin.write_text(f"""#!/bin/sh
echo run >> {runs}
n=$(wc -l < {runs})
test "$FROM_KUBECONFIG" = yes || exit 3
printf '{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
printf '"status":{{"token":"exec-token-%s"}}}}' "$n"
""")
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    kc = kubeconfig(tmp_path / "kc", srv.url, exec_={
        "apiVersion": "client.authentication.k8s.io/v1", "command": "./plugin.sh",
        "args": [], "env": [{"name": "FROM_KUBECONFIG", "value": "yes"}],
        "interactiveMode": "Never"})
    inf = procs.informer("--kubeconfig", kc)
    inf.synced(SVC, EPS)
    assert runs.read_text().count("run") == 1  # cached: one run for every request
    # the server rejects the cached token: the plugin runs again, its new token works
    tokens.write_text("exec-token-2\n")
    srv.admin.end_watches()
    srv.admin.apply(service("after-exec"))
    inf.wait_for(lambda ls: any(x.get("key") == "default/after-exec" for x in ls),
                 timeout=30, what="re-run plugin")
    assert runs.read_text().count("run") == 2
    assert_clean_exit(inf)


def test_429_honours_retry_after(procs):
    srv = procs.server(*fixtures())
    srv.admin.fail(429, verb="list", path="/api/v1/services", retryAfter=2, count=1)
    t0 = time.monotonic()
    inf = procs.informer("--master", srv.url)
    inf.synced(SVC, EPS)
    assert time.monotonic() - t0 >= 2.0
    throttled = inf.logs("throttled")
    assert throttled and "retryIn=\"2000ms\"" in throttled[0]["kv"]
    assert_clean_exit(inf)


def test_expired_continue_restarts_the_list(procs):
    srv = procs.server(*fixtures())
    srv.admin.fail(410, verb="list", path="continue=", count=1)
    inf = procs.informer("--master", srv.url, "--page-limit", "2")
    inf.synced(SVC, EPS)
    assert inf.logs("continue token expired")
    assert_in_sync(inf, srv.admin)
    assert_no_duplicate_upserts(inf)
    assert_clean_exit(inf)


def test_garbage_and_oversized_events_restart_the_watch(procs):
    srv = procs.server(*fixtures())
    inf = procs.informer("--master", srv.url)
    inf.synced(SVC, EPS)
    adm = srv.admin
    adm.wait_for_watch("services")
    adm.fault("garbage", path="/api/v1/services", after=1)
    time.sleep(1.2)
    adm.end_watches()  # faults attach to the next watches
    adm.apply(service("g1"))
    adm.apply(service("g2"))
    inf.wait_for(lambda ls: any("not JSON" in x.get("msg", "") for x in ls), what="garbage")
    adm.wait_for_watch("services", timeout=20 * SLOW)
    adm.fault("oversized", path="/api/v1/services", after=0)
    adm.end_watches()
    adm.apply(service("g3"))
    inf.wait_for(lambda ls: any("size cap" in x.get("msg", "") for x in ls), timeout=30,
                 what="oversized")
    adm.apply(service("g4"))
    inf.wait_for(lambda ls: any(x.get("key") == "default/g4" for x in ls), timeout=30,
                 what="recovered")
    assert_in_sync(inf, adm)
    assert_no_duplicate_upserts(inf)
    assert_clean_exit(inf)


def test_objects_that_fail_to_decode_are_skipped(procs):
    srv = procs.server(*fixtures())
    inf = procs.informer("--master", srv.url)
    inf.synced(SVC, EPS)
    bad = service("bad-port")
    bad["spec"]["ports"][0]["port"] = 70000
    srv.admin.apply(bad)
    srv.admin.apply(service("good"))
    inf.wait_for(lambda ls: any(x.get("key") == "default/good" for x in ls), what="good")
    skipped = inf.logs("failed to decode")
    assert skipped and "default/bad-port" in skipped[0]["kv"]
    assert not [x for x in inf.ops("upsert") if x["key"] == "default/bad-port"]
    assert_clean_exit(inf)


def test_node_watch_sees_only_the_own_node(procs):
    srv = procs.server(*fixtures())
    srv.admin.apply(node("node-a"))
    srv.admin.apply(node("node-b"))
    inf = procs.informer("--master", srv.url, "--node", "node-a")
    inf.synced(SVC, EPS, "Node")
    assert [x["key"] for x in inf.ops("upsert", "Node")] == ["node-a"]
    assert "fieldSelector=metadata.name%3Dnode-a" in srv.requests("list", "/api/v1/nodes")[0][
        "path"]
    srv.admin.delete("v1", "Node", "node-b")
    srv.admin.delete("v1", "Node", "node-a")
    inf.wait_for(lambda ls: any(x.get("op") == "delete" and x["kind"] == "Node" for x in ls),
                 what="node deleted")
    assert [x["key"] for x in inf.ops("delete", "Node")] == ["node-a"]
    assert_clean_exit(inf)


def test_list_only_lists_once_and_never_watches(procs):
    srv = procs.server(*fixtures())
    inf = procs.informer("--master", srv.url, "--list-only", "--node", "node-x")
    inf.synced(SVC, EPS, "Node")
    time.sleep(1)
    assert not srv.requests("watch")
    assert len(srv.requests("list", "/api/v1/services")) == 1
    assert_clean_exit(inf)


@pytest.mark.parametrize("mode", ["on", "forbid"])
def test_streaming_list(procs, mode):
    srv = procs.server(*fixtures(), "--watch-list", mode)
    inf = procs.informer("--master", srv.url, "--watch-list")
    inf.synced(SVC, EPS)
    assert_in_sync(inf, srv.admin)
    first = srv.requests(resource="/api/v1/services")[0]["path"]
    assert "sendInitialEvents=true" in first and "resourceVersionMatch=NotOlderThan" in first
    lists = srv.requests("list", "/api/v1/services")
    if mode == "on":
        assert not lists
    else:
        assert len(lists) == 1 and inf.logs("falling back to list and watch")
    srv.admin.apply(service("streamed"))
    inf.wait_for(lambda ls: any(x.get("key") == "default/streamed" for x in ls), what="event")
    assert_clean_exit(inf)


def test_post_event(procs):
    srv = procs.server(*fixtures())
    inf = procs.informer("--master", srv.url, "--node", "node-a")
    inf.synced(SVC, EPS, "Node")
    inf.send("event Node - node-a node-a Normal Starting Starting kube-iptables-proxy.")
    inf.send("event Service shop frontend uid-1 Warning LoadBalancerIPMismatch bad ip")
    deadline = time.monotonic() + 10 * SLOW
    while time.monotonic() < deadline:
        evs = srv.admin.objects("Event")
        if len(evs) == 2:
            break
        time.sleep(0.1)
    evs = {o["involvedObject"]["name"]: o for o in srv.admin.objects("Event").values()}
    assert set(evs) == {"node-a", "frontend"}
    n = evs["node-a"]
    assert n["metadata"]["namespace"] == "default" and n["reason"] == "Starting"
    assert n["source"] == {"component": "kube-iptables-proxy", "host": "node-a"}
    assert n["count"] == 1 and n["type"] == "Normal" and n["firstTimestamp"]
    assert n["reportingComponent"] == "kube-iptables-proxy"
    s = evs["frontend"]
    assert s["metadata"]["namespace"] == "shop"
    assert s["involvedObject"] == {"apiVersion": "v1", "kind": "Service", "name": "frontend",
                                   "namespace": "shop", "uid": "uid-1"}
    assert s["message"] == "bad ip" and s["type"] == "Warning"
    assert_clean_exit(inf)


def test_churn_many_events_and_reconnects(procs):
    n = int(os.environ.get("INFORMER_CHURN", "300" if VALGRIND else "2500"))
    srv = procs.server(*fixtures(), "--bookmark-interval", "0.5")
    inf = procs.informer("--master", srv.url, "--page-limit", "50")
    inf.synced(SVC, EPS)
    adm = srv.admin
    adm.fault("drop", path="/api/v1/services", after=50, count=3)
    adm.fault("drop", path="/apis/discovery.k8s.io/v1/endpointslices", after=40, count=3,
              reset=True)
    time.sleep(1.2)
    adm.end_watches()  # faults attach to the next watches
    objs = []
    for i in range(n):
        j = i % 400
        adm.apply(service(f"c{j}", ns=f"ns{j % 7}", port=1 + i % 60000))
        adm.apply(endpointslice(f"c{j}-x", f"c{j}", ns=f"ns{j % 7}", ip=f"10.1.{j // 250}."
                                f"{j % 250}", port=1 + i % 60000))
        objs.append(j)
        if i % 7 == 3:
            k = objs[i // 2]
            try:
                adm.delete("v1", SVC, f"c{k}", f"ns{k % 7}")
            except Exception:  # already deleted
                pass
        if i == n // 2:
            # an expired watch in the middle: relist and diff
            adm.fail(503, verb="watch", count=2)
            adm.end_watches()
            adm.compact()
    assert_in_sync(inf, adm, timeout=90)
    assert_no_duplicate_upserts(inf)
    assert_clean_exit(inf)


def test_stop_while_requests_and_plugin_are_in_flight(procs, tmp_path):
    plugin = tmp_path / "slow.sh"
    plugin.write_text("#!/bin/sh\nsleep 30\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    srv = procs.server(*fixtures())
    kc = kubeconfig(tmp_path / "kc", srv.url, exec_={
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin)})
    inf = procs.informer("--kubeconfig", kc)
    time.sleep(0.5 * SLOW)
    t0 = time.monotonic()
    assert_clean_exit(inf)
    assert time.monotonic() - t0 < 10 * SLOW
    # and with streams open
    inf = procs.informer("--master", srv.url)
    inf.synced(SVC, EPS)
    assert_clean_exit(inf)


def test_bad_kubeconfig_is_reported(procs, tmp_path):
    kc = tmp_path / "kc"
    kc.write_text(json.dumps({"apiVersion": "v1", "kind": "Config",
                              "current-context": "missing"}))
    inf = procs.informer("--kubeconfig", kc)
    inf.wait_for(lambda ls: any(x.get("op") == "conn-error" for x in ls), what="error")
    assert "context \"missing\" not found" in inf.ops("conn-error")[0]["msg"]
    assert inf.stop() == 1
