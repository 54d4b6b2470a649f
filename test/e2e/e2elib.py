"""Helpers shared by the node-e2e tests: the per-test environment (objects,
pods, clients, cleanup), continuous load clients, assertions with evidence,
and the statistics behind the probabilistic checks."""

import collections
import json
import math
import os
import re
import threading
import time
from fractions import Fraction

import k8s
import netclient as nc
from cluster import wait_until  # noqa: F401  (re-exported for tests)


# ---------------------------------------------------------------------------
# statistics

def spread_bound(n, k, p_fail=Fraction(1, 10 ** 9)):
    """The narrowest interval [lo, hi] symmetric around n/k such that, if each
    of n requests picks one of k endpoints uniformly and independently, the
    chance that ANY endpoint's count falls outside it is below p_fail (union
    bound: k times the exact two-sided binomial tail of Bin(n, 1/k)).
    Exact integer arithmetic: P(X = i) = C(n, i) (k-1)^(n-i) / k^n.
    Returns (lo, hi, that probability as a float)."""
    w = [math.comb(n, i) * (k - 1) ** (n - i) for i in range(n + 1)]
    total = k ** n
    mean = Fraction(n, k)
    for d in range(0, n + 1):
        lo = max(0, math.ceil(mean - d))
        hi = min(n, math.floor(mean + d))
        tail = sum(w[:lo]) + sum(w[hi + 1:])
        if Fraction(k * tail, total) < p_fail:
            return lo, hi, float(Fraction(k * tail, total))
    return 0, n, 0.0


# ---------------------------------------------------------------------------
# assertions

def describe(results, limit=12):
    rs = results if isinstance(results, list) else [results]
    shown = "\n  ".join(repr(r) for r in rs[:limit])
    more = "" if len(rs) <= limit else "\n  ... %d more" % (len(rs) - limit)
    return "  " + shown + more


def pods_of(results):
    return collections.Counter(r.pod for r in results if r.ok)


def expect_ok(results, pods=None, what="requests"):
    """Every result answered, and (when given) only by pods in @pods."""
    rs = results if isinstance(results, list) else [results]
    bad = [r for r in rs if not r.ok]
    assert not bad, "%s: %d of %d failed:\n%s" % (what, len(bad), len(rs), describe(bad))
    if pods is not None:
        names = {p if isinstance(p, str) else p.name for p in pods}
        wrong = [r for r in rs if r.pod not in names]
        assert not wrong, "%s: answered by pods outside %s:\n%s" % (
            what, sorted(names), describe(wrong))
    return rs


def expect_fail(result, kinds, what):
    """The request failed, in one of @kinds (e.g. refused, not timeout)."""
    assert not result.ok, "%s: expected it to fail (%s) but it was answered: %r" % (
        what, "/".join(kinds), result)
    assert result.kind in kinds, "%s: expected %s, got %r" % (what, "/".join(kinds), result)


# ---------------------------------------------------------------------------
# continuous clients

class LoadClient:
    """Requests in a loop from inside a namespace (a new TCP connection each,
    or a datagram), until stop() or max_seconds; every result is kept with its
    start and end times (time.monotonic())."""

    def __init__(self, ns, ip, port, proto="tcp", interval=0.005, timeout=2.0,
                 max_seconds=180, label=None):
        self.ip, self.port, self.proto = ip, port, proto
        self.interval, self.timeout, self.max_seconds = interval, timeout, max_seconds
        self.label = label or "%s %s:%d from %s" % (proto, ip, port, ns.name)
        self.records = []
        self.stopped = threading.Event()
        self.task = ns.spawn(self._loop)

    def _loop(self):
        fn = nc.tcp if self.proto == "tcp" else nc.udp
        end = time.monotonic() + self.max_seconds
        while not self.stopped.is_set() and time.monotonic() < end:
            t0 = time.monotonic()
            r = fn(self.ip, self.port, payload="load", timeout=self.timeout)
            self.records.append((t0, time.monotonic(), r))
            self.stopped.wait(self.interval)

    def count_started_after(self, t):
        return sum(1 for t0, _, _ in list(self.records) if t0 >= t)

    def wait_progress(self, t=None, n=5, timeout=30):
        """Wait until @n requests that started after @t (default: now) have
        completed; so every request in flight at @t is finished too."""
        t = time.monotonic() if t is None else t
        wait_until(lambda: self.count_started_after(t) >= n or self.task.done(), timeout,
                   "%d requests of %s after t=%.3f" % (n, self.label, t))
        if self.task.done():
            self.task.result(timeout=1)  # re-raise its error, if any
            raise AssertionError("load client %s stopped early" % self.label)

    def stop(self):
        self.stopped.set()
        self.task.result(timeout=self.timeout + 10)
        return self.records

    def failures(self):
        return [(t0, r) for t0, _, r in self.records if not r.ok]

    def summary(self, t_ref=0.0, events=()):
        f = self.failures()
        lines = ["%s: %d requests, %d failed, answered by %s"
                 % (self.label, len(self.records), len(f),
                    dict(pods_of([r for _, _, r in self.records])))]
        for t0, r in f[:10]:
            lines.append("  t=%+.3fs %r" % (t0 - t_ref, r))
        for t, what in events:
            lines.append("  event t=%+.3fs %s" % (t - t_ref, what))
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# the per-test environment

def ns_of(src):
    return getattr(src, "ns", src)


def parse_counters(save_text):
    """iptables-save -c output -> {(table, rule text): (packets, bytes)} for
    every rule, plus a list of (table, rule) to see duplicates."""
    table = None
    out, seq = {}, []
    for line in save_text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            continue
        m = re.match(r"^\[(\d+):(\d+)\] (-A .*)$", line)
        if m:
            key = (table, m.group(3))
            seq.append(key)
            out[key] = (int(m.group(1)), int(m.group(2)))
    return out, seq


def kube_rules(save_text):
    """The rules of KUBE-* chains and the jumps to them, canaries excluded, as a
    sorted list of lines (for before/after comparisons)."""
    table, out = None, []
    for line in save_text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A ") and ("KUBE-" in line) and "CANARY" not in line:
            out.append("%s %s" % (table, line))
    return sorted(out)


class Env:
    """What one test creates: a Kubernetes namespace for its objects, pods with
    short unique names, and helpers; cleanup() removes all of it."""

    tags_used = set()

    def __init__(self, cluster, test_name, artifacts):
        self.c = cluster
        base = re.sub(r"^test_", "", test_name)
        base = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")
        self.ns = base[:50].strip("-")
        tag = "".join(w[0] for w in base.split("-"))[:6]
        self.tag, n = tag, 1
        while self.tag in Env.tags_used:  # pod names stay unique in a session
            n += 1
            self.tag = "%s%d" % (tag, n)
        Env.tags_used.add(self.tag)
        self.artifacts = os.path.join(artifacts, base)
        self.objs = []
        self.pods = []
        self.ext_routes = []
        self.node_cmds_undo = []
        self.loads = []
        self.t0 = time.monotonic()

    # -- cluster pieces --

    @property
    def nodes(self):
        """The nodes whose daemon was started (a daemon that died since then
        makes the next barrier fail, loudly)."""
        return [n for n in self.c.nodes if n.daemon and n.daemon.proc is not None]

    @property
    def ext(self):
        return self.c.ext

    def pod(self, node, suffix, **kw):
        p = self.c.add_pod(node, "%s-%s" % (self.tag, suffix), **kw)
        self.pods.append(p)
        return p

    def delete_pod(self, pod):
        self.c.delete_pod(pod)
        if pod in self.pods:
            self.pods.remove(pod)

    def route_ext(self, dst, node):
        """Route @dst from the external client to @node (as a cloud LB or a
        router would)."""
        self.c.ext.ip("route", "replace", dst, "via", node.ip)
        self.ext_routes.append(dst)

    def node_local_route(self, node, ip):
        """Make @ip local on @node (the cloud LB model of GCE: the LB IP is a
        local route on the node)."""
        node.ns.ip("route", "add", "local", ip + "/32", "dev", "eth0", "table", "local")
        self.node_cmds_undo.append((node, ["route", "del", "local", ip + "/32", "dev", "eth0",
                                           "table", "local"]))

    # -- objects --

    def apply(self, obj):
        out = self.c.apply(obj)
        key = (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
        if key not in [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in self.objs]:
            self.objs.append(obj)
        return out

    def service(self, name, ports, type="ClusterIP", labels=None, **spec):
        self.apply(k8s.service(name, self.ns, ports, type=type, labels=labels, **spec))
        return self.c.get("Service", self.ns, name)

    def slice(self, service, endpoints, ports, name=None, labels=None):
        return self.apply(k8s.endpoint_slice(service, self.ns, endpoints, ports, name=name,
                                             labels=labels))

    def delete(self, obj):
        self.c.delete(obj)
        self.objs = [o for o in self.objs if o is not obj and not (
            o["kind"] == obj["kind"] and o["metadata"]["name"] == obj["metadata"]["name"])]

    def barrier(self, nodes=None):
        self.c.barrier(nodes)
        return time.monotonic()

    # -- clients --

    def tcp(self, frm, ip, port, n=None, **kw):
        if n is None:
            return ns_of(frm).call(nc.tcp, ip, port, **kw)
        return ns_of(frm).call(nc.many, nc.tcp, n, ip, port, **kw)

    def udp(self, frm, ip, port, n=None, **kw):
        if n is None:
            return ns_of(frm).call(nc.udp, ip, port, **kw)
        return ns_of(frm).call(nc.many, nc.udp, n, ip, port, **kw)

    def load(self, src, ip, port, **kw):
        lc = LoadClient(ns_of(src), ip, port, **kw)
        self.loads.append(lc)
        return lc

    # -- evidence --

    def grep_rules(self, needle, nodes=None):
        """Lines of every node's iptables-save that contain @needle."""
        out = []
        for n in nodes or self.nodes:
            out += ["%s: %s" % (n.name, line) for line in n.save().splitlines()
                    if needle in line]
        return out

    def dump(self, why=""):
        """Write each node's iptables-save -c, conntrack table and daemon log,
        and the API objects, under the artifacts directory."""
        os.makedirs(self.artifacts, exist_ok=True)
        for n in self.c.nodes:
            try:
                with open(os.path.join(self.artifacts, n.name + ".iptables"), "w") as f:
                    f.write(n.save(counters=True))
                with open(os.path.join(self.artifacts, n.name + ".conntrack"), "w") as f:
                    f.write(n.conntrack("-L"))
            except Exception as e:  # evidence is best effort
                with open(os.path.join(self.artifacts, "errors"), "a") as f:
                    f.write("%s: %s\n" % (n.name, e))
        try:
            with open(os.path.join(self.artifacts, "objects.json"), "w") as f:
                json.dump(self.c.admin("state"), f, indent=1)
        except Exception:
            pass
        with open(os.path.join(self.artifacts, "README"), "w") as f:
            f.write("test failed: %s\ndaemon logs: ../*.daemon.log\n" % why)
        return self.artifacts

    # -- cleanup --

    def cleanup(self):
        for lc in self.loads:
            lc.stopped.set()
        for lc in self.loads:
            try:
                lc.stop()
            except Exception:
                pass
        for o in reversed(self.objs):
            try:
                self.c.delete(o)
            except Exception:
                pass
        self.objs = []
        for p in list(self.pods):
            self.c.delete_pod(p)
        self.pods = []
        for dst in self.ext_routes:
            self.c.ext.ip("route", "del", dst, check=False)
        for node, args in self.node_cmds_undo:
            node.ns.ip(*args, check=False)
