#!/usr/bin/python3
"""A project-owned test Kubernetes API server (Python 3 standard library only).

It serves Services, EndpointSlices, Nodes and Events the way kube-apiserver does for
list/watch clients: typed JSON lists, resourceVersion semantics, expiring continue tokens,
chunked watch streams (with chunk boundaries deliberately unrelated to event boundaries),
bookmarks, the in-stream 410 for a too-old resourceVersion, streaming lists
(sendInitialEvents), label/field selectors, Status errors, bearer tokens and TLS/mTLS.
An admin API under /_admin/ drives state changes and injects faults; see README.md.

Run: /usr/bin/python3 test/apiserver/apiserver.py --port 0 --port-file /tmp/port -v 1
Loopback only: --bind must be a loopback address.
"""

import argparse
import base64
import bisect
import collections
import datetime
import gzip
import http.server
import ipaddress
import json
import os
import random
import re
import select
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import traceback
import uuid
from urllib.parse import parse_qs, urlsplit

try:
    import yaml
except ImportError:  # YAML fixtures and apply-patch+yaml then need JSON input
    yaml = None

# ---------------------------------------------------------------------------
# Resource types
# ---------------------------------------------------------------------------

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


class ResourceType:
    """One served resource: its group/version/plural, kind and bookmark zero object."""

    def __init__(self, group, version, plural, singular, kind, namespaced, zero,
                 short_names=()):
        self.group = group
        self.version = version
        self.plural = plural
        self.singular = singular
        self.kind = kind
        self.namespaced = namespaced
        self.zero = zero  # typed zero object fields after metadata (BOOKMARK shape)
        self.short_names = list(short_names)
        self.api_version = f"{group}/{version}" if group else version
        self.list_kind = kind + "List"
        self.key = f"{plural}.{group}" if group else plural
        # Prefix that turns a list item (no kind/apiVersion) into a watch-event object.
        self.watch_prefix = dumps({"kind": kind, "apiVersion": self.api_version})[:-1] + b","

    def discovery(self):
        """The APIResourceList entry for this resource."""
        d = {"name": self.plural, "singularName": self.singular,
             "namespaced": self.namespaced, "kind": self.kind, "verbs": VERBS}
        if self.short_names:
            d["shortNames"] = self.short_names
        return d


def dumps(obj):
    """Compact JSON bytes, UTF-8, as the Go encoder writes them (no spaces)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def clone(value):
    """Deep copy of a JSON value (several times faster than copy.deepcopy)."""
    return json.loads(json.dumps(value))


RESOURCES = [
    ResourceType("", "v1", "services", "service", "Service", True,
                 {"spec": {}, "status": {"loadBalancer": {}}}, ["svc"]),
    ResourceType("", "v1", "nodes", "node", "Node", False,
                 {"spec": {}, "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                                         "nodeInfo": {"machineID": "", "systemUUID": "",
                                                      "bootID": "", "kernelVersion": "",
                                                      "osImage": "",
                                                      "containerRuntimeVersion": "",
                                                      "kubeletVersion": "",
                                                      "kubeProxyVersion": "",
                                                      "operatingSystem": "",
                                                      "architecture": ""}}}, ["no"]),
    ResourceType("", "v1", "events", "event", "Event", True,
                 {"involvedObject": {}, "source": {}, "firstTimestamp": None,
                  "lastTimestamp": None, "eventTime": None, "reportingComponent": "",
                  "reportingInstance": ""}, ["ev"]),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice",
                 True, {"addressType": "", "endpoints": None, "ports": None}),
    ResourceType("events.k8s.io", "v1", "events", "event", "Event", True,
                 {"eventTime": None, "regarding": {}, "deprecatedSource": {},
                  "deprecatedFirstTimestamp": None, "deprecatedLastTimestamp": None}, ["ev"]),
]
BY_PATH = {(rt.group, rt.version, rt.plural): rt for rt in RESOURCES}
BY_KIND = {(rt.api_version, rt.kind): rt for rt in RESOURCES}
GROUP_VERSIONS = {}  # (group, version) -> [ResourceType]
for _rt in RESOURCES:
    GROUP_VERSIONS.setdefault((_rt.group, _rt.version), []).append(_rt)

PUBLIC_PATHS = {"/version", "/healthz", "/livez", "/readyz"}
MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request body limit
GZIP_MIN = 128 * 1024  # kube-apiserver compresses responses above 128 KiB
WATCH_QUEUE_MAX = 200000  # a watcher this far behind is closed, as the cacher does
SNAPSHOT_MAX = 64  # list snapshots kept for continue tokens

# ---------------------------------------------------------------------------
# Status errors
# ---------------------------------------------------------------------------

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
           413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
           429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
           504: "Timeout"}


def status_obj(code, reason, message, details=None, metadata=None):
    """A metav1.Status failure object, field order as the apiserver writes it."""
    s = {"kind": "Status", "apiVersion": "v1", "metadata": metadata or {},
         "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        s["details"] = details
    s["code"] = code
    return s


class ApiError(Exception):
    """An error answered as an HTTP status with a Status body."""

    def __init__(self, code, message, reason=None, details=None, metadata=None, headers=()):
        super().__init__(message)
        self.code = code
        self.status = status_obj(code, reason if reason is not None else REASONS.get(code, ""),
                                 message, details, metadata)
        self.headers = list(headers)


def err_details(rt, name=None):
    d = {}
    if name is not None:
        d["name"] = name
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.plural
    return d


def resource_ref(rt):
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def not_found(rt, name):
    return ApiError(404, f'{resource_ref(rt)} "{name}" not found', details=err_details(rt, name))


def conflict(rt, name):
    return ApiError(409, f'Operation cannot be fulfilled on {resource_ref(rt)} "{name}": the '
                    "object has been modified; please apply your changes to the latest "
                    "version and try again", details=err_details(rt, name))


def invalid(kind_group, name, field, ftype, detail):
    """A 422 Invalid error with one field cause (field.ErrorList of one)."""
    msg = f"{ftype}: {detail}"
    group, kind = kind_group
    gk = f"{kind}.{group}" if group else kind
    d = {"name": name, "kind": kind,
         "causes": [{"reason": "Field" + ftype.replace(" ", ""), "message": msg,
                     "field": field}]}
    if group:
        d["group"] = group
    return ApiError(422, f'{gk} "{name}" is invalid: {field}: {msg}', details=d)


def list_options_invalid(field, ftype, detail):
    return invalid(("meta.k8s.io", "ListOptions"), "", field, ftype, detail)


def too_large_rv(rv, current):
    return ApiError(504, f"Timeout: Too large resource version: {rv}, current: {current}",
                    details={"causes": [{"reason": "ResourceVersionTooLarge",
                                         "message": "Too large resource version"}],
                             "retryAfterSeconds": 1})


def injected_error(code, rt, verb, user, namespace, message, retry_after):
    """The Status a fault injection answers with, worded like the real apiserver."""
    headers = []
    details = None
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    if code == 401:
        message = message or "Unauthorized"
    elif code == 403 and rt is not None:
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        message = message or (f'{resource_ref(rt)} is forbidden: User "{user}" cannot {verb} '
                              f'resource "{rt.plural}" in API group "{rt.group}" {scope}')
        details = {"group": rt.group, "kind": rt.plural} if rt.group else {"kind": rt.plural}
    elif code == 429:
        message = message or "Too many requests, please try again later."
        details = {"retryAfterSeconds": retry_after if retry_after is not None else 1}
        if retry_after is None:
            headers.append(("Retry-After", "1"))
    elif code == 500:
        message = "Internal error occurred: " + (message or "injected fault")
        details = {"causes": [{"message": message}]}
    elif code == 504:
        message = message or "Timeout: request did not complete within the allotted timeout"
    return ApiError(code, message or f"injected fault ({code})", details=details,
                    headers=headers)


# ---------------------------------------------------------------------------
# Selectors
# ---------------------------------------------------------------------------

_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_SET_TERM = re.compile(r"\s*([^\s!=]+)\s+(in|notin)\s+\((.*)\)\s*")


def _check_label_key(key):
    prefix, _, name = key.rpartition("/")
    if (not name or len(name) > 63 or not _LABEL_NAME.fullmatch(name)
            or (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)))):
        raise ApiError(400, f"unable to parse requirement: invalid label key {key!r}")


def _check_label_value(value):
    if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
        raise ApiError(400, f"unable to parse requirement: invalid label value {value!r}")


def _split_terms(s):
    """Split a selector on commas that are not inside parentheses."""
    terms, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return [t.strip() for t in terms]


def parse_label_selector(s):
    """Parse a labelSelector into a predicate over a labels dict (None = match all).

    Supports key, !key, key=v, key==v, key!=v, key in (a,b), key notin (a,b); comma = AND.
    Raises ApiError(400) for a malformed selector.
    """
    if not s.strip():
        return None
    reqs = []
    for t in _split_terms(s):
        m = _SET_TERM.fullmatch(t)
        if m:
            key, op = m.group(1), m.group(2)
            values = {v.strip() for v in m.group(3).split(",")}
            for v in values:
                _check_label_value(v)
        elif t.startswith("!"):
            key, op, values = t[1:].strip(), "!", None
        elif "!=" in t:
            key, _, v = t.partition("!=")
            op, values = "!=", v.strip()
        elif "==" in t:
            key, _, v = t.partition("==")
            op, values = "=", v.strip()
        elif "=" in t:
            key, _, v = t.partition("=")
            op, values = "=", v.strip()
        else:
            key, op, values = t, "exists", None
        key = key.strip()
        _check_label_key(key)
        if isinstance(values, str):
            _check_label_value(values)
        reqs.append((key, op, values))

    def match(labels):
        for key, op, values in reqs:
            has = key in labels
            if op == "exists" and not has:
                return False
            if op == "!" and has:
                return False
            if op == "=" and labels.get(key) != values:
                return False
            if op == "!=" and has and labels[key] == values:
                return False
            if op == "in" and labels.get(key) not in values:
                return False
            if op == "notin" and has and labels[key] in values:
                return False
        return True

    return match


FIELD_GETTERS = {"metadata.name": lambda e: e.name, "metadata.namespace": lambda e: e.namespace}


def parse_field_selector(s):
    """Parse a fieldSelector (metadata.name / metadata.namespace, =, ==, !=) into a predicate
    over an Entry (None = match all). Unsupported fields raise ApiError(400) as upstream."""
    if not s.strip():
        return None
    reqs = []
    for t in s.split(","):
        t = t.strip()
        for op in ("!=", "==", "="):
            if op in t:
                field, _, value = t.partition(op)
                break
        else:
            raise ApiError(400, f"invalid selector: '{s}'; can't understand '{t}'")
        field = field.strip()
        if field not in FIELD_GETTERS:
            raise ApiError(400, f'field label not supported: {field}')
        reqs.append((FIELD_GETTERS[field], op == "!=", value.strip()))

    def match(entry):
        return all((get(entry) == value) != negate for get, negate, value in reqs)

    return match


def make_matcher(label_sel, field_sel):
    """Combine parsed selectors into one predicate over an Entry (None = match all)."""
    if label_sel is None and field_sel is None:
        return None
    return lambda e: ((label_sel is None or label_sel(e.labels))
                      and (field_sel is None or field_sel(e)))


# ---------------------------------------------------------------------------
# Patches
# ---------------------------------------------------------------------------

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# Lists that strategic merge patch merges by key instead of replacing (patchMergeKey).
SMP_MERGE_KEYS = {
    ("spec", "ports"): "port",  # Service
    ("status", "conditions"): "type",  # Node, Service
    ("status", "addresses"): "type",  # Node
    ("metadata", "ownerReferences"): "uid",
}
SMP_SET_LISTS = {("metadata", "finalizers")}  # primitive lists merged as sets


def _strip_directives(v):
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items()
                if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v]
    return v


def strategic_merge_patch(orig, patch, path=()):
    """A subset of Kubernetes strategic merge patch, enough for kubectl apply/patch.

    Maps merge recursively (null deletes); lists in SMP_MERGE_KEYS merge by key and honour
    element {"$patch": "delete"} and "$setElementOrder/<field>"; finalizers merge as a set;
    "$patch: replace", "$retainKeys" and "$deleteFromPrimitiveList/<field>" are honoured;
    all other lists are replaced, as for JSON merge patch.
    """
    if not isinstance(patch, dict) or not isinstance(orig, dict):
        return _strip_directives(clone(patch))
    if patch.get("$patch") == "replace":
        return _strip_directives(patch)
    result = clone(orig)
    orders = {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
        elif k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            result[field] = [x for x in result.get(field) or [] if x not in v]
        elif k.startswith("$"):
            continue
        elif v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            if v.get("$patch") == "delete":
                result.pop(k, None)
            else:
                result[k] = strategic_merge_patch(result.get(k, {}), v, path + (k,))
        elif isinstance(v, list) and isinstance(result.get(k), list):
            sub = path[-1:] + (k,)
            if sub in SMP_MERGE_KEYS:
                result[k] = _merge_keyed_list(result[k], v, SMP_MERGE_KEYS[sub], path + (k,))
            elif sub in SMP_SET_LISTS:
                result[k] = result[k] + [x for x in v if x not in result[k]]
            else:
                result[k] = _strip_directives(v)
        else:
            result[k] = _strip_directives(clone(v))
    for field, order in orders.items():
        key = SMP_MERGE_KEYS.get(path[-1:] + (field,))
        if isinstance(result.get(field), list):
            result[field] = _reorder(result[field], order, key)
    if "$retainKeys" in patch:
        keep = set(patch["$retainKeys"])
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _merge_keyed_list(orig, patch, key, path):
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch):
        return [_strip_directives(e) for e in patch
                if not (isinstance(e, dict) and e.get("$patch") == "replace")]
    result = clone(orig)
    for e in patch:
        idx = None
        if isinstance(e, dict) and key in e:
            idx = next((i for i, o in enumerate(result)
                        if isinstance(o, dict) and o.get(key) == e[key]), None)
        if isinstance(e, dict) and e.get("$patch") == "delete":
            if idx is not None:
                del result[idx]
        elif idx is None:
            result.append(_strip_directives(e))
        else:
            result[idx] = strategic_merge_patch(result[idx], e, path)
    return result


def _reorder(items, order, key):
    def ident(x):
        return x.get(key) if key and isinstance(x, dict) else x
    wanted = [ident(o) for o in order]
    pos = {w: i for i, w in enumerate(wanted) if isinstance(w, (str, int, float))}
    return sorted(items, key=lambda x: pos.get(ident(x), len(pos)))


def _pointer(doc, ptr):
    """Resolve a JSON pointer to (parent container, last token)."""
    if not ptr.startswith("/"):
        raise ValueError(f"invalid JSON pointer {ptr!r}")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in ptr[1:].split("/")]
    cur = doc
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    return cur, parts[-1]


def json_patch(doc, ops):
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    doc = clone(doc)
    for op in ops:
        kind = op.get("op")
        if kind in ("move", "copy"):
            src, tok = _pointer(doc, op["from"])
            value = src[int(tok)] if isinstance(src, list) else src[tok]
            if kind == "move":
                del src[int(tok) if isinstance(src, list) else tok]
            op = {"op": "add", "path": op["path"], "value": clone(value)}
            kind = "add"
        parent, tok = _pointer(doc, op["path"])
        if kind == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if tok == "-" else int(tok), op["value"])
            else:
                parent[tok] = op["value"]
        elif kind == "remove":
            del parent[int(tok) if isinstance(parent, list) else tok]
        elif kind == "replace":
            idx = int(tok) if isinstance(parent, list) else tok
            if not isinstance(parent, list) and tok not in parent:
                raise KeyError(tok)
            parent[idx] = op["value"]
        elif kind == "test":
            if (parent[int(tok)] if isinstance(parent, list) else parent.get(tok)) != op["value"]:
                raise ValueError(f"test operation failed at {op['path']}")
        else:
            raise ValueError(f"unknown JSON patch op {kind!r}")
    return doc


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

if yaml is not None:
    class _StringTimestampLoader(yaml.SafeLoader):
        """SafeLoader that keeps timestamps as strings, as Kubernetes YAML means them."""

    _StringTimestampLoader.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in rs if tag != "tag:yaml.org,2002:timestamp"]
        for ch, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def parse_documents(text):
    """Parse JSON, or one or more YAML documents; returns a list of documents."""
    try:
        return [json.loads(text)]
    except ValueError:
        if yaml is None:
            raise
    return [d for d in yaml.load_all(text, Loader=_StringTimestampLoader) if d is not None]


def fixture_objects(doc):
    """Flatten a List / typed list / object / list of those into (ResourceType, obj) pairs.

    Items of a typed list (no kind/apiVersion of their own) take them from the list.
    Raises ValueError for a kind this server does not serve.
    """
    if isinstance(doc, list):
        return [pair for d in doc for pair in fixture_objects(d)]
    if not isinstance(doc, dict):
        raise ValueError("fixture documents must be objects")
    kind, api = doc.get("kind", ""), doc.get("apiVersion", "")
    if "items" in doc and (kind == "List" or kind.endswith("List") or not kind):
        out = []
        for item in doc.get("items") or []:
            item = dict(item)
            if kind.endswith("List") and kind != "List":
                item.setdefault("kind", kind[:-4])
                item.setdefault("apiVersion", api)
            out.extend(fixture_objects(item))
        return out
    rt = BY_KIND.get((api, kind))
    if rt is None:
        raise ValueError(f"unsupported kind {api} {kind}")
    return [(rt, doc)]


# ---------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------

def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Entry:
    """One stored object version. `item` is the pre-serialised list item (no kind)."""

    __slots__ = ("rt", "obj", "rv", "key", "namespace", "name", "labels", "item")

    def __init__(self, rt, obj):
        md = obj["metadata"]
        self.rt = rt
        self.obj = obj
        self.rv = int(md.get("resourceVersion") or 0)
        self.namespace = md.get("namespace", "")
        self.name = md["name"]
        self.key = f"{self.namespace}/{self.name}" if rt.namespaced else self.name
        self.labels = md.get("labels") or {}
        self.item = dumps(obj)

    def watch_object(self):
        """The object as a watch event or single GET carries it: with kind/apiVersion."""
        return self.rt.watch_prefix + self.item[1:]

    def full(self):
        """A dict copy with kind/apiVersion first, as single-object responses carry it."""
        return {"kind": self.rt.kind, "apiVersion": self.rt.api_version, **self.obj}


class HistEvent:
    """A change in the event history. For DELETED, `new` is the last state carrying the
    deletion's resourceVersion (what a DELETED watch event sends)."""

    __slots__ = ("rv", "rt", "type", "new", "old")

    def __init__(self, rv, rt, etype, new, old):
        self.rv, self.rt, self.type, self.new, self.old = rv, rt, etype, new, old


class Watcher:
    """A registered watch: the store appends matching-resource events to `queue`."""

    _ids = iter(range(1, 1 << 62))

    def __init__(self, rt, namespace, match, info):
        self.id = next(Watcher._ids)
        self.rt = rt
        self.namespace = namespace
        self.match = match
        self.info = info  # path, user, start time: shown by /_admin/watches
        self.queue = collections.deque()
        self.ended = None  # None, "clean" (end the stream), "abort" (drop the connection)
        self.sent = 0

    def push(self, ev):
        if len(self.queue) >= WATCH_QUEUE_MAX:
            self.ended = self.ended or "clean"  # the cacher closes watchers that fall behind
        else:
            self.queue.append(ev)


class Allocator:
    """ClusterIP (10.96.0.0/12) and NodePort (30000-32767) allocation for Services."""

    def __init__(self):
        self.ips = collections.Counter()
        self.ports = collections.Counter()
        self.next_ip = 10
        self.next_port = 30000

    @staticmethod
    def _used(obj):
        spec = obj.get("spec") or {}
        ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")])
               if ip and ip != "None"]
        ports = [p.get("nodePort") for p in spec.get("ports") or [] if p.get("nodePort")]
        if spec.get("healthCheckNodePort"):
            ports.append(spec["healthCheckNodePort"])
        return ips, ports

    def track(self, old, new):
        """Account for a Service replacing `old` by `new` (either may be None)."""
        for obj, d in ((old, -1), (new, 1)):
            if obj is not None:
                ips, ports = self._used(obj)
                self.ips.update({ip: d for ip in ips})
                self.ports.update({p: d for p in ports})

    def ip(self):
        base = int(ipaddress.IPv4Address("10.96.0.0"))
        for _ in range(1 << 20):
            cand = str(ipaddress.IPv4Address(base + self.next_ip))
            self.next_ip = self.next_ip % ((1 << 20) - 2) + 1
            if self.ips[cand] <= 0:
                return cand
        raise ApiError(500, "Internal error occurred: failed to allocate a serviceIP: "
                            "range is full")

    def port(self, taken):
        """A free NodePort not in `taken` (ports this Service already holds)."""
        for _ in range(2768):
            cand = self.next_port
            self.next_port = 30000 + (self.next_port - 30000 + 1) % 2768
            if self.ports[cand] <= 0 and cand not in taken:
                taken.add(cand)
                return cand
        raise ApiError(500, "Internal error occurred: failed to allocate a nodePort: range is full")


def default_service(obj, old, alloc):
    """Defaulting and allocation the apiserver does for a Service create/update."""
    spec = obj.setdefault("spec", {})
    ospec = (old or {}).get("spec") or {}
    stype = spec.setdefault("type", "ClusterIP")
    # Updates keep allocated values the new object omits (service REST patchAllocatedValues),
    # then ClusterIP and ClusterIPs are brought in line (normalizeClusterIPs): a changed
    # clusterIP with the old clusterIPs means clusterIPs = [clusterIP]. (The real server then
    # refuses the change as immutable; this one, loading fixtures, accepts it.)
    if old is not None and ospec.get("type", "ClusterIP") != "ExternalName" and \
            stype != "ExternalName":
        if not spec.get("clusterIP") and ospec.get("clusterIP"):
            spec["clusterIP"] = ospec["clusterIP"]
        if not spec.get("clusterIPs") and ospec.get("clusterIPs"):
            spec["clusterIPs"] = clone(ospec["clusterIPs"])
        if spec.get("clusterIP") != ospec.get("clusterIP") and \
                spec.get("clusterIPs") == ospec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        if spec.get("clusterIPs") == ospec.get("clusterIPs"):
            for f in ("ipFamilies", "ipFamilyPolicy"):
                if f not in spec and f in ospec:
                    spec[f] = clone(ospec[f])

    def needs_hc(s):
        return s.get("type") == "LoadBalancer" and s.get("externalTrafficPolicy") == "Local"
    if old is not None and needs_hc(ospec):
        if needs_hc(spec) and not spec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = ospec.get("healthCheckNodePort")
        elif not needs_hc(spec) and \
                spec.get("healthCheckNodePort") == ospec.get("healthCheckNodePort"):
            spec.pop("healthCheckNodePort", None)  # released, as updateHealthCheckNodePort does
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                 for p in ospec.get("ports") or []}
    taken = {p.get("nodePort") for p in spec.get("ports") or []} | set(old_ports.values())
    for p in spec.get("ports") or []:
        p.setdefault("protocol", "TCP")
        p.setdefault("targetPort", p.get("port"))
        if stype in ("NodePort", "LoadBalancer") and not p.get("nodePort"):
            p["nodePort"] = old_ports.get((p.get("port"), p["protocol"])) or alloc.port(taken)
    if stype != "ExternalName":
        if not spec.get("clusterIP"):
            spec["clusterIP"] = (spec.get("clusterIPs") or [None])[0] or alloc.ip()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        if spec["clusterIP"] == "None":
            spec.setdefault("ipFamilies", ["IPv4"])
        else:
            spec.setdefault("ipFamilies", ["IPv6" if ":" in ip else "IPv4"
                                           for ip in spec["clusterIPs"]])
        spec.setdefault("ipFamilyPolicy", "SingleStack" if len(spec["ipFamilies"]) < 2
                        else "RequireDualStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    spec.setdefault("sessionAffinity", "None")
    if stype in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if stype == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
        if spec["externalTrafficPolicy"] == "Local" and not spec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = alloc.port(taken)
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def default_endpointslice(obj, old):
    """EndpointSlice port defaulting and generation (bumped when the content changes)."""
    for p in obj.get("ports") or []:
        p.setdefault("name", "")
        p.setdefault("protocol", "TCP")
    content = {k: v for k, v in obj.items() if k not in ("metadata", "kind", "apiVersion")}
    gen = obj["metadata"].get("generation", 1)
    if old is not None:
        old_content = {k: v for k, v in old.items() if k != "metadata"}
        gen = old["metadata"].get("generation", 1) + (content != old_content)
    obj["metadata"]["generation"] = gen


_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_META_ORDER = ("name", "generateName", "namespace", "uid", "resourceVersion", "generation",
               "creationTimestamp")


def ordered_metadata(md):
    """ObjectMeta with its fields in the order the Go encoder writes them."""
    out = {k: md[k] for k in _META_ORDER if k in md}
    out.update((k, v) for k, v in md.items() if k not in out)
    return out


class Store:
    """All objects, a global resourceVersion counter and a bounded event history.

    Every mutation takes `cond`'s lock, bumps the RV, appends a HistEvent, fans it out to
    the watchers of that resource and notifies them. RVs are never reused, not even by
    reset, so a client can never confuse two states.
    """

    def __init__(self, history_limit):
        self.cond = threading.Condition()
        self.rv = 0
        self.history_limit = history_limit
        self.history = collections.deque()
        self.compacted = 0  # every event with rv > compacted is in history
        self.objects = {rt.key: {} for rt in RESOURCES}
        self._sorted = {}  # rt.key -> sorted key list, dropped on add/delete
        self.watchers = set()
        self.alloc = Allocator()

    # -- helpers (lock held) --

    def _commit(self, rt, etype, new, old):
        ev = HistEvent(self.rv, rt, etype, new, old)
        objs = self.objects[rt.key]
        if etype == "DELETED":
            del objs[old.key]
        else:
            objs[new.key] = new
        if etype != "MODIFIED":
            self._sorted.pop(rt.key, None)
        if rt.key == "services":
            self.alloc.track(old.obj if old else None, new.obj if etype != "DELETED" else None)
        self.history.append(ev)
        while len(self.history) > self.history_limit:
            self.compacted = self.history.popleft().rv
        if self.history_limit == 0:
            self.compacted = self.rv
        for w in self.watchers:
            if w.rt is rt:
                w.push(ev)
        self.cond.notify_all()

    def _sorted_keys(self, rt):
        keys = self._sorted.get(rt.key)
        if keys is None:
            keys = self._sorted[rt.key] = sorted(self.objects[rt.key])
        return keys

    def _prepare(self, rt, obj, old, namespace=None, owned=False):
        """Normalise an incoming object: strip kind/apiVersion, fill server-set metadata,
        apply defaulting. `old` is the stored Entry being replaced (or None). Works on a
        copy unless `owned` (the caller hands over an object nothing else references)."""
        obj = {k: v for k, v in (obj if owned else clone(obj)).items()
               if k not in ("kind", "apiVersion")}
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise ApiError(400, "metadata must be an object")
        if rt.namespaced:
            ns = md.get("namespace") or namespace or "default"
            if namespace and ns != namespace:
                raise ApiError(400, "the namespace of the provided object does not match "
                                    "the namespace sent on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            if not md.get("generateName") or old is not None:
                raise invalid((rt.group, rt.kind), "", "metadata.name", "Required value",
                              "name or generateName is required")
            md["name"] = md["generateName"] + "".join(random.choice(_NAME_CHARS)
                                                      for _ in range(5))
        name = md["name"]
        pattern = _DNS_LABEL if rt.kind == "Service" else _DNS_SUBDOMAIN
        if len(name) > (63 if rt.kind == "Service" else 253) or not pattern.fullmatch(name):
            raise invalid((rt.group, rt.kind), name, "metadata.name", "Invalid value",
                          f'"{name}": must be a lowercase RFC 1123 '
                          f'{"label" if rt.kind == "Service" else "subdomain"}')
        if old is not None:
            md["uid"] = old.obj["metadata"]["uid"]
            md["creationTimestamp"] = old.obj["metadata"]["creationTimestamp"]
        else:
            md.setdefault("uid", str(uuid.uuid4()))
            md.setdefault("creationTimestamp", now_rfc3339())
        if rt.kind == "Service":
            default_service(obj, old.obj if old else None, self.alloc)
        elif rt.kind == "EndpointSlice":
            default_endpointslice(obj, old.obj if old else None)
        return obj

    def _write(self, rt, obj, old, namespace=None, dry_run=False, owned=False):
        """Prepare and store `obj` (create if old is None, else update). An update that
        changes nothing keeps the old RV and emits no event, like etcd3 GuaranteedUpdate."""
        obj = self._prepare(rt, obj, old, namespace, owned)
        if old is None and self.key_for(rt, obj["metadata"].get("namespace"),
                                        obj["metadata"]["name"]) in self.objects[rt.key]:
            name = obj["metadata"]["name"]
            raise ApiError(409, f'{resource_ref(rt)} "{name}" already exists',
                           reason="AlreadyExists", details=err_details(rt, name))
        if old is not None:
            obj["metadata"]["resourceVersion"] = old.obj["metadata"]["resourceVersion"]
            obj["metadata"] = ordered_metadata(obj["metadata"])
            if obj == old.obj:
                return old
        if dry_run:
            if old is None:
                obj["metadata"].pop("resourceVersion", None)
            return Entry(rt, obj)
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        obj["metadata"] = ordered_metadata(obj["metadata"])
        entry = Entry(rt, obj)
        self._commit(rt, "MODIFIED" if old else "ADDED", entry, old)
        return entry

    def _delete(self, rt, old):
        self.rv += 1
        last = clone(old.obj)
        last["metadata"]["resourceVersion"] = str(self.rv)
        gone = Entry(rt, last)
        self._commit(rt, "DELETED", gone, old)
        return gone

    @staticmethod
    def key_for(rt, namespace, name):
        return f"{namespace}/{name}" if rt.namespaced else name

    # -- API verbs --

    def get(self, rt, namespace, name):
        with self.cond:
            e = self.objects[rt.key].get(self.key_for(rt, namespace, name))
        if e is None:
            raise not_found(rt, name)
        return e

    def create(self, rt, namespace, obj, dry_run=False):
        """Create; 409 AlreadyExists if the name is taken."""
        with self.cond:
            return self._write(rt, obj, None, namespace, dry_run)

    def update(self, rt, namespace, name, mutate, dry_run=False, create_missing=False):
        """Replace an object with mutate(current obj dict or None) atomically.

        A metadata.resourceVersion in the result that differs from the stored one is a
        409 Conflict (optimistic concurrency); no resourceVersion means unconditional.
        """
        with self.cond:
            old = self.objects[rt.key].get(self.key_for(rt, namespace, name))
            if old is None and not create_missing:
                raise not_found(rt, name)
            obj = clone(mutate(old.full() if old else None))
            if not isinstance(obj, dict):
                raise ApiError(400, "the body of the request must be an object")
            md = obj.setdefault("metadata", {})
            if md.get("name", name) != name:
                raise ApiError(400, "the name of the object "
                               f'({md.get("name")}) does not match the name on the URL ({name})')
            md["name"] = name
            want = md.get("resourceVersion")
            if old is None:
                if want:
                    raise not_found(rt, name)
                md.pop("resourceVersion", None)
                return self._write(rt, obj, None, namespace, dry_run, owned=True)
            if want and want != old.obj["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            return self._write(rt, obj, old, namespace, dry_run, owned=True)

    def delete(self, rt, namespace, name, preconditions=None, dry_run=False):
        with self.cond:
            old = self.objects[rt.key].get(self.key_for(rt, namespace, name))
            if old is None:
                raise not_found(rt, name)
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != old.obj["metadata"]["uid"]:
                raise ApiError(409, f'Precondition failed: UID in precondition: {pre["uid"]}, '
                               f'UID in object meta: {old.obj["metadata"]["uid"]}',
                               details=err_details(rt, name))
            if pre.get("resourceVersion") and \
                    pre["resourceVersion"] != old.obj["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            return old if dry_run else self._delete(rt, old)

    # -- lists --

    def wait_for_rv(self, rv, timeout=3.0):
        """Wait (as the watch cache does) for the store to reach `rv`; 504 if it doesn't."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.rv < rv:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise too_large_rv(rv, self.rv)
                self.cond.wait(left)

    def snapshot(self, rt):
        """(rv, sorted keys, entries) of the current state of one resource."""
        with self.cond:
            keys = list(self._sorted_keys(rt))
            objs = self.objects[rt.key]
            return self.rv, keys, [objs[k] for k in keys]

    def state_at(self, rt, rv):
        """(keys, entries) of one resource as of `rv`, rebuilt by undoing newer history."""
        with self.cond:
            if rv < self.compacted:
                raise ApiError(410, "The resourceVersion for the provided list is too old.")
            objs = dict(self.objects[rt.key])
            for ev in reversed(self.history):
                if ev.rv <= rv:
                    break
                if ev.rt is rt:
                    if ev.type == "ADDED":
                        del objs[ev.new.key]
                    else:
                        objs[ev.old.key] = ev.old
        keys = sorted(objs)
        return keys, [objs[k] for k in keys]

    # -- watches --

    def start_watch(self, w, from_rv):
        """Register `w`. from_rv None: start now, with a snapshot of the current state for
        synthetic ADDED events; else replay history after from_rv. Returns
        (initial entries, start rv, expired message or None)."""
        with self.cond:
            if from_rv is None:
                keys = self._sorted_keys(w.rt)
                objs = self.objects[w.rt.key]
                initial, start = [objs[k] for k in keys], self.rv
            else:
                if from_rv < self.compacted:
                    return [], self.rv, (f"too old resource version: {from_rv} "
                                         f"({self.compacted})")
                replay = []
                for ev in reversed(self.history):
                    if ev.rv <= from_rv:
                        break
                    if ev.rt is w.rt:
                        replay.append(ev)
                w.queue.extend(reversed(replay))
                initial, start = [], from_rv
            self.watchers.add(w)
            return initial, start, None

    def wait_events(self, w, timeout):
        """Wait up to `timeout` s for events; returns (events, current rv, ended state)."""
        with self.cond:
            if not w.queue and w.ended is None and timeout > 0:
                self.cond.wait(timeout)
            evs = list(w.queue)
            w.queue.clear()
            return evs, self.rv, w.ended

    def stop_watch(self, w):
        with self.cond:
            self.watchers.discard(w)

    def end_watches(self, how="clean"):
        with self.cond:
            for w in self.watchers:
                w.ended = how
            self.cond.notify_all()

    # -- admin --

    def upsert(self, rt, obj, owned=False):
        """Create or unconditionally replace (admin path: no RV precondition)."""
        md = obj.get("metadata") or {}
        with self.cond:
            old = self.objects[rt.key].get(self.key_for(rt, md.get("namespace") or "default",
                                                        md.get("name", "")))
            obj = dict(obj)
            obj["metadata"] = {k: v for k, v in md.items() if k != "resourceVersion"}
            return self._write(rt, obj, old, owned=owned)

    def remove(self, rt, namespace, name):
        with self.cond:
            old = self.objects[rt.key].get(self.key_for(rt, namespace or "default", name))
            if old is None:
                raise not_found(rt, name)
            return self._delete(rt, old)

    def load(self, pairs, replace):
        """Upsert every (rt, obj), taking ownership of the objects; with `replace`, delete
        every object not listed. Emits ADDED/MODIFIED/DELETED events like any change."""
        with self.cond:
            seen = set()
            for rt, obj in pairs:
                seen.add((rt.key, self.upsert(rt, obj, owned=True).key))
            if replace:
                for rt in RESOURCES:
                    for key, e in list(self.objects[rt.key].items()):
                        if (rt.key, key) not in seen:
                            self._delete(rt, e)
            return self.rv

    def reset(self):
        """Drop every object and all history without events; end all watches."""
        with self.cond:
            for w in self.watchers:
                w.ended = "clean"
            self.objects = {rt.key: {} for rt in RESOURCES}
            self._sorted.clear()
            self.history.clear()
            self.alloc = Allocator()
            self.rv += 1
            self.compacted = self.rv
            self.cond.notify_all()

    def compact(self, rv=None):
        """Forget history up to `rv` (default: all), so older watches get the 410."""
        with self.cond:
            rv = self.rv if rv is None else min(rv, self.rv)
            while self.history and self.history[0].rv <= rv:
                self.history.popleft()
            self.compacted = max(self.compacted, rv)
            return self.compacted

    def dump(self):
        """Every object with its RV, as a v1 List (can be loaded back as a fixture)."""
        with self.cond:
            items = [e.full() for rt in RESOURCES
                     for e in (self.objects[rt.key][k] for k in self._sorted_keys(rt))]
            return {"kind": "List", "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self.rv)}, "items": items,
                    "compactedResourceVersion": str(self.compacted)}


# ---------------------------------------------------------------------------
# Continue tokens
# ---------------------------------------------------------------------------

class Snapshots:
    """List snapshots behind continue tokens, so every page of a list shares one RV.

    A token expires after `ttl` seconds, when more than SNAPSHOT_MAX are live, or on
    expire_all(); an expired token gets 410 Expired like a compacted etcd revision.
    """

    def __init__(self, ttl):
        self.ttl = ttl
        self.lock = threading.Lock()
        self.items = collections.OrderedDict()  # id -> (created, rv, keys, entries)

    def put(self, rv, keys, entries):
        sid = uuid.uuid4().hex[:16]
        with self.lock:
            self.items[sid] = (time.monotonic(), rv, keys, entries)
            while len(self.items) > SNAPSHOT_MAX:
                self.items.popitem(last=False)
        return sid

    def get(self, sid, rv):
        with self.lock:
            snap = self.items.get(sid)
            if snap is None or snap[1] != rv or time.monotonic() - snap[0] > self.ttl:
                self.items.pop(sid, None)
                return None
            return snap

    def expire_all(self):
        with self.lock:
            self.items.clear()


def encode_continue(rv, start, sid=None):
    tok = {"v": "meta.k8s.io/v1", "rv": rv, "start": start}
    if sid:
        tok["id"] = sid
    return base64.urlsafe_b64encode(dumps(tok)).rstrip(b"=").decode()


def decode_continue(token):
    try:
        tok = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if tok.get("v") != "meta.k8s.io/v1" or not isinstance(tok.get("start"), str) \
                or not isinstance(tok.get("rv"), int):
            raise ValueError("bad token")
        return tok
    except (ValueError, TypeError, AttributeError):
        raise ApiError(400, f"continue key is not valid: {token!r}") from None


# ---------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------

WATCH_FAULTS = ("drop", "stall", "garbage", "oversized")
FAULT_TYPES = ("status",) + WATCH_FAULTS


class Faults:
    """Pending fault injections. A "status" fault answers the next `count` matching
    requests with an error; the watch faults attach to the next `count` matching watches
    and fire once that watch has sent `after` events."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []
        self._ids = iter(range(1, 1 << 62))

    def add(self, spec):
        f = {"type": spec.get("type", "status"), "count": int(spec.get("count", 1)),
             "method": spec.get("method"), "verb": spec.get("verb"), "path": spec.get("path"),
             "code": int(spec.get("code", 503)), "retryAfter": spec.get("retryAfter"),
             "message": spec.get("message"), "after": int(spec.get("after", 0)),
             "seconds": float(spec.get("seconds", 5)),
             "bytes": int(spec.get("bytes", 17 * 1024 * 1024)),
             "reset": bool(spec.get("reset", False))}
        if f["type"] not in FAULT_TYPES:
            raise ValueError(f"unknown fault type {f['type']!r}; one of {FAULT_TYPES}")
        if f["path"]:
            re.compile(f["path"])
        f["id"] = next(self._ids)
        with self.lock:
            self.items.append(f)
        return f

    def _take(self, pred):
        with self.lock:
            for f in self.items:
                if pred(f):
                    f["count"] -= 1
                    if f["count"] <= 0:
                        self.items.remove(f)
                    return dict(f)
        return None

    @staticmethod
    def _matches(f, method, target, verb):
        return ((not f["method"] or f["method"].upper() == method)
                and (not f["verb"] or f["verb"] == verb)
                and (not f["path"] or re.search(f["path"], target)))

    def take_status(self, method, target, verb):
        return self._take(lambda f: f["type"] == "status"
                          and self._matches(f, method, target, verb))

    def take_watch(self, target):
        out = []
        while True:
            f = self._take(lambda f: f["type"] in WATCH_FAULTS and
                           self._matches(f, "GET", target, "watch") and
                           f["type"] not in {x["type"] for x in out})
            if f is None:
                return out
            out.append(f)

    def list(self):
        with self.lock:
            return [dict(f) for f in self.items]

    def clear(self):
        with self.lock:
            self.items.clear()


# ---------------------------------------------------------------------------
# Watch streaming
# ---------------------------------------------------------------------------

class ChunkWriter:
    """Writes a watch stream as HTTP/1.1 chunks.

    mode "random": chunk boundaries fall at random positions (seeded per watch): sometimes
    one byte, sometimes part of an event, sometimes several events. mode "event": one chunk
    per event line, like the Go server flushing after each event.
    """

    def __init__(self, sock, rng, mode):
        self.sock = sock
        self.rng = rng
        self.mode = mode

    def chunk(self, data):
        if data:
            self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def write(self, lines):
        if self.mode == "event":
            for line in lines:
                self.chunk(line)
            return
        data = b"".join(lines)
        pos = 0
        while pos < len(data):
            left = len(data) - pos
            r = self.rng.random()
            if r < 0.15:
                n = 1
            elif r < 0.5:
                n = self.rng.randint(1, min(left, 64))
            else:
                n = self.rng.randint(1, min(left, 256 * 1024))
            self.chunk(data[pos:pos + n])
            pos += n

    def end(self):
        self.sock.sendall(b"0\r\n\r\n")


class Dropped(Exception):
    """Raised when a drop fault has cut the watch connection."""


def event_line(etype, obj_bytes):
    return b'{"type":"%s","object":%s}\n' % (etype.encode(), obj_bytes)


def bookmark_object(rt, rv, annotations=None):
    md = {"resourceVersion": str(rv), "creationTimestamp": None}
    if annotations:
        md["annotations"] = annotations
    return dumps({"kind": rt.kind, "apiVersion": rt.api_version, "metadata": md, **rt.zero})


class WatchSession:
    """Serves one watch request on a handler's connection until it ends."""

    def __init__(self, handler, route):
        self.h = handler
        self.server = handler.server
        self.rt = route["rt"]
        self.sock = handler.connection
        self.sent = 0
        self.faults = []
        self.watcher = None
        self.writer = None

    def run(self, from_rv, send_initial, initial_end, allow_bookmarks, timeout, match):
        """from_rv None = start now; send_initial = synthetic ADDED for the current state;
        initial_end = then a BOOKMARK annotated k8s.io/initial-events-end (streaming list)."""
        rt, h, cfg = self.rt, self.h, self.server.config
        w = Watcher(rt, self.h.route["namespace"], match,
                    {"path": h.path, "user": h.user, "started": now_rfc3339()})
        self.watcher = w
        initial, start_rv, expired = self.server.store.start_watch(w, from_rv)
        try:
            self.faults = self.server.faults.take_watch(h.path)
            rng = random.Random(f"{cfg.seed}/{w.id}")
            self.writer = ChunkWriter(self.sock, rng, cfg.chunking)
            h.send_response(200)
            h.responded = True
            h.send_header("Content-Type", "application/json")
            h.send_header("Cache-Control", "no-cache, private")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            h.record["status"] = 200
            if expired:
                err = status_obj(410, "Expired", expired)
                self.writer.write([event_line("ERROR", dumps(err))])
                self.writer.end()
                return
            self.stream(w, initial if send_initial else [], start_rv, initial_end,
                        allow_bookmarks, timeout)
        except Dropped:
            h.close_connection = True
        except OSError:  # the client went away
            h.close_connection = True
        finally:
            self.server.store.stop_watch(w)

    def stream(self, w, initial, start_rv, initial_end, allow_bookmarks, timeout):
        cfg = self.server.config
        if initial:
            match, ns = w.match, w.namespace
            self.emit([event_line("ADDED", e.watch_object()) for e in initial
                       if (not ns or e.namespace == ns) and (match is None or match(e))])
        if initial_end and allow_bookmarks:
            self.emit([event_line("BOOKMARK", bookmark_object(
                self.rt, start_rv, {"k8s.io/initial-events-end": "true"}))])
        deadline = time.monotonic() + timeout
        last_bookmark = time.monotonic()
        while True:
            now = time.monotonic()
            next_bookmark = last_bookmark + cfg.bookmark_interval
            if now >= deadline or self.server.stopping.is_set():
                break
            wait = min(deadline, next_bookmark if allow_bookmarks else deadline, now + 0.25)
            evs, cur_rv, ended = self.server.store.wait_events(w, wait - now)
            if ended == "abort":
                self.drop(reset=True)
            lines = [line for line in (self.render(ev) for ev in evs) if line]
            if lines:
                self.emit(lines)
            if ended == "clean":
                break
            self.fire_idle_faults()
            if allow_bookmarks and time.monotonic() >= next_bookmark:
                self.emit([event_line("BOOKMARK", bookmark_object(self.rt, cur_rv))])
                last_bookmark = time.monotonic()
            if self.client_gone():
                raise Dropped()
        self.writer.end()

    def render(self, ev):
        """The watch line for a history event as this watcher sees it (None = filtered).
        An object that starts matching is ADDED, one that stops matching is DELETED with
        its previous content and the event's RV, as the watch cache does."""
        w = self.watcher
        if w.namespace and ev.new.namespace != w.namespace:
            return None
        if w.match is None:
            return event_line(ev.type, ev.new.watch_object())
        cur = ev.type != "DELETED" and w.match(ev.new)
        old = ev.old is not None and w.match(ev.old)
        if cur:
            return event_line("MODIFIED" if old else "ADDED", ev.new.watch_object())
        if not old:
            return None
        if ev.type == "DELETED":
            return event_line("DELETED", ev.new.watch_object())
        prev = clone(ev.old.obj)
        prev["metadata"]["resourceVersion"] = str(ev.rv)
        return event_line("DELETED", Entry(self.rt, prev).watch_object())

    def emit(self, lines):
        """Write event lines, firing any watch fault that falls due before an event."""
        w = self.watcher
        if not self.faults:
            self.writer.write(lines)
            self.sent += len(lines)
            w.sent = self.sent
            return
        batch = []
        for line in lines:
            for f in [f for f in self.faults if f["after"] <= self.sent]:
                self.writer.write(batch)
                batch = []
                self.fire(f, line)
            batch.append(line)
            self.sent += 1
            w.sent = self.sent
        self.writer.write(batch)

    def fire_idle_faults(self):
        for f in [f for f in self.faults if f["after"] <= self.sent and f["type"] != "drop"]:
            self.fire(f, None)

    def fire(self, f, line):
        """Carry out one watch fault. `line` is the event about to be sent (drop cuts it)."""
        self.faults.remove(f)
        log = self.server.log
        log(2, f"fault {f['type']} fired on watch {self.watcher.id} after {self.sent} events")
        if f["type"] == "stall":
            self.server.stopping.wait(f["seconds"])
        elif f["type"] == "garbage":
            self.writer.write([b"this is not JSON {]\n"])
        elif f["type"] == "oversized":
            pad = max(0, f["bytes"] - 300)
            obj = bookmark_object(self.rt, self.server.store.rv,
                                  {"test.kube-iptables-proxy/padding": "x" * pad})
            self.writer.write([event_line("BOOKMARK", obj)])
        elif f["type"] == "drop":
            self.writer.chunk(line[:max(1, len(line) // 2)])
            self.drop(f["reset"])

    def drop(self, reset):
        """Close the TCP connection without the terminating chunk (RST if `reset`)."""
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass
        raise Dropped()

    def client_gone(self):
        """A watch client sends nothing after its request: readable means closed."""
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)


# ---------------------------------------------------------------------------
# HTTP handler
# ---------------------------------------------------------------------------

def parse_bool(v):
    return v in ("1", "t", "T", "true", "TRUE", "True")


def resolve(method, path, query):
    """Map a request to a route dict (kind: discovery/resource) or raise ApiError."""
    segs = [s for s in path.split("/") if s]
    if not segs or segs[0] not in ("api", "apis"):
        raise ApiError(404, "the server could not find the requested resource", details={})
    if segs[0] == "api":
        group, rest = "", segs[1:]
    else:
        group, rest = (segs[1] if len(segs) > 1 else None), segs[2:]
    if not rest:  # /api, /apis, /apis/{group}
        if method != "GET":
            raise ApiError(405, "the server does not allow this method on the requested "
                           "resource", details={})
        return {"kind": "discovery", "group": group, "version": None, "verb": "get"}
    version, rest = rest[0], rest[1:]
    if (group or "", version) not in GROUP_VERSIONS:
        raise ApiError(404, "the server could not find the requested resource", details={})
    if not rest:
        return {"kind": "discovery", "group": group, "version": version, "verb": "get"}
    watch_path = rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    rt = BY_PATH.get((group or "", version, rest[0])) if rest else None
    if rt is None or len(rest) > 2 or (namespace is not None and not rt.namespaced):
        raise ApiError(404, "the server could not find the requested resource", details={})
    name = rest[1] if len(rest) == 2 else None
    watch = watch_path or parse_bool(query.get("watch", ""))
    verbs = {"GET": "get" if name and not watch else ("watch" if watch else "list"),
             "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    verb = verbs.get(method)
    if verb is None or (name is None and verb in ("update", "patch", "delete")) or \
            (name is not None and verb == "create") or \
            (verb == "create" and rt.namespaced and namespace is None):
        raise ApiError(405, "the server does not allow this method on the requested resource",
                       details={"kind": rt.plural})
    if name is not None and rt.namespaced and namespace is None:
        raise ApiError(404, "the server could not find the requested resource", details={})
    return {"kind": "resource", "rt": rt, "namespace": namespace, "name": name, "verb": verb,
            "watch": watch}


class Handler(http.server.BaseHTTPRequestHandler):
    """One HTTP/1.1 connection; requests are served one after another (keep-alive)."""

    protocol_version = "HTTP/1.1"
    server_version = "test-apiserver"

    def log_message(self, fmt, *args):  # replaced by ApiServer.log per request
        pass

    def send_response(self, code, message=None):
        """As upstream, but without a Server header (kube-apiserver sends none)."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def do_GET(self):
        self.serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # -- plumbing --

    def read_body(self, limit):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
                total += size
                if limit and total > limit:
                    raise ApiError(413, f"Request entity too large: limit is {limit}")
            return b"".join(parts)
        n = int(self.headers.get("Content-Length") or 0)
        if limit and n > limit:
            self.close_connection = True
            raise ApiError(413, f"Request entity too large: limit is {limit}")
        return self.rfile.read(n) if n else b""

    def send_bytes(self, code, body, headers=(), ctype="application/json"):
        if (self.server.config.gzip and len(body) > GZIP_MIN
                and "gzip" in self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, compresslevel=1)
            headers = list(headers) + [("Content-Encoding", "gzip")]
        self.send_response(code)
        self.responded = True
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.record is not None:
            self.record["status"] = code

    def send_obj(self, code, obj, headers=()):
        self.send_bytes(code, obj if isinstance(obj, bytes) else dumps(obj), headers)

    def serve(self):
        t0 = time.monotonic()
        self.record = None
        self.user = None
        self.responded = False  # status line sent
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if url.path == "/_admin" or url.path.startswith("/_admin/"):
                body = self.read_body(0)
                self.serve_admin(url.path[len("/_admin/"):], query, body)
                return
            self.record = self.server.record_request(self)
            body = self.read_body(MAX_BODY) if self.command != "GET" else b""
            self.serve_api(url.path, query, body)
        except ApiError as e:
            self.send_obj(e.code, e.status, e.headers)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # a server bug: answer like the apiserver's panic handler
            self.server.log(0, f"{self.command} {self.path}: {traceback.format_exc()}")
            self.close_connection = True
            if not self.responded:
                self.send_obj(500, status_obj(500, "InternalError",
                                              f"Internal error occurred: {e!r}"))
        finally:
            if self.record is not None:
                self.server.log(1, f'{self.command} {self.path} {self.record.get("status")} '
                                   f'{(time.monotonic() - t0) * 1000:.1f}ms '
                                   f'user={self.user} ua="{self.headers.get("User-Agent", "")}"')

    def authenticate(self, path):
        """Set self.user; 401 unless a verified client cert or a listed token is presented
        (anonymous requests may read only /version and the health paths)."""
        cfg = self.server.config
        if not cfg.token_file and not cfg.client_ca:
            self.user = "system:anonymous"
            return
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) \
            else None
        if cert:
            self.user = dict(x[0] for x in cert.get("subject", ())).get("commonName", "x509")
            return
        auth = self.headers.get("Authorization")
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            if cfg.token_file and scheme.lower() == "bearer" and token.strip() and \
                    token.strip() in self.server.read_tokens():
                self.user = "token:" + token.strip()[:6] + "..."
                return
        elif path in PUBLIC_PATHS:
            self.user = "system:anonymous"
            return
        raise ApiError(401, "Unauthorized")

    # -- Kubernetes API --

    def serve_api(self, path, query, body):
        self.authenticate(path)
        route, route_err = None, None
        try:
            route = resolve(self.command, path, query)
        except ApiError as e:
            route_err = e
        verb = route["verb"] if route else {"GET": "get"}.get(self.command, "")
        f = self.server.faults.take_status(self.command, self.path, verb)
        if f is not None:
            self.server.log(2, f"fault status {f['code']} fired on {self.command} {self.path}")
            rt = route.get("rt") if route else None
            raise injected_error(f["code"], rt, verb, self.user,
                                 route.get("namespace") if route else None, f["message"],
                                 f["retryAfter"])
        if path in PUBLIC_PATHS:
            if path == "/version":
                return self.send_obj(200, self.server.version_info())
            return self.send_bytes(200, b"ok", ctype="text/plain; charset=utf-8")
        if route_err:
            raise route_err
        accept = self.headers.get("Accept", "")
        if accept and "json" not in accept and "*/*" not in accept and "yaml" not in accept:
            raise ApiError(406, "only the following media types are accepted: "
                           "application/json, application/yaml")
        self.route = route
        if route["kind"] == "discovery":
            return self.send_obj(200, self.server.discovery(route["group"], route["version"]))
        handler = getattr(self, "api_" + route["verb"])
        return handler(route, query, body)

    def decode_body(self, body):
        ctype = self.headers.get("Content-Type", "application/json").split(";")[0].strip()
        try:
            if ctype in ("application/json", ""):
                return json.loads(body)
            if ctype == "application/yaml" and yaml is not None:
                return yaml.load(body, Loader=_StringTimestampLoader)
        except (ValueError, yaml.YAMLError if yaml else ValueError) as e:
            raise ApiError(400, f"the body of the request was in an unknown format: {e}")
        raise ApiError(415, "the body of the request was in an unknown format - accepted "
                            "media types include: application/json, application/yaml",
                       reason="UnsupportedMediaType")

    def check_kind(self, rt, obj):
        if not isinstance(obj, dict):
            raise ApiError(400, "the body of the request must be an object")
        kind, api = obj.get("kind"), obj.get("apiVersion")
        if (kind and kind != rt.kind) or (api and api != rt.api_version):
            raise ApiError(400, f"the API version in the data ({api}) does not match the "
                                f"expected API version ({rt.api_version})"
                           if api != rt.api_version else
                           f"the kind in the data ({kind}) does not match the expected "
                           f"kind ({rt.kind})")

    def api_get(self, route, query, body):
        e = self.server.store.get(route["rt"], route["namespace"], route["name"])
        self.send_obj(200, e.watch_object())

    def api_create(self, route, query, body):
        rt = route["rt"]
        obj = self.decode_body(body)
        self.check_kind(rt, obj)
        e = self.server.store.create(rt, route["namespace"], obj,
                                     dry_run=query.get("dryRun") == "All")
        self.send_obj(201, e.watch_object())

    def api_update(self, route, query, body):
        rt = route["rt"]
        obj = self.decode_body(body)
        self.check_kind(rt, obj)
        e = self.server.store.update(rt, route["namespace"], route["name"], lambda _: obj,
                                     dry_run=query.get("dryRun") == "All",
                                     create_missing=rt.kind == "Event")
        self.send_obj(200, e.watch_object())

    def api_patch(self, route, query, body):
        rt = route["rt"]
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
        appliers = {"application/merge-patch+json": merge_patch,
                    "application/strategic-merge-patch+json": strategic_merge_patch,
                    "application/json-patch+json": json_patch,
                    "application/apply-patch+yaml": strategic_merge_patch}
        if ctype not in appliers:
            raise ApiError(415, f"the body of the request was in an unknown format - accepted "
                           f"media types include: {', '.join(appliers)}",
                           reason="UnsupportedMediaType")
        try:
            if ctype == "application/apply-patch+yaml":
                patch = parse_documents(body.decode())[0]
                self.check_kind(rt, patch)
            else:
                patch = json.loads(body)
        except (ValueError, IndexError, UnicodeDecodeError) as e:
            raise ApiError(400, f"error decoding patch: {e}")
        apply = appliers[ctype]

        def mutate(cur):
            if cur is None:  # only server-side apply creates
                cur = {"metadata": {"name": route["name"]}}
            try:
                return apply(cur, patch)
            except (KeyError, IndexError, ValueError, TypeError) as e:
                raise ApiError(422, f"the server rejected our request due to an error in "
                                    f"our request: {e}") from None
        e = self.server.store.update(rt, route["namespace"], route["name"], mutate,
                                     dry_run=query.get("dryRun") == "All",
                                     create_missing=ctype == "application/apply-patch+yaml")
        self.send_obj(200, e.watch_object())

    def api_delete(self, route, query, body):
        rt = route["rt"]
        opts = {}
        if body:
            try:
                opts = json.loads(body) or {}
            except ValueError as e:
                raise ApiError(400, f"invalid DeleteOptions: {e}")
        e = self.server.store.delete(rt, route["namespace"], route["name"],
                                     opts.get("preconditions"),
                                     dry_run=query.get("dryRun") == "All"
                                     or opts.get("dryRun") == ["All"])
        if rt.kind == "Service":  # the Service registry returns the deleted object
            return self.send_obj(200, e.watch_object())
        self.send_obj(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Success",
                            "details": {**err_details(rt, e.name),
                                        "uid": e.obj["metadata"]["uid"]}})

    def list_params(self, query):
        """Validate LIST/WATCH options as ValidateListOptions does; returns
        (rv, match, continue, limit, sendInitialEvents or None)."""
        rv = query.get("resourceVersion", "")
        match = query.get("resourceVersionMatch", "")
        cont = query.get("continue", "")
        sie = query.get("sendInitialEvents")
        watch = self.route["watch"]
        if watch and self.server.config.watch_list == "ignore":  # a server predating it
            sie, match = None, ""
        try:
            limit = int(query.get("limit") or 0)
            if rv:
                int(rv)
        except ValueError:
            raise ApiError(400, f"invalid list options: limit={query.get('limit')!r} "
                                f"resourceVersion={rv!r}") from None
        if watch:
            if sie is not None:
                if match != "NotOlderThan":
                    raise list_options_invalid(
                        "resourceVersionMatch", "Forbidden",
                        "sendInitialEvents requires setting resourceVersionMatch to "
                        "NotOlderThan")
                if self.server.config.watch_list == "forbid":
                    raise list_options_invalid(
                        "sendInitialEvents", "Forbidden", "sendInitialEvents is forbidden "
                        "for watch unless the WatchList feature gate is enabled")
            elif match:
                raise list_options_invalid(
                    "resourceVersionMatch", "Forbidden",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents "
                    "is provided")
        else:
            if sie is not None:
                raise list_options_invalid("sendInitialEvents", "Forbidden",
                                           "sendInitialEvents is forbidden for list")
            if match:
                if not rv:
                    raise list_options_invalid(
                        "resourceVersionMatch", "Forbidden",
                        "resourceVersionMatch is forbidden unless resourceVersion is provided")
                if cont:
                    raise list_options_invalid(
                        "resourceVersionMatch", "Forbidden",
                        "resourceVersionMatch is forbidden when continue is provided")
                if match not in ("Exact", "NotOlderThan"):
                    raise list_options_invalid(
                        "resourceVersionMatch", "Unsupported value",
                        f'"{match}": supported values: "Exact", "NotOlderThan", ""')
                if match == "Exact" and rv == "0":
                    raise list_options_invalid(
                        "resourceVersionMatch", "Forbidden",
                        'resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
            if cont and rv and rv != "0":
                raise ApiError(400, "specifying resource version is not allowed when using "
                                    "continue")
        return rv, match, cont, limit, sie

    def api_list(self, route, query, body):
        rt, ns = route["rt"], route["namespace"]
        store, snaps = self.server.store, self.server.snapshots
        rv_s, match, cont, limit, _ = self.list_params(query)
        pred = make_matcher(parse_label_selector(query.get("labelSelector", "")),
                            parse_field_selector(query.get("fieldSelector", "")))
        sid, start = None, ""
        if cont:
            tok = decode_continue(cont)
            start = tok["start"]
            if tok["rv"] == -1:  # the inconsistent remainder handed out with a 410
                rv, keys, entries = store.snapshot(rt)
            else:
                snap = snaps.get(tok.get("id"), tok["rv"])
                if snap is None:
                    retry = encode_continue(-1, start)
                    raise ApiError(410, "The provided continue parameter is too old to "
                                   "display a consistent list result. You can start a new "
                                   "list without the continue parameter, or use the continue "
                                   "token in this response to retrieve the remainder of the "
                                   "results. Continuing with the provided token results in "
                                   "an inconsistent list - objects that were created, "
                                   "modified, or deleted between the time the first chunk "
                                   "was returned and now may show up in the list.",
                                   metadata={"continue": retry})
                _, rv, keys, entries = snap
                sid = tok["id"]
        elif match == "Exact":
            rv = int(rv_s)
            store.wait_for_rv(rv)
            keys, entries = store.state_at(rt, rv)
        else:
            if rv_s not in ("", "0"):
                store.wait_for_rv(int(rv_s))
            rv, keys, entries = store.snapshot(rt)
        lo, hi = 0, len(keys)
        if ns is not None:
            lo = bisect.bisect_left(keys, ns + "/")
            hi = bisect.bisect_left(keys, ns + "0")  # "0" sorts right after "/"
        i = max(lo, bisect.bisect_left(keys, start)) if start else lo
        items, next_token = [], None
        while i < hi:
            e = entries[i]
            i += 1
            if pred is None or pred(e):
                items.append(e.item)
                if limit and len(items) >= limit:
                    break
        meta = {"resourceVersion": str(rv)}
        if limit and len(items) >= limit and i < hi:
            if cont and sid is None:  # continuing an inconsistent list
                next_token = encode_continue(-1, keys[i - 1] + "\x00")
            else:
                sid = sid or snaps.put(rv, keys, entries)
                next_token = encode_continue(rv, keys[i - 1] + "\x00", sid)
            meta["continue"] = next_token
            if pred is None:
                meta["remainingItemCount"] = hi - i
        head = dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
        self.send_bytes(200, head[:-1] + b',"items":[' + b",".join(items) + b"]}")

    def api_watch(self, route, query, body):
        if route["name"] is not None:  # deprecated watch of one object
            query = dict(query, fieldSelector=",".join(
                filter(None, [query.get("fieldSelector"), f"metadata.name={route['name']}"])))
        rv_s, match, cont, _, sie = self.list_params(query)
        if cont:
            raise ApiError(400, "continue is not supported for watch requests")
        pred = make_matcher(parse_label_selector(query.get("labelSelector", "")),
                            parse_field_selector(query.get("fieldSelector", "")))
        try:
            timeout = float(query.get("timeoutSeconds") or 0)
        except ValueError:
            raise ApiError(400, "invalid timeoutSeconds") from None
        if timeout <= 0:
            timeout = random.uniform(1, 2) * self.server.config.min_request_timeout
        initial_end = sie is not None and parse_bool(sie)
        if sie is None:  # classic watch: unset/"0" = state first, else resume after rv
            send_initial = rv_s in ("", "0")
            from_rv = None if send_initial else int(rv_s)
        else:  # streaming list: RV is a lower bound for the snapshot
            send_initial = parse_bool(sie)
            if rv_s not in ("", "0"):
                self.server.store.wait_for_rv(int(rv_s))
            from_rv = None if send_initial or rv_s in ("", "0") else int(rv_s)
        if from_rv is not None and from_rv > self.server.store.rv:
            self.server.store.wait_for_rv(from_rv)
        WatchSession(self, route).run(
            from_rv, send_initial, initial_end,
            parse_bool(query.get("allowWatchBookmarks", "")), timeout, pred)

    # -- admin API --

    def serve_admin(self, action, query, body):
        """JSON admin endpoint: /_admin/<action>. Not authenticated, not logged, no faults."""
        srv, store = self.server, self.server.store
        try:
            args = json.loads(body) if body else {}
        except ValueError as e:
            return self.send_obj(400, {"error": f"invalid JSON: {e}"})
        m = self.command
        try:
            if (m, action) == ("GET", "state"):
                return self.send_obj(200, store.dump())
            if (m, action) == ("GET", "watches"):
                with store.cond:
                    ws = [{"id": w.id, "resource": w.rt.key, "namespace": w.namespace,
                           "sent": w.sent, **w.info} for w in store.watchers]
                return self.send_obj(200, {"watches": sorted(ws, key=lambda x: x["id"])})
            if action == "requests" and m in ("GET", "DELETE"):
                return self.send_obj(200, {"requests": srv.requests(clear=m == "DELETE")})
            if action == "faults" and m in ("GET", "DELETE"):
                items = srv.faults.list()
                if m == "DELETE":
                    srv.faults.clear()
                return self.send_obj(200, {"faults": items})
            if m != "POST":
                return self.send_obj(404, {"error": f"no admin action {m} {action}"})
            if action == "load":
                if "path" in args:
                    with open(args["path"], encoding="utf-8") as fh:
                        docs = parse_documents(fh.read())
                else:
                    docs = args.get("objects", [])
                pairs = fixture_objects(docs)
                rv = store.load(pairs, args.get("replace", True))
                return self.send_obj(200, {"resourceVersion": str(rv), "count": len(pairs)})
            if action == "objects":
                (rt, obj), = fixture_objects(args["object"])
                md = obj.get("metadata") or {}
                if args.get("op", "apply") == "delete":
                    e = store.remove(rt, md.get("namespace"), md.get("name"))
                else:
                    e = store.upsert(rt, obj)
                return self.send_obj(200, e.full())
            if action == "reset":
                store.reset()
                srv.faults.clear()
                srv.snapshots.expire_all()
                srv.requests(clear=True)
                return self.send_obj(200, {"resourceVersion": str(store.rv)})
            if action == "compact":
                rv = store.compact(int(args["resourceVersion"]) if "resourceVersion" in args
                                   else None)
                return self.send_obj(200, {"compactedResourceVersion": str(rv)})
            if action == "expire-continue":
                srv.snapshots.expire_all()
                return self.send_obj(200, {})
            if action == "end-watches":
                store.end_watches("clean")
                return self.send_obj(200, {})
            if action == "faults":
                return self.send_obj(200, srv.faults.add(args))
            if action == "refuse":
                srv.refuse(float(args.get("seconds", 5)), bool(args.get("dropExisting")),
                           keep=self.connection)
                return self.send_obj(200, {})
            if action == "config":
                return self.send_obj(200, srv.config.update(args))
            return self.send_obj(404, {"error": f"no admin action {m} {action}"})
        except ApiError as e:
            return self.send_obj(e.code, {"error": e.status["message"], "status": e.status})
        except (ValueError, KeyError, TypeError, OSError) as e:
            return self.send_obj(400, {"error": f"{type(e).__name__}: {e}"})


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------

class Config:
    """Runtime settings; the mutable ones can be changed through /_admin/config."""

    MUTABLE = {"bookmarkInterval": ("bookmark_interval", float),
               "chunking": ("chunking", str),
               "continueTTL": ("continue_ttl", float)}

    def __init__(self, args):
        self.token_file = args.token_file
        self.client_ca = args.client_ca
        self.bookmark_interval = args.bookmark_interval
        self.chunking = args.chunking
        self.continue_ttl = args.continue_ttl
        self.seed = args.seed if args.seed is not None else random.randrange(1 << 31)
        self.min_request_timeout = args.min_request_timeout
        self.gzip = not args.no_gzip
        self.watch_list = args.watch_list
        self.version = args.version
        self.on_change = None  # called after update()

    def update(self, changes):
        for k, v in changes.items():
            if k not in self.MUTABLE:
                raise ValueError(f"unknown setting {k!r}; one of {sorted(self.MUTABLE)}")
            attr, conv = self.MUTABLE[k]
            if k == "chunking" and v not in ("random", "event"):
                raise ValueError("chunking must be random or event")
            setattr(self, attr, conv(v))
        if self.on_change:
            self.on_change()
        return {k: getattr(self, a) for k, (a, _) in self.MUTABLE.items()}


class ApiServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Thread-per-connection HTTP(S) server with its own accept loop, so it can close and
    reopen its listening socket (refuse-connections fault) and shut down completely."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, config, store, bind, port, tls_ctx, verbosity):
        self.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.config = config
        self.store = store
        self.snapshots = Snapshots(config.continue_ttl)
        config.on_change = lambda: setattr(self.snapshots, "ttl", config.continue_ttl)
        self.faults = Faults()
        self.tls_ctx = tls_ctx
        self.verbosity = verbosity
        self.stopping = threading.Event()
        self.refuse_until = 0.0
        self.refusing = threading.Event()  # set while the listening socket is closed
        self.conns = set()
        self.conns_lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.request_log = collections.deque(maxlen=10000)
        self.request_seq = 0
        super().__init__((bind, port), Handler)

    def server_bind(self):
        """Bind without HTTPServer's reverse DNS lookup of the address."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def log(self, level, msg):
        if level <= self.verbosity:
            t = datetime.datetime.now()
            line = f"I{t:%m%d %H:%M:%S.%f} {threading.get_ident() % 100000:5d} apiserver] {msg}\n"
            with self.log_lock:
                sys.stderr.write(line)
                sys.stderr.flush()

    # -- connections --

    def get_request(self):
        conn, addr = self.socket.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr

    def process_request(self, request, client_address):
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def finish_request(self, request, client_address):
        """Runs in the connection's thread: TLS handshake (if any), then HTTP."""
        conn = request
        try:
            if self.tls_ctx is not None:
                request.settimeout(10)
                conn = self.tls_ctx.wrap_socket(request, server_side=True,
                                                do_handshake_on_connect=False)
                with self.conns_lock:
                    self.conns.discard(request)
                    self.conns.add(conn)
                conn.do_handshake()
                conn.settimeout(None)
            self.RequestHandlerClass(conn, client_address, self)
        except (ssl.SSLError, OSError) as e:
            self.log(1, f"connection from {client_address[0]}: {e}")
        finally:
            if conn is not request:
                self._close(conn)

    def shutdown_request(self, request):
        self._close(request)

    def _close(self, sock):
        with self.conns_lock:
            self.conns.discard(sock)
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def close_connections(self, keep=None):
        """Shut every open connection but `keep` down (unblocks their threads)."""
        with self.conns_lock:
            conns = [c for c in self.conns if c is not keep]
        for c in conns:
            try:
                socket.socket.shutdown(c, socket.SHUT_RDWR)
            except OSError:
                pass

    # -- accept loop --

    def serve(self):
        """Accept connections until stop(); honours refuse() by closing and reopening the
        listening socket on the same port."""
        while not self.stopping.is_set():
            if self.refuse_until:
                self.socket.close()
                self.refusing.set()
                self.log(1, "listening socket closed (refuse fault)")
                self.stopping.wait(max(0.0, self.refuse_until - time.monotonic()))
                self.refuse_until = 0.0
                self.refusing.clear()
                if self.stopping.is_set():
                    break
                self.socket = socket.socket(self.address_family, self.socket_type)
                self.server_bind()
                self.server_activate()
                self.log(1, "listening again")
                continue
            try:
                r, _, _ = select.select([self.socket], [], [], 0.2)
            except InterruptedError:
                continue
            if r:
                self._handle_request_noblock()

    def refuse(self, seconds, drop_existing, keep=None):
        """Stop listening for `seconds` and return once the socket is closed; optionally
        drop every open connection but `keep` (an apiserver restart, as clients see it)."""
        self.refuse_until = time.monotonic() + seconds
        self.refusing.wait(2)
        if drop_existing:
            self.store.end_watches("abort")
            self.close_connections(keep)

    def stop(self):
        self.stopping.set()

    def close(self):
        """End watches, close connections, join all connection threads, close the socket."""
        self.stopping.set()
        self.store.end_watches("clean")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            with self.store.cond:
                if not self.store.watchers:
                    break
            time.sleep(0.05)
        self.close_connections()
        self.server_close()  # joins connection threads (block_on_close)

    # -- bookkeeping --

    def record_request(self, handler):
        with self.log_lock:
            self.request_seq += 1
            rec = {"seq": self.request_seq, "time": now_rfc3339(), "method": handler.command,
                   "path": handler.path, "headers": dict(handler.headers.items()),
                   "status": None}
            self.request_log.append(rec)
        return rec

    def requests(self, clear=False):
        with self.log_lock:
            out = [dict(r) for r in self.request_log]
            if clear:
                self.request_log.clear()
        return out

    def read_tokens(self):
        """Tokens from --token-file, re-read on every request (rotation). A line is a token,
        or a static-token CSV line "token,user,uid,groups" whose first field is used."""
        try:
            with open(self.config.token_file, encoding="utf-8") as fh:
                return {line.split(",")[0].strip() for line in fh if line.strip()}
        except OSError:
            return set()

    def version_info(self):
        v = self.config.version
        m = re.match(r"v(\d+)\.(\d+)", v)
        return {"major": m.group(1) if m else "1", "minor": m.group(2) if m else "33",
                "emulationMajor": m.group(1) if m else "1",
                "emulationMinor": m.group(2) if m else "33",
                "gitVersion": v, "gitCommit": "0" * 40, "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0",
                "compiler": "gc", "platform": "linux/amd64"}

    def discovery(self, group, version):
        """APIVersions (/api), APIGroupList (/apis), APIGroup or APIResourceList."""
        if group == "" and version is None:
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0",
                         "serverAddress": f"{self.server_name}:{self.server_port}"}]}

        def api_group(g):
            gv = {"groupVersion": f"{g}/v1", "version": "v1"}
            return {"name": g, "versions": [gv], "preferredVersion": gv}
        groups = sorted({g for g, _ in GROUP_VERSIONS if g})
        if group is None:
            return {"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [api_group(g) for g in groups]}
        if version is None:
            if group not in groups:
                raise ApiError(404, "the server could not find the requested resource",
                               details={})
            return {"kind": "APIGroup", "apiVersion": "v1", **api_group(group)}
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": [rt.discovery() for rt in GROUP_VERSIONS[(group, version)]]}


def tls_context(args):
    if not args.tls_cert:
        if args.client_ca:
            raise SystemExit("--client-ca needs --tls-cert/--tls-key")
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    ctx.set_alpn_protocols(["http/1.1"])
    if args.client_ca:
        # Like kube-apiserver: a presented client cert must verify; without one the request
        # must authenticate otherwise (token), or it gets 401.
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(args.client_ca)
    return ctx


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bind", default="127.0.0.1", help="loopback address to listen on")
    p.add_argument("--port", type=int, default=0, help="port (0 = ephemeral)")
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", help="private key for --tls-cert")
    p.add_argument("--client-ca", help="verify client certificates against this CA")
    p.add_argument("--token-file", help="accepted bearer tokens, one a line (re-read each "
                                        "request)")
    p.add_argument("--fixture", action="append", default=[],
                   help="load objects (List / typed list / object, JSON or YAML); repeatable")
    p.add_argument("--history", type=int, default=1000, help="watch history window (events)")
    p.add_argument("--continue-ttl", type=float, default=300.0,
                   help="seconds a continue token stays valid")
    p.add_argument("--bookmark-interval", type=float, default=60.0,
                   help="seconds between BOOKMARK events (allowWatchBookmarks=true)")
    p.add_argument("--chunking", choices=("random", "event"), default="random",
                   help="watch chunk boundaries: random positions or one chunk per event")
    p.add_argument("--seed", type=int, help="seed for random chunking (default: random)")
    p.add_argument("--min-request-timeout", type=float, default=1800.0,
                   help="watch without timeoutSeconds ends after a random [T, 2T) s")
    p.add_argument("--watch-list", choices=("on", "ignore", "forbid"), default="on",
                   help="sendInitialEvents: serve it, ignore it (old server) or reject it")
    p.add_argument("--no-gzip", action="store_true", help="never gzip responses")
    p.add_argument("--version", default="v1.33.1", help="gitVersion reported by /version")
    p.add_argument("-v", "--verbosity", type=int, default=0,
                   help="0 errors, 1 one line per request, 2 also faults")
    args = p.parse_args(argv)
    try:
        if not ipaddress.ip_address(args.bind).is_loopback:
            p.error("--bind must be a loopback address")
    except ValueError:
        p.error("--bind must be an IP address")
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    return args


def main(argv=None):
    args = parse_args(argv)
    config = Config(args)
    store = Store(args.history)
    for path in args.fixture:
        with open(path, encoding="utf-8") as fh:
            store.load(fixture_objects(parse_documents(fh.read())), replace=False)
    server = ApiServer(config, store, args.bind, args.port, tls_context(args), args.verbosity)
    port = server.server_address[1]
    if args.port_file:
        tmp = f"{args.port_file}.tmp.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(f"{port}\n")
        os.replace(tmp, args.port_file)

    def on_signal(signum, frame):
        server.stop()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.log(0, f"serving {'https' if server.tls_ctx else 'http'} on {args.bind}:{port} "
                  f"(rv {store.rv}, seed {config.seed})")
    try:
        server.serve()
    finally:
        server.close()
        server.log(0, "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
