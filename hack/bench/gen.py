#!/usr/bin/python3
"""Scale generator for the benchmarks: a cluster of N Services x M endpoints.

Writes one JSON `List` (what `kubectl get svc,endpointslices,nodes -A -o json`
prints) that is both a `--from-file` input for `--dump-rules` and a `--fixture`
for test/apiserver/apiserver.py. Python standard library only; deterministic
for a given (N, M, seed).

The mix (fractions of services, decided per service from the seeded RNG):
  - type: ClusterIP ~90%, NodePort 6%, LoadBalancer 3% (half of them with
    loadBalancerSourceRanges, every one with an ingress IP);
    NodePorts stay inside 30000-32767 as a real cluster's must;
  - sessionAffinity ClientIP: 10%;
  - externalTrafficPolicy Local: 40% of NodePort/LoadBalancer services (half of
    them with an endpoint on the proxy's node);
  - internalTrafficPolicy Local: 1%;
  - ports: 1 (75%), 2 (20%: http+https) or 3 (5%: + metrics); 3% of the
    services are UDP (dns-like) instead of TCP;
  - endpoints: M per service, spread over 100 nodes (10.244.X.0/24 on node-X,
    the proxy's node "node-a" owns 10.244.1.0/24); 2% not ready (terminating).
ClusterIPs are drawn without replacement from the whole /16 service CIDR
(10.96.0.0/16 by default), as a real allocator's addresses end up.

  gen.py --services 10000 [--endpoints 10] [--seed 1] [--service-cidr 10.96.0.0/16] -o FILE
  gen.py --describe FILE     # one line: what the file holds
"""

import argparse
import ipaddress
import json
import os
import random
import sys

NODE = "node-a"
NODE_IP = "10.0.0.11"
NODE_OCTET = 1  # node-a's pods: 10.244.1.0/24
N_NODES = 100
NODEPORT_MIN, NODEPORT_MAX = 30000, 32767
PORT_SETS = {  # name, port, targetPort, protocol
    1: [("http", 80, 8080, "TCP")],
    2: [("http", 80, 8080, "TCP"), ("https", 443, 8443, "TCP")],
    3: [("http", 80, 8080, "TCP"), ("https", 443, 8443, "TCP"), ("metrics", 9090, 9090, "TCP")],
}
UDP_PORTS = [("dns", 53, 5353, "UDP")]
TARGET_PORTS = sorted({p[2] for ps in PORT_SETS.values() for p in ps} | {p[2] for p in UDP_PORTS})
SVC_PER_NS = 50


def node_of(octet):
    return NODE if octet == NODE_OCTET else "node-%d" % octet


def svc_name(i):
    return "svc-%05d" % i


def ns_name(i):
    return "ns-%04d" % (i // SVC_PER_NS)


def gen(n, m, seed=1, service_cidr="10.96.0.0/16"):
    # Prefix-stable: service i is the same in every size (its own RNG; the
    # ClusterIP and NodePort streams are drawn in service order).
    rnd_ip = random.Random("kip-bench-ip-%d" % seed)
    net = ipaddress.ip_network(service_cidr)
    hosts = net.num_addresses - 2
    if n > hosts // 2:
        sys.exit("gen.py: %d services do not fit in %s" % (n, service_cidr))
    ips, seen = [], {1, 10}  # .1 and .10 are the kubernetes and kube-dns services
    base = int(net.network_address)
    while len(ips) < n:  # unique, uniform over the whole range
        off = rnd_ip.randrange(1, hosts + 1)
        if off not in seen:
            seen.add(off)
            ips.append(str(ipaddress.IPv4Address(base + off)))
    nodeports = list(range(NODEPORT_MIN, NODEPORT_MAX + 1))
    random.Random("kip-bench-np-%d" % seed).shuffle(nodeports)
    np_next = 0
    items = [{
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE,
                                              "topology.kubernetes.io/zone": "zone-a"}},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
        "status": {"addresses": [{"type": "InternalIP", "address": NODE_IP},
                                 {"type": "Hostname", "address": NODE}]},
    }]
    stats = {"ClusterIP": 0, "NodePort": 0, "LoadBalancer": 0, "ClientIP": 0, "eTPLocal": 0,
             "iTPLocal": 0, "ports": 0, "endpoints": 0, "sourceRanges": 0}
    for i in range(n):
        rnd = random.Random("kip-bench-svc-%d-%d" % (seed, i))
        r = rnd.random()
        stype = "LoadBalancer" if r < 0.03 else "NodePort" if r < 0.09 else "ClusterIP"
        r = rnd.random()
        nports = 3 if r < 0.05 else 2 if r < 0.25 else 1
        udp = rnd.random() < 0.03
        affinity = rnd.random() < 0.10
        etp_local = stype != "ClusterIP" and rnd.random() < 0.40
        itp_local = rnd.random() < 0.01
        local_ep = etp_local and rnd.random() < 0.5
        ranges = stype == "LoadBalancer" and rnd.random() < 0.5
        ports = UDP_PORTS if udp else PORT_SETS[nports]
        need = (len(ports) + (1 if etp_local and stype == "LoadBalancer" else 0)
                if stype != "ClusterIP" else 0)
        if np_next + need > len(nodeports):  # the NodePort range is full: stay ClusterIP
            stype, etp_local, local_ep, ranges, need = "ClusterIP", False, False, False, 0
        name, ns = svc_name(i), ns_name(i)
        spec = {
            "type": stype, "clusterIP": ips[i], "clusterIPs": [ips[i]],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Local" if itp_local else "Cluster",
            "selector": {"app": name},
            "sessionAffinity": "ClientIP" if affinity else "None",
            "ports": [],
        }
        if affinity:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
        for pname, port, tport, proto in ports:
            p = {"name": pname, "port": port, "protocol": proto, "targetPort": tport}
            if stype != "ClusterIP":
                p["nodePort"] = nodeports[np_next]
                np_next += 1
            spec["ports"].append(p)
        svc = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
               "spec": spec, "status": {"loadBalancer": {}}}
        if stype != "ClusterIP":
            spec["externalTrafficPolicy"] = "Local" if etp_local else "Cluster"
        if stype == "LoadBalancer":
            spec["allocateLoadBalancerNodePorts"] = True
            if etp_local:
                spec["healthCheckNodePort"] = nodeports[np_next]
                np_next += 1
            lb = "198.51.%d.%d" % (100 + (i >> 8) % 100, i & 255)
            svc["status"]["loadBalancer"] = {"ingress": [{"ip": lb, "ipMode": "VIP"}]}
            if ranges:
                spec["loadBalancerSourceRanges"] = ["203.0.113.0/24", "10.0.0.0/16"]
                stats["sourceRanges"] += 1
        items.append(svc)
        stats[stype] += 1
        stats["ClientIP"] += affinity
        stats["eTPLocal"] += etp_local
        stats["iTPLocal"] += itp_local
        stats["ports"] += len(ports)

        eps, used = [], set()
        for k in range(m):
            while True:
                octet = NODE_OCTET if (k == 0 and local_ep) else rnd.randrange(0, N_NODES + 100)
                if octet == NODE_OCTET and not (k == 0 and local_ep) and etp_local:
                    continue  # keep "has a local endpoint" exactly as decided
                addr = "10.244.%d.%d" % (octet, rnd.randrange(2, 255))
                if addr not in used:
                    break
            used.add(addr)
            ready = rnd.random() >= 0.02
            eps.append({
                "addresses": [addr],
                "conditions": {"ready": ready, "serving": True, "terminating": not ready},
                "nodeName": node_of(octet),
                "zone": "zone-%s" % ("a" if octet == NODE_OCTET else "bcd"[octet % 3]),
                "targetRef": {"kind": "Pod", "namespace": ns, "name": "%s-%d" % (name, k)},
            })
        stats["endpoints"] += m
        items.append({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name + "-abcde", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": name,
                                    "endpointslice.kubernetes.io/managed-by":
                                        "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4",
            "endpoints": eps,
            "ports": [{"name": pn, "port": tp, "protocol": pr} for pn, _, tp, pr in ports],
        })
    meta = {"services": n, "endpointsPerService": m, "seed": seed,
            "serviceCIDR": service_cidr, "mix": stats}
    return {"apiVersion": "v1", "kind": "List",
            "metadata": {"annotations": {"kip-bench/generator": json.dumps(meta, sort_keys=True)}},
            "items": items}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", "-n", type=int)
    ap.add_argument("--endpoints", "-m", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--service-cidr", default="10.96.0.0/16")
    ap.add_argument("-o", "--output", default="-")
    ap.add_argument("--describe", metavar="FILE")
    a = ap.parse_args()
    if a.describe:
        with open(a.describe) as f:
            print(json.load(f)["metadata"]["annotations"]["kip-bench/generator"])
        return
    if a.services is None or a.services < 0:
        ap.error("--services N (N >= 0) is required")
    doc = gen(a.services, a.endpoints, a.seed, a.service_cidr)
    text = json.dumps(doc, separators=(",", ":"))
    if a.output == "-":
        sys.stdout.write(text + "\n")
    else:
        tmp = a.output + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
