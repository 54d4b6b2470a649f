"""Fixtures: a fresh test API server per test (torn down even on failure; a server that
does not shut down cleanly on SIGTERM fails the test) and a test PKI."""

import subprocess

import pytest

from testlib import HERE, TESTDATA, ServerProc

FIXTURES = [TESTDATA / "service-list.json", TESTDATA / "endpointslice-list.json"]


@pytest.fixture
def start_server(tmp_path):
    """Factory: start_server(*args, **kw) -> ServerProc; all are stopped at teardown and
    must exit 0 (graceful shutdown: no thread or socket left blocking)."""
    procs = []

    def start(*args, **kw):
        s = ServerProc(tmp_path / f"server{len(procs)}", *args, **kw)
        procs.append(s)
        return s
    yield start
    bad = []
    for s in procs:
        rc = s.stop()
        if rc != 0:
            bad.append(f"exit {rc}: {s.log_tail()}")
    assert not bad, "apiserver did not shut down cleanly: " + "\n".join(bad)


@pytest.fixture
def server(start_server):
    """A plain-HTTP server loaded with the example Services and EndpointSlices."""
    args = ["--seed", "7"]
    for f in FIXTURES:
        args += ["--fixture", f]
    return start_server(*args)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    subprocess.run(["sh", str(HERE / "gen-certs.sh"), str(d)], check=True, timeout=60,
                   capture_output=True)
    return d
