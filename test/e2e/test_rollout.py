"""Rollouts without loss: clients send requests continuously (a new TCP
connection each, from a pod to the ClusterIP and from the external client to
a NodePort) while the pods behind the service are replaced one by one, and
while the daemons themselves are restarted. Not one request may fail.

A rollout step is what the Deployment controller, the EndpointSlice
controller and the kubelet do, with kube-proxy's programming in between (the
pod's grace period, in a real cluster): the new pod becomes ready, the old one
terminating (still serving), then it is removed from the slice, and only once
every node has programmed that, and every request in flight has finished, is
the pod killed."""

import time

import pytest

import k8s
from e2elib import expect_ok, kube_rules, pods_of

HTTP = [k8s.port("http", 80, 8080)]
HTTP_EP = [("http", 8080, "TCP")]


class Rollout:
    def __init__(self, E, name, pods):
        self.E, self.name, self.live = E, name, list(pods)
        self.events = []
        self.clients = []
        self.t0 = time.monotonic()

    def publish(self, extra=()):
        self.E.slice(self.name, [k8s.endpoint(p) for p in self.live] + list(extra), HTTP_EP)

    def settle(self, what, nodes=None):
        """Barrier (every daemon programmed it), then let every client finish a
        few requests started after that, so none is still in flight from before."""
        t = self.E.barrier(nodes)
        self.events.append((t, what))
        for c in self.clients:
            c.wait_progress(t, n=5)

    def replace(self, old, node, suffix):
        new = self.E.pod(node, suffix)
        self.live.append(new)
        self.publish()
        self.settle("%s ready" % new.name)
        self.live.remove(old)
        self.publish([k8s.endpoint(old, ready=False, serving=True, terminating=True)])
        self.settle("%s terminating" % old.name)
        self.publish()
        self.settle("%s removed from the slice" % old.name)
        self.E.delete_pod(old)
        self.events.append((time.monotonic(), "%s deleted" % old.name))
        return new

    def check(self, want_pods, n_after=60):
        """Zero failures; after the rollout, every live pod serves (each
        client's last @n_after requests miss one of 3 pods with probability at
        most 3*(2/3)^60 = 8e-11)."""
        t = time.monotonic()
        for c in self.clients:
            c.wait_progress(t, n=n_after)
        for c in self.clients:
            c.stop()
        report = "\n".join(c.summary(self.t0, self.events) for c in self.clients)
        for c in self.clients:
            assert not c.failures(), "requests failed during the rollout:\n" + report
        names = {p.name for p in want_pods}
        for c in self.clients:
            tail = [r for t0, _, r in c.records if t0 >= t]
            got = pods_of(tail)
            assert set(got) == names, ("%s: after the rollout, answered by %s, want exactly %s\n%s"
                                       % (c.label, dict(got), sorted(names), report))
        return report


def _setup(E, name):
    pods = [E.pod(n, "v1-%d" % n.index) for n in E.nodes[:3]]
    client = E.pod(E.nodes[0], "client")
    svc = E.service(name, HTTP, type="NodePort")
    ro = Rollout(E, name, pods)
    ro.publish()
    E.barrier()
    cip, np = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    expect_ok(E.tcp(client, cip, 80), pods, "before the rollout")
    ro.clients = [E.load(client, cip, 80, label="pod %s -> ClusterIP %s:80" % (client.name, cip)),
                  E.load(E.ext, E.nodes[1].ip, np,
                         label="external -> %s:%d (NodePort)" % (E.nodes[1].ip, np))]
    for c in ro.clients:
        c.wait_progress(n=20)
    return ro, pods


@pytest.mark.core
def test_rollout_replacing_every_pod_loses_no_request(E):
    ro, pods = _setup(E, "rollout")
    new = [ro.replace(old, old.node, "v2-%d" % old.node.index) for old in pods]
    report = ro.check(new)
    print(report)


@pytest.mark.core
def test_daemon_restart_during_traffic_loses_no_request(E):
    ro, pods = _setup(E, "restart")
    for node in E.nodes[:3]:
        before = kube_rules(node.save())
        rc = node.daemon.stop()
        ro.events.append((time.monotonic(), "%s daemon stopped (status %s)" % (node.name, rc)))
        assert rc == 0, "the daemon on %s exited %s on SIGTERM:\n%s" % (
            node.name, rc, node.daemon.tail())
        t = time.monotonic()
        for c in ro.clients:
            c.wait_progress(t, n=20)
        during = kube_rules(node.save())
        assert during == before, ("%s's rules changed while its daemon was down:\n- %s\n+ %s"
                                  % (node.name, sorted(set(before) - set(during))[:10],
                                     sorted(set(during) - set(before))[:10]))
        node.daemon.start()
        node.daemon.wait_healthy()
        ro.settle("%s daemon restarted and synced" % node.name)
    # the restarted daemons still follow changes: one more rollout step
    old = pods[0]
    new = ro.replace(old, old.node, "v2-%d" % old.node.index)
    print(ro.check(pods[1:] + [new]))
