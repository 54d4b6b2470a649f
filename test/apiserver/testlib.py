"""Helpers for the test API server's own pytest suite: start/stop the server process, a raw
HTTP/1.1 client that keeps chunk boundaries, kubectl runners. Every wait is bounded."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from admin import Admin

HERE = Path(__file__).resolve().parent
SERVER = HERE / "apiserver.py"
TESTDATA = HERE / "testdata"
PYTHON = "/usr/bin/python3"
KUBECTL_DIR = Path("/usr/lib/google-cloud-sdk/bin")


class ServerProc:
    """One apiserver.py process on an ephemeral loopback port, logging to `log_path`."""

    def __init__(self, workdir, *args, scheme="http", cacert=None, bind="127.0.0.1"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        port_file = self.workdir / "port"
        self.log_path = self.workdir / "apiserver.log"
        self.log = open(self.log_path, "wb")
        cmd = [PYTHON, str(SERVER), "--bind", bind, "--port", "0", "--port-file",
               str(port_file), "-v", "2", *map(str, args)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"apiserver did not start: {self.log_tail()}")
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        host = f"[{bind}]" if ":" in bind else bind
        self.url = f"{scheme}://{host}:{self.port}"
        self.admin = Admin(self.url, cacert=cacert)

    def log_tail(self, n=4000):
        self.log.flush()
        return self.log_path.read_bytes()[-n:].decode(errors="replace")

    def stop(self, timeout=10.0):
        """SIGTERM, wait; kill if it hangs. Returns the exit code (0 = clean shutdown)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self.log.close()
                return None
        self.log.close()
        return self.proc.returncode


class RawResponse:
    """A response read off the socket: status, headers (lower-case names), the body as
    received chunks with their arrival times, and whether the terminating chunk came."""

    def __init__(self):
        self.status = None
        self.headers = {}
        self.chunks = []  # (monotonic time, bytes)
        self.complete = False

    @property
    def body(self):
        return b"".join(c for _, c in self.chunks)

    def json(self):
        return json.loads(self.body)

    def lines(self):
        """Complete lines of a watch stream (the trailing partial line, if any, dropped)."""
        return self.body.split(b"\n")[:-1]

    def events(self):
        return [json.loads(line) for line in self.lines()]

    def line_times(self):
        """(arrival time of the line's last byte, line) for each complete line."""
        out, cur = [], b""
        for t, data in self.chunks:
            parts = (cur + data).split(b"\n")
            out.extend((t, p) for p in parts[:-1])
            cur = parts[-1]
        return out


def raw_request(port, target, method="GET", headers=None, body=None, timeout=15.0,
                host="127.0.0.1"):
    """Send one request on a fresh connection and read the response, chunk by chunk,
    until the terminating chunk, Content-Length or EOF. Raises socket.timeout if the
    server goes silent for `timeout` seconds."""
    hdrs = {"Host": f"{host}:{port}", "Accept": "application/json",
            "User-Agent": "raw-test/1.0", "Connection": "close"}
    hdrs.update(headers or {})
    if body is not None:
        hdrs["Content-Length"] = str(len(body))
    req = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    resp = RawResponse()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(req.encode() + b"\r\n" + (body or b""))
        f = sock.makefile("rb")
        try:
            resp.status = int(f.readline().split()[1])
            while True:
                line = f.readline().decode().rstrip("\r\n")
                if not line:
                    break
                k, _, v = line.partition(":")
                resp.headers[k.strip().lower()] = v.strip()
            if resp.headers.get("transfer-encoding") == "chunked":
                while True:
                    size_line = f.readline()
                    if not size_line:
                        return resp  # EOF without the terminating chunk
                    size = int(size_line.strip(), 16)
                    if size == 0:
                        f.readline()
                        resp.complete = True
                        return resp
                    data = f.read(size)
                    resp.chunks.append((time.monotonic(), data))
                    if len(data) < size or f.readline() != b"\r\n":
                        return resp
            n = int(resp.headers.get("content-length", "0"))
            resp.chunks.append((time.monotonic(), f.read(n)))
            resp.complete = True
        except ConnectionResetError:
            pass
        finally:
            f.close()
    return resp


def in_thread(fn, *args, **kwargs):
    """Run fn in a thread; returns a join(timeout) function giving its result or error."""
    box = {}

    def run():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the test thread
            box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join(timeout=20.0):
        t.join(timeout)
        assert not t.is_alive(), f"{fn.__name__} still running after {timeout}s"
        if "error" in box:
            raise box["error"]
        return box["result"]
    return join


def service(name, namespace="default", labels=None, port=80, **spec):
    md = {"name": name, "namespace": namespace}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "Service", "metadata": md,
            "spec": {"ports": [{"name": "http", "port": port, "targetPort": 8080}], **spec}}


def endpointslice(name, service_name, namespace="default", labels=None, addresses=("10.0.0.1",)):
    lab = {"kubernetes.io/service-name": service_name, **(labels or {})}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": namespace, "labels": lab},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses],
            "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]}


def write_kubeconfig(path, server, token=None, ca=None, cert=None, key=None):
    """A minimal kubeconfig (JSON is valid YAML) with one cluster/user/context."""
    cluster = {"server": server}
    if ca:
        cluster["certificate-authority"] = str(ca)
    user = {}
    if token:
        user["token"] = token
    if cert:
        user["client-certificate"] = str(cert)
        user["client-key"] = str(key)
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
           "clusters": [{"name": "test", "cluster": cluster}],
           "users": [{"name": "test", "user": user}],
           "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test",
                                                     "namespace": "default"}}]}
    Path(path).write_text(json.dumps(cfg))
    return path


def kubectl_env(kubeconfig):
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), HOME=str(Path(kubeconfig).parent))
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return env


def kubectl(kubeconfig, *args, binary="kubectl", stdin=None, timeout=30, check=True):
    """Run kubectl (binary "kubectl" = the /usr/bin dispatcher, or e.g. "kubectl.1.27")."""
    exe = "/usr/bin/kubectl" if binary == "kubectl" else str(KUBECTL_DIR / binary)
    p = subprocess.run([exe, "--request-timeout=20s", *args], input=stdin, capture_output=True,
                       text=True, timeout=timeout, env=kubectl_env(kubeconfig))
    if check:
        assert p.returncode == 0, f"kubectl {args} failed: {p.stderr}"
    return p


class JsonStream:
    """Reads concatenated (pretty-printed) JSON documents from a pipe in a thread."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.buf = ""
        self.docs = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        dec = json.JSONDecoder()
        for chunk in iter(lambda: os.read(self.pipe.fileno(), 65536), b""):
            with self.cond:
                self.buf += chunk.decode()
                while True:
                    s = self.buf.lstrip()
                    try:
                        doc, end = dec.raw_decode(s)
                    except ValueError:
                        break
                    self.docs.append(doc)
                    self.buf = s[end:]
                self.cond.notify_all()

    def wait_for(self, pred, timeout=20.0):
        """Wait until pred(docs) is true; returns the docs."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.docs):
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; got {len(self.docs)} documents: {self.docs!r:.2000}"
                self.cond.wait(left)
            return list(self.docs)
