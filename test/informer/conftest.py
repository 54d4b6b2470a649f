"""Fixtures for the informer's tests against the test API server (test/apiserver/).

The informer runs in test/tools/informer-dump (one JSON line per handler call on stdout,
commands on stdin). Which binary: $INFORMER_DUMP, default build/asan/test/tools/informer-dump
(build it with `make BUILD=build/asan CFLAGS=... build/asan/test/tools/informer-dump`).
With INFORMER_VALGRIND=1 every run goes through valgrind (use a non-ASan build then).
Everything is loopback-only, bounded in time, and every process is killed at teardown.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APISERVER_DIR = ROOT / "test" / "apiserver"
sys.path.insert(0, str(APISERVER_DIR))

from admin import Admin  # noqa: E402  (the test API server's own admin client)

PYTHON = "/usr/bin/python3"
TESTDATA = APISERVER_DIR / "testdata"
VALGRIND = os.environ.get("INFORMER_VALGRIND") == "1"
DUMP = Path(os.environ.get("INFORMER_DUMP",
                           ROOT / "build" / ("valgrind" if VALGRIND else "asan") /
                           "test" / "tools" / "informer-dump"))
# valgrind makes everything ~20x slower: scale waits
SLOW = 8.0 if VALGRIND else 1.0


def loopback_env(extra=None):
    """The environment without proxies (loopback must never go through one)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost,::1"
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    if extra:
        env.update(extra)
    return env


class Server:
    """apiserver.py on an ephemeral loopback port."""

    def __init__(self, workdir, args, scheme="http", cacert=None, bind="127.0.0.1"):
        workdir.mkdir(parents=True, exist_ok=True)
        port_file = workdir / "port"
        self.log_path = workdir / "apiserver.log"
        self.log = open(self.log_path, "wb")
        cmd = [PYTHON, str(APISERVER_DIR / "apiserver.py"), "--bind", bind, "--port", "0",
               "--port-file", str(port_file), "-v", "2", *map(str, args)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=loopback_env())
        deadline = time.monotonic() + 15
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("apiserver did not start:\n" + self.tail())
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        host = f"[{bind}]" if ":" in bind else bind
        self.url = f"{scheme}://{host}:{self.port}"
        self.admin = Admin(self.url, cacert=cacert)

    def tail(self, n=3000):
        self.log.flush()
        return self.log_path.read_bytes()[-n:].decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def requests(self, verb=None, resource=None):
        """The request log, optionally only watches/lists of one resource path."""
        out = []
        for r in self.admin.requests():
            p = r["path"]
            if resource and resource not in p.split("?")[0]:
                continue
            is_watch = "watch=1" in p or "watch=true" in p
            if verb == "watch" and not is_watch or verb == "list" and (is_watch or
                                                                       r["method"] != "GET"):
                continue
            out.append(r)
        return out


class Informer:
    """informer-dump, its output lines collected by a thread."""

    def __init__(self, workdir, args, env=None):
        self.lines = []
        self.cond = threading.Condition()
        self.stderr_path = workdir / f"informer-{time.monotonic_ns()}.stderr"
        self.stderr = open(self.stderr_path, "wb")
        cmd = [str(DUMP), *map(str, args)]
        if VALGRIND:
            cmd = ["valgrind", "-q", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                   "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
                   "--trace-children=no", *cmd]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, env=loopback_env(env))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.rc = None

    def _read(self):
        for raw in self.proc.stdout:
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = {"op": "garbage", "raw": raw.decode(errors="replace")}
            with self.cond:
                self.lines.append(obj)
                self.cond.notify_all()

    def send(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_for(self, pred, timeout=15.0, what="condition"):
        """Wait until pred(lines) is true; returns its value."""
        deadline = time.monotonic() + timeout * SLOW
        with self.cond:
            while True:
                v = pred(self.lines)
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not v:
                    if self.proc.poll() is not None:
                        # the process is gone; one last look at everything it printed
                        self.reader.join(2)
                        v = pred(self.lines)
                        if v:
                            return v
                    raise AssertionError(f"timed out waiting for {what}; last output:\n" +
                                         self.dump_tail())
                self.cond.wait(min(left, 0.2))

    def dump_tail(self, n=40):
        with self.cond:
            tail = [x for x in self.lines if x.get("op") != "state"][-n:]
        err = self.stderr_path.read_bytes()[-3000:].decode(errors="replace")
        return "\n".join(json.dumps(x) for x in tail) + "\nstderr:\n" + err

    def synced(self, *kinds, timeout=15.0):
        self.wait_for(lambda ls: all(any(x.get("op") == "synced" and x.get("kind") == k
                                         for x in ls) for k in kinds),
                      timeout, f"synced {kinds}")

    def ops(self, op, kind=None):
        with self.cond:
            return [x for x in self.lines
                    if x.get("op") == op and (kind is None or x.get("kind") == kind)]

    def logs(self, msg_part):
        return [x for x in self.ops("log") if msg_part in x["msg"]]

    def state(self, timeout=10.0):
        n = len(self.ops("state"))
        self.send("state")
        return self.wait_for(lambda ls: len([x for x in ls if x.get("op") == "state"]) > n and
                             [x for x in ls if x.get("op") == "state"][-1], timeout, "state")

    def stop(self, timeout=20.0):
        """Stop through stdin; the process must exit 0 with uv_loop_close() == 0."""
        if self.proc.poll() is None:
            try:
                self.send("stop")
            except (BrokenPipeError, OSError):
                pass
            try:
                self.rc = self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("informer-dump did not stop:\n" + self.dump_tail())
        else:
            self.rc = self.proc.returncode
        self.reader.join(5)
        self.stderr.close()
        return self.rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if not self.stderr.closed:
            self.stderr.close()


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    subprocess.run(["sh", str(APISERVER_DIR / "gen-certs.sh"), str(d)], check=True,
                   timeout=60, stdout=subprocess.DEVNULL)
    return d


@pytest.fixture
def procs(tmp_path):
    """Start servers and informers; everything is stopped or killed at teardown."""
    started = []

    class Procs:
        def server(self, *args, scheme="http", cacert=None, bind="127.0.0.1"):
            s = Server(tmp_path / f"srv{len(started)}", args, scheme, cacert, bind)
            started.append(s)
            return s

        def informer(self, *args, env=None):
            if not DUMP.exists():
                pytest.fail(f"{DUMP} is missing: build it first (see conftest.py)")
            i = Informer(tmp_path, args, env)
            started.append(i)
            return i

    yield Procs()
    for p in reversed(started):
        if isinstance(p, Informer):
            p.kill()
        else:
            p.stop()


def kubeconfig(path, server, ca=None, ca_data=None, token=None, token_file=None, cert=None,
               key=None, cert_data=None, key_data=None, tls_server_name=None, insecure=False,
               exec_=None):
    """Write a kubeconfig (JSON is YAML) and return its path."""
    cluster = {"server": server}
    if ca:
        cluster["certificate-authority"] = str(ca)
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    if tls_server_name:
        cluster["tls-server-name"] = tls_server_name
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    user = {}
    for k, v in (("token", token), ("tokenFile", token_file), ("client-certificate", cert),
                 ("client-key", key), ("client-certificate-data", cert_data),
                 ("client-key-data", key_data), ("exec", exec_)):
        if v:
            user[k] = v if isinstance(v, dict) else str(v)
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
           "clusters": [{"name": "c", "cluster": cluster}],
           "users": [{"name": "u", "user": user}],
           "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u"}}]}
    Path(path).write_text(json.dumps(cfg, indent=1))
    return path


def server_state(admin, kind, api_version=None):
    """{"ns/name": rv} of the server's objects of one kind."""
    return {k: o["metadata"]["resourceVersion"]
            for k, o in admin.objects(kind, api_version).items()}


def service(name, ns="default", port=80, labels=None, ip=None):
    md = {"name": name, "namespace": ns}
    if labels:
        md["labels"] = labels
    spec = {"ports": [{"name": "http", "protocol": "TCP", "port": port, "targetPort": port}],
            "type": "ClusterIP"}
    if ip:
        spec["clusterIP"] = ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": md, "spec": spec}


def endpointslice(name, svc, ns="default", ip="10.244.0.5", port=80):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
            "ports": [{"name": "http", "protocol": "TCP", "port": port}]}


def node(name):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.10"}]}}
