#!/usr/bin/python3
"""Write the input.json of the tree-layout golden cases (deterministic).

    test/rules/tree/gen-cases.py     (re)writes test/rules/cases/tree-*/input.json

The cases need more service ports than a leaf holds (64) so that the tree
splits; writing them by hand would be error-prone, so they are generated,
and the output is committed and reviewed like any other golden input.
"""
import ipaddress
import json
import os
import random

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cases")


def node(name, ip, cidrs):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {"podCIDR": cidrs[0], "podCIDRs": cidrs},
            "status": {"addresses": [{"type": "InternalIP", "address": a} for a in ip]}}


def service(ns, name, cips, fams, ports, **extra):
    spec = {"clusterIP": cips[0], "clusterIPs": cips, "ipFamilies": fams,
            "ipFamilyPolicy": "SingleStack" if len(fams) == 1 else "RequireDualStack",
            "ports": ports, "type": extra.pop("type", "ClusterIP"),
            "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"}
    status = extra.pop("status", {"loadBalancer": {}})
    spec.update(extra)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": ns, "name": name}, "spec": spec, "status": status}


def slice_(ns, svc, fam, addrs, ports, node_name):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": ns, "name": "%s-%s" % (svc, fam.lower()),
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": fam,
            "endpoints": [{"addresses": [a], "conditions": {"ready": True},
                           "nodeName": node_name} for a in addrs],
            "ports": ports}


def write(name, items, args, readme):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "input.json"), "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f, indent=1,
                  sort_keys=True)
        f.write("\n")
    with open(os.path.join(d, "args"), "w") as f:
        f.write(args + "\n")
    with open(os.path.join(d, "README"), "w") as f:
        f.write(readme)
    open(os.path.join(d, "tree"), "w").close()


def spread_v4():
    rnd = random.Random(4)
    net = ipaddress.ip_network("10.96.0.0/12")
    items = [node("node-t", ["10.0.7.7"], ["10.244.7.0/24"])]
    used = set()
    for i in range(150):
        while True:
            ip = str(net[rnd.randrange(1, net.num_addresses - 1)])
            if ip not in used:
                used.add(ip)
                break
        ports = [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
        if i % 5 == 0:
            ports.append({"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53})
        extra = {}
        if i % 17 == 0 or i % 11 == 0:
            # LoadBalancers; every 11th with eTP Local (its endpoints on the
            # other node: DROP rules in the filter table) and source ranges
            local = i % 11 == 0
            extra = {"type": "LoadBalancer",
                     "externalTrafficPolicy": "Local" if local else "Cluster",
                     "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.%d" % (i // 11 + 1),
                                                              "ipMode": "VIP"}]}}}
            if local:
                extra["healthCheckNodePort"] = 32000 + i
                extra["loadBalancerSourceRanges"] = ["198.51.100.0/24"]
                extra["externalIPs"] = ["192.0.2.%d" % (i // 11 + 1)]
            for p in ports:
                p["nodePort"] = 30000 + i + (1000 if p["protocol"] == "UDP" else 0)
        items.append(service("ns%d" % (i % 7), "svc-%03d" % i, [ip], ["IPv4"], ports, **extra))
        eps = ["10.244.%d.%d" % (rnd.randrange(1, 9), rnd.randrange(2, 250))
               for _ in range(1 + i % 3)]
        if i % 13 == 0:
            eps = []  # no endpoints: REJECT rules in the filter table
        sports = [{"name": p["name"], "port": p["targetPort"], "protocol": p["protocol"]}
                  for p in ports]
        items.append(slice_("ns%d" % (i % 7), "svc-%03d" % i, "IPv4", sorted(set(eps)), sports,
                            "node-u" if i % 11 == 0 else ("node-t" if i % 2 else "node-u")))
    write("tree-spread-clusterips", items,
          "--hostname-override=node-t --cluster-cidr=10.244.0.0/16 "
          "--service-cluster-ip-range=10.96.0.0/12",
          "150 services (180 service ports) with ClusterIPs drawn at random from the whole\n"
          "10.96.0.0/12, some of them LoadBalancers whose ingress IPs (203.0.113.x) are\n"
          "outside the given service CIDR, every 11th with eTP Local and no local endpoint\n"
          "(filter DROPs for its LB IP, externalIP and NodePort, source ranges), every 13th\n"
          "without endpoints (filter REJECTs). expected-tree.rules pins the tree layout: the\n"
          "/12 root split, leaves of at most 64 rules, the LB IPs under a second, derived\n"
          "root, the filter table's trees and its NodePort gate; expected.rules is the\n"
          "linear layout, and the golden test traces every packet through both.\n")


def ipv6_cidr():
    rnd = random.Random(6)
    net = ipaddress.ip_network("fd00:10:96::/108")
    items = [node("node-6", ["fd00:10::6"], ["fd00:10:244:6::/64"])]
    used = set()
    for i in range(90):
        while True:
            ip = str(net[rnd.randrange(1, net.num_addresses - 1)])
            if ip not in used:
                used.add(ip)
                break
        ports = [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}]
        items.append(service("v6", "svc-%02d" % i, [ip], ["IPv6"], ports,
                             sessionAffinity="ClientIP" if i % 11 == 0 else "None",
                             sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}}))
        eps = ["fd00:10:244:%x::%x" % (rnd.randrange(1, 9), rnd.randrange(2, 4000))
               for _ in range(2)]
        items.append(slice_("v6", "svc-%02d" % i, "IPv6", sorted(set(eps)),
                            [{"name": "https", "port": 8443, "protocol": "TCP"}], "node-6"))
    # one service outside the given CIDR
    items.append(service("v6", "stray", ["fd00:99::1"], ["IPv6"],
                         [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}],
                         externalIPs=["2001:db8:e::1"]))
    items.append(slice_("v6", "stray", "IPv6", ["fd00:10:244:6::77"],
                        [{"name": "https", "port": 8443, "protocol": "TCP"}], "node-6"))
    write("tree-ipv6-service-cidr", items,
          "--hostname-override=node-6 --cluster-cidr=fd00:10:244::/56 "
          "--service-cluster-ip-range=10.96.0.0/12,fd00:10:96::/108",
          "An IPv6-only cluster: 90 services in the service CIDR fd00:10:96::/108 (given\n"
          "with an IPv4 one, which this family ignores), some with ClientIP affinity, and\n"
          "one service whose ClusterIP and externalIP lie outside it. The tree splits the\n"
          "/108; the stray addresses go under a derived root.\n")


if __name__ == "__main__":
    spread_v4()
    ipv6_cidr()
