"""Helpers for the daemon's kernel tests: throwaway network namespaces, the
test API server and the daemon running inside them, and rule comparison.

Everything that touches the kernel happens inside namespaces created here and
deleted on teardown (processes are killed by pid first: they would survive
`ip netns del`). The machine's own namespace is never touched.
"""

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "apiserver"))

import admin as kadmin  # noqa: E402  (the test API server's client)

PY = "/usr/bin/python3"
BIN = os.environ.get("KIP_BIN", os.path.join(REPO, "_output", "bin", "kube-iptables-proxy"))
APISERVER = os.path.join(REPO, "test", "apiserver", "apiserver.py")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def run(cmd, check=True, **kw):
    """Run a command; raise with its output when it fails and check is set."""
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d: %s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


class Netns:
    """A named network namespace with loopback up; delete() kills what runs in it."""

    _seq = 0

    def __init__(self, tag="t"):
        Netns._seq += 1
        self.name = "kipd-%d-%s%d" % (os.getpid(), tag, Netns._seq)
        run(["ip", "netns", "add", self.name])
        self.pids = []
        run(["ip", "-n", self.name, "link", "set", "lo", "up"])

    def cmd(self, argv):
        return ["ip", "netns", "exec", self.name] + argv

    def run(self, argv, check=True, **kw):
        return run(self.cmd(argv), check=check, **kw)

    def popen(self, argv, **kw):
        p = subprocess.Popen(self.cmd(argv), **kw)
        self.pids.append(p)
        return p

    def call(self, fn, *args, **kw):
        """Run fn in a thread that has entered this namespace: its sockets live here."""
        box = {}

        def body():
            fd = os.open("/run/netns/" + self.name, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    box["err"] = OSError(ctypes.get_errno(), "setns failed")
                    return
            finally:
                os.close(fd)
            try:
                box["ret"] = fn(*args, **kw)
            except BaseException as e:  # re-raised in the caller's thread
                box["err"] = e

        t = threading.Thread(target=body)
        t.start()
        t.join()
        if "err" in box:
            raise box["err"]
        return box.get("ret")

    def delete(self):
        for p in self.pids:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        run(["ip", "netns", "del", self.name], check=False)


class ApiServer:
    """The test API server inside a namespace, with the admin client bound to it."""

    def __init__(self, ns, fixture=None):
        self.ns = ns
        fd, self.port_file = tempfile.mkstemp(prefix="kipd-port-")
        os.close(fd)
        os.unlink(self.port_file)
        argv = [PY, APISERVER, "--port", "0", "--port-file", self.port_file, "--bookmark-interval", "5"]
        if fixture:
            argv += ["--fixture", fixture]
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = ns.popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while not os.path.exists(self.port_file):
            if time.time() > deadline or self.proc.poll() is not None:
                raise AssertionError("test API server did not start: " + self.output())
            time.sleep(0.05)
        self.port = int(open(self.port_file).read())
        os.unlink(self.port_file)
        self.url = "http://127.0.0.1:%d" % self.port
        self._admin = kadmin.Admin(self.url)

    def admin(self, method, *args, **kw):
        """Call an admin.Admin method from inside the namespace."""
        return self.ns.call(getattr(self._admin, method), *args, **kw)

    def output(self):
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


BASE_FLAGS = [
    "--hostname-override=node-a",
    "--cluster-cidr=10.244.0.0/16,fd00:10:244::/56",
    "--iptables-min-sync-period=100ms",
    "--iptables-sync-period=2s",
    "--conntrack-max-per-core=0",
    "--healthz-bind-address=127.0.0.1:10256",
    "--metrics-bind-address=127.0.0.1:10249",
    "--ip-family=ipv4",
    "-v=2",
]


class Daemon:
    """kube-iptables-proxy inside a namespace; its stderr is kept for assertions."""

    def __init__(self, ns, api, backend, extra=(), env=None, binary=None, wrap=()):
        self.ns = ns
        self.backend = backend
        self.logf = tempfile.NamedTemporaryFile(mode="w+", prefix="kipd-log-", delete=False)
        argv = list(wrap) + [binary or BIN, "--master", api.url, "--iptables-backend", backend]
        argv += BASE_FLAGS + list(extra)
        e = dict(os.environ)
        e.update(env or {})
        self.proc = ns.popen(argv, stdout=self.logf, stderr=subprocess.STDOUT, env=e)

    def log(self):
        with open(self.logf.name) as f:
            return f.read()

    def wait_log(self, pattern, start=0, timeout=20):
        """Wait until @pattern (a regex) appears in the log after offset @start;
        returns the match."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = rx.search(self.log(), start)
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("no /%s/ in the daemon log within %ss (exit %s):\n%s"
                             % (pattern, timeout, self.proc.poll(), self.log()[-3000:]))

    def mark(self):
        """An offset: wait_log(..., start=mark) only sees lines written after it."""
        return len(self.log())

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError("daemon did not exit on SIGTERM:\n" + self.log()[-3000:])
        return self.proc.returncode

    def http(self, port, path):
        """GET http://127.0.0.1:port/path inside the namespace: (status, headers, body)."""
        def get():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
                    return r.status, dict(r.headers), r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, dict(e.headers), e.read().decode()
        return self.ns.call(get)


def save(ns, backend, family=4):
    """The kernel's tables as {table: {chain: [rules]}} (counters dropped)."""
    tool = "%s-%s-save" % ("iptables" if family == 4 else "ip6tables", backend)
    out = ns.run([tool]).stdout
    tables, table = {}, None
    for line in out.splitlines():
        if line.startswith("*"):
            table = tables.setdefault(line[1:], {})
        elif line.startswith(":"):
            table.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            chain = line.split()[1]
            table.setdefault(chain, []).append(line)
    return tables


def kube_chains(tables, skip=("KUBE-PROXY-CANARY", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT")):
    """Only the KUBE-* chains kube-proxy programs."""
    return {t: {c: r for c, r in chains.items() if c.startswith("KUBE-") and c not in skip}
            for t, chains in tables.items()
            if any(c.startswith("KUBE-") and c not in skip for c in chains)}


def jump_rules(tables):
    """Rules in built-in chains that jump to KUBE-* chains."""
    out = []
    for t, chains in tables.items():
        for c, rules in chains.items():
            if c.startswith("KUBE-"):
                continue
            out += [(t, r) for r in rules if " -j KUBE-" in r]
    return sorted(out)


def objects_file(api):
    """The API server's current objects as a List file for --dump-rules."""
    items = [o for o in api.admin("state")["items"]
             if o["kind"] in ("Service", "EndpointSlice", "Node")]
    f = tempfile.NamedTemporaryFile(mode="w", suffix=".json", prefix="kipd-objs-", delete=False)
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
    f.close()
    return f.name


def expected_chains(api, backend, extra_dump=()):
    """--dump-rules of the server's state, loaded into a scratch namespace,
    read back: the KUBE chains the daemon's namespace should hold."""
    path = objects_file(api)
    try:
        dump = run([BIN, "--dump-rules", "--from-file", path, "--iptables-nfacct=true"]
                   + [f for f in BASE_FLAGS if not f.startswith(("--iptables-min", "--iptables-sync",
                                                                 "--healthz", "--metrics"))]
                   + list(extra_dump)).stdout
    finally:
        os.unlink(path)
    scratch = Netns("scratch")
    try:
        scratch.run(["nfacct", "add", "ct_state_invalid_dropped_pkts"])
        scratch.run(["nfacct", "add", "localhost_nps_accepted_pkts"])
        scratch.run(["iptables-%s-restore" % backend, "--noflush"], input=dump)
        return kube_chains(save(scratch, backend))
    finally:
        scratch.delete()


def wait_until(fn, timeout=20, interval=0.1, what="condition"):
    """Poll fn() until it returns a true value; return it."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))
