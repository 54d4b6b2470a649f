"""Network namespaces for the node-e2e sandbox: create, run in, delete.

Everything the sandbox does to the kernel happens inside namespaces made here.
Processes are started with `ip netns exec` and tracked by pid; they survive
`ip netns del`, so delete() kills them by pid first, then sweeps the namespace
(`ip netns pids`) for anything they left behind, then deletes it.

Python code can also run *inside* a namespace without a process: call() and
spawn() run a function in a thread that has entered the namespace with
setns(2), so the sockets it opens live there. The thread exits when the
function returns, so it never pins a deleted namespace.
"""

import ctypes
import os
import signal
import subprocess
import threading
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class SandboxError(Exception):
    pass


def run(argv, check=True, timeout=60, **kw):
    """Run a command (bounded); raise SandboxError with its output when it fails."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise SandboxError("%s timed out after %ss" % (" ".join(argv), timeout)) from e
    if check and p.returncode != 0:
        raise SandboxError("%s exited %d: %s%s" % (" ".join(argv), p.returncode,
                                                    p.stdout[-2000:], p.stderr[-2000:]))
    return p


def list_netns():
    """Names of all named network namespaces on the machine."""
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(name):
    out = run(["ip", "netns", "pids", name], check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]


def kill_pid(pid, grace=5.0):
    """SIGTERM, then SIGKILL after @grace seconds, one pid (never by name)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:  # reap it if it is our child
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def delete_netns_by_name(name):
    """Kill every process inside namespace @name (by pid) and delete it."""
    for pid in netns_pids(name):
        kill_pid(pid, grace=2.0)
    run(["ip", "netns", "del", name], check=False)


class Netns:
    """A named network namespace with loopback up."""

    def __init__(self, name):
        self.name = name
        self.procs = []
        run(["ip", "netns", "add", name])
        self.alive = True
        self.ip("link", "set", "lo", "up")

    # -- commands ---------------------------------------------------------

    def argv(self, argv):
        return ["ip", "netns", "exec", self.name] + list(argv)

    def run(self, argv, check=True, timeout=60, **kw):
        return run(self.argv(argv), check=check, timeout=timeout, **kw)

    def ip(self, *args, check=True):
        return run(["ip", "-n", self.name] + list(args), check=check)

    def ip_batch(self, lines):
        """Several `ip` commands in one process (`ip -n NS -batch -`)."""
        return run(["ip", "-n", self.name, "-batch", "-"], input="\n".join(lines) + "\n")

    def sysctl(self, **kv):
        """Per-namespace sysctls, e.g. sysctl(**{"net.ipv4.ip_forward": 1})."""
        args = ["%s=%s" % (k, v) for k, v in kv.items()]
        return self.run(["sysctl", "-q", "-w"] + args)

    def popen(self, argv, **kw):
        """Start a process inside the namespace; tracked, killed by delete()."""
        p = subprocess.Popen(self.argv(argv), **kw)
        self.procs.append(p)
        return p

    # -- Python inside the namespace ---------------------------------------

    def _enter(self):
        fd = os.open("/run/netns/" + self.name, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, "setns(%s): %s" % (self.name, os.strerror(err)))
        finally:
            os.close(fd)

    def spawn(self, fn, *args, **kw):
        """Start fn(*args, **kw) in a thread inside this namespace; returns a
        Task whose result() joins it (bounded)."""
        return Task(self, fn, args, kw)

    def call(self, fn, *args, _timeout=120, **kw):
        """fn(*args, **kw) inside this namespace; returns its value or re-raises
        (waits at most _timeout seconds)."""
        return self.spawn(fn, *args, **kw).result(timeout=_timeout)

    # -- teardown -----------------------------------------------------------

    def delete(self):
        """Kill our processes by pid, sweep the namespace, delete it."""
        if not self.alive:
            return
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        delete_netns_by_name(self.name)
        self.alive = False


class Task:
    """A function running in a thread inside a namespace."""

    def __init__(self, ns, fn, args, kw):
        self.box = {}
        self.ns = ns

        def body():
            try:
                ns._enter()
                self.box["ret"] = fn(*args, **kw)
            except BaseException as e:  # handed to the caller of result()
                self.box["err"] = e

        self.thread = threading.Thread(target=body, daemon=True,
                                       name="in-%s" % ns.name)
        self.thread.start()

    def done(self):
        return not self.thread.is_alive()

    def result(self, timeout=120):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise SandboxError("function in namespace %s still running after %ss"
                               % (self.ns.name, timeout))
        if "err" in self.box:
            raise self.box["err"]
        return self.box.get("ret")
