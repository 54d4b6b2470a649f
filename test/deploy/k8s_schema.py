"""A small offline schema of the Kubernetes kinds hack/deploy uses.

No network schema source is reachable here, so this module knows, for each
apiVersion/kind the manifests use, which fields exist (Kubernetes v1.33) and
their types. Fields the manifests use are typed all the way down (with enums
and formats where the API server validates them); fields that exist but that
no manifest uses are listed as ANY, so that a future edit that uses one is
still recognised as a field of the kind (its type is then not checked: give it
a type here when you start using it).

validate(doc) -> list of "path: message" strings, empty when valid.
"""
import re

ANY = ("any",)
STR = ("str",)
INT = ("int",)
BOOL = ("bool",)
INT_OR_STR = ("int-or-string",)
QUANTITY = ("quantity",)


def obj(fields, required=()):
    return ("object", fields, frozenset(required))


def lst(item):
    return ("list", item)


def strmap(value=STR, key_format=None):
    return ("map", value, key_format)


def enum(*values):
    return ("enum", frozenset(values))


def fmt(name, base=STR):
    return ("format", name, base)


def intrange(lo, hi):
    return ("intrange", lo, hi)


# ---- formats -----------------------------------------------------------------

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
QUANTITY_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
CAPABILITY = re.compile(r"^[A-Z][A-Z_]*$")
FIELD_PATHS = re.compile(
    r"^(metadata\.(name|namespace|uid)|metadata\.(labels|annotations)\['[^']+'\]|"
    r"spec\.(nodeName|serviceAccountName)|status\.(hostIP|hostIPs|podIP|podIPs))$")
IMAGE_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
                      r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$")


def label_key_ok(k):
    prefix, _, name = k.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(QUALIFIED_NAME.match(name))


def check_format(name, v):
    """None when @v is valid for format @name, else a message."""
    if name == "dns1123-subdomain":
        ok = len(v) <= 253 and DNS1123_SUBDOMAIN.match(v)
    elif name == "dns1123-label":
        ok = len(v) <= 63 and DNS1123_LABEL.match(v)
    elif name == "label-value":
        ok = len(v) <= 63 and LABEL_VALUE.match(v)
    elif name == "label-key":
        ok = label_key_ok(v)
    elif name == "port-name":
        ok = len(v) <= 15 and IANA_SVC_NAME.match(v) and "--" not in v
    elif name == "abs-path":
        ok = v.startswith("/")
    elif name == "env-name":
        ok = ENV_NAME.match(v)
    elif name == "capability":
        ok = CAPABILITY.match(v) and not v.startswith("CAP_")
    elif name == "field-path":
        ok = FIELD_PATHS.match(v)
    elif name == "image":
        ok = IMAGE_RE.match(v)
    elif name == "api-group":
        ok = v == "" or DNS1123_SUBDOMAIN.match(v)
    else:
        raise ValueError(f"unknown format {name}")
    return None if ok else f"{v!r} is not a valid {name}"


# ---- shared types ----------------------------------------------------------------

OBJECT_META = obj({
    "name": fmt("dns1123-subdomain"),
    "generateName": STR,
    "namespace": fmt("dns1123-label"),
    "labels": strmap(fmt("label-value"), "label-key"),
    "annotations": strmap(STR, "label-key"),
    "finalizers": lst(STR),
    "ownerReferences": ANY,
})

LABEL_SELECTOR = obj({
    "matchLabels": strmap(fmt("label-value"), "label-key"),
    "matchExpressions": lst(obj({
        "key": fmt("label-key"),
        "operator": enum("In", "NotIn", "Exists", "DoesNotExist"),
        "values": lst(STR),
    }, required=("key", "operator"))),
})

NODE_SELECTOR_REQUIREMENT = obj({
    "key": STR,
    "operator": enum("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"),
    "values": lst(STR),
}, required=("key", "operator"))

NODE_SELECTOR_TERM = obj({
    "matchExpressions": lst(NODE_SELECTOR_REQUIREMENT),
    "matchFields": lst(NODE_SELECTOR_REQUIREMENT),
})

AFFINITY = obj({
    "nodeAffinity": obj({
        "requiredDuringSchedulingIgnoredDuringExecution": obj(
            {"nodeSelectorTerms": lst(NODE_SELECTOR_TERM)}, required=("nodeSelectorTerms",)),
        "preferredDuringSchedulingIgnoredDuringExecution": ANY,
    }),
    "podAffinity": ANY,
    "podAntiAffinity": ANY,
})

TOLERATION = obj({
    "key": STR,
    "operator": enum("Exists", "Equal"),
    "value": STR,
    "effect": enum("NoSchedule", "PreferNoSchedule", "NoExecute"),
    "tolerationSeconds": INT,
})

PORT = intrange(1, 65535)

HTTP_GET = obj({
    "path": STR,
    "port": INT_OR_STR,
    "host": STR,
    "scheme": enum("HTTP", "HTTPS"),
    "httpHeaders": lst(obj({"name": STR, "value": STR}, required=("name", "value"))),
}, required=("port",))

PROBE = obj({
    "exec": ANY,
    "httpGet": HTTP_GET,
    "tcpSocket": ANY,
    "grpc": ANY,
    "initialDelaySeconds": intrange(0, 2**31 - 1),
    "timeoutSeconds": intrange(1, 2**31 - 1),
    "periodSeconds": intrange(1, 2**31 - 1),
    "successThreshold": intrange(1, 2**31 - 1),
    "failureThreshold": intrange(1, 2**31 - 1),
    "terminationGracePeriodSeconds": INT,
})

RESOURCES = obj({
    "limits": strmap(QUANTITY),
    "requests": strmap(QUANTITY),
    "claims": ANY,
})

SECURITY_CONTEXT = obj({
    "privileged": BOOL,
    "capabilities": obj({"add": lst(fmt("capability")), "drop": lst(fmt("capability"))}),
    "allowPrivilegeEscalation": BOOL,
    "readOnlyRootFilesystem": BOOL,
    "runAsUser": INT,
    "runAsGroup": INT,
    "runAsNonRoot": BOOL,
    "procMount": enum("Default", "Unmasked"),
    "seLinuxOptions": ANY,
    "seccompProfile": ANY,
    "appArmorProfile": ANY,
    "windowsOptions": ANY,
})

ENV_VAR = obj({
    "name": fmt("env-name"),
    "value": STR,
    "valueFrom": obj({
        "fieldRef": obj({"apiVersion": STR, "fieldPath": fmt("field-path")},
                        required=("fieldPath",)),
        "resourceFieldRef": ANY,
        "configMapKeyRef": ANY,
        "secretKeyRef": ANY,
    }),
}, required=("name",))

CONTAINER = obj({
    "name": fmt("dns1123-label"),
    "image": fmt("image"),
    "command": lst(STR),
    "args": lst(STR),
    "workingDir": STR,
    "ports": lst(obj({
        "name": fmt("port-name"),
        "containerPort": PORT,
        "hostPort": PORT,
        "hostIP": STR,
        "protocol": enum("TCP", "UDP", "SCTP"),
    }, required=("containerPort",))),
    "envFrom": ANY,
    "env": lst(ENV_VAR),
    "resources": RESOURCES,
    "resizePolicy": ANY,
    "restartPolicy": enum("Always"),
    "volumeMounts": lst(obj({
        "name": STR,
        "mountPath": fmt("abs-path"),
        "readOnly": BOOL,
        "recursiveReadOnly": enum("Disabled", "IfPossible", "Enabled"),
        "subPath": STR,
        "subPathExpr": STR,
        "mountPropagation": enum("None", "HostToContainer", "Bidirectional"),
    }, required=("name", "mountPath"))),
    "volumeDevices": ANY,
    "livenessProbe": PROBE,
    "readinessProbe": PROBE,
    "startupProbe": PROBE,
    "lifecycle": ANY,
    "terminationMessagePath": STR,
    "terminationMessagePolicy": enum("File", "FallbackToLogsOnError"),
    "imagePullPolicy": enum("Always", "IfNotPresent", "Never"),
    "securityContext": SECURITY_CONTEXT,
    "stdin": BOOL,
    "stdinOnce": BOOL,
    "tty": BOOL,
}, required=("name", "image"))

VOLUME = obj({
    "name": fmt("dns1123-label"),
    "hostPath": obj({
        "path": fmt("abs-path"),
        "type": enum("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                     "CharDevice", "BlockDevice"),
    }, required=("path",)),
    "configMap": obj({
        "name": fmt("dns1123-subdomain"),
        "items": lst(obj({"key": STR, "path": STR, "mode": INT}, required=("key", "path"))),
        "defaultMode": intrange(0, 0o777),
        "optional": BOOL,
    }),
    # other volume sources exist; none is used
    **{k: ANY for k in ("emptyDir", "secret", "projected", "downwardAPI",
                        "persistentVolumeClaim", "csi", "ephemeral", "image", "nfs", "iscsi")},
}, required=("name",))

POD_SPEC = obj({
    "containers": lst(CONTAINER),
    "initContainers": lst(CONTAINER),
    "ephemeralContainers": ANY,
    "volumes": lst(VOLUME),
    "restartPolicy": enum("Always", "OnFailure", "Never"),
    "terminationGracePeriodSeconds": intrange(0, 2**62),
    "activeDeadlineSeconds": INT,
    "dnsPolicy": enum("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"),
    "dnsConfig": ANY,
    "nodeSelector": strmap(fmt("label-value"), "label-key"),
    "nodeName": fmt("dns1123-subdomain"),
    "serviceAccountName": fmt("dns1123-subdomain"),
    "serviceAccount": STR,
    "automountServiceAccountToken": BOOL,
    "hostNetwork": BOOL,
    "hostPID": BOOL,
    "hostIPC": BOOL,
    "hostUsers": BOOL,
    "shareProcessNamespace": BOOL,
    "securityContext": ANY,
    "imagePullSecrets": lst(obj({"name": STR})),
    "hostname": STR,
    "subdomain": STR,
    "setHostnameAsFQDN": BOOL,
    "affinity": AFFINITY,
    "schedulerName": STR,
    "tolerations": lst(TOLERATION),
    "hostAliases": ANY,
    "priorityClassName": fmt("dns1123-subdomain"),
    "priority": INT,
    "preemptionPolicy": enum("PreemptLowerPriority", "Never"),
    "readinessGates": ANY,
    "runtimeClassName": STR,
    "enableServiceLinks": BOOL,
    "overhead": ANY,
    "topologySpreadConstraints": ANY,
    "os": obj({"name": enum("linux", "windows")}, required=("name",)),
    "schedulingGates": ANY,
    "resourceClaims": ANY,
    "resources": ANY,
}, required=("containers",))

POD_TEMPLATE = obj({"metadata": OBJECT_META, "spec": POD_SPEC}, required=("spec",))

POLICY_RULE = obj({
    "apiGroups": lst(fmt("api-group")),
    "resources": lst(STR),
    "verbs": lst(enum("get", "list", "watch", "create", "update", "patch", "delete",
                      "deletecollection", "*")),
    "resourceNames": lst(STR),
    "nonResourceURLs": lst(STR),
}, required=("verbs",))


def top(fields, required=()):
    return obj({"apiVersion": STR, "kind": STR, "metadata": OBJECT_META, **fields},
               required=("apiVersion", "kind", "metadata", *required))


KINDS = {
    ("v1", "ServiceAccount"): top({
        "secrets": ANY,
        "imagePullSecrets": lst(obj({"name": STR})),
        "automountServiceAccountToken": BOOL,
    }),
    ("v1", "ConfigMap"): top({
        "data": strmap(STR, "configmap-key"),
        "binaryData": ANY,
        "immutable": BOOL,
    }),
    ("v1", "Pod"): top({"spec": POD_SPEC}, required=("spec",)),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): top({
        "rules": lst(POLICY_RULE),
        "aggregationRule": ANY,
    }),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): top({
        "subjects": lst(obj({
            "kind": enum("ServiceAccount", "User", "Group"),
            "apiGroup": STR,
            "name": STR,
            "namespace": fmt("dns1123-label"),
        }, required=("kind", "name"))),
        "roleRef": obj({
            "apiGroup": enum("rbac.authorization.k8s.io"),
            "kind": enum("ClusterRole"),
            "name": STR,
        }, required=("apiGroup", "kind", "name")),
    }, required=("roleRef",)),
    ("apps/v1", "DaemonSet"): top({
        "spec": obj({
            "selector": LABEL_SELECTOR,
            "template": POD_TEMPLATE,
            "updateStrategy": obj({
                "type": enum("RollingUpdate", "OnDelete"),
                "rollingUpdate": obj({"maxUnavailable": INT_OR_STR, "maxSurge": INT_OR_STR}),
            }),
            "minReadySeconds": intrange(0, 2**31 - 1),
            "revisionHistoryLimit": intrange(0, 2**31 - 1),
        }, required=("selector", "template")),
    }, required=("spec",)),
}

# kustomize's own kind (not a Kubernetes object: no metadata needed)
KINDS[("kustomize.config.k8s.io/v1beta1", "Kustomization")] = obj({
    "apiVersion": STR, "kind": STR,
    "resources": lst(STR),
    "images": lst(obj({"name": STR, "newName": STR, "newTag": STR, "digest": STR},
                      required=("name",))),
    "namespace": STR,
    "labels": ANY, "commonLabels": ANY, "commonAnnotations": ANY, "patches": ANY,
    "components": ANY, "configMapGenerator": ANY, "generatorOptions": ANY,
}, required=("apiVersion", "kind"))

CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _type_name(v):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object", type(None): "null"}.get(type(v), type(v).__name__)


def _check(t, v, path, errs):
    kind = t[0]
    if kind == "any":
        return
    if kind == "str":
        if not isinstance(v, str):
            errs.append(f"{path}: want a string, got {_type_name(v)}")
    elif kind == "int":
        if not isinstance(v, int) or isinstance(v, bool):
            errs.append(f"{path}: want an integer, got {_type_name(v)}")
    elif kind == "bool":
        if not isinstance(v, bool):
            errs.append(f"{path}: want a boolean, got {_type_name(v)}")
    elif kind == "int-or-string":
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            errs.append(f"{path}: want an integer or a string, got {_type_name(v)}")
        elif isinstance(v, str) and not (IANA_SVC_NAME.match(v) or re.match(r"^\d+%$", v)):
            errs.append(f"{path}: {v!r} is neither a port name nor a percentage")
    elif kind == "quantity":
        if isinstance(v, bool) or not isinstance(v, (int, str)) or \
                not QUANTITY_RE.match(str(v)):
            errs.append(f"{path}: {v!r} is not a quantity")
    elif kind == "enum":
        if v not in t[1]:
            errs.append(f"{path}: {v!r} is not one of {sorted(t[1])}")
    elif kind == "intrange":
        if not isinstance(v, int) or isinstance(v, bool) or not t[1] <= v <= t[2]:
            errs.append(f"{path}: want an integer in [{t[1]}, {t[2]}], got {v!r}")
    elif kind == "format":
        _check(t[2], v, path, errs)
        if isinstance(v, str):
            msg = check_format(t[1], v)
            if msg:
                errs.append(f"{path}: {msg}")
    elif kind == "list":
        if not isinstance(v, list):
            errs.append(f"{path}: want a list, got {_type_name(v)}")
            return
        for i, x in enumerate(v):
            _check(t[1], x, f"{path}[{i}]", errs)
    elif kind == "map":
        if not isinstance(v, dict):
            errs.append(f"{path}: want a map, got {_type_name(v)}")
            return
        for k, x in v.items():
            if not isinstance(k, str):
                errs.append(f"{path}: key {k!r} is not a string")
                continue
            if t[2] == "label-key" and not label_key_ok(k):
                errs.append(f"{path}: {k!r} is not a valid label key")
            if t[2] == "configmap-key" and not (len(k) <= 253 and CONFIGMAP_KEY.match(k)):
                errs.append(f"{path}: {k!r} is not a valid ConfigMap key")
            _check(t[1], x, f"{path}.{k}", errs)
    elif kind == "object":
        if not isinstance(v, dict):
            errs.append(f"{path}: want an object, got {_type_name(v)}")
            return
        fields, required = t[1], t[2]
        for k, x in v.items():
            if k not in fields:
                errs.append(f"{path}.{k}: unknown field")
                continue
            _check(fields[k], x, f"{path}.{k}", errs)
        for k in sorted(required):
            if k not in v:
                errs.append(f"{path}.{k}: required field missing")
    else:
        raise ValueError(f"bad schema type {t!r}")


def validate(doc):
    """Errors of one parsed document ([] when valid)."""
    if not isinstance(doc, dict):
        return [f"document: want an object, got {_type_name(doc)}"]
    key = (doc.get("apiVersion"), doc.get("kind"))
    t = KINDS.get(key)
    if t is None:
        return [f"document: apiVersion/kind {key[0]}/{key[1]} is not a kind this schema knows"]
    errs = []
    _check(t, doc, f"{key[1]}", errs)
    return errs
