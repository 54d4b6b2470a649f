#!/usr/bin/python3
"""Client for the test API server's admin endpoint (/_admin/), for pytest suites and shells.

Python:
    from admin import Admin
    adm = Admin("http://127.0.0.1:PORT")
    adm.apply({"apiVersion": "v1", "kind": "Service", "metadata": {...}, "spec": {...}})
    adm.fault("status", code=429, verb="list", retryAfter=2)

Shell:
    admin.py --server http://127.0.0.1:PORT apply svc.json
    admin.py --server https://127.0.0.1:PORT --cacert ca.crt fail 503 --verb watch --count 2
    admin.py --server URL requests | jq .
Every command prints the server's JSON answer; a non-2xx answer exits 1.
"""

import argparse
import http.client
import json
import ssl
import sys
import time
from urllib.parse import urlsplit


class AdminError(Exception):
    """The admin endpoint answered with an error status."""

    def __init__(self, code, body):
        super().__init__(f"admin request failed ({code}): {body}")
        self.code = code
        self.body = body


class Admin:
    """Thin JSON client for /_admin/. `server` is the API server URL (http or https);
    for https pass `cacert` (or `insecure=True`) and optionally a client cert/key."""

    def __init__(self, server, cacert=None, cert=None, key=None, insecure=False,
                 timeout=60.0):
        u = urlsplit(server)
        self.https = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port or (443 if self.https else 80)
        self.timeout = timeout
        self.ctx = None
        if self.https:
            self.ctx = ssl.create_default_context(cafile=cacert)
            if insecure:
                self.ctx.check_hostname = False
                self.ctx.verify_mode = ssl.CERT_NONE
            if cert:
                self.ctx.load_cert_chain(cert, key)

    def call(self, method, action, body=None):
        """One admin request; returns the decoded JSON answer or raises AdminError."""
        if self.https:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.ctx)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, "/_admin/" + action, body=data,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        out = json.loads(raw) if raw else {}
        if resp.status >= 300:
            raise AdminError(resp.status, out)
        return out

    # -- state --

    def load(self, objects=None, path=None, replace=True):
        """Load a fixture (List / typed list / object(s), or a JSON/YAML file path on the
        server's machine). replace=True deletes every object the fixture lacks. Changes
        are emitted as watch events. Returns {"resourceVersion", "count"}."""
        body = {"replace": replace}
        if path is not None:
            body["path"] = str(path)
        else:
            body["objects"] = objects
        return self.call("POST", "load", body)

    def apply(self, obj):
        """Create or replace one object (no resourceVersion precondition); returns it."""
        return self.call("POST", "objects", {"op": "apply", "object": obj})

    def delete(self, api_version, kind, name, namespace=None):
        """Delete one object; returns its last state (with the deletion's RV)."""
        md = {"name": name}
        if namespace:
            md["namespace"] = namespace
        return self.call("POST", "objects", {"op": "delete", "object": {
            "apiVersion": api_version, "kind": kind, "metadata": md}})

    def state(self):
        """Every object (with kind/apiVersion and RV) as a v1 List, plus the current and
        compacted resourceVersions."""
        return self.call("GET", "state")

    def objects(self, kind, api_version=None):
        """Objects of one kind from state(), keyed by "namespace/name" (or name)."""
        out = {}
        for o in self.state()["items"]:
            if o["kind"] == kind and (api_version is None or o["apiVersion"] == api_version):
                md = o["metadata"]
                out[f"{md['namespace']}/{md['name']}" if "namespace" in md else md["name"]] = o
        return out

    def reset(self):
        """Drop all objects, history, faults, continue tokens and the request log; end
        all watches. The resourceVersion keeps increasing."""
        return self.call("POST", "reset", {})

    def compact(self, resource_version=None):
        """Forget watch history up to resource_version (default: all of it)."""
        body = {} if resource_version is None else {"resourceVersion": int(resource_version)}
        return self.call("POST", "compact", body)

    def expire_continue(self):
        """Make every continue token handed out so far answer 410 Expired."""
        return self.call("POST", "expire-continue", {})

    def end_watches(self):
        """End every open watch cleanly (terminating chunk)."""
        return self.call("POST", "end-watches", {})

    def config(self, **settings):
        """Change bookmarkInterval (s), chunking ("random"/"event") or continueTTL (s)."""
        return self.call("POST", "config", settings)

    # -- faults --

    def fault(self, type="status", **spec):
        """Add a fault. type "status": the next `count` requests matching method/verb/path
        (regex on path+query) answer `code` (Retry-After from retryAfter). Watch faults
        "drop", "stall" (seconds), "garbage", "oversized" (bytes) attach to the next
        `count` matching watches and fire after `after` events."""
        return self.call("POST", "faults", {"type": type, **spec})

    def fail(self, code, **spec):
        """Shorthand for fault("status", code=code, ...)."""
        return self.fault("status", code=code, **spec)

    def faults(self):
        return self.call("GET", "faults")["faults"]

    def clear_faults(self):
        return self.call("DELETE", "faults")["faults"]

    def refuse(self, seconds, drop_existing=False):
        """Close the listening socket for `seconds` (connections are refused), then listen
        again on the same port; drop_existing also cuts every open connection."""
        return self.call("POST", "refuse", {"seconds": seconds, "dropExisting": drop_existing})

    # -- observation --

    def requests(self, clear=False):
        """The API requests seen so far (method, path, headers, status), oldest first."""
        return self.call("DELETE" if clear else "GET", "requests")["requests"]

    def watches(self):
        """Open watches: id, resource, namespace, path, user, started, sent (events)."""
        return self.call("GET", "watches")["watches"]

    def wait_for_watch(self, resource, count=1, timeout=10.0):
        """Wait until at least `count` watches on `resource` (e.g. "services",
        "endpointslices.discovery.k8s.io") are open; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            ws = [w for w in self.watches() if w["resource"] == resource]
            if len(ws) >= count:
                return ws
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {count} watch(es) on {resource} within {timeout}s")
            time.sleep(0.05)


def _read_objects(path):
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    try:
        return json.loads(text)
    except ValueError:
        import yaml  # python3-yaml; the server accepts JSON only from this CLI
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
        return docs[0] if len(docs) == 1 else docs


def main(argv=None):
    p = argparse.ArgumentParser(description="Drive the test API server's admin endpoint.")
    p.add_argument("--server", required=True, help="API server URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--cacert", help="CA bundle for an https server")
    p.add_argument("--cert", help="client certificate (https)")
    p.add_argument("--key", help="client key (https)")
    p.add_argument("--insecure", action="store_true", help="skip server certificate checks")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("load", help="load a fixture file read by the server")
    c.add_argument("path")
    c.add_argument("--merge", action="store_true", help="keep objects the fixture lacks")
    c = sub.add_parser("apply", help="create/replace the object(s) in a JSON/YAML file (- = stdin)")
    c.add_argument("path")
    c = sub.add_parser("delete", help="delete one object")
    c.add_argument("--api-version", default="v1")
    c.add_argument("--kind", default="Service")
    c.add_argument("-n", "--namespace")
    c.add_argument("name")
    for name in ("state", "reset", "expire-continue", "end-watches", "requests", "watches",
                 "faults", "clear-faults"):
        sub.add_parser(name)
    c = sub.add_parser("compact", help="forget watch history (up to --rv)")
    c.add_argument("--rv", type=int)
    c = sub.add_parser("fail", help="answer the next requests with an error status")
    c.add_argument("code", type=int)
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--verb", help="get, list, watch, create, update, patch, delete")
    c.add_argument("--method", help="HTTP method")
    c.add_argument("--path", help="regex searched in path+query")
    c.add_argument("--retry-after", type=int)
    c.add_argument("--message")
    c = sub.add_parser("watch-fault", help="break the next watch(es)")
    c.add_argument("type", choices=("drop", "stall", "garbage", "oversized"))
    c.add_argument("--after", type=int, default=0, help="events sent before it fires")
    c.add_argument("--seconds", type=float, help="stall length")
    c.add_argument("--bytes", type=int, help="oversized event size")
    c.add_argument("--reset", action="store_true", help="drop with a TCP RST")
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--path", help="regex searched in path+query")
    c = sub.add_parser("refuse", help="stop listening for a while")
    c.add_argument("seconds", type=float)
    c.add_argument("--drop-existing", action="store_true")
    c = sub.add_parser("config", help="change runtime settings")
    c.add_argument("--bookmark-interval", type=float)
    c.add_argument("--chunking", choices=("random", "event"))
    c.add_argument("--continue-ttl", type=float)
    a = p.parse_args(argv)

    adm = Admin(a.server, cacert=a.cacert, cert=a.cert, key=a.key, insecure=a.insecure)
    opt = {k: v for k, v in vars(a).items() if v is not None}
    cmd = a.cmd
    try:
        if cmd == "load":
            out = adm.load(path=a.path, replace=not a.merge)
        elif cmd == "apply":
            objs = _read_objects(a.path)
            out = [adm.apply(o) for o in (objs if isinstance(objs, list) else [objs])]
        elif cmd == "delete":
            out = adm.delete(a.api_version, a.kind, a.name, a.namespace)
        elif cmd == "compact":
            out = adm.compact(a.rv)
        elif cmd == "fail":
            spec = {k: opt[k] for k in ("count", "verb", "method", "path", "message") if k in opt}
            if a.retry_after is not None:
                spec["retryAfter"] = a.retry_after
            out = adm.fail(a.code, **spec)
        elif cmd == "watch-fault":
            spec = {k: opt[k] for k in ("after", "seconds", "bytes", "count", "path") if k in opt}
            out = adm.fault(a.type, reset=a.reset, **spec)
        elif cmd == "refuse":
            out = adm.refuse(a.seconds, a.drop_existing)
        elif cmd == "config":
            names = {"bookmark_interval": "bookmarkInterval", "chunking": "chunking",
                     "continue_ttl": "continueTTL"}
            out = adm.config(**{v: opt[k] for k, v in names.items() if k in opt})
        else:
            out = {"state": adm.state, "reset": adm.reset,
                   "expire-continue": adm.expire_continue, "end-watches": adm.end_watches,
                   "requests": adm.requests, "watches": adm.watches, "faults": adm.faults,
                   "clear-faults": adm.clear_faults}[cmd]()
    except AdminError as e:
        print(json.dumps(e.body, indent=2), file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
