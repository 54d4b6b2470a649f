"""The informer's transport and credentials, as issue 3 specifies them, against the test API
server: HTTP/2 multiplexing when the server offers it, TCP keepalive, the User-Agent, the token
file cache (at most one read per 60 s, at once after a 401), exec credentials cached until
their expirationTimestamp, an IPv6 in-cluster host, and client certificate data never
written to a file.
"""

import base64
import json
import os
import platform
import re
import shutil
import signal
import stat
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import (DUMP, ROOT, SLOW, TESTDATA, VALGRIND, kubeconfig, loopback_env,
                      server_state, service)

SVC = "Service"
EPS = "EndpointSlice"
NODE = shutil.which("node")


def fixtures():
    return ["--fixture", TESTDATA / "service-list.json",
            "--fixture", TESTDATA / "endpointslice-list.json"]


def auth_of(r):
    return {k.lower(): v for k, v in r["headers"].items()}.get("authorization")


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def in_sync(inf, adm, kinds=((SVC, None), (EPS, "discovery.k8s.io/v1"))):
    want = {k: server_state(adm, k, api) for k, api in kinds}
    return wait(lambda: {k: inf.state()[k] for k, _ in kinds} == want, 20, "informer in sync")


def clean_exit(inf):
    assert inf.stop() == 0, "informer-dump failed at exit:\n" + inf.dump_tail()


def rewatch(srv, inf, name):
    """End every watch; a change made afterwards must reach the informer."""
    srv.admin.end_watches()
    srv.admin.apply(service(name))
    inf.wait_for(lambda ls: any(x.get("key") == f"default/{name}" for x in ls), timeout=30,
                 what=f"{name} after a re-watch")


class H2Proxy:
    """test/informer/h2proxy.js: Node's HTTP/2 server (h2 only) in front of apiserver.py."""

    def __init__(self, workdir, upstream_port, certs):
        self.port_file = workdir / "h2.port"
        self.stats_file = workdir / "h2.stats"
        self.log = open(workdir / "h2.log", "wb")
        self.proc = subprocess.Popen(
            [NODE, str(ROOT / "test" / "informer" / "h2proxy.js"), str(upstream_port),
             str(certs / "server.crt"), str(certs / "server.key"), str(self.port_file),
             str(self.stats_file)], stdout=self.log, stderr=subprocess.STDOUT,
            env=loopback_env())
        wait(lambda: self.port_file.exists() or self.proc.poll() is not None, 15, "h2proxy")
        assert self.proc.poll() is None, (workdir / "h2.log").read_text()
        self.url = f"https://127.0.0.1:{self.port_file.read_text()}"

    def stats(self):
        return json.loads(self.stats_file.read_text()) if self.stats_file.exists() else {
            "sessions": 0, "streams": 0, "perSession": []}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def h2(tmp_path, certs):
    started = []

    def start(upstream_port):
        if not NODE:
            pytest.skip("needs nodejs (Node's http2 module is the HTTP/2 server)")
        p = H2Proxy(tmp_path, upstream_port, certs)
        started.append(p)
        return p
    yield start
    for p in started:
        p.stop()


def test_http2_multiplexes_the_watches_on_one_connection(procs, tmp_path, certs, h2):
    srv = procs.server(*fixtures())
    px = h2(srv.port)
    kc = kubeconfig(tmp_path / "kc", px.url, ca=certs / "ca.crt")
    inf = procs.informer("--kubeconfig", kc, "--node", "node-a")
    # the proxy speaks nothing but HTTP/2: a sync proves the informer negotiated it
    inf.synced(SVC, EPS, "Node")
    srv.admin.wait_for_watch("services")
    srv.admin.wait_for_watch("endpointslices.discovery.k8s.io")
    srv.admin.wait_for_watch("nodes")
    # the three first LISTs start together, before any connection is up: at most one
    # connection each (no PIPEWAIT, see informer/http.c); everything after that reuses them
    first = px.stats()["sessions"]
    assert 1 <= first <= 3, px.stats()
    for i in range(4):
        time.sleep(1.1)  # a watch ending within 1 s without events counts as a failure
        rewatch(srv, inf, f"h2-{i}")
    srv.admin.wait_for_watch("services")
    srv.admin.wait_for_watch("endpointslices.discovery.k8s.io")
    srv.admin.wait_for_watch("nodes")
    st = px.stats()
    assert st["sessions"] == first, f"re-watches opened new connections: {st}"
    assert st["streams"] >= 3 + 3 * 5, st
    # all three watches open at once on one connection
    assert max(s["maxOpen"] for s in st["perSession"]) >= 3, st
    in_sync(inf, srv.admin)
    clean_exit(inf)


def test_every_connection_has_tcp_keepalive(procs):
    srv = procs.server(*fixtures())
    inf = procs.informer("--master", srv.url, "--node", "node-a")
    inf.synced(SVC, EPS, "Node")
    srv.admin.wait_for_watch("nodes")

    def conns():
        out = subprocess.run(["ss", "-tnpoH", "state", "established", f"dport = :{srv.port}"],
                             capture_output=True, text=True, timeout=10).stdout
        mine = [line for line in out.splitlines() if f"pid={inf.proc.pid}," in line]
        return mine if len(mine) >= 3 else None
    mine = wait(conns, 10, "the informer's watch connections")
    for line in mine:
        m = re.search(r"timer:\(keepalive,(\d+)sec", line)
        assert m, f"no TCP keepalive on {line}"
        assert int(m.group(1)) <= 30, line  # client-go's dialer: 30 s keep-alive
    clean_exit(inf)


def test_user_agent_names_version_and_platform(procs):
    srv = procs.server(*fixtures())
    inf = procs.informer("--master", srv.url)
    inf.synced(SVC, EPS)
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}[platform.machine()]
    want = f"kube-iptables-proxy/{(ROOT / 'VERSION').read_text().strip()} (linux/{arch})"
    agents = {{k.lower(): v for k, v in r["headers"].items()}["user-agent"]
              for r in srv.admin.requests()}
    assert agents == {want}, agents
    clean_exit(inf)


@pytest.mark.skipif(VALGRIND, reason="needs real time: the 60 s token cache")
def test_token_file_read_at_most_every_60s_and_at_once_after_401(procs, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("tok-a\ntok-b\n")  # the server accepts both
    srv = procs.server(*fixtures(), "--token-file", tokens)
    tok = tmp_path / "token"
    tok.write_text("tok-a\n")
    kc = kubeconfig(tmp_path / "kc", srv.url, token_file=tok)
    t0 = time.monotonic()
    inf = procs.informer("--kubeconfig", kc)
    inf.synced(SVC, EPS)
    srv.admin.wait_for_watch("services")
    # rotated, but the copy is younger than 60 s: new requests still send the cached token
    tok.write_text("tok-b\n")
    srv.admin.requests(clear=True)
    time.sleep(1.1)
    rewatch(srv, inf, "cached")
    reqs = srv.admin.requests()
    assert reqs and {auth_of(r) for r in reqs} == {"Bearer tok-a"}, [auth_of(r) for r in reqs]
    # 60 s after the first read the file is read again, without any 401
    time.sleep(max(0.0, t0 + 62 - time.monotonic()))
    srv.admin.requests(clear=True)
    rewatch(srv, inf, "reread")
    reqs = srv.admin.requests()
    assert reqs and {auth_of(r) for r in reqs} == {"Bearer tok-b"}, [auth_of(r) for r in reqs]
    assert not [r for r in reqs if r["status"] == 401]
    # a 401 makes the next request re-read the file at once (well within 60 s)
    tok.write_text("tok-c\n")
    tokens.write_text("tok-c\n")
    srv.admin.requests(clear=True)
    rewatch(srv, inf, "after-401")
    reqs = srv.admin.requests()
    assert [r for r in reqs if r["status"] == 401 and auth_of(r) == "Bearer tok-b"], reqs
    assert auth_of(reqs[-1]) == "Bearer tok-c"
    clean_exit(inf)


def test_exec_credential_cached_until_its_expiry(procs, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("exec-1\nexec-2\nexec-3\n")
    srv = procs.server(*fixtures(), "--token-file", tokens)
    runs = tmp_path / "runs"
    expiry = tmp_path / "expiry"
    plugin = tmp_path / "plugin.sh"
    plugin.write_text(f"""#!/bin/sh
echo run >> {runs}
n=$(wc -l < {runs})
printf '{{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",'
printf '"status":{{"token":"exec-%s","expirationTimestamp":"%s"}}}}' "$n" "$(cat {expiry})"
""")
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)

    def expire_in(seconds):
        t = datetime.now(timezone.utc) + timedelta(seconds=seconds)
        expiry.write_text(t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    expire_in(3600)
    kc = kubeconfig(tmp_path / "kc", srv.url, exec_={
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin)})
    inf = procs.informer("--kubeconfig", kc)
    inf.synced(SVC, EPS)
    time.sleep(1.1)
    rewatch(srv, inf, "still-cached")
    assert runs.read_text().count("run") == 1  # valid for an hour: never re-run
    # the server stops taking exec-1: the 401 re-runs the plugin, whose new credential
    # expires in a few seconds
    expire_in(4)
    tokens.write_text("".join(f"exec-{n}\n" for n in range(2, 10)))
    rewatch(srv, inf, "second")
    expire_in(3600)  # what the plugin answers from now on
    n = runs.read_text().count("run")
    assert n >= 2
    time.sleep(5)  # past the short credential's expirationTimestamp
    srv.admin.requests(clear=True)
    rewatch(srv, inf, "third")
    assert runs.read_text().count("run") > n, "an expired credential was used again"
    reqs = srv.admin.requests()
    assert not [r for r in reqs if r["status"] == 401], "expiry, not a 401, must re-run it"
    assert {auth_of(r) for r in reqs} == {f"Bearer exec-{runs.read_text().count('run')}"}
    clean_exit(inf)


def test_in_cluster_ipv6_host_is_bracketed(procs, tmp_path, certs):
    tokens = tmp_path / "tokens"
    tokens.write_text("sa-token\n")
    srv = procs.server(*fixtures(), "--tls-cert", certs / "server.crt", "--tls-key",
                       certs / "server.key", "--token-file", tokens, scheme="https",
                       cacert=certs / "ca.crt", bind="::1")
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("sa-token")
    (sa / "ca.crt").write_bytes((certs / "ca.crt").read_bytes())
    inf = procs.informer(env={"KUBERNETES_SERVICE_HOST": "::1",
                              "KUBERNETES_SERVICE_PORT": str(srv.port),
                              "KIP_TEST_SERVICEACCOUNT_DIR": str(sa)})
    inf.synced(SVC, EPS)
    in_sync(inf, srv.admin)
    clean_exit(inf)


STRACE = shutil.which("strace")


@pytest.mark.skipif(not STRACE, reason="needs strace")
@pytest.mark.skipif(VALGRIND, reason="strace of valgrind traces valgrind")
def test_client_certificate_data_is_never_written_to_a_file(procs, tmp_path, certs):
    srv = procs.server(*fixtures(), "--tls-cert", certs / "server.crt", "--tls-key",
                       certs / "server.key", "--client-ca", certs / "ca.crt",
                       scheme="https", cacert=certs / "ca.crt")
    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    kc = kubeconfig(tmp_path / "kc", srv.url, ca_data=b64(certs / "ca.crt"),
                    cert_data=b64(certs / "client.crt"), key_data=b64(certs / "client.key"))
    trace = tmp_path / "strace.out"
    # LeakSanitizer cannot run under ptrace (the other tests check for leaks)
    env = loopback_env({"TMPDIR": str(tmp_path / "tmp"),
                        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1"})
    (tmp_path / "tmp").mkdir()
    out_path = tmp_path / "dump.out"
    with open(out_path, "wb") as out:
        p = subprocess.Popen([STRACE, "-f", "-qq", "-o", str(trace), "-e",
                              "trace=open,openat,openat2,creat,memfd_create,rename,renameat2,"
                              "link,linkat,unlink,unlinkat", str(DUMP), "--kubeconfig", str(kc)],
                             stdin=subprocess.PIPE, stdout=out, stderr=subprocess.PIPE, env=env)
        try:
            srv.admin.wait_for_watch("services", timeout=20 * SLOW)
            srv.admin.wait_for_watch("endpointslices.discovery.k8s.io", timeout=20 * SLOW)
        finally:
            _, err = p.communicate(b"stop\n", timeout=30)
    assert p.returncode == 0, err.decode(errors="replace")[-2000:]
    assert b'"op":"synced"' in out_path.read_bytes(), out_path.read_bytes()[-2000:]
    calls = trace.read_text().splitlines()
    writes = [c for c in calls if re.search(r"O_(WRONLY|RDWR|CREAT|TMPFILE)", c) and
              "/dev/null" not in c and "/dev/tty" not in c] + \
        [c for c in calls if re.search(r"\b(creat|memfd_create|rename|renameat2|link|linkat|"
                                       r"unlink|unlinkat)\(", c)]
    assert not writes, "files written while holding the client key:\n" + "\n".join(writes[:20])
    assert not os.listdir(tmp_path / "tmp")
