"""pytest wiring for the node-e2e suite: one sandboxed cluster per session
(per backend), one Env per test, evidence on failure, leak checks at the end."""

import os
import shutil
import signal
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "hack", "sandbox"))

from cluster import Cluster, SandboxError  # noqa: E402
from e2elib import Env  # noqa: E402


def pytest_addoption(parser):
    g = parser.getgroup("node-e2e")
    g.addoption("--backend", default=os.environ.get("KIP_E2E_BACKEND", "nft"),
                choices=("nft", "legacy"), help="iptables backend of the daemons")
    g.addoption("--dispatch", default=os.environ.get("KIP_E2E_DISPATCH", "auto"),
                choices=("linear", "tree", "auto"),
                help="the daemons' --service-dispatch (KUBE-SERVICES layout)")
    g.addoption("--e2e-artifacts", default=None,
                help="where logs and failure evidence go (default _output/e2e/<backend>"
                "[-<dispatch>])")
    g.addoption("--e2e-nodes", type=int, default=3, help="node namespaces (>= 3)")


def _sigterm(signum, frame):
    # turn SIGTERM into KeyboardInterrupt so fixtures tear the sandbox down
    raise KeyboardInterrupt("SIGTERM")


def pytest_configure(config):
    config.addinivalue_line("markers", "core: the subset run on every backend (run.sh --core)")
    signal.signal(signal.SIGTERM, _sigterm)


def pytest_report_header(config):
    return "node-e2e: backend=%s dispatch=%s" % (config.getoption("--backend"),
                                                 config.getoption("--dispatch"))


@pytest.fixture(scope="session")
def cluster(request):
    if os.geteuid() != 0:
        pytest.skip("node e2e needs root (network namespaces)")
    backend = request.config.getoption("--backend")
    dispatch = request.config.getoption("--dispatch")
    artifacts = request.config.getoption("--e2e-artifacts") or os.path.join(
        REPO, "_output", "e2e", backend if dispatch == "auto" else backend + "-" + dispatch)
    shutil.rmtree(artifacts, ignore_errors=True)
    os.makedirs(artifacts)
    prefix = os.environ.get("KIP_E2E_PREFIX") or "kipe2e-%d-" % os.getpid()
    c = Cluster(backend, request.config.getoption("--e2e-nodes"), prefix=prefix,
                workdir=artifacts, log=lambda m: sys.stderr.write(m + "\n"), dispatch=dispatch)
    c.artifacts = artifacts
    try:
        c.up()
    except BaseException:
        c.teardown()
        raise
    yield c
    problems = c.teardown()
    if problems:
        pytest.fail("sandbox teardown: " + "; ".join(problems))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def E(cluster, request):
    env = Env(cluster, request.node.name, cluster.artifacts)
    yield env
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        path = env.dump(request.node.name)
        sys.stderr.write("evidence for %s: %s\n" % (request.node.name, path))
    env.cleanup()
    # every daemon must process the cleanup (this also puts a crash caused by
    # the test's objects on this test, not the next one)
    barrier_err = None
    try:
        cluster.barrier()
    except SandboxError as e:
        barrier_err = str(e)
    dead = [n for n in cluster.nodes if n.daemon and n.daemon.proc is not None
            and not n.daemon.alive()]
    report = []
    for n in dead:
        log = n.daemon.log(since_start=True).splitlines()
        asan = [i for i, line in enumerate(log) if "ERROR: AddressSanitizer" in line]
        excerpt = log[asan[0]:asan[0] + 14] if asan else log[-12:]
        report.append("%s exited with status %s; its log:\n    %s"
                      % (n.name, n.daemon.proc.returncode, "\n    ".join(excerpt)))
    # restart them so the rest of the suite still runs
    for n in dead:
        n.daemon.start()
        try:
            n.daemon.wait_healthy()
        except SandboxError:
            pass
    if dead:
        pytest.fail("daemon(s) exited during the test (logs in %s):\n%s"
                    % (cluster.artifacts, "\n".join(report)), pytrace=False)
    if barrier_err:
        pytest.fail("the daemons did not program the test's cleanup: " + barrier_err,
                    pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _timing():
    t0 = time.monotonic()
    yield
    sys.stderr.write("node-e2e session took %.1fs\n" % (time.monotonic() - t0))
