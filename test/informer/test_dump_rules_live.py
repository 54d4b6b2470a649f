"""--dump-rules from a live API server prints what --dump-rules --from-file prints.

Issue 3's "Done when": `--dump-rules --kubeconfig <test server kubeconfig>` prints the same
rules as `--dump-rules --from-file` of the same objects. Every realistic object set the
project has (hack/examples/cluster.yaml, the golden cases test/rules/cases/*/input.* and
upstream's cases test/rules/upstream/*/input.json, each with its own flags) is loaded into
the test API server, the objects are fetched back as the server stores them (the server
allocates and defaults fields: clusterIPs, nodePorts, healthCheckNodePort, port names...),
and the two outputs are compared byte for byte:

  - plain http with --master, the objects read back through the admin endpoint;
  - https with --kubeconfig (certificate-authority + token; the server requires the
    token), the objects read back with kubectl through that same kubeconfig, i.e. exactly
    what `kubectl get svc,endpointslices,nodes -A -o json` prints, which is what
    --from-file documents as its input.

The binary: $KIP_BIN, else the ASan build _output/asan/kube-iptables-proxy (make check),
else _output/bin/kube-iptables-proxy. Under ASan a leak in the live path fails the run.
"""

import glob
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, Server, kubeconfig, loopback_env

KUBECTL = "/usr/bin/kubectl"
TOKEN = "dump-rules-token"


def binary():
    if os.environ.get("KIP_BIN"):
        return Path(os.environ["KIP_BIN"])
    for p in (ROOT / "_output" / "asan" / "kube-iptables-proxy",
              ROOT / "_output" / "bin" / "kube-iptables-proxy"):
        if p.exists():
            return p
    pytest.fail("no kube-iptables-proxy binary: run make (or make check) first")


def cases():
    out = [pytest.param(ROOT / "hack" / "examples" / "cluster.yaml",
                        ["--hostname-override=node-a",
                         "--cluster-cidr=10.244.0.0/16,fd00:10:244::/56"],
                        id="hack-examples-cluster")]
    for d in sorted(glob.glob(str(ROOT / "test" / "rules" / "cases" / "*")) +
                    glob.glob(str(ROOT / "test" / "rules" / "upstream" / "*"))):
        inputs = sorted(glob.glob(os.path.join(d, "input.*")))
        if not inputs or not os.path.exists(os.path.join(d, "args")):
            continue
        args = Path(d, "args").read_text().split()
        out.append(pytest.param(Path(inputs[0]), args,
                                id=f"{Path(d).parent.name}-{Path(d).name}"))
    return out


CASES = cases()


def dump(args, env=None):
    p = subprocess.run([str(binary()), "--dump-rules", *map(str, args)], capture_output=True,
                       timeout=60, env=loopback_env(env))
    assert p.returncode == 0, f"--dump-rules {args} exited {p.returncode}:\n" + \
        p.stderr.decode(errors="replace")[-3000:]
    return p.stdout


@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("dump-http"), [])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certs):
    d = tmp_path_factory.mktemp("dump-tls")
    (d / "tokens").write_text(TOKEN + "\n")
    s = Server(d / "srv", ["--tls-cert", certs / "server.crt", "--tls-key", certs / "server.key",
                           "--token-file", d / "tokens"],
               scheme="https", cacert=certs / "ca.crt")
    s.kubeconfig = kubeconfig(d / "kubeconfig", s.url, ca=certs / "ca.crt", token=TOKEN)
    yield s
    s.stop()


def load(srv, path):
    """The case's objects, alone, in the server; returns how many it stores."""
    srv.admin.reset()
    return srv.admin.load(path=str(path), replace=True)["count"]


def check_equal(live, from_file, what):
    assert live.startswith(b"# IPv"), f"{what}: no rules printed:\n{live[:500]!r}"
    assert b"*nat" in live and b"COMMIT" in live, what
    if live != from_file:
        a, b = live.decode().splitlines(), from_file.decode().splitlines()
        diff = [f"-{x}" for x in a if x not in b][:20] + [f"+{x}" for x in b if x not in a][:20]
        raise AssertionError(f"{what}: --dump-rules live differs from --from-file "
                             f"(- live only, + file only):\n" + "\n".join(diff))


@pytest.mark.parametrize("path,args", CASES)
def test_live_over_http_equals_from_file(http_server, tmp_path, path, args):
    n = load(http_server, path)
    assert n > 0
    items = [o for o in http_server.admin.state()["items"]
             if o["kind"] in ("Service", "EndpointSlice", "Node")]
    assert items, "the server stores none of the case's objects"
    objs = tmp_path / "objects.json"
    objs.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    live = dump(["--master", http_server.url, *args])
    check_equal(live, dump(["--from-file", objs, *args]), path)


@pytest.mark.parametrize("path,args", CASES)
def test_live_with_tls_kubeconfig_equals_from_file(tls_server, tmp_path, path, args):
    load(tls_server, path)
    env = loopback_env({"KUBECONFIG": str(tls_server.kubeconfig), "HOME": str(tmp_path)})
    env.pop("KUBERNETES_SERVICE_HOST", None)
    got = subprocess.run([KUBECTL, "--request-timeout=20s", "get", "svc,endpointslices,nodes",
                          "-A", "-o", "json"], capture_output=True, timeout=60, env=env)
    assert got.returncode == 0, got.stderr.decode(errors="replace")
    listed = json.loads(got.stdout)
    assert listed["kind"] == "List" and listed["items"], "kubectl listed nothing"
    objs = tmp_path / "kubectl.json"
    objs.write_bytes(got.stdout)
    live = dump(["--kubeconfig", tls_server.kubeconfig, *args])
    check_equal(live, dump(["--from-file", objs, *args]), path)
    # every request of the live dump was authenticated (the server answers 401 otherwise)
    reqs = [r for r in tls_server.admin.requests() if "kube-iptables-proxy/" in
            {k.lower(): v for k, v in r["headers"].items()}.get("user-agent", "")]
    assert reqs and all(r["status"] == 200 for r in reqs), reqs


def test_live_dump_needs_the_token(tls_server, tmp_path, certs):
    """The TLS server really checks the token: a kubeconfig without it gets no rules."""
    load(tls_server, ROOT / "hack" / "examples" / "cluster.yaml")
    kc = kubeconfig(tmp_path / "kc", tls_server.url, ca=certs / "ca.crt", token="wrong")
    p = subprocess.Popen([str(binary()), "--dump-rules", "--kubeconfig", str(kc),
                          "--hostname-override=node-a"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=loopback_env())
    try:
        out, err = p.communicate(timeout=4)
    except subprocess.TimeoutExpired:
        p.terminate()  # --dump-rules keeps retrying (with backoff) while refused
        out, err = p.communicate(timeout=20)
    assert b"*nat" not in out
    assert b"status=401" in err or b"401" in err, err.decode(errors="replace")[-2000:]
