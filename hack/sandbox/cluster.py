#!/usr/bin/python3
"""A Kubernetes-shaped cluster made of network namespaces, for node-e2e runs.

Layout (every name starts with a unique prefix, kipe2e-<pid>- by default, so
parallel runs never collide; every interface lives inside these namespaces,
none in the machine's own, and no namespace has a route out of the sandbox):

  <p>net      the "node network": bridge br0, and the nodes' default gateway
              192.0.2.1 on it, a dead end (ip_forward=0: whatever a node sends
              there, e.g. to a ClusterIP that has no rules, is answered with ICMP
              unreachable and goes nowhere)
  <p>cp       control plane, 192.0.2.2: the test API server on its loopback and a
              relay (relay.py) from 192.0.2.2:6443 to it
  <p>ext      an external client, 192.0.2.100 and 192.0.2.101 (a second source
              address, for loadBalancerSourceRanges)
  <p>node-N   a node, 192.0.2.(10+N) (InternalIP) and 192.0.2.(20+N) (ExternalIP),
              pod bridge cbr0 10.244.N.1/24, ip_forward=1, a route to every other
              node's pod CIDR via that node (host-gw). kube-iptables-proxy runs
              here, with that node's name, as the DaemonSet would run it.
  <p>pod-X    a pod: eth0 (veth into cbr0, hairpin on) 10.244.N.k, default route
              via cbr0, running test/e2e/podserver.py, which answers with its
              name and the client address it saw

The test API server holds the Nodes, and the suite's Services and
EndpointSlices. A "barrier" Service/EndpointSlice pair lets a test wait until
every daemon has programmed every change made before it (see barrier()).

    cluster.py up [--backend nft|legacy] [--nodes 3] [--hold SECONDS]
    cluster.py clean [--prefix kipe2e-1234-]
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "test", "apiserver"))

from netns import Netns, SandboxError, delete_netns_by_name, list_netns  # noqa: E402

import admin as kadmin  # noqa: E402

PY = "/usr/bin/python3"
BIN = os.environ.get("KIP_BIN", os.path.join(REPO, "_output", "bin", "kube-iptables-proxy"))
APISERVER = os.path.join(REPO, "test", "apiserver", "apiserver.py")
PODSERVER = os.path.join(REPO, "test", "e2e", "podserver.py")
RELAY = os.path.join(HERE, "relay.py")

NODE_NET_LEN = 24
GW_IP = "192.0.2.1"
CP_IP = "192.0.2.2"
API_PORT = 6443
EXT_IP = "192.0.2.100"
EXT_IP2 = "192.0.2.101"
CLUSTER_CIDR = "10.244.0.0/16"
SYSTEM_NS = "kipe2e-system"
HEALTHZ_PORT = 10256
METRICS_PORT = 10249


def node_ip(i):
    return "192.0.2.%d" % (10 + i)


def node_ext_ip(i):
    return "192.0.2.%d" % (20 + i)


def wait_until(fn, timeout, what, interval=0.05):
    """Poll fn() until it returns a true value (returned) or raise after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise SandboxError("timed out after %.1fs waiting for %s (last: %r)"
                               % (timeout, what, last))
        time.sleep(interval)


def http_get(url, timeout=3.0):
    """(status, body) of a GET; status 0 and the error when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (OSError, ValueError) as e:
        return 0, str(e)


class Pod:
    def __init__(self, name, node, ns, ip, extra_ips):
        self.name = name
        self.node = node
        self.ns = ns
        self.ip = ip
        self.extra_ips = extra_ips
        self.proc = None

    def call(self, fn, *a, **kw):
        return self.ns.call(fn, *a, **kw)

    def __repr__(self):
        return "Pod(%s %s on %s)" % (self.name, self.ip, self.node.name)


class Daemon:
    """kube-iptables-proxy in a node namespace; its stderr goes to a log file
    (appended across restarts)."""

    def __init__(self, cluster, node, extra=()):
        self.cluster = cluster
        self.node = node
        self.extra = list(extra)
        self.proc = None
        self.logpath = os.path.join(cluster.workdir, "%s.daemon.log" % node.name)
        self.starts = 0

    def argv(self):
        return [BIN,
                "--master", "http://%s:%d" % (CP_IP, API_PORT),
                "--hostname-override", self.node.name,
                "--cluster-cidr", CLUSTER_CIDR,
                "--iptables-backend", self.cluster.backend,
                "--service-dispatch", self.cluster.dispatch,
                "--iptables-min-sync-period", "100ms",
                "--iptables-sync-period", "2s",
                "--healthz-bind-address", "0.0.0.0:%d" % HEALTHZ_PORT,
                "--metrics-bind-address", "127.0.0.1:%d" % METRICS_PORT,
                "--conntrack-max-per-core=0",
                "-v", "2"] + self.extra

    def start(self):
        self.starts += 1
        with open(self.logpath, "a") as f:
            f.write("==== start %d at %.3f: %s\n" % (self.starts, time.time(),
                                                    " ".join(self.argv())))
        self.log_offset = os.path.getsize(self.logpath)
        logf = open(self.logpath, "a")
        self.proc = self.node.ns.popen(self.argv(), stdout=logf, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        logf.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM; returns the exit status (raises if it would not exit)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise SandboxError("daemon on %s did not exit within %ss of SIGTERM"
                                   % (self.node.name, timeout))
        return self.proc.returncode

    def log(self, since_start=False):
        with open(self.logpath, errors="replace") as f:
            if since_start:
                f.seek(self.log_offset)
            return f.read()

    def tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def healthz(self, path="/healthz"):
        return self.node.ns.call(http_get, "http://%s:%d%s" % (self.node.ip, HEALTHZ_PORT, path))

    def metrics(self, path="/metrics"):
        return self.node.ns.call(http_get, "http://127.0.0.1:%d%s" % (METRICS_PORT, path))

    def wait_healthy(self, timeout=20):
        def ok():
            if not self.alive():
                raise SandboxError("daemon on %s exited %s:\n%s"
                                   % (self.node.name, self.proc.poll(), self.tail()))
            return self.healthz()[0] == 200
        wait_until(ok, timeout, "%s's /healthz to answer 200" % self.node.name)


class Node:
    def __init__(self, cluster, index):
        self.cluster = cluster
        self.index = index
        self.name = "node-%d" % index
        self.ip = node_ip(index)
        self.ext_ip = node_ext_ip(index)
        self.cidr = "10.244.%d.0/24" % index
        self.gw = "10.244.%d.1" % index
        self.ns = None
        self.daemon = None
        self.next_host = 2

    def alloc_ip(self):
        if self.next_host > 254:
            raise SandboxError("%s: pod CIDR %s exhausted" % (self.name, self.cidr))
        ip = "10.244.%d.%d" % (self.index, self.next_host)
        self.next_host += 1
        return ip

    def object(self):
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name, "labels": {
                "kubernetes.io/hostname": self.name,
                "kubernetes.io/os": "linux",
                "topology.kubernetes.io/zone": "zone-a"}},
            "spec": {"podCIDR": self.cidr, "podCIDRs": [self.cidr]},
            "status": {"addresses": [
                {"type": "InternalIP", "address": self.ip},
                {"type": "ExternalIP", "address": self.ext_ip},
                {"type": "Hostname", "address": self.name}]},
        }

    def save(self, table=None, counters=False):
        """iptables-save output of this node (one table, or all)."""
        argv = ["iptables-%s-save" % self.cluster.backend]
        if table:
            argv += ["-t", table]
        if counters:
            argv.append("-c")
        return self.ns.run(argv, timeout=30).stdout

    def iptables(self, *args):
        return self.ns.run(["iptables-%s" % self.cluster.backend, "-w", "5"] + list(args))

    def conntrack(self, *args):
        return self.ns.run(["conntrack"] + list(args), check=False).stdout

    def __repr__(self):
        return "Node(%s %s)" % (self.name, self.ip)


class Cluster:
    def __init__(self, backend="nft", n_nodes=3, prefix=None, workdir=None, log=None,
                 dispatch="auto"):
        if backend not in ("nft", "legacy"):
            raise ValueError("backend must be nft or legacy")
        if dispatch not in ("linear", "tree", "auto"):
            raise ValueError("dispatch must be linear, tree or auto")
        self.backend = backend
        self.dispatch = dispatch
        self.n_nodes = n_nodes
        self.prefix = prefix or "kipe2e-%d-" % os.getpid()
        self.own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="kipe2e-")
        os.makedirs(self.workdir, exist_ok=True)
        self.log = log or (lambda msg: None)
        self.namespaces = []
        self.nodes = []
        self.pods = {}
        self.api_proc = None
        self.api_port = None
        self._admin = None
        self.bseq = 0
        self.pod_seq = 0
        self.net = self.cp = self.ext = None

    # -- building -------------------------------------------------------------

    def _ns(self, suffix):
        ns = Netns(self.prefix + suffix)
        self.namespaces.append(ns)
        return ns

    def _plug(self, ns, port_name, addrs):
        """A veth from @ns's eth0 to the node network bridge; addresses on eth0."""
        self.net.ip("link", "add", port_name, "type", "veth", "peer", "name", "eth0",
                    "netns", ns.name)
        self.net.ip("link", "set", port_name, "master", "br0", "up")
        lines = ["addr add %s/%d dev eth0" % (a, NODE_NET_LEN) for a in addrs]
        lines.append("link set eth0 up")
        ns.ip_batch(lines)

    def up(self, start_daemons=True):
        t0 = time.monotonic()
        self.net = self._ns("net")
        self.net.ip_batch(["link add br0 type bridge",
                           "addr add %s/%d dev br0" % (GW_IP, NODE_NET_LEN),
                           "link set br0 up"])
        self.net.sysctl(**{"net.ipv4.ip_forward": 0})
        self.cp = self._ns("cp")
        self._plug(self.cp, "cp", [CP_IP])
        self.ext = self._ns("ext")
        self._plug(self.ext, "ext", [EXT_IP, EXT_IP2])
        for i in range(1, self.n_nodes + 1):
            self.add_node(i, start_daemon=False)
        self._start_control_plane()
        for n in self.nodes:
            self.admin("apply", n.object())
        self._barrier_objects(0)
        self.check_isolated()
        if start_daemons:
            for n in self.nodes:
                self.start_daemon(n)
            for n in self.nodes:
                n.daemon.wait_healthy()
            self.barrier()
        self.log("sandbox %s* up in %.1fs (%s)" % (self.prefix, time.monotonic() - t0,
                                                  self.backend))
        return self

    def add_node(self, i, start_daemon=True):
        """A node namespace wired into the node network and the host-gw routes.
        Its Node object is applied when the control plane runs."""
        n = Node(self, i)
        n.ns = self._ns(n.name)
        self._plug(n.ns, "n%d" % i, [n.ip, n.ext_ip])
        lines = ["link add cbr0 type bridge",
                 "addr add %s/24 dev cbr0" % n.gw,
                 "link set cbr0 up"]
        lines += ["route add %s via %s" % (o.cidr, o.ip) for o in self.nodes]
        # like a real node: a default route, here to the sandbox's dead-end gateway
        lines.append("route add default via %s" % GW_IP)
        n.ns.ip_batch(lines)
        for o in self.nodes:
            o.ns.ip("route", "add", n.cidr, "via", n.ip)
        n.ns.sysctl(**{"net.ipv4.ip_forward": 1,
                       "net.ipv4.conf.all.send_redirects": 0,
                       "net.ipv4.conf.default.send_redirects": 0,
                       "net.ipv4.conf.all.rp_filter": 0,
                       "net.ipv4.conf.default.rp_filter": 0,
                       "net.bridge.bridge-nf-call-iptables": 1,
                       # REJECT answers are ICMP errors, which the kernel limits per
                       # client address (a burst of 6, then 1/s): a suite sending
                       # many refused requests from one client would see timeouts
                       "net.ipv4.icmp_ratelimit": 0})
        n.daemon = Daemon(self, n)
        self.nodes.append(n)
        if self._admin is not None:
            self.admin("apply", n.object())
        if start_daemon:
            self.start_daemon(n)
            n.daemon.wait_healthy()
        return n

    def remove_node(self, node):
        """Stop the node's daemon, delete its pods and namespace, its routes on
        the other nodes, and its Node object."""
        if node.daemon and node.daemon.alive():
            node.daemon.stop()
        for pod in [p for p in self.pods.values() if p.node is node]:
            self.delete_pod(pod)
        self.nodes.remove(node)
        for o in self.nodes:
            o.ns.ip("route", "del", node.cidr, check=False)
        node.ns.delete()
        if node.ns in self.namespaces:
            self.namespaces.remove(node.ns)
        self.delete(node.object())

    def node(self, name_or_index):
        for n in self.nodes:
            if n.name == name_or_index or n.index == name_or_index:
                return n
        raise KeyError(name_or_index)

    def _start_control_plane(self):
        port_file = os.path.join(self.workdir, "apiserver.port")
        apilog = open(os.path.join(self.workdir, "apiserver.log"), "a")
        self.api_proc = self.cp.popen([PY, APISERVER, "--port", "0", "--port-file", port_file,
                                       "-v", "0"], stdout=apilog, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        apilog.close()

        def started():
            if self.api_proc.poll() is not None:
                raise SandboxError("test API server exited %s (see %s/apiserver.log)"
                                   % (self.api_proc.returncode, self.workdir))
            return os.path.exists(port_file)
        wait_until(started, 20, "the test API server to listen")
        self.api_port = int(open(port_file).read())
        self._admin = kadmin.Admin("http://127.0.0.1:%d" % self.api_port, timeout=30)
        ready = os.path.join(self.workdir, "relay.ready")
        relaylog = open(os.path.join(self.workdir, "relay.log"), "a")
        self.relay_proc = self.cp.popen([PY, RELAY, "--listen", "%s:%d" % (CP_IP, API_PORT),
                                         "--target", "127.0.0.1:%d" % self.api_port,
                                         "--ready-file", ready],
                                        stdout=relaylog, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        relaylog.close()

        def relay_up():
            if self.relay_proc.poll() is not None:
                raise SandboxError("relay exited %s" % self.relay_proc.returncode)
            return os.path.exists(ready)
        wait_until(relay_up, 20, "the API relay to listen")

    def check_isolated(self):
        """Nothing can leave the sandbox: every interface of every namespace is
        lo, a bridge, or a veth (all veths are created with both ends in our
        namespaces), and the only default routes are the nodes' (to the dead-end
        gateway) and the pods' (to their node)."""
        ours = {ns.name for ns in self.namespaces}
        for ns in self.namespaces:
            out = ns.ip("route", "show", "default").stdout.strip()
            if out and not ns.name.startswith(self.prefix + "pod-") and \
                    out.split()[:3] != ["default", "via", GW_IP]:
                raise SandboxError("%s has a default route: %s" % (ns.name, out))
            links = json.loads(ns.ip("-j", "-d", "link", "show").stdout)
            for link in links:
                kind = (link.get("linkinfo") or {}).get("info_kind")
                if link["ifname"] == "lo" or kind == "bridge":
                    continue
                if kind != "veth":
                    raise SandboxError("%s: unexpected interface %s (%s)"
                                       % (ns.name, link["ifname"], kind))
        assert ours  # the veths were all created with both ends in our namespaces

    # -- daemons -------------------------------------------------------------------

    def start_daemon(self, node):
        node.daemon.start()
        return node.daemon

    def daemons(self):
        return [n.daemon for n in self.nodes if n.daemon and n.daemon.alive()]

    # -- pods ---------------------------------------------------------------------

    def add_pod(self, node, name, tcp=(80, 8080, 8081), udp=(80, 8080), extra_ips=0,
                start=True):
        """A pod namespace on @node running podserver.py as @name."""
        if name in self.pods:
            raise SandboxError("pod %s exists" % name)
        self.pod_seq += 1
        seq = self.pod_seq
        ns = self._ns("pod-%s" % name)
        ip = node.alloc_ip()
        extra = [node.alloc_ip() for _ in range(extra_ips)]
        port = "vp%d" % seq
        node.ns.ip_batch(["link add %s type veth peer name eth0 netns %s" % (port, ns.name),
                          "link set %s master cbr0" % port,
                          "link set dev %s type bridge_slave hairpin on" % port,
                          "link set %s up" % port])
        lines = ["addr add %s/24 dev eth0" % a for a in [ip] + extra]
        lines += ["link set eth0 up", "route add default via %s" % node.gw]
        ns.ip_batch(lines)
        pod = Pod(name, node, ns, ip, extra)
        self.pods[name] = pod
        if start:
            self.start_server(pod, tcp, udp)
        return pod

    def start_server(self, pod, tcp=(80, 8080, 8081), udp=(80, 8080)):
        ready = os.path.join(self.workdir, "pod-%s.ready" % pod.name)
        if os.path.exists(ready):
            os.unlink(ready)
        log = open(os.path.join(self.workdir, "pod-%s.log" % pod.name), "a")
        pod.proc = pod.ns.popen([PY, PODSERVER, "--name", pod.name,
                                 "--tcp", ",".join(map(str, tcp)),
                                 "--udp", ",".join(map(str, udp)), "--ready-file", ready],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

        def up():
            if pod.proc.poll() is not None:
                raise SandboxError("pod server %s exited %s" % (pod.name, pod.proc.returncode))
            return os.path.exists(ready)
        wait_until(up, 20, "pod %s's server to listen" % pod.name, interval=0.01)

    def delete_pod(self, pod):
        """Kill the pod's processes by pid and delete its namespace (its veth goes too)."""
        pod.ns.delete()
        if pod.ns in self.namespaces:
            self.namespaces.remove(pod.ns)
        self.pods.pop(pod.name, None)

    # -- API objects ---------------------------------------------------------

    def admin(self, method, *args, **kw):
        """An admin.Admin call, made from inside the control-plane namespace."""
        return self.cp.call(getattr(self._admin, method), *args, _timeout=60, **kw)

    def apply(self, obj):
        return self.admin("apply", obj)

    def delete(self, obj):
        md = obj["metadata"]
        try:
            return self.admin("delete", obj["apiVersion"], obj["kind"], md["name"],
                              md.get("namespace"))
        except kadmin.AdminError as e:
            if e.code != 404:
                raise

    def get(self, kind, ns, name):
        return self.admin("objects", kind).get("%s/%s" % (ns, name) if ns else name)

    def _barrier_objects(self, k):
        port = 20000 + k
        ep = "10.255.%d.%d" % (k // 250, k % 250 + 1)
        self.apply({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "barrier", "namespace": SYSTEM_NS},
                    "spec": {"ports": [{"name": "b", "port": port, "targetPort": 9,
                                        "protocol": "TCP"}]}})
        self.apply({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": "barrier-1", "namespace": SYSTEM_NS,
                                 "labels": {"kubernetes.io/service-name": "barrier"}},
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [ep], "conditions": {"ready": True}}],
                    "ports": [{"name": "b", "port": 9, "protocol": "TCP"}]})
        return (re.compile(r"--dport %d\b" % port),
                re.compile(r"--to-destination %s:9\b" % re.escape(ep)))

    def barrier(self, nodes=None, timeout=30):
        """Wait until the daemons of @nodes (default: every node whose daemon
        runs) have programmed every API change made before this call.

        The barrier Service's port and its EndpointSlice's address are changed
        after the caller's changes. Each watch stream is ordered, and the
        daemon renders from its whole cache, so once a node's nat table holds
        both the new port and the new address, the sync that wrote them had
        seen everything written before on both streams."""
        nodes = nodes or [n for n in self.nodes if n.daemon and n.daemon.proc is not None]
        self.bseq += 1
        rx_port, rx_ep = self._barrier_objects(self.bseq)
        pending = list(nodes)
        deadline = time.monotonic() + timeout
        while pending:
            for n in list(pending):
                if not n.daemon.alive():
                    raise SandboxError("daemon on %s exited %s:\n%s"
                                       % (n.name, n.daemon.proc.poll(), n.daemon.tail()))
                nat = n.save("nat")
                if rx_port.search(nat) and rx_ep.search(nat):
                    pending.remove(n)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise SandboxError("barrier %d: %s did not program the change within %ss; "
                                   "last log lines of %s:\n%s"
                                   % (self.bseq, [n.name for n in pending], timeout,
                                      pending[0].name, pending[0].daemon.tail(20)))
            time.sleep(0.05)

    # -- teardown ------------------------------------------------------------

    def teardown(self):
        """Stop everything by pid and delete every namespace of this run.
        Returns a list of problems (empty when clean)."""
        problems = []
        for n in self.nodes:
            if n.daemon and n.daemon.proc is not None and n.daemon.proc.poll() not in (None, 0):
                problems.append("the daemon on %s had exited with status %s (log: %s)"
                                % (n.name, n.daemon.proc.returncode, n.daemon.logpath))
            try:
                if n.daemon:
                    n.daemon.stop()
            except SandboxError as e:
                problems.append(str(e))
        if self.api_proc and self.api_proc.poll() is None:
            self.api_proc.send_signal(signal.SIGTERM)
            try:
                self.api_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                problems.append("test API server did not exit on SIGTERM")
        # pods first, then nodes, then the rest: a veth dies with either end
        order = sorted(self.namespaces, key=lambda ns: (
            0 if "-pod-" in ns.name else 1 if "-node-" in ns.name else 2))
        for ns in order:
            try:
                ns.delete()
            except SandboxError as e:
                problems.append(str(e))
        self.namespaces = []
        left = [n for n in list_netns() if n.startswith(self.prefix)]
        for name in left:
            delete_netns_by_name(name)
        left = [n for n in list_netns() if n.startswith(self.prefix)]
        if left:
            problems.append("namespaces left behind: %s" % left)
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return problems


def clean(prefix=None):
    """Delete leftover namespaces: those starting with @prefix, or without a
    prefix those of kipe2e-<pid>- runs whose pid is gone."""
    removed = []
    for name in list_netns():
        m = re.match(r"kipe2e-(\d+)-", name)
        if prefix:
            if not name.startswith(prefix):
                continue
        elif not m or os.path.exists("/proc/%s" % m.group(1)):
            continue
        delete_netns_by_name(name)
        removed.append(name)
    return removed


def _demo(c):
    """A small demo workload for `up`: a NodePort service over one pod per node."""
    pods = [c.add_pod(n, "web-%d" % n.index) for n in c.nodes]
    c.apply({"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "web", "namespace": "demo"},
             "spec": {"type": "NodePort", "ports": [
                 {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                 {"name": "dns", "port": 53, "targetPort": 80, "protocol": "UDP"}]}})
    c.apply({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"name": "web-1", "namespace": "demo",
                          "labels": {"kubernetes.io/service-name": "web"}},
             "addressType": "IPv4",
             "endpoints": [{"addresses": [p.ip], "nodeName": p.node.name,
                            "conditions": {"ready": True}} for p in pods],
             "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                       {"name": "dns", "port": 80, "protocol": "UDP"}]})
    c.barrier()
    return c.get("Service", "demo", "web")


def main():
    ap = argparse.ArgumentParser(description="node-e2e sandbox: build it and keep it up, or clean up")
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="build a sandbox with a demo service; tear it down on "
                                  "Ctrl-C/SIGTERM or after --hold seconds")
    u.add_argument("--backend", default="nft", choices=("nft", "legacy"))
    u.add_argument("--nodes", type=int, default=3)
    u.add_argument("--hold", type=float, default=3600.0)
    cl = sub.add_parser("clean", help="delete leftover sandbox namespaces")
    cl.add_argument("--prefix")
    a = ap.parse_args()
    if a.cmd == "clean":
        for name in clean(a.prefix):
            print("deleted", name)
        return 0
    stop = {"sig": None}

    def on_signal(sig, _):
        stop["sig"] = sig
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    c = Cluster(a.backend, a.nodes, workdir=tempfile.mkdtemp(prefix="kipe2e-up-"),
                log=lambda m: print(m, flush=True))
    try:
        c.up()
        svc = _demo(c)
        print("\nNamespaces (ip netns exec NAME ...):")
        for ns in c.namespaces:
            print("  " + ns.name)
        print("\nAPI server: ip netns exec %scp curl -s http://127.0.0.1:%d/api/v1/services"
              % (c.prefix, c.api_port))
        print("Service demo/web: ClusterIP %s port 80/tcp, 53/udp; NodePorts %s"
              % (svc["spec"]["clusterIP"], [p["nodePort"] for p in svc["spec"]["ports"]]))
        print("Try: ip netns exec %sext %s %s tcp %s %d"
              % (c.prefix, PY, os.path.join(REPO, "test/e2e/netclient.py"), c.nodes[0].ip,
                 svc["spec"]["ports"][0]["nodePort"]))
        print("     ip netns exec %snode-1 iptables-%s-save -t nat" % (c.prefix, a.backend))
        print("Logs: %s\nCtrl-C tears it all down." % c.workdir, flush=True)
        deadline = time.monotonic() + a.hold
        while time.monotonic() < deadline:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        problems = c.teardown()
        print("torn down%s" % ("" if not problems else ": " + "; ".join(problems)), flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
