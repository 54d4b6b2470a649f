"""Validates the test API server against real clients (kubectl 1.27-1.33 and Debian's
python3-kubernetes) and against the raw protocol of spec/kubernetes-api.md.

Run: /usr/bin/python3 -m pytest -q test/apiserver
"""

import json
import os
import socket
import subprocess
import time
from urllib.parse import quote

import pytest

from testlib import (PYTHON, TESTDATA, JsonStream, endpointslice, in_thread, kubectl,
                     kubectl_env, raw_request, service, write_kubeconfig)

KUBE_PROXY_SELECTOR = "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name"
SVC = "/api/v1/services"
EPS = "/apis/discovery.k8s.io/v1/endpointslices"


def names(objs):
    return [o["metadata"]["name"] for o in objs]


def watch_events(port, path, **kw):
    r = raw_request(port, path, **kw)
    assert r.status == 200, r.body[:500]
    return r


# ---------------------------------------------------------------------------
# Raw protocol: lists
# ---------------------------------------------------------------------------

def test_list_shapes_match_real_server(server):
    r = raw_request(server.port, SVC)
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert (body["kind"], body["apiVersion"]) == ("ServiceList", "v1")
    assert isinstance(body["metadata"]["resourceVersion"], str)
    assert sorted(names(body["items"])) == sorted(
        names(json.loads((TESTDATA / "service-list.json").read_text())["items"]))
    for item in body["items"]:  # typed list items carry no kind/apiVersion
        assert "kind" not in item and "apiVersion" not in item
        assert item["metadata"]["resourceVersion"].isdigit()
        assert item["metadata"]["uid"] and item["metadata"]["creationTimestamp"]
    eps = raw_request(server.port, EPS).json()
    assert (eps["kind"], eps["apiVersion"]) == ("EndpointSliceList", "discovery.k8s.io/v1")
    empty = next(i for i in eps["items"] if i["metadata"]["name"] == "cart-q7w3e")
    assert empty["endpoints"] is None and empty["ports"] is None  # nulls survive
    assert names(eps["items"]) == sorted(names(eps["items"]), key=lambda n: next(
        i["metadata"]["namespace"] for i in eps["items"] if i["metadata"]["name"] == n) + "/" + n)
    nodes = raw_request(server.port, "/api/v1/nodes").json()
    assert nodes["kind"] == "NodeList" and nodes["items"] == []
    ns = raw_request(server.port, "/api/v1/namespaces/shop/services").json()
    assert {i["metadata"]["namespace"] for i in ns["items"]} == {"shop"}
    one = raw_request(server.port, "/api/v1/namespaces/shop/services/cart").json()
    assert (one["kind"], one["apiVersion"], one["metadata"]["name"]) == ("Service", "v1", "cart")


def test_discovery_endpoints(server):
    ver = raw_request(server.port, "/version").json()
    assert ver["gitVersion"].startswith("v1.") and ver["major"] == "1"
    assert raw_request(server.port, "/api").json()["versions"] == ["v1"]
    groups = {g["name"] for g in raw_request(server.port, "/apis").json()["groups"]}
    assert groups == {"discovery.k8s.io", "events.k8s.io"}
    core = {r["name"]: r for r in raw_request(server.port, "/api/v1").json()["resources"]}
    assert core["services"]["namespaced"] and core["services"]["kind"] == "Service"
    assert "svc" in core["services"]["shortNames"] and "watch" in core["services"]["verbs"]
    assert core["nodes"]["namespaced"] is False
    disc = raw_request(server.port, "/apis/discovery.k8s.io/v1").json()
    assert disc["groupVersion"] == "discovery.k8s.io/v1"
    assert disc["resources"][0]["kind"] == "EndpointSlice"
    ev = raw_request(server.port, "/apis/events.k8s.io/v1").json()
    assert ev["resources"][0]["name"] == "events"
    for path in ("/openapi/v2", "/openapi/v3", "/api/v1/pods", "/apis/apps/v1"):
        r = raw_request(server.port, path)
        assert r.status == 404 and r.json()["reason"] == "NotFound", path


def test_resource_version_semantics(server):
    adm = server.admin
    rv0 = raw_request(server.port, SVC).json()["metadata"]["resourceVersion"]
    adm.apply(service("new-one"))
    # rv=0 and unset: current state
    for q in ("", "?resourceVersion=0",
              f"?resourceVersion={rv0}&resourceVersionMatch=NotOlderThan"):
        body = raw_request(server.port, SVC + q).json()
        assert "new-one" in names(body["items"]), q
        assert int(body["metadata"]["resourceVersion"]) > int(rv0)
    # Exact: the state as of rv0
    exact = raw_request(server.port, f"{SVC}?resourceVersion={rv0}&resourceVersionMatch=Exact")
    assert exact.status == 200 and "new-one" not in names(exact.json()["items"])
    assert exact.json()["metadata"]["resourceVersion"] == rv0
    # Exact below the compacted RV: 410
    adm.compact()
    gone = raw_request(server.port, f"{SVC}?resourceVersion={rv0}&resourceVersionMatch=Exact")
    assert gone.status == 410 and gone.json()["reason"] == "Expired"
    # match without rv: 422 Invalid, as ValidateListOptions answers
    bad = raw_request(server.port, f"{SVC}?resourceVersionMatch=NotOlderThan")
    assert bad.status == 422 and bad.json()["reason"] == "Invalid"
    # too new: 504 with the ResourceVersionTooLarge cause (after the cache's 3 s wait)
    big = raw_request(server.port, f"{SVC}?resourceVersion=999999")
    st = big.json()
    assert big.status == 504 and st["code"] == 504 and st["reason"] == "Timeout"
    assert st["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


def test_pagination_and_expired_continue(server):
    adm = server.admin
    for i in range(7):
        adm.apply(service(f"page-{i}", namespace="paging"))
    seen, rvs, token, pages = [], set(), "", 0
    while True:
        q = f"{SVC}?limit=3" + (f"&continue={token}" if token else "")
        body = raw_request(server.port, q).json()
        pages += 1
        seen += names(body["items"])
        rvs.add(body["metadata"]["resourceVersion"])
        token = body["metadata"].get("continue")
        if pages == 1:
            adm.apply(service("late-arrival", namespace="zzz"))  # must not show up
            assert body["metadata"]["remainingItemCount"] == 10
        if not token:
            break
    assert pages == 5 and len(rvs) == 1 and len(seen) == 13 == len(set(seen))
    assert "late-arrival" not in seen

    first = raw_request(server.port, f"{SVC}?limit=2").json()
    adm.expire_continue()
    r = raw_request(server.port, f"{SVC}?limit=2&continue={first['metadata']['continue']}")
    example = json.loads((TESTDATA / "status-410-expired-continue.json").read_text())
    st = r.json()
    assert r.status == 410 and set(st) == set(example)
    assert (st["reason"], st["code"], st["status"]) == ("Expired", 410, "Failure")
    assert st["message"] == example["message"]
    # the inconsistent-remainder token from the 410 continues from the current state
    rest = raw_request(server.port, f"{SVC}?limit=100&continue={st['metadata']['continue']}")
    assert rest.status == 200 and "late-arrival" in names(rest.json()["items"])
    assert "kubernetes" not in names(rest.json()["items"])

    adm.config(continueTTL=0.2)
    first = raw_request(server.port, f"{SVC}?limit=2").json()
    time.sleep(0.4)
    r = raw_request(server.port, f"{SVC}?limit=2&continue={first['metadata']['continue']}")
    assert r.status == 410
    assert raw_request(server.port, f"{SVC}?continue=garbage!").status == 400


def test_label_and_field_selectors_on_lists(server):
    adm = server.admin
    adm.apply(service("proxied-elsewhere",
                      labels={"service.kubernetes.io/service-proxy-name": "x"}))
    adm.apply(endpointslice("headless-abc", "headless",
                            labels={"service.kubernetes.io/headless": ""}))
    sel = quote(KUBE_PROXY_SELECTOR, safe="")
    svcs = names(raw_request(server.port, f"{SVC}?labelSelector={sel}").json()["items"])
    assert "proxied-elsewhere" not in svcs and "kube-dns" in svcs
    slices = names(raw_request(server.port, f"{EPS}?labelSelector={sel}").json()["items"])
    assert "headless-abc" not in slices and "kube-dns-7xq2p" in slices

    def q(selector, path=SVC, param="labelSelector"):
        return raw_request(server.port, f"{path}?{param}={quote(selector, safe='')}")
    assert sorted(names(q("app").json()["items"])) == ["cart", "frontend", "orders-headless"]
    assert names(q("app=cart").json()["items"]) == ["cart"]
    assert names(q("app==cart").json()["items"]) == ["cart"]
    assert "cart" not in names(q("app!=cart").json()["items"])
    assert "payments-db" in names(q("app!=cart").json()["items"])  # absent label matches !=
    assert sorted(names(q("app in (cart,frontend)").json()["items"])) == ["cart", "frontend"]
    assert names(q("app,app notin (cart,frontend)").json()["items"]) == ["orders-headless"]
    assert q("app=cart,!app").json()["items"] == []
    bad = q("a b c")
    assert bad.status == 400 and bad.json()["reason"] == "BadRequest"
    assert names(q("metadata.name=kube-dns", param="fieldSelector").json()["items"]) == ["kube-dns"]
    assert {i["metadata"]["namespace"] for i in
            q("metadata.namespace=shop", param="fieldSelector").json()["items"]} == {"shop"}
    unsupported = q("spec.clusterIP=10.96.0.1", param="fieldSelector")
    assert unsupported.status == 400
    assert unsupported.json()["message"] == "field label not supported: spec.clusterIP"


# ---------------------------------------------------------------------------
# Raw protocol: watches
# ---------------------------------------------------------------------------

def test_watch_chunk_boundaries_are_unrelated_to_events(server):
    for i in range(40):
        server.admin.apply(service(f"chunky-{i}"))
    t0 = time.monotonic()
    r = watch_events(server.port, f"{SVC}?watch=1&timeoutSeconds=1")
    elapsed = time.monotonic() - t0
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.headers["content-type"].startswith("application/json")
    assert r.complete and 0.9 < elapsed < 5  # clean end (zero-length chunk) at timeoutSeconds
    chunks = [c for _, c in r.chunks]
    assert any(not c.endswith(b"\n") for c in chunks), "some chunk must end mid-event"
    assert any(c.count(b"\n") >= 2 for c in chunks), "some chunk must hold several events"
    assert any(len(c) == 1 for c in chunks), "some chunk must be a single byte"
    evs = r.events()
    assert len(evs) == 46 and {e["type"] for e in evs} == {"ADDED"}
    assert all(e["object"]["kind"] == "Service" and e["object"]["apiVersion"] == "v1"
               for e in evs)


def test_watch_event_chunking_mode_and_stream_accept(server):
    server.admin.config(chunking="event")
    r = watch_events(server.port, f"{EPS}?watch=true&timeoutSeconds=1",
                     headers={"Accept": "application/json;stream=watch"})
    chunks = [c for _, c in r.chunks]
    assert len(chunks) == 5 and all(c.endswith(b"\n") and c.count(b"\n") == 1 for c in chunks)


def test_watch_resume_replays_history_in_order(server):
    adm = server.admin
    rv = raw_request(server.port, SVC).json()["metadata"]["resourceVersion"]
    adm.apply(service("web"))
    adm.apply(service("web", port=81))
    adm.apply(endpointslice("web-1", "web"))  # another resource: not in this watch
    adm.delete("v1", "Service", "web", "default")
    r = watch_events(server.port, f"{SVC}?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    evs = r.events()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [
        ("ADDED", "web"), ("MODIFIED", "web"), ("DELETED", "web")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
    assert rvs == sorted(rvs) and rvs[0] > int(rv) and rvs[2] - rvs[1] == 2
    assert evs[2]["object"]["spec"]["ports"][0]["port"] == 81  # last state on DELETED
    ns_only = watch_events(server.port, "/api/v1/namespaces/shop/services?watch=1&timeoutSeconds=1")
    assert {e["object"]["metadata"]["namespace"] for e in ns_only.events()} == {"shop"}


def test_watch_too_old_rv_gets_in_stream_410(server):
    rv = raw_request(server.port, SVC).json()["metadata"]["resourceVersion"]
    server.admin.apply(service("newer"))
    server.admin.compact()
    r = watch_events(server.port, f"{SVC}?watch=1&resourceVersion={rv}")
    assert r.complete  # the stream ends right after the ERROR event
    example = json.loads((TESTDATA / "watch-endpointslices-expired.ndjson").read_text())
    (ev,) = r.events()
    assert ev["type"] == "ERROR" and set(ev["object"]) == set(example["object"])
    assert (ev["object"]["code"], ev["object"]["reason"]) == (410, "Expired")
    assert ev["object"]["message"].startswith(f"too old resource version: {rv} (")


def test_watch_selector_transitions(server):
    adm = server.admin
    rv = raw_request(server.port, SVC).json()["metadata"]["resourceVersion"]
    adm.apply(service("flip"))
    adm.apply(service("flip", labels={"service.kubernetes.io/service-proxy-name": "other"}))
    adm.apply(service("flip", labels={"app": "flip"}))
    adm.apply(service("other-proxy", labels={"service.kubernetes.io/service-proxy-name": "x"}))
    adm.delete("v1", "Service", "other-proxy", "default")
    sel = quote(KUBE_PROXY_SELECTOR, safe="")
    r = watch_events(server.port,
                     f"{SVC}?watch=1&resourceVersion={rv}&labelSelector={sel}&timeoutSeconds=1")
    evs = r.events()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [
        ("ADDED", "flip"), ("DELETED", "flip"), ("ADDED", "flip")]
    # the DELETED carries the previous content with the event's resourceVersion
    assert "labels" not in evs[1]["object"]["metadata"]
    assert int(evs[1]["object"]["metadata"]["resourceVersion"]) == int(rv) + 2
    fs = watch_events(server.port,
                      f"{SVC}?watch=1&fieldSelector=metadata.name%3Dkube-dns&timeoutSeconds=1")
    assert [e["object"]["metadata"]["name"] for e in fs.events()] == ["kube-dns"]


def test_bookmarks(server):
    server.admin.config(bookmarkInterval=0.2)
    r = watch_events(server.port, f"{EPS}?watch=1&allowWatchBookmarks=true&timeoutSeconds=1")
    marks = [e for e in r.events() if e["type"] == "BOOKMARK"]
    assert len(marks) >= 2
    obj = marks[0]["object"]
    assert obj == {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                   "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"],
                                "creationTimestamp": None},
                   "addressType": "", "endpoints": None, "ports": None}
    plain = watch_events(server.port, f"{EPS}?watch=1&timeoutSeconds=1")
    assert all(e["type"] != "BOOKMARK" for e in plain.events())


def test_streaming_list(server):
    base = f"{EPS}?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
    bad = raw_request(server.port, base)
    assert bad.status == 422 and bad.json()["reason"] == "Invalid"
    list_rv = raw_request(server.port, EPS).json()["metadata"]["resourceVersion"]
    join = in_thread(raw_request, server.port,
                     base + "&resourceVersionMatch=NotOlderThan&timeoutSeconds=2")
    server.admin.wait_for_watch("endpointslices.discovery.k8s.io")
    server.admin.apply(endpointslice("live-1", "live"))
    r = join()
    evs = r.events()
    example = [json.loads(line) for line in
               (TESTDATA / "watchlist-endpointslices.ndjson").read_text().splitlines()]
    assert [e["type"] for e in evs] == ["ADDED"] * 5 + ["BOOKMARK", "ADDED"]
    mark = evs[5]["object"]
    assert mark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert mark["metadata"]["resourceVersion"] == list_rv
    assert set(mark) == set(example[2]["object"])
    assert evs[6]["object"]["metadata"]["name"] == "live-1"


def test_streaming_list_ignored_by_old_server(start_server):
    s = start_server("--watch-list", "ignore", "--fixture",
                     TESTDATA / "endpointslice-list.json")
    r = watch_events(s.port, f"{EPS}?watch=1&sendInitialEvents=true&resourceVersionMatch="
                             "NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")
    assert [e["type"] for e in r.events()] == ["ADDED"] * 5  # no initial-events-end bookmark


def test_end_watches_and_graceful_shutdown(start_server):
    s = start_server()
    join = in_thread(raw_request, s.port, f"{SVC}?watch=1")
    s.admin.wait_for_watch("services")
    s.admin.end_watches()
    assert join().complete
    join = in_thread(raw_request, s.port, f"{SVC}?watch=1&allowWatchBookmarks=true")
    s.admin.wait_for_watch("services")
    t0 = time.monotonic()
    assert s.stop() == 0 and time.monotonic() - t0 < 5
    assert join().complete  # the watch got its terminating chunk on SIGTERM


# ---------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------

def test_status_faults(server):
    adm = server.admin
    adm.fail(429, verb="list", retryAfter=3)
    r = raw_request(server.port, SVC)
    st = r.json()
    assert r.status == 429 and r.headers["retry-after"] == "3"
    assert (st["kind"], st["status"], st["reason"], st["code"]) == (
        "Status", "Failure", "TooManyRequests", 429)
    assert st["details"]["retryAfterSeconds"] == 3
    assert raw_request(server.port, SVC).status == 200  # count=1 consumed
    adm.fail(503, count=2, path="endpointslices")
    assert raw_request(server.port, SVC).status == 200  # path does not match
    assert [raw_request(server.port, EPS).status for _ in range(3)] == [503, 503, 200]
    adm.fail(403, verb="watch")
    r = raw_request(server.port, f"{EPS}?watch=1")
    assert r.status == 403 and r.json()["message"] == (
        'endpointslices.discovery.k8s.io is forbidden: User "system:anonymous" cannot watch '
        'resource "endpointslices" in API group "discovery.k8s.io" at the cluster scope')
    for code, reason in ((500, "InternalError"), (401, "Unauthorized"), (504, "Timeout")):
        adm.fail(code, method="GET")
        r = raw_request(server.port, SVC)
        assert (r.status, r.json()["reason"], r.json()["code"]) == (code, reason, code)
    assert adm.faults() == []


def _history_watch(server, n=3):
    """Create n services after a list and return the watch path that replays them."""
    rv = raw_request(server.port, SVC).json()["metadata"]["resourceVersion"]
    for i in range(n):
        server.admin.apply(service(f"f-{i}"))
    return f"{SVC}?watch=1&resourceVersion={rv}&timeoutSeconds=2"


def test_fault_drop_mid_event(server):
    path = _history_watch(server)
    server.admin.fault("drop", after=1)
    r = watch_events(server.port, path)
    assert not r.complete  # no terminating chunk
    body = r.body
    first, _, rest = body.partition(b"\n")
    assert json.loads(first)["object"]["metadata"]["name"] == "f-0"
    assert rest and b"\n" not in rest  # half of the second event, then the close


def test_fault_garbage_line(server):
    path = _history_watch(server)
    server.admin.fault("garbage", after=1)
    lines = watch_events(server.port, path).lines()
    assert len(lines) == 4
    with pytest.raises(ValueError):
        json.loads(lines[1])
    assert [json.loads(line)["object"]["metadata"]["name"] for line in lines[:1] + lines[2:]] == \
        ["f-0", "f-1", "f-2"]


def test_fault_stall(server):
    path = _history_watch(server)
    server.admin.fault("stall", after=1, seconds=1.0)
    times = [t for t, _ in watch_events(server.port, path).line_times()]
    assert len(times) == 3 and times[1] - times[0] >= 0.9 and times[2] - times[1] < 0.5


def test_fault_oversized_event(server):
    path = _history_watch(server, n=1)
    server.admin.fault("oversized", bytes=2 * 1024 * 1024)
    lines = watch_events(server.port, path).lines()
    assert len(lines) == 2 and len(lines[0]) >= 2 * 1024 * 1024 - 400
    assert json.loads(lines[0])["type"] == "BOOKMARK"
    assert json.loads(lines[1])["object"]["metadata"]["name"] == "f-0"


def test_fault_refuse_connections(server):
    join = in_thread(raw_request, server.port, f"{SVC}?watch=1&resourceVersion=0")
    server.admin.wait_for_watch("services")
    server.admin.refuse(1.0, drop_existing=True)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    assert not join().complete  # the open watch was cut
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "server did not listen again"
            time.sleep(0.1)
    assert raw_request(server.port, SVC).status == 200


# ---------------------------------------------------------------------------
# Writes, auth, admin
# ---------------------------------------------------------------------------

def test_writes_raw(server):
    p = server.port
    path = "/api/v1/namespaces/default/services"
    body = json.dumps(service("raw")).encode()
    hj = {"Content-Type": "application/json"}
    created = raw_request(p, path, "POST", hj, body)
    assert created.status == 201
    obj = created.json()
    assert obj["spec"]["clusterIP"].startswith("10.96.") and obj["spec"]["type"] == "ClusterIP"
    dup = raw_request(p, path, "POST", hj, body)
    assert dup.status == 409 and dup.json()["reason"] == "AlreadyExists"
    stale = dict(obj, metadata=dict(obj["metadata"], resourceVersion="1"))
    r = raw_request(p, path + "/raw", "PUT", hj, json.dumps(stale).encode())
    assert r.status == 409 and r.json()["reason"] == "Conflict"
    same = raw_request(p, path + "/raw", "PUT", hj, json.dumps(obj).encode())
    assert same.json()["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    mp = raw_request(p, path + "/raw", "PATCH", {"Content-Type": "application/merge-patch+json"},
                     b'{"metadata":{"labels":{"x":"y"}}}')
    assert mp.status == 200 and mp.json()["metadata"]["labels"] == {"x": "y"}
    smp = raw_request(p, path + "/raw", "PATCH",
                      {"Content-Type": "application/strategic-merge-patch+json"},
                      b'{"spec":{"ports":[{"port":443,"name":"https"}]}}')
    assert [q["port"] for q in smp.json()["spec"]["ports"]] == [80, 443]  # merged by port
    jp = raw_request(p, path + "/raw", "PATCH", {"Content-Type": "application/json-patch+json"},
                     b'[{"op":"remove","path":"/spec/ports/1"}]')
    assert [q["port"] for q in jp.json()["spec"]["ports"]] == [80]
    bad_type = raw_request(p, path + "/raw", "PATCH", {"Content-Type": "text/plain"}, b"x")
    assert bad_type.status == 415
    pre = raw_request(p, path + "/raw", "DELETE", hj,
                      b'{"preconditions":{"resourceVersion":"1"}}')
    assert pre.status == 409
    gone = raw_request(p, path + "/raw", "DELETE")
    assert gone.status == 200 and gone.json()["kind"] == "Service"
    nf = raw_request(p, path + "/raw")
    assert nf.status == 404 and nf.json()["message"] == 'services "raw" not found'
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
          "metadata": {"name": "kip.1", "namespace": "default"}, "reason": "Synced",
          "note": "rules synced", "type": "Normal", "eventTime": "2026-11-22T10:00:00.000000Z",
          "reportingController": "kube-iptables-proxy", "reportingInstance": "node-a",
          "action": "Sync"}
    evp = "/apis/events.k8s.io/v1/namespaces/default/events"
    assert raw_request(p, evp, "POST", hj, json.dumps(ev).encode()).status == 201
    assert raw_request(p, evp + "/kip.1", "PATCH", {"Content-Type": "application/merge-patch+json"},
                       b'{"series":{"count":2,"lastObservedTime":"2026-11-22T10:01:00.000000Z"}}'
                       ).status == 200
    assert names(raw_request(p, evp).json()["items"]) == ["kip.1"]


def test_service_update_keeps_allocations_consistent(server):
    """Updates keep the allocated values the new object omits (patchAllocatedValues), but
    never leave clusterIPs disagreeing with a changed clusterIP (normalizeClusterIPs) or a
    healthCheckNodePort on a Service that no longer needs one."""
    adm = server.admin

    def svc(spec):
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "moving", "namespace": "default"},
                "spec": {"ports": [{"name": "p", "port": 80}], **spec}}

    lb = adm.apply(svc({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                        "clusterIP": "10.96.7.7"}))["spec"]
    assert lb["clusterIPs"] == ["10.96.7.7"] and lb["healthCheckNodePort"]
    assert lb["ports"][0]["nodePort"]
    # the same LoadBalancer without the allocated fields: all of them are kept
    again = adm.apply(svc({"type": "LoadBalancer", "externalTrafficPolicy": "Local"}))["spec"]
    assert again["clusterIP"] == "10.96.7.7" and again["clusterIPs"] == ["10.96.7.7"]
    assert again["healthCheckNodePort"] == lb["healthCheckNodePort"]
    assert again["ports"][0]["nodePort"] == lb["ports"][0]["nodePort"]
    # now a ClusterIP Service on another address: clusterIPs follow, the HC port is released
    cip = adm.apply(svc({"clusterIP": "10.96.8.8"}))["spec"]
    assert cip["clusterIP"] == "10.96.8.8" and cip["clusterIPs"] == ["10.96.8.8"], cip
    assert cip["ipFamilies"] == ["IPv4"] and "healthCheckNodePort" not in cip, cip
    # a dual-stack Service with explicit clusterIPs keeps them and derives its families
    ds = adm.apply(svc({"clusterIP": "10.96.9.9", "clusterIPs": ["10.96.9.9", "fd00::9"],
                        "ipFamilyPolicy": "PreferDualStack"}))["spec"]
    assert ds["clusterIPs"] == ["10.96.9.9", "fd00::9"] and ds["ipFamilies"] == ["IPv4", "IPv6"]


def test_token_auth_rotation_and_request_log(start_server, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("first-token\n")
    s = start_server("--token-file", tokens)
    r = raw_request(s.port, SVC)
    assert r.status == 401 and r.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    assert raw_request(s.port, SVC, headers={"Authorization": "Bearer nope"}).status == 401
    assert raw_request(s.port, SVC, headers={"Authorization": "Bearer first-token"}).status == 200
    assert raw_request(s.port, "/version").status == 200  # public without credentials
    tokens.write_text("second-token\n")
    assert raw_request(s.port, SVC, headers={"Authorization": "Bearer first-token"}).status == 401
    assert raw_request(s.port, SVC, headers={"Authorization": "Bearer second-token"}).status == 200
    log = s.admin.requests()
    assert [(q["status"], q["headers"].get("Authorization")) for q in log if q["path"] == SVC] == [
        (401, None), (401, "Bearer nope"), (200, "Bearer first-token"),
        (401, "Bearer first-token"), (200, "Bearer second-token")]
    assert log[0]["headers"]["User-Agent"] == "raw-test/1.0"
    assert log[0]["headers"]["Accept"] == "application/json"
    s.admin.requests(clear=True)
    assert s.admin.requests() == []


def test_admin_state_and_cli(server, tmp_path):
    f = tmp_path / "svc.yaml"
    f.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: from-cli\n"
                 "  namespace: cli\nspec:\n  ports:\n  - port: 53\n    protocol: UDP\n")
    cli = [PYTHON, str(TESTDATA.parent / "admin.py"), "--server", server.url]
    run = lambda *a: subprocess.run(cli + list(a), capture_output=True, text=True, timeout=30)
    assert run("apply", str(f)).returncode == 0
    state = server.admin.objects("Service")
    assert state["cli/from-cli"]["spec"]["ports"][0]["targetPort"] == 53
    assert state["cli/from-cli"]["metadata"]["resourceVersion"] == \
        server.admin.state()["metadata"]["resourceVersion"]
    out = run("fail", "503", "--verb", "list", "--count", "2")
    assert out.returncode == 0 and json.loads(out.stdout)["count"] == 2
    assert len(json.loads(run("faults").stdout)) == 1
    assert run("delete", "-n", "cli", "from-cli").returncode == 0
    assert run("delete", "-n", "cli", "from-cli").returncode == 1  # 404 -> exit 1
    assert run("reset").returncode == 0
    assert server.admin.state()["items"] == [] and server.admin.faults() == []
    # a dump loads back as a fixture
    server.admin.load(path=TESTDATA / "service-list.json")
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps(server.admin.state()))
    rv = server.admin.state()["metadata"]["resourceVersion"]
    assert run("load", str(dump)).returncode == 0
    assert server.admin.state()["metadata"]["resourceVersion"] == rv  # nothing changed


def test_large_fixture_lists_completely(start_server, tmp_path):
    n = 20000
    items = []
    for i in range(n):
        ns, name = f"ns-{i % 50}", f"svc-{i}"
        ip = f"10.{96 + i // 65536}.{i // 256 % 256}.{i % 256}"
        items.append({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
                      "spec": {"clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP",
                               "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                          "protocol": "TCP"}]}})
        items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": f"{name}-abcde", "namespace": ns,
                                   "labels": {"kubernetes.io/service-name": name}},
                      "addressType": "IPv4",
                      "endpoints": [{"addresses": [f"10.244.{i % 250}.{j}"],
                                     "conditions": {"ready": True}, "nodeName": f"node-{j}"}
                                    for j in range(10)],
                      "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]})
    fixture = tmp_path / "big.json"
    fixture.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    s = start_server("--fixture", fixture)
    for path, kind in ((SVC, "ServiceList"), (EPS, "EndpointSliceList")):
        full = raw_request(s.port, path, timeout=60).json()
        assert full["kind"] == kind and len(full["items"]) == n
        seen, token, rvs = set(), "", set()
        while True:
            page = raw_request(s.port, f"{path}?limit=5000" + (f"&continue={token}" if token
                                                                else ""), timeout=60).json()
            seen.update((o["metadata"]["namespace"], o["metadata"]["name"]) for o in page["items"])
            rvs.add(page["metadata"]["resourceVersion"])
            token = page["metadata"].get("continue")
            if not token:
                break
        assert len(seen) == n and rvs == {full["metadata"]["resourceVersion"]}
    r = watch_events(s.port, f"{EPS}?watch=1&sendInitialEvents=true&resourceVersionMatch="
                             "NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1", timeout=60)
    lines = r.lines()
    assert all(line.startswith(b'{"type":"ADDED","object":{"kind":"EndpointSlice"')
               for line in lines[:n])
    assert json.loads(lines[n])["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}


# ---------------------------------------------------------------------------
# kubectl
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("binary", ["kubectl", "kubectl.1.27"])
def test_kubectl_get(server, tmp_path, binary):
    kc = write_kubeconfig(tmp_path / "kubeconfig", server.url)
    out = json.loads(kubectl(kc, "get", "svc", "-A", "-o", "json", binary=binary).stdout)
    assert sorted(names(out["items"])) == sorted(k.split("/")[1] for k in
                                                 server.admin.objects("Service"))
    table = kubectl(kc, "get", "endpointslices", "-A", binary=binary).stdout
    assert "kube-dns-7xq2p" in table and "frontend-x8p4t" in table
    assert kubectl(kc, "get", "svc", "-n", "shop", "cart", "-o",
                   "jsonpath={.spec.clusterIP}", binary=binary).stdout == "10.96.201.7"
    uas = {q["headers"].get("User-Agent", "") for q in server.admin.requests()}
    assert any(ua.startswith("kubectl") for ua in uas)


def test_kubectl_create_replace_apply_delete(server, tmp_path):
    kc = write_kubeconfig(tmp_path / "kubeconfig", server.url)
    manifest = tmp_path / "web.json"
    svc = service("web", labels={"app": "web"})
    manifest.write_text(json.dumps(svc))
    kubectl(kc, "create", "--validate=false", "-f", manifest)
    assert "default/web" in server.admin.objects("Service")
    svc["spec"]["ports"][0]["targetPort"] = 9090
    manifest.write_text(json.dumps(svc))
    kubectl(kc, "replace", "--validate=false", "-f", manifest)
    assert server.admin.objects("Service")["default/web"]["spec"]["ports"][0]["targetPort"] == 9090
    kubectl(kc, "apply", "--validate=false", "-f", manifest)
    svc["spec"]["ports"].append({"name": "https", "port": 443, "targetPort": 8443})
    manifest.write_text(json.dumps(svc))
    kubectl(kc, "apply", "--validate=false", "-f", manifest)
    assert [p["port"] for p in server.admin.objects("Service")["default/web"]["spec"]["ports"]] \
        == [80, 443]
    kubectl(kc, "apply", "--server-side", "--validate=false", "-f", manifest)
    methods = [(q["method"], q["headers"].get("Content-Type")) for q in server.admin.requests()]
    assert ("PATCH", "application/strategic-merge-patch+json") in methods
    assert ("PATCH", "application/apply-patch+yaml") in methods
    kubectl(kc, "delete", "svc", "web")
    assert "default/web" not in server.admin.objects("Service")
    p = kubectl(kc, "get", "svc", "web", check=False)
    assert p.returncode != 0 and "NotFound" in p.stderr


def test_kubectl_watch_sees_admin_changes(server, tmp_path):
    kc = write_kubeconfig(tmp_path / "kubeconfig", server.url)
    proc = subprocess.Popen(["/usr/bin/kubectl", "get", "svc", "-w", "-o", "json",
                             "--output-watch-events"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=kubectl_env(kc))
    try:
        stream = JsonStream(proc.stdout)
        stream.wait_for(lambda d: len(d) >= 1)  # the initial list: kubernetes
        server.admin.wait_for_watch("services")
        server.admin.apply(service("watched"))
        server.admin.apply(service("watched", port=8080))
        server.admin.delete("v1", "Service", "watched", "default")
        docs = stream.wait_for(lambda d: any(e["type"] == "DELETED" for e in d))
    finally:
        proc.kill()
        proc.wait(10)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in docs] == [
        ("ADDED", "kubernetes"), ("ADDED", "watched"), ("MODIFIED", "watched"),
        ("DELETED", "watched")]
    watch_req = [q for q in server.admin.requests() if "watch=true" in q["path"]]
    assert watch_req and "resourceVersion=" in watch_req[0]["path"]


def test_kubectl_tls_token_and_client_cert(start_server, pki, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("good-token\n")
    s = start_server("--tls-cert", pki / "server.crt", "--tls-key", pki / "server.key",
                     "--client-ca", pki / "ca.crt", "--token-file", tokens,
                     "--fixture", TESTDATA / "service-list.json",
                     scheme="https", cacert=pki / "ca.crt")
    ok = write_kubeconfig(tmp_path / "ok", s.url, token="good-token", ca=pki / "ca.crt")
    assert "kube-dns" in kubectl(ok, "get", "svc", "-A").stdout
    cert = write_kubeconfig(tmp_path / "cert", s.url, ca=pki / "ca.crt",
                            cert=pki / "client.crt", key=pki / "client.key")
    assert "cart" in kubectl(cert, "get", "svc", "-n", "shop").stdout
    wrong_ca = write_kubeconfig(tmp_path / "wrong-ca", s.url, token="good-token",
                                ca=pki / "other-ca.crt")
    p = kubectl(wrong_ca, "get", "svc", binary="kubectl.1.33", check=False)
    assert p.returncode != 0 and "certificate signed by unknown authority" in p.stderr
    bad_token = write_kubeconfig(tmp_path / "bad-token", s.url, token="bad", ca=pki / "ca.crt")
    p = kubectl(bad_token, "get", "svc", binary="kubectl.1.33", check=False)
    assert p.returncode != 0 and "Unauthorized" in p.stderr
    foreign = write_kubeconfig(tmp_path / "foreign", s.url, ca=pki / "ca.crt",
                               cert=pki / "other-client.crt", key=pki / "other-client.key")
    p = kubectl(foreign, "get", "svc", binary="kubectl.1.33", check=False)
    assert p.returncode != 0
    users = {(q["status"], q["headers"].get("Authorization")) for q in s.admin.requests()}
    assert (401, "Bearer bad") in users and (200, "Bearer good-token") in users


def test_ipv6_loopback(start_server, tmp_path):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    s = start_server("--fixture", TESTDATA / "service-list.json", bind="::1")
    kc = write_kubeconfig(tmp_path / "kubeconfig", s.url)
    assert "kube-dns" in kubectl(kc, "get", "svc", "-A", binary="kubectl.1.33").stdout


# ---------------------------------------------------------------------------
# python3-kubernetes
# ---------------------------------------------------------------------------

def py_client(server, validate=True, **conf):
    from kubernetes import client
    cfg = client.Configuration()
    cfg.host = server.url
    cfg.client_side_validation = validate
    for k, v in conf.items():
        setattr(cfg, k, v)
    return client.ApiClient(cfg)


def test_pyclient_pagination(server):
    from kubernetes import client
    for i in range(5):
        server.admin.apply(service(f"pg-{i}"))
    with py_client(server) as api:
        v1 = client.CoreV1Api(api)
        seen, token, rvs = [], None, set()
        while True:
            kw = {"limit": 4}
            if token:
                kw["_continue"] = token
            lst = v1.list_service_for_all_namespaces(**kw)
            seen += [s.metadata.name for s in lst.items]
            rvs.add(lst.metadata.resource_version)
            token = lst.metadata._continue
            if not token:
                break
        assert len(seen) == 11 == len(set(seen)) and len(rvs) == 1
        # endpoints: null is a real server shape that the generated models refuse unless
        # client-side validation is off
        with py_client(server, validate=False) as api2:
            eps = client.DiscoveryV1Api(api2).list_endpoint_slice_for_all_namespaces(limit=2)
            assert len(eps.items) == 2 and eps.metadata._continue


def test_pyclient_watch_sees_events_in_order(server):
    from kubernetes import client, watch
    with py_client(server) as api:
        v1 = client.CoreV1Api(api)
        rv = v1.list_service_for_all_namespaces().metadata.resource_version
        server.admin.apply(service("replayed"))
        w = watch.Watch()

        def collect():
            out = []
            for ev in w.stream(v1.list_service_for_all_namespaces, resource_version=rv,
                               timeout_seconds=10):
                out.append((ev["type"], ev["object"].metadata.name,
                            ev["object"].metadata.resource_version))
                if ev["type"] == "DELETED":
                    w.stop()
            return out
        join = in_thread(collect)
        server.admin.wait_for_watch("services")
        server.admin.apply(service("live", port=90))
        server.admin.apply(service("live", port=91))
        server.admin.delete("v1", "Service", "live", "default")
        events = join(20)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "replayed"), ("ADDED", "live"),
                                              ("MODIFIED", "live"), ("DELETED", "live")]
    rvs = [int(r) for _, _, r in events]
    assert rvs == sorted(rvs)


def test_pyclient_watch_410(server):
    from kubernetes import client, watch
    from kubernetes.client.rest import ApiException
    with py_client(server) as api:
        v1 = client.CoreV1Api(api)
        rv = v1.list_service_for_all_namespaces().metadata.resource_version
        server.admin.apply(service("bump"))
        server.admin.compact()
        with pytest.raises(ApiException) as exc:
            for _ in watch.Watch().stream(v1.list_service_for_all_namespaces,
                                          resource_version=rv, timeout_seconds=5):
                pass
        assert exc.value.status == 410 and "Expired" in exc.value.reason


def test_pyclient_bookmarks_and_tls(start_server, pki):
    from kubernetes import client, watch
    s = start_server("--tls-cert", pki / "server.crt", "--tls-key", pki / "server.key",
                     "--client-ca", pki / "ca.crt", "--bookmark-interval", "0.3",
                     "--fixture", TESTDATA / "service-list.json",
                     scheme="https", cacert=pki / "ca.crt")
    with py_client(s, ssl_ca_cert=str(pki / "ca.crt"), cert_file=str(pki / "client.crt"),
                   key_file=str(pki / "client.key")) as api:
        v1 = client.CoreV1Api(api)
        rv = v1.list_service_for_all_namespaces().metadata.resource_version
        types = [ev["type"] for ev in watch.Watch().stream(
            v1.list_service_for_all_namespaces, resource_version=rv,
            allow_watch_bookmarks=True, timeout_seconds=2)]
    assert types.count("BOOKMARK") >= 2 and set(types) == {"BOOKMARK"}
    log = [q for q in s.admin.requests() if "watch=True" in q["path"]]
    assert "allowWatchBookmarks=True" in log[0]["path"]


def test_no_stray_processes_or_files(tmp_path):
    """The port file is written atomically and nothing else is left in the workdir."""
    from testlib import ServerProc
    s = ServerProc(tmp_path / "s")
    try:
        assert sorted(os.listdir(tmp_path / "s")) == ["apiserver.log", "port"]
    finally:
        assert s.stop() == 0
