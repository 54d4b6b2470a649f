"""The `[sig-network] Services [Conformance]` tests that exercise a service
proxy (shared/spec/conformance.md), on the sandboxed cluster. Names follow the
upstream test names. Clients are pods on a node (the "exec pod" of the
upstream tests) and the external client namespace; services are reached by
ClusterIP (the sandbox has no DNS)."""

import pytest

import k8s
from cluster import EXT_IP
from e2elib import describe, expect_fail, expect_ok, pods_of

HTTP = [k8s.port("http", 80, 8080)]
HTTP_EP = [("http", 8080, "TCP")]


def all_node_addrs(E):
    return [(n.name, ip) for n in E.nodes for ip in (n.ip, n.ext_ip)]


def no_rules_for(E, needle, what):
    lines = E.grep_rules(needle)
    assert not lines, "%s: rules still mention %s:\n%s" % (what, needle, "\n".join(lines[:20]))


@pytest.mark.core
def test_serve_basic_endpoint_from_pods(E):
    n1, n2, n3 = E.nodes[:3]
    client = E.pod(n3, "client")
    svc = E.service("endpoint-test2", HTTP)
    cip = svc["spec"]["clusterIP"]
    E.barrier()
    expect_fail(E.tcp(client, cip, 80), ["refused"], "service without endpoints")

    p1 = E.pod(n1, "pod1")
    E.slice("endpoint-test2", [k8s.endpoint(p1)], HTTP_EP)
    E.barrier()
    expect_ok(E.tcp(client, cip, 80, n=10), [p1], "after pod1 was added")

    p2 = E.pod(n2, "pod2")
    E.slice("endpoint-test2", [k8s.endpoint(p1), k8s.endpoint(p2)], HTTP_EP)
    E.barrier()
    # 40 new connections over 2 endpoints miss one with probability 2 * 2^-40
    rs = expect_ok(E.tcp(client, cip, 80, n=40), [p1, p2], "after pod2 was added")
    assert set(pods_of(rs)) == {p1.name, p2.name}, \
        "both endpoints must serve, got %s" % dict(pods_of(rs))

    E.slice("endpoint-test2", [k8s.endpoint(p2)], HTTP_EP)
    E.barrier()
    expect_ok(E.tcp(client, cip, 80, n=10), [p2], "after pod1 was removed")

    E.slice("endpoint-test2", [], HTTP_EP)
    E.barrier()
    expect_fail(E.tcp(client, cip, 80), ["refused"], "after every endpoint was removed")


def test_serve_multiport_endpoints_from_pods(E):
    n1, n2, n3 = E.nodes[:3]
    client = E.pod(n3, "client")
    # each pod listens on one port only, as in the upstream test
    p1 = E.pod(n1, "pod1", tcp=(8080,), udp=())
    p2 = E.pod(n2, "pod2", tcp=(8081,), udp=())
    svc = E.service("multi-endpoint-test", [k8s.port("portname1", 80, 8080),
                                            k8s.port("portname2", 81, 8081)])
    cip = svc["spec"]["clusterIP"]
    E.slice("multi-endpoint-test", [k8s.endpoint(p1)], [("portname1", 8080, "TCP")],
            name="multi-endpoint-test-a")
    E.slice("multi-endpoint-test", [k8s.endpoint(p2)], [("portname2", 8081, "TCP")],
            name="multi-endpoint-test-b")
    E.barrier()
    for r in expect_ok(E.tcp(client, cip, 80, n=5), [p1], "port 80 (portname1)"):
        assert r.reply.port == 8080, r
    for r in expect_ok(E.tcp(client, cip, 81, n=5), [p2], "port 81 (portname2)"):
        assert r.reply.port == 8081, r


@pytest.mark.core
def test_create_functioning_nodeport_service(E):
    n1, n2, n3 = E.nodes[:3]
    pods = [E.pod(n1, "pod1"), E.pod(n2, "pod2")]
    client = E.pod(n3, "client")
    svc = E.service("nodeport-test", HTTP, type="NodePort")
    cip, np = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    E.slice("nodeport-test", [k8s.endpoint(p) for p in pods], HTTP_EP)
    E.barrier()
    expect_ok(E.tcp(client, cip, 80), pods, "pod -> ClusterIP %s:80" % cip)
    for name, ip in all_node_addrs(E):
        expect_ok(E.tcp(client, ip, np), pods, "pod -> %s %s:%d" % (name, ip, np))
        expect_ok(E.tcp(E.ext, ip, np), pods, "external client -> %s %s:%d" % (name, ip, np))


def _externalname(E, name):
    return E.service(name, [], type="ExternalName", externalName="foo.example.com")


@pytest.mark.core
def test_change_type_externalname_to_clusterip(E):
    n1, n3 = E.nodes[0], E.nodes[2]
    pod, client = E.pod(n1, "pod"), E.pod(n3, "client")
    _externalname(E, "externalname-service")
    E.slice("externalname-service", [k8s.endpoint(pod)], HTTP_EP)
    E.barrier()
    no_rules_for(E, "%s/externalname-service" % E.ns, "an ExternalName service")
    svc = E.service("externalname-service", HTTP, type="ClusterIP")
    cip = svc["spec"]["clusterIP"]
    assert cip and cip != "None", svc
    E.barrier()
    expect_ok(E.tcp(client, cip, 80, n=5), [pod], "ClusterIP after ExternalName->ClusterIP")


def test_change_type_externalname_to_nodeport(E):
    n1, n3 = E.nodes[0], E.nodes[2]
    pod, client = E.pod(n1, "pod"), E.pod(n3, "client")
    _externalname(E, "externalname-service")
    E.slice("externalname-service", [k8s.endpoint(pod)], HTTP_EP)
    E.barrier()
    no_rules_for(E, "%s/externalname-service" % E.ns, "an ExternalName service")
    svc = E.service("externalname-service", HTTP, type="NodePort")
    cip, np = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    E.barrier()
    expect_ok(E.tcp(client, cip, 80), [pod], "ClusterIP after ExternalName->NodePort")
    for n in E.nodes:
        expect_ok(E.tcp(E.ext, n.ip, np), [pod], "NodePort %s:%d" % (n.ip, np))


def test_change_type_clusterip_to_externalname(E):
    n1, n3 = E.nodes[0], E.nodes[2]
    pod, client = E.pod(n1, "pod"), E.pod(n3, "client")
    svc = E.service("clusterip-service", HTTP)
    cip = svc["spec"]["clusterIP"]
    E.slice("clusterip-service", [k8s.endpoint(pod)], HTTP_EP)
    E.barrier()
    expect_ok(E.tcp(client, cip, 80), [pod], "ClusterIP before the change")
    _externalname(E, "clusterip-service")
    E.barrier()
    no_rules_for(E, "-d %s/32" % cip, "after ClusterIP->ExternalName, the old VIP")
    no_rules_for(E, "%s/clusterip-service" % E.ns, "after ClusterIP->ExternalName")
    r = E.tcp(client, cip, 80, timeout=1.0)
    assert not r.ok, "the old ClusterIP still answers after ClusterIP->ExternalName: %r" % r


def test_change_type_nodeport_to_externalname(E):
    n1, n3 = E.nodes[0], E.nodes[2]
    pod, client = E.pod(n1, "pod"), E.pod(n3, "client")
    svc = E.service("nodeport-service", HTTP, type="NodePort")
    cip, np = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    E.slice("nodeport-service", [k8s.endpoint(pod)], HTTP_EP)
    E.barrier()
    expect_ok(E.tcp(E.ext, n3.ip, np), [pod], "NodePort before the change")
    _externalname(E, "nodeport-service")
    E.barrier()
    no_rules_for(E, "--dport %d " % np, "after NodePort->ExternalName, the NodePort")
    no_rules_for(E, "-d %s/32" % cip, "after NodePort->ExternalName, the old VIP")
    for n in E.nodes:
        r = E.tcp(E.ext, n.ip, np, timeout=1.0)
        assert not r.ok, "NodePort %s:%d still answers after NodePort->ExternalName: %r" % (
            n.ip, np, r)
    r = E.tcp(client, cip, 80, timeout=1.0)
    assert not r.ok, "the old ClusterIP still answers: %r" % r


def _affinity_service(E, name, type, affinity="ClientIP"):
    pods = [E.pod(n, "pod%d" % i) for i, n in enumerate(E.nodes[:3], 1)]
    spec = {"sessionAffinity": affinity}
    svc = E.service(name, HTTP, type=type, **spec)
    E.slice(name, [k8s.endpoint(p) for p in pods], HTTP_EP)
    E.barrier()
    return svc, pods


def _expect_sticky(rs, pods, what):
    expect_ok(rs, pods, what)
    got = pods_of(rs)
    assert len(got) == 1, "%s: %d consecutive requests must hit one pod, got %s:\n%s" % (
        what, len(rs), dict(got), describe(rs))
    return next(iter(got))


def _expect_spread(rs, pods, what):
    # with 3 endpoints and no affinity, 30 independent picks all land on one
    # endpoint with probability 3 * (1/3)^30 = 1.5e-14
    expect_ok(rs, pods, what)
    got = pods_of(rs)
    assert len(got) >= 2, "%s: without affinity %d requests all hit %s" % (
        what, len(rs), dict(got))


@pytest.mark.core
def test_session_affinity_clusterip(E):
    svc, pods = _affinity_service(E, "affinity-clusterip", "ClusterIP")
    client = E.pod(E.nodes[0], "client")
    _expect_sticky(E.tcp(client, svc["spec"]["clusterIP"], 80, n=20), pods,
                   "ClientIP affinity via ClusterIP")


def test_session_affinity_nodeport(E):
    svc, pods = _affinity_service(E, "affinity-nodeport", "NodePort")
    np = svc["spec"]["ports"][0]["nodePort"]
    _expect_sticky(E.tcp(E.ext, E.nodes[1].ip, np, n=20), pods,
                   "ClientIP affinity via NodePort from %s" % EXT_IP)


def _switch(E, name, type, target):
    svc, pods = _affinity_service(E, name, type)
    send = target(svc)
    first = _expect_sticky(send(20), pods, "affinity ClientIP")
    E.service(name, HTTP, type=type, sessionAffinity="None")
    E.barrier()
    _expect_spread(send(30), pods, "affinity switched to None")
    E.service(name, HTTP, type=type, sessionAffinity="ClientIP")
    E.barrier()
    again = _expect_sticky(send(20), pods, "affinity switched back to ClientIP")
    return first, again


def test_switch_session_affinity_clusterip(E):
    client = E.pod(E.nodes[0], "client")
    _switch(E, "affinity-clusterip-transition", "ClusterIP",
            lambda svc: lambda n: E.tcp(client, svc["spec"]["clusterIP"], 80, n=n))


def test_switch_session_affinity_nodeport(E):
    node = E.nodes[2]
    _switch(E, "affinity-nodeport-transition", "NodePort",
            lambda svc: lambda n: E.tcp(E.ext, node.ip, svc["spec"]["ports"][0]["nodePort"],
                                        n=n))


@pytest.mark.core
def test_serve_endpoints_on_same_port_and_different_protocols(E):
    n1, n2 = E.nodes[:2]
    pod = E.pod(n1, "pod", tcp=(80,), udp=(80,))
    client = E.pod(n2, "client")
    both = [k8s.port("tcp-port", 80, 80, "TCP"), k8s.port("udp-port", 80, 80, "UDP")]
    svc = E.service("multiprotocol-test", both)
    cip = svc["spec"]["clusterIP"]
    E.slice("multiprotocol-test", [k8s.endpoint(pod)],
            [("tcp-port", 80, "TCP"), ("udp-port", 80, "UDP")])
    E.barrier()
    for r in expect_ok(E.tcp(client, cip, 80, n=3), [pod], "TCP %s:80" % cip):
        assert r.reply.proto == "tcp", r
    for r in expect_ok(E.udp(client, cip, 80, n=3), [pod], "UDP %s:80" % cip):
        assert r.reply.proto == "udp", r

    # remove the UDP port: UDP must stop working, TCP must keep working
    E.service("multiprotocol-test", both[:1])
    E.slice("multiprotocol-test", [k8s.endpoint(pod)], [("tcp-port", 80, "TCP")])
    E.barrier()
    no_rules_for(E, "%s/multiprotocol-test:udp-port" % E.ns, "after removing the UDP port")
    r = E.udp(client, cip, 80, timeout=1.0)
    assert not r.ok, "UDP %s:80 still answered after the UDP port was removed: %r" % (cip, r)
    expect_ok(E.tcp(client, cip, 80, n=3), [pod], "TCP after the UDP port was removed")

    # and the other way round: only UDP left
    E.service("multiprotocol-test", both[1:])
    E.slice("multiprotocol-test", [k8s.endpoint(pod)], [("udp-port", 80, "UDP")])
    E.barrier()
    expect_ok(E.udp(client, cip, 80, n=3), [pod], "UDP after the TCP port was removed")
    r = E.tcp(client, cip, 80, timeout=1.0)
    assert not r.ok, "TCP %s:80 still answered after the TCP port was removed: %r" % (cip, r)
