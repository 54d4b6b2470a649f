"""The sig-network behaviours kube-proxy replacements are usually checked on
(beyond conformance; see the kpng skip lists in shared/spec/conformance.md)."""

import json
import time

import pytest

import k8s
import netclient as nc
from cluster import EXT_IP, EXT_IP2, HEALTHZ_PORT, http_get
from e2elib import describe, expect_fail, expect_ok, pods_of, spread_bound, wait_until

HTTP = [k8s.port("http", 80, 8080)]
HTTP_EP = [("http", 8080, "TCP")]
DROP_WAIT = 1.5  # seconds a dropped SYN is given before "timed out" is believed


def simple(E, name, pods, type="ClusterIP", ports=HTTP, ep_ports=HTTP_EP, **spec):
    svc = E.service(name, ports, type=type, **spec)
    E.slice(name, [k8s.endpoint(p) for p in pods], ep_ports)
    E.barrier()
    return svc


@pytest.mark.core
def test_hairpin_pod_reaches_itself_through_its_service(E):
    pod = E.pod(E.nodes[0], "hairpin")
    svc = simple(E, "hairpin-test", [pod])
    rs = expect_ok(E.tcp(pod, svc["spec"]["clusterIP"], 80, n=5), [pod],
                   "pod -> its own service's ClusterIP (hairpin)")
    # kube-proxy's KUBE-SEP "-s <pod IP> -j KUBE-MARK-MASQ" rule masquerades the
    # hairpin: the server must see the node's address, not its own
    assert all(r.reply.client_ip != pod.ip for r in rs), \
        "hairpin traffic was not masqueraded:\n" + describe(rs)


@pytest.mark.core
def test_reject_when_service_has_no_endpoints(E):
    n1, n2 = E.nodes[:2]
    client = E.pod(n1, "client")
    ports = [k8s.port("tcp", 80, 8080), k8s.port("udp", 80, 8080, "UDP")]
    svc = E.service("no-endpoints", ports, type="NodePort")
    cip = svc["spec"]["clusterIP"]
    np = {p["protocol"]: p["nodePort"] for p in svc["spec"]["ports"]}
    E.slice("no-endpoints", [], [("tcp", 8080, "TCP"), ("udp", 8080, "UDP")])
    E.barrier()
    for what, r in [("pod -> ClusterIP tcp", E.tcp(client, cip, 80, timeout=5)),
                    ("pod -> ClusterIP udp", E.udp(client, cip, 80, timeout=5)),
                    ("external -> NodePort tcp", E.tcp(E.ext, n2.ip, np["TCP"], timeout=5)),
                    ("external -> NodePort udp", E.udp(E.ext, n2.ip, np["UDP"], timeout=5))]:
        expect_fail(r, ["refused"], what + " with no endpoints (REJECT, not a timeout)")
        assert r.elapsed < 1.0, "%s: refused only after %.2fs" % (what, r.elapsed)


@pytest.mark.core
def test_external_traffic_policy_local_preserves_client_source_ip(E):
    n1 = E.nodes[0]
    pod = E.pod(n1, "local")
    svc = simple(E, "etp-local", [pod], type="NodePort", externalTrafficPolicy="Local")
    np = svc["spec"]["ports"][0]["nodePort"]
    for src in (EXT_IP, EXT_IP2):
        rs = expect_ok(E.tcp(E.ext, n1.ip, np, n=3, src=src), [pod],
                       "external %s -> %s:%d" % (src, n1.ip, np))
        assert all(r.reply.client_ip == src for r in rs), \
            "eTP=Local must preserve the client address %s:\n%s" % (src, describe(rs))
    # contrast: eTP=Cluster masquerades to the node
    E.service("etp-local", HTTP, type="NodePort", externalTrafficPolicy="Cluster")
    E.barrier()
    n2 = E.nodes[1]
    rs = expect_ok(E.tcp(E.ext, n2.ip, np, n=3), [pod], "eTP=Cluster via %s" % n2.name)
    assert all(r.reply.client_ip != EXT_IP for r in rs), \
        "eTP=Cluster through another node should be masqueraded:\n" + describe(rs)


@pytest.mark.core
def test_external_traffic_policy_local_drops_on_nodes_without_local_endpoints(E):
    n1, n2, n3 = E.nodes[:3]
    pod = E.pod(n1, "local")
    svc = simple(E, "etp-local-drop", [pod], type="NodePort", externalTrafficPolicy="Local")
    np = svc["spec"]["ports"][0]["nodePort"]
    expect_ok(E.tcp(E.ext, n1.ip, np), [pod], "node with the local endpoint")
    for n in (n2, n3):
        r = E.tcp(E.ext, n.ip, np, timeout=DROP_WAIT)
        expect_fail(r, ["timeout"], "external -> %s:%d (no local endpoint: DROP)" % (n.ip, np))
    # pods are not external: their traffic to a NodePort goes to any endpoint
    client = E.pod(n2, "client")
    expect_ok(E.tcp(client, n2.ip, np), [pod], "pod on %s -> its node's NodePort" % n2.name)


def _hc(E, node, port):
    return E.ext.call(http_get, "http://%s:%d/" % (node.ip, port))


def _wait_hc(E, node, port, code, local, what):
    last = {}

    def check():
        last["v"] = _hc(E, node, port)
        st, body = last["v"]
        if st != code:
            return False
        try:
            doc = json.loads(body)
        except ValueError:
            return False
        return doc.get("localEndpoints") == local and doc
    try:
        return wait_until(check, 10, what, interval=0.1)
    except Exception:
        logged = [line for line in node.daemon.log().splitlines() if "ealthcheck" in line]
        raise AssertionError("%s: health check %s:%d answered %r, want %d with "
                             "localEndpoints=%d. The daemon's last health check log lines:\n%s"
                             % (what, node.ip, port, last.get("v"), code, local,
                                "\n".join(logged[-6:]))) from None


@pytest.mark.core
def test_health_check_node_port_answers_per_node(E):
    n1, n2, n3 = E.nodes[:3]
    a, b, c = E.pod(n1, "a"), E.pod(n1, "b"), E.pod(n2, "c")
    svc = E.service("hc", HTTP, type="LoadBalancer", externalTrafficPolicy="Local")
    hc = svc["spec"].get("healthCheckNodePort")
    assert hc, "the API server allocated no healthCheckNodePort: %s" % svc["spec"]
    E.slice("hc", [k8s.endpoint(p) for p in (a, b, c)], HTTP_EP)
    E.barrier()
    doc = _wait_hc(E, n1, hc, 200, 2, "node-1 has 2 local endpoints")
    assert doc["service"] == {"namespace": E.ns, "name": "hc"}, doc
    _wait_hc(E, n2, hc, 200, 1, "node-2 has 1 local endpoint")
    _wait_hc(E, n3, hc, 503, 0, "node-3 has no local endpoint")
    # node-2's only endpoint starts terminating: not counted any more
    E.slice("hc", [k8s.endpoint(a), k8s.endpoint(b),
                   k8s.endpoint(c, ready=False, serving=True, terminating=True)], HTTP_EP)
    E.barrier()
    _wait_hc(E, n2, hc, 503, 0, "node-2's endpoint is terminating")
    _wait_hc(E, n1, hc, 200, 2, "node-1 unchanged")


def test_internal_traffic_policy_local(E):
    n1, n2, n3 = E.nodes[:3]
    s1, s2 = E.pod(n1, "s1"), E.pod(n2, "s2")
    c1, c3 = E.pod(n1, "c1"), E.pod(n3, "c3")
    svc = simple(E, "itp-local", [s1, s2], internalTrafficPolicy="Local")
    cip = svc["spec"]["clusterIP"]
    expect_ok(E.tcp(c1, cip, 80, n=20), [s1], "client on node-1 (only its local endpoint)")
    r = E.tcp(c3, cip, 80, timeout=DROP_WAIT)
    expect_fail(r, ["timeout"], "client on node-3, which has no local endpoint (DROP)")


def test_load_balancer_source_ranges(E):
    n1, n2 = E.nodes[:2]
    pod = E.pod(n2, "backend")
    lb_ip = "203.0.113.10"
    svc = simple(E, "lb-ranges", [pod], type="LoadBalancer",
                 loadBalancerSourceRanges=["%s/32" % EXT_IP], status_lb_ips=[lb_ip])
    # the "cloud LB" delivers the LB IP to node-1, where it is a local address
    E.node_local_route(n1, lb_ip)
    E.route_ext(lb_ip + "/32", n1)
    assert svc["status"]["loadBalancer"]["ingress"][0]["ip"] == lb_ip, svc["status"]
    expect_ok(E.tcp(E.ext, lb_ip, 80, n=3, src=EXT_IP), [pod],
              "allowed client %s -> LB %s" % (EXT_IP, lb_ip))
    r = E.tcp(E.ext, lb_ip, 80, src=EXT_IP2, timeout=DROP_WAIT)
    expect_fail(r, ["timeout"], "blocked client %s -> LB %s (KUBE-PROXY-FIREWALL DROP)"
                % (EXT_IP2, lb_ip))
    # without source ranges the same client gets in: the drop was the firewall's
    E.service("lb-ranges", HTTP, type="LoadBalancer", status_lb_ips=[lb_ip])
    E.barrier()
    expect_ok(E.tcp(E.ext, lb_ip, 80, src=EXT_IP2), [pod],
              "%s after loadBalancerSourceRanges was removed" % EXT_IP2)


def test_external_ips(E):
    n1, n2, n3 = E.nodes[:3]
    pod = E.pod(n1, "backend")
    client = E.pod(n3, "client")
    eip = "198.51.100.10"
    simple(E, "external-ip", [pod], externalIPs=[eip])
    E.route_ext(eip + "/32", n2)  # not assigned to any node: just routed to node-2
    expect_ok(E.tcp(E.ext, eip, 80, n=3), [pod], "external client -> externalIP via node-2")
    expect_ok(E.tcp(client, eip, 80, n=3), [pod], "pod on node-3 -> externalIP")


def test_session_affinity_timeout(E):
    """ClientIP affinity with timeoutSeconds=2. 21 client addresses (one pod
    with 20 extra addresses) each make 3 quick requests (must stick), wait past
    the timeout, and do it again. With 3 endpoints, if affinity expires each
    address picks its old pod again with probability 1/3, so "no address
    moved" happens by chance with probability (1/3)^21 = 1e-10."""
    timeout_s = 2
    pods = [E.pod(n, "pod%d" % i) for i, n in enumerate(E.nodes[:3], 1)]
    client = E.pod(E.nodes[0], "client", extra_ips=20)
    svc = simple(E, "affinity-timeout", pods, sessionAffinity="ClientIP",
                 sessionAffinityConfig={"clientIP": {"timeoutSeconds": timeout_s}})
    cip = svc["spec"]["clusterIP"]
    sources = [client.ip] + client.extra_ips

    def round_():
        out = {}
        for src in sources:
            rs = [nc.tcp(cip, 80, src=src) for _ in range(3)]
            out[src] = (rs, time.monotonic())
        return out

    first = client.call(round_)
    for src, (rs, _) in first.items():
        expect_ok(rs, pods, "round 1 from %s" % src)
        assert len(pods_of(rs)) == 1, "no affinity within the timeout from %s:\n%s" % (
            src, describe(rs))
    # wait out the affinity timeout (a time-based semantic: nothing to poll)
    last = max(t for _, t in first.values())
    time.sleep(max(0.0, last + timeout_s + 1.0 - time.monotonic()))
    second = client.call(round_)
    moved = 0
    for src, (rs, _) in second.items():
        expect_ok(rs, pods, "round 2 from %s" % src)
        assert len(pods_of(rs)) == 1, "no affinity within the timeout from %s:\n%s" % (
            src, describe(rs))
        moved += first[src][0][0].pod != rs[0].pod
    assert moved > 0, ("affinity did not expire: all %d client addresses hit the same pod "
                       "%ss after their last request (timeoutSeconds=%d)"
                       % (len(sources), timeout_s + 1, timeout_s))


@pytest.mark.core
def test_terminating_serving_endpoints_receive_traffic(E):
    n1, n2, n3 = E.nodes[:3]
    old, new = E.pod(n1, "old"), E.pod(n2, "new")
    client = E.pod(n3, "client")
    svc = simple(E, "terminating", [old], type="NodePort", externalTrafficPolicy="Local")
    cip, np = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    expect_ok(E.tcp(client, cip, 80, n=5), [old], "before the rollout")
    # rollout: the old pod is terminating but still serving; the new one is not ready
    E.slice("terminating", [k8s.endpoint(old, ready=False, serving=True, terminating=True),
                            k8s.endpoint(new, ready=False, serving=False)], HTTP_EP)
    E.barrier()
    expect_ok(E.tcp(client, cip, 80, n=10), [old],
              "ClusterIP with only a terminating-but-serving endpoint")
    expect_ok(E.tcp(E.ext, n1.ip, np, n=5), [old],
              "eTP=Local NodePort on the node of the terminating-but-serving endpoint")
    # the new pod becomes ready: it takes all new traffic
    E.slice("terminating", [k8s.endpoint(old, ready=False, serving=True, terminating=True),
                            k8s.endpoint(new)], HTTP_EP)
    E.barrier()
    expect_ok(E.tcp(client, cip, 80, n=10), [new], "once a ready endpoint exists")


@pytest.mark.core
def test_udp_flow_to_deleted_pod_moves_to_live_pod(E):
    """A client keeps one UDP 5-tuple (fixed source port) to a ClusterIP. The
    pod behind it is deleted and another serves: the daemon must delete the
    stale conntrack entry, or the flow keeps going to the dead pod."""
    n1, n2, n3 = E.nodes[:3]
    a = E.pod(n1, "a")
    client = E.pod(n2, "client")
    ports = [k8s.port("udp", 80, 8080, "UDP")]
    svc = simple(E, "udp-cycle", [a], ports=ports, ep_ports=[("udp", 8080, "UDP")])
    cip = svc["spec"]["clusterIP"]

    def open_sock():
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 40000))
        s.connect((cip, 80))
        return s
    sock = client.call(open_sock)
    try:
        def answered_by(name, timeout):
            seen = []

            def once():
                r = nc.udp(cip, 80, sock=sock, timeout=0.3)
                seen.append(r)
                return r.ok and r.pod == name
            try:
                wait_until(once, timeout, "the UDP flow to be answered by " + name,
                           interval=0.1)
            except Exception:
                return False, seen
            return True, seen

        ok, seen = answered_by(a.name, 10)
        assert ok, "the flow never reached pod a:\n" + describe(seen[-5:])
        b = E.pod(n3, "b")
        E.slice("udp-cycle", [k8s.endpoint(a), k8s.endpoint(b)], [("udp", 8080, "UDP")])
        E.barrier()
        # the pinned flow stays on a (its conntrack entry is still valid)
        r = nc.udp(cip, 80, sock=sock, timeout=1.0)
        assert r.ok and r.pod == a.name, "established UDP flow moved off a live pod: %r" % r
        # delete pod a
        E.slice("udp-cycle", [k8s.endpoint(b)], [("udp", 8080, "UDP")])
        E.barrier()
        E.delete_pod(a)
        ok, seen = answered_by(b.name, 10)
        assert ok, ("the UDP flow 10.244.x:40000 -> %s:80 did not move to pod b within 10s "
                    "of pod a's deletion (stale conntrack entry?). Last tries:\n%s\n"
                    "conntrack on %s:\n%s" % (cip, describe(seen[-5:]), n2.name,
                                             n2.conntrack("-L", "-p", "udp", "--orig-dst",
                                                          cip)))
    finally:
        sock.close()


def test_service_proxy_name_label_makes_service_ignored(E):
    n1, n2 = E.nodes[:2]
    pod, client = E.pod(n1, "backend"), E.pod(n2, "client")
    label = {"service.kubernetes.io/service-proxy-name": "some-other-proxy"}
    svc = E.service("other-proxy", HTTP, labels=label)
    cip = svc["spec"]["clusterIP"]
    # the EndpointSlice controller copies the Service's labels to its slices
    E.slice("other-proxy", [k8s.endpoint(pod)], HTTP_EP, labels=label)
    E.barrier()
    lines = E.grep_rules("%s/other-proxy" % E.ns) + E.grep_rules(cip + "/32")
    assert not lines, "a service for another proxy got rules:\n" + "\n".join(lines)
    r = E.tcp(client, cip, 80, timeout=1.0)
    assert not r.ok, "a service for another proxy answered: %r" % r
    # drop the label: now it is ours
    E.service("other-proxy", HTTP)
    E.slice("other-proxy", [k8s.endpoint(pod)], HTTP_EP)
    E.barrier()
    expect_ok(E.tcp(client, cip, 80, n=3), [pod], "after the label was removed")


def test_load_spread_over_three_pods(E):
    n = 900
    lo, hi, p = spread_bound(n, 3)
    pods = [E.pod(node, "pod%d" % i) for i, node in enumerate(E.nodes[:3], 1)]
    client = E.pod(E.nodes[0], "client")
    svc = simple(E, "spread", pods)
    rs = expect_ok(E.tcp(client, svc["spec"]["clusterIP"], 80, n=n, timeout=5), pods,
                   "%d requests" % n)
    counts = pods_of(rs)
    bad = {k: v for k, v in counts.items() if not lo <= v <= hi}
    assert len(counts) == 3 and not bad, (
        "load spread over 3 pods: counts %s, each must be in [%d, %d] (n=%d; a fair 1/3 "
        "split leaves this interval with probability %.1e)" % (dict(counts), lo, hi, n, p))


def test_kube_proxy_urls(E):
    """healthz/livez on the node address (port 10256), metrics on 127.0.0.1:10249."""
    for node in E.nodes:
        for path in ("/healthz", "/livez"):
            st, body = E.ext.call(http_get, "http://%s:%d%s" % (node.ip, HEALTHZ_PORT, path))
            assert st == 200, "%s %s: %s %s" % (node.name, path, st, body)
            doc = json.loads(body)
            assert doc.get("healthy") is True, doc
        st, body = node.daemon.metrics()
        assert st == 200 and "kubeproxy_sync_proxy_rules_last_timestamp_seconds" in body, \
            "%s /metrics: %s %s" % (node.name, st, body[:300])
        st, body = node.daemon.metrics("/proxyMode")
        assert st == 200 and body.strip() == "iptables", (st, body)
