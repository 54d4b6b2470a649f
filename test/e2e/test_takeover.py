"""Takeover: a node programmed by upstream kube-proxy is handed to the daemon.

A fresh node (node-4) joins the cluster without a daemon. It gets the rules
upstream kube-proxy would write: our --dump-rules (identical to upstream's,
checked by test/rules/upstream), loaded with iptables-restore --noflush, plus
the jump rules kube-proxy adds to the built-in chains (in the order of
shared/spec/kube-proxy-iptables.md §1.2, each with -I) and its canary chains,
and route_localnet=1 as kube-proxy sets it. Traffic flows through those rules:
a long-lived TCP connection is opened, counters are run up, and clients keep
opening connections. Then the daemon starts on node-4 ("kube-proxy replaced by
the DaemonSet") and the handover is checked from several sides, one test each
(the handover itself happens once, in the module fixture)."""

import re
import threading
import time

import pytest

import k8s
import netclient as nc
from e2elib import Env, expect_ok, parse_counters, wait_until

HTTP = [k8s.port("http", 80, 8080)]
HTTP_EP = [("http", 8080, "TCP")]

C = "--comment"
JUMPS = [  # (table, chain, args), in iptablesJumpChains order; each is inserted with -I
    ("filter", "INPUT", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", C,
                         "kubernetes externally-visible service portals",
                         "-j", "KUBE-EXTERNAL-SERVICES"]),
    ("filter", "FORWARD", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", C,
                           "kubernetes externally-visible service portals",
                           "-j", "KUBE-EXTERNAL-SERVICES"]),
    ("filter", "INPUT", ["-m", "comment", C, "kubernetes health check service ports",
                         "-j", "KUBE-NODEPORTS"]),
    ("filter", "FORWARD", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", C,
                           "kubernetes service portals", "-j", "KUBE-SERVICES"]),
    ("filter", "OUTPUT", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", C,
                          "kubernetes service portals", "-j", "KUBE-SERVICES"]),
    ("filter", "FORWARD", ["-m", "comment", C, "kubernetes forwarding rules",
                           "-j", "KUBE-FORWARD"]),
    ("filter", "INPUT", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", C,
                         "kubernetes load balancer firewall", "-j", "KUBE-PROXY-FIREWALL"]),
    ("filter", "OUTPUT", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", C,
                          "kubernetes load balancer firewall", "-j", "KUBE-PROXY-FIREWALL"]),
    ("filter", "FORWARD", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", C,
                           "kubernetes load balancer firewall", "-j", "KUBE-PROXY-FIREWALL"]),
    ("nat", "OUTPUT", ["-m", "comment", C, "kubernetes service portals", "-j", "KUBE-SERVICES"]),
    ("nat", "PREROUTING", ["-m", "comment", C, "kubernetes service portals",
                           "-j", "KUBE-SERVICES"]),
    ("nat", "POSTROUTING", ["-m", "comment", C, "kubernetes postrouting rules",
                            "-j", "KUBE-POSTROUTING"]),
    ("filter", "INPUT", ["-j", "KUBE-FIREWALL"]),
    ("filter", "OUTPUT", ["-j", "KUBE-FIREWALL"]),
]


def ipv4_section(dump):
    """The IPv4 part of --dump-rules output (it may also hold an IPv6 part)."""
    out, keep = [], True
    for line in dump.splitlines():
        if line.startswith("# IPv"):
            keep = line.startswith("# IPv4")
        if keep:
            out.append(line)
    return "\n".join(out) + "\n"


def program_like_upstream(node):
    """node-4's rules as upstream kube-proxy leaves them: it creates its nfacct
    counters at a full sync (so its rules use them), sets route_localnet, makes
    its canary chains, restores its ruleset and inserts its jump rules."""
    for counter in ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"):
        node.ns.run(["nfacct", "add", counter])
    # upstream's layout whatever the daemon's: the takeover then also switches
    # layouts under traffic when the daemon runs with --service-dispatch=tree
    dump = node.ns.run(node.daemon.argv() + ["--dump-rules", "--iptables-nfacct=true",
                                             "--service-dispatch=linear"]).stdout
    rules = ipv4_section(dump)
    assert "*nat" in rules and "KUBE-SERVICES" in rules, "unexpected --dump-rules output:\n" + dump
    node.ns.sysctl(**{"net.ipv4.conf.all.route_localnet": 1})
    for table in ("mangle", "nat", "filter"):
        node.iptables("-t", table, "-N", "KUBE-PROXY-CANARY")
    b = node.cluster.backend
    node.ns.run(["iptables-%s-restore" % b, "-w", "5", "--noflush"], input=rules)
    for table, chain, args in JUMPS:
        node.iptables("-t", table, "-I", chain, *args)
    return rules


class CounterSampler:
    """iptables-save -c of a node, over and over, in a thread: a counter that
    goes down between two samples was reset (counters never decrease), however
    much traffic came after. Bounded: at most 120 s."""

    def __init__(self, node):
        self.node = node
        self.samples = []
        self.stopped = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        end = time.monotonic() + 120
        try:
            while not self.stopped.is_set() and time.monotonic() < end:
                text = self.node.save(counters=True)
                self.samples.append((time.monotonic(), parse_counters(text)[0]))
        except Exception as e:  # reported by stop()
            self.error = e

    def wait_samples(self, n, after=0.0):
        wait_until(lambda: sum(1 for t, _ in self.samples if t >= after) >= n
                   or not self.thread.is_alive(), 30, "%d counter samples" % n)

    def stop(self):
        self.stopped.set()
        self.thread.join(60)
        if self.error:
            raise self.error
        return list(self.samples)


@pytest.fixture(scope="module")
def handover(cluster):
    E = Env(cluster, "test_takeover", cluster.artifacts)
    node = cluster.add_node(4, start_daemon=False)
    res = {"node": node, "E": E}
    try:
        s1, s4 = E.pod(cluster.node(1), "s1"), E.pod(node, "s4")
        client = E.pod(node, "client")
        svc = E.service("takeover", HTTP, type="NodePort")
        cip, np = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
        E.slice("takeover", [k8s.endpoint(s1), k8s.endpoint(s4)], HTTP_EP)
        E.barrier()  # the other nodes
        res["upstream_rules"] = program_like_upstream(node)
        expect_ok(E.tcp(client, cip, 80, n=20), [s1, s4], "through kube-proxy's rules")
        expect_ok(E.tcp(E.ext, node.ip, np, n=20), [s1, s4], "NodePort through kube-proxy's rules")

        conn = client.call(nc.Conn, cip, 80)
        res["conn"] = conn
        res["before"] = conn.exchange("before the handover")
        loads = [E.load(client, cip, 80, label="pod on node-4 -> ClusterIP %s:80" % cip),
                 E.load(E.ext, node.ip, np, label="external -> node-4 %s:%d" % (node.ip, np))]
        for lc in loads:
            lc.wait_progress(n=20)
        res["counters_before"] = node.save(counters=True)
        sampler = CounterSampler(node)
        sampler.wait_samples(2)

        t_start = time.monotonic()
        node.daemon.start()
        node.daemon.wait_healthy()
        E.barrier()  # now including node-4
        for lc in loads:
            lc.wait_progress(time.monotonic(), n=20)
        sampler.wait_samples(2, after=time.monotonic())
        res["samples"] = sampler.stop()
        res["counters_after"] = node.save(counters=True)
        res["after"] = conn.exchange("after the handover")
        for lc in loads:
            lc.stop()
        res["loads"] = loads
        res["t_start"] = t_start
        log = node.daemon.log(since_start=True)
        syncs = [line for line in log.splitlines() if "SyncProxyRules complete" in line
                 and 'ipFamily="IPv4"' in line]
        res["first_sync"] = syncs[0] if syncs else "(no sync logged)"
        yield res
    finally:
        if "conn" in res:
            res["conn"].close()
        E.cleanup()
        cluster.remove_node(node)


@pytest.mark.core
def test_takeover_keeps_established_connection(handover):
    before, after = handover["before"], handover["after"]
    assert before.ok, "the long-lived connection did not work before the handover: %r" % before
    assert after.ok, ("the TCP connection opened before the handover broke after the daemon "
                      "took over: %r (first sync: %s)" % (after, handover["first_sync"]))
    assert after.pod == before.pod and after.reply.client_port == before.reply.client_port, \
        "the long-lived connection changed server: %r -> %r" % (before, after)


@pytest.mark.core
def test_takeover_loses_no_request(handover):
    report = "\n".join(lc.summary(handover["t_start"]) for lc in handover["loads"])
    for lc in handover["loads"]:
        assert not lc.failures(), "requests failed during the handover:\n" + report


def test_takeover_does_not_duplicate_jump_rules(handover):
    _, seq = parse_counters(handover["counters_after"])
    jumps = [k for k in seq if re.match(r"-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) ",
                                        k[1]) and "-j KUBE-" in k[1]]
    dups = sorted({k for k in jumps if jumps.count(k) > 1})
    assert not dups, "jump rules duplicated by the takeover:\n" + "\n".join(
        "%s %s x%d" % (t, r, jumps.count((t, r))) for t, r in dups)
    assert len(jumps) == len(JUMPS), "expected the %d kube-proxy jump rules, found:\n%s" % (
        len(JUMPS), "\n".join("%s %s" % k for k in jumps))


@pytest.mark.core
def test_takeover_keeps_rule_counters(handover):
    """No pre-existing KUBE rule (nor jump rule) was flushed or rewritten: its
    packet counter never goes down. iptables-save -c is sampled continuously
    from before the daemon starts until after its first syncs; a counter that
    decreases between two samples was reset, whatever traffic followed."""
    samples = handover["samples"]
    t0 = handover["t_start"]
    assert len(samples) >= 4, "too few counter samples: %d" % len(samples)
    reset, gone, seen = {}, {}, set()
    # In the tree layout the daemon must rewrite nat KUBE-SERVICES (its rules
    # move to KUBE-CIP chains); everything else is still adopted as it is.
    relayout = handover["E"].c.dispatch == "tree"
    before = samples[0][1]  # what upstream left, before the daemon started
    for (ta, a), (tb, b) in zip(samples, samples[1:]):
        for key, (pk, _) in a.items():
            table, rule = key
            if key not in before:
                continue  # written by the daemon itself
            if "KUBE-" not in rule or "CANARY" in rule or "kipe2e-system/barrier" in rule:
                continue
            if relayout and table == "nat" and rule.startswith("-A KUBE-SERVICES "):
                continue
            if pk > 0:
                seen.add(key)
            if key not in b:
                gone.setdefault(key, (tb - t0, pk))
            elif b[key][0] < pk:
                reset.setdefault(key, (tb - t0, pk, b[key][0]))
    lines = ["%s [%d -> %d packets at t=%+.2fs] %s" % (k[0], v[1], v[2], v[0], k[1])
             for k, v in sorted(reset.items(), key=lambda kv: kv[1][0])]
    lines_gone = ["%s [%d packets, gone at t=%+.2fs] %s" % (k[0], v[1], v[0], k[1])
                  for k, v in sorted(gone.items(), key=lambda kv: kv[1][0])]
    assert not reset and not gone, (
        "the daemon's takeover reset the packet counters of %d and removed %d of the %d "
        "pre-existing KUBE rules that had seen traffic, i.e. it rewrote (flushed and refilled) "
        "chains that already held the right rules instead of adopting them. t is relative to "
        "the daemon's start; its first sync: %s\nreset:\n  %s\nremoved:\n  %s"
        % (len(reset), len(gone), len(seen), handover["first_sync"], "\n  ".join(lines[:30]),
           "\n  ".join(lines_gone[:10]) or "(none)"))
    # not vacuous: the service's chains, the dispatch chains and the jumps saw traffic
    chains = {re.match(r"-A (\S+)", rule).group(1) for _, rule in seen}
    wanted = ("PREROUTING", "KUBE-NODEPORTS", "KUBE-POSTROUTING") + \
        (() if relayout else ("KUBE-SERVICES",))
    for want in wanted:
        assert want in chains, "no counted rule in %s: %s" % (want, sorted(chains))
    assert any(c.startswith("KUBE-SEP-") for c in chains) and \
        any(c.startswith("KUBE-SVC-") for c in chains), sorted(chains)
