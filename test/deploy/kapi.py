#!/usr/bin/python3
"""The project's test API server (test/apiserver/apiserver.py), serving also
the kinds the deployment manifests use, so that `kubectl apply --dry-run=client`
can run against it: kubectl needs discovery to map each kind to its resource,
and GETs each object (a 404 makes it "created (dry run)").

Same flags as apiserver.py. Nothing of apiserver.py is changed: the extra
resource types are registered in its tables before it starts.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "apiserver"))
import apiserver  # noqa: E402

EXTRA = [
    apiserver.ResourceType("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount",
                           True, {}, ["sa"]),
    apiserver.ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, {},
                           ["cm"]),
    apiserver.ResourceType("", "v1", "pods", "pod", "Pod", True, {"spec": {}, "status": {}},
                           ["po"]),
    apiserver.ResourceType("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True,
                           {"spec": {}, "status": {}}, ["ds"]),
    apiserver.ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole",
                           "ClusterRole", False, {}),
    apiserver.ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings",
                           "clusterrolebinding", "ClusterRoleBinding", False, {}),
]


def register():
    for rt in EXTRA:
        apiserver.RESOURCES.append(rt)
        apiserver.BY_PATH[(rt.group, rt.version, rt.plural)] = rt
        apiserver.BY_KIND[(rt.api_version, rt.kind)] = rt
        apiserver.GROUP_VERSIONS.setdefault((rt.group, rt.version), []).append(rt)


if __name__ == "__main__":
    register()
    sys.exit(apiserver.main())
