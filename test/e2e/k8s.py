"""Builders for the Kubernetes objects the e2e suite puts into the test API server."""


def port(name, port, target=None, protocol="TCP", node_port=None):
    p = {"name": name, "port": port, "targetPort": target or port, "protocol": protocol}
    if node_port:
        p["nodePort"] = node_port
    return p


def service(name, namespace, ports, type="ClusterIP", labels=None, **spec):
    """A Service; extra keyword arguments go into spec (camelCase keys), except
    status_lb_ips, which becomes status.loadBalancer.ingress."""
    lb_ips = spec.pop("status_lb_ips", None)
    spec = dict(spec, type=type)
    if ports or type != "ExternalName":
        spec["ports"] = list(ports)
    obj = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
           "spec": spec}
    if lb_ips:
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}
                                                      for ip in lb_ips]}}
    return obj


def endpoint(pod, ready=True, serving=None, terminating=False):
    """One EndpointSlice endpoint for a sandbox Pod, with its node name."""
    cond = {"ready": ready, "serving": ready if serving is None else serving}
    if terminating:
        cond["terminating"] = True
    return {"addresses": [pod.ip], "nodeName": pod.node.name, "conditions": cond,
            "targetRef": {"kind": "Pod", "name": pod.name}}


def endpoint_slice(service_name, namespace, endpoints, ports, name=None, labels=None):
    """An IPv4 EndpointSlice of @service_name. @ports: (name, port, protocol) tuples."""
    lbl = {"kubernetes.io/service-name": service_name,
           "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    lbl.update(labels or {})
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or service_name + "-abcde", "namespace": namespace,
                         "labels": lbl},
            "addressType": "IPv4",
            "endpoints": list(endpoints),
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}
