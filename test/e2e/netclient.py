#!/usr/bin/python3
"""Clients for the sandbox's pod servers (Python standard library only).

The functions open sockets in the calling thread's network namespace: the
suite calls them through Netns.call(), whose thread has entered a pod's or the
external client's namespace. Every call is bounded by a timeout and returns a
Result instead of raising, so a test can tell "refused" from "timed out" from
"unreachable".

From a shell, for an operator poking at a sandbox (`hack/node-e2e.sh up`):

    ip netns exec <pod-ns> /usr/bin/python3 test/e2e/netclient.py tcp 10.96.0.12 80
    ip netns exec <ext-ns> /usr/bin/python3 test/e2e/netclient.py udp 192.0.2.11 30001
"""

import errno
import socket
import sys
import time

# Error kinds a Result can carry.
OK, REFUSED, TIMEOUT, UNREACHABLE, RESET, CLOSED, OTHER = (
    "ok", "refused", "timeout", "unreachable", "reset", "closed", "error")


class Reply:
    """One answer line of podserver.py."""

    def __init__(self, line):
        self.line = line
        parts = line.split(" ", 3)
        if len(parts) < 3:
            raise ValueError("not a pod server answer: %r" % line)
        self.pod = parts[0]
        host, _, port = parts[1].rpartition(":")
        self.client_ip, self.client_port = host, int(port)
        proto, _, lport = parts[2].partition("/")
        self.proto, self.port = proto, int(lport)
        self.payload = parts[3] if len(parts) > 3 else ""

    def __repr__(self):
        return "Reply(%r)" % self.line


class Result:
    def __init__(self, kind, reply=None, detail="", elapsed=0.0, src=None):
        self.kind = kind
        self.reply = reply
        self.detail = detail
        self.elapsed = elapsed
        self.src = src  # (ip, port) the client used

    @property
    def ok(self):
        return self.kind == OK

    @property
    def pod(self):
        return self.reply.pod if self.reply else None

    def __repr__(self):
        if self.ok:
            return "<ok %s in %.3fs>" % (self.reply.line, self.elapsed)
        return "<%s %s after %.3fs>" % (self.kind, self.detail, self.elapsed)


def _classify(e):
    if isinstance(e, socket.timeout):
        return TIMEOUT
    if isinstance(e, ConnectionRefusedError):
        return REFUSED
    if isinstance(e, ConnectionResetError):
        return RESET
    if isinstance(e, OSError) and e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return UNREACHABLE
    return OTHER


def tcp(ip, port, payload="hello", timeout=2.0, src=None):
    """Connect, send one line, read one answer line, close."""
    t0 = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srcaddr = None
    try:
        s.settimeout(timeout)
        if src:
            s.bind(src if isinstance(src, tuple) else (src, 0))
        s.connect((ip, port))
        srcaddr = s.getsockname()[:2]
        s.sendall((payload + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            if time.monotonic() - t0 > timeout:
                raise socket.timeout("no full answer line")
            chunk = s.recv(4096)
            if not chunk:
                return Result(CLOSED, detail="connection closed without an answer",
                              elapsed=time.monotonic() - t0, src=srcaddr)
            buf += chunk
        return Result(OK, Reply(buf.decode().strip()), elapsed=time.monotonic() - t0,
                      src=srcaddr)
    except (OSError, ValueError) as e:
        return Result(_classify(e), detail=str(e), elapsed=time.monotonic() - t0, src=srcaddr)
    finally:
        s.close()


def udp(ip, port, payload="hello", timeout=2.0, src=None, sock=None):
    """Send one datagram from a connected socket (so ICMP errors are seen) and
    wait for one answer. @sock: reuse an open socket (a pinned 5-tuple)."""
    t0 = time.monotonic()
    own = sock is None
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if own:
            if src:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(src if isinstance(src, tuple) else (src, 0))
            s.connect((ip, port))
        s.settimeout(timeout)
        s.send((payload + "\n").encode())
        data = s.recv(4096)
        return Result(OK, Reply(data.decode().strip()), elapsed=time.monotonic() - t0,
                      src=s.getsockname()[:2])
    except (OSError, ValueError) as e:
        return Result(_classify(e), detail=str(e), elapsed=time.monotonic() - t0)
    finally:
        if own:
            s.close()


def many(fn, n, *args, **kw):
    """n sequential calls of fn(*args, **kw) (one thread, inside the namespace)."""
    return [fn(*args, **kw) for _ in range(n)]


class Conn:
    """A long-lived TCP connection: open it, then exchange lines on it."""

    def __init__(self, ip, port, timeout=2.0, src=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        if src:
            self.s.bind(src if isinstance(src, tuple) else (src, 0))
        self.s.connect((ip, port))
        self.local = self.s.getsockname()[:2]
        self.buf = b""

    def exchange(self, payload):
        """Send a line, return the answer Result (on this same connection)."""
        t0 = time.monotonic()
        try:
            self.s.sendall((payload + "\n").encode())
            while b"\n" not in self.buf:
                chunk = self.s.recv(4096)
                if not chunk:
                    return Result(CLOSED, detail="peer closed", elapsed=time.monotonic() - t0)
                self.buf += chunk
            line, _, self.buf = self.buf.partition(b"\n")
            return Result(OK, Reply(line.decode().strip()), elapsed=time.monotonic() - t0,
                          src=self.local)
        except (OSError, ValueError) as e:
            return Result(_classify(e), detail=str(e), elapsed=time.monotonic() - t0)

    def close(self):
        self.s.close()


def main(argv):
    if len(argv) < 4 or argv[1] not in ("tcp", "udp"):
        print("usage: netclient.py tcp|udp IP PORT [COUNT]", file=sys.stderr)
        return 2
    fn = tcp if argv[1] == "tcp" else udp
    n = int(argv[4]) if len(argv) > 4 else 1
    bad = 0
    for _ in range(n):
        r = fn(argv[2], int(argv[3]))
        print(r.reply.line if r.ok else r)
        bad += not r.ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
